public import LatticaCore

extension DHT {
    /// The iterative closest-peers lookup as an iterator the caller drives (after rust-libp2p
    /// `query/peers/closest.rs`; Kademlia paper §2.3): `next()` says whom to contact, `onSuccess` /
    /// `onFailure` report outcomes. It never reads a clock: timeouts arrive as failures.
    ///
    /// Terminates when the `numResults` closest peers it knows have all answered, or when nobody
    /// is left to ask. When `alpha` consecutive answers bring nobody closer, the lookup is
    /// *stalled* and may have up to `numResults` requests in flight (rust-libp2p does the same).
    public struct ClosestPeersIterator: Sendable {
        public enum State: Hashable, Sendable { case notContacted, waiting, succeeded, failed, claimedElsewhere }

        public struct Candidate: Hashable, Sendable {
            public var peer: PeerId
            public var key: Key
            public var distance: Key
            public var addresses: [[UInt8]]
            public var state: State
            /// Referral depth: 1 for seeds from our routing table.
            public var hops: Int
        }

        public enum Next: Hashable, Sendable {
            case contact(Candidate)
            case waiting
            case finished
        }

        public let target: Key
        /// Kademlia `alpha`: requests in flight (paper §2.3; rust-libp2p default 3).
        public let alpha: Int
        /// Kademlia `k`: how many answering peers make a result.
        public let numResults: Int
        /// Bound on remembered candidates (far not-yet-contacted ones are dropped first).
        public let maxCandidates: Int
        public private(set) var candidates: [Candidate] = []
        private var known: Set<PeerId> = []
        private var inFlight = 0
        private var noProgress = 0
        public private(set) var isFinished = false

        public init(target: Key, seeds: [(peer: PeerId, key: Key, addresses: [[UInt8]])], alpha: Int = 3, numResults: Int = 20) {
            self.target = target
            self.alpha = max(1, alpha)
            self.numResults = max(1, numResults)
            self.maxCandidates = max(4 * numResults, 64)
            for s in seeds { _ = insert(s.peer, key: s.key, addresses: s.addresses, hops: 1) }
        }

        /// Inserts a candidate in distance order; returns true when it entered the current top `numResults`.
        @discardableResult
        mutating func insert(_ peer: PeerId, key: Key, addresses: [[UInt8]], hops: Int) -> Bool {
            guard !known.contains(peer) else { return false }
            let d = key.distance(to: target)
            var lo = 0, hi = candidates.count
            while lo < hi { let mid = (lo + hi) / 2; if candidates[mid].distance < d { lo = mid + 1 } else { hi = mid } }
            if lo >= maxCandidates { return false }
            known.insert(peer)
            candidates.insert(Candidate(peer: peer, key: key, distance: d, addresses: addresses, state: .notContacted, hops: hops), at: lo)
            if candidates.count > maxCandidates, let last = candidates.lastIndex(where: { $0.state == .notContacted }) {
                known.remove(candidates[last].peer)
                candidates.remove(at: last)
            }
            return lo < numResults
        }

        func position(of peer: PeerId) -> Int? { candidates.firstIndex { $0.peer == peer } }

        /// Whether `peer` is already a candidate (callers skip hashing known referrals).
        public func knows(_ peer: PeerId) -> Bool { known.contains(peer) }

        public func state(of peer: PeerId) -> State? { position(of: peer).map { candidates[$0].state } }

        /// Whom to contact next, given that candidates claimed by another disjoint path are skipped.
        public mutating func next(isClaimed: (PeerId) -> Bool = { _ in false }) -> Next {
            if isFinished { return .finished }
            let limit = noProgress >= alpha ? numResults : alpha
            var succeeded = 0
            var waitingAhead = false
            for i in candidates.indices {
                switch candidates[i].state {
                case .succeeded:
                    succeeded += 1
                    if succeeded >= numResults && !waitingAhead { isFinished = true; return .finished }
                    if succeeded >= numResults { return .waiting }
                case .waiting:
                    waitingAhead = true
                case .notContacted:
                    if isClaimed(candidates[i].peer) { candidates[i].state = .claimedElsewhere; continue }
                    if inFlight < limit {
                        candidates[i].state = .waiting
                        inFlight += 1
                        return .contact(candidates[i])
                    }
                    return .waiting
                case .failed, .claimedElsewhere:
                    continue
                }
            }
            if inFlight == 0 { isFinished = true; return .finished }
            return .waiting
        }

