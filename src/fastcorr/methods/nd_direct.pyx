# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""N-D direct method: the offset correlation of arrays of any rank.

    out[m] = sum_k w[k] * X[m + off + k]          (m, k, off: N-D indices)

with X the input extended by zeros (scipy.signal.correlate has no other
boundary). The kernel's rows (its last axis) are *segments*: each output
row is the sum over segments of a 1-D correlation of one input row with one
kernel row, computed in register blocks by ``fn_row`` (``_simd/nd_kernels.h``).

Work is shared on OpenMP threads in one of two ways:

* by output pieces: (output row, chunk of ``COLS`` columns) items, for
  volumes, batches and long 1-D signals;
* by kernel taps: for one short output row and a long kernel (a window of
  lags of two long signals), each thread sums its share of the segments
  into its own buffer, and the buffers are added at the end.

Long kernels are summed in groups of at most ``GROUP_TAPS`` taps, each
group's partial sums added in double precision (float32 stays accurate over
millions of taps). Inputs are C-contiguous float32, float64, or uint64
(integers in modular arithmetic: exact for every integer result dtype).
"""
cimport cython
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.stdint cimport uint64_t

import threading

import numpy as np

cdef extern from "nd_kernels.h" nogil:
    void fn_row_f32(float* out, const float* x, const float* w, const Py_ssize_t* xoff,
                    const Py_ssize_t* woff, const Py_ssize_t* len, Py_ssize_t nseg,
                    Py_ssize_t n, int accumulate)
    void fn_row_f64(double* out, const double* x, const double* w, const Py_ssize_t* xoff,
                    const Py_ssize_t* woff, const Py_ssize_t* len, Py_ssize_t nseg,
                    Py_ssize_t n, int accumulate)
    void fn_row_u64(uint64_t* out, const uint64_t* x, const uint64_t* w, const Py_ssize_t* xoff,
                    const Py_ssize_t* woff, const Py_ssize_t* len, Py_ssize_t nseg,
                    Py_ssize_t n, int accumulate)
    Py_ssize_t fn_rows3_f32(float* const* acc, const float* const* inp, const float* w, Py_ssize_t nch,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const float* init)
    Py_ssize_t fn_rows3_f64(double* const* acc, const double* const* inp, const double* w, Py_ssize_t nch,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const double* init)
    int fc_cpu_has_avx2_fma()

ctypedef fused real_t:
    float
    double
    uint64_t

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache

SERVES_COMPLEX = False   # complex inputs are lowered to real correlations by the engine
SERVES_INTEGER = True    # as modular uint64

cdef enum:
    COLS_C = 2048
    GROUP_TAPS_C = 1024
#: Output columns per work item.
COLS = COLS_C
#: Taps summed in one register pass before the partial sums go to a double accumulator.
GROUP_TAPS = GROUP_TAPS_C
#: Taps per group of a window of lags of two long signals.
LAG_GROUP_TAPS = 4096
#: Kernels of at most this many taps go through the three-row kernel (0: never).
ROWS3_MAX_TAPS = GROUP_TAPS_C
#: ... and of at least this many taps, or output rows of at most ROWS3_NARROW_BYTES.
ROWS3_MIN_TAPS = 100
ROWS3_NARROW_BYTES = 256
#: Multiply-adds below which a call runs on one thread.
MIN_WORK_PER_THREAD = 1 << 16


cdef inline void row(real_t* out, const real_t* x, const real_t* w, const Py_ssize_t* xoff,
                     const Py_ssize_t* woff, const Py_ssize_t* ln, Py_ssize_t nseg,
                     Py_ssize_t n, int accumulate) noexcept nogil:
    if real_t is float:
        fn_row_f32(out, x, w, xoff, woff, ln, nseg, n, accumulate)
    elif real_t is double:
        fn_row_f64(out, x, w, xoff, woff, ln, nseg, n, accumulate)
    else:
        fn_row_u64(out, x, w, xoff, woff, ln, nseg, n, accumulate)


#: Karatsuba's split serves problems (a group of one segment: a window of
#: lags) of an even number of taps, at least KARA_MIN_TAPS, for at least
#: KARA_MIN_OUT outputs (where the half-size problems' register blocks stay
#: full), up to ``kara_levels`` times.
cdef enum:
    KARA_MIN_TAPS = 256
    KARA_MIN_OUT = 48

cdef int kara_levels = 2


def _set_kara_levels(int levels):
    """Levels of Karatsuba's split for a window of lags (0: none; for measuring)."""
    global kara_levels
    kara_levels = levels


cdef inline Py_ssize_t up8(Py_ssize_t v) noexcept nogil:
    return (v + 7) // 8 * 8


cdef inline int kara_splits(Py_ssize_t K, Py_ssize_t n, int levels) noexcept nogil:
    """Whether a problem of K taps and n outputs is split once more."""
    return levels > 0 and K % 2 == 0 and K >= KARA_MIN_TAPS and n >= KARA_MIN_OUT


