/*
 * fastcorr: the inner loop of the N-D direct method (fastcorr.correlate), plain C.
 *
 *   fn_row: out[t] (+)= sum_s sum_{k < len[s]} w[woff[s] + k] * x[xoff[s] + t + k],  t < n
 *
 * An N-D correlation is a sum of 1-D correlations of rows: one *segment* s
 * per kernel row (the kernel's last axis), whose input row starts at
 * ``x + xoff[s]``. A 1-D signal is one segment; a long 1-D kernel (a window
 * of lags) is cut into several. The loop works on register blocks of output
 * samples: a block's accumulators stay in registers while every tap of every
 * segment streams over them (one broadcast and one load per fused
 * multiply-add and vector), so the output is written once per call.
 *
 * The default build is baseline x86-64; on x86 with GCC/Clang an AVX2+FMA
 * copy is compiled with a target attribute and chosen at run time (never
 * -march=native). uint64 (exact modular integers) has the plain loop only.
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_ND_KERNELS_H
#define FASTCORR_ND_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2, immintrin.h and fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#define FN_NB 16  /* outputs per block of the plain loop */

#define FN_DEFINE_BASE(SUFFIX, T)                                               \
static void fn_row_##SUFFIX##_base(T *out, const T *x, const T *w,              \
                                   const ptrdiff_t *xoff, const ptrdiff_t *woff,\
                                   const ptrdiff_t *len, ptrdiff_t nseg,        \
                                   ptrdiff_t n, int accumulate)                 \
{                                                                               \
    ptrdiff_t t = 0, s, k, i;                                                   \
    for (; t + FN_NB <= n; t += FN_NB) {                                        \
        T acc[FN_NB];                                                           \
        for (i = 0; i < FN_NB; i++) acc[i] = accumulate ? out[t + i] : (T)0;    \
        for (s = 0; s < nseg; s++) {                                            \
            const T *p = x + xoff[s] + t;                                       \
            const T *v = w + woff[s];                                           \
            for (k = 0; k < len[s]; k++) {                                      \
                const T c = v[k];                                               \
                for (i = 0; i < FN_NB; i++) acc[i] += c * p[k + i];             \
            }                                                                   \
        }                                                                       \
        for (i = 0; i < FN_NB; i++) out[t + i] = acc[i];                        \
    }                                                                           \
    for (; t < n; t++) {                                                        \
        T a = accumulate ? out[t] : (T)0;                                       \
        for (s = 0; s < nseg; s++) {                                            \
            const T *p = x + xoff[s] + t;                                       \
            const T *v = w + woff[s];                                           \
            for (k = 0; k < len[s]; k++) a += v[k] * p[k];                      \
        }                                                                       \
        out[t] = a;                                                             \
    }                                                                           \
}

FN_DEFINE_BASE(f32, float)
FN_DEFINE_BASE(f64, double)
FN_DEFINE_BASE(u64, uint64_t)

#if defined(__GNUC__) && !defined(__clang__)
#define FN_UNROLL _Pragma("GCC unroll 4")
#else
#define FN_UNROLL
#endif

#if FC_X86_DISPATCH
/* Blocks of NV vectors (8: 64 float32 / 32 float64 outputs), then single
 * vectors, then the plain loop for the last few samples. */
