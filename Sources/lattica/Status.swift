import ArgumentParser
import LatticaAPI

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Peer id, listen addresses, uptime and version of the daemon.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let s = try global.call(Methods.Status.self, NoParams()) else { return }
        var rows: [(String, String)] = [
            ("peer id", s.peerId),
            ("version", "\(s.version) (\(s.agentVersion))"),
            ("uptime", formatDuration(s.uptimeSeconds)),
            ("data dir", s.dataDir),
            ("peers", String(s.connectedPeers)),
        ]
        if let m = s.metricsAddr { rows.append(("metrics", "http://\(m)/metrics")) }
        for (i, a) in s.listenAddrs.enumerated() { rows.append((i == 0 ? "listening" : "", a)) }
        if s.listenAddrs.isEmpty { rows.append(("listening", "(nothing)")) }
        printRows(rows)
    }
}
