import LatticaCore

/// Circuit Relay v2 (https://github.com/libp2p/specs/blob/master/relay/circuit-v2.md): the hop
/// protocol between a client and the relay (reservations, connection initiation), the stop
/// protocol between the relay and the target. Messages are varint length-prefixed protobufs.
public enum Relay {
    public static let hopProtocolID = "/libp2p/circuit/relay/0.2.0/hop"
    public static let stopProtocolID = "/libp2p/circuit/relay/0.2.0/stop"
    /// The spec does not bound messages; ours are far below this (a reservation with 32 addresses
    /// and a voucher is under 2 KiB).
    public static let maxMessageLength = 4096

    public enum Status: UInt64, Sendable, Equatable {
        case ok = 100
        case reservationRefused = 200
        case resourceLimitExceeded = 201
        case permissionDenied = 202
        case connectionFailed = 203
        case noReservation = 204
        case malformedMessage = 400
        case unexpectedMessage = 401
    }

    public struct Peer: Sendable, Equatable {
        public var id: PeerId
        public var addrs: [Multiaddr]
        public init(id: PeerId, addrs: [Multiaddr] = []) { self.id = id; self.addrs = addrs }
    }

    public struct Reservation: Sendable, Equatable {
        /// UTC Unix seconds.
        public var expire: UInt64
        /// The relay's public addresses with `/p2p/<relay>`, without `/p2p-circuit`.
        public var addrs: [Multiaddr]
        /// A signed envelope (`Relay.Voucher`), advisory.
        public var voucher: [UInt8]?
        public init(expire: UInt64, addrs: [Multiaddr], voucher: [UInt8]? = nil) {
            self.expire = expire; self.addrs = addrs; self.voucher = voucher
        }
    }

    public struct Limit: Sendable, Equatable {
        /// Seconds a circuit may stay open; 0 or nil: unlimited.
        public var duration: UInt32?
        /// Bytes per direction; 0 or nil: unlimited.
        public var data: UInt64?
        public init(duration: UInt32? = nil, data: UInt64? = nil) { self.duration = duration; self.data = data }
    }

    public struct HopMessage: Sendable, Equatable {
        public enum Kind: UInt64, Sendable { case reserve = 0, connect = 1, status = 2 }
        public var kind: Kind
        public var peer: Peer?
        public var reservation: Reservation?
        public var limit: Limit?
        public var status: Status?
        public init(kind: Kind, peer: Peer? = nil, reservation: Reservation? = nil, limit: Limit? = nil, status: Status? = nil) {
            self.kind = kind; self.peer = peer; self.reservation = reservation; self.limit = limit; self.status = status
        }
    }

    public struct StopMessage: Sendable, Equatable {
        public enum Kind: UInt64, Sendable { case connect = 0, status = 1 }
        public var kind: Kind
        public var peer: Peer?
        public var limit: Limit?
        public var status: Status?
        public init(kind: Kind, peer: Peer? = nil, limit: Limit? = nil, status: Status? = nil) {
            self.kind = kind; self.peer = peer; self.limit = limit; self.status = status
        }
    }

    public enum DecodeError: Error, Equatable, Sendable {
        case protobuf
        case missingType
        case unknownType(UInt64)
        case unknownStatus(UInt64)
        case badPeer
        case badAddress
        case tooManyAddresses
    }

    /// At most this many addresses in a peer or reservation (more are refused, not truncated).
    public static let maxAddresses = 32
}

// MARK: encoding

extension Relay.Peer {
    func writer() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.bytes(1, id.multihash)
        for a in addrs { w.bytes(2, a.bytes) }
        return w
    }

    init(decoding bytes: ArraySlice<UInt8>) throws(Relay.DecodeError) {
        var r = ProtobufReader(bytes)
        var id: PeerId?
        var addrs: [Multiaddr] = []
        while let f = try Relay.field(&r) {
            switch (f.field, f.bytesValue) {
            case (1, let b?):
                do { id = try PeerId(multihash: Array(b)) } catch { throw .badPeer }
            case (2, let b?):
                guard addrs.count < Relay.maxAddresses else { throw .tooManyAddresses }
                do { addrs.append(try Multiaddr(bytes: b)) } catch { throw .badAddress }
            default: continue
            }
        }
        guard let id else { throw .badPeer }
        self.init(id: id, addrs: addrs)
    }
}

extension Relay.Limit {
    func writer() -> ProtobufWriter {
        var w = ProtobufWriter()
        if let duration { w.uint64(1, UInt64(duration)) }
        if let data { w.uint64(2, data) }
        return w
    }

    init(decoding bytes: ArraySlice<UInt8>) throws(Relay.DecodeError) {
        var r = ProtobufReader(bytes)
        self.init()
        while let f = try Relay.field(&r) {
            switch (f.field, f.varintValue) {
            case (1, let v?): duration = UInt32(clamping: v)
            case (2, let v?): data = v
            default: continue
            }
        }
    }
}

extension Relay.Reservation {
    func writer() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.uint64(1, expire)
        for a in addrs { w.bytes(2, a.bytes) }
        if let voucher { w.bytes(3, voucher) }
        return w
    }

    init(decoding bytes: ArraySlice<UInt8>) throws(Relay.DecodeError) {
        var r = ProtobufReader(bytes)
        var expire: UInt64 = 0
        var addrs: [Multiaddr] = []
        var voucher: [UInt8]?
        while let f = try Relay.field(&r) {
            switch f.field {
            case 1: expire = f.varintValue ?? 0
            case 2:
                guard let b = f.bytesValue else { continue }
                guard addrs.count < Relay.maxAddresses else { throw .tooManyAddresses }
                do { addrs.append(try Multiaddr(bytes: b)) } catch { throw .badAddress }
            case 3: voucher = f.bytesValue.map(Array.init)
            default: continue
            }
        }
        self.init(expire: expire, addrs: addrs, voucher: voucher)
    }
}

