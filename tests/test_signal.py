"""correlate2d / convolve2d against scipy.signal, method='direct' and 'auto'."""
import threading
import warnings

import numpy as np
import pytest
import scipy.signal as ss

import fastcorr
from fastcorr._engine import dispatch as _dispatch

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
FUNCS = [("correlate2d", ss.correlate2d), ("convolve2d", ss.convolve2d)]
METHODS = ["direct", "auto"]


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -50), min(info.max, 50)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def assert_matches(got, want, dtype):
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
        scale = max(1.0, np.abs(want).max()) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128,
                                   np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", [(3, 3), (2, 4), (4, 1), (1, 1), (6, 5)])
@pytest.mark.parametrize("method", METHODS)
def test_matches_scipy(dtype, mode, boundary, kshape, method):
    rng = np.random.default_rng(abs(hash((np.dtype(dtype).name, mode, boundary, kshape))) % 2**32)
    x = random_array(rng, (11, 14), dtype)
    k = random_array(rng, kshape, dtype)
    for name, ref in FUNCS:
        want = ref(x, k, mode=mode, boundary=boundary, fillvalue=3)
        got = getattr(fastcorr, name)(x, k, mode=mode, boundary=boundary, fillvalue=3, method=method)
        assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["same", "full"])
@pytest.mark.parametrize("boundary", ["fill", "symm"])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 2), (2, 7)])
@pytest.mark.parametrize("shape", [(700, 97), (700, 128), (4000, 19)])
def test_large_images_every_column_block(shape, kshape, boundary, mode, dtype):
    # Images above the whole-copy limit: edge columns through the boundary
    # rule, the interior by three-row blocks of 4 vectors, one overlapping
    # tail block, or (narrow rows) single and masked vectors; each row
    # starts from its fill contribution.
    rng = np.random.default_rng(sum(shape) + 10 * sum(kshape))
    x = random_array(rng, shape, dtype)
    k = random_array(rng, kshape, dtype)
    want = ss.correlate2d(x, k, mode=mode, boundary=boundary, fillvalue=2.5)
    got = fastcorr.correlate2d(x, k, mode=mode, boundary=boundary, fillvalue=2.5, method="direct")
    assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8])
@pytest.mark.parametrize("shape", [(60, 50), (600, 500)])
def test_one_by_one_kernel_small_and_large(shape, dtype):
    # A 1x1 kernel is a scaling: numpy's multiply on small images, the
    # compiled kernel above fastcorr.methods.direct.SCALE_BELOW values.
    from fastcorr.methods import direct as _direct

    assert (shape[0] * shape[1] > _direct.SCALE_BELOW) == (shape[0] > 100)
    rng = np.random.default_rng(shape[0])
    x = random_array(rng, shape, dtype)
    k = random_array(rng, (1, 1), dtype)
    for mode in MODES:
        want = ss.correlate2d(x, k, mode=mode)
        assert_matches(fastcorr.correlate2d(x, k, mode=mode, method="direct"), want, dtype)


def test_uint8_wraps_modulo_256_like_scipy():
    x = np.full((3, 3), 200, np.uint8)
    k = np.full((2, 2), 4, np.uint8)
    got = fastcorr.correlate2d(x, k)
    np.testing.assert_array_equal(got, ss.correlate2d(x, k))
    assert got.dtype == np.uint8
    assert got[0, 0] == (200 * 4) % 256  # 32


def test_large_int64_exact():
    x = np.array([[2**62, 3], [5, -(2**61)]], dtype=np.int64)
    k = np.array([[3, -7], [11, 2]], dtype=np.int64)
    np.testing.assert_array_equal(fastcorr.correlate2d(x, k), ss.correlate2d(x, k))


@pytest.mark.parametrize("pair", [(np.int8, np.uint8), (np.int32, np.float32),
                                  (np.float32, np.complex64), (np.float32, np.float64),
                                  (np.uint16, np.int64)])
def test_mixed_dtypes_follow_scipy(pair):
    rng = np.random.default_rng(1)
    x = random_array(rng, (7, 9), pair[0])
    k = random_array(rng, (3, 2), pair[1])
    for name, ref in FUNCS:
        want = ref(x, k, "same")
        got = getattr(fastcorr, name)(x, k, "same")
        assert_matches(got, want, want.dtype)


def test_float32_stays_float32():
    x = np.ones((5, 5), np.float32)
    assert fastcorr.correlate2d(x, x[:2, :2]).dtype == np.float32


