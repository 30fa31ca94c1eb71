import Foundation
import ArgumentParser
import LatticaAPI

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Connected peers: id, address, direction, RTT, agent, protocols.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Also list each peer's protocols.")
    var verbose = false

    func run() throws {
        guard let r = try global.call(Methods.Peers.self, NoParams()) else { return }
        if r.peers.isEmpty { print("no peers connected"); return }
        let header = ["PEER", "ADDRESS", "DIR", "RTT", "AGENT", "UP"]
        var rows = r.peers.map { p in
            [p.peerId, p.addr, p.direction == "inbound" ? "in" : "out",
             p.rttMs.map { formatMillis($0) } ?? "-", p.agent.isEmpty ? "-" : p.agent, formatDuration(p.connectedSeconds)]
        }
        rows.insert(header, at: 0)
        printTable(rows)
        if verbose {
            for p in r.peers {
                print("\n\(p.peerId) (\(p.protocolVersion.isEmpty ? "no protocol version" : p.protocolVersion))")
                for proto in p.protocols { print("  " + proto) }
            }
        }
        print("\n\(r.peers.count) peer\(r.peers.count == 1 ? "" : "s")")
    }
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Connect to a peer by multiaddr (…/p2p/<peer id> checks its identity), circuit address, or bare peer id (found through the DHT).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…, …/p2p/<relay>/p2p-circuit/p2p/<peer id>, or 12D3KooW…")
    var addr: String

    func run() throws {
        guard let r = try global.call(Methods.Connect.self, .init(addr: addr)) else { return }
        print("connected to \(r.peerId)")
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure round-trip time to a peer (/ipfs/ping/1.0.0).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A connected peer id, or a multiaddr with /p2p/ to dial first.")
    var peer: String

    @Option(name: .shortAndLong, help: "Number of pings (1–100).")
    var count = 3

    func run() throws {
        guard (1...100).contains(count) else { throw ValidationError("--count must be between 1 and 100") }
        guard let r = try global.call(Methods.Ping.self, .init(peer: peer, count: count)) else { return }
        for (i, ms) in r.rttsMs.enumerated() { print("pong from \(r.peerId): seq=\(i + 1) time=\(formatMillis(ms))") }
        let sorted = r.rttsMs.sorted()
        if !sorted.isEmpty {
            print("rtt min/median/max = \(formatMillis(sorted.first!))/\(formatMillis(sorted[sorted.count / 2]))/\(formatMillis(sorted.last!))")
        }
    }
}

func formatMillis(_ ms: Double) -> String {
    ms < 1 ? "\(Int((ms * 1000).rounded())) µs" : ms < 100 ? String(format: "%.2f ms", ms) : "\(Int(ms.rounded())) ms"
}

/// Prints rows as left-aligned columns, the first row as the header.
func printTable(_ rows: [[String]]) {
    guard let n = rows.first?.count else { return }
    let widths = (0..<n).map { i in rows.map { $0[i].count }.max() ?? 0 }
    for r in rows {
        print(zip(r, widths).enumerated().map { i, cw in
            i == n - 1 ? cw.0 : cw.0.padding(toLength: cw.1, withPad: " ", startingAt: 0)
        }.joined(separator: "  "))
    }
}
