/*
 * fastcorr: the cross-power spectrum of image registration, plain C.
 *
 *   rk_xpower: p[i] = a[i] * conj(b[i]), and with `phase` divided by
 *              max(|p[i]|, floor) (scikit-image's phase normalisation),
 *              for n complex values stored as interleaved (re, im) pairs;
 *              p may be a (in place).
 *   rk_sumsq:  sum of x[i]^2 in double (8 running sums, then added).
 *   rk_absmax: the index of the first largest |x[i]| of a real array
 *              (numpy's argmax(abs(x)); the first NaN if there is one).
 *
 * One read of each input and one write, instead of numpy's four passes
 * and two temporaries. The magnitude of a float32 product is computed in
 * double (no overflow of re^2 + im^2, the correctly rounded |p| that
 * numpy's hypotf gives); a float64 block whose squares overflow is redone
 * with hypot (|p| > 1e154: only for images of huge values). A square that
 * underflows belongs to a |p| far below any floor, so max() hides it.
 *
 * The default build is baseline x86-64; an AVX2 copy is compiled with a
 * target attribute and chosen at run time, as in sep_kernels.h.
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_REG_KERNELS_H
#define FASTCORR_REG_KERNELS_H

#include <math.h>
#include <float.h>
#include <stddef.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define RK_RESTRICT __restrict__
#else
#define RK_RESTRICT
#endif
/* Selects without branches (see norm_kernels.h: GCC keeps a select that
 * may trap as a branch, and does not vectorise the loop). */
#if defined(__GNUC__) && !defined(__clang__)
#define RK_NOTRAP __attribute__((optimize("no-trapping-math")))
#else
#define RK_NOTRAP
#endif

#define RK_BLOCK 512

/* T: the element type, W: the type the magnitude is computed in. Per block
 * of RK_BLOCK values (in L1): the magnitudes (and whether a square
 * overflowed), hypot for that block if one did, then the products divided
 * by them; a and b are read twice, p written once, so p may be a. */
#define RK_PRODUCT(T)                                                                \
    const T ar = a[2 * i], ai = a[2 * i + 1];                                        \
    const T br = b[2 * i], bi = b[2 * i + 1];                                        \
    const T pr = ar * br + ai * bi, pi = ai * br - ar * bi;

#define RK_DEFINE(SUFFIX, T, W, CT, ATTR)                                            \
ATTR static void rk_xpower_##SUFFIX(T *p, const T *a, const T *RK_RESTRICT b,       \
                                    ptrdiff_t n, int phase, T floor_)               \
{                                                                                    \
    ptrdiff_t b0, i;                                                                 \
    T m[RK_BLOCK];                                                                   \
    if (!phase) {                                                                    \
        for (i = 0; i < n; i++) {                                                    \
            RK_PRODUCT(T)                                                            \
            p[2 * i] = pr;                                                           \
            p[2 * i + 1] = pi;                                                       \
        }                                                                            \
        return;                                                                      \
    }                                                                                \
    for (b0 = 0; b0 < n; b0 += RK_BLOCK) {                                           \
        const ptrdiff_t b1 = n - b0 < RK_BLOCK ? n : b0 + RK_BLOCK;                  \
        CT over = 0;                                                                 \
        for (i = b0; i < b1; i++) {                                                  \
            RK_PRODUCT(T)                                                            \
            const W sq = (W)pr * (W)pr + (W)pi * (W)pi;                              \
            const T mag = (T)sqrt(sq);                                               \
            over |= sq > (W)DBL_MAX;                                                 \
            m[i - b0] = mag > floor_ ? mag : floor_;                                 \
        }                                                                            \
        if (over) {                                                                  \
            for (i = b0; i < b1; i++) {                                              \
                RK_PRODUCT(T)                                                        \
                const T mag = (T)hypot((double)pr, (double)pi);                      \
                m[i - b0] = mag > floor_ ? mag : floor_;                             \
            }                                                                        \
        }                                                                            \
        for (i = b0; i < b1; i++) {                                                  \
            RK_PRODUCT(T)                                                            \
            p[2 * i] = pr / m[i - b0];                                               \
            p[2 * i + 1] = pi / m[i - b0];                                           \
        }                                                                            \
    }                                                                                \
}                                                                                    \
ATTR static ptrdiff_t rk_absmax_##SUFFIX(const T *RK_RESTRICT x, ptrdiff_t n)        \
{                                                                                    \
    /* The block maxima first (a vectorised reduction; NaN flagged), then   */      \
    /* the first index of the largest in its block.                         */      \
    ptrdiff_t b0, i, best_block = -1;                                                \
    T best = 0;                                                                      \
    for (b0 = 0; b0 < n; b0 += 8 * RK_BLOCK) {                                       \
        const ptrdiff_t b1 = n - b0 < 8 * RK_BLOCK ? n : b0 + 8 * RK_BLOCK;          \
        T top = 0;                                                                   \
        CT nan = 0;                                                                  \
        for (i = b0; i < b1; i++) {                                                  \
            const T v = x[i] < 0 ? -x[i] : x[i];                                     \
            nan |= v != v;                                                           \
            top = v > top ? v : top;                                                 \
        }                                                                            \
        if (nan) {                                                                   \
            for (i = b0; i < b1; i++)                                                \
                if (x[i] != x[i]) return i;                                          \
        }                                                                            \
        if (best_block < 0 || top > best) { best = top; best_block = b0; }           \
    }                                                                                \
    if (best_block < 0) return 0;                                                    \
    for (i = best_block; i < n; i++) {                                               \
        const T v = x[i] < 0 ? -x[i] : x[i];                                         \
        if (v == best) return i;                                                     \
    }                                                                                \
    return best_block;                                                               \
}

