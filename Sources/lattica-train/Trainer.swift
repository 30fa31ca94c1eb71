import ArgumentParser
import Foundation
import LatticaAPI
import LatticaBLAS
import LatticaCore
import LatticaData
import LatticaLearning

/// `lattica-train`: the built-in trainer, a local client of latticad over the trainer API
/// (Docs/TRAINER-API.md). It runs the inner steps; the daemon does the networking and the robust
/// outer step. θ goes through a shared-memory file, never through JSON. latticad starts it for a
/// run (`lattica train join`); it can also be started by hand.
@main
struct Trainer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lattica-train", abstract: "The built-in trainer of a latticad run.")

    @Option(help: "The daemon's control socket.") var socket: String?
    @Option(name: .customLong("run"), help: "The run id (<creator peer id>.<name>).") var runID: String?
    @Flag(help: "No daemon: train one model on the whole training set (the centralised baseline), printing the held-out accuracy after every H steps as JSON.") var central = false
    @Option(help: "With --central: the data set.") var dataset = "digits"
    @Option(help: "With --central: the model.") var model = "mlp:32"
    @Option(help: "With --central: outer rounds.") var rounds = 60
    @Option(name: .customLong("inner-steps"), help: "With --central: steps per round.") var innerSteps = 10
    @Option(help: "With --central: the seed.") var seed = 1
    @Flag(help: "No daemon: the same run in the simulator (Experiment: in-process nodes, lockstep rounds), printing the honest nodes' mean held-out accuracy per round as JSON.") var simulate = false
    @Option(help: "With --simulate: nodes.") var nodes = 8
    @Option(help: "With --simulate: Byzantine nodes.") var byzantine = 0
    @Option(help: "With --simulate: their attack.") var attack = "none"
    @Option(help: "With --simulate: models aggregated per step.") var k = 8
    @Option(help: "With --simulate: aggregator.") var aggregator = "centered-clip"
    @Option(help: "With --simulate: outer α.") var alpha = 0.7
    @Option(help: "With --simulate: outer β.") var beta = 0.5
    @Option(name: .customLong("norm-bound"), help: "With --simulate: the norm bound (0: off).") var normBound = 2.0
    @Option(help: "With --simulate: Dirichlet α of the split.") var dirichlet = 0.5
    @Option(help: "With --simulate: robust, noloco, diloco or dadao (with dadao: --dataset breast-cancer --model ridge[:KAPPA] --nodes --rounds (the horizon) --seed).") var method = "robust"

    @Option(name: .customLong("gradient-rate"), help: "With --simulate --method dadao: gradient events per node and time unit (1: DADAO's).") var gradientRate = 1.0
    @Option(name: .customLong("gossip-fraction"), help: "With --simulate --method dadao: the fraction of the λ_mix gossips that happen.") var gossipFraction = 1.0

    func run() throws {
        LatticaBLAS.install()
        if central { return try runCentral() }
        if simulate { return method == "dadao" ? try runSimulatedDADAO() : try runSimulated() }
        guard let socket, let runID else { throw ValidationError("--socket and --run are required (or --central)") }
        try runAttached(socket: socket, runID: runID)
    }

    /// The centralised baseline: the same model, data split and seed, one trainer on the union of
    /// the shards, evaluated on the same held-out set.
    func runCentral() throws {
        let data = try load(dataset)
        let (train, test) = data.trainTestSplit(testFraction: 0.25, seed: UInt64(seed))
        let hidden = model.dropFirst(4).split(separator: "-").compactMap { Int($0) }
        let arch = MLPArchitecture(sizes: [train.featureCount] + hidden + [train.classes], activation: .relu)
        var rng = SeededRandom(seed: UInt64(seed))
        var theta = arch.initialParameters(rng: &rng)
        var trainer = LocalTrainer(architecture: arch, data: train, seed: UInt64(seed))
        var ws = MLPWorkspace(arch, maxBatch: 512)
        var accs: [Double] = []
        for _ in 0..<rounds {
            _ = trainer.train(&theta, steps: innerSteps)
            accs.append(arch.accuracy(parameters: theta, on: test, workspace: &ws))
        }
        print("{\"central_accuracy_per_round\": [\(accs.map { String(format: "%.4f", $0) }.joined(separator: ","))]}")
    }

    /// The same configuration in the simulator, for the network's accuracy to be compared with.
    func runSimulated() throws {
        let hidden = model.dropFirst(4).split(separator: "-").compactMap { Int($0) }
        let rule = Aggregation.Rule(named: aggregator, k: k)
        let m: Averaging.Method = method == "noloco" ? .noloco : method == "diloco" ? .diloco : .robust(k: k, rule: rule)
        var c = Experiment.Config(method: m)
        c.nodes = nodes
        c.byzantine = byzantine
        c.rounds = rounds
        c.innerSteps = innerSteps
        c.hidden = hidden
        c.split = .dirichlet(alpha: dirichlet)
        c.attack = Attack(rawValue: attack) ?? .none
        c.averaging = Averaging.Settings(method: m, alpha: Float(alpha), beta: Float(beta))
        c.averaging.useReputation = true
        c.averaging.normBound = normBound > 0 ? normBound : nil
        c.averaging.mergeRule = rule  // as the daemon: the final merge uses the run's aggregator
        c.finalMerge = true
        let o = Experiment.run(c, data: try load(dataset), seed: UInt64(seed))
        print("{\"simulated_accuracy_per_round\": [\(o.perRound.map { String(format: "%.4f", $0) }.joined(separator: ","))], \"simulated_worst\": \(o.worstAccuracy), \"simulated_after_merge\": \(o.meanAfterMerge ?? .nan), \"simulated_worst_after_merge\": \(o.worstAfterMerge ?? .nan)}")
    }

    func runAttached(socket: String, runID: String) throws {
        let client = try ControlClient(socketPath: socket, timeoutSeconds: 600)
        let a = try client.call(Methods.TrainerAttach.self, .init(run: runID, pid: Int(getpid())))
        let c = a.config
        guard !c.isExternalModel else {
            throw ValidationError("run \(a.run) has an external model (\(c.model)): its trainer is the user's own (Docs/PYTHON.md), not lattica-train")
        }
        if c.method == "dadao" { return try runDADAO(client: client, attach: a, runID: runID) }
        let shard = try Shard(a.shard)
        log("attached to \(a.run): \(c.dataset), \(c.model), \(c.aggregator), H=\(c.innerSteps), shard \(shard), from step \(a.step), attack \(a.attack)")

        // The same derivation on every node (and in the simulator's Experiment): the split of the
        // data set, the initial model and the shards all come from the run's seed.
        let data = try load(c.dataset)
        let seed = UInt64(c.seed)
        let (train, test) = data.trainTestSplit(testFraction: 0.25, seed: seed)
        let hidden = c.model.dropFirst(4).split(separator: "-").compactMap { Int($0) }
        let arch = MLPArchitecture(sizes: [train.featureCount] + hidden + [train.classes], activation: .relu)
        var rng = SeededRandom(seed: seed)
        var theta = arch.initialParameters(rng: &rng)
        let split: DataSplit = c.split == "iid" ? .iid : .dirichlet(alpha: Double(c.split.dropFirst(10)) ?? 0.5)
        let parts = split.assign(train, nodes: shard.count, seed: seed)
        var local = train.subset(parts[shard.index])
        let attack = Attack(rawValue: a.attack) ?? .none
        if attack.flipsLabels { local = local.labelFlipped() }
        var trainer = LocalTrainer(architecture: arch, data: local, seed: seed &+ UInt64(shard.index) &* 0x9E37_79B9)
        if let path = a.checkpoint, let d = FileManager.default.contents(atPath: path), d.count == 4 * theta.count {
            theta = d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            log("resumed from the checkpoint at step \(a.step)")
        }
        var ws = MLPWorkspace(arch, maxBatch: 512)

        // The shared-memory file: tmpfs, private to this user, sized for θ.
        let shm = "/dev/shm/lattica-train-\(getpid())"
        unlink(shm)  // a stale file of an earlier process with this pid
        let fd = open(shm, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(4 * theta.count)) == 0 else { throw ValidationError("cannot create \(shm)") }
        defer { close(fd); unlink(shm) }
        func put(_ p: [Float]) { p.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 0) } }
        func get() -> [Float] {
            var p = [Float](repeating: 0, count: theta.count)
            p.withUnsafeMutableBytes { _ = pread(fd, $0.baseAddress, $0.count, 0) }
            return p
        }
        put(theta)
        _ = try client.call(Methods.TrainerOuterStep.self, .init(run: runID, step: a.step, shm: shm, count: theta.count, initial: true))
        var accuracy = arch.accuracy(parameters: theta, on: test, workspace: &ws)
        var lastCycle: Double?
        var step = a.step
        while step < c.rounds {
            let cycleStart = Date()
            let loss = attack.trains ? Double(trainer.train(&theta, steps: c.innerSteps)) : .nan
            // Test nets: a straggler whose whole step cycle (inner loop and outer step) takes
            // `slowdown` times as long as the last one it measured.
            if a.slowdown > 1, let last = lastCycle { Thread.sleep(forTimeInterval: last * (a.slowdown - 1)) }
            put(theta)
            let r = try client.call(Methods.TrainerOuterStep.self, .init(run: runID, step: step, shm: shm, count: theta.count,
                                                                          loss: loss.isFinite ? loss : nil, accuracy: accuracy))
            theta = get()
            if a.slowdown > 1 { lastCycle = min(10, Date().timeIntervalSince(cycleStart) / (lastCycle == nil ? 1 : a.slowdown)) }
            accuracy = arch.accuracy(parameters: theta, on: test, workspace: &ws)
            if r.step > step { log("caught up with the run: from step \(step + 1) to step \(r.step + 1)") }
            step = max(step, r.step) + 1
            log("step \(step)/\(c.rounds): loss \(String(format: "%.4f", loss)), held-out accuracy \(String(format: "%.4f", accuracy)), partners \(r.partners.count), rejected \(r.rejected), \(Int(r.ms)) ms")
        }
        // The final global merge: every member's final model, once, merged robustly. Skipped when
        // this trainer resumes after a merge it already did (the checkpoint is past the last step).
        var before: Double?
        if c.finalMerge, a.step <= c.rounds {
            before = accuracy
            put(theta)
            let m = try client.call(Methods.TrainerFinalMerge.self, .init(run: runID, shm: shm, count: theta.count))
            theta = get()
            accuracy = arch.accuracy(parameters: theta, on: test, workspace: &ws)
            log("final merge of \(m.partners.count + 1) models in \(Int(m.ms)) ms: held-out accuracy \(String(format: "%.4f", before ?? 0)) -> \(String(format: "%.4f", accuracy))")
        }
        _ = try client.call(Methods.TrainerDone.self, .init(run: runID, accuracy: accuracy, accuracyBeforeMerge: before))
        log("done: held-out accuracy \(String(format: "%.4f", accuracy))")
    }

    func load(_ spec: String) throws -> Dataset {
        // Scaled to [0, 1] as the simulator's experiments (lattica-bench learning) use it.
        if spec == "digits" { return try DataFiles.fixture("digits").scaled(by: 1.0 / 16) }
        if spec == "breast-cancer" { return try DataFiles.fixture("breast_cancer") }
        if spec == "fashion-mnist" {
            // Debian's dataset-fashion-mnist: the 60,000 training images (the run splits them
            // into its own train and held-out sets, as for every data set).
            let dir = "/usr/share/datasets/fashion-mnist"
            func path(_ base: String) -> String {
                FileManager.default.fileExists(atPath: "\(dir)/\(base)") ? "\(dir)/\(base)" : "\(dir)/\(base).gz"
            }
            guard FileManager.default.fileExists(atPath: path("train-images-idx3-ubyte")) else {
                throw ValidationError("fashion-mnist needs Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist): \(dir) is missing")
            }
            return try DataFiles.readIDX(images: path("train-images-idx3-ubyte"), labels: path("train-labels-idx1-ubyte"))
        }
        if spec.hasPrefix("csv:") { return try DataFiles.readCSV(String(spec.dropFirst(4))) }
        if spec.hasPrefix("idx:") {
            // idx:IMAGES,LABELS
            let p = spec.dropFirst(4).split(separator: ",")
            guard p.count == 2 else { throw ValidationError("idx data sets are idx:IMAGES,LABELS") }
            return try DataFiles.readIDX(images: String(p[0]), labels: String(p[1]))
        }
        throw ValidationError("unknown data set \(spec)")
    }

    func log(_ s: String) {
        FileHandle.standardError.write(Data("\(ISO8601DateFormatter().string(from: Date())) lattica-train: \(s)\n".utf8))
    }
}
