public import LatticaCore

extension CRDT {
    /// Pure workloads for timing the apply path (the shell or `lattica-bench` holds the clock).
    public enum Benchmark {
        /// `count` LWW register writes by `signer` over `paths` distinct `kv/bench/…` paths, signed
        /// in batches of `batchSize` (one signature each) and encoded as push messages of
        /// `batchesPerMessage` batches: what a peer's push or a catch-up carries.
        public static func signedMessages(count: Int, batchSize: Int = 100, batchesPerMessage: Int = 10,
                                          paths: Int = 10_000, signer: Signer, wall: WallTime) -> [[UInt8]] {
            precondition(count > 0 && batchSize > 0 && batchesPerMessage > 0 && paths > 0)
            let author = signer.peerId
            var clock = HybridClock()
            var batches: [SignedBatch] = []
            var seq: UInt64 = 1
            var written = 0
            while written < count {
                let n = min(batchSize, count - written)
                let deltas = (0..<n).map { i in
                    Delta(seq: seq + UInt64(i), time: clock.tick(wall: wall), path: "kv/bench/\((written + i) % paths)",
                          op: .register(.int(Int64(written + i))))
                }
                batches.append(SignedBatch(author: author, firstSeq: seq, deltas: deltas, signer: signer))
                seq += UInt64(n)
                written += n
            }
            return stride(from: 0, to: batches.count, by: batchesPerMessage).map {
                Message.push(Array(batches[$0..<min(batches.count, $0 + batchesPerMessage)])).encoded()
            }
        }

        /// Feeds `messages` to `node` as if from `peer`: decode, verify each batch's signature,
        /// check every delta's clock and namespace rule, apply, and build the `.persist`
        /// directives (the shell commits each in one transaction). Returns the deltas applied
        /// and the number of `.persist` directives.
        public static func apply(_ messages: [[UInt8]], to node: inout Instance, from peer: PeerId,
                                 now: Instant = .zero, wall: WallTime) -> (deltas: Int, persists: Int) {
            let before = node.metrics.deltasApplied
            var persists = 0
            for m in messages {
                for d in node.onMessage(m[...], from: peer, now: now, wall: wall) {
                    if case .persist = d { persists += 1 }
                }
            }
            return (node.metrics.deltasApplied - before, persists)
        }
    }
}
