"""The fused sweep's session-15 paths (fastcorr.methods.normalized): the row
pass over aligned shifted copies of each row (long float64 row kernels),
the row pass of 3-5 taps from register shifts,
the constant passes of rows wholly outside the image (fill boundary), the
finishing loop for nan_treatment 'interpolate', and the vertical passes
without prefetches. Each against the float64 formula of
tests/test_normalized.py, each flag against its old behaviour (the same
bits), and NaN under certainty 0 never reaching a neighbour.
"""
import warnings

import numpy as np
import pytest

import fastcorr
from fastcorr.methods import normalized as sweep

from test_normalized import _close, _data, _gauss, naive


def _ours(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fastcorr.normalized_convolution(*args, **kwargs)


@pytest.fixture
def fused_calls(monkeypatch):
    """The fused sweep's calls (counted), with small strips: the images here
    are cut in several strips of columns."""
    from fastcorr._engine import normalized as engine

    calls = []
    real = engine._fused.normalized_rank1
    monkeypatch.setattr(engine._fused, "normalized_rank1", lambda *a: calls.append(a[6]) or real(*a))
    monkeypatch.setattr(sweep, "RING_BYTES", 96 * 1024)
    monkeypatch.setattr(sweep, "MIN_STRIP", 40)
    return calls


LONG = (65, 67)  # a row kernel of 67 taps: float64 takes the aligned row pass


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("boundary,fill_value", [("fill", 0.0), ("fill", 2.5), ("fill", np.nan), ("wrap", 0.0),
                                                 ("extend", 0.0), (None, 0.0)])
def test_long_kernels_against_formula(fused_calls, dtype, boundary, fill_value):
    assert sweep.ALIGNED_ROW_MIN_TAPS["d"] <= LONG[1]
    x = _data((72, 261), frac=0.1, seed=3)
    k = _gauss(*LONG)
    got = _ours(x.astype(dtype), k, boundary=boundary, fill_value=fill_value, method="separable")
    ref, _ = naive(x.astype(dtype), k, boundary=boundary, fill_value=fill_value)
    assert fused_calls, "the fused sweep did not run"
    assert got.dtype == dtype
    _close(got, ref, atol=1e-10 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kshape", [(5, 5), (5, 3), (3, 4), (4, 5), (11, 13), (67, 69)])
def test_flags_keep_the_bits(fused_calls, monkeypatch, dtype, kshape):
    """Every new path gives the bits of the one it replaces."""
    x = _data((70, 203), frac=0.08, seed=sum(kshape)).astype(dtype)
    k = _gauss(*kshape)
    for kwargs in ({}, {"fill_value": 1.5}, {"fill_value": np.nan}, {"nan_treatment": "fill", "fill_value": 0.5},
                   {"return_certainty": True}):
        base = _ours(x, k, method="separable", **kwargs)
        for flag, old in [("COL_PREFETCH", True), ("NANC_FINISH", False), ("FILL_ROWS_CONSTANT", False),
                          ("ALIGNED_ROW_MIN_TAPS", {"d": 0, "f": 0}), ("ROW_SHUFFLE", False)]:
            with monkeypatch.context() as m:
                m.setattr(sweep, flag, old)
                other = _ours(x, k, method="separable", **kwargs)
            for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (base, other))):
                np.testing.assert_array_equal(a, b, err_msg=f"{flag}={old!r} {kwargs}")
    assert fused_calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [5, 67])
def test_nan_under_zero_certainty_does_not_leak(fused_calls, dtype, size):
    """NaN and inf values at pixels of certainty 0 (or NaN pixels without a
    certainty map) change nothing: the same result as finite values there."""
    rng = np.random.default_rng(size)
    x = rng.uniform(-1, 1, (66, 190))
    bad = rng.random(x.shape) < 0.07
    c = (~bad).astype(dtype)
    k = _gauss(size, size)
    poisoned = x.copy()
    poisoned[bad] = np.where(rng.random(bad.sum()) < 0.5, np.nan, np.inf)
    tame = x.copy()
    tame[bad] = 1e30
    for boundary in ("fill", "wrap"):
        a = _ours(poisoned.astype(dtype), k, c, boundary=boundary, method="separable")
        b = _ours(tame.astype(dtype), k, c, boundary=boundary, method="separable")
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
    # NaN pixels without a certainty map: interpolated, finite everywhere
    nanned = x.copy()
    nanned[bad] = np.nan
    a = _ours(nanned.astype(dtype), k, method="separable")
    ref, _ = naive(nanned.astype(dtype), k)
    assert np.isfinite(a).all()
    _close(a, ref, atol=1e-10 if dtype == np.float64 else 2e-5)
    assert fused_calls


def test_calls_after_the_team_slept(monkeypatch):
    """Where the team's other threads took none of the sweep's tasks in the
    last calls after an idle gap, such a call runs on one thread (every
    GAP_EXPLORE-th threaded, to see again); a call right after a threaded
    one keeps its threads; the same result either way."""
    import time

    from fastcorr._engine import config
    from fastcorr._engine import normalized as engine

    x = _data((60, 70), frac=0.1, seed=9, hole=False)
    k = _gauss(5)
    ref = _ours(x, k, num_threads=1)
    threads = []
    real = engine._fused.normalized_rank1
    monkeypatch.setattr(engine._fused, "normalized_rank1", lambda *a: threads.append(a[-1]) or real(*a))
    monkeypatch.setattr(config, "stall_expected", lambda: 0.0)
    monkeypatch.setattr(engine, "GAP_AWARE", True)
    monkeypatch.setattr(engine, "GAP_EXPLORE", 3)
    monkeypatch.setattr(engine, "_gap", {"end": 0.0, "helped": [False, False], "seen": True, "calls": 0})
    for _ in range(3):  # after a gap: one thread, then the third threaded (noting whether it was helped)
        np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)
    assert threads == [1, 1, 2]
    assert len(engine._gap["helped"]) == 3
    assert sweep.last_tasks >= 1 and 0 <= sweep.last_helped <= sweep.last_tasks
    engine._gap.update(end=time.monotonic(), helped=[False] * 3)
    np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)  # right after: threads
    assert threads[-1] == 2
    engine._gap.update(end=0.0, helped=[True, False, False], calls=0)
    np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)  # helped lately: threads
    assert threads[-1] == 2
    monkeypatch.setattr(engine, "GAP_AWARE", False)
    engine._gap.update(end=0.0, helped=[False] * 3, calls=0)
    np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)
    assert threads[-1] == 2
