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

#define NK_DEFINE(SUFFIX, T, ATTR)                                                   \
ATTR static ptrdiff_t nk_prep_##SUFFIX(T *NK_RESTRICT prod, T *NK_RESTRICT cert,     \
                                       const T *NK_RESTRICT x, const T *NK_RESTRICT c, \
                                       ptrdiff_t n, T mv, T mc, ptrdiff_t *partial)  \
{                                                                                    \
    ptrdiff_t i, missing = 0, part = 0;                                              \
    const T mp = mv * mc;                                                            \
    if (c == NULL) {                                                                 \
        for (i = 0; i < n; i++) {                                                    \
            const T xi = x[i];                                                       \
            const int miss = xi != xi;                                               \
            prod[i] = miss ? mp : xi;                                                \
            cert[i] = miss ? mc : (T)1;                                              \
            missing += miss;                                                         \
        }                                                                            \
    } else {                                                                         \
        for (i = 0; i < n; i++) {                                                    \
            const T xi = x[i], ci = c[i];                                            \
            const int miss = (xi != xi) | (ci == (T)0);                              \
            prod[i] = miss ? mp : xi * ci;                                           \
            cert[i] = miss ? mc : ci;                                                \
            missing += miss;                                                         \
            part += (!miss) & (ci < (T)1);                                           \
        }                                                                            \
    }                                                                                \
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
    ptrdiff_t i, nans = 0;                                                           \
    for (i = 0; i < n; i++) {                                                        \
        const T d = den[i], xi = x[i];                                               \
        const T ci = c == NULL ? (T)1 : c[i];                                        \
        const int miss = (xi != xi) | (ci == (T)0);                                  \
        const int zero = (d <= zt) & (d >= -zt);                                     \
        T v = zero ? (miss ? mcentre : xi) * scale : num[i] / d * scale;             \
        v = (preserve & miss) ? (T)NAN : v;                                          \
        nans += v != v;                                                              \
        out[i] = v;                                                                  \
        if (cert_out != NULL) cert_out[i] = zero ? (T)0 : d * inv_ksum;              \
    }                                                                                \
    return nans;                                                                     \
}

NK_DEFINE(f32_base, float, )
NK_DEFINE(f64_base, double, )
#if FC_X86_DISPATCH
NK_DEFINE(f32_avx2, float, FC_TARGET_AVX2)
NK_DEFINE(f64_avx2, double, FC_TARGET_AVX2)
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
