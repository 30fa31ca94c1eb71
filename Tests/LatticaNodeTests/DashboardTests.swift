import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCRDT
import Testing
@testable import LatticaNode

/// The dashboard's history and JSON, without a daemon.
@Suite struct DashboardModelTests {
    @Test func history_isBounded_inRunsNodesAndPoints_andKeepsThePinnedRun() {
        var limits = Dashboard.Limits()
        limits.maxRuns = 3; limits.maxSeriesPerRun = 4; limits.maxPoints = 16
        var h = Dashboard.History(limits: limits)
        for step in 1...1000 { h.record(run: "r0", peer: "p0", step: UInt64(step), loss: 1 / Double(step), accuracy: 0.5, pinned: "r0") }
        let points = h.series(of: "r0")[0].points
        #expect(points.count <= 16 && points.first?.step == 1 && points.last?.step == 1000)
        #expect(zip(points, points.dropFirst()).allSatisfy { $0.step < $1.step })
        for p in 1...10 { h.record(run: "r0", peer: "p\(p)", step: 1, loss: 1, accuracy: nil, pinned: "r0") }
        #expect(h.series(of: "r0").map(\.peer) == ["p0", "p1", "p2", "p3"])
        for r in 1...10 { h.record(run: "r\(r)", peer: "p", step: 1, loss: .nan, accuracy: .infinity, pinned: "r0") }
        #expect(h.runs.count == 3 && h.runs["r0"] != nil && h.runIDs.first == "r10")
        #expect(h.series(of: "r10")[0].points == [Dashboard.Point(step: 1, loss: nil, accuracy: nil)])
        // A node that restarts from an older checkpoint goes back: its later points go.
        h.record(run: "r0", peer: "p1", step: 2, loss: 1, accuracy: nil, pinned: "r0")
        h.record(run: "r0", peer: "p1", step: 3, loss: 1, accuracy: nil, pinned: "r0")
        h.record(run: "r0", peer: "p1", step: 2, loss: 0.5, accuracy: nil, pinned: "r0")
        #expect(h.series(of: "r0")[1].points.map(\.step) == [1, 2] && h.series(of: "r0")[1].points.last?.loss == 0.5)
    }

    @Test func historyPoints_canOnlyShrink_soThatTheBoundsHold() throws {
        func settings(_ t: [String: TOML.Value]) throws(ConfigError) -> DashboardService.Settings {
            try DashboardService.settings(TableReader(table: t, prefix: "dashboard.", source: "test"))
        }
        #expect(try settings(["history_points": .integer(32), "enabled": .bool(false)]).limits.maxPoints == 32)
        #expect(try settings([:]) == DashboardService.Settings())
        #expect(throws: ConfigError.self) { try settings(["history_points": .integer(129)]) }
        #expect(throws: ConfigError.self) { try settings(["nope": .bool(true)]) }
    }

    static let hostile = "<script>alert(\"x\")</script>'\"&amp;</td><img src=x onerror=alert(1)>\u{0}\n\u{2028}é😀"

