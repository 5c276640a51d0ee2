# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct 2-D correlation: OpenMP over output rows, register-blocked SIMD rows.

The kernels compute a *generic offset correlation*

    out[m, n] = sum_{j, k} w[j, k] * X[m + off0 + j, n + off1 + k]

where X is the input extended by a boundary rule.  Every mode of scipy's
correlate2d / convolve2d reduces to one choice of (off0, off1), and
convolution to a flipped kernel; that reduction lives in the engine
(``fastcorr._engine.geometry``).
"""
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, free
from cpython.buffer cimport PyBuffer_FillInfo

from fastcorr.methods.boundary cimport map_index, extend_row, BOUNDARY_FILL, BOUNDARY_WRAP, BOUNDARY_SYMM
from fastcorr.methods.finite cimport finite_values
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "simd_kernels.h" nogil:
    void fc_rows_f32(float* acc, const float* const* rows, const float* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows_f64(double* acc, const double* const* rows, const double* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows_u64(uint64_t* acc, const uint64_t* const* rows, const uint64_t* const* w,
                     Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n)
    void fc_rows3_f32(float* const* acc, const float* const* inp, const float* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const float* init,
                      const float** scratch)
    void fc_rows3_f64(double* const* acc, const double* const* inp, const double* w, Py_ssize_t nch,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const double* init,
                      const double** scratch)
    void fc_scale_f32(float* out, const float* x, float c, Py_ssize_t n)
    void fc_scale_f64(double* out, const double* x, double c, Py_ssize_t n)
    void fc_scale_u64(uint64_t* out, const uint64_t* x, uint64_t c, Py_ssize_t n)
    void fc_set_rows3_kw_special(int on)
    enum: FC_MR_ROWS
    enum: FC_MR_VECS
    int fc_cpu_has_avx2_fma()
    const char* fc_simd_name()
    int FC_OPENMP
    const char* FC_BUILD_SYSTEM
    const char* FC_COMPILER

ctypedef fused real_t:
    float
    double
    uint64_t

# Probe the CPU once at import, before any thread can race on the cache.
fc_cpu_has_avx2_fma()

#: The float kernels' vector width in bytes (AVX2 or SSE2) and the vectors
#: of one column block, for the cost model: a row of n columns costs as many
#: columns as its blocks cover (see ``fastcorr._engine.costmodel._units``).
VECTOR_BYTES = 32 if fc_cpu_has_avx2_fma() else 16
BLOCK_VECTORS = FC_MR_VECS

OPENMP = bool(FC_OPENMP)
SIMD = fc_simd_name().decode()
BUILD_SYSTEM = FC_BUILD_SYSTEM.decode()
COMPILER = FC_COMPILER.decode()


cdef inline void rows_kernel(real_t* acc, const real_t** rows, const real_t** w,
                             Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_rows_f32(acc, rows, w, nrows, kw, n)
    elif real_t is double:
        fc_rows_f64(acc, rows, w, nrows, kw, n)
    else:
        fc_rows_u64(acc, rows, w, nrows, kw, n)


cdef inline void rows3_kernel(real_t** acc, const real_t** inp, const real_t* w,
                              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const real_t* init,
                              const real_t** scratch) noexcept nogil:
    if real_t is float:
        fc_rows3_f32(acc, inp, w, 1, kh, kw, n, init, scratch)
    elif real_t is double:
        fc_rows3_f64(acc, inp, w, 1, kh, kw, n, init, scratch)


cdef inline void edge_strip(real_t* ext, Py_ssize_t stride, const real_t** strip,
                            const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                            Py_ssize_t row0, Py_ssize_t nrows, Py_ssize_t start, Py_ssize_t length,
                            int boundary, real_t fill) noexcept nogil:
    """strip[i] -> input row row0 + i at extended columns start .. start+length-1.

    Rows outside the image (fill boundary) are zeros: their fill is in the
    output rows' starting values, as for the interior.
    """
    cdef Py_ssize_t i, r
    for i in range(nrows):
        r = map_index(row0 + i, H, boundary)
        if r < 0:
            memset(ext + i * stride, 0, length * sizeof(real_t))
        else:
            extend_row(ext + i * stride, x + r * ldx, start, length, 0, 0, W, boundary, fill)
        strip[i] = ext + i * stride


cdef inline void point_rows(real_t** accs, real_t* row0, Py_ssize_t ldo, Py_ssize_t col) noexcept nogil:
    """accs[a] -> output row a (from ``row0``) at column ``col``, for a three-row group."""
    cdef Py_ssize_t a
    for a in range(FC_MR_ROWS):
        accs[a] = row0 + a * ldo + col


cdef inline void extend_rows(real_t* ext, Py_ssize_t stride, const real_t** rows,
                             const real_t** bases, Py_ssize_t nr, Py_ssize_t start, Py_ssize_t length,
                             Py_ssize_t W, int boundary, real_t fill) noexcept nogil:
    """rows[i] -> a copy of input row i at extended columns start .. start+length-1."""
    cdef Py_ssize_t i
    for i in range(nr):
        extend_row(ext + i * stride, bases[i], start, length, 0, 0, W, boundary, fill)
        rows[i] = ext + i * stride


cdef inline Py_ssize_t start_row(const real_t* x, Py_ssize_t H, Py_ssize_t ldx,
                                 const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                                 real_t* acc, Py_ssize_t Wo, Py_ssize_t row0, int boundary,
                                 real_t fill, const real_t* row_sums,
                                 const real_t** bases, const real_t** wrows,
                                 bint write_row, real_t* start) noexcept nogil:
    """The fill's contribution to one output row (``start[0]``, and the whole
    row when ``write_row``; else a kernel starting from it writes the row);
    list the image rows it reads.

    Returns how many kernel rows fall inside the image (after the boundary
    rule); ``bases``/``wrows`` receive those input rows and kernel rows.
    """
    cdef Py_ssize_t j, r, n, nr = 0
    cdef real_t fill_const = 0
    for j in range(kh):
        r = map_index(row0 + j, H, boundary)
        if r < 0:
            if row_sums != NULL:
                fill_const = fill_const + fill * row_sums[j]
        else:
            bases[nr] = x + r * ldx
            wrows[nr] = w + j * kw
            nr = nr + 1
    start[0] = fill_const
    if not write_row:
        return nr
    if fill_const == 0:
        memset(acc, 0, Wo * sizeof(real_t))
    else:
        for n in range(Wo):
            acc[n] = fill_const
    return nr


#: Extended images of at most this many elements are copied whole, boundary
#: rule applied, before the correlation: on small images the per-row edge
#: work (boundary lookups, narrow blocks) costs more than one small copy.
cdef enum:
    PAD_SMALL_LIMIT = 1 << 16

#: The same limit, for the cost model in ``_dispatch``.
PAD_SMALL_ELEMENTS = PAD_SMALL_LIMIT


cdef int pad_and_correlate(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                           const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                           real_t* out, Py_ssize_t m_lo, Py_ssize_t m_hi, Py_ssize_t Wo,
                           Py_ssize_t ldo, Py_ssize_t off0, Py_ssize_t off1, int boundary,
                           real_t fill, bint finite_kernel) noexcept nogil:
    """Output rows ``m_lo .. m_hi-1`` of the offset correlation, on one thread,
    from a copy of the extended rows they read (boundary rule applied).

    With a fill boundary and a finite kernel only the image's rows are
    copied (extended by columns); the rows above and below stay outside,
    where the kernel leaves them out (``corr_group``'s ``skip_outside``).
    """
    cdef Py_ssize_t EW = Wo + kw - 1, rows = m_hi - m_lo, nrows = rows + kh - 1
    cdef Py_ssize_t i, t, r, t_lo, t_hi, first = off0 + m_lo, image_first
    cdef real_t* dst
    cdef int status
    if rows <= 0:
        return 0
    if boundary == BOUNDARY_FILL and finite_kernel:
        # image rows max(0, first) .. min(H, first + nrows) - 1 (a kernel with
        # inf or NaN keeps the fill rows: their products are not zeros)
        image_first = max(0, first)
        nrows = min(H, first + nrows) - image_first
        if nrows <= 0:
            nrows = rows + kh - 1  # no image row: copy the fill rows as they are
        else:
            first = image_first
    cdef real_t* ext = <real_t*> malloc(nrows * EW * sizeof(real_t))
    if ext == NULL:
        return -1
    t_lo = min(max(-off1, 0), EW)
    t_hi = max(min(EW, W - off1), t_lo)
    for i in range(nrows):
        dst = ext + i * EW
        r = map_index(first + i, H, boundary)
        if r < 0:
            for t in range(EW):
                dst[t] = fill
            continue
        extend_row(dst, x + r * ldx, off1, EW, t_lo, t_hi, W, boundary, fill)
    # output row m_lo + m reads image row off0 + m_lo + m + j = ext row m + j + (off0 + m_lo - first)
    status = corr2d_impl(ext, nrows, EW, EW, w, kh, kw, out + m_lo * ldo, rows, Wo, ldo,
                         off0 + m_lo - first, 0, BOUNDARY_FILL, fill, 1, False, finite_kernel)
    free(ext)
    return status


cdef int corr2d_padded(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                       const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                       real_t* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                       int num_threads, bint finite_kernel) noexcept nogil:
    """corr2d on copies of exactly the extended region the output reads.

    Each thread copies the rows its own output rows read (bands of whole
    three-row groups) and correlates them: a copy made by one thread and
    read by another cost a 64² float32 'same' call with a 21x21 kernel
    ~15 us of its ~48 at 2 threads (the lines move between the cores'
    caches), more than the few halo rows copied twice.
    """
    cdef Py_ssize_t ngroups = (Ho + FC_MR_ROWS - 1) // FC_MR_ROWS, tid, g_lo, g_hi
    cdef int failed[1]
    failed[0] = 0
    if num_threads <= 1 or ngroups < 2:
        return pad_and_correlate(x, H, W, ldx, w, kh, kw, out, 0, Ho, Wo, ldo, off0, off1,
                                 boundary, fill, finite_kernel)
    num_threads = <int> min(<Py_ssize_t> num_threads, ngroups)
    with parallel(num_threads=num_threads):
        tid = threadid()
        g_lo = tid * ngroups // num_threads
        g_hi = (tid + 1) * ngroups // num_threads
        if pad_and_correlate(x, H, W, ldx, w, kh, kw, out, min(g_lo * FC_MR_ROWS, Ho),
                             min(g_hi * FC_MR_ROWS, Ho), Wo, ldo, off0, off1, boundary,
                             fill, finite_kernel) != 0:
            failed[0] = 1
    return -1 if failed[0] else 0


cdef inline Py_ssize_t pointer_slots(Py_ssize_t kh) noexcept nogil:
    """Pointers of one thread's work buffer: rows, wrows, bases (kh each), the
    three-row kernel's input rows (kh+2), its scratch (2*kh), its accumulator
    rows (3)."""
    return 3 * max(kh, 1) + (kh + FC_MR_ROWS - 1) + 2 * max(kh, 1) + FC_MR_ROWS


cdef inline void* thread_buffers(Py_ssize_t kh, Py_ssize_t edge, size_t itemsize) noexcept nogil:
    """One thread's work buffer (NULL if out of memory): the pointer slots,
    then the edge buffer (kh + 2 rows of ``edge``), then the three rows'
    starting values, of ``itemsize`` bytes each."""
    return malloc(pointer_slots(kh) * sizeof(void*)
                  + ((kh + FC_MR_ROWS - 1) * max(edge, 1) + FC_MR_ROWS) * itemsize)


#: Whether the edge columns of whole three-row groups are computed
#: afterwards, in one pass over fixed chunks of rows (``edge_chunk``); else
#: each group copies an edge strip per side (the earlier path). Set by
#: :func:`_set_edge_pass` (A/B measurements).
cdef bint _edge_pass = True

cdef enum:
    # output rows of one chunk of the edge pass (fixed, from row 0, so that
    # every output is summed the same way whatever the thread count)
    EDGE_CHUNK = 64
    # widest edge (columns a side) the edge pass takes: wider edges are a
    # large share of the output, which the three-row kernel on strips
    # computes faster than the one-row kernel on the transpose (1 thread,
    # 300² float32 63x63 'full', 62 columns a side: 15.1 ms against 14.1;
    # 512² float32 21x21 'full', 20 a side: 3.8 against 4.1)
    EDGE_PASS_MAX_COLS = 24


def _set_kw_special(bint on):
    """Turn the unrolled 3- and 5-wide blocks on or off (A/B measurements)."""
    fc_set_rows3_kw_special(on)


def _set_edge_pass(bint on):
    """Turn the edge pass on or off (for A/B measurements)."""
    global _edge_pass
    _edge_pass = on


cdef inline size_t edge_work_items(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ncols) noexcept nogil:
    """Values of one thread's edge-pass buffer: a transposed strip of
    ``ncols + kw - 1`` columns by EDGE_CHUNK + kh - 1 rows, and one chunk's
    sums; then as many column indices and kw row pointers follow."""
    return (ncols + kw - 1) * (EDGE_CHUNK + kh - 1) + EDGE_CHUNK


cdef inline size_t edge_index_offset(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ncols, size_t itemsize) noexcept nogil:
    """Bytes from an edge-pass buffer's start to its column indices (8-aligned)."""
    return (edge_work_items(kh, kw, ncols) * itemsize + 7) & ~(<size_t> 7)


cdef void* edge_buffer(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ncols, size_t itemsize) noexcept nogil:
    return malloc(edge_index_offset(kh, kw, ncols, itemsize)
                  + (ncols + kw - 1) * sizeof(Py_ssize_t) + max(kw, 1) * sizeof(void*))


cdef void edge_chunk(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                     const real_t** wcols, Py_ssize_t kh, Py_ssize_t kw,
                     real_t* out, Py_ssize_t ldo, Py_ssize_t m0, Py_ssize_t m1,
                     Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t n0, Py_ssize_t n1,
                     int boundary, real_t fill, void* buf) noexcept nogil:
    """Output columns ``n0 .. n1-1`` of output rows ``m0 .. m1-1``, computed
    on the transpose: the extended input they read (boundary rule applied
    to rows and columns, every tap's product computed) is copied as a strip
    of ``n1 - n0 + kw - 1`` rows of ``m1 - m0 + kh - 1`` values, and each
    output column is then one long row of the one-row kernel, with the
    kernel's columns (``wcols``: kw rows of kh values) as its rows.
    ``buf``: one thread's ``edge_buffer``."""
    cdef Py_ssize_t n = m1 - m0, L = n + kh - 1, C = n1 - n0 + kw - 1, i, c, r, t, k
    cdef real_t* strip = <real_t*> buf
    cdef real_t* acc = strip + C * L
    cdef Py_ssize_t* cidx = <Py_ssize_t*> (<char*> buf + edge_index_offset(kh, kw, n1 - n0, sizeof(real_t)))
    cdef const real_t** rows = <const real_t**> (cidx + C)
    cdef const real_t* xr
    cdef real_t* o
    if n <= 0 or n1 <= n0:
        return
    for c in range(C):
        cidx[c] = map_index(off1 + n0 + c, W, boundary)
    for i in range(L):
        r = map_index(m0 + off0 + i, H, boundary)
        if r < 0:
            for c in range(C):
                strip[c * L + i] = fill
        else:
            xr = x + r * ldx
            for c in range(C):
                strip[c * L + i] = fill if cidx[c] < 0 else xr[cidx[c]]
    for t in range(n1 - n0):
        memset(acc, 0, n * sizeof(real_t))
        for k in range(kw):
            rows[k] = strip + (t + k) * L
        rows_kernel(acc, rows, wcols, kw, kh, n)
        o = out + m0 * ldo + n0 + t
        for i in range(n):
            o[i * ldo] = acc[i]


cdef void edge_chunks(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                      const real_t** wcols, Py_ssize_t kh, Py_ssize_t kw,
                      real_t* out, Py_ssize_t rows, Py_ssize_t Wo, Py_ssize_t ldo,
                      Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t n_lo, Py_ssize_t n_hi,
                      int boundary, real_t fill, Py_ssize_t chunk, void* buf) noexcept nogil:
    """Both edges (columns < n_lo and >= n_hi) of chunk ``chunk`` of the
    first ``rows`` output rows."""
    cdef Py_ssize_t m0 = chunk * EDGE_CHUNK, m1 = min(m0 + EDGE_CHUNK, rows)
    if n_lo > 0:
        edge_chunk(x, H, W, ldx, wcols, kh, kw, out, ldo, m0, m1, off0, off1, 0, n_lo,
                   boundary, fill, buf)
    if Wo > n_hi:
        edge_chunk(x, H, W, ldx, wcols, kh, kw, out, ldo, m0, m1, off0, off1, n_hi, Wo,
                   boundary, fill, buf)


cdef void corr_group(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                     const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                     real_t* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                     Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                     const real_t* row_sums, const real_t* zeros, bint grouped,
                     Py_ssize_t n_lo, Py_ssize_t n_hi, Py_ssize_t edge, Py_ssize_t g,
                     void* work, bint skip_outside, bint edges_later) noexcept nogil:
    """Output rows of group ``g`` (three rows when ``grouped``, else one),
    with one thread's ``work`` buffer (see ``thread_buffers``).
    ``edges_later``: a whole group leaves its edge columns to the edge pass
    (``edge_chunks``).

    ``skip_outside`` (fill boundary, finite kernel): a whole group leaves
    out the kernel rows that read only rows outside the image (zeros, their
    fill being in the starting values), as single rows always do.
    """
    cdef Py_ssize_t nptr = pointer_slots(kh), group = FC_MR_ROWS if grouped else 1
    cdef const real_t** rows = <const real_t**> work
    cdef const real_t** wrows = rows + max(kh, 1)
    cdef const real_t** bases = wrows + max(kh, 1)
    cdef const real_t** inp = bases + max(kh, 1)
    cdef const real_t** scratch = inp + (kh + FC_MR_ROWS - 1)
    cdef real_t** accs = <real_t**> (rows + nptr - FC_MR_ROWS)
    cdef real_t* ext = <real_t*> (rows + nptr)
    cdef real_t* starts = ext + (kh + FC_MR_ROWS - 1) * max(edge, 1)
    cdef Py_ssize_t rows_here = min(group, Ho - g * group), a, m, nr, i, r
    cdef bint whole = grouped and rows_here == group
    cdef Py_ssize_t j_lo = 0, j_hi = kh, top = g * group + off0
    cdef real_t* acc
    for a in range(rows_here):
        m = g * group + a
        acc = out + m * ldo
        # a whole group is written by the three-row kernel, from
        # each row's fill contribution
        nr = start_row(x, H, ldx, w, kh, kw, acc, Wo, m + off0, boundary, fill,
                       row_sums, bases, wrows, not whole, starts + a)
        if nr == 0 or whole:
            continue
        if n_hi > n_lo:
            for i in range(nr):
                rows[i] = bases[i] + (off1 + n_lo)
            rows_kernel(acc + n_lo, rows, wrows, nr, kw, n_hi - n_lo)
        if n_lo > 0:
            extend_rows(ext, edge, rows, bases, nr, off1, n_lo + kw - 1, W, boundary, fill)
            rows_kernel(acc, rows, wrows, nr, kw, n_lo)
        if Wo > n_hi:
            extend_rows(ext, edge, rows, bases, nr, off1 + n_hi, Wo - n_hi + kw - 1, W, boundary, fill)
            rows_kernel(acc + n_hi, rows, wrows, nr, kw, Wo - n_hi)
    if whole:
        for i in range(kh + group - 1):
            r = map_index(top + i, H, boundary)
            inp[i] = (zeros if r < 0 else x + r * ldx) + (off1 + n_lo)
        if skip_outside:
            # kernel row j reads input rows top + j .. top + j + group - 1
            j_lo = max(0, -(top + group - 1))
            j_hi = min(kh, H - top)
            if j_hi <= j_lo:
                j_lo, j_hi = 0, kh
        point_rows(accs, out + g * group * ldo, ldo, n_lo)
        rows3_kernel(accs, inp + j_lo, w + j_lo * kw, j_hi - j_lo, kw, n_hi - n_lo, starts, scratch)
        if edges_later:
            return
        # edge columns: the same kernel on a copy of the strip of
        # extended input they read
        if n_lo > 0:
            edge_strip(ext, edge, inp, x, H, W, ldx, top, kh + group - 1,
                       off1, n_lo + kw - 1, boundary, fill)
            point_rows(accs, out + g * group * ldo, ldo, 0)
            rows3_kernel(accs, inp + j_lo, w + j_lo * kw, j_hi - j_lo, kw, n_lo, starts, scratch)
        if Wo > n_hi:
            edge_strip(ext, edge, inp, x, H, W, ldx, top, kh + group - 1,
                       off1 + n_hi, Wo - n_hi + kw - 1, boundary, fill)
            point_rows(accs, out + g * group * ldo, ldo, n_hi)
            rows3_kernel(accs, inp + j_lo, w + j_lo * kw, j_hi - j_lo, kw, Wo - n_hi, starts, scratch)


cdef int corr2d(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                real_t* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                int num_threads) noexcept nogil:
    return corr2d_impl(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1, boundary, fill,
                       num_threads, True, finite_values(w, kh * kw))


cdef int corr2d_impl(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                     const real_t* w, Py_ssize_t kh, Py_ssize_t kw,
                     real_t* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                     Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                     int num_threads, bint may_pad, bint finite_kernel) noexcept nogil:
    """The offset correlation; small images with edges are padded first
    (``corr2d_padded``) unless ``may_pad`` is false (the padded copy itself).
    ``finite_kernel``: ``w`` holds no inf or NaN (read once, by ``corr2d``)."""
    cdef Py_ssize_t g, j, k, group, ngroups
    cdef Py_ssize_t n_lo, n_hi, edge
    cdef real_t s
    cdef real_t* row_sums = NULL
    cdef real_t* zeros = NULL
    cdef void* work
    cdef void* ebuf = NULL
    cdef real_t* wt = NULL
    cdef const real_t** wcols = NULL
    cdef Py_ssize_t nzeros, nchunks = 0, chunk, ecols, wbytes
    cdef bint grouped, skip_outside, edges_later
    cdef int failed[1]
    failed[0] = 0

    if Ho <= 0 or Wo <= 0:
        return 0
    if num_threads < 1:
        num_threads = 1

    # Output columns whose whole window lies inside the image: served by the
    # SIMD kernels; the others (at most kw - 1 per side) read through the
    # boundary rule.
    n_lo = min(max(-off1, 0), Wo)
    n_hi = min(max(W - kw - off1 + 1, n_lo), Wo)
    # Small images are padded first; so is any image whose kernel holds inf
    # or NaN under a fill boundary: the fill's products must then be
    # computed one by one (scipy's 0 * inf is NaN, 1.5 * inf + (-inf) too),
    # where the unpadded kernels skip the fill rows or sum them per row.
    if (may_pad and (n_lo > 0 or n_hi < Wo or off0 < 0 or off0 + Ho + kh - 1 > H)
            and ((Ho + kh - 1) * (Wo + kw - 1) <= PAD_SMALL_LIMIT
                 or (boundary == BOUNDARY_FILL and not finite_kernel))):
        return corr2d_padded(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1,
                             boundary, fill, num_threads, finite_kernel)

    # Floating point: the interior goes FC_MR_ROWS output rows at a time
    # (each input vector loaded once for three rows); integers row by row.
    grouped = real_t is not uint64_t and n_hi > n_lo and Ho >= FC_MR_ROWS
    group = FC_MR_ROWS if grouped else 1
    # Kernel rows over rows outside the image add zeros times the kernel:
    # left out, unless the kernel holds inf or NaN (0 * inf is NaN, as scipy
    # computes it).
    skip_outside = grouped and boundary == BOUNDARY_FILL and finite_kernel
    ngroups = (Ho + group - 1) // group

    if boundary == BOUNDARY_FILL and fill != 0:
        row_sums = <real_t*> malloc(max(kh, 1) * sizeof(real_t))
        if row_sums == NULL:
            return -1
        for j in range(kh):
            s = 0
            for k in range(kw):
                s = s + w[j * kw + k]
            row_sums[j] = s
    # Whole groups with edge columns: those columns in a pass of their own
    # over chunks of rows (``edge_chunks``), on the kernel's transpose.
    ecols = max(n_lo, Wo - n_hi)
    edges_later = _edge_pass and grouped and 0 < ecols <= EDGE_PASS_MAX_COLS
    if edges_later:
        nchunks = (Ho // FC_MR_ROWS * FC_MR_ROWS + EDGE_CHUNK - 1) // EDGE_CHUNK
        # the column pointers after the transposed taps, on a pointer's
        # alignment (3x3 float32 taps end 4 bytes past one)
        wbytes = (kh * kw * sizeof(real_t) + sizeof(void*) - 1) // sizeof(void*) * sizeof(void*)
        wt = <real_t*> malloc(wbytes + kw * sizeof(void*))
        if wt == NULL:
            free(row_sums)
            return -1
        wcols = <const real_t**> (<char*> wt + wbytes)
        for k in range(kw):
            for j in range(kh):
                wt[k * kh + j] = w[j * kw + k]
            wcols[k] = wt + k * kh
    if grouped:
        # A zero input row stands for rows outside the image (their fill is
        # in the rows' starting value).
        nzeros = max(W, 1)
        zeros = <real_t*> malloc(nzeros * sizeof(real_t))
        if zeros == NULL:
            free(row_sums)
            free(wt)
            return -1
        memset(zeros, 0, nzeros * sizeof(real_t))

    # Edge columns (n < n_lo or n >= n_hi) read through the boundary rule:
    # each thread copies those few extended values of the input rows into a
    # small buffer (a strip of kh + 2 rows for a whole group of three output
    # rows), and the same SIMD kernels run on it.
    edge = max(n_lo, Wo - n_hi) + kw - 1
    if num_threads == 1:
        # No OpenMP region for one thread: starting and ending one costs about
        # a microsecond (a futex call), as much as a 64x64 image's work.
        work = thread_buffers(kh, edge, sizeof(real_t))
        ebuf = edge_buffer(kh, kw, ecols, sizeof(real_t)) if edges_later else NULL
        if work == NULL or (edges_later and ebuf == NULL):
            failed[0] = 1
        else:
            for g in range(ngroups):
                corr_group(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1, boundary, fill,
                           row_sums, zeros, grouped, n_lo, n_hi, edge, g, work, skip_outside, edges_later)
            for chunk in range(nchunks):
                edge_chunks(x, H, W, ldx, wcols, kh, kw, out, Ho // FC_MR_ROWS * FC_MR_ROWS, Wo, ldo,
                            off0, off1, n_lo, n_hi, boundary, fill, chunk, ebuf)
        free(work)
        free(ebuf)
    else:
        with parallel(num_threads=num_threads):
            work = thread_buffers(kh, edge, sizeof(real_t))
            ebuf = edge_buffer(kh, kw, ecols, sizeof(real_t)) if edges_later else NULL
            if work == NULL or (edges_later and ebuf == NULL):
                failed[0] = 1
            else:
                for g in prange(ngroups, schedule='static'):
                    corr_group(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1, boundary, fill,
                               row_sums, zeros, grouped, n_lo, n_hi, edge, g, work, skip_outside,
                               edges_later)
            # (every thread meets both loops: the loop's barrier)
            for chunk in prange(nchunks, schedule='static'):
                if ebuf != NULL and work != NULL:
                    edge_chunks(x, H, W, ldx, wcols, kh, kw, out, Ho // FC_MR_ROWS * FC_MR_ROWS, Wo, ldo,
                                off0, off1, n_lo, n_hi, boundary, fill, chunk, ebuf)
            free(work)
            free(ebuf)
    free(row_sums)
    free(zeros)
    free(wt)
    return -1 if failed[0] else 0


cdef int corr2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                    const float* w, Py_ssize_t kh, Py_ssize_t kw,
                    float* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                    Py_ssize_t off0, Py_ssize_t off1, int boundary, float fill,
                    int num_threads) noexcept nogil:
    return corr2d(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1,
                  boundary, fill, num_threads)


cdef int corr2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                    const double* w, Py_ssize_t kh, Py_ssize_t kw,
                    double* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                    Py_ssize_t off0, Py_ssize_t off1, int boundary, double fill,
                    int num_threads) noexcept nogil:
    return corr2d(x, H, W, ldx, w, kh, kw, out, Ho, Wo, ldo, off0, off1,
                  boundary, fill, num_threads)


