"""fastcorr.ndimage against scipy.ndimage: values, dtypes, modes, origins, axes,
outputs, 1-D to 4-D, complex, errors; the new boundary rules of correlate2d
against a padded reference; property tests of the mode and origin rules."""
import numpy as np
import pytest
import scipy.ndimage as sn
from hypothesis import given, settings, strategies as st

import fastcorr
import fastcorr.ndimage as fn

MODES = ["reflect", "constant", "nearest", "mirror", "wrap", "grid-constant", "grid-mirror", "grid-wrap"]
#: ndimage mode -> numpy.pad mode (the independent reference of the extension rules)
PAD = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect", "nearest": "edge",
       "wrap": "wrap", "grid-wrap": "wrap", "constant": "constant", "grid-constant": "constant"}
SHAPES = {1: (13,), 2: (9, 11), 3: (6, 7, 8), 4: (4, 5, 3, 6)}
KERNELS = {1: (4,), 2: (3, 4), 3: (3, 2, 3), 4: (2, 3, 1, 3)}
rng = np.random.default_rng(1234)


def _data(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _close(a, b, dtype_in):
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.kind in "iub":
        np.testing.assert_array_equal(a, b)
    else:
        tol = 2e-5 if np.dtype(dtype_in) in (np.float32, np.complex64) or a.dtype in (np.float32, np.complex64) \
            else 1e-12
        scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.complex128])
def test_correlate_convolve_every_mode(ndim, dtype):
    x = _data(SHAPES[ndim], dtype)
    w = rng.standard_normal(KERNELS[ndim])
    if ndim == 2:
        w = w.astype(np.int64) if np.dtype(dtype).kind in "iu" else w
    for mode in MODES:
        for origin in ((0, -1, (0, 1, 0, 1)[:ndim] if ndim > 1 else 1) if ndim <= 2 else ((0, 1, 0, 1)[:ndim],)):
            for f in ("correlate", "convolve"):
                kw = dict(mode=mode, cval=1.5, origin=origin)
                try:
                    ref = getattr(sn, f)(x, w, **kw)
                except ValueError:
                    with pytest.raises(ValueError):
                        getattr(fn, f)(x, w, **kw)
                    continue
                _close(getattr(fn, f)(x, w, **kw), ref, dtype)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_separable_filters_every_mode(ndim):
    dtypes = (np.float64, np.float32, np.uint8, np.complex64) if ndim <= 2 else (np.float32, np.uint8)
    for dtype in dtypes:
        x = _data(SHAPES[ndim], dtype)
        for mode in (MODES if ndim <= 2 else MODES[:5]):
            cases = [("gaussian_filter", (1.3,), {}), ("gaussian_filter1d", (0.8,), dict(order=1)),
                     ("uniform_filter", (3,), {}), ("uniform_filter1d", (4,), dict(origin=1)),
                     ("correlate1d", ([1.0, -2.0, 0.5],), dict(origin=-1)),
                     ("convolve1d", ([1.0, -2.0, 0.5, 3.0],), dict(axis=0)),
                     ("sobel", (), {}), ("prewitt", (), dict(axis=0)), ("laplace", (), {})]
            for name, args, kw in cases:
                if np.dtype(dtype).kind == "c" and name in ("sobel", "prewitt", "laplace"):
                    continue
                kw = dict(kw, mode=mode, cval=0.5) if name not in ("sobel", "prewitt", "laplace") \
                    else dict(kw, mode=mode)
                ref = getattr(sn, name)(x, *args, **kw)
                got = getattr(fn, name)(x, *args, **kw)
                if np.dtype(dtype).kind in "iu" and name.startswith("gaussian"):
                    # non-integer taps: float64 sums in another order may fall on
                    # the other side of an integer before truncation (rarely)
                    assert got.dtype == ref.dtype
                    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
                    assert np.mean(got != ref) < 0.02
                else:
                    _close(got, ref, dtype)


