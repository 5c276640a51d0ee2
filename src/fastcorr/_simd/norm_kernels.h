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
#include <string.h>

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

/* ------------------------------------------------------------------------
 * The fused sweep's passes (fastcorr.methods.normalized), for a rank-1
 * kernel outer(u, v):
 *
 *   nk_row:  out[t] = sum_k v[k] * ext[t + k], t < n          (a row pass)
 *   nk_col2: no[t] = sum_j u[j] * rp[j][t], do[t] = the same over rc[j]
 *            (both vertical passes in one sweep over the ring of rows)
 *   nk_sden: the row pass of a certainty row that is 1 nearly everywhere:
 *            out[t] = vsum - sum over the i where ec[i] != 1 of
 *            (1 - ec[i]) * v[i - t], a scatter of the reversed kernel
 *            ``vr`` (zero-padded to kwp taps) around each such pixel;
 *            out must have kw - 1 writable elements before it and kwp
 *            after n. Returns 1 (out unfinished) past ``cap`` such pixels.
 *
 * The AVX2 copies keep a block of outputs in registers while the taps (or
 * rows) stream over them: one load and one fused multiply-add per tap and
 * vector, eight independent accumulators (an FMA's latency is four
 * cycles, two issue per cycle). A last partial vector is recomputed over
 * the previous one's outputs (the same values stored again).
 * ------------------------------------------------------------------------ */
#define NK_SWEEP_BASE(SUFFIX, T)                                                     \
static void nk_row_##SUFFIX##_base(T *out, const T *ext, const T *v, ptrdiff_t kw,   \
                                   ptrdiff_t n)                                      \
{                                                                                    \
    ptrdiff_t t, k;                                                                  \
    for (t = 0; t < n; t++) out[t] = 0;                                              \
    for (k = 0; k < kw; k++) {                                                       \
        const T c = v[k];                                                            \
        const T *NK_RESTRICT e = ext + k;                                            \
        T *NK_RESTRICT o = out;                                                      \
        for (t = 0; t < n; t++) o[t] += c * e[t];                                    \
    }                                                                                \
}                                                                                    \
static void nk_col2_##SUFFIX##_base(T *no, T *dno, const T *const *rp,               \
                                    const T *const *rc, const T *u, ptrdiff_t kh,    \
                                    ptrdiff_t n)                                     \
{                                                                                    \
    ptrdiff_t t, j;                                                                  \
    for (t = 0; t < n; t++) { no[t] = 0; dno[t] = 0; }                               \
    for (j = 0; j < kh; j++) {                                                       \
        const T c = u[j];                                                            \
        const T *NK_RESTRICT a = rp[j];                                              \
        const T *NK_RESTRICT b = rc[j];                                              \
        T *NK_RESTRICT o = no;                                                       \
        T *NK_RESTRICT d = dno;                                                      \
        for (t = 0; t < n; t++) { o[t] += c * a[t]; d[t] += c * b[t]; }              \
    }                                                                                \
}                                                                                    \
static void nk_col2x4_##SUFFIX##_base(T *const *no, T *const *dno, const T *const *rp,  \
                                      const T *const *rc, const T *u, ptrdiff_t kh,  \
                                      ptrdiff_t n)                                   \
{                                                                                    \
    ptrdiff_t r;                                                                     \
    for (r = 0; r < 4; r++) nk_col2_##SUFFIX##_base(no[r], dno[r], rp + r, rc + r, u, kh, n); \
}                                                                                    \
static int nk_sden_##SUFFIX##_base(T *out, const T *ec, ptrdiff_t next, const T *vr, \
                                   ptrdiff_t kw, ptrdiff_t kwp, T vsum, ptrdiff_t n, \
                                   ptrdiff_t cap)                                    \
{                                                                                    \
    ptrdiff_t i, j, cnt = 0;                                                         \
    for (i = 0; i < n; i++) out[i] = vsum;                                           \
    for (i = 0; i < next; i++) {                                                     \
        if (ec[i] != (T)1) {                                                         \
            const T w = (T)1 - ec[i];                                                \
            T *o = out + i - kw + 1;                                                 \
            if (++cnt > cap) return 1;                                               \
            for (j = 0; j < kwp; j++) o[j] -= w * vr[j];                             \
        }                                                                            \
    }                                                                                \
    return 0;                                                                        \
}

NK_SWEEP_BASE(f32, float)
NK_SWEEP_BASE(f64, double)

#if FC_X86_DISPATCH
#include <immintrin.h>

/* VT: the vector type, L lanes; the macros name the intrinsics. NK_PF: how
 * many vectors ahead the vertical passes prefetch their 2 (kh + 3) rows. */
#ifndef NK_PF
#define NK_PF 16
#endif
/* Whether the vertical passes prefetch their ring rows (set by the caller:
 * fastcorr.methods.normalized.COL_PREFETCH). */
static int nk_col_pf = 0;
/* The four output rows' sums at vector t (both inputs): the body shared by
 * nk_col2x4 and nk_col2x4fin (expects rp, rc, u, kh, t, i, a, b, w, p0..p3,
 * c0..c3 in scope). */
#define NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                  \
        if (nk_col_pf && (t & (64 / (ptrdiff_t)sizeof(T) - 1)) < L)  /* once a line */ \
            for (i = 0; i < kh + 3; i++) { /* the ring rows' lines NK_PF ahead */    \
                _mm_prefetch((const char *)(rp[i] + t + NK_PF * L), _MM_HINT_T0);    \
                _mm_prefetch((const char *)(rc[i] + t + NK_PF * L), _MM_HINT_T0);    \
            }                                                                        \
        /* head: ring rows 0..2 */                                                   \
        a = LOADU(rp[0] + t); b = LOADU(rc[0] + t); w = BCAST(u);                    \
        p0 = FMA(w, a, p0); c0 = FMA(w, b, c0);                                      \
        a = LOADU(rp[1] + t); b = LOADU(rc[1] + t);                                  \
        w = BCAST(u + 1); p0 = FMA(w, a, p0); c0 = FMA(w, b, c0);                    \
        w = BCAST(u); p1 = FMA(w, a, p1); c1 = FMA(w, b, c1);                        \
        a = LOADU(rp[2] + t); b = LOADU(rc[2] + t);                                  \
        w = BCAST(u + 2); p0 = FMA(w, a, p0); c0 = FMA(w, b, c0);                    \
        w = BCAST(u + 1); p1 = FMA(w, a, p1); c1 = FMA(w, b, c1);                    \
        w = BCAST(u); p2 = FMA(w, a, p2); c2 = FMA(w, b, c2);                        \
        {   /* the weights of rows 1..3 slide along: one broadcast a ring row */     \
            VT w1 = BCAST(u + 2), w2 = BCAST(u + 1), w3 = BCAST(u);                  \
            for (i = 3; i < kh; i++) {                                               \
                a = LOADU(rp[i] + t); b = LOADU(rc[i] + t);                          \
                w = BCAST(u + i); p0 = FMA(w, a, p0); c0 = FMA(w, b, c0);            \
                p1 = FMA(w1, a, p1); c1 = FMA(w1, b, c1);                            \
                p2 = FMA(w2, a, p2); c2 = FMA(w2, b, c2);                            \
                p3 = FMA(w3, a, p3); c3 = FMA(w3, b, c3);                            \
                w3 = w2; w2 = w1; w1 = w;                                            \
            }                                                                        \
        }                                                                            \
        /* tail: ring rows kh..kh+2 */                                               \
        a = LOADU(rp[kh] + t); b = LOADU(rc[kh] + t);                                \
        w = BCAST(u + kh - 1); p1 = FMA(w, a, p1); c1 = FMA(w, b, c1);               \
        w = BCAST(u + kh - 2); p2 = FMA(w, a, p2); c2 = FMA(w, b, c2);               \
        w = BCAST(u + kh - 3); p3 = FMA(w, a, p3); c3 = FMA(w, b, c3);               \
        a = LOADU(rp[kh + 1] + t); b = LOADU(rc[kh + 1] + t);                        \
        w = BCAST(u + kh - 1); p2 = FMA(w, a, p2); c2 = FMA(w, b, c2);               \
        w = BCAST(u + kh - 2); p3 = FMA(w, a, p3); c3 = FMA(w, b, c3);               \
        a = LOADU(rp[kh + 2] + t); b = LOADU(rc[kh + 2] + t);                        \
        w = BCAST(u + kh - 1); p3 = FMA(w, a, p3); c3 = FMA(w, b, c3);

/* nk_row for row kernels of 3 to 5 taps (nk_row_shuffle): each vector of
 * the row loaded once, its shifts by 1 .. 4 elements made in registers
 * from it and the next vector (a cross-lane permute and in-lane shuffles),
 * instead of one unaligned load a tap (3 in 8 of which cross a cache line
 * and take two load slots: the loads bound the pass there). The same
 * multiply-adds in the same order: the same bits. 1024-wide rows in L1:
 * float64 5 taps 1.3x, 3-4 taps 1.3-1.4x; float32 1.1-1.2x. */
static int nk_row_shuffle = 1;
#define NK_SHIFTS_f64(A, B, S1, S2, S3)                                              \
    S2 = _mm256_permute2f128_pd((A), (B), 0x21);                                     \
    S1 = _mm256_shuffle_pd((A), S2, 5);                                              \
    S3 = _mm256_shuffle_pd(S2, (B), 5);
