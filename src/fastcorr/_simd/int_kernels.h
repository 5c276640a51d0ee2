/*
 * fastcorr: exact integer correlation in narrow lanes.
 *
 * A result of b bits only needs arithmetic modulo 2**b: reduction modulo
 * 2**L (L >= b) commutes with + and x, so an 8- or 16-bit result is
 * computed exactly in 16-bit lanes, a 32-bit result in 32-bit lanes and a
 * 64-bit one in 64-bit lanes, each cast to the result dtype at the store.
 * All lane arithmetic is unsigned (wrap-around is defined behaviour).
 *
 * Two kinds of loops:
 *   - extend: one row of the boundary-extended input, converted from the
 *     input's integer type to the lane type (sign- or zero-extended, which
 *     is the value modulo 2**L);
 *   - rows:   FI_R output rows (or one) of
 *         out[a][i] = sum_{j<kh, k<kw} w[j*kw + k] * in[a + j][i + k]
 *     on such extended rows, cast to the output type at the store.
 * The rows kernels read up to FI_PAD lanes past in[.][n + kw - 1] (the
 * caller's rows are padded); they write exactly out[a][0 .. n).
 *
 * Each loop has a portable C body (any compiler, any CPU) and, on x86 with
 * GCC or Clang, an AVX2 twin chosen at run time by the caller
 * (fc_cpu_has_avx2_fma, as the float kernels): 16 lanes of vpmullw /
 * vpaddw, 8 of vpmulld, 4 of a 64-bit product made of three vpmuludq.
 * No Python objects; thread-safe.
 */
#ifndef FASTCORR_INT_KERNELS_H
#define FASTCORR_INT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "simd_kernels.h"

/* Output rows of one group, and the lanes the caller pads each row with. */
#define FI_R 3
#define FI_PAD 64
/* Columns of one portable block. */
#define FI_NB 64

/* The next chunk of output rows of a call, claimed by whichever thread asks
 * first (a thread that starts late, on a busy machine, finds the work done
 * rather than holding the others at the end). Without known atomics the
 * caller runs one thread (FI_HAVE_ATOMIC 0). */
