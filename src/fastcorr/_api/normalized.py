"""Normalized convolution: smoothing data with missing pixels (NaN) and certainty.

``normalized_convolution`` is ``astropy.convolution.convolve`` (its NaN
interpolation, boundaries and kernel normalisation) on fastcorr's engine,
with a certainty map in [0, 1] (Knutsson's normalized convolution), even
kernels, float32 kept in float32, and every method of the engine. The
composition (two correlations, the division, astropy's rules at the edges
of the definition) is ``fastcorr._engine.normalized``.
"""
from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._engine import normalized as _normalized
from .._engine.validate import NanTreatment, NormalizedBoundary, SignalMethod, normalized_args, normalized_out_arg

__all__ = ["normalized_convolution"]

_Float = NDArray[np.floating[Any]]


@overload
def normalized_convolution(
    data: ArrayLike, kernel: ArrayLike, certainty: ArrayLike | None = None, *,
    boundary: NormalizedBoundary | None = "fill", fill_value: float = 0.0, nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True, preserve_nan: bool = False, normalization_zero_tol: float = 1e-8,
    return_certainty: Literal[False] = False, method: SignalMethod = "auto", num_threads: int | None = None,
    out: NDArray[Any] | None = None,
) -> _Float: ...


@overload
def normalized_convolution(
    data: ArrayLike, kernel: ArrayLike, certainty: ArrayLike | None = None, *,
    boundary: NormalizedBoundary | None = "fill", fill_value: float = 0.0, nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True, preserve_nan: bool = False, normalization_zero_tol: float = 1e-8,
    return_certainty: Literal[True], method: SignalMethod = "auto", num_threads: int | None = None,
    out: NDArray[Any] | None = None,
) -> tuple[_Float, _Float]: ...


