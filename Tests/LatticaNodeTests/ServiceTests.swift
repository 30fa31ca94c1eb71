import Foundation
import LatticaAPI
import LatticaCore
import Testing
@testable import LatticaNode

/// The node platform: services register protocols and control methods, and every service hears
/// every peer event.
@Suite struct ServiceTests {
    func daemon(_ tmp: TempDir, _ name: String, services: [any NodeService.Type] = NodeServices.all) async throws -> Daemon {
        var c = NodeConfig(dataDir: tmp.path + "/" + name)
        c.metricsAddr = nil
        return try await Daemon.start(config: c, services: services)
    }

    @Test func echoService_answersBetweenTwoDaemons_throughItsControlMethod() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a"), b = try await daemon(tmp, "b")
        let _: PeerId = try await b.onLoop { s, done in s.dial(a.listenAddrs[0]) { done($0) } }
        let client = try ControlClient(socketPath: b.config.controlSocketPath)
        let peerA = a.peerId.description
        let r = try await blocking { try client.call(EchoService.Echo.self, .init(peer: peerA, payload: "héllo", count: 3)) }
        #expect(r.peerId == a.peerId.description && r.rttsMs.count == 3 && r.rttsMs.allSatisfy { $0 > 0 })
        // Registered by the service itself: advertised in identify and listed in status.
        let protocols = try await b.loop.submit { _ in b.swarm!.peerInfo[a.peerId]?.protocols ?? [] }
        #expect(protocols.contains(EchoService.protocolID))
        let services = try await blocking { try client.call(Methods.Status.self, NoParams()).services }
        #expect(services == NodeServices.all.map { $0.name } && services.contains("echo"))
        await a.stop(); await b.stop()
    }

    @Test func echoService_isAbsent_whenNotRegistered_andItsMethodIsUnknown() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a", services: NodeServices.all.filter { $0 != EchoService.self })
        let b = try await daemon(tmp, "b")
        let _: PeerId = try await b.onLoop { s, done in s.dial(a.listenAddrs[0]) { done($0) } }
        let client = try ControlClient(socketPath: b.config.controlSocketPath)
        let peerA = a.peerId.description, peerB = b.peerId.description
        let failed = try await blocking { (try? client.call(EchoService.Echo.self, .init(peer: peerA, payload: "x", count: 1))) == nil }
        #expect(failed)  // a does not answer the protocol
        let onA = try ControlClient(socketPath: a.config.controlSocketPath)
        let line = try await blocking { try onA.roundTrip("echo", params: .object(["peer": .string(peerB), "payload": .string("x")])) }
        #expect(String(decoding: line, as: UTF8.self).contains("unknown_method"))
        await a.stop(); await b.stop()
    }

    /// A service that records every peer event it hears.
    final class Recorder: NodeService, @unchecked Sendable {
        static let name = "recorder"
        /// (peer id of the recording daemon, event) in the order heard.
        static let stream = AsyncStream<(String, String)>.makeStream()
        let me: String
        init(context: ServiceContext) { me = context.localPeer.description }
        func onPeerEvent(_ event: PeerEvent) {
            let e = switch event {
            case .connected: "connected"
            case .identified: "identified"
            case .addressesChanged: "addresses"
            case .disconnected: "disconnected"
            case .reachabilityChanged: "reachability"
            case .localAddressesChanged: "local_addresses"
            case .upgraded: "upgraded"
            case .natBehaviourChanged: "nat_behaviour"
            }
            Self.stream.continuation.yield((me, e))
        }
    }

    @Test func everyService_hearsConnectIdentifyAndDisconnect_andTheDHTMarksTheLeaver() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a", services: NodeServices.all + [Recorder.self])
        let b = try await daemon(tmp, "b")
        let _: PeerId = try await a.onLoop { s, done in s.dial(b.listenAddrs[0]) { done($0) } }
        var heard: [String] = []
        var events = Recorder.stream.stream.makeAsyncIterator()
        while let (who, e) = await events.next() {
            guard who == a.peerId.description else { continue }
            heard.append(e)
            if e == "identified" { break }
        }
        // The DHT (a service like the recorder, told before it) put b in its routing table.
        let inTable = try await a.loop.submit { _ in a.dht!.dht.routingTable.allEntries.first { $0.peer == b.peerId }?.connected }
        #expect(inTable == true)
        await b.stop()
        while let (who, e) = await events.next() {
            guard who == a.peerId.description else { continue }
            heard.append(e)
            if e == "disconnected" { break }
        }
        #expect(heard.prefix(2) == ["connected", "identified"], "\(heard)")
        #expect(heard.last == "disconnected", "\(heard)")
        let after = try await a.loop.submit { _ in a.dht!.dht.routingTable.allEntries.first { $0.peer == b.peerId }?.connected }
        #expect(after != true)  // marked disconnected (or already evicted by a failed request to it)
        await a.stop()
    }
}

