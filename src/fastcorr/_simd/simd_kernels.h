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
#include <string.h>

#define FC_NB 64

/* Whether src[0 .. n) holds no NaN or inf. Each value is read as an integer:
 * its exponent field plus one unit of the field's lowest bit carries into the
 * sign bit exactly when the field is all ones (NaN, inf). Only AND, ADD and
 * OR, so the loop vectorises even on baseline SSE2 (which has no 64-bit
 * compare), and no floating-point compare that -ffast-math could drop. */
#define FC_DEFINE_ALL_FINITE(NAME, T, U, EXP)                                  \
static inline int NAME(const T *restrict src, ptrdiff_t n)                    \
{                                                                              \
    const U exp_mask = (EXP), exp_unit = (EXP) & (~(EXP) + 1);                 \
    U carries = 0;                                                             \
    for (ptrdiff_t i = 0; i < n; i++) {                                        \
        U bits;                                                                \
        memcpy(&bits, src + i, sizeof bits);                                   \
        carries |= (bits & exp_mask) + exp_unit;                               \
    }                                                                          \
    return (carries & ~(~(U)0 >> 1)) == 0;                                     \
}

FC_DEFINE_ALL_FINITE(fc_all_finite_f32, float, uint32_t, UINT32_C(0x7f800000))
FC_DEFINE_ALL_FINITE(fc_all_finite_f64, double, uint64_t, UINT64_C(0x7ff0000000000000))

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
 * A block is FC_MR_ROWS output rows x FC_MR_VECS vectors of columns: 12
 * independent accumulators on AVX2. The kernel taps are the outer loop:
 * each weight is broadcast once and meets all 12 accumulators, each through
 * one FMA whose input vector is a load folded into the instruction. Every
 * FMA of an iteration is independent of the others, so the loop runs at the
 * rate of the loads (about one per FMA; a third or so of the unaligned ones
 * cross a cache line) rather than at the FMA latency.
 *
 * (The earlier design walked the input rows once and reused each loaded
 * vector for the three output rows; its first and last input rows feed only
 * one or two output rows, whose few accumulators then wait on the FMA
 * latency. On the Zen 4 here, one core, 1024x1024: 26 / 40 / 56 GFLOP/s for
 * 3x3 / 5x5 / 11x11 kernels, against 56 / 62 / 67 for this one.)
 *
 *   acc[a]  output row m+a, from its first interior column (a = 0, 1, 2);
 *           written, not read: it starts from init[a] (the fill's share)
 *   in[c*(kh+2) + i]  input row m+i of channel c at the first column read
 *           (i = 0 .. kh+1); rows outside the image point at zeros (their
 *           fill is in the accumulators' starting value)
 *   w       the kernels, nch x kh x kw, row-major: the output sums over the
 *           nch channels (1 for a plain 2-D correlation; conv2d's input
 *           channels), all in registers before one store
 * Each output meets only its own taps, so a NaN or inf stays where scipy
 * puts it.
 *
 * Without AVX2 every column goes through the one-row kernel. */
#define FC_MR_ROWS 3
#define FC_MR_VECS 4

/* Whether 3- and 5-wide kernels take their unrolled blocks (A/B switch). */
static int fc_rows3_kw_special = 1;
static void fc_set_rows3_kw_special(int on) { fc_rows3_kw_special = on; }

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

/* One block of FC_MR_ROWS rows x NV vectors (NV = 4 or 1) at column i0:
 * accumulators start from init[a], input vectors are loaded with LOADX, results stored
 * by STORE(address, vector) (plain, or masked). The accumulators are
 * named variables: as an array, GCC spilled them to the stack on every tap.
 * Rows go one after another in the tap loop, so that consecutive loads from
 * one row fall in different L1 banks (rows a power of two apart collide). */
#define FC_R3_TAPS(VT, BCAST, BODY)                                            \
    for (ptrdiff_t r = 0, j = 0, ch = 0; r < nch * kh; r++) {                  \
        const T_ *const *rin = in + ch * (kh + FC_MR_ROWS - 1) + j;            \
        const T_ *p0 = rin[0] + i0, *p1 = rin[1] + i0, *p2 = rin[2] + i0;      \
        const T_ *wj = w + r * kw;                                             \
        if (++j == kh) { j = 0; ch++; }                                        \
        for (ptrdiff_t k = 0; k < kw; k++) {                                   \
            const VT c = BCAST(wj + k);                                        \
            BODY                                                               \
        }                                                                      \
    }

#define FC_R3_BLOCK4(VT, LANES, LOADX, STORE, BCAST, FMA)                      \
    {                                                                          \
        T_ *o0 = acc[0] + i0, *o1 = acc[1] + i0, *o2 = acc[2] + i0;            \
        VT s00 = BCAST(init), s01 = s00, s02 = s00, s03 = s00;                 \
        VT s10 = BCAST(init + 1), s11 = s10, s12 = s10, s13 = s10;             \
        VT s20 = BCAST(init + 2), s21 = s20, s22 = s20, s23 = s20;             \
        FC_R3_TAPS(VT, BCAST,                                                  \
            s00 = FMA(c, LOADX(p0 + k), s00);                                  \
            s01 = FMA(c, LOADX(p0 + k + LANES), s01);                          \
            s02 = FMA(c, LOADX(p0 + k + 2 * LANES), s02);                      \
            s03 = FMA(c, LOADX(p0 + k + 3 * LANES), s03);                      \
            s10 = FMA(c, LOADX(p1 + k), s10);                                  \
            s11 = FMA(c, LOADX(p1 + k + LANES), s11);                          \
            s12 = FMA(c, LOADX(p1 + k + 2 * LANES), s12);                      \
            s13 = FMA(c, LOADX(p1 + k + 3 * LANES), s13);                      \
            s20 = FMA(c, LOADX(p2 + k), s20);                                  \
            s21 = FMA(c, LOADX(p2 + k + LANES), s21);                          \
            s22 = FMA(c, LOADX(p2 + k + 2 * LANES), s22);                      \
            s23 = FMA(c, LOADX(p2 + k + 3 * LANES), s23);)                     \
        STORE(o0, s00); STORE(o0 + LANES, s01);                                \
        STORE(o0 + 2 * LANES, s02); STORE(o0 + 3 * LANES, s03);                \
        STORE(o1, s10); STORE(o1 + LANES, s11);                                \
        STORE(o1 + 2 * LANES, s12); STORE(o1 + 3 * LANES, s13);                \
        STORE(o2, s20); STORE(o2 + LANES, s21);                                \
        STORE(o2 + 2 * LANES, s22); STORE(o2 + 3 * LANES, s23);                \
    }

#define FC_R3_BLOCK1(VT, LANES, LOADX, STORE, BCAST, FMA)                      \
    {                                                                          \
        T_ *o0 = acc[0] + i0, *o1 = acc[1] + i0, *o2 = acc[2] + i0;            \
        VT s00 = BCAST(init), s10 = BCAST(init + 1), s20 = BCAST(init + 2);    \
        FC_R3_TAPS(VT, BCAST,                                                  \
            s00 = FMA(c, LOADX(p0 + k), s00);                                  \
            s10 = FMA(c, LOADX(p1 + k), s10);                                  \
            s20 = FMA(c, LOADX(p2 + k), s20);)                                 \
        STORE(o0, s00); STORE(o1, s10); STORE(o2, s20);                        \
    }

/* Each kind of block is a function of its own (register allocation per
 * block). */
#define FC_DEFINE_ROWS3_BLOCK_FN(NAME, T, VT, LANES, LOADX, STORE, BCAST, FMA, BLOCK) \
FC_TARGET_AVX2 __attribute__((noinline)) static void NAME(                     \
    T *const *acc, const T *const *in, const T *w, ptrdiff_t nch,              \
    ptrdiff_t kh, ptrdiff_t kw, const T *init, ptrdiff_t i0, __m256i fc_mask)  \
{                                                                              \
    typedef T T_;                                                              \
    (void)fc_mask;                                                             \
    BLOCK(VT, LANES, LOADX, STORE, BCAST, FMA)                                 \
}

/* The same block with the kernel's width a constant (3 or 5: the
 * compiler unrolls the taps of a row). */
#define FC_DEFINE_ROWS3_BLOCK_KW(NAME, T, VT, LANES, LOADX, STORE, BCAST, FMA, BLOCK, KW) \
FC_TARGET_AVX2 __attribute__((noinline)) static void NAME(                     \
    T *const *acc, const T *const *in, const T *w, ptrdiff_t nch,              \
    ptrdiff_t kh, ptrdiff_t kw_, const T *init, ptrdiff_t i0, __m256i fc_mask) \
{                                                                              \
    typedef T T_;                                                              \
    const ptrdiff_t kw = KW;                                                   \
    (void)fc_mask; (void)kw_;                                                  \
    BLOCK(VT, LANES, LOADX, STORE, BCAST, FMA)                                 \
}

/* Full blocks of FC_MR_VECS vectors. When the columns do not divide into
 * them, one more block ends at the row's end, overlapping the last full
 * one: the columns both write get the same value (the same sums in the
 * same order, from init), so plain stores do. Narrow rows (under one
 * block) go by one vector, the last one with masked loads and stores.
 * Returns the columns done (all). */
#define FC_DEFINE_ROWS3_AVX2(NAME, T, VT, LANES, LOADU, BCAST, FMA, LOADM,     \
                             ST_PLAIN, ST_MASK, MASK_LT)                       \
FC_DEFINE_ROWS3_BLOCK_FN(NAME##_full, T, VT, LANES, LOADU, ST_PLAIN,           \
                         BCAST, FMA, FC_R3_BLOCK4)                             \
FC_DEFINE_ROWS3_BLOCK_KW(NAME##_full3, T, VT, LANES, LOADU, ST_PLAIN,         \
                         BCAST, FMA, FC_R3_BLOCK4, 3)                          \
FC_DEFINE_ROWS3_BLOCK_KW(NAME##_full5, T, VT, LANES, LOADU, ST_PLAIN,         \
                         BCAST, FMA, FC_R3_BLOCK4, 5)                          \
FC_DEFINE_ROWS3_BLOCK_FN(NAME##_one, T, VT, LANES, LOADU, ST_PLAIN,            \
                         BCAST, FMA, FC_R3_BLOCK1)                             \
FC_DEFINE_ROWS3_BLOCK_FN(NAME##_masked, T, VT, LANES, LOADM, ST_MASK,          \
                         BCAST, FMA, FC_R3_BLOCK1)                             \
FC_TARGET_AVX2 static ptrdiff_t NAME(T *const *acc, const T *const *in,        \
                                     const T *w, ptrdiff_t nch, ptrdiff_t kh,  \
                                     ptrdiff_t kw, ptrdiff_t n, const T *init) \
{                                                                              \
    const ptrdiff_t width = FC_MR_VECS * LANES;                                \
    const __m256i none = _mm256_setzero_si256();                               \
    ptrdiff_t i0;                                                              \
    if (n >= width) {                                                          \
        void (*full)(T *const *, const T *const *, const T *, ptrdiff_t,       \
                     ptrdiff_t, ptrdiff_t, const T *, ptrdiff_t, __m256i) =    \
            fc_rows3_kw_special && kw == 3 ? NAME##_full3                      \
            : fc_rows3_kw_special && kw == 5 ? NAME##_full5 : NAME##_full;     \
        for (i0 = 0; i0 + width <= n; i0 += width)                             \
            full(acc, in, w, nch, kh, kw, init, i0, none);                     \
        if (i0 < n)                                                            \
            full(acc, in, w, nch, kh, kw, init, n - width, none);              \
        return n;                                                              \
    }                                                                          \
    for (i0 = 0; i0 + LANES <= n; i0 += LANES)                                 \
        NAME##_one(acc, in, w, nch, kh, kw, init, i0, none);                   \
    if (i0 < n)  /* masked loads and stores: nothing past the row's end */   \
        NAME##_masked(acc, in, w, nch, kh, kw, init, i0, MASK_LT(n - i0));     \
    return n;                                                                  \
}

/* Stores: plain, or masked to the row's end (fc_mask). */
#define FC_ST_PLAIN_PS(p, x) _mm256_storeu_ps((p), (x))
#define FC_ST_MASK_PS(p, x) _mm256_maskstore_ps((p), fc_mask, (x))
#define FC_ST_PLAIN_PD(p, x) _mm256_storeu_pd((p), (x))
#define FC_ST_MASK_PD(p, x) _mm256_maskstore_pd((p), fc_mask, (x))

/* MASK_LT(r) sets the lanes l < r. */
#define FC_LOADM_PS(p) _mm256_maskload_ps((p), fc_mask)
#define FC_MASK_LT_PS(r) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r)),                    \
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define FC_LOADM_PD(p) _mm256_maskload_pd((p), fc_mask)
#define FC_MASK_LT_PD(r) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(r)),            \
                                            _mm256_setr_epi64x(0, 1, 2, 3))

