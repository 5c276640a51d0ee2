/*
 * fastcorr: window statistics of template matching (methods/window.pyx),
 * plain C, double accumulators. One tile of output (a band of rows, a block
 * of columns) is computed from column sums of the tile's centred input rows
 * (rows ``stride`` values apart, ``WC`` of them read):
 *
 *   fw_centre_*  per channel, the mean of (up to 16 of) h input rows: the tile centre
 *   fw_init_*    cs1[j] = sum_i (x[i][j] - cen[j]), cs2[j] = sum_i (x[i][j] - cen[j])^2
 *   fw_update_*  the window moves down one row: row a in, row b out
 *   fw_row       running sums along the row of column sums (one output row):
 *                per window, the centred sum of squares V (0 when flat), the
 *                sum of squares about zero (0 when zero), the channel means
 *   fw_combine_* the scores of one template from those and its correlation
 *   fw_finish1_* one channel and one template: fw_stats and fw_combine in one
 *                pass, from the running sums of fw_sums
 *
 * A running sum per channel is one add per output, a chain of dependent
 * adds; for one channel the row is cut into four segments, each with its
 * own running sums, so that eight independent chains keep the adders busy.
 * Running sums of centred values do not cancel: each step adds the
 * difference of two values of the size of one sample. The default build is
 * baseline x86-64; on x86 with GCC/Clang an AVX2+FMA copy of each loop is
 * compiled with a target attribute and chosen once at run time.
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_WINDOW_KERNELS_H
#define FASTCORR_WINDOW_KERNELS_H

#include <stddef.h>
#include <math.h>

/* FC_X86_DISPATCH, FC_TARGET_AVX2 and the CPU probe fc_cpu_has_avx2_fma */
#include "simd_kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define FW_RESTRICT __restrict__
#else
#define FW_RESTRICT
#endif

/* GCC if-converts the selects of these loops (and so vectorises them) only
 * when floating-point operations may not trap; nothing here reads the FP
 * exception flags. (Clang if-converts them as they are.) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#define FW_POP_OPTIONS 1
#endif

/* The next tile of a call, claimed by whichever thread asks first. */
#if defined(__GNUC__) || defined(__clang__)
#define FW_HAVE_ATOMIC 1
static inline ptrdiff_t fw_claim(ptrdiff_t *counter)
{
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
static inline void fw_claim_all(ptrdiff_t *counter, ptrdiff_t n)
{
    __atomic_store_n(counter, n, __ATOMIC_RELAXED);
}
#else /* no atomics known here: the caller runs one thread */
#define FW_HAVE_ATOMIC 0
static inline ptrdiff_t fw_claim(ptrdiff_t *counter) { return (*counter)++; }
static inline void fw_claim_all(ptrdiff_t *counter, ptrdiff_t n) { *counter = n; }
#endif

/* The AVX2 paths below that have a portable twin: bit 1 the float32
 * 'ccoeff_normed' scores (fw_cn_f32_avx2), bit 2 the one-channel row sums
 * (fw_sums1_avx2), bit 4 the fused row of one-channel float32
 * 'ccoeff_normed' scores (fw_rowcn_f32_avx2: update, sums and scores in one
 * call, the sums without shuffles). All on; ``window._fast_paths`` switches
 * them off to measure them against the portable loops in one process. */
static int fw_fast_paths = 7;

/* Method codes: OpenCV's TM_* constants. */
#define FW_SQDIFF 0
#define FW_SQDIFF_NORMED 1
#define FW_CCORR 2
#define FW_CCORR_NORMED 3
#define FW_CCOEFF 4
#define FW_CCOEFF_NORMED 5

/* Running window sums along a row: s[n*C + c] = sum_{k<w} a[(n+k)*C + c].
 * a1, a2 hold (nout + w - 1) * C values and must be readable for C more
 * (the last update reads one window past the end; its value is unused). */
#define FW_DEFINE_ROW(SUFFIX, ATTR)                                             \
ATTR static void fw_sums_##SUFFIX(const double *FW_RESTRICT a1,                 \
                                  const double *FW_RESTRICT a2,                 \
                                  double *FW_RESTRICT s1, double *FW_RESTRICT s2, \
                                  ptrdiff_t C, ptrdiff_t w, ptrdiff_t nout)     \
{                                                                               \
    ptrdiff_t c, k, j, i;                                                       \
    if (nout <= 0)                                                              \
        return;                                                                 \
    if (C == 1 && nout >= 16) {                                                 \
        const ptrdiff_t L = (nout + 3) / 4;                                     \
        const ptrdiff_t last = nout - 3 * L;                                    \
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;  \
        const double *b0 = a1, *b1 = a1 + L, *b2 = a1 + 2 * L, *b3 = a1 + 3 * L; \
        const double *d0 = a2, *d1 = a2 + L, *d2 = a2 + 2 * L, *d3 = a2 + 3 * L; \
        double *o0 = s1, *o1 = s1 + L, *o2 = s1 + 2 * L, *o3 = s1 + 3 * L;      \
        double *r0 = s2, *r1 = s2 + L, *r2 = s2 + 2 * L, *r3 = s2 + 3 * L;      \
        for (k = 0; k < w; k++) {                                               \
            p0 += b0[k]; p1 += b1[k]; p2 += b2[k]; p3 += b3[k];                 \
            q0 += d0[k]; q1 += d1[k]; q2 += d2[k]; q3 += d3[k];                 \
        }                                                                       \
        for (i = 0; i < last; i++) {                                            \
            o0[i] = p0; o1[i] = p1; o2[i] = p2; o3[i] = p3;                     \
            r0[i] = q0; r1[i] = q1; r2[i] = q2; r3[i] = q3;                     \
            p0 += b0[i + w] - b0[i]; p1 += b1[i + w] - b1[i];                   \
            p2 += b2[i + w] - b2[i]; p3 += b3[i + w] - b3[i];                   \
            q0 += d0[i + w] - d0[i]; q1 += d1[i + w] - d1[i];                   \
            q2 += d2[i + w] - d2[i]; q3 += d3[i + w] - d3[i];                   \
        }                                                                       \
        for (; i < L; i++) {                                                    \
            o0[i] = p0; o1[i] = p1; o2[i] = p2;                                 \
            r0[i] = q0; r1[i] = q1; r2[i] = q2;                                 \
            p0 += b0[i + w] - b0[i]; p1 += b1[i + w] - b1[i];                   \
            p2 += b2[i + w] - b2[i];                                            \
            q0 += d0[i + w] - d0[i]; q1 += d1[i + w] - d1[i];                   \
            q2 += d2[i + w] - d2[i];                                            \
        }                                                                       \
        return;                                                                 \
    }                                                                           \
    for (c = 0; c < C; c++) {                                                   \
        double p = 0, q = 0;                                                    \
        for (k = 0; k < w; k++) {                                               \
            p += a1[k * C + c];                                                 \
            q += a2[k * C + c];                                                 \
        }                                                                       \
        s1[c] = p;                                                              \
        s2[c] = q;                                                              \
    }                                                                           \
    for (j = C; j < nout * C; j++) {                                            \
        s1[j] = s1[j - C] + (a1[j - C + w * C] - a1[j - C]);                    \
        s2[j] = s2[j - C] + (a2[j - C + w * C] - a2[j - C]);                    \
    }                                                                           \
}                                                                               \
/* Per window of one row: rv = sum_c (s2 - s1^2/nw) (0 when <= tol * sum_c s2), \
 * rmu[n*C+c] = s1/nw + cc[c], rq = rv + nw * sum_c rmu^2 (0 when <= tol *     \
 * the magnitudes summed). */                                                   \
