import CLibUV
import Glibc

/// An IPv4 or IPv6 socket address (host + port), stored inline without allocation so that UDP
/// receive paths can build one per datagram cheaply.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Hashable, Sendable { case ipv4, ipv6 }

    public let family: Family
    /// IPv4: the 4 address bytes in `high` bits 0..<32 (network order as read from memory);
    /// IPv6: the 16 bytes in `high` then `low`.
    private let high: UInt64
    private let low: UInt64
    public let port: UInt16
    private let scopeID: UInt32

    /// Parses a numeric IPv4 or IPv6 literal ("127.0.0.1", "::1"). No DNS.
    public init(host: String, port: UInt16) throws(UVError) {
        var storage = sockaddr_storage()
        let status: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            if host.contains(":") {
                return uv_ip6_addr(host, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self))
            }
            return uv_ip4_addr(host, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self))
        }
        try UVError.check(status, "parse address \(host)")
        self = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!.assumingMemoryBound(to: sockaddr.self))! }
    }

    public static func loopback(port: UInt16 = 0) -> SocketAddress {
        try! SocketAddress(host: "127.0.0.1", port: port)
    }

    public static func any(port: UInt16 = 0) -> SocketAddress {
        try! SocketAddress(host: "0.0.0.0", port: port)
    }

    /// Reads a `sockaddr_in` / `sockaddr_in6`; nil for any other family.
    init?(sockaddr p: UnsafePointer<sockaddr>) {
        switch Int32(p.pointee.sa_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(p).load(as: sockaddr_in.self)
            family = .ipv4
            high = UInt64(sin.sin_addr.s_addr)
            low = 0
            port = UInt16(bigEndian: sin.sin_port)
            scopeID = 0
        case AF_INET6:
            let sin6 = UnsafeRawPointer(p).load(as: sockaddr_in6.self)
            family = .ipv6
            var a = sin6.sin6_addr
            (high, low) = withUnsafeBytes(of: &a) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
            port = UInt16(bigEndian: sin6.sin6_port)
            scopeID = sin6.sin6_scope_id
        default:
            return nil
        }
    }

    /// The address bytes: 4 for IPv4, 16 for IPv6.
    public var ipBytes: [UInt8] {
        switch family {
        case .ipv4: withUnsafeBytes(of: UInt32(truncatingIfNeeded: high)) { Array($0) }
        case .ipv6: withUnsafeBytes(of: (high, low)) { Array($0) }
        }
    }

    /// Numeric host text, e.g. "127.0.0.1" or "::1".
    public var host: String {
        withSockaddr { sa, _ in
            var buf = [CChar](repeating: 0, count: 64)
            switch family {
            case .ipv4: _ = uv_ip4_name(UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in.self), &buf, buf.count)
            case .ipv6: _ = uv_ip6_name(UnsafeRawPointer(sa).assumingMemoryBound(to: sockaddr_in6.self), &buf, buf.count)
            }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    public var description: String { family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    public func withPort(_ port: UInt16) -> SocketAddress {
        var copy = self
        copy = SocketAddress(family: family, high: high, low: low, port: port, scopeID: scopeID)
        return copy
    }

    private init(family: Family, high: UInt64, low: UInt64, port: UInt16, scopeID: UInt32) {
        self.family = family; self.high = high; self.low = low; self.port = port; self.scopeID = scopeID
    }

    /// Calls `body` with a `sockaddr` view of this address and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch family {
        case .ipv4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = UInt32(truncatingIfNeeded: high)
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) {
                $0.storeBytes(of: high, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
            }
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads an address with a libuv getter such as `uv_tcp_getsockname`.
    static func read(_ getter: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<Int32>) -> Int32, _ op: String) throws(UVError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutableBytes(of: &storage) { getter($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len) }
        try UVError.check(status, op)
        guard let a = withUnsafeBytes(of: &storage, { SocketAddress(sockaddr: $0.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }) else {
            throw UVError(kind: .invalidArgument, operation: op)
        }
        return a
    }
}

extension SocketAddress {
    /// The machine's interface addresses (IPv4 and IPv6, loopback included), for advertising a
    /// listener bound to the unspecified address. Empty when libuv cannot list them.
    public static func interfaceAddresses() -> [(address: SocketAddress, isInternal: Bool)] {
        var list: UnsafeMutablePointer<uv_interface_address_t>?
        var count: Int32 = 0
        guard uv_interface_addresses(&list, &count) == 0, let list else { return [] }
        defer { uv_free_interface_addresses(list, count) }
        var out: [(SocketAddress, Bool)] = []
        for i in 0..<Int(count) {
            let entry = list[i]
            var addr = entry.address
            let sa: SocketAddress? = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress(sockaddr: $0) }
            }
            if let sa { out.append((sa, entry.is_internal != 0)) }
        }
        return out
    }
}

extension SocketAddress {
    /// The machine's IPv4 interface addresses with their netmasks (4 bytes each), loopback
    /// excluded: which network a gateway is on, and our address on it.
    public static func ipv4Networks() -> [(address: [UInt8], netmask: [UInt8])] {
        var list: UnsafeMutablePointer<uv_interface_address_t>?
        var count: Int32 = 0
        guard uv_interface_addresses(&list, &count) == 0, let list else { return [] }
        defer { uv_free_interface_addresses(list, count) }
        var out: [([UInt8], [UInt8])] = []
        for i in 0..<Int(count) where list[i].is_internal == 0 && list[i].address.address4.sin_family == sa_family_t(AF_INET) {
            let a = withUnsafeBytes(of: list[i].address.address4.sin_addr) { Array($0) }
            let m = withUnsafeBytes(of: list[i].netmask.netmask4.sin_addr) { Array($0) }
            out.append((a, m))
        }
        return out
    }
}
