"""conv2d's column Winograd forward (F(2,4) along the columns of layers with
column stride 2 and 7-8 wide kernels, ``_engine.conv._w24_forward``):
against a float64 naive loop (and torch when installed), on every padding
mode, stride, odd and even output widths, channel counts that leave a block
part-filled, one and two threads; 'auto' choosing it; NaN / inf falling back
to the direct sums."""
import numpy as np
import pytest

import fastcorr
from fastcorr._engine import conv as _conv

_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def naive_conv2d(x, w, b, stride, pad, mode="zeros"):
    """float64 cross-correlation, torch semantics (NCHW, OIHW)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    sh, sw = stride
    ph, pw = pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=_PAD[mode])
    N, C, H, W = xp.shape
    Co, _, kh, kw = w.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    y = np.zeros((N, Co, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def _err(y, ref, x, w):
    return np.abs(y - ref).max() / (np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max())


@pytest.fixture
def w24_on(monkeypatch):
    monkeypatch.setattr(_conv, "_W24_MODE", "on")
    calls = []
    real = _conv._w24_forward
    monkeypatch.setattr(_conv, "_w24_forward", lambda p: calls.append(p) or real(p))
    return calls


CASES = [  # N, C, Cout, H, W, k, stride, padding, mode
    (1, 3, 64, 40, 44, 7, (2, 2), (3, 3), "zeros"),
    (2, 3, 20, 23, 41, 7, (2, 2), (3, 3), "zeros"),       # odd output width, 20 channels (block part-filled)
    (1, 5, 9, 17, 30, 8, (2, 2), (2, 3), "zeros"),        # 8 wide kernel
    (1, 2, 16, 21, 37, 7, (1, 2), (3, 3), "reflect"),     # row stride 1
    (3, 4, 8, 26, 36, 7, (3, 2), (1, 2), "replicate"),    # row stride 3
    (1, 3, 12, 19, 25, 7, (2, 2), (3, 3), "circular"),
    (2, 1, 10, 15, 16, 7, (2, 2), (0, 0), "zeros"),       # no padding, 5 output columns
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_w24_matches_naive(w24_on, case, dtype):
    N, C, Co, H, W, k, stride, pad, mode = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Co, C, k, k)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    ref = naive_conv2d(x, w, b, stride, pad, mode)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for nt in (1, 2):
        y = fastcorr.conv2d(x, w, b, stride, pad, padding_mode=mode, num_threads=nt)
        assert y.dtype == dtype and y.shape == ref.shape
        assert _err(y, ref, x, w) <= tol
    y = fastcorr.conv2d(x, w, None, stride, pad, padding_mode=mode)
    assert _err(y, ref - b[None, :, None, None], x, w) <= tol
    assert len(w24_on) == 3


def test_w24_against_torch(w24_on):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 64, 70)).astype(np.float32)
    w = rng.standard_normal((24, 3, 7, 7)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    y = fastcorr.conv2d(x, w, b, 2, 3)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(*(torch.from_numpy(a).double() for a in (x, w, b)), stride=2,
                                         padding=3).numpy()
    assert _err(y, ref, x, w) <= 1e-5
    assert w24_on


def test_w24_out_argument(w24_on):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 3, 30, 34))
    w = rng.standard_normal((16, 3, 7, 7))
    out = np.full((1, 16, 15, 17), np.nan)
    r = fastcorr.conv2d(x, w, None, 2, 3, out=out)
    assert r is out
    assert _err(out, naive_conv2d(x, w, None, (2, 2), (3, 3)), x, w) <= 1e-12


@pytest.mark.parametrize("where", ["input", "weight"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_w24_nonfinite_falls_back_to_direct(w24_on, where, value):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 24, 40)).astype(np.float32)
    w = rng.standard_normal((8, 2, 7, 7)).astype(np.float32)
    if where == "input":
        x[0, 1, 9, 17] = value
    else:
        w[3, 1, 2, 5] = value
    y = fastcorr.conv2d(x, w, None, 2, 3)
    d = fastcorr.conv2d(x, w, None, 2, 3, method="direct")
    np.testing.assert_array_equal(np.isnan(y), np.isnan(d))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(d))
    fin = np.isfinite(d)
    np.testing.assert_allclose(y[fin], d[fin], rtol=1e-5, atol=1e-4)


def test_auto_choice(monkeypatch):
    """'auto' runs it on the 7x7 stride-2 stem layer with the AVX-512 kernel; not
    on explicit method='direct', 3-wide kernels, stride 1, dilation, few output
    channels or many input channels."""
    from fastcorr.methods import conv_direct

    calls = []
    real = _conv._w24_forward
    monkeypatch.setattr(_conv, "_w24_forward", lambda p: calls.append(p) or real(p))
    x = np.zeros((1, 3, 80, 80), np.float32)
    fastcorr.conv2d(x, np.zeros((64, 3, 7, 7), np.float32), None, 2, 3)
    assert len(calls) == (1 if conv_direct.po_block_channels() >= 8 else 0)
    fastcorr.conv2d(x, np.zeros((64, 3, 7, 7), np.float32), None, 2, 3, method="direct")
    fastcorr.conv2d(x, np.zeros((64, 3, 3, 3), np.float32), None, 2, 1)
    fastcorr.conv2d(x, np.zeros((64, 3, 7, 7), np.float32), None, 1, 3)
    fastcorr.conv2d(x, np.zeros((64, 3, 7, 7), np.float32), None, 2, 3, dilation=2)
    fastcorr.conv2d(x, np.zeros((64, 3, 7, 7), np.float32), None, 2, 3, method="im2col")
    fastcorr.conv2d(x, np.zeros((16, 3, 7, 7), np.float32), None, 2, 3)  # few output channels
    fastcorr.conv2d(np.zeros((1, 32, 80, 80), np.float32), np.zeros((64, 32, 7, 7), np.float32), None, 2, 3)
    assert len(calls) == (1 if conv_direct.po_block_channels() >= 8 else 0)


@pytest.mark.parametrize("geom", [
    (4, 64, 48, 14, 14, 1, (1, 1), (0, 0)),    # 1x1: direct-output kernel on the image itself
    (2, 8, 20, 30, 30, 3, (2, 2), (1, 1)),     # stride 2: band planes, 20 channels (a part-filled block)
    (1, 3, 64, 64, 64, 7, (2, 2), (3, 3)),     # the stem layer with the direct sums
])
def test_threads_pack_private_weight_copies(monkeypatch, geom):
    """With 2 threads the blocked forward has every thread pack its own copy of
    the weights (forward_blocked_private): same results as one shared copy,
    and as the float64 naive loop."""
    N, C, Co, H, W, k, stride, pad = geom
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((Co, C, k, k)).astype(np.float32)
    b = rng.standard_normal(Co).astype(np.float32)
    monkeypatch.setattr(_conv, "_W24_MODE", "off")
    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 1)
    calls = []
    from fastcorr.methods import conv_direct
    real = conv_direct.forward_blocked_private
    monkeypatch.setattr(conv_direct, "forward_blocked_private", lambda *a: calls.append(1) or real(*a))
    y = fastcorr.conv2d(x, w, b, stride, pad, method="direct", num_threads=2)
    assert calls
    monkeypatch.setattr(_conv, "_PRIVATE_PACK", False)
    y_shared = fastcorr.conv2d(x, w, b, stride, pad, method="direct", num_threads=2)
    np.testing.assert_array_equal(y, y_shared)
    assert _err(y, naive_conv2d(x, w, b, stride, pad), x, w) <= 1e-5


@pytest.mark.parametrize("nt", [1, 2, 3])
def test_pointwise_backward_private_transposes(monkeypatch, nt):
    """The 1x1 backward, whose threads each transpose the weights into a copy
    of their own: against float64 sums, and equal to one shared copy."""
    from fastcorr.methods import im2col

    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 1)  # threads even on this small layer
    calls = []
    real = _conv._pointwise_backward
    monkeypatch.setattr(_conv, "_pointwise_backward", lambda p, go: calls.append(_conv._threads(p)) or real(p, go))

    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 40, 9, 11)).astype(np.float32)
    w = rng.standard_normal((24, 40, 1, 1)).astype(np.float32)
    go = rng.standard_normal((4, 24, 9, 11)).astype(np.float32)
    gx, gw, gb = fastcorr.conv2d_backward(x, w, go, num_threads=nt)
    x64, w64, go64 = (a.astype(np.float64) for a in (x, w[:, :, 0, 0], go))
    ref_gx = np.einsum("oc,nohw->nchw", w64, go64)
    ref_gw = np.einsum("nohw,nchw->oc", go64, x64)
    assert np.abs(gx - ref_gx).max() <= 1e-5 * np.abs(go).max() * np.abs(w).sum(axis=0).max()
    assert np.abs(gw[:, :, 0, 0] - ref_gw).max() <= 1e-5 * np.abs(ref_gw).max()
    np.testing.assert_allclose(gb, go64.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)
    im2col.set_pw_private_wt(False)
    try:
        shared = fastcorr.conv2d_backward(x, w, go, num_threads=nt)
    finally:
        im2col.set_pw_private_wt(True)
    for a, b in zip((gx, gw, gb), shared):
        np.testing.assert_array_equal(a, b)
    assert calls == [nt, nt]
