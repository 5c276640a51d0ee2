"""The cost model: estimated seconds of each method for one offset correlation.

Each method's time is estimated as
    units(method, case) * constant(method, dtype) / parallel(threads) + overhead
(see :data:`DEFAULT_CONSTANTS`). ``fastcorr._engine.dispatch`` ranks the
methods by these estimates; ``fastcorr._engine.calibrate`` measures the
constants on this machine.
"""
import json
import os
import threading

import numpy as np

# Each method's time is estimated as
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
# Real inputs on ducc0 run the FFT method's in-place tile engine
# (``fft._ducc_tiles``), which has its own line: ``d4`` / ``d8`` seconds per
# unit of ``fft.ducc_cost`` (tile transforms with their cache factor and
# per-tile cost), ``dout`` seconds per output byte of the gathered extended
# image (boundaries other than fill), ``drecycled`` (subtracted) per output
# byte a recycled output block spares, ``dpar`` its gain per extra thread.
# Fitted at one thread on 1024² and 4096² images, 21x21-101x101 kernels:
# float64 0.27-0.29 ns a unit, float32 0.21-0.30 (0.24 taken: 1024² whole
# images 0.21, 2048² in 375² tiles 0.30). Refitted with the per-length
# factors (``fft.DUCC_LENGTHS``), thread CPU time, 512²-4096² images,
# 15x15-101x101 kernels: float64 0.25-0.33 ns a unit (0.295 taken; 'auto'
# then still picks the faster of direct and FFT at 1024², 7x7-25x25, but
# for 15x15 float32 and 13x13 float64 within 15% of the crossover), float32
# 0.16-0.24 (0.24 kept: a lower one moves 1024² float32 13x13 to the FFT,
# measured slower); the scipy.fft constants
# above stay for installations without ducc0 (or with a scipy.fft backend).

DEFAULT_CONSTANTS = {
    "direct": {"f4": 2.7e-11, "f8": 5.4e-11, "u8": 4.0e-10, "edge": 3.0e-10, "out": 4.0e-10, "par": 0.95,
               "overhead": 1e-5, "i2": 1.5e-11, "i4": 3.3e-11, "i8": 1.6e-10, "iout": 3.5e-11,
               "fresh": 1.25e-10, "fresh_par": 0.4},
    # separable f4/f8 refitted 2026-12-06 (one thread, CPU time, a 31x31
    # Gaussian, 'same'): 1024² 2.8 / 5.3 ms, 4096² 46 / 93 (the old 5.0e-11 /
    # 9.0e-11 said 3.9 / 6.6 and 62 / 104, and put 4096² float64 on the FFT)
    "separable": {"f4": 3.4e-11, "f8": 7.5e-11, "out": 6.0e-10, "par": 0.85, "overhead": 2e-5,
                  "i2": 1.5e-11, "i4": 3.3e-11, "i8": 1.6e-10, "iout": 5.0e-11,
                  "fresh": 1.25e-10, "fresh_par": 0.4},
    "fft": {"f4": 2.2e-10, "f8": 6.0e-10, "pass": 8.0e-10, "tile": 1.2e-4, "par": 0.5, "overhead": 4e-5,
            "cached": 0.5, "rows4": 2.28e-10, "rows8": 2.58e-10, "rows_overhead": 3.3e-5,
            "d4": 2.4e-10, "d8": 2.95e-10, "dout": 1.2e-10,
            # seconds per output byte a recycled output block spares (see
            # recycles): 4096² 31x31 on one thread, CPU time, fresh /
            # recycled: float64 133 / 118 ms, float32 103 / 97
            "drecycled": 1.0e-10,
            # measured on a quiet machine (wall against CPU time, 2 threads):
            # 1024² calls gain 0.3-0.5 from the second thread, 4096² 0.8;
            # 0.8 made 'auto' take the FFT for 1024² float32 15x15 (4.9-9 ms
            # against the direct method's 4.0-4.3)
            "dpar": 0.55},
    "im2col": {"f4": 2.0e-11, "f8": 4.0e-11, "col": 5.0e-10, "out": 2.0e-10, "par": 0.8, "overhead": 3e-5,
               "fresh": 1.25e-10, "fresh_par": 0.4},
    # N-D correlate (``_engine.nd``): seconds per multiply-add of the direct
    # method (segments, three-row loop) and per unit of its FFT plans
    "nd": {"direct4": 4.0e-11, "direct8": 6.0e-11, "rows3_4": 2.6e-11, "rows3_8": 5.4e-11,
           "fft_nd": 6.0e-10, "window": 2.2e-10},
}

