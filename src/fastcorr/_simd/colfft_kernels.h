/*
 * fastcorr: complex float32 FFTs down the columns of a 2-D array (template
 * matching's tiles, ``_engine/matching.py``), vectorised across the columns.
 *
 * ``x`` holds N0 rows (N0 a power of two) of ``nf`` floats (nf / 2
 * interleaved complex values), rows ``s`` floats apart; every column is
 * transformed in place along the rows. ``tw`` holds the N0 / 2 twiddles
 * exp(-2 pi i k / N0), interleaved.
 *
 *   fc_colfft_dif_f32  forward, decimation in frequency: natural order in,
 *                      bit-reversed order out (row k holds frequency
 *                      bitrev(k))
 *   fc_colfft_dit_f32  inverse (conjugate twiddles, unnormalised),
 *                      decimation in time: bit-reversed order in, natural out
 *
 * A correlation multiplies two forward transforms in the same order and
 * takes the inverse: the bit reversal is never carried out. Two radix-2
 * stages are fused into each pass over the rows (four rows in registers),
 * so the array is read and written log2(N0) / 2 times. A butterfly works on
 * whole rows: with the columns as the vector lanes nothing is gathered or
 * transposed (a general FFT library transforming the columns of a row-major
 * array copies each group of columns into a buffer and back, with scalar
 * moves: ducc0 spent more time on those copies than on the butterflies).
 *
 * The default build is baseline x86-64 (scalar loops); on x86 with
 * GCC/Clang an AVX2+FMA copy is compiled with a target attribute and chosen
 * once at run time. Both round alike up to FMA contraction. Thread-safe,
 * no Python objects; callers split the columns between threads.
 */
#ifndef FASTCORR_COLFFT_KERNELS_H
#define FASTCORR_COLFFT_KERNELS_H

#include <stddef.h>
#include <string.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

/* o = (dr + i di) * (a + i b) */
static inline void fcc_mul(float dr, float di, float a, float b, float *o)
{
    o[0] = dr * a - di * b;
    o[1] = dr * b + di * a;
}

/* Forward pass of length L (two stages: L, L / 2) on the rows r0..r3 (q
 * rows apart), columns c0..nf (floats, even). */
static inline void fcc_dif4_scalar(float *r0, float *r1, float *r2, float *r3, ptrdiff_t c0, ptrdiff_t nf,
                                   float a0, float b0, float a1, float b1, float a2, float b2)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c += 2) {
        const float s0r = r0[c] + r2[c], s0i = r0[c + 1] + r2[c + 1];
        const float s1r = r1[c] + r3[c], s1i = r1[c + 1] + r3[c + 1];
        float d0[2], d1[2];
        fcc_mul(r0[c] - r2[c], r0[c + 1] - r2[c + 1], a0, b0, d0);
        fcc_mul(r1[c] - r3[c], r1[c + 1] - r3[c + 1], a1, b1, d1);
        r0[c] = s0r + s1r;
        r0[c + 1] = s0i + s1i;
        fcc_mul(s0r - s1r, s0i - s1i, a2, b2, r1 + c);
        r2[c] = d0[0] + d1[0];
        r2[c + 1] = d0[1] + d1[1];
        fcc_mul(d0[0] - d1[0], d0[1] - d1[1], a2, b2, r3 + c);
    }
}

/* Inverse pass (stages L / 2, then L; the twiddles already conjugated). */
static inline void fcc_dit4_scalar(float *r0, float *r1, float *r2, float *r3, ptrdiff_t c0, ptrdiff_t nf,
                                   float a0, float b0, float a1, float b1, float a2, float b2)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c += 2) {
        float w1[2], w3[2], v2[2], v3[2];
        fcc_mul(r1[c], r1[c + 1], a2, b2, w1);
        fcc_mul(r3[c], r3[c + 1], a2, b2, w3);
        const float y0r = r0[c] + w1[0], y0i = r0[c + 1] + w1[1];
        const float y1r = r0[c] - w1[0], y1i = r0[c + 1] - w1[1];
        const float y2r = r2[c] + w3[0], y2i = r2[c + 1] + w3[1];
        const float y3r = r2[c] - w3[0], y3i = r2[c + 1] - w3[1];
        fcc_mul(y2r, y2i, a0, b0, v2);
        fcc_mul(y3r, y3i, a1, b1, v3);
        r0[c] = y0r + v2[0];
        r0[c + 1] = y0i + v2[1];
        r2[c] = y0r - v2[0];
        r2[c + 1] = y0i - v2[1];
        r1[c] = y1r + v3[0];
        r1[c + 1] = y1i + v3[1];
        r3[c] = y1r - v3[0];
        r3[c + 1] = y1i - v3[1];
    }
}

/* One radix-2 stage without twiddles (length 2) on rows u, v. */
static inline void fcc_pair_scalar(float *u, float *v, ptrdiff_t c0, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c++) {
        const float a = u[c], b = v[c];
        u[c] = a + b;
        v[c] = a - b;
    }
}

#if FC_X86_DISPATCH
#include <immintrin.h>
/* interleaved complex lanes D times the complex scalar (A, B) broadcast */
#define FCC_CM(D, A, B) _mm256_fmaddsub_ps(D, A, _mm256_mul_ps(_mm256_permute_ps(D, 0xB1), B))

FC_TARGET_AVX2 static ptrdiff_t fcc_dif4_avx2(float *r0, float *r1, float *r2, float *r3, ptrdiff_t nf,
                                              float a0, float b0, float a1, float b1, float a2, float b2)
{
    const __m256 A0 = _mm256_set1_ps(a0), B0 = _mm256_set1_ps(b0), A1 = _mm256_set1_ps(a1);
    const __m256 B1 = _mm256_set1_ps(b1), A2 = _mm256_set1_ps(a2), B2 = _mm256_set1_ps(b2);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m256 X0 = _mm256_loadu_ps(r0 + c), X1 = _mm256_loadu_ps(r1 + c);
        const __m256 X2 = _mm256_loadu_ps(r2 + c), X3 = _mm256_loadu_ps(r3 + c);
        const __m256 S0 = _mm256_add_ps(X0, X2), S1 = _mm256_add_ps(X1, X3);
        __m256 D0 = _mm256_sub_ps(X0, X2), D1 = _mm256_sub_ps(X1, X3);
        D0 = FCC_CM(D0, A0, B0);
        D1 = FCC_CM(D1, A1, B1);
        const __m256 E0 = _mm256_sub_ps(S0, S1), E1 = _mm256_sub_ps(D0, D1);
        _mm256_storeu_ps(r0 + c, _mm256_add_ps(S0, S1));
        _mm256_storeu_ps(r1 + c, FCC_CM(E0, A2, B2));
        _mm256_storeu_ps(r2 + c, _mm256_add_ps(D0, D1));
        _mm256_storeu_ps(r3 + c, FCC_CM(E1, A2, B2));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcc_dit4_avx2(float *r0, float *r1, float *r2, float *r3, ptrdiff_t nf,
                                              float a0, float b0, float a1, float b1, float a2, float b2)
{
    const __m256 A0 = _mm256_set1_ps(a0), B0 = _mm256_set1_ps(b0), A1 = _mm256_set1_ps(a1);
    const __m256 B1 = _mm256_set1_ps(b1), A2 = _mm256_set1_ps(a2), B2 = _mm256_set1_ps(b2);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m256 X0 = _mm256_loadu_ps(r0 + c), X1 = _mm256_loadu_ps(r1 + c);
        const __m256 X2 = _mm256_loadu_ps(r2 + c), X3 = _mm256_loadu_ps(r3 + c);
        const __m256 W1 = FCC_CM(X1, A2, B2), W3 = FCC_CM(X3, A2, B2);
        const __m256 Y0 = _mm256_add_ps(X0, W1), Y1 = _mm256_sub_ps(X0, W1);
        const __m256 Y2 = _mm256_add_ps(X2, W3), Y3 = _mm256_sub_ps(X2, W3);
        const __m256 V2 = FCC_CM(Y2, A0, B0), V3 = FCC_CM(Y3, A1, B1);
        _mm256_storeu_ps(r0 + c, _mm256_add_ps(Y0, V2));
        _mm256_storeu_ps(r2 + c, _mm256_sub_ps(Y0, V2));
        _mm256_storeu_ps(r1 + c, _mm256_add_ps(Y1, V3));
        _mm256_storeu_ps(r3 + c, _mm256_sub_ps(Y1, V3));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcc_pair_avx2(float *u, float *v, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m256 U = _mm256_loadu_ps(u + c), V = _mm256_loadu_ps(v + c);
        _mm256_storeu_ps(u + c, _mm256_add_ps(U, V));
        _mm256_storeu_ps(v + c, _mm256_sub_ps(U, V));
    }
    return c;
}
#define FCC_VEC(CALL) (simd ? (CALL) : 0)
#else
#define FCC_VEC(CALL) 0
#endif

/* 1 when N0 is a power of two from 2 on */
static inline int fc_colfft_ok(ptrdiff_t N0)
{
    return N0 >= 2 && (N0 & (N0 - 1)) == 0;
}

/* ``portable``: the scalar loops even where AVX2 runs (tests). */
static void fc_colfft_dif_f32(float *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const float *tw, int portable)
{
#if FC_X86_DISPATCH
    const int simd = !portable && fc_cpu_has_avx2_fma();
#endif
    ptrdiff_t L = N0, b, j, c;
    (void)portable;
    for (; L >= 4; L >>= 2) {
        const ptrdiff_t q = L >> 2, st1 = N0 / L, st2 = 2 * st1;
        for (b = 0; b < N0; b += L)
            for (j = 0; j < q; j++) {
                float *r0 = x + (b + j) * s, *r1 = r0 + q * s, *r2 = r0 + 2 * q * s, *r3 = r0 + 3 * q * s;
                const float a0 = tw[2 * j * st1], b0 = tw[2 * j * st1 + 1];
                const float a1 = tw[2 * (j + q) * st1], b1 = tw[2 * (j + q) * st1 + 1];
                const float a2 = tw[2 * j * st2], b2 = tw[2 * j * st2 + 1];
                c = FCC_VEC(fcc_dif4_avx2(r0, r1, r2, r3, nf, a0, b0, a1, b1, a2, b2));
                fcc_dif4_scalar(r0, r1, r2, r3, c, nf, a0, b0, a1, b1, a2, b2);
            }
    }
    if (L == 2)
        for (b = 0; b < N0; b += 2) {
            c = FCC_VEC(fcc_pair_avx2(x + b * s, x + (b + 1) * s, nf));
            fcc_pair_scalar(x + b * s, x + (b + 1) * s, c, nf);
        }
}

static void fc_colfft_dit_f32(float *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const float *tw, int portable)
{
#if FC_X86_DISPATCH
    const int simd = !portable && fc_cpu_has_avx2_fma();
#endif
    ptrdiff_t L, b, j, c, lg = 0;
    (void)portable;
    for (L = 1; L < N0; L <<= 1)
        lg++;
    L = 1;
    if (lg & 1) {
        for (b = 0; b < N0; b += 2) {
            c = FCC_VEC(fcc_pair_avx2(x + b * s, x + (b + 1) * s, nf));
            fcc_pair_scalar(x + b * s, x + (b + 1) * s, c, nf);
        }
        L = 2;
    }
    for (L <<= 2; L <= N0; L <<= 2) {
        const ptrdiff_t q = L >> 2, st1 = N0 / L, st2 = 2 * st1;
        for (b = 0; b < N0; b += L)
            for (j = 0; j < q; j++) {
                float *r0 = x + (b + j) * s, *r1 = r0 + q * s, *r2 = r0 + 2 * q * s, *r3 = r0 + 3 * q * s;
                const float a0 = tw[2 * j * st1], b0 = -tw[2 * j * st1 + 1];
                const float a1 = tw[2 * (j + q) * st1], b1 = -tw[2 * (j + q) * st1 + 1];
                const float a2 = tw[2 * j * st2], b2 = -tw[2 * j * st2 + 1];
                c = FCC_VEC(fcc_dit4_avx2(r0, r1, r2, r3, nf, a0, b0, a1, b1, a2, b2));
                fcc_dit4_scalar(r0, r1, r2, r3, c, nf, a0, b0, a1, b1, a2, b2);
            }
    }
}


/* ------------------------------------------------------------------------
 * float64: the same transforms on complex128 columns (4-wide double
 * vectors, two complex values a vector), and the fused correlation of a
 * tile's columns of the FFT method (``methods/fft.py``): forward
 * transform, product with the kernel's spectrum (its rows in bit-reversed
 * order, 1 / N0 folded in), inverse transform, one block of columns at a
 * time so that the block stays in the core's cache between the three
 * steps.
 */

static inline void fcd_mul(double dr, double di, double a, double b, double *o)
{
    o[0] = dr * a - di * b;
    o[1] = dr * b + di * a;
}

static inline void fcd_dif4_scalar(double *r0, double *r1, double *r2, double *r3, ptrdiff_t c0, ptrdiff_t nf,
                                   double a0, double b0, double a1, double b1, double a2, double b2)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c += 2) {
        const double s0r = r0[c] + r2[c], s0i = r0[c + 1] + r2[c + 1];
        const double s1r = r1[c] + r3[c], s1i = r1[c + 1] + r3[c + 1];
        double d0[2], d1[2];
        fcd_mul(r0[c] - r2[c], r0[c + 1] - r2[c + 1], a0, b0, d0);
        fcd_mul(r1[c] - r3[c], r1[c + 1] - r3[c + 1], a1, b1, d1);
        r0[c] = s0r + s1r;
        r0[c + 1] = s0i + s1i;
        fcd_mul(s0r - s1r, s0i - s1i, a2, b2, r1 + c);
        r2[c] = d0[0] + d1[0];
        r2[c + 1] = d0[1] + d1[1];
        fcd_mul(d0[0] - d1[0], d0[1] - d1[1], a2, b2, r3 + c);
    }
}