#define RK_SUMSQ_DEFINE(SUFFIX, T, ATTR)                                              \
ATTR static double rk_sumsq_##SUFFIX(const T *RK_RESTRICT x, ptrdiff_t n)           \
{                                                                                    \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, total = 0;                             \
    ptrdiff_t i = 0, j;                                                              \
    for (; i + 8 <= n; i += 8)                                                       \
        for (j = 0; j < 8; j++) acc[j] += (double)x[i + j] * (double)x[i + j];       \
    for (; i < n; i++) total += (double)x[i] * (double)x[i];                         \
    for (j = 0; j < 8; j++) total += acc[j];                                         \
    return total;                                                                    \
}

RK_SUMSQ_DEFINE(f32_base, float, )
RK_SUMSQ_DEFINE(f64_base, double, )
#if FC_X86_DISPATCH
RK_SUMSQ_DEFINE(f32_avx2, float, FC_TARGET_AVX2)
RK_SUMSQ_DEFINE(f64_avx2, double, FC_TARGET_AVX2)
#endif

RK_DEFINE(f32_base, float, double, int, RK_NOTRAP)
RK_DEFINE(f64_base, double, double, long long, RK_NOTRAP)
#if FC_X86_DISPATCH
RK_DEFINE(f32_avx2, float, double, int, FC_TARGET_AVX2 RK_NOTRAP)
RK_DEFINE(f64_avx2, double, double, long long, FC_TARGET_AVX2 RK_NOTRAP)
#endif

#if FC_X86_DISPATCH
#define RK_PICK(NAME, SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? NAME##_##SUFFIX##_avx2(__VA_ARGS__) : NAME##_##SUFFIX##_base(__VA_ARGS__))
#define RK_PICK_VOID(NAME, SUFFIX, ...) \
    do { if (fc_cpu_has_avx2_fma()) NAME##_##SUFFIX##_avx2(__VA_ARGS__); else NAME##_##SUFFIX##_base(__VA_ARGS__); } while (0)
#else
#define RK_PICK(NAME, SUFFIX, ...) NAME##_##SUFFIX##_base(__VA_ARGS__)
#define RK_PICK_VOID(NAME, SUFFIX, ...) NAME##_##SUFFIX##_base(__VA_ARGS__)
#endif

static void rk_xpower_f32(float *p, const float *a, const float *b, ptrdiff_t n, int phase, float floor_)
{ RK_PICK_VOID(rk_xpower, f32, p, a, b, n, phase, floor_); }
static void rk_xpower_f64(double *p, const double *a, const double *b, ptrdiff_t n, int phase, double floor_)
{ RK_PICK_VOID(rk_xpower, f64, p, a, b, n, phase, floor_); }
static double rk_sumsq_f32(const float *x, ptrdiff_t n) { return RK_PICK(rk_sumsq, f32, x, n); }
static double rk_sumsq_f64(const double *x, ptrdiff_t n) { return RK_PICK(rk_sumsq, f64, x, n); }
static ptrdiff_t rk_absmax_f32(const float *x, ptrdiff_t n) { return RK_PICK(rk_absmax, f32, x, n); }
static ptrdiff_t rk_absmax_f64(const double *x, ptrdiff_t n) { return RK_PICK(rk_absmax, f64, x, n); }

#endif
