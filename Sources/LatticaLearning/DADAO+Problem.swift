public import LatticaCore

extension DADAO {
    /// A DADAO problem: n local losses f_i, each L-smooth and μ-strongly convex, over one
    /// parameter vector of `dimension` float64. What the simulator (`Experiment.runDADAO`) and
    /// the trainer of a `dadao` run (`lattica-train`) need of it: the gradients, DADAO's
    /// constants L and μ (the same for every node: the largest L, the smallest μ), the objective
    /// (1/n)·Σ_i f_i and its minimiser, a held-out accuracy, the starting point. Pure: no I/O.
    ///
    /// Every node of a network run builds the same problem from the run's config (the whole data
    /// set and the seed), so all of them agree on L, μ, x0 and the shards without talking.
    public protocol Problem: Sendable {
        /// Local losses (nodes).
        var nodes: Int { get }
        var dimension: Int { get }
        var L: Double { get }
        var mu: Double { get }
        /// ∇f_k(x).
        func gradient(node k: Int, at x: [Double]) -> [Double]
        /// (1/n)·Σ_k f_k(x).
        func loss(at x: [Double]) -> Double
        /// The fraction of held-out examples x classifies correctly (ridge: the sign of the
        /// prediction against the ±1 labels of its rows).
        func accuracy(at x: [Double]) -> Double
        /// The minimiser x* of (1/n)·Σ_k f_k (exact for ridge; for softmax by accelerated
        /// gradient descent to a gradient norm of 1e-9: seconds on digits, so computed on demand).
        func minimiser() -> [Double]
        /// The starting point of every node (the first draws of `SeededRandom(seed)`).
        func initialPoint(rng: inout SeededRandom) -> [Double]
    }
}

extension DADAO.Problem {
    /// ‖x − y‖².
    public static func squaredDistance(_ x: [Double], _ y: [Double]) -> Double {
        zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    }

    /// (1/n)·Σ_k ∇f_k(x).
    public func meanGradient(at x: [Double]) -> [Double] {
        var g = [Double](repeating: 0, count: dimension)
        for k in 0..<nodes { for (p, v) in gradient(node: k, at: x).enumerated() { g[p] += v / Double(nodes) } }
        return g
    }

    /// Nesterov's accelerated gradient descent for a μ-strongly convex, L-smooth objective
    /// (constant momentum (√κ − 1)/(√κ + 1)), from `x0` until ‖∇F‖ ≤ `tolerance`.
    public func acceleratedDescent(from x0: [Double], tolerance: Double = 1e-9, maxIterations: Int = 200_000) -> [Double] {
        let q = (L / mu).squareRoot(), momentum = (q - 1) / (q + 1)
        var x = x0, previous = x0
        for _ in 0..<maxIterations {
            let y = zip(x, previous).map { $0 + momentum * ($0 - $1) }
            let g = meanGradient(at: y)
            if g.reduce(0, { $0 + $1 * $1 }).squareRoot() <= tolerance { return y }
            previous = x
            x = zip(y, g).map { $0 - $1 / L }
        }
        return x
    }
}

extension DADAO.RidgeProblem: DADAO.Problem {
    public func minimiser() -> [Double] { xStar }

    /// The sign of A·x against the ±1 labels, over every node's rows (ridge has no held-out set).
    public func accuracy(at x: [Double]) -> Double {
        let d = dimension
        var right = 0
        for k in 0..<nodes {
            for r in 0..<rows {
                var e = 0.0
                for p in 0..<d { e += A[k][r * d + p] * x[p] }
                if (e >= 0) == (y[k][r] > 0) { right += 1 }
            }
        }
        return Double(right) / Double(max(1, nodes * rows))
    }
}
