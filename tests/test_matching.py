"""Template matching: match_template against naive float64 references,
scikit-image and OpenCV; window statistics on offset images; peaks on
sampled paraboloids and Gaussians; bad input."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import fastcorr
from fastcorr.methods import window

METHODS = ("sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed")
NORMED = ("sqdiff_normed", "ccorr_normed", "ccoeff_normed")


# --------------------------------------------------------------- references


def naive(image, template, method="ccoeff_normed", mask=None, overlap_ratio=0.3):
    """OpenCV's formulas window by window in float64, with weights (pairs
    weighted by m**2, means by m), missing image pixels (NaN: statistics over
    the valid pixels, NaN below overlap_ratio of the weight), the flat rule
    (a zero denominator gives 0, 1 for sqdiff_normed) and the clamps."""
    img = np.asarray(image, dtype=np.float64)
    tpl = np.asarray(template, dtype=np.float64)
    if img.ndim == 2:
        img, tpl = img[..., None], tpl[..., None]
        mask = None if mask is None else np.asarray(mask, dtype=np.float64)[..., None]
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64)
        mask = mask[..., None] if mask.ndim == tpl.ndim - 1 else mask
    m = np.ones_like(tpl) if mask is None else np.broadcast_to(mask, tpl.shape)
    m = np.where(np.isnan(tpl), 0.0, m)
    tpl = np.nan_to_num(tpl)
    h, w, C = tpl.shape
    missing = np.isnan(img).any(axis=2)
    x = np.where(missing[..., None], 0.0, img)
    X = sliding_window_view(x, (h, w), axis=(0, 1)).transpose(0, 1, 3, 4, 2)    # (Ho, Wo, h, w, C)
    V = sliding_window_view(~missing, (h, w)).astype(np.float64)[..., None]    # (Ho, Wo, h, w, 1)
    mv = m * V
    gv = m * m * V
    ax = (2, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method.startswith("ccoeff"):
            A = mv.sum(axis=ax, keepdims=True)
            xb = np.where(A > 0, (mv * X).sum(axis=ax, keepdims=True) / A, 0.0)
            tb = np.where(A > 0, (mv * tpl).sum(axis=ax, keepdims=True) / A, 0.0)
            xc, tc = X - xb, tpl - tb
            num = (gv * xc * tc).sum(axis=(2, 3, 4))
            dx, dt = (gv * xc * xc).sum(axis=(2, 3, 4)), (gv * tc * tc).sum(axis=(2, 3, 4))
        else:
            if method.startswith("ccorr"):
                num = (gv * X * tpl).sum(axis=(2, 3, 4))
            else:
                num = (gv * (X - tpl) ** 2).sum(axis=(2, 3, 4))
            dx, dt = (gv * X * X).sum(axis=(2, 3, 4)), (gv * tpl * tpl).sum(axis=(2, 3, 4))
        den = dx * dt
        if method in NORMED:
            zero = den <= 0
            num = np.where(zero, 1.0 if method == "sqdiff_normed" else 0.0, num / np.sqrt(np.where(zero, 1, den)))
            num = np.clip(num, 0.0 if method == "sqdiff_normed" else -1.0, 1.0)
    if missing.any():
        At = mv.sum(axis=(2, 3, 4))
        num = np.where((At <= 0) | (At < overlap_ratio * m.sum()), np.nan, num)
    return num


def windows_centred_ncc(image, template):
    """ccoeff_normed, each window centred first (float64): the §2.8 reference."""
    v = sliding_window_view(np.asarray(image, np.float64), template.shape)
    vc = v - v.mean(axis=(-1, -2), keepdims=True)
    tc = np.asarray(template, np.float64) - np.mean(template, dtype=np.float64)
    return (vc * tc).sum(axis=(-1, -2)) / np.sqrt((vc ** 2).sum(axis=(-1, -2)) * (tc ** 2).sum())


def _scale(ref):
    return max(1.0, float(np.nanmax(np.abs(ref))))


# ----------------------------------------------------------- naive references


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,tshape", [((23, 31), (5, 7)), ((16, 20), (16, 3)), ((9, 40), (4, 1)),
                                          ((30, 34), (20, 25))])
def test_equals_naive_float64(method, shape, tshape):
    rng = np.random.default_rng(1)
    img = rng.random(shape)
    tpl = rng.random(tshape)
    got = fastcorr.match_template(img, tpl, method)
    ref = naive(img, tpl, method)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * _scale(ref))


@pytest.mark.parametrize("method", METHODS)
def test_colour_equals_naive(method):
    rng = np.random.default_rng(2)
    img = rng.random((19, 22, 3))
    tpl = rng.random((6, 5, 3))
    ref = naive(img, tpl, method)
    for m in (method, METHODS.index(method)):
        got = fastcorr.match_template(img, tpl, m)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * _scale(ref))


@pytest.mark.parametrize("method", METHODS)
def test_float32_close_to_float64_reference(method):
    rng = np.random.default_rng(3)
    img = rng.random((40, 45)).astype(np.float32)
    tpl = rng.random((9, 8)).astype(np.float32)
    got = fastcorr.match_template(img, tpl, method)
    assert got.dtype == np.float32
    ref = naive(img, tpl, method)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6 * _scale(ref))


def test_large_template_through_fft_equals_naive():
    rng = np.random.default_rng(4)
    img = rng.random((70, 76))
    tpl = img[20:54, 25:63] + 0.2 * rng.random((34, 38))
    assert fastcorr.choose_method(img, tpl, "valid") == "fft"
    for method in ("sqdiff", "ccorr_normed", "ccoeff_normed"):
        ref = naive(img, tpl, method)
        np.testing.assert_allclose(fastcorr.match_template(img, tpl, method), ref, rtol=0,
                                   atol=1e-11 * _scale(ref))


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-11), (np.float32, 3e-6)])
def test_tiled_fft_path_equals_naive(monkeypatch, dtype, atol):
    """The tiled FFT path with its scores fused (one channel, one template of
    at least TILED_MIN_TAPS values): several tiles per axis, edge tiles past
    the image, items split over threads, every method, against float64."""
    from fastcorr._engine import matching as engine

    monkeypatch.setattr(engine, "TILED_MIN_OUTPUTS", 1)
    rng = np.random.default_rng(40)
    img = rng.random((64, 83)).astype(dtype)
    for tshape, plan, threads in (((13, 13), (24, 30, 12, 18), 2), ((20, 16), (32, 40, 13, 25), 1),
                                  ((20, 16), None, 2)):
        assert engine._use_tiled(tshape[0], tshape[1], *img.shape)[0]
        tpl = (img[30:30 + tshape[0], 40:40 + tshape[1]] + 0.3 * rng.random(tshape)).astype(dtype)
        with monkeypatch.context() as m:
            if plan is not None:
                m.setattr(engine, "tile_plan", lambda *a, p=plan: p)
            for method in METHODS if dtype == np.float64 else ("sqdiff", "ccoeff_normed"):
                got = fastcorr.match_template(img, tpl, method, num_threads=threads)
                ref = naive(img, tpl, method)
                assert got.dtype == dtype
                np.testing.assert_allclose(got, ref, rtol=0, atol=atol * _scale(ref))


@pytest.mark.parametrize("threads", [1, 2])
def test_tiled_fft_path_template_stack(monkeypatch, threads):
    """A stack of one-channel templates on the tiled path (each tile's
    forward transform shared) equals the naive float64 scores per template."""
    from fastcorr._engine import matching as engine

    monkeypatch.setattr(engine, "TILED_MIN_OUTPUTS", 1)
    monkeypatch.setattr(engine, "tile_plan", lambda *a: (24, 30, 12, 18))
    rng = np.random.default_rng(43)
    img = rng.random((64, 83))
    tpls = np.stack([img[5 * i:5 * i + 13, 7 * i:7 * i + 13] + 0.2 * rng.random((13, 13)) for i in range(3)])
    tpls[1] = 0.5  # a flat template: scores 0
    for method in ("sqdiff_normed", "ccoeff_normed"):
        got = fastcorr.match_template(img, tpls, method, num_threads=threads)
        assert got.shape == (3, 52, 71)
        for i in range(3):
            ref = naive(img, tpls[i], method)
            np.testing.assert_allclose(got[i], ref, rtol=0, atol=1e-11)


def test_tiled_fft_path_single_item_split_over_threads():
    """One tile (fewer work items than threads): the scores of the item are
    split by rows over the threads."""
    from fastcorr._engine import matching as engine

    rng = np.random.default_rng(41)
    img = rng.random((150, 160))
    tpl = img[50:70, 60:80] + 0.1 * rng.random((20, 20))
    N0, N1, B0, B1 = engine.tile_plan(131, 141, 20, 20)
    assert (B0, B1) == (131, 141) and engine._use_tiled(20, 20, 150, 160)[0]
    ref = naive(img, tpl)
    np.testing.assert_allclose(fastcorr.match_template(img, tpl, num_threads=3), ref, rtol=0, atol=1e-11)


@pytest.mark.parametrize("threads", [1, 3])
def test_tiled_stack_float32_shares_window_statistics(threads):
    """A float32 stack under 'ccoeff_normed' on the tiled path (each block's
    1/sqrt of the window variances computed once for the stack; with 3
    threads on one tile, split by rows) on an offset image with a flat
    patch: the §2.8 bound against the float64 centred reference, flat
    windows and the flat template 0, and single calls' scores."""
    from fastcorr._engine import matching as engine

    rng = np.random.default_rng(44)
    img = (1e4 + rng.random((150, 170))).astype(np.float32)
    img[40:90, 50:110] = 1e4                      # flat windows
    tpls = np.stack([img[10 * i:10 * i + 20, 12 * i:12 * i + 21] for i in range(3)]).astype(np.float32)
    tpls[1] = 7.0                                 # a flat template
    assert engine._use_tiled(20, 21, 150, 170)[0]
    got = fastcorr.match_template(img, tpls, num_threads=threads)
    assert got.dtype == np.float32 and got.shape == (3, 131, 150)
    assert np.all(got[1] == 0) and np.all(got[:, 40:71, 50:90] == 0)
    for i in (0, 2):
        with np.errstate(invalid="ignore", divide="ignore"):  # the flat windows: 0/0
            ref = np.nan_to_num(windows_centred_ncc(img, tpls[i]), nan=0.0)
        np.testing.assert_allclose(got[i], ref, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got[i], fastcorr.match_template(img, tpls[i], num_threads=threads), rtol=0,
                                   atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_rstd_and_apply_rstd(dtype):
    """window.window_rstd: 1/sqrt of each window's centred sum of squares
    (0 when flat); apply_rstd: clamp(src * rs * r) from tiles."""
    rng = np.random.default_rng(45)
    x = (100 + rng.random((40, 90))).astype(dtype)
    x[:, 60:] = 3.0
    v = sliding_window_view(x.astype(np.float64), (5, 6))
    var = ((v - v.mean(axis=(2, 3), keepdims=True)) ** 2).sum(axis=(2, 3))
    ref = np.where(var > 1e-9, 1 / np.sqrt(np.where(var > 1e-9, var, 1)), 0.0)
    r = np.empty((20, 70), dtype)
    assert window.window_rstd(x, 5, 6, r, 7, 10)
    np.testing.assert_allclose(r, ref[7:27, 10:80], rtol=1e-6 if dtype == np.float32 else 1e-10, atol=0)
    src = (rng.random((3, 20, 30)) - 0.5).astype(dtype) * 4
    out = np.full(ref.shape, np.nan, dtype)
    window.apply_rstd(src, out, r, 7, 10, 25, 0.5)
    want = np.clip(np.concatenate([src[j, :, :25] for j in range(3)], axis=1)[:, :70] * 0.5 * r, -1, 1)
    np.testing.assert_allclose(out[7:27, 10:80], want, rtol=1e-6, atol=0)
    assert np.isnan(out[:7]).all() and np.isnan(out[27:]).all()
    with pytest.raises(ValueError, match="block"):
        window.window_rstd(x, 5, 6, r, 20, 10)
    with pytest.raises(ValueError, match="columns"):
        window.apply_rstd(src[:2], out, r, 7, 10, 25, 0.5)


@pytest.mark.parametrize("scale", [1e-17, 1e17])
def test_float32_scores_scale_invariant_far_from_one(scale):
    """Float32 'ccoeff_normed' on images scaled so far from 1 that the
    windows' variances leave float's comfortable range (the vector kernel's
    groups fall back to the double formula): the scores of the unscaled image."""
    rng = np.random.default_rng(46)
    img = rng.random((50, 300)).astype(np.float32)
    tpl = img[10:22, 40:52] + np.float32(0.3) * rng.random((12, 12), dtype=np.float32)
    ref = fastcorr.match_template(img, tpl)
    got = fastcorr.match_template(img * np.float32(scale), tpl)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("k", [7, 20])
def test_vector_kernels_equal_portable_loops(k):
    """The AVX2 kernels that have a portable twin (float32 'ccoeff_normed'
    scores, one channel's row sums; where the CPU has AVX2) give the
    portable loops' scores, on the direct and the tiled paths."""
    rng = np.random.default_rng(47)
    img = (1e3 + rng.random((90, 400))).astype(np.float32)
    tpl = img[30:30 + k, 100:100 + k].copy()
    try:
        window._fast_paths(0)
        slow = fastcorr.match_template(img, tpl, num_threads=1)
        slow64 = fastcorr.match_template(img.astype(np.float64), tpl, "sqdiff_normed", num_threads=1)
    finally:
        window._fast_paths()
    fast = fastcorr.match_template(img, tpl, num_threads=1)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=2e-6)
    np.testing.assert_allclose(fastcorr.match_template(img.astype(np.float64), tpl, "sqdiff_normed", num_threads=1),
                               slow64, rtol=0, atol=1e-12)


