import CLibUV
import Glibc

/// Write-queue limits of a TCP socket (bytes libuv holds because the kernel buffer is full).
public struct TCPSettings: Sendable, Hashable {
    /// At or above this many queued bytes the socket reports `isWritable == false`.
    public var highWatermark: Int = 1 << 20
    /// Once the queue drains to this many bytes the socket is writable again.
    public var lowWatermark: Int = 256 << 10
    /// Hard bound: a write that would queue more fails with `.writeQueueFull`.
    public var maxQueuedBytes: Int = 16 << 20
    /// Async layer: bytes read but not yet consumed before reading pauses.
    public var maxBufferedReadBytes: Int = 1 << 20
    public var noDelay: Bool = true

    public init() {}
}

/// A connected TCP stream, callback API. Loop thread only (debug builds assert it).
///
/// Reading: set `onData`/`onEnd`, call `startReading()`; `pauseReading()` stops pulling from the
/// kernel so the peer's window fills (back-pressure). `onData` gets a view of the loop's read
/// buffer, valid only during the call.
/// Writing: `write` tries the kernel directly; what does not fit is copied into a queue bounded by
/// `settings.maxQueuedBytes`. `isWritable` turns false at the high watermark and true again at the
/// low one, reported through `onWritabilityChanged`. Completions run on the loop thread, possibly
/// before `write` returns (when the kernel took every byte at once).
public final class TCPSocket: LoopHandle, @unchecked Sendable {
    public let settings: TCPSettings
    public var onData: ((UnsafeRawBufferPointer) -> Void)?
    /// nil: the peer closed its side (EOF); otherwise the read error. Reading has stopped.
    public var onEnd: ((UVError?) -> Void)?
    public var onWritabilityChanged: ((Bool) -> Void)?
    public private(set) var queuedBytes = 0
    public private(set) var isWritable = true
    public private(set) var isReading = false
    private var ended = false

    /// True for a Unix-domain stream (`PipeListener`); the TCP-only options are skipped.
    public let isUnixSocket: Bool

    init(loop: EventLoop, settings: TCPSettings, unix: Bool = false) throws(UVError) {
        self.settings = settings
        self.isUnixSocket = unix
        super.init(loop: loop, type: unix ? UV_NAMED_PIPE : UV_TCP)
        if unix {
            try UVError.check(uv_pipe_init(loop.uvLoop, raw!.assumingMemoryBound(to: uv_pipe_t.self), 0), "pipe init")
        } else {
            try UVError.check(uv_tcp_init(loop.uvLoop, tcp), "tcp init")
        }
        register()
    }

    var tcp: UnsafeMutablePointer<uv_tcp_t> { raw!.assumingMemoryBound(to: uv_tcp_t.self) }
    var stream: UnsafeMutablePointer<uv_stream_t> { raw!.assumingMemoryBound(to: uv_stream_t.self) }

    public var localAddress: SocketAddress? {
        guard !isClosing else { return nil }
        guard !isUnixSocket else { return nil }
        return try? SocketAddress.read({ uv_tcp_getsockname(tcp, $0, $1) }, "getsockname")
    }

    public var remoteAddress: SocketAddress? {
        guard !isClosing else { return nil }
        guard !isUnixSocket else { return nil }
        return try? SocketAddress.read({ uv_tcp_getpeername(tcp, $0, $1) }, "getpeername")
    }

    /// The OS file descriptor (tests use it to check that sockets really close).
    public var fileDescriptor: Int32? {
        guard !isClosing else { return nil }
        var fd: uv_os_fd_t = -1
        return uv_fileno(handle, &fd) == 0 ? fd : nil
    }

    func applyOptions() {
        if settings.noDelay && !isUnixSocket { uv_tcp_nodelay(tcp, 1) }
    }

    // MARK: reading

