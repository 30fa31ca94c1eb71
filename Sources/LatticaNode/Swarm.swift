import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaNAT
import LatticaStore
import LatticaUV
import LatticaWire
import Logging
import Metrics

/// Why a dial or request failed: one line.
public struct SwarmError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The connection manager: drives one `LatticaWire.Connection.Instance` per TCP connection on the
/// loop thread, keeps at most one connection per peer (simultaneous dials are resolved the same way
/// on both sides), runs identify and ping, routes streams to protocol handlers, and keeps the peer
/// store. Loop thread only: its entry points assert it (`EventLoop.assertInLoop`, debug builds).
final class Swarm: @unchecked Sendable {
    struct Settings {
        var protocolVersion: String
        var agentVersion: String
        var maxConnections: Int
        var idleTimeout: Duration
        var dialTimeout: Duration = .seconds(10)
        var maxRequestBytes = 4 << 20
    }

    typealias ConnID = Int

    let loop: EventLoop
    let identity: Ed25519PrivateKey
    let localPeer: PeerId
    let settings: Settings
    let logger: Logger
    let peerStore: PeerStore?
    var rng: SeededRandom
    var conns: [ConnID: Conn] = [:]
    var byPeer: [PeerId: ConnID] = [:]
    var nextConnID = 1
    var listenAddrs: [Multiaddr] = []
    /// Addresses services add to what we advertise, by source (`observed`, `upnp`, `relay`, …).
    private(set) var extraAddrs: [String: [Multiaddr]] = [:]
    /// Whether peers can dial us, as the reachability services last concluded.
    private(set) var reachability: NAT.Reachability = .unknown
    /// Inbound stream routing: protocol id → the factory of the service that registered it.
    var inbound: [String: InboundStreamFactory] = [:]
    /// Protocols the connection stack answers itself but that are advertised (ping).
    var builtIn: Set<String> = []
    /// The repeating timer that fails overdue requests (running only while some wait).
    var deadlineSweep: LoopTimer?
    /// Everyone who hears peer events (every service, the daemon's snapshot), in order.
    private var observers: [(PeerEvent) -> Void] = []
    /// Known peer information (connected or recently seen), bounded.
    var peerInfo: [PeerId: PeerInfo] = [:]
    let maxPeerInfo = 10_000
    /// Connections with output waiting for the end of the loop turn.
    var dirtyConns: [Conn] = []
    var dirtySpare: [Conn] = []
    /// Outbound stream opens queued per connection while the muxer is at its limit.
    let maxPendingOpens = 10_000
    /// The listeners' addresses: hole-punch dials bind these (SO_REUSEPORT).
    var punchSources: [SocketAddress] = []
    /// For an accepted socket: the peer we are punching to from that address, and whether we are
    /// the dialer (Noise initiator) of the punched connection (set by the DCUtR service).
    var punchedInbound: ((SocketAddress) -> (peer: PeerId, dialer: Bool, method: String)?)?
    /// The NAT in front of us as the STUN probe classified it (`unknown` until one finished).
    private(set) var natMapping: NAT.Behaviour = .unknown
    private(set) var natFiltering: NAT.Behaviour = .unknown
    /// Dials a `/p2p-circuit` address (set by the relay service).
    var circuitDialer: ((Multiaddr, @escaping (Result<PeerId, SwarmError>) -> Void) -> Void)?

    init(loop: EventLoop, identity: Ed25519PrivateKey, settings: Settings, peerStore: PeerStore?, logger: Logger) {
        self.loop = loop
        self.identity = identity
        self.localPeer = identity.publicKey.peerId
        self.settings = settings
        self.peerStore = peerStore
        self.logger = logger
        self.rng = SeededRandom(seed: SecureRandom.uint64())
    }

    /// Protocols offered on inbound streams (multistream-select listener side).
    var supportedProtocols: [String] { builtIn.union(inbound.keys).sorted() }
    /// Protocols answered but not named in identify for now (a relay's hop while it is not
    /// serving; the DHT in client mode).
    private(set) var hiddenProtocols: Set<String> = []
    /// What identify names.
    var advertisedProtocols: [String] { supportedProtocols.filter { !hiddenProtocols.contains($0) } }

    /// Hides `proto` from identify, or names it again; tells every service when that changed.
    func setHidden(_ proto: String, _ hidden: Bool) {
        guard hiddenProtocols.contains(proto) != hidden else { return }
        if hidden { hiddenProtocols.insert(proto) } else { hiddenProtocols.remove(proto) }
        emit(.localAddressesChanged(advertisedAddrs))
    }

