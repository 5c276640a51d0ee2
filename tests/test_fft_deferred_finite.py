"""'auto' on large images leaves the FFT method's NaN/inf rule to the method
(``fft.correlate(check_finite=True)`` from ``dispatch.correlate_offset``): the
in-place ducc0 tiles look at each tile's row sums instead of the image being
read first. Whatever the path, 'auto' must still give the direct method's
local NaN/inf pattern on non-finite images, the FFT's result on finite ones
(also where row sums overflow), through the plain call and the general path
(out=, boundaries, convolve2d, threads)."""
import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr._engine import dispatch
from fastcorr.methods import _fftlib
from fastcorr.methods import fft as _fft

pytest.importorskip("ducc0")

N = 512  # 512² = dispatch.DEFER_FINITE_ELEMENTS: the deferred path


@pytest.fixture(autouse=True)
def on_ducc0(monkeypatch):
    monkeypatch.setattr(_fftlib, "_choice", "ducc0")
    assert _fft.in_place(False)
    assert N * N >= dispatch.DEFER_FINITE_ELEMENTS


def _same_pattern(y, ref, tol):
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    assert np.array_equal(np.isposinf(y), np.isposinf(ref))
    assert np.array_equal(np.isneginf(y), np.isneginf(ref))
    ok = np.isfinite(ref)
    scale = np.abs(ref[ok]).max() + 1e-30
    assert np.abs(y[ok] - ref[ok]).max() <= tol * scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [(0, 0), (N - 1, N - 1), (0, N - 1), (N // 2, 3), (200, 300), (N - 1, N // 2)])
def test_non_finite_values_stay_local(dtype, where):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, N)).astype(dtype)
    w = rng.standard_normal((25, 25)).astype(dtype)
    assert fastcorr.choose_method(x, w, "same") == "fft"
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for value in (np.nan, np.inf, -np.inf):
        xv = x.copy()
        xv[where] = value
        ref = fastcorr.correlate2d(xv, w, "same", method="direct", num_threads=1)
        for threads in (1, 2):
            y = fastcorr.correlate2d(xv, w, "same", num_threads=threads)  # the plain call
            _same_pattern(y, ref, tol)
        out = np.empty_like(x)
        y = fastcorr.correlate2d(xv, w, "same", num_threads=2, out=out)  # the general path, out=
        assert y is out
        _same_pattern(y, ref, tol)


def test_general_path_boundaries_and_convolve():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, N + 8))
    w = rng.standard_normal((31, 31))
    x[100, 400] = np.nan
    for boundary in ("fill", "wrap", "symm"):
        ref = fastcorr.correlate2d(x, w, "same", boundary=boundary, method="direct", num_threads=1)
        _same_pattern(fastcorr.correlate2d(x, w, "same", boundary=boundary, num_threads=2), ref, 1e-10)
    ref = scipy.signal.convolve2d(x, w, "valid")
    _same_pattern(fastcorr.convolve2d(x, w, "valid", num_threads=2), ref, 1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_images_run_the_fft(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, N)).astype(dtype)
    w = rng.standard_normal((21, 21)).astype(dtype)
    ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), "same")
    y = fastcorr.correlate2d(x, w, "same")
    assert np.array_equal(y, fastcorr.correlate2d(x, w, "same", method="fft"))
    scale = np.abs(x).max() * np.abs(w).sum()
    assert np.abs(y - ref).max() <= (2e-6 if dtype == np.float32 else 1e-13) * scale


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflowing_row_sums_keep_the_fft():
    # finite values whose rows sum past the float range: the tiles raise, the
    # image is then found finite and the FFT runs unchecked, as before (its
    # transforms overflow too: 'auto' on finite values is the FFT's result)
    big = np.finfo(np.float32).max / 4
    x = np.full((N, N), big, dtype=np.float32)
    x[::2] = 1.0
    w = (np.random.default_rng(8).standard_normal((21, 21)) * 1e-30).astype(np.float32)
    assert fastcorr.choose_method(x, w, "same") == "fft"
    with pytest.raises(_fft.NonFinite):
        _fft.correlate(x, w, (N, N), (-10, -10), 0, np.float32(0), 1, check_finite=True)
    y = fastcorr.correlate2d(x, w, "same")
    assert np.array_equal(y, fastcorr.correlate2d(x, w, "same", method="fft"), equal_nan=True)
    assert not np.array_equal(y, fastcorr.correlate2d(x, w, "same", method="direct"), equal_nan=True)


