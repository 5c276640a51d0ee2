# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct N-D correlation of a padded array ('valid' along every axis).

For an N-D input P (C-contiguous, already extended beyond its edges by the
caller) and a kernel w of the same ndim, output row ``(o, h)`` (``o`` a flat
index over the leading output axes, ``h`` over the second-last one) is

    out[o, h, n] = sum_{c, j, k} w[c, j, k] * P[obase[o] + choff[c] + (h + j) * ldp + n + k]

with ``c`` a flat index over the kernel's leading axes (its "channels",
whose offsets into P are ``choff``), ``j`` over its second-last and ``k``
over its last axis. Three output rows at a time go through the register-
blocked kernel of simd_kernels.h (the kernel's leading axes as its input
channels); OpenMP threads share the row groups.
"""
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "simd_kernels.h" nogil:
    void fc_rows_f32(float* acc, const float* const* rows, const float* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows_f64(double* acc, const double* const* rows, const double* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows3_f32(float* const* acc, const float* const* inp, const float* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const float* init,
                      const float** scratch)
    void fc_rows3_f64(double* const* acc, const double* const* inp, const double* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const double* init,
                      const double** scratch)
    enum: FC_MR_ROWS

ctypedef fused real_t:
    float
    double


cdef void run_item(const real_t* P, Py_ssize_t ldp, const Py_ssize_t* obase, const Py_ssize_t* choff,
                   Py_ssize_t nch, const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                   real_t* out, Py_ssize_t H, Py_ssize_t Wo, Py_ssize_t groups, Py_ssize_t item,
                   void** work, const real_t* zeros) noexcept nogil:
    cdef Py_ssize_t o = item // groups, h0 = (item % groups) * FC_MR_ROWS
    cdef Py_ssize_t rows_here = min(<Py_ssize_t> FC_MR_ROWS, H - h0), a, c, j, per = kh + FC_MR_ROWS - 1
    cdef const real_t* base = P + obase[o] + h0 * ldp
    cdef real_t* orow = out + (o * H + h0) * Wo
    cdef const real_t** inp = <const real_t**> work
    cdef const real_t** scratch = inp + nch * per
    cdef real_t** accs = <real_t**> (scratch + 2 * nch * kh)
    cdef const real_t** rows = <const real_t**> (accs + FC_MR_ROWS)
    cdef const real_t** wrows = rows + nch * kh
    if rows_here == FC_MR_ROWS:
        for c in range(nch):
            for j in range(per):
                inp[c * per + j] = base + choff[c] + j * ldp
        for a in range(FC_MR_ROWS):
            accs[a] = orow + a * Wo
        if real_t is float:
            fc_rows3_f32(accs, inp, w, nch, kh, kw, Wo, zeros, scratch)
        else:
            fc_rows3_f64(accs, inp, w, nch, kh, kw, Wo, zeros, scratch)
        return
    for a in range(rows_here):
        memset(orow + a * Wo, 0, Wo * sizeof(real_t))
        for c in range(nch):
            for j in range(kh):
                rows[c * kh + j] = base + choff[c] + (a + j) * ldp
                wrows[c * kh + j] = w + (c * kh + j) * kw
        if real_t is float:
            fc_rows_f32(orow + a * Wo, rows, wrows, nch * kh, kw, Wo)
        else:
            fc_rows_f64(orow + a * Wo, rows, wrows, nch * kh, kw, Wo)


cdef int valid_rows(const real_t* P, Py_ssize_t ldp, const Py_ssize_t* obase, Py_ssize_t nouter,
                    const Py_ssize_t* choff, Py_ssize_t nch, const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                    real_t* out, Py_ssize_t H, Py_ssize_t Wo, int num_threads) noexcept nogil:
    cdef Py_ssize_t groups = (H + FC_MR_ROWS - 1) // FC_MR_ROWS, item, nitems = nouter * groups
    cdef Py_ssize_t slots = nch * (kh + FC_MR_ROWS - 1) + 2 * nch * kh + FC_MR_ROWS + 2 * nch * kh
    cdef void** work = <void**> malloc(slots * num_threads * sizeof(void*))
    cdef real_t zeros[FC_MR_ROWS]
    if work == NULL:
        return -1
    for item in range(FC_MR_ROWS):
        zeros[item] = 0
    for item in prange(nitems, schedule="dynamic", chunksize=2, num_threads=num_threads, nogil=True):
        run_item(P, ldp, obase, choff, nch, w, kh, kw, out, H, Wo, groups, item,
                 work + threadid() * slots, zeros)
    free(work)
    return 0


def correlate_valid(P, w, out, num_threads):
    """out = the 'valid' correlation of the padded C-contiguous array ``P``
    with ``w`` (same ndim >= 2, same float dtype; ``out`` C-contiguous, of
    shape ``P.shape - w.shape + 1``), on ``num_threads`` threads."""
    cdef Py_ssize_t nd = P.ndim, i
    if w.ndim != nd or out.ndim != nd or nd < 2:
        raise ValueError("P, w and out must have the same ndim >= 2")
    if P.dtype != w.dtype or P.dtype != out.dtype or P.dtype not in (np.float32, np.float64):
        raise ValueError("P, w and out must share a float32 or float64 dtype")
    for i in range(nd):
        if out.shape[i] != P.shape[i] - w.shape[i] + 1 or out.shape[i] <= 0:
            raise ValueError("out must have shape P.shape - w.shape + 1")
    if not (P.flags.c_contiguous and w.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("P, w and out must be C-contiguous")
    pstrides = np.asarray(P.strides, dtype=np.intp) // P.itemsize
    # offsets (in elements) of the leading output positions and kernel taps
    oshape = out.shape[:nd - 2]
    kshape = w.shape[:nd - 2]
    obase = np.zeros(1, dtype=np.intp)
    choff = np.zeros(1, dtype=np.intp)
    for i in range(nd - 2):
        obase = (obase[:, None] + np.arange(oshape[i], dtype=np.intp)[None, :] * pstrides[i]).ravel()
        choff = (choff[:, None] + np.arange(kshape[i], dtype=np.intp)[None, :] * pstrides[i]).ravel()
    obase = np.ascontiguousarray(obase)
    choff = np.ascontiguousarray(choff)
    cdef Py_ssize_t[::1] ob = obase, co = choff
    cdef Py_ssize_t ldp = P.shape[nd - 1], kh = w.shape[nd - 2], kw = w.shape[nd - 1]
    cdef Py_ssize_t H = out.shape[nd - 2], Wo = out.shape[nd - 1], nouter = obase.shape[0], nch = choff.shape[0]
    cdef int nt = max(1, int(num_threads)), rc
    cdef float[::1] pf, wf, of
    cdef double[::1] pd, wd, od
    if P.dtype == np.float32:
        pf = P.reshape(-1); wf = w.reshape(-1); of = out.reshape(-1)
        with nogil:
            rc = valid_rows(&pf[0], ldp, &ob[0], nouter, &co[0], nch, &wf[0], kh, kw, &of[0], H, Wo, nt)
    else:
        pd = P.reshape(-1); wd = w.reshape(-1); od = out.reshape(-1)
        with nogil:
            rc = valid_rows(&pd[0], ldp, &ob[0], nouter, &co[0], nch, &wd[0], kh, kw, &od[0], H, Wo, nt)
    if rc != 0:
        raise MemoryError("direct_nd: could not allocate a thread's row pointers")
    return out
