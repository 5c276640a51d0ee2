"""The float64 column transforms of the FFT method (``fft_kernels.column_fft64``
and ``column_correlate64``, ``_simd/colfft_kernels.h``) and the ducc0
engine's tiles that use them (``fft.COLUMN_FFT64``): against numpy's FFT,
scipy.signal and the engine's ducc0 columns, every boundary and mode, odd
and even kernels, single and overlap-save tiles, one and two threads,
non-finite values."""
import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr.methods import _fftlib
from fastcorr.methods import fft as _fft

fk = pytest.importorskip("fastcorr.methods.fft_kernels")
pytest.importorskip("ducc0")

TOL = 1e-12


def _bitrev(n):
    lg = n.bit_length() - 1
    return np.array([int(format(i, f"0{lg}b")[::-1], 2) if lg else 0 for i in range(n)])


def _digitrev(n):
    """Frequencies of the forward transform's rows, computed here: radix-5
    stages first, then radix-3, then radix-2 (each stage's digit is the
    next higher-order row digit, the next lower-order frequency digit)."""
    radices = []
    m = n
    for r in (5, 3, 2):
        while m % r == 0:
            radices.append(r)
            m //= r
    out = []
    for row in range(n):
        freq, scale, L = 0, 1, n
        for r in radices:
            L //= r
            freq += (row // L % r) * scale
            scale *= r
        out.append(freq)
    return np.array(out)


def _err(y, ref, x, w, fill=0.0):
    scale = (np.abs(x).max() + abs(fill)) * np.abs(w).sum() + 1e-300
    return np.abs(y - ref).max() / scale


def test_column_order64():
    for n0 in (2, 8, 64, 3, 5, 6, 12, 45, 288, 375, 1080):
        assert np.array_equal(fk.column_order64(n0), _digitrev(n0)), n0
    for n0 in (2, 16, 256):
        assert np.array_equal(fk.column_order64(n0), _bitrev(n0))


@pytest.mark.parametrize("portable", [False, True])
def test_column_fft64_against_numpy(portable):
    rng = np.random.default_rng(0)
    for n0 in (2, 3, 4, 5, 6, 8, 9, 12, 15, 16, 25, 27, 32, 45, 64, 96, 125, 128, 288, 375, 512, 1024, 1080):
        tw = fk.column_twiddles64(n0)
        for F in (1, 2, 3, 7):
            x = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))
            y = x.copy()
            fk.column_fft64(y, tw, False, portable=portable)
            ref = np.fft.fft(x, axis=0)[_digitrev(n0)]
            assert np.abs(y - ref).max() <= 1e-13 * np.abs(ref).max(), (n0, F)
            fk.column_fft64(y, tw, True, portable=portable)
            assert np.abs(y / n0 - x).max() <= 1e-13 * np.abs(x).max(), (n0, F)


def test_column_fft64_column_range_and_strided_rows():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((64, 13)) + 1j * rng.standard_normal((64, 13))
    x = base[:, 1:11]          # rows 13 values apart, a view
    before = base.copy()
    fk.column_fft64(x, fk.column_twiddles64(64), False, 2, 7)
    ref = np.fft.fft(before[:, 3:8], axis=0)[_bitrev(64)]
    assert np.abs(x[:, 2:7] - ref).max() <= 1e-13 * np.abs(ref).max()
    untouched = np.ones(13, bool)
    untouched[3:8] = False
    assert np.array_equal(base[:, untouched], before[:, untouched])


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("copy,fuse", [(False, True), (True, True), (False, False)])
def test_column_correlate64_is_a_circular_correlation(portable, copy, fuse):
    rng = np.random.default_rng(2)
    # even N0 with an even and an odd power of two (the fused middle pass of 4 and of 2 rows), odd N0
    for n0, F in [(2, 3), (4, 3), (16, 9), (128, 33), (256, 20), (6, 3), (45, 5), (120, 17), (375, 6), (96, 4)]:
        x = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))
        K = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))  # natural order
        ref = np.fft.ifft(np.fft.fft(x, axis=0) * K, axis=0)
        k = np.ascontiguousarray(K[_digitrev(n0)] / n0)
        for block in (1, 4, 5, 1 << 20):
            y = x.copy()
            fk.column_correlate64(y, fk.column_twiddles64(n0), k, block=block, portable=portable, copy=copy,
                                  fuse=fuse)
            assert np.abs(y - ref).max() <= 1e-13 * np.abs(ref).max(), (n0, F, block)
        # a column range: the others left alone
        y = x.copy()
        fk.column_correlate64(y, fk.column_twiddles64(n0), k, 1, F - 1, portable=portable, copy=copy, fuse=fuse)
        assert np.abs(y[:, 1:F - 1] - ref[:, 1:F - 1]).max() <= 1e-13 * np.abs(ref).max()
        assert np.array_equal(y[:, [0, F - 1]], x[:, [0, F - 1]])


