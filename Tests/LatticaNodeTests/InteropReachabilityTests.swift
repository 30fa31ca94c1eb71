import Foundation
import LatticaCore
import LatticaNAT
import Testing
@testable import LatticaNode

/// AutoNAT v2 and the real Lattica (rust-libp2p 0.54; its binary carries
/// `/libp2p/autonat/2/dial-request` and `…/dial-back`). py-libp2p 0.8.1 has AutoNAT v1 only
/// (`/libp2p/autonat/1.0.0`): nothing to test there. Run under Scripts/interop/netns-run.sh.
///
/// Found so far (2026-12-02): Lattica advertises no dial-request server, and in 60 s on loopback
/// its client did not ask us (rust-libp2p's v2 client tests global addresses only, as far as we
/// can tell; loopback is all the namespace has). So there is no wire-level AutoNAT interop
/// evidence yet; this test pins the first fact so that the day Lattica serves, we notice.
@Suite(.serialized) struct InteropReachabilityTests {
    @Test(.enabled(if: InteropPeer.unavailable(.lattica) == nil))
    func lattica_advertisesNoAutoNATServer() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var c = NodeConfig(dataDir: tmp.path + "/swift")
        c.metricsAddr = nil
        let d = try await Daemon.start(config: c)
        let lat = try InteropPeer(.lattica, ["--bootstrap", d.listenAddrs[0].description])
        defer { lat.close() }
        let latId = try PeerId(string: lat.peerId)
        var protocols: [String] = []
        for _ in 0..<100 where protocols.isEmpty {
            protocols = try await d.loop.submit { _ in d.swarm?.peerInfo[latId]?.protocols ?? [] }
            if protocols.isEmpty { _ = try? await d.pingPeer(latId, count: 1) }  // identify precedes ping on the connection
        }
        #expect(!protocols.isEmpty, "Lattica never identified")
        #expect(!protocols.contains(AutoNAT.dialRequestProtocol), "Lattica serves AutoNAT v2 now: test our client against it")
        await d.stop()
    }
}
