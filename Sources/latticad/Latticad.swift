import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaNode
import Logging

@main
struct Latticad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latticad",
        abstract: "The Lattica peer-to-peer learning daemon.",
        discussion: """
        Settings come from embedded defaults, then --config FILE (TOML, see Config/latticad.toml), then flags.
        The data directory defaults to $LATTICA_DATA_DIR, else ~/.lattica. SIGINT or SIGTERM stop the daemon cleanly.
        """,
        version: LatticaVersion.string
    )

    @Option(name: .customLong("data-dir"), help: "Data directory (identity key, database, control socket).")
    var dataDir: String?

    @Option(help: "TOML configuration file.")
    var config: String?

    @Option(help: "Multiaddr to listen on, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable; replaces the config's list).")
    var listen: [String] = []

    @Option(help: "Multiaddr of a peer to bootstrap from, ending in /p2p/<peer id> (repeatable).")
    var bootstrap: [String] = []

    @Option(name: .customLong("bootstrap-file"), help: "Wait (up to 60 s) for this file, written by another node's --publish-addrs-file, and bootstrap from the addresses it lists.")
    var bootstrapFile: String?

    @Option(name: .customLong("publish-addrs-file"), help: "After listening, write this node's full multiaddrs (/p2p/<id>), one per line, atomically to this file.")
    var publishAddrsFile: String?

    @Option(name: .customLong("metrics-addr"), help: "HOST:PORT for Prometheus metrics (\"\" disables).")
    var metricsAddr: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    /// Raises the soft limit on open files to the hard one (at most 65,536): a birthday punch
    /// holds a few hundred sockets for a moment, and the connection limit alone is 1,024 by
    /// default (Debian's default soft limit).
    static func raiseFileLimit() {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return }
        let want = min(l.rlim_max, 65_536)
        guard l.rlim_cur < want else { return }
        l.rlim_cur = want
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) != 0 {
            let line = Array("latticad: cannot raise the open-file limit to \(want): errno \(errno)\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }

    func run() async throws {
        var cfg = NodeConfig(dataDir: NodeConfig.defaultDataDir)
        do {
            if let config { try cfg.apply(file: config) }
            if let dataDir { cfg.dataDir = dataDir }
            if !listen.isEmpty { cfg.listen = listen }
            if !bootstrap.isEmpty { cfg.bootstrap = bootstrap }
            if let bootstrapFile { cfg.bootstrapFile = bootstrapFile.isEmpty ? nil : bootstrapFile }
            if let publishAddrsFile { cfg.publishAddrsFile = publishAddrsFile.isEmpty ? nil : publishAddrsFile }
            if let metricsAddr { cfg.metricsAddr = metricsAddr.isEmpty ? nil : metricsAddr }
            if let logLevel {
                guard let l = Logger.Level(rawValue: logLevel) else {
                    throw ConfigError(source: "--log-level", message: "'\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
                }
                cfg.logLevel = l
            }
            try cfg.validate(source: "command line")
        } catch {
            Self.die("\(error)", code: 2)
        }
        Self.raiseFileLimit()
        let level = cfg.logLevel
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        do {
            if let f = cfg.bootstrapFile { cfg.bootstrap += try BootstrapFiles.waitAndRead(f) }
        } catch { Self.die("\(error)", code: 1) }
        let (resolved, failed) = BootstrapFiles.resolveDNS(cfg.bootstrap)
        if !failed.isEmpty {
            Logger(label: "lattica.daemon").warning("bootstrap addresses that do not resolve are skipped", metadata: ["addrs": "\(failed)"])
        }
        cfg.bootstrap = resolved
        let daemon: Daemon
        do { daemon = try await Daemon.start(config: cfg) } catch { Self.die("\(error)", code: 1) }
        if let f = cfg.publishAddrsFile {
            do { try BootstrapFiles.publish(daemon.listenAddrs, to: f) } catch {
                Logger(label: "lattica.daemon").error("cannot publish the listen addresses", metadata: ["error": "\(error)"])
            }
        }
        await daemon.runUntilSignalled()
    }

    static func die(_ message: String, code: Int32) -> Never {
        let line = Array("latticad: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        Glibc.exit(code)
    }
}
