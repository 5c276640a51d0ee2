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

One channel and one template from ``TILED_MIN_TAPS`` values (or where the
dispatcher would pick its FFT) take :func:`_tiled` instead: the valid
correlation by overlap-save tiles of real transforms (ducc0 when installed,
into preallocated buffers; the tiling from ``tile_plan``, a cost model
fitted to measured times), each tile's scores formed from its correlations
while they are in cache (``window.finish_block``), so the correlation is
never written out whole nor read back. float32 tiles of a power-of-two
height transform their columns with ``fft_kernels.column_fft`` (vectorised
across the columns, spectra left in bit-reversed order: ``COLUMN_FFT``),
the rows with ducc0.

One channel and one template (not 'ccoeff') do not read the image for NaN
and inf first (``DEFER_FINITE``): the tiled path's window sums meet them if
there are any, and the call then starts again the checked way. A one-tile
work item at the image's last row or column of tiles moves its tile back to
end on the edge (``SHIFT_EDGE_TILES``) instead of copying the image into a
zero-padded buffer.

An image whose level is large against its spread (values 1e4 + noise) is
centred first, by its level: the zero-mean template's correlation with it
is unchanged in exact arithmetic, and in floating point it no longer carries
rounding errors of the offset's size.

Template masks and missing image pixels (NaN) take the *weighted* path:
OpenCV's masked formulas, every window sum a correlation with the weights
(and, with missing pixels, with the validity of the image: Padfield's
masked normalised cross-correlation), in float64.
"""
import functools
import math
import threading

import numpy as np

from . import dispatch
from ..methods import _fftlib
from ..methods import fft as _fft
from ..methods._memo import KernelCache
from ..methods._pool import GrowingPool

try:
    from ..methods import window
except ImportError:  # an uncompiled tree
    window = None
try:
    from ..methods import fft_kernels
except ImportError:  # an uncompiled tree
    fft_kernels = None

__all__ = ["match_template", "level_and_spread", "CENTRE_RATIO"]

SQDIFF, SQDIFF_NORMED, CCORR, CCORR_NORMED, CCOEFF, CCOEFF_NORMED = range(6)

#: An image channel is centred by its level before correlating when the
#: level is more than this many spreads (standard deviations) from zero.
CENTRE_RATIO = 2.0
#: Samples (about) from which a channel's level and spread are estimated
#: (2**16 took 0.65 ms on a 640x480 image, a third of a 256² template's
#: whole match on one thread; 2**14 0.06-0.1 ms, still 4% of it). The level
#: only has to lie within a few spreads of the image's values, and the
#: decision to centre is against two spreads: 2**12 samples judge both.
SAMPLE = 1 << 12
#: The template's constants and the image's level and spread by compiled
#: loops (``window.template_constants``, ``window.level_and_spread``): ~50
#: us of numpy calls a call on one template, before any thread starts.
#: False: numpy (A/B).
COMPILED_CONSTANTS = True
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
    if (DEFER_FINITE and x.dtype.kind == "f" and p.weights is None and C == 1 and T == 1
            and p.method != CCOEFF):
        # One read of the image fewer: the tiled path's window sums tell
        # whether every pixel was finite (None: they were not, or the path
        # was not the tiled one and the image is not finite).
        with np.errstate(invalid="ignore", over="ignore"):
            out = _plain(x, p, deferred=True)
        if out is not None:
            return out if p.stacked else out[0]
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
    if COMPILED_CONSTANTS and window is not None and plane.dtype in (np.float32, np.float64):
        return window.level_and_spread(plane, step)
    sample = np.asarray(plane[::step, ::step], dtype=np.float64).ravel()
    level = sample.mean()
    d = sample - level
    return float(level), float(np.sqrt(np.einsum("i,i->", d, d) / d.size))


def _template_constants(templates):
    """Per template: channel means (T, C), the zero-mean templates, their
    centred sum of squares (exactly 0 for a flat template) and raw sum of squares."""
    if COMPILED_CONSTANTS and window is not None and templates.dtype == np.float64 \
            and templates.flags.c_contiguous and templates.ndim == 4:
        return window.template_constants(templates)
    tmean = templates.mean(axis=(1, 2))
    tz = templates - tmean[:, None, None, :]
    # Second pass: the mean of the centred values corrects the first mean's
    # rounding (ulp of the level: on 1e6 + noise it would leave the
    # zero-mean template a constant of 1e-10, which the correlation with
    # the image's level turns into errors of 1e-8).
    fix = tz.mean(axis=(1, 2))
    tmean += fix
    tz -= fix[:, None, None, :]
    flat = templates.max(axis=(1, 2)) == templates.min(axis=(1, 2))   # (T, C): a constant channel
    if flat.any():
        tz[np.broadcast_to(flat[:, None, None, :], tz.shape)] = 0.0
    T = templates.shape[0]
    a, b = tz.reshape(T, -1), templates.reshape(T, -1)
    tvar = np.einsum("ti,ti->t", a, a)
    tsq = np.einsum("ti,ti->t", b, b)
    return np.ascontiguousarray(tmean), tz, tvar, tsq


def _correlate(a, k, shape, dtype, nthreads, method="auto"):
    """Valid correlation of a 2-D plane with a kernel, on ``method`` (default: the one 'auto' picks)."""
    return dispatch.correlate_offset(a, np.ascontiguousarray(k, dtype=dtype), shape, (0, 0), 0, 0.0, dtype,
                                     method, nthreads)


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


def _plain(x, p, deferred=False):
    """No mask, no missing pixel: correlations with the zero-mean templates,
    then ``methods.window.scores`` in place.

    ``deferred``: the image was not checked for NaN and inf yet; returns
    None where it holds any (found by the tiled path's window sums, or by
    a check before any other path)."""
    T, h, w, C = p.templates.shape
    H, W = x.shape[:2]
    Ho, Wo = H - h + 1, W - w + 1
    dtype = x.dtype
    nt = p.num_threads
    tmean, tz, tvar, tsq = _template_constants(p.templates)
    planes = _planes(x, dtype, centre=False)
    num = None
    chosen = "auto"
    if C == 1:
        tiled, chosen = _use_tiled(h, w, H, W, planes[0], np.ascontiguousarray(tz[0, :, :, 0], dtype=dtype), nt)
        if tiled:
            out, finite = _tiled(x.reshape(H, W), planes[0], tz[..., 0], tmean[:, 0], tvar, tsq, p.method, nt)
            return out if finite or not deferred else None
    if deferred and not dispatch._finite(x):
        return None
    if T == 1 and C == 1:
        num = _correlate(planes[0], tz[0, :, :, 0], (Ho, Wo), dtype, nt, chosen)[None]
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


def _use_tiled(h, w, H, W, plane=None, tz=None, nthreads=1):
    """``(tiled, method)``: whether one channel takes :func:`_tiled` (from
    ``TILED_MIN_TAPS`` template values, a measured rule, or below that where
    the dispatcher's ``choose_offset_method`` picks its FFT), and the
    dispatcher's method when it was asked ('auto' when not)."""
    if window is None or (H - h + 1) * (W - w + 1) < TILED_MIN_OUTPUTS:
        return False, "auto"
    if h * w >= TILED_MIN_TAPS:
        return True, "auto"
    if plane is None:
        return False, "auto"
    chosen = dispatch.choose_offset_method(plane, tz, (H - h + 1, W - w + 1), 0, plane.dtype, nthreads)
    return chosen == "fft", chosen


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


# --- Tiled FFT correlation fused with the scores (one channel, one template) ---------------------------

#: Template sizes (kh * kw) from which one channel and one template take the
#: tiled FFT path (:func:`_tiled`) instead of the dispatcher's method (below
#: it, the tiled path serves only where the dispatcher would pick its FFT).
#: Measured here, float32, one thread, CPU ms, the dispatcher's direct
#: correlation + ``window.scores`` against the tiled path: 1024², 8² 5.5 /
#: 8.4, 10² 6.9 / 8.6, 12² 7.9 / 8.4, 14² 9.2 / 8.3, 16² 13.4 / 9.0;
#: 640x480, 12² 2.4 / 2.7, 14² 2.8 / 2.5.
TILED_MIN_TAPS = 160
#: Outputs below which the tiled path is not worth its per-call set-up (a
#: kernel spectrum, Python per tile): the dispatcher's methods serve.
TILED_MIN_OUTPUTS = 1 << 14
#: Cost of one tile in the planner's units (``N log2 N`` of a transform):
#: the Python and library calls of a tile, the window statistics' restart.
#: TILE_UNITS and CACHE_ELEMS were fitted (least regret, one thread, one
#: noisy machine) to the times of every plan on 640x480, 1024² and 2048²
#: float32 images with 16²-256² templates; the plans' times were flat near
#: the optimum (within 10%). Large transforms (1024² and beyond) ran slower
#: per value than ``N log N`` says: a factor ``1 + CACHE_PENALTY * log2(N /
#: CACHE_ELEMS)`` beyond ``CACHE_ELEMS``, set by hand from 4096² images
#: (1000² tiles 230 ms, 1296² 250, the whole 4096² transform 280-340,
#: 2048² tiles 440-480).
TILE_UNITS = 3e4
CACHE_ELEMS = 400_000
CACHE_PENALTY = 0.15
#: Rows of a power-of-two length from 1024 on (the transforms' contiguous
#: axis): cache-set conflicts. 1024² image, 256² template: tiles of
#: 1024x720 10.6 ms, the whole 1024x1024 13.6; 4096²: 1000² tiles 230-280,
#: 4096² 280-340 (rows of 1024 as columns, 1024x576, were the fastest).
POW2_PENALTY = 1.3
#: A stack of templates under 'ccoeff_normed' on the tiled path computes
#: each block's window statistics once (``window.window_rstd``) and scores
#: every template from them (``window.apply_rstd``); False: once per
#: template (``window.finish_block``), for benchmarks. 16 templates of 32²
#: on a 1024² float32 image, one thread: 74 against 127 ms.
SHARE_STACK_STATISTICS = True
#: One channel, one template, a method other than 'ccoeff': the image is
#: not read first to look for NaN and inf (0.08 ms on 640x480 float32,
#: 0.28 on 1024², 4.3 on 4096², on one thread before the work started); the
#: tiled path's window sums find them (``window.finish_block`` returns
#: False), and the call starts again the old way. False: the check first (A/B).
DEFER_FINITE = True
#: A tile of a one-tile work item that would reach past the image's last
#: row or column (the tiling's last) starts earlier instead, so that it ends
#: on the image's edge: no copy of the image into a zero-padded buffer (a
#: whole tile: 1.2 MB for 1024x288) and no zeros; it scores only the
#: outputs past the tile before it. False: the padded copy (A/B).
SHIFT_EDGE_TILES = True
#: Spectra one work item of tiles holds (bytes): a core's cache.
ITEM_BYTES = 1 << 20
#: float32 tiles of a power-of-two height transform their columns with
#: ``fft_kernels.column_fft`` (vectorised across the columns, the spectra
#: left in bit-reversed order down the columns) instead of ducc0's column
#: pass, which gathers the columns into buffers with scalar moves: one
#: thread, 145 columns of 1024 rows 0.13 against 0.30 ms, 271 of 256 0.05
#: against 0.13 (the rows stay with ducc0). False: ducc0 for both axes (A/B).
COLUMN_FFT = True
#: The planner's cost of a tile with the column pass of ``COLUMN_FFT``
#: against one transformed by ducc0 alone (the columns about half of a 2-D
#: transform's time, 2-2.5 times faster).
COLUMN_FFT_COST = 0.75

_tile_pool = GrowingPool("fastcorr-match")


def _axis_lengths(out_len, k, pow2=False):
    """Transform lengths worth trying along one axis: fast lengths from about
    2k up to the one that holds the whole axis (a single tile); ``pow2``:
    the powers of two over that range as well (``COLUMN_FFT``'s lengths)."""
    if pow2:
        found = set(_axis_lengths(out_len, k))
        n = 64
        while n < 2 * (out_len + k - 1):
            if n >= k + 1:
                found.add(n)
            if n >= out_len + k - 1:
                break
            n *= 2
        return sorted(found)
    whole = _fftlib.next_fast_len(out_len + k - 1, real=True)
    n = _fftlib.next_fast_len(max(2 * k, 64), real=True)
    found = []
    while n < whole:
        if n < 2048 or n & (n - 1):  # a power of two from 2048 on: cache-set conflicts (2048² tiles: 1.6x 1296²)
            found.append(n)
        n = _fftlib.next_fast_len(int(n * 1.15) + 1, real=True)
    found.append(whole)
    if whole >= 1024 and not whole & (whole - 1):
        # a whole axis of a power-of-two length: one tile a little longer
        # than the axis (zeros past the image) avoids the cache-set conflicts
        # of POW2_PENALTY (1024² image, 256² template, one thread: one tile
        # of 1024x1080 8.8 ms, of 1024x1024 11.5, three of 1024x512 12.1-13)
        found.append(_fftlib.next_fast_len(whole + 1, real=True))
    return found


@functools.lru_cache(maxsize=1024)
def _per_item(t1, N0, N1, citemsize):
    """Tiles of one row of tiles per work item: spectra of about ``ITEM_BYTES``."""
    return max(1, min(t1, ITEM_BYTES // (N0 * (N1 // 2 + 1) * citemsize)))


def tile_plan(Ho, Wo, kh, kw, nthreads=1, citemsize=8, colfft=False):
    """``(N0, N1, B0, B1)``: transform lengths and output block per tile,
    the cheapest by ``N log2 N`` per tile (charged more beyond the cache)
    plus a cost per tile; on several threads, by the rounds of work items
    the busiest thread runs (fewer items than threads: the transforms split
    over the threads, charged ``INNER_PENALTY``). ``colfft``: heights of a
    power of two take ``COLUMN_FFT``'s column pass, charged
    ``COLUMN_FFT_COST``."""
    return _tile_plan(int(Ho), int(Wo), int(kh), int(kw), max(1, int(nthreads)), int(citemsize), bool(colfft))


#: Cost factor of a work item whose transforms and scores are split over
#: the threads (fewer items than threads) against items run one a thread.
INNER_PENALTY = 1.3


@functools.lru_cache(maxsize=1024)
def _tile_plan(Ho, Wo, kh, kw, nthreads, citemsize, colfft=False):
    best = None
    for N0 in _axis_lengths(Ho, kh, colfft):
        B0 = min(Ho, N0 - kh + 1)
        t0 = -(-Ho // B0)
        for N1 in _axis_lengths(Wo, kw):
            B1 = min(Wo, N1 - kw + 1)
            t1 = -(-Wo // B1)
            e = N0 * N1
            unit = e * math.log2(e) * (1.0 + CACHE_PENALTY * max(0.0, math.log2(e / CACHE_ELEMS)))
            if N1 >= 1024 and not N1 & (N1 - 1):
                unit *= POW2_PENALTY
            items = t0 * -(-t1 // _per_item(t1, N0, N1, citemsize))
            if colfft and _colfft_height(N0) and items >= nthreads:
                unit *= COLUMN_FFT_COST
            cost = t0 * t1 * (unit + TILE_UNITS)
            if nthreads > 1:
                if items < nthreads:
                    cost *= INNER_PENALTY / nthreads
                else:  # the busiest thread's rounds of (up to g-tile) items
                    cost = cost * -(-items // nthreads) / items
            if best is None or cost < best[0]:
                best = (cost, (N0, N1, B0, B1))
    return best[1]


def _tiled_spectrum(tz, N0, N1, cdtype, colfft=False):
    """``conj(rfft2(tz, (N0, N1))) / (N0 N1)``: the product with a tile's
    spectrum transforms back (unnormalised) to the valid correlation at the
    tile's top-left corner. The template's rows first (kh of them), then
    the columns; cached by the template's bytes. ``colfft``: the columns by
    ``fft_kernels.column_fft`` (complex64, rows in bit-reversed order, as
    the tiles' spectra of ``COLUMN_FFT``)."""
    dtype = np.float32 if cdtype == np.complex64 else np.float64
    tz = np.ascontiguousarray(tz, dtype=dtype)
    key = (tz.shape, tz.dtype.str, N0, N1, bool(colfft), tz.tobytes()) if tz.size <= 1 << 16 else None
    if key is not None:
        hit = _spectra.get(key)
        if hit is not None:
            return hit
    if colfft:
        rows = _fftlib.rfft(tz * dtype(1.0 / (N0 * N1)), n=N1, axis=1)
        K = np.zeros((1, N0, N1 // 2 + 1), np.complex64)
        K[0, :rows.shape[0]] = rows
        fft_kernels.column_fft(K, _column_twiddles(N0), False)
        K = K[0]
    else:
        K = _fftlib.fft(_fftlib.rfft(tz * dtype(1.0 / (N0 * N1)), n=N1, axis=1), n=N0, axis=0, overwrite_x=True)
    np.conjugate(K, out=K)
    K.flags.writeable = False
    if key is not None:
        _spectra.put(key, K, K.nbytes)
    return K


_spectra = KernelCache(max_entries=64, max_bytes=64 << 20)


def _colfft_height(N0):
    """Whether tiles of height N0 can take ``COLUMN_FFT``: a power of two from 2 on."""
    return N0 >= 2 and not N0 & (N0 - 1)


@functools.lru_cache(maxsize=16)
def _column_twiddles(N0):
    """``fft_kernels.column_twiddles(N0)``, read-only, kept."""
    tw = fft_kernels.column_twiddles(N0)
    tw.flags.writeable = False
    return tw


_local = threading.local()


class _Buffers:
    """A thread's work arrays for :func:`_tiled`, kept across calls (one set
    per thread, for the last tile shape: a few MB): fresh arrays of a few
    MB each call came from the system each time and were faulted in again
    (640x480 image, 64² template: 3.4 against 1.9 ms of work)."""

    def __new__(cls, key):
        have = getattr(_local, "buffers", None)
        if have is not None and have.key == key:
            return have
        self = super().__new__(cls)
        self.key = key
        self.arrays = {}
        _local.buffers = self
        return self

    def __getitem__(self, name):
        a = self.arrays.get(name)
        if a is None:
            N0, N1, per_item, B1, dtype, _, _, _ = self.key
            cdtype = np.complex64 if np.dtype(dtype) == np.float32 else np.complex128
            F = N1 // 2 + 1
            shapes = {"pad": ((N0, (per_item - 1) * B1 + N1), dtype), "spec": ((per_item, N0, F), cdtype),
                      "prod": ((per_item, N0, F), cdtype), "res": ((per_item, N0, N1), dtype),
                      "rstd": ((min(N0, self.key[7]) * per_item * B1,), dtype)}
            shape, dt = shapes[name]
            a = self.arrays[name] = np.empty(shape, dt)
        return a


def _with_errstate(err, f, *args):
    """``f(*args)`` under numpy's error settings ``err`` (a pool thread
    does not share its caller's)."""
    with np.errstate(**err):
        return f(*args)


def _tiled(x, plane, tz, tmean, tvar, tsq, method, nthreads):
    """``(scores, finite)``: scores (T, Ho, Wo) of one channel and T
    templates, and False where the window sums of ``window.finish_block``
    met a NaN or inf of the image (the shared statistics of a stack do not
    look: True). The valid
    correlation of ``plane`` (the image, perhaps centred) with each of
    ``tz`` (T, kh, kw; zero-mean) by overlap-save tiles of real
    transforms, each tile's scores formed from its correlations while they
    are in cache (``window.finish_block``, which reads the image ``x`` for
    the window statistics). A stack shares each tile's forward transform.

    A stack under 'ccoeff_normed' takes each item's window statistics once
    (``window.window_rstd``: ``1 / sqrt`` of the windows' centred sums of
    squares) and scores every template from them (``window.apply_rstd``),
    in a per-thread buffer of one item's outputs.

    Work items (a few tiles of one row of tiles) run on the call's threads,
    each with its own buffers; with fewer items than threads, the
    transforms and the scores of each item are split over the threads
    instead.
    """
    H, W = x.shape
    T, kh, kw = tz.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    dtype = x.dtype
    cdtype = np.complex64 if dtype == np.float32 else np.complex128
    ducc = _fftlib._ducc if _fftlib.library() == "ducc0" else None
    colfft = COLUMN_FFT and fft_kernels is not None and ducc is not None and cdtype == np.complex64
    N0, N1, B0, B1 = tile_plan(Ho, Wo, kh, kw, nthreads, np.dtype(cdtype).itemsize, colfft)
    t0, t1 = -(-Ho // B0), -(-Wo // B1)
    per_item = _per_item(t1, N0, N1, np.dtype(cdtype).itemsize)
    items = [(i, j, min(t1, j + per_item)) for i in range(t0) for j in range(0, t1, per_item)]
    # Fewer items than threads split each transform over the threads: ducc0's
    # own threads for the rows, the pool's for the columns, handing over four
    # times a template, cost more than the column pass saves (640x480, one
    # tile of 512x640 for a 256² template, 2 threads: 1.4x the time of ducc0
    # on both axes; one thread: 0.81x)
    colfft = colfft and _colfft_height(N0) and len(items) >= nthreads
    tw = _column_twiddles(N0) if colfft else None
    F = N1 // 2 + 1
    Ks = [_tiled_spectrum(tz[t], N0, N1, cdtype, colfft) for t in range(T)]
    out = np.empty((T, Ho, Wo), dtype)
    inner = nthreads if len(items) < nthreads else 1
    s1 = plane.strides[1]

    def columns(a, inverse):
        """``fft_kernels.column_fft`` on (g, N0, F) in place; on ``inner``
        threads, each a share of the columns."""
        if inner > 1:
            edges = [F * q // inner for q in range(inner + 1)]
            fut = [_tile_pool.executor(inner - 1).submit(fft_kernels.column_fft, a, tw, inverse, edges[q],
                                                         edges[q + 1]) for q in range(1, inner)]
            fft_kernels.column_fft(a, tw, inverse, edges[0], edges[1])
            for f in fut:
                f.result()
        else:
            fft_kernels.column_fft(a, tw, inverse)

    def origin(item):
        """``(r0, c0, dr, dc)``: where an item's tiles start in the image,
        and by how much a tile of one item is moved back (up, left) from
        its place in the tiling so that it ends on the image's edge instead
        of past it (``SHIFT_EDGE_TILES``): no copy into a zero-padded buffer.
        Its first dr rows and dc columns of outputs are another tile's."""
        i, j0, j1 = item
        r0, c0 = i * B0, j0 * B1
        dr = dc = 0
        if SHIFT_EDGE_TILES and j1 - j0 == 1 and not shared:
            if r0 + N0 > H >= N0:
                dr = r0 - (H - N0)
            if c0 + N1 > W >= N1:
                dc = c0 - (W - N1)
        return r0 - dr, c0 - dc, dr, dc

    def forward(item, bufs):
        """The spectra of an item's tiles, (g, N0, F)."""
        i, j0, j1 = item
        g = j1 - j0
        r0, c0 = origin(item)[:2]
        cols = (g - 1) * B1 + N1
        if r0 + N0 <= H and c0 + cols <= W:
            src = plane[r0:r0 + N0, c0:c0 + cols]
        else:  # past the image: zeros
            src = bufs["pad"][:, :cols]
            rr, cc = min(N0, H - r0), min(cols, W - c0)
            src[:rr, :cc] = plane[r0:r0 + rr, c0:c0 + cc]
            src[rr:] = 0
            src[:rr, cc:] = 0
        if g == 1:  # one tile: a plain view (as_strided costs ~10 us of Python a call)
            tiles = src[None]
        else:
            tiles = np.lib.stride_tricks.as_strided(src, shape=(g, N0, N1), strides=(B1 * s1, src.strides[0], s1),
                                                    writeable=False)
        if ducc is not None:
            spec = bufs["spec"][:g]
            if colfft:  # the rows by ducc0, the columns vectorised across them
                ducc.r2c(tiles, axes=(2,), forward=True, out=spec, nthreads=inner)
                columns(spec, False)
            else:
                ducc.r2c(tiles, axes=(1, 2), forward=True, out=spec, nthreads=inner)
            return spec
        return _fftlib.rfft2(tiles, s=(N0, N1), axes=(1, 2), workers=inner)

    def backward(spec, t, bufs):
        """The correlations with template t: (g, N0, N1) real, valid part at [:, :B0, :B1]."""
        g = spec.shape[0]
        last = t == T - 1
        if ducc is not None:
            prod = spec if last else bufs["prod"][:g]
            if inner > 1:  # one item for all the threads: the product split by rows too
                edges = [N0 * q // inner for q in range(inner + 1)]
                mul = lambda a, b: np.multiply(spec[:, a:b], Ks[t][a:b], out=prod[:, a:b])  # noqa: E731
                fut = [_tile_pool.executor(inner - 1).submit(_with_errstate, err, mul, edges[q], edges[q + 1])
                       for q in range(1, inner)]
                mul(edges[0], edges[1])
                for f in fut:
                    f.result()
            else:
                np.multiply(spec, Ks[t], out=prod)
            res = bufs["res"][:g, :B0]
            # the columns, then the rows only for the B0 output rows (256² on
            # 640x480: 225 of 480)
            if colfft:
                columns(prod, True)
            else:
                ducc.c2c(prod, axes=(1,), forward=False, inorm=0, out=prod, nthreads=inner)
            ducc.c2r(prod[:, :B0], axes=(2,), lastsize=N1, forward=False, inorm=0, out=res, nthreads=inner,
                     allow_overwriting_input=True)
            return res
        prod = spec * Ks[t]
        return _fftlib.irfft2(prod, s=(N0, N1), axes=(1, 2), workers=inner, overwrite_x=True) * (N0 * N1)

    def buffers():
        return _Buffers((N0, N1, per_item, B1, np.dtype(dtype).str, ducc is not None, T > 1, B0))

    # A stack under 'ccoeff_normed': each block's window statistics once
    # (1/sqrt of the windows' centred sums of squares), not once per template.
    shared = T > 1 and method == CCOEFF_NORMED and SHARE_STACK_STATISTICS
    if shared:
        with np.errstate(divide="ignore"):
            rs = np.where(tvar > 0, 1.0 / np.sqrt(tvar), 0.0)
        # float32 scores from a float32 1/sqrt(tvar): where it leaves float's
        # comfortable range, that template is scored as a single one is
        rs_ok = (rs == 0) | ((rs > 1e-30) & (rs < 1e30)) if dtype == np.float32 else np.ones(T, bool)

    def prepare(item, a, b, bufs):
        """The windows' 1/sqrt(V) for rows a..b of an item's block (None: out of float range)."""
        i, j0, j1 = item
        rows = min(B0, Ho - i * B0)
        a, b = min(a, rows), min(b, rows)
        ncols = min(Wo - j0 * B1, (j1 - j0) * B1)
        r = bufs["rstd"][a * ncols:b * ncols].reshape(b - a, ncols)
        if b > a and not window.window_rstd(x, kh, kw, r, i * B0 + a, j0 * B1):
            return None
        return r

    def finish(item, t, res, a, b, r=None):
        i, j0, _ = item
        rows = min(B0, Ho - i * B0)
        a, b = min(a, rows), min(b, rows)
        if b <= a:
            return
        _, _, dr, dc = origin(item)
        if r is not None and rs_ok[t]:
            window.apply_rstd(res[:, a:b, :], out[t], r, i * B0 + a, j0 * B1, B1, float(rs[t]))
        elif dr or dc:  # a tile moved back: its outputs from (dr, dc) on are this item's
            if not window.finish_block(x, kh, kw, res[:, dr + a:dr + b, dc:], out[t], i * B0 + a, j0 * B1,
                                       Wo - j0 * B1 if dc else B1, float(tmean[t]), float(tvar[t]), float(tsq[t]),
                                       method):
                nonfinite.append(item)
        elif not window.finish_block(x, kh, kw, res[:, a:b, :], out[t], i * B0 + a, j0 * B1, B1, float(tmean[t]),
                                     float(tvar[t]), float(tsq[t]), method):
            nonfinite.append(item)

    nonfinite = []  # items whose window sums met a NaN or inf (list.append: thread-safe)
    err = np.geterr()

    if inner > 1:
        bufs = buffers()
        pool = _tile_pool.executor(nthreads - 1)
        for item in items:
            rows = min(B0, Ho - item[0] * B0)
            edges = [rows * q // nthreads for q in range(nthreads + 1)]
            rparts = [None] * nthreads
            if shared:
                fut = [pool.submit(prepare, item, edges[q], edges[q + 1], bufs) for q in range(1, nthreads)]
                rparts[0] = prepare(item, edges[0], edges[1], bufs)
                rparts[1:] = [f.result() for f in fut]
            spec = forward(item, bufs)
            for t in range(T):
                res = backward(spec, t, bufs)
                fut = [pool.submit(finish, item, t, res, edges[q], edges[q + 1], rparts[q])
                       for q in range(1, nthreads)]
                finish(item, t, res, edges[0], edges[1], rparts[0])
                for f in fut:
                    f.result()
        return out, not nonfinite

    todo = iter(items)

    def worker():
        with np.errstate(**err):  # the caller's, on the pool's threads too
            _work()

    def _work():
        bufs = None
        for item in todo:
            if bufs is None:
                bufs = buffers()
            r = prepare(item, 0, B0, bufs) if shared else None
            spec = forward(item, bufs)
            for t in range(T):
                finish(item, t, backward(spec, t, bufs), 0, B0, r)

    nt = min(nthreads, len(items))
    if nt <= 1:
        worker()
    else:
        pool = _tile_pool.executor(nt - 1)
        fut = [pool.submit(worker) for _ in range(nt - 1)]
        worker()
        for f in fut:
            f.result()
    return out, not nonfinite