ATTR static void fw_stats_##SUFFIX(const double *FW_RESTRICT s1,                \
                                   const double *FW_RESTRICT s2,                \
                                   double *FW_RESTRICT rv, double *FW_RESTRICT rq, \
                                   double *FW_RESTRICT rmu, const double *cc,   \
                                   ptrdiff_t C, ptrdiff_t nout, double nw, double tol) \
{                                                                               \
    const double inv = 1.0 / nw;                                                \
    ptrdiff_t n, c;                                                             \
    if (C == 1) {                                                               \
        const double c0 = cc[0], P = nw * cc[0] * cc[0];                        \
        for (n = 0; n < nout; n++) {                                            \
            const double a = s1[n], b = s2[n];                                  \
            double v = b - a * a * inv;                                         \
            v = v > tol * b ? v : 0.0;                                          \
            const double mu = a * inv + c0;                                     \
            const double q = v + nw * mu * mu;                                  \
            rv[n] = v;                                                          \
            rmu[n] = mu;                                                        \
            rq[n] = q > tol * (b + P) ? q : 0.0;                                \
        }                                                                       \
        return;                                                                 \
    }                                                                           \
    double P = 0;                                                               \
    for (c = 0; c < C; c++)                                                     \
        P += nw * cc[c] * cc[c];                                                \
    for (n = 0; n < nout; n++) {                                                \
        double V = 0, Q = 0, M = 0;                                             \
        for (c = 0; c < C; c++) {                                               \
            const double a = s1[n * C + c], b = s2[n * C + c];                  \
            double v = b - a * a * inv;                                         \
            const double mu = a * inv + cc[c];                                  \
            V += v > 0 ? v : 0.0;                                               \
            Q += b;                                                             \
            M += mu * mu;                                                       \
            rmu[n * C + c] = mu;                                                \
        }                                                                       \
        V = V > tol * Q ? V : 0.0;                                              \
        const double q = V + nw * M;                                            \
        rv[n] = V;                                                              \
        rq[n] = q > tol * (Q + P) ? q : 0.0;                                    \
    }                                                                           \
}

