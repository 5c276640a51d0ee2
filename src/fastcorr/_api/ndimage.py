"""scipy.ndimage's linear filters, threaded: the functions of ``fastcorr.ndimage``.

Each function takes scipy.ndimage's arguments and gives its results (modes,
``cval``, ``origin``, ``axes``, ``output`` arrays or dtypes with integer
outputs truncated as scipy writes them, complex values through their real
and imaginary parts as scipy does), plus the keyword-only ``method`` and
``num_threads`` of every fastcorr function. Argument rules live in
``fastcorr._engine.validate`` (its ndimage block), the computation in
``fastcorr._engine.ndimage``.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._engine import ndimage as _nd
from .._engine.config import resolve_threads
from .._engine.validate import (
    NdimageArgumentError,
    NdimageMethod,
    NdimageMode,
    ndimage_array,
    ndimage_axes,
    ndimage_axis,
    ndimage_method,
    ndimage_mode,
    ndimage_origin,
    ndimage_output,
    ndimage_sequence,
    ndimage_weights,
)

__all__ = ["correlate", "convolve", "correlate1d", "convolve1d", "gaussian_filter", "gaussian_filter1d",
           "uniform_filter", "uniform_filter1d", "sobel", "prewitt", "laplace", "NdimageArgumentError"]

#: What ``output`` may be: None (the input's dtype), an array, or a dtype.
Output = NDArray[Any] | DTypeLike | None
#: A mode, or one per axis (the separable filters).
Modes = NdimageMode | Sequence[NdimageMode]


# ------------------------------------------------------------------ helpers

def _for_bool(result, dtype):
    # scipy's C loops store a bool output as an unsigned char: the value
    # truncated toward zero, then nonzero (0.5 -> False, not numpy's True)
    if dtype == np.bool_ and result.dtype.kind in "fc":
        return np.trunc(result.real) != 0
    return result


def _write(out, result):
    """out[...] = result cast as scipy's C loops cast (toward zero for integers)."""
    with np.errstate(invalid="ignore", over="ignore"):
        np.copyto(out, _for_bool(result, out.dtype), casting="unsafe")


def _emit(out, result):
    """The filter's output: ``result`` written into the array ``out``, or
    (``out`` a dtype: a new output) ``result`` itself cast to that dtype."""
    if isinstance(out, np.dtype):
        if result.dtype == out:
            return result
        with np.errstate(invalid="ignore", over="ignore"):
            return _for_bool(result, out).astype(out)
    _write(out, result)
    return out


def _real_parts(func, x, w, out, cval, **kw):
    """A complex filter as real filters of the real and imaginary parts
    (scipy.ndimage's rule: complex cval only with complex input)."""
    cx, cw = x.dtype.kind == "c", w.dtype.kind == "c"
    if cx and cw:
        func(x.real, w.real, out.real, np.real(cval), **kw)
        out.real -= func(x.imag, w.imag, None, np.imag(cval), **kw)
        func(x.real, w.imag, out.imag, np.real(cval), **kw)
        out.imag += func(x.imag, w.real, None, np.imag(cval), **kw)
    elif cx:
        func(x.real, w, out.real, np.real(cval), **kw)
        func(x.imag, w, out.imag, np.imag(cval), **kw)
    else:
        if np.iscomplexobj(cval):
            raise ValueError("Cannot provide a complex-valued cval when the input is real.")
        func(x, w.real, out.real, cval, **kw)
        func(x, w.imag, out.imag, cval, **kw)
    return out


def _real_cval(cval):
    if isinstance(cval, (numbers.Real, np.number)) and not np.iscomplexobj(cval):
        return float(cval)
    raise TypeError(f"cval must be a real number here, got {cval!r}")


