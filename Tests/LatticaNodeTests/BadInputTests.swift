import Foundation
import LatticaAPI
import LatticaCore
import Testing
@testable import LatticaNode

/// Bad input from a file, the command line or the control socket: a one-line error naming the
/// problem, a non-zero exit, nothing on disk damaged.
@Suite struct BadInputTests {
    func expectOneLineFailure(_ r: CommandResult, mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        for f in fragments { #expect(r.stderr.contains(f), "\(r.stderr) should mention \(f)", sourceLocation: sourceLocation) }
    }

    @Test func corruptConfig_isRejected_namingFileAndLine() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let cfg = tmp.path + "/bad.toml"
        try "listen = [\"/ip4/127.0.0.1/tcp/0\"]\nmetrics_addr = 12 13\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        let r = try run("latticad", ["--data-dir", tmp.path + "/d", "--config", cfg])
        expectOneLineFailure(r, mentions: [cfg, "line 2"])
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/d"), "nothing is created on a config error")
    }

    @Test func unknownConfigOption_isRejected_namingIt() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let cfg = tmp.path + "/c.toml"
        try "[limits]\nmax_conns = 3\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        expectOneLineFailure(try run("latticad", ["--data-dir", tmp.path, "--config", cfg]), mentions: ["unknown option 'limits.max_conns'"])
    }

    @Test func unknownFlag_andBadFlagValues_areRejected() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let r = try run("latticad", ["--data-dir", tmp.path, "--bogus"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--bogus"))
        expectOneLineFailure(try run("latticad", ["--data-dir", tmp.path, "--listen", "/ip4/1.2.3/tcp/1"]), mentions: ["/ip4/1.2.3/tcp/1"])
        expectOneLineFailure(try run("latticad", ["--data-dir", tmp.path, "--metrics-addr", "nope"]), mentions: ["metrics_addr 'nope'"])
        expectOneLineFailure(try run("latticad", ["--data-dir", tmp.path, "--log-level", "loud"]), mentions: ["--log-level", "loud"])
        let cli = try run("lattica", ["--data-dir", tmp.path, "frobnicate"])
        #expect(cli.status != 0)
        #expect(cli.stderr.contains("frobnicate"))
    }

    @Test func worldReadableKeyFile_isRefused_andLeftUntouched() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path + "/d"
        let first = DaemonProcess(dataDir: dir)
        defer { first.kill9() }
        try await first.start()
        #expect(first.stop().status == 0)
        let key = dir + "/identity.key"
        let before = try Data(contentsOf: URL(fileURLWithPath: key))
        chmod(key, 0o644)
        let r = try run("latticad", ["--data-dir", dir])
        expectOneLineFailure(r, mentions: [key, "chmod 600"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: key)) == before)
        #expect(!FileManager.default.fileExists(atPath: dir + "/latticad.lock"))
    }

    @Test func corruptKeyFile_isRefused_andNotOverwritten() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path + "/d"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let key = dir + "/identity.key"
        let garbage = Data([8, 1, 18, 3, 1, 2, 3])
        FileManager.default.createFile(atPath: key, contents: garbage, attributes: [.posixPermissions: 0o600])
        expectOneLineFailure(try run("latticad", ["--data-dir", dir]), mentions: [key])
        #expect(try Data(contentsOf: URL(fileURLWithPath: key)) == garbage)
    }

    @Test func dataDirThatIsAFile_isRefused() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let f = tmp.path + "/file"
        FileManager.default.createFile(atPath: f, contents: Data("keep".utf8))
        expectOneLineFailure(try run("latticad", ["--data-dir", f]), mentions: [f, "not a directory"])
        expectOneLineFailure(try run("latticad", ["--data-dir", f + "/sub"]), mentions: [f + "/sub"])
        #expect(try String(contentsOfFile: f, encoding: .utf8) == "keep")
    }

    @Test func portInUse_isAClearError_andLeavesNoLockBehind() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = DaemonProcess(dataDir: tmp.path + "/a")
        defer { a.kill9() }
        try await a.start()
        let r0 = try run("lattica", ["--data-dir", a.dataDir, "status", "--json"])
        let addr = try #require((try JSONSerialization.jsonObject(with: Data(r0.stdout.utf8)) as? [String: Any])?["listen_addrs"] as? [String]).first!
        let taken = addr.components(separatedBy: "/p2p/")[0]
        let r = try run("latticad", ["--data-dir", tmp.path + "/b", "--listen", taken])
        expectOneLineFailure(r, mentions: ["cannot listen on \(taken)"])
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/b")
        #expect(!left.contains("latticad.lock") && !left.contains("control.sock"), "\(left)")
        #expect(a.stop().status == 0)
    }

    @Test func malformedControlRequests_getErrors_andTheDaemonKeepsServing() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let d = DaemonProcess(dataDir: tmp.path + "/n")
        defer { d.kill9() }
        try await d.start()
        let c = try ControlClient(socketPath: d.dataDir + "/control.sock")
        let cases: [(String, String)] = [
            ("this is not json", "bad_request"),
            (#"{"v":1,"id":3}"#, "bad_request"),
            (#"{"v":99,"id":4,"method":"status"}"#, "unsupported_version"),
            (#"{"v":1,"id":5,"method":"launch_missiles"}"#, "unknown_method"),
            (#"[1,2,3]"#, "bad_request"),
        ]
        for (line, code) in cases {
            try c.sendAll(Array((line + "\n").utf8))
            let reply = try JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(try c.readLine()))
            #expect(reply.ok == false)
            #expect(reply.error?.code == code, "\(line)")
        }
        // An oversize line is refused and the connection closed; the daemon still serves others.
        let c2 = try ControlClient(socketPath: d.dataDir + "/control.sock")
        try c2.sendAll([UInt8](repeating: UInt8(ascii: "a"), count: ControlAPI.maxLineBytes + 10))
        let reply = try JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(try c2.readLine()))
        #expect(reply.error?.code == "bad_request")
        let s = try c.call(Methods.Status.self, NoParams())
        #expect(s.peerId.hasPrefix("12D3KooW"))
        #expect(d.stop().status == 0)
    }
}

