public import LatticaCore

extension DHT {
    /// Kademlia k-buckets (Maymounkov & Mazières §2.2, §2.4; kad-dht spec "Kademlia routing table").
    ///
    /// Bucket `i` holds peers whose key shares exactly `i` leading bits with ours (bucket 0 is the
    /// far half of the keyspace). Buckets are created lazily: a 10,000-node network uses ~20.
    /// Long-lived peers are preferred: when a bucket is full, a newcomer waits in the bucket's
    /// replacement cache and the least-recently-seen entry is probed; it is replaced only if the
    /// probe fails (paper §2.2). Entries are ordered least-recently-seen first.
    public struct RoutingTable: Sendable {
        public struct Entry: Hashable, Sendable {
            public var peer: PeerId
            public var key: Key
            public var addresses: [[UInt8]]
            public var lastSeen: Instant
            /// Consecutive failed requests; reset by any success.
            public var failures: Int
            /// False once the shell told us the last connection to the peer closed; such an entry
            /// is the first to make room for a newcomer in a full bucket (rust-libp2p's
            /// `NodeStatus::Disconnected`). Hearing from the peer again sets it.
            public var connected = true
        }

        struct Bucket: Sendable {
            var entries: [Entry] = []
            var replacements: [Entry] = []
            var lastLookup: Instant = .zero
            /// The least-recently-seen entry currently being probed, if any.
            var probing: PeerId? = nil
        }

        public enum InsertOutcome: Hashable, Sendable {
            case inserted
            case updated
            /// Bucket full: the newcomer was cached; probe `leastRecentlySeen` (unless `nil`: a probe
            /// is already under way) and call `probeFinished`.
            case cached(probe: Entry?)
            /// Bucket full, but `removed` was disconnected: the newcomer took its place.
            case replaced(removed: PeerId)
            case isSelf
        }

        public let localKey: Key
        /// Bucket size, Kademlia `k` (kad-dht spec: 20).
        public let k: Int
        public let replacementCacheSize: Int
        var buckets: [Bucket] = []
        public private(set) var count = 0

        public init(localKey: Key, k: Int = 20, replacementCacheSize: Int = 10) {
            self.localKey = localKey; self.k = k; self.replacementCacheSize = replacementCacheSize
        }

        /// Index of the bucket that holds `key` (common prefix length with the local key), nil for ourselves.
        public func bucketIndex(of key: Key) -> Int? {
            let lz = localKey.distance(to: key).leadingZeroBitCount
            return lz == 256 ? nil : lz
        }

        public var bucketCount: Int { buckets.count }

        public func entry(for peer: PeerId, key: Key) -> Entry? {
            guard let b = bucketIndex(of: key), b < buckets.count else { return nil }
            return buckets[b].entries.first { $0.peer == peer }
        }

        public func contains(_ peer: PeerId, key: Key) -> Bool { entry(for: peer, key: key) != nil }

        public var allEntries: [Entry] { buckets.flatMap(\.entries) }

        /// Adds or refreshes a peer we just heard from (it answered us, or asked us and is a server).
        public mutating func insertOrUpdate(_ peer: PeerId, key: Key, addresses: [[UInt8]], now: Instant) -> InsertOutcome {
            guard let b = bucketIndex(of: key) else { return .isSelf }
            while buckets.count <= b { buckets.append(Bucket()) }
            if let i = buckets[b].entries.firstIndex(where: { $0.peer == peer }) {
                var e = buckets[b].entries.remove(at: i)
                e.lastSeen = now
                e.failures = 0
                e.connected = true
                if !addresses.isEmpty { e.addresses = addresses }
                buckets[b].entries.append(e)
                return .updated
            }
            let e = Entry(peer: peer, key: key, addresses: addresses, lastSeen: now, failures: 0)
            if buckets[b].entries.count < k {
                buckets[b].entries.append(e)
                count += 1
                return .inserted
            }
            if let i = buckets[b].entries.firstIndex(where: { !$0.connected && $0.peer != buckets[b].probing }) {
                let gone = buckets[b].entries.remove(at: i).peer
                buckets[b].entries.append(e)
                buckets[b].replacements.removeAll { $0.peer == peer }
                return .replaced(removed: gone)
            }
            buckets[b].replacements.removeAll { $0.peer == peer }
            buckets[b].replacements.append(e)
            if buckets[b].replacements.count > replacementCacheSize { buckets[b].replacements.removeFirst() }
            if buckets[b].probing != nil { return .cached(probe: nil) }
            let lrs = buckets[b].entries[0]
            buckets[b].probing = lrs.peer
            return .cached(probe: lrs)
        }

