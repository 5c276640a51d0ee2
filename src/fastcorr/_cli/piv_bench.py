"""``python -m fastcorr bench --piv``: particle image velocimetry against OpenPIV.

Prints, for issue 24's closing note:

* the time of ``fastcorr.piv`` and of OpenPIV's
  ``pyprocess.extended_search_area_piv`` + ``get_coordinates`` (the same
  arguments: 32-px windows, overlap 16, 'circular', 'gaussian',
  'peak2peak') on a 2048² pair of synthetic particle images, float64,
  float32 and uint8 (a camera's) frames: both timed in the same rounds, alternated, one process;
  medians and their ratio (fastcorr on ``--threads``, default 2; OpenPIV's
  numpy/scipy path has no threads of its own);
* the peak memory (RSS growth) of each on a 4096² pair, each in a fresh process;
* the agreement: the largest |du|, |dv| against OpenPIV where both find a
  peak, and the RMS error of each against the known uniform displacement.
"""
import json
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np

import fastcorr

#: The displacement of the synthetic pairs (px, along x and y).
TRUTH = (1.3, -0.7)


def particle_pair(n, density=0.05, sigma=0.8, shift=TRUTH, seed=0, dtype=np.float64):
    """Two n x n frames of Gaussian particles, frame B's moved by ``shift`` = (dx, dy)."""
    rng = np.random.default_rng(seed)
    count = int(density * (n + 16) ** 2)
    py, px = rng.random((2, count)) * (n + 16) - 8
    r = np.arange(-3, 5)
    frames = []
    for cy, cx in ((py, px), (py + shift[1], px + shift[0])):
        iy = np.floor(cy).astype(np.int64)[:, None] + r      # 8 rows and columns around each
        ix = np.floor(cx).astype(np.int64)[:, None] + r
        gy = np.exp(-(iy - cy[:, None]) ** 2 / (2 * sigma ** 2))
        gx = np.exp(-(ix - cx[:, None]) ** 2 / (2 * sigma ** 2))
        inside = ((iy[:, :, None] >= 0) & (iy[:, :, None] < n) & (ix[:, None, :] >= 0) & (ix[:, None, :] < n))
        flat = (iy[:, :, None] * n + ix[:, None, :])[inside]
        w = (gy[:, :, None] * gx[:, None, :])[inside]
        img = np.bincount(flat, weights=w, minlength=n * n).reshape(n, n)
        if np.dtype(dtype).kind in "ui":  # a camera's grey levels: peaks near 200
            img = np.clip(np.round(img * 200), 0, np.iinfo(dtype).max)
        frames.append(img.astype(dtype))
    return frames


def _openpiv():
    try:
        import openpiv
        from openpiv import pyprocess
    except ImportError:
        return None, None
    return pyprocess, openpiv.__version__


def _calls(a, b, threads):
    pp, _ = _openpiv()
    calls = {"fastcorr": lambda: fastcorr.piv(a, b, 32, 16, num_threads=threads)}
    if pp is not None:
        def openpiv_call():
            u, v, s2n = pp.extended_search_area_piv(a, b, 32, 16, sig2noise_method="peak2peak")
            x, y = pp.get_coordinates(a.shape, 32, 16)
            return x, y, u, v, s2n

        calls["openpiv"] = openpiv_call
    return calls


def timings(n=2048, threads=2, rounds=5, dtypes=("float64", "float32", "uint8")):
    """{dtype: {library: median seconds}}, the libraries alternated in each round."""
    out = {}
    for dtype in dtypes:
        a, b = particle_pair(n, dtype=np.dtype(dtype))
        calls = _calls(a, b, threads)
        for f in calls.values():
            f()
        times = {name: [] for name in calls}
        for r in range(rounds):
            order = list(calls) if r % 2 == 0 else list(calls)[::-1]
            for name in order:
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
        out[dtype] = {name: statistics.median(v) for name, v in times.items()}
    return out