#define FN_DEFINE_AVX2(SUFFIX, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO)   \
FC_TARGET_AVX2 static void fn_row_##SUFFIX##_avx2(                              \
        T *out, const T *x, const T *w, const ptrdiff_t *xoff,                  \
        const ptrdiff_t *woff, const ptrdiff_t *len, ptrdiff_t nseg,            \
        ptrdiff_t n, int accumulate)                                            \
{                                                                               \
    ptrdiff_t t = 0, s, k;                                                      \
    if (nseg == 1 && len[0] >= 16 * LANES && n >= 12 * LANES) {                 \
        t = fn_long_##SUFFIX##_avx2(out, x + xoff[0], w + woff[0], len[0], n,   \
                                    accumulate);                                \
        if (t == n) return;                                                     \
        x += t; out += t; n -= t; t = 0;                                        \
    }                                                                           \
    for (; t + 8 * LANES <= n; t += 8 * LANES) {                                \
        VT a0, a1, a2, a3, a4, a5, a6, a7;                                      \
        if (accumulate) {                                                       \
            a0 = LOADU(out + t);             a1 = LOADU(out + t + LANES);       \
            a2 = LOADU(out + t + 2 * LANES); a3 = LOADU(out + t + 3 * LANES);   \
            a4 = LOADU(out + t + 4 * LANES); a5 = LOADU(out + t + 5 * LANES);   \
            a6 = LOADU(out + t + 6 * LANES); a7 = LOADU(out + t + 7 * LANES);   \
        } else {                                                                \
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = ZERO();                     \
        }                                                                       \
        for (s = 0; s < nseg; s++) {                                            \
            const T *p = x + xoff[s] + t;                                       \
            const T *v = w + woff[s];                                           \
            const ptrdiff_t L = len[s];                                         \
            FN_UNROLL                                                           \
            for (k = 0; k < L; k++) {                                           \
                const VT c = BCAST(v + k);                                      \
                const T *q = p + k;                                             \
                a0 = FMA(c, LOADU(q), a0);                                      \
                a1 = FMA(c, LOADU(q + LANES), a1);                              \
                a2 = FMA(c, LOADU(q + 2 * LANES), a2);                          \
                a3 = FMA(c, LOADU(q + 3 * LANES), a3);                          \
                a4 = FMA(c, LOADU(q + 4 * LANES), a4);                          \
                a5 = FMA(c, LOADU(q + 5 * LANES), a5);                          \
                a6 = FMA(c, LOADU(q + 6 * LANES), a6);                          \
                a7 = FMA(c, LOADU(q + 7 * LANES), a7);                          \
            }                                                                   \
        }                                                                       \
        STOREU(out + t, a0);             STOREU(out + t + LANES, a1);           \
        STOREU(out + t + 2 * LANES, a2); STOREU(out + t + 3 * LANES, a3);       \
        STOREU(out + t + 4 * LANES, a4); STOREU(out + t + 5 * LANES, a5);       \
        STOREU(out + t + 6 * LANES, a6); STOREU(out + t + 7 * LANES, a7);       \
    }                                                                           \
    if (nseg == 1 && len[0] >= 64) {                                            \
        /* a few outputs left of one long segment (the tail of a window of  */ \
        /* lags): two vectors, their taps in four interleaved phases, so   */ \
        /* that eight sums are in flight rather than two                    */ \
        const T *v = w + woff[0];                                               \
        const ptrdiff_t L = len[0];                                             \
        for (; t + 2 * LANES <= n; t += 2 * LANES) {                            \
            const T *p = x + xoff[0] + t;                                       \
            VT b0 = ZERO(), b1 = ZERO(), b2 = ZERO(), b3 = ZERO();              \
            VT e0 = ZERO(), e1 = ZERO(), e2 = ZERO(), e3 = ZERO();              \
            for (k = 0; k + 4 <= L; k += 4) {                                   \
                const VT c0 = BCAST(v + k), c1 = BCAST(v + k + 1);              \
                const VT c2 = BCAST(v + k + 2), c3 = BCAST(v + k + 3);          \
                b0 = FMA(c0, LOADU(p + k), b0);                                 \
                e0 = FMA(c0, LOADU(p + k + LANES), e0);                         \
                b1 = FMA(c1, LOADU(p + k + 1), b1);                             \
                e1 = FMA(c1, LOADU(p + k + 1 + LANES), e1);                     \
                b2 = FMA(c2, LOADU(p + k + 2), b2);                             \
                e2 = FMA(c2, LOADU(p + k + 2 + LANES), e2);                     \
                b3 = FMA(c3, LOADU(p + k + 3), b3);                             \
                e3 = FMA(c3, LOADU(p + k + 3 + LANES), e3);                     \
            }                                                                   \
            for (; k < L; k++) {                                                \
                const VT c0 = BCAST(v + k);                                     \
                b0 = FMA(c0, LOADU(p + k), b0);                                 \
                e0 = FMA(c0, LOADU(p + k + LANES), e0);                         \
            }                                                                   \
            b0 = (b0 + b1) + (b2 + b3);                                         \
            e0 = (e0 + e1) + (e2 + e3);                                         \
            if (accumulate) { b0 = b0 + LOADU(out + t); e0 = e0 + LOADU(out + t + LANES); } \
            STOREU(out + t, b0);                                                \
            STOREU(out + t + LANES, e0);                                        \
        }                                                                       \
    }                                                                           \
    for (; t + LANES <= n; t += LANES) {                                        \
        VT a0 = accumulate ? LOADU(out + t) : ZERO();                           \
        VT a1 = ZERO();                                                         \
        for (s = 0; s < nseg; s++) {                                            \
            const T *p = x + xoff[s] + t;                                       \
            const T *v = w + woff[s];                                           \
            const ptrdiff_t L = len[s];                                         \
            for (k = 0; k + 2 <= L; k += 2) {                                   \
                a0 = FMA(BCAST(v + k), LOADU(p + k), a0);                       \
                a1 = FMA(BCAST(v + k + 1), LOADU(p + k + 1), a1);               \
            }                                                                   \
            if (k < L) a0 = FMA(BCAST(v + k), LOADU(p + k), a0);                \
        }                                                                       \
        STOREU(out + t, a0 + a1);                                               \
    }                                                                           \
    if (t < n) {                                                                \
        ptrdiff_t xo[1], wo[1], ln[1];                                          \
        for (s = 0; s < nseg; s++) {                                            \
            xo[0] = xoff[s] + t; wo[0] = woff[s]; ln[0] = len[s];               \
            fn_row_##SUFFIX##_base(out + t, x, w, xo, wo, ln, 1, n - t,         \
                                   accumulate || s > 0);                        \
        }                                                                       \
    }                                                                           \
}