def correlate_into(const real_t[:, ::1] x, const real_t[:, ::1] w, real_t[:, ::1] out,
                   Py_ssize_t off0, Py_ssize_t off1, int boundary, real_t fill,
                   int num_threads):
    """Fill ``out`` with the offset correlation of ``x`` and ``w`` (see module doc).

    ``x``, ``w`` and ``out`` share one dtype: float32, float64 or uint64
    (integers, computed modulo 2**64). Arguments are trusted: the engine
    validates them.
    """
    cdef int status
    if x.shape[0] * x.shape[1] == 0 and boundary != BOUNDARY_FILL:
        raise ValueError("wrap/symm boundaries need a non-empty input")
    if w.shape[0] * w.shape[1] == 0 or out.shape[0] * out.shape[1] == 0:
        if out.shape[0] * out.shape[1]:
            out[:, :] = 0
        return
    with nogil:
        status = corr2d(&x[0, 0] if x.shape[0] * x.shape[1] else NULL,
                        x.shape[0], x.shape[1], x.strides[0] // sizeof(real_t),
                        &w[0, 0], w.shape[0], w.shape[1],
                        &out[0, 0], out.shape[0], out.shape[1],
                        out.strides[0] // sizeof(real_t),
                        off0, off1, boundary, fill, num_threads)
    if status != 0:
        raise MemoryError("fastcorr direct: could not allocate a row-pointer buffer")