    public func startReading() {
        loop.assertInLoop()
        guard !isClosing, !isReading, !ended else { return }
        let status = uv_read_start(stream, { h, _, buf in
            let loop = LoopHandle.owner(h, as: TCPSocket.self).loop
            buf!.pointee = uv_buf_init(loop.readBuffer.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(loop.readBuffer.count))
        }, { s, nread, buf in
            let socket = LoopHandle.owner(s, as: TCPSocket.self)
            if nread > 0 {
                socket.loop.activity &+= 1
                socket.onData?(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
            } else if nread < 0 {
                socket.isReading = false
                socket.ended = true
                uv_read_stop(s)
                socket.onEnd?(nread == Int(UV_EOF.rawValue) ? nil : UVError(code: Int32(nread), operation: "read"))
            }
        })
        if status == 0 { isReading = true } else { ended = true; onEnd?(UVError(code: status, operation: "read start")) }
    }

    public func pauseReading() {
        loop.assertInLoop()
        guard !isClosing, isReading else { return }
        uv_read_stop(stream)
        isReading = false
    }

    public func resumeReading() { startReading() }

    // MARK: writing

    public func write(_ bytes: [UInt8], completion: ((UVError?) -> Void)? = nil) {
        bytes.withUnsafeBytes { write($0, completion: completion) }
    }

    /// Writes `bytes` (copied if they cannot be sent at once). Order is preserved.
    public func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)? = nil) {
        loop.assertInLoop()
        guard !isClosing else { completion?(UVError(kind: .closed, operation: "write")); return }
        guard !bytes.isEmpty else { completion?(nil); return }
        guard queuedBytes + bytes.count <= settings.maxQueuedBytes else {
            completion?(UVError(kind: .writeQueueFull, operation: "write"))
            return
        }
        var offset = 0
        if queuedBytes == 0 {
            var buf = uv_buf_init(UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: CChar.self)), UInt32(bytes.count))
            let n = uv_try_write(stream, &buf, 1)
            if n >= 0 {
                offset = Int(n)
            } else if n != UV_EAGAIN.rawValue && n != UV_ENOSYS.rawValue {
                completion?(UVError(code: n, operation: "write"))
                return
            }
            if offset == bytes.count { completion?(nil); return }
        }
        let count = bytes.count - offset
        let request = WriteRequest(count: count, completion: completion)
        request.storage.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        var buf = uv_buf_init(request.storage.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(count))
        let req = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let status = uv_write(req, stream, &buf, 1) { req, status in
            let request = Unmanaged<WriteRequest>.fromOpaque(req!.pointee.data).takeRetainedValue()
            let socket = LoopHandle.owner(req!.pointee.handle, as: TCPSocket.self)
            req!.deallocate()
            socket.writeFinished(request, status: status)
        }
        if status < 0 {
            Unmanaged<WriteRequest>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            completion?(UVError(code: status, operation: "write"))
            return
        }
        queuedBytes += count
        if isWritable && queuedBytes >= settings.highWatermark {
            isWritable = false
            onWritabilityChanged?(false)
        }
    }

    private func writeFinished(_ request: WriteRequest, status: Int32) {
        queuedBytes -= request.storage.count
        request.completion?(status < 0 ? UVError(code: status, operation: "write") : nil)
        if !isWritable && queuedBytes <= settings.lowWatermark && !isClosing {
            isWritable = true
            onWritabilityChanged?(true)
        }
    }

    /// Half-close: sends FIN after every queued write; reading continues.
    public func shutdown(completion: ((UVError?) -> Void)? = nil) {
        loop.assertInLoop()
        guard !isClosing else { completion?(UVError(kind: .closed, operation: "shutdown")); return }
        let req = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(CompletionBox(completion)).toOpaque()
        let status = uv_shutdown(req, stream) { req, status in
            let box = Unmanaged<CompletionBox>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deallocate()
            box.body?(status < 0 ? UVError(code: status, operation: "shutdown") : nil)
        }
        if status < 0 {
            Unmanaged<CompletionBox>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            completion?(UVError(code: status, operation: "shutdown"))
        }
    }

    override func willClose() {
        isReading = false
    }

    override func didClose() {
        onData = nil
        onEnd = nil
        onWritabilityChanged = nil
    }
}

final class WriteRequest {
    let storage: UnsafeMutableRawBufferPointer
    let completion: ((UVError?) -> Void)?
    init(count: Int, completion: ((UVError?) -> Void)?) {
        storage = .allocate(byteCount: count, alignment: 1)
        self.completion = completion
    }
    deinit { storage.deallocate() }
}

final class CompletionBox {
    let body: ((UVError?) -> Void)?
    init(_ body: ((UVError?) -> Void)?) { self.body = body }
}
