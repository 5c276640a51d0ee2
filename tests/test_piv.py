"""piv against OpenPIV (extended_search_area_piv + get_coordinates) and the known truth."""
import itertools

import numpy as np
import pytest

import fastcorr


def particles(shape, density, seed, dx, dy, sigma=0.8, dtype=np.float64):
    """Two frames of Gaussian particles: frame B is frame A's particles moved by
    (dx(y, x), dy(y, x)) pixels (functions of each particle's position)."""
    rng = np.random.default_rng(seed)
    H, W = shape
    n = int(density * (H + 8) * (W + 8))
    py, px = (rng.random((2, n)) * np.array([[H + 8], [W + 8]]) - 4)
    frames = []
    for cy, cx in ((py, px), (py + dy(py, px), px + dx(py, px))):
        gy = np.exp(-(np.arange(H)[None, :] - cy[:, None]) ** 2 / (2 * sigma ** 2))
        gx = np.exp(-(np.arange(W)[None, :] - cx[:, None]) ** 2 / (2 * sigma ** 2))
        frames.append((gy.T @ gx).astype(dtype))
    return frames


def uniform(shape, u, v, seed=1, **kw):
    return particles(shape, 0.05, seed, lambda y, x: u + 0 * x, lambda y, x: v + 0 * y, **kw)


def vortex(shape, seed=2, **kw):
    """A solid-body rotation about the frame's centre (up to ~3.5 px at the corners)."""
    H, W = shape
    return particles(shape, 0.05, seed, lambda y, x: -0.03 * (y - H / 2), lambda y, x: 0.03 * (x - W / 2), **kw)


@pytest.fixture(scope="module")
def pp():
    return pytest.importorskip("openpiv.pyprocess")


def openpiv_result(pp, a, b, window_size, overlap, search_area_size, **kw):
    u, v, s2n = pp.extended_search_area_piv(a, b, window_size, overlap, search_area_size=search_area_size,
                                            **kw)
    s = window_size if search_area_size is None else search_area_size
    if isinstance(s, tuple):
        return None, None, u, v, s2n
    x, y = pp.get_coordinates(a.shape, s, overlap)
    return x, y, u, v, s2n


def assert_like_openpiv(got, want, atol):
    x, y, u, v, s2n = got
    wx, wy, wu, wv, ws = want
    for name, ours, theirs in (("u", u, wu), ("v", v, wv)):
        assert ours.shape == theirs.shape and ours.dtype == np.float64
        # NaN exactly where OpenPIV's peak is on the map's border
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=name)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol, err_msg=name)
    np.testing.assert_allclose(s2n, ws, rtol=10 * atol, atol=10 * atol, err_msg="sig2noise")
    if wx is not None:
        np.testing.assert_array_equal(x, wx)
        np.testing.assert_array_equal(y, wy)


FRAMES = {}


def frames(kind, shape=(128, 144), dtype=np.float64):
    key = (kind, shape, np.dtype(dtype).name)
    if key not in FRAMES:
        FRAMES[key] = (uniform(shape, 1.3, -0.7, dtype=dtype) if kind == "uniform"
                       else vortex(shape, dtype=dtype))
    return FRAMES[key]


# Every option of the defaults' neighbourhood, on both fields (float64: 1e-7 px).
@pytest.mark.parametrize("kind", ["uniform", "vortex"])
@pytest.mark.parametrize("correlation_method,normalized_correlation",
                         [("circular", False), ("circular", True), ("linear", False), ("linear", True)])
@pytest.mark.parametrize("window_size,overlap,search_area_size", [(32, 16, None), (24, 12, 40), (16, 8, None)])
def test_like_openpiv(pp, kind, correlation_method, normalized_correlation, window_size, overlap,
                      search_area_size):
    a, b = frames(kind)
    for subpixel_method, sig2noise_method in itertools.product(
            ["gaussian", "parabolic", "centroid"], ["peak2peak", "peak2mean"]):
        kw = dict(correlation_method=correlation_method, normalized_correlation=normalized_correlation,
                  subpixel_method=subpixel_method, sig2noise_method=sig2noise_method, width=2)
        want = openpiv_result(pp, a, b, window_size, overlap, search_area_size, **kw)
        got = fastcorr.piv(a, b, window_size, overlap, search_area_size, **kw)
        assert_like_openpiv(got, want, 1e-7)


