"""The cost model's fresh-output term (page faults of outputs the allocator
maps afresh on every call) and the direct/FFT crossovers it moves."""
import numpy as np
import pytest

from fastcorr._engine import costmodel

pytest.importorskip("fastcorr.methods.direct")


def _est(method, n, k, dtype, threads=2):
    return costmodel.estimate(method, (n, n), (k, k), (n, n), np.dtype(dtype), threads)


@pytest.mark.parametrize("method", ["direct", "separable", "im2col"])
def test_fresh_bytes_only_above_the_mmap_threshold(method, monkeypatch):
    from fastcorr.methods import direct

    # (the direct method's big outputs are recycled blocks: no fresh pages)
    monkeypatch.setattr(direct, "RECYCLE_OUTPUTS", False)
    c = costmodel.constants()[method]
    for n, dtype, fresh in ((1024, "f8", False), (2048, "f4", False), (2048, "f8", True), (4096, "f4", True)):
        u = costmodel._units(method, (n, n), (7, 7), (n, n), np.dtype(dtype))
        nbytes = n * n * np.dtype(dtype).itemsize
        assert u["fresh"] == (nbytes if fresh else 0.0)
    # the term is added on top of the rest, with its own thread gain
    with_fresh = {t: _est(method, 4096, 7, "f8", t) for t in (1, 2)}
    monkeypatch.setattr(costmodel, "_fresh_bytes", lambda out, dtype: 0.0)
    for t in (1, 2):
        par = 1.0 + c["fresh_par"] * (t - 1)
        assert with_fresh[t] - _est(method, 4096, 7, "f8", t) == pytest.approx(4096 * 4096 * 8 * c["fresh"] / par)


def test_fresh_term_skipped_for_small_outputs():
    assert costmodel._fresh_bytes(1024 * 1024, np.dtype("f8")) == 0.0
    assert costmodel._fresh_bytes(costmodel.FRESH_OUTPUT_BYTES // 8 + 1, np.dtype("f8")) > 0


@pytest.mark.skipif("d8" not in costmodel.constants()["fft"], reason="no ducc0 constants")
def test_float64_crossovers():
    pytest.importorskip("ducc0")
    from fastcorr.methods import fft

    if fft.ducc_cost((4096, 4096), (11, 11), np.dtype("f8")) is None:
        pytest.skip("the FFT method is not on its ducc0 tiles here")
    # measured 2026-12-06 with recycled output blocks, 'same', one thread,
    # CPU time (ms direct / FFT): 4096² float64 9x9 85 / 90, 11x11 121 / 86;
    # 2048² float64 9x9 22 / 27, 11x11 31 / 27; two threads: 1024² float64
    # 11x11 4.3 / 4.5, 13x13 6.2 / 4.6
    for threads in (1, 2):
        assert _est("direct", 4096, 9, "f8", threads) < _est("fft", 4096, 9, "f8", threads)
        assert _est("fft", 4096, 11, "f8", threads) < _est("direct", 4096, 11, "f8", threads)
        assert _est("direct", 2048, 9, "f8", threads) < _est("fft", 2048, 9, "f8", threads)
    assert _est("direct", 1024, 11, "f8") < _est("fft", 1024, 11, "f8")
    assert _est("fft", 1024, 13, "f8") < _est("direct", 1024, 13, "f8")


def test_recycled_fft_output_spares_its_bytes(monkeypatch):
    from fastcorr.methods import fft

    if not costmodel.recycles("fft", (4096, 4096), np.dtype("f8")):
        pytest.skip("no recycled FFT outputs here")
    if fft.ducc_cost((4096, 4096), (31, 31), np.dtype("f8")) is None:
        pytest.skip("the FFT method is not on its ducc0 tiles here")
    recycled = _est("fft", 4096, 31, "f8", 1)
    monkeypatch.setattr(costmodel, "RECYCLED_FFT_OUTPUTS", False)
    fresh = _est("fft", 4096, 31, "f8", 1)
    assert fresh - recycled == pytest.approx(4096 * 4096 * 8 * costmodel.constants()["fft"]["drecycled"])
    # below the recycled sizes nothing changes
    assert not costmodel.recycles("fft", (1024, 1024), np.dtype("f8"))
