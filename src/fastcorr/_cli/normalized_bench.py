"""``python -m fastcorr bench --normalized``: normalized_convolution against astropy.

Prints issue 25's "Must show" table: 1024² float64 with 5% NaN, Gaussian
kernels 5x5, 11x11, 31x31 and 101x101 (sigma = size / 6), fastcorr
(float64, and float32 on the same data) against
``astropy.convolution.convolve`` and ``convolve_fft``, every call
alternated round by round in this one process (each library takes the
first place of a round in turn), medians; the ratios astropy / fastcorr,
float32 / float64, and the largest difference from each astropy result.
fastcorr runs on ``--threads`` (default 2) threads, astropy on one (it
has no threads). A call over a second (astropy's convolve on large
kernels) runs in the first two rounds only.
"""
import sys
import time
import warnings

import numpy as np

import fastcorr

SIZES = (5, 11, 31, 101)
#: Rounds of the full table (each a call of every implementation, astropy's
#: included): 11 rather than 7 so that a median holds on a noisy host (a
#: 2-thread call that waits a scheduler slice for its second thread takes
#: several times its time); ~4 s more than 7.
ROUNDS = 11


def image(n=1024, nan_fraction=0.05, seed=0):
    """An n x n float64 image of smooth structure plus noise, ``nan_fraction`` NaN."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:n, 0:n] / n
    x = np.sin(12 * r) * np.cos(9 * c) + 0.1 * rng.standard_normal((n, n))
    x[rng.random((n, n)) < nan_fraction] = np.nan
    return x


def kernel(size, kind="gaussian"):
    """A size x size kernel: a Gaussian (sigma size/6, separable) or a disk (not separable)."""
    r = np.arange(size) - size // 2
    if kind == "gaussian":
        g = np.exp(-0.5 * (r / (size / 6)) ** 2)
        k = np.outer(g, g)
    else:
        k = (r[:, None] ** 2 + r[None, :] ** 2 <= (size // 2) ** 2).astype(np.float64)
    return k / k.sum()


def astropy_version():
    try:
        import astropy
        from astropy.convolution import convolve  # noqa: F401
    except ImportError:
        return None
    return astropy.__version__


def calls(x, k, threads):
    """{implementation: zero-argument callable} (astropy's only when it is installed)."""
    x32, k32 = x.astype(np.float32), k.astype(np.float32)
    out = {
        "fastcorr": lambda: fastcorr.normalized_convolution(x, k, num_threads=threads),
        "fastcorr-float32": lambda: fastcorr.normalized_convolution(x32, k32, num_threads=threads),
    }
    if astropy_version() is not None:
        from astropy.convolution import convolve, convolve_fft

        out["astropy-convolve"] = lambda: convolve(x, k)
        out["astropy-convolve_fft"] = lambda: convolve_fft(x, k)
    return out


def side_by_side(sizes=SIZES, kind="gaussian", threads=2, rounds=7, n=1024, slow_rounds=2, out=sys.stdout,
                 cpu=False):
    """Median ms per implementation and size, interleaved round by round.

    Returns {size: {implementation: ms}} (and the agreement with astropy
    under ``"max|diff|"``) and prints the table. ``cpu``: the process's CPU
    time instead of the wall clock (a loaded machine; one thread).
    """
    clock = time.process_time if cpu else time.perf_counter
    x = image(n)
    table = {}
    for size in sizes:
        k = kernel(size, kind)
        funcs = calls(x, k, threads)
        serial0 = _serial_calls()
        names = list(funcs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = {name: f() for name, f in funcs.items()}  # warm-up (plans, spectra) and the results
            times = {name: [] for name in funcs}
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    if r >= slow_rounds and times[name] and min(times[name]) > 1.0:
                        continue
                    t0 = clock()
                    funcs[name]()
                    times[name].append(clock() - t0)
        med = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
        agree = {}
        for ref in ("astropy-convolve", "astropy-convolve_fft"):
            if ref in results:
                for name in ("fastcorr", "fastcorr-float32"):
                    d = np.abs(results[name].astype(np.float64) - results[ref])
                    agree[(name, ref)] = float(np.nanmax(d))
        table[size] = dict(med, **{"max|diff|": agree})
        _print_row(size, kind, med, agree, out)
        serial = _serial_calls() - serial0
        if serial:
            print(f"      ({serial} of fastcorr's timed and warm-up calls ran on one thread: threaded calls "
                  "had stalled or not paid lately, a loaded machine)", file=out)
    return table


def _serial_calls():
    """Fused sweeps run so far on one thread where more were asked."""
    from fastcorr._engine import normalized

    return normalized._counts["serial"]


def _print_row(size, kind, med, agree, out):
    f64, f32 = med["fastcorr"], med["fastcorr-float32"]
    cells = [f"{size:>3d}x{size:<3d} {kind}", f"{f64:8.2f}", f"{f32:8.2f}", f"{f32 / f64:7.2f}"]
    for ref in ("astropy-convolve", "astropy-convolve_fft"):
        if ref in med:
            cells += [f"{med[ref]:9.1f}", f"{med[ref] / f64:6.1f}x"]
        else:
            cells += ["        -", "      -"]
    print(" | ".join(cells), file=out)
    if agree:
        print("      agreement: " + ", ".join(f"max|{a} - {b.replace('astropy-', '')}| {v:.1e}"
                                           for (a, b), v in agree.items()), file=out)
    out.flush()


def main(args):
    threads = args.threads or 2
    version = astropy_version()
    cpu = getattr(args, "cpu", False)
    print(f"normalized_convolution, {1024}² float64 with 5% NaN, Gaussian kernels (sigma size/6), boundary 'fill', "
          f"nan_treatment 'interpolate'; fastcorr {fastcorr.__version__} on {threads} threads, "
          + (f"astropy {version} (one thread)" if version else "astropy not installed")
          + ("; CPU time" if cpu else "") + "; medians of alternated rounds, ms")
    print(" | ".join(["kernel (ms)     ", "fastcorr", " float32", "f32/f64", " convolve", "  ratio",
                      "conv._fft", "  ratio"]))
    sizes = (5, 11) if args.quick else SIZES
    side_by_side(sizes, threads=threads, rounds=3 if args.quick else ROUNDS, cpu=cpu)
    return 0
