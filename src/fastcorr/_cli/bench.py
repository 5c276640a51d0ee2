"""``python -m fastcorr bench``: time every method and the peers on this machine.

Times fastcorr's methods ('auto' and each explicit method that serves the
case) and the peers that are installed (scipy.signal always; scipy.ndimage;
OpenCV's filter2D and torch's conv2d when importable) on a grid of image and
kernel sizes, at one thread count, and prints medians and speed-ups. Peers
that would take too long on a case (scipy's scalar loop on big kernels) are
skipped rather than waited for.
"""
import json
import sys
import time

import numpy as np

DEFAULT_IMAGES = (256, 1024)
DEFAULT_KERNELS = (3, 5, 7, 11, 17, 31, 63)
#: a contender is skipped once one call of it took longer than this (s)
SLOW_CALL = 0.5


def median_time(func, budget=0.25, min_repeats=3, max_repeats=30):
    """Median wall time of ``func()`` over repeats fitting roughly in ``budget`` s."""
    func()  # warm-up: plans, caches, thread pools
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_repeats and time.perf_counter() - start > budget:
            break
    return float(np.median(times))


def contenders(threads, dtype="float32"):
    """name -> factory(x, k) returning a zero-argument callable, for what is installed.

    A factory raises ValueError for a case its contender does not serve
    (OpenCV has no int32 source, torch no integer convolution)."""
    import scipy.ndimage as ndi
    import scipy.signal as ss

    import fastcorr
    from fastcorr._engine import dispatch as _dispatch

    def fc(method):
        return lambda x, k: (lambda: fastcorr.correlate2d(x, k, "same", method=method, num_threads=threads))

    found = {"fastcorr auto": fc("auto")}
    for method in sorted(_dispatch.METHODS):
        found[f"fastcorr {method}"] = fc(method)
    integer = np.dtype(dtype).kind in "iu"
    if integer:
        # the integer path against fastcorr's own float32 path on the same
        # values (DESIGN §2.12: integers at the speed of float32)
        found["fastcorr auto float32"] = lambda x, k: (
            lambda xf=x.astype(np.float32), kf=k.astype(np.float32):
            fastcorr.correlate2d(xf, kf, "same", num_threads=threads))

    def scipy_correlate(x, k):
        import scipy.fft

        def run():
            with scipy.fft.set_workers(threads):
                return ss.correlate(x, k, "same")

        return run

    found["scipy.signal.correlate"] = scipy_correlate
    found["scipy.signal.correlate2d"] = lambda x, k: (lambda: ss.correlate2d(x, k, "same"))
    found["scipy.ndimage.correlate"] = lambda x, k: (lambda: ndi.correlate(x, k, mode="constant"))
    try:
        import cv2

        def opencv(x, k):
            if x.dtype == np.int32:
                raise ValueError("cv2.filter2D has no int32 source")
            cv2.setNumThreads(threads)
            kf = k.astype(np.float32) if integer else k  # integers: saturated, not wrapped
            return lambda: cv2.filter2D(x, -1, kf, borderType=cv2.BORDER_CONSTANT)

        found["cv2.filter2D"] = opencv
    except ImportError:
        pass
    try:
        import torch

        def torch_conv(x, k):
            if integer:
                raise ValueError("torch conv2d has no integer path")
            torch.set_num_threads(threads)
            xt = torch.from_numpy(x)[None, None]
            kt = torch.from_numpy(np.ascontiguousarray(k))[None, None]
            pad = (k.shape[0] // 2, k.shape[1] // 2)
            return lambda: torch.nn.functional.conv2d(xt, kt, padding=pad)

        found["torch conv2d"] = torch_conv
    except ImportError:
        pass
    return found


def progress(done, total, label, stream=None):
    stream = sys.stderr if stream is None else stream
    width = 30
    filled = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40.40}")
    if done == total:
        stream.write("\n")
    stream.flush()


