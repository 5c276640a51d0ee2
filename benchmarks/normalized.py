"""asv benchmarks: normalized_convolution against astropy's convolve and convolve_fft.

Run directly for issue 25's side-by-side table (every library in one
process, calls interleaved round by round, medians)::

    python benchmarks/normalized.py                 # 1024², 5% NaN, 2 threads, Gaussian kernels
    python benchmarks/normalized.py --kernel disk   # a non-separable kernel
    python benchmarks/normalized.py --sizes 5,11 --rounds 9

astropy's ``convolve`` is one-threaded C and ``convolve_fft`` numpy's FFT;
fastcorr runs on ``--threads`` threads.
"""
import argparse
import sys
import time

import numpy as np

import fastcorr

SIZES = [5, 11, 31, 101]
IMPLEMENTATIONS = ["fastcorr", "fastcorr-float32", "astropy-convolve", "astropy-convolve_fft"]


# The data, kernels and calls of ``python -m fastcorr bench --normalized`` (one definition).
from fastcorr._cli.normalized_bench import calls, image, kernel  # noqa: E402


class NormalizedConvolution:
    """normalized_convolution (float64, float32) and astropy's, 1024² with 5% NaN."""

    params = [IMPLEMENTATIONS, SIZES, ["gaussian", "disk"]]
    param_names = ["implementation", "kernel", "kind"]
    timeout = 300

    def setup(self, implementation, size, kind):
        if implementation == "astropy-convolve" and size > 31:
            raise NotImplementedError("astropy's direct convolve takes ~12 s here")
        available = calls(image(), kernel(size, kind), fastcorr.get_num_threads())
        if implementation not in available:
            raise NotImplementedError(f"{implementation} is not installed")
        self.call = available[implementation]

    def time_normalized_convolution(self, *params):
        self.call()



class NormalizedOutLoop:
    """Ten calls on 1024² float64 with 5% NaN, into new arrays or one ``out``."""

    params = [["new array", "out="], [5, 31]]
    param_names = ["output", "kernel"]
    timeout = 300

    def setup(self, output, size):
        self.x, self.k = image(), kernel(size)
        self.out = np.empty_like(self.x) if output == "out=" else None

    def time_loop(self, output, size):
        for _ in range(10):
            fastcorr.normalized_convolution(self.x, self.k, out=self.out)

def _idle_fraction(seconds=0.3):
    """Share of the CPUs left idle over ``seconds`` (Linux /proc/stat; 1.0 elsewhere)."""
    def read():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals)  # idle + iowait, total
    try:
        i0, t0 = read()
        time.sleep(seconds)
        i1, t1 = read()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (i1 - i0) / max(1, t1 - t0)


def wait_for_idle(threshold=0.8, patience=120.0):
    """On a shared machine: wait (up to ``patience`` s) until the CPUs are
    mostly idle, so that a round of calls is not time-sliced with a
    neighbour's job. Returns the idle share seen last."""
    deadline = time.monotonic() + patience
    idle = _idle_fraction()
    while idle < threshold and time.monotonic() < deadline:
        time.sleep(1.0)
        idle = _idle_fraction()
    return idle


def side_by_side(sizes=SIZES, kind="gaussian", threads=2, rounds=7, n=1024, slow_rounds=2, out=sys.stdout,
                 gate=0.0):
    """Median ms per implementation and size, interleaved round by round.

    A call that takes over a second (astropy's convolve on large kernels)
    runs ``slow_rounds`` times only. Returns {size: {implementation: ms}} and
    prints the table, the ratios and the agreement with astropy.
    """
    import warnings

    x = image(n)
    table = {}
    for size in sizes:
        k = kernel(size, kind)
        funcs = calls(x, k, threads)
        results = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, f in funcs.items():  # warm-up (plans, kernel spectra) and the results
                results[name] = f()
            times = {name: [] for name in funcs}
            names = list(funcs)
            for r in range(rounds):
                if gate:
                    wait_for_idle(gate)
                    funcs["fastcorr"]()  # untimed: the cores wake up from idle
                # each implementation takes the first place of a round in turn
                for name in names[r % len(names):] + names[:r % len(names)]:
                    f = funcs[name]
                    if r >= slow_rounds and times[name] and min(times[name]) > 1.0:
                        continue
                    t0 = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - t0)
        med = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
        table[size] = med
        line = "  ".join(f"{name} {med[name]:9.2f} ms ({len(times[name])})" for name in funcs)
        print(f"{size:3d}x{size:<3d} {kind}: {line}", file=out)
        f64 = med["fastcorr"]
        ratios = [f"float32/float64 {med['fastcorr-float32'] / f64:.2f}"]
        for ref in ("astropy-convolve", "astropy-convolve_fft"):
            if ref in med:
                ratios.append(f"{ref}/fastcorr {med[ref] / f64:.1f}x")
        print("         " + ", ".join(ratios), file=out)
        agree = []
        for ref in ("astropy-convolve", "astropy-convolve_fft"):
            if ref in results:
                for name in ("fastcorr", "fastcorr-float32"):
                    d = np.abs(results[name].astype(np.float64) - results[ref])
                    agree.append(f"max|{name} - {ref}| {np.nanmax(d):.1e}")
        if agree:
            print("         " + ", ".join(agree), file=out)
        out.flush()
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--kernel", choices=["gaussian", "disk"], default="gaussian")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--gate", type=float, default=0.0,
                    help="before each round, wait until this share of the CPUs is idle (shared machines)")
    args = ap.parse_args(argv)
    import astropy
    import scipy

    print(f"fastcorr {fastcorr.__version__}, astropy {astropy.__version__}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}; {args.n}² float64, 5% NaN, fastcorr on {args.threads} threads")
    side_by_side([int(s) for s in args.sizes.split(",")], args.kernel, args.threads, args.rounds, args.n,
                 gate=args.gate)


if __name__ == "__main__":
    main()
