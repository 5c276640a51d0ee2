"""N-D correlate / convolve against scipy.signal: modes, dtypes, axes, lags, errors."""
import os
import typing
import warnings

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings, strategies as st

import fastcorr
from fastcorr._engine import nd as nd_engine, validate

MODES = ["full", "same", "valid"]
METHODS = ["auto", "direct", "fft"]
INTEGERS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


def random_array(rng, shape, dtype, big=False):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        span = 2**62 if big else 60
        lo, hi = max(info.min, -span), min(info.max, span)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def assert_matches(got, want):
    assert got.shape == want.shape
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
        return
    tol = 1e-5 if want.dtype in (np.float32, np.complex64) else 1e-12
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale * 10)


def exact_reference(fn, a, b, mode):
    """scipy's result for integers, computed exactly: scipy's direct method
    in int64/uint64 wraps as the result dtype's modular arithmetic does."""
    dtype = np.result_type(a, b)
    wide = np.uint64 if dtype.kind == "u" else np.int64
    with np.errstate(over="ignore"):
        return fn(a.astype(wide), b.astype(wide), mode, method="direct").astype(dtype)


SHAPES = {
    1: [((17,), (5,)), ((6,), (9,)), ((40,), (1,)), ((8,), (8,))],
    2: [((9, 12), (3, 4)), ((5, 7), (6, 9)), ((4, 4), (4, 4))],
    3: [((7, 8, 9), (3, 2, 4)), ((5, 6, 4), (5, 7, 5)), ((6, 5, 7), (1, 3, 1))],
    4: [((4, 5, 3, 6), (2, 3, 2, 3))],
}


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("method", METHODS)
def test_float_matches_scipy(ndim, dtype, method):
    rng = np.random.default_rng(ndim * 100 + np.dtype(dtype).num)
    for s1, s2 in SHAPES[ndim]:
        a, b = random_array(rng, s1, dtype), random_array(rng, s2, dtype)
        for mode in MODES:
            for ours, ref in ((fastcorr.correlate, ss.correlate), (fastcorr.convolve, ss.convolve)):
                try:
                    want = ref(a, b, mode, method="direct")
                except ValueError:
                    with pytest.raises(ValueError, match="at least as large"):
                        ours(a, b, mode, method)
                    continue
                assert_matches(ours(a, b, mode, method), want)


@pytest.mark.parametrize("dtype", INTEGERS)
@pytest.mark.parametrize("ndim", [1, 3])
def test_integers_exact_with_overflow(dtype, ndim):
    rng = np.random.default_rng(np.dtype(dtype).num + ndim)
    for s1, s2 in SHAPES[ndim]:
        a = random_array(rng, s1, dtype, big=True)
        b = random_array(rng, s2, dtype, big=True)
        for mode in MODES:
            for ours, ref in ((fastcorr.correlate, ss.correlate), (fastcorr.convolve, ss.convolve)):
                try:
                    want = exact_reference(ref, a, b, mode)
                except ValueError:
                    continue
                assert_matches(ours(a, b, mode), want)
                assert_matches(ours(a, b, mode, "direct"), want)


def test_uint8_wraps_as_scipy():
    a = np.full(5, 200, np.uint8)
    b = np.full(3, 4, np.uint8)
    assert_matches(fastcorr.correlate(a, b), ss.correlate(a, b))
    assert_matches(fastcorr.convolve(a, b, "same"), ss.convolve(a, b, "same"))


@pytest.mark.parametrize("pair", [(np.int8, np.float32), (np.uint8, np.int8), (np.int16, np.float64),
                                  (np.float32, np.complex64), (np.int64, np.uint64), (np.float16, np.float32)])
def test_result_dtype_as_scipy(pair):
    rng = np.random.default_rng(3)
    a, b = random_array(rng, (2, 9, 3), pair[0]), random_array(rng, (2, 3, 2), pair[1])
    for mode in MODES:
        want = ss.correlate(a, b, mode)
        got = fastcorr.correlate(a, b, mode)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * max(1, np.abs(want).max()))


