"""Template matching's fused score rows and the deferred NaN/inf check.

* ``window.finish_block``'s fused row (one channel, float32,
  'ccoeff_normed': ``fw_rowcn_f32_avx2``, bit 4 of ``window._fast_paths``)
  against a naive float64 reference that centres each window, and against
  the kernels before it (``_fast_paths(3)``), on window widths 1-5 and
  larger, rows of 8-20 windows (the vector loop's tail), images far from
  zero, flat windows and values outside float's comfortable range;
* ``match_template`` without the image's NaN/inf check first
  (``matching.DEFER_FINITE``): equal to the checked path, warnings too, with
  NaN and inf anywhere (corners, edges, one pixel), and on float64 images
  whose squares overflow.
"""
import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import fastcorr

window = pytest.importorskip("fastcorr.methods.window")
from fastcorr._engine import matching as engine  # noqa: E402


def naive_ccoeff_normed(x, t):
    """float64 scores, each window centred first; 0 where a denominator is 0."""
    v = sliding_window_view(x.astype(np.float64), t.shape)
    vc = v - v.mean(axis=(-1, -2), keepdims=True)
    tc = t.astype(np.float64) - t.astype(np.float64).mean()
    den = np.sqrt((vc ** 2).sum(axis=(-1, -2)) * (tc ** 2).sum())
    num = (vc * tc).sum(axis=(-1, -2))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).clip(-1, 1)


