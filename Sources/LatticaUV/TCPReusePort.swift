import CLibUV
import Glibc

/// TCP sockets that share a port (SO_REUSEADDR + SO_REUSEPORT): the listener, and the outbound
/// sockets of a hole punch bound to the listening port, so that the NAT maps them to the port the
/// peers know. Debian's libuv 1.44 has no reuse-port flag for TCP: the socket is made here and
/// handed to `uv_tcp_open`.
enum ReusePort {
    /// A non-blocking TCP socket of `family` with both reuse options set, bound to `address`.
    static func boundSocket(_ address: SocketAddress) throws(UVError) -> Int32 {
        let domain = address.family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UVError(code: -errno, operation: "socket") }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0,
              setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) == 0
        else {
            let e = errno
            Glibc.close(fd)
            throw UVError(code: -e, operation: "setsockopt SO_REUSEPORT")
        }
        let status = address.withSockaddr { sa, len in Glibc.bind(fd, sa, len) }
        guard status == 0 else {
            let e = errno
            Glibc.close(fd)
            throw UVError(code: -e, operation: "bind \(address)")
        }
        return fd
    }
}

extension TCPSocket {
    /// Connects to `address` from `local` (a port shared with our listener: SO_REUSEPORT). For
    /// hole punching: when the peer dials us at the same moment, the two SYNs cross and the kernel
    /// completes one connection (TCP simultaneous open); both sides see `completion` succeed.
    /// Fails with `.addressInUse` when the same four-tuple exists already (the peer's SYN reached
    /// our listener first).
    public static func connect(
        on loop: EventLoop, to address: SocketAddress, from local: SocketAddress, timeout: Duration? = nil,
        settings: TCPSettings = TCPSettings(), _ completion: @escaping (Result<TCPSocket, UVError>) -> Void
    ) {
        loop.assertInLoop()
        let socket: TCPSocket
        do { socket = try TCPSocket(loop: loop, settings: settings) } catch {
            completion(.failure(error)); return
        }
        do throws(UVError) {
            let fd = try ReusePort.boundSocket(local)
            let status = uv_tcp_open(socket.tcp, fd)
            if status < 0 {
                Glibc.close(fd)
                throw UVError(code: status, operation: "tcp open")
            }
        } catch {
            socket.close()
            completion(.failure(error)); return
        }
        startConnect(socket, to: address, timeout: timeout, loop: loop, completion)
    }
}

extension TCPListener {
    /// Binds with SO_REUSEPORT (so punch sockets can bind the same port) and listens.
    public static func listenReusingPort(
        on loop: EventLoop, address: SocketAddress, backlog: Int32 = 511, settings: TCPSettings = TCPSettings(),
        onAccept: @escaping (Result<TCPSocket, UVError>) -> Void
    ) throws(UVError) -> TCPListener {
        try listen(on: loop, address: address, backlog: backlog, settings: settings, reusePort: true, onAccept: onAccept)
    }
}

extension TCPListener {
    /// Fails with `.addressInUse` when something listens on `address` already (a plain bind,
    /// without SO_REUSEPORT, then closed).
    public static func checkPortFree(_ address: SocketAddress) throws(UVError) {
        let domain = address.family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UVError(code: -errno, operation: "socket") }
        defer { Glibc.close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let status = address.withSockaddr { sa, len in Glibc.bind(fd, sa, len) }
        guard status == 0 else { throw UVError(code: -errno, operation: "bind \(address)") }
    }
}
