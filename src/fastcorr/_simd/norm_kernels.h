/*
 * fastcorr: the pointwise loops of normalized convolution, plain C.
 *
 *   nk_prep:   prod[i] = c[i] * x[i], cert[i] = c[i]; a missing pixel (x NaN
 *              or c 0) gets mv * mc and mc instead, its value never used.
 *   nk_finish: out[i] = num[i] / den[i] * scale, or where |den| <= zt (no
 *              certain pixel under the kernel) the pixel itself (mcentre if
 *              missing) * scale; NaN at missing pixels when preserve; the
 *              certainty den[i] * inv_ksum (0 where |den| <= zt).
 *
 * Branch-free selects, so the compiler vectorises them (the missing pixels
 * fall at random: a branch would mispredict on each). c == NULL means a
 * certainty of 1 everywhere. The default build is baseline x86-64; an
 * AVX2 copy is compiled with a target attribute and chosen at run time, as
 * in sep_kernels.h. Thread-safe, no Python objects.
 */
#ifndef FASTCORR_NORM_KERNELS_H
#define FASTCORR_NORM_KERNELS_H

#include <math.h>
#include <stddef.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define NK_RESTRICT __restrict__
#else
#define NK_RESTRICT
#endif
/* GCC keeps a select between two results as a branch when one of them may
 * raise a floating-point exception (its default -ftrapping-math), and a
 * loop with branches is not vectorised: these loops never test the
 * exception flags, so they are compiled without that assumption. */
#if defined(__GNUC__) && !defined(__clang__)
#define NK_NOTRAP __attribute__((optimize("no-trapping-math")))
#else
#define NK_NOTRAP
#endif

/* Counters are of the data's lane width (CT: int for float, long long for
 * double) so that the compiler keeps them in vector lanes; they count
 * blocks of NK_BLOCK elements at a time. The loop-invariant choices (a
 * certainty or not, a certainty output or not) are made outside the loops. */
#define NK_BLOCK 65536

#define NK_PREP_LOOP(T, CT, CERTAIN)                                                 \
    for (b0 = 0; b0 < n; b0 += NK_BLOCK) {                                           \
        const ptrdiff_t b1 = n - b0 < NK_BLOCK ? n : b0 + NK_BLOCK;                  \
        CT miss_n = 0, part_n = 0;                                                   \
        for (i = b0; i < b1; i++) {                                                  \
            const T xi = x[i], ci = CERTAIN ? (T)1 : c[i];                           \
            const T pv = xi * ci;                                                    \
            const CT miss = (xi != xi) | (ci == (T)0);                               \
            prod[i] = miss ? mp : pv;                                                \
            cert[i] = miss ? mc : ci;                                                \
            miss_n += miss;                                                          \
            part_n += (miss ^ 1) & (ci < (T)1);                                      \
        }                                                                            \
        missing += miss_n;                                                           \
        part += part_n;                                                              \
    }

#define NK_FINISH_LOOP(T, CT, CERTAIN, CERT_OUT)                                     \
    for (b0 = 0; b0 < n; b0 += NK_BLOCK) {                                           \
        const ptrdiff_t b1 = n - b0 < NK_BLOCK ? n : b0 + NK_BLOCK;                  \
        CT nan_n = 0;                                                                \
        for (i = b0; i < b1; i++) {                                                  \
            const T d = den[i], xi = x[i];                                           \
            const T ci = CERTAIN ? (T)1 : c[i];                                      \
            const CT miss = (xi != xi) | (ci == (T)0);                               \
            const CT zero = (d <= zt) & (d >= -zt);                                  \
            const T q = num[i] / d * scale;                                          \
            const T xs = xi * scale, cs = d * inv_ksum;                              \
            const T centre = miss ? ms : xs;                                         \
            T v = zero ? centre : q;                                                 \
            v = (miss & keep) ? (T)NAN : v;                                          \
            nan_n += v != v;                                                         \
            out[i] = v;                                                              \
            if (CERT_OUT) cert_out[i] = zero ? (T)0 : cs;                            \
        }                                                                            \
        nans += nan_n;                                                               \
    }