def test_float16_computed_in_float32_and_returned_as_float16():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 9)).astype(np.float16)
    k = rng.standard_normal((3, 3)).astype(np.float16)
    got = fastcorr.correlate2d(x, k, "same")
    assert got.dtype == np.float16
    want = ss.correlate2d(x.astype(np.float64), k.astype(np.float64), "same")
    np.testing.assert_allclose(got.astype(np.float64), want, atol=2e-2 * np.abs(want).max())


def test_longdouble_like_scipy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 7)).astype(np.longdouble)
    k = rng.standard_normal((3, 2)).astype(np.longdouble)
    for boundary in BOUNDARIES:
        want = ss.correlate2d(x, k, "same", boundary)
        got = fastcorr.correlate2d(x, k, "same", boundary)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-15)


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", [(15, 3), (3, 20), (15, 20)])
def test_kernel_larger_than_image(mode, boundary, kshape):
    # scipy extends wrap/symm by one period only, so its answer is defined
    # while the kernel reaches at most one image size beyond each edge.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 12))
    k = rng.standard_normal(kshape)
    for name, ref in FUNCS:
        want = ref(x, k, mode, boundary, fillvalue=-1.5)
        got = getattr(fastcorr, name)(x, k, mode, boundary, fillvalue=-1.5)
        assert_matches(got, want, np.float64)


def test_wrap_and_symm_beyond_one_period():
    # A kernel reaching several periods: fastcorr keeps extending (scipy does not).
    x = np.arange(6.0).reshape(2, 3)
    k = np.ones((1, 9))
    got = fastcorr.correlate2d(x, k, "same", "wrap")
    np.testing.assert_allclose(got, 3 * x.sum(axis=1, keepdims=True) * np.ones((1, 3)))
    got = fastcorr.correlate2d(x, np.ones((1, 7)), "same", "symm")
    # row [0 1 2] extended symmetrically: ... 2 1 0 | 0 1 2 | 2 1 0 ...
    ext = np.array([0, 1, 2, 2, 1, 0] * 4, float)
    # output n covers extended positions n-3 .. n+3 (period 6, index 0 at 6*2)
    want0 = [ext[12 + n - 3: 12 + n + 4].sum() for n in range(3)]
    np.testing.assert_allclose(got[0], want0)


def test_valid_swaps_inputs_like_scipy():
    rng = np.random.default_rng(5)
    small = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    big = rng.standard_normal((8, 9)) + 1j * rng.standard_normal((8, 9))
    for name, ref in FUNCS:
        assert_matches(getattr(fastcorr, name)(small, big, "valid"), ref(small, big, "valid"), np.complex128)


def test_valid_raises_when_neither_is_larger():
    with pytest.raises(ValueError, match="valid"):
        fastcorr.correlate2d(np.ones((2, 8)), np.ones((3, 2)), "valid")


def test_fillvalue_rules():
    x = np.ones((3, 3), np.float32)
    k = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(fastcorr.correlate2d(x, k, fillvalue=2.5), ss.correlate2d(x, k, fillvalue=2.5))
    xi = np.ones((3, 3), np.int32)
    np.testing.assert_array_equal(fastcorr.correlate2d(xi, xi[:2, :2], fillvalue=2.5),
                                  ss.correlate2d(xi, xi[:2, :2], fillvalue=2.5))
    xc = x * 1j
    np.testing.assert_allclose(fastcorr.correlate2d(xc, k, fillvalue=1 - 2j),
                               ss.correlate2d(xc, k, fillvalue=1 - 2j))
    with pytest.raises(ValueError, match="fillvalue"):
        fastcorr.correlate2d(x, k, fillvalue=1 + 2j)
    with pytest.raises(ValueError, match="fillvalue"):
        fastcorr.correlate2d(x, k, fillvalue=[1, 2])
    with pytest.raises(TypeError, match="fillvalue"):
        fastcorr.correlate2d(x, k, fillvalue="a")


@pytest.mark.parametrize("mode", MODES)
def test_empty_inputs(mode):
    x = np.zeros((0, 3))
    k = np.ones((2, 2))
    if mode == "valid":
        with pytest.raises(ValueError):
            fastcorr.correlate2d(x, k, mode)
        with pytest.raises(ValueError):
            ss.correlate2d(x, k, mode)
    else:
        got = fastcorr.correlate2d(x, k, mode, fillvalue=2)
        want = ss.correlate2d(x, k, mode, fillvalue=2)
        assert_matches(got, want, np.float64)
    img = np.ones((3, 3))
    empty_k = np.zeros((0, 2))
    assert_matches(fastcorr.correlate2d(img, empty_k, mode), ss.correlate2d(img, empty_k, mode), np.float64)