def _nd_real(x, w, out, cval, *, origins, boundary, method, nthreads):
    """Real N-D correlation into ``out`` (an array, or the dtype of a new
    one; x's dtype if None)."""
    if out is None:
        out = x.dtype
    if x.size == 0:
        return _emit(out, np.zeros(x.shape, dtype=out))
    cdt = _nd.compute_dtype(x.dtype, out.dtype if isinstance(out, np.ndarray) else out)
    if x.ndim == 0:  # a scalar times a scalar weight
        return _emit(out, np.asarray(cdt.type(x) * cdt.type(w)))
    xr = np.ascontiguousarray(x, dtype=cdt)
    wr = _nd.weights_as(w, cdt)
    return _emit(out, _nd.correlate(xr, wr, origins, boundary, _real_cval(cval), method, nthreads))


def _line_real(x, w, out, cval, *, axis, origin, boundary, nthreads, uniform=False):
    """Real 1-D correlation along ``axis`` into ``out`` (an array, or the
    dtype of a new one; x's dtype if None)."""
    if out is None:
        out = x.dtype
    odt = out.dtype if isinstance(out, np.ndarray) else out
    if x.size == 0:
        return _emit(out, np.zeros(x.shape, dtype=odt))
    cval = _real_cval(cval)
    if uniform and odt.kind in "iub":
        # integer output: scipy's running mean, step by step in float64 (a
        # sequential cumulative sum rounds as its loop does), then truncated
        return _emit(out, _running_mean(x, w.shape[0], axis, origin, boundary, cval, nthreads))
    cdt = _nd.compute_dtype(x.dtype, odt)
    xr = np.ascontiguousarray(x, dtype=cdt)
    wr = _nd.weights_as(w, cdt)
    return _emit(out, _nd.correlate_line(xr, wr, axis, origin, boundary, cval, nthreads))


def _running_mean(x, size, axis, origin, boundary, cval, nthreads):
    """scipy's moving average for integer outputs: a running sum in float64
    (the first window added sample by sample, then one sample in and one out
    per step: a sequential cumulative sum rounds exactly as that loop),
    divided by ``size`` at each output."""
    xr = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = xr.shape[-1]
    lo = size // 2 + origin
    nd = xr.ndim - 1
    P = _nd.pad(np.ascontiguousarray(xr), (0,) * nd + (lo,), (0,) * nd + (size - 1 - lo,), boundary, cval, nthreads)
    steps = np.empty(xr.shape, dtype=np.float64)
    acc = P[..., 0].copy()
    for i in range(1, size):
        acc += P[..., i]
    steps[..., 0] = acc
    if n > 1:
        np.subtract(P[..., size:size + n - 1], P[..., :n - 1], out=steps[..., 1:])
    np.cumsum(steps, axis=-1, out=steps)
    steps /= size
    return np.moveaxis(steps, -1, axis)


def _axis_filters(x, passes, out, specs=None, cval=0.0, nthreads=1):
    """Apply 1-D passes one after another, each reading the previous pass's
    output (scipy's rule: the intermediate results are of the output dtype);
    ``out`` an array, or the dtype of a new output.

    ``specs`` (one ``(axis, taps, origin, mode)`` per pass, the taps as
    correlation weights) lets a 2-D real input with a float output take one
    call of the separable method instead (both passes per band of rows, no
    intermediate image): the same sums, rounded in the output's float type as
    scipy's intermediate is. It serves every mode but 'constant' with a
    nonzero cval (there the second pass extends the first pass's output with
    cval, not the image)."""
    odt = out.dtype if isinstance(out, np.ndarray) else out
    if (specs is not None and len(specs) == 2 and x.ndim == 2 and x.dtype.kind in "iuf" and odt.kind == "f"
            and {specs[0][0], specs[1][0]} == {0, 1} and x.size):
        (a0, t0, o0, m0), (a1, t1, o1, m1) = sorted(specs, key=lambda sp: sp[0])
        b0, b1 = ndimage_mode(m0), ndimage_mode(m1)
        c = _real_cval(cval)
        if b0 == b1 and (b0 != 0 or c == 0.0):
            o0 = ndimage_origin(o0, len(t0))
            o1 = ndimage_origin(o1, len(t1))
            cdt = _nd.compute_dtype(x.dtype, odt)
            xr = np.ascontiguousarray(x, dtype=cdt)
            return _emit(out, _nd.separable2d(xr, _nd.weights_as(t0, cdt), _nd.weights_as(t1, cdt), (o0, o1),
                                              b0, c, nthreads))
    cur = x
    for i, run in enumerate(passes):
        cur = run(cur, out if i == len(passes) - 1 else odt)
    return cur


