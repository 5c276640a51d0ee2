/*
 * fastcorr: the register-blocked kernel of conv2d's direct method.
 *
 * conv2d sums, for each output channel o and output pixel p,
 *     out[o][p] = sum_t w[o][t] * in[p + off[t]]
 * over the taps t = (input channel, kernel row, kernel column). The caller
 * lays a band of the input out so that every tap is a constant offset off[t]
 * from the output pixel: padded (by the padding mode), split into stride
 * phases, and flattened row by row; the output pixels then form one
 * contiguous run (a few columns per row are junk and dropped by the caller).
 *
 * The register block is FC_CB_OC output channels x FC_CB_VECS vectors of
 * pixels: per tap, FC_CB_VECS input loads and FC_CB_OC weight broadcasts feed
 * FC_CB_OC * FC_CB_VECS fused multiply-adds (4 x 3: 7 loads per 12 FMAs),
 * so the loop is bound by the FMA units, not by loads, as in a GEMM
 * micro-kernel; the im2col matrix is never written. Weights are packed per
 * block of output channels as wp[t][FC_CB_OC].
 *
 *   out   FC_CB_OC rows of ldo elements (a scratch tile of the caller)
 *   in    base of the band; off[t] the offset of tap t
 *   npix  pixels, a multiple of FC_CB_VECS * lanes (the caller rounds up and
 *         keeps the reads past the band inside its buffer)
 *
 * Baseline x86-64 build plus an AVX2+FMA twin chosen at run time, as for the
 * other kernels. Thread-safe; knows nothing of Python.
 */
#ifndef FASTCORR_CONV_KERNELS_H
#define FASTCORR_CONV_KERNELS_H

#include "simd_kernels.h"

#define FC_CB_OC 4
#define FC_CB_VECS 3
/* Pixels of one block: the caller rounds npix up to a multiple of this
 * (8 float or 4 double lanes; the larger serves both). */
#define FC_CB_PIX (FC_CB_VECS * 8)

/* Portable body: the compiler vectorises the inner loops (SSE2 by default). */
#define FC_DEFINE_CONV_BLOCK_BASE(NAME, T, LANES)                              \
static void NAME(T *out, ptrdiff_t ldo, const T *in, const ptrdiff_t *off,    \
                 ptrdiff_t ntaps, const T *wp, ptrdiff_t npix)                 \
{                                                                              \
    enum { NP = FC_CB_VECS * LANES };                                          \
    for (ptrdiff_t p = 0; p < npix; p += NP) {                                 \
        T s[FC_CB_OC][NP];                                                     \
        for (int o = 0; o < FC_CB_OC; o++)                                     \
            for (int q = 0; q < NP; q++) s[o][q] = 0;                          \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                \
            const T *x = in + off[t] + p;                                      \
            const T *c = wp + t * FC_CB_OC;                                    \
            for (int o = 0; o < FC_CB_OC; o++)                                 \
                for (int q = 0; q < NP; q++) s[o][q] += c[o] * x[q];           \
        }                                                                      \
        for (int o = 0; o < FC_CB_OC; o++)                                     \
            for (int q = 0; q < NP; q++) out[o * ldo + p + q] = s[o][q];       \
    }                                                                          \
}

FC_DEFINE_CONV_BLOCK_BASE(fc_conv_block_f32_base, float, 8)
FC_DEFINE_CONV_BLOCK_BASE(fc_conv_block_f64_base, double, 4)