/* Column sums and their updates, and the scores, per input/output type T. */
#define FW_DEFINE_TYPED(SUFFIX, T, ATTR)                                        \
ATTR static void fw_centre_##SUFFIX(const T *x, ptrdiff_t stride, ptrdiff_t WC, ptrdiff_t C, \
                                    ptrdiff_t h, double *FW_RESTRICT acc,       \
                                    double *FW_RESTRICT cc)                     \
{                                                                               \
    ptrdiff_t i, j, c;                                                          \
    /* any centre near the level serves: at most 16 of the h rows */         \
    const ptrdiff_t step = h > 16 ? h / 16 : 1;                                 \
    ptrdiff_t rows = 0;                                                         \
    for (j = 0; j < WC; j++) acc[j] = 0;                                        \
    for (i = 0; i < h; i += step, rows++) {                                     \
        const T *FW_RESTRICT row = x + i * stride;                              \
        for (j = 0; j < WC; j++) acc[j] += row[j];                              \
    }                                                                           \
    for (c = 0; c < C; c++) cc[c] = 0;                                          \
    for (j = 0; j < WC; j++) cc[j % C] += acc[j];                               \
    for (c = 0; c < C; c++) cc[c] /= (double)rows * (double)(WC / C);           \
}                                                                               \
ATTR static void fw_init_##SUFFIX(const T *x, ptrdiff_t stride, ptrdiff_t WC, ptrdiff_t C, \
                                  ptrdiff_t h, const double *FW_RESTRICT cen,   \
                                  double *FW_RESTRICT cs1, double *FW_RESTRICT cs2) \
{                                                                               \
    ptrdiff_t i, j;                                                             \
    for (j = 0; j < WC + C; j++) { cs1[j] = 0; cs2[j] = 0; }                    \
    for (i = 0; i < h; i++) {                                                   \
        const T *FW_RESTRICT row = x + i * stride;                              \
        for (j = 0; j < WC; j++) {                                              \
            const double d = (double)row[j] - cen[j];                           \
            cs1[j] += d;                                                        \
            cs2[j] += d * d;                                                    \
        }                                                                       \
    }                                                                           \
}                                                                               \
ATTR static void fw_update_##SUFFIX(const T *FW_RESTRICT a, const T *FW_RESTRICT b, \
                                    const double *FW_RESTRICT cen,              \
                                    double *FW_RESTRICT cs1, double *FW_RESTRICT cs2, \
                                    ptrdiff_t n)                                \
{                                                                               \
    /* both rows centred first: their sum about zero would round at the   */   \
    /* offset's scale */                                                        \
    ptrdiff_t j;                                                                \
    for (j = 0; j < n; j++) {                                                   \
        const double da = (double)a[j] - cen[j], db = (double)b[j] - cen[j];    \
        cs1[j] += da - db;                                                      \
        cs2[j] += (da - db) * (da + db);                                        \
    }                                                                           \
}                                                                               \
ATTR static void fw_combine_##SUFFIX(T *FW_RESTRICT out, const double *FW_RESTRICT rv, \
                                     const double *FW_RESTRICT rq,              \
                                     const double *FW_RESTRICT rmu,             \
                                     const double *FW_RESTRICT tmean, double tv, \
                                     double ts, int method, ptrdiff_t C,        \
                                     ptrdiff_t nout, double nw)                 \
{                                                                               \
    /* Branch-free selects (the division always runs, on a safe operand) */     \
    /* so that the loops vectorise. */                                          \
    ptrdiff_t n, c;                                                             \
    if (method == FW_CCOEFF_NORMED) {                                           \
        for (n = 0; n < nout; n++) {                                            \
            const double den = rv[n] * tv;                                      \
            const int ok = den > 0;                                             \
            double r = (double)out[n] / sqrt(ok ? den : 1.0);                   \
            r = ok ? r : 0.0;                                                   \
            r = r > 1.0 ? 1.0 : r;                                              \
            r = r < -1.0 ? -1.0 : r;                                            \
            out[n] = (T)r;                                                      \
        }                                                                       \
    } else if (method == FW_CCORR || method == FW_CCORR_NORMED) {               \
        const int normed = method == FW_CCORR_NORMED;                           \
        for (n = 0; n < nout; n++) {                                            \
            double r = out[n];                                                  \
            for (c = 0; c < C; c++) r += nw * tmean[c] * rmu[n * C + c];        \
            const double den = normed ? rq[n] * ts : 1.0;                       \
            const int ok = den > 0;                                             \
            r = r / sqrt(ok ? den : 1.0);                                       \
            r = ok ? r : 0.0;                                                   \
            r = (normed && r > 1.0) ? 1.0 : r;                                  \
            r = (normed && r < -1.0) ? -1.0 : r;                                \
            out[n] = (T)r;                                                      \
        }                                                                       \
    } else if (method == FW_SQDIFF || method == FW_SQDIFF_NORMED) {             \
        const int normed = method == FW_SQDIFF_NORMED;                          \
        for (n = 0; n < nout; n++) {                                            \
            double r = rv[n] - 2.0 * (double)out[n] + tv;                       \
            for (c = 0; c < C; c++) {                                           \
                const double d = rmu[n * C + c] - tmean[c];                     \
                r += nw * d * d;                                                \
            }                                                                   \
            r = r > 0 ? r : 0.0;                                                \
            const double den = normed ? rq[n] * ts : 1.0;                       \
            const int ok = den > 0;                                             \
            r = r / sqrt(ok ? den : 1.0);                                       \
            r = ok ? r : 1.0;                                                   \
            r = (normed && r > 1.0) ? 1.0 : r;                                  \
            out[n] = (T)r;                                                      \
        }                                                                       \
    }                                                                           \
}

/* One channel, one template: the statistics of fw_stats and the scores of  */ \
/* fw_combine in one pass over the row's window sums (no per-window arrays). */
#define FW_FINISH1_BODY(T, IN)                                                  \
{                                                                               \
    const double inv = 1.0 / nw, P = nw * c0 * c0;                              \
    ptrdiff_t n;                                                                \
    if (method == FW_CCOEFF_NORMED && sizeof(T) == 4 && tv > 1e-30 && tv < 1e30) { \
        /* float output: the square root and division in single precision  */ \
        /* (8 lanes, not 4) when every window's sum of squares about the    */ \
        /* centre lies well inside float's range (relative error ~2e-7).    */ \
        double bmax = 0.0, bmin = 1e300;                                        \
        for (n = 0; n < nout; n++) {                                            \
            const double b = s2[n];                                             \
            bmax = b > bmax ? b : bmax;                                         \
            bmin = (b > 0 && b < bmin) ? b : bmin;                              \
        }                                                                       \
        if (bmax < 1e30 && bmin > 1e-20) {                                      \
            const float rs = (float)(1.0 / sqrt(tv));                           \
            for (n = 0; n < nout; n++) {                                        \
                const double a = s1[n], b = s2[n];                              \
                double v = b - a * a * inv;                                     \
                v = v > tol * b ? v : 0.0;                                      \
                const float vf = (float)v;                                      \
                const int ok = vf > 0;                                          \
                float r = ((float)IN[n] * rs) / sqrtf(ok ? vf : 1.0f);          \
                r = ok ? r : 0.0f;                                              \
                r = r > 1.0f ? 1.0f : r;                                        \
                r = r < -1.0f ? -1.0f : r;                                      \
                out[n] = (T)r;                                                  \
            }                                                                   \
            return;                                                             \
        }                                                                       \
    }                                                                           \
    if (method == FW_CCOEFF_NORMED) {                                           \
        for (n = 0; n < nout; n++) {                                            \
            const double a = s1[n], b = s2[n];                                  \
            double v = b - a * a * inv;                                         \
            v = v > tol * b ? v : 0.0;                                          \
            const double den = v * tv;                                          \
            const int ok = den > 0;                                             \
            double r = (double)IN[n] / sqrt(ok ? den : 1.0);                   \
            r = ok ? r : 0.0;                                                   \
            r = r > 1.0 ? 1.0 : r;                                              \
            r = r < -1.0 ? -1.0 : r;                                            \
            out[n] = (T)r;                                                      \
        }                                                                       \
        return;                                                                 \
    }                                                                           \
    for (n = 0; n < nout; n++) {                                                \
        const double a = s1[n], b = s2[n];                                      \
        double v = b - a * a * inv;                                             \
        v = v > tol * b ? v : 0.0;                                              \
        const double mu = a * inv + c0;                                         \
        double q = v + nw * mu * mu;                                            \
        q = q > tol * (b + P) ? q : 0.0;                                        \
        double r, den;                                                          \
        int normed;                                                             \
        if (method == FW_CCORR || method == FW_CCORR_NORMED) {                  \
            r = (double)IN[n] + nw * tmean * mu;                               \
            normed = method == FW_CCORR_NORMED;                                 \
        } else if (method == FW_SQDIFF || method == FW_SQDIFF_NORMED) {         \
            const double d = mu - tmean;                                        \
            r = v - 2.0 * (double)IN[n] + tv + nw * d * d;                     \
            r = r > 0 ? r : 0.0;                                                \
            normed = method == FW_SQDIFF_NORMED;                                \
        } else {                                                                \
            r = IN[n];                                                         \
            normed = 0;                                                         \
        }                                                                       \
        den = normed ? q * ts : 1.0;                                            \
        const int ok = den > 0;                                                 \
        r = r / sqrt(ok ? den : 1.0);                                           \
        r = ok ? r : (method == FW_SQDIFF_NORMED ? 1.0 : 0.0);                  \
        r = (normed && r > 1.0) ? 1.0 : r;                                      \
        r = (normed && r < -1.0) ? -1.0 : r;                                    \
        out[n] = (T)r;                                                          \
    }                                                                           \
}