# ------------------------------------------------------------------ correlate / convolve

def _correlate_or_convolve(input, weights, output, mode, cval, origin, axes, method, num_threads, convolution):
    x = ndimage_array(input)
    w = ndimage_weights(weights)
    method = ndimage_method(method)
    nthreads = resolve_threads(num_threads)
    if x.dtype.kind == "c" or w.dtype.kind == "c":
        if w.dtype.kind == "c" and not convolution:
            w = w.conj()  # as np.correlate: the weights conjugated
        out = ndimage_output(output, x, complex_output=True)
        return _real_parts(
            lambda xp, wp, op, cv: _correlate_or_convolve(xp, wp, op, mode, cv, origin, axes, method,
                                                          nthreads, convolution),
            x, w, out, cval)
    axes = ndimage_axes(axes, x.ndim)
    if len(axes) < x.ndim:
        if w.ndim != len(axes):
            raise NdimageArgumentError(f"weights.ndim ({w.ndim}) must match len(axes) ({len(axes)})")
        w = np.expand_dims(w, tuple(a for a in range(x.ndim) if a not in axes))
    origins_given = ndimage_sequence(origin, len(axes), "origin")
    origins = [0] * x.ndim
    for o, a in zip(origins_given, axes):
        origins[a] = o
    if sum(1 for s in w.shape if s > 0) != x.ndim or w.ndim != x.ndim:
        raise NdimageArgumentError(f"weights.ndim ({w.ndim}) must match len(axes) ({len(axes)}), "
                                   f"with no empty axis (weights have shape {w.shape})")
    if convolution:
        w = w[(slice(None, None, -1),) * w.ndim]
        origins = [-o - (0 if k & 1 else 1) for o, k in zip(origins, w.shape)]
    origins = [ndimage_origin(o, k) for o, k in zip(origins, w.shape)]
    if not isinstance(mode, str) and np.iterable(mode):
        raise NdimageArgumentError("A sequence of modes is not supported")
    boundary = ndimage_mode(mode)
    out = ndimage_output(output, x, lazy=True)
    return _nd_real(x, w, out, cval, origins=origins, boundary=boundary, method=method, nthreads=nthreads)