def test_zero_dim_and_empty():
    assert fastcorr.correlate(np.array(2.0), np.array(3j)) == ss.correlate(np.array(2.0), np.array(3j))
    assert fastcorr.correlate(np.zeros(0), np.ones(3), "same").shape == (0,)
    assert fastcorr.correlate(np.zeros((0, 3)), np.ones((2, 2)), "same").shape == (0, 3)
    full = fastcorr.convolve(np.zeros(4), np.zeros(0))
    assert full.shape == (0,)
    with pytest.raises(ValueError, match="non-empty"):
        fastcorr.correlate(np.ones(0), np.ones(0), "valid")


@pytest.mark.parametrize("method", METHODS)
def test_axes_batches_match_fftconvolve(method):
    rng = np.random.default_rng(7)
    cases = [
        ((4, 30), (1, 7), [1]),          # a batch of signals, one filter
        ((4, 30), (4, 7), [1]),          # a filter per signal
        ((1, 30), (3, 7), -1),           # one signal, three filters
        ((3, 9, 10), (3, 4, 3), [1, 2]),  # a batch of images
        ((5, 6, 7), (5, 6, 2), [2]),
        ((6, 1, 8), (2, 4, 3), [0, 1, 2]),  # a length-1 axis: broadcast, as fftconvolve
    ]
    for s1, s2, axes in cases:
        for dtype in (np.float64, np.complex128):
            a, b = random_array(rng, s1, dtype), random_array(rng, s2, dtype)
            ax = [axes] if isinstance(axes, int) else axes
            flipped = np.conj(np.flip(b, axis=ax))
            for mode in MODES:
                try:
                    want_corr = ss.fftconvolve(a, flipped, mode, axes=axes)
                    want_conv = ss.fftconvolve(a, b, mode, axes=axes)
                except ValueError:
                    continue
                assert_matches(fastcorr.correlate(a, b, mode, method, axes=axes), want_corr)
                assert_matches(fastcorr.convolve(a, b, mode, method, axes=axes), want_conv)


def test_axes_integer_batches_exact():
    rng = np.random.default_rng(8)
    a = random_array(rng, (3, 20), np.int16, big=True)
    b = random_array(rng, (3, 5), np.int16, big=True)
    want = np.stack([exact_reference(ss.correlate, a[i], b[i], "full") for i in range(3)])
    assert_matches(fastcorr.correlate(a, b, axes=1), want)


def lag_reference(a, b, lags, method="direct"):
    """The full correlation sliced at the lags asked (zero beyond its range)."""
    full = ss.correlate(a, b, "full", method=method)
    out = np.zeros([hi - lo + 1 for lo, hi in lags], dtype=full.dtype)
    src, dst = [], []
    for d, (lo, hi) in enumerate(lags):
        lag = ss.correlation_lags(a.shape[d], b.shape[d], "full")
        first, last = max(lo, lag[0]), min(hi, lag[-1])
        if last < first:
            return out
        src.append(slice(first - lag[0], last - lag[0] + 1))
        dst.append(slice(first - lo, last - lo + 1))
    out[tuple(dst)] = full[tuple(src)]
    return out


@pytest.mark.parametrize("method", METHODS)
def test_lags_match_sliced_full(method):
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64, np.complex128):
        a, b = random_array(rng, (300,), dtype), random_array(rng, (250,), dtype)
        for lags in (0, 5, (-3, 9), (-249, -240), (290, 310), (-400, -300), (1000, 1002), [(-7, 2)]):
            pairs = [(-lags, lags)] if isinstance(lags, int) else ([lags] if isinstance(lags[0], int) else lags)
            assert_matches(fastcorr.correlate(a, b, lags=lags, method=method), lag_reference(a, b, pairs))
    a, b = random_array(rng, (9, 11, 8), np.float64), random_array(rng, (4, 6, 3), np.float64)
    for lags in (2, [(-1, 3), 4, (0, 0)], [(-20, -15), 1, 1]):
        pairs = [(-l, l) if isinstance(l, int) else l for l in (lags if not isinstance(lags, int) else [lags] * 3)]
        assert_matches(fastcorr.correlate(a, b, lags=lags, method=method), lag_reference(a, b, pairs))