static inline void fcd_dit4_scalar(double *r0, double *r1, double *r2, double *r3, ptrdiff_t c0, ptrdiff_t nf,
                                   double a0, double b0, double a1, double b1, double a2, double b2)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c += 2) {
        double w1[2], w3[2], v2[2], v3[2];
        fcd_mul(r1[c], r1[c + 1], a2, b2, w1);
        fcd_mul(r3[c], r3[c + 1], a2, b2, w3);
        const double y0r = r0[c] + w1[0], y0i = r0[c + 1] + w1[1];
        const double y1r = r0[c] - w1[0], y1i = r0[c + 1] - w1[1];
        const double y2r = r2[c] + w3[0], y2i = r2[c + 1] + w3[1];
        const double y3r = r2[c] - w3[0], y3i = r2[c + 1] - w3[1];
        fcd_mul(y2r, y2i, a0, b0, v2);
        fcd_mul(y3r, y3i, a1, b1, v3);
        r0[c] = y0r + v2[0];
        r0[c + 1] = y0i + v2[1];
        r2[c] = y0r - v2[0];
        r2[c + 1] = y0i - v2[1];
        r1[c] = y1r + v3[0];
        r1[c + 1] = y1i + v3[1];
        r3[c] = y1r - v3[0];
        r3[c + 1] = y1i - v3[1];
    }
}

static inline void fcd_pair_scalar(double *u, double *v, ptrdiff_t c0, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c++) {
        const double a = u[c], b = v[c];
        u[c] = a + b;
        v[c] = a - b;
    }
}

/* x (complex, interleaved) times k (complex, interleaved), columns c0..nf */
static inline void fcd_cmul_scalar(double *x, const double *k, ptrdiff_t c0, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = c0; c < nf; c += 2) {
        const double xr = x[c], xi = x[c + 1];
        x[c] = xr * k[c] - xi * k[c + 1];
        x[c + 1] = xr * k[c + 1] + xi * k[c];
    }
}

#if FC_X86_DISPATCH
/* interleaved complex double lanes D times the complex scalar (A, B) broadcast */
#define FCD_CM(D, A, B) _mm256_fmaddsub_pd(D, A, _mm256_mul_pd(_mm256_permute_pd(D, 0x5), B))

FC_TARGET_AVX2 static ptrdiff_t fcd_dif4_avx2(double *r0, double *r1, double *r2, double *r3, ptrdiff_t nf,
                                              double a0, double b0, double a1, double b1, double a2, double b2)
{
    const __m256d A0 = _mm256_set1_pd(a0), B0 = _mm256_set1_pd(b0), A1 = _mm256_set1_pd(a1);
    const __m256d B1 = _mm256_set1_pd(b1), A2 = _mm256_set1_pd(a2), B2 = _mm256_set1_pd(b2);
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c), X1 = _mm256_loadu_pd(r1 + c);
        const __m256d X2 = _mm256_loadu_pd(r2 + c), X3 = _mm256_loadu_pd(r3 + c);
        const __m256d S0 = _mm256_add_pd(X0, X2), S1 = _mm256_add_pd(X1, X3);
        __m256d D0 = _mm256_sub_pd(X0, X2), D1 = _mm256_sub_pd(X1, X3);
        D0 = FCD_CM(D0, A0, B0);
        D1 = FCD_CM(D1, A1, B1);
        const __m256d E0 = _mm256_sub_pd(S0, S1), E1 = _mm256_sub_pd(D0, D1);
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(S0, S1));
        _mm256_storeu_pd(r1 + c, FCD_CM(E0, A2, B2));
        _mm256_storeu_pd(r2 + c, _mm256_add_pd(D0, D1));
        _mm256_storeu_pd(r3 + c, FCD_CM(E1, A2, B2));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_dit4_avx2(double *r0, double *r1, double *r2, double *r3, ptrdiff_t nf,
                                              double a0, double b0, double a1, double b1, double a2, double b2)
{
    const __m256d A0 = _mm256_set1_pd(a0), B0 = _mm256_set1_pd(b0), A1 = _mm256_set1_pd(a1);
    const __m256d B1 = _mm256_set1_pd(b1), A2 = _mm256_set1_pd(a2), B2 = _mm256_set1_pd(b2);
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c), X1 = _mm256_loadu_pd(r1 + c);
        const __m256d X2 = _mm256_loadu_pd(r2 + c), X3 = _mm256_loadu_pd(r3 + c);
        const __m256d W1 = FCD_CM(X1, A2, B2), W3 = FCD_CM(X3, A2, B2);
        const __m256d Y0 = _mm256_add_pd(X0, W1), Y1 = _mm256_sub_pd(X0, W1);
        const __m256d Y2 = _mm256_add_pd(X2, W3), Y3 = _mm256_sub_pd(X2, W3);
        const __m256d V2 = FCD_CM(Y2, A0, B0), V3 = FCD_CM(Y3, A1, B1);
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(Y0, V2));
        _mm256_storeu_pd(r2 + c, _mm256_sub_pd(Y0, V2));
        _mm256_storeu_pd(r1 + c, _mm256_add_pd(Y1, V3));
        _mm256_storeu_pd(r3 + c, _mm256_sub_pd(Y1, V3));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_pair_avx2(double *u, double *v, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d U = _mm256_loadu_pd(u + c), V = _mm256_loadu_pd(v + c);
        _mm256_storeu_pd(u + c, _mm256_add_pd(U, V));
        _mm256_storeu_pd(v + c, _mm256_sub_pd(U, V));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_cmul_avx2(double *x, const double *k, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X = _mm256_loadu_pd(x + c), K = _mm256_loadu_pd(k + c);
        const __m256d KR = _mm256_movedup_pd(K), KI = _mm256_permute_pd(K, 0xF);
        _mm256_storeu_pd(x + c, _mm256_fmaddsub_pd(X, KR, _mm256_mul_pd(_mm256_permute_pd(X, 0x5), KI)));
    }
    return c;
}
#endif

/* Radix-3 and radix-5 stages (Gentleman-Sande, as the radix-2 ones): the
 * forward stage of length L takes rows j + t q (q = L / r, t < r), sums
 * them into the r-point DFT and multiplies output u by W_L^(j u) (``w``:
 * those r - 1 twiddles, interleaved); the inverse multiplies by the
 * conjugate twiddles first, then takes the conjugate DFT. Outputs stay in
 * the digit-reversed order the forward stages leave them in. */
#define FCD_S3 0.86602540378443864676
#define FCD_C51 0.30901699437494742410
#define FCD_C52 (-0.80901699437494742410)
#define FCD_S51 0.95105651629515357212
#define FCD_S52 0.58778525229247312917

static inline void fcd_r3_scalar(double *r0, double *r1, double *r2, ptrdiff_t c0, ptrdiff_t nf, const double *w,
                                 int inverse)
{
    ptrdiff_t c;
    const double sg = inverse ? -1.0 : 1.0; /* conjugate twiddles, +i instead of -i */
    for (c = c0; c < nf; c += 2) {
        double x1[2] = {r1[c], r1[c + 1]}, x2[2] = {r2[c], r2[c + 1]};
        if (inverse) {
            double t[2];
            fcd_mul(x1[0], x1[1], w[0], -w[1], t);
            x1[0] = t[0], x1[1] = t[1];
            fcd_mul(x2[0], x2[1], w[2], -w[3], t);
            x2[0] = t[0], x2[1] = t[1];
        }
        const double sr = x1[0] + x2[0], si = x1[1] + x2[1], dr = x1[0] - x2[0], di = x1[1] - x2[1];
        const double tr = r0[c] - 0.5 * sr, ti = r0[c + 1] - 0.5 * si;
        const double mr = sg * FCD_S3 * di, mi = -sg * FCD_S3 * dr;
        r0[c] += sr;
        r0[c + 1] += si;
        if (inverse) {
            r1[c] = tr + mr, r1[c + 1] = ti + mi;
            r2[c] = tr - mr, r2[c + 1] = ti - mi;
        } else {
            fcd_mul(tr + mr, ti + mi, w[0], w[1], r1 + c);
            fcd_mul(tr - mr, ti - mi, w[2], w[3], r2 + c);
        }
    }
}

static inline void fcd_r5_scalar(double *r0, double *r1, double *r2, double *r3, double *r4, ptrdiff_t c0,
                                 ptrdiff_t nf, const double *w, int inverse)
{
    ptrdiff_t c;
    const double sg = inverse ? -1.0 : 1.0;
    for (c = c0; c < nf; c += 2) {
        double x[5][2] = {{r0[c], r0[c + 1]}, {r1[c], r1[c + 1]}, {r2[c], r2[c + 1]}, {r3[c], r3[c + 1]},
                          {r4[c], r4[c + 1]}};
        int u;
        if (inverse)
            for (u = 1; u < 5; u++) {
                double t[2];
                fcd_mul(x[u][0], x[u][1], w[2 * u - 2], -w[2 * u - 1], t);
                x[u][0] = t[0], x[u][1] = t[1];
            }
        const double a1r = x[1][0] + x[4][0], a1i = x[1][1] + x[4][1], b1r = x[1][0] - x[4][0], b1i = x[1][1] - x[4][1];
        const double a2r = x[2][0] + x[3][0], a2i = x[2][1] + x[3][1], b2r = x[2][0] - x[3][0], b2i = x[2][1] - x[3][1];
        const double t1r = x[0][0] + FCD_C51 * a1r + FCD_C52 * a2r, t1i = x[0][1] + FCD_C51 * a1i + FCD_C52 * a2i;
        const double t2r = x[0][0] + FCD_C52 * a1r + FCD_C51 * a2r, t2i = x[0][1] + FCD_C52 * a1i + FCD_C51 * a2i;
        const double n1r = FCD_S51 * b1r + FCD_S52 * b2r, n1i = FCD_S51 * b1i + FCD_S52 * b2i;
        const double n2r = FCD_S52 * b1r - FCD_S51 * b2r, n2i = FCD_S52 * b1i - FCD_S51 * b2i;
        /* m = -i n forward, +i n inverse */
        const double m1r = sg * n1i, m1i = -sg * n1r, m2r = sg * n2i, m2i = -sg * n2r;
        double y[5][2] = {{x[0][0] + a1r + a2r, x[0][1] + a1i + a2i}, {t1r + m1r, t1i + m1i}, {t2r + m2r, t2i + m2i},
                          {t2r - m2r, t2i - m2i}, {t1r - m1r, t1i - m1i}};
        double *rows[5] = {r0, r1, r2, r3, r4};
        r0[c] = y[0][0], r0[c + 1] = y[0][1];
        for (u = 1; u < 5; u++) {
            if (inverse) {
                rows[u][c] = y[u][0], rows[u][c + 1] = y[u][1];
            } else {
                fcd_mul(y[u][0], y[u][1], w[2 * u - 2], w[2 * u - 1], rows[u] + c);
            }
        }
    }
}

