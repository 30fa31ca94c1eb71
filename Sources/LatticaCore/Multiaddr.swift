/// A multiaddr (https://github.com/multiformats/multiaddr): a sequence of self-describing address
/// components. Binary form: for each component `<varint protocol code><value>`, where the value is
/// fixed-size (ip4: 4, ip6: 16, tcp/udp: 2 big-endian), absent, or `<varint length><bytes>`
/// (dns*, p2p, certhash). Codes from multiformats/multicodec `table.csv`.
public struct Multiaddr: Hashable, Sendable, CustomStringConvertible {
    public enum Component: Hashable, Sendable {
        case ip4([UInt8])
        case ip6([UInt8])
        case tcp(UInt16)
        case udp(UInt16)
        case dns(String)
        case dns4(String)
        case dns6(String)
        case p2p(PeerId)
        case p2pCircuit
        case quicV1
        case ws
        case wss
        case tls
        case noise
        case webtransport
        /// A multihash (binary); text form is multibase base64url (`u…`).
        case certhash([UInt8])
    }

    /// Multicodec codes of the supported protocols.
    public enum Code {
        public static let ip4: UInt64 = 0x04
        public static let tcp: UInt64 = 0x06
        public static let ip6: UInt64 = 0x29
        public static let dns: UInt64 = 0x35
        public static let dns4: UInt64 = 0x36
        public static let dns6: UInt64 = 0x37
        public static let udp: UInt64 = 0x0111
        public static let p2pCircuit: UInt64 = 0x0122
        public static let p2p: UInt64 = 0x01A5
        public static let tls: UInt64 = 0x01C0
        public static let noise: UInt64 = 0x01C6
        public static let quicV1: UInt64 = 0x01CD
        public static let webtransport: UInt64 = 0x01D1
        public static let certhash: UInt64 = 0x01D2
        public static let ws: UInt64 = 0x01DD
        public static let wss: UInt64 = 0x01DE
    }

    public var components: [Component]

    public init(_ components: [Component]) { self.components = components }

    /// The last `/p2p` component's peer id, if any.
    public var peerId: PeerId? {
        for c in components.reversed() { if case .p2p(let id) = c { return id } }
        return nil
    }

    public func appending(_ c: Component) -> Multiaddr { Multiaddr(components + [c]) }

    /// The address with a trailing `/p2p/<id>` removed (unchanged if the last component is not
    /// `/p2p`; a relay's `/p2p/<relay>/p2p-circuit` part is kept).
    public var withoutPeerId: Multiaddr {
        guard case .p2p? = components.last else { return self }
        return Multiaddr(Array(components.dropLast()))
    }

    // MARK: binary

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        for c in components { c.encode(into: &out) }
        return out
    }

    /// Input longer than this is rejected (addresses are small; bounds memory and work).
    public static let maxBinaryLength = 1024

    /// Decodes the binary form. The whole input must be components (no trailing garbage).
    public init(bytes input: some Collection<UInt8>) throws(MultiaddrError) {
        guard input.count <= Self.maxBinaryLength else { throw .badValue("address too long") }
        let all = Array(input)
        var rest = all[...]
        var components: [Component] = []
        while !rest.isEmpty {
            components.append(try Component.decode(&rest))
        }
        self.components = components
    }
}

public enum MultiaddrError: Error, Hashable, Sendable {
    case unknownProtocol(String)
    case badValue(String)
    case truncated
    case trailingBytes
}

extension Multiaddr.Component {
    /// The multicodec code of this component's protocol.
    public var code: UInt64 {
        switch self {
        case .ip4: Multiaddr.Code.ip4
        case .ip6: Multiaddr.Code.ip6
        case .tcp: Multiaddr.Code.tcp
        case .udp: Multiaddr.Code.udp
        case .dns: Multiaddr.Code.dns
        case .dns4: Multiaddr.Code.dns4
        case .dns6: Multiaddr.Code.dns6
        case .p2p: Multiaddr.Code.p2p
        case .p2pCircuit: Multiaddr.Code.p2pCircuit
        case .quicV1: Multiaddr.Code.quicV1
        case .ws: Multiaddr.Code.ws
        case .wss: Multiaddr.Code.wss
        case .tls: Multiaddr.Code.tls
        case .noise: Multiaddr.Code.noise
        case .webtransport: Multiaddr.Code.webtransport
        case .certhash: Multiaddr.Code.certhash
        }
    }