def test_lags_long_signals_both_methods():
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal(60_000), rng.standard_normal(50_000)
    want = lag_reference(a, b, [(-60, 40)], method="fft")
    for method in METHODS:
        assert_matches(fastcorr.correlate(a, b, lags=(-60, 40), method=method), want)
    ai = rng.integers(-1000, 1000, 6_000).astype(np.int32)
    bi = rng.integers(-1000, 1000, 5_000).astype(np.int32)
    got = fastcorr.correlate(ai, bi, lags=30)
    assert_matches(got, lag_reference(ai.astype(np.int64), bi.astype(np.int64), [(-30, 30)]).astype(np.int32))


def test_window_1d_batches_on_threads_match_a_naive_sum(monkeypatch):
    # many small batches (3 frames) in rounds (4 batches) taken by several
    # threads, windows reaching past both ends of the input: the same values
    # as a float64 loop, on any threads
    from fastcorr.methods import nd_fft
    monkeypatch.setattr(nd_fft, "WINDOW_BATCH_BYTES", 3 * 64 * 16)
    monkeypatch.setattr(nd_fft, "WINDOW_ROUND_BATCHES", 4)
    rng = np.random.default_rng(21)
    for dtype in (np.float32, np.float64, np.complex128):
        x = rng.standard_normal(3000).astype(dtype)
        w = rng.standard_normal(2500).astype(dtype)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(3000)
            w = w + 1j * rng.standard_normal(2500)
        X = np.concatenate([np.zeros(3000, complex), x.astype(complex), np.zeros(6000, complex)])
        for n, off in ((7, -3), (30, -2600), (13, 400), (50, 2990)):
            want = np.array([np.sum(w.astype(complex) * X[3000 + m + off:3000 + m + off + w.size]) for m in range(n)])
            if np.dtype(dtype).kind != "c":
                want = want.real
            scale = np.abs(x).max() * np.abs(w).sum()
            results = [nd_fft.window_1d(x, w, n, off, threads, block=64) for threads in (1, 3)]
            for got in results:
                assert got.dtype == dtype and got.shape == (n,)
                assert np.abs(got - want).max() <= (1e-5 if dtype == np.float32 else 1e-12) * scale
            assert np.array_equal(results[0], results[1])


def test_lags_with_axes():
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((3, 200)), rng.standard_normal((3, 150))
    got = fastcorr.correlate(a, b, lags=10, axes=1)
    want = np.stack([lag_reference(a[i], b[i], [(-10, 10)]) for i in range(3)])
    assert_matches(got, want)


def test_long_1d_overlap_save_and_window():
    rng = np.random.default_rng(14)
    x = rng.standard_normal(50_000).astype(np.float32)
    for K in (3, 40, 700, 3000):
        w = rng.standard_normal(K).astype(np.float32)
        for mode in MODES:
            want = ss.correlate(x.astype(np.float64), w.astype(np.float64), mode).astype(np.float32)
            for method in METHODS:
                got = fastcorr.correlate(x, w, mode, method)
                assert got.dtype == np.float32
                err = np.abs(got - want).max() / (np.abs(x).max() * np.abs(w).sum())
                assert err <= 1e-5, (K, mode, method, err)