#define NK_SHIFT4_f64(A, B) (B)
#define NK_SHIFTS_f32(A, B, S1, S2, S3)                                              \
    {                                                                                \
        const __m256i a_ = _mm256_castps_si256(A);                                   \
        const __m256i x_ = _mm256_castps_si256(_mm256_permute2f128_ps((A), (B), 0x21)); \
        S1 = _mm256_castsi256_ps(_mm256_alignr_epi8(x_, a_, 4));                     \
        S2 = _mm256_castsi256_ps(_mm256_alignr_epi8(x_, a_, 8));                     \
        S3 = _mm256_castsi256_ps(_mm256_alignr_epi8(x_, a_, 12));                    \
    }
#define NK_SHIFT4_f32(A, B) _mm256_permute2f128_ps((A), (B), 0x21)
#define NK_SWEEP_AVX2(SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, CMPNE1, MOVEMASK) \
FC_TARGET_AVX2 static void nk_row_##SUFFIX##_avx2(T *out, const T *ext, const T *v,  \
                                                  ptrdiff_t kw, ptrdiff_t n)         \
{                                                                                    \
    ptrdiff_t t = 0, k, j;                                                           \
    if (nk_row_shuffle && kw >= 3 && kw <= 5) {                                      \
        /* each vector loaded once, its shifts made in registers (see above) */     \
        const VT w0 = BCAST(v), w1 = BCAST(v + 1), w2 = BCAST(v + 2);                \
        const VT w3 = BCAST(v + (kw > 3 ? 3 : 0)), w4 = BCAST(v + (kw > 4 ? 4 : 0)); \
        for (; t + 8 * L <= n; t += 8 * L) {                                         \
            VT A = LOADU(ext + t);                                                   \
            for (j = 0; j < 8; j++) {                                                \
                const T *p = ext + t + j * L;                                        \
                VT acc;                                                              \
                if (j < 7 || t + 9 * L + 1 <= n + kw) {                              \
                    const VT B = LOADU(p + L);                                       \
                    VT S1, S2, S3;                                                   \
                    NK_SHIFTS_##SUFFIX(A, B, S1, S2, S3)                             \
                    acc = FMA(w0, A, ZERO());                                        \
                    acc = FMA(w1, S1, acc);                                          \
                    acc = FMA(w2, S2, acc);                                          \
                    if (kw > 3) acc = FMA(w3, S3, acc);                              \
                    if (kw > 4) acc = FMA(w4, NK_SHIFT4_##SUFFIX(A, B), acc);        \
                    A = B;                                                           \
                } else { /* the row's last vectors: no read past its taps */        \
                    acc = ZERO();                                                    \
                    for (k = 0; k < kw; k++) acc = FMA(BCAST(v + k), LOADU(p + k), acc); \
                }                                                                    \
                STOREU(out + t + j * L, acc);                                        \
            }                                                                        \
        }                                                                            \
    }                                                                                \
    for (; t + 8 * L <= n; t += 8 * L) {                                             \
        VT a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO();                       \
        VT a4 = ZERO(), a5 = ZERO(), a6 = ZERO(), a7 = ZERO();                       \
        const T *e = ext + t;                                                        \
        for (k = 0; k < kw; k++) {                                                   \
            const VT c = BCAST(v + k);                                               \
            const T *p = e + k;                                                      \
            a0 = FMA(c, LOADU(p), a0);                                               \
            a1 = FMA(c, LOADU(p + L), a1);                                           \
            a2 = FMA(c, LOADU(p + 2 * L), a2);                                       \
            a3 = FMA(c, LOADU(p + 3 * L), a3);                                       \
            a4 = FMA(c, LOADU(p + 4 * L), a4);                                       \
            a5 = FMA(c, LOADU(p + 5 * L), a5);                                       \
            a6 = FMA(c, LOADU(p + 6 * L), a6);                                       \
            a7 = FMA(c, LOADU(p + 7 * L), a7);                                       \
        }                                                                            \
        STOREU(out + t, a0); STOREU(out + t + L, a1);                                \
        STOREU(out + t + 2 * L, a2); STOREU(out + t + 3 * L, a3);                    \
        STOREU(out + t + 4 * L, a4); STOREU(out + t + 5 * L, a5);                    \
        STOREU(out + t + 6 * L, a6); STOREU(out + t + 7 * L, a7);                    \
    }                                                                                \
    if (n < L) { nk_row_##SUFFIX##_base(out + t, ext + t, v, kw, n - t); return; }   \
    while (t < n) {                                                                  \
        VT a0 = ZERO(), a1 = ZERO();                                                 \
        if (t + L > n) t = n - L;                                                    \
        for (k = 0; k + 1 < kw; k += 2) {                                            \
            a0 = FMA(BCAST(v + k), LOADU(ext + t + k), a0);                          \
            a1 = FMA(BCAST(v + k + 1), LOADU(ext + t + k + 1), a1);                  \
        }                                                                            \
        if (k < kw) a0 = FMA(BCAST(v + k), LOADU(ext + t + k), a0);                  \
        STOREU(out + t, _mm256_add_##SUFFIX##_sfx(a0, a1));                          \
        t += L;                                                                      \
    }                                                                                \
}                                                                                    \
FC_TARGET_AVX2 static void nk_col2_##SUFFIX##_avx2(T *no, T *dno, const T *const *rp, \
                                                   const T *const *rc, const T *u,   \
                                                   ptrdiff_t kh, ptrdiff_t n)        \
{                                                                                    \
    ptrdiff_t t = 0, j;                                                              \
    for (; t + 4 * L <= n; t += 4 * L) {                                             \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                       \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                       \
        for (j = 0; j < kh; j++) {                                                   \
            const VT w = BCAST(u + j);                                               \
            const T *a = rp[j] + t, *b = rc[j] + t;                                  \
            p0 = FMA(w, LOADU(a), p0);                                               \
            p1 = FMA(w, LOADU(a + L), p1);                                           \
            p2 = FMA(w, LOADU(a + 2 * L), p2);                                       \
            p3 = FMA(w, LOADU(a + 3 * L), p3);                                       \
            c0 = FMA(w, LOADU(b), c0);                                               \
            c1 = FMA(w, LOADU(b + L), c1);                                           \
            c2 = FMA(w, LOADU(b + 2 * L), c2);                                       \
            c3 = FMA(w, LOADU(b + 3 * L), c3);                                       \
        }                                                                            \
        STOREU(no + t, p0); STOREU(no + t + L, p1);                                  \
        STOREU(no + t + 2 * L, p2); STOREU(no + t + 3 * L, p3);                      \
        STOREU(dno + t, c0); STOREU(dno + t + L, c1);                                \
        STOREU(dno + t + 2 * L, c2); STOREU(dno + t + 3 * L, c3);                    \
    }                                                                                \
    if (n < L) {                                                                     \
        const T *ra[1], *rb[1];                                                      \
        ptrdiff_t m;                                                                 \
        for (m = t; m < n; m++) {                                                    \
            T s = 0, d = 0;                                                          \
            for (j = 0; j < kh; j++) { s += u[j] * rp[j][m]; d += u[j] * rc[j][m]; } \
            no[m] = s; dno[m] = d;                                                   \
        }                                                                            \
        (void)ra; (void)rb;                                                          \
        return;                                                                      \
    }                                                                                \
    while (t < n) {                                                                  \
        VT p0 = ZERO(), c0 = ZERO();                                                 \
        if (t + L > n) t = n - L;                                                    \
        for (j = 0; j < kh; j++) {                                                   \
            const VT w = BCAST(u + j);                                               \
            p0 = FMA(w, LOADU(rp[j] + t), p0);                                       \
            c0 = FMA(w, LOADU(rc[j] + t), c0);                                       \
        }                                                                            \
        STOREU(no + t, p0); STOREU(dno + t, c0);                                     \
        t += L;                                                                      \
    }                                                                                \
}                                                                                    \
FC_TARGET_AVX2 static void nk_col2x4_##SUFFIX##_avx2(T *const *no, T *const *dno,      \
                                                     const T *const *rp,             \
                                                     const T *const *rc, const T *u, \
                                                     ptrdiff_t kh, ptrdiff_t n)      \
{                                                                                    \
    /* Four output rows at once: ring row i (of kh + 3) feeds output row r   */     \
    /* with weight u[i - r], so each vector loaded from the ring serves four */     \
    /* multiply-adds (kh >= 4).                                              */     \
    ptrdiff_t t = 0, i;                                                              \
    T *const o0 = no[0], *const o1 = no[1], *const o2 = no[2], *const o3 = no[3];    \
    T *const d0 = dno[0], *const d1 = dno[1], *const d2 = dno[2], *const d3 = dno[3]; \
    if (n < L) {                                                                     \
        for (i = 0; i < 4; i++) nk_col2_##SUFFIX##_base(no[i], dno[i], rp + i, rc + i, u, kh, n); \
        return;                                                                      \
    }                                                                                \
    while (t < n) {                                                                  \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                       \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                       \
        VT a, b, w;                                                                  \
        if (t + L > n) t = n - L;                                                    \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                     \
        STOREU(o0 + t, p0); STOREU(o1 + t, p1); STOREU(o2 + t, p2); STOREU(o3 + t, p3); \
        STOREU(d0 + t, c0); STOREU(d1 + t, c1); STOREU(d2 + t, c2); STOREU(d3 + t, c3); \
        t += L;                                                                      \
    }                                                                                \
}                                                                                    \
FC_TARGET_AVX2 static int nk_sden_##SUFFIX##_avx2(T *out, const T *ec, ptrdiff_t next, \
                                                  const T *vr, ptrdiff_t kw,         \
                                                  ptrdiff_t kwp, T vsum, ptrdiff_t n, \
                                                  ptrdiff_t cap)                     \
{                                                                                    \
    ptrdiff_t i = 0, j, cnt = 0;                                                     \
    const VT vs = SET1(vsum);                                                        \
    for (i = 0; i + L <= n; i += L) STOREU(out + i, vs);                             \
    for (; i < n; i++) out[i] = vsum;                                                \
    for (i = 0; i < next; i += L) {                                                  \
        unsigned m;                                                                  \
        if (i + L <= next) m = (unsigned)MOVEMASK(CMPNE1(LOADU(ec + i)));            \
        else {                                                                       \
            ptrdiff_t b;                                                             \
            m = 0;                                                                   \
            for (b = 0; b < next - i; b++) m |= (unsigned)(ec[i + b] != (T)1) << b;  \
        }                                                                            \
        while (m) {                                                                  \
            const ptrdiff_t p = i + __builtin_ctz(m);                                \
            const VT w = SET1(ec[p] - (T)1);                                         \
            T *o = out + p - kw + 1;                                                 \
            m &= m - 1;                                                              \
            if (++cnt > cap) return 1;                                               \
            for (j = 0; j < kwp; j += L) STOREU(o + j, FMA(w, LOADU(vr + j), LOADU(o + j))); \
        }                                                                            \
    }                                                                                \
    return 0;                                                                        \
}