#if FC_X86_DISPATCH
FC_TARGET_AVX2 static ptrdiff_t fcd_r3_avx2(double *r0, double *r1, double *r2, ptrdiff_t nf, const double *w,
                                            int inverse)
{
    const double sg = inverse ? -1.0 : 1.0;
    const __m256d A1 = _mm256_set1_pd(w[0]), B1 = _mm256_set1_pd(sg * w[1]);
    const __m256d A2 = _mm256_set1_pd(w[2]), B2 = _mm256_set1_pd(sg * w[3]);
    const __m256d H = _mm256_set1_pd(0.5), SM = _mm256_setr_pd(sg * FCD_S3, -sg * FCD_S3, sg * FCD_S3, -sg * FCD_S3);
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c);
        __m256d X1 = _mm256_loadu_pd(r1 + c), X2 = _mm256_loadu_pd(r2 + c);
        if (inverse) {
            X1 = FCD_CM(X1, A1, B1);
            X2 = FCD_CM(X2, A2, B2);
        }
        const __m256d S = _mm256_add_pd(X1, X2), D = _mm256_sub_pd(X1, X2);
        const __m256d T = _mm256_fnmadd_pd(H, S, X0);
        const __m256d M = _mm256_mul_pd(_mm256_permute_pd(D, 0x5), SM);
        const __m256d Y1 = _mm256_add_pd(T, M), Y2 = _mm256_sub_pd(T, M);
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(X0, S));
        if (inverse) {
            _mm256_storeu_pd(r1 + c, Y1);
            _mm256_storeu_pd(r2 + c, Y2);
        } else {
            _mm256_storeu_pd(r1 + c, FCD_CM(Y1, A1, B1));
            _mm256_storeu_pd(r2 + c, FCD_CM(Y2, A2, B2));
        }
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_r5_avx2(double *r0, double *r1, double *r2, double *r3, double *r4,
                                            ptrdiff_t nf, const double *w, int inverse)
{
    const double sg = inverse ? -1.0 : 1.0;
    const __m256d A1 = _mm256_set1_pd(w[0]), B1 = _mm256_set1_pd(sg * w[1]);
    const __m256d A2 = _mm256_set1_pd(w[2]), B2 = _mm256_set1_pd(sg * w[3]);
    const __m256d A3 = _mm256_set1_pd(w[4]), B3 = _mm256_set1_pd(sg * w[5]);
    const __m256d A4 = _mm256_set1_pd(w[6]), B4 = _mm256_set1_pd(sg * w[7]);
    const __m256d C1 = _mm256_set1_pd(FCD_C51), C2 = _mm256_set1_pd(FCD_C52);
    const __m256d SP1 = _mm256_setr_pd(sg * FCD_S51, -sg * FCD_S51, sg * FCD_S51, -sg * FCD_S51);
    const __m256d SP2 = _mm256_setr_pd(sg * FCD_S52, -sg * FCD_S52, sg * FCD_S52, -sg * FCD_S52);
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c);
        __m256d X1 = _mm256_loadu_pd(r1 + c), X2 = _mm256_loadu_pd(r2 + c);
        __m256d X3 = _mm256_loadu_pd(r3 + c), X4 = _mm256_loadu_pd(r4 + c);
        if (inverse) {
            X1 = FCD_CM(X1, A1, B1);
            X2 = FCD_CM(X2, A2, B2);
            X3 = FCD_CM(X3, A3, B3);
            X4 = FCD_CM(X4, A4, B4);
        }
        const __m256d Q1 = _mm256_add_pd(X1, X4), D1 = _mm256_sub_pd(X1, X4);
        const __m256d Q2 = _mm256_add_pd(X2, X3), D2 = _mm256_sub_pd(X2, X3);
        const __m256d T1 = _mm256_fmadd_pd(C2, Q2, _mm256_fmadd_pd(C1, Q1, X0));
        const __m256d T2 = _mm256_fmadd_pd(C1, Q2, _mm256_fmadd_pd(C2, Q1, X0));
        const __m256d P1 = _mm256_permute_pd(D1, 0x5), P2 = _mm256_permute_pd(D2, 0x5);
        /* m1 = -i (S1 d1 + S2 d2), m2 = -i (S2 d1 - S1 d2) (forward; +i inverse) */
        const __m256d M1 = _mm256_fmadd_pd(P1, SP1, _mm256_mul_pd(P2, SP2));
        const __m256d M2 = _mm256_fmsub_pd(P1, SP2, _mm256_mul_pd(P2, SP1));
        const __m256d Y1 = _mm256_add_pd(T1, M1), Y4 = _mm256_sub_pd(T1, M1);
        const __m256d Y2 = _mm256_add_pd(T2, M2), Y3 = _mm256_sub_pd(T2, M2);
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(X0, _mm256_add_pd(Q1, Q2)));
        if (inverse) {
            _mm256_storeu_pd(r1 + c, Y1);
            _mm256_storeu_pd(r2 + c, Y2);
            _mm256_storeu_pd(r3 + c, Y3);
            _mm256_storeu_pd(r4 + c, Y4);
        } else {
            _mm256_storeu_pd(r1 + c, FCD_CM(Y1, A1, B1));
            _mm256_storeu_pd(r2 + c, FCD_CM(Y2, A2, B2));
            _mm256_storeu_pd(r3 + c, FCD_CM(Y3, A3, B3));
            _mm256_storeu_pd(r4 + c, FCD_CM(Y4, A4, B4));
        }
    }
    return c;
}
#endif

/* The middle of a correlation when N0 has a factor 2: the forward
 * transform's last pass (the radix-4 pass of length 4, or the radix-2 one
 * of length 2), the product with the kernel's rows and the inverse's first
 * pass, on each group of 4 (2) adjacent rows at once: one pass over the
 * array instead of three. Twiddles of length 4: 1 and -i (+i inverse). */
static inline void fcd_mid4_scalar(double *r0, double *r1, double *r2, double *r3, const double *k0,
                                   const double *k1, const double *k2, const double *k3, ptrdiff_t c0,
                                   ptrdiff_t nf)
{
    fcd_dif4_scalar(r0, r1, r2, r3, c0, nf, 1.0, 0.0, 0.0, -1.0, 1.0, 0.0);
    fcd_cmul_scalar(r0, k0, c0, nf);
    fcd_cmul_scalar(r1, k1, c0, nf);
    fcd_cmul_scalar(r2, k2, c0, nf);
    fcd_cmul_scalar(r3, k3, c0, nf);
    fcd_dit4_scalar(r0, r1, r2, r3, c0, nf, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0);
}

static inline void fcd_mid2_scalar(double *r0, double *r1, const double *k0, const double *k1, ptrdiff_t c0,
                                   ptrdiff_t nf)
{
    fcd_pair_scalar(r0, r1, c0, nf);
    fcd_cmul_scalar(r0, k0, c0, nf);
    fcd_cmul_scalar(r1, k1, c0, nf);
    fcd_pair_scalar(r0, r1, c0, nf);
}

#if FC_X86_DISPATCH
/* x times the complex vector K, interleaved */
#define FCD_VM(X, K) _mm256_fmaddsub_pd(X, _mm256_movedup_pd(K), \
                                        _mm256_mul_pd(_mm256_permute_pd(X, 0x5), _mm256_permute_pd(K, 0xF)))

FC_TARGET_AVX2 static ptrdiff_t fcd_mid4_avx2(double *r0, double *r1, double *r2, double *r3, const double *k0,
                                              const double *k1, const double *k2, const double *k3, ptrdiff_t nf)
{
    const __m256d MI = _mm256_setr_pd(1.0, -1.0, 1.0, -1.0); /* swapped lanes times this: -i x */
    const __m256d PI = _mm256_setr_pd(-1.0, 1.0, -1.0, 1.0); /* +i x */
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c), X1 = _mm256_loadu_pd(r1 + c);
        const __m256d X2 = _mm256_loadu_pd(r2 + c), X3 = _mm256_loadu_pd(r3 + c);
        const __m256d S0 = _mm256_add_pd(X0, X2), S1 = _mm256_add_pd(X1, X3);
        const __m256d D0 = _mm256_sub_pd(X0, X2);
        const __m256d D1 = _mm256_mul_pd(_mm256_permute_pd(_mm256_sub_pd(X1, X3), 0x5), MI);
        const __m256d Z0 = FCD_VM(_mm256_add_pd(S0, S1), _mm256_loadu_pd(k0 + c));
        const __m256d Z1 = FCD_VM(_mm256_sub_pd(S0, S1), _mm256_loadu_pd(k1 + c));
        const __m256d Z2 = FCD_VM(_mm256_add_pd(D0, D1), _mm256_loadu_pd(k2 + c));
        const __m256d Z3 = FCD_VM(_mm256_sub_pd(D0, D1), _mm256_loadu_pd(k3 + c));
        const __m256d Y0 = _mm256_add_pd(Z0, Z1), Y1 = _mm256_sub_pd(Z0, Z1);
        const __m256d V2 = _mm256_add_pd(Z2, Z3);
        const __m256d V3 = _mm256_mul_pd(_mm256_permute_pd(_mm256_sub_pd(Z2, Z3), 0x5), PI);
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(Y0, V2));
        _mm256_storeu_pd(r2 + c, _mm256_sub_pd(Y0, V2));
        _mm256_storeu_pd(r1 + c, _mm256_add_pd(Y1, V3));
        _mm256_storeu_pd(r3 + c, _mm256_sub_pd(Y1, V3));
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_mid2_avx2(double *r0, double *r1, const double *k0, const double *k1,
                                              ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 4 <= nf; c += 4) {
        const __m256d X0 = _mm256_loadu_pd(r0 + c), X1 = _mm256_loadu_pd(r1 + c);
        const __m256d Z0 = FCD_VM(_mm256_add_pd(X0, X1), _mm256_loadu_pd(k0 + c));
        const __m256d Z1 = FCD_VM(_mm256_sub_pd(X0, X1), _mm256_loadu_pd(k1 + c));
        _mm256_storeu_pd(r0 + c, _mm256_add_pd(Z0, Z1));
        _mm256_storeu_pd(r1 + c, _mm256_sub_pd(Z0, Z1));
    }
    return c;
}
#endif

/* Two radix-4 passes in one sweep over the rows ("radix 16"): the
 * power-of-two part's passes of lengths L and L / 4 (forward) or L and 4 L
 * (inverse) on each group of 16 rows they share, held in registers between
 * the two, so that the array is read and written once for the two instead
 * of twice. The same butterflies on the same values as the two passes one
 * after the other. On AVX2 the 16 rows and their twiddles do not fit in
 * the 16 registers, and the fused sweep ran 5-10% slower than two passes;
 * on AVX-512 (32 registers) it runs faster, and the other passes there too
 * (Zen 4 runs a 512-bit operation as two 256-bit halves: the gain is in
 * the registers and the instruction count, not the width). Measured on the
 * fused correlation of a tile's columns, one thread, alternated: 1.14-1.42x
 * faster on 288-1024 rows (960 x 481: 1.17x; 1024 x 513: 1.42x).
 * ``fcd_fuse16``: 2 (default) the AVX-512 copies, fused (radix-3 / radix-5
 * pairs too, fcd_odd2_avx512), where the CPU has AVX-512 and AVX2 unfused
 * elsewhere; 3 as 2 without the odd pairs; 1 the AVX2 copies fused; 0
 * unfused (the tests' and benchmarks' switch, ``fft_kernels.column_fuse16``). */