def test_column_kernels_refuse_bad_arguments():
    tw = fk.column_twiddles64(8)
    x = np.zeros((8, 3), complex)
    k = np.zeros((8, 3), complex)
    for n in (0, 1, 7, 14, 22):
        with pytest.raises(ValueError, match="2\\*\\*a"):
            fk.column_twiddles64(n)
        with pytest.raises(ValueError, match="2\\*\\*a"):
            fk.column_order64(n)
    with pytest.raises(ValueError, match="complex128"):
        fk.column_fft64(x.astype(np.complex64), tw, False)
    with pytest.raises(ValueError, match="2\\*\\*a"):
        fk.column_fft64(np.zeros((7, 3), complex), tw, False)
    with pytest.raises(ValueError, match="contiguous"):
        fk.column_fft64(np.zeros((8, 6), complex)[:, ::2], tw, False)
    with pytest.raises(ValueError, match="tw"):
        fk.column_fft64(x, fk.column_twiddles64(16), False)
    with pytest.raises(ValueError, match="tw"):
        fk.column_correlate64(x, tw.astype(np.complex64), k)
    with pytest.raises(ValueError, match="columns"):
        fk.column_fft64(x, tw, False, 2, 4)
    with pytest.raises(ValueError, match="k must"):
        fk.column_correlate64(x, tw, k[:, :2])
    with pytest.raises(ValueError, match="k must"):
        fk.column_correlate64(x, tw, k[:4])
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fk.column_correlate64(ro, tw, k)
    # the float32 function keeps its own types
    with pytest.raises(ValueError, match="complex64"):
        fk.column_fft(x[None], fk.column_twiddles(8), False)


# --- the engine's tiles on the compiled columns ---

@pytest.fixture(autouse=True)
def on_ducc0(monkeypatch):
    monkeypatch.setattr(_fftlib, "_choice", "ducc0")
    monkeypatch.setattr(_fft, "COLUMN_FFT64", True)


def _forced(monkeypatch, tiling):
    monkeypatch.setattr(_fft, "_choose_plan", lambda *a: ("tiles", tiling))


