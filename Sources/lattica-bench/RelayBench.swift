import ArgumentParser
import LatticaNode

struct RelayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Round trip and throughput to a peer over a Circuit Relay v2 circuit against a direct connection (in-process daemons on loopback)."
    )

    @Option(help: "Sequential echo requests per connection.") var roundTrips = 2_000
    @Option(help: "Request payload in bytes.") var payload = 64
    @Option(help: "Bytes pumped through one raw stream per connection.") var streamMiB = 64

    func run() async throws {
        var o = RelayBenchmark.Options()
        o.roundTrips = roundTrips; o.payload = payload; o.streamBytes = streamMiB << 20
        for (k, v) in try await RelayBenchmark.run(o) { print(k, v) }
    }
}