#define FW_DEFINE_FINISH1(SUFFIX, T, ATTR)                                      \
ATTR static void fw_finish1_##SUFFIX(T *FW_RESTRICT out, const double *FW_RESTRICT s1, \
                                     const double *FW_RESTRICT s2, double c0,   \
                                     double tmean, double tv, double ts,        \
                                     int method, ptrdiff_t nout, double nw,     \
                                     double tol)                                \
FW_FINISH1_BODY(T, out)                                                         \
/* the same, reading the correlations from ``in`` (another array) */           \
ATTR static void fw_finish1io_##SUFFIX(const T *FW_RESTRICT in, T *FW_RESTRICT out, \
                                       const double *FW_RESTRICT s1,            \
                                       const double *FW_RESTRICT s2, double c0, \
                                       double tmean, double tv, double ts,      \
                                       int method, ptrdiff_t nout, double nw,   \
                                       double tol)                              \
FW_FINISH1_BODY(T, in)

FW_DEFINE_ROW(base, )
FW_DEFINE_TYPED(f32_base, float, )
FW_DEFINE_TYPED(f64_base, double, )
FW_DEFINE_FINISH1(f32_base, float, )
FW_DEFINE_FINISH1(f64_base, double, )
#if FC_X86_DISPATCH
FW_DEFINE_ROW(avx2, FC_TARGET_AVX2)
FW_DEFINE_TYPED(f32_avx2, float, FC_TARGET_AVX2)
FW_DEFINE_TYPED(f64_avx2, double, FC_TARGET_AVX2)
FW_DEFINE_FINISH1(f32_avx2, float, FC_TARGET_AVX2)
FW_DEFINE_FINISH1(f64_avx2, double, FC_TARGET_AVX2)
#define FW_PICK(NAME, SUFFIX, ...) \
    (fc_cpu_has_avx2_fma() ? NAME##_##SUFFIX##avx2(__VA_ARGS__) : NAME##_##SUFFIX##base(__VA_ARGS__))
#else
#define FW_PICK(NAME, SUFFIX, ...) NAME##_##SUFFIX##base(__VA_ARGS__)
#endif

#if FC_X86_DISPATCH
#include <immintrin.h>

/* One channel, one template, 'ccoeff_normed', float32 out, AVX2: the score
 * ``in * rsqrt(tv) * rsqrt(v)`` with the square roots and the division
 * replaced by the reciprocal square root estimate and one Newton step
 * (relative error below 4e-7, against 1.2e-7 for a rounded float32
 * division): vsqrtps and vdivps held the loop at a third of the speed of
 * the window sums it follows. A group of 8 windows with a variance outside
 * [1e-30, 1e30] (float's comfortable range) takes the scalar double formula,
 * as every window of the tail does. ``in`` may be ``out``. */
FC_TARGET_AVX2 static void fw_cn_f32_avx2(const float *in, float *out, const double *FW_RESTRICT s1,
                                          const double *FW_RESTRICT s2, double tv, ptrdiff_t nout,
                                          double nw, double tol)
{
    const double inv = 1.0 / nw;
    const __m256d vinv = _mm256_set1_pd(inv), vtol = _mm256_set1_pd(tol);
    const __m256 rs = _mm256_set1_ps((float)(1.0 / sqrt(tv)));
    const __m256 lo = _mm256_set1_ps(1e-30f), hi = _mm256_set1_ps(1e30f), zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f), mone = _mm256_set1_ps(-1.0f);
    const __m256 half = _mm256_set1_ps(0.5f), threehalves = _mm256_set1_ps(1.5f);
    ptrdiff_t n = 0, k;
    for (; n + 8 <= nout; n += 8) {
        const __m256d a0 = _mm256_loadu_pd(s1 + n), a1 = _mm256_loadu_pd(s1 + n + 4);
        const __m256d b0 = _mm256_loadu_pd(s2 + n), b1 = _mm256_loadu_pd(s2 + n + 4);
        __m256d v0 = _mm256_fnmadd_pd(_mm256_mul_pd(a0, a0), vinv, b0);
        __m256d v1 = _mm256_fnmadd_pd(_mm256_mul_pd(a1, a1), vinv, b1);
        v0 = _mm256_and_pd(v0, _mm256_cmp_pd(v0, _mm256_mul_pd(vtol, b0), _CMP_GT_OQ));
        v1 = _mm256_and_pd(v1, _mm256_cmp_pd(v1, _mm256_mul_pd(vtol, b1), _CMP_GT_OQ));
        const __m256 v = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(v0)), _mm256_cvtpd_ps(v1), 1);
        const __m256 ok = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
        const __m256 odd = _mm256_and_ps(ok, _mm256_or_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ),
                                                          _mm256_cmp_ps(v, hi, _CMP_GT_OQ)));
        const __m256 x = _mm256_loadu_ps(in + n);
        if (_mm256_movemask_ps(odd)) {
            float tmp[8];
            for (k = 0; k < 8; k++) {
                const double a = s1[n + k], b = s2[n + k];
                double vv = b - a * a * inv;
                vv = vv > tol * b ? vv : 0.0;
                const double den = vv * tv;
                double r = den > 0 ? (double)in[n + k] / sqrt(den) : 0.0;
                r = r > 1.0 ? 1.0 : r;
                tmp[k] = (float)(r < -1.0 ? -1.0 : r);
            }
            _mm256_storeu_ps(out + n, _mm256_loadu_ps(tmp));
            continue;
        }
        __m256 y = _mm256_rsqrt_ps(_mm256_max_ps(v, lo));
        y = _mm256_mul_ps(y, _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, v), y), y, threehalves));
        __m256 r = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(x, rs), y), ok);
        r = _mm256_min_ps(_mm256_max_ps(r, mone), one);
        _mm256_storeu_ps(out + n, r);
    }
    for (; n < nout; n++) {
        const double a = s1[n], b = s2[n];
        double vv = b - a * a * inv;
        vv = vv > tol * b ? vv : 0.0;
        const double den = vv * tv;
        double r = den > 0 ? (double)in[n] / sqrt(den) : 0.0;
        r = r > 1.0 ? 1.0 : r;
        out[n] = (float)(r < -1.0 ? -1.0 : r);
    }
}
/* fw_sums for one channel, AVX2: the row's differences a[i + w] - a[i]
 * four at a time, summed within the vector (two shifts and adds) onto the
 * last window's sum broadcast. Four segments of the row (two sums each)
 * advance together: eight independent chains. Rounding as the scalar
 * running sums (each sum a chain of adds of differences of two samples). */
