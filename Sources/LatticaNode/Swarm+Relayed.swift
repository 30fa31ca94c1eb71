import LatticaCore
import LatticaUV
import Metrics

extension Swarm {
    /// How long a relayed connection that a direct one replaced may keep its streams.
    static let relayedGrace: Duration = .seconds(30)

    /// A relayed connection a direct one replaced: no new streams open on it (`byPeer` names the
    /// direct one); it closes when its last stream ends, or after the grace period.
    func retireRelayed(_ c: Conn) {
        guard !c.retired, conns[c.id] != nil else { return }
        c.retired = true
        if c.streams.isEmpty {
            apply(c, c.instance.close(now: loop.now))
            return
        }
        loop.scheduleTimer(after: Self.relayedGrace) { [weak self, weak c] _ in
            guard let self, let c, self.conns[c.id] != nil else { return }
            self.apply(c, c.instance.close(now: self.loop.now))
        }
    }

    /// Adopts a relayed circuit as a connection (`dialer`: we asked the relay for it, and expect
    /// `peer`). Completes like `dial`.
    func adoptRelayed(_ transport: RelayedTransport, dialer: Bool, peer: PeerId, remoteAddr: Multiaddr,
                      completion: ((Result<PeerId, SwarmError>) -> Void)?) {
        loop.assertInLoop()
        guard conns.count < settings.maxConnections else {
            Counter(label: "lattica_connections_refused_total", dimensions: [("reason", "limit")]).increment()
            transport.close()
            completion?(.failure(SwarmError("connection limit (\(settings.maxConnections)) reached")))
            return
        }
        let id = addConnection(socket: transport, role: dialer ? .dialer(expectedPeer: peer) : .listener, remoteAddr: remoteAddr)
        if let completion { conns[id]?.dialWaiters.append(completion) }
    }

    /// Adopts a TCP socket a hole punch produced, in the role DCUtR assigns (A: dialer).
    func adoptPunched(_ socket: TCPSocket, dialer: Bool, peer: PeerId, method: String, completion: @escaping (Result<PeerId, SwarmError>) -> Void) {
        loop.assertInLoop()
        let remote = socket.remoteAddress.map { Multiaddr(socketAddress: $0) }
        let id = addConnection(socket: PunchedTCP(socket, method: method), role: dialer ? .dialer(expectedPeer: peer) : .listener, remoteAddr: remote)
        conns[id]?.dialWaiters.append(completion)
    }

    /// Whether our connection to `peer` is relayed.
    func isRelayed(_ peer: PeerId) -> Bool { connection(to: peer)?.isRelayed ?? false }
}

extension Swarm {
    /// Dials `peer` at `addrs` (direct addresses first, then circuits), up to `parallel` at once:
    /// an address behind a NAT that swallows SYNs costs its dial timeout, and the circuit behind
    /// it must not wait for that. Completes once, with true at the first connection.
    func dialAny(_ peer: PeerId, _ addrs: [Multiaddr], parallel: Int = 3, _ done: @escaping (Bool) -> Void) {
        if let c = connection(to: peer), c.established { done(true); return }
        var queue = addrs.filter { !$0.isCircuit } + addrs.filter(\.isCircuit)
        var running = 0
        var finished = false
        func next() {
            while !finished, running < parallel, !queue.isEmpty {
                let a = queue.removeFirst()
                running += 1
                dial(a.withoutPeerId.appending(.p2p(peer))) { r in
                    running -= 1
                    guard !finished else { return }
                    if case .success = r {
                        finished = true
                        done(true)
                    } else if queue.isEmpty && running == 0 {
                        finished = true
                        done(false)
                    } else {
                        next()
                    }
                }
            }
            if !finished, queue.isEmpty, running == 0 { finished = true; done(false) }
        }
        next()
    }
}
