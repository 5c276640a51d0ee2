"""correlate2d / convolve2d with method='im2col' against scipy.signal."""
import itertools

import numpy as np
import pytest
import scipy.signal

import fastcorr

RNG = np.random.default_rng(7)
SHAPES = [((13, 17), (4, 5)), ((5, 6), (7, 3)), ((3, 3), (7, 8)), ((1, 9), (1, 2)), ((6, 6), (6, 6))]


def _arr(shape, dtype):
    a = RNG.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * RNG.standard_normal(shape)
    return a.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_against_scipy(func, dtype):
    tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
    n = 0
    for mode, boundary, (s1, s2) in itertools.product(["full", "same", "valid"], ["fill", "wrap", "symm"], SHAPES):
        a, b = _arr(s1, dtype), _arr(s2, dtype)
        fill = 1.5 if boundary == "fill" else 0
        try:
            ref = getattr(scipy.signal, func)(a, b, mode, boundary, fill)
        except ValueError:
            with pytest.raises(ValueError):
                getattr(fastcorr, func)(a, b, mode, boundary, fill, method="im2col")
            continue
        got = getattr(fastcorr, func)(a, b, mode, boundary, fill, method="im2col")
        assert got.dtype == ref.dtype and got.shape == ref.shape
        e = np.abs(got - ref).max() / (max(np.abs(a).max(), fill) * np.abs(b).sum())
        assert e <= tol, (mode, boundary, s1, s2, e)
        n += 1
    assert n > 30


def test_tiles_and_threads(monkeypatch):
    from fastcorr._engine import conv as _conv

    a = RNG.standard_normal((40, 37))
    b = RNG.standard_normal((5, 4))
    ref = scipy.signal.correlate2d(a, b, "same", "symm")
    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_conv, "_TILE_TARGET", 20 * 8 * 11)
    for nt in (1, 2, 3):
        got = fastcorr.correlate2d(a, b, "same", "symm", method="im2col", num_threads=nt)
        np.testing.assert_allclose(got, ref, atol=1e-12)


def test_mixed_real_complex_and_fill():
    a = RNG.standard_normal((9, 8))
    b = _arr((3, 2), np.complex128)
    for fill in (0, 2 - 1j):
        ref = scipy.signal.correlate2d(a, b, "full", "fill", fill)
        np.testing.assert_allclose(fastcorr.correlate2d(a, b, "full", "fill", fill, method="im2col"), ref, atol=1e-12)


def test_integers_refused():
    with pytest.raises(ValueError, match="im2col.*integer"):
        fastcorr.correlate2d(np.ones((4, 4), int), np.ones((2, 2), int), method="im2col")
