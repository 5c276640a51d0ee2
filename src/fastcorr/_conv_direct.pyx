# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct multi-channel conv2d: one OpenMP loop over batch x output channels x rows.

Each work item is one output row of one output channel of one image; it
accumulates, tap by tap, a scaled input row into the output row (which stays
in L1), reading the input through the same index tables as im2col
(``_conv.index_table``): padding and padding modes cost nothing in the
interior. It suits layers whose GEMM would be thin: depthwise and few-channel
convolutions, where im2col's copy outweighs its matrix product.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free

cdef extern from "_simd_kernels.h" nogil:
    void fc_rows_f32(float* acc, const float* const* rows, const float* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows_f64(double* acc, const double* const* rows, const double* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)

ctypedef fused real_t:
    float
    double


cdef inline void rows_kernel(real_t* acc, const real_t** rows, const real_t** w,
                             Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_rows_f32(acc, rows, w, nrows, kw, n)
    else:
        fc_rows_f64(acc, rows, w, nrows, kw, n)


cdef inline void add_mapped(real_t* acc, const real_t* row, real_t wv, const Py_ssize_t* ci,
                            Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """acc[ox] += wv * row[ci[ox]] for start <= ox < stop, skipping zero-padding (-1)."""
    cdef Py_ssize_t ox
    for ox in range(start, stop):
        if ci[ox] >= 0:
            acc[ox] += wv * row[ci[ox]]


cdef void conv_row_blocked(const real_t* x, const real_t* w, real_t* acc, real_t b,
                           Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                           Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t oy,
                           const Py_ssize_t* ridx, const Py_ssize_t* cidx, const Py_ssize_t* crange,
                           const real_t** rows, const real_t** wrows) noexcept nogil:
    """conv_row for unit column stride and dilation: the columns where every
    tap is inside the image go through the register-blocked SIMD rows kernel
    (all C x kh input rows at once, FMA chains kept in registers); the few
    edge columns through the index tables."""
    cdef Py_ssize_t c, j, k, ox, r, lo = 0, hi = Wo, nr = 0
    cdef const real_t* row
    cdef const Py_ssize_t* ci
    cdef real_t wv
    for k in range(kw):
        lo = max(lo, crange[k])
        hi = min(hi, crange[kw + k])
    hi = max(hi, lo)
    for ox in range(Wo):
        acc[ox] = b
    for c in range(C):
        for j in range(kh):
            r = ridx[j * Ho + oy]
            if r < 0:
                continue
            row = x + (c * H + r) * W
            if hi > lo:
                rows[nr] = row + crange[2 * kw] + lo
                wrows[nr] = w + (c * kh + j) * kw
                nr = nr + 1
            for k in range(kw):
                wv = w[(c * kh + j) * kw + k]
                ci = cidx + k * Wo
                add_mapped(acc, row, wv, ci, 0, lo)
                add_mapped(acc, row, wv, ci, hi, Wo)
    if nr > 0:
        rows_kernel(acc + lo, rows, wrows, nr, kw, hi - lo)


cdef void conv_row(const real_t* x, const real_t* w, real_t* acc, real_t b,
                   Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                   Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t oy,
                   const Py_ssize_t* ridx, const Py_ssize_t* cidx, const Py_ssize_t* crange) noexcept nogil:
    """acc[ox] = b + sum_{c, j, k} w[c, j, k] * X(c, oy, ox; j, k)."""
    cdef Py_ssize_t c, j, k, ox, r, lo, hi, base
    cdef const real_t* row
    cdef const Py_ssize_t* ci
    cdef real_t wv
    for ox in range(Wo):
        acc[ox] = b
    for c in range(C):
        for j in range(kh):
            r = ridx[j * Ho + oy]
            if r < 0:
                continue
            row = x + (c * H + r) * W
            for k in range(kw):
                wv = w[(c * kh + j) * kw + k]
                lo = crange[k]
                hi = crange[kw + k]
                base = crange[2 * kw + k]
                ci = cidx + k * Wo
                add_mapped(acc, row, wv, ci, 0, lo)
                if sw == 1:
                    for ox in range(lo, hi):
                        acc[ox] += wv * row[ox + base]
                else:
                    for ox in range(lo, hi):
                        acc[ox] += wv * row[ox * sw + base]
                add_mapped(acc, row, wv, ci, hi, Wo)


def forward(const real_t[:, ::1] x, const real_t[:, ::1] w, real_t[:, ::1] out,
            const real_t[::1] bias, Py_ssize_t groups, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
            const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
            const Py_ssize_t[:, ::1] crange, int nthreads, bint unit_columns=False):
    """out (N, Cout*Ho*Wo) = grouped conv of x (N, groups*C*H*W) with w (Cout, C*kh*kw).

    ``unit_columns``: column stride and dilation are 1, so the SIMD rows
    kernel serves the interior columns.
    """
    cdef Py_ssize_t N = x.shape[0], Cout = w.shape[0], Cog = Cout // groups
    cdef Py_ssize_t items = N * Cout * Ho, it, n, co, oy, gi
    cdef bint has_bias = bias.shape[0] > 0
    cdef real_t b
    cdef const real_t** rows
    cdef int failed[1]
    failed[0] = 0
    with nogil, parallel(num_threads=nthreads):
        rows = <const real_t**> malloc(2 * max(C * kh, 1) * sizeof(real_t*))
        if rows == NULL:
            failed[0] = 1
        else:
            for it in prange(items, schedule='static'):
                n = it // (Cout * Ho)
                co = (it // Ho) % Cout
                oy = it % Ho
                gi = co // Cog
                b = bias[co] if has_bias else 0
                if unit_columns:
                    conv_row_blocked(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy) * Wo, b,
                                     C, H, W, kh, kw, Ho, Wo, oy, &ridx[0, 0], &cidx[0, 0], &crange[0, 0],
                                     rows, rows + max(C * kh, 1))
                else:
                    conv_row(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy) * Wo, b,
                             C, H, W, kh, kw, sw, Ho, Wo, oy, &ridx[0, 0], &cidx[0, 0], &crange[0, 0])
            free(rows)
    if failed[0]:
        raise MemoryError("fastcorr conv2d direct: could not allocate a row-pointer buffer")
