import LatticaCore

/// STUN (RFC 8489) binding requests and responses, with the RFC 5780 attributes used for NAT
/// behaviour discovery (CHANGE-REQUEST, RESPONSE-ORIGIN, OTHER-ADDRESS). Codec only; the probe is
/// `STUN.Probe`. Wire layout (Docs/WIRE-NAT.md, "STUN"):
///
/// ```
///  0                   1                   2                   3
/// |0 0|  message type (14 bits)   |        message length         |
/// |                  magic cookie 0x2112A442                      |
/// |                transaction id (96 bits)  ...                  |
/// | attribute type                | attribute length              |  value, padded to 4 bytes
/// ```
public enum STUN {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    /// Larger datagrams are not STUN messages we sent for (RFC 8489 §6.1 keeps below the MTU).
    public static let maxMessageLength = 1280

    public enum MessageType: UInt16, Sendable {
        case bindingRequest = 0x0001
        case bindingSuccess = 0x0101
        case bindingError = 0x0111
        case bindingIndication = 0x0011
    }

    enum AttributeType {
        static let mappedAddress: UInt16 = 0x0001
        static let changeRequest: UInt16 = 0x0003
        /// RFC 3489's name for OTHER-ADDRESS; old servers still send it.
        static let changedAddress: UInt16 = 0x0005
        static let errorCode: UInt16 = 0x0009
        static let unknownAttributes: UInt16 = 0x000A
        static let xorMappedAddress: UInt16 = 0x0020
        static let software: UInt16 = 0x8022
        static let fingerprint: UInt16 = 0x8028
        static let responseOrigin: UInt16 = 0x802B
        static let otherAddress: UInt16 = 0x802C
    }

    /// FINGERPRINT is the CRC-32 of the message before it, XOR this (RFC 8489 §14.7).
    static let fingerprintXor: UInt32 = 0x5354_554E

