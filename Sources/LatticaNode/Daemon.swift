import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaStore
import LatticaUV
import Logging
import Metrics
import Synchronization

/// A startup failure: one line naming what could not be done.
public struct DaemonError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The running daemon: data directory (locked), identity, database, the libuv loop with the
/// listeners, the control socket and the HTTP port (metrics, dashboard). `stop()` closes everything
/// and removes the socket and the lock file.
public final class Daemon: @unchecked Sendable {
    public let config: NodeConfig
    public let peerId: PeerId
    let identity: Ed25519PrivateKey
    let logger: Logger
    let dataDir: DataDirectory
    let db: Database
    let loop: EventLoop
    let metrics: MetricsRegistry
    let startedAt: ContinuousClock.Instant
    let state = Mutex(SharedState())
    private let stopped = Mutex<[CheckedContinuation<Void, Never>]?>([])
    private let stopping = Atomic(false)

    /// What the control API reads from other threads; written on the loop thread.
    struct SharedState {
        var listenAddrs: [Multiaddr] = []
        var metricsAddr: String?
        var connectedPeers = 0
        var services: [String] = []
    }

    // Loop-thread state.
    var listeners: [TCPListener] = []
    var control: ControlServer?
    var httpServer: HTTPServer?
    var swarm: Swarm?
    /// The running services, in start order (`NodeServices.all` unless a test adds its own).
    var services: [any NodeService] = []
    var contexts: [ServiceContext] = []
    let serviceTypes: [any NodeService.Type]

    /// The running service of type `T`, if any. Loop thread.
    func service<T: NodeService>(_ t: T.Type) -> T? {
        loop.assertInLoop()
        return services.lazy.compactMap { $0 as? T }.first
    }

    /// The DHT service (tests and benchmarks). Loop thread.
    var dht: DHTService? { service(DHTService.self) }

    private init(config: NodeConfig, logger: Logger, dataDir: DataDirectory, identity: Ed25519PrivateKey, db: Database,
                 services: [any NodeService.Type]) {
        self.config = config
        self.serviceTypes = services
        self.logger = logger
        self.dataDir = dataDir
        self.identity = identity
        self.peerId = PeerId(ed25519PublicKey: identity.publicKey.bytes)
        self.db = db
        self.loop = EventLoop(name: "latticad", busyPoll: .microseconds(config.busyPollMicros))
        self.metrics = MetricsRegistry.shared
        self.startedAt = .now
    }

    /// Prepares the data directory and starts listening. Throws a one-line error when something
    /// is wrong (another daemon running, bad key file, port in use, ...), leaving nothing behind.
    public static func start(config: NodeConfig) async throws(DaemonError) -> Daemon {
        try await start(config: config, services: NodeServices.all)
    }

    /// Starts with the given services (tests add toy protocols this way).
    static func start(config: NodeConfig, services: [any NodeService.Type]) async throws(DaemonError) -> Daemon {
        let logger = Logger(label: "lattica.node")
        umask(0o077)  // every file the daemon creates is private to its user
        let dir: DataDirectory
        do { dir = try DataDirectory(path: config.dataDir); try dir.lock() } catch { throw DaemonError(error.description) }
        let key: Ed25519PrivateKey
        do { key = try KeyFile.loadOrCreate(path: dir.keyPath) } catch { dir.unlock(); throw DaemonError("\(error)") }
        let db: Database
        do { db = try NodeDatabase.open(path: dir.databasePath) } catch {
            dir.unlock(); throw DaemonError("database \(dir.databasePath): \(error.message)")
        }
        let d = Daemon(config: config, logger: logger, dataDir: dir, identity: key, db: db, services: services)
        do {
            try await d.loop.submit { _ in try d.startOnLoop() }
        } catch {
            await d.teardown()
            throw DaemonError("\(error)")
        }
        logger.info("latticad started", metadata: [
            "peer_id": "\(d.peerId)", "listen": "\(d.listenAddrs.map(\.description))", "data_dir": "\(config.dataDir)",
        ])
        return d
    }

    /// What peers can dial for listeners bound to 0.0.0.0 or ::: every interface address of that
    /// family with the listener's port (loopback only when there is nothing else), IPv6
    /// link-local addresses left out.
    static func expandUnspecified(_ bound: [SocketAddress]) -> [SocketAddress] {
        let interfaces = SocketAddress.interfaceAddresses()
        var out: [SocketAddress] = []
        for b in bound {
            guard Multiaddr(socketAddress: b).isUnspecifiedIP else { out.append(b); continue }
            let same = interfaces.filter { $0.address.family == b.family && !($0.address.family == .ipv6 && $0.address.ipBytes.starts(with: [0xfe, 0x80])) }
            let external = same.filter { !$0.isInternal }
            for i in (external.isEmpty ? same : external) where !out.contains(i.address.withPort(b.port)) {
                out.append(i.address.withPort(b.port))
            }
            if same.isEmpty { out.append(b) }
        }
        return out
    }

