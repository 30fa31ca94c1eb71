import LatticaCore
import LatticaUV

extension SocketAddress {
    /// The TCP address of `/ip4/A/tcp/P` or `/ip6/A/tcp/P` (a trailing `/p2p/…` is ignored);
    /// nil for anything else (dns, udp, relayed).
    init?(multiaddr: Multiaddr) {
        let c = multiaddr.withoutPeerId.components
        guard c.count == 2, case .tcp(let port) = c[1] else { return nil }
        switch c[0] {
        case .ip4(let b) where b.count == 4:
            guard let a = try? SocketAddress(host: b.map(String.init).joined(separator: "."), port: port) else { return nil }
            self = a
        case .ip6(let b) where b.count == 16:
            let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(b[$0]) << 8 | UInt16(b[$0 + 1]), radix: 16) }
            guard let a = try? SocketAddress(host: groups.joined(separator: ":"), port: port) else { return nil }
            self = a
        default:
            return nil
        }
    }
}

extension Multiaddr {
    /// `/ip4/A/tcp/P` or `/ip6/A/tcp/P`.
    init(socketAddress a: SocketAddress) {
        let ip: Multiaddr.Component = a.family == .ipv4 ? .ip4(a.ipBytes) : .ip6(a.ipBytes)
        self.init([ip, .tcp(a.port)])
    }
}
