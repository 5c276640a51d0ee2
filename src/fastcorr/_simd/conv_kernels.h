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

/* Ask for the cache lines of n bytes at p (the input row a band copy reads
 * a few rows later); a no-op where the compiler has no prefetch builtin. */
static inline void fc_prefetch_bytes(const void *p, ptrdiff_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    const char *c = (const char *)p;
    for (ptrdiff_t i = 0; i < n; i += 64)
        __builtin_prefetch(c + i, 0, 3);
#else
    (void)p; (void)n;
#endif
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

/* ------------------------------------------------------------------------
 * The pixel-vectorised sum written straight into the output.
 *
 * Register block: FC_PO_OC output channels x up to FC_PO_VECS vectors of
 * consecutive pixels (4 x 3: per tap 3 input loads and 4 weight broadcasts
 * feed 12 FMAs), as in a GEMM micro-kernel whose B matrix is the input read
 * in place. Unlike fc_conv_block the pixels are the real output pixels of
 * one run (an output row, or several when the planes have no junk
 * columns), so the result goes straight to ``out`` (channel-major, ldo
 * apart): no scratch tile and no transpose. The last block of a run is
 * 1-3 vectors, the last one masked: nothing is read or written past npix.
 *
 *   out   nch (<= FC_PO_OC) rows of ldo elements
 *   init  NULL: start from 0; else FC_PO_OC start values (the bias)
 *   accumulate  add to out (a later chunk of the taps) instead of init
 */
#define FC_PO_OC 4
#define FC_PO_VECS 3

#define FC_DEFINE_CONV_PO_BASE(NAME, T, LANES)                                 \
static void NAME(T *out, ptrdiff_t ldo, ptrdiff_t nch, const T *in,           \
                 const ptrdiff_t *off, ptrdiff_t ntaps, const T *wp,           \
                 ptrdiff_t npix, const T *init, int accumulate)                \
{                                                                              \
    enum { NP = FC_PO_VECS * LANES };                                          \
    for (ptrdiff_t p = 0; p < npix; p += NP) {                                 \
        const ptrdiff_t np = npix - p < NP ? npix - p : NP;                    \
        T s[FC_PO_OC][NP];                                                     \
        for (int o = 0; o < FC_PO_OC; o++)                                     \
            for (ptrdiff_t q = 0; q < np; q++)                                 \
                s[o][q] = (accumulate && o < nch) ? out[o * ldo + p + q]       \
                          : ((init && o < nch) ? init[o] : (T)0);              \
        for (ptrdiff_t t = 0; t < ntaps; t++) {                                \
            const T *x = in + off[t] + p;                                      \
            const T *c = wp + t * FC_PO_OC;                                    \
            for (int o = 0; o < FC_PO_OC; o++)                                 \
                for (ptrdiff_t q = 0; q < np; q++) s[o][q] += c[o] * x[q];     \
        }                                                                      \
        for (int o = 0; o < nch; o++)                                          \
            for (ptrdiff_t q = 0; q < np; q++) out[o * ldo + p + q] = s[o][q]; \
    }                                                                          \
}

FC_DEFINE_CONV_PO_BASE(fc_conv_po_f32_base, float, 8)
FC_DEFINE_CONV_PO_BASE(fc_conv_po_f64_base, double, 4)

#if FC_X86_DISPATCH
/* One block of NV vectors (NV a literal); MASKED: the last vector is loaded
 * and stored through ``mask``. The 12 accumulators are named variables: GCC
 * kept an array of them on the stack here (a store per FMA). The element
 * and vector types and their operations are the PO_* macros defined at the
 * instantiation. */
#define FC_PO_LD(P, V) ((masked && (V) == NV - 1) ? PO_MLOAD((P) + (V) * PO_LANES, mask) \
                                                  : PO_LOADU((P) + (V) * PO_LANES))
#define FC_PO_ST(P, V, X) do { if (masked && (V) == NV - 1) PO_MSTORE((P) + (V) * PO_LANES, mask, X); \
                               else PO_STOREU((P) + (V) * PO_LANES, X); } while (0)
