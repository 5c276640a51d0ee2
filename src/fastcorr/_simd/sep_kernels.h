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
FS_DEFINE(f32_avx2_strips, float, FC_TARGET_AVX2)
FS_DEFINE(f64_avx2_strips, double, FC_TARGET_AVX2)

/* fs_row on AVX2: blocks of eight vectors (eight sums in flight: with the
 * four of the generic block, each tap waited on the FMA latency, half the
 * FMA rate), then single vectors, then the generic loop's scalar tail. */
#define FS_DEFINE_ROW_AVX2(SUFFIX, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO) \
FC_TARGET_AVX2 static void fs_row_##SUFFIX##_avx2(T *out, const T *ext, const T *v, \
                                                  ptrdiff_t kw, ptrdiff_t n)    \
{                                                                               \
    ptrdiff_t t = 0, k;                                                         \
    for (; t + 8 * LANES <= n; t += 8 * LANES) {                                \
        VT a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO();                  \
        VT a4 = ZERO(), a5 = ZERO(), a6 = ZERO(), a7 = ZERO();                  \
        const T *p = ext + t;                                                   \
        for (k = 0; k < kw; k++) {                                              \
            const VT c = BCAST(v + k);                                          \
            const T *q = p + k;                                                 \
            a0 = FMA(c, LOADU(q), a0); a1 = FMA(c, LOADU(q + LANES), a1);       \
            a2 = FMA(c, LOADU(q + 2 * LANES), a2);                              \
            a3 = FMA(c, LOADU(q + 3 * LANES), a3);                              \
            a4 = FMA(c, LOADU(q + 4 * LANES), a4);                              \
            a5 = FMA(c, LOADU(q + 5 * LANES), a5);                              \
            a6 = FMA(c, LOADU(q + 6 * LANES), a6);                              \
            a7 = FMA(c, LOADU(q + 7 * LANES), a7);                              \
        }                                                                       \
        STOREU(out + t, a0); STOREU(out + t + LANES, a1);                       \
        STOREU(out + t + 2 * LANES, a2); STOREU(out + t + 3 * LANES, a3);       \
        STOREU(out + t + 4 * LANES, a4); STOREU(out + t + 5 * LANES, a5);       \
        STOREU(out + t + 6 * LANES, a6); STOREU(out + t + 7 * LANES, a7);       \
    }                                                                           \
    for (; t + LANES <= n; t += LANES) {                                        \
        VT a0 = ZERO();                                                         \
        for (k = 0; k < kw; k++) a0 = FMA(BCAST(v + k), LOADU(ext + t + k), a0); \
        STOREU(out + t, a0);                                                    \
    }                                                                           \
    if (t < n) fs_row_##SUFFIX##_avx2_strips(out + t, ext + t, v, kw, n - t);   \
}
FS_DEFINE_ROW_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                   _mm256_fmadd_ps, _mm256_setzero_ps)
FS_DEFINE_ROW_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                   _mm256_fmadd_pd, _mm256_setzero_pd)

/* fs_col on AVX2: register blocks of 8 vectors that sum every kernel row
 * before one store (the strips above reload and store their outputs once
 * per four rows), each output's rows in order (j ascending, one FMA each),
 * as fs_col3 sums them. Kernels of more than FS_COL_MAXK rows keep the
 * strips. */