/// A typed method for dispatcher tests: echoes its one optional integer.
enum TestEcho: ControlMethod {
    static let name = "echo"
    typealias Result = Params
    struct Params: ControlParams, Equatable {
        var a: Int?
        enum CodingKeys: String, CodingKey, CaseIterable { case a }
        static let ranges = ["a": 0...1000]
        func validate() throws(ControlErrorBody) { try check("a", a) }
    }
}

@Suite struct ControlDispatcherTests {
    @Test func dispatcher_answersEveryMalformedInput_withAnErrorLine() async {
        var d = ControlDispatcher()
        d.register(TestEcho.self) { p in p }
        let seed = testSeed(0xD15_7A7C)
        var rng = SeededRandom(seed: seed)
        for i in 0..<2_000 {
            var bytes = Array(#"{"v":1,"id":9,"method":"echo","params":{"a":[1,2,"x"]}}"#.utf8)
            for _ in 0..<(1 + i % 5) { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            let out = await d.handle(line: bytes)
            #expect(out.last == UInt8(ascii: "\n"), "seed \(seed)")
            #expect(out.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil, "seed \(seed)")
            #expect((try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(out.dropLast()))) != nil, "seed \(seed)")
        }
        let ok = await d.handle(line: Array(#"{"v":1,"id":9,"method":"echo","params":{"a":1}}"#.utf8))
        let r = try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(ok.dropLast()))
        #expect(r?.ok == true && r?.result == .object(["a": .number(1)]) && r?.id == 9)
    }

    /// A metric label a client chooses would be a new series per request: unbounded memory.
    @Test func methodNamesAClientMakesUp_neverBecomeMetricLabels() async {
        var d = ControlDispatcher()
        d.register(TestEcho.self) { p in p }
        _ = MetricsRegistry.shared
        for i in 0..<50 {
            _ = await d.handle(line: Array(#"{"v":99,"id":1,"method":"made-up-\#(i)"}"#.utf8))
            _ = await d.handle(line: Array(#"{"v":1,"id":1,"method":"made-up-\#(i)"}"#.utf8))
        }
        _ = await d.handle(line: Array(#"{"v":99,"id":1,"method":"echo"}"#.utf8))
        let text = String(decoding: MetricsRegistry.shared.render(), as: UTF8.self)
        #expect(!text.contains("made-up-"))
        #expect(text.contains(#"method="unknown""#) && text.contains(#"method="echo",result="unsupported_version""#))
    }

    @Test func typedParams_nameTheFieldAndTheRange_beforeAnyConversion() async {
        var d = ControlDispatcher()
        d.register(TestEcho.self) { p in p }
        func error(_ params: String) async -> String? {
            let out = await d.handle(line: Array(#"{"v":1,"id":1,"method":"echo","params":"#.utf8) + Array(params.utf8) + [UInt8(ascii: "}")])
            return (try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(out.dropLast())))?.error?.message
        }
        #expect(await error(#"{"a":9223372036854775807}"#) == "'a' is 9.223372036854776e+18; allowed: 0...1000")
        #expect(await error(#"{"a":1001}"#) == "'a' is 1001; allowed: 0...1000")
        #expect(await error(#"{"a":1e300}"#) == "'a' is 1e+300; allowed: 0...1000")
        #expect(await error(#"{"a":-1}"#) == "'a' is -1; allowed: 0...1000")
        #expect(await error(#"{"a":1.5}"#) == "'a' must be an integer in 0...1000")
        #expect(await error(#"{"a":"7"}"#) == "'a' must be an integer in 0...1000")
        #expect(await error(#"{"b":1}"#) == "unknown field 'b'; fields: a")
        #expect(await error(#"[1]"#) == "'params' must be an object")
        #expect(await error(#"{"a":1}"#) == nil)
    }
}

@Suite struct MetricsHTTPTests {
    @Test func onlyGetMetrics_isServed_andHeadersAreBounded() {
        let routes = ["/metrics": HTTP.Route(path: "/metrics", localOnly: false) { _ in .text(200, "x 1\n") }]
        func status(_ s: String) -> String? {
            guard case .respond(let b) = HTTP.handle(Array(s.utf8), routes: routes) else { return nil }
            return String(decoding: b, as: UTF8.self).split(separator: "\r\n").first.map(String.init)
        }
        #expect(status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200 OK")
        #expect(status("GET / HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found")
        #expect(status("POST /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 405 Method Not Allowed")
        #expect(status("garbage\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET /metrics HTTP/1.1\r\n") == nil)
        #expect(status("GET /" + String(repeating: "a", count: 9000)) == "HTTP/1.1 431 Request Header Fields Too Large")
    }
}

@Suite struct LayeringTests {
    static let root = #filePath.components(separatedBy: "/Tests/")[0]

    /// Runs check-layering.sh with `root` as the project; returns (status, stderr). The wait is
    /// on a thread of its own: blocking one of the two cooperative threads for the script's
    /// seconds starved other tests' continuations (a 100 ms connect timeout measured 38 s).
    static func check(root: String) async throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [root + "/Scripts/check-layering.sh"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let handle = err.fileHandleForReading
        return await withCheckedContinuation { (done: CheckedContinuation<(Int32, String), Never>) in
            Thread {
                let msg = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                done.resume(returning: (p.terminationStatus, msg))
            }.start()
        }
    }

    @Test func pureTargets_importNoIO() async throws {
        let (status, msg) = try await Self.check(root: Self.root)
        #expect(status == 0, "\(msg)")
    }

    @Test(arguments: ["import FoundationEssentials", "public import CSodium", "@preconcurrency import struct Foundation.Data",
                      "internal import Dispatch", "import CSQLite", "import LatticaUV", "import CKernels"])
    func theCheck_catches(_ line: String) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let fm = FileManager.default
        try fm.createDirectory(atPath: tmp.path + "/Scripts", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Self.root + "/Scripts/check-layering.sh", toPath: tmp.path + "/Scripts/check-layering.sh")
        for c in ["CSodium", "CSQLite", "CBLAS"] {
            try fm.createDirectory(atPath: tmp.path + "/Sources/" + c, withIntermediateDirectories: true)
            try Data("module \(c) {}".utf8).write(to: URL(fileURLWithPath: tmp.path + "/Sources/\(c)/module.modulemap"))
        }
        // A C target of ours: an include/ directory, no module map.
        try fm.createDirectory(atPath: tmp.path + "/Sources/CKernels/include", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tmp.path + "/Sources/LatticaCore", withIntermediateDirectories: true)
        try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: tmp.path + "/Sources/LatticaCore/Probe.swift"))
        let (status, msg) = try await Self.check(root: tmp.path)
        #expect(status != 0 && msg.contains("Probe.swift:1"), "\(line): \(msg)")
    }
}