extension Relay {
    static func field(_ r: inout ProtobufReader) throws(DecodeError) -> ProtobufField? {
        do { return try r.next() } catch { throw .protobuf }
    }

    static func status(_ v: UInt64) throws(DecodeError) -> Status {
        guard let s = Status(rawValue: v) else { throw .unknownStatus(v) }
        return s
    }
}

extension Relay.HopMessage {
    public func encoded() -> [UInt8] {
        var w = ProtobufWriter()
        w.uint64(1, kind.rawValue)
        if let peer { w.message(2, peer.writer()) }
        if let reservation { w.message(3, reservation.writer()) }
        if let limit { w.message(4, limit.writer()) }
        if let status { w.uint64(5, status.rawValue) }
        return w.bytes
    }

    public func framed() -> [UInt8] { FramedReader.frame(encoded()) }

    public init(decoding bytes: some Collection<UInt8>) throws(Relay.DecodeError) {
        var r = ProtobufReader(Array(bytes))
        var kind: Kind?
        self.init(kind: .status)
        while let f = try Relay.field(&r) {
            switch f.field {
            case 1:
                guard let v = f.varintValue else { throw .protobuf }
                guard let k = Kind(rawValue: v) else { throw .unknownType(v) }
                kind = k
            case 2: if let b = f.bytesValue { peer = try Relay.Peer(decoding: b) }
            case 3: if let b = f.bytesValue { reservation = try Relay.Reservation(decoding: b) }
            case 4: if let b = f.bytesValue { limit = try Relay.Limit(decoding: b) }
            case 5: if let v = f.varintValue { status = try Relay.status(v) }
            default: continue
            }
        }
        guard let kind else { throw .missingType }
        self.kind = kind
    }
}

extension Relay.StopMessage {
    public func encoded() -> [UInt8] {
        var w = ProtobufWriter()
        w.uint64(1, kind.rawValue)
        if let peer { w.message(2, peer.writer()) }
        if let limit { w.message(3, limit.writer()) }
        if let status { w.uint64(4, status.rawValue) }
        return w.bytes
    }

    public func framed() -> [UInt8] { FramedReader.frame(encoded()) }

    public init(decoding bytes: some Collection<UInt8>) throws(Relay.DecodeError) {
        var r = ProtobufReader(Array(bytes))
        var kind: Kind?
        self.init(kind: .status)
        while let f = try Relay.field(&r) {
            switch f.field {
            case 1:
                guard let v = f.varintValue else { throw .protobuf }
                guard let k = Kind(rawValue: v) else { throw .unknownType(v) }
                kind = k
            case 2: if let b = f.bytesValue { peer = try Relay.Peer(decoding: b) }
            case 3: if let b = f.bytesValue { limit = try Relay.Limit(decoding: b) }
            case 4: if let v = f.varintValue { status = try Relay.status(v) }
            default: continue
            }
        }
        guard let kind else { throw .missingType }
        self.kind = kind
    }
}

// MARK: reservation vouchers

extension Relay {
    /// A reservation voucher: the payload of a signed envelope (domain `libp2p-relay-rsvp`,
    /// payload type 0x0302), signed by the relay. Advisory in the spec; we issue them and do not
    /// require them.
    public struct Voucher: Sendable, Equatable {
        public static let domain = "libp2p-relay-rsvp"
        /// The two raw bytes `03 02`, as go-libp2p (`circuitv2/proto/voucher.go`: `RecordCodec =
        /// []byte{0x03, 0x02}`) and py-libp2p (`relay/circuit_v2/resources.py`: `VOUCHER_PAYLOAD_TYPE
        /// = bytes([0x03, 0x02])`) write and check it: not the uvarint of 0x0302 (`82 06`), which
        /// py-libp2p rejects as a foreign payload type.
        public static let payloadType: [UInt8] = [0x03, 0x02]
        public var relay: PeerId
        public var peer: PeerId
        public var expiration: UInt64

        public init(relay: PeerId, peer: PeerId, expiration: UInt64) {
            self.relay = relay; self.peer = peer; self.expiration = expiration
        }

        public func payload() -> [UInt8] {
            var w = ProtobufWriter()
            w.bytes(1, relay.multihash)
            w.bytes(2, peer.multihash)
            w.uint64(3, expiration)
            return w.bytes
        }

        /// The bytes an envelope's signature covers (RFC 0002: each part varint length-prefixed).
        public static func signedBytes(payload: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for part in [Array(domain.utf8), payloadType, payload] {
                Varint.encode(UInt64(part.count), into: &out)
                out.append(contentsOf: part)
            }
            return out
        }

        /// The envelope: public key (protobuf), payload type, payload, signature.
        public static func envelope(publicKey: [UInt8], payload: [UInt8], signature: [UInt8]) -> [UInt8] {
            var w = ProtobufWriter()
            w.bytes(1, publicKey)
            w.bytes(2, payloadType)
            w.bytes(3, payload)
            w.bytes(5, signature)
            return w.bytes
        }
    }
}
