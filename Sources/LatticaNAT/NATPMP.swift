import LatticaCore

/// NAT-PMP (RFC 6886): ask the default gateway (UDP port 5351) for its external address and a
/// port mapping. The codec is pure and total (any bytes decode to a message or nil); the client is
/// a sans-I/O state machine: inputs carry `now`, outputs are directives.
///
/// Wire format (all big endian):
///
/// ```
/// external address request      0        1
///                               +--------+--------+
///                               | ver 0  | op 0   |
///                               +--------+--------+
/// mapping request               +--------+--------+--------+--------+
///                               | ver 0  | op 1/2 | reserved (0)    |   op 1 UDP, 2 TCP
///                               +--------+--------+--------+--------+
///                               | internal port   | suggested ext.  |
///                               +--------+--------+--------+--------+
///                               | requested lifetime (s); 0 deletes |
///                               +--------+--------+--------+--------+
/// response header               | ver 0  | op+128 | result code     |
///                               +--------+--------+--------+--------+
///                               | seconds since start of epoch      |
///                               +--------+--------+--------+--------+
///   op 128: + external IPv4 address (4 bytes)                        = 12 bytes
///   op 129/130: + internal port, mapped external port, lifetime (s)  = 16 bytes
/// ```
public enum NATPMP {
    public static let port: UInt16 = 5351

    public enum Proto: UInt8, Sendable, Equatable { case udp = 1, tcp = 2 }

    public enum Response: Sendable, Equatable {
        case externalAddress(epoch: UInt32, ip: [UInt8])
        case mapping(proto: Proto, epoch: UInt32, internalPort: UInt16, externalPort: UInt16, lifetime: UInt32)
        /// A response with a non-zero result code (1 unsupported version, 2 not authorised,
        /// 3 network failure, 4 out of resources, 5 unsupported opcode).
        case failure(op: UInt8, code: UInt16)
    }

    public static func externalAddressRequest() -> [UInt8] { [0, 0] }

    public static func mappingRequest(_ proto: Proto, internalPort: UInt16, externalPort: UInt16, lifetime: UInt32) -> [UInt8] {
        var b: [UInt8] = [0, proto.rawValue, 0, 0]
        b += be16(internalPort) + be16(externalPort) + be32(lifetime)
        return b
    }

    /// nil for anything that is not a NAT-PMP response (a request, a truncated or unknown message).
    public static func decode(_ b: [UInt8]) -> Response? {
        guard b.count >= 8, b[0] == 0, b[1] >= 128 else { return nil }
        let op = b[1] - 128
        let code = UInt16(b[2]) << 8 | UInt16(b[3])
        let epoch = rd32(b, 4)
        if code != 0 { return op <= 2 ? .failure(op: op, code: code) : nil }
        switch op {
        case 0:
            guard b.count >= 12 else { return nil }
            return .externalAddress(epoch: epoch, ip: Array(b[8..<12]))
        case 1, 2:
            guard b.count >= 16, let proto = Proto(rawValue: op) else { return nil }
            return .mapping(proto: proto, epoch: epoch, internalPort: UInt16(b[8]) << 8 | UInt16(b[9]),
                            externalPort: UInt16(b[10]) << 8 | UInt16(b[11]), lifetime: rd32(b, 12))
        default:
            return nil
        }
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    static func rd32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
