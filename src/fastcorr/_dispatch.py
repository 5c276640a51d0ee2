"""Method choice: the one place that decides which method serves a call.

An *engine* is a module with
``correlate(x, w, shape, offsets, boundary, fill, num_threads) -> ndarray``
computing the offset correlation (see ``_api.py``) on C-contiguous float32 /
float64 arrays, and flags ``SERVES_COMPLEX`` / ``SERVES_INTEGER`` for the
dtypes it also takes natively (integers as modular uint64).
"""
import importlib

import numpy as np

from ._validate import as_array, choice, BOUNDARIES, MODES

_ENGINE_MODULES = {
    "direct": "._direct",
    "im2col": "._im2col",
}


_loaded = {}


def engine(method):
    """The engine module for ``method`` (ValueError if not available)."""
    if method in _loaded:
        return _loaded[method]
    try:
        name = _ENGINE_MODULES[method]
    except KeyError:
        available = ", ".join(repr(m) for m in ["auto", *_ENGINE_MODULES])
        raise ValueError(f"method={method!r} is not available in this build; use one of {available}") from None
    _loaded[method] = module = importlib.import_module(name, __package__)
    return module


def choose_offset_method(x, w, shape, boundary, dtype, num_threads):
    """The method 'auto' runs for one offset correlation."""
    return "direct"


def choose_method(in1, in2, mode="full", boundary="fill"):
    """Report the method ``method='auto'`` would use for these arguments.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
        Image and kernel, as for :func:`fastcorr.correlate2d`.
    mode, boundary : str
        As for :func:`fastcorr.correlate2d`.

    Returns
    -------
    str
        One of 'direct', 'im2col', 'fft', 'separable'.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.choose_method(np.ones((64, 64)), np.ones((3, 3)))
    'direct'
    """
    x = as_array(in1, "in1", ndim=2)
    w = as_array(in2, "in2", ndim=2)
    choice(mode, "mode", MODES)
    choice(boundary, "boundary", tuple(BOUNDARIES))
    from ._api import output_shape
    from ._config import get_num_threads

    if mode == "valid" and all(b >= a for a, b in zip(x.shape, w.shape)):
        x, w = w, x
    shape = output_shape(mode, x.shape, w.shape)
    return choose_offset_method(x, w, shape, BOUNDARIES[boundary], np.result_type(x, w), get_num_threads())


def choose_conv_method(x_shape, w_shape, stride, groups):
    """The method ``conv2d(method='auto')`` runs: 'direct' or 'im2col'.

    im2col pays one copy of the input per kernel tap and wins through the GEMM
    it feeds; the GEMM only pays when both of its inner dimensions are wide.
    Thin GEMMs (depthwise or few-channel layers: reduction length
    C_in/groups*kh*kw below 16 or at most 4 output channels per group) go to
    the direct loop.
    """
    cout, cg, kh, kw = w_shape
    if cg * kh * kw < 16 or cout // groups <= 4:
        return "direct"
    return "im2col"