#define FW_PFX(D)                                                               \
    do {                                                                        \
        D = _mm256_add_pd(D, _mm256_blend_pd(_mm256_permute4x64_pd(D, 0x90), zero, 1)); \
        D = _mm256_add_pd(D, _mm256_blend_pd(_mm256_permute4x64_pd(D, 0x40), zero, 3)); \
    } while (0)
#define FW_SUMSTEP(Q)                                                           \
    do {                                                                        \
        const ptrdiff_t o_ = o##Q + i;                                          \
        __m256d d1_ = _mm256_sub_pd(_mm256_loadu_pd(a1 + o_ + w), _mm256_loadu_pd(a1 + o_)); \
        __m256d d2_ = _mm256_sub_pd(_mm256_loadu_pd(a2 + o_ + w), _mm256_loadu_pd(a2 + o_)); \
        FW_PFX(d1_);                                                            \
        FW_PFX(d2_);                                                            \
        d1_ = _mm256_add_pd(c1_##Q, d1_);                                       \
        d2_ = _mm256_add_pd(c2_##Q, d2_);                                       \
        _mm256_storeu_pd(s1 + o_ + 1, d1_);                                     \
        _mm256_storeu_pd(s2 + o_ + 1, d2_);                                     \
        c1_##Q = _mm256_permute4x64_pd(d1_, 0xFF);                              \
        c2_##Q = _mm256_permute4x64_pd(d2_, 0xFF);                              \
    } while (0)
FC_TARGET_AVX2 static void fw_sums1_avx2(const double *FW_RESTRICT a1, const double *FW_RESTRICT a2,
                                         double *FW_RESTRICT s1, double *FW_RESTRICT s2, ptrdiff_t w,
                                         ptrdiff_t nout)
{
    const __m256d zero = _mm256_setzero_pd();
    const ptrdiff_t L = (nout + 3) / 4;
    const ptrdiff_t o0 = 0, o1 = L, o2 = 2 * L, o3 = 3 * L;
    const ptrdiff_t last = nout - 3 * L;            /* the last segment's length, >= 1 for nout >= 16 */
    const ptrdiff_t steps = (last - 1) / 4;
    ptrdiff_t q, i, k;
    {
        /* the four segments' first windows, four values a step: eight
         * independent vector sums (one add chain of w per segment held the
         * row at w * 4 add latencies: 256² templates) */
        __m256d p0 = zero, p1 = zero, p2 = zero, p3 = zero, r0 = zero, r1 = zero, r2 = zero, r3 = zero;
        for (k = 0; k + 4 <= w; k += 4) {
            p0 = _mm256_add_pd(p0, _mm256_loadu_pd(a1 + o0 + k));
            r0 = _mm256_add_pd(r0, _mm256_loadu_pd(a2 + o0 + k));
            p1 = _mm256_add_pd(p1, _mm256_loadu_pd(a1 + o1 + k));
            r1 = _mm256_add_pd(r1, _mm256_loadu_pd(a2 + o1 + k));
            p2 = _mm256_add_pd(p2, _mm256_loadu_pd(a1 + o2 + k));
            r2 = _mm256_add_pd(r2, _mm256_loadu_pd(a2 + o2 + k));
            p3 = _mm256_add_pd(p3, _mm256_loadu_pd(a1 + o3 + k));
            r3 = _mm256_add_pd(r3, _mm256_loadu_pd(a2 + o3 + k));
        }
        double sp[4][4], sr[4][4];
        _mm256_storeu_pd(sp[0], p0); _mm256_storeu_pd(sp[1], p1);
        _mm256_storeu_pd(sp[2], p2); _mm256_storeu_pd(sp[3], p3);
        _mm256_storeu_pd(sr[0], r0); _mm256_storeu_pd(sr[1], r1);
        _mm256_storeu_pd(sr[2], r2); _mm256_storeu_pd(sr[3], r3);
        for (q = 0; q < 4; q++) {
            const ptrdiff_t o = q * L;
            double p = (sp[q][0] + sp[q][1]) + (sp[q][2] + sp[q][3]);
            double r = (sr[q][0] + sr[q][1]) + (sr[q][2] + sr[q][3]);
            for (i = k; i < w; i++) {
                p += a1[o + i];
                r += a2[o + i];
            }
            s1[o] = p;
            s2[o] = r;
        }
    }
    __m256d c1_0 = _mm256_set1_pd(s1[o0]), c2_0 = _mm256_set1_pd(s2[o0]);
    __m256d c1_1 = _mm256_set1_pd(s1[o1]), c2_1 = _mm256_set1_pd(s2[o1]);
    __m256d c1_2 = _mm256_set1_pd(s1[o2]), c2_2 = _mm256_set1_pd(s2[o2]);
    __m256d c1_3 = _mm256_set1_pd(s1[o3]), c2_3 = _mm256_set1_pd(s2[o3]);
    for (i = 0; i < 4 * steps; i += 4) {
        FW_SUMSTEP(0);
        FW_SUMSTEP(1);
        FW_SUMSTEP(2);
        FW_SUMSTEP(3);
    }
    for (q = 0; q < 4; q++) {
        const ptrdiff_t o = q * L, len = q < 3 ? L : last;
        double p = s1[o + i], r = s2[o + i];
        for (k = i; k + 1 < len; k++) {
            p += a1[o + k + w] - a1[o + k];
            r += a2[o + k + w] - a2[o + k];
            s1[o + k + 1] = p;
            s2[o + k + 1] = r;
        }
    }
}
/* One channel, float32 image, 'ccoeff_normed', one template: a whole output
 * row in one call (fw_rowcn_f32): the column sums' update by the image rows
 * ``xa`` (in) and ``xb`` (out; NULL: no update), the windows' sums along the
 * row and the scores, without the lane shuffles of fw_sums1_avx2. With
 * P[j] = cs[j] + ... + cs[j + 3] (a pass of unaligned loads), four windows
 * four columns on are ``s[n + 4] = s[n] + P[n + w] - P[n]``: one vector
 * add chain per sum, each step adding a difference of two sums of four
 * centred column sums (rounding as the running sums of fw_sums). The scores
 * as fw_cn_f32_avx2 (groups of 8 windows with a variance outside float's
 * comfortable range, and the tail, by the double formula). ``p1``, ``p2``:
 * scratch of tw + 8 doubles; ``in`` may be ``out``. nout >= 8, w >= 1. */
static inline float fw_cn_scalar(float x, double a, double b, double tv, double inv, double tol)
{
    double v = b - a * a * inv;
    v = v > tol * b ? v : 0.0;
    const double den = v * tv;
    double r = den > 0 ? (double)x / sqrt(den) : 0.0;
    r = r > 1.0 ? 1.0 : r;
    return (float)(r < -1.0 ? -1.0 : r);
}
FC_TARGET_AVX2 static void fw_rowcn_f32_avx2(const float *xa, const float *xb, double c0,
                                             double *FW_RESTRICT cs1, double *FW_RESTRICT cs2,
                                             double *FW_RESTRICT p1, double *FW_RESTRICT p2, ptrdiff_t tw,
                                             ptrdiff_t w, const float *in, float *out, ptrdiff_t nout,
                                             double tv, double nw, double tol)
{
    const double inv = 1.0 / nw;
    const ptrdiff_t np = tw - 3;                    /* P[0 .. np) */
    ptrdiff_t j, n, k;
    if (xb != NULL) {
        const __m256d vc = _mm256_set1_pd(c0);
        for (j = 0; j + 4 <= tw; j += 4) {
            const __m256d da = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xa + j)), vc);
            const __m256d db = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xb + j)), vc);
            const __m256d d = _mm256_sub_pd(da, db);
            _mm256_storeu_pd(cs1 + j, _mm256_add_pd(_mm256_loadu_pd(cs1 + j), d));
            _mm256_storeu_pd(cs2 + j, _mm256_fmadd_pd(d, _mm256_add_pd(da, db), _mm256_loadu_pd(cs2 + j)));
        }
        for (; j < tw; j++) {
            const double da = (double)xa[j] - c0, db = (double)xb[j] - c0;
            cs1[j] += da - db;
            cs2[j] += (da - db) * (da + db);
        }
    }
    for (j = 0; j + 4 <= np; j += 4) {
        _mm256_storeu_pd(p1 + j, _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(cs1 + j), _mm256_loadu_pd(cs1 + j + 1)),
                                               _mm256_add_pd(_mm256_loadu_pd(cs1 + j + 2), _mm256_loadu_pd(cs1 + j + 3))));
        _mm256_storeu_pd(p2 + j, _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(cs2 + j), _mm256_loadu_pd(cs2 + j + 1)),
                                               _mm256_add_pd(_mm256_loadu_pd(cs2 + j + 2), _mm256_loadu_pd(cs2 + j + 3))));
    }
    for (; j < np; j++) {
        p1[j] = (cs1[j] + cs1[j + 1]) + (cs1[j + 2] + cs1[j + 3]);
        p2[j] = (cs2[j] + cs2[j + 1]) + (cs2[j + 2] + cs2[j + 3]);
    }
    for (j = np; j < np + 8; j++) {                 /* read past the row by the last step, unused */
        p1[j] = 0.0;
        p2[j] = 0.0;
    }
    /* the first four windows */
    double t1[12], t2[12];
    {
        /* four vector sums a step (a chain of w adds held long templates) */
        __m256d va0 = _mm256_setzero_pd(), va1 = va0, vb0 = va0, vb1 = va0;
        for (k = 0; k + 8 <= w; k += 8) {
            va0 = _mm256_add_pd(va0, _mm256_loadu_pd(cs1 + k));
            va1 = _mm256_add_pd(va1, _mm256_loadu_pd(cs1 + k + 4));
            vb0 = _mm256_add_pd(vb0, _mm256_loadu_pd(cs2 + k));
            vb1 = _mm256_add_pd(vb1, _mm256_loadu_pd(cs2 + k + 4));
        }
        double sa[4], sb[4];
        _mm256_storeu_pd(sa, _mm256_add_pd(va0, va1));
        _mm256_storeu_pd(sb, _mm256_add_pd(vb0, vb1));
        double a = (sa[0] + sa[1]) + (sa[2] + sa[3]), b = (sb[0] + sb[1]) + (sb[2] + sb[3]);
        for (; k < w; k++) {
            a += cs1[k];
            b += cs2[k];
        }
        t1[0] = a;
        t2[0] = b;
        for (k = 1; k < 4; k++) {
            t1[k] = t1[k - 1] + (cs1[k - 1 + w] - cs1[k - 1]);
            t2[k] = t2[k - 1] + (cs2[k - 1 + w] - cs2[k - 1]);
        }
    }
    const __m256d vinv = _mm256_set1_pd(inv), vtol = _mm256_set1_pd(tol);
    const __m256 rs = _mm256_set1_ps((float)(1.0 / sqrt(tv)));
    const __m256 lo = _mm256_set1_ps(1e-30f), hi = _mm256_set1_ps(1e30f), zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f), mone = _mm256_set1_ps(-1.0f);
    const __m256 half = _mm256_set1_ps(0.5f), threehalves = _mm256_set1_ps(1.5f);
    __m256d A1 = _mm256_loadu_pd(t1), A2 = _mm256_loadu_pd(t2);
    for (n = 0; n + 8 <= nout; n += 8) {
        const __m256d B1 = _mm256_add_pd(A1, _mm256_sub_pd(_mm256_loadu_pd(p1 + n + w), _mm256_loadu_pd(p1 + n)));
        const __m256d B2 = _mm256_add_pd(A2, _mm256_sub_pd(_mm256_loadu_pd(p2 + n + w), _mm256_loadu_pd(p2 + n)));
        __m256d v0 = _mm256_fnmadd_pd(_mm256_mul_pd(A1, A1), vinv, A2);
        __m256d v1 = _mm256_fnmadd_pd(_mm256_mul_pd(B1, B1), vinv, B2);
        v0 = _mm256_and_pd(v0, _mm256_cmp_pd(v0, _mm256_mul_pd(vtol, A2), _CMP_GT_OQ));
        v1 = _mm256_and_pd(v1, _mm256_cmp_pd(v1, _mm256_mul_pd(vtol, B2), _CMP_GT_OQ));
        const __m256 v = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(v0)), _mm256_cvtpd_ps(v1), 1);
        const __m256 ok = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
        const __m256 odd = _mm256_and_ps(ok, _mm256_or_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ),
                                                          _mm256_cmp_ps(v, hi, _CMP_GT_OQ)));
        const __m256 x = _mm256_loadu_ps(in + n);
        if (_mm256_movemask_ps(odd)) {
            double u1[8], u2[8];
            float xs[8], tmp[8];
            _mm256_storeu_pd(u1, A1); _mm256_storeu_pd(u1 + 4, B1);
            _mm256_storeu_pd(u2, A2); _mm256_storeu_pd(u2 + 4, B2);
            _mm256_storeu_ps(xs, x);
            for (k = 0; k < 8; k++)
                tmp[k] = fw_cn_scalar(xs[k], u1[k], u2[k], tv, inv, tol);
            _mm256_storeu_ps(out + n, _mm256_loadu_ps(tmp));
        } else {
            __m256 y = _mm256_rsqrt_ps(_mm256_max_ps(v, lo));
            y = _mm256_mul_ps(y, _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, v), y), y, threehalves));
            __m256 r = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(x, rs), y), ok);
            r = _mm256_min_ps(_mm256_max_ps(r, mone), one);
            _mm256_storeu_ps(out + n, r);
        }
        A1 = _mm256_add_pd(B1, _mm256_sub_pd(_mm256_loadu_pd(p1 + n + 4 + w), _mm256_loadu_pd(p1 + n + 4)));
        A2 = _mm256_add_pd(B2, _mm256_sub_pd(_mm256_loadu_pd(p2 + n + 4 + w), _mm256_loadu_pd(p2 + n + 4)));
    }
    /* the tail: windows n .. nout - 1 (fewer than 8), A holding n .. n + 3 */
    _mm256_storeu_pd(t1, A1);
    _mm256_storeu_pd(t2, A2);
    for (k = 4; k < nout - n; k++) {
        t1[k] = t1[k - 4] + (p1[n + k - 4 + w] - p1[n + k - 4]);
        t2[k] = t2[k - 4] + (p2[n + k - 4 + w] - p2[n + k - 4]);
    }
    for (k = 0; n + k < nout; k++)
        out[n + k] = fw_cn_scalar(in[n + k], t1[k], t2[k], tv, inv, tol);
}
#define FW_SUMS_FAST(a1, a2, s1, s2, C, w, nout)                                \
    if (C == 1 && nout >= 16 && (fw_fast_paths & 2) && fc_cpu_has_avx2_fma()) {       \
        fw_sums1_avx2(a1, a2, s1, s2, w, nout);                                 \
    } else