static int fcd_fuse16 = 2;

/* Forward: rows r[4 n + a] = x + (base + a qp + 4 n qp) s; ``t1``: the
 * length-L pass's twiddles (a0 b0 a1 b1 a2 b2) of its groups base + a qp,
 * a = 0..3 (24 values); ``t2``: the length-L/4 pass's of its group (6). */
static inline void fcd_dif16_scalar(double *const *r, ptrdiff_t c0, ptrdiff_t nf, const double *t1, const double *t2)
{
    int a, n;
    if (c0 >= nf)
        return;
    for (a = 0; a < 4; a++)
        fcd_dif4_scalar(r[a], r[4 + a], r[8 + a], r[12 + a], c0, nf, t1[6 * a], t1[6 * a + 1], t1[6 * a + 2],
                        t1[6 * a + 3], t1[6 * a + 4], t1[6 * a + 5]);
    for (n = 0; n < 4; n++)
        fcd_dif4_scalar(r[4 * n], r[4 * n + 1], r[4 * n + 2], r[4 * n + 3], c0, nf, t2[0], t2[1], t2[2], t2[3],
                        t2[4], t2[5]);
}

/* Inverse: rows r[4 n + a] = x + (base + a q + n L) s; ``t1``: the
 * length-L pass's (conjugated) twiddles of its group (6); ``t2``: the
 * length-4L pass's of its groups base + a q, a = 0..3 (24). */
static inline void fcd_dit16_scalar(double *const *r, ptrdiff_t c0, ptrdiff_t nf, const double *t1, const double *t2)
{
    int a, n;
    if (c0 >= nf)
        return;
    for (n = 0; n < 4; n++)
        fcd_dit4_scalar(r[4 * n], r[4 * n + 1], r[4 * n + 2], r[4 * n + 3], c0, nf, t1[0], t1[1], t1[2], t1[3],
                        t1[4], t1[5]);
    for (a = 0; a < 4; a++)
        fcd_dit4_scalar(r[a], r[4 + a], r[8 + a], r[12 + a], c0, nf, t2[6 * a], t2[6 * a + 1], t2[6 * a + 2],
                        t2[6 * a + 3], t2[6 * a + 4], t2[6 * a + 5]);
}

static inline ptrdiff_t fcd_none16(double *const *r, ptrdiff_t nf, const double *t1, const double *t2)
{
    (void)r; (void)nf; (void)t1; (void)t2;
    return 0;
}

static inline void fcd_none_odd2(double *x, ptrdiff_t N0, ptrdiff_t L, int R1, int R2, ptrdiff_t nf, ptrdiff_t s,
                                 const double *tw, int inverse)
{
    (void)x; (void)N0; (void)L; (void)R1; (void)R2; (void)nf; (void)s; (void)tw; (void)inverse;
}

#if FC_X86_DISPATCH
#define FCD_B(T) _mm256_set1_pd(T)
/* the butterflies of fcd_dif4_avx2 / fcd_dit4_avx2 on registers; t: a0 b0 a1 b1 a2 b2 */
#define FCD_DIF4R(X0, X1, X2, X3, t)                                                                        \
    do {                                                                                                     \
        const __m256d S0_ = _mm256_add_pd(X0, X2), S1_ = _mm256_add_pd(X1, X3);                              \
        const __m256d D0_ = FCD_CM(_mm256_sub_pd(X0, X2), FCD_B((t)[0]), FCD_B((t)[1]));                     \
        const __m256d D1_ = FCD_CM(_mm256_sub_pd(X1, X3), FCD_B((t)[2]), FCD_B((t)[3]));                     \
        X0 = _mm256_add_pd(S0_, S1_);                                                                        \
        X1 = FCD_CM(_mm256_sub_pd(S0_, S1_), FCD_B((t)[4]), FCD_B((t)[5]));                                  \
        X2 = _mm256_add_pd(D0_, D1_);                                                                        \
        X3 = FCD_CM(_mm256_sub_pd(D0_, D1_), FCD_B((t)[4]), FCD_B((t)[5]));                                  \
    } while (0)
#define FCD_DIT4R(X0, X1, X2, X3, t)                                                                        \
    do {                                                                                                     \
        const __m256d W1_ = FCD_CM(X1, FCD_B((t)[4]), FCD_B((t)[5]));                                        \
        const __m256d W3_ = FCD_CM(X3, FCD_B((t)[4]), FCD_B((t)[5]));                                        \
        const __m256d Y0_ = _mm256_add_pd(X0, W1_), Y1_ = _mm256_sub_pd(X0, W1_);                            \
        const __m256d V2_ = FCD_CM(_mm256_add_pd(X2, W3_), FCD_B((t)[0]), FCD_B((t)[1]));                    \
        const __m256d V3_ = FCD_CM(_mm256_sub_pd(X2, W3_), FCD_B((t)[2]), FCD_B((t)[3]));                    \
        X0 = _mm256_add_pd(Y0_, V2_);                                                                        \
        X2 = _mm256_sub_pd(Y0_, V2_);                                                                        \
        X1 = _mm256_add_pd(Y1_, V3_);                                                                        \
        X3 = _mm256_sub_pd(Y1_, V3_);                                                                        \
    } while (0)

FC_TARGET_AVX2 static ptrdiff_t fcd_dif16_avx2(double *const *r, ptrdiff_t nf, const double *t1, const double *t2)
{
    ptrdiff_t c;
    int i;
    for (c = 0; c + 4 <= nf; c += 4) {
        __m256d X[16];
        for (i = 0; i < 16; i++)
            X[i] = _mm256_loadu_pd(r[i] + c);
        FCD_DIF4R(X[0], X[4], X[8], X[12], t1);
        FCD_DIF4R(X[1], X[5], X[9], X[13], t1 + 6);
        FCD_DIF4R(X[2], X[6], X[10], X[14], t1 + 12);
        FCD_DIF4R(X[3], X[7], X[11], X[15], t1 + 18);
        FCD_DIF4R(X[0], X[1], X[2], X[3], t2);
        FCD_DIF4R(X[4], X[5], X[6], X[7], t2);
        FCD_DIF4R(X[8], X[9], X[10], X[11], t2);
        FCD_DIF4R(X[12], X[13], X[14], X[15], t2);
        for (i = 0; i < 16; i++)
            _mm256_storeu_pd(r[i] + c, X[i]);
    }
    return c;
}

FC_TARGET_AVX2 static ptrdiff_t fcd_dit16_avx2(double *const *r, ptrdiff_t nf, const double *t1, const double *t2)
{
    ptrdiff_t c;
    int i;
    for (c = 0; c + 4 <= nf; c += 4) {
        __m256d X[16];
        for (i = 0; i < 16; i++)
            X[i] = _mm256_loadu_pd(r[i] + c);
        FCD_DIT4R(X[0], X[1], X[2], X[3], t1);
        FCD_DIT4R(X[4], X[5], X[6], X[7], t1);
        FCD_DIT4R(X[8], X[9], X[10], X[11], t1);
        FCD_DIT4R(X[12], X[13], X[14], X[15], t1);
        FCD_DIT4R(X[0], X[4], X[8], X[12], t2);
        FCD_DIT4R(X[1], X[5], X[9], X[13], t2 + 6);
        FCD_DIT4R(X[2], X[6], X[10], X[14], t2 + 12);
        FCD_DIT4R(X[3], X[7], X[11], X[15], t2 + 18);
        for (i = 0; i < 16; i++)
            _mm256_storeu_pd(r[i] + c, X[i]);
    }
    return c;
}

/* The same two passes on AVX-512 (eight doubles, four complex values, a
 * register): its 32 registers hold the 16 rows and the twiddles without
 * the spills of the AVX2 copy (Zen 4 runs a 512-bit operation as two
 * 256-bit halves: the gain is in the registers, not the width). Chosen at
 * run time (fcd_cpu_has_avx512). */
#define FCD_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))

static int fcd_cpu_has_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = (fc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512dq")) ? 1 : 0;
    }
    return cached;
}

#define FCD_CM5(D, A, B) _mm512_fmaddsub_pd(D, A, _mm512_mul_pd(_mm512_permute_pd(D, 0x55), B))
#define FCD_B5(T) _mm512_set1_pd(T)
#define FCD_DIF4Z(X0, X1, X2, X3, t)                                                                        \
    do {                                                                                                     \
        const __m512d S0_ = _mm512_add_pd(X0, X2), S1_ = _mm512_add_pd(X1, X3);                              \
        const __m512d D0_ = FCD_CM5(_mm512_sub_pd(X0, X2), FCD_B5((t)[0]), FCD_B5((t)[1]));                  \
        const __m512d D1_ = FCD_CM5(_mm512_sub_pd(X1, X3), FCD_B5((t)[2]), FCD_B5((t)[3]));                  \
        X0 = _mm512_add_pd(S0_, S1_);                                                                        \
        X1 = FCD_CM5(_mm512_sub_pd(S0_, S1_), FCD_B5((t)[4]), FCD_B5((t)[5]));                               \
        X2 = _mm512_add_pd(D0_, D1_);                                                                        \
        X3 = FCD_CM5(_mm512_sub_pd(D0_, D1_), FCD_B5((t)[4]), FCD_B5((t)[5]));                               \
    } while (0)
#define FCD_DIT4Z(X0, X1, X2, X3, t)                                                                        \
    do {                                                                                                     \
        const __m512d W1_ = FCD_CM5(X1, FCD_B5((t)[4]), FCD_B5((t)[5]));                                     \
        const __m512d W3_ = FCD_CM5(X3, FCD_B5((t)[4]), FCD_B5((t)[5]));                                     \
        const __m512d Y0_ = _mm512_add_pd(X0, W1_), Y1_ = _mm512_sub_pd(X0, W1_);                            \
        const __m512d V2_ = FCD_CM5(_mm512_add_pd(X2, W3_), FCD_B5((t)[0]), FCD_B5((t)[1]));                 \
        const __m512d V3_ = FCD_CM5(_mm512_sub_pd(X2, W3_), FCD_B5((t)[2]), FCD_B5((t)[3]));                 \
        X0 = _mm512_add_pd(Y0_, V2_);                                                                        \
        X2 = _mm512_sub_pd(Y0_, V2_);                                                                        \
        X1 = _mm512_add_pd(Y1_, V3_);                                                                        \
        X3 = _mm512_sub_pd(Y1_, V3_);                                                                        \
    } while (0)