    /// Adds a listener for peer events; every listener hears every event.
    func observe(_ listener: @escaping (PeerEvent) -> Void) { observers.append(listener) }

    func emit(_ e: PeerEvent) {
        for o in observers { o(e) }
    }

    var connectionSettings: Connection.Settings {
        var s = Connection.Settings(protocols: supportedProtocols)
        s.answerPings = true
        return s
    }

    // MARK: our addresses

    /// What identify advertises: the listen addresses, then what services added (confirmed
    /// external addresses, port mappings, `/p2p-circuit` addresses), without duplicates, at most 32.
    var advertisedAddrs: [Multiaddr] {
        var out: [Multiaddr] = []
        for a in listenAddrs where !out.contains(a) { out.append(a) }
        for k in extraAddrs.keys.sorted() { for a in extraAddrs[k]! where !out.contains(a) { out.append(a) } }
        return Array(out.prefix(32))
    }

    /// Replaces the addresses `source` contributes; tells every service when what we advertise changed.
    func setAdvertised(_ source: String, _ addrs: [Multiaddr]) {
        loop.assertInLoop()
        let before = advertisedAddrs
        extraAddrs[source] = addrs.isEmpty ? nil : addrs
        let after = advertisedAddrs
        if after != before { emit(.localAddressesChanged(after)) }
    }

    func setNATBehaviour(mapping: NAT.Behaviour, filtering: NAT.Behaviour) {
        loop.assertInLoop()
        guard mapping != natMapping || filtering != natFiltering else { return }
        natMapping = mapping
        natFiltering = filtering
        emit(.natBehaviourChanged(mapping: mapping, filtering: filtering))
    }

    func setReachability(_ r: NAT.Reachability) {
        loop.assertInLoop()
        guard r != reachability else { return }
        reachability = r
        Gauge(label: "lattica_nat_reachability", dimensions: [("state", r.rawValue)]).record(1)
        for o in NAT.Reachability.allCases where o != r { Gauge(label: "lattica_nat_reachability", dimensions: [("state", o.rawValue)]).record(0) }
        emit(.reachabilityChanged(r))
    }

    // MARK: connections

    /// Takes over an accepted socket.
    func adoptInbound(_ socket: TCPSocket) {
        loop.assertInLoop()
        guard conns.count < settings.maxConnections else {
            Counter(label: "lattica_connections_refused_total", dimensions: [("reason", "limit")]).increment()
            socket.close()
            return
        }
        let remote = socket.remoteAddress.map { Multiaddr(socketAddress: $0) }
        if let from = socket.remoteAddress, let (peer, dialer, method) = punchedInbound?(from) {
            // The peer's hole-punch SYN reached our listener before our own SYN left (or through
            // a hole we sprayed): the punch still decides who dials this connection.
            _ = addConnection(socket: PunchedTCP(socket, method: method), role: dialer ? .dialer(expectedPeer: peer) : .listener, remoteAddr: remote)
            return
        }
        _ = addConnection(socket: socket, role: .listener, remoteAddr: remote)
    }

    /// Dials `addr` (`…/p2p/<id>` checks the identity). Completes with the remote peer once the
    /// secure channel and muxer are up, or an error. Reuses an existing connection to the peer.
    func dial(_ addr: Multiaddr, completion: @escaping (Result<PeerId, SwarmError>) -> Void) {
        loop.assertInLoop()
        let expected = addr.peerId
        // An open connection serves, except that a direct address is dialled although the peer is
        // reached through a relay: the direct connection then replaces the relayed one.
        if let p = expected, let id = byPeer[p], let c = conns[id], c.established, !c.isRelayed || addr.isCircuit {
            completion(.success(p)); return
        }
        if let p = expected, p == localPeer { completion(.failure(SwarmError("refusing to dial ourselves"))); return }
        if addr.isCircuit {
            guard let dialCircuit = circuitDialer else {
                completion(.failure(SwarmError("cannot dial \(addr): the relay client is not running"))); return
            }
            dialCircuit(addr, completion)
            return
        }
        guard let sock = SocketAddress(multiaddr: addr) else {
            completion(.failure(SwarmError("cannot dial \(addr): only /ip4|/ip6/…/tcp/… addresses are supported")))
            return
        }
        guard conns.count < settings.maxConnections else {
            completion(.failure(SwarmError("connection limit (\(settings.maxConnections)) reached"))); return
        }
        Counter(label: "lattica_dials_total").increment()
        TCPSocket.connect(on: loop, to: sock, timeout: settings.dialTimeout) { [weak self] r in
            guard let self else { return }
            switch r {
            case .failure(let e):
                Counter(label: "lattica_dial_failures_total", dimensions: [("reason", "tcp")]).increment()
                if let p = expected { self.noteFailure(p) }
                completion(.failure(SwarmError("cannot connect to \(addr): \(e)")))
            case .success(let s):
                let id = self.addConnection(socket: s, role: .dialer(expectedPeer: expected), remoteAddr: addr.withoutPeerId)
                self.conns[id]?.dialWaiters.append(completion)
            }
        }
    }