#if FC_X86_DISPATCH
#define FC_DEFINE_CONV_BLOCK_AVX2(NAME, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO) \
FC_TARGET_AVX2 static void NAME(T *out, ptrdiff_t ldo, const T *in,            \
                                const ptrdiff_t *off, ptrdiff_t ntaps,         \
                                const T *wp, ptrdiff_t npix)                   \
{                                                                              \
    for (ptrdiff_t p = 0; p < npix; p += FC_CB_VECS * LANES) {                 \
        VT s[FC_CB_OC][FC_CB_VECS];                                            \
        for (int o = 0; o < FC_CB_OC; o++)                                     \
            for (int v = 0; v < FC_CB_VECS; v++) s[o][v] = ZERO();             \
        const T *base = in + p;                                                \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                \
            const T *x = base + off[t];                                        \
            VT xv[FC_CB_VECS];                                                 \
            for (int v = 0; v < FC_CB_VECS; v++) xv[v] = LOADU(x + v * LANES); \
            for (int o = 0; o < FC_CB_OC; o++) {                               \
                const VT c = BCAST(wp + t * FC_CB_OC + o);                     \
                for (int v = 0; v < FC_CB_VECS; v++) s[o][v] = FMA(c, xv[v], s[o][v]); \
            }                                                                  \
        }                                                                      \
        for (int o = 0; o < FC_CB_OC; o++)                                     \
            for (int v = 0; v < FC_CB_VECS; v++)                               \
                STOREU(out + o * ldo + p + v * LANES, s[o][v]);                \
    }                                                                          \
}

FC_DEFINE_CONV_BLOCK_AVX2(fc_conv_block_f32_avx2, float, __m256, 8, _mm256_loadu_ps,
                          _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
                          _mm256_setzero_ps)
FC_DEFINE_CONV_BLOCK_AVX2(fc_conv_block_f64_avx2, double, __m256d, 4, _mm256_loadu_pd,
                          _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd,
                          _mm256_setzero_pd)
#endif

static void fc_conv_block_f32(float *out, ptrdiff_t ldo, const float *in, const ptrdiff_t *off,
                              ptrdiff_t ntaps, const float *wp, ptrdiff_t npix)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_conv_block_f32_avx2(out, ldo, in, off, ntaps, wp, npix); return; }
#endif
    fc_conv_block_f32_base(out, ldo, in, off, ntaps, wp, npix);
}

static void fc_conv_block_f64(double *out, ptrdiff_t ldo, const double *in, const ptrdiff_t *off,
                              ptrdiff_t ntaps, const double *wp, ptrdiff_t npix)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_conv_block_f64_avx2(out, ldo, in, off, ntaps, wp, npix); return; }
#endif
    fc_conv_block_f64_base(out, ldo, in, off, ntaps, wp, npix);
}

/* ------------------------------------------------------------------------
 * The same sum with the output channels in the vector lanes.
 *
 * Register block: FC_CV_VECS vectors of output channels (16 float or 8
 * double channels) x FC_CV_PIX pixels. Per tap: FC_CV_VECS weight loads and
 * FC_CV_PIX broadcasts of input samples feed FC_CV_VECS * FC_CV_PIX FMAs.
 * The pixels of a block come from a table (pix[q]: the flattened position
 * of pixel q in the band's planes), so a block may span output rows and no
 * junk columns are computed: the better choice when the output is narrow
 * and the channel count a multiple of the block (as in most CNN layers).
 * Weights are packed per block of channels as wq[t][channels of the block];
 * the result is pixel-major: out[q * ldo + channel].
 *
 *   npix  a multiple of FC_CV_PIX (the caller pads the table with a valid
 *         position and ignores the extra pixels)
 *   accumulate  add to out (a later chunk of the taps) instead of storing
 */
#define FC_CV_VECS 2
#define FC_CV_PIX 6

#define FC_DEFINE_CONV_CV_BASE(NAME, T, LANES)                                 \
static void NAME(T *out, ptrdiff_t ldo, const T *in, const ptrdiff_t *pix,    \
                 const ptrdiff_t *off, ptrdiff_t ntaps, const T *wq,           \
                 ptrdiff_t npix, int accumulate)                               \
{                                                                              \
    enum { NC = FC_CV_VECS * LANES };                                          \
    for (ptrdiff_t p = 0; p < npix; p += FC_CV_PIX) {                          \
        T s[FC_CV_PIX][NC];                                                    \
        for (int j = 0; j < FC_CV_PIX; j++)                                    \
            for (int c = 0; c < NC; c++)                                       \
                s[j][c] = accumulate ? out[(p + j) * ldo + c] : 0;             \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                \
            const T *b = in + off[t];                                          \
            const T *w = wq + t * NC;                                          \
            for (int j = 0; j < FC_CV_PIX; j++) {                              \
                const T x = b[pix[p + j]];                                     \
                for (int c = 0; c < NC; c++) s[j][c] += x * w[c];              \
            }                                                                  \
        }                                                                      \
        for (int j = 0; j < FC_CV_PIX; j++)                                    \
            for (int c = 0; c < NC; c++) out[(p + j) * ldo + c] = s[j][c];     \
    }                                                                          \
}