# "fresh" (direct, separable, im2col): seconds per byte of a new output that the
# allocator maps fresh on every call, so that the call faults it in (the
# kernel zeroes every page): blocks over :data:`FRESH_OUTPUT_BYTES`.
# "fresh_par" is its gain per extra thread. Measured 2026-12-06, one thread
# (CPU time), measured/estimate of the direct method without it: 2048²
# float64 (32 MiB) 5x5-13x13 +3.7-4.2 ms; 4096² float32 7x7-17x17 +5-10 ms,
# float64 +14-23 ms (1.2-1.5e-10 s a byte); 2048² float32 (16 MiB, reused
# from the heap) and 1024² no excess. At two threads the 4096² float64
# excess was 9-17 ms, float32 4-6 ms (a gain of ~1.3-1.7). Without it the
# model put 4096² float64 11x11 'same' on the direct method (estimate 60 ms,
# measured 78) against the FFT's 67.

#: Output bytes from which a new output block (with the direct method's
#: 2 MiB alignment slack) is mapped afresh on every call: glibc's largest
#: dynamic mmap threshold (32 MiB on 64-bit); smaller blocks come back
#: from the heap, their pages already faulted in.
FRESH_OUTPUT_BYTES = 32 * 2**20 - 2**21

#: Bytes of one core's L2 cache (Zen 4: 1 MiB), and the overlap-save tiles
#: from which cache-resident tiles are cheaper (see ``_units``).
CACHE_BYTES = 2**20
CACHED_TILES = 64

_calibration = None
_generation = 0
_calibration_lock = threading.Lock()

#: Called with no argument after :func:`reset_constants` (the dispatcher
#: registers the forgetting of its plans, ranked under the old constants).
reset_hooks = []


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
    for hook in reset_hooks:
        hook()


def _par(c, threads):
    return 1.0 + c["par"] * (max(1, threads) - 1)


