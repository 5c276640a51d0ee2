/*
 * fastcorr: the column sums of the FFT method's row-spectrum plan, plain C.
 *
 * When only the rows are transformed (length-N real FFTs), a 2-D
 * correlation becomes, for every frequency f of the rows' spectra, a 1-D
 * correlation down the columns:
 *     Y[m][f] = sum_j K[j][f] * X[m + off + j][f]      (complex products)
 * with X[r] the spectrum of image row r (zero outside 0 <= r < H) and K[j]
 * that of kernel row j. Spectra are stored as interleaved (re, im) pairs;
 * the kernel's as two real rows of the same length, each value twice:
 *     a[j] = (Kr, Kr, ...),   b[j] = (Ki, Ki, ...)
 * Then P = sum_j a[j] * x and Q = sum_j b[j] * x are plain elementwise
 * multiply-adds (no shuffles in the loop), and
 *     Y = (P_re - Q_im, P_im + Q_re)
 * once at the end (the kernel's values are equal in both lanes of a pair,
 * so swapping x's lanes in every term is swapping Q's once).
 *
 * The default build is baseline x86-64; on x86 with GCC/Clang an AVX2+FMA
 * copy is compiled with a target attribute and chosen at run time (never
 * -march=native). Thread-safe, no Python objects.
 */
#ifndef FASTCORR_SPEC_KERNELS_H
#define FASTCORR_SPEC_KERNELS_H

#include <stddef.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#define FC_SPEC_NB 32

/* Taps j of output row m (image rows m + off + j) that fall on the image. */
static inline void fc_spec_taps(ptrdiff_t m, ptrdiff_t off, ptrdiff_t H, ptrdiff_t kh,
                                ptrdiff_t *lo, ptrdiff_t *hi)
{
    const ptrdiff_t r0 = m + off;
    *lo = r0 < 0 ? -r0 : 0;
    *hi = H - r0 < kh ? H - r0 : kh;
    if (*hi < *lo) *hi = *lo;
}

/* Output rows m0 .. m1-1: out[m][0 .. n) (n even, the interleaved values of
 * one spectrum row), rows ldo apart; x rows ldx apart (H of them); a and b
 * rows ldk apart (kh of them). Blocks of FC_SPEC_NB values: P and Q stay in
 * L1 while the taps stream over them (the portable loop; the AVX2 one below
 * keeps them in registers). */
#define FC_SPEC_DEFINE(SUFFIX, T, ATTR)                                          \
ATTR static void fc_spec_rows_##SUFFIX(T *out, ptrdiff_t ldo, const T *x,        \
        ptrdiff_t ldx, ptrdiff_t H, const T *a, const T *b, ptrdiff_t ldk,       \
        ptrdiff_t kh, ptrdiff_t off, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n)    \
{                                                                                \
    for (ptrdiff_t m = m0; m < m1; m++) {                                        \
        T *o = out + m * ldo;                                                    \
        ptrdiff_t j_lo, j_hi, t = 0, i, j;                                       \
        fc_spec_taps(m, off, H, kh, &j_lo, &j_hi);                               \
        for (; t < n; t += FC_SPEC_NB) {                                         \
            const ptrdiff_t nb = n - t < FC_SPEC_NB ? n - t : FC_SPEC_NB;        \
            T P[FC_SPEC_NB], Q[FC_SPEC_NB];                                      \
            for (i = 0; i < FC_SPEC_NB; i++) { P[i] = 0; Q[i] = 0; }             \
            for (j = j_lo; j < j_hi; j++) {                                      \
                const T *xr = x + (m + off + j) * ldx + t;                       \
                const T *ar = a + j * ldk + t, *br = b + j * ldk + t;            \
                for (i = 0; i < nb; i++) {                                       \
                    P[i] += ar[i] * xr[i];                                       \
                    Q[i] += br[i] * xr[i];                                       \
                }                                                                \
            }                                                                    \
            for (i = 0; i < nb; i += 2) {                                        \
                o[t + i] = P[i] - Q[i + 1];                                      \
                o[t + i + 1] = P[i + 1] + Q[i];                                  \
            }                                                                    \
        }                                                                        \
    }                                                                            \
}

FC_SPEC_DEFINE(f32_base, float, )
FC_SPEC_DEFINE(f64_base, double, )

#if FC_X86_DISPATCH
#include <immintrin.h>

/* The AVX2 copy, with intrinsics. Four output rows at a time share the
 * kernel rows' loads (rows m .. m+3 read image rows m+off+j .. m+3+off+j
 * with the same a[j], b[j]): eight fused multiply-adds per six loads, the
 * accumulators (P and Q of four rows, one vector each) in registers. The
 * taps that only some of the four rows have (image edges) run row by row.
 * Column blocks are the outer loop, so that a block's kernel and image
 * columns stay in L1 while every output row passes over them. The last
 * values of a row (fewer than a vector) go through masked loads and
 * stores, which never touch the memory past the row. */