def test_finish_block_equals_scores():
    """window.finish_block on correlations held in tiles (strided, several
    window tiles per correlation tile) gives window.scores' values."""
    rng = np.random.default_rng(42)
    x = rng.random((60, 700))
    t = rng.random((6, 5))
    tz = t - t.mean()
    num = (sliding_window_view(x, t.shape) * tz).sum(axis=(2, 3))
    consts = (t.mean(), float((tz ** 2).sum()), float((t ** 2).sum()))
    for method in range(6):
        ref = num[None].copy()
        window.scores(x, 1, 6, 5, ref, np.array([[consts[0]]]), np.array([consts[1]]), np.array([consts[2]]),
                      method, 1)
        out = np.full(num.shape, np.nan)
        B1 = 300
        for r0, r1 in ((0, 17), (17, 55)):
            src = np.zeros((3, r1 - r0, B1 + 7))
            for j in range(3):
                part = num[r0:r1, j * B1:(j + 1) * B1]
                src[j, :, :part.shape[1]] = part
            window.finish_block(x, 6, 5, src[:, :, :], out, r0, 0, B1, *consts, method)
        np.testing.assert_allclose(out, ref[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="block"):
        window.finish_block(x, 6, 5, np.zeros((3, 5, 300)), out, 54, 0, 300, *consts, 5)


def test_dtypes():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, (20, 24))
    tpl = img[3:8, 4:11].copy()
    ref = naive(img, tpl)
    for dt in (np.uint8, np.uint16, np.int16, np.int32, np.float64):
        got = fastcorr.match_template(img.astype(dt), tpl.astype(dt))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, atol=1e-12)
    for dt in (np.float32, np.float16):
        got = fastcorr.match_template(img.astype(dt), tpl.astype(dt))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=1e-5)
    assert fastcorr.match_template(img.astype(np.float32), tpl.astype(np.float64)).dtype == np.float64
    # array-likes, non-contiguous and read-only inputs; inputs not modified
    big = rng.random((40, 50))
    view = big[::2, ::2]
    view.flags.writeable = False
    t = big[1:9:2, 3:13:2].tolist()
    before = big.copy()
    np.testing.assert_allclose(fastcorr.match_template(view, t), naive(view, np.array(t)), atol=1e-12)
    np.testing.assert_array_equal(big, before)


