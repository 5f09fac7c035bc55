// The transforms of Winograd's F(2×2, 3×3) (WinogradPooledConv.swift), eight channels per 8-float lane group. Like
// kernels.c: each body written once on clang's generic vectors, instantiated for AVX2+FMA and for the baseline; the
// build in use follows kernels.c's choice (`bm_kernels_level`), so tests that force a build with `bm_kernels_select`
// run these on it too.
//
// A tile is a 4×4 input block d whose 2×2 outputs are one pool window. Bins: b = 4u + v of V = Bᵀ d B, with
// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]; outputs Y = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 −1 −1].
#include "CKernels.h"
#include "vec8.h"

/// Columns per strip chunk: 15 tiles (32 columns) of four rows, eight lanes (4 KiB).
enum { CHUNK_TILES = 15, CHUNK_COLS = 2 * CHUNK_TILES + 2 };

/// The 1-D input transform Bᵀ·(a, b, c, d) and its adjoint B·(…).
INLINE void bt4(v8 a, v8 b, v8 c, v8 d, v8 *o) { o[0] = a - c; o[1] = b + c; o[2] = c - b; o[3] = b - d; }
INLINE void b4(v8 a, v8 b, v8 c, v8 d, v8 *o) { o[0] = a; o[1] = b - c + d; o[2] = b + c - a; o[3] = -d; }

/// Four rows × cols columns of eight planes into s[r·CHUNK_COLS + c] (lanes = planes): runs of eight columns by
/// register transposes, the rest lane by lane.
INLINE void gather_strip(const float *src, ptrdiff_t plane, ptrdiff_t rs, int cols, v8 *s) {
    for (int r = 0; r < 4; r++) {
        const float *row = src + r * rs;
        v8 *out = s + r * CHUNK_COLS;
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            v8 a[8];
            for (int l = 0; l < 8; l++) a[l] = ld(row + l * plane + c);
            // out[c + j][l] = a[l][j]
            for (int j = 0; j < 8; j++) out[c + j] = (v8){a[0][j], a[1][j], a[2][j], a[3][j], a[4][j], a[5][j], a[6][j], a[7][j]};
        }
        for (; c < cols; c++) {
            const float *p = row + c;
            out[c] = (v8){p[0], p[plane], p[2 * plane], p[3 * plane], p[4 * plane], p[5 * plane], p[6 * plane], p[7 * plane]};
        }
    }
}

INLINE void input_body(const float *x, ptrdiff_t plane, ptrdiff_t rs, int tiles, float *v, ptrdiff_t bs, ptrdiff_t ts) {
    v8 s[4 * CHUNK_COLS];
    for (int t0 = 0; t0 < tiles; t0 += CHUNK_TILES) {
        int n = tiles - t0 < CHUNK_TILES ? tiles - t0 : CHUNK_TILES;
        gather_strip(x + 2 * t0, plane, rs, 2 * n + 2, s);
        for (int t = 0; t < n; t++) {
            v8 e[4][4], f[4];
            for (int j = 0; j < 4; j++) {
                v8 col[4];
                bt4(s[2 * t + j], s[CHUNK_COLS + 2 * t + j], s[2 * CHUNK_COLS + 2 * t + j], s[3 * CHUNK_COLS + 2 * t + j], col);
                for (int u = 0; u < 4; u++) e[u][j] = col[u];
            }
            float *dst = v + (t0 + t) * ts;
            for (int u = 0; u < 4; u++) {
                bt4(e[u][0], e[u][1], e[u][2], e[u][3], f);
                for (int w = 0; w < 4; w++) st(dst + (4 * u + w) * bs, f[w]);
            }
        }
    }
}

