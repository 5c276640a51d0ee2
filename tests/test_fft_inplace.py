"""The FFT method's in-place engine on ducc0 (``fft._ducc_tiles``): real
inputs, single tiles and overlap-save tiles, every boundary, fill values,
offsets around the image, ``out=``, threads, and its bounded workspace,
against scipy.signal and a naive extended-image reference."""
import itertools

import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr.methods import _fftlib
from fastcorr.methods import fft as _fft

pytest.importorskip("ducc0")

TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def on_ducc0(monkeypatch):
    monkeypatch.setattr(_fftlib, "_choice", "ducc0")
    assert _fft.in_place(False)


def _err(y, ref, x, w, fill=0.0):
    scale = (np.abs(x).max() + abs(fill)) * np.abs(w).sum() + 1e-300
    return np.abs(y - ref).max() / scale


def _forced(monkeypatch, tiling):
    """Every call of this test runs ``tiling`` (a ``_choose_plan`` result)."""
    monkeypatch.setattr(_fft, "_choose_plan", lambda *a: ("tiles", tiling))


def _tiles(out_shape, kshape, tile):
    """Overlap-save tiles of ``tile`` per axis (transform length) for the output."""
    axes = []
    for n, k, N in zip(out_shape, kshape, tile):
        B = N - k + 1
        axes.append((N, B, -(-n // B)))
    return tuple(axes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiles_every_boundary_and_mode(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((97, 131)).astype(dtype)
    w = rng.standard_normal((9, 6)).astype(dtype)
    for mode, boundary, fill in [("same", "fill", 0.0), ("full", "fill", -1.5), ("valid", "fill", 0.0),
                                 ("same", "wrap", 0.0), ("same", "symm", 0.0), ("full", "symm", 0.0)]:
        ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), mode, boundary, fill)
        _forced(monkeypatch, _tiles(ref.shape, w.shape, (24, 20)))
        for threads in (1, 2):
            y = fastcorr.correlate2d(x, w, mode, boundary, fill, method="fft", num_threads=threads)
            assert y.dtype == dtype and y.shape == ref.shape
            assert _err(y, ref, x, w, fill) <= TOL[dtype], (mode, boundary, fill, threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_offsets_around_the_image(dtype):
    # fft.correlate at every offset: tiles and single tiles (the planner's
    # own choice), tiles starting outside the image, partly or wholly.
    rng = np.random.default_rng(8)
    for (H, W), (kh, kw) in [((9, 12), (5, 3)), ((6, 5), (7, 9))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        shape = (H + 2, W + 1)
        for off in itertools.product(range(-kh - 2, 3, 2), range(-kw - 2, 3, 2)):
            for fill in (0.0, 2.0):
                E = np.full((shape[0] + kh - 1, shape[1] + kw - 1), fill)
                for i, j in itertools.product(range(E.shape[0]), range(E.shape[1])):
                    a, b = i + off[0], j + off[1]
                    if 0 <= a < H and 0 <= b < W:
                        E[i, j] = x[a, b]
                ref = scipy.signal.correlate2d(E, w.astype(np.float64), "valid")
                y = _fft.correlate(x, w, shape, off, 0, fill, 1)
                assert _err(y, ref, x, w, fill) <= TOL[dtype], (off, fill)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_tile_wraps_and_threads(dtype):
    # kernels as large as the image: one wrap-around tile per axis, the
    # output window across the transform's end; 1 and 2 threads (the row
    # stages split over threads, ducc0's threads for the columns)
    rng = np.random.default_rng(5)
    for shape, kshape in [((64, 64), (101, 101)), ((40, 90), (31, 8)), ((160, 150), (63, 41))]:
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal(kshape).astype(dtype)
        for mode, fill in [("same", 0.0), ("full", 0.75)]:
            ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), mode, "fill", fill)
            for threads in (1, 2):
                y = fastcorr.correlate2d(x, w, mode, "fill", fill, method="fft", num_threads=threads)
                assert _err(y, ref, x, w, fill) <= TOL[dtype], (shape, kshape, mode, threads)


def test_out_written_in_place():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((150, 170))
    w = rng.standard_normal((21, 21))
    out = np.full((150, 170), np.nan)
    y = fastcorr.correlate2d(x, w, "same", method="fft", out=out)
    assert y is out
    ref = scipy.signal.correlate2d(x, w, "same")
    assert _err(out, ref, x, w) <= TOL[np.float64]


def test_workspace_is_bounded_and_reused(monkeypatch):
    ws = _fft._Workspace(1 << 20)
    a = ws.take((100, 100), np.float64)
    ws.give(a)
    assert ws.take((100, 100), np.float64) is a  # reused
    assert ws.nbytes == 0
    ws.give(np.empty((600, 600)))  # more than half the bound: not kept
    assert ws.nbytes == 0
    for _ in range(5):
        ws.give(np.empty((200, 200)))  # 320 kB each: the oldest dropped
    assert 0 < ws.nbytes <= 1 << 20
    ws.clear()
    assert ws.nbytes == 0
    # the engine's own: within its bound after calls of several sizes
    rng = np.random.default_rng(0)
    for n, k in [(300, 31), (700, 63), (128, 101)]:
        x = rng.standard_normal((n, n))
        fastcorr.correlate2d(x, rng.standard_normal((k, k)), "same", method="fft", num_threads=2)
    assert _fft._workspace.nbytes <= _fft.WORKSPACE_BYTES


def test_interrupted_call_gives_nothing_back(monkeypatch):
    # an exception inside a call (Ctrl-C) drops the arrays that call took
    _fft._workspace.clear()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 200))
    w = rng.standard_normal((31, 31))
    ducc = _fftlib._ducc
    calls = []

    class Broken:
        def __getattr__(self, name):
            return getattr(ducc, name)

        def c2r(self, *a, **k):
            calls.append(1)
            raise KeyboardInterrupt

    monkeypatch.setattr(_fftlib, "_ducc", Broken())
    with pytest.raises(KeyboardInterrupt):
        fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    assert calls and _fft._workspace.nbytes == 0
    monkeypatch.setattr(_fftlib, "_ducc", ducc)
    y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    assert _err(y, scipy.signal.correlate2d(x, w, "same"), x, w) <= TOL[np.float64]


def test_plans_follow_the_library(monkeypatch):
    # the in-place engine's plans (ducc0) and scipy.fft's are kept apart
    data = ((15, 15 + 4096), (15, 15 + 4096))
    d = _fft.choose_plan((4096, 4096), (31, 31), np.float64, data)
    monkeypatch.setattr(_fftlib, "_choice", "scipy")
    assert not _fft.in_place(False)
    s = _fft.choose_plan((4096, 4096), (31, 31), np.float64, data)
    assert d[1] == _fft._plan((4096, 4096), (31, 31), False, data, True, 8, 1, _fft._colfft_plans(True, 8))
    assert s[1] == _fft._plan((4096, 4096), (31, 31), False, data, False, 8)
    assert _fft.ducc_cost((4096, 4096), (31, 31), np.float64, data) is None


def test_bench_large_prints_the_table():
    # `python -m fastcorr bench --large` on one tiny case: every library's
    # column, and the ratio to OpenCV when it is installed
    from fastcorr._cli import large_bench

    lines = []
    rows = large_bench.run(threads=1, dtypes=("float64",), cases=[(64, 21)], repeats=1, out=lines.append)
    assert len(rows) == 1 and "fastcorr(ducc0)" in lines[1] and "fastcorr(scipy.fft)" in lines[1]
    try:
        import cv2  # noqa: F401
    except ImportError:
        return
    assert "cv2/ducc0" in lines[1]
    assert _fftlib._choice == "ducc0"  # the library choice is put back
    # the table: one row per image and dtype, the ratio of the medians
    assert lines[-3].startswith("| case | 21x21 |") and lines[-1].startswith("| 64² float64 | ")
    med = rows[0][3]
    assert lines[-1] == f"| 64² float64 | {med[-1][0] / med[0][0]:.2f} |"


def test_tile_lengths_are_measured_fast_ones():
    # overlap-save tiles of the ducc0 engine take the lengths DUCC_LENGTHS
    # measured fast (inside the table's range), each long enough for the
    # kernel; the single tile holds the whole wrap-around axis
    for itemsize in (4, 8):
        lo, hi, good = _fft._ducc_good_lengths(itemsize)
        table = _fft.DUCC_LENGTHS[itemsize]
        assert good and all(table[n] <= _fft.DUCC_GOOD_LENGTH for n in good)
        for out_len, k in [(4096, 101), (1024, 21), (300, 7), (64, 63)]:
            data = ((k - 1) // 2, (k - 1) // 2 + out_len)
            cands = _fft._axis_candidates(out_len, k, True, data, itemsize)
            need = _fft.wrap_length(out_len, k, data)
            for N, B, t in cands:
                assert N >= k and B == (out_len if t == 1 else N - k + 1) and t * B >= out_len
                if t > 1:
                    assert not lo <= N <= hi or N in good
                else:
                    assert N >= need
    # plans for every thread count serve the whole output
    for n, k, dt in [(1024, 101, 8), (1024, 63, 4), (4096, 31, 8), (256, 63, 8), (2000, 9, 4)]:
        data = (((k - 1) // 2, (k - 1) // 2 + n),) * 2
        for threads in (1, 2, 3):
            for N, B, t in _fft.plan((n, n), (k, k), False, data, True, dt, threads):
                assert t * B >= n and (t == 1 or B == N - k + 1)


def test_tiles_for_threads():
    # at two threads a large image is cut into separate tiles (one per
    # thread, no waiting between stages) rather than one shared tile; a
    # small one keeps the one-thread plan (handing over tiles costs more)
    data = ((50, 1074), (50, 1074))
    (N0, B0, t0), (N1, B1, t1) = _fft.plan((1024, 1024), (101, 101), False, data, True, 8, 2)
    assert t0 * t1 >= 2
    small = ((31, 287), (31, 287))
    one = _fft.choose_plan((256, 256), (63, 63), np.float64, small)
    assert _fft.choose_plan((256, 256), (63, 63), np.float64, small, nthreads=2) == one


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_longer_single_tile(dtype, monkeypatch):
    # a single tile longer than the shortest wrap-around length (the next
    # fast length may be cheaper): the output window still in place
    rng = np.random.default_rng(11)
    x = rng.standard_normal((70, 61)).astype(dtype)
    w = rng.standard_normal((15, 12)).astype(dtype)
    for mode, fill in [("same", 0.0), ("full", -0.5), ("valid", 0.0)]:
        ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), mode, "fill", fill)
        _forced(monkeypatch, ((100, ref.shape[0], 1), (96, ref.shape[1], 1)))
        for threads in (1, 2):
            y = fastcorr.correlate2d(x, w, mode, "fill", fill, method="fft", num_threads=threads)
            assert _err(y, ref, x, w, fill) <= TOL[dtype], (mode, threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_image_planned_tiles_at_two_threads(dtype):
    # the planner's own tiles for a 1024² image at two threads (separate
    # tiles per thread), against scipy.signal
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1024, 1024)).astype(dtype)
    w = rng.standard_normal((63, 63)).astype(dtype)
    y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    ref = scipy.signal.fftconvolve(x.astype(np.float64), w[::-1, ::-1].astype(np.float64), "same")
    assert _err(y, ref, x, w) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_straight_into_out(dtype, monkeypatch):
    # the inverse rows of a run's tiles go straight into the output where
    # their leading values fall on tiles of the run still to come (right
    # to left); kernels wider than a block (the leading values reach
    # several tiles back), runs cut over two threads, fills (never direct)
    rng = np.random.default_rng(13)
    ducc = _fftlib._ducc
    direct = []

    class Spy:
        def __getattr__(self, name):
            return getattr(ducc, name)

        def c2r(self, a, **k):
            if k["out"].base is not None and k["out"].base.shape == (60, 200):
                direct.append(k["out"].shape)
            return ducc.c2r(a, **k)

    monkeypatch.setattr(_fftlib, "_ducc", Spy())
    x = rng.standard_normal((60, 200)).astype(dtype)
    for kshape, tile in [((7, 41), (16, 48)), ((5, 9), (20, 24)), ((1, 3), (8, 16))]:
        w = rng.standard_normal(kshape).astype(dtype)
        for fill in (0.0, 1.25):
            ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), "same", "fill", fill)
            _forced(monkeypatch, _tiles(ref.shape, w.shape, tile))
            for threads in (1, 2):
                direct.clear()
                y = fastcorr.correlate2d(x, w, "same", "fill", fill, method="fft", num_threads=threads)
                assert _err(y, ref, x, w, fill) <= TOL[dtype], (kshape, fill, threads)
                if threads == 1 or kshape[1] - 1 <= 3 * (tile[1] - kshape[1] + 1):
                    # (at two threads the runs hold at most 4 tiles: a kernel
                    # wider than 3 blocks leaves none a run's tiles to write on)
                    assert bool(direct) == (fill == 0.0), (kshape, fill, threads)


