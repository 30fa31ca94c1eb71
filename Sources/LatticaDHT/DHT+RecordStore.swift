public import LatticaCore

extension DHT {
    /// A stored value record with its bookkeeping (not on the wire).
    public struct StoredRecord: Hashable, Sendable {
        public var record: Record
        /// The peer that sent it to us (the publisher for limits), or ourselves.
        public var storedBy: PeerId
        public var expires: Instant
        /// True for records we published ourselves (we republish them).
        public var isLocal: Bool
        public init(record: Record, storedBy: PeerId, expires: Instant, isLocal: Bool) {
            self.record = record; self.storedBy = storedBy; self.expires = expires; self.isLocal = isLocal
        }
    }

    public struct ProviderRecord: Hashable, Sendable {
        public var key: [UInt8]
        public var provider: PeerInfo
        public var expires: Instant
        public var isLocal: Bool
        public init(key: [UInt8], provider: PeerInfo, expires: Instant, isLocal: Bool) {
            self.key = key; self.provider = provider; self.expires = expires; self.isLocal = isLocal
        }
    }

    public enum RecordRejection: Hashable, Sendable {
        case valueTooLarge(Int)
        case storeFull
        case perPeerCountLimit
        case perPeerByteLimit
        case invalid(String)
        case notNewer
        case keyMismatch
    }

    /// A change of the record store, for the shell to persist (`Directive.persist`). Applied in
    /// order to a copy of the store (or to SQLite) it yields the instance's store.
    public enum StoreChange: Hashable, Sendable {
        /// Store or replace the record under its key.
        case putRecord(StoredRecord)
        /// Store or replace `provider` for its key.
        case putProvider(ProviderRecord)
        /// Drop every record and provider that expires at or before `now`.
        case removeExpired(now: Instant)
    }

    public struct StoreLimits: Hashable, Sendable {
        /// rust-libp2p MemoryStore defaults: 1024 records, 65 KiB values, 20 providers per key.
        public var maxRecords = 1024
        public var maxValueBytes = 65 * 1024
        public var maxProvidersPerKey = 20
        public var maxProviderKeys = 1024
        /// Ours: a single remote peer may hold at most this many records / bytes in our store.
        public var maxRecordsPerPeer = 32
        public var maxBytesPerPeer = 256 * 1024
        public init() {}
    }

    /// Storage behind the DHT (in memory here; SQLite in LatticaStore later). Validation happens
    /// before `put`; the store enforces limits and expiry.
    public protocol RecordStore: Sendable {
        func get(_ key: [UInt8], now: Instant) -> StoredRecord?
        /// Stores or replaces; rejects when a limit would be exceeded.
        mutating func put(_ record: StoredRecord, now: Instant) -> RecordRejection?
        mutating func remove(_ key: [UInt8])
        mutating func addProvider(_ p: ProviderRecord, now: Instant) -> RecordRejection?
        func providers(for key: [UInt8], now: Instant) -> [ProviderRecord]
        /// Drops expired records and providers; returns how many.
        mutating func removeExpired(now: Instant) -> Int
        /// Records and provider keys we published ourselves (for republishing).
        func localRecords() -> [StoredRecord]
        func localProviderKeys() -> [[UInt8]]
        var recordCount: Int { get }
    }

    /// In-memory `RecordStore` with per-publisher count and byte limits.
    public struct MemoryRecordStore: RecordStore {
        public var limits: StoreLimits
        public let localPeer: PeerId
        private var records: [[UInt8]: StoredRecord] = [:]
        private var providers: [[UInt8]: [ProviderRecord]] = [:]
        private var perPeerCount: [PeerId: Int] = [:]
        private var perPeerBytes: [PeerId: Int] = [:]

        public init(localPeer: PeerId, limits: StoreLimits = .init()) { self.localPeer = localPeer; self.limits = limits }

        public var recordCount: Int { records.count }

        public func get(_ key: [UInt8], now: Instant) -> StoredRecord? {
            guard let r = records[key], r.expires > now else { return nil }
            return r
        }

        public mutating func put(_ r: StoredRecord, now: Instant) -> RecordRejection? {
            let size = r.record.key.count + r.record.value.count
            guard r.record.value.count <= limits.maxValueBytes else { return .valueTooLarge(r.record.value.count) }
            let old = records[r.record.key]
            let isLocal = r.storedBy == localPeer
            if !isLocal {
                let oldShare = old?.storedBy == r.storedBy ? 1 : 0
                let oldBytes = old?.storedBy == r.storedBy ? (old!.record.key.count + old!.record.value.count) : 0
                if perPeerCount[r.storedBy, default: 0] - oldShare + 1 > limits.maxRecordsPerPeer { return .perPeerCountLimit }
                if perPeerBytes[r.storedBy, default: 0] - oldBytes + size > limits.maxBytesPerPeer { return .perPeerByteLimit }
            }
            if old == nil && records.count >= limits.maxRecords { return .storeFull }
            if let old { account(old, sign: -1) }
            records[r.record.key] = r
            account(r, sign: 1)
            return nil
        }

        private mutating func account(_ r: StoredRecord, sign: Int) {
            guard r.storedBy != localPeer else { return }
            perPeerCount[r.storedBy, default: 0] += sign
            perPeerBytes[r.storedBy, default: 0] += sign * (r.record.key.count + r.record.value.count)
            if perPeerCount[r.storedBy] == 0 { perPeerCount[r.storedBy] = nil; perPeerBytes[r.storedBy] = nil }
        }

        public mutating func remove(_ key: [UInt8]) {
            if let old = records.removeValue(forKey: key) { account(old, sign: -1) }
        }

        public mutating func addProvider(_ p: ProviderRecord, now: Instant) -> RecordRejection? {
            var list = providers[p.key] ?? []
            if let i = list.firstIndex(where: { $0.provider.id == p.provider.id }) {
                list[i] = p
            } else {
                if list.isEmpty && providers.count >= limits.maxProviderKeys { return .storeFull }
                guard list.count < limits.maxProvidersPerKey else { return .storeFull }
                list.append(p)
            }
            providers[p.key] = list
            return nil
        }

        public func providers(for key: [UInt8], now: Instant) -> [ProviderRecord] {
            (providers[key] ?? []).filter { $0.expires > now }
        }

        public mutating func removeExpired(now: Instant) -> Int {
            var n = 0
            for (k, r) in records where r.expires <= now { remove(k); n += 1 }
            for (k, list) in providers {
                let kept = list.filter { $0.expires > now }
                n += list.count - kept.count
                providers[k] = kept.isEmpty ? nil : kept
            }
            return n
        }

        public func localRecords() -> [StoredRecord] { records.values.filter(\.isLocal).sorted { $0.record.key.lexicographicallyPrecedes($1.record.key) } }
        public func localProviderKeys() -> [[UInt8]] {
            providers.filter { $0.value.contains(where: \.isLocal) }.map(\.key).sorted { $0.lexicographicallyPrecedes($1) }
        }
    }
}
