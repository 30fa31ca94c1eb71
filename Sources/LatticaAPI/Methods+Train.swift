/// Training: the user's methods (`lattica train …`) and the local trainer API that `lattica-train`
/// (or any trainer, Docs/TRAINER-API.md) speaks to its daemon. Tensors never travel in JSON: the
/// trainer puts θ in a shared-memory file (tmpfs, 0600) and names it in `trainer.outer_step`;
/// the daemon reads it, averages with peers, and writes the new θ back into the same file.
extension Methods {
    /// `train.start`: writes a new run's config to the store (`run/<id>/config`, by us, its
    /// creator), joins it and starts the local trainer.
    public enum TrainStart: ControlMethod {
        public static let name = "train.start"
        public typealias Result = TrainJoinResult
        public struct Params: ControlParams, Equatable {
            /// The run's name (`[A-Za-z0-9_-]`); the run id is `<our peer id>.<name>`.
            public var name: String
            public var config: RunConfig
            public var shard: String?
            public var spawn: Bool?
            public enum CodingKeys: String, CodingKey, CaseIterable { case name, config, shard, spawn }
            public static let maxLengths = ["name": 64, "shard": 16]
            public init(name: String, config: RunConfig, shard: String? = nil, spawn: Bool? = nil) {
                self.name = name; self.config = config; self.shard = shard; self.spawn = spawn
            }
            public func validate() throws(ControlErrorBody) {
                try require("name", name)
                guard name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }) else {
                    throw .badRequest("'name' may only hold A-Z a-z 0-9 - _")
                }
                try config.validate()
                if let shard { _ = try Shard(shard) }
            }
        }
    }

    /// `train.join RUN`: reads the run's config from the store, joins its members and starts the
    /// local trainer on shard `i/n` of the data set.
    public enum TrainJoin: ControlMethod {
        public static let name = "train.join"
        public typealias Result = TrainJoinResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var shard: String?
            public var spawn: Bool?
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, shard, spawn }
            public static let maxLengths = ["run": 128, "shard": 16]
            public init(run: String, shard: String? = nil, spawn: Bool? = nil) { self.run = run; self.shard = shard; self.spawn = spawn }
            public func validate() throws(ControlErrorBody) { try require("run", run); if let shard { _ = try Shard(shard) } }
        }
    }

    public enum TrainStatus: ControlMethod {
        public static let name = "train.status"
        public typealias Params = NoParams
        public typealias Result = TrainStatusResult
    }

    public enum TrainStop: ControlMethod {
        public static let name = "train.stop"
        public typealias Result = TrainStatusResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public enum CodingKeys: String, CodingKey, CaseIterable { case run }
            public static let maxLengths = ["run": 128]
            public init(run: String) { self.run = run }
            public func validate() throws(ControlErrorBody) { try require("run", run) }
        }
    }

    /// Trainer API: a trainer claims the daemon's run slot and gets the run's config, its shard
    /// and where to resume (a checkpoint of the slow weights, if one exists).
    public enum TrainerAttach: ControlMethod {
        public static let name = "trainer.attach"
        public typealias Result = TrainerAttachResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            /// The trainer API version the trainer speaks (`TrainerAPI.version`).
            public var apiVersion: Int
            public var pid: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, apiVersion = "api_version", pid }
            public static let ranges = ["api_version": 0...1_000, "pid": 1...4_194_304]
            public static let maxLengths = ["run": 128]
            public init(run: String, apiVersion: Int = TrainerAPI.version, pid: Int? = nil) {
                self.run = run; self.apiVersion = apiVersion; self.pid = pid
            }
            public func validate() throws(ControlErrorBody) { try require("run", run); try check("api_version", apiVersion); try check("pid", pid) }
        }
    }

    /// Trainer API: the inner loop of `step` is done and θ is in `shm` (`count` float32, little
    /// endian). Answers when the outer step is done and the new θ is in `shm`.
    public enum TrainerOuterStep: ControlMethod {
        public static let name = "trainer.outer_step"
        public typealias Result = OuterStepResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var step: Int
            public var shm: String
            public var count: Int
            /// The inner loop's mean loss and the held-out accuracy of θ before the outer step.
            public var loss: Double?
            public var accuracy: Double?
            /// θ in `shm` is the starting point φ (before any inner step, or from a checkpoint):
            /// the daemon takes it as the slow weights and answers at once.
            public var initial: Bool?
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, step, shm, count, loss, accuracy, initial }
            public static let ranges = ["step": 0...10_000_000, "count": 1...(1 << 30)]
            public static let maxLengths = ["run": 128, "shm": 256]
            public init(run: String, step: Int, shm: String, count: Int, loss: Double? = nil, accuracy: Double? = nil, initial: Bool? = nil) {
                self.run = run; self.step = step; self.shm = shm; self.count = count; self.loss = loss; self.accuracy = accuracy
                self.initial = initial
            }
            public func validate() throws(ControlErrorBody) {
                try require("run", run); try check("step", step); try check("count", count)
                guard TrainerAPI.isSharedMemoryPath(shm) else {
                    throw .badRequest("'shm' must be a file under /dev/shm/ or a memfd of the trainer as /proc/<pid>/fd/<n>")
                }
                for (f, v) in [("loss", loss), ("accuracy", accuracy)] where v.map({ !$0.isFinite }) == true {
                    throw .badRequest("'\(f)' must be a finite number")
                }
            }
        }
    }

    /// Trainer API: the trainer is done (the run's rounds are over) with a final held-out accuracy.
    public enum TrainerDone: ControlMethod {
        public static let name = "trainer.done"
        public typealias Result = TrainStatusResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var accuracy: Double?
            /// With a final merge: the held-out accuracy before it (`accuracy` is after it).
            public var accuracyBeforeMerge: Double?
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, accuracy, accuracyBeforeMerge = "accuracy_before_merge" }
            public static let maxLengths = ["run": 128]
            public init(run: String, accuracy: Double?, accuracyBeforeMerge: Double? = nil) {
                self.run = run; self.accuracy = accuracy; self.accuracyBeforeMerge = accuracyBeforeMerge
            }
            public func validate() throws(ControlErrorBody) {
                try require("run", run)
                for (f, v) in [("accuracy", accuracy), ("accuracy_before_merge", accuracyBeforeMerge)] where v.map({ !$0.isFinite }) == true {
                    throw .badRequest("'\(f)' must be a finite number")
                }
            }
        }
    }

    /// Trainer API: the run's rounds are over and θ (the final φ) is in `shm`: the daemon pulls
    /// every connected member's final model once, merges them robustly with ours (the run's rule,
    /// reputation) and answers with the merged θ in `shm`. Members that do not reach the end
    /// within the merge deadline are left out.
    public enum TrainerFinalMerge: ControlMethod {
        public static let name = "trainer.final_merge"
        public typealias Result = OuterStepResult
        public struct Params: ControlParams, Equatable {
            public var run: String
            public var shm: String
            public var count: Int
            public enum CodingKeys: String, CodingKey, CaseIterable { case run, shm, count }
            public static let ranges = ["count": 1...(1 << 30)]
            public static let maxLengths = ["run": 128, "shm": 256]
            public init(run: String, shm: String, count: Int) { self.run = run; self.shm = shm; self.count = count }
            public func validate() throws(ControlErrorBody) {
                try require("run", run); try check("count", count)
                guard TrainerAPI.isSharedMemoryPath(shm) else {
                    throw .badRequest("'shm' must be a file under /dev/shm/ or a memfd of the trainer as /proc/<pid>/fd/<n>")
                }
            }
        }
    }
}