#define _mm256_add_f64_sfx _mm256_add_pd
#define _mm256_add_f32_sfx _mm256_add_ps
#define NK_CMPNE1_PD(a) _mm256_cmp_pd((a), _mm256_set1_pd(1.0), _CMP_NEQ_UQ)
#define NK_CMPNE1_PS(a) _mm256_cmp_ps((a), _mm256_set1_ps(1.0f), _CMP_NEQ_UQ)
NK_SWEEP_AVX2(f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
              _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_set1_pd, NK_CMPNE1_PD, _mm256_movemask_pd)
NK_SWEEP_AVX2(f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
              _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_set1_ps, NK_CMPNE1_PS, _mm256_movemask_ps)
#define NK_SWEEP_PICK(NAME, SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? NAME##_##SUFFIX##_avx2(__VA_ARGS__) : NAME##_##SUFFIX##_base(__VA_ARGS__))
#else
#define NK_SWEEP_PICK(NAME, SUFFIX, ...) NAME##_##SUFFIX##_base(__VA_ARGS__)
#endif

/* nk_col2x4 on AVX-512 (chosen at run time, nk_col512): 1, the same 256-bit
 * loop with 32 registers; 2, 512-bit vectors (a cache line a load). */
static int nk_col512 = 0;
static int nk_cpu_has_avx512(void);
#if FC_X86_DISPATCH
#define NK_COL2X4_T(ATTR, ISA, SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA)        \
ATTR static void nk_col2x4_##SUFFIX##_##ISA(T *const *no, T *const *dno, const T *const *rp, \
        const T *const *rc, const T *u, ptrdiff_t kh, ptrdiff_t n)                       \
{                                                                                        \
    ptrdiff_t t = 0, i;                                                                  \
    T *const o0 = no[0], *const o1 = no[1], *const o2 = no[2], *const o3 = no[3];        \
    T *const d0 = dno[0], *const d1 = dno[1], *const d2 = dno[2], *const d3 = dno[3];    \
    while (t < n) {                                                                      \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                           \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                           \
        VT a, b, w;                                                                      \
        if (t + L > n) t = n - L;                                                        \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                         \
        STOREU(o0 + t, p0); STOREU(o1 + t, p1); STOREU(o2 + t, p2); STOREU(o3 + t, p3);  \
        STOREU(d0 + t, c0); STOREU(d1 + t, c1); STOREU(d2 + t, c2); STOREU(d3 + t, c3);  \
        t += L;                                                                          \
    }                                                                                    \
}
#define NK_BC512_PD(p) _mm512_set1_pd(*(p))
#define NK_BC512_PS(p) _mm512_set1_ps(*(p))
#define NK_TARGET_AVX512_COL __attribute__((target("avx512f,avx512vl,avx2,fma")))
NK_COL2X4_T(NK_TARGET_AVX512_COL, avx512y, f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd,
            _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd)
NK_COL2X4_T(NK_TARGET_AVX512_COL, avx512y, f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps,
            _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps)
NK_COL2X4_T(NK_TARGET_AVX512_COL, avx512z, f64, double, __m512d, 8, _mm512_setzero_pd, _mm512_loadu_pd,
            _mm512_storeu_pd, NK_BC512_PD, _mm512_fmadd_pd)
NK_COL2X4_T(NK_TARGET_AVX512_COL, avx512z, f32, float, __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps,
            _mm512_storeu_ps, NK_BC512_PS, _mm512_fmadd_ps)
#define NK_COL2X4_PICK(SUFFIX, L512, ...)                                                \
    if (nk_col512 == 2 && n >= L512 && nk_cpu_has_avx512()) { nk_col2x4_##SUFFIX##_avx512z(__VA_ARGS__); return; } \
    if (nk_col512 == 1 && n >= L512 / 2 && nk_cpu_has_avx512()) { nk_col2x4_##SUFFIX##_avx512y(__VA_ARGS__); return; }
#else
#define NK_COL2X4_PICK(SUFFIX, L512, ...)
#endif
static void nk_col2x4_f32(float *const *no, float *const *dno, const float *const *rp, const float *const *rc,
                          const float *u, ptrdiff_t kh, ptrdiff_t n)
{
    NK_COL2X4_PICK(f32, 16, no, dno, rp, rc, u, kh, n)
    NK_SWEEP_PICK(nk_col2x4, f32, no, dno, rp, rc, u, kh, n);
}
static void nk_col2x4_f64(double *const *no, double *const *dno, const double *const *rp,
                          const double *const *rc, const double *u, ptrdiff_t kh, ptrdiff_t n)
{
    NK_COL2X4_PICK(f64, 8, no, dno, rp, rc, u, kh, n)
    NK_SWEEP_PICK(nk_col2x4, f64, no, dno, rp, rc, u, kh, n);
}

/* nk_prep without a certainty map (c == NULL), prefetching as it goes:
 * the line ``pf`` elements ahead of each line read (a later input row,
 * while this one is prepared; pf 0: none). The same values as nk_prep. */
#if FC_X86_DISPATCH
#define NK_PREPF_AVX2(SUFFIX, T, VT, L, LOADU, STOREU, SET1, CMP, BLENDV)                  \
FC_TARGET_AVX2 static void nk_prepf_##SUFFIX##_avx2(T *NK_RESTRICT prod, T *NK_RESTRICT cert, \
        const T *NK_RESTRICT x, ptrdiff_t n, T mv, T mc, ptrdiff_t pf)                     \
{                                                                                          \
    const VT vmp = SET1(mv * mc), vmc = SET1(mc), one = SET1((T)1);                        \
    const ptrdiff_t step = 64 / (ptrdiff_t)sizeof(T);                                      \
    ptrdiff_t i = 0, j;                                                                    \
    for (; i + step <= n; i += step) {                                                     \
        if (pf) _mm_prefetch((const char *)(x + i + pf), _MM_HINT_T0);                     \
        for (j = 0; j < step; j += L) {                                                    \
            const VT xi = LOADU(x + i + j);                                                \
            const VT miss = CMP(xi, xi, _CMP_UNORD_Q);                                     \
            STOREU(prod + i + j, BLENDV(xi, vmp, miss));                                   \
            STOREU(cert + i + j, BLENDV(one, vmc, miss));                                  \
        }                                                                                  \
    }                                                                                      \
    if (pf && i < n) _mm_prefetch((const char *)(x + i + pf), _MM_HINT_T0);                \
    for (; i < n; i++) {                                                                   \
        const T xi = x[i];                                                                 \
        const int miss = xi != xi;                                                         \
        prod[i] = miss ? mv * mc : xi;                                                     \
        cert[i] = miss ? mc : (T)1;                                                        \
    }                                                                                      \
}
NK_PREPF_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_cmp_pd,
              _mm256_blendv_pd)
NK_PREPF_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_cmp_ps,
              _mm256_blendv_ps)
static void nk_prepf_f64(double *p, double *q, const double *x, ptrdiff_t n, double mv, double mc, ptrdiff_t pf)
{
    ptrdiff_t part = 0;
    if (fc_cpu_has_avx2_fma()) nk_prepf_f64_avx2(p, q, x, n, mv, mc, pf);
    else nk_prep_f64(p, q, x, NULL, n, mv, mc, &part);
}
static void nk_prepf_f32(float *p, float *q, const float *x, ptrdiff_t n, float mv, float mc, ptrdiff_t pf)
{
    ptrdiff_t part = 0;
    if (fc_cpu_has_avx2_fma()) nk_prepf_f32_avx2(p, q, x, n, mv, mc, pf);
    else nk_prep_f32(p, q, x, NULL, n, mv, mc, &part);
}
#else
static void nk_prepf_f64(double *p, double *q, const double *x, ptrdiff_t n, double mv, double mc, ptrdiff_t pf)
{ ptrdiff_t part = 0; (void)pf; nk_prep_f64(p, q, x, NULL, n, mv, mc, &part); }
static void nk_prepf_f32(float *p, float *q, const float *x, ptrdiff_t n, float mv, float mc, ptrdiff_t pf)
{ ptrdiff_t part = 0; (void)pf; nk_prep_f32(p, q, x, NULL, n, mv, mc, &part); }
#endif

