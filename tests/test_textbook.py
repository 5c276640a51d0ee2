"""The textbook chapter as features: receptive fields, the demo, learning a kernel with nn.Conv2D."""
import contextlib
import io
import itertools
import subprocess
import sys

import numpy as np
import pytest

import fastcorr
from fastcorr.nn import Conv2D

HAS_CONV2D = hasattr(fastcorr, "conv2d") and hasattr(fastcorr, "conv2d_backward")
needs_conv2d = pytest.mark.skipif(not HAS_CONV2D, reason="fastcorr.conv2d / conv2d_backward not in this build")


# --- receptive fields -------------------------------------------------------

def _rf_by_propagation(ks, ss, ds):
    """Which input positions reach output 0 of a 1-D stack, by walking back through the layers."""
    positions = {0}
    for k, s, d in reversed(list(zip(ks, ss, ds))):
        positions = {p * s + t * d for p in positions for t in range(k)}
    return max(positions) - min(positions) + 1


def test_receptive_field_textbook():
    assert fastcorr.receptive_field([2, 2]) == (3, 3)
    assert fastcorr.receptive_field([2]) == (2, 2)
    assert fastcorr.receptive_field([(1, 2)]) == (1, 2)


def test_receptive_field_against_propagation():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 5))
        kh, kw = rng.integers(1, 6, size=(2, n))
        sh, sw = rng.integers(1, 4, size=(2, n))
        dh, dw = rng.integers(1, 4, size=(2, n))
        got = fastcorr.receptive_field(
            [(int(a), int(b)) for a, b in zip(kh, kw)],
            strides=[(int(a), int(b)) for a, b in zip(sh, sw)],
            dilations=[(int(a), int(b)) for a, b in zip(dh, dw)],
        )
        assert got == (_rf_by_propagation(kh, sh, dh), _rf_by_propagation(kw, sw, dw))


def test_receptive_field_through_matrices():
    # Two stacked 2x2 correlations on a 3x3 input: z depends on all 9 inputs.
    m1 = fastcorr.correlation_matrix(np.ones((2, 2)), (3, 3))
    m2 = fastcorr.correlation_matrix(np.ones((2, 2)), (2, 2))
    assert ((m2 @ m1).toarray() > 0).sum() == 9


def test_receptive_field_common_stacks():
    assert fastcorr.receptive_field([3, 3, 3]) == (7, 7)
    assert fastcorr.receptive_field([3, 3], dilations=[1, 2]) == (7, 7)
    assert fastcorr.receptive_field([7, 3, 3], strides=2) == (19, 19)
    assert fastcorr.receptive_field([1, 1, 1]) == (1, 1)


def test_receptive_field_errors():
    with pytest.raises(ValueError, match="kernel_sizes"):
        fastcorr.receptive_field([])
    with pytest.raises(ValueError, match="strides"):
        fastcorr.receptive_field([3, 3], strides=[1, 1, 1])
    with pytest.raises(ValueError, match="dilations"):
        fastcorr.receptive_field([3], dilations=0)
    with pytest.raises(TypeError, match="kernel_sizes"):
        fastcorr.receptive_field(3)
    with pytest.raises(TypeError, match=r"kernel_sizes\[1\]"):
        fastcorr.receptive_field([3, 2.5])


# --- the demo ---------------------------------------------------------------

def _demo_output():
    from fastcorr.__main__ import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo"]) == 0
    return buf.getvalue()


def test_demo_prints_the_chapter():
    out = _demo_output()
    assert "[[19 25]\n     [37 43]]" in out
    for line in ("Y[0,0] = 0x0 + 1x1 + 3x2 + 4x3 = 19", "Y[1,1] = 4x0 + 5x1 + 7x2 + 8x3 = 43"):
        assert line in out
    assert "[ 0  1  0  0  0 -1  0]" in out  # edge detection
    assert "receptive_field([2, 2]) = (3, 3)" in out
    assert "M @ X.ravel() = [19, 25, 37, 43]; equal to correlate2d(X, K).ravel(): True" in out
    assert "matches: False" not in out
    assert "finite_difference(2) = [1, -2, 1]" in out
    assert "equal to correlate2d(X, K, 'valid'): True" in out
    if HAS_CONV2D:
        assert "step 10, loss" in out and "learned kernel after 10 steps" in out
    else:
        assert "skipped" in out


def test_demo_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fastcorr", "demo"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "19" in proc.stdout and "43" in proc.stdout and "done in" in proc.stdout


# --- nn.Conv2D --------------------------------------------------------------

