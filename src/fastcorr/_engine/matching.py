"""Template matching's engine: correlations through the dispatcher, window
statistics from ``fastcorr.methods.window``.

``fastcorr._api.matching.match_template`` validates its arguments
(``validate.match_template_args``) and calls :func:`match_template` here.

Every score of OpenCV's six methods is built from one correlation per
template and channel, ``sum_c corr(x_c, t_c - mean(t_c))`` (the zero-mean
template: its correlation needs no correction for the image's level), and
per-window means and centred sums of squares of the image
(``methods.window``, exact on images far from zero). The correlations run on
whatever method the dispatcher picks for the shapes (direct for small
templates, FFT for large ones), threaded; a stack of templates shares the
image's conversion, its centring, its NaN scan and its window statistics
(one pass for the whole stack), and where the FFT serves, the image's
spectrum (``methods.fft.correlate_stack``, which also sums the channels on
the spectra: one inverse transform per template).

An image whose level is large against its spread (values 1e4 + noise) is
centred first, by its level: the zero-mean template's correlation with it
is unchanged in exact arithmetic, and in floating point it no longer carries
rounding errors of the offset's size.

Template masks and missing image pixels (NaN) take the *weighted* path:
OpenCV's masked formulas, every window sum a correlation with the weights
(and, with missing pixels, with the validity of the image: Padfield's
masked normalised cross-correlation), in float64.
"""
import numpy as np

from . import dispatch
from ..methods import fft as _fft

try:
    from ..methods import window
except ImportError:  # an uncompiled tree
    window = None

__all__ = ["match_template", "level_and_spread", "CENTRE_RATIO"]

SQDIFF, SQDIFF_NORMED, CCORR, CCORR_NORMED, CCOEFF, CCOEFF_NORMED = range(6)

#: An image channel is centred by its level before correlating when the
#: level is more than this many spreads (standard deviations) from zero.
CENTRE_RATIO = 2.0
#: Samples (about) from which a channel's level and spread are estimated.
SAMPLE = 1 << 16
#: Weighted path: a window's centred sum of squares below this fraction of
#: the magnitudes it was formed from counts as zero (a flat window).
FLAT_TOL = 1e-12


def match_template(p):
    """Scores (T, Ho, Wo) (or (Ho, Wo) for one template) of a validated problem."""
    T, h, w, C = p.templates.shape
    x = np.asarray(p.image, dtype=p.dtype)
    if p.pad_input:
        x = _pad(x, h, w, p.mode, p.constant_values)
    x = np.ascontiguousarray(x)
    missing = None
    if x.dtype.kind == "f" and not dispatch._finite(x):
        nan = np.isnan(x).any(axis=2)
        if nan.any():
            missing = nan
    if missing is None and p.weights is None:
        out = _plain(x, p)
    else:
        out = _weighted(x, missing, p)
    return out if p.stacked else out[0]


def _pad(x, h, w, mode, constant_values):
    """The image extended as scikit-image does: ``numpy.pad`` by the
    template's size on each side, cut to the windows centred on each pixel
    (window top-left at ``(i - h // 2, j - w // 2)``)."""
    H, W = x.shape[:2]
    kw = {"constant_values": constant_values} if mode == "constant" else {}
    padded = np.pad(x, ((h, h), (w, w), (0, 0)), mode=mode, **kw)
    r0, c0 = h - h // 2, w - w // 2
    return padded[r0:r0 + H + h - 1, c0:c0 + W + w - 1]


def level_and_spread(plane):
    """(level, spread) of a 2-D array from a strided sample of about
    ``SAMPLE`` values (float64): their mean and standard deviation."""
    H, W = plane.shape
    step = max(1, int(np.sqrt(H * W / SAMPLE)))
    sample = np.asarray(plane[::step, ::step], dtype=np.float64)
    return float(sample.mean()), float(sample.std())


def _template_constants(templates):
    """Per template: channel means (T, C), the zero-mean templates, their
    centred sum of squares (exactly 0 for a flat template) and raw sum of squares."""
    tmean = templates.mean(axis=(1, 2))
    tz = templates - tmean[:, None, None, :]
    # Second pass: the mean of the centred values corrects the first mean's
    # rounding (ulp of the level: on 1e6 + noise it would leave the
    # zero-mean template a constant of 1e-10, which the correlation with
    # the image's level turns into errors of 1e-8).
    fix = tz.mean(axis=(1, 2))
    tmean += fix
    tz -= fix[:, None, None, :]
    flat = np.ptp(templates, axis=(1, 2)) == 0          # (T, C): a constant channel
    tz[np.broadcast_to(flat[:, None, None, :], tz.shape)] = 0.0
    tvar = np.einsum("thwc,thwc->t", tz, tz)
    tsq = np.einsum("thwc,thwc->t", templates, templates)
    return np.ascontiguousarray(tmean), tz, tvar, tsq


