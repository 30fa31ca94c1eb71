#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// Birthday hole punching over `/lattica/punch/1.0.0` (see `Spray`): for a relayed peer behind
/// a NAT that maps per destination, when our NAT maps independently of it but filters by port (or
/// the other way round). B, which accepted the relayed connection, offers as the circuit comes up
/// when STUN has classified our NAT; either side offers when the classification comes later. A
/// peer without the protocol, or a pair the plan does not cover, goes to DCUtR (started by B). Metrics: `lattica_spray_attempts_total{role}`, `lattica_spray_outcomes_total{outcome}`,
/// `lattica_spray_syns_total{role}`.
extension DCUtRService {
    /// Sprays (either role) a minute, in all.
    static let sprayBudget = 4

    /// The addresses peers see us at first (the IP they observed with our listening ports: for E
    /// the mapping of its listening port, for S the IP its SYNs come from), then what we advertise.
    func sprayOffer() -> Spray.Offer {
        let advertised = Set(swarm.advertisedAddrs.map(\.withoutPeerId))
        let all = ourAddrs()
        let ordered = all.filter { !advertised.contains($0) } + all.filter { advertised.contains($0) }
        let eps = ordered.compactMap { NAT.Endpoint(multiaddr: $0) }.filter(\.isIPv4)
        return Spray.Offer(mapping: swarm.natMapping, filtering: swarm.natFiltering, endpoints: Array(eps.prefix(Spray.maxAddresses)))
    }

    /// The peer's endpoints we may punch to (the same policy as DCUtR's addresses), public ones
    /// first: the spray goes to the first, and a LAN address (allowed with `private_addrs`) is
    /// the peer's side of its NAT.
    func sprayTargets(_ o: Spray.Offer) -> [NAT.Endpoint] {
        let allowed = Set(filter(o.endpoints.map { $0.multiaddr(.tcp) }))
        let usable = o.endpoints.filter { allowed.contains($0.multiaddr(.tcp)) }
        return usable.filter { !Self.isPrivate($0.multiaddr(.tcp)) } + usable.filter { Self.isPrivate($0.multiaddr(.tcp)) }
    }

    // MARK: the side that offers (B when the circuit comes up; either side once STUN answers)

    func beginSpray(_ peer: PeerId) {
        guard swarm.isRelayed(peer), punching[peer]?.method != "spray" else { return }
        guard punching[peer] != nil || punching.count < settings.maxConcurrent else {
            Counter(label: "lattica_dcutr_refused_total", dimensions: [("reason", "busy")]).increment()
            return
        }
        sprayRounds[peer, default: 0] += 1
        let started = punching[peer]?.started ?? swarm.loop.now
        punching[peer]?.timer?.cancel()
        var p = Punch(attempt: sprayRounds[peer]!, started: started)
        p.method = "spray"
        p.weAreDialer = swarm.connection(to: peer)?.instance.isDialer ?? false
        p.sprayInitiator = true
        punching[peer] = p
        Counter(label: "lattica_spray_attempts_total", dimensions: [("role", "initiator")]).increment()
        let h = FirstAnswer(proto: "punch", maxMessageLength: Spray.maxMessageLength, loop: swarm.loop, onAnswer: { [weak self] s, body, rtt in
            guard case .offer(let o) = try Spray.Message(decoding: body) else { throw Spray.DecodeError.type(2) }
            self?.sprayAnswered(s, peer: peer, theirs: o, rtt: rtt)
        }, onFailure: { [weak self] why in self?.sprayNegotiationFailed(peer, why) })
        guard let s = swarm.openStream(peer, Spray.protocolID, handler: h) else {
            sprayNegotiationFailed(peer, "cannot open a punch stream")
            return
        }
        s.send(Spray.Message.offer(sprayOffer()).framed(), close: false)
        punching[peer]?.timer = ctx.timer(after: settings.attemptTimeout) { [weak self] _ in
            self?.sprayNegotiationFailed(peer, "no answer to the offer in time")
        }
    }

    /// The peer does not speak the protocol, or the exchange broke: DCUtR instead.
    func sprayNegotiationFailed(_ peer: PeerId, _ why: String) {
        guard let p = punching[peer], p.method == "spray", !p.sprayRunning else { return }
        Counter(label: "lattica_spray_outcomes_total", dimensions: [("outcome", "not_negotiated")]).increment()
        logger.debug("no birthday punch", metadata: ["peer": "\(peer)", "why": "\(why)"])
        sprayNotApplied(peer)
    }

    /// B goes on with DCUtR; A (which DCUtR does not let start) leaves it to B.
    func sprayNotApplied(_ peer: PeerId) {
        guard let p = punching[peer] else { return }
        p.timer?.cancel()
        if p.weAreDialer { punching.removeValue(forKey: peer) } else { begin(peer, attempt: 1) }
    }

