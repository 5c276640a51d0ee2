"""The FFT method's library (``fastcorr.methods._fftlib``): ducc0 when it is
installed, scipy.fft otherwise or when the user set a scipy.fft backend."""
import contextlib
import io

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.signal

import fastcorr
from fastcorr.methods import _fftlib

RNG = np.random.default_rng(77)
needs_ducc = pytest.mark.skipif("ducc0" not in _fftlib.available(), reason="ducc0 not installed")


@contextlib.contextmanager
def library(name):
    previous = _fftlib.set_library(name)
    try:
        yield
    finally:
        _fftlib.set_library(previous)


def _data(shape, dtype):
    a = RNG.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * RNG.standard_normal(shape)
    return a.astype(dtype)


@needs_ducc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [None, 12, 17, 40])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_real_transforms_match_scipy(dtype, n, axis):
    x = _data((17, 23), dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    with library("ducc0"):
        got = _fftlib.rfft(x, n=n, axis=axis, workers=2)
    want = sfft.rfft(x, n=n, axis=axis)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    with library("ducc0"):
        back = _fftlib.irfft(want.copy(), n=n, axis=axis, workers=2, overwrite_x=True)
    want_back = sfft.irfft(want, n=n, axis=axis)
    assert back.dtype == want_back.dtype and back.shape == want_back.shape
    np.testing.assert_allclose(back, want_back, rtol=tol, atol=tol)


@needs_ducc
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("n", [None, 10, 31])
def test_complex_transforms_match_scipy_and_leave_inputs_alone(dtype, n):
    x = _data((13, 19), dtype)
    keep = x.copy()
    tol = 1e-4 if dtype in (np.float32, np.complex64) else 1e-12
    for name in ("fft", "ifft"):
        with library("ducc0"):
            got = getattr(_fftlib, name)(x, n=n, axis=0, workers=2)
        want = getattr(sfft, name)(x, n=n, axis=0)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        np.testing.assert_array_equal(x, keep)  # overwrite_x=False: the input is untouched
    for name in ("fft2", "ifft2"):
        with library("ducc0"):
            got = getattr(_fftlib, name)(x, s=None if n is None else (n, n + 3), workers=2)
        want = getattr(sfft, name)(x, s=None if n is None else (n, n + 3))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        np.testing.assert_array_equal(x, keep)


@needs_ducc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2d_real_transforms_match_scipy(dtype):
    x = _data((3, 14, 15), dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    with library("ducc0"):
        spec = _fftlib.rfft2(x, s=(20, 22), axes=(-2, -1), workers=2)
    want = sfft.rfft2(x, s=(20, 22), axes=(-2, -1))
    np.testing.assert_allclose(spec, want, rtol=tol, atol=tol * np.abs(want).max())
    with library("ducc0"):
        back = _fftlib.irfft2(want.copy(), s=(20, 22), axes=(-2, -1), workers=2, overwrite_x=True)
    np.testing.assert_allclose(back, sfft.irfft2(want, s=(20, 22), axes=(-2, -1)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["scipy", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("shape, kernel", [((64, 70), (9, 13)), ((300, 257), (31, 31)), ((40, 40), (40, 40))])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_fft_method_on_each_library_matches_scipy(name, dtype, shape, kernel, mode):
    x, w = _data(shape, dtype), _data(kernel, dtype)
    with library(name):
        got = fastcorr.correlate2d(x, w, mode=mode, boundary="fill", method="fft", num_threads=2)
    want = scipy.signal.correlate2d(x.astype(np.complex128), w.astype(np.complex128), mode=mode)
    tol = 1e-3 if np.dtype(dtype).itemsize <= 8 and dtype != np.float64 else 1e-9
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want if np.dtype(dtype).kind == "c" else want.real, rtol=tol,
                               atol=tol * np.abs(want).max())


class CountingBackend:
    """A scipy.fft backend that counts the calls routed to it and hands them
    on to scipy's own (NotImplemented)."""

    __ua_domain__ = "numpy.scipy.fft"

    def __init__(self):
        self.calls = 0

    def __ua_function__(self, method, args, kwargs):
        self.calls += 1
        return NotImplemented


def test_a_scipy_fft_backend_set_by_the_user_is_honoured():
    x, w = _data((200, 200), np.float64), _data((25, 25), np.float64)
    expected = fastcorr.correlate2d(x, w, mode="same", method="fft")
    backend = CountingBackend()
    with sfft.set_backend(backend):
        assert _fftlib.library() == "scipy.fft"
        got = fastcorr.correlate2d(x, w + 1.0, mode="same", method="fft")  # a new kernel: no cached spectrum
    assert backend.calls > 0
    assert _fftlib.library() == _fftlib.available()[0].replace("scipy", "scipy.fft")
    np.testing.assert_allclose(got, scipy.signal.correlate2d(x, w + 1.0, mode="same"), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(expected, scipy.signal.correlate2d(x, w, mode="same"), rtol=1e-9, atol=1e-9)
    sfft.set_global_backend(backend)
    try:
        assert _fftlib.library() == "scipy.fft"
    finally:
        sfft.set_global_backend("scipy")


def test_set_library_checks_its_argument_and_show_config_reports_it():
    with pytest.raises(ValueError, match="FFT library"):
        _fftlib.set_library("fftw")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        fastcorr.show_config()
    line = [s for s in buffer.getvalue().splitlines() if s.startswith("FFT library")]
    assert line and (_fftlib.available()[0] in line[0])