#if defined(__GNUC__) || defined(__clang__)
#define FI_HAVE_ATOMIC 1
static inline ptrdiff_t fi_claim(ptrdiff_t *counter)
{
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
#else
#define FI_HAVE_ATOMIC 0
static inline ptrdiff_t fi_claim(ptrdiff_t *counter) { return (*counter)++; }
#endif

/* ---------------------------------------------------------------- extend */

/* Index into [0, n) of extended position i, or -1 for the fill value
 * (as fastcorr.methods.boundary.map_index). boundary: 0 fill, 1 wrap, 2 symm,
 * 3 nearest, 4 mirror. */
static inline ptrdiff_t fi_map_index(ptrdiff_t i, ptrdiff_t n, int boundary)
{
    if (i >= 0 && i < n) return i;
    if (boundary == 0 || n == 0) return -1;
    if (boundary == 1) {
        i %= n;
        return i < 0 ? i + n : i;
    }
    if (boundary == 3)                  /* nearest: the edge sample repeated */
        return i < 0 ? 0 : n - 1;
    if (boundary == 4) {                /* mirror: reflected about the edge sample */
        ptrdiff_t p;
        if (n == 1) return 0;
        p = 2 * n - 2;
        i %= p;
        if (i < 0) i += p;
        return i >= n ? p - i : i;
    }
    {                                   /* symm: reflected, the edge sample repeated */
        const ptrdiff_t p = 2 * n;
        i %= p;
        if (i < 0) i += p;
        return i >= n ? p - 1 - i : i;
    }
}

/* dst[t] = the extended row src (W samples) at position start + t, for
 * t < length, as lane type L; src NULL: a row outside the image (fill). */
#define FI_DEFINE_EXTEND(NAME, S, L, ATTR)                                     \
ATTR static void NAME(void *dst_, const void *src_, ptrdiff_t start,           \
                      ptrdiff_t length, ptrdiff_t W, int boundary,             \
                      const void *fill_)                                       \
{                                                                              \
    L *dst = (L *)dst_;                                                        \
    const S *src = (const S *)src_;                                            \
    L fill;                                                                    \
    ptrdiff_t lo, hi, t;                                                       \
    memcpy(&fill, fill_, sizeof fill);                                         \
    if (src == NULL) {                                                         \
        for (t = 0; t < length; t++) dst[t] = fill;                            \
        return;                                                                \
    }                                                                          \
    lo = -start < 0 ? 0 : (-start > length ? length : -start);                 \
    hi = W - start > length ? length : W - start;                              \
    if (hi < lo) hi = lo;                                                      \
    for (t = 0; t < lo; t++) {                                                 \
        ptrdiff_t c = fi_map_index(start + t, W, boundary);                    \
        dst[t] = c < 0 ? fill : (L)src[c];                                     \
    }                                                                          \
    {                                                                          \
        const S *s = src + start;                                              \
        for (t = lo; t < hi; t++) dst[t] = (L)s[t];                            \
    }                                                                          \
    for (t = hi; t < length; t++) {                                            \
        ptrdiff_t c = fi_map_index(start + t, W, boundary);                    \
        dst[t] = c < 0 ? fill : (L)src[c];                                     \
    }                                                                          \
}

/* (L)s converts a signed source by sign extension and an unsigned one by
 * zero extension: the value modulo 2**L either way. */
#define FI_EXTENDS(SUFFIX, ATTR)                                               \
FI_DEFINE_EXTEND(fi_ext_u8_l16##SUFFIX, uint8_t, uint16_t, ATTR)               \
FI_DEFINE_EXTEND(fi_ext_i8_l16##SUFFIX, int8_t, uint16_t, ATTR)                \
FI_DEFINE_EXTEND(fi_ext_u16_l16##SUFFIX, uint16_t, uint16_t, ATTR)             \
FI_DEFINE_EXTEND(fi_ext_u8_l32##SUFFIX, uint8_t, uint32_t, ATTR)               \
FI_DEFINE_EXTEND(fi_ext_i8_l32##SUFFIX, int8_t, uint32_t, ATTR)                \
FI_DEFINE_EXTEND(fi_ext_u16_l32##SUFFIX, uint16_t, uint32_t, ATTR)             \
FI_DEFINE_EXTEND(fi_ext_i16_l32##SUFFIX, int16_t, uint32_t, ATTR)              \
FI_DEFINE_EXTEND(fi_ext_u32_l32##SUFFIX, uint32_t, uint32_t, ATTR)             \
FI_DEFINE_EXTEND(fi_ext_u8_l64##SUFFIX, uint8_t, uint64_t, ATTR)               \
FI_DEFINE_EXTEND(fi_ext_i8_l64##SUFFIX, int8_t, uint64_t, ATTR)                \
FI_DEFINE_EXTEND(fi_ext_u16_l64##SUFFIX, uint16_t, uint64_t, ATTR)             \
FI_DEFINE_EXTEND(fi_ext_i16_l64##SUFFIX, int16_t, uint64_t, ATTR)              \
FI_DEFINE_EXTEND(fi_ext_u32_l64##SUFFIX, uint32_t, uint64_t, ATTR)             \
FI_DEFINE_EXTEND(fi_ext_i32_l64##SUFFIX, int32_t, uint64_t, ATTR)              \
FI_DEFINE_EXTEND(fi_ext_u64_l64##SUFFIX, uint64_t, uint64_t, ATTR)

FI_EXTENDS(_base, )

/* ------------------------------------------------------------ rows: C */

/* Portable rows kernel: lanes L, products in M (wide enough that C's
 * integer promotion cannot overflow a signed int), stores as O. Blocks of
 * FI_NB columns, all of them computed (the rows are padded), the block's
 * valid columns stored. */
#define FI_DEFINE_ROWS_BASE(NAME, L, M, O, ATTR)                               \
ATTR static void NAME(void *const *out_, const void *const *in_,              \
                      const void *w_, ptrdiff_t kh, ptrdiff_t kw,              \
                      ptrdiff_t n, int nrows)                                  \
{                                                                              \
    O *const *out = (O *const *)out_;                                          \
    const L *const *in = (const L *const *)in_;                                \
    const L *w = (const L *)w_;                                                \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FI_NB) {                              \
        const ptrdiff_t nb = n - i0 < FI_NB ? n - i0 : FI_NB;                  \
        for (int a = 0; a < nrows; a++) {                                      \
            L s[FI_NB];                                                        \
            for (int t = 0; t < FI_NB; t++) s[t] = 0;                          \
            for (ptrdiff_t j = 0; j < kh; j++) {                               \
                const L *p = in[a + j] + i0;                                   \
                for (ptrdiff_t k = 0; k < kw; k++) {                           \
                    const M c = w[j * kw + k];                                 \
                    const L *q = p + k;                                        \
                    for (int t = 0; t < FI_NB; t++)                            \
                        s[t] = (L)(s[t] + (L)(c * (M)q[t]));                   \
                }                                                              \
            }                                                                  \
            for (ptrdiff_t t = 0; t < nb; t++) out[a][i0 + t] = (O)s[t];       \
        }                                                                      \
    }                                                                          \
}

FI_DEFINE_ROWS_BASE(fi_rows_l16_o8_base, uint16_t, uint32_t, uint8_t, )
FI_DEFINE_ROWS_BASE(fi_rows_l16_o16_base, uint16_t, uint32_t, uint16_t, )
FI_DEFINE_ROWS_BASE(fi_rows_l32_o32_base, uint32_t, uint32_t, uint32_t, )
FI_DEFINE_ROWS_BASE(fi_rows_l64_o64_base, uint64_t, uint64_t, uint64_t, )

typedef void (*fi_extend_fn)(void *, const void *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int,
                             const void *);
typedef void (*fi_rows_fn)(void *const *, const void *const *, const void *, ptrdiff_t,
                           ptrdiff_t, ptrdiff_t, int);

#if FC_X86_DISPATCH
#include <immintrin.h>

FI_EXTENDS(_avx2, FC_TARGET_AVX2)

/* ------------------------------------------------------------ rows: AVX2 */

/* One block: NR rows (3 or 1) x 4 vectors of LANES columns at column i0,
 * accumulators in named variables (an array is spilled by GCC). Taps are
 * the outer loop: each weight is broadcast once and meets every
 * accumulator. MUL(c, x) is the lane product (c pre-split by PREP). */
#define FI_TAPS(BODY)                                                          \
    for (ptrdiff_t j = 0; j < kh; j++) {                                       \
        const L_ *p0 = in[j] + i0, *p1 = in[j + (nr > 1)] + i0;                \
        const L_ *p2 = in[j + 2 * (nr > 1)] + i0;                              \
        const L_ *wj = w + j * kw;                                             \
        (void)p1; (void)p2;                                                    \
        for (ptrdiff_t k = 0; k < kw; k++) {                                   \
            FI_PREP(wj[k])                                                     \
            BODY                                                               \
        }                                                                      \
    }

#define FI_LD(p) _mm256_loadu_si256((const __m256i *)(p))
#define FI_ACC4(s0, s1, s2, s3, p)                                             \
    s0 = FI_ADD(s0, FI_MUL(FI_LD(p + k)));                                     \
    s1 = FI_ADD(s1, FI_MUL(FI_LD(p + k + LANES_)));                            \
    s2 = FI_ADD(s2, FI_MUL(FI_LD(p + k + 2 * LANES_)));                        \
    s3 = FI_ADD(s3, FI_MUL(FI_LD(p + k + 3 * LANES_)));

/* Block functions: BLOCK3 (3 rows) and BLOCK1 (1 row); STORE4(o, s0..s3)
 * writes 4 vectors of one row to o (plain) and the caller copies partial
 * blocks from a local row. */
#define FI_DEFINE_BLOCKS(NAME, L, O, LANES)                                    \
FI_TARGET __attribute__((noinline)) static void NAME##_b3(                     \
    O *o0, O *o1, O *o2, const L *const *in, const L *w, ptrdiff_t kh,         \
    ptrdiff_t kw, ptrdiff_t i0)                                                \
{                                                                              \
    typedef L L_;                                                              \
    const int nr = 3;                                                          \
    enum { LANES_ = LANES };                                                   \
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s02 = s00, s03 = s00;     \
    __m256i s10 = s00, s11 = s00, s12 = s00, s13 = s00;                        \
    __m256i s20 = s00, s21 = s00, s22 = s00, s23 = s00;                        \
    FI_TAPS(FI_ACC4(s00, s01, s02, s03, p0)                                    \
            FI_ACC4(s10, s11, s12, s13, p1)                                    \
            FI_ACC4(s20, s21, s22, s23, p2))                                   \
    FI_STORE4(o0, s00, s01, s02, s03);                                         \
    FI_STORE4(o1, s10, s11, s12, s13);                                         \
    FI_STORE4(o2, s20, s21, s22, s23);                                         \
}                                                                              \
FI_TARGET __attribute__((noinline)) static void NAME##_b1(                     \
    O *o0, const L *const *in, const L *w, ptrdiff_t kh, ptrdiff_t kw,         \
    ptrdiff_t i0)                                                              \
{                                                                              \
    typedef L L_;                                                              \
    const int nr = 1;                                                          \
    enum { LANES_ = LANES };                                                   \
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s02 = s00, s03 = s00;     \
    FI_TAPS(FI_ACC4(s00, s01, s02, s03, p0))                                   \
    FI_STORE4(o0, s00, s01, s02, s03);                                         \
}                                                                              \
FI_TARGET static void NAME(void *const *out_, const void *const *in_,         \
                                const void *w_, ptrdiff_t kh, ptrdiff_t kw,    \
                                ptrdiff_t n, int nrows)                        \
{                                                                              \
    O *const *out = (O *const *)out_;                                          \
    const L *const *in = (const L *const *)in_;                                \
    const L *w = (const L *)w_;                                                \
    const ptrdiff_t width = 4 * LANES;                                         \
    ptrdiff_t i0;                                                              \
    O tmp[3][4 * LANES];                                                       \
    if (n >= width) {                                                          \
        /* whole blocks; a last one overlapping the previous ends the row     \
         * (the columns both write get the same sums) */                     \
        for (i0 = 0;; i0 += width) {                                           \
            if (i0 + width > n) i0 = n - width;                                \
            if (nrows == 3)                                                    \
                NAME##_b3(out[0] + i0, out[1] + i0, out[2] + i0, in, w, kh,    \
                          kw, i0);                                             \
            else                                                               \
                for (int a = 0; a < nrows; a++)                                \
                    NAME##_b1(out[a] + i0, in + a, w, kh, kw, i0);             \
            if (i0 + width >= n) break;                                        \
        }                                                                      \
        return;                                                                \
    }                                                                          \
    /* a row narrower than a block: one block into tmp (the rows are padded) */ \
    if (nrows == 3)                                                            \
        NAME##_b3(tmp[0], tmp[1], tmp[2], in, w, kh, kw, 0);                   \
    else                                                                       \
        for (int a = 0; a < nrows; a++) NAME##_b1(tmp[a], in + a, w, kh, kw, 0); \
    for (int a = 0; a < nrows; a++) memcpy(out[a], tmp[a], (size_t)n * sizeof(O)); \
}

/* The target of the block functions below (AVX2; the 64-bit lanes also
 * get an AVX-512DQ/VL twin of 256-bit vectors, for vpmullq). */
#define FI_TARGET FC_TARGET_AVX2

/* 16-bit lanes. */
#define FI_PREP(v) const __m256i c = _mm256_set1_epi16((short)(v));
#define FI_MUL(x) _mm256_mullo_epi16(c, (x))
#define FI_ADD(a, b) _mm256_add_epi16((a), (b))
/* 16-bit out: plain stores. */
#define FI_STORE4(o, s0, s1, s2, s3)                                           \
    do {                                                                       \
        _mm256_storeu_si256((__m256i *)(o), s0);                               \
        _mm256_storeu_si256((__m256i *)((o) + 16), s1);                        \
        _mm256_storeu_si256((__m256i *)((o) + 32), s2);                        \
        _mm256_storeu_si256((__m256i *)((o) + 48), s3);                        \
    } while (0)
FI_DEFINE_BLOCKS(fi_rows_l16_o16_avx2, uint16_t, uint16_t, 16)
#undef FI_STORE4
/* 8-bit out: the low byte of each lane (the result modulo 2**8), packed
 * (packus works per 128-bit half: permute the quadwords back in order). */
#define FI_PACK8(a, b)                                                         \
    _mm256_permute4x64_epi64(                                                  \
        _mm256_packus_epi16(_mm256_and_si256((a), _mm256_set1_epi16(0xff)),    \
                            _mm256_and_si256((b), _mm256_set1_epi16(0xff))),   \
        0xd8)
#define FI_STORE4(o, s0, s1, s2, s3)                                           \
    do {                                                                       \
        _mm256_storeu_si256((__m256i *)(o), FI_PACK8(s0, s1));                 \
        _mm256_storeu_si256((__m256i *)((o) + 32), FI_PACK8(s2, s3));          \
    } while (0)
FI_DEFINE_BLOCKS(fi_rows_l16_o8_avx2, uint16_t, uint8_t, 16)
#undef FI_STORE4
#undef FI_PREP
#undef FI_MUL
#undef FI_ADD

#define FI_STORE4(o, s0, s1, s2, s3)                                           \
    do {                                                                       \
        _mm256_storeu_si256((__m256i *)(o), s0);                               \
        _mm256_storeu_si256((__m256i *)((o) + LANES_), s1);                    \
        _mm256_storeu_si256((__m256i *)((o) + 2 * LANES_), s2);                \
        _mm256_storeu_si256((__m256i *)((o) + 3 * LANES_), s3);                \
    } while (0)
/* 32-bit lanes. */
#define FI_PREP(v) const __m256i c = _mm256_set1_epi32((int)(v));
#define FI_MUL(x) _mm256_mullo_epi32(c, (x))
#define FI_ADD(a, b) _mm256_add_epi32((a), (b))
FI_DEFINE_BLOCKS(fi_rows_l32_o32_avx2, uint32_t, uint32_t, 8)
#undef FI_PREP
#undef FI_MUL
#undef FI_ADD
/* 64-bit lanes: AVX2 has no 64-bit low product; modulo 2**64,
 * c * x = lo(c) lo(x) + ((hi(c) lo(x) + lo(c) hi(x)) << 32). */
static inline FC_TARGET_AVX2 __m256i fi_mul64(__m256i c, __m256i chi, __m256i x)
{
    const __m256i ll = _mm256_mul_epu32(c, x);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(chi, x),
                                           _mm256_mul_epu32(c, _mm256_srli_epi64(x, 32)));
    return _mm256_add_epi64(ll, _mm256_slli_epi64(cross, 32));
}
#define FI_PREP(v)                                                             \
    const __m256i c = _mm256_set1_epi64x((long long)(v));                      \
    const __m256i chi = _mm256_srli_epi64(c, 32);
#define FI_MUL(x) fi_mul64(c, chi, (x))
#define FI_ADD(a, b) _mm256_add_epi64((a), (b))
FI_DEFINE_BLOCKS(fi_rows_l64_o64_avx2, uint64_t, uint64_t, 4)
#undef FI_PREP
#undef FI_MUL
#undef FI_ADD
/* 64-bit lanes where the CPU has AVX-512DQ and VL: one vpmullq (on 256-bit
 * vectors; Zen 4 runs AVX-512 as two 256-bit halves anyway). */
#undef FI_TARGET
#define FI_TARGET __attribute__((target("avx2,fma,avx512f,avx512dq,avx512vl")))
#define FI_PREP(v) const __m256i c = _mm256_set1_epi64x((long long)(v));
#define FI_MUL(x) _mm256_mullo_epi64(c, (x))
#define FI_ADD(a, b) _mm256_add_epi64((a), (b))
FI_DEFINE_BLOCKS(fi_rows_l64_o64_avx512, uint64_t, uint64_t, 4)
#undef FI_PREP
#undef FI_MUL
#undef FI_ADD
#undef FI_STORE4
#undef FI_TARGET

static int fi_cpu_has_avx512dq(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = (fc_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) ? 1 : 0;
    }
    return cached;
}
#else
static int fi_cpu_has_avx512dq(void) { return 0; }
#endif /* FC_X86_DISPATCH */

/* ------------------------------------------------------------ selection */

/* Lanes: 16, 32 or 64 bits; out_bytes: 1, 2, 4 or 8 (1 only with 16-bit
 * lanes, and out_bytes * 8 <= lanes otherwise equal); src: the input's
 * bytes, signed or not; level: 0 the best loops for this CPU, 1 the
 * portable C ones, 2 AVX2 without AVX-512 (tests check each twin).
 * Returns 0 when the combination is not served. */
static int fi_select(int lane_bits, int out_bytes, int src_bytes, int src_signed, int level,
                     fi_extend_fn *extend, fi_rows_fn *rows, fi_rows_fn *rows_lane)
{
    int simd = 0;
    const int portable = level == 1;
#if FC_X86_DISPATCH
    simd = !portable && fc_cpu_has_avx2_fma();
#define FI_PICK(base, avx2) (simd ? avx2 : base)
#else
    (void)portable;
#define FI_PICK(base, avx2) (base)
#endif
    *extend = NULL;
    *rows = NULL;
    *rows_lane = NULL;
    if (lane_bits == 16) {
        *rows_lane = FI_PICK(fi_rows_l16_o16_base, fi_rows_l16_o16_avx2);
        *rows = out_bytes == 1 ? FI_PICK(fi_rows_l16_o8_base, fi_rows_l16_o8_avx2)
                               : out_bytes == 2 ? *rows_lane : NULL;
        if (src_bytes == 1)
            *extend = src_signed ? FI_PICK(fi_ext_i8_l16_base, fi_ext_i8_l16_avx2)
                                 : FI_PICK(fi_ext_u8_l16_base, fi_ext_u8_l16_avx2);
        else if (src_bytes == 2)
            *extend = FI_PICK(fi_ext_u16_l16_base, fi_ext_u16_l16_avx2);
    } else if (lane_bits == 32) {
        *rows_lane = FI_PICK(fi_rows_l32_o32_base, fi_rows_l32_o32_avx2);
        *rows = out_bytes == 4 ? *rows_lane : NULL;
        if (src_bytes == 1)
            *extend = src_signed ? FI_PICK(fi_ext_i8_l32_base, fi_ext_i8_l32_avx2)
                                 : FI_PICK(fi_ext_u8_l32_base, fi_ext_u8_l32_avx2);
        else if (src_bytes == 2)
            *extend = src_signed ? FI_PICK(fi_ext_i16_l32_base, fi_ext_i16_l32_avx2)
                                 : FI_PICK(fi_ext_u16_l32_base, fi_ext_u16_l32_avx2);
        else if (src_bytes == 4)
            *extend = FI_PICK(fi_ext_u32_l32_base, fi_ext_u32_l32_avx2);
    } else if (lane_bits == 64) {
        *rows_lane = FI_PICK(fi_rows_l64_o64_base, fi_rows_l64_o64_avx2);
#if FC_X86_DISPATCH
        if (simd && level == 0 && fi_cpu_has_avx512dq()) *rows_lane = fi_rows_l64_o64_avx512;
#endif
        *rows = out_bytes == 8 ? *rows_lane : NULL;
        if (src_bytes == 1)
            *extend = src_signed ? FI_PICK(fi_ext_i8_l64_base, fi_ext_i8_l64_avx2)
                                 : FI_PICK(fi_ext_u8_l64_base, fi_ext_u8_l64_avx2);
        else if (src_bytes == 2)
            *extend = src_signed ? FI_PICK(fi_ext_i16_l64_base, fi_ext_i16_l64_avx2)
                                 : FI_PICK(fi_ext_u16_l64_base, fi_ext_u16_l64_avx2);
        else if (src_bytes == 4)
            *extend = src_signed ? FI_PICK(fi_ext_i32_l64_base, fi_ext_i32_l64_avx2)
                                 : FI_PICK(fi_ext_u32_l64_base, fi_ext_u32_l64_avx2);
        else if (src_bytes == 8)
            *extend = FI_PICK(fi_ext_u64_l64_base, fi_ext_u64_l64_avx2);
    }
#undef FI_PICK
    return *extend != NULL && *rows != NULL;
}

#endif /* FASTCORR_INT_KERNELS_H */
