"""fastcorr.dask: results equal to the in-memory fastcorr (and scipy) result."""
import itertools
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

da = pytest.importorskip("dask.array")

import fastcorr  # noqa: E402
import fastcorr.dask as fdask  # noqa: E402

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
# (image shape, kernel shape, list of chunkings); chunkings include chunks
# smaller than the kernel and than its halo, uneven chunks and one chunk.
CASES = [
    ((17, 23), (3, 3), [(4, 5), (17, 23)]),
    ((17, 23), (4, 2), [(1, 3)]),
    ((17, 23), (5, 6), [((3, 9, 5), (10, 1, 12))]),
    ((13, 11), (12, 3), [(5, 5)]),
    ((6, 7), (1, 1), [(2, 3)]),
]


def _pair(convolve):
    return (fastcorr.convolve2d, fdask.convolve2d) if convolve else (fastcorr.correlate2d, fdask.correlate2d)


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("layout", ["seams", "input"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convolve", [False, True], ids=["corr", "conv"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
def test_equals_in_memory(mode, boundary, convolve, dtype, layout):
    rng = np.random.default_rng(7)
    ref_func, dask_func = _pair(convolve)
    for shape, kshape, chunkings in CASES:
        x = rng.standard_normal(shape).astype(dtype)
        k = rng.standard_normal(kshape).astype(dtype)
        if mode == "valid" and not all(s >= t for s, t in zip(shape, kshape)):
            continue
        ref = ref_func(x, k, mode, boundary, 1.5)
        sp = (scipy.signal.convolve2d if convolve else scipy.signal.correlate2d)(x, k, mode, boundary, 1.5)
        np.testing.assert_allclose(ref, sp, **_tol(dtype))
        for chunks in chunkings:
            y = dask_func(da.from_array(x, chunks=chunks), k, mode, boundary, 1.5, chunks=layout)
            assert y.shape == ref.shape and y.dtype == ref.dtype
            got = y.compute(scheduler="sync")
            np.testing.assert_allclose(got, ref, **_tol(dtype), err_msg=f"{shape} {kshape} {chunks}")


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_larger_than_image_full_and_same(boundary):
    # Halos longer than the whole image: wrap / symm extend over several periods.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    k = rng.standard_normal((12, 9))
    for mode, convolve, layout in itertools.product(["full", "same"], [False, True], ["seams", "input"]):
        ref_func, dask_func = _pair(convolve)
        got = dask_func(da.from_array(x, chunks=2), k, mode, boundary, -2, chunks=layout).compute()
        np.testing.assert_allclose(got, ref_func(x, k, mode, boundary, -2), rtol=1e-12, atol=1e-12)


def test_same_keeps_chunks_with_chunks_input():
    x = da.zeros((100, 90), chunks=(30, 40))
    y = fdask.correlate2d(x, np.ones((5, 4)), mode="same", chunks="input")
    assert y.chunks == x.chunks


def test_seams_layout():
    # 'same', 5x4 kernel: output rows p read input rows p-2 .. p+2, columns
    # q-1 .. q+2 (scipy's centring of an even kernel). Seams of 4 and 3
    # samples across each chunk boundary; with 'wrap' the image edges too.
    x = da.zeros((100, 90), chunks=(30, 40))
    y = fdask.correlate2d(x, np.ones((5, 4)), mode="same")
    assert y.chunks == ((28, 4, 26, 4, 26, 4, 8), (38, 3, 37, 3, 9))
    y = fdask.correlate2d(x, np.ones((5, 4)), mode="same", boundary="wrap")
    assert y.chunks == ((2, 26, 4, 26, 4, 26, 4, 6, 2), (1, 37, 3, 37, 3, 7, 2))
    # 'full' / 'valid' move the seams with the output origin.
    assert fdask.correlate2d(x, np.ones((5, 4)), mode="full").chunks[0] == (30, 4, 26, 4, 26, 4, 10)
    assert fdask.correlate2d(x, np.ones((5, 4)), mode="valid").chunks[0] == (26, 4, 26, 4, 26, 4, 6)


def test_bad_layout():
    x = da.zeros((8, 8), chunks=4)
    for bad in ("same", None, 3):
        with pytest.raises(ValueError, match="chunks"):
            fdask.correlate2d(x, np.ones((2, 2)), chunks=bad)
    with pytest.raises(ValueError, match="chunks"):
        fdask.conv2d(x[None], np.ones((1, 1, 2, 2)), chunks="nope")


@pytest.mark.parametrize("layout", ["seams", "input"])
def test_tiny_chunks_are_merged(layout):
    x = da.ones((40, 40), chunks=2)
    y = fdask.correlate2d(x, np.ones((9, 9)), mode="same", boundary="wrap", chunks=layout)
    assert y.numblocks[0] < x.numblocks[0] and y.numblocks[1] < x.numblocks[1]
    np.testing.assert_allclose(y.compute(), np.full((40, 40), 81.0))


class _HeldBytes:
    """Largest total of ``nbytes`` held by dask's scheduler between tasks."""

    def __init__(self):
        from dask.callbacks import Callback

        outer = self
        self.peak = 0

        class _CB(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                held = sum(getattr(v, "nbytes", 0) for v in state["cache"].values())
                outer.peak = max(outer.peak, held)

        self.callback = _CB()


def _peak_chunks(y, chunk_bytes):
    held = _HeldBytes()
    with held.callback:
        y.sum().compute(scheduler="sync")
    return held.peak / chunk_bytes


@pytest.mark.parametrize("mode", MODES)
def test_memory_stays_at_a_few_chunks(mode):
    # A 16 x 16-chunk image generated lazily: with the 'seams' layout every
    # input chunk is freed once used (its strips are copied), so the
    # scheduler holds about two chunks whatever the image size (it held
    # ~30 with dask.array.overlap on 8 x 8 chunks, ~60 on 16 x 16).
    c = 32
    x = da.random.RandomState(0).random_sample((16 * c, 16 * c), chunks=c).astype(np.float32)
    k = np.ones((7, 6), np.float32)
    for boundary in BOUNDARIES:
        assert _peak_chunks(fdask.correlate2d(x, k, mode, boundary), c * c * 4) <= 4, boundary
    # 'input' keeps neighbours alive until their own chunks are done: a
    # couple of rows of chunks, still far from the 256-chunk image.
    assert _peak_chunks(fdask.correlate2d(x, k, mode, chunks="input"), c * c * 4) <= 3 * 16


def test_conv2d_memory_stays_at_a_few_chunks(conv2d_available):
    c = 32
    x = da.random.RandomState(0).random_sample((2, 3, 12 * c, 12 * c), chunks=(1, 3, c, c)).astype(np.float32)
    w = np.ones((2, 3, 5, 5), np.float32)
    for kw in (dict(padding=2), dict(padding=3, stride=2, padding_mode="circular")):
        assert _peak_chunks(fdask.conv2d(x, w, **kw), 3 * c * c * 4) <= 4, kw


@pytest.mark.parametrize("mode", MODES)
def test_batch_stack_complex(mode):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((2, 2, 12, 13)) + 1j * rng.standard_normal((2, 2, 12, 13))).astype(np.complex64)
    k = (rng.standard_normal((4, 5)) + 0.5j).astype(np.complex64)
    for boundary, convolve in itertools.product(BOUNDARIES, [False, True]):
        ref_func, dask_func = _pair(convolve)
        y = dask_func(da.from_array(x, chunks=(1, 2, 5, 7)), k, mode, boundary, 2 - 1j)
        ref = np.stack([np.stack([ref_func(f, k, mode, boundary, 2 - 1j) for f in b]) for b in x])
        assert y.dtype == ref.dtype == np.complex64
        np.testing.assert_allclose(y.compute(), ref, rtol=1e-4, atol=1e-4)


def test_integer_exact_modular():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (20, 20)).astype(np.uint8)
    k = np.full((3, 3), 4, np.uint8)
    for mode, boundary in itertools.product(MODES, BOUNDARIES):
        # a numpy -1 is cast to 255 (as numpy casts); a Python -1 is refused, as scipy does
        y = fdask.correlate2d(da.from_array(x, chunks=7), k, mode, boundary, np.int64(-1)).compute()
        ref = scipy.signal.correlate2d(x, k, mode, boundary, 255)
        assert y.dtype == ref.dtype == np.uint8
        np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError, match="could not cast `fillvalue`"):
        fdask.correlate2d(da.from_array(x, chunks=7), k, "same", "fill", -1)


