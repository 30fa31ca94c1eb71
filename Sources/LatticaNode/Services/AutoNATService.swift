import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaNAT
import LatticaUV
import LatticaWire
import Logging
import Metrics

/// Reachability: confirms identify's observed addresses (`NAT.ObservedAddresses`, advertised as
/// source `observed`), runs AutoNAT v2 both ways (`/libp2p/autonat/2/dial-request`,
/// `/libp2p/autonat/2/dial-back`): as a server it dials requesters back on a one-off connection
/// (`Swarm.dialOneOff`) under the amplification guard and concurrency limits; as a client it asks
/// connected servers to dial our candidate addresses and concludes public or private
/// (`Swarm.setReachability`; reachable addresses advertised as source `autonat`). Registers
/// `nat.status`, which every `NATStatusContributor` fills in. Loop thread only.
///
/// Config `[autonat]` (Docs/OPERATIONS.md): `enabled`, `server`, `allow_private_addrs`,
/// `min_confirmations`, `observed_min_peers`, `observed_min_networks`, `probe_interval_s`,
/// `servers_per_probe`, `max_dialbacks_per_peer`, `max_dialbacks`.
final class AutoNATService: NodeService, NATStatusContributor, @unchecked Sendable {
    static let name = "autonat"

    struct Settings: Equatable {
        var enabled = true
        var server = true
        var allowPrivateAddrs = false
        var minConfirmations = 3
        var observedMinPeers = 3
        var observedMinNetworks = 2
        var probeInterval: Duration = .seconds(60)
        var serversPerProbe = 4
        var maxDialbacksPerPeer = 2
        var maxDialbacks = 16
        var dialBackTimeout: Duration = .seconds(10)
    }

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.bool("server") { s.server = v }
        if let v = try r.bool("allow_private_addrs") { s.allowPrivateAddrs = v }
        if let v = try r.int("min_confirmations", range: 1...32) { s.minConfirmations = v }
        if let v = try r.int("observed_min_peers", range: 1...32) { s.observedMinPeers = v }
        if let v = try r.int("observed_min_networks", range: 1...32) { s.observedMinNetworks = v }
        if let v = try r.double("probe_interval_s", range: 0.05...86_400) { s.probeInterval = .milliseconds(Int64(v * 1000)) }
        if let v = try r.int("servers_per_probe", range: 1...32) { s.serversPerProbe = v }
        if let v = try r.int("max_dialbacks_per_peer", range: 1...64) { s.maxDialbacksPerPeer = v }
        if let v = try r.int("max_dialbacks", range: 1...1024) { s.maxDialbacks = v }
        try r.finish()
        return s
    }

    let swarm: Swarm
    let loop: EventLoop
    let settings: Settings
    let logger: Logger
    var observed: NAT.ObservedAddresses
    var tally: AutoNAT.Tally
    var limiter: AutoNAT.Limiter
    var serverSettings = AutoNAT.ServerSettings()
    var rng = SeededRandom(seed: SecureRandom.uint64())
    /// Per connected peer: whether we dialed, and its address as we see it.
    var connections: [PeerId: ConnectedPeer] = [:]
    /// Nonces of our requests in flight → whether the dial-back arrived. Bounded.
    var nonces: [UInt64: Bool] = [:]
    let maxNonces = 256
    var asking: Set<PeerId> = []
    private(set) var advertisedObserved: [Multiaddr] = []
    /// Hears the outcome of every dial request we made (tests): the server, the result label.
    var onProbeResult: ((PeerId, String) -> Void)?
    /// Hears every DialResponse we sent as a server (tests): the requester, status, dial status.
    var onServed: ((PeerId, AutoNAT.DialResponse) -> Void)?
    var probeTimer: LoopTimer?

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        loop = context.loop
        logger = context.logger
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        var os = NAT.ObservedAddresses.Settings()
        os.minPeers = settings.observedMinPeers
        os.minNetworks = settings.observedMinNetworks
        observed = NAT.ObservedAddresses(settings: os)
        tally = AutoNAT.Tally(minConfirmations: settings.minConfirmations)
        limiter = AutoNAT.Limiter(maxPerPeer: settings.maxDialbacksPerPeer, maxTotal: settings.maxDialbacks)
        serverSettings.allowPrivateAddrs = settings.allowPrivateAddrs
        let ctx = context
        context.method(Methods.NATStatus.self) { _ in
            try await ctx.onLoop {
                var r = NATStatusResult(reachability: ctx.swarm.reachability.rawValue)
                r.advertisedAddrs = ctx.swarm.advertisedAddrs.map(\.description)
                for s in ctx.services() { (s as? any NATStatusContributor)?.contribute(to: &r) }
                return r
            }
        }
        guard settings.enabled else { return }
        if settings.server {
            swarm.handle(AutoNAT.dialRequestProtocol) { [weak self] s in
                guard let self else { return nil }
                return ServerStream(service: self, stream: s)
            }
        }
        swarm.handle(AutoNAT.dialBackProtocol) { [weak self] _ in
            guard let self else { return nil }
            return DialBackStream(service: self)
        }
    }

    func start() {
        guard settings.enabled else { return }
        observed.setListenPorts(swarm.listenAddrs.compactMap { NAT.Endpoint(multiaddr: $0)?.port })
        let interval = settings.probeInterval
        probeTimer = loop.scheduleTimer(after: interval, repeating: interval) { [weak self] _ in self?.tick() }
    }

    func stop() {
        probeTimer?.cancel()
        probeTimer = nil
    }

    func onPeerEvent(_ event: PeerEvent) {
        guard settings.enabled else { return }
        switch event {
        case .connected(let p, let c): connections[p] = c
        case .disconnected(let p): connections[p] = nil
        case .identified(let p, let info):
            if let o = info.observedAddr, let c = connections[p] {
                observed.setListenPorts(swarm.listenAddrs.compactMap { NAT.Endpoint(multiaddr: $0)?.port })
                let rejections = observed.onObserved(o, by: p, peerAddr: c.remoteAddr, outbound: c.isDialer, now: loop.now)
                for r in rejections {
                    Counter(label: "lattica_nat_observed_rejected_total", dimensions: [("reason", r.rawValue)]).increment()
                }
                updateObserved()
            }
            if info.protocols.contains(AutoNAT.dialRequestProtocol), swarm.reachability == .unknown { probe(only: p) }
        default: break
        }
    }

    // MARK: observed addresses

    func updateObserved() {
        let now = loop.now
        observed.expire(now: now)
        let confirmed = observed.confirmed(now: now)
        guard confirmed != advertisedObserved else { return }
        for a in confirmed where !advertisedObserved.contains(a) {
            Counter(label: "lattica_nat_observed_confirmed_total").increment()
            logger.info("observed address confirmed", metadata: ["addr": "\(a)"])
        }
        advertisedObserved = confirmed
        swarm.setAdvertised("observed", confirmed)
    }

    func contribute(to status: inout NATStatusResult) {
        for a in advertisedObserved + tally.reachableAddrs where !status.mappedAddrs.contains(a.description) {
            status.mappedAddrs.append(a.description)
        }
    }

    // MARK: client

    func tick() {
        updateObserved()
        tally.expire(now: loop.now)
        probe(only: nil)
    }

    /// The addresses we ask servers to test, in priority order: confirmed observed addresses, then
    /// other observed candidates, then our listen addresses (those a server may dial).
    func candidates() -> [Multiaddr] {
        var out: [Multiaddr] = []
        let now = loop.now
        let listen = swarm.listenAddrs.filter { a in
            guard let e = NAT.Endpoint(multiaddr: a), !e.isUnspecified else { return false }
            return settings.allowPrivateAddrs || e.isPublic
        }
        for a in observed.confirmed(now: now) + observed.candidates(now: now) + listen where !out.contains(a) { out.append(a) }
        return Array(out.prefix(8))
    }

    /// Asks up to `serversPerProbe` AutoNAT servers among the connected peers (or `only`).
    func probe(only: PeerId?) {
        let addrs = candidates()
        guard !addrs.isEmpty else { return }
        let answered = tally.servers(for: addrs[0])
        var servers: [PeerId] = []
        if let only { servers = [only] } else {
            servers = connections.keys.filter { p in
                swarm.peerInfo[p]?.protocols.contains(AutoNAT.dialRequestProtocol) ?? false
            }.sorted { $0.description < $1.description }
        }
        servers = servers.filter { !asking.contains($0) && !answered.contains($0) && connections[$0] != nil }
        for p in servers.prefix(settings.serversPerProbe) { ask(p, addrs) }
    }

    func ask(_ server: PeerId, _ addrs: [Multiaddr]) {
        guard nonces.count < maxNonces, let raw = swarm.openRawStream(server, AutoNAT.dialRequestProtocol) else { return }
        let nonce = rng.next()
        nonces[nonce] = false
        asking.insert(server)
        Counter(label: "lattica_autonat_probes_total", dimensions: [("result", "sent")]).increment()
        raw.write(AutoNAT.framed(AutoNAT.encode(.dialRequest(.init(addrs: addrs, nonce: nonce)))))
        var frames = AutoNAT.FrameReader()
        var done = false
        let finish: (String) -> Void = { [weak self, weak raw] result in
            guard !done else { return }
            done = true
            Counter(label: "lattica_autonat_probes_total", dimensions: [("result", result)]).increment()
            self?.onProbeResult?(server, result)
            self?.nonces[nonce] = nil
            self?.asking.remove(server)
            raw?.closeWrite()
        }
        raw.onEnd = { _ in finish("no_response") }
        raw.onData = { [weak self, weak raw] bytes in
            guard let self, let raw else { return }
            for f in frames.push(bytes) {
                guard case .frame(let body) = f, case .success(let m) = AutoNAT.decode(body[...]) else {
                    raw.reset(); finish("malformed"); return
                }
                switch m {
                case .dialDataRequest(let idx, let n):
                    // Pay for a dial of one of our own addresses, up to the spec's 100 kB.
                    guard Int(idx) < addrs.count, n <= 100_000 else { raw.reset(); finish("data_refused"); return }
                    var left = Int(n)
                    while left > 0 {
                        let chunk = min(left, AutoNAT.maxDataChunk)
                        raw.stream?.send(AutoNAT.framed(AutoNAT.encode(.dialDataResponse(dataLength: chunk))), close: false)
                        left -= chunk
                    }
                case .dialResponse(let r):
                    finish(self.evaluate(r, addrs: addrs, nonce: nonce, server: server))
                    return
                default:
                    raw.reset(); finish("unexpected"); return
                }
            }
        }
    }

    func evaluate(_ r: AutoNAT.DialResponse, addrs: [Multiaddr], nonce: UInt64, server: PeerId) -> String {
        guard let status = r.status else { return "unknown_status" }
        guard status == .ok else { return "refused" }
        guard Int(r.addrIdx) < addrs.count else { return "bad_index" }
        let addr = addrs[Int(r.addrIdx)]
        switch r.dialStatus {
        case .ok?:
            guard nonces[nonce] == true else { return "unverified" }
            tally.record(addr, server: server, .reachable, now: loop.now)
        case .dialError?:
            tally.record(addr, server: server, .unreachable, now: loop.now)
        default:
            return "dial_back_error"
        }
        concluded()
        return r.dialStatus == .ok ? "reachable" : "unreachable"
    }

    func concluded() {
        swarm.setAdvertised("autonat", tally.reachableAddrs)
        let r = tally.reachability
        if r != .unknown, r != swarm.reachability {
            logger.info("reachability", metadata: ["state": "\(r.rawValue)"])
            swarm.setReachability(r)
        }
    }

    /// Our nonce came back on a dial-back stream.
    func dialBack(_ nonce: UInt64) -> Bool {
        guard nonces[nonce] != nil else {
            Counter(label: "lattica_autonat_rejected_total", dimensions: [("reason", "unknown_nonce")]).increment()
            return false
        }
        nonces[nonce] = true
        return true
    }

    func rejected(_ r: AutoNAT.Refusal) {
        Counter(label: "lattica_autonat_rejected_total", dimensions: [("reason", r.rawValue)]).increment()
    }

    /// The client side of a dial-back stream: read the nonce, confirm, close.
    final class DialBackStream: StreamHandler {
        weak var service: AutoNATService?
        var frames = AutoNAT.FrameReader(maxLength: 64)
        var answered = false
        init(service: AutoNATService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            for f in frames.push(bytes) {
                guard case .frame(let body) = f, let nonce = AutoNAT.decodeDialBack(body[...]), service?.dialBack(nonce) == true else {
                    s.reset(); return
                }
                answered = true
                s.send(AutoNAT.framed(AutoNAT.encodeDialBackResponse()), close: true)
                return
            }
        }
        /// Finished without a whole DialBack: refused.
        func onFinished(_ s: SwarmStream) { if !answered { s.reset() } }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }

    /// The server side of one dial-request stream.
    final class ServerStream: StreamHandler {
        weak var service: AutoNATService?
        var session: AutoNAT.ServerSession
        var frames = AutoNAT.FrameReader()
        var holding = false

        init(service: AutoNATService, stream: SwarmStream) {
            self.service = service
            let remote = stream.remoteAddr.flatMap { $0.components.contains(.p2pCircuit) ? nil : NAT.Endpoint(multiaddr: $0) }
            session = AutoNAT.ServerSession(settings: service.serverSettings, observed: remote)
        }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard let service else { return }
            for f in frames.push(bytes) {
                guard case .frame(let body) = f, case .success(let m) = AutoNAT.decode(body[...]) else {
                    service.rejected(.decode)
                    s.reset(); return
                }
                switch session.onMessage(m, rng: &service.rng) {
                case .none: break
                case .requestData(let msg): s.send(AutoNAT.framed(AutoNAT.encode(msg)), close: false)
                case .respond(let r, let why):
                    if let why { service.rejected(why) }
                    service.onServed?(s.peer, r)
                    s.send(AutoNAT.framed(AutoNAT.encode(.dialResponse(r))), close: true)
                    return
                case .dial(let e, let nonce, _):
                    if let why = service.limiter.acquire(s.peer) {
                        service.rejected(why)
                        s.send(AutoNAT.framed(AutoNAT.encode(.dialResponse(.init(status: .requestRejected)))), close: true)
                        return
                    }
                    holding = true
                    guard let addr = SocketAddress(multiaddr: e.multiaddr()) else { return }
                    let peer = s.peer
                    service.swarm.dialOneOff(addr, proto: AutoNAT.dialBackProtocol, payload: AutoNAT.framed(AutoNAT.encodeDialBack(nonce: nonce)),
                                             timeout: service.settings.dialBackTimeout) { [weak self, weak service] outcome in
                        service?.limiter.release(peer)
                        guard let self else { return }
                        self.holding = false
                        let status: AutoNAT.DialStatus = switch outcome {
                        case .connectFailed: .dialError
                        case .streamFailed: .dialBackError
                        case .replied: .ok
                        }
                        let r = self.session.onDialed(status)
                        service?.onServed?(peer, r)
                        s.send(AutoNAT.framed(AutoNAT.encode(.dialResponse(r))), close: true)
                    }
                    return
                }
            }
        }

        /// The requester finished its side: a request that is not being dialled is over (a
        /// partial frame, an unpaid data request); reset so neither side keeps the stream.
        func onFinished(_ s: SwarmStream) {
            if let why = session.onEnd() { service?.rejected(why) }
            if !holding { s.reset() }
        }
        func onClosed(_ s: SwarmStream, error: String?) { if let why = session.onEnd() { service?.rejected(why) } }
    }
}
