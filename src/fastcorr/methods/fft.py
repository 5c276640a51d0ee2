"""FFT method: offset correlation through ``scipy.fft`` (overlap-save tiling).

Every call is reduced to a *valid* correlation of an extended image E with
the kernel, ``out[m, n] = sum_{j,k} w[j,k] E[m+j, n+k]`` where
``E[i, j] = X[off0 + i, off1 + j]`` (X: the input extended by the boundary
rule). Boundaries:

* fill with a constant ``c``: correlate ``x - c`` (zero outside) and add
  ``c * sum(w)`` -- exact in exact arithmetic for any fill value;
* wrap and symm: the needed part of E is gathered (per-axis runs of rows and
  columns, no per-element fancy indexing) and then treated as a zero-filled
  image. So this engine serves every boundary (DESIGN §2.1 allows refusing
  symm; serving it costs one gather of the output-sized region).

The valid correlation runs by overlap-save: the output is cut into blocks of
``B0 x B1``; each block needs an input tile of ``(B0+kh-1) x (B1+kw-1)``, whose
transform of size ``N = next_fast_len(B + k - 1, real=True)`` is multiplied by
the kernel's transform (computed once per call). Block sizes minimise an
``N log N`` cost estimate per output sample; a single tile (the whole-image FFT)
is one of the candidates. With a fill boundary, E has zero margins and a
single tile needs less than ``B + k - 1``: the windows that run past a
shorter circular length wrap onto the leading zeros (see :func:`wrap_length`;
'same' then transforms about ``n + k/2`` instead of ``n + k`` per axis).
Tiles are taken as an overlapping strided view of a padded source (no
per-tile copy) and processed in chunks whose spectra stay
under a cap, so memory is bounded whatever the image size. Chunks are spread
over ``num_threads`` Python threads (pocketfft and numpy release the GIL),
so the copies, the spectrum products and the scatter run in parallel, not
only the transforms; with fewer chunks than threads the transforms use
``workers=num_threads`` instead (from 2**17 values a call: below that,
starting pocketfft's workers costs more than they save).

Small real images with a fill boundary may take the *row-spectrum plan*
instead (:func:`row_plan`, chosen by :func:`choose_plan` in the same cost
units): only the rows are transformed, each frequency's column is
correlated with the kernel rows' spectra directly (compiled,
``fft_kernels.spectral_rows``), and the rows are transformed back. It
leaves out the column transforms and the padded rows of the 2-D plan (64²
float64, 31x31 'same': 60-66 against 78 us).

Transforms run on ducc0 when it is installed (the ``fft`` extra; 1.3-1.7x
faster here), else on ``scipy.fft``; a backend set with
``scipy.fft.set_backend`` (pyFFTW, mkl_fft, ...) is honoured: with one in
force every transform goes through ``scipy.fft`` (``methods._fftlib``). float32
is computed in complex64 (no upcast); complex inputs use full ``fft2``.

Real inputs on ducc0 take the in-place engine :func:`_ducc_tiles` instead
of the padded source and per-chunk arrays above: ducc0 writes every
transform into a given array (``out=``), so each tile's rows go from the
image (or a small zero-padded row buffer) into one spectrum array per
thread, the column transforms and the product run in place, and only the
block's output rows come back, straight into the result. Its tiles are
planned by their own cost (:func:`ducc_tile_units`: small tiles whose
spectrum stays in cache are cheaper per ``N log N`` unit), and its work
arrays are kept between calls in a bounded workspace. Measured at one
thread (CPU time), 4096² float64 'same': 31x31 391 -> 137-150 ms, 101x101
280 -> 182-190 ms; float32 31x31 288 -> 120-131 ms; 1024² float64 21x21
16.0 -> 10.4-10.7 ms; 256² float64 63x63 with no page faults (387 a call
with fresh work arrays).

The in-place engine's tiles take only transform lengths ducc0 runs fast
(``DUCC_LENGTHS``, measured per length: 640, 768 or 960 run 8-15% faster
than their neighbours, 450, 486 or 729 15-20% slower), and at more than
one thread the plan weighs what each thread does: separate tiles, one per
thread with no waiting between stages, against one tile shared by the
threads (``DUCC_SINGLE_PAR``). Measured at one thread (thread CPU time,
alternated with the previous plans in one process): 1024² float64 'same',
31x31 10.4 -> 8.7 ms (3 x 3 tiles of 375² instead of 5 x 3 of 243 x 405),
63x63 12.0 -> 10.4 (2 x 2 of 576² instead of one 1080² tile).

float64 tiles run their column stage compiled (``COLUMN_FFT64``): the
forward column transform, the product with the kernel's spectrum and the
inverse column transform in one call, ``fft_kernels.column_correlate64``
(``_simd/colfft_kernels.h``: radix-2/4/3/5 passes over whole rows, AVX2
across the columns, the spectrum left in digit-reversed order between the
two transforms and the kernel's spectrum stored in that order). ducc0
transforms the columns of a row-major tile by copying groups of columns
out and back; here every pass streams through whole rows. Measured at one
thread against ducc0's column transforms plus numpy's product: 0.5-0.65x
their time on 288-1080 rows; whole tiles 0.73-0.9x (ducc0 still transforms
the rows). Every tile height ``2^a 3^b 5^c`` qualifies; the planner counts
such tiles at ``COLFFT64_EVEN_UNITS`` / ``COLFFT64_DEFAULT_UNITS`` of their
ducc0 units, and adds power-of-two heights to the candidates. float32
tiles of a power-of-two height take template matching's float32 column
transforms (``COLUMN_FFT32``, ``fft_kernels.column_fft``, 2.2-2.8x faster
than ducc0's with the product by numpy between them; ``COLFFT32_UNITS``).
Alternated with the flags off in one process, one thread, CPU time,
cv2.filter2D / fastcorr: float64 4096² 63x63 1.19 -> 1.49, 101x101 0.82
-> 1.14, 1024² 63x63 1.32 -> 1.65, 256² 63x63 1.11 -> 1.32; float32
4096² 63x63 1.20 -> 1.55, 101x101 1.32 -> 1.52 (a loaded machine).

On a CPU with AVX-512 the float64 column stage runs AVX-512 copies of its
passes, with two radix-4 passes (and a radix-3 with a radix-3 or radix-5
one) fused into one sweep over the rows (``fft_kernels.column_fuse16``;
the fused sweeps need AVX-512's 32 registers: on AVX2 they spilled and ran
slower, so AVX2 keeps one pass a sweep). Column stage alone, one thread,
alternated: 1.17-1.31x faster on 288-1125 rows. Whole calls ('same', one
thread, CPU time, alternated with ``column_fuse16(0)``; two runs on a
loaded machine): 4096² 101x101 127 -> 121 and 173 -> 155 ms, 63x63 111 ->
104 and 208 -> 186, 1024² 31x31 6.3 -> 5.6 and 9.1 -> 7.6, 256² 63x63
0.46 -> 0.41 and 0.77 -> 0.48. Results are bitwise the same but for the
columns past the last whole vector, whose scalar loop may round apart.
"""
import functools
import math
import threading
from concurrent.futures import wait

import numpy as np
from . import _fftlib

from ._memo import KernelCache
from ._pool import GrowingPool

try:
    from .fft_kernels import spectral_rows as _spectral_rows
except ImportError:  # an uncompiled tree: no row-spectrum plan
    _spectral_rows = None
try:
    from .fft_kernels import column_correlate64 as _column_correlate64, column_twiddles64 as _column_twiddles64
    from .fft_kernels import column_fft64 as _column_fft64
    from .fft_kernels import column_fft as _column_fft32, column_twiddles as _column_twiddles32
except ImportError:  # an uncompiled tree: ducc0's column transforms throughout
    _column_correlate64 = _column_twiddles64 = _column_fft64 = _column_fft32 = _column_twiddles32 = None
try:
    from .fft_kernels import all_finite as _all_finite
except ImportError:  # an uncompiled tree
    def _all_finite(a):
        return bool(np.isfinite(a).all())

__all__ = ["correlate", "correlate_stack", "plan", "plan_cost", "SERVES_COMPLEX", "SERVES_INTEGER"]

SERVES_COMPLEX = True
SERVES_INTEGER = False
SERVES_BOUNDARIES = (0, 1, 2, 3, 4)
SERVES_OUT = True

#: Bytes of spectra one chunk of tiles may hold (per thread).
CHUNK_BYTES = 16 << 20
#: Largest tile transform (elements) considered when tiling is worthwhile.
#: 2**21 (1448²): a 2048² float64 transform, 34 MB of spectrum, ran slower
#: than two 1125-long tiles per axis (2048² image, 13x13 kernel: 68 against
#: 41 ms; float32 29 against 22).
_MAX_TILE_ELEMS = 1 << 21
#: Cost of one more tile, in the planner's units (N log N + passes): the
#: Python slicing, the scatter and the smaller transforms' overheads. Measured
#: per tile at 2 threads: about 0.12-0.15 ms, as much as 0.7M units of a 1080²
#: float32 transform; without it the planner cut 1024² images into 36 tiles
#: of 192² that took twice one whole transform (21x21 'same': 9.7 against
#: 4.9 ms float32).
TILE_COST_UNITS = 7e5
#: Copies (elements) below this are not split over threads (measured: no
#: gain from splitting even at 1024x1024).
PARALLEL_FILL_ELEMENTS = 1 << 21
#: Transforms (elements per call) below this run on one pocketfft worker:
#: starting its threads costs ~0.12 ms a call, more than a 320x320 real
#: transform takes on one core (measured here: 96x96 float32 rfft2 27 us
#: with workers=1, 164 us with workers=2; even at 320x320; 1.4-1.7x faster
#: with 2 workers at 1080x1080).
MIN_PARALLEL_TRANSFORM = 1 << 17


class NonFinite(ArithmeticError):
    """Raised by :func:`correlate` with ``check_finite=True`` when ``x`` may
    hold NaN or inf: it does, or (in-place ducc0 tiles) the sum of a tile
    row overflowed. The caller then checks ``x`` itself (the result is not
    returned, and ``out``, if given, may be partly written)."""


def _rows_finite(spec):
    """Whether every row transformed into ``spec`` summed to a finite value.

    Column 0 of a real row transform is the row's sum (its real part, added
    by the transform's butterflies), which is NaN or inf whenever a value
    of the row is (no sum of an inf or a NaN is finite again): one look at
    ``N0`` values instead of a read of the image."""
    return math.isfinite(np.sum(spec[:, 0].real, dtype=np.float64))


_pool = GrowingPool("fastcorr-fft")
_executor = _pool.executor

#: Whether :func:`_run_parallel` runs items on the calling thread too (it
#: and ``nthreads - 1`` pool threads take the items in turn) instead of
#: handing each item to the pool as a future and waiting: one future per
#: helper thread, not per item, and no thread idle (a 4096² float32 call
#: in 108 tiles spent ~2 ms of its calling thread on the futures).
RUN_ON_CALLER = True


def _run_parallel(fn, items, nthreads):
    """Call ``fn(item)`` for every item on up to ``nthreads`` threads."""
    items = list(items)
    if nthreads <= 1 or len(items) <= 1:
        for it in items:
            fn(it)
        return
    if RUN_ON_CALLER:
        _run_shared(fn, items, min(nthreads, len(items)))
        return
    pool = _executor(nthreads)
    futures = [pool.submit(fn, it) for it in items]
    try:
        for f in futures:
            f.result()
    except BaseException:
        # Ctrl-C (or an error) while waiting: the tiles not started are
        # dropped and those running end, so that no thread of this call is
        # left working for it (nor holding its buffers) when the exception
        # reaches the caller.
        for f in futures:
            f.cancel()
        wait(futures)
        raise


