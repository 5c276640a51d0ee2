"""Particle image velocimetry: every interrogation window of a frame pair, one batch.

The engine of :func:`fastcorr.piv` (OpenPIV's ``extended_search_area_piv``
semantics). The vector field is cut into bands of windows; each band is one
batched computation (its windows as a strided view of the frames, real FFTs
over the stack, the cross spectrum, the inverse, then the peaks, the
sub-pixel fit and the signal-to-noise ratio of every window at once in
numpy), and the bands run on fastcorr's threads, each in a bounded
workspace (:data:`BAND_BYTES`).

Two details make the batch cheaper than the textbook one:

* the shift that puts zero displacement at the map's centre (OpenPIV's
  ``fftshift``) is a phase ramp folded into the cross spectrum, with the
  ``1 / area`` scale of ``normalized_correlation``, so the inverse transform
  writes the map where it is read;
* the 'linear' (zero-padded) correlation needs only the displacements
  ``-(n // 2) .. n - 1 - n // 2`` of an ``n``-long window, which a circular
  correlation of length ``n + n // 2`` holds without wrap-around: 48 for
  32-px windows, 96 for 64 (OpenPIV pads to the power of two above
  ``2n - 1``: 64 and 128).
"""
from __future__ import annotations

import math

import numpy as np

from ..methods.fft import _run_parallel

__all__ = ["piv_field", "piv_coordinates", "BAND_BYTES"]

#: Workspace of one band of windows (frames' windows, two spectra, the maps).
BAND_BYTES = 16 << 20
#: OpenPIV adds this to a map whose peak is inside it before its sub-pixel
#: fit (against log(0)); the signal-to-noise ratio is taken after it.
_EPS = 1e-7


def piv_coordinates(shape, search, overlap, field):
    """Window centres as OpenPIV's ``get_coordinates`` (centred on the frame)."""
    axes = []
    for n, s, o, m in zip(shape, search, overlap, field):
        step = s - o
        c = np.arange(m) * step + s / 2.0
        c += (n - 1 - ((m - 1) * step + (s - 1))) // 2
        axes.append(c)
    x, y = np.meshgrid(axes[1], axes[0])
    return x, y