FCD_TARGET_AVX512 static ptrdiff_t fcd_dif16_avx512(double *const *r, ptrdiff_t nf, const double *t1in,
                                                    const double *t2in)
{
    double t1[24], t2[6]; /* local copies: no store to the rows can change them */
    ptrdiff_t c;
    int i;
    for (i = 0; i < 24; i++)
        t1[i] = t1in[i];
    for (i = 0; i < 6; i++)
        t2[i] = t2in[i];
    for (c = 0; c + 8 <= nf; c += 8) {
        __m512d X[16];
        for (i = 0; i < 16; i++)
            X[i] = _mm512_loadu_pd(r[i] + c);
        FCD_DIF4Z(X[0], X[4], X[8], X[12], t1);
        FCD_DIF4Z(X[1], X[5], X[9], X[13], t1 + 6);
        FCD_DIF4Z(X[2], X[6], X[10], X[14], t1 + 12);
        FCD_DIF4Z(X[3], X[7], X[11], X[15], t1 + 18);
        FCD_DIF4Z(X[0], X[1], X[2], X[3], t2);
        FCD_DIF4Z(X[4], X[5], X[6], X[7], t2);
        FCD_DIF4Z(X[8], X[9], X[10], X[11], t2);
        FCD_DIF4Z(X[12], X[13], X[14], X[15], t2);
        for (i = 0; i < 16; i++)
            _mm512_storeu_pd(r[i] + c, X[i]);
    }
    {
        double *rr[16];
        for (i = 0; i < 16; i++)
            rr[i] = r[i] + c;
        return c + fcd_dif16_avx2(rr, nf - c, t1, t2);
    }
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_dit16_avx512(double *const *r, ptrdiff_t nf, const double *t1in,
                                                    const double *t2in)
{
    double t1[6], t2[24];
    ptrdiff_t c;
    int i;
    for (i = 0; i < 6; i++)
        t1[i] = t1in[i];
    for (i = 0; i < 24; i++)
        t2[i] = t2in[i];
    for (c = 0; c + 8 <= nf; c += 8) {
        __m512d X[16];
        for (i = 0; i < 16; i++)
            X[i] = _mm512_loadu_pd(r[i] + c);
        FCD_DIT4Z(X[0], X[1], X[2], X[3], t1);
        FCD_DIT4Z(X[4], X[5], X[6], X[7], t1);
        FCD_DIT4Z(X[8], X[9], X[10], X[11], t1);
        FCD_DIT4Z(X[12], X[13], X[14], X[15], t1);
        FCD_DIT4Z(X[0], X[4], X[8], X[12], t2);
        FCD_DIT4Z(X[1], X[5], X[9], X[13], t2 + 6);
        FCD_DIT4Z(X[2], X[6], X[10], X[14], t2 + 12);
        FCD_DIT4Z(X[3], X[7], X[11], X[15], t2 + 18);
        for (i = 0; i < 16; i++)
            _mm512_storeu_pd(r[i] + c, X[i]);
    }
    {
        double *rr[16];
        for (i = 0; i < 16; i++)
            rr[i] = r[i] + c;
        return c + fcd_dit16_avx2(rr, nf - c, t1, t2);
    }
}

#endif

/* the twiddles (a0 b0 a1 b1 a2 b2) of group j of a radix-4 pass of length
 * L (q = L / 4) on N0 rows; ``conj``: conjugated (the inverse's) */
static inline void fcd_tw6(double *t, const double *tw, ptrdiff_t N0, ptrdiff_t L, ptrdiff_t j, int conj)
{
    const ptrdiff_t q = L >> 2, st1 = N0 / L, st2 = 2 * st1;
    const double sg = conj ? -1.0 : 1.0;
    t[0] = tw[2 * j * st1];
    t[1] = sg * tw[2 * j * st1 + 1];
    t[2] = tw[2 * (j + q) * st1];
    t[3] = sg * tw[2 * (j + q) * st1 + 1];
    t[4] = tw[2 * j * st2];
    t[5] = sg * tw[2 * j * st2 + 1];
}

/* 1 when N0 = 2^a 3^b 5^c >= 2 (the lengths of the float64 transforms) */
static inline int fc_colfft64_ok(ptrdiff_t N0)
{
    if (N0 < 2)
        return 0;
    while (N0 % 5 == 0)
        N0 /= 5;
    while (N0 % 3 == 0)
        N0 /= 3;
    return (N0 & (N0 - 1)) == 0;
}

/* The transforms and the fused correlation on complex128 columns, defined
 * twice: with the AVX2 butterflies (the whole loop nest compiled for AVX2,
 * so that the butterflies inline) and with the scalar ones. The twiddles
 * of a butterfly group are loaded once for all the groups that share them
 * (j outer, b inner). ``tw``: the N0 twiddles exp(-2 pi i k / N0). The
 * forward transform runs the radix-5 stages, then the radix-3 ones, then
 * the power-of-two part (radix-4 pairs of radix-2 stages); the inverse the
 * same stages in the reverse order. */
#define FCD_DEFINE(SUF, ATTR, DIF4V, DIT4V, PAIRV, CMULV, R3V, R5V, MID4V, MID2V, FUSE, DIF16V, DIT16V, ODD2V, ODDF)                                      \
ATTR static void fcd_odd_##SUF(double *x, ptrdiff_t N0, ptrdiff_t L, ptrdiff_t r, ptrdiff_t nf, ptrdiff_t s, \
                               const double *tw, int inverse)                                                \
{                                                                                                            \
    const ptrdiff_t q = L / r, st = N0 / L;                                                                  \
    ptrdiff_t b, j, c, u;                                                                                    \
    double w[8];                                                                                             \
    for (j = 0; j < q; j++) {                                                                                \
        for (u = 1; u < r; u++) {                                                                            \
            w[2 * u - 2] = tw[2 * (st * j * u)];                                                             \
            w[2 * u - 1] = tw[2 * (st * j * u) + 1];                                                         \
        }                                                                                                    \
        for (b = 0; b < N0; b += L) {                                                                        \
            double *r0 = x + (b + j) * s;                                                                    \
            if (r == 3) {                                                                                    \
                c = R3V(r0, r0 + q * s, r0 + 2 * q * s, nf, w, inverse);                                     \
                fcd_r3_scalar(r0, r0 + q * s, r0 + 2 * q * s, c, nf, w, inverse);                            \
            } else {                                                                                         \
                c = R5V(r0, r0 + q * s, r0 + 2 * q * s, r0 + 3 * q * s, r0 + 4 * q * s, nf, w, inverse);     \
                fcd_r5_scalar(r0, r0 + q * s, r0 + 2 * q * s, r0 + 3 * q * s, r0 + 4 * q * s, c, nf, w,      \
                              inverse);                                                                      \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
ATTR static void fcd_dif_##SUF(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw, int mid) \
{                                                                                                            \
    ptrdiff_t L = N0, b, j, c;                                                                               \
    while (L % 5 == 0 || L % 3 == 0) {                                                                       \
        const int R1 = L % 5 == 0 ? 5 : 3;                                                                   \
        const ptrdiff_t L2 = L / R1;                                                                         \
        const int R2 = L2 % 5 == 0 ? 5 : (L2 % 3 == 0 ? 3 : 0);                                              \
        if ((ODDF) && R2 && R1 * R2 < 25) {                                                                                \
            ODD2V(x, N0, L, R1, R2, nf, s, tw, 0);                                                           \
            L = L2 / R2;                                                                                     \
            continue;                                                                                        \
        }                                                                                                    \
        fcd_odd_##SUF(x, N0, L, R1, nf, s, tw, 0);                                                           \
        L = L2;                                                                                              \
    }                                                                                                        \
    for (; L >= (mid ? 8 : 4); L >>= 2) {                                                                    \
        const ptrdiff_t q = L >> 2, st1 = N0 / L, st2 = 2 * st1;                                             \
        if ((FUSE) && (L >> 2) >= (mid ? 8 : 4)) {                                               \
            const ptrdiff_t qp = L >> 4;                                                                     \
            double t1[24], t2[6], *r[16];                                                                    \
            int a;                                                                                           \
            for (j = 0; j < qp; j++) {                                                                       \
                for (a = 0; a < 4; a++)                                                                      \
                    fcd_tw6(t1 + 6 * a, tw, N0, L, j + a * qp, 0);                                           \
                fcd_tw6(t2, tw, N0, L >> 2, j, 0);                                                           \
                for (b = 0; b < N0; b += L) {                                                                \
                    for (a = 0; a < 16; a++)                                                                 \
                        r[a] = x + (b + j + (a & 3) * qp + (a >> 2) * q) * s;                                \
                    c = DIF16V(r, nf, t1, t2);                                                               \
                    fcd_dif16_scalar(r, c, nf, t1, t2);                                                      \
                }                                                                                            \
            }                                                                                                \
            L >>= 2;                                                                                         \
            continue;                                                                                        \
        }                                                                                                    \
        for (j = 0; j < q; j++) {                                                                            \
            const double a0 = tw[2 * j * st1], b0 = tw[2 * j * st1 + 1];                                     \
            const double a1 = tw[2 * (j + q) * st1], b1 = tw[2 * (j + q) * st1 + 1];                         \
            const double a2 = tw[2 * j * st2], b2 = tw[2 * j * st2 + 1];                                     \
            for (b = 0; b < N0; b += L) {                                                                    \
                double *r0 = x + (b + j) * s, *r1 = r0 + q * s, *r2 = r0 + 2 * q * s, *r3 = r0 + 3 * q * s;  \
                c = DIF4V(r0, r1, r2, r3, nf, a0, b0, a1, b1, a2, b2);                                       \
                fcd_dif4_scalar(r0, r1, r2, r3, c, nf, a0, b0, a1, b1, a2, b2);                              \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    if (L == 2 && !mid)                                                                                      \
        for (b = 0; b < N0; b += 2) {                                                                        \
            c = PAIRV(x + b * s, x + (b + 1) * s, nf);                                                       \
            fcd_pair_scalar(x + b * s, x + (b + 1) * s, c, nf);                                              \
        }                                                                                                    \
}                                                                                                            \
ATTR static void fcd_dit_##SUF(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw, int mid) \
{                                                                                                            \
    ptrdiff_t L, b, j, c, lg = 0, P = N0;                                                                    \
    while (P % 5 == 0)                                                                                       \
        P /= 5;                                                                                              \
    while (P % 3 == 0)                                                                                       \
        P /= 3;                                                                                              \
    for (L = 1; L < P; L <<= 1)                                                                              \
        lg++;                                                                                                \
    L = 1;                                                                                                   \
    if (lg & 1) {                                                                                            \
        for (b = 0; b < N0 && !mid; b += 2) {                                                                \
            c = PAIRV(x + b * s, x + (b + 1) * s, nf);                                                       \
            fcd_pair_scalar(x + b * s, x + (b + 1) * s, c, nf);                                              \
        }                                                                                                    \
        L = 2;                                                                                               \
    }                                                                                                        \
    L <<= 2;                                                                                                 \
    if (mid && !(lg & 1))                                                                                    \
        L <<= 2;                                                                                             \
    for (; L <= P; L <<= 2) {                                                                                \
        const ptrdiff_t q = L >> 2, st1 = N0 / L, st2 = 2 * st1;                                             \
        if ((FUSE) && 4 * L <= P) {                                                              \
            double t1[6], t2[24], *r[16];                                                                    \
            int a;                                                                                           \
            for (j = 0; j < q; j++) {                                                                        \
                fcd_tw6(t1, tw, N0, L, j, 1);                                                                \
                for (a = 0; a < 4; a++)                                                                      \
                    fcd_tw6(t2 + 6 * a, tw, N0, 4 * L, j + a * q, 1);                                        \
                for (b = 0; b < N0; b += 4 * L) {                                                            \
                    for (a = 0; a < 16; a++)                                                                 \
                        r[a] = x + (b + j + (a & 3) * q + (a >> 2) * L) * s;                                 \
                    c = DIT16V(r, nf, t1, t2);                                                               \
                    fcd_dit16_scalar(r, c, nf, t1, t2);                                                      \
                }                                                                                            \
            }                                                                                                \
            L <<= 2;                                                                                         \
            continue;                                                                                        \
        }                                                                                                    \
        for (j = 0; j < q; j++) {                                                                            \
            const double a0 = tw[2 * j * st1], b0 = -tw[2 * j * st1 + 1];                                    \
            const double a1 = tw[2 * (j + q) * st1], b1 = -tw[2 * (j + q) * st1 + 1];                        \
            const double a2 = tw[2 * j * st2], b2 = -tw[2 * j * st2 + 1];                                    \
            for (b = 0; b < N0; b += L) {                                                                    \
                double *r0 = x + (b + j) * s, *r1 = r0 + q * s, *r2 = r0 + 2 * q * s, *r3 = r0 + 3 * q * s;  \
                c = DIT4V(r0, r1, r2, r3, nf, a0, b0, a1, b1, a2, b2);                                       \
                fcd_dit4_scalar(r0, r1, r2, r3, c, nf, a0, b0, a1, b1, a2, b2);                              \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    L = P;                                                                                                   \
    while (L < N0) {                                                                                         \
        const int R1 = (N0 / L) % 3 == 0 ? 3 : 5;                                                            \
        const ptrdiff_t L1 = L * R1;                                                                         \
        const int R2 = L1 < N0 ? ((N0 / L1) % 3 == 0 ? 3 : 5) : 0;                                           \
        if ((ODDF) && R2 && R1 * R2 < 25) {                                                                                \
            ODD2V(x, N0, L1, R1, R2, nf, s, tw, 1);                                                          \
            L = L1 * R2;                                                                                     \
            continue;                                                                                        \
        }                                                                                                    \
        fcd_odd_##SUF(x, N0, L1, R1, nf, s, tw, 1);                                                          \
        L = L1;                                                                                              \
    }                                                                                                        \
}                                                                                                            \
ATTR static void fcd_corr_##SUF(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw,        \
                                const double *k, ptrdiff_t ks, ptrdiff_t blk, double *buf, int fuse)         \
{                                                                                                            \
    ptrdiff_t c0, r, c, lg = 0, P = N0;                                                                      \
    int mid = 0;                                                                                             \
    while (P % 5 == 0)                                                                                       \
        P /= 5;                                                                                              \
    while (P % 3 == 0)                                                                                       \
        P /= 3;                                                                                              \
    for (r = 1; r < P; r <<= 1)                                                                              \
        lg++;                                                                                                \
    if (fuse && lg)                                                                                          \
        mid = (lg & 1) ? 2 : 4;                                                                              \
    for (c0 = 0; c0 < nf; c0 += blk) {                                                                       \
        const ptrdiff_t n = nf - c0 < blk ? nf - c0 : blk;                                                   \
        double *y = buf ? buf : x + c0;                                                                      \
        const ptrdiff_t sy = buf ? n : s;                                                                    \
        if (buf)                                                                                             \
            for (r = 0; r < N0; r++)                                                                         \
                for (c = 0; c < n; c++)                                                                      \
                    buf[r * n + c] = x[r * s + c0 + c];                                                      \
        fcd_dif_##SUF(y, N0, n, sy, tw, mid);                                                                \
        if (mid == 4)                                                                                        \
            for (r = 0; r < N0; r += 4) {                                                                    \
                double *y0 = y + r * sy;                                                                     \
                const double *k0 = k + r * ks + c0;                                                          \
                c = MID4V(y0, y0 + sy, y0 + 2 * sy, y0 + 3 * sy, k0, k0 + ks, k0 + 2 * ks, k0 + 3 * ks, n);  \
                fcd_mid4_scalar(y0, y0 + sy, y0 + 2 * sy, y0 + 3 * sy, k0, k0 + ks, k0 + 2 * ks, k0 + 3 * ks, \
                                c, n);                                                                       \
            }                                                                                                \
        else if (mid == 2)                                                                                   \
            for (r = 0; r < N0; r += 2) {                                                                    \
                double *y0 = y + r * sy;                                                                     \
                const double *k0 = k + r * ks + c0;                                                          \
                c = MID2V(y0, y0 + sy, k0, k0 + ks, n);                                                      \
                fcd_mid2_scalar(y0, y0 + sy, k0, k0 + ks, c, n);                                             \
            }                                                                                                \
        else                                                                                                 \
            for (r = 0; r < N0; r++) {                                                                       \
                double *yr = y + r * sy;                                                                     \
                const double *kr = k + r * ks + c0;                                                          \
                c = CMULV(yr, kr, n);                                                                        \
                fcd_cmul_scalar(yr, kr, c, n);                                                               \
            }                                                                                                \
        fcd_dit_##SUF(y, N0, n, sy, tw, mid);                                                                \
        if (buf)                                                                                             \
            for (r = 0; r < N0; r++)                                                                         \
                for (c = 0; c < n; c++)                                                                      \
                    x[r * s + c0 + c] = buf[r * n + c];                                                      \
    }                                                                                                        \
}

#define FCD_NOVEC4(r0, r1, r2, r3, nf, a0, b0, a1, b1, a2, b2) 0
#define FCD_NOVEC2(u, v, nf) 0
#define FCD_NOVEC3(r0, r1, r2, nf, w, inv) 0
#define FCD_NOVEC5(r0, r1, r2, r3, r4, nf, w, inv) 0
#define FCD_NOVECM4(r0, r1, r2, r3, k0, k1, k2, k3, nf) 0
#define FCD_NOVECM2(r0, r1, k0, k1, nf) 0
FCD_DEFINE(base, , FCD_NOVEC4, FCD_NOVEC4, FCD_NOVEC2, FCD_NOVEC2, FCD_NOVEC3, FCD_NOVEC5, FCD_NOVECM4, FCD_NOVECM2, 0,
           fcd_none16, fcd_none16, fcd_none_odd2, 0)
#if FC_X86_DISPATCH
FCD_DEFINE(avx2, FC_TARGET_AVX2, fcd_dif4_avx2, fcd_dit4_avx2, fcd_pair_avx2, fcd_cmul_avx2, fcd_r3_avx2,
           fcd_r5_avx2, fcd_mid4_avx2, fcd_mid2_avx2, fcd_fuse16 == 1, fcd_dif16_avx2, fcd_dit16_avx2, fcd_none_odd2, 0)

/* AVX-512 copies of the other passes (eight doubles a step, the AVX2 loop
 * for a remaining half vector, the scalar one for the rest), used with the
 * fused sweeps when fcd_fuse16 is 2 and the CPU has AVX-512. */
#define FCD_CMZ(D, A, B) _mm512_fmaddsub_pd(D, A, _mm512_mul_pd(_mm512_permute_pd(D, 0x55), B))
#define FCD_VMZ(X, K) _mm512_fmaddsub_pd(X, _mm512_movedup_pd(K), \
                                         _mm512_mul_pd(_mm512_permute_pd(X, 0x55), _mm512_permute_pd(K, 0xFF)))

FCD_TARGET_AVX512 static ptrdiff_t fcd_dif4_avx512(double *r0, double *r1, double *r2, double *r3, ptrdiff_t nf,
                                                   double a0, double b0, double a1, double b1, double a2, double b2)
{
    const __m512d A0 = _mm512_set1_pd(a0), B0 = _mm512_set1_pd(b0), A1 = _mm512_set1_pd(a1);
    const __m512d B1 = _mm512_set1_pd(b1), A2 = _mm512_set1_pd(a2), B2 = _mm512_set1_pd(b2);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c), X1 = _mm512_loadu_pd(r1 + c);
        const __m512d X2 = _mm512_loadu_pd(r2 + c), X3 = _mm512_loadu_pd(r3 + c);
        const __m512d S0 = _mm512_add_pd(X0, X2), S1 = _mm512_add_pd(X1, X3);
        const __m512d D0 = FCD_CMZ(_mm512_sub_pd(X0, X2), A0, B0), D1 = FCD_CMZ(_mm512_sub_pd(X1, X3), A1, B1);
        const __m512d E0 = _mm512_sub_pd(S0, S1), E1 = _mm512_sub_pd(D0, D1);
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(S0, S1));
        _mm512_storeu_pd(r1 + c, FCD_CMZ(E0, A2, B2));
        _mm512_storeu_pd(r2 + c, _mm512_add_pd(D0, D1));
        _mm512_storeu_pd(r3 + c, FCD_CMZ(E1, A2, B2));
    }
    return c + fcd_dif4_avx2(r0 + c, r1 + c, r2 + c, r3 + c, nf - c, a0, b0, a1, b1, a2, b2);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_dit4_avx512(double *r0, double *r1, double *r2, double *r3, ptrdiff_t nf,
                                                   double a0, double b0, double a1, double b1, double a2, double b2)
{
    const __m512d A0 = _mm512_set1_pd(a0), B0 = _mm512_set1_pd(b0), A1 = _mm512_set1_pd(a1);
    const __m512d B1 = _mm512_set1_pd(b1), A2 = _mm512_set1_pd(a2), B2 = _mm512_set1_pd(b2);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c), X1 = _mm512_loadu_pd(r1 + c);
        const __m512d X2 = _mm512_loadu_pd(r2 + c), X3 = _mm512_loadu_pd(r3 + c);
        const __m512d W1 = FCD_CMZ(X1, A2, B2), W3 = FCD_CMZ(X3, A2, B2);
        const __m512d Y0 = _mm512_add_pd(X0, W1), Y1 = _mm512_sub_pd(X0, W1);
        const __m512d Y2 = _mm512_add_pd(X2, W3), Y3 = _mm512_sub_pd(X2, W3);
        const __m512d V2 = FCD_CMZ(Y2, A0, B0), V3 = FCD_CMZ(Y3, A1, B1);
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(Y0, V2));
        _mm512_storeu_pd(r2 + c, _mm512_sub_pd(Y0, V2));
        _mm512_storeu_pd(r1 + c, _mm512_add_pd(Y1, V3));
        _mm512_storeu_pd(r3 + c, _mm512_sub_pd(Y1, V3));
    }
    return c + fcd_dit4_avx2(r0 + c, r1 + c, r2 + c, r3 + c, nf - c, a0, b0, a1, b1, a2, b2);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_pair_avx512(double *u, double *v, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d U = _mm512_loadu_pd(u + c), V = _mm512_loadu_pd(v + c);
        _mm512_storeu_pd(u + c, _mm512_add_pd(U, V));
        _mm512_storeu_pd(v + c, _mm512_sub_pd(U, V));
    }
    return c + fcd_pair_avx2(u + c, v + c, nf - c);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_cmul_avx512(double *x, const double *k, ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8)
        _mm512_storeu_pd(x + c, FCD_VMZ(_mm512_loadu_pd(x + c), _mm512_loadu_pd(k + c)));
    return c + fcd_cmul_avx2(x + c, k + c, nf - c);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_r3_avx512(double *r0, double *r1, double *r2, ptrdiff_t nf, const double *w,
                                                 int inverse)
{
    const double sg = inverse ? -1.0 : 1.0;
    const __m512d A1 = _mm512_set1_pd(w[0]), B1 = _mm512_set1_pd(sg * w[1]);
    const __m512d A2 = _mm512_set1_pd(w[2]), B2 = _mm512_set1_pd(sg * w[3]);
    const __m512d H = _mm512_set1_pd(0.5);
    const double p = sg * FCD_S3, m = -sg * FCD_S3;
    const __m512d SM = _mm512_setr_pd(p, m, p, m, p, m, p, m);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c);
        __m512d X1 = _mm512_loadu_pd(r1 + c), X2 = _mm512_loadu_pd(r2 + c);
        if (inverse) {
            X1 = FCD_CMZ(X1, A1, B1);
            X2 = FCD_CMZ(X2, A2, B2);
        }
        const __m512d S = _mm512_add_pd(X1, X2), D = _mm512_sub_pd(X1, X2);
        const __m512d T = _mm512_fnmadd_pd(H, S, X0);
        const __m512d M = _mm512_mul_pd(_mm512_permute_pd(D, 0x55), SM);
        const __m512d Y1 = _mm512_add_pd(T, M), Y2 = _mm512_sub_pd(T, M);
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(X0, S));
        if (inverse) {
            _mm512_storeu_pd(r1 + c, Y1);
            _mm512_storeu_pd(r2 + c, Y2);
        } else {
            _mm512_storeu_pd(r1 + c, FCD_CMZ(Y1, A1, B1));
            _mm512_storeu_pd(r2 + c, FCD_CMZ(Y2, A2, B2));
        }
    }
    return c + fcd_r3_avx2(r0 + c, r1 + c, r2 + c, nf - c, w, inverse);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_r5_avx512(double *r0, double *r1, double *r2, double *r3, double *r4,
                                                 ptrdiff_t nf, const double *w, int inverse)
{
    const double sg = inverse ? -1.0 : 1.0;
    const __m512d A1 = _mm512_set1_pd(w[0]), B1 = _mm512_set1_pd(sg * w[1]);
    const __m512d A2 = _mm512_set1_pd(w[2]), B2 = _mm512_set1_pd(sg * w[3]);
    const __m512d A3 = _mm512_set1_pd(w[4]), B3 = _mm512_set1_pd(sg * w[5]);
    const __m512d A4 = _mm512_set1_pd(w[6]), B4 = _mm512_set1_pd(sg * w[7]);
    const __m512d C1 = _mm512_set1_pd(FCD_C51), C2 = _mm512_set1_pd(FCD_C52);
    const double p1 = sg * FCD_S51, m1 = -sg * FCD_S51, p2 = sg * FCD_S52, m2 = -sg * FCD_S52;
    const __m512d SP1 = _mm512_setr_pd(p1, m1, p1, m1, p1, m1, p1, m1);
    const __m512d SP2 = _mm512_setr_pd(p2, m2, p2, m2, p2, m2, p2, m2);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c);
        __m512d X1 = _mm512_loadu_pd(r1 + c), X2 = _mm512_loadu_pd(r2 + c);
        __m512d X3 = _mm512_loadu_pd(r3 + c), X4 = _mm512_loadu_pd(r4 + c);
        if (inverse) {
            X1 = FCD_CMZ(X1, A1, B1);
            X2 = FCD_CMZ(X2, A2, B2);
            X3 = FCD_CMZ(X3, A3, B3);
            X4 = FCD_CMZ(X4, A4, B4);
        }
        const __m512d Q1 = _mm512_add_pd(X1, X4), D1 = _mm512_sub_pd(X1, X4);
        const __m512d Q2 = _mm512_add_pd(X2, X3), D2 = _mm512_sub_pd(X2, X3);
        const __m512d T1 = _mm512_fmadd_pd(C2, Q2, _mm512_fmadd_pd(C1, Q1, X0));
        const __m512d T2 = _mm512_fmadd_pd(C1, Q2, _mm512_fmadd_pd(C2, Q1, X0));
        const __m512d P1 = _mm512_permute_pd(D1, 0x55), P2 = _mm512_permute_pd(D2, 0x55);
        const __m512d M1 = _mm512_fmadd_pd(P1, SP1, _mm512_mul_pd(P2, SP2));
        const __m512d M2 = _mm512_fmsub_pd(P1, SP2, _mm512_mul_pd(P2, SP1));
        const __m512d Y1 = _mm512_add_pd(T1, M1), Y4 = _mm512_sub_pd(T1, M1);
        const __m512d Y2 = _mm512_add_pd(T2, M2), Y3 = _mm512_sub_pd(T2, M2);
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(X0, _mm512_add_pd(Q1, Q2)));
        if (inverse) {
            _mm512_storeu_pd(r1 + c, Y1);
            _mm512_storeu_pd(r2 + c, Y2);
            _mm512_storeu_pd(r3 + c, Y3);
            _mm512_storeu_pd(r4 + c, Y4);
        } else {
            _mm512_storeu_pd(r1 + c, FCD_CMZ(Y1, A1, B1));
            _mm512_storeu_pd(r2 + c, FCD_CMZ(Y2, A2, B2));
            _mm512_storeu_pd(r3 + c, FCD_CMZ(Y3, A3, B3));
            _mm512_storeu_pd(r4 + c, FCD_CMZ(Y4, A4, B4));
        }
    }
    return c + fcd_r5_avx2(r0 + c, r1 + c, r2 + c, r3 + c, r4 + c, nf - c, w, inverse);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_mid4_avx512(double *r0, double *r1, double *r2, double *r3, const double *k0,
                                                   const double *k1, const double *k2, const double *k3, ptrdiff_t nf)
{
    const __m512d MI = _mm512_setr_pd(1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0);
    const __m512d PI = _mm512_setr_pd(-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0);
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c), X1 = _mm512_loadu_pd(r1 + c);
        const __m512d X2 = _mm512_loadu_pd(r2 + c), X3 = _mm512_loadu_pd(r3 + c);
        const __m512d S0 = _mm512_add_pd(X0, X2), S1 = _mm512_add_pd(X1, X3);
        const __m512d D0 = _mm512_sub_pd(X0, X2);
        const __m512d D1 = _mm512_mul_pd(_mm512_permute_pd(_mm512_sub_pd(X1, X3), 0x55), MI);
        const __m512d Z0 = FCD_VMZ(_mm512_add_pd(S0, S1), _mm512_loadu_pd(k0 + c));
        const __m512d Z1 = FCD_VMZ(_mm512_sub_pd(S0, S1), _mm512_loadu_pd(k1 + c));
        const __m512d Z2 = FCD_VMZ(_mm512_add_pd(D0, D1), _mm512_loadu_pd(k2 + c));
        const __m512d Z3 = FCD_VMZ(_mm512_sub_pd(D0, D1), _mm512_loadu_pd(k3 + c));
        const __m512d Y0 = _mm512_add_pd(Z0, Z1), Y1 = _mm512_sub_pd(Z0, Z1);
        const __m512d V2 = _mm512_add_pd(Z2, Z3);
        const __m512d V3 = _mm512_mul_pd(_mm512_permute_pd(_mm512_sub_pd(Z2, Z3), 0x55), PI);
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(Y0, V2));
        _mm512_storeu_pd(r2 + c, _mm512_sub_pd(Y0, V2));
        _mm512_storeu_pd(r1 + c, _mm512_add_pd(Y1, V3));
        _mm512_storeu_pd(r3 + c, _mm512_sub_pd(Y1, V3));
    }
    return c + fcd_mid4_avx2(r0 + c, r1 + c, r2 + c, r3 + c, k0 + c, k1 + c, k2 + c, k3 + c, nf - c);
}