#define FC_SPEC_R 4

/* Taps of output rows m .. m+rows-1 (image rows r0 + i + j, i < rows) that
 * fall on the image, each row's [lo, hi), and the taps all four rows have,
 * [*clo, *chi) (empty, at kh, when fewer than four rows or none shared). */
static inline void fc_spec_ranges(ptrdiff_t r0, int rows, ptrdiff_t H, ptrdiff_t kh,
                                  ptrdiff_t *lo, ptrdiff_t *hi, ptrdiff_t *clo, ptrdiff_t *chi)
{
    ptrdiff_t c_lo = 0, c_hi = kh;
    for (int i = 0; i < FC_SPEC_R; i++) {
        lo[i] = hi[i] = 0;
        if (i < rows) fc_spec_taps(r0 + i, 0, H, kh, &lo[i], &hi[i]);
        if (lo[i] > c_lo) c_lo = lo[i];
        if (hi[i] < c_hi) c_hi = hi[i];
    }
    if (rows < FC_SPEC_R || c_hi <= c_lo) c_lo = c_hi = kh;
    *clo = c_lo;
    *chi = c_hi;
}

/* The taps of row I outside the shared range, into P[I], Q[I]. */
#define FC_SPEC_OWN(I, T, V, LOAD, STORE, FMA, FINISH)                                         \
    if (I < rows) {                                                              \
        ptrdiff_t j_end = hi[I] < clo ? hi[I] : clo;                             \
        for (j = lo[I]; j < j_end; j++) {                                        \
            const V xv = LOAD(x + (r0 + I + j) * ldx + t);                       \
            P##I = FMA(LOAD(a + j * ldk + t), xv, P##I);                         \
            Q##I = FMA(LOAD(b + j * ldk + t), xv, Q##I);                         \
        }                                                                        \
        for (j = lo[I] > chi ? lo[I] : chi; j < hi[I]; j++) {                    \
            const V xv = LOAD(x + (r0 + I + j) * ldx + t);                       \
            P##I = FMA(LOAD(a + j * ldk + t), xv, P##I);                         \
            Q##I = FMA(LOAD(b + j * ldk + t), xv, Q##I);                         \
        }                                                                        \
        STORE(out + I * ldo + t, FINISH(P##I, Q##I));                            \
    }

/* One vector of columns (at t) of output rows out[0 .. rows-1]. */
/* Keeps a loaded vector in a register: GCC otherwise folds the load into
 * both multiply-adds that use it, loading it twice. */
#define FC_SPEC_PIN(v) __asm__("" : "+x"(v))

#define FC_SPEC_BLOCK(NAME, T, V, LOAD, STORE, ZERO, FMA, FINISH)                \
FC_TARGET_AVX2 static inline void NAME(T *out, ptrdiff_t ldo, int rows,            \
        const T *x, ptrdiff_t ldx, const T *a, const T *b, ptrdiff_t ldk,       \
        ptrdiff_t r0, ptrdiff_t t, const ptrdiff_t *lo, const ptrdiff_t *hi,    \
        ptrdiff_t clo, ptrdiff_t chi, __m256i mask)                             \
{                                                                                \
    V P0 = ZERO(), P1 = ZERO(), P2 = ZERO(), P3 = ZERO();                        \
    V Q0 = ZERO(), Q1 = ZERO(), Q2 = ZERO(), Q3 = ZERO();                        \
    ptrdiff_t j;                                                                 \
    (void)mask;                                                                  \
    for (j = clo; j < chi; j++) {                                                \
        const T *xj = x + (r0 + j) * ldx + t;                                    \
        const V av = LOAD(a + j * ldk + t), bv = LOAD(b + j * ldk + t);          \
        V xv = LOAD(xj); FC_SPEC_PIN(xv);                                        \
        P0 = FMA(av, xv, P0); Q0 = FMA(bv, xv, Q0);                              \
        xv = LOAD(xj + ldx); FC_SPEC_PIN(xv);                                    \
        P1 = FMA(av, xv, P1); Q1 = FMA(bv, xv, Q1);                              \
        xv = LOAD(xj + 2 * ldx); FC_SPEC_PIN(xv);                                \
        P2 = FMA(av, xv, P2); Q2 = FMA(bv, xv, Q2);                              \
        xv = LOAD(xj + 3 * ldx); FC_SPEC_PIN(xv);                                \
        P3 = FMA(av, xv, P3); Q3 = FMA(bv, xv, Q3);                              \
    }                                                                            \
    FC_SPEC_OWN(0, T, V, LOAD, STORE, FMA, FINISH)                                            \
    FC_SPEC_OWN(1, T, V, LOAD, STORE, FMA, FINISH)                                            \
    FC_SPEC_OWN(2, T, V, LOAD, STORE, FMA, FINISH)                                            \
    FC_SPEC_OWN(3, T, V, LOAD, STORE, FMA, FINISH)                                            \
}

#define FC_SPEC_AVX2_DEFINE(SUFFIX, T, V, L, LOAD, STORE, MLOAD, MSTORE, ZERO, FMA, FINISH) \
FC_SPEC_BLOCK(fc_spec_block_##SUFFIX, T, V, LOAD, STORE, ZERO, FMA, FINISH)      \
FC_SPEC_BLOCK(fc_spec_masked_##SUFFIX, T, V, MLOAD, MSTORE, ZERO, FMA, FINISH)   \
FC_TARGET_AVX2 static void fc_spec_rows_##SUFFIX##_avx2(T *out, ptrdiff_t ldo,      \
        const T *x, ptrdiff_t ldx, ptrdiff_t H, const T *a, const T *b, ptrdiff_t ldk, \
        ptrdiff_t kh, ptrdiff_t off, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n)     \
{                                                                                \
    const __m256i mask = fc_spec_mask_##SUFFIX(n % L);                           \
    ptrdiff_t lo[FC_SPEC_R], hi[FC_SPEC_R], clo, chi, t, m;                      \
    for (t = 0; t < n; t += L)                                                   \
        for (m = m0; m < m1; m += FC_SPEC_R) {                                   \
            const int rows = m1 - m < FC_SPEC_R ? (int)(m1 - m) : FC_SPEC_R;     \
            fc_spec_ranges(m + off, rows, H, kh, lo, hi, &clo, &chi);            \
            if (t + L <= n)                                                      \
                fc_spec_block_##SUFFIX(out + m * ldo, ldo, rows, x, ldx, a, b, ldk, \
                                       m + off, t, lo, hi, clo, chi, mask);      \
            else                                                                 \
                fc_spec_masked_##SUFFIX(out + m * ldo, ldo, rows, x, ldx, a, b, ldk, \
                                        m + off, t, lo, hi, clo, chi, mask);     \
        }                                                                        \
}

/* Lanes 0 .. k-1 on (k < L). */
FC_TARGET_AVX2 static inline __m256i fc_spec_mask_f64(ptrdiff_t k)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}
FC_TARGET_AVX2 static inline __m256i fc_spec_mask_f32(ptrdiff_t k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define FC_MLOAD_PD(p) _mm256_maskload_pd((p), mask)
#define FC_MSTORE_PD(p, v) _mm256_maskstore_pd((p), mask, (v))
#define FC_MLOAD_PS(p) _mm256_maskload_ps((p), mask)
#define FC_MSTORE_PS(p, v) _mm256_maskstore_ps((p), mask, (v))

/* (P_re - Q_im, P_im + Q_re): Q's lanes swapped, then subtract / add. */
#define FC_FINISH_PD(P, Q) _mm256_addsub_pd((P), _mm256_permute_pd((Q), 0x5))
#define FC_FINISH_PS(P, Q) _mm256_addsub_ps((P), _mm256_permute_ps((Q), 0xB1))
FC_SPEC_AVX2_DEFINE(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, FC_MLOAD_PD,
                    FC_MSTORE_PD, _mm256_setzero_pd, _mm256_fmadd_pd, FC_FINISH_PD)
FC_SPEC_AVX2_DEFINE(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, FC_MLOAD_PS,
                    FC_MSTORE_PS, _mm256_setzero_ps, _mm256_fmadd_ps, FC_FINISH_PS)
#endif

#if FC_X86_DISPATCH
#define FC_SPEC_PICK(SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? fc_spec_rows_##SUFFIX##_avx2(__VA_ARGS__) : fc_spec_rows_##SUFFIX##_base(__VA_ARGS__))
#else
#define FC_SPEC_PICK(SUFFIX, ...) fc_spec_rows_##SUFFIX##_base(__VA_ARGS__)
#endif

static void fc_spec_rows_f32(float *o, ptrdiff_t ldo, const float *x, ptrdiff_t ldx, ptrdiff_t H,
                             const float *a, const float *b, ptrdiff_t ldk, ptrdiff_t kh,
                             ptrdiff_t off, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n)
{ FC_SPEC_PICK(f32, o, ldo, x, ldx, H, a, b, ldk, kh, off, m0, m1, n); }
static void fc_spec_rows_f64(double *o, ptrdiff_t ldo, const double *x, ptrdiff_t ldx, ptrdiff_t H,
                             const double *a, const double *b, ptrdiff_t ldk, ptrdiff_t kh,
                             ptrdiff_t off, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n)
{ FC_SPEC_PICK(f64, o, ldo, x, ldx, H, a, b, ldk, kh, off, m0, m1, n); }

#endif
