"""'auto' dispatch: rules (integers, NaN), separable kernels, calibration, autotune."""
import json
import threading

import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr._engine import calibrate as _calibrate, costmodel as _costmodel, dispatch as _dispatch


def _gauss(n, sigma):
    g = np.exp(-0.5 * (np.arange(n) - (n - 1) / 2) ** 2 / sigma ** 2)
    return np.outer(g, g) / g.sum() ** 2


def test_choose_method_reports_known_method():
    x = np.ones((64, 64))
    assert fastcorr.choose_method(x, np.ones((3, 3))) in _dispatch.METHODS


def test_integers_never_fft_and_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (300, 300)).astype(np.uint8)
    w = rng.integers(0, 5, (41, 41)).astype(np.uint8)
    assert fastcorr.choose_method(x, w) != "fft"
    y = fastcorr.correlate2d(x.astype(np.int64), w.astype(np.int64), "same")
    ref = scipy.signal.correlate2d(x.astype(np.int64), w.astype(np.int64), "same")
    np.testing.assert_array_equal(y, ref)
    y8 = fastcorr.correlate2d(x, w, "valid")
    np.testing.assert_array_equal(y8, scipy.signal.correlate2d(x, w, "valid"))


def test_nan_stays_local_under_auto():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 400))
    w = rng.standard_normal((41, 41))  # large kernel: FFT would be cheapest
    assert fastcorr.choose_method(x, w, "same") == "fft"
    x[200, 200] = np.nan
    assert fastcorr.choose_method(x, w, "same") != "fft"
    y = fastcorr.correlate2d(x, w, "same")
    nan = np.isnan(y)
    assert nan[200, 200] and nan.sum() == 41 * 41
    x[200, 200] = np.inf
    assert fastcorr.choose_method(x, w, "same") != "fft"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128, np.float16])
@pytest.mark.parametrize("n", [1, 7, 4099, (1 << 18) * 3 + 5])
def test_finiteness_check_finds_every_nan_and_inf(dtype, n):
    # The compiled check reads values as integers; compare it with numpy's
    # on the extremes of the dtype and on NaN/inf anywhere, real or imaginary.
    from fastcorr.methods.fft_kernels import all_finite

    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype)
    info = np.finfo(dtype)
    a[0] = info.max
    a[-1] = -info.max
    if n > 2:
        a[1] = info.tiny / 4  # subnormal
        a[2] = -0.0
    assert all_finite(a) is True
    for value in (np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1}:
            for part in ("real", "imag") if np.iscomplexobj(a) else ("real",):
                b = a.copy()
                getattr(b, part)[pos] = value
                assert all_finite(b) is False, (value, pos, part)
                assert _dispatch._finite(b.reshape(1, -1)) is False
    # strided views and integers take numpy's path or none
    assert all_finite(np.array([1.0, np.nan, 2.0])[::2]) is True
    assert all_finite(np.array([np.nan, 1.0])[::-1]) is False
    assert all_finite(np.arange(5)) is True


def test_explicit_fft_still_allowed_with_nan():
    x = np.ones((50, 50))
    x[0, 0] = np.nan
    y = fastcorr.correlate2d(x, np.ones((5, 5)), "same", method="fft")
    assert np.isnan(y).sum() > 25  # spread: that is what was asked


@pytest.mark.parametrize("kernel", ["gaussian31", "box15", "sobel_row7"])
def test_separable_kernels_take_separable_path(kernel):
    x = np.random.default_rng(2).standard_normal((512, 512)).astype(np.float32)
    w = {
        "gaussian31": _gauss(31, 5.0),
        "box15": np.ones((15, 15)) / 225,
        "sobel_row7": np.outer([1, 6, 15, 20, 15, 6, 1], [1, 4, 5, 0, -5, -4, -1]),
    }[kernel].astype(np.float32)
    assert fastcorr.choose_method(x, w, "same") == "separable"
    ref = scipy.signal.correlate2d(x.astype(np.float64), w.astype(np.float64), "same")
    e = np.abs(fastcorr.correlate2d(x, w, "same") - ref).max() / (np.abs(x).max() * np.abs(w).sum())
    assert e <= 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, 11, 31, 63])
