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
    /// One fused Adam step over n floats: m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// p ← p − step·m/(√v + ε), the bias corrections folded into `step` and `epsilon`. Memory
    /// bound (four streams in, three out), so one pass; the portable loop is the reference.
    func adam(n: Int, p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
              v: UnsafeMutablePointer<Float>, beta1: Float, beta2: Float, step: Float, epsilon: Float)
}

extension BLAS {
    public func adam(n: Int, p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                     v: UnsafeMutablePointer<Float>, beta1 b1: Float, beta2 b2: Float, step: Float, epsilon: Float) {
        let mp = UnsafeMutableRawPointer(m), vp = UnsafeMutableRawPointer(v)
        let pp = UnsafeMutableRawPointer(p), gp = UnsafeRawPointer(g)
        let B1 = SIMD8<Float>(repeating: b1), B2 = SIMD8<Float>(repeating: b2)
        let C1 = SIMD8<Float>(repeating: 1 - b1), C2 = SIMD8<Float>(repeating: 1 - b2)
        let S = SIMD8<Float>(repeating: step), E = SIMD8<Float>(repeating: epsilon)
        var i = 0
        while i + 8 <= n {
            let o = i * 4
            let gi = gp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            let mi = B1 * mp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + C1 * gi
            let vi = B2 * vp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + C2 * gi * gi
            mp.storeBytes(of: mi, toByteOffset: o, as: SIMD8<Float>.self)
            vp.storeBytes(of: vi, toByteOffset: o, as: SIMD8<Float>.self)
            let pi = pp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) - S * mi / (vi.squareRoot() + E)
            pp.storeBytes(of: pi, toByteOffset: o, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let gi = g[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            p[i] -= step * m[i] / (v[i].squareRoot() + epsilon)
            i += 1
        }
    }
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

    /// True when every element is finite (SIMD: x − x is 0 for finite x and NaN for NaN or ±Inf,
    /// and a NaN survives every later addition).
    @inlinable
    public static func allFinite(_ x: UnsafeBufferPointer<Float>) -> Bool {
        guard let p = x.baseAddress else { return true }
        return allFinite(UnsafeRawPointer(p), count: x.count)
    }

    /// True when every one of the `count` float32 at `src` (any alignment) is finite.
    @inlinable
    public static func allFinite(_ src: UnsafeRawPointer, count n: Int) -> Bool {
        var z = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            z += v - v
            i += 8
        }
        var tail: Float = 0
        while i < n { let v = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self); tail += v - v; i += 1 }
        return z.sum() + tail == 0
    }

    /// dst = src in one pass that also checks every element: true when all are finite. `src` may
    /// be unaligned (bytes off the wire, a shared-memory mapping); little endian, as the wire.
    @inlinable
    public static func copyChecked(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count n: Int) -> Bool {
        var z = SIMD8<Float>()
        var i = 0
        let out = UnsafeMutableRawPointer(dst)
        while i + 8 <= n {
            let v = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            out.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            z += v - v
            i += 8
        }
        var tail: Float = 0
        while i < n { let v = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self); dst[i] = v; tail += v - v; i += 1 }
        return z.sum() + tail == 0
    }

    /// dst = src − phi in one pass over `count` float32 (src any alignment), returning whether
    /// every src element is finite and Σ dst² (Double-accumulated per block of 4096): a model
    /// taken off the wire, turned into its delta, checked and measured while it is in cache.
    @inlinable
    public static func subtractChecked(_ src: UnsafeRawPointer, _ phi: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                                       count n: Int) -> (finite: Bool, sumSquares: Double) {
        var z = SIMD8<Float>()
        var total = 0.0
        var i = 0
        let out = UnsafeMutableRawPointer(dst), f = UnsafeRawPointer(phi)
        while i < n {
            let end = min(n, i + 4096)
            var acc = SIMD8<Float>()
            while i + 8 <= end {
                let v = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                let d = v - f.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                out.storeBytes(of: d, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                acc += d * d
                z += v - v
                i += 8
            }
            var s = Double(acc.sum())
            while i < end {
                let v = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                let d = v - phi[i]
                dst[i] = d
                s += Double(d) * Double(d)
                z[0] += v - v
                i += 1
            }
            total += s
        }
        return (z.sum() == 0, total)
    }

    /// ⟨x, y⟩, ‖x − y‖² and ‖x‖² in one pass (Double-accumulated per block of 4096).
    @inlinable
    public static func compare(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>) -> (dot: Double, squaredDistance: Double, squaredNorm: Double) {
        precondition(x.count == y.count)
        var dot = 0.0, dist = 0.0, norm = 0.0
        var i = 0
        let n = x.count
        guard let xp = x.baseAddress, let yp = y.baseAddress else { return (0, 0, 0) }
        while i < n {
            let end = min(n, i + 4096)
            var ad = SIMD8<Float>(), ae = SIMD8<Float>(), an = SIMD8<Float>()
            while i + 8 <= end {
                let a = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(yp + i).loadUnaligned(as: SIMD8<Float>.self)
                let d = a - b
                ad += a * b
                ae += d * d
                an += a * a
                i += 8
            }
            var sd = Double(ad.sum()), se = Double(ae.sum()), sn = Double(an.sum())
            while i < end {
                let a = Double(xp[i]), b = Double(yp[i]), d = Double(xp[i] - yp[i])
                sd += a * b; se += d * d; sn += a * a
                i += 1
            }
            dot += sd; dist += se; norm += sn
        }
        return (dot, dist, norm)
    }

    /// ‖x − y‖², Double-accumulated per block of 4096 (SIMD).
    @inlinable
    public static func squaredDistance(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>) -> Double {
        precondition(x.count == y.count)
        var total = 0.0
        var i = 0
        let n = x.count
        guard let xp = x.baseAddress, let yp = y.baseAddress else { return 0 }
        while i < n {
            let end = min(n, i + 4096)
            var acc = SIMD8<Float>()
            while i + 8 <= end {
                let d = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD8<Float>.self) - UnsafeRawPointer(yp + i).loadUnaligned(as: SIMD8<Float>.self)
                acc += d * d
                i += 8
            }
            var s = Double(acc.sum())
            while i < end { let d = Double(xp[i] - yp[i]); s += d * d; i += 1 }
            total += s
        }
        return total
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

    /// self = a − b, in place when self already has their length and is uniquely referenced (a
    /// buffer reused across outer steps: no allocation, no page faults).
    public mutating func subtract(_ a: [Float], _ b: [Float]) {
        precondition(a.count == b.count)
        let n = a.count
        if count != n { self = [Float](unsafeUninitializedCapacity: n) { _, c in c = n } }
        guard n > 0 else { return }
        withUnsafeMutableBufferPointer { out in
            a.withUnsafeBufferPointer { x in
                b.withUnsafeBufferPointer { y in
                    let o = UnsafeMutableRawPointer(out.baseAddress!), xp = UnsafeRawPointer(x.baseAddress!), yp = UnsafeRawPointer(y.baseAddress!)
                    var i = 0
                    while i + 8 <= n {
                        let d = xp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - yp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                        o.storeBytes(of: d, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < n { out[i] = x[i] - y[i]; i += 1 }
                }
            }
        }
    }

    /// self += s·x
    public mutating func add(_ x: [Float], scaledBy s: Float = 1) {
        precondition(count == x.count)
        withUnsafeMutableBufferPointer { y in x.withUnsafeBufferPointer { Kernels.axpy(s, $0, y) } }
    }

    public func distance(to other: [Float]) -> Double {
        precondition(count == other.count)
        return withUnsafeBufferPointer { x in other.withUnsafeBufferPointer { Kernels.squaredDistance(x, $0) } }.squareRoot()
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
