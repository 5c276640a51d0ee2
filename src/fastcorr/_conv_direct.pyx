# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct multi-channel conv2d: one OpenMP loop over batch x groups of output rows.

Each work item is one group of output rows of one image (three rows at a
time with unit strides and dilations, else one), for every output channel in
turn, so the input rows it reads stay in cache; it accumulates, tap by tap,
scaled input rows into the output rows (which stay in L1), reading the
input through the same index tables as im2col
(``_conv.index_table``): padding and padding modes cost nothing in the
interior. It suits layers whose GEMM would be thin: depthwise and few-channel
convolutions, where im2col's copy outweighs its matrix product.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, calloc, free

cdef extern from "_simd_kernels.h" nogil:
    void fc_rows_f32(float* acc, const float* const* rows, const float* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows_f64(double* acc, const double* const* rows, const double* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows3_f32(float* const* acc, const float* const* inp, const float* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const float** scratch)
    void fc_rows3_f64(double* const* acc, const double* const* inp, const double* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const double** scratch)
    int FC_MR_ROWS

ctypedef fused real_t:
    float
    double


cdef inline void rows_kernel(real_t* acc, const real_t** rows, const real_t** w,
                             Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_rows_f32(acc, rows, w, nrows, kw, n)
    else:
        fc_rows_f64(acc, rows, w, nrows, kw, n)


cdef inline void rows3_kernel(real_t** acc, const real_t** inp, const real_t* w, Py_ssize_t nch,
                              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n,
                              const real_t** scratch) noexcept nogil:
    if real_t is float:
        fc_rows3_f32(acc, inp, w, nch, kh, kw, n, scratch)
    else:
        fc_rows3_f64(acc, inp, w, nch, kh, kw, n, scratch)


cdef inline void interior_columns(const Py_ssize_t* crange, Py_ssize_t kw, Py_ssize_t Wo,
                                  Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """[lo, hi): the output columns whose every tap reads inside the row."""
    cdef Py_ssize_t k
    lo[0] = 0
    hi[0] = Wo
    for k in range(kw):
        lo[0] = max(lo[0], crange[k])
        hi[0] = min(hi[0], crange[kw + k])
    hi[0] = max(hi[0], lo[0])


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
    cdef Py_ssize_t c, j, k, ox, r, lo, hi, nr = 0
    cdef const real_t* row
    cdef const Py_ssize_t* ci
    cdef real_t wv
    interior_columns(crange, kw, Wo, &lo, &hi)
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


cdef void conv_rows3_blocked(const real_t* x, const real_t* w, real_t* acc0, real_t b,
                             Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                             Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t oy0,
                             const Py_ssize_t* ridx, const Py_ssize_t* cidx, const Py_ssize_t* crange,
                             const real_t** inp, real_t** accs, const real_t** scratch,
                             const real_t* zeros) noexcept nogil:
    """FC_MR_ROWS output rows oy0.. at once, for unit strides and dilations in
    both axes: the interior through the three-row SIMD kernel (each input
    vector loaded once for the three rows, every channel summed in
    registers); the edge columns through the index tables."""
    cdef Py_ssize_t a, c, i, j, k, ox, r, lo, hi
    cdef const real_t* row
    cdef real_t* acc
    cdef real_t wv
    interior_columns(crange, kw, Wo, &lo, &hi)
    for a in range(FC_MR_ROWS):
        acc = acc0 + a * Wo
        accs[a] = acc + lo
        for ox in range(Wo):
            acc[ox] = b
    if hi > lo:
        # With unit row stride and dilation, input row i of the group is the
        # one tap j of output row oy0 + a meets when a + j = i. All channels
        # in one call: the sums stay in registers across channels.
        for c in range(C):
            for i in range(kh + FC_MR_ROWS - 1):
                j = i if i < kh else kh - 1
                r = ridx[j * Ho + oy0 + i - j]
                inp[c * (kh + FC_MR_ROWS - 1) + i] = (zeros if r < 0 else x + (c * H + r) * W) + crange[2 * kw] + lo
        rows3_kernel(accs, inp, w, C, kh, kw, hi - lo, scratch)
    if lo == 0 and hi == Wo:
        return
    for c in range(C):
        for a in range(FC_MR_ROWS):
            acc = acc0 + a * Wo
            for j in range(kh):
                r = ridx[j * Ho + oy0 + a]
                if r < 0:
                    continue
                row = x + (c * H + r) * W
                for k in range(kw):
                    wv = w[(c * kh + j) * kw + k]
                    add_mapped(acc, row, wv, cidx + k * Wo, 0, lo)
                    add_mapped(acc, row, wv, cidx + k * Wo, hi, Wo)


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
            const Py_ssize_t[:, ::1] crange, int nthreads, bint unit_columns=False,
            bint unit_rows=False):
    """out (N, Cout*Ho*Wo) = grouped conv of x (N, groups*C*H*W) with w (Cout, C*kh*kw).

    ``unit_columns``: column stride and dilation are 1, so the SIMD rows
    kernel serves the interior columns; with ``unit_rows`` too (row stride
    and dilation 1) output rows go three at a time through the three-row
    kernel.
    """
    cdef Py_ssize_t N = x.shape[0], Cout = w.shape[0], Cog = Cout // groups
    cdef Py_ssize_t group = FC_MR_ROWS if (unit_columns and unit_rows and Ho >= FC_MR_ROWS) else 1
    cdef Py_ssize_t ngroups = (Ho + group - 1) // group
    cdef Py_ssize_t items = N * ngroups, it, n, co, oy, oy0, gi, a, nptr
    cdef bint has_bias = bias.shape[0] > 0
    cdef real_t b
    cdef const real_t** rows
    cdef real_t* zeros = NULL
    cdef int failed[1]
    failed[0] = 0
    if group > 1:
        zeros = <real_t*> calloc(max(W, 1), sizeof(real_t))
        if zeros == NULL:
            raise MemoryError("fastcorr conv2d direct: could not allocate a row buffer")
    # per thread: rows + wrows (C*kh each), then the three-row kernel's input
    # rows (C*(kh+2)), its scratch (2*C*kh) and its accumulator rows (3)
    nptr = 2 * max(C * kh, 1) + C * (kh + FC_MR_ROWS - 1) + 2 * max(C * kh, 1) + FC_MR_ROWS
    with nogil, parallel(num_threads=nthreads):
        rows = <const real_t**> malloc(nptr * sizeof(real_t*))
        if rows == NULL:
            failed[0] = 1
        else:
            # Output channels innermost: the few input rows a row group reads
            # (C x (kh + 2) rows) stay in cache for every output channel,
            # instead of the whole image streaming from memory once per channel.
            for it in prange(items, schedule='static'):
                n = it // ngroups
                oy0 = (it % ngroups) * group
                for co in range(Cout):
                    gi = co // Cog
                    b = bias[co] if has_bias else 0
                    if group > 1 and oy0 + group <= Ho:
                        conv_rows3_blocked(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy0) * Wo, b,
                                           C, H, W, kh, kw, Ho, Wo, oy0, &ridx[0, 0], &cidx[0, 0], &crange[0, 0],
                                           rows + 2 * max(C * kh, 1),
                                           <real_t**> (rows + nptr - FC_MR_ROWS),
                                           rows + 2 * max(C * kh, 1) + C * (kh + FC_MR_ROWS - 1), zeros)
                        continue
                    for a in range(min(group, Ho - oy0)):
                        oy = oy0 + a
                        if unit_columns:
                            conv_row_blocked(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy) * Wo, b,
                                             C, H, W, kh, kw, Ho, Wo, oy, &ridx[0, 0], &cidx[0, 0], &crange[0, 0],
                                             rows, rows + max(C * kh, 1))
                        else:
                            conv_row(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy) * Wo, b,
                                     C, H, W, kh, kw, sw, Ho, Wo, oy, &ridx[0, 0], &cidx[0, 0], &crange[0, 0])
            free(rows)
    free(zeros)
    if failed[0]:
        raise MemoryError("fastcorr conv2d direct: could not allocate a row-pointer buffer")
