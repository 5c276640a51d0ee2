"""FFT method vs scipy: modes, boundaries, fill values, dtypes, tiling, backends."""
import itertools

import numpy as np
import pytest
import scipy.fft
import scipy.signal

import fastcorr
from fastcorr import _fft

TOL = {np.float32: 1e-5, np.float64: 1e-12, np.complex64: 1e-5, np.complex128: 1e-12}


def _err(y, ref, x, w, fill=0):
    scale = max(np.abs(x).max(), abs(fill)) * np.abs(w).sum()
    return np.abs(y - ref).max() / scale


def _ref(func, x, w, mode, boundary, fill):
    hi = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(w) else np.float64
    return getattr(scipy.signal, func)(x.astype(hi), w.astype(hi), mode, boundary, fill)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_fft_matches_scipy(dtype, func):
    rng = np.random.default_rng(0)
    for (H, W), (kh, kw) in [((13, 17), (3, 4)), ((5, 6), (9, 11)), ((40, 33), (1, 1)), ((37, 29), (6, 7))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal((H, W)).astype(dtype)
            w = w - 0.5j
        for mode, boundary, fill in itertools.product(["full", "same", "valid"], ["fill", "wrap", "symm"], [0, 2.5]):
            ref = _ref(func, x, w, mode, boundary, fill)
            y = getattr(fastcorr, func)(x, w, mode, boundary, fill, method="fft")
            assert y.dtype == np.result_type(x, w)
            assert y.shape == ref.shape
            assert _err(y, ref, x, w, fill) <= TOL[dtype], (H, W, kh, kw, mode, boundary, fill)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fft_tiled_large_image(dtype, monkeypatch, request):
    # Image much larger than the kernel: overlap-save with many tiles,
    # partial tiles at both edges, every boundary. (Tiles are forced: at
    # this size one whole transform is cheaper.)
    monkeypatch.setattr(_fft, "_MAX_TILE_ELEMS", 128 * 128)
    _fft._plan.cache_clear()
    request.addfinalizer(_fft._plan.cache_clear)  # plans made under the patch
    rng = np.random.default_rng(1)
    x = rng.standard_normal((301, 517)).astype(dtype)
    w = rng.standard_normal((5, 3)).astype(dtype)
    (N0, B0, t0), (N1, B1, t1) = _fft.plan((301, 517), (5, 3))
    assert t0 * t1 > 1
    for mode, boundary in itertools.product(["same", "valid", "full"], ["fill", "wrap", "symm"]):
        ref = _ref("correlate2d", x, w, mode, boundary, -1.0)
        y = fastcorr.correlate2d(x, w, mode, boundary, -1.0, method="fft", num_threads=2)
        assert _err(y, ref, x, w, 1.0) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("shape, kshape", [((64, 64), (101, 101)), ((40, 90), (31, 8)),
                                           ((70, 33), (2, 41)), ((50, 50), (51, 50)),
                                           ((1, 1), (5, 9)), ((3, 2), (12, 7))])
def test_fft_wraparound_with_fill_margins(shape, kshape, func, dtype):
    # A kernel as large as the image, fill boundary: one tile per axis whose
    # length is shorter than the extended image, the windows wrapping onto
    # its zero margin; the output sits across the transform's end.
    rng = np.random.default_rng(sum(shape) + sum(kshape))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(kshape).astype(dtype)
    for mode in ("same", "full"):
        # per axis: output length and the data's extent in the extended image
        axes = []
        for n, k in zip(shape, kshape):
            lead = (k - 1) // 2 if mode == "same" else k - 1
            axes.append((n if mode == "same" else n + k - 1, (lead, lead + n)))
        plan = _fft.plan([a[0] for a in axes], kshape, np.dtype(dtype).kind == "c", [a[1] for a in axes])
        # one tile shorter than the whole extended axis: it wraps around
        wrapped = [p for p, (out, _), k in zip(plan, axes, kshape)
                   if p[2] == 1 and p[0] < scipy.fft.next_fast_len(out + k - 1)]
        assert wrapped
        for fill in (0.0, -1.5):
            ref = _ref(func, x, w, mode, "fill", fill)
            y = getattr(fastcorr, func)(x, w, mode, "fill", fill, method="fft")
            assert _err(y, ref, x, w, fill) <= TOL[dtype], (mode, fill)


def test_fft_float32_computed_in_complex64():
    seen = []

    class Spy:
        __ua_domain__ = "numpy.scipy.fft"

        def __ua_function__(self, method, args, kwargs):
            if method.__name__ == "irfft2":
                seen.append(np.asarray(args[0]).dtype)
            return NotImplemented

    x = np.random.default_rng(2).standard_normal((64, 64)).astype(np.float32)
    with scipy.fft.set_backend(Spy()):
        y = fastcorr.correlate2d(x, np.ones((5, 5), np.float32), "same", method="fft")
    assert y.dtype == np.float32
    assert seen and all(d == np.complex64 for d in seen)


def test_fft_refuses_integers():
    with pytest.raises(ValueError, match="integer"):
        fastcorr.correlate2d(np.ones((8, 8), np.int32), np.ones((3, 3), np.int32), method="fft")


class _CountingBackend:
    """A scipy.fft backend that counts calls and defers to the default one."""

    __ua_domain__ = "numpy.scipy.fft"

    def __init__(self):
        self.calls = []

    def __ua_function__(self, method, args, kwargs):
        self.calls.append(method.__name__)
        return NotImplemented  # fall through to the next (default) backend


def test_fft_honours_set_backend():
    be = _CountingBackend()
    x = np.random.default_rng(3).standard_normal((50, 60))
    w = np.random.default_rng(4).standard_normal((7, 7))
    with scipy.fft.set_backend(be):
        y = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=1)
    assert any(name.startswith("rfft") for name in be.calls)
    assert any(name.startswith("irfft") for name in be.calls)
    assert _err(y, _ref("correlate2d", x, w, "same", "fill", 0), x, w) <= 1e-12