/* One long segment (a 1-D kernel of many taps): blocks of 3 x 4 vectors of
 * outputs, the three groups of 4 vectors S = 4 * LANES outputs apart. Group
 * d at tap k - d*S reads the same input vectors as group 0 at tap k, so
 * each input vector loaded feeds three fused multiply-adds: 4 loads and 3
 * broadcasts per 12 (against 9 per 8 in the plain block). Returns the
 * outputs done (a multiple of 3 * S). Needs L >= 2 * S. */
#define FN_DEFINE_LONG_AVX2(SUFFIX, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO, ADD) \
FC_TARGET_AVX2 static ptrdiff_t fn_long_##SUFFIX##_avx2(                         \
        T *out, const T *x, const T *w, ptrdiff_t L, ptrdiff_t n, int accumulate)\
{                                                                               \
    const ptrdiff_t S = 4 * LANES, BLK = 3 * S;                                 \
    ptrdiff_t t, k, d;                                                          \
    for (t = 0; t + BLK <= n; t += BLK) {                                       \
        VT a[3][4];                                                             \
        for (d = 0; d < 3; d++) {                                               \
            a[d][0] = ZERO(); a[d][1] = ZERO(); a[d][2] = ZERO(); a[d][3] = ZERO(); \
        }                                                                       \
        const T *p = x + t;                                                     \
        /* head: taps k < 2S, group d active when k >= d*S */                    \
        for (k = 0; k < 2 * S; k++) {                                           \
            const VT x0 = LOADU(p + k), x1 = LOADU(p + k + LANES);              \
            const VT x2 = LOADU(p + k + 2 * LANES), x3 = LOADU(p + k + 3 * LANES); \
            for (d = 0; d < 3 && d * S <= k; d++) {                             \
                const VT c = BCAST(w + k - d * S);                              \
                a[d][0] = FMA(c, x0, a[d][0]); a[d][1] = FMA(c, x1, a[d][1]);   \
                a[d][2] = FMA(c, x2, a[d][2]); a[d][3] = FMA(c, x3, a[d][3]);   \
            }                                                                   \
        }                                                                       \
        VT a00 = a[0][0], a01 = a[0][1], a02 = a[0][2], a03 = a[0][3];          \
        VT a10 = a[1][0], a11 = a[1][1], a12 = a[1][2], a13 = a[1][3];          \
        VT a20 = a[2][0], a21 = a[2][1], a22 = a[2][2], a23 = a[2][3];          \
        for (k = 2 * S; k < L; k++) {                                           \
            const T *q = p + k;                                                 \
            const VT x0 = LOADU(q), x1 = LOADU(q + LANES);                      \
            const VT x2 = LOADU(q + 2 * LANES), x3 = LOADU(q + 3 * LANES);      \
            const VT c0 = BCAST(w + k), c1 = BCAST(w + k - S), c2 = BCAST(w + k - 2 * S); \
            a00 = FMA(c0, x0, a00); a01 = FMA(c0, x1, a01);                     \
            a02 = FMA(c0, x2, a02); a03 = FMA(c0, x3, a03);                     \
            a10 = FMA(c1, x0, a10); a11 = FMA(c1, x1, a11);                     \
            a12 = FMA(c1, x2, a12); a13 = FMA(c1, x3, a13);                     \
            a20 = FMA(c2, x0, a20); a21 = FMA(c2, x1, a21);                     \
            a22 = FMA(c2, x2, a22); a23 = FMA(c2, x3, a23);                     \
        }                                                                       \
        a[0][0] = a00; a[0][1] = a01; a[0][2] = a02; a[0][3] = a03;             \
        a[1][0] = a10; a[1][1] = a11; a[1][2] = a12; a[1][3] = a13;             \
        a[2][0] = a20; a[2][1] = a21; a[2][2] = a22; a[2][3] = a23;             \
        /* tail: taps k in [L, L + 2S), group d active when k - d*S < L */       \
        for (k = L; k < L + 2 * S; k++) {                                       \
            const VT x0 = LOADU(p + k), x1 = LOADU(p + k + LANES);              \
            const VT x2 = LOADU(p + k + 2 * LANES), x3 = LOADU(p + k + 3 * LANES); \
            for (d = 1; d < 3; d++) {                                           \
                if (k - d * S >= L) continue;                                   \
                const VT c = BCAST(w + k - d * S);                              \
                a[d][0] = FMA(c, x0, a[d][0]); a[d][1] = FMA(c, x1, a[d][1]);   \
                a[d][2] = FMA(c, x2, a[d][2]); a[d][3] = FMA(c, x3, a[d][3]);   \
            }                                                                   \
        }                                                                       \
        for (d = 0; d < 3; d++) {                                               \
            T *o = out + t + d * S;                                             \
            for (k = 0; k < 4; k++) {                                           \
                VT v = a[d][k];                                                 \
                if (accumulate) v = ADD(v, LOADU(o + k * LANES));               \
                STOREU(o + k * LANES, v);                                       \
            }                                                                   \
        }                                                                       \
    }                                                                           \
    return t;                                                                   \
}

