/*
 * fastcorr: the transforms of conv2d's Winograd F(2x2, 3x3) method (see
 * _winograd.pyx for the algebra). Plain C the compiler vectorises: a
 * baseline x86-64 build plus an AVX2 twin (the same body under a target
 * attribute) chosen at run time. Thread-safe; knows nothing of Python.
 */
#ifndef FASTCORR_WINOGRAD_KERNELS_H
#define FASTCORR_WINOGRAD_KERNELS_H

#include <string.h>

#include "simd_kernels.h"

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

/* One row of tiles of grad_output, for the weight gradient: from the 2 rows
 * of G (pixel-major, 2 * ntiles pixels a row, ldc apart: row 1 starts
 * 2 * ntiles * ldc after row 0), Z[xi * plane + tx * ldc + c] = (A g A^T)[xi]
 * of tile tx, A = (A^T)^T = [1 0; 1 1; 1 -1; 0 -1]. */
#define FC_DEFINE_WINO_GRADOUT(NAME, T, ATTR)                                  \
ATTR static void NAME(const T *restrict G, ptrdiff_t ldc, ptrdiff_t nc,       \
                      ptrdiff_t ntiles, T *restrict Z, ptrdiff_t plane)        \
{                                                                              \
    const ptrdiff_t ldrow = 2 * ntiles * ldc;                                  \
    for (ptrdiff_t tx = 0; tx < ntiles; tx++) {                                \
        const T *restrict g0 = G + 2 * tx * ldc, *restrict g1 = g0 + ldc;      \
        const T *restrict g2 = g0 + ldrow, *restrict g3 = g2 + ldc;            \
        T *restrict z = Z + tx * ldc;                                          \
        for (ptrdiff_t c = 0; c < nc; c++) {                                   \
            /* rows: h[a][s] = (A g)[a][s] */                                  \
            const T h00 = g0[c], h01 = g1[c];                                  \
            const T h10 = g0[c] + g2[c], h11 = g1[c] + g3[c];                  \
            const T h20 = g0[c] - g2[c], h21 = g1[c] - g3[c];                  \
            const T h30 = -g2[c], h31 = -g3[c];                                \
            z[c] = h00;                                                        \
            z[plane + c] = h00 + h01;                                          \
            z[2 * plane + c] = h00 - h01;                                      \
            z[3 * plane + c] = -h01;                                           \
            z[4 * plane + c] = h10;                                            \
            z[5 * plane + c] = h10 + h11;                                      \
            z[6 * plane + c] = h10 - h11;                                      \
            z[7 * plane + c] = -h11;                                           \
            z[8 * plane + c] = h20;                                            \
            z[9 * plane + c] = h20 + h21;                                      \
            z[10 * plane + c] = h20 - h21;                                     \
            z[11 * plane + c] = -h21;                                          \
            z[12 * plane + c] = h30;                                           \
            z[13 * plane + c] = h30 + h31;                                     \
            z[14 * plane + c] = h30 - h31;                                     \
            z[15 * plane + c] = -h31;                                          \
        }                                                                      \
    }                                                                          \
}

FC_DEFINE_WINO_INPUT(fc_wino_input_f32_base, float, )
FC_DEFINE_WINO_INPUT(fc_wino_input_f64_base, double, )
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f32_base, float, )
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f64_base, double, )
FC_DEFINE_WINO_GRADOUT(fc_wino_gradout_f32_base, float, )
FC_DEFINE_WINO_GRADOUT(fc_wino_gradout_f64_base, double, )

#if FC_X86_DISPATCH
FC_DEFINE_WINO_INPUT(fc_wino_input_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_WINO_INPUT(fc_wino_input_f64_avx2, double, FC_TARGET_AVX2)
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_WINO_OUTPUT(fc_wino_output_f64_avx2, double, FC_TARGET_AVX2)
FC_DEFINE_WINO_GRADOUT(fc_wino_gradout_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_WINO_GRADOUT(fc_wino_gradout_f64_avx2, double, FC_TARGET_AVX2)
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

static void fc_wino_gradout_f32(const float *G, ptrdiff_t ldc, ptrdiff_t nc, ptrdiff_t ntiles,
                                float *Z, ptrdiff_t plane)
{
    FC_WINO_PICK(fc_wino_gradout_f32, (G, ldc, nc, ntiles, Z, plane));
}

static void fc_wino_gradout_f64(const double *G, ptrdiff_t ldc, ptrdiff_t nc, ptrdiff_t ntiles,
                                double *Z, ptrdiff_t plane)
{
    FC_WINO_PICK(fc_wino_gradout_f64, (G, ldc, nc, ntiles, Z, plane));
}


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