def correlate(input: ArrayLike, weights: ArrayLike, output: Output = None, mode: NdimageMode = "reflect",
              cval: float = 0.0, origin: int | Sequence[int] = 0, *, axes: int | Sequence[int] | None = None,
              method: NdimageMethod = "auto", num_threads: int | None = None) -> NDArray[Any]:
    """Multidimensional correlation, as ``scipy.ndimage.correlate``, threaded.

    ``out[i] = sum_j weights[j] * input[i + j - weights.shape // 2 - origin]``
    with ``input`` extended beyond its edges by ``mode``.

    Parameters
    ----------
    input : array_like
        1-D to N-D input (integer, float or complex).
    weights : array_like
        Weights, with as many dimensions as ``input`` (or as ``axes``).
        Complex weights are conjugated, as scipy does.
    output : ndarray or dtype, optional
        Where to write, or the output dtype (default: the input's). Integer
        outputs are truncated toward zero, as scipy writes them.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'grid-constant', 'grid-mirror', 'grid-wrap'}
        How the input extends beyond its edges (scipy.ndimage's modes:
        'reflect' is d c b a | a b c d, 'mirror' is d c b | a b c d,
        'nearest' a a a | a b c d, 'wrap' and 'constant' with ``cval``).
    cval : scalar
        The value outside the input for mode 'constant'.
    origin : int or sequence of int
        Shift of the filter's centre per axis, within
        ``-(k // 2) <= origin <= (k - 1) // 2``.
    axes : int or sequence of int, optional
        The axes to filter (default all); ``weights`` then has ``len(axes)``
        dimensions.
    method : {'auto', 'direct', 'im2col', 'fft', 'separable'}
        Algorithm. 1-D and 2-D inputs take every method of ``correlate2d``;
        3-D and up 'auto', 'direct' (the N-D direct kernel) or 'fft'.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).

    Returns
    -------
    ndarray
        The filtered input, of ``input``'s shape.

    Raises
    ------
    NdimageArgumentError
        Where scipy.ndimage raises RuntimeError (an unknown mode, weights of
        the wrong dimensions, a sequence of the wrong length): it is both a
        ValueError and a RuntimeError.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage, fastcorr.ndimage
    >>> x = np.arange(25, dtype=np.float32).reshape(5, 5)
    >>> k = np.array([[0, 1, 0], [1, 2, 1], [0, 1, 0]], dtype=np.float32)
    >>> y = fastcorr.ndimage.correlate(x, k, mode='nearest')
    >>> bool(np.allclose(y, scipy.ndimage.correlate(x, k, mode='nearest'))), y.dtype
    (True, dtype('float32'))
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, axes, method, num_threads, False)


def convolve(input: ArrayLike, weights: ArrayLike, output: Output = None, mode: NdimageMode = "reflect",
             cval: float = 0.0, origin: int | Sequence[int] = 0, *, axes: int | Sequence[int] | None = None,
             method: NdimageMethod = "auto", num_threads: int | None = None) -> NDArray[Any]:
    """Multidimensional convolution, as ``scipy.ndimage.convolve``, threaded.

    The correlation (:func:`correlate`) with the flipped weights, the
    origin mirrored as scipy mirrors it (one more for even sizes).

    Parameters
    ----------
    input, weights, output, mode, cval, origin, axes, method, num_threads
        As :func:`correlate` (complex weights are not conjugated).

    Returns
    -------
    ndarray
        The convolved input, of ``input``'s shape.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage, fastcorr.ndimage
    >>> x = np.array([[1, 2, 0, 0], [5, 3, 0, 4], [0, 0, 0, 7], [9, 3, 0, 0]])
    >>> k = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    >>> fastcorr.ndimage.convolve(x, k, mode='constant', cval=0.0)
    array([[11, 10,  7,  4],
           [10,  3, 11, 11],
           [15, 12, 14,  7],
           [12,  3,  7,  0]])
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, axes, method, num_threads, True)


# ------------------------------------------------------------------ 1-D filters

