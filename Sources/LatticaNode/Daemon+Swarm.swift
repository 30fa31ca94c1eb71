import Foundation
import LatticaAPI
import LatticaCore
import LatticaUV
import LatticaWire

func wallClockSeconds() -> Double { Date().timeIntervalSince1970 }

extension Daemon {
    /// Control API methods backed by the swarm.
    func registerSwarmMethods(_ d: inout ControlDispatcher) {
        d.register("peers") { [weak self] _ in
            guard let self else { throw Self.stopping }
            return try await self.loop.submit { _ in self.peersSnapshot() }
        }
        d.register("connect") { [weak self] params in
            guard let self else { throw Self.stopping }
            guard let text = params?["addr"]?.stringValue else { throw ControlErrorBody(code: "bad_request", message: "connect needs 'addr'") }
            let addr: Multiaddr
            do { addr = try Multiaddr(text) } catch { throw ControlErrorBody(code: "bad_request", message: "'\(text)' is not a valid multiaddr (\(error))") }
            let peer: PeerId = try await self.onLoop { swarm, done in swarm.dial(addr) { done($0) } }
            return ConnectResult(peer_id: peer.description)
        }
        d.register("ping") { [weak self] params in
            guard let self else { throw Self.stopping }
            guard let text = params?["peer"]?.stringValue else { throw ControlErrorBody(code: "bad_request", message: "ping needs 'peer'") }
            let count = max(1, min(100, Int(params?["count"]?.doubleValue ?? 1)))
            let peer: PeerId
            if let ma = try? Multiaddr(text), let p = ma.peerId {
                peer = try await self.onLoop { swarm, done in swarm.dial(ma) { done($0) } }
                _ = p
            } else {
                do { peer = try PeerId(string: text) } catch { throw ControlErrorBody(code: "bad_request", message: "'\(text)' is neither a peer id nor a multiaddr with /p2p/") }
            }
            let rtts: [Duration] = try await self.onLoop { swarm, done in swarm.ping(peer, count: count) { done($0) } }
            return PingResult(peer_id: peer.description, rtts_ms: rtts.map { $0.secondsDouble * 1000 })
        }
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
    func peersSnapshot() -> PeersResult {
        guard let swarm else { return PeersResult(peers: []) }
        let now = loop.now
        var out: [PeerEntry] = []
        for (peer, id) in swarm.byPeer {
            guard let c = swarm.conns[id] else { continue }
            let info = swarm.peerInfo[peer] ?? PeerInfo()
            out.append(PeerEntry(peer_id: peer.description, addr: c.remoteAddr?.description ?? "",
                                 direction: c.instance.isDialer ? "outbound" : "inbound",
                                 rtt_ms: (c.instance.rtt ?? info.rtt).map { $0.secondsDouble * 1000 },
                                 agent: info.agentVersion, protocol_version: info.protocolVersion,
                                 protocols: info.protocols, connected_s: (now - c.openedAt).secondsDouble))
        }
        return PeersResult(peers: out.sorted { $0.peer_id < $1.peer_id })
    }

    /// Loop thread: dials the bootstrap peers, retrying each with exponential backoff (1 s … 60 s)
    /// until connected; logs clearly when none is reachable.
    func dialBootstrap(_ addr: Multiaddr, attempt: Int = 0) {
        guard let swarm else { return }
        swarm.dial(addr) { [weak self] r in
            guard let self else { return }
            switch r {
            case .success(let p):
                self.logger.info("connected to bootstrap peer", metadata: ["peer": "\(p)"])
            case .failure(let e):
                let delay = Duration.seconds(min(60, 1 << min(attempt, 6)))
                self.logger.warning("bootstrap peer unreachable, retrying", metadata: ["addr": "\(addr)", "error": "\(e)", "retry_in": "\(delay)"])
                _ = self.loop.scheduleTimer(after: delay) { [weak self] _ in self?.dialBootstrap(addr, attempt: attempt + 1) }
            }
        }
    }
}
