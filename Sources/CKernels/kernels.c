// The kernels of CKernels.h. Each body is written once, on clang's generic vectors (8 floats = one AVX register or
// two SSE ones), and instantiated twice: with target("avx2,fma") and for the baseline. A table of function pointers
// picks the instantiation once, at load, from cpuid and XCR0 (the OS must save the YMM state).
#include "CKernels.h"
#include "vec8.h"

typedef struct { v8 r, i; } cx;
INLINE cx add(cx a, cx b) { return (cx){a.r + b.r, a.i + b.i}; }
INLINE cx sub(cx a, cx b) { return (cx){a.r - b.r, a.i - b.i}; }
/// × (−i) forward, × i inverse.
INLINE cx rot(cx a, int inv) { return inv ? (cx){-a.i, a.r} : (cx){a.i, -a.r}; }
/// × e^{∓2πi m/16} (− forward) with (c, s) = (cos, sin)(2π m/16).
INLINE cx tw(cx a, float c, float s, int inv) {
    v8 C = splat(c), S = splat(inv ? s : -s);
    return (cx){a.r * C - a.i * S, a.r * S + a.i * C};
}

static const float C1 = 0.92387953251128674f, S1 = 0.38268343236508978f, R2 = 0.70710678118654752f;

INLINE void dft4(cx x0, cx x1, cx x2, cx x3, int inv, cx *y0, cx *y1, cx *y2, cx *y3) {
    cx s02 = add(x0, x2), d02 = sub(x0, x2), s13 = add(x1, x3), j = rot(sub(x1, x3), inv);
    *y0 = add(s02, s13); *y1 = add(d02, j); *y2 = sub(s02, s13); *y3 = sub(d02, j);
}

/// y[k] = Σₙ x[n] e^{∓2πi nk/16}: a 4×4 Cooley–Tukey split (n = 4·n1 + n2), 176 real flops per lane. x and y may
/// be the same.
INLINE void fft16(const cx *x, cx *y, int inv) {
    cx a[4][4];
    for (int n2 = 0; n2 < 4; n2++)
        dft4(x[n2], x[n2 + 4], x[n2 + 8], x[n2 + 12], inv, &a[n2][0], &a[n2][1], &a[n2][2], &a[n2][3]);
    a[1][1] = tw(a[1][1], C1, S1, inv); a[1][2] = tw(a[1][2], R2, R2, inv); a[1][3] = tw(a[1][3], S1, C1, inv);
    a[2][1] = tw(a[2][1], R2, R2, inv); a[2][2] = rot(a[2][2], inv);        a[2][3] = tw(a[2][3], -R2, R2, inv);
    a[3][1] = tw(a[3][1], S1, C1, inv); a[3][2] = tw(a[3][2], -R2, R2, inv); a[3][3] = tw(a[3][3], -C1, -S1, inv);
    for (int k1 = 0; k1 < 4; k1++)
        dft4(a[0][k1], a[1][k1], a[2][k1], a[3][k1], inv, &y[k1], &y[k1 + 4], &y[k1 + 8], &y[k1 + 12]);
}