/* The vector width (elements) that nk_sden's kernel padding kwp must be a multiple of. */
#define NK_SDEN_ALIGN 8

/* nk_row from L copies of the extended row, copy s shifted by s elements
 * and starting on a 32-byte boundary (e4[s][i] == ext[i + s], i < next - s):
 * every load of the row pass is then aligned. A load of 32 bytes at a
 * random element offset crosses a cache line 3 times in 8 (float64), and
 * such a load takes two of the core's load slots: the pass, two loads a
 * multiply-add, is bound by them (1024-wide rows in L1, 11-101 taps: 1.25x
 * faster aligned). The columns past the last block of 8 vectors take nk_row
 * on ``ext``. nk_copies makes the copies. */
#if FC_X86_DISPATCH
#define NK_ROWA_AVX2(SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA)                 \
FC_TARGET_AVX2 static void nk_rowa_##SUFFIX##_avx2(T *out, const T *const *e4, const T *ext,  \
                                                   const T *v, ptrdiff_t kw, ptrdiff_t n)    \
{                                                                                    \
    ptrdiff_t t = 0, k;                                                              \
    for (; t + 8 * L <= n; t += 8 * L) {                                             \
        VT a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO();                       \
        VT a4 = ZERO(), a5 = ZERO(), a6 = ZERO(), a7 = ZERO();                       \
        for (k = 0; k < kw; k++) {                                                   \
            const VT c = BCAST(v + k);                                               \
            const T *p = e4[k & (L - 1)] + t + (k & ~(ptrdiff_t)(L - 1));            \
            a0 = FMA(c, LOADU(p), a0);                                               \
            a1 = FMA(c, LOADU(p + L), a1);                                           \
            a2 = FMA(c, LOADU(p + 2 * L), a2);                                       \
            a3 = FMA(c, LOADU(p + 3 * L), a3);                                       \
            a4 = FMA(c, LOADU(p + 4 * L), a4);                                       \
            a5 = FMA(c, LOADU(p + 5 * L), a5);                                       \
            a6 = FMA(c, LOADU(p + 6 * L), a6);                                       \
            a7 = FMA(c, LOADU(p + 7 * L), a7);                                       \
        }                                                                            \
        STOREU(out + t, a0); STOREU(out + t + L, a1);                                \
        STOREU(out + t + 2 * L, a2); STOREU(out + t + 3 * L, a3);                    \
        STOREU(out + t + 4 * L, a4); STOREU(out + t + 5 * L, a5);                    \
        STOREU(out + t + 6 * L, a6); STOREU(out + t + 7 * L, a7);                    \
    }                                                                                \
    if (t < n) nk_row_##SUFFIX##_avx2(out + t, ext + t, v, kw, n - t);               \
}
NK_ROWA_AVX2(f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
             _mm256_broadcast_sd, _mm256_fmadd_pd)
NK_ROWA_AVX2(f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
             _mm256_broadcast_ss, _mm256_fmadd_ps)
#endif
/* The lanes of a vector: how many shifted copies nk_rowa reads. */
#define NK_LANES_F64 4
#define NK_LANES_F32 8
/* 1 where nk_rowa runs (AVX2): else the caller passes ext to nk_row. */
static int nk_rowa_available(void) {
#if FC_X86_DISPATCH
    return fc_cpu_has_avx2_fma();
#else
    return 0;
#endif
}
static void nk_rowa_f64(double *o, const double *const *e4, const double *e, const double *v, ptrdiff_t kw,
                        ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { nk_rowa_f64_avx2(o, e4, e, v, kw, n); return; }
#endif
    (void)e4;
    nk_row_f64_base(o, e, v, kw, n);
}
static void nk_rowa_f32(float *o, const float *const *e4, const float *e, const float *v, ptrdiff_t kw,
                        ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { nk_rowa_f32_avx2(o, e4, e, v, kw, n); return; }
#endif
    (void)e4;
    nk_row_f32_base(o, e, v, kw, n);
}
/* e4[s][i] = e4[0][i + s] for s = 1 .. nc - 1, i < len - s. */
static void nk_copies_f64(double *const *e4, ptrdiff_t nc, ptrdiff_t len)
{
    ptrdiff_t s;
    for (s = 1; s < nc; s++) memcpy(e4[s], e4[0] + s, (size_t)(len - s) * sizeof(double));
}
static void nk_copies_f32(float *const *e4, ptrdiff_t nc, ptrdiff_t len)
{
    ptrdiff_t s;
    for (s = 1; s < nc; s++) memcpy(e4[s], e4[0] + s, (size_t)(len - s) * sizeof(float));
}
static void nk_row_f32(float *o, const float *e, const float *v, ptrdiff_t kw, ptrdiff_t n)
{ NK_SWEEP_PICK(nk_row, f32, o, e, v, kw, n); }
static void nk_row_f64(double *o, const double *e, const double *v, ptrdiff_t kw, ptrdiff_t n)
{ NK_SWEEP_PICK(nk_row, f64, o, e, v, kw, n); }
static void nk_col2_f32(float *no, float *dno, const float *const *rp, const float *const *rc, const float *u,
                        ptrdiff_t kh, ptrdiff_t n)
{ NK_SWEEP_PICK(nk_col2, f32, no, dno, rp, rc, u, kh, n); }
static void nk_col2_f64(double *no, double *dno, const double *const *rp, const double *const *rc,
                        const double *u, ptrdiff_t kh, ptrdiff_t n)
{ NK_SWEEP_PICK(nk_col2, f64, no, dno, rp, rc, u, kh, n); }
static int nk_sden_f32(float *o, const float *ec, ptrdiff_t next, const float *vr, ptrdiff_t kw, ptrdiff_t kwp,
                       float vsum, ptrdiff_t n, ptrdiff_t cap)
{ return NK_SWEEP_PICK(nk_sden, f32, o, ec, next, vr, kw, kwp, vsum, n, cap); }
static int nk_sden_f64(double *o, const double *ec, ptrdiff_t next, const double *vr, ptrdiff_t kw, ptrdiff_t kwp,
                       double vsum, ptrdiff_t n, ptrdiff_t cap)
{ return NK_SWEEP_PICK(nk_sden, f64, o, ec, next, vr, kw, kwp, vsum, n, cap); }

/* nk_finish for the common call (no certainty map, no certainty output),
 * its result stored with non-temporal stores where ``stream``: a large
 * result is not read back by this call, and streaming it skips reading
 * each of its cache lines from memory before writing it (a third of the
 * sweep's memory traffic). The caller fences (nk_fence) before the result
 * is used. Returns the number of NaN results. */
#if FC_X86_DISPATCH
#define NK_FINISH_NT(SUFFIX, T, VT, L, LOADU, SET1, MUL, DIV, BLENDV, CMP, ANDNOT, STOREU, STREAM, MOVEMASK) \
FC_TARGET_AVX2 static ptrdiff_t nk_finish1_##SUFFIX##_avx2(T *out, const T *num, const T *den, const T *x,   \
                                                         ptrdiff_t n, T zt, T scale, T mcentre,          \
                                                         int preserve, int stream)                       \
{                                                                                                        \
    ptrdiff_t i = 0, nans = 0;                                                                           \
    const VT vzt = SET1(zt), vsc = SET1(scale), vms = SET1(mcentre * scale), vnan = SET1((T)NAN);         \
    const VT sign = SET1((T)-0.0);                                                                       \
    if (stream) {                                                                                        \
        while (i < n && ((size_t)(out + i) & 31) != 0) {                                                 \
            nans += nk_finish_##SUFFIX##_base(out + i, NULL, num + i, den + i, x + i, NULL, 1, zt, scale, \
                                              mcentre, preserve, (T)0);                                  \
            i++;                                                                                         \
        }                                                                                                \
    }                                                                                                    \
    for (; i + L <= n; i += L) {                                                                         \
        const VT d = LOADU(den + i), xi = LOADU(x + i);                                                  \
        const VT miss = CMP(xi, xi, _CMP_UNORD_Q);                                                       \
        const VT zero = CMP(ANDNOT(sign, d), vzt, _CMP_LE_OQ);                                           \
        const VT q = MUL(DIV(LOADU(num + i), d), vsc);                                                   \
        const VT centre = BLENDV(MUL(xi, vsc), vms, miss);                                               \
        VT v = BLENDV(q, centre, zero);                                                                  \
        if (preserve) v = BLENDV(v, vnan, miss);                                                         \
        nans += __builtin_popcount((unsigned)MOVEMASK(CMP(v, v, _CMP_UNORD_Q)));                         \
        if (stream) STREAM(out + i, v); else STOREU(out + i, v);                                         \
    }                                                                                                    \
    if (i < n)                                                                                           \
        nans += nk_finish_##SUFFIX##_base(out + i, NULL, num + i, den + i, x + i, NULL, n - i, zt, scale, \
                                          mcentre, preserve, (T)0);                                      \
    return nans;                                                                                         \
}
NK_FINISH_NT(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_set1_pd, _mm256_mul_pd, _mm256_div_pd,
             _mm256_blendv_pd, _mm256_cmp_pd, _mm256_andnot_pd, _mm256_storeu_pd, _mm256_stream_pd,
             _mm256_movemask_pd)
NK_FINISH_NT(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_set1_ps, _mm256_mul_ps, _mm256_div_ps,
             _mm256_blendv_ps, _mm256_cmp_ps, _mm256_andnot_ps, _mm256_storeu_ps, _mm256_stream_ps,
             _mm256_movemask_ps)
