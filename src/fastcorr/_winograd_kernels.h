/*
 * fastcorr: the transforms of conv2d's Winograd F(2x2, 3x3) method (see
 * _winograd.pyx for the algebra). Plain C the compiler vectorises: a
 * baseline x86-64 build plus an AVX2 twin (the same body under a target
 * attribute) chosen at run time. Thread-safe; knows nothing of Python.
 */
#ifndef FASTCORR_WINOGRAD_KERNELS_H
#define FASTCORR_WINOGRAD_KERNELS_H

#include <string.h>

#include "_simd_kernels.h"

/* One row of tiles of one channel: from the 4 padded input rows s (row
 * stride ld, 2*ntiles + 2 columns), V[xi * plane + tx] = (B^T d B)[xi] of
 * tile tx. tmp: room for 4 * (2*ntiles + 2) values. */
#define FC_DEFINE_WINO_INPUT(NAME, T, ATTR)                                    \
ATTR static void NAME(const T *restrict s, ptrdiff_t ld, ptrdiff_t ntiles,     \
                      T *restrict V, ptrdiff_t plane, T *restrict tmp)         \
{                                                                              \
    const ptrdiff_t n = 2 * ntiles + 2;                                        \
    const T *restrict s0 = s, *restrict s1 = s + ld;                           \
    const T *restrict s2 = s + 2 * ld, *restrict s3 = s + 3 * ld;              \
    T *restrict t0 = tmp, *restrict t1 = tmp + n;                              \
    T *restrict t2 = tmp + 2 * n, *restrict t3 = tmp + 3 * n;                  \
    for (ptrdiff_t v = 0; v < n; v++) { /* B^T d */                            \
        t0[v] = s0[v] - s2[v];                                                 \
        t1[v] = s1[v] + s2[v];                                                 \
        t2[v] = s2[v] - s1[v];                                                 \
        t3[v] = s1[v] - s3[v];                                                 \
    }                                                                          \
    for (int k = 0; k < 4; k++) { /* (B^T d) B */                              \
        const T *restrict t = tmp + k * n;                                     \
        T *restrict v0 = V + (4 * k) * plane, *restrict v1 = v0 + plane;       \
        T *restrict v2 = v1 + plane, *restrict v3 = v2 + plane;                \
        for (ptrdiff_t tx = 0; tx < ntiles; tx++) {                            \
            const T d0 = t[2 * tx], d1 = t[2 * tx + 1];                        \
            const T d2 = t[2 * tx + 2], d3 = t[2 * tx + 3];                    \
            v0[tx] = d0 - d2;                                                  \
            v1[tx] = d1 + d2;                                                  \
            v2[tx] = d2 - d1;                                                  \
            v3[tx] = d1 - d3;                                                  \
        }                                                                      \
    }                                                                          \
}

/* One row of tiles: M[xi * plane + tx * ldc + c] (c < nc) -> the 2x2 output
 * A^T m A of tile tx at P[(r * ldrow + 2 * tx + j) * ldc + c], r, j in {0, 1}
 * (P's rows hold 2 * ntiles pixels: an odd last column is junk). */
#define FC_DEFINE_WINO_OUTPUT(NAME, T, ATTR)                                   \
ATTR static void NAME(const T *restrict M, ptrdiff_t plane, ptrdiff_t ldc,     \
                      ptrdiff_t nc, ptrdiff_t ntiles, T *restrict P,           \
                      ptrdiff_t ldrow)                                         \
{                                                                              \
    for (ptrdiff_t tx = 0; tx < ntiles; tx++) {                                \
        const T *restrict m = M + tx * ldc;                                    \
        T *restrict p00 = P + (2 * tx) * ldc, *restrict p01 = p00 + ldc;       \
        T *restrict p10 = p00 + ldrow * ldc, *restrict p11 = p10 + ldc;        \
        for (ptrdiff_t c = 0; c < nc; c++) {                                   \
            const T m0 = m[c], m1 = m[plane + c], m2 = m[2 * plane + c];       \
            const T m3 = m[3 * plane + c], m4 = m[4 * plane + c];              \
            const T m5 = m[5 * plane + c], m6 = m[6 * plane + c];              \
            const T m7 = m[7 * plane + c], m8 = m[8 * plane + c];              \
            const T m9 = m[9 * plane + c], m10 = m[10 * plane + c];            \
            const T m11 = m[11 * plane + c], m12 = m[12 * plane + c];          \
            const T m13 = m[13 * plane + c], m14 = m[14 * plane + c];          \
            const T m15 = m[15 * plane + c];                                   \
            const T u0 = m0 + m4 + m8, u1 = m1 + m5 + m9;                      \
            const T u2 = m2 + m6 + m10, u3 = m3 + m7 + m11;                    \
            const T w0 = m4 - m8 - m12, w1 = m5 - m9 - m13;                    \
            const T w2 = m6 - m10 - m14, w3 = m7 - m11 - m15;                  \
            p00[c] = u0 + u1 + u2;                                             \
            p01[c] = u1 - u2 - u3;                                             \
            p10[c] = w0 + w1 + w2;                                             \
            p11[c] = w1 - w2 - w3;                                             \
        }                                                                      \
    }                                                                          \
}

