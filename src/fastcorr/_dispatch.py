"""Method choice: the one place that decides which method serves a call.

An *engine* is a module with
``correlate(x, w, shape, offsets, boundary, fill, num_threads) -> ndarray``
computing the offset correlation (see ``_api.py``) on C-contiguous float32 /
float64 arrays, and flags ``SERVES_COMPLEX`` / ``SERVES_INTEGER`` for the
dtypes it also takes natively (integers as modular uint64).
"""
import importlib
import json
import os
import threading
import time

import numpy as np

from ._memo import KernelCache
try:
    from ._fft_kernels import all_finite as _all_finite
except ImportError:  # an uncompiled tree: numpy's test
    _all_finite = None
from ._validate import as_array, choice, BOUNDARIES, MODES

_ENGINE_MODULES = {
    "direct": "._direct",
    "im2col": "._im2col",
    "fft": "._fft",
    "separable": "._separable",
}


_loaded = {}


def engine(method):
    """The engine module for ``method`` (ValueError if not available)."""
    try:
        name = _ENGINE_MODULES[method]
    except KeyError:
        available = ", ".join(repr(m) for m in ["auto", *_ENGINE_MODULES])
        raise ValueError(f"method={method!r} is not available in this build; use one of {available}") from None
    module = _loaded.get(name)
    if module is None:
        _loaded[name] = module = importlib.import_module(name, __package__)
    return module


# ---------------------------------------------------------------------------
# Cost model. Each method's time is estimated as
#     units(method, case) * constant(method, dtype) / parallel(threads) + overhead
# where units are flop-like counts of the method's inner work (multiply-adds,
# N log N transform units, elements streamed). Constants are seconds per unit
# at 1 thread; ``par`` is the gain of each extra thread (1.0 = linear). The
# shipped defaults were measured on a 2-core AMD EPYC (Zen3, AVX2+FMA);
# ``python -m fastcorr calibrate`` measures them on this machine.
# The FFT method's row-spectrum plan (small images, one thread) has its own
# line: ``rows4`` / ``rows8`` seconds per unit of ``_fft.plan_cost`` plus
# ``rows_overhead``, fitted on 64² and 128² images with 11x11-101x101
# kernels (float32: 28 us + 2.3e-10 s/unit, float64: 38 us + 2.6e-10;
# within 0.88-1.12 of the measured times).

DEFAULT_CONSTANTS = {
    "direct": {"f4": 2.7e-11, "f8": 5.4e-11, "u8": 4.0e-10, "edge": 3.0e-10, "out": 4.0e-10, "par": 0.95,
               "overhead": 1e-5},
    "separable": {"f4": 5.0e-11, "f8": 9.0e-11, "out": 6.0e-10, "par": 0.85, "overhead": 2e-5},
    "fft": {"f4": 2.2e-10, "f8": 6.0e-10, "pass": 8.0e-10, "tile": 1.2e-4, "par": 0.5, "overhead": 4e-5,
            "cached": 0.5, "rows4": 2.28e-10, "rows8": 2.58e-10, "rows_overhead": 3.3e-5},
    "im2col": {"f4": 2.0e-11, "f8": 4.0e-11, "col": 5.0e-10, "out": 2.0e-10, "par": 0.8, "overhead": 3e-5},
}

#: Bytes of one core's L2 cache (Zen 4: 1 MiB), and the overlap-save tiles
#: from which cache-resident tiles are cheaper (see ``_units``).
CACHE_BYTES = 2**20
CACHED_TILES = 64

_calibration = None
_generation = 0
_calibration_lock = threading.Lock()


def calibration_path():
    """Where ``python -m fastcorr calibrate`` stores its constants (JSON).

    ``$XDG_CACHE_HOME/fastcorr/calibration.json``, ``~/.cache`` when
    ``XDG_CACHE_HOME`` is unset.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastcorr", "calibration.json")


def constants():
    """The cost-model constants in use: the calibration file's, else the defaults."""
    global _calibration
    cached = _calibration
    if cached is not None:
        return cached
    with _calibration_lock:
        if _calibration is None:
            merged = {m: dict(c) for m, c in DEFAULT_CONSTANTS.items()}
            try:
                with open(calibration_path()) as f:
                    data = json.load(f)
                for m, c in data.get("constants", {}).items():
                    if m in merged and isinstance(c, dict):
                        merged[m].update({k: float(v) for k, v in c.items() if k in merged[m]})
            except (OSError, ValueError, TypeError, AttributeError):
                pass
            _calibration = merged
        return _calibration