SERVES_COMPLEX = False
SERVES_INTEGER = True
#: ``correlate`` takes ``out=`` (the engine bands of ``fastcorr._engine.bands``
#: write into the call's output instead of a new array each).
SERVES_OUT = True


#: A 1x1 kernel (every window one sample: the result is ``x * w[0, 0]``)
#: over at most this many values is scaled on one thread: below it the
#: loop ends before a thread team would start (256² float32: ~6 us).
cdef enum:
    SCALE_SERIAL_LIMIT = 1 << 18
    # values of one slab of a threaded scaling (contiguous slabs per thread)
    SCALE_SLAB = 1 << 14

SCALE_BELOW = SCALE_SERIAL_LIMIT

#: Whether 1x1 kernels go through the compiled, threaded scaling
#: (:func:`scale2d`); False: the earlier path (numpy's multiply up to
#: SCALE_BELOW values, the three-row kernel above). For A/B measurements.
SCALE_KERNEL = True


cdef inline void scale_kernel(real_t* out, const real_t* x, real_t c, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_scale_f32(out, x, c, n)
    elif real_t is double:
        fc_scale_f64(out, x, c, n)
    else:
        fc_scale_u64(out, x, c, n)


cdef void scale2d(const real_t* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx, real_t c,
                  real_t* out, Py_ssize_t ldo, int num_threads) noexcept nogil:
    """``out[m, n] = c * x[m, n]`` for an H x W image (row strides ``ldx``,
    ``ldo``): one product per value, as numpy's multiply (and the kernels'
    FMA onto zero) round it; threaded over slabs above SCALE_BELOW values."""
    cdef Py_ssize_t n = H * W, s, nslabs, lo, m
    if n <= 0:
        return
    if n <= SCALE_SERIAL_LIMIT:
        num_threads = 1
    if ldx == W and ldo == W:
        if num_threads <= 1:
            scale_kernel(out, x, c, n)
            return
        nslabs = (n + SCALE_SLAB - 1) // SCALE_SLAB
        for s in prange(nslabs, num_threads=num_threads, schedule='static'):
            lo = s * SCALE_SLAB
            scale_kernel(out + lo, x + lo, c, min(<Py_ssize_t> SCALE_SLAB, n - lo))
        return
    if num_threads <= 1:
        for m in range(H):
            scale_kernel(out + m * ldo, x + m * ldx, c, W)
        return
    for m in prange(H, num_threads=num_threads, schedule='static'):
        scale_kernel(out + m * ldo, x + m * ldx, c, W)


cdef void scale2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx, float c,
                      float* out, Py_ssize_t ldo, int num_threads) noexcept nogil:
    scale2d(x, H, W, ldx, c, out, ldo, num_threads)