#define FS_COL_MAXK 64
#define FS_DEFINE_COL_AVX2(SUFFIX, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ADD, ZERO) \
FC_TARGET_AVX2 static void fs_col_##SUFFIX##_avx2(T *out, const T *const *rows, const T *u, \
                                                  ptrdiff_t kh, ptrdiff_t n, int accumulate) \
{                                                                               \
    ptrdiff_t t = 0, j, i;                                                      \
    if (kh > FS_COL_MAXK) {                                                     \
        fs_col_##SUFFIX##_avx2_strips(out, rows, u, kh, n, accumulate);         \
        return;                                                                 \
    }                                                                           \
    for (; t + 8 * LANES <= n; t += 8 * LANES) {                                \
        /* eight sums in flight: the FMA latency hidden (four were half the */ \
        /* FMA rate)                                                         */ \
        VT a0, a1, a2, a3, a4, a5, a6, a7;                                      \
        if (accumulate) {                                                       \
            a0 = LOADU(out + t); a1 = LOADU(out + t + LANES);                   \
            a2 = LOADU(out + t + 2 * LANES); a3 = LOADU(out + t + 3 * LANES);   \
            a4 = LOADU(out + t + 4 * LANES); a5 = LOADU(out + t + 5 * LANES);   \
            a6 = LOADU(out + t + 6 * LANES); a7 = LOADU(out + t + 7 * LANES);   \
        } else {                                                                \
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = ZERO();                     \
        }                                                                       \
        for (j = 0; j < kh; j++) {                                              \
            const VT c = BCAST(u + j);                                          \
            const T *p = rows[j] + t;                                           \
            a0 = FMA(c, LOADU(p), a0); a1 = FMA(c, LOADU(p + LANES), a1);       \
            a2 = FMA(c, LOADU(p + 2 * LANES), a2);                              \
            a3 = FMA(c, LOADU(p + 3 * LANES), a3);                              \
            a4 = FMA(c, LOADU(p + 4 * LANES), a4);                              \
            a5 = FMA(c, LOADU(p + 5 * LANES), a5);                              \
            a6 = FMA(c, LOADU(p + 6 * LANES), a6);                              \
            a7 = FMA(c, LOADU(p + 7 * LANES), a7);                              \
        }                                                                       \
        STOREU(out + t, a0); STOREU(out + t + LANES, a1);                       \
        STOREU(out + t + 2 * LANES, a2); STOREU(out + t + 3 * LANES, a3);       \
        STOREU(out + t + 4 * LANES, a4); STOREU(out + t + 5 * LANES, a5);       \
        STOREU(out + t + 6 * LANES, a6); STOREU(out + t + 7 * LANES, a7);       \
    }                                                                           \
    for (; t + LANES <= n; t += LANES) {                                        \
        VT a0 = accumulate ? LOADU(out + t) : ZERO();                           \
        for (j = 0; j < kh; j++) a0 = FMA(BCAST(u + j), LOADU(rows[j] + t), a0); \
        STOREU(out + t, a0);                                                    \
    }                                                                           \
    for (; t < n; t++) {                                                        \
        T s = accumulate ? out[t] : (T)0;                                       \
        for (j = 0; j < kh; j++) s += u[j] * rows[j][t];                        \
        out[t] = s;                                                             \
    }                                                                           \
    (void)i;                                                                    \
}
/* fs_col3: three output rows at once, out[a][t] (+)= sum_j u[j] * rows[a + j][t]
 * (a = 0, 1, 2; rows: kh + 2 of them): each row vector is loaded once and
 * feeds the (up to) three outputs it meets, 3 rows x 4 vectors of sums in
 * registers, so the rows of T are read from cache a third as often. Each
 * output sums its rows in fs_col's order (j ascending, one FMA each).
 * Returns the columns done: all of them (the last block overlapping the one
 * before) when not accumulating, else the whole blocks. */
#define FS3_ROW(T, VT, LANES, LOADU, FMA, A0, A1, A2)                           \
    {                                                                           \
        const T *p = rows[i] + t;                                               \
        VT xv;                                                                  \
        xv = LOADU(p);                                                          \
        if (A0) a00 = FMA(c0, xv, a00);                                         \
        if (A1) a10 = FMA(c1, xv, a10);                                         \
        if (A2) a20 = FMA(c2, xv, a20);                                         \
        xv = LOADU(p + LANES);                                                  \
        if (A0) a01 = FMA(c0, xv, a01);                                         \
        if (A1) a11 = FMA(c1, xv, a11);                                         \
        if (A2) a21 = FMA(c2, xv, a21);                                         \
        xv = LOADU(p + 2 * LANES);                                              \
        if (A0) a02 = FMA(c0, xv, a02);                                         \
        if (A1) a12 = FMA(c1, xv, a12);                                         \
        if (A2) a22 = FMA(c2, xv, a22);                                         \
        xv = LOADU(p + 3 * LANES);                                              \
        if (A0) a03 = FMA(c0, xv, a03);                                         \
        if (A1) a13 = FMA(c1, xv, a13);                                         \
        if (A2) a23 = FMA(c2, xv, a23);                                         \
    }
