import Foundation
import LatticaAPI
import LatticaCore
import LatticaNAT
import LatticaUV
import Testing
@testable import LatticaNode

/// AutoNAT v2 between daemons on loopback: dial-backs, the reachability they conclude, the DHT
/// mode that follows, and the amplification guard against a requester aiming at a third party.
@Suite struct ReachabilityTests {
    static let loopbackAutoNAT: [String: TOML.Value] = [
        "allow_private_addrs": .bool(true), "min_confirmations": .integer(1),
        "observed_min_peers": .integer(1), "observed_min_networks": .integer(1),
    ]

    func daemon(_ tmp: TempDir, _ name: String, autonat: [String: TOML.Value] = loopbackAutoNAT) async throws -> Daemon {
        var c = NodeConfig(dataDir: tmp.path + "/" + name)
        c.metricsAddr = nil
        c.sections = ["autonat": autonat]
        return try await Daemon.start(config: c)
    }

    /// What the tests watch of a swarm's peer events.
    enum Ev: Sendable {
        case reachabilityChanged(NAT.Reachability)
        case identified(PeerId, [String])
    }

    /// The peer events `d`'s swarm emits from now on.
    func events(_ d: Daemon) async throws -> AsyncStream<Ev> {
        let (stream, cont) = AsyncStream<Ev>.makeStream()
        try await d.loop.submit { _ in
            d.swarm!.observe { e in
                switch e {
                case .reachabilityChanged(let r): cont.yield(.reachabilityChanged(r))
                case .identified(let p, let info): cont.yield(.identified(p, info.protocols))
                default: break
                }
            }
        }
        return stream
    }

    func first(_ s: AsyncStream<Ev>, seconds: Double = 20, where match: @escaping @Sendable (Ev) -> Bool) async -> Ev? {
        await withTaskGroup(of: Ev?.self) { g in
            g.addTask { for await e in s where match(e) { return e }; return nil }
            g.addTask { try? await Task.sleep(for: .seconds(seconds)); return nil }  // a bound, not a synchronisation
            let r = await g.next()!
            g.cancelAll()
            return r
        }
    }

