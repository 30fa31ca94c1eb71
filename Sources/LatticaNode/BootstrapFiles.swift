import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import Logging

/// Bootstrapping without knowing the bootstrap node's peer id in advance (container test nets):
/// the bootstrap node writes its full multiaddrs to a file on a shared volume
/// (`--publish-addrs-file`), the others wait for that file and join through what it lists
/// (`--bootstrap-file`). `/dns4` and `/dns6` bootstrap addresses are resolved once, at start.
///
/// All of this runs before the daemon's loop exists (blocking calls are fine there) or after
/// `Daemon.start` returned, off the loop.
public enum BootstrapFiles {
    /// How long `--bootstrap-file` waits for the file to appear (and hold an address).
    public static let defaultWait: Double = 60

    /// Writes `addrs`, one per line, atomically: a temporary file in the same directory, fsynced,
    /// renamed over `path`. Unspecified hosts (`0.0.0.0`, `::`) are replaced by this machine's
    /// non-loopback interface addresses (a listener on every interface is reachable at each).
    public static func publish(_ addrs: [Multiaddr], to path: String) throws(DaemonError) {
        let lines = expandUnspecified(addrs).map(\.description)
        let text = lines.joined(separator: "\n") + "\n"
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DaemonError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard n == bytes.count, synced, rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw DaemonError("cannot write \(path): \(e)")
        }
    }

    /// Waits (polling every 100 ms) until `path` exists and lists at least one multiaddr, at
    /// most `timeout` seconds; returns its lines that parse as multiaddrs with a `/p2p/` part.
    public static func waitAndRead(_ path: String, timeout: Double = defaultWait) throws(DaemonError) -> [String] {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + timeout
        while true {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {  // not there yet: wait
                let addrs = parse(text)
                if !addrs.isEmpty {
                    let skipped = skippedLines(text)
                    if !skipped.isEmpty {
                        Logger(label: "lattica.node").warning("bootstrap file: lines that are not multiaddrs with a /p2p/ part skipped",
                                                              metadata: ["file": "\(path)", "lines": "\(skipped.prefix(4))", "count": "\(skipped.count)"])
                    }
                    return addrs
                }
            }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 >= end {
                throw DaemonError("bootstrap file \(path) did not appear with an address within \(Int(timeout)) s")
            }
            usleep(100_000)
        }
    }

    /// The lines of a published file that are multiaddrs naming a peer (blank lines, `#`
    /// comments and anything else skipped).
    public static func parse(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map(trimmed).filter { line in
            guard !line.isEmpty, !line.hasPrefix("#"), let ma = try? Multiaddr(line) else { return false }
            return ma.peerId != nil
        }
    }

    /// The lines `parse` dropped that were neither blank nor comments (the operator hears of them).
    static func skippedLines(_ text: String) -> [String] {
        let kept = Set(parse(text))
        return text.split(whereSeparator: \.isNewline).map(trimmed).filter { !$0.isEmpty && !$0.hasPrefix("#") && !kept.contains($0) }
    }

    static func trimmed(_ s: Substring) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = s.firstIndex(where: { !blank($0) }), let last = s.lastIndex(where: { !blank($0) }) else { return "" }
        return String(s[first...last])
    }

    /// Replaces each `/dns4|dns6|dns/NAME/tcp/P[/p2p/ID]` by one address per resolved IP
    /// (getaddrinfo; blocking: call before the loop runs). Addresses that do not resolve are
    /// dropped and returned in `failed`; the others pass through unchanged.
    public static func resolveDNS(_ addrs: [String]) -> (resolved: [String], failed: [String]) {
        var out: [String] = [], failed: [String] = []
        for text in addrs {
            guard let ma = try? Multiaddr(text), let first = ma.components.first else { out.append(text); continue }
            let name: String, family: Int32
            switch first {
            case .dns4(let n): name = n; family = AF_INET
            case .dns6(let n): name = n; family = AF_INET6
            case .dns(let n): name = n; family = AF_UNSPEC
            default: out.append(text); continue
            }
            let ips = lookup(name, family: family)
            if ips.isEmpty { failed.append(text); continue }
            for ip in ips {
                out.append(Multiaddr([ip] + ma.components.dropFirst()).description)
            }
        }
        return (out, failed)
    }

    static func lookup(_ name: String, family: Int32) -> [Multiaddr.Component] {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &res) == 0 else { return [] }
        defer { freeaddrinfo(res) }
        var out: [Multiaddr.Component] = []
        var p = res
        while let ai = p {
            if let c = component(ai.pointee.ai_addr), !out.contains(c) { out.append(c) }
            p = ai.pointee.ai_next
        }
        return out
    }

    static func component(_ sa: UnsafeMutablePointer<sockaddr>?) -> Multiaddr.Component? {
        guard let sa else { return nil }
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                let a = UInt32(bigEndian: sin.pointee.sin_addr.s_addr)
                return .ip4([UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)])
            }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var a = sin6.pointee.sin6_addr
                return .ip6(withUnsafeBytes(of: &a) { Array($0) })
            }
        default:
            return nil
        }
    }

    /// `0.0.0.0` / `::` listeners expanded to the interface addresses of that family (loopback
    /// last, and only when it is the only one).
    static func expandUnspecified(_ addrs: [Multiaddr]) -> [Multiaddr] {
        var out: [Multiaddr] = []
        let ifaces = interfaceAddresses()
        for ma in addrs {
            guard let first = ma.components.first else { continue }
            let v4Any: Bool, v6Any: Bool
            switch first {
            case .ip4(let b): v4Any = b == [0, 0, 0, 0]; v6Any = false
            case .ip6(let b): v6Any = b == [UInt8](repeating: 0, count: 16); v4Any = false
            default: v4Any = false; v6Any = false
            }
            guard v4Any || v6Any else { out.append(ma); continue }
            let wanted = ifaces.filter { c in
                if case .ip4 = c { return v4Any }
                if case .ip6(let b) = c { return v6Any && !(b[0] == 0xfe && b[1] & 0xc0 == 0x80) }  // no link-local
                return false
            }
            let nonLoop = wanted.filter { c in
                if case .ip4(let b) = c { return b[0] != 127 }
                if case .ip6(let b) = c { return b != [UInt8](repeating: 0, count: 15) + [1] }
                return true
            }
            let use = nonLoop.isEmpty ? wanted : nonLoop
            if use.isEmpty { out.append(ma); continue }
            for ip in use { out.append(Multiaddr([ip] + ma.components.dropFirst())) }
        }
        return out
    }

    static func interfaceAddresses() -> [Multiaddr.Component] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: [Multiaddr.Component] = []
        var p = head
        while let ifa = p {
            if ifa.pointee.ifa_flags & UInt32(IFF_UP) != 0, let c = component(ifa.pointee.ifa_addr), !out.contains(c) {
                out.append(c)
            }
            p = ifa.pointee.ifa_next
        }
        return out
    }
}
