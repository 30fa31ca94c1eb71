import LatticaCore

/// The Bristle track of ALGORITHMS.md: transfer learning where a hidden layer pretrained on 20% of
/// digits is frozen and only the output layer (softmax regression on the hidden features) trains;
/// 16 nodes with 4 classes each; every iteration each node takes a local Adam step and then
/// combines the output layers of its peers with the chosen rule.
extension Experiment {
    public enum BristleRule: String, Hashable, Sendable, CaseIterable { case mean, median, flag, bristle }

    public struct BristleConfig: Hashable, Sendable {
        public var nodes = 16
        public var attackers = 4
        public var iterations = 300
        /// Local Adam steps per iteration.
        public var localSteps = 5
        public var classesPerNode = 4
        public var attack: Attack = .none
        public var rule: BristleRule = .bristle
        public var learningRate: Float = 1e-3
        public var batchSize = 16
        public var hidden = 32
        public var pretrainFraction = 0.2
        public init() {}
    }

    public static func runBristle(_ c: BristleConfig, data: Dataset, seed: UInt64) -> Double {
        var rng = SeededRandom(seed: seed)
        var all = Array(0..<data.count)
        all.shuffle(using: &rng)
        let cut = Int(Double(data.count) * c.pretrainFraction)
        // 1. Pretrain the hidden layer centrally on 20% and freeze it.
        let pre = data.subset(all[..<cut])
        let full = MLPArchitecture(sizes: [data.featureCount, c.hidden, data.classes])
        var fp = full.initialParameters(rng: &rng)
        var ps = LocalTrainer.Settings(); ps.batchSize = 32
        var pt = LocalTrainer(architecture: full, data: pre, settings: ps, seed: rng.next())
        pt.train(&fp, steps: 600)
        let features = hiddenFeatures(full, fp, data.subset(all[cut...]))
        let (train, test) = features.trainTestSplit(testFraction: 0.25, seed: seed)
        // 2. Nodes: 4 classes each; 20% of each node's rows are its validation set.
        let head = MLPArchitecture(sizes: [c.hidden, data.classes])
        let parts = DataSplit.classesPerNode(c.classesPerNode).assign(train, nodes: c.nodes, seed: seed)
        var ids = Array(0..<c.nodes)
        ids.shuffle(using: &rng)
        let bad = c.attack == .none ? Set<Int>() : Set(ids.prefix(c.attackers))
        let honest = (0..<c.nodes).filter { !bad.contains($0) }
        let initial = head.initialParameters(rng: &rng)
        var models = [[Float]](repeating: initial, count: c.nodes)
        var trainers: [LocalTrainer] = []
        var validation: [Dataset] = []
        var settings = LocalTrainer.Settings(); settings.learningRate = c.learningRate; settings.batchSize = c.batchSize; settings.clipNorm = nil
        for k in 0..<c.nodes {
            let nv = max(1, parts[k].count / 5)
            var local = train.subset(parts[k].dropFirst(nv))
            if bad.contains(k) && c.attack.flipsLabels { local = local.labelFlipped() }
            trainers.append(LocalTrainer(architecture: head, data: local, settings: settings, seed: rng.next()))
            validation.append(train.subset(parts[k].prefix(nv)))
        }
        var ws = MLPWorkspace(head, maxBatch: 256)
        let classes = data.classes
        let layout: (Int) -> [Int] = { cl in (0..<c.hidden).map { $0 * classes + cl } + [c.hidden * classes + cl] }
        for _ in 0..<c.iterations {
            for k in 0..<c.nodes { trainers[k].train(&models[k], steps: c.localSteps) }
            // What every node sends this iteration.
            var sent = models
            if c.attack == .gaussian || c.attack == .alie {
                let (mean, std) = moments(honest.map { models[$0] })
                for b in bad {
                    sent[b] = c.attack == .gaussian ? (0..<mean.count).map { _ in Float(rng.nextGaussian()) }
                                                    : (0..<mean.count).map { mean[$0] - std[$0] }
                }
            }
            var next = models
            for k in honest {
                let peers = (0..<c.nodes).filter { $0 != k }.map { sent[$0] }
                switch c.rule {
                case .mean: next[k] = Aggregation.aggregate([models[k]] + peers, rule: .mean)
                case .median: next[k] = Aggregation.aggregate([models[k]] + peers, rule: .median)
                case .flag: next[k] = Aggregation.aggregate([models[k]] + peers, rule: .flag(r: 2, iterations: 1))
                case .bristle:
                    let chosen = Bristle.prioritize(own: models[k], peers: peers, rng: &rng).map { peers[$0] }
                    let v = validation[k]
                    func f1(_ m: [Float]) -> [Double] {
                        Bristle.f1PerClass(predicted: head.predict(parameters: m, x: v.features, count: v.count, workspace: &ws), labels: v.labels, classes: classes)
                    }
                    next[k] = Bristle.integrate(own: models[k], ownF1: f1(models[k]), peers: chosen, peerF1: chosen.map(f1), classes: classes,
                                                present: Array(Set(v.labels.map { Int($0) })).sorted(), layout: layout)
                }
            }
            models = next
        }
        let accs = honest.map { head.accuracy(parameters: models[$0], on: test, workspace: &ws) }
        return accs.reduce(0, +) / Double(accs.count)
    }

    /// ReLU activations of the first layer of `arch` for every row.
    static func hiddenFeatures(_ arch: MLPArchitecture, _ p: [Float], _ d: Dataset) -> Dataset {
        let h = arch.sizes[1]
        var out = [Float](repeating: 0, count: d.count * h)
        let wo = arch.weightOffset(0), bo = arch.biasOffset(0)
        p.withUnsafeBufferPointer { pb in
            d.features.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { o in
                    for r in 0..<d.count { for j in 0..<h { o[r * h + j] = pb[bo + j] } }
                    Kernels.gemm(m: d.count, n: h, k: d.featureCount, a: x.baseAddress!, b: pb.baseAddress! + wo, beta: 1, c: o.baseAddress!)
                    for i in 0..<o.count where o[i] < 0 { o[i] = 0 }
                }
            }
        }
        return Dataset(features: out, labels: d.labels, featureCount: h, classes: d.classes)
    }
}
