"""Separable method vs scipy: rank detection, boundaries, refusals."""
import itertools

import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr.methods import separable as _separable

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _lowrank(rng, kh, kw, r, dtype):
    return sum(np.outer(rng.standard_normal(kh), rng.standard_normal(kw)) for _ in range(r)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_separable_matches_scipy(dtype, rank):
    rng = np.random.default_rng(rank)
    for (H, W), (kh, kw) in [((13, 17), (3, 4)), ((40, 70), (7, 5)), ((5, 6), (9, 11)), ((30, 40), (1, 7)),
                             ((30, 40), (6, 1))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = _lowrank(rng, kh, kw, rank, dtype)
        for mode, boundary, fill, func in itertools.product(
            ["full", "same", "valid"], ["fill", "wrap", "symm"], [0, 1.5], ["correlate2d", "convolve2d"]
        ):
            if mode == "valid" and kh > H:
                continue  # scipy swaps: the kernel becomes the (full-rank) image
            if min(kh, kw) < rank:
                continue
            ref = getattr(scipy.signal, func)(x.astype(np.float64), w.astype(np.float64), mode, boundary, fill)
            y = getattr(fastcorr, func)(x, w, mode, boundary, fill, method="separable")
            assert y.dtype == dtype and y.shape == ref.shape
            e = np.abs(y - ref).max() / (max(np.abs(x).max(), fill) * np.abs(w).sum())
            assert e <= TOL[dtype], (H, W, kh, kw, mode, boundary, fill, func, e)


def test_rank_detection():
    rng = np.random.default_rng(7)
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    assert _separable.rank(sobel) == 1
    g = np.exp(-np.linspace(-3, 3, 31) ** 2)
    assert _separable.rank(np.outer(g, g).astype(np.float32), np.float32) == 1
    assert _separable.rank(np.ones((11, 11))) == 1
    assert _separable.rank(_lowrank(rng, 9, 9, 2, np.float64)) == 2
    assert _separable.rank(rng.standard_normal((9, 9))) == 9


@pytest.mark.parametrize("taps", [151, 201, 301])
def test_long_outer_products_are_rank_one(taps):
    # LAPACK's SVD leaves rounding-level singular values behind from ~151
    # taps: they must not count as rank (a 151x151 Hann window was refused)
    rng = np.random.default_rng(taps)
    windows = [np.hanning(taps + 2)[1:-1], np.exp(-0.5 * np.linspace(-3, 3, taps) ** 2),
               rng.standard_normal(taps)]
    for u in windows:
        w = np.outer(u, 0.7 * u[::-1])
        assert _separable.rank(w) == 1
        assert _separable.rank(w + 1e-6 * np.outer(rng.standard_normal(taps), rng.standard_normal(taps))) == 2
    x = rng.standard_normal((40, 50))
    ref = scipy.signal.correlate2d(x, w, "same")
    y = fastcorr.correlate2d(x, w, "same", method="separable")
    assert np.abs(y - ref).max() / (np.abs(x).max() * np.abs(w).sum()) <= TOL[np.float64]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tasks_of_rows_and_column_strips(dtype):
    # every task shape (bands of rows x strips of columns, down to 1 x 1 and
    # strips narrower than the kernel or its offset) gives the same result
    rng = np.random.default_rng(11)
    x = rng.standard_normal((23, 37)).astype(dtype)
    u, v = rng.standard_normal(7).astype(dtype), rng.standard_normal(9).astype(dtype)
    w = np.outer(u, v).astype(np.float64)
    for boundary, code in [("fill", 0), ("wrap", 1), ("symm", 2)]:
        ref = scipy.signal.correlate2d(x.astype(np.float64), w, "full", boundary, 1.5)
        for band, strip in [(1, 1), (3, 5), (4, 8), (23, 3), (2, 37), (0, 0), (5, 100)]:
            out = np.empty(ref.shape, dtype)
            _separable._pass(x, u, v, out, -6, -8, code, dtype(1.5), 0, 2, band, strip)
            e = np.abs(out - ref).max() / (np.abs(x).max() * np.abs(w).sum())
            assert e <= TOL[dtype], (boundary, band, strip, e)


def test_long_kernel_on_a_wide_image():
    # a 97-tap kernel on a 4096-wide float32 image: whole rows would leave
    # 8-row bands (13x the horizontal pass); strips keep bands of 4 (kh - 1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((300, 4096)).astype(np.float32)
    u = np.hanning(99)[1:-1].astype(np.float32)
    ref = scipy.signal.correlate2d(x[:, :400].astype(np.float64), np.outer(u, u), "valid")
    y = fastcorr.correlate2d(x, np.outer(u, u), "valid", method="separable")
    e = np.abs(y[:, :400 - 96] - ref).max() / (np.abs(x).max() * np.abs(np.outer(u, u)).sum())
    assert e <= TOL[np.float32]


def test_separable_refuses_full_rank():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="rank"):
        fastcorr.correlate2d(np.ones((20, 20)), rng.standard_normal((5, 5)), method="separable")


def test_separable_refuses_integers_without_integer_factors():
    # rank-one integer kernels are served exactly (tests/test_integer.py)
    with pytest.raises(ValueError, match="integer"):
        fastcorr.correlate2d(np.ones((20, 20), np.int64), np.eye(3, dtype=np.int64), method="separable")


def test_separable_complex_is_lowered():
    # Complex inputs are served as real passes (documented choice).
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20, 30)) + 1j * rng.standard_normal((20, 30))
    w = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    ref = scipy.signal.correlate2d(x, w, "same")
    np.testing.assert_allclose(fastcorr.correlate2d(x, w, "same", method="separable"), ref, atol=1e-12)


