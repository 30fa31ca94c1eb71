import LatticaCore
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// DCUtR (`/libp2p/dcutr`): turns a relayed connection into a direct one by a TCP hole punch.
///
/// The side that accepted the relayed connection (B) starts: it sends its addresses (CONNECT),
/// measures the relayed round trip to the answer, sends SYNC, waits half of it and dials; the other
/// side (A) dials when SYNC arrives. Both dial from their listening port (SO_REUSEPORT), so the
/// NATs see the port the peers were told, and the SYNs cross: a TCP simultaneous open, or one
/// side's SYN reaching the other's listener. A is the dialer of the connection (Noise initiator)
/// either way. The swarm keeps the direct connection and retires the relayed one; when every try
/// fails the relayed one stays. B tries `DCUtR.maxAttempts` times.
///
/// Config `[dcutr]`: `enabled` (default true), `private_addrs` (also punch to private and
/// loopback addresses; default false, tests turn it on). Loop thread only.
final class DCUtRService: NodeService, @unchecked Sendable {
    static let name = "dcutr"

    struct Settings: Equatable {
        var enabled = true
        var privateAddrs = false
        /// How long one attempt waits for the direct connection.
        var attemptTimeout: Duration = .seconds(5)
        var maxConcurrent = 32
    }

    let ctx: ServiceContext
    let swarm: Swarm
    let logger: Logger
    let settings: Settings
    /// Peers we are punching to (as B: the attempt number; as A: the SYNC time), bounded.
    var punching: [PeerId: Punch] = [:]

