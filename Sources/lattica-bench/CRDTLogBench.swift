import ArgumentParser
import LatticaNode

struct CRDTLogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crdt-log",
        abstract: "CRDT log after a long run of overwrites: log bytes, deltas, SQLite bytes and RSS, with or without compaction."
    )

    @Option(help: "Overwrites (one signed batch each).") var overwrites = 100_000
    @Option(help: "Distinct registers overwritten.") var paths = 8
    @Option(help: "Writes between two compaction timer ticks.") var writesPerTick = 50
    @Flag(help: "Never compact (the store before compaction).") var noCompaction = false

    func run() throws {
        for (k, v) in try CRDTLogBenchmark.run(overwrites: overwrites, paths: paths, compact: !noCompaction, writesPerTick: writesPerTick) {
            print(k, v)
        }
    }
}