/// Eight rows a[l] (8 floats each) → eight columns o[c] with o[c][l] = a[l][c].
INLINE void transpose8(const v8 *a, v8 *o) {
    v8 t[8], u[8];
    for (int p = 0; p < 4; p++) {
        t[2 * p] = __builtin_shufflevector(a[2 * p], a[2 * p + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * p + 1] = __builtin_shufflevector(a[2 * p], a[2 * p + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h + 0] = __builtin_shufflevector(t[h], t[h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 1] = __builtin_shufflevector(t[h], t[h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[h + 2] = __builtin_shufflevector(t[h + 1], t[h + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[h + 3] = __builtin_shufflevector(t[h + 1], t[h + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int c = 0; c < 4; c++) {
        o[c] = __builtin_shufflevector(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        o[c + 4] = __builtin_shufflevector(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/// One row of a block from eight planes: out[c][l] = src[l·plane + c·cs] for c < cols, zeros beyond.
INLINE void gather_row(const float *src, ptrdiff_t plane, ptrdiff_t cs, int cols, v8 *out) {
    int c = 0;
    if (plane == 1 && cs == 8) {
        for (; c < cols; c++) out[c] = ld(src + 8 * c);
    } else if (cs == 1) {
        for (; c + 8 <= cols; c += 8) {
            v8 a[8];
            for (int l = 0; l < 8; l++) a[l] = ld(src + l * plane + c);
            transpose8(a, out + c);
        }
    }
    for (; c < cols; c++) {
        const float *p = src + c * cs;
        out[c] = (v8){p[0], p[plane], p[2 * plane], p[3 * plane], p[4 * plane], p[5 * plane], p[6 * plane], p[7 * plane]};
    }
    for (; c < 16; c++) out[c] = splat(0);
}

INLINE void store_bin(float *re, float *im, ptrdiff_t off, int interleaved, v8 r, v8 i) {
    if (interleaved) {
        st(re + off, __builtin_shufflevector(r, i, 0, 8, 1, 9, 2, 10, 3, 11));
        st(re + off + 8, __builtin_shufflevector(r, i, 4, 12, 5, 13, 6, 14, 7, 15));
    } else {
        st(re + off, r); st(im + off, i);
    }
}

INLINE cx load_bin(const float *re, const float *im, ptrdiff_t off, int interleaved) {
    if (interleaved) {
        v8 lo = ld(re + off), hi = ld(re + off + 8);
        return (cx){__builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14),
                    __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15)};
    }
    return (cx){ld(re + off), ld(im + off)};
}

INLINE void forward_body(const float *src, ptrdiff_t plane, ptrdiff_t rs, ptrdiff_t cs, int rows, int cols,
                         float *re, float *im, ptrdiff_t bs, int interleaved) {
    v8 Fr[144], Fi[144];
    // Rows 2p and 2p+1 as z = a + i·b: Z = A + i·B with A, B Hermitian, so A[k] = (Z[k] + conj Z[−k]) / 2,
    // B[k] = (Z[k] − conj Z[−k]) / 2i.
    for (int p = 0; p < 8; p++) {
        if (2 * p >= rows) {
            for (int k = 0; k < 18; k++) { Fr[18 * p + k] = splat(0); Fi[18 * p + k] = splat(0); }
            continue;
        }
        v8 a[16], b[16];
        cx z[16];
        gather_row(src + 2 * p * rs, plane, cs, cols, a);
        if (2 * p + 1 < rows) gather_row(src + (2 * p + 1) * rs, plane, cs, cols, b);
        else for (int n = 0; n < 16; n++) b[n] = splat(0);
        for (int n = 0; n < 16; n++) z[n] = (cx){a[n], b[n]};
        fft16(z, z, 0);
        v8 h = splat(0.5f);
        for (int k = 0; k <= 8; k++) {
            cx x = z[k], m = z[(16 - k) & 15];
            Fr[18 * p + k] = (x.r + m.r) * h; Fi[18 * p + k] = (x.i - m.i) * h;
            Fr[18 * p + 9 + k] = (x.i + m.i) * h; Fi[18 * p + 9 + k] = (m.r - x.r) * h;
        }
    }
    for (int k = 0; k < 9; k++) {
        cx col[16];
        for (int u = 0; u < 16; u++) col[u] = (cx){Fr[u * 9 + k], Fi[u * 9 + k]};
        fft16(col, col, 0);
        for (int u = 0; u < 16; u++) store_bin(re, im, (u * 9 + k) * bs, interleaved, col[u].r, col[u].i);
    }
}

INLINE void inverse_body(const float *re, const float *im, ptrdiff_t bs, int interleaved, int rows, int cols,
                         float *tile) {
    v8 Fr[144], Fi[144];
    for (int k = 0; k < 9; k++) {
        cx col[16];
        for (int u = 0; u < 16; u++) col[u] = load_bin(re, im, (u * 9 + k) * bs, interleaved);
        fft16(col, col, 1);
        for (int u = 0; u < 16; u++) { Fr[u * 9 + k] = col[u].r; Fi[u * 9 + k] = col[u].i; }
    }
    // Rows r and r+1 (each the half spectrum of a real row) as Z = X₁ + i·X₂ over all 16 bins: its inverse is
    // x₁ + i·x₂.
    v8 zero = splat(0);
    for (int r = 0; r < rows; r += 2) {
        int a = r * 9, two = r + 1 < rows, b = (r + 1) * 9;
        cx z[16];
        for (int k = 0; k <= 8; k++) {
            int edge = k == 0 || k == 8;
            v8 x1r = Fr[a + k], x1i = edge ? zero : Fi[a + k];
            v8 x2r = two ? Fr[b + k] : zero, x2i = two && !edge ? Fi[b + k] : zero;
            z[k] = (cx){x1r - x2i, x1i + x2r};
            if (!edge) z[16 - k] = (cx){x1r + x2i, x2r - x1i};
        }
        fft16(z, z, 1);
        for (int s = 0; s < cols; s++) st(tile + (r * 16 + s) * 8, z[s].r);
        if (two) for (int s = 0; s < cols; s++) st(tile + ((r + 1) * 16 + s) * 8, z[s].i);
    }
}

INLINE void store_lanes(float *dst, ptrdiff_t plane, v8 v) {
    for (int l = 0; l < 8; l++) dst[l * plane] = v[l];
}

INLINE void pool_body(const float *tile, int rows, int cols, float scale, const float *bias8, float *dst,
                      ptrdiff_t plane, ptrdiff_t rs, uint8_t *argmax) {
    v8 S = splat(scale), B = ld(bias8), zero = splat(0);
    for (int pr = 0; pr < rows / 2; pr++) {
        for (int pc = 0; pc < cols / 2; pc++) {
            const float *t = tile + (2 * pr * 16 + 2 * pc) * 8;
            v8 a0 = ld(t), a1 = ld(t + 8), a2 = ld(t + 128), a3 = ld(t + 136);
            // The max of the raw outputs, then scale and bias (the scale is a power of two: the order is exact).
            v8 m = vmax(vmax(a0, a1), vmax(a2, a3));
            ptrdiff_t o = pr * rs + pc;
            store_lanes(dst + o, plane, relu(m * S + B));
            if (argmax) {
                v8 mx = a0; i8 q = (i8){0, 0, 0, 0, 0, 0, 0, 0};
                i8 c = a1 > mx; mx = sel(c, a1, mx); q = (c & 1) | (~c & q);
                c = a2 > mx; mx = sel(c, a2, mx); q = (c & 2) | (~c & q);
                c = a3 > mx; q = (c & 3) | (~c & q);
                for (int l = 0; l < 8; l++) argmax[o + l * plane] = (uint8_t)q[l];
            }
        }
    }
}

INLINE void unpool_body(const float *dp, const float *pooled, const uint8_t *argmax, ptrdiff_t plane, ptrdiff_t rs,
                        int rows, int cols, float *tile, float *db8) {
    v8 zero = splat(0), sum = zero;
    for (int i = 0; i < 256; i++) st(tile + 8 * i, zero);
    for (int pr = 0; pr < rows / 2; pr++) {
        for (int pc = 0; pc < cols / 2; pc++) {
            ptrdiff_t o = pr * rs + pc;
            v8 g, pv;
            i8 q;
            for (int l = 0; l < 8; l++) { g[l] = dp[o + l * plane]; pv[l] = pooled[o + l * plane]; q[l] = argmax[o + l * plane]; }
            g = sel(pv > zero, g, zero);
            sum += g;
            float *t = tile + (2 * pr * 16 + 2 * pc) * 8;
            st(t, sel(q == 0, g, zero)); st(t + 8, sel(q == 1, g, zero));
            st(t + 128, sel(q == 2, g, zero)); st(t + 136, sel(q == 3, g, zero));
        }
    }
    st(db8, ld(db8) + sum);
}

/// dst[l·plane + r·rs + c] = f(dst…, tile(r, c, l)) with f: += v·scale (accumulate) or max(v·scale + bias, 0).
INLINE void scatter_body(const float *tile, int rows, int cols, float scale, const float *bias8, float *dst,
                         ptrdiff_t plane, ptrdiff_t rs, int accumulate) {
    v8 S = splat(scale), zero = splat(0), B = bias8 ? ld(bias8) : zero;
    for (int r = 0; r < rows; r++) {
        const float *t = tile + r * 16 * 8;
        float *d = dst + r * rs;
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            v8 a[8], o[8];
            for (int j = 0; j < 8; j++) a[j] = ld(t + (c + j) * 8);
            transpose8(a, o);   // o[l] = lane l of columns c…c+7
            for (int l = 0; l < 8; l++) {
                float *p = d + l * plane + c;   // o[l] runs over columns: lane l's bias for all of them
                st(p, accumulate ? ld(p) + o[l] * S : relu(o[l] * S + splat(B[l])));
            }
        }
        for (; c < cols; c++) {
            v8 v = ld(t + c * 8);
            v8 y = accumulate ? v * S : relu(v * S + B);
            for (int l = 0; l < 8; l++) {
                if (accumulate) d[l * plane + c] += y[l]; else d[l * plane + c] = y[l];
            }
        }
    }
}


/// C[i][j] = Σₖ A[i][k]·B[k][j] for MR rows and 16 columns (two vectors) of B packed as [k][16].
INLINE void product_rows(int MR, int K, const float *A, ptrdiff_t lda, const float *B, float *C, ptrdiff_t ldc) {
    v8 acc[5][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = splat(0); acc[i][1] = splat(0); }
    for (int k = 0; k < K; k++) {
        v8 b0 = ld(B + 16 * k), b1 = ld(B + 16 * k + 8);
        for (int i = 0; i < MR; i++) {
            v8 a = splat(A[i * lda + k]);
            acc[i][0] = a * b0 + acc[i][0]; acc[i][1] = a * b1 + acc[i][1];
        }
    }
    for (int i = 0; i < MR; i++) { st(C + i * ldc, acc[i][0]); st(C + i * ldc + 8, acc[i][1]); }
}

INLINE void products_body(int bins, int M, int N, int K, const float *A, ptrdiff_t lda, ptrdiff_t binA, const float *B,
                          ptrdiff_t binB, float *C, ptrdiff_t ldc, ptrdiff_t binC) {
    for (int b = 0; b < bins; b++) {
        const float *a = A + b * binA, *w = B + b * binB;
        float *c = C + b * binC;
        for (int j = 0; j < N; j += 16) {
            // Five rows at a time: ten accumulators, two B loads and five broadcasts per ten FMAs.
            int i = 0;
            for (; i + 5 <= M; i += 5) product_rows(5, K, a + i * lda, lda, w + j * K, c + i * ldc + j, ldc);
            switch (M - i) {
            case 4: product_rows(4, K, a + i * lda, lda, w + j * K, c + i * ldc + j, ldc); break;
            case 3: product_rows(3, K, a + i * lda, lda, w + j * K, c + i * ldc + j, ldc); break;
            case 2: product_rows(2, K, a + i * lda, lda, w + j * K, c + i * ldc + j, ldc); break;
            case 1: product_rows(1, K, a + i * lda, lda, w + j * K, c + i * ldc + j, ldc); break;
            }
        }
    }
}

// The backward products of the FFT convolutions on the complex spectra as they lie (re and im rows apart): the
// multiply-adds of the real block form, without its transposes and packing (sgemm at these sizes, m 25–50, packs
// more than it multiplies). A row holds n complex values as re[n] then im[n].

/// y[q] = Σ_c x[q][c] · conj(w[c]) for JB rows q, eight columns at a time (w rows: m complex values).
#define CONJ_ROWS(JB)                                                                                               \
    INLINE void conj_rows##JB(int n, int m, const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, float *y, \
                              ptrdiff_t ldy) {                                                                    \
        for (int o = 0; o < m; o += 8) {                                                                          \
            v8 r[JB], i[JB];                                                                                      \
            for (int q = 0; q < JB; q++) { r[q] = splat(0); i[q] = splat(0); }                                    \
            for (int c = 0; c < n; c++) {                                                                         \
                v8 wr = ld(w + c * ldw + o), wi = ld(w + c * ldw + m + o);                                        \
                for (int q = 0; q < JB; q++) {                                                                    \
                    v8 xr = splat(x[q * ldx + c]), xi = splat(x[q * ldx + n + c]);                                \
                    r[q] = xr * wr + r[q]; r[q] = xi * wi + r[q];                                                 \
                    i[q] = xi * wr + i[q]; i[q] = i[q] - xr * wi;                                                 \
                }                                                                                                 \
            }                                                                                                     \
            for (int q = 0; q < JB; q++) { st(y + q * ldy + o, r[q]); st(y + q * ldy + m + o, i[q]); }            \
        }                                                                                                         \
    }
CONJ_ROWS(1)
CONJ_ROWS(4)

INLINE void conj_products_body(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX,
                               const float *w, ptrdiff_t ldw, ptrdiff_t binW, float *y, ptrdiff_t ldy, ptrdiff_t binY) {
    for (int b = 0; b < bins; b++) {
        const float *xb = x + b * binX, *wb = w + b * binW;
        float *yb = y + b * binY;
        int q = 0;
        for (; q + 4 <= rows; q += 4) conj_rows4(n, m, xb + q * ldx, ldx, wb, ldw, yb + q * ldy, ldy);
        for (; q < rows; q++) conj_rows1(n, m, xb + q * ldx, ldx, wb, ldw, yb + q * ldy, ldy);
    }
}

/// g[c] += Σ_j conj(x[j][c]) · dy[j] for CB rows c from c0, eight columns at a time.
#define GRAD_ROWS(CB)                                                                                               \
    INLINE void grad_rows##CB(int rows, int n, int m, const float *x, ptrdiff_t ldx, const float *dy, ptrdiff_t ldy, \
                              float *g, ptrdiff_t ldg, int c0) {                                                  \
        for (int o = 0; o < m; o += 8) {                                                                          \
            v8 r[CB], i[CB];                                                                                      \
            for (int q = 0; q < CB; q++) { r[q] = ld(g + (c0 + q) * ldg + o); i[q] = ld(g + (c0 + q) * ldg + m + o); } \
            for (int j = 0; j < rows; j++) {                                                                      \
                v8 dr = ld(dy + j * ldy + o), di = ld(dy + j * ldy + m + o);                                      \
                for (int q = 0; q < CB; q++) {                                                                    \
                    v8 xr = splat(x[j * ldx + c0 + q]), xi = splat(x[j * ldx + n + c0 + q]);                      \
                    r[q] = xr * dr + r[q]; r[q] = xi * di + r[q];                                                 \
                    i[q] = xr * di + i[q]; i[q] = i[q] - xi * dr;                                                 \
                }                                                                                                 \
            }                                                                                                     \
            for (int q = 0; q < CB; q++) { st(g + (c0 + q) * ldg + o, r[q]); st(g + (c0 + q) * ldg + m + o, i[q]); } \
        }                                                                                                         \
    }
GRAD_ROWS(1)
GRAD_ROWS(4)

INLINE void conj_gradients_body(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX,
                                const float *dy, ptrdiff_t ldy, ptrdiff_t binY, float *g, ptrdiff_t ldg, ptrdiff_t binG) {
    for (int b = 0; b < bins; b++) {
        const float *xb = x + b * binX, *db = dy + b * binY;
        float *gb = g + b * binG;
        int c = 0;
        for (; c + 4 <= n; c += 4) grad_rows4(rows, n, m, xb, ldx, db, ldy, gb, ldg, c);
        for (; c < n; c++) grad_rows1(rows, n, m, xb, ldx, db, ldy, gb, ldg, c);
    }
}

// conv1 direct: one input channel, k ≤ 8, a k×k valid correlation on the padded input, vectorised over output
// columns. im2col + sgemm has K = k² and M = cout there (sgemm's worst shape, plus the im2col copy); here each
// loaded input vector feeds four channels' FMAs and the outputs go straight to the pool.

/// Conv rows 0 and 1 of four channels (weights w[c·kk + ky·k + kx]) over 16 columns of x (row pitch `pitch`).
INLINE void direct_block(const float *x, ptrdiff_t pitch, int k, const float *w, int kk, v8 acc[2][4][2]) {
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 4; c++) { acc[r][c][0] = splat(0); acc[r][c][1] = splat(0); }
        for (int ky = 0; ky < k; ky++) {
            const float *row = x + (r + ky) * pitch, *wr = w + ky * k;
            for (int kx = 0; kx < k; kx++) {
                v8 a = ld(row + kx), b = ld(row + kx + 8);
                for (int c = 0; c < 4; c++) {
                    v8 wv = splat(wr[c * kk + kx]);
                    acc[r][c][0] = wv * a + acc[r][c][0]; acc[r][c][1] = wv * b + acc[r][c][1];
                }
            }
        }
    }
}

typedef uint8_t u8x8 __attribute__((vector_size(8)));

/// The block's 2×2 pools, + bias, ReLU: n ≤ 8 pooled columns per channel into dst[c·plane …], argmax likewise.
INLINE void direct_pool(v8 acc[2][4][2], const float *bias4, int n, float *dst, ptrdiff_t plane, uint8_t *argmax) {
    v8 zero = splat(0);
    for (int c = 0; c < 4; c++) {
        v8 a0 = __builtin_shufflevector(acc[0][c][0], acc[0][c][1], 0, 2, 4, 6, 8, 10, 12, 14);
        v8 a1 = __builtin_shufflevector(acc[0][c][0], acc[0][c][1], 1, 3, 5, 7, 9, 11, 13, 15);
        v8 a2 = __builtin_shufflevector(acc[1][c][0], acc[1][c][1], 0, 2, 4, 6, 8, 10, 12, 14);
        v8 a3 = __builtin_shufflevector(acc[1][c][0], acc[1][c][1], 1, 3, 5, 7, 9, 11, 13, 15);
        v8 y = relu(vmax(vmax(a0, a1), vmax(a2, a3)) + splat(bias4[c]));
        float *d = dst + c * plane;
        if (n == 8) st(d, y); else for (int j = 0; j < n; j++) d[j] = y[j];
        if (!argmax) continue;
        v8 mx = a0; i8 q = (i8){0, 0, 0, 0, 0, 0, 0, 0};
        i8 m = a1 > mx; mx = sel(m, a1, mx); q = (m & 1) | (~m & q);
        m = a2 > mx; mx = sel(m, a2, mx); q = (m & 2) | (~m & q);
        m = a3 > mx; q = (m & 3) | (~m & q);
        u8x8 q8 = __builtin_convertvector(q, u8x8);
        uint8_t *a = argmax + c * plane;
        if (n == 8) __builtin_memcpy(a, &q8, 8); else for (int j = 0; j < n; j++) a[j] = q8[j];
    }
}

INLINE void direct_pool_body(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *w,
                             const float *bias, int ph, int pw, float *out, ptrdiff_t outPlane, ptrdiff_t outW,
                             uint8_t *argmax) {
    int kk = k * k;
    float tail[9 * 32];
    for (int b = 0; b < batch; b++) {
        const float *img = x + (ptrdiff_t)b * hp2 * wp2;
        for (int py = 0; py < ph; py++) {
            const float *rows = img + 2 * py * wp2;
            for (int c0 = 0; c0 < cout; c0 += 4) {
                ptrdiff_t o = ((ptrdiff_t)b * cout + c0) * outPlane + py * outW;
                for (int px = 0; px < pw; px += 8) {
                    v8 acc[2][4][2];
                    int n = pw - px < 8 ? pw - px : 8;
                    if (n == 8) {
                        direct_block(rows + 2 * px, wp2, k, w + c0 * kk, kk, acc);
                    } else {
                        // The last block would read past the row: its k + 1 input rows, zero-extended to 32 columns.
                        int avail = wp2 - 2 * px < 32 ? wp2 - 2 * px : 32;
                        for (int r = 0; r <= k; r++)
                            for (int j = 0; j < 32; j++) tail[r * 32 + j] = j < avail ? rows[r * wp2 + 2 * px + j] : 0;
                        direct_block(tail, 32, k, w + c0 * kk, kk, acc);
                    }
                    direct_pool(acc, bias + c0, n, out + o + px, outPlane, argmax ? argmax + o + px : 0);
                }
            }
        }
    }
}

/// k = 7 (conv1's) with the kernel size a constant, so the tap loops unroll; any other k ≤ 8 generic.
INLINE void direct_pool_dispatch(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *w,
                                 const float *bias, int ph, int pw, float *out, ptrdiff_t outPlane, ptrdiff_t outW,
                                 uint8_t *argmax) {
    if (k == 7) direct_pool_body(x, batch, hp2, wp2, 7, cout, w, bias, ph, pw, out, outPlane, outW, argmax);
    else direct_pool_body(x, batch, hp2, wp2, k, cout, w, bias, ph, pw, out, outPlane, outW, argmax);
}

/// acc[ky] += g · x[off[ky] …+8] for ky < 8, lane kx the tap (ky, kx); off repeats kernel row k − 1 beyond k
/// (those accumulators are unused): a constant count, no branches, the accumulators in registers.
INLINE void grad_tap(const float *s, const ptrdiff_t *off, v8 G, v8 *acc) {
    for (int ky = 0; ky < 8; ky++) acc[ky] = G * ld(s + off[ky]) + acc[ky];
}

/// The same where the row ends within 8 floats of s: only `avail` of them read (the others as zeros).
INLINE void grad_tap_edge(const float *s, const ptrdiff_t *off, int avail, v8 G, v8 *acc) {
    for (int ky = 0; ky < 8; ky++) {
        v8 v = splat(0);
        for (int j = 0; j < avail && j < 8; j++) v[j] = s[off[ky] + j];
        acc[ky] = G * v + acc[ky];
    }
}

INLINE void direct_grad_body(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *dp,
                             const float *pooled, const uint8_t *argmax, int ph, int pw, ptrdiff_t outPlane,
                             ptrdiff_t outW, float *dW, float *db) {
    int kk = k * k;
    // Pooled columns whose window's 8-float reads (from column 2·px + 1 at most) stay inside the row.
    int fast = wp2 >= 9 ? (wp2 - 9) / 2 + 1 : 0;
    if (fast > pw) fast = pw;
    // The input offset of each window position (the argmax's 0…3) from the window's top-left.
    const ptrdiff_t window[4] = {0, 1, wp2, wp2 + 1};
    ptrdiff_t off[8];
    for (int ky = 0; ky < 8; ky++) off[ky] = (ptrdiff_t)(ky < k ? ky : k - 1) * wp2;
    ptrdiff_t at[pw > 0 ? pw : 1];
    float gs[pw > 0 ? pw : 1];
    v8 zero = splat(0);
    // Channel by channel over each image: three sequential streams (dPooled, pooled, argmax) and the image from L2;
    // pooled rows outside channels (the input rows in L1, but 3·cout interleaved streams) measured slower in training.
    for (int b = 0; b < batch; b++) {
        const float *img = x + (ptrdiff_t)b * hp2 * wp2;
        for (int c = 0; c < cout; c++) {
            // Kernel row ky's accumulator, lane kx the tap (ky, kx).
            v8 acc[8];
            for (int ky = 0; ky < 8; ky++) acc[ky] = zero;
            float sum = 0;
            for (int py = 0; py < ph; py++) {
                ptrdiff_t o = ((ptrdiff_t)b * cout + c) * outPlane + py * outW;
                const float *g = dp + o, *v = pooled + o;
                const uint8_t *q = argmax + o;
                const float *row = img + 2 * py * wp2;
                // Only the window position the pool took, and only past the ReLU: those compacted first (branch-free),
                // then the FMAs on them alone.
                int px = 0, n = 0;
                for (; px < fast; px++) {
                    at[n] = 2 * px + window[q[px] & 3]; gs[n] = g[px];
                    n += v[px] > 0;
                }
                for (int i = 0; i < n; i++) {
                    sum += gs[i];
                    grad_tap(row + at[i], off, splat(gs[i]), acc);
                }
                for (; px < pw; px++) {
                    v8 G = sel(splat(v[px]) > zero, splat(g[px]), zero);
                    sum += G[0];
                    int yy = 2 * py + (q[px] >> 1), xx = 2 * px + (q[px] & 1);
                    grad_tap_edge(img + yy * wp2 + xx, off, wp2 - xx, G, acc);
                }
            }
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) dW[c * kk + ky * k + kx] += acc[ky][kx];
            db[c] += sum;
        }
    }
}

INLINE void direct_grad_dispatch(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *dp,
                                 const float *pooled, const uint8_t *argmax, int ph, int pw, ptrdiff_t outPlane,
                                 ptrdiff_t outW, float *dW, float *db) {
    if (k == 7) direct_grad_body(x, batch, hp2, wp2, 7, cout, dp, pooled, argmax, ph, pw, outPlane, outW, dW, db);
    else direct_grad_body(x, batch, hp2, wp2, k, cout, dp, pooled, argmax, ph, pw, outPlane, outW, dW, db);
}

typedef struct {
    void (*forward)(const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int, int, float *, float *, ptrdiff_t, int);
    void (*inverse)(const float *, const float *, ptrdiff_t, int, int, int, float *);
    void (*pool)(const float *, int, int, float, const float *, float *, ptrdiff_t, ptrdiff_t, uint8_t *);
    void (*unpool)(const float *, const float *, const uint8_t *, ptrdiff_t, ptrdiff_t, int, int, float *, float *);
    void (*scatter)(const float *, int, int, float, const float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*products)(int, int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t,
                     ptrdiff_t);
    void (*conj_products)(int, int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t,
                          float *, ptrdiff_t, ptrdiff_t);
    void (*conj_gradients)(int, int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t,
                           float *, ptrdiff_t, ptrdiff_t);
    void (*direct_pool)(const float *, int, int, int, int, int, const float *, const float *, int, int, float *,
                        ptrdiff_t, ptrdiff_t, uint8_t *);
    void (*direct_grad)(const float *, int, int, int, int, int, const float *, const float *, const uint8_t *, int, int,
                        ptrdiff_t, ptrdiff_t, float *, float *);
} kernels;

#define INSTANTIATE(NAME, ATTR)                                                                                      \
    ATTR static void NAME##_forward(const float *s, ptrdiff_t p, ptrdiff_t rs, ptrdiff_t cs, int r, int c, float *re, \
                                    float *im, ptrdiff_t bs, int il) { forward_body(s, p, rs, cs, r, c, re, im, bs, il); } \
    ATTR static void NAME##_inverse(const float *re, const float *im, ptrdiff_t bs, int il, int r, int c, float *t) { \
        inverse_body(re, im, bs, il, r, c, t); }                                                                     \
    ATTR static void NAME##_pool(const float *t, int r, int c, float s, const float *b, float *d, ptrdiff_t p,       \
                                 ptrdiff_t rs, uint8_t *a) { pool_body(t, r, c, s, b, d, p, rs, a); }                 \
    ATTR static void NAME##_unpool(const float *dp, const float *pd, const uint8_t *a, ptrdiff_t p, ptrdiff_t rs,    \
                                   int r, int c, float *t, float *db) { unpool_body(dp, pd, a, p, rs, r, c, t, db); } \
    ATTR static void NAME##_scatter(const float *t, int r, int c, float s, const float *b, float *d, ptrdiff_t p,    \
                                    ptrdiff_t rs, int acc) { scatter_body(t, r, c, s, b, d, p, rs, acc); }            \
    ATTR static void NAME##_products(int n, int m, int N, int K, const float *A, ptrdiff_t lda, ptrdiff_t ba,          \
                                     const float *B, ptrdiff_t bb, float *C, ptrdiff_t ldc, ptrdiff_t bc) {           \
        products_body(n, m, N, K, A, lda, ba, B, bb, C, ldc, bc); }                                                   \
    ATTR static void NAME##_conj_products(int bs, int r, int n, int m, const float *x, ptrdiff_t lx, ptrdiff_t bx,     \
                                          const float *w, ptrdiff_t lw, ptrdiff_t bw, float *y, ptrdiff_t ly,          \
                                          ptrdiff_t by) { conj_products_body(bs, r, n, m, x, lx, bx, w, lw, bw, y, ly, by); } \
    ATTR static void NAME##_conj_gradients(int bs, int r, int n, int m, const float *x, ptrdiff_t lx, ptrdiff_t bx,    \
                                           const float *d, ptrdiff_t ld_, ptrdiff_t bd, float *g, ptrdiff_t lg,        \
                                           ptrdiff_t bg) { conj_gradients_body(bs, r, n, m, x, lx, bx, d, ld_, bd, g, lg, bg); } \
    ATTR static void NAME##_direct_pool(const float *x, int n, int h, int w, int k, int co, const float *wt,           \
                                        const float *b, int ph, int pw, float *o, ptrdiff_t op, ptrdiff_t ow,          \
                                        uint8_t *a) { direct_pool_dispatch(x, n, h, w, k, co, wt, b, ph, pw, o, op, ow, a); } \
    ATTR static void NAME##_direct_grad(const float *x, int n, int h, int w, int k, int co, const float *dp,           \
                                        const float *pd, const uint8_t *a, int ph, int pw, ptrdiff_t op, ptrdiff_t ow, \
                                        float *dw, float *db) { direct_grad_dispatch(x, n, h, w, k, co, dp, pd, a, ph, pw, op, ow, dw, db); } \
    static const kernels NAME = {NAME##_forward, NAME##_inverse, NAME##_pool, NAME##_unpool, NAME##_scatter,          \
                                 NAME##_products, NAME##_conj_products, NAME##_conj_gradients, NAME##_direct_pool,     \
                                 NAME##_direct_grad};

INSTANTIATE(baseline, )
#if defined(__x86_64__)
INSTANTIATE(avx2, __attribute__((target("avx2,fma"))))
#include <cpuid.h>
/// AVX2 and FMA in cpuid, and the OS saving the YMM state (XCR0 bits 1 and 2).
static int cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}
#else
static int cpu_has_avx2_fma(void) { return 0; }
#endif

