"""``python -m fastcorr bench --nd``: N-D correlate against scipy.signal.

Prints, for issue 26's closing note, median times and the ratio of the
best of ``scipy.signal.correlate``'s methods to ``fastcorr.correlate``
(fastcorr with ``--threads`` threads, default 2; scipy's direct method is
single-threaded and its FFT too, as scipy ships it), each case timed in
the same rounds, the contenders alternated, each timed call after an
untimed one, in one process:

* lags ±100 of two 2e6-sample float64 signals against scipy's full
  correlation (what a scipy user computes to read 201 of its values);
* 1-D: a 2e6-sample float64 signal with kernels of 15, 101, 2001 and
  100,000 taps, mode 'same';
* 3-D: a 128³ float32 volume with 3³ and 7³ kernels, mode 'same', against
  the best of scipy's 'auto', 'direct' (3³ only: 7³ takes minutes) and 'fft'.

``--quick`` shrinks every case (seconds, for tests).
"""
import statistics
import sys
import time

import numpy as np
import scipy
import scipy.signal as ss

import fastcorr


def _median_times(contenders, rounds):
    """{name: median seconds}, the contenders alternated in every round."""
    times = {name: [] for name in contenders}
    for f in contenders.values():
        f()
    for _ in range(rounds):
        for name, f in contenders.items():
            f()  # untimed: caches and pages warm for every contender alike
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def cases(quick=False):
    """(label, fastcorr call, {scipy method: call}) for the issue's grid."""
    rng = np.random.default_rng(0)
    n = 20_000 if quick else 2_000_000
    out = []
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    out.append((f"lags ±100, two {n:.0e}-sample float64 signals (scipy: full correlation)",
                lambda nt: fastcorr.correlate(x, y, lags=100, num_threads=nt),
                {"auto": lambda: ss.correlate(x, y)}))
    for K in ((15, 101) if quick else (15, 101, 2001, 100_000)):
        w = rng.standard_normal(K)
        scipy_calls = {"auto": lambda w=w: ss.correlate(x, w, "same"),
                       "fft": lambda w=w: ss.correlate(x, w, "same", method="fft")}
        out.append((f"1-D {n:.0e} float64 * {K} taps, 'same'",
                    lambda nt, w=w: fastcorr.correlate(x, w, "same", num_threads=nt), scipy_calls))
    side = 24 if quick else 128
    v = rng.random((side,) * 3).astype(np.float32)
    for k in (3, 7):
        w = rng.random((k,) * 3).astype(np.float32)
        scipy_calls = {"auto": lambda w=w: ss.correlate(v, w, "same"),
                       "fft": lambda w=w: ss.correlate(v, w, "same", method="fft")}
        if k == 3:
            scipy_calls["direct"] = lambda w=w: ss.correlate(v, w, "same", method="direct")
        out.append((f"3-D {side}³ float32 * {k}³, 'same'",
                    lambda nt, w=w: fastcorr.correlate(v, w, "same", num_threads=nt), scipy_calls))
    return out


def run(threads=2, quick=False, rounds=None, stream=sys.stdout):
    """Rows ``(label, fastcorr s, best scipy s, best scipy method, ratio)``."""
    rounds = rounds or (1 if quick else 5)
    rows = []
    for label, ours, theirs in cases(quick):
        contenders = {"fastcorr": lambda ours=ours: ours(threads)}
        contenders.update({f"scipy {m}": f for m, f in theirs.items()})
        if "scipy direct" in contenders:  # minutes per call at 128³: one round
            t_direct = _median_times({"d": contenders.pop("scipy direct")}, 1)["d"]
        else:
            t_direct = None
        med = _median_times(contenders, rounds)
        if t_direct is not None:
            med["scipy direct"] = t_direct
        best = min((k for k in med if k != "fastcorr"), key=med.get)
        row = (label, med["fastcorr"], med[best], best, med[best] / med["fastcorr"])
        rows.append(row)
        if stream is not None:
            print(f"{label}: fastcorr {row[1] * 1e3:.2f} ms, {best} {row[2] * 1e3:.1f} ms, ratio {row[4]:.1f}x",
                  file=stream, flush=True)
    return rows


def main(args):
    threads = args.threads or 2
    print(f"fastcorr {fastcorr.__version__} ({threads} threads) against scipy {scipy.__version__}, "
          f"numpy {np.__version__}; medians")
    run(threads=threads, quick=args.quick)
    return 0
