# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct multi-channel conv2d (and its weight gradient): two engines.

``forward_blocked`` / ``grad_weight_blocked`` (layers with at least 4 output
channels per group): each OpenMP work item is one band of output rows of one
(image, group). It lays the input rows the band reads out as padded,
stride-phase-split planes (see the section comment below), so that every
kernel tap is a constant offset, and runs the register-blocked kernels of
``_simd/conv_kernels.h`` over them at the FMA rate: no im2col matrix, no edge
cases in the inner loop.

``forward`` (fewer output channels per group: depthwise and thin layers):
each work item is one group of output rows of one image (three rows at a
time with unit strides and dilations, else one), for every output channel in
turn; it accumulates, tap by tap, scaled input rows into the output rows,
reading the input through the index tables of im2col
(``fastcorr._engine.conv.index_table``): padding and padding modes cost nothing in the
interior.
"""
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset

from fastcorr.methods.conv_kernels cimport (
    real_t, conv_block, conv_cv, transpose_out, even_samples, conv_gw, conv_po, FC_CB_OC, FC_CB_PIX,
    FC_CV_VECS, FC_CV_PIX, FC_GW_TAPS, fc_po_block_channels, fc_prefetch_bytes, w24_in, w24_out,
    fc_prefetch_write_rows,
)

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

cdef inline void rows_kernel(real_t* acc, const real_t** rows, const real_t** w,
                             Py_ssize_t nrows, Py_ssize_t kw, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_rows_f32(acc, rows, w, nrows, kw, n)
    else:
        fc_rows_f64(acc, rows, w, nrows, kw, n)


cdef inline void rows3_kernel(real_t** acc, const real_t** inp, const real_t* w, Py_ssize_t nch,
                              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t n, const real_t* init,
                              const real_t** scratch) noexcept nogil:
    if real_t is float:
        fc_rows3_f32(acc, inp, w, nch, kh, kw, n, init, scratch)
    else:
        fc_rows3_f64(acc, inp, w, nch, kh, kw, n, init, scratch)


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
    cdef real_t starts[FC_MR_ROWS]
    interior_columns(crange, kw, Wo, &lo, &hi)
    # the edge columns start from the bias; the kernel writes the interior
    for a in range(FC_MR_ROWS):
        acc = acc0 + a * Wo
        accs[a] = acc + lo
        starts[a] = b
        for ox in range(lo):
            acc[ox] = b
        for ox in range(hi, Wo):
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
        rows3_kernel(accs, inp, w, C, kh, kw, hi - lo, starts, scratch)
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
    rows = NULL  # allocated per thread below (initialised for the compiler's sake)
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


# ---------------------------------------------------------------------------
# Register-blocked direct convolution (``_simd/conv_kernels.h``).
#
# A work item is (image, group, band of output rows). It lays the input rows
# the band reads out in a per-thread buffer, one *plane* per (input channel,
# row phase, column phase): plane (c, a, b) row r, column v holds the padded
# input at row (oy0 + r)*sh + a, column v*sw + b (padding and padding mode
# applied through the tables ``rowsrc`` / ``colsrc``). Tap (c, i, j) of output
# pixel (oy, ox) then reads plane (c, (i*dh) % sh, (j*dw) % sw) at row
# oy - oy0 + (i*dh)//sh, column ox + (j*dw)//sw: with rows of Wq = Wo +
# ((kw-1)*dw)//sw elements, a constant offset ``off[t]`` from the flattened
# pixel (oy - oy0)*Wq + ox. The channel-vectorised kernel visits the real
# pixels through a table (``pix``) and its pixel-major tiles are transposed
# out; the pixel-vectorised one computes every flattened pixel (the last
# Wq - Wo of each row are junk) for FC_CB_OC channels at a time into a
# scratch tile, and the item copies the real pixels out (plus bias).

#: Pixels per kernel call: the input rows one chunk reads stay in L1/L2
#: while every block of output channels passes over them (measured at
#: 1024-row chunks and whole 512-wide bands: 30% slower on 16-channel
#: 512x512 5x5).
cdef enum:
    CHUNK = 480
    #: pixels (whole rows, at least one) per call of the weight-gradient
    #: kernel: their pixel-major grad_output stays in L1
    CV_CHUNK = 96
    #: pixels per chunk of the channel-vectorised forward kernel (a multiple
    #: of its 6-pixel blocks and of the 8-wide transpose, 24): the pixel-major
    #: result of a chunk stays in L1/L2 until transposed out
    CV_PIXELS = 192


# Layout of the integer geometry array ``dims`` built by _conv._band_plan.
cdef enum:
    D_GROUPS, D_C, D_H, D_W, D_COG, D_SH, D_SW, D_HO, D_WO, D_WQ, D_RQ, D_BAND, D_S, D_PADL
    D_DIRECT, D_NA, D_NB, D_KC, D_PO, D_PANEL


cdef struct Band:
    Py_ssize_t C, H, W, sh, sw       # channels of one group, image, strides
    Py_ssize_t Ho, Wo, Wq, Rq        # output; plane row length; extra rows
    Py_ssize_t band, S               # rows per band; plane stride (elements)
    Py_ssize_t nA, nB                # row / column phases the taps use
    bint direct                      # 1x1, stride 1, no padding: the planes are the image
    Py_ssize_t ntaps, nob, Cog       # taps, blocks of output channels, channels
    const Py_ssize_t* rowsrc         # padded row u -> input row, -1 = zero
    const Py_ssize_t* colsrc         # padded column -> input column, -1 = zero
    const Py_ssize_t* vrange         # (2, nB): plane columns [lo, hi) read raw
    const Py_ssize_t* phases         # the nA row phases, then the nB column phases
    Py_ssize_t padl                  # left padding
    const Py_ssize_t* off            # (ntaps,) tap offsets
    const Py_ssize_t* pix            # channel-vectorised: pixel q -> plane position
    bint cv                          # channel-vectorised kernel (else pixel-vectorised)
    Py_ssize_t kc                    # channel-vectorised / direct-output forward: taps per chunk
    bint po                          # pixel-vectorised kernel writing the output directly
    Py_ssize_t panel                 # direct-output forward: pixels per panel


cdef void band_dims(Band* g, const Py_ssize_t[::1] dims) noexcept nogil:
    g.C = dims[D_C]; g.H = dims[D_H]; g.W = dims[D_W]; g.sh = dims[D_SH]; g.sw = dims[D_SW]
    g.Ho = dims[D_HO]; g.Wo = dims[D_WO]; g.Wq = dims[D_WQ]; g.Rq = dims[D_RQ]
    g.band = dims[D_BAND]; g.S = dims[D_S]; g.padl = dims[D_PADL]; g.direct = dims[D_DIRECT] != 0
    g.nA = dims[D_NA]; g.nB = dims[D_NB]; g.Cog = dims[D_COG]; g.kc = dims[D_KC]
    g.po = dims[D_PO] != 0; g.panel = dims[D_PANEL]


cdef void make_band(Band* g, const Py_ssize_t[::1] dims, const Py_ssize_t[::1] rowsrc,
                    const Py_ssize_t[::1] colsrc, const Py_ssize_t[:, ::1] vrange,
                    const Py_ssize_t[::1] phases) noexcept nogil:
    band_dims(g, dims)
    g.rowsrc = &rowsrc[0]; g.colsrc = &colsrc[0]; g.vrange = &vrange[0, 0]; g.phases = &phases[0]


cdef inline Py_ssize_t band_buffer_size(const Band* g) noexcept nogil:
    """Elements of one thread's planes: reads run past the last plane by at
    most one pixel block and one plane row (the slack, zeroed per call)."""
    if g.direct:
        return 0
    return g.C * g.nA * g.nB * g.S + g.Wq + 2 * FC_CB_PIX


cdef Py_ssize_t workspace_elements(const Band* g, Py_ssize_t channels, bint cv,
                                   bint grad_weight) noexcept nogil:
    """One thread's workspace: the planes, then the kernel's scratch (the
    forward's result tile, or the weight gradient's pixel-major grad_output)
    for ``channels`` output channels (rounded up to the kernel's block)."""
    if grad_weight:
        return band_buffer_size(g) + g.band * g.Wo * channels
    if g.po:
        return band_buffer_size(g)
    if cv:
        return band_buffer_size(g) + channels * CV_PIXELS
    return band_buffer_size(g) + channels * ((g.band * g.Wq + FC_CB_PIX - 1) // FC_CB_PIX * FC_CB_PIX)


#: How many plane rows ahead the band copy prefetches its input row (0: not).
cdef Py_ssize_t PREFETCH_ROWS = 4


def set_prefetch_rows(Py_ssize_t rows):
    """Set how many rows ahead the band copy prefetches (0: off; measurements)."""
    global PREFETCH_ROWS
    PREFETCH_ROWS = max(0, rows)


cdef const real_t* band_planes(const real_t* x, const Band* g, Py_ssize_t oy0, Py_ssize_t nrows,
                               real_t* buf) noexcept nogil:
    """The planes of the band starting at output row oy0 (nrows + Rq rows).

    One plane per (input channel, row phase a, column phase b) the taps use:
    row r, column v hold the padded input at row (oy0 + r)*sh + a, column
    v*sw + b. Returns their base: ``buf``, or the image itself when the
    convolution is 1x1 with no stride or padding (no copy).
    """
    cdef Py_ssize_t c, ai, bi, a, b, r, u, src, v, lo, hi, col, pf
    cdef const real_t* row
    cdef real_t* dst
    if g.direct:
        return x + oy0 * g.W
    for c in range(g.C):
        for ai in range(g.nA):
            a = g.phases[ai]
            for r in range(nrows + g.Rq):
                u = (oy0 + r) * g.sh + a
                src = g.rowsrc[u]
                # the input row copied PREFETCH_ROWS rows later: its lines on the
                # way while this one is copied (the copies waited on memory:
                # 1x3->64 224x224 7x7 stride 2, 1 thread: 2 rows ahead 0.8-1.4%
                # less CPU time, 4 rows 1.7-1.9%)
                if PREFETCH_ROWS and r + PREFETCH_ROWS < nrows + g.Rq:
                    pf = g.rowsrc[u + PREFETCH_ROWS * g.sh]
                    if pf >= 0:
                        fc_prefetch_bytes(x + (c * g.H + pf) * g.W, g.W * sizeof(real_t))
                for bi in range(g.nB):
                    b = g.phases[g.nA + bi]
                    dst = buf + ((c * g.nA + ai) * g.nB + bi) * g.S + r * g.Wq
                    if src < 0:
                        memset(dst, 0, g.Wq * sizeof(real_t))
                        continue
                    row = x + (c * g.H + src) * g.W
                    lo = g.vrange[bi]
                    hi = g.vrange[g.nB + bi]
                    for v in range(lo):
                        col = g.colsrc[v * g.sw + b]
                        dst[v] = row[col] if col >= 0 else 0
                    if g.sw == 1:
                        memcpy(dst + lo, row + lo - g.padl, (hi - lo) * sizeof(real_t))
                    elif g.sw == 2 and hi > lo:
                        even_samples(dst + lo, row + 2 * lo + b - g.padl, hi - lo)
                    else:
                        for v in range(lo, hi):
                            dst[v] = row[v * g.sw + b - g.padl]
                    for v in range(hi, g.Wq):
                        col = g.colsrc[v * g.sw + b]
                        dst[v] = row[col] if col >= 0 else 0
    return buf


cdef void blocked_item(const real_t* x, const real_t* wp, real_t* out, const real_t* bias,
                       const Band* g, Py_ssize_t oy0, Py_ssize_t oy1, real_t* buf,
                       real_t* scratch) noexcept nogil:
    """Output rows [oy0, oy1) of every channel of one (image, group)."""
    cdef Py_ssize_t nrows = oy1 - oy0, npix, p0, ob, co, r, ox
    cdef Py_ssize_t ldo, HW = g.Ho * g.Wo
    cdef real_t b
    cdef real_t* o
    cdef const real_t* s
    cdef const real_t* planes = band_planes(x, g, oy0, nrows, buf)
    if g.po:
        po_compute(wp, out, bias, g, oy0, nrows, planes)
        return
    if g.cv:
        cv_compute(wp, out, bias, g, oy0, nrows, planes, scratch)
        return
    npix = (nrows * g.Wq + FC_CB_PIX - 1) // FC_CB_PIX * FC_CB_PIX
    ldo = npix
    p0 = 0
    while p0 < npix:
        for ob in range(g.nob):
            conv_block(scratch + ob * FC_CB_OC * ldo + p0, ldo, planes + p0, g.off, g.ntaps,
                       wp + ob * g.ntaps * FC_CB_OC, min(CHUNK, npix - p0))
        p0 = p0 + CHUNK
    for co in range(g.Cog):
        b = bias[co] if bias != NULL else 0
        for r in range(nrows):
            o = out + co * HW + (oy0 + r) * g.Wo
            s = scratch + co * ldo + r * g.Wq
            if bias != NULL:
                for ox in range(g.Wo):
                    o[ox] = s[ox] + b
            else:
                memcpy(o, s, g.Wo * sizeof(real_t))


cdef void cv_compute(const real_t* wq, real_t* out, const real_t* bias, const Band* g,
                     Py_ssize_t oy0, Py_ssize_t nrows, const real_t* buf,
                     real_t* scratch) noexcept nogil:
    """Channel-vectorised: chunks of CV_PIXELS pixels, each for every channel
    block, then transposed into ``out``.

    The taps go in chunks of ``g.kc`` whose weights (per channel block) stay
    in L1 while the kernel sweeps the pixel chunk; later tap chunks add to
    the pixel-major scratch.
    """
    cdef Py_ssize_t nc = (FC_CV_VECS * 32) // sizeof(real_t)   # channels per block
    cdef Py_ssize_t ldo = g.nob * nc, nreal = nrows * g.Wo
    cdef Py_ssize_t npix = (nreal + FC_CV_PIX - 1) // FC_CV_PIX * FC_CV_PIX
    cdef Py_ssize_t p0 = 0, n, t0, nt, ob
    # chunks of equal size (a multiple of 24 pixels, at most CV_PIXELS), not
    # a short last one that pays every tap chunk's set-up for a few pixels
    cdef Py_ssize_t nchunks = (npix + CV_PIXELS - 1) // CV_PIXELS
    cdef Py_ssize_t chunk = ((npix + nchunks - 1) // nchunks + 23) // 24 * 24
    while p0 < npix:
        n = min(chunk, npix - p0)
        t0 = 0
        while t0 < g.ntaps:
            nt = min(g.kc, g.ntaps - t0)
            for ob in range(g.nob):
                conv_cv(scratch + ob * nc, ldo, buf, g.pix + p0, g.off + t0, nt,
                        wq + (ob * g.ntaps + t0) * nc, n, t0 > 0)
            t0 = t0 + nt
        transpose_out(out + oy0 * g.Wo + p0, g.Ho * g.Wo, scratch, ldo, min(n, nreal - p0), g.Cog, bias)
        p0 = p0 + n


cdef void po_compute(const real_t* wp, real_t* out, const real_t* bias, const Band* g,
                     Py_ssize_t oy0, Py_ssize_t nrows, const real_t* planes) noexcept nogil:
    """Pixel-vectorised, straight into ``out`` (``fc_conv_po``): runs of
    output pixels (each output row, or all rows of the band at once when the
    planes have no junk columns), cut into panels of ``g.panel`` pixels; per
    panel the taps in chunks of ``g.kc`` (the panel's input stays in L1
    while every block of output channels passes over it), later chunks
    adding to the output."""
    cdef Py_ssize_t HW = g.Ho * g.Wo, nruns, run, n, p0, np, t0, nt, ob, nch
    cdef Py_ssize_t oc = fc_po_block_channels()
    cdef const real_t* src
    cdef real_t* dst
    if g.Wq == g.Wo:
        nruns = 1
        n = nrows * g.Wo
    else:
        nruns = nrows
        n = g.Wo
    for run in range(nruns):
        src = planes + run * g.Wq
        dst = out + (oy0 + run) * g.Wo
        p0 = 0
        while p0 < n:
            np = n - p0 if n - p0 <= g.panel + g.panel // 4 else g.panel   # no short last panel
            t0 = 0
            while t0 < g.ntaps:
                nt = min(g.kc, g.ntaps - t0)
                for ob in range(g.nob):
                    nch = min(oc, g.Cog - ob * oc)
                    conv_po(dst + ob * oc * HW + p0, HW, nch, src + p0, g.off + t0, nt,
                            wp + (ob * g.ntaps + t0) * oc, np,
                            bias + ob * oc if (bias != NULL and t0 == 0) else <const real_t*> NULL,
                            t0 > 0)
                t0 = t0 + nt
            p0 = p0 + np


def forward_blocked(const real_t[:, ::1] x, const real_t[:, :, ::1] wp, real_t[:, ::1] out,
                    const real_t[::1] bias, const Py_ssize_t[::1] dims,
                    const Py_ssize_t[::1] rowsrc, const Py_ssize_t[::1] colsrc,
                    const Py_ssize_t[:, ::1] vrange, const Py_ssize_t[::1] phases,
                    const Py_ssize_t[::1] off, const Py_ssize_t[::1] pix, real_t[::1] ws,
                    int nthreads):
    """out (N, groups*Cog*Ho*Wo) = grouped conv of x (N, groups*C*H*W).

    ``dims`` and the tables are the plan of ``fastcorr._engine.conv._band_plan`` (see the
    section comment); ``off`` the tap offsets in the planes. ``wp`` (groups,
    nob, ntaps*block): weights packed per block of output channels (zeros
    past Cog). ``pix``: empty for the pixel-vectorised kernel (blocks of
    FC_CB_OC channels); for the channel-vectorised one the plane position of
    each pixel of a band (a multiple of FC_CV_PIX entries, padded with valid
    positions). ``ws``: the threads' planes and scratch, at least
    ``nthreads * blocked_workspace(...)`` elements (reused across calls: a
    per-call allocation of these buffers cost page faults on every call).
    """
    cdef Band g
    make_band(&g, dims, rowsrc, colsrc, vrange, phases)
    cdef Py_ssize_t groups = dims[D_GROUPS], C = g.C, H = g.H, W = g.W, Cog = g.Cog
    cdef Py_ssize_t Ho = g.Ho, Wo = g.Wo, band = g.band
    cdef Py_ssize_t N = x.shape[0], nbands = (Ho + band - 1) // band
    cdef Py_ssize_t items = N * groups * nbands, it, n, gi, bi, oy0
    cdef Py_ssize_t nbuf = band_buffer_size(&g), per_thread
    cdef const real_t* bp
    cdef real_t* buf
    cdef real_t* scratch
    if items == 0:
        return
    g.ntaps = off.shape[0]; g.nob = wp.shape[1]
    g.off = &off[0]
    g.cv = pix.shape[0] > 0
    g.pix = &pix[0] if g.cv else NULL
    per_thread = workspace_elements(&g, wp.shape[2] // g.ntaps * g.nob, g.cv, False)
    if ws.shape[0] < nthreads * per_thread:
        raise ValueError(f"workspace of {ws.shape[0]} elements, {nthreads * per_thread} needed")
    buf = scratch = NULL  # set per thread below (initialised for the compiler's sake)
    with nogil, parallel(num_threads=nthreads):
        buf = &ws[0] + threadid() * per_thread
        scratch = buf + nbuf
        if nbuf > 0:  # the slack past the planes, read only for junk pixels: kept finite
            memset(buf + nbuf - (g.Wq + 2 * FC_CB_PIX), 0, (g.Wq + 2 * FC_CB_PIX) * sizeof(real_t))
        for it in prange(items, schedule='dynamic'):
            n = it // (groups * nbands)
            gi = (it // nbands) % groups
            bi = it % nbands
            oy0 = bi * band
            bp = &bias[gi * Cog] if bias.shape[0] > 0 else NULL
            blocked_item(&x[n, 0] + gi * C * H * W, &wp[gi, 0, 0],
                         &out[n, 0] + gi * Cog * Ho * Wo, bp, &g, oy0, min(Ho, oy0 + band),
                         buf, scratch)


cdef void pack_blocks(const real_t* w, Py_ssize_t K, real_t* wp, Py_ssize_t ngroups, Py_ssize_t nob,
                      Py_ssize_t block, Py_ssize_t Cog) noexcept nogil:
    """``pack_weights`` of every (group, block) on the calling thread: w
    (groups*Cog, K) row-major into wp (groups, nob, K*block)."""
    cdef Py_ssize_t g, b, nreal
    for g in range(ngroups):
        for b in range(nob):
            nreal = min(block, Cog - b * block)
            if nreal < block:
                memset(wp + (g * nob + b) * K * block, 0, K * block * sizeof(real_t))
            transpose_out(wp + (g * nob + b) * K * block, block, w + (g * Cog + b * block) * K, K, nreal, K,
                          <real_t*> NULL)


def forward_blocked_private(const real_t[:, ::1] x, const real_t[:, ::1] w, real_t[:, :, :, ::1] wps,
                            real_t[:, ::1] out, const real_t[::1] bias, const Py_ssize_t[::1] dims,
                            const Py_ssize_t[::1] rowsrc, const Py_ssize_t[::1] colsrc,
                            const Py_ssize_t[:, ::1] vrange, const Py_ssize_t[::1] phases,
                            const Py_ssize_t[::1] off, const Py_ssize_t[::1] pix, real_t[::1] ws,
                            int nthreads):
    """``forward_blocked`` with the weights packed by every thread into its
    own copy: ``w`` (groups*Cog, taps) the layer's weights, ``wps``
    (nthreads, groups, nob, taps*block) the threads' packed copies.

    Packed once and read by both threads, the weights were written by one
    core and fetched by the other on every call, and each call's packing
    invalidated the other core's copy: 8x256->256 14x14 1x1, 2 threads,
    kernel alone 0.95 ms, pack (serial, 10 us alone) and kernel 1.14-1.25
    ms. A private copy, written and read on one core, stays in its cache.
    """
    cdef Band g
    make_band(&g, dims, rowsrc, colsrc, vrange, phases)
    cdef Py_ssize_t groups = dims[D_GROUPS], C = g.C, H = g.H, W = g.W, Cog = g.Cog
    cdef Py_ssize_t Ho = g.Ho, Wo = g.Wo, band = g.band
    cdef Py_ssize_t N = x.shape[0], nbands = (Ho + band - 1) // band
    cdef Py_ssize_t items = N * groups * nbands, it, n, gi, bi, oy0
    cdef Py_ssize_t nbuf = band_buffer_size(&g), per_thread, K = w.shape[1]
    cdef Py_ssize_t nob = wps.shape[2], block, wsize = wps.shape[1] * wps.shape[2] * wps.shape[3]
    cdef const real_t* bp
    cdef real_t* buf
    cdef real_t* scratch
    cdef real_t* wpt
    if items == 0:
        return
    if wps.shape[0] < nthreads or wps.shape[1] != groups or K != off.shape[0] or wps.shape[3] % max(K, 1) \
            or w.shape[0] != groups * Cog:
        raise ValueError("forward_blocked_private: weights or packed copies do not match the plan")
    block = wps.shape[3] // K
    if nob * block < Cog:
        raise ValueError("forward_blocked_private: too few packed blocks")
    g.ntaps = K; g.nob = nob
    g.off = &off[0]
    g.cv = pix.shape[0] > 0
    g.pix = &pix[0] if g.cv else NULL
    per_thread = workspace_elements(&g, block * g.nob, g.cv, False)
    if ws.shape[0] < nthreads * per_thread:
        raise ValueError(f"workspace of {ws.shape[0]} elements, {nthreads * per_thread} needed")
    buf = scratch = wpt = NULL
    with nogil, parallel(num_threads=nthreads):
        buf = &ws[0] + threadid() * per_thread
        scratch = buf + nbuf
        wpt = &wps[0, 0, 0, 0] + threadid() * wsize
        pack_blocks(&w[0, 0], K, wpt, groups, nob, block, Cog)
        if nbuf > 0:
            memset(buf + nbuf - (g.Wq + 2 * FC_CB_PIX), 0, (g.Wq + 2 * FC_CB_PIX) * sizeof(real_t))
        for it in prange(items, schedule='dynamic'):
            n = it // (groups * nbands)
            gi = (it // nbands) % groups
            bi = it % nbands
            oy0 = bi * band
            bp = &bias[gi * Cog] if bias.shape[0] > 0 else NULL
            blocked_item(&x[n, 0] + gi * C * H * W, wpt + gi * nob * K * block,
                         &out[n, 0] + gi * Cog * Ho * Wo, bp, &g, oy0, min(Ho, oy0 + band),
                         buf, scratch)


#: Products per output pair of the F(2,4) column transform (``forward_w24``).
W24_ALPHA = 5
#: Whether ``forward_w24`` prefetches the output lines of a panel (measurements).
cdef bint W24_PREFETCH = True


def set_w24_prefetch(bint on):
    """Switch the output prefetch of ``forward_w24`` (measurements)."""
    global W24_PREFETCH
    W24_PREFETCH = on


cdef inline Py_ssize_t w24_panel_row(Py_ssize_t panel) noexcept nogil:
    """Row length of one product row of a panel: its longest panel (a last one
    of up to 1.25 panels) rounded up to 16, plus the 16 the output
    transform's whole vectors may read past a row segment."""
    return (panel + panel // 4 + 15) // 16 * 16 + 16


def w24_workspace(const Py_ssize_t[::1] dims, Py_ssize_t T, Py_ssize_t oc):
    """Elements of one thread's workspace of ``forward_w24``: the band
    planes, their 5 transformed copies, and the products of one panel."""
    cdef Band g
    band_dims(&g, dims)
    cdef Py_ssize_t nplanes = g.C * g.nA * g.nB
    return band_buffer_size(&g) + nplanes * 5 * (g.band + g.Rq) * T + 5 * oc * w24_panel_row(g.panel)


cdef void w24_pack_rows(const real_t* w, Py_ssize_t Cout, Py_ssize_t rows, Py_ssize_t kw, real_t* wp,
                        Py_ssize_t nob, Py_ssize_t oc) noexcept nogil:
    """``w24_pack`` on the calling thread: w (Cout, rows*kw), rows = C*kh, into
    wp (5 * nob, taps * oc), taps = rows * 2."""
    cdef Py_ssize_t ntaps = rows * 2, xi, ob, j, o, ci, b, k, t, S = nob * ntaps * oc
    cdef double gk[8]
    cdef double g0, g1, g2, g3
    cdef real_t* d
    if nob * oc > Cout:
        for xi in range(5):
            for t in range(ntaps):
                for j in range(Cout - (nob - 1) * oc, oc):
                    wp[xi * S + (nob - 1) * ntaps * oc + t * oc + j] = 0
    for o in range(Cout):
        ob = o // oc
        j = o - ob * oc
        for ci in range(rows):   # (input channel, kernel row)
            for k in range(8):
                gk[k] = w[o * rows * kw + ci * kw + k] if k < kw else 0
            for b in range(2):
                g0 = gk[b]
                g1 = gk[b + 2]
                g2 = gk[b + 4]
                g3 = gk[b + 6]
                d = wp + ob * ntaps * oc + (ci * 2 + b) * oc + j
                d[0] = <real_t> (g0 / 2)
                d[S] = <real_t> ((g0 + g1 + g2 + g3) / 6)
                d[2 * S] = <real_t> ((g0 - g1 + g2 - g3) / 2)
                d[3 * S] = <real_t> ((g0 - 2 * g1 + 4 * g2 - 8 * g3) / 6)
                d[4 * S] = <real_t> g3


def w24_pack(const real_t[:, ::1] w, real_t[:, :, ::1] wp, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
             Py_ssize_t oc):
    """The transformed weights of ``forward_w24``: wp[xi * nob + ob, 0, t * oc + j]
    = U[xi] of the 4 taps g = w[ob * oc + j, c, i, b::2] (0 past the kernel's
    columns, and for channels past Cout), tap t = (c * kh + i) * 2 + b, with
    F(2,4)'s weight transform (points 0, 1, -1, -2, infinity) divided by the
    row scales 2, 6, 2, 6, 1 of ``fc_w24_in``:
    U0 = g0 / 2, U1 = (g0 + g1 + g2 + g3) / 6, U2 = (g0 - g1 + g2 - g3) / 2,
    U3 = (g0 - 2 g1 + 4 g2 - 8 g3) / 6, U4 = g3 (in double)."""
    cdef Py_ssize_t Cout = w.shape[0], nob = wp.shape[0] // 5, ntaps = C * kh * 2
    if w.shape[1] != C * kh * kw or wp.shape[0] % 5 or wp.shape[1] != 1 or wp.shape[2] != ntaps * oc \
            or nob * oc < Cout or kw > 8:
        raise ValueError("w24_pack: shapes do not match")
    with nogil:
        w24_pack_rows(&w[0, 0], Cout, C * kh, kw, &wp[0, 0, 0], nob, oc)


cdef int w24_item(const real_t* x, const real_t* wp, real_t* out, const real_t* bias,
                  const Band* g, Py_ssize_t oy0, Py_ssize_t oy1, Py_ssize_t T,
                  const Py_ssize_t* off, real_t* buf, Py_ssize_t nbuf) noexcept nogil:
    """Output rows [oy0, oy1) of every channel of one image by F(2,4) along
    the columns (see ``forward_w24``); nonzero when the band holds inf/NaN.

    The transformed rows of a plane follow each other (T tiles a row), so
    the band's tiles form one run, cut into panels of ``g.panel`` tiles
    (whole vectors: a row of 56 tiles alone ends in a half-empty one); per
    panel and block of output channels the 5 products, then the output
    transform of each row segment of the panel."""
    cdef Py_ssize_t nrows = oy1 - oy0, rows = nrows + g.Rq, Pp = w24_panel_row(g.panel)
    cdef Py_ssize_t nplanes = g.C * g.nA * g.nB, SV = (g.band + g.Rq) * T
    cdef Py_ssize_t oc = fc_po_block_channels(), HW = g.Ho * g.Wo
    cdef Py_ssize_t pl, r, ob, xi, nch, n = nrows * T, p0, np, k, q0, seg
    cdef int bad = 0
    cdef const real_t* planes = band_planes(x, g, oy0, nrows, buf)
    cdef real_t* V = buf + nbuf
    cdef real_t* M = V + nplanes * 5 * SV
    for pl in range(nplanes):
        for r in range(rows):
            bad |= w24_in(V + pl * 5 * SV + r * T, SV, planes + pl * g.S + r * g.Wq, T, g.Wq)
    if bad:
        return 1
    p0 = 0
    while p0 < n:
        np = n - p0 if n - p0 <= g.panel + g.panel // 4 else g.panel   # no short last panel
        for ob in range(g.nob):
            nch = min(oc, g.Cog - ob * oc)
            if W24_PREFETCH:  # the output lines the transform will fill, on their way
                k = 0
                while k < np:
                    r = (p0 + k) // T
                    q0 = (p0 + k) % T
                    seg = min(T - q0, np - k)
                    fc_prefetch_write_rows(out + ob * oc * HW + (oy0 + r) * g.Wo + 2 * q0, HW * sizeof(real_t),
                                           nch, min(2 * seg, g.Wo - 2 * q0) * sizeof(real_t))
                    k = k + seg
            for xi in range(5):
                conv_po(M + xi * oc * Pp, Pp, nch, V + p0, off + xi * g.ntaps, g.ntaps,
                        wp + (xi * g.nob + ob) * g.ntaps * oc, np, <const real_t*> NULL, 0)
            k = 0
            while k < np:   # the panel's row segments
                r = (p0 + k) // T
                q0 = (p0 + k) % T
                seg = min(T - q0, np - k)
                w24_out(out + ob * oc * HW + (oy0 + r) * g.Wo + 2 * q0, HW, nch,
                        min(2 * seg, g.Wo - 2 * q0), M + k, Pp, oc * Pp,
                        bias + ob * oc if bias != NULL else <const real_t*> NULL)
                k = k + seg
        p0 = p0 + np
    return 0


def forward_w24(const real_t[:, ::1] x, const real_t[:, ::1] w, real_t[:, :, ::1] wp, real_t[:, ::1] out,
                const real_t[::1] bias, const Py_ssize_t[::1] dims,
                const Py_ssize_t[::1] rowsrc, const Py_ssize_t[::1] colsrc,
                const Py_ssize_t[:, ::1] vrange, const Py_ssize_t[::1] phases,
                const Py_ssize_t[:, ::1] off, Py_ssize_t T, Py_ssize_t kh, Py_ssize_t kw,
                real_t[::1] ws, int nthreads):
    """out (N, Cout*Ho*Wo) = conv of x (N, C*H*W), one group, column stride
    2, by Winograd's F(2,4) along the columns.

    The band planes of ``forward_blocked`` (same plan arguments; a plane row
    holds at least 2T + 3 columns) are transformed, per row, into 5 planes
    of T tiles (``fc_w24_in``); per panel of tiles (``dims``' panel field)
    and block of output channels the direct-output kernel computes the 5
    products over the taps (channel, kernel row, column phase): ``off`` (5, ntaps) their offsets in the
    transformed planes; ``wp`` (nthreads * 5 * nob, 1, ntaps * block) the
    threads' copies of the transformed weights (``w24_pack`` of ``w``
    (Cout, C*kh*kw), each thread packing its own: see
    ``forward_blocked_private``); ``fc_w24_out`` turns them into
    the row's outputs. ``T`` = ceil(Wo / 2). ``ws``: at least ``nthreads *
    w24_workspace(dims, T, block)`` elements. Returns 1 (with ``out``
    partly written) when the input holds inf or NaN: the caller then runs
    the direct sums.
    """
    cdef Band g
    make_band(&g, dims, rowsrc, colsrc, vrange, phases)
    cdef Py_ssize_t Ho = g.Ho, Wo = g.Wo, band = g.band, C = g.C, H = g.H, W = g.W
    cdef Py_ssize_t N = x.shape[0], nbands = (Ho + band - 1) // band
    cdef Py_ssize_t items = N * nbands, it, n, bi, oy0
    cdef Py_ssize_t nbuf = band_buffer_size(&g), per_thread
    cdef Py_ssize_t oc = fc_po_block_channels(), wsize
    cdef real_t* buf
    cdef real_t* wpt
    cdef int bad = 0
    if items == 0:
        return 0
    if dims[D_GROUPS] != 1 or nthreads < 1 or wp.shape[0] % (5 * nthreads) or off.shape[0] != 5:
        raise ValueError("forward_w24 needs one group, 5 transformed weight sets a thread and 5 offset rows")
    g.ntaps = off.shape[1]; g.nob = wp.shape[0] // (5 * nthreads)
    if w.shape[0] != g.Cog or w.shape[1] != C * kh * kw or g.ntaps != C * kh * 2 or kw > 8:
        raise ValueError("forward_w24: weights do not match the taps")
    if wp.shape[2] != g.ntaps * oc or g.nob * oc < g.Cog or g.Wq < 2 * T + 3 or 2 * T < Wo or g.panel < 1:
        raise ValueError("forward_w24: packed weights, tiles or plane rows do not match the plan")
    per_thread = w24_workspace(dims, T, oc)
    if ws.shape[0] < nthreads * per_thread:
        raise ValueError(f"workspace of {ws.shape[0]} elements, {nthreads * per_thread} needed")
    buf = wpt = NULL
    wsize = 5 * g.nob * g.ntaps * oc
    if wp.shape[2] * wp.shape[1] != g.ntaps * oc:
        raise ValueError("forward_w24: packed weights do not match the taps")
    with nogil, parallel(num_threads=nthreads):
        buf = &ws[0] + threadid() * per_thread
        wpt = &wp[0, 0, 0] + threadid() * wsize
        w24_pack_rows(&w[0, 0], g.Cog, C * kh, kw, wpt, g.nob, oc)
        if nbuf > 0:
            memset(buf + nbuf - (g.Wq + 2 * FC_CB_PIX), 0, (g.Wq + 2 * FC_CB_PIX) * sizeof(real_t))
        for it in prange(items, schedule='dynamic'):
            n = it // nbands
            bi = it % nbands
            oy0 = bi * band
            bad |= w24_item(&x[n, 0], wpt, &out[n, 0],
                            &bias[0] if bias.shape[0] > 0 else NULL, &g, oy0, min(Ho, oy0 + band),
                            T, &off[0, 0], buf, nbuf)
    return 1 if bad else 0


def grad_weight_blocked(const real_t[:, ::1] x, const real_t[:, ::1] go, real_t[:, :, :, ::1] acc,
                        const Py_ssize_t[::1] dims, const Py_ssize_t[::1] rowsrc,
                        const Py_ssize_t[::1] colsrc, const Py_ssize_t[:, ::1] vrange,
                        const Py_ssize_t[::1] phases, const Py_ssize_t[::1] off, real_t[::1] ws,
                        int nthreads):
    """acc[thread, g, t, c] += sum over pixels of go[n, g*Cog + c] * (tap t of x[n], group g).

    The weight gradient on the band planes of ``forward_blocked`` (same plan
    arguments). ``off`` is padded to a multiple of FC_GW_TAPS taps (the extra
    rows of ``acc`` are junk); ``acc`` (nthreads, groups, len(off), channels
    rounded up to a block) is zeroed by the caller, who sums it over threads.
    ``ws``: the threads' planes and pixel-major grad_output, at least
    ``nthreads * (band_elements + band*Wo*channels)`` elements (see
    ``blocked_workspace``).
    """
    cdef Band g
    make_band(&g, dims, rowsrc, colsrc, vrange, phases)
    cdef Py_ssize_t groups = dims[D_GROUPS], C = g.C, H = g.H, W = g.W, Cog = g.Cog
    cdef Py_ssize_t Ho = g.Ho, Wo = g.Wo, Wq = g.Wq, band = g.band
    cdef Py_ssize_t N = x.shape[0], nbands = (Ho + band - 1) // band
    cdef Py_ssize_t items = N * groups * nbands, it, n, gi, bi, oy0, oy1, nreal, r0, nr, ob, tb
    cdef Py_ssize_t rows_per_chunk = max(1, CV_CHUNK // max(Wo, 1))
    cdef Py_ssize_t ldg = acc.shape[3], ntaps_r = off.shape[0], HW = Ho * Wo
    cdef Py_ssize_t nc = (FC_CV_VECS * 32) // sizeof(real_t), nob = ldg // nc
    cdef Py_ssize_t nbuf = band_buffer_size(&g), ngot = band * Wo * ldg
    cdef Py_ssize_t per_thread = workspace_elements(&g, ldg, True, True)
    cdef real_t* buf
    cdef real_t* got
    cdef real_t* a
    cdef const real_t* planes
    cdef int tid
    if items == 0:
        return
    if ws.shape[0] < nthreads * per_thread:
        raise ValueError(f"workspace of {ws.shape[0]} elements, {nthreads * per_thread} needed")
    buf = got = NULL  # set per thread below (initialised for the compiler's sake)
    with nogil, parallel(num_threads=nthreads):
        buf = &ws[0] + threadid() * per_thread
        got = buf + nbuf
        memset(got, 0, ngot * sizeof(real_t))   # the channel padding stays 0
        for it in prange(items, schedule='dynamic'):
            tid = threadid()
            n = it // (groups * nbands)
            gi = (it // nbands) % groups
            bi = it % nbands
            oy0 = bi * band
            oy1 = min(Ho, oy0 + band)
            nreal = (oy1 - oy0) * Wo
            planes = band_planes(&x[n, 0] + gi * C * H * W, &g, oy0, oy1 - oy0, buf)
            # grad_output of the band, pixel-major
            transpose_out(got, ldg, &go[n, 0] + gi * Cog * HW + oy0 * Wo, HW, Cog, nreal, <real_t*> NULL)
            a = &acc[tid, gi, 0, 0]
            # chunks of rows: their grad_output (pixel-major) stays in L1
            r0 = 0
            while r0 < oy1 - oy0:
                nr = min(rows_per_chunk, oy1 - oy0 - r0)
                for ob in range(nob):
                    for tb in range(ntaps_r // FC_GW_TAPS):
                        conv_gw(a + tb * FC_GW_TAPS * ldg + ob * nc, ldg, planes + r0 * Wq,
                                &off[tb * FC_GW_TAPS], nr, Wo, Wq, got + r0 * Wo * ldg + ob * nc, ldg)
                r0 = r0 + nr


def pack_weights(const real_t[:, ::1] w, real_t[:, :, ::1] wp, Py_ssize_t Cog, int nthreads):
    """wp[g, b] (taps x block, tap-major) = the weights of output channels
    g*Cog + b*block ... of w (groups*Cog, taps); zeros past Cog.

    ``block = wp.shape[2] // taps`` channels per block (the blocked kernels'
    weight layout); 8x8 register transposes, parallel over blocks.
    """
    cdef Py_ssize_t K = w.shape[1], nob = wp.shape[1], block = wp.shape[2] // max(w.shape[1], 1)
    cdef Py_ssize_t items = wp.shape[0] * nob, it, g, b, nreal
    for it in prange(items, nogil=True, num_threads=nthreads, schedule='static'):
        g = it // nob
        b = it % nob
        nreal = min(block, Cog - b * block)
        if nreal < block:
            memset(&wp[g, b, 0], 0, K * block * sizeof(real_t))
        transpose_out(&wp[g, b, 0], block, &w[g * Cog + b * block, 0], K, nreal, K, <real_t*> NULL)


def blocked_workspace(const Py_ssize_t[::1] dims, Py_ssize_t channels, bint cv, bint grad_weight=False):
    """Elements of one thread's workspace for the blocked kernels.

    ``channels``: output channels rounded up to the kernel's block; ``cv``
    the channel-vectorised forward kernel; ``grad_weight`` for
    ``grad_weight_blocked`` instead of ``forward_blocked``.
    """
    cdef Band g
    band_dims(&g, dims)
    return workspace_elements(&g, channels, cv, grad_weight)


#: Output channels per register block of the blocked kernel (weights are
#: packed in blocks of this many).
CONV_BLOCK_CHANNELS = FC_CB_OC


def po_block_channels():
    """Output channels per register block of the direct-output
    pixel-vectorised kernel on this CPU (8 with AVX-512, else 4): the
    weights of ``forward_blocked`` are packed in blocks of this many."""
    return fc_po_block_channels()
#: Channels per block of the channel-vectorised kernel, per itemsize.
CV_BLOCK_CHANNELS = {4: FC_CV_VECS * 8, 8: FC_CV_VECS * 4}
#: Pixels per register block of the channel-vectorised kernel.
CV_BLOCK_PIXELS = FC_CV_PIX
#: Pixels per chunk of the channel-vectorised forward kernel.
CV_CHUNK_PIXELS = CV_PIXELS
#: Taps per register block of the weight-gradient kernel.
GW_BLOCK_TAPS = FC_GW_TAPS


def swap_leading(const real_t[:, :, ::1] src, real_t[:, :, ::1] dst, real_t[::1] sums, int nthreads):
    """dst[b, a, :] = src[a, b, :]: the batch and channel axes of a layer's
    (N, C, H*W) array swapped (or back), in parallel over b. ``sums``
    (length B, or empty): sums[b] = the sum of src[:, b, :] (accumulated in
    double), e.g. grad_bias from grad_output."""
    cdef Py_ssize_t A = src.shape[0], B = src.shape[1], P = src.shape[2], a, b, q
    cdef bint want = sums.shape[0] > 0
    cdef double acc
    cdef const real_t* row
    if A * B * P == 0:
        if want:
            sums[:] = 0
        return
    for b in prange(B, nogil=True, num_threads=nthreads, schedule='static'):
        acc = 0
        for a in range(A):
            row = &src[a, b, 0]
            memcpy(&dst[b, a, 0], row, P * sizeof(real_t))
            if want:
                for q in range(P):
                    acc = acc + row[q]
        if want:
            sums[b] = <real_t> acc