def _plan_lengths(p):
    """Lengths of the forward and inverse transforms per axis, and the map's shape.

    'circular': the search area's own size. OpenPIV inverts its real FFT
    without giving the length, which for an odd number of columns ``n``
    gives a map of ``n - 1`` columns (the default inverse length of
    ``n // 2 + 1`` bins); that is what it finds its peak in, so it is what
    is computed here too. 'linear': the shortest fast length without
    wrap-around over the displacements kept.
    """
    import scipy.fft

    s0, s1 = p.search
    if p.correlation_method == "circular":
        m1 = s1 - s1 % 2
        return (s0, s1), (s0, m1), (s0, m1)
    lengths = (scipy.fft.next_fast_len(s0 + s0 // 2, real=False),
               scipy.fft.next_fast_len(s1 + s1 // 2, real=True))
    return lengths, lengths, (s0, s1)


def _phase(p, inverse, shape, cdt):
    """exp(-2 pi i k . c / L) over the inverse transform's bins (times 1 / area
    of the map if normalized): applied to the cross spectrum, it moves zero
    displacement to ``c = (m0 // 2, m1 // 2)`` of the map's shape."""
    rows = []
    for L, m, k in ((inverse[0], shape[0], np.arange(inverse[0])),
                    (inverse[1], shape[1], np.arange(inverse[1] // 2 + 1))):
        c = m // 2
        if 2 * c == L:  # the circular even case: exactly +-1
            r = np.where(k % 2 == 0, 1.0, -1.0).astype(complex)
        else:
            r = np.exp(-2j * np.pi * ((k * c) % L) / L)
        rows.append(r)
    ph = rows[0][:, None] * rows[1][None, :]
    if p.normalized_correlation:
        ph = ph / (shape[0] * shape[1])
    return ph.astype(cdt)


def _normalize(w):
    """OpenPIV's normalize_intensity, in place on a stack (..., r, c): zero mean,
    unit (population) standard deviation; constant windows become zeros."""
    mean = w.mean(axis=(-2, -1), keepdims=True, dtype=np.float64)
    w -= mean.astype(w.dtype)
    var = np.einsum("...ij,...ij->...", w, w, dtype=np.float64) / (w.shape[-2] * w.shape[-1])
    std = np.sqrt(var)[..., None, None].astype(w.dtype)
    np.divide(w, std, out=w, where=std != 0)
    w[np.broadcast_to(std == 0, w.shape)] = 0
    return w


def _windows(frame, r0, r1, nc, search, step, dtype, copy):
    """The windows of field rows r0..r1 (all nc columns) as (r1-r0, nc, s0, s1):
    a strided view of the frame, or a copy in ``dtype``."""
    rs, cs = frame.strides
    view = np.lib.stride_tricks.as_strided(
        frame[r0 * step[0]:], shape=(r1 - r0, nc) + tuple(search),
        strides=(step[0] * rs, step[1] * cs, rs, cs), writeable=False)
    if copy or view.dtype != dtype:
        return view.astype(dtype)  # a fresh C-contiguous stack
    return view


def piv_field(p):
    """u, v (pixels / dt) and the signal-to-noise ratio of every window: float64
    arrays of the field's shape."""
    import scipy.fft

    a = p.frame_a
    b = p.frame_b
    dtype = p.dtype
    cdt = np.dtype(np.complex64 if dtype == np.float32 else np.complex128)
    nr, nc = p.field
    s0, s1 = p.search
    step = (s0 - p.overlap[0], s1 - p.overlap[1])
    lengths, inverse, (m0, m1) = _plan_lengths(p)
    L0, L1 = lengths
    phase = _phase(p, inverse, (m0, m1), cdt)
    circular = p.correlation_method == "circular"
    extended = p.search != p.window
    normalize = extended or p.normalized_correlation
    if extended:
        pad0 = (s0 - p.window[0]) // 2
        pad1 = (s1 - p.window[1]) // 2

    n_win = nr * nc
    u = np.empty(n_win)
    v = np.empty(n_win)
    s2n = np.full(n_win, np.nan)

    # Windows per band: the workspace of one band within BAND_BYTES, and
    # enough bands to keep every thread busy.
    per_window = (3 * s0 * s1 * dtype.itemsize + 2 * L0 * (L1 // 2 + 1) * cdt.itemsize
                  + L0 * L1 * dtype.itemsize)
    rows = max(1, min(nr, BAND_BYTES // max(per_window * nc, 1)))
    if p.num_threads > 1:
        rows = max(1, min(rows, math.ceil(nr / (2 * p.num_threads))))
    bands = [(r, min(r + rows, nr)) for r in range(0, nr, rows)]
    nt = p.num_threads

    def band(r):
        r0, r1 = r
        wa = _windows(a, r0, r1, nc, p.search, step, dtype, copy=normalize)
        wb = _windows(b, r0, r1, nc, p.search, step, dtype, copy=normalize)
        if normalize:
            _normalize(wa)
            _normalize(wb)
            if extended:  # only the window's centre of frame A takes part
                wa[..., :pad0, :] = 0
                wa[..., s0 - pad0:, :] = 0
                wa[..., :, :pad1] = 0
                wa[..., :, s1 - pad1:] = 0
                if p.normalized_correlation:
                    _normalize(wa)
        fa = scipy.fft.rfft2(wa, s=lengths, axes=(-2, -1), workers=1)
        del wa
        fb = scipy.fft.rfft2(wb, s=lengths, axes=(-2, -1), workers=1)
        del wb
        np.conjugate(fa, out=fa)
        fa *= fb
        del fb
        fa *= phase
        mean = None
        if circular and p.sig2noise_method == "peak2mean":
            # The map's mean is its DC bin, sum(a) * sum(b) / size: zero
            # when frame B's areas are normalised (zero mean), where the
            # map's sum would be rounding noise alone (OpenPIV's ratio is
            # then its peak over the 1e-7 it adds to the map).
            if normalize:
                mean = np.zeros((r1 - r0) * nc)
            else:
                mean = fa[..., 0, 0].real.reshape(-1).astype(np.float64) / (m0 * m1)
        corr = scipy.fft.irfft2(fa, s=inverse, axes=(-2, -1), workers=1, overwrite_x=True)
        del fa
        if corr.shape[-2:] != (m0, m1):
            corr = np.ascontiguousarray(corr[..., :m0, :m1])
        lo, hi = r0 * nc, r1 * nc
        ub, vb, sb = _peaks(corr.reshape(-1, m0 * m1), (m0, m1), p, mean)
        u[lo:hi] = ub
        v[lo:hi] = vb
        if sb is not None:
            s2n[lo:hi] = sb

    _run_parallel(band, bands, nt)
    shape = (nr, nc)
    return u.reshape(shape), v.reshape(shape), s2n.reshape(shape)


def _peaks(corr, shape, p, mean=None):
    """Displacements and signal-to-noise ratios of a stack of flat maps (n, s0*s1).

    OpenPIV's rules: the first maximum (in C order) is the peak; a peak on
    the map's border gives NaN; otherwise ``eps`` is added to the map, the
    three-point fits run along each axis (gaussian falls back to parabolic
    when one of its five values is negative). The map may be overwritten.
    """
    s0, s1 = shape
    n = corr.shape[0]
    dt = corr.dtype.type
    rows = np.arange(n)
    idx = np.argmax(corr, axis=1)
    i, j = np.divmod(idx, s1)
    interior = (i > 0) & (i < s0 - 1) & (j > 0) & (j < s1 - 1)
    ii = np.clip(i, 1, max(s0 - 2, 0))
    jj = np.clip(j, 1, max(s1 - 2, 0))
    flat = ii * s1 + jj
    lift = np.where(interior, dt(_EPS), dt(0))

    def at(k):
        k = np.clip(k, 0, s0 * s1 - 1)
        return (corr[rows, k] + lift).astype(np.float64)

    c1 = (corr[rows, idx] + lift).astype(np.float64)  # the peak, after eps
    c = at(flat)
    cl, cr = at(flat - s1), at(flat + s1)  # rows above and below
    cd, cu = at(flat - 1), at(flat + 1)    # columns left and right
    with np.errstate(all="ignore"):
        method = p.subpixel_method
        if method == "centroid":
            di = (cr - cl) / (cl + c + cr)
            dj = (cu - cd) / (cd + c + cu)
        else:
            par_i = (cl - cr) / (2 * cl - 4 * c + 2 * cr)
            par_j = (cd - cu) / (2 * cd - 4 * c + 2 * cu)
            if method == "gaussian":
                negative = (c < 0) | (cl < 0) | (cr < 0) | (cd < 0) | (cu < 0)
                lc, ll, lr, ld, lu = np.log(c), np.log(cl), np.log(cr), np.log(cd), np.log(cu)
                nom1, den1 = ll - lr, 2 * ll - 4 * lc + 2 * lr
                nom2, den2 = ld - lu, 2 * ld - 4 * lc + 2 * lu
                g_i = np.divide(nom1, den1, out=np.zeros(n), where=den1 != 0)
                g_j = np.divide(nom2, den2, out=np.zeros(n), where=den2 != 0)
                di = np.where(negative, par_i, g_i)
                dj = np.where(negative, par_j, g_j)
            else:
                di, dj = par_i, par_j
        v = np.where(interior, i + di - s0 // 2, np.nan) / p.dt
        u = np.where(interior, j + dj - s1 // 2, np.nan) / p.dt

    method = p.sig2noise_method
    if method is None:
        return u, v, None
    signal = interior & (c1 >= 1e-3)
    if method == "peak2mean":
        if mean is None:
            mean = corr.mean(axis=1, dtype=np.float64)
        mean = np.abs(mean + lift.astype(np.float64))
        with np.errstate(all="ignore"):
            s2n = np.where(signal, c1, 0.0) / mean
        s2n[~np.isfinite(s2n) & (mean == 0)] = 0.0
        s2n[np.isnan(s2n)] = 0.0
        return u, v, s2n

    # peak2peak: the highest value outside the (2 width + 1)^2 square around
    # the peak (clipped at the map's border).
    w = min(p.width, max(s0, s1))
    d = np.arange(-w, w + 1)
    ri = np.clip(i[:, None] + d, 0, s0 - 1)
    ci = np.clip(j[:, None] + d, 0, s1 - 1)
    corr[rows[:, None, None], ri[:, :, None] * s1 + ci[:, None, :]] = -np.inf
    idx2 = np.argmax(corr, axis=1)
    c2 = (corr[rows, idx2] + lift).astype(np.float64)
    i2, j2 = np.divmod(idx2, s1)
    border2 = (i2 == 0) | (i2 == s0 - 1) | (j2 == 0) | (j2 == s1 - 1)
    fail = (c2 == 0) | (border2 & (c2 > 0.5 * c1)) | np.isneginf(c2)
    with np.errstate(all="ignore"):
        s2n = np.where(signal & ~fail, c1 / c2, 0.0)
    s2n[np.isnan(s2n)] = 0.0
    return u, v, s2n
