"""FFT method vs scipy: modes, boundaries, fill values, dtypes, tiling, backends."""
import functools
import itertools

import numpy as np
import pytest
import scipy.fft
import scipy.signal

import fastcorr
from fastcorr.methods import fft as _fft

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


@pytest.mark.parametrize("size", [64, 300])  # the row-spectrum plan, 2-D transforms
def test_fft_float32_computed_in_complex64(size):
    seen = []

    class Spy:
        __ua_domain__ = "numpy.scipy.fft"

        def __ua_function__(self, method, args, kwargs):
            if method.__name__ in ("irfft2", "irfft"):
                seen.append(np.asarray(args[0]).dtype)
            return NotImplemented

    x = np.random.default_rng(2).standard_normal((size, size)).astype(np.float32)
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


def _extended_reference(x, w, shape, offsets, fill=0.0):
    """Naive float64/complex128 offset correlation, ``fill`` outside x."""
    hi = np.complex128 if np.iscomplexobj(x) else np.float64
    kh, kw = w.shape
    E = np.full((shape[0] + kh - 1, shape[1] + kw - 1), fill, dtype=hi)
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
    # (Real inputs on ducc0 take the in-place tile path instead: scipy.fft here.)
    from fastcorr.methods import _fftlib

    monkeypatch.setattr(_fftlib, "_choice", "scipy")
    taken = []
    whole = _fft._whole_image
    monkeypatch.setattr(_fft, "_whole_image", lambda *a: taken.append(a[5:7]) or whole(*a))
    _plans_without_rows(monkeypatch)
    rng = np.random.default_rng(7)
    for (H, W), (kh, kw) in [((9, 12), (5, 3)), ((6, 5), (7, 9))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        shape = (H + 2, W + 1)
        for off in itertools.product(range(-kh - 2, 3), range(-kw - 2, 3)):
            y = _fft.correlate(x, w, shape, off, 0, 0.0, 1)
            assert _err(y, _extended_reference(x, w, shape, off), x, w) <= TOL[dtype], off
    assert taken and all(s0 >= 0 and s1 >= 0 for s0, s1 in taken)


def _plans_without_rows(monkeypatch):
    """Plans chosen afresh without the row-spectrum plan (for this test)."""
    monkeypatch.setattr(_fft, "ROW_PLAN_ELEMENTS", 0)
    monkeypatch.setattr(_fft, "_choose_plan", functools.lru_cache(maxsize=None)(_fft._choose_plan.__wrapped__))


def _plans_with_rows(monkeypatch):
    """Plans that take the row-spectrum plan wherever it can serve."""
    monkeypatch.setattr(_fft, "ROW_PLAN_ELEMENTS", 1 << 40)
    monkeypatch.setattr(_fft, "SPEC_UNITS", {4: 0.0, 8: 0.0})
    monkeypatch.setattr(_fft, "_choose_plan", functools.lru_cache(maxsize=None)(_fft._choose_plan.__wrapped__))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fill", [0.0, 1.5])
def test_fft_row_spectrum_plan_offsets(dtype, fill, monkeypatch):
    # Row transforms and column sums in the frequency domain: every offset
    # around the image, fill values, even and odd kernels, kernels taller
    # than the image; against the extended image correlated in float64.
    taken = []
    rows = _fft._row_spectrum
    monkeypatch.setattr(_fft, "_row_spectrum", lambda *a: taken.append(a[3:5]) or rows(*a))
    _plans_with_rows(monkeypatch)
    rng = np.random.default_rng(17)
    for (H, W), (kh, kw) in [((9, 12), (5, 3)), ((6, 5), (7, 9)), ((1, 7), (4, 1))]:
        x = rng.standard_normal((H, W)).astype(dtype)
        w = rng.standard_normal((kh, kw)).astype(dtype)
        shape = (H + 2, W + 1)
        for off in itertools.product(range(-kh - 2, 3), range(-kw - 2, 3)):
            y = _fft.correlate(x, w, shape, off, 0, fill, 1)
            assert y.dtype == dtype and y.shape == shape
            assert _err(y, _extended_reference(x, w, shape, off, fill), x, w, fill) <= TOL[dtype], off
    # row offsets from above the image to below it all took the plan
    assert len(taken) > 50 and min(o[0] for o in taken) <= -9 and max(o[0] for o in taken) >= 2


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


def _spectral_reference(X, K, out_rows, off):
    """Y[m] = sum_j K[j] X[m + off + j], rows of X outside it zero (complex128)."""
    Y = np.zeros((out_rows, X.shape[1]), complex)
    for m in range(out_rows):
        for j in range(K.shape[0]):
            if 0 <= m + off + j < X.shape[0]:
                Y[m] += K[j] * X[m + off + j]
    return Y


@pytest.mark.parametrize("portable", [False, True])  # the AVX2 loop (where the CPU has it), the plain one
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spectral_rows_kernel(dtype, portable):
    # The compiled column sums against a loop: random sizes (blocks of four
    # rows and their edges, vectors and the masked tail), offsets above and
    # below the image, padded rows, 1-3 threads.
    from fastcorr.methods.fft_kernels import spectral_rows

    cdtype = np.complex64 if dtype == np.float32 else np.complex128
    rng = np.random.default_rng(21)
    for _ in range(150):
        H, kh, F, Ho = (int(v) for v in rng.integers(1, [20, 12, 30, 25]))
        off = int(rng.integers(-kh - 3, H + 2))
        pad = 2 * int(rng.integers(0, 5))
        X = (rng.standard_normal((H, F)) + 1j * rng.standard_normal((H, F))).astype(cdtype)
        K = (rng.standard_normal((kh, F)) + 1j * rng.standard_normal((kh, F))).astype(cdtype)
        a = np.zeros((kh, 2 * F + pad), dtype)
        b = np.zeros_like(a)
        a[:, 0:2 * F:2] = a[:, 1:2 * F:2] = K.real
        b[:, 0:2 * F:2] = b[:, 1:2 * F:2] = K.imag
        Y = np.full((Ho, 2 * F + pad), 7.0, dtype)
        spectral_rows(X.view(dtype), a, b, Y, off, int(rng.integers(1, 4)), portable)
        ref = _spectral_reference(X, K, Ho, off)
        got = Y[:, :2 * F].astype(np.float64).view(complex)
        scale = np.abs(X).max() * np.abs(K).sum(axis=0).max()
        assert np.abs(got - ref).max() <= TOL[dtype] * scale, (H, kh, F, Ho, off)
        assert (Y[:, 2 * F:] == 7.0).all()  # the padding is not written


def test_spectral_rows_rejects_mismatched_shapes():
    from fastcorr.methods.fft_kernels import spectral_rows

    x = np.zeros((4, 6))
    with pytest.raises(ValueError, match="spectral_rows"):
        spectral_rows(x, np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((4, 6)), 0, 1)  # a too short
    with pytest.raises(ValueError, match="spectral_rows"):
        spectral_rows(x, np.zeros((3, 6)), np.zeros((2, 6)), np.zeros((4, 6)), 0, 1)  # b differs
    with pytest.raises(ValueError, match="spectral_rows"):
        spectral_rows(np.zeros((4, 5)), np.zeros((3, 6)), np.zeros((3, 6)), np.zeros((4, 6)), 0, 1)  # odd