cdef void scale2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx, double c,
                      double* out, Py_ssize_t ldo, int num_threads) noexcept nogil:
    scale2d(x, H, W, ldx, c, out, ldo, num_threads)


def scale_into(const real_t[:, ::1] x, real_t c, real_t[:, ::1] out, int num_threads):
    """Fill ``out`` (x's shape and dtype) with ``c * x`` (see :func:`scale2d`)."""
    if x.shape[0] * x.shape[1] == 0:
        return
    with nogil:
        scale2d(&x[0, 0], x.shape[0], x.shape[1], x.strides[0] // sizeof(real_t), c,
                &out[0, 0], out.strides[0] // sizeof(real_t), num_threads)


cdef bint is_scaling(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t Ho, Py_ssize_t Wo) noexcept:
    """Every window is one sample inside the image: the correlation is
    ``x * w[0, 0]`` (whatever the boundary rule)."""
    return kh == 1 and kw == 1 and off0 == 0 and off1 == 0 and Ho == H and Wo == W


cdef bint is_small_scaling(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                           Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t Ho, Py_ssize_t Wo) noexcept:
    """:func:`is_scaling` over at most SCALE_BELOW values."""
    return is_scaling(H, W, kh, kw, off0, off1, Ho, Wo) and H * W <= SCALE_BELOW


#: Fresh outputs of at least this many bytes start on a 2 MiB boundary
#: (numpy asks the system for huge pages from 4 MiB: an unaligned block
#: leaves up to 4 MiB of its ends to 4 KiB pages). 4096² float32 scaled on
#: one thread: 544 page faults and 12.4 ms a call, against 33 and 10.8
#: aligned (5.3 into a reused output).
HUGE_ALIGN_MIN = 4 << 20
HUGE_PAGE = 2 << 20
#: Whether fresh outputs are aligned so (for A/B measurements).
ALIGN_OUTPUT = True


def fresh_output(shape, dtype, pool_min=None):
    """An uninitialised C-contiguous array (``np.empty``), on a 2 MiB boundary
    when large (a view of a slightly larger block it keeps alive); from
    :data:`POOL_MIN_BYTES` (or ``pool_min`` bytes) on, a block of the
    recycled outputs (see :class:`_OutputBlock`)."""
    dtype = np.dtype(dtype)
    cdef Py_ssize_t nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if not ALIGN_OUTPUT or nbytes < HUGE_ALIGN_MIN:
        return np.empty(shape, dtype)
    if RECYCLE_OUTPUTS and (POOL_MIN_BYTES if pool_min is None else pool_min) <= nbytes <= POOL_MAX_BYTES:
        block = _OutputBlock.take(nbytes)
        if block is not None:
            return np.frombuffer(block, dtype, nbytes // dtype.itemsize).reshape(shape)
    raw = np.empty(nbytes + HUGE_PAGE, np.uint8)
    off = (-raw.ctypes.data) % HUGE_PAGE
    return raw[off:off + nbytes].view(dtype).reshape(shape)


#: Big outputs come from :class:`_OutputBlock`, whose memory, once the last
#: array viewing it is gone, serves the next call of the same size instead of
#: going back to the system: glibc maps every block over 32 MiB afresh and the
#: system zeroes its pages at first touch (4096² float32 outputs: ~5 ms of a
#: 13 ms scaling at two threads). Between POOL_MIN_BYTES and POOL_MAX_BYTES.
POOL_MIN_BYTES = 30 << 20
POOL_MAX_BYTES = 258 << 20
#: At most this many idle blocks of at most POOL_IDLE_BYTES in all are kept
#: (the rest go back to the system at once).
POOL_BLOCKS = 2
POOL_IDLE_BYTES = 288 << 20
#: Whether big outputs are recycled so (for A/B measurements and tests).
RECYCLE_OUTPUTS = True



def recycles(nbytes):
    """Whether a fresh output of ``nbytes`` comes from the recycled blocks."""
    return bool(ALIGN_OUTPUT and RECYCLE_OUTPUTS and POOL_MIN_BYTES <= nbytes <= POOL_MAX_BYTES)


cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)
cdef extern from "<sys/mman.h>" nogil:
    int madvise(void* addr, size_t length, int advice)
    int MADV_HUGEPAGE

# Idle blocks (capacity, address), oldest first; touched with the GIL held only.
cdef list _idle = []


cdef class _OutputBlock:
    """Memory for one big result, exposed through the buffer protocol.

    A result is ``np.frombuffer(block, ...)``: numpy keeps the block alive as
    long as any array views it, so its memory is reused (by :meth:`take`) only
    after the last view of an old result is gone, as ``malloc`` would reuse
    it; no idle block is reachable from any array. Idle blocks are bounded by
    :data:`POOL_BLOCKS` and :data:`POOL_IDLE_BYTES`.
    """
    cdef void* data
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t capacity
    cdef bint keep

    @staticmethod
    def take(Py_ssize_t nbytes):
        """A block of at least ``nbytes`` (an idle one of the same 2 MiB
        rounded size if any), or None when memory is short."""
        cdef Py_ssize_t cap = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
        cdef void* p = NULL
        cdef Py_ssize_t i
        for i in range(len(_idle)):
            if _idle[i][0] == cap:
                p = <void*> <size_t> _idle.pop(i)[1]
                break
        if p == NULL:
            if posix_memalign(&p, HUGE_PAGE, cap) != 0:
                return None
            madvise(p, cap, MADV_HUGEPAGE)  # advice only: failure is harmless
        block = _OutputBlock()
        block.data = p
        block.nbytes = nbytes
        block.capacity = cap
        block.keep = True
        return block

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, self.data, self.nbytes, 0, flags)

    def __dealloc__(self):
        if self.data == NULL:
            return
        cdef Py_ssize_t idle = 0
        if self.keep:  # (else back to the system, see discard)
            try:
                for entry in _idle:
                    idle += entry[0]
                if len(_idle) < POOL_BLOCKS and idle + self.capacity <= POOL_IDLE_BYTES:
                    _idle.append((self.capacity, <size_t> self.data))
                    self.data = NULL
            except Exception:  # (at interpreter exit the module's names may be gone)
                pass
        if self.data != NULL:
            free(self.data)
            self.data = NULL