    func encode(into out: inout [UInt8]) {
        Varint.encode(code, into: &out)
        func lengthPrefixed(_ b: some Collection<UInt8>) {
            Varint.encode(UInt64(b.count), into: &out)
            out.append(contentsOf: b)
        }
        switch self {
        case .ip4(let a):
            precondition(a.count == 4, "ip4 component needs 4 bytes")
            out.append(contentsOf: a)
        case .ip6(let a):
            precondition(a.count == 16, "ip6 component needs 16 bytes")
            out.append(contentsOf: a)
        case .tcp(let p), .udp(let p): out.append(UInt8(p >> 8)); out.append(UInt8(p & 0xFF))
        case .dns(let s), .dns4(let s), .dns6(let s): lengthPrefixed(s.utf8)
        case .p2p(let id): lengthPrefixed(id.multihash)
        case .certhash(let h): lengthPrefixed(h)
        case .p2pCircuit, .quicV1, .ws, .wss, .tls, .noise, .webtransport: break
        }
    }

    static func decode(_ rest: inout ArraySlice<UInt8>) throws(MultiaddrError) -> Self {
        let code = try readVarint(&rest)
        func fixed(_ n: Int) throws(MultiaddrError) -> [UInt8] {
            guard rest.count >= n else { throw .truncated }
            defer { rest = rest.dropFirst(n) }
            return Array(rest.prefix(n))
        }
        func lengthPrefixed() throws(MultiaddrError) -> ArraySlice<UInt8> {
            let length = try readVarint(&rest)
            guard length <= UInt64(rest.count) else { throw .truncated }
            defer { rest = rest.dropFirst(Int(length)) }
            return rest.prefix(Int(length))
        }
        func port() throws(MultiaddrError) -> UInt16 {
            let b = try fixed(2)
            return UInt16(b[0]) << 8 | UInt16(b[1])
        }
        func name() throws(MultiaddrError) -> String {
            let raw = try lengthPrefixed()
            guard let s = String(validating: raw, as: UTF8.self) else { throw .badValue("dns name is not UTF-8") }
            try Multiaddr.validateDNSName(s)
            return s
        }
        switch code {
        case Multiaddr.Code.ip4: return .ip4(try fixed(4))
        case Multiaddr.Code.ip6: return .ip6(try fixed(16))
        case Multiaddr.Code.tcp: return .tcp(try port())
        case Multiaddr.Code.udp: return .udp(try port())
        case Multiaddr.Code.dns: return .dns(try name())
        case Multiaddr.Code.dns4: return .dns4(try name())
        case Multiaddr.Code.dns6: return .dns6(try name())
        case Multiaddr.Code.p2p:
            let raw = try lengthPrefixed()
            do { return .p2p(try PeerId(multihash: Array(raw))) } catch { throw .badValue("bad peer id multihash") }
        case Multiaddr.Code.certhash:
            let raw = try lengthPrefixed()
            guard Multihash.decode(raw) != nil else { throw .badValue("certhash is not a multihash") }
            return .certhash(Array(raw))
        case Multiaddr.Code.p2pCircuit: return .p2pCircuit
        case Multiaddr.Code.quicV1: return .quicV1
        case Multiaddr.Code.ws: return .ws
        case Multiaddr.Code.wss: return .wss
        case Multiaddr.Code.tls: return .tls
        case Multiaddr.Code.noise: return .noise
        case Multiaddr.Code.webtransport: return .webtransport
        default: throw .unknownProtocol("0x" + String(code, radix: 16))
        }
    }

    static func readVarint(_ rest: inout ArraySlice<UInt8>) throws(MultiaddrError) -> UInt64 {
        let decoded: (value: UInt64, length: Int)?
        do { decoded = try Varint.decode(rest) } catch { throw .badValue("bad varint") }
        guard let decoded else { throw .truncated }
        rest = rest.dropFirst(decoded.length)
        return decoded.value
    }
}

// MARK: relayed addresses

extension Multiaddr {
    /// A Circuit Relay address: `<relay address>/p2p/<relay>/p2p-circuit[/p2p/<target>]`.
    public var isCircuit: Bool { components.contains(.p2pCircuit) }

    /// For a circuit address: the relay's own address (with `/p2p/<relay>`), the part before the
    /// first `/p2p-circuit`; nil when there is none or it does not name the relay.
    public var circuitRelay: Multiaddr? {
        guard let i = components.firstIndex(of: .p2pCircuit), i > 0, case .p2p = components[i - 1] else { return nil }
        return Multiaddr(Array(components[..<i]))
    }

    /// For a circuit address: the target after `/p2p-circuit`, if named.
    public var circuitTarget: PeerId? {
        guard let i = components.firstIndex(of: .p2pCircuit) else { return nil }
        let rest = components[(i + 1)...]
        guard rest.count == 1, case .p2p(let id)? = rest.first else { return nil }
        return id
    }
}

extension Multiaddr {
    /// The first component is 0.0.0.0 or ::.
    public var isUnspecifiedIP: Bool {
        switch components.first {
        case .ip4(let b)?: b == [0, 0, 0, 0]
        case .ip6(let b)?: b.allSatisfy { $0 == 0 }
        default: false
        }
    }
}
