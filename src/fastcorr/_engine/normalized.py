"""Normalized convolution: the plan and driver of ``normalized_convolution``.

Knutsson's normalized convolution of order 0 is two convolutions with the
same kernel,

    out = conv(c * x, k) / conv(c, k),       certainty = conv(c, k) / sum(k),

where ``c`` is the certainty of each pixel: 0 for a missing pixel (NaN in
the data, a 0 in the certainty map, a masked pixel), 1 for a certain one,
anything between for a weight. With a binary ``c`` this is what
``astropy.convolution.convolve`` computes with ``nan_treatment='interpolate'``
(the kernel's weights renormalised over the valid pixels under it), and this
module follows astropy in every detail it decides (see
``fastcorr._api.normalized``).

Both convolutions are offset correlations (``fastcorr._engine.geometry``) with
the flipped kernel, run by the dispatcher on whichever method it picks for
them (the FFT method keeps the kernel's spectrum between the two). A missing
pixel's value is replaced by 0 *before* it is correlated (its product with a
certainty of 0 would be NaN for a NaN pixel), so a NaN never reaches any
method: no method can spread it to the neighbours.

Boundaries: 'fill' and 'wrap' are the engine's own boundary codes (a fill
value outside the image has certainty 1, or 0 when it is NaN); 'extend'
(astropy's name for repeating the edge sample) pads the image by half a
kernel first; None correlates only where the kernel fits (a 'valid'
correlation) and leaves zeros around it. 1-D data run as 1 x n images; 3-D
data as sums of 2-D correlations over the kernel's planes.
"""
import math
import time
import warnings

import numpy as np

from . import bands, config, costmodel, dispatch
from .dispatch import _finite as _all_finite
from .validate import kernel_sum_check

__all__ = ["solve"]

#: Where no certain pixel is under the kernel, conv(c, k) is exactly 0 on
#: the direct and im2col methods, but the FFT method leaves its rounding
#: there: at most 3.9 eps * sum|k| measured (float32 and float64, images
#: 200²-1024², kernels 9²-101², box / Gaussian / random, 5-90% missing;
#: 2.7-22 eps * sum|k| on its other outputs). So a denominator within
#: FFT_ZERO_ULPS * eps * sum|k| of zero counts as zero after the FFT method
#: (and the separable one, whose factors of a kernel with zero taps are
#: only nearly zero there).
FFT_ZERO_ULPS = 64


