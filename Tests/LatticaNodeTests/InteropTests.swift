import Foundation
import LatticaAPI
import LatticaCore
import Testing
@testable import LatticaNode

/// Interoperability with libp2p implementations nobody here wrote: py-libp2p and the real Lattica
/// (rust-libp2p inside). Scripts/test.sh runs the suite inside Scripts/interop/netns-run.sh, so the
/// Lattica peer (which sends STUN at start) only ever sees loopback.
@Suite(.serialized) struct InteropTests {
    func daemon(_ tmp: TempDir) async throws -> Daemon {
        var c = NodeConfig(dataDir: tmp.path + "/swift")
        c.metricsAddr = nil
        return try await Daemon.start(config: c)
    }

    func dial(_ d: Daemon, _ addr: String) async throws -> PeerId {
        let ma = try Multiaddr(addr)
        return try await d.onLoop { s, done in s.dial(ma) { done($0) } }
    }

    func ping(_ d: Daemon, _ p: PeerId, _ n: Int) async throws -> [Duration] {
        try await d.pingPeer(p, count: n)
    }

    /// Waits (bounded) until identify from `p` has arrived: identify is the first stream of a
    /// connection, so a completed ping after it implies the answer came in; poll the snapshot.
    func identified(_ d: Daemon, _ p: PeerId) async throws -> PeerInfo? {
        for _ in 0..<100 {
            if let i = try await d.loop.submit({ _ in d.swarm?.peerInfo[p] }), !i.agentVersion.isEmpty { return i }
            _ = try? await ping(d, p, 1)
        }
        return nil
    }