/* nk_col2x4 and nk_finish1 in one sweep (the common call: no certainty map
 * in or out): the four output rows' sums of both inputs stay in registers
 * and go straight through the division into ``out`` rows o[0..3] (the
 * pixels x[0..3] under them): the divider works while the multiply-adds
 * of the next vector run, and nothing is stored and read back in between.
 * The vectors are placed so that row 0's stores are aligned (streamed
 * where ``stream``); a head and a tail vector overlap their neighbours
 * (the same values stored again, counted once). Returns the number of NaN
 * results. n >= L. */
#define NK_COL4FIN(SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, MUL, DIV, BLENDV, CMP,    \
                   ANDNOT, STREAM, MOVEMASK)                                                         \
FC_TARGET_AVX2 static ptrdiff_t nk_col2x4fin_##SUFFIX##_avx2(T *const *o, const T *const *x,          \
        const T *const *rp, const T *const *rc, const T *u, ptrdiff_t kh, ptrdiff_t n, T zt, T scale, \
        T mcentre, int preserve, int stream)                                                         \
{                                                                                                    \
    ptrdiff_t t, i, r, nans = 0, done = 0;                                                           \
    const VT vzt = SET1(zt), vsc = SET1(scale), vms = SET1(mcentre * scale), vnan = SET1((T)NAN);    \
    const VT sign = SET1((T)-0.0);                                                                   \
    const ptrdiff_t a0 = (ptrdiff_t)((((size_t)32 - ((size_t)o[0] & 31)) & 31) / sizeof(T));         \
    const int aligned = ((size_t)o[0] % sizeof(T)) == 0;                                             \
    t = (a0 == 0 || !aligned) ? 0 : -1; /* -1: the head vector at 0, then a0, a0 + L, ... */        \
    while (done < n) {                                                                               \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                                       \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                                       \
        VT a, b, w;                                                                                  \
        VT pr[4], cr[4];                                                                             \
        unsigned keep;                                                                               \
        int al;                                                                                      \
        if (t < 0) { t = 0; al = 0; }                                                                \
        else {                                                                                       \
            if (t + L > n) t = n - L;                                                                \
            al = stream && aligned && (((size_t)(o[0] + t)) & 31) == 0;                              \
        }                                                                                            \
        keep = ((1u << L) - 1) & ~((1u << (done - t)) - 1); /* lanes not counted yet */              \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                                     \
        pr[0] = p0; pr[1] = p1; pr[2] = p2; pr[3] = p3;                                              \
        cr[0] = c0; cr[1] = c1; cr[2] = c2; cr[3] = c3;                                              \
        for (r = 0; r < 4; r++) {                                                                    \
            const VT d = cr[r], xi = LOADU(x[r] + t);                                                \
            const VT miss = CMP(xi, xi, _CMP_UNORD_Q);                                               \
            const VT zero = CMP(ANDNOT(sign, d), vzt, _CMP_LE_OQ);                                   \
            const VT q = MUL(DIV(pr[r], d), vsc);                                                    \
            const VT centre = BLENDV(MUL(xi, vsc), vms, miss);                                       \
            VT v = BLENDV(q, centre, zero);                                                          \
            if (preserve) v = BLENDV(v, vnan, miss);                                                 \
            nans += __builtin_popcount((unsigned)MOVEMASK(CMP(v, v, _CMP_UNORD_Q)) & keep);          \
            if (al && (((size_t)(o[r] + t)) & 31) == 0) STREAM(o[r] + t, v); else STOREU(o[r] + t, v); \
        }                                                                                            \
        done = t + L;                                                                                \
        t = (t == 0 && a0 != 0 && aligned) ? a0 : t + L;                                             \
        if (t > done) t = done; /* never skip a lane */                                              \
    }                                                                                                \
    return nans;                                                                                     \
}
NK_COL4FIN(f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
           _mm256_fmadd_pd, _mm256_set1_pd, _mm256_mul_pd, _mm256_div_pd, _mm256_blendv_pd, _mm256_cmp_pd,
           _mm256_andnot_pd, _mm256_stream_pd, _mm256_movemask_pd)
NK_COL4FIN(f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
           _mm256_fmadd_ps, _mm256_set1_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_blendv_ps, _mm256_cmp_ps,
           _mm256_andnot_ps, _mm256_stream_ps, _mm256_movemask_ps)
/* nk_col2x4fin for the most common call (scale 1: a normalised kernel; no
 * preserve_nan; plain stores): the pointwise part cut to what it needs
 * (about 10 instructions a vector and row instead of ~18: no scaling, no
 * per-vector NaN count, no alignment bookkeeping). NaN results are only
 * flagged on the way (an OR of masks) and counted by a second look at the
 * rows when there are any (holes wider than the kernel: rare). The last
 * vector overlaps the one before it (the same values stored again). */
static int nk_lean_fin = 1;
#define NK_COL4FIN_LEAN(SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, DIV, BLENDV, CMP,    \
                        ANDNOT, OR, MOVEMASK)                                                         \
FC_TARGET_AVX2 static ptrdiff_t nk_col2x4fin_lean_##SUFFIX##_avx2(T *const *o, const T *const *x,      \
        const T *const *rp, const T *const *rc, const T *u, ptrdiff_t kh, ptrdiff_t n, T zt, T mcentre) \
{                                                                                                    \
    ptrdiff_t t = 0, i, r, nans = 0;                                                                 \
    const VT vzt = SET1(zt), vmc = SET1(mcentre), sign = SET1((T)-0.0);                              \
    VT anynan = ZERO();                                                                              \
    for (;;) {                                                                                       \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                                       \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                                       \
        VT a, b, w;                                                                                  \
        VT pr[4], cr[4];                                                                             \
        if (t + L > n) t = n - L;                                                                    \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                                     \
        pr[0] = p0; pr[1] = p1; pr[2] = p2; pr[3] = p3;                                              \
        cr[0] = c0; cr[1] = c1; cr[2] = c2; cr[3] = c3;                                              \
        for (r = 0; r < 4; r++) {                                                                    \
            const VT d = cr[r], xi = LOADU(x[r] + t);                                                \
            const VT zero = CMP(ANDNOT(sign, d), vzt, _CMP_LE_OQ);                                   \
            const VT centre = BLENDV(xi, vmc, CMP(xi, xi, _CMP_UNORD_Q));                            \
            const VT v = BLENDV(DIV(pr[r], d), centre, zero);                                        \
            anynan = OR(anynan, CMP(v, v, _CMP_UNORD_Q));                                            \
            STOREU(o[r] + t, v);                                                                     \
        }                                                                                            \
        if (t + L >= n) break;                                                                       \
        t += L;                                                                                      \
    }                                                                                                \
    if (MOVEMASK(anynan))                                                                            \
        for (r = 0; r < 4; r++)                                                                      \
            for (i = 0; i < n; i++) nans += o[r][i] != o[r][i];                                      \
    return nans;                                                                                     \
}
NK_COL4FIN_LEAN(f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                _mm256_fmadd_pd, _mm256_set1_pd, _mm256_div_pd, _mm256_blendv_pd, _mm256_cmp_pd, _mm256_andnot_pd,
                _mm256_or_pd, _mm256_movemask_pd)
NK_COL4FIN_LEAN(f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                _mm256_fmadd_ps, _mm256_set1_ps, _mm256_div_ps, _mm256_blendv_ps, _mm256_cmp_ps, _mm256_andnot_ps,
                _mm256_or_ps, _mm256_movemask_ps)
/* nk_col2x4fin_lean where a missing pixel's own value is NaN (mcentre NaN:
 * nan_treatment 'interpolate'): an output with no certain pixel under the
 * kernel is then the pixel itself, NaN or not (one select, no test of x
 * and no second select: 1024² float64 5x5 and 11x11, this loop alone,
 * 1.08-1.11x; a running sum instead of the NaN test measured 0.94-1.04x).
 * Same bits as nk_col2x4fin_lean. */
static int nk_nanc_fin = 1;
#define NK_COL4FIN_NANC(SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, DIV, BLENDV, CMP,    \
                        ANDNOT, OR, MOVEMASK) NK_COL4FIN_NANC_T(FC_TARGET_AVX2, avx2, SUFFIX, T, VT, L, ZERO, \
                        LOADU, STOREU, BCAST, FMA, SET1, DIV, BLENDV, CMP, ANDNOT, OR, MOVEMASK)
#define NK_COL4FIN_NANC_T(ATTR, ISA, SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, DIV, BLENDV, CMP, \
                        ANDNOT, OR, MOVEMASK)                                                         \
