# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Window statistics of template matching, and the scores built on them.

For every placement (m, n) of an h x w window on an image of C interleaved
channels (``x`` is (H, W*C)), the window's per-channel sums

    s1_c = sum (x - c_c),   s2_c = sum (x - c_c)**2

are taken about a *tile centre* c_c (per channel, the mean of up to 16 of
the first h input rows of the tile of outputs being computed: a band of
rows by a block of columns), in double precision, by running sums: a column sum per input
column, updated by one row in and one row out as the window moves down,
and a running sum along the row of column sums (``_simd/window_kernels.h``).
Centring first is what keeps the statistics exact on images far from zero
(values 1e4 + noise): the variance ``V_c = s2_c - s1_c**2 / n`` of a window
is a small difference of two large numbers when the sums are taken about
zero (scikit-image's cumulative sums lose every digit there, its issue
#1712); about the tile's centre both terms have the size of the window's
own variation. (What is left: a relative error of about
``1e-16 * ((mean - c) / std)**2`` in V for a window whose mean is far from
its tile's centre against its own spread, as on the bright side of a step
of 1e4 in a tile that straddles it.) Each update adds the difference of two
samples, so the running sums do not drift beyond a few units of double
rounding over a tile (float32 images gain 29 bits from the double
accumulators; float64 images keep about 1e-14 of the centred magnitudes).
Tiles run on the call's threads (this one and helpers from a pool), each
claiming the next tile from a shared counter, each with its own row
buffers: the workspace is a few rows per thread.

From these and the correlation of the image with the zero-mean template,
``num = sum_c corr(x_c, t_c - mean(t_c))`` (computed by the dispatcher's
methods before this module runs), :func:`scores` forms OpenCV's six
template-matching scores in place, per template of a stack:

    ccoeff         num
    ccoeff_normed  num / sqrt(V * tvar)
    ccorr          num + n sum_c mean_t_c * mean_c
    ccorr_normed   ccorr / sqrt(sum x**2 * sum t**2)
    sqdiff         V - 2 num + tvar + n sum_c (mean_c - mean_t_c)**2
    sqdiff_normed  sqdiff / sqrt(sum x**2 * sum t**2)

with ``V = sum_c V_c``, ``mean_c = s1_c / n + c_c``, ``sum x**2 = V + n
sum_c mean_c**2``, and the template's constants (per-channel means, its
centred and raw sums of squares) from the caller. A window whose V is
below ``FLAT_TOL`` times its centred sum of squares is flat (V = 0), one
whose ``sum x**2`` is below ``FLAT_TOL`` of the magnitudes summed is zero;
a normalised score with a zero denominator is 0 (1 for sqdiff_normed).
Normalised scores are clamped to [-1, 1] ([0, 1] for sqdiff_normed).

