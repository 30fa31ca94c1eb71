/// Eigen-decomposition of a small dense symmetric matrix (k×k, k ~ 8) by cyclic Jacobi rotations.
/// Used by the Flag aggregator to get singular vectors of an n×k matrix from its k×k Gram matrix.
public enum SymmetricEigen {
    /// Eigenvalues in descending order and the matching eigenvectors as columns of a row-major k×k
    /// matrix (`vectors[row * k + column]`).
    public static func decompose(_ matrix: [Double], size k: Int) -> (values: [Double], vectors: [Double]) {
        precondition(matrix.count == k * k)
        var a = matrix
        var v = [Double](repeating: 0, count: k * k)
        for i in 0..<k { v[i * k + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0, diag = 0.0
            for i in 0..<k { diag += a[i * k + i] * a[i * k + i]; for j in 0..<k where j != i { off += a[i * k + j] * a[i * k + j] } }
            if off <= 1e-30 * max(diag, 1e-300) { break }
            for p in 0..<k {
                for q in (p + 1)..<k {
                    let apq = a[p * k + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * k + q] - a[p * k + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<k {
                        let arp = a[r * k + p], arq = a[r * k + q]
                        a[r * k + p] = c * arp - s * arq
                        a[r * k + q] = s * arp + c * arq
                    }
                    for r in 0..<k {
                        let apr = a[p * k + r], aqr = a[q * k + r]
                        a[p * k + r] = c * apr - s * aqr
                        a[q * k + r] = s * apr + c * aqr
                    }
                    for r in 0..<k {
                        let vrp = v[r * k + p], vrq = v[r * k + q]
                        v[r * k + p] = c * vrp - s * vrq
                        v[r * k + q] = s * vrp + c * vrq
                    }
                }
            }
        }
        let order = (0..<k).sorted { a[$0 * k + $0] > a[$1 * k + $1] }
        var values = [Double](), vectors = [Double](repeating: 0, count: k * k)
        for (newCol, old) in order.enumerated() {
            values.append(a[old * k + old])
            for r in 0..<k { vectors[r * k + newCol] = v[r * k + old] }
        }
        return (values, vectors)
    }
}