def test_conv2d_layer_init():
    a = Conv2D(3, 4, 3, rng=1)
    b = Conv2D(3, 4, 3, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.weight.shape == (4, 3, 3, 3) and a.bias.shape == (4,)
    assert a.weight.dtype == np.float32
    assert np.abs(a.weight).max() <= 1 / np.sqrt(27)
    g = Conv2D(4, 6, (1, 2), groups=2, bias=False, dtype=np.float64, rng=0)
    assert g.weight.shape == (6, 2, 1, 2) and g.bias is None and g.weight.dtype == np.float64
    assert "Conv2D(4, 6" in repr(g)


def test_conv2d_layer_errors():
    with pytest.raises(ValueError, match="groups"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels"):
        Conv2D(0, 4, 3)
    with pytest.raises(ValueError, match="padding_mode"):
        Conv2D(1, 1, 3, padding_mode="mirror")
    with pytest.raises(TypeError, match="dtype"):
        Conv2D(1, 1, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="rng"):
        Conv2D(1, 1, 3, rng="seed")
    layer = Conv2D(1, 1, 2)
    with pytest.raises(RuntimeError, match="backward"):
        layer.step(0.1)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((1, 1, 1, 1)))


def _naive_conv2d(x, w, b=None, **kw):
    x = np.asarray(x, dtype=np.float64)
    n, c, h, wd = x.shape
    o, _, kh, kw_ = w.shape
    y = np.zeros((n, o, h - kh + 1, wd - kw_ + 1))
    for j, k in itertools.product(range(kh), range(kw_)):
        y += np.einsum("nchw,oc->nohw", x[:, :, j:j + y.shape[2], k:k + y.shape[3]], w[:, :, j, k])
    return y if b is None else y + b[None, :, None, None]


def _naive_conv2d_backward(x, w, g, **kw):
    x = np.asarray(x, dtype=np.float64)
    gx, gw = np.zeros_like(x), np.zeros(w.shape)
    ho, wo = g.shape[2:]
    for j, k in itertools.product(range(w.shape[2]), range(w.shape[3])):
        gw[:, :, j, k] = np.einsum("nchw,nohw->oc", x[:, :, j:j + ho, k:k + wo], g)
        gx[:, :, j:j + ho, k:k + wo] += np.einsum("nohw,oc->nchw", g, w[:, :, j, k])
    return gx, gw, g.sum(axis=(0, 2, 3))


def test_conv2d_layer_logic_with_reference_ops(monkeypatch):
    # The layer's own bookkeeping (what it passes, stores and updates),
    # checked with naive stride-1 reference operations in place of fastcorr's.
    monkeypatch.setattr(fastcorr, "conv2d", _naive_conv2d, raising=False)
    monkeypatch.setattr(fastcorr, "conv2d_backward", _naive_conv2d_backward, raising=False)
    rng = np.random.default_rng(5)
    layer = Conv2D(2, 3, (2, 3), dtype=np.float64, rng=2)
    x = rng.standard_normal((2, 2, 5, 6))
    y = layer(x)
    np.testing.assert_allclose(y, _naive_conv2d(x, layer.weight, layer.bias))
    g = rng.standard_normal(y.shape)
    w0, b0 = layer.weight.copy(), layer.bias.copy()
    gx = layer.backward(g)
    ref = _naive_conv2d_backward(x, w0, g)
    np.testing.assert_allclose(gx, ref[0])
    np.testing.assert_allclose(layer.weight_grad, ref[1])
    np.testing.assert_allclose(layer.bias_grad, ref[2])
    layer.step(0.1)
    np.testing.assert_allclose(layer.weight, w0 - 0.1 * ref[1])
    np.testing.assert_allclose(layer.bias, b0 - 0.1 * ref[2])


def test_conv2d_layer_without_ops_says_so(monkeypatch):
    monkeypatch.delattr(fastcorr, "conv2d", raising=False)
    with pytest.raises(NotImplementedError, match="conv2d"):
        Conv2D(1, 1, 2)(np.zeros((1, 1, 3, 3)))


@needs_conv2d
def test_learning_the_edge_kernel_converges():
    from fastcorr._cli.demo import learn_edge_kernel

    losses = []
    layer = learn_edge_kernel(steps=10, every=1, out=lambda step, loss: losses.append(loss))
    assert losses[-1] < 0.05 < losses[0]
    np.testing.assert_allclose(layer.weight.reshape(2), [1, -1], atol=0.05)
    layer = learn_edge_kernel(steps=40, out=None)
    np.testing.assert_allclose(layer.weight.reshape(2), [1, -1], atol=1e-3)


@needs_conv2d
def test_conv2d_layer_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for kwargs in (dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2, groups=2, padding_mode="reflect")):
        layer = Conv2D(4, 6, 3, dtype=np.float64, rng=3, **kwargs)
        ref = torch.nn.Conv2d(4, 6, 3, dtype=torch.float64, **kwargs)
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(layer.weight))
            ref.bias.copy_(torch.from_numpy(layer.bias))
        x = rng.standard_normal((2, 4, 9, 10))
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = ref(xt)
        y = layer(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
        g = rng.standard_normal(y.shape)
        yt.backward(torch.from_numpy(g))
        gx = layer.backward(g)
        np.testing.assert_allclose(gx, xt.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(layer.weight_grad, ref.weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(layer.bias_grad, ref.bias.grad.numpy(), atol=1e-10)
