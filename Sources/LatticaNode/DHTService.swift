import LatticaCore
import LatticaCrypto
import LatticaDHT
import LatticaUV
import Logging
import Metrics

/// The shell around `DHT.Instance`: carries its requests over swarm streams (one request and one
/// response per stream, uvarint-framed protobuf, as kad-dht specifies), answers inbound requests,
/// runs its timers on the loop, and feeds it the peers that identify reports. Loop thread only.
final class DHTService: NodeService, @unchecked Sendable {
    static let name = "dht"
    let swarm: Swarm
    let identity: Ed25519PrivateKey
    let loop: EventLoop
    let logger: Logger
    let protocolID: String
    var dht: DHT.Instance
    private var timers: [DHT.TimerID: LoopTimer] = [:]
    private var inbound: [UInt64: ([UInt8]?) -> Void] = [:]
    private var nextInbound: UInt64 = 1
    private var waiters: [DHT.QueryID: (DHT.QueryResult, DHT.QueryStats) -> Void] = [:]
    private(set) var lastBootstrap: DHT.BootstrapEvent?
    private var published: [DHT.Metrics] = []
    /// Where store changes go (nil: in memory only, as in benchmarks).
    var persistence: DHTRecordPersistence?

    /// `[dht] protocol, mode` are read by `NodeConfig` (typed fields that predate services).
    static func validate(section: TableReader) throws(ConfigError) {}

    convenience init(context: ServiceContext) {
        let config = context.config
        var ds = config.dhtProtocol == "/lattica/1.0.0" ? DHT.Settings.lattica : DHT.Settings()
        ds.protocolID = config.dhtProtocol
        ds.mode = config.dhtMode == "client" ? .client : .server
        ds.bootstrapPeers = config.bootstrap.compactMap { try? Multiaddr($0) }.compactMap { ma in
            ma.peerId.map { DHT.PeerInfo(id: $0, addresses: [ma.withoutPeerId.bytes]) }
        }
        let persistence = DHTRecordPersistence(db: context.db, now: context.loop.now)
        var store: DHT.MemoryRecordStore?
        do { store = try persistence.load(localPeer: context.localPeer, now: context.loop.now) } catch {
            Counter(label: "lattica_persist_failures_total", dimensions: [("store", "dht"), ("op", "load")]).increment()
            context.logger.error("cannot load the DHT records; starting with none", metadata: ["error": "\(error)"])
        }
        self.init(swarm: context.swarm, identity: context.identity, settings: ds, store: store, logger: context.logger)
        self.persistence = persistence
        registerMethods(context)
    }

    init(swarm: Swarm, identity: Ed25519PrivateKey, settings: DHT.Settings, store: DHT.MemoryRecordStore?, logger: Logger) {
        self.swarm = swarm
        self.identity = identity
        self.loop = swarm.loop
        self.logger = logger
        self.protocolID = settings.protocolID
        let verify: DHT.VerifyEd25519 = { key, message, signature in
            guard let pk = try? Ed25519PublicKey(bytes: key) else { return false }
            return pk.isValidSignature(signature, for: message)
        }
        dht = DHT.Instance(localPeer: swarm.localPeer, settings: settings, store: store,
                           validator: DHT.Validator(verify: verify), seed: SecureRandom.uint64())
        if settings.mode == .server {
            swarm.handleRequests(protocolID) { [weak self] peer, bytes, respond in
                self?.onInboundRequest(peer, bytes, respond)
            }
        }
    }

    func start() {
        apply(dht.onStart(now: loop.now))
    }

    func stop() {
        for t in timers.values { t.cancel() }
        timers.removeAll()
        for (_, r) in inbound { r(nil) }
        inbound.removeAll()
    }

    /// identify told us about `peer`: servers of our DHT protocol enter the routing table; a peer
    /// that left is marked disconnected there (the first to make room for a new one).
    func onPeerEvent(_ event: PeerEvent) {
        switch event {
        case .identified(let peer, let info):
            apply(dht.onPeerConnected(peer, addresses: info.addrs.map(\.bytes),
                                      isServer: info.protocols.contains(protocolID), now: loop.now))
        case .disconnected(let peer):
            apply(dht.onPeerDisconnected(peer, now: loop.now))
        case .connected, .addressesChanged, .reachabilityChanged, .localAddressesChanged, .upgraded:
            break
        }
    }

    private func onInboundRequest(_ peer: PeerId, _ bytes: [UInt8], _ respond: @escaping ([UInt8]?) -> Void) {
        let id = nextInbound
        nextInbound += 1
        inbound[id] = respond
        apply(dht.onRequest(bytes[...], from: peer, inbound: DHT.InboundID(id), now: loop.now))
        // The instance answers inbound requests synchronously; none means no answer (ADD_PROVIDER).
        if let r = inbound.removeValue(forKey: id) { r([]) }
    }

    /// Starts a query; `done` runs on the loop thread when it finishes.
    func query(_ start: (inout DHT.Instance, Instant) -> (DHT.QueryID, [DHT.Directive]),
               done: @escaping (DHT.QueryResult, DHT.QueryStats) -> Void) {
        loop.assertInLoop()
        let (q, ds) = start(&dht, loop.now)
        waiters[q] = done
        apply(ds)
    }

