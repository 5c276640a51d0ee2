"""fastcorr.dask vs dask_image.ndfilters.correlate on a larger-than-comfortable image.

A 16384 x 16384 float32 image in 2048 x 2048 chunks, generated lazily
(``dask.array.random``), correlated in 'same' mode with zero fill by both
libraries on dask's threaded scheduler, then reduced with ``.sum()`` so
the 1 GiB result is never materialised. ``fastcorr`` is fastcorr.dask with
its default ``chunks='seams'`` layout, ``fastcorr_input`` with
``chunks='input'`` (the result chunked as the image). Each case runs in its own
subprocess, which reports its wall time and its peak resident memory
(``resource.getrusage``). A baseline case (generation + sum, no
correlation) shows what the correlation itself costs.

dask_image uses ``scipy.ndimage.correlate`` semantics: ``mode='constant'``
with ``cval=0`` is ``boundary='fill'`` with ``fillvalue=0``, and for odd
kernels its centring is that of ``mode='same'``. The script checks that the
two agree on a small image first.

Run:  python benchmarks/dask_bench.py [--size 16384] [--chunk 2048] [--kernels 11 31]
          [--libs fastcorr fastcorr_input dask_image]

This is a script, not an asv benchmark (it takes minutes); it needs
``pip install fastcorr[dask] dask-image``.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def _image(size, chunk, height=None):
    import dask.array as da
    import numpy as np

    rs = da.random.RandomState(1234)
    return rs.random_sample((height or size, size), chunks=chunk).astype(np.float32)


def _kernel(k):
    import numpy as np

    return np.random.default_rng(k).random((k, k)).astype(np.float32) / (k * k)


def run_case(lib, k, size, chunk, height=None):
    """Build, compute and reduce one case; return time and peak RSS."""
    import resource

    import dask
    import numpy as np

    x = _image(size, chunk, height)
    if lib == "baseline":
        y = x
    elif lib in ("fastcorr", "fastcorr_input"):
        import fastcorr.dask

        layout = "input" if lib == "fastcorr_input" else "seams"
        y = fastcorr.dask.correlate2d(x, _kernel(k), mode="same", boundary="fill", fillvalue=0, chunks=layout)
    elif lib == "dask_image":
        import dask_image.ndfilters

        y = dask_image.ndfilters.correlate(x, _kernel(k), mode="constant", cval=0.0)
    else:
        raise ValueError(lib)
    total = y.sum(dtype=np.float64)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    value = float(total.compute(scheduler="threads"))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "lib": lib, "k": k, "seconds": seconds, "sum": value,
        "peak_rss_mib": peak / 1024, "rss_before_mib": rss_before / 1024,
        "workers": dask.config.get("num_workers", None) or os.cpu_count(),
    }


def check_agreement():
    """fastcorr.dask and dask_image give the same 'same'/fill result."""
    import dask_image.ndfilters
    import numpy as np

    import fastcorr.dask

    x = _image(600, 128)
    for k in (11, 31):
        w = _kernel(k)
        a = fastcorr.dask.correlate2d(x, w, mode="same").compute()
        b = dask_image.ndfilters.correlate(x, w, mode="constant", cval=0.0).compute()
        err = float(np.abs(a - b).max())
        assert err < 1e-4, f"fastcorr.dask and dask_image disagree by {err} for {k}x{k}"
    print("check: fastcorr.dask == dask_image (mode='constant') on 600x600, 11x11 and 31x31")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--height", type=int, default=None, help="image height (default: --size)")
    ap.add_argument("--kernels", type=int, nargs="+", default=[11, 31])
    ap.add_argument("--libs", nargs="+", default=["fastcorr", "dask_image"])
    ap.add_argument("--case", nargs=2, metavar=("LIB", "K"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]), args.size, args.chunk, args.height)))
        return

    check_agreement()
    height = args.height or args.size
    gib = height * args.size * 4 / 2**30
    mib = args.chunk**2 * 4 / 2**20
    print(f"image {height}x{args.size} float32 ({gib:.2f} GiB), chunks {args.chunk}x{args.chunk} "
          f"({mib:.0f} MiB each), 'same' mode, threaded scheduler, reduced with .sum()")

    def sub(lib, k):
        cmd = [sys.executable, __file__, "--size", str(args.size), "--chunk", str(args.chunk),
               "--height", str(height), "--case", lib, str(k)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = sub("baseline", 1)
    print(f"baseline (generate + sum): {base['seconds']:.2f} s, peak RSS {base['peak_rss_mib']:.0f} MiB "
          f"({base['workers']} dask threads)")
    print(f"{'kernel':>7} {'library':>14} {'time s':>8} {'peak RSS MiB':>13} {'sum':>16}")
    for k in args.kernels:
        res = {lib: sub(lib, k) for lib in args.libs}
        for lib, r in res.items():
            print(f"{k:>4}x{k:<2} {lib:>14} {r['seconds']:8.2f} {r['peak_rss_mib']:13.0f} {r['sum']:16.6e}")
        if "fastcorr" in res and "dask_image" in res:
            ratio = res["dask_image"]["seconds"] / res["fastcorr"]["seconds"]
            line = f"        ratio dask_image / fastcorr.dask: {ratio:.1f}x"
            own = res["fastcorr"]["seconds"] - base["seconds"]
            if own > 0.2 * res["fastcorr"]["seconds"]:
                net = (res["dask_image"]["seconds"] - base["seconds"]) / own
                line += f" (correlation alone, minus the baseline: {net:.1f}x)"
            print(line)
        print(f"        peak RSS above the baseline process: "
              + ", ".join(f"{lib} {r['peak_rss_mib'] - base['peak_rss_mib']:+.0f} MiB" for lib, r in res.items()))


if __name__ == "__main__":
    main()
