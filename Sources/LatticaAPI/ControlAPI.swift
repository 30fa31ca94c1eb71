import Foundation

/// The local control API between `lattica` and `latticad`: newline-delimited JSON over a Unix socket
/// (`<data-dir>/control.sock`, mode 0600). Docs/OPERATIONS.md describes it; bump `version` when a
/// request or result changes incompatibly.
///
/// Request:  `{"v":1,"id":7,"method":"status","params":{...}}` + `\n`
/// Response: `{"v":1,"id":7,"ok":true,"result":{...}}` + `\n`
///       or  `{"v":1,"id":7,"ok":false,"error":{"code":"bad_request","message":"..."}}` + `\n`
public enum ControlAPI {
    public static let version = 1
    /// Longest request or response line accepted, in bytes.
    public static let maxLineBytes = 4 << 20
}

/// A JSON value, for parameters and results whose shape depends on the method.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var doubleValue: Double? { if case .number(let d) = self { d } else { nil } }
}

public struct ControlRequest: Codable, Sendable {
    public var v: Int
    public var id: UInt64
    public var method: String
    public var params: JSONValue?

    public init(id: UInt64, method: String, params: JSONValue? = nil) {
        self.v = ControlAPI.version; self.id = id; self.method = method; self.params = params
    }
}

public struct ControlErrorBody: Codable, Sendable, Equatable {
    /// Machine-readable: `bad_request`, `unknown_method`, `unsupported_version`, `not_found`, `failed`.
    public var code: String
    public var message: String

    public init(code: String, message: String) { self.code = code; self.message = message }
}

public struct ControlResponse<Result: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var id: UInt64
    public var ok: Bool
    public var result: Result?
    public var error: ControlErrorBody?

    public init(id: UInt64, result: Result) {
        v = ControlAPI.version; self.id = id; ok = true; self.result = result; error = nil
    }

    public init(id: UInt64, error: ControlErrorBody) {
        v = ControlAPI.version; self.id = id; ok = false; result = nil; self.error = error
    }
}

/// `status`: who the daemon is and where it listens.
public struct StatusResult: Codable, Sendable, Equatable {
    public var peer_id: String
    public var listen_addrs: [String]
    public var version: String
    public var uptime_s: Double
    public var agent_version: String
    public var data_dir: String
    public var metrics_addr: String?
    public var connected_peers: Int

    public init(peer_id: String, listen_addrs: [String], version: String, uptime_s: Double,
                agent_version: String, data_dir: String, metrics_addr: String?, connected_peers: Int) {
        self.peer_id = peer_id; self.listen_addrs = listen_addrs; self.version = version
        self.uptime_s = uptime_s; self.agent_version = agent_version; self.data_dir = data_dir
        self.metrics_addr = metrics_addr; self.connected_peers = connected_peers
    }
}

public extension JSONEncoder {
    /// The encoder for control API lines: compact, keys sorted (stable output for scripts).
    static var controlAPI: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

/// One connected peer in `peers`.
public struct PeerEntry: Codable, Sendable, Equatable {
    public var peer_id: String
    /// The remote address of the connection.
    public var addr: String
    /// `inbound` or `outbound`.
    public var direction: String
    public var rtt_ms: Double?
    public var agent: String
    public var protocol_version: String
    public var protocols: [String]
    public var connected_s: Double

    public init(peer_id: String, addr: String, direction: String, rtt_ms: Double?, agent: String,
                protocol_version: String, protocols: [String], connected_s: Double) {
        self.peer_id = peer_id; self.addr = addr; self.direction = direction; self.rtt_ms = rtt_ms
        self.agent = agent; self.protocol_version = protocol_version; self.protocols = protocols; self.connected_s = connected_s
    }
}

/// `peers`: the connected peers.
public struct PeersResult: Codable, Sendable, Equatable {
    public var peers: [PeerEntry]
    public init(peers: [PeerEntry]) { self.peers = peers }
}

/// `connect` (params: `addr`): the peer we are now connected to.
public struct ConnectResult: Codable, Sendable, Equatable {
    public var peer_id: String
    public init(peer_id: String) { self.peer_id = peer_id }
}

/// `ping` (params: `peer`, `count`): round-trip times in milliseconds.
public struct PingResult: Codable, Sendable, Equatable {
    public var peer_id: String
    public var rtts_ms: [Double]
    public init(peer_id: String, rtts_ms: [Double]) { self.peer_id = peer_id; self.rtts_ms = rtts_ms }
}

/// `dht.put` (params: `key`, `value_hex` or `value`, `quorum`): where the record was stored.
public struct DHTPutResult: Codable, Sendable, Equatable {
    public var key: String
    public var stored_on: Int
    public var quorum: Int
    public var ms: Double
    public init(key: String, stored_on: Int, quorum: Int, ms: Double) {
        self.key = key; self.stored_on = stored_on; self.quorum = quorum; self.ms = ms
    }
}

/// `dht.get` (params: `key`, `quorum`): the best record found.
public struct DHTGetResult: Codable, Sendable, Equatable {
    public var key: String
    /// The value as text when it is UTF-8, else nil (see `value_hex`).
    public var value: String?
    public var value_hex: String
    /// How the value was unwrapped: `raw`, or `lattica` (ValueWithTime + bytes pickle, never unpickled otherwise).
    public var encoding: String
    public var copies: Int
    public var ms: Double
    public init(key: String, value: String?, value_hex: String, encoding: String, copies: Int, ms: Double) {
        self.key = key; self.value = value; self.value_hex = value_hex; self.encoding = encoding; self.copies = copies; self.ms = ms
    }
}

/// `dht.provide` (params: `key`).
public struct DHTProvideResult: Codable, Sendable, Equatable {
    public var key: String
    public var told: Int
    public init(key: String, told: Int) { self.key = key; self.told = told }
}

/// `dht.providers` (params: `key`).
public struct DHTProvidersResult: Codable, Sendable, Equatable {
    public var key: String
    public var providers: [DHTPeer]
    public init(key: String, providers: [DHTPeer]) { self.key = key; self.providers = providers }
}

public struct DHTPeer: Codable, Sendable, Equatable {
    public var peer_id: String
    public var addrs: [String]
    public init(peer_id: String, addrs: [String]) { self.peer_id = peer_id; self.addrs = addrs }
}

/// `dht.table`: the routing table.
public struct DHTTableResult: Codable, Sendable, Equatable {
    public struct Bucket: Codable, Sendable, Equatable {
        /// Leading bits shared with our key (higher is closer).
        public var index: Int
        public var peers: [BucketPeer]
        public init(index: Int, peers: [BucketPeer]) { self.index = index; self.peers = peers }
    }
    public struct BucketPeer: Codable, Sendable, Equatable {
        public var peer_id: String
        public var age_s: Double
        public var connected: Bool
        public init(peer_id: String, age_s: Double, connected: Bool) { self.peer_id = peer_id; self.age_s = age_s; self.connected = connected }
    }
    public var protocol_id: String
    public var mode: String
    public var size: Int
    public var buckets: [Bucket]
    public init(protocol_id: String, mode: String, size: Int, buckets: [Bucket]) {
        self.protocol_id = protocol_id; self.mode = mode; self.size = size; self.buckets = buckets
    }
}