def test_flat_windows_and_templates():
    img = np.zeros((12, 14))
    img[:, 7:] = 0.5                                  # flat, and zero, windows
    img[2:5, 9:12] = [[1, 2, 3], [4, 5, 6], [7, 8, 10]]
    tpl = np.arange(12.0).reshape(3, 4)
    for method in METHODS:
        got = fastcorr.match_template(img, tpl, method)
        np.testing.assert_allclose(got, naive(img, tpl, method), atol=1e-12)
    assert np.all(fastcorr.match_template(img, tpl)[:, :3] == 0)                  # flat window: 0
    assert np.all(fastcorr.match_template(img, tpl, "sqdiff_normed")[:, :3] == 1)  # zero window: 1
    assert np.all(fastcorr.match_template(img, tpl, "ccorr_normed")[:, :3] == 0)
    flat = np.full((3, 4), 2.0)
    assert np.all(fastcorr.match_template(img, flat) == 0)                        # flat template: 0
    assert np.all(fastcorr.match_template(img, np.zeros((3, 4)), "sqdiff_normed") == 1)
    # flat windows at a large offset, float32
    off = (1e4 + img).astype(np.float32)
    assert np.all(fastcorr.match_template(off, tpl.astype(np.float32))[5:, 7:] == 0)


def test_scores_clamped():
    rng = np.random.default_rng(6)
    img = rng.random((60, 60)).astype(np.float32)
    for k in (3, 17):
        tpl = img[10:10 + k, 20:20 + k].copy()
        for method in NORMED:
            s = fastcorr.match_template(img, tpl, method)
            lo = 0.0 if method == "sqdiff_normed" else -1.0
            assert s.min() >= lo and s.max() <= 1.0
        s = fastcorr.match_template(img, tpl)
        assert s[10, 20] == pytest.approx(1.0, abs=1e-6)