FCD_TARGET_AVX512 static ptrdiff_t fcd_mid2_avx512(double *r0, double *r1, const double *k0, const double *k1,
                                                   ptrdiff_t nf)
{
    ptrdiff_t c;
    for (c = 0; c + 8 <= nf; c += 8) {
        const __m512d X0 = _mm512_loadu_pd(r0 + c), X1 = _mm512_loadu_pd(r1 + c);
        const __m512d Z0 = FCD_VMZ(_mm512_add_pd(X0, X1), _mm512_loadu_pd(k0 + c));
        const __m512d Z1 = FCD_VMZ(_mm512_sub_pd(X0, X1), _mm512_loadu_pd(k1 + c));
        _mm512_storeu_pd(r0 + c, _mm512_add_pd(Z0, Z1));
        _mm512_storeu_pd(r1 + c, _mm512_sub_pd(Z0, Z1));
    }
    return c + fcd_mid2_avx2(r0 + c, r1 + c, k0 + c, k1 + c, nf - c);
}


/* Two radix-3 / radix-5 passes in one sweep (AVX-512): the forward's
 * passes of lengths L (radix R1) and L / R1 (radix R2), or the inverse's of
 * lengths L (R1) and R2 L, on the R1 R2 rows they share, as the
 * power-of-two part's fused radix-16 sweeps. The same butterflies as
 * fcd_r3_avx512 / fcd_r5_avx512 one pass after the other. Used for radix
 * 3 x 3 and 5 x 3 (column stage alone, one thread, alternated: 288, 576,
 * 720 and 960 rows 1.06-1.11x faster than the passes one at a time); two
 * radix-5 passes (25 rows) ran 0.76-0.85x as fast (register spills), so
 * they stay apart. */