def run(images=DEFAULT_IMAGES, kernels=DEFAULT_KERNELS, dtype="float32", threads=None, budget=0.2, quiet=False):
    """Time all contenders on the grid; returns a list of result dicts."""
    from fastcorr._engine.config import resolve_threads

    threads = resolve_threads(threads)
    rng = np.random.default_rng(0)
    found = contenders(threads, dtype)
    cases = [(n, k) for n in images for k in kernels if k <= n]
    total = len(cases) * len(found)
    results, done, slow = [], 0, set()
    for n, ksize in cases:
        if np.dtype(dtype).kind in "iu":  # an image's values, a small kernel
            x = rng.integers(0, 200, (n, n)).astype(dtype)
            k = rng.integers(0 if np.dtype(dtype).kind == "u" else -3, 4, (ksize, ksize)).astype(dtype)
        else:
            x = rng.standard_normal((n, n)).astype(dtype)
            k = rng.standard_normal((ksize, ksize)).astype(dtype)
        for name, factory in found.items():
            done += 1
            if not quiet:
                progress(done, total, f"{n}x{n} {ksize}x{ksize} {name}")
            entry = {"image": n, "kernel": ksize, "dtype": dtype, "threads": threads, "name": name, "time": None}
            if (name, n) in slow:
                entry["skipped"] = "too slow on a smaller kernel"
            else:
                try:
                    func = factory(x, k)
                    t0 = time.perf_counter()
                    func()
                    if time.perf_counter() - t0 > SLOW_CALL:
                        slow.add((name, n))
                        entry["skipped"] = f"one call took over {SLOW_CALL} s"
                    else:
                        entry["time"] = median_time(func, budget)
                except ValueError as exc:  # a method refusing the case
                    entry["skipped"] = str(exc)
            results.append(entry)
    return results


def table(results):
    """Text table: one row per case, times in ms, and speed-up of fastcorr auto."""
    names = list(dict.fromkeys(r["name"] for r in results))
    cases = list(dict.fromkeys((r["image"], r["kernel"]) for r in results))
    by = {(r["image"], r["kernel"], r["name"]): r["time"] for r in results}
    peers = [n for n in names if not n.startswith("fastcorr")]
    head = ["image", "kernel", *names, "best peer / auto"]
    rows = []
    for n, k in cases:
        row = [f"{n}^2", f"{k}x{k}"]
        for name in names:
            t = by.get((n, k, name))
            row.append("-" if t is None else f"{t * 1e3:.3g}")
        peer_times = [by[(n, k, p)] for p in peers if by.get((n, k, p)) is not None]
        auto = by.get((n, k, "fastcorr auto"))
        row.append(f"{min(peer_times) / auto:.2f}x" if peer_times and auto else "-")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "times in ms (median); last column: fastest peer's time / fastcorr auto's time\n" + "\n".join(lines)


def ratio_table(results):
    """Text table: for each case, each contender's time / fastcorr auto's time."""
    names = [n for n in dict.fromkeys(r["name"] for r in results) if n != "fastcorr auto"]
    cases = list(dict.fromkeys((r["image"], r["kernel"]) for r in results))
    by = {(r["image"], r["kernel"], r["name"]): r["time"] for r in results}
    head = ["image", "kernel", *names]
    rows = []
    for n, k in cases:
        auto = by.get((n, k, "fastcorr auto"))
        row = [f"{n}^2", f"{k}x{k}"]
        for name in names:
            t = by.get((n, k, name))
            row.append("-" if t is None or not auto else f"{t / auto:.2f}")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    return ("time of each contender / time of fastcorr auto (> 1: fastcorr auto is faster)\n"
            + "\n".join(lines))


def plot(results, path):
    """Time against kernel size, one line per contender, one panel per image size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'fastcorr[plot]'") from None
    images = sorted({r["image"] for r in results})
    names = list(dict.fromkeys(r["name"] for r in results))
    fig, axes = plt.subplots(1, len(images), figsize=(6 * len(images), 4.5), squeeze=False)
    for ax, n in zip(axes[0], images):
        for name in names:
            pts = sorted((r["kernel"], r["time"]) for r in results
                         if r["image"] == n and r["name"] == name and r["time"] is not None)
            if pts:
                style = "-" if name.startswith("fastcorr") else "--"
                width = 2.5 if name == "fastcorr auto" else 1.2
                ax.plot(*zip(*pts), style, marker="o", ms=3, lw=width, label=name)
        ax.set(xscale="log", yscale="log", xlabel="kernel size k (k x k)", ylabel="time (s)",
               title=f"{n}x{n} {results[0]['dtype']}, {results[0]['threads']} threads")
        ks = sorted({r["kernel"] for r in results if r["image"] == n})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(args):
    results = run(images=args.images, kernels=args.kernels, dtype=args.dtype, threads=args.threads)
    print(table(results))
    print()
    print(ratio_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"raw numbers written to {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0
