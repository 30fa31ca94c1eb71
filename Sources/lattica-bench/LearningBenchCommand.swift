import LatticaBLAS
import ArgumentParser
import Foundation
import LatticaData
import LatticaLearning

/// `lattica-bench learning`: the tables of ALGORITHMS.md, the Bristle and DADAO tracks and the
/// learning-layer benchmarks (Scripts/bench/learning.sh).
struct LearningBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learning",
        abstract: "Decentralised learning under attack (NoLoCo, DiLoCo, robust aggregation, Bristle, DADAO) and trainer/aggregator speed."
    )

    @Option(help: "Nodes.") var nodes = 16
    @Option(help: "Byzantine nodes (main table).") var byzantine = 4
    @Option(help: "Outer rounds.") var rounds = 60
    @Option(name: .customLong("inner-steps"), help: "Inner steps per outer round (H).") var innerSteps = 10
    @Option(help: "Seeds, comma-separated.") var seeds = "1,2,3"
    @Option(help: "Dirichlet alpha of the non-iid split.") var alpha = 0.5
    @Option(help: "Parts to run, comma-separated: table,bristle,dadao,perf (trainer and aggregation), trainer (the trainer alone).") var tracks = "table,bristle,dadao,perf"
    @Option(help: "Only the main-table rows whose name or aggregator is listed (comma-separated).") var rows: String?
    @Option(help: "Only these attacks (none or clean, sign-flip, gaussian, label-flip, ALIE, IPM, free-rider; held out: min-max, min-sum, mimic, drift, scaled, sleeper).") var attacks: String?
    @Option(help: "Where to write the SVG chart of accuracy per round.") var svg = ".build/learning-accuracy.svg"
    @Option(help: "Length of the vectors in the aggregation benchmark.") var vectorLength = 25_000_000
    @Option(help: "Bristle track iterations.") var bristleIterations = 300
    @Option(help: "Bristle track local Adam steps per iteration.") var bristleLocalSteps = 5
    @Option(help: "DADAO track horizon (time units).") var dadaoHorizon = 3000.0
    @Option(help: "Fashion-MNIST directory (IDX files, optionally .gz).") var fashion = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Reputation: a contribution is far beyond this many median distances.") var farFactor = 1.5
    @Option(help: "Reputation: a contribution below this cosine with the aggregate is far.") var minCosine = -0.5
    @Option(help: "Outer momentum of the CenteredClip + reputation row.") var oursBeta: Float?
    @Option(help: "Peers per pull (k) of the reputation rows.") var oursK: Int?
    @Option(help: "A row given as key=value pairs separated by ';' (repeatable; replaces the built-in rows; keys in LearningBench.row(spec:)), e.g. \"agg=centered-clip;beta=0.7;rep=1\".") var spec: [String] = []
    @Flag(help: "One JSON object per line and cell.") var json = false

    func run() async throws {
        LatticaBLAS.install()
        var o = LearningBench.Options()
        o.nodes = nodes; o.byzantine = byzantine; o.rounds = rounds; o.innerSteps = innerSteps
        o.seeds = seeds.split(separator: ",").compactMap { UInt64($0) }
        o.dirichletAlpha = alpha; o.json = json; o.svgPath = svg
        o.tracks = Set(tracks.split(separator: ",").map(String.init))
        o.rows = rows.map { Set($0.split(separator: ",").map(String.init)) }
        if let a = attacks {
            o.attacks = try a.split(separator: ",").map { s in
                guard let v = Attack(rawValue: String(s)) ?? (s == "clean" ? Attack.none : nil) else { throw ValidationError("unknown attack \(s)") }
                return v
            }
        }
        o.perfVectorLength = vectorLength
        o.farFactor = farFactor; o.minCosine = minCosine; o.oursBeta = oursBeta; o.oursK = oursK
        o.fashionDirectory = fashion
        if !spec.isEmpty { o.specRows = try spec.map { try LearningBench.row(spec: $0) } }
        let emit: (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let digits = try DataFiles.fixture("digits").scaled(by: 1.0 / 16)
        if o.tracks.contains("table") { LearningBench.mainTable(o, digits: digits, emit: emit) }
        if o.tracks.contains("bristle") { LearningBench.bristleTrack(o, digits: digits, iterations: bristleIterations, localSteps: bristleLocalSteps, emit: emit) }
        if o.tracks.contains("dadao") { LearningBench.dadaoTrack(o, breastCancer: try DataFiles.fixture("breast_cancer"), horizon: dadaoHorizon, emit: emit) }
        if o.tracks.contains("perf") || o.tracks.contains("trainer") {
            if !json { emit("") }
            do { try LearningBench.trainerBenchmark(o, emit: emit) } catch { emit("trainer benchmark skipped: \(error)") }
            if o.tracks.contains("perf") { LearningBench.aggregationBenchmark(o, emit: emit) }
        }
    }
}
