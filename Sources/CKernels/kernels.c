// The fused Adam step (include/lattica_kernels.h). One body, instantiated per instruction set:
// the compiler turns the 16-float vectors into zmm, ymm or xmm registers, and `a * b + c` into
// FMAs where the variant has them.
#include "lattica_kernels.h"
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

typedef float v16 __attribute__((vector_size(64)));


// Unaligned loads and stores (macros: a function returning a 64-byte vector would need one ABI
// for every variant).
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define ld(p) (*(const v16u *)(p))
#define st(p, x) (*(v16u *)(p) = (x))

// MARK: body

#define ADAM_BODY                                                                                 \
    const v16 B1 = b1 - (v16){}, B2 = b2 - (v16){}, C1 = (1 - b1) - (v16){}, C2 = (1 - b2) - (v16){}; \
    int64_t i = 0;                                                                                \
    for (; i + 16 <= n; i += 16) {                                                                \
        const v16 gi = ld(g + i);                                                                 \
        const v16 mi = B1 * ld(m + i) + C1 * gi;                                                  \
        const v16 vi = B2 * ld(v + i) + C2 * gi * gi;                                             \
        st(m + i, mi);                                                                            \
        st(v + i, vi);                                                                            \
        st(p + i, ld(p + i) - step * mi / (__builtin_elementwise_sqrt(vi) + eps));                \
    }                                                                                             \
    for (; i < n; i++) {                                                                          \
        const float gi = g[i];                                                                    \
        m[i] = b1 * m[i] + (1 - b1) * gi;                                                         \
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;                                                    \
        p[i] -= step * m[i] / (__builtin_sqrtf(v[i]) + eps);                                      \
    }

// MARK: variants

#define ADAM_ARGS int64_t n, float *p, const float *g, float *m, float *v, float b1, float b2, float step, float eps

static void adam_base(ADAM_ARGS) { ADAM_BODY }

#if defined(__x86_64__)
#define LK_AVX2 __attribute__((target("avx2,fma")))
#define LK_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
LK_AVX2 static void adam_256(ADAM_ARGS) { ADAM_BODY }
LK_AVX512 static void adam_512(ADAM_ARGS) { ADAM_BODY }

int32_t lk_variant(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return 512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 256;
    return 0;
}
#else
int32_t lk_variant(void) { return 0; }
#endif

void lk_adam(ADAM_ARGS) {
#if defined(__x86_64__)
    switch (lk_variant()) {
    case 512: adam_512(n, p, g, m, v, b1, b2, step, eps); return;
    case 256: adam_256(n, p, g, m, v, b1, b2, step, eps); return;
    default: break;
    }
#endif
    adam_base(n, p, g, m, v, b1, b2, step, eps);
}

void lk_heap_bytes(uint64_t *in_use, uint64_t *held) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    *in_use = (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
    *held = (uint64_t)m.arena + (uint64_t)m.hblkhd;
#else
    *in_use = 0;
    *held = 0;
#endif
}
