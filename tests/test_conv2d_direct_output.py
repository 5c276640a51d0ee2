"""conv2d's direct-output kernel (``fc_conv_po``: pixel-vectorised, written
straight into the output, masked row tails; AVX-512 or AVX2 twin at run
time), forced on and off, against a naive float64 loop and torch: 1x1 layers
read in place (runs of whole images), strided / padded / dilated / grouped
layers (runs of output rows), channel counts off the register block, rows
of every tail length, bias, float32 and float64, several threads."""
import dataclasses

import numpy as np
import scipy.ndimage
import pytest

import fastcorr
from fastcorr._engine import conv as _conv
from fastcorr.methods import _blas

from test_conv2d import naive_conv2d

RNG = np.random.default_rng(2026)

CASES = [
    # (N, Cin, Cout, H, W, k, stride, padding, dilation, groups, mode)
    (2, 5, 7, 9, 11, 1, 1, 0, 1, 1, "zeros"),        # 1x1 in place, 99-pixel runs
    (3, 8, 16, 7, 7, 1, 1, 0, 1, 1, "zeros"),        # 1x1, 49 pixels: a part-filled vector
    (1, 3, 12, 20, 61, 2, 1, 0, 1, 1, "zeros"),      # rows of 60 (48 + 12)
    (1, 3, 9, 30, 69, 7, 2, 3, 1, 1, "zeros"),       # stride 2, 7x7, rows of 35
    (2, 6, 10, 13, 17, 3, 1, 1, 1, 2, "reflect"),    # groups, padding mode
    (1, 4, 20, 12, 80, 3, 1, 2, 2, 1, "circular"),   # dilation, rows of 80
    (1, 2, 3, 5, 40, 3, (1, 2), (1, 0), 1, 1, "replicate"),  # 3 channels: one part block
]


def _run(case, dtype, mode, threads):
    n, cin, cout, h, w, k, s, p, d, g, pm = case
    x = RNG.standard_normal((n, cin, h, w)).astype(dtype)
    wt = RNG.standard_normal((cout, cin // g, k, k)).astype(dtype)
    b = RNG.standard_normal(cout).astype(dtype)
    old = _conv._PO_MODE
    try:
        _conv._PO_MODE = mode
        _conv._band_plan_cached.cache_clear()
        y = fastcorr.conv2d(x, wt, b, s, p, d, g, padding_mode=pm, method="direct", num_threads=threads)
    finally:
        _conv._PO_MODE = old
        _conv._band_plan_cached.cache_clear()
    return x, wt, b, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_output_kernel_against_naive(case, dtype, threads):
    n, cin, cout, h, w, k, s, p, d, g, pm = case
    x, wt, b, y = _run(case, dtype, "on", threads)
    ref = naive_conv2d(x, wt, b, s, p, d, g, pm)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_output_kernel_against_torch(dtype):
    torch = pytest.importorskip("torch")
    for case in CASES:
        n, cin, cout, h, w, k, s, p, d, g, pm = case
        x, wt, b, y = _run(case, dtype, "on", 2)
        if pm != "zeros":
            continue  # torch pads with F.pad for these; the naive test covers them
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b),
                                         s, p, d, g).numpy()
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_direct_output_kernel_keeps_nan_local():
    # a NaN reaches exactly the outputs whose window holds it
    x = RNG.standard_normal((1, 3, 12, 70)).astype(np.float32)
    x[0, 1, 5, 33] = np.nan
    wt = RNG.standard_normal((9, 3, 3, 3)).astype(np.float32)
    old = _conv._PO_MODE
    try:
        _conv._PO_MODE = "on"
        _conv._band_plan_cached.cache_clear()
        y = fastcorr.conv2d(x, wt, None, 1, 1, method="direct")
    finally:
        _conv._PO_MODE = old
        _conv._band_plan_cached.cache_clear()
    bad = np.isnan(y[0])
    expect = np.zeros_like(bad)
    expect[:, 4:7, 32:35] = True
    np.testing.assert_array_equal(bad, expect)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 5, 7, 4, 6), (5, 16, 8, 3, 3), (3, 1, 9, 7, 5), (1, 6, 10, 5, 9),
                                   (3, 9, 17, 1, 1)])
def test_pointwise_batched_gemm_backward_against_naive(monkeypatch, dtype, threads, shape):
    # the batched GEMM backward of 1x1 layers (in place on NCHW, pixel slices
    # crossing image boundaries; and on channel-major copies, grad_input by
    # one GEMM or per image), with every call threaded, against the three
    # sums written out in float64
    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_conv, "_PW_GEMM_MODE", "on")
    n, cin, cout, h, w = shape
    x = RNG.standard_normal((n, cin, h, w)).astype(dtype)
    wt = RNG.standard_normal((cout, cin, 1, 1)).astype(dtype)
    gy = RNG.standard_normal((n, cout, h, w)).astype(dtype)
    for inplace, gx_gemm in ((True, True), (False, True), (False, False)):
        if n == 1 and not inplace:
            continue  # (the copies serve batches only)
        monkeypatch.setattr(_conv, "_PW_INPLACE", inplace)
        monkeypatch.setattr(_conv, "_PW_GEMM_GX", gx_gemm)
        got = fastcorr.conv2d_backward(x, wt, gy, num_threads=threads)
        x64, w64, g64 = (a.astype(np.float64) for a in (x, wt[:, :, 0, 0], gy))
        ref = (np.einsum("oc,nohw->nchw", w64, g64), np.einsum("nohw,nchw->oc", g64, x64)[:, :, None, None],
               g64.sum(axis=(0, 2, 3)))
        tol = 2e-5 if dtype == np.float32 else 1e-12
        for g, r in zip(got, ref):
            assert g.dtype == dtype and g.shape == r.shape
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))


