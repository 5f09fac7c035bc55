// The 8-float vectors the CKernels sources are written on (clang's generic vectors: one AVX register or two SSE
// ones) and their few helpers, shared by kernels.c and winograd.c.
#pragma once
#include <stdint.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t i8 __attribute__((vector_size(32)));

#define INLINE static inline __attribute__((always_inline))
// a·b + c in one expression may become one FMA where the target has it.
#pragma clang fp contract(fast)
// The 8-float vectors pass between always-inline helpers only, so the baseline build's ABI note does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

INLINE v8 ld(const float *p) { return *(const v8u *)p; }
INLINE void st(float *p, v8 v) { *(v8u *)p = v; }
INLINE v8 splat(float f) { return (v8){f, f, f, f, f, f, f, f}; }
INLINE v8 vmax(v8 a, v8 b) { return __builtin_elementwise_max(a, b); }
INLINE v8 sel(i8 m, v8 a, v8 b) { return (v8)((m & (i8)a) | (~m & (i8)b)); }
// ReLU that keeps a NaN, as PyTorch's and Swift's max(x, 0) do (vmax is maxnum: NaN → 0): a diverged network's NaN
// must reach the loss, where training stops on it, not vanish into zeros.
INLINE v8 relu(v8 a) { return sel(a < splat(0), splat(0), a); }
