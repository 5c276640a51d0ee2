"""scipy.ndimage's filters on the engine: N-D correlation with an origin and
a boundary mode, and 1-D line filters along any axis.

Everything here works on real float32 / float64 C-contiguous arrays (the
API layer, ``fastcorr._api.ndimage``, brings other dtypes and complex
values here and writes the output as scipy does). The ndimage correlation

    out[n] = sum_j w[j] * X[n + j - (k // 2) - origin]      (per axis)

is an offset correlation (``fastcorr._engine.geometry``) with offset
``-(k // 2) - origin``. 1-D and 2-D inputs go to the 2-D dispatcher with
the boundary rule in the methods (no padded copy); 3-D and up are extended
once into a padded copy and correlated 'valid' by the N-D direct method
(``fastcorr.methods.nd_direct``, the one fastcorr.correlate uses) or, for
large kernels, by FFT.
"""
import math
import threading

import numpy as np
import scipy.fft

from ..methods import nd_direct
from ..methods import separable as _separable
from ..methods._pool import GrowingPool
from . import config, dispatch
from .geometry import extended_index

__all__ = ["compute_dtype", "pad", "correlate", "correlate_line", "separable2d", "weights_as", "FFT_MIN_TAPS"]

#: Kernel taps from which 'auto' correlates a 3-D (or higher) input by FFT
#: (128³ float32, one thread, CPU time: 9³ direct 35 ms, FFT 53 ms; 11³
#: direct 88 ms, FFT 56 ms).
FFT_MIN_TAPS = 1000
#: Elements from which the padded copy is filled by several threads.
PARALLEL_COPY_ELEMENTS = 1 << 18

_pool = GrowingPool("fastcorr-ndimage")


def compute_dtype(in_dtype, out_dtype):
    """The float dtype a filter computes in: float32 for float32 (or float16)
    input written to a float32 (or narrower float, complex64) output, else
    float64 (scipy.ndimage computes in float64 and casts)."""
    out_dtype = np.dtype(out_dtype)
    if np.dtype(in_dtype) in (np.float32, np.float16) and (
            (out_dtype.kind == "f" and out_dtype.itemsize <= 4) or out_dtype == np.complex64):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def weights_as(w, dtype):
    """``w`` in ``dtype``, C-contiguous. Rounded to float32, the taps are
    nudged (largest first, by float32 steps) so that their sum stays the
    float64 sum as nearly as float32 allows: a smoothing kernel keeps its
    gain of 1 (a plain rounding may move it by ~1e-7, a bias that adds up
    over large images)."""
    w64 = np.asarray(w, dtype=np.float64)
    if np.dtype(dtype) != np.float32 or w64.size == 0 or not np.all(np.isfinite(w64)):
        return np.ascontiguousarray(w64, dtype=dtype)
    w32 = np.ascontiguousarray(w64, dtype=np.float32)
    flat = w32.reshape(-1)
    target = float(np.sum(w64))
    resid = target - float(np.sum(flat, dtype=np.float64))
    for i in np.argsort(-np.abs(w64.reshape(-1)))[:8]:
        if resid == 0:
            break
        new = np.float32(float(flat[i]) + resid)
        resid -= float(new) - float(flat[i])
        flat[i] = new
    return w32