def test_template_stack_equals_single_calls():
    rng = np.random.default_rng(7)
    for img, tpls in ((rng.random((30, 36)), rng.random((4, 6, 5))),
                      (rng.random((25, 21, 3)).astype(np.float32), rng.random((3, 4, 7, 3)).astype(np.float32))):
        for method in ("ccoeff_normed", "sqdiff", "ccorr_normed"):
            got = fastcorr.match_template(img, tpls, method)
            assert got.shape == (len(tpls),) + fastcorr.match_template(img, tpls[0], method).shape
            for t in range(len(tpls)):
                np.testing.assert_array_equal(got[t], fastcorr.match_template(img, tpls[t], method))


def test_threads_agree():
    rng = np.random.default_rng(8)
    img = rng.random((300, 200)).astype(np.float32)
    tpl = img[100:111, 50:70].copy()
    one = fastcorr.match_template(img, tpl, num_threads=1)
    np.testing.assert_allclose(fastcorr.match_template(img, tpl, num_threads=2), one, atol=1e-6)
    with fastcorr.threads(2):
        np.testing.assert_allclose(fastcorr.match_template(img, tpl), one, atol=1e-6)


def test_concurrent_calls_from_python_threads():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(25)
    cases = [(rng.random((200, 230)).astype(np.float32), k) for k in (5, 9, 40, 12, 7, 33)]
    cases = [(x, x[20:20 + k, 30:30 + k].copy()) for x, k in cases]
    want = [fastcorr.match_template(x, t, num_threads=1) for x, t in cases]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda c: fastcorr.match_template(c[0], c[1], num_threads=2), cases * 3))
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, want[i % len(cases)], atol=1e-6)


# -------------------------------------------------- exact window statistics