FN_DEFINE_LONG_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
                    _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_add_ps)
FN_DEFINE_LONG_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
                    _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_setzero_pd, _mm256_add_pd)

FN_DEFINE_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
               _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_setzero_ps)
FN_DEFINE_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
               _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_setzero_pd)

#define FN_PICK(SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? fn_row_##SUFFIX##_avx2(__VA_ARGS__) : fn_row_##SUFFIX##_base(__VA_ARGS__))
#else
#define FN_PICK(SUFFIX, ...) fn_row_##SUFFIX##_base(__VA_ARGS__)
#endif

static void fn_row_f32(float *out, const float *x, const float *w, const ptrdiff_t *xoff,
                       const ptrdiff_t *woff, const ptrdiff_t *len, ptrdiff_t nseg,
                       ptrdiff_t n, int accumulate)
{ FN_PICK(f32, out, x, w, xoff, woff, len, nseg, n, accumulate); }
static void fn_row_f64(double *out, const double *x, const double *w, const ptrdiff_t *xoff,
                       const ptrdiff_t *woff, const ptrdiff_t *len, ptrdiff_t nseg,
                       ptrdiff_t n, int accumulate)
{ FN_PICK(f64, out, x, w, xoff, woff, len, nseg, n, accumulate); }
static void fn_row_u64(uint64_t *out, const uint64_t *x, const uint64_t *w, const ptrdiff_t *xoff,
                       const ptrdiff_t *woff, const ptrdiff_t *len, ptrdiff_t nseg,
                       ptrdiff_t n, int accumulate)
{ fn_row_u64_base(out, x, w, xoff, woff, len, nseg, n, accumulate); }

/* ------------------------------------------------------------------------
 * fn_rows3: three output rows at once, every input row loaded once.
 *
 *   acc[a][t] = init[a] + sum_c sum_j sum_k w[(c*kh + j)*kw + k] * in[c*(kh+2) + a + j][t + k]
 *
 * for a = 0, 1, 2 and t < n: an N-D 'valid' correlation of three adjacent
 * output rows, the kernel's leading axes flattened into nch "channels" (a
 * channel c reads its own kh + 2 input rows ``in[c*(kh+2) + i]``). Input
 * row i meets output row a through kernel row j = i - a: the loop walks the
 * input rows, loads each vector of row i once and feeds it to the (up to)
 * three output rows' accumulators, each with its own broadcast tap. A block
 * is 3 rows x 4 vectors (12 accumulators, 3 taps and 1 input vector: the
 * 16 AVX2 registers); per input vector and tap, 4 loads and 3 broadcasts
 * serve 12 fused multiply-adds (against 12 loads and 1 broadcast when every
 * output row reloads its inputs), so the loop runs at the rate of the FMA
 * units rather than that of the loads. Each output sums its taps in the
 * order (c, j, k), so a NaN or inf stays where scipy puts it.
 *
 * Returns the columns done: all of them on AVX2 (the last block overlaps
 * the one before when the columns do not divide into blocks; rows under one
 * vector go by masked loads), none without it (the caller then runs
 * fn_row on each output row).
 */
