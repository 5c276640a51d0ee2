"""Property-based tests: every method against a naive reference on random cases.

The reference is written here from the definition (a float64 / exact Python
integer loop over an explicitly extended image), independent of fastcorr's
reduction to offsets.
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastcorr  # noqa: E402
from fastcorr._engine import dispatch as _dispatch  # noqa: E402

EXAMPLES = int(os.environ.get("FASTCORR_HYPOTHESIS_EXAMPLES", "400"))
METHODS = ["auto", *sorted(_dispatch.METHODS)]
DTYPES = ["float32", "float64", "complex64", "complex128", "int16", "int64", "uint8"]


def extend(x, boundary, fill, top, left, height, width):
    """The image seen through the boundary rule on rows top.., cols left.."""
    H, W = x.shape
    out = np.empty((height, width), dtype=object)
    for i in range(height):
        for j in range(width):
            r, c = top + i, left + j
            inside = 0 <= r < H and 0 <= c < W
            if boundary == "fill" and not inside:
                out[i, j] = fill
                continue
            if boundary == "wrap":
                r, c = r % H, c % W
            elif boundary == "symm":
                r, c = r % (2 * H), c % (2 * W)
                r = 2 * H - 1 - r if r >= H else r
                c = 2 * W - 1 - c if c >= W else c
            out[i, j] = x[r, c]
    return out


def naive(x, k, mode, boundary, fill, convolve):
    """scipy's definition, one output at a time, in Python numbers."""
    dtype = np.result_type(x, k)
    xo = x.astype(object) if dtype.kind in "iu" else x.astype(np.complex128 if dtype.kind == "c" else np.float64)
    ko = k.astype(object) if dtype.kind in "iu" else k.astype(np.complex128 if dtype.kind == "c" else np.float64)
    swapped = False
    if mode == "valid" and not all(a >= b for a, b in zip(x.shape, k.shape)):
        xo, ko, swapped = ko, xo, True
    if convolve:
        ko = ko[::-1, ::-1]
    elif dtype.kind == "c":
        ko = np.conj(ko)
    (H, W), (kh, kw) = xo.shape, ko.shape
    if mode == "full":
        shape, top = (H + kh - 1, W + kw - 1), (-(kh - 1), -(kw - 1))
    elif mode == "valid":
        shape, top = (H - kh + 1, W - kw + 1), (0, 0)
    else:
        shape = (H, W)
        top = (-(kh // 2), -(kw // 2)) if convolve else (-((kh - 1) // 2), -((kw - 1) // 2))
    out = np.zeros(shape, dtype=object)
    for m in range(shape[0]):
        for n in range(shape[1]):
            win = extend(xo, boundary, fill, top[0] + m, top[1] + n, kh, kw)
            out[m, n] = (win * ko).sum() if kh * kw else 0
    if swapped and not convolve:
        out = out[::-1, ::-1]
    if dtype.kind in "iu":
        bits = dtype.itemsize * 8
        mod = [(int(v) % 2**bits) for v in out.ravel()]
        if dtype.kind == "i":
            mod = [v - 2**bits if v >= 2 ** (bits - 1) else v for v in mod]
        return np.array(mod, dtype=dtype).reshape(shape)
    return out.astype(np.complex128 if dtype.kind == "c" else np.float64)


def layout(arr, how):
    if how == "fortran":
        return np.asfortranarray(arr)
    if how == "negative":
        return np.ascontiguousarray(arr[::-1, ::-1])[::-1, ::-1]
    if how == "strided":
        big = np.zeros((arr.shape[0] * 2, arr.shape[1] * 3), dtype=arr.dtype)
        big[::2, ::3] = arr
        return big[::2, ::3]
    return arr


def values(draw, shape, dtype):
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        ints = st.integers(max(info.min, -300), min(info.max, 300))
        return np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=dtype).reshape(shape)
    floats = st.floats(-8, 8, allow_nan=False, width=32)
    re = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64).reshape(shape)
    if dtype.kind == "c":
        im = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64).reshape(shape)
        re = re + 1j * im
    return re.astype(dtype)


@st.composite
def signal_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    xs = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    ks = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    mode = draw(st.sampled_from(["full", "same", "valid"]))
    if mode == "valid" and not (all(a >= b for a, b in zip(xs, ks)) or all(b >= a for a, b in zip(xs, ks))):
        ks = (min(ks[0], xs[0]), min(ks[1], xs[1]))
    boundary = draw(st.sampled_from(["fill", "wrap", "symm"]))
    # -2 as a numpy scalar of the dtype: a Python -2 is refused for unsigned
    # outputs (scipy's rule), a numpy scalar is cast (wraps)
    fill = draw(st.sampled_from([0, 1, -2]))
    if fill < 0 and np.dtype(dtype).kind == "u":
        fill = np.int64(fill)
    x = layout(values(draw, xs, dtype), draw(st.sampled_from(["c", "fortran", "negative", "strided"])))
    k = layout(values(draw, ks, dtype), draw(st.sampled_from(["c", "fortran", "negative"])))
    return x, k, mode, boundary, fill, draw(st.booleans()), draw(st.sampled_from(METHODS))


