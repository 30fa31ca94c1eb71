import ArgumentParser
import LatticaAPI

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Peer id, listen addresses, uptime and version of the daemon.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let s = try global.call("status", as: StatusResult.self) else { return }
        var rows: [(String, String)] = [
            ("peer id", s.peer_id),
            ("version", "\(s.version) (\(s.agent_version))"),
            ("uptime", formatDuration(s.uptime_s)),
            ("data dir", s.data_dir),
            ("peers", String(s.connected_peers)),
        ]
        if let m = s.metrics_addr { rows.append(("metrics", "http://\(m)/metrics")) }
        for (i, a) in s.listen_addrs.enumerated() { rows.append((i == 0 ? "listening" : "", a)) }
        if s.listen_addrs.isEmpty { rows.append(("listening", "(nothing)")) }
        printRows(rows)
    }
}
