"""
Method crossovers: time against kernel size
===========================================

fastcorr computes a correlation with one of four methods: ``'direct'``
(sliding window), ``'fft'`` (fast Fourier transforms), ``'separable'``
(two 1-D passes, for kernels of low rank) and ``'im2col'`` (windows copied
into columns, then one matrix product). Which one is fastest depends on the
kernel's size: the direct method's work grows with the kernel's area, the
FFT's hardly at all. ``method='auto'`` picks one per call from a cost model;
:func:`fastcorr.choose_method` says which.

This example times each method on one 256x256 float32 image for square
kernels of growing size, on one thread, and plots time against kernel size.

.. note::

   The figure is drawn when the documentation is built, so its times are
   those of the machine that built it (a small CI machine, likely shared).
   To keep the build short, each time is the best of three short runs:
   expect some noise. ``python -m fastcorr bench`` measures more carefully.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import fastcorr


def best_time(fn, repeats=3, target=0.004):
    """Best time per call (s) over ``repeats`` runs of about ``target`` s each."""
    t0 = time.perf_counter()
    fn()  # warm-up: plans, workspaces
    once = time.perf_counter() - t0
    number = max(1, int(target / max(once, 1e-7)))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


# %%
# Timing the methods
# ------------------
#
# The kernel is the outer product of two random vectors, so that it has rank
# one and every method, the separable one included, can serve it. The direct,
# FFT and im2col methods take as long for any kernel of the same size.
#
# Every call runs on one thread (:func:`fastcorr.threads`): timings on one
# core stay steady when the machine has other work, and they compare the
# methods' work rather than how well each spreads over cores. With more
# threads the direct method speeds up more than the FFT on an image this
# small, so the crossover moves to larger kernels.

rng = np.random.default_rng(0)
image = rng.random((256, 256), dtype=np.float32)
sizes = [3, 5, 7, 9, 11, 15, 19, 23, 27, 31, 39, 47]
methods = ["direct", "fft", "separable", "im2col"]

times = {m: [] for m in methods}
with fastcorr.threads(1):
    for k in sizes:
        kernel = np.outer(rng.random(k), rng.random(k)).astype(np.float32)
        for m in methods:
            times[m].append(best_time(
                lambda: fastcorr.correlate2d(image, kernel, "same", method=m)))

print("1 thread; times in microseconds")
print("kernel " + "".join(f"{m:>11}" for m in methods))
for i, k in enumerate(sizes):
    row = "".join(f"{times[m][i] * 1e6:11.0f}" for m in methods)
    print(f"{k:2d}x{k:<3d}{row}")

# %%
# The crossover
# -------------
#
# For a general (full-rank) kernel the choice is between the direct method
# and the FFT: the dotted line marks the first measured size at which the
# FFT was faster. A rank-one kernel goes to the separable method whatever its
# size, and im2col pays off with many channels (:func:`fastcorr.conv2d`),
# not on one image.

direct, fft = np.array(times["direct"]), np.array(times["fft"])
faster = np.nonzero(fft < direct)[0]
crossover = sizes[faster[0]] if faster.size else None

fig, ax = plt.subplots(figsize=(7, 4.5))
styles = {"direct": "o-", "fft": "s-", "separable": "^-", "im2col": "d-"}
for m in methods:
    ax.plot(sizes, np.array(times[m]) * 1e3, styles[m], label=f"method='{m}'")
if crossover is not None:
    ax.axvline(crossover, color="grey", ls=":")
    ax.annotate(f"FFT faster from {crossover}x{crossover}",
                (crossover, 0.03), xycoords=("data", "axes fraction"),
                xytext=(4, 0), textcoords="offset points", color="grey")
ax.set_yscale("log")
ax.set_xlabel("kernel size k (k x k kernel)")
ax.set_ylabel("time per call (ms)")
ax.set_title("correlate2d, 256x256 float32 image, mode='same'", fontsize=10)
ax.legend(loc="upper left")
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()

# %%
# What ``method='auto'`` picks
# ----------------------------
#
# The dispatcher decides from the shapes, the dtype, the kernel's rank
# and the thread count, without timing anything (unless autotuning is on, see
# :func:`fastcorr.set_autotune`); its constants can be measured on your
# machine with ``python -m fastcorr calibrate``. At one thread, as above:

with fastcorr.threads(1):
    for k in sizes:
        full_rank = rng.random((k, k)).astype(np.float32)
        rank_one = np.outer(rng.random(k), rng.random(k)).astype(np.float32)
        general = fastcorr.choose_method(image, full_rank, "same")
        separable = fastcorr.choose_method(image, rank_one, "same")
        print(f"{k:2d}x{k:<2d}  full rank: {general:9s}  rank one: {separable}")
