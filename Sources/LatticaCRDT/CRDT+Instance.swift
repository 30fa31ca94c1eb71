public import LatticaCore

extension CRDT {
    /// One node's replicated store: the materialised state, the log of signed batches (what
    /// anti-entropy sends from), the version vector, the hybrid logical clock, connected peers.
    /// Sans-I/O: every event comes in with `now` (and the wall clock where the HLC needs it),
    /// every effect goes out as a `Directive`. Network input never throws or traps; bad input
    /// is counted (`metrics`) and, where no honest peer would send it, reported.
    public struct Instance: Sendable {
        public let localPeer: PeerId
        let localPeerText: String
        let signer: Signer
        public var settings: Settings
        public internal(set) var state = State()
        public internal(set) var metrics = Metrics()
        public internal(set) var clock = HybridClock()
        /// Per author: the highest contiguous sequence number applied.
        public internal(set) var versions = VersionVector()

        /// Per author, applied batches in seq order (contiguous from 1; compacted batches cover
        /// ranges whose overwritten deltas they left out).
        var logs: [PeerId: [SignedBatch]] = [:]
        /// Encoded bytes of every batch in `logs` (the `lattica_crdt_log_bytes` gauge).
        public internal(set) var logBytes = 0
        /// Deltas held by the batches in `logs` (compacted batches hold only their live ones).
        public internal(set) var logDeltas = 0
        /// Authors in canonical order (anti-entropy walks them deterministically).
        var authors: [PeerId] = []
        /// Verified batches waiting for their author's earlier seqs: author → first seq → batch.
        var held: [PeerId: [UInt64: SignedBatch]] = [:]
        var heldCount = 0
        /// Connected peers in canonical order (random picks replay from the seed).
        var connected: [PeerId] = []
        /// Per connected peer, the lag as of its last version vector (counts only: O(1) memory per peer).
        var peerLag: [PeerId: PeerStatus] = [:]
        var duplicates: [PeerId: Int] = [:]
        var digestCache: [UInt8]?
        var rng: SeededRandom

        /// A node with the local key's signer. `restoring`: the batches it persisted (any order);
        /// they are verified (unless `verifyRestored` is false) and applied, so the state, the
        /// version vector, the clock and our own next seq are where they were.
        public init(signer: Signer, settings: Settings = .init(), seed: UInt64,
                    restoring persisted: [SignedBatch] = [], verifyRestored: Bool = true) {
            self.signer = signer
            self.localPeer = signer.peerId
            self.localPeerText = signer.peerId.description
            self.settings = settings
            self.rng = SeededRandom(seed: seed)
            // Widest first for one first seq: a compacted batch before the batches it replaced (a
            // store holds one or the other; this keeps a restore right if it held both).
            let sorted = persisted.sorted {
                $0.author != $1.author ? $0.author < $1.author : $0.firstSeq != $1.firstSeq ? $0.firstSeq < $1.firstSeq : $0.lastSeq > $1.lastSeq
            }
            // The shell has the materialised rows already: no entries to encode while restoring.
            self.settings.persistMaterialised = false
            defer { self.settings.persistMaterialised = settings.persistMaterialised }
            for b in sorted {
                guard b.lastSeq > versions[b.author] else { continue }
                guard b.firstSeq <= versions[b.author] + 1 else {
                    metrics.rejected[.gapped, default: 0] += 1
                    continue
                }
                if verifyRestored, let reason = b.verify() {
                    metrics.rejected[reason, default: 0] += 1
                    continue
                }
                _ = apply(b)
                metrics.restoredBatches += 1
            }
            // Restored is not received: the applied counters start at zero.
            metrics.batchesApplied = 0
            metrics.deltasApplied = 0
        }

        /// SHA-256 of our encoded version vector (cached until the vector changes).
        var versionsDigest: [UInt8] {
            mutating get {
                if let d = digestCache { return d }
                let d = versions.digest
                digestCache = d
                return d
            }
        }

        /// Our own next sequence number.
        public var nextSeq: UInt64 { versions[localPeer] + 1 }