def correlate1d(input: ArrayLike, weights: ArrayLike, axis: int = -1, output: Output = None,
                mode: NdimageMode = "reflect", cval: float = 0.0, origin: int = 0, *,
                num_threads: int | None = None) -> NDArray[Any]:
    """1-D correlation along one axis, as ``scipy.ndimage.correlate1d``, threaded.

    Parameters
    ----------
    input : array_like
        The input (any dimensions).
    weights : array_like
        1-D weights (complex weights are conjugated).
    axis : int
        The axis whose lines are filtered.
    output, mode, cval
        As :func:`correlate`.
    origin : int
        Shift of the filter's centre, ``-(k // 2) <= origin <= (k - 1) // 2``.
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import fastcorr.ndimage
    >>> fastcorr.ndimage.correlate1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
    return _correlate1d(input, weights, axis, output, mode, cval, origin, resolve_threads(num_threads))


def _correlate1d(input, weights, axis, output, mode, cval, origin, nthreads, uniform=False):
    x = ndimage_array(input)
    w = ndimage_weights(weights)
    if x.dtype.kind == "c" or w.dtype.kind == "c":
        if w.dtype.kind == "c":
            w = w.conj().astype(np.complex128, copy=False)
        out = ndimage_output(output, x, complex_output=True)
        return _real_parts(lambda xp, wp, op, cv: _correlate1d(xp, wp, axis, op, mode, cv, origin, nthreads),
                           x, w, out, cval)
    out = ndimage_output(output, x, lazy=True)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] < 1:
        raise NdimageArgumentError(f"no filter weights given: weights must be 1-D and not empty, got shape {w.shape}")
    axis = ndimage_axis(axis, x.ndim)
    origin = ndimage_origin(origin, w.shape[0])
    boundary = ndimage_mode(mode)
    return _line_real(x, w, out, cval, axis=axis, origin=origin, boundary=boundary, nthreads=nthreads,
                      uniform=uniform)


def convolve1d(input: ArrayLike, weights: ArrayLike, axis: int = -1, output: Output = None,
               mode: NdimageMode = "reflect", cval: float = 0.0, origin: int = 0, *,
               num_threads: int | None = None) -> NDArray[Any]:
    """1-D convolution along one axis, as ``scipy.ndimage.convolve1d``, threaded.

    Parameters
    ----------
    input, weights, axis, output, mode, cval, origin, num_threads
        As :func:`correlate1d` (complex weights are not conjugated).

    Returns
    -------
    ndarray
        The convolved input.

    Examples
    --------
    >>> import fastcorr.ndimage
    >>> fastcorr.ndimage.convolve1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([14, 24,  4, 13, 12, 36, 27,  0])
    """
    w = ndimage_weights(weights)
    if w.ndim != 1:
        raise NdimageArgumentError(f"no filter weights given: weights must be 1-D, got shape {w.shape}")
    w = w[::-1]
    origin = -origin
    if not w.shape[0] & 1:
        origin -= 1
    if w.dtype.kind == "c":
        w = w.conj()  # undone by correlate1d's conjugation
    return _correlate1d(input, w, axis, output, mode, cval, origin, resolve_threads(num_threads))


def _gaussian_kernel(sigma, order, radius):
    """The sampled Gaussian (normalised to sum 1) times the polynomial of its
    ``order``-th derivative, on -radius..radius (a convolution kernel)."""
    if order < 0:
        raise ValueError(f"order must be non-negative, got {order}")
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * t * t)
    phi /= phi.sum()
    if order == 0:
        return phi
    # d^n/dt^n exp(-t^2 / (2 s^2)) = p_n(t) exp(...), p_0 = 1,
    # p_{n+1} = p_n' - t p_n / s^2 (coefficients in increasing powers)
    p = np.zeros(order + 1)
    p[0] = 1.0
    for _ in range(order):
        deriv = np.zeros_like(p)
        deriv[:-1] = p[1:] * np.arange(1, order + 1)
        shifted = np.zeros_like(p)
        shifted[1:] = p[:-1]
        p = deriv - shifted / (sigma * sigma)
    return np.polynomial.polynomial.polyval(t, p) * phi


def _gaussian_radius(sigma, truncate, radius):
    lw = int(truncate * float(sigma) + 0.5)
    if radius is not None:
        lw = radius
    if not isinstance(lw, numbers.Integral) or lw < 0:
        raise ValueError(f"Radius must be a nonnegative integer, got {lw!r}.")
    return int(lw)


def gaussian_filter1d(input: ArrayLike, sigma: float, axis: int = -1, order: int = 0, output: Output = None,
                      mode: NdimageMode = "reflect", cval: float = 0.0, truncate: float = 4.0, *,
                      radius: int | None = None, num_threads: int | None = None) -> NDArray[Any]:
    """1-D Gaussian filter (or its derivatives), as ``scipy.ndimage.gaussian_filter1d``.

    Parameters
    ----------
    input : array_like
        The input.
    sigma : float
        Standard deviation of the Gaussian, in samples.
    axis : int
        The axis filtered.
    order : int
        0 smooths; 1, 2, 3 ... convolve with that derivative of the Gaussian.
    output, mode, cval
        As :func:`correlate`.
    truncate : float
        The kernel's radius in standard deviations (``round(truncate * sigma)``).
    radius : int, optional
        The kernel's radius, overriding ``truncate``.
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import numpy as np, fastcorr.ndimage
    >>> fastcorr.ndimage.gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 1).round(4)
    array([1.427 , 2.0678, 3.    , 3.9322, 4.573 ])
    """
    lw = _gaussian_radius(sigma, truncate, radius)
    weights = _gaussian_kernel(float(sigma), order, lw)[::-1]
    return _correlate1d(input, weights, axis, output, mode, cval, 0, resolve_threads(num_threads))


def gaussian_filter(input: ArrayLike, sigma: float | Sequence[float], order: int | Sequence[int] = 0,
                    output: Output = None, mode: Modes = "reflect", cval: float = 0.0, truncate: float = 4.0, *,
                    radius: int | Sequence[int] | None = None, axes: int | Sequence[int] | None = None,
                    num_threads: int | None = None) -> NDArray[Any]:
    """Multidimensional Gaussian filter, as ``scipy.ndimage.gaussian_filter``, threaded.

    One 1-D Gaussian pass per axis (scipy's rule: each pass writes the
    output dtype, so integer outputs are truncated after each pass).

    Parameters
    ----------
    input : array_like
        The input.
    sigma : float or sequence of float
        Standard deviation per axis (an axis with sigma <= 1e-15 is skipped).
    order : int or sequence of int
        Derivative order per axis.
    output : ndarray or dtype, optional
        As :func:`correlate`.
    mode : str or sequence of str
        The mode, or one per axis.
    cval, truncate, radius
        As :func:`gaussian_filter1d` (``radius`` may be per axis).
    axes : int or sequence of int, optional
        The axes filtered (default all).
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The smoothed input.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage, fastcorr.ndimage
    >>> x = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    >>> y = fastcorr.ndimage.gaussian_filter(x, 2)
    >>> bool(np.allclose(y, scipy.ndimage.gaussian_filter(x, 2), atol=1e-6))
    True
    """
    x = ndimage_array(input)
    nthreads = resolve_threads(num_threads)
    out = ndimage_output(output, x, lazy=True)
    axes = ndimage_axes(axes, x.ndim)
    n = len(axes)
    orders = ndimage_sequence(order, n, "order")
    sigmas = ndimage_sequence(sigma, n, "sigma")
    modes = ndimage_sequence(mode, n, "mode")
    radii = ndimage_sequence(radius, n, "radius")
    todo = [(axes[i], sigmas[i], orders[i], modes[i], radii[i]) for i in range(n) if sigmas[i] > 1e-15]
    if not todo:
        return _emit(out, x.copy())
    passes = [
        (lambda a, s, o, m, r: lambda cur, dst: _correlate1d(
            cur, _gaussian_kernel(float(s), o, _gaussian_radius(s, truncate, r))[::-1], a, dst, m, cval, 0,
            nthreads))(a, s, o, m, r)
        for a, s, o, m, r in todo
    ]
    specs = None
    if x.dtype.kind != "c":
        specs = [(a, _gaussian_kernel(float(s), o, _gaussian_radius(s, truncate, r))[::-1], 0, m)
                 for a, s, o, m, r in todo]
    return _axis_filters(x, passes, out, specs, cval, nthreads)


def uniform_filter1d(input: ArrayLike, size: int, axis: int = -1, output: Output = None,
                     mode: NdimageMode = "reflect", cval: float = 0.0, origin: int = 0, *,
                     num_threads: int | None = None) -> NDArray[Any]:
    """1-D moving average, as ``scipy.ndimage.uniform_filter1d``, threaded.

    Parameters
    ----------
    input : array_like
        The input.
    size : int
        Length of the window (>= 1).
    axis, output, mode, cval, origin, num_threads
        As :func:`correlate1d`.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import fastcorr.ndimage
    >>> fastcorr.ndimage.uniform_filter1d([2, 8, 0, 4, 1, 9, 9, 0], size=3)
    array([4, 3, 4, 1, 4, 6, 6, 3])
    """
    return _uniform1d(input, size, axis, output, mode, cval, origin, resolve_threads(num_threads))


def _uniform1d(input, size, axis, output, mode, cval, origin, nthreads):
    x = ndimage_array(input)
    axis = ndimage_axis(axis, x.ndim)
    size = int(size)
    if size < 1:
        raise NdimageArgumentError(f"incorrect filter size: size must be >= 1, got {size}")
    complex_output = x.dtype.kind == "c"
    out = ndimage_output(output, x, complex_output=complex_output, lazy=not complex_output)
    if size // 2 + origin < 0 or size // 2 + origin >= size:
        raise ValueError(f"invalid origin {origin} for a filter of size {size}")
    boundary = ndimage_mode(mode)
    w = np.full(size, 1.0 / size)
    if not complex_output:
        return _line_real(x, w, out, cval, axis=axis, origin=origin, boundary=boundary, nthreads=nthreads,
                          uniform=True)
    _line_real(x.real, w, out.real, np.real(cval), axis=axis, origin=origin, boundary=boundary, nthreads=nthreads,
               uniform=True)
    _line_real(x.imag, w, out.imag, np.imag(cval), axis=axis, origin=origin, boundary=boundary, nthreads=nthreads,
               uniform=True)
    return out


def uniform_filter(input: ArrayLike, size: int | Sequence[int] = 3, output: Output = None,
                   mode: Modes = "reflect", cval: float = 0.0, origin: int | Sequence[int] = 0, *,
                   axes: int | Sequence[int] | None = None, num_threads: int | None = None) -> NDArray[Any]:
    """Multidimensional moving average, as ``scipy.ndimage.uniform_filter``, threaded.

    Parameters
    ----------
    input : array_like
        The input.
    size : int or sequence of int
        Window length per axis (axes of size 1 are skipped).
    output : ndarray or dtype, optional
        As :func:`correlate`.
    mode : str or sequence of str
        The mode, or one per axis.
    cval : scalar
        Value outside the input for 'constant'.
    origin : int or sequence of int
        Shift of the window per axis.
    axes : int or sequence of int, optional
        The axes filtered (default all).
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage, fastcorr.ndimage
    >>> x = np.arange(36, dtype=np.float64).reshape(6, 6)
    >>> bool(np.allclose(fastcorr.ndimage.uniform_filter(x, 3), scipy.ndimage.uniform_filter(x, 3)))
    True
    """
    x = ndimage_array(input)
    nthreads = resolve_threads(num_threads)
    out = ndimage_output(output, x, complex_output=x.dtype.kind == "c", lazy=True)
    axes = ndimage_axes(axes, x.ndim)
    n = len(axes)
    sizes = ndimage_sequence(size, n, "size")
    origins = ndimage_sequence(origin, n, "origin")
    modes = ndimage_sequence(mode, n, "mode")
    todo = [(axes[i], sizes[i], origins[i], modes[i]) for i in range(n) if sizes[i] > 1]
    if not todo:
        return _emit(out, x.copy())
    passes = [
        (lambda a, s, o, m: lambda cur, dst: _uniform1d(cur, int(s), a, dst, m, cval, o, nthreads))(a, s, o, m)
        for a, s, o, m in todo
    ]
    specs = None
    if x.dtype.kind != "c":
        for a, s, o, m in todo:
            if int(s) // 2 + o < 0 or int(s) // 2 + o >= int(s):
                raise ValueError(f"invalid origin {o} for a filter of size {int(s)}")
        specs = [(a, np.full(int(s), 1.0 / int(s)), o, m) for a, s, o, m in todo]
    return _axis_filters(x, passes, out, specs, cval, nthreads)


def _derivative_filter(input, axis, output, mode, cval, num_threads, smooth):
    x = ndimage_array(input)
    nthreads = resolve_threads(num_threads)
    axis = ndimage_axis(axis, x.ndim)
    out = ndimage_output(output, x, lazy=True)
    modes = ndimage_sequence(mode, x.ndim, "mode")
    passes = [lambda cur, dst: _correlate1d(cur, np.array([-1.0, 0.0, 1.0]), axis, dst, modes[axis], cval, 0,
                                            nthreads)]
    passes += [(lambda a: lambda cur, dst: _correlate1d(cur, smooth, a, dst, modes[a], cval, 0, nthreads))(a)
               for a in range(x.ndim) if a != axis]
    specs = [(axis, np.array([-1.0, 0.0, 1.0]), 0, modes[axis])]
    specs += [(a, smooth, 0, modes[a]) for a in range(x.ndim) if a != axis]
    return _axis_filters(x, passes, out, specs if x.dtype.kind != "c" else None, cval, nthreads)


def sobel(input: ArrayLike, axis: int = -1, output: Output = None, mode: Modes = "reflect", cval: float = 0.0,
          *, num_threads: int | None = None) -> NDArray[Any]:
    """Sobel derivative along one axis, as ``scipy.ndimage.sobel``, threaded.

    ``[-1, 0, 1]`` along ``axis`` and the smoothing ``[1, 2, 1]`` along
    every other axis, one pass at a time in the output dtype.

    Parameters
    ----------
    input : array_like
        The input.
    axis : int
        The axis differentiated.
    output : ndarray or dtype, optional
        As :func:`correlate`.
    mode : str or sequence of str
        The mode, or one per axis.
    cval : scalar
        Value outside the input for 'constant'.
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import numpy as np, fastcorr.ndimage
    >>> x = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]])
    >>> fastcorr.ndimage.sobel(x, axis=1)
    array([[0, 4, 4, 0],
           [0, 4, 4, 0],
           [0, 4, 4, 0]])
    """
    return _derivative_filter(input, axis, output, mode, cval, num_threads, np.array([1.0, 2.0, 1.0]))


def prewitt(input: ArrayLike, axis: int = -1, output: Output = None, mode: Modes = "reflect", cval: float = 0.0,
            *, num_threads: int | None = None) -> NDArray[Any]:
    """Prewitt derivative along one axis, as ``scipy.ndimage.prewitt``, threaded.

    ``[-1, 0, 1]`` along ``axis`` and ``[1, 1, 1]`` along every other axis.

    Parameters
    ----------
    input, axis, output, mode, cval, num_threads
        As :func:`sobel`.

    Returns
    -------
    ndarray
        The filtered input.

    Examples
    --------
    >>> import numpy as np, fastcorr.ndimage
    >>> x = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]])
    >>> fastcorr.ndimage.prewitt(x, axis=1)
    array([[0, 3, 3, 0],
           [0, 3, 3, 0],
           [0, 3, 3, 0]])
    """
    return _derivative_filter(input, axis, output, mode, cval, num_threads, np.array([1.0, 1.0, 1.0]))


def laplace(input: ArrayLike, output: Output = None, mode: Modes = "reflect", cval: float = 0.0, *,
            axes: int | Sequence[int] | None = None, num_threads: int | None = None) -> NDArray[Any]:
    """Discrete Laplacian, as ``scipy.ndimage.laplace``, threaded.

    The sum over the axes of ``[1, -2, 1]`` along each (the first written
    to the output, the others added in the output dtype, as scipy).

    Parameters
    ----------
    input : array_like
        The input.
    output : ndarray or dtype, optional
        As :func:`correlate`.
    mode : str or sequence of str
        The mode, or one per axis of ``axes``.
    cval : scalar
        Value outside the input for 'constant'.
    axes : int or sequence of int, optional
        The axes summed over (default all).
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        The Laplacian.

    Examples
    --------
    >>> import numpy as np, fastcorr.ndimage
    >>> x = np.zeros((5, 5)); x[2, 2] = 1
    >>> fastcorr.ndimage.laplace(x)[1:4, 1:4]
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    x = ndimage_array(input)
    nthreads = resolve_threads(num_threads)
    out = ndimage_output(output, x, lazy=True)
    axes = ndimage_axes(axes, x.ndim)
    if not axes:
        return _emit(out, x.copy())
    modes = ndimage_sequence(mode, len(axes), "mode")
    k = np.array([1.0, -2.0, 1.0])
    out = _correlate1d(x, k, axes[0], out, modes[0], cval, 0, nthreads)
    for i in range(1, len(axes)):
        tmp = _correlate1d(x, k, axes[i], out.dtype, modes[i], cval, 0, nthreads)
        out += tmp
    return out
