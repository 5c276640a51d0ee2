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
passes (DESIGN §5). Short row kernels (3 to 5 taps) without a certainty map
skip the prepared copy inside the image: ``nk_prow`` replaces the missing
pixels of each vector of the data row in registers and makes both row
passes from it.

Output rows are processed in chunks, one per OpenMP task, each thread
keeping the last kh horizontal passes of both inputs in a ring of rows (two
of ``kh x Wo``, bounded whatever the image's height), so that each input
row is prepared and passed once. The loops are the separable method's
(``_simd/sep_kernels.h``) and normalized convolution's pointwise ones
(``_simd/norm_kernels.h``).
"""
from cython.parallel cimport prange, parallel, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
cimport numpy as cnp
import numpy as np

cnp.import_array()

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
    void nk_row_f32(float* out, const float* ext, const float* v, Py_ssize_t kw, Py_ssize_t n)
    void nk_row_f64(double* out, const double* ext, const double* v, Py_ssize_t kw, Py_ssize_t n)
    void nk_col2_f32(float* no, float* dno, const float* const* rp, const float* const* rc, const float* u,
                     Py_ssize_t kh, Py_ssize_t n)
    void nk_col2_f64(double* no, double* dno, const double* const* rp, const double* const* rc,
                     const double* u, Py_ssize_t kh, Py_ssize_t n)
    void nk_col2x4_f32(float* const* no, float* const* dno, const float* const* rp, const float* const* rc,
                       const float* u, Py_ssize_t kh, Py_ssize_t n)
    void nk_col2x4_f64(double* const* no, double* const* dno, const double* const* rp, const double* const* rc,
                       const double* u, Py_ssize_t kh, Py_ssize_t n)
    int nk_sden_f32(float* out, const float* ec, Py_ssize_t next_, const float* vr, Py_ssize_t kw,
                    Py_ssize_t kwp, float vsum, Py_ssize_t n, Py_ssize_t cap)
    int nk_sden_f64(double* out, const double* ec, Py_ssize_t next_, const double* vr, Py_ssize_t kw,
                    Py_ssize_t kwp, double vsum, Py_ssize_t n, Py_ssize_t cap)
    Py_ssize_t nk_finish1_f32(float* out, const float* num, const float* den, const float* x, Py_ssize_t n,
                              float zt, float scale, float mcentre, int preserve, int stream)
    Py_ssize_t nk_finish1_f64(double* out, const double* num, const double* den, const double* x, Py_ssize_t n,
                              double zt, double scale, double mcentre, int preserve, int stream)
    Py_ssize_t nk_col2x4fin_f32(float* const* o, const float* const* x, const float* const* rp,
                                const float* const* rc, const float* u, Py_ssize_t kh, Py_ssize_t n, float zt,
                                float scale, float mcentre, int preserve, int stream)
    Py_ssize_t nk_col2x4fin_f64(double* const* o, const double* const* x, const double* const* rp,
                                const double* const* rc, const double* u, Py_ssize_t kh, Py_ssize_t n, double zt,
                                double scale, double mcentre, int preserve, int stream)
    int nk_lean_fin
    int nk_nanc_fin
    int nk_use_avx512
    int nk_col512
    int nk_fin512
    int nk_prow512
    Py_ssize_t nk_prow_lanes(int is_double)
    Py_ssize_t nk_prow_from(Py_ssize_t n, Py_ssize_t L)
    void nk_prow_f32(float* outp, float* outc, const float* ep, const float* ec, const float* xr, Py_ssize_t a,
                     Py_ssize_t b, const float* v, Py_ssize_t kw, Py_ssize_t n, float mp, float mc, Py_ssize_t pf)
    void nk_prow_f64(double* outp, double* outc, const double* ep, const double* ec, const double* xr,
                     Py_ssize_t a, Py_ssize_t b, const double* v, Py_ssize_t kw, Py_ssize_t n, double mp,
                     double mc, Py_ssize_t pf)
    int nk_cpu_has_avx512()
    void nk_prepf_f32(float* prod, float* cert, const float* x, Py_ssize_t n, float mv, float mc, Py_ssize_t pf)
    void nk_prepf_f64(double* prod, double* cert, const double* x, Py_ssize_t n, double mv, double mc,
                      Py_ssize_t pf)
    int nk_col_pf
    int nk_row_shuffle
    void nk_rowa_f32(float* out, const float* const* e4, const float* ext, const float* v, Py_ssize_t kw,
                     Py_ssize_t n)
    void nk_rowa_f64(double* out, const double* const* e4, const double* ext, const double* v, Py_ssize_t kw,
                     Py_ssize_t n)
    void nk_copies_f32(float* const* e4, Py_ssize_t nc, Py_ssize_t length)
    void nk_copies_f64(double* const* e4, Py_ssize_t nc, Py_ssize_t length)
    int nk_rowa_available()
    void nk_fence()
    void nk_prefetch(const void* p, Py_ssize_t nbytes)
    int NK_SDEN_ALIGN
    int fc_cpu_has_avx2_fma()

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache
nk_cpu_has_avx512()

ctypedef fused real_t:
    float
    double

#: The last call's tasks, and how many of them ran on a thread other than
#: the caller's (none: the team's other threads did not start in time).
#: Not exact when Python threads call at once (read by the engine's rule
#: for calls after an idle gap, a heuristic).
last_tasks = 0
last_helped = 0

#: Edge rules: a fill value (certain or not, as the caller says), periodic,
#: or the edge sample repeated (astropy's 'extend').
EDGE_FILL = 0
EDGE_WRAP = 1
EDGE_EXTEND = 3

#: Bytes of the two rings of horizontal passes per thread: wider images
#: are cut in strips of columns (a core's L2 cache is 1 MiB here).
RING_BYTES = 512 * 1024
#: Tasks of rows per thread (the late ones balance the load).
TASKS_PER_THREAD = 2
#: Narrowest strip (the kernel's halo is recomputed on each).
MIN_STRIP = 128
#: Kernel widths from which the certainty's row pass is sparse (a scatter
#: around the pixels of certainty other than 1) where few such pixels are.
SPARSE_MIN_TAPS = 12
#: Results from this size up are written with non-temporal stores (not
#: read back by the call: streaming them saves reading each cache line
#: from memory before it is written).
STREAM_MIN_BYTES = 4 << 20
#: Prefetch the input row this many rows ahead while preparing each row
#: (0 or False: none).
PREFETCH = True
#: Where there is no certainty map: those prefetches spread over the
#: preparation of the row (one a cache line, with its loads: ``nk_prepf``)
#: rather than issued in a burst after it (128 prefetch instructions a
#: 1024-wide float64 row, which stalled on the core's miss buffers: 5-6% of
#: the call in its own loop). 1024² 5% NaN Gaussian 5x5 float64, 1 thread,
#: CPU time, medians of 61 calls alternated in one process, a loaded machine
#: (session 16): 2.21 -> 2.08 ms and 2.37 -> 2.22 ms (minima 2.07 -> 1.93,
#: 2.03 -> 1.94); the same bits. Distances of 2 and 4 rows measured the same.
PREFETCH_INLINE = True
#: Run the vertical passes and division (``nk_col2x4fin``'s NaN-centre form)
#: compiled for AVX-512VL where the CPU has it: the same 256-bit
#: instructions and bits, but 32 vector registers, so its eight sums,
#: sliding weights and constants are not spilled to the stack (34 stack
#: accesses in the loop's code with AVX2's 16 registers, 7 with 32). Same
#: measurement as PREFETCH_INLINE: 2.52 -> 2.42 and 2.22 -> 2.18 ms
#: (minima 2.25 -> 2.04, 1.94 -> 1.83).
AVX512_SWEEP = True
#: Row kernels of 3 to 5 taps without a certainty map: both row passes made
#: from the data row itself (``nk_prow``), not from a prepared copy.
MERGE_ROWS = True
#: The vertical passes four rows at a time (without the division: kernels
#: taller than FUSE_FINISH_MAX_KH) on AVX-512 where the CPU has it: 0, the
#: AVX2 loop; 1, that loop with 32 registers; 2, 512-bit vectors (a whole
#: cache line of each of the 2 (kh + 3) ring rows a load; the same bits).
#: 1024² 5% NaN Gaussian 101x101, 1 thread, CPU medians alternated in one
#: process (loaded machine, session 16): float64 26.3 (0) / 26.2 (1) /
#: 23.0 (2) ms, again 21.0 / - / 19.6; float32 10.9 / - / 10.2.
COL_AVX512 = 2
#: The vertical passes with the division (``nk_col2x4fin``'s NaN-centre
#: form) on 512-bit vectors where AVX-512 is (with AVX512_SWEEP), selects by
#: mask registers; the same bits. 1024² 5% NaN Gaussian 5x5, 1 thread, CPU
#: medians of 61 alternated in one process (loaded machine, session 16):
#: float64 2.68 -> 2.48 ms (minima 1.86 -> 1.67), float32 1.21 -> 1.07.
#: (Session 14 measured no gain from AVX-512 copies of this sweep; that
#: was before the row passes read the data directly and the prefetches
#: were spread.)
FIN_ZMM = True
#: nk_prow's columns up to the last block of 8 vectors on 512-bit vectors
#: (``nk_prowz``: valign for the shifts; the same bits) where AVX-512 is
#: (with AVX512_SWEEP). Same measurement: float64 1.67 -> 1.62 ms (101
#: calls each; 1.94 -> 1.96 in a run of 61), float32 1.00 -> 0.91.
ROW_ZMM = True
#: Row kernels from this many taps are passed over aligned shifted copies
#: of each prepared row (``nk_rowa``: no load crosses a cache line), by the
#: data's dtype character; 0: never. The copies cost their making (4 of a
#: float64 row, 8 of a float32 one): 1024² 5% NaN Gaussian, 1 thread, CPU
#: medians of 41 alternated in one process (session 15): float64 101x101
#: 1.04-1.05x, 51x51 0.96x, 31x31 0.99x, 11x11 0.96x; float32 101x101 and
#: 51x51 1.00x, 31x31 0.97x.
ALIGNED_ROW_MIN_TAPS = {"d": 64, "f": 0}
#: Rows wholly outside the image with a fill boundary, in a run (half a
#: kernel's height at the top and bottom of each strip): the passes of the
#: first copied to the others instead of preparing and passing each (the
#: same bits; 1024² 101x101, 1 thread: float64 1.02x, float32 1.04x).
FILL_ROWS_CONSTANT = True
#: Row kernels of 3 to 5 taps: the row pass loads each vector of the row
#: once and makes its shifts in registers (``nk_row``; the same bits).
ROW_SHUFFLE = True
#: Whether the vertical passes prefetch the ring rows' next cache lines
#: (``NK_PF`` vectors ahead, every ring row once a line). They do not: the
#: hardware's prefetchers keep up, and the 2 (kh + 3) prefetches a line cost
#: more than they hide (1024² 5% NaN Gaussian, 1 thread, CPU time, medians
#: of 21 alternated in one process, session 15: float64 5x5 1.06x faster
#: without, 11x11 1.09x, 31x31 1.07x, 101x101 1.16x; float32 1.10x, 1.12x
#: (31x31), 1.13x (101x101); the loop alone 1.2-1.35x).
COL_PREFETCH = False
#: Run the vertical passes of four output rows and their division in one
#: sweep (``nk_col2x4fin``: no certainty map in or out, AVX2).
FUSE_FINISH = True
#: Columns per call of that sweep (the whole strip: 256-column blocks
#: measured 0.8-0.95x of it).
FIN_BLOCK = 1 << 30
#: Kernel heights up to which that sweep runs: 1024² 5% NaN, Gaussian, 1
#: thread, CPU time against the separate passes (min of 41 alternated):
#: float64 5x5 1.69x, 11x11 1.48x, 31x31 1.15x, 101x101 1.02x; float32
#: 1.24x, 1.20x, 1.12x, 0.97x.
FUSE_FINISH_MAX_KH = 64
#: Whether that sweep streams a large result (non-temporal stores). It
#: does not: its stores come between the multiply-adds, and plain stores
#: measured 5-15% faster there (1024² float64 5x5 and 11x11, 1 thread, the
#: result at several alignments), where the separate division pass gains
#: from streaming.
FIN_STREAM = False
#: That sweep's lean form for the common call (a normalised kernel, no
#: preserve_nan, plain stores): no scaling, NaN results flagged rather than
#: counted on the way (``nk_col2x4fin_lean``; 1024² 5% NaN Gaussian 5x5
#: float64, 1 thread: 2-4% less CPU time, the same bits).
LEAN_FINISH = True
#: That lean form where a missing pixel's own value is NaN (nan_treatment
#: 'interpolate'): an output with no certain pixel under the kernel is the
#: pixel itself, so one select and no test of x (``nk_col2x4fin_nanc``;
#: 1024² float64 5x5 and 11x11, the loop alone, 1 thread: 1.08-1.11x, the
#: same bits). False: the lean form for every call.
NANC_FINISH = True
#: Tried on this sweep in session 14 and measured no gain (1024² 5% NaN
#: Gaussian 5x5 float64, 1 thread, CPU time alternated in one process, a
#: loaded machine): a sparse denominator (sum(k) minus the kernel scattered
#: around each missing pixel: 1.3-1.4x slower, its scan mispredicts and its
#: read-modify-writes overlap); division by a Newton reciprocal (1.15x
#: slower: the divider is not the limit); non-temporal result stores (1.3x
#: slower after astropy); AVX-512 copies of the row pass and this sweep
#: (half the instructions, 0.97-1.0x); symmetric kernels' folded taps (half
#: the multiply-adds, 1.0x). The float32 sweep takes 0.4x the float64 time.
#: Tried in session 15 without gain: the vertical passes' symmetric taps
#: folded (pair added, one multiply-add; also with 32 registers: 0.95-1.0x
#: in the loop alone, the adds do not run beside the multiply-adds here);
#: the certainty's sparse row pass with its outputs in registers (1.6x in
#: the loop alone, 0.90-1.02x in the call); the kernel's height a constant
#: for 5 rows (0.95x); the result rows' lines prefetched for writing
#: (1.0-1.02x); 1 MiB or 256 KiB rings (0.98-1.01x); the fused division up
#: to 128 rows (1.00x at 101x101); results not streamed at 101x101 (0.98x).
#: Tried in session 16 without gain (1024² 5% NaN Gaussian 5x5 float64, 1
#: thread, CPU medians alternated in one process, a loaded machine):
#: non-temporal result stores in the fused division (2.30 -> 2.98 ms in a
#: loop, 2.5 -> 3.0 after astropy's convolve_fft with ``out=``: plain
#: stores leave the write-back to after the call); the certainty's row
#: pass as masked adds (its 0/1 values select the taps: the same bits, off
#: the multiply-add units; 2.37 -> 2.41 ms); nk_prow unrolled for a
#: constant 5 or 3 taps (1.73 -> 1.72); prefetch distances of 2-4 rows or
#: into L1 (the same within noise); rings of 16-64 KiB (strips of columns)
#: against 512 KiB (the same). The 5x5 sweep is not bound by memory in a
#: loop: 1.26 ns a pixel at 1024² against 1.49 at 512² (1 thread).


#: Columns per block of the vertical passes four rows at a time (both sums'
#: four rows of a block stay in the L1 cache until they are finished).
cdef enum:
    COL_BLOCK = 256


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
        nk_row_f32(o, e, v, kw, n)
    else:
        nk_row_f64(o, e, v, kw, n)


cdef inline void row_pass_aligned(real_t* o, real_t** e4, const real_t* v, Py_ssize_t kw, Py_ssize_t n,
                                  Py_ssize_t next_) noexcept nogil:
    """row_pass from the aligned shifted copies of the row in e4[0] (made here)."""
    if real_t is float:
        nk_copies_f32(e4, 8, next_)
        nk_rowa_f32(o, <const float* const*> e4, e4[0], v, kw, n)
    else:
        nk_copies_f64(e4, 4, next_)
        nk_rowa_f64(o, <const double* const*> e4, e4[0], v, kw, n)


cdef inline void col_pass2(real_t* no, real_t* dno, const real_t** rp, const real_t** rc, const real_t* u,
                           Py_ssize_t kh, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        nk_col2_f32(no, dno, rp, rc, u, kh, n)
    else:
        nk_col2_f64(no, dno, rp, rc, u, kh, n)


cdef inline void col_pass2x4(real_t** no, real_t** dno, const real_t** rp, const real_t** rc, const real_t* u,
                             Py_ssize_t kh, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        nk_col2x4_f32(no, dno, rp, rc, u, kh, n)
    else:
        nk_col2x4_f64(no, dno, rp, rc, u, kh, n)


cdef inline void den_row_pass(real_t* o, const real_t* ec, Py_ssize_t next_, const real_t* v, const real_t* vr,
                              Py_ssize_t kw, Py_ssize_t kwp, real_t vsum, Py_ssize_t n,
                              Py_ssize_t cap) noexcept nogil:
    """The certainty's row pass: sparse (``nk_sden``) when ``vr`` is given
    and at most ``cap`` pixels of the row have a certainty other than 1."""
    cdef int dense = 1
    if vr != NULL:
        if real_t is float:
            dense = nk_sden_f32(o, ec, next_, vr, kw, kwp, vsum, n, cap)
        else:
            dense = nk_sden_f64(o, ec, next_, vr, kw, kwp, vsum, n, cap)
    if dense:
        row_pass(o, ec, v, kw, n)


cdef inline void prep(real_t* p, real_t* q, const real_t* x, const real_t* c, Py_ssize_t n,
                      real_t mv, real_t mc) noexcept nogil:
    cdef Py_ssize_t partial = 0
    if real_t is float:
        nk_prep_f32(p, q, x, c, n, mv, mc, &partial)
    else:
        nk_prep_f64(p, q, x, c, n, mv, mc, &partial)


cdef inline Py_ssize_t col_finish4(real_t** o, const real_t** x, const real_t** rp, const real_t** rc,
                                   const real_t* u, Py_ssize_t kh, Py_ssize_t n, real_t zt, real_t scale,
                                   real_t mcentre, int preserve, int stream) noexcept nogil:
    """Four output rows' vertical passes and their division in one sweep
    (no certainty map in or out); -1 where that kernel is not available."""
    if real_t is float:
        return nk_col2x4fin_f32(o, x, rp, rc, u, kh, n, zt, scale, mcentre, preserve, stream)
    else:
        return nk_col2x4fin_f64(o, x, rp, rc, u, kh, n, zt, scale, mcentre, preserve, stream)


cdef inline Py_ssize_t finish(real_t* o, real_t* co, const real_t* num, const real_t* den, const real_t* x,
                              const real_t* c, Py_ssize_t n, real_t zt, real_t scale, real_t mcentre,
                              int preserve, real_t inv_ksum, int stream=0) noexcept nogil:
    if c == NULL and co == NULL:  # the common call: no certainty map in or out
        if real_t is float:
            return nk_finish1_f32(o, num, den, x, n, zt, scale, mcentre, preserve, stream)
        else:
            return nk_finish1_f64(o, num, den, x, n, zt, scale, mcentre, preserve, stream)
    if real_t is float:
        return nk_finish_f32(o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum)
    else:
        return nk_finish_f64(o, co, num, den, x, c, n, zt, scale, mcentre, preserve, inv_ksum)


cdef inline void prep_span(real_t* ep, real_t* ec, const real_t* x, const real_t* crow, Py_ssize_t r,
                           Py_ssize_t W, Py_ssize_t off1, Py_ssize_t t0, Py_ssize_t t1, real_t mv, real_t mc,
                           Py_ssize_t pf) noexcept nogil:
    """prep_row's columns [t0, t1), all inside the image."""
    if t1 <= t0:
        return
    if pf != 0 and crow == NULL:
        if real_t is float:
            nk_prepf_f32(ep + t0, ec + t0, x + r * W + off1 + t0, t1 - t0, mv, mc, pf)
        else:
            nk_prepf_f64(ep + t0, ec + t0, x + r * W + off1 + t0, t1 - t0, mv, mc, pf)
    else:
        prep(ep + t0, ec + t0, x + r * W + off1 + t0, NULL if crow == NULL else crow + off1 + t0, t1 - t0, mv, mc)


cdef inline void prep_row(real_t* ep, real_t* ec, const real_t* x, const real_t* c, Py_ssize_t r,
                          Py_ssize_t W, Py_ssize_t off1, Py_ssize_t next_, Py_ssize_t lo, Py_ssize_t hi, int edge,
                          real_t fill_p, real_t fill_c, real_t mv, real_t mc, Py_ssize_t pf=0,
                          Py_ssize_t skip0=0, Py_ssize_t skip1=0) noexcept nogil:
    """The two inputs (c * x and c) of extended row r, columns off1 ... off1 + next_ - 1;
    ``pf``: prefetch the input that many elements ahead (no certainty map only);
    the columns [skip0, skip1) inside the image are left out (``nk_prow`` reads them)."""
    cdef Py_ssize_t t, col, s0, s1
    cdef const real_t* crow
    if r < 0:
        for t in range(next_):
            ep[t] = fill_p
            ec[t] = fill_c
        return
    crow = NULL if c == NULL else c + r * W
    if skip1 > skip0 and hi > lo:
        s0, s1 = min(max(skip0, lo), hi), min(max(skip1, lo), hi)
        prep_span(ep, ec, x, crow, r, W, off1, lo, s0, mv, mc, pf)
        prep_span(ep, ec, x, crow, r, W, off1, s1, hi, mv, mc, pf)
    else:
        prep_span(ep, ec, x, crow, r, W, off1, lo, hi, mv, mc, pf)
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
                      Py_ssize_t chunk, Py_ssize_t sw, int sparse, int stream, int prefetch, int fuse_finish, int fin_stream, Py_ssize_t fin_block,
                      int skip_fill, Py_ssize_t aligned_min, int inline_prefetch, int merge_rows, Py_ssize_t* helped,
                      int num_threads) noexcept nogil:
    """Output rows [0, Ho) x columns [0, Wo): output (m, n) reads the
    extended input rows off0 + m ... + kh - 1 and columns off1 + n ...
    + kw - 1, and is the pixel (cy + m, cx + n) of ``out`` / ``cert_out``
    (row stride W) and of ``x`` / ``c``.

    The outputs are cut in tasks of ``chunk`` consecutive rows by ``sw``
    consecutive columns (a strip: a large kernel's rings of rows then stay
    in the core's cache). Each task keeps the last kh horizontal passes of
    each input in a ring of rows, so that every input row it reads is
    prepared and passed once (plus kh - 1 rows where its chunk starts).
    ``sparse``: the certainty's row pass scatters the kernel around the
    pixels of certainty other than 1 (cheaper than the dense pass for a
    long kernel and few missing pixels). Returns the number of NaN results,
    or -1 when a buffer could not be allocated.
    """
    cdef Py_ssize_t nchunks = (Ho + chunk - 1) // chunk
    cdef Py_ssize_t nstrips = (Wo + sw - 1) // sw
    cdef Py_ssize_t ntasks = nchunks * nstrips
    cdef Py_ssize_t kwp = ((kw + NK_SDEN_ALIGN - 1) // NK_SDEN_ALIGN) * NK_SDEN_ALIGN
    cdef Py_ssize_t padl = ((kw - 1 + NK_SDEN_ALIGN - 1) // NK_SDEN_ALIGN) * NK_SDEN_ALIGN
    cdef Py_ssize_t stride = padl + sw + kwp + NK_SDEN_ALIGN
    cdef Py_ssize_t next_max = sw + kw - 1
    cdef Py_ssize_t b, m0, m1, n0, ws, next_, i, m, j, jj, lo, hi, slot, r, cap, g, q, t0, tb, cnt, got
    cdef real_t* e4raw
    cdef real_t* e4base
    cdef real_t** e4
    cdef real_t* epr
    # The row pass from aligned shifted copies of each row (nk_rowa) for long rows of taps.
    cdef int aligned_row = aligned_min > 0 and kw >= aligned_min and nk_rowa_available()
    cdef Py_ssize_t e4stride = ((next_max + 64 + 15) // 16) * 16
    cdef int four = kh >= 3  # the vertical passes four output rows at a time
    cdef Py_ssize_t nring = kh + 3 if four else kh
    cdef real_t** ob
    cdef real_t vsum = 0
    cdef real_t* vr = NULL
    cdef real_t* Tp
    cdef real_t* Tc
    cdef real_t* ep
    cdef real_t* ec
    cdef real_t* nr
    cdef real_t* dr
    cdef const real_t** rp
    cdef const real_t** rc
    cdef Py_ssize_t* nans = <Py_ssize_t*> malloc(2 * max(ntasks, 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* helpers = nans + max(ntasks, 1)  # 1 where a task ran on a thread other than the caller's
    cdef Py_ssize_t total = 0
    cdef int failed[1]
    if nans == NULL:
        return -1
    failed[0] = 0
    if sparse:
        vr = <real_t*> malloc(kwp * sizeof(real_t))
        if vr == NULL:
            free(nans)
            return -1
        for j in range(kwp):
            vr[j] = v[kw - 1 - j] if j < kw else 0
        for j in range(kw):
            vsum = vsum + v[j]

    # Rows wholly outside the image (a fill boundary) in a run: the passes
    # of the first, copied to the others (the same bits).
    cdef int fill_rows = skip_fill and edge == 0
    # The next rows' prefetches spread over the preparation of this one (no certainty map).
    cdef int inline_pf = inline_prefetch and c == NULL
    # Both row passes from the data row itself (no certainty map, 3 to 5 taps).
    cdef Py_ssize_t lanes = nk_prow_lanes(1 if real_t is double else 0)
    cdef int merged = (merge_rows and c == NULL and 3 <= kw <= 5 and lanes > 0 and not aligned_row
                       and nk_row_shuffle and vr == NULL)
    cdef Py_ssize_t pa, pb
    cdef Py_ssize_t pfe
    cdef int copied, prevfill

    Tp = Tc = ep = ec = nr = dr = NULL
    rp = rc = NULL
    ob = NULL
    with parallel(num_threads=num_threads):
        Tp = <real_t*> malloc(2 * nring * stride * sizeof(real_t))
        Tc = Tp + nring * stride
        ep = <real_t*> malloc((2 * next_max + 8 * sw) * sizeof(real_t))
        ec = ep + next_max
        nr = ec + next_max
        dr = nr + 4 * sw
        rp = <const real_t**> malloc(2 * nring * sizeof(real_t*))
        rc = rp + nring
        ob = <real_t**> malloc(16 * sizeof(real_t*))
        e4raw = NULL
        e4 = <real_t**> malloc(8 * sizeof(real_t*))
        if aligned_row:
            # 8 copies (float32; 4 of float64) of an extended row, each on a 64-byte boundary
            e4raw = <real_t*> malloc(8 * e4stride * sizeof(real_t) + 64)
        if Tp == NULL or ep == NULL or rp == NULL or ob == NULL or e4 == NULL or (aligned_row and e4raw == NULL):
            failed[0] = 1
        else:
            if aligned_row:
                e4base = <real_t*> ((<size_t> e4raw + 63) & ~(<size_t> 63))
                for jj in range(8):
                    e4[jj] = e4base + jj * e4stride
            for jj in range(4):
                ob[jj] = nr + jj * min(sw, COL_BLOCK)
                ob[4 + jj] = dr + jj * min(sw, COL_BLOCK)
            for b in prange(ntasks, schedule='dynamic'):
                m0 = (b // nstrips) * chunk
                m1 = min(Ho, m0 + chunk)
                n0 = (b % nstrips) * sw
                ws = min(sw, Wo - n0)
                next_ = ws + kw - 1
                # Columns of the strip's extended rows that lie inside the image: [lo, hi).
                lo = min(max(-(off1 + n0), 0), next_)
                hi = min(max(W - (off1 + n0), lo), next_)
                cap = (ws * kw) // (4 * kwp)
                cnt = 0  # this task's NaN results (one store to the shared array, at its end)
                prevfill = 0
                # input rows off0 + m0 + i go to ring slot i % nring
                for i in range(m1 - m0 + kh - 1):
                    slot = i % nring
                    r = edge_index(off0 + m0 + i, H, edge)
                    copied = 0
                    if r < 0 and fill_rows and i > 0 and prevfill:
                        # a row wholly outside (the fill) after another: the same passes, copied
                        memcpy(Tp + slot * stride + padl, Tp + ((i - 1) % nring) * stride + padl, ws * sizeof(real_t))
                        memcpy(Tc + slot * stride + padl, Tc + ((i - 1) % nring) * stride + padl, ws * sizeof(real_t))
                        copied = 1
                    else:
                        epr = e4[0] if aligned_row else ep
                        pfe = 0
                        if inline_pf and r >= 0 and r + prefetch < H:
                            pfe = prefetch * W
                        pa = pb = 0
                        if merged and r >= 0:
                            # nk_prow reads the whole vectors inside the image from x itself
                            pa = ((lo + lanes - 1) // lanes) * lanes
                            pb = (hi // lanes) * lanes
                            if pb <= pa:
                                pa = pb = 0
                        prep_row(epr, ec, x, c, r, W, off1 + n0, next_, lo, hi, edge, fill_p, fill_c, mv, mc, pfe,
                                 pa, min(pb, nk_prow_from(ws, lanes)))
                    if prefetch and not inline_pf and i + prefetch < m1 - m0 + kh - 1 and hi > lo:
                        q = edge_index(off0 + m0 + i + prefetch, H, edge)
                        if q >= 0:
                            nk_prefetch(x + q * W + off1 + n0 + lo, (hi - lo) * sizeof(real_t))
                            if c != NULL:
                                nk_prefetch(c + q * W + off1 + n0 + lo, (hi - lo) * sizeof(real_t))
                    prevfill = r < 0
                    if not copied:
                        if pb > pa:  # both passes, the inside of the row read from x
                            if real_t is float:
                                nk_prow_f32(Tp + slot * stride + padl, Tc + slot * stride + padl, ep, ec,
                                            x + r * W + off1 + n0 + pa, pa, pb, v, kw, ws, mv * mc, mc, pfe)
                            else:
                                nk_prow_f64(Tp + slot * stride + padl, Tc + slot * stride + padl, ep, ec,
                                            x + r * W + off1 + n0 + pa, pa, pb, v, kw, ws, mv * mc, mc, pfe)
                        else:
                            if aligned_row:
                                row_pass_aligned(Tp + slot * stride + padl, e4, v, kw, ws, next_)
                            else:
                                row_pass(Tp + slot * stride + padl, ep, v, kw, ws)
                            den_row_pass(Tc + slot * stride + padl, ec, next_, v, vr, kw, kwp, vsum, ws, cap)
                    if i < kh - 1:
                        continue
                    g = i - (kh - 1)  # output row m0 + g has all its input rows now
                    got = -1
                    if four and g % 4 == 3 and fuse_finish and c == NULL and cert_out == NULL:
                        # the vertical passes and the division together, the whole strip
                        t0 = 0
                        while t0 < ws:
                            tb = min(fin_block, ws - t0)
                            if ws - t0 - tb < fin_block // 4:
                                tb = ws - t0  # no short last block
                            for j in range(kh + 3):
                                rp[j] = Tp + ((g - 3 + j) % nring) * stride + padl + t0
                                rc[j] = Tc + ((g - 3 + j) % nring) * stride + padl + t0
                            for j in range(4):
                                m = m0 + g - 3 + j
                                ob[8 + j] = out + (cy + m) * W + cx + n0 + t0
                                ob[12 + j] = <real_t*> (x + (cy + m) * W + cx + n0 + t0)
                            got = col_finish4(ob + 8, <const real_t**> (ob + 12), rp, rc, u, kh, tb, zt, scale,
                                              mcentre, preserve, fin_stream)
                            if got < 0:
                                break  # (at the first block: the kernel is not available)
                            cnt = cnt + got
                            t0 = t0 + tb
                    if got >= 0:
                        pass
                    elif four and g % 4 == 3:  # output rows m0 + g - 3 ... m0 + g, together
                        # in blocks of COL_BLOCK columns: the four rows of both
                        # sums stay in the L1 cache until they are finished
                        t0 = 0
                        while t0 < ws:
                            tb = min(<Py_ssize_t> COL_BLOCK, ws - t0)
                            for j in range(kh + 3):
                                rp[j] = Tp + ((g - 3 + j) % nring) * stride + padl + t0
                                rc[j] = Tc + ((g - 3 + j) % nring) * stride + padl + t0
                            col_pass2x4(ob, ob + 4, rp, rc, u, kh, tb)
                            for j in range(4):
                                m = m0 + g - 3 + j
                                cnt = cnt + finish(out + (cy + m) * W + cx + n0 + t0,
                                                  NULL if cert_out == NULL else cert_out + (cy + m) * W + cx + n0 + t0,
                                                  ob[j], ob[4 + j], x + (cy + m) * W + cx + n0 + t0,
                                                  NULL if c == NULL else c + (cy + m) * W + cx + n0 + t0,
                                                  tb, zt, scale, mcentre, preserve, inv_ksum, stream)
                            t0 = t0 + COL_BLOCK
                    elif not four or m0 + g == m1 - 1:  # one by one (the last rows of a chunk)
                        for q in range(g - g % 4 if four else g, g + 1):
                            m = m0 + q
                            for j in range(kh):
                                rp[j] = Tp + ((q + j) % nring) * stride + padl
                                rc[j] = Tc + ((q + j) % nring) * stride + padl
                            col_pass2(nr, dr, rp, rc, u, kh, ws)
                            cnt = cnt + finish(out + (cy + m) * W + cx + n0,
                                              NULL if cert_out == NULL else cert_out + (cy + m) * W + cx + n0,
                                              nr, dr, x + (cy + m) * W + cx + n0,
                                              NULL if c == NULL else c + (cy + m) * W + cx + n0,
                                              ws, zt, scale, mcentre, preserve, inv_ksum, stream)
                nans[b] = cnt
                helpers[b] = threadid() != 0
                nk_fence()  # this task's streamed stores reach memory before the result is read
        free(Tp)
        free(ep)
        free(rp)
        free(ob)
        free(e4raw)
        free(e4)
    if not failed[0]:
        helped[0] = 0
        for b in range(ntasks):
            total += nans[b]
            helped[0] += helpers[b]
        helped[1] = ntasks
    free(nans)
    free(vr)
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
    # Columns per strip: the two rings of kh rows (the horizontal passes)
    # within RING_BYTES, so that the vertical passes read them from the
    # core's cache; strips of even widths.
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef Py_ssize_t sw = Wo, nstrips
    if 2 * kh * Wo * itemsize > RING_BYTES:
        sw = max(RING_BYTES // (2 * kh * itemsize), MIN_STRIP)
    nstrips = (Wo + sw - 1) // sw
    sw = (Wo + nstrips - 1) // nstrips
    sw = min(Wo, ((sw + 15) // 16) * 16)
    nstrips = (Wo + sw - 1) // sw
    if nstrips >= num_threads and nstrips % num_threads == 0:
        chunk = Ho  # whole strips: every ring is started once
    else:
        # Rows per task: about two tasks per thread (the late one balances
        # the load), but at least 4 kh so that restarting the ring (kh - 1
        # extra rows) costs little; never more than one thread's share.
        chunk = max((Ho + TASKS_PER_THREAD * num_threads - 1) // (TASKS_PER_THREAD * num_threads), 4 * kh, 8)
        chunk = min(chunk, max(1, (Ho + num_threads - 1) // num_threads))
    cdef int sparse = kw >= SPARSE_MIN_TAPS
    cdef int stream = cnp.PyArray_NBYTES(out) >= STREAM_MIN_BYTES
    cdef int prefetch = int(PREFETCH)
    cdef int inline_pf = bool(PREFETCH_INLINE)
    cdef int merge_rows = bool(MERGE_ROWS)
    cdef int fuse_finish = bool(FUSE_FINISH) and u.shape[0] <= FUSE_FINISH_MAX_KH
    cdef int skip_fill = bool(FILL_ROWS_CONSTANT)
    cdef Py_ssize_t helped[2]
    helped[0] = helped[1] = 0
    cdef Py_ssize_t aligned_min = ALIGNED_ROW_MIN_TAPS.get("d" if typenum == cnp.NPY_DOUBLE else "f", 0)
    cdef Py_ssize_t fin_block = max(64, FIN_BLOCK)
    cdef int fin_stream = stream and bool(FIN_STREAM)
    global nk_lean_fin, nk_nanc_fin, nk_col_pf, nk_row_shuffle, nk_use_avx512, nk_col512, nk_fin512, nk_prow512
    nk_col512 = int(COL_AVX512)
    nk_fin512 = 1 if FIN_ZMM else 0
    nk_prow512 = 1 if ROW_ZMM else 0
    nk_use_avx512 = 1 if AVX512_SWEEP else 0
    nk_row_shuffle = 1 if ROW_SHUFFLE else 0
    nk_col_pf = 1 if COL_PREFETCH else 0
    nk_lean_fin = 1 if LEAN_FINISH else 0
    nk_nanc_fin = 1 if NANC_FINISH else 0
    cdef void* cp = NULL if c is None else cnp.PyArray_DATA(c)
    cdef void* co = NULL if cert_out is None else cnp.PyArray_DATA(cert_out)
    if typenum == cnp.NPY_DOUBLE:
        with nogil:
            nans = fused(<const double*> cnp.PyArray_DATA(x), <const double*> cp, H, W,
                         <const double*> cnp.PyArray_DATA(u), kh, <const double*> cnp.PyArray_DATA(v), kw,
                         <double*> cnp.PyArray_DATA(out), <double*> co, Ho, Wo, off0, off1, cy, cx, edge,
                         fill_p, fill_c, miss_value, miss_cert, zero_tol, scale, miss_centre, preserve_nan,
                         inv_ksum, chunk, sw, sparse, stream, prefetch, fuse_finish, fin_stream, fin_block, skip_fill, aligned_min, inline_pf, merge_rows, helped, num_threads)
    else:
        with nogil:
            nans = fused(<const float*> cnp.PyArray_DATA(x), <const float*> cp, H, W,
                         <const float*> cnp.PyArray_DATA(u), kh, <const float*> cnp.PyArray_DATA(v), kw,
                         <float*> cnp.PyArray_DATA(out), <float*> co, Ho, Wo, off0, off1, cy, cx, edge,
                         <float> fill_p, <float> fill_c, <float> miss_value, <float> miss_cert, <float> zero_tol,
                         <float> scale, <float> miss_centre, preserve_nan, <float> inv_ksum, chunk, sw, sparse, stream, prefetch, fuse_finish, fin_stream, fin_block, skip_fill, aligned_min, inline_pf, merge_rows, helped, num_threads)
    if nans < 0:
        raise MemoryError("fastcorr normalized: could not allocate its row buffers")
    global last_tasks, last_helped
    last_tasks, last_helped = helped[1], helped[0]
    return nans