#define FC_PO_INIT(O)                                                          \
    {                                                                          \
        const PO_VT b = PO_SET1((init && O < nch) ? init[O] : (PO_T)0);        \
        if (accumulate && O < nch) {                                           \
            s##O##0 = FC_PO_LD(out + O * ldo, 0);                              \
            if (NV > 1) s##O##1 = FC_PO_LD(out + O * ldo, 1);                  \
            if (NV > 2) s##O##2 = FC_PO_LD(out + O * ldo, 2);                  \
        } else {                                                               \
            s##O##0 = s##O##1 = s##O##2 = b;                                   \
        }                                                                      \
    }
#define FC_PO_FMA(O)                                                           \
    {                                                                          \
        const PO_VT c = PO_BCAST(w + O);                                       \
        s##O##0 = PO_FMA(c, x0, s##O##0);                                      \
        if (NV > 1) s##O##1 = PO_FMA(c, x1, s##O##1);                          \
        if (NV > 2) s##O##2 = PO_FMA(c, x2, s##O##2);                          \
    }
#define FC_PO_STORE(O)                                                         \
    if (O < nch) {                                                             \
        FC_PO_ST(out + O * ldo, 0, s##O##0);                                   \
        if (NV > 1) FC_PO_ST(out + O * ldo, 1, s##O##1);                       \
        if (NV > 2) FC_PO_ST(out + O * ldo, 2, s##O##2);                       \
    }
#define FC_DEFINE_PO_BLOCK_AVX2(NAME, NV_)                                     \
FC_TARGET_AVX2 static inline __attribute__((always_inline)) void NAME(          \
    PO_T *out, ptrdiff_t ldo, ptrdiff_t nch, const PO_T *in, const ptrdiff_t *off, \
    ptrdiff_t ntaps, const PO_T *wp, const PO_T *init, int accumulate, const int masked, \
    __m256i mask)                                                              \
{                                                                              \
    enum { NV = NV_ };                                                         \
    PO_VT s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32;          \
    FC_PO_INIT(0) FC_PO_INIT(1) FC_PO_INIT(2) FC_PO_INIT(3)                    \
    for (ptrdiff_t t = 0; t < ntaps; t++) {                                    \
        const PO_T *x = in + off[t];                                           \
        const PO_T *w = wp + t * FC_PO_OC;                                     \
        const PO_VT x0 = FC_PO_LD(x, 0);                                       \
        const PO_VT x1 = NV > 1 ? FC_PO_LD(x, 1) : x0;                         \
        const PO_VT x2 = NV > 2 ? FC_PO_LD(x, 2) : x0;                         \
        FC_PO_FMA(0) FC_PO_FMA(1) FC_PO_FMA(2) FC_PO_FMA(3)                    \
    }                                                                          \
    FC_PO_STORE(0) FC_PO_STORE(1) FC_PO_STORE(2) FC_PO_STORE(3)                \
}

#define PO_T float
#define PO_VT __m256
#define PO_LANES 8
#define PO_LOADU _mm256_loadu_ps
#define PO_STOREU _mm256_storeu_ps
#define PO_MLOAD _mm256_maskload_ps
#define PO_MSTORE _mm256_maskstore_ps
#define PO_BCAST _mm256_broadcast_ss
#define PO_FMA _mm256_fmadd_ps
#define PO_SET1 _mm256_set1_ps
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block3_f32_avx2, 3)
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block2_f32_avx2, 2)
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block1_f32_avx2, 1)
#undef PO_T
#undef PO_VT
#undef PO_LANES
#undef PO_LOADU
#undef PO_STOREU
#undef PO_MLOAD
#undef PO_MSTORE
#undef PO_BCAST
#undef PO_FMA
#undef PO_SET1
#define PO_T double
#define PO_VT __m256d
#define PO_LANES 4
#define PO_LOADU _mm256_loadu_pd
#define PO_STOREU _mm256_storeu_pd
#define PO_MLOAD _mm256_maskload_pd
#define PO_MSTORE _mm256_maskstore_pd
#define PO_BCAST _mm256_broadcast_sd
#define PO_FMA _mm256_fmadd_pd
#define PO_SET1 _mm256_set1_pd
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block3_f64_avx2, 3)
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block2_f64_avx2, 2)
FC_DEFINE_PO_BLOCK_AVX2(fc_po_block1_f64_avx2, 1)
#undef PO_T
#undef PO_VT
#undef PO_LANES
#undef PO_LOADU
#undef PO_STOREU
#undef PO_MLOAD
#undef PO_MSTORE
#undef PO_BCAST
#undef PO_FMA
#undef PO_SET1

