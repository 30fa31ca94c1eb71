#if canImport(Glibc)
import Glibc
#endif
import LatticaAveraging
import Logging

/// OpenBLAS for the daemon, loaded with `dlopen` only when a run starts aggregating: an idle
/// daemon never maps it (its thread buffers cost ~3 MB of RSS), a training one aggregates as fast
/// as the trainer multiplies. Falls back to the portable loops when the library is absent.
struct DynamicOpenBLAS: BLAS {
    typealias Gemm = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                     UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias Syrk = @convention(c) (Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, Float,
                                     UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias Axpy = @convention(c) (Int32, Float, UnsafePointer<Float>?, Int32, UnsafeMutablePointer<Float>?, Int32) -> Void

    let gemm: Gemm
    let syrk: Syrk
    let axpy: Axpy

    // CBLAS enum values (cblas.h).
    static let rowMajor: Int32 = 101, noTrans: Int32 = 111, trans: Int32 = 112, upper: Int32 = 121

    init?() {
        guard let h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL),
              let g = dlsym(h, "cblas_sgemm"), let s = dlsym(h, "cblas_ssyrk"), let a = dlsym(h, "cblas_saxpy") else { return nil }
        gemm = unsafeBitCast(g, to: Gemm.self)
        syrk = unsafeBitCast(s, to: Syrk.self)
        axpy = unsafeBitCast(a, to: Axpy.self)
    }

    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        gemm(Self.rowMajor, transA ? Self.trans : Self.noTrans, transB ? Self.trans : Self.noTrans, Int32(m), Int32(n), Int32(k),
             alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    func ssyrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        syrk(Self.rowMajor, Self.upper, Self.noTrans, Int32(n), Int32(k), 1, a, Int32(k), 0, c, Int32(n))
    }

    func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        axpy(Int32(n), alpha, x, 1, y, 1)
    }

    /// Installs OpenBLAS as the learning layer's backend the first time a run needs it.
    static let installOnce: Bool = {
        guard let b = DynamicOpenBLAS() else {
            Logger(label: "lattica.train").notice("OpenBLAS not found; aggregating with the portable loops")
            return false
        }
        Kernels.blas = b
        return true
    }()
}
