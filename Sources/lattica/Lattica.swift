import ArgumentParser
import Foundation
import LatticaAPI

@main
struct Lattica: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lattica",
        abstract: "Talk to a running latticad.",
        discussion: "Every command accepts --json for scripts. The daemon is found through its control socket: --socket, else <data-dir>/control.sock, with --data-dir defaulting to $LATTICA_DATA_DIR, else ~/.lattica.",
        subcommands: [Status.self, Peers.self, Connect.self, Ping.self, DHTCommand.self, MetaCommand.self, Sync.self, ModelCommand.self, TrainCommand.self, NATCommand.self]
    )

    /// Accepted before the command name too (`lattica --data-dir D status`); each command reads its own copy.
    @OptionGroup var global: GlobalOptions
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Data directory of the daemon (default: $LATTICA_DATA_DIR or ~/.lattica).")
    var dataDir: String?

    @Option(help: "Path of the daemon's control socket (default: <data-dir>/control.sock).")
    var socket: String?

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    var socketPath: String {
        if let socket { return socket }
        let env = ProcessInfo.processInfo.environment
        let dir = dataDir ?? env["LATTICA_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? "/root") + "/.lattica")
        return dir + "/control.sock"
    }

    func client() throws -> ControlClient {
        do { return try ControlClient(socketPath: socketPath) } catch { fail(error) }
    }

    /// Calls `m`; with `--json` prints the result object as the daemon sent it (and returns nil).
    func call<M: ControlMethod>(_ m: M.Type, _ params: M.Params) throws -> M.Result? {
        let method = M.name
        let c = try client()
        do {
            if json {
                let line = try c.roundTrip(m, params)
                let env = try? JSONDecoder().decode(ControlResponse<JSONValue>.self, from: Data(line))
                if let e = env?.error { fail(ControlClientError(socketPath: socketPath, message: "\(method) failed: \(e.message) [\(e.code)]")) }
                guard let result = env?.result, let out = try? JSONEncoder.controlAPI.encode(result) else {
                    fail(ControlClientError(socketPath: socketPath, message: "daemon sent an unreadable response"))
                }
                print(String(decoding: out, as: UTF8.self))
                return nil
            }
            return try c.call(m, params)
        } catch { fail(error) }
    }
}

/// Prints a one-line error naming the problem and exits non-zero.
func fail(_ e: any Error) -> Never {
    FileHandle.standardError.write(Data("lattica: \(e)\n".utf8))
    Foundation.exit(1)
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s)
    if t < 60 { return "\(t)s" }
    if t < 3600 { return "\(t / 60)m \(t % 60)s" }
    if t < 86400 { return "\(t / 3600)h \(t % 3600 / 60)m" }
    return "\(t / 86400)d \(t % 86400 / 3600)h"
}

/// Prints aligned `label  value` rows.
func printRows(_ rows: [(String, String)]) {
    let w = rows.map(\.0.count).max() ?? 0
    for (k, v) in rows { print(k.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + v) }
}
