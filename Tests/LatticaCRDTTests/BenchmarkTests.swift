import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct BenchmarkTests {
    /// Applies 100,000 signed deltas in batches of 100 (one signature each) and prints the rate.
    /// Asserts what was applied, not the speed (debug builds and shared CPUs vary).
    @Test func test_applyingSignedBatches_appliesEveryDelta_andPrintsTheRate() {
        var rng = SeededRandom(seed: 41)
        let author = makeSigner(&rng)
        var node = CRDT.Instance(signer: makeSigner(&rng), seed: 1)
        let n = 100_000
        let messages = CRDT.Benchmark.signedMessages(count: n, batchSize: 100, batchesPerMessage: 10, signer: author, wall: wall0)
        let clock = ContinuousClock()
        var result = (deltas: 0, persists: 0)
        let elapsed = clock.measure {
            result = CRDT.Benchmark.apply(messages, to: &node, from: author.peerId, wall: wall0)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("CRDT apply: \(n) signed deltas in batches of 100 in \(seconds) s = \(Int(Double(n) / seconds)) deltas/s (persist directives: \(result.persists))")
        #expect(result.deltas == n && result.persists == n / 100)
        #expect(node.state.entries.count == 10_000)
        #expect(node.versions[author.peerId] == UInt64(n))
    }
}

extension BenchmarkTests {
    /// Local writes: 100,000 register writes signed in batches of 500; prints the rate.
    @Test func test_localWrites_areSignedInBatches_andPrintsTheRate() throws {
        var rng = SeededRandom(seed: 42)
        var node = CRDT.Instance(signer: makeSigner(&rng), seed: 1)
        let writes = (0..<100_000).map { CRDT.Write.set("kv/bench/\($0 % 10_000)", .int(Int64($0))) }
        var persists = 0
        let elapsed = try ContinuousClock().measure {
            for chunk in stride(from: 0, to: writes.count, by: 5000) {
                let out = try node.onLocalWrite(Array(writes[chunk..<chunk + 5000]), now: .zero, wall: wall0)
                persists += Outcome(out).persisted.count
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("CRDT local writes: 100000 deltas signed in batches of 500 in \(seconds) s = \(Int(100_000 / seconds)) deltas/s")
        #expect(persists == 200 && node.nextSeq == 100_001)
    }

    /// A fresh node catches up on 100,000 deltas from a peer by anti-entropy (bytes both ways).
    @Test func test_freshNode_catchesUpOn100kDeltas_andPrintsTheTime() {
        var rng = SeededRandom(seed: 43)
        let author = makeSigner(&rng), fresh = makeSigner(&rng)
        var a = CRDT.Instance(signer: author, seed: 1)
        for m in CRDT.Benchmark.signedMessages(count: 100_000, batchSize: 100, signer: author, wall: wall0) {
            _ = a.onMessage(m[...], from: fresh.peerId, now: .zero, wall: wall0)  // a holds them as if received
        }
        var b = CRDT.Instance(signer: fresh, seed: 2)
        _ = a.onPeerConnected(fresh.peerId, now: .zero)
        var bytes = 0
        let elapsed = ContinuousClock().measure {
            var queue = b.onPeerConnected(author.peerId, now: .zero).compactMap { d -> (CRDT.Message, Bool)? in
                if case .send(let m, _) = d { return (m, true) } else { return nil }
            }
            while let (m, toA) = queue.popLast() {
                let encoded = m.encoded()
                bytes += encoded.count
                let out = toA ? a.onMessage(encoded[...], from: fresh.peerId, now: .zero, wall: wall0)
                              : b.onMessage(encoded[...], from: author.peerId, now: .zero, wall: wall0)
                for case .send(let next, _) in out { queue.append((next, !toA)) }
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("CRDT catch-up: 100000 deltas in \(seconds) s (\(bytes) bytes), without transport and SQLite")
        #expect(b.versions[author.peerId] == 100_000)
        #expect(b.state.stateHash == a.state.stateHash)
    }
}
