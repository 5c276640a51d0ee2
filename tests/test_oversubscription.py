"""Short calls on one thread while the machine is oversubscribed (issue 20).

A thread team's closing barrier waits a scheduler time slice whenever one of
its threads is not running (another process keeps the cores busy): a call of
0.03-1 ms then takes 4-30 ms. A threaded call whose calling thread waited
(wall time minus its CPU time) more than ``config.STALL_SECONDS`` stalled;
from the running stall rate and cost, a call runs on one thread when that
is expected to end sooner (``config.serial_pays``).
"""
import time

import numpy as np
import pytest
import scipy.signal

import fastcorr
from fastcorr._engine import config, dispatch, lowering


@pytest.fixture
def quiet_machine(monkeypatch):
    """The guard's state, reset for the test and restored after it."""
    monkeypatch.setattr(config, "_stall_rate", 0.0)
    monkeypatch.setattr(config, "_stall_cost", 0.0)
    monkeypatch.setattr(config, "_stall_time", 0.0)
    yield


def busy_machine(rate=1.0, cost=0.004):
    config._stall_rate, config._stall_cost, config._stall_time = rate, cost, time.monotonic()


def stalled():
    return config.stall_expected() > 0.0


def busy(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def computing_is_never_a_stall(work, seconds):
    # the calling thread computes all along; on a loaded machine the system
    # may deschedule it for a time slice (then it is rightly a stall): one
    # attempt in twenty that ran undisturbed is enough
    for _ in range(20):
        config._stall_rate = config._stall_cost = 0.0
        with config.WaitClock(2, work, 0):
            busy(seconds)
        if not stalled():
            return True
    return False


def test_a_wait_is_a_stall_and_work_is_not(quiet_machine):
    assert computing_is_never_a_stall(1e9, 1.5 * config.STALL_SECONDS)
    with config.WaitClock(2, 1e9, 0):
        time.sleep(3 * config.STALL_SECONDS)  # it waited: a stall
    assert stalled()


def test_short_calls_are_timed_by_the_wall_clock_alone(quiet_machine):
    # below CPU_TIMED_WORK the CPU clock is not read (a system call): a call
    # that long can only have waited, beyond its output's page faults
    assert computing_is_never_a_stall(100.0, 0.25 * config.STALL_SECONDS)
    with config.WaitClock(2, 100.0, int(10 * config.STALL_SECONDS / config.FAULT_SECONDS_PER_BYTE)):
        time.sleep(3 * config.STALL_SECONDS)  # as long as faulting that output in
    assert not stalled()
    with config.WaitClock(2, 100.0, 0):
        time.sleep(3 * config.STALL_SECONDS)
    assert stalled()


def test_one_thread_never_counts(quiet_machine):
    with config.WaitClock(1, 1e9, 0):
        time.sleep(3 * config.STALL_SECONDS)
    assert not stalled()


def test_the_rate_follows_the_calls_and_decays(quiet_machine, monkeypatch):
    config.note_wait(0.01)  # one stall of 10 ms
    assert config.stall_expected() == pytest.approx(config.STALL_RATE_WEIGHT * 0.01, rel=1e-3)
    before = config.stall_expected()
    for _ in range(8):
        config.note_wait(0.0)  # calls without a stall lower the rate
    assert 0.0 < config.stall_expected() < 0.7 * before
    for _ in range(60):
        config.note_wait(0.01)  # most calls stall: a short call pays to go serial, a long one not
    assert config.serial_pays(1e-3) and not config.serial_pays(0.1)
    monkeypatch.setattr(config, "_stall_time", time.monotonic() - 20 * config.STALL_HALF_LIFE)
    assert not config.serial_pays(1e-3)  # no threaded call seen for a while: the rate decays
    config.note_wait(0.5 * config.STALL_SECONDS)  # a wait shorter than a stall
    assert config.stall_expected() < 1e-6


def threads_seen(monkeypatch):
    seen = []
    real = lowering.correlate_offset

    def spy(runner, method, x, w, shape, offsets, boundary, fill, dtype, num_threads, out=None):
        seen.append((method, num_threads))
        return real(runner, method, x, w, shape, offsets, boundary, fill, dtype, num_threads, out=out)

    monkeypatch.setattr(lowering, "correlate_offset", spy)
    return seen


@pytest.mark.parametrize("method", ["direct", "separable"])
def test_short_calls_go_serial_and_long_ones_keep_their_threads(quiet_machine, monkeypatch, method):
    seen = threads_seen(monkeypatch)
    rng = np.random.default_rng(0)
    w = np.outer(rng.standard_normal(5), rng.standard_normal(5))
    small, large = rng.standard_normal((200, 300)), rng.standard_normal((3000, 3000))
    busy_machine()
    y = fastcorr.correlate2d(small, w, "same", boundary="symm", method=method, num_threads=2)
    np.testing.assert_allclose(y, scipy.signal.correlate2d(small, w, "same", "symm"), rtol=1e-10, atol=1e-12)
    assert seen[-1] == (method, 1)
    seconds = dispatch.estimate(method, large.shape, w.shape, large.shape, large.dtype, 1)
    assert not config.serial_pays(seconds)
    busy_machine()
    fastcorr.correlate2d(large, w, "same", boundary="symm", method=method, num_threads=2)
    assert seen[-1] == (method, 2)
    monkeypatch.setattr(config, "_stall_rate", 0.0)
    fastcorr.correlate2d(small, w, "same", boundary="symm", method=method, num_threads=2)
    assert seen[-1] == (method, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_calls_while_oversubscribed_are_right(quiet_machine, dtype):
    # the compiled fast path (C-contiguous float arrays, default boundary)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 257)).astype(dtype)
    w = rng.standard_normal((7, 5)).astype(dtype)
    busy_machine()
    for mode in ("full", "same", "valid"):
        for f, ref in [(fastcorr.correlate2d, scipy.signal.correlate2d),
                       (fastcorr.convolve2d, scipy.signal.convolve2d)]:
            y = f(x, w, mode, num_threads=2)
            want = ref(x.astype(np.float64), w.astype(np.float64), mode)
            assert y.dtype == dtype
            e = np.abs(y - want).max() / (np.abs(x).max() * np.abs(w).sum())
            assert e <= (1e-5 if dtype == np.float32 else 1e-12)


def test_plain_auto_calls_of_other_methods_follow_the_guard(quiet_machine, monkeypatch):
    # A plain call (C-contiguous floats, default boundary) where 'auto' picks
    # the separable method goes through the dispatcher's entry too: serial
    # while threaded calls stall (under load its passes' barriers each waited
    # a scheduler tick: 8-32 ms for a 0.08 ms call), threaded otherwise.
    seen = threads_seen(monkeypatch)
    g = np.exp(-0.5 * (np.arange(31) - 15.0) ** 2 / 25.0)
    w = np.outer(g, g) / g.sum() ** 2
    x = np.random.default_rng(2).standard_normal((64, 64))
    with fastcorr.threads(2):
        assert fastcorr.choose_method(x, w, "same") == "separable"
    busy_machine()
    y = fastcorr.correlate2d(x, w, "same", num_threads=2)
    np.testing.assert_allclose(y, scipy.signal.correlate2d(x, w, "same"), rtol=1e-10, atol=1e-12)
    assert seen[-1] == ("separable", 1)
    monkeypatch.setattr(config, "_stall_rate", 0.0)
    fastcorr.correlate2d(x, w, "same", num_threads=2)
    assert seen[-1] == ("separable", 2)
