/// The control methods of the CRDT store (`lattica meta …`, `lattica sync`). Docs/CRDT.md has the
/// namespaces and their write rules; Docs/OPERATIONS.md the params.
extension Methods {
    /// `meta.set PATH VALUE`: an LWW register (or, with `multi_value`, a multi-value register that
    /// keeps concurrent writes visible). `type` says how `value` is read: `string` (default),
    /// `int`, `bool`, `hex` (bytes).
    public enum MetaSet: ControlMethod {
        public static let name = "meta.set"
        public typealias Result = MetaWriteResult
        public struct Params: ControlParams, Equatable {
            public var path: String
            public var value: String
            public var type: String?
            public var multiValue: Bool?
            public enum CodingKeys: String, CodingKey, CaseIterable { case path, value, type, multiValue = "multi_value" }
            public static let maxLengths = ["path": 256, "value": 8192]
            public init(path: String, value: String, type: String? = nil, multiValue: Bool? = nil) {
                self.path = path; self.value = value; self.type = type; self.multiValue = multiValue
            }
            public func validate() throws(ControlErrorBody) { try require("path", path); try MetaValueType.check(type) }
        }
    }

    /// `meta.add PATH ELEMENT` / `meta.remove PATH ELEMENT`: an OR-set (add wins over a
    /// concurrent remove).
    public enum MetaAdd: ControlMethod {
        public static let name = "meta.add"
        public typealias Params = MetaElementParams
        public typealias Result = MetaWriteResult
    }

    public enum MetaRemove: ControlMethod {
        public static let name = "meta.remove"
        public typealias Params = MetaElementParams
        public typealias Result = MetaWriteResult
    }

    /// `meta.incr PATH [BY]`: a PN-counter.
    public enum MetaIncrement: ControlMethod {
        public static let name = "meta.incr"
        public typealias Result = MetaWriteResult
        public struct Params: ControlParams, Equatable {
            public var path: String
            public var by: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case path, by }
            public static let ranges = ["by": -1_000_000_000...1_000_000_000]
            public static let maxLengths = ["path": 256]
            public init(path: String, by: Int? = nil) { self.path = path; self.by = by }
            public func validate() throws(ControlErrorBody) { try require("path", path); try check("by", by) }
        }
    }

    public enum MetaGet: ControlMethod {
        public static let name = "meta.get"
        public typealias Result = MetaGetResult
        public struct Params: ControlParams, Equatable {
            public var path: String
            public enum CodingKeys: String, CodingKey, CaseIterable { case path }
            public static let maxLengths = ["path": 256]
            public init(path: String) { self.path = path }
            public func validate() throws(ControlErrorBody) { try require("path", path) }
        }
    }

    /// `meta.list [PREFIX]`: the paths that hold something.
    public enum MetaList: ControlMethod {
        public static let name = "meta.list"
        public typealias Result = MetaListResult
        public struct Params: ControlParams, Equatable {
            public var prefix: String?
            public enum CodingKeys: String, CodingKey, CaseIterable { case prefix }
            public static let maxLengths = ["prefix": 256]
            public init(prefix: String? = nil) { self.prefix = prefix }
        }
    }

    /// `meta.log`: the most recent deltas, newest first.
    public enum MetaLog: ControlMethod {
        public static let name = "meta.log"
        public typealias Result = MetaLogResult
        public struct Params: ControlParams, Equatable {
            public var limit: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case limit }
            public static let ranges = ["limit": 1...1_000]
            public init(limit: Int? = nil) { self.limit = limit }
            public func validate() throws(ControlErrorBody) { try check("limit", limit) }
        }
    }

    /// `sync`: the state of replication; `now` starts an anti-entropy round with every peer.
    public enum Sync: ControlMethod {
        public static let name = "sync"
        public typealias Result = SyncResult
        public struct Params: ControlParams, Equatable {
            public var now: Bool?
            public enum CodingKeys: String, CodingKey, CaseIterable { case now }
            public init(now: Bool? = nil) { self.now = now }
        }
    }
}

/// How `meta.set` reads its value.
public enum MetaValueType {
    public static let all = ["string", "int", "bool", "hex"]
    static func check(_ t: String?) throws(ControlErrorBody) {
        guard let t, !all.contains(t) else { return }
        throw .badRequest("'type' is '\(t.prefix(32))'; allowed: \(all.joined(separator: ", "))")
    }
}

public struct MetaElementParams: ControlParams, Equatable {
    public var path: String
    public var element: String
    public var type: String?
    public enum CodingKeys: String, CodingKey, CaseIterable { case path, element, type }
    public static let maxLengths = ["path": 256, "element": 8192]
    public init(path: String, element: String, type: String? = nil) { self.path = path; self.element = element; self.type = type }
    public func validate() throws(ControlErrorBody) { try require("path", path); try MetaValueType.check(type) }
}