def reset_constants():
    """Forget loaded constants (re-read the calibration file on next use)."""
    global _calibration, _generation
    with _calibration_lock:
        _calibration = None
        _generation += 1
        _forget_plans()


def _par(c, threads):
    return 1.0 + c["par"] * (max(1, threads) - 1)


def _units(method, xshape, wshape, shape, dtype, rank=1, boundary=0):
    """Inner-work units of ``method`` for one real offset correlation."""
    Ho, Wo = shape
    kh, kw = wshape
    out = float(Ho) * Wo
    if method == "direct":
        # Columns whose window crosses the image's left/right edge go through
        # narrow blocks on per-row extended copies: "edge" counts their
        # multiply-adds, which cost several times an interior one.
        direct = engine("direct")
        inner = max(0, min(Wo, xshape[1] - kw + 1))
        edge = float(Ho) * max(0, Wo - inner) * kh * kw
        row_taps = float(Ho) * kh  # kernel rows summed over output rows
        if (Ho + kh - 1) * (Wo + kw - 1) <= direct.PAD_SMALL_ELEMENTS:
            edge, inner = 0.0, Wo  # small images are padded whole first: no edge columns
            if boundary == 0:
                row_taps = _rows_inside(xshape[0], Ho, kh)  # rows of fill are left out
        if dtype.kind in "fc":
            inner = _kernel_columns(inner, direct.VECTOR_BYTES // _real_itemsize(dtype), direct.BLOCK_VECTORS)
        return {"mac": row_taps * inner * kw, "edge": edge, "out": out}
    if method == "separable":
        return {"mac": rank * ((Ho + kh - 1.0) * Wo * kw + out * kh), "out": rank * out}
    if method == "fft":
        from . import _fft

        data = None
        if boundary == 0:
            # the image's extent in the extended image, taken as centred
            # (exact for odd kernels in 'same' and 'full')
            data = []
            for n, out, k in zip(xshape, shape, wshape):
                lead = max(0, out + k - 1 - n) // 2
                data.append((lead, lead + min(n, out + k - 1)))
        f, p, tiles, spectrum, serial = _fft.plan_cost(shape, wshape, dtype, data)
        if serial:  # the row-spectrum plan: its own constants, see DEFAULT_CONSTANTS
            return {"rows": f}
        if not (1 < tiles < CACHED_TILES and spectrum <= CACHE_BYTES):
            # The transform constant is that of the 1024² transforms it was
            # first measured on, with their padded copy. Most plans run at
            # about half of it: whole small images (a 101² image with a
            # 64x64 kernel: 0.15 ms, the full constant said 0.22), many
            # overlap-save tiles (4096², 15x15-21x21 kernels: 576-784 tiles
            # of 160²-192²), the image transformed as it is (512² / 1024²
            # float32 'valid': 0.9 / 3.7 ms, the full constant said 1.8 /
            # 7.9) and a few large tiles (4096², 21x21: 25 tiles of 864²,
            # 87-94 ms against 138). A few dozen small tiles (1024², 21x21:
            # 36 of 192²) pay their overheads instead (10.6 ms against 7.4
            # for direct, float32); the planner now avoids them.
            f *= constants()["fft"].get("cached", 1.0)
        # Overlap-save tiles cost more than their N log N count says (many
        # small transforms, slicing, scatter): measured ~0.1 ms per tile on
        # 1024²-4096² images with 15x15-21x21 kernels.
        return {"mac": f, "pass": p, "tile": float(tiles) if tiles > 1 else 0.0}
    if method == "im2col":
        return {"mac": out * kh * kw, "col": out * kh * kw, "out": out}
    return None


def _rows_inside(H, Ho, kh):
    """Kernel rows that fall on image rows, summed over the ``Ho`` output
    rows, with the image centred in the extended rows (as 'same' and 'full'
    place it). The direct method leaves the others out when the boundary
    is a fill (a 64² float32 'same' call with a 31x31 kernel: 62 -> 56 us).

    >>> _rows_inside(64, 64, 31), 64 * 31
    (1744.0, 1984)
    """
    from . import _fft

    lead = max(0, Ho + kh - 1 - H) // 2
    return float(_fft._tap_rows(H, Ho, kh, -lead))


def _real_itemsize(dtype):
    """4 or 8: the float precision a float or complex dtype is computed in
    (float16 as float32; complex by its real parts)."""
    return 4 if dtype.itemsize <= (4 if dtype.kind == "f" else 8) else 8


def _kernel_columns(n, lanes, vectors):
    """Columns the direct kernel computes for a row of ``n``: whole blocks of
    ``vectors`` vectors (the last one overlapping), or for rows narrower than
    a block, whole vectors. Measured: 38 float32 columns cost as 64 (1.9x
    the multiply-add count), one column as 8-9."""
    block = lanes * vectors
    if n >= block:
        return -(-n // block) * block
    return -(-n // lanes) * lanes


def estimate(method, xshape, wshape, shape, dtype, threads, rank=1, boundary=0):
    """Estimated seconds for ``method`` on one offset correlation (None: unknown)."""
    dtype = np.dtype(dtype)
    cs = constants().get(method)
    u = _units(method, xshape, wshape, shape, dtype, rank, boundary)
    if cs is None or u is None:
        return None
    if "rows" in u:
        key = f"rows{_real_itemsize(dtype)}"
        return u["rows"] * cs[key] + cs["rows_overhead"] if key in cs else None
    if dtype.kind in "iu":
        key, mult = "u8", 1.0
    else:
        key = f"f{_real_itemsize(dtype)}"
        mult = (2.0 if method == "fft" else 4.0) if dtype.kind == "c" else 1.0
    if key not in cs:
        return None
    t = u["mac"] * cs[key]
    for extra in ("out", "pass", "col", "edge", "tile"):
        if extra in u and extra in cs:
            t += u[extra] * cs[extra]
    return mult * t / _par(cs, threads) + cs["overhead"]


_autotune = False
_autotune_cache = {}
_autotune_lock = threading.Lock()


def set_autotune(enabled=True):
    """Turn autotuning of ``method='auto'`` on or off (process-wide).

    When on, the first 'auto' call for a given case (shapes, dtype, boundary,
    threads) times every method that can serve it and caches the fastest for
    the rest of the process, like cuDNN's benchmark mode. Thread-safe.

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


def get_autotune():
    """Whether autotune mode is on (see :func:`set_autotune`).

    Examples
    --------
    >>> import fastcorr
    >>> fastcorr.get_autotune()
    False
    """
    return _autotune


def _finite(a):
    """Whether ``a`` holds no NaN or inf (integers: always).

    Compiled (``_fft_kernels.all_finite``): one read of the values, where
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
        from . import _separable
    except ImportError:
        return None
    try:  # a NaN/inf kernel fails the SVD or shows full rank: not separable
        return _separable.rank(w, np.float32 if np.dtype(dtype).itemsize <= 4 else np.float64)
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
    for m in _ENGINE_MODULES:
        if dtype.kind in "iu" and m not in ("direct", "im2col"):
            continue
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


def choose_offset_method(x, w, shape, boundary, dtype, num_threads):
    """The method 'auto' runs for one offset correlation.

    Picks the cheapest method by the cost model (or, in autotune mode, by
    timing). Never FFT for integers or when ``x`` or ``w`` holds NaN/inf;
    separable only when the kernel's numerical rank is at most 3.

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
        elif m == "fft" and not (_finite(w) and _finite(x)):
            continue
        return m
    return "direct"


_plans = {}  # (shapes, boundary, dtype, threads, generation) -> _rank_plan(...); cleared by set_autotune

#: (h1, w1, h2, w2, mode, dtype number, threads) -> 1 when 'auto' runs the
#: direct method on a plain call of that shape whatever the values; 0 when
#: the values (the kernel's rank, NaN/inf) or the model pick the method.
#: Read by ``_direct.plain_call`` on every plain call; filled by
#: :func:`plain_plan`; cleared with ``_plans``.
plain_plans = {}

#: Called with no argument whenever plans are forgotten (``_direct``
#: registers the reset of its last-case memo).
forget_hooks = []


def _forget_plans():
    _plans.clear()
    plain_plans.clear()
    for hook in forget_hooks:
        hook()


def _shape_plan(x, w, shape, boundary, dtype, num_threads):
    """:func:`_rank_plan`, computed once per case."""
    key = (x.shape, w.shape, shape, boundary, dtype, num_threads, _generation)
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
    """:func:`_separable_rank`, remembered for kernels of up to 128x128 elements."""
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
        rdtype = np.dtype(np.uint64)
    elif dtype.kind == "c":
        rdtype = np.dtype(np.complex64 if dtype.itemsize <= 8 else np.complex128)
    else:
        rdtype = np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)
    xs = np.ascontiguousarray(np.nan_to_num(x) if x.dtype.kind in "fc" else x, dtype=rdtype)
    ws = np.ascontiguousarray(np.nan_to_num(w) if w.dtype.kind in "fc" else w, dtype=rdtype)
    from ._api import correlate_offset

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


def choose_method(in1, in2, mode="full", boundary="fill"):
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
    from ._api import output_shape
    from ._config import get_num_threads

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


def _time(fn, reps=3):
    fn()
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(path=None, threads=None, verbose=False):
    """Measure the cost-model constants on this machine and store them as JSON.

    Runs a few seconds of micro-benchmarks (one representative case per
    method and dtype, at 1 thread and at ``threads``) and writes them to
    ``path`` (default :func:`calibration_path`). Later processes use them.

    Returns
    -------
    dict
        The measured constants, as stored.
    """
    from ._api import correlate_offset
    from ._config import get_num_threads

    threads = threads or get_num_threads()
    rng = np.random.default_rng(0)
    cases = {  # method -> (image, kernel, units key)
        "direct": ((384, 384), (7, 7)),
        "separable": ((512, 512), (15, 15)),
        "fft": ((512, 512), (31, 31)),
        "im2col": ((256, 256), (7, 7)),
    }
    result = {}
    for m, (xs, ks) in cases.items():
        if m not in _ENGINE_MODULES:
            continue
        try:
            engine(m)
        except ImportError:
            continue
        c = dict(DEFAULT_CONSTANTS[m])
        par_gain = []
        for key, dt in (("f4", np.float32), ("f8", np.float64)):
            x = rng.standard_normal(xs).astype(dt)
            g = np.hanning(ks[0] + 2)[1:-1]
            w = (np.outer(g, g) if m == "separable" else rng.standard_normal(ks)).astype(dt)
            shape = xs
            offs = (-(ks[0] // 2), -(ks[1] // 2))
            u = _units(m, xs, ks, shape, np.dtype(dt))
            t1 = _time(lambda: correlate_offset(x, w, shape, offs, 0, 0, dt, m, 1))
            rest = sum(u[e] * c[e] for e in ("out", "pass", "col") if e in u and e in c)
            # per-sample terms keep their defaults; the main constant takes the rest
            busy = max(t1 - c["overhead"], 1e-9)
            c[key] = max(busy - rest, 0.2 * busy) / u["mac"]
            if threads > 1:
                tn = _time(lambda: correlate_offset(x, w, shape, offs, 0, 0, dt, m, threads))
                par_gain.append(((t1 - c["overhead"]) / max(tn - c["overhead"], 1e-9) - 1) / (threads - 1))
            if verbose:
                print(f"calibrate {m:9s} {np.dtype(dt).name:8s} {t1 * 1e3:8.2f} ms -> {c[key]:.3e} s/unit")
        if par_gain:
            c["par"] = float(min(1.0, max(0.05, np.median(par_gain))))
        result[m] = c
    path = path or calibration_path()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"version": 1, "threads": threads, "constants": result}, f, indent=1)
    os.replace(tmp, path)
    reset_constants()
    return result