@pytest.mark.parametrize("dtype,bound", [(np.float64, 1e-9), (np.float32, 1e-4)])
@pytest.mark.parametrize("noise", [1.0, 0.01])
def test_offset_image_accuracy(dtype, bound, noise):
    """§2.8: values 1e4 + noise, against a float64 reference that centres each window."""
    rng = np.random.default_rng(9)
    img = (1e4 + noise * rng.random((120, 130))).astype(dtype)
    for tshape in ((7, 9), (40, 45)):
        tpl = (img[30:30 + tshape[0], 40:40 + tshape[1]] + noise * 0.3 * rng.random(tshape)).astype(dtype)
        ref = windows_centred_ncc(img, tpl)
        got = fastcorr.match_template(img, tpl)
        assert np.abs(got - ref).max() <= bound


def test_far_offset_float64():
    """1e6 + noise of 1e-2: the template's mean must be exact to its last bit
    (a first-pass mean left the zero-mean template a constant of 1e-10, which
    the image's level turned into score errors of 1e-8)."""
    rng = np.random.default_rng(24)
    img = 1e6 + 1e-2 * rng.random((90, 100))
    tpl = img[20:41, 30:60] + 3e-3 * rng.random((21, 30))
    assert np.abs(fastcorr.match_template(img, tpl) - windows_centred_ncc(img, tpl)).max() <= 1e-9
    # a step of 1e4 across the image: exact away from the tile holding the step
    step = np.where(np.arange(900) < 450, 0.0, 1e4)[None, :] + rng.random((40, 900))
    t = step[5:20, 600:630].copy()
    err = np.abs(fastcorr.match_template(step, t) - windows_centred_ncc(step, t))
    assert err[:, 700:].max() <= 1e-9 and err.max() <= 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_window_moments_on_offset_image(dtype):
    rng = np.random.default_rng(10)
    for C in (1, 3):
        img = (1e4 + rng.random((70, 60, C))).astype(dtype)
        h, w = 6, 11
        mean, var = window.moments(img.reshape(70, 60 * C), C, h, w, 2)
        v = sliding_window_view(img.astype(np.float64), (h, w), axis=(0, 1))      # (Ho, Wo, C, h, w)
        ref_mean = v.mean(axis=(-1, -2))
        ref_var = ((v - ref_mean[..., None, None]) ** 2).sum(axis=(-1, -2, -3))
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-15, atol=0)
        np.testing.assert_allclose(var, ref_var, rtol=1e-12)


# ------------------------------------------------------------- scikit-image


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_defaults_equal_skimage(dtype):
    feature = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(11)
    img = rng.random((50, 61)).astype(dtype)
    for tshape in ((1, 1), (8, 13), (50, 20), (49, 61)):
        tpl = (img[:tshape[0], -tshape[1]:] + 0.3 * rng.random(tshape)).astype(dtype)
        got = fastcorr.match_template(img, tpl)
        ref = feature.match_template(img, tpl)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-12 if dtype == np.float64 else 5e-5)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap", "mean", "median",
                                  "minimum", "maximum", "linear_ramp"])
def test_pad_input_equals_skimage(mode):
    feature = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(12)
    img = rng.random((21, 26))
    for tshape in ((5, 7), (4, 6), (21, 3)):
        tpl = rng.random(tshape)
        got = fastcorr.match_template(img, tpl, pad_input=True, mode=mode, constant_values=0.7)
        ref = feature.match_template(img, tpl, pad_input=True, mode=mode, constant_values=0.7)
        assert got.shape == img.shape
        np.testing.assert_allclose(got, ref, atol=1e-12)


def test_pad_input_template_larger_than_image():
    img = np.random.default_rng(13).random((8, 9))
    tpl = np.random.default_rng(14).random((11, 4))
    got = fastcorr.match_template(img, tpl, pad_input=True, mode="reflect")
    padded = np.pad(img, ((11, 11), (4, 4)), mode="reflect")[11 - 5:11 - 5 + 8 + 10, 4 - 2:4 - 2 + 9 + 3]
    np.testing.assert_allclose(got, naive(padded, tpl), atol=1e-12)


# ------------------------------------------------------------------- OpenCV


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_methods_equal_opencv(dtype, channels):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(15)
    shape = (45, 52) if channels == 1 else (45, 52, 3)
    img = rng.random(shape) * (255 if dtype == np.uint8 else 1)
    img = img.astype(dtype)
    for tshape in ((7, 11), (30, 33)):
        tpl = img[5:5 + tshape[0], 9:9 + tshape[1]].copy()
        tpl[0, 0] = tpl[1, 1]                            # not an exact copy
        for code, method in enumerate(METHODS):
            got = fastcorr.match_template(img, tpl, method)
            ref = cv2.matchTemplate(img, tpl, code)
            assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
            np.testing.assert_allclose(got, ref, rtol=0, atol=3e-6 * _scale(ref), err_msg=method)


