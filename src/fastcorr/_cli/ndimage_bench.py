"""``python -m fastcorr bench --ndimage``: fastcorr.ndimage against its peers.

Prints, for issue 26's closing note (float32, the same threads for every
library that has threads; every contender timed in the same rounds, in a new
random order each round, each timed call after an untimed one, one process;
medians, and in parentheses the fastest rounds):

* ``correlate`` on 1024² with 3x3, 5x5, 11x11 kernels, mode 'reflect',
  against ``scipy.ndimage.correlate`` and ``cv2.filter2D`` with
  ``BORDER_REFLECT`` (OpenCV's name for ndimage's 'reflect': d c b a | a b c d);
* ``gaussian_filter`` on 4096² with sigma 1, 4, 16 against
  ``cv2.GaussianBlur`` with the same kernel radius (``round(4 sigma)``) and
  ``scipy.ndimage.gaussian_filter``;
* ``correlate`` on a 128³ volume with 3³ and 7³ kernels against
  ``scipy.ndimage.correlate`` and the best of ``scipy.signal.correlate``
  (methods 'auto', 'fft', 'direct'; 'valid' on the input padded as 'reflect',
  ``scipy.fft`` workers set to the same threads);
* ``fastcorr.correlate`` at lags ±100 of two 2e6-sample float64 signals
  against ``scipy.signal.correlate``'s full correlation (what scipy users
  compute to read those 201 values).

So this one command prints every row of issue 26's "Must show" table.
"""
import statistics
import sys
import time

import numpy as np
import scipy
import scipy.ndimage as sn
import scipy.signal as ss

import fastcorr
import fastcorr.ndimage as fn


def _cv2(threads):
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(threads)
    return cv2


def _time(calls, rounds, seed=0, stream=None, label=""):
    """Median and min seconds of each call, timed in the same rounds."""
    names = list(calls)
    times = {n: [] for n in names}
    for n in names:  # warm-up: plans, caches, pages
        calls[n]()
    order = np.random.default_rng(seed)
    for _ in range(rounds):
        for i in order.permutation(len(names)):
            f = calls[names[i]]
            f()  # the previous contender's threads may still spin: not charged to this one
            t0 = time.perf_counter()
            f()
            times[names[i]].append(time.perf_counter() - t0)
    out = {n: statistics.median(v) for n, v in times.items()}
    out.update({n + " min": min(v) for n, v in times.items()})
    if stream is not None:
        line = "  ".join(f"{n} {1e3 * out[n]:.2f} ms" for n in names)
        print(f"  {label}: {line}", file=stream, flush=True)
    return out


def cases(threads=2, quick=False):
    """{label: {contender: zero-argument call}} for the must-show cases."""
    cv2 = _cv2(threads)
    rng = np.random.default_rng(0)
    found = {}
    n2 = 256 if quick else 1024
    x = rng.random((n2, n2), dtype=np.float32)
    for k in (3, 5, 11):
        w = rng.random((k, k), dtype=np.float32)
        c = {"fastcorr": lambda w=w: fn.correlate(x, w, mode="reflect", num_threads=threads),
             "scipy.ndimage": lambda w=w: sn.correlate(x, w, mode="reflect")}
        if cv2 is not None:
            c["cv2"] = lambda w=w: cv2.filter2D(x, -1, w, borderType=cv2.BORDER_REFLECT)
        found[f"correlate {n2}² {k}x{k}"] = c
    ng = 512 if quick else 4096
    X = rng.random((ng, ng), dtype=np.float32)
    for s in ((1,) if quick else (1, 4, 16)):
        ks = 2 * int(4 * s + 0.5) + 1
        c = {"fastcorr": lambda s=s: fn.gaussian_filter(X, s, num_threads=threads)}
        if cv2 is not None:
            c["cv2"] = lambda s=s, ks=ks: cv2.GaussianBlur(X, (ks, ks), s, borderType=cv2.BORDER_REFLECT)
        if quick or s <= 4:
            c["scipy.ndimage"] = lambda s=s: sn.gaussian_filter(X, s)
        found[f"gaussian_filter {ng}² sigma {s}"] = c
    nv = 32 if quick else 128
    V = rng.random((nv, nv, nv), dtype=np.float32)
    for k in (3, 7):
        w = rng.random((k, k, k), dtype=np.float32)
        P = np.pad(V, k // 2, mode="symmetric")
        c = {"fastcorr": lambda w=w: fn.correlate(V, w, num_threads=threads),
             "scipy.ndimage": lambda w=w: sn.correlate(V, w)}
        for m in ("auto", "fft") + (("direct",) if k == 3 or quick else ()):
            c[f"scipy.signal {m}"] = lambda w=w, P=P, m=m: ss.correlate(P, w, mode="valid", method=m)
        found[f"correlate {nv}³ {k}³"] = c
    # the last row: a window of lags (fastcorr.correlate) against
    # what a scipy user computes for it, the full correlation
    nl = 20_000 if quick else 2_000_000
    a, b = rng.standard_normal(nl), rng.standard_normal(nl)
    found[f"lags ±100 of two {nl:.0e}-sample float64 signals"] = {
        "fastcorr": lambda: fastcorr.correlate(a, b, lags=100, num_threads=threads),
        "scipy full correlation": lambda: ss.correlate(a, b)}
    return found


def ratios(threads=2, quick=False, rounds=5, stream=sys.stdout):
    """{case: {contender: seconds (and 'name min')}} for every case."""
    results = {}
    with scipy.fft.set_workers(threads):
        for i, (label, calls) in enumerate(cases(threads, quick).items()):
            slow = [n for n in calls if n == "scipy.ndimage" and "4096" in label]
            r = rounds if not slow else max(1, rounds // 2)
            results[label] = _time(calls, r, seed=i, stream=stream, label=label)
    return results


def ratio_table(results):
    """Markdown: per case, fastcorr's time and each peer's time / fastcorr's
    (medians; in parentheses the fastest rounds), and for the volumes the best
    of scipy (scipy.signal's methods and scipy.ndimage)."""
    rows = ["| case | fastcorr ms | peer / fastcorr |", "|---|---|---|"]
    for label, cell in results.items():
        f, fmin = cell["fastcorr"], cell["fastcorr min"]
        peers = [n for n in cell if n != "fastcorr" and not n.endswith(" min")]
        parts = [f"{n} {cell[n] / f:.2f} ({cell[n + ' min'] / fmin:.2f})" for n in peers]
        if any(n.startswith("scipy.signal") for n in peers):
            # the "best of scipy": scipy.signal's methods and scipy.ndimage
            scipy_peers = [n for n in peers if n.startswith("scipy.")]
            best = min(scipy_peers, key=lambda n: cell[n])
            bestm = min(cell[n + " min"] for n in scipy_peers)
            parts.append(f"**best of scipy** ({best}) {cell[best] / f:.2f} ({bestm / fmin:.2f})")
        rows.append(f"| {label} | {1e3 * f:.2f} ({1e3 * fmin:.2f}) | " + "; ".join(parts) + " |")
    return "\n".join(rows)


def main(args):
    threads = args.threads or 2
    cv2 = _cv2(threads)
    versions = [f"fastcorr {fastcorr.__version__}", f"scipy {scipy.__version__}"]
    if cv2 is not None:
        versions.append(f"opencv {cv2.__version__}")
    print(f"fastcorr.ndimage, float32, {threads} threads; " + ", ".join(versions))
    results = ratios(threads, quick=args.quick, rounds=3 if args.quick else 5)
    print(ratio_table(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
