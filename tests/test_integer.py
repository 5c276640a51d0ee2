"""Integer images: exact modular results in narrow lanes (DESIGN §2.12, issue 22).

Every case is compared for exact equality (values and dtype) with
scipy.signal.correlate2d / convolve2d, on the AVX2 loops and on their
portable C twins (``fastcorr.methods.integer.PORTABLE``).
"""
import os
import sys
import warnings

import numpy as np
import pytest
from scipy import signal

import fastcorr
from fastcorr._engine import bands, dispatch, lowering

integer = pytest.importorskip("fastcorr.methods.integer")

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]


@pytest.fixture(params=["simd", "avx2", "portable"])
def loops(request, monkeypatch):
    """Run the test on the best loops for this CPU (AVX-512 for 64-bit lanes
    where it has it), on the AVX2 ones, then on the portable C twins."""
    if request.param == "avx2" and not integer.AVX512:
        pytest.skip("no AVX-512 on this CPU: 'simd' runs the AVX2 loops")
    if request.param == "simd" and not integer.AVX2:
        pytest.skip("no AVX2 on this CPU: the portable loops run anyway")
    monkeypatch.setattr(integer, "PORTABLE", request.param == "portable")
    monkeypatch.setattr(integer, "NO_AVX512", request.param == "avx2")
    return request.param


