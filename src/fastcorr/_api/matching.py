"""Template matching: ``match_template`` (OpenCV's six scores, scikit-image's
defaults) and ``peaks`` (the best matches, with sub-pixel refinement).

The arguments are checked in ``fastcorr._engine.validate``; the scores are
computed in ``fastcorr._engine.matching`` (correlations through the
dispatcher, window statistics in ``fastcorr.methods.window``); the peak
search is in ``fastcorr._engine.peaks``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._engine import matching as _matching
from .._engine import peaks as _peaks
from .._engine.validate import MatchMethod, PadMode, Subpixel, match_template_args, peaks_args

__all__ = ["match_template", "peaks"]


def match_template(
    image: ArrayLike,
    template: ArrayLike,
    method: MatchMethod = "ccoeff_normed",
    *,
    mask: ArrayLike | None = None,
    pad_input: bool = False,
    mode: PadMode = "constant",
    constant_values: float = 0,
    overlap_ratio: float = 0.3,
    num_threads: int | None = None,
) -> NDArray[Any]:
    """Score every placement of a template on an image (template matching).

    The defaults give scikit-image's ``feature.match_template`` (the
    normalised correlation coefficient); ``method`` chooses any of
    OpenCV's six ``cv2.matchTemplate`` scores.

    Parameters
    ----------
    image : array_like, (H, W) or (H, W, C)
        The image; C channels are matched together (the scores sum over
        channels, as OpenCV does). NaN pixels are missing data (see Notes).
    template : array_like, (h, w) or (h, w, C); or a stack (T, h, w[, C])
        The template, with the image's channels; a stack (one more leading
        axis than the image) is matched in one call that shares the image's
        work between its templates. NaN pixels are ignored (weight 0).
    method : str or int
        'sqdiff', 'sqdiff_normed', 'ccorr', 'ccorr_normed', 'ccoeff' or
        'ccoeff_normed', or OpenCV's constants 0-5 (``cv2.TM_SQDIFF`` ... in
        that order). With t the template and x the window under it
        (primes: minus their means, per channel)::

            sqdiff          sum (x - t)**2
            sqdiff_normed   sum (x - t)**2 / sqrt(sum x**2 * sum t**2)
            ccorr           sum x t
            ccorr_normed    sum x t / sqrt(sum x**2 * sum t**2)
            ccoeff          sum x' t'
            ccoeff_normed   sum x' t' / sqrt(sum x'**2 * sum t'**2)

        Where a normalised score's denominator is zero (a flat window or a
        flat template) the score is 0, and 1 for 'sqdiff_normed'.
        Normalised scores are clamped to [-1, 1] ([0, 1] for
        'sqdiff_normed'); the best match is the maximum, or the minimum for
        the 'sqdiff' methods.
    mask : array_like, optional
        Template weights, of the template's shape or its (h, w): bool or
        integers (nonzero counts fully, OpenCV's rule for 8-bit masks) or
        non-negative floats, entering OpenCV's masked formulas (each pixel
        pair weighted by the weight squared, means weighted by the weight).
    pad_input : bool
        False: one score per placement inside the image, shape
        (H - h + 1, W - w + 1), index = the window's top-left corner.
        True: one score per image pixel, shape (H, W), the template centred
        on it (its top-left corner at (i - h // 2, j - w // 2)), the image
        extended beyond its edges as ``numpy.pad`` with ``mode`` does
        (scikit-image's rule).
    mode : str
        ``numpy.pad``'s mode for ``pad_input=True``: 'constant', 'edge',
        'reflect', 'symmetric', 'wrap', 'mean', ...
    constant_values : float
        The value outside the image for ``mode='constant'``.
    overlap_ratio : float in [0, 1]
        With missing image pixels: a window whose valid pixels carry less
        than this fraction of the template's total weight scores NaN.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).

    Returns
    -------
    ndarray
        The scores, (Ho, Wo), or (T, Ho, Wo) for a stack of templates:
        float32 when the image and template are float32, else float64
        (integer images such as uint8 included).

    Raises
    ------
    ValueError
        For a template larger than the image (without ``pad_input``), a
        channel mismatch, an unknown method, negative mask weights, or an
        empty image or template.
    TypeError
        For complex, bool or non-numeric image or template.

    See Also
    --------
    peaks : The best matches in the scores, with sub-pixel positions.

    Notes
    -----
    The correlation of the image with the zero-mean template runs on the
    method the dispatcher picks for small templates (direct); one template
    of at least 160 values (one channel) is correlated by overlap-save
    tiles of real FFTs, each tile's scores formed while its correlation is
    in cache. The per-window means and variances are running sums taken about
    a local centre in double precision, so the scores stay exact on images
    far from zero (1e4 + noise: within 1e-9 in float64 and 1e-4 in
    float32 of a float64 reference that centres each window), where sums
    about zero lose every digit.

    Missing data: with NaN pixels in the image, each window's statistics
    use only its valid pixels (Padfield's masked normalised
    cross-correlation, with the template's mean and variance also taken
    over the valid pixels), and windows whose valid pixels carry less than
    ``overlap_ratio`` of the template's weight score NaN. A colour pixel is
    missing when any of its channels is NaN.

    Colour images follow OpenCV (means per channel); scikit-image instead
    matches an (H, W, C) image as a volume (one mean over all channels), so
    its colour scores differ.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((64, 80))
    >>> template = image[20:30, 35:47].copy()
    >>> scores = fastcorr.match_template(image, template)
    >>> scores.shape
    (55, 69)
    >>> position, value = fastcorr.peaks(scores)
    >>> position, value.round(6)
    (array([[20., 35.]]), array([1.]))

    OpenCV's constants name the methods too ('sqdiff': best at the minimum):

    >>> d = fastcorr.match_template(image, template, 0)
    >>> fastcorr.peaks(d, minimize=True)[0]
    array([[20., 35.]])
    """
    p = match_template_args(image, template, method, mask, pad_input, mode, constant_values, overlap_ratio,
                            num_threads)
    return _matching.match_template(p)


def peaks(
    scores: ArrayLike,
    *,
    num_peaks: int = 1,
    min_distance: int = 1,
    threshold: float | None = None,
    subpixel: Subpixel | None = None,
    minimize: bool = False,
) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """The best matches in a score map: local maxima, separated, refined.

    Parameters
    ----------
    scores : array_like, 2-D
        A score map, e.g. from :func:`match_template`. A peak is a local
        maximum: at least each of its eight neighbours and above one of
        them (so a flat region holds none). NaN scores are never peaks.
    num_peaks : int
        At most this many peaks, best first.
    min_distance : int
        Peaks are at least this far apart in the chessboard distance
        (rows or columns): a kept peak suppresses every weaker candidate
        within ``min_distance - 1`` rows and columns of it (greedy
        non-maximum suppression, best first). 1 keeps every local maximum.
    threshold : float, optional
        Keep peaks with scores above it (at or below it with
        ``minimize=True``).
    subpixel : {None, 'parabolic', 'gaussian', 'centroid'}
        Refine each position from its neighbours: a parabola through three
        points per axis, the same through their logarithms ('gaussian':
        exact on sampled Gaussians; parabolic where a neighbour is <= 0),
        or the score-weighted centroid of the 3x3 neighbourhood. Peaks on
        the border are refined along the axes where they have both
        neighbours.
    minimize : bool
        Search minima instead (for the 'sqdiff' methods); 'gaussian' and
        'centroid' then refine the negated scores.

    Returns
    -------
    positions : ndarray (n, 2) of float
        (row, column) of each peak, best first (sub-pixel if asked).
    values : ndarray (n,)
        The scores at the integer peak positions.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> y, x = np.mgrid[0:9, 0:9]
    >>> s = -((y - 4.3) ** 2) - 2 * (x - 3.6) ** 2
    >>> pos, val = fastcorr.peaks(s, subpixel='parabolic')
    >>> pos.round(6), val
    (array([[4.3, 3.6]]), array([-0.41]))
    """
    p = peaks_args(scores, num_peaks, min_distance, threshold, subpixel, minimize)
    return _peaks.peaks(p)
