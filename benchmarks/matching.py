"""asv benchmarks: template matching against its peers.

``fastcorr.match_template`` against ``cv2.matchTemplate`` and
``skimage.feature.match_template`` (each library with 2 threads where it
has threads), float32, on the issue's grid of images and templates; the
six methods; a stack of 16 templates against 16 calls; the peak memory of
scikit-image's #6623 case. A peer that is not installed is skipped
(NotImplementedError in setup), so the suite runs anywhere.
"""
import numpy as np

import fastcorr

LIBRARIES = ["fastcorr", "cv2", "skimage"]
IMAGES = ["640x480", "1024x1024", "4096x4096"]
TEMPLATES = [8, 16, 32, 64, 128, 256]
METHODS = ["sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed"]
THREADS = 2


def _matcher(library, method="ccoeff_normed"):
    """A function (image, template) -> scores of ``library``, or NotImplementedError."""
    if library == "fastcorr":
        return lambda x, t: fastcorr.match_template(x, t, method, num_threads=THREADS)
    if library == "cv2":
        try:
            import cv2
        except ImportError:
            raise NotImplementedError("opencv-python-headless is not installed") from None
        cv2.setNumThreads(THREADS)
        code = METHODS.index(method)
        return lambda x, t: cv2.matchTemplate(x, t, code)
    try:
        from skimage.feature import match_template
    except ImportError:
        raise NotImplementedError("scikit-image is not installed") from None
    if method != "ccoeff_normed":
        raise NotImplementedError("scikit-image has only 'ccoeff_normed'")
    return match_template


def _image(shape, seed=0):
    w, h = (int(v) for v in shape.split("x"))
    return np.random.default_rng(seed).random((h, w)).astype(np.float32)


class MatchTemplate:
    """The issue's grid: float32, 'ccoeff_normed', 2 threads."""

    params = [LIBRARIES, IMAGES, TEMPLATES]
    param_names = ["library", "image", "template"]
    timeout = 300

    def setup(self, library, image, template):
        if library == "skimage" and image == "4096x4096":
            raise NotImplementedError("scikit-image takes seconds and GBs here")
        match = _matcher(library)
        self.x = _image(image)
        self.t = self.x[17:17 + template, 23:23 + template].copy()
        self.call = lambda: match(self.x, self.t)

    def time_match_template(self, *params):
        self.call()


class Methods:
    """Each of OpenCV's six methods on a 1024² image, float32 and uint8."""

    params = [["fastcorr", "cv2"], METHODS, ["float32", "uint8"]]
    param_names = ["library", "method", "dtype"]

    def setup(self, library, method, dtype):
        match = _matcher(library, method)
        x = _image("1024x1024", 1) * (255 if dtype == "uint8" else 1)
        self.x = x.astype(dtype)
        self.t = self.x[100:124, 200:224].copy()
        self.call = lambda: match(self.x, self.t)

    def time_method(self, *params):
        self.call()


class TemplateStack:
    """16 templates of 32² on a 1024² image: one stacked call against 16 calls."""

    params = [["stack", "calls", "cv2 calls"]]
    param_names = ["how"]

    def setup(self, how):
        self.x = _image("1024x1024", 2)
        self.ts = np.stack([self.x[40 * i:40 * i + 32, 50 * i:50 * i + 32] for i in range(16)])
        if how == "stack":
            self.call = lambda: fastcorr.match_template(self.x, self.ts, num_threads=THREADS)
        else:
            match = _matcher("fastcorr" if how == "calls" else "cv2")
            self.call = lambda: [match(self.x, t) for t in self.ts]

    def time_templates(self, how):
        self.call()


class Memory:
    """scikit-image #6623: a 2400x1080 image and a 523x768 template (float64 for
    fastcorr and scikit-image; OpenCV matches float32)."""

    params = [LIBRARIES]
    param_names = ["library"]
    timeout = 300

    def setup(self, library):
        match = _matcher(library)
        dtype = np.float32 if library == "cv2" else np.float64
        x = np.random.default_rng(3).random((2400, 1080)).astype(dtype)
        t = x[1000:1523, 100:868].copy()
        self.call = lambda: match(x, t)

    def peakmem_6623(self, library):
        self.call()

    def time_6623(self, library):
        self.call()


def track_opencv_ratio():
    """Median over the 1024² row of the grid of time(cv2) / time(fastcorr)."""
    import time

    try:
        cv2_match = _matcher("cv2")
    except NotImplementedError:
        return float("nan")
    ours = _matcher("fastcorr")
    x = _image("1024x1024", 4)
    ratios = []
    for k in TEMPLATES:
        t = x[9:9 + k, 11:11 + k].copy()
        best = {"cv2": np.inf, "fastcorr": np.inf}
        for _ in range(5):                        # interleaved, best of 5
            for name, f in (("cv2", cv2_match), ("fastcorr", ours)):
                t0 = time.perf_counter()
                f(x, t)
                best[name] = min(best[name], time.perf_counter() - t0)
        ratios.append(best["cv2"] / best["fastcorr"])
    return float(np.median(ratios))


track_opencv_ratio.unit = "x"
