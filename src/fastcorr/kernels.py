"""Kernel design: derivatives, smoothing and sums as small 2-D arrays.

Conventions shared by every function here:

* **Correlation.** A kernel is meant for :func:`fastcorr.correlate2d`,
  :func:`fastcorr.conv2d` or :class:`fastcorr.nn.Conv2D`, all of which
  *cross-correlate*: ``out[m, n] = sum_{j, k} K[j, k] * x[m + j, n + k]``.
  Pass ``K[::-1, ::-1]`` to :func:`fastcorr.convolve2d` for the same result.
* **Orientation.** ``axis=1`` differentiates along the columns (left to
  right, the image's x direction); ``axis=0`` along the rows (top to bottom).
  A 1-D stencil is returned as a ``(1, n)`` row (axis=1) or an ``(n, 1)``
  column (axis=0), so it can be used as a 2-D kernel directly.
* **Sign.** Derivative kernels are signed so that correlating them with an
  increasing ramp gives a *positive* result: ``finite_difference(1)`` is
  ``[[-1, 1]]`` (the textbook's edge detector ``[[1, -1]]`` is its negative).
* **Scale.** Derivative stencils are exact for a unit grid spacing; the
  gradient operators (Sobel, Scharr, Prewitt) are returned with their usual
  integer weights, unnormalised (see each function for the factor that turns
  them into a derivative estimate).

All functions return new float64 arrays.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from ._engine.validate import IntPair, kernel_axis, kernel_shape, positive_number

__all__ = ["finite_difference", "fornberg_weights", "sobel", "scharr", "prewitt", "laplacian", "box", "gaussian"]


def fornberg_weights(order: int, points: Sequence[float | Fraction], at: float | Fraction = 0) -> list[Fraction]:
    """Finite-difference weights of the ``order``-th derivative on given points.

    Fornberg's recursion (B. Fornberg, *Generation of finite difference
    formulas on arbitrarily spaced grids*, Math. Comp. 51, 1988) in exact
    rational arithmetic: the returned weights ``c`` satisfy
    ``sum_i c[i] * p(points[i]) == p^(order)(at)`` exactly for every
    polynomial ``p`` of degree below ``len(points)``.

    Parameters
    ----------
    order : int
        Derivative order, ``0 <= order < len(points)``.
    points : sequence of numbers (int, float or fractions.Fraction)
        Distinct sample positions.
    at : number
        Where the derivative is taken.

    Returns
    -------
    list of fractions.Fraction
        One weight per point.

    Examples
    --------
    The central second difference, and the five-point first derivative:

    >>> from fastcorr.kernels import fornberg_weights
    >>> [str(c) for c in fornberg_weights(2, [-1, 0, 1])]
    ['1', '-2', '1']
    >>> [str(c) for c in fornberg_weights(1, [-2, -1, 0, 1, 2])]
    ['1/12', '-2/3', '0', '2/3', '-1/12']
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 0:
        raise ValueError(f"order must be a non-negative int, got {order!r}")
    xs = [Fraction(p) for p in points]
    if len(set(xs)) != len(xs):
        raise ValueError(f"points must be distinct, got {list(points)!r}")
    if order >= len(xs):
        raise ValueError(
            f"a derivative of order {order} needs at least {order + 1} points, got {len(xs)}"
        )
    z = Fraction(at)
    n, m = len(xs) - 1, int(order)
    # c[i][k]: weight of point i for the k-th derivative, using points 0..i.
    c = [[Fraction(0)] * (m + 1) for _ in range(n + 1)]
    c[0][0] = Fraction(1)
    c1 = Fraction(1)
    c4 = xs[0] - z
    for i in range(1, n + 1):
        mn = min(i, m)
        c2 = Fraction(1)
        c5, c4 = c4, xs[i] - z
        for j in range(i):
            c3 = xs[i] - xs[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i][k] = c1 * (k * c[i - 1][k - 1] - c5 * c[i - 1][k]) / c2
                c[i][0] = -c1 * c5 * c[i - 1][0] / c2
            for k in range(mn, 0, -1):
                c[j][k] = (c4 * c[j][k] - k * c[j][k - 1]) / c3
            c[j][0] = c4 * c[j][0] / c3
        c1 = c2
    return [row[m] for row in c]


def _oriented(row, axis):
    row = np.asarray(row, dtype=np.float64)
    return row[None, :] if axis == 1 else row[:, None]