def normalized_convolution(
    data: ArrayLike,
    kernel: ArrayLike,
    certainty: ArrayLike | None = None,
    *,
    boundary: NormalizedBoundary | None = "fill",
    fill_value: float = 0.0,
    nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True,
    preserve_nan: bool = False,
    normalization_zero_tol: float = 1e-8,
    return_certainty: bool = False,
    method: SignalMethod = "auto",
    num_threads: int | None = None,
    out: NDArray[Any] | None = None,
) -> _Float | tuple[_Float, _Float]:
    """Convolve data that has missing pixels (NaN) or a certainty map.

    Each output is the kernel's weighted mean of the *certain* pixels under
    it: ``conv(c * data, kernel) / conv(c, kernel)``, with ``c`` the
    certainty of each pixel (0 for NaN pixels). With a binary certainty
    (NaN pixels, or a 0/1 ``certainty``) this is
    ``astropy.convolution.convolve`` with the same arguments, to 1e-10 in
    float64; a continuous certainty in [0, 1] gives Knutsson's normalized
    convolution (of order 0).

    Parameters
    ----------
    data : array_like, 1-D, 2-D or 3-D
        The data. NaN pixels are missing. Integer data are computed in
        float64; float32 data in float32. A masked array's masked pixels
        are missing too.
    kernel : array_like
        The convolution kernel (flipped, as a convolution does), with as
        many dimensions as ``data``, finite. Sizes may be even: the kernel
        is then centred as by ``scipy.signal.convolve2d(..., mode='same')``
        (astropy refuses even sizes).
    certainty : array_like, optional
        Certainty of each pixel, shaped like ``data``, in [0, 1]: 0 for a
        missing pixel (its value is never read, even if NaN or inf), 1 for
        a certain one. A boolean mask of the valid pixels is a certainty.
        Default: 1 everywhere but at NaN pixels.
    boundary : {'fill', 'wrap', 'extend', None}
        How the data continue beyond their edges, as in astropy: by
        ``fill_value`` (with certainty 1, or 0 when ``fill_value`` is NaN:
        the edges are then interpolated from the inside only), periodically,
        by repeating the edge pixel, or not at all (None: outputs whose
        kernel reaches outside the data are 0).
    fill_value : float
        The value outside the data for ``boundary='fill'``, and the value
        given to missing pixels by ``nan_treatment='fill'``.
    nan_treatment : {'interpolate', 'fill'}
        'interpolate': missing pixels are left out of each weighted mean
        (the kernel renormalised over the certain pixels). 'fill': they are
        replaced by ``fill_value`` and count as certain.
    normalize_kernel : bool
        Divide the kernel by its sum (the result is then a weighted mean).
        With False, the result is scaled by the kernel's sum, as astropy's.
    preserve_nan : bool
        Return missing pixels as NaN (instead of their interpolated value).
    normalization_zero_tol : float
        A kernel whose sum is within this of zero cannot be normalised. As
        in astropy, neither can a kernel summing to less than 0.01.
    return_certainty : bool
        Also return the certainty of each output, ``conv(c, kernel) /
        sum(kernel)`` (1 where every pixel under the kernel was certain).
    method : {'auto', 'direct', 'im2col', 'fft', 'separable'}
        The engine's method for the convolutions ('auto': the fastest for
        the case, as for :func:`correlate2d`).
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result: a writeable C-contiguous array shaped
        like ``data``, of the result's dtype (see Returns), that overlaps
        neither ``data``, ``kernel`` nor ``certainty`` (as numpy's
        ``out=``). Reusing one across calls on big images saves the cost of
        a fresh result each time.

    Returns
    -------
    result : ndarray
        ``out`` if given, else a new array. Shaped like ``data``, of ``data``'s float dtype (float64 for
        integer data). Outputs with no certain pixel under the kernel are
        the pixel itself: NaN where it is missing (with a RuntimeWarning,
        as astropy warns, unless ``preserve_nan`` or ``return_certainty``).
    certainty : ndarray
        Only with ``return_certainty=True``: the output certainty, in the
        compute dtype (float32 or float64), 0 where no certain pixel is
        under the kernel.

    Raises
    ------
    ValueError
        For a kernel that must be normalised (``normalize_kernel=True``, or
        missing pixels to interpolate) but sums to less than 0.01 or to
        within ``normalization_zero_tol`` of zero; a kernel with NaN or inf;
        a kernel whose number of dimensions differs from the data's; a
        certainty of another shape or with values outside [0, 1]; an
        unknown ``boundary``, ``nan_treatment`` or ``method``.
    TypeError
        For complex, boolean or non-numeric data or kernel.

    See Also
    --------
    convolve2d : The plain convolution (NaN spreads to every output it reaches).

    Notes
    -----
    Differences from ``astropy.convolution.convolve``: even kernel sizes
    are accepted; float32 data are computed in float32 (astropy computes in
    float64 and rounds); a non-finite kernel raises ValueError (astropy
    returns NaN everywhere); ``certainty`` replaces astropy's ``mask``
    (``certainty = ~mask``) and may be continuous.

    Both convolutions run on the engine's methods: the direct method's sums
    are exact where no certain pixel is under the kernel, while the FFT
    method's are within a few rounding errors of zero there, which counts as
    zero. A missing pixel's value is replaced by 0 before any method reads
    it, so NaN pixels never spread to their neighbours.

    Examples
    --------
    A NaN pixel is filled by the mean of its neighbours:

    >>> import numpy as np, fastcorr
    >>> x = np.array([[1.0, 2.0, 3.0],
    ...               [4.0, np.nan, 6.0],
    ...               [7.0, 8.0, 9.0]])
    >>> float(fastcorr.normalized_convolution(x, np.ones((3, 3)))[1, 1])
    5.0

    With a NaN ``fill_value`` the outside is missing too: the edges are
    means of the pixels inside, and the output certainty says how much of
    the kernel they had:

    >>> y, c = fastcorr.normalized_convolution(x, np.ones((3, 3)), fill_value=np.nan,
    ...                                        return_certainty=True)
    >>> y.round(3)
    array([[2.333, 3.2  , 3.667],
           [4.4  , 5.   , 5.6  ],
           [6.333, 6.8  , 7.667]])
    >>> c.round(3)
    array([[0.333, 0.556, 0.333],
           [0.556, 0.889, 0.556],
           [0.333, 0.556, 0.333]])

    A continuous certainty weighs each pixel (here 1, 0.5 and 0; the edges
    repeated outside):

    >>> fastcorr.normalized_convolution([1.0, 5.0, 9.0], [1.0, 1.0, 1.0], [1.0, 0.5, 0.0],
    ...                                 boundary='extend')
    array([1.8       , 2.33333333, 5.        ])

    A loop over frames can write each result into one array:

    >>> res = np.empty_like(x)
    >>> for frame in (x, 2 * x):
    ...     _ = fastcorr.normalized_convolution(frame, np.ones((3, 3)), out=res)
    >>> float(res[1, 1])
    10.0
    """
    p = normalized_args(data, kernel, certainty, boundary, fill_value, nan_treatment, normalize_kernel,
                        preserve_nan, normalization_zero_tol, return_certainty, method, num_threads)
    out = normalized_out_arg(out, p, data, kernel, certainty)
    return _normalized.solve(p, out=out)
