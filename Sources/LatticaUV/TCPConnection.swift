import Synchronization

/// A TCP connection for async code. Thread-safe; the socket itself stays on its loop thread.
///
/// Reading: bytes arrive on the loop thread into a buffer bounded by
/// `settings.maxBufferedReadBytes`; when it is full, reading pauses (the kernel window fills and
/// the peer slows down) until `read()` drains it below half. One reader at a time.
/// Writing: `write` suspends while the socket's write queue is above its high watermark.
public final class TCPConnection: @unchecked Sendable {
    public let loop: EventLoop
    public let localAddress: SocketAddress?
    public let remoteAddress: SocketAddress?
    /// Loop thread only.
    let socket: TCPSocket
    /// Loop thread only.
    private var writeWaiter: ((Result<Void, any Error>) -> Void)?
    /// Loop thread only: first write error, reported to later writes.
    private var writeError: UVError?

    private struct ReadState {
        var chunks: [[UInt8]] = []
        var head = 0
        var bufferedBytes = 0
        var paused = false
        var end: Result<Void, UVError>?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
    }
    private let state = Mutex(ReadState())

    /// Adopts a connected socket (loop thread) and starts reading.
    public init(adopting socket: TCPSocket) {
        socket.loop.assertInLoop()
        self.loop = socket.loop
        self.socket = socket
        localAddress = socket.localAddress
        remoteAddress = socket.remoteAddress
        socket.onData = { [unowned self] bytes in received(Array(bytes)) }
        socket.onEnd = { [unowned self] error in ended(error.map { .failure($0) } ?? .success(())) }
        socket.onWritabilityChanged = { [unowned self] writable in
            if writable { resumeWriter(.success(())) }
        }
        // The socket's close callback keeps `self` alive until the socket is gone.
        socket.onClose = { [self] in
            ended(.failure(UVError(kind: .closed, operation: "read")))
            resumeWriter(.failure(UVError(kind: .closed, operation: "write")))
        }
        socket.startReading()
    }

    /// Connects to `address` on `loop`.
    public static func connect(
        to address: SocketAddress, on loop: EventLoop, timeout: Duration? = nil, settings: TCPSettings = TCPSettings()
    ) async throws -> TCPConnection {
        try await loop.submitCallback { loop, complete in
            TCPSocket.connect(on: loop, to: address, timeout: timeout, settings: settings) { result in
                complete(result.map { TCPConnection(adopting: $0) }.mapError { $0 })
            }
        }
    }

    // MARK: reading (loop thread side)

    private func received(_ bytes: [UInt8]) {
        let (waiter, pause): (CheckedContinuation<[UInt8]?, any Error>?, Bool) = state.withLock { s in
            if let w = s.waiter { s.waiter = nil; return (w, false) }
            s.chunks.append(bytes)
            s.bufferedBytes += bytes.count
            if !s.paused && s.bufferedBytes >= socket.settings.maxBufferedReadBytes { s.paused = true; return (nil, true) }
            return (nil, false)
        }
        if pause { socket.pauseReading() }
        waiter?.resume(returning: bytes)
    }

    private func ended(_ result: Result<Void, UVError>) {
        let waiter: CheckedContinuation<[UInt8]?, any Error>? = state.withLock { s in
            if s.end == nil { s.end = result }
            guard s.head == s.chunks.count, let w = s.waiter else { return nil }
            s.waiter = nil
            return w
        }
        guard let waiter else { return }
        switch result {
        case .success: waiter.resume(returning: nil)
        case .failure(let e): waiter.resume(throwing: e)
        }
    }

    // MARK: reading (any thread)

    /// The next chunk of bytes, or nil at end of stream (the peer half-closed). Throws the read
    /// error, or `.closed` after `close()`.
    public func read() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<[UInt8]?, any Error>) in
            enum Outcome { case chunk([UInt8], resume: Bool), end(Result<Void, UVError>), wait }
            let outcome: Outcome = state.withLock { s in
                if s.head < s.chunks.count {
                    let chunk = s.chunks[s.head]
                    s.head += 1
                    s.bufferedBytes -= chunk.count
                    if s.head == s.chunks.count { s.chunks.removeAll(keepingCapacity: true); s.head = 0 }
                    var resume = false
                    if s.paused && s.bufferedBytes <= socket.settings.maxBufferedReadBytes / 2 { s.paused = false; resume = true }
                    return .chunk(chunk, resume: resume)
                }
                if let end = s.end { return .end(end) }
                precondition(s.waiter == nil, "TCPConnection.read() called concurrently")
                s.waiter = cont
                return .wait
            }
            switch outcome {
            case .chunk(let chunk, let resume):
                if resume { loop.execute { [socket] in socket.resumeReading() } }
                cont.resume(returning: chunk)
            case .end(.success): cont.resume(returning: nil)
            case .end(.failure(let e)): cont.resume(throwing: e)
            case .wait: break
            }
        }
    }

    /// Bytes read and not yet consumed (bounded by `settings.maxBufferedReadBytes` + one chunk).
    public var bufferedBytes: Int { state.withLock { $0.bufferedBytes } }

    /// The incoming bytes as an async sequence of chunks (ends at EOF).
    public var chunks: Chunks { Chunks(connection: self) }

    public struct Chunks: AsyncSequence, Sendable {
        let connection: TCPConnection
        public struct AsyncIterator: AsyncIteratorProtocol {
            let connection: TCPConnection
            public mutating func next() async throws -> [UInt8]? { try await connection.read() }
        }
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(connection: connection) }
    }

    // MARK: writing

    /// Queues `bytes`; suspends while the write queue is above the high watermark (the peer is
    /// slower than the producer). Throws an earlier write error, `.closed`, or `.writeQueueFull`
    /// for a single write larger than `settings.maxQueuedBytes`.
    public func write(_ bytes: [UInt8]) async throws {
        try await loop.submitCallback { [self] _, complete in
            if let writeError { complete(.failure(writeError)); return }
            socket.write(bytes) { [self] error in
                guard let error else { return }
                if writeError == nil { writeError = error }
                resumeWriter(.failure(error))
            }
            if let writeError { complete(.failure(writeError)); return }
            if socket.isWritable { complete(.success(())); return }
            writeWaiter = complete
        } as Void
    }

    private func resumeWriter(_ result: Result<Void, any Error>) {
        let waiter = writeWaiter
        writeWaiter = nil
        waiter?(result)
    }

    /// Sends FIN after all queued bytes (half-close); reading continues until the peer closes.
    public func shutdownWrite() async throws {
        try await loop.submitCallback { [socket] _, complete in
            socket.shutdown { error in complete(error.map { .failure($0) } ?? .success(())) }
        } as Void
    }

    /// Closes the connection; pending reads end with `.closed`. Safe from any thread, idempotent.
    public func close() {
        loop.execute { [socket] in socket.close() }
    }
}