    /// The peer's answering offer: GO and our part of the schedule when a spray applies, else DCUtR.
    func sprayAnswered(_ s: SwarmStream, peer: PeerId, theirs: Spray.Offer, rtt: Duration) {
        let mine = sprayOffer()
        let targets = sprayTargets(theirs)
        guard let role = Spray.plan(mine: mine, theirs: theirs), !targets.isEmpty else {
            s.closeWrite()
            Counter(label: "lattica_spray_outcomes_total", dimensions: [("outcome", "not_applicable")]).increment()
            sprayNotApplied(peer)
            return
        }
        s.send(Spray.Message.go.framed(), close: true)
        runSpray(peer, role: role, targets: targets, dialer: punching[peer]?.weAreDialer ?? false, delay: rtt / 2)
    }

    // MARK: the side that answers

    func sprayGo(_ peer: PeerId, mine: Spray.Offer, theirs: Spray.Offer) {
        let targets = sprayTargets(theirs)
        guard let role = Spray.plan(mine: mine, theirs: theirs), !targets.isEmpty else { return }
        guard punching[peer] != nil || punching.count < settings.maxConcurrent else { return }
        // Both sides offered at once: the spray of ours already scheduled serves.
        guard punching[peer]?.sprayRunning != true, let c = swarm.connection(to: peer) else { return }
        Counter(label: "lattica_spray_attempts_total", dimensions: [("role", "responder")]).increment()
        runSpray(peer, role: role, targets: targets, dialer: c.instance.isDialer, delay: .zero)
    }

    // MARK: both

    /// Our part, on the schedule anchored at A's receipt of GO (`delay` from now): E sprays at
    /// once, S probes once E's spray is over.
    func runSpray(_ peer: PeerId, role: Spray.Role, targets: [NAT.Endpoint], dialer: Bool, delay: Duration) {
        guard swarm.isRelayed(peer) else { return }
        // The peer names the IP we send hundreds of SYNs to: at most two sprays (the two rounds)
        // per IP a minute, and `sprayBudget` a minute in all, so that no peer can aim us at a
        // third party for more than that.
        let now = swarm.loop.now
        sprayLog.removeAll { now - $0.at > .seconds(60) }
        guard sprayLog.count < Self.sprayBudget, sprayLog.filter({ $0.ip == targets[0].ip }).count < 2 else {
            Counter(label: "lattica_spray_refused_total", dimensions: [("reason", "rate")]).increment()
            logger.info("birthday punch refused: too many of late", metadata: ["peer": "\(peer)", "target": "\(targets[0])"])
            return
        }
        sprayLog.append((targets[0].ip, now))
        let k = sprayConfig
        var p = punching[peer] ?? Punch(attempt: 1, started: swarm.loop.now)
        p.timer?.cancel()
        p.method = "spray"
        p.weAreDialer = dialer
        p.sprayRunning = true
        // E adopts what reaches its listener from S's IP (S's port is what the spray guessed).
        p.expectFrom = role == .holes ? Set(targets.map(\.ip)) : []
        let probesAt = delay + .milliseconds(k.sprayMs + k.marginMs)
        p.timer = ctx.timer(after: probesAt + .milliseconds(k.probeTimeoutMs + 500)) { [weak self] _ in
            self?.sprayFailed(peer)
        }
        punching[peer] = p
        logger.info("birthday punch", metadata: ["peer": "\(peer)", "role": "\(role == .holes ? "holes" : "probes")",
                                                 "target": "\(targets[0])", "holes": "\(k.holes)", "probes": "\(k.probes)"])
        switch role {
        case .holes:
            ctx.timer(after: delay) { [weak self] _ in self?.sprayHoles(peer, ip: targets[0].ip, dialer: dialer) }
        case .probes:
            ctx.timer(after: probesAt) { [weak self] _ in self?.sprayProbes(peer, to: targets[0], dialer: dialer) }
        }
    }

