"""Particle image velocimetry: every interrogation window of a frame pair, one batch.

The engine of :func:`fastcorr.piv` (OpenPIV's ``extended_search_area_piv``
semantics). The vector field is cut into bands of windows; each band is one
batched computation (its windows as a strided view of the frames, real FFTs
over the stack on the FFT method's library, ``methods/_fftlib``: ducc0 when
installed, else ``scipy.fft``; the cross spectrum, the inverse, then the
peaks, the sub-pixel fit and the signal-to-noise ratio of every window in
one compiled pass), and the bands run on fastcorr's threads, each in a bounded
workspace (:data:`BAND_BYTES`).

Three details make the batch cheaper than the textbook one:

* the shift that puts zero displacement at the map's centre (OpenPIV's
  ``fftshift``) is a phase ramp folded into the cross spectrum, with the
  ``1 / area`` scale of ``normalized_correlation``, so the inverse transform
  writes the map where it is read;
* the peaks, sub-pixel fits and signal-to-noise ratios of a band's maps are
  one compiled pass over them (``piv_peaks.pyx``), in the band's thread;
* the 'linear' (zero-padded) correlation needs only the displacements
  ``-(n // 2) .. n - 1 - n // 2`` of an ``n``-long window, which a circular
  correlation of length ``n + n // 2`` holds without wrap-around: 48 for
  32-px windows, 96 for 64 (OpenPIV pads to the power of two above
  ``2n - 1``: 64 and 128).
"""
from __future__ import annotations

import math

import numpy as np

from ..methods import _fftlib as fftlib
from ..methods.fft import _run_parallel
from .piv_peaks import cross_spectrum, peaks

__all__ = ["piv_field", "piv_coordinates", "BAND_BYTES"]

#: Workspace of one band of windows (frames' windows, two spectra, the maps).
BAND_BYTES = 16 << 20
#: OpenPIV adds this to a map whose peak is inside it before its sub-pixel
#: fit (against log(0)); the signal-to-noise ratio is taken after it.
_EPS = 1e-7
#: The codes of piv_peaks.peaks.
_SUBPIXEL = {"gaussian": 0, "parabolic": 1, "centroid": 2}
_SIG2NOISE = {None: 0, "peak2peak": 1, "peak2mean": 2}


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
    s0, s1 = p.search
    if p.correlation_method == "circular":
        m1 = s1 - s1 % 2
        return (s0, s1), (s0, m1), (s0, m1)
    lengths = (fftlib.next_fast_len(s0 + s0 // 2, real=False),
               fftlib.next_fast_len(s1 + s1 // 2, real=True))
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
    strip = frame[r0 * step[0]:(r1 - 1) * step[0] + search[0]]
    if strip.dtype != dtype and not copy:
        # integer frames: the band's rows converted once, not once per
        # window holding them
        strip = strip.astype(dtype)
    rs, cs = strip.strides
    view = np.lib.stride_tricks.as_strided(
        strip, shape=(r1 - r0, nc) + tuple(search), strides=(step[0] * rs, step[1] * cs, rs, cs),
        writeable=False)
    if copy or view.dtype != dtype:
        return view.astype(dtype)  # a fresh C-contiguous stack
    return view


def piv_field(p):
    """u, v (pixels / dt) and the signal-to-noise ratio of every window: float64
    arrays of the field's shape."""
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
    s2n = np.empty(n_win)
    subpixel = _SUBPIXEL[p.subpixel_method]
    s2n_method = _SIG2NOISE[p.sig2noise_method]

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
        fa = fftlib.rfft2(wa, s=lengths, axes=(-2, -1), workers=1)
        del wa
        fb = fftlib.rfft2(wb, s=lengths, axes=(-2, -1), workers=1)
        del wb
        cross_spectrum(fa.reshape((-1,) + phase.shape), fb.reshape((-1,) + phase.shape), phase)
        del fb
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
        corr = fftlib.irfft2(fa, s=inverse, axes=(-2, -1), workers=1, overwrite_x=True)
        del fa
        lo, hi = r0 * nc, r1 * nc
        # the maps are corr[:, :m0, :m1] ('linear': of longer transforms)
        peaks(corr.reshape((-1,) + corr.shape[-2:]), m0, m1, subpixel, s2n_method, p.width, p.dt, _EPS,
              mean, u[lo:hi], v[lo:hi], s2n[lo:hi])

    _run_parallel(band, bands, nt)
    shape = (nr, nc)
    return u.reshape(shape), v.reshape(shape), s2n.reshape(shape)
