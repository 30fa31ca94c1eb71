import CLibUV

extension SocketAddress {
    /// The IP addresses of this host's interfaces (port 0), loopback included; empty when libuv
    /// cannot list them. STUN compares its mapped address with these to tell "no NAT".
    public static func interfaceAddresses() -> [SocketAddress] {
        var list: UnsafeMutablePointer<uv_interface_address_t>?
        var count: Int32 = 0
        guard uv_interface_addresses(&list, &count) == 0, let list else { return [] }
        defer { uv_free_interface_addresses(list, count) }
        var out: [SocketAddress] = []
        for i in 0..<Int(count) {
            var a = list[i].address
            let s: SocketAddress? = withUnsafePointer(to: &a) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress(sockaddr: $0) }
            }
            if let s, !out.contains(s) { out.append(s) }
        }
        return out
    }
}
