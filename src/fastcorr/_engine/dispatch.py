"""Method choice: the one place that decides which method serves a call.

An *engine* is an object (a method's module, or for im2col a small adapter
in ``fastcorr._engine.conv``) with
``correlate(x, w, shape, offsets, boundary, fill, num_threads) -> ndarray``
computing the offset correlation (see ``fastcorr._engine.geometry``) on
C-contiguous float32 / float64 arrays, and flags ``SERVES_COMPLEX`` /
``SERVES_INTEGER`` for the dtypes it also takes natively (integers as
modular uint64; with ``NATIVE_INTEGER``, in their own dtypes: the narrow
exact lanes of ``fastcorr.methods.integer``, which serve integer calls of
'direct' and 'separable' wherever they can). :func:`choose_offset_method` ranks them by the cost model
(``fastcorr._engine.costmodel``); :func:`correlate_offset` runs the choice
through ``fastcorr._engine.lowering``. conv2d's choice is
:func:`choose_conv_method`.
"""
from __future__ import annotations

import importlib
import threading
import time

import numpy as np
from numpy.typing import ArrayLike

from ..methods._memo import KernelCache
try:
    from ..methods.fft_kernels import all_finite as _all_finite
except ImportError:  # an uncompiled tree: numpy's test
    _all_finite = None
from . import bands, config, costmodel, lowering
from .costmodel import estimate
from .geometry import output_shape
from .validate import as_array, choice, BOUNDARIES, MODES, Boundary, ChosenMethod, Mode

#: method -> (module, attribute): where its engine lives (None: the module).
_ENGINES = {
    "direct": ("fastcorr.methods.direct", None),
    "im2col": ("fastcorr._engine.conv", "im2col_offset_engine"),
    "fft": ("fastcorr.methods.fft", None),
    "separable": ("fastcorr.methods.separable", None),
}
#: The methods of correlate2d, in the order they are listed to users.
METHODS = tuple(_ENGINES)


_loaded = {}


def engine(method):
    """The engine for ``method`` (ValueError if not available)."""
    try:
        name, attribute = _ENGINES[method]
    except KeyError:
        available = ", ".join(repr(m) for m in ["auto", *METHODS])
        raise ValueError(f"method={method!r} is not available in this build; use one of {available}") from None
    found = _loaded.get((name, attribute))
    if found is None:
        found = importlib.import_module(name)
        if attribute is not None:
            found = getattr(found, attribute)
        _loaded[(name, attribute)] = found
    return found


def correlate_offset(x, w, shape, offsets, boundary, fill, dtype, method, num_threads, out=None):
    """Offset correlation in result dtype ``dtype`` on ``method`` ('auto': the
    one :func:`choose_offset_method` picks), lowering dtypes as needed;
    written into ``out`` (checked by ``validate.out_arg``) if given."""
    dtype = np.dtype(dtype)
    if 0 in shape or x.size == 0 or w.size == 0:
        result = lowering.trivial(x, w, shape, boundary, fill, dtype)
        if out is None:
            return result
        out[...] = result
        return out
    deferred = False
    if method == "auto":
        method = choose_offset_method(x, w, shape, boundary, dtype, num_threads, defer_x=True)
        deferred = method == "fft" and _defers(x)
    timed = num_threads > 1 and method in TEAM_METHODS
    if timed and serial_pays(method, x.shape, w.shape, shape, dtype, boundary):
        num_threads, timed = 1, False
    runner = engine(method)
    if dtype.kind in "iu":  # exact narrow lanes where they serve (fastcorr.methods.integer)
        runner = lowering.integer_engine(method, x.shape, w.shape, shape, dtype) or runner
    if method != "fft" and float(shape[0]) * shape[1] * w.shape[0] * w.shape[1] >= LONG_CALL_WORK:
        # the separable method recomputes kh - 1 rows of its first pass per
        # band: at least 2 kh rows keep that under a quarter of the pass
        min_rows = max(bands.MIN_BAND_ROWS, 2 * w.shape[0] if method == "separable" else 0)
        rows = bands.band_rows(estimate(method, x.shape, w.shape, shape, dtype, num_threads, boundary=boundary),
                               shape[0], min_rows)
        if rows is not None:  # a long call: in bands, so that it answers Ctrl-C
            runner = bands.Banded(runner, rows, min_rows)
    if out is None and (method != "direct" or isinstance(runner, bands.Banded)):
        out = _recycled_output(runner, method, shape, dtype)
        if out is not None:
            try:
                return correlate_offset(x, w, shape, offsets, boundary, fill, dtype,
                                        "auto" if deferred else method, num_threads, out=out)
            except BaseException:  # (Ctrl-C in a long call): the block goes back to the system
                from ..methods import direct

                direct.discard(out)
                raise
    work = float(shape[0]) * shape[1] * w.shape[0] * w.shape[1]
    if deferred:
        try:
            return lowering.correlate_offset(_FiniteChecked(runner), method, x, w, shape, offsets, boundary, fill,
                                             dtype, num_threads, out=out)
        except runner.NonFinite:  # x holds NaN or inf (or a tile's row sum overflowed)
            method = "fft" if _finite(x) else choose_offset_method(x, w, shape, boundary, dtype, num_threads)
            return correlate_offset(x, w, shape, offsets, boundary, fill, dtype, method, num_threads, out=out)
    # (bytes of a fresh output, whose page faults are no wait: none when the
    # output is given or a recycled block)
    fresh = 0 if out is not None or costmodel.recycles(method, shape, dtype) else work / w.size * dtype.itemsize
    with config.WaitClock(num_threads if timed else 1, work, fresh):
        return lowering.correlate_offset(runner, method, x, w, shape, offsets, boundary, fill, dtype,
                                         num_threads, out=out)