FC_TARGET_AVX2 static inline __m256i fc_po_mask_f32(ptrdiff_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

FC_TARGET_AVX2 static inline __m256i fc_po_mask_f64(ptrdiff_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3));
}

#define FC_DEFINE_CONV_PO_AVX2(NAME, SFX, MASKF, T, LANES)                     \
FC_TARGET_AVX2 static void NAME(T *out, ptrdiff_t ldo, ptrdiff_t nch, const T *in, \
                                const ptrdiff_t *off, ptrdiff_t ntaps,         \
                                const T *wp, ptrdiff_t npix, const T *init,    \
                                int accumulate)                                \
{                                                                              \
    enum { NP = FC_PO_VECS * LANES };                                          \
    const __m256i all = _mm256_set1_epi32(-1);                                 \
    ptrdiff_t p = 0;                                                           \
    for (; p + NP <= npix; p += NP)                                            \
        fc_po_block3_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, 0, all); \
    const ptrdiff_t r = npix - p;                                              \
    if (r <= 0) return;                                                        \
    const __m256i m = MASKF(r - (r - 1) / LANES * LANES);                      \
    if (r > 2 * LANES) { /* 2 vectors, then the masked one (3 at once spill) */ \
        fc_po_block2_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, 0, all); \
        p += 2 * LANES;                                                        \
        fc_po_block1_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, 1, m); \
    } else if (r > LANES)                                                      \
        fc_po_block2_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, 1, m); \
    else                                                                       \
        fc_po_block1_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, 1, m); \
}

FC_DEFINE_CONV_PO_AVX2(fc_conv_po_f32_avx2, f32_avx2, fc_po_mask_f32, float, 8)
FC_DEFINE_CONV_PO_AVX2(fc_conv_po_f64_avx2, f64_avx2, fc_po_mask_f64, double, 4)
#endif

/* AVX-512 twin (chosen at run time when the CPU has AVX-512F and VL): 8
 * output channels x up to 3 zmm vectors of pixels (24 accumulators of the
 * 32 registers; per tap 3 input loads and 8 broadcasts feed 24 FMAs, half
 * the instructions per multiply-add of the AVX2 block). Tails through mask
 * registers; a tail of at most half a vector runs on ymm registers (Zen 4
 * runs a zmm FMA as two ymm halves, so a mostly-masked zmm costs double).
 * Weights are packed per block of FC_PO_OC_512 channels. */
#define FC_PO_OC_512 8
#if FC_X86_DISPATCH
#define FC_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define FC_PZ_INIT(O)                                                          \
    {                                                                          \
        const PZ_VT b = PZ_SET1((init && O < nch) ? init[O] : (PZ_T)0);        \
        if (accumulate && O < nch) {                                           \
            s##O##0 = PZ_MLOAD(m0, out + O * ldo);                             \
            if (NV > 1) s##O##1 = PZ_MLOAD(m1, out + O * ldo + PZ_LANES);      \
            if (NV > 2) s##O##2 = PZ_MLOAD(m2, out + O * ldo + 2 * PZ_LANES);  \
        } else {                                                               \
            s##O##0 = s##O##1 = s##O##2 = b;                                   \
        }                                                                      \
    }
#define FC_PZ_FMA(O)                                                           \
    {                                                                          \
        const PZ_VT c = PZ_SET1(w[O]);                                         \
        s##O##0 = PZ_FMA(c, x0, s##O##0);                                      \
        if (NV > 1) s##O##1 = PZ_FMA(c, x1, s##O##1);                          \
        if (NV > 2) s##O##2 = PZ_FMA(c, x2, s##O##2);                          \
    }