def finite_difference(order: int, size: int | None = None, axis: int = 1) -> NDArray[np.float64]:
    """A finite-difference stencil for the ``order``-th derivative.

    The stencil samples ``size`` points spaced one pixel apart and centred on
    the stencil's middle, and is exact for polynomials of degree below
    ``size`` (Fornberg's weights). With the minimal ``size = order + 1`` it
    is the ``order``-th difference ``[-1, 1]``, ``[1, -2, 1]``,
    ``[-1, 3, -3, 1]``, ... (binomial coefficients with alternating signs);
    no smaller kernel can give a derivative of degree ``order``. A larger
    ``size`` gives a more accurate central stencil (error ``O(h**(size-order))``,
    or one order better when ``size - order`` is odd, by symmetry).

    Parameters
    ----------
    order : int
        Derivative order, ``>= 0`` (0 gives interpolation weights).
    size : int, optional
        Number of taps, ``>= order + 1`` (default ``order + 1``). For an odd
        ``size`` the derivative is taken at the middle tap; for an even one,
        half-way between the two middle taps.
    axis : {1, 0}
        1 differentiates along columns (returns shape ``(1, size)``), 0 along
        rows (shape ``(size, 1)``).

    Returns
    -------
    ndarray of float64
        The kernel, for correlation: ``correlate2d(x, K)`` estimates
        ``d^order x / d(axis)^order`` with the sign of the true derivative.

    Examples
    --------
    >>> from fastcorr import kernels
    >>> kernels.finite_difference(1)
    array([[-1.,  1.]])
    >>> kernels.finite_difference(3, axis=0).ravel()
    array([-1.,  3., -3.,  1.])
    >>> kernels.finite_difference(2, size=5) * 12
    array([[ -1.,  16., -30.,  16.,  -1.]])

    Differentiating ``x**2`` (sampled along the columns) gives ``2x``, exactly
    at the stencil's centre (here between two samples):

    >>> import numpy as np, fastcorr
    >>> x = np.arange(6.0)[None, :] ** 2
    >>> fastcorr.correlate2d(x, kernels.finite_difference(1), 'valid')
    array([[1., 3., 5., 7., 9.]])
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 0:
        raise ValueError(f"order must be a non-negative int, got {order!r}")
    order = int(order)
    if size is None:
        size = order + 1
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"size must be an int or None, got {size!r}")
    if size < order + 1:
        raise ValueError(
            f"size must be at least order + 1 = {order + 1} (the minimal stencil for a "
            f"derivative of order {order}), got {size}"
        )
    axis = kernel_axis(axis)
    points = [Fraction(2 * i - (size - 1), 2) for i in range(size)]
    weights = fornberg_weights(order, points)
    return _oriented([float(c) for c in weights], axis)


def _gradient(smooth, axis):
    diff = np.array([-1.0, 0.0, 1.0])
    smooth = np.asarray(smooth, dtype=np.float64)
    axis = kernel_axis(axis)
    return np.outer(smooth, diff) if axis == 1 else np.outer(diff, smooth)


def sobel(axis: int = 1) -> NDArray[np.float64]:
    """The 3x3 Sobel gradient kernel (central difference times [1, 2, 1] smoothing).

    Parameters
    ----------
    axis : {1, 0}
        1: derivative along columns (responds to vertical edges), positive
        where intensity increases to the right; 0: along rows, positive where
        it increases downwards.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Unnormalised; divide by 8 for the derivative per pixel. Correlating
        it in 'same' mode with boundary 'symm' equals
        ``scipy.ndimage.sobel(x, axis, mode='reflect')``.

    Examples
    --------
    >>> from fastcorr import kernels
    >>> kernels.sobel(1)
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    >>> bool((kernels.sobel(0) == kernels.sobel(1).T).all())
    True
    """
    return _gradient([1.0, 2.0, 1.0], axis)


def scharr(axis: int = 1) -> NDArray[np.float64]:
    """The 3x3 Scharr gradient kernel (smoothing [3, 10, 3]: better rotation invariance).

    Parameters
    ----------
    axis : {1, 0}
        As for :func:`sobel`.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Unnormalised; divide by 32 for the derivative per pixel.

    Examples
    --------
    >>> from fastcorr import kernels
    >>> kernels.scharr(0)
    array([[ -3., -10.,  -3.],
           [  0.,   0.,   0.],
           [  3.,  10.,   3.]])
    """
    return _gradient([3.0, 10.0, 3.0], axis)


def prewitt(axis: int = 1) -> NDArray[np.float64]:
    """The 3x3 Prewitt gradient kernel (central difference times a [1, 1, 1] box).

    Parameters
    ----------
    axis : {1, 0}
        As for :func:`sobel`.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Unnormalised; divide by 6 for the derivative per pixel. Equals
        ``scipy.ndimage.prewitt``'s weights (as for :func:`sobel`).

    Examples
    --------
    >>> from fastcorr import kernels
    >>> kernels.prewitt(1)
    array([[-1.,  0.,  1.],
           [-1.,  0.,  1.],
           [-1.,  0.,  1.]])
    """
    return _gradient([1.0, 1.0, 1.0], axis)


def laplacian(diagonal: bool = False) -> NDArray[np.float64]:
    """The 3x3 discrete Laplacian ``d2/dx2 + d2/dy2`` (sum of second differences).

    Parameters
    ----------
    diagonal : bool
        False: the 5-point stencil (``[1, -2, 1]`` along each axis; as
        ``scipy.ndimage.laplace``). True: the 9-point stencil that also uses
        the diagonals (weights 1 everywhere, -8 in the centre; it estimates
        three times the Laplacian).

    Returns
    -------
    ndarray of float64, shape (3, 3)
        Symmetric, so correlation and convolution agree.

    Examples
    --------
    >>> from fastcorr import kernels
    >>> kernels.laplacian()
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    if diagonal:
        k = np.ones((3, 3))
        k[1, 1] = -8.0
        return k
    second = np.array([1.0, -2.0, 1.0])
    k = np.zeros((3, 3))
    k[1, :] += second
    k[:, 1] += second
    return k


