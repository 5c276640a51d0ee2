"""``python -m fastcorr bench --matching``: template matching against its peers.

Prints, for issue 23's closing note:

* the time ratios of ``cv2.matchTemplate`` and ``skimage.feature.match_template``
  to ``fastcorr.match_template`` (float32, 'ccoeff_normed', the same threads
  for every library that has threads), images 640x480, 1024², 4096²,
  templates 8² to 256²: every contender timed in the same rounds, in a new
  random order each round, each timed call after an untimed one, one
  process; medians;
* 16 templates of 32² in one call against 16 calls (and OpenCV's 16 calls);
* the peak memory of scikit-image's #6623 case (a 2400x1080 image, a
  523x768 template) for each library, each in a fresh process;
* the largest error on an offset image (1e4 + noise) against a float64
  reference that centres each window first, for each library.
"""
import json
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np

import fastcorr

IMAGES = ((480, 640), (1024, 1024), (4096, 4096))
TEMPLATES = (8, 16, 32, 64, 128, 256)


def _peers(threads):
    found = {"fastcorr": lambda x, t: fastcorr.match_template(x, t, num_threads=threads)}
    versions = {"fastcorr": fastcorr.__version__}
    try:
        import cv2

        cv2.setNumThreads(threads)
        found["cv2"] = lambda x, t: cv2.matchTemplate(x, t, cv2.TM_CCOEFF_NORMED)
        versions["opencv"] = cv2.__version__
    except ImportError:
        pass
    try:
        import skimage
        from skimage.feature import match_template

        import scipy.fft

        def skimage_match(x, t):
            # scikit-image has no thread setting of its own: its transforms
            # (scipy.fft) get the same threads as everyone else
            with scipy.fft.set_workers(threads):
                return match_template(x, t)

        found["skimage"] = skimage_match
        versions["scikit-image"] = skimage.__version__
    except ImportError:
        pass
    return found, versions


