import LatticaAPI
import LatticaCore
import LatticaNAT
import LatticaUV
import Logging
import Metrics

/// Circuit Relay v2 (`/libp2p/circuit/relay/0.2.0/hop` and `/stop`), both sides:
///
/// - **hop** (the relay): a public node reserves slots for peers behind NATs and bridges circuits
///   to them, bounded per peer, per IP and in total (`Relay.HopState`), each circuit bounded in
///   bytes per direction and in time. The pipe passes bytes on only as fast as the other side
///   takes them (`SwarmStream.consumesManually`), so a peer that pumps data fills its own window
///   and nothing more.
/// - **client**: while the node is not publicly reachable it reserves on relays it is connected
///   to (peers met through the DHT and bootstrap that advertise the hop protocol), renews before
///   expiry, advertises `<relay>/p2p-circuit` addresses, accepts relayed connections (stop), and
///   dials `/p2p-circuit` addresses for the swarm.
///
/// Config `[relay]`: `hop` ("auto": serve while reachability is public; "on"; "off"), `reserve`
/// ("auto": while not public; "always"; "never"), `reservations` (relays to hold, default 2), and
/// the hop limits `max_reservations`, `max_reservations_per_ip`, `reservation_ttl_s`,
/// `max_circuits`, `max_circuits_per_peer`, `circuit_bytes`, `circuit_s`. Loop thread only.
final class RelayService: NodeService, NATStatusContributor, @unchecked Sendable {
    static let name = "relay"

    enum Mode: String { case auto, on, off }

    struct Settings: Equatable {
        var hop = Mode.auto
        var reserve = Mode.auto
        var reservations = 2
        var hopLimits = Relay.HopSettings()
        var requestTimeout: Duration = .seconds(10)
    }

    let ctx: ServiceContext
    let swarm: Swarm
    let logger: Logger
    let settings: Settings
    var hopState: Relay.HopState
    var circuits: [Int: Circuit] = [:]
    /// Circuits ended, by reason (`data_limit`, `duration_limit`, `reset`, `closed`, …).
    var circuitsClosed: [String: Int] = [:]
    /// Relays we hold a reservation on.
    var held: [PeerId: Held] = [:]
    var reserving: Set<PeerId> = []
    /// Connected peers that offer the hop protocol, in the order we met them (bounded).
    var candidates: [PeerId] = []
    var backoff: [PeerId: Instant] = [:]
    var maintenance: LoopTimer?

