#ifndef BRAINMAP_CKERNELS_H
#define BRAINMAP_CKERNELS_H

// Small vector kernels of the FFT convolutions (FFT16's 16×16 real transforms and the per-block gathers, pools and
// scatters around them), eight channels per 8-float lane group. Each is compiled twice — for x86-64-v3 (AVX2 + FMA)
// and for the baseline the package targets — and the CPU picks once, at load (see kernels.c).
//
// Layouts: a "tile" is a 16×16 block of eight lanes, tile[(r·16 + c)·8 + l]. A half spectrum is 144 bins
// (u·9 + k, k < 9), each eight lanes of re and im: bin b at re[b·binStride …+8] and im[b·binStride …+8], or, when
// `interleaved`, re[b·binStride …+16] holding (re, im) pairs per lane (what cgemm reads) and im unused.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The vector unit the kernels run on: 2 = AVX2 + FMA, 1 = the baseline build.
int bm_kernels_level(void);
/// Tests only: run the kernels on `level` (2 only where the CPU has it); returns the level now in use.
int bm_kernels_select(int level);

/// A real 16×16 block → its half spectrum (e^{−2πi·nk/16}, unscaled). The block is gathered from eight channel
/// planes: lane l, row r < rows, column c < cols at src[l·plane + r·rowStride + c·colStride]; zeros beyond.
void bm_fft16_forward(const float *src, ptrdiff_t plane, ptrdiff_t rowStride, ptrdiff_t colStride, int rows, int cols,
                      float *re, float *im, ptrdiff_t binStride, int interleaved);

/// A half spectrum → rows 0..<rows, columns 0..<cols of its real 16×16 inverse (unscaled: ×256), into `tile`.
/// The imaginary parts of bins k = 0 and 8 are ignored. Reads the spectrum only.
void bm_fft16_inverse(const float *re, const float *im, ptrdiff_t binStride, int interleaved, int rows, int cols,
                      float *tile);

/// 2×2 max pool, then ×scale + bias and ReLU, of a tile's rows×cols (even) into eight output planes:
/// dst[l·plane + pr·rowStride + pc]; argmax (optional, same offsets) the window position 0…3 of the first maximum.
void bm_pool_bias_relu(const float *tile, int rows, int cols, float scale, const float *bias8,
                       float *dst, ptrdiff_t plane, ptrdiff_t rowStride, uint8_t *argmax);

/// The pool's backward pass into a zeroed tile: each positive pooled output's gradient at the window position its
/// argmax recorded (pooled, dPooled, argmax at the offsets `bm_pool_bias_relu` wrote); db8[l] += the lane's sum.
void bm_unpool_tile(const float *dPooled, const float *pooled, const uint8_t *argmax, ptrdiff_t plane,
                    ptrdiff_t rowStride, int rows, int cols, float *tile, float *db8);

/// dst[l·plane + r·rowStride + c] += tile(r, c, l) · scale for r < rows, c < cols.
void bm_tile_scatter_add(const float *tile, int rows, int cols, float scale, float *dst, ptrdiff_t plane,
                         ptrdiff_t rowStride);

/// dst[l·plane + r·rowStride + c] = max(tile(r, c, l) · scale + bias8[l], 0) for r < rows, c < cols.
void bm_tile_bias_relu(const float *tile, int rows, int cols, float scale, const float *bias8, float *dst,
                       ptrdiff_t plane, ptrdiff_t rowStride);

/// Per frequency bin b < bins: C_b[m×n] = A_b[m×k] · B_b[k×n], X_b = X + b·binX; A and C row-major, B packed in
/// column panels of 16, B_b[(j/16)·k·16 + kk·16 + j%16] (n a multiple of 16). The per-bin products of the FFT
/// convolutions: at their sizes (m 25–50, k 32, n 64) OpenBLAS's sgemm spends its time packing.
void bm_bin_products(int bins, int m, int n, int k, const float *a, ptrdiff_t lda, ptrdiff_t binA, const float *b,
                     ptrdiff_t binB, float *c, ptrdiff_t ldc, ptrdiff_t binC);