#define FC_PZ_STORE(O)                                                         \
    if (O < nch) {                                                             \
        PZ_MSTORE(out + O * ldo, m0, s##O##0);                                 \
        if (NV > 1) PZ_MSTORE(out + O * ldo + PZ_LANES, m1, s##O##1);          \
        if (NV > 2) PZ_MSTORE(out + O * ldo + 2 * PZ_LANES, m2, s##O##2);      \
    }
#define FC_DEFINE_PZ_BLOCK(NAME, NV_)                                          \
FC_TARGET_AVX512 static inline __attribute__((always_inline)) void NAME(        \
    PZ_T *out, ptrdiff_t ldo, ptrdiff_t nch, const PZ_T *in, const ptrdiff_t *off, \
    ptrdiff_t ntaps, const PZ_T *wp, const PZ_T *init, int accumulate,         \
    PZ_MT m0, PZ_MT m1, PZ_MT m2)                                              \
{                                                                              \
    enum { NV = NV_ };                                                         \
    PZ_VT s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32;          \
    PZ_VT s40, s41, s42, s50, s51, s52, s60, s61, s62, s70, s71, s72;          \
    FC_PZ_INIT(0) FC_PZ_INIT(1) FC_PZ_INIT(2) FC_PZ_INIT(3)                    \
    FC_PZ_INIT(4) FC_PZ_INIT(5) FC_PZ_INIT(6) FC_PZ_INIT(7)                    \
    for (ptrdiff_t t = 0; t < ntaps; t++) {                                    \
        const PZ_T *x = in + off[t];                                           \
        const PZ_T *w = wp + t * FC_PO_OC_512;                                 \
        const PZ_VT x0 = PZ_MLOAD(m0, x);                                      \
        const PZ_VT x1 = NV > 1 ? PZ_MLOAD(m1, x + PZ_LANES) : x0;             \
        const PZ_VT x2 = NV > 2 ? PZ_MLOAD(m2, x + 2 * PZ_LANES) : x0;         \
        FC_PZ_FMA(0) FC_PZ_FMA(1) FC_PZ_FMA(2) FC_PZ_FMA(3)                    \
        FC_PZ_FMA(4) FC_PZ_FMA(5) FC_PZ_FMA(6) FC_PZ_FMA(7)                    \
    }                                                                          \
    FC_PZ_STORE(0) FC_PZ_STORE(1) FC_PZ_STORE(2) FC_PZ_STORE(3)                \
    FC_PZ_STORE(4) FC_PZ_STORE(5) FC_PZ_STORE(6) FC_PZ_STORE(7)                \
}

/* zmm blocks (full vectors: all-ones masks, which the compiler folds) */
#define PZ_T float
#define PZ_VT __m512
#define PZ_MT __mmask16
#define PZ_LANES 16
#define PZ_MLOAD(M, P) _mm512_maskz_loadu_ps(M, P)
#define PZ_MSTORE(P, M, X) _mm512_mask_storeu_ps(P, M, X)
#define PZ_FMA _mm512_fmadd_ps
#define PZ_SET1 _mm512_set1_ps
FC_DEFINE_PZ_BLOCK(fc_pz_block3_f32, 3)
FC_DEFINE_PZ_BLOCK(fc_pz_block2_f32, 2)
FC_DEFINE_PZ_BLOCK(fc_pz_block1_f32, 1)
#undef PZ_T
#undef PZ_VT
#undef PZ_MT
#undef PZ_LANES
#undef PZ_MLOAD
#undef PZ_MSTORE
#undef PZ_FMA
#undef PZ_SET1
#define PZ_T double
#define PZ_VT __m512d
#define PZ_MT __mmask8
#define PZ_LANES 8
#define PZ_MLOAD(M, P) _mm512_maskz_loadu_pd(M, P)
#define PZ_MSTORE(P, M, X) _mm512_mask_storeu_pd(P, M, X)
#define PZ_FMA _mm512_fmadd_pd
#define PZ_SET1 _mm512_set1_pd
FC_DEFINE_PZ_BLOCK(fc_pz_block3_f64, 3)
FC_DEFINE_PZ_BLOCK(fc_pz_block2_f64, 2)
FC_DEFINE_PZ_BLOCK(fc_pz_block1_f64, 1)
#undef PZ_T
#undef PZ_VT
#undef PZ_MT
#undef PZ_LANES
#undef PZ_MLOAD
#undef PZ_MSTORE
#undef PZ_FMA
#undef PZ_SET1
/* ymm tail blocks (AVX-512VL masks) */
#define PZ_T float
#define PZ_VT __m256
#define PZ_MT __mmask8
#define PZ_LANES 8
#define PZ_MLOAD(M, P) _mm256_maskz_loadu_ps(M, P)
#define PZ_MSTORE(P, M, X) _mm256_mask_storeu_ps(P, M, X)
#define PZ_FMA _mm256_fmadd_ps
#define PZ_SET1 _mm256_set1_ps
FC_DEFINE_PZ_BLOCK(fc_pz_half_f32, 1)
#undef PZ_T
#undef PZ_VT
#undef PZ_MT
#undef PZ_LANES
#undef PZ_MLOAD
#undef PZ_MSTORE
#undef PZ_FMA
#undef PZ_SET1
#define PZ_T double
#define PZ_VT __m256d
#define PZ_MT __mmask8
#define PZ_LANES 4
#define PZ_MLOAD(M, P) _mm256_maskz_loadu_pd(M, P)
#define PZ_MSTORE(P, M, X) _mm256_mask_storeu_pd(P, M, X)
#define PZ_FMA _mm256_fmadd_pd
#define PZ_SET1 _mm256_set1_pd
FC_DEFINE_PZ_BLOCK(fc_pz_half_f64, 1)
#undef PZ_T
#undef PZ_VT
#undef PZ_MT
#undef PZ_LANES
#undef PZ_MLOAD
#undef PZ_MSTORE
#undef PZ_FMA
#undef PZ_SET1

#define FC_DEFINE_CONV_PZ(NAME, SFX, T, MT, LANES)                             \
FC_TARGET_AVX512 static void NAME(T *out, ptrdiff_t ldo, ptrdiff_t nch, const T *in, \
                                  const ptrdiff_t *off, ptrdiff_t ntaps,       \
                                  const T *wp, ptrdiff_t npix, const T *init,  \
                                  int accumulate)                              \
{                                                                              \
    const MT all = (MT)~(MT)0;                                                 \
    ptrdiff_t p = 0;                                                           \
    for (; p + 3 * LANES <= npix; p += 3 * LANES)                              \
        fc_pz_block3_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, all, all, all); \
    const ptrdiff_t r = npix - p;                                              \
    if (r <= 0) return;                                                        \
    const MT m = (MT)(((r - 1) % LANES + 1) == LANES ? all                     \
                       : (MT)((1u << ((r - 1) % LANES + 1)) - 1));             \
    if (r > 2 * LANES)                                                         \
        fc_pz_block3_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, all, all, m); \
    else if (r > LANES)                                                        \
        fc_pz_block2_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, all, m, 0); \
    else if (r > LANES / 2)                                                    \
        fc_pz_block1_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, m, 0, 0); \
    else                                                                       \
        fc_pz_half_##SFX(out + p, ldo, nch, in + p, off, ntaps, wp, init, accumulate, \
                         (__mmask8)m, 0, 0);                                   \
}

