import CLibUV

/// A listening Unix-domain stream socket (libuv pipe), for local control sockets. Accepted
/// connections are `TCPSocket`s with `isUnixSocket == true`: the same read/write/back-pressure API.
/// Loop thread only. The caller sets the file's mode and removes it after `close()`.
public final class PipeListener: LoopHandle, @unchecked Sendable {
    public let path: String
    public let settings: TCPSettings
    private var onAccept: ((Result<TCPSocket, UVError>) -> Void)?

    public static func listen(
        on loop: EventLoop, path: String, backlog: Int32 = 64, settings: TCPSettings = TCPSettings(),
        onAccept: @escaping (Result<TCPSocket, UVError>) -> Void
    ) throws(UVError) -> PipeListener {
        loop.assertInLoop()
        let l = try PipeListener(loop: loop, path: path, settings: settings)
        do throws(UVError) {
            let pipe = l.raw!.assumingMemoryBound(to: uv_pipe_t.self)
            try UVError.check(uv_pipe_bind(pipe, path), "bind \(path)")
            let status = uv_listen(UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_stream_t.self), backlog) { server, status in
                LoopHandle.owner(server, as: PipeListener.self).accept(status: status)
            }
            try UVError.check(status, "listen \(path)")
        } catch {
            l.close()
            throw error
        }
        l.onAccept = onAccept
        return l
    }

    private init(loop: EventLoop, path: String, settings: TCPSettings) throws(UVError) {
        self.path = path
        self.settings = settings
        super.init(loop: loop, type: UV_NAMED_PIPE)
        try UVError.check(uv_pipe_init(loop.uvLoop, raw!.assumingMemoryBound(to: uv_pipe_t.self), 0), "pipe init")
        register()
    }

    private func accept(status: Int32) {
        guard !isClosing else { return }
        guard status == 0 else { onAccept?(.failure(UVError(code: status, operation: "accept"))); return }
        let socket: TCPSocket
        do { socket = try TCPSocket(loop: loop, settings: settings, unix: true) } catch {
            onAccept?(.failure(error)); return
        }
        let result = uv_accept(raw!.assumingMemoryBound(to: uv_stream_t.self), socket.stream)
        guard result == 0 else {
            socket.close()
            onAccept?(.failure(UVError(code: result, operation: "accept")))
            return
        }
        if let onAccept { onAccept(.success(socket)) } else { socket.close() }
    }

    override func didClose() { onAccept = nil }
}