    public struct TransactionID: Hashable, Sendable {
        public var bytes: [UInt8]
        public init(bytes: [UInt8]) {
            precondition(bytes.count == 12, "a STUN transaction id is 96 bits")
            self.bytes = bytes
        }
        public init(using rng: inout SeededRandom) {
            let a = rng.next(), b = rng.next()
            bytes = (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * UInt64($0))) } + (0..<4).map { UInt8(truncatingIfNeeded: b >> (8 * UInt64($0))) }
        }
    }

    /// RFC 5780 §7.2: ask the server to answer from its other IP and/or port.
    public struct ChangeRequest: Hashable, Sendable {
        public var changeIP: Bool
        public var changePort: Bool
        public init(changeIP: Bool, changePort: Bool) { self.changeIP = changeIP; self.changePort = changePort }
    }

    public struct ErrorCode: Hashable, Sendable {
        public var code: Int
        public var reason: String
    }

    /// One decoded message: what we act on, nothing else.
    public struct Message: Hashable, Sendable {
        public var type: MessageType
        public var transactionID: TransactionID
        public var xorMappedAddress: NAT.Endpoint?
        public var mappedAddress: NAT.Endpoint?
        public var otherAddress: NAT.Endpoint?
        public var responseOrigin: NAT.Endpoint?
        public var changeRequest: ChangeRequest?
        public var errorCode: ErrorCode?
        public var hadFingerprint = false

        public init(type: MessageType, transactionID: TransactionID) { self.type = type; self.transactionID = transactionID }

        /// XOR-MAPPED-ADDRESS when present (RFC 8489), else MAPPED-ADDRESS (RFC 3489 servers).
        public var mapped: NAT.Endpoint? { xorMappedAddress ?? mappedAddress }
    }

    public enum DecodeError: String, Error, Sendable, CaseIterable {
        case tooShort = "too_short"
        case tooLong = "too_long"
        case notSTUN = "not_stun"
        case badLength = "bad_length"
        case unknownType = "unknown_type"
        case truncatedAttribute = "truncated_attribute"
        case badAddress = "bad_address"
        case badFingerprint = "bad_fingerprint"
        case badErrorCode = "bad_error_code"
        case attributeAfterFingerprint = "attribute_after_fingerprint"
    }

    // MARK: encoding

    /// A binding request (with CHANGE-REQUEST when `change` is set), ending in FINGERPRINT.
    public static func bindingRequest(_ id: TransactionID, change: ChangeRequest? = nil) -> [UInt8] {
        var attrs: [UInt8] = []
        if let change {
            appendAttribute(&attrs, AttributeType.changeRequest, [0, 0, 0, (change.changeIP ? 4 : 0) | (change.changePort ? 2 : 0)])
        }
        return finish(type: .bindingRequest, id: id, attributes: attrs)
    }

    /// A binding success response (the fake server of the tests; a STUN server some day).
    public static func bindingSuccess(_ id: TransactionID, mapped: NAT.Endpoint, otherAddress: NAT.Endpoint? = nil,
                                      responseOrigin: NAT.Endpoint? = nil, legacyMapped: Bool = false) -> [UInt8] {
        var attrs: [UInt8] = []
        appendAttribute(&attrs, AttributeType.xorMappedAddress, encodeAddress(mapped, xor: id))
        if legacyMapped { appendAttribute(&attrs, AttributeType.mappedAddress, encodeAddress(mapped, xor: nil)) }
        if let o = responseOrigin { appendAttribute(&attrs, AttributeType.responseOrigin, encodeAddress(o, xor: nil)) }
        if let o = otherAddress { appendAttribute(&attrs, AttributeType.otherAddress, encodeAddress(o, xor: nil)) }
        return finish(type: .bindingSuccess, id: id, attributes: attrs)
    }

    public static func bindingError(_ id: TransactionID, code: Int, reason: String) -> [UInt8] {
        var v: [UInt8] = [0, 0, UInt8((code / 100) & 7), UInt8(code % 100)]
        v += Array(reason.utf8.prefix(128))
        var attrs: [UInt8] = []
        appendAttribute(&attrs, AttributeType.errorCode, v)
        return finish(type: .bindingError, id: id, attributes: attrs)
    }

    static func appendAttribute(_ out: inout [UInt8], _ type: UInt16, _ value: [UInt8]) {
        appendU16(&out, type)
        appendU16(&out, UInt16(value.count))
        out += value
        while out.count % 4 != 0 { out.append(0) }
    }

    static func appendU16(_ out: inout [UInt8], _ v: UInt16) { out += [UInt8(v >> 8), UInt8(truncatingIfNeeded: v)] }
    static func appendU32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func finish(type: MessageType, id: TransactionID, attributes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        appendU16(&out, type.rawValue)
        appendU16(&out, UInt16(attributes.count + 8))  // includes FINGERPRINT
        appendU32(&out, magicCookie)
        out += id.bytes
        out += attributes
        let crc = CRC32.checksum(out) ^ fingerprintXor
        var fp: [UInt8] = []
        appendU32(&fp, crc)
        appendAttribute(&out, AttributeType.fingerprint, fp)
        return out
    }

    static func encodeAddress(_ e: NAT.Endpoint, xor id: TransactionID?) -> [UInt8] {
        var out: [UInt8] = [0, e.isIPv4 ? 1 : 2]
        var port = e.port
        var ip = e.ip
        if let id {
            port ^= UInt16(magicCookie >> 16)
            let mask = xorMask(id)
            for i in ip.indices { ip[i] ^= mask[i] }
        }
        appendU16(&out, port)
        return out + ip
    }

    static func xorMask(_ id: TransactionID) -> [UInt8] {
        [UInt8(magicCookie >> 24), UInt8(truncatingIfNeeded: magicCookie >> 16), UInt8(truncatingIfNeeded: magicCookie >> 8),
         UInt8(truncatingIfNeeded: magicCookie)] + id.bytes
    }

    // MARK: decoding

    /// Decodes one datagram. Never traps; unknown comprehension-optional attributes are skipped,
    /// unknown comprehension-required ones too (we only ever act on the ones above).
    public static func decode(_ bytes: some Collection<UInt8>) -> Result<Message, DecodeError> {
        let b = Array(bytes)
        guard b.count >= headerLength else { return .failure(.tooShort) }
        guard b.count <= maxMessageLength else { return .failure(.tooLong) }
        guard b[0] & 0xC0 == 0, readU32(b, 4) == magicCookie else { return .failure(.notSTUN) }
        let length = Int(readU16(b, 2))
        guard length % 4 == 0, headerLength + length == b.count else { return .failure(.badLength) }
        guard let type = MessageType(rawValue: readU16(b, 0)) else { return .failure(.unknownType) }
        let id = TransactionID(bytes: Array(b[8..<20]))
        var m = Message(type: type, transactionID: id)
        var i = headerLength
        while i < b.count {
            guard b.count - i >= 4 else { return .failure(.truncatedAttribute) }
            if m.hadFingerprint { return .failure(.attributeAfterFingerprint) }
            let t = readU16(b, i), l = Int(readU16(b, i + 2))
            let start = i + 4, end = start + l
            guard end <= b.count else { return .failure(.truncatedAttribute) }
            let v = Array(b[start..<end])
            switch t {
            case AttributeType.xorMappedAddress:
                guard let e = decodeAddress(v, xor: id) else { return .failure(.badAddress) }
                m.xorMappedAddress = e
            case AttributeType.mappedAddress:
                guard let e = decodeAddress(v, xor: nil) else { return .failure(.badAddress) }
                m.mappedAddress = e
            case AttributeType.otherAddress, AttributeType.changedAddress:
                guard let e = decodeAddress(v, xor: nil) else { return .failure(.badAddress) }
                if m.otherAddress == nil || t == AttributeType.otherAddress { m.otherAddress = e }
            case AttributeType.responseOrigin:
                guard let e = decodeAddress(v, xor: nil) else { return .failure(.badAddress) }
                m.responseOrigin = e
            case AttributeType.changeRequest:
                guard v.count == 4 else { return .failure(.badAddress) }
                m.changeRequest = ChangeRequest(changeIP: v[3] & 4 != 0, changePort: v[3] & 2 != 0)
            case AttributeType.errorCode:
                guard v.count >= 4, v[2] & 7 >= 3, v[2] & 7 <= 6, v[3] < 100 else { return .failure(.badErrorCode) }
                let reason = String(decoding: v[4...], as: UTF8.self)
                m.errorCode = ErrorCode(code: Int(v[2] & 7) * 100 + Int(v[3]), reason: String(reason.prefix(128)))
            case AttributeType.fingerprint:
                guard l == 4 else { return .failure(.badFingerprint) }
                let expected = CRC32.checksum(b[0..<i]) ^ fingerprintXor
                guard readU32(b, start) == expected else { return .failure(.badFingerprint) }
                m.hadFingerprint = true
            default:
                break
            }
            i = end + (4 - l % 4) % 4
        }
        return .success(m)
    }

    static func decodeAddress(_ v: [UInt8], xor id: TransactionID?) -> NAT.Endpoint? {
        guard v.count >= 4 else { return nil }
        let size: Int
        switch v[1] {
        case 1: size = 4
        case 2: size = 16
        default: return nil
        }
        guard v.count == 4 + size else { return nil }
        var port = readU16(v, 2)
        var ip = Array(v[4...])
        if let id {
            port ^= UInt16(magicCookie >> 16)
            let mask = xorMask(id)
            for k in ip.indices { ip[k] ^= mask[k] }
        }
        return NAT.Endpoint(ip: ip, port: port)
    }

    static func readU16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
    static func readU32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}

/// CRC-32 (ISO-HDLC, the one zlib and STUN's FINGERPRINT use).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