    /// The soft limit on open files.
    static func fileLimit() -> Int {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return 1024 }
        return Int(clamping: l.rlim_cur)
    }

    func stillSpraying(_ peer: PeerId) -> Bool { swarm.isRelayed(peer) && punching[peer]?.method == "spray" }

    /// E: `holes` SYNs from our listening port to distinct random ports of S's IP, in batches;
    /// each socket waits `holdMs` for S's SYN (a simultaneous open). As many as the open-file
    /// limit leaves room for (latticad raises it at start).
    func sprayHoles(_ peer: PeerId, ip: [UInt8], dialer: Bool) {
        let k = sprayConfig
        guard stillSpraying(peer), let src = swarm.punchSources.first(where: { $0.ipBytes.count == ip.count }) else { return }
        let ports = Spray.holePorts(min(k.holes, Self.fileLimit() - 1024), using: &swarm.rng)
        guard !ports.isEmpty else {
            logger.info("birthday punch skipped: the open-file limit is too low", metadata: ["limit": "\(Self.fileLimit())"])
            return
        }
        logger.debug("spraying holes", metadata: ["peer": "\(peer)", "ip": "\(ip)", "from": "\(src)"])
        for (i, start) in stride(from: 0, to: ports.count, by: k.batch).enumerated() {
            let batch = ports[start..<min(start + k.batch, ports.count)]
            ctx.timer(after: .milliseconds(i * k.batchIntervalMs)) { [weak self] _ in
                guard let self, self.stillSpraying(peer) else { return }
                Counter(label: "lattica_spray_syns_total", dimensions: [("role", "holes")]).increment(by: batch.count)
                for port in batch {
                    guard let dst = SocketAddress(multiaddr: NAT.Endpoint(ip: ip, port: port).multiaddr(.tcp)) else { continue }
                    TCPSocket.connect(on: self.swarm.loop, to: dst, from: src, timeout: .milliseconds(Int64(k.holdMs))) { [weak self] r in
                        switch r {
                        case .success(let socket): self?.adoptSprayed(socket, peer: peer, dialer: dialer)
                        case .failure(let e): self?.punching[peer]?.sprayResults["holes " + e.name, default: 0] += 1
                        }
                    }
                }
            }
        }
    }

    /// S: `probes` SYNs from as many ephemeral ports to E's mapped address.
    func sprayProbes(_ peer: PeerId, to target: NAT.Endpoint, dialer: Bool) {
        let k = sprayConfig
        guard stillSpraying(peer), let dst = SocketAddress(multiaddr: target.multiaddr(.tcp)) else { return }
        Counter(label: "lattica_spray_syns_total", dimensions: [("role", "probes")]).increment(by: k.probes)
        logger.debug("probing", metadata: ["peer": "\(peer)", "to": "\(dst)"])
        for _ in 0..<k.probes {
            TCPSocket.connect(on: swarm.loop, to: dst, timeout: .milliseconds(Int64(k.probeTimeoutMs))) { [weak self] r in
                switch r {
                case .success(let socket): self?.adoptSprayed(socket, peer: peer, dialer: dialer)
                case .failure(let e): self?.punching[peer]?.sprayResults["probes " + e.name, default: 0] += 1
                }
            }
        }
    }

    /// Takes a socket that got through (at most two: more that land while the first handshake
    /// runs are closed).
    func adoptSprayed(_ socket: TCPSocket, peer: PeerId, dialer: Bool) {
        guard stillSpraying(peer), punching[peer]!.sprayAdopted < 2 else { socket.close(); return }
        punching[peer]!.sprayAdopted += 1
        logger.debug("a sprayed socket got through", metadata: ["peer": "\(peer)", "remote": "\(socket.remoteAddress.map { "\($0)" } ?? "-")"])
        swarm.adoptPunched(socket, dialer: dialer, peer: peer, method: "spray") { [weak self] r in
            if case .success(let who) = r, who != peer {
                Counter(label: "lattica_spray_outcomes_total", dimensions: [("outcome", "wrong_peer")]).increment()
                self?.swarm.disconnectConnectionOf(socket)
            }
        }
    }

    func sprayFailed(_ peer: PeerId) {
        guard let p = punching[peer], p.method == "spray" else { return }
        punching.removeValue(forKey: peer)
        logger.debug("birthday punch round over", metadata: ["peer": "\(peer)", "sockets": "\(p.sprayResults.sorted { $0.key < $1.key })"])
        guard p.sprayInitiator else { return }  // the side that offered decides what comes next
        if swarm.isRelayed(peer), (sprayRounds[peer] ?? 0) < 2 {
            logger.debug("birthday punch round failed", metadata: ["peer": "\(peer)", "round": "\(p.attempt)"])
            beginSpray(peer)
            return
        }
        Counter(label: "lattica_spray_outcomes_total", dimensions: [("outcome", "failed")]).increment()
        Counter(label: "lattica_dcutr_outcomes_total", dimensions: [("outcome", "failed"), ("method", "spray")]).increment()
        logger.info("birthday punch failed; the connection stays relayed", metadata: ["peer": "\(peer)", "rounds": "\(p.attempt)"])
    }

    // MARK: stream handlers

    /// The answering side's stream: OFFER in, OFFER out, GO in (or the end).
    final class SprayResponder: StreamHandler {
        weak var service: DCUtRService?
        let peer: PeerId
        var reader = FramedReader(maxMessageLength: Spray.maxMessageLength)
        var offers: (mine: Spray.Offer, theirs: Spray.Offer)?
        var done = false
        init(service: DCUtRService, peer: PeerId) { self.service = service; self.peer = peer }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            guard !done, let service else { return }
            do {
                var input = Array(bytes)
                while let body = try reader.next(input) {
                    input = []
                    switch (try Spray.Message(decoding: body), offers) {
                    case (.offer(let theirs), nil):
                        let mine = service.sprayOffer()
                        offers = (mine, theirs)
                        s.send(Spray.Message.offer(mine).framed(), close: false)
                    case (.go, let o?):
                        done = true
                        s.closeWrite()
                        service.sprayGo(peer, mine: o.mine, theirs: o.theirs)
                        return
                    default:
                        throw Spray.DecodeError.type(0)
                    }
                }
            } catch {
                done = true
                Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "punch"), ("reason", "decode")]).increment()
                s.reset()
            }
        }
        func onFinished(_ s: SwarmStream) { if !done { done = true; s.closeWrite() } }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }
}