FC_DEFINE_CONV_PZ(fc_conv_po_f32_avx512, f32, float, __mmask16, 16)
FC_DEFINE_CONV_PZ(fc_conv_po_f64_avx512, f64, double, __mmask8, 8)

static int fc_cpu_has_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = (fc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512vl")) ? 1 : 0;
    }
    return cached;
}
#else
static int fc_cpu_has_avx512(void) { return 0; }
#endif

/* Output channels per block of the direct-output kernel this CPU runs: the
 * weights must be packed in blocks of this many. */
static ptrdiff_t fc_po_block_channels(void)
{
    return fc_cpu_has_avx512() ? FC_PO_OC_512 : FC_PO_OC;
}

static void fc_conv_po_f32(float *out, ptrdiff_t ldo, ptrdiff_t nch, const float *in,
                           const ptrdiff_t *off, ptrdiff_t ntaps, const float *wp, ptrdiff_t npix,
                           const float *init, int accumulate)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx512()) {
        fc_conv_po_f32_avx512(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
        return;
    }
    if (fc_cpu_has_avx2_fma()) {
        fc_conv_po_f32_avx2(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
        return;
    }
#endif
    fc_conv_po_f32_base(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
}

static void fc_conv_po_f64(double *out, ptrdiff_t ldo, ptrdiff_t nch, const double *in,
                           const ptrdiff_t *off, ptrdiff_t ntaps, const double *wp, ptrdiff_t npix,
                           const double *init, int accumulate)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx512()) {
        fc_conv_po_f64_avx512(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
        return;
    }
    if (fc_cpu_has_avx2_fma()) {
        fc_conv_po_f64_avx2(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
        return;
    }
#endif
    fc_conv_po_f64_base(out, ldo, nch, in, off, ntaps, wp, npix, init, accumulate);
}

/* Prefetch for writing nch rows of n bytes, ld bytes apart: the output lines
 * a later store-only pass fills, requested while the FMA work runs (the
 * F(2,4) output transform stalled on their misses: 13% of a 7x7 layer). */
static inline void fc_prefetch_write_rows(const void *p, ptrdiff_t ld, ptrdiff_t nch, ptrdiff_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    for (ptrdiff_t o = 0; o < nch; o++) {
        const char *c = (const char *)p + o * ld;
        for (ptrdiff_t i = 0; i < n; i += 64)
            __builtin_prefetch(c + i, 1, 3);
        __builtin_prefetch(c + n - 1, 1, 3);
    }
#else
    (void)p; (void)ld; (void)nch; (void)n;
#endif
}

/* Winograd F(2,4) along the columns of a layer with column stride 2 and
 * kernels 7-8 wide (conv2d's 'w24' forward): each column phase of the band
 * planes is a stride-1 correlation with (at most) 4 taps, and F(2,4) gives
 * two outputs of it from 5 products instead of 8 (294 -> 210 multiply-adds
 * per output pair of a 7x7 kernel). Interpolation points 0, 1, -1, -2 and
 * infinity; the transform rows are scaled to small integers (2, 6, 2, 6, 1;
 * the weight transform divides by them), so the input transform is exact
 * up to the adds' rounding:
 *   V0 = 2 d0 + d1 - 2 d2 - d3      V3 = d1 - d3
 *   V1 = 2 d1 + 3 d2 + d3           V4 = -2 d1 - d2 + 2 d3 + d4
 *   V2 = -2 d1 + d2 + d3
 * and the outputs y0 = M0 + M1 + M2 + M3, y1 = M1 - M2 - 2 M3 + M4.
 *
 * fc_w24_in: the 5 transformed rows (tile q reads src[2q .. 2q+4]; src holds
 * at least 2 nt + 3 values), dst + xi * ldd for xi = 0..4. Returns nonzero
 * when src holds an inf or NaN (the caller then runs the direct sums, which
 * keep an inf where the transforms could turn it into NaN).
 * fc_w24_out: one output row of wo values from m + xi * ldm (xi = 0..4),
 * plus bias. Portable C, compiled a second time for AVX-512 (the compiler
 * vectorises both, the interleaved stores by permutes). */
#define FC_W24_DEFINE(SFX, TARGET, T, UT, EXPMASK)                               \
TARGET static int fc_w24_in_##SFX(T *restrict dst, ptrdiff_t ldd,               \
                                  const T *restrict src, ptrdiff_t nt, ptrdiff_t n) \
{                                                                              \
    T *restrict v0 = dst, *restrict v1 = dst + ldd, *restrict v2 = dst + 2 * ldd; \
    T *restrict v3 = dst + 3 * ldd, *restrict v4 = dst + 4 * ldd;              \
    for (ptrdiff_t q = 0; q < nt; q++) {                                       \
        const T d0 = src[2 * q], d1 = src[2 * q + 1], d2 = src[2 * q + 2];     \
        const T d3 = src[2 * q + 3], d4 = src[2 * q + 4];                      \
        v0[q] = (d0 - d2) * 2 + (d1 - d3);                                     \
        v1[q] = d1 * 2 + d2 * 3 + d3;                                          \
        v2[q] = (d2 + d3) - d1 * 2;                                            \
        v3[q] = d1 - d3;                                                       \
        v4[q] = (d3 - d1) * 2 + (d4 - d2);                                     \
    }                                                                          \
    UT bad = 0;                                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                        \
        UT u;                                                                  \
        memcpy(&u, src + i, sizeof u);                                         \
        bad |= (UT)((u & EXPMASK) == EXPMASK);                                 \
    }                                                                          \
    return bad != 0;                                                           \
}                                                                              \
TARGET static void fc_w24_out_##SFX(T *restrict out, ptrdiff_t ldo, ptrdiff_t nch,      \
                                    ptrdiff_t wo, const T *restrict mm, ptrdiff_t ldc, \
                                    ptrdiff_t ldm, const T *restrict bias)      \
{                                                                              \
    const ptrdiff_t h = wo / 2;                                                \
    for (ptrdiff_t o = 0; o < nch; o++) {                                      \
        const T *restrict m0 = mm + o * ldc, *restrict m1 = m0 + ldm;          \
        const T *restrict m2 = m0 + 2 * ldm, *restrict m3 = m0 + 3 * ldm;      \
        const T *restrict m4 = m0 + 4 * ldm;                                   \
        T *restrict y = out + o * ldo;                                         \
        const T b = bias ? bias[o] : (T)0;                                     \
        for (ptrdiff_t q = 0; q < h; q++) {                                    \
            y[2 * q] = ((m0[q] + m1[q]) + (m2[q] + m3[q])) + b;                \
            y[2 * q + 1] = ((m1[q] - m2[q]) + (m4[q] - 2 * m3[q])) + b;        \
        }                                                                      \
        if (wo & 1)                                                            \
            y[wo - 1] = ((m0[h] + m1[h]) + (m2[h] + m3[h])) + b;               \
    }                                                                          \
}