    func apply(_ directives: [DHT.Directive]) {
        for d in directives {
            switch d {
            case .send(let m, let peer, let addrs, let req, let expectsResponse):
                send(m, to: peer, addresses: addrs, request: req, expectsResponse: expectsResponse)
            case .respond(let m, _, let id):
                inbound.removeValue(forKey: id.raw)?(m.encoded())
            case .resetInbound(let id, _):
                inbound.removeValue(forKey: id.raw)?(nil)
            case .scheduleTimer(let t, let at):
                timers[t]?.cancel()
                timers[t] = loop.scheduleTimer(after: max(.zero, at - loop.now)) { [weak self] _ in
                    guard let self else { return }
                    self.timers.removeValue(forKey: t)
                    self.apply(self.dht.onTimer(t, now: self.loop.now))
                }
            case .queryFinished(let q, let result, let stats):
                Counter(label: "lattica_dht_queries_finished_total", dimensions: [("result", Self.ok(result) ? "ok" : "error")]).increment()
                Recorder(label: "lattica_dht_lookup_hops").record(stats.hops)
                waiters.removeValue(forKey: q)?(result, stats)
            case .peerMisbehaved(let p, let why):
                Counter(label: "lattica_dht_peer_misbehaviors_total", dimensions: [("reason", "\(why)".prefix(32).description)]).increment()
                logger.debug("DHT peer misbehaved", metadata: ["peer": "\(p)", "reason": "\(why)"])
            case .routingTableUpdated:
                Gauge(label: "lattica_dht_routing_table_peers").record(dht.routingTable.count)
            case .persist(let change):
                guard let persistence else { break }
                do { try persistence.apply(change) } catch {
                    Counter(label: "lattica_persist_failures_total", dimensions: [("store", "dht"), ("op", Self.op(change))]).increment()
                    logger.warning("DHT store write failed", metadata: ["op": "\(Self.op(change))", "error": "\(error)"])
                }
            case .bootstrap(let ev):
                lastBootstrap = ev
                switch ev {
                case .bootstrapped(let n): logger.info("DHT bootstrapped", metadata: ["routing_table": "\(n)"])
                case .noBootstrapPeerReachable where dht.settings.bootstrapPeers.isEmpty:
                    break  // the first node of a network: nothing to bootstrap from, peers will come to us
                case .noBootstrapPeerReachable(let attempt, let retryAt):
                    logger.warning("no DHT bootstrap peer reachable; retrying", metadata: [
                        "attempt": "\(attempt)", "retry_in_s": "\(Int((retryAt - loop.now).secondsDouble))"])
                }
            }
        }
    }

    static func op(_ c: DHT.StoreChange) -> String {
        switch c {
        case .putRecord: "put_record"
        case .putProvider: "put_provider"
        case .removeExpired: "remove_expired"
        }
    }

    static func ok(_ r: DHT.QueryResult) -> Bool {
        switch r {
        case .closestPeers, .getProviders: true
        case .getValue(let x): (try? x.get()) != nil
        case .putValue(let x): (try? x.get()) != nil
        case .addProvider(let x): (try? x.get()) != nil
        }
    }

    private func send(_ m: DHT.Message, to peer: PeerId, addresses: [[UInt8]], request: DHT.RequestID, expectsResponse: Bool) {
        let bytes = m.encoded()
        ensureConnected(peer, addresses) { [weak self] connected in
            guard let self else { return }
            guard connected else { self.apply(self.dht.onRequestFailed(request, now: self.loop.now)); return }
            if expectsResponse {
                self.swarm.request(peer, self.protocolID, bytes, timeout: self.dht.settings.requestTimeout) { [weak self] r in
                    guard let self else { return }
                    switch r {
                    case .success(let resp): self.apply(self.dht.onResponse(resp[...], request: request, now: self.loop.now))
                    case .failure: self.apply(self.dht.onRequestFailed(request, now: self.loop.now))
                    }
                }
            } else {
                self.swarm.sendOneWay(peer, self.protocolID, bytes) { [weak self] ok in
                    guard let self else { return }
                    self.apply(ok ? self.dht.onRequestDelivered(request, now: self.loop.now)
                                  : self.dht.onRequestFailed(request, now: self.loop.now))
                }
            }
        }
    }

    /// Uses the open connection to `peer`, else dials its addresses one after another.
    private func ensureConnected(_ peer: PeerId, _ addresses: [[UInt8]], _ done: @escaping (Bool) -> Void) {
        if let c = swarm.connection(to: peer), c.established { done(true); return }
        // Direct addresses first, then circuits through relays (a peer behind a NAT).
        let parsed = addresses.compactMap { try? Multiaddr(bytes: $0) }
        var candidates = parsed.filter { SocketAddress(multiaddr: $0) != nil } + parsed.filter(\.isCircuit)
        if candidates.isEmpty, let known = swarm.peerInfo[peer]?.addrs { candidates = known }
        swarm.dialAny(peer, candidates) { done($0) }
    }
}