def test_origin_axes_output_per_axis_modes():
    x = _data((7, 8, 9), np.float64)
    w2 = rng.standard_normal((3, 4))
    for axes in [(0, 1), (1, 2), (2, 0), (-1, -3)]:
        for origin in [0, (1, -1), (-1, 1)]:
            _close(fn.correlate(x, w2, axes=axes, origin=origin, mode="mirror"),
                   sn.correlate(x, w2, axes=axes, origin=origin, mode="mirror"), np.float64)
            _close(fn.convolve(x, w2, axes=axes, origin=origin, mode="wrap"),
                   sn.convolve(x, w2, axes=axes, origin=origin, mode="wrap"), np.float64)
    modes = ["nearest", "wrap"]
    _close(fn.gaussian_filter(x, (1, 2), axes=(0, 2), mode=modes, order=(0, 1)),
           sn.gaussian_filter(x, (1, 2), axes=(0, 2), mode=modes, order=(0, 1)), np.float64)
    _close(fn.uniform_filter(x, (3, 2, 4), mode=["mirror", "constant", "reflect"], origin=(0, -1, 1)),
           sn.uniform_filter(x, (3, 2, 4), mode=["mirror", "constant", "reflect"], origin=(0, -1, 1)), np.float64)
    _close(fn.sobel(x, axis=1, mode=["wrap", "nearest", "mirror"]),
           sn.sobel(x, axis=1, mode=["wrap", "nearest", "mirror"]), np.float64)
    _close(fn.laplace(x, axes=(0, 2), mode=["wrap", "mirror"]), sn.laplace(x, axes=(0, 2), mode=["wrap", "mirror"]),
           np.float64)
    # output as an array (written in place, returned) and as dtypes
    out = np.empty(x.shape, np.float32)
    assert fn.gaussian_filter(x, 1, output=out) is out
    _close(out, sn.gaussian_filter(x, 1, output=np.float32), np.float32)
    xi = rng.integers(-50, 50, (20, 21)).astype(np.int32)
    for odt in (np.int8, np.uint16, np.float32, np.int64):
        # dyadic weights: every float64 sum exact, so the truncation is too
        for f, args in (("correlate", (np.array([[0.375, -0.75], [0.25, 0.5]]),)), ("uniform_filter", (3,)),
                        ("sobel", ()), ("laplace", ())):
            ref = getattr(sn, f)(xi, *args, output=odt)
            got = getattr(fn, f)(xi, *args, output=odt)
            assert got.dtype == np.dtype(odt)
            if np.dtype(odt).kind == "f":
                _close(got, ref, odt)
            else:
                np.testing.assert_array_equal(got, ref)  # truncated as scipy writes them
    # other weights: where the exact value is an integer, scipy's float64 sum
    # (in its order of taps) and fastcorr's (FMA, its own order) may fall on
    # either side of it before truncation
    w = np.array([[0.3, -0.7], [0.1, 0.5]])
    got, ref = fn.correlate(xi, w, output=np.int16), sn.correlate(xi, w, output=np.int16)
    assert np.abs(got.astype(int) - ref).max() <= 1 and np.mean(got != ref) < 0.05


def test_bool_and_scalar_inputs():
    """bool outputs as scipy writes them (the value truncated, then nonzero:
    a mean of 0.5 is False) and 0-d inputs. (Negative values are left out:
    scipy stores them as raw bytes of a bool array, -1 as 255, which its
    next pass then reads as 255; fastcorr writes True.)"""
    b = rng.random((6, 7)) < 0.4
    for f, args in (("correlate", (np.ones((2, 2)),)), ("uniform_filter", (2,)), ("gaussian_filter", (1.0,))):
        got, ref = getattr(fn, f)(b, *args), getattr(sn, f)(b, *args)
        assert got.dtype == ref.dtype == np.bool_
        np.testing.assert_array_equal(got, ref)
    for f in ("correlate", "convolve"):
        got, ref = getattr(fn, f)(np.array(3.0), np.array(2.0)), getattr(sn, f)(np.array(3.0), np.array(2.0))
        assert got.shape == ref.shape == () and got == ref


def test_kernel_larger_than_image():
    """ndimage's modes extend the input again and again (the kernel wider than it)."""
    for shape in [(2,), (1, 3), (2, 2), (3, 1, 2)]:
        x = _data(shape, np.float64)
        w = rng.standard_normal((7,) * len(shape))
        for mode in MODES:
            _close(fn.correlate(x, w, mode=mode, cval=-2.0), sn.correlate(x, w, mode=mode, cval=-2.0), np.float64)
        _close(fn.uniform_filter1d(x, 9, mode="mirror"), sn.uniform_filter1d(x, 9, mode="mirror"), np.float64)


