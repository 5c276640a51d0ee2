"""Big outputs of the direct method come from recycled blocks
(``fastcorr.methods.direct._OutputBlock``): memory is reused only once no
array views an old result, and idle blocks are bounded."""
import gc

import numpy as np
import pytest

direct = pytest.importorskip("fastcorr.methods.direct")

import fastcorr  # noqa: E402

N = 2048  # 2048² float64: 32 MiB, over POOL_MIN_BYTES


@pytest.fixture(autouse=True)
def _clean_pool():
    gc.collect()
    direct.release_outputs()
    yield
    gc.collect()
    direct.release_outputs()


def test_sizes_served():
    assert direct.recycles(N * N * 8)
    assert not direct.recycles(1024 * 1024 * 8)  # glibc reuses those itself
    assert not direct.recycles(direct.POOL_MAX_BYTES + 1)


def test_block_reused_only_after_the_last_view_is_gone():
    a = direct.fresh_output((N, N), np.float64)
    assert a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % direct.HUGE_PAGE == 0
    address = a.ctypes.data
    a[...] = 7.0
    view = a[5:9, ::3]
    del a
    b = direct.fresh_output((N, N), np.float64)
    assert b.ctypes.data != address  # the old result is still viewed
    b[...] = -1.0
    assert np.all(view == 7.0)
    del view
    c = direct.fresh_output((N, N), np.float64)
    assert c.ctypes.data == address  # now its memory serves again
    del b, c


def test_idle_blocks_are_bounded():
    arrays = [direct.fresh_output((N, N), np.float64) for _ in range(direct.POOL_BLOCKS + 2)]
    del arrays
    gc.collect()
    released = direct.release_outputs()
    assert 0 < released <= min(direct.POOL_IDLE_BYTES, direct.POOL_BLOCKS * (N * N * 8 + direct.HUGE_PAGE))
    assert direct.release_outputs() == 0


def test_results_in_recycled_memory_are_right_and_independent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, N))
    w = rng.standard_normal((3, 3))
    first = fastcorr.correlate2d(x, w, "same", method="direct", num_threads=2)
    ref = first.copy()
    for _ in range(3):  # calls whose results are dropped recycle one block
        fastcorr.correlate2d(x * 2.0, w, "same", method="direct", num_threads=2)
    np.testing.assert_array_equal(first, ref)  # the kept result is untouched
    again = fastcorr.correlate2d(x, w, "same", method="direct", num_threads=2)
    np.testing.assert_array_equal(again, ref)
    import scipy.signal

    ref64 = scipy.signal.correlate2d(x[:200, :200], w, "same")
    np.testing.assert_allclose(again[:199, :199], ref64[:199, :199], rtol=1e-10, atol=1e-10)


def test_fft_results_in_recycled_blocks(monkeypatch):
    from fastcorr._engine import costmodel

    if not costmodel.recycles("fft", (N, N), np.dtype("f8")):
        pytest.skip("the FFT method is not on its in-place ducc0 tiles here")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, N))
    w = rng.standard_normal((31, 31))
    kept = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    copy = kept.copy()
    address = kept.ctypes.data
    assert address % direct.HUGE_PAGE == 0  # a recycled block, not np.empty's
    for _ in range(2):
        fastcorr.correlate2d(x[::-1].copy(), w, "same", method="fft", num_threads=2)
    np.testing.assert_array_equal(kept, copy)
    del kept
    again = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    np.testing.assert_allclose(again, copy, rtol=0, atol=1e-9)
    import scipy.signal

    ref = scipy.signal.correlate2d(x[:64, :64], w, "full")[15:79, 15:79]
    np.testing.assert_allclose(again[:49, :49], ref[:49, :49], rtol=1e-9, atol=1e-9)
    # switched off: a plain new array
    monkeypatch.setattr(costmodel, "RECYCLED_FFT_OUTPUTS", False)
    plain = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    np.testing.assert_allclose(plain, copy, rtol=0, atol=1e-9)


