# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Normalized convolution's fused method: a rank-1 kernel in one sweep.

Normalized convolution is ``conv(c * x, k) / conv(c, k)`` (see
``fastcorr._engine.normalized``). For a kernel of rank 1, ``k = outer(u, v)``
(Gaussians, boxes), each correlation is two 1-D passes, as in the separable
method, and this module runs both correlations and the pointwise work
together, output row by output row: each input row is prepared (``c * x``
and ``c``, a missing pixel's value replaced, never read) into two short
buffers and both horizontal passes run on it; then both vertical passes and
the division make the output row, from the last kh passes still in cache.
The image is read once and the result written once; the composed path
writes and reads back four image-sized arrays (``c * x``, ``c`` and the two
correlations), and on this machine fresh memory costs more than these
passes (DESIGN §5).

Output rows are processed in chunks, one per OpenMP task, each thread
keeping the last kh horizontal passes of both inputs in a ring of rows (two
of ``kh x Wo``, bounded whatever the image's height), so that each input
row is prepared and passed once. The loops are the separable method's
(``_simd/sep_kernels.h``) and normalized convolution's pointwise ones
(``_simd/norm_kernels.h``).
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "sep_kernels.h" nogil:
    void fs_row_f32(float* out, const float* ext, const float* v, Py_ssize_t kw, Py_ssize_t n)
    void fs_row_f64(double* out, const double* ext, const double* v, Py_ssize_t kw, Py_ssize_t n)
    void fs_col_f32(float* out, const float* const* rows, const float* u, Py_ssize_t kh,
                    Py_ssize_t n, int accumulate)
    void fs_col_f64(double* out, const double* const* rows, const double* u, Py_ssize_t kh,
                    Py_ssize_t n, int accumulate)
    int fc_cpu_has_avx2_fma()

cdef extern from "norm_kernels.h" nogil:
    Py_ssize_t nk_prep_f32(float* prod, float* cert, const float* x, const float* c, Py_ssize_t n,
                           float mv, float mc, Py_ssize_t* partial)
    Py_ssize_t nk_prep_f64(double* prod, double* cert, const double* x, const double* c, Py_ssize_t n,
                           double mv, double mc, Py_ssize_t* partial)
    Py_ssize_t nk_finish_f32(float* out, float* cert_out, const float* num, const float* den, const float* x,
                             const float* c, Py_ssize_t n, float zt, float scale, float mcentre, int preserve,
                             float inv_ksum)
    Py_ssize_t nk_finish_f64(double* out, double* cert_out, const double* num, const double* den,
                             const double* x, const double* c, Py_ssize_t n, double zt, double scale,
                             double mcentre, int preserve, double inv_ksum)

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache

ctypedef fused real_t:
    float
    double

#: Edge rules: a fill value (certain or not, as the caller says), periodic,
#: or the edge sample repeated (astropy's 'extend').
EDGE_FILL = 0
EDGE_WRAP = 1
EDGE_EXTEND = 3

cdef inline Py_ssize_t edge_index(Py_ssize_t i, Py_ssize_t n, int edge) noexcept nogil:
    """Index into [0, n) of the extended position i, or -1 for the fill."""
    if 0 <= i < n:
        return i
    if edge == 1:
        i = i % n
        return i + n if i < 0 else i
    if edge == 3:
        return 0 if i < 0 else n - 1
    return -1


cdef inline void row_pass(real_t* o, const real_t* e, const real_t* v, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fs_row_f32(o, e, v, kw, n)
    else:
        fs_row_f64(o, e, v, kw, n)


cdef inline void col_pass(real_t* o, const real_t** r, const real_t* u, Py_ssize_t kh, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fs_col_f32(o, r, u, kh, n, 0)
    else:
        fs_col_f64(o, r, u, kh, n, 0)


cdef inline void prep(real_t* p, real_t* q, const real_t* x, const real_t* c, Py_ssize_t n,
                      real_t mv, real_t mc) noexcept nogil:
    cdef Py_ssize_t partial = 0
    if real_t is float:
        nk_prep_f32(p, q, x, c, n, mv, mc, &partial)
    else:
        nk_prep_f64(p, q, x, c, n, mv, mc, &partial)


cdef inline Py_ssize_t finish(real_t* o, real_t* co, const real_t* num, const real_t* den, const real_t* x,
                              const real_t* c, Py_ssize_t n, real_t zt, real_t scale, real_t mcentre,
                              int preserve, real_t inv_ksum) noexcept nogil:
    if real_t is float:
        return nk_finish_f32(o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum)
    else:
        return nk_finish_f64(o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum)


cdef inline void prep_row(real_t* ep, real_t* ec, const real_t* x, const real_t* c, Py_ssize_t r,
                          Py_ssize_t W, Py_ssize_t off1, Py_ssize_t next_, Py_ssize_t lo, Py_ssize_t hi, int edge,
                          real_t fill_p, real_t fill_c, real_t mv, real_t mc) noexcept nogil:
    """The two inputs (c * x and c) of extended row r, columns off1 ... off1 + next_ - 1."""
    cdef Py_ssize_t t, col
    cdef const real_t* crow
    if r < 0:
        for t in range(next_):
            ep[t] = fill_p
            ec[t] = fill_c
        return
    crow = NULL if c == NULL else c + r * W
    if hi > lo:
        prep(ep + lo, ec + lo, x + r * W + off1 + lo, NULL if crow == NULL else crow + off1 + lo, hi - lo, mv, mc)
    for t in range(next_ - (hi - lo)):  # the columns outside: [0, lo) and [hi, next_)
        if t >= lo:
            t = t + hi - lo
        col = edge_index(off1 + t, W, edge)
        if col < 0:
            ep[t] = fill_p
            ec[t] = fill_c
        else:
            prep(ep + t, ec + t, x + r * W + col, NULL if crow == NULL else crow + col, 1, mv, mc)


cdef Py_ssize_t fused(const real_t* x, const real_t* c, Py_ssize_t H, Py_ssize_t W,
                      const real_t* u, Py_ssize_t kh, const real_t* v, Py_ssize_t kw,
                      real_t* out, real_t* cert_out, Py_ssize_t Ho, Py_ssize_t Wo,
                      Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t cy, Py_ssize_t cx, int edge,
                      real_t fill_p, real_t fill_c, real_t mv, real_t mc,
                      real_t zt, real_t scale, real_t mcentre, int preserve, real_t inv_ksum,
                      Py_ssize_t chunk, int num_threads) noexcept nogil:
    """Output rows [0, Ho) x columns [0, Wo): output (m, n) reads the
    extended input rows off0 + m ... + kh - 1 and columns off1 + n ...
    + kw - 1, and is the pixel (cy + m, cx + n) of ``out`` / ``cert_out``
    (row stride W) and of ``x`` / ``c``.

    Each task takes ``chunk`` consecutive output rows and keeps the last kh
    horizontal passes of each input in a ring of rows, so that every input
    row it reads is prepared and passed once (plus kh - 1 rows where its
    chunk starts). Returns the number of NaN results, or -1 when a buffer
    could not be allocated.
    """
    cdef Py_ssize_t ntasks = (Ho + chunk - 1) // chunk
    cdef Py_ssize_t next_ = Wo + kw - 1
    cdef Py_ssize_t b, m0, m1, i, m, j, lo, hi, slot
    cdef real_t* Tp
    cdef real_t* Tc
    cdef real_t* ep
    cdef real_t* ec
    cdef real_t* nr
    cdef real_t* dr
    cdef const real_t** rp
    cdef Py_ssize_t* nans = <Py_ssize_t*> malloc(max(ntasks, 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t total = 0
    cdef int failed[1]
    if nans == NULL:
        return -1
    failed[0] = 0
    # Columns of the extended rows that lie inside the image: [lo, hi).
    lo = min(max(-off1, 0), next_)
    hi = min(max(W - off1, lo), next_)

    Tp = Tc = ep = ec = nr = dr = NULL
    rp = NULL
    with parallel(num_threads=num_threads):
        Tp = <real_t*> malloc(2 * kh * Wo * sizeof(real_t))
        Tc = Tp + kh * Wo
        ep = <real_t*> malloc((2 * next_ + 2 * Wo) * sizeof(real_t))
        ec = ep + next_
        nr = ec + next_
        dr = nr + Wo
        rp = <const real_t**> malloc(kh * sizeof(real_t*))
        if Tp == NULL or ep == NULL or rp == NULL:
            failed[0] = 1
        else:
            for b in prange(ntasks, schedule='dynamic'):
                m0 = b * chunk
                m1 = min(Ho, m0 + chunk)
                # input rows off0 + m0 + i go to ring slot i % kh
                for i in range(kh - 1):
                    prep_row(ep, ec, x, c, edge_index(off0 + m0 + i, H, edge), W, off1, next_, lo, hi, edge,
                             fill_p, fill_c, mv, mc)
                    row_pass(Tp + i * Wo, ep, v, kw, Wo)
                    row_pass(Tc + i * Wo, ec, v, kw, Wo)
                nans[b] = 0
                for m in range(m0, m1):
                    i = m - m0 + kh - 1
                    slot = i % kh
                    prep_row(ep, ec, x, c, edge_index(off0 + m0 + i, H, edge), W, off1, next_, lo, hi, edge,
                             fill_p, fill_c, mv, mc)
                    row_pass(Tp + slot * Wo, ep, v, kw, Wo)
                    row_pass(Tc + slot * Wo, ec, v, kw, Wo)
                    for j in range(kh):
                        rp[j] = Tp + ((m - m0 + j) % kh) * Wo
                    col_pass(nr, rp, u, kh, Wo)
                    for j in range(kh):
                        rp[j] = Tc + ((m - m0 + j) % kh) * Wo
                    col_pass(dr, rp, u, kh, Wo)
                    nans[b] += finish(out + (cy + m) * W + cx,
                                      NULL if cert_out == NULL else cert_out + (cy + m) * W + cx,
                                      nr, dr, x + (cy + m) * W + cx, NULL if c == NULL else c + (cy + m) * W + cx,
                                      Wo, zt, scale, mcentre, preserve, inv_ksum)
        free(Tp)
        free(ep)
        free(rp)
    if not failed[0]:
        for b in range(ntasks):
            total += nans[b]
    free(nans)
    return -1 if failed[0] else total


cdef int _check(cnp.ndarray a, cnp.ndarray like, bint writeable, str name) except -1:
    if (cnp.PyArray_NDIM(a) != 2 or a.shape[0] != like.shape[0] or a.shape[1] != like.shape[1]
            or cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(like) or not cnp.PyArray_ISCARRAY_RO(a)
            or not cnp.PyArray_ISNOTSWAPPED(a) or (writeable and not cnp.PyArray_ISWRITEABLE(a))):
        raise ValueError(f"{name} must be a C-contiguous array shaped and typed like x")
    return 0


def normalized_rank1(cnp.ndarray x, c, cnp.ndarray u, cnp.ndarray v, cnp.ndarray out, cert_out, shape, offsets,
                     centre, int edge, double fill_p, double fill_c, double miss_value, double miss_cert,
                     double zero_tol, double scale, double miss_centre, bint preserve_nan, double inv_ksum,
                     int num_threads):
    """Normalized convolution with the rank-1 kernel ``outer(u, v)`` (already
    flipped: this is an offset correlation), fused.

    Parameters
    ----------
    x, c : ndarray
        Data and certainty (None: 1 everywhere), 2-D, C-contiguous float32 or
        float64, of one dtype and shape (H, W).
    u, v : ndarray
        The kernel's column and row factors, 1-D, in x's dtype.
    out, cert_out : ndarray
        Arrays shaped like x receiving the result and (unless None) the
        output certainty in ``centre[0]:centre[0] + shape[0]``,
        ``centre[1]:centre[1] + shape[1]``.
    shape, offsets, centre : pairs of int
        Output (m, n) correlates the extended input from ``(offsets[0] + m,
        offsets[1] + n)`` and is the pixel ``(centre[0] + m, centre[1] + n)``.
    edge : int
        ``EDGE_FILL`` (outside: value ``fill_p`` in the numerator's input,
        ``fill_c`` in the certainty), ``EDGE_WRAP`` or ``EDGE_EXTEND``.
    miss_value, miss_cert : float
        A missing pixel's value and certainty (0, 0 to interpolate it).
    zero_tol, scale, miss_centre, preserve_nan, inv_ksum : float
        As ``fastcorr._engine.pointwise.finish``.
    num_threads : int

    Returns
    -------
    int
        The number of NaN results.
    """
    cdef Py_ssize_t H = x.shape[0], W = x.shape[1]
    cdef Py_ssize_t Ho = shape[0], Wo = shape[1], kh, kw, chunk, nans
    cdef Py_ssize_t off0 = offsets[0], off1 = offsets[1], cy = centre[0], cx = centre[1]
    cdef int typenum = cnp.PyArray_TYPE(x)
    if typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE:
        raise TypeError("the fused normalized method takes float32 or float64")
    _check(x, x, False, "x")
    if c is not None:
        _check(c, x, False, "c")
    _check(out, x, True, "out")
    if cert_out is not None:
        _check(cert_out, x, True, "cert_out")
    for f in (u, v):
        if cnp.PyArray_NDIM(f) != 1 or cnp.PyArray_TYPE(f) != typenum or not cnp.PyArray_ISCARRAY_RO(f):
            raise ValueError("u and v must be 1-D contiguous arrays of x's dtype")
    kh, kw = u.shape[0], v.shape[0]
    if not (0 <= cy and cy + Ho <= H and 0 <= cx and cx + Wo <= W) or kh < 1 or kw < 1 or H < 1 or W < 1:
        raise ValueError("the output region must lie inside x, and the kernel be non-empty")
    if edge not in (0, 1, 3):
        raise ValueError(f"unknown edge rule {edge}")
    if Ho == 0 or Wo == 0:
        return 0
    num_threads = max(1, num_threads)
    # Rows per task: about two tasks per thread (the late one balances the
    # load), but at least 4 kh so that restarting the ring (kh - 1 extra
    # rows) costs little; never more than one thread's share.
    chunk = max((Ho + 2 * num_threads - 1) // (2 * num_threads), 4 * kh, 8)
    chunk = min(chunk, max(1, (Ho + num_threads - 1) // num_threads))
    cdef void* cp = NULL if c is None else cnp.PyArray_DATA(c)
    cdef void* co = NULL if cert_out is None else cnp.PyArray_DATA(cert_out)
    if typenum == cnp.NPY_DOUBLE:
        with nogil:
            nans = fused(<const double*> cnp.PyArray_DATA(x), <const double*> cp, H, W,
                         <const double*> cnp.PyArray_DATA(u), kh, <const double*> cnp.PyArray_DATA(v), kw,
                         <double*> cnp.PyArray_DATA(out), <double*> co, Ho, Wo, off0, off1, cy, cx, edge,
                         fill_p, fill_c, miss_value, miss_cert, zero_tol, scale, miss_centre, preserve_nan,
                         inv_ksum, chunk, num_threads)
    else:
        with nogil:
            nans = fused(<const float*> cnp.PyArray_DATA(x), <const float*> cp, H, W,
                         <const float*> cnp.PyArray_DATA(u), kh, <const float*> cnp.PyArray_DATA(v), kw,
                         <float*> cnp.PyArray_DATA(out), <float*> co, Ho, Wo, off0, off1, cy, cx, edge,
                         <float> fill_p, <float> fill_c, <float> miss_value, <float> miss_cert, <float> zero_tol,
                         <float> scale, <float> miss_centre, preserve_nan, <float> inv_ksum, chunk, num_threads)
    if nans < 0:
        raise MemoryError("fastcorr normalized: could not allocate its row buffers")
    return nans
