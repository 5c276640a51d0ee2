/*
 * fastcorr: inner loops of the separable method (two 1-D passes), plain C.
 *
 *   fs_row: out[t]  = sum_k v[k] * ext[t + k]              (horizontal pass)
 *   fs_col: out[t] (+)= sum_j u[j] * rows[j][t]            (vertical pass)
 *
 * Both work on register blocks of FS_NB outputs: the block's accumulators
 * stay in registers while every tap streams over them, so each tap costs one
 * load and one fused multiply-add per output. The default build is baseline
 * x86-64; on x86 with GCC/Clang an AVX2+FMA copy is compiled with a target
 * attribute and chosen once at run time (never -march=native).
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_SEP_KERNELS_H
#define FASTCORR_SEP_KERNELS_H

#include <stddef.h>

#define FS_NB 32

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FS_X86 1
#define FS_AVX2 __attribute__((target("avx2,fma")))
#else
#define FS_X86 0
#endif

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
    ptrdiff_t t = 0, j, i;                                                      \
    for (; t + FS_NB <= n; t += FS_NB) {                                        \
        T acc[FS_NB];                                                           \
        if (accumulate) { for (i = 0; i < FS_NB; i++) acc[i] = out[t + i]; }    \
        else { for (i = 0; i < FS_NB; i++) acc[i] = 0; }                        \
        for (j = 0; j < kh; j++) {                                              \
            const T c = u[j];                                                   \
            const T *p = rows[j] + t;                                           \
            for (i = 0; i < FS_NB; i++) acc[i] += c * p[i];                     \
        }                                                                       \
        for (i = 0; i < FS_NB; i++) out[t + i] = acc[i];                        \
    }                                                                           \
    for (; t < n; t++) {                                                        \
        T s = accumulate ? out[t] : (T)0;                                       \
        for (j = 0; j < kh; j++) s += u[j] * rows[j][t];                        \
        out[t] = s;                                                             \
    }                                                                           \
}

FS_DEFINE(f32_base, float, )
FS_DEFINE(f64_base, double, )
#if FS_X86
FS_DEFINE(f32_avx2, float, FS_AVX2)
FS_DEFINE(f64_avx2, double, FS_AVX2)
#endif

static int fs_use_avx2(void)
{
#if FS_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

#if FS_X86
#define FS_PICK(NAME, SUFFIX, ...) \
    (fs_use_avx2() ? NAME##_##SUFFIX##_avx2(__VA_ARGS__) : NAME##_##SUFFIX##_base(__VA_ARGS__))
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