def _units(method, xshape, wshape, shape, dtype, rank=1, boundary=0):
    """Inner-work units of ``method`` for one real offset correlation."""
    Ho, Wo = shape
    kh, kw = wshape
    out = float(Ho) * Wo
    if dtype.kind in "iu" and method in ("direct", "separable"):
        # exact narrow lanes (fastcorr.methods.integer): every output from a
        # ring of extended rows, no edge columns; "iout" counts the outputs'
        # lane bytes (rows converted, the cast at the store; the separable
        # path's two passes). Measured at 1 thread, 1024²: 16-bit lanes
        # 1.5e-11 s a multiply-add, 32-bit 3.1-3.9e-11, 64-bit 1.6e-10.
        lane_bytes = max(2, dtype.itemsize)
        if method == "separable":
            return {"imac": rank * ((Ho + kh - 1.0) * Wo * kw + out * kh), "iout": out * lane_bytes}
        return {"imac": out * kh * kw, "iout": out * lane_bytes}
    if method == "direct":
        # Columns whose window crosses the image's left/right edge go through
        # narrow blocks on per-row extended copies: "edge" counts their
        # multiply-adds, which cost several times an interior one.
        from ..methods import direct

        inner = max(0, min(Wo, xshape[1] - kw + 1))
        edge = float(Ho) * max(0, Wo - inner) * kh * kw
        row_taps = float(Ho) * kh  # kernel rows summed over output rows
        if (Ho + kh - 1) * (Wo + kw - 1) <= direct.PAD_SMALL_ELEMENTS:
            edge, inner = 0.0, Wo  # small images are padded whole first: no edge columns
            if boundary == 0:
                row_taps = _rows_inside(xshape[0], Ho, kh)  # rows of fill are left out
        if dtype.kind in "fc":
            inner = _kernel_columns(inner, direct.VECTOR_BYTES // _real_itemsize(dtype), direct.BLOCK_VECTORS)
        fresh = 0.0 if recycles(method, shape, dtype) else _fresh_bytes(out, dtype)
        return {"mac": row_taps * inner * kw, "edge": edge, "out": out, "fresh": fresh}
    if method == "separable":
        return {"mac": rank * ((Ho + kh - 1.0) * Wo * kw + out * kh), "out": rank * out,
                "fresh": 0.0 if recycles(method, shape, dtype) else _fresh_bytes(out, dtype)}
    if method == "fft":
        from ..methods import fft

        data = None
        if boundary == 0:
            # the image's extent in the extended image, taken as centred
            # (exact for odd kernels in 'same' and 'full')
            data = []
            for n, m, k in zip(xshape, shape, wshape):
                lead = max(0, m + k - 1 - n) // 2
                data.append((lead, lead + min(n, m + k - 1)))
        ducc = fft.ducc_cost(shape, wshape, dtype, data)
        if ducc is not None:  # the in-place ducc0 engine: its own constants
            # (until 2026-12-06 the loop above reused the name ``out``: for a
            # fill boundary "dout" counted one output row, so d4/d8 were
            # fitted with no output term there; it stays so, and "dout"
            # counts the other boundaries' gathered extended image, their
            # one extra pass over the output's extent)
            recycled = out * dtype.itemsize if recycles("fft", shape, dtype) else 0.0
            gathered = out * dtype.itemsize if boundary != 0 else 0.0
            return {"dmac": ducc[0], "dout": gathered, "dserial": ducc[2], "drecycled": recycled}
        f, p, tiles, spectrum, serial = fft.plan_cost(shape, wshape, dtype, data)
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
        return {"mac": out * kh * kw, "col": out * kh * kw, "out": out, "fresh": _fresh_bytes(out, dtype)}
    return None


#: Whether 'auto' and method='fft' write big real results into the direct
#: method's recycled output blocks (see :func:`recycles`).
RECYCLED_FFT_OUTPUTS = True


def recycles(method, shape, dtype):
    """Whether 'auto' and the explicit methods write ``method``'s result of
    ``shape`` into a recycled output block
    (``fastcorr.methods.direct.fresh_output``): real float32 / float64
    results of the sizes those blocks serve, of the methods that write their
    result in place (the direct and separable methods; the FFT method on its
    in-place ducc0 tiles, whose other plans would copy)."""
    if method not in ("direct", "separable", "fft") or dtype not in (np.float32, np.float64):
        return False
    if method == "fft" and not RECYCLED_FFT_OUTPUTS:
        return False
    try:
        from ..methods import direct, fft
    except ImportError:
        return False
    if not direct.recycles(float(shape[0]) * shape[1] * dtype.itemsize):
        return False
    return method != "fft" or bool(fft.in_place(False))


def _fresh_bytes(out, dtype):
    """Bytes of an ``out``-element result faulted in afresh by every call
    (0 below :data:`FRESH_OUTPUT_BYTES`: reused heap memory).

    >>> _fresh_bytes(4096 * 4096, np.dtype("f8")), _fresh_bytes(2048 * 2048, np.dtype("f4"))
    (134217728.0, 0.0)
    """
    nbytes = float(out) * dtype.itemsize
    return nbytes if nbytes > FRESH_OUTPUT_BYTES else 0.0


def _rows_inside(H, Ho, kh):
    """Kernel rows that fall on image rows, summed over the ``Ho`` output
    rows, with the image centred in the extended rows (as 'same' and 'full'
    place it). The direct method leaves the others out when the boundary
    is a fill (a 64² float32 'same' call with a 31x31 kernel: 62 -> 56 us).

    >>> _rows_inside(64, 64, 31), 64 * 31
    (1744.0, 1984)
    """
    from ..methods import fft

    lead = max(0, Ho + kh - 1 - H) // 2
    return float(fft._tap_rows(H, Ho, kh, -lead))


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
    if "dmac" in u:  # the FFT method on ducc0 (see DEFAULT_CONSTANTS)
        key = f"d{_real_itemsize(dtype)}"
        if key not in cs:
            return None
        t = u["dmac"] * cs[key] + u["dout"] * cs.get("dout", 0.0) - u["drecycled"] * cs.get("drecycled", 0.0)
        threads = 1 if u["dserial"] else max(1, threads)
        return t / (1.0 + cs.get("dpar", cs["par"]) * (threads - 1)) + cs["overhead"]
    if "imac" in u:  # narrow integer lanes: seconds per multiply-add by lane width
        key = {1: "i2", 2: "i2", 4: "i4"}.get(dtype.itemsize, "i8")
        if key not in cs:
            return None
        t = u["imac"] * cs[key] + u["iout"] * cs.get("iout", 0.0)
        return t / _par(cs, threads) + cs["overhead"]
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
    t = mult * t / _par(cs, threads) + cs["overhead"]
    if u.get("fresh") and "fresh" in cs:  # page faults of a fresh output: their own thread gain
        t += u["fresh"] * cs["fresh"] / (1.0 + cs.get("fresh_par", cs["par"]) * (max(1, threads) - 1))
    return t
