"""fastcorr.normalized_convolution against astropy.convolution.convolve and a float64 formula.

astropy is the reference for binary certainty (NaN pixels, masks) with odd
kernels; a naive float64 formula written here (a sum over kernel taps of
shifted, padded arrays) is the reference for what astropy does not serve:
even kernels, continuous certainty, the output certainty, float32.
"""
import itertools
import warnings

import numpy as np
import pytest

import fastcorr

METHODS = ["direct", "im2col", "fft", "separable"]
BOUNDARIES = [None, "fill", "wrap", "extend"]


# ----------------------------------------------------------------------------
# The float64 reference


def _pad(a, kshape, boundary, value):
    left = [k // 2 for k in kshape]  # scipy's 'same' centring of a convolution
    right = [k - 1 - l for k, l in zip(kshape, left)]
    widths = list(zip(left, right))
    if boundary == "fill":
        return np.pad(a, widths, mode="constant", constant_values=value)
    if boundary == "wrap":
        return np.pad(a, widths, mode="wrap")
    if boundary == "extend":
        return np.pad(a, widths, mode="edge")
    return a  # None: only where the kernel fits


def _conv(P, k, out_shape):
    """sum_t k[t] * P[i + K - 1 - t]: a convolution read off a padded array."""
    out = np.zeros(out_shape)
    K = np.array(k.shape)
    for t in itertools.product(*(range(n) for n in k.shape)):
        start = K - 1 - np.array(t)
        sl = tuple(slice(s, s + n) for s, n in zip(start, out_shape))
        out += k[t] * P[sl]
    return out


def naive(x, k, c=None, boundary="fill", fill_value=0.0, nan_treatment="interpolate", normalize_kernel=True,
          preserve_nan=False):
    """Normalized convolution by its definition, in float64. Returns (result, certainty)."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    c = np.ones_like(x) if c is None else np.asarray(c, dtype=np.float64)
    missing = np.isnan(x) | (c == 0)
    ksum = k.sum()
    if nan_treatment == "fill":
        vals = np.where(missing, fill_value, x)
        cert = np.where(missing, 1.0, c)
        out_fill_c = 1.0
    else:
        vals = np.where(missing, 0.0, x)
        cert = np.where(missing, 0.0, c)
        out_fill_c = 0.0 if np.isnan(fill_value) else 1.0
    out_fill_x = 0.0 if np.isnan(fill_value) and nan_treatment == "interpolate" else fill_value
    inner = tuple(slice(None) for _ in x.shape)
    shape = x.shape
    if boundary is None:
        shape = tuple(n - m + 1 for n, m in zip(x.shape, k.shape))
        inner = tuple(slice(m // 2, m // 2 + s) for m, s in zip(k.shape, shape))
    with np.errstate(invalid="ignore"):
        num = _conv(_pad(vals * cert, k.shape, boundary, out_fill_x * out_fill_c), k, shape)
    den = _conv(_pad(cert, k.shape, boundary, out_fill_c), k, shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = num / den
    centre = np.where(missing, np.nan, x) if nan_treatment == "interpolate" else vals
    res = np.where(den == 0, centre[inner], res)
    if not normalize_kernel:
        res = res * ksum
    out = np.zeros(x.shape)
    out[inner] = res
    certainty = np.zeros(x.shape)
    certainty[inner] = den / ksum
    if preserve_nan:
        out[missing] = np.nan
    return out, certainty


def _gauss(n, m=None):
    m = n if m is None else m
    g = [np.exp(-0.5 * ((np.arange(s) - (s - 1) / 2) / (s / 4)) ** 2) for s in (n, m)]
    k = np.outer(*g)
    return k / k.sum()


def _data(shape, frac=0.2, seed=0, hole=True):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 3, shape)
    x[rng.random(shape) < frac] = np.nan
    if hole:  # a hole larger than the kernels: outputs with no certain pixel under them
        x[tuple(slice(2, 9) for _ in shape)] = np.nan
    return x


def _close(got, ref, atol=1e-10, rtol=0.0):
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)


def test_reference_is_scipy_on_complete_data():
    """The naive formula itself: scipy's 'same' convolution (even kernels included)."""
    import scipy.signal

    rng = np.random.default_rng(1)
    x = rng.random((9, 12))
    for kshape in [(3, 3), (4, 2), (2, 5), (1, 4)]:
        k = rng.random(kshape)
        ref = scipy.signal.convolve2d(x, k, mode="same", boundary="fill", fillvalue=0.5)
        got, cert = naive(x, k, boundary="fill", fill_value=0.5, normalize_kernel=False)
        np.testing.assert_allclose(got, ref, rtol=1e-13)
        np.testing.assert_allclose(cert, 1.0, rtol=1e-13)


# ----------------------------------------------------------------------------
# astropy


@pytest.fixture(scope="module")
def astropy_convolve():
    conv = pytest.importorskip("astropy.convolution")

    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "NaN values detected post convolution"
            return conv.convolve(*args, **kwargs)

    return run


def _ours(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fastcorr.normalized_convolution(*args, **kwargs)


KERNELS_2D = {
    "gauss5": _gauss(5),
    "box3x7": np.ones((3, 7)),
    "rand5x3": np.random.default_rng(3).uniform(0.0, 1.0, (5, 3)),
    "mixed3": np.array([[0.0, -0.5, 0.0], [1.0, 2.0, 1.0], [0.0, -0.5, 0.0]]),  # sum 3, zero and negative taps
    "1x1": np.array([[2.0]]),
}


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("nan_treatment", ["interpolate", "fill"])
@pytest.mark.parametrize("normalize_kernel", [True, False])
@pytest.mark.parametrize("preserve_nan", [False, True])
def test_matches_astropy_2d(astropy_convolve, boundary, nan_treatment, normalize_kernel, preserve_nan):
    x = _data((19, 26))
    fills = [0.0, 2.5, np.nan] if boundary == "fill" or nan_treatment == "fill" else [0.0]
    for (name, k), fill_value in itertools.product(KERNELS_2D.items(), fills):
        kw = dict(boundary=boundary, fill_value=fill_value, nan_treatment=nan_treatment,
                  normalize_kernel=normalize_kernel, preserve_nan=preserve_nan)
        ref = astropy_convolve(x, k, **kw)
        got = _ours(x, k, **kw)
        assert got.dtype == np.float64 and got.shape == x.shape
        _close(got, ref, atol=1e-10)
        if nan_treatment == "interpolate" and not np.isnan(fill_value):
            _close(got, naive(x, k, **kw)[0], atol=1e-10)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_matches_astropy_without_missing_pixels(astropy_convolve, boundary):
    """No NaN: a plain convolution (normalised), including zero-sum kernels when not normalised."""
    x = np.random.default_rng(4).random((15, 17))
    for k in [_gauss(5, 3), np.array([[1.0, 0.0, -1.0]] * 3)]:
        normalize = k.sum() > 0
        ref = astropy_convolve(x, k, boundary=boundary, fill_value=0.7, normalize_kernel=normalize)
        _close(_ours(x, k, boundary=boundary, fill_value=0.7, normalize_kernel=normalize), ref, atol=1e-12)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_random_masks_match_astropy(astropy_convolve, fraction):
    """Random NaN masks, sparse to nearly all NaN (windows without any valid pixel)."""
    for seed in range(3):
        x = _data((24, 21), frac=fraction, seed=seed, hole=False)
        for k in (_gauss(3), _gauss(7, 5), np.ones((1, 5))):
            for boundary in ("fill", "extend"):
                ref = astropy_convolve(x, k, boundary=boundary)
                _close(_ours(x, k, boundary=boundary), ref)


def test_binary_certainty_is_astropys_mask(astropy_convolve):
    """certainty=0 pixels behave as NaN pixels, whatever they hold (inf and NaN included)."""
    rng = np.random.default_rng(5)
    x = rng.random((16, 18))
    mask = rng.random(x.shape) < 0.3
    x_bad = x.copy()
    x_bad[mask] = rng.choice([np.nan, np.inf, -np.inf, 1e300], mask.sum())
    k = _gauss(5)
    for kw in [dict(), dict(boundary="wrap"), dict(preserve_nan=True), dict(nan_treatment="fill", fill_value=3.0)]:
        ref = astropy_convolve(x, k, mask=mask, **kw)
        _close(_ours(x_bad, k, ~mask, **kw), ref)
        _close(_ours(x_bad, k, (~mask).astype(np.float32), **kw), ref)
        _close(_ours(np.ma.masked_array(x_bad, mask), k, **kw), ref)


def test_astropy_kernel_objects_and_dtypes(astropy_convolve):
    conv = pytest.importorskip("astropy.convolution")
    x = _data((20, 20))
    kernel = conv.Gaussian2DKernel(1.5)
    ref = astropy_convolve(x, kernel)
    _close(_ours(x, kernel), ref)
    _close(_ours(x, kernel.array.astype(np.float32)), astropy_convolve(x, kernel.array.astype(np.float32)))
    xi = np.arange(100, dtype=np.int16).reshape(10, 10)
    got = fastcorr.normalized_convolution(xi, np.ones((3, 3), np.int64))
    assert got.dtype == np.float64
    _close(got, astropy_convolve(xi, np.ones((3, 3))), atol=1e-12)


def test_1d_and_3d_match_astropy(astropy_convolve):
    x1 = _data((40,), seed=6)
    k1 = np.array([1.0, 3.0, 4.0, 3.0, 1.0])
    x3 = _data((9, 11, 10), seed=7, frac=0.25)
    x3[0, 0, :] = np.nan
    k3 = np.random.default_rng(8).random((3, 5, 3))
    for boundary, nan_treatment, preserve in itertools.product(BOUNDARIES, ["interpolate", "fill"], [False, True]):
        kw = dict(boundary=boundary, nan_treatment=nan_treatment, preserve_nan=preserve, fill_value=1.5)
        _close(_ours(x1, k1, **kw), astropy_convolve(x1, k1, **kw))
        _close(_ours(x3, k3, **kw), astropy_convolve(x3, k3, **kw))
    kw = dict(boundary="fill", fill_value=np.nan)
    _close(_ours(x3, k3, **kw), astropy_convolve(x3, k3, **kw))


def test_kernel_sum_rules_match_astropy(astropy_convolve):
    """astropy's rules for kernels that cannot be normalised: we raise where it raises."""
    x = np.random.default_rng(9).random((10, 10))
    xn = x.copy()
    xn[3, 4] = np.nan
    zero = np.array([[1.0, 0.0, -1.0]])
    small = np.full((3, 3), 0.005 / 9)  # sums to 0.005: below astropy's 1/100
    negative = -np.ones((3, 3))
    for data, k, kw in itertools.product(
        [x, xn], [zero, small, negative],
        [dict(), dict(normalize_kernel=False), dict(normalize_kernel=False, nan_treatment="fill")],
    ):
        try:
            ref = astropy_convolve(data, k, **kw)
        except ValueError:
            with pytest.raises(ValueError, match="kernel"):
                fastcorr.normalized_convolution(data, k, **kw)
        else:
            _close(_ours(data, k, **kw), ref, atol=1e-12)
    with pytest.raises(ValueError, match="kernel"):  # a larger tolerance refuses larger sums too
        fastcorr.normalized_convolution(x, np.ones((3, 3)), normalization_zero_tol=10.0)


def test_warns_as_astropy_when_a_hole_stays_nan():
    x = _data((20, 20), frac=0.0)
    for k in (np.ones((3, 3)), np.array([[1.0, 2.0, 1.0], [2.0, 5.0, 2.0], [1.0, 2.0, 1.0]])):  # rank 1 and 2
        with pytest.warns(RuntimeWarning, match="no certain pixel") as record:
            fastcorr.normalized_convolution(x, k)
        assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastcorr.normalized_convolution(x, np.ones((3, 3)), preserve_nan=True)
        fastcorr.normalized_convolution(x, np.ones((3, 3)), return_certainty=True)
        fastcorr.normalized_convolution(x, np.ones((9, 9)))


# ----------------------------------------------------------------------------
# Beyond astropy: even kernels, continuous certainty, output certainty


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_even_kernels_and_float_certainty(boundary):
    rng = np.random.default_rng(10)
    x = _data((17, 22), frac=0.15, seed=10)
    c = rng.random(x.shape)
    c[rng.random(x.shape) < 0.1] = 0.0
    c[0, :4] = 1.0
    for kshape in [(4, 4), (2, 5), (6, 3), (1, 2)]:
        k = rng.uniform(0.1, 1.0, kshape)
        for certainty, kw in itertools.product(
            [None, c], [dict(), dict(fill_value=2.0), dict(fill_value=np.nan), dict(normalize_kernel=False),
                        dict(preserve_nan=True), dict(nan_treatment="fill", fill_value=-1.0)],
        ):
            got, cert = _ours(x, k, certainty, boundary=boundary, return_certainty=True, **kw)
            ref, ref_cert = naive(x, k, certainty, boundary=boundary, **kw)
            _close(got, ref)
            np.testing.assert_allclose(cert, ref_cert, atol=1e-12)


def test_certainty_weights_each_pixel():
    """A pixel with certainty w counts as w pixels: 1-D, by hand."""
    x = np.array([1.0, 4.0, 10.0, 2.0])
    c = np.array([1.0, 0.25, 0.5, 0.0])
    y, cert = fastcorr.normalized_convolution(x, [1.0, 1.0, 1.0], c, boundary=None, return_certainty=True)
    np.testing.assert_allclose(y, [0.0, (1 + 1 + 5) / 1.75, (1 + 5) / 0.75, 0.0])
    np.testing.assert_allclose(cert, [0.0, 1.75 / 3, 0.75 / 3, 0.0])


def test_float32_stays_float32_and_is_accurate():
    """DESIGN §4: e = max|y - y_ref| / (max|x| sum|k|) <= 1e-5 for float32, on every method."""
    x = _data((48, 40), frac=0.2, seed=11, hole=False)
    c = np.random.default_rng(12).uniform(0.2, 1.0, x.shape)
    k = _gauss(7)
    for boundary in ("fill", "wrap", "extend", None):
        ref, ref_cert = naive(x, k, c, boundary=boundary)
        for method in METHODS:
            y, cert = fastcorr.normalized_convolution(x.astype(np.float32), k, c.astype(np.float32),
                                                      boundary=boundary, method=method, return_certainty=True)
            assert y.dtype == np.float32 and cert.dtype == np.float32
            e = np.nanmax(np.abs(y - ref)) / (np.nanmax(np.abs(x)) * np.abs(k).sum())
            assert e <= 1e-5, (boundary, method, e)
            assert np.nanmax(np.abs(cert - ref_cert)) <= 1e-5
    # float32 data with a float64 kernel: float32 (the kernel is cast)
    assert fastcorr.normalized_convolution(x.astype(np.float32), k).dtype == np.float32
    assert fastcorr.normalized_convolution(x.astype(np.float16), k.astype(np.float16)).dtype == np.float16


# ----------------------------------------------------------------------------
# Every method: the same result, and no NaN leaking out of a missing pixel


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_method(method, boundary):
    x = _data((37, 41), frac=0.2, seed=13)
    x[12:26, 15:30] = np.nan  # larger than the kernel: the FFT's denominators are only nearly 0 there
    # rank 1 (the fused method with 'separable' and 'auto') and rank 2 (two separable passes each)
    for k in (_gauss(9, 7), _gauss(9, 7) + 0.5 * np.outer(np.hanning(11)[1:-1], np.ones(7)) / 7):
        ref = naive(x, k, boundary=boundary)[0]
        got = _ours(x, k, boundary=boundary, method=method)
        # the FFT's rounding, divided by the denominator: at least ~1e-3 of sum(k) here
        _close(got, ref, atol=1e-10 if method != "fft" else 1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_nan_under_zero_certainty_never_leaks(method):
    """DIPlib #211: NaN (or inf) pixels of certainty 0 must not reach their neighbours."""
    rng = np.random.default_rng(14)
    x = rng.random((40, 48))
    c = np.ones_like(x)
    holes = rng.random(x.shape) < 0.1
    x_bad = x.copy()
    x_bad[holes] = np.nan
    x_bad[5, 7] = np.inf
    x_bad[30, 40] = -np.inf
    c[holes] = 0.0
    c[5, 7] = c[30, 40] = 0.0
    k = _gauss(11)
    for boundary in BOUNDARIES:
        ref = naive(x, k, c, boundary=boundary)[0]
        for certainty in (c, None):
            data = x_bad if certainty is not None else np.where(c == 0, np.nan, x)
            got = _ours(data, k, certainty, boundary=boundary, method=method)
            assert np.isfinite(got).all(), (boundary, method)
            _close(got, ref, atol=1e-9)


def test_auto_picks_the_fft_for_large_kernels_and_agrees():
    x = _data((160, 170), frac=0.05, seed=15, hole=False)
    k = np.random.default_rng(16).uniform(0.5, 1.0, (41, 41))
    from fastcorr._engine import dispatch

    assert dispatch.choose_offset_method(np.nan_to_num(x), k, x.shape, 0, x.dtype, 2) == "fft"
    _close(fastcorr.normalized_convolution(x, k, num_threads=2), naive(x, k)[0], atol=1e-10)


# ----------------------------------------------------------------------------
# Inputs


def test_inputs_are_not_modified():
    x = _data((12, 12))
    c = np.random.default_rng(17).random(x.shape)
    k = _gauss(3)
    copies = [a.copy() for a in (x, c, k)]
    for kw in [dict(), dict(nan_treatment="fill"), dict(boundary="extend", preserve_nan=True)]:
        _ours(x, k, c, **kw)
    for a, b in zip((x, c, k), copies):
        np.testing.assert_array_equal(a, b)


def test_array_likes_and_views():
    x = _data((30, 30))
    k = _gauss(5)
    ref = _ours(x, k)
    _close(_ours(x.tolist(), k.tolist()), ref, atol=0)
    xt = np.asfortranarray(x)
    _close(_ours(xt, k[::-1, ::-1].copy()[::-1, ::-1]), ref, atol=0)
    _close(_ours(x.astype(">f8"), k), ref, atol=0)
    _close(_ours(x[:, ::2], k), naive(x[:, ::2], k)[0])


def test_empty_data():
    out = fastcorr.normalized_convolution(np.zeros((0, 5)), np.ones((3, 3)))
    assert out.shape == (0, 5) and out.dtype == np.float64


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((np.ones((5, 5)), np.ones(3)), {}, ValueError, "kernel"),
        ((np.ones((5, 5)), np.ones((3, 3, 3))), {}, ValueError, "kernel"),
        ((np.ones((2, 2, 2, 2)), np.ones((1, 1, 1, 1))), {}, ValueError, "data"),
        ((np.ones((5, 5)), np.ones((0, 3))), {}, ValueError, "kernel"),
        ((np.ones((5, 5)), np.ones((3, 3)), np.ones((5, 4))), {}, ValueError, "certainty"),
        ((np.ones((5, 5)), np.ones((3, 3)), np.full((5, 5), 1.5)), {}, ValueError, "certainty"),
        ((np.ones((5, 5)), np.ones((3, 3)), np.full((5, 5), -0.1)), {}, ValueError, "certainty"),
        ((np.ones((5, 5)), np.ones((3, 3)), np.full((5, 5), np.nan)), {}, ValueError, "certainty"),
        ((np.ones((5, 5)), np.ones((3, 3)), np.full((5, 5), "a")), {}, TypeError, "certainty"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(boundary="symm"), ValueError, "boundary"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(boundary=0), ValueError, "boundary"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(nan_treatment="zero"), ValueError, "nan_treatment"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(method="winograd"), ValueError, "method"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(fill_value="x"), TypeError, "fill_value"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(normalization_zero_tol=-1.0), ValueError, "normalization_zero_tol"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(preserve_nan="yes"), TypeError, "preserve_nan"),
        ((np.ones((5, 5)), np.ones((3, 3))), dict(num_threads=0), ValueError, "num_threads"),
        ((np.ones((5, 5)), np.array([[1.0, -1.0]])), {}, ValueError, "kernel"),  # sums to zero
        ((np.ones((5, 5)), np.array([[1.0, np.nan]])), {}, ValueError, "kernel"),
        ((np.ones((5, 5)), np.ones((7, 3))), dict(boundary=None), ValueError, "kernel"),
        ((np.ones((5, 5), complex), np.ones((3, 3))), {}, TypeError, "data"),
        ((np.ones((5, 5), bool), np.ones((3, 3))), {}, TypeError, "data"),
        ((np.ones((5, 5)), np.ones((3, 3), complex)), {}, TypeError, "kernel"),
    ],
)
def test_bad_input_names_the_argument(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastcorr.normalized_convolution(*args, **kwargs)


def test_zero_sum_kernel_with_missing_pixels_needs_fill():
    x = np.ones((6, 6))
    x[2, 2] = np.nan
    k = np.array([[1.0, 0.0, -1.0]])
    with pytest.raises(ValueError, match="nan_treatment='fill'"):
        fastcorr.normalized_convolution(x, k, normalize_kernel=False)
    y = fastcorr.normalized_convolution(x, k, normalize_kernel=False, nan_treatment="fill")
    assert y[2, 1] == -1.0 and y[2, 3] == 1.0


def test_compiled_passes_equal_the_numpy_fallback(monkeypatch):
    """The compiled pointwise passes and their numpy twins (an uncompiled tree) agree."""
    from fastcorr._engine import normalized as engine

    x = _data((21, 18), seed=18)
    c = np.random.default_rng(19).random(x.shape)
    c[::5, ::3] = 0.0
    k = _gauss(5, 3)
    cases = [dict(), dict(boundary=None, preserve_nan=True), dict(nan_treatment="fill", fill_value=2.0),
             dict(normalize_kernel=False, boundary="extend")]
    runs = []
    for kw in cases:
        for certainty, dtype in [(None, np.float64), (c, np.float64), (c, np.float32)]:
            runs.append((x.astype(dtype), certainty, kw))
    compiled = [_ours(data, k, cert, return_certainty=True, **kw) for data, cert, kw in runs]
    monkeypatch.setattr(engine, "_prepare", engine._prepare_numpy)
    monkeypatch.setattr(engine, "_finish", engine._finish_numpy)
    for (data, cert, kw), (y, yc) in zip(runs, compiled):
        y2, yc2 = _ours(data, k, cert, return_certainty=True, **kw)
        tol = 1e-5 if data.dtype == np.float32 else 1e-13
        _close(y, y2, atol=tol)
        np.testing.assert_allclose(yc, yc2, atol=tol)


# ----------------------------------------------------------------------------
# fastcorr.dask


@pytest.mark.parametrize("layout", ["seams", "input"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_dask_equals_in_memory(boundary, layout):
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fdask

    x = _data((45, 52), frac=0.2, seed=20)
    x[30:40, 3:14] = np.nan  # a hole across a seam
    c = np.random.default_rng(21).random(x.shape)
    c[c < 0.1] = 0.0
    for kshape, chunks, kw in [
        ((5, 5), (16, 20), dict()),
        ((4, 7), ((7, 30, 8), (3, 40, 9)), dict(fill_value=np.nan)),  # chunks smaller than the kernel
        ((3, 3), (45, 52), dict(preserve_nan=True, fill_value=1.5)),
        ((9, 2), (11, 13), dict(nan_treatment="fill", fill_value=-2.0, normalize_kernel=False)),
    ]:
        k = np.random.default_rng(22).uniform(0.2, 1.0, kshape)
        for certainty in (None, c):
            ref, ref_c = _ours(x, k, certainty, boundary=boundary, return_certainty=True, **kw)
            dc = None if certainty is None else da.from_array(certainty, chunks=chunks)
            y = fdask.normalized_convolution(da.from_array(x, chunks=chunks), k, dc, boundary=boundary,
                                             chunks=layout, **kw)
            assert y.shape == x.shape and y.dtype == ref.dtype
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                _close(y.compute(scheduler="sync"), ref, atol=1e-12)
                y, yc = fdask.normalized_convolution(da.from_array(x.astype(np.float32), chunks=chunks), k, dc,
                                                     boundary=boundary, chunks=layout, return_certainty=True, **kw)
                got, got_c = da.compute(y, yc, scheduler="sync")
            assert got.dtype == np.float32
            ref32, ref32_c = _ours(x.astype(np.float32), k, certainty, boundary=boundary, return_certainty=True, **kw)
            _close(got, ref32, atol=1e-5)
            np.testing.assert_allclose(got_c, ref32_c, atol=1e-5)


def test_dask_lazy_image_larger_than_memory():
    """Building the graph reads no data and allocates nothing image-sized
    (validation runs on a zero-memory stand-in); a chunk computes as in memory."""
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fdask

    n = 2**18  # 2**36 float64 pixels: 512 GiB
    x = da.random.RandomState(0).random_sample((n, n), chunks=16384)
    x = da.where(x < 0.05, np.nan, x)
    y = fdask.normalized_convolution(x, np.ones((5, 5)), da.ones((n, n), chunks=16384))
    assert y.shape == (n, n) and y.dtype == np.float64
    with pytest.raises(MemoryError, match="result"):  # in memory, the same call must refuse
        fastcorr.normalized_convolution(np.broadcast_to(np.float64(1), (n, n)), np.ones((5, 5)))


def test_dask_bad_input():
    da = pytest.importorskip("dask.array")
    import fastcorr.dask as fdask

    x = da.zeros((20, 20), chunks=10)
    with pytest.raises(ValueError, match="kernel"):
        fdask.normalized_convolution(x, np.ones(3))
    with pytest.raises(ValueError, match="kernel"):
        fdask.normalized_convolution(x, np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="certainty"):
        fdask.normalized_convolution(x, np.ones((3, 3)), np.ones((20, 19)))
    with pytest.raises(ValueError, match="boundary"):
        fdask.normalized_convolution(x, np.ones((3, 3)), boundary="symm")
    with pytest.raises(ValueError, match="data"):
        fdask.normalized_convolution(da.zeros((2, 20, 20)), np.ones((3, 3)))
    y = fdask.normalized_convolution(x, np.ones((3, 3)), da.full((20, 20), 2.0, chunks=10))
    with pytest.raises(ValueError, match="certainty"):
        y.compute(scheduler="sync")


def test_fuzz_hostile_arguments():
    """Random mixtures of valid and hostile arguments: a result, or ValueError /
    TypeError / MemoryError with a message; never a crash. Bounded in time
    (a fifth of FASTCORR_FUZZ_SECONDS, default 2 s)."""
    import os
    import random
    import time

    seconds = float(os.environ.get("FASTCORR_FUZZ_SECONDS", "10")) / 5
    rnd = random.Random(25)
    arrays = [
        lambda: np.ones((rnd.randint(0, 6), rnd.randint(0, 6))),
        lambda: _data((rnd.randint(1, 12), rnd.randint(1, 12)), hole=False),
        lambda: np.full((3, 3), np.nan),
        lambda: np.full((2, 4), np.inf, dtype=np.float32),
        lambda: np.ones((3, 3), dtype=rnd.choice(["int8", "uint16", "complex64", "float16", "longdouble", ">f4"])),
        lambda: np.ones(rnd.randint(0, 5)),
        lambda: np.ones((2, 3, 2)),
        lambda: np.ones((2, 2, 2, 2)),
        lambda: np.zeros((0, 0)),
        lambda: np.broadcast_to(np.float32(1), (2**20, 2**20)),  # 2**40 elements, no memory
        lambda: np.random.default_rng(rnd.randint(0, 99)).random((4, 5)) * rnd.choice([1.0, -1.0, 1e300, 0.0]),
        lambda: [[1, 2], [3]],
        lambda: "abc",
        lambda: None,
        lambda: 3.5,
        lambda: np.array([[object()]]),
        lambda: np.ones((5, 5), bool),
        lambda: np.ones((3, 3))[::-1, ::2],
    ]
    scalars = [0, -1, 1, 2**63, 1e-300, 1.5, np.nan, np.inf, None, "2", [1], 1 + 1j, True, np.float32(2)]
    # (valid values, hostile ones): a call takes a valid value 80% of the time
    options = [
        ("boundary", [None, "fill", "wrap", "extend"], ["symm", 3]),
        ("fill_value", [0.0, 1.5, np.nan, -2], scalars),
        ("nan_treatment", ["interpolate", "fill"], ["zero", None]),
        ("normalize_kernel", [True, False, np.bool_(True)], [1, None]),
        ("preserve_nan", [True, False], ["yes"]),
        ("normalization_zero_tol", [1e-8, 0.0, 1.0], scalars),
        ("return_certainty", [True, False], [2]),
        ("method", ["auto", "direct", "im2col", "fft", "separable"], ["winograd"]),
        ("num_threads", [1, 2, None], scalars),
    ]
    valid = [lambda: _data((rnd.randint(1, 12), rnd.randint(1, 12)), frac=rnd.random(), hole=False),
             lambda: np.random.default_rng(rnd.randint(0, 99)).uniform(0.1, 1, (rnd.randint(1, 6), rnd.randint(1, 6)))]
    calls = computed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        args = [rnd.choice(arrays if rnd.random() < 0.3 else valid[:1])(),
                rnd.choice(arrays if rnd.random() < 0.3 else valid[1:])()]
        if rnd.random() < 0.4:
            like = args[0].shape if isinstance(args[0], np.ndarray) and args[0].size < 10**6 else (3, 3)
            args.append(rnd.choice(arrays + [lambda: np.full(like, 0.5),
                                             lambda: np.random.default_rng(1).random(like) > 0.3])())
        kwargs = {}
        for key, good, bad in options:
            if rnd.random() < 0.4:
                kwargs[key] = rnd.choice(good if rnd.random() < 0.8 else bad)
        calls += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = fastcorr.normalized_convolution(*args, **kwargs)
            except (ValueError, TypeError, MemoryError) as exc:
                assert str(exc), f"{type(exc).__name__} without a message"
                continue
        assert out is not None
        computed += 1
    assert calls > 0 and computed > 0


def test_bands_and_slabs_change_nothing(monkeypatch):
    """Long calls run in bands of output rows (the fused method) and slabs of
    pixels (the pointwise passes), so that they answer Ctrl-C: forced here on
    a small image, every result and certainty equals the one-piece call."""
    from fastcorr._engine import bands
    from fastcorr._engine import normalized as engine

    rng = np.random.default_rng(26)
    x = _data((70, 45), frac=0.15, seed=26)
    c = rng.random(x.shape)
    runs = [(k, cert, b) for k in (_gauss(9, 7), rng.random((5, 4))) for cert in (None, c)
            for b in (None, "fill", "wrap", "extend")]
    whole = [_ours(x, k, cert, boundary=b, return_certainty=True) for k, cert, b in runs]
    monkeypatch.setattr(engine, "SLAB", 300)
    monkeypatch.setattr(engine, "FUSED_LONG_WORK", 0)
    monkeypatch.setattr(bands, "band_rows", lambda seconds, rows, min_rows=None: 18 if rows > 36 else None)
    calls = []
    real = engine._fused.normalized_rank1
    monkeypatch.setattr(engine._fused, "normalized_rank1", lambda *a: calls.append(a[6]) or real(*a))
    for (k, cert, b), (y, yc) in zip(runs, whole):
        y2, yc2 = _ours(x, k, cert, boundary=b, return_certainty=True)
        _close(y2, y, atol=0)
        np.testing.assert_array_equal(yc2, yc)
    assert len(calls) > 8 and min(shape[0] for shape in calls) < 70  # the fused calls ran in bands


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lean_sweep_equals_the_general_one(monkeypatch, dtype):
    """The fused sweep's lean loop (normalised kernel, no preserve_nan) gives
    the general loop's bits, its NaN count (hence the warning) included,
    on widths that are not a multiple of the vector, with holes larger than
    the kernel; and the float64 formula to 1e-10."""
    from fastcorr.methods import normalized as fused

    for shape, n in (((37, 13), 5), ((40, 9), 3), ((33, 70), 7), ((29, 8), 11)):
        x = _data(shape, frac=0.2, seed=n).astype(dtype)
        k = _gauss(n).astype(dtype)
        got = {}
        for lean in (False, True):
            monkeypatch.setattr(fused, "LEAN_FINISH", lean)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                y = fastcorr.normalized_convolution(x, k, num_threads=2)
            got[lean] = (y, sum(issubclass(w.category, RuntimeWarning) for w in caught))
        np.testing.assert_array_equal(got[True][0], got[False][0])
        holes = int(np.isnan(got[True][0]).any())  # a hole wider than the kernel: NaN outputs, one warning
        assert got[True][1] == got[False][1] == holes
        assert holes or n > 7
        ref = naive(x, k)[0]
        _close(got[True][0], ref, atol=1e-10 if dtype == np.float64 else 1e-5)


def test_large_fresh_results_start_on_a_huge_page(monkeypatch):
    """A fresh result of 4 MiB or more starts on a 2 MiB boundary (huge pages
    for all of it), is the caller's own writeable array, and holds what the
    unaligned result holds."""
    from fastcorr._engine import normalized as engine

    x = _data((1024, 512), frac=0.05, seed=3)  # 4 MiB of float64
    k = _gauss(5)
    y = _ours(x, k, num_threads=2)
    assert y.ctypes.data % (2 << 20) == 0 and y.flags.writeable and y.flags.c_contiguous
    assert y.shape == x.shape and y.dtype == np.float64 and not np.shares_memory(y, x)
    y2, c2 = _ours(x, k, num_threads=2, return_certainty=True)
    assert c2.ctypes.data % (2 << 20) == 0 and not np.shares_memory(y2, c2)
    monkeypatch.setattr(engine, "ALIGN_OUTPUT", False)
    np.testing.assert_array_equal(y, _ours(x, k, num_threads=2))
    np.testing.assert_array_equal(c2, _ours(x, k, num_threads=2, return_certainty=True)[1])
    small = _ours(x[:100], k)  # under 4 MiB: a plain array
    assert small.base is None