    @discardableResult
    func addConnection(socket: any ConnTransport, role: Connection.Role, remoteAddr: Multiaddr?) -> ConnID {
        let id = nextConnID
        nextConnID += 1
        // Key material is an input of the handshake: fresh from libsodium for every connection.
        let keys = Noise.Keys(staticKey: .generate(), ephemeralKey: .generate())
        let instance = Connection.Instance(role: role, identity: identity, settings: connectionSettings, rng: rng.fork(), noiseKeys: keys)
        let c = Conn(id: id, transport: socket, instance: instance, remoteAddr: remoteAddr, openedAt: loop.now)
        c.writeDone = { [weak self, weak c] e in
            if let e, let self, let c { self.writeFailed(c, e) }
        }
        conns[id] = c
        Gauge(label: "lattica_connections").record(conns.count)
        socket.onData = { [weak self] bytes in self?.onSocketData(id, bytes) }
        socket.onEnd = { [weak self] _ in
            guard let self, let c = self.conns[id] else { return }
            self.apply(c, c.instance.onEndOfInput(now: self.loop.now))
        }
        socket.onWritabilityChanged = { [weak self] writable in
            guard writable, let self, let c = self.conns[id] else { return }
            self.socketDrained(c)
        }
        socket.startReading()
        apply(c, c.instance.start(now: loop.now))
        return id
    }

    private func onSocketData(_ id: ConnID, _ bytes: UnsafeRawBufferPointer) {
        guard let c = conns[id] else { return }
        c.lastActivity = loop.now
        var ds = c.instance.onBytes(copying: bytes, now: loop.now)
        // What the protocol stack answers by itself (stream ACKs, window updates, negotiation)
        // goes out before the application handles the read: the peer can go on (open the next
        // streams, send more) while we work, instead of the two sides taking turns. (With one
        // write per read, 1,000 requests in flight ran at the speed of one thread: ~50k/s.)
        if case .send(let own)? = ds.first {
            ds.removeFirst()
            queueSend(c, own)
            flush(c)
        }
        apply(c, ds)
        // Then the application's answers to this read, in one write, at once (window updates
        // must not wait for the rest of the turn's reads).
        flush(c)
    }

    /// Interprets the connection's directives against the socket and the protocol handlers.
    func apply(_ c: Conn, _ directives: [Connection.Directive]) {
        for d in directives {
            switch d {
            case .send(let bytes):
                queueSend(c, bytes)
            case .established(let peer):
                established(c, peer)
            case .streamOpened(let sid, let proto, let inbound):
                streamOpened(c, sid, proto, inbound: inbound)
            case .streamFailed(let sid, let why):
                streamGone(c, sid, error: "stream negotiation failed: \(why)")
            case .data(let sid, let bytes):
                streamData(c, sid, bytes)
            case .finished(let sid):
                streamFinished(c, sid)
            case .reset(let sid):
                streamGone(c, sid, error: "stream reset by peer")
            case .streamClosed(let sid):
                streamGone(c, sid, error: nil)
            case .writable(let sid):
                streamWritable(c, sid)
            case .rtt(let rtt):
                if let p = c.peer { updateInfo(p) { $0.rtt = rtt } }
            case .goAway:
                c.goingAway = true
            case .closed(let reason):
                connectionClosed(c, reason)
                return
            }
        }
        scheduleTimer(c)
    }

    // MARK: output coalescing

    /// Bytes for the socket wait in `c.out` until the end of the loop turn, so everything one turn
    /// produces for a connection (many small Noise frames when many streams are busy) goes out in
    /// one write. Large output is written at once, without the extra copy.
    static let flushThreshold = 64 << 10

