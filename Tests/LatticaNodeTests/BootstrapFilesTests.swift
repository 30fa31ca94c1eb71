import Foundation
import LatticaCore
import Testing
@testable import LatticaNode

@Suite struct BootstrapFilesTests {
    static let id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

    @Test func publish_writesFullAddrsAtomically_andParseReadsThemBack() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let path = tmp.path + "/boot.addrs"
        let a = try Multiaddr("/ip4/10.200.0.2/tcp/4001/p2p/\(Self.id)")
        let b = try Multiaddr("/ip4/0.0.0.0/tcp/4002/p2p/\(Self.id)")
        try BootstrapFiles.publish([a, b], to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = BootstrapFiles.parse(text)
        #expect(lines.first == a.description)
        #expect(lines.count >= 2, "0.0.0.0 expands to at least one interface address: \(lines)")
        #expect(!lines.contains { $0.hasPrefix("/ip4/0.0.0.0/") }, "\(lines)")
        #expect(lines.allSatisfy { $0.hasSuffix("/p2p/" + Self.id) })
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        #expect(left == ["boot.addrs"], "no temporary file left: \(left)")
    }

    @Test func parse_skipsCommentsBlankLinesAndAddrsWithoutPeerId() {
        let text = "# boot\n\n/ip4/1.2.3.4/tcp/1\nnot an addr\n  /ip4/1.2.3.4/tcp/2/p2p/\(Self.id)  \n"
        #expect(BootstrapFiles.parse(text) == ["/ip4/1.2.3.4/tcp/2/p2p/\(Self.id)"])
        // what was dropped besides blanks and comments is named for the operator's warning
        #expect(BootstrapFiles.skippedLines(text) == ["/ip4/1.2.3.4/tcp/1", "not an addr"])
    }

    @Test func waitAndRead_givesUpAfterItsBound_whenNoFileAppears() {
        let start = ContinuousClock.now
        #expect(throws: DaemonError.self) { try BootstrapFiles.waitAndRead("/nonexistent/boot.addrs", timeout: 0.3) }
        let took = ContinuousClock.now - start
        #expect(took >= .milliseconds(300) && took < .seconds(3), "\(took)")
    }

    @Test func resolveDNS_resolvesLocalhost_dropsUnresolvable_andPassesIPsThrough() {
        let (ok, failed) = BootstrapFiles.resolveDNS([
            "/dns4/localhost/tcp/4001/p2p/\(Self.id)",
            "/dns4/no-such-host.invalid/tcp/4001/p2p/\(Self.id)",
            "/ip4/10.0.0.1/tcp/1/p2p/\(Self.id)",
        ])
        #expect(ok.contains("/ip4/127.0.0.1/tcp/4001/p2p/\(Self.id)"), "\(ok)")
        #expect(ok.contains("/ip4/10.0.0.1/tcp/1/p2p/\(Self.id)"))
        #expect(!ok.contains { $0.contains("dns") })
        #expect(failed == ["/dns4/no-such-host.invalid/tcp/4001/p2p/\(Self.id)"])
    }

    /// Real processes: the bootstrap node publishes its addresses; a second node, started first,
    /// waits for the file and connects; a third joins through a /dns4/localhost address.
    @Test func daemons_joinThroughAPublishedFile_andADNSAddress() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let file = tmp.path + "/boot.addrs"
        let boot = DaemonProcess(dataDir: tmp.path + "/boot", args: ["--publish-addrs-file", file])
        let b = DaemonProcess(dataDir: tmp.path + "/b", args: ["--bootstrap-file", file])
        defer { boot.kill9(); b.kill9() }
        async let bStarted: Void = b.start()   // blocks in --bootstrap-file until boot has published
        try await boot.start()
        try await bStarted
        let published = BootstrapFiles.parse(try String(contentsOfFile: file, encoding: .utf8))
        let first = try #require(published.first)
        let bootId = try #require(try Multiaddr(first).peerId).description
        try await waitConnected(b.dataDir, to: bootId)
        let port = try #require(first.split(separator: "/").dropFirst(3).first)
        let c = DaemonProcess(dataDir: tmp.path + "/c", args: ["--bootstrap", "/dns4/localhost/tcp/\(port)/p2p/\(bootId)"])
        defer { c.kill9() }
        try await c.start()
        try await waitConnected(c.dataDir, to: bootId)
    }

    func waitConnected(_ dir: String, to peer: String) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        var last = ""
        while ContinuousClock.now < deadline {
            let r = try run("lattica", ["--data-dir", dir, "peers", "--json"])
            last = r.stdout + r.stderr
            if r.status == 0, last.contains(peer) { return }
            try await Task.sleep(for: .milliseconds(100))   // polling an external process, with a deadline
        }
        Issue.record("not connected to \(peer) within 15 s: \(last)")
    }
}
