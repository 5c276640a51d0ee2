"""scipy.signal-compatible correlate2d / convolve2d.

Every call reduces to one *offset correlation* (``fastcorr._engine.geometry``)

    out[m, n] = sum_{j, k} w[j, k] * X[m + off0 + j, n + off1 + k]

with X the boundary-extended input. This module does that reduction (modes
to offsets and output shapes, convolution to a flipped kernel, scipy's
'valid' swap and conjugation); the engine chooses the method and lowers
the dtypes the methods do not serve natively. Plain calls take the compiled
fast path first (``fastcorr._engine.plain_call``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._engine import dispatch
from .._engine.geometry import offsets as mode_offsets, output_shape
from .._engine.validate import Boundary, Mode, Scalar, SignalMethod, check_output_fits, out_arg, signal_args

try:
    from .._engine.plain_call import plain_call
except ImportError:  # an uncompiled tree: every call takes the general path
    def plain_call(in1: object, in2: object, mode: object, boundary: object, fillvalue: object,
                   method: object, num_threads: object, convolve: bool,
                   out: object = None) -> NDArray[Any] | None:
        return None

__all__ = ["correlate2d", "convolve2d"]


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", boundary: Boundary = "fill",
                fillvalue: Scalar = 0, *, method: SignalMethod = "auto",
                num_threads: int | None = None, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1 : array_like, 2-D
        The image.
    in2 : array_like, 2-D
        The kernel; it is complex-conjugated, as in scipy.
    mode : {'full', 'valid', 'same'}
        Output size: the full correlation, only the positions where the
        kernel fits inside ``in1``, or the size of ``in1`` (centred as scipy).
    boundary : {'fill', 'wrap', 'symm', 'nearest', 'mirror'}
        How ``in1`` is extended beyond its edges: by ``fillvalue``,
        periodically, by mirror reflection including the edge sample
        ('symm', scipy's rule), and (beyond scipy.signal, as scipy.ndimage's
        modes of those names) by repeating the edge sample ('nearest') or
        by mirror reflection about the edge sample ('mirror').
    fillvalue : scalar
        Value outside ``in1`` when ``boundary='fill'``.
    method : {'auto', 'direct', 'im2col', 'fft', 'separable'}
        Algorithm; 'auto' picks the fastest one for the case.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result: a writeable C-contiguous array of the
        result's shape and dtype that overlaps neither input (as numpy's
        ``out=``). Reusing one across calls on big images saves the cost of
        faulting in a fresh output each time.

    Returns
    -------
    ndarray
        ``out`` if given, else a new array: the correlation, of dtype ``np.result_type(in1, in2)`` (float32
        stays float32; integers are exact in that type's modular arithmetic).

    Examples
    --------
    The textbook example: a 3x3 input and a 2x2 kernel.

    >>> import numpy as np, fastcorr
    >>> X = np.arange(9.0).reshape(3, 3)
    >>> K = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> fastcorr.correlate2d(X, K, mode='valid')
    array([[19., 25.],
           [37., 43.]])
    """
    return _call("correlate2d", in1, in2, mode, boundary, fillvalue, method, num_threads, False, out)


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", boundary: Boundary = "fill",
               fillvalue: Scalar = 0, *, method: SignalMethod = "auto",
               num_threads: int | None = None, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d``.

    Convolution is correlation with the kernel flipped in both axes; the
    rules are those of :func:`correlate2d`, without the conjugation.

    Parameters
    ----------
    in1 : array_like, 2-D
        The image.
    in2 : array_like, 2-D
        The kernel; it is flipped in both axes (not conjugated).
    mode : {'full', 'valid', 'same'}
        Output size: the full convolution, only the positions where the
        kernel fits inside ``in1``, or the size of ``in1`` (centred as scipy,
        which for an even kernel differs by one sample from correlation).
    boundary : {'fill', 'wrap', 'symm', 'nearest', 'mirror'}
        How ``in1`` is extended beyond its edges: by ``fillvalue``,
        periodically, by mirror reflection including the edge sample
        ('symm', scipy's rule), and (beyond scipy.signal, as scipy.ndimage's
        modes of those names) by repeating the edge sample ('nearest') or
        by mirror reflection about the edge sample ('mirror').
    fillvalue : scalar
        Value outside ``in1`` when ``boundary='fill'``.
    method : {'auto', 'direct', 'im2col', 'fft', 'separable'}
        Algorithm; 'auto' picks the fastest one for the case.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result: a writeable C-contiguous array of the
        result's shape and dtype that overlaps neither input (as numpy's
        ``out=``). Reusing one across calls on big images saves the cost of
        faulting in a fresh output each time.

    Returns
    -------
    ndarray
        ``out`` if given, else a new array: the convolution, of dtype ``np.result_type(in1, in2)`` (float32
        stays float32; integers are exact in that type's modular arithmetic).

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.convolve2d(np.eye(3), [[1, 2], [3, 4]], mode='valid')
    array([[5., 2.],
           [3., 5.]])
    """
    return _call("convolve2d", in1, in2, mode, boundary, fillvalue, method, num_threads, True, out)


def _call(func, in1, in2, mode, boundary, fillvalue, method, num_threads, convolve, out=None):
    result = plain_call(in1, in2, mode, boundary, fillvalue, method, num_threads, convolve, out)
    if result is not None:  # a plain call, run without the Python layers below
        return result
    problem = signal_args(func, in1, in2, mode, boundary, fillvalue, method, num_threads)
    return _solve(problem, convolve, out, ((("in1", in1), ("in2", in2))))


def _solve(p, convolve, out=None, originals=()):
    x, w = p.in1, p.in2
    if not convolve and w.dtype.kind == "c":
        w = np.conj(w)
    if convolve:
        w = w[::-1, ::-1]
    offsets = mode_offsets(p.mode, w.shape, convolve)
    shape = output_shape(p.mode, x.shape, w.shape)
    if out is not None:
        out = out_arg(out, shape, p.dtype, (*originals, ("in1", p.in1), ("in2", p.in2)))
    elif p.mode == "full" or p.dtype.itemsize > x.dtype.itemsize:  # else no larger than in1
        check_output_fits(shape, p.dtype)
    if p.swapped and not convolve:  # scipy's 'valid' swap: the result comes reversed
        result = dispatch.correlate_offset(x, w, shape, offsets, p.boundary, p.fill, p.dtype, p.method,
                                           p.num_threads)[::-1, ::-1]
        if out is None:
            return np.ascontiguousarray(result)
        out[...] = result
        return out
    return dispatch.correlate_offset(x, w, shape, offsets, p.boundary, p.fill, p.dtype, p.method,
                                     p.num_threads, out=out)
