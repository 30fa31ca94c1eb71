public import LatticaCore

extension DADAO {
    /// The DADAO track's problem (ALGORITHMS.md): ridge regression on a binary data set,
    /// standardised, its rows sorted by label and dealt to `nodes` nodes in equal contiguous
    /// shares (the remainder left out), labels ±1; the ridge term c is chosen so that
    /// κ = (λ_max + c)/(λ_min + c) over the local Hessians A_iᵀA_i/m is `conditionNumber`.
    /// f_i(x) = ‖A_i x − y_i‖²/(2m) + c/2·‖x‖², L = λ_max + c, μ = λ_min + c.
    ///
    /// Every node of a network run derives it the same way from the run's config (the whole data
    /// set, its seed), as the simulator (`Experiment.runDADAO`) does: the same L, μ, x* and x0.
    public struct RidgeProblem: Sendable {
        public let nodes: Int
        public let dimension: Int
        /// Rows per node.
        public let rows: Int
        public let ridge: Double, L: Double, mu: Double
        /// The minimiser of Σ_i f_i.
        public let xStar: [Double]
        let A: [[Double]], y: [[Double]]

        public init(data raw: Dataset, nodes n: Int, conditionNumber: Double) {
            let (mean, std) = raw.featureMoments()
            let data = raw.standardized(mean: mean, std: std)
            let d = data.featureCount
            let order = (0..<data.count).sorted { (data.labels[$0], $0) < (data.labels[$1], $1) }
            let per = data.count / n
            A = (0..<n).map { k in order[(k * per)..<((k + 1) * per)].flatMap { i in (0..<d).map { Double(data.features[i * d + $0]) } } }
            y = (0..<n).map { k in order[(k * per)..<((k + 1) * per)].map { data.labels[$0] == 1 ? 1.0 : -1.0 } }
            let H: [[Double]] = A.map { a in
                var h = [Double](repeating: 0, count: d * d)
                for r in 0..<per { for p in 0..<d { let ap = a[r * d + p]; for q in 0..<d { h[p * d + q] += ap * a[r * d + q] } } }
                return h.map { $0 / Double(per) }
            }
            let eig = H.map { SymmetricEigen.decompose($0, size: d).values }
            let lmax = eig.map { $0[0] }.max() ?? 1, lmin = eig.map { $0[d - 1] }.min() ?? 1
            let c = max(1e-12, (lmax - conditionNumber * lmin) / (conditionNumber - 1))
            nodes = n; dimension = d; rows = per; ridge = c; L = lmax + c; mu = lmin + c
            // x* solves (Σ H_i + n·c·I) x = Σ A_iᵀ y_i / m.
            var sys = [Double](repeating: 0, count: d * d), rhs = [Double](repeating: 0, count: d)
            for k in 0..<n {
                for i in 0..<(d * d) { sys[i] += H[k][i] }
                for r in 0..<per { for p in 0..<d { rhs[p] += A[k][r * d + p] * y[k][r] / Double(per) } }
            }
            for p in 0..<d { sys[p * d + p] += Double(n) * c }
            xStar = Self.solve(sys, rhs, d)
        }

        /// ∇f_k(x).
        public func gradient(node k: Int, at x: [Double]) -> [Double] {
            let d = dimension
            var g = x.map { ridge * $0 }
            for r in 0..<rows {
                var e = -y[k][r]
                for p in 0..<d { e += A[k][r * d + p] * x[p] }
                e /= Double(rows)
                for p in 0..<d { g[p] += e * A[k][r * d + p] }
            }
            return g
        }

        /// (1/n)·Σ_k f_k(x), the objective whose minimiser is x*.
        public func loss(at x: [Double]) -> Double {
            let d = dimension
            var s = 0.0
            for k in 0..<nodes {
                for r in 0..<rows {
                    var e = -y[k][r]
                    for p in 0..<d { e += A[k][r * d + p] * x[p] }
                    s += e * e / (2 * Double(rows))
                }
            }
            return s / Double(nodes) + ridge / 2 * x.reduce(0) { $0 + $1 * $1 }
        }

        /// ‖x − x*‖².
        public func error(_ x: [Double]) -> Double { zip(x, xStar).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }

        /// The starting point of every node: N(0, 0.1²) per coordinate, the first draws of
        /// `SeededRandom(seed)` (what the simulator does).
        public func initialPoint(rng: inout SeededRandom) -> [Double] { (0..<dimension).map { _ in rng.nextGaussian() * 0.1 } }

        /// Gaussian elimination with partial pivoting (small dense systems).
        static func solve(_ a0: [Double], _ b0: [Double], _ n: Int) -> [Double] {
            var a = a0, b = b0
            for col in 0..<n {
                let piv = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) } ?? col
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
}
