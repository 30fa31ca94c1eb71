public import LatticaCore

extension DHT {
    /// The kad-dht RPC message (libp2p/specs kad-dht "RPC messages"; rust-libp2p `dht.proto`).
    ///
    /// Field numbers: type=1, key=2, record=3, closerPeers=8, providerPeers=9, clusterLevelRaw=10.
    /// Encoded proto3-style: fields in number order, default values omitted.
    public struct Message: Hashable, Sendable {
        public enum MessageType: UInt64, Hashable, Sendable {
            case putValue = 0, getValue = 1, addProvider = 2, getProviders = 3, findNode = 4, ping = 5
        }

        public var type: MessageType
        public var key: [UInt8]
        public var record: Record?
        public var closerPeers: [Peer]
        public var providerPeers: [Peer]
        /// "NOT USED" by the spec; carried for byte-exact round trips (non-negative only).
        public var clusterLevelRaw: UInt32

        public init(type: MessageType, key: [UInt8] = [], record: Record? = nil, closerPeers: [Peer] = [],
                    providerPeers: [Peer] = [], clusterLevelRaw: UInt32 = 0) {
            self.type = type; self.key = key; self.record = record; self.closerPeers = closerPeers
            self.providerPeers = providerPeers; self.clusterLevelRaw = clusterLevelRaw
        }
    }

    /// `Message.Peer` {id=1, addrs=2 (repeated), connection=3}.
    public struct Peer: Hashable, Sendable {
        public enum Connection: UInt64, Hashable, Sendable {
            case notConnected = 0, connected = 1, canConnect = 2, cannotConnect = 3
        }
        public var id: PeerId
        public var addrs: [[UInt8]]
        public var connection: Connection
        public init(id: PeerId, addrs: [[UInt8]] = [], connection: Connection = .notConnected) {
            self.id = id; self.addrs = addrs; self.connection = connection
        }
        public var info: PeerInfo { PeerInfo(id: id, addresses: addrs) }
    }

    /// `Record` {key=1, value=2, timeReceived=5 (RFC 3339 string), publisher=666, ttl=777 (rust-libp2p)}.
    public struct Record: Hashable, Sendable {
        public var key: [UInt8]
        public var value: [UInt8]
        public var timeReceived: String
        /// rust-libp2p extension: the original publisher's PeerId bytes.
        public var publisher: [UInt8]
        /// rust-libp2p extension: remaining TTL in seconds (0 = absent).
        public var ttl: UInt32
        public init(key: [UInt8], value: [UInt8], timeReceived: String = "", publisher: [UInt8] = [], ttl: UInt32 = 0) {
            self.key = key; self.value = value; self.timeReceived = timeReceived; self.publisher = publisher; self.ttl = ttl
        }
    }

    /// Limits applied while decoding bytes from the network.
    public struct DecodeLimits: Hashable, Sendable {
        /// Largest message body accepted (rust-libp2p `DEFAULT_MAX_PACKET_SIZE` = 16 KiB).
        public var maxMessageBytes = 16 * 1024
        /// Most `closerPeers` + `providerPeers` entries accepted in one message.
        public var maxPeers = 40
        /// Most addresses kept per peer, and the largest address accepted.
        public var maxAddressesPerPeer = 16
        public var maxAddressBytes = 512
        public init() {}
    }

    public enum DecodeError: Error, Hashable, Sendable {
        case tooLarge(Int)
        case protobuf(String)
        case unknownMessageType(UInt64)
        case tooManyPeers(Int)
        case badField(String)
    }

    /// A decoded message plus how many peer entries were unusable (invalid PeerId) and dropped.
    public struct Decoded: Hashable, Sendable {
        public var message: Message
        public var droppedPeers: Int
    }
}

// MARK: - Encoding

extension DHT.Message {
    public func encoded() -> [UInt8] {
        var w = ProtobufWriter()
        if type != .putValue { w.uint64(1, type.rawValue) }
        if !key.isEmpty { w.bytes(2, key) }
        if let record { w.message(3, record.writer()) }
        for p in closerPeers { w.message(8, p.writer()) }
        for p in providerPeers { w.message(9, p.writer()) }
        if clusterLevelRaw != 0 { w.uint64(10, UInt64(clusterLevelRaw)) }
        return w.bytes
    }

    /// The message with its unsigned-varint length prefix, as written on the stream.
    public func framed() -> [UInt8] {
        let body = encoded()
        var out = Varint.encoded(UInt64(body.count))
        out.reserveCapacity(out.count + body.count)
        out.append(contentsOf: body)
        return out
    }