cdef Py_ssize_t kara_buffer(Py_ssize_t K, Py_ssize_t n, int levels) noexcept nogil:
    """Doubles of :func:`kara`'s scratch buffer (its levels included)."""
    cdef Py_ssize_t h = K // 2
    cdef Py_ssize_t m = up8(n // 2 + 1)
    cdef Py_ssize_t size = 3 * (h + m) + 3 * h + 3 * m + 3 * m + 16
    if kara_splits(h, m, levels - 1):
        size += kara_buffer(h, m, levels - 1)
    return size


cdef void kara(double* dacc, const real_t* X, const real_t* w, Py_ssize_t K, Py_ssize_t n,
               double* buf, int levels) noexcept nogil:
    """``dacc[m] += sum_{k<K} w[k] * X[m + k]`` for ``m < n`` (K even) by
    Karatsuba's split: with the even and odd samples of both,
    ``out[2q] = A(q) + B(q)`` and ``out[2q + 1] = E(q) - A(q + 1) - B(q)``
    where A, B, E are correlations of half the taps (evens with evens, odds
    with odds, and the sums ``w_e + w_o`` with ``X_o[j] + X_e[j + 1]``): three
    quarters of the multiply-adds, and each of A, B, E split again while
    ``levels`` allow (two levels: 9/16). Reads ``X[0 .. K + n - 2]`` only;
    the half-size outputs are computed in whole vectors (a few more, from
    zeros). ``buf``: :func:`kara_buffer` doubles."""
    cdef Py_ssize_t h = K // 2
    cdef Py_ssize_t nA = n // 2 + 1, nB = (n + 1) // 2, nE = n // 2
    cdef Py_ssize_t m = up8(nA)          # outputs computed for each of A, B, E
    cdef Py_ssize_t lenX = h + m         # inputs they read
    cdef Py_ssize_t last = K + n - 2     # the last X read
    cdef Py_ssize_t j, q, zero = 0
    cdef double* dA = buf
    cdef double* dB = dA + m
    cdef double* dE = dB + m
    cdef real_t* Xe = <real_t*> (dE + m)
    cdef real_t* Xo = Xe + lenX
    cdef real_t* S = Xo + lenX
    cdef real_t* we = S + lenX
    cdef real_t* wo = we + h
    cdef real_t* ws = wo + h
    cdef real_t* A = ws + h
    cdef real_t* B = A + m
    cdef real_t* E = B + m
    cdef double* sub = buf + 3 * m + (6 * h + 6 * m) * sizeof(real_t) // sizeof(double) + 8
    # the samples up to ``last`` without a test each (a straight loop the
    # compiler vectorises), then the few past it as zeros
    cdef Py_ssize_t jfull = min(lenX, max(<Py_ssize_t> 0, last // 2))   # 2j + 2 <= last
    for j in range(jfull):
        Xe[j] = X[2 * j]
        Xo[j] = X[2 * j + 1]
        S[j] = X[2 * j + 1] + X[2 * j + 2]
    for j in range(jfull, lenX):
        Xe[j] = X[2 * j] if 2 * j <= last else 0
        Xo[j] = X[2 * j + 1] if 2 * j + 1 <= last else 0
        S[j] = (X[2 * j + 1] if 2 * j + 1 <= last else 0) + (X[2 * j + 2] if 2 * j + 2 <= last else 0)
    for j in range(h):
        we[j] = w[2 * j]
        wo[j] = w[2 * j + 1]
        ws[j] = we[j] + wo[j]
    if kara_splits(h, m, levels - 1):
        for j in range(3 * m):
            dA[j] = 0
        kara(dA, Xe, we, h, m, sub, levels - 1)
        kara(dB, Xo, wo, h, m, sub, levels - 1)
        kara(dE, S, ws, h, m, sub, levels - 1)
    else:
        row(A, Xe, we, &zero, &zero, &h, 1, m, 0)
        row(B, Xo, wo, &zero, &zero, &h, 1, m, 0)
        row(E, S, ws, &zero, &zero, &h, 1, m, 0)
        for j in range(m):
            dA[j] = A[j]
            dB[j] = B[j]
            dE[j] = E[j]
    for q in range(nB):
        dacc[2 * q] += dA[q] + dB[q]
    for q in range(nE):
        dacc[2 * q + 1] += dE[q] - dA[q + 1] - dB[q]


cdef int run(const real_t* x, const real_t* w, const Py_ssize_t* xoff, const Py_ssize_t* woff,
             const Py_ssize_t* ln, const Py_ssize_t* gstart, Py_ssize_t ngroups,
             const Py_ssize_t* rowbase, Py_ssize_t nrows, real_t* out, Py_ssize_t Wo,
             int by_taps, int nthreads, Py_ssize_t maxtaps) noexcept nogil:
    """Returns 0, or -1 when a buffer could not be allocated. ``maxtaps``:
    the most taps of one group."""
    cdef Py_ssize_t ncols = (Wo + COLS_C - 1) // COLS_C
    cdef Py_ssize_t nitems = nrows * ncols
    cdef Py_ssize_t item, r, c0, n, g, i, t, per, g0, g1, npieces, chunk
    cdef real_t* tmp
    cdef double* dacc
    cdef real_t* uacc
    cdef real_t* partial = NULL
    cdef int failed[1]
    cdef double s
    cdef uint64_t u
    failed[0] = 0
    if by_taps:
        # one output row (Wo samples), the groups shared among the threads
        npieces = min(ngroups, 8 * nthreads)
        per = (ngroups + npieces - 1) // npieces
        npieces = (ngroups + per - 1) // per
        partial = <real_t*> malloc(npieces * Wo * (sizeof(double) if real_t is not uint64_t else sizeof(real_t)))
        if partial == NULL:
            return -1
        with parallel(num_threads=nthreads):
            tmp = <real_t*> malloc(Wo * sizeof(real_t) + kara_buffer(maxtaps, Wo, kara_levels) * sizeof(double))
            if tmp == NULL:
                failed[0] = 1
            else:
                # pieces of consecutive groups, taken dynamically (a thread
                # slowed by another process does not hold the others back),
                # each summed into its own buffer: the same result every run
                for t in prange(npieces, schedule='dynamic', chunksize=1):
                    g0 = t * per
                    g1 = min(ngroups, g0 + per)
                    if real_t is uint64_t:
                        uacc = partial + t * Wo
                        for i in range(Wo):
                            uacc[i] = 0
                        for g in range(g0, g1):
                            row(uacc, x + rowbase[0], w, xoff + gstart[g], woff + gstart[g],
                                ln + gstart[g], gstart[g + 1] - gstart[g], Wo, 1)
                    else:
                        dacc = (<double*> partial) + t * Wo
                        for i in range(Wo):
                            dacc[i] = 0
                        for g in range(g0, g1):
                            if (gstart[g + 1] - gstart[g] == 1 and Wo >= 2 * KARA_MIN_OUT
                                    and kara_splits(ln[gstart[g]], Wo, kara_levels)):
                                kara(dacc, x + rowbase[0] + xoff[gstart[g]], w + woff[gstart[g]],
                                     ln[gstart[g]], Wo, <double*> tmp, kara_levels)
                                continue
                            row(tmp, x + rowbase[0], w, xoff + gstart[g], woff + gstart[g],
                                ln + gstart[g], gstart[g + 1] - gstart[g], Wo, 0)
                            for i in range(Wo):
                                dacc[i] = dacc[i] + tmp[i]
            free(tmp)
        if not failed[0]:
            for i in range(Wo):
                if real_t is uint64_t:
                    u = 0
                    for t in range(npieces):
                        u = u + partial[t * Wo + i]
                    out[i] = u
                else:
                    dacc = <double*> partial
                    s = 0
                    for t in range(npieces):
                        s = s + dacc[t * Wo + i]
                    out[i] = <real_t> s
        free(partial)
        return -1 if failed[0] else 0

    # items in runs of a sixteenth of each thread's share: few trips to the
    # shared counter, the load still balanced
    chunk = max(1, nitems // (16 * nthreads))
    with parallel(num_threads=nthreads):
        tmp = NULL
        dacc = NULL
        if ngroups > 1:
            tmp = <real_t*> malloc(COLS_C * sizeof(real_t))
            dacc = <double*> malloc(COLS_C * sizeof(double))
            if tmp == NULL or dacc == NULL:
                failed[0] = 1
        if not failed[0]:
            for item in prange(nitems, schedule='dynamic', chunksize=chunk):
                r = item // ncols
                c0 = (item - r * ncols) * COLS_C
                n = min(<Py_ssize_t> COLS_C, Wo - c0)
                if ngroups == 1:
                    row(out + r * Wo + c0, x + rowbase[r] + c0, w, xoff, woff, ln, gstart[1], n, 0)
                elif real_t is uint64_t:
                    row(out + r * Wo + c0, x + rowbase[r] + c0, w, xoff, woff, ln, gstart[1], n, 0)
                    for g in range(1, ngroups):
                        row(out + r * Wo + c0, x + rowbase[r] + c0, w, xoff + gstart[g], woff + gstart[g],
                            ln + gstart[g], gstart[g + 1] - gstart[g], n, 1)
                else:
                    for i in range(n):
                        dacc[i] = 0
                    for g in range(ngroups):
                        row(tmp, x + rowbase[r] + c0, w, xoff + gstart[g], woff + gstart[g],
                            ln + gstart[g], gstart[g + 1] - gstart[g], n, 0)
                        for i in range(n):
                            dacc[i] = dacc[i] + tmp[i]
                    for i in range(n):
                        out[r * Wo + c0 + i] = <real_t> dacc[i]
        free(tmp)
        free(dacc)
    return -1 if failed[0] else 0


cdef void rows3_item(const real_t* x, Py_ssize_t ldp, const Py_ssize_t* obase, const Py_ssize_t* choff,
                     Py_ssize_t nch, const real_t* w, Py_ssize_t kh, Py_ssize_t kw, real_t* out,
                     Py_ssize_t H, Py_ssize_t Wo, Py_ssize_t groups, Py_ssize_t ncols, Py_ssize_t item,
                     void** work, const real_t* zeros) noexcept nogil:
    """Item (leading output index, group of 3 output rows, chunk of COLS
    columns) of :func:`run_rows3`. ``work``: room for nch * (kh + 2) + 3
    pointers and 3 * nch * kh integers."""
    cdef Py_ssize_t col = item % ncols, rest = item // ncols
    cdef Py_ssize_t o = rest // groups, h0 = (rest % groups) * 3
    cdef Py_ssize_t c0 = col * COLS_C, n = min(<Py_ssize_t> COLS_C, Wo - c0)
    cdef Py_ssize_t rows_here = min(<Py_ssize_t> 3, H - h0), per = kh + 2, a, c, j, s
    cdef const real_t* base = x + obase[o] + h0 * ldp + c0
    cdef real_t* orow = out + (o * H + h0) * Wo + c0
    cdef const real_t** inp = <const real_t**> work
    cdef real_t** accs = <real_t**> (inp + nch * per)
    cdef Py_ssize_t* xo = <Py_ssize_t*> (accs + 3)
    cdef Py_ssize_t* wo = xo + nch * kh
    cdef Py_ssize_t* ln = wo + nch * kh
    if real_t is uint64_t:
        return  # integers take the segments' path
    else:
        if rows_here == 3:
            for c in range(nch):
                for j in range(per):
                    inp[c * per + j] = base + choff[c] + j * ldp
            for a in range(3):
                accs[a] = orow + a * Wo
            if real_t is float:
                if fn_rows3_f32(accs, inp, w, nch, kh, kw, n, zeros) == n:
                    return
            else:
                if fn_rows3_f64(accs, inp, w, nch, kh, kw, n, zeros) == n:
                    return
        # the last rows of a plane (or no AVX2): one output row at a time
        for a in range(rows_here):
            for c in range(nch):
                for j in range(kh):
                    s = c * kh + j
                    xo[s] = choff[c] + (a + j) * ldp
                    wo[s] = s * kw
                    ln[s] = kw
            row(orow + a * Wo, base, w, xo, wo, ln, nch * kh, n, 0)


cdef int run_rows3(const real_t* x, Py_ssize_t ldp, const Py_ssize_t* obase, Py_ssize_t nouter,
                   const Py_ssize_t* choff, Py_ssize_t nch, const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                   real_t* out, Py_ssize_t H, Py_ssize_t Wo, int nthreads) noexcept nogil:
    """``out[o, h, t] = sum_{c,j,k} w[c, j, k] * x[obase[o] + choff[c] + (h + j) * ldp + t + k]``
    (out C-contiguous, nouter x H x Wo; the kernel's leading axes flattened
    into its nch channels) by the three-row kernel. Returns 0, or -1 when a
    buffer could not be allocated."""
    cdef Py_ssize_t groups = (H + 2) // 3, ncols = (Wo + COLS_C - 1) // COLS_C
    cdef Py_ssize_t nitems = nouter * groups * ncols, item, chunk
    cdef Py_ssize_t slots = nch * (kh + 2) + 3 + 3 * nch * kh
    cdef void** work
    cdef real_t zeros[3]
    cdef int failed[1]
    failed[0] = 0
    zeros[0] = 0
    zeros[1] = 0
    zeros[2] = 0
    chunk = max(1, min(4, nitems // (16 * nthreads)))
    with parallel(num_threads=nthreads):
        work = <void**> malloc(slots * sizeof(void*))
        if work == NULL:
            failed[0] = 1
        else:
            for item in prange(nitems, schedule='dynamic', chunksize=chunk):
                rows3_item(x, ldp, obase, choff, nch, w, kh, kw, out, H, Wo, groups, ncols, item, work, zeros)
        free(work)
    return -1 if failed[0] else 0


cdef void pad3_rows(const real_t* x, Py_ssize_t sz, Py_ssize_t sy, const Py_ssize_t* zmap,
                    const Py_ssize_t* ymap, const Py_ssize_t* xmap, real_t cval, real_t* P,
                    Py_ssize_t Ph, Py_ssize_t Pw, Py_ssize_t W, Py_ssize_t lox, Py_ssize_t r0,
                    Py_ssize_t r1) noexcept nogil:
    """Rows r0 .. r1 - 1 (plane-major) of :func:`pad3`'s output."""
    cdef Py_ssize_t r, q, xi, zi, yi
    cdef const real_t* src
    cdef real_t* dst
    for r in range(r0, r1):
        zi = zmap[r // Ph]
        yi = ymap[r % Ph]
        dst = P + r * Pw
        if zi < 0 or yi < 0:
            for q in range(Pw):
                dst[q] = cval
            continue
        src = x + zi * sz + yi * sy
        for q in range(lox):
            xi = xmap[q]
            dst[q] = cval if xi < 0 else src[xi]
        memcpy(dst + lox, src, W * sizeof(real_t))
        for q in range(lox + W, Pw):
            xi = xmap[q]
            dst[q] = cval if xi < 0 else src[xi]


def _run_pad3(const real_t[:, :, ::1] x, const Py_ssize_t[::1] zmap, const Py_ssize_t[::1] ymap,
              const Py_ssize_t[::1] xmap, real_t cval, real_t[:, :, ::1] P, Py_ssize_t lox, int nthreads):
    cdef Py_ssize_t Ph = P.shape[1], Pw = P.shape[2], W = x.shape[2]
    cdef Py_ssize_t nrows = P.shape[0] * Ph, per, i, npieces
    per = max(<Py_ssize_t> 1, min(<Py_ssize_t> 256, nrows // (8 * max(1, nthreads))))
    npieces = (nrows + per - 1) // per
    with nogil:
        if nthreads > 1 and npieces > 1:
            for i in prange(npieces, num_threads=nthreads, schedule='dynamic'):
                pad3_rows(&x[0, 0, 0], x.shape[1] * W, W, &zmap[0], &ymap[0], &xmap[0], cval, &P[0, 0, 0],
                          Ph, Pw, W, lox, i * per, min(nrows, (i + 1) * per))
        else:
            pad3_rows(&x[0, 0, 0], x.shape[1] * W, W, &zmap[0], &ymap[0], &xmap[0], cval, &P[0, 0, 0],
                      Ph, Pw, W, lox, 0, nrows)


def pad3(x, zmap, ymap, xmap, cval, lox, P, num_threads):
    """``P[i, j, q] = X[zmap[i], ymap[j], xmap[q]]`` (an index -1: ``cval``):
    a 3-D input extended by a boundary rule, given as maps from extended
    positions to indices, into ``P`` (C-contiguous, x's dtype, of shape the
    maps' lengths), rows copied on ``num_threads`` threads. ``xmap`` must
    map positions ``lox .. lox + W - 1`` to ``0 .. W - 1`` (``lox``: the
    count of its leading entries, outside x)."""
    if x.ndim != 3 or P.ndim != 3 or x.dtype != P.dtype or x.dtype not in (np.float32, np.float64):
        raise ValueError("x and P must be 3-D float32 or float64 arrays of one dtype")
    if not (x.flags.c_contiguous and P.flags.c_contiguous and P.flags.writeable):
        raise ValueError("x and P must be C-contiguous, P writable")
    maps = [np.ascontiguousarray(m, dtype=np.intp) for m in (zmap, ymap, xmap)]
    for m, size, lim in zip(maps, P.shape, x.shape):
        if m.shape != (size,) or (size and (m.min() < -1 or m.max() >= lim)):
            raise ValueError("each map must have P's length on its axis, entries in [-1, x's length)")
    W = x.shape[2]
    xm = maps[2]
    lox = int(lox)
    if lox < 0 or lox + W > xm.shape[0] or not np.array_equal(xm[lox:lox + W], np.arange(W)):
        raise ValueError("xmap must hold 0 .. W - 1 in order")
    if P.size == 0 or x.size == 0:
        P[...] = cval
        return P
    _run_pad3(x, maps[0], maps[1], maps[2], x.dtype.type(cval), P, lox, int(max(1, num_threads)))
    return P


def _run_rows3(const real_t[::1] xflat, Py_ssize_t xstart, Py_ssize_t ldp, const Py_ssize_t[::1] obase,
               const Py_ssize_t[::1] choff, const real_t[::1] wflat, Py_ssize_t kh, Py_ssize_t kw,
               real_t[::1] out, Py_ssize_t H, Py_ssize_t Wo, int nthreads):
    cdef int status
    with nogil:
        status = run_rows3(&xflat[0] + xstart, ldp, &obase[0], obase.shape[0], &choff[0], choff.shape[0],
                           &wflat[0], kh, kw, &out[0], H, Wo, nthreads)
    if status != 0:
        raise MemoryError("fastcorr nd_direct: could not allocate a work buffer")


def _run(const real_t[::1] xflat, const real_t[::1] wflat, Py_ssize_t xstart,
         const Py_ssize_t[::1] xoff, const Py_ssize_t[::1] woff, const Py_ssize_t[::1] ln,
         const Py_ssize_t[::1] gstart, const Py_ssize_t[::1] rowbase, real_t[::1] out,
         Py_ssize_t Wo, int by_taps, int nthreads):
    cdef int status
    cdef Py_ssize_t maxtaps = 0, g, t, i
    cdef Py_ssize_t ngroups = gstart.shape[0] - 1
    cdef Py_ssize_t nrows = rowbase.shape[0]
    for g in range(ngroups):
        t = 0
        for i in range(gstart[g], gstart[g + 1]):
            t += ln[i]
        maxtaps = max(maxtaps, t)
    with nogil:
        status = run(&xflat[0] + xstart, &wflat[0], &xoff[0], &woff[0], &ln[0], &gstart[0], ngroups,
                     &rowbase[0], nrows, &out[0], Wo, by_taps, nthreads, maxtaps)
    if status != 0:
        raise MemoryError("fastcorr nd_direct: could not allocate a work buffer")


@cython.wraparound(True)
def segments(kshape, xstrides, group_taps=GROUP_TAPS):
    """The kernel's rows as segments ``(xoff, woff, len)`` and their groups.

    ``xstrides`` are the input's strides in elements. Rows longer than
    ``group_taps`` are cut; consecutive segments are grouped up to
    ``group_taps`` taps. Returns ``(xoff, woff, len, gstart)`` (int arrays;
    group g is segments ``gstart[g]:gstart[g + 1]``).
    """
    kshape = tuple(int(k) for k in kshape)
    klast = kshape[-1]
    lead = kshape[:-1]
    nrows = int(np.prod(lead)) if lead else 1
    if lead:
        idx = np.indices(lead).reshape(len(lead), -1)
        base = (idx * np.asarray(xstrides[:-1], dtype=np.intp)[:, None]).sum(axis=0)
    else:
        base = np.zeros(1, dtype=np.intp)
    wbase = np.arange(nrows, dtype=np.intp) * klast
    cut = max(1, min(klast, group_taps))
    starts = np.arange(0, klast, cut, dtype=np.intp)
    lens = np.minimum(cut, klast - starts)
    xoff = (base[:, None] + starts[None, :]).ravel()
    woff = (wbase[:, None] + starts[None, :]).ravel()
    ln = np.broadcast_to(lens, (nrows, len(starts))).ravel().astype(np.intp)
    # groups: consecutive segments up to group_taps taps
    per = max(1, group_taps // cut)
    gstart = np.append(np.arange(0, len(xoff), per, dtype=np.intp), len(xoff)).astype(np.intp)
    return (np.ascontiguousarray(xoff, dtype=np.intp), np.ascontiguousarray(woff, dtype=np.intp),
            np.ascontiguousarray(ln, dtype=np.intp), gstart)


@cython.wraparound(True)
def correlate_region(xr, w, shape, num_threads, out=None):
    """``out[m] = sum_k w[k] * xr[m + k]`` for an input ``xr`` that covers
    every position read (a C-contiguous array, or a view of one whose last
    axis is contiguous), ``w`` C-contiguous, both of the same dtype."""
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if out is None:
        out = np.empty(shape, dtype=w.dtype)
    if out.size == 0:
        return out
    item = xr.itemsize
    xstrides = [s // item for s in xr.strides]
    if xr.strides[-1] != item and xr.shape[-1] > 1:
        raise ValueError("nd_direct: the input's last axis must be contiguous")
    Wo = shape[-1]
    if uses_rows3(w.shape, shape, w.dtype):
        _rows3(xr, xstrides, w, shape, out, num_threads)
        return out
    one_row = all(s == 1 for s in shape[:-1])
    # one short output row and a long kernel (a window of lags): groups of
    # LAG_GROUP_TAPS taps (inputs in L2), summed with Karatsuba's split
    long_taps = one_row and w.ndim == 1 and w.shape[0] >= 4 * LAG_GROUP_TAPS and Wo < COLS_C
    xoff, woff, ln, gstart = segments(w.shape, xstrides, LAG_GROUP_TAPS if long_taps else GROUP_TAPS_C)
    lead = shape[:-1]
    if lead:
        idx = np.indices(lead).reshape(len(lead), -1)
        rowbase = np.ascontiguousarray((idx * np.asarray(xstrides[:-1], dtype=np.intp)[:, None]).sum(axis=0),
                                       dtype=np.intp)
    else:
        rowbase = np.zeros(1, dtype=np.intp)
    Wo = shape[-1]
    flat, start = _flat_of(xr)
    work = float(out.size) * w.size
    nthreads = int(max(1, min(num_threads, work // MIN_WORK_PER_THREAD)))
    ncols = (Wo + COLS - 1) // COLS
    ngroups = len(gstart) - 1
    # the taps shared among the threads (and, for a window of lags, summed
    # with Karatsuba's split, on one thread too)
    by_taps = int(len(rowbase) == 1 and ncols < 2 * nthreads and ngroups >= 2 * nthreads
                  and (nthreads > 1 or long_taps))
    if not by_taps:
        nthreads = int(max(1, min(nthreads, len(rowbase) * ncols)))
    _run(flat, np.ascontiguousarray(w).reshape(-1), start, xoff, woff, ln, gstart, rowbase,
         out.reshape(-1), Wo, by_taps, nthreads)
    return out


@cython.wraparound(True)
def uses_rows3(kshape, shape, dtype):
    """Whether the three-row kernel serves an output of ``shape`` with a
    kernel of ``kshape`` (else the segments' loop, one output row at a
    time): float32 / float64, 2-D and up, at least three output rows, a
    kernel of at least 3 x 3 in its last two axes and at most
    ROWS3_MAX_TAPS taps (summed in one register pass: float32 stays
    accurate), and either ROWS3_MIN_TAPS taps or rows of at most
    ROWS3_NARROW_BYTES. Measured at one thread (CPU time) on the Zen 4 host,
    three-row / segments: 128³ float32 7³ 0.80, 5³ 0.88, 3³ 1.09 (3³ on rows
    of 32: 0.45; 32⁴ with 3⁴: 0.46); thin kernels (7x1x1, 1x7x1, 1x1x7,
    3x3x1) 1.2-2.2, so those stay on the segments."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64) or len(shape) < 2 or shape[-2] < 3:
        return False
    if kshape[-1] < 3 or kshape[-2] < 3:
        return False
    taps = int(np.prod(kshape))
    return taps <= ROWS3_MAX_TAPS and (taps >= ROWS3_MIN_TAPS or shape[-1] * dtype.itemsize <= ROWS3_NARROW_BYTES)


@cython.wraparound(True)
def _offsets(shape, strides):
    """Flat offsets (elements) of every index of ``shape`` with ``strides``, C order."""
    off = np.zeros(1, dtype=np.intp)
    for n, st in zip(shape, strides):
        off = (off[:, None] + np.arange(n, dtype=np.intp)[None, :] * st).ravel()
    return np.ascontiguousarray(off, dtype=np.intp)


@cython.wraparound(True)
def _rows3(xr, xstrides, w, shape, out, num_threads):
    """:func:`correlate_region` by the three-row kernel (see :func:`uses_rows3`)."""
    nd = len(shape)
    obase = _offsets(shape[:nd - 2], xstrides[:nd - 2])
    choff = _offsets(w.shape[:nd - 2], xstrides[:nd - 2])
    H, Wo = shape[-2], shape[-1]
    work = float(out.size) * w.size
    nitems = len(obase) * ((H + 2) // 3) * ((Wo + COLS - 1) // COLS)
    nthreads = int(max(1, min(num_threads, work // MIN_WORK_PER_THREAD, nitems)))
    flat, start = _flat_of(xr)
    _run_rows3(flat, start, int(xstrides[-2]), obase, choff, np.ascontiguousarray(w).reshape(-1),
               int(w.shape[-2]), int(w.shape[-1]), out.reshape(-1), H, Wo, nthreads)


def correlate_valid(P, w, out, num_threads):
    """``out`` = the 'valid' correlation of the (already padded) array ``P``
    with ``w`` (same ndim, same float dtype; ``out`` C-contiguous, of shape
    ``P.shape - w.shape + 1``), on ``num_threads`` threads: the boundary
    rules of fastcorr.ndimage extend the input first, then come here."""
    nd = P.ndim
    if w.ndim != nd or out.ndim != nd or nd < 1:
        raise ValueError("P, w and out must have the same ndim >= 1")
    if P.dtype != w.dtype or P.dtype != out.dtype or P.dtype not in (np.float32, np.float64):
        raise ValueError("P, w and out must share a float32 or float64 dtype")
    for i in range(nd):
        if out.shape[i] != P.shape[i] - w.shape[i] + 1 or out.shape[i] <= 0:
            raise ValueError("out must have shape P.shape - w.shape + 1")
    if not (P.flags.c_contiguous and w.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("P, w and out must be C-contiguous")
    return correlate_region(P, w, out.shape, num_threads, out=out)


@cython.wraparound(True)
def _flat_of(a):
    """A 1-D view of the memory spanned by ``a`` (strides >= 0) and the
    index of ``a``'s first element in it."""
    if a.flags.c_contiguous:
        return a.reshape(-1), 0
    span = 1 + sum((n - 1) * (s // a.itemsize) for n, s in zip(a.shape, a.strides))
    flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,))
    return flat, 0


#: Padded copies of at least this many bytes (and at most WORKSPACE_MAX) are
#: kept, one per thread, for the next call of the same geometry: the copy then
#: writes into memory already mapped (a fresh 8 MiB buffer costs ~2 ms of page
#: faults here, as much as a 128³ correlation with a 3³ kernel).
WORKSPACE_MIN = 1 << 20
WORKSPACE_MAX = 1 << 26
_workspace = threading.local()


@cython.wraparound(True)
def _region(x, lo, hi, reuse=False):
    """x[lo:hi] per axis, zero outside x: a view when inside, else a padded
    copy (with ``reuse``, in this thread's kept buffer when it fits)."""
    if all(l >= 0 and h <= n for l, h, n in zip(lo, hi, x.shape)):
        return x[tuple(slice(l, h) for l, h in zip(lo, hi))]
    shape = tuple(h - l for l, h in zip(lo, hi))
    nbytes = int(np.prod(shape)) * x.itemsize
    key = (x.shape, tuple(lo), tuple(hi), x.dtype.str)
    if reuse and WORKSPACE_MIN <= nbytes <= WORKSPACE_MAX:
        kept = getattr(_workspace, "padded", None)
        if kept is not None and kept[0] == key:
            r = kept[1]  # its border is still zero: only the interior is written
        else:
            _workspace.padded = None  # drop the old buffer before making the new one
            r = np.zeros(shape, dtype=x.dtype)
            _workspace.padded = (key, r)
    else:
        r = np.zeros(shape, dtype=x.dtype)
    src = tuple(slice(max(l, 0), min(h, n)) for l, h, n in zip(lo, hi, x.shape))
    dst = tuple(slice(max(l, 0) - l, min(h, n) - l) for l, h, n in zip(lo, hi, x.shape))
    if all(s.stop > s.start for s in src):
        r[dst] = x[src]
    return r


@cython.wraparound(True)
def correlate(x, w, shape, offsets, boundary, fill, num_threads):
    """The offset correlation ``out[m] = sum_k w[k] * X[m + off + k]`` with
    X = ``x`` extended by zeros (``boundary`` must be 0 and ``fill`` zero).

    ``x`` and ``w``: C-contiguous arrays of one dtype (float32, float64 or
    uint64) and the same rank; ``shape``, ``offsets``: one entry per axis.
    """
    if boundary != 0 or fill != 0:
        raise ValueError("the N-D direct method serves only a zero fill")
    shape = tuple(int(s) for s in shape)
    offsets = tuple(int(o) for o in offsets)
    if 0 in shape or w.size == 0 or x.size == 0:
        return np.zeros(shape, dtype=w.dtype)
    out = np.empty(shape, dtype=w.dtype)
    lo = offsets
    hi = tuple(o + n + k - 1 for o, n, k in zip(offsets, shape, w.shape))
    if x.ndim == 1 and (lo[0] < 0 or hi[0] > x.shape[0]) and w.shape[0] > 4 * shape[0]:
        # a few outputs and a long kernel (a window of lags): no padded copy
        # of the input; the taps that reach past its ends run on small
        # padded pieces.
        _edges_1d(x, w, shape[0], lo[0], out, num_threads)
        return out
    if x.ndim == 1 and (lo[0] < 0 or hi[0] > x.shape[0]):
        _outputs_1d(x, w, shape[0], lo[0], out, num_threads)
        return out
    correlate_region(_region(x, lo, hi, reuse=True), w, shape, num_threads, out=out)
    return out


@cython.wraparound(True)
def _outputs_1d(x, w, n, off, out, num_threads):
    """1-D: the outputs whose window lies inside x read it in place; the
    few others (at most K - 1 at each end) read small padded pieces."""
    N, K = x.shape[0], w.shape[0]
    a = min(max(0, -off), n)                 # first output reading only x
    b = max(a, min(n, N - K + 1 - off))      # end of those
    for m0, m1 in ((0, a), (a, b), (b, n)):
        if m1 > m0:
            correlate_region(_region(x, (off + m0,), (off + m1 + K - 1,)), w, (m1 - m0,), num_threads,
                             out=out[m0:m1])


@cython.wraparound(True)
def _edges_1d(x, w, n, off, out, num_threads):
    N, K = x.shape[0], w.shape[0]
    # taps k read X[off + k .. off + k + n - 1]: inside x for k in [a, b)
    a = min(max(0, -off), K)
    b = max(a, min(K, N - n + 1 - off))
    parts = []
    if a > 0:
        parts.append((0, a))
    if b > a:
        parts.append((a, b))
    if b < K:
        parts.append((b, K))
    first = True
    for k0, k1 in parts:
        lo = off + k0
        hi = off + k1 + n - 1
        if hi <= 0 or lo >= N:
            continue  # only zeros under these taps
        xr = _region(x, (lo,), (hi,))
        part = correlate_region(xr, np.ascontiguousarray(w[k0:k1]), (n,), num_threads)
        if first:
            out[...] = part
            first = False
        else:
            out += part
    if first:
        out[...] = 0
