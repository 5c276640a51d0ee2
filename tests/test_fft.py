"""FFT method vs scipy: modes, boundaries, fill values, dtypes, tiling, backends."""
import itertools

import numpy as np
import pytest
import scipy.fft
import scipy.signal

import fastcorr
from fastcorr import _fft

TOL = {np.float32: 1e-5, np.float64: 1e-12, np.complex64: 1e-5, np.complex128: 1e-12}


def _err(y, ref, x, w, fill=0):
    scale = max(np.abs(x).max(), abs(fill)) * np.abs(w).sum()
    return np.abs(y - ref).max() / scale


def _ref(func, x, w, mode, boundary, fill):
    hi = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(w) else np.float64
    return getattr(scipy.signal, func)(x.astype(hi), w.astype(hi), mode, boundary, fill)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_fft_matches_scipy(dtype, func):
    rng = np.random.default_rng(0)
    for (H, W), (kh, kw) in [((13, 17), (3, 4)), ((5, 6), (9, 11)), ((40, 33), (1, 1)), ((37, 29), (6, 7))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal((H, W)).astype(dtype)
            w = w - 0.5j
        for mode, boundary, fill in itertools.product(["full", "same", "valid"], ["fill", "wrap", "symm"], [0, 2.5]):
            ref = _ref(func, x, w, mode, boundary, fill)
            y = getattr(fastcorr, func)(x, w, mode, boundary, fill, method="fft")
            assert y.dtype == np.result_type(x, w)
            assert y.shape == ref.shape
            assert _err(y, ref, x, w, fill) <= TOL[dtype], (H, W, kh, kw, mode, boundary, fill)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fft_tiled_large_image(dtype):
    # Image much larger than the kernel: overlap-save with many tiles,
    # partial tiles at both edges, every boundary.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((301, 517)).astype(dtype)
    w = rng.standard_normal((5, 3)).astype(dtype)
    (N0, B0, t0), (N1, B1, t1) = _fft.plan((301, 517), (5, 3))
    assert t0 * t1 > 1
    for mode, boundary in itertools.product(["same", "valid", "full"], ["fill", "wrap", "symm"]):
        ref = _ref("correlate2d", x, w, mode, boundary, -1.0)
        y = fastcorr.correlate2d(x, w, mode, boundary, -1.0, method="fft", num_threads=2)
        assert _err(y, ref, x, w, 1.0) <= TOL[dtype]


def test_fft_float32_computed_in_complex64():
    seen = []

    class Spy:
        __ua_domain__ = "numpy.scipy.fft"

        def __ua_function__(self, method, args, kwargs):
            if method.__name__ == "irfft2":
                seen.append(np.asarray(args[0]).dtype)
            return NotImplemented

    x = np.random.default_rng(2).standard_normal((64, 64)).astype(np.float32)
    with scipy.fft.set_backend(Spy()):
        y = fastcorr.correlate2d(x, np.ones((5, 5), np.float32), "same", method="fft")
    assert y.dtype == np.float32
    assert seen and all(d == np.complex64 for d in seen)


def test_fft_refuses_integers():
    with pytest.raises(ValueError, match="integer"):
        fastcorr.correlate2d(np.ones((8, 8), np.int32), np.ones((3, 3), np.int32), method="fft")


class _CountingBackend:
    """A scipy.fft backend that counts calls and defers to the default one."""

    __ua_domain__ = "numpy.scipy.fft"

    def __init__(self):
        self.calls = []

    def __ua_function__(self, method, args, kwargs):
        self.calls.append(method.__name__)
        return NotImplemented  # fall through to the next (default) backend


def test_fft_honours_set_backend():
    be = _CountingBackend()
    x = np.random.default_rng(3).standard_normal((50, 60))
    w = np.random.default_rng(4).standard_normal((7, 7))
    with scipy.fft.set_backend(be):
        y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=1)
    assert any(name.startswith("rfft") for name in be.calls)
    assert any(name.startswith("irfft") for name in be.calls)
    assert _err(y, _ref("correlate2d", x, w, "same", "fill", 0), x, w) <= 1e-12


def test_fft_threads_agree():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 300))
    w = rng.standard_normal((9, 9))
    a = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=1)
    b = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(w).sum() * np.abs(x).max())