On x86 with AVX2, one channel's float32 'ccoeff_normed' scores take the
reciprocal square root estimate and one Newton step instead of a square
root and a division (relative error below 4e-7; groups of windows whose
variance leaves [1e-30, 1e30] take the double formula), and one channel's
row sums run four to a vector (``_fast_paths`` switches both off, for
benchmarks). On tiles (:func:`finish_block`), one channel's float32
'ccoeff_normed' rows take one call each (``fw_rowcn_f32_avx2``: the column
sums' update, the window sums four windows a step from sums of four column
sums, and the scores). A stack of templates on tiles
(``_engine.matching._tiled``) takes each block's ``1 / sqrt(V)`` once
(:func:`window_rstd`) and scores every template from it (:func:`apply_rstd`).
:func:`finish_block` also tells whether a NaN or inf of the image reached
its window sums (the engine then need not read the image for them first).
:func:`template_constants` and :func:`level_and_spread` are the small
per-call statistics of template matching in compiled loops.
"""
from libc.math cimport isfinite, sqrt
from libc.stdlib cimport malloc, free


import numpy as np

from fastcorr.methods._pool import GrowingPool

cdef extern from "window_kernels.h" nogil:
    void fw_row(const double* a1, const double* a2, double* s1, double* s2, double* rv, double* rq,
                double* rmu, const double* cc, Py_ssize_t C, Py_ssize_t w, Py_ssize_t nout, double nw,
                double tol)
    void fw_sums(const double* a1, const double* a2, double* s1, double* s2, Py_ssize_t C, Py_ssize_t w,
                 Py_ssize_t nout)
    void fw_finish1_f32(float* out, const double* s1, const double* s2, double c0, double tmean, double tv,
                        double ts, int method, Py_ssize_t nout, double nw, double tol)
    void fw_finish1_f64(double* out, const double* s1, const double* s2, double c0, double tmean, double tv,
                        double ts, int method, Py_ssize_t nout, double nw, double tol)
    void fw_finish1io_f32(const float* inp, float* out, const double* s1, const double* s2, double c0,
                          double tmean, double tv, double ts, int method, Py_ssize_t nout, double nw, double tol)
    void fw_finish1io_f64(const double* inp, double* out, const double* s1, const double* s2, double c0,
                          double tmean, double tv, double ts, int method, Py_ssize_t nout, double nw,
                          double tol)
    void fw_centre_f32(const float* x, Py_ssize_t stride, Py_ssize_t WC, Py_ssize_t C, Py_ssize_t h,
                       double* acc, double* cc)
    void fw_centre_f64(const double* x, Py_ssize_t stride, Py_ssize_t WC, Py_ssize_t C, Py_ssize_t h,
                       double* acc, double* cc)
    void fw_init_f32(const float* x, Py_ssize_t stride, Py_ssize_t WC, Py_ssize_t C, Py_ssize_t h,
                     const double* cen, double* cs1, double* cs2)
    void fw_init_f64(const double* x, Py_ssize_t stride, Py_ssize_t WC, Py_ssize_t C, Py_ssize_t h,
                     const double* cen, double* cs1, double* cs2)
    void fw_update_f32(const float* a, const float* b, const double* cen, double* cs1, double* cs2,
                       Py_ssize_t n)
    void fw_update_f64(const double* a, const double* b, const double* cen, double* cs1, double* cs2,
                       Py_ssize_t n)
    void fw_combine_f32(float* out, const double* rv, const double* rq, const double* rmu,
                        const double* tmean, double tv, double ts, int method, Py_ssize_t C,
                        Py_ssize_t nout, double nw)
    void fw_combine_f64(double* out, const double* rv, const double* rq, const double* rmu,
                        const double* tmean, double tv, double ts, int method, Py_ssize_t C,
                        Py_ssize_t nout, double nw)
    Py_ssize_t fw_claim(Py_ssize_t* counter)
    void fw_claim_all(Py_ssize_t* counter, Py_ssize_t n)
    int FW_HAVE_ATOMIC
    int fw_fast_paths
    int fw_rstd_f32(float* r, const double* s1, const double* s2, Py_ssize_t nout, double nw, double tol,
                    int check)
    int fw_rstd_f64(double* r, const double* s1, const double* s2, Py_ssize_t nout, double nw, double tol,
                    int check)
    void fw_apply_f32(const float* inp, float* out, const float* r, float rs, Py_ssize_t nout)
    void fw_apply_f64(const double* inp, double* out, const double* r, double rs, Py_ssize_t nout)
    int fc_cpu_has_avx2_fma()
    int fw_rowcn_f32(const float* xa, const float* xb, double c0, double* cs1, double* cs2, double* p1,
                     double* p2, Py_ssize_t tw, Py_ssize_t w, const float* inp, float* out, Py_ssize_t nout,
                     double tv, double nw, double tol)

def _fast_paths(int bits=7):
    """Benchmarks only: switch the AVX2 kernels that have a portable twin
    (1: float32 'ccoeff_normed' scores, 2: one-channel row sums, 4: the
    fused row of one-channel float32 'ccoeff_normed' scores; 7: all, the
    default; 3: all but the fused row, as before it; 0: none). Not
    thread-safe against running calls."""
    global fw_fast_paths
    fw_fast_paths = bits

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache

ctypedef fused real_t:
    float
    double

#: Method codes, OpenCV's TM_* constants.
METHODS = ("sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed")
cdef enum:
    SQDIFF = 0
    SQDIFF_NORMED = 1
    CCORR = 2
    CCORR_NORMED = 3
    CCOEFF = 4
    CCOEFF_NORMED = 5
    MOMENTS = -1

#: Scores below which one more thread costs more (fork/join, and a
#: descheduled thread on a busy machine) than it saves (about 0.2 ms of
#: work on one core).
MIN_SCORES_PER_THREAD = 1 << 16

#: Relative size below which a window's variance (or sum of squares) counts
#: as zero: the running sums' rounding is about 1e-14 of the magnitudes
#: summed, so a smaller variance is rounding, not signal.
FLAT_TOL = 1e-12
cdef double FLAT_TOL_C = 1e-12


cdef inline Py_ssize_t band_rows(Py_ssize_t Ho, Py_ssize_t h, Py_ssize_t blocks, int nt) noexcept nogil:
    """Output rows per band: a few tiles per thread, unless that makes bands
    shorter than four window heights (each tile starts its column sums from
    h rows): then one band per thread at least."""
    cdef Py_ssize_t bands = max(1, (4 * nt + blocks - 1) // blocks)
    cdef Py_ssize_t per_thread = max(1, (nt + blocks - 1) // blocks)
    return max(1, max((Ho + bands - 1) // bands, min(4 * h, (Ho + per_thread - 1) // per_thread)))


cdef inline Py_ssize_t block_cols(Py_ssize_t Wo, Py_ssize_t w) noexcept nogil:
    """Output columns per tile: wide enough that the w - 1 extra input
    columns and each row's running-sum starts stay a small part of the work."""
    return min(Wo, max(256, 8 * w))