    /// Decodes one message body. Never traps; unknown fields are skipped (proto3 rules).
    public static func decode(_ bytes: ArraySlice<UInt8>, limits: DHT.DecodeLimits = .init()) throws(DHT.DecodeError) -> DHT.Decoded {
        guard bytes.count <= limits.maxMessageBytes else { throw .tooLarge(bytes.count) }
        var r = ProtobufReader(bytes)
        var type: MessageType = .putValue
        var m = DHT.Message(type: .putValue)
        var dropped = 0
        var peers = 0
        do {
            while let f = try r.next() {
                switch f {
                case .varint(1, let v):
                    guard let t = MessageType(rawValue: v) else { throw DHT.DecodeError.unknownMessageType(v) }
                    type = t
                case .bytes(2, let v): m.key = Array(v)
                case .bytes(3, let v): m.record = try DHT.Record.decode(v)
                case .bytes(8, let v), .bytes(9, let v):
                    peers += 1
                    guard peers <= limits.maxPeers else { throw DHT.DecodeError.tooManyPeers(peers) }
                    if let p = try DHT.Peer.decode(v, limits: limits) {
                        if f.field == 8 { m.closerPeers.append(p) } else { m.providerPeers.append(p) }
                    } else { dropped += 1 }
                case .varint(10, let v): m.clusterLevelRaw = UInt32(truncatingIfNeeded: v)
                default:
                    if [1, 2, 3, 8, 9, 10].contains(f.field) { throw DHT.DecodeError.badField("wire type of field \(f.field)") }
                }
            }
        } catch let e as DHT.DecodeError {
            throw e
        } catch let e as ProtobufError {
            throw .protobuf("\(e)")
        } catch {
            throw .protobuf("\(error)")
        }
        m.type = type
        return DHT.Decoded(message: m, droppedPeers: dropped)
    }
}

extension DHT.Peer {
    func writer() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.bytes(1, id.multihash)
        for a in addrs { w.bytes(2, a) }
        if connection != .notConnected { w.uint64(3, connection.rawValue) }
        return w
    }

    /// nil when the id is not a valid PeerId (the caller counts it as garbage).
    static func decode(_ bytes: ArraySlice<UInt8>, limits: DHT.DecodeLimits) throws -> DHT.Peer? {
        var r = ProtobufReader(bytes)
        var id: [UInt8]? = nil
        var addrs: [[UInt8]] = []
        var connection: Connection = .notConnected
        while let f = try r.next() {
            switch f {
            case .bytes(1, let v): id = Array(v)
            case .bytes(2, let v):
                if addrs.count < limits.maxAddressesPerPeer && v.count <= limits.maxAddressBytes { addrs.append(Array(v)) }
            case .varint(3, let v): connection = Connection(rawValue: v) ?? .notConnected
            default:
                if [1, 2, 3].contains(f.field) { throw DHT.DecodeError.badField("peer field \(f.field)") }
            }
        }
        guard let id, let peer = try? PeerId(multihash: id) else { return nil }
        return DHT.Peer(id: peer, addrs: addrs, connection: connection)
    }
}

extension DHT.Record {
    func writer() -> ProtobufWriter {
        var w = ProtobufWriter()
        if !key.isEmpty { w.bytes(1, key) }
        if !value.isEmpty { w.bytes(2, value) }
        if !timeReceived.isEmpty { w.string(5, timeReceived) }
        if !publisher.isEmpty { w.bytes(666, publisher) }
        if ttl != 0 { w.uint64(777, UInt64(ttl)) }
        return w
    }

    static func decode(_ bytes: ArraySlice<UInt8>) throws -> DHT.Record {
        var r = ProtobufReader(bytes)
        var rec = DHT.Record(key: [], value: [])
        while let f = try r.next() {
            switch f {
            case .bytes(1, let v): rec.key = Array(v)
            case .bytes(2, let v): rec.value = Array(v)
            case .bytes(5, let v): rec.timeReceived = String(decoding: v, as: UTF8.self)
            case .bytes(666, let v): rec.publisher = Array(v)
            case .varint(777, let v): rec.ttl = UInt32(truncatingIfNeeded: v)
            default:
                if [1, 2, 5, 666, 777].contains(f.field) { throw DHT.DecodeError.badField("record field \(f.field)") }
            }
        }
        return rec
    }
}

// MARK: - Framing

extension DHT {
    /// Splits a byte stream into unsigned-varint length-prefixed frames, refusing frames larger
    /// than `maxFrameBytes` before buffering them (the shell feeds stream bytes in).
    public struct FrameDecoder: Sendable {
        public enum Output: Hashable, Sendable {
            case frame([UInt8])
            case needMoreBytes
            case tooLarge(UInt64)
            case badLengthPrefix
        }
        public let maxFrameBytes: Int
        private var buffer: [UInt8] = []
        public init(maxFrameBytes: Int = 16 * 1024) { self.maxFrameBytes = maxFrameBytes }

        public mutating func append(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

        public mutating func next() -> Output {
            let prefix: (value: UInt64, length: Int)?
            do { prefix = try Varint.decode(buffer[...]) } catch { return .badLengthPrefix }
            guard let prefix else { return buffer.count > 9 ? .badLengthPrefix : .needMoreBytes }
            guard prefix.value <= UInt64(maxFrameBytes) else { return .tooLarge(prefix.value) }
            let total = prefix.length + Int(prefix.value)
            guard buffer.count >= total else { return .needMoreBytes }
            let frame = Array(buffer[prefix.length..<total])
            buffer.removeFirst(total)
            return .frame(frame)
        }
    }
}
