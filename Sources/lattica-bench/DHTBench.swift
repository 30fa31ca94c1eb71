import ArgumentParser
import LatticaNode

struct DHTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dht",
        abstract: "DHT put, get and late-joiner get between in-process nodes on loopback (shaped like Scripts/interop/anchors.py)."
    )

    @Option(help: "Keys put and read.") var keys = 50
    @Flag(help: "Kademlia on /lattica/1.0.0 with Lattica's value wrapping.") var lattica = false

    func run() async throws {
        for (k, v) in try await DHTBenchmark.run(keys: keys, latticaMode: lattica) { print(k, v) }
    }
}
