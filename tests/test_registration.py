"""phase_cross_correlation against scikit-image, a naive float64 sum, and the known truth."""
import numpy as np
import pytest

import fastcorr
from fastcorr._api.registration import _upsampled_dft

RNG = np.random.default_rng(24)


def fourier_shift(image, shift):
    """``image`` moved by ``shift`` pixels (circularly, any fraction), in float64."""
    phase = 1.0
    for axis, (n, s) in enumerate(zip(image.shape, shift)):
        f = np.fft.fftfreq(n).reshape([-1 if a == axis else 1 for a in range(image.ndim)])
        phase = phase * np.exp(-2j * np.pi * s * f)
    return np.fft.ifftn(np.fft.fftn(image) * phase).real


def scene(shape):
    """A smooth random scene (sub-pixel shifts of white noise are ill-posed)."""
    x = RNG.random(shape)
    spectrum = np.fft.fftn(x)
    for axis, n in enumerate(shape):
        f = np.fft.fftfreq(n).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        spectrum = spectrum * np.exp(-(f / 0.15) ** 2)
    return np.fft.ifftn(spectrum).real


def pair(shape, shift, noise=0.02):
    ref = scene(shape)
    return ref, fourier_shift(ref, shift) + noise * RNG.standard_normal(shape)


def assert_like_skimage(got, want, dtype, upsample_factor, truth=None):
    shift, error, phasediff = got
    s_shift, s_error, s_phasediff = want
    assert shift.dtype == np.asarray(s_shift).dtype
    if dtype == np.float64:
        np.testing.assert_allclose(shift, s_shift, rtol=0, atol=1e-6)
        np.testing.assert_allclose(error, s_error, rtol=0, atol=1e-6)
        np.testing.assert_allclose(phasediff, s_phasediff, rtol=0, atol=1e-6)
        return
    assert np.all(np.abs(shift - s_shift) <= 1.0 / upsample_factor + 1e-5)
    if truth is None:
        np.testing.assert_allclose(error, s_error, rtol=0, atol=2e-3)
        np.testing.assert_allclose(phasediff, s_phasediff, rtol=0, atol=2e-3)
        return
    # float32 against the float64 result on the same images: the phase (and
    # error) at the peak of a phase-normalised spectrum amplify rounding (near-
    # zero bins weigh as much as the rest), and scikit-image's own float32
    # result is up to ~1e-2 rad from its float64 one. Two float32 computations
    # (other FFT library, other order of sums) may then differ by that much:
    # each must be as close to the float64 truth as scikit-image's float32 is.
    t_shift, t_error, t_phasediff = truth
    if np.allclose(shift, t_shift, atol=1e-4) and np.allclose(s_shift, t_shift, atol=1e-4):
        assert abs(phasediff - t_phasediff) <= max(2e-3, 2 * abs(s_phasediff - t_phasediff))
        assert abs(error - t_error) <= max(2e-3, 2 * abs(s_error - t_error))


