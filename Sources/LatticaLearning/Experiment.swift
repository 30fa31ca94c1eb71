import LatticaCore

/// A seeded, deterministic decentralised-training experiment: `nodes` nodes each train an MLP on
/// their share of the data for `rounds` outer steps of `innerSteps` inner steps, averaging through
/// `Averaging.Instance`s whose messages are delivered in order by a round loop; `byzantine` of
/// them run `attack`. Reports the honest nodes' test accuracy.
public enum Experiment {
    public struct Config: Hashable, Sendable {
        public var nodes = 16
        public var byzantine = 4
        public var rounds = 60
        public var innerSteps = 10
        public var hidden: [Int] = [32]
        public var activation: Activation = .relu
        public var split: DataSplit = .dirichlet(alpha: 0.5)
        public var testFraction = 0.25
        public var attack: Attack = .none
        public var averaging: Averaging.Settings
        public var trainer = LocalTrainer.Settings()
        /// After the last round every honest node merges every node's final model once
        /// (`Averaging.Instance.finalMerge`); Byzantine nodes send crafted models to it too.
        public var finalMerge = false

        public init(method: Averaging.Method) { averaging = Averaging.Settings(method: method) }
    }

    public struct Outcome: Hashable, Sendable {
        /// Mean honest test accuracy after the last round.
        public var meanAccuracy: Double
        /// Lowest honest node's test accuracy after the last round.
        public var worstAccuracy: Double
        /// Mean honest accuracy after each outer round.
        public var perRound: [Double]
        /// Simulated node-rounds (nodes × rounds).
        public var nodeRounds: Int
        /// Contributions rejected before touching a model, over all honest nodes.
        public var rejected: Int
        /// Contributions flagged far from the aggregate, by honest nodes, from Byzantine / honest peers.
        public var farFromByzantine: Int
        public var farFromHonest: Int
        /// With `finalMerge`: the honest mean and worst accuracy after the merge (the fields
        /// above are before it).
        public var meanAfterMerge: Double?
        public var worstAfterMerge: Double?
    }

    /// Runs one seed. `data` is the whole data set (split into train/test here by `seed`).
    public static func run(_ config: Config, data: Dataset, seed: UInt64) -> Outcome {
        let (train, test) = data.trainTestSplit(testFraction: config.testFraction, seed: seed)
        return run(config, train: train, test: test, seed: seed)
    }