@pytest.mark.parametrize("channels", [1, 3])
def test_masks_equal_opencv(channels):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(16)
    shape = (40, 47) if channels == 1 else (40, 47, 3)
    img = rng.random(shape).astype(np.float32)
    tpl = (img[8:17, 5:17] + 0.1 * rng.random(img[8:17, 5:17].shape)).astype(np.float32)
    binary = rng.random(tpl.shape[:2]) > 0.3
    weights = rng.random(tpl.shape).astype(np.float32)
    for mask in (binary.astype(np.float32), weights, binary.astype(np.uint8) * 255):
        for code, method in enumerate(METHODS):
            got = fastcorr.match_template(img, tpl, method, mask=mask)
            ref = cv2.matchTemplate(img, tpl, code, mask=mask)
            if method == "sqdiff_normed":
                ref = np.minimum(ref, 1.0)             # OpenCV's masked path does not clamp
            np.testing.assert_allclose(got, ref, rtol=0, atol=3e-6 * _scale(ref), err_msg=method)
            np.testing.assert_allclose(got, naive(img, tpl, method, mask=mask if mask.dtype != np.uint8 else
                                                  mask > 0), rtol=0, atol=2e-6 * _scale(ref))


# ---------------------------------------------------- masks and missing data


def test_mask_forms_and_nan_template_pixels():
    rng = np.random.default_rng(17)
    img = rng.random((30, 33, 3))
    tpl = rng.random((5, 6, 3))
    m2 = rng.random((5, 6)) > 0.4
    ref = naive(img, tpl, mask=m2[..., None])
    np.testing.assert_allclose(fastcorr.match_template(img, tpl, mask=m2), ref, atol=1e-12)
    np.testing.assert_allclose(fastcorr.match_template(img, tpl, mask=np.repeat(m2[..., None], 3, 2)), ref,
                               atol=1e-12)
    np.testing.assert_allclose(fastcorr.match_template(img, tpl, mask=m2.astype(np.uint8) * 7), ref, atol=1e-12)
    holes = tpl.copy()
    holes[~m2] = np.nan
    np.testing.assert_allclose(fastcorr.match_template(img, holes), ref, atol=1e-12)
    stack = np.stack([tpl, tpl[::-1]])
    got = fastcorr.match_template(img, stack, mask=np.stack([m2, ~m2]))
    np.testing.assert_allclose(got[1], naive(img, tpl[::-1], mask=(~m2)[..., None]), atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_missing_pixels_equal_padfield_reference(method):
    rng = np.random.default_rng(18)
    img = rng.random((28, 31))
    img[rng.random(img.shape) < 0.08] = np.nan
    img[20:, 20:] = np.nan
    tpl = rng.random((6, 5))
    mask = rng.random((6, 5))
    for kw in ({}, {"mask": mask}, {"overlap_ratio": 0.9}, {"overlap_ratio": 0.0}):
        got = fastcorr.match_template(img, tpl, method, **kw)
        ref = naive(img, tpl, method, **kw)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * _scale(ref))
    assert np.isnan(fastcorr.match_template(img, tpl, method)[-1, -1])


def test_missing_colour_pixel_and_float32():
    rng = np.random.default_rng(19)
    img = rng.random((24, 26, 3)).astype(np.float32)
    img[5, 7, 1] = np.nan                                 # one channel NaN: the pixel is missing
    tpl = img[3:9, 4:12].copy()
    tpl[2, 3, 1] = 0.5
    got = fastcorr.match_template(img, tpl)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, naive(img, tpl), atol=1e-5)
    assert got[3, 4] == pytest.approx(1.0, abs=1e-5)     # the match, scored over the valid pixels


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.skipif(os.environ.get("FASTCORR_SANITIZER") == "1",
                    reason="AddressSanitizer's quarantine holds freed memory: peaks are not the program's")