@pytest.mark.parametrize("shape", [(64, 64), (63, 50), (48, 37)], ids=["even", "odd-even", "even-odd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("upsample_factor", [1, 3, 20])
@pytest.mark.parametrize("space", ["real", "fourier"])
@pytest.mark.parametrize("normalization", ["phase", None], ids=["phase", "none"])
def test_matches_skimage(shape, dtype, upsample_factor, space, normalization):
    sk = pytest.importorskip("skimage.registration")
    ref, mov = pair(shape, (2.37, -5.81))
    a, b = ref.astype(dtype), mov.astype(dtype)
    if space == "fourier":
        cdt = np.complex64 if dtype == np.float32 else np.complex128
        a, b = np.fft.fftn(a).astype(cdt), np.fft.fftn(b).astype(cdt)
    kw = dict(upsample_factor=upsample_factor, space=space, normalization=normalization)
    want = sk.phase_cross_correlation(a, b, **kw)
    got = fastcorr.phase_cross_correlation(a, b, **kw, num_threads=2)
    truth = None
    if dtype == np.float32:  # scikit-image in float64 on the same (float32) values
        truth = sk.phase_cross_correlation(a.astype(np.complex128 if space == "fourier" else np.float64),
                                           b.astype(np.complex128 if space == "fourier" else np.float64), **kw)
    assert_like_skimage(got, want, dtype, upsample_factor, truth)


@pytest.mark.parametrize("shift", [(0, 0), (3, -7), (-20, 11), (31, 32)])
def test_integer_shifts_exact(shift):
    ref = scene((64, 64))
    mov = np.roll(ref, shift, axis=(0, 1))
    found, error, phasediff = fastcorr.phase_cross_correlation(ref, mov)
    want = [-s if -s > -32 else 64 - s for s in shift]  # scikit-image's range: (-n/2, n/2]
    want = [w - 64 if w > 32 else w for w in want]
    np.testing.assert_array_equal(found, want)
    assert abs(phasediff) < 1e-9
    # scikit-image's error compares the normalized peak with the plain energies:
    # it is 0 for identical images only without the phase normalization
    found, error, _ = fastcorr.phase_cross_correlation(ref, mov, normalization=None)
    np.testing.assert_array_equal(found, want)
    assert error < 1e-6


@pytest.mark.parametrize("upsample_factor", [10, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_subpixel_truth(upsample_factor, dtype):
    truth = np.array([-1.37, 4.62])
    ref, mov = pair((96, 80), truth, noise=0.0)
    shift, _, _ = fastcorr.phase_cross_correlation(ref.astype(dtype), mov.astype(dtype),
                                                   upsample_factor=upsample_factor)
    # the shift registers moving on reference: minus the motion, to one upsampled step
    assert np.all(np.abs(shift + truth) <= 1.0 / upsample_factor + 1e-6)


@pytest.mark.parametrize("shape", [(16, 16), (15, 12), (9, 11)])
@pytest.mark.parametrize("normalization", ["phase", None])
def test_upsampled_dft_against_naive_sum(shape, normalization):
    # The half-spectrum products (mirrored half, Nyquist bins) against the
    # plain float64 sum over the whole spectrum of exp(2 pi i t.nu) P(nu).
    a, b = RNG.random(shape), RNG.random(shape)
    P = np.fft.fftn(a) * np.conj(np.fft.fftn(b))
    if normalization == "phase":
        P = P / np.abs(P)
    half = np.fft.rfftn(a) * np.conj(np.fft.rfftn(b))
    if normalization == "phase":
        half = half / np.abs(half)
    up, region, offsets = 7.0, 11, [3.6, -12.4]
    t = [(np.arange(region) - o) / up for o in offsets]
    nu = [np.fft.fftfreq(n) for n in shape]
    naive = np.einsum("ya,xb,ab->yx", np.exp(2j * np.pi * np.outer(t[0], nu[0])),
                      np.exp(2j * np.pi * np.outer(t[1], nu[1])), P)
    got_half = _upsampled_dft(half, shape, offsets, up, region, True, np.dtype(np.complex128))
    got_full = _upsampled_dft(P, shape, offsets, up, region, False, np.dtype(np.complex128))
    np.testing.assert_allclose(got_half, naive, rtol=0, atol=1e-9 * np.abs(P).sum())
    np.testing.assert_allclose(got_full, naive, rtol=0, atol=1e-9 * np.abs(P).sum())


def phase_in_long_double(ref, mov, shift, floor):
    """The phase of the phase correlation at ``shift`` (a sub-pixel sum over
    every frequency), computed in long double from the same images."""
    import scipy.fft

    A = scipy.fft.fftn(ref.astype(np.longdouble))
    B = scipy.fft.fftn(mov.astype(np.longdouble))
    P = A * np.conj(B)
    P /= np.maximum(np.abs(P), np.longdouble(floor))
    kernel = np.ones(P.shape, np.clongdouble)
    for axis, (n, s) in enumerate(zip(ref.shape, shift)):
        nu = np.fft.fftfreq(n).astype(np.longdouble).reshape([-1 if a == axis else 1 for a in range(ref.ndim)])
        kernel = kernel * np.exp(2j * np.pi * np.longdouble(float(s)) * nu)
    c = np.sum(P * kernel)
    return float(np.arctan2(c.imag, c.real))


def test_three_dimensional_matches_skimage():
    sk = pytest.importorskip("skimage.registration")
    ref, mov = pair((12, 17, 10), (1.4, -2.3, 0.6))
    for up in (1, 8):
        want = sk.phase_cross_correlation(ref, mov, upsample_factor=up)
        got = fastcorr.phase_cross_correlation(ref, mov, upsample_factor=up)
        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)
        # The phase: this smooth 3-D scene has bins at ~1e-15 of the peak
        # magnitude, which the phase normalisation raises to magnitude 1 with
        # the phase their rounding gave them, so the (small) phasediff depends
        # on the FFT's rounding: scikit-image's float64 value is up to ~4e-5
        # rad from the long double one, fastcorr's (ducc0's FFT) up to ~2e-4.
        truth = phase_in_long_double(ref, mov, got[0], 100 * np.finfo(np.float64).eps)
        assert abs(got[2] - truth) <= 1e-3
        assert abs(want[2] - truth) <= 1e-3


def test_complex_images_match_skimage():
    sk = pytest.importorskip("skimage.registration")
    ref = scene((40, 42)) + 1j * scene((40, 42))
    mov = np.roll(ref, (4, -3), axis=(0, 1)) * np.exp(0.4j)
    want = sk.phase_cross_correlation(ref, mov, upsample_factor=5)
    got = fastcorr.phase_cross_correlation(ref, mov, upsample_factor=5)
    assert_like_skimage(got, want, np.float64, 5)
    assert abs(got[2] + 0.4) < 1e-9  # the global phase (moving's, subtracted), found


@pytest.mark.parametrize("offset", [(10, 17), (-9, 5), (0, -21)])
@pytest.mark.parametrize("upsample_factor", [1, 4])
def test_disambiguate_matches_skimage(offset, upsample_factor):
    sk = pytest.importorskip("skimage.registration")
    big = RNG.random((140, 150))  # white noise: a sharp peak despite the borders
    r0, c0 = 40, 45
    ref = big[r0:r0 + 60, c0:c0 + 64]
    mov = big[r0 + offset[0]:r0 + offset[0] + 60, c0 + offset[1]:c0 + offset[1] + 64]
    kw = dict(upsample_factor=upsample_factor, disambiguate=True)
    want = sk.phase_cross_correlation(ref, mov, **kw)
    got = fastcorr.phase_cross_correlation(ref, mov, **kw)
    assert_like_skimage(got, want, np.float64, upsample_factor)
    np.testing.assert_allclose(got[0], offset, atol=0.5)  # the real (not wrapped) shift


def test_threads_do_not_change_the_result():
    ref, mov = pair((768, 512), (5.5, -3.25))  # large enough to be shared by threads
    one = fastcorr.phase_cross_correlation(ref, mov, upsample_factor=20, num_threads=1)
    two = fastcorr.phase_cross_correlation(ref, mov, upsample_factor=20, num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    assert abs(one[1] - two[1]) < 1e-12
    masks = np.ones(ref.shape, bool), RNG.random(ref.shape) > 0.1
    small = (slice(0, 400), slice(0, 380))  # the masked path's full size, above the threshold too
    one = fastcorr.phase_cross_correlation(ref[small], mov[small], reference_mask=masks[0][small],
                                           moving_mask=masks[1][small], num_threads=1)
    two = fastcorr.phase_cross_correlation(ref[small], mov[small], reference_mask=masks[0][small],
                                           moving_mask=masks[1][small], num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])


@pytest.mark.parametrize("shape", [(640, 515), (515, 640), (40, 64, 70)], ids=["rows", "cols", "3d"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_passes_in_bands_match_skimage(shape, dtype, monkeypatch):
    # threaded calls on big images split each FFT pass into more bands than
    # threads (here forced on smaller ones; odd splits, 3 threads): the
    # result must not see it
    sk = pytest.importorskip("skimage.registration")
    from fastcorr._api import registration
    monkeypatch.setattr(registration, "BANDED_TRANSFORM", 0)
    monkeypatch.setattr(registration, "BAND_MIN_VALUES", 1)
    ref, mov = pair(shape, (2.37, -5.81, 1.5)[:len(shape)])
    a, b = ref.astype(dtype), mov.astype(dtype)
    for up in (1, 20):
        got = fastcorr.phase_cross_correlation(a, b, upsample_factor=up, num_threads=3)
        if len(shape) == 2 or up == 1:  # (the 3-D upsampled phase is ill-conditioned: see phase_in_long_double)
            want = sk.phase_cross_correlation(a, b, upsample_factor=up)
            truth = sk.phase_cross_correlation(ref, mov, upsample_factor=up) if dtype == np.float32 else None
            assert_like_skimage(got, want, dtype, up, truth)
        one = fastcorr.phase_cross_correlation(a, b, upsample_factor=up, num_threads=1)
        np.testing.assert_array_equal(got[0], one[0])
        tol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(got[1:], one[1:], rtol=0, atol=tol)


def test_inputs_are_not_modified():
    ref, mov = pair((32, 32), (1.5, 2.0))
    fr, fm = np.fft.fftn(ref), np.fft.fftn(mov)
    keep = [x.copy() for x in (ref, mov, fr, fm)]
    fastcorr.phase_cross_correlation(ref, mov, upsample_factor=4)
    fastcorr.phase_cross_correlation(fr, fm, upsample_factor=4, space="fourier")
    for before, after in zip(keep, (ref, mov, fr, fm)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("kwargs,name,exc", [
    (dict(moving_image=np.zeros((8, 9))), "moving_image", ValueError),
    (dict(upsample_factor=0.5), "upsample_factor", ValueError),
    (dict(upsample_factor=0), "upsample_factor", ValueError),
    (dict(upsample_factor=np.nan), "upsample_factor", ValueError),
    (dict(upsample_factor="2"), "upsample_factor", TypeError),
    (dict(space="spectral"), "space", ValueError),
    (dict(normalization="mean"), "normalization", ValueError),
    (dict(normalization="Phase"), "normalization", ValueError),
    (dict(num_threads=0), "num_threads", ValueError),
    (dict(reference_mask=np.ones((8, 9), bool)), "reference_mask", ValueError),
    (dict(reference_mask=np.ones((8, 8), bool), moving_mask=np.ones((9, 8), bool)), "moving_mask", ValueError),
    (dict(moving_mask=np.ones((8, 8), bool)), "reference_mask", ValueError),
    (dict(reference_mask=np.ones((8, 8), bool), moving_image=np.zeros((9, 8))), "moving_mask", ValueError),
    (dict(reference_mask=np.ones((8, 8), bool), moving_image=np.zeros((8, 8), complex)), "moving_image", ValueError),
    (dict(reference_mask=np.ones((8, 8), bool), overlap_ratio="half"), "overlap_ratio", TypeError),
])
def test_bad_input_names_the_argument(kwargs, name, exc):
    args = dict(reference_image=np.zeros((8, 8)), moving_image=np.zeros((8, 8)))
    args.update(kwargs)
    ref, mov = args.pop("reference_image"), args.pop("moving_image")
    with pytest.raises(exc, match=name):
        fastcorr.phase_cross_correlation(ref, mov, **args)


def test_space_is_case_insensitive():
    ref, mov = pair((32, 32), (2.0, -1.0))
    a = fastcorr.phase_cross_correlation(ref, mov, space="REAL")
    b = fastcorr.phase_cross_correlation(ref, mov, space="real")
    np.testing.assert_array_equal(a[0], b[0])


def test_nan_raises():
    ref, mov = pair((16, 16), (1.0, 1.0))
    ref[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastcorr.phase_cross_correlation(ref, mov)


MASK_CASES = [((64, 64), (64, 64), (5, -7)), ((60, 71), (60, 71), (-12, 3)), ((50, 60), (70, 55), (4, 9))]


@pytest.mark.parametrize("shapes", MASK_CASES, ids=["square", "odd", "different-shapes"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("overlap_ratio", [0.3, 0.8])
def test_masked_matches_skimage(shapes, dtype, overlap_ratio):
    sk = pytest.importorskip("skimage.registration")
    (h, w), (H, W), off = shapes
    big = RNG.random((200, 200))
    ref = big[50:50 + h, 60:60 + w].astype(dtype)
    mov = big[50 + off[0]:50 + off[0] + H, 60 + off[1]:60 + off[1] + W].astype(dtype)
    ref_mask, mov_mask = RNG.random(ref.shape) > 0.2, RNG.random(mov.shape) > 0.2
    kw = dict(reference_mask=ref_mask, moving_mask=mov_mask, overlap_ratio=overlap_ratio)
    want = sk.phase_cross_correlation(ref, mov, **kw)
    got = fastcorr.phase_cross_correlation(ref, mov, **kw)
    np.testing.assert_array_equal(got[0], want[0])
    assert np.isnan(got[1]) and np.isnan(got[2])
    if ref.shape == mov.shape:  # the reference's mask serves both
        want = sk.phase_cross_correlation(ref, mov, reference_mask=ref_mask, overlap_ratio=overlap_ratio)
        got = fastcorr.phase_cross_correlation(ref, mov, reference_mask=ref_mask, overlap_ratio=overlap_ratio)
        np.testing.assert_array_equal(got[0], want[0])


def test_masked_skips_nan_and_finds_the_shift():
    big = RNG.random((120, 120))
    ref, mov = big[20:84, 30:94].copy(), big[27:91, 25:89].copy()
    mov[5:25, 40:60] = np.nan
    ref[50:60, 0:30] = np.nan
    shift, error, phasediff = fastcorr.phase_cross_correlation(
        ref, mov, reference_mask=~np.isnan(ref), moving_mask=~np.isnan(mov))
    np.testing.assert_array_equal(shift, [7, -5])


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("phase", [True, False])
def test_cross_power_kernel_against_numpy(dtype, phase):
    from fastcorr._engine import registration_kernels as rk

    n = 3001  # blocks of 512 and a remainder
    a = (RNG.standard_normal(n) + 1j * RNG.standard_normal(n)).astype(dtype)
    b = (RNG.standard_normal(n) + 1j * RNG.standard_normal(n)).astype(dtype)
    a[5], b[7], a[9] = 0, 1e-30, 1e-20  # at or below the floor
    eps = np.finfo(a.real.dtype).eps
    want = a.astype(np.complex128) * np.conj(b.astype(np.complex128))
    if phase:
        want /= np.maximum(np.abs(want), 100 * eps)
    out = np.empty_like(a)
    rk.cross_power(out, a, b, phase, 100 * eps)
    np.testing.assert_allclose(out, want, rtol=4 * eps, atol=4 * eps * (1 if phase else np.abs(want).max()))
    rk.cross_power(a, a, b, phase, 100 * eps)  # in place
    np.testing.assert_array_equal(a, out)
    if dtype == np.complex128 and phase:  # squares that overflow: hypot
        big = np.full(4, 3e200 + 4e200j)
        rk.cross_power(big, big, np.full(4, 1 + 0j), True, 1e-14)
        np.testing.assert_allclose(big, 0.6 + 0.8j, rtol=1e-15)
    with pytest.raises(ValueError):
        rk.cross_power(out, a, b[:-1], phase, 0.0)
    with pytest.raises(TypeError):
        rk.cross_power(out.real.copy(), a.real.copy(), b.real.copy(), phase, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_peak_search_against_numpy(dtype):
    from fastcorr._api.registration import _peak_index
    from fastcorr._engine import registration_kernels as rk

    x = RNG.standard_normal((300, 301)).astype(dtype)
    for threads in (1, 2):
        assert _peak_index(x, threads) == np.argmax(np.abs(x))
    top = np.argmax(np.abs(x))
    x.flat[200 * 301 + 5] = -x.flat[top]  # a tie, later: the first wins
    x.flat[7] = x.flat[top]               # a tie, earlier (another band)
    for threads in (1, 2):
        assert _peak_index(x, threads) == np.argmax(np.abs(x)) == 7
    x.flat[250 * 301] = np.nan  # a NaN wins, as in numpy
    x.flat[260 * 301] = np.nan
    for threads in (1, 2):
        assert _peak_index(x, threads) == np.argmax(np.abs(x)) == 250 * 301
    assert rk.absmax(np.zeros(5, dtype)) == 0
    assert rk.absmax(np.array([0, -3, 3], dtype)) == 1
    with pytest.raises(ValueError):
        rk.absmax(np.zeros(0, dtype))


@pytest.mark.parametrize("shape", [(8, 6), (7, 5), (4, 6, 9), (10,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_array_transforms_into_buffers(shape, dtype):
    import scipy.fft

    from fastcorr.methods import _fftlib

    x = RNG.random(shape).astype(dtype)
    cdt = np.complex64 if dtype == np.float32 else np.complex128
    tol = 1e-5 if dtype == np.float32 else 1e-13
    half = shape[:-1] + (shape[-1] // 2 + 1,)
    out = np.empty(half, cdt)
    X = _fftlib.rfftn_into(x, out, workers=2)
    np.testing.assert_allclose(X, scipy.fft.rfftn(x), rtol=0, atol=tol * x.size)
    padded = np.empty(half, cdt).view(dtype)[..., :shape[-1]]  # rows padded, as registration uses it
    kept = X.copy()
    y = _fftlib.irfftn_into(X, padded, workers=2, scratch=np.empty(half, cdt))
    np.testing.assert_array_equal(X, kept)  # left alone without overwrite_x
    np.testing.assert_allclose(y, x, rtol=0, atol=tol)
    y = _fftlib.irfftn_into(X, padded, overwrite_x=True)
    np.testing.assert_allclose(y, x, rtol=0, atol=tol)


def test_concurrent_calls_share_no_workspace():
    # calls of one size on several threads at once (the workspace kept
    # between calls is used by one call at a time)
    from concurrent.futures import ThreadPoolExecutor

    pairs = [pair((40, 36), (1.5 + i, -2.25)) for i in range(6)]
    want = [fastcorr.phase_cross_correlation(r, m, upsample_factor=4) for r, m in pairs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda rm: fastcorr.phase_cross_correlation(*rm, upsample_factor=4), pairs))
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g[0], w[0])
                assert g[1] == w[1] and g[2] == w[2]


def test_registration_bench_table():
    # python -m fastcorr bench --registration: its rows on small images
    pytest.importorskip("skimage.registration")
    from fastcorr._cli import registration_bench

    rows = registration_bench.run(sizes=(64,), rounds=1)
    assert [(n, d, u) for n, d, u, _, _ in rows] == [(64, d, u) for d in ("float32", "float64") for u in (1, 20)]
    for n, dtype, up, times, (same, d_error, d_phase) in rows:
        assert set(times) == {"fastcorr", "skimage", "fastcorr first", "skimage first"} and min(times.values()) > 0
        assert same  # a clean sub-pixel shift: both find the same one
        assert d_error < (1e-4 if dtype == "float32" else 1e-12)
