/// Robust aggregators: each turns k vectors of n float32 into one. Pure functions over borrowed
/// buffers: inputs are read in place (never copied), and every rule makes O(1) passes over them
/// (CenteredClip: one pass per iteration). Pair-wise quantities come from one blocked pass that
/// computes the k×k Gram matrix, so nothing of size n×k or n×n is ever materialised.
public enum Aggregation {
    public enum Rule: Hashable, Sendable, CustomStringConvertible {
        case mean
        case median
        /// Drop the `trim` largest and `trim` smallest values of every coordinate.
        case trimmedMean(trim: Int)
        /// Multi-Krum (Blanchard et al. 2017): average the `m` inputs with the smallest Krum
        /// scores, assuming at most `f` Byzantine inputs.
        case multiKrum(f: Int, m: Int)
        /// CenteredClip (Karimireddy et al. 2021); `tau` nil = median distance to the median.
        case centeredClip(tau: Double?, iterations: Int)
        /// Flag aggregator (Almasi et al.), subspace dimension r, IRLS iterations.
        case flag(r: Int, iterations: Int)

        public var description: String {
            switch self {
            case .mean: "mean"
            case .median: "median"
            case .trimmedMean(let b): "trimmed-mean(\(b))"
            case .multiKrum(let f, let m): "multi-krum(f=\(f),m=\(m))"
            case .centeredClip: "centered-clip"
            case .flag(let r, _): "flag(r=\(r))"
            }
        }
    }

    /// Applies `rule` to `inputs` (all of the same length, k ≥ 1).
    public static func aggregate(_ inputs: [UnsafeBufferPointer<Float>], rule: Rule) -> [Float] {
        switch rule {
        case .mean: mean(inputs)
        case .median: median(inputs)
        case .trimmedMean(let b): trimmedMean(inputs, trim: b)
        case .multiKrum(let f, let m): multiKrum(inputs, f: f, m: m)
        case .centeredClip(let tau, let it): centeredClip(inputs, tau: tau, iterations: it)
        case .flag(let r, let it): flag(inputs, r: r, iterations: it)
        }
    }

    /// Convenience over arrays (borrowed, not copied).
    public static func aggregate(_ inputs: [[Float]], rule: Rule) -> [Float] {
        withBuffers(inputs) { aggregate($0, rule: rule) }
    }

    /// The same result written into `out` (reused when it has the inputs' length and is uniquely
    /// referenced: no allocation, no page faults) for the rules whose output is a weighted sum of
    /// the inputs (mean, Multi-Krum, Flag); the others allocate.
    public static func aggregate(_ inputs: [[Float]], rule: Rule, into out: inout [Float]) {
        withBuffers(inputs) { b in
            switch rule {
            case .mean: weightedSum(b, weights: [Double](repeating: 1 / Double(b.count), count: b.count), into: &out)
            case .multiKrum(let f, let m): weightedSum(b, weights: multiKrumWeights(b, f: f, m: m), into: &out)
            case .flag(let r, let it): weightedSum(b, weights: flagCoefficients(gram: gram(b), k: b.count, r: r, iterations: it), into: &out)
            default: out = aggregate(b, rule: rule)
            }
        }
    }