    func queueSend(_ c: Conn, _ bytes: consuming [UInt8]) {
        if c.out.isEmpty { c.out = bytes } else { c.out.append(contentsOf: bytes) }
        if c.out.count >= Self.flushThreshold { flush(c); return }
        guard !c.flushQueued else { return }
        c.flushQueued = true
        dirtyConns.append(c)
        if dirtyConns.count == 1 { loop.atEndOfTurn { [weak self] in self?.flushDirty() } }
    }

    func flushDirty() {
        swap(&dirtyConns, &dirtySpare)
        for c in dirtySpare {
            c.flushQueued = false
            flush(c)
        }
        dirtySpare.removeAll(keepingCapacity: true)
    }

    /// Hands `c.out` to the socket. A write the socket refuses (its queue bound is reached: the
    /// peer does not read) loses bytes of the encrypted stream, so the connection is closed.
    func flush(_ c: Conn) {
        guard !c.out.isEmpty, !c.transport.isClosing else { return }
        // Take the bytes out first: a failing write closes the connection from inside `write`,
        // and that path flushes (and may refill) `c.out` again.
        var bytes: [UInt8] = []
        swap(&bytes, &c.out)
        bytes.withUnsafeBytes { c.transport.write($0, completion: c.writeDone) }
        c.socketWrites &+= 1
        if c.out.isEmpty, bytes.capacity <= Self.flushThreshold {  // reuse the buffer
            bytes.removeAll(keepingCapacity: true)
            swap(&bytes, &c.out)
        }
    }

    func writeFailed(_ c: Conn, _ e: UVError) {
        guard conns[c.id] != nil else { return }
        Counter(label: "lattica_connections_failed_total", dimensions: [("reason", "write")]).increment()
        logger.debug("connection write failed", metadata: ["peer": "\(c.peer?.description ?? "?")", "error": "\(e)"])
        connectionClosed(c, .local)
    }

    private func scheduleTimer(_ c: Conn) {
        guard conns[c.id] != nil else { return }
        let (deadline, streams) = c.instance.timerState()
        let idleAt = streams == 0 && c.established ? c.lastActivity + settings.idleTimeout : nil
        let next = switch (deadline, idleAt) {
        case (let d?, let i?): min(d, i)
        case (let d?, nil): d
        case (nil, let i): i
        }
        if next == c.timerDeadline { return }
        c.timer?.cancel()
        c.timer = nil
        c.timerDeadline = next
        guard let next else { return }
        let delay = max(.zero, next - loop.now)
        c.timer = loop.scheduleTimer(after: delay) { [weak self, weak c] _ in
            guard let self, let c, self.conns[c.id] != nil else { return }
            c.timer = nil
            c.timerDeadline = nil
            let now = self.loop.now
            if c.instance.timerState().streams == 0, c.established, now >= c.lastActivity + self.settings.idleTimeout {
                Counter(label: "lattica_connections_closed_total", dimensions: [("reason", "idle")]).increment()
                self.apply(c, c.instance.close(now: now))
                return
            }
            self.apply(c, c.instance.onTimer(now: now))
        }
    }