@pytest.mark.parametrize("case", [
    dict(window_size=33, overlap=11),                              # odd: OpenPIV's (33, 32) circular map
    dict(window_size=(24, 32), overlap=(8, 12)),                   # rectangular
    dict(window_size=24, overlap=10, search_area_size=(37, 40)),   # odd, rectangular search area
    dict(window_size=16, overlap=-4),                              # gaps between windows
    dict(window_size=32, overlap=0, width=0),
    dict(window_size=32, overlap=16, width=5, dt=0.25),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_like_openpiv_shapes_and_dtypes(pp, case, dtype):
    a, b = frames("vortex", (120, 137))
    if dtype == np.uint8:
        a, b = (np.clip(a * 120, 0, 255).astype(np.uint8), np.clip(b * 120, 0, 255).astype(np.uint8))
    else:
        a, b = a.astype(dtype), b.astype(dtype)
    case = dict(case)
    ws, ov, sa = case.pop("window_size"), case.pop("overlap"), case.pop("search_area_size", None)
    # float32 and uint8 frames are correlated in single precision (OpenPIV:
    # float32 in float32, except where it normalises; uint8 in float64): the
    # peak within 1e-4 px
    atol = 1e-7 if dtype == np.float64 else 1e-4
    for correlation_method, normalized_correlation, sig2noise_method in itertools.product(
            ["circular", "linear"], [False, True], ["peak2peak", "peak2mean"]):
        kw = dict(correlation_method=correlation_method, normalized_correlation=normalized_correlation,
                  sig2noise_method=sig2noise_method, **case)
        want = openpiv_result(pp, a, b, ws, ov, sa, **kw)
        got = fastcorr.piv(a, b, ws, ov, sa, **kw)
        assert_like_openpiv(got, want, atol)


def test_sig2noise_none(pp):
    a, b = frames("uniform")
    want = openpiv_result(pp, a, b, 32, 16, None, sig2noise_method=None)
    x, y, u, v, s2n = fastcorr.piv(a, b, sig2noise_method=None)
    np.testing.assert_allclose(u, want[2], atol=1e-7)
    assert s2n.shape == u.shape and np.isnan(s2n).all() and np.isnan(want[4]).all()


def test_failed_windows_like_openpiv(pp):
    """Blank and constant windows (no peak, or a peak on the border) give NaN and a
    zero signal-to-noise ratio where OpenPIV's do."""
    a, b = frames("uniform")
    a, b = a.copy(), b.copy()
    a[:48, :64] = 0
    b[:48, :64] = 0
    a[100:, 120:] = 3.0
    for normalized_correlation, method in itertools.product([False, True], ["peak2peak", "peak2mean"]):
        kw = dict(normalized_correlation=normalized_correlation, sig2noise_method=method)
        want = openpiv_result(pp, a, b, 32, 16, None, **kw)
        got = fastcorr.piv(a, b, **kw)
        assert np.isnan(got[2]).sum() >= 4
        assert_like_openpiv(got, want, 1e-7)


def test_truth_uniform():
    """RMS error against the known uniform displacement (1.3, -0.7) px, 32-px windows."""
    a, b = uniform((256, 256), 1.3, -0.7)
    for dtype in (np.float64, np.float32):
        x, y, u, v, s2n = fastcorr.piv(a.astype(dtype), b.astype(dtype), 32, 16)
        assert not np.isnan(u).any()
        rms = np.sqrt(np.mean((u - 1.3) ** 2 + (v + 0.7) ** 2))
        assert rms <= 0.1, rms
        assert np.median(s2n) > 1.5


def test_truth_vortex():
    """The rotation's displacement at each window's centre, within 0.25 px."""
    H, W = 192, 192
    a, b = vortex((H, W))
    x, y, u, v, s2n = fastcorr.piv(a, b, 32, 16, normalized_correlation=True)
    du = u - (-0.03 * (y - H / 2))
    dv = v - (0.03 * (x - W / 2))
    assert np.sqrt(np.nanmean(du ** 2 + dv ** 2)) < 0.25


def test_threads_and_bands_agree(monkeypatch):
    """The result does not depend on the threads nor on the bands of windows."""
    import fastcorr._engine.piv as engine

    a, b = frames("vortex")
    want = fastcorr.piv(a, b, 16, 8, num_threads=1)
    monkeypatch.setattr(engine, "BAND_BYTES", 1)   # one window row per band
    for nt in (1, 2, 3):
        got = fastcorr.piv(a, b, 16, 8, num_threads=nt)
        for g, w in zip(got, want):
            # to rounding: ducc0 (when installed) may round a transform
            # differently by its place in the batch
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_inputs_untouched_and_array_likes():
    a, b = frames("uniform", (64, 64))
    ac, bc = a.copy(), b.copy()
    got = fastcorr.piv(a.tolist(), b.tolist(), 32, 16, normalized_correlation=True, search_area_size=40)
    np.testing.assert_array_equal(a, ac)
    np.testing.assert_array_equal(b, bc)
    want = fastcorr.piv(a, b, 32, 16, normalized_correlation=True, search_area_size=40)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # non-contiguous views
    big = np.zeros((128, 128))
    big[::2, ::2] = a
    got = fastcorr.piv(big[::2, ::2], b, 32, 16)
    for g, w in zip(got, fastcorr.piv(a, b, 32, 16)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(frame_a=np.zeros((64,))), ValueError, "frame_a"),
    (dict(frame_b=np.zeros((64, 65))), ValueError, "frame_b"),
    (dict(frame_a=np.zeros((64, 64), complex)), TypeError, "frame_a"),
    (dict(frame_b=np.zeros((64, 64), bool)), TypeError, "frame_b"),
    (dict(frame_a=np.array([["a"] * 64] * 64)), TypeError, "frame_a"),
    (dict(window_size=0), ValueError, "window_size"),
    (dict(window_size=2.5), TypeError, "window_size"),
    (dict(window_size=(8, 8, 8)), TypeError, "window_size"),
    (dict(window_size=128), ValueError, "window_size"),
    (dict(search_area_size=16), ValueError, "search_area_size"),
    (dict(search_area_size=(40, 80)), ValueError, "search_area_size"),
    (dict(overlap=32), ValueError, "overlap"),
    (dict(overlap="16"), TypeError, "overlap"),
    (dict(dt=0), ValueError, "dt"),
    (dict(dt=float("nan")), ValueError, "dt"),
    (dict(correlation_method="direct"), ValueError, "correlation_method"),
    (dict(normalized_correlation="yes"), TypeError, "normalized_correlation"),
    (dict(subpixel_method="lanczos"), ValueError, "subpixel_method"),
    (dict(sig2noise_method="peak2rms"), ValueError, "sig2noise_method"),
    (dict(width=-1), ValueError, "width"),
    (dict(width=1.5), TypeError, "width"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(window_size=(8, 1), overlap=0), ValueError, "window_size"),
    (dict(window_size=1, overlap=0, search_area_size=(8, 1)), ValueError, "search_area_size"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(frame_a=np.zeros((64, 64)), frame_b=np.zeros((64, 64)), window_size=32, overlap=16)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fastcorr.piv(**args)


def test_dask_twin():
    pytest.importorskip("dask.array")
    import dask
    import fastcorr.dask

    pairs = [frames("uniform", (96, 112)), frames("vortex", (96, 112))]
    a = np.stack([p[0] for p in pairs])
    b = np.stack([p[1] for p in pairs])
    kw = dict(search_area_size=40, correlation_method="linear", sig2noise_method="peak2mean")
    x, y, u, v, s2n = fastcorr.dask.piv(a, b, 32, 16, **kw)
    assert u.shape == (2,) + x.shape and u.numblocks[0] == 2
    u, v, s2n = dask.compute(u, v, s2n)
    for t, (fa, fb) in enumerate(pairs):
        want = fastcorr.piv(fa, fb, 32, 16, **kw)
        np.testing.assert_array_equal(x, want[0])
        np.testing.assert_array_equal(y, want[1])
        # to rounding (the task's threads, so its bands of windows, may differ)
        np.testing.assert_allclose(u[t], want[2], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v[t], want[3], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(s2n[t], want[4], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.isnan(u[t]), np.isnan(want[2]))
    with pytest.raises(ValueError, match="frames_b"):
        fastcorr.dask.piv(a, b[:1], 32, 16)
    with pytest.raises(ValueError, match="overlap"):
        fastcorr.dask.piv(a, b, 32, 32)


CHILD = """
import signal, sys, time
import numpy as np
import fastcorr
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores it
rng = np.random.default_rng(0)
a = rng.random((1024, 1024))
b = np.roll(a, (1, -2), axis=(0, 1))
small = lambda: fastcorr.piv(a[:128, :128], b[:128, :128], 32, 16)
small()
print("running", flush=True)
try:
    while True:
        fastcorr.piv(a, b, 16, 8, num_threads=int(sys.argv[1]))
except KeyboardInterrupt:
    print("interrupted", flush=True)
x, y, u, v, s2n = small()
print("next", round(float(np.median(u)), 2), round(float(np.median(v)), 2), flush=True)
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT") or __import__("sys").platform == "win32",
                    reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_interrupts_piv(threads):
    """Ctrl-C during a long piv answers with KeyboardInterrupt, and the next call is right."""
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(threads)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or lines[-1] not in ("running", ""):  # (an editable install may log its rebuild)
            lines.append(child.stdout.readline().strip())
        assert lines[-1] == "running", (lines, child.stderr.read())
        time.sleep(0.5)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        line = child.stdout.readline().strip()
        answered = time.perf_counter() - sent
        assert line == "interrupted", (line, child.stderr.read())
        assert answered < 3.0, f"KeyboardInterrupt came {answered:.2f} s after SIGINT"
        # (not communicate(): it would miss what readline has buffered)
        out = child.stdout.read()
        err = child.stderr.read()
        assert child.wait(timeout=60) == 0, err
        assert out.split()[-3:] == ["next", "-2.0", "1.0"], (out, err)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
