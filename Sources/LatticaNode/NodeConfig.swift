import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import Logging

/// An error in the configuration: which file or flag, which line, what is wrong. One line.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var source: String
    public var message: String
    public var description: String { "\(source): \(message)" }

    public init(source: String, message: String) { self.source = source; self.message = message }
}

/// The daemon's settings. Defaults are embedded; `Config/latticad.toml` documents every option;
/// command-line flags override the file.
public struct NodeConfig: Sendable, Equatable {
    public var dataDir: String
    public var listen: [String] = ["/ip4/127.0.0.1/tcp/0"]
    public var bootstrap: [String] = []
    /// A file another node publishes its addresses to (`publish_addrs_file`): waited for at
    /// start (`BootstrapFiles.defaultWait`), its addresses added to `bootstrap`.
    public var bootstrapFile: String?
    /// After listening, this node's full multiaddrs (`…/p2p/<id>`) are written here, one per line.
    public var publishAddrsFile: String?
    /// `host:port` of the Prometheus endpoint; nil disables it.
    public var metricsAddr: String? = "127.0.0.1:0"
    public var logLevel: Logger.Level = .info
    /// Defaults to `<data-dir>/control.sock`.
    public var controlSocket: String?
    public var agentVersion = "lattica-swift/\(LatticaVersion.string)"
    public var protocolVersion = "/lattica/1.0.0"
    public var maxConnections = 256
    public var idleTimeoutSeconds = 120.0
    /// `EventLoop.busyPoll` in µs: how long the loop keeps polling after input before it sleeps.
    public var busyPollMicros = NodeConfig.defaultBusyPollMicros
    public static let defaultBusyPollMicros = 50
    public var dhtProtocol = "/ipfs/kad/1.0.0"
    /// `server` answers DHT requests and advertises the protocol; `client` only asks.
    public var dhtMode = "server"
    /// Config sections of services (`[echo]`, …), validated by their service when read. (The
    /// `[identify]` and `[dht]` options predate services and stay typed fields above.)
    public var sections: [String: [String: TOML.Value]] = [:]

    public init(dataDir: String) { self.dataDir = dataDir }

    public var controlSocketPath: String { controlSocket ?? dataDir + "/control.sock" }

