import ArgumentParser
import LatticaNode

struct WireBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Transport through the whole stack (TCP, multistream, Noise, yamux) between two in-process nodes on loopback."
    )

    @Option(help: "Dials measured for connection setup.") var dials = 200
    @Option(help: "Raw-stream echo round trips on one open stream (0: skip).") var roundTrips = 20_000
    @Option(help: "Sequential request/response round trips, Swarm.request one at a time (0: skip).") var rrRoundTrips = 5_000
    @Option(help: "Request and round-trip payload in bytes.") var payload = 64
    @Option(help: "Requests in the sustained-window test (0: skip).") var requests = 20_000
    @Option(help: "Window: requests kept outstanding (a new one is issued whenever one completes).") var inFlight = 1_000
    @Option(help: "Bytes through one stream (0: skip).") var streamBytes = 256 << 20
    @Option(help: "Busy polling of both loops in µs (0: off; default: the daemon's).") var busyPollUs = NodeConfig.defaultBusyPollMicros
    @Flag(help: "Run both nodes on one loop thread (no cross-thread wake-ups; metrics get a _shared_loop suffix).") var sharedLoop = false

    func run() async throws {
        var o = WireBenchmark.Options()
        o.dials = dials; o.roundTrips = roundTrips; o.rrRoundTrips = rrRoundTrips; o.payload = payload
        o.requests = requests; o.inFlight = inFlight; o.streamBytes = streamBytes
        o.sharedLoop = sharedLoop
        o.busyPollMicros = busyPollUs
        for (k, v) in try await WireBenchmark.run(o) { print(k, v) }
    }
}
