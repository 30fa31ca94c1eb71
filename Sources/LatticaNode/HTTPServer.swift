import LatticaUV
import Metrics

/// The daemon's HTTP port (`metrics_addr`, loopback by default), loop thread: `GET /metrics` and the
/// routes services register (`ServiceContext.http`: the dashboard). At most `maxClients`
/// connections; each is closed after one response or after 10 s. Handlers run on the loop thread.
final class HTTPServer: @unchecked Sendable {
    let loop: EventLoop
    let routes: [String: HTTP.Route]
    let maxClients = 32
    private var listener: TCPListener?
    private var clients: [ObjectIdentifier: (socket: TCPSocket, timer: LoopTimer)] = [:]
    private(set) var localAddress: SocketAddress

    init(loop: EventLoop, host: String, port: UInt16, routes: [HTTP.Route]) throws(DaemonError) {
        self.loop = loop
        var table: [String: HTTP.Route] = [:]
        for r in routes {
            precondition(table[r.path] == nil, "HTTP route \(r.path) registered twice")
            table[r.path] = r
        }
        self.routes = table
        do {
            let addr = try SocketAddress(host: host, port: port)
            localAddress = addr
            listener = try TCPListener.listen(on: loop, address: addr) { [weak self] r in self?.accepted(r) }
            localAddress = listener!.localAddress
        } catch {
            throw DaemonError("cannot serve HTTP (metrics, dashboard) on \(host):\(port): \(error)")
        }
    }

    /// The Prometheus exposition of `registry`: open to any Host (scrapers name the target).
    static func metricsRoute(_ registry: MetricsRegistry) -> HTTP.Route {
        HTTP.Route(path: "/metrics", localOnly: false) { _ in
            HTTP.Response(contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.render())
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
            switch HTTP.handle(received, routes: self.routes) {
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