#if FC_X86_DISPATCH
#define FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, A0, A1, A2, KW)         \
    for (k = 0; k < (KW); k++) {                                                  \
        const VT c0 = (A0) ? BCAST(w0 + k) : ZERO();                            \
        const VT c1 = (A1) ? BCAST(w1 + k) : ZERO();                            \
        const VT c2 = (A2) ? BCAST(w2 + k) : ZERO();                            \
        VT x;                                                                   \
        x = LOADX(p + k);                                                       \
        if (A0) s00 = FMA(c0, x, s00);                                          \
        if (A1) s10 = FMA(c1, x, s10);                                          \
        if (A2) s20 = FMA(c2, x, s20);                                          \
        if ((NV) > 1) {                                                         \
            x = LOADX(p + k + LANES);                                           \
            if (A0) s01 = FMA(c0, x, s01);                                      \
            if (A1) s11 = FMA(c1, x, s11);                                      \
            if (A2) s21 = FMA(c2, x, s21);                                      \
            x = LOADX(p + k + 2 * LANES);                                       \
            if (A0) s02 = FMA(c0, x, s02);                                      \
            if (A1) s12 = FMA(c1, x, s12);                                      \
            if (A2) s22 = FMA(c2, x, s22);                                      \
            x = LOADX(p + k + 3 * LANES);                                       \
            if (A0) s03 = FMA(c0, x, s03);                                      \
            if (A1) s13 = FMA(c1, x, s13);                                      \
            if (A2) s23 = FMA(c2, x, s23);                                      \
        }                                                                       \
    }

/* The input row's share of the three output rows: lo..hi (of 0, 1, 2). */
#define FN3_CASES(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, KW)                   \
    switch (lo * 3 + hi) {                                                      \
    case 2: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 1, 1, 1, KW) break; \
    case 0: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 1, 0, 0, KW) break; \
    case 1: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 1, 1, 0, KW) break; \
    case 4: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 0, 1, 0, KW) break; \
    case 5: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 0, 1, 1, KW) break; \
    default: FN3_ROW(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 0, 0, 1, KW) break; \
    }

/* One block of 3 rows x NV vectors (NV = 4 or 1) at column i0. */
#define FN3_DEFINE_BLOCK(NAME, T, VT, LANES, LOADX, STORE, BCAST, FMA, ZERO, NV) \
FC_TARGET_AVX2 __attribute__((noinline)) static void NAME(                      \
    T *const *acc, const T *const *in, const T *w, ptrdiff_t nch,               \
    ptrdiff_t kh, ptrdiff_t kw, const T *init, ptrdiff_t i0, __m256i fc_mask)   \
{                                                                               \
    ptrdiff_t c, i, k;                                                          \
    const ptrdiff_t per = kh + 2;                                               \
    (void)fc_mask;                                                              \
    VT s00 = BCAST(init), s01 = s00, s02 = s00, s03 = s00;                      \
    VT s10 = BCAST(init + 1), s11 = s10, s12 = s10, s13 = s10;                  \
    VT s20 = BCAST(init + 2), s21 = s20, s22 = s20, s23 = s20;                  \
    for (c = 0; c < nch; c++) {                                                 \
        const T *wc = w + c * kh * kw;                                          \
        for (i = 0; i < per; i++) {                                             \
            const T *p = in[c * per + i] + i0;                                  \
            const ptrdiff_t lo = i - kh + 1 > 0 ? i - kh + 1 : 0;               \
            const ptrdiff_t hi = i < 2 ? i : 2;                                 \
            const T *w0 = wc + (i < kh ? i : 0) * kw;                           \
            const T *w1 = wc + (i >= 1 && i - 1 < kh ? i - 1 : 0) * kw;         \
            const T *w2 = wc + (i >= 2 && i - 2 < kh ? i - 2 : 0) * kw;         \
            if (kw == 3) {                                                      \
                FN3_CASES(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, 3)            \
            } else {                                                            \
                FN3_CASES(VT, LANES, LOADX, BCAST, FMA, ZERO, NV, kw)           \
            }                                                                   \
        }                                                                       \
    }                                                                           \
    {                                                                           \
        T *o0 = acc[0] + i0, *o1 = acc[1] + i0, *o2 = acc[2] + i0;              \
        STORE(o0, s00); STORE(o1, s10); STORE(o2, s20);                         \
        if ((NV) > 1) {                                                         \
            STORE(o0 + LANES, s01); STORE(o0 + 2 * LANES, s02); STORE(o0 + 3 * LANES, s03); \
            STORE(o1 + LANES, s11); STORE(o1 + 2 * LANES, s12); STORE(o1 + 3 * LANES, s13); \
            STORE(o2 + LANES, s21); STORE(o2 + 2 * LANES, s22); STORE(o2 + 3 * LANES, s23); \
        }                                                                       \
        (void)s01; (void)s02; (void)s03; (void)s11; (void)s12; (void)s13;       \
        (void)s21; (void)s22; (void)s23;                                        \
    }                                                                           \
}

