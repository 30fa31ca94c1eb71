import Synchronization

/// A received datagram.
public struct Datagram: Sendable, Hashable {
    public var bytes: [UInt8]
    public var from: SocketAddress
    public init(bytes: [UInt8], from: SocketAddress) { self.bytes = bytes; self.from = from }
}

/// A UDP socket for async code. Received datagrams wait in a queue of at most
/// `maxQueuedDatagrams`; when it is full new datagrams are dropped and counted (UDP is lossy;
/// buffering without bound would let a flood exhaust memory).
public final class UDPEndpoint: @unchecked Sendable {
    public let loop: EventLoop
    public let localAddress: SocketAddress
    public let maxQueuedDatagrams: Int
    /// Loop thread only.
    let socket: UDPSocket

    private struct State {
        var queue: [Datagram] = []
        var head = 0
        var waiter: CheckedContinuation<Datagram?, any Error>?
        var closed = false
        var dropped = 0
    }
    private let state = Mutex(State())

    private init(socket: UDPSocket, maxQueued: Int) {
        self.loop = socket.loop
        self.socket = socket
        self.localAddress = socket.localAddress
        self.maxQueuedDatagrams = maxQueued
    }

    /// Binds to `address` and starts receiving.
    public static func bind(on loop: EventLoop, address: SocketAddress, maxQueuedDatagrams: Int = 1024) async throws -> UDPEndpoint {
        try await loop.submit { loop in
            let socket = try UDPSocket.bind(on: loop, address: address)
            let endpoint = UDPEndpoint(socket: socket, maxQueued: maxQueuedDatagrams)
            socket.onDatagram = { [unowned endpoint] bytes, from in endpoint.received(Datagram(bytes: Array(bytes), from: from)) }
            socket.onClose = { endpoint.finish() }
            socket.startReceiving()
            return endpoint
        }
    }

    private func received(_ datagram: Datagram) {
        let waiter: CheckedContinuation<Datagram?, any Error>? = state.withLock { s in
            if let w = s.waiter { s.waiter = nil; return w }
            if s.queue.count - s.head >= maxQueuedDatagrams { s.dropped += 1; return nil }
            s.queue.append(datagram)
            return nil
        }
        waiter?.resume(returning: datagram)
    }

    private func finish() {
        let waiter = state.withLock { s in
            s.closed = true
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume(returning: nil)
    }

    /// The next datagram, or nil once closed.
    public func receive() async throws -> Datagram? {
        try await withCheckedThrowingContinuation { cont in
            let ready: Datagram?? = state.withLock { s in
                if s.head < s.queue.count {
                    let d = s.queue[s.head]
                    s.head += 1
                    if s.head == s.queue.count { s.queue.removeAll(keepingCapacity: true); s.head = 0 }
                    return d
                }
                if s.closed { return .some(nil) }
                precondition(s.waiter == nil, "UDPEndpoint.receive() called concurrently")
                s.waiter = cont
                return nil
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    /// Sends one datagram; returns once the kernel (or libuv's bounded queue) has it.
    public func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await loop.submitCallback { [socket] _, complete in
            socket.send(bytes, to: address) { error in complete(error.map { .failure($0) } ?? .success(())) }
        } as Void
    }

    /// Datagrams dropped because the receive queue was full.
    public var droppedDatagrams: Int { state.withLock { $0.dropped } }

    public func close() {
        loop.execute { [socket] in socket.close() }
    }
}