def test_2d_runs_on_the_2d_engine(monkeypatch):
    calls = []
    real = nd_engine.dispatch.correlate_offset
    monkeypatch.setattr(nd_engine.dispatch, "correlate_offset", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(15)
    a, b = rng.standard_normal((20, 30)), rng.standard_normal((3, 5))
    assert_matches(fastcorr.correlate(a, b, "same"), ss.correlate(a, b, "same"))
    assert calls


def test_auto_avoids_fft_on_nonfinite_and_integers():
    x = np.random.default_rng(16).standard_normal((20, 20, 20))
    w = np.ones((9, 9, 9))
    x[3, 4, 5] = np.nan
    got = fastcorr.correlate(x, w, "same")
    want = ss.correlate(x, w, "same", method="direct")
    assert np.isnan(got).sum() == np.isnan(want).sum()
    with pytest.raises(ValueError, match="integer"):
        fastcorr.correlate(np.arange(10), np.arange(3), method="fft")


def test_inputs_not_modified_and_array_likes():
    a = np.arange(12.0).reshape(3, 4)[:, ::2]  # not contiguous
    b = np.array([[1.0, 2.0]], dtype=">f8")     # big-endian
    a0, b0 = a.copy(), b.copy()
    assert_matches(fastcorr.correlate(a[None], b[None], "full"), ss.correlate(a[None], b[None], "full"))
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    assert_matches(fastcorr.convolve([1, 2, 3], [1, 1]), ss.convolve([1, 2, 3], [1, 1]))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(in1=np.ones(3), in2=np.ones((2, 2))), ValueError, "same dimensionality"),
    (dict(mode="middle"), ValueError, "mode"),
    (dict(method="winograd"), ValueError, "method"),
    (dict(in1=np.ones((3, 2)), in2=np.ones((2, 3)), mode="valid"), ValueError, "at least as large"),
    (dict(lags=3, mode="same"), ValueError, "lags needs mode='full'"),
    (dict(lags=(5, 2)), ValueError, "lo <= hi"),
    (dict(lags=-1), ValueError, "non-negative"),
    (dict(lags="a"), TypeError, "lags"),
    (dict(lags=[(0, 1), (0, 1)]), ValueError, "one entry per correlated axis"),
    (dict(lags=(0.5, 2)), TypeError, "lags"),
    (dict(axes=5), ValueError, "axes"),
    (dict(axes=[0, 0]), ValueError, "axes"),
    (dict(axes=[]), ValueError, "axes"),
    (dict(axes="x"), TypeError, "axes"),
    (dict(in1=np.ones((2, 5)), in2=np.ones((3, 2)), axes=1), ValueError, "incompatible shapes"),
    (dict(in1=np.array(["a", "b"])), TypeError, "in1"),
    (dict(in2=np.array([True, False])), TypeError, "in2"),
    (dict(num_threads=0), ValueError, "num_threads"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    args = dict(in1=np.ones(6), in2=np.ones(3))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fastcorr.correlate(**args)


def test_convolve_has_no_lags():
    with pytest.raises(TypeError):
        fastcorr.convolve(np.ones(3), np.ones(2), lags=1)  # type: ignore[call-arg]


def test_literal_type_lists_the_methods():
    assert typing.get_args(validate.NdMethod) == validate.ND_METHODS


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3).flatmap(lambda nd: st.tuples(
    st.lists(st.integers(1, 7), min_size=nd, max_size=nd),
    st.lists(st.integers(1, 7), min_size=nd, max_size=nd))),
    st.sampled_from(MODES), st.sampled_from(["correlate", "convolve"]), st.integers(0, 2**31))
def test_property_shapes_and_values_as_scipy(shapes, mode, func, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    ref = getattr(ss, func)
    try:
        want = ref(a, b, mode, method="direct")
    except ValueError:
        with pytest.raises(ValueError):
            getattr(fastcorr, func)(a, b, mode)
        return
    for method in METHODS:
        assert_matches(getattr(fastcorr, func)(a, b, mode, method), want)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(-60, 60), st.integers(0, 30), st.integers(0, 2**31))
def test_property_lags_are_the_full_result_sliced(n1, n2, lo, width, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n1), rng.standard_normal(n2)
    got = fastcorr.correlate(a, b, lags=(lo, lo + width))
    assert_matches(got, lag_reference(a, b, [(lo, lo + width)]))
    # the 'same' and 'valid' modes are windows of the full result too
    for mode in ("same", "valid"):
        try:
            want = ss.correlate(a, b, mode)
        except ValueError:
            continue
        if mode == "valid":
            lags = ss.correlation_lags(n1, n2, mode)
        else:
            # correlate's 'same' starts at lag -(n2 // 2) (scipy 1.17's
            # correlation_lags numbers an even in2 one lag off)
            lags = np.arange(n1) - n2 // 2
        assert_matches(fastcorr.correlate(a, b, lags=(int(lags[0]), int(lags[-1]))), want)


