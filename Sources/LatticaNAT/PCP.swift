import LatticaCore

/// PCP, the Port Control Protocol (RFC 6887), MAP opcode only: the successor of NAT-PMP on the
/// same server port (5351), version 2. The codec is pure and total: any bytes decode to a MAP
/// answer or to a `DecodeError`, never a trap.
///
/// Wire format (all big endian; addresses are 16 bytes, IPv4 as `::ffff:a.b.c.d`):
///
/// ```
/// MAP request (60 bytes)               MAP response (60 bytes + options)
///  0      1      2      3               0      1      2      3
/// +------+------+------+------+        +------+------+------+------+
/// | 2    |R=0|1 | reserved 0  |        | 2    |R=1|1 | rsvd | code |
/// +------+------+------+------+        +------+------+------+------+
/// | requested lifetime (s)    |        | lifetime (s)              |
/// +------+------+------+------+        +------+------+------+------+
/// | client IP address (16)    |        | epoch time (s)            |
/// |  ::ffff:<our LAN address> |        +------+------+------+------+
/// |                           |        | reserved (12)             |
/// +------+------+------+------+        +------+------+------+------+
/// | mapping nonce (12)        |        | mapping nonce (12)        |  copied from the request
/// +------+------+------+------+        +------+------+------+------+
/// | proto| reserved (3)       |        | proto| reserved (3)       |  6 = TCP
/// +------+------+------+------+        +------+------+------+------+
/// | internal port| sugg. port |        | internal port| ext. port  |
/// +------+------+------+------+        +------+------+------+------+
/// | suggested external IP(16) |        | assigned external IP (16) |
/// +------+------+------+------+        +------+------+------+------+
/// ```
///
/// A NAT-PMP-only server answers a version-2 request with a NAT-PMP header: version 0, result
/// code 1 (unsupported version) (RFC 6887 §9); `decode` reports that as `.unsupportedVersion(0)`.
public enum PCP {
    public static let port: UInt16 = 5351
    public static let version: UInt8 = 2
    public static let opMap: UInt8 = 1
    public static let protoTCP: UInt8 = 6
    public static let headerSize = 24
    public static let mapSize = 60
    /// RFC 6887 §7: messages are at most 1100 bytes and a multiple of 4.
    public static let maxMessage = 1100

    /// RFC 6887 §7.4 result codes (the ones we act on by name).
    public enum ResultCode {
        public static let success: UInt8 = 0
        public static let unsuppVersion: UInt8 = 1
        public static let notAuthorized: UInt8 = 2
        public static let malformedRequest: UInt8 = 3
        public static let noResources: UInt8 = 8
        public static let cannotProvideExternal: UInt8 = 11
        public static let addressMismatch: UInt8 = 12
    }

    /// A MAP answer that passed every check.
    public struct MapAnswer: Sendable, Equatable {
        /// 0 on success, an RFC 6887 §7.4 code otherwise (then the other fields may be zero).
        public var resultCode: UInt8
        public var lifetime: UInt32
        public var epoch: UInt32
        public var externalPort: UInt16
        /// 4 bytes for an IPv4-mapped address, else 16.
        public var externalIP: [UInt8]
        public init(resultCode: UInt8, lifetime: UInt32, epoch: UInt32, externalPort: UInt16, externalIP: [UInt8]) {
            self.resultCode = resultCode; self.lifetime = lifetime; self.epoch = epoch
            self.externalPort = externalPort; self.externalIP = externalIP
        }
    }

    public enum Answer: Sendable, Equatable {
        case map(MapAnswer)
        /// The server speaks another version (0: a NAT-PMP server).
        case unsupportedVersion(serverVersion: UInt8)
    }

    public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        case tooShort(Int)
        case tooLong(Int)
        case notMultipleOf4(Int)
        case badVersion(UInt8)
        case notAResponse
        case wrongOpcode(UInt8)
        case nonceMismatch
        case wrongProtocol(UInt8)
        case wrongInternalPort(UInt16)
        case badOption

        public var description: String {
            switch self {
            case .tooShort(let n): "too short (\(n) bytes)"
            case .tooLong(let n): "too long (\(n) bytes)"
            case .notMultipleOf4(let n): "length \(n) not a multiple of 4"
            case .badVersion(let v): "version \(v)"
            case .notAResponse: "a request, not a response"
            case .wrongOpcode(let o): "opcode \(o), not MAP"
            case .nonceMismatch: "nonce of another request"
            case .wrongProtocol(let p): "protocol \(p)"
            case .wrongInternalPort(let p): "internal port \(p)"
            case .badOption: "option overruns the message"
            }
        }

