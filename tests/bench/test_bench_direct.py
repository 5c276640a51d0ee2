"""Direct method vs scipy.signal.correlate2d and OpenCV's filter2D (1024x1024)."""
import numpy as np
import pytest
import scipy.signal as ss

import fastcorr

SIZE = 1024


def _cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def run_peer(peer, x, k, threads):
    if peer == "fastcorr-direct":
        return lambda: fastcorr.correlate2d(x, k, "same", method="direct", num_threads=threads)
    if peer == "scipy.signal":
        return lambda: ss.correlate2d(x, k, "same")
    cv2 = _cv2()
    if cv2 is None:
        pytest.skip("opencv-python-headless not installed (bench extra)")
    cv2.setNumThreads(threads)
    # filter2D correlates; anchor (-1, -1) centres odd kernels as scipy's 'same'.
    return lambda: cv2.filter2D(x, -1, k, borderType=cv2.BORDER_CONSTANT)


@pytest.mark.parametrize("peer", ["fastcorr-direct", "scipy.signal", "cv2.filter2D"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("ksize", [3, 5, 11])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_direct_vs_peers(benchmark, peer, threads, ksize, dtype, rng):
    if peer == "scipy.signal" and threads == 2:
        pytest.skip("scipy.signal.correlate2d is single-threaded")
    size = SIZE if benchmark.enabled else 96  # untimed runs only check results
    x = rng.standard_normal((size, size)).astype(dtype)
    k = rng.standard_normal((ksize, ksize)).astype(dtype)
    benchmark.group = f"direct {dtype} {ksize}x{ksize} {threads}T"
    benchmark.extra_info["gflops"] = 2 * size * size * ksize * ksize / 1e9
    out = benchmark(run_peer(peer, x, k, threads))
    want = ss.correlate2d(x.astype(np.float64), k.astype(np.float64), "same")
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(out, want, atol=tol * np.abs(want).max())