    @Test(.enabled(if: InteropPeer.unavailable(.pylibp2p) == nil))
    func pylibp2p_dialsUs_identifiesAndPings() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = try await daemon(tmp)
        let py = try InteropPeer(.pylibp2p, ["--protocol-version", "/lattica/1.0.0"])
        defer { py.close() }
        let r = try py.call(["cmd": "dial", "addr": d.listenAddrs[0].description])
        #expect(r["ok"] as? Bool == true, "\(r)")
        let ident = r["identify"] as? [String: Any] ?? [:]
        #expect((ident["agent_version"] as? String)?.hasPrefix("lattica-swift/") == true, "\(ident)")
        #expect(ident["protocol_version"] as? String == "/lattica/1.0.0")
        #expect((ident["protocols"] as? [String])?.contains("/ipfs/ping/1.0.0") == true)
        let p = try py.call(["cmd": "ping", "peer": d.peerId.description, "count": 3])
        #expect(p["ok"] as? Bool == true, "\(p)")
        #expect((p["rtts_ms"] as? [Double])?.count == 3)
        let pyId = try PeerId(string: py.peerId)
        let info = try await identified(d, pyId)
        #expect(info?.agentVersion.hasPrefix("py-libp2p") == true, "\(String(describing: info))")
        await d.stop()
    }

    @Test(.enabled(if: InteropPeer.unavailable(.pylibp2p) == nil))
    func weDialPylibp2p_identifyAndPing() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = try await daemon(tmp)
        let py = try InteropPeer(.pylibp2p)
        defer { py.close() }
        let p = try await dial(d, py.addr)
        #expect(p.description == py.peerId)
        let rtts = try await ping(d, p, 5)
        #expect(rtts.count == 5 && rtts.allSatisfy { $0 < .seconds(1) })
        let info = try await identified(d, p)
        #expect(info?.agentVersion.hasPrefix("py-libp2p") == true)
        #expect(info?.protocols.contains("/ipfs/ping/1.0.0") == true)
        // py-libp2p sees us as connected.
        let peers = try py.call(["cmd": "peers"])
        #expect((peers["peers"] as? [[String: Any]])?.contains { $0["peer"] as? String == d.peerId.description } == true, "\(peers)")
        await d.stop()
    }

    @Test(.enabled(if: InteropPeer.unavailable(.lattica) == nil))
    func lattica_andLatticad_connectBothWays_stayConnected_andPing() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = try await daemon(tmp)
        // Lattica dials us (through its bootstrap list).
        let lat = try InteropPeer(.lattica, ["--bootstrap", d.listenAddrs[0].description])
        defer { lat.close() }
        let latId = try PeerId(string: lat.peerId)
        let info = try await identified(d, latId)
        #expect(info?.agentVersion.hasPrefix("rust-libp2p") == true, "\(String(describing: info))")
        #expect(info?.protocolVersion == "/lattica/1.0.0")
        #expect(info?.protocols.contains("/lattica/1.0.0") == true)
        // It keeps the connection after identify (it drops peers with another protocol version).
        let rtts = try await ping(d, latId, 3)
        #expect(rtts.count == 3)
        let peers = try lat.call(["cmd": "peers"])
        let seen = (peers["peers"] as? [[String: Any]])?.first { $0["peer"] as? String == d.peerId.description }
        #expect(seen != nil, "\(peers)")
        #expect((seen?["agent_version"] as? String)?.hasPrefix("lattica-swift/") == true)
        let snapshot = try await d.loop.submit { _ in d.peersSnapshot() }
        #expect(snapshot.peers.contains { $0.peerId == lat.peerId && $0.agent.hasPrefix("rust-libp2p") })

        // We dial a second Lattica node.
        let lat2 = try InteropPeer(.lattica)
        defer { lat2.close() }
        let p2 = try await dial(d, lat2.addr)
        #expect(p2.description == lat2.peerId)
        #expect(try await ping(d, p2, 3).count == 3)
        let info2 = try await identified(d, p2)
        #expect(info2?.agentVersion.hasPrefix("rust-libp2p") == true)
        await d.stop()
    }

    /// A latticad in Lattica mode (Kademlia on /lattica/1.0.0) in a network of three real Lattica
    /// nodes: it enters their DHT, answers FIND_NODE, reads what Lattica stored and Lattica reads
    /// what it stored.
    @Test(.enabled(if: InteropPeer.unavailable(.lattica) == nil))
    func latticad_joinsALatticaDHT_andRecordsCrossBothWays() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var c = NodeConfig(dataDir: tmp.path + "/swift")
        c.metricsAddr = nil
        c.dhtProtocol = "/lattica/1.0.0"
        let d = try await Daemon.start(config: c)
        let ours = d.listenAddrs[0].description
        let lats = try (0..<3).map { _ in try InteropPeer(.lattica, ["--bootstrap", ours]) }
        defer { for l in lats { l.close() } }
        let latIds = Set(try lats.map { try PeerId(string: $0.peerId) })
        // They dial us and identify; we put them in our routing table (they are /lattica/1.0.0 servers).
        var table = Set<PeerId>()
        for _ in 0..<100 where table != latIds {
            for l in latIds { _ = try? await identified(d, l) }
            table = Set(try await d.loop.submit { _ in d.dht!.dht.routingTable.allEntries.map(\.peer) })
        }
        #expect(table == latIds)

        // Lattica stores, we read (a pickled str, unwrapped without unpickling).
        let put = try lats[0].call(["cmd": "put", "key": "from-lattica", "value": "hello"])
        #expect(put["ok"] as? Bool == true, "\(put)")
        let got: (value: [UInt8], encoding: String) = try await d.onDHT { dht, done in
            dht.query({ $0.getValue(Array("from-lattica".utf8), now: $1) }) { r, _ in
                if case .getValue(.success(let f)) = r { done(.success(dht.decodeValue(key: Array("from-lattica".utf8), f.record.value))) }
                else { done(.failure(SwarmError("\(r)"))) }
            }
        }
        #expect(got.value == Array("hello".utf8) && got.encoding == "lattica-str")

        // We store, Lattica reads (our value: bincode ValueWithTime around a pickle of the bytes).
        let key = Array("from-swift".utf8)
        let stored: Int = try await d.onDHT { dht, done in
            let v = d.encodeValue(key: key, value: Array("world".utf8), dht: dht)
            dht.query({ $0.putValue(key, value: v, quorum: 1, now: $1) }) { r, _ in
                if case .putValue(.success(let n)) = r { done(.success(n)) } else { done(.failure(SwarmError("\(r)"))) }
            }
        }
        #expect(stored >= 1)
        for l in lats {
            let g = try l.call(["cmd": "get", "key": "from-swift"])
            #expect(g["found"] as? Bool == true && g["value"] as? String == "776f726c64", "\(g)")
        }

        // We answer FIND_NODE on /lattica/1.0.0 with the Lattica nodes we know.
        let py = try InteropPeer(.pylibp2p, ["--protocol-version", "/lattica/1.0.0"])
        defer { py.close() }
        #expect(try py.call(["cmd": "dial", "addr": ours])["ok"] as? Bool == true)
        let f = try py.call(["cmd": "kad_find_node", "peer": d.peerId.description, "key": "anything", "protocol": "/lattica/1.0.0"])
        #expect(f["ok"] as? Bool == true, "\(f)")
        let closer = Set((f["closer_peers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(closer.isSuperset(of: lats.map(\.peerId)), "\(closer)")
        await d.stop()
    }

    // MARK: Circuit Relay v2 (Docs/INTEROP.md "Circuit Relay v2 and DCUtR"; the whole matrix, with
    // DCUtR, is Scripts/interop/relay_interop.py)

    /// A daemon that reserves on relays (and serves none), DHT client, DCUtR off.
    func relayClient(_ tmp: TempDir, _ name: String, bootstrap: [String]) async throws -> Daemon {
        var c = NodeConfig(dataDir: tmp.path + "/" + name)
        c.metricsAddr = nil
        c.bootstrap = bootstrap
        c.dhtMode = "client"
        c.sections["relay"] = ["reserve": .string("on"), "hop": .string("off")]
        c.sections["dcutr"] = ["enabled": .bool(false)]
        return try await Daemon.start(config: c)
    }

    /// Polls `cond` on the loop thread for up to `seconds`.
    func eventually(_ d: Daemon, seconds: Double = 20, _ cond: @escaping @Sendable (Daemon) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await d.loop.submit({ _ in cond(d) }) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    func entry(_ d: Daemon, _ p: String) async throws -> PeerEntry? {
        try await d.loop.submit { _ in d.swarm!.peerEntries().peers.first { $0.peerId == p } }
    }

    /// py-libp2p's CircuitV2Protocol as the hop: A reserves on it, B reaches A through it.
    @Test(.enabled(if: InteropPeer.unavailable(.pylibp2p) == nil))
    func pylibp2pRelay_carriesACircuitBetweenTwoDaemons() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let relay = try InteropPeer(.pylibp2p, ["--relay", "hop", "--protocol-version", "/lattica/1.0.0"])
        defer { relay.close() }
        let relayId = try PeerId(string: relay.peerId)
        let a = try await relayClient(tmp, "a", bootstrap: [relay.addr])
        let b = try await relayClient(tmp, "b", bootstrap: [])
        defer { Task { await b.stop(); await a.stop() } }
        #expect(try await eventually(a) { $0.service(RelayService.self)!.held[relayId] != nil }, "A holds no reservation on the py-libp2p relay")
        let circuit = try Multiaddr(relay.addr + "/p2p-circuit/p2p/\(a.peerId)")
        let who: PeerId = try await b.onLoop { swarm, done in swarm.dial(circuit) { done($0) } }
        #expect(who == a.peerId)
        #expect(try await ping(b, a.peerId, 3).count == 3)
        let e = try await entry(b, a.peerId.description)
        #expect(e?.transport == "relayed" && e?.via == relay.peerId && e?.establishedBy == "relay", "\(String(describing: e))")
        await b.stop()
        await a.stop()
    }

    /// The real Lattica (a relay client only) reserves on our relay and is reached through it.
    @Test(.enabled(if: InteropPeer.unavailable(.lattica) == nil))
    func lattica_reservesOnOurRelay_andIsReachedThroughIt() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var rc = NodeConfig(dataDir: tmp.path + "/relay")
        rc.metricsAddr = nil
        rc.sections["relay"] = ["hop": .string("on"), "reserve": .string("off")]
        let r = try await Daemon.start(config: rc)
        defer { Task { await r.stop() } }
        let lat = try InteropPeer(.lattica, ["--relay-server", r.listenAddrs[0].description])
        defer { lat.close() }
        let latId = try PeerId(string: lat.peerId)
        #expect(try await eventually(r) { $0.service(RelayService.self)!.hopState.reservations[latId] != nil }, "Lattica did not reserve on our relay")
        let b = try await relayClient(tmp, "b", bootstrap: [])
        defer { Task { await b.stop() } }
        let circuit = r.listenAddrs[0].appending(.p2pCircuit).appending(.p2p(latId))
        let who: PeerId = try await b.onLoop { swarm, done in swarm.dial(circuit) { done($0) } }
        #expect(who == latId)
        #expect(try await ping(b, latId, 3).count == 3)
        let info = try await identified(b, latId)
        #expect(info?.agentVersion.hasPrefix("rust-libp2p") == true)
        let e = try await entry(b, lat.peerId)
        #expect(e?.transport == "relayed" && e?.via == r.peerId.description, "\(String(describing: e))")
        await b.stop()
        await r.stop()
    }
}
