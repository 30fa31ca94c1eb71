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
        public init() {}
    }

    public struct DADAOOutcome: Hashable, Sendable {
        public var chi1: Double, chi2: Double, lambdaMix: Double, kappa: Double
        /// (time, mean ‖x_i − x*‖²) for DADAO and the baseline.
        public var dadao: [(Double, Double)]
        public var baseline: [(Double, Double)]
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

    public static func runDADAO(_ c: DADAOConfig, data raw: Dataset, seed: UInt64) -> DADAOOutcome {
        var rng = SeededRandom(seed: seed)
        let n = c.nodes
        let (mean, std) = raw.featureMoments()
        let data = raw.standardized(mean: mean, std: std)
        let d = data.featureCount
        // Sort by label, equal shares.
        let order = (0..<data.count).sorted { (data.labels[$0], $0) < (data.labels[$1], $1) }
        let per = data.count / n
        let A: [[Double]] = (0..<n).map { k in order[(k * per)..<((k + 1) * per)].flatMap { i in (0..<d).map { Double(data.features[i * d + $0]) } } }
        let y: [[Double]] = (0..<n).map { k in order[(k * per)..<((k + 1) * per)].map { data.labels[$0] == 1 ? 1.0 : -1.0 } }
        // Local Hessians H_i = A_iᵀA_i/m; pick the ridge term c for the target condition number.
        let H: [[Double]] = A.map { a in
            var h = [Double](repeating: 0, count: d * d)
            for r in 0..<per { for p in 0..<d { let ap = a[r * d + p]; for q in 0..<d { h[p * d + q] += ap * a[r * d + q] } } }
            return h.map { $0 / Double(per) }
        }
        let eig = H.map { SymmetricEigen.decompose($0, size: d).values }
        let lmax = eig.map { $0[0] }.max()!, lmin = eig.map { $0[d - 1] }.min()!
        let ridge = max(1e-12, (lmax - c.conditionNumber * lmin) / (c.conditionNumber - 1))
        let L = lmax + ridge, mu = lmin + ridge
        func grad(_ k: Int, _ x: [Double]) -> [Double] {
            var g = x.map { ridge * $0 }
            for r in 0..<per {
                var e = -y[k][r]
                for p in 0..<d { e += A[k][r * d + p] * x[p] }
                e /= Double(per)
                for p in 0..<d { g[p] += e * A[k][r * d + p] }
            }
            return g
        }
        // x* solves (Σ H_i + n·ridge·I) x = Σ A_iᵀ y_i / m.
        var sys = [Double](repeating: 0, count: d * d), rhs = [Double](repeating: 0, count: d)
        for k in 0..<n {
            for i in 0..<(d * d) { sys[i] += H[k][i] }
            for r in 0..<per { for p in 0..<d { rhs[p] += A[k][r * d + p] * y[k][r] / Double(per) } }
        }
        for p in 0..<d { sys[p * d + p] += Double(n) * ridge }
        let xStar = solve(sys, rhs, d)
        let e = edges(c.graph, nodes: n)
        let (chi1, chi2) = graphConstants(e, nodes: n)
        let lambdaMix = (2 * chi1 * chi2).squareRoot()
        let k = DADAO.Constants(L: L, mu: mu, chi1: chi1, lambdaMix: lambdaMix)
        let x0 = (0..<d).map { _ in rng.nextGaussian() * 0.1 }
        var nodes = (0..<n).map { _ in DADAO.Instance(initial: x0, constants: k) }
        var base = [[Double]](repeating: x0, count: n)
        func error(_ xs: [[Double]]) -> Double {
            xs.map { x in zip(x, xStar).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }.reduce(0, +) / Double(n)
        }
        var t = 0.0
        var nextSample = 0.0
        var dadaoCurve: [(Double, Double)] = [], baseCurve: [(Double, Double)] = []
        let rate = Double(n) + lambdaMix
        while true {
            let u = max(rng.nextDouble(), 1e-300)
            t += -Double.log(u) / rate
            while nextSample <= min(t, c.horizon) {
                let now = Instant(nanoseconds: Int64(nextSample * 1e9))
                var snapshot = nodes
                for i in 0..<n { snapshot[i].catchUp(to: now) }
                dadaoCurve.append((nextSample, error(snapshot.map(\.x))))
                baseCurve.append((nextSample, error(base)))
                nextSample += c.sampleEvery
            }
            if t > c.horizon { break }
            let now = Instant(nanoseconds: Int64(t * 1e9))
            if rng.nextDouble() < Double(n) / rate {
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
        return DADAOOutcome(chi1: chi1, chi2: chi2, lambdaMix: lambdaMix, kappa: L / mu, dadao: dadaoCurve, baseline: baseCurve)
    }

    /// Gaussian elimination with partial pivoting (small dense systems).
    static func solve(_ a0: [Double], _ b0: [Double], _ n: Int) -> [Double] {
        var a = a0, b = b0
        for col in 0..<n {
            let piv = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
            if piv != col { for j in 0..<n { a.swapAt(col * n + j, piv * n + j) }; b.swapAt(col, piv) }
            let p = a[col * n + col]
            for r in (col + 1)..<n {
                let f = a[r * n + col] / p
                if f == 0 { continue }
                for j in col..<n { a[r * n + j] -= f * a[col * n + j] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = b[r]
            for j in (r + 1)..<n { s -= a[r * n + j] * x[j] }
            x[r] = s / a[r * n + r]
        }
        return x
    }
}
