/// Text form: "/ip4/1.2.3.4/tcp/80/p2p/12D3Koo…". `/ipfs/<id>` is accepted as an alias of `/p2p`.
extension Multiaddr {
    /// Text longer than this is rejected before parsing.
    public static let maxTextLength = 2048

    public init(_ text: String) throws(MultiaddrError) {
        guard text.utf8.count <= Self.maxTextLength else { throw .badValue("address too long") }
        guard text.utf8.first == UInt8(ascii: "/") else { throw .badValue("must start with /") }
        var parts = text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        if parts.last?.isEmpty == true { parts = parts.dropLast() }  // one trailing slash is tolerated
        guard !parts.isEmpty else { throw .badValue("empty address") }
        var components: [Component] = []
        var it = parts.makeIterator()
        func value(_ proto: String) throws(MultiaddrError) -> String {
            guard let v = it.next(), !v.isEmpty else { throw .badValue("/\(proto) needs a value") }
            return String(decoding: v, as: UTF8.self)
        }
        while let raw = it.next() {
            let proto = String(decoding: raw, as: UTF8.self)
            switch proto {
            case "ip4": components.append(.ip4(try Self.parseIPv4(value(proto))))
            case "ip6": components.append(.ip6(try Self.parseIPv6(value(proto))))
            case "tcp": components.append(.tcp(try Self.parsePort(value(proto))))
            case "udp": components.append(.udp(try Self.parsePort(value(proto))))
            case "dns", "dns4", "dns6":
                let name = try value(proto)
                try Self.validateDNSName(name)
                components.append(proto == "dns" ? .dns(name) : proto == "dns4" ? .dns4(name) : .dns6(name))
            case "p2p", "ipfs":
                do { components.append(.p2p(try PeerId(string: value(proto)))) } catch { throw .badValue("bad peer id") }
            case "certhash":
                let v = try value(proto)
                let bytes: [UInt8]?
                switch v.utf8.first {
                case UInt8(ascii: "u"): bytes = Base64URL.decode(v.dropFirst())
                case UInt8(ascii: "b"): bytes = Base32.decode(v.dropFirst())
                case UInt8(ascii: "z"): bytes = Base58.decode(String(v.dropFirst()))
                default: bytes = nil
                }
                guard let bytes, Multihash.decode(bytes[...]) != nil else { throw .badValue("bad certhash") }
                components.append(.certhash(bytes))
            case "p2p-circuit": components.append(.p2pCircuit)
            case "quic-v1": components.append(.quicV1)
            case "ws": components.append(.ws)
            case "wss": components.append(.wss)
            case "tls": components.append(.tls)
            case "noise": components.append(.noise)
            case "webtransport": components.append(.webtransport)
            default: throw .unknownProtocol(proto)
            }
        }
        self.components = components
    }

    public var description: String {
        var out = ""
        for c in components { out += c.description }
        return out
    }

    static func validateDNSName(_ s: String) throws(MultiaddrError) {
        guard !s.isEmpty, s.utf8.count <= 255, !s.utf8.contains(UInt8(ascii: "/")) else {
            throw .badValue("bad dns name")
        }
    }

    static func parsePort(_ s: String) throws(MultiaddrError) -> UInt16 {
        guard s.utf8.count <= 5, s.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let v = UInt16(s) else { throw .badValue("bad port") }
        return v
    }

    /// Strict dotted quad: four decimal octets 0-255, no leading zeros (as Go's net.ParseIP).
    static func parseIPv4(_ s: some StringProtocol) throws(MultiaddrError) -> [UInt8] {
        let parts = s.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { throw .badValue("bad ip4") }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  p.count == 1 || p.first != UInt8(ascii: "0") else { throw .badValue("bad ip4") }
            var v = 0
            for d in p { v = v * 10 + Int(d - UInt8(ascii: "0")) }
            guard v <= 255 else { throw .badValue("bad ip4") }
            out.append(UInt8(v))
        }
        return out
    }

    /// RFC 4291 §2.2 text forms: full, `::`-compressed, and with a trailing dotted quad.
    static func parseIPv6(_ s: String) throws(MultiaddrError) -> [UInt8] {
        let bad = MultiaddrError.badValue("bad ip6")
        let text = Array(s.utf8)
        guard text.count >= 2, text.count <= 45 else { throw bad }
        // Split at "::" (at most once).
        var head = text[...], tail: ArraySlice<UInt8>? = nil
        if let i = (0..<text.count - 1).first(where: { text[$0] == UInt8(ascii: ":") && text[$0 + 1] == UInt8(ascii: ":") }) {
            head = text[..<i]
            tail = text[(i + 2)...]
        }
        func groups(_ part: ArraySlice<UInt8>, allowIPv4: Bool) throws(MultiaddrError) -> [UInt8] {
            if part.isEmpty { return [] }
            let fields = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            var out: [UInt8] = []
            for (n, f) in fields.enumerated() {
                if n == fields.count - 1 && allowIPv4 && f.contains(UInt8(ascii: ".")) {
                    out += try parseIPv4(String(decoding: f, as: UTF8.self))
                    continue
                }
                guard (1...4).contains(f.count) else { throw bad }
                var v = 0
                for c in f {
                    let d: Int
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(c - UInt8(ascii: "0"))
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): d = Int(c - UInt8(ascii: "a")) + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): d = Int(c - UInt8(ascii: "A")) + 10
                    default: throw bad
                    }
                    v = v << 4 | d
                }
                out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF))
            }
            return out
        }
        if let tail {
            let h = try groups(head, allowIPv4: false)
            let t = try groups(tail, allowIPv4: true)
            guard h.count + t.count <= 14 else { throw bad }  // "::" stands for at least one group
            return h + [UInt8](repeating: 0, count: 16 - h.count - t.count) + t
        }
        let all = try groups(head, allowIPv4: true)
        guard all.count == 16 else { throw bad }
        return all
    }

    /// RFC 5952: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::"
    /// (the first on ties); IPv4-mapped addresses as "::ffff:a.b.c.d".
    static func formatIPv6(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return "" }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
            return "::ffff:\(b[12]).\(b[13]).\(b[14]).\(b[15])"
        }
        let g = (0..<8).map { UInt16(b[2 * $0]) << 8 | UInt16(b[2 * $0 + 1]) }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }
}

extension Multiaddr.Component: CustomStringConvertible {
    /// The text form of this component, including its leading "/".
    public var description: String {
        switch self {
        case .ip4(let a): a.count == 4 ? "/ip4/\(a[0]).\(a[1]).\(a[2]).\(a[3])" : "/ip4/?"
        case .ip6(let a): "/ip6/" + Multiaddr.formatIPv6(a)
        case .tcp(let p): "/tcp/\(p)"
        case .udp(let p): "/udp/\(p)"
        case .dns(let s): "/dns/" + s
        case .dns4(let s): "/dns4/" + s
        case .dns6(let s): "/dns6/" + s
        case .p2p(let id): "/p2p/" + id.description
        case .p2pCircuit: "/p2p-circuit"
        case .quicV1: "/quic-v1"
        case .ws: "/ws"
        case .wss: "/wss"
        case .tls: "/tls"
        case .noise: "/noise"
        case .webtransport: "/webtransport"
        case .certhash(let h): "/certhash/u" + Base64URL.encode(h)
        }
    }
}
