"""asv benchmarks: integer images (issue 22), exact in narrow lanes.

correlate2d 'same' on uint8 / uint16 / int16 / int32 images with a random
kernel (the direct method) and a box kernel (rank one: 'auto' may run the
exact separable passes), and cv2.filter2D on the same input dtype when
OpenCV is installed (it saturates where fastcorr wraps: compare times only).
"""
import numpy as np

import fastcorr

DTYPES = ["uint8", "uint16", "int16", "int32"]


def _data(image, kernel, dtype, box):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 200, (image, image)).astype(dtype)
    if box:
        k = np.ones((kernel, kernel), dtype)
    else:
        low = 0 if np.dtype(dtype).kind == "u" else -3
        k = rng.integers(low, 4, (kernel, kernel)).astype(dtype)
    return x, k


class IntegerCorrelate2D:
    """fastcorr.correlate2d on integer images, 'same', 2 threads."""

    params = [DTYPES, [64, 1024, 4096], [3, 11], ["random", "box"]]
    param_names = ["dtype", "image", "kernel", "kind"]
    timeout = 120

    def setup(self, dtype, image, kernel, kind):
        self.x, self.k = _data(image, kernel, dtype, kind == "box")

    def time_correlate2d(self, dtype, image, kernel, kind):
        fastcorr.correlate2d(self.x, self.k, "same", num_threads=2)


class IntegerFilter2D:
    """cv2.filter2D, the same cases (the peer; skipped without OpenCV or for int32)."""

    params = [DTYPES, [64, 1024, 4096], [3, 11]]
    param_names = ["dtype", "image", "kernel"]
    timeout = 120

    def setup(self, dtype, image, kernel):
        try:
            import cv2
        except ImportError:
            raise NotImplementedError("OpenCV is not installed") from None
        if dtype == "int32":
            raise NotImplementedError("cv2.filter2D has no int32 source")
        cv2.setNumThreads(2)
        self.cv2 = cv2
        self.x, k = _data(image, kernel, dtype, False)
        self.k = k.astype(np.float32)

    def time_filter2d(self, dtype, image, kernel):
        self.cv2.filter2D(self.x, -1, self.k, borderType=self.cv2.BORDER_CONSTANT)