public enum TrainerAPI {
    /// Bump when a trainer method changes incompatibly; the daemon refuses other versions.
    public static let version = 1

    /// A file under /dev/shm/, or a memfd named `/proc/<pid>/fd/<n>` (Docs/TRAINER-API.md).
    public static func isSharedMemoryPath(_ shm: String) -> Bool {
        if procFD(shm) != nil { return true }
        return shm.hasPrefix("/dev/shm/") && !shm.contains("/../") && !shm.hasSuffix("/..")
    }

    /// (pid, fd) of a path that is exactly `/proc/<pid>/fd/<n>` (decimal, no sign); nil otherwise.
    public static func procFD(_ path: String) -> (pid: Int, fd: Int)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "proc", parts[3] == "fd" else { return nil }
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int(s)
        }
        guard let pid = number(parts[2]), let fd = number(parts[4]) else { return nil }
        return (pid, fd)
    }
}

/// A run's configuration, as it is stored in `run/<id>/config` (one map key per field).
public struct RunConfig: Codable, Sendable, Equatable {
    /// `digits` (built in), `csv:PATH` or `idx:PATH`.
    public var dataset: String
    /// `mlp:64-32-10` style (hidden sizes; input and output sizes come from the data set), or
    /// `mlp:32` for one hidden layer of 32.
    public var model: String
    /// `mean`, `median`, `trimmed-mean`, `krum`, `centered-clip`, `flag`.
    public var aggregator: String
    public var innerSteps: Int
    public var alpha: Double
    public var beta: Double
    public var k: Int
    public var rounds: Int
    public var seed: Int
    /// How the data set is shared among `nodes` shards: `iid` or `dirichlet:A`.
    public var split: String
    public var nodes: Int
    public var reputation: Bool
    /// Outer steps a pulled model may be behind or ahead of ours.
    public var staleness: Int
    /// `robust` (pull k − 1 peers, aggregate with `aggregator` and reputation), `noloco` (NoLoCo
    /// pairs: one partner per step from a permutation seeded by the run's seed and the step, mean
    /// of the two) or `diloco` (every connected member, mean: the all-reduce baseline).
    public var method: String
    /// At the run's end every node pulls every member's final model once and merges them with
    /// the run's rule (`trainer.final_merge`).
    public var finalMerge: Bool
    /// Each delta longer than this × the lower median delta norm of the step is scaled down to it
    /// before aggregating (0: off). Chosen with β on tuning seeds 101–103 (Docs/LEARNING.md).
    public var normBound: Double
    /// `dadao` only: wall-clock milliseconds per DADAO time unit (a node's gradient clock ticks
    /// once per unit on average; `rounds` is the horizon in units).
    public var timeUnitMs: Int

