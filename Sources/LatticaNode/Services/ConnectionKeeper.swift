import LatticaCore
import LatticaStore
import LatticaUV
import Logging
import Metrics

/// Keeps the node connected: while fewer than `min_peers` peers are connected, it dials peers it
/// knows (the bootstrap peers, peers identified earlier, the peer store of earlier runs), a few
/// at a time, each with its own exponential backoff. A node back from a crash or a partition
/// thus finds its peers again without anyone dialing it; replication (CRDT anti-entropy) and the
/// DHT then catch up on their own.
///
/// Config `[connections]`: `min_peers` (default 8; 0 turns it off), `interval_s` (default 2).
final class ConnectionKeeper: NodeService, @unchecked Sendable {
    static let name = "connections"

    struct Settings: Equatable {
        var minPeers = 8
        var interval: Duration = .seconds(2)
        var dialsPerTick = 3
        var maxBackoff: Duration = .seconds(60)
    }

    let swarm: Swarm
    let logger: Logger
    let settings: Settings
    /// Candidates: peer → addresses (bootstrap, identified, stored), bounded.
    private var known: [PeerId: [Multiaddr]] = [:]
    private let maxKnown = 4096
    /// Per peer: consecutive failed dials and when it may be tried again.
    private var backoff: [PeerId: (failures: Int, next: Instant)] = [:]
    private var dialing: Set<PeerId> = []
    private var timer: LoopTimer?
    private let ctx: ServiceContext

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.int("min_peers", range: 0...1000) { s.minPeers = v }
        if let v = try r.double("interval_s", range: 0.1...600) { s.interval = .milliseconds(Int64(v * 1000)) }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        logger = context.logger
        ctx = context
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        for text in context.config.bootstrap {
            guard let ma = try? Multiaddr(text), let p = ma.peerId else { continue }
            remember(p, [ma.withoutPeerId])
        }
        do {
            for r in try PeerStore(db: context.db).all(limit: 256) {
                guard let p = try? PeerId(string: r.peerId) else { continue }
                remember(p, r.addrs.compactMap { try? Multiaddr(bytes: $0) })
            }
        } catch {
            logger.warning("cannot read the peer store; dialing bootstrap peers only", metadata: ["error": "\(error)"])
        }
    }

    func start() {
        guard settings.minPeers > 0 else { return }
        timer = ctx.timer(after: settings.interval, repeating: settings.interval) { [weak self] _ in self?.tick() }
    }

    func stop() {
        timer?.cancel()
        timer = nil
    }

    func onPeerEvent(_ event: PeerEvent) {
        switch event {
        case .identified(let p, let info): remember(p, info.addrs)
        case .connected(let p, _): backoff[p] = nil
        case .disconnected, .addressesChanged, .reachabilityChanged, .localAddressesChanged, .upgraded, .natBehaviourChanged: break
        }
    }

    private func remember(_ p: PeerId, _ addrs: [Multiaddr]) {
        let dialable = addrs.filter { SocketAddress(multiaddr: $0) != nil }
        guard !dialable.isEmpty, p != swarm.localPeer else { return }
        if known[p] == nil, known.count >= maxKnown { return }
        known[p] = Array(dialable.prefix(8))
    }

    /// Dials a few known, unconnected peers whose backoff has passed.
    func tick() {
        let connected = swarm.connectedPeerCount
        guard connected < settings.minPeers else { return }
        let now = swarm.loop.now
        var budget = min(settings.dialsPerTick, settings.minPeers - connected)
        for (p, addrs) in known.sorted(by: { $0.key < $1.key }) where budget > 0 {
            guard swarm.connection(to: p) == nil, !dialing.contains(p), (backoff[p]?.next ?? .zero) <= now, let a = addrs.first else { continue }
            budget -= 1
            dialing.insert(p)
            Counter(label: "lattica_reconnect_dials_total").increment()
            swarm.dial(a.appending(.p2p(p))) { [weak self] r in
                guard let self else { return }
                self.dialing.remove(p)
                if case .failure = r {
                    let f = (self.backoff[p]?.failures ?? 0) + 1
                    let delay = min(self.settings.maxBackoff, .seconds(1) * (1 << min(f, 6)))
                    self.backoff[p] = (f, self.swarm.loop.now + delay)
                    // Rotate: the next try uses the peer's next address.
                    if var list = self.known[p], list.count > 1 { list.append(list.removeFirst()); self.known[p] = list }
                }
            }
        }
    }
}