def _recycled_output(runner, method, shape, dtype):
    """A recycled output block (``methods.direct.fresh_output``) for
    ``method``'s result, written in place by ``runner``, instead of a new
    array mapped afresh (and faulted in) by every call; None where the
    method would copy into it or the size is not recycled
    (``costmodel.recycles``). (The direct method takes one itself, but not
    in bands.)"""
    if not getattr(runner, "SERVES_OUT", False) or not costmodel.recycles(method, shape, dtype):
        return None
    from ..methods import direct

    return direct.fresh_output(shape, dtype)


#: Images (values) from which 'auto' leaves the FFT method's NaN/inf rule to
#: the method itself (``fft.correlate(check_finite=True)`` from
#: :func:`correlate_offset`): the in-place ducc0 tiles look at
#: each tile's row sums (a few hundred values) instead of the image being
#: read once more before the call. Measured, 1024² float64: the read took
#: 0.15 ms of a 9 ms call at one thread, 0.3 ms of ~6 at two (it runs on one).
DEFER_FINITE_ELEMENTS = 1 << 18


def _defers(x):
    return x.size >= DEFER_FINITE_ELEMENTS


class _FiniteChecked:
    """The FFT engine module, its ``correlate`` called with ``check_finite=True``."""

    __slots__ = ("_engine",)

    def __init__(self, engine):
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def correlate(self, *args, **kwargs):
        return self._engine.correlate(*args, check_finite=True, **kwargs)


#: Running stall rate (``config``: stalled threaded calls, 1/16 a call)
#: below which a call keeps its threads whatever its length: one stall now
#: and then (after another library's calls, whose idle threads spin on the
#: cores for a while: 0.5-5 % of threaded calls on a quiet machine) is not
#: a busy machine. One stall sets the rate to 1/16, two in a row ~0.12; a
#: busy machine, where most threaded calls stall, drives it to 0.5-1.
#: (Without this, a single stall put every call under ~1 ms on one thread
#: for 3-4 s: the regret grid's 64² float32 31x31 'valid', run just after
#: OpenCV's calls, took 68 us on one thread against 34 on two. 'auto' does
#: not choose another method where the guard puts a call on one thread:
#: its results would then depend on the machine's load.)
SUSTAINED_STALL_RATE = 0.1


def serial_pays(method, xshape, wshape, shape, dtype, boundary):
    """Whether threaded calls stall lately (``config.STALL_SECONDS``), at a
    sustained rate (:data:`SUSTAINED_STALL_RATE`), enough that this call,
    estimated on one thread, ends sooner on one thread."""
    if config.stall_expected() == 0.0 or config._rate_now(time.monotonic()) < SUSTAINED_STALL_RATE:
        return False
    seconds = estimate(method, xshape, wshape, shape, dtype, 1, boundary=boundary)
    return seconds is not None and config.serial_pays(seconds)


