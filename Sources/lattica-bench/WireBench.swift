import ArgumentParser
import LatticaNode

struct WireBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Transport through the whole stack (TCP, multistream, Noise, yamux) between two in-process nodes on loopback."
    )

    @Option(help: "Dials measured for connection setup.") var dials = 200
    @Option(help: "Round trips on one open stream.") var roundTrips = 20_000
    @Option(help: "Request and round-trip payload in bytes.") var payload = 64
    @Option(help: "Requests in the throughput test.") var requests = 50_000
    @Option(help: "Requests kept in flight.") var inFlight = 1_000
    @Option(help: "Bytes through one stream.") var streamBytes = 1 << 30
    @Option(help: "Busy polling of both loops in µs (0: off; default: the daemon's).") var busyPollUs = NodeConfig.defaultBusyPollMicros
    @Flag(help: "Run both nodes on one loop thread (no cross-thread wake-ups; metrics get a _shared_loop suffix).") var sharedLoop = false

    func run() async throws {
        var o = WireBenchmark.Options()
        o.dials = dials; o.roundTrips = roundTrips; o.payload = payload
        o.requests = requests; o.inFlight = inFlight; o.streamBytes = streamBytes
        o.sharedLoop = sharedLoop
        o.busyPollMicros = busyPollUs
        for (k, v) in try await WireBenchmark.run(o) { print(k, v) }
    }
}
