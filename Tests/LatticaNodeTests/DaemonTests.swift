import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

@Suite(.serialized) struct DaemonTests {
    func status(_ dir: String) throws -> [String: Any] {
        let r = try run("lattica", ["--data-dir", dir, "status", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }

    @Test func twoDaemons_reportStatus_andStopCleanlyWithinTwoSeconds() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = DaemonProcess(dataDir: tmp.path + "/a"), b = DaemonProcess(dataDir: tmp.path + "/b")
        defer { a.kill9(); b.kill9() }
        try await a.start()
        try await b.start()
        let sa = try status(a.dataDir), sb = try status(b.dataDir)
        for s in [sa, sb] {
            let id = try #require(s["peer_id"] as? String)
            #expect(id.hasPrefix("12D3KooW"))
            let addrs = try #require(s["listen_addrs"] as? [String])
            #expect(addrs.count == 1)
            #expect(addrs[0].hasPrefix("/ip4/127.0.0.1/tcp/") && addrs[0].hasSuffix("/p2p/" + id))
            #expect(!addrs[0].contains("/tcp/0/"), "port 0 must be reported as the real port")
            #expect(s["version"] is String)
            #expect((s["uptime_s"] as? Double ?? -1) >= 0)
        }
        #expect(sa["peer_id"] as? String != sb["peer_id"] as? String)
        for d in [a, b] {
            let (code, secs) = d.stop()
            #expect(code == 0, "\(d.log)")
            #expect(secs < 2.0)
            let left = try FileManager.default.contentsOfDirectory(atPath: d.dataDir)
            #expect(!left.contains("control.sock") && !left.contains("latticad.lock"), "left behind: \(left)")
        }
    }

    @Test func identity_survivesARestart_andTheKeyFileIsPrivate() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path + "/n"
        var ids: [String] = []
        for _ in 0..<2 {
            let d = DaemonProcess(dataDir: dir)
            defer { d.kill9() }
            try await d.start()
            ids.append(try status(dir)["peer_id"] as? String ?? "")
            #expect(d.stop().status == 0)
        }
        #expect(ids[0] == ids[1])
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/identity.key")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
    }

    @Test func secondDaemon_onTheSameDataDir_failsWithAClearMessage() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = DaemonProcess(dataDir: tmp.path + "/n")
        defer { d.kill9() }
        try await d.start()
        let r = try run("latticad", ["--data-dir", d.dataDir, "--listen", "/ip4/127.0.0.1/tcp/0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("another latticad (pid \(d.process.processIdentifier)) is already running"), "\(r.stderr)")
        // The first daemon is unharmed.
        #expect(try status(d.dataDir)["peer_id"] is String)
        #expect(d.stop().status == 0)
    }

    @Test func metricsEndpoint_servesPrometheusText() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = DaemonProcess(dataDir: tmp.path + "/n")
        defer { d.kill9() }
        try await d.start()
        _ = try status(d.dataDir)
        let m = try #require(try status(d.dataDir)["metrics_addr"] as? String)
        let (data, resp) = try await URLSession.shared.data(from: URL(string: "http://\(m)/metrics")!)
        #expect((resp as? HTTPURLResponse)?.statusCode == 200)
        #expect(String(decoding: data, as: UTF8.self).contains(#"lattica_control_requests_total{method="status",result="ok"}"#))
        #expect(d.stop().status == 0)
    }

    @Test func cli_withoutADaemon_failsNamingTheSocket() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let r = try run("lattica", ["--data-dir", tmp.path, "status"])
        #expect(r.status != 0)
        #expect(r.stderr.contains(tmp.path + "/control.sock"))
        #expect(r.stderr.split(separator: "\n").count == 1)
        let env = try run("lattica", ["status", "--json"], env: ["LATTICA_DATA_DIR": tmp.path + "/x"])
        #expect(env.stderr.contains(tmp.path + "/x/control.sock"), "LATTICA_DATA_DIR must be honoured")
    }
}