@pytest.mark.parametrize("boundary", ["wrap", "symm"])
def test_empty_image_full_with_wrap_raises(boundary):
    # scipy crashes the interpreter here; fastcorr raises.
    with pytest.raises(ValueError, match="in1"):
        fastcorr.correlate2d(np.zeros((0, 3)), np.ones((2, 2)), "full", boundary)


def test_layouts_and_array_likes():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((20, 30))
    k = rng.standard_normal((3, 4))
    want_fn = lambda x: ss.correlate2d(x, k, "same", "symm")  # noqa: E731
    views = {
        "non-contiguous": base[::2, ::3],
        "negative strides": base[::-1, ::-2],
        "fortran": np.asfortranarray(base),
        "big-endian": base.astype(">f8"),
        "list": base[:5, :6].tolist(),
    }
    ro = base.copy()
    ro.flags.writeable = False
    views["read-only"] = ro
    for name, x in views.items():
        got = fastcorr.correlate2d(x, k, "same", "symm")
        np.testing.assert_allclose(got, want_fn(np.asarray(x)), atol=1e-12, err_msg=name)
    kview = rng.standard_normal((6, 8))[::2, ::-2]
    np.testing.assert_allclose(fastcorr.convolve2d(base, kview), ss.convolve2d(base, kview), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", [(1, 1), (3, 3), (2, 4), (5, 6), (1, 7)])
@pytest.mark.parametrize("method", ["direct", "auto"])
def test_plain_calls_take_the_compiled_entry_and_match_scipy(dtype, mode, kshape, method):
    # Two C-contiguous float arrays with the default boundary: the compiled
    # plain-call entry serves them (small kernels: 'auto' picks direct).
    from fastcorr._engine import plain_call as _plain

    rng = np.random.default_rng(abs(hash((np.dtype(dtype).name, mode, kshape))) % 2**32)
    x = random_array(rng, (20, 23), dtype)
    k = random_array(rng, kshape, dtype)
    for name, ref in FUNCS:
        entry = _plain.plain_call(x, k, mode, "fill", 0, method, None, name == "convolve2d")
        assert entry is not None
        want = ref(x.astype(np.float64), k.astype(np.float64), mode=mode).astype(dtype)
        assert_matches(entry, want, dtype)
        np.testing.assert_array_equal(getattr(fastcorr, name)(x, k, mode, method=method), entry)
        with fastcorr.threads(1):
            np.testing.assert_array_equal(getattr(fastcorr, name)(x, k, mode), entry)


def test_calls_that_are_not_plain_take_the_general_path():
    from fastcorr._engine import plain_call as _plain

    rng = np.random.default_rng(8)
    x = rng.standard_normal((30, 31))
    k = rng.standard_normal((3, 4))
    assert _plain.plain_call(x, k, "same", "fill", 0, "auto", None, False) is not None
    others = {
        "strided": ((x[:, ::2], k, "same", "fill", 0, "auto", None), {}),
        "big-endian": ((x.astype(">f8"), k, "same", "fill", 0, "auto", None), {}),
        "mixed dtypes": ((x.astype(np.float32), k, "same", "fill", 0, "auto", None), {}),
        # (integers of one dtype are plain: tests/test_integer.py)
        "mixed integers": ((x.astype(np.int64), k.astype(np.int32), "same", "fill", 0, "auto", None), {}),
        "list": ((x.tolist(), k, "same", "fill", 0, "auto", None), {}),
        "fillvalue": ((x, k, "same", "fill", 2.5, "auto", None), {"fillvalue": 2.5}),
        "boundary": ((x, k, "same", "wrap", 0, "auto", None), {"boundary": "wrap"}),
        "valid swap": ((k, x, "valid", "fill", 0, "auto", None), {}),
        "fft asked": ((x, k, "same", "fill", 0, "fft", None), {"method": "fft"}),
        "threads": ((x, k, "same", "fill", 0, "auto", 2.0), {}),
        "mode": ((x, k, "middle", "fill", 0, "auto", None), {}),
        "3-D": ((x[None], k, "same", "fill", 0, "auto", None), {}),
    }
    for name, (args, _) in others.items():
        assert _plain.plain_call(*args, False) is None, name
    # ... and the general path computes (or refuses) them as before
    got = fastcorr.correlate2d(x, k, "same", "wrap")
    np.testing.assert_allclose(got, ss.correlate2d(x, k, "same", "wrap"), atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        fastcorr.correlate2d(x, k, "middle")
    with pytest.raises(TypeError, match="num_threads"):
        fastcorr.correlate2d(x, k, "same", num_threads=2.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", [(1, 1), (3, 3), (2, 4), (17, 15)])
def test_plain_calls_write_into_out(dtype, mode, kshape):
    # An out= of the result's shape and dtype takes the compiled entry too
    # (the direct method, or the FFT the dispatcher picks for the 17x15
    # kernel) and is written in place; a bad one goes to the general path.
    from fastcorr._engine import plain_call as _plain

    rng = np.random.default_rng(abs(hash((np.dtype(dtype).name, mode, kshape, "out"))) % 2**32)
    x = random_array(rng, (40, 37), dtype)
    k = random_array(rng, kshape, dtype)
    for name, ref in FUNCS:
        want = ref(x.astype(np.float64), k.astype(np.float64), mode=mode).astype(dtype)
        out = np.full(want.shape, np.nan, dtype)
        entry = _plain.plain_call(x, k, mode, "fill", 0, "auto", None, name == "convolve2d", out)
        assert entry is out
        assert_matches(out, want, dtype)
        again = np.full(want.shape, np.nan, dtype)
        assert getattr(fastcorr, name)(x, k, mode, out=again) is again
        np.testing.assert_array_equal(again, out)
        bad = {"dtype": np.empty(want.shape, np.float16), "shape": np.empty((want.shape[0] + 1, want.shape[1]), dtype),
               "layout": np.empty(want.shape[::-1], dtype).T, "list": want.tolist(),
               "read-only": np.empty(want.shape, dtype)}
        bad["read-only"].flags.writeable = False
        for why, o in bad.items():
            assert _plain.plain_call(x, k, mode, "fill", 0, "auto", None, False, o) is None, why
    # an out that overlaps an input is left to the general path, which refuses it
    big = random_array(rng, (80, 37), dtype)
    xs, over = big[:40], big[40 - (3 if mode == "same" else 0):][:40]
    if mode == "same":
        assert _plain.plain_call(xs, k, mode, "fill", 0, "auto", None, False, over) is None
        with pytest.raises(ValueError, match="overlaps in1"):
            fastcorr.correlate2d(xs, k, mode, out=over)


def test_plain_call_follows_the_dispatcher(monkeypatch):
    # 'auto' with a large kernel on a small image picks FFT; a separable
    # kernel the separable path: the entry runs what the dispatcher picks,
    # for correlation and convolution alike.
    from fastcorr._engine import plain_call as _plain

    rng = np.random.default_rng(9)
    x = rng.standard_normal((128, 128))
    k = rng.standard_normal((61, 61))
    g = np.exp(-0.5 * (np.arange(13) - 6.0) ** 2 / 16.0)
    gauss = np.outer(g, g)
    assert fastcorr.choose_method(x, k, mode="same") == "fft"
    assert fastcorr.choose_method(x, gauss, mode="same") == "separable"
    assert fastcorr.choose_method(x, gauss + rng.standard_normal(gauss.shape), mode="same") == "direct"
    ran = []
    real_engine = _dispatch.engine

    def spy(method):
        ran.append(method)
        return real_engine(method)

    monkeypatch.setattr(_dispatch, "engine", spy)
    for kernel, method in ((k, "fft"), (gauss, "separable")):
        for name, ref in FUNCS:
            del ran[:]
            got = _plain.plain_call(x, kernel, "same", "fill", 0, "auto", None, name == "convolve2d")
            assert ran == [method]
            np.testing.assert_allclose(got, ref(x, kernel, "same"), atol=1e-9)
            np.testing.assert_allclose(getattr(fastcorr, name)(x, kernel, "same"), got, atol=0)
    # NaN: the same shape, now direct (the FFT would spread it)
    x[64, 64] = np.nan
    del ran[:]
    got = _plain.plain_call(x, k, "same", "fill", 0, "auto", None, False)
    assert ran == [] and np.isnan(got).sum() == 61 * 61
    assert _plain.plain_call(x, k, "same", "fill", 0, "direct", None, False) is not None


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "separable", "im2col"])
def test_unaligned_inputs(method):
    # Arrays viewing a byte buffer at an odd offset (as dask.distributed can
    # hand over) are copied to aligned memory before any kernel reads them.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 52)).astype(np.float32)
    w = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]).astype(np.float32)
    buf = bytearray(x.nbytes + 1)
    xu = np.frombuffer(buf, dtype=np.float32, offset=1, count=x.size).reshape(x.shape)
    xu[...] = x
    assert not xu.flags.aligned
    got = fastcorr.correlate2d(xu, w, "same", method=method)
    ref = ss.correlate2d(x.astype(np.float64), w.astype(np.float64), "same")
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_inputs_not_modified():
    x = np.arange(20.0).reshape(4, 5)
    k = np.array([[1.0, -2.0]])
    x0, k0 = x.copy(), k.copy()
    fastcorr.convolve2d(x, k, boundary="wrap")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.int64])