def discard(a):
    """Let the recycled block under array ``a`` (if any) go back to the system
    instead of the idle blocks when its last view dies (a call that failed
    or was interrupted leaves no memory behind). Returns whether ``a`` had one."""
    base = a
    while base is not None:
        if isinstance(base, _OutputBlock):
            (<_OutputBlock> base).keep = False
            return True
        if isinstance(base, memoryview):
            base = base.obj
        else:
            base = getattr(base, "base", None)
    return False


def idle_outputs():
    """``(blocks, bytes)`` of the idle recycled output blocks kept now."""
    return len(_idle), sum(entry[0] for entry in _idle)


def release_outputs():
    """Give every idle recycled output block back to the system; returns the
    bytes released."""
    cdef Py_ssize_t total = 0
    while _idle:
        cap, address = _idle.pop()
        free(<void*> <size_t> address)
        total += cap
    return total


def correlate(x, w, shape, offsets, int boundary, fill, int num_threads, out=None):
    """Engine entry (see ``fastcorr._engine.dispatch``): the offset correlation,
    in a new array or in ``out`` (C-contiguous, ``shape``, ``x``'s dtype)."""
    if is_scaling(x.shape[0], x.shape[1], w.shape[0], w.shape[1], offsets[0], offsets[1],
                  shape[0], shape[1]):
        if SCALE_KERNEL:
            if out is None:
                out = fresh_output(shape, x.dtype)
            scale_into(x, w[0, 0], out, num_threads)
            return out
        if out is None and x.shape[0] * x.shape[1] <= SCALE_BELOW:
            return np.multiply(x, w[0, 0])
    if out is None:
        out = fresh_output(shape, x.dtype)
    threads = useful_threads(num_threads, shape[0] * shape[1] * w.shape[0] * w.shape[1], shape[0])
    correlate_into(x, w, out, offsets[0], offsets[1], boundary, fill, threads)
    return out


#: Multiply-adds below which one more thread costs more (fork/join, and a
#: descheduled thread on a busy machine) than it saves.
MIN_WORK_PER_THREAD = 1 << 18


def useful_threads(int num_threads, work, Py_ssize_t rows):
    """Threads worth starting for ``work`` multiply-adds over ``rows`` rows."""
    return int(max(1, min(num_threads, rows, work // MIN_WORK_PER_THREAD)))