def ratios(images=IMAGES, templates=TEMPLATES, threads=2, rounds=5, large_rounds=3, skimage_large=True,
           stream=sys.stdout):
    """Median times (s) per case and library: {(H, W, k): {library: seconds}}."""
    peers, _ = _peers(threads)
    rng = np.random.default_rng(0)
    results = {}
    for H, W in images:
        x = rng.random((H, W), dtype=np.float32)
        for k in templates:
            t = x[H // 3:H // 3 + k, W // 4:W // 4 + k].copy()
            large = H * W >= 4096 * 4096
            names = [n for n in peers if not (n == "skimage" and large and not skimage_large)]
            times = {n: [] for n in names}
            for n in names:  # warm-up: plans, caches, pages
                peers[n](x, t)
            shuffle = np.random.default_rng(k)
            for r in range(large_rounds if large else rounds):
                # A new order every round, and one untimed call before each
                # timed one: the previous contender's thread pool (OpenCV's,
                # OpenMP's, pocketfft's) may still be spinning on the cores,
                # which must not be charged to whoever runs next.
                for i in shuffle.permutation(len(names)):
                    n = names[i]
                    if n == "skimage" and large and r > 0:
                        continue  # seconds a call: one round
                    peers[n](x, t)
                    t0 = time.perf_counter()
                    peers[n](x, t)
                    times[n].append(time.perf_counter() - t0)
            results[(H, W, k)] = {n: statistics.median(v) for n, v in times.items()}
            results[(H, W, k)].update({n + " min": min(v) for n, v in times.items()})
            if stream is not None:
                cell = results[(H, W, k)]
                line = "  ".join(f"{n} {1e3 * cell[n]:8.1f} ms (min {1e3 * cell[n + ' min']:.1f})" for n in names)
                print(f"  {W}x{H} {k:3d}²: {line}", file=stream, flush=True)
    return results


def ratio_table(results):
    """Markdown: per case, cv2 / fastcorr and skimage / fastcorr, of the
    median times (and, in parentheses, of the fastest rounds: on a shared
    machine the least disturbed estimate of each library's own cost)."""
    rows = ["| image | template | fastcorr ms | cv2 / fastcorr | skimage / fastcorr |", "|---|---|---|---|---|"]
    ratios = {"cv2": [], "skimage": [], "cv2 min": [], "skimage min": []}
    for (H, W, k), cell in results.items():
        f, fmin = cell["fastcorr"], cell.get("fastcorr min", cell["fastcorr"])
        r = {}
        for peer in ("cv2", "skimage"):
            r[peer] = cell.get(peer, np.nan) / f
            r[peer + " min"] = cell.get(peer + " min", cell.get(peer, np.nan)) / fmin
            ratios[peer].append(r[peer])
            ratios[peer + " min"].append(r[peer + " min"])
        rows.append(f"| {W}x{H} | {k}² | {1e3 * f:.2f} ({1e3 * fmin:.2f}) | {r['cv2']:.2f} ({r['cv2 min']:.2f}) "
                    f"| {r['skimage']:.1f} ({r['skimage min']:.1f}) |")
    for peer in ("cv2", "skimage"):
        ok = [v for v in ratios[peer] if np.isfinite(v)]
        okm = [v for v in ratios[peer + " min"] if np.isfinite(v)]
        if ok:
            rows.append(f"| | | {peer}: min {min(ok):.2f} ({min(okm):.2f}), median {statistics.median(ok):.2f} "
                        f"({statistics.median(okm):.2f}) | | |")
    return "\n".join(rows)


def stack(threads=2, rounds=5):
    """16 templates of 32² on a 1024² image: (one call, 16 calls, cv2's 16 calls) median seconds."""
    peers, _ = _peers(threads)
    x = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
    ts = np.stack([x[50 * i:50 * i + 32, 60 * i:60 * i + 32] for i in range(16)])
    calls = {"one stacked call": lambda: fastcorr.match_template(x, ts, num_threads=threads),
             "16 calls": lambda: [peers["fastcorr"](x, t) for t in ts]}
    if "cv2" in peers:
        calls["cv2, 16 calls"] = lambda: [peers["cv2"](x, t) for t in ts]
    times = {n: [] for n in calls}
    for f in calls.values():
        f()
    for r in range(rounds):
        for n, f in calls.items():
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


_MEMORY = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fastcorr._cli.peak_memory import peak_growth

    lib, dtype = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    img = rng.random((2400, 1080)).astype(dtype)
    tpl = img[1000:1523, 100:868].copy()
    if lib == "fastcorr":
        import fastcorr
        f = lambda x, t: fastcorr.match_template(x, t)
    elif lib == "skimage":
        from skimage.feature import match_template as f
    else:
        import cv2
        f = lambda x, t: cv2.matchTemplate(x, t, cv2.TM_CCOEFF_NORMED)
    f(img[:600, :900], tpl[:40, :40])
    print(json.dumps(peak_growth(lambda: f(img, tpl))))
""")


def memory():
    """Peak RSS growth (bytes) of the #6623 case per library and dtype, each in a fresh process."""
    out = {}
    for lib in ("fastcorr", "skimage", "cv2"):
        for dtype in ("float32", "float64"):
            if lib == "cv2" and dtype == "float64":
                continue  # OpenCV matches uint8 and float32 only
            res = subprocess.run([sys.executable, "-c", _MEMORY, lib, dtype], capture_output=True, text=True,
                                 timeout=600)
            if res.returncode == 0:
                out[(lib, dtype)] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def accuracy():
    """Largest error on 1e4 + noise (256x256, 15x20 template) per library and dtype."""
    from numpy.lib.stride_tricks import sliding_window_view

    peers, _ = _peers(1)
    rng = np.random.default_rng(2)
    base = 1e4 + rng.random((256, 256))
    out = {}
    for dtype in (np.float64, np.float32):
        x = base.astype(dtype)
        t = (x[100:115, 40:60] + 0.3 * rng.random((15, 20))).astype(dtype)
        v = sliding_window_view(x.astype(np.float64), t.shape)
        vc = v - v.mean(axis=(-1, -2), keepdims=True)
        tc = t.astype(np.float64) - t.mean(dtype=np.float64)
        ref = (vc * tc).sum(axis=(-1, -2)) / np.sqrt((vc ** 2).sum(axis=(-1, -2)) * (tc ** 2).sum())
        for name, f in peers.items():
            if name == "cv2" and dtype != np.float32:
                continue
            out[(name, np.dtype(dtype).name)] = float(np.abs(f(x, t) - ref).max())
    return out


def main(args):
    threads = args.threads or 2
    _, versions = _peers(threads)
    print("template matching, float32, 'ccoeff_normed', "
          f"{threads} threads; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    images = IMAGES[:2] if args.quick else IMAGES
    templates = (8, 64) if args.quick else TEMPLATES
    results = ratios(images, templates, threads, rounds=3 if args.quick else 5)
    print(ratio_table(results))
    if args.quick:
        return 0
    print("\n16 templates of 32² on 1024² (median ms):",
          ", ".join(f"{n} {1e3 * v:.1f}" for n, v in stack(threads).items()))
    print("\npeak memory above the inputs, scikit-image #6623 (2400x1080 image, 523x768 template):")
    for (lib, dtype), nbytes in memory().items():
        print(f"  {lib} {dtype}: {nbytes / 2**20:.0f} MiB")
    print("\nlargest error on 1e4 + noise against a float64 reference centring each window:")
    for (lib, dtype), err in accuracy().items():
        print(f"  {lib} {dtype}: {err:.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{W}x{H}:{k}": cell for (H, W, k), cell in results.items()}, f, indent=1)
    return 0


def before_after(cases=None, rounds=7, stream=sys.stdout):
    """This session's changes against the code before them, in one process.

    "before": ``window._fast_paths(3)`` (the window sums, then the scores,
    in three calls a row), ``matching.DEFER_FINITE = False`` (the image
    read for NaN/inf before the work), ``COMPILED_CONSTANTS = False`` (the
    template's constants and the image's level by numpy calls) and
    ``SHIFT_EDGE_TILES = False`` (edge tiles copied into a zero-padded
    buffer); "after": all four on (session 15).
    Prints, per case (float32,
    'ccoeff_normed'): one-thread CPU-time medians (``time.process_time``,
    every library on one thread, alternated) as ratios peer / fastcorr for
    both, and two-thread wall-clock medians (alternated, a fresh random
    order per round) the same way; then the 16-template stack.
    """
    import cv2
    from skimage.feature import match_template as skm

    from fastcorr._engine import matching as engine
    from fastcorr.methods import window

    def mode(after):
        window._fast_paths(7 if after else 3)
        engine.DEFER_FINITE = engine.COMPILED_CONSTANTS = engine.SHIFT_EDGE_TILES = after

    cases = cases or ([(480, 640, k) for k in TEMPLATES] + [(1024, 1024, k) for k in TEMPLATES]
                      + [(4096, 4096, k) for k in (32, 64)])
    if isinstance(cases, str):  # "H,W,k;H,W,k..."
        cases = [tuple(int(v) for v in c.split(",")) for c in cases.split(";")]
    rng = np.random.default_rng(0)
    print("| image | template | 1 thread CPU: cv2/before | cv2/after | skimage/before | skimage/after "
          "| 2 threads wall: cv2/before | cv2/after | skimage/before | skimage/after |", file=stream)
    print("|---" * 10 + "|", file=stream)
    for H, W, k in cases:
        x = rng.random((H, W), dtype=np.float32)
        t = x[H // 3:H // 3 + k, W // 4:W // 4 + k].copy()
        big = H * W >= 4096 * 4096
        row = []
        for threads, clock in ((1, time.process_time), (2, time.perf_counter)):
            cv2.setNumThreads(threads)
            calls = {"before": lambda: (mode(False), fastcorr.match_template(x, t, num_threads=threads)),
                     "after": lambda: (mode(True), fastcorr.match_template(x, t, num_threads=threads)),
                     "cv2": lambda: cv2.matchTemplate(x, t, cv2.TM_CCOEFF_NORMED),
                     "skimage": lambda: skm(x, t)}
            times = {n: [] for n in calls}
            order = np.random.default_rng(k + threads)
            names = list(calls)
            for r in range(2 if big else rounds):
                for i in order.permutation(len(names)):
                    n = names[i]
                    if n == "skimage" and r > 0 and big:
                        continue
                    calls[n]()
                    t0 = clock()
                    calls[n]()
                    times[n].append(clock() - t0)
            med = {n: statistics.median(v) for n, v in times.items()}
            row += [med["cv2"] / med["before"], med["cv2"] / med["after"], med["skimage"] / med["before"],
                    med["skimage"] / med["after"]]
        mode(True)
        print(f"| {W}x{H} | {k}² | " + " | ".join(f"{v:.2f}" for v in row) + " |", file=stream, flush=True)
    cv2.setNumThreads(2)
    x = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
    ts = np.stack([x[50 * i:50 * i + 32, 60 * i:60 * i + 32] for i in range(16)])
    for threads, clock in ((1, time.process_time), (2, time.perf_counter)):
        calls = {"stack before": lambda: (mode(False), fastcorr.match_template(x, ts, num_threads=threads)),
                 "stack after": lambda: (mode(True), fastcorr.match_template(x, ts, num_threads=threads)),
                 "16 calls": lambda: [fastcorr.match_template(x, t, num_threads=threads) for t in ts]}
        times = {n: [] for n in calls}
        for f in calls.values():
            f()
        for r in range(rounds):
            for n, f in calls.items():
                t0 = clock()
                f()
                times[n].append(clock() - t0)
        mode(True)
        print(f"16 templates of 32² on 1024², {threads} thread(s), median ms "
              f"({'CPU' if threads == 1 else 'wall'}): "
              + ", ".join(f"{n} {1e3 * statistics.median(v):.1f}" for n, v in times.items()), file=stream)


if __name__ == "__main__":  # python -m fastcorr._cli.matching_bench --before-after
    if "--before-after" in sys.argv:
        rest = sys.argv[sys.argv.index("--before-after") + 1:]
        before_after(rest[0] if rest else None)