    private func established(_ c: Conn, _ peer: PeerId) {
        c.peer = peer
        c.established = true
        c.lastActivity = loop.now
        if let otherID = byPeer[peer], otherID != c.id, let other = conns[otherID] {
            // A direct connection replaces a relayed one (a hole punch, or a dial that got through).
            // Otherwise a simultaneous dial: keep the connection whose dialer has the smaller peer
            // id (both sides compute the same answer); with the same dialer, keep the older one.
            let keepNew = c.isRelayed != other.isRelayed ? other.isRelayed
                : Self.dialerPeer(c, local: localPeer).lexicographicallyPrecedes(Self.dialerPeer(other, local: localPeer))
            let (keep, drop) = keepNew ? (c, other) : (other, c)
            keep.dialWaiters += drop.dialWaiters
            drop.dialWaiters = []
            Counter(label: "lattica_connections_closed_total", dimensions: [("reason", drop.isRelayed && !keep.isRelayed ? "upgraded" : "duplicate")]).increment()
            byPeer[peer] = keep.id
            if drop.isRelayed && !keep.isRelayed {
                // The relayed connection ends after its streams do (the DCUtR spec's grace period):
                // new streams open on the direct one; `retireRelayed` closes it once idle.
                retireRelayed(drop)
                for w in keep.dialWaiters { w(Result<PeerId, SwarmError>.success(peer)) }
                keep.dialWaiters = []
                if drop === c { return }
                updateInfo(peer) { info in
                    if let a = c.remoteAddr, c.instance.isDialer, !info.addrs.contains(a) { info.addrs.insert(a, at: 0) }
                    info.lastSeen = self.loop.now
                }
                Counter(label: "lattica_connections_established_total", dimensions: [("direction", c.instance.isDialer ? "outbound" : "inbound"), ("transport", "direct")]).increment()
                emit(.upgraded(peer))
                return
            }
            apply(drop, drop.instance.close(now: loop.now))
            if drop === c {
                for w in keep.dialWaiters where keep.established { w(Result<PeerId, SwarmError>.success(peer)) }
                if keep.established { keep.dialWaiters = [] }
                return
            }
        } else {
            byPeer[peer] = c.id
        }
        Counter(label: "lattica_connections_established_total", dimensions: [("direction", c.instance.isDialer ? "outbound" : "inbound"), ("transport", c.isRelayed ? "relayed" : "direct")]).increment()
        updateInfo(peer) { info in
            if let a = c.remoteAddr, c.instance.isDialer, !info.addrs.contains(a) { info.addrs.insert(a, at: 0) }
            info.lastSeen = self.loop.now
        }
        for w in c.dialWaiters { w(.success(peer)) }
        c.dialWaiters = []
        emit(.connected(peer, ConnectedPeer(remoteAddr: c.remoteAddr, isDialer: c.instance.isDialer)))
    }

    static func dialerPeer(_ c: Conn, local: PeerId) -> [UInt8] {
        (c.instance.isDialer ? local : c.peer!).multihash
    }

    private func connectionClosed(_ c: Conn, _ reason: Connection.CloseReason) {
        c.timer?.cancel()
        c.timer = nil
        conns.removeValue(forKey: c.id)
        Gauge(label: "lattica_connections").record(conns.count)
        flush(c)
        c.writeDone = nil
        c.transport.close()
        let why: String
        switch reason {
        case .local, .remoteClosed: why = "\(reason)"
        default:
            why = "\(reason)"
            Counter(label: "lattica_connections_failed_total", dimensions: [("reason", Self.reasonLabel(reason))]).increment()
            logger.debug("connection closed", metadata: ["peer": "\(c.peer?.description ?? "?")", "reason": "\(reason)"])
        }
        for w in c.dialWaiters { w(.failure(SwarmError("connection closed before it was established: \(why)"))) }
        c.dialWaiters = []
        let waiting = c.pendingOpens.removeAll()
        for p in waiting { p.then(nil) }
        for sid in Array(c.streams.keys) { streamGone(c, sid, error: "connection closed") }
        if let p = c.peer, byPeer[p] == c.id {
            byPeer.removeValue(forKey: p)
            updateInfo(p) { $0.lastSeen = self.loop.now }
            emit(.disconnected(p))
        }
    }

    static func reasonLabel(_ r: Connection.CloseReason) -> String {
        switch r {
        case .securityNegotiationFailed: "security_negotiation"
        case .handshakeFailed: "handshake"
        case .transportFailed: "transport"
        case .muxerNegotiationFailed: "muxer_negotiation"
        case .muxerViolation: "muxer_violation"
        case .handshakeTimeout: "handshake_timeout"
        case .remoteClosed: "remote_closed"
        case .local: "local"
        }
    }

    func noteFailure(_ p: PeerId) {
        do { try peerStore?.recordFailure(p.description) } catch { persistFailed("record_failure", error) }
    }

    /// A peer-store write failed: counted and logged, never swallowed.
    func persistFailed(_ what: String, _ e: any Error) {
        Counter(label: "lattica_persist_failures_total", dimensions: [("store", "peers"), ("op", what)]).increment()
        logger.warning("peer store write failed", metadata: ["op": "\(what)", "error": "\(e)"])
    }

    /// Closes every connection (shutdown).
    func closeAll() {
        loop.assertInLoop()
        deadlineSweep?.cancel()
        deadlineSweep = nil
        for c in Array(conns.values) { apply(c, c.instance.close(now: loop.now)) }
        for c in Array(conns.values) { connectionClosed(c, .local) }
    }

    /// Closes the connection to `peer`, if any.
    func disconnect(_ peer: PeerId) {
        loop.assertInLoop()
        guard let id = byPeer[peer], let c = conns[id] else { return }
        apply(c, c.instance.close(now: loop.now))
    }

