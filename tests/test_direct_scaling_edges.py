"""The direct method's scaling (1x1 kernels) and edge pass, and the
oversubscription guard's sustained-rate threshold (issue 21, item 4).

* A 1x1 kernel is a compiled, threaded scaling ``x * w[0, 0]`` in every
  mode and boundary (``fastcorr.methods.direct.scale2d``): exact against
  scipy.signal and scipy.ndimage, into a fresh output or ``out=``.
* Edge columns of whole three-row groups are computed in a pass of their
  own over fixed chunks of rows, on the transpose (``edge_chunk``): against
  scipy in every mode and boundary, odd and even kernels, NaN and inf in
  the edge columns, the same bits on one and two threads.
"""
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss

import fastcorr
from fastcorr._engine import config, dispatch
from fastcorr.methods import direct as _direct

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]


def close(got, want, x, w, fill=0.0):
    """Within the float error of a sum of |w| * max|x| (NaN/inf where scipy has them)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    xs = np.abs(x[np.isfinite(x)]).max() + abs(fill)
    tol = (2e-6 if got.dtype == np.float32 else 1e-14) * float(np.abs(w).sum()) * xs
    assert np.abs(got[finite].astype(np.float64) - want[finite]).max() <= tol


# --------------------------------------------------------------- scaling

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8])
@pytest.mark.parametrize("shape", [(37, 41), (640, 430)])  # below and above SCALE_BELOW values
def test_one_by_one_is_an_exact_scaling(shape, dtype):
    assert (shape[0] * shape[1] > _direct.SCALE_BELOW) == (shape[0] > 100)
    rng = np.random.default_rng(shape[0])
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal(shape).astype(dtype)
        x[3, 4], x[-1, 0], x[0, -1] = np.nan, np.inf, -np.inf
        w = np.array([[-1.7]], dtype)
    else:
        x = rng.integers(0, 100, shape).astype(dtype)
        w = np.array([[3]], dtype)
    for mode in MODES:
        for boundary in BOUNDARIES:
            for threads in (1, 2):
                for name in ("correlate2d", "convolve2d"):
                    want = getattr(ss, name)(x, w, mode, boundary, 2)
                    got = getattr(fastcorr, name)(x, w, mode, boundary, 2, num_threads=threads)
                    assert got.dtype == want.dtype
                    np.testing.assert_array_equal(got, want)
    out = np.full(shape, 7, dtype)
    assert fastcorr.correlate2d(x, w, "same", out=out, num_threads=2) is out
    np.testing.assert_array_equal(out, ss.correlate2d(x, w, "same"))
    # scipy.ndimage: the same products
    if np.dtype(dtype).kind == "f":
        np.testing.assert_array_equal(fastcorr.correlate2d(x, w, "same"), ndi.correlate(x, w, mode="constant"))


def test_one_by_one_special_kernels_and_mixed_dtypes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, 520)).astype(np.float32)
    x[0, 0] = 0.0
    for c in (np.nan, np.inf, -0.0, 0.0):
        w = np.array([[c]], np.float32)
        np.testing.assert_array_equal(fastcorr.correlate2d(x, w, "full", num_threads=2), ss.correlate2d(x, w, "full"))
    # float32 image, float64 kernel: scipy's result dtype (float64), the product in it
    w = np.array([[1.0 / 3.0]])
    got = fastcorr.correlate2d(x, w, "same", num_threads=2)
    want = ss.correlate2d(x, w, "same")
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)


def test_scaling_flag_restores_the_old_path(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((700, 400))
    w = np.array([[2.5]])
    new = fastcorr.correlate2d(x, w, "valid", num_threads=2)
    monkeypatch.setattr(_direct, "SCALE_KERNEL", False)
    np.testing.assert_array_equal(fastcorr.correlate2d(x, w, "valid", num_threads=2), new)


# ------------------------------------------------------------ edge pass

# images above the direct method's whole-copy limit (direct.PAD_SMALL_ELEMENTS
# extended values), so that edge columns go through the edge pass; heights
# over one 64-row chunk and not a multiple of three
SHAPES = [(260, 257), (131, 520), (70, 1000)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (4, 6), (2, 3), (6, 1), (1, 4)])
def test_edge_pass_matches_scipy(kshape, dtype):
    rng = np.random.default_rng(sum(kshape) + np.dtype(dtype).itemsize)
    for shape in SHAPES:
        assert (shape[0] + kshape[0] - 1) * (shape[1] + kshape[1] - 1) > _direct.PAD_SMALL_ELEMENTS
        x = rng.standard_normal(shape).astype(dtype)
        # NaN and inf in edge columns and in the interior
        x[5, 0], x[66, 1], x[-1, -1], x[0, -2], x[64, shape[1] // 2] = np.nan, np.inf, -np.inf, np.nan, np.nan
        w = rng.standard_normal(kshape).astype(dtype)
        for mode in ("same", "full"):
            for boundary, fill in (("fill", 0.0), ("fill", 2.5), ("wrap", 0.0), ("symm", 0.0)):
                for name in ("correlate2d", "convolve2d"):
                    want = getattr(ss, name)(x.astype(np.float64), w.astype(np.float64), mode, boundary, fill)
                    one = getattr(fastcorr, name)(x, w, mode, boundary, fill, method="direct", num_threads=1)
                    two = getattr(fastcorr, name)(x, w, mode, boundary, fill, method="direct", num_threads=2)
                    np.testing.assert_array_equal(one, two)  # the same bits on any thread count
                    close(one, want.astype(dtype), x, w, fill)


@pytest.mark.parametrize("k", [21, 31])  # 20 edge columns a side (the edge pass), 30 (strips)
def test_edge_pass_wide_edges_out_and_ndimage(k):
    # 'full': k - 1 edge columns a side; into out=
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 290)).astype(np.float32)
    w = rng.standard_normal((k, k)).astype(np.float32)
    want = ss.correlate2d(x.astype(np.float64), w.astype(np.float64), "full").astype(np.float32)
    out = np.full(want.shape, np.nan, np.float32)
    assert fastcorr.correlate2d(x, w, "full", method="direct", num_threads=2, out=out) is out
    close(out, want, x, w)
    np.testing.assert_array_equal(out, fastcorr.correlate2d(x, w, "full", method="direct", num_threads=1))
    # scipy.ndimage's constant mode is 'same' with scipy.signal's centring
    # for odd kernels
    k = rng.standard_normal((5, 5)).astype(np.float32)
    close(fastcorr.correlate2d(x, k, "same", method="direct"),
          ndi.correlate(x.astype(np.float64), k.astype(np.float64), mode="constant").astype(np.float32), x, k)


def test_edge_pass_narrow_and_tall_images():
    rng = np.random.default_rng(8)
    for shape, kshape in (((30000, 3), (3, 3)), ((20000, 5), (2, 5)), ((70000, 1), (3, 1))):
        x = rng.standard_normal(shape)
        w = rng.standard_normal(kshape)
        for mode in MODES:
            for boundary in BOUNDARIES:
                got = fastcorr.correlate2d(x, w, mode, boundary, 1.5, method="direct", num_threads=2)
                close(got, ss.correlate2d(x, w, mode, boundary, 1.5), x, w, 1.5)


def test_edge_pass_flag_gives_close_results():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((256, 256)).astype(np.float32)
    w = rng.standard_normal((5, 5)).astype(np.float32)
    new = fastcorr.correlate2d(x, w, "same", method="direct")
    _direct._set_edge_pass(False)
    try:
        old = fastcorr.correlate2d(x, w, "same", method="direct")
    finally:
        _direct._set_edge_pass(True)
    np.testing.assert_array_equal(new[:, 2:-2], old[:, 2:-2])  # the interior is the same code
    close(new, old, x, w)


# -------------------------------------------------------------- the guard

@pytest.fixture
def guard_state(monkeypatch):
    monkeypatch.setattr(config, "_stall_rate", 0.0)
    monkeypatch.setattr(config, "_stall_cost", 0.0)
    monkeypatch.setattr(config, "_stall_time", 0.0)
    yield


def test_an_isolated_stall_keeps_the_threads(guard_state):
    shape = (64, 64)
    config.note_wait(0.02)  # one stall of 20 ms after a run of quiet calls
    assert config.serial_pays(1e-4)  # by expected cost alone, a 0.1 ms call would go serial
    assert not dispatch.serial_pays("direct", shape, (31, 31), (34, 34), np.dtype(np.float32), 0)
    config.note_wait(0.02)  # two in a row: a busy machine
    assert config._rate_now(time.monotonic()) >= dispatch.SUSTAINED_STALL_RATE
    assert dispatch.serial_pays("direct", shape, (31, 31), (34, 34), np.dtype(np.float32), 0)