def finish(x, t, bits):
    """finish_block on the exact correlations with the zero-mean template
    (float32), the whole output as one block of tiles of B1 columns."""
    h, w = t.shape
    Ho, Wo = x.shape[0] - h + 1, x.shape[1] - w + 1
    tz = t.astype(np.float64) - t.astype(np.float64).mean()
    corr = (sliding_window_view(x.astype(np.float64), t.shape) * tz).sum(axis=(-1, -2))
    B1 = max(1, (Wo + 1) // 2)
    src = np.zeros((2, Ho, B1 + 3), np.float32)
    src[0, :, :B1] = corr[:, :B1]
    src[1, :, :Wo - B1] = corr[:, B1:]
    out = np.full((Ho, Wo), np.nan, np.float32)
    old = 7
    try:
        window._fast_paths(bits)
        ok = window.finish_block(np.ascontiguousarray(x), h, w, src, out, 0, 0, B1, float(t.mean()),
                                 float((tz ** 2).sum()), float((t.astype(np.float64) ** 2).sum()), 5)
    finally:
        window._fast_paths(old)
    return out, ok


@pytest.mark.parametrize("w", [1, 2, 3, 4, 5, 9, 33])
@pytest.mark.parametrize("nout", [8, 9, 15, 16, 20, 61])
def test_fused_row_against_naive(w, nout):
    rng = np.random.default_rng(100 * w + nout)
    h = 1 + (w % 4)
    x = (1e4 + rng.random((h + 6, nout + w - 1))).astype(np.float32)
    x[2:2 + h, : w + 2] = x[2, 0]                    # flat windows at the start of some rows
    t = (rng.random((h, w)) + np.arange(w) * 0.1).astype(np.float32)
    ref = naive_ccoeff_normed(x, t)
    new, ok = finish(x, t, 7)
    old, _ = finish(x, t, 3)
    assert ok
    np.testing.assert_allclose(new, ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(new, old, rtol=0, atol=2e-6)


@pytest.mark.parametrize("scale", [1e17, 1e-17])
def test_fused_row_out_of_float_range(scale):
    """Windows whose variance leaves [1e-30, 1e30] take the double formula
    in the fused row, as before it."""
    rng = np.random.default_rng(3)
    x = (rng.random((12, 40)) * scale).astype(np.float32)
    x[:, :8] = x[0, 0]                               # flat windows too
    t = rng.random((3, 5)).astype(np.float32)
    ref = naive_ccoeff_normed(x, t)
    new, ok = finish(x, t, 7)
    old, _ = finish(x, t, 3)
    assert ok
    np.testing.assert_allclose(new, old, rtol=0, atol=2e-6)
    np.testing.assert_allclose(new, ref, rtol=0, atol=1e-4)


def test_finish_block_reports_nonfinite():
    rng = np.random.default_rng(4)
    x = rng.random((20, 30)).astype(np.float32)
    t = rng.random((4, 6)).astype(np.float32)
    for bits in (7, 3):
        assert finish(x, t, bits)[1]
        for bad in (np.nan, np.inf, -np.inf):
            for r, c in ((0, 0), (19, 29), (10, 0), (0, 29), (7, 13)):
                y = x.copy()
                y[r, c] = bad
                assert not finish(y, t, bits)[1], (bits, bad, r, c)


def _both(x, t, method, threads):
    """match_template with and without the deferred check: (results, warning counts)."""
    res, counts = [], []
    for deferred in (True, False):
        engine.DEFER_FINITE = deferred
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res.append(fastcorr.match_template(x, t, method, num_threads=threads))
        finally:
            engine.DEFER_FINITE = True
        counts.append(len(caught))
    return res, counts


@pytest.mark.parametrize("shape,k,tiled", [((150, 160), (20, 24), True), ((160, 170), (13, 13), True),
                                           ((1, 300), (1, 40), False), ((70, 80), (8, 8), False)])
@pytest.mark.parametrize("threads", [1, 2])
def test_deferred_finite_check_equals_checked(shape, k, tiled, threads):
    """Both paths: the tiled one (its window sums find the NaN/inf) and the
    others (checked before they run)."""
    assert engine._use_tiled(k[0], k[1], *shape)[0] == tiled
    rng = np.random.default_rng(shape[1] + k[0])
    x = rng.random(shape).astype(np.float32)
    t = x[: k[0], : k[1]].copy() + np.float32(0.1)
    H, W = shape
    spots = [(0, 0), (H - 1, W - 1), (H // 2, W // 2), (0, W - 1)]
    for method in ("ccoeff_normed", "sqdiff", "ccorr_normed", "sqdiff_normed"):
        (a, b), _ = _both(x, t, method, threads)
        np.testing.assert_array_equal(a, b)
        for bad in (np.nan, np.inf):
            for r, c in spots:
                y = x.copy()
                y[r, c] = bad
                (a, b), (na, nb) = _both(y, t, method, threads)
                np.testing.assert_array_equal(a, b)
                assert na == nb
    if H > 1:
        ref = naive_ccoeff_normed(x, t)
        np.testing.assert_allclose(fastcorr.match_template(x, t, num_threads=threads), ref, rtol=0, atol=1e-5)


def test_deferred_finite_check_float64_overflow():
    """A finite float64 image whose squares overflow: the window sums see
    inf, the call starts again the checked way and equals it."""
    rng = np.random.default_rng(6)
    x = rng.random((100, 110)) * 1e200
    x[40:60, 40:60] = 1e150
    t = x[30:60, 35:65].copy()
    (a, b), _ = _both(x, t, "ccoeff_normed", 1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(1, 16, 16, 1), (3, 20, 21, 3), (2, 5, 7, 1), (1, 1, 9, 1)])
def test_template_constants_equal_numpy(shape):
    """The compiled template constants equal numpy's two-pass ones: far from
    zero (1e6 + noise), a constant channel exactly zero."""
    rng = np.random.default_rng(sum(shape))
    t = 1e6 + rng.random(shape) * 1e-2
    if shape[0] > 1:
        t[1, ..., 0] = 5.0
    engine.COMPILED_CONSTANTS = False
    try:
        ref = engine._template_constants(t)
    finally:
        engine.COMPILED_CONSTANTS = True
    got = engine._template_constants(t)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-13, atol=1e-13 * np.abs(r).max())
    assert np.abs(got[1].sum(axis=(1, 2))).max() <= 1e-12
    if shape[0] > 1:
        assert not got[1][1, ..., 0].any()


def test_level_and_spread_equal_numpy():
    rng = np.random.default_rng(8)
    for x in ((1e4 + rng.random((480, 640))).astype(np.float32), rng.standard_normal((37, 23)),
              rng.random((300, 200))[::2, 1::3]):
        step = max(1, int(np.sqrt(x.size / engine.SAMPLE)))
        s = x[::step, ::step].astype(np.float64)
        level, spread = window.level_and_spread(x, step)
        assert level == pytest.approx(s.mean(), rel=1e-12)
        assert spread == pytest.approx(s.std(), rel=1e-9)


@pytest.mark.parametrize("shape,k", [((160, 420), (20, 20)), ((400, 150), (17, 12)), ((300, 1300), (30, 30))])
@pytest.mark.parametrize("threads", [1, 2])
def test_shifted_edge_tiles(shape, k, threads):
    """Tiles moved back to end on the image's edge (``SHIFT_EDGE_TILES``)
    score what the zero-padded ones did, and the naive reference; a stack
    (one template's statistics per template, 'sqdiff_normed') too."""
    rng = np.random.default_rng(shape[0] + k[1])
    x = rng.random(shape).astype(np.float32)
    t = x[5:5 + k[0], 7:7 + k[1]] + np.float32(0.01) * rng.random(k).astype(np.float32)
    assert engine._use_tiled(k[0], k[1], *shape)[0]
    got = {}
    for shift in (True, False):
        engine.SHIFT_EDGE_TILES = shift
        try:
            got[shift] = (fastcorr.match_template(x, t, num_threads=threads),
                          fastcorr.match_template(x, np.stack([t, t[::-1]]), "sqdiff_normed", num_threads=threads))
        finally:
            engine.SHIFT_EDGE_TILES = True
    # the reference on the last rows and columns of outputs (the moved tiles')
    np.testing.assert_allclose(got[True][0][-8:, -300:], naive_ccoeff_normed(x[-(k[0] + 7):, -(k[1] + 299):], t),
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[True][0][:, -8:], naive_ccoeff_normed(x[:, -(k[1] + 7):], t), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[True][0], got[False][0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[True][1], got[False][1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape,k", [((120, 140), 8), ((64, 70), 3), ((200, 40), 12)])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_fused_row_in_place_scores(shape, k, offset):
    """Small templates (the dispatcher's correlation, then ``window.scores``
    in place): the fused row equals the kernels before it and the naive
    reference, flat windows included."""
    rng = np.random.default_rng(k)
    x = (offset + rng.random(shape)).astype(np.float32)
    x[30:50, 5:25] = x[30, 5]
    t = (x[10:10 + k, 20:20 + k] + 0.1 * rng.random((k, k))).astype(np.float32)
    assert not engine._use_tiled(k, k, *shape)[0]
    got = {}
    for bits in (7, 3):
        window._fast_paths(bits)
        try:
            got[bits] = fastcorr.match_template(x, t, num_threads=2)
        finally:
            window._fast_paths(7)
    np.testing.assert_allclose(got[7], naive_ccoeff_normed(x, t), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[7], got[3], rtol=0, atol=2e-6)
