public import LatticaCore

/// What a Byzantine node sends instead of its honest model (ALGORITHMS.md, "Attacks"). Delta-based
/// attacks are expressed relative to the receiver's slow weights φ_r, so the receiver sees
/// exactly the crafted delta; ALIE and IPM are omniscient (they know the honest models of the
/// step), the standard threat model in the papers.
///
/// The cases after `freeRider` are held out: no configuration of ours was designed or tuned
/// against them (Docs/LEARNING.md, "Tuning protocol"). Their parameters are fixed here, up front.
public enum Attack: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case none
    /// −10 × own update.
    case signFlip = "sign-flip"
    /// N(0, 1) per coordinate as the update.
    case gaussian
    /// Trains on 9 − y, otherwise follows the protocol.
    case labelFlip = "label-flip"
    /// "A little is enough": mean − z·std of the honest models (z = 1), per coordinate.
    case alie = "ALIE"
    /// Inner-product manipulation: −0.1 × the honest mean update.
    case ipm = "IPM"
    /// Never trains; answers with its stale weights.
    case freeRider = "free-rider"
    /// Min-max (Shejwalkar & Houmansadr, NDSS 2021, AGR-agnostic): honest mean + γ·(−std), with the
    /// largest γ (bisection from 10, to 1e-5) such that the crafted model is no farther from any
    /// honest model than the two farthest honest models are from each other.
    case minMax = "min-max"
    /// Min-sum (same paper): as min-max, but the sum of squared distances to the honest models
    /// must not exceed the largest such sum of an honest model.
    case minSum = "min-sum"
    /// Mimic (Karimireddy, He & Jaggi, ICLR 2022): every attacker sends a copy of one honest
    /// node's model, the one farthest from the honest mean, so its (non-iid) data is over-weighted.
    case mimic
    /// A small consistent bias: honest mean + 0.5 × (median honest distance to the mean) × u,
    /// u one fixed random unit direction for the whole run, shared by all colluders.
    case drift
    /// Large-norm scaled update: the node's own honest update × 100.
    case scaled
    /// Time-varying: behaves honestly (trains, sends its model) for outer steps 0–19, then
    /// sends −10 × its own update (sign-flip) from step 20 on.
    case sleeper

    /// The attacks the defaults were tuned against (Scripts/bench/tune.sh), and the held-out ones.
    public static let training: [Attack] = [.signFlip, .gaussian, .labelFlip, .alie, .ipm, .freeRider]
    public static let heldOut: [Attack] = [.minMax, .minSum, .mimic, .drift, .scaled, .sleeper]

    /// First outer step at which `sleeper` attacks.
    public static let sleeperStart = 20

    public var description: String { rawValue }

    /// Whether the node trains on flipped labels.
    public var flipsLabels: Bool { self == .labelFlip }
    /// Whether the node runs its inner loop at all.
    public var trains: Bool { self != .freeRider }
    /// Whether `craft` reads `honestMean`/`honestStd`/`honestModels` (the shell computes them).
    public var needsHonestModels: Bool { [.alie, .ipm, .minMax, .minSum, .mimic, .drift].contains(self) }

    public struct Context {
        public var receiverSlow: [Float]
        public var ownUpdate: [Float]
        public var honestMean: [Float]
        public var honestStd: [Float]
        /// The honest models of the step (min-max, min-sum, mimic, drift); empty = only the mean known.
        public var honestModels: [[Float]]
        /// The outer step (sleeper).
        public var step: Int
        public init(receiverSlow: [Float], ownUpdate: [Float], honestMean: [Float], honestStd: [Float],
                    honestModels: [[Float]] = [], step: Int = 0) {
            self.receiverSlow = receiverSlow; self.ownUpdate = ownUpdate; self.honestMean = honestMean; self.honestStd = honestStd
            self.honestModels = honestModels; self.step = step
        }
    }

    /// Seed of `drift`'s direction: a constant, so that every colluder pushes the same way all run.
    public static let driftSeed: UInt64 = 0xD21F_7000_0000_0001

    /// The model to send in place of the honest one, or nil to send the honest model.
    public func craft(_ c: Context, rng: inout SeededRandom) -> [Float]? {
        let n = c.receiverSlow.count
        switch self {
        case .none, .labelFlip, .freeRider: return nil
        case .signFlip:
            return (0..<n).map { c.receiverSlow[$0] - 10 * c.ownUpdate[$0] }
        case .gaussian:
            return (0..<n).map { c.receiverSlow[$0] + Float(rng.nextGaussian()) }
        case .alie:
            return (0..<n).map { c.honestMean[$0] - 1 * c.honestStd[$0] }
        case .ipm:
            return (0..<n).map { c.receiverSlow[$0] - 0.1 * (c.honestMean[$0] - c.receiverSlow[$0]) }
        case .minMax, .minSum:
            let models = c.honestModels.isEmpty ? [c.honestMean] : c.honestModels
            let p = c.honestStd.map { -$0 }
            let gamma = Self.shejwalkarGamma(models: models, mean: c.honestMean, perturbation: p, minSum: self == .minSum)
            return (0..<n).map { c.honestMean[$0] + Float(gamma) * p[$0] }
        case .mimic:
            guard !c.honestModels.isEmpty else { return c.honestMean }
            let far = c.honestModels.indices.max { c.honestModels[$0].distance(to: c.honestMean) < c.honestModels[$1].distance(to: c.honestMean) }!
            return c.honestModels[far]
        case .drift:
            let models = c.honestModels.isEmpty ? [c.honestMean] : c.honestModels
            let spread = models.map { $0.distance(to: c.honestMean) }.sorted()[models.count / 2]
            let u = Self.driftDirection(n)
            return (0..<n).map { c.honestMean[$0] + Float(0.5 * spread) * u[$0] }
        case .scaled:
            return (0..<n).map { c.receiverSlow[$0] + 100 * c.ownUpdate[$0] }
        case .sleeper:
            guard c.step >= Self.sleeperStart else { return nil }
            return (0..<n).map { c.receiverSlow[$0] - 10 * c.ownUpdate[$0] }
        }
    }

    /// The unit direction of `drift` for n parameters (fixed by `driftSeed`).
    public static func driftDirection(_ n: Int) -> [Float] {
        var r = SeededRandom(seed: driftSeed)
        let g = (0..<n).map { _ in r.nextGaussian() }
        let norm = max(g.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-30)
        return g.map { Float($0 / norm) }
    }

    /// γ of min-max / min-sum (Shejwalkar & Houmansadr, Algorithm 1): the largest γ found by
    /// bisection (start 10, step halving to 1e-5) with the crafted m = mean + γ·p satisfying
    /// max_i ‖m − x_i‖ ≤ max_ij ‖x_i − x_j‖ (min-max) or Σ_i ‖m − x_i‖² ≤ max_i Σ_j ‖x_i − x_j‖²
    /// (min-sum). Uses ‖m − x_i‖² = ‖μ − x_i‖² + 2γ⟨μ − x_i, p⟩ + γ²‖p‖².
    public static func shejwalkarGamma(models: [[Float]], mean: [Float], perturbation p: [Float], minSum: Bool) -> Double {
        let h = models.count
        var d2 = [Double](repeating: 0, count: h * h)
        for i in 0..<h { for j in (i + 1)..<h { let d = models[i].distance(to: models[j]); d2[i * h + j] = d * d; d2[j * h + i] = d * d } }
        let bound = minSum ? (0..<h).map { i in (0..<h).reduce(0.0) { $0 + d2[i * h + $1] } }.max()! : d2.max()!
        let a = models.map { let d = $0.distance(to: mean); return d * d }
        var b = [Double](repeating: 0, count: h)
        for (i, x) in models.enumerated() {
            var s = 0.0
            for t in 0..<p.count { let e = Double(mean[t]) - Double(x[t]); s += e * Double(p[t]) }
            b[i] = s
        }
        var pp = 0.0
        for v in p { pp += Double(v) * Double(v) }
        func ok(_ g: Double) -> Bool {
            var sum = 0.0, mx = -Double.infinity
            for i in 0..<h {
                let d: Double = a[i] + 2 * g * b[i] + g * g * pp
                sum += d; mx = max(mx, d)
            }
            return minSum ? sum <= bound : mx <= bound
        }
        var gamma = 10.0, step = 5.0, best = 0.0
        while step > 1e-5 {
            if ok(gamma) { best = max(best, gamma); gamma += step } else { gamma -= step }
            step /= 2
        }
        return ok(gamma) ? max(best, gamma) : best
    }
}
