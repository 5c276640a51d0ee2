"""asv benchmarks: particle image velocimetry against OpenPIV.

``fastcorr.piv`` (2 threads) against OpenPIV's
``pyprocess.extended_search_area_piv`` + ``get_coordinates`` (numpy/scipy,
no threads of its own) on synthetic particle-image pairs: 32-px windows,
overlap 16, the issue's 2048² case and 1024², float64 and float32 frames;
the options that change the work (a larger search area, 'linear',
normalized); the peak memory on a 4096² pair. OpenPIV is skipped when not
installed (NotImplementedError in setup), so the suite runs anywhere.
"""
import numpy as np

import fastcorr
from fastcorr._cli.piv_bench import particle_pair

THREADS = 2


def _piv(library, **kw):
    """A function (frame_a, frame_b) -> (x, y, u, v, sig2noise) of ``library``."""
    if library == "fastcorr":
        return lambda a, b: fastcorr.piv(a, b, 32, 16, num_threads=THREADS, **kw)
    try:
        from openpiv import pyprocess as pp
    except ImportError:
        raise NotImplementedError("openpiv is not installed") from None

    def call(a, b):
        u, v, s2n = pp.extended_search_area_piv(a, b, 32, 16, sig2noise_method="peak2peak", **kw)
        x, y = pp.get_coordinates(a.shape, kw.get("search_area_size") or 32, 16)
        return x, y, u, v, s2n

    return call


class Piv:
    """The issue's case: 32-px windows, overlap 16, the defaults otherwise."""

    params = [["fastcorr", "openpiv"], [1024, 2048], ["float64", "float32"]]
    param_names = ["library", "frame", "dtype"]
    timeout = 300

    def setup(self, library, frame, dtype):
        call = _piv(library)
        self.a, self.b = particle_pair(frame, dtype=np.dtype(dtype))
        self.call = lambda: call(self.a, self.b)

    def time_piv(self, library, frame, dtype):
        self.call()


class PivOptions:
    """Options that change the work, on a 1024² float64 pair."""

    params = [["fastcorr", "openpiv"], ["search_area_size=48", "linear", "normalized_correlation"]]
    param_names = ["library", "option"]
    timeout = 300

    def setup(self, library, option):
        kw = {"search_area_size=48": dict(search_area_size=48), "linear": dict(correlation_method="linear"),
              "normalized_correlation": dict(normalized_correlation=True)}[option]
        call = _piv(library, **kw)
        self.a, self.b = particle_pair(1024)
        self.call = lambda: call(self.a, self.b)

    def time_piv(self, library, option):
        self.call()


class PivMemory:
    """Peak memory of one 4096² float64 pair."""

    params = [["fastcorr", "openpiv"]]
    param_names = ["library"]
    timeout = 600

    def setup(self, library):
        call = _piv(library)
        self.a, self.b = particle_pair(4096)
        self.call = lambda: call(self.a, self.b)

    def peakmem_piv(self, library):
        self.call()
