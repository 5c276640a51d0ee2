/*
 * fastcorr: the innermost loops of the direct method, in plain C.
 *
 * One "rows kernel" accumulates, for n output columns of one output row,
 *     acc[t] += sum_r sum_k w[r][k] * rows[r][t + k]      (t = 0..n-1)
 * where rows[r] are pointers into input rows (already shifted to the first
 * input column the block reads) and w[r] the matching kernel rows.
 * The output is processed in register blocks of FC_NB columns: each block
 * loads its accumulators once, streams every kernel tap over them, and stores
 * once, so the loop is bound by one load per fused multiply-add rather than
 * by loads and stores of the accumulator.
 *
 * Portability: the default build targets baseline x86-64 (SSE2). On x86 with
 * GCC or Clang an AVX2+FMA twin of each float kernel is compiled with a
 * target attribute and chosen at run time with __builtin_cpu_supports, so a
 * wheel runs on any x86-64 and uses AVX2 where the CPU has it.
 *
 * The functions know nothing of Python; they are thread-safe (no state
 * besides the one-time, idempotent CPU probe).
 */
#ifndef FASTCORR_SIMD_KERNELS_H
#define FASTCORR_SIMD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define FC_NB 64

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FC_X86_DISPATCH 1
#define FC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define FC_X86_DISPATCH 0
#endif

#ifdef _OPENMP
#define FC_OPENMP 1
#else
#define FC_OPENMP 0
#endif

/* Which build description compiled this (meson.build or setup.py pass it). */
#ifndef FC_BUILD_SYSTEM
#define FC_BUILD_SYSTEM "unknown"
#endif
#if defined(__clang__)
#define FC_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define FC_COMPILER "gcc " __VERSION__
#elif defined(_MSC_VER)
#define FC_COMPILER "msvc"
#else
#define FC_COMPILER "unknown C compiler"
#endif

/* The body is written once and instantiated per element type and target.
 * Blocks of FC_NB columns keep FC_NB / lanes independent accumulator chains
 * in registers (enough to hide the FMA latency), then blocks of 8, then a
 * scalar remainder. */
#define FC_ROWS_BLOCK(T, WIDTH, i0)                                            \
    {                                                                          \
        T s[WIDTH];                                                            \
        for (int t = 0; t < WIDTH; t++) s[t] = acc[i0 + t];                    \
        for (ptrdiff_t r = 0; r < nrows; r++) {                                \
            const T *p = rows[r] + i0;                                         \
            const T *wr = w[r];                                                \
            for (ptrdiff_t k = 0; k < kw; k++) {                               \
                const T c = wr[k];                                             \
                const T *q = p + k;                                            \
                for (int t = 0; t < WIDTH; t++) s[t] += c * q[t];              \
            }                                                                  \
        }                                                                      \
        for (int t = 0; t < WIDTH; t++) acc[i0 + t] = s[t];                    \
    }

/* One output: four partial sums over the taps, so that the FMA latency is
 * not paid once per tap. */
#define FC_ROWS_SCALAR(T, i0)                                                  \
    {                                                                          \
        T p0 = 0, p1 = 0, p2 = 0, p3 = 0;                                      \
        for (ptrdiff_t r = 0; r < nrows; r++) {                                \
            const T *q = rows[r] + i0;                                         \
            const T *wr = w[r];                                                \
            ptrdiff_t k = 0;                                                   \
            for (; k + 4 <= kw; k += 4) {                                      \
                p0 += wr[k] * q[k];                                            \
                p1 += wr[k + 1] * q[k + 1];                                    \
                p2 += wr[k + 2] * q[k + 2];                                    \
                p3 += wr[k + 3] * q[k + 3];                                    \
            }                                                                  \
            for (; k < kw; k++) p0 += wr[k] * q[k];                            \
        }                                                                      \
        acc[i0] += (p0 + p1) + (p2 + p3);                                      \
    }

#define FC_DEFINE_ROWS_KERNEL(NAME, T, ATTR)                                   \
ATTR static void NAME(T *acc, const T *const *rows, const T *const *w,         \
                      ptrdiff_t nrows, ptrdiff_t kw, ptrdiff_t n)              \
{                                                                              \
    ptrdiff_t i0 = 0;                                                          \
    for (; i0 + FC_NB <= n; i0 += FC_NB) FC_ROWS_BLOCK(T, FC_NB, i0)           \
    if (i0 + 32 <= n) { FC_ROWS_BLOCK(T, 32, i0) i0 += 32; }                   \
    if (i0 + 16 <= n) { FC_ROWS_BLOCK(T, 16, i0) i0 += 16; }                   \
    if (i0 + 8 <= n) { FC_ROWS_BLOCK(T, 8, i0) i0 += 8; }                      \
    for (; i0 < n; i0++) FC_ROWS_SCALAR(T, i0)                                 \
}

