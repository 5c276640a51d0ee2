"""``out=`` on correlate2d / convolve2d / conv2d: written in place, equal to
the result without it (and to scipy / torch), and refused with a clear
error when it cannot hold the result."""
import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr._engine import bands, conv, dispatch

RNG = np.random.default_rng(2121)


def _pair(dtype, image=(23, 19), kernel=(5, 4)):
    x = RNG.standard_normal(image)
    w = RNG.standard_normal(kernel)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * RNG.standard_normal(image)
        w = w + 1j * RNG.standard_normal(kernel)
    if np.dtype(dtype).kind in "iu":
        x = RNG.integers(0, 100, image)
        w = RNG.integers(-5, 5, kernel)
    return x.astype(dtype), w.astype(dtype)


@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("method", ["direct", "im2col", "fft", "separable", "auto"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_out_equals_result_and_scipy(func, method, mode, boundary):
    x, w = _pair(np.float64)
    if method == "separable":
        w = np.outer(RNG.standard_normal(5), RNG.standard_normal(4))
    expected = getattr(scipy.signal, func)(x, w, mode=mode, boundary=boundary, fillvalue=0.5)
    out = np.full(expected.shape, np.nan)
    got = getattr(fastcorr, func)(x, w, mode=mode, boundary=boundary, fillvalue=0.5, method=method, out=out)
    assert got is out
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128, np.uint8, np.int16,
                                   np.int64, np.float16])
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_out_every_dtype(dtype, func):
    x, w = _pair(dtype)
    expected = getattr(fastcorr, func)(x, w, mode="same")
    out = np.empty_like(expected)
    assert getattr(fastcorr, func)(x, w, mode="same", out=out) is out
    if out.dtype.kind in "iu":
        np.testing.assert_array_equal(out, expected)
    else:  # the plain-call fast path and the general one may round differently
        np.testing.assert_allclose(out, expected, rtol=1e-3 if dtype == np.float16 else 1e-5)
    if dtype == np.float16:  # scipy refuses float16: its float32 result, rounded
        ref = getattr(scipy.signal, func)(x.astype(np.float32), w.astype(np.float32), mode="same").astype(dtype)
    else:
        ref = getattr(scipy.signal, func)(x, w, mode="same")
    assert out.dtype == ref.dtype
    tol = {np.float16: 1e-2, np.float32: 1e-4, np.complex64: 1e-4, np.float64: 1e-10, np.complex128: 1e-10}.get(dtype, 0)
    np.testing.assert_allclose(out.astype(np.complex128), ref.astype(np.complex128), rtol=tol, atol=tol)


