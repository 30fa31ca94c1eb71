import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaNAT
import LatticaStore
import LatticaUV
import Logging

/// A node service owns one protocol family (identify, ping, the DHT, echo, …): its protocol
/// handlers, its per-stream state, its timers, its metrics, its config section `[name]` and its
/// control methods, all registered by the service itself through the `ServiceContext` it gets at
/// start. The swarm owns connections and streams only; it routes an inbound stream to the service
/// that registered the stream's protocol id and tells every service every `PeerEvent`.
///
/// Adding a protocol is one file with a type conforming to `NodeService` and one line in
/// `NodeServices.all` (Docs/ARCHITECTURE.md, "How to add a protocol"). Loop thread only: every
/// method is called on the daemon's loop thread.
protocol NodeService: AnyObject {
    /// The service's name: its config section (`[name]` in latticad.toml), its logger label
    /// (`lattica.<name>`), the prefix of its control methods (`<name>.…`) by convention.
    static var name: String { get }
    /// Checks the config section `[name]` when the config file is read, so that a wrong option is
    /// reported with the file before anything starts. The default accepts no option at all.
    static func validate(section: TableReader) throws(ConfigError)
    /// Creates the service and registers its protocols, control methods and timers.
    init(context: ServiceContext) throws(DaemonError)
    /// Runs once every service exists, before the first connection (the DHT bootstraps here).
    func start()
    /// Every peer event of the swarm, in order.
    func onPeerEvent(_ event: PeerEvent)
    /// Shutdown: answer what waits, forget what is pending. Timers made through the context are
    /// cancelled by the host.
    func stop()
    /// Before `stop`, while connections and the loop still run: shutdown work that needs a round
    /// trip (the UPnP DeletePortMapping). Calls `done` exactly once; the host waits 2 s at most.
    /// The default calls it at once.
    func drain(_ done: @escaping () -> Void)
}

extension NodeService {
    func drain(_ done: @escaping () -> Void) { done() }
}

extension NodeService {
    static func validate(section: TableReader) throws(ConfigError) {
        var r = section
        try r.finish()
    }
    func start() {}
    func onPeerEvent(_ event: PeerEvent) {}
    func stop() {}
}

/// The services of `latticad`, in start order. One line per protocol family.
enum NodeServices {
    static let all: [any NodeService.Type] = [
        IdentifyService.self,
        PingService.self,
        DHTService.self,
        AutoNATService.self,
        STUNService.self,
        CRDTService.self,
        EchoService.self,
        ModelService.self,
        TrainingService.self,
        RelayService.self,
        DCUtRService.self,
        ConnectionKeeper.self,
        PortMappingService.self,
        DashboardService.self,
    ]

    /// Config sections that belong to a service (checked by the service's `validate`).
    static func service(named name: String, in list: [any NodeService.Type] = all) -> (any NodeService.Type)? {
        list.first { $0.name == name }
    }
}

/// What the swarm tells every service about peers.
enum PeerEvent {
    /// A connection to `peer` is established (secure channel and muxer up). Once per peer, not
    /// per connection: a duplicate connection that loses the simultaneous-dial tie is silent.
    case connected(PeerId, ConnectedPeer)
    /// identify told us (again) what the peer runs and where it listens.
    case identified(PeerId, PeerInfo)
    /// The peer's listen addresses changed (identify push, or a first identify).
    case addressesChanged(PeerId, [Multiaddr])
    /// The last connection to `peer` closed.
    case disconnected(PeerId)
    /// A direct connection to `peer` replaced the relayed one (new streams use it).
    case upgraded(PeerId)
    /// Whether peers can dial us changed (AutoNAT, confirmed observed addresses, STUN).
    case reachabilityChanged(NAT.Reachability)
    /// What we advertise changed (`Swarm.advertisedAddrs`: a confirmed external address, a port
    /// mapping, a relay reservation came or went; or `advertisedProtocols`).
    case localAddressesChanged([Multiaddr])
    /// The STUN probe classified our NAT (its mapping and filtering behaviour) differently.
    case natBehaviourChanged(mapping: NAT.Behaviour, filtering: NAT.Behaviour)
}

/// A service that knows part of the node's reachability fills in its part of `nat.status`.
protocol NATStatusContributor: AnyObject {
    func contribute(to status: inout NATStatusResult)
}

