public import LatticaCore
import RealModule

extension DADAO {
    /// Multinomial logistic (softmax) regression with an L2 term, the convex classifier for
    /// DADAO runs (`--model softmax[:L2]`): x = the K×(d+1) matrix [W | b], row-major (row c holds
    /// class c's d weights, then its bias),
    ///   f_i(x) = (1/m_i)·Σ_{r ∈ shard i} −log softmax(W·a_r + b)[y_r] + (l2/2)·‖x‖²,
    /// L2 on every parameter, so f_i is μ-strongly convex with μ = l2 and L-smooth with
    /// L = ½·λ_max((1/m_i)·Σ ã_r ã_rᵀ) + l2 (ã = [a, 1]; the Hessian of the cross-entropy in the
    /// logits, diag(p) − ppᵀ, is ≤ ½·I), the largest over the shards, so one L holds everywhere.
    ///
    /// Built as every method's trainer builds its data: `trainTestSplit(0.25, seed)`, the
    /// training set dealt to the shards by `split.assign(train, nodes, seed)` (Dirichlet(α) or
    /// iid), accuracy on the held-out quarter.
    public struct SoftmaxProblem: Problem {
        public let nodes: Int
        public let features: Int, classes: Int
        public let dimension: Int
        public let l2: Double, L: Double, mu: Double
        /// Rows of each shard.
        public let shardSizes: [Int]
        /// Per shard: its rows' features (row-major, float64) and labels.
        let a: [[Double]], y: [[Int]]
        let testA: [Double], testY: [Int]

        /// `shards` index `train`'s rows; `test` is the held-out set.
        public init(train: Dataset, test: Dataset, shards: [[Int]], l2: Double) {
            let d = train.featureCount
            nodes = shards.count; features = d; classes = train.classes
            dimension = classes * (d + 1)
            self.l2 = l2; mu = l2
            a = shards.map { s in s.flatMap { i in (0..<d).map { Double(train.features[i * d + $0]) } } }
            y = shards.map { s in s.map { Int(train.labels[$0]) } }
            shardSizes = shards.map(\.count)
            testA = test.features.map(Double.init)
            testY = test.labels.map(Int.init)
            // ½·λ_max of each shard's second moment of ã = [a, 1].
            let e = d + 1
            var lmax = 0.0
            for (k, m) in shardSizes.enumerated() where m > 0 {
                var s = [Double](repeating: 0, count: e * e)
                let rows = a[k]
                for r in 0..<m {
                    for p in 0..<e {
                        let ap = p < d ? rows[r * d + p] : 1
                        if ap == 0 { continue }
                        for q in 0..<e { s[p * e + q] += ap * (q < d ? rows[r * d + q] : 1) }
                    }
                }
                let top = SymmetricEigen.decompose(s.map { $0 / Double(m) }, size: e).values[0]
                lmax = max(lmax, top)
            }
            L = lmax / 2 + l2
        }

        /// The run's data: `raw` split into train and held out with the seed, the training set
        /// dealt to `nodes` shards by `split`.
        public init(data raw: Dataset, nodes n: Int, split: DataSplit, seed: UInt64, l2: Double) {
            let (train, test) = raw.trainTestSplit(testFraction: 0.25, seed: seed)
            self.init(train: train, test: test, shards: split.assign(train, nodes: n, seed: seed), l2: l2)
        }

        /// The centralised problem of the same data: one node holding every training row of
        /// `self`'s shards (each row weighs the same, where (1/n)·Σ f_i weighs each shard the same).
        public func centralised() -> SoftmaxProblem { SoftmaxProblem(merging: self) }

        private init(merging p: SoftmaxProblem) {
            nodes = 1; features = p.features; classes = p.classes; dimension = p.dimension
            l2 = p.l2; mu = p.mu; L = p.L  // ½·λ_max of a mean of second moments ≤ the largest one's
            a = [p.a.flatMap { $0 }]; y = [p.y.flatMap { $0 }]; shardSizes = [p.shardSizes.reduce(0, +)]
            testA = p.testA; testY = p.testY
        }

        /// Logits of one row into `z` (count `classes`).
        @inline(__always)
        func logits(_ x: UnsafeBufferPointer<Double>, _ row: UnsafeBufferPointer<Double>, _ z: inout [Double]) {
            let d = features
            for c in 0..<classes {
                var s = x[c * (d + 1) + d]
                let base = c * (d + 1)
                for p in 0..<d { s += x[base + p] * row[p] }
                z[c] = s
            }
        }

