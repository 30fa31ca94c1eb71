import Foundation
import LatticaCore
import LatticaCRDT
import Testing
@testable import LatticaNode

@Suite struct TOMLTests {
    @Test func parse_readsTheSubsetTheConfigUses() throws {
        let t = try TOML.parse("""
        # comment
        a = "x\\ty" # trailing
        b = 'lit\\eral'
        n = 1_000
        f = 2.5
        yes = true
        list = [
          "one", # first
          "two",
        ]
        [sec.sub]
        "quoted key" = -3
        dotted.key = false
        """)
        #expect(t["a"] == .string("x\ty"))
        #expect(t["b"] == .string("lit\\eral"))
        #expect(t["n"] == .integer(1000))
        #expect(t["f"] == .float(2.5))
        #expect(t["yes"] == .bool(true))
        #expect(t["list"] == .array([.string("one"), .string("two")]))
        guard case .table(let sec)? = t["sec"], case .table(let sub)? = sec["sub"] else { Issue.record("no table"); return }
        #expect(sub["quoted key"] == .integer(-3))
        #expect(sub["dotted"] == .table(["key": .bool(false)]))
    }

    @Test(arguments: [
        ("a = ", 1, "expected a value"),
        ("a = \"open", 1, "unterminated string"),
        ("a = 1\na = 2", 2, "defined twice"),
        ("\n\nx = nope", 3, "invalid value 'nope'"),
        ("[t]\n[t]", 2, "defined twice"),
        ("a = {x = 1}", 1, "inline tables"),
        ("[[arr]]", 1, "arrays of tables"),
        ("a = [1, 2", 1, "expected ',' or ']'"),
        ("a = 1 2", 1, "after value"),
        ("= 1", 1, "where a key was expected"),
        ("a = \"\\q\"", 1, "invalid escape"),
    ])
    func parse_rejectsBadInput_naming_theLine(text: String, line: Int, fragment: String) {
        do {
            _ = try TOML.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.message.contains(fragment), "\(error)")
        }
    }

    @Test func parse_neverTraps_onRandomAndMutatedInput() throws {
        let example = try String(contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/Config/latticad.toml", encoding: .utf8)
        let base = Array(example.utf8)
        let seed = testSeed(0x70_4C)
        print("TOML fuzz seed \(seed)")
        var rng = SeededRandom(seed: seed)
        let alphabet = Array("[]\"'=#.,\n \\{}abc019_-+eE".utf8)
        for i in 0..<3_000 {
            var b = base
            for _ in 0..<(1 + i % 8) {
                let pos = Int.random(in: 0..<b.count, using: &rng)
                switch i % 3 {
                case 0: b[pos] = alphabet.randomElement(using: &rng)!
                case 1: b.remove(at: pos)
                default: b.insert(alphabet.randomElement(using: &rng)!, at: pos)
                }
            }
            _ = try? TOML.parse(String(decoding: b, as: UTF8.self))
        }
        for n in 0..<1_000 {
            let r = (0..<(n % 64)).map { _ in alphabet.randomElement(using: &rng)! }
            _ = try? TOML.parse(String(decoding: r, as: UTF8.self))
        }
    }
}

@Suite struct NodeConfigTests {
    func load(_ text: String) throws(ConfigError) -> NodeConfig {
        var c = NodeConfig(dataDir: "/tmp/x")
        let t: [String: TOML.Value]
        do { t = try TOML.parse(text) } catch { throw ConfigError(source: "t.toml", message: error.description) }
        try c.apply(table: t, source: "t.toml")
        return c
    }

    @Test func exampleConfig_loads_andMatchesTheEmbeddedDefaults() throws {
        let root = #filePath.components(separatedBy: "/Tests/")[0]
        var c = NodeConfig(dataDir: "/tmp/x")
        try c.apply(file: root + "/Config/latticad.toml")
        // Every service section it shows is a registered service's, with that service's defaults.
        func section(_ name: String) -> TableReader { TableReader(table: c.sections[name] ?? [:], prefix: name + ".", source: "example") }
        #expect(try EchoService.settings(section("echo")) == EchoService.Settings())
        #expect(try CRDTService.settings(section("crdt")) == CRDT.Settings())
        #expect(try ConnectionKeeper.settings(section("connections")) == ConnectionKeeper.Settings())
        #expect(try TrainingService.settings(section("train")) == TrainingService.Settings())
        #expect(c.sections.keys.allSatisfy { NodeServices.service(named: $0) != nil })
        c.sections = [:]
        #expect(c == NodeConfig(dataDir: "/tmp/x"), "Config/latticad.toml must document the defaults")
    }

    @Test func options_overrideDefaults() throws {
        let c = try load("""
        listen = ["/ip4/0.0.0.0/tcp/4001"]
        metrics_addr = ""
        log_level = "debug"
        [limits]
        max_connections = 10
        [dht]
        protocol = "/lattica/1.0.0"
        """)
        #expect(c.listen == ["/ip4/0.0.0.0/tcp/4001"])
        #expect(c.metricsAddr == nil)
        #expect(c.logLevel == .debug)
        #expect(c.maxConnections == 10)
        #expect(c.dhtProtocol == "/lattica/1.0.0")
    }

    @Test(arguments: [
        ("bogus = 1", "unknown option 'bogus'"),
        ("[limits]\nmax_conections = 3", "unknown option 'limits.max_conections'"),
        ("listen = \"/ip4/1.2.3.4/tcp/1\"", "must be an array of strings"),
        ("listen = [\"/ip4/999.1.1.1/tcp/1\"]", "not a valid multiaddr"),
        ("log_level = \"loud\"", "log_level 'loud'"),
        ("metrics_addr = \"localhost\"", "not HOST:PORT"),
        ("[limits]\nmax_connections = 0", "must be in 1...100000"),
        ("[limits]\nidle_timeout_s = \"x\"", "must be a number"),
        ("identify = 3", "must be a table"),
    ])
    func badOptions_areRejected_withAMessageNamingThem(text: String, fragment: String) {
        #expect(throws: ConfigError.self) { _ = try load(text) }
        do { _ = try load(text) } catch { #expect(error.description.contains(fragment), "\(error)") }
    }

    @Test func unreadableFile_isAnError_namingThePath() {
        var c = NodeConfig(dataDir: "/tmp/x")
        do {
            try c.apply(file: "/nonexistent/latticad.toml")
            Issue.record("accepted a missing file")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/latticad.toml: cannot read config file"))
        }
    }
}