def agreement(n=512, threads=2):
    """Largest |du|, |dv| against OpenPIV and the RMS error against the truth, per dtype."""
    out = {}
    for dtype in ("float64", "float32", "uint8"):
        a, b = particle_pair(n, dtype=np.dtype(dtype))
        results = {name: f() for name, f in _calls(a, b, threads).items()}
        x, y, u, v, s2n = results["fastcorr"]
        cell = {"rms fastcorr": float(np.sqrt(np.nanmean((u - TRUTH[0]) ** 2 + (v - TRUTH[1]) ** 2)))}
        if "openpiv" in results:
            _, _, uo, vo, so = results["openpiv"]
            cell["max |du|"] = float(np.nanmax(np.abs(u - uo)))
            cell["max |dv|"] = float(np.nanmax(np.abs(v - vo)))
            cell["max |dsig2noise| / max(1, sig2noise)"] = float(np.max(np.abs(s2n - so) / np.maximum(1, np.abs(so))))
            cell["rms openpiv"] = float(np.sqrt(np.nanmean((uo - TRUTH[0]) ** 2 + (vo - TRUTH[1]) ** 2)))
        out[dtype] = cell
    return out


_MEMORY = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fastcorr._cli.peak_memory import peak_growth
    from fastcorr._cli.piv_bench import particle_pair

    lib, n, dtype, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    a, b = particle_pair(n, dtype=np.dtype(dtype))
    small_a, small_b = a[:128, :128].copy(), b[:128, :128].copy()
    if lib == "fastcorr":
        import fastcorr
        f = lambda a, b: fastcorr.piv(a, b, 32, 16, num_threads=threads)
    else:
        from openpiv import pyprocess as pp
        f = lambda a, b: pp.extended_search_area_piv(a, b, 32, 16, sig2noise_method="peak2peak")
    f(small_a, small_b)   # imports and plans
    print(json.dumps(peak_growth(lambda: f(a, b))))
""")


def memory(n=4096, threads=2, dtypes=("float64", "float32")):
    """Peak RSS growth (bytes) of one n x n pair per library and dtype, each in a fresh process."""
    libs = ["fastcorr"] + (["openpiv"] if _openpiv()[0] is not None else [])
    out = {}
    for lib in libs:
        for dtype in dtypes:
            res = subprocess.run([sys.executable, "-c", _MEMORY, lib, str(n), dtype, str(threads)],
                                 capture_output=True, text=True, timeout=1800)
            if res.returncode == 0:
                out[(lib, dtype)] = json.loads(res.stdout.strip().splitlines()[-1])
            else:
                out[(lib, dtype)] = None
    return out


def main(args):
    threads = args.threads or 2
    _, version = _openpiv()
    n = 512 if args.quick else 2048
    print(f"piv, {n}² frame pair, 32-px windows, overlap 16, 'circular', 'gaussian', 'peak2peak'; "
          f"fastcorr {fastcorr.__version__} on {threads} threads, "
          + (f"openpiv {version} (extended_search_area_piv + get_coordinates)" if version else "openpiv not installed"))
    results = timings(n, threads, rounds=3 if args.quick else 5)
    for dtype, cell in results.items():
        line = f"  {dtype} frames: fastcorr {1e3 * cell['fastcorr']:.1f} ms"
        if "openpiv" in cell:
            line += f", openpiv {1e3 * cell['openpiv']:.1f} ms: {cell['openpiv'] / cell['fastcorr']:.1f}x"
        print(line)
    print("\nagreement on a 512² pair moved by (1.3, -0.7) px:")
    agree = agreement(threads=threads)
    for dtype, cell in agree.items():
        print(f"  {dtype}: " + ", ".join(f"{k} {v:.2g}" for k, v in cell.items()))
    if args.quick:
        return 0
    print("\npeak memory (RSS growth) on a 4096² pair, each in a fresh process:")
    for (lib, dtype), nbytes in memory(threads=threads).items():
        print(f"  {lib} {dtype}: " + ("failed" if nbytes is None else f"{nbytes / 2**20:.0f} MiB"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"timings": results, "agreement": agree}, f, indent=1)
    return 0