static const kernels *active = &baseline;
static int active_level = 1;

__attribute__((constructor)) static void pick_kernels(void) { bm_kernels_select(2); }

int bm_kernels_level(void) { return active_level; }

int bm_kernels_select(int level) {
#if defined(__x86_64__)
    if (level >= 2 && cpu_has_avx2_fma()) { active = &avx2; active_level = 2; return 2; }
#endif
    active = &baseline; active_level = 1;
    return 1;
}

void bm_fft16_forward(const float *src, ptrdiff_t plane, ptrdiff_t rowStride, ptrdiff_t colStride, int rows, int cols,
                      float *re, float *im, ptrdiff_t binStride, int interleaved) {
    active->forward(src, plane, rowStride, colStride, rows, cols, re, im, binStride, interleaved);
}

void bm_fft16_inverse(const float *re, const float *im, ptrdiff_t binStride, int interleaved, int rows, int cols,
                      float *tile) {
    active->inverse(re, im, binStride, interleaved, rows, cols, tile);
}

void bm_pool_bias_relu(const float *tile, int rows, int cols, float scale, const float *bias8, float *dst,
                       ptrdiff_t plane, ptrdiff_t rowStride, uint8_t *argmax) {
    active->pool(tile, rows, cols, scale, bias8, dst, plane, rowStride, argmax);
}