    /// Calls `body` with borrowed buffers of every array.
    public static func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        var buffers: [UnsafeBufferPointer<Float>] = []
        buffers.reserveCapacity(arrays.count)
        func go(_ i: Int) -> R {
            if i == arrays.count { return body(buffers) }
            return arrays[i].withUnsafeBufferPointer { b in buffers.append(b); return go(i + 1) }
        }
        return go(0)
    }

    static func check(_ inputs: [UnsafeBufferPointer<Float>]) -> Int {
        precondition(!inputs.isEmpty, "aggregation of zero inputs")
        let n = inputs[0].count
        precondition(inputs.allSatisfy { $0.count == n }, "aggregation inputs of different lengths")
        return n
    }

    // MARK: mean

    public static func mean(_ inputs: [UnsafeBufferPointer<Float>]) -> [Float] {
        weightedSum(inputs, weights: [Double](repeating: 1 / Double(inputs.count), count: inputs.count))
    }

    /// `rule` (mean or Flag) over the inputs with every input longer than `factor` × the lower
    /// median norm scaled down to it (`Averaging.Instance.bounded`), without scaled copies: both
    /// rules are weighted sums, so the scale factors s_i go into the weights (Flag: coefficients
    /// from the Gram matrix S·G·S, output Σ a_i·s_i·x_i). One Gram pass (Flag; the norms come
    /// from its diagonal) or one norm pass (mean), then one output pass.
    public static func aggregateBounded(_ inputs: [[Float]], rule: Rule, factor: Double, into out: inout [Float]) {
        withBuffers(inputs) { b in
            let k = b.count
            let g: [Double]? = if case .flag = rule { gram(b) } else { nil }
            let norms = g.map { g in (0..<k).map { g[$0 * k + $0].squareRoot() } } ?? b.map { Kernels.norm($0) }
            let bound = factor * norms.sorted()[(k - 1) / 2]
            let s = norms.map { n in n > bound && n > 0 ? Double(Float(bound / n)) : 1 }
            switch rule {
            case .flag(let r, let it):
                var gs = g!
                for i in 0..<k { for j in 0..<k { gs[i * k + j] *= s[i] * s[j] } }
                let a = flagCoefficients(gram: gs, k: k, r: r, iterations: it)
                weightedSum(b, weights: (0..<k).map { a[$0] * s[$0] }, into: &out)
            default:
                weightedSum(b, weights: s.map { $0 / Double(k) }, into: &out)
            }
        }
    }

    /// Σ_i w_i·x_i in one pass.
    public static func weightedSum(_ inputs: [UnsafeBufferPointer<Float>], weights: [Double]) -> [Float] {
        let n = check(inputs)
        precondition(weights.count == inputs.count)
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            weightedSum(inputs, weights: weights, to: out.baseAddress!, n: n)
            initialized = n
        }
    }

    /// Σ_i w_i·x_i into `out` (resized when its length differs).
    public static func weightedSum(_ inputs: [UnsafeBufferPointer<Float>], weights: [Double], into out: inout [Float]) {
        let n = check(inputs)
        precondition(weights.count == inputs.count)
        if out.count != n { out = [Float](unsafeUninitializedCapacity: n) { _, c in c = n } }
        guard n > 0 else { return }
        out.withUnsafeMutableBufferPointer { weightedSum(inputs, weights: weights, to: $0.baseAddress!, n: n) }
    }

    static func weightedSum(_ inputs: [UnsafeBufferPointer<Float>], weights: [Double], to o: UnsafeMutablePointer<Float>, n: Int) {
        let w = weights.map { Float($0) }
        let block = 1 << 13
        var start = 0
        while start < n {
            let len = min(block, n - start)
            (o + start).update(repeating: 0, count: len)
            for (i, x) in inputs.enumerated() where w[i] != 0 {
                Kernels.axpy(n: len, alpha: w[i], x: x.baseAddress! + start, y: o + start)
            }
            start += len
        }
    }

    // MARK: Gram matrix and distances

    /// The k×k Gram matrix G_ij = ⟨x_i, x_j⟩ (row-major), in one blocked pass over the inputs:
    /// per block of 1024 coordinates the k(k+1)/2 products are SIMD dot products straight from
    /// the inputs (L1-resident; the block results summed in Double). Before 2 Dec 2026 each block
    /// was gathered into a scratch and multiplied by OpenBLAS's ssyrk: for k ≈ 8 the gathering
    /// copy cost more than it saved (Flag over 8 × 25 M floats 0.27 → 0.19 s, Docs/LEARNING.md).
    public static func gram(_ inputs: [UnsafeBufferPointer<Float>]) -> [Double] {
        let n = check(inputs), k = inputs.count
        var g = [Double](repeating: 0, count: k * k)
        let ptrs = inputs.map { UnsafeRawPointer($0.baseAddress!) }
        // Blocks of 1024 coordinates: k blocks of 4 KiB stay in L1 while the k(k+1)/2 products are
        // taken from them (each input is read from memory once, nothing is copied).
        let block = 1024
        var start = 0
        while start < n {
            let end = min(n, start + block)
            for i in 0..<k {
                for j in i..<k {
                    let xi = ptrs[i], xj = ptrs[j]
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                    var t = start
                    while t + 16 <= end {
                        a0 += xi.loadUnaligned(fromByteOffset: 4 * t, as: SIMD8<Float>.self) * xj.loadUnaligned(fromByteOffset: 4 * t, as: SIMD8<Float>.self)
                        a1 += xi.loadUnaligned(fromByteOffset: 4 * t + 32, as: SIMD8<Float>.self) * xj.loadUnaligned(fromByteOffset: 4 * t + 32, as: SIMD8<Float>.self)
                        t += 16
                    }
                    var s = Double((a0 + a1).sum())
                    while t < end {
                        s += Double(xi.loadUnaligned(fromByteOffset: 4 * t, as: Float.self)) * Double(xj.loadUnaligned(fromByteOffset: 4 * t, as: Float.self))
                        t += 1
                    }
                    g[i * k + j] += s
                }
            }
            start = end
        }
        for i in 0..<k { for j in 0..<i { g[i * k + j] = g[j * k + i] } }
        return g
    }

    /// Squared pairwise distances ‖x_i − x_j‖² (k×k), computed directly (no cancellation) in one
    /// blocked pass.
    public static func squaredDistances(_ inputs: [UnsafeBufferPointer<Float>]) -> [Double] {
        let n = check(inputs), k = inputs.count
        var d = [Double](repeating: 0, count: k * k)
        let ptrs = inputs.map { $0.baseAddress! }
        let block = 2048
        var start = 0
        while start < n {
            let end = min(n, start + block)
            for i in 0..<k {
                for j in (i + 1)..<k {
                    let xi = ptrs[i], xj = ptrs[j]
                    var acc = SIMD8<Float>()
                    var t = start
                    while t + 8 <= end {
                        let a = UnsafeRawPointer(xi + t).loadUnaligned(as: SIMD8<Float>.self)
                        let b = UnsafeRawPointer(xj + t).loadUnaligned(as: SIMD8<Float>.self)
                        let diff = a - b
                        acc += diff * diff
                        t += 8
                    }
                    var s = Double(acc.sum())
                    while t < end { let e = Double(xi[t]) - Double(xj[t]); s += e * e; t += 1 }
                    d[i * k + j] += s
                }
            }
            start = end
        }
        for i in 0..<k { for j in 0..<i { d[i * k + j] = d[j * k + i] } }
        return d
    }

    // MARK: Multi-Krum

    /// Krum scores: for each input the sum of squared distances to its k − f − 2 nearest others.
    public static func krumScores(squaredDistances d: [Double], k: Int, f: Int) -> [Double] {
        let neighbours = max(1, min(k - 1, k - f - 2))
        return (0..<k).map { i in
            let row = (0..<k).filter { $0 != i }.map { d[i * k + $0] }.sorted()
            return row.prefix(neighbours).reduce(0, +)
        }
    }

    public static func multiKrum(_ inputs: [UnsafeBufferPointer<Float>], f: Int, m: Int) -> [Float] {
        weightedSum(inputs, weights: multiKrumWeights(inputs, f: f, m: m))
    }

    static func multiKrumWeights(_ inputs: [UnsafeBufferPointer<Float>], f: Int, m: Int) -> [Double] {
        _ = check(inputs)
        let k = inputs.count
        let scores = krumScores(squaredDistances: squaredDistances(inputs), k: k, f: f)
        let chosen = (0..<k).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(max(1, min(m, k)))
        var w = [Double](repeating: 0, count: k)
        for i in chosen { w[i] = 1 / Double(chosen.count) }
        return w
    }
}