FC_DEFINE_ROWS3_AVX2(fc_rows3_f32_avx2, float, __m256, 8, _mm256_loadu_ps,
                     _mm256_broadcast_ss, _mm256_fmadd_ps, FC_LOADM_PS,
                     FC_ST_PLAIN_PS, FC_ST_MASK_PS, FC_MASK_LT_PS)
FC_DEFINE_ROWS3_AVX2(fc_rows3_f64_avx2, double, __m256d, 4, _mm256_loadu_pd,
                     _mm256_broadcast_sd, _mm256_fmadd_pd, FC_LOADM_PD,
                     FC_ST_PLAIN_PD, FC_ST_MASK_PD, FC_MASK_LT_PD)
#endif

#define FC_DEFINE_ROWS3(NAME, T, AVX2, REST)                                   \
static void NAME(T *const *acc, const T *const *in, const T *w, ptrdiff_t nch, \
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const T *init,       \
                 const T **scratch)                                            \
{                                                                              \
    ptrdiff_t done = 0;                                                        \
    if (fc_cpu_has_avx2_fma()) done = AVX2(acc, in, w, nch, kh, kw, n, init);  \
    for (int a = 0; a < FC_MR_ROWS; a++)                                       \
        for (ptrdiff_t t = done; t < n; t++) acc[a][t] = init[a];              \
    REST(acc, in, w, nch, kh, kw, done, n, scratch);                           \
}

