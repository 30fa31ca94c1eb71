// Float32 kernels of the trainer that no library on Debian offers: the fused Adam step (OpenBLAS
// has no optimizer; Swift's SIMD square root and division stay at the baseline's SSE2). Compiled for AVX-512, AVX2+FMA and the baseline, chosen at run time by CPUID
// on x86-64; plain C elsewhere. Row-major; the caller owns every buffer; nothing allocates.
#ifndef LATTICA_KERNELS_H
#define LATTICA_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One Adam step over n floats: m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²;
/// p −= step·m / (√v + eps) (step and eps with the bias corrections folded in by the caller).
void lk_adam(int64_t n, float *p, const float *g, float *m, float *v, float b1, float b2, float step, float eps);

/// The malloc heap (glibc mallinfo2): bytes in live allocations, and bytes the heap holds from
/// the system (arenas plus mmapped chunks). Both 0 where mallinfo2 does not exist.
void lk_heap_bytes(uint64_t *in_use, uint64_t *held);

/// Which variant runs here: 512 (AVX-512F), 256 (AVX2+FMA) or 0 (portable C).
int32_t lk_variant(void);

#ifdef __cplusplus
}
#endif

#endif
