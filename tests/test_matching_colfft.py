"""Template matching's column FFT (``fft_kernels.column_fft``, the column
pass of float32 tiles of a power-of-two height): against numpy's FFT in
float64, the scalar loops against the vector ones, and match_template on
that path against naive float64 scores, scikit-image and the ducc0-only
path."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import fastcorr

fft_kernels = pytest.importorskip("fastcorr.methods.fft_kernels")


def bitrev(n):
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)])


@pytest.mark.parametrize("n0", [2, 4, 8, 32, 128, 512])
@pytest.mark.parametrize("portable", [False, True])
def test_column_fft_equals_numpy(n0, portable):
    """Forward: numpy's FFT down the columns in bit-reversed row order;
    inverse: n0 times the input back; columns outside c0..c1 untouched;
    every plane of a stack."""
    rng = np.random.default_rng(n0)
    F = 13
    x = (rng.standard_normal((2, n0, F)) + 1j * rng.standard_normal((2, n0, F))).astype(np.complex64)
    y = x.copy()
    tw = fft_kernels.column_twiddles(n0)
    fft_kernels.column_fft(y, tw, False, 1, 11, portable)
    ref = np.fft.fft(x.astype(np.complex128), axis=1)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(y[:, bitrev(n0), 1:11], ref[:, :, 1:11], rtol=0, atol=2e-6 * scale)
    assert np.array_equal(y[:, :, :1], x[:, :, :1]) and np.array_equal(y[:, :, 11:], x[:, :, 11:])
    fft_kernels.column_fft(y, tw, True, 1, 11, portable)
    np.testing.assert_allclose(y[:, :, 1:11] / n0, x[:, :, 1:11], rtol=0, atol=2e-6 * np.abs(x).max())


def test_column_fft_vector_equals_scalar_and_convolves():
    """The AVX2 loops (where they run) equal the scalar ones to rounding, on
    a row length that is not a multiple of the vector; the product of two
    forward transforms taken back is the circular convolution down the
    columns (the bit-reversed order never undone)."""
    rng = np.random.default_rng(5)
    n0, F = 64, 21
    tw = fft_kernels.column_twiddles(n0)
    a = (rng.standard_normal((1, n0, F)) + 1j * rng.standard_normal((1, n0, F))).astype(np.complex64)
    b = (rng.standard_normal((1, n0, F)) + 1j * rng.standard_normal((1, n0, F))).astype(np.complex64)
    fa, fs = a.copy(), a.copy()
    fft_kernels.column_fft(fa, tw, False)
    fft_kernels.column_fft(fs, tw, False, portable=True)
    np.testing.assert_allclose(fa, fs, rtol=0, atol=1e-5 * np.abs(fs).max())
    fb = b.copy()
    fft_kernels.column_fft(fb, tw, False)
    prod = fa * fb
    fft_kernels.column_fft(prod, tw, True)
    ref = np.fft.ifft(np.fft.fft(a.astype(np.complex128), axis=1) * np.fft.fft(b.astype(np.complex128), axis=1),
                      axis=1)
    np.testing.assert_allclose(prod / n0, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_column_fft_bad_input():
    tw = fft_kernels.column_twiddles(8)
    with pytest.raises(ValueError, match="power-of-two"):
        fft_kernels.column_fft(np.zeros((1, 6, 3), np.complex64), tw, False)
    with pytest.raises(ValueError, match="complex64"):
        fft_kernels.column_fft(np.zeros((1, 8, 3), np.complex128), tw, False)
    with pytest.raises(ValueError, match="tw"):
        fft_kernels.column_fft(np.zeros((1, 8, 3), np.complex64), fft_kernels.column_twiddles(4), False)
    with pytest.raises(ValueError, match="columns"):
        fft_kernels.column_fft(np.zeros((1, 8, 3), np.complex64), tw, False, 2, 5)
    with pytest.raises(ValueError, match="n0"):
        fft_kernels.column_twiddles(12)


def _centred_ncc(image, template):
    v = sliding_window_view(np.asarray(image, np.float64), template.shape)
    vc = v - v.mean(axis=(-1, -2), keepdims=True)
    tc = np.asarray(template, np.float64) - np.mean(template, dtype=np.float64)
    return (vc * tc).sum(axis=(-1, -2)) / np.sqrt((vc ** 2).sum(axis=(-1, -2)) * (tc ** 2).sum())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("plan", [(64, 90, 45, 71), (128, 64, 109, 45), (32, 40, 13, 21), (256, 256, 131, 151)])
def test_match_template_column_fft_path(monkeypatch, threads, plan):
    """float32 on tiles of a power-of-two height (the column FFT; several
    tiles per axis, edge tiles past the image, 2 threads: items on threads,
    or one item's columns split over them: the last plan): the float64 centred reference
    to 1e-4, the ducc0-only path, and a stack."""
    from fastcorr._engine import matching as engine
    from fastcorr.methods import _fftlib

    if _fftlib.library() != "ducc0":
        pytest.skip("the column FFT path runs with ducc0")
    monkeypatch.setattr(engine, "TILED_MIN_OUTPUTS", 1)
    monkeypatch.setattr(engine, "tile_plan", lambda *a: plan)
    rng = np.random.default_rng(9)
    img = rng.random((150, 170)).astype(np.float32)
    tpls = np.stack([img[10 * i:10 * i + 20, 12 * i:12 * i + 20] + np.float32(0.2) * rng.random((20, 20),
                                                                                                 np.float32)
                     for i in range(2)])
    got = fastcorr.match_template(img, tpls[0], num_threads=threads)
    np.testing.assert_allclose(got, _centred_ncc(img, tpls[0]), rtol=0, atol=1e-4)
    stack = fastcorr.match_template(img, tpls, num_threads=threads)
    for i in range(2):
        np.testing.assert_allclose(stack[i], _centred_ncc(img, tpls[i]), rtol=0, atol=1e-4)
    monkeypatch.setattr(engine, "COLUMN_FFT", False)
    np.testing.assert_allclose(got, fastcorr.match_template(img, tpls[0], num_threads=threads), rtol=0, atol=1e-5)


def test_planner_offers_power_of_two_heights():
    """With the column FFT the planner considers power-of-two heights (and
    picks one for a 1024² image and a 32² template); without, fast lengths."""
    from fastcorr._engine import matching as engine

    lengths = engine._axis_lengths(993, 32, True)
    assert {64, 128, 256, 512, 1024} <= set(lengths)
    assert set(engine._axis_lengths(993, 32)) <= set(lengths)
    N0 = engine.tile_plan(993, 993, 32, 32, 2, 8, True)[0]
    assert N0 & (N0 - 1) == 0


def test_defaults_equal_skimage_on_column_fft_path():
    """The default call (float32, 'ccoeff_normed') where the planner picks
    the column FFT equals scikit-image's match_template in float64."""
    skimage_feature = pytest.importorskip("skimage.feature")
    from fastcorr._engine import matching as engine

    rng = np.random.default_rng(3)
    img = rng.random((300, 260)).astype(np.float32)
    tpl = img[100:132, 50:82].copy()
    assert engine._use_tiled(32, 32, 300, 260)[0]
    N0 = engine.tile_plan(269, 229, 32, 32, 1, 8, True)[0]
    assert N0 & (N0 - 1) == 0                      # one thread: a power-of-two height
    ref = skimage_feature.match_template(img.astype(np.float64), tpl.astype(np.float64))
    for threads in (1, 2):
        np.testing.assert_allclose(fastcorr.match_template(img, tpl, num_threads=threads), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_one_row_images_on_the_tiled_path(rows):
    """Images of one to three rows with long templates (tiles of height 1,
    2, 4: the column FFT only from height 2 on) equal the naive float64
    scores."""
    rng = np.random.default_rng(rows)
    img = rng.random((rows, 20000)).astype(np.float32)
    tpl = img[:, 100:300] + np.float32(0.1) * rng.random((rows, 200), np.float32)
    from fastcorr._engine import matching as engine

    assert engine._use_tiled(rows, 200, rows, 20000)[0]
    ref = _centred_ncc(img, tpl)
    for threads in (1, 2):
        np.testing.assert_allclose(fastcorr.match_template(img, tpl, num_threads=threads), ref, rtol=0, atol=1e-4)
