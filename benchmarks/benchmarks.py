"""asv benchmarks: correlate2d per method, conv2d layers, dispatch regret.

Every class skips (NotImplementedError in setup) the cases a method refuses
or that are not in this build, so the suite runs on any version.
"""
import numpy as np

import fastcorr
from fastcorr._engine import dispatch as _dispatch
from fastcorr._cli.layers_bench import LAYERS

METHODS = ["auto", *sorted(_dispatch.METHODS)]


def _skip_if_refused(func):
    try:
        func()
    except ValueError as exc:
        raise NotImplementedError(str(exc)) from None


class Correlate2D:
    """correlate2d for every method over image x kernel x dtype x mode."""

    params = [METHODS, [64, 256, 1024], [3, 11, 31], ["float32", "float64"], ["same", "valid"]]
    param_names = ["method", "image", "kernel", "dtype", "mode"]
    timeout = 120

    def setup(self, method, image, kernel, dtype, mode):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((image, image)).astype(dtype)
        self.k = rng.standard_normal((kernel, kernel)).astype(dtype)
        if kernel > image:
            raise NotImplementedError("kernel larger than image")
        self.call = lambda: fastcorr.correlate2d(self.x, self.k, mode, method=method)
        _skip_if_refused(self.call)

    def time_correlate2d(self, *params):
        self.call()

    def peakmem_correlate2d(self, *params):
        self.call()


class Dispatch:
    """'auto' against each explicit method on a few telling cases."""

    params = [METHODS, ["1024:3", "1024:11", "1024:31", "256:63", "64:31"]]
    param_names = ["method", "case"]

    def setup(self, method, case):
        n, k = (int(v) for v in case.split(":"))
        rng = np.random.default_rng(1)
        self.x = rng.standard_normal((n, n)).astype(np.float32)
        self.k = rng.standard_normal((k, k)).astype(np.float32)
        self.call = lambda: fastcorr.correlate2d(self.x, self.k, "same", method=method)
        _skip_if_refused(self.call)

    def time_dispatch(self, method, case):
        self.call()


def _best_time(func, repeat=5):
    import time

    func()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def track_dispatch_regret():
    """Median over a small grid of time(auto) / fastest explicit method."""
    rng = np.random.default_rng(2)
    ratios = []
    for n, k in [(256, 3), (256, 21), (1024, 5), (1024, 31)]:
        x = rng.standard_normal((n, n)).astype(np.float32)
        w = rng.standard_normal((k, k)).astype(np.float32)
        times = {}
        for method in METHODS:
            try:
                times[method] = _best_time(lambda: fastcorr.correlate2d(x, w, "same", method=method))
            except ValueError:
                pass
        ratios.append(times["auto"] / min(t for m, t in times.items() if m != "auto"))
    return float(np.median(ratios))


track_dispatch_regret.unit = "ratio"

# CNN layers of the im2col issue: ``LAYERS`` (N, C_in, C_out, H, W, k, stride,
# padding), one list for asv, pytest-benchmark and ``bench --layers``.


class Conv2DLayers:
    """conv2d forward and backward on the five CNN layers (float32, NCHW)."""

    params = [list(LAYERS)]
    param_names = ["layer"]
    timeout = 300

    def setup(self, layer):
        if not hasattr(fastcorr, "conv2d"):
            raise NotImplementedError("conv2d not in this version")
        n, cin, cout, h, w, k, s, p = LAYERS[layer]
        rng = np.random.default_rng(3)
        self.x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
        self.w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        self.kw = dict(stride=s, padding=p)
        self.y = fastcorr.conv2d(self.x, self.w, **self.kw)

    def time_forward(self, layer):
        fastcorr.conv2d(self.x, self.w, **self.kw)

    def time_backward(self, layer):
        fastcorr.conv2d_backward(self.x, self.w, self.y, **self.kw)

    def peakmem_forward(self, layer):
        fastcorr.conv2d(self.x, self.w, **self.kw)


class Conv2DMethods:
    """conv2d forward per explicit method on 3x3 stride-1 layers (float32),
    where 'auto' chooses between the direct kernel and Winograd."""

    params = [["direct", "im2col", "winograd"],
              [(8, 64, 64, 56), (8, 128, 128, 28), (1, 16, 16, 128), (8, 256, 256, 14)]]
    param_names = ["method", "N, C_in, C_out, H=W"]
    timeout = 300

    def setup(self, method, shape):
        if method not in getattr(fastcorr._engine.validate, "CONV_METHODS", ()):
            raise NotImplementedError(f"conv2d has no method {method!r} in this version")
        n, cin, cout, hw = shape
        rng = np.random.default_rng(4)
        self.x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
        self.w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)

    def time_conv2d(self, method, shape):
        fastcorr.conv2d(self.x, self.w, padding=1, method=method)


class PhaseCrossCorrelation:
    """phase_cross_correlation (scikit-image's registration) over size x dtype x upsample_factor."""

    params = [[512, 1024, 2048], ["float32", "float64"], [1, 20]]
    param_names = ["image", "dtype", "upsample_factor"]
    timeout = 120

    def setup(self, image, dtype, upsample_factor):
        if not hasattr(fastcorr, "phase_cross_correlation"):
            raise NotImplementedError("no phase_cross_correlation in this version")
        rng = np.random.default_rng(0)
        self.ref = rng.standard_normal((image, image)).astype(dtype)
        self.mov = np.roll(self.ref, (7, -3), axis=(0, 1))

    def time_phase_cross_correlation(self, image, dtype, upsample_factor):
        fastcorr.phase_cross_correlation(self.ref, self.mov, upsample_factor=upsample_factor)