@Suite struct RequestFramingTests {
    /// The swarm's request framing decoder on random and mutated bytes: it returns a message,
    /// waits, or throws; it never traps, and never returns more than the limit.
    @Test func lengthPrefixedDecoder_neverTraps_onHostileBytes() {
        let seed = testSeed(0x1E_F1)
        var rng = SeededRandom(seed: seed)
        var outcomes = [0, 0, 0]
        for i in 0..<20_000 {
            var b = LengthPrefixed.encode((0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            switch i % 4 {
            case 0: b = (0..<Int(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: if !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            default: b += [UInt8(truncatingIfNeeded: rng.next())]
            }
            let whole: Result<[UInt8]?, SwarmError>
            do {
                let m = try LengthPrefixed.decode(b, limit: 200)
                if let m { #expect(m.count <= 200, "seed \(seed)"); outcomes[0] += 1 } else { outcomes[1] += 1 }
                whole = .success(m)
            } catch { outcomes[2] += 1; whole = .failure(error) }
            // The streaming reader agrees with the whole-buffer decoder, however the bytes are split.
            var reader = MessageReader(limit: 200)
            var got: MessageReader.Outcome = .waiting
            var rest = b[...]
            while !rest.isEmpty {
                let cut = Int(rng.next() % UInt64(rest.count)) + 1
                if case .waiting = got { got = reader.onData(rest.prefix(cut)) }
                rest = rest.dropFirst(cut)
            }
            if case .waiting = got { got = reader.take(finished: true) }
            switch (whole, got) {
            case (.success(let m?), .message(let r)): #expect(m == r, "seed \(seed), case \(i)")
            case (.success(nil), .failed), (.failure, .failed): break
            case (.failure, .message(let r)):
                // Trailing bytes after a whole message, in a later piece: the reader answered first.
                let head = Varint.encoded(UInt64(r.count))
                #expect(Array(b.prefix(head.count + r.count)) == head + r, "seed \(seed), case \(i)")
            default: Issue.record("seed \(seed), case \(i): decoder \(whole), reader \(got)")
            }
        }
        #expect(outcomes.allSatisfy { $0 > 0 }, "seed \(seed): \(outcomes)")
    }

    /// A 3 MiB request and response: more than the peer's window plus the send bound, so the
    /// message goes out as the window opens (it used to be cut off).
    @Test func aMessageLargerThanTheWindow_arrivesWhole_bothWays() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var ca = NodeConfig(dataDir: tmp.path + "/a"), cb = NodeConfig(dataDir: tmp.path + "/b")
        ca.metricsAddr = nil; cb.metricsAddr = nil
        let a = try await Daemon.start(config: ca), b = try await Daemon.start(config: cb)
        try await a.loop.submit { _ in a.swarm!.handleRequests("/test/big/1.0.0") { _, req, respond in respond(Array(req.reversed())) } }
        let _: PeerId = try await b.onLoop { s, done in s.dial(a.listenAddrs[0]) { done($0) } }
        var rng = SeededRandom(seed: 3)
        let big = (0..<(3 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let back: [UInt8] = try await b.onLoop { s, done in s.request(a.peerId, "/test/big/1.0.0", big) { done($0) } }
        #expect(back.count == big.count && back == Array(big.reversed()))
        await a.stop(); await b.stop()
    }
}
