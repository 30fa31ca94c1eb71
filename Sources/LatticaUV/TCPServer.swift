import Synchronization

/// A listening TCP socket for async code: `accept()` or iterate `connections`.
///
/// Accepted connections wait in a queue bounded by `maxPendingConnections`; beyond it new
/// connections are closed at once (and counted in `droppedConnections`) rather than buffered.
public final class TCPServer: @unchecked Sendable {
    public let loop: EventLoop
    public let localAddress: SocketAddress
    public let maxPendingConnections: Int
    /// Loop thread only.
    private let listener: TCPListener

    private struct State {
        var pending: [TCPConnection] = []
        var waiter: CheckedContinuation<TCPConnection?, any Error>?
        var closed = false
        var dropped = 0
    }
    private let state = Mutex(State())

    private init(loop: EventLoop, listener: TCPListener, maxPending: Int) {
        self.loop = loop
        self.listener = listener
        self.localAddress = listener.localAddress
        self.maxPendingConnections = maxPending
    }

    /// Binds and listens on `address` (port 0 picks a free port: see `localAddress`).
    public static func listen(
        on loop: EventLoop, address: SocketAddress, backlog: Int32 = 511, settings: TCPSettings = TCPSettings(),
        maxPendingConnections: Int = 128
    ) async throws -> TCPServer {
        try await loop.submit { loop in
            var server: TCPServer?
            let listener = try TCPListener.listen(on: loop, address: address, backlog: backlog, settings: settings) { result in
                guard case .success(let socket) = result else { return }  // accept errors: try the next one
                server?.accepted(socket)
            }
            let s = TCPServer(loop: loop, listener: listener, maxPending: maxPendingConnections)
            server = s
            listener.onClose = { s.finish(); server = nil }
            return s
        }
    }

    private func accepted(_ socket: TCPSocket) {
        let connection = TCPConnection(adopting: socket)
        let waiter: CheckedContinuation<TCPConnection?, any Error>?? = state.withLock { s in
            if let w = s.waiter { s.waiter = nil; return w }
            if s.pending.count >= maxPendingConnections { s.dropped += 1; return .some(nil) }
            s.pending.append(connection)
            return nil
        }
        switch waiter {
        case .some(.some(let w)): w.resume(returning: connection)
        case .some(.none): socket.close()
        case .none: break
        }
    }

    private func finish() {
        let (waiter, pending) = state.withLock { s in
            s.closed = true
            let w = s.waiter, p = s.pending
            s.waiter = nil
            s.pending = []
            return (w, p)
        }
        for c in pending { c.close() }
        waiter?.resume(returning: nil)
    }

    /// The next accepted connection, or nil once the server is closed.
    public func accept() async throws -> TCPConnection? {
        try await withCheckedThrowingContinuation { cont in
            let ready: TCPConnection?? = state.withLock { s in
                if !s.pending.isEmpty { return s.pending.removeFirst() }
                if s.closed { return .some(nil) }
                precondition(s.waiter == nil, "TCPServer.accept() called concurrently")
                s.waiter = cont
                return nil
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    public var connections: Connections { Connections(server: self) }

    public struct Connections: AsyncSequence, Sendable {
        let server: TCPServer
        public struct AsyncIterator: AsyncIteratorProtocol {
            let server: TCPServer
            public mutating func next() async throws -> TCPConnection? { try await server.accept() }
        }
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(server: server) }
    }

    /// Connections closed because nobody accepted them fast enough.
    public var droppedConnections: Int { state.withLock { $0.dropped } }

    /// Stops listening; a pending `accept()` returns nil. Accepted connections stay open.
    public func close() {
        loop.execute { [listener] in listener.close() }
    }
}