def test_threads_agree():
    rng = np.random.default_rng(17)
    a, b = rng.standard_normal((20, 30, 40)).astype(np.float32), rng.standard_normal((3, 3, 3)).astype(np.float32)
    one = fastcorr.correlate(a, b, "same", "direct", num_threads=1)
    two = fastcorr.correlate(a, b, "same", "direct", num_threads=2)
    np.testing.assert_array_equal(one, two)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastcorr.correlate(a, b, "same", num_threads=2)


def test_nd_bench_quick():
    # One round of the reduced grid: a time per case and a ratio.
    from fastcorr._cli import main as cli, nd_bench

    rows = nd_bench.run(threads=1, quick=True, rounds=1, stream=None)
    assert len(rows) == 5
    assert all(r[1] > 0 and r[2] > 0 and r[4] > 0 for r in rows)
    assert cli.main(["bench", "--nd", "--quick", "--threads", "1"]) == 0


@pytest.mark.parametrize("func", ["correlate", "convolve"])
def test_dask_twin_matches_in_memory(func):
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fd

    rng = np.random.default_rng(18)
    cases = [((30, 31, 29), 11, (3, 4, 5), np.float32), ((90,), 17, (9,), np.complex128),
             ((25, 27), (7, 9), (6, 5), np.int16), ((12, 13, 11, 4), (5, 6, 5, 4), (3, 2, 3, 2), np.float64)]
    for shape, chunks, kshape, dtype in cases:
        v, w = random_array(rng, shape, dtype), random_array(rng, kshape, dtype)
        x = da.from_array(v, chunks=chunks)
        for mode in MODES:
            got = getattr(fd, func)(x, w, mode).compute(scheduler="synchronous")
            assert_matches(got, getattr(fastcorr, func)(v, w, mode))
    with pytest.raises(ValueError, match="at least as large"):
        fd.correlate(da.ones(3, chunks=2), np.ones(5), "valid")
    with pytest.raises(ValueError, match="mode"):
        fd.convolve(da.ones(3, chunks=2), np.ones(2), "middle")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_one_kernels_run_as_passes(dtype, monkeypatch):
    rng = np.random.default_rng(19)
    g = np.exp(-np.linspace(-2, 2, 9) ** 2)
    k = np.multiply.outer(np.multiply.outer(g, 2 * g[:7]), g[1:]).astype(dtype)
    v = random_array(rng, (30, 28, 26), dtype)
    passes = []
    real = nd_engine._separable
    monkeypatch.setattr(nd_engine, "_separable", lambda *a: passes.append(1) or real(*a))
    for mode in MODES:
        for ours, ref in ((fastcorr.correlate, ss.correlate), (fastcorr.convolve, ss.convolve)):
            want = ref(v.astype(np.float64), k.astype(np.float64), mode).astype(dtype)
            got = ours(v, k, mode)
            assert got.dtype == dtype
            err = np.abs(got - want).max() / (np.abs(v).max() * np.abs(k).sum())
            assert err <= (1e-5 if dtype == np.float32 else 1e-12)
    assert len(passes) == 6
    # a kernel of rank 2 is not separated
    passes.clear()
    k2 = k + np.multiply.outer(np.multiply.outer(rng.random(9), rng.random(7)), rng.random(8)).astype(dtype)
    np.testing.assert_allclose(fastcorr.correlate(v, k2, "same"), ss.correlate(v, k2, "same"),
                               atol=1e-4 * np.abs(k2).sum())
    assert not passes


