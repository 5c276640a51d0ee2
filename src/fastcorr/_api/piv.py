"""Particle image velocimetry: the displacement field between two frames.

``piv`` gives OpenPIV's ``openpiv.pyprocess.extended_search_area_piv``
(u, v and the signal-to-noise ratio for the same arguments) and
``openpiv.pyprocess.get_coordinates`` (x, y) in one call. How it is computed
is in ``fastcorr._engine.piv``: every window of the pair in one batched,
threaded real-FFT correlation, band by band in bounded memory.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._engine.piv import piv_coordinates, piv_field
from .._engine.validate import (IntPair, PivCorrelationMethod, PivSig2NoiseMethod, PivSubpixelMethod,
                                piv_args)

__all__ = ["piv"]

_F64 = NDArray[np.float64]


def piv(
    frame_a: ArrayLike,
    frame_b: ArrayLike,
    window_size: IntPair = 32,
    overlap: IntPair = 16,
    search_area_size: IntPair | None = None,
    *,
    dt: float = 1.0,
    correlation_method: PivCorrelationMethod = "circular",
    normalized_correlation: bool = False,
    subpixel_method: PivSubpixelMethod = "gaussian",
    sig2noise_method: PivSig2NoiseMethod = "peak2peak",
    width: int = 2,
    num_threads: int | None = None,
) -> tuple[_F64, _F64, _F64, _F64, _F64]:
    """The velocity field between two frames, by cross-correlation of windows.

    OpenPIV's ``pyprocess.extended_search_area_piv`` followed by
    ``pyprocess.get_coordinates``: ``frame_a`` is cut into (overlapping)
    windows, each is cross-correlated with the same place of ``frame_b``
    (or with a larger search area around it), and the correlation peak,
    refined to a fraction of a pixel, is the window's displacement. All
    windows of the pair are correlated as one batch of real FFTs, threaded,
    in bounded memory; float32 frames, and integer frames of up to 16 bits
    (cameras'), are correlated in single precision, others in double.

    Parameters
    ----------
    frame_a, frame_b : array_like
        The two frames (2-D, same shape, real grey levels: integers or
        floats).
    window_size : int or (int, int)
        Side of the interrogation window in ``frame_a`` (rows, cols).
    overlap : int or (int, int)
        Pixels shared by neighbouring windows (less than the search area;
        the windows are ``search_area_size - overlap`` apart).
    search_area_size : int or (int, int) or None
        Side of the area of ``frame_b`` searched (at least
        ``window_size``); None: ``window_size``. When larger, both areas are
        normalised (zero mean, unit deviation) and only the centred
        ``window_size`` part of ``frame_a``'s area is kept, as OpenPIV does.
        The field's grid is that of the search areas.
    dt : float, keyword-only
        Time between the frames: u and v are displacements / dt (non-zero).
    correlation_method : {'circular', 'linear'}, keyword-only
        'circular': the periodic correlation of the areas (FFT without
        padding); 'linear': the zero-padded (linear) correlation.
    normalized_correlation : bool, keyword-only
        Normalise each area (zero mean, unit standard deviation) and divide
        the correlation by the area's size.
    subpixel_method : {'gaussian', 'parabolic', 'centroid'}, keyword-only
        The three-point fit along each axis through the peak and its
        neighbours. 'gaussian' falls back to 'parabolic' for a window whose
        five values are not all non-negative.
    sig2noise_method : {'peak2peak', 'peak2mean', None}, keyword-only
        'peak2peak': the peak over the highest value outside the
        ``(2 * width + 1)``-square around it; 'peak2mean': the peak over the
        map's mean (absolute value); None: not computed (NaN). Failed
        windows (peak on the border, peak below 1e-3, second peak zero or a
        high second peak on the border) get 0. (OpenPIV's default is
        'peak2mean'.)
    width : int, keyword-only
        Half-side of the square around the peak left out of the search for
        the second peak ('peak2peak').
    num_threads : int or None, keyword-only
        Threads (bands of windows run in parallel). None:
        :func:`fastcorr.get_num_threads`.

    Returns
    -------
    x, y : ndarray
        Centres of the windows (pixels; x the column, y the row, origin at
        the top-left corner), centred on the frame as OpenPIV's
        ``get_coordinates``: float64 of the field's shape.
    u, v : ndarray
        Displacements / dt along x (columns, to the right) and y (rows,
        downwards, the image's convention: OpenPIV flips v later, in
        ``tools.transform_coordinates``); NaN where the peak is on the
        border of the map. float64.
    sig2noise : ndarray
        The signal-to-noise ratio of each window (float64).

    Raises
    ------
    ValueError
        Frames not 2-D or of different shapes, ``search_area_size`` smaller
        than ``window_size`` or larger than the frames, ``overlap`` not
        smaller than the search area, ``dt`` zero or not finite, an unknown
        method, ``width < 0``.
    TypeError
        Complex, bool or non-numeric frames, non-integer sizes.

    See Also
    --------
    phase_cross_correlation : One translation for the whole image.
    match_template : Where a template is in an image.

    Notes
    -----
    The field has ``(N - s) // (s - overlap) + 1`` rows (``N`` the frame's
    rows, ``s`` the search area's), and as many columns by the same rule.
    Windows start at multiples of ``s - overlap`` from the top-left corner;
    the coordinates are those centres moved (by whole pixels) so that the
    grid sits in the middle of the frame, as OpenPIV's.

    The results equal OpenPIV's (0.26.1) to about 1e-10 px in float64 where
    a window's correlation peak is unique; where two values of a map tie at
    the maximum the first in row-major order is taken, as OpenPIV does, but
    rounding may break such ties differently.

    Examples
    --------
    Particles (Gaussian dots, 2.5 px across) moved by (1.3, -0.7) px, seen
    through 32-px windows 16 px apart:

    >>> import numpy as np, fastcorr
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[0:128, 0:128]
    >>> def frame(dx, dy, pts=rng.random((800, 2)) * 136 - 4):
    ...     img = np.zeros((128, 128))
    ...     for py, px in pts:
    ...         img += np.exp(-((xx - px - dx) ** 2 + (yy - py - dy) ** 2) / 1.28)
    ...     return img
    >>> x, y, u, v, s2n = fastcorr.piv(frame(0, 0), frame(1.3, -0.7), 32, 16)
    >>> u.shape
    (7, 7)
    >>> x[0, :3], y[:3, 0]
    (array([16., 32., 48.]), array([16., 32., 48.]))
    >>> round(float(np.median(u)), 1), round(float(np.median(v)), 1)
    (1.3, -0.7)
    """
    p = piv_args(frame_a, frame_b, window_size, overlap, search_area_size, dt, correlation_method,
                 normalized_correlation, subpixel_method, sig2noise_method, width, num_threads)
    u, v, s2n = piv_field(p)
    x, y = piv_coordinates(p.frame_a.shape, p.search, p.overlap, p.field)
    return x, y, u, v, s2n