#define NK_DEFINE(SUFFIX, T, CT, ATTR)                                               \
ATTR static ptrdiff_t nk_prep_##SUFFIX(T *NK_RESTRICT prod, T *NK_RESTRICT cert,     \
                                       const T *NK_RESTRICT x, const T *NK_RESTRICT c, \
                                       ptrdiff_t n, T mv, T mc, ptrdiff_t *partial)  \
{                                                                                    \
    ptrdiff_t i, b0, missing = 0, part = 0;                                          \
    const T mp = mv * mc;                                                            \
    if (c == NULL) { NK_PREP_LOOP(T, CT, 1) } else { NK_PREP_LOOP(T, CT, 0) }        \
    *partial += part;                                                                \
    return missing;                                                                  \
}                                                                                    \
ATTR static ptrdiff_t nk_finish_##SUFFIX(T *out, T *cert_out, const T *num,          \
                                         const T *den, const T *NK_RESTRICT x,       \
                                         const T *NK_RESTRICT c, ptrdiff_t n, T zt,  \
                                         T scale, T mcentre, int preserve,           \
                                         T inv_ksum)                                 \
{                                                                                    \
    /* out may be num and cert_out den (in place): each element is read     */      \
    /* before it is written.                                                */      \
    ptrdiff_t i, b0, nans = 0;                                                       \
    const CT keep = preserve ? 1 : 0;                                                \
    const T ms = mcentre * scale;                                                    \
    if (c == NULL) {                                                                 \
        if (cert_out == NULL) { NK_FINISH_LOOP(T, CT, 1, 0) }                        \
        else { NK_FINISH_LOOP(T, CT, 1, 1) }                                         \
    } else {                                                                         \
        if (cert_out == NULL) { NK_FINISH_LOOP(T, CT, 0, 0) }                        \
        else { NK_FINISH_LOOP(T, CT, 0, 1) }                                         \
    }                                                                                \
    return nans;                                                                     \
}

NK_DEFINE(f32_base, float, int, NK_NOTRAP)
NK_DEFINE(f64_base, double, long long, NK_NOTRAP)
#if FC_X86_DISPATCH
NK_DEFINE(f32_avx2, float, int, FC_TARGET_AVX2 NK_NOTRAP)
NK_DEFINE(f64_avx2, double, long long, FC_TARGET_AVX2 NK_NOTRAP)
#endif

#if FC_X86_DISPATCH
#define NK_PICK(NAME, SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? NAME##_##SUFFIX##_avx2(__VA_ARGS__) : NAME##_##SUFFIX##_base(__VA_ARGS__))
#else
#define NK_PICK(NAME, SUFFIX, ...) NAME##_##SUFFIX##_base(__VA_ARGS__)
#endif

static ptrdiff_t nk_prep_f32(float *p, float *q, const float *x, const float *c, ptrdiff_t n, float mv,
                             float mc, ptrdiff_t *partial)
{ return NK_PICK(nk_prep, f32, p, q, x, c, n, mv, mc, partial); }
static ptrdiff_t nk_prep_f64(double *p, double *q, const double *x, const double *c, ptrdiff_t n, double mv,
                             double mc, ptrdiff_t *partial)
{ return NK_PICK(nk_prep, f64, p, q, x, c, n, mv, mc, partial); }
static ptrdiff_t nk_finish_f32(float *o, float *co, const float *num, const float *den, const float *x,
                               const float *c, ptrdiff_t n, float zt, float scale, float mcentre,
                               int preserve, float inv_ksum)
{ return NK_PICK(nk_finish, f32, o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum); }
static ptrdiff_t nk_finish_f64(double *o, double *co, const double *num, const double *den, const double *x,
                               const double *c, ptrdiff_t n, double zt, double scale, double mcentre,
                               int preserve, double inv_ksum)
{ return NK_PICK(nk_finish, f64, o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum); }

#endif