#define FN3_DEFINE(SUFFIX, T, VT, LANES, LOADU, BCAST, FMA, ZERO, LOADM, ST_PLAIN, ST_MASK, MASK_LT) \
FN3_DEFINE_BLOCK(fn_rows3_##SUFFIX##_full, T, VT, LANES, LOADU, ST_PLAIN, BCAST, FMA, ZERO, 4) \
FN3_DEFINE_BLOCK(fn_rows3_##SUFFIX##_one, T, VT, LANES, LOADU, ST_PLAIN, BCAST, FMA, ZERO, 1)  \
FN3_DEFINE_BLOCK(fn_rows3_##SUFFIX##_masked, T, VT, LANES, LOADM, ST_MASK, BCAST, FMA, ZERO, 1) \
FC_TARGET_AVX2 static ptrdiff_t fn_rows3_##SUFFIX##_avx2(                       \
    T *const *acc, const T *const *in, const T *w, ptrdiff_t nch, ptrdiff_t kh, \
    ptrdiff_t kw, ptrdiff_t n, const T *init)                                   \
{                                                                               \
    const ptrdiff_t width = 4 * LANES;                                          \
    const __m256i none = _mm256_setzero_si256();                                \
    ptrdiff_t i0;                                                               \
    if (n >= width) {                                                           \
        for (i0 = 0; i0 + width <= n; i0 += width)                              \
            fn_rows3_##SUFFIX##_full(acc, in, w, nch, kh, kw, init, i0, none);  \
        if (i0 < n)                                                             \
            fn_rows3_##SUFFIX##_full(acc, in, w, nch, kh, kw, init, n - width, none); \
        return n;                                                               \
    }                                                                           \
    for (i0 = 0; i0 + LANES <= n; i0 += LANES)                                  \
        fn_rows3_##SUFFIX##_one(acc, in, w, nch, kh, kw, init, i0, none);       \
    if (i0 < n)                                                                 \
        fn_rows3_##SUFFIX##_masked(acc, in, w, nch, kh, kw, init, i0, MASK_LT(n - i0)); \
    return n;                                                                   \
}

FN3_DEFINE(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
           _mm256_setzero_ps, FC_LOADM_PS, FC_ST_PLAIN_PS, FC_ST_MASK_PS, FC_MASK_LT_PS)
FN3_DEFINE(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd,
           _mm256_setzero_pd, FC_LOADM_PD, FC_ST_PLAIN_PD, FC_ST_MASK_PD, FC_MASK_LT_PD)

static ptrdiff_t fn_rows3_f32(float *const *acc, const float *const *in, const float *w, ptrdiff_t nch,
                              ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const float *init)
{ return fc_cpu_has_avx2_fma() ? fn_rows3_f32_avx2(acc, in, w, nch, kh, kw, n, init) : 0; }
static ptrdiff_t fn_rows3_f64(double *const *acc, const double *const *in, const double *w, ptrdiff_t nch,
                              ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const double *init)
{ return fc_cpu_has_avx2_fma() ? fn_rows3_f64_avx2(acc, in, w, nch, kh, kw, n, init) : 0; }
#else
static ptrdiff_t fn_rows3_f32(float *const *acc, const float *const *in, const float *w, ptrdiff_t nch,
                              ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const float *init)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; (void)init; return 0; }
static ptrdiff_t fn_rows3_f64(double *const *acc, const double *const *in, const double *w, ptrdiff_t nch,
                              ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const double *init)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; (void)init; return 0; }
#endif

#endif