def test_mixed_dtypes_fill_in_result_dtype():
    # int image, float kernel: the fill value lives in the float result dtype.
    x = np.arange(30).reshape(5, 6)
    k = np.ones((2, 2))
    y = fdask.correlate2d(da.from_array(x, chunks=2), k, "full", "fill", 0.5).compute()
    np.testing.assert_allclose(y, scipy.signal.correlate2d(x, k, "full", "fill", 0.5))


@pytest.mark.parametrize("convolve", [False, True])
def test_valid_swap_kernel_larger_than_frames(convolve):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))
    k = rng.standard_normal((6, 7)) - 2j
    ref_func, dask_func = _pair(convolve)
    y = dask_func(da.from_array(x, chunks=(1, 2, 2)), k, "valid")
    ref = np.stack([ref_func(f, k, "valid") for f in x])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.compute(), ref, rtol=1e-12, atol=1e-12)


def test_empty_frames():
    for shape, mode in itertools.product([(0, 5), (3, 0, 4)], ["full", "same"]):
        y = fdask.correlate2d(da.zeros(shape), np.ones((2, 3)), mode, "fill", 2).compute()
        ref = fastcorr.correlate2d(np.zeros(shape[-2:]), np.ones((2, 3)), mode, "fill", 2)
        assert y.shape == shape[:-2] + ref.shape
        np.testing.assert_array_equal(y, np.broadcast_to(ref, y.shape))