INLINE void output_pool_body(const float *m, ptrdiff_t bs, ptrdiff_t ts, int tiles, const float *bias8, float *dst,
                             ptrdiff_t plane, uint8_t *argmax) {
    v8 B = ld(bias8), zero = splat(0);
    for (int t = 0; t < tiles; t++) {
        const float *src = m + t * ts;
        v8 p[2][4];
        for (int w = 0; w < 4; w++) {
            v8 m0 = ld(src + w * bs), m1 = ld(src + (4 + w) * bs), m2 = ld(src + (8 + w) * bs), m3 = ld(src + (12 + w) * bs);
            p[0][w] = m0 + m1 + m2; p[1][w] = m1 - m2 - m3;
        }
        v8 a0 = p[0][0] + p[0][1] + p[0][2], a1 = p[0][1] - p[0][2] - p[0][3];
        v8 a2 = p[1][0] + p[1][1] + p[1][2], a3 = p[1][1] - p[1][2] - p[1][3];
        // The max of the raw outputs, then the bias (as ConvLayer.forwardPooled); argmax the first of equals.
        v8 mx = a0;
        i8 q = (i8){0, 0, 0, 0, 0, 0, 0, 0};
        i8 c = a1 > mx; mx = sel(c, a1, mx); q = (c & 1) | (~c & q);
        c = a2 > mx; mx = sel(c, a2, mx); q = (c & 2) | (~c & q);
        c = a3 > mx; mx = sel(c, a3, mx); q = (c & 3) | (~c & q);
        v8 y = relu(mx + B);
        for (int l = 0; l < 8; l++) dst[t + l * plane] = y[l];
        if (argmax) for (int l = 0; l < 8; l++) argmax[t + l * plane] = (uint8_t)q[l];
    }
}

INLINE void unpool_body(const float *dp, const float *pooled, const uint8_t *argmax, ptrdiff_t plane, int tiles,
                        float *dm, ptrdiff_t bs, ptrdiff_t ts, float *db8) {
    v8 zero = splat(0), sum = zero;
    for (int t = 0; t < tiles; t++) {
        v8 g, pv;
        i8 q;
        for (int l = 0; l < 8; l++) { g[l] = dp[t + l * plane]; pv[l] = pooled[t + l * plane]; q[l] = argmax[t + l * plane]; }
        g = sel(pv > zero, g, zero);
        sum += g;
        // dY: g at the window position the argmax recorded; dM = A·dY·Aᵀ (the adjoint of Y = Aᵀ M A).
        v8 y[2][2] = {{sel(q == 0, g, zero), sel(q == 1, g, zero)}, {sel(q == 2, g, zero), sel(q == 3, g, zero)}};
        v8 r[2][4];
        for (int i = 0; i < 2; i++) {
            r[i][0] = y[i][0]; r[i][1] = y[i][0] + y[i][1]; r[i][2] = y[i][0] - y[i][1]; r[i][3] = -y[i][1];
        }
        float *d = dm + t * ts;
        for (int w = 0; w < 4; w++) {
            st(d + w * bs, r[0][w]); st(d + (4 + w) * bs, r[0][w] + r[1][w]);
            st(d + (8 + w) * bs, r[0][w] - r[1][w]); st(d + (12 + w) * bs, -r[1][w]);
        }
    }
    st(db8, ld(db8) + sum);
}

INLINE void input_grad_body(const float *dv, ptrdiff_t bs, ptrdiff_t ts, int tiles, float *dx, ptrdiff_t plane,
                            ptrdiff_t rs) {
    v8 s[4 * CHUNK_COLS];
    for (int t0 = 0; t0 < tiles; t0 += CHUNK_TILES) {
        int n = tiles - t0 < CHUNK_TILES ? tiles - t0 : CHUNK_TILES, cols = 2 * n + 2;
        for (int i = 0; i < 4 * CHUNK_COLS; i++) s[i] = splat(0);
        for (int t = 0; t < n; t++) {
            const float *src = dv + (t0 + t) * ts;
            v8 e[4][4];
            for (int u = 0; u < 4; u++) {
                v8 row[4];
                b4(ld(src + 4 * u * bs), ld(src + (4 * u + 1) * bs), ld(src + (4 * u + 2) * bs), ld(src + (4 * u + 3) * bs), row);
                for (int j = 0; j < 4; j++) e[u][j] = row[j];
            }
            for (int j = 0; j < 4; j++) {
                v8 col[4];
                b4(e[0][j], e[1][j], e[2][j], e[3][j], col);
                for (int r = 0; r < 4; r++) s[r * CHUNK_COLS + 2 * t + j] += col[r];
            }
        }
        for (int r = 0; r < 4; r++) {
            float *row = dx + r * rs + 2 * t0;
            const v8 *in = s + r * CHUNK_COLS;
            int c = 0;
            for (; c + 8 <= cols; c += 8) {
                for (int l = 0; l < 8; l++) {
                    float *p = row + l * plane + c;
                    st(p, ld(p) + (v8){in[c][l], in[c + 1][l], in[c + 2][l], in[c + 3][l], in[c + 4][l], in[c + 5][l],
                                       in[c + 6][l], in[c + 7][l]});
                }
            }
            for (; c < cols; c++) for (int l = 0; l < 8; l++) row[l * plane + c] += in[c][l];
        }
    }
}

