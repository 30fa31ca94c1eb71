import RealModule

extension Aggregation {
    /// The Flag aggregator (Almasi et al., "Flag Aggregator", reference hamidralmasi/FlagAggregator).
    ///
    /// With x̂_i = x_i/‖x_i‖, finds an orthonormal Y (n×r) minimising Σ_i √(1 − ‖Yᵀx̂_i‖²) by IRLS:
    /// w_i = (|1 − ‖Yᵀx̂_i‖²| + 1e-7)^(−1/4); Y ← top-r left singular vectors of [w_i·x̂_i]. The
    /// SVD comes from the eigen-decomposition of the k×k matrix D·Ĝ·D (Ĝ the Gram matrix of the x̂,
    /// D = diag(w)): u_j = X̂·D·v_j/√λ_j, so Y = X̂·C for a k×r coefficient matrix C and every
    /// quantity, including the output Σ_i Y·Yᵀ·x̂_i, is a combination of the inputs. The inputs are
    /// read twice (Gram pass, output pass) and never copied. Y starts from the unweighted SVD
    /// (w = 1) and then runs `iterations` IRLS steps (reference: one).
    ///
    /// Output scale: the direction Σ_i Y·Yᵀ·x̂_i (the reference's output times r; its norm is at
    /// most k whatever the inputs' norms) times the *lower* median of the ‖x_i‖ over k; for k
    /// agreeing inputs this returns their common vector. The reference has no scale (its inputs
    /// are gradients and the server's learning rate sets the step); ALGORITHMS.md's "median ‖x_i‖ / k"
    /// with the averaging median of an even k let exactly k/2 Byzantine inputs (4 of 8 Gaussian,
    /// norm ≈ 49 against ≈ 0.7) set the median to ≈ 25, and one such round wrecks a node: that
    /// was plain Flag's 87.6% [worst 15.5%] under Gaussian noise (Docs/LEARNING.md). The lower
    /// median takes more than half of the inputs to inflate the step.
    public static func flag(_ inputs: [UnsafeBufferPointer<Float>], r: Int = 2, iterations: Int = 1) -> [Float] {
        let coefficients = flagCoefficients(gram: gram(inputs), k: inputs.count, r: r, iterations: iterations)
        return weightedSum(inputs, weights: coefficients)
    }

    /// The weights a_i such that Flag's output is Σ_i a_i·x_i, from the Gram matrix alone.
    public static func flagCoefficients(gram g: [Double], k: Int, r rIn: Int, iterations: Int) -> [Double] {
        let norms = (0..<k).map { g[$0 * k + $0].squareRoot() }
        let live = (0..<k).filter { norms[$0] > 0 && norms[$0].isFinite }
        guard !live.isEmpty else { return [Double](repeating: 0, count: k) }
        // Normalised Gram over the non-zero inputs.
        let m = live.count
        var gh = [Double](repeating: 0, count: m * m)
        for (a, i) in live.enumerated() { for (b, j) in live.enumerated() { gh[a * m + b] = g[i * k + j] / (norms[i] * norms[j]) } }
        let r = max(1, min(rIn, m))
        var w = [Double](repeating: 1, count: m)
        var C = [Double](repeating: 0, count: m * r)
        for iteration in 0...iterations {
            if iteration > 0 {
                // IRLS weights from the current subspace.
                for i in 0..<m {
                    let p = projectionSquared(gh: gh, C: C, m: m, r: r, i: i)
                    w[i] = Double.pow(abs(1 - p) + 1e-7, -0.25)
                }
            }
            var a = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m { a[i * m + j] = w[i] * gh[i * m + j] * w[j] } }
            let (values, vectors) = SymmetricEigen.decompose(a, size: m)
            C = [Double](repeating: 0, count: m * r)
            for j in 0..<r where values[j] > 1e-12 * max(values[0], 1e-300) {
                let s = 1 / values[j].squareRoot()
                for l in 0..<m { C[l * r + j] = w[l] * vectors[l * m + j] * s }
            }
        }
        // Output direction Σ_i Y Yᵀ x̂_i = X̂ C s with s_j = Σ_i (Yᵀx̂_i)_j = Σ_i Σ_l C_lj Ĝ_li.
        var s = [Double](repeating: 0, count: r)
        for j in 0..<r { for i in 0..<m { for l in 0..<m { s[j] += C[l * r + j] * gh[l * m + i] } } }
        let sortedNorms = live.map { norms[$0] }.sorted()
        // The lower median (the ⌈m/2⌉-th smallest norm): for even m the usual median averages
        // the two middle norms, so m/2 huge inputs (4 Gaussian contributions of 8) set the step size.
        let scale = sortedNorms[(m - 1) / 2] / Double(m)
        var out = [Double](repeating: 0, count: k)
        for (l, i) in live.enumerated() {
            var cs = 0.0
            for j in 0..<r { cs += C[l * r + j] * s[j] }
            out[i] = cs * scale / norms[i]
        }
        return out
    }

    /// ‖Yᵀx̂_i‖² with Y = X̂·C.
    static func projectionSquared(gh: [Double], C: [Double], m: Int, r: Int, i: Int) -> Double {
        var total = 0.0
        for j in 0..<r {
            var p = 0.0
            for l in 0..<m { p += C[l * r + j] * gh[l * m + i] }
            total += p * p
        }
        return total
    }
}