#if !FC_X86_DISPATCH
/* No AVX2 twin on this platform: every column goes through the one-row kernel. */
static ptrdiff_t fc_rows3_f32_avx2(float *const *acc, const float *const *in, const float *w,
                                   ptrdiff_t nch, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const float *init)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; (void)init; return 0; }
static ptrdiff_t fc_rows3_f64_avx2(double *const *acc, const double *const *in, const double *w,
                                   ptrdiff_t nch, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n, const double *init)
{ (void)acc; (void)in; (void)w; (void)nch; (void)kh; (void)kw; (void)n; (void)init; return 0; }
#endif
FC_DEFINE_ROWS3(fc_rows3_f32, float, fc_rows3_f32_avx2, fc_rows3_rest_f32)
FC_DEFINE_ROWS3(fc_rows3_f64, double, fc_rows3_f64_avx2, fc_rows3_rest_f64)

/* ------------------------------------------------------------------------
 * A scaling: out[i] = c * x[i] (a 1x1 kernel, whose every window is one
 * sample: the product the kernels' FMA onto zero rounds to). One plain
 * product per value, as numpy's multiply computes it; the loop is left to
 * the compiler's vectoriser (an AVX2 twin chosen at run time). Memory-bound:
 * the caller threads it over slabs. */
#define FC_DEFINE_SCALE(NAME, T, ATTR)                                         \
ATTR static void NAME(T *restrict out, const T *restrict x, T c, ptrdiff_t n)  \
{                                                                              \
    for (ptrdiff_t i = 0; i < n; i++) out[i] = c * x[i];                       \
}

FC_DEFINE_SCALE(fc_scale_f32_base, float, )
FC_DEFINE_SCALE(fc_scale_f64_base, double, )
FC_DEFINE_SCALE(fc_scale_u64, uint64_t, )
#if FC_X86_DISPATCH
FC_DEFINE_SCALE(fc_scale_f32_avx2, float, FC_TARGET_AVX2)
FC_DEFINE_SCALE(fc_scale_f64_avx2, double, FC_TARGET_AVX2)
#endif

static void fc_scale_f32(float *out, const float *x, float c, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_scale_f32_avx2(out, x, c, n); return; }
#endif
    fc_scale_f32_base(out, x, c, n);
}

static void fc_scale_f64(double *out, const double *x, double c, ptrdiff_t n)
{
#if FC_X86_DISPATCH
    if (fc_cpu_has_avx2_fma()) { fc_scale_f64_avx2(out, x, c, n); return; }
#endif
    fc_scale_f64_base(out, x, c, n);
}

static const char *fc_simd_name(void)
{
    return fc_cpu_has_avx2_fma() ? "AVX2+FMA (runtime dispatch)" : "baseline (SSE2 on x86-64)";
}

#endif /* FASTCORR_SIMD_KERNELS_H */
