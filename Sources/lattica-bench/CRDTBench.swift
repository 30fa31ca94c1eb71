import ArgumentParser
import LatticaNode

struct CRDTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crdt",
        abstract: "CRDT store: signed deltas applied per second (in memory and persisted in SQLite), and a fresh node's catch-up over loopback."
    )

    @Option(help: "Deltas per measurement.") var deltas = 100_000
    @Option(help: "Deltas per signed batch (one signature and one transaction each).") var batch = 500
    @Option(help: "Deltas a fresh node catches up on (0: skip).") var catchUp = 100_000
    @Option(help: "Repetitions (medians are printed).") var runs = 3

    func run() async throws {
        for (k, v) in try await CRDTBenchmark.run(deltas: deltas, batchSize: batch, catchUp: catchUp, runs: runs) { print(k, v) }
    }
}