#define FS_DEFINE_COL3_AVX2(SUFFIX, T, VT, LANES, LOADU, STOREU, BCAST, FMA, ZERO) \
FC_TARGET_AVX2 static ptrdiff_t fs_col3_##SUFFIX##_avx2(T *const *out, const T *const *rows, \
                                                     const T *u, ptrdiff_t kh, ptrdiff_t n, \
                                                     int accumulate)            \
{                                                                               \
    const ptrdiff_t width = 4 * LANES;                                          \
    ptrdiff_t t = 0, i, tend, t0;                                               \
    if (n < width) return 0;                                                    \
    tend = accumulate ? n - n % width : n;                                      \
    for (t0 = 0; t0 < tend; t0 += width) {                                      \
        VT a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23;          \
        t = t0 + width <= n ? t0 : n - width;                                   \
        if (accumulate) {                                                       \
            a00 = LOADU(out[0] + t); a01 = LOADU(out[0] + t + LANES);           \
            a02 = LOADU(out[0] + t + 2 * LANES); a03 = LOADU(out[0] + t + 3 * LANES); \
            a10 = LOADU(out[1] + t); a11 = LOADU(out[1] + t + LANES);           \
            a12 = LOADU(out[1] + t + 2 * LANES); a13 = LOADU(out[1] + t + 3 * LANES); \
            a20 = LOADU(out[2] + t); a21 = LOADU(out[2] + t + LANES);           \
            a22 = LOADU(out[2] + t + 2 * LANES); a23 = LOADU(out[2] + t + 3 * LANES); \
        } else {                                                                \
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = ZERO();             \
            a20 = a21 = a22 = a23 = ZERO();                                     \
        }                                                                       \
        for (i = 0; i < kh + 2; i++) {                                          \
            const VT c0 = i < kh ? BCAST(u + i) : ZERO();                       \
            const VT c1 = (i >= 1 && i - 1 < kh) ? BCAST(u + i - 1) : ZERO();   \
            const VT c2 = (i >= 2 && i - 2 < kh) ? BCAST(u + i - 2) : ZERO();   \
            if (i >= 2 && i < kh) FS3_ROW(T, VT, LANES, LOADU, FMA, 1, 1, 1)    \
            else FS3_ROW(T, VT, LANES, LOADU, FMA, i < kh, i >= 1 && i - 1 < kh, i >= 2) \
        }                                                                       \
        STOREU(out[0] + t, a00); STOREU(out[0] + t + LANES, a01);               \
        STOREU(out[0] + t + 2 * LANES, a02); STOREU(out[0] + t + 3 * LANES, a03); \
        STOREU(out[1] + t, a10); STOREU(out[1] + t + LANES, a11);               \
        STOREU(out[1] + t + 2 * LANES, a12); STOREU(out[1] + t + 3 * LANES, a13); \
        STOREU(out[2] + t, a20); STOREU(out[2] + t + LANES, a21);               \
        STOREU(out[2] + t + 2 * LANES, a22); STOREU(out[2] + t + 3 * LANES, a23); \
    }                                                                           \
    return tend;                                                                \
}
FS_DEFINE_COL3_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                    _mm256_fmadd_ps, _mm256_setzero_ps)
FS_DEFINE_COL3_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                    _mm256_fmadd_pd, _mm256_setzero_pd)
FS_DEFINE_COL_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                   _mm256_fmadd_ps, _mm256_add_ps, _mm256_setzero_ps)
FS_DEFINE_COL_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                   _mm256_fmadd_pd, _mm256_add_pd, _mm256_setzero_pd)
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

/* Three output rows o[0..2] from rows r[0 .. kh + 1] (kh <= FS_COL3_MAXK):
 * fs_col3 on AVX2 for what it serves, fs_col for the rest of each row. */
#define FS_COL3_MAXK 64
#if FC_X86_DISPATCH
#define FS_COL3_AVX2(SUFFIX) if (fc_cpu_has_avx2_fma()) done = fs_col3_##SUFFIX##_avx2(o, r, u, kh, n, a);
#else
#define FS_COL3_AVX2(SUFFIX)
#endif
#define FS_DEFINE_COL3(SUFFIX, T)                                               \
static void fs_col3_##SUFFIX(T *const *o, const T *const *r, const T *u, ptrdiff_t kh, \
                             ptrdiff_t n, int a)                                \
{                                                                               \
    ptrdiff_t done = 0;                                                         \
    FS_COL3_AVX2(SUFFIX)                                                        \
    if (done < n)                                                               \
        for (int k = 0; k < 3; k++) {                                           \
            const T *rr[FS_COL3_MAXK];                                          \
            for (ptrdiff_t j = 0; j < kh; j++) rr[j] = r[k + j] + done;         \
            fs_col_##SUFFIX(o[k] + done, rr, u, kh, n - done, a);               \
        }                                                                       \
}
FS_DEFINE_COL3(f32, float)
FS_DEFINE_COL3(f64, double)

#endif