#define FCD_R3Z(X0, X1, X2, w, inv)                                                                         \
    do {                                                                                                     \
        __m512d x1_ = X1, x2_ = X2;                                                                          \
        const __m512d A1_ = _mm512_set1_pd((w)[0]), B1_ = _mm512_set1_pd((w)[1]);                            \
        const __m512d A2_ = _mm512_set1_pd((w)[2]), B2_ = _mm512_set1_pd((w)[3]);                            \
        if (inv) {                                                                                           \
            x1_ = FCD_CMZ(x1_, A1_, B1_);                                                                    \
            x2_ = FCD_CMZ(x2_, A2_, B2_);                                                                    \
        }                                                                                                    \
        const __m512d S_ = _mm512_add_pd(x1_, x2_), D_ = _mm512_sub_pd(x1_, x2_);                            \
        const __m512d T_ = _mm512_fnmadd_pd(H3, S_, X0);                                                     \
        const __m512d M_ = _mm512_mul_pd(_mm512_permute_pd(D_, 0x55), SM3);                                  \
        const __m512d Y1_ = _mm512_add_pd(T_, M_), Y2_ = _mm512_sub_pd(T_, M_);                              \
        X0 = _mm512_add_pd(X0, S_);                                                                          \
        if (inv) {                                                                                           \
            X1 = Y1_;                                                                                        \
            X2 = Y2_;                                                                                        \
        } else {                                                                                             \
            X1 = FCD_CMZ(Y1_, A1_, B1_);                                                                     \
            X2 = FCD_CMZ(Y2_, A2_, B2_);                                                                     \
        }                                                                                                    \
    } while (0)
#define FCD_R5Z(X0, X1, X2, X3, X4, w, inv)                                                                 \
    do {                                                                                                     \
        __m512d x1_ = X1, x2_ = X2, x3_ = X3, x4_ = X4;                                                      \
        const __m512d A1_ = _mm512_set1_pd((w)[0]), B1_ = _mm512_set1_pd((w)[1]);                            \
        const __m512d A2_ = _mm512_set1_pd((w)[2]), B2_ = _mm512_set1_pd((w)[3]);                            \
        const __m512d A3_ = _mm512_set1_pd((w)[4]), B3_ = _mm512_set1_pd((w)[5]);                            \
        const __m512d A4_ = _mm512_set1_pd((w)[6]), B4_ = _mm512_set1_pd((w)[7]);                            \
        if (inv) {                                                                                           \
            x1_ = FCD_CMZ(x1_, A1_, B1_);                                                                    \
            x2_ = FCD_CMZ(x2_, A2_, B2_);                                                                    \
            x3_ = FCD_CMZ(x3_, A3_, B3_);                                                                    \
            x4_ = FCD_CMZ(x4_, A4_, B4_);                                                                    \
        }                                                                                                    \
        const __m512d Q1_ = _mm512_add_pd(x1_, x4_), D1_ = _mm512_sub_pd(x1_, x4_);                          \
        const __m512d Q2_ = _mm512_add_pd(x2_, x3_), D2_ = _mm512_sub_pd(x2_, x3_);                          \
        const __m512d T1_ = _mm512_fmadd_pd(C52, Q2_, _mm512_fmadd_pd(C51, Q1_, X0));                        \
        const __m512d T2_ = _mm512_fmadd_pd(C51, Q2_, _mm512_fmadd_pd(C52, Q1_, X0));                        \
        const __m512d P1_ = _mm512_permute_pd(D1_, 0x55), P2_ = _mm512_permute_pd(D2_, 0x55);                \
        const __m512d M1_ = _mm512_fmadd_pd(P1_, SP51, _mm512_mul_pd(P2_, SP52));                            \
        const __m512d M2_ = _mm512_fmsub_pd(P1_, SP52, _mm512_mul_pd(P2_, SP51));                            \
        const __m512d Y1_ = _mm512_add_pd(T1_, M1_), Y4_ = _mm512_sub_pd(T1_, M1_);                          \
        const __m512d Y2_ = _mm512_add_pd(T2_, M2_), Y3_ = _mm512_sub_pd(T2_, M2_);                          \
        X0 = _mm512_add_pd(X0, _mm512_add_pd(Q1_, Q2_));                                                     \
        if (inv) {                                                                                           \
            X1 = Y1_;                                                                                        \
            X2 = Y2_;                                                                                        \
            X3 = Y3_;                                                                                        \
            X4 = Y4_;                                                                                        \
        } else {                                                                                             \
            X1 = FCD_CMZ(Y1_, A1_, B1_);                                                                     \
            X2 = FCD_CMZ(Y2_, A2_, B2_);                                                                     \
            X3 = FCD_CMZ(Y3_, A3_, B3_);                                                                     \
            X4 = FCD_CMZ(Y4_, A4_, B4_);                                                                     \
        }                                                                                                    \
    } while (0)

