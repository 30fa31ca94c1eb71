import LatticaCore
import RealModule

/// The DADAO track of ALGORITHMS.md: ridge regression on breast_cancer, 16 nodes holding data
/// sorted by label, condition number ≈ 1709; mean ‖x_i − x*‖² over time for DADAO and for the
/// baseline (asynchronous pairwise gossip averaging + local gradient descent, on the same Poisson
/// events). Events: the superposition of n unit-rate gradient clocks and a rate-λ_mix gossip clock
/// over uniformly chosen edges is one Poisson process of rate n + λ_mix whose events are marked
/// at random; each node's ODE is caught up lazily when an event reaches it.
extension Experiment {
    public enum Graph: String, Sendable, CaseIterable { case ring, complete }

    public struct DADAOConfig: Hashable, Sendable {
        public var nodes = 16
        public var graph: Graph = .ring
        public var horizon = 3000.0
        public var conditionNumber = 1709.0
        /// Record the error every this many time units.
        public var sampleEvery = 100.0
        /// Each node's gradient events per time unit (DADAO's analysis: 1), and the fraction of
        /// the λ_mix gossips that happen: below 1 they model a network whose trainers or
        /// exchanges fall behind (the constants stay those of rate 1 and λ_mix).
        public var gradientRate = 1.0
        public var gossipFraction = 1.0
        public init() {}
    }

    public struct DADAOOutcome: Hashable, Sendable {
        public var chi1: Double, chi2: Double, lambdaMix: Double, kappa: Double
        /// (time, mean ‖x_i − x*‖²) for DADAO and the baseline.
        public var dadao: [(Double, Double)]
        public var baseline: [(Double, Double)]
        /// DADAO's consensus distance at the same times: mean ‖x_i − x̄‖².
        public var consensus: [Double] = []
        /// The mean held-out accuracy of DADAO's nodes at the same times (`Problem.accuracy`).
        public var accuracy: [Double] = []
        /// Every node's X at the horizon (the input of a final merge).
        public var final: [[Double]] = []
        public static func == (a: Self, b: Self) -> Bool { a.dadao.map(\.1) == b.dadao.map(\.1) && a.baseline.map(\.1) == b.baseline.map(\.1) }
        public func hash(into h: inout Hasher) { h.combine(dadao.map(\.1)) }
    }

    public static func edges(_ g: Graph, nodes n: Int) -> [(Int, Int)] {
        switch g {
        case .ring: (0..<n).map { ($0, ($0 + 1) % n) }
        case .complete: (0..<n).flatMap { i in ((i + 1)..<n).map { (i, $0) } }
        }
    }

    /// χ1 = |E|/λ₂(Laplacian) and χ2 = ½·max edge effective resistance of Laplacian/|E|.
    public static func graphConstants(_ e: [(Int, Int)], nodes n: Int) -> (chi1: Double, chi2: Double) {
        var lap = [Double](repeating: 0, count: n * n)
        for (i, j) in e { lap[i * n + i] += 1; lap[j * n + j] += 1; lap[i * n + j] -= 1; lap[j * n + i] -= 1 }
        let (values, vectors) = SymmetricEigen.decompose(lap, size: n)
        let lambda2 = values[n - 2]
        // Pseudo-inverse from the eigenpairs with non-zero eigenvalues.
        var maxR = 0.0
        for (i, j) in e {
            var r = 0.0
            for k in 0..<(n - 1) where values[k] > 1e-9 {
                let d = vectors[i * n + k] - vectors[j * n + k]
                r += d * d / values[k]
            }
            maxR = max(maxR, r)
        }
        let m = Double(e.count)
        return (m / lambda2, maxR * m / 2)
    }

    /// The DADAO track: ridge regression on `raw` with `c.conditionNumber`.
    public static func runDADAO(_ c: DADAOConfig, data raw: Dataset, seed: UInt64) -> DADAOOutcome {
        runDADAO(c, problem: DADAO.RidgeProblem(data: raw, nodes: c.nodes, conditionNumber: c.conditionNumber), seed: seed)
    }

