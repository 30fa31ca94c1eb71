import ArgumentParser

/// `lattica-bench <subsystem>`: one subcommand per teammate's layer.
@main
struct LatticaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lattica-bench",
        abstract: "Benchmarks of the Lattica-Swift layers.",
        subcommands: [UVBench.self, WireBench.self, RelayBench.self, DHTBench.self, CRDTBench.self, CRDTLogBench.self, TrainBench.self, LearningBenchCommand.self, ModelBench.self]
    )
}
