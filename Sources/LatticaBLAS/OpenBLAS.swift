import CBLAS
import CKernels
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

    /// The C kernel (Sources/CKernels), compiled for AVX-512, AVX2+FMA and the baseline and
    /// chosen by CPUID: Swift's SIMD8 square root and division stay at the baseline's SSE2.
    public func adam(n: Int, p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                     v: UnsafeMutablePointer<Float>, beta1: Float, beta2: Float, step: Float, epsilon: Float) {
        lk_adam(Int64(n), p, g, m, v, beta1, beta2, step, epsilon)
    }

    /// Which kernels `adam` runs here: 512 (AVX-512), 256 (AVX2+FMA), 0 (portable C).
    public static var kernelVariant: Int { Int(lk_variant()) }
}

public enum LatticaBLAS {
    /// Makes the learning layer's matrix products run on OpenBLAS. Call once at process start.
    public static func install() { Kernels.blas = OpenBLAS() }
}