cdef inline Py_ssize_t window_step(Py_ssize_t span, Py_ssize_t bc) noexcept nogil:
    """Columns per window tile when ``span`` columns are cut into equal
    tiles, as many as ``span / bc`` rounded (not rounded up: 257 columns
    make one tile, not 129 + 128, each restarting its sums): at most
    ``bc + bc // 2 + 1``."""
    cdef Py_ssize_t n = max(1, (span + bc // 2) // bc)
    return (span + n - 1) // n


cdef int run_tiles(const real_t* x, Py_ssize_t H, Py_ssize_t WC, Py_ssize_t C, Py_ssize_t h, Py_ssize_t w,
                   real_t* num, Py_ssize_t T, const double* tmean, const double* tvar, const double* tsq,
                   int method, double* var_out, double* mean_out, Py_ssize_t band, Py_ssize_t bc,
                   Py_ssize_t* next_tile) noexcept nogil:
    """Compute tiles claimed one at a time from ``next_tile`` (shared with the
    other threads of the call) until none is left; 0, or -1 when a row buffer
    could not be allocated.

    A tile is ``band`` output rows by ``bc`` output columns, with its own
    centre (per channel, the mean of up to 16 of its first h input rows), so
    that the centre follows the image's level across the image and not only
    down it.
    """
    cdef Py_ssize_t W = WC // C
    cdef Py_ssize_t Ho = H - h + 1, Wo = W - w + 1
    cdef double nw = <double> h * <double> w
    cdef Py_ssize_t nblocks = (Wo + bc - 1) // bc
    cdef Py_ssize_t ntiles = ((Ho + band - 1) // band) * nblocks
    cdef Py_ssize_t wide = (bc + w - 1) * C        # input values of the widest tile's row
    cdef Py_ssize_t tile, b, q, m0, m1, n0, nout, tw, m, j, n, c, t
    cdef const real_t* xt
    cdef double* cs1 = NULL
    cdef double* cs2 = NULL
    cdef double* cen = NULL
    cdef double* s1 = NULL
    cdef double* s2 = NULL
    cdef double* rv = NULL
    cdef double* rq = NULL
    cdef double* rmu = NULL
    cdef double* cc = NULL
    cdef int status = 0
    cdef bint fused = real_t is float and C == 1 and T == 1 and method == CCOEFF_NORMED
    while True:
        tile = fw_claim(next_tile)
        if tile >= ntiles:
            break
        if cs1 == NULL:  # buffers on the first tile claimed (a late thread claims none)
            cs1 = <double*> malloc((wide + C) * sizeof(double))
            cs2 = <double*> malloc((wide + C) * sizeof(double))
            cen = <double*> malloc(wide * sizeof(double))
            s1 = <double*> malloc((wide + 8) * sizeof(double))   # bc * C, or the fused row's scratch
            s2 = <double*> malloc((wide + 8) * sizeof(double))
            rv = <double*> malloc(bc * sizeof(double))
            rq = <double*> malloc(bc * sizeof(double))
            rmu = <double*> malloc(bc * C * sizeof(double))
            cc = <double*> malloc(C * sizeof(double))
            if (cs1 == NULL or cs2 == NULL or cen == NULL or s1 == NULL or s2 == NULL or rv == NULL
                    or rq == NULL or rmu == NULL or cc == NULL):
                status = -1
                fw_claim_all(next_tile, ntiles)  # the others stop too
                break
        b = tile // nblocks
        q = tile % nblocks
        m0 = b * band
        m1 = min(Ho, m0 + band)
        n0 = q * bc
        nout = min(Wo, n0 + bc) - n0
        tw = (nout + w - 1) * C
        xt = x + n0 * C
        # The tile's centre (per channel, the mean of up to 16 of its first h
        # rows) and the column sums of the first window's centred rows.
        if real_t is float:
            fw_centre_f32(xt + m0 * WC, WC, tw, C, h, cs1, cc)
        else:
            fw_centre_f64(xt + m0 * WC, WC, tw, C, h, cs1, cc)
        for j in range(tw):
            cen[j] = cc[j % C]
        if real_t is float:
            fw_init_f32(xt + m0 * WC, WC, tw, C, h, cen, cs1, cs2)
        else:
            fw_init_f64(xt + m0 * WC, WC, tw, C, h, cen, cs1, cs2)
        for m in range(m0, m1):
            if real_t is float:
                if fused and fw_rowcn_f32(xt + (m + h - 1) * WC, xt + (m - 1) * WC if m > m0 else NULL, cc[0], cs1,
                                          cs2, s1, s2, tw, w, num + m * Wo + n0, num + m * Wo + n0, nout, tvar[0],
                                          nw, FLAT_TOL_C) == 0:
                    continue
            if m > m0:
                if real_t is float:
                    fw_update_f32(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
                else:
                    fw_update_f64(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
            if C == 1 and T == 1 and method != MOMENTS:
                if method == CCOEFF:
                    continue
                fw_sums(cs1, cs2, s1, s2, 1, w, nout)
                if real_t is float:
                    fw_finish1_f32(num + m * Wo + n0, s1, s2, cc[0], tmean[0], tvar[0], tsq[0], method, nout,
                                   nw, FLAT_TOL_C)
                else:
                    fw_finish1_f64(num + m * Wo + n0, s1, s2, cc[0], tmean[0], tvar[0], tsq[0], method, nout,
                                   nw, FLAT_TOL_C)
                continue
            fw_row(cs1, cs2, s1, s2, rv, rq, rmu, cc, C, w, nout, nw, FLAT_TOL_C)
            if method == MOMENTS:
                for n in range(nout):
                    var_out[m * Wo + n0 + n] = rv[n]
                    for c in range(C):
                        mean_out[(m * Wo + n0 + n) * C + c] = rmu[n * C + c]
                continue
            if method == CCOEFF:
                continue
            for t in range(T):
                if real_t is float:
                    fw_combine_f32(num + (t * Ho + m) * Wo + n0, rv, rq, rmu, tmean + t * C, tvar[t], tsq[t],
                                   method, C, nout, nw)
                else:
                    fw_combine_f64(num + (t * Ho + m) * Wo + n0, rv, rq, rmu, tmean + t * C, tvar[t], tsq[t],
                                   method, C, nout, nw)
    free(cs1)
    free(cs2)
    free(cen)
    free(s1)
    free(s2)
    free(rv)
    free(rq)
    free(rmu)
    free(cc)
    return status


cdef class _Tiles:
    """One call's tiles, claimed by every thread that runs :meth:`work`."""

    cdef object keep                 # the arrays the pointers below point into
    cdef const void* x
    cdef bint f32
    cdef Py_ssize_t H, WC, C, h, w, T, band, bc
    cdef void* num
    cdef const double* tmean
    cdef const double* tvar
    cdef const double* tsq
    cdef int method
    cdef double* var_out
    cdef double* mean_out
    cdef Py_ssize_t next_tile

    def work(self):
        """Compute tiles until none is left unclaimed; 0, or -1 (no memory)."""
        cdef int status
        with nogil:
            if self.f32:
                status = run_tiles(<const float*> self.x, self.H, self.WC, self.C, self.h, self.w,
                                   <float*> self.num, self.T, self.tmean, self.tvar, self.tsq, self.method,
                                   self.var_out, self.mean_out, self.band, self.bc, &self.next_tile)
            else:
                status = run_tiles(<const double*> self.x, self.H, self.WC, self.C, self.h, self.w,
                                   <double*> self.num, self.T, self.tmean, self.tvar, self.tsq, self.method,
                                   self.var_out, self.mean_out, self.band, self.bc, &self.next_tile)
        return status


_pool = GrowingPool("fastcorr-window")
_executor = _pool.executor


cdef _run(_Tiles job, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t scores_count, int num_threads):
    """Run a call's tiles on up to ``num_threads`` threads (this one included).

    Not an OpenMP team: each thread claims tiles from a shared counter, and
    this thread waits only for tiles another thread has claimed. A helper
    that the system has not scheduled yet when the tiles run out is
    cancelled instead of waited for; an OpenMP team's barrier would wait for
    it (with GNU OpenMP's spinning threads holding the cores, a scheduler
    time slice, ~20 ms, when another process is busy on the machine).
    """
    cdef Py_ssize_t nblocks
    cdef int nt = max(1, min(num_threads, scores_count // MIN_SCORES_PER_THREAD))
    if not FW_HAVE_ATOMIC:
        nt = 1
    job.bc = block_cols(Wo, job.w)
    nblocks = (Wo + job.bc - 1) // job.bc
    job.band = band_rows(Ho, job.h, nblocks, nt)
    job.next_tile = 0
    if nt == 1:
        status = job.work()
    else:
        pool = _executor(nt - 1)
        helpers = [pool.submit(job.work) for _ in range(nt - 1)]
        status = job.work()
        for f in helpers:
            if not f.cancel():
                status = min(status, f.result())
    if status != 0:
        raise MemoryError("fastcorr window: could not allocate row buffers")


def _check(x, Py_ssize_t channels, Py_ssize_t h, Py_ssize_t w):
    H, WC = x.shape[0], x.shape[1]
    if channels < 1 or WC % channels:
        raise ValueError(f"x has {WC} columns, not a multiple of channels={channels}")
    if h < 1 or w < 1 or H < h or WC // channels < w:
        raise ValueError(f"window {(h, w)} does not fit in an image of {(H, WC // channels)}")
    return H - h + 1, WC // channels - w + 1


cdef _Tiles _job(x, Py_ssize_t channels, Py_ssize_t h, Py_ssize_t w, int method):
    cdef _Tiles job = _Tiles()
    cdef const float[:, ::1] xf
    cdef const double[:, ::1] xd
    job.f32 = x.dtype == np.float32
    if job.f32:
        xf = x
        job.x = &xf[0, 0]
    else:
        xd = x
        job.x = &xd[0, 0]
    job.H, job.WC, job.C, job.h, job.w, job.method = x.shape[0], x.shape[1], channels, h, w, method
    job.T = 0
    job.num = NULL
    job.tmean = job.tvar = job.tsq = NULL
    job.var_out = job.mean_out = NULL
    return job


def scores(x, Py_ssize_t channels, Py_ssize_t h, Py_ssize_t w, num, tmean, tvar, tsq, int method,
           int num_threads):
    """Turn correlations with zero-mean templates into scores, in place.

    Parameters
    ----------
    x : (H, W*channels) float32 or float64, C-contiguous
        The image, channels interleaved.
    channels, h, w : int
        Channels, and the window (template) height and width.
    num : (T, H-h+1, W-w+1), x's dtype, C-contiguous
        In: ``sum_c corr(x_c, t_c - mean(t_c))`` per template; out: scores.
    tmean : (T, channels) float64
        Per template and channel, the template's mean.
    tvar, tsq : (T,) float64
        Per template, ``sum (t - mean)**2`` and ``sum t**2`` over its
        pixels and channels (tvar exactly 0 for a flat template).
    method : int
        OpenCV's code: 0 sqdiff, 1 sqdiff_normed, 2 ccorr, 3 ccorr_normed,
        4 ccoeff, 5 ccoeff_normed.
    num_threads : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> x = np.array([[1.0, 2.0, 3.0, 4.0]]); t = np.array([[1.0, 2.0]])
    >>> num = np.array([[[0.5, 0.5, 0.5]]])          # corr(x, t - 1.5)
    >>> window.scores(x, 1, 1, 2, num, np.array([[1.5]]), np.array([0.5]), np.array([5.0]), 5, 1)
    >>> num
    array([[[1., 1., 1.]]])
    """
    if x.dtype not in (np.float32, np.float64) or num.dtype != x.dtype:
        raise ValueError(f"x and num must share a float32 or float64 dtype, got {x.dtype} and {num.dtype}")
    Ho, Wo = _check(x, channels, h, w)
    if num.ndim != 3 or num.shape[1:] != (Ho, Wo) or not num.flags.c_contiguous or not num.flags.writeable:
        raise ValueError(f"num must be a writeable C-contiguous (T, {Ho}, {Wo}) array, got shape {num.shape}")
    T = num.shape[0]
    cdef const double[:, ::1] tm = tmean
    cdef const double[::1] tv = tvar
    cdef const double[::1] ts = tsq
    if tm.shape[0] != T or tm.shape[1] != channels or tv.shape[0] != T or ts.shape[0] != T:
        raise ValueError("tmean, tvar and tsq must hold one entry per template (and channel)")
    if method < 0 or method > 5:
        raise ValueError(f"method code {method} is not one of 0-5")
    if T == 0:
        return
    cdef _Tiles job = _job(x, channels, h, w, method)
    cdef float[:, :, ::1] nf
    cdef double[:, :, ::1] nd
    if job.f32:
        nf = num
        job.num = &nf[0, 0, 0]
    else:
        nd = num
        job.num = &nd[0, 0, 0]
    job.T = T
    job.tmean = &tm[0, 0]
    job.tvar = &tv[0]
    job.tsq = &ts[0]
    job.keep = (x, num, tm, tv, ts)
    _run(job, Ho, Wo, T * Ho * Wo, num_threads)


def moments(x, Py_ssize_t channels, Py_ssize_t h, Py_ssize_t w, int num_threads):
    """Per window: the per-channel means and the centred sum of squares.

    Returns ``(mean, var)``: float64 arrays of shape (H-h+1, W-w+1,
    channels) and (H-h+1, W-w+1), ``var = sum_c sum (x_c - mean_c)**2``
    over the window (0 where the window is flat, see ``FLAT_TOL``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> mean, var = window.moments(1e4 + np.array([[0.0, 1.0, 2.0, 3.0]]), 1, 1, 2, 1)
    >>> mean[0, :, 0], var[0]
    (array([10000.5, 10001.5, 10002.5]), array([0.5, 0.5, 0.5]))
    """
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    Ho, Wo = _check(x, channels, h, w)
    mean = np.empty((Ho, Wo, channels), np.float64)
    var = np.empty((Ho, Wo), np.float64)
    cdef double[:, :, ::1] mv = mean
    cdef double[:, ::1] vv = var
    cdef _Tiles job = _job(x, channels, h, w, MOMENTS)
    job.var_out = &vv[0, 0]
    job.mean_out = &mv[0, 0, 0]
    job.keep = (x, mean, var)
    _run(job, Ho, Wo, Ho * Wo, num_threads)
    return mean, var


cdef int run_block(const real_t* x, Py_ssize_t WC, Py_ssize_t h, Py_ssize_t w, Py_ssize_t Wo,
                   const real_t* src, Py_ssize_t tile_stride, Py_ssize_t row_stride, Py_ssize_t ntiles,
                   real_t* out, Py_ssize_t row0, Py_ssize_t rows, Py_ssize_t col0, Py_ssize_t B1,
                   double tmean, double tvar, double tsq, int method, int* nonfinite) noexcept nogil:
    """:func:`finish_block`'s loop: each correlation tile's columns in window
    tiles of at most ``block_cols`` columns (each with its own centre, as
    :func:`run_tiles`: a centre that follows the image's level across it)."""
    cdef double nw = <double> h * <double> w
    cdef Py_ssize_t bc = block_cols(B1, w)
    cdef Py_ssize_t bmax = bc + bc // 2 + 1         # the widest window tile (window_step)
    cdef Py_ssize_t wide = bmax + w - 1
    cdef Py_ssize_t j, m, n, n0, nout, tw, sub, span, step
    cdef const real_t* xt
    cdef const real_t* sj
    cdef double* cs1 = <double*> malloc((wide + 1) * sizeof(double))
    cdef double* cs2 = <double*> malloc((wide + 1) * sizeof(double))
    cdef double* cen = <double*> malloc(wide * sizeof(double))
    cdef double* s1 = <double*> malloc((wide + 8) * sizeof(double))
    cdef double* s2 = <double*> malloc((wide + 8) * sizeof(double))
    cdef double cc[1]
    cdef int status = 0
    cdef bint fused = real_t is float and method == CCOEFF_NORMED
    if cs1 == NULL or cs2 == NULL or cen == NULL or s1 == NULL or s2 == NULL:
        status = -1
    else:
        for j in range(ntiles):
            if col0 + j * B1 >= Wo:
                break
            # the tile's columns in equal window tiles of about bc (window_step; not bc
            # and a sliver: each window tile restarts its sums from h rows)
            span = min(B1, Wo - col0 - j * B1)
            step = window_step(span, bc)
            sub = -step
            while sub + step < span:
                sub += step
                n0 = col0 + j * B1 + sub
                nout = min(step, span - sub)
                sj = src + j * tile_stride + sub
                if method == CCOEFF:
                    for m in range(rows):
                        for n in range(nout):
                            out[(row0 + m) * Wo + n0 + n] = sj[m * row_stride + n]
                    continue
                tw = nout + w - 1
                xt = x + n0
                if real_t is float:
                    fw_centre_f32(xt + row0 * WC, WC, tw, 1, h, cs1, cc)
                else:
                    fw_centre_f64(xt + row0 * WC, WC, tw, 1, h, cs1, cc)
                for n in range(tw):
                    cen[n] = cc[0]
                if real_t is float:
                    fw_init_f32(xt + row0 * WC, WC, tw, 1, h, cen, cs1, cs2)
                else:
                    fw_init_f64(xt + row0 * WC, WC, tw, 1, h, cen, cs1, cs2)
                for m in range(row0, row0 + rows):
                    if real_t is float:
                        # s1, s2 serve as the fused row's scratch (its P sums)
                        if fused and fw_rowcn_f32(xt + (m + h - 1) * WC, xt + (m - 1) * WC if m > row0 else NULL,
                                                  cc[0], cs1, cs2, s1, s2, tw, w, sj + (m - row0) * row_stride,
                                                  out + m * Wo + n0, nout, tvar, nw, FLAT_TOL_C) == 0:
                            continue
                    if m > row0:
                        if real_t is float:
                            fw_update_f32(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
                        else:
                            fw_update_f64(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
                    fw_sums(cs1, cs2, s1, s2, 1, w, nout)
                    if real_t is float:
                        fw_finish1io_f32(sj + (m - row0) * row_stride, out + m * Wo + n0, s1, s2, cc[0], tmean,
                                         tvar, tsq, method, nout, nw, FLAT_TOL_C)
                    else:
                        fw_finish1io_f64(sj + (m - row0) * row_stride, out + m * Wo + n0, s1, s2, cc[0], tmean,
                                         tvar, tsq, method, nout, nw, FLAT_TOL_C)
                # A NaN or inf of the image that entered a column's sum of
                # squares leaves it NaN or inf for good (inf - inf is NaN):
                # the last row's column sums tell whether the window tile's
                # pixels were all finite.
                for n in range(tw):
                    if not isfinite(cs2[n]):
                        nonfinite[0] = 1
                        break
    free(cs1)
    free(cs2)
    free(cen)
    free(s1)
    free(s2)
    return status


def finish_block(x, Py_ssize_t h, Py_ssize_t w, src, out, Py_ssize_t row0, Py_ssize_t col0, Py_ssize_t B1,
                 double tmean, double tvar, double tsq, int method):
    """Scores of one block of output from correlations held in tiles (one
    channel, one template), on this thread, without the GIL.

    The block is output rows ``row0 .. row0 + R - 1`` and columns
    ``col0 .. col0 + J * B1 - 1`` (cut at the output's width), where
    ``src`` is (J, R, S >= B1), contiguous along its last axis, and
    ``src[j, r, n]`` holds ``corr(x, t - mean(t))`` at output
    ``(row0 + r, col0 + j * B1 + n)`` for ``r < src.shape[1]``, ``n < B1``.
    ``out`` (H-h+1, W-w+1), x's dtype, C-contiguous, receives the scores
    (OpenCV's ``method`` code, as :func:`scores`); ``x`` (H, W) is the
    image, float32 or float64, C-contiguous; tmean, tvar, tsq: the
    template's mean, centred and raw sums of squares.

    The window statistics are those of :func:`scores` (running sums about
    a centre per tile, in double precision); the correlation is read once,
    where it lies, and the score written once.

    Returns False when a NaN or inf of ``x`` reached the block's window
    sums (every image value under the block's windows does, except under
    method 4, 'ccoeff', which takes no window sums: True), else True. The
    scores are then meaningless: the caller decides what NaN means.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> x = np.array([[1.0, 2.0, 3.0, 4.0]]); out = np.zeros((1, 3))
    >>> src = np.full((2, 1, 2), 0.5)               # corr(x, t - 1.5), two tiles of 2 columns
    >>> window.finish_block(x, 1, 2, src, out, 0, 0, 2, 1.5, 0.5, 5.0, 5)
    True
    >>> out
    array([[1., 1., 1.]])
    """
    if x.dtype not in (np.float32, np.float64) or src.dtype != x.dtype or out.dtype != x.dtype:
        raise ValueError("x, src and out must share a float32 or float64 dtype")
    cdef Py_ssize_t Ho, Wo
    Ho, Wo = _check(x, 1, h, w)
    if out.ndim != 2 or out.shape[0] != Ho or out.shape[1] != Wo or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous ({Ho}, {Wo}) array, got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if src.ndim != 3 or src.strides[2] != src.itemsize or src.shape[2] < min(B1, Wo):
        raise ValueError("src must be (tiles, rows, >= B1 columns), contiguous along its rows")
    if method < 0 or method > 5:
        raise ValueError(f"method code {method} is not one of 0-5")
    cdef Py_ssize_t rows = src.shape[1], nt = src.shape[0]
    if B1 < 1 or row0 < 0 or col0 < 0 or row0 + rows > Ho or (nt > 0 and col0 + (nt - 1) * B1 >= Wo):
        raise ValueError("the block does not fit in the output")
    if rows == 0 or nt == 0:
        return True
    if src.strides[0] % src.itemsize or src.strides[1] % src.itemsize or src.strides[0] < 0 or src.strides[1] < 0:
        raise ValueError("src's strides must be whole, non-negative elements")
    cdef Py_ssize_t ts = src.strides[0] // src.itemsize, rs = src.strides[1] // src.itemsize
    cdef const float[:, ::1] xf
    cdef const double[:, ::1] xd
    cdef float[:, ::1] of
    cdef double[:, ::1] od
    cdef const float[:, :, :] sf
    cdef const double[:, :, :] sd
    cdef int status
    cdef int nonfinite = 0
    if x.dtype == np.float32:
        xf = x
        of = out
        sf = src
        with nogil:
            status = run_block(&xf[0, 0], xf.shape[1], h, w, Wo, &sf[0, 0, 0], ts, rs, nt, &of[0, 0], row0, rows,
                               col0, B1, tmean, tvar, tsq, method, &nonfinite)
    else:
        xd = x
        od = out
        sd = src
        with nogil:
            status = run_block(&xd[0, 0], xd.shape[1], h, w, Wo, &sd[0, 0, 0], ts, rs, nt, &od[0, 0], row0, rows,
                               col0, B1, tmean, tvar, tsq, method, &nonfinite)
    if status != 0:
        raise MemoryError("fastcorr window: could not allocate row buffers")
    return not nonfinite


cdef int run_rstd(const real_t* x, Py_ssize_t WC, Py_ssize_t h, Py_ssize_t w, real_t* r, Py_ssize_t rstride,
                  Py_ssize_t row0, Py_ssize_t rows, Py_ssize_t col0, Py_ssize_t ncols) noexcept nogil:
    """:func:`window_rstd`'s loop (the window sums of :func:`run_block`);
    0, 1 (a value out of float range, float32 only) or -1 (no memory)."""
    cdef double nw = <double> h * <double> w
    cdef Py_ssize_t bc = block_cols(ncols, w)
    cdef Py_ssize_t bmax = bc + bc // 2 + 1         # the widest window tile (window_step)
    cdef Py_ssize_t wide = bmax + w - 1
    cdef Py_ssize_t m, n, n0, nout, tw, sub, step
    cdef const real_t* xt
    cdef double* cs1 = <double*> malloc((wide + 1) * sizeof(double))
    cdef double* cs2 = <double*> malloc((wide + 1) * sizeof(double))
    cdef double* cen = <double*> malloc(wide * sizeof(double))
    cdef double* s1 = <double*> malloc(bmax * sizeof(double))
    cdef double* s2 = <double*> malloc(bmax * sizeof(double))
    cdef double cc[1]
    cdef int status = 0
    if cs1 == NULL or cs2 == NULL or cen == NULL or s1 == NULL or s2 == NULL:
        status = -1
    else:
        # equal window tiles of at most bc columns, each with its own centre
        step = window_step(ncols, bc)
        sub = 0
        while sub < ncols and status == 0:
            n0 = col0 + sub
            nout = min(step, ncols - sub)
            tw = nout + w - 1
            xt = x + n0
            if real_t is float:
                fw_centre_f32(xt + row0 * WC, WC, tw, 1, h, cs1, cc)
            else:
                fw_centre_f64(xt + row0 * WC, WC, tw, 1, h, cs1, cc)
            for n in range(tw):
                cen[n] = cc[0]
            if real_t is float:
                fw_init_f32(xt + row0 * WC, WC, tw, 1, h, cen, cs1, cs2)
            else:
                fw_init_f64(xt + row0 * WC, WC, tw, 1, h, cen, cs1, cs2)
            for m in range(row0, row0 + rows):
                if m > row0:
                    if real_t is float:
                        fw_update_f32(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
                    else:
                        fw_update_f64(xt + (m + h - 1) * WC, xt + (m - 1) * WC, cen, cs1, cs2, tw)
                fw_sums(cs1, cs2, s1, s2, 1, w, nout)
                if real_t is float:
                    if fw_rstd_f32(r + (m - row0) * rstride + sub, s1, s2, nout, nw, FLAT_TOL_C, 1):
                        status = 1
                        break
                else:
                    fw_rstd_f64(r + (m - row0) * rstride + sub, s1, s2, nout, nw, FLAT_TOL_C, 0)
            sub += step
    free(cs1)
    free(cs2)
    free(cen)
    free(s1)
    free(s2)
    return status


def window_rstd(x, Py_ssize_t h, Py_ssize_t w, r, Py_ssize_t row0, Py_ssize_t col0):
    """``1 / sqrt(V)`` of the windows at output rows ``row0 ..`` and columns
    ``col0 ..`` (``r``'s shape), 0 for a flat window; ``V`` is the window's
    centred sum of squares, by the running sums of :func:`scores`. One
    channel, on this thread, without the GIL. For a stack of templates
    under 'ccoeff_normed': :func:`apply_rstd` turns each template's
    correlations into scores with them.

    Returns False (``r`` unusable) when ``x`` is float32 and some window's
    value does not fit float32 comfortably (outside [1e-30, 1e30]).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> x = np.array([[1.0, 2.0, 3.0, 3.0]]); r = np.zeros((1, 3))
    >>> window.window_rstd(x, 1, 2, r, 0, 0)
    True
    >>> r                                            # 1/sqrt(0.5), and 0 for the flat window
    array([[1.41421356, 1.41421356, 0.        ]])
    """
    if x.dtype not in (np.float32, np.float64) or r.dtype != x.dtype:
        raise ValueError("x and r must share a float32 or float64 dtype")
    cdef Py_ssize_t Ho, Wo
    Ho, Wo = _check(x, 1, h, w)
    if r.ndim != 2 or not r.flags.c_contiguous or not r.flags.writeable:
        raise ValueError("r must be a writeable C-contiguous 2-D array")
    cdef Py_ssize_t rows = r.shape[0], ncols = r.shape[1]
    if row0 < 0 or col0 < 0 or row0 + rows > Ho or col0 + ncols > Wo:
        raise ValueError("the block does not fit in the output")
    if rows == 0 or ncols == 0:
        return True
    cdef const float[:, ::1] xf
    cdef const double[:, ::1] xd
    cdef float[:, ::1] rf
    cdef double[:, ::1] rd
    cdef int status
    if x.dtype == np.float32:
        xf = x
        rf = r
        with nogil:
            status = run_rstd(&xf[0, 0], xf.shape[1], h, w, &rf[0, 0], ncols, row0, rows, col0, ncols)
    else:
        xd = x
        rd = r
        with nogil:
            status = run_rstd(&xd[0, 0], xd.shape[1], h, w, &rd[0, 0], ncols, row0, rows, col0, ncols)
    if status < 0:
        raise MemoryError("fastcorr window: could not allocate row buffers")
    return status == 0


def apply_rstd(src, out, r, Py_ssize_t row0, Py_ssize_t col0, Py_ssize_t B1, double rs):
    """'ccoeff_normed' scores of one block from correlations held in tiles
    (``src`` and the block as :func:`finish_block`) and the windows'
    ``1 / sqrt(V)`` (``r``, from :func:`window_rstd`, the block's shape):
    ``out = clamp(src * rs * r, -1, 1)``, ``rs = 1 / sqrt(tvar)`` (0 for a
    flat template), computed in ``out``'s dtype. Without the GIL.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> out = np.zeros((1, 3)); r = np.array([[2.0, 2.0, 0.0]])
    >>> window.apply_rstd(np.full((2, 1, 2), 0.5), out, r, 0, 0, 2, 1.0)
    >>> out
    array([[1., 1., 0.]])
    """
    if src.dtype != out.dtype or r.dtype != out.dtype or out.dtype not in (np.float32, np.float64):
        raise ValueError("src, out and r must share a float32 or float64 dtype")
    if out.ndim != 2 or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous 2-D array")
    if src.ndim != 3 or src.strides[2] != src.itemsize or src.strides[0] < 0 or src.strides[1] < 0:
        raise ValueError("src must be (tiles, rows, >= B1 columns), contiguous along its rows")
    if src.strides[0] % src.itemsize or src.strides[1] % src.itemsize:
        raise ValueError("src's strides must be whole elements")
    if r.ndim != 2 or not r.flags.c_contiguous:
        raise ValueError("r must be a C-contiguous 2-D array")
    cdef Py_ssize_t Ho = out.shape[0], Wo = out.shape[1]
    cdef Py_ssize_t rows = r.shape[0], ncols = r.shape[1], nt = src.shape[0]
    if B1 < 1 or row0 < 0 or col0 < 0 or row0 + rows > Ho or col0 + ncols > Wo or src.shape[1] < rows:
        raise ValueError("the block does not fit in the output")
    if nt * B1 < ncols or (nt > 0 and src.shape[2] < min(B1, ncols)):
        raise ValueError("src does not hold the block's columns")
    if rows == 0 or ncols == 0:
        return
    cdef Py_ssize_t ts = src.strides[0] // src.itemsize, rs_ = src.strides[1] // src.itemsize
    cdef Py_ssize_t j, m, c0, span
    cdef const float[:, :, :] sf
    cdef const double[:, :, :] sd
    cdef float[:, ::1] of
    cdef double[:, ::1] od
    cdef const float[:, ::1] rf
    cdef const double[:, ::1] rd
    cdef float rsf = <float> rs
    if out.dtype == np.float32:
        sf, of, rf = src, out, r
        with nogil:
            for j in range((ncols + B1 - 1) // B1):
                c0 = j * B1
                span = min(B1, ncols - c0)
                for m in range(rows):
                    fw_apply_f32(&sf[0, 0, 0] + j * ts + m * rs_, &of[row0 + m, col0 + c0], &rf[m, c0], rsf, span)
    else:
        sd, od, rd = src, out, r
        with nogil:
            for j in range((ncols + B1 - 1) // B1):
                c0 = j * B1
                span = min(B1, ncols - c0)
                for m in range(rows):
                    fw_apply_f64(&sd[0, 0, 0] + j * ts + m * rs_, &od[row0 + m, col0 + c0], &rd[m, c0], rs, span)


def template_constants(templates):
    """Per template of a (T, h, w, C) float64 C-contiguous stack: ``(tmean,
    tz, tvar, tsq)``, the channel means (T, C) (two passes: the mean of the
    values less the first mean corrects its rounding), the zero-mean
    templates (T, h, w, C) (exactly 0 on a constant channel), their sum of
    squares (T,) (exactly 0 for a flat template) and the raw sum of
    squares (T,). One pass of compiled loops per quantity, for the small
    arrays of template matching (numpy's reductions cost more in calls
    than in arithmetic there).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> t = np.array([[1.0, 2.0], [3.0, 6.0]]).reshape(1, 2, 2, 1)
    >>> tmean, tz, tvar, tsq = window.template_constants(t)
    >>> tmean, tz.ravel(), tvar, tsq
    (array([[3.]]), array([-2., -1.,  0.,  3.]), array([14.]), array([50.]))
    """
    cdef const double[:, :, :, ::1] a = templates
    cdef Py_ssize_t T = a.shape[0], h = a.shape[1], w = a.shape[2], C = a.shape[3]
    cdef Py_ssize_t n = h * w, t, c, i
    tmean = np.empty((T, C), np.float64)
    tz = np.empty((T, h, w, C), np.float64)
    tvar = np.zeros(T, np.float64)
    tsq = np.zeros(T, np.float64)
    cdef double[:, ::1] mv = tmean
    cdef double[:, :, :, ::1] zv = tz
    cdef double[::1] vv = tvar
    cdef double[::1] qv = tsq
    cdef const double* src
    cdef double* dst
    cdef double s, m, lo, hi, v, q, fix
    if n == 0:
        return tmean, tz, tvar, tsq
    with nogil:
        for t in range(T):
            for c in range(C):
                src = &a[t, 0, 0, 0] + c
                dst = &zv[t, 0, 0, 0] + c
                s = 0.0
                lo = src[0]
                hi = src[0]
                q = 0.0
                for i in range(n):
                    v = src[i * C]
                    s += v
                    q += v * v
                    lo = min(lo, v)
                    hi = max(hi, v)
                m = s / n
                s = 0.0
                for i in range(n):
                    s += src[i * C] - m
                fix = s / n     # the centred values less their mean: exact to their own rounding
                if lo == hi:  # a constant channel: its zero-mean template is exactly 0
                    for i in range(n):
                        dst[i * C] = 0.0
                else:
                    s = 0.0
                    for i in range(n):
                        v = (src[i * C] - m) - fix
                        dst[i * C] = v
                        s += v * v
                    vv[t] += s
                mv[t, c] = m + fix
                qv[t] += q
    return tmean, tz, tvar, tsq


def level_and_spread(plane, Py_ssize_t step):
    """(mean, standard deviation) in float64 of ``plane[::step, ::step]``
    (a 2-D float32 or float64 array, any strides).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import window
    >>> window.level_and_spread(np.array([[1.0, 9.0, 3.0], [5.0, 0.0, 5.0]]), 2)
    (2.0, 1.0)
    """
    if plane.ndim != 2 or plane.dtype not in (np.float32, np.float64):
        raise ValueError("plane must be a 2-D float32 or float64 array")
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    cdef const float[:, :] pf
    cdef const double[:, :] pd
    cdef Py_ssize_t H = plane.shape[0], W = plane.shape[1], i, j, n = 0
    cdef double s = 0.0, q = 0.0, m, v
    cdef bint f32 = plane.dtype == np.float32
    if H == 0 or W == 0:
        return float("nan"), float("nan")
    if f32:
        pf = plane
    else:
        pd = plane
    cdef Py_ssize_t rows = (H + step - 1) // step, cols = (W + step - 1) // step
    with nogil:
        for i in range(rows):
            for j in range(cols):
                s += pf[i * step, j * step] if f32 else pd[i * step, j * step]
        n = rows * cols
        m = s / n
        for i in range(rows):
            for j in range(cols):
                v = (pf[i * step, j * step] if f32 else pd[i * step, j * step]) - m
                q += v * v
    return m, sqrt(q / n)
