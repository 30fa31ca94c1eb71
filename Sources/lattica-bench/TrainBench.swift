import ArgumentParser
import LatticaNode

struct TrainBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "One outer step of a large model between in-process daemons on loopback: pulls from every peer, robust aggregation, step."
    )

    @Option(help: "Parameters (float32) of the model: 25,000,000 is 100 MB.") var parameters = 25_000_000
    @Option(help: "Daemons in the run (node 0 pulls from the others).") var peers = 8
    @Option(help: "mean, median, trimmed-mean, krum, centered-clip or flag.") var aggregator = "flag"
    @Option(help: "Repetitions (medians are printed).") var runs = 3

    func run() async throws {
        for (k, v) in try await TrainingBenchmark.run(parameters: parameters, peers: peers, aggregator: aggregator, runs: runs) { print(k, v) }
    }
}
