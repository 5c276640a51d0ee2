# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Separable method: a low-rank kernel as sums of two 1-D passes.

A kernel of rank r is ``w = sum_i u_i v_i^T`` (from its SVD). For each term
the offset correlation (see ``direct.pyx``) factors as a horizontal pass
``T[i, n] = sum_k v[k] X[off0 + i, n + off1 + k]`` followed by a vertical
pass ``out[m, n] += sum_j u[j] T[m + j, n]``: ``kh + kw`` instead of
``kh * kw`` multiply-adds per output. The rank is the number of singular
values kept so that the dropped part changes no output by more than a few
units of the dtype's precision (relative to ``max|x| * sum|w|``, DESIGN §4);
rank > 3 is refused.

The output is processed in tasks of a band of rows by a strip of columns
(OpenMP, dynamic schedule); each thread keeps its own ring of
``(kh + 2) x strip`` for T (output rows summed three at a time as soon as
their rows of T are computed), the strip narrow enough for the ring to stay
in the core's cache, so the workspace is bounded whatever the image size.
A band computes ``kh - 1`` rows of T beyond its own, so bands are tall
(at least ``8 (kh - 1)`` rows where the image allows). All boundaries (fill
with any value, wrap, symm, nearest, mirror) and all offsets are served.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free

from fastcorr.methods.boundary cimport map_index, extend_row, BOUNDARY_FILL, BOUNDARY_WRAP, BOUNDARY_SYMM

import numpy as np

from fastcorr.methods._blas import blas_threads
from fastcorr.methods._memo import KernelCache

cdef extern from "sep_kernels.h" nogil:
    void fs_row_f32(float* out, const float* ext, const float* v, Py_ssize_t kw, Py_ssize_t n)
    void fs_row_f64(double* out, const double* ext, const double* v, Py_ssize_t kw, Py_ssize_t n)
    void fs_col_f32(float* out, const float* const* rows, const float* u, Py_ssize_t kh,
                    Py_ssize_t n, int accumulate)
    void fs_col_f64(double* out, const double* const* rows, const double* u, Py_ssize_t kh,
                    Py_ssize_t n, int accumulate)
    void fs_col3_f32(float* const* out, const float* const* rows, const float* u, Py_ssize_t kh,
                     Py_ssize_t n, int accumulate)
    void fs_col3_f64(double* const* out, const double* const* rows, const double* u, Py_ssize_t kh,
                     Py_ssize_t n, int accumulate)
    enum: FS_COL3_MAXK
    int fc_cpu_has_avx2_fma()

ctypedef fused real_t:
    float
    double

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache

SERVES_COMPLEX = False   # complex inputs are lowered to real passes by the engine
SERVES_INTEGER = False
#: ``correlate`` takes ``out=`` (the engine's bands and the public ``out=`` write in place).
SERVES_OUT = True
MAX_RANK = 3
#: Bytes of T per band buffer (per thread).
cdef enum:
    BAND_BYTES_C = 1 << 20
BAND_BYTES = BAND_BYTES_C