    enum CodingKeys: String, CodingKey {
        case dataset, model, aggregator, innerSteps = "inner_steps", alpha, beta, k, rounds, seed, split, nodes, reputation, staleness
        case method, finalMerge = "final_merge", normBound = "norm_bound", timeUnitMs = "time_unit_ms"
    }

    /// `dadao`: DADAO's asynchronous Poisson-clock gossip (Docs/LEARNING.md), for the convex
    /// models `ridge[:KAPPA]` and `softmax[:L2]` only.
    public static let methods = ["robust", "noloco", "diloco", "dadao"]

    public init(dataset: String = "digits", model: String = "mlp:32", aggregator: String = "centered-clip", innerSteps: Int = 10,
                alpha: Double = 0.7, beta: Double = 0.5, k: Int = 8, rounds: Int = 60, seed: Int = 1, split: String = "dirichlet:0.5",
                nodes: Int = 8, reputation: Bool = true, staleness: Int = 2, method: String = "robust", finalMerge: Bool = true,
                normBound: Double = 2, timeUnitMs: Int = 10) {
        self.dataset = dataset; self.model = model; self.aggregator = aggregator; self.innerSteps = innerSteps; self.alpha = alpha
        self.beta = beta; self.k = k; self.rounds = rounds; self.seed = seed; self.split = split; self.nodes = nodes
        self.reputation = reputation; self.staleness = staleness; self.method = method; self.finalMerge = finalMerge
        self.normBound = normBound; self.timeUnitMs = timeUnitMs
    }

