import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// The STUN client (RFC 8489, RFC 5780 classification): runs `STUN.Probe` on one UDP socket
/// against the configured servers at start and every `interval_s`, and reports the NAT's mapping
/// and filtering behaviour and our mapped address in `nat.status`. Contacts no server unless
/// configured. Loop thread only.
///
/// Config `[stun]`: `servers = ["ip:port", …]` (default none), `interval_s` (default 600),
/// `rto_ms` (default 500). Metrics: `lattica_stun_transactions_total`,
/// `lattica_stun_probes_total{result}`, `lattica_stun_rejected_total{reason}`.
final class STUNService: NodeService, NATStatusContributor, @unchecked Sendable {
    static let name = "stun"

    struct Settings: Equatable {
        var servers: [NAT.Endpoint] = []
        var interval: Duration = .seconds(600)
        var rto: Duration = .milliseconds(500)
    }

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let list = try r.strings("servers") {
            for text in list.prefix(16) {
                guard let e = NAT.Endpoint(parsing: text) else {
                    throw ConfigError(source: section.source, message: "option 'stun.servers': '\(text)' is not ip:port or [ipv6]:port")
                }
                s.servers.append(e)
            }
        }
        if let v = try r.double("interval_s", range: 1...86_400) { s.interval = .milliseconds(Int64(v * 1000)) }
        if let v = try r.int("rto_ms", range: 10...10_000) { s.rto = .milliseconds(Int64(v)) }
        try r.finish()
        return s
    }

    let loop: EventLoop
    let swarm: Swarm
    let logger: Logger
    let settings: Settings
    var socket: UDPSocket?
    var probe: STUN.Probe?
    var wake: LoopTimer?
    var repeatTimer: LoopTimer?
    private(set) var last: STUN.Probe.Result?
    var seed = SecureRandom.uint64()
    var published = STUN.Probe.Metrics()
    /// Hears every finished probe (tests).
    var onFinished: ((STUN.Probe.Result) -> Void)?

    init(context: ServiceContext) throws(DaemonError) {
        loop = context.loop
        swarm = context.swarm
        logger = context.logger
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
    }

    func start() {
        guard !settings.servers.isEmpty else { return }
        let any = settings.servers[0].isIPv4 ? "0.0.0.0" : "::"
        do {
            let s = try UDPSocket.bind(on: loop, address: SocketAddress(host: any, port: 0))
            s.onDatagram = { [weak self] bytes, from in self?.received(Array(bytes), from: from) }
            s.onError = { [weak self] e in self?.logger.debug("stun socket error", metadata: ["error": "\(e)"]) }
            s.startReceiving()
            socket = s
        } catch {
            logger.warning("cannot open the STUN socket", metadata: ["error": "\(error)"])
            return
        }
        run()
        repeatTimer = loop.scheduleTimer(after: settings.interval, repeating: settings.interval) { [weak self] _ in self?.run() }
    }

    func stop() {
        wake?.cancel()
        repeatTimer?.cancel()
        socket?.close()
        socket = nil
    }

    /// Starts a probe (unless one runs).
    func run() {
        guard let socket, probe == nil || probe!.isFinished else { return }
        let port = socket.localAddress.port
        let local = SocketAddress.interfaceAddresses().map { NAT.Endpoint(ip: $0.address.ipBytes, port: port) }
        var ps = STUN.Probe.Settings()
        ps.rto = settings.rto
        seed &+= 0x9E37_79B9_7F4A_7C15
        var p = STUN.Probe(servers: settings.servers, localEndpoints: local, settings: ps, seed: seed)
        published = STUN.Probe.Metrics()
        let ds = p.start(now: loop.now)
        probe = p
        apply(ds)
    }

    func received(_ bytes: [UInt8], from: SocketAddress) {
        guard var p = probe, from.ipBytes.count == 4 || from.ipBytes.count == 16 else { return }
        let ds = p.onDatagram(bytes, from: NAT.Endpoint(ip: from.ipBytes, port: from.port), now: loop.now)
        probe = p
        apply(ds)
    }

    func apply(_ ds: [STUN.Probe.Directive]) {
        for d in ds {
            switch d {
            case .send(let bytes, let to):
                // SocketAddress(multiaddr:) reads `/tcp/`; the IP and port are what a UDP send needs.
                guard let addr = SocketAddress(multiaddr: to.multiaddr(.tcp)) else { continue }
                socket?.send(bytes, to: addr)
            case .wake(let at):
                wake?.cancel()
                wake = loop.scheduleTimer(after: max(.zero, at - loop.now)) { [weak self] _ in
                    guard let self, var p = self.probe else { return }
                    let ds = p.onTimer(now: self.loop.now)
                    self.probe = p
                    self.apply(ds)
                }
            case .finished(let r):
                wake?.cancel()
                last = r
                // An answer that classified nothing does not overwrite what an earlier one did.
                if r.mapping != .unknown { swarm.setNATBehaviour(mapping: r.mapping, filtering: r.filtering) }
                onFinished?(r)
                Counter(label: "lattica_stun_probes_total", dimensions: [("result", r.mapped == nil ? "no_answer" : "mapped")]).increment()
                logger.info("STUN probe", metadata: ["mapped": "\(r.mapped?.description ?? "-")", "mapping": "\(r.mapping.rawValue)",
                                                     "filtering": "\(r.filtering.rawValue)"])
            }
        }
        publishMetrics()
    }

    /// Counts what the probe counted since the last call.
    func publishMetrics() {
        guard let m = probe?.metrics else { return }
        if m.transactions > published.transactions {
            Counter(label: "lattica_stun_transactions_total").increment(by: m.transactions - published.transactions)
        }
        if m.timeouts > published.timeouts {
            Counter(label: "lattica_stun_timeouts_total").increment(by: m.timeouts - published.timeouts)
        }
        for (reason, n) in m.rejected where n > published.rejected[reason, default: 0] {
            Counter(label: "lattica_stun_rejected_total", dimensions: [("reason", reason)]).increment(by: n - published.rejected[reason, default: 0])
        }
        published = m
    }

    func contribute(to status: inout NATStatusResult) {
        guard let r = last else { return }
        status.mapping = r.mapping.rawValue
        status.filtering = r.filtering.rawValue
        for m in r.mappedAll where !status.mappedAddrs.contains(m.multiaddr(.udp).description) {
            status.mappedAddrs.append(m.multiaddr(.udp).description)
        }
    }
}