    @Test func peerText_comesBackAsJSONEscapedData_neverAsMarkup() throws {
        let peer = Dashboard.Peer(peerId: "12D3KooW", addr: "/ip4/1.2.3.4/tcp/1/p2p-circuit", connection: DashboardService.connectionKind("/ip4/1.2.3.4/tcp/1/p2p-circuit"),
                                  direction: "inbound", rttMs: nil, agent: Self.hostile, protocolVersion: Self.hostile,
                                  connectedS: 1, crdt: nil, reputation: nil, rejected: nil)
        guard case .success(let body) = Dashboard.encode(Dashboard.Peers(total: 1, peers: [peer]), limit: 1 << 20) else { Issue.record("not encoded"); return }
        #expect(!body.contains(UInt8(ascii: "<")) && !body.contains(UInt8(ascii: ">")) && !body.contains(UInt8(ascii: "&")))
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains(#"\u003cscript\u003ealert(\"x\")\u003c\/script\u003e"#) || text.contains(#"\u003cscript\u003ealert(\"x\")\u003c/script\u003e"#))
        let back = try JSONDecoder().decode(Dashboard.Peers.self, from: Data(body))
        #expect(back.peers[0].agent == Self.hostile && back.peers[0].connection == "relayed")
        #expect(try JSONSerialization.jsonObject(with: Data(body)) is [String: Any])
        #expect(DashboardService.connectionKind("/ip4/1.2.3.4/tcp/1") == "direct")
    }

    @Test func clip_cutsAtAScalarBoundary_withinTheByteBound() {
        let s = String(repeating: "é😀a", count: 200)
        for n in [4, 5, 6, 7, 100, 256] {
            let c = Dashboard.clip(s, bytes: n)
            #expect(c.utf8.count <= n && c.hasSuffix("…") && s.hasPrefix(c.dropLast()), "\(n)")
        }
        #expect(Dashboard.clip("short", bytes: 256) == "short")
    }

    /// Everything at its bound, every peer-chosen string at its longest: the answer still fits
    /// `maxResponseBytes` with room to spare.
    @Test func stateAtEveryBound_fitsTheResponseLimit() throws {
        let l = Dashboard.Limits()
        let long = String(repeating: "\"<", count: l.maxStringBytes / 2)  // worst case for escaping: 8 bytes per 2
        let id = "12D3KooW" + String(repeating: "x", count: 44)
        let hash = String(repeating: "ab", count: 32)
        let crdtPeer = SyncResult.Peer(peerId: id, lag: .max, theyLack: .max, weLack: .max, lastSyncSeconds: 1e9)
        let peer = Dashboard.Peer(peerId: id, addr: long, connection: "relayed", direction: "outbound", rttMs: 123.456789, agent: long,
                                  protocolVersion: long, connectedS: 1e9,
                                  crdt: crdtPeer, reputation: 0.123456789, rejected: .max)
        let points = (0..<l.maxPoints).map { Dashboard.Point(step: UInt64.max - UInt64($0), loss: 0.1234567890123, accuracy: 0.1234567890123) }
        let run = Dashboard.Run(
            run: id + ".name", creator: id, joined: true, step: .max, rounds: .max, rejected: .max,
            config: Dictionary(uniqueKeysWithValues: (0..<l.maxConfigKeys).map { ("\($0)" + long, long) }), membersTotal: .max,
            members: Array(repeating: id, count: l.maxSeriesPerRun),
            series: Array(repeating: Dashboard.Series(peer: id, points: points), count: l.maxSeriesPerRun),
            checkpoints: Array(repeating: Dashboard.Checkpoint(version: .max, step: .max, accuracy: 0.1234567890123, author: id, contentHash: hash),
                               count: l.maxCheckpointsPerRun),
            reportsTotal: .max,
            reports: Array(repeating: Dashboard.Report(reporter: id, accused: id, reason: long, step: .max,
                                                       evidence: Array(repeating: hash, count: l.maxEvidencePerReport)), count: l.maxReportsPerRun),
            reputation: Array(repeating: Dashboard.Reputation(peer: id, reputation: 0.123456789, rejected: .max), count: l.maxSeriesPerRun))
        let node = Dashboard.Node(peerId: id, agent: long, version: "0.1.0", uptimeS: 1e9, listenAddrs: Array(repeating: long, count: 8),
                                  connectedPeers: .max, reachability: "unknown", natType: "unknown", natNote: long,
                                  dht: Dashboard.DHTState(protocolId: long, mode: "server", size: .max, records: .max), services: ["dashboard"])
        let state = Dashboard.State(generatedMs: .max, node: node, peers: Dashboard.Peers(total: .max, peers: Array(repeating: peer, count: l.maxPeers)),
                                    crdt: Dashboard.CRDTState(stateHash: hash, deltas: .max, authors: .max, paths: .max, total: .max,
                                                              peers: Array(repeating: crdtPeer, count: l.maxPeers)),
                                    runs: Dashboard.Runs(runs: Array(repeating: run, count: l.maxRuns)), limits: l)
        let t0 = ContinuousClock.now
        guard case .success(let body) = Dashboard.encode(state, limit: l.maxResponseBytes) else { Issue.record("over the limit"); return }
        // Encoding runs on the loop thread: this is how long the worst answer holds it.
        print("dashboard: the state at every bound is \(body.count) bytes, encoded in \(ContinuousClock.now - t0)")
        #expect(body.count < l.maxResponseBytes * 3 / 4, "\(body.count) bytes")
        #expect(try JSONDecoder().decode(Dashboard.State.self, from: Data(body)) == state)
    }
}

/// The dashboard of real daemons: the API over the HTTP port, as the page and scripts read it.
@Suite struct DashboardDaemonTests {
    /// GET over a blocking TCP socket; returns (status line + headers, body).
    static func get(_ addr: String, _ path: String, host: String = "127.0.0.1") throws -> (head: String, body: [UInt8]) {
        let hp = HostPort(addr)!
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = hp.port.bigEndian
        inet_pton(AF_INET, hp.host, &sa.sin_addr)
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw SwarmError("connect failed") }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let sep = Array("\r\n\r\n".utf8)
        guard let i = (0...(out.count - 4)).first(where: { Array(out[$0..<$0 + 4]) == sep }) else { throw SwarmError("no header end") }
        return (String(decoding: out[..<i], as: UTF8.self), Array(out[(i + 4)...]))
    }