#: Methods whose calling thread works as one of the call's OpenMP team (its
#: wall time minus its CPU time is what it waited for the others: see
#: ``config.note_wait``); the FFT method's caller waits for its tile pool.
TEAM_METHODS = frozenset({"direct", "separable"})

#: Multiply-adds from which :func:`correlate_offset` asks the cost model
#: whether a call is long enough to run in bands (``fastcorr._engine.bands``):
#: below it no method takes a tenth of a second.
LONG_CALL_WORK = 2e9


_autotune = False
_autotune_cache = {}
_autotune_lock = threading.Lock()


def set_autotune(enabled: bool = True) -> None:
    """Turn autotuning of ``method='auto'`` on or off (process-wide).

    When on, the first 'auto' call for a given case (shapes, dtype, boundary,
    threads) times every method that can serve it and caches the fastest for
    the rest of the process, like cuDNN's benchmark mode. Thread-safe.

    Parameters
    ----------
    enabled : bool, default True
        Whether 'auto' times the candidate methods (True) or trusts the cost
        model (False, the default state).

    Examples
    --------
    >>> import fastcorr
    >>> fastcorr.set_autotune(True); fastcorr.get_autotune()
    True
    >>> fastcorr.set_autotune(False)
    """
    global _autotune
    _autotune = bool(enabled)
    _forget_plans()  # plans ranked under the other setting
    if not _autotune:
        with _autotune_lock:
            _autotune_cache.clear()


def get_autotune() -> bool:
    """Whether autotune mode is on (see :func:`set_autotune`).

    Returns
    -------
    bool
        True when 'auto' times the candidate methods.

    Examples
    --------
    >>> import fastcorr
    >>> fastcorr.get_autotune()
    False
    """
    return _autotune


def _finite(a):
    """Whether ``a`` holds no NaN or inf (integers: always).

    Compiled (``fastcorr.methods.fft_kernels.all_finite``): one read of the values, where
    ``np.isfinite(a).all()`` writes and reduces a boolean temporary (2 us
    on a 31x31 kernel, 0.4 ms on a 1024² float64 image, against 0.25). Not
    through BLAS (a dot product of ``a`` with itself): that wakes
    OpenBLAS's thread pool, which then spins on the cores beside the FFT
    that follows (1024² float64, 63x63: 37 ms against 24).
    """
    if _all_finite is None:
        return a.dtype.kind in "iu" or bool(np.isfinite(a).all())
    return _all_finite(a)


def _separable_rank(w, dtype):
    try:
        from ..methods import separable
    except ImportError:
        return None
    try:  # a NaN/inf kernel fails the SVD or shows full rank: not separable
        return separable.rank(w, np.float32 if np.dtype(dtype).itemsize <= 4 else np.float64)
    except (np.linalg.LinAlgError, ValueError):
        return None


def candidates(x, w, shape, boundary, dtype, num_threads):
    """Estimated seconds per available method that can serve the case: {method: s}.

    Integer dtypes get only exact methods; complex dtypes no separable path.
    FFT and separable are left out (not estimated) when they cannot serve;
    the NaN/inf rule is applied by :func:`choose_offset_method`.
    """
    dtype = np.dtype(dtype)
    est = {}
    for m in METHODS:
        if dtype.kind in "iu" and m not in ("direct", "im2col", "separable"):
            continue
        if m == "separable" and dtype.kind in "iu" and lowering.integer_engine(m, x.shape, w.shape, shape,
                                                                                dtype) is None:
            continue  # exact integer passes: rank-one integer kernels (value rule in choose_offset_method)
        if m == "separable" and dtype.kind == "c":
            continue
        if m == "im2col" and dtype.kind in "iu":
            try:
                if not getattr(engine(m), "SERVES_INTEGER", False):
                    continue
            except ImportError:
                continue
        t = estimate(m, x.shape, w.shape, shape, dtype, num_threads, boundary=boundary)
        if t is not None:
            est[m] = t
    return est