        /// `peer` answered with `closer` peers (already validated and with keys computed).
        public mutating func onSuccess(_ peer: PeerId, closer: [(peer: PeerId, key: Key, addresses: [[UInt8]])]) {
            guard let i = position(of: peer), candidates[i].state == .waiting else { return }
            candidates[i].state = .succeeded
            inFlight -= 1
            let hops = candidates[i].hops + 1
            var progressed = false
            for c in closer where insert(c.peer, key: c.key, addresses: c.addresses, hops: hops) { progressed = true }
            noProgress = progressed ? 0 : noProgress + 1
        }

        public mutating func onFailure(_ peer: PeerId) {
            guard let i = position(of: peer), candidates[i].state == .waiting else { return }
            candidates[i].state = .failed
            inFlight -= 1
        }

        /// Stops contacting anybody new (e.g. a GET reached its quorum).
        public mutating func finish() { isFinished = true }

        /// The closest peers that answered, closest first (at most `numResults`).
        public var result: [Candidate] {
            Array(candidates.lazy.filter { $0.state == .succeeded }.prefix(numResults))
        }

        public var inFlightCount: Int { inFlight }
    }

    /// S/Kademlia disjoint lookups (Baumgart & Mies 2007 §4.4; rust-libp2p `ClosestDisjointPeersIter`):
    /// `d` closest-peer iterators seeded with disjoint slices of our closest peers; a peer contacted
    /// by one path is never used by another, so a Sybil region captures only the paths it touches.
    /// The result merges all paths. With d = 1 this is the plain lookup.
    public struct DisjointLookup: Sendable {
        public private(set) var paths: [ClosestPeersIterator]
        private var owner: [PeerId: Int] = [:]

        public init(target: Key, seeds: [(peer: PeerId, key: Key, addresses: [[UInt8]])], paths d: Int, alpha: Int, numResults: Int) {
            let d = max(1, min(d, max(1, seeds.count)))
            var slices = Array(repeating: [(peer: PeerId, key: Key, addresses: [[UInt8]])](), count: d)
            for (i, s) in seeds.enumerated() { slices[i % d].append(s) }
            paths = slices.map { ClosestPeersIterator(target: target, seeds: $0, alpha: alpha, numResults: numResults) }
        }

        public var target: Key { paths[0].target }

        /// Whether path `path` already has `peer` as a candidate.
        public func knows(_ peer: PeerId, path: Int) -> Bool { paths.indices.contains(path) && paths[path].knows(peer) }
        public var isFinished: Bool { paths.allSatisfy(\.isFinished) }

        /// The next peers to contact across all paths (each tagged with its path).
        public mutating func nextContacts() -> [(path: Int, candidate: ClosestPeersIterator.Candidate)] {
            var out: [(Int, ClosestPeersIterator.Candidate)] = []
            for p in paths.indices {
                while true {
                    let owners = owner
                    let next = paths[p].next { peer in owners[peer].map { $0 != p } ?? false }
                    guard case .contact(let c) = next else { break }
                    owner[c.peer] = p
                    out.append((p, c))
                }
            }
            return out
        }

        public mutating func onSuccess(path: Int, peer: PeerId, closer: [(peer: PeerId, key: Key, addresses: [[UInt8]])]) {
            guard paths.indices.contains(path) else { return }
            paths[path].onSuccess(peer, closer: closer)
        }

        public mutating func onFailure(path: Int, peer: PeerId) {
            guard paths.indices.contains(path) else { return }
            paths[path].onFailure(peer)
        }

        public mutating func finish() { for p in paths.indices { paths[p].finish() } }

        /// Merged result: the `numResults` closest peers that answered on any path.
        public var result: [ClosestPeersIterator.Candidate] {
            let all = paths.flatMap(\.result).sorted { $0.distance < $1.distance }
            var seen = Set<PeerId>()
            return Array(all.filter { seen.insert($0.peer).inserted }.prefix(paths[0].numResults))
        }

        /// Peers that answered on any path, closest first (e.g. PUT targets).
        public var answered: [ClosestPeersIterator.Candidate] { result }

        public var inFlightCount: Int { paths.reduce(0) { $0 + $1.inFlightCount } }
    }
}
