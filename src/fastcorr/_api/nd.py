"""scipy.signal-compatible N-D correlate / convolve, with windows of lags.

The rules (modes as offsets, scipy's 'valid' swap, batches, lags) live in
``fastcorr._engine.nd``; this module validates the call and hands it over.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from numpy.typing import ArrayLike, NDArray

from .._engine import nd as _nd
from .._engine.validate import Lags, Mode, NdMethod, nd_args, out_arg

__all__ = ["correlate", "convolve"]


def correlate(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", method: NdMethod = "auto", *,
              axes: int | Sequence[int] | None = None, lags: Lags | None = None,
              num_threads: int | None = None, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Cross-correlate two N-D arrays, as ``scipy.signal.correlate``.

    ``z[l] = sum_n in1[n + l] * conj(in2[n])`` over the lags ``l`` of the
    mode, numbered as ``scipy.signal.correlation_lags``. 1-D signals, images
    and volumes of any rank; complex inputs (``in2`` conjugated); integer
    inputs exact in the result dtype's modular arithmetic, as scipy.

    Parameters
    ----------
    in1 : array_like
        First input.
    in2 : array_like
        Second input, of the same rank; it is complex-conjugated.
    mode : {'full', 'valid', 'same'}
        Output size: every lag where the inputs overlap; only those where
        one input lies inside the other (scipy's rule: the inputs are
        swapped when ``in2`` is the larger); or the size of ``in1``, centred
        as scipy centres it.
    method : {'auto', 'direct', 'fft'}
        Algorithm. 'auto' estimates both and picks the faster; it never
        runs the FFT on integer inputs or on inputs holding NaN or inf.
        'fft' refuses integer inputs (ValueError) rather than round.
        2-D inputs without ``axes`` or ``lags`` run on the engine of
        :func:`fastcorr.correlate2d`.
    axes : int or sequence of int, optional
        Correlate over these axes only, as ``scipy.signal.fftconvolve``'s
        ``axes``: along the other axes the inputs are a batch (their lengths
        must match, or one of them must be 1). Default: every axis.
    lags : int, (lo, hi) or sequence, optional
        Only with ``mode='full'``: compute only these lags of the full
        correlation, in time proportional to their number. An int ``L`` asks
        for lags ``-L..L`` on every correlated axis; a sequence gives one
        entry per correlated axis, each an int ``L`` or an inclusive
        ``(lo, hi)`` pair (for 1-D inputs a bare ``(lo, hi)`` pair is
        accepted too). Lags outside the full correlation's range give 0.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result (keyword-only, as numpy's ``out=``): a
        writeable C-contiguous array of the result's shape and dtype that
        overlaps neither input. The result is computed first and copied in
        (the 2-D functions write into it directly).

    Returns
    -------
    ndarray
        The correlation, of dtype ``np.result_type(in1, in2)``; with
        ``lags``, of length ``hi - lo + 1`` along each correlated axis.

    See Also
    --------
    convolve : Convolution, with the same rules.
    fastcorr.correlate2d : The 2-D function with boundaries 'wrap' and 'symm'.
    scipy.signal.correlation_lags : The lags of each mode's result.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.correlate([1, 2, 3], [0, 1, 0.5])
    array([0.5, 2. , 3.5, 3. , 0. ])

    The lag of a delayed copy, from a window of lags only:

    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(10_000)
    >>> y = np.roll(x, 7)                      # y[n] = x[n - 7]
    >>> z = fastcorr.correlate(y, x, lags=20)  # lags -20..20
    >>> int(np.argmax(z)) - 20
    7
    """
    p = nd_args("correlate", in1, in2, mode, method, axes, lags, num_threads)
    return _into(_nd.solve(p, False), out, in1, in2)


def convolve(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", method: NdMethod = "auto", *,
             axes: int | Sequence[int] | None = None, num_threads: int | None = None,
             out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Convolve two N-D arrays, as ``scipy.signal.convolve``.

    Convolution is correlation with ``in2`` flipped along the convolved
    axes (not conjugated); the rules are those of :func:`correlate`.

    Parameters
    ----------
    in1 : array_like
        First input.
    in2 : array_like
        Second input, of the same rank.
    mode : {'full', 'valid', 'same'}
        Output size: the full convolution; only where one input lies
        inside the other (the inputs swapped when ``in2`` is the larger,
        as scipy); or the size of ``in1``, centred as scipy.
    method : {'auto', 'direct', 'fft'}
        Algorithm, as for :func:`correlate`.
    axes : int or sequence of int, optional
        Convolve over these axes only (``scipy.signal.fftconvolve``'s
        rule); the other axes are a batch. Default: every axis.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result (keyword-only, as numpy's ``out=``): a
        writeable C-contiguous array of the result's shape and dtype that
        overlaps neither input. The result is computed first and copied in
        (the 2-D functions write into it directly).

    Returns
    -------
    ndarray
        The convolution, of dtype ``np.result_type(in1, in2)``.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.convolve([1, 2, 3], [0, 1, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> fastcorr.convolve(np.ones((2, 3, 4)), np.ones((1, 1, 2)), mode='valid').shape
    (2, 3, 3)
    """
    p = nd_args("convolve", in1, in2, mode, method, axes, None, num_threads)
    return _into(_nd.solve(p, True), out, in1, in2)


def _into(result, out, in1, in2):
    """``result``, or copied into ``out`` (checked as numpy's ``out=``)."""
    if out is None:
        return result
    out_arg(out, result.shape, result.dtype, (("in1", in1), ("in2", in2)))
    out[...] = result
    return out
