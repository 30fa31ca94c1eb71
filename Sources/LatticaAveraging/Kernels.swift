import RealModule

/// The three BLAS operations the learning layer uses. `Kernels.blas` is portable Swift loops
/// unless a process installs OpenBLAS (`LatticaBLAS.install()`, done by `lattica-train`,
/// `lattica-bench` and the tests): `latticad` keeps the loops and never maps OpenBLAS, which
/// costs ~4 MB of idle RSS. (The daemon only aggregates; the matrix products of training run in
/// the trainer process.) Row-major throughout.
public protocol BLAS: Sendable {
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)
    /// Upper triangle of C (n×n) = A·Aᵀ for A (n×k).
    func ssyrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>)
    func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>)
}

/// Low-level float32 kernels over unsafe buffers: BLAS for matrix products, SIMD loops elsewhere.
/// Nothing here allocates; callers own the buffers.
public enum Kernels {
    /// The matrix-product backend; set once at process start, before any kernel runs.
    nonisolated(unsafe) public static var blas: any BLAS = PortableBLAS()

    /// C (m×n) = alpha · op(A) · op(B) + beta · C, row-major.
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float = 0, c: UnsafeMutablePointer<Float>
    ) {
        blas.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: transA ? m : k,
                   b: b, ldb: transB ? k : n, beta: beta, c: c, ldc: n)
    }

    /// Upper triangle of C (n×n, row-major) = A·Aᵀ for A (n×k, row-major).
    public static func syrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        blas.ssyrk(n: n, k: k, a: a, c: c)
    }

    /// y += alpha·x over n floats.
    public static func axpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        blas.saxpy(n: n, alpha: alpha, x: x, y: y)
    }

    /// Σ x_i·y_i accumulated in Double blocks (stable for millions of elements).
    @inlinable
    public static func dot(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>) -> Double {
        precondition(x.count == y.count)
        var total = 0.0
        var i = 0
        let n = x.count
        let xp = x.baseAddress!, yp = y.baseAddress!
        while i < n {
            let end = min(n, i + 4096)
            var acc = SIMD8<Float>()
            var j = i
            while j + 8 <= end {
                let a = UnsafeRawPointer(xp + j).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(yp + j).loadUnaligned(as: SIMD8<Float>.self)
                acc += a * b
                j += 8
            }
            var s = Double(acc.sum())
            while j < end { s += Double(xp[j]) * Double(yp[j]); j += 1 }
            total += s
            i = end
        }
        return total
    }

    @inlinable
    public static func norm(_ x: UnsafeBufferPointer<Float>) -> Double { dot(x, x).squareRoot() }

    /// y += a·x
    @inlinable
    public static func axpy(_ a: Float, _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == y.count)
        for i in 0..<x.count { y[i] += a * x[i] }
    }

    /// True when every element is finite.
    @inlinable
    public static func allFinite(_ x: UnsafeBufferPointer<Float>) -> Bool {
        var bad = false
        for v in x where !v.isFinite { bad = true; break }
        return !bad
    }
}

extension Array where Element == Float {
    /// Euclidean norm, Double-accumulated.
    public var l2Norm: Double { withUnsafeBufferPointer { Kernels.norm($0) } }
    public var allFinite: Bool { withUnsafeBufferPointer { Kernels.allFinite($0) } }

    public static func - (a: [Float], b: [Float]) -> [Float] {
        precondition(a.count == b.count)
        return [Float](unsafeUninitializedCapacity: a.count) { out, n in
            for i in 0..<a.count { out[i] = a[i] - b[i] }
            n = a.count
        }
    }

    public static func + (a: [Float], b: [Float]) -> [Float] {
        precondition(a.count == b.count)
        return [Float](unsafeUninitializedCapacity: a.count) { out, n in
            for i in 0..<a.count { out[i] = a[i] + b[i] }
            n = a.count
        }
    }

    public static func * (s: Float, a: [Float]) -> [Float] { a.map { s * $0 } }

    /// self += s·x
    public mutating func add(_ x: [Float], scaledBy s: Float = 1) {
        precondition(count == x.count)
        withUnsafeMutableBufferPointer { y in x.withUnsafeBufferPointer { Kernels.axpy(s, $0, y) } }
    }

    public func distance(to other: [Float]) -> Double {
        precondition(count == other.count)
        var s = 0.0
        for i in 0..<count { let d = Double(self[i] - other[i]); s += d * d }
        return s.squareRoot()
    }
}

/// Portable loops for `BLAS` (SIMD where it matters): correct for every shape, within a few times
/// of OpenBLAS for the vector operations aggregation uses.
public struct PortableBLAS: BLAS {
    public init() {}

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let ci = c + i * ldc
            if beta == 0 { for j in 0..<n { ci[j] = 0 } } else if beta != 1 { for j in 0..<n { ci[j] *= beta } }
            for p in 0..<k {
                let aip = alpha * (transA ? a[p * lda + i] : a[i * lda + p])
                if aip == 0 { continue }
                if transB {
                    for j in 0..<n { ci[j] += aip * b[j * ldb + p] }
                } else {
                    saxpy(n: n, alpha: aip, x: b + p * ldb, y: ci)
                }
            }
        }
    }

    public func ssyrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            for j in i..<n {
                c[i * n + j] = Float(Kernels.dot(UnsafeBufferPointer(start: a + i * k, count: k), UnsafeBufferPointer(start: a + j * k, count: k)))
            }
        }
    }

    public func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        var i = 0
        let va = SIMD8<Float>(repeating: alpha)
        while i + 8 <= n {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: yv + va * xv, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
