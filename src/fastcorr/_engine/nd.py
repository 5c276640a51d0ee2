"""The N-D correlation engine: scipy.signal.correlate / convolve's rules as
offset correlations, the choice of a method, batches and windows of lags.

Every call reduces to offset correlations (as in 2-D, ``geometry``)

    out[m] = sum_k w[k] * X[m + off + k]      (N-D indices; X: in1 extended by zeros)

with ``w`` the conjugated second input (correlate) or the flipped one
(convolve), one offset and output length per correlated axis:

=========  ===================  =============
mode       offset               length
=========  ===================  =============
'full'     -(K - 1)             N + K - 1
'same'     -(K // 2)            N
'valid'    0                    N - K + 1
lags       lo                   hi - lo + 1
=========  ===================  =============

(the window of lags [lo, hi] is the 'full' result at lags lo..hi, numbered as
``scipy.signal.correlation_lags``). In 'valid' mode with the second input
the larger, convolution swaps its inputs (it commutes) and correlation
correlates the swapped pair and reverses the result. Axes outside ``axes``
broadcast: the kernel's length-1 axes join the correlation with K = 1; the
others are looped over (direct) or broadcast in the spectra (FFT).

2-D calls without ``axes`` or ``lags`` run on the 2-D engine
(``dispatch.correlate_offset``, correlate2d's machinery); the others on
``methods.nd_direct`` (compiled, SIMD over the last axis) or
``methods.nd_fft`` (scipy.fft, real transforms, threaded), picked by
:func:`estimate` when ``method='auto'`` (never FFT for integers or for
inputs holding NaN or inf). Dtypes the methods do not serve go through
``lowering`` as in 2-D (complex as real parts, integers exactly in modular
uint64, float16 as float32).
"""
import math

import numpy as np
import scipy.fft as sfft

from ..methods import _fftlib
from ..methods._blas import blas_threads
from . import costmodel, dispatch, lowering
from .validate import check_output_fits

#: Seconds per multiply-add of the N-D direct method at one thread (float32,
#: float64, uint64; the defaults of ``costmodel.DEFAULT_CONSTANTS['nd']``,
#: which ``python -m fastcorr calibrate`` re-measures); measured on the 2-core Zen 4 host in CPU time, one
#: thread: 128³ float32 with a 7³ kernel 25-27 ms (27 GFMA/s), lags ±100 of
#: two 2e6-sample float64 signals 21.6 ms (Karatsuba's split included).
DIRECT_MAC = {4: 4.0e-11, 8: 6.0e-11, "u8": 4.0e-10}
#: The same for the three-row loop (``nd_direct.uses_rows3``): 128³ float32
#: with a 7³ kernel 18-19 ms (~39 GFMA/s), float64 39-40 ms.
DIRECT_MAC_ROWS3 = {4: 2.6e-11, 8: 5.4e-11}
DIRECT_OVERHEAD = 2e-5
#: Seconds per output sample of the direct method's memory traffic (padded copy, output).
DIRECT_BYTES = 2.0e-9
#: Seconds per unit of ``L log2 L`` of transforms of L samples at one thread:
#: batches of 1-D frames (overlap-save, windows of lags: 2e6 samples, 43 ms
#: at 2 threads for a 2001-tap kernel), N-D transforms (128³ with 7³: ~50 ms),
#: one long 1-D transform (pocketfft runs it on one thread: 2e6 samples ~50 ms).
FFT_UNIT = {"frames": 1.0e-9, "nd": 6.0e-10, "long": 1.2e-9, "window": 2.2e-10}
#: ``window``: a window of lags (``nd_fft.window_1d``, its frames in cache,
#: ducc0): lags ±100 of two 2e6-sample float64 signals 10-13 ms of CPU time
#: at one thread (the direct method with Karatsuba's split: 20 ms). Each
#: extra thread (batches on Python threads) gains WINDOW_PAR; scipy.fft's
#: transforms (without ducc0) take WINDOW_SCIPY times ducc0's.
WINDOW_PAR = 0.8
WINDOW_SCIPY = 1.7
#: Gain of each extra worker thread of ``scipy.fft``.
FFT_PAR = 0.5
FFT_OVERHEAD = 1e-4


