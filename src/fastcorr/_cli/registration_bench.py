"""``python -m fastcorr bench --registration``: phase_cross_correlation against scikit-image.

Prints, for issue 24's closing note, on 512² and 2048² image pairs (a
random scene and a copy moved by (3.3, -7.45) px in Fourier space, plus
noise), float32 and float64, ``upsample_factor`` 1 and 20:

* the median time of ``fastcorr.phase_cross_correlation`` (``num_threads``
  = ``--threads``, default 2) and of scikit-image's
  ``skimage.registration.phase_cross_correlation`` run inside
  ``scipy.fft.set_workers(threads)`` (its transforms are scipy.fft's: that
  is the threads it can use; its other steps are numpy's, single-threaded),
  both timed in the same rounds, alternated in blocks of three calls, in one
  process; and their ratio. The first call of a block is timed apart (the
  last column): right after scikit-image's matrix products, numpy's
  OpenBLAS threads spin on the cores for ~0.1 s, which slows any threaded
  library called next (measured: fastcorr's process CPU time +40 ms on a
  2048² call, as after a plain 600² ``A @ A``); the block's other two calls
  give each library's own speed;
* the agreement: whether the shifts are identical, and |error| and
  |phasediff| differences.
"""
import statistics
import time

import numpy as np

import fastcorr

#: Calls of one library in a row (the first timed apart: see the module doc).
BLOCK = 3
#: The motion of the synthetic pairs (px, per axis).
MOTION = (3.3, -7.45)


def image_pair(n, dtype, seed=0):
    """An n x n random scene and a copy moved by MOTION (circularly, in Fourier space) plus 1 % noise."""
    rng = np.random.default_rng(seed)
    ref = rng.random((n, n))
    f = np.fft.fftfreq(n)
    phase = np.exp(-2j * np.pi * (MOTION[0] * f[:, None] + MOTION[1] * f[None, :]))
    mov = np.fft.ifft2(np.fft.fft2(ref) * phase).real + 0.01 * rng.standard_normal((n, n))
    return ref.astype(dtype), mov.astype(dtype)


def _skimage():
    try:
        import skimage
        from skimage.registration import phase_cross_correlation
    except ImportError:
        return None, None
    return phase_cross_correlation, skimage.__version__


def _calls(a, b, up, threads):
    import scipy.fft

    sk, _ = _skimage()
    calls = {"fastcorr": lambda: fastcorr.phase_cross_correlation(a, b, upsample_factor=up, num_threads=threads)}
    if sk is not None:
        def skimage_call():
            with scipy.fft.set_workers(threads):
                return sk(a, b, upsample_factor=up)

        calls["skimage"] = skimage_call
    return calls


def run(sizes=(512, 2048), dtypes=("float32", "float64"), ups=(1, 20), threads=2, rounds=None):
    """[(n, dtype, up, {library: median seconds}, agreement)], libraries alternated in each round."""
    out = []
    for n in sizes:
        for dtype in dtypes:
            a, b = image_pair(n, np.dtype(dtype))
            for up in ups:
                calls = _calls(a, b, up, threads)
                results = {name: f() for name, f in calls.items()}  # warm-up (plans, imports)
                times = {name: [] for name in calls}
                first = {name: [] for name in calls}
                reps = rounds or (9 if n <= 512 else 5)
                for r in range(reps):
                    for name in calls:  # fastcorr's block after skimage's (and the warm-up's), and vice versa
                        for k in range(BLOCK):
                            t0 = time.perf_counter()
                            calls[name]()
                            (times if k else first)[name].append(time.perf_counter() - t0)
                agree = None
                if "skimage" in results:
                    (s, e, p), (s2, e2, p2) = results["fastcorr"], results["skimage"]
                    agree = (bool(np.array_equal(s, s2)), abs(float(e) - float(e2)), abs(float(p) - float(p2)))
                cell = {k: statistics.median(v) for k, v in times.items()}
                cell.update({k + " first": statistics.median(v) for k, v in first.items()})
                out.append((n, dtype, up, cell, agree))
    return out


def main(args):
    threads = args.threads or 2
    _, version = _skimage()
    sizes = (512,) if args.quick else (512, 2048)
    print(f"phase_cross_correlation, random scene moved by {MOTION} px + 1 % noise; fastcorr "
          f"{fastcorr.__version__} on {threads} threads, "
          + (f"scikit-image {version} inside scipy.fft.set_workers({threads})" if version
             else "scikit-image not installed")
          + f"; medians, alternated in blocks of {BLOCK} calls in one process (the first of each block in the"
          + " last column)")
    print(f"  {'image':>10} {'dtype':>8} {'up':>3} {'fastcorr':>10} {'skimage':>10} {'ratio':>7}  agreement"
          + "   | first call of a block: fastcorr (right after skimage), ratio")
    for n, dtype, up, cell, agree in run(sizes, threads=threads, rounds=5 if args.quick else None):
        line = f"  {f'{n}²':>10} {dtype:>8} {up:>3} {1e3 * cell['fastcorr']:>8.1f}ms"
        if "skimage" in cell:
            line += f" {1e3 * cell['skimage']:>8.1f}ms {cell['skimage'] / cell['fastcorr']:>6.2f}x"
            same, de, dp = agree
            line += f"  shift {'identical' if same else 'DIFFERS'}, |d error| {de:.1e}, |d phasediff| {dp:.1e}"
            line += (f"   | {1e3 * cell['fastcorr first']:>6.1f}ms"
                     f" {cell['skimage first'] / cell['fastcorr first']:>5.2f}x")
        print(line)
    return 0