def box(shape: IntPair) -> NDArray[np.float64]:
    """A window of ones: correlating with it sums each window (the discrete integral).

    The sum of ``f`` over a window of width ``w`` is the discrete analogue of
    the integral of ``f`` over an interval of length ``w``; divide by
    ``K.size`` for the moving average (a box blur).

    Parameters
    ----------
    shape : int or (int, int)
        Window height and width (an int gives a square window).

    Returns
    -------
    ndarray of float64
        ``numpy.ones(shape)``.

    Examples
    --------
    The integral of a ramp over windows of three samples:

    >>> import numpy as np, fastcorr
    >>> from fastcorr import kernels
    >>> fastcorr.correlate2d(np.arange(6.0)[None, :], kernels.box((1, 3)), 'valid')
    array([[ 3.,  6.,  9., 12.]])
    """
    return np.ones(kernel_shape(shape, "shape"))


def gaussian(sigma: float | tuple[float, float], radius: IntPair | None = None) -> NDArray[np.float64]:
    """A normalised, separable 2-D Gaussian blur kernel.

    Parameters
    ----------
    sigma : float or (float, float)
        Standard deviation in pixels along rows and columns (> 0).
    radius : int or (int, int), optional
        Half-width: the kernel has shape ``(2*radius + 1,) * 2``. Default:
        ``int(4 * sigma + 0.5)`` per axis, as ``scipy.ndimage.gaussian_filter``
        (which the kernel then matches in 'same' mode with boundary 'symm').

    Returns
    -------
    ndarray of float64
        ``outer(g_rows, g_cols)`` with each 1-D factor ``exp(-t**2 / (2 sigma**2))``
        sampled at integer ``t`` and normalised to sum to 1 (so the kernel
        does too). It is symmetric: correlation equals convolution.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr import kernels
    >>> g = kernels.gaussian(1.0)
    >>> g.shape, round(float(g.sum()), 12)
    ((9, 9), 1.0)
    >>> kernels.gaussian(0.5, radius=1).round(4)
    array([[0.0113, 0.0838, 0.0113],
           [0.0838, 0.6193, 0.0838],
           [0.0113, 0.0838, 0.0113]])
    """
    sigmas = positive_number(sigma, "sigma")
    if radius is None:
        radii = tuple(int(4.0 * s + 0.5) for s in sigmas)
    else:
        radii = kernel_shape(radius, "radius", minimum=0)
    factors = []
    for s, r in zip(sigmas, radii):
        t = np.arange(-r, r + 1, dtype=np.float64)
        g = np.exp(-0.5 * (t / s) ** 2)
        factors.append(g / g.sum())
    return np.outer(factors[0], factors[1])