        /// Batches of `author` in the log (for `lattica meta log` and tests).
        public func batches(of author: PeerId) -> [SignedBatch] { logs[author] ?? [] }
        public var allBatches: [SignedBatch] { authors.flatMap { logs[$0] ?? [] } }
        public var connectedPeers: [PeerId] { connected }
        public var heldBatchCount: Int { heldCount }

        // MARK: Lifecycle and peers

        public mutating func onStart(now: Instant) -> [Directive] {
            var out: [Directive] = [.scheduleTimer(.antiEntropy, at: now + settings.antiEntropyInterval)]
            if settings.compactionMinBatches > 0 { out.append(.scheduleTimer(.compaction, at: now + settings.compactionInterval)) }
            return out
        }

        /// A connection to `peer` is up (and it speaks `/lattica/crdt/1.0.0`): start an exchange
        /// at once, so that a late joiner or a node back from a partition catches up.
        public mutating func onPeerConnected(_ peer: PeerId, now: Instant) -> [Directive] {
            guard peer != localPeer, connected.count < settings.maxPeers else { return [] }
            guard !isConnected(peer) else { return [] }
            connected.insert(peer, at: connected.partitioningIndex { !($0 < peer) })
            return [send(.versions(versions, wantsReply: true), to: peer)]
        }

        public mutating func onPeerDisconnected(_ peer: PeerId, now: Instant) -> [Directive] {
            if isConnected(peer) { connected.remove(at: connected.partitioningIndex { !($0 < peer) }) }
            peerLag[peer] = nil
            duplicates[peer] = nil
            return []
        }

        public mutating func onTimer(_ timer: TimerID, now: Instant) -> [Directive] {
            switch timer {
            case .antiEntropy:
                duplicates = [:]
                var out: [Directive] = []
                let digest = versionsDigest
                for peer in randomPeers(settings.antiEntropyFanout, excluding: nil) {
                    metrics.antiEntropyExchanges += 1
                    out.append(send(.summary(digest: digest, wantsReply: true), to: peer))
                }
                out.append(.scheduleTimer(.antiEntropy, at: now + settings.antiEntropyInterval))
                return out
            case .compaction:
                var out = compactIfWorthIt(now: now)
                out.append(.scheduleTimer(.compaction, at: now + settings.compactionInterval))
                return out
            }
        }

        /// Replication state per connected peer, as of its last version vector (or summary);
        /// `lastSync` nil: none yet (then `theyLack` is everything we have).
        public func syncStatus() -> [PeerStatus] {
            connected.map { peerLag[$0] ?? PeerStatus(peer: $0, lastSync: nil, theyLack: versions.total, weLack: 0) }
        }

        // MARK: Helpers

        mutating func noteVersions(_ theirs: VersionVector, of peer: PeerId, now: Instant) {
            guard isConnected(peer) else { return }
            peerLag[peer] = PeerStatus(peer: peer, lastSync: now, theyLack: versions.missing(from: theirs), weLack: theirs.missing(from: versions))
        }

        func isConnected(_ peer: PeerId) -> Bool {
            let i = connected.partitioningIndex { !($0 < peer) }
            return i < connected.count && connected[i] == peer
        }

        mutating func send(_ m: Message, to peer: PeerId) -> Directive {
            metrics.messagesSent += 1
            return .send(m, to: peer)
        }

        /// Up to `count` distinct connected peers, drawn with the instance's seeded generator.
        mutating func randomPeers(_ count: Int, excluding: PeerId?) -> [PeerId] {
            var pool = connected.filter { $0 != excluding }
            var out: [PeerId] = []
            while out.count < count, !pool.isEmpty {
                out.append(pool.swapAt(Int(rng.next() % UInt64(pool.count))))
            }
            return out
        }

        mutating func misbehaved(_ peer: PeerId, _ why: Misbehavior) -> Directive {
            metrics.misbehaviors += 1
            return .peerMisbehaved(peer, why)
        }
    }
}

extension Array {
    /// Removes the element at `i` in O(1) (the last one takes its place) and returns it.
    mutating func swapAt(_ i: Int) -> Element {
        swapAt(i, count - 1)
        return removeLast()
    }

    /// The first index whose element satisfies `belongs` (which must be false then true along
    /// the array): binary search.
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if belongs(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