    struct Punch {
        var attempt: Int
        var started: Instant
        var timer: LoopTimer?
        var sockets: [TCPSocket] = []
        /// As A: the IPs B punches from. An accepted socket from one of them is ours to dial; the
        /// port may differ (a symmetric NAT in front of B maps the punch socket to a new port).
        var expectFrom: Set<[UInt8]> = []
        /// Whether we dial (Noise initiator) the punched connection: A in DCUtR and in a spray.
        var weAreDialer = true
        /// `dcutr` or `spray` (birthday punching, DCUtRService+Spray.swift).
        var method = "dcutr"
        /// Spray: we opened the punch stream (and decide on a second round); our part is scheduled.
        var sprayInitiator = false
        var sprayRunning = false
        var sprayAdopted = 0
        /// How the spray's sockets ended (`holes timedOut` …), for the debug log.
        var sprayResults: [String: Int] = [:]
    }
    /// The constants of the spray (version 1): both sides derive the schedule from them, so they
    /// are not configurable (tests shrink them on both sides).
    var sprayConfig = Spray.Settings()
    /// Direct connections that replaced a relayed one, by method (`dcutr`, `spray`).
    private(set) var upgradesByMethod: [String: Int] = [:]
    /// The attempt (as B; A counts every attempt as its last) of the latest upgrade.
    private(set) var lastUpgradeAttempt: Int?
    /// Spray rounds we started per peer while its connection is relayed, bounded by `punching`'s
    /// bound.
    var sprayRounds: [PeerId: Int] = [:]
    /// The sprays of the last minute (target IP, when), at most `sprayBudget`.
    var sprayLog: [(ip: [UInt8], at: Instant)] = []

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.bool("private_addrs") { s.privateAddrs = v }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        ctx = context
        swarm = context.swarm
        logger = context.logger
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        guard settings.enabled else { return }
        swarm.handle(DCUtR.protocolID) { [weak self] s in
            guard let self, s.conn.isRelayed else {
                Counter(label: "lattica_dcutr_refused_total", dimensions: [("reason", "not_relayed")]).increment()
                return nil
            }
            return Responder(service: self)
        }
        swarm.punchedInbound = { [weak self] from in
            guard let self else { return nil }
            guard let p = self.punching.first(where: { $0.value.expectFrom.contains(from.ipBytes) }) else { return nil }
            // DCUtR's B punches with one SYN per address: the first from its IP is the punch. A
            // later one is B's plain fallback dial (B the Noise initiator), a normal inbound.
            if p.value.method == "dcutr" { self.punching[p.key]?.expectFrom = [] }
            return (p.key, p.value.weAreDialer, p.value.method)
        }
        swarm.handle(Spray.protocolID) { [weak self] s in
            guard let self, s.conn.isRelayed else {
                Counter(label: "lattica_spray_refused_total", dimensions: [("reason", "not_relayed")]).increment()
                return nil
            }
            return SprayResponder(service: self, peer: s.peer)
        }
    }

    func stop() {
        for p in punching.values { p.timer?.cancel(); for s in p.sockets { s.close() } }
        punching.removeAll()
    }

    func onPeerEvent(_ event: PeerEvent) {
        guard settings.enabled else { return }
        switch event {
        case .connected(let peer, let info):
            // B: the relayed connection came to us.
            guard !info.isDialer, swarm.isRelayed(peer) else { return }
            // Knowing our NAT, we first ask whether a birthday punch applies; DCUtR otherwise.
            if swarm.natMapping != .unknown { beginSpray(peer) } else { begin(peer, attempt: 1) }
        case .upgraded(let peer):
            guard let p = punching.removeValue(forKey: peer) else {
                Counter(label: "lattica_dcutr_outcomes_total", dimensions: [("outcome", "direct_unprompted"), ("method", "none")]).increment()
                return
            }
            p.timer?.cancel()
            for s in p.sockets { s.close() }
            sprayRounds.removeValue(forKey: peer)
            upgradesByMethod[p.method, default: 0] += 1
            lastUpgradeAttempt = p.attempt
            let ms = (swarm.loop.now - p.started).secondsDouble * 1000
            Counter(label: "lattica_dcutr_outcomes_total", dimensions: [("outcome", "direct"), ("method", p.method)]).increment()
            Timer(label: "lattica_dcutr_time_to_direct_seconds").recordNanoseconds(Int64(ms * 1e6))
            logger.info("hole punch succeeded", metadata: ["peer": "\(peer)", "method": "\(p.method)", "attempt": "\(p.attempt)", "ms": "\(Int(ms))"])
        case .natBehaviourChanged:
            // Relayed connections that came before STUN knew our NAT (either side: the peer may
            // have offered while we knew nothing): a birthday punch may apply to them. It
            // replaces a DCUtR attempt under way, which cannot work if it does.
            let relayed = swarm.byPeer.keys.filter { p in
                guard let c = swarm.connection(to: p) else { return false }
                return c.isRelayed && c.established && sprayRounds[p] == nil && punching[p]?.sprayRunning != true
            }
            for p in relayed { beginSpray(p) }
        case .disconnected(let peer):
            sprayRounds.removeValue(forKey: peer)
            if let p = punching.removeValue(forKey: peer) {
                p.timer?.cancel()
                for s in p.sockets { s.close() }
            }
        default:
            break
        }
    }

    /// Our addresses for a CONNECT: what we advertise, and for every address peers see us at
    /// (identify's observed address on direct connections) that IP with our listening ports: the
    /// mapping a NAT that keeps ports gives the punch socket.
    func ourAddrs() -> [Multiaddr] {
        var out = swarm.advertisedAddrs.filter { !$0.isCircuit }
        let ports = swarm.punchSources.map(\.port)
        for (peer, info) in swarm.peerInfo {
            guard let o = info.observedAddr, swarm.connection(to: peer).map({ !$0.isRelayed }) ?? false,
                  let ip = o.components.first else { continue }
            for port in ports {
                let a = Multiaddr([ip, .tcp(port)])
                if !out.contains(a) { out.append(a) }
            }
            if out.count >= DCUtR.maxAddresses { break }
        }
        return filter(out)
    }

    func filter(_ addrs: [Multiaddr]) -> [Multiaddr] {
        let usable = DCUtR.punchable(addrs)
        guard !settings.privateAddrs else {
            // Loopback too (tests on one machine).
            var all = usable
            for a in addrs where !a.isCircuit {
                if case .ip4(let b)? = a.components.first, b[0] == 127, !all.contains(a.withoutPeerId) { all.append(a.withoutPeerId) }
            }
            return all
        }
        return usable.filter { !Self.isPrivate($0) }
    }

    static func isPrivate(_ a: Multiaddr) -> Bool {
        guard case .ip4(let b)? = a.components.first else { return false }
        return b[0] == 10 || (b[0] == 172 && (16...31).contains(b[1])) || (b[0] == 192 && b[1] == 168)
            || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && (64...127).contains(b[1]))
    }

    // MARK: B

    func begin(_ peer: PeerId, attempt: Int) {
        guard swarm.isRelayed(peer) else { return }
        guard punching[peer] != nil || punching.count < settings.maxConcurrent else {
            Counter(label: "lattica_dcutr_refused_total", dimensions: [("reason", "busy")]).increment()
            return
        }
        let started = punching[peer]?.started ?? swarm.loop.now
        punching[peer]?.timer?.cancel()
        punching[peer] = Punch(attempt: attempt, started: started)
        Counter(label: "lattica_dcutr_attempts_total", dimensions: [("role", "initiator")]).increment()
        let h = FirstAnswer(proto: "dcutr", maxMessageLength: DCUtR.maxMessageLength, loop: swarm.loop, onAnswer: { [weak self] s, body, rtt in
            let m = try DCUtR.Message(decoding: body)
            guard m.kind == .connect else { throw DCUtR.DecodeError.unknownType(m.kind.rawValue) }
            self?.answered(s, peer: peer, addrs: m.addrs, rtt: rtt)
        }, onFailure: { [weak self] why in self?.attemptFailed(peer, why) })
        guard let s = swarm.openStream(peer, DCUtR.protocolID, handler: h) else {
            attemptFailed(peer, "cannot open a dcutr stream")
            return
        }
        s.send(DCUtR.Message(kind: .connect, addrs: ourAddrs()).framed(), close: false)
        armTimeout(peer)
    }

    func armTimeout(_ peer: PeerId) {
        punching[peer]?.timer?.cancel()
        punching[peer]?.timer = ctx.timer(after: settings.attemptTimeout) { [weak self] _ in
            self?.attemptFailed(peer, "no direct connection in time")
        }
    }

    func attemptFailed(_ peer: PeerId, _ why: String) {
        guard var p = punching[peer] else { return }
        p.timer?.cancel()
        for s in p.sockets { s.close() }
        p.sockets = []
        punching[peer] = p
        guard swarm.isRelayed(peer) else { punching.removeValue(forKey: peer); return }
        logger.debug("hole punch attempt failed", metadata: ["peer": "\(peer)", "attempt": "\(p.attempt)", "why": "\(why)"])
        if p.attempt < DCUtR.maxAttempts, swarm.connection(to: peer) != nil {
            begin(peer, attempt: p.attempt + 1)
        } else if sprayRounds[peer] == nil, swarm.natMapping != .unknown, swarm.connection(to: peer) != nil {
            // STUN classified our NAT after the relayed connection came: a spray may still apply.
            punching.removeValue(forKey: peer)
            beginSpray(peer)
        } else {
            punching.removeValue(forKey: peer)
            Counter(label: "lattica_dcutr_outcomes_total", dimensions: [("outcome", "failed"), ("method", "dcutr")]).increment()
            logger.info("hole punch failed; the connection stays relayed", metadata: ["peer": "\(peer)", "why": "\(why)"])
        }
    }

    /// B has A's answer: SYNC, then dial after half the round trip.
    func answered(_ s: SwarmStream, peer: PeerId, addrs: [Multiaddr], rtt: Duration) {
        s.send(DCUtR.Message(kind: .sync).framed(), close: true)
        let targets = filter(addrs)
        guard !targets.isEmpty else { attemptFailed(peer, "the peer sent no address to punch to"); return }
        ctx.timer(after: rtt / 2) { [weak self] _ in
            self?.punch(peer, targets, dialer: false)
        }
    }

    // MARK: A

    /// A has B's CONNECT. From our answer on, B may punch: B dials half a round trip after its
    /// SYNC, which on a short path reaches our listener before the SYNC reaches us. So the punch
    /// is expected from here (else both sides would take that connection as Noise responder).
    func connectReceived(_ s: SwarmStream, addrs: [Multiaddr]) {
        Counter(label: "lattica_dcutr_attempts_total", dimensions: [("role", "responder")]).increment()
        s.send(DCUtR.Message(kind: .connect, addrs: ourAddrs()).framed(), close: false)
        let targets = filter(addrs)
        guard !targets.isEmpty else { return }
        if punching[s.peer] == nil {
            guard punching.count < settings.maxConcurrent else { return }
            punching[s.peer] = Punch(attempt: 1, started: swarm.loop.now)
        }
        armTimeout(s.peer)
        // A never retries on its own (B starts each attempt).
        punching[s.peer]?.attempt = DCUtR.maxAttempts
        punching[s.peer]?.expectFrom = Set(targets.compactMap { SocketAddress(multiaddr: $0)?.ipBytes })
    }

    func syncReceived(_ peer: PeerId, addrs: [Multiaddr]) {
        let targets = filter(addrs)
        guard !targets.isEmpty, punching[peer] != nil else { return }
        armTimeout(peer)
        punch(peer, targets, dialer: true)
    }

    // MARK: both

    /// Dials every target from our listening port; the first connection that comes up is adopted
    /// in the role DCUtR gives us, the other attempts are dropped.
    func punch(_ peer: PeerId, _ targets: [Multiaddr], dialer: Bool) {
        guard swarm.isRelayed(peer), punching[peer] != nil else { return }
        for t in targets.prefix(8) {
            guard let dst = SocketAddress(multiaddr: t) else { continue }
            guard let src = swarm.punchSources.first(where: { $0.family == dst.family }) else { continue }
            Counter(label: "lattica_dcutr_dials_total").increment()
            TCPSocket.connect(on: swarm.loop, to: dst, from: src, timeout: settings.attemptTimeout) { [weak self] r in
                guard let self else { return }
                switch r {
                case .failure(let e):
                    Counter(label: "lattica_dcutr_dial_failures_total", dimensions: [("reason", e.name)]).increment()
                case .success(let socket):
                    guard self.swarm.isRelayed(peer), self.punching[peer] != nil else {
                        socket.close()  // another attempt (or the peer's SYN at our listener) won
                        return
                    }
                    self.punching[peer]?.sockets.removeAll { $0 === socket }
                    self.swarm.adoptPunched(socket, dialer: dialer, peer: peer, method: "dcutr") { [weak self] r in
                        if case .success(let who) = r, who != peer {
                            Counter(label: "lattica_dcutr_outcomes_total", dimensions: [("outcome", "wrong_peer"), ("method", "dcutr")]).increment()
                            self?.swarm.disconnectConnectionOf(socket)
                        }
                    }
                    if !dialer { self.fallBackIfStalled(peer, t) }
                }
            }
        }
    }

    /// B's punch socket connected, but to the peer's listener (no simultaneous open), and a peer
    /// that does not recognise it takes it as inbound: both sides then wait as Noise responder
    /// (seen with py-libp2p). The address accepts connections, so after a short wait a plain dial
    /// (we the initiator) gets through; whichever connection comes up first replaces the circuit.
    func fallBackIfStalled(_ peer: PeerId, _ target: Multiaddr) {
        ctx.timer(after: .milliseconds(500)) { [weak self] _ in
            guard let self, self.swarm.isRelayed(peer), self.punching[peer] != nil else { return }
            Counter(label: "lattica_dcutr_fallback_dials_total").increment()
            self.swarm.dial(target.withoutPeerId.appending(.p2p(peer))) { _ in }
        }
    }

    // MARK: stream handlers

    /// The offering side's stream (DCUtR's B: CONNECT out, CONNECT in, then SYNC; the spray's
    /// OFFER out, OFFER in, then GO): waits for the one answer, hands it on with the round trip
    /// since the stream opened, and reports a malformed answer or a stream that ends without one.
    final class FirstAnswer: StreamHandler {
        let proto: String
        let sent: Instant
        let loop: EventLoop
        var reader: FramedReader
        var done = false
        /// The answer's body and the round trip; throws to refuse it as malformed.
        let onAnswer: (SwarmStream, [UInt8], Duration) throws -> Void
        let onFailure: (String) -> Void

        init(proto: String, maxMessageLength: Int, loop: EventLoop, onAnswer: @escaping (SwarmStream, [UInt8], Duration) throws -> Void,
             onFailure: @escaping (String) -> Void) {
            self.proto = proto; self.loop = loop; self.sent = loop.now
            self.reader = FramedReader(maxMessageLength: maxMessageLength)
            self.onAnswer = onAnswer; self.onFailure = onFailure
        }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !done else { return }
            do {
                guard let body = try reader.next(bytes) else { return }
                done = true
                try onAnswer(s, body, loop.now - sent)
            } catch {
                done = true
                Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", proto), ("reason", "decode")]).increment()
                s.reset()
                onFailure("malformed answer: \(error)")
            }
        }
        func onClosed(_ s: SwarmStream, error: String?) {
            if !done { done = true; onFailure("the peer closed the stream: \(error ?? "no answer")") }
        }
    }

    /// A's stream: CONNECT in, CONNECT out, SYNC in.
    final class Responder: StreamHandler {
        weak var service: DCUtRService?
        var reader = FramedReader(maxMessageLength: DCUtR.maxMessageLength)
        var theirAddrs: [Multiaddr]?
        var done = false
        init(service: DCUtRService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !done, let service else { return }
            do {
                var input = Array(bytes)
                while let body = try reader.next(input) {
                    input = []
                    let m = try DCUtR.Message(decoding: body)
                    switch (m.kind, theirAddrs) {
                    case (.connect, nil):
                        theirAddrs = m.addrs
                        service.connectReceived(s, addrs: m.addrs)
                    case (.sync, let addrs?):
                        done = true
                        service.syncReceived(s.peer, addrs: addrs)
                        s.closeWrite()
                        return
                    default:
                        throw DCUtR.DecodeError.unknownType(m.kind.rawValue)
                    }
                }
            } catch {
                done = true
                Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "dcutr"), ("reason", "decode")]).increment()
                s.reset()
            }
        }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }
}

extension Swarm {
    /// Closes the connection running over `socket` (a punched connection that turned out to
    /// authenticate someone else).
    func disconnectConnectionOf(_ socket: TCPSocket) {
        guard let c = conns.values.first(where: { ($0.transport as? PunchedTCP)?.socket === socket }) else { return }
        apply(c, c.instance.close(now: loop.now))
    }
}
