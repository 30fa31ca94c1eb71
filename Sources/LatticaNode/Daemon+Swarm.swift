import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaUV
import LatticaWire

func wallClockSeconds() -> Double { Date().timeIntervalSince1970 }

extension Daemon {
    /// The node's own control methods: `status`, `peers`, `connect`. Services register theirs.
    func registerNodeMethods(_ d: inout ControlDispatcher) {
        d.register(Methods.Status.self) { [weak self] _ in
            guard let self else { throw Self.stopping }
            return self.status()
        }
        d.register(Methods.Peers.self) { [weak self] _ in
            guard let self else { throw Self.stopping }
            return try await self.loop.submit { _ in self.peersSnapshot() }
        }
        d.register(Methods.Connect.self) { [weak self] p in
            guard let self else { throw Self.stopping }
            if !p.addr.hasPrefix("/") {
                // A bare peer id: its known addresses, else a DHT lookup (which reaches the peer
                // directly or through the relay it advertises).
                guard let peer = try? PeerId(string: p.addr) else {
                    throw ControlErrorBody.badRequest("'addr' is neither a multiaddr nor a peer id")
                }
                let _: Bool = try await self.onLoop { [self] swarm, done in
                    self.connectByID(swarm, peer) { ok in
                        done(ok ? .success(true) : .failure(SwarmError("cannot reach \(peer): no address worked (known, or found in the DHT)")))
                    }
                }
                return ConnectResult(peerId: peer.description)
            }
            let addr: Multiaddr
            do { addr = try Multiaddr(p.addr) } catch { throw ControlErrorBody.badRequest("'addr' is not a valid multiaddr (\(error))") }
            let peer: PeerId = try await self.onLoop { swarm, done in swarm.dial(addr) { done($0) } }
            return ConnectResult(peerId: peer.description)
        }
    }

    /// Loop thread: connects to `peer` by its id.
    func connectByID(_ swarm: Swarm, _ peer: PeerId, _ done: @escaping (Bool) -> Void) {
        guard peer != swarm.localPeer else { done(false); return }
        let lookup = { [weak self] in
            guard let self, let dht = self.dht else { done(false); return }
            // The lookup reaches the peer (directly or through its relay) as soon as a server
            // names it, but finishes only when it converged: answer at the first connection.
            var answered = false
            let watch = swarm.loop.scheduleTimer(after: .milliseconds(50), repeating: .milliseconds(50)) { t in
                guard !answered, let c = swarm.connection(to: peer), c.established else { return }
                answered = true
                t.cancel()
                done(true)
            }
            dht.query({ $0.findNode(peer.multihash, now: $1) }) { _, _ in
                watch.cancel()
                guard !answered else { return }
                answered = true
                if let c = swarm.connection(to: peer), c.established { done(true); return }
                swarm.dialAny(peer, swarm.peerInfo[peer]?.addrs ?? [], done)
            }
        }
        let known = swarm.peerInfo[peer]?.addrs ?? []
        if known.isEmpty { lookup(); return }
        swarm.dialAny(peer, known) { ok in if ok { done(true) } else { lookup() } }
    }

    static var stopping: ControlErrorBody { ControlErrorBody(code: "failed", message: "daemon is stopping") }

    /// Runs a callback-style swarm operation on the loop and awaits it; swarm errors become
    /// `failed` control errors.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (Swarm, @escaping (Result<T, SwarmError>) -> Void) -> Void) async throws -> T {
        do {
            return try await loop.submitCallback { [self] _, complete in
                guard let swarm else { complete(.failure(SwarmError("daemon is stopping"))); return }
                body(swarm) { r in complete(r.mapError { $0 as any Error }) }
            }
        } catch let e as SwarmError {
            throw ControlErrorBody(code: "failed", message: e.message)
        }
    }

    /// Loop thread.
    func peersSnapshot() -> PeersResult { swarm?.peerEntries() ?? PeersResult(peers: []) }
}