def test_auto_accuracy(dtype, k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((200, 230)).astype(dtype)
    w = rng.standard_normal((k, k)).astype(dtype)
    for mode in ["same", "valid"]:
        ref = scipy.signal.fftconvolve(x.astype(np.float64), w.astype(np.float64)[::-1, ::-1], mode)
        y = fastcorr.correlate2d(x, w, mode)
        assert y.dtype == dtype
        e = np.abs(y - ref).max() / (np.abs(x).max() * np.abs(w).sum())
        assert e <= (1e-5 if dtype == np.float32 else 1e-12)


def test_cost_model_tolerates_missing_methods(monkeypatch):
    monkeypatch.setitem(_dispatch._ENGINES, "im2col", ("fastcorr._no_such_module", None))
    assert _costmodel.estimate("nosuch", (10, 10), (3, 3), (10, 10), np.float32, 1) is None
    with pytest.raises((ValueError, ImportError)):
        fastcorr.correlate2d(np.ones((10, 10)), np.ones((3, 3)), method="im2col")


def test_calibration_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _costmodel.reset_constants()
    try:
        path = _costmodel.calibration_path()
        assert path.startswith(str(tmp_path))
        import os

        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            json.dump({"constants": {"direct": {"f8": 1.0}}}, f)  # absurdly slow direct
        _costmodel.reset_constants()
        assert _costmodel.constants()["direct"]["f8"] == 1.0
        assert fastcorr.choose_method(np.ones((64, 64)), np.ones((3, 3)) + np.eye(3)) != "direct"
    finally:
        _costmodel.reset_constants()


def test_plain_calls_forget_their_plans_with_the_constants(tmp_path, monkeypatch):
    # The compiled plain-call entry remembers the last shape's plan; new
    # constants (calibrate) or autotune must reach it.
    from fastcorr._engine import plain_call as _plain

    x = np.random.default_rng(4).standard_normal((64, 64))
    w = np.ones((3, 3)) + np.eye(3)
    plain = lambda: _plain.plain_call(x, w, "same", "fill", 0, "auto", 2, False)  # noqa: E731
    key = (64, 64, 3, 3, 1, np.dtype(np.float64).num, 2)  # shapes, 'same', dtype, threads
    assert plain() is not None and plain() is not None  # direct, remembered
    assert _dispatch.plain_plans[key] == 1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = _costmodel.calibration_path()
    import os

    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump({"constants": {"direct": {"f8": 1.0}}}, f)
    try:
        _costmodel.reset_constants()
        np.testing.assert_allclose(plain(), scipy.signal.correlate2d(x, w, "same"), atol=1e-10)
        assert _dispatch.plain_plans[key] == 0  # direct is now absurdly slow: not fixed
        np.testing.assert_allclose(fastcorr.correlate2d(x, w, "same", num_threads=2),
                                   scipy.signal.correlate2d(x, w, "same"), atol=1e-10)
    finally:
        os.remove(path)
        _costmodel.reset_constants()
    assert plain() is not None and _dispatch.plain_plans[key] == 1


def test_calibrate_writes_json(tmp_path):
    path = tmp_path / "cal.json"
    res = _calibrate.calibrate(str(path), threads=1)
    data = json.loads(path.read_text())
    assert set(res) <= set(_costmodel.DEFAULT_CONSTANTS) and "direct" in data["constants"]
    _costmodel.reset_constants()


def test_autotune_caches_winner_thread_safe():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 128))
    w = rng.standard_normal((9, 9))
    ref = scipy.signal.correlate2d(x, w, "same")
    fastcorr.set_autotune(True)
    try:
        out = []
        ts = [threading.Thread(target=lambda: out.append(fastcorr.correlate2d(x, w, "same"))) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(out) == 3
        for y in out:
            np.testing.assert_allclose(y, ref, atol=1e-10)
        assert len(_dispatch._autotune_cache) >= 1
        assert set(_dispatch._autotune_cache.values()) <= set(_dispatch.METHODS)
    finally:
        fastcorr.set_autotune(False)
    assert not _dispatch._autotune_cache