def test_separable_results_in_recycled_blocks():
    from fastcorr._engine import costmodel

    if not costmodel.recycles("separable", (N, 2 * N), np.dtype("f4")):
        pytest.skip("no recycled outputs here")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, 2 * N)).astype(np.float32)  # 32 MiB of float32 results
    g = np.hanning(9)[1:-1]
    w = np.outer(g, g).astype(np.float32)
    kept = fastcorr.correlate2d(x, w, "same", method="separable", num_threads=2)
    assert kept.ctypes.data % direct.HUGE_PAGE == 0
    copy = kept.copy()
    fastcorr.correlate2d(-x, w, "same", method="separable", num_threads=2)
    np.testing.assert_array_equal(kept, copy)
    import scipy.signal

    ref = scipy.signal.correlate2d(x[:40, :40].astype(np.float64), w.astype(np.float64), "same")
    np.testing.assert_allclose(kept[:36, :36], ref[:36, :36], rtol=1e-4, atol=1e-5)


def test_discarded_block_goes_back_to_the_system():
    # (dispatch discards the block of a call that raised, e.g. Ctrl-C in bands)
    a = direct.fresh_output((N, N), np.float64)
    view = a[1:3]
    assert direct.discard(view)
    del a, view
    gc.collect()
    assert direct.release_outputs() == 0
    assert not direct.discard(np.zeros(4))


def test_failed_call_leaves_no_idle_block(monkeypatch):
    from fastcorr._engine import costmodel, dispatch

    if not costmodel.recycles("fft", (N, N), np.dtype("f8")):
        pytest.skip("no recycled FFT outputs here")
    engine = dispatch.engine("fft")

    def fails(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "correlate", fails)
    x = np.ones((N, N))
    with pytest.raises(KeyboardInterrupt):
        fastcorr.correlate2d(x, np.ones((31, 31)), "same", method="fft")
    gc.collect()
    assert direct.release_outputs() == 0


def test_normalized_results_recycled_from_its_own_threshold():
    # normalized_convolution's fused results come from the recycled blocks from
    # 4 MiB (other code's frees trim glibc's heap between its calls)
    from fastcorr._engine import normalized as _normalized

    assert _normalized.POOL_MIN_BYTES < direct.POOL_MIN_BYTES
    n = 1024  # float64: 8 MiB, under the direct method's own threshold
    assert not direct.recycles(n * n * 8)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, n))
    x[rng.random((n, n)) < 0.05] = np.nan
    g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
    k = np.outer(g, g)

    def formula(data):  # interpolation over NaN, kernel normalised: num / den
        import scipy.signal

        valid = ~np.isnan(data)
        num = scipy.signal.convolve2d(np.where(valid, data, 0.0), k, "same")
        den = scipy.signal.convolve2d(valid.astype(float), k, "same")
        return num / den

    first = fastcorr.normalized_convolution(x, k, num_threads=2)
    assert isinstance(_block_of(first), direct._OutputBlock)
    address = first.ctypes.data
    ref = first.copy()
    del first
    gc.collect()
    second = fastcorr.normalized_convolution(2.0 * x, k, num_threads=2)
    assert second.ctypes.data == address  # the dropped result's block served again
    np.testing.assert_allclose(second, 2.0 * ref, rtol=1e-12, atol=1e-12)
    window = formula(x[:40, :40])  # interior pixels: windows inside the image
    np.testing.assert_allclose(ref[2:37, 2:37], window[2:37, 2:37], rtol=1e-10, atol=1e-12)


def _block_of(a):
    base = a
    while base is not None and not isinstance(base, direct._OutputBlock):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base


def test_show_config_reports_the_idle_blocks():
    # the memory kept for reuse is visible (show_config) and freed on request
    from fastcorr._engine.config import config_info

    assert direct.idle_outputs() == (0, 0)
    assert config_info()["recycled results"].startswith("0 idle block(s), 0 MiB kept")
    a = direct.fresh_output((N, N), np.float64)
    del a
    blocks, nbytes = direct.idle_outputs()
    assert blocks == 1 and N * N * 8 <= nbytes < N * N * 8 + direct.HUGE_PAGE
    assert config_info()["recycled results"].startswith(f"1 idle block(s), {nbytes / 2**20:.0f} MiB kept")
    assert direct.release_outputs() == nbytes
    assert direct.idle_outputs() == (0, 0)
