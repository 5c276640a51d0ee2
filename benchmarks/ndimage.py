"""asv benchmarks: fastcorr.ndimage against scipy.ndimage (and OpenCV where installed).

The must-show cases of issue 26: ``correlate`` on 1024² (3x3, 5x5, 11x11,
'reflect'), ``gaussian_filter`` on 4096² (sigma 1, 4, 16), ``correlate`` on a
128³ volume (3³, 7³); plus every mode on 2-D and the separable filters on a
volume. Two threads. Classes skip (NotImplementedError in setup) what this
build does not have, so the suite runs on any version.
"""
import numpy as np

try:
    import fastcorr.ndimage as fn
except ImportError:  # a version without fastcorr.ndimage
    fn = None

THREADS = 2


def _need_fn():
    if fn is None:
        raise NotImplementedError("no fastcorr.ndimage in this version")


class Correlate2D:
    """correlate on 1024² float32, per kernel size, library and mode."""

    params = [["fastcorr", "scipy", "cv2"], [3, 5, 11], ["reflect", "mirror", "nearest", "wrap", "constant"]]
    param_names = ["library", "kernel", "mode"]
    timeout = 120

    def setup(self, library, kernel, mode):
        rng = np.random.default_rng(0)
        self.x = rng.random((1024, 1024), dtype=np.float32)
        self.w = rng.random((kernel, kernel), dtype=np.float32)
        if library == "fastcorr":
            _need_fn()
            self.call = lambda: fn.correlate(self.x, self.w, mode=mode, num_threads=THREADS)
        elif library == "scipy":
            import scipy.ndimage as sn

            self.call = lambda: sn.correlate(self.x, self.w, mode=mode)
        else:
            try:
                import cv2
            except ImportError:
                raise NotImplementedError("OpenCV not installed") from None
            border = {"reflect": cv2.BORDER_REFLECT, "mirror": cv2.BORDER_REFLECT_101,
                      "nearest": cv2.BORDER_REPLICATE, "wrap": None, "constant": cv2.BORDER_CONSTANT}[mode]
            if border is None:
                raise NotImplementedError("cv2.filter2D has no wrap border")
            cv2.setNumThreads(THREADS)
            self.call = lambda: cv2.filter2D(self.x, -1, self.w, borderType=border)

    def time_correlate(self, *params):
        self.call()


class Gaussian2D:
    """gaussian_filter on 4096² float32 against cv2.GaussianBlur (same radius)."""

    params = [["fastcorr", "cv2"], [1, 4, 16]]
    param_names = ["library", "sigma"]
    timeout = 300

    def setup(self, library, sigma):
        self.x = np.random.default_rng(1).random((4096, 4096), dtype=np.float32)
        if library == "fastcorr":
            _need_fn()
            self.call = lambda: fn.gaussian_filter(self.x, sigma, num_threads=THREADS)
        else:
            try:
                import cv2
            except ImportError:
                raise NotImplementedError("OpenCV not installed") from None
            cv2.setNumThreads(THREADS)
            ks = 2 * int(4 * sigma + 0.5) + 1
            self.call = lambda: cv2.GaussianBlur(self.x, (ks, ks), sigma, borderType=cv2.BORDER_REFLECT)

    def time_gaussian(self, *params):
        self.call()


class Volume:
    """A 128³ float32 volume: correlate (3³, 7³) against ndimage and scipy.signal."""

    params = [["fastcorr", "scipy.ndimage", "scipy.signal"], [3, 7]]
    param_names = ["library", "kernel"]
    timeout = 300

    def setup(self, library, kernel):
        rng = np.random.default_rng(2)
        self.v = rng.random((128, 128, 128), dtype=np.float32)
        self.w = rng.random((kernel,) * 3, dtype=np.float32)
        if library == "fastcorr":
            _need_fn()
            self.call = lambda: fn.correlate(self.v, self.w, num_threads=THREADS)
        elif library == "scipy.ndimage":
            import scipy.ndimage as sn

            self.call = lambda: sn.correlate(self.v, self.w)
        else:
            import scipy.fft
            import scipy.signal as ss

            p = np.pad(self.v, kernel // 2, mode="symmetric")

            def call():
                with scipy.fft.set_workers(THREADS):
                    return ss.correlate(p, self.w, mode="valid", method="fft")

            self.call = call

    def time_volume(self, *params):
        self.call()


class SeparableVolume:
    """The separable filters on a 128³ float32 volume (fastcorr only)."""

    params = [["gaussian_filter", "uniform_filter", "sobel", "laplace"]]
    param_names = ["filter"]

    def setup(self, name):
        _need_fn()
        self.v = np.random.default_rng(3).random((128, 128, 128), dtype=np.float32)
        args = {"gaussian_filter": (2.0,), "uniform_filter": (5,), "sobel": (), "laplace": ()}[name]
        f = getattr(fn, name)
        self.call = lambda: f(self.v, *args, num_threads=THREADS)

    def time_filter(self, name):
        self.call()