def test_array_likes_and_dask_kernel():
    x = np.arange(20.0).reshape(4, 5)
    k = da.from_array(np.array([[1.0, -1.0]]))
    y = fdask.convolve2d(x.tolist(), k, "same")
    assert isinstance(y, da.Array)
    np.testing.assert_allclose(y.compute(), scipy.signal.convolve2d(x, [[1.0, -1.0]], "same"))


def test_bad_input():
    x = da.zeros((8, 8), chunks=4)
    with pytest.raises(ValueError, match="in1"):
        fdask.correlate2d(da.zeros(8), np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        fdask.correlate2d(x, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="mode"):
        fdask.correlate2d(x, np.ones((2, 2)), mode="nope")
    with pytest.raises(ValueError, match="boundary"):
        fdask.correlate2d(x, np.ones((2, 2)), boundary="reflect")
    with pytest.raises(ValueError, match="valid"):
        fdask.correlate2d(da.zeros((8, 3)), np.ones((4, 4)), mode="valid")
    with pytest.raises(TypeError, match="dtype"):
        fdask.correlate2d(x.astype(bool), np.ones((2, 2)))
    with pytest.raises(ValueError, match="num_threads|between"):
        fdask.correlate2d(x, np.ones((2, 2)), num_threads=0)


def test_thread_budget():
    # Many chunks on the threaded scheduler: one fastcorr thread per chunk.
    assert fdask._block_threads(None, 1000) == (1, False)
    cpus = fdask._available_cpus()
    assert fdask._block_threads(None, 1) == (cpus, False)
    assert fdask._block_threads(3, 1000) == (3, True)
    x = da.ones((64, 64), chunks=16)
    y = fdask.correlate2d(x, np.ones((3, 3)), "valid", num_threads=1)
    np.testing.assert_allclose(y.compute(scheduler="threads"), np.full((62, 62), 9.0))


def test_out_chunks_and_pieces():
    # Seams around each boundary; chunks shorter than `need` merged first.
    assert fdask._out_chunks((10, 10, 10), 30, (-2, 2), 1, 4, False) == (8, 4, 6, 4, 8)
    assert fdask._out_chunks((2, 2, 2, 2, 2), 10, (0,), 1, 3, False) == (4, 6)
    assert fdask._out_chunks((10, 10), 9, (1,), 2, 1, False) == (6, 3)  # ceil((10 + 1) / 2)
    assert fdask._out_chunks((10, 10), 20, (-1, 1), 1, 2, True) == (1, 8, 2, 8, 1)
    starts = np.array([0, 4, 8])
    assert fdask._pieces([-1, -1, 0, 1, 2, 3, 4, 5], starts) == [
        (-1, 0, 0, False, 2), (0, 0, 4, False, 4), (1, 0, 2, False, 2)]
    assert fdask._pieces([1, 0, 0, 1, 7, 6], starts) == [
        (0, 0, 2, True, 2), (0, 0, 2, False, 2), (1, 2, 4, True, 2)]


def test_import_fastcorr_does_not_import_dask():
    code = "import sys, fastcorr; fastcorr.correlate2d([[1.0]], [[1.0]]); print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_distributed_local_cluster():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 40, 50)).astype(np.float32)
    k = rng.standard_normal((5, 4)).astype(np.float32)
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, worker_dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        y = fdask.correlate2d(da.from_array(x, chunks=(1, 16, 16)), k, "same", "symm")
        got = client.compute(y).result()
        got_input = client.compute(fdask.correlate2d(da.from_array(x, chunks=(1, 16, 16)), k, "same", "symm",
                                                     chunks="input")).result()
        threads = client.submit(fdask._runtime_threads, 2, False, pure=False).result()
    ref = np.stack([fastcorr.correlate2d(f, k, "same", "symm") for f in x])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got_input, ref, rtol=1e-5, atol=1e-4)
    assert threads == 1  # one worker thread per process, OMP_NUM_THREADS=1 in workers


# ----------------------------------------------------------------------------
# conv2d