def scipy_ref(func, x, w, mode, boundary, fillvalue=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(signal, func)(x, w, mode, boundary, fillvalue)
    return ref


def check(func, x, w, mode="full", boundary="fill", fillvalue=0, method="auto", threads=2):
    ref = scipy_ref(func, x, w, mode, boundary, fillvalue)
    got = getattr(fastcorr, func)(x, w, mode, boundary, fillvalue, method=method, num_threads=threads)
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    np.testing.assert_array_equal(got, ref)


def full_range(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_mode_boundary_and_extreme_fill(dtype, loops):
    """Values over the whole range (every product and sum wraps), fill values
    at the dtype's extremes, odd and even kernels, both functions."""
    rng = np.random.default_rng(int(np.dtype(dtype).itemsize) * 7 + (np.dtype(dtype).kind == "i"))
    info = np.iinfo(dtype)
    x = full_range(rng, dtype, (11, 75))  # > one 64-lane block, not a multiple
    for kshape in [(3, 3), (4, 2)]:
        w = full_range(rng, dtype, kshape)
        for mode in MODES:
            for boundary in BOUNDARIES:
                fills = [int(info.max), int(info.min)] if boundary == "fill" else [0]
                for fillvalue in fills:
                    for func in ("correlate2d", "convolve2d"):
                        check(func, x, w, mode, boundary, fillvalue)


def test_overflow_wraps_like_scipy(loops):
    x = np.full((5, 6), 200, np.uint8)
    w = np.full((2, 2), 1, np.uint8)
    got = fastcorr.correlate2d(x, w, "valid")
    assert got.dtype == np.uint8 and (got == 32).all()  # 200 * 4 = 800 = 32 modulo 256
    # int16 / int32 near their limits; kernels whose sums wrap
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        x = np.array([[info.max, info.min, info.max - 1], [info.min + 1, -1, info.max]] * 3, dtype)
        w = np.array([[info.max, 2], [info.min, -3]], dtype)
        for mode in MODES:
            for boundary in BOUNDARIES:
                check("correlate2d", x, w, mode, boundary, int(info.max) if boundary == "fill" else 0)


@pytest.mark.parametrize("pair", [(np.uint8, np.int8), (np.uint8, np.uint16), (np.int8, np.int16),
                                  (np.uint16, np.int16), (np.int8, np.uint32), (np.uint32, np.int32),
                                  (np.int16, np.int64), (np.uint8, np.uint64)])
def test_mixed_dtypes_take_numpys_result_type(pair, loops):
    rng = np.random.default_rng(3)
    a = full_range(rng, pair[0], (9, 70))
    b = full_range(rng, pair[1], (3, 4))
    res = np.result_type(*pair)
    fill = int(np.iinfo(res).min) if res.kind == "i" else int(np.iinfo(res).max)
    for mode in MODES:
        check("correlate2d", a, b, mode, "fill", fill)
        check("convolve2d", b, a, mode, "symm")  # the kernel larger: swapped in 'valid'


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_kernel_larger_than_image_and_tiny_rows(dtype, loops):
    rng = np.random.default_rng(5)
    for xshape, wshape in [((3, 4), (7, 9)), ((1, 1), (2, 3)), ((2, 130), (5, 3)), ((40, 3), (1, 1))]:
        x = full_range(rng, dtype, xshape)
        w = full_range(rng, dtype, wshape)
        for mode in ("full", "same"):
            for boundary in BOUNDARIES:
                check("correlate2d", x, w, mode, boundary, 7)
                check("convolve2d", x, w, mode, boundary, -3 if np.dtype(dtype).kind == "i" else 3)


@pytest.fixture
def small_work_threads(monkeypatch):
    """Threads (and pool helpers) even on the small images of these tests."""
    monkeypatch.setattr(integer, "MIN_WORK_PER_THREAD", 1)


def test_threads_split_rows(loops, small_work_threads):
    rng = np.random.default_rng(11)
    x = full_range(rng, np.uint8, (301, 257))
    w = full_range(rng, np.uint8, (5, 5))
    for threads in (1, 2, 3):
        check("correlate2d", x, w, "same", "wrap", threads=threads)
        check("convolve2d", x, w, "full", "fill", 255, threads=threads)


def test_wide_fill_values_stay_exact():
    """An int64 / uint64 fillvalue beyond 2**53 does not pass through float64."""
    x = np.zeros((2, 2), np.int64)
    w = np.ones((3, 3), np.int64)
    for fill in (2**53 + 1, 2**63 - 1, -(2**63), np.int64(2**63 - 1), np.uint64(2**64 - 1)):
        check("correlate2d", x, w, "full", "fill", fill)
    got = fastcorr.correlate2d(x, np.ones((1, 1), np.int64), "full", "fill", 2**53 + 1)
    assert got.dtype == np.int64
    xu = np.zeros((2, 2), np.uint64)
    for fill in (2**64 - 1, 2**63 + 1, np.uint64(2**64 - 1)):
        check("correlate2d", xu, np.ones((3, 3), np.uint64), "full", "fill", fill)
        check("convolve2d", xu, np.ones((2, 3), np.uint64), "same", "fill", fill)
    # the fill itself, one sample outside a 1x1 image
    out = fastcorr.correlate2d(np.zeros((1, 1), np.uint64), np.array([[1, 0]], np.uint64), "full", "fill", 2**64 - 1)
    assert int(out[0, 0]) == 2**64 - 1 and int(out[0, 1]) == 0


def test_separable_exact_on_rank_one_integer_kernels(loops):
    rng = np.random.default_rng(13)
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    for dtype, w in [(np.uint8, np.ones((5, 5), np.uint8)), (np.int16, sobel.astype(np.int16)),
                     (np.int32, np.outer([3, -1, 7, 2], [5, 0, -2]).astype(np.int32)),
                     (np.uint8, np.outer([1, 2, 1], [255, 254, 1]).astype(np.uint8)),  # rank one modulo 2**8
                     (np.int64, np.outer([1, -2], [2**40, 3]).astype(np.int64))]:
        assert integer.factor(w, 8 * np.dtype(dtype).itemsize) is not None
        x = full_range(rng, dtype, (23, 71))
        for mode in MODES:
            for boundary in BOUNDARIES:
                fill = int(np.iinfo(dtype).max) if boundary == "fill" else 0
                check("correlate2d", x, w, mode, boundary, fill, method="separable")
                check("convolve2d", x, w, mode, boundary, fill, method="separable")
    with pytest.raises(ValueError, match="rank one"):
        fastcorr.correlate2d(np.ones((8, 8), np.uint8), np.eye(3, dtype=np.uint8), method="separable")


def test_factor():
    assert integer.factor(np.array([[2, 4], [3, 6]])) == ([2, 3], [1, 2])
    assert integer.factor(np.zeros((2, 2), np.int8)) is None
    assert integer.factor(np.array([[1, 2], [3, 4]])) is None
    u, v = integer.factor(np.array([[255, 254], [254, 252]], np.uint8))  # -1, -2 / -2, -4 modulo 256
    assert np.array_equal(np.outer(u, v) % 256, [[255, 254], [254, 252]])


def test_auto_keeps_integers_exact_and_off_fft():
    x = np.zeros((512, 512), np.uint8)
    for w in (np.ones((11, 11), np.uint8), np.arange(121, dtype=np.uint8).reshape(11, 11),
              np.ones((41, 41), np.int32)):
        assert fastcorr.choose_method(x, w, "same") in ("direct", "separable")
    assert fastcorr.choose_method(x, np.ones((11, 11), np.uint8), "same") == "separable"
    assert fastcorr.choose_method(x, np.arange(121, dtype=np.uint8).reshape(11, 11), "same") == "direct"


def test_banded_integer_call_is_the_same():
    """A long call runs in bands (Ctrl-C); the narrow engine is banded as is."""
    rng = np.random.default_rng(17)
    x = full_range(rng, np.int16, (50, 40))
    w = full_range(rng, np.uint8, (4, 3))
    dtype = np.result_type(x, w)
    engine = lowering.integer_engine("direct", x.shape, w.shape, (53, 42), dtype)
    got = lowering.correlate_offset(bands.Banded(engine, 7, 2), "direct", x, w, (53, 42), (-3, -2), 0, 5,
                                    dtype, 2)
    np.testing.assert_array_equal(got, scipy_ref("correlate2d", x, w, "full", "fill", 5))


def test_workspace_cap_falls_back_to_uint64(monkeypatch):
    monkeypatch.setattr(integer, "MAX_RING_BYTES", 1)
    assert lowering.integer_engine("direct", (5, 5), (3, 3), (5, 5), np.dtype(np.uint8)) is None
    rng = np.random.default_rng(19)
    x = full_range(rng, np.uint8, (9, 10))
    w = full_range(rng, np.int8, (3, 3))
    check("correlate2d", x, w, "same", "symm")
    assert dispatch.choose_offset_method(x, np.ones((3, 3), np.uint8), (9, 10), 0, np.dtype(np.uint8), 1) == "direct"


def test_plain_integer_calls_take_the_compiled_path(loops):
    from fastcorr._engine import plain_call as _plain

    rng = np.random.default_rng(23)
    for dtype in DTYPES:
        x = full_range(rng, dtype, (20, 33))
        box = np.ones((5, 5), dtype)  # rank one: 'auto' may run the separable passes
        for w in (full_range(rng, dtype, (3, 4)), box):
            for mode in MODES:
                for convolve, func in ((False, "correlate2d"), (True, "convolve2d")):
                    for method in ("auto", "direct"):
                        got = _plain.plain_call(x, w, mode, "fill", 0, method, 2, convolve)
                        assert got is not None
                        ref = scipy_ref(func, x, w, mode, "fill")
                        assert got.dtype == ref.dtype
                        np.testing.assert_array_equal(got, ref)


_FORK_X = np.random.default_rng(29).integers(0, 256, (300, 200)).astype(np.uint8)


def _fork_child(queue):
    try:
        queue.put([fastcorr.correlate2d(_FORK_X, np.ones((5, 5), np.uint8), "same", num_threads=2),
                   fastcorr.correlate2d(_FORK_X, np.arange(9, dtype=np.uint8).reshape(3, 3), "same",
                                        num_threads=2)])
    except BaseException as exc:  # report, never hang the parent
        queue.put(repr(exc))


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork() (Linux)")
def test_forked_child_after_threads(small_work_threads):
    """The helpers' pool survives fork(): a child computes the same results."""
    import multiprocessing

    box, k3 = np.ones((5, 5), np.uint8), np.arange(9, dtype=np.uint8).reshape(3, 3)
    want = [fastcorr.correlate2d(_FORK_X, box, "same", num_threads=2),
            fastcorr.correlate2d(_FORK_X, k3, "same", num_threads=2)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(queue,))
    child.start()
    try:
        answer = queue.get(timeout=60)
    except Exception:
        answer = None
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
    assert answer is not None and not isinstance(answer, str), answer
    for got, ref in zip(answer, want):
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(want[1], scipy_ref("correlate2d", _FORK_X, k3, "same", "fill"))


def test_python_threads_at_once(small_work_threads):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(31)
    xs = [full_range(rng, dt, (120, 90)) for dt in (np.uint8, np.int16, np.int32, np.uint8)]
    ks = [np.ones((3, 5), np.uint8), full_range(rng, np.int16, (4, 4)), full_range(rng, np.int32, (3, 3)),
          full_range(rng, np.uint8, (7, 7))]
    want = [scipy_ref("correlate2d", x, k, "same", "fill") for x, k in zip(xs, ks)]
    with ThreadPoolExecutor(4) as ex:
        for _ in range(3):
            got = list(ex.map(lambda i: fastcorr.correlate2d(xs[i], ks[i], "same", num_threads=2), range(4)))
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("boundary, pad", [("nearest", "edge"), ("mirror", "reflect")])
def test_ndimage_boundaries_in_narrow_lanes(dtype, boundary, pad, loops):
    """ndimage's 'nearest' and 'mirror' rules (correlate2d boundaries too)
    in the narrow-lane loops: the correlation of the np.pad-extended image."""
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    for shape, kshape in [((9, 40), (3, 5)), ((2, 3), (5, 7)), ((1, 33), (3, 3))]:
        x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        w = rng.integers(-100, 100, kshape).astype(dtype)
        r0, r1 = kshape[0] - 1, kshape[1] - 1
        ref = signal.correlate2d(np.pad(x, ((r0, r0), (r1, r1)), mode=pad), w, "valid")
        got = fastcorr.correlate2d(x, w, "full", boundary=boundary, method="direct")
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("fill", [3 + 0j, 2.5, -2.5, -0.5, 255.7, 256.0, -1.0, np.int16(-1), np.uint64(5), True,
                                  2**64 - 1, 2**63, -2**63 - 1, 300, -1, 2**53 + 1, 1e30, float("nan")])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.uint64, np.float32])
def test_fill_values_scipy_accepts_or_refuses(fill, dtype):
    """scipy refuses a Python fill an integer output cannot hold (and any
    Python complex fill for a real output); numpy scalars are cast."""
    x = np.arange(12).reshape(3, 4).astype(dtype)
    w = np.ones((2, 2), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = signal.correlate2d(x, w, fillvalue=fill)
        except ValueError:
            with pytest.raises(ValueError, match="could not cast `fillvalue`"):
                fastcorr.correlate2d(x, w, fillvalue=fill)
            return
    got = fastcorr.correlate2d(x, w, fillvalue=fill)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 0)