def _copy_into(dst, src, num_threads):
    """dst[...] = src, split over the first axis on several threads when large."""
    if num_threads > 1 and src.size >= PARALLEL_COPY_ELEMENTS and src.shape[0] >= num_threads:
        cuts = np.linspace(0, src.shape[0], num_threads + 1).astype(int)
        ex = _pool.executor(num_threads)
        futures = [ex.submit(np.copyto, dst[a:b], src[a:b]) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        for f in futures:
            f.result()
    else:
        np.copyto(dst, src)


def pad(x, lo, hi, boundary, cval, num_threads=1):
    """``x`` extended by ``lo[a]`` / ``hi[a]`` samples before / after its
    edges along each axis ``a`` by the boundary rule (0 fill with ``cval``,
    1 wrap, 2 symm, 3 nearest, 4 mirror), C-contiguous. Edges repeat as
    often as needed, so the extension may exceed ``x``'s size."""
    shape = tuple(n + a + b for n, a, b in zip(x.shape, lo, hi))
    P = np.empty(shape, dtype=x.dtype)
    inner = tuple(slice(a, a + n) for a, n in zip(lo, x.shape))
    _copy_into(P[inner], x, num_threads)
    for ax, (a, b, n) in enumerate(zip(lo, hi, x.shape)):
        if a == 0 and b == 0:
            continue
        # earlier axes are already extended (their full length), later ones not yet
        region = [slice(None)] * ax + [slice(None)] + [inner[i] for i in range(ax + 1, x.ndim)]
        for start, count, dst0 in ((-a, a, 0), (n, b, a + n)):
            if count == 0:
                continue
            dst = tuple(region[:ax] + [slice(dst0, dst0 + count)] + region[ax + 1:])
            if boundary == 0:
                P[dst] = cval
            else:
                idx = extended_index(np.arange(start, start + count), n, boundary) + a
                src = tuple(region[:ax] + [idx] + region[ax + 1:])
                P[dst] = P[src]
    return P


#: Padded copies of 3-D inputs of at least this many bytes (and at most
#: WORKSPACE_MAX) are kept, one per Python thread, for the next call of the
#: same shape: private (never part of a result), so the next copy writes
#: into memory already mapped.
WORKSPACE_MIN = 1 << 20
WORKSPACE_MAX = 1 << 26
_workspace = threading.local()


def _pad3(x, lo, hi, boundary, cval, num_threads):
    """:func:`pad` of a 3-D float input by one pass of the N-D direct
    method's row copier (OpenMP threads; 128³ float32 padded by 1, one
    thread, CPU time: ~0.6 ms against numpy's 1.2), in this thread's kept
    buffer when one of the shape is there."""
    shape = tuple(n + a + b for n, a, b in zip(x.shape, lo, hi))
    nbytes = math.prod(shape) * x.itemsize
    key = (shape, x.dtype.str)
    P = None
    if WORKSPACE_MIN <= nbytes <= WORKSPACE_MAX:
        kept = getattr(_workspace, "padded", None)
        if kept is not None and kept[0] == key:
            P = kept[1]
        else:
            _workspace.padded = None  # drop the old buffer before making the new one
            P = np.empty(shape, dtype=x.dtype)
            _workspace.padded = (key, P)
    if P is None:
        P = np.empty(shape, dtype=x.dtype)
    maps = [extended_index(np.arange(-a, n + b), n, boundary) for a, b, n in zip(lo, hi, x.shape)]
    return nd_direct.pad3(np.ascontiguousarray(x), *maps, cval, lo[2], P, num_threads)


def _fft_valid(P, w, num_threads):
    """The 'valid' correlation of P with w by one real FFT per operand."""
    shape = [scipy.fft.next_fast_len(n, real=True) for n in P.shape]
    axes = tuple(range(P.ndim))
    fp = scipy.fft.rfftn(P, shape, axes=axes, workers=num_threads)
    fw = scipy.fft.rfftn(w, shape, axes=axes, workers=num_threads)
    np.conjugate(fw, out=fw)
    fp *= fw
    full = scipy.fft.irfftn(fp, shape, axes=axes, workers=num_threads)
    valid = tuple(slice(0, p - k + 1) for p, k in zip(P.shape, w.shape))
    return np.ascontiguousarray(full[valid], dtype=P.dtype)


def correlate(x, w, origins, boundary, cval, method, num_threads):
    """ndimage's correlation of ``x`` with ``w`` (real, same float dtype,
    same ndim; origins checked), in x's dtype and shape."""
    offsets = tuple(-(k // 2) - o for k, o in zip(w.shape, origins))
    dtype = x.dtype
    cval = dtype.type(cval)
    if x.ndim == 1:
        return dispatch.correlate_offset(x[None, :], w[None, :], (1, x.shape[0]), (0, offsets[0]),
                                         boundary, cval, dtype, method, num_threads)[0]
    if x.ndim == 2:
        return dispatch.correlate_offset(x, w, x.shape, offsets, boundary, cval, dtype, method, num_threads)
    # N-D: leading axes the kernel does not reach are a batch of (N-1)-D calls
    # when few; otherwise the whole volume is padded once.
    lo = [-o for o in offsets]
    hi = [k - 1 - a for k, a in zip(w.shape, lo)]
    if method in ("im2col", "separable"):
        raise ValueError(f"method={method!r} serves 1-D and 2-D inputs only; "
                         f"use 'auto', 'direct' or 'fft' for {x.ndim}-D inputs")
    use_fft = method == "fft" or (method == "auto" and w.size >= FFT_MIN_TAPS)
    work = float(x.size) * w.size
    if not use_fft and num_threads > 1 and _stalls_cost_more(work, dtype, x.size):
        num_threads = 1
    P = _pad3(x, lo, hi, boundary, cval, num_threads) if x.ndim == 3 else pad(x, lo, hi, boundary, cval, num_threads)
    if use_fft:
        return _fft_valid(P, w, num_threads)
    out = np.empty(x.shape, dtype=dtype)
    w = np.ascontiguousarray(w)
    # A long call runs in slabs along the first axis (each a C-contiguous
    # block of P and of out): between two slabs Python sees a Ctrl-C.
    slabs = min(x.shape[0], max(1, int(work // SLAB_WORK)))
    cuts = np.linspace(0, x.shape[0], slabs + 1).astype(int)
    with config.WaitClock(num_threads, work, out.nbytes):
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                nd_direct.correlate_valid(P[a:b + w.shape[0] - 1], w, out[a:b], num_threads)
    return out


#: Seconds per multiply-add (float32, float64) and per output sample of a
#: 3-D direct call at one thread, for the stall check below (128³ float32
#: with 3³: ~3.3 ms of CPU time, 0.4 of them the padded copy).
DIRECT3_MAC = {4: 4.0e-11, 8: 6.0e-11}
DIRECT3_SAMPLE = 2.5e-10


def _stalls_cost_more(work, dtype, samples=None):
    """Whether threaded calls stall lately (``config.stall_expected``, fed
    by the ``config.WaitClock`` around every threaded call, as the 2-D
    dispatcher's) so much that a call of ``work`` multiply-adds ends sooner
    on one thread."""
    if config.stall_expected() == 0.0:
        return False
    seconds = work * DIRECT3_MAC.get(np.dtype(dtype).itemsize, 6.0e-11)
    if samples is not None:
        seconds += samples * DIRECT3_SAMPLE
    return config.serial_pays(seconds)


#: Multiply-adds per slab of a long N-D direct call (tens of milliseconds).
SLAB_WORK = 5e8


def correlate_line(x, w, axis, origin, boundary, cval, num_threads):
    """ndimage's 1-D correlation of the lines of ``x`` along ``axis`` with
    ``w`` (1-D, x's float dtype), in x's dtype and shape."""
    x = np.ascontiguousarray(x)
    dtype = x.dtype
    cval = dtype.type(cval)
    n, k = x.shape[axis], w.shape[0]
    off = -(k // 2) - origin
    before = math.prod(x.shape[:axis])
    after = math.prod(x.shape[axis + 1:])
    if x.size == 0:
        return np.empty(x.shape, dtype)
    if after == 1:
        r = dispatch.correlate_offset(x.reshape(before, n), w[None, :], (before, n), (0, off),
                                      boundary, cval, dtype, "auto", num_threads)
    elif before == 1:
        r = dispatch.correlate_offset(x.reshape(n, after), w[:, None], (n, after), (off, 0),
                                      boundary, cval, dtype, "auto", num_threads)
    else:
        P = pad(x.reshape(before, n, after), (0, -off, 0), (0, k - 1 + off, 0), boundary, cval, num_threads)
        r = np.empty((before, n, after), dtype)
        nd_direct.correlate_valid(P, np.ascontiguousarray(w.reshape(1, k, 1)), r, num_threads)
    return r.reshape(x.shape)


def separable2d(x, u, v, origins, boundary, cval, num_threads):
    """ndimage's correlation of the 2-D ``x`` with ``outer(u, v)`` (taps u
    along axis 0, v along axis 1, x's float dtype) by the separable method's
    two passes per band of rows."""
    off0 = -(u.shape[0] // 2) - origins[0]
    off1 = -(v.shape[0] // 2) - origins[1]
    out = np.empty(x.shape, dtype=x.dtype)
    # bands of at least 4 (kh - 1) rows: the kh - 1 rows of the first pass
    # that each band recomputes stay under a fifth of its work (the method's
    # default, sized for its cache budget, recomputes 16x at kh = 129), and
    # of at least 64 rows (4096² float32 sigma 1, one thread, CPU time: 32
    # rows 21.9 ms, 64 rows 20.1, 128 rows 19.6); the buffer of a band stays
    # under 8 MiB a thread
    kh = u.shape[0]
    rows_cap = max(8, (8 << 20) // max(1, x.shape[1] * x.itemsize) - kh + 1)
    band = min(max(4 * (kh - 1), 64), rows_cap)
    nt = max(1, int(num_threads))
    work = float(x.size) * (u.shape[0] + v.shape[0])
    if nt > 1 and _stalls_cost_more(work, x.dtype, x.size):
        nt = 1
    band = min(band, max(1, -(-x.shape[0] // nt)))
    with config.WaitClock(nt, work, out.nbytes):
        _separable._pass(x, np.ascontiguousarray(u), np.ascontiguousarray(v), out, off0, off1, boundary,
                         x.dtype.type(cval), 0, nt, band)
    return out