@pytest.mark.parametrize("method", ["auto", "direct", "im2col", "fft", "separable"])
def test_methods_and_threads_agree(method):
    x = _data((40, 37), np.float32)
    w = np.outer(rng.standard_normal(5), rng.standard_normal(3)).astype(np.float32)
    for mode in ("reflect", "mirror", "nearest", "wrap", "constant"):
        ref = sn.correlate(x.astype(np.float64), w.astype(np.float64), mode=mode, cval=0.25)
        got = fn.correlate(x, w, mode=mode, cval=0.25, method=method, num_threads=2)
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(x).max() * np.abs(w).sum()
    v = _data((12, 10, 14), np.float64)
    w3 = rng.standard_normal((3, 5, 4))
    if method in ("im2col", "separable"):
        with pytest.raises(ValueError, match="1-D and 2-D"):
            fn.correlate(v, w3, method=method)
    else:
        for nt in (1, 2):
            _close(fn.correlate(v, w3, method=method, num_threads=nt, mode="nearest"),
                   sn.correlate(v, w3, mode="nearest"), np.float64)


def test_float32_accuracy_large_kernel():
    """§4: float32 within 1e-5 of the float64 result, normalised."""
    x = rng.standard_normal((150, 160)).astype(np.float32)
    for k in ((11, 11), (3, 3, 3)):
        xx = x if len(k) == 2 else x[:24].reshape(24, 10, 16 * 10 // 10)
        w = rng.standard_normal(k).astype(np.float32)
        got = fn.correlate(xx, w, mode="mirror")
        ref = sn.correlate(xx.astype(np.float64), w.astype(np.float64), mode="mirror")
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() / (np.abs(xx).max() * np.abs(w).sum()) <= 1e-5
    # gain 1 kept: a float32 smoothing of a constant image stays that constant
    c = np.full((64, 64), 1000.0, np.float32)
    assert np.abs(fn.gaussian_filter(c, 1.7) - 1000.0).max() <= 1000.0 * 2e-7


@pytest.mark.parametrize("boundary,pad", [("nearest", "edge"), ("mirror", "reflect"), ("symm", "symmetric"),
                                          ("wrap", "wrap")])
@pytest.mark.parametrize("method", ["auto", "direct", "im2col", "fft", "separable"])
def test_correlate2d_new_boundaries(boundary, pad, method):
    """'nearest' and 'mirror' reach correlate2d/convolve2d in every method."""
    from scipy.signal import correlate2d as sp_c2d
    for shape, kshape in [((9, 12), (3, 5)), ((2, 3), (5, 7)), ((1, 6), (3, 3))]:
        x = rng.standard_normal(shape)
        w = np.outer(rng.standard_normal(kshape[0]), rng.standard_normal(kshape[1]))
        P = np.pad(x, 12, mode=pad)
        full = sp_c2d(P, w, "valid")[12 - kshape[0] + 1:12 + shape[0], 12 - kshape[1] + 1:12 + shape[1]]
        got = fastcorr.correlate2d(x, w, "full", boundary=boundary, method=method)
        np.testing.assert_allclose(got, full, atol=1e-10)
        conv = fastcorr.convolve2d(x, w, "full", boundary=boundary, method=method)
        np.testing.assert_allclose(conv, fastcorr.correlate2d(x, w[::-1, ::-1], "full", boundary=boundary),
                                   atol=1e-10)
    xi = rng.integers(0, 9, (6, 7))
    wi = rng.integers(-3, 3, (3, 2))
    if method in ("auto", "direct"):
        ref = sp_c2d(np.pad(xi, 4, mode=pad), wi, "valid")[4 - 2:4 + 6, 4 - 1:4 + 7]
        np.testing.assert_array_equal(fastcorr.correlate2d(xi, wi, "full", boundary=boundary, method=method), ref)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.sampled_from(MODES), st.data())