/// A write that is applied, signed and persisted (acknowledged): it survives `kill -9` from here.
public struct MetaWriteResult: Codable, Sendable, Equatable {
    public var path: String
    public var author: String
    public var seq: UInt64
    /// The write's hybrid-logical-clock time, `wall_ms.logical` (with `author`, its LWW order).
    public var clock: String
    public var stateHash: String
    enum CodingKeys: String, CodingKey { case path, author, seq, clock, stateHash = "state_hash" }
    public init(path: String, author: String, seq: UInt64, clock: String, stateHash: String) {
        self.path = path; self.author = author; self.seq = seq; self.clock = clock; self.stateHash = stateHash
    }
}

public struct MetaGetResult: Codable, Sendable, Equatable {
    public var path: String
    /// `register`, `map`, `set`, `counter`, `multi_value`, or `none`.
    public var kind: String
    /// A register's or counter's value (nil when empty).
    public var value: String?
    /// A set's elements, a multi-value register's concurrent values, or a map's `key=value`s.
    public var elements: [String]
    /// Who wrote the visible value, and the hybrid-logical-clock time (`wall_ms.logical`).
    public var author: String?
    public var clock: String?
    /// Values that lost to the visible one only by the tie-break or are concurrent with it
    /// (multi-value registers: all but the first; a `kv/…` path written as two kinds: the others).
    public var conflicts: [String]
    enum CodingKeys: String, CodingKey { case path, kind, value, elements, author, clock, conflicts }
    public init(path: String, kind: String, value: String?, elements: [String], author: String?, clock: String?, conflicts: [String]) {
        self.path = path; self.kind = kind; self.value = value; self.elements = elements
        self.author = author; self.clock = clock; self.conflicts = conflicts
    }
}

public struct MetaListResult: Codable, Sendable, Equatable {
    public var paths: [String]
    public init(paths: [String]) { self.paths = paths }
}

public struct MetaLogResult: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var author: String
        public var seq: UInt64
        /// Wall-clock milliseconds of the delta's HLC time.
        public var timeMs: UInt64
        public var path: String
        public var op: String
        enum CodingKeys: String, CodingKey { case author, seq, timeMs = "time_ms", path, op }
        public init(author: String, seq: UInt64, timeMs: UInt64, path: String, op: String) {
            self.author = author; self.seq = seq; self.timeMs = timeMs; self.path = path; self.op = op
        }
    }
    public var entries: [Entry]
    public init(entries: [Entry]) { self.entries = entries }
}

public struct SyncResult: Codable, Sendable, Equatable {
    public struct Peer: Codable, Sendable, Equatable {
        public var peerId: String
        /// Deltas one side has that the other lacks, as of the peer's last version vector.
        public var lag: UInt64
        public var theyLack: UInt64
        public var weLack: UInt64
        /// Seconds since its version vector last arrived (nil: never).
        public var lastSyncSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case peerId = "peer_id", lag, theyLack = "they_lack", weLack = "we_lack", lastSyncSeconds = "last_sync_s"
        }
        public init(peerId: String, lag: UInt64, theyLack: UInt64, weLack: UInt64, lastSyncSeconds: Double?) {
            self.peerId = peerId; self.lag = lag; self.theyLack = theyLack; self.weLack = weLack; self.lastSyncSeconds = lastSyncSeconds
        }
    }
    /// SHA-256 (hex) of the materialised state: equal on two nodes exactly when their states are.
    public var stateHash: String
    public var deltas: UInt64
    public var authors: Int
    public var paths: Int
    public var peers: [Peer]
    /// The in-memory log (Docs/CRDT.md §6.1): encoded bytes and deltas of every author's batches,
    /// and how often this node compacted its own; absent from daemons before compaction.
    public var logBytes: Int?
    public var logDeltas: Int?
    public var compactions: Int?
    enum CodingKeys: String, CodingKey {
        case stateHash = "state_hash", deltas, authors, paths, peers, logBytes = "log_bytes", logDeltas = "log_deltas", compactions
    }
    public init(stateHash: String, deltas: UInt64, authors: Int, paths: Int, peers: [Peer],
                logBytes: Int? = nil, logDeltas: Int? = nil, compactions: Int? = nil) {
        self.stateHash = stateHash; self.deltas = deltas; self.authors = authors; self.paths = paths; self.peers = peers
        self.logBytes = logBytes; self.logDeltas = logDeltas; self.compactions = compactions
    }
}