        /// Short label for metrics.
        public var reason: String {
            switch self {
            case .tooShort, .tooLong, .notMultipleOf4, .badOption: "length"
            case .badVersion: "version"
            case .notAResponse, .wrongOpcode: "opcode"
            case .nonceMismatch, .wrongProtocol, .wrongInternalPort: "other_request"
            }
        }
    }

    /// `::ffff:a.b.c.d` for a 4-byte address, the address itself for 16 bytes, zeros otherwise.
    public static func address16(_ ip: [UInt8]) -> [UInt8] {
        switch ip.count {
        case 4: [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + ip
        case 16: ip
        default: [UInt8](repeating: 0, count: 16)
        }
    }

    /// A MAP request (60 bytes). `clientIP` is our own address as the server sees it (4 or 16
    /// bytes); `suggestedIP` empty means "no preference" (`::ffff:0.0.0.0`). Lifetime 0 deletes.
    public static func mapRequest(nonce: [UInt8], clientIP: [UInt8], proto: UInt8 = protoTCP, internalPort: UInt16,
                                  suggestedPort: UInt16, suggestedIP: [UInt8] = [], lifetime: UInt32) -> [UInt8] {
        precondition(nonce.count == 12, "PCP nonce is 12 bytes")
        var b: [UInt8] = [version, opMap, 0, 0]
        b += NATPMP.be32(lifetime)
        b += address16(clientIP)
        b += nonce
        b += [proto, 0, 0, 0]
        b += NATPMP.be16(internalPort) + NATPMP.be16(suggestedPort)
        b += address16(suggestedIP.isEmpty ? [0, 0, 0, 0] : suggestedIP)
        return b
    }

    /// Decodes a datagram from the server as the answer to our MAP request (`nonce`, TCP,
    /// `internalPort`). Checks, in order: length bounds, version (a version-0 NAT-PMP answer
    /// with result 1 and a PCP UNSUPP_VERSION answer become `.unsupportedVersion`), the R bit,
    /// the opcode, then, when the answer carries the MAP data, nonce, protocol, internal port and
    /// the option lengths. An error answer shorter than 60 bytes is accepted with its code.
    public static func decode(_ b: [UInt8], nonce: [UInt8], internalPort: UInt16, proto: UInt8 = protoTCP) -> Result<Answer, DecodeError> {
        guard b.count >= 4 else { return .failure(.tooShort(b.count)) }
        if b[0] == 0 {
            // NAT-PMP header: version 0, op >= 128, 16-bit result code 1 = unsupported version
            guard b.count >= 8, b[1] >= 128 else { return .failure(.badVersion(0)) }
            let code = UInt16(b[2]) << 8 | UInt16(b[3])
            return code == 1 ? .success(.unsupportedVersion(serverVersion: 0)) : .failure(.badVersion(0))
        }
        guard b.count <= maxMessage else { return .failure(.tooLong(b.count)) }
        guard b.count % 4 == 0 else { return .failure(.notMultipleOf4(b.count)) }
        guard b.count >= headerSize else { return .failure(.tooShort(b.count)) }
        guard b[1] & 0x80 != 0 else { return .failure(.notAResponse) }
        if b[0] != version {
            return b[3] == ResultCode.unsuppVersion ? .success(.unsupportedVersion(serverVersion: b[0])) : .failure(.badVersion(b[0]))
        }
        guard b[1] & 0x7f == opMap else { return .failure(.wrongOpcode(b[1] & 0x7f)) }
        let code = b[3]
        let lifetime = NATPMP.rd32(b, 4), epoch = NATPMP.rd32(b, 8)
        if b.count < mapSize {
            guard code != ResultCode.success else { return .failure(.tooShort(b.count)) }
            return .success(.map(MapAnswer(resultCode: code, lifetime: lifetime, epoch: epoch, externalPort: 0, externalIP: [])))
        }
        guard Array(b[24..<36]) == nonce else { return .failure(.nonceMismatch) }
        guard b[36] == proto else { return .failure(.wrongProtocol(b[36])) }
        let inPort = UInt16(b[40]) << 8 | UInt16(b[41])
        guard inPort == internalPort else { return .failure(.wrongInternalPort(inPort)) }
        // options: code (1), reserved (1), length (2), data padded to 4 bytes
        var i = mapSize
        while i < b.count {
            guard i + 4 <= b.count else { return .failure(.badOption) }
            let len = Int(UInt16(b[i + 2]) << 8 | UInt16(b[i + 3]))
            let next = i + 4 + (len + 3) / 4 * 4
            guard next <= b.count else { return .failure(.badOption) }
            i = next
        }
        let ext = Array(b[44..<60])
        let v4 = ext[0..<10].allSatisfy { $0 == 0 } && ext[10] == 0xff && ext[11] == 0xff
        return .success(.map(MapAnswer(resultCode: code, lifetime: lifetime, epoch: epoch,
                                       externalPort: UInt16(b[42]) << 8 | UInt16(b[43]),
                                       externalIP: v4 ? Array(ext[12..<16]) : ext)))
    }
}