    /// DADAO and the baseline on any problem of `c.nodes` nodes (`problem.nodes` must match);
    /// errors are to `xStar` (default: `problem.minimiser()`).
    public static func runDADAO(_ c: DADAOConfig, problem: some DADAO.Problem, xStar given: [Double]? = nil, seed: UInt64) -> DADAOOutcome {
        precondition(problem.nodes == c.nodes, "the problem has \(problem.nodes) nodes, the config \(c.nodes)")
        var rng = SeededRandom(seed: seed)
        let n = c.nodes
        let d = problem.dimension, L = problem.L, mu = problem.mu, xStar = given ?? problem.minimiser()
        func grad(_ k: Int, _ x: [Double]) -> [Double] { problem.gradient(node: k, at: x) }
        let e = edges(c.graph, nodes: n)
        let (chi1, chi2) = graphConstants(e, nodes: n)
        let lambdaMix = (2 * chi1 * chi2).squareRoot()
        let k = DADAO.Constants(L: L, mu: mu, chi1: chi1, lambdaMix: lambdaMix)
        let x0 = problem.initialPoint(rng: &rng)
        var nodes = (0..<n).map { _ in DADAO.Instance(initial: x0, constants: k) }
        var base = [[Double]](repeating: x0, count: n)
        func error(_ xs: [[Double]]) -> Double {
            xs.map { x in zip(x, xStar).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }.reduce(0, +) / Double(n)
        }
        var t = 0.0
        var nextSample = 0.0
        var dadaoCurve: [(Double, Double)] = [], baseCurve: [(Double, Double)] = [], consensusCurve: [Double] = [], accuracyCurve: [Double] = []
        let gradients = Double(n) * c.gradientRate, gossips = lambdaMix * c.gossipFraction
        let rate = gradients + gossips
        while true {
            let u = max(rng.nextDouble(), 1e-300)
            t += -Double.log(u) / rate
            while nextSample <= min(t, c.horizon) {
                let now = Instant(nanoseconds: Int64(nextSample * 1e9))
                var snapshot = nodes
                for i in 0..<n { snapshot[i].catchUp(to: now) }
                dadaoCurve.append((nextSample, error(snapshot.map(\.x))))
                consensusCurve.append(Self.consensusDistance(snapshot.map(\.x)))
                accuracyCurve.append(snapshot.map { problem.accuracy(at: $0.x) }.reduce(0, +) / Double(n))
                baseCurve.append((nextSample, error(base)))
                nextSample += c.sampleEvery
            }
            if t > c.horizon { break }
            let now = Instant(nanoseconds: Int64(t * 1e9))
            if rng.nextDouble() < gradients / rate {
                let i = Int(rng.next() % UInt64(n))
                nodes[i].onGradientEvent(now: now) { grad(i, $0) }
                let g = grad(i, base[i])
                for p in 0..<d { base[i][p] -= g[p] / L }
            } else {
                let (i, j) = e[Int(rng.next() % UInt64(e.count))]
                let pi = nodes[i].gossipPayload(now: now), pj = nodes[j].gossipPayload(now: now)
                nodes[i].onGossip(peerPayload: pj, now: now)
                nodes[j].onGossip(peerPayload: pi, now: now)
                let avg = zip(base[i], base[j]).map { ($0 + $1) / 2 }
                base[i] = avg; base[j] = avg
            }
        }
        var o = DADAOOutcome(chi1: chi1, chi2: chi2, lambdaMix: lambdaMix, kappa: L / mu, dadao: dadaoCurve, baseline: baseCurve)
        o.consensus = consensusCurve
        o.accuracy = accuracyCurve
        let end = Instant(nanoseconds: Int64(c.horizon * 1e9))
        o.final = nodes.map { var s = $0; s.catchUp(to: end); return s.x }
        return o
    }

    /// The final merge of a DADAO run as the daemons do it (`Averaging.Instance.finalMerge`, the
    /// run's rule, float32 as on the wire): every node merges every node's final X with its own.
    /// `settings` as the daemon makes them from the run's config (its `mergeRule`, reputation, norm bound).
    public static func dadaoFinalMerge(_ xs: [[Double]], settings s: Averaging.Settings, seed: UInt64) -> [[Double]] {
        let models = xs.map { $0.map(Float.init) }
        return models.indices.map { i in
            var avg = Averaging.Instance(me: 0, initial: models[i], settings: s, seed: seed &+ UInt64(i))
            let others = models.indices.filter { $0 != i }.map { (peer: $0 + 1, parameters: models[$0]) }
            return avg.finalMerge(own: models[i], others).phi.map(Double.init)
        }
    }

    /// Mean ‖x_i − x̄‖² over the nodes' models.
    public static func consensusDistance(_ xs: [[Double]]) -> Double {
        guard let d = xs.first?.count, !xs.isEmpty else { return 0 }
        var mean = [Double](repeating: 0, count: d)
        for x in xs { for p in 0..<d { mean[p] += x[p] / Double(xs.count) } }
        return xs.map { x in zip(x, mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }.reduce(0, +) / Double(xs.count)
    }
}
