"""``python -m fastcorr calibrate``: measure the cost model's constants here.

A few seconds of micro-benchmarks, one representative case per method and
dtype, stored as JSON where :func:`fastcorr._engine.costmodel.constants`
reads them in later processes.
"""
import json
import os
import time

import numpy as np

from . import dispatch
from .costmodel import DEFAULT_CONSTANTS, _units, calibration_path, reset_constants


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
    from .config import get_num_threads

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
        if m not in dispatch.METHODS:
            continue
        try:
            dispatch.engine(m)
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
            main, par_key = "mac", "par"
            if "dmac" in u:  # the FFT method on ducc0: its own constants (see costmodel)
                key, main, par_key = "d" + key[1:], "dmac", "dpar"
            t1 = _time(lambda: dispatch.correlate_offset(x, w, shape, offs, 0, 0, dt, m, 1))
            rest = sum(u[e] * c[e] for e in ("out", "pass", "col", "dout") if e in u and e in c)
            # per-sample terms keep their defaults; the main constant takes the rest
            busy = max(t1 - c["overhead"], 1e-9)
            c[key] = max(busy - rest, 0.2 * busy) / u[main]
            if threads > 1:
                tn = _time(lambda: dispatch.correlate_offset(x, w, shape, offs, 0, 0, dt, m, threads))
                par_gain.append((par_key, ((t1 - c["overhead"]) / max(tn - c["overhead"], 1e-9) - 1) / (threads - 1)))
            if verbose:
                print(f"calibrate {m:9s} {np.dtype(dt).name:8s} {t1 * 1e3:8.2f} ms -> {c[key]:.3e} s/unit")
        for par_key in {k for k, _ in par_gain}:
            gains = [g for k, g in par_gain if k == par_key]
            c[par_key] = float(min(1.0, max(0.05, np.median(gains))))
        result[m] = c
    result["nd"] = _calibrate_nd(verbose)
    path = path or calibration_path()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"version": 1, "threads": threads, "constants": result}, f, indent=1)
    os.replace(tmp, path)
    reset_constants()
    return result


def _calibrate_nd(verbose=False):
    """The N-D constants (``DEFAULT_CONSTANTS['nd']``), each scaled by the
    ratio of a measured one-thread call to its estimate under the constants
    in use: 3-D calls of the direct method (segments: a 5x1x9 kernel; the
    three-row loop: 5³) in float32 and float64, a 3-D FFT (9³), and a window
    of lags (±100 of two 4e5-sample signals)."""
    from . import nd
    from .costmodel import constants

    used = constants()["nd"]
    c = dict(used)
    rng = np.random.default_rng(1)
    vol = (40, 40, 160)
    cases = [
        ("direct4", vol, (5, 1, 9), np.float32, "direct"),
        ("direct8", vol, (5, 1, 9), np.float64, "direct"),
        ("rows3_4", vol, (5, 5, 5), np.float32, "direct"),
        ("rows3_8", vol, (5, 5, 5), np.float64, "direct"),
        ("fft_nd", (64, 64, 64), (9, 9, 9), np.float64, "fft"),
        ("window", (400_000,), (400_000,), np.float64, "fft"),
    ]
    for key, xs, ks, dt, method in cases:
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ks).astype(dt)
        if key == "window":
            shape, offsets = (201,), (-100,)
        else:
            shape, offsets = xs, tuple(-(k // 2) for k in ks)
        axes = list(range(len(xs)))
        est = nd.estimate(method, xs, ks, shape, offsets, axes, np.dtype(dt), 1)
        t = _time(lambda: nd._run(x, w, shape, offsets, axes, np.dtype(dt), method, 1))
        c[key] = used[key] * float(min(5.0, max(0.2, t / est)))
        if verbose:
            print(f"calibrate nd {key:9s} {t * 1e3:8.2f} ms (estimate {est * 1e3:.2f}) -> {c[key]:.3e}")
    return c