ATTR static ptrdiff_t nk_col2x4fin_nanc_##SUFFIX##_##ISA(T *const *o, const T *const *x,               \
        const T *const *rp, const T *const *rc, const T *u, ptrdiff_t kh, ptrdiff_t n, T zt)            \
{                                                                                                    \
    ptrdiff_t t = 0, i, r, nans = 0;                                                                 \
    const VT vzt = SET1(zt), sign = SET1((T)-0.0);                                                   \
    VT anynan = ZERO();                                                                              \
    for (;;) {                                                                                       \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                                       \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                                       \
        VT a, b, w;                                                                                  \
        VT pr[4], cr[4];                                                                             \
        if (t + L > n) t = n - L;                                                                    \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                                     \
        pr[0] = p0; pr[1] = p1; pr[2] = p2; pr[3] = p3;                                              \
        cr[0] = c0; cr[1] = c1; cr[2] = c2; cr[3] = c3;                                              \
        for (r = 0; r < 4; r++) {                                                                    \
            const VT d = cr[r], xi = LOADU(x[r] + t);                                                \
            const VT zero = CMP(ANDNOT(sign, d), vzt, _CMP_LE_OQ);                                   \
            const VT v = BLENDV(DIV(pr[r], d), xi, zero);                                            \
            anynan = OR(anynan, CMP(v, v, _CMP_UNORD_Q));                                            \
            STOREU(o[r] + t, v);                                                                     \
        }                                                                                            \
        if (t + L >= n) break;                                                                       \
        t += L;                                                                                      \
    }                                                                                                \
    if (MOVEMASK(anynan))                                                                            \
        for (r = 0; r < 4; r++)                                                                      \
            for (i = 0; i < n; i++) nans += o[r][i] != o[r][i];                                      \
    return nans;                                                                                     \
}
NK_COL4FIN_NANC(f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                _mm256_fmadd_pd, _mm256_set1_pd, _mm256_div_pd, _mm256_blendv_pd, _mm256_cmp_pd, _mm256_andnot_pd,
                _mm256_or_pd, _mm256_movemask_pd)
NK_COL4FIN_NANC(f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                _mm256_fmadd_ps, _mm256_set1_ps, _mm256_div_ps, _mm256_blendv_ps, _mm256_cmp_ps, _mm256_andnot_ps,
                _mm256_or_ps, _mm256_movemask_ps)
/* The same loops compiled for AVX-512VL (still 256-bit vectors: the same
 * instructions and bits, but 32 registers, so the eight sums, the sliding
 * weights and the constants stay in registers), chosen at run time. */
#define NK_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
static int nk_cpu_has_avx512(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = (fc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512vl")) ? 1 : 0;
    return cached;
}
/* 0: never; set by fastcorr.methods.normalized (AVX512_SWEEP) */
static int nk_use_avx512 = 1;
/* nk_col2x4fin_nanc on 512-bit vectors (nk_fin512): masks for the selects. */
#define NK_COL4FIN_NANC_Z(SUFFIX, T, VT, MT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, DIV, CMPM, ABS, MBLEND) \
NK_TARGET_AVX512 static ptrdiff_t nk_col2x4fin_nanc_##SUFFIX##_avx512z(T *const *o, const T *const *x,       \
        const T *const *rp, const T *const *rc, const T *u, ptrdiff_t kh, ptrdiff_t n, T zt)                 \
{                                                                                                            \
    ptrdiff_t t = 0, i, r, nans = 0;                                                                         \
    const VT vzt = SET1(zt);                                                                                 \
    MT anynan = 0;                                                                                           \
    for (;;) {                                                                                               \
        VT p0 = ZERO(), p1 = ZERO(), p2 = ZERO(), p3 = ZERO();                                               \
        VT c0 = ZERO(), c1 = ZERO(), c2 = ZERO(), c3 = ZERO();                                               \
        VT a, b, w;                                                                                          \
        VT pr[4], cr[4];                                                                                     \
        if (t + L > n) t = n - L;                                                                            \
        NK_COL4_ACC(T, VT, L, LOADU, BCAST, FMA)                                                             \
        pr[0] = p0; pr[1] = p1; pr[2] = p2; pr[3] = p3;                                                      \
        cr[0] = c0; cr[1] = c1; cr[2] = c2; cr[3] = c3;                                                      \
        for (r = 0; r < 4; r++) {                                                                            \
            const VT d = cr[r], xi = LOADU(x[r] + t);                                                        \
            const MT zero = CMPM(ABS(d), vzt, _CMP_LE_OQ);                                                   \
            const VT v = MBLEND(zero, DIV(pr[r], d), xi);                                                    \
            anynan |= CMPM(v, v, _CMP_UNORD_Q);                                                              \
            STOREU(o[r] + t, v);                                                                             \
        }                                                                                                    \
        if (t + L >= n) break;                                                                               \
        t += L;                                                                                              \
    }                                                                                                        \
    if (anynan)                                                                                              \
        for (r = 0; r < 4; r++)                                                                              \
            for (i = 0; i < n; i++) nans += o[r][i] != o[r][i];                                              \
    return nans;                                                                                             \
}
#define NK_ABS512_PD(a) _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(0x7fffffffffffffffLL)))
#define NK_ABS512_PS(a) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)))
NK_COL4FIN_NANC_Z(f64, double, __m512d, __mmask8, 8, _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd,
                  NK_BC512_PD, _mm512_fmadd_pd, _mm512_set1_pd, _mm512_div_pd, _mm512_cmp_pd_mask, NK_ABS512_PD,
                  _mm512_mask_blend_pd)
NK_COL4FIN_NANC_Z(f32, float, __m512, __mmask16, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps,
                  NK_BC512_PS, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_div_ps, _mm512_cmp_ps_mask, NK_ABS512_PS,
                  _mm512_mask_blend_ps)
static int nk_fin512 = 0;
NK_COL4FIN_NANC_T(NK_TARGET_AVX512, avx512, f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd,
                  _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_set1_pd, _mm256_div_pd,
                  _mm256_blendv_pd, _mm256_cmp_pd, _mm256_andnot_pd, _mm256_or_pd, _mm256_movemask_pd)
NK_COL4FIN_NANC_T(NK_TARGET_AVX512, avx512, f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps,
                  _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_div_ps,
                  _mm256_blendv_ps, _mm256_cmp_ps, _mm256_andnot_ps, _mm256_or_ps, _mm256_movemask_ps)
static ptrdiff_t nk_col2x4fin_f64(double *const *o, const double *const *x, const double *const *rp,
                                  const double *const *rc, const double *u, ptrdiff_t kh, ptrdiff_t n, double zt,
                                  double scale, double mcentre, int preserve, int stream)
{
    if (!fc_cpu_has_avx2_fma() || n < 4) return -1;
    if (nk_lean_fin && nk_nanc_fin && scale == 1.0 && !preserve && !stream && mcentre != mcentre)
        return (nk_use_avx512 && nk_cpu_has_avx512()) ? ((nk_fin512 && n >= 8) ? nk_col2x4fin_nanc_f64_avx512z(o, x, rp, rc, u, kh, n, zt) : nk_col2x4fin_nanc_f64_avx512(o, x, rp, rc, u, kh, n, zt))
                                                      : nk_col2x4fin_nanc_f64_avx2(o, x, rp, rc, u, kh, n, zt);
    if (nk_lean_fin && scale == 1.0 && !preserve && !stream)
        return nk_col2x4fin_lean_f64_avx2(o, x, rp, rc, u, kh, n, zt, mcentre);
    return nk_col2x4fin_f64_avx2(o, x, rp, rc, u, kh, n, zt, scale, mcentre, preserve, stream);
}
static ptrdiff_t nk_col2x4fin_f32(float *const *o, const float *const *x, const float *const *rp,
                                  const float *const *rc, const float *u, ptrdiff_t kh, ptrdiff_t n, float zt,
                                  float scale, float mcentre, int preserve, int stream)
{
    if (!fc_cpu_has_avx2_fma() || n < 8) return -1;
    if (nk_lean_fin && nk_nanc_fin && scale == 1.0f && !preserve && !stream && mcentre != mcentre)
        return (nk_use_avx512 && nk_cpu_has_avx512()) ? ((nk_fin512 && n >= 16) ? nk_col2x4fin_nanc_f32_avx512z(o, x, rp, rc, u, kh, n, zt) : nk_col2x4fin_nanc_f32_avx512(o, x, rp, rc, u, kh, n, zt))
                                                      : nk_col2x4fin_nanc_f32_avx2(o, x, rp, rc, u, kh, n, zt);
    if (nk_lean_fin && scale == 1.0f && !preserve && !stream)
        return nk_col2x4fin_lean_f32_avx2(o, x, rp, rc, u, kh, n, zt, mcentre);
    return nk_col2x4fin_f32_avx2(o, x, rp, rc, u, kh, n, zt, scale, mcentre, preserve, stream);
}
/* nk_prow: both row passes (nk_row over the products c * x and over the
 * certainty) of a row without a certainty map, 3 to 5 taps, reading the
 * vectors that lie wholly inside the image from the data row itself: each
 * such vector of x is loaded once, its missing pixels replaced (the value
 * mp, the certainty mc; else x and 1, as nk_prep) in registers, and both
 * passes made from it, with no prepared copy written and read back. The
 * vectors at offsets s (multiples of L) in [a, b) come from xr + s - a (xr:
 * the row's element at offset a; a >= the first column inside, b <= the
 * end of the columns inside); everything else, and the generic loops at
 * the row's end from offset g on, from the prepared rows ep / ec, which
 * must hold [0, a) and [min(b, g), n + kw - 1) (g: nk_prow_from). pf: the
 * line that many elements ahead of each x line is prefetched (0: none).
 * The multiply-adds of nk_row in its order: the same bits. */