def test_separable_threads_agree():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((333, 257)).astype(np.float32)
    w = _lowrank(rng, 9, 5, 1, np.float32)
    a = fastcorr.correlate2d(x, w, "same", "symm", method="separable", num_threads=1)
    b = fastcorr.correlate2d(x, w, "same", "symm", method="separable", num_threads=2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kh,kw,band", [((40, 70), 9, 9, 64), ((23, 5), 4, 3, 7), ((50, 33), 1, 5, 8),
                                              ((31, 100), 17, 2, 5), ((12, 64), 70, 3, 4)])
def test_vertical_pass_three_rows_and_one(dtype, shape, kh, kw, band):
    """The vertical pass three output rows at a time (and the one or two left
    at a band's end), accumulating onto out as a rank-2 kernel does, matches
    a float64 reference and the one-row pass."""
    from fastcorr.methods import separable as S
    rng = np.random.default_rng(kh * 100 + kw)
    x = rng.standard_normal(shape).astype(dtype)
    u, v = rng.standard_normal(kh).astype(dtype), rng.standard_normal(kw).astype(dtype)
    u2, v2 = rng.standard_normal(kh).astype(dtype), rng.standard_normal(kw).astype(dtype)
    off0, off1 = -(kh // 2), -(kw // 2)
    x64 = x.astype(np.float64)
    want = sum(correlate2d_reference(x64, np.outer(a, b), off0, off1) for a, b in ((u, v), (u2, v2)))
    tol = (1e-5 if dtype == np.float32 else 1e-12) * np.abs(x).max() * (np.abs(np.outer(u, v)).sum()
                                                                        + np.abs(np.outer(u2, v2)).sum())
    try:
        for col3 in (1, 0):
            S._set_col3(col3)
            for nt in (1, 2):
                out = np.full(shape, np.nan, dtype)
                S._pass(x, u, v, out, off0, off1, 2, dtype(0), 0, nt, band)
                S._pass(x, u2, v2, out, off0, off1, 2, dtype(0), 1, nt, band)
                assert np.abs(out - want).max() <= tol
    finally:
        S._set_col3(1)


def correlate2d_reference(x, w, off0, off1):
    """Offset correlation with the 'symm' (reflect) boundary, in float64."""
    kh, kw = w.shape
    H, W = x.shape
    rows = np.arange(H)[:, None] + off0 + np.arange(kh)[None, :]
    cols = np.arange(W)[:, None] + off1 + np.arange(kw)[None, :]

    def reflect(i, n):
        i = np.mod(i, 2 * n)
        return np.where(i < n, i, 2 * n - 1 - i)
    r, c = reflect(rows, H), reflect(cols, W)
    out = np.zeros((H, W))
    for j in range(kh):
        for k in range(kw):
            out += w[j, k] * x[np.ix_(r[:, j], c[:, k])]
    return out


def test_the_last_large_kernel_is_decomposed_once():
    # a banded call asks for the factors once a band: kernels beyond the
    # cache's size keep the last one's (a new SVD per band cost 1.75x)
    rng = np.random.default_rng(13)
    u, v = rng.standard_normal(151), rng.standard_normal(140)
    w1 = np.outer(u, v)
    first = _separable.decompose(w1)
    assert _separable.decompose(w1.copy()) is first
    w2 = w1.copy()
    w2[3, 4] += 1.0  # same shape, other values: rank 2, its own factors
    terms = _separable.decompose(w2)
    assert terms is not first and len(terms) == 2
    np.testing.assert_allclose(sum(np.outer(a, b) for a, b in terms), w2, atol=1e-12)
    np.testing.assert_allclose(np.outer(*_separable.decompose(w1)[0]), w1, atol=1e-12)