void bm_unpool_tile(const float *dPooled, const float *pooled, const uint8_t *argmax, ptrdiff_t plane,
                    ptrdiff_t rowStride, int rows, int cols, float *tile, float *db8) {
    active->unpool(dPooled, pooled, argmax, plane, rowStride, rows, cols, tile, db8);
}

void bm_tile_scatter_add(const float *tile, int rows, int cols, float scale, float *dst, ptrdiff_t plane,
                         ptrdiff_t rowStride) {
    active->scatter(tile, rows, cols, scale, 0, dst, plane, rowStride, 1);
}

void bm_tile_bias_relu(const float *tile, int rows, int cols, float scale, const float *bias8, float *dst,
                       ptrdiff_t plane, ptrdiff_t rowStride) {
    active->scatter(tile, rows, cols, scale, bias8, dst, plane, rowStride, 0);
}

void bm_bin_products(int bins, int m, int n, int k, const float *a, ptrdiff_t lda, ptrdiff_t binA, const float *b,
                     ptrdiff_t binB, float *c, ptrdiff_t ldc, ptrdiff_t binC) {
    active->products(bins, m, n, k, a, lda, binA, b, binB, c, ldc, binC);
}

void bm_conj_products(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX, const float *w,
                      ptrdiff_t ldw, ptrdiff_t binW, float *y, ptrdiff_t ldy, ptrdiff_t binY) {
    active->conj_products(bins, rows, n, m, x, ldx, binX, w, ldw, binW, y, ldy, binY);
}

void bm_conj_gradients(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX, const float *dy,
                       ptrdiff_t ldy, ptrdiff_t binY, float *g, ptrdiff_t ldg, ptrdiff_t binG) {
    active->conj_gradients(bins, rows, n, m, x, ldx, binX, dy, ldy, binY, g, ldg, binG);
}

void bm_direct_pool_bias_relu(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *w,
                              const float *bias, int ph, int pw, float *out, ptrdiff_t outPlane, ptrdiff_t outW,
                              uint8_t *argmax) {
    active->direct_pool(x, batch, hp2, wp2, k, cout, w, bias, ph, pw, out, outPlane, outW, argmax);
}

void bm_direct_pool_gradients(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *dPooled,
                              const float *pooled, const uint8_t *argmax, int ph, int pw, ptrdiff_t outPlane,
                              ptrdiff_t outW, float *dW, float *db) {
    active->direct_grad(x, batch, hp2, wp2, k, cout, dPooled, pooled, argmax, ph, pw, outPlane, outW, dW, db);
}