FC_DEFINE_ROWS_KERNEL(fc_rows_f32_base, float, )
FC_DEFINE_ROWS_KERNEL(fc_rows_f64_base, double, )
/* Integers: unsigned 64-bit arithmetic wraps modulo 2**64 (defined
 * behaviour), which is exactly the modular arithmetic numpy's integer types
 * use once the result is cast back to the result dtype. */
FC_DEFINE_ROWS_KERNEL(fc_rows_u64, uint64_t, )

#if FC_X86_DISPATCH
FC_DEFINE_ROWS_KERNEL(fc_rows_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_ROWS_KERNEL(fc_rows_f64_avx2, double, FC_TARGET_AVX2)

static int fc_cpu_has_avx2_fma(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return cached;
}
#else
static int fc_cpu_has_avx2_fma(void) { return 0; }
#endif

static void fc_rows_f32(float *acc, const float *const *rows, const float *const *w,
                        ptrdiff_t nrows, ptrdiff_t kw, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_rows_f32_avx2(acc, rows, w, nrows, kw, n); return; }
#endif
    fc_rows_f32_base(acc, rows, w, nrows, kw, n);
}

static void fc_rows_f64(double *acc, const double *const *rows, const double *const *w,
                        ptrdiff_t nrows, ptrdiff_t kw, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_rows_f64_avx2(acc, rows, w, nrows, kw, n); return; }
#endif
    fc_rows_f64_base(acc, rows, w, nrows, kw, n);
}

/* ------------------------------------------------------------------------
 * Three output rows at once (the interior of the direct method).
 *
 * Output rows m, m+1, m+2 read input rows m .. m+kh+1, and input row m+i
 * meets kernel row i-a in output row m+a. The kernel walks the kh+2 input
 * rows once: each input vector is loaded once and feeds three FMAs (one per
 * output row), so a block of FC_MR_ROWS x FC_MR_VECS accumulators does
 * 3 x 3 FMAs per 3 loads and 3 weight broadcasts, instead of one load per
 * FMA. Measured on Zen3 (1024x1024, 11x11, one core): 84 GFLOP/s against
 * 52 for the one-row kernel.
 *
 *   acc[a]  output row m+a, from its first interior column (a = 0, 1, 2)
 *   in[c*(kh+2) + i]  input row m+i of channel c at the first column read
 *           (i = 0 .. kh+1); rows outside the image point at zeros (their
 *           fill is added apart)
 *   w       the kernels, nch x kh x kw, row-major: the output sums over the
 *           nch channels (1 for a plain 2-D correlation; conv2d's input
 *           channels), all in registers before one store
 * (The first and last two input rows meet fewer output rows; they get their
 * own loops rather than zero weights, so that a NaN or inf stays where
 * scipy puts it: 0 * inf would spread it to a neighbouring row.)
 *
 * Columns left over after the blocks (fewer than one vector) go through the
 * one-row kernel. */
#define FC_MR_ROWS 3
#define FC_MR_VECS 3

#define FC_DEFINE_ROWS3_FALLBACK(NAME, T, ROWS1)                               \
static void NAME(T *const *acc, const T *const *in, const T *w, ptrdiff_t nch, \
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t i0, ptrdiff_t n,        \
                 const T **scratch)                                            \
{                                                                              \
    /* scratch: room for 2 * nch * kh pointers */                              \
    const ptrdiff_t nr = nch * kh, per = kh + FC_MR_ROWS - 1;                  \
    const T **rows = scratch, **wrows = scratch + nr;                          \
    if (i0 >= n) return;                                                       \
    for (ptrdiff_t j = 0; j < nr; j++) wrows[j] = w + j * kw;                  \
    for (int a = 0; a < FC_MR_ROWS; a++) {                                     \
        for (ptrdiff_t c = 0; c < nch; c++)                                    \
            for (ptrdiff_t j = 0; j < kh; j++)                                 \
                rows[c * kh + j] = in[c * per + a + j] + i0;                   \
        ROWS1(acc[a] + i0, rows, wrows, nr, kw, n - i0);                       \
    }                                                                          \
}

FC_DEFINE_ROWS3_FALLBACK(fc_rows3_rest_f32, float, fc_rows_f32)
FC_DEFINE_ROWS3_FALLBACK(fc_rows3_rest_f64, double, fc_rows_f64)

#if FC_X86_DISPATCH
#include <immintrin.h>

/* Input row i meets output rows ALO..AHI (compile-time bounds, so that the
 * accumulators stay in registers): row a with kernel row i - a. */
#define FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, ALO, AHI)              \
    for (ptrdiff_t k = 0; k < kw; k++) {                                       \
        VT x[NV];                                                              \
        for (int v = 0; v < NV; v++) x[v] = LOADU(p + k + v * LANES);          \
        for (int a = ALO; a <= AHI; a++) {                                     \
            const VT c = BCAST(wc + (i - a) * kw + k);                         \
            for (int v = 0; v < NV; v++) s[a][v] = FMA(c, x[v], s[a][v]);      \
        }                                                                      \
    }

