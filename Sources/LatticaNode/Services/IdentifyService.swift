import LatticaCore
import LatticaStore
import LatticaWire
import Logging
import Metrics

/// identify (`/ipfs/id/1.0.0`) and identify push (`/ipfs/id/push/1.0.0`): asks every new peer who
/// it is, answers who we are, and hands what it learns to the swarm's peer table (which tells every
/// service through `.identified`). Config: `[identify] agent_version, protocol_version` (read by
/// `NodeConfig`, since `status` reports them too). Loop thread only.
final class IdentifyService: NodeService, @unchecked Sendable {
    static let name = "identify"
    let swarm: Swarm
    let logger: Logger

    convenience init(context: ServiceContext) { self.init(swarm: context.swarm, logger: context.logger) }

    /// On a bare swarm (benchmarks): identify is all a swarm needs to know its peers.
    init(swarm: Swarm, logger: Logger) {
        self.swarm = swarm
        self.logger = logger
        swarm.handle(Identify.protocolID) { [weak self] s in
            guard let self else { return nil }
            // A relayed connection's remote address is the circuit, not where the peer is seen.
            s.send(self.ourIdentify(observed: s.conn.isRelayed ? nil : s.remoteAddr).framed(), close: true)
            return Answered()
        }
        swarm.handle(Identify.pushProtocolID) { [weak self] _ in
            guard let self else { return nil }
            return Reader(service: self)
        }
    }

    func onPeerEvent(_ event: PeerEvent) {
        switch event {
        case .connected(let peer, _):
            _ = swarm.openStream(peer, Identify.protocolID, handler: Reader(service: self))
        case .localAddressesChanged:
            // identify push: every connected peer learns our new addresses and protocols (and so
            // the DHT: a circuit address through a relay reaches the peers that look us up).
            let push = ourIdentify(observed: nil).framed()
            for peer in Array(swarm.byPeer.keys) {
                swarm.openStream(peer, Identify.pushProtocolID, handler: Answered())?.send(push, close: true)
            }
            Counter(label: "lattica_identify_pushes_total").increment()
        default:
            break
        }
    }

    func ourIdentify(observed: Multiaddr?) -> Identify.Message {
        Identify.Message(protocolVersion: swarm.settings.protocolVersion, agentVersion: swarm.settings.agentVersion,
                         publicKey: swarm.identity.publicKey.protobuf.encoded(), listenAddrs: swarm.advertisedAddrs,
                         observedAddr: observed, protocols: swarm.advertisedProtocols)
    }

    func received(_ s: SwarmStream, _ r: Result<Identify.Message, Identify.DecodeError>) {
        switch r {
        case .failure(let e):
            Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "identify"), ("reason", "decode")]).increment()
            logger.debug("bad identify", metadata: ["peer": "\(s.peer)", "error": "\(e)"])
            s.reset()
        case .success(let m):
            if let claimed = m.peerId, claimed != s.peer {
                Counter(label: "lattica_protocol_errors_total", dimensions: [("protocol", "identify"), ("reason", "wrong_key")]).increment()
                swarm.close(s.conn)
                return
            }
            swarm.recordIdentify(s.peer, m)
        }
    }

    /// Reads one identify message (our request's answer, or a push).
    final class Reader: StreamHandler {
        weak var service: IdentifyService?
        var reader = Identify.Reader()
        init(service: IdentifyService) { self.service = service }

        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {
            if let r = reader.onBytes(bytes) { service?.received(s, r) }
        }
        func onFinished(_ s: SwarmStream) {
            if let r = reader.onFinished() { service?.received(s, r) }
            // Our side closes too, or the stream stays half open for the connection's life.
            s.closeWrite()
        }
        func onClosed(_ s: SwarmStream, error: String?) {}
    }

    /// Our answer is written and closed; whatever the peer sends is ignored.
    final class Answered: StreamHandler {
        func onData(_ s: SwarmStream, _ bytes: ArraySlice<UInt8>) {}
        func onClosed(_ s: SwarmStream, error: String?) {}
    }
}

extension Swarm {
    /// identify (or a push) told us what `peer` runs: updates what we know, persists it, and
    /// tells every service.
    func recordIdentify(_ peer: PeerId, _ m: Identify.Message) {
        let oldAddrs = peerInfo[peer]?.addrs ?? []
        updateInfo(peer) { info in
            info.protocols = Array(m.protocols.prefix(256))
            info.agentVersion = m.agentVersion ?? ""
            info.protocolVersion = m.protocolVersion ?? ""
            info.observedAddr = m.observedAddr
            var addrs = m.listenAddrs
            for a in info.addrs where !addrs.contains(a) { addrs.append(a) }
            info.addrs = Array(addrs.prefix(32))
            info.lastSeen = loop.now
        }
        guard let info = peerInfo[peer] else { return }
        do {
            try peerStore?.upsert(PeerRecord(
                peerId: peer.description, addrs: info.addrs.map(\.bytes), protocols: info.protocols, agent: info.agentVersion,
                rttMicros: info.rtt.map { $0.nanosecondsClamped / 1000 }, lastSeen: Int64(wallClockSeconds()), failures: 0))
        } catch { persistFailed("upsert", error) }
        emit(.identified(peer, info))
        if info.addrs != oldAddrs { emit(.addressesChanged(peer, info.addrs)) }
    }

    /// Closes one connection (a peer that lied about its key on it).
    func close(_ c: Conn) {
        guard conns[c.id] != nil else { return }
        apply(c, c.instance.close(now: loop.now))
    }
}