def _correlate(a, k, shape, dtype, nthreads):
    """Valid correlation of a 2-D plane with a kernel, on the method 'auto' picks."""
    return dispatch.correlate_offset(a, np.ascontiguousarray(k, dtype=dtype), shape, (0, 0), 0, 0.0, dtype,
                                     "auto", nthreads)


def _planes(x, dtype, centre):
    """The channel planes to correlate: C-contiguous, each centred by its
    level when that is large against its spread (``centre``: always)."""
    H, W, C = x.shape
    planes = []
    for c in range(C):
        plane = x[:, :, c] if C > 1 else x.reshape(H, W)
        level, spread = level_and_spread(plane)
        if centre or abs(level) > CENTRE_RATIO * spread:
            plane = np.subtract(plane, dtype.type(level), dtype=dtype)
        planes.append(np.ascontiguousarray(plane, dtype=dtype))
    return planes


def _plain(x, p):
    """No mask, no missing pixel: correlations with the zero-mean templates,
    then ``methods.window.scores`` in place."""
    T, h, w, C = p.templates.shape
    H, W = x.shape[:2]
    Ho, Wo = H - h + 1, W - w + 1
    dtype = x.dtype
    nt = p.num_threads
    tmean, tz, tvar, tsq = _template_constants(p.templates)
    planes = _planes(x, dtype, centre=False)
    num = None
    if T == 1 and C == 1:
        num = _correlate(planes[0], tz[0, :, :, 0], (Ho, Wo), dtype, nt)[None]
    elif dispatch.choose_offset_method(planes[0], np.ascontiguousarray(tz[0, :, :, 0], dtype=dtype), (Ho, Wo), 0,
                                       dtype, nt) == "fft":
        # one image spectrum for the whole stack, channels summed on the spectra
        num = _fft.correlate_stack(planes, np.ascontiguousarray(tz.transpose(0, 3, 1, 2), dtype=dtype),
                                   (Ho, Wo), nt)
    else:
        num = np.empty((T, Ho, Wo), dtype)
        for t in range(T):
            for c in range(C):
                r = _correlate(planes[c], tz[t, :, :, c], (Ho, Wo), dtype, nt)
                if c == 0:
                    num[t] = r
                else:
                    num[t] += r
    if p.method != CCOEFF:
        window.scores(x.reshape(H, W * C), C, h, w, num, tmean, tvar, tsq, p.method, nt)
    return num