class _Geometry:
    """Where the correlations read and write, for one boundary rule.

    ``src(a, fill)`` lays out an input array for the engine (padded by its
    edge samples for 'extend'); the correlation then has output ``shape``,
    offsets ``offsets`` and engine boundary ``code``. ``inner`` selects the
    part of a data-shaped array the output covers (all of it but with
    boundary None).
    """

    def __init__(self, shape, kshape, boundary):
        left = tuple(k // 2 for k in kshape)  # scipy's 'same' centring of the flipped kernel
        right = tuple(k - 1 - l for k, l in zip(kshape, left))
        self.boundary = boundary
        self.left, self.right = left, right
        self.code = 1 if boundary == "wrap" else 0
        if boundary in ("fill", "wrap"):
            self.shape, self.offsets = tuple(shape), tuple(-l for l in left)
            self.inner = tuple(slice(None) for _ in shape)
        elif boundary == "extend":
            self.shape, self.offsets = tuple(shape), (0,) * len(shape)
            self.inner = tuple(slice(None) for _ in shape)
        else:  # None: where the kernel fits inside the data
            self.shape = tuple(n - k + 1 for n, k in zip(shape, kshape))
            self.offsets = (0,) * len(shape)
            self.inner = tuple(slice(l, l + m) for l, m in zip(left, self.shape))

    def src(self, a):
        if self.boundary != "extend":
            return a
        return np.pad(a, tuple(zip(self.left, self.right)), mode="edge")


def _method_for(src, wf, shape, code, dtype, method, nthreads):
    if method != "auto":
        return method
    return dispatch.choose_offset_method(src, wf, shape, code, dtype, nthreads)


def _correlate(src, wf, geo, fill, dtype, method, nthreads, used):
    """Offset correlation of a laid-out input with the flipped kernel.

    2-D: one engine call. 3-D: the sum over the kernel's planes of 2-D
    correlations of the input's planes (the first axis extended by the same
    boundary rule). ``used`` collects the methods that ran.
    """
    dtype = np.dtype(dtype)
    fill = dtype.type(fill)
    if src.ndim == 2:
        m = _method_for(src, wf, geo.shape, geo.code, dtype, method, nthreads)
        used.add(m)
        return dispatch.correlate_offset(src, wf, geo.shape, geo.offsets, geo.code, fill, dtype, m, nthreads)
    nz = src.shape[0]
    shape2, offs2 = geo.shape[1:], geo.offsets[1:]
    out = np.zeros(geo.shape, dtype=dtype)
    for d in range(wf.shape[0]):
        plane_k = np.ascontiguousarray(wf[d])
        ksum_d = None
        m = None
        for z in range(geo.shape[0]):
            zi = z + geo.offsets[0] + d
            if geo.code == 1:
                zi %= nz
            elif not 0 <= zi < nz:  # outside along the first axis: every sample is the fill
                if fill:
                    if ksum_d is None:
                        ksum_d = plane_k.sum(dtype=dtype)
                    out[z] += fill * ksum_d
                continue
            plane = src[zi]
            if m is None:
                m = _method_for(plane, plane_k, shape2, geo.code, dtype, method, nthreads)
                used.add(m)
            out[z] += dispatch.correlate_offset(plane, plane_k, shape2, offs2, geo.code, fill, dtype, m, nthreads)
    return out


def _spread_nan(bad, kshape, geo, nthreads):
    """Where the kernel's rectangle touches a pixel flagged in ``bad`` (or,
    with a fill boundary, the outside): a box count, exact in float64."""
    ones = np.ones(kshape)
    src = geo.src(np.ascontiguousarray(bad, dtype=np.float64))
    fill = 1.0 if geo.boundary == "fill" else 0.0
    count = _correlate(src, ones, geo, fill, np.float64, "auto", nthreads, set())
    return count > 0.5


def solve(p, out=None):
    """Run a validated call (``fastcorr._engine.validate.NormalizedProblem``).

    Returns the result, or the pair (result, certainty) when
    ``p.return_certainty``; the result written into ``out`` when given
    (checked by ``validate.normalized_out_arg``): the fused method writes
    it there directly, the others copy their result in.
    """
    k, c = p.kernel, p.certainty
    dtype = p.dtype
    x = np.ascontiguousarray(p.data, dtype=dtype)
    if x.size == 0:
        res = np.zeros(x.shape, p.out_dtype) if out is None else out
        return (res, np.zeros(x.shape, dtype)) if p.return_certainty else res
    flat = x.ndim == 1
    dest = out if out is not None and out.dtype == dtype else None
    if flat:  # a 1 x n image
        x, k = x[None], k[None]
        c = None if c is None else c[None]
        dest = None if dest is None else dest[None]
    res, cert = _solve(x, k, c, p, dest)
    if flat:
        res, cert = res[0], (None if cert is None else cert[0])
    if out is not None:
        if not (dest is not None and np.may_share_memory(res, out)):
            out[...] = res
        res = out
    else:
        res = res.astype(p.out_dtype, copy=False)
    return (res, cert) if p.return_certainty else res


def _solve(x, k, c, p, dest=None):
    dtype = p.dtype
    fill_nan = math.isnan(p.fill_value)
    ksum = float(np.sum(k, dtype=np.float64))
    wf = np.ascontiguousarray(k[(slice(None, None, -1),) * k.ndim])
    geo = _Geometry(x.shape, k.shape, p.boundary)
    interpolate = p.nan_treatment == "interpolate"
    # nan_treatment='fill' with a NaN fill_value: astropy's missing pixels
    # (and the outside, with a fill boundary) are NaN values, which spread
    # over every output whose kernel reaches them. They are correlated as
    # 0 (so no method spreads them further) and the NaN put back after.
    spread = not interpolate and fill_nan

    miss_value, miss_cert = (0.0, 0.0) if interpolate else ((0.0 if spread else p.fill_value), 1.0)
    miss_centre = np.nan if interpolate else p.fill_value
    if interpolate:
        fill_x, fill_c = (0.0, 0.0) if fill_nan else (p.fill_value, 1.0)
    else:
        fill_x, fill_c = (0.0 if spread else p.fill_value), 1.0

    factors = None if spread else _fused_factors(x, wf, geo, dtype, ksum, p)
    if factors is not None:
        return _solve_fused(x, c, k, factors, geo, ksum, fill_x * fill_c, fill_c, miss_value, miss_cert,
                            miss_centre, p, dest)

    # The correlations' inputs: c * x and c, a missing pixel's value never
    # read (interpolate: value 0, certainty 0; fill: fill_value, certainty 1).
    if c is None and interpolate and _all_finite(x):
        missing = partial = 0  # nothing to prepare (the common case without holes)
        prod = cert_in = None
    else:
        prod, cert_in = np.empty_like(x), np.empty_like(x)
        missing, partial = _in_slabs(_prepare, (x, c, prod, cert_in), miss_value, miss_cert)
    if interpolate:
        weighted = bool(missing or partial or (p.boundary == "fill" and fill_nan))
    else:
        weighted = bool(partial)
    if p.normalize_kernel or weighted:
        kernel_sum_check(ksum, p.zero_tol, weighted)
    if weighted and cert_in is None:  # a NaN fill around complete data
        prod, cert_in = x, np.ones_like(x)

    cert = None
    nans = 0
    if not weighted:
        out = _correlate(geo.src(x if prod is None else prod), wf, geo, fill_x, dtype, p.method,
                         p.num_threads, set())
        if p.normalize_kernel:
            out /= dtype.type(ksum)
        if p.return_certainty:
            cert = np.ones(geo.shape, dtype)
    else:
        num = _correlate(geo.src(prod), wf, geo, fill_x * fill_c, dtype, p.method, p.num_threads, set())
        used_den = set()
        den = _correlate(geo.src(cert_in), wf, geo, fill_c, dtype, p.method, p.num_threads, used_den)
        zt = 0.0
        if used_den & {"fft", "separable"}:
            zt = FFT_ZERO_ULPS * np.finfo(dtype).eps * float(np.abs(k).sum(dtype=np.float64))
        xs = x if p.boundary is not None else np.ascontiguousarray(x[geo.inner])
        cs = c if c is None or p.boundary is not None else np.ascontiguousarray(c[geo.inner])
        nans = _in_slabs(_finish, (num, den, xs, cs), zt, 1.0 if p.normalize_kernel else ksum, miss_centre,
                         p.preserve_nan, p.return_certainty, 1.0 / ksum)
        out = num
        if p.return_certainty:
            cert = den

    if spread and (missing or p.boundary == "fill"):
        out[_spread_nan(_missing(x, c), k.shape, geo, p.num_threads)] = np.nan

    if p.boundary is None:
        full = np.zeros(x.shape, dtype)
        full[geo.inner] = out
        out = full
        if cert is not None:
            full = np.zeros(x.shape, dtype)
            full[geo.inner] = cert
            cert = full
    if p.preserve_nan and missing and (p.boundary is None or not weighted):
        out[_missing(x, c)] = np.nan
    if interpolate and weighted and nans:
        _warn_holes(p, 5)
    return out, cert


def _warn_holes(p, stacklevel):
    """astropy's warning when NaN outputs remain (unless asked for);
    ``stacklevel`` points at the caller of normalized_convolution."""
    if not p.preserve_nan and not p.return_certainty:
        warnings.warn(
            "normalized_convolution: some outputs have no certain pixel under the kernel and are NaN "
            "(a hole in the data larger than the kernel); use a larger kernel to fill them, or "
            "return_certainty=True to see where",
            RuntimeWarning,
            stacklevel=stacklevel,
        )


def _fused_factors(x, wf, geo, dtype, ksum, p):
    """The factors (u, v) of the flipped kernel when the fused method serves
    the call, else None.

    It serves 2-D calls with a kernel of rank 1 that can be normalised, on
    method 'separable', or on 'auto' unless the dispatcher would run the
    FFT method for the same correlation (large kernels).
    """
    if x.ndim != 2 or p.method not in ("auto", "separable") or _fused is None:
        return None
    try:
        kernel_sum_check(ksum, p.zero_tol, False)
    except ValueError:
        return None  # the composed path decides (it raises only if it must divide)
    factors = _rank1(wf, dtype)
    if factors is None:
        return None
    if p.method == "auto" and not _fused_beats_fft(x.shape, wf.shape, geo.shape, geo.code, dtype, p.num_threads):
        return None
    return factors


#: Multiply-adds (output pixels x (kh + kw)) from which the fused method
#: asks the cost model whether a call is long enough to run in bands.
FUSED_LONG_WORK = 2e8

#: Elements per call of a pointwise pass: a long call returns to Python
#: (where Ctrl-C is answered) every few milliseconds.
SLAB = 1 << 22

#: 'auto' runs the fused method unless the cost model's estimate for one
#: separable correlation exceeds this many times its estimate for one FFT
#: correlation (by the data's dtype character). Two FFT correlations and
#: their passes (single-threaded, on four fresh image-sized arrays) cost
#: more than the fused sweep up to large kernels (1024², 5% NaN, Gaussian
#: kernels, 1 thread, CPU ms fused / FFT with ducc0, session 13):
#: float64 101x101 22.7 / 23.8 (the model's ratio 2.03), 151x151
#: 40.1 / 23.5 (2.80); float32 101x101 12.2 / 14.8 (1.44), 151x151
#: 19.4 / 15.3 (1.96): they meet near 2.1 (float64) and 1.7 (float32).
#: On 2 threads the sweep gains ~1.9x, the FFT path less (its passes run
#: on one thread), so the thresholds sit a little above the meeting points
#: (1.5 for float64 before: 'auto' took the FFT path for 1024² float64
#: 101x101 at 28.6 ms on 2 threads). Session 15's sweep is 1.14-1.17x
#: faster at 101x101 (1 thread, CPU ms fused / FFT, loaded machine):
#: float64 131x131 36.5 / 38.9 (model ratio 2.20), 141x141 35.7 / 33.6
#: (2.38), 151x151 42.1 / 39.5 (2.56); float32 141x141 14.8 / 21.4 (1.83),
#: 171x171 17.8 / 19.5 (2.23), 201x201 30.4 / 25.6 (2.65): they meet near
#: 2.3 (float64) and 2.4 (float32).
FUSED_OVER_FFT = {"f": 2.5, "d": 2.4}

_fused_plans = {}

#: Fused sweeps run, and those run on one thread where more were asked
#: (threaded calls stalled lately): read by ``bench --normalized``.
_counts = {"fused": 0, "serial": 0}

#: A threaded sweep that starts more than GAP_SECONDS after the last one
#: ended finds the team's threads asleep (GNU OpenMP's spin before they
#: sleep is well under that), and the calling thread waits at the team's
#: closing barrier until the system has woken and run them (spinning: its
#: CPU time does not show the wait). On this 2-core VM with a neighbour's
#: job on the other core that wait was 1.8 ms after 10 ms idle and 7.5 ms
#: after 140 ms (medians, a 64² call: 10 us back to back), several times a
#: 1024² 5x5 call (or both cores are busy and the team's threads share
#: them). So such calls note whether threads paid: the team's other threads
#: took some of the sweep's tasks (``fastcorr.methods.normalized.
#: last_helped``) and the call ended sooner than the cost model's one-thread
#: time; a call after a gap runs on one thread where threads paid in none of
#: the last GAP_KEEP such calls (every GAP_EXPLORE-th such call runs
#: threaded to see again). Calls back to back keep their threads, and these
#: waits stay out of the engine's stall rate (``config.note_wait``), which
#: they would raise for every call. A quiet machine wakes the threads at
#: once: they take their tasks, and keep them.
#: Off by default (session 15): on the quiet machine, the bench's pattern
#: (astropy's convolve, then a 1024² 5x5 call) measured 2.02 ms threaded
#: against 2.58 with the rule on, whose record never saw threads help (its
#: "helped" test reads the first band only), and 2.53 on one thread.
GAP_AWARE = False
GAP_SECONDS = 5e-3
GAP_KEEP = 3
GAP_EXPLORE = 4
_gap = {"end": 0.0, "helped": [], "seen": False, "calls": 0}

#: The fused sweep's time over the cost model's estimate for one separable
#: correlation (two sets of passes, the second cheaper: 1024² 5% NaN
#: Gaussian kernels, about 1.2-1.5x in session 14; 0.9-1.0x after session
#: 15's sweep: float64 5x5 1.56 ms on one thread at a quiet moment against
#: the model's 1.59, 101x101 18-19.5 ms against 20.6).
FUSED_OVER_SEPARABLE = 1.0
#: Run a threaded call on one thread where threaded calls stall lately and
#: one thread would end sooner (``fastcorr._engine.config.serial_pays``);
#: a quiet machine never stalls, and keeps its threads.
FUSED_SERIAL_WHEN_STALLING = True


def _fused_beats_fft(shape, kshape, out_shape, code, dtype, nthreads):
    key = (shape, kshape, out_shape, code, dtype.char, nthreads, costmodel._generation)
    hit = _fused_plans.get(key)
    if hit is None:
        est = dispatch.candidates(_Shape(shape), _Shape(kshape), out_shape, code, dtype, nthreads)
        sep, fft = est.get("separable"), est.get("fft")
        hit = sep is None or fft is None or sep <= FUSED_OVER_FFT.get(dtype.char, 1.2) * fft
        if len(_fused_plans) > 4096:
            _fused_plans.clear()
        _fused_plans[key] = hit
    return hit


class _Shape:
    """Stands for an array where only its shape is read (the cost model's estimates)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _solve_fused(x, c, k, factors, geo, ksum, fill_p, fill_c, miss_value, miss_cert, miss_centre, p, dest=None):
    """Both correlations and the pointwise passes in one sweep
    (``fastcorr.methods.normalized``), for a rank-1 kernel; the result
    written into ``dest`` (x's shape and dtype) when given."""
    dtype = p.dtype
    u, v = factors
    full = p.boundary is not None
    alloc = _fresh if full else np.zeros
    if dest is None:
        out = alloc(x.shape, dtype)
    else:
        out = dest
        if not full:
            out[...] = 0
    cert = alloc(x.shape, dtype) if p.return_certainty else None
    if p.boundary == "extend":  # no padded copy: the method repeats the edge samples itself
        offsets, edge = tuple(-l for l in geo.left), _fused.EDGE_EXTEND
    else:
        offsets, edge = geo.offsets, (_fused.EDGE_WRAP if p.boundary == "wrap" else _fused.EDGE_FILL)
    centre = (0, 0) if full else geo.left
    zt = FFT_ZERO_ULPS * np.finfo(dtype).eps * float(np.abs(k).sum(dtype=np.float64))
    Ho, Wo = geo.shape
    nans = [0]
    nthreads = p.num_threads
    work = float(Ho) * Wo * (k.shape[0] + k.shape[1])
    if nthreads > 1 and FUSED_SERIAL_WHEN_STALLING and config.stall_expected() > 0.0:
        # As the engine's methods (dispatch.serial_pays): where threaded calls
        # stall lately (a loaded machine), a short call ends sooner on one thread.
        seconds = costmodel.estimate("separable", x.shape, k.shape, geo.shape, dtype, 1, boundary=geo.code)
        if seconds is not None and config.serial_pays(FUSED_OVER_SEPARABLE * seconds):
            nthreads = 1
            _counts["serial"] += 1
    post_gap = False
    if nthreads > 1 and GAP_AWARE and time.monotonic() - _gap["end"] > GAP_SECONDS:
        # The team's threads have slept since its last call: where waking
        # them lately cost more than half this call's time on one thread,
        # the call runs on one (every GAP_EXPLORE-th such call still runs
        # threaded, to see whether waking them still costs that much).
        post_gap = True
        _gap["calls"] += 1
        if _gap["seen"] and _gap["calls"] % GAP_EXPLORE and not any(_gap["helped"]):
            nthreads = 1
            post_gap = False
            _counts["serial"] += 1
    _counts["fused"] += 1
    first = [post_gap]
    helped = [False]
    if post_gap:
        wall0 = time.perf_counter()

    def band(r0, r1):  # output rows r0:r1
        # (the calling thread's CPU time read always: it works in the team, so
        # its wall time beyond its CPU time was waited; a call after the team
        # slept is measured by the GAP_AWARE rule instead)
        with config.WaitClock(1 if post_gap else nthreads, max(config.CPU_TIMED_WORK, work * (r1 - r0) / max(Ho, 1)), 0):
            nans[0] += _fused.normalized_rank1(
                x, c, u, v, out, cert, (r1 - r0, Wo), (offsets[0] + r0, offsets[1]), (centre[0] + r0, centre[1]),
                edge, fill_p, fill_c, miss_value, miss_cert, zt, 1.0 if p.normalize_kernel else ksum, miss_centre,
                p.preserve_nan, 1.0 / ksum, nthreads)
        if first[0]:  # the band that woke the team: did its other threads take a task?
            first[0] = False
            helped[0] = _fused.last_helped > 0

    # A long call runs in bands of output rows, so that it answers Ctrl-C
    # (fastcorr._engine.bands); each band starts its ring of kh rows over.
    rows = None
    min_rows = max(bands.MIN_BAND_ROWS, 2 * k.shape[0])
    if float(Ho) * Wo * (k.shape[0] + k.shape[1]) >= FUSED_LONG_WORK:
        seconds = costmodel.estimate("separable", x.shape, k.shape, geo.shape, dtype, p.num_threads,
                                     boundary=geo.code)
        rows = bands.band_rows(None if seconds is None else 2 * seconds, Ho, min_rows)
    if rows is None:
        band(0, Ho)
    else:
        bands.in_bands(Ho, rows, band, min_rows)
    if post_gap:
        # threads paid: the team's other threads took tasks and the call ended
        # sooner than the model's one-thread time
        one = costmodel.estimate("separable", x.shape, k.shape, geo.shape, dtype, 1, boundary=geo.code)
        paid = helped[0] and (one is None or time.perf_counter() - wall0 < FUSED_OVER_SEPARABLE * one)
        _gap["helped"] = (_gap["helped"] + [paid])[-GAP_KEEP:]
        _gap["seen"] = True
    if nthreads > 1:
        _gap["end"] = time.monotonic()
    nans = nans[0]
    if not full and p.preserve_nan:
        out[_missing(x, c)] = np.nan  # the zeros around too
    if p.nan_treatment == "interpolate" and nans:
        _warn_holes(p, 6)
    return out, cert


#: Fresh results of 4 MiB and more start on a 2 MiB boundary
#: (``fastcorr.methods.direct.fresh_output``, shared with the direct method):
#: numpy asks the kernel for huge pages on allocations from 4 MiB, but only
#: the 2 MiB blocks that lie wholly inside the allocation get them. 1024²
#: float64 5x5, the call after astropy's convolve_fft (which leaves the
#: result fresh memory), 1 thread, CPU ms: 4.0 unaligned against 3.0-3.4
#: aligned, 2.4-2.6 with no fault at all (loaded machine, session 14).
ALIGN_OUTPUT = True
#: Fresh results from this many bytes come from the direct method's recycled
#: blocks (its own threshold is 30 MiB, where glibc maps every block afresh).
#: Below that glibc keeps freed memory for the next call, unless other code
#: frees memory in between and the heap is trimmed. astropy's calls do that,
#: and so would any program alternating normalized convolution with other
#: numeric code. In the bench's pattern (1024² float64 5x5 after astropy's
#: convolve and convolve_fft, 2 threads, session 17), 16 alternated rounds:
#: 1.72-2.00 ms with 43-540 page faults a call, against 1.34 ms with 0.
#: The idle blocks stay bounded (2 blocks, 288 MiB in all).
POOL_MIN_BYTES = 4 << 20


def _fresh(shape, dtype):
    """An uninitialised array (np.empty), on a 2 MiB boundary when large, in
    a recycled block from :data:`POOL_MIN_BYTES` on."""
    if not ALIGN_OUTPUT:
        return np.empty(shape, dtype)
    try:
        from ..methods.direct import fresh_output
    except ImportError:  # an uncompiled tree
        return np.empty(shape, dtype)
    return fresh_output(shape, dtype, pool_min=POOL_MIN_BYTES)


def _in_slabs(func, arrays, *args):
    """``func(*arrays, *args)`` (a pointwise pass over same-shaped arrays, None
    allowed) over flat slabs of :data:`SLAB` elements; its integer results
    (or tuples of them) summed."""
    n = arrays[0].size
    if n <= SLAB:
        return func(*arrays, *args)
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    total = None
    for s0 in range(0, n, SLAB):
        part = func(*[None if a is None else a[s0:s0 + SLAB] for a in flat], *args)
        if total is None:
            total = part
        elif isinstance(part, tuple):
            total = tuple(t + q for t, q in zip(total, part))
        else:
            total += part
    return total


def _missing(x, c):
    missing = np.isnan(x)
    if c is not None:
        missing |= c == 0
    return missing


def _prepare_numpy(x, c, prod, cert, miss_value, miss_cert):
    """:func:`fastcorr._engine.pointwise.prepare` in numpy (an uncompiled tree)."""
    missing = _missing(x, c)
    c1 = np.ones_like(x) if c is None else c
    with np.errstate(invalid="ignore", over="ignore"):
        prod[...] = np.where(missing, miss_value * miss_cert, x * c1)
    cert[...] = np.where(missing, miss_cert, c1)
    return int(missing.sum()), int(((c1 > 0) & (c1 < 1) & ~missing).sum())


def _finish_numpy(num, den, x, c, zero_tol, scale, miss_centre, preserve_nan, want_cert, inv_ksum):
    """:func:`fastcorr._engine.pointwise.finish` in numpy (an uncompiled tree)."""
    missing = _missing(x, c)
    zero = np.abs(den) <= zero_tol
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        res = np.where(zero, np.where(missing, miss_centre, x) * scale, num / den * scale)
    if preserve_nan:
        res[missing] = np.nan
    num[...] = res
    if want_cert:
        den *= inv_ksum
        den[zero] = 0
    return int(np.isnan(res).sum())


try:
    from .pointwise import prepare as _prepare, finish as _finish
except ImportError:  # an uncompiled tree
    _prepare, _finish = _prepare_numpy, _finish_numpy

try:
    from ..methods import normalized as _fused
    from ..methods.separable import decompose as _decompose
except ImportError:  # an uncompiled tree: the composed path only
    _fused = _decompose = None


#: The rank-1 factors of the last kernels seen (by their bytes): a loop of
#: calls with one kernel reads them back (~12 us a call otherwise, ~1% of a
#: 1024² 5x5 call). The factors are the engine's own read-only arrays, never
#: handed to the caller.
_RANK1_CACHE = {}
RANK1_CACHE_SIZE = 32


def _rank1(wf, dtype):
    """(u, v) with ``wf == outer(u, v)`` to the separable method's precision, or None."""
    if _decompose is None:
        return None
    key = (wf.shape, wf.dtype.str, np.dtype(dtype).str, wf.tobytes())
    try:
        return _RANK1_CACHE[key]
    except KeyError:
        pass
    factors = _rank1_uncached(wf, dtype)
    if factors is not None:
        factors = tuple(np.array(f, dtype=dtype, order="C") for f in factors)  # our own copies
        for f in factors:
            f.flags.writeable = False
    if len(_RANK1_CACHE) >= RANK1_CACHE_SIZE:
        _RANK1_CACHE.clear()
    _RANK1_CACHE[key] = factors
    return factors


def _rank1_uncached(wf, dtype):
    """:func:`_rank1` computed (the pivot's row and column, else an SVD)."""
    quick = _rank1_pivot(wf, dtype)
    if quick is not None:
        return quick
    try:
        terms = _decompose(wf, dtype)
    except (np.linalg.LinAlgError, ValueError):
        return None
    return terms[0] if len(terms) == 1 else None


def _rank1_pivot(wf, dtype):
    """(u, v) read off the row and column of the kernel's largest tap, when
    their outer product is the kernel to the separable method's budget
    (8 eps(dtype) sum|w| / sqrt(kernel size)); else None. A Gaussian or a
    box passes without an SVD (the first call with a kernel then skips a
    multi-threaded LAPACK call whose idle BLAS threads spin afterwards)."""
    w = np.asarray(wf, dtype=np.float64)
    if w.ndim != 2 or w.size == 0 or not np.isfinite(w).all():
        return None
    p, q = np.unravel_index(int(np.argmax(np.abs(w))), w.shape)
    pivot = w[p, q]
    if pivot == 0:
        return None
    u = np.ascontiguousarray(w[:, q])
    v = np.ascontiguousarray(w[p, :] / pivot)
    budget = 8.0 * np.finfo(dtype).eps * np.abs(w).sum() / math.sqrt(w.size)
    if np.abs(np.outer(u, v) - w).max() > budget:
        return None
    return u.astype(dtype), v.astype(dtype)
