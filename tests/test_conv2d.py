"""conv2d, conv2d_backward, im2col, col2im: torch semantics.

Checked against a naive float64 loop (always) and against torch (when
importable), on every option: stride, padding (int, pair, 'valid', 'same'),
dilation, groups (incl. depthwise), bias, padding modes, dtypes, unbatched.
"""
import itertools

import numpy as np
import pytest

import fastcorr

RNG = np.random.default_rng(12345)


# ---------------------------------------------------------------- naive reference

def _pad_index(i, n, mode):
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    # reflect (edge not repeated)
    while not 0 <= i < n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def _pads(padding, k, dilation):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = dilation[0] * (k[0] - 1), dilation[1] * (k[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph, pw, pw)


def naive_conv2d(x, w, b, stride, padding, dilation, groups, mode):
    """torch.nn.Conv2d forward as four explicit loops in float64."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    N, C, H, W = x.shape
    Co, Cg, kh, kw = w.shape
    pt, pb, pl, pr = _pads(padding, (kh, kw), d)
    Ho = (H + pt + pb - d[0] * (kh - 1) - 1) // s[0] + 1
    Wo = (W + pl + pr - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((N, Co, Ho, Wo))
    cog = Co // groups
    for n in range(N):
        for co in range(Co):
            g = co // cog
            for oy in range(Ho):
                for ox in range(Wo):
                    acc = 0.0 if b is None else float(b[co])
                    for c in range(Cg):
                        for j in range(kh):
                            r = _pad_index(oy * s[0] + j * d[0] - pt, H, mode)
                            if r is None:
                                continue
                            for k in range(kw):
                                q = _pad_index(ox * s[1] + k * d[1] - pl, W, mode)
                                if q is not None:
                                    acc += w[co, c, j, k] * x[n, g * Cg + c, r, q]
                    out[n, co, oy, ox] = acc
    return out


def naive_backward(x, w, gy, stride, padding, dilation, groups, mode):
    """Gradients by linearity: conv2d is linear in x and in w (finite basis)."""
    gw = np.zeros(w.shape)
    for idx in np.ndindex(*w.shape):
        e = np.zeros(w.shape)
        e[idx] = 1
        gw[idx] = np.sum(gy * naive_conv2d(x, e, None, stride, padding, dilation, groups, mode))
    gx = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = 1
        gx[idx] = np.sum(gy * naive_conv2d(e, w, None, stride, padding, dilation, groups, mode))
    return gx, gw, gy.sum(axis=(0, 2, 3))


NAIVE_CASES = [
    # stride, padding, dilation, groups, mode, kernel
    (1, 0, 1, 1, "zeros", (3, 3)),
    (2, 1, 1, 1, "zeros", (3, 2)),
    ((1, 2), (2, 1), (2, 1), 2, "reflect", (2, 3)),
    (1, "same", 2, 1, "replicate", (2, 2)),
    (1, "same", 1, 4, "circular", (3, 4)),
    ((2, 1), 1, 1, 2, "circular", (1, 1)),
    (1, "valid", 1, 1, "zeros", (1, 1)),
]


@pytest.mark.parametrize("method", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("case", NAIVE_CASES)
def test_forward_against_naive(case, method):
    stride, padding, dilation, groups, mode, k = case
    x = RNG.standard_normal((2, 4, 6, 7))
    w = RNG.standard_normal((4, 4 // groups, *k))
    b = RNG.standard_normal(4)
    ref = naive_conv2d(x, w, b, stride, padding, dilation, groups, mode)
    got = fastcorr.conv2d(x, w, b, stride, padding, dilation, groups, padding_mode=mode, method=method)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [61, 70])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_direct_wide_rows_against_naive(dtype, width, mode):
    # Rows wide enough for every register-block width of the direct kernel
    # (3-, 2- and 1-vector blocks and the scalar tail), heights not a
    # multiple of its three-row groups, grouped and ungrouped.
    rng = np.random.default_rng(width)
    for groups, k, pad in ((1, (3, 3), 1), (5, (5, 4), 2), (1, (1, 6), (0, 3))):
        x = rng.standard_normal((1, 5, 17, width))
        w = rng.standard_normal((5, 5 // groups, *k))
        b = rng.standard_normal(5)
        ref = naive_conv2d(x, w, b, 1, pad, 1, groups, mode)
        got = fastcorr.conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), 1, pad, 1, groups,
                              padding_mode=mode, method="direct")
        tol = 1e-4 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", NAIVE_CASES[:5])
def test_backward_against_naive(case):
    stride, padding, dilation, groups, mode, k = case
    x = RNG.standard_normal((1, 2, 5, 5))
    w = RNG.standard_normal((2, 2 // groups if groups <= 2 else 1, *k))
    if groups > 2:
        groups = 2
    y = naive_conv2d(x, w, None, stride, padding, dilation, groups, mode)
    gy = RNG.standard_normal(y.shape)
    ref = naive_backward(x, w, gy, stride, padding, dilation, groups, mode)
    got = fastcorr.conv2d_backward(x, w, gy, stride, padding, dilation, groups, padding_mode=mode)
    for a, r in zip(got, ref):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)


def test_textbook_example():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    k = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    np.testing.assert_array_equal(fastcorr.conv2d(x, k)[0, 0], [[19, 25], [37, 43]])


def test_dtypes_and_unbatched():
    x = RNG.standard_normal((3, 8, 8))
    w = RNG.standard_normal((5, 3, 3, 3))
    ref = naive_conv2d(x[None], w, None, 1, 1, 1, 1, "zeros")[0]
    y32 = fastcorr.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1)
    assert y32.dtype == np.float32 and y32.shape == (5, 8, 8)
    assert np.abs(y32 - ref).max() / (np.abs(x).max() * np.abs(w).sum()) < 1e-5
    xi = (x * 10).astype(np.int16)
    yi = fastcorr.conv2d(xi, w, padding=1)
    assert yi.dtype == np.float64
    np.testing.assert_allclose(yi, naive_conv2d(xi[None], w, None, 1, 1, 1, 1, "zeros")[0], atol=1e-10)
    # list input, non-contiguous and read-only arrays
    xr = np.asfortranarray(x)
    xr.flags.writeable = False
    np.testing.assert_allclose(fastcorr.conv2d(xr, w.tolist(), padding=1), ref, atol=1e-12)
    gx, gw, gb = fastcorr.conv2d_backward(x, w, np.ones((5, 8, 8)), padding=1)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (5,)


def test_tiled_matches_untiled(monkeypatch):
    """Tiles far smaller than the image (tile edges inside rows) change nothing."""
    from fastcorr._engine import conv as _conv

    x = RNG.standard_normal((2, 3, 17, 19))
    w = RNG.standard_normal((4, 3, 3, 5))
    gy = RNG.standard_normal((2, 4, 9, 10))
    ref = fastcorr.conv2d(x, w, stride=2, padding=(1, 2), padding_mode="reflect")
    refb = fastcorr.conv2d_backward(x, w, gy, stride=2, padding=(1, 2), padding_mode="reflect")
    monkeypatch.setattr(_conv, "_MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_conv, "_TILE_TARGET", 45 * 8 * 7)
    np.testing.assert_allclose(fastcorr.conv2d(x, w, stride=2, padding=(1, 2), padding_mode="reflect"), ref, atol=1e-12)
    for nt in (1, 2, 3):
        got = fastcorr.conv2d_backward(x, w, gy, stride=2, padding=(1, 2), padding_mode="reflect", num_threads=nt)
        for a, r in zip(got, refb):
            np.testing.assert_allclose(a, r, atol=1e-11)


def test_im2col_col2im_small():
    x = np.arange(9.0).reshape(1, 3, 3)
    cols = fastcorr.im2col(x, 2)
    np.testing.assert_array_equal(cols, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    np.testing.assert_array_equal(fastcorr.col2im(np.ones((4, 4)), 3, 2)[0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # adjointness: <im2col(x), c> == <x, col2im(c)>
    x = RNG.standard_normal((2, 3, 7, 6))
    c = RNG.standard_normal(fastcorr.im2col(x, (2, 3), 2, 1, (2, 1)).shape)
    lhs = np.sum(fastcorr.im2col(x, (2, 3), 2, 1, (2, 1)) * c)
    rhs = np.sum(x * fastcorr.col2im(c, (7, 6), (2, 3), 2, 1, (2, 1)))
    assert abs(lhs - rhs) < 1e-10


def test_cap_setting():
    old = fastcorr.get_im2col_cap()
    try:
        fastcorr.set_im2col_cap(2**20)
        assert fastcorr.get_im2col_cap() == 2**20
        x = RNG.standard_normal((1, 8, 70, 70)).astype(np.float32)
        w = RNG.standard_normal((3, 8, 7, 7)).astype(np.float32)
        np.testing.assert_allclose(fastcorr.conv2d(x, w, method="im2col"), fastcorr.conv2d(x, w, method="direct"), rtol=1e-4, atol=1e-3)
        with pytest.raises(ValueError, match="nbytes"):
            fastcorr.set_im2col_cap(10)
        with pytest.raises(TypeError, match="nbytes"):
            fastcorr.set_im2col_cap(1.5e9)
    finally:
        fastcorr.set_im2col_cap(old)


# ---------------------------------------------------------------- bad inputs

X = np.zeros((1, 4, 8, 8))
Wt = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(weight=np.zeros((6, 3, 3, 3))), ValueError, "channels"),
        (dict(groups=3), ValueError, "groups"),
        (dict(weight=np.zeros((5, 2, 3, 3)), groups=2), ValueError, "groups"),
        (dict(stride=0), ValueError, "stride"),
        (dict(dilation=(1, 0)), ValueError, "dilation"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding="half"), ValueError, "padding"),
        (dict(padding="same", stride=2), ValueError, "padding='same'"),
        (dict(weight=np.zeros((6, 4, 9, 3))), ValueError, "output size"),
        (dict(bias=np.zeros(5)), ValueError, "bias"),
        (dict(padding_mode="mirror", padding=1), ValueError, "padding_mode"),
        (dict(padding_mode="reflect", padding=8), ValueError, "reflect"),
        (dict(method="fft"), ValueError, "method"),
        (dict(input=np.zeros((8, 8))), ValueError, "input"),
        (dict(weight=np.zeros((6, 4, 3))), ValueError, "weight"),
        (dict(input=np.zeros((1, 4, 8, 8), dtype=object)), TypeError, "input"),
        (dict(stride=1.5), TypeError, "stride"),
        (dict(groups=0), ValueError, "groups"),
    ],
)
def test_bad_inputs(kwargs, exc, name):
    args = dict(input=X, weight=Wt)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        fastcorr.conv2d(**args)


def test_bad_backward_and_fold():
    with pytest.raises(ValueError, match="grad_output"):
        fastcorr.conv2d_backward(X, Wt, np.zeros((1, 6, 5, 5)))
    with pytest.raises(ValueError, match="cols"):
        fastcorr.col2im(np.zeros((1, 9, 10)), (5, 5), 3)
    with pytest.raises(ValueError, match="multiple of kernel_size"):
        fastcorr.col2im(np.zeros((1, 8, 9)), (5, 5), 3)
    with pytest.raises(ValueError, match="blocks"):
        fastcorr.im2col(np.zeros((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        fastcorr.im2col(np.zeros((1, 1, 5, 5)), 0)


# ---------------------------------------------------------------- against torch

def _torch_case(torch, x, w, b, stride, padding, dilation, groups, mode, dtype):
    F = torch.nn.functional
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    wt = torch.tensor(w, dtype=dtype, requires_grad=True)
    bt = None if b is None else torch.tensor(b, dtype=dtype, requires_grad=True)
    layer = torch.nn.Conv2d(x.shape[1], w.shape[0], w.shape[2:], stride, padding, dilation, groups,
                            bias=b is not None, padding_mode=mode, dtype=dtype)
    y = layer._conv_forward(xt, wt, bt) if mode != "zeros" else F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    gy = torch.tensor(RNG.standard_normal(tuple(y.shape)), dtype=dtype)
    y.backward(gy)
    grads = (xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy())
    return y.detach().numpy(), gy.numpy(), grads


TORCH_GRID = list(itertools.product(
    [1, 2, (2, 1)],                      # stride
    [0, 2, (1, 0), "same", "valid"],     # padding
    [1, (2, 1)],                         # dilation
    [1, 2, 4],                           # groups (4: depthwise)
    ["zeros", "reflect", "replicate", "circular"],
    [(3, 3), (2, 4), (1, 1)],
))[::7]  # 7 is prime to every factor's length: each value of each option still appears


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["direct", "im2col"])
def test_against_torch(dtype, method):
    torch = pytest.importorskip("torch")
    tdtype = getattr(torch, dtype)
    tol = 1e-4 if dtype == "float32" else 1e-10
    checked = 0
    for stride, padding, dilation, groups, mode, k in TORCH_GRID:
        if padding == "same" and stride != 1:
            continue
        x = RNG.standard_normal((2, 4, 7, 9)).astype(dtype)
        w = RNG.standard_normal((8, 4 // groups, *k)).astype(dtype)
        b = RNG.standard_normal(8).astype(dtype) if checked % 2 else None
        y, gy, (gx, gw, gb) = _torch_case(torch, x, w, b, stride, padding, dilation, groups, mode, tdtype)
        got = fastcorr.conv2d(x, w, b, stride, padding, dilation, groups, padding_mode=mode, method=method)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, y, rtol=tol, atol=tol, err_msg=str((stride, padding, dilation, groups, mode, k)))
        if method == "im2col":
            gx2, gw2, gb2 = fastcorr.conv2d_backward(x, w, gy, stride, padding, dilation, groups, padding_mode=mode)
            np.testing.assert_allclose(gx2, gx, rtol=tol, atol=tol)
            np.testing.assert_allclose(gw2, gw, rtol=tol, atol=10 * tol)
            if b is not None:
                np.testing.assert_allclose(gb2, gb, rtol=tol, atol=10 * tol)
        checked += 1
    assert checked > 100


def test_unbatched_against_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 10, 10))
    w = RNG.standard_normal((4, 3, 3, 3))
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy()
    np.testing.assert_allclose(fastcorr.conv2d(x, w, padding="same"), ref, atol=1e-12)


@pytest.mark.parametrize("ks, d, p, s", list(itertools.product([2, (3, 2)], [1, (2, 1)], [0, 1, (2, 1)], [1, 2, (1, 3)])))
def test_unfold_fold_against_torch(ks, d, p, s):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((2, 3, 8, 9)).astype(np.float32)
    ref = F.unfold(torch.tensor(x), ks, d, p, s).numpy()
    got = fastcorr.im2col(x, ks, d, p, s)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref)
    np.testing.assert_allclose(fastcorr.im2col(x[0], ks, d, p, s), ref[0])
    c = RNG.standard_normal(ref.shape).astype(np.float32)
    ref2 = F.fold(torch.tensor(c), (8, 9), ks, d, p, s).numpy()
    np.testing.assert_allclose(fastcorr.col2im(c, (8, 9), ks, d, p, s), ref2, atol=1e-5)
    np.testing.assert_allclose(fastcorr.col2im(c[0], (8, 9), ks, d, p, s), ref2[0], atol=1e-5)


# ---------------------------------------------------------------- register-blocked kernels

def tapwise_reference(x, w, gy, stride, padding, dilation, groups, mode):
    """conv2d forward and gradients in float64, one kernel tap at a time.

    The padded input is built by index (numpy's pad modes are torch's:
    reflect = reflect, replicate = edge, circular = wrap); the gradient of the
    padded input is folded back onto the samples each padded one copies.
    """
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    npmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    if mode == "zeros":
        ri = np.pad(np.arange(H), ph, constant_values=-1)
        ci = np.pad(np.arange(W), pw, constant_values=-1)
    else:
        ri, ci = np.pad(np.arange(H), ph, mode=npmode[mode]), np.pad(np.arange(W), pw, mode=npmode[mode])
    xp = np.where((ri >= 0)[:, None] & (ci >= 0)[None, :], x[:, :, np.maximum(ri, 0)][:, :, :, np.maximum(ci, 0)], 0.0)
    Ho = (len(ri) - dh * (kh - 1) - 1) // sh + 1
    Wo = (len(ci) - dw * (kw - 1) - 1) // sw + 1
    Og = Cout // groups
    y = np.zeros((N, Cout, Ho, Wo))
    gw = np.zeros(w.shape)
    gxp = np.zeros(xp.shape)
    for g, i, j in itertools.product(range(groups), range(kh), range(kw)):
        rows = slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh)
        cols = slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw)
        cs, os_ = slice(g * Cg, (g + 1) * Cg), slice(g * Og, (g + 1) * Og)
        patch = xp[:, cs, rows, cols]
        y[:, os_] += np.einsum("nchw,oc->nohw", patch, w[os_, :, i, j])
        gw[os_, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, os_], patch)
        gxp[:, cs, rows, cols] += np.einsum("nohw,oc->nchw", gy[:, os_], w[os_, :, i, j])
    gx = np.zeros(x.shape)
    keep = (ri >= 0)[:, None] & (ci >= 0)[None, :]
    src = (np.maximum(ri, 0)[:, None] * W + np.maximum(ci, 0)[None, :])[keep]
    flat = gx.reshape(N, C, H * W)
    for n, c in itertools.product(range(N), range(C)):
        np.add.at(flat[n, c], src, gxp[n, c][keep])
    return y, gx, gw


BLOCKED_CASES = [
    # C_in, C_out, groups, kernel, stride, padding, dilation, mode, (H, W)
    (8, 32, 1, (3, 3), (1, 1), (1, 1), (1, 1), "zeros", (9, 13)),    # channels in lanes
    (8, 32, 2, (3, 3), (1, 1), (1, 2), (1, 2), "zeros", (10, 12)),   # groups, dilation
    (6, 16, 1, (5, 3), (2, 2), (2, 2), (1, 1), "reflect", (15, 14)), # stride phases
    (4, 48, 1, (3, 3), (2, 3), (1, 1), (2, 2), "circular", (13, 17)),
    (8, 12, 1, (3, 3), (1, 1), (1, 1), (1, 1), "replicate", (9, 9)), # pixels in lanes
    (16, 16, 1, (3, 3), (1, 1), (1, 1), (1, 1), "zeros", (31, 40)),  # several pixel chunks
    (8, 24, 4, (2, 2), (1, 1), (0, 0), (1, 1), "zeros", (8, 11)),    # 6 channels a group
    (5, 20, 1, (4, 1), (1, 1), (3, 0), (1, 1), "zeros", (7, 30)),    # wide padding
    (3, 16, 1, (7, 7), (2, 2), (3, 3), (1, 1), "zeros", (13, 75)),   # stride-2 planes, SIMD copy
    (2, 8, 1, (3, 3), (2, 2), (1, 2), (1, 1), "reflect", (9, 42)),   # and its tails, both phases
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", BLOCKED_CASES)
def test_blocked_kernels_against_tapwise(case, dtype):
    # Channel counts of real layers, so that conv2d's direct method and
    # conv2d_backward run the register-blocked kernels (both vectorisations,
    # the weight-gradient kernel, grad_input as a forward correlation).
    cin, cout, groups, k, stride, padding, dilation, mode, hw = case
    rng = np.random.default_rng(cout * 7 + hw[1])
    x = rng.standard_normal((2, cin, *hw))
    w = rng.standard_normal((cout, cin // groups, *k))
    b = rng.standard_normal(cout)
    ho = (hw[0] + 2 * padding[0] - dilation[0] * (k[0] - 1) - 1) // stride[0] + 1
    wo = (hw[1] + 2 * padding[1] - dilation[1] * (k[1] - 1) - 1) // stride[1] + 1
    gy = rng.standard_normal((2, cout, ho, wo))
    y, gx, gw = tapwise_reference(x, w, gy, stride, padding, dilation, groups, mode)
    y += b[:, None, None]
    args = (stride, padding, dilation, groups)
    tol = 2e-4 if dtype == np.float32 else 1e-11
    for method in ("direct", "auto"):
        got = fastcorr.conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), *args, padding_mode=mode,
                              method=method)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, y, rtol=tol, atol=tol * np.abs(y).max())
    gx2, gw2, gb2 = fastcorr.conv2d_backward(x.astype(dtype), w.astype(dtype), gy.astype(dtype), *args,
                                             padding_mode=mode)
    np.testing.assert_allclose(gx2, gx, rtol=tol, atol=tol * np.abs(gx).max())
    np.testing.assert_allclose(gw2, gw, rtol=tol, atol=tol * np.abs(gw).max())
    np.testing.assert_allclose(gb2, gy.sum(axis=(0, 2, 3)), rtol=tol, atol=tol * np.abs(gb2).max())


@pytest.mark.parametrize("cout", [32, 12])  # channels in lanes / pixels in lanes
def test_blocked_kernels_keep_nan_local(cout):
    # A NaN and an inf in the input reach exactly the outputs whose windows
    # cover them (and their gradients exactly the weights that meet them):
    # the junk columns and padded channels of the blocked kernels never leak.
    rng = np.random.default_rng(cout)
    x = rng.standard_normal((2, 8, 11, 13))
    x[0, 3, 4, 5] = np.nan
    x[1, 6, 0, 12] = np.inf
    w = rng.standard_normal((cout, 8, 3, 3))
    gy = rng.standard_normal((2, cout, 11, 13))
    y, gx, gw = tapwise_reference(x, w, gy, (1, 1), (1, 1), (1, 1), 1, "zeros")
    got = fastcorr.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1, method="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(y))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(y))
    finite = np.isfinite(y)
    np.testing.assert_allclose(got[finite], y[finite], rtol=2e-4, atol=2e-4 * np.abs(y[finite]).max())
    gx2, gw2, _ = fastcorr.conv2d_backward(x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32),
                                           padding=1)
    np.testing.assert_array_equal(np.isfinite(gw2), np.isfinite(gw))
    np.testing.assert_array_equal(np.isfinite(gx2), np.isfinite(gx))


@pytest.mark.parametrize("n, cin, cout, hw, dtype", [
    (1, 8, 32, (9, 13), np.float32),      # direct under 'auto'; one image cut over both threads
    (3, 24, 12, (17, 5), np.float64),
    (1, 512, 512, (12, 12), np.float32),  # 1 MiB of weights: a GEMM under 'auto'
    (2, 384, 384, (16, 15), np.float64),
])
def test_pointwise_both_methods_against_tapwise(n, cin, cout, hw, dtype):
    # 1x1 convolutions on both sides of choose_conv_method's rule, at two
    # threads: the in-place GEMM (cut into pixel tiles when there are fewer
    # images than threads) and the direct kernel, forward and backward.
    rng = np.random.default_rng(cin + cout)
    x = rng.standard_normal((n, cin, *hw))
    w = rng.standard_normal((cout, cin, 1, 1))
    b = rng.standard_normal(cout)
    gy = rng.standard_normal((n, cout, *hw))
    y, gx, gw = tapwise_reference(x, w, gy, (1, 1), (0, 0), (1, 1), 1, "zeros")
    y += b[:, None, None]
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for method in ("direct", "im2col", "auto"):
        got = fastcorr.conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), method=method, num_threads=2)
        np.testing.assert_allclose(got, y, rtol=tol, atol=tol * np.abs(y).max(), err_msg=method)
    gx2, gw2, _ = fastcorr.conv2d_backward(x.astype(dtype), w.astype(dtype), gy.astype(dtype), num_threads=2)
    np.testing.assert_allclose(gx2, gx, rtol=tol, atol=tol * np.abs(gx).max())
    np.testing.assert_allclose(gw2, gw, rtol=tol, atol=tol * np.abs(gw).max())


# ---------------------------------------------------------------- Winograd F(2x2, 3x3)

WINOGRAD_CASES = [
    # N, C_in, C_out, (H, W), padding
    (2, 5, 7, (9, 11), 1),         # odd output: junk last tile row and column
    (1, 3, 20, (8, 8), 0),
    (2, 16, 33, (13, 6), 2),       # output channels past a block
    (1, 1, 1, (3, 3), 0),          # one output pixel
    (3, 8, 16, (5, 4), (2, 0)),
    (1, 17, 40, (33, 35), "same"),  # several bands, tap chunks of one
    (2, 4, 6, (1, 2), 2),          # a tiny image inside the padding
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_against_naive(case, dtype):
    n, cin, cout, hw, padding = case
    rng = np.random.default_rng(cin * 31 + cout)
    x = rng.standard_normal((n, cin, *hw))
    w = rng.standard_normal((cout, cin, 3, 3))
    b = rng.standard_normal(cout)
    ref = naive_conv2d(x, w, b, 1, padding, 1, 1, "zeros")
    got = fastcorr.conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), 1, padding, method="winograd",
                          num_threads=2)
    assert got.dtype == dtype and got.shape == ref.shape
    err = np.abs(got - ref).max() / (np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)).max())
    assert err <= (1e-6 if dtype == np.float32 else 1e-14)
    unbatched = fastcorr.conv2d(x[0].astype(dtype), w.astype(dtype), None, 1, padding, method="winograd")
    np.testing.assert_allclose(unbatched, ref[0] - b[:, None, None], rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_winograd_against_torch_and_chosen_by_auto():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 24, 20, 18)).astype(np.float32)
    w = rng.standard_normal((32, 24, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    assert fastcorr._engine.dispatch.choose_conv_method(x.shape, w.shape, (1, 1), 1, 4, (1, 1), "zeros", (20, 18)) \
        == "winograd"
    y, gy, (gx, gw, gb) = _torch_case(torch, x, w, b, 1, 1, 1, 1, "zeros", torch.float32)
    for method in ("winograd", "auto"):
        got = fastcorr.conv2d(x, w, b, 1, 1, method=method)
        np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4 * np.abs(y).max())
    # grad_input runs as a Winograd forward of grad_output here, grad_weight
    # as the Winograd gradient of the transformed weights
    gx2, gw2, gb2 = fastcorr.conv2d_backward(x, w, gy, 1, 1)
    np.testing.assert_allclose(gx2, gx, rtol=1e-4, atol=1e-4 * np.abs(gx).max())
    np.testing.assert_allclose(gw2, gw, rtol=1e-4, atol=1e-4 * np.abs(gw).max())


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2), dict(groups=2),
                                    dict(padding_mode="reflect", padding=1), dict(k=5)])
def test_winograd_refuses_what_it_cannot_serve(kwargs):
    k = kwargs.pop("k", 3)
    x = np.ones((1, 4, 9, 9), np.float32)
    w = np.ones((4, 4 // kwargs.get("groups", 1), k, k), np.float32)
    with pytest.raises(ValueError, match="winograd"):
        fastcorr.conv2d(x, w, method="winograd", **kwargs)


def test_auto_keeps_nan_and_inf_off_winograd():
    # 'auto' would run Winograd here; its transforms turn a lone inf into
    # NaN (inf - inf), so non-finite inputs go to the direct method.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 16, 20, 20))
    w = rng.standard_normal((16, 16, 3, 3))
    assert fastcorr._engine.dispatch.choose_conv_method(x.shape, w.shape, (1, 1), 1, 4, (1, 1), "zeros", (20, 20)) \
        == "winograd"
    x[0, 3, 7, 9] = np.inf
    x[0, 5, 15, 2] = np.nan
    gy = rng.standard_normal((1, 16, 20, 20))
    y, gx, _ = tapwise_reference(x, w, gy, (1, 1), (1, 1), (1, 1), 1, "zeros")
    got = fastcorr.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(y))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(y))
    wino = fastcorr.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1, method="winograd")
    assert np.isnan(wino).sum() > np.isnan(y).sum()  # what the fallback avoids
    # weights with an inf, and grad_output with a NaN (grad_input)
    w2 = w.copy()
    w2[2, 1, 0, 0] = np.inf
    x2 = np.abs(rng.standard_normal((1, 16, 20, 20)))
    y2, _, _ = tapwise_reference(x2, w2, gy, (1, 1), (1, 1), (1, 1), 1, "zeros")
    got2 = fastcorr.conv2d(x2.astype(np.float32), w2.astype(np.float32), padding=1)
    np.testing.assert_array_equal(np.isinf(got2), np.isinf(y2))
    gy[0, 4, 10, 10] = np.nan
    _, gx3, _ = tapwise_reference(x2, w, gy, (1, 1), (1, 1), (1, 1), 1, "zeros")
    gx4, _, _ = fastcorr.conv2d_backward(x2.astype(np.float32), w.astype(np.float32), gy.astype(np.float32),
                                         padding=1)
    np.testing.assert_array_equal(np.isnan(gx4), np.isnan(gx3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_grad_weight_against_tapwise(case, dtype):
    from fastcorr._engine import conv as _conv
    from fastcorr._engine.validate import conv2d_args

    n, cin, cout, hw, padding = case
    rng = np.random.default_rng(cin * 7 + cout)
    x = rng.standard_normal((n, cin, *hw))
    w = rng.standard_normal((cout, cin, 3, 3))
    pads = _pads(padding, (3, 3), (1, 1))
    if pads[0] != pads[1] or pads[2] != pads[3]:
        pytest.skip("the tapwise reference pads symmetrically")
    p = conv2d_args(x.astype(dtype), w.astype(dtype), None, 1, padding, 1, 1, "zeros", "im2col", 2)
    gy = rng.standard_normal((n, cout, *p.out_hw))
    _, _, gw = tapwise_reference(x, w, gy, (1, 1), (pads[0], pads[2]), (1, 1), 1, "zeros")
    got = _conv._winograd_grad_weight(p, gy.astype(dtype), fallback=None)
    assert got.dtype == dtype and got.shape == w.shape
    err = np.abs(got - gw).max() / (np.abs(x).max() * np.abs(gy).sum(axis=(0, 2, 3)).max())
    assert err <= (1e-6 if dtype == np.float32 else 1e-14)


def test_winograd_grad_weight_falls_back_on_nan():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 16, 18, 18))
    w = rng.standard_normal((16, 16, 3, 3))
    gy = rng.standard_normal((1, 16, 18, 18))
    for arr, idx in ((x, (0, 2, 5, 5)), (gy, (0, 9, 17, 0))):
        a = arr.copy()
        arr[idx] = np.inf
        _, _, gw = tapwise_reference(x, w, gy, (1, 1), (1, 1), (1, 1), 1, "zeros")
        _, gw2, _ = fastcorr.conv2d_backward(x.astype(np.float32), w.astype(np.float32), gy.astype(np.float32),
                                             padding=1)
        np.testing.assert_array_equal(np.isnan(gw2), np.isnan(gw))
        np.testing.assert_array_equal(np.isinf(gw2), np.isinf(gw))
        arr[...] = a
