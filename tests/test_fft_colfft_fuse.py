"""The float64 column transforms' fused radix-16 sweeps (``fcd_fuse16`` of
``_simd/colfft_kernels.h``: two radix-4 passes of the power-of-two part per
sweep over the rows, on AVX2 or AVX-512 registers) against numpy's FFT, in
every setting of ``fft_kernels.column_fuse16``: 0 (one pass a sweep), 1
(AVX2), 2 (AVX-512 where the CPU has it, with the radix-3 / radix-5 pairs
fused too; else AVX2) and 3 (2 without those pairs); and the whole FFT
method against scipy.signal (its FFT method) in each."""
import numpy as np
import pytest
import scipy.signal

import fastcorr

fk = pytest.importorskip("fastcorr.methods.fft_kernels")
from test_fft_colfft64 import _digitrev  # noqa: E402


@pytest.fixture(params=[0, 1, 2, 3])
def fuse(request):
    previous = fk.column_fuse16(request.param)
    yield request.param
    fk.column_fuse16(previous)


# lengths with 0-5 radix-4 passes, odd and even powers of two, factors 3 and 5;
# widths with and without a vector tail (4 / 8 doubles a step)
LENGTHS = (16, 32, 64, 128, 256, 1024, 48, 96, 320, 576, 960, 45 * 16, 375 * 4, 9, 15, 25, 135, 1125, 800)
WIDTHS = (1, 2, 3, 5, 9)


def test_column_fft64_fused(fuse):
    rng = np.random.default_rng(10)
    for n0 in LENGTHS:
        tw = fk.column_twiddles64(n0)
        for F in WIDTHS:
            x = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))
            y = x.copy()
            fk.column_fft64(y, tw, False)
            ref = np.fft.fft(x, axis=0)[_digitrev(n0)]
            assert np.abs(y - ref).max() <= 1e-13 * np.abs(ref).max(), (n0, F)
            fk.column_fft64(y, tw, True)
            assert np.abs(y / n0 - x).max() <= 1e-13 * np.abs(x).max(), (n0, F)


def test_column_correlate64_fused(fuse):
    rng = np.random.default_rng(11)
    for n0 in LENGTHS:
        for F in (3, 9):
            x = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))
            K = rng.standard_normal((n0, F)) + 1j * rng.standard_normal((n0, F))
            ref = np.fft.ifft(np.fft.fft(x, axis=0) * K, axis=0)
            k = np.ascontiguousarray(K[_digitrev(n0)] / n0)
            for c0, c1 in ((0, F), (1, F - 1)):
                y = x.copy()
                fk.column_correlate64(y, fk.column_twiddles64(n0), k, c0, c1, block=1 << 20)
                assert np.abs(y[:, c0:c1] - ref[:, c0:c1]).max() <= 1e-13 * np.abs(ref).max(), (n0, F)
                assert np.array_equal(y[:, :c0], x[:, :c0]) and np.array_equal(y[:, c1:], x[:, c1:])


def test_fused_settings_agree_bitwise():
    # the same butterflies on the same values: one sweep or two agree to rounding (bitwise in the
    # optimised build on AVX2; a build with other flags, the sanitizer's, contracts multiply-adds
    # into FMAs in other places, and the last odd column runs a scalar loop)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((960, 37)) + 1j * rng.standard_normal((960, 37))
    tw = fk.column_twiddles64(960)
    outs = []
    previous = fk.column_fuse16()
    try:
        for m in (0, 1, 2, 3):
            fk.column_fuse16(m)
            y = x.copy()
            fk.column_fft64(y, tw, False)
            fk.column_fft64(y, tw, True)
            outs.append(y)
    finally:
        fk.column_fuse16(previous)
    for m in (1, 2, 3):
        assert np.abs(outs[0] - outs[m]).max() <= 1e-15 * np.abs(x).max() * 960, m
        assert not np.array_equal(outs[m], x)  # the transforms ran


@pytest.mark.parametrize("n,k", [(256, 63), (600, 101), (300, 21)])
def test_fft_method_fused(fuse, n, k):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((n, n))
    w = rng.standard_normal((k, k))
    ref = scipy.signal.correlate(x, w, "same", method="fft")  # pocketfft's, independent of ducc0
    for threads in (1, 2):
        y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=threads)
        assert np.abs(y - ref).max() <= 1e-12 * np.abs(x).max() * np.abs(w).sum()


def test_column_isa_follows_the_setting():
    previous = fk.column_fuse16()
    try:
        fk.column_fuse16(2)
        isa = fk.column_isa()
        assert isa in ("avx512", "avx2", "portable")
        for m in (0, 1):
            fk.column_fuse16(m)
            assert fk.column_isa() == ("portable" if isa == "portable" else "avx2")
        fk.column_fuse16(3)
        assert fk.column_isa() == isa
        fk.column_fuse16(7)  # clamped
        assert fk.column_fuse16() == 3
    finally:
        fk.column_fuse16(previous)


def test_bench_large_names_the_column_isa():
    from fastcorr._cli import large_bench

    lines = []
    large_bench.run(threads=1, dtypes=("float64",), cases=[(64, 21)], repeats=1, out=lines.append)
    assert f"float64 column transforms {fk.column_isa()}" in lines[0]


def test_shared_slope_moves_only_multithread_plans():
    from fastcorr.methods import fft as _fft

    data = ((50, 4146), (50, 4146))
    old = _fft.DUCC_SHARED_SLOPE
    try:
        plans = {}
        for slope in (0.0, 0.15):
            _fft.DUCC_SHARED_SLOPE = slope
            _fft._plan.cache_clear()
            _fft._choose_plan.cache_clear()
            plans[slope] = [_fft.choose_plan((4096, 4096), (101, 101), np.float64, data, t) for t in (1, 2)]
        assert plans[0.0][0] == plans[0.15][0]  # one thread: the same plan
        (n0, _, _), (n1, _, _) = plans[0.15][1][1]
        (m0, _, _), (m1, _, _) = plans[0.0][1][1]
        assert n0 * n1 < m0 * m1  # two threads: smaller tiles
        # float32 plans, and float64 outputs under DUCC_SHARED_MIN_OUTPUT values, never move
        for shape, k, dtype in (((4096, 4096), 101, np.float32), ((1024, 1024), 129, np.float64)):
            d = tuple(((k - 1) // 2, (k - 1) // 2 + n) for n in shape)
            moved = []
            for slope in (0.0, 0.15):
                _fft.DUCC_SHARED_SLOPE = slope
                _fft._plan.cache_clear()
                _fft._choose_plan.cache_clear()
                moved.append(_fft.choose_plan(shape, (k, k), dtype, d, 2))
            assert moved[0] == moved[1], (shape, k, dtype)
    finally:
        _fft.DUCC_SHARED_SLOPE = old
        _fft._plan.cache_clear()
        _fft._choose_plan.cache_clear()
