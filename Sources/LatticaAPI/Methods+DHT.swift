/// The control methods of the DHT service.
extension Methods {
    public enum DHTPut: ControlMethod {
        public static let name = "dht.put"
        public typealias Result = DHTPutResult
        public struct Params: ControlParams, Equatable {
            public var key: String
            /// The value as text, or `valueHex` for bytes (exactly one of them).
            public var value: String?
            public var valueHex: String?
            public var quorum: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case key, value, valueHex = "value_hex", quorum }
            public static let ranges = ["quorum": 1...20]
            public static let maxLengths = ["value": 65_000, "value_hex": 130_000]
            public static let maxValueBytes = 65_000
            public init(key: String, value: String? = nil, valueHex: String? = nil, quorum: Int? = nil) {
                self.key = key; self.value = value; self.valueHex = valueHex; self.quorum = quorum
            }
            public func validate() throws(ControlErrorBody) {
                try require("key", key)
                try check("quorum", quorum)
                guard (value == nil) != (valueHex == nil) else { throw .badRequest("give exactly one of 'value' and 'value_hex'") }
            }
        }
    }

    public enum DHTGet: ControlMethod {
        public static let name = "dht.get"
        public typealias Result = DHTGetResult
        public struct Params: ControlParams, Equatable {
            public var key: String
            public var quorum: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case key, quorum }
            public static let ranges = ["quorum": 1...20]
            public init(key: String, quorum: Int? = nil) { self.key = key; self.quorum = quorum }
            public func validate() throws(ControlErrorBody) { try require("key", key); try check("quorum", quorum) }
        }
    }

    public enum DHTProvide: ControlMethod {
        public static let name = "dht.provide"
        public typealias Params = DHTKeyParams
        public typealias Result = DHTProvideResult
    }

    public enum DHTProviders: ControlMethod {
        public static let name = "dht.providers"
        public typealias Params = DHTKeyParams
        public typealias Result = DHTProvidersResult
    }

    public enum DHTTable: ControlMethod {
        public static let name = "dht.table"
        public typealias Params = NoParams
        public typealias Result = DHTTableResult
    }
}

/// Params of DHT methods that take only a key.
public struct DHTKeyParams: ControlParams, Equatable {
    public var key: String
    public enum CodingKeys: String, CodingKey, CaseIterable { case key }
    public init(key: String) { self.key = key }
    public func validate() throws(ControlErrorBody) { try require("key", key) }
}

/// `dht.put`: where the record was stored.
public struct DHTPutResult: Codable, Sendable, Equatable {
    public var key: String
    public var storedOn: Int
    public var quorum: Int
    public var ms: Double
    enum CodingKeys: String, CodingKey { case key, storedOn = "stored_on", quorum, ms }
    public init(key: String, storedOn: Int, quorum: Int, ms: Double) {
        self.key = key; self.storedOn = storedOn; self.quorum = quorum; self.ms = ms
    }
}

/// `dht.get`: the best record found.
public struct DHTGetResult: Codable, Sendable, Equatable {
    public var key: String
    /// The value as text when it is UTF-8, else nil (see `valueHex`).
    public var value: String?
    public var valueHex: String
    /// How the value was unwrapped: `raw`, `signed`, or `lattica` (ValueWithTime + bytes pickle,
    /// read by a bounded parser, never unpickled).
    public var encoding: String
    public var copies: Int
    public var ms: Double
    enum CodingKeys: String, CodingKey { case key, value, valueHex = "value_hex", encoding, copies, ms }
    public init(key: String, value: String?, valueHex: String, encoding: String, copies: Int, ms: Double) {
        self.key = key; self.value = value; self.valueHex = valueHex; self.encoding = encoding; self.copies = copies; self.ms = ms
    }
}

/// `dht.provide`: how many peers were told.
public struct DHTProvideResult: Codable, Sendable, Equatable {
    public var key: String
    public var told: Int
    public init(key: String, told: Int) { self.key = key; self.told = told }
}

/// `dht.providers`: who provides the key.
public struct DHTProvidersResult: Codable, Sendable, Equatable {
    public var key: String
    public var providers: [DHTPeer]
    public init(key: String, providers: [DHTPeer]) { self.key = key; self.providers = providers }
}

public struct DHTPeer: Codable, Sendable, Equatable {
    public var peerId: String
    public var addrs: [String]
    enum CodingKeys: String, CodingKey { case peerId = "peer_id", addrs }
    public init(peerId: String, addrs: [String]) { self.peerId = peerId; self.addrs = addrs }
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
        public var peerId: String
        public var ageSeconds: Double
        public var connected: Bool
        enum CodingKeys: String, CodingKey { case peerId = "peer_id", ageSeconds = "age_s", connected }
        public init(peerId: String, ageSeconds: Double, connected: Bool) { self.peerId = peerId; self.ageSeconds = ageSeconds; self.connected = connected }
    }
    public var protocolId: String
    public var mode: String
    public var size: Int
    public var buckets: [Bucket]
    enum CodingKeys: String, CodingKey { case protocolId = "protocol_id", mode, size, buckets }
    public init(protocolId: String, mode: String, size: Int, buckets: [Bucket]) {
        self.protocolId = protocolId; self.mode = mode; self.size = size; self.buckets = buckets
    }
}