def _tiles(out_shape, kshape, tile):
    axes = []
    for n, k, N in zip(out_shape, kshape, tile):
        B = N - k + 1
        t = -(-n // B)
        axes.append((N, n if t == 1 else B, t))
    return tuple(axes)


def _columns_seen(monkeypatch):
    """Counts the engine's calls of the compiled column correlation."""
    seen = []
    real = _fft._column_correlate64

    def counting(*a, **k):
        seen.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(_fft, "_column_correlate64", counting)
    return seen


@pytest.mark.parametrize("kshape", [(9, 6), (4, 7), (1, 1), (16, 3)])
def test_tiles_every_boundary_and_mode(kshape, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((97, 83))
    w = rng.standard_normal(kshape)
    seen = _columns_seen(monkeypatch)
    cases = [("same", "fill", 0.0), ("full", "fill", -1.5), ("valid", "fill", 0.0), ("same", "wrap", 0.0),
             ("same", "symm", 0.0), ("full", "symm", 0.0), ("same", "fill", 2.0)]
    for mode, boundary, fill in cases:
        ref = scipy.signal.correlate2d(x, w, mode, boundary, fill)
        # several tiles (powers of two, 3 and 5 in the heights); one tile, padded (256)
        for tile in ((32, 20), (64, 36), (45, 30), (100, 24), (256, 100)):
            _forced(monkeypatch, _tiles(ref.shape, w.shape, tile))
            for threads in (1, 2):
                y = fastcorr.correlate2d(x, w, mode, boundary, fill, method="fft", num_threads=threads)
                assert y.shape == ref.shape
                assert _err(y, ref, x, w, fill) <= TOL, (mode, boundary, fill, tile, threads)
        cref = scipy.signal.convolve2d(x, w, mode, boundary, fill)
        y = fastcorr.convolve2d(x, w, mode, boundary, fill, method="fft", num_threads=2)
        assert _err(y, cref, x, w, fill) <= TOL, ("convolve", mode, boundary)
    assert seen


def test_single_tile_on_two_threads_splits_the_columns(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 700))  # 2**17+ values: the column work split over the threads
    w = rng.standard_normal((15, 21))
    ref = scipy.signal.correlate2d(x, w, "same")
    _forced(monkeypatch, ((512, 300, 1), (720, 700, 1)))
    seen = _columns_seen(monkeypatch)
    for threads in (1, 2):
        seen.clear()
        y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=threads)
        assert _err(y, ref, x, w) <= TOL
        assert len(seen) == threads


def test_planner_takes_compiled_heights_and_the_flag_restores_the_old_plans(monkeypatch):
    data = ((50, 50 + 4096), (50, 50 + 4096))
    monkeypatch.setattr(_fft, "COLFFT64_DEFAULT_UNITS", 0.5)
    monkeypatch.setattr(_fft, "COLFFT64_EVEN_UNITS", 0.5)
    monkeypatch.setattr(_fft, "COLFFT64_UNITS", {})
    _fft._plan.cache_clear()
    _fft._choose_plan.cache_clear()
    try:
        kind, ((N0, _, _), (N1, _, _)) = _fft.choose_plan((4096, 4096), (101, 101), np.float64, data)
        assert kind == "tiles" and _fft.colfft64(N0, 8)
        assert _fft.ducc_cost((4096, 4096), (101, 101), np.float64, data) is not None
        # float32 keeps ducc0's columns (its plans take no power-of-two heights for them)
        assert not _fft.colfft64(N0, 4)
        monkeypatch.setattr(_fft, "COLUMN_FFT64", False)
        kind, old = _fft.choose_plan((4096, 4096), (101, 101), np.float64, data)
        c0 = _fft._axis_candidates(4096, 101, True, data[0], 8)
        c1 = _fft._axis_candidates(4096, 101, True, data[1], 8)
        assert old == _fft._ducc_plan(c0, c1, 8, 1)
    finally:
        _fft._plan.cache_clear()
        _fft._choose_plan.cache_clear()