def choose_offset_method(x, w, shape, boundary, dtype, num_threads, defer_x=False):
    """The method 'auto' runs for one offset correlation.

    Picks the cheapest method by the cost model (or, in autotune mode, by
    timing). Never FFT for integers or when ``x`` or ``w`` holds NaN/inf;
    separable only when the kernel's numerical rank is at most 3.
    ``defer_x``: for images of at least ``DEFER_FINITE_ELEMENTS`` values,
    'fft' without looking at ``x``; the caller then runs it as 'auto'
    through :func:`correlate_offset`, which gives the method
    ``check_finite=True`` and chooses again when ``x`` holds NaN or inf.

    The cost model's ranking depends only on shapes, dtype and threads, so it
    is computed once per case and kept (``_plans``); each call then only
    applies the value-dependent rules (the kernel's rank for the separable
    path, NaN/inf for FFT) to the ranked methods. Every method runs with
    the call's threads: each sizes its own team by its work.
    """
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    fixed, order, separable_rank_wins = _shape_plan(x, w, shape, boundary, dtype, num_threads)
    if fixed is not None:
        return fixed
    for m in order:
        if m == "separable":
            r = _separable_rank_cached(w, dtype)
            if r is None or r > 3 or (r > 1 and not separable_rank_wins[r]):
                continue
        elif m == "fft" and not (_finite(w) and ((defer_x and _defers(x)) or _finite(x))):
            continue
        return m
    return "direct"


_plans = {}  # (shapes, boundary, dtype, threads, generation) -> _rank_plan(...); cleared by set_autotune

#: (h1, w1, h2, w2, mode, dtype number, threads) -> 1 when 'auto' runs the
#: direct method on a plain call of that shape whatever the values; 0 when
#: the values (the kernel's rank, NaN/inf) or the model pick the method.
#: Read by ``fastcorr._engine.plain_call`` on every plain call; filled by
#: :func:`plain_plan`; cleared with ``_plans``.
plain_plans = {}

#: Called with no argument whenever plans are forgotten (``plain_call``
#: registers the reset of its last-case memo).
forget_hooks = []


def _forget_plans():
    _plans.clear()
    plain_plans.clear()
    for hook in forget_hooks:
        hook()


costmodel.reset_hooks.append(_forget_plans)  # plans ranked under the old constants


def _shape_plan(x, w, shape, boundary, dtype, num_threads):
    """:func:`_rank_plan`, computed once per case."""
    key = (x.shape, w.shape, shape, boundary, dtype, num_threads, costmodel._generation)
    plan = _plans.get(key)
    if plan is None:
        plan = _rank_plan(x, w, tuple(shape), boundary, dtype, num_threads)
        if len(_plans) > 4096:
            _plans.clear()
        _plans[key] = plan
    return plan


def plain_plan(key, x, w, shape, num_threads):
    """Record and return ``plain_plans[key]`` for a 'fill' call on ``x``, ``w``."""
    fixed = _shape_plan(x, w, tuple(shape), 0, x.dtype, num_threads)[0]
    plan = 1 if fixed == "direct" else 0
    if len(plain_plans) > 4096:
        plain_plans.clear()
    plain_plans[key] = plan
    return plan


def _rank_plan(x, w, shape, boundary, dtype, num_threads):
    """Shape-only part of the choice: methods by estimated time.

    Returns ``(fixed, order, separable_rank_wins)``: the answer when it does
    not depend on the values (else None); the methods from fastest to
    slowest estimate; for ranks 2 and 3, whether a sum of that many
    separable passes still beats every other method.

    (Until 2026-11-27 methods whose one-thread estimate was under 40 us ran
    on one thread. Measured since, at 2 threads: direct and separable run
    faster on two from ~20 us (a 64² float32 image with a 21x21 kernel:
    40 -> 29 us; a 64² float64 15x15 Gaussian: 21 -> 16 us) and small FFTs
    take as long either way; each method now sizes its own team.)
    """
    if x.size == 0 or w.size == 0 or shape[0] * shape[1] == 0:
        return "direct", ["direct"], {2: False, 3: False}
    est = candidates(x, w, shape, boundary, dtype, num_threads)
    wins = {2: False, 3: False}
    if "separable" in est:
        others = min((t for m, t in est.items() if m != "separable"), default=np.inf)
        if est["separable"] < others:
            for r in (2, 3):
                t = estimate("separable", x.shape, w.shape, shape, dtype, num_threads, rank=r,
                             boundary=boundary)
                wins[r] = t is not None and t < others
        else:
            del est["separable"]
    order = sorted(est, key=est.get)
    if _autotune and len(order) > 1:
        # Time only plausible candidates (within 8x of the model's best).
        near = [m for m in order if est[m] <= 8.0 * est[order[0]]]
        if len(near) > 1:
            order = _autotuned(near, x, w, shape, boundary, dtype, num_threads) + order[len(near):]
    # When the first choice needs no look at the values, the answer is fixed.
    first = order[0] if order else "direct"
    fixed = None if first in ("separable", "fft") else first
    return fixed, order, wins


