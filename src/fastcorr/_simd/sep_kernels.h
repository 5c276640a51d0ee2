/*
 * fastcorr: inner loops of the separable method (two 1-D passes), plain C.
 *
 *   fs_row: out[t]  = sum_k v[k] * ext[t + k]              (horizontal pass)
 *   fs_col: out[t] (+)= sum_j u[j] * rows[j][t]            (vertical pass)
 *
 * fs_row works on register blocks of FS_NB outputs: the block's accumulators
 * stay in registers while every tap streams over them, so each tap costs one
 * load and one fused multiply-add per output. fs_col streams whole rows
 * (see its comment). The default build is baseline
 * x86-64; on x86 with GCC/Clang an AVX2+FMA copy is compiled with a target
 * attribute and chosen once at run time (never -march=native).
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_SEP_KERNELS_H
#define FASTCORR_SEP_KERNELS_H

#include <stddef.h>

#define FS_NB 32
#define FS_STRIP 512
#if defined(__GNUC__) || defined(__clang__)
#define FS_RESTRICT __restrict__
#else
#define FS_RESTRICT
#endif

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#define FS_DEFINE(SUFFIX, T, ATTR)                                              \
ATTR static void fs_row_##SUFFIX(T *out, const T *ext, const T *v,              \
                                 ptrdiff_t kw, ptrdiff_t n)                     \
{                                                                               \
    ptrdiff_t t = 0, k, i;                                                      \
    for (; t + FS_NB <= n; t += FS_NB) {                                        \
        T acc[FS_NB];                                                           \
        for (i = 0; i < FS_NB; i++) acc[i] = 0;                                 \
        for (k = 0; k < kw; k++) {                                              \
            const T c = v[k];                                                   \
            const T *p = ext + t + k;                                           \
            for (i = 0; i < FS_NB; i++) acc[i] += c * p[i];                     \
        }                                                                       \
        for (i = 0; i < FS_NB; i++) out[t + i] = acc[i];                        \
    }                                                                           \
    for (; t < n; t++) {                                                        \
        T s = 0;                                                                \
        for (k = 0; k < kw; k++) s += v[k] * ext[t + k];                        \
        out[t] = s;                                                             \
    }                                                                           \
}                                                                               \
ATTR static void fs_col_##SUFFIX(T *out, const T *const *rows, const T *u,      \
                                 ptrdiff_t kh, ptrdiff_t n, int accumulate)     \
{                                                                               \
    /* Strips of FS_STRIP outputs stay in L1 while the kernel rows stream    */ \
    /* through them four at a time (5 loads + 1 store per 4 multiply-adds); */ \
    /* each T row is read contiguously, so few pages are touched at once.   */ \
    ptrdiff_t t0, t1, j, i;                                                     \
    for (t0 = 0; t0 < n; t0 += FS_STRIP) {                                      \
        T *FS_RESTRICT o = out + t0;                                            \
        t1 = n - t0 < FS_STRIP ? n - t0 : FS_STRIP;                             \
        if (!accumulate) for (i = 0; i < t1; i++) o[i] = 0;                     \
        for (j = 0; j + 4 <= kh; j += 4) {                                      \
            const T *FS_RESTRICT r0 = rows[j] + t0;                             \
            const T *FS_RESTRICT r1 = rows[j + 1] + t0;                         \
            const T *FS_RESTRICT r2 = rows[j + 2] + t0;                         \
            const T *FS_RESTRICT r3 = rows[j + 3] + t0;                         \
            const T c0 = u[j], c1 = u[j + 1], c2 = u[j + 2], c3 = u[j + 3];     \
            for (i = 0; i < t1; i++)                                            \
                o[i] += (c0 * r0[i] + c1 * r1[i]) + (c2 * r2[i] + c3 * r3[i]);  \
        }                                                                       \
        for (; j < kh; j++) {                                                   \
            const T *FS_RESTRICT r0 = rows[j] + t0;                             \
            const T c0 = u[j];                                                  \
            for (i = 0; i < t1; i++) o[i] += c0 * r0[i];                        \
        }                                                                       \
    }                                                                           \
}

FS_DEFINE(f32_base, float, )
FS_DEFINE(f64_base, double, )
#if FC_X86_DISPATCH
FS_DEFINE(f32_avx2, float, FC_TARGET_AVX2)
FS_DEFINE(f64_avx2, double, FC_TARGET_AVX2)
#endif

#if FC_X86_DISPATCH
#define FS_PICK(NAME, SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? NAME##_##SUFFIX##_avx2(__VA_ARGS__) : NAME##_##SUFFIX##_base(__VA_ARGS__))
#else
#define FS_PICK(NAME, SUFFIX, ...) NAME##_##SUFFIX##_base(__VA_ARGS__)
#endif

static void fs_row_f32(float *o, const float *e, const float *v, ptrdiff_t kw, ptrdiff_t n)
{ FS_PICK(fs_row, f32, o, e, v, kw, n); }
static void fs_row_f64(double *o, const double *e, const double *v, ptrdiff_t kw, ptrdiff_t n)
{ FS_PICK(fs_row, f64, o, e, v, kw, n); }
static void fs_col_f32(float *o, const float *const *r, const float *u, ptrdiff_t kh, ptrdiff_t n, int a)
{ FS_PICK(fs_col, f32, o, r, u, kh, n, a); }
static void fs_col_f64(double *o, const double *const *r, const double *u, ptrdiff_t kh, ptrdiff_t n, int a)
{ FS_PICK(fs_col, f64, o, r, u, kh, n, a); }

#endif