    /// `method`, `final_merge`, `norm_bound` and `time_unit_ms` came in later releases: absent,
    /// they take their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataset = try c.decode(String.self, forKey: .dataset)
        model = try c.decode(String.self, forKey: .model)
        aggregator = try c.decode(String.self, forKey: .aggregator)
        innerSteps = try c.decode(Int.self, forKey: .innerSteps)
        alpha = try c.decode(Double.self, forKey: .alpha)
        beta = try c.decode(Double.self, forKey: .beta)
        k = try c.decode(Int.self, forKey: .k)
        rounds = try c.decode(Int.self, forKey: .rounds)
        seed = try c.decode(Int.self, forKey: .seed)
        split = try c.decode(String.self, forKey: .split)
        nodes = try c.decode(Int.self, forKey: .nodes)
        reputation = try c.decode(Bool.self, forKey: .reputation)
        staleness = try c.decode(Int.self, forKey: .staleness)
        method = try c.decodeIfPresent(String.self, forKey: .method) ?? "robust"
        finalMerge = try c.decodeIfPresent(Bool.self, forKey: .finalMerge) ?? true
        normBound = try c.decodeIfPresent(Double.self, forKey: .normBound) ?? 2
        timeUnitMs = try c.decodeIfPresent(Int.self, forKey: .timeUnitMs) ?? 10
    }

    /// The model is the trainer's own (a PyTorch client, Docs/PYTHON.md): `external` or
    /// `external:NAME`; the daemon takes its size from the first θ.
    public var isExternalModel: Bool { model == "external" || model.hasPrefix("external:") }

    /// `ridge` or `ridge:KAPPA`: the DADAO track's ridge regression (ALGORITHMS.md) with the
    /// ridge term chosen for condition number κ (default 1709); nil for another model.
    public var ridgeConditionNumber: Double? {
        if model == "ridge" { return 1709 }
        guard model.hasPrefix("ridge:"), let k = Double(model.dropFirst(6)), k.isFinite, k >= 1.5, k <= 1e7 else { return nil }
        return k
    }

    /// `softmax` or `softmax:L2`: multinomial logistic regression with an L2 term (default 1e-3;
    /// L2 in 1e-8...100), the convex classifier of `dadao` runs; nil for another model.
    public var softmaxL2: Double? {
        if model == "softmax" { return 1e-3 }
        guard model.hasPrefix("softmax:"), let l = Double(model.dropFirst(8)), l.isFinite, l >= 1e-8, l <= 100 else { return nil }
        return l
    }

    /// A convex model that only `dadao` runs take (ridge, softmax).
    public var isConvexModel: Bool { ridgeConditionNumber != nil || softmaxL2 != nil }

    public static let aggregators = ["mean", "median", "trimmed-mean", "krum", "centered-clip", "flag"]

    public func validate() throws(ControlErrorBody) {
        func range(_ f: String, _ v: Int, _ r: ClosedRange<Int>) throws(ControlErrorBody) { if !r.contains(v) { throw .outOfRange(f, v, r) } }
        try range("inner_steps", innerSteps, 1...100_000)
        try range("k", k, 1...64)
        try range("rounds", rounds, 1...1_000_000)
        try range("seed", seed, 0...Int(Int32.max))
        try range("nodes", nodes, 1...4096)
        try range("staleness", staleness, 0...100)
        try range("time_unit_ms", timeUnitMs, 1...60_000)
        guard alpha.isFinite, (0...10).contains(alpha) else { throw .badRequest("'alpha' must be in 0...10") }
        guard beta.isFinite, (0..<1).contains(beta) else { throw .badRequest("'beta' must be in 0..<1") }
        guard normBound.isFinite, normBound == 0 || (1...100).contains(normBound) else { throw .badRequest("'norm_bound' must be 0 (off) or in 1...100") }
        guard Self.aggregators.contains(aggregator) else { throw .badRequest("'aggregator' must be one of \(Self.aggregators.joined(separator: ", "))") }
        guard dataset == "digits" || dataset == "breast-cancer" || dataset == "fashion-mnist" || dataset.hasPrefix("csv:") || dataset.hasPrefix("idx:") || dataset.hasPrefix("external:") else {
            throw .badRequest("'dataset' must be digits, breast-cancer, fashion-mnist, csv:PATH, idx:IMAGES,LABELS or external:NAME")
        }
        guard dataset.utf8.count <= 1024 else { throw .badRequest("'dataset' is too long") }
        guard model.count <= 64, isConvexModel || isExternalModel && model.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
                || model.hasPrefix("mlp:") && model.dropFirst(4).split(separator: "-").allSatisfy({ Int($0).map { (1...4096).contains($0) } ?? false })
        else { throw .badRequest("'model' must look like mlp:64-32 (hidden layer sizes, 1...4096), ridge or ridge:KAPPA (κ in 1.5...1e7), softmax or softmax:L2 (L2 in 1e-8...100), or external:NAME for a trainer's own model") }
        guard Self.methods.contains(method) else { throw .badRequest("'method' must be one of \(Self.methods.joined(separator: ", "))") }
        guard (method == "dadao") == isConvexModel else {
            throw .badRequest("method 'dadao' takes a convex model (ridge[:KAPPA], softmax[:L2]), and those only method 'dadao'")
        }
        guard split == "iid" || (split.hasPrefix("dirichlet:") && Double(split.dropFirst(10)).map { $0 > 0 && $0 <= 1000 } == true) else {
            throw .badRequest("'split' must be iid or dirichlet:A with A in (0, 1000]")
        }
    }
}

/// `i/n`: this node trains on shard i of n.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(_ s: String) throws(ControlErrorBody) {
        let p = s.split(separator: "/")
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]), n >= 1, n <= 4096, i >= 0, i < n else {
            throw .badRequest("'shard' must be i/n with 0 <= i < n <= 4096")
        }
        index = i; count = n
    }
    public var description: String { "\(index)/\(count)" }
}

public struct TrainJoinResult: Codable, Sendable, Equatable {
    public var run: String
    public var shard: String
    public var trainerPid: Int?
    enum CodingKeys: String, CodingKey { case run, shard, trainerPid = "trainer_pid" }
    public init(run: String, shard: String, trainerPid: Int?) { self.run = run; self.shard = shard; self.trainerPid = trainerPid }
}