_ranks = KernelCache(max_entries=256)  # (kernel bytes, shape, dtype) -> numerical rank


def _separable_rank_cached(w, dtype):
    """:func:`_separable_rank`, remembered for kernels of up to 128x128 elements.

    Integer results: 1 when the kernel has integer factors modulo the
    result's bits (the exact passes of ``fastcorr.methods.integer``), else None."""
    if np.dtype(dtype).kind in "iu":
        try:
            from ..methods import integer
        except ImportError:
            return None
        return 1 if integer.factor(w, 8 * np.dtype(dtype).itemsize) is not None else None
    if w.size > 128 * 128:
        return _separable_rank(w, dtype)
    key = (w.shape, w.dtype.char, np.dtype(dtype).itemsize <= 4, w.tobytes())
    r = _ranks.get(key, -1)
    if r == -1:
        r = _separable_rank(w, dtype)
        _ranks.put(key, r)
    return r


def _autotuned(order, x, w, shape, boundary, dtype, num_threads):
    key = (x.shape, w.shape, tuple(shape), boundary, dtype.str, num_threads, tuple(order))
    with _autotune_lock:
        hit = _autotune_cache.get(key)
    if hit is not None:
        return [hit] + [m for m in order if m != hit]
    if dtype.kind in "iu":
        rdtype = dtype
    elif dtype.kind == "c":
        rdtype = np.dtype(np.complex64 if dtype.itemsize <= 8 else np.complex128)
    else:
        rdtype = np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)
    xs = np.ascontiguousarray(np.nan_to_num(x) if x.dtype.kind in "fc" else x, dtype=rdtype)
    ws = np.ascontiguousarray(np.nan_to_num(w) if w.dtype.kind in "fc" else w, dtype=rdtype)
    times = {}
    for m in order:
        try:
            correlate_offset(xs, ws, shape, (0, 0), boundary, 0, rdtype, m, num_threads)
            best = np.inf
            for _ in range(2):
                t0 = time.perf_counter()
                correlate_offset(xs, ws, shape, (0, 0), boundary, 0, rdtype, m, num_threads)
                best = min(best, time.perf_counter() - t0)
            times[m] = best
        except (ValueError, MemoryError):
            continue
    if not times:
        return order
    win = min(times, key=times.get)
    with _autotune_lock:
        _autotune_cache[key] = win
    return [win] + [m for m in order if m != win]


def choose_method(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
                  boundary: Boundary = "fill") -> ChosenMethod:
    """Report the method ``method='auto'`` would use for these arguments.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
        Image and kernel, as for :func:`fastcorr.correlate2d`.
    mode, boundary : str
        As for :func:`fastcorr.correlate2d`.

    Returns
    -------
    str
        One of 'direct', 'im2col', 'fft', 'separable'.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.choose_method(np.ones((64, 64)), np.ones((3, 3)))
    'direct'
    """
    x = as_array(in1, "in1", ndim=2)
    w = as_array(in2, "in2", ndim=2)
    choice(mode, "mode", MODES)
    choice(boundary, "boundary", tuple(BOUNDARIES))
    from .config import get_num_threads

    if mode == "valid" and all(b >= a for a, b in zip(x.shape, w.shape)):
        x, w = w, x
    shape = output_shape(mode, x.shape, w.shape)
    return choose_offset_method(x, w, shape, BOUNDARIES[boundary], np.result_type(x, w), get_num_threads())