FC_DEFINE_CONV_CV_BASE(fc_conv_cv_f32_base, float, 8)
FC_DEFINE_CONV_CV_BASE(fc_conv_cv_f64_base, double, 4)

/* out[c * ldd + q] = src[q * lds + c] + bias[c] (bias may be NULL). */
#define FC_DEFINE_TRANSPOSE_BASE(NAME, T)                                      \
static void NAME(T *dst, ptrdiff_t ldd, const T *src, ptrdiff_t lds,          \
                 ptrdiff_t nq, ptrdiff_t nc, const T *bias)                    \
{                                                                              \
    for (ptrdiff_t c = 0; c < nc; c++) {                                       \
        const T b = bias ? bias[c] : (T)0;                                     \
        for (ptrdiff_t q = 0; q < nq; q++) dst[c * ldd + q] = src[q * lds + c] + b; \
    }                                                                          \
}

FC_DEFINE_TRANSPOSE_BASE(fc_transpose_f32_base, float)
FC_DEFINE_TRANSPOSE_BASE(fc_transpose_f64_base, double)

#if FC_X86_DISPATCH
#define FC_DEFINE_CONV_CV_AVX2(NAME, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO) \
FC_TARGET_AVX2 static void NAME(T *out, ptrdiff_t ldo, const T *in,            \
                                const ptrdiff_t *pix, const ptrdiff_t *off,    \
                                ptrdiff_t ntaps, const T *wq, ptrdiff_t npix,  \
                                int accumulate)                                \
{                                                                              \
    for (ptrdiff_t p = 0; p < npix; p += FC_CV_PIX) {                          \
        VT s[FC_CV_PIX][FC_CV_VECS];                                           \
        ptrdiff_t q[FC_CV_PIX];                                                \
        for (int j = 0; j < FC_CV_PIX; j++) {                                  \
            q[j] = pix[p + j];                                                 \
            for (int v = 0; v < FC_CV_VECS; v++)                               \
                s[j][v] = accumulate ? LOADU(out + (p + j) * ldo + v * LANES) : ZERO(); \
        }                                                                      \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                \
            const T *b = in + off[t];                                          \
            VT w[FC_CV_VECS];                                                  \
            for (int v = 0; v < FC_CV_VECS; v++)                               \
                w[v] = LOADU(wq + (t * FC_CV_VECS + v) * LANES);               \
            for (int j = 0; j < FC_CV_PIX; j++) {                              \
                const VT x = BCAST(b + q[j]);                                  \
                for (int v = 0; v < FC_CV_VECS; v++) s[j][v] = FMA(x, w[v], s[j][v]); \
            }                                                                  \
        }                                                                      \
        for (int j = 0; j < FC_CV_PIX; j++)                                    \
            for (int v = 0; v < FC_CV_VECS; v++)                               \
                STOREU(out + (p + j) * ldo + v * LANES, s[j][v]);              \
    }                                                                          \
}

FC_DEFINE_CONV_CV_AVX2(fc_conv_cv_f32_avx2, float, __m256, 8, _mm256_loadu_ps,
                       _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
                       _mm256_setzero_ps)
FC_DEFINE_CONV_CV_AVX2(fc_conv_cv_f64_avx2, double, __m256d, 4, _mm256_loadu_pd,
                       _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd,
                       _mm256_setzero_pd)

/* 8 x 8 float blocks transposed in registers (unpack / shuffle / permute),
 * the edges through the portable loop. */
