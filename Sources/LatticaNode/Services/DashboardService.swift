import LatticaCore
import LatticaCRDT
import LatticaUV
import Metrics

/// The live dashboard of `latticad` (Docs/DASHBOARD.md): a page at `/` on the daemon's HTTP port
/// (`metrics_addr`, loopback by default) and the JSON API behind it (`/api/v1/…`), which the page
/// polls every second and scripts read the same way. It owns no protocol: it builds its answers
/// from the other services' entry points on the loop thread (the swarm's `peerEntries()`, the
/// DHT's table, `CRDTService.syncStatus()` and the store, `TrainingService.status()`), and keeps
/// one thing of its own, the bounded history of every node's progress per run
/// (`Dashboard.History`), fed by the CRDT store's applied batches (replayed from its log at start).
///
/// The page is static, embedded in the binary, and loads nothing from elsewhere; it renders text
/// with `textContent` only, under a Content-Security-Policy without inline scripts or eval.
///
/// Config `[dashboard]`: `enabled` (default true), `history_points` (points per node and run,
/// 16…128, default 128: it can only shrink, so that the answer at every bound stays under the
/// response limit). Loop thread only.
final class DashboardService: NodeService, @unchecked Sendable {
    static let name = "dashboard"

    struct Settings: Equatable {
        var enabled = true
        var limits = Dashboard.Limits()
    }

    let ctx: ServiceContext
    let settings: Settings
    let startedAt: Instant
    var history: Dashboard.History

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.int("history_points", range: 16...128) { s.limits.maxPoints = v }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        ctx = context
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        startedAt = context.loop.now
        history = Dashboard.History(limits: settings.limits)
        guard settings.enabled else { return }
        for (path, asset) in Dashboard.assets {
            context.http(path) { _ in Dashboard.response(asset.body, contentType: asset.contentType) }
        }
        let routes: [(String, @Sendable (DashboardService) -> HTTP.Response)] = [
            ("/api/v1/state", { $0.json($0.state()) }),
            ("/api/v1/node", { $0.json($0.node()) }),
            ("/api/v1/peers", { $0.json($0.peers()) }),
            ("/api/v1/crdt", { $0.json($0.crdtState()) }),
            ("/api/v1/runs", { $0.json($0.runs()) }),
        ]
        for (path, build) in routes {
            let served = Counter(label: "lattica_dashboard_requests_total", dimensions: [("path", path)])
            context.http(path) { [weak self] _ in
                guard let self else { return .text(500, "daemon is stopping\n") }
                served.increment()
                return build(self)
            }
        }
    }

    func start() {
        guard settings.enabled, let crdt else { return }
        // What the store already holds (after a restart), then every change as it is applied.
        for b in crdt.crdt.allBatches {
            for d in b.deltas { ingest(d) }
        }
        crdt.observeApplied { [weak self] a in
            for d in a.deltas { self?.ingest(d) }
        }
    }

    var crdt: CRDTService? { ctx.service(CRDTService.self) }
    var training: TrainingService? { ctx.service(TrainingService.self) }
    var dht: DHTService? { ctx.service(DHTService.self) }

    /// A delta of `run/<id>/progress/<peer>` becomes a point of that node's curve. The store has
    /// checked it already: only `<peer>` writes its progress, and the record decodes.
    func ingest(_ d: CRDT.Delta) {
        guard d.path.hasPrefix("run/"), d.path.contains("/progress/"), case .register(let v) = d.op,
              case .success(.runProgress(let run, let peer)) = CRDT.Namespace.parse(d.path),
              let p = CRDT.Progress(value: v) else { return }
        history.record(run: run, peer: peer, step: p.step, loss: p.loss, accuracy: p.accuracy, pinned: training?.run?.id)
    }

    func json<T: Encodable>(_ value: T) -> HTTP.Response {
        switch Dashboard.encode(value, limit: settings.limits.maxResponseBytes) {
        case .success(let body):
            return Dashboard.response(body, contentType: "application/json; charset=utf-8")
        case .failure(let why):
            Counter(label: "lattica_dashboard_errors_total", dimensions: [("reason", why.rawValue)]).increment()
            ctx.logger.warning("dashboard response not sent", metadata: ["reason": "\(why.rawValue)"])
            return .text(500, "cannot answer: \(why.rawValue)\n")
        }
    }
}