def choose_conv_method(x_shape, w_shape, stride, groups, itemsize=4, dilation=(1, 1),
                       padding_mode="zeros", out_hw=None):
    """The method ``conv2d(method='auto')`` runs: 'direct', 'im2col' or 'winograd'.

    The direct method's register-blocked kernels run at the machine's FMA
    rate without writing the im2col matrix, so they win wherever a kernel
    tap's input is shared by neighbouring taps. A 1x1 convolution is a plain
    GEMM on the input itself (no im2col copy); BLAS wins there only once a
    group's weights outgrow the L2 cache the direct kernel keeps them in and
    the GEMM is large. Measured (2 threads, N=8, float32, ms direct / im2col):
    256->256 14x14 1.24 / 1.47, 256->256 28x28 4.95 / 5.36, 512->512 7x7
    1.33 / 1.57, 128->512 28x28 5.4 / 8.4, 64->256 56x56 6.0 / 11.8;
    512->512 14x14 5.6 / 4.9, 256->1024 14x14 6.6 / 5.6, 1024->1024 7x7
    6.0 / 5.5.

    A 3x3 convolution with unit stride and dilation, one group and zero
    padding runs Winograd's F(2x2, 3x3) (2.25x fewer multiply-adds) when its
    channels and output are large enough for the transforms and the
    transformed weights to pay: see :data:`WINOGRAD_MIN_CHANNELS`.
    """
    cout, cg, kh, kw = w_shape
    if (kh, kw) == (3, 3):
        if out_hw is None:
            out_hw = (x_shape[-2] - 2, x_shape[-1] - 2)
        winograd = (tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1
                    and padding_mode == "zeros" and min(cg, cout) >= WINOGRAD_MIN_CHANNELS
                    and min(out_hw) >= WINOGRAD_MIN_SIDE
                    and 16 * cg * cout * itemsize <= WINOGRAD_MAX_WEIGHT_BYTES)
        return "winograd" if winograd else "direct"
    if (kh, kw) != (1, 1):
        return "direct"
    cog = cout // max(groups, 1)
    pixels = -(-x_shape[-2] // stride[0]) * -(-x_shape[-1] // stride[1])
    big_weights = cg * cog * itemsize >= POINTWISE_GEMM_WEIGHT_BYTES
    big_gemm = cg * cog * pixels >= POINTWISE_GEMM_WORK
    return "im2col" if big_weights and big_gemm else "direct"


#: conv2d 'auto' runs Winograd F(2x2, 3x3) on 3x3 layers with at least this
#: many input and output channels, ... Measured (2 threads, ms Winograd /
#: direct), float32: 8x64->64 56x56 5.8 / 9.1, 8x128->128 28x28 5.6 / 9.1,
#: 16->16 512x512 6.7 / 7.4, 16->16 64x64 0.151 / 0.150, 8->8 256x256
#: 0.99 / 0.54, 3->16 8x64x64 0.42 / 0.29; float64: 16->16 64x64 0.20 /
#: 0.26, 8->8 256x256 1.22 / 1.01.
WINOGRAD_MIN_CHANNELS = 16
#: ... an output of at least this many rows and columns (its GEMMs run over
#: one band of tiles of one image: 8x8 outputs give too few to reuse the
#: weights; float32 2x128->128 8x8 0.46 / 0.36, 8x256->256 14x14 3.6 / 2.6,
#: 8x256->256 28x28 24.6 / 36.8) ...
WINOGRAD_MIN_SIDE = 16
#: ... and transformed weights (16 per pair of channels) of at most this
#: many bytes (float32 8x512->512 14x14: 55 / 43 ms with 16 MiB).
WINOGRAD_MAX_WEIGHT_BYTES = 8 * 2**20


#: A 1x1 convolution runs as a GEMM (conv2d 'auto') when one group's weights
#: take at least this many bytes (the direct kernel keeps them in L2) ...
POINTWISE_GEMM_WEIGHT_BYTES = 2**20
#: ... and one image's GEMM has at least this many multiply-adds.
POINTWISE_GEMM_WORK = 2**25