FC_TARGET_AVX2 static void fc_transpose_f32_avx2(float *dst, ptrdiff_t ldd, const float *src,
                                                 ptrdiff_t lds, ptrdiff_t nq, ptrdiff_t nc,
                                                 const float *bias)
{
    ptrdiff_t q0, c0;
    for (c0 = 0; c0 + 8 <= nc; c0 += 8) {
        const __m256 bv = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps();
        for (q0 = 0; q0 + 8 <= nq; q0 += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_add_ps(_mm256_loadu_ps(src + (q0 + i) * lds + c0), bv);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            /* r[0..3]: columns 0,1,2,3 (low half) and 4,5,6,7 (high half) of
             * rows 0-3; r[4..7] the same for rows 4-7. */
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(dst + (c0 + i) * ldd + q0,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
                _mm256_storeu_ps(dst + (c0 + i + 4) * ldd + q0,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
            }
        }
        if (q0 < nq)
            fc_transpose_f32_base(dst + c0 * ldd + q0, ldd, src + q0 * lds + c0, lds, nq - q0, 8,
                                  bias ? bias + c0 : NULL);
    }
    if (c0 < nc)
        fc_transpose_f32_base(dst + c0 * ldd, ldd, src + c0, lds, nq, nc - c0,
                              bias ? bias + c0 : NULL);
}
#endif

static void fc_conv_cv_f32(float *out, ptrdiff_t ldo, const float *in, const ptrdiff_t *pix,
                           const ptrdiff_t *off, ptrdiff_t ntaps, const float *wq, ptrdiff_t npix,
                           int accumulate)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) {
        fc_conv_cv_f32_avx2(out, ldo, in, pix, off, ntaps, wq, npix, accumulate);
        return;
    }
#endif
    fc_conv_cv_f32_base(out, ldo, in, pix, off, ntaps, wq, npix, accumulate);
}

static void fc_conv_cv_f64(double *out, ptrdiff_t ldo, const double *in, const ptrdiff_t *pix,
                           const ptrdiff_t *off, ptrdiff_t ntaps, const double *wq, ptrdiff_t npix,
                           int accumulate)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) {
        fc_conv_cv_f64_avx2(out, ldo, in, pix, off, ntaps, wq, npix, accumulate);
        return;
    }
#endif
    fc_conv_cv_f64_base(out, ldo, in, pix, off, ntaps, wq, npix, accumulate);
}

static void fc_transpose_f32(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t lds,
                             ptrdiff_t nq, ptrdiff_t nc, const float *bias)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_transpose_f32_avx2(dst, ldd, src, lds, nq, nc, bias); return; }
#endif
    fc_transpose_f32_base(dst, ldd, src, lds, nq, nc, bias);
}

static void fc_transpose_f64(double *dst, ptrdiff_t ldd, const double *src, ptrdiff_t lds,
                             ptrdiff_t nq, ptrdiff_t nc, const double *bias)
{
    fc_transpose_f64_base(dst, ldd, src, lds, nq, nc, bias);
}

/* ------------------------------------------------------------------------
 * One stride phase of an input row: dst[v] = src[2 * v] for v < n, the
 * plane copy of a stride-2 convolution (its scalar loop was ~6% of a
 * 7x7 stride-2 layer). AVX2: two loads, one shuffle and one permute per
 * vector of results; the tail in the portable loop.
 */
#define FC_DEFINE_EVEN_BASE(NAME, T)                                           \
static void NAME(T *dst, const T *src, ptrdiff_t n)                            \
{                                                                              \
    for (ptrdiff_t v = 0; v < n; v++)                                          \
        dst[v] = src[2 * v];                                                   \
}
FC_DEFINE_EVEN_BASE(fc_even_f32_base, float)
FC_DEFINE_EVEN_BASE(fc_even_f64_base, double)

