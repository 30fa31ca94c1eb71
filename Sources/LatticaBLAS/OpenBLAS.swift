import CBLAS
import LatticaAveraging

/// OpenBLAS behind the learning layer's `BLAS` (Sources/LatticaLearning/Kernels.swift). Installed
/// by the processes that train (`lattica-train`, `lattica-bench`, the tests); `latticad` does not
/// link it.
public struct OpenBLAS: BLAS {
    public init() {}

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public func ssyrk(n: Int, k: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(k), 1, a, Int32(k), 0, c, Int32(n))
    }

    public func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }
}

public enum LatticaBLAS {
    /// Makes the learning layer's matrix products run on OpenBLAS. Call once at process start.
    public static func install() { Kernels.blas = OpenBLAS() }
}
