import CBLAS
import RealModule

/// Low-level float32 kernels over unsafe buffers: BLAS for matrix products, SIMD loops elsewhere.
/// Nothing here allocates; callers own the buffers.
public enum Kernels {
    /// C (m×n) = alpha · op(A) · op(B) + beta · C, row-major, through OpenBLAS `cblas_sgemm`.
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float = 0, c: UnsafeMutablePointer<Float>
    ) {
        let lda = transA ? m : k
        let ldb = transB ? k : n
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
    }

    /// Upper triangle of C (n×n, row-major) = A·Aᵀ for A (n×k, row-major): `cblas_ssyrk`.
    public static func syrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(k), 1, a, Int32(k), 0, c, Int32(n))
    }

    /// y += alpha·x over n floats: `cblas_saxpy`.
    public static func axpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
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