#define FW_CN_F32(IN, OUT)                                                      \
    if (method == FW_CCOEFF_NORMED && tv > 1e-30 && tv < 1e30 && (fw_fast_paths & 1) && fc_cpu_has_avx2_fma()) { \
        fw_cn_f32_avx2(IN, OUT, s1, s2, tv, nout, nw, tol);                     \
        return;                                                                 \
    }
#else
#define FW_CN_F32(IN, OUT)
#define FW_SUMS_FAST(a1, a2, s1, s2, C, w, nout)
#endif
#define FW_CN_f32(IN, OUT) FW_CN_F32(IN, OUT)
#define FW_CN_f64(IN, OUT)

/* fw_rowcn_f32_avx2 where it serves (bit 4 of fw_fast_paths, AVX2, the
 * template's sum of squares in float's range, nout >= 8): 0, else -1 (the
 * caller takes fw_update / fw_sums / fw_finish1io). */
static int fw_rowcn_f32(const float *xa, const float *xb, double c0, double *cs1, double *cs2, double *p1,
                        double *p2, ptrdiff_t tw, ptrdiff_t w, const float *in, float *out, ptrdiff_t nout,
                        double tv, double nw, double tol)
{
#if FC_X86_DISPATCH
    if ((fw_fast_paths & 4) && nout >= 8 && tv > 1e-30 && tv < 1e30 && fc_cpu_has_avx2_fma()) {
        fw_rowcn_f32_avx2(xa, xb, c0, cs1, cs2, p1, p2, tw, w, in, out, nout, tv, nw, tol);
        return 0;
    }
#endif
    (void)xa; (void)xb; (void)c0; (void)cs1; (void)cs2; (void)p1; (void)p2; (void)tw; (void)w; (void)in;
    (void)out; (void)nout; (void)tv; (void)nw; (void)tol;
    return -1;
}

