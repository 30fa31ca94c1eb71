import LatticaCore

extension NAT {
    /// An IP address and a port, the part of a multiaddr that NAT traversal reasons about.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        /// 4 bytes (IPv4) or 16 bytes (IPv6).
        public var ip: [UInt8]
        public var port: UInt16

        public init(ip: [UInt8], port: UInt16) {
            precondition(ip.count == 4 || ip.count == 16, "an IP address is 4 or 16 bytes")
            self.ip = ip; self.port = port
        }

        public var isIPv4: Bool { ip.count == 4 }

        /// `/ip4|ip6/<ip>/tcp|udp/<port>` (the first two components of `addr`), nil otherwise.
        public init?(multiaddr addr: Multiaddr, transport: Transport = .tcp) {
            guard addr.components.count >= 2 else { return nil }
            let ip: [UInt8]
            switch addr.components[0] {
            case .ip4(let b) where b.count == 4: ip = b
            case .ip6(let b) where b.count == 16: ip = b
            default: return nil
            }
            switch (addr.components[1], transport) {
            case (.tcp(let p), .tcp), (.udp(let p), .udp): self.init(ip: ip, port: p)
            default: return nil
            }
        }

        public enum Transport: Sendable { case tcp, udp }

        public func multiaddr(_ transport: Transport = .tcp) -> Multiaddr {
            Multiaddr([isIPv4 ? .ip4(ip) : .ip6(ip), transport == .tcp ? .tcp(port) : .udp(port)])
        }

        /// The network an address belongs to for counting distinct reporters: the /24 of an IPv4
        /// address, the /48 of an IPv6 one.
        public var network: [UInt8] { isIPv4 ? Array(ip.prefix(3)) : Array(ip.prefix(6)) }

        public var isLoopback: Bool {
            isIPv4 ? ip[0] == 127 : ip == [UInt8](repeating: 0, count: 15) + [1]
        }
        public var isUnspecified: Bool { ip.allSatisfy { $0 == 0 } }
        public var isMulticast: Bool { isIPv4 ? ip[0] >= 224 && ip[0] < 240 : ip[0] == 0xFF }
        /// RFC 1918, RFC 6598 (carrier-grade NAT), link-local, IPv6 ULA and link-local.
        public var isPrivate: Bool {
            if isIPv4 {
                return ip[0] == 10 || (ip[0] == 172 && ip[1] & 0xF0 == 16) || (ip[0] == 192 && ip[1] == 168)
                    || (ip[0] == 100 && ip[1] & 0xC0 == 64) || (ip[0] == 169 && ip[1] == 254)
            }
            return ip[0] & 0xFE == 0xFC || (ip[0] == 0xFE && ip[1] & 0xC0 == 0x80)
        }
        /// Reachable from the public internet, as far as the address alone tells.
        public var isPublic: Bool { !isLoopback && !isUnspecified && !isMulticast && !isPrivate }

        public var description: String {
            if isIPv4 { return "\(ip.map(String.init).joined(separator: ".")):\(port)" }
            return "[\(multiaddr().description.split(separator: "/")[1])]:\(port)"
        }

        /// Parses `a.b.c.d:port` or `[v6]:port` (config files).
        public init?(parsing s: String) {
            if s.hasPrefix("[") {
                guard let close = s.firstIndex(of: "]") else { return nil }
                let host = String(s[s.index(after: s.startIndex)..<close])
                let rest = s[s.index(after: close)...]
                guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()),
                      let ma = try? Multiaddr("/ip6/\(host)/udp/\(port)"), let e = Endpoint(multiaddr: ma, transport: .udp) else { return nil }
                self = e
                return
            }
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
            let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
            guard octets.count == 4, parts[0].split(separator: ".", omittingEmptySubsequences: false).count == 4 else { return nil }
            self.init(ip: octets, port: port)
        }
    }
}

extension Multiaddr {
    /// Whether the address goes through a relay (`/p2p-circuit`).
    var natIsRelayed: Bool { components.contains(.p2pCircuit) }
}