#if FC_X86_DISPATCH
FC_TARGET_AVX2 static void fc_even_f32_avx2(float *dst, const float *src, ptrdiff_t n)
{
    ptrdiff_t v = 0;
    for (; v + 8 < n; v += 8) {  /* reads src[2v .. 2v+15]: 2v+15 <= 2(n-1) */
        /* a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6 */
        __m256 a = _mm256_loadu_ps(src + 2 * v), b = _mm256_loadu_ps(src + 2 * v + 8);
        __m256 e = _mm256_shuffle_ps(a, b, 0x88);
        _mm256_storeu_ps(dst + v, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    }
    fc_even_f32_base(dst + v, src + 2 * v, n - v);
}

FC_TARGET_AVX2 static void fc_even_f64_avx2(double *dst, const double *src, ptrdiff_t n)
{
    ptrdiff_t v = 0;
    for (; v + 4 < n; v += 4) {  /* reads src[2v .. 2v+7]: 2v+7 <= 2(n-1) */
        /* a0 b0 | a2 b2 -> a0 a2 b0 b2 */
        __m256d a = _mm256_loadu_pd(src + 2 * v), b = _mm256_loadu_pd(src + 2 * v + 4);
        _mm256_storeu_pd(dst + v, _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), 0xD8));
    }
    fc_even_f64_base(dst + v, src + 2 * v, n - v);
}
#endif

static void fc_even_f32(float *dst, const float *src, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_even_f32_avx2(dst, src, n); return; }
#endif
    fc_even_f32_base(dst, src, n);
}

static void fc_even_f64(double *dst, const double *src, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_even_f64_avx2(dst, src, n); return; }
#endif
    fc_even_f64_base(dst, src, n);
}

/* ------------------------------------------------------------------------
 * The weight gradient, same layout: for FC_GW_TAPS taps and one block of
 * output channels,
 *     gw[j][c] += sum_{r, x} go_t[r * wo + x][c] * in[off[j] + r * wq + x]
 * over nrows band rows of wo real pixels (go_t: grad_output of those rows,
 * pixel-major, ldg apart). Register block: FC_GW_TAPS taps x FC_CV_VECS
 * vectors of channels; per pixel FC_CV_VECS loads of go_t and FC_GW_TAPS
 * broadcasts feed FC_GW_TAPS * FC_CV_VECS FMAs. Only real pixels are
 * visited (no junk columns), so a NaN or inf meets exactly the products
 * torch computes. */
#define FC_GW_TAPS 6

#define FC_DEFINE_GW_BASE(NAME, T, LANES)                                      \
static void NAME(T *gw, ptrdiff_t ldw, const T *in, const ptrdiff_t *off,     \
                 ptrdiff_t nrows, ptrdiff_t wo, ptrdiff_t wq, const T *got,    \
                 ptrdiff_t ldg)                                                \
{                                                                              \
    enum { NC = FC_CV_VECS * LANES };                                          \
    T s[FC_GW_TAPS][NC];                                                       \
    for (int j = 0; j < FC_GW_TAPS; j++)                                       \
        for (int c = 0; c < NC; c++) s[j][c] = gw[j * ldw + c];                \
    for (ptrdiff_t r = 0; r < nrows; r++)                                      \
        for (ptrdiff_t x = 0; x < wo; x++) {                                   \
            const T *g = got + (r * wo + x) * ldg;                             \
            for (int j = 0; j < FC_GW_TAPS; j++) {                             \
                const T v = in[off[j] + r * wq + x];                           \
                for (int c = 0; c < NC; c++) s[j][c] += v * g[c];              \
            }                                                                  \
        }                                                                      \
    for (int j = 0; j < FC_GW_TAPS; j++)                                       \
        for (int c = 0; c < NC; c++) gw[j * ldw + c] = s[j][c];                \
}

FC_DEFINE_GW_BASE(fc_conv_gw_f32_base, float, 8)
FC_DEFINE_GW_BASE(fc_conv_gw_f64_base, double, 4)

#if FC_X86_DISPATCH
/* Within a row the six tap pointers share one index register, so every
 * broadcast is a single load with base + index addressing. The 12
 * accumulators are named variables: GCC spilled an array of them to the
 * stack in this loop nest (2x slower). FC_CV_VECS is 2 here. */
#define FC_GW_TAP(J, B, BCAST, FMA)                                            \
    xv = BCAST(B + x);                                                         \
    s##J##0 = FMA(xv, g0, s##J##0);                                            \
    s##J##1 = FMA(xv, g1, s##J##1);
