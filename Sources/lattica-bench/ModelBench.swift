import ArgumentParser
import LatticaNode

struct ModelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Model transfer (/lattica/model/1.0.0) between two in-process daemons on loopback, beside the raw one-stream throughput."
    )

    @Option(help: "Model size in MB (10^6 bytes).") var megabytes = 100
    @Option(help: "log2 of the chunk size (12 to 24).") var chunkShift = 20
    @Flag(help: "Skip the raw-stream comparison.") var noRawStream = false

    func run() async throws {
        var o = ModelBenchmark.Options()
        o.megabytes = megabytes; o.chunkShift = chunkShift; o.rawStream = !noRawStream
        for (k, v) in try await ModelBenchmark.run(o) { print(k, v) }
    }
}