typedef struct {
    void (*input)(const float *, ptrdiff_t, ptrdiff_t, int, float *, ptrdiff_t, ptrdiff_t);
    void (*output_pool)(const float *, ptrdiff_t, ptrdiff_t, int, const float *, float *, ptrdiff_t, uint8_t *);
    void (*unpool)(const float *, const float *, const uint8_t *, ptrdiff_t, int, float *, ptrdiff_t, ptrdiff_t, float *);
    void (*input_grad)(const float *, ptrdiff_t, ptrdiff_t, int, float *, ptrdiff_t, ptrdiff_t);
} wino_kernels;

#define INSTANTIATE(NAME, ATTR)                                                                                      \
    ATTR static void NAME##_input(const float *x, ptrdiff_t p, ptrdiff_t rs, int t, float *v, ptrdiff_t bs, ptrdiff_t ts) { \
        input_body(x, p, rs, t, v, bs, ts); }                                                                        \
    ATTR static void NAME##_output_pool(const float *m, ptrdiff_t bs, ptrdiff_t ts, int t, const float *b, float *d,  \
                                        ptrdiff_t p, uint8_t *a) { output_pool_body(m, bs, ts, t, b, d, p, a); }      \
    ATTR static void NAME##_unpool(const float *dp, const float *pd, const uint8_t *a, ptrdiff_t p, int t, float *dm, \
                                   ptrdiff_t bs, ptrdiff_t ts, float *db) { unpool_body(dp, pd, a, p, t, dm, bs, ts, db); } \
    ATTR static void NAME##_input_grad(const float *dv, ptrdiff_t bs, ptrdiff_t ts, int t, float *dx, ptrdiff_t p,    \
                                       ptrdiff_t rs) { input_grad_body(dv, bs, ts, t, dx, p, rs); }                   \
    static const wino_kernels NAME = {NAME##_input, NAME##_output_pool, NAME##_unpool, NAME##_input_grad};

INSTANTIATE(wino_baseline, )
#if defined(__x86_64__)
INSTANTIATE(wino_avx2, __attribute__((target("avx2,fma"))))
INLINE const wino_kernels *active(void) { return bm_kernels_level() >= 2 ? &wino_avx2 : &wino_baseline; }
#else
INLINE const wino_kernels *active(void) { return &wino_baseline; }
#endif

void bm_wino_input(const float *x, ptrdiff_t plane, ptrdiff_t rowStride, int tiles, float *v, ptrdiff_t binStride,
                   ptrdiff_t tileStride) {
    active()->input(x, plane, rowStride, tiles, v, binStride, tileStride);
}

void bm_wino_output_pool(const float *m, ptrdiff_t binStride, ptrdiff_t tileStride, int tiles, const float *bias8,
                         float *dst, ptrdiff_t plane, uint8_t *argmax) {
    active()->output_pool(m, binStride, tileStride, tiles, bias8, dst, plane, argmax);
}

void bm_wino_unpool(const float *dPooled, const float *pooled, const uint8_t *argmax, ptrdiff_t plane, int tiles,
                    float *dm, ptrdiff_t binStride, ptrdiff_t tileStride, float *db8) {
    active()->unpool(dPooled, pooled, argmax, plane, tiles, dm, binStride, tileStride, db8);
}

void bm_wino_input_grad(const float *dv, ptrdiff_t binStride, ptrdiff_t tileStride, int tiles, float *dx,
                        ptrdiff_t plane, ptrdiff_t rowStride) {
    active()->input_grad(dv, binStride, tileStride, tiles, dx, plane, rowStride);
}