    public static func run(_ config: Config, train: Dataset, test: Dataset, seed: UInt64) -> Outcome {
        var rng = SeededRandom(seed: seed)
        let arch = MLPArchitecture(sizes: [train.featureCount] + config.hidden + [train.classes], activation: config.activation)
        let initial = arch.initialParameters(rng: &rng)
        let parts = config.split.assign(train, nodes: config.nodes, seed: seed)
        var ids = Array(0..<config.nodes)
        ids.shuffle(using: &rng)
        let byzantine = config.attack == .none ? Set<Int>() : Set(ids.prefix(config.byzantine))
        let honest = (0..<config.nodes).filter { !byzantine.contains($0) }
        var settings = config.averaging
        settings.networkSeed = rng.next()

        var trainers: [LocalTrainer] = []
        var instances: [Averaging.Instance] = []
        var thetas: [[Float]] = []
        var attackRngs: [SeededRandom] = []
        for k in 0..<config.nodes {
            var local = train.subset(parts[k])
            if byzantine.contains(k) && config.attack.flipsLabels { local = local.labelFlipped() }
            trainers.append(LocalTrainer(architecture: arch, data: local, settings: config.trainer, seed: rng.next()))
            instances.append(Averaging.Instance(me: k, initial: initial, settings: settings, seed: rng.next()))
            thetas.append(initial)
            attackRngs.append(rng.fork())
        }
        var ws = MLPWorkspace(arch, maxBatch: 512)
        var perRound: [Double] = []
        var rejected = 0, farByz = 0, farHonest = 0
        var worst = 0.0
        let members = Array(0..<config.nodes)
        let roundLength = Duration.seconds(60)

        for round in 0..<config.rounds {
            let now = Instant.zero + roundLength * round
            for k in 0..<config.nodes where !(byzantine.contains(k) && !config.attack.trains) {
                trainers[k].train(&thetas[k], steps: config.innerSteps)
            }
            var queue: [(from: Int, directive: Averaging.Directive)] = []
            for k in 0..<config.nodes {
                for d in instances[k].onOuterStep(step: round, parameters: thetas[k], members: members, now: now) { queue.append((k, d)) }
            }
            // Omniscient statistics of the honest models for ALIE / IPM.
            var honestMean: [Float] = [], honestStd: [Float] = [], honestModels: [[Float]] = []
            if config.attack.needsHonestModels {
                honestModels = honest.map { thetas[$0] }
                (honestMean, honestStd) = moments(honestModels)
            }
            var head = 0
            while head < queue.count {
                let (from, d) = queue[head]
                head += 1
                guard case .send(var message, let to) = d else { continue }
                if byzantine.contains(from), case .model(let s, _) = message {
                    let ctx = Attack.Context(receiverSlow: instances[to].slow, ownUpdate: thetas[from] - instances[from].slow,
                                             honestMean: honestMean, honestStd: honestStd, honestModels: honestModels, step: round)
                    if let crafted = config.attack.craft(ctx, rng: &attackRngs[from]) { message = .model(step: s, parameters: crafted) }
                }
                for reply in instances[to].onMessage(message, from: from, now: now) { queue.append((to, reply)) }
            }
            for k in 0..<config.nodes {
                for d in instances[k].finishStep(now: now + .seconds(1)) {
                    switch d {
                    case .setParameters(let p): thetas[k] = p
                    case .evidence(let e) where !byzantine.contains(k):
                        if case .distance(_, true) = e.kind { if byzantine.contains(e.peer) { farByz += 1 } else { farHonest += 1 } }
                        if case .rejected = e.kind { rejected += 1 }
                    default: break
                    }
                }
            }
            let accs = honest.map { arch.accuracy(parameters: thetas[$0], on: test, workspace: &ws) }
            perRound.append(accs.reduce(0, +) / Double(accs.count))
            worst = accs.min()!
        }
        var outcome = Outcome(meanAccuracy: perRound.last ?? 0, worstAccuracy: worst, perRound: perRound,
                              nodeRounds: config.nodes * config.rounds, rejected: rejected,
                              farFromByzantine: farByz, farFromHonest: farHonest)
        if config.finalMerge {
            // Every honest node pulls every other node's final model once (what it publishes: its
            // φ, or a crafted model from a Byzantine node) and merges them robustly.
            var honestMean: [Float] = [], honestStd: [Float] = []
            if config.attack == .alie || config.attack == .ipm { (honestMean, honestStd) = moments(honest.map { thetas[$0] }) }
            var merged: [Int: [Float]] = [:]
            for k in honest {
                var models: [(peer: Int, parameters: [Float])] = []
                for j in 0..<config.nodes where j != k {
                    var p = thetas[j]
                    if byzantine.contains(j) {
                        let ctx = Attack.Context(receiverSlow: instances[k].slow, ownUpdate: thetas[j] - instances[j].slow,
                                                 honestMean: honestMean, honestStd: honestStd)
                        if let crafted = config.attack.craft(ctx, rng: &attackRngs[j]) { p = crafted }
                    }
                    models.append((j, p))
                }
                merged[k] = instances[k].finalMerge(own: thetas[k], models).phi
            }
            let accs = honest.map { arch.accuracy(parameters: merged[$0]!, on: test, workspace: &ws) }
            outcome.meanAfterMerge = accs.reduce(0, +) / Double(accs.count)
            outcome.worstAfterMerge = accs.min()
        }
        return outcome
    }

    static func moments(_ xs: [[Float]]) -> ([Float], [Float]) { Aggregation.moments(xs) }

    /// Summary over seeds: mean of the per-seed means, lowest worst node, mean curve.
    public struct Summary: Hashable, Sendable {
        public var accuracy: Double
        public var worstNodeAccuracy: Double
        public var perRound: [Double]
        public var seeds: [UInt64]
        public var outcomes: [Outcome]
    }

    public static func run(_ config: Config, data: Dataset, seeds: [UInt64]) -> Summary {
        let outcomes = seeds.map { run(config, data: data, seed: $0) }
        let rounds = outcomes[0].perRound.count
        let curve = (0..<rounds).map { r in outcomes.map { $0.perRound[r] }.reduce(0, +) / Double(outcomes.count) }
        return Summary(accuracy: outcomes.map(\.meanAccuracy).reduce(0, +) / Double(outcomes.count),
                       worstNodeAccuracy: outcomes.map(\.worstAccuracy).min()!, perRound: curve, seeds: seeds, outcomes: outcomes)
    }
}