FC_DEFINE_WINO_INPUT(fc_wino_input_f32_base, float, )
FC_DEFINE_WINO_INPUT(fc_wino_input_f64_base, double, )
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f32_base, float, )
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f64_base, double, )

#if FC_X86_DISPATCH
FC_DEFINE_WINO_INPUT(fc_wino_input_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_WINO_INPUT(fc_wino_input_f64_avx2, double, FC_TARGET_AVX2)
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f64_avx2, double, FC_TARGET_AVX2)
#define FC_WINO_PICK(NAME, ARGS)                                               \
    do {                                                                       \
        if (fc_cpu_has_avx2_fma()) NAME##_avx2 ARGS; else NAME##_base ARGS;    \
    } while (0)
#else
#define FC_WINO_PICK(NAME, ARGS) NAME##_base ARGS
#endif

static void fc_wino_input_f32(const float *s, ptrdiff_t ld, ptrdiff_t ntiles, float *V,
                              ptrdiff_t plane, float *tmp)
{
    FC_WINO_PICK(fc_wino_input_f32, (s, ld, ntiles, V, plane, tmp));
}

static void fc_wino_input_f64(const double *s, ptrdiff_t ld, ptrdiff_t ntiles, double *V,
                              ptrdiff_t plane, double *tmp)
{
    FC_WINO_PICK(fc_wino_input_f64, (s, ld, ntiles, V, plane, tmp));
}

static void fc_wino_output_f32(const float *M, ptrdiff_t plane, ptrdiff_t ldc, ptrdiff_t nc,
                               ptrdiff_t ntiles, float *P, ptrdiff_t ldrow)
{
    FC_WINO_PICK(fc_wino_output_f32, (M, plane, ldc, nc, ntiles, P, ldrow));
}

static void fc_wino_output_f64(const double *M, ptrdiff_t plane, ptrdiff_t ldc, ptrdiff_t nc,
                               ptrdiff_t ntiles, double *P, ptrdiff_t ldrow)
{
    FC_WINO_PICK(fc_wino_output_f64, (M, plane, ldc, nc, ntiles, P, ldrow));
}

/* dst[i] = src[i] for i < n; returns 0 when a value is NaN or inf (its
 * exponent bits all set), else 1. An integer OR-reduction: it vectorises. */
#define FC_DEFINE_COPY_FINITE(NAME, T, U, EXP)                                 \
static int NAME(T *restrict dst, const T *restrict src, ptrdiff_t n)          \
{                                                                              \
    U bad = 0;                                                                 \
    for (ptrdiff_t i = 0; i < n; i++) {                                        \
        U bits;                                                                \
        memcpy(&bits, src + i, sizeof bits);                                   \
        dst[i] = src[i];                                                       \
        bad |= (U)((bits & (EXP)) == (EXP));                                   \
    }                                                                          \
    return bad == 0;                                                           \
}

FC_DEFINE_COPY_FINITE(fc_copy_finite_f32, float, uint32_t, UINT32_C(0x7f800000))
FC_DEFINE_COPY_FINITE(fc_copy_finite_f64, double, uint64_t, UINT64_C(0x7ff0000000000000))

/* Ask for the cache lines of [p, p + bytes) ahead of their use. */
static inline void fc_prefetch_range(const void *p, ptrdiff_t bytes)
{
#if defined(__GNUC__) || defined(__clang__)
    const char *c = (const char *)p;
    for (ptrdiff_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 3);
#else
    (void)p; (void)bytes;
#endif
}

#endif