    /// The connected peers, as `peers` shows them. Loop thread.
    func peerEntries() -> PeersResult {
        let swarm = self
        let now = loop.now
        var out: [PeerEntry] = []
        for (peer, id) in swarm.byPeer {
            guard let c = swarm.conns[id] else { continue }
            let info = swarm.peerInfo[peer] ?? PeerInfo()
            let (transport, via, how): (String, String?, String) = switch c.transport.kind {
            case .relayed(let r): ("relayed", r.description, "relay")
            case .direct(punched: let method?): ("direct", nil, method)
            case .direct(punched: nil): ("direct", nil, c.instance.isDialer ? "dial" : "accept")
            }
            out.append(PeerEntry(peerId: peer.description, addr: c.remoteAddr?.description ?? "",
                                 direction: c.instance.isDialer ? "outbound" : "inbound",
                                 rttMs: (c.instance.rtt ?? info.rtt).map { $0.secondsDouble * 1000 },
                                 agent: info.agentVersion, protocolVersion: info.protocolVersion,
                                 protocols: info.protocols, connectedSeconds: (now - c.openedAt).secondsDouble,
                                 transport: transport, via: via, establishedBy: how))
        }
        return PeersResult(peers: out.sorted { $0.peerId < $1.peerId })
    }

    /// Peers with an established connection.
    var connectedPeerCount: Int { byPeer.count }

    func connection(to peer: PeerId) -> Conn? {
        byPeer[peer].flatMap { conns[$0] }
    }

    func updateInfo(_ p: PeerId, _ f: (inout PeerInfo) -> Void) {
        if peerInfo[p] == nil, peerInfo.count >= maxPeerInfo {
            // Bounded: forget the least recently seen peer that is not connected.
            if let victim = peerInfo.filter({ byPeer[$0.key] == nil }).min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
                peerInfo.removeValue(forKey: victim)
            }
        }
        var info = peerInfo[p] ?? PeerInfo()
        f(&info)
        peerInfo[p] = info
    }
}

/// One connection (TCP, or a relayed circuit) and its protocol state. Loop thread only.
final class Conn {
    let id: Swarm.ConnID
    let transport: any ConnTransport
    var instance: Connection.Instance
    let remoteAddr: Multiaddr?
    let openedAt: Instant
    var lastActivity: Instant
    var peer: PeerId?
    var established = false
    var goingAway = false
    var dialWaiters: [(Result<PeerId, SwarmError>) -> Void] = []
    var streams: [Connection.StreamID: SwarmStream] = [:]
    /// Outbound streams waiting for the muxer to accept more (stream limit, ACK backlog).
    var pendingOpens = FIFO<PendingOpen>()
    var timer: LoopTimer?
    var timerDeadline: Instant?
    /// Output of this loop turn, not yet handed to the socket (see `Swarm.queueSend`).
    var out: [UInt8] = []
    var flushQueued = false
    /// Writes handed to the socket (tests check that output is coalesced).
    var socketWrites = 0
    /// Streams that stopped at the swarm's send budget, in order, until the socket drains.
    var sendStalled: [Connection.StreamID] = []
    var drainCheckQueued = false
    /// The one write completion of this connection (no closure allocated per write).
    var writeDone: ((UVError?) -> Void)?

    /// A relayed connection replaced by a direct one, closing once its streams end.
    var retired = false

    var isRelayed: Bool { transport.kind.isRelayed }

    /// Our end of a TCP connection (the address the peer reached us at).
    var localAddr: Multiaddr? {
        let socket = (transport as? TCPSocket) ?? (transport as? PunchedTCP)?.socket
        return socket?.localAddress.map { Multiaddr(socketAddress: $0) }
    }

    init(id: Swarm.ConnID, transport: any ConnTransport, instance: Connection.Instance, remoteAddr: Multiaddr?, openedAt: Instant) {
        self.id = id; self.transport = transport; self.instance = instance; self.remoteAddr = remoteAddr
        self.openedAt = openedAt; self.lastActivity = openedAt
    }
}

/// What we know about a peer.
struct PeerInfo {
    var addrs: [Multiaddr] = []
    var protocols: [String] = []
    var agentVersion = ""
    var protocolVersion = ""
    var observedAddr: Multiaddr?
    var rtt: Duration?
    var lastSeen = Instant.zero
}