    @Test func aClientDialledBack_concludesPublic_keepsItsConnection_andNatStatusSaysSo() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let server = try await daemon(tmp, "s"), client = try await daemon(tmp, "c")
        let ev = try await events(client)
        let _: PeerId = try await client.onLoop { s, done in s.dial(server.listenAddrs[0]) { done($0) } }
        let connBefore = try await client.loop.submit { _ in client.swarm!.byPeer[server.peerId] }
        let e = await first(ev) { if case .reachabilityChanged = $0 { true } else { false } }
        guard case .reachabilityChanged(let r)? = e else { Issue.record("no reachability conclusion"); return }
        #expect(r == .public)
        // The dial-back came on a one-off connection: the client's connection to the server stays.
        let connAfter = try await client.loop.submit { _ in client.swarm!.byPeer[server.peerId] }
        #expect(connBefore != nil && connAfter == connBefore)
        let status = try await blocking { try ControlClient(socketPath: client.config.controlSocketPath).call(Methods.NATStatus.self, NoParams()) }
        #expect(status.reachability == "public" && status.dhtMode == "server")
        #expect(status.mappedAddrs.contains(client.listenAddrs[0].withoutPeerId.description))
        await client.stop(); await server.stop()
    }

    @Test func aClientThatCannotBeReached_concludesPrivate_andItsDHTBecomesAClient() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let server = try await daemon(tmp, "s"), client = try await daemon(tmp, "c")
        // Nothing listens on port 1: the server's dial-back is refused.
        try await client.loop.submit { _ in client.swarm!.listenAddrs = [try! Multiaddr("/ip4/127.0.0.1/tcp/1")] }
        let ev = try await events(client), serverEv = try await events(server)
        let _: PeerId = try await client.onLoop { s, done in s.dial(server.listenAddrs[0]) { done($0) } }
        let e = await first(ev) { if case .reachabilityChanged = $0 { true } else { false } }
        guard case .reachabilityChanged(let r)? = e else { Issue.record("no reachability conclusion"); return }
        #expect(r == .private)
        let kad = client.config.dhtProtocol
        let handles = try await client.loop.submit { _ in client.swarm!.handles(kad) }
        #expect(!handles)
        // identify push told the server: the client no longer offers the DHT protocol.
        let clientID = client.peerId
        let pushed = await first(serverEv) { e in
            if case .identified(let p, let protocols) = e { return p == clientID && !protocols.contains(kad) }
            return false
        }
        #expect(pushed != nil)
        let status = try await blocking { try ControlClient(socketPath: client.config.controlSocketPath).call(Methods.NATStatus.self, NoParams()) }
        #expect(status.reachability == "private" && status.dhtMode == "client")
        await client.stop(); await server.stop()
    }

    @Test func aDialRequestAimedAtAThirdParty_isNotDialled_unlessPaidFor() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        // The requester does not probe by itself (its own AutoNAT is off).
        let server = try await daemon(tmp, "s"), requester = try await daemon(tmp, "r", autonat: ["enabled": .bool(false)])
        // The "victim": a listener on another loopback IP, counting the connections it gets.
        nonisolated(unsafe) var acceptCount = 0
        nonisolated(unsafe) var victim: TCPListener?
        let victimPort: UInt16 = try await server.loop.submit { loop in
            let l = try TCPListener.listen(on: loop, address: SocketAddress(host: "127.0.0.2", port: 0)) { r in
                if case .success(let s) = r { s.close() }
                acceptCount += 1
            }
            victim = l
            return l.localAddress.port
        }
        let _: PeerId = try await requester.onLoop { s, done in s.dial(server.listenAddrs[0]) { done($0) } }
        let target = try Multiaddr("/ip4/127.0.0.2/tcp/\(victimPort)")

        // Unpaid: the server asks for data; the requester walks away.
        let (replies, replyCont) = AsyncStream<AutoNAT.Message>.makeStream()
        nonisolated(unsafe) let rc = replyCont
        func request(pay: Bool) async throws {
            try await requester.loop.submit { _ in
                guard let raw = requester.swarm!.openRawStream(server.peerId, AutoNAT.dialRequestProtocol) else { return }
                var frames = AutoNAT.FrameReader()
                raw.write(AutoNAT.framed(AutoNAT.encode(.dialRequest(.init(addrs: [target], nonce: 77)))))
                raw.onData = { [raw] bytes in
                    for case .frame(let b) in frames.push(bytes) {
                        guard case .success(let m) = AutoNAT.decode(b[...]) else { continue }
                        rc.yield(m)
                        if case .dialDataRequest(_, let n) = m {
                            if !pay { raw.reset(); return }
                            var left = Int(n)
                            while left > 0 {
                                raw.stream?.send(AutoNAT.framed(AutoNAT.encode(.dialDataResponse(dataLength: min(4096, left)))), close: false)
                                left -= 4096
                            }
                        }
                    }
                }
            }
        }
        var it = replies.makeAsyncIterator()
        try await request(pay: false)
        guard case .dialDataRequest(0, let need)? = await it.next() else { Issue.record("expected a DialDataRequest"); return }
        #expect(need >= 30_000 && need <= 100_000)
        // Paid: now the server dials the third party (and reports the dial-back's failure, since
        // the victim speaks no libp2p).
        try await request(pay: true)
        guard case .dialDataRequest? = await it.next() else { Issue.record("expected a DialDataRequest"); return }
        guard case .dialResponse(let resp)? = await it.next() else { Issue.record("expected a DialResponse"); return }
        #expect(resp.status == .ok && resp.dialStatus != .ok)
        // The response follows the dial's end (the victim closing it, in its accept callback, on
        // the same loop): exactly one connection reached the victim, so the unpaid request never
        // dialled.
        let accepted = try await server.loop.submit { _ in acceptCount }
        #expect(accepted == 1)
        try await server.loop.submit { _ in victim?.close() }
        await requester.stop(); await server.stop()
    }
}

/// The STUN service over real UDP, against an in-process binding server on loopback.
@Suite struct STUNServiceTests {
    @Test func aProbeThroughTheDaemonsUDPSocket_findsItsMappedAddress_andNoNATOnLoopback() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let loop = EventLoop(name: "stun-server")
        // A binding server: XOR-MAPPED-ADDRESS is the sender; garbage first, to be refused.
        let serverPort: UInt16 = try await loop.submit { loop in
            let s = try UDPSocket.bind(on: loop, address: SocketAddress(host: "127.0.0.1", port: 0))
            s.onDatagram = { [s] bytes, from in
                guard case .success(let m) = STUN.decode(Array(bytes)) else { return }
                let mapped = NAT.Endpoint(ip: from.ipBytes, port: from.port)
                s.send([0xFF, 0x00, 0x01], to: from)
                s.send(STUN.bindingSuccess(m.transactionID, mapped: mapped), to: from)
            }
            s.startReceiving()
            return s.localAddress.port
        }
        var c = NodeConfig(dataDir: tmp.path + "/d")
        c.metricsAddr = nil
        c.sections = ["stun": ["servers": .array([.string("127.0.0.1:\(serverPort)")])]]
        let (results, cont) = AsyncStream<STUN.Probe.Result>.makeStream()
        let d = try await Daemon.start(config: c)
        try await d.loop.submit { _ in
            let svc = d.services.compactMap { $0 as? STUNService }.first!
            if let r = svc.last { cont.yield(r) }  // the first probe may be over already
            svc.onFinished = { cont.yield($0) }
        }
        var it = results.makeAsyncIterator()
        guard let r = await it.next() else { Issue.record("no probe result"); return }
        #expect(r.mapped?.ip == [127, 0, 0, 1] && r.mapping == .none)
        let status = try await blocking { try ControlClient(socketPath: d.config.controlSocketPath).call(Methods.NATStatus.self, NoParams()) }
        #expect(status.mapping == "none" && status.mappedAddrs.contains { $0.hasPrefix("/ip4/127.0.0.1/udp/") })
        // The garbage datagram before each answer was refused and counted, not taken.
        let rejected = try await d.loop.submit { _ in d.services.compactMap { $0 as? STUNService }.first!.published.rejected["too_short"] ?? 0 }
        #expect(rejected >= 1)
        await d.stop()
        await loop.shutdownGracefully()
    }
}