/// The backward products, per bin b < bins, on complex rows (n or m values: re[n] then im[n]), X_b = X + b·binX:
/// Y_b[q] = Σ_c X_b[q][c] · conj(W_b[c]) for rows q < rows (W_b: n rows of m complex values, m a multiple of 8) —
/// the input gradient, DY · conj(W)ᵀ with W stored transposed.
void bm_conj_products(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX, const float *w,
                      ptrdiff_t ldw, ptrdiff_t binW, float *y, ptrdiff_t ldy, ptrdiff_t binY);

/// G_b[c] += Σ_{j < rows} conj(X_b[j][c]) · DY_b[j] for c < n (X rows: n complex values; DY and G rows: m, a multiple
/// of 8) — the weight gradient's spectrum, accumulated over groups of blocks.
void bm_conj_gradients(int bins, int rows, int n, int m, const float *x, ptrdiff_t ldx, ptrdiff_t binX, const float *dy,
                       ptrdiff_t ldy, ptrdiff_t binY, float *g, ptrdiff_t ldg, ptrdiff_t binG);

// Winograd F(2×2, 3×3) (winograd.c), eight channels per lane group: a tile is the 4×4 input block under one 2×2
// pool window, its 16 bins V = Bᵀ d B at v[b·binStride + t·tileStride …+8] for tile t of a row of tiles.

/// The input transforms of a row of `tiles` tiles over eight channel planes: tile t reads rows 0..<4 and columns
/// 2t..<2t+4 of x[l·plane + r·rowStride + c].
void bm_wino_input(const float *x, ptrdiff_t plane, ptrdiff_t rowStride, int tiles, float *v, ptrdiff_t binStride,
                   ptrdiff_t tileStride);

/// The output transforms Y = Aᵀ M A of a row of tiles (eight output channels), then their 2×2 max, + bias8, ReLU:
/// dst[l·plane + t]; argmax (optional, same offsets) the window position 0…3 of the first maximum.
void bm_wino_output_pool(const float *m, ptrdiff_t binStride, ptrdiff_t tileStride, int tiles, const float *bias8,
                         float *dst, ptrdiff_t plane, uint8_t *argmax);

/// The pool's and output transform's backward pass for a row of tiles: each positive pooled output's gradient at
/// the window position its argmax recorded, as dM = A·dY·Aᵀ (all 16 bins written); db8[l] += the lane's sum.
void bm_wino_unpool(const float *dPooled, const float *pooled, const uint8_t *argmax, ptrdiff_t plane, int tiles,
                    float *dm, ptrdiff_t binStride, ptrdiff_t tileStride, float *db8);

/// The input transform's backward pass for a row of tiles: dx[l·plane + r·rowStride + c] += (B·dV·Bᵀ)(r, c − 2t)
/// (tiles overlap by two columns, and rows of tiles by two rows: the caller's dx accumulates).
void bm_wino_input_grad(const float *dv, ptrdiff_t binStride, ptrdiff_t tileStride, int tiles, float *dx,
                        ptrdiff_t plane, ptrdiff_t rowStride);

/// A one-input-channel k×k valid correlation (k ≤ 8, cout a multiple of 4), then 2×2 max pool, + bias and ReLU, of
/// `batch` images x[b][hp2][wp2] (padding stored) — conv1 direct, the layouts of ConvLayer.forwardPooled: pooled
/// (b, c, py, px) at out[(b·cout + c)·outPlane + py·outW + px] for py < ph, px < pw (out at the first pooled value,
/// inside any padding), argmax (optional, same offsets) the window position 0…3 of the first maximum.
/// w[c·k² + ky·k + kx].
void bm_direct_pool_bias_relu(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *w,
                              const float *bias, int ph, int pw, float *out, ptrdiff_t outPlane, ptrdiff_t outW,
                              uint8_t *argmax);

/// Its weight gradient: dW[c·k² + ky·k + kx] += Σ over pooled outputs with pooled > 0 of dPooled · x at the window
/// position argmax recorded, offset (ky, kx); db[c] += Σ of those dPooled. The conv output's gradient is nonzero at
/// one position per pool window at most, so only those are visited (a quarter of the dense products).
void bm_direct_pool_gradients(const float *x, int batch, int hp2, int wp2, int k, int cout, const float *dPooled,
                              const float *pooled, const uint8_t *argmax, int ph, int pw, ptrdiff_t outPlane,
                              ptrdiff_t outW, float *dW, float *db);

#ifdef __cplusplus
}
#endif
#endif
