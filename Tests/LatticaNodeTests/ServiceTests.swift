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
        #expect(services == ["identify", "ping", "dht", "echo"])
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
        _ = try await a.pingPeer(b.peerId, count: 1)  // identify was opened first: answered by now
        // The DHT (a service like the recorder) put b in its routing table when b identified.
        let inTable = try await a.loop.submit { _ in a.dht!.dht.routingTable.allEntries.first { $0.peer == b.peerId }?.connected }
        #expect(inTable == true)
        await b.stop()
        var heard: [String] = []
        for await (who, e) in Recorder.stream.stream where who == a.peerId.description {
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