def _run_shared(fn, items, n):
    """:func:`_run_parallel` on the calling thread and ``n - 1`` pool threads,
    each taking the next item of one shared iterator (a list iterator's
    ``next`` runs whole under the GIL: every item goes to one thread). An
    exception on any thread (Ctrl-C on the caller, an error) stops the
    others taking items; the caller waits for the items they are running
    to end before the exception reaches its caller, so that no thread is
    left working for this call (nor holding its buffers)."""
    queue = iter(items)
    stop = []

    def take():
        try:
            for item in queue:
                if stop:
                    return
                fn(item)
        except BaseException:
            stop.append(True)
            raise

    futures = [_executor(n - 1).submit(take) for _ in range(n - 1)]
    try:
        take()
        for f in futures:
            f.result()
    except BaseException:
        stop.append(True)
        for f in futures:
            f.cancel()
        wait(futures)
        raise


def _fast_len(n, real):
    return _fftlib.next_fast_len(int(n), real=real)


def wrap_length(out_len, k, data):
    """Shortest circular length serving a whole axis whose data is ``data``.

    ``data = (a, b)``: only positions ``a .. b-1`` of the extended axis
    (length ``out_len + k - 1``) are nonzero. A circular correlation of
    length N >= b holds them all, and the windows that run past N wrap onto
    positions below ``a``, zeros, as long as N >= out_len + k - 1 - a. So
    'same' needs about ``n + k/2`` instead of ``n + k``, and 'full' ``n + k``
    instead of ``n + 2k``. (And N >= out_len: two outputs never share a
    circular index.)
    """
    a, b = data
    return max(b, out_len + k - 1 - a, out_len, 1)