    /// Loop thread: binds every listener, the control socket and the metrics endpoint.
    private func startOnLoop() throws {
        for text in config.listen {
            let ma = try Multiaddr(text)
            guard let addr = SocketAddress(multiaddr: ma) else {
                throw DaemonError("cannot listen on \(text): only /ip4|/ip6/.../tcp/PORT addresses are supported")
            }
            let l: TCPListener
            do {
                // SO_REUSEPORT lets hole-punch sockets bind this port; it would also let a second
                // daemon listen on it unnoticed, so a plain bind checks first that the port is free.
                if addr.port != 0 { try TCPListener.checkPortFree(addr) }
                l = try TCPListener.listenReusingPort(on: loop, address: addr) { [weak self] r in self?.accepted(r) }
            } catch { throw DaemonError("cannot listen on \(text): \(error)") }
            listeners.append(l)
        }
        let addrs = listeners.map { Multiaddr(socketAddress: $0.localAddress).appending(.p2p(peerId)) }
        let swarm = Swarm(loop: loop, identity: identity, settings: Swarm.Settings(
            protocolVersion: config.protocolVersion, agentVersion: config.agentVersion,
            maxConnections: config.maxConnections, idleTimeout: .seconds(config.idleTimeoutSeconds)),
            peerStore: PeerStore(db: db), logger: Logger(label: "lattica.swarm"))
        swarm.listenAddrs = Self.expandUnspecified(listeners.map(\.localAddress)).map { Multiaddr(socketAddress: $0) }
        swarm.punchSources = listeners.map(\.localAddress)
        swarm.observe { [weak self, weak swarm] e in
            guard let self, let swarm else { return }
            switch e {
            case .connected, .disconnected:
                let n = swarm.connectedPeerCount
                self.state.withLock { $0.connectedPeers = n }
            case .identified, .addressesChanged, .reachabilityChanged, .localAddressesChanged, .upgraded, .natBehaviourChanged: break
            }
        }
        self.swarm = swarm
        var dispatcher = ControlDispatcher()
        registerNodeMethods(&dispatcher)
        for t in serviceTypes {
            let ctx = ServiceContext(name: t.name, loop: loop, swarm: swarm, identity: identity, config: config, db: db, dispatcher: dispatcher)
            let service = try t.init(context: ctx)
            dispatcher = ctx.dispatcher
            services.append(service)
            contexts.append(ctx)
            swarm.observe { [weak service] e in service?.onPeerEvent(e) }
        }
        control = try ControlServer(loop: loop, path: config.controlSocketPath, dispatcher: dispatcher, logger: logger)
        var metricsAddr: String?
        if let m = config.metricsAddr, let hp = HostPort(m) {
            let routes = [HTTPServer.metricsRoute(metrics)] + contexts.flatMap(\.httpRoutes)
            let server = try HTTPServer(loop: loop, host: hp.host, port: hp.port, routes: routes)
            httpServer = server
            metricsAddr = server.localAddress.description
        }
        for c in contexts { c.services = { [weak self] in self?.services ?? [] } }
        let names = services.map { type(of: $0).name }
        state.withLock { $0.listenAddrs = addrs; $0.metricsAddr = metricsAddr; $0.services = names }
        for s in services { s.start() }
    }

    private func accepted(_ r: Result<TCPSocket, UVError>) {
        switch r {
        case .success(let s):
            Counter(label: "lattica_connections_accepted_total").increment()
            if let swarm { swarm.adoptInbound(s) } else { s.close() }
        case .failure(let e):
            logger.warning("accept failed", metadata: ["error": "\(e)"])
        }
    }

    public var listenAddrs: [Multiaddr] { state.withLock { $0.listenAddrs } }
    public var metricsAddr: String? { state.withLock { $0.metricsAddr } }

    func status() -> StatusResult {
        let s = state.withLock { $0 }
        let up = ContinuousClock.now - startedAt
        return StatusResult(peerId: peerId.description, listenAddrs: s.listenAddrs.map(\.description),
                            version: LatticaVersion.string, uptimeSeconds: up.secondsDouble, agentVersion: config.agentVersion,
                            dataDir: config.dataDir, metricsAddr: s.metricsAddr, connectedPeers: s.connectedPeers, services: s.services)
    }

    /// Waits for SIGINT or SIGTERM, then stops.
    public func runUntilSignalled() async {
        let signals = SignalWaiter([SIGINT, SIGTERM])
        let sig = await signals.wait()
        logger.notice("received signal \(sig), shutting down")
        await stop()
    }

    /// Closes listeners, connections, the control socket and the metrics endpoint; stops the loop;
    /// closes the database and releases the lock. Idempotent.
    public func stop() async {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else {
            await waitUntilStopped()
            return
        }
        await teardown()
        let waiters = stopped.withLock { w -> [CheckedContinuation<Void, Never>] in
            let all = w ?? []
            w = nil
            return all
        }
        for c in waiters { c.resume() }
        logger.info("latticad stopped")
    }

    /// Suspends until `stop()` has finished.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = stopped.withLock { w -> Bool in
                guard w != nil else { return true }
                w!.append(c)
                return false
            }
            if already { c.resume() }
        }
    }

    private func teardown() async {
        // round trips that must happen before the services stop (UPnP DeletePortMapping), 2 s at most
        do {
            try await loop.submitCallback { [self] loop, complete in
                var left = services.count
                let timer = loop.scheduleTimer(after: .seconds(2)) { _ in complete(.success(())) }
                let one = {
                    left -= 1
                    if left == 0 { timer.cancel(); complete(.success(())) }
                }
                if left == 0 { timer.cancel(); complete(.success(())) }
                for s in services { s.drain(one) }
            } as Void
        } catch {
            logger.debug("shutdown: services not drained", metadata: ["error": "\(error)"])
        }
        _ = try? await loop.submit { [self] _ in
            for l in listeners { l.close() }
            listeners.removeAll()
            for s in services.reversed() { s.stop() }
            for c in contexts { c.cancelTimers() }
            services.removeAll()
            contexts.removeAll()
            swarm?.closeAll()
            swarm = nil
            control?.close()
            control = nil
            httpServer?.close()
            httpServer = nil
        }
        await loop.shutdownGracefully()
        dataDir.unlock()
    }
}