static void fw_sums(const double *a1, const double *a2, double *s1, double *s2, ptrdiff_t C, ptrdiff_t w,
                    ptrdiff_t nout)
{
    FW_SUMS_FAST(a1, a2, s1, s2, C, w, nout)
    FW_PICK(fw_sums, , a1, a2, s1, s2, C, w, nout);
}

static void fw_row(const double *a1, const double *a2, double *s1, double *s2, double *rv, double *rq,
                   double *rmu, const double *cc, ptrdiff_t C, ptrdiff_t w, ptrdiff_t nout, double nw,
                   double tol)
{
    FW_SUMS_FAST(a1, a2, s1, s2, C, w, nout)
    FW_PICK(fw_sums, , a1, a2, s1, s2, C, w, nout);
    FW_PICK(fw_stats, , s1, s2, rv, rq, rmu, cc, C, nout, nw, tol);
}


#define FW_DEFINE_ENTRY(S, T)                                                   \
static void fw_centre_##S(const T *x, ptrdiff_t stride, ptrdiff_t WC, ptrdiff_t C, ptrdiff_t h, \
                          double *acc, double *cc)                              \
{ FW_PICK(fw_centre, S##_, x, stride, WC, C, h, acc, cc); }                     \
static void fw_init_##S(const T *x, ptrdiff_t stride, ptrdiff_t WC, ptrdiff_t C, ptrdiff_t h, \
                        const double *cen, double *cs1, double *cs2)            \
{ FW_PICK(fw_init, S##_, x, stride, WC, C, h, cen, cs1, cs2); }                 \
static void fw_update_##S(const T *a, const T *b, const double *cen, double *cs1, \
                          double *cs2, ptrdiff_t n)                             \
{ FW_PICK(fw_update, S##_, a, b, cen, cs1, cs2, n); }                           \
static void fw_combine_##S(T *out, const double *rv, const double *rq,          \
                           const double *rmu, const double *tmean, double tv,   \
                           double ts, int method, ptrdiff_t C, ptrdiff_t nout,  \
                           double nw)                                           \
{ FW_PICK(fw_combine, S##_, out, rv, rq, rmu, tmean, tv, ts, method, C, nout, nw); } \
static void fw_finish1_##S(T *out, const double *s1, const double *s2, double c0, \
                           double tmean, double tv, double ts, int method,     \
                           ptrdiff_t nout, double nw, double tol)              \
{ FW_CN_##S(out, out) FW_PICK(fw_finish1, S##_, out, s1, s2, c0, tmean, tv, ts, method, nout, nw, tol); } \
static void fw_finish1io_##S(const T *in, T *out, const double *s1, const double *s2, double c0, \
                             double tmean, double tv, double ts, int method,   \
                             ptrdiff_t nout, double nw, double tol)            \
{ FW_CN_##S(in, out) FW_PICK(fw_finish1io, S##_, in, out, s1, s2, c0, tmean, tv, ts, method, nout, nw, tol); }

FW_DEFINE_ENTRY(f32, float)
FW_DEFINE_ENTRY(f64, double)

/* A stack of templates, 'ccoeff_normed', one channel: each window's
 * 1/sqrt(V) (0 for a flat window) once per block (fw_rstd_*), then per
 * template ``out = clamp(in * rs * r, -1, 1)`` with rs = 1/sqrt(tvar)
 * (fw_apply_*). fw_rstd_* returns 1 when ``check`` and some window's
 * 1/sqrt(V) lies outside [1e-30, 1e30] (a float32 buffer would lose it):
 * the caller then scores that block per template instead. */
#define FW_DEFINE_RSTD(SUFFIX, T)                                               \
static int fw_rstd_##SUFFIX(T *FW_RESTRICT r, const double *FW_RESTRICT s1,     \
                            const double *FW_RESTRICT s2, ptrdiff_t nout,       \
                            double nw, double tol, int check)                   \
{                                                                               \
    const double inv = 1.0 / nw;                                                \
    int odd = 0;                                                                \
    ptrdiff_t n;                                                                \
    for (n = 0; n < nout; n++) {                                                \
        const double a = s1[n], b = s2[n];                                      \
        double v = b - a * a * inv;                                             \
        v = v > tol * b ? v : 0.0;                                              \
        const int ok = v > 0;                                                   \
        const double q = 1.0 / sqrt(ok ? v : 1.0);                              \
        odd |= ok & ((q > 1e30) | (q < 1e-30));                                 \
        r[n] = (T)(ok ? q : 0.0);                                               \
    }                                                                           \
    return check ? odd : 0;                                                     \
}                                                                               \
static void fw_apply_##SUFFIX(const T *FW_RESTRICT in, T *FW_RESTRICT out,      \
                              const T *FW_RESTRICT r, T rs, ptrdiff_t nout)     \
{                                                                               \
    ptrdiff_t n;                                                                \
    for (n = 0; n < nout; n++) {                                                \
        T y = in[n] * rs * r[n];                                                \
        y = y > (T)1 ? (T)1 : y;                                                \
        out[n] = y < (T)-1 ? (T)-1 : y;                                         \
    }                                                                           \
}
FW_DEFINE_RSTD(f32, float)
FW_DEFINE_RSTD(f64, double)

#ifdef FW_POP_OPTIONS
#pragma GCC pop_options
#endif

#endif