public struct TrainerAttachResult: Codable, Sendable, Equatable {
    public var run: String
    public var config: RunConfig
    public var shard: String
    /// The outer step to start at (0, or after the last checkpoint).
    public var step: Int
    /// A file holding the checkpointed slow weights (float32 LE) to start from, if any.
    public var checkpoint: String?
    /// Test nets and demos only: the attack this node runs (`none` otherwise).
    public var attack: String
    /// Test nets only: how many times slower the inner loop should run (1: as fast as it can).
    public var slowdown: Double
    enum CodingKeys: String, CodingKey { case run, config, shard, step, checkpoint, attack, slowdown }
    public init(run: String, config: RunConfig, shard: String, step: Int, checkpoint: String?, attack: String, slowdown: Double = 1) {
        self.run = run; self.config = config; self.shard = shard; self.step = step; self.checkpoint = checkpoint; self.attack = attack
        self.slowdown = slowdown
    }
}

public struct OuterStepResult: Codable, Sendable, Equatable {
    public var step: Int
    /// Peers whose models were aggregated, and contributions rejected or deprioritised.
    public var partners: [String]
    public var rejected: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var ms: Double
    /// Per partner (in `partners` order): how many outer steps its model was behind ours (negative:
    /// ahead); all 0 when every node is in step.
    public var staleness: [Int]?
    /// The round deadline this step had (it adapts to the measured pull times and step cycle).
    public var deadlineMs: Double?
    /// How the daemon read θ and wrote the answer: `mapped` (a memfd sealed against shrinking:
    /// mapped, θ read and the answer written in place) or `read` (pread/pwrite). Docs/TRAINER-API.md.
    public var sharedMemory: String?
    enum CodingKeys: String, CodingKey {
        case step, partners, rejected, bytesIn = "bytes_in", bytesOut = "bytes_out", ms, staleness, deadlineMs = "deadline_ms"
        case sharedMemory = "shared_memory"
    }
    public init(step: Int, partners: [String], rejected: Int, bytesIn: Int, bytesOut: Int, ms: Double) {
        self.step = step; self.partners = partners; self.rejected = rejected; self.bytesIn = bytesIn; self.bytesOut = bytesOut; self.ms = ms
    }
}

public struct TrainStatusResult: Codable, Sendable, Equatable {
    public struct Peer: Codable, Sendable, Equatable {
        public var peerId: String
        public var reputation: Double
        public var rejected: Int
        enum CodingKeys: String, CodingKey { case peerId = "peer_id", reputation, rejected }
        public init(peerId: String, reputation: Double, rejected: Int) { self.peerId = peerId; self.reputation = reputation; self.rejected = rejected }
    }
    public struct Run: Codable, Sendable, Equatable {
        public var run: String
        public var shard: String
        public var step: Int
        public var rounds: Int
        public var loss: Double?
        public var accuracy: Double?
        public var accuracyPerStep: [Double]
        public var partners: [String]
        public var lastOuterStepSeconds: Double?
        public var bytesIn: Int
        public var bytesOut: Int
        public var rejected: Int
        public var members: Int
        public var trainer: String
        public var attack: String
        public var peers: [Peer]
        public var method: String?
        /// After a final merge: the held-out accuracy before it (`accuracy` is after it).
        public var accuracyBeforeMerge: Double?
        public var merged: Bool?
        enum CodingKeys: String, CodingKey {
            case run, shard, step, rounds, loss, accuracy, accuracyPerStep = "accuracy_per_step", partners
            case lastOuterStepSeconds = "last_outer_step_s", bytesIn = "bytes_in", bytesOut = "bytes_out", rejected, members, trainer, attack, peers
            case method, accuracyBeforeMerge = "accuracy_before_merge", merged
        }
        public init(run: String, shard: String, step: Int, rounds: Int, loss: Double?, accuracy: Double?, accuracyPerStep: [Double],
                    partners: [String], lastOuterStepSeconds: Double?, bytesIn: Int, bytesOut: Int, rejected: Int, members: Int,
                    trainer: String, attack: String, peers: [Peer]) {
            self.run = run; self.shard = shard; self.step = step; self.rounds = rounds; self.loss = loss; self.accuracy = accuracy
            self.accuracyPerStep = accuracyPerStep; self.partners = partners; self.lastOuterStepSeconds = lastOuterStepSeconds
            self.bytesIn = bytesIn; self.bytesOut = bytesOut; self.rejected = rejected; self.members = members; self.trainer = trainer
            self.attack = attack; self.peers = peers
        }
    }
    public var runs: [Run]
    public init(runs: [Run]) { self.runs = runs }
}
