public import LatticaCore

/// identify (`/ipfs/id/1.0.0`) and identify push (`/ipfs/id/push/1.0.0`).
/// Spec: https://github.com/libp2p/specs/blob/master/identify/README.md. As rust-libp2p does
/// (`quick_protobuf_codec`), the message is one uvarint-length-prefixed protobuf, after which
/// the sender closes its side. rust-libp2p refuses messages above 4096 bytes, so `framed()` of
/// what we send should stay below that; we accept up to `Limits.maxMessageLength`.
public enum Identify {
    public static let protocolID = "/ipfs/id/1.0.0"
    public static let pushProtocolID = "/ipfs/id/push/1.0.0"
    /// rust-libp2p's receive limit; keep our own messages within it.
    public static let interoperableMessageLength = 4096

    public struct Limits: Sendable, Hashable {
        public var maxMessageLength = 64 * 1024
        public var maxAddresses = 100
        public var maxProtocols = 200
        public var maxStringLength = 1024
        public init() {}
    }

    public enum DecodeError: Error, Hashable, Sendable {
        case malformed
        case tooLong(Int)
        case tooManyAddresses
        case tooManyProtocols
        case stringTooLong
        /// The stream ended before a whole message arrived.
        case truncated
    }

    /// The Identify protobuf: publicKey=1, listenAddrs=2, protocols=3, observedAddr=4,
    /// protocolVersion=5, agentVersion=6, signedPeerRecord=8.
    public struct Message: Hashable, Sendable {
        public var protocolVersion: String?
        public var agentVersion: String?
        /// Protobuf-encoded libp2p `PublicKey`.
        public var publicKey: [UInt8]?
        public var listenAddrs: [Multiaddr]
        public var observedAddr: Multiaddr?
        public var protocols: [String]
        /// Kept opaque (we do not verify signed peer records).
        public var signedPeerRecord: [UInt8]?
        /// Listen addresses or the observed address that did not parse (skipped, like rust-libp2p).
        public var skippedAddresses = 0

        public init(protocolVersion: String? = nil, agentVersion: String? = nil, publicKey: [UInt8]? = nil,
                    listenAddrs: [Multiaddr] = [], observedAddr: Multiaddr? = nil, protocols: [String] = [],
                    signedPeerRecord: [UInt8]? = nil) {
            self.protocolVersion = protocolVersion
            self.agentVersion = agentVersion
            self.publicKey = publicKey
            self.listenAddrs = listenAddrs
            self.observedAddr = observedAddr
            self.protocols = protocols
            self.signedPeerRecord = signedPeerRecord
        }

        /// The sender's peer id, when `publicKey` decodes.
        public var peerId: PeerId? {
            guard let publicKey, let proto = try? PublicKeyProto(decoding: publicKey[...]) else { return nil }
            return PeerId(publicKey: proto)
        }

        public func encoded() -> [UInt8] {
            var w = ProtobufWriter()
            if let publicKey { w.bytes(1, publicKey) }
            for a in listenAddrs { w.bytes(2, a.bytes) }
            for p in protocols { w.string(3, p) }
            if let observedAddr { w.bytes(4, observedAddr.bytes) }
            if let protocolVersion { w.string(5, protocolVersion) }
            if let agentVersion { w.string(6, agentVersion) }
            if let signedPeerRecord { w.bytes(8, signedPeerRecord) }
            return w.bytes
        }

        /// `uvarint(length) || encoded()`, as written on the stream.
        public func framed() -> [UInt8] {
            let body = encoded()
            var out = Varint.encoded(UInt64(body.count))
            out += body
            return out
        }

        public init(decoding bytes: ArraySlice<UInt8>, limits: Limits = Limits()) throws(DecodeError) {
            self.init()
            guard bytes.count <= limits.maxMessageLength else { throw .tooLong(bytes.count) }
            func string(_ v: ArraySlice<UInt8>) throws(DecodeError) -> String {
                guard v.count <= limits.maxStringLength else { throw .stringTooLong }
                guard let s = String(validating: v, as: UTF8.self) else { throw .malformed }
                return s
            }
            var r = ProtobufReader(bytes)
            while true {
                let field: ProtobufField?
                do { field = try r.next() } catch { throw .malformed }
                guard let field else { break }
                switch field {
                case .bytes(1, let v): publicKey = Array(v)
                case .bytes(2, let v):
                    guard listenAddrs.count + skippedAddresses < limits.maxAddresses else { throw .tooManyAddresses }
                    if let a = try? Multiaddr(bytes: v) { listenAddrs.append(a) } else { skippedAddresses += 1 }
                case .bytes(3, let v):
                    guard protocols.count < limits.maxProtocols else { throw .tooManyProtocols }
                    protocols.append(try string(v))
                case .bytes(4, let v):
                    if let a = try? Multiaddr(bytes: v) { observedAddr = a } else { skippedAddresses += 1 }
                case .bytes(5, let v): protocolVersion = try string(v)
                case .bytes(6, let v): agentVersion = try string(v)
                case .bytes(8, let v): signedPeerRecord = Array(v)
                default:
                    // A known field with the wrong wire type is malformed; unknown fields are skipped.
                    if [1, 2, 3, 4, 5, 6, 8].contains(field.field) { throw .malformed }
                }
            }
        }
    }