/// Garbage on the AutoNAT streams of a live daemon: refused, never a crash, never a dial.
@Suite struct AutoNATBadInputTests {
    @Test func randomFrames_onDialRequestAndDialBack_areReset_andTheDaemonLivesOn() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var cs = NodeConfig(dataDir: tmp.path + "/s"), cr = NodeConfig(dataDir: tmp.path + "/r")
        cs.metricsAddr = nil; cr.metricsAddr = nil
        cr.sections = ["autonat": ["enabled": .bool(false)]]
        let server = try await Daemon.start(config: cs), requester = try await Daemon.start(config: cr)
        let _: PeerId = try await requester.onLoop { s, done in s.dial(server.listenAddrs[0]) { done($0) } }
        let seed: UInt64 = 0xBAD0_A070
        let (ends, cont) = AsyncStream<String?>.makeStream()
        let rounds = 40
        try await requester.loop.submit { _ in
            var rng = SeededRandom(seed: seed)
            for i in 0..<rounds {
                let proto = i % 2 == 0 ? AutoNAT.dialRequestProtocol : AutoNAT.dialBackProtocol
                guard let raw = requester.swarm!.openRawStream(server.peerId, proto) else { cont.yield("not opened"); continue }
                let n = Int(rng.next() % 200) + 1
                var body = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Half are well-framed garbage (past the length prefix), half raw bytes.
                if i % 4 < 2 { body = Varint.encoded(UInt64(body.count)) + body }
                if i % 8 == 1 { body = AutoNAT.framed(AutoNAT.encodeDialBack(nonce: rng.next())) }  // a nonce we never sent
                raw.onEnd = { cont.yield($0) }
                raw.write(body)
                raw.closeWrite()
            }
        }
        var it = ends.makeAsyncIterator()
        var ended = 0
        for _ in 0..<rounds {
            guard await it.next() != nil else { break }
            ended += 1
        }
        #expect(ended == rounds, "seed \(seed)")
        // Still up and still serving: a ping and a proper (refused: loopback) request work.
        let rtts = try await requester.pingPeer(server.peerId, count: 1)
        #expect(rtts.count == 1, "seed \(seed)")
        let accepted = try await server.loop.submit { _ in server.services.compactMap { $0 as? AutoNATService }.first!.limiter.total }
        #expect(accepted == 0, "no dial-back slot is held after garbage")
        await requester.stop(); await server.stop()
    }
}

@Suite struct AutoNATSessionFuzzTests {
    @Test func randomMessageSequences_neverDialUnpaidThirdParties() {
        let seed: UInt64 = 0x5E55_1011
        var rng = SeededRandom(seed: seed)
        let observed = NAT.Endpoint(ip: [8, 8, 8, 8], port: 1000)
        var dials = 0
        for _ in 0..<5000 {
            var s = AutoNAT.ServerSession(settings: .init(), observed: observed)
            var paid: UInt64 = 0, asked: UInt64 = 0
            for _ in 0..<Int(rng.next() % 12) {
                let m: AutoNAT.Message = switch rng.next() % 4 {
                case 0: .dialRequest(.init(addrs: [rng.next() % 2 == 0 ? try! Multiaddr("/ip4/8.8.8.8/tcp/1") : try! Multiaddr("/ip4/1.1.1.1/tcp/1")], nonce: rng.next()))
                case 1: .dialDataResponse(dataLength: Int(rng.next() % 5000))
                case 2: .dialResponse(.init(status: .ok))
                default: .dialDataRequest(addrIdx: 0, numBytes: rng.next())
                }
                if case .dialDataResponse(let n) = m { paid += UInt64(n) }
                switch s.onMessage(m, rng: &rng) {
                case .requestData(.dialDataRequest(_, let need)): asked = need; paid = 0
                case .dial(let e, _, _):
                    dials += 1
                    #expect(e.ip == observed.ip || (asked > 0 && paid >= asked), "seed \(seed): dialled \(e) unpaid")
                default: break
                }
            }
        }
        #expect(dials > 0, "seed \(seed): the fuzz never reached a dial")
    }
}