FC_W24_DEFINE(f32_base, , float, uint32_t, 0x7f800000u)
FC_W24_DEFINE(f64_base, , double, uint64_t, 0x7ff0000000000000ull)
#if FC_X86_DISPATCH
FC_W24_DEFINE(f32_avx512c, FC_TARGET_AVX512, float, uint32_t, 0x7f800000u)
FC_W24_DEFINE(f64_avx512c, FC_TARGET_AVX512, double, uint64_t, 0x7ff0000000000000ull)
#define fc_w24_in_f32_avx512 fc_w24_in_f32_avx512c
#define fc_w24_in_f64_avx512 fc_w24_in_f64_avx512c
/* The output transform by hand: the two output vectors of 16 (8) tiles
 * interleaved by two permutes; tails through masks. (The compiler's
 * vectorisation of the C loop above, with its call per row, took 13% of the
 * 1x3->64 224x224 7x7 stride-2 layer.) The product rows hold whole vectors
 * (ldc a multiple of the lanes): the lanes past the tiles are junk, never stored. */
#define FC_W24_OUT512(NAME, T, VT, MT, LANES, LOADU, STOREU, MSTORE, SET1, ADD, SUB, MUL, PERM, IDX) \
FC_TARGET_AVX512 static void NAME(T *out, ptrdiff_t ldo, ptrdiff_t nch, ptrdiff_t wo,  \
                                  const T *mm, ptrdiff_t ldc, ptrdiff_t ldm, const T *bias) \
{                                                                              \
    const __m512i lo = IDX(0), hi = IDX(LANES / 2);                            \
    const VT two = SET1((T)2);                                                 \
    for (ptrdiff_t o = 0; o < nch; o++) {                                      \
        const T *m = mm + o * ldc;                                             \
        T *y = out + o * ldo;                                                  \
        const VT b = SET1(bias ? bias[o] : (T)0);                              \
        for (ptrdiff_t p = 0; p < wo; p += 2 * LANES) {                        \
            const T *mq = m + p / 2;                                           \
            const VT m0 = LOADU(mq), m1 = LOADU(mq + ldm), m2 = LOADU(mq + 2 * ldm); \
            const VT m3 = LOADU(mq + 3 * ldm), m4 = LOADU(mq + 4 * ldm);        \
            const VT y0 = ADD(ADD(ADD(m0, m1), ADD(m2, m3)), b);               \
            const VT y1 = ADD(ADD(SUB(m1, m2), SUB(m4, MUL(two, m3))), b);     \
            const VT v0 = PERM(y0, lo, y1), v1 = PERM(y0, hi, y1);             \
            const ptrdiff_t r = wo - p;                                        \
            if (r >= 2 * LANES) {                                              \
                STOREU(y + p, v0);                                             \
                STOREU(y + p + LANES, v1);                                     \
            } else {                                                           \
                const ptrdiff_t r0 = r < LANES ? r : LANES, r1 = r - r0;       \
                MSTORE(y + p, (MT)((((uint32_t)1 << r0) - 1) & 0xffffu), v0);  \
                if (r1 > 0)                                                    \
                    MSTORE(y + p + LANES, (MT)((((uint32_t)1 << r1) - 1) & 0xffffu), v1); \
            }                                                                  \
        }                                                                      \
    }                                                                          \
}
#define FC_W24_IDX_PS(K) _mm512_setr_epi32(K, 16 + K, K + 1, 17 + K, K + 2, 18 + K, K + 3, 19 + K, \
                                           K + 4, 20 + K, K + 5, 21 + K, K + 6, 22 + K, K + 7, 23 + K)