def _axis_candidates(out_len, k, real, data=None, ducc_itemsize=0, pow2=False):
    """(N, B, tiles) candidates for one axis: tile transform length, block,
    count; ascending in N. The last is the single tile, as short as the zero
    margins ``data`` allow (see :func:`wrap_length`).

    For the ducc0 engine (``ducc_itemsize``: the values' itemsize) the
    lengths are every length of ``DUCC_LENGTHS`` (those measured fast) in
    range instead of a geometric grid, and the single tile may also take
    the next such length past the shortest one."""
    need = out_len + k - 1 if data is None else wrap_length(out_len, k, data)
    single = _fast_len(need, real)
    lengths = []
    n = _fast_len(max(2 * k, 16), real)
    while n < single:
        if n >= k:
            lengths.append(n)
        n = _fast_len(int(n * 1.25) + 1, real)
    extra = None
    if ducc_itemsize:
        # the geometric grid outside the measured lengths, every fast one inside
        lo, hi, good = _ducc_good_lengths(ducc_itemsize)
        lengths = sorted([n for n in lengths if not lo <= n <= hi]
                         + [n for n in good if max(2 * k, 16, k) <= n < single])
        extra = next((n for n in good if n > single), None)
    result = [(n, n - k + 1, -(-out_len // (n - k + 1))) for n in lengths]
    if ducc_itemsize:
        # the single tile also at the shortest length with factors 7 and 11
        # where it was measured fast
        shorter = _fftlib.next_fast_len(int(need), real=False)
        if shorter < single and shorter in DUCC_SINGLE_7_11.get(4 if ducc_itemsize <= 4 else 8, ()):
            result.append((shorter, out_len, 1))
    result.append((single, out_len, 1))
    if extra is not None and extra <= 2 * single:
        result.append((extra, out_len, 1))
    if pow2:
        # the power-of-two lengths, the compiled column transforms' fastest
        # (``COLUMN_FFT64``): tiles below the single tile's length, and the
        # single tile at the next power of two if within 1.5x of it
        have = {r[0] for r in result}
        n = 16
        while n < 2 * single:
            if n >= max(2 * k, 16) and n not in have and (n < single or n <= 1.5 * need):
                result.append((n, out_len, 1) if n >= need else (n, n - k + 1, -(-out_len // (n - k + 1))))
            n *= 2
        result.sort(key=lambda r: r[0])
    return result


#: Lengths with factors 7 or 11 the ducc0 engine's single tile along an
#: axis may take (by itemsize) when one is the shortest such length for it
#: and shorter than its 2-3-5 length. Measured at one thread (CPU time,
#: medians of 11 alternated calls, 'same', the planner's choice with and
#: without them): float32 1024² 63x63 on 1056 1.06x faster (two tiles of
#: 576 x 1056 also 1.13x at two threads), 1000² 63x63 on 1050 1.14x;
#: slower or no faster, so left out: float32 528 (512² 31x31) 0.94x, 550
#: (512² 63x63) 0.93x, 1078 (1024² 101x101) 0.99x, 825 (768² 101x101)
#: 1.02x; float64 528 0.98x, 550 0.88x, 825 0.96x, 1078 1.04x. The other
#: float32 plans they change (82 of 930 on 960²-2048² images, 9x9-129x129
#: kernels, 'same' / 'valid' / 'full', 1 and 2 threads), ten of them
#: measured: 1.01-1.19x (geometric mean 1.12) at one thread.
DUCC_SINGLE_7_11 = {4: frozenset({1050, 1056}), 8: frozenset()}


def in_place(is_complex):
    """Whether real correlations run on :func:`_ducc_tiles` (ducc0 in use)."""
    return not is_complex and _fftlib.library() == "ducc0"


def plan(out_shape, kshape, is_complex=False, data=None, ducc=None, itemsize=8, nthreads=1):
    """Choose the tiling (memoised): see :func:`_plan`.

    ``data``: per axis, the extent ``(a, b)`` of the nonzero part of the
    extended image (a fill boundary), or None when all of it may be nonzero.
    ``ducc``: plan for :func:`_ducc_tiles` (None: when :func:`in_place` says
    so), whose tile costs depend on the values' ``itemsize`` and, through
    how the tiles share out, on ``nthreads``.
    """
    data = None if data is None else tuple((int(a), int(b)) for a, b in data)
    ducc = in_place(is_complex) if ducc is None else bool(ducc)
    return _plan(tuple(int(v) for v in out_shape), tuple(int(v) for v in kshape), bool(is_complex), data, ducc,
                 int(itemsize) if ducc else 8, max(1, int(nthreads)) if ducc else 1,
                 _colfft_plans(ducc and not is_complex, itemsize))


def _colfft_plans(ducc_real, itemsize):
    """Whether the ducc0 engine's plan counts tiles whose columns take the
    compiled transforms at their cost (``COLFFT64_UNITS``) and adds the
    power-of-two heights to its candidates (see ``COLUMN_FFT64``)."""
    return bool(ducc_real and colfft(16, int(itemsize)))


#: The in-place ducc0 engine's tile cost (:func:`ducc_tile_units`): transform
#: units ``e (log2 e + 4)`` for a tile of e = N0 N1 values, times ``1 +
#: DUCC_CACHE_SLOPE * (log2 e - DUCC_CACHE_LOG2)`` past 2**DUCC_CACHE_LOG2
#: values (~320², whose float64 spectrum fits a 1 MiB L2 cache; one more
#: for float32, whose spectrum is half as large), plus
#: ``DUCC_TILE_UNITS`` per tile. Fitted at one thread on 4096² float64
#: images: 31x31 kernels ran 136-137 ms in tiles of 256²-320², 150-152 in
#: 480²-576², 164-190 in 864²; 101x101 kernels 182-189 ms in 640²-960²,
#: 194 in 480², 209 in 320² (about 0.28 ns a unit at 320², 0.34 at 800²);
#: the per-tile units (~0.1 ms: a tile's few dozen Python-level calls) keep
#: 1024² images whole, which ran as fast as 243²-320² tiles in float64
#: (10.7 against 10.4-10.6 ms) and faster in float32 (7.7 against 8.3-8.7).
DUCC_CACHE_LOG2 = 16.6
DUCC_CACHE_SLOPE = 0.08
DUCC_TILE_UNITS = 3e5


#: A single tile at ``n`` threads runs ``1 + DUCC_SINGLE_PAR * (n - 1)``
#: times as fast as at one (its row stages split over the threads, ducc0's
#: threads for the columns, a wait between the stages); separate tiles, one
#: per thread with no wait, by their count (``ceil(tiles / n)`` rounds a
#: thread takes). Measured on 1024² float64 images at 2 threads: 1.4-1.6x
#: for one 1080² tile.
DUCC_SINGLE_PAR = 0.5
#: Below this many transform values in all (the one-thread plan's tiles),
#: the plan is the one-thread plan whatever the thread count: handing
#: tiles to the pool's threads costs more than they save (256² float64,
#: 63x63, two tiles of 192 x 288 on two threads: 1.0 ms of CPU against 0.7
#: for one 288² tile on one).
DUCC_SPLIT_ELEMENTS = 1 << 18
#: Separate tiles on more than one thread cost ``1 + DUCC_SHARED_SLOPE *
#: (log2 e - DUCC_SHARED_LOG2)`` times their one-thread units past
#: 2**DUCC_SHARED_LOG2 values (~600², a 2.7 MB float64 spectrum; one more
#: for float32): a thread's spectrum then streams through the shared cache
#: every column pass while the other thread's does too. The 4096² float64
#: 'same' cases, the lead's 2-thread times on a quiet machine against
#: session 16's one-thread CPU times here (so only indicative): tiles of
#: 320 x 400 (21x21), 640 x 375 (31x31) and 576² (63x63) ran 1.5-1.65x as
#: fast at two threads as at one, 800 x 960 (101x101) 1.28x; at one
#: thread 576² and 960² tiles run the 101x101 case in the same time (153.8
#: against 153.3 ms, 168.7 / 163.1 in another run), so the slope moves only
#: the 101x101 case to tiles of 512 x 625 (and 18 of 144 two-thread plans
#: on 256²-4096² images, 9x9-129x129 kernels, all with kernels from 45 on,
#: mostly float64). The one-thread plans never change. Measured at 2
#: threads on a quiet machine (session 17, 'same', medians of 7-25
#: alternated calls, slope 0 / 0.15): 4096² float64 101x101 71.8 / 60.4,
#: 72.7 / 64.2 and 77.1 / 73.2 ms (1.05-1.19x); 129x129 1.04x, 81x81 and
#: 63x63 1.00x; 2048² float64 81x81 / 101x101 1.03x / 1.02x; but 1024²
#: float64 129x129 0.88x and 4096² float32 101x101 0.93-0.96x. So it
#: weighs only float64 plans of outputs from DUCC_SHARED_MIN_OUTPUT values.
DUCC_SHARED_SLOPE = 0.15
DUCC_SHARED_LOG2 = 18.5
DUCC_SHARED_MIN_OUTPUT = 1 << 22

#: ducc0's speed by transform length, relative to lengths of about the
#: same size (the cost model's ``N log N`` trend taken out): a tile of N0 x
#: N1 costs ``(f(N0) + f(N1)) / 2`` times its units. Measured at one thread
#: (ducc0 0.42, AVX2, the per-tile stages of :func:`_ducc_tiles` on N x N
#: tiles, float64 / float32): lengths with large powers of 3 or
#: factors of 5 squared run 10-25% slower than their neighbours, powers of
#: 2 up to 512 and 2^a x 5 faster; a 1024-long float32 column transform
#: ran at half speed (the power-of-two stride's cache conflicts). Lengths
#: outside the table count 1.
DUCC_LENGTHS = {
    8: {96: 1.02, 100: 1.02, 108: 1.04, 120: 0.95, 125: 0.99, 128: 0.99, 135: 1.02, 144: 0.98, 150: 1.05, 160: 0.94,
        162: 1.08, 180: 1.00, 192: 0.95, 200: 0.95, 216: 1.00, 225: 1.00, 240: 0.97, 243: 1.04, 250: 1.02, 256: 0.98,
        270: 1.07, 288: 1.00, 300: 0.99, 320: 0.93, 324: 1.10, 360: 1.00, 375: 0.95, 384: 1.01, 400: 0.96, 405: 1.00,
        432: 1.03, 450: 1.16, 480: 1.00, 486: 1.19, 500: 1.06, 512: 0.99, 540: 1.01, 576: 0.94, 600: 0.97, 625: 0.95,
        640: 0.92, 648: 1.02, 675: 1.00, 720: 1.03, 729: 1.13, 750: 0.99, 768: 0.91, 800: 0.95, 810: 1.09, 864: 1.09,
        900: 0.93, 960: 0.85, 972: 1.00, 1000: 0.97, 1024: 1.00, 1080: 1.06, 1125: 1.06, 1152: 1.01, 1200: 0.96,
        1215: 1.13, 1250: 0.96, 1280: 0.88, 1296: 1.01, 1350: 1.00, 1440: 0.99, 1458: 1.19, 1500: 1.01},
    4: {96: 1.01, 100: 1.01, 108: 0.98, 120: 1.02, 125: 1.09, 128: 0.98, 135: 0.98, 144: 1.01, 150: 1.03, 160: 0.92,
        162: 1.00, 180: 1.03, 192: 0.95, 200: 1.02, 216: 1.02, 225: 0.97, 240: 0.97, 243: 1.00, 250: 0.99, 256: 0.96,
        270: 1.12, 288: 1.10, 300: 1.07, 320: 0.95, 324: 1.03, 360: 1.00, 375: 0.99, 384: 0.96, 400: 0.94, 405: 0.99,
        432: 1.06, 450: 1.11, 480: 1.04, 486: 1.12, 500: 0.91, 512: 1.01, 540: 1.06, 576: 1.00, 600: 0.98, 625: 0.95,
        640: 0.95, 648: 1.03, 675: 1.00, 720: 1.01, 729: 1.07, 750: 0.99, 768: 0.93, 800: 0.99, 810: 1.12, 864: 0.97,
        900: 1.00, 960: 0.88, 972: 1.01, 1000: 1.00, 1024: 1.58, 1080: 1.09, 1125: 1.00, 1152: 1.05, 1200: 0.96,
        1215: 0.93, 1250: 0.91, 1280: 0.87, 1296: 1.00, 1350: 1.06, 1440: 1.06, 1458: 1.15, 1500: 1.04},
}
#: Lengths at or below this factor are the ducc0 engine's overlap-save
#: tile lengths in the table's range.
DUCC_GOOD_LENGTH = 1.0


@functools.lru_cache(maxsize=4)
def _ducc_good_lengths(itemsize):
    """``(shortest, longest, good)``: the table's range and its lengths of
    factor at most ``DUCC_GOOD_LENGTH`` (ascending)."""
    table = DUCC_LENGTHS[8 if itemsize > 4 else 4]
    return min(table), max(table), tuple(sorted(n for n, f in table.items() if f <= DUCC_GOOD_LENGTH))


#: Share of a tile's time the length's factor applies to: the transforms'
#: (the copies, the product and the output's writes do not depend on it).
#: Measured on 4096² float64 images, the whole engine: 800² and 960² tiles
#: within 5% of each other (101x101), where the factors alone said 10%.
DUCC_LENGTH_SHARE = 0.65


def _ducc_length_factor(n, itemsize):
    return 1.0 + DUCC_LENGTH_SHARE * (DUCC_LENGTHS[8 if itemsize > 4 else 4].get(int(n), 1.0) - 1.0)


def ducc_tile_units(N0, N1, itemsize=8):
    """Transform units of one tile of :func:`_ducc_tiles` (see ``DUCC_CACHE_SLOPE``,
    ``DUCC_LENGTHS`` and ``COLFFT64_UNITS``)."""
    e = float(N0) * N1
    lg = math.log2(max(e, 2.0))
    fits = DUCC_CACHE_LOG2 + (1.0 if itemsize <= 4 else 0.0)
    speed = 0.5 * (_ducc_length_factor(N0, itemsize) + _ducc_length_factor(N1, itemsize))
    speed *= _colfft_factor(N0, itemsize, _colfft_plans(True, itemsize))
    return e * (lg + 4.0) * (1.0 + DUCC_CACHE_SLOPE * max(0.0, lg - fits)) * speed


#: A tile's units when its columns take the compiled transforms
#: (``COLUMN_FFT64``), relative to ducc0's: by tile height where measured
#: apart, else ``COLFFT64_EVEN_UNITS`` for even heights (their middle pass
#: fused, see ``column_correlate64``) and ``COLFFT64_DEFAULT_UNITS`` for odd
#: ones. Measured on the whole engine at one thread (thread CPU time,
#: medians of 5-9 alternated calls, the same tiles either way): 2048²
#: 31x31 in 576² tiles 0.73, 320² 0.73-0.82, 375² 0.90-1.02; 1024² 21x21
#: in 375² 0.86, 1080² 0.76, 160² 0.78, 256² 0.83; 1024² 63x63 in 576²
#: 0.81-0.89; 256² 63x63 in one 288² tile 0.78.
COLFFT64_UNITS = {}
COLFFT64_EVEN_UNITS = 0.78
COLFFT64_DEFAULT_UNITS = 0.92


def _colfft_factor(N0, itemsize, plans):
    N0, itemsize = int(N0), int(itemsize)
    if not (plans and colfft(N0, itemsize)):
        return 1.0
    if itemsize <= 4:
        # (N0's own ducc0 length factor taken out: ducc0 no longer transforms that axis;
        # its float32 1024 ran at half speed)
        return COLFFT32_UNITS / _ducc_length_factor(N0, itemsize)
    return COLFFT64_UNITS.get(N0, COLFFT64_EVEN_UNITS if N0 % 2 == 0 else COLFFT64_DEFAULT_UNITS)


#: A float32 tile's units when its columns take the compiled transforms
#: (``COLUMN_FFT32``), relative to ducc0's (without ducc0's length factor
#: for the height). From the column stage alone, one thread: 512 x 960
#: tiles 534 against 1155 us, 512² 269 / 554, 1024 x 800 921 / 2299, next
#: to rows of 1.1-2.2 ms; not refitted on whole calls.
COLFFT32_UNITS = 0.78


@functools.lru_cache(maxsize=4096)
def _plan(out_shape, kshape, is_complex=False, data=None, ducc=False, itemsize=8, nthreads=1, colfft=False):
    """Choose the tiling: ``((N0, B0, t0), (N1, B1, t1))``.

    Minimises ``t0 * t1 * N0 * N1 * (log2(N0 * N1) + 4)`` (transforms plus
    the per-sample passes) with the tile transform bounded in size unless the
    kernel itself needs more. A single tile on an axis with zero margins
    (``data``) uses the shorter wrap-around length. For :func:`_ducc_tiles`
    (``ducc``) the tiles cost :func:`ducc_tile_units` each, of the lengths
    ducc0 runs fast, and the cost is that of the busiest of ``nthreads``
    threads (see ``DUCC_SINGLE_PAR``).
    """
    real = not is_complex
    out_shape = tuple(max(1, int(v)) for v in out_shape)
    best = None
    dl = itemsize if ducc and real else 0
    c0 = _axis_candidates(out_shape[0], kshape[0], real, None if data is None else data[0], dl, colfft and dl)
    c1 = _axis_candidates(out_shape[1], kshape[1], real, None if data is None else data[1], dl)
    if dl:
        big = itemsize > 4 and out_shape[0] * out_shape[-1] >= DUCC_SHARED_MIN_OUTPUT
        return _ducc_plan(c0, c1, itemsize, nthreads, colfft, DUCC_SHARED_SLOPE if big else 0.0)
    for a in c0:
        for b in c1:
            elems = a[0] * b[0]
            if elems > _MAX_TILE_ELEMS and not (a is c0[0] and b is c1[0]):
                continue
            if (a[2] > 1 or b[2] > 1) and max(a[0], b[0]) > 2 * min(a[0], b[0]) and max(a[0], b[0]) > 1024:
                # long tiles ran slower than their count says (2048², 21x21,
                # float32: 7 x 1 strips of 320 x 2160, 38-43 ms; 7 x 2 tiles of
                # 320 x 1125, 30; 2 x 2 of 1125², 22-23)
                continue
            tiles = a[2] * b[2]
            cost = tiles * elems * (math.log2(max(elems, 2)) + 4.0) + (tiles > 1) * tiles * TILE_COST_UNITS
            if best is None or cost < best[0]:
                best = (cost, a, b)
    return best[1], best[2]


def _ducc_plan(c0, c1, itemsize, nthreads, colfft=False, shared_slope=0.0):
    """:func:`_plan` for :func:`_ducc_tiles`: every pair of the axes'
    candidates at once (numpy; a few dozen lengths per axis, so that a
    new shape is planned in well under a millisecond); ``shared_slope``:
    :data:`DUCC_SHARED_SLOPE` where it applies."""
    N0 = np.array([a[0] for a in c0], dtype=np.float64)[:, None]
    N1 = np.array([b[0] for b in c1], dtype=np.float64)[None, :]
    t0 = np.array([a[2] for a in c0], dtype=np.float64)[:, None]
    t1 = np.array([b[2] for b in c1], dtype=np.float64)[None, :]
    f0 = np.array([_ducc_length_factor(a[0], itemsize) for a in c0])[:, None]
    f1 = np.array([_ducc_length_factor(b[0], itemsize) for b in c1])[None, :]
    e = N0 * N1
    lg = np.log2(np.maximum(e, 2.0))
    fits = DUCC_CACHE_LOG2 + (1.0 if itemsize <= 4 else 0.0)
    units = e * (lg + 4.0) * (1.0 + DUCC_CACHE_SLOPE * np.maximum(0.0, lg - fits)) * 0.5 * (f0 + f1)
    if colfft:
        units = units * np.array([_colfft_factor(a[0], itemsize, True) for a in c0])[:, None]
    tiles = t0 * t1
    cost = tiles * units + (tiles > 1) * tiles * DUCC_TILE_UNITS
    single = tiles == 1
    cost = np.where(single & (e >= MIN_PARALLEL_TRANSFORM), cost / (1.0 + DUCC_SINGLE_PAR * (nthreads - 1)), cost)
    cost = np.where(single, cost, cost * np.ceil(tiles / nthreads) / tiles)
    if nthreads > 1 and shared_slope:
        # separate tiles on several threads: large ones cost more than at one (see DUCC_SHARED_SLOPE)
        shared = DUCC_SHARED_LOG2 + (1.0 if itemsize <= 4 else 0.0)
        cost = np.where(single, cost, cost * (1.0 + shared_slope * np.maximum(0.0, lg - shared)))
    big = e > _MAX_TILE_ELEMS
    big[0, 0] = False  # the smallest tiles whatever their size
    # long tiles ran slower than their count says (2048², 21x21, float32:
    # 7 x 1 strips of 320 x 2160, 38-43 ms; 7 x 2 tiles of 320 x 1125, 30;
    # 2 x 2 of 1125², 22-23)
    lo, hi = np.minimum(N0, N1), np.maximum(N0, N1)
    long = ~single & (hi > 2 * lo) & (hi > 1024)
    cost = np.where(big | long, np.inf, cost)
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return c0[i], c1[j]


#: Cost of one complex multiply-add of the row-spectrum plan's column sums
#: (``fft_kernels.spectral_rows``), in the transform units of
#: :func:`plan_cost` (``N log2 N`` per transform). Measured on 64² images
#: with 21x21-63x63 kernels, one thread: ~0.26 ns per float64 multiply-add
#: against ~0.3 ns per transform unit; float32 half of that.
SPEC_UNITS = {4: 0.45, 8: 0.9}
#: Per-sample passes (copies, products) in transform units, as the
#: dispatcher's constants weigh them (``pass`` / ``f8`` x ``cached``).
PASS_UNITS = 3.0
#: Largest row-transform work (image plus output rows, times N1) of the
#: row-spectrum plan. It runs on one thread (see :func:`_row_spectrum`) and
#: its three temporaries are faulted in again on every call once they
#: outgrow the heap's reuse: a 256² float64 image took 1.3 ms against 0.55
#: for its transforms.
ROW_PLAN_ELEMENTS = 1 << 16


@functools.lru_cache(maxsize=4096)
def _tap_rows(rows, out_rows, kh, first):
    """Kernel rows that fall on image rows, summed over the output rows.

    Output row m reads image rows ``first + m + j`` (j < kh); the image has
    rows 0 .. rows-1.

    >>> _tap_rows(64, 64, 31, -15), 64 * 31
    (1744, 1984)
    """
    m = np.arange(out_rows)
    lo = np.maximum(0, -(first + m))
    hi = np.minimum(kh, rows - (first + m))
    return int(np.clip(hi - lo, 0, None).sum())


def row_plan(out_shape, kshape, data, itemsize):
    """The row-spectrum plan's length and cost, or None where it cannot serve.

    Only the image's rows are transformed (length ``N1``); per frequency, the
    kernel's rows are then summed down the columns as a direct correlation
    (complex products, ``fft_kernels.spectral_rows``), and the output rows
    transformed back. It serves a fill boundary (``data`` given) for real
    inputs. For a kernel of few rows on a small image it beats the 2-D
    transform: a 64² float64 image with a 31x31 kernel ('same') takes two
    row transforms and 72k complex multiply-adds, against two 80² 2-D
    transforms.

    Returns ``(N1, transform_units, pass_units)`` (see :func:`plan_cost`).
    """
    if data is None or _spectral_rows is None:
        return None
    (a0, b0), (a1, b1) = data
    Ho, Wo = out_shape
    kh, kw = kshape
    rows = b0 - a0
    N1 = _fast_len(wrap_length(Wo, kw, (a1, b1)), True)
    F = N1 // 2 + 1
    if rows <= 0 or (rows + Ho) * N1 > ROW_PLAN_ELEMENTS:
        return None
    taps = _tap_rows(rows, Ho, kh, -a0)
    units = (rows + Ho) * N1 * math.log2(max(N1, 2)) + SPEC_UNITS[4 if itemsize <= 4 else 8] * taps * F
    return N1, units, float(rows + Ho) * N1 + Ho * Wo


def choose_plan(out_shape, kshape, dtype, data=None, nthreads=1):
    """The FFT method's plan for a case: ``("rows", N1)`` or ``("tiles", plan)``.

    The cheaper of :func:`row_plan` (real inputs, fill boundary) and the
    2-D tiling of :func:`plan`, by :func:`plan_cost`'s units (at one
    thread); the tiling is the one for ``nthreads`` threads.
    """
    dtype = np.dtype(dtype)
    ducc = in_place(dtype.kind == "c")
    return _choose_plan(tuple(int(v) for v in out_shape), tuple(int(v) for v in kshape), dtype.kind == "c",
                        dtype.itemsize, None if data is None else tuple((int(a), int(b)) for a, b in data),
                        ducc, max(1, int(nthreads)), _colfft_plans(ducc and dtype.kind != "c", dtype.itemsize))


@functools.lru_cache(maxsize=4096)
def _choose_plan(out_shape, kshape, is_complex, itemsize, data, ducc=False, nthreads=1, colfft=False):
    # (``colfft``: a key only, plan() reads the flag: the memoised plans of either setting kept apart)
    tiles = plan(out_shape, kshape, is_complex, data, ducc, itemsize)
    if not is_complex:
        rows = row_plan(out_shape, kshape, data, itemsize)
        if rows is not None:
            f, p = _tile_units(out_shape, tiles)
            if rows[1] + PASS_UNITS * rows[2] < f + PASS_UNITS * p:
                return ("rows", rows[0])
    (N0, _, t0), (N1, _, t1) = tiles
    if nthreads > 1 and ducc and N0 * N1 * t0 * t1 >= DUCC_SPLIT_ELEMENTS:
        tiles = plan(out_shape, kshape, is_complex, data, ducc, itemsize, nthreads)
    return ("tiles", tiles)


def _tile_units(out_shape, tiles):
    (N0, B0, t0), (N1, B1, t1) = tiles
    elems = N0 * N1
    count = t0 * t1
    return 2.0 * count * elems * math.log2(max(elems, 2)), count * elems * 2.0 + out_shape[0] * out_shape[1]


def spectrum_bytes(N0, N1, dtype):
    """Bytes of the spectrum of one (N0, N1) transform of ``dtype`` values
    (a real input keeps half the columns, as complex numbers of twice its size)."""
    if dtype.kind == "c":
        return N0 * N1 * dtype.itemsize
    return N0 * (N1 // 2 + 1) * 2 * dtype.itemsize


def plan_cost(out_shape, kshape, dtype, data=None):
    """Cost units of the chosen plan (:func:`choose_plan`) for ``dtype`` values.

    Returns ``(transform units, per-sample units, tiles, spectrum bytes,
    serial)``: transform units are ``sum over tiles of N log2 N`` (two
    transforms per tile; for the row-spectrum plan, its row transforms and
    its column sums); per-sample units count the elements copied and
    multiplied; the spectrum bytes are those of one tile's transform;
    ``serial`` tells that the plan runs on one thread whatever
    ``num_threads`` (the row-spectrum plan). The dispatcher multiplies the
    units by measured constants.
    """
    dtype = np.dtype(dtype)
    kind, chosen = choose_plan(out_shape, kshape, dtype, data)
    if kind == "rows":
        N1, f, p = row_plan(tuple(out_shape), tuple(kshape), tuple(data), dtype.itemsize)
        return f, p, 1, spectrum_bytes(out_shape[0], N1, dtype), True
    (N0, B0, t0), (N1, B1, t1) = chosen
    f, p = _tile_units(out_shape, chosen)
    return f, p, t0 * t1, spectrum_bytes(N0, N1, dtype), False


def ducc_cost(out_shape, kshape, dtype, data=None):
    """Cost units of the plan on :func:`_ducc_tiles` (real input, ducc0), or
    None when the plan is another one (complex, row-spectrum, scipy.fft).

    Returns ``(units, tiles, serial)``: the tiles' :func:`ducc_tile_units`
    plus ``DUCC_TILE_UNITS`` per tile (beyond one), the tile count, and
    whether the call runs on one thread whatever ``num_threads`` (a single
    tile below ``MIN_PARALLEL_TRANSFORM`` values).
    """
    dtype = np.dtype(dtype)
    if not in_place(dtype.kind == "c"):
        return None
    kind, chosen = choose_plan(out_shape, kshape, dtype, data)
    if kind != "tiles":
        return None
    (N0, B0, t0), (N1, B1, t1) = chosen
    tiles = t0 * t1
    units = tiles * ducc_tile_units(N0, N1, dtype.itemsize) + (tiles > 1) * tiles * DUCC_TILE_UNITS
    return units, tiles, tiles == 1 and N0 * N1 < MIN_PARALLEL_TRANSFORM


# ---------------------------------------------------------------------------
# Extended-image gathering (wrap / symm), by contiguous runs per axis.

def _runs(idx):
    """Split an index array into maximal runs with step +1 or -1: (dst0, src0, length, step)."""
    runs = []
    n = len(idx)
    i = 0
    while i < n:
        j = i + 1
        step = 1
        if j < n and idx[j] - idx[i] == -1:
            step = -1
        while j < n and idx[j] - idx[j - 1] == step:
            j += 1
        runs.append((i, int(idx[i]), j - i, step))
        i = j
    return runs


def _ext_index(start, length, n, boundary):
    idx = np.arange(start, start + length)
    if boundary == 1:
        return idx % n
    if boundary == 3:  # nearest
        return np.clip(idx, 0, n - 1)
    if boundary == 4:  # mirror (whole-sample symmetric)
        if n == 1:
            return np.zeros_like(idx)
        period = idx % (2 * n - 2)
        return np.where(period >= n, 2 * n - 2 - period, period)
    period = idx % (2 * n)
    return np.where(period >= n, 2 * n - 1 - period, period)


def _gather_rows(dst, x, row_idx, col_runs):
    """dst[i, :] = x[row_idx[i], cols] with cols given by runs."""
    for d0, s0, ln, st in _runs(row_idx):
        if st == 1:
            src_rows = x[s0:s0 + ln]
        else:
            src_rows = x[s0 - ln + 1:s0 + 1][::-1]
        drows = dst[d0:d0 + ln]
        for c0, cs, cl, cst in col_runs:
            if cst == 1:
                drows[:, c0:c0 + cl] = src_rows[:, cs:cs + cl]
            else:
                drows[:, c0:c0 + cl] = src_rows[:, cs - cl + 1:cs + 1][:, ::-1]


# ---------------------------------------------------------------------------

def correlate(x, w, shape, offsets, boundary, fill, num_threads, out=None, check_finite=False):
    """Engine entry (see ``fastcorr._engine.dispatch``): the offset correlation by FFT.

    ``x`` and ``w`` share one dtype: float32, float64, complex64 or
    complex128 (C-contiguous). Returns a new C-contiguous array of ``shape``,
    or ``out`` (C-contiguous, ``shape``, x's dtype; checked by the caller)
    written in place. ``check_finite``: raise :class:`NonFinite` when ``x``
    may hold NaN or inf (the in-place ducc0 tiles look at their rows' sums
    as they go; every other plan reads ``x`` first).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import fft
    >>> x = np.arange(9.0).reshape(3, 3); w = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> fft.correlate(x, w, (2, 2), (0, 0), 0, 0.0, 1).round(10)
    array([[19., 25.],
           [37., 43.]])
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.dtype.kind not in "fc" or x.dtype.itemsize > 16 or (x.dtype.kind == "f" and x.dtype.itemsize > 8):
        raise ValueError(
            f"method='fft' computes float32/float64/complex inputs only, got dtype {x.dtype}; "
            "integers need exact arithmetic: use method='direct' or 'auto'"
        )
    dtype = x.dtype
    w = np.ascontiguousarray(w, dtype=dtype)
    Ho, Wo = (int(s) for s in shape)
    kh, kw = w.shape
    H, W = x.shape
    if Ho == 0 or Wo == 0:
        return np.empty((Ho, Wo), dtype=dtype) if out is None else out
    if out is not None and not in_place(dtype.kind == "c"):
        out[...] = correlate(x, w, shape, offsets, boundary, fill, num_threads, check_finite=check_finite)
        return out
    nthreads = max(1, int(num_threads))
    off0, off1 = (int(o) for o in offsets)
    EH, EW = Ho + kh - 1, Wo + kw - 1
    is_complex = dtype.kind == "c"
    c = dtype.type(fill) if boundary == 0 else dtype.type(0)
    data = None
    if boundary == 0:
        # rows/cols of E that fall inside x
        r_lo, r_hi = max(0, -off0), min(EH, H - off0)
        c_lo, c_hi = max(0, -off1), min(EW, W - off1)
        have = r_hi > r_lo and c_hi > c_lo
        if have:
            data = ((r_lo, r_hi), (c_lo, c_hi))
    ducc = in_place(is_complex)
    kind, chosen = _choose_plan((Ho, Wo), (kh, kw), is_complex, dtype.itemsize, data, ducc, nthreads,
                                _colfft_plans(ducc and not is_complex, dtype.itemsize))
    if check_finite and (kind == "rows" or not ducc):
        # only the in-place ducc0 tiles look at their rows' sums: else x as a whole, first
        if not _all_finite(x):
            raise NonFinite("x holds NaN or inf")
        check_finite = False
    if kind == "rows" and 1 - kw <= off1 <= 0 and W - off1 <= EW:
        # every column of x inside E, and the output window not wrapping
        # past column 0: x's rows transformed as they are
        res = _row_spectrum(x, w, (Ho, Wo), off0, off1, chosen, c)
        if out is None:
            return res
        out[...] = res
        return out
    tiling = chosen if kind == "tiles" else plan((Ho, Wo), (kh, kw), is_complex, data, ducc, dtype.itemsize, nthreads)
    (N0, B0, t0), (N1, B1, t1) = tiling
    if ducc:
        if out is None:
            out = np.empty((Ho, Wo), dtype=dtype)
        if boundary == 0:
            source, soff = x, (off0, off1)
        else:
            source, soff, c = _gathered(x, (EH, EW), (off0, off1), boundary, nthreads), (0, 0), dtype.type(0)
        return _ducc_tiles(source, soff, c, w, tiling, nthreads, out, check_finite)
    if (t0 == 1 and t1 == 1 and c == 0 and data is not None and off0 >= 1 - kh and off1 >= 1 - kw
            and data == ((-off0, H - off0), (-off1, W - off1))):
        # x lies whole inside E: transform it zero-padded, as it is.
        return _whole_image(x, w, (Ho, Wo), N0, N1, kh - 1 + off0, kw - 1 + off1, is_complex, nthreads)
    out = np.empty((Ho, Wo), dtype=dtype)
    # An axis of one tile is the transform's length, zeros past E (or, with
    # wrap-around, the first N rows or columns of E, all its data), so the
    # transform pads nothing; else overlap-save tiles of B + k - 1.
    L0, L1 = (N0 if t0 == 1 else B0 + kh - 1), (N1 if t1 == 1 else B1 + kw - 1)
    P0, P1 = (N0 if t0 == 1 else t0 * B0 + kh - 1), (N1 if t1 == 1 else t1 * B1 + kw - 1)

    # The padded source: E in the top-left corner, zeros elsewhere.
    src = np.empty((P0, P1), dtype=dtype)
    if boundary == 0:

        def fill_band(band):
            a, b = band
            blk = src[a:b]
            if not have:
                blk[...] = 0
                return
            lo, hi = max(a, r_lo), min(b, r_hi)
            if lo >= hi:
                blk[...] = 0
                return
            src[a:lo] = 0
            src[hi:b] = 0
            src[lo:hi, :c_lo] = 0
            src[lo:hi, c_hi:] = 0
            dst = src[lo:hi, c_lo:c_hi]
            xs = x[lo + off0:hi + off0, c_lo + off1:c_hi + off1]
            if c != 0:
                np.subtract(xs, c, out=dst)
            else:
                dst[...] = xs
    else:
        if H == 0 or W == 0:
            raise ValueError("wrap/symm boundaries need a non-empty input")
        ridx = _ext_index(off0, EH, H, boundary)
        col_runs = _runs(_ext_index(off1, EW, W, boundary))

        def fill_band(band):
            a, b = band
            lo, hi = a, min(b, EH)
            if hi > lo:
                _gather_rows(src[lo:hi, :EW], x, ridx[lo:hi], col_runs)
                src[lo:hi, EW:] = 0
            if b > hi:
                src[max(hi, a):b] = 0

    bands = _split(P0, nthreads if P0 * P1 >= PARALLEL_FILL_ELEMENTS else 1)
    _run_parallel(fill_band, bands, nthreads)

    kspec = kernel_spectrum(w, N0, N1, is_complex, nthreads)

    # Overlapping tiles as a strided view: tiles[i, j] = src[i*B0 : i*B0+L0, j*B1 : j*B1+L1].
    s0, s1 = src.strides
    tiles = np.lib.stride_tricks.as_strided(
        src, shape=(t0, t1, L0, L1), strides=(B0 * s0, B1 * s1, s0, s1), writeable=False
    )
    tiles_per_chunk = max(1, CHUNK_BYTES // max(spectrum_bytes(N0, N1, dtype), 1))
    chunks = _chunks(t0, t1, tiles_per_chunk)
    a, b, cc, d = chunks[0]
    workers = 1 if len(chunks) >= nthreads else _workers(nthreads, N0 * N1 * (b - a) * (d - cc))

    def run(chunk):
        a, b, cc, d = chunk
        view = tiles[a:b, cc:d]
        if is_complex:
            spec = _fftlib.fft2(view, s=(N0, N1), axes=(-2, -1), workers=workers, overwrite_x=False)
            spec *= kspec
            res = _fftlib.ifft2(spec, axes=(-2, -1), workers=workers, overwrite_x=True)
        else:
            spec = _fftlib.rfft2(view, s=(N0, N1), axes=(-2, -1), workers=workers)
            spec *= kspec
            # The inverse one axis at a time: the row transforms only for the
            # block's output rows (and faster than irfft2 even for all of
            # them: a chunk of three 1125² tiles, 17.3 -> 11.9 ms).
            spec = _fftlib.ifft(spec, axis=-2, workers=workers, overwrite_x=True)
            res = _fftlib.irfft(_circular_slice(spec, 2, kh - 1, B0, N0), n=N1, axis=-1, workers=workers,
                             overwrite_x=True)
            del spec
            res = _circular_slice(res, 3, kw - 1, B1, N1)
            _scatter(out, res, a, cc, B0, B1)
            return
        # output (m, n) of a tile sits at (kh-1+m, kw-1+n), modulo N
        res = _circular_slice(res, 2, kh - 1, B0, N0)
        res = _circular_slice(res, 3, kw - 1, B1, N1)
        _scatter(out, res, a, cc, B0, B1)

    _run_parallel(run, chunks, nthreads)
    if c != 0:
        tot = w.sum(dtype=dtype) * c
        if tot != 0:
            bands = _split(Ho, nthreads if Ho * Wo >= PARALLEL_FILL_ELEMENTS else 1)
            _run_parallel(lambda ab: np.add(out[ab[0]:ab[1]], tot, out=out[ab[0]:ab[1]]), bands, nthreads)
    return out


def _whole_image(x, w, shape, N0, N1, start0, start1, is_complex, nthreads):
    """The single-tile correlation with x itself as the tile (no padded copy).

    When every row and column of x lies inside the extended image E (fill
    boundary, zero fill: 'valid', 'same', 'full'), the padded source of
    :func:`correlate` is x shifted down and right by ``-offsets``; the
    transform pads x itself, and the shift moves the output window from
    ``k - 1`` to ``k - 1 + offset`` (never wrapping: the plan's length holds
    it, see :func:`wrap_length`).

    The spectrum is dropped before the result is copied out, so that the
    copy can take its memory: with three live arrays of 8 MiB (1024²
    float64), the heap's top was handed back to the system after every call
    and faulted in again on the next (3,000 page faults, a third of the
    call).
    """
    kspec = kernel_spectrum(w, N0, N1, is_complex, nthreads)
    workers = _workers(nthreads, N0 * N1)
    Ho, Wo = shape
    if is_complex:
        spec = _fftlib.fft2(x, s=(N0, N1), workers=workers)
        spec *= kspec
        res = _fftlib.ifft2(spec, workers=workers, overwrite_x=True)
        del spec
        return np.ascontiguousarray(res[start0:start0 + Ho, start1:start1 + Wo])
    # Real: one axis at a time, so that the row transforms skip the padding
    # rows going in and the rows outside the output coming back (rfft2 /
    # irfft2 transform all N0; 1024², 64x64 'valid', float32: 7.3 -> 6.2 ms).
    spec = _fftlib.fft(_fftlib.rfft(x, n=N1, axis=1, workers=workers), n=N0, axis=0, workers=workers,
                    overwrite_x=True)
    spec *= kspec
    spec = _fftlib.ifft(spec, axis=0, workers=workers, overwrite_x=True)
    rows = _circular_slice(spec, 0, start0, Ho, N0)
    del spec
    res = _fftlib.irfft(rows, n=N1, axis=1, workers=workers, overwrite_x=True)
    del rows
    return np.ascontiguousarray(res[:, start1:start1 + Wo])


#: Bytes of the row buffer of :func:`_ducc_tiles`: the padded input rows
#: and the inverse's output rows pass through it a few rows at a time, so
#: that it stays in the core's L2 cache between the copy and the transform
#: (and there are few ducc0 calls: each costs 3-7 us of Python and
#: argument checks; 225 tiles of 320² cut into 32-row calls paid ~30 ms).
DUCC_ROW_BYTES = 1 << 19


#: Whether :func:`_ducc_tiles` may write the inverse rows straight into the
#: output (see its ``inverse``); else through the row buffer.
DUCC_DIRECT_ROWS = True

#: Runs of tiles per thread :func:`_ducc_tiles` aims at (at least), for
#: the threads to finish within about a run of each other.
DUCC_RUNS_PER_THREAD = 8

#: Whether the last column of tiles of :func:`_ducc_tiles` ends at the
#: output's last column (its first outputs recompute some of the tile
#: before it), so that its inverse rows, which otherwise run past the end of
#: out's rows, may go straight into ``out`` as the others do (written
#: before the tile to their left, whose outputs then overwrite the
#: overlap: the result does not depend on the order of the threads).
DUCC_SHIFT_LAST = True

#: Bytes of work arrays :func:`_ducc_tiles` keeps between calls (spectra,
#: row buffers), each at most half of it. Freed arrays of a few MiB went
#: back to the system after every call (glibc trims the heap's top) and
#: were faulted in again on the next: a 256² float64 call paid 387 page
#: faults, 1.9 against 0.9 ms; 1024² float64 ~500 in some runs.
WORKSPACE_BYTES = 24 << 20


class _Workspace:
    """Work arrays kept for the next call, at most ``max_bytes`` of them
    (the oldest dropped first). An array is taken out while a call uses it
    and given back only when the call ends normally: a call ended by an
    exception (Ctrl-C) leaves nothing behind."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._free = []  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, shape, dtype):
        shape, dtype = tuple(shape), np.dtype(dtype)
        with self._lock:
            for i in range(len(self._free) - 1, -1, -1):
                a = self._free[i]
                if a.shape == shape and a.dtype == dtype:
                    del self._free[i]
                    self._bytes -= a.nbytes
                    return a
        return np.empty(shape, dtype)

    def give(self, *arrays):
        with self._lock:
            for a in arrays:
                if a.nbytes > self.max_bytes // 2:
                    continue
                self._free.append(a)
                self._bytes += a.nbytes
            while self._bytes > self.max_bytes:
                self._bytes -= self._free.pop(0).nbytes

    def clear(self):
        with self._lock:
            self._free, self._bytes = [], 0

    @property
    def nbytes(self):
        return self._bytes


_workspace = _Workspace(WORKSPACE_BYTES)


#: float32 rows a multiple of this many bytes apart are "aliased": ducc0
#: writes several rows at once (one per SIMD lane: 8 of float32 with AVX2),
#: and rows this far apart fall on the same cache sets. Such outputs take
#: the row buffer, not ducc0's writes straight into them: 4096² float32
#: 'same', 21x21, 108-116 ms through the buffer, 138-147 straight (4000²:
#: 99 through the buffer, 94 straight; 1024², 4 KiB rows: 7.8 against 7.4).
#: float64 (4 lanes) measured faster straight even at 4096² (32 KiB rows:
#: 21x21 126-129 ms against 132-134), as were the row reads from the image
#: at either precision. Since 4 KiB (session 14, one thread, CPU time,
#: medians of 11 alternated calls, 'same'): 1024² float32 21x21 / 31x31
#: 1.06-1.10x faster through the buffer, 2048² 21x21 1.31x, 1000² (not
#: aliased either way) and 4096² unchanged; float64 rows of 8 KiB taken
#: through the buffer instead ran 3-7% slower (left straight).
ALIAS_BYTES = 4096


def aliased(a):
    """Whether ducc0 writes 2-D ``a``'s rows at a cost (see ``ALIAS_BYTES``)."""
    return a.dtype.itemsize <= 4 and a.shape[0] > 1 and a.strides[0] % ALIAS_BYTES == 0


def _unaliased_row(n, itemsize):
    """A row length (elements) of at least ``n`` whose rows are not aliased."""
    return n if itemsize > 4 or (n * itemsize) % ALIAS_BYTES else n + 64 // itemsize


def _gathered(x, eshape, offsets, boundary, nthreads):
    """The extended image E (``eshape``) of a wrap / symm / nearest / mirror
    boundary, gathered from x by runs of rows and columns."""
    EH, EW = eshape
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError("wrap/symm boundaries need a non-empty input")
    g = np.empty((EH, EW), dtype=x.dtype)
    ridx = _ext_index(offsets[0], EH, x.shape[0], boundary)
    col_runs = _runs(_ext_index(offsets[1], EW, x.shape[1], boundary))
    bands = _split(EH, nthreads if EH * EW >= PARALLEL_FILL_ELEMENTS else 1)
    _run_parallel(lambda ab: _gather_rows(g[ab[0]:ab[1]], x, ridx[ab[0]:ab[1]], col_runs), bands, nthreads)
    return g


def _ducc_tiles(S, soff, c, w, tiling, nthreads, out, check_finite=False):
    """The real correlation on ducc0, every transform in place in work arrays.

    Tile (i, j) of ``tiling`` transforms ``E[i*B0 : i*B0+N0, j*B1 :
    j*B1+N1]`` (the last column of tiles ending at out's last column, see
    ``DUCC_SHIFT_LAST``), E being ``S`` shifted by ``soff`` (``E[e] = S[e + soff]``,
    zero outside S) minus the fill ``c``; its outputs sit at ``(kh-1+m,
    kw-1+n)`` modulo N, as in :func:`correlate` (one tile along an axis:
    the wrap-around length of :func:`wrap_length`). Per tile: the rows go
    through ``r2c`` (a few rows at a time through a small buffer) into one (N0, N1/2+1) spectrum
    array (straight from S when the rows lie inside it and ``c`` is 0, else
    through a small zero-padded buffer), the columns through an in-place
    ``c2c``, the product with the kernel's spectrum in place, the inverse
    ``c2c`` in place, and only the block's output rows through ``c2r``,
    again a few rows at a time, copied into ``out`` with ``c * sum(w)``
    added. So a call allocates one spectrum per thread (tiles spread over
    threads, one tile each at a time) or one in all (a single tile: its
    row stages split over the threads, ducc0's own threads for the column
    transforms), plus small row buffers; nothing of the image's size but
    ``out``. The work arrays come from and go back to ``_workspace``
    (bounded), so that a loop of calls does not fault them in every time.

    ``check_finite``: raise :class:`NonFinite` when a tile's rows summed to
    NaN or inf (see :func:`_rows_finite`), before its column transforms.
    """
    ducc = _fftlib._ducc
    (N0, B0, t0), (N1, B1, t1) = tiling
    kh, kw = w.shape
    Ho, Wo = out.shape
    dtype = out.dtype
    cdtype = np.complex64 if dtype == np.float32 else np.complex128
    F = N1 // 2 + 1
    SH, SW = S.shape
    compiled = colfft(N0, dtype.itemsize)
    kspec = None if compiled else kernel_spectrum(w, N0, N1, False, nthreads)
    tot = w.sum(dtype=dtype) * c if c != 0 else dtype.type(0)
    R = max(8, DUCC_ROW_BYTES // (N1 * dtype.itemsize))   # rows per call through the row buffer
    NP = _unaliased_row(N1, dtype.itemsize)               # the row buffers' row length
    shift = DUCC_SHIFT_LAST and t1 > 1

    def col0(j):
        """out's column of tile j's first output (see ``DUCC_SHIFT_LAST``)."""
        return Wo - B1 if shift and j == t1 - 1 else j * B1

    def forward(spec, i, j, p0, p1, workers):
        """Spectrum rows p0..p1 (tile rows) of tile (i, j): the row transforms."""
        r0, q0 = i * B0 + soff[0], col0(j) + soff[1]     # S's row and column at the tile's (0, 0)
        lo, hi = max(p0, -r0), min(p1, SH - r0)           # tile rows inside S
        ql, qh = max(0, -q0), min(N1, SW - q0)            # tile columns inside S
        if hi <= lo or qh <= ql:
            spec[p0:p1] = 0
            return
        spec[p0:lo] = 0
        spec[hi:p1] = 0
        if c == 0 and ql == 0 and qh == N1:  # straight from S, one call
            ducc.r2c(S[r0 + lo:r0 + hi, q0:q0 + N1], axes=(1,), out=spec[lo:hi], nthreads=workers)
            return
        buf = _workspace.take((min(R, hi - lo), NP), dtype)[:, :N1]
        buf[:, :ql] = 0
        buf[:, qh:] = 0
        for a in range(lo, hi, R):
            b = min(hi, a + R)
            dst = buf[:b - a, ql:qh]
            if c != 0:
                np.subtract(S[r0 + a:r0 + b, q0 + ql:q0 + qh], c, out=dst)
            else:
                dst[...] = S[r0 + a:r0 + b, q0 + ql:q0 + qh]
            ducc.r2c(buf[:b - a], axes=(1,), out=spec[a:b], nthreads=workers)
        _workspace.give(buf.base)

    def inverse(spec, i, j, m0, m1, workers, free=None):
        """Output rows m0..m1 of tile (i, j) (block rows): the inverse row transforms, into ``out``.

        ``free``: out's columns from ``free`` up to this block are written
        after this tile (by the caller), so the rows may go straight into
        ``out`` where the whole transform row lands between ``free`` and
        the block's end (no fill to add, no wrap): its ``s1`` leading
        values, not outputs, fall on those columns and are overwritten."""
        own = j * B1                                      # the tile's columns of out: own .. own+cols-1
        cols = min(B1, Wo - own)
        c0 = col0(j)                                      # its first output's column (<= own)
        s1 = (kw - 1 + own - c0) % N1                     # the transform column of out's column own
        split = min(cols, N1 - s1)                        # columns before the wrap
        q = own - s1                                      # out's column at the transform's column 0
        if (free is not None and DUCC_DIRECT_ROWS and tot == 0 and split == cols and q >= free
                and q + N1 <= own + cols and not aliased(out)):
            m = m0
            while m < m1:
                s0 = (kh - 1 + m) % N0
                n = min(m1 - m, N0 - s0)
                ducc.c2r(spec[s0:s0 + n], axes=(1,), lastsize=N1, forward=False, inorm=2,
                         out=out[i * B0 + m:i * B0 + m + n, q:q + N1], nthreads=workers,
                         allow_overwriting_input=True)
                m += n
            return
        res = _workspace.take((min(R, m1 - m0), NP), dtype)[:, :N1]
        m = m0
        while m < m1:
            s0 = (kh - 1 + m) % N0
            n = min(R, m1 - m, N0 - s0)
            ducc.c2r(spec[s0:s0 + n], axes=(1,), lastsize=N1, forward=False, inorm=2, out=res[:n],
                     nthreads=workers, allow_overwriting_input=True)
            rows = out[i * B0 + m:i * B0 + m + n, own:own + cols]
            if tot != 0:
                np.add(res[:n, s1:s1 + split], tot, out=rows[:, :split])
                if split < cols:
                    np.add(res[:n, :cols - split], tot, out=rows[:, split:])
            else:  # a copy: 30% faster than adding 0 (4096², 300² blocks: 14.6 against 20.4 ms)
                np.copyto(rows[:, :split], res[:n, s1:s1 + split])
                if split < cols:
                    np.copyto(rows[:, split:], res[:n, :cols - split])
            m += n
        _workspace.give(res.base)

    if compiled:
        kbr = kernel_spectrum_bitrev(w, N0, N1, nthreads)
        tw = _twiddles64(N0) if dtype.itemsize == 8 else _twiddles32(N0)

    def compiled_columns(spec, ab):
        a, b = ab
        if dtype.itemsize == 8:  # forward, product, inverse in one call (see column_correlate64)
            _column_correlate64(spec, tw, kbr, a, b, COLFFT64_BLOCK)
            return
        planes = spec[None]
        _column_fft32(planes, tw, False, a, b)
        np.multiply(spec[:, a:b], kbr[:, a:b], out=spec[:, a:b])
        _column_fft32(planes, tw, True, a, b)

    def columns(spec, workers):
        if compiled:
            if workers > 1:
                _run_parallel(lambda ab: compiled_columns(spec, ab), _split(F, workers), workers)
            else:
                compiled_columns(spec, (0, F))
            return
        ducc.c2c(spec, axes=(0,), forward=True, out=spec, nthreads=workers)
        if workers > 1:
            _run_parallel(lambda ab: np.multiply(spec[ab[0]:ab[1]], kspec[ab[0]:ab[1]], out=spec[ab[0]:ab[1]]),
                          _split(N0, workers), workers)
        else:
            np.multiply(spec, kspec, out=spec)
        ducc.c2c(spec, axes=(0,), forward=False, inorm=2, out=spec, nthreads=workers)

    if t0 * t1 == 1:
        spec = _workspace.take((N0, F), cdtype)
        workers = _workers(nthreads, N0 * N1)
        _run_parallel(lambda ab: forward(spec, 0, 0, ab[0], ab[1], 1), _split(N0, workers), workers)
        if check_finite and not _rows_finite(spec):
            raise NonFinite("x may hold NaN or inf")
        columns(spec, workers)
        _run_parallel(lambda ab: inverse(spec, 0, 0, ab[0], ab[1], 1), _split(Ho, workers), workers)
        _workspace.give(spec)
        return out

    specs = {}  # one spectrum per worker thread, for this call

    def tiles(run):
        """Tiles (i, j) for j in ``range(a, b)`` right to left, ``run = (i, a, b)``:
        each may write its rows straight into ``out`` over the columns of
        the run's tiles still to come (see :func:`inverse`)."""
        i, a, b = run
        key = threading.get_ident()
        spec = specs.get(key)
        if spec is None:
            spec = specs[key] = _workspace.take((N0, F), cdtype)
        for j in range(b - 1, a - 1, -1):
            forward(spec, i, j, 0, N0, 1)
            if check_finite and not _rows_finite(spec):
                raise NonFinite("x may hold NaN or inf")
            columns(spec, 1)
            inverse(spec, i, j, 0, min(B0, Ho - i * B0), 1, free=a * B1)

    # runs of tiles along a row: whole rows at one thread; at more, runs of
    # at most 4 tiles (the threads take runs as they come, and finish
    # within about a run of each other), or single tiles where no inverse
    # may write straight into the output anyway
    if nthreads == 1:
        pieces = 1
    elif tot != 0 or not DUCC_DIRECT_ROWS or aliased(out):
        pieces = t1
    else:
        pieces = min(t1, max(-(-DUCC_RUNS_PER_THREAD * nthreads // t0), -(-t1 // 4)))
    _run_parallel(tiles, [(i, a, b) for i in range(t0) for a, b in _split(t1, pieces)], nthreads)
    _workspace.give(*specs.values())
    return out


def _row_spectrum(x, w, shape, off0, off1, N1, fill):
    """The row-spectrum plan (see :func:`row_plan`), x's columns all inside E.

    Output row m is image rows ``m + off0 + j`` correlated with kernel rows
    j; by columns, each is a circular correlation of length N1 whose output
    window starts at ``kw - 1 + off1`` (as in :func:`_whole_image`). A
    nonzero ``fill`` is subtracted from x and ``fill * sum(w)`` added back,
    as in :func:`correlate`.

    Small by construction (``ROW_PLAN_ELEMENTS``), so one thread throughout:
    with two, the OpenMP team's idle thread spun on the other core while the
    inverse transform ran, and every 64²-128² case measured (11x11-101x101
    kernels) took 1.2-1.7x as long as with one.
    """
    Ho, Wo = shape
    kh, kw = w.shape
    H, W = x.shape
    dtype = x.dtype
    # only the image rows some output row reads
    r_lo, r_hi = max(0, off0), min(H, off0 + Ho + kh - 1)
    if r_hi <= r_lo:
        return np.full(shape, fill * w.sum(dtype=dtype), dtype=dtype)
    a, b = _kernel_row_spectra(w, N1)
    F = N1 // 2 + 1
    # padded here: scipy's own padding (n=N1) cost ~1.5 us more at 64²
    padded = np.zeros((r_hi - r_lo, N1), dtype=dtype)
    if fill != 0:
        np.subtract(x[r_lo:r_hi], fill, out=padded[:, :W])
    else:
        padded[:, :W] = x[r_lo:r_hi]
    # (a scipy.fft backend may answer in another layout or precision)
    X = np.ascontiguousarray(_fftlib.rfft(padded, axis=1, overwrite_x=True),
                             dtype=np.complex64 if dtype == np.float32 else np.complex128)
    # output spectra on rows of a whole number of 64-byte lines
    row = -(-2 * F * dtype.itemsize // 64) * 64 // dtype.itemsize
    Y = np.empty((Ho, row), dtype=dtype)
    _spectral_rows(X.view(dtype), a, b, Y, off0 - r_lo, 1)
    res = _fftlib.irfft(Y[:, :2 * F].view(X.dtype), n=N1, axis=1, overwrite_x=True)
    start = kw - 1 + off1
    out = np.ascontiguousarray(res[:, start:start + Wo])
    if fill != 0:
        out += w.sum(dtype=dtype) * fill
    return out


_row_spectra = KernelCache(max_entries=1024, max_bytes=16 << 20)


def _kernel_row_spectra(w, N1):
    """The kernel rows' spectra as ``fft_kernels.spectral_rows`` reads them.

    ``a = (Kr, Kr, ...)`` and ``b = (Ki, Ki, ...)`` per row (each value
    twice), ``K`` the length-N1 real transform of the row reversed; rows of
    a whole number of 64-byte lines. Cached by the kernel's bytes.
    """
    key = (w.shape, w.dtype.str, N1, w.tobytes()) if w.size <= 1 << 16 else None
    if key is not None:
        hit = _row_spectra.get(key)
        if hit is not None:
            return hit
    K = _fftlib.rfft(w[:, ::-1], n=N1, axis=1)
    F = K.shape[1]
    row = -(-2 * F * w.dtype.itemsize // 64) * 64 // w.dtype.itemsize
    ab = np.zeros((2, w.shape[0], row), dtype=w.dtype)
    ab[0, :, 0:2 * F:2] = K.real
    ab[0, :, 1:2 * F:2] = K.real
    ab[1, :, 0:2 * F:2] = K.imag
    ab[1, :, 1:2 * F:2] = K.imag
    ab.flags.writeable = False
    if key is not None:
        _row_spectra.put(key, (ab[0], ab[1]), ab.nbytes)
    return ab[0], ab[1]


#: Kernel spectra kept for reuse across calls (same kernel, same plan), at
#: most 64 MiB of them.
KERNEL_CACHE_BYTES = 64 << 20
_kernel_spectra = KernelCache(max_entries=4096, max_bytes=KERNEL_CACHE_BYTES)


#: Whether the ducc0 engine's float64 tiles of height ``2^a 3^b 5^c``
#: transform their columns with the compiled ``fft_kernels.column_correlate64``
#: (forward, product and inverse in one call, AVX2 across the columns)
#: instead of ducc0's column transforms and numpy's product. False: the
#: previous path throughout (the planner's tile lengths too).
COLUMN_FFT64 = True
#: Columns per block of ``column_correlate64``: all of them. Blocks of
#: 8-128 columns, meant to stay in cache through the three steps, ran
#: 1.1-2.5x slower at 288-960 rows, in place or copied to a contiguous
#: buffer (and a contiguous 960 x 32 array alone ran 1.4x slower per value
#: than 960 x 481: the cost is per butterfly group, not the memory; not
#: looked into further).
COLFFT64_BLOCK = 1 << 30


#: Whether the ducc0 engine's float32 tiles of a power-of-two height
#: transform their columns with the compiled ``fft_kernels.column_fft``
#: (template matching's float32 column transforms; the product by numpy
#: between them). False: ducc0's columns and the previous plans.
COLUMN_FFT32 = True


def colfft64(N0, itemsize):
    """Whether tiles of height ``N0`` and values of ``itemsize`` bytes take
    the compiled float64 column transforms (see ``COLUMN_FFT64``): float64,
    ``N0 = 2**a * 3**b * 5**c`` from 16 on."""
    if not (COLUMN_FFT64 and itemsize == 8 and _column_correlate64 is not None and N0 >= 16):
        return False
    return _smooth235(int(N0))


def colfft(N0, itemsize):
    """Whether tiles of height ``N0`` take compiled column transforms:
    :func:`colfft64`, or float32 with ``COLUMN_FFT32`` and ``N0`` a power
    of two from 16 on."""
    if itemsize == 4:
        return bool(COLUMN_FFT32 and _column_fft32 is not None and N0 >= 16 and N0 & (N0 - 1) == 0)
    return colfft64(N0, itemsize)


@functools.lru_cache(maxsize=16)
def _twiddles32(N0):
    tw = _column_twiddles32(N0)
    tw.flags.writeable = False
    return tw


@functools.lru_cache(maxsize=1024)
def _smooth235(n):
    for p in (5, 3, 2):
        while n % p == 0:
            n //= p
    return n == 1


@functools.lru_cache(maxsize=16)
def _twiddles64(N0):
    tw = _column_twiddles64(N0)
    tw.flags.writeable = False
    return tw


def kernel_spectrum_bitrev(w, N0, N1, nthreads):
    """The kernel's spectrum as the compiled column transforms read it:
    :func:`kernel_spectrum`'s values with the rows in the forward column
    transform's (digit-reversed) order, divided by N0 (the inverse column
    transform is unnormalised). The kernel's rows are transformed, divided
    by N0, and its columns transformed by ``column_fft64`` (float64) or
    ``column_fft`` (float32, N0 a power of two) itself, which leaves them in
    that order. Cached as :func:`kernel_spectrum` is."""
    key = (w.shape, w.dtype.str, N0, N1, "bitrev", w.tobytes()) if w.size <= 1 << 16 else None
    if key is not None:
        hit = _kernel_spectra.get(key)
        if hit is not None:
            return hit
    kh = min(w.shape[0], N0)  # (as kernel_spectrum's n=N0: rows past N0 cut)
    rows = _fftlib.rfft(w[::-1, ::-1][:kh], n=N1, axis=1)
    single = w.dtype == np.float32
    spec = np.zeros((N0, N1 // 2 + 1), dtype=np.complex64 if single else np.complex128)
    np.multiply(rows, 1.0 / N0, out=spec[:kh])
    if single:
        _column_fft32(spec[None], _twiddles32(N0), False)
    else:
        _column_fft64(spec, _twiddles64(N0), False)
    spec.flags.writeable = False
    if key is not None and spec.nbytes <= KERNEL_CACHE_BYTES // 4:
        _kernel_spectra.put(key, spec, spec.nbytes)
    return spec


def _workers(nthreads, elements):
    """pocketfft workers for one call that transforms ``elements`` values."""
    return nthreads if elements >= MIN_PARALLEL_TRANSFORM else 1


def kernel_spectrum(w, N0, N1, is_complex, nthreads):
    """Transform of the flipped kernel at ``(N0, N1)``, cached across calls.

    A read-only array; the cache holds at most ``KERNEL_CACHE_BYTES`` and is
    keyed by the kernel's bytes, so a changed kernel is never confused with
    an old one. The kh nonzero rows are transformed first, then the columns
    (about half a full 2-D transform).
    """
    key = (w.shape, w.dtype.str, N0, N1, is_complex, w.tobytes()) if w.size <= 1 << 16 else None
    if key is not None:
        hit = _kernel_spectra.get(key)
        if hit is not None:
            return hit
    wf = w[::-1, ::-1]
    nthreads = _workers(nthreads, N0 * N1)
    if is_complex:
        spec = _fftlib.fft(_fftlib.fft(wf, n=N1, axis=1, workers=nthreads), n=N0, axis=0,
                        workers=nthreads, overwrite_x=True)
    else:
        spec = _fftlib.fft(_fftlib.rfft(wf, n=N1, axis=1, workers=nthreads), n=N0, axis=0,
                        workers=nthreads, overwrite_x=True)
    spec.flags.writeable = False
    if key is not None and spec.nbytes <= KERNEL_CACHE_BYTES // 4:
        _kernel_spectra.put(key, spec, spec.nbytes)
    return spec


def _circular_slice(a, axis, start, length, n):
    """``a`` at indices ``start .. start+length-1`` (mod ``n``; length <= n) along ``axis``."""
    start %= n
    index = [slice(None)] * a.ndim
    if start + length <= n:
        index[axis] = slice(start, start + length)
        return a[tuple(index)]
    head, tail = list(index), list(index)
    head[axis] = slice(start, n)
    tail[axis] = slice(0, start + length - n)
    return np.concatenate([a[tuple(head)], a[tuple(tail)]], axis=axis)


def _split(n, parts):
    parts = max(1, min(parts, n))
    edges = [n * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts) if edges[i + 1] > edges[i]]


def _chunks(t0, t1, per_chunk):
    """Rectangles of tiles (a, b, c, d) with at most ``per_chunk`` tiles each."""
    if per_chunk >= t1:
        rows = max(1, per_chunk // t1)
        return [(a, min(a + rows, t0), 0, t1) for a in range(0, t0, rows)]
    return [(a, a + 1, c, min(c + per_chunk, t1)) for a in range(t0) for c in range(0, t1, per_chunk)]


def _scatter(out, res, a, c, B0, B1):
    """Write blocks res[i, j] (B0 x B1) to out at tile (a+i, c+j), cropping at the edges."""
    Ho, Wo = out.shape
    nb, nc = res.shape[:2]
    r0, q0 = a * B0, c * B1
    full_r = max(0, min(nb, (Ho - r0) // B0))
    full_c = max(0, min(nc, (Wo - q0) // B1))
    rr = min(Ho - (r0 + full_r * B0), B0) if full_r < nb else 0
    cr = min(Wo - (q0 + full_c * B1), B1) if full_c < nc else 0
    if full_r and full_c:
        dst = out[r0:r0 + full_r * B0, q0:q0 + full_c * B1].reshape(full_r, B0, full_c, B1)
        dst[...] = res[:full_r, :full_c].transpose(0, 2, 1, 3)
    if full_r and cr:
        dst = out[r0:r0 + full_r * B0, q0 + full_c * B1:q0 + full_c * B1 + cr].reshape(full_r, B0, cr)
        dst[...] = res[:full_r, full_c, :, :cr]
    if rr:
        rows = out[r0 + full_r * B0:r0 + full_r * B0 + rr]
        if full_c:
            rows[:, q0:q0 + full_c * B1].reshape(rr, full_c, B1)[...] = res[full_r, :full_c, :rr].transpose(1, 0, 2)
        if cr:
            rows[:, q0 + full_c * B1:q0 + full_c * B1 + cr] = res[full_r, full_c, :rr, :cr]


# ---------------------------------------------------------------------------
# Layers: many channels (NCHW).

#: Bytes of input spectra one batch chunk of conv2d_nchw may hold.
CONV_CHUNK_BYTES = 64 << 20


def conv2d_nchw(x, weight, stride=1, dilation=1, groups=1, num_threads=1):
    """Valid cross-correlation of NCHW input with OIHW weights, by FFT.

    ``x`` (N, C_in, H, W) is already padded (the caller applies ``padding``
    and ``padding_mode``); ``weight`` is (C_out, C_in/groups, kh, kw).
    Every input channel and every kernel is transformed once; the sum over
    input channels is a complex matrix product per frequency bin (batched
    ``matmul``), then one inverse transform per output channel. Dilation
    is served exactly by spreading the kernel taps (the transform size does
    not grow with the zeros); stride by subsampling the stride-1 result
    (wasteful for large strides, so the dispatcher should prefer GEMM).
    float32 runs in complex64. The batch is processed in chunks whose input
    spectra stay under ``CONV_CHUNK_BYTES``.

    Returns (N, C_out, H_out, W_out) in ``x``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft import conv2d_nchw
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); w = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> conv2d_nchw(x, w).round(10)
    array([[[[19., 25.],
             [37., 43.]]]])
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"conv2d method='fft' computes float32/float64 only, got dtype {x.dtype}")
    dtype = x.dtype
    weight = weight.astype(dtype, copy=False)
    s0, s1 = (stride, stride) if np.isscalar(stride) else tuple(stride)
    d0, d1 = (dilation, dilation) if np.isscalar(dilation) else tuple(dilation)
    N, C, H, W = x.shape
    O, Cg, kh0, kw0 = weight.shape
    if C != Cg * groups or O % groups:
        raise ValueError(f"weight shape {weight.shape} does not match {C} input channels with groups={groups}")
    kh, kw = d0 * (kh0 - 1) + 1, d1 * (kw0 - 1) + 1
    if kh > H or kw > W:
        raise ValueError(f"kernel extent {(kh, kw)} exceeds the padded input {(H, W)}")
    if (d0, d1) != (1, 1):
        wd = np.zeros((O, Cg, kh, kw), dtype)
        wd[:, :, ::d0, ::d1] = weight
        weight = wd
    Ho, Wo = H - kh + 1, W - kw + 1
    N0, N1 = _fast_len(H, True), _fast_len(W, True)
    F1 = N1 // 2 + 1
    nthreads = max(1, int(num_threads))
    out = np.empty((N, O, -(-Ho // s0), -(-Wo // s1)), dtype)
    Og = O // groups
    # Kernel spectra, frequency-major: (groups, P, Cg, Og).
    ks = _fftlib.rfft2(weight[:, :, ::-1, ::-1], s=(N0, N1), axes=(-2, -1), workers=nthreads)
    ks = ks.reshape(groups, Og, Cg, N0 * F1).transpose(0, 3, 2, 1).copy()
    per_image = C * N0 * F1 * 2 * dtype.itemsize
    nb = max(1, CONV_CHUNK_BYTES // max(per_image, 1))
    for a in range(0, N, nb):
        b = min(N, a + nb)
        xs = _fftlib.rfft2(x[a:b], s=(N0, N1), axes=(-2, -1), workers=nthreads)
        xs = xs.reshape(b - a, groups, Cg, N0 * F1)
        ys = np.empty((b - a, O, N0, F1), xs.dtype)
        ysv = ys.reshape(b - a, groups, Og, N0 * F1)
        for g in range(groups):
            xg = np.ascontiguousarray(xs[:, g].transpose(2, 0, 1))  # (P, n, Cg)
            yg = _batched_matmul(xg, ks[g], nthreads)                 # (P, n, Og)
            ysv[:, g] = yg.transpose(1, 2, 0)
        y = _fftlib.irfft2(ys, s=(N0, N1), axes=(-2, -1), workers=nthreads, overwrite_x=True)
        out[a:b] = y[:, :, kh - 1:kh - 1 + Ho:s0, kw - 1:kw - 1 + Wo:s1]
    return out


def _batched_matmul(a, b, nthreads):
    """``a @ b`` over the leading (frequency) axis: compiled, OpenMP over bins."""
    from .fft_kernels import planar_cgemm

    rt = np.float32 if a.dtype == np.complex64 else np.float64
    P, n, _ = a.shape
    O = b.shape[2]
    yr = np.empty((P, n, O), rt)
    yi = np.empty((P, n, O), rt)
    planar_cgemm(np.ascontiguousarray(a.real), np.ascontiguousarray(a.imag),
                 np.ascontiguousarray(b.real), np.ascontiguousarray(b.imag), yr, yi, nthreads)
    res = np.empty((P, n, O), a.dtype)
    res.real = yr
    res.imag = yi
    return res


# ---------------------------------------------------------------------------
# Stacks of kernels on one multi-plane image (template matching).

#: Bytes of kernel spectra :func:`correlate_stack` holds at once; a larger
#: stack is served in groups, each transforming the image tiles again.
STACK_KERNEL_BYTES = 128 << 20


def correlate_stack(planes, kernels, shape, num_threads):
    """Valid correlations of an image's planes with a stack of kernels, summed
    over the planes, by FFT: ``out[t] = sum_c valid_corr(planes[c], kernels[t, c])``.

    The image's tile spectra are computed once for the whole stack (not
    once per kernel), and the sum over planes is taken on the spectra (one
    inverse transform per kernel and tile, not one per plane). The
    overlap-save tiling of :func:`plan` and chunks of at most
    ``CHUNK_BYTES`` of image spectra bound the memory as in
    :func:`correlate`; kernel spectra are held for at most
    ``STACK_KERNEL_BYTES`` at a time. The kernels of a chunk run on
    ``num_threads`` Python threads (pocketfft releases the GIL).

    ``planes``: a sequence of C same-shaped float32 or float64 arrays;
    ``kernels``: (T, C, kh, kw) of their dtype; ``shape``: the valid
    output ``(H - kh + 1, W - kw + 1)``. Returns (T, Ho, Wo).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods import fft
    >>> x = np.arange(9.0).reshape(3, 3); w = np.array([[[[0.0, 1.0], [2.0, 3.0]]], [[[1.0, 0.0], [0.0, 0.0]]]])
    >>> fft.correlate_stack([x], w, (2, 2), 1).round(10)
    array([[[19., 25.],
            [37., 43.]],
    <BLANKLINE>
           [[ 0.,  1.],
            [ 3.,  4.]]])
    """
    dtype = np.dtype(planes[0].dtype)
    kernels = np.asarray(kernels, dtype=dtype)
    T, C, kh, kw = kernels.shape
    H, W = planes[0].shape
    Ho, Wo = (int(s) for s in shape)
    nthreads = max(1, int(num_threads))
    out = np.empty((T, Ho, Wo), dtype)
    if T == 0 or Ho <= 0 or Wo <= 0:
        return out
    (N0, B0, t0), (N1, B1, t1) = plan((Ho, Wo), (kh, kw), False, ((0, H), (0, W)), ducc=False)
    sbytes = spectrum_bytes(N0, N1, dtype)
    if t0 == 1 and t1 == 1:
        views = [np.ascontiguousarray(p)[None, None] for p in planes]   # rfft2 pads to (N0, N1)
    else:
        L0, L1 = B0 + kh - 1, B1 + kw - 1
        P0, P1 = t0 * B0 + kh - 1, t1 * B1 + kw - 1
        views = []
        for p in planes:
            src = np.zeros((P0, P1), dtype)
            src[:H, :W] = p
            s0, s1 = src.strides
            views.append(np.lib.stride_tricks.as_strided(
                src, shape=(t0, t1, L0, L1), strides=(B0 * s0, B1 * s1, s0, s1), writeable=False))
    chunks = _chunks(t0, t1, max(1, CHUNK_BYTES // max(C * sbytes, 1)))
    per_group = max(1, STACK_KERNEL_BYTES // max(C * sbytes, 1))
    for g0 in range(0, T, per_group):
        group = range(g0, min(T, g0 + per_group))
        kspec = {t: [kernel_spectrum(kernels[t, c], N0, N1, False, nthreads) for c in range(C)] for t in group}
        parallel = len(group) >= nthreads
        for a, b, cc, d in chunks:
            workers = _workers(nthreads, N0 * N1 * (b - a) * (d - cc))
            X = [_fftlib.rfft2(v[a:b, cc:d], s=(N0, N1), axes=(-2, -1), workers=workers) for v in views]

            def one(t, a=a, cc=cc, X=X):
                Y = X[0] * kspec[t][0]
                for c in range(1, C):
                    Y += X[c] * kspec[t][c]
                workers = 1 if parallel else _workers(nthreads, Y.size)
                Y = _fftlib.ifft(Y, axis=-2, workers=workers, overwrite_x=True)    # then only the output rows
                res = _fftlib.irfft(_circular_slice(Y, 2, kh - 1, B0, N0), n=N1, axis=-1, workers=workers,
                                 overwrite_x=True)
                del Y
                res = _circular_slice(res, 3, kw - 1, B1, N1)
                _scatter(out[t], res, a, cc, B0, B1)

            _run_parallel(one, group, nthreads if parallel else 1)
    return out