        /// Softmax in place; returns log Σ exp (for the loss).
        @inline(__always)
        static func softmax(_ z: inout [Double]) -> Double {
            let top = z.max() ?? 0
            var sum = 0.0
            for c in z.indices { z[c] = Double.exp(z[c] - top); sum += z[c] }
            for c in z.indices { z[c] /= sum }
            return top + Double.log(sum)
        }

        public func gradient(node k: Int, at x: [Double]) -> [Double] {
            let d = features, m = shardSizes[k]
            var g = x.map { l2 * $0 }
            guard m > 0 else { return g }
            var z = [Double](repeating: 0, count: classes)
            let inv = 1 / Double(m)
            x.withUnsafeBufferPointer { xp in
                a[k].withUnsafeBufferPointer { rows in
                    g.withUnsafeMutableBufferPointer { gp in
                        for r in 0..<m {
                            let row = UnsafeBufferPointer(rebasing: rows[(r * d)..<((r + 1) * d)])
                            logits(xp, row, &z)
                            _ = Self.softmax(&z)
                            z[y[k][r]] -= 1
                            for c in 0..<classes {
                                let w = z[c] * inv, base = c * (d + 1)
                                if w == 0 { continue }
                                for p in 0..<d { gp[base + p] += w * row[p] }
                                gp[base + d] += w
                            }
                        }
                    }
                }
            }
            return g
        }

        public func loss(at x: [Double]) -> Double {
            let d = features
            var z = [Double](repeating: 0, count: classes)
            var total = 0.0
            x.withUnsafeBufferPointer { xp in
                for k in 0..<nodes where shardSizes[k] > 0 {
                    var s = 0.0
                    a[k].withUnsafeBufferPointer { rows in
                        for r in 0..<shardSizes[k] {
                            logits(xp, UnsafeBufferPointer(rebasing: rows[(r * d)..<((r + 1) * d)]), &z)
                            let label = z[y[k][r]]
                            s += Self.softmax(&z) - label
                        }
                    }
                    total += s / Double(shardSizes[k])
                }
            }
            return total / Double(nodes) + l2 / 2 * x.reduce(0) { $0 + $1 * $1 }
        }

        public func accuracy(at x: [Double]) -> Double {
            let d = features, m = testY.count
            guard m > 0 else { return 0 }
            var z = [Double](repeating: 0, count: classes)
            var right = 0
            x.withUnsafeBufferPointer { xp in
                testA.withUnsafeBufferPointer { rows in
                    for r in 0..<m {
                        logits(xp, UnsafeBufferPointer(rebasing: rows[(r * d)..<((r + 1) * d)]), &z)
                        var best = 0
                        for c in 1..<classes where z[c] > z[best] { best = c }
                        if best == testY[r] { right += 1 }
                    }
                }
            }
            return Double(right) / Double(m)
        }

        public func minimiser() -> [Double] { acceleratedDescent(from: [Double](repeating: 0, count: dimension)) }

        /// N(0, 0.01²) per coordinate: the first draws of `SeededRandom(seed)`.
        public func initialPoint(rng: inout SeededRandom) -> [Double] { (0..<dimension).map { _ in rng.nextGaussian() * 0.01 } }
    }

    /// The problem of a `dadao` run's config (`model` ridge[:KAPPA] or softmax[:L2]), as the
    /// trainer and the simulator build it. Nil for another model.
    public static func problem(model: String, data: Dataset, nodes: Int, split: DataSplit, seed: UInt64) -> (any Problem)? {
        if let kappa = ridgeConditionNumber(model) { return RidgeProblem(data: data, nodes: nodes, conditionNumber: kappa) }
        if let l2 = softmaxL2(model) { return SoftmaxProblem(data: data, nodes: nodes, split: split, seed: seed, l2: l2) }
        return nil
    }

    /// The default L2 term of `softmax` (chosen on tuning seeds 101–103, Docs/DADAO.md).
    public static let defaultSoftmaxL2 = 1e-3

    /// `ridge` (κ 1709) or `ridge:KAPPA`.
    public static func ridgeConditionNumber(_ model: String) -> Double? {
        if model == "ridge" { return 1709 }
        guard model.hasPrefix("ridge:"), let k = Double(model.dropFirst(6)), k.isFinite, k >= 1.5, k <= 1e7 else { return nil }
        return k
    }

    /// `softmax` (the default L2) or `softmax:L2`.
    public static func softmaxL2(_ model: String) -> Double? {
        if model == "softmax" { return defaultSoftmaxL2 }
        guard model.hasPrefix("softmax:"), let l = Double(model.dropFirst(8)), l.isFinite, l >= 1e-8, l <= 100 else { return nil }
        return l
    }
}