def _const():
    """The N-D constants in use: ``costmodel``'s 'nd' entry (the defaults
    above, or those ``python -m fastcorr calibrate`` measured here)."""
    return costmodel.constants()["nd"]


def _direct_mac(key, rows3=False):
    """Seconds per multiply-add of the direct method for a dtype key."""
    if key == "u8":
        return DIRECT_MAC["u8"]
    return _const()[("rows3_" if rows3 else "direct") + str(key)]


def _engine_direct():
    from ..methods import nd_direct
    return nd_direct


def _engine_fft():
    from ..methods import nd_fft
    return nd_fft


class _FFTOnAxes:
    """The FFT engine on some axes (the others broadcast), as ``lowering`` calls it."""

    SERVES_COMPLEX = True
    SERVES_INTEGER = False

    def __init__(self, axes):
        self.axes = axes

    def correlate(self, x, w, shape, offsets, boundary, fill, num_threads):
        return _engine_fft().correlate(x, w, shape, offsets, boundary, fill, num_threads, axes=self.axes)


class _Plan1D:
    """A 1-D FFT plan of ``methods.nd_fft``: ``window_1d`` (a few lags of two
    long signals) or ``overlap_save_1d`` (a long signal, a shorter kernel)."""

    SERVES_COMPLEX = True
    SERVES_INTEGER = False

    def __init__(self, name):
        self.name = name

    def correlate(self, x, w, shape, offsets, boundary, fill, num_threads):
        return getattr(_engine_fft(), self.name)(x, w, shape[0], offsets[0], num_threads)