def test_blas_threads_restores_every_library():
    # blas_threads sets each BLAS library's count itself (not through
    # threadpoolctl's limit): inside the block every library runs 1 thread,
    # after it (also after an exception) each has its own count back
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _conv.blas_threads_pinnable():
        pytest.skip("threadpoolctl sees no BLAS")

    def counts():  # the libraries the engine pins (those loaded when it first looked)
        return [lib.get_num_threads() for lib in _blas.blas_controller().lib_controllers]

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = counts()
        with _blas.blas_threads(1):
            assert all(c == 1 for c in counts())
        assert counts() == before
        with pytest.raises(RuntimeError):
            with _blas.blas_threads(1):
                raise RuntimeError("inside")
        assert counts() == before
        x = RNG.standard_normal((3, 6, 5, 4)).astype(np.float32)
        fastcorr.conv2d_backward(x, RNG.standard_normal((7, 6, 1, 1)).astype(np.float32),
                                 RNG.standard_normal((3, 7, 5, 4)).astype(np.float32))
        assert counts() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 5, 7, 4, 6), (5, 16, 8, 3, 3), (3, 9, 17, 1, 1), (4, 24, 40, 14, 14)])
def test_pointwise_backward_grad_input_on_the_forward_kernel(monkeypatch, dtype, threads, shape):
    # a 1x1 layer's grad_input as a 1x1 convolution of grad_output with the
    # weights transposed (the forward's direct-output kernel, where it runs),
    # grad_weight and grad_bias by the in-place GEMMs beside it, against the
    # three sums written out in float64
    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_conv, "_PW_GEMM_MODE", "on")
    monkeypatch.setattr(_conv, "_PW_GX_MIN_IMAGE", 0)
    monkeypatch.setattr(_conv, "_PW_GX_MIN_PIXELS", 0)
    forwards = []
    blocked = _conv._blocked_forward
    monkeypatch.setattr(_conv, "_blocked_forward", lambda q: forwards.append(q.x.shape) or blocked(q))
    n, cin, cout, h, w = shape
    x = RNG.standard_normal((n, cin, h, w)).astype(dtype)
    wt = RNG.standard_normal((cout, cin, 1, 1)).astype(dtype)
    gy = RNG.standard_normal((n, cout, h, w)).astype(dtype)
    x64, w64, g64 = (a.astype(np.float64) for a in (x, wt[:, :, 0, 0], gy))
    ref = (np.einsum("oc,nohw->nchw", w64, g64), np.einsum("nohw,nchw->oc", g64, x64)[:, :, None, None],
           g64.sum(axis=(0, 2, 3)))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for on in (True, False):
        monkeypatch.setattr(_conv, "_PW_GX_FORWARD", on)
        forwards.clear()
        got = fastcorr.conv2d_backward(x, wt, gy, num_threads=threads)
        for g, r in zip(got, ref):
            assert g.dtype == dtype and g.shape == r.shape
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))
        if not on:
            assert forwards == []
    from fastcorr._engine.validate import conv2d_args

    p = conv2d_args(x, wt, None, 1, 0, 1, 1, "zeros", "auto", threads)
    q = dataclasses.replace(p, x=gy, w=np.ascontiguousarray(wt[:, :, 0, 0].T)[:, :, None, None], bias=None)
    tables, _, pix = _conv._band_plan(q)
    if not pix.size and tables[0][_conv._DIMS.index("po")]:  # the kernel runs here: it was used
        monkeypatch.setattr(_conv, "_PW_GX_FORWARD", True)
        forwards.clear()
        fastcorr.conv2d_backward(x, wt, gy, num_threads=threads)
        assert forwards == [gy.shape]


@pytest.mark.parametrize("where", ["separable", "nd"])
def test_kernel_svd_runs_on_one_blas_thread(monkeypatch, where):
    # a kernel's SVD (is it separable?) runs with BLAS pinned to one thread: a
    # multithreaded LAPACK call leaves OpenBLAS's threads spinning beside the
    # correlation that follows; the counts come back after it
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _conv.blas_threads_pinnable():
        pytest.skip("threadpoolctl sees no BLAS")
    from fastcorr.methods import separable

    seen = []
    svd = np.linalg.svd

    def spy(*args, **kwargs):
        seen.append([lib.get_num_threads() for lib in _blas.blas_controller().lib_controllers])
        return svd(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", spy)
    rng = np.random.default_rng(5)
    w = np.outer(rng.standard_normal(9), rng.standard_normal(9)) + rng.standard_normal((9, 9))  # full rank
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = [lib.get_num_threads() for lib in _blas.blas_controller().lib_controllers]
        if where == "separable":
            assert len(separable.decompose(w, np.float64)) == 9
        else:
            g = np.exp(-0.5 * (np.arange(15) - 7.0) ** 2 / 4.0)
            k3 = np.multiply.outer(np.multiply.outer(g, g), g)  # a separable 3-D kernel
            x = rng.standard_normal((60, 60, 60))
            got = fastcorr.correlate(x, k3, "same", method="auto")
            want = scipy.ndimage.correlate(x, k3, mode="constant")
            np.testing.assert_allclose(got, want, atol=1e-10 * np.abs(x).max() * k3.sum())
        after = [lib.get_num_threads() for lib in _blas.blas_controller().lib_controllers]
    assert seen and all(c == 1 for counts in seen for c in counts)
    assert after == before and max(before) == 2