def _valid_reference(P, w):
    """'valid' correlation in float64, one shifted product per tap."""
    P64, w64 = P.astype(np.float64), w.astype(np.float64)
    shape = tuple(p - k + 1 for p, k in zip(P.shape, w.shape))
    out = np.zeros(shape)
    for idx in np.ndindex(*w.shape):
        out += w64[idx] * P64[tuple(slice(i, i + s) for i, s in zip(idx, shape))]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pshape,kshape", [
    ((9, 11, 70), (3, 3, 3)),      # rows of 68 (f32: two blocks and an overlapping one)
    ((4, 14, 7), (2, 3, 3)),       # rows of 5: masked vectors only
    ((3, 10, 21), (1, 4, 5)),      # rows of 17: one-vector blocks, 7 output rows (3 + 3 + 1)
    ((3, 4, 5, 40), (2, 2, 3, 3)),  # 4-D: the kernel's two leading axes as channels
    ((2, 8, 2060), (1, 3, 5)),     # rows longer than one chunk of columns
    ((5, 12, 40), (5, 5, 5)),      # taps >= ROWS3_MIN_TAPS on wide rows
    ((5, 12, 40), (3, 1, 1)),      # thin kernels stay on the segments' loop
])
def test_nd_direct_both_loops_match_reference(dtype, pshape, kshape):
    from fastcorr.methods import nd_direct
    rng = np.random.default_rng(sum(pshape) + sum(kshape))
    P = rng.standard_normal(pshape).astype(dtype)
    w = rng.standard_normal(kshape).astype(dtype)
    want = _valid_reference(P, w)
    tol = (1e-5 if dtype == np.float32 else 1e-12) * np.abs(P).max() * np.abs(w).sum()
    old = nd_direct.ROWS3_MIN_TAPS
    try:
        for min_taps in (0, 10**9):   # the three-row loop wherever it fits; never
            nd_direct.ROWS3_MIN_TAPS = min_taps
            for nt in (1, 2):
                out = np.full(want.shape, np.nan, dtype)
                nd_direct.correlate_valid(P, w, out, nt)
                assert np.abs(out - want).max() <= tol
            # a strided view of a larger array (the zero-fill path's regions)
            big = np.zeros(pshape[:-1] + (pshape[-1] + 3,), dtype)
            big[..., 2:2 + pshape[-1]] = P
            got = nd_direct.correlate_region(big[..., 2:2 + pshape[-1]], w, want.shape, 2)
            assert np.abs(got - want).max() <= tol
    finally:
        nd_direct.ROWS3_MIN_TAPS = old
    with pytest.raises(ValueError, match="shape"):
        nd_direct.correlate_valid(P, w, np.empty(want.shape[:-1] + (want.shape[-1] + 1,), dtype), 1)


@pytest.mark.parametrize("mode", MODES)
def test_long_direct_calls_run_in_slabs(mode, monkeypatch):
    rng = np.random.default_rng(23)
    v = rng.standard_normal((11, 9, 10))
    w = rng.standard_normal((3, 4, 5))
    want = ss.correlate(v, w, mode, method="direct")
    monkeypatch.setattr(nd_engine, "SLAB_WORK", 500.0)   # a slab per few output planes
    calls = []
    real = nd_engine.lowering.correlate_offset
    monkeypatch.setattr(nd_engine.lowering, "correlate_offset", lambda *a: calls.append(1) or real(*a))
    assert_matches(fastcorr.correlate(v, w, mode, method="direct"), want)
    assert len(calls) >= 2


def test_nd_constants_come_from_the_calibration_file(tmp_path, monkeypatch):
    import json

    from fastcorr._engine import costmodel
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    args = ("direct", (40, 40, 160), (5, 1, 9), (40, 40, 160), (-2, 0, -4), [0, 1, 2], np.dtype(np.float32), 1)
    costmodel.reset_constants()
    try:
        before = nd_engine.estimate(*args)
        path = costmodel.calibration_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"version": 1, "constants": {"nd": {"direct4": 1e-6}}}, f)
        costmodel.reset_constants()
        assert nd_engine.estimate(*args) > 10 * before
    finally:
        costmodel.reset_constants()