    /// Collects one length-prefixed Identify message from stream bytes; bounded by the limits.
    public struct Reader: Sendable {
        public let limits: Limits
        var buffer: [UInt8] = []
        public private(set) var isDone = false

        public init(limits: Limits = Limits()) { self.limits = limits }

        /// Nil while more bytes are needed; the message (or error) once, then nil forever.
        public mutating func onBytes(_ bytes: some Collection<UInt8>) -> Result<Message, DecodeError>? {
            guard !isDone else { return nil }
            buffer.append(contentsOf: bytes)
            let decoded: (value: UInt64, length: Int)?
            do { decoded = try Varint.decode(buffer[...]) } catch { return finish(.failure(.malformed)) }
            guard let (length, n) = decoded else { return nil }
            guard length <= UInt64(limits.maxMessageLength) else { return finish(.failure(.tooLong(Int(clamping: length)))) }
            guard buffer.count - n >= Int(length) else { return nil }
            let body = buffer[n..<(n + Int(length))]
            do { return finish(.success(try Message(decoding: body, limits: limits))) } catch {
                return finish(.failure(error))
            }
        }

        /// The stream ended (FIN) without a whole message.
        public mutating func onFinished() -> Result<Message, DecodeError>? {
            guard !isDone else { return nil }
            return finish(.failure(.truncated))
        }

        private mutating func finish(_ r: Result<Message, DecodeError>) -> Result<Message, DecodeError> {
            isDone = true
            buffer = []
            return r
        }
    }
}

/// ping (`/ipfs/ping/1.0.0`): the dialer sends 32 random bytes, the listener echoes them.
/// Spec: https://github.com/libp2p/specs/blob/master/ping/ping.md
public enum Ping {
    public static let protocolID = "/ipfs/ping/1.0.0"
    public static let payloadLength = 32

    public enum Event: Hashable, Sendable {
        case rtt(Duration)
        /// The echo did not match what we sent: close the stream.
        case mismatch
    }

    /// The dialer side; one outstanding ping at a time on a stream.
    public struct Instance: Sendable {
        var rng: SeededRandom
        var outstanding: (payload: [UInt8], sentAt: Instant)?
        var buffer: [UInt8] = []

        public init(rng: SeededRandom) { self.rng = rng }

        public var isAwaitingPong: Bool { outstanding != nil }

        /// The 32 bytes to write (nil while a ping is outstanding).
        public mutating func ping(now: Instant) -> [UInt8]? {
            guard outstanding == nil else { return nil }
            var payload = [UInt8](repeating: 0, count: Ping.payloadLength)
            for i in stride(from: 0, to: Ping.payloadLength, by: 8) {
                var v = rng.next()
                for j in 0..<8 { payload[i + j] = UInt8(truncatingIfNeeded: v); v >>= 8 }
            }
            outstanding = (payload, now)
            return payload
        }

        public mutating func onBytes(_ bytes: some Collection<UInt8>, now: Instant) -> [Event] {
            guard let o = outstanding else { return bytes.isEmpty ? [] : [.mismatch] }
            buffer.append(contentsOf: bytes)
            guard buffer.count >= Ping.payloadLength else { return [] }
            let echo = buffer.prefix(Ping.payloadLength)
            let extra = buffer.count > Ping.payloadLength
            buffer = []
            outstanding = nil
            guard echo.elementsEqual(o.payload), !extra else { return [.mismatch] }
            return [.rtt(now - o.sentAt)]
        }
    }

    /// The listener side: echoes every complete 32-byte block; buffers fewer than 32 bytes.
    public struct Responder: Sendable {
        var buffer: [UInt8] = []
        public init() {}

        public mutating func onBytes(_ bytes: some Collection<UInt8>) -> [UInt8] {
            buffer.append(contentsOf: bytes)
            let whole = buffer.count / Ping.payloadLength * Ping.payloadLength
            guard whole > 0 else { return [] }
            let out = Array(buffer[0..<whole])
            buffer.removeFirst(whole)
            return out
        }
    }
}