    /// The data directory when neither a flag nor the config names one: `$LATTICA_DATA_DIR`, else `~/.lattica`.
    public static var defaultDataDir: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["LATTICA_DATA_DIR"], !d.isEmpty { return d }
        return (env["HOME"] ?? "/root") + "/.lattica"
    }

    /// Reads a TOML file over the defaults. Unknown options, wrong types and bad values are errors
    /// naming the file and line or option.
    public mutating func apply(file path: String) throws(ConfigError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(source: path, message: "cannot read config file (\(Self.reason(error)))")
        }
        let root: [String: TOML.Value]
        do { root = try TOML.parse(text) } catch { throw ConfigError(source: path, message: error.description) }
        try apply(table: root, source: path)
    }

    mutating func apply(table root: [String: TOML.Value], source: String) throws(ConfigError) {
        var r = TableReader(table: root, prefix: "", source: source)
        if let v = try r.string("data_dir") { dataDir = Self.expandHome(v) }
        if let v = try r.strings("listen") { listen = v }
        if let v = try r.strings("bootstrap") { bootstrap = v }
        if let v = try r.string("bootstrap_file") { bootstrapFile = v.isEmpty ? nil : Self.expandHome(v) }
        if let v = try r.string("publish_addrs_file") { publishAddrsFile = v.isEmpty ? nil : Self.expandHome(v) }
        if let v = try r.string("metrics_addr") { metricsAddr = v.isEmpty ? nil : v }
        if let v = try r.string("log_level") {
            guard let l = Logger.Level(rawValue: v) else {
                throw ConfigError(source: source, message: "log_level '\(v)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = l
        }
        if let v = try r.string("control_socket") { controlSocket = Self.expandHome(v) }
        if var t = try r.table("identify") {
            if let v = try t.string("agent_version") { agentVersion = v }
            if let v = try t.string("protocol_version") { protocolVersion = v }
            try t.finish()
        }
        if var t = try r.table("limits") {
            if let v = try t.int("max_connections", range: 1...100_000) { maxConnections = v }
            if let v = try t.double("idle_timeout_s", range: 1...86_400) { idleTimeoutSeconds = v }
            try t.finish()
        }
        if var t = try r.table("performance") {
            if let v = try t.int("busy_poll_us", range: 0...10_000) { busyPollMicros = v }
            try t.finish()
        }
        if var t = try r.table("dht") {
            if let v = try t.string("protocol") { dhtProtocol = v }
            if let v = try t.string("mode") {
                guard v == "server" || v == "client" else { throw ConfigError(source: source, message: "option 'dht.mode' must be \"server\" or \"client\", got '\(v)'") }
                dhtMode = v
            }
            try t.finish()
        }
        // Every other table is a service's own section, checked by that service.
        for key in root.keys.sorted() where !r.used.contains(key) {
            guard let service = NodeServices.service(named: key), case .table(let t)? = root[key] else { continue }
            _ = r.get(key)
            try service.validate(section: TableReader(table: t, prefix: key + ".", source: source))
            sections[key] = t
        }
        try r.finish()
        try validate(source: source)
    }

    /// Checks values that every source must satisfy.
    public func validate(source: String) throws(ConfigError) {
        for a in listen + bootstrap {
            do { _ = try Multiaddr(a) } catch {
                throw ConfigError(source: source, message: "'\(a)' is not a valid multiaddr (\(error))")
            }
        }
        if let m = metricsAddr, HostPort(m) == nil {
            throw ConfigError(source: source, message: "metrics_addr '\(m)' is not HOST:PORT")
        }
    }

    static func expandHome(_ p: String) -> String {
        guard p.hasPrefix("~/") else { return p }
        return (ProcessInfo.processInfo.environment["HOME"] ?? "") + p.dropFirst(1)
    }

    static func reason(_ e: any Error) -> String {
        if let c = e as? CocoaError, let u = c.userInfo["NSUnderlyingError"] as? POSIXError {
            return String(cString: strerror(u.code.rawValue))
        }
        if let p = e as? POSIXError { return String(cString: strerror(p.code.rawValue)) }
        if let c = e as? CocoaError {
            switch c.code {
            case .fileReadNoSuchFile, .fileNoSuchFile: return "No such file or directory"
            case .fileReadNoPermission, .fileWriteNoPermission: return "Permission denied"
            default: return "\(c.code)"
            }
        }
        return "\(e)"
    }
}

/// `host:port` with a numeric IPv4 host (IPv6 in brackets).
public struct HostPort: Equatable, Sendable {
    public var host: String
    public var port: UInt16

    public init?(_ s: String) {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var h = String(s[..<colon])
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty, let p = UInt16(s[s.index(after: colon)...]) else { return nil }
        host = h
        port = p
    }
}

/// Reads typed options from one TOML table and remembers which keys were used, so that unknown
/// ones are reported.
struct TableReader {
    let table: [String: TOML.Value]
    let prefix: String
    let source: String
    var used: Set<String> = []

    init(table: [String: TOML.Value], prefix: String, source: String) {
        self.table = table; self.prefix = prefix; self.source = source
    }

    func err(_ key: String, _ m: String) -> ConfigError { ConfigError(source: source, message: "option '\(prefix)\(key)' \(m)") }

    mutating func get(_ key: String) -> TOML.Value? { used.insert(key); return table[key] }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = get(key) else { return nil }
        guard case .string(let s) = v else { throw err(key, "must be a string, not \(v.typeName)") }
        return s
    }

    mutating func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let v = get(key) else { return nil }
        guard case .array(let a) = v else { throw err(key, "must be an array of strings, not \(v.typeName)") }
        var out: [String] = []
        for x in a {
            guard case .string(let s) = x else { throw err(key, "must be an array of strings (found \(x.typeName))") }
            out.append(s)
        }
        return out
    }

    mutating func int(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let v = get(key) else { return nil }
        guard case .integer(let i) = v else { throw err(key, "must be an integer, not \(v.typeName)") }
        guard let n = Int(exactly: i), range.contains(n) else { throw err(key, "must be in \(range.lowerBound)...\(range.upperBound), got \(i)") }
        return n
    }

    mutating func double(_ key: String, range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let v = get(key) else { return nil }
        let d: Double
        switch v {
        case .integer(let i): d = Double(i)
        case .float(let f): d = f
        default: throw err(key, "must be a number, not \(v.typeName)")
        }
        guard range.contains(d) else { throw err(key, "must be in \(range.lowerBound)...\(range.upperBound), got \(d)") }
        return d
    }

    mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = get(key) else { return nil }
        guard case .bool(let b) = v else { throw err(key, "must be true or false, not \(v.typeName)") }
        return b
    }

    mutating func table(_ key: String) throws(ConfigError) -> TableReader? {
        guard let v = get(key) else { return nil }
        guard case .table(let t) = v else { throw err(key, "must be a table, not \(v.typeName)") }
        return TableReader(table: t, prefix: prefix + key + ".", source: source)
    }

    func finish() throws(ConfigError) {
        if let unknown = table.keys.filter({ !used.contains($0) }).sorted().first {
            throw ConfigError(source: source, message: "unknown option '\(prefix)\(unknown)'")
        }
    }
}
