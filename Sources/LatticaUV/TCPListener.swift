import CLibUV
import Glibc

/// A listening TCP socket, callback API. Loop thread only.
public final class TCPListener: LoopHandle, @unchecked Sendable {
    public let settings: TCPSettings
    /// The bound address (with the real port when 0 was asked for).
    public private(set) var localAddress: SocketAddress
    private var onAccept: ((Result<TCPSocket, UVError>) -> Void)?

    /// Binds and listens. `onAccept` receives each new connection (not yet reading) or an accept
    /// error. Port 0 picks a free port; read it from `localAddress`.
    public static func listen(
        on loop: EventLoop, address: SocketAddress, backlog: Int32 = 511, settings: TCPSettings = TCPSettings(),
        reusePort: Bool = false, onAccept: @escaping (Result<TCPSocket, UVError>) -> Void
    ) throws(UVError) -> TCPListener {
        loop.assertInLoop()
        let listener = try TCPListener(loop: loop, address: address, settings: settings)
        do throws(UVError) {
            let tcp = listener.raw!.assumingMemoryBound(to: uv_tcp_t.self)
            if reusePort {
                let fd = try ReusePort.boundSocket(address)
                let status = uv_tcp_open(tcp, fd)
                if status < 0 { Glibc.close(fd) }
                try UVError.check(status, "tcp open")
            } else {
                try UVError.check(address.withSockaddr { sa, _ in uv_tcp_bind(tcp, sa, 0) }, "bind \(address)")
            }
            let status = uv_listen(UnsafeMutableRawPointer(tcp).assumingMemoryBound(to: uv_stream_t.self), backlog) { server, status in
                let listener = LoopHandle.owner(server, as: TCPListener.self)
                listener.loop.activity &+= 1
                listener.accept(status: status)
            }
            try UVError.check(status, "listen \(address)")
            listener.localAddress = try SocketAddress.read({ uv_tcp_getsockname(tcp, $0, $1) }, "getsockname")
        } catch {
            listener.close()
            throw error
        }
        listener.onAccept = onAccept
        return listener
    }

    private init(loop: EventLoop, address: SocketAddress, settings: TCPSettings) throws(UVError) {
        self.settings = settings
        self.localAddress = address
        super.init(loop: loop, type: UV_TCP)
        try UVError.check(uv_tcp_init(loop.uvLoop, raw!.assumingMemoryBound(to: uv_tcp_t.self)), "tcp init")
        register()
    }

    private func accept(status: Int32) {
        guard !isClosing else { return }
        let r = TCPSocket.accept(from: raw!.assumingMemoryBound(to: uv_stream_t.self), status: status, loop: loop, settings: settings, unix: false)
        if case .success(let socket) = r { socket.applyOptions() }
        if let onAccept { onAccept(r) } else if case .success(let socket) = r { socket.close() }
    }

    override func didClose() { onAccept = nil }
}

extension TCPSocket {
    /// Connects to `address`. `completion` runs exactly once on the loop thread with the connected
    /// socket (not yet reading) or the error: `.connectionRefused`, `.timedOut` after `timeout`, or
    /// `.cancelled`/`.loopClosed` when the loop shuts down first.
    public static func connect(
        on loop: EventLoop, to address: SocketAddress, timeout: Duration? = nil, settings: TCPSettings = TCPSettings(),
        _ completion: @escaping (Result<TCPSocket, UVError>) -> Void
    ) {
        loop.assertInLoop()
        let socket: TCPSocket
        do { socket = try TCPSocket(loop: loop, settings: settings) } catch {
            completion(.failure(error)); return
        }
        startConnect(socket, to: address, timeout: timeout, loop: loop, completion)
    }

    static func startConnect(_ socket: TCPSocket, to address: SocketAddress, timeout: Duration?, loop: EventLoop,
                             _ completion: @escaping (Result<TCPSocket, UVError>) -> Void) {
        let attempt = ConnectAttempt(socket: socket, address: address, completion: completion)
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(attempt).toOpaque()
        let status = address.withSockaddr { sa, _ in
            uv_tcp_connect(req, socket.tcp, sa) { req, status in
                let attempt = Unmanaged<ConnectAttempt>.fromOpaque(req!.pointee.data).takeRetainedValue()
                req!.deallocate()
                attempt.finish(status: status)
            }
        }
        if status < 0 {
            Unmanaged<ConnectAttempt>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            socket.close()
            completion(.failure(UVError(code: status, operation: "connect \(address)")))
            return
        }
        if let timeout {
            attempt.timer = loop.scheduleTimer(after: timeout) { _ in
                attempt.timedOut = true
                socket.close()  // cancels the connect request: its callback reports the timeout
            }
        }
    }
}

private final class ConnectAttempt {
    let socket: TCPSocket
    let address: SocketAddress
    let completion: (Result<TCPSocket, UVError>) -> Void
    var timer: LoopTimer?
    var timedOut = false

    init(socket: TCPSocket, address: SocketAddress, completion: @escaping (Result<TCPSocket, UVError>) -> Void) {
        self.socket = socket; self.address = address; self.completion = completion
    }

    func finish(status: Int32) {
        timer?.cancel()
        timer = nil
        let op = "connect \(address)"
        if timedOut {
            completion(.failure(UVError(kind: .timedOut, operation: op)))
        } else if status < 0 {
            socket.close()
            let error = UVError(code: status, operation: op)
            // Cancelled without a timeout: the loop is shutting down.
            completion(.failure(error.kind == .cancelled ? UVError(kind: .loopClosed, operation: op) : error))
        } else if socket.isClosing {
            completion(.failure(UVError(kind: .closed, operation: op)))
        } else {
            socket.applyOptions()
            completion(.success(socket))
        }
    }
}

extension TCPSocket {
    /// Accepts one pending connection of a listening stream (TCP or Unix), for the listeners'
    /// connection callbacks. Loop thread.
    static func accept(from server: UnsafeMutablePointer<uv_stream_t>, status: Int32, loop: EventLoop,
                       settings: TCPSettings, unix: Bool) -> Result<TCPSocket, UVError> {
        guard status == 0 else { return .failure(UVError(code: status, operation: "accept")) }
        let socket: TCPSocket
        do { socket = try TCPSocket(loop: loop, settings: settings, unix: unix) } catch { return .failure(error) }
        let result = uv_accept(server, socket.stream)
        guard result == 0 else {
            socket.close()
            return .failure(UVError(code: result, operation: "accept"))
        }
        return .success(socket)
    }
}