cdef inline void row_pass(real_t* o, const real_t* e, const real_t* v, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fs_row_f32(o, e, v, kw, n)
    else:
        fs_row_f64(o, e, v, kw, n)


cdef inline void col_pass(real_t* o, const real_t** r, const real_t* u, Py_ssize_t kh, Py_ssize_t n, int acc) noexcept nogil:
    if real_t is float:
        fs_col_f32(o, r, u, kh, n, acc)
    else:
        fs_col_f64(o, r, u, kh, n, acc)


cdef int col3_enabled = 1


def _set_col3(int enabled):
    """Whether the vertical pass sums three output rows at once (for measuring)."""
    global col3_enabled
    col3_enabled = enabled


cdef inline void col3_pass(real_t** o, const real_t** r, const real_t* u, Py_ssize_t kh, Py_ssize_t n,
                           int acc) noexcept nogil:
    if real_t is float:
        fs_col3_f32(o, r, u, kh, n, acc)
    else:
        fs_col3_f64(o, r, u, kh, n, acc)


cdef int spread_bands = 1


def _set_spread_bands(int enabled):
    """Whether the threads' bands are taken far apart (for measuring)."""
    global spread_bands
    spread_bands = enabled


cdef inline Py_ssize_t spread(Py_ssize_t i, Py_ssize_t nb, Py_ssize_t groups) noexcept nogil:
    """The i-th band (of nb) when the bands are cut into ``groups`` runs of
    consecutive bands taken in turn (run 0's first, run 1's first, ..., run
    0's second, ...): a bijection of 0 .. nb - 1. Threads taking tasks in
    that order write regions of the output far apart, so two of them do not
    fault on the same (huge) page of a fresh output at once, one waiting
    while the other's page is zeroed."""
    cdef Py_ssize_t q, rem, g, start, seen
    if groups <= 1 or nb <= groups:
        return i
    q = nb // groups
    if i < q * groups:
        g = i % groups
        return g * nb // groups + i // groups
    rem = i - q * groups
    seen = 0
    for g in range(groups):
        start = g * nb // groups
        if (g + 1) * nb // groups - start == q + 1:
            if seen == rem:
                return start + q
            seen += 1
    return i


cdef int sep2d(const real_t* x, Py_ssize_t H, Py_ssize_t W,
               const real_t* u, Py_ssize_t kh, const real_t* v, Py_ssize_t kw,
               real_t* out, Py_ssize_t Ho, Py_ssize_t Wo,
               Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
               int accumulate, Py_ssize_t band, Py_ssize_t strip, int num_threads) noexcept nogil:
    """One rank-1 term over tasks of ``band`` output rows x ``strip`` output
    columns; returns 0, or -1 when a buffer could not be allocated."""
    cdef Py_ssize_t nbands = (Ho + band - 1) // band
    cdef Py_ssize_t nstrips = (Wo + strip - 1) // strip
    cdef Py_ssize_t task, b, m0, m1, s0, wn, o1, i, r, t, m, j, lo, hi, t_lo, t_hi, next_
    cdef real_t vsum = 0
    cdef real_t fv
    cdef real_t* T
    cdef real_t* ext
    cdef real_t* trow
    cdef real_t* orow
    cdef const real_t* xrow
    cdef const real_t** rp
    cdef real_t** outs
    cdef Py_ssize_t ring = kh + 2, mm, first
    cdef int use3 = kh <= FS_COL3_MAXK and col3_enabled
    cdef int failed[1]
    failed[0] = 0
    for t in range(kw):
        vsum = vsum + v[t]
    fv = fill * vsum

    T = NULL  # allocated per thread below (initialised for the compiler's sake)
    ext = NULL
    rp = NULL
    outs = NULL
    with parallel(num_threads=num_threads):
        # T is a ring of kh + 2 rows: row i of the task's first pass lives in
        # slot i % (kh + 2), and output rows are summed three at a time as
        # soon as their kh + 2 rows are there (each row of T read once for
        # three outputs)
        T = <real_t*> malloc(ring * strip * sizeof(real_t))
        ext = <real_t*> malloc((strip + kw - 1) * sizeof(real_t))
        rp = <const real_t**> malloc((ring + 3) * sizeof(real_t*))
        if T == NULL or ext == NULL or rp == NULL:
            failed[0] = 1
        else:
            outs = <real_t**> (rp + ring)
            for task in prange(nbands * nstrips, schedule='dynamic'):
                b = spread(task // nstrips, nbands, num_threads if spread_bands else 1)
                m0 = b * band
                m1 = min(Ho, m0 + band)
                s0 = (task % nstrips) * strip
                wn = min(Wo, s0 + strip) - s0  # output columns of the task
                o1 = off1 + s0
                orow = out + s0
                next_ = wn + kw - 1
                # Columns of the extended row that lie inside x: [lo, hi).
                lo = min(max(-o1, 0), next_)
                hi = min(max(W - o1, lo), next_)
                # Outputs whose whole window lies inside x: [t_lo, t_hi).
                t_lo = min(max(-o1, 0), wn)
                t_hi = max(min(wn, W - o1 - kw + 1), t_lo)
                for i in range(m1 - m0 + kh - 1):
                    trow = T + (i % ring) * wn
                    r = map_index(off0 + m0 + i, H, boundary)
                    if r < 0:
                        for t in range(wn):
                            trow[t] = fv
                    elif lo == 0 and hi == next_:
                        row_pass(trow, x + r * W + o1, v, kw, wn)
                    elif t_hi - t_lo >= kw:
                        # outputs whose window lies inside the row read it in
                        # place; only the edges go through the extended copy
                        xrow = x + r * W
                        row_pass(trow + t_lo, xrow + o1 + t_lo, v, kw, t_hi - t_lo)
                        if t_lo > 0:
                            extend_row(ext, xrow, o1, t_lo + kw - 1, 0, 0, W, boundary, fill)
                            row_pass(trow, ext, v, kw, t_lo)
                        if wn > t_hi:
                            extend_row(ext, xrow, o1 + t_hi, wn - t_hi + kw - 1, 0, 0, W, boundary, fill)
                            row_pass(trow + t_hi, ext, v, kw, wn - t_hi)
                    else:
                        extend_row(ext, x + r * W, o1, next_, lo, hi, W, boundary, fill)
                        row_pass(trow, ext, v, kw, wn)
                    if i < kh - 1:
                        continue
                    m = m0 + i - (kh - 1)    # the output row whose last row of T this is
                    if use3 and (m - m0) % 3 == 2:
                        # output rows m - 2 .. m, from T rows m - 2 - m0 .. m - m0 + kh - 1
                        for j in range(kh + 2):
                            rp[j] = T + ((m - 2 - m0 + j) % ring) * wn
                        outs[0] = orow + (m - 2) * Wo
                        outs[1] = outs[0] + Wo
                        outs[2] = outs[1] + Wo
                        col3_pass(outs, rp, u, kh, wn, accumulate)
                    elif not use3 or m == m1 - 1:
                        # one at a time (or the one or two left at the band's end)
                        first = m if not use3 else m - (m - m0) % 3
                        for mm in range(first, m + 1):
                            for j in range(kh):
                                rp[j] = T + ((mm - m0 + j) % ring) * wn
                            col_pass(orow + mm * Wo, rp, u, kh, wn, accumulate)
        free(T)
        free(ext)
        free(rp)
    return -1 if failed[0] else 0


cdef inline void task_shape(Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t kh, Py_ssize_t itemsize,
                            int num_threads, Py_ssize_t* band, Py_ssize_t* strip) noexcept nogil:
    """Output rows x columns of one task.

    The strip: whole rows while the ring of ``kh + 2`` rows of T fits
    BAND_BYTES (one core's L2), else narrower (long kernels on wide images).
    The band: a task computes ``kh - 1`` rows of T beyond its own, so at
    least ``8 (kh - 1)`` rows (whole rows with the old band buffer gave
    8-row bands to a 97-tap kernel on a 4096-wide image: ~13x the horizontal
    pass) and as many as a T buffer of BAND_BYTES held, but few enough for
    two tasks per thread."""
    cdef Py_ssize_t s = BAND_BYTES_C // ((kh + 2) * itemsize)
    cdef Py_ssize_t b, nstrips, split
    if s < Wo:
        s = max(64, s - s % 16)
    if s > Wo:
        s = Wo
    nstrips = (Wo + s - 1) // s
    b = max(max(<Py_ssize_t> 64, 8 * (kh - 1)), BAND_BYTES_C // max(1, s * itemsize) - kh + 1)
    split = (2 * max(num_threads, 1) + nstrips - 1) // nstrips  # bands for two tasks per thread
    b = min(b, max(<Py_ssize_t> 8, (Ho + split - 1) // split))
    band[0] = max(<Py_ssize_t> 1, min(b, Ho))
    strip[0] = max(<Py_ssize_t> 1, s)


cdef int sep2d_default(const real_t* x, Py_ssize_t H, Py_ssize_t W,
                       const real_t* u, Py_ssize_t kh, const real_t* v, Py_ssize_t kw,
                       real_t* out, Py_ssize_t Ho, Py_ssize_t Wo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                       int accumulate, int num_threads) noexcept nogil:
    cdef Py_ssize_t band, strip
    if Ho <= 0 or Wo <= 0:
        return 0
    task_shape(Ho, Wo, kh, sizeof(real_t), num_threads, &band, &strip)
    return sep2d(x, H, W, u, kh, v, kw, out, Ho, Wo, off0, off1, boundary, fill, accumulate,
                 band, strip, max(num_threads, 1))


cdef int sepcorr2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W,
                       const float* u, Py_ssize_t kh, const float* v, Py_ssize_t kw,
                       float* out, Py_ssize_t Ho, Py_ssize_t Wo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, float fill,
                       int accumulate, int num_threads) noexcept nogil:
    return sep2d_default(x, H, W, u, kh, v, kw, out, Ho, Wo, off0, off1, boundary, fill, accumulate,
                         num_threads)


cdef int sepcorr2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W,
                       const double* u, Py_ssize_t kh, const double* v, Py_ssize_t kw,
                       double* out, Py_ssize_t Ho, Py_ssize_t Wo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, double fill,
                       int accumulate, int num_threads) noexcept nogil:
    return sep2d_default(x, H, W, u, kh, v, kw, out, Ho, Wo, off0, off1, boundary, fill, accumulate,
                         num_threads)


def _pass(const real_t[:, ::1] x, const real_t[::1] u, const real_t[::1] v, real_t[:, ::1] out,
          Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill, int accumulate, int num_threads,
          Py_ssize_t band=0, Py_ssize_t strip=0):
    """One rank-1 term into ``out``; tasks of ``band`` output rows x ``strip``
    output columns (0: the default shape, see ``task_shape``)."""
    cdef Py_ssize_t Ho = out.shape[0], Wo = out.shape[1], kh = u.shape[0], kw = v.shape[0]
    cdef Py_ssize_t default_band, default_strip
    cdef int status
    if Ho == 0 or Wo == 0:
        return
    if x.shape[0] * x.shape[1] == 0 and boundary != 0:
        raise ValueError("wrap/symm boundaries need a non-empty input")
    task_shape(Ho, Wo, kh, sizeof(real_t), num_threads, &default_band, &default_strip)
    band = min(band if band > 0 else default_band, Ho)
    strip = min(strip if strip > 0 else default_strip, Wo)
    with nogil:
        status = sep2d(&x[0, 0] if x.shape[0] * x.shape[1] else NULL, x.shape[0], x.shape[1],
                       &u[0], kh, &v[0], kw, &out[0, 0], Ho, Wo, off0, off1, boundary, fill,
                       accumulate, band, strip, num_threads)
    if status != 0:
        raise MemoryError("fastcorr separable: could not allocate a band buffer")


_factors = KernelCache(max_entries=256)
#: The last kernel too large for ``_factors`` (shape and dtypes, a copy of
#: it, its factors): a long call runs in bands (Ctrl-C), each an engine call
#: of its own, and an SVD of a 151x151 kernel per band (with BLAS's threads
#: left spinning on the cores after it) made a banded 6000² call 1.75x the
#: time of one call.
_last_large = None


def decompose(w, dtype=None):
    """Rank-r factors ``[(u_i, v_i)]`` with ``w ~= sum_i outer(u_i, v_i)``.

    The rank is the smallest r whose dropped singular values change no
    output by more than ``8 * eps(dtype) * max|x| * sum|w|``, or that are at
    the SVD's own rounding level (``eps * s_0 * max(kh, kw) / 4``). Returns the
    list (possibly longer than ``MAX_RANK``; the caller decides).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.separable import decompose
    >>> len(decompose(np.outer([1., 2., 1.], [1., 0., -1.])))
    1
    """
    global _last_large
    w = np.asarray(w)
    dtype = np.dtype(dtype if dtype is not None else (w.dtype if w.dtype.kind == "f" else np.float64))
    key = None
    if w.size <= 128 * 128:
        key = (w.shape, w.dtype.str, dtype.str, w.tobytes())
        hit = _factors.get(key)
        if hit is not None:
            return hit
    else:
        last = _last_large
        if last is not None and last[0] == (w.shape, w.dtype.str, dtype.str) and np.array_equal(last[1], w):
            return last[2]
    w64 = np.asarray(w, dtype=np.float64)
    kh, kw = w64.shape
    if kw == 1:
        terms = [(w64[:, 0], np.ones(1))]
    elif kh == 1:
        terms = [(np.ones(1), w64[0, :])]
    else:
        with blas_threads(1):  # (a multithreaded LAPACK call leaves BLAS's threads spinning, see _blas)
            U, s, Vt = np.linalg.svd(w64)
        budget = 8.0 * np.finfo(dtype).eps * np.abs(w64).sum() / np.sqrt(kh * kw)
        # singular values at the SVD's own rounding level carry nothing of
        # w: LAPACK leaves up to ~0.04 eps s0 max(kh, kw) behind for an exact
        # outer product from 151 taps on, which the output bound above (it
        # shrinks as 1 / sqrt(kh kw)) would otherwise count as rank
        budget = max(budget, 0.25 * np.finfo(np.float64).eps * s[0] * max(kh, kw))
        tail = np.sqrt(np.cumsum((s ** 2)[::-1])[::-1])  # tail[r] = ||s[r:]||
        rank = len(s)
        for r in range(len(s)):
            if tail[r] <= budget:
                rank = r
                break
        rank = max(rank, 1)
        terms = [(U[:, i] * np.sqrt(s[i]), Vt[i] * np.sqrt(s[i])) for i in range(rank)]
    terms = [(np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)) for a, b in terms]
    if key is not None:
        _factors.put(key, terms)
    else:
        _last_large = ((w.shape, w.dtype.str, dtype.str), w.copy(), terms)
    return terms


def rank(w, dtype=None):
    """Numerical rank used by this method (see :func:`decompose`)."""
    return len(decompose(w, dtype))


def correlate(x, w, shape, offsets, int boundary, fill, int num_threads, out=None):
    """Engine entry (see ``fastcorr._engine.dispatch``): offset correlation as 1-D passes,
    in a new array or in ``out`` (C-contiguous, ``shape``, ``x``'s dtype).

    Raises ValueError for integer or complex arrays and kernels of rank > 3.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"method='separable' computes float32/float64 only, got dtype {x.dtype}; "
            "use method='direct' (exact integers) or 'auto'"
        )
    terms = decompose(w, x.dtype)
    if len(terms) > MAX_RANK:
        raise ValueError(
            f"method='separable' needs a kernel of rank <= {MAX_RANK}; this {np.shape(w)[0]}x{np.shape(w)[1]} "
            f"kernel has numerical rank {len(terms)}: use method='direct', 'fft' or 'auto'"
        )
    if out is None:
        out = np.empty(tuple(shape), dtype=x.dtype)
    fill = x.dtype.type(fill)
    for i, (u, v) in enumerate(terms):
        _pass(x, u, v, out, offsets[0], offsets[1], boundary, fill, i > 0, max(1, num_threads))
    return out