def test_memory_of_scikit_image_6623_case():
    """2400x1080 image, 523x768 template (scikit-image #6623): under 300 MB above the inputs."""
    script = textwrap.dedent("""
        import json
        import numpy as np, fastcorr
        from fastcorr._cli.peak_memory import peak_growth

        rng = np.random.default_rng(0)
        img = rng.random((2400, 1080))
        tpl = img[1000:1523, 100:868].copy()
        fastcorr.match_template(img[:600, :900], tpl[:40, :40])
        found = []
        growth = peak_growth(lambda: found.append(fastcorr.match_template(img, tpl)))
        r = found[0]
        print(json.dumps({"growth": growth, "best": [int(i) for i in np.unravel_index(np.argmax(r), r.shape)]}))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["best"] == [1000, 100]
    assert out["growth"] < 300 * 2**20, out


# -------------------------------------------------------------------- peaks


def test_peaks_parabolic_exact_on_paraboloid():
    y, x = np.mgrid[0:15, 0:21]
    for cy, cx in ((7.3, 12.6), (4.0, 9.45), (10.5 - 1e-9, 3.2)):
        s = 5.0 - 0.7 * (y - cy) ** 2 - 1.9 * (x - cx) ** 2
        pos, val = fastcorr.peaks(s, subpixel="parabolic")
        np.testing.assert_allclose(pos[0], [cy, cx], atol=1e-9)
        iy, ix = int(round(cy)), int(round(cx))
        assert val[0] == s[iy, ix]


def test_peaks_gaussian_exact_on_gaussian():
    y, x = np.mgrid[0:17, 0:19]
    for cy, cx, sy, sx in ((8.2, 9.7, 1.5, 2.5), (3.45, 14.0, 0.8, 1.1)):
        s = 3.0 * np.exp(-((y - cy) ** 2) / (2 * sy ** 2) - (x - cx) ** 2 / (2 * sx ** 2))
        pos, _ = fastcorr.peaks(s, subpixel="gaussian")
        np.testing.assert_allclose(pos[0], [cy, cx], atol=1e-9)
        pos_p, _ = fastcorr.peaks(s, subpixel="parabolic")
        assert np.abs(pos_p[0] - [cy, cx]).max() > 1e-4        # the parabola is not exact here
    # a neighbour <= 0: the parabola instead
    s = np.array([[0.0, 0.0, 0.0], [-1.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    pos, _ = fastcorr.peaks(s, subpixel="gaussian")
    np.testing.assert_allclose(pos[0], [1.0, 1.0 + (-1.0 - 1.0) / (2 * (-1.0 - 4.0 + 1.0))])


def test_peaks_centroid():
    y, x = np.mgrid[0:9, 0:9]
    s = np.exp(-((y - 4) ** 2) / 2.0 - (x - 4) ** 2 / 3.0)     # symmetric about (4, 4)
    pos, _ = fastcorr.peaks(s, subpixel="centroid")
    np.testing.assert_allclose(pos[0], [4.0, 4.0], atol=1e-12)
    s = np.zeros((5, 5))
    s[1:4, 1:4] = [[0.0, 1.0, 0.0], [0.0, 3.0, 2.0], [0.0, 1.0, 0.0]]
    pos, _ = fastcorr.peaks(s, subpixel="centroid")             # weights minus the 3x3's minimum (0)
    np.testing.assert_allclose(pos[0], [2.0, (3.0 * 2 + 2.0 * 3 + 1 * 2 + 1 * 2) / 7.0])


def test_peaks_suppression_threshold_minimize():
    s = np.zeros((20, 20))
    for (r, c, v) in ((5, 5, 0.9), (5, 7, 0.8), (15, 15, 0.7), (0, 19, 0.95), (12, 3, 0.3)):
        s[r, c] = v
    pos, val = fastcorr.peaks(s, num_peaks=10)
    np.testing.assert_array_equal(val, [0.95, 0.9, 0.8, 0.7, 0.3])
    np.testing.assert_array_equal(pos[:2], [[0, 19], [5, 5]])
    pos, val = fastcorr.peaks(s, num_peaks=10, min_distance=3)       # (5, 7) is 2 from (5, 5)
    np.testing.assert_array_equal(val, [0.95, 0.9, 0.7, 0.3])
    pos, val = fastcorr.peaks(s, num_peaks=10, min_distance=2)
    np.testing.assert_array_equal(val, [0.95, 0.9, 0.8, 0.7, 0.3])
    pos, val = fastcorr.peaks(s, num_peaks=2, threshold=0.5)
    np.testing.assert_array_equal(val, [0.95, 0.9])
    _, val = fastcorr.peaks(s, num_peaks=10, threshold=0.7)
    np.testing.assert_array_equal(val, [0.95, 0.9, 0.8])
    pos, val = fastcorr.peaks(-s, num_peaks=3, minimize=True, threshold=-0.8)
    np.testing.assert_array_equal(val, [-0.95, -0.9, -0.8])
    s[0, 19] = np.nan
    _, val = fastcorr.peaks(s)
    assert val[0] == 0.9
    pos, val = fastcorr.peaks(np.zeros((0, 4)))
    assert pos.shape == (0, 2) and val.shape == (0,)


def test_peaks_many_candidates_and_border():
    rng = np.random.default_rng(20)
    s = rng.random((200, 300))
    pos, val = fastcorr.peaks(s, num_peaks=40, min_distance=25)
    assert len(val) == 40 and np.all(np.diff(val) <= 0)
    d = np.abs(pos[:, None, :] - pos[None, :, :]).max(axis=2)
    assert d[~np.eye(40, dtype=bool)].min() >= 25
    assert val[0] == s.max()
    # greedy suppression by brute force: every kept peak is the best local
    # maximum not within 24 of a better kept one
    y, x = np.mgrid[0:15, 0:9]
    edge = -((y - 0.2) ** 2) - (x - 8.3) ** 2                 # peak at the corner (0, 8)
    p, _ = fastcorr.peaks(edge, subpixel="parabolic")
    np.testing.assert_allclose(p[0], [0.0, 8.0])                # no neighbour beyond the border


def test_peaks_find_matches_end_to_end():
    rng = np.random.default_rng(21)
    img = rng.random((120, 140)).astype(np.float32)
    tpl = img[30:45, 60:80].copy()
    img[80:95, 10:30] = tpl
    scores = fastcorr.match_template(img, tpl)
    pos, val = fastcorr.peaks(scores, num_peaks=2, min_distance=5)
    assert {tuple(p) for p in pos.astype(int).tolist()} == {(30, 60), (80, 10)}
    np.testing.assert_allclose(val, 1.0, atol=1e-5)
    sub, _ = fastcorr.peaks(scores, num_peaks=2, min_distance=5, subpixel="gaussian")
    assert np.abs(sub - pos).max() < 0.5
    d = fastcorr.match_template(img, tpl, "sqdiff")
    pos, val = fastcorr.peaks(d, num_peaks=2, minimize=True, min_distance=5)
    assert {tuple(p) for p in pos.astype(int).tolist()} == {(30, 60), (80, 10)}


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call,exc,word", [
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((6, 2))), ValueError, "template"),
    (lambda: fastcorr.match_template(np.ones((5, 5, 3)), np.ones((2, 2, 4))), ValueError, "channels"),
    (lambda: fastcorr.match_template(np.ones((5, 5, 3)), np.ones((2, 2))), ValueError, "template"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((1, 2, 2, 2, 1))), ValueError, "template"),
    (lambda: fastcorr.match_template(np.ones((5,)), np.ones((2,))), ValueError, "image"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), "corr"), ValueError, "method"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), 6), ValueError, "method"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), True), TypeError, "method"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), mask=-np.ones((2, 2))), ValueError, "mask"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), mask=np.ones((3, 2))), ValueError, "mask"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), mask=np.full((2, 2), np.nan)),
     ValueError, "mask"),
    (lambda: fastcorr.match_template(np.ones((0, 5)), np.ones((2, 2))), ValueError, "image"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((0, 2))), ValueError, "template"),
    (lambda: fastcorr.match_template(np.ones((5, 5)) * 1j, np.ones((2, 2))), TypeError, "image"),
    (lambda: fastcorr.match_template(np.ones((5, 5), bool), np.ones((2, 2))), TypeError, "image"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.array([["a"]])), TypeError, "template"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), mode="nope"), ValueError, "mode"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), overlap_ratio=1.5), ValueError,
     "overlap_ratio"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.ones((2, 2)), num_threads=0), ValueError, "num_threads"),
    (lambda: fastcorr.match_template(np.ones((5, 5)), np.full((2, 2), np.inf)), ValueError, "template"),
    (lambda: fastcorr.peaks(np.ones(5)), ValueError, "scores"),
    (lambda: fastcorr.peaks(np.ones((5, 5)), num_peaks=0), ValueError, "num_peaks"),
    (lambda: fastcorr.peaks(np.ones((5, 5)), min_distance=1.5), TypeError, "min_distance"),
    (lambda: fastcorr.peaks(np.ones((5, 5)), subpixel="spline"), ValueError, "subpixel"),
    (lambda: fastcorr.peaks(np.ones((5, 5)), threshold="x"), TypeError, "threshold"),
])
def test_bad_input(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


# --------------------------------------------------------------------- dask


@pytest.mark.parametrize("kw", [{}, {"pad_input": True}, {"pad_input": True, "mode": "reflect"},
                                {"pad_input": True, "mode": "wrap"}, {"pad_input": True, "mode": "symmetric"},
                                {"pad_input": True, "mode": "edge", "method": "sqdiff"}])
def test_dask_equals_in_memory(kw):
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fdask

    rng = np.random.default_rng(22)
    x = rng.random((57, 43))
    t = rng.random((9, 6))
    ref = fastcorr.match_template(x, t, **kw)
    for chunks in ((20, 15), (4, 3), (57, 43)):
        for layout in ("seams", "input"):
            y = fdask.match_template(da.from_array(x, chunks=chunks), t, chunks=layout, **kw)
            assert y.shape == ref.shape and y.dtype == ref.dtype
            np.testing.assert_allclose(y.compute(scheduler="sync"), ref, rtol=0, atol=1e-12 * _scale(ref))


def test_dask_colour_stack_missing_and_integers():
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fdask

    rng = np.random.default_rng(23)
    x = rng.random((40, 50, 3)).astype(np.float32)
    x[10, 10, 1] = np.nan
    t = rng.random((2, 7, 8, 3)).astype(np.float32)
    y = fdask.match_template(da.from_array(x, chunks=(13, 17, 3)), t, "ccorr_normed", mask=t[0, ..., 0] > 0.3)
    ref = fastcorr.match_template(x, t, "ccorr_normed", mask=t[0, ..., 0] > 0.3)
    got = y.compute()
    assert got.shape == ref.shape == (2, 34, 43)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-6)
    u = (rng.random((30, 35)) * 255).astype(np.uint8)
    y = fdask.match_template(da.from_array(u, chunks=10), u[3:10, 4:9], pad_input=True, constant_values=0.5)
    np.testing.assert_allclose(y.compute(), fastcorr.match_template(u, u[3:10, 4:9], pad_input=True,
                                                                  constant_values=0.5), atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        fdask.match_template(da.from_array(u, chunks=10), u[:3, :3], pad_input=True, mode="mean")
    with pytest.raises(ValueError, match="template"):
        fdask.match_template(da.from_array(u, chunks=10), np.ones((31, 2)))