def refusal_allowed(method, x, k, boundary):
    """Cases DESIGN §2.1 lets a method refuse (with ValueError)."""
    kind = np.result_type(x, k).kind
    if method in ("auto", "direct"):
        return False
    if kind in "iu":
        return True
    if method == "fft" and boundary == "symm":
        return True
    if method == "separable":
        return kind == "c" or np.linalg.matrix_rank(np.asarray(k, dtype=np.complex128)) > 1
    return False


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(signal_cases())
def test_every_method_matches_naive_reference(case):
    x, k, mode, boundary, fill, convolve, method = case
    func = fastcorr.convolve2d if convolve else fastcorr.correlate2d
    want = naive(x, k, mode, boundary, fill, convolve)
    try:
        got = func(x, k, mode, boundary, fill, method=method)
    except ValueError as exc:
        assert refusal_allowed(method, x, k, boundary), f"{method} refused: {exc}"
        assert "method" in str(exc)
        return
    assert got.shape == want.shape
    assert got.dtype == np.result_type(x, k)
    if got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
        return
    # DESIGN §4: e = max|y - y_ref| / (max|x| * sum|k|)  (fill counts as part of x)
    scale = max(np.abs(x).max(initial=0), abs(fill), 1e-30) * max(np.abs(k).sum(), 1e-30)
    err = np.abs(got - want).max(initial=0) / scale
    tol = 1e-5 if got.dtype in (np.float32, np.complex64) else 1e-12
    assert err <= tol, (method, err)


# --- conv2d / conv2d_backward (torch semantics) against a naive float64 loop ---

PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def naive_conv2d(x, w, bias, stride, padding, dilation, groups, padding_mode):
    """torch.nn.functional.conv2d from its definition, in float64."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=PAD_MODES[padding_mode])
    N, C, H, W = xp.shape
    Cout, Cg, kh, kw = w.shape
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((N, Cout, Ho, Wo))
    per_group = Cout // groups
    for co in range(Cout):
        g = co // per_group
        for ci in range(Cg):
            for j in range(kh):
                for k in range(kw):
                    patch = xp[:, g * Cg + ci, j * dh: j * dh + sh * (Ho - 1) + 1: sh,
                               k * dw: k * dw + sw * (Wo - 1) + 1: sw]
                    out[:, co] += w[co, ci, j, k] * patch
        if bias is not None:
            out[:, co] += bias[co]
    return out


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(list(PAD_MODES)))
    H = draw(st.integers(dilation[0] * (kh - 1) + 1, 12))
    W = draw(st.integers(dilation[1] * (kw - 1) + 1, 12))
    limit = (H - 1, W - 1) if mode == "reflect" else (H, W)
    padding = (draw(st.integers(0, min(3, limit[0]))), draw(st.integers(0, min(3, limit[1]))))
    n = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x = values(draw, (n, cin, H, W), dtype)
    x = layout(x.reshape(n * cin, H * W), draw(st.sampled_from(["c", "fortran", "negative"]))).reshape(n, cin, H, W)
    w = values(draw, (cout, cin // groups, kh, kw), dtype)
    bias = values(draw, (cout,), dtype) if draw(st.booleans()) else None
    method = draw(st.sampled_from(["auto", "direct", "im2col"]))
    return x, w, bias, stride, padding, dilation, groups, mode, method


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(conv_cases())
def test_conv2d_matches_naive_reference(case):
    x, w, bias, stride, padding, dilation, groups, mode, method = case
    want = naive_conv2d(x, w, bias, stride, padding, dilation, groups, mode)
    got = fastcorr.conv2d(x, w, bias, stride, padding, dilation, groups, padding_mode=mode, method=method)
    assert got.shape == want.shape and got.dtype == x.dtype
    scale = max(np.abs(x).max(), 1e-30) * max(np.abs(w).sum(axis=(1, 2, 3)).max(), 1e-30) + (
        np.abs(bias).max() if bias is not None else 0)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    assert np.abs(got - want).max(initial=0) / scale <= tol


@settings(max_examples=EXAMPLES // 4, deadline=None, suppress_health_check=list(HealthCheck))
@given(conv_cases())
def test_conv2d_backward_is_the_adjoint(case):
    """<conv(x), g> = <x, grad_input(g)> and <conv_w(x), g> = <w, grad_weight(g)>: the
    definition of the backward pass, checked with the naive forward (zero padding only:
    the other modes' adjoints fold padding back, covered by the torch tests)."""
    x, w, bias, stride, padding, dilation, groups, mode, method = case
    x, w = x.astype(np.float64), w.astype(np.float64)
    y = naive_conv2d(x, w, None, stride, padding, dilation, groups, "zeros")
    g = np.random.default_rng(0).standard_normal(y.shape)
    gx, gw, gb = fastcorr.conv2d_backward(x, w, g, stride, padding, dilation, groups)
    lhs = float((y * g).sum())
    assert abs(lhs - float((x * gx).sum())) <= 1e-9 * max(1.0, abs(lhs))
    assert abs(lhs - float((w * gw).sum())) <= 1e-9 * max(1.0, abs(lhs))
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), atol=1e-9)