/// The connection a `.connected` event is about.
struct ConnectedPeer {
    var remoteAddr: Multiaddr?
    var isDialer: Bool
}

/// What a service may use and register. One per service, made by the daemon. Loop thread only,
/// except `onLoop`, which control methods call from any thread (hence `@unchecked Sendable`).
final class ServiceContext: @unchecked Sendable {
    let name: String
    let loop: EventLoop
    let swarm: Swarm
    let identity: Ed25519PrivateKey
    let config: NodeConfig
    /// The service's own config section (`[name]`), empty when absent; validated already.
    let section: TableReader
    let db: Database
    let logger: Logger
    /// Control methods registered by the service, collected into the daemon's dispatcher.
    private(set) var dispatcher: ControlDispatcher
    /// HTTP routes registered by the service, served on the daemon's HTTP port (`metrics_addr`).
    private(set) var httpRoutes: [HTTP.Route] = []
    private var timers: [ObjectIdentifier: LoopTimer] = [:]

    init(name: String, loop: EventLoop, swarm: Swarm, identity: Ed25519PrivateKey, config: NodeConfig,
         db: Database, dispatcher: ControlDispatcher) {
        self.name = name
        self.loop = loop
        self.swarm = swarm
        self.identity = identity
        self.config = config
        self.section = TableReader(table: config.sections[name] ?? [:], prefix: name + ".", source: "config")
        self.db = db
        self.logger = Logger(label: "lattica.\(name)")
        self.dispatcher = dispatcher
    }

    var localPeer: PeerId { swarm.localPeer }

    /// The daemon's services, set once all exist (before `start`): a service reaches another
    /// (training reads runs from the CRDT store) through `service(_:)`.
    var services: () -> [any NodeService] = { [] }

    func service<T: NodeService>(_ t: T.Type) -> T? { services().lazy.compactMap { $0 as? T }.first }

    /// Registers a typed control method. `body` runs off the loop thread (it may await); reach the
    /// service's state through `onLoop`.
    func method<M: ControlMethod>(_ m: M.Type, _ body: @escaping @Sendable (M.Params) async throws -> M.Result) {
        dispatcher.register(m, body)
    }

    /// Registers `GET`/`HEAD` of `path` on the daemon's HTTP port (`metrics_addr`, loopback by
    /// default; not served when it is disabled). `handler` runs on the loop thread and must not
    /// block. `localOnly` (the default) answers only a `Host` of `localhost` or an IP literal.
    func http(_ path: String, localOnly: Bool = true, _ handler: @escaping @Sendable (HTTP.Request) -> HTTP.Response) {
        httpRoutes.append(HTTP.Route(path: path, localOnly: localOnly, handler: handler))
    }

    /// A repeating or one-shot timer, cancelled when the daemon stops.
    @discardableResult
    func timer(after delay: Duration, repeating: Duration? = nil, _ fire: @escaping (LoopTimer) -> Void) -> LoopTimer {
        loop.assertInLoop()
        let oneShot = repeating == nil
        let t = loop.scheduleTimer(after: delay, repeating: repeating) { [weak self] t in
            if oneShot { self?.timers.removeValue(forKey: ObjectIdentifier(t)) }
            fire(t)
        }
        if timers.count >= 64 { timers = timers.filter { !$0.value.isCancelled } }
        timers[ObjectIdentifier(t)] = t
        return t
    }

    func cancelTimers() {
        for t in timers.values { t.cancel() }
        timers.removeAll()
    }

    /// Runs synchronous `body` on the loop thread and returns its value; what it throws
    /// (`ControlErrorBody` for a clean error answer) reaches the caller.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do { return try await loop.submit { _ in try body() } } catch is UVError {
            throw ControlErrorBody(code: "failed", message: "daemon is stopping")
        }
    }

    /// Runs `body` on the loop thread and awaits the value it completes with. Failures become
    /// `failed` control errors carrying the message.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (@escaping (Result<T, SwarmError>) -> Void) -> Void) async throws -> T {
        do {
            return try await loop.submitCallback { _, complete in body { complete($0.mapError { $0 as any Error }) } }
        } catch let e as SwarmError {
            throw ControlErrorBody(code: "failed", message: e.message)
        } catch is UVError {
            throw ControlErrorBody(code: "failed", message: "daemon is stopping")
        }
    }
}