#define FC_DEFINE_GW_AVX2(NAME, T, VT, LANES, LOADU, STOREU, BCAST, FMA)       \
FC_TARGET_AVX2 static void NAME(T *gw, ptrdiff_t ldw, const T *in,             \
                                const ptrdiff_t *off, ptrdiff_t nrows,         \
                                ptrdiff_t wo, ptrdiff_t wq, const T *got,      \
                                ptrdiff_t ldg)                                 \
{                                                                              \
    VT s00 = LOADU(gw), s01 = LOADU(gw + LANES);                               \
    VT s10 = LOADU(gw + ldw), s11 = LOADU(gw + ldw + LANES);                   \
    VT s20 = LOADU(gw + 2 * ldw), s21 = LOADU(gw + 2 * ldw + LANES);           \
    VT s30 = LOADU(gw + 3 * ldw), s31 = LOADU(gw + 3 * ldw + LANES);           \
    VT s40 = LOADU(gw + 4 * ldw), s41 = LOADU(gw + 4 * ldw + LANES);           \
    VT s50 = LOADU(gw + 5 * ldw), s51 = LOADU(gw + 5 * ldw + LANES);           \
    for (ptrdiff_t r = 0; r < nrows; r++) {                                    \
        const T *b0 = in + off[0] + r * wq, *b1 = in + off[1] + r * wq;        \
        const T *b2 = in + off[2] + r * wq, *b3 = in + off[3] + r * wq;        \
        const T *b4 = in + off[4] + r * wq, *b5 = in + off[5] + r * wq;        \
        const T *g = got + r * wo * ldg;                                       \
        for (ptrdiff_t x = 0; x < wo; x++, g += ldg) {                         \
            const VT g0 = LOADU(g), g1 = LOADU(g + LANES);                     \
            VT xv;                                                             \
            FC_GW_TAP(0, b0, BCAST, FMA) FC_GW_TAP(1, b1, BCAST, FMA)          \
            FC_GW_TAP(2, b2, BCAST, FMA) FC_GW_TAP(3, b3, BCAST, FMA)          \
            FC_GW_TAP(4, b4, BCAST, FMA) FC_GW_TAP(5, b5, BCAST, FMA)          \
        }                                                                      \
    }                                                                          \
    STOREU(gw, s00); STOREU(gw + LANES, s01);                                  \
    STOREU(gw + ldw, s10); STOREU(gw + ldw + LANES, s11);                      \
    STOREU(gw + 2 * ldw, s20); STOREU(gw + 2 * ldw + LANES, s21);              \
    STOREU(gw + 3 * ldw, s30); STOREU(gw + 3 * ldw + LANES, s31);              \
    STOREU(gw + 4 * ldw, s40); STOREU(gw + 4 * ldw + LANES, s41);              \
    STOREU(gw + 5 * ldw, s50); STOREU(gw + 5 * ldw + LANES, s51);              \
}

FC_DEFINE_GW_AVX2(fc_conv_gw_f32_avx2, float, __m256, 8, _mm256_loadu_ps,
                  _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps)
FC_DEFINE_GW_AVX2(fc_conv_gw_f64_avx2, double, __m256d, 4, _mm256_loadu_pd,
                  _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd)
#endif

static void fc_conv_gw_f32(float *gw, ptrdiff_t ldw, const float *in, const ptrdiff_t *off,
                           ptrdiff_t nrows, ptrdiff_t wo, ptrdiff_t wq, const float *got, ptrdiff_t ldg)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_conv_gw_f32_avx2(gw, ldw, in, off, nrows, wo, wq, got, ldg); return; }
#endif
    fc_conv_gw_f32_base(gw, ldw, in, off, nrows, wo, wq, got, ldg);
}

static void fc_conv_gw_f64(double *gw, ptrdiff_t ldw, const double *in, const ptrdiff_t *off,
                           ptrdiff_t nrows, ptrdiff_t wo, ptrdiff_t wq, const double *got, ptrdiff_t ldg)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_conv_gw_f64_avx2(gw, ldw, in, off, nrows, wo, wq, got, ldg); return; }
#endif
    fc_conv_gw_f64_base(gw, ldw, in, off, nrows, wo, wq, got, ldg);
}

#endif /* FASTCORR_CONV_KERNELS_H */