    @Test func api_showsPeersWithTheirAgentAsData_andEveryNodesProgressAsCurves() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        var ca = NodeConfig(dataDir: tmp.path + "/a"), cb = NodeConfig(dataDir: tmp.path + "/b")
        cb.agentVersion = DashboardModelTests.hostile
        ca.metricsAddr = "127.0.0.1:0"; cb.metricsAddr = "127.0.0.1:0"
        let a = try await Daemon.start(config: ca), b = try await Daemon.start(config: cb)
        let _: PeerId = try await a.onLoop { s, done in s.dial(b.listenAddrs[0]) { done($0) } }
        let addr = a.metricsAddr!
        // Progress of a run, written on each node as the training service writes it; b's reaches a
        // through the CRDT store.
        let run = CRDT.RunID(creator: a.peerId, name: "t")
        for (d, acc) in [(a, 0.5), (b, 0.25)] {
            for step in 1...5 {
                try await d.loop.submit { _ in
                    _ = try d.service(CRDTService.self)!.write([.progress(run, of: d.peerId, CRDT.Progress(step: UInt64(step), loss: 2 / Double(step), accuracy: acc * Double(step) / 5))])
                }
            }
        }
        var state: Dashboard.State?
        for _ in 0..<100 {
            let r = try await blocking { try Self.get(addr, "/api/v1/state") }
            let s = try JSONDecoder().decode(Dashboard.State.self, from: Data(r.body))
            #expect(r.head.hasPrefix("HTTP/1.1 200 OK") && r.head.contains("Content-Type: application/json"))
            #expect(!r.body.contains(UInt8(ascii: "<")))
            state = s
            if s.runs.runs.first?.series.count == 2, s.peers.peers.first?.agent.isEmpty == false { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let s = try #require(state)
        #expect(s.node.peerId == a.peerId.description && s.node.reachability == "unknown" && s.node.services.contains("dashboard"))
        #expect(s.peers.total == 1 && s.peers.peers.map(\.peerId) == [b.peerId.description])
        #expect(s.peers.peers.first?.agent == DashboardModelTests.hostile && s.peers.peers.first?.connection == "direct")
        let series = Dictionary(uniqueKeysWithValues: (s.runs.runs.first?.series ?? []).map { ($0.peer, $0.points) })
        #expect(series[a.peerId.description]?.map(\.step) == [1, 2, 3, 4, 5])
        #expect(series[b.peerId.description]?.last == Dashboard.Point(step: 5, loss: 0.4, accuracy: 0.25))
        #expect(s.runs.runs.first?.run == run.description && s.runs.runs.first?.joined == false)
        // The parts of the state, and the page with its headers.
        let peers = try JSONDecoder().decode(Dashboard.Peers.self, from: Data(try await blocking { try Self.get(addr, "/api/v1/peers") }.body))
        #expect(peers.peers.map(\.peerId) == [b.peerId.description])
        let crdt = try JSONDecoder().decode(Dashboard.CRDTState.self, from: Data(try await blocking { try Self.get(addr, "/api/v1/crdt") }.body))
        #expect(crdt.stateHash.count == 64 && crdt.peers.map(\.peerId) == [b.peerId.description])
        let page = try await blocking { try Self.get(addr, "/") }
        #expect(page.head.contains("Content-Security-Policy: default-src 'self'") && page.head.contains("X-Content-Type-Options: nosniff"))
        #expect(String(decoding: page.body, as: UTF8.self).contains("<script src=\"/dashboard.js\" defer></script>"))
        let js = String(decoding: try await blocking { try Self.get(addr, "/dashboard.js") }.body, as: UTF8.self)
        // Text goes in through textContent; nothing is loaded from elsewhere (the one URL is the SVG namespace).
        #expect(!js.contains("innerHTML") && !js.contains("eval(") && !js.contains("insertAdjacentHTML"))
        let html = String(decoding: page.body, as: UTF8.self)
        #expect(js.components(separatedBy: "http").count == js.components(separatedBy: "http://www.w3.org/2000/svg").count && !html.contains("http"))
        let rebound = try await blocking { try Self.get(addr, "/api/v1/state", host: "attacker.example") }
        #expect(rebound.head.hasPrefix("HTTP/1.1 403"))
        await a.stop(); await b.stop()
    }
}
