"""The fused sweep of normalized_convolution (fastcorr.methods.normalized) on
its own paths: the certainty's sparse row pass (long kernels), strips of
columns (large kernels on wide images), four output rows at a time (any
height), against astropy.convolution.convolve and the float64 formula of
tests/test_normalized.py.
"""
import warnings

import numpy as np
import pytest

import fastcorr
from fastcorr.methods import normalized as sweep

from test_normalized import _close, _data, _gauss, naive

BOUNDARIES = [None, "fill", "wrap", "extend"]


def _ours(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fastcorr.normalized_convolution(*args, **kwargs)


@pytest.fixture
def counted(monkeypatch):
    """The fused sweep's calls (a list of their shapes), and small strips:
    every image here wider than ~100 columns is cut in several."""
    from fastcorr._engine import normalized as engine

    calls = []
    real = engine._fused.normalized_rank1
    monkeypatch.setattr(engine._fused, "normalized_rank1", lambda *a: calls.append(a[6]) or real(*a))
    monkeypatch.setattr(sweep, "RING_BYTES", 48 * 1024)
    monkeypatch.setattr(sweep, "MIN_STRIP", 40)
    return calls


@pytest.fixture(scope="module")
def astropy_convolve():
    conv = pytest.importorskip("astropy.convolution")

    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return conv.convolve(*args, **kwargs)

    return run


def _holey(shape, frac, seed):
    x = _data(shape, frac=frac, seed=seed, hole=False)
    x[5:30, 40:75] = np.nan  # larger than the kernels: outputs with no certain pixel under them
    return x


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("nan_treatment", ["interpolate", "fill"])
@pytest.mark.parametrize("preserve_nan", [False, True])
def test_sparse_rows_and_strips_match_astropy(astropy_convolve, counted, boundary, nan_treatment, preserve_nan):
    x = _holey((45, 300), 0.05, 1)
    k = _gauss(17, 21)  # rank 1, 21 taps per row: the certainty's row pass is sparse
    kw = dict(boundary=boundary, nan_treatment=nan_treatment, preserve_nan=preserve_nan)
    got = _ours(x, k, **kw)
    assert counted, "the fused sweep did not run"
    _close(got, astropy_convolve(x, k, **kw), atol=1e-10)
    for normalize_kernel in (False,):
        ref = astropy_convolve(x, 3 * k, normalize_kernel=normalize_kernel, **kw)
        _close(_ours(x, 3 * k, normalize_kernel=normalize_kernel, **kw), ref, atol=1e-9)


@pytest.mark.parametrize("frac", [0.02, 0.3, 0.7])
def test_dense_fallback_and_nan_fill_match_astropy(astropy_convolve, counted, frac):
    """Many missing pixels (the sparse pass gives way to the dense one) and a
    NaN fill value (the outside has certainty 0: listed like missing pixels)."""
    x = _holey((40, 260), frac, 2)
    k = _gauss(13, 31)
    for boundary, fill_value in (("fill", np.nan), ("fill", 0.5), ("wrap", 0.0), ("extend", 0.0)):
        kw = dict(boundary=boundary, fill_value=fill_value)
        _close(_ours(x, k, **kw), astropy_convolve(x, k, **kw), atol=1e-10)
    assert counted


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_float_certainty_and_output_certainty(counted, boundary):
    """Certainty mostly 1 with some fractional and zero pixels: the sparse
    pass weights each listed pixel by 1 - c."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 2, (38, 230))
    c = np.ones_like(x)
    some = rng.random(x.shape)
    c[some < 0.04] = rng.random(int((some < 0.04).sum()))
    c[some > 0.97] = 0.0
    x[(some > 0.97) & (rng.random(x.shape) < 0.5)] = np.nan  # NaN under certainty 0: must not leak
    c[3:20, 100:140] = 0.0
    k = _gauss(15, 25)
    ref, ref_c = naive(np.where(c == 0, 0.0, x), k, c, boundary=boundary)
    got, got_c = _ours(x, k, c, boundary=boundary, return_certainty=True)
    _close(got, ref, atol=1e-10)
    np.testing.assert_allclose(got_c, ref_c, rtol=0, atol=1e-12)
    assert counted  # NaN only where the formula has it (no certain pixel under the kernel): _close


@pytest.mark.parametrize("height", [1, 2, 3, 4, 5, 6, 7, 9, 13, 31])
@pytest.mark.parametrize("kshape", [(1, 13), (2, 5), (3, 3), (5, 14), (9, 1)])
def test_any_height_and_thread_count(height, kshape):
    """Output rows go four at a time through the vertical passes, the rest
    one by one: every height, kernel height and thread count agrees."""
    x = _data((height + 4, 53), frac=0.15, seed=height, hole=False)
    k = _gauss(*kshape)
    for boundary in (None, "fill", "extend"):
        if boundary is None and (x.shape[0] < kshape[0] or x.shape[1] < kshape[1]):
            continue
        ref = naive(x, k, boundary=boundary)[0]
        for threads in (1, 2, 3):
            _close(_ours(x, k, boundary=boundary, num_threads=threads, method="separable"), ref, atol=1e-10)


def test_float32_long_kernels(counted):
    x = _holey((50, 280), 0.05, 4)
    k = _gauss(21, 33)
    ref = naive(x, k)[0]
    got = _ours(x.astype(np.float32), k.astype(np.float32))
    assert got.dtype == np.float32
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    # DESIGN §4, the normalised error: max|x| sum|k| is ~3 here
    assert np.abs(got[fin] - ref[fin]).max() <= 1e-5 * np.nanmax(np.abs(x)) * np.abs(k).sum()
    assert counted


def test_strips_change_nothing(monkeypatch):
    """The same call cut in strips of columns, or not, gives the same result
    (to rounding: the sums run in the same order)."""
    x = _holey((40, 330), 0.05, 5)
    k = _gauss(15, 19)
    whole = _ours(x, k, num_threads=2)
    for ring, strip in ((32 * 1024, 16), (64 * 1024, 40), (1 << 30, 128)):
        monkeypatch.setattr(sweep, "RING_BYTES", ring)
        monkeypatch.setattr(sweep, "MIN_STRIP", strip)
        _close(_ours(x, k, num_threads=2), whole, atol=1e-13)


def test_bench_normalized_table(capsys):
    """``python -m fastcorr bench --normalized``'s table, on a small image."""
    import io

    from fastcorr._cli import main as cli
    from fastcorr._cli import normalized_bench

    out = io.StringIO()
    table = normalized_bench.side_by_side((5, 11), threads=1, rounds=1, n=64, out=out, cpu=True)
    text = out.getvalue()
    for size in (5, 11):
        row = table[size]
        assert row["fastcorr"] > 0 and row["fastcorr-float32"] > 0
        assert f"{size}x{size}" in text
        if "astropy-convolve" in row:  # astropy installed: ratios and the agreement printed
            assert "x |" in text and "agreement" in text
            assert row["max|diff|"][("fastcorr", "astropy-convolve")] < 1e-10
            assert row["max|diff|"][("fastcorr-float32", "astropy-convolve")] < 1e-5
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the flag is wired into the command line: --help lists it
        cli.main(["bench", "--help"])
    assert "--normalized" in capsys.readouterr().out


def test_results_never_share_memory_with_later_ones():
    """A slice of a dropped result keeps its values whatever is computed
    next (results were once written into memory recycled from dropped ones,
    which a view of a dropped result still pointed into)."""
    import gc

    x = _data((300, 400), frac=0.1, seed=7, hole=False)
    k = _gauss(5, 3)
    first = _ours(x, k)
    view, kept = first[10:20], first[10:20].copy()
    del first
    gc.collect()
    for i in range(4):
        y = _ours(x * (i + 2), k)
        assert not np.shares_memory(y, view)
    np.testing.assert_array_equal(view, kept)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shift", [0, 1, 3])
def test_fused_division_matches_separate_passes(monkeypatch, dtype, shift):
    """The vertical passes of four rows and their division in one sweep
    (``nk_col2x4fin``) give the separate passes' results exactly, for any
    width, height, kernel, thread count and alignment of the result (``out``
    placed ``shift`` elements into a buffer), and the float64 formula."""
    rng = np.random.default_rng(shift)
    for trial in range(12):
        h, w = int(rng.integers(4, 40)), int(rng.integers(1, 90))
        kshape = (int(rng.integers(3, 17)), int(rng.integers(1, 9)))
        x = _data((h, w), frac=float(rng.choice([0.0, 0.1, 0.6])), seed=trial, hole=False).astype(dtype)
        k = _gauss(*kshape).astype(dtype)
        kw = dict(method="separable", num_threads=int(rng.integers(1, 3)), preserve_nan=bool(trial % 2),
                  boundary=("fill", "wrap", "extend")[trial % 3])
        buf = np.empty(h * w + shift, dtype)
        out = buf[shift:].reshape(h, w)
        monkeypatch.setattr(sweep, "FUSE_FINISH", False)
        apart = _ours(x, k, **kw)
        monkeypatch.setattr(sweep, "FUSE_FINISH", True)
        got = _ours(x, k, out=out, **kw)
        assert got is out
        np.testing.assert_array_equal(got, apart)
        if dtype == np.float64:
            _close(got, naive(x, k, boundary=kw["boundary"], preserve_nan=kw["preserve_nan"])[0], atol=1e-12)


@pytest.mark.parametrize("method", ["auto", "direct", "im2col", "fft", "separable"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_out_gives_the_same_result(method, boundary):
    """``out=`` on every method and boundary: the result written there,
    equal to a new array's; the output certainty still returned."""
    x = _data((23, 31), frac=0.15, seed=3)
    k = _gauss(5, 3)
    ref, cref = _ours(x, k, boundary=boundary, method=method, return_certainty=True)
    out = np.full(x.shape, 7.0)
    got, cert = _ours(x, k, boundary=boundary, method=method, return_certainty=True, out=out)
    assert got is out
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(cert, cref)


def test_out_dtypes_and_dimensions():
    """1-D, 3-D, float32, float16 (computed in float32, written in float16)
    and integer data (float64 results) into ``out``."""
    x = _data((9, 12), frac=0.2, seed=4, hole=False)
    cases = [(x[0], _gauss(5, 5)[2]), (x.astype(np.float32), _gauss(3, 5)), (x.astype(np.float16), _gauss(3, 3)),
             (np.arange(42).reshape(6, 7), np.ones((3, 3))), (np.stack([x, 2 * x]), np.ones((2, 3, 3)))]
    for data, k in cases:
        ref = _ours(data, k)
        out = np.empty(ref.shape, ref.dtype)
        assert _ours(data, k, out=out) is out
        np.testing.assert_array_equal(out, ref)


def test_out_bad_arguments():
    x = _data((8, 9), frac=0.2, seed=5, hole=False)
    k = _gauss(3)
    c = np.ones_like(x)
    bad = [(np.empty((8, 9), np.float32), "dtype"), (np.empty((8, 10)), "shape"),
           (np.empty((9, 8)).T, "C-contiguous"), (x, "overlaps data"), (c, "overlaps certainty")]
    ro = np.empty((8, 9))
    ro.flags.writeable = False
    bad.append((ro, "read-only"))
    for out, what in bad:
        with pytest.raises(ValueError, match="out") as err:
            fastcorr.normalized_convolution(x, k, c, out=out)
        assert what in str(err.value)
    with pytest.raises(TypeError, match="out"):
        fastcorr.normalized_convolution(x, k, out=[[0.0] * 9] * 8)


def test_out_is_reused_across_calls():
    """A loop writing into one ``out``: each call's result there, and results
    returned without ``out`` never share its memory."""
    x = _data((40, 50), frac=0.05, seed=6, hole=False)
    k = _gauss(5)
    out = np.empty_like(x)
    for i in range(3):
        ref = _ours(x * (i + 1), k)
        assert not np.shares_memory(ref, out)
        assert _ours(x * (i + 1), k, out=out) is out
        np.testing.assert_array_equal(out, ref)


def test_stalling_machine_runs_on_one_thread(monkeypatch):
    """Where threaded calls stall lately (a loaded machine), a short fused call
    runs on one thread (as the engine's methods do), with the same result."""
    from fastcorr._engine import config
    from fastcorr._engine import normalized as engine

    x = _data((60, 70), frac=0.1, seed=8, hole=False)
    k = _gauss(5)
    ref = _ours(x, k, num_threads=2)
    threads = []
    real = engine._fused.normalized_rank1
    monkeypatch.setattr(engine._fused, "normalized_rank1", lambda *a: threads.append(a[-1]) or real(*a))
    monkeypatch.setattr(engine, "GAP_AWARE", False)  # (the rule for calls after the team slept: its own test)
    monkeypatch.setattr(config, "stall_expected", lambda: 1.0)
    np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)
    monkeypatch.setattr(config, "stall_expected", lambda: 0.0)
    np.testing.assert_array_equal(_ours(x, k, num_threads=2), ref)
    assert threads == [1, 2]


def test_kernel_changed_in_place_is_seen():
    """The rank-1 factors are kept by the kernel's values: a kernel array
    changed in place between calls gives the new kernel's result."""
    x = _data((30, 40), frac=0.1, seed=9, hole=False)
    k = _gauss(5, 7)
    first = _ours(x, k, method="separable")
    k[...] = np.outer(np.hanning(7)[1:6] + 0.1, np.ones(7))
    _close(_ours(x, k, method="separable"), naive(x, k)[0], atol=1e-12)
    assert not np.allclose(_ours(x, k, method="separable"), first, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_avx512_sweep_prefetch_and_merged_rows_change_no_bit(monkeypatch, astropy_convolve, dtype):
    """The vertical passes and division compiled for AVX-512VL (``AVX512_SWEEP``,
    where the CPU has it; on 512-bit vectors with ``FIN_ZMM``), the prefetches spread over each row's preparation
    (``PREFETCH_INLINE``) and both row passes made from the data row itself
    (``MERGE_ROWS``: no certainty map, 3 to 5 taps; on 512-bit vectors with
    ``ROW_ZMM``) give the other paths'
    results exactly, on the common call (interpolated NaN, normalised kernel)
    of any width (narrower than a vector, a block of 8 vectors, between),
    height, kernel, boundary and thread count, and astropy's (float64)."""
    rng = np.random.default_rng(16)
    for trial in range(16):
        h, w = int(rng.integers(5, 70)), (300, 5, 9, 13, 33, 40, 64, 71, 100, 139)[trial % 10]
        kshape = (int(rng.integers(1, 8)) * 2 + 1, (5, 3, 5, 1, 7)[trial % 5])
        x = _data((h, w), frac=float(rng.choice([0.0, 0.05, 0.3])), seed=trial, hole=False).astype(dtype)
        x[1:3, 2:9] = np.nan  # a hole wider than some kernels: outputs that stay NaN
        k = _gauss(*kshape).astype(dtype)
        boundary = ("fill", "wrap", "extend", None)[trial % 4]
        kw = dict(method="separable", num_threads=1 + trial % 2, boundary=boundary)
        got = {}
        for flags in [(False, False, False, False, False), (True, False, False, False, False),
                      (False, True, False, False, False), (False, False, True, False, False),
                      (True, False, False, True, False), (True, False, True, False, True), (True, True, True, True, True)]:
            for name, flag in zip(("AVX512_SWEEP", "PREFETCH_INLINE", "MERGE_ROWS", "FIN_ZMM", "ROW_ZMM"), flags):
                monkeypatch.setattr(sweep, name, flag)
            got[flags] = _ours(x, k, **kw)
        for flags, y in got.items():
            np.testing.assert_array_equal(y, got[(False, False, False, False, False)], err_msg=str(flags))
        if dtype == np.float64:
            ref = astropy_convolve(x, k, boundary=boundary, normalize_kernel=True)
            ref = ref if boundary is not None else ref[tuple(slice(s // 2, n - s // 2) for s, n in zip(kshape, x.shape))]
            ours = got[(True, True, True, True, True)]
            ours = ours if boundary is not None else ours[tuple(slice(s // 2, n - s // 2) for s, n in zip(kshape, x.shape))]
            np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tall_kernels_512_bit_vertical_passes_change_no_bit(monkeypatch, dtype):
    """The vertical passes of kernels taller than FUSE_FINISH_MAX_KH on
    512-bit vectors (``COL_AVX512`` 2), or 256-bit ones with 32 registers (1),
    give the AVX2 loop's results exactly, at widths around a vector's, in
    strips of columns, and the float64 formula."""
    rng = np.random.default_rng(7)
    monkeypatch.setattr(sweep, "RING_BYTES", 256 * 1024)
    for trial, (h, w) in enumerate([(90, 7), (80, 9), (75, 17), (100, 130)]):
        kshape = (int(sweep.FUSE_FINISH_MAX_KH) + 1 + 2 * trial, int(rng.choice([1, 3, 9])))
        x = _data((h, w), frac=0.1, seed=trial, hole=False).astype(dtype)
        k = _gauss(*kshape).astype(dtype)
        kw = dict(method="separable", num_threads=1 + trial % 2, boundary=("fill", "wrap", "extend")[trial % 3])
        got = []
        for mode in (0, 1, 2):
            monkeypatch.setattr(sweep, "COL_AVX512", mode)
            got.append(_ours(x, k, **kw))
        np.testing.assert_array_equal(got[1], got[0])
        np.testing.assert_array_equal(got[2], got[0])
        if dtype == np.float64:
            _close(got[2], naive(x, k, boundary=kw["boundary"])[0], atol=1e-12)