def test_out_valid_swap_and_empty():
    # scipy's 'valid' swap (in2 larger than in1): the result comes reversed
    x, w = _pair(np.float64, image=(3, 4), kernel=(6, 7))
    expected = scipy.signal.correlate2d(x, w, mode="valid")
    out = np.empty(expected.shape)
    assert fastcorr.correlate2d(x, w, mode="valid", out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # an empty output and an empty kernel
    out = np.empty((0, 4))
    assert fastcorr.correlate2d(np.ones((0, 4)), np.ones((1, 1)), mode="same", out=out) is out
    out = np.full((3, 3), 7.0)
    fastcorr.correlate2d(np.ones((3, 3)), np.ones((0, 0)), mode="same", out=out)
    np.testing.assert_array_equal(out, scipy.signal.correlate2d(np.ones((3, 3)), np.ones((0, 0)), mode="same"))


@pytest.mark.parametrize("method", ["direct", "im2col", "separable"])
def test_out_in_bands(monkeypatch, method):
    """A long call runs in bands (Ctrl-C); each band lands in out."""
    monkeypatch.setattr(dispatch, "LONG_CALL_WORK", 0)
    monkeypatch.setattr(bands, "LONG_CALL_SECONDS", 0.0)
    monkeypatch.setattr(bands, "BAND_SECONDS", 1e-9)
    monkeypatch.setattr(bands, "MIN_BAND_ROWS", 3)
    calls = []
    real = bands.in_bands
    monkeypatch.setattr(bands, "in_bands", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    x = RNG.standard_normal((64, 40)).astype(np.float32)
    w = np.outer(RNG.standard_normal(3), RNG.standard_normal(5)).astype(np.float32)
    out = np.empty((64, 40), np.float32)
    assert fastcorr.correlate2d(x, w, mode="same", boundary="symm", method=method, out=out) is out
    assert calls, "the call did not run in bands"
    np.testing.assert_allclose(out, scipy.signal.correlate2d(x, w, mode="same", boundary="symm"), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("method", ["direct", "separable"])
def test_out_is_handed_to_the_method(monkeypatch, method):
    """The direct and separable methods write into out themselves (no new output array)."""
    module = dispatch.engine(method)
    seen = []

    class Spy:
        SERVES_OUT = module.SERVES_OUT
        SERVES_INTEGER = module.SERVES_INTEGER
        SERVES_COMPLEX = module.SERVES_COMPLEX

        @staticmethod
        def correlate(*args, out=None):
            seen.append(out)
            return module.correlate(*args, out=out)

    monkeypatch.setitem(dispatch._loaded, (dispatch._ENGINES[method][0], None), Spy)
    x = RNG.standard_normal((300, 300)).astype(np.float32)
    w = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]).astype(np.float32)
    out = np.empty((300, 300), np.float32)
    # (fillvalue 1: not a plain call, which runs the direct kernel's C entry
    # without the engine: tests/test_signal.py::test_plain_calls_write_into_out)
    assert fastcorr.correlate2d(x, w, mode="same", fillvalue=1.0, method=method, out=out) is out
    assert len(seen) == 1 and seen[0] is out
    np.testing.assert_allclose(out, scipy.signal.correlate2d(x, w, mode="same", fillvalue=1.0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad, error, match", [
    (np.empty((22, 19)), ValueError, "shape"),
    (np.empty((23, 19), np.float32), ValueError, "dtype"),
    (np.empty((19, 23)).T, ValueError, "C-contiguous"),
    ([[0.0] * 19] * 23, TypeError, "numpy.ndarray"),
])
def test_out_bad(bad, error, match):
    x, w = _pair(np.float64)
    with pytest.raises(error, match=match):
        fastcorr.correlate2d(x, w, mode="same", out=bad)


def test_out_read_only_and_overlap():
    x, w = _pair(np.float64)
    ro = np.empty((23, 19))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fastcorr.correlate2d(x, w, mode="same", out=ro)
    with pytest.raises(ValueError, match="overlaps in1"):
        fastcorr.correlate2d(x, w, mode="same", out=x)
    big = np.zeros((30, 30))
    with pytest.raises(ValueError, match="overlaps in2"):
        fastcorr.convolve2d(x, big[:5, :4], mode="same", out=big.reshape(-1)[100:100 + 23 * 19].reshape(23, 19))


# ---------------------------------------------------------------- conv2d

@pytest.mark.parametrize("method", ["direct", "im2col", "winograd", "auto"])
@pytest.mark.parametrize("batched", [True, False])
def test_conv2d_out(method, batched):
    x = RNG.standard_normal((2, 16, 12, 11)).astype(np.float32)
    w = RNG.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(16).astype(np.float32)
    if not batched:
        x = x[0]
    expected = fastcorr.conv2d(x, w, b, padding=1, method=method)
    out = np.full(expected.shape, np.nan, np.float32)
    assert fastcorr.conv2d(x, w, b, padding=1, method=method, out=out) is out
    np.testing.assert_array_equal(out, expected)
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_out_in_bands(monkeypatch):
    monkeypatch.setattr(conv, "LONG_LAYER_WORK", 0)
    monkeypatch.setattr(conv, "BAND_LAYER_WORK", 1)
    monkeypatch.setattr(bands, "BAND_SECONDS", 1e-9)
    x = RNG.standard_normal((5, 3, 9, 9))
    w = RNG.standard_normal((4, 3, 3, 3))
    expected = fastcorr.conv2d(x, w, stride=2)
    out = np.empty_like(expected)
    assert fastcorr.conv2d(x, w, stride=2, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_conv2d_out_bad():
    x = np.ones((1, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match="shape"):
        fastcorr.conv2d(x, w, out=np.empty((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="dtype"):
        fastcorr.conv2d(x, w, out=np.empty((1, 3, 3, 3), np.float32))
    buf = np.ones(200)
    with pytest.raises(ValueError, match="overlaps input"):
        fastcorr.conv2d(buf[:50].reshape(1, 2, 5, 5), w, out=buf[20:47].reshape(1, 3, 3, 3))


# ---------------------------------------------------------------- N-D correlate / convolve

@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("shape, kshape", [((50,), (7,)), ((9, 8, 7), (3, 2, 3))])
def test_nd_out(func, shape, kshape):
    x = RNG.standard_normal(shape)
    w = RNG.standard_normal(kshape)
    expected = getattr(scipy.signal, func)(x, w, mode="same")
    out = np.full(expected.shape, np.nan)
    assert getattr(fastcorr, func)(x, w, mode="same", out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        getattr(fastcorr, func)(x, w, mode="full", out=out)
    with pytest.raises(ValueError, match="overlaps in1"):
        getattr(fastcorr, func)(x, w, mode="same", out=x)


def test_nd_out_with_lags():
    x, y = RNG.standard_normal(300), RNG.standard_normal(280)
    out = np.empty(21)
    assert fastcorr.correlate(x, y, lags=10, out=out) is out
    np.testing.assert_allclose(out, fastcorr.correlate(x, y, lags=10), rtol=1e-12)