def test_threads_give_identical_results(dtype):
    rng = np.random.default_rng(7)
    x = random_array(rng, (257, 131), dtype)
    k = random_array(rng, (7, 5), dtype)
    one = fastcorr.correlate2d(x, k, "same", "symm", num_threads=1)
    two = fastcorr.correlate2d(x, k, "same", "symm", num_threads=2)
    np.testing.assert_array_equal(one, two)
    with fastcorr.threads(2):
        np.testing.assert_array_equal(fastcorr.correlate2d(x, k, "same", "symm"), one)


@pytest.mark.parametrize("threads", [2, 3, 5])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_small_padded_images_split_between_threads(threads, boundary):
    # Small images are padded by each thread for its own band of output
    # rows; bands of whole three-row groups, row counts not a multiple of
    # three, more threads than groups.
    rng = np.random.default_rng(threads)
    for shape, kshape in [((4, 9), (3, 3)), ((7, 5), (5, 2)), ((40, 37), (9, 11)), ((64, 64), (21, 21))]:
        x = rng.standard_normal(shape)
        k = rng.standard_normal(kshape)
        for mode in ("same", "full"):
            got = fastcorr.correlate2d(x, k, mode, boundary, fillvalue=0.5, method="direct",
                                       num_threads=threads)
            ref = ss.correlate2d(x, k, mode, boundary, fillvalue=0.5)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        # the kernel entry itself, so that tiny cases get the threads too
        from fastcorr.methods import direct as _direct

        out = np.empty(shape)
        code = BOUNDARIES.index(boundary)
        _direct.correlate_into(x, k, out, -((kshape[0] - 1) // 2), -((kshape[1] - 1) // 2), code, 0.5, threads)
        np.testing.assert_allclose(out, ss.correlate2d(x, k, "same", boundary, fillvalue=0.5),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fillvalue", [0.0, 1.5])
def test_fill_rows_left_out_only_for_finite_kernels(fillvalue):
    # Small images are padded by columns only, and the kernel rows that fall
    # on fill rows are left out. Not for a kernel holding inf, small image or
    # large: there the fill products (0 * inf = NaN, 1.5 * inf) are scipy's
    # result, so the fill is padded in and multiplied.
    rng = np.random.default_rng(11)
    for x, kshapes in ((rng.standard_normal((40, 43)), [(5, 4), (31, 31), (3, 1)]),
                       (rng.standard_normal((301, 260)), [(5, 4)])):  # large: not padded when finite
        _check_fill_rows(x, kshapes, fillvalue, rng)


def _check_fill_rows(x, kshapes, fillvalue, rng):
    for kshape in kshapes:
        w = rng.standard_normal(kshape)
        for mode in ("same", "full"):
            for threads in (1, 2):
                got = fastcorr.correlate2d(x, w, mode, fillvalue=fillvalue, method="direct",
                                           num_threads=threads)
                ref = ss.correlate2d(x, w, mode, fillvalue=fillvalue)
                np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
                bad = w.copy()
                bad[0, 0] = np.inf
                got = fastcorr.correlate2d(x, bad, mode, fillvalue=fillvalue, method="direct",
                                           num_threads=threads)
                ref = ss.correlate2d(x, bad, mode, fillvalue=fillvalue)
                np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
                np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
                np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kshape", [(1, 1), (1, 5), (2, 3), (3, 3), (7, 4)])
def test_direct_nan_and_inf_stay_in_their_windows(dtype, kshape):
    # The direct kernels work on several output rows at once; a NaN or inf
    # must still reach only the outputs whose window covers it (as scipy).
    rng = np.random.default_rng(7)
    x = rng.standard_normal((37, 61)).astype(dtype)
    w = rng.standard_normal(kshape).astype(dtype)
    x[17, 30] = np.nan
    x[5, 3] = np.inf
    for mode in ("full", "same", "valid"):
        got = fastcorr.correlate2d(x, w, mode, method="direct")
        ref = ss.correlate2d(x.astype(np.float64), w.astype(np.float64), mode)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-4, atol=1e-4)


def test_python_threads_at_once():
    rng = np.random.default_rng(8)
    cases = [(rng.standard_normal((300, 200)).astype(np.float32), rng.standard_normal((5, 5)).astype(np.float32),
              boundary, nt) for boundary in BOUNDARIES for nt in (1, 2)]
    wants = [ss.correlate2d(x, k, "same", b) for x, k, b, _ in cases]
    errors = []

    def worker(i):
        try:
            for _ in range(3):
                x, k, b, nt = cases[i % len(cases)]
                got = fastcorr.correlate2d(x, k, "same", b, num_threads=nt)
                np.testing.assert_allclose(got, wants[i % len(cases)], atol=1e-4)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_thread_settings():
    old = fastcorr.get_num_threads()
    try:
        fastcorr.set_num_threads(1)
        assert fastcorr.get_num_threads() == 1
        with fastcorr.threads(2):
            assert fastcorr.get_num_threads() == 2
        assert fastcorr.get_num_threads() == 1
    finally:
        fastcorr.set_num_threads(old)
    for bad in (0, -1, 10**6):
        with pytest.raises(ValueError, match="between 1 and"):
            fastcorr.set_num_threads(bad)
        with pytest.raises(ValueError, match="num_threads"):
            fastcorr.correlate2d(np.ones((2, 2)), np.ones((1, 1)), num_threads=bad)
    with pytest.raises(TypeError, match="num_threads"):
        fastcorr.correlate2d(np.ones((2, 2)), np.ones((1, 1)), num_threads=1.5)


# The textbook ("Convolutions for Images") facts.
def test_textbook_example():
    X = np.arange(9.0).reshape(3, 3)
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(fastcorr.correlate2d(X, K, "valid"), [[19, 25], [37, 43]])


def test_textbook_edge_detection():
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]])
    Y = fastcorr.correlate2d(X, K, "valid")
    assert Y.shape == (6, 7)
    want = np.zeros((6, 7))
    want[:, 1] = 1
    want[:, 5] = -1
    np.testing.assert_array_equal(Y, want)
    np.testing.assert_array_equal(fastcorr.correlate2d(X.T, K, "valid"), np.zeros((8, 5)))


