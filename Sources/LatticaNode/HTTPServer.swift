import LatticaUV
import Metrics

/// The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on a (loopback) TCP port, loop thread.
/// At most `maxClients` connections; each is closed after one response or after 10 s.
final class MetricsServer: @unchecked Sendable {
    let loop: EventLoop
    let registry: MetricsRegistry
    let maxClients = 32
    private var listener: TCPListener?
    private var clients: [ObjectIdentifier: (socket: TCPSocket, timer: LoopTimer)] = [:]
    private(set) var localAddress: SocketAddress

    init(loop: EventLoop, host: String, port: UInt16, registry: MetricsRegistry) throws(DaemonError) {
        self.loop = loop
        self.registry = registry
        do {
            let addr = try SocketAddress(host: host, port: port)
            localAddress = addr
            listener = try TCPListener.listen(on: loop, address: addr) { [weak self] r in self?.accepted(r) }
            localAddress = listener!.localAddress
        } catch {
            throw DaemonError("cannot serve metrics on \(host):\(port): \(error)")
        }
    }

    func close() {
        listener?.close()
        listener = nil
        for c in clients.values { c.timer.cancel(); c.socket.close() }
        clients.removeAll()
    }

    private func accepted(_ r: Result<TCPSocket, UVError>) {
        guard case .success(let s) = r else { return }
        guard clients.count < maxClients else { s.close(); return }
        var received: [UInt8] = []
        let id = ObjectIdentifier(s)
        let timer = loop.scheduleTimer(after: .seconds(10)) { [weak self] _ in self?.drop(id) }
        clients[id] = (s, timer)
        s.onData = { [weak self, weak s] bytes in
            guard let self, let s else { return }
            received.append(contentsOf: bytes)
            switch MetricsHTTP.handle(received, body: { self.registry.render() }) {
            case .incomplete: return
            case .respond(let out):
                s.pauseReading()
                s.write(out) { [weak self] _ in self?.drop(id) }
            }
        }
        s.onEnd = { [weak self] _ in self?.drop(id) }
        s.startReading()
    }

    private func drop(_ id: ObjectIdentifier) {
        guard let c = clients.removeValue(forKey: id) else { return }
        c.timer.cancel()
        c.socket.close()
    }
}