def test_fft_threads_agree():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 300))
    w = rng.standard_normal((9, 9))
    a = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=1)
    b = fastcorr.correlate2d(x, w, "same", method="fft", num_threads=2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(w).sum() * np.abs(x).max())


def _conv_ref(x, w, stride, dil, groups):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    khd, kwd = dil * (kh - 1) + 1, dil * (kw - 1) + 1
    wd = np.zeros((O, Cg, khd, kwd))
    wd[:, :, ::dil, ::dil] = w
    Og = O // groups
    out = np.zeros((N, O, H - khd + 1, W - kwd + 1))
    for n in range(N):
        for o in range(O):
            g = o // Og
            for c in range(Cg):
                out[n, o] += scipy.signal.correlate2d(x[n, g * Cg + c], wd[o, c], "valid")
    return out[:, :, ::stride, ::stride]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [(2, 3, 10, 12, 4, 3, 1, 1, 1), (3, 4, 17, 9, 6, 2, 2, 1, 2),
                                  (1, 6, 20, 20, 6, 3, 1, 2, 3), (2, 8, 16, 16, 8, 5, 3, 1, 1)])
def test_conv2d_nchw_fft(dtype, case):
    N, C, H, W, O, k, s, d, g = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // g, k, k)).astype(dtype)
    y = _fft.conv2d_nchw(x, w, s, d, g, num_threads=2)
    ref = _conv_ref(x.astype(np.float64), w.astype(np.float64), s, d, g)
    assert y.dtype == dtype and y.shape == ref.shape
    e = np.abs(y - ref).max() / (np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max())
    assert e <= TOL[dtype]


def test_conv2d_nchw_fft_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 15, 13)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), groups=2, dilation=2).numpy()
    np.testing.assert_allclose(_fft.conv2d_nchw(x, w, 1, 2, 2), ref, atol=1e-4)


def test_conv2d_nchw_fft_refuses():
    with pytest.raises(ValueError, match="float32/float64"):
        _fft.conv2d_nchw(np.ones((1, 1, 5, 5), np.int32), np.ones((1, 1, 3, 3), np.int32))
    with pytest.raises(ValueError, match="groups"):
        _fft.conv2d_nchw(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), groups=2)


def _extended_reference(x, w, shape, offsets):
    """Naive float64/complex128 offset correlation with a zero fill."""
    hi = np.complex128 if np.iscomplexobj(x) else np.float64
    kh, kw = w.shape
    E = np.zeros((shape[0] + kh - 1, shape[1] + kw - 1), dtype=hi)
    for i in range(E.shape[0]):
        for j in range(E.shape[1]):
            a, b = i + offsets[0], j + offsets[1]
            if 0 <= a < x.shape[0] and 0 <= b < x.shape[1]:
                E[i, j] = x[a, b]
    return scipy.signal.correlate2d(E, w.astype(hi), "valid")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_fft_whole_image_path_offsets(dtype, monkeypatch):
    # The single-tile path transforms x itself when x lies whole in the
    # extended image; every offset around that region, taken or not.
    taken = []
    whole = _fft._whole_image
    monkeypatch.setattr(_fft, "_whole_image", lambda *a: taken.append(a[5:7]) or whole(*a))
    rng = np.random.default_rng(7)
    for (H, W), (kh, kw) in [((9, 12), (5, 3)), ((6, 5), (7, 9))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        shape = (H + 2, W + 1)
        for off in itertools.product(range(-kh - 2, 3), range(-kw - 2, 3)):
            y = _fft.correlate(x, w, shape, off, 0, 0.0, 1)
            assert _err(y, _extended_reference(x, w, shape, off), x, w) <= TOL[dtype], off
    assert taken and all(s0 >= 0 and s1 >= 0 for s0, s1 in taken)


def test_fft_kernel_changed_in_place_is_not_reused():
    # The kernel-spectrum cache compares the kernel's values, not its identity.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 40))
    w = rng.standard_normal((21, 21))
    first = fastcorr.correlate2d(x, w, "same", method="fft")
    w[10, 3] += 1.0
    second = fastcorr.correlate2d(x, w, "same", method="fft")
    assert _err(first, _ref("correlate2d", x, w, "same", "fill", 0), x, w) > 1e-6
    assert _err(second, _ref("correlate2d", x, w, "same", "fill", 0), x, w) <= 1e-12