def _real_size(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return "u8"
    return 4 if dtype.itemsize <= (4 if dtype.kind == "f" else 8) else 8


def _plan_1d(n, K):
    """The FFT plan of a 1-D offset correlation: 'window' (a few outputs, a
    long kernel), 'overlap' (overlap-save: a long output, a shorter kernel)
    or 'fft' (one transform of the whole)."""
    if n * 4 < K:
        return "window"
    if 8 * K < n:
        return "overlap"
    return "fft"


def estimate(method, xshape, wshape, shape, offsets, axes, dtype, threads):
    """Estimated seconds of ``method`` ('direct' or 'fft') for one offset
    correlation on ``axes`` (complex: ~4x direct, ~2x FFT; None: cannot serve)."""
    dtype = np.dtype(dtype)
    key = _real_size(dtype)
    threads = max(1, int(threads))
    out = float(math.prod(shape))
    if method == "direct":
        macs = out * float(math.prod(wshape))
        mac = _direct_mac(key, rows3=key in DIRECT_MAC_ROWS3 and _engine_direct().uses_rows3(
            wshape, shape, np.float32 if key == 4 else np.float64))
        t = macs * mac / threads + out * DIRECT_BYTES + DIRECT_OVERHEAD
        return t * (4.0 if dtype.kind == "c" else 1.0)
    if key == "u8":
        return None
    par = 1.0 + FFT_PAR * (threads - 1)
    if len(xshape) == 1:
        n, K = shape[0], wshape[0]
        plan = _plan_1d(n, K)
        if plan == "window":
            M = sfft.next_fast_len(max(4096, 8 * n), real=True)
            wpar = 1.0 + WINDOW_PAR * (threads - 1)
            units = (2.0 * math.ceil(K / (M - n + 1)) * M * math.log2(M) * _const()["window"] / wpar
                     * (1.0 if _fftlib.library() == "ducc0" else WINDOW_SCIPY))
        elif plan == "overlap":
            M = sfft.next_fast_len(max(8 * K, 4096), real=True)
            units = 2.0 * math.ceil(n / (M - K + 1)) * M * math.log2(M) * FFT_UNIT["frames"] / par
        else:
            L = _engine_fft().sizes(xshape, wshape, shape, offsets)[0]
            units = 3.0 * L * math.log2(max(L, 2)) * FFT_UNIT["long"]
    else:
        L = _engine_fft().sizes([xshape[a] for a in axes], [wshape[a] for a in axes],
                                [shape[a] for a in axes], [offsets[a] for a in axes])
        batch = float(math.prod(s for a, s in enumerate(shape) if a not in axes))
        total = float(math.prod(L))
        units = 3.0 * batch * total * math.log2(max(total, 2.0)) * _const()["fft_nd"] / par
    t = units * (0.75 if key == 4 else 1.0) + FFT_OVERHEAD
    return t * (2.0 if dtype.kind == "c" else 1.0)


def _finite(a):
    return dispatch._finite(np.ascontiguousarray(a)) if a.dtype.kind in "fc" else True


def _geometry(p, x, w, axes):
    """Output shape and offsets (per axis; batch axes: offset 0)."""
    shape, offsets = [], []
    lag = dict(zip(axes, p.lags)) if p.lags is not None else {}
    for d in range(x.ndim):
        N, K = x.shape[d], w.shape[d]
        if d not in axes:
            shape.append(max(N, K) if N and K else 0)
            offsets.append(0)
        elif d in lag:
            lo, hi = lag[d]
            shape.append(hi - lo + 1)
            offsets.append(lo)
        elif p.mode == "full":
            shape.append(max(N + K - 1, 0) if N and K else 0)
            offsets.append(-(K - 1))
        elif p.mode == "same":
            shape.append(N)
            offsets.append(-(K // 2))
        else:
            shape.append(N - K + 1)
            offsets.append(0)
    return tuple(shape), tuple(offsets)


def solve(p, convolve):
    """The result of a validated N-D call (``validate.NdProblem``)."""
    x, w = p.in1, p.in2
    if x.ndim == 0:
        return x * w if convolve else x * np.conj(w)
    axes = list(p.axes)
    if p.given_axes and not convolve:
        # correlation reverses the kernel along every axis asked for, also
        # those where in1 has length 1 (then a batch, as fftconvolve's)
        dropped = [d for d in p.requested_axes if d not in axes and w.shape[d] > 1]
        if dropped:
            w = np.flip(w, axis=dropped)
    if p.mode == "same" and p.given_axes:
        # fftconvolve centres 'same' on in1's shape on every axis: along a
        # batch axis where in1 has length 1, the kernel's middle entry
        for d in range(x.ndim):
            if d not in axes and x.shape[d] == 1 and w.shape[d] > 1:
                c = (w.shape[d] - 1) // 2
                w = w[(slice(None),) * d + (slice(c, c + 1),)]
    if p.swapped:
        # 'valid' with in2 the larger: convolution commutes; correlation
        # correlates conj(in2) with in1 and reverses the result.
        if convolve:
            x, w = w, x
        else:
            x, w = np.conj(w) if w.dtype.kind == "c" else w, x
    elif not convolve and w.dtype.kind == "c":
        w = np.conj(w)
    if convolve and axes:
        w = np.flip(w, axis=axes)
    shape, offsets = _geometry(p, x, w, axes)
    dtype = p.dtype
    if math.prod(shape) and (p.mode == "full" or p.lags is not None or p.given_axes):
        check_output_fits(shape, dtype)
    if x.size == 0 or w.size == 0 or 0 in shape:
        return np.zeros(shape, dtype)
    if p.lags is not None:
        out = _window(x, w, shape, offsets, axes, dtype, p.method, p.num_threads)
    elif x.ndim == 2 and len(axes) == 2:
        # correlate2d's machinery (its own 'auto', plain-call plans, bands)
        out = dispatch.correlate_offset(x, w, shape, offsets, 0, 0, dtype, p.method, p.num_threads)
    else:
        out = _run(x, w, shape, offsets, axes, dtype, p.method, p.num_threads)
    if p.swapped and not convolve:
        out = np.ascontiguousarray(np.flip(out, axis=axes))
    return out


def choose(x, w, shape, offsets, axes, dtype, method, num_threads):
    """'direct' or an FFT plan: 'fft' (N-D), or for 1-D 'window' or 'overlap'."""
    dtype = np.dtype(dtype)
    fft_plan = _plan_1d(shape[0], w.shape[0]) if x.ndim == 1 else "fft"
    if method == "fft":
        return fft_plan
    if method == "direct" or dtype.kind in "iu":
        return "direct"
    direct = estimate("direct", x.shape, w.shape, shape, offsets, axes, dtype, num_threads)
    fft = estimate("fft", x.shape, w.shape, shape, offsets, axes, dtype, num_threads)
    if fft is None or direct <= fft or not (_finite(x) and _finite(w)):
        return "direct"
    return fft_plan


def _lowered(x, w, dtype):
    """long double / clongdouble: computed in double precision (no kernel
    runs wider); everything else as is."""
    if dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16):
        low = np.dtype(np.float64 if dtype.kind == "f" else np.complex128)
        return x.astype(low), w.astype(low), low
    return x, w, dtype


def _run(x, w, shape, offsets, axes, dtype, method, num_threads, chosen=None):
    x, w, cdtype = _lowered(x, w, dtype)
    m = chosen or choose(x, w, shape, offsets, axes, cdtype, method, num_threads)
    if m in ("direct", "fft") and method == "auto":
        factors = _rank_one(x, w, shape, axes, cdtype, num_threads)
        if factors is not None:
            return _separable(x, factors, shape, offsets, cdtype, num_threads).astype(dtype, copy=False)
    if m in ("window", "overlap"):
        plan = _Plan1D("window_1d" if m == "window" else "overlap_save_1d")
        out = lowering.correlate_offset(plan, "fft", x, w, shape, offsets, 0, 0, cdtype, num_threads)
    elif m == "fft":
        out = lowering.correlate_offset(_FFTOnAxes(axes), "fft", x, w, shape, offsets, 0, 0, cdtype,
                                        num_threads)
    else:
        out = _direct(x, w, shape, offsets, axes, cdtype, num_threads)
    return out.astype(dtype, copy=False)


def _direct(x, w, shape, offsets, axes, dtype, num_threads):
    """The direct method, batch axes where the kernel is longer than 1 looped over."""
    engine = _engine_direct()
    loop = [d for d in range(x.ndim) if d not in axes and w.shape[d] > 1]
    if not loop:
        slabs = min(shape[0], int(float(math.prod(shape)) * w.size // SLAB_WORK)) if x.ndim >= 2 else 1
        if slabs < 2:
            return lowering.correlate_offset(engine, "direct", x, w, shape, offsets, 0, 0, dtype, num_threads)
        # a long call runs in slabs of output planes: between two, Python
        # sees a Ctrl-C (each slab reads only the input rows it needs)
        out = np.empty(shape, dtype)
        cuts = np.linspace(0, shape[0], slabs + 1).astype(int)
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                out[a:b] = lowering.correlate_offset(engine, "direct", x, w, (int(b - a),) + tuple(shape[1:]),
                                                     (offsets[0] + int(a),) + tuple(offsets[1:]), 0, 0, dtype,
                                                     num_threads)
        return out
    out = np.empty(shape, dtype)
    inner = tuple(1 if d in loop else s for d, s in enumerate(shape))
    for idx in np.ndindex(*[shape[d] for d in loop]):
        sx, sw, so = [], [], []
        it = iter(idx)
        for d in range(x.ndim):
            if d in loop:
                i = next(it)
                sx.append(slice(0, 1) if x.shape[d] == 1 else slice(i, i + 1))
                sw.append(slice(i, i + 1))
                so.append(slice(i, i + 1))
            else:
                sx.append(slice(None))
                sw.append(slice(None))
                so.append(slice(None))
        out[tuple(so)] = lowering.correlate_offset(engine, "direct", x[tuple(sx)], w[tuple(sw)], inner, offsets,
                                                   0, 0, dtype, num_threads)
    return out


def _window(x, w, shape, offsets, axes, dtype, method, num_threads):
    """A window of lags: the part inside the full correlation's range is
    computed, the rest is zeros."""
    sub_shape, sub_off, place = list(shape), list(offsets), []
    empty = False
    for d in range(x.ndim):
        if d not in axes:
            place.append(slice(None))
            continue
        N, K = x.shape[d], w.shape[d]
        lo, hi = offsets[d], offsets[d] + shape[d] - 1
        a, b = max(lo, -(K - 1)), min(hi, N - 1)
        if b < a:
            empty = True
            a, b = lo, lo
        sub_off[d], sub_shape[d] = a, b - a + 1
        place.append(slice(a - lo, b - lo + 1))
    out = np.zeros(shape, dtype)
    if empty:
        return out
    sub = _run(x, w, tuple(sub_shape), tuple(sub_off), axes, dtype, method, num_threads)
    if tuple(sub_shape) == tuple(shape):
        return sub
    out[tuple(place)] = sub
    return out


#: Multiply-adds per slab of a long N-D direct call (tens of milliseconds).
SLAB_WORK = 5e8


#: Kernels of at most this many taps are tested for rank 1 (3-D and up).
SEPARABLE_MAX_TAPS = 1 << 15


def _rank_one(x, w, shape, axes, dtype, num_threads):
    """The 1-D factors of a real float kernel of rank 1 (an outer product,
    such as a Gaussian), when their passes are estimated cheaper than the
    direct method: one per axis, each the leading singular vector of the
    kernel unfolded along that axis; else None."""
    if (x.ndim < 3 or dtype.kind != "f" or w.size > SEPARABLE_MAX_TAPS or len(axes) != x.ndim
            or sum(k > 1 for k in w.shape) < 2):
        return None
    out = float(math.prod(shape))
    # the passes' multiply-adds (the first ones on 1-tap rows: counted double)
    t_sep = (2.0 * out * sum(w.shape) * _direct_mac(_real_size(dtype)) / max(1, num_threads)
             + w.ndim * out * DIRECT_BYTES)
    offsets = [0] * x.ndim  # the estimates depend on the offsets only through the FFT sizes' window
    best = min(t for t in (estimate("direct", x.shape, w.shape, shape, offsets, axes, dtype, num_threads),
                           estimate("fft", x.shape, w.shape, shape, offsets, axes, dtype, num_threads))
               if t is not None)
    if t_sep >= best:
        return None
    w64 = np.asarray(w, dtype=np.float64)
    if not np.isfinite(w64).all():
        return None
    factors = []
    with blas_threads(1):  # (see fastcorr.methods._blas)
        for d in range(w.ndim):
            unfold = np.moveaxis(w64, d, 0).reshape(w.shape[d], -1)
            factors.append(np.linalg.svd(unfold, full_matrices=False)[0][:, 0])
    approx = factors[0]
    for u in factors[1:]:
        approx = np.multiply.outer(approx, u)
    scale = float(np.vdot(approx, w64))
    approx *= scale
    eps = np.finfo(np.float32 if dtype.itemsize <= 4 else np.float64).eps
    if np.abs(approx - w64).max() > 4 * eps * max(np.abs(w64).sum(), np.finfo(float).tiny):
        return None
    factors[0] = factors[0] * scale
    return factors


def _separable(x, factors, shape, offsets, dtype, num_threads):
    """A rank-1 kernel as one 1-D pass per axis (the last axis first: it
    shrinks the rows the other passes read), each on the direct method."""
    engine = _engine_direct()
    cur = np.ascontiguousarray(x, dtype=dtype)
    cur_shape = list(x.shape)
    for d in reversed(range(x.ndim)):
        k = np.ascontiguousarray(factors[d], dtype=dtype).reshape([-1 if a == d else 1 for a in range(x.ndim)])
        cur_shape[d] = shape[d]
        offs = [offsets[a] if a == d else 0 for a in range(x.ndim)]
        cur = engine.correlate(cur, k, tuple(cur_shape), tuple(offs), 0, 0, num_threads)
    return cur
