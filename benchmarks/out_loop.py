"""A loop of big correlate2d calls with and without ``out=`` (issue 21).

A fresh 4096² float64 output is 128 MiB: glibc maps it anew for each call
and the kernel faults it in page by page, which can cost more than a small
kernel's arithmetic. ``out=`` writes into one array reused across the loop.

asv: ``OutLoop``. As a script it times both loops alternated in one process
and counts the minor page faults per call::

    python benchmarks/out_loop.py [--size 4096] [--repeats 7] [--threads 2]
"""
import argparse
import resource
import statistics
import time

import numpy as np

import fastcorr


class OutLoop:
    """Ten 'same' correlations of a 4096² image, into new arrays or one ``out``."""

    params = (["new array", "out="], ["float32", "float64"], [3, 7])
    param_names = ["output", "dtype", "kernel"]
    timeout = 300

    def setup(self, output, dtype, kernel):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((4096, 4096)).astype(dtype)
        self.w = rng.standard_normal((kernel, kernel)).astype(dtype)
        self.out = np.empty_like(self.x) if output == "out=" else None

    def time_loop(self, output, dtype, kernel):
        for _ in range(10):
            fastcorr.correlate2d(self.x, self.w, mode="same", out=self.out)


def _loop(x, w, out, calls, threads):
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    began = time.perf_counter()
    for _ in range(calls):
        fastcorr.correlate2d(x, w, mode="same", out=out, num_threads=threads)
    seconds = (time.perf_counter() - began) / calls
    return seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{args.size}² 'same', {args.threads} threads, {args.calls} calls a loop, "
          f"medians of {args.repeats} loops alternated; ms per call, minor page faults per call")
    print(f"{'dtype':8} {'kernel':>6} {'new array':>10} {'faults':>8} {'out=':>8} {'faults':>8} {'new/out=':>9}")
    for dtype in ("float32", "float64"):
        x = rng.standard_normal((args.size, args.size)).astype(dtype)
        out = np.empty_like(x)
        for k in (3, 5, 7):
            w = rng.standard_normal((k, k)).astype(dtype)
            _loop(x, w, out, 1, args.threads)
            new, given = [], []
            for _ in range(args.repeats):
                new.append(_loop(x, w, None, args.calls, args.threads))
                given.append(_loop(x, w, out, args.calls, args.threads))
            t_new = statistics.median(s for s, _ in new)
            t_out = statistics.median(s for s, _ in given)
            f_new = statistics.median(f for _, f in new)
            f_out = statistics.median(f for _, f in given)
            print(f"{dtype:8} {k:>4}x{k:<1} {t_new * 1e3:10.1f} {f_new:8.0f} {t_out * 1e3:8.1f} {f_out:8.0f} "
                  f"{t_new / t_out:9.2f}")


if __name__ == "__main__":
    main()