def test_aliased_rows():
    # float32 rows 16 KiB apart go through the row buffer (cache-set
    # aliasing of ducc0's 8-lane writes); float64 and other widths do not
    assert _fft.aliased(np.empty((3, 4096), np.float32))
    assert _fft.aliased(np.empty((6, 8192), np.float32)[::2, :100])
    assert not _fft.aliased(np.empty((3, 4000), np.float32))
    assert not _fft.aliased(np.empty((3, 4096), np.float64))
    assert not _fft.aliased(np.empty((1, 4096), np.float32))
    assert _fft._unaliased_row(4096, 4) > 4096 and _fft._unaliased_row(4000, 4) == 4000


def test_ducc_plan_is_the_cheapest_pair():
    # the vectorised plan against a plain loop over the candidate pairs
    def brute(c0, c1, itemsize, threads):
        best = None
        for i, a in enumerate(c0):
            for j, b in enumerate(c1):
                e = a[0] * b[0]
                t = a[2] * b[2]
                if e > _fft._MAX_TILE_ELEMS and (i, j) != (0, 0):
                    continue
                if t > 1 and max(a[0], b[0]) > 2 * min(a[0], b[0]) and max(a[0], b[0]) > 1024:
                    continue
                cost = t * _fft.ducc_tile_units(a[0], b[0], itemsize) + (t > 1) * t * _fft.DUCC_TILE_UNITS
                if t == 1:
                    if e >= _fft.MIN_PARALLEL_TRANSFORM:
                        cost /= 1 + _fft.DUCC_SINGLE_PAR * (threads - 1)
                else:
                    cost *= -(-t // threads) / t
                if best is None or cost < best[0] * (1 - 1e-12):
                    best = (cost, a, b)
        return best[1], best[2]

    for (H, W), (kh, kw) in [((4096, 4096), (101, 101)), ((1024, 700), (21, 5)), ((3000, 257), (3, 63)),
                             ((256, 256), (63, 63)), ((2048, 2048), (9, 9))]:
        data = (((kh - 1) // 2, (kh - 1) // 2 + H), ((kw - 1) // 2, (kw - 1) // 2 + W))
        for itemsize in (4, 8):
            colfft = _fft._colfft_plans(True, itemsize)  # float64: power-of-two heights too (COLUMN_FFT64)
            c0 = _fft._axis_candidates(H, kh, True, data[0], itemsize, colfft)
            c1 = _fft._axis_candidates(W, kw, True, data[1], itemsize)
            for threads in (1, 2, 4):
                assert _fft._ducc_plan(c0, c1, itemsize, threads, colfft) == brute(c0, c1, itemsize, threads)