    struct Held {
        var expires: Instant
        var addrs: [Multiaddr]
        var limit: Relay.Limit?
        var renew: LoopTimer?
    }

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        func mode(_ key: String) throws(ConfigError) -> Mode? {
            guard let v = try r.string(key) else { return nil }
            guard let m = Mode(rawValue: v) else { throw r.err(key, "must be \"auto\", \"on\" or \"off\", got \"\(v)\"") }
            return m
        }
        if let m = try mode("hop") { s.hop = m }
        if let m = try mode("reserve") { s.reserve = m }
        if let v = try r.int("reservations", range: 0...8) { s.reservations = v }
        if let v = try r.int("max_reservations", range: 0...100_000) { s.hopLimits.maxReservations = v }
        if let v = try r.int("max_reservations_per_ip", range: 1...100_000) { s.hopLimits.maxReservationsPerIP = v }
        if let v = try r.int("reservation_ttl_s", range: 30...86_400) { s.hopLimits.reservationTTL = .seconds(v) }
        if let v = try r.int("max_circuits", range: 0...100_000) { s.hopLimits.maxCircuits = v }
        if let v = try r.int("max_circuits_per_peer", range: 1...100_000) { s.hopLimits.maxCircuitsPerPeer = v }
        if let v = try r.int("circuit_bytes", range: 0...(1 << 50)) { s.hopLimits.circuitBytes = UInt64(v) }
        if let v = try r.int("circuit_s", range: 0...(7 * 86_400)) { s.hopLimits.circuitDuration = .seconds(v) }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        ctx = context
        swarm = context.swarm
        logger = context.logger
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        hopState = Relay.HopState(settings: settings.hopLimits)
        swarm.handle(Relay.hopProtocolID) { [weak self] s in
            guard let self else { return nil }
            return HopInbound(service: self)
        }
        swarm.handle(Relay.stopProtocolID) { [weak self] s in
            guard let self else { return nil }
            return StopInbound(service: self)
        }
        swarm.circuitDialer = { [weak self] addr, done in
            guard let self else { done(.failure(SwarmError("the relay client stopped"))); return }
            self.dialCircuit(addr, done)
        }
        updateHopAdvertised()
    }

    func start() {
        maintenance = ctx.timer(after: .seconds(1), repeating: .seconds(5)) { [weak self] _ in self?.maintain() }
    }

    func stop() {
        for c in Array(circuits.values) { c.kill("shutdown") }
        for h in held.values { h.renew?.cancel() }
        held.removeAll()
        swarm.circuitDialer = nil
    }

    /// Serving as a relay now.
    var serving: Bool {
        switch settings.hop {
        case .on: true
        case .off: false
        case .auto: swarm.reachability == .public
        }
    }

    /// Holding reservations now.
    var wantsReservations: Bool {
        guard settings.reservations > 0 else { return false }
        switch settings.reserve {
        case .on: return true
        case .off: return false
        case .auto: return swarm.reachability != .public
        }
    }

    func updateHopAdvertised() { swarm.setHidden(Relay.hopProtocolID, !serving) }

    func onPeerEvent(_ event: PeerEvent) {
        switch event {
        case .identified(let p, let info):
            let offers = info.protocols.contains(Relay.hopProtocolID)
            if offers, !candidates.contains(p), !swarm.isRelayed(p) {
                if candidates.count >= 64 { candidates.removeFirst() }
                candidates.append(p)
                maintain()
            } else if !offers, let i = candidates.firstIndex(of: p) {
                candidates.remove(at: i)
            }
        case .disconnected(let p):
            candidates.removeAll { $0 == p }
            hopState.disconnected(p)
            if let h = held.removeValue(forKey: p) {
                h.renew?.cancel()
                Counter(label: "lattica_relay_client_reservations_lost_total").increment()
                publish()
                maintain()
            }
        case .reachabilityChanged:
            updateHopAdvertised()
            if !wantsReservations, !held.isEmpty {
                for h in held.values { h.renew?.cancel() }
                held.removeAll()
                publish()
            }
            maintain()
        default:
            break
        }
    }

    // MARK: nat.status

    func contribute(to status: inout NATStatusResult) {
        let now = swarm.loop.now
        status.relayReservations = held.sorted { $0.key < $1.key }.map { relay, h in
            RelayReservationEntry(relay: relay.description, addrs: h.addrs.map { $0.appending(.p2pCircuit).description },
                                  expiresInSeconds: max(0, (h.expires - now).secondsDouble))
        }
    }

    // MARK: client: reservations

    func maintain() {
        guard wantsReservations else { return }
        let now = swarm.loop.now
        for p in candidates where held.count + reserving.count < settings.reservations {
            guard held[p] == nil, !reserving.contains(p), backoff[p].map({ $0 <= now }) ?? true else { continue }
            reserve(on: p)
        }
    }

    func reserve(on relay: PeerId) {
        reserving.insert(relay)
        Counter(label: "lattica_relay_client_reserve_attempts_total").increment()
        let h = Self.hopRequest(timeout: settings.requestTimeout) { [weak self] r in
            guard let self else { return }
            self.reserving.remove(relay)
            switch r {
            case .success(let (m, _, _)):
                guard m.kind == .status, m.status == .ok, let rsv = m.reservation else {
                    self.reservationFailed(relay, "refused: \(m.status.map { "\($0)" } ?? "no status")")
                    return
                }
                self.reserved(on: relay, rsv, limit: m.limit)
            case .failure(let e):
                self.reservationFailed(relay, e.message)
            }
        }
        guard let s = swarm.openStream(relay, Relay.hopProtocolID, handler: h) else {
            reserving.remove(relay)
            reservationFailed(relay, "cannot open a hop stream")
            return
        }
        h.begin(s, Relay.HopMessage(kind: .reserve).framed())
    }

    func reservationFailed(_ relay: PeerId, _ why: String) {
        Counter(label: "lattica_relay_client_reservations_total", dimensions: [("outcome", "failed")]).increment()
        logger.debug("relay reservation failed", metadata: ["relay": "\(relay)", "error": "\(why)"])
        backoff[relay] = swarm.loop.now + .seconds(60)
        if backoff.count > 256 { backoff = backoff.filter { $0.value > swarm.loop.now } }
    }

    func reserved(on relay: PeerId, _ rsv: Relay.Reservation, limit: Relay.Limit?) {
        Counter(label: "lattica_relay_client_reservations_total", dimensions: [("outcome", "ok")]).increment()
        let remaining = max(30, Double(rsv.expire) - wallClockSeconds())
        let expires = swarm.loop.now + .milliseconds(Int64(remaining * 1000))
        // The relay's addresses must name the relay; ours through it are `<that>/p2p-circuit`.
        var addrs: [Multiaddr] = []
        for a in rsv.addrs where !a.isCircuit {
            let named = a.peerId == relay ? a : a.withoutPeerId.appending(.p2p(relay))
            guard a.peerId == nil || a.peerId == relay, SocketAddress(multiaddr: named) != nil, !addrs.contains(named) else { continue }
            addrs.append(named)
        }
        if addrs.isEmpty, let c = swarm.connection(to: relay), let ra = c.remoteAddr, SocketAddress(multiaddr: ra) != nil {
            addrs = [ra.withoutPeerId.appending(.p2p(relay))]
        }
        held[relay]?.renew?.cancel()
        let renewIn = Duration.milliseconds(Int64(max(10, remaining * 0.75) * 1000))
        let timer = ctx.timer(after: renewIn) { [weak self] _ in
            guard let self, self.held[relay] != nil, self.wantsReservations else { return }
            self.reserve(on: relay)
        }
        held[relay] = Held(expires: expires, addrs: addrs, limit: limit, renew: timer)
        logger.info("relay reservation", metadata: ["relay": "\(relay)", "expires_s": "\(Int(remaining))", "addrs": "\(addrs.count)"])
        publish()
    }

    /// Our `/p2p-circuit` addresses, for identify (and so the DHT).
    func publish() {
        let addrs = held.keys.sorted().flatMap { held[$0]!.addrs.map { $0.appending(.p2pCircuit) } }
        swarm.setAdvertised("relay", addrs)
        Gauge(label: "lattica_relay_client_reservations").record(held.count)
    }

    // MARK: client: dialling a circuit

    func dialCircuit(_ addr: Multiaddr, _ done: @escaping (Result<PeerId, SwarmError>) -> Void) {
        guard let relayAddr = addr.circuitRelay, let relay = relayAddr.peerId else {
            done(.failure(SwarmError("\(addr): a circuit address needs /p2p/<relay> before /p2p-circuit"))); return
        }
        guard let target = addr.circuitTarget else {
            done(.failure(SwarmError("\(addr): a circuit address needs /p2p/<target> after /p2p-circuit"))); return
        }
        guard target != swarm.localPeer, target != relay, relay != swarm.localPeer else {
            done(.failure(SwarmError("\(addr): refusing a circuit to ourselves or through the target"))); return
        }
        if let c = swarm.connection(to: target), c.established { done(.success(target)); return }
        Counter(label: "lattica_relay_client_dials_total").increment()
        swarm.dial(relayAddr) { [weak self] r in
            guard let self else { return }
            if case .failure(let e) = r {
                done(.failure(SwarmError("cannot reach relay \(relay): \(e.message)"))); return
            }
            guard !self.swarm.isRelayed(relay) else {
                done(.failure(SwarmError("our connection to relay \(relay) is itself relayed"))); return
            }
            let h = Self.hopRequest(timeout: self.settings.requestTimeout) { [weak self] r in
                guard let self else { return }
                switch r {
                case .success(let (m, s, rest)):
                    guard m.kind == .status, m.status == .ok else {
                        Counter(label: "lattica_relay_client_dial_failures_total", dimensions: [("reason", "refused")]).increment()
                        s.reset()
                        done(.failure(SwarmError("relay \(relay) refused the circuit to \(target): \(m.status.map { "\($0)" } ?? "no status")")))
                        return
                    }
                    let transport = RelayedTransport(stream: s, initial: rest)
                    self.swarm.adoptRelayed(transport, dialer: true, peer: target, remoteAddr: addr, completion: done)
                case .failure(let e):
                    Counter(label: "lattica_relay_client_dial_failures_total", dimensions: [("reason", "error")]).increment()
                    done(.failure(SwarmError("circuit to \(target) through \(relay): \(e.message)")))
                }
            }
            guard let s = self.swarm.openStream(relay, Relay.hopProtocolID, handler: h) else {
                done(.failure(SwarmError("cannot open a hop stream to relay \(relay)"))); return
            }
            h.begin(s, Relay.HopMessage(kind: .connect, peer: Relay.Peer(id: target)).framed())
        }
    }

    // MARK: client: accepting a circuit (stop)

    func stopConnect(_ s: SwarmStream, _ m: Relay.StopMessage, rest: [UInt8]) {
        func refuse(_ status: Relay.Status, _ reason: String) {
            Counter(label: "lattica_relay_stop_refused_total", dimensions: [("reason", reason)]).increment()
            s.send(Relay.StopMessage(kind: .status, status: status).framed(), close: true)
        }
        guard m.kind == .connect, let src = m.peer?.id else { refuse(.malformedMessage, "malformed"); return }
        guard held[s.peer] != nil else { refuse(.permissionDenied, "no_reservation"); return }
        guard src != swarm.localPeer else { refuse(.permissionDenied, "self"); return }
        s.send(Relay.StopMessage(kind: .status, status: .ok).framed(), close: false)
        let relayAddr = (s.conn.remoteAddr?.withoutPeerId ?? Multiaddr([])).appending(.p2p(s.peer))
        let transport = RelayedTransport(stream: s, initial: rest)
        Counter(label: "lattica_relay_stop_accepted_total").increment()
        swarm.adoptRelayed(transport, dialer: false, peer: src, remoteAddr: relayAddr.appending(.p2pCircuit).appending(.p2p(src)), completion: nil)
    }

    // MARK: hop: reservations and circuits

    func hopRequest(_ s: SwarmStream, _ m: Relay.HopMessage, rest: [UInt8]) {
        switch m.kind {
        case .reserve: hopReserve(s)
        case .connect: hopConnect(s, m, rest: rest)
        case .status: hopRefuse(s, .unexpectedMessage, "unexpected")
        }
    }

    func hopRefuse(_ s: SwarmStream, _ status: Relay.Status, _ reason: String) {
        Counter(label: "lattica_relay_hop_refused_total", dimensions: [("reason", reason)]).increment()
        s.send(Relay.HopMessage(kind: .status, status: status).framed(), close: true)
    }

    func hopReserve(_ s: SwarmStream) {
        guard serving else { hopRefuse(s, .permissionDenied, "not_serving"); return }
        let ip = s.conn.isRelayed ? nil : s.conn.remoteAddr.flatMap(Self.ipBytes)
        switch hopState.reserve(s.peer, ip: ip, now: swarm.loop.now) {
        case .failure(let why):
            hopRefuse(s, why.status, why.rawValue)
        case .success:
            let expire = UInt64(max(0, wallClockSeconds())) + UInt64(settings.hopLimits.reservationTTL.components.seconds)
            let me = swarm.localPeer
            var addrs: [Multiaddr] = []
            if let local = s.conn.localAddr { addrs.append(local) }
            for a in swarm.advertisedAddrs where !a.isCircuit && !a.isUnspecifiedIP && !addrs.contains(a.withoutPeerId) {
                addrs.append(a.withoutPeerId)
            }
            let voucher = Relay.Voucher(relay: me, peer: s.peer, expiration: expire)
            let payload = voucher.payload()
            let envelope = Relay.Voucher.envelope(
                publicKey: swarm.identity.publicKey.protobuf.encoded(), payload: payload,
                signature: swarm.identity.sign(Relay.Voucher.signedBytes(payload: payload)))
            let rsv = Relay.Reservation(expire: expire, addrs: addrs.prefix(Relay.maxAddresses - 1).map { $0.appending(.p2p(me)) }, voucher: envelope)
            Counter(label: "lattica_relay_hop_reservations_total").increment()
            Gauge(label: "lattica_relay_hop_reservations").record(hopState.reservations.count)
            s.send(Relay.HopMessage(kind: .status, reservation: rsv, limit: settings.hopLimits.limit, status: .ok).framed(), close: true)
        }
    }

    func hopConnect(_ s: SwarmStream, _ m: Relay.HopMessage, rest: [UInt8]) {
        guard serving else { hopRefuse(s, .permissionDenied, "not_serving"); return }
        guard let dst = m.peer?.id else { hopRefuse(s, .malformedMessage, "malformed"); return }
        let id: Int
        switch hopState.openCircuit(from: s.peer, to: dst, relayed: s.conn.isRelayed, now: swarm.loop.now) {
        case .failure(let why): hopRefuse(s, why.status, why.rawValue); return
        case .success(let i): id = i
        }
        let opener = Self.stopRequest(timeout: settings.requestTimeout) { [weak self] r in
            guard let self else { return }
            switch r {
            case .success(let (reply, stop, stopRest)) where reply.kind == .status && reply.status == .ok:
                guard s.isOpen else { stop.reset(); self.hopState.closeCircuit(id); return }
                s.send(Relay.HopMessage(kind: .status, limit: self.settings.hopLimits.limit, status: .ok).framed(), close: false)
                let c = Circuit(service: self, id: id, src: s, dst: stop, limit: self.settings.hopLimits)
                self.circuits[id] = c
                Counter(label: "lattica_relay_hop_circuits_total").increment()
                Gauge(label: "lattica_relay_hop_circuits").record(self.circuits.count)
                c.start(srcRest: rest, dstRest: stopRest)
            case .success(let (_, stop, _)):
                stop.reset()
                self.hopState.closeCircuit(id)
                self.hopRefuse(s, .connectionFailed, "target_refused")
            case .failure:
                self.hopState.closeCircuit(id)
                self.hopRefuse(s, .connectionFailed, "target_unreachable")
            }
        }
        guard let stop = swarm.openStream(dst, Relay.stopProtocolID, handler: opener) else {
            hopState.closeCircuit(id)
            hopRefuse(s, .connectionFailed, "target_unreachable")
            return
        }
        // Until the target answers, the source's stream waits (what it sends is kept in `rest`).
        s.handler = Waiting()
        opener.begin(stop, Relay.StopMessage(kind: .connect, peer: Relay.Peer(id: s.peer), limit: settings.hopLimits.limit).framed())
    }

    func circuitEnded(_ id: Int, _ reason: String) {
        guard circuits.removeValue(forKey: id) != nil else { return }
        hopState.closeCircuit(id)
        if circuitsClosed[reason] != nil || circuitsClosed.count < 16 { circuitsClosed[reason, default: 0] += 1 }
        Counter(label: "lattica_relay_hop_circuits_closed_total", dimensions: [("reason", reason)]).increment()
        Gauge(label: "lattica_relay_hop_circuits").record(circuits.count)
    }

    static func ipBytes(_ a: Multiaddr) -> [UInt8]? {
        switch a.components.first {
        case .ip4(let b)?: b
        case .ip6(let b)?: b
        default: nil
        }
    }

    /// Counts a malformed relay message from the network.
    static func malformed(_ proto: String, _ e: any Error) {
        Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", proto), ("reason", "decode")]).increment()
    }
}

