import Foundation
import LatticaAPI
import LatticaUV
import Logging
import Metrics

/// Serves the control API on a Unix socket (mode 0600) on the loop thread. Each client's requests
/// are answered in order, one at a time; lines are bounded by `ControlAPI.maxLineBytes`; at most
/// `maxClients` clients at once. The socket file is removed on close.
final class ControlServer: @unchecked Sendable {
    let loop: EventLoop
    let path: String
    let dispatcher: ControlDispatcher
    let logger: Logger
    let maxClients = 64
    private var listener: PipeListener?
    private var clients: [ObjectIdentifier: Client] = [:]

    final class Client: @unchecked Sendable {
        let socket: TCPSocket
        var buffer: [UInt8] = []
        var pending: [[UInt8]] = []
        var busy = false
        var closeAfterReply = false
        init(socket: TCPSocket) { self.socket = socket }
    }

    init(loop: EventLoop, path: String, dispatcher: ControlDispatcher, logger: Logger) throws(DaemonError) {
        self.loop = loop
        self.path = path
        self.dispatcher = dispatcher
        self.logger = logger
        // We hold the data directory lock, so a socket file left here is stale.
        unlink(path)
        let old = umask(0o177)
        defer { umask(old) }
        do {
            listener = try PipeListener.listen(on: loop, path: path) { [weak self] r in self?.accepted(r) }
        } catch {
            throw DaemonError("cannot create control socket \(path): \(error)")
        }
        chmod(path, 0o600)
    }

    func close() {
        listener?.close()
        listener = nil
        for c in clients.values { c.socket.close() }
        clients.removeAll()
        unlink(path)
    }

    private func accepted(_ r: Result<TCPSocket, UVError>) {
        guard case .success(let s) = r else { return }
        guard clients.count < maxClients else {
            Counter(label: "lattica_control_rejected_total", dimensions: [("reason", "too_many_clients")]).increment()
            s.close()
            return
        }
        let c = Client(socket: s)
        let id = ObjectIdentifier(c)
        clients[id] = c
        s.onData = { [weak self, weak c] bytes in
            guard let self, let c else { return }
            self.received(c, bytes)
        }
        s.onEnd = { [weak self] _ in self?.drop(id) }
        s.startReading()
    }

    private func drop(_ id: ObjectIdentifier) {
        clients.removeValue(forKey: id)?.socket.close()
    }

    private func received(_ c: Client, _ bytes: UnsafeRawBufferPointer) {
        // Scan only the new bytes for line ends: a long line costs O(n), not O(n²).
        var start = c.buffer.count
        c.buffer.append(contentsOf: bytes)
        while let nl = c.buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
            c.pending.append(Array(c.buffer[..<nl]))
            c.buffer.removeSubrange(...nl)
            start = 0
        }
        if c.buffer.count > ControlAPI.maxLineBytes || c.pending.count > 16 {
            Counter(label: "lattica_control_rejected_total", dimensions: [("reason", "oversize")]).increment()
            c.buffer.removeAll()
            c.socket.pauseReading()
            c.pending = [Array(#"{"v":1,"id":0,"method":"__oversize__"}"#.utf8)]
            c.closeAfterReply = true
        }
        next(c)
    }

    private func next(_ c: Client) {
        guard !c.busy, !c.pending.isEmpty else { return }
        c.busy = true
        let line = c.pending.removeFirst()
        let dispatcher = self.dispatcher
        let oversize = c.closeAfterReply
        Task { [loop] in
            let reply: [UInt8]
            if oversize {
                reply = ControlDispatcher.encodeLine(ControlResponse<JSONValue>(id: 0, error: ControlErrorBody(
                    code: "bad_request", message: "request line exceeds \(ControlAPI.maxLineBytes) bytes or too many pipelined requests")))
            } else {
                reply = await dispatcher.handle(line: line)
            }
            loop.execute { [weak self, weak c] in
                guard let self, let c else { return }
                c.socket.write(reply)
                c.busy = false
                if c.closeAfterReply { self.drop(ObjectIdentifier(c)); return }
                self.next(c)
            }
        }
    }
}