/* One block of NV vectors x FC_MR_ROWS rows at column i0. */
#define FC_ROWS3_BLOCK(VT, LANES, LOADU, STOREU, BCAST, FMA, NV)               \
    {                                                                          \
        VT s[FC_MR_ROWS][NV];                                                  \
        for (int a = 0; a < FC_MR_ROWS; a++)                                   \
            for (int v = 0; v < NV; v++) s[a][v] = LOADU(acc[a] + i0 + v * LANES); \
        for (ptrdiff_t ch = 0; ch < nch; ch++)                                 \
        for (ptrdiff_t i = 0; i < kh + FC_MR_ROWS - 1; i++) {                  \
            const T_ *p = in[ch * (kh + FC_MR_ROWS - 1) + i] + i0;             \
            const T_ *wc = w + ch * kh * kw;                                   \
            /* output rows a with 0 <= i - a < kh */                           \
            const int lo = i >= kh ? (int)(i - kh + 1) : 0;                    \
            const int hi = i < FC_MR_ROWS - 1 ? (int)i : FC_MR_ROWS - 1;       \
            switch (lo * 4 + hi) {                                             \
            case 2: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 0, 2) break; \
            case 0: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 0, 0) break; \
            case 1: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 0, 1) break; \
            case 5: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 1, 1) break; \
            case 6: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 1, 2) break; \
            default: FC_ROWS3_TAPS(VT, LANES, LOADU, BCAST, FMA, NV, 2, 2) break; \
            }                                                                  \
        }                                                                      \
        for (int a = 0; a < FC_MR_ROWS; a++)                                   \
            for (int v = 0; v < NV; v++) STOREU(acc[a] + i0 + v * LANES, s[a][v]); \
    }

/* Blocks of FC_MR_VECS vectors, then one of 2 and one of 1 for what is left;
 * returns the columns done (the rest, under one vector, is the caller's). */
#define FC_DEFINE_ROWS3_AVX2(NAME, T, VT, LANES, LOADU, STOREU, BCAST, FMA)    \
FC_TARGET_AVX2 static ptrdiff_t NAME(T *const *acc, const T *const *in,        \
                                     const T *w, ptrdiff_t nch, ptrdiff_t kh,  \
                                     ptrdiff_t kw, ptrdiff_t n)                \
{                                                                              \
    typedef T T_;                                                              \
    ptrdiff_t i0 = 0;                                                          \
    for (; i0 + FC_MR_VECS * LANES <= n; i0 += FC_MR_VECS * LANES)             \
        FC_ROWS3_BLOCK(VT, LANES, LOADU, STOREU, BCAST, FMA, FC_MR_VECS)       \
    if (i0 + 2 * LANES <= n) {                                                 \
        FC_ROWS3_BLOCK(VT, LANES, LOADU, STOREU, BCAST, FMA, 2)                \
        i0 += 2 * LANES;                                                       \
    }                                                                          \
    if (i0 + LANES <= n) {                                                     \
        FC_ROWS3_BLOCK(VT, LANES, LOADU, STOREU, BCAST, FMA, 1)                \
        i0 += LANES;                                                           \
    }                                                                          \
    return i0;                                                                 \
}

FC_DEFINE_ROWS3_AVX2(fc_rows3_f32_avx2, float, __m256, 8, _mm256_loadu_ps,
                     _mm256_storeu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps)
FC_DEFINE_ROWS3_AVX2(fc_rows3_f64_avx2, double, __m256d, 4, _mm256_loadu_pd,
                     _mm256_storeu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd)
#endif

#define FC_DEFINE_ROWS3(NAME, T, AVX2, REST)                                   \
static void NAME(T *const *acc, const T *const *in, const T *w, ptrdiff_t nch, \
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const T **scratch)   \
{                                                                              \
    ptrdiff_t done = 0;                                                        \
    if (fc_cpu_has_avx2_fma()) done = AVX2(acc, in, w, nch, kh, kw, n);        \
    REST(acc, in, w, nch, kh, kw, done, n, scratch);                           \
}

#if !FC_X86_DISPATCH
/* No AVX2 twin on this platform: every column goes through the one-row kernel. */
static ptrdiff_t fc_rows3_f32_avx2(float *const *acc, const float *const *in,
                                   const float *w, ptrdiff_t nch, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; return 0; }
static ptrdiff_t fc_rows3_f64_avx2(double *const *acc, const double *const *in,
                                   const double *w, ptrdiff_t nch, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; return 0; }
#endif
FC_DEFINE_ROWS3(fc_rows3_f32, float, fc_rows3_f32_avx2, fc_rows3_rest_f32)
FC_DEFINE_ROWS3(fc_rows3_f64, double, fc_rows3_f64_avx2, fc_rows3_rest_f64)

static const char *fc_simd_name(void)
{
    return fc_cpu_has_avx2_fma() ? "AVX2+FMA (runtime dispatch)" : "baseline (SSE2 on x86-64)";
}

#endif /* FASTCORR_SIMD_KERNELS_H */