#define FC_W24_IDX_PD(K) _mm512_setr_epi64(K, 8 + K, K + 1, 9 + K, K + 2, 10 + K, K + 3, 11 + K)
FC_W24_OUT512(fc_w24_out_f32_avx512, float, __m512, __mmask16, 16, _mm512_loadu_ps, _mm512_storeu_ps,
              _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps,
              _mm512_permutex2var_ps, FC_W24_IDX_PS)
FC_W24_OUT512(fc_w24_out_f64_avx512, double, __m512d, __mmask8, 8, _mm512_loadu_pd, _mm512_storeu_pd,
              _mm512_mask_storeu_pd, _mm512_set1_pd, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd,
              _mm512_permutex2var_pd, FC_W24_IDX_PD)
#define FC_W24_AVX512 fc_cpu_has_avx512()
#else
#define FC_W24_AVX512 0
#define fc_w24_in_f32_avx512 fc_w24_in_f32_base
#define fc_w24_in_f64_avx512 fc_w24_in_f64_base
#define fc_w24_out_f32_avx512 fc_w24_out_f32_base
#define fc_w24_out_f64_avx512 fc_w24_out_f64_base
#endif

static int fc_w24_in_f32(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t nt, ptrdiff_t n)
{
    if (FC_W24_AVX512) return fc_w24_in_f32_avx512(dst, ldd, src, nt, n);
    return fc_w24_in_f32_base(dst, ldd, src, nt, n);
}