/* one radix-R butterfly on X[i0 + k * d], k < R (R = 3 or 5) */
#define FCD_RZ(R, X, i0, d, w, inv)                                                                         \
    do {                                                                                                     \
        if ((R) == 3)                                                                                        \
            FCD_R3Z(X[i0], X[(i0) + (d)], X[(i0) + 2 * (d)], w, inv);                                        \
        else                                                                                                 \
            FCD_R5Z(X[i0], X[(i0) + (d)], X[(i0) + 2 * (d)], X[(i0) + 3 * (d)], X[(i0) + 4 * (d)], w, inv);  \
    } while (0)

/* the scalar butterflies of a fused group on columns c0..nf (the tail) */
static inline void fcd_odd2_tail(double *const *r, int R1, int R2, ptrdiff_t c0, ptrdiff_t nf, const double *t1,
                                 const double *t2, int inverse)
{
    int a, n;
    if (c0 >= nf)
        return;
    if (!inverse) {
        /* rows r[n R2 + a]: pass 1 (radix R1) per a, pass 2 (radix R2) per n */
        for (a = 0; a < R2; a++) {
            double *const *q = r + a;
            if (R1 == 3)
                fcd_r3_scalar(q[0], q[R2], q[2 * R2], c0, nf, t1 + 8 * a, 0);
            else
                fcd_r5_scalar(q[0], q[R2], q[2 * R2], q[3 * R2], q[4 * R2], c0, nf, t1 + 8 * a, 0);
        }
        for (n = 0; n < R1; n++) {
            double *const *q = r + n * R2;
            if (R2 == 3)
                fcd_r3_scalar(q[0], q[1], q[2], c0, nf, t2, 0);
            else
                fcd_r5_scalar(q[0], q[1], q[2], q[3], q[4], c0, nf, t2, 0);
        }
    } else {
        /* rows r[m R1 + t]: pass 1 (radix R1) per m, pass 2 (radix R2) per t */
        for (n = 0; n < R2; n++) {
            double *const *q = r + n * R1;
            if (R1 == 3)
                fcd_r3_scalar(q[0], q[1], q[2], c0, nf, t1, 1);
            else
                fcd_r5_scalar(q[0], q[1], q[2], q[3], q[4], c0, nf, t1, 1);
        }
        for (a = 0; a < R1; a++) {
            double *const *q = r + a;
            if (R2 == 3)
                fcd_r3_scalar(q[0], q[R1], q[2 * R1], c0, nf, t2 + 8 * a, 1);
            else
                fcd_r5_scalar(q[0], q[R1], q[2 * R1], q[3 * R1], q[4 * R1], c0, nf, t2 + 8 * a, 1);
        }
    }
}

/* the vector loop of a fused group, R1 and R2 constants (see fcd_odd2_avx512);
 * t1v / t2v: the twiddles with the inverse's conjugation applied */
#define FCD_ODD2_LOOP(R1, R2)                                                                                \
    for (c = 0; c + 8 <= nf; c += 8) {                                                                       \
        __m512d X[(R1) * (R2)];                                                                              \
        int i_, a_;                                                                                          \
        for (i_ = 0; i_ < (R1) * (R2); i_++)                                                                 \
            X[i_] = _mm512_loadu_pd(r[i_] + c);                                                              \
        if (!inverse) {                                                                                      \
            for (a_ = 0; a_ < (R2); a_++)                                                                    \
                FCD_RZ(R1, X, a_, R2, t1v + 8 * a_, 0);                                                      \
            for (a_ = 0; a_ < (R1); a_++)                                                                    \
                FCD_RZ(R2, X, a_ * (R2), 1, t2v, 0);                                                         \
        } else {                                                                                             \
            for (a_ = 0; a_ < (R2); a_++)                                                                    \
                FCD_RZ(R1, X, a_ * (R1), 1, t1v, 1);                                                         \
            for (a_ = 0; a_ < (R1); a_++)                                                                    \
                FCD_RZ(R2, X, a_, R1, t2v + 8 * a_, 1);                                                      \
        }                                                                                                    \
        for (i_ = 0; i_ < (R1) * (R2); i_++)                                                                 \
            _mm512_storeu_pd(r[i_] + c, X[i_]);                                                              \
    }

/* Forward (inverse 0): the passes of lengths L (radix R1) and L / R1 (R2);
 * inverse: of lengths L (R1) and R2 L. */
FCD_TARGET_AVX512 static void fcd_odd2_avx512(double *x, ptrdiff_t N0, ptrdiff_t L, int R1, int R2, ptrdiff_t nf,
                                              ptrdiff_t s, const double *tw, int inverse)
{
    const double sg = inverse ? -1.0 : 1.0;
    const __m512d H3 = _mm512_set1_pd(0.5);
    const double p3 = sg * FCD_S3, m3 = -sg * FCD_S3;
    const __m512d SM3 = _mm512_setr_pd(p3, m3, p3, m3, p3, m3, p3, m3);
    const __m512d C51 = _mm512_set1_pd(FCD_C51), C52 = _mm512_set1_pd(FCD_C52);
    const double p1 = sg * FCD_S51, m1 = -sg * FCD_S51, p2 = sg * FCD_S52, m2 = -sg * FCD_S52;
    const __m512d SP51 = _mm512_setr_pd(p1, m1, p1, m1, p1, m1, p1, m1);
    const __m512d SP52 = _mm512_setr_pd(p2, m2, p2, m2, p2, m2, p2, m2);
    double t1[40] = {0}, t2[40] = {0}, t1v[40], t2v[40], *r[25];
    ptrdiff_t jp, b, c, ng, step, q1, qq = 0, st1, st2;
    int a, u, i;
    if (!inverse) {
        q1 = L / R1;           /* pass 1: groups j < q1, rows j + n q1 */
        qq = q1 / R2;          /* pass 2 (length q1): groups jp < qq, rows jp + a qq */
        st1 = N0 / L;
        st2 = N0 / q1;
        ng = qq;
        step = L;
    } else {
        q1 = L / R1;           /* pass 1 (length L): groups jp < q1, rows jp + t q1 */
        st1 = N0 / L;
        st2 = N0 / (L * R2);   /* pass 2 (length R2 L): groups j < L, rows j + m L */
        ng = q1;
        step = L * R2;
    }
    for (jp = 0; jp < ng; jp++) {
        if (!inverse) {
            for (a = 0; a < R2; a++)
                for (u = 1; u < R1; u++) {
                    const ptrdiff_t e = st1 * (jp + a * qq) * u;
                    t1[8 * a + 2 * u - 2] = tw[2 * e];
                    t1[8 * a + 2 * u - 1] = tw[2 * e + 1];
                }
            for (u = 1; u < R2; u++) {
                t2[2 * u - 2] = tw[2 * (st2 * jp * u)];
                t2[2 * u - 1] = tw[2 * (st2 * jp * u) + 1];
            }
        } else {
            for (u = 1; u < R1; u++) {
                t1[2 * u - 2] = tw[2 * (st1 * jp * u)];
                t1[2 * u - 1] = tw[2 * (st1 * jp * u) + 1];
            }
            for (a = 0; a < R1; a++)
                for (u = 1; u < R2; u++) {
                    const ptrdiff_t e = st2 * (jp + a * q1) * u;
                    t2[8 * a + 2 * u - 2] = tw[2 * e];
                    t2[8 * a + 2 * u - 1] = tw[2 * e + 1];
                }
        }
        for (i = 0; i < 40; i++) {
            t1v[i] = (i & 1) ? sg * t1[i] : t1[i];
            t2v[i] = (i & 1) ? sg * t2[i] : t2[i];
        }
        for (b = 0; b < N0; b += step) {
            if (!inverse)
                for (i = 0; i < R1 * R2; i++)
                    r[i] = x + (b + jp + (i % R2) * qq + (i / R2) * q1) * s;
            else
                for (i = 0; i < R1 * R2; i++)
                    r[i] = x + (b + jp + (i % R1) * q1 + (i / R1) * L) * s;
            if (R1 == 5 && R2 == 5) {
                FCD_ODD2_LOOP(5, 5)
            } else if (R1 == 5) {
                FCD_ODD2_LOOP(5, 3)
            } else if (R2 == 5) {
                FCD_ODD2_LOOP(3, 5)
            } else {
                FCD_ODD2_LOOP(3, 3)
            }
            fcd_odd2_tail(r, R1, R2, c, nf, t1, t2, inverse);
        }
    }
}

FCD_DEFINE(avx512, FCD_TARGET_AVX512, fcd_dif4_avx512, fcd_dit4_avx512, fcd_pair_avx512, fcd_cmul_avx512,
           fcd_r3_avx512, fcd_r5_avx512, fcd_mid4_avx512, fcd_mid2_avx512, fcd_fuse16 >= 2, fcd_dif16_avx512,
           fcd_dit16_avx512, fcd_odd2_avx512, fcd_fuse16 == 2)

/* whether the AVX-512 copies run (fcd_fuse16 2 and the CPU has AVX-512) */
static inline int fcd_simd512(int portable)
{
    return !portable && fcd_fuse16 >= 2 && fcd_cpu_has_avx512();
}
#endif

static inline int fcd_simd(int portable)
{
#if FC_X86_DISPATCH
    return !portable && fc_cpu_has_avx2_fma();
#else
    (void)portable;
    return 0;
#endif
}

/* The forward transform on complex128 columns (``nf`` doubles a row, rows
 * ``s`` doubles apart; N0 = 2^a 3^b 5^c, ``tw`` its N0 complex twiddles
 * exp(-2 pi i k / N0) in double): natural order in, digit-reversed out
 * (for a power of two, bit-reversed, as fc_colfft_dif_f32). */
static void fc_colfft_dif_f64(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw, int portable)
{
#if FC_X86_DISPATCH
    if (fcd_simd512(portable)) {
        fcd_dif_avx512(x, N0, nf, s, tw, 0);
        return;
    }
    if (fcd_simd(portable)) {
        fcd_dif_avx2(x, N0, nf, s, tw, 0);
        return;
    }
#endif
    (void)portable;
    fcd_dif_base(x, N0, nf, s, tw, 0);
}

/* The inverse (unnormalised, digit-reversed order in, natural out). */
static void fc_colfft_dit_f64(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw, int portable)
{
#if FC_X86_DISPATCH
    if (fcd_simd512(portable)) {
        fcd_dit_avx512(x, N0, nf, s, tw, 0);
        return;
    }
    if (fcd_simd(portable)) {
        fcd_dit_avx2(x, N0, nf, s, tw, 0);
        return;
    }
#endif
    (void)portable;
    fcd_dit_base(x, N0, nf, s, tw, 0);
}

/* The columns of one tile correlated with a kernel, in place: per block of
 * ``blk`` doubles (even) of the columns 0..nf, the forward transform, the
 * product with ``k`` (rows ``ks`` doubles apart, the kernel's column
 * spectrum with its rows in the forward transform's order and 1 / N0
 * folded in) and the inverse transform, so that x holds the circular
 * correlation's columns in natural order. ``buf``: NULL (the blocks
 * transformed where they are), or N0 * blk doubles into which each block
 * is copied first (its rows then contiguous). ``fuse``: when N0 is even,
 * the forward's last pass, the product and the inverse's first pass as
 * one (fcd_mid4 / fcd_mid2). */
static void fc_colcorr_f64(double *x, ptrdiff_t N0, ptrdiff_t nf, ptrdiff_t s, const double *tw,
                           const double *k, ptrdiff_t ks, ptrdiff_t blk, double *buf, int fuse, int portable)
{
    if (blk < 2 || blk > nf)
        blk = nf + (nf & 1);
    blk += blk & 1;
#if FC_X86_DISPATCH
    if (fcd_simd512(portable)) {
        fcd_corr_avx512(x, N0, nf, s, tw, k, ks, blk, buf, fuse);
        return;
    }
    if (fcd_simd(portable)) {
        fcd_corr_avx2(x, N0, nf, s, tw, k, ks, blk, buf, fuse);
        return;
    }
#endif
    (void)portable;
    fcd_corr_base(x, N0, nf, s, tw, k, ks, blk, buf, fuse);
}

#endif