static ptrdiff_t nk_prow_from(ptrdiff_t n, ptrdiff_t L)
{
    const ptrdiff_t blocks = n / (8 * L);
    return blocks > 0 ? blocks * 8 * L - L : 0;
}
#define NK_PROW(ATTR, ISA, SUFFIX, T, VT, L, ZERO, LOADU, STOREU, BCAST, FMA, SET1, CMP, BLENDV, ADD) \
ATTR static void nk_prow_##SUFFIX##_##ISA(T *outp, T *outc, const T *ep, const T *ec, const T *xr,   \
        ptrdiff_t a, ptrdiff_t b, const T *v, ptrdiff_t kw, ptrdiff_t n, T mp, T mc, ptrdiff_t pf,  \
        ptrdiff_t t0)                                                                            \
{                                                                                                \
    ptrdiff_t t = t0, k, j;                                                                      \
    const VT vmp = SET1(mp), vmc = SET1(mc), one = SET1((T)1);                                   \
    const VT w0 = BCAST(v), w1 = BCAST(v + 1), w2 = BCAST(v + 2);                                \
    const VT w3 = BCAST(v + (kw > 3 ? 3 : 0)), w4 = BCAST(v + (kw > 4 ? 4 : 0));                 \
    if (n < L && t0 == 0) { /* as nk_row: the portable loop */                                  \
        nk_row_##SUFFIX##_base(outp, ep, v, kw, n);                                              \
        nk_row_##SUFFIX##_base(outc, ec, v, kw, n);                                              \
        return;                                                                                  \
    }                                                                                            \
    for (; t + 8 * L <= n; t += 8 * L) {                                                         \
        VT Ap, Ac;                                                                               \
        if (t >= a && t < b) {                                                                   \
            const VT xi = LOADU(xr + (t - a));                                                   \
            const VT miss = CMP(xi, xi, _CMP_UNORD_Q);                                           \
            Ap = BLENDV(xi, vmp, miss); Ac = BLENDV(one, vmc, miss);                             \
        } else { Ap = LOADU(ep + t); Ac = LOADU(ec + t); }                                       \
        for (j = 0; j < 8; j++) {                                                                \
            const ptrdiff_t s = t + (j + 1) * L;                                                 \
            VT accp, accc;                                                                       \
            if (j < 7 || t + 9 * L + 1 <= n + kw) {                                              \
                VT Bp, Bc, S1, S2, S3;                                                           \
                if (s >= a && s < b) {                                                           \
                    const VT xi = LOADU(xr + (s - a));                                           \
                    const VT miss = CMP(xi, xi, _CMP_UNORD_Q);                                   \
                    if (pf && ((s - a) & (64 / (ptrdiff_t)sizeof(T) - 1)) < L)                   \
                        _mm_prefetch((const char *)(xr + (s - a) + pf), _MM_HINT_T0);            \
                    Bp = BLENDV(xi, vmp, miss); Bc = BLENDV(one, vmc, miss);                     \
                } else { Bp = LOADU(ep + s); Bc = LOADU(ec + s); }                               \
                NK_SHIFTS_##SUFFIX(Ap, Bp, S1, S2, S3)                                           \
                accp = FMA(w0, Ap, ZERO());                                                      \
                accp = FMA(w1, S1, accp);                                                        \
                accp = FMA(w2, S2, accp);                                                        \
                if (kw > 3) accp = FMA(w3, S3, accp);                                            \
                if (kw > 4) accp = FMA(w4, NK_SHIFT4_##SUFFIX(Ap, Bp), accp);                    \
                NK_SHIFTS_##SUFFIX(Ac, Bc, S1, S2, S3)                                           \
                accc = FMA(w0, Ac, ZERO());                                                      \
                accc = FMA(w1, S1, accc);                                                        \
                accc = FMA(w2, S2, accc);                                                        \
                if (kw > 3) accc = FMA(w3, S3, accc);                                            \
                if (kw > 4) accc = FMA(w4, NK_SHIFT4_##SUFFIX(Ac, Bc), accc);                    \
                Ap = Bp; Ac = Bc;                                                                \
            } else { /* the row's last vectors: no read past its taps */                        \
                const T *pp = ep + t + j * L, *pc = ec + t + j * L;                              \
                accp = ZERO(); accc = ZERO();                                                    \
                for (k = 0; k < kw; k++) {                                                       \
                    accp = FMA(BCAST(v + k), LOADU(pp + k), accp);                               \
                    accc = FMA(BCAST(v + k), LOADU(pc + k), accc);                               \
                }                                                                                \
            }                                                                                    \
            STOREU(outp + t + j * L, accp);                                                      \
            STOREU(outc + t + j * L, accc);                                                      \
        }                                                                                        \
    }                                                                                            \
    /* nk_row's last columns, as it computes them (from the prepared rows) */                    \
    while (t < n) {                                                                              \
        VT a0 = ZERO(), a1 = ZERO(), c0 = ZERO(), c1 = ZERO();                                   \
        if (t + L > n) t = n - L;                                                                \
        for (k = 0; k + 1 < kw; k += 2) {                                                        \
            a0 = FMA(BCAST(v + k), LOADU(ep + t + k), a0);                                       \
            a1 = FMA(BCAST(v + k + 1), LOADU(ep + t + k + 1), a1);                               \
            c0 = FMA(BCAST(v + k), LOADU(ec + t + k), c0);                                       \
            c1 = FMA(BCAST(v + k + 1), LOADU(ec + t + k + 1), c1);                               \
        }                                                                                        \
        if (k < kw) {                                                                            \
            a0 = FMA(BCAST(v + k), LOADU(ep + t + k), a0);                                       \
            c0 = FMA(BCAST(v + k), LOADU(ec + t + k), c0);                                       \
        }                                                                                        \
        STOREU(outp + t, ADD(a0, a1));                                                           \
        STOREU(outc + t, ADD(c0, c1));                                                           \
        t += L;                                                                                  \
    }                                                                                            \
}
NK_PROW(FC_TARGET_AVX2, avx2, f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_set1_pd, _mm256_cmp_pd, _mm256_blendv_pd, _mm256_add_pd)
NK_PROW(FC_TARGET_AVX2, avx2, f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_cmp_ps, _mm256_blendv_ps, _mm256_add_ps)
NK_PROW(NK_TARGET_AVX512, avx512, f64, double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_broadcast_sd, _mm256_fmadd_pd, _mm256_set1_pd, _mm256_cmp_pd, _mm256_blendv_pd, _mm256_add_pd)
NK_PROW(NK_TARGET_AVX512, avx512, f32, float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_cmp_ps, _mm256_blendv_ps, _mm256_add_ps)
/* nk_prow's first columns on 512-bit vectors (nk_prow512): its blocks of
 * 8 vectors that end at least one 256-bit block of 8 before the row's
 * end (so that nk_prow computes the rest as it would have), each element
 * by the same multiply-adds in the same order; the shifts by valign. A
 * vector half inside and half outside [a, b) is read as two 256-bit
 * halves, each as nk_prow reads it. Returns the first column left. */
static int nk_prow512 = 0;
#define NK_PROWZ(SUFFIX, T, VT, HT, MT, LZ, LH, SETZ, LOADZ, LOADH, STOREZ, SET1Z, FMAZ, CMPMZ, MBLENDZ,  \
                 CMPH, BLENDVH, SET1H, JOIN, ALIGNR)                                                   \
NK_TARGET_AVX512 static ptrdiff_t nk_prowz_##SUFFIX##_avx512(T *outp, T *outc, const T *ep, const T *ec, \
        const T *xr, ptrdiff_t a, ptrdiff_t b, const T *v, ptrdiff_t kw, ptrdiff_t n, T mp, T mc,       \
        ptrdiff_t pf)                                                                                   \
{                                                                                                       \
    const ptrdiff_t blocks = n / (8 * LH) - 1;                                                          \
    const ptrdiff_t T0 = blocks > 0 ? (blocks * 8 * LH) / (8 * LZ) * (8 * LZ) : 0;                      \
    const VT vmp = SET1Z(mp), vmc = SET1Z(mc), one = SET1Z((T)1);                                       \
    const HT hmp = SET1H(mp), hmc = SET1H(mc), hone = SET1H((T)1);                                      \
    const VT w0 = SET1Z(v[0]), w1 = SET1Z(v[1]), w2 = SET1Z(v[2]);                                      \
    const VT w3 = SET1Z(v[kw > 3 ? 3 : 0]), w4 = SET1Z(v[kw > 4 ? 4 : 0]);                              \
    ptrdiff_t t, j;                                                                                     \
    for (t = 0; t < T0; t += 8 * LZ) {                                                                  \
        VT Ap, Ac;                                                                                      \
        NK_PROWZ_LOAD(t, Ap, Ac, VT, MT, HT, LZ, LH, LOADZ, LOADH, CMPMZ, MBLENDZ, CMPH, BLENDVH, JOIN)  \
        for (j = 0; j < 8; j++) {                                                                       \
            const ptrdiff_t s = t + (j + 1) * LZ;                                                       \
            VT Bp, Bc, accp, accc;                                                                      \
            NK_PROWZ_LOAD(s, Bp, Bc, VT, MT, HT, LZ, LH, LOADZ, LOADH, CMPMZ, MBLENDZ, CMPH, BLENDVH, JOIN)  \
            if (pf && s >= a && s + LZ <= b)                                                            \
                _mm_prefetch((const char *)(xr + (s - a) + pf), _MM_HINT_T0);                           \
            accp = FMAZ(w0, Ap, SETZ());                                                                \
            accp = FMAZ(w1, ALIGNR(Bp, Ap, 1), accp);                                                   \
            accp = FMAZ(w2, ALIGNR(Bp, Ap, 2), accp);                                                   \
            if (kw > 3) accp = FMAZ(w3, ALIGNR(Bp, Ap, 3), accp);                                       \
            if (kw > 4) accp = FMAZ(w4, ALIGNR(Bp, Ap, 4), accp);                                       \
            accc = FMAZ(w0, Ac, SETZ());                                                                \
            accc = FMAZ(w1, ALIGNR(Bc, Ac, 1), accc);                                                   \
            accc = FMAZ(w2, ALIGNR(Bc, Ac, 2), accc);                                                   \
            if (kw > 3) accc = FMAZ(w3, ALIGNR(Bc, Ac, 3), accc);                                       \
            if (kw > 4) accc = FMAZ(w4, ALIGNR(Bc, Ac, 4), accc);                                       \
            STOREZ(outp + t + j * LZ, accp);                                                            \
            STOREZ(outc + t + j * LZ, accc);                                                            \
            Ap = Bp; Ac = Bc;                                                                           \
        }                                                                                               \
    }                                                                                                   \
    return T0;                                                                                          \
}
/* the vector at column S: from x (missing pixels replaced) where nk_prow reads x, else the prepared rows */
#define NK_PROWZ_LOAD(S, P, C, VT, MT, HT, LZ, LH, LOADZ, LOADH, CMPMZ, MBLENDZ, CMPH, BLENDVH, JOIN)                                                                        \
    if ((S) >= a && (S) + LZ <= b) {                                                                    \
        const VT xi = LOADZ(xr + ((S) - a));                                                            \
        const MT miss = CMPMZ(xi, xi, _CMP_UNORD_Q);                                                    \
        P = MBLENDZ(miss, xi, vmp); C = MBLENDZ(miss, one, vmc);                                        \
    } else if ((S) + LZ <= a || (S) >= b) {                                                             \
        P = LOADZ(ep + (S)); C = LOADZ(ec + (S));                                                       \
    } else {                                                                                            \
        HT hp[2], hc[2];                                                                                \
        int h_;                                                                                         \
        for (h_ = 0; h_ < 2; h_++) {                                                                    \
            const ptrdiff_t q_ = (S) + h_ * LH;                                                         \
            if (q_ >= a && q_ < b) {                                                                    \
                const HT xh = LOADH(xr + (q_ - a));                                                     \
                const HT mh = CMPH(xh, xh, _CMP_UNORD_Q);                                               \
                hp[h_] = BLENDVH(xh, hmp, mh); hc[h_] = BLENDVH(hone, hmc, mh);                         \
            } else { hp[h_] = LOADH(ep + q_); hc[h_] = LOADH(ec + q_); }                                \
        }                                                                                               \
        P = JOIN(hp[0], hp[1]); C = JOIN(hc[0], hc[1]);                                                 \
    }
