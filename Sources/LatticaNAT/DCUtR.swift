import LatticaCore

/// Direct Connection Upgrade through Relay (https://github.com/libp2p/specs/blob/master/relay/DCUtR.md):
/// two peers on a relayed connection exchange their addresses (`CONNECT`), then synchronise
/// (`SYNC`) so that both dial at once and the NATs see a TCP simultaneous open.
///
/// B, the side that accepted the relayed connection, starts: it sends CONNECT and measures the
/// time to A's CONNECT (the relayed round trip), sends SYNC, waits half of it and dials; A dials
/// on SYNC. A is the client of the resulting connection (Noise initiator), B the server, however
/// the TCP handshake came out. B tries `maxAttempts` times.
public enum DCUtR {
    public static let protocolID = "/libp2p/dcutr"
    /// The spec's bound on a message.
    public static let maxMessageLength = 4096
    public static let maxAttempts = 3
    public static let maxAddresses = 32

    public struct Message: Sendable, Equatable {
        public enum Kind: UInt64, Sendable { case connect = 100, sync = 300 }
        public var kind: Kind
        public var addrs: [Multiaddr]
        public init(kind: Kind, addrs: [Multiaddr] = []) { self.kind = kind; self.addrs = addrs }

        public func encoded() -> [UInt8] {
            var w = ProtobufWriter()
            w.uint64(1, kind.rawValue)
            for a in addrs.prefix(DCUtR.maxAddresses) { w.bytes(2, a.bytes) }
            return w.bytes
        }

        public func framed() -> [UInt8] { FramedReader.frame(encoded()) }

        /// Addresses that do not parse are skipped (a peer may know transports we do not); a
        /// message without a known type, or with more than `maxAddresses`, is refused.
        public init(decoding bytes: some Collection<UInt8>) throws(DecodeError) {
            var r = ProtobufReader(Array(bytes))
            var kind: Kind?
            var addrs: [Multiaddr] = []
            var seen = 0
            while true {
                let f: ProtobufField?
                do { f = try r.next() } catch { throw .protobuf }
                guard let f else { break }
                switch f.field {
                case 1:
                    guard let v = f.varintValue else { throw .protobuf }
                    guard let k = Kind(rawValue: v) else { throw .unknownType(v) }
                    kind = k
                case 2:
                    guard let b = f.bytesValue else { continue }
                    seen += 1
                    guard seen <= DCUtR.maxAddresses else { throw .tooManyAddresses }
                    if let a = try? Multiaddr(bytes: b) { addrs.append(a) }
                default: continue
                }
            }
            guard let kind else { throw .missingType }
            self.init(kind: kind, addrs: addrs)
        }
    }

    public enum DecodeError: Error, Equatable, Sendable {
        case protobuf, missingType, unknownType(UInt64), tooManyAddresses
    }

    /// The addresses worth punching to: TCP over IPv4/IPv6, not loopback/unspecified, not relayed.
    /// Private (RFC 1918) addresses are kept: two peers behind one NAT reach each other on them.
    public static func punchable(_ addrs: [Multiaddr]) -> [Multiaddr] {
        var out: [Multiaddr] = []
        for a in addrs where !a.isCircuit && !out.contains(a.withoutPeerId) {
            let c = a.withoutPeerId.components
            guard c.count == 2, case .tcp(let port) = c[1], port != 0 else { continue }
            switch c[0] {
            case .ip4(let b) where b[0] != 127 && b != [0, 0, 0, 0]: out.append(a.withoutPeerId)
            case .ip6(let b) where b != [UInt8](repeating: 0, count: 15) + [1] && b != [UInt8](repeating: 0, count: 16): out.append(a.withoutPeerId)
            default: continue
            }
        }
        return Array(out.prefix(maxAddresses))
    }
}