        /// The outcome of probing a least-recently-seen entry. On failure it is replaced by the most
        /// recent replacement; returns (removed, added).
        public mutating func probeFinished(_ peer: PeerId, key: Key, alive: Bool, now: Instant) -> (removed: PeerId?, added: PeerId?) {
            guard let b = bucketIndex(of: key), b < buckets.count else { return (nil, nil) }
            if buckets[b].probing == peer { buckets[b].probing = nil }
            if alive {
                _ = insertOrUpdate(peer, key: key, addresses: [], now: now)
                return (nil, nil)
            }
            return evict(peer, bucket: b)
        }

        /// A request to `peer` failed. It is replaced at once when the bucket has a replacement
        /// waiting; otherwise it stays (a partition may heal) until `maxFailures` in a row.
        public mutating func recordFailure(_ peer: PeerId, key: Key, maxFailures: Int) -> (removed: PeerId?, added: PeerId?) {
            guard let b = bucketIndex(of: key), b < buckets.count,
                  let i = buckets[b].entries.firstIndex(where: { $0.peer == peer }) else {
                if let b = bucketIndex(of: key), b < buckets.count { buckets[b].replacements.removeAll { $0.peer == peer } }
                return (nil, nil)
            }
            buckets[b].entries[i].failures += 1
            if !buckets[b].replacements.isEmpty || buckets[b].entries[i].failures >= maxFailures {
                return evict(peer, bucket: b)
            }
            return (nil, nil)
        }

        /// The last connection to `peer` closed (it stays, marked, until a newcomer needs its place).
        public mutating func markDisconnected(_ peer: PeerId, key: Key) {
            guard let b = bucketIndex(of: key), b < buckets.count,
                  let i = buckets[b].entries.firstIndex(where: { $0.peer == peer }) else { return }
            buckets[b].entries[i].connected = false
        }

        public mutating func remove(_ peer: PeerId, key: Key) -> Bool {
            guard let b = bucketIndex(of: key), b < buckets.count else { return false }
            return evict(peer, bucket: b).removed != nil
        }

        private mutating func evict(_ peer: PeerId, bucket b: Int) -> (removed: PeerId?, added: PeerId?) {
            guard let i = buckets[b].entries.firstIndex(where: { $0.peer == peer }) else { return (nil, nil) }
            buckets[b].entries.remove(at: i)
            count -= 1
            if buckets[b].probing == peer { buckets[b].probing = nil }
            if let r = buckets[b].replacements.popLast() {
                buckets[b].entries.append(r)
                count += 1
                return (peer, r.peer)
            }
            return (peer, nil)
        }

        /// The `count` known peers closest to `target`, closest first.
        ///
        /// Visits buckets in distance order instead of sorting the whole table: for
        /// d = local ⊕ target with c = its leading zeros, peers of bucket c are all closer than
        /// 2^(255-c); those of buckets i > c all lie in [2^(255-c), 2^(256-c)); bucket i < c lies
        /// in [2^(255-i), 2^(256-i)). So: bucket c, then all buckets > c, then c-1, c-2, ..., 0,
        /// sorting each group only.
        public func closest(to target: Key, count wanted: Int, excluding excluded: PeerId? = nil) -> [Entry] {
            guard wanted > 0, !buckets.isEmpty else { return [] }
            var out: [Entry] = []
            out.reserveCapacity(wanted)
            func take(_ group: [Entry]) {
                let sorted = group.sorted { $0.key.distance(to: target) < $1.key.distance(to: target) }
                for e in sorted where e.peer != excluded {
                    out.append(e)
                    if out.count == wanted { return }
                }
            }
            let c = min(localKey.distance(to: target).leadingZeroBitCount, 256)
            if c < buckets.count { take(buckets[c].entries) }
            if out.count < wanted && c + 1 < buckets.count {
                take(buckets[(c + 1)...].flatMap(\.entries))
            }
            var i = min(c, buckets.count) - 1
            while out.count < wanted && i >= 0 {
                take(buckets[i].entries)
                i -= 1
            }
            return out
        }

        /// Buckets that have seen no lookup since `before` and hold peers (refresh candidates).
        public func staleBuckets(before: Instant) -> [Int] {
            buckets.indices.filter { !buckets[$0].entries.isEmpty && buckets[$0].lastLookup < before }
        }

        /// Notes that a lookup touched the bucket of `target`.
        public mutating func noteLookup(toward target: Key, now: Instant) {
            guard let b = bucketIndex(of: target) else { return }
            if b < buckets.count { buckets[b].lastLookup = now }
        }
    }
}