def _weighted(x, missing, p):
    """Template weights and/or missing image pixels: OpenCV's masked
    formulas, each window sum a correlation (float64).

    With weights m (pair weights g = m**2, as OpenCV) and the image's
    validity v (1, or 0 where a pixel is NaN), per channel:
    ``A = v*m`` (``*``: valid correlation), ``A2 = v*g``, ``Im = x*m``,
    ``Ig = x*g``, ``Iq = x**2 * g``, ``X = x*(g t)``, ``Tg = v*(g t)``,
    ``Tq = v*(g t**2)``, ``Tm = v*(m t)`` (x zero where missing), from
    which

    * ccoeff: ``X - tbar Ig - xbar Tg + tbar xbar A2``, with the weighted
      means ``tbar = Tm / A``, ``xbar = Im / A``; normed by
      ``sqrt((Iq - 2 xbar Ig + xbar**2 A2) (Tq - 2 tbar Tg + tbar**2 A2))``;
    * ccorr: ``X``, normed by ``sqrt(Iq Tq)``;
    * sqdiff: ``Iq - 2 X + Tq``, normed by ``sqrt(Iq Tq)``;

    summed over channels. Without missing pixels the template's sums are
    constants. The image is centred by its level first; ccoeff does not
    change, and ccorr / sqdiff are formed from the centred sums with the
    template shifted by the same level.
    """
    T, h, w, C = p.templates.shape
    H, W = x.shape[:2]
    Ho, Wo = H - h + 1, W - w + 1
    shape = (Ho, Wo)
    nt = p.num_threads
    f8 = np.dtype(np.float64)
    code = p.method
    weights = p.weights if p.weights is not None else np.ones_like(p.templates)
    valid = None if missing is None else (~missing).astype(np.float64)
    # Image planes: centred by their level, zero where missing; their squares.
    planes, levels = [], []
    for c in range(C):
        plane = x[:, :, c]
        good = plane if missing is None else plane[~missing]
        level = float(np.mean(good, dtype=np.float64)) if good.size else 0.0
        pc = np.subtract(plane, level, dtype=np.float64)
        if missing is not None:
            pc[missing] = 0.0
        planes.append(np.ascontiguousarray(pc))
        levels.append(level)
    squares = [pc * pc for pc in planes]

    def vcorr(k):
        """v * k: a correlation with missing pixels, else the constant sum(k)."""
        if valid is None:
            return np.float64(k.sum())
        return _correlate(valid, k, shape, f8, nt)

    out = np.empty((T, Ho, Wo), p.dtype)
    for t in range(T):
        tpl, m = p.templates[t], weights[t]
        g = m * m
        num = np.zeros(shape)
        dI = np.zeros(shape)
        dT = np.zeros(shape) if code in (CCOEFF_NORMED, SQDIFF_NORMED, CCORR_NORMED) else None
        magI = np.zeros(shape)
        magT = np.zeros(shape)
        At = 0.0
        for c in range(C):
            mc, gc, tc = m[:, :, c], g[:, :, c], tpl[:, :, c]
            binary = bool(np.all((mc == 0) | (mc == 1)))
            I = planes[c]
            Iq = _correlate(squares[c], gc, shape, f8, nt)
            Ig = _correlate(I, gc, shape, f8, nt)
            A2 = vcorr(gc)
            A = A2 if binary else vcorr(mc)
            At = At + A
            if code in (CCOEFF, CCOEFF_NORMED):
                msum = mc.sum()
                for _ in range(2):  # centred template (a second pass corrects the first mean's rounding)
                    tc = tc - ((mc * tc).sum() / msum if msum > 0 else 0.0)
                Im = Ig if binary else _correlate(I, mc, shape, f8, nt)
                Tg = vcorr(gc * tc)
                Tm = Tg if binary else vcorr(mc * tc)
                with np.errstate(divide="ignore", invalid="ignore"):
                    tbar = np.where(A > 0, Tm / A, 0.0)
                    xbar = np.where(A > 0, Im / A, 0.0)
                X = _correlate(I, gc * tc, shape, f8, nt)
                num += X - tbar * Ig - xbar * Tg + tbar * xbar * A2
                dI += Iq - 2 * xbar * Ig + xbar * xbar * A2
                magI += Iq
                if dT is not None:
                    Tq = vcorr(gc * tc * tc)
                    dT += Tq - 2 * tbar * Tg + tbar * tbar * A2
                    magT += Tq
            else:
                lev = levels[c]
                sumI2 = Iq + 2 * lev * Ig + lev * lev * A2           # sum g v x**2, x uncentred
                Tq = vcorr(gc * tc * tc)
                if code in (CCORR, CCORR_NORMED):
                    num += _correlate(I, gc * tc, shape, f8, nt) + lev * vcorr(gc * tc)
                else:
                    tl = tc - lev                                    # the template at the image's level
                    num += Iq - 2 * _correlate(I, gc * tl, shape, f8, nt) + vcorr(gc * tl * tl)
                dI += sumI2
                magI += Iq + lev * lev * A2 + 2 * np.abs(lev * Ig)
                if dT is not None:
                    dT += Tq
                    magT += Tq
        res = _combine(code, num, dI, dT, magI, magT)
        if missing is not None:
            full = float(weights[t].sum())
            with np.errstate(invalid="ignore"):
                short = (At <= 0) | (At < p.overlap_ratio * full)
            res[short] = np.nan
        out[t] = res
    return out


def _combine(code, num, dI, dT, magI, magT):
    """Scores from the weighted path's numerators and denominators (float64)."""
    if code in (CCOEFF, CCORR):
        return num
    if code == SQDIFF:
        return np.maximum(num, 0.0)
    dI = np.where(dI > FLAT_TOL * magI, dI, 0.0)
    dT = np.where(dT > FLAT_TOL * magT, dT, 0.0)
    den = dI * dT
    good = den > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(good, num / np.sqrt(np.where(good, den, 1.0)), 0.0)
    if code == SQDIFF_NORMED:
        return np.where(good, np.clip(r, 0.0, 1.0), 1.0)
    return np.clip(r, -1.0, 1.0)