def _ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", **_):
    """A plain numpy NCHW (or CHW) conv2d with torch semantics, in float64."""
    if np.ndim(x) == 3:
        return _ref_conv2d(np.asarray(x)[None], w, b, stride, padding, dilation, groups, padding_mode)[0]
    s = stride if isinstance(stride, tuple) else (stride, stride)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    kh, kw = w.shape[2:]
    spans = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    if padding == "same":
        pads = [((t - 1) // 2, t - 1 - (t - 1) // 2) for t in spans]
    elif padding == "valid":
        pads = [(0, 0), (0, 0)]
    else:
        p = padding if isinstance(padding, tuple) else (padding, padding)
        pads = [(p[0], p[0]), (p[1], p[1])]
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[padding_mode]
    xp = np.pad(np.asarray(x, np.float64), [(0, 0), (0, 0), *pads], mode=np_mode)
    n, c, hp, wp = xp.shape
    ho, wo = (hp - spans[0]) // s[0] + 1, (wp - spans[1]) // s[1] + 1
    cout, cin_g = w.shape[:2]
    out = np.zeros((n, cout, ho, wo))
    og = cout // groups
    for g in range(groups):
        xs = xp[:, g * cin_g:(g + 1) * cin_g]
        ws = np.asarray(w, np.float64)[g * og:(g + 1) * og]
        for j in range(kh):
            for k in range(kw):
                patch = xs[:, :, j * d[0]: j * d[0] + s[0] * (ho - 1) + 1: s[0], k * d[1]: k * d[1] + s[1] * (wo - 1) + 1: s[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, j, k])
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


@pytest.fixture
def conv2d_available(monkeypatch):
    """fastcorr.conv2d, or (until it lands on this branch) the numpy reference."""
    if not hasattr(fastcorr, "conv2d"):
        def fake(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, padding_mode="zeros", method="auto", num_threads=None):
            dtype = np.float32 if np.asarray(x).dtype == np.float32 else np.float64
            return _ref_conv2d(x, w, b, stride, padding, dilation, groups, padding_mode).astype(dtype)
        monkeypatch.setattr(fastcorr, "conv2d", fake, raising=False)
    return fastcorr.conv2d


CONV_CASES = [
    # (x shape, w shape, chunks, kwargs)
    ((4, 3, 20, 22), (5, 3, 3, 3), (2, 3, 20, 22), dict(padding=1)),  # batch chunks only
    ((2, 3, 20, 22), (5, 3, 3, 3), (1, 2, 6, 7), dict(padding=1)),
    ((2, 4, 21, 19), (6, 2, 4, 5), (2, 4, 4, 3), dict(groups=2, padding="same", padding_mode="reflect")),
    ((2, 3, 23, 20), (4, 3, 3, 5), (1, 3, 5, 6), dict(stride=2, padding=(2, 1), padding_mode="circular")),
    ((1, 2, 25, 24), (3, 2, 3, 3), (1, 2, 7, 5), dict(stride=(3, 2), dilation=2, padding=3, padding_mode="replicate")),
    ((3, 2, 17, 16), (2, 2, 2, 2), (2, 1, 3, 4), dict(stride=4, padding="valid")),
    ((2, 17, 16), (2, 2, 4, 1), (1, 8, 8), dict(padding=(0, 2), dilation=(2, 1))),  # unbatched CHW
]


@pytest.mark.parametrize("layout", ["seams", "input"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_equals_in_memory(conv2d_available, case, dtype, layout):
    xs, ws, chunks, kw = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y = fdask.conv2d(da.from_array(x, chunks=chunks), w, b, chunks=layout, **kw)
    ref = _ref_conv2d(x, w, b, **kw)
    mem = conv2d_available(x, w, b, **kw)
    assert y.shape == ref.shape == mem.shape and y.dtype == mem.dtype
    got = y.compute(scheduler="sync")
    tol = _tol(dtype)
    np.testing.assert_allclose(got, ref, **tol)
    np.testing.assert_allclose(mem, ref, **tol)


def test_conv2d_bad_input(conv2d_available):
    x = da.zeros((2, 3, 8, 8), chunks=4)
    with pytest.raises(ValueError, match="channels"):
        fdask.conv2d(x, np.ones((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="groups"):
        fdask.conv2d(x, np.ones((4, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="stride"):
        fdask.conv2d(x, np.ones((4, 3, 3, 3)), stride=0)
    with pytest.raises(ValueError, match="same"):
        fdask.conv2d(x, np.ones((4, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        fdask.conv2d(x, np.ones((4, 3, 3, 3)), padding_mode="mirror")
    with pytest.raises(ValueError, match="smaller"):
        fdask.conv2d(x, np.ones((4, 3, 9, 9)))
    with pytest.raises(ValueError, match="input"):
        fdask.conv2d(da.zeros((8, 8)), np.ones((4, 3, 3, 3)))