#define NK_JOIN_PD(lo, hi) _mm512_insertf64x4(_mm512_castpd256_pd512(lo), (hi), 1)
#define NK_JOIN_PS(lo, hi) _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), \
                                                              _mm256_castps_pd(hi), 1))
#define NK_ALIGNR_PD(B, A, K) _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(B), _mm512_castpd_si512(A), K))
#define NK_ALIGNR_PS(B, A, K) _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(B), _mm512_castps_si512(A), K))
NK_PROWZ(f64, double, __m512d, __m256d, __mmask8, 8, 4, _mm512_setzero_pd, _mm512_loadu_pd, _mm256_loadu_pd,
         _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_cmp_pd_mask, _mm512_mask_blend_pd, _mm256_cmp_pd,
         _mm256_blendv_pd, _mm256_set1_pd, NK_JOIN_PD, NK_ALIGNR_PD)
NK_PROWZ(f32, float, __m512, __m256, __mmask16, 16, 8, _mm512_setzero_ps, _mm512_loadu_ps, _mm256_loadu_ps,
         _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cmp_ps_mask, _mm512_mask_blend_ps, _mm256_cmp_ps,
         _mm256_blendv_ps, _mm256_set1_ps, NK_JOIN_PS, NK_ALIGNR_PS)
/* The vector width of nk_prow (0: not available: use nk_prep and nk_row). */
static ptrdiff_t nk_prow_lanes(int is_double)
{
    if (!fc_cpu_has_avx2_fma()) return 0;
    return is_double ? 4 : 8;
}
static void nk_prow_f64(double *outp, double *outc, const double *ep, const double *ec, const double *xr,
                        ptrdiff_t a, ptrdiff_t b, const double *v, ptrdiff_t kw, ptrdiff_t n, double mp, double mc,
                        ptrdiff_t pf)
{
    if (nk_use_avx512 && nk_cpu_has_avx512()) {
        const ptrdiff_t t0 = nk_prow512 ? nk_prowz_f64_avx512(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf) : 0;
        nk_prow_f64_avx512(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf, t0);
    }
    else nk_prow_f64_avx2(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf, 0);
}
static void nk_prow_f32(float *outp, float *outc, const float *ep, const float *ec, const float *xr,
                        ptrdiff_t a, ptrdiff_t b, const float *v, ptrdiff_t kw, ptrdiff_t n, float mp, float mc,
                        ptrdiff_t pf)
{
    if (nk_use_avx512 && nk_cpu_has_avx512()) {
        const ptrdiff_t t0 = nk_prow512 ? nk_prowz_f32_avx512(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf) : 0;
        nk_prow_f32_avx512(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf, t0);
    }
    else nk_prow_f32_avx2(outp, outc, ep, ec, xr, a, b, v, kw, n, mp, mc, pf, 0);
}
static void nk_fence(void) { _mm_sfence(); }
/* Ask for the cache lines of [p, p + n) in the L2 cache (the next input row,
 * while this one is being passed: the hardware prefetcher stops at the gap). */
static void nk_prefetch(const void *p, ptrdiff_t nbytes)
{
    const char *c = (const char *)p;
    ptrdiff_t i;
    for (i = 0; i < nbytes; i += 64) _mm_prefetch(c + i, _MM_HINT_T1);
}
#define NK_FINISH1_PICK(SUFFIX, out, num, den, x, n, zt, scale, mc, preserve, stream)                     \
    (fc_cpu_has_avx2_fma() ? nk_finish1_##SUFFIX##_avx2(out, num, den, x, n, zt, scale, mc, preserve, stream) \
                           : nk_finish_##SUFFIX##_base(out, NULL, num, den, x, NULL, n, zt, scale, mc, preserve, 0))
#else
static ptrdiff_t nk_col2x4fin_f64(double *const *o, const double *const *x, const double *const *rp,
                                  const double *const *rc, const double *u, ptrdiff_t kh, ptrdiff_t n, double zt,
                                  double scale, double mcentre, int preserve, int stream)
{ (void)o; (void)x; (void)rp; (void)rc; (void)u; (void)kh; (void)n; (void)zt; (void)scale; (void)mcentre;
  (void)preserve; (void)stream; return -1; }
static ptrdiff_t nk_col2x4fin_f32(float *const *o, const float *const *x, const float *const *rp,
                                  const float *const *rc, const float *u, ptrdiff_t kh, ptrdiff_t n, float zt,
                                  float scale, float mcentre, int preserve, int stream)
{ (void)o; (void)x; (void)rp; (void)rc; (void)u; (void)kh; (void)n; (void)zt; (void)scale; (void)mcentre;
  (void)preserve; (void)stream; return -1; }
static void nk_fence(void) { }
static int nk_lean_fin = 0;
static int nk_nanc_fin = 0;
static int nk_col_pf = 0;
static int nk_row_shuffle = 0;
static int nk_use_avx512 = 0;
static int nk_fin512 = 0;
static int nk_prow512 = 0;
static int nk_cpu_has_avx512(void) { return 0; }
static ptrdiff_t nk_prow_lanes(int is_double) { (void)is_double; return 0; }
static ptrdiff_t nk_prow_from(ptrdiff_t n, ptrdiff_t L) { (void)n; (void)L; return 0; }
static void nk_prow_f64(double *outp, double *outc, const double *ep, const double *ec, const double *xr,
                        ptrdiff_t a, ptrdiff_t b, const double *v, ptrdiff_t kw, ptrdiff_t n, double mp, double mc,
                        ptrdiff_t pf)
{ (void)xr; (void)a; (void)b; (void)mp; (void)mc; (void)pf; nk_row_f64(outp, ep, v, kw, n); nk_row_f64(outc, ec, v, kw, n); }
static void nk_prow_f32(float *outp, float *outc, const float *ep, const float *ec, const float *xr,
                        ptrdiff_t a, ptrdiff_t b, const float *v, ptrdiff_t kw, ptrdiff_t n, float mp, float mc,
                        ptrdiff_t pf)
{ (void)xr; (void)a; (void)b; (void)mp; (void)mc; (void)pf; nk_row_f32(outp, ep, v, kw, n); nk_row_f32(outc, ec, v, kw, n); }
static void nk_prefetch(const void *p, ptrdiff_t nbytes) { (void)p; (void)nbytes; }
#define NK_FINISH1_PICK(SUFFIX, out, num, den, x, n, zt, scale, mc, preserve, stream)                     \
    nk_finish_##SUFFIX##_base(out, NULL, num, den, x, NULL, n, zt, scale, mc, preserve, 0)
#endif
static ptrdiff_t nk_finish1_f32(float *o, const float *num, const float *den, const float *x, ptrdiff_t n,
                                float zt, float scale, float mcentre, int preserve, int stream)
{ return NK_FINISH1_PICK(f32, o, num, den, x, n, zt, scale, mcentre, preserve, stream); }
static ptrdiff_t nk_finish1_f64(double *o, const double *num, const double *den, const double *x, ptrdiff_t n,
                                double zt, double scale, double mcentre, int preserve, int stream)
{ return NK_FINISH1_PICK(f64, o, num, den, x, n, zt, scale, mcentre, preserve, stream); }

#endif