def test_flag_off_gives_the_same_values(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((130, 90))
    w = rng.standard_normal((11, 12))
    tiling = _tiles((130, 90), (11, 12), (64, 40))
    _forced(monkeypatch, tiling)
    seen = _columns_seen(monkeypatch)
    y = fastcorr.correlate2d(x, w, "same", method="fft")
    assert seen
    monkeypatch.setattr(_fft, "COLUMN_FFT64", False)
    seen.clear()
    z = fastcorr.correlate2d(x, w, "same", method="fft")
    assert not seen
    assert _err(y, z, x, w) <= TOL


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values(value, monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((70, 60))
    x[33, 20] = value
    w = rng.standard_normal((5, 7))
    _forced(monkeypatch, _tiles((70, 60), (5, 7), (32, 24)))
    seen = _columns_seen(monkeypatch)
    # check_finite: the engine raises before any column work on a tile whose row sums are not finite
    with pytest.raises(_fft.NonFinite):
        _fft.correlate(x, w, (70, 60), (-2, -3), 0, 0.0, 1, check_finite=True)
    # 'auto' never hands non-finite values to the FFT: the result as the direct method's
    y = fastcorr.correlate2d(x, w, "same", method="auto")
    ref = fastcorr.correlate2d(x, w, "same", method="direct")
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    fin = np.isfinite(ref)
    assert np.abs(y[fin] - ref[fin]).max() <= 1e-12 * np.abs(w).sum() * np.abs(x[np.isfinite(x)]).max()
    # finite images do take the compiled columns
    seen.clear()
    x[33, 20] = 0.0
    y = fastcorr.correlate2d(x, w, "same", method="fft")
    assert seen and _err(y, scipy.signal.correlate2d(x, w, "same"), x, w) <= TOL


def test_kernel_spectrum_in_column_order():
    # the compiled columns' kernel spectrum: kernel_spectrum's rows in the forward order, / N0
    rng = np.random.default_rng(7)
    for (kh, kw), (N0, N1) in [((5, 7), (16, 20)), ((9, 4), (45, 32)), ((12, 3), (8, 9)), ((1, 1), (30, 30))]:
        w = rng.standard_normal((kh, kw))
        got = _fft.kernel_spectrum_bitrev(w, N0, N1, 1)
        ref = _fft.kernel_spectrum(w, N0, N1, False, 1)[fk.column_order64(N0)] / N0
        assert got.shape == ref.shape and not got.flags.writeable
        assert np.abs(got - ref).max() <= 1e-14 * np.abs(w).sum()
        assert _fft.kernel_spectrum_bitrev(w, N0, N1, 1) is got  # cached


# --- float32 tiles of a power-of-two height: template matching's column_fft (COLUMN_FFT32) ---

def _fft32_seen(monkeypatch):
    seen = []
    real = _fft._column_fft32

    def counting(*a, **k):
        seen.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(_fft, "_column_fft32", counting)
    return seen


@pytest.mark.parametrize("kshape", [(9, 6), (4, 7)])
def test_float32_tiles(kshape, monkeypatch):
    monkeypatch.setattr(_fft, "COLUMN_FFT32", True)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((97, 83)).astype(np.float32)
    w = rng.standard_normal(kshape).astype(np.float32)
    seen = _fft32_seen(monkeypatch)
    for mode, boundary, fill in [("same", "fill", 0.0), ("full", "fill", -1.5), ("valid", "fill", 0.0),
                                 ("same", "wrap", 0.0), ("same", "symm", 0.0)]:
        ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), mode, boundary, fill)
        for tile in ((32, 20), (64, 36), (256, 100)):
            _forced(monkeypatch, _tiles(ref.shape, w.shape, tile))
            for threads in (1, 2):
                seen.clear()
                y = fastcorr.correlate2d(x, w, mode, boundary, fill, method="fft", num_threads=threads)
                assert y.dtype == np.float32 and y.shape == ref.shape
                assert _err(y, ref, x, w, fill) <= 2e-5, (mode, boundary, tile, threads)
                assert seen
    # the flag off: ducc0's columns, the same values to float32 rounding
    _forced(monkeypatch, _tiles((97, 83), w.shape, (32, 20)))
    y = fastcorr.correlate2d(x, w, "same", method="fft")
    monkeypatch.setattr(_fft, "COLUMN_FFT32", False)
    seen.clear()
    z = fastcorr.correlate2d(x, w, "same", method="fft")
    assert not seen and _err(y, z, x, w) <= 2e-5
    # float32 takes only power-of-two heights; float64 others too
    monkeypatch.setattr(_fft, "COLUMN_FFT32", True)
    assert _fft.colfft(256, 4) and not _fft.colfft(288, 4) and _fft.colfft(288, 8)


def test_float32_kernel_spectrum_in_column_order(monkeypatch):
    monkeypatch.setattr(_fft, "COLUMN_FFT32", True)
    rng = np.random.default_rng(9)
    w = rng.standard_normal((7, 5)).astype(np.float32)
    got = _fft.kernel_spectrum_bitrev(w, 32, 40, 1)
    ref = _fft.kernel_spectrum(w, 32, 40, False, 1)[_bitrev(32)] / 32
    assert got.dtype == np.complex64
    assert np.abs(got - ref).max() <= 1e-5 * np.abs(w).sum()