def test_check_finite_raises_only_on_non_finite():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 280))
    w = rng.standard_normal((15, 15))
    args = ((300, 280), (-7, -7), 0, 0.0, 2)
    y = _fft.correlate(x, w, *args, check_finite=True)
    assert np.array_equal(y, _fft.correlate(x, w, *args))
    for value in (np.nan, np.inf):
        xv = x.copy()
        xv[150, 279] = value
        with pytest.raises(_fft.NonFinite):
            _fft.correlate(xv, w, *args, check_finite=True)
    # a complex image (not on the in-place tiles) is read first
    xc = x + 1j * x
    xc[5, 5] = complex(0, np.nan)
    with pytest.raises(_fft.NonFinite):
        _fft.correlate(xc, w.astype(complex), *args, check_finite=True)


def test_choose_method_still_reads_the_image():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, N))
    w = rng.standard_normal((31, 31))
    assert fastcorr.choose_method(x, w, "same") == "fft"
    x[7, 7] = np.inf
    assert fastcorr.choose_method(x, w, "same") == "direct"


def _tiling(out_shape, kshape, tile):
    axes = []
    for n, k, L in zip(out_shape, kshape, tile):
        B = L - k + 1
        axes.append((L, B, -(-n // B)))
    return tuple(axes)


@pytest.mark.parametrize("shift,threads", [(True, 1), (True, 2), (False, 2)])
@pytest.mark.parametrize("case", [
    # image, kernel, tile lengths, mode, boundary, fill
    ((150, 170), (9, 11), (40, 48), "same", "fill", 0.0),
    ((150, 170), (9, 11), (40, 48), "same", "fill", 1.5),
    ((130, 203), (7, 13), (32, 60), "valid", "fill", 0.0),
    ((130, 203), (8, 12), (36, 45), "full", "wrap", 0.0),
    ((96, 250), (5, 21), (96, 64), "same", "symm", 0.0),
])
def test_last_tile_column_ends_at_the_output(monkeypatch, shift, threads, case):
    # fft.DUCC_SHIFT_LAST: the last column of tiles ends at out's last
    # column, its rows straight into out; against scipy.signal, and the same
    # bits on every call whatever the threads' order
    shape, kshape, tile, mode, boundary, fill = case
    monkeypatch.setattr(_fft, "DUCC_SHIFT_LAST", shift)
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kshape)
    ref = scipy.signal.correlate2d(x, w, mode, boundary=boundary, fillvalue=fill)
    tiling = _tiling(ref.shape, kshape, tile)
    assert tiling[1][2] >= 2 and ref.shape[1] % tiling[1][1] != 0
    monkeypatch.setattr(_fft, "_choose_plan", lambda *a: ("tiles", tiling))
    y = fastcorr.correlate2d(x, w, mode, boundary=boundary, fillvalue=fill, method="fft", num_threads=threads)
    scale = (np.abs(x).max() + abs(fill)) * np.abs(w).sum()
    assert np.abs(y - ref).max() <= 1e-12 * scale
    for _ in range(3):
        assert np.array_equal(fastcorr.correlate2d(x, w, mode, boundary=boundary, fillvalue=fill, method="fft",
                                                   num_threads=threads), y)


def test_run_parallel_shares_items_with_the_caller(monkeypatch):
    # fft.RUN_ON_CALLER: every item once, the calling thread among the
    # workers; an error stops the others, none still running when it
    # reaches the caller
    import threading
    import time

    monkeypatch.setattr(_fft, "RUN_ON_CALLER", True)
    seen, who, lock = [], set(), threading.Lock()

    def fn(item):
        time.sleep(0.001)
        with lock:
            seen.append(item)
            who.add(threading.get_ident())

    _fft._run_parallel(fn, range(40), 3)
    assert sorted(seen) == list(range(40))
    assert threading.get_ident() in who

    running = [0]

    def failing(item):
        with lock:
            running[0] += 1
        try:
            time.sleep(0.002)
            if item == 5:
                raise ValueError("item 5")
        finally:
            with lock:
                running[0] -= 1
                seen.append(item)

    seen.clear()
    with pytest.raises(ValueError, match="item 5"):
        _fft._run_parallel(failing, range(200), 2)
    assert running[0] == 0 and len(seen) < 200


def test_single_tile_on_a_length_of_factor_11():
    # fft.DUCC_SINGLE_7_11: float32 1024² 63x63 'same' on 1056 (2^5 3 11),
    # against scipy's FFT correlation in float64
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    w = rng.standard_normal((63, 63)).astype(np.float32)
    data = ((31, 31 + 1024), (31, 31 + 1024))
    kind, tiling = _fft.choose_plan((1024, 1024), (63, 63), np.float32, data, 1)
    assert kind == "tiles" and tiling[1][0] == 1056 and tiling[1][2] == 1
    assert all(n not in _fft.DUCC_SINGLE_7_11[8] for n in (1050, 1056))
    ref = scipy.signal.correlate(x.astype(np.float64), w.astype(np.float64), "same", method="fft")
    scale = np.abs(x).max() * np.abs(w).sum()
    for threads in (1, 2):
        y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=threads)
        assert np.abs(y - ref).max() <= 2e-6 * scale