extension Aggregation.Rule {
    /// The rule a run's config names (`RunConfig.aggregator`), sized for `k` contributions: the
    /// one mapping the daemon, the trainer's `--simulate` and the docs use.
    public init(named name: String, k: Int) {
        switch name {
        case "median": self = .median
        case "trimmed-mean": self = .trimmedMean(trim: max(1, k / 4))
        case "krum": self = .multiKrum(f: max(1, k / 4), m: max(1, k / 2))
        case "flag": self = .flag(r: 2, iterations: 20)
        case "centered-clip": self = .centeredClip(tau: nil, iterations: 20)
        default: self = .mean
        }
    }
}

extension Aggregation {
    /// Per-coordinate mean and standard deviation of equally long vectors (what ALIE and IPM
    /// attackers estimate from the honest models they see).
    public static func moments(_ xs: [[Float]]) -> (mean: [Float], std: [Float]) {
        let n = xs[0].count
        var mean = [Float](repeating: 0, count: n), std = mean
        for x in xs { for i in 0..<n { mean[i] += x[i] } }
        let inv = 1 / Float(xs.count)
        for i in 0..<n { mean[i] *= inv }
        for x in xs { for i in 0..<n { let d = x[i] - mean[i]; std[i] += d * d } }
        for i in 0..<n { std[i] = (std[i] * inv).squareRoot() }
        return (mean, std)
    }
}