# Bad input.
@pytest.mark.parametrize("func", [fastcorr.correlate2d, fastcorr.convolve2d])
def test_bad_inputs(func):
    img = np.ones((4, 4))
    with pytest.raises(ValueError, match="2-D"):
        func(np.ones(4), img)
    with pytest.raises(ValueError, match="2-D"):
        func(img, np.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="in1"):
        func(np.array([["a", "b"]]), img)
    with pytest.raises(TypeError, match="in2"):
        func(img, np.array([[None]], dtype=object))
    with pytest.raises(TypeError, match="bool"):
        func(img > 0, img)
    with pytest.raises(ValueError, match="mode"):
        func(img, img, mode="foo")
    with pytest.raises(ValueError, match="boundary"):
        func(img, img, boundary="reflect")
    with pytest.raises(ValueError, match="method"):
        func(img, img, method="magic")
    with pytest.raises(TypeError, match="in1"):
        func([[1, 2], [3]], img)


def test_integer_refused_by_methods_that_cannot_be_exact():
    # Only methods present in this build are checked. 'separable' serves
    # integer kernels of rank one exactly (tests/test_integer.py), not others.
    for method in ("im2col", "fft", "separable"):
        with pytest.raises(ValueError, match="method"):
            fastcorr.correlate2d(np.ones((5, 5), np.int32), np.eye(3, dtype=np.int32), method=method)


def test_show_config_and_info(capsys):
    from fastcorr.__main__ import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "OpenMP" in out and "build system" in out
    info = fastcorr._engine.config.config_info()
    assert info["fastcorr"] == fastcorr.__version__


def test_no_warnings_on_plain_call():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastcorr.correlate2d(np.ones((5, 5), np.float32), np.ones((3, 3), np.float32), "same")


def test_output_too_large_fails_fast_with_memory_error():
    huge = np.broadcast_to(np.float32(1), (2**20, 2**20))  # 4 TiB view, no memory
    for image in (np.zeros((1, 0), np.float32), np.ones((3, 3), np.float32)):
        with pytest.raises(MemoryError, match=r"TiB"):
            fastcorr.correlate2d(image, huge, "full")
