"""asv benchmarks: N-D correlate against scipy.signal.correlate.

Issue 26's cases: a window of lags (±100) of two 2e6-sample float64 signals
against scipy's full correlation; 1-D float64 signals with short and long
kernels; 128³ float32 volumes with 3³ and 7³ kernels (mode 'same'),
fastcorr with 2 threads.
"""
import numpy as np
import scipy.signal as ss

import fastcorr

THREADS = 2


class Lags:
    """Lags ±L of two 2e6-sample float64 signals; scipy computes the full correlation."""

    params = [["fastcorr", "scipy"], [10, 100, 1000]]
    param_names = ["library", "max_lag"]

    def setup(self, library, max_lag):
        if library == "scipy" and max_lag != 100:
            raise NotImplementedError("scipy's time does not depend on the lags: timed once")
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal(2_000_000)
        self.y = rng.standard_normal(2_000_000)

    def time_lags(self, library, max_lag):
        if library == "fastcorr":
            fastcorr.correlate(self.x, self.y, lags=max_lag, num_threads=THREADS)
        else:
            ss.correlate(self.x, self.y)


class OneD:
    """A 2e6-sample float64 signal, mode 'same'."""

    params = [["fastcorr", "scipy"], [15, 101, 2001, 100_000]]
    param_names = ["library", "taps"]

    def setup(self, library, taps):
        rng = np.random.default_rng(1)
        self.x = rng.standard_normal(2_000_000)
        self.w = rng.standard_normal(taps)

    def time_correlate(self, library, taps):
        if library == "fastcorr":
            fastcorr.correlate(self.x, self.w, "same", num_threads=THREADS)
        else:
            ss.correlate(self.x, self.w, "same")


class Volume:
    """128³ float32 with k³ kernels, mode 'same' (scipy: its 'auto' choice)."""

    params = [["fastcorr", "fastcorr-direct", "fastcorr-fft", "scipy"], [3, 7]]
    param_names = ["library", "kernel"]

    def setup(self, library, kernel):
        rng = np.random.default_rng(2)
        self.v = rng.random((128, 128, 128)).astype(np.float32)
        self.w = rng.random((kernel,) * 3).astype(np.float32)

    def time_correlate(self, library, kernel):
        if library == "scipy":
            ss.correlate(self.v, self.w, "same")
        else:
            method = library.partition("-")[2] or "auto"
            fastcorr.correlate(self.v, self.w, "same", method, num_threads=THREADS)