def test_property_delta_kernel_is_a_shift(ndim, mode, data):
    """A kernel with one 1 at index p and origin o reads x[n + p - k//2 - o]
    of the input extended by the mode (numpy.pad as reference)."""
    shape = tuple(data.draw(st.integers(1, 6)) for _ in range(ndim))
    k = tuple(data.draw(st.integers(1, 5)) for _ in range(ndim))
    p = tuple(data.draw(st.integers(0, kk - 1)) for kk in k)
    o = tuple(data.draw(st.integers(-(kk // 2), (kk - 1) // 2)) for kk in k)
    x = rng.standard_normal(shape)
    w = np.zeros(k)
    w[p] = 1.0
    m = 12
    padded = np.pad(x, m, mode=PAD[mode], **({"constant_values": 0.5} if PAD[mode] == "constant" else {}))
    sl = tuple(slice(m + pp - kk // 2 - oo, m + pp - kk // 2 - oo + n) for pp, kk, oo, n in zip(p, k, o, shape))
    np.testing.assert_allclose(fn.correlate(x, w, mode=mode, cval=0.5, origin=o), padded[sl], atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.sampled_from(MODES), st.booleans(), st.data())
def test_property_matches_scipy(ndim, mode, convolution, data):
    shape = tuple(data.draw(st.integers(1, 7)) for _ in range(ndim))
    k = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    o = tuple(data.draw(st.integers(-(kk // 2), (kk - 1) // 2)) for kk in k)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(k)
    f = "convolve" if convolution else "correlate"
    if convolution:  # convolve mirrors the origin: keep it inside scipy's bounds
        o = tuple(min(max(-oo - (0 if kk & 1 else 1), -(kk // 2)), (kk - 1) // 2) for oo, kk in zip(o, k))
        o = tuple(-oo - (0 if kk & 1 else 1) for oo, kk in zip(o, k))
    np.testing.assert_allclose(getattr(fn, f)(x, w, mode=mode, origin=o, cval=2.0),
                               getattr(sn, f)(x, w, mode=mode, origin=o, cval=2.0), atol=1e-12)


def test_bad_input():
    x = np.ones((5, 6))
    err = fn.NdimageArgumentError
    assert issubclass(err, ValueError) and issubclass(err, RuntimeError)
    with pytest.raises(err, match="mode"):
        fn.correlate(x, np.ones((3, 3)), mode="edge")
    with pytest.raises(err, match="weights.ndim"):
        fn.correlate(x, np.ones(3))
    with pytest.raises(err, match="weights.ndim"):
        fn.correlate(x, np.ones((3, 0)))
    with pytest.raises(err, match="sequence of modes"):
        fn.correlate(x, np.ones((3, 3)), mode=["wrap", "wrap"])
    with pytest.raises(err, match="length equal to input rank"):
        fn.gaussian_filter(x, [1, 2, 3])
    with pytest.raises(err, match="no filter weights"):
        fn.correlate1d(x, [])
    with pytest.raises(err, match="filter size"):
        fn.uniform_filter1d(x, 0)
    with pytest.raises(err, match="output shape"):
        fn.correlate(x, np.ones((3, 3)), output=np.empty((5, 5)))
    with pytest.raises(ValueError, match="origin"):
        fn.correlate(x, np.ones((3, 3)), origin=2)
    with pytest.raises(ValueError, match="origin"):
        fn.correlate1d(x, [1, 1], origin=-2)
    with pytest.raises(ValueError, match="origin"):
        fn.uniform_filter1d(x, 2, origin=1)
    with pytest.raises(ValueError, match="Radius"):
        fn.gaussian_filter1d(x, 1, radius=-1)
    with pytest.raises(ValueError, match="order"):
        fn.gaussian_filter1d(x, 1, order=-1)
    with pytest.raises(ValueError, match="complex-valued cval"):
        fn.correlate(x, np.ones((2, 2), complex), cval=1j)
    with pytest.raises(ValueError, match="method"):
        fn.correlate(x, np.ones((3, 3)), method="winograd")
    with pytest.raises(ValueError, match="out of range"):
        fn.correlate(x, np.ones(3), axes=2)
    with pytest.raises(ValueError, match="unique"):
        fn.uniform_filter(x, axes=(0, 0))
    with pytest.raises(TypeError, match="integer"):
        fn.uniform_filter(x, axes=(1.5,))
    with pytest.raises(TypeError):
        fn.correlate(np.array(["a", "b"]), [1])
    with pytest.raises(ValueError, match="num_threads"):
        fn.correlate(x, np.ones((3, 3)), num_threads=0)
    with pytest.raises(ValueError):
        fastcorr.correlate2d(x, np.ones((3, 3)), boundary="reflect")
    # inputs are never modified; output may be the input itself
    y = x.copy()
    fn.gaussian_filter(y, 1, output=y)
    np.testing.assert_allclose(y, sn.gaussian_filter(x, 1))


def test_dask_twins_equal_in_memory():
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fd

    v = _data((21, 18, 16), np.float32)
    dv = da.from_array(v, chunks=(7, 9, 5))
    w = rng.standard_normal((3, 4, 2)).astype(np.float32)
    for mode in ("reflect", "mirror", "nearest", "wrap", "constant"):
        got = fd.ndimage_correlate(dv, w, mode=mode, cval=0.5, origin=(1, -1, 0)).compute()
        _close(got, fn.correlate(v, w, mode=mode, cval=0.5, origin=(1, -1, 0)), np.float32)
        got = fd.ndimage_convolve(dv, w[..., 0], mode=mode, axes=(0, 2), num_threads=1).compute()
        _close(got, fn.convolve(v, w[..., 0], mode=mode, axes=(0, 2)), np.float32)
    got = fd.ndimage_gaussian_filter(dv, (1.0, 2.5, 0.0), mode=["wrap", "nearest", "reflect"]).compute()
    _close(got, sn.gaussian_filter(v, (1.0, 2.5, 0.0), mode=["wrap", "nearest", "reflect"]), np.float32)
    xi = rng.integers(0, 255, (30, 26)).astype(np.uint8)
    got = fd.ndimage_uniform_filter(da.from_array(xi, chunks=(4, 13)), (5, 3), origin=(1, 0)).compute()
    np.testing.assert_array_equal(got, sn.uniform_filter(xi, (5, 3), origin=(1, 0)))
    # a filter reaching past a whole (small) axis
    got = fd.ndimage_gaussian_filter(da.from_array(xi[:3], chunks=2), 2.0, mode="mirror").compute()
    np.testing.assert_array_equal(got, fn.gaussian_filter(xi[:3], 2.0, mode="mirror"))
    with pytest.raises(ValueError, match="mode"):
        fd.ndimage_correlate(dv, w, mode="edge")


def test_long_nd_call_in_slabs(monkeypatch):
    """A long N-D direct call runs in slabs (Ctrl-C between them): same result."""
    from fastcorr._engine import ndimage as engine

    monkeypatch.setattr(engine, "SLAB_WORK", 1e3)
    v = _data((9, 8, 7), np.float64)
    w = rng.standard_normal((3, 2, 4))
    for mode in ("mirror", "wrap", "constant"):
        _close(fn.correlate(v, w, mode=mode, cval=1.0, origin=(-1, 0, 1), method="direct"),
               sn.correlate(v, w, mode=mode, cval=1.0, origin=(-1, 0, 1)), np.float64)


def test_pad3_matches_numpy_pad_and_keeps_no_result():
    # the 3-D row copier extends as the numpy-based pad does (pads larger
    # than the input too), and its kept buffer never reaches a result
    from fastcorr._engine import ndimage as engine
    rng = np.random.default_rng(31)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    for boundary in range(5):
        for lo, hi in (((1, 1, 1), (1, 1, 1)), ((0, 2, 7), (5, 0, 4))):
            want = engine.pad(x, lo, hi, boundary, 2.5)
            for threads in (1, 3):
                assert np.array_equal(engine._pad3(x, lo, hi, boundary, 2.5, threads), want)
    v = rng.random((40, 50, 140)).astype(np.float32)  # > WORKSPACE_MIN padded: kept
    w = rng.random((3, 3, 3)).astype(np.float32)
    first = fastcorr.ndimage.correlate(v, w, num_threads=2)
    second = fastcorr.ndimage.correlate(v[::-1].copy(), w, num_threads=2)
    kept = engine._workspace.padded[1]
    assert not np.shares_memory(first, kept) and not np.shares_memory(second, kept)
    np.testing.assert_allclose(first, sn.correlate(v, w), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second, sn.correlate(v[::-1].copy(), w), rtol=1e-5, atol=1e-5)


def test_separable_bands_spread_over_threads_cover_every_row():
    # 11 bands of 64 rows on 3 threads (runs of 4, 4, 3 bands taken in
    # turn): every row computed once, as scipy computes it
    x = np.random.default_rng(32).random((700, 50)).astype(np.float32)
    want = sn.gaussian_filter(x.astype(np.float64), 1.5)
    for threads in (1, 2, 3):
        got = fn.gaussian_filter(x, 1.5, num_threads=threads)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