static int fc_w24_in_f64(double *dst, ptrdiff_t ldd, const double *src, ptrdiff_t nt, ptrdiff_t n)
{
    if (FC_W24_AVX512) return fc_w24_in_f64_avx512(dst, ldd, src, nt, n);
    return fc_w24_in_f64_base(dst, ldd, src, nt, n);
}

static void fc_w24_out_f32(float *out, ptrdiff_t ldo, ptrdiff_t nch, ptrdiff_t wo, const float *m,
                           ptrdiff_t ldc, ptrdiff_t ldm, const float *bias)
{
    if (FC_W24_AVX512) fc_w24_out_f32_avx512(out, ldo, nch, wo, m, ldc, ldm, bias);
    else fc_w24_out_f32_base(out, ldo, nch, wo, m, ldc, ldm, bias);
}

static void fc_w24_out_f64(double *out, ptrdiff_t ldo, ptrdiff_t nch, ptrdiff_t wo, const double *m,
                           ptrdiff_t ldc, ptrdiff_t ldm, const double *bias)
{
    if (FC_W24_AVX512) fc_w24_out_f64_avx512(out, ldo, nch, wo, m, ldc, ldm, bias);
    else fc_w24_out_f64_base(out, ldo, nch, wo, m, ldc, ldm, bias);
}

#endif /* FASTCORR_CONV_KERNELS_H */
