"""Argument checking and normalisation: the one place where errors are raised.

Every public function passes its raw arguments through here before any work
starts; the method modules trust what they receive.
"""
import numbers
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ._config import resolve_threads

MODES = ("full", "same", "valid")
# scipy's spellings, mapped to the kernels' boundary codes.
BOUNDARIES = {"fill": 0, "pad": 0, "wrap": 1, "circular": 1, "symm": 2, "symmetric": 2}
BOUNDARY_NAMES = {0: "fill", 1: "wrap", 2: "symm"}
SIGNAL_METHODS = ("auto", "direct", "im2col", "fft", "separable")


def as_array(value, name, ndim=None):
    """``np.asarray(value)`` with a clear error for unusable dtypes or shapes."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    kind = arr.dtype.kind
    if kind in "OSUVMm" or arr.dtype.fields is not None:
        raise TypeError(
            f"{name} has dtype {arr.dtype}, which fastcorr cannot correlate; "
            "use a numeric dtype (integer, float or complex)"
        )
    if kind == "b":
        raise TypeError(
            f"{name} has dtype bool, which (like scipy) fastcorr does not correlate; "
            f"convert it first, e.g. {name}.astype(np.uint8) or .astype(np.float32)"
        )
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        want = " or ".join(str(d) for d in np.atleast_1d(ndim))
        raise ValueError(f"{name} must be a {want}-D array, got {arr.ndim}-D with shape {arr.shape}")
    return arr


def choice(value, name, allowed):
    if not isinstance(value, str) or value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {opts}, got {value!r}")
    return value


def signal_result_dtype(dtype1, dtype2):
    """scipy.signal.correlate2d's result dtype, with float16 accepted."""
    return np.result_type(dtype1, dtype2)


def fill_scalar(fillvalue, dtype):
    """scipy's rule: one element, converted through complex, then to ``dtype``."""
    try:
        arr = np.asarray(fillvalue)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biufc":
        raise TypeError(f"fillvalue must be a number, got {fillvalue!r}")
    if arr.size != 1:
        raise ValueError(f"fillvalue must be a scalar (or an array with one element), got shape {arr.shape}")
    value = complex(arr.reshape(()).item())
    if dtype.kind != "c" and value.imag != 0:
        raise ValueError(
            f"fillvalue {fillvalue!r} is complex but the output dtype is {dtype}: "
            "it cannot be cast without losing its imaginary part"
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype.kind == "c":
            return np.asarray(value, dtype=dtype).reshape(())[()]
        return np.asarray(value.real).astype(dtype)[()]


@dataclass
class SignalProblem:
    """A validated correlate2d / convolve2d call."""

    in1: np.ndarray
    in2: np.ndarray
    mode: str
    boundary: int
    fill: object
    dtype: np.dtype
    method: str
    num_threads: int
    swapped: bool


def signal_args(func, in1, in2, mode, boundary, fillvalue, method, num_threads):
    """Validate the arguments of ``correlate2d`` / ``convolve2d``."""
    a = as_array(in1, "in1")
    b = as_array(in2, "in2")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(
            f"{func} inputs must both be 2-D arrays: in1 has shape {a.shape}, in2 has shape {b.shape}"
        )
    choice(mode, "mode", MODES)
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        raise ValueError(
            "boundary must be 'fill' (or 'pad'), 'wrap' (or 'circular') or 'symm' "
            f"(or 'symmetric'), got {boundary!r}"
        )
    bcode = BOUNDARIES[boundary]
    choice(method, "method", SIGNAL_METHODS)
    nthreads = resolve_threads(num_threads)
    dtype = signal_result_dtype(a.dtype, b.dtype)
    fill = fill_scalar(fillvalue, dtype)

    swapped = False
    if mode == "valid":
        ok1 = all(s1 >= s2 for s1, s2 in zip(a.shape, b.shape))
        ok2 = all(s2 >= s1 for s1, s2 in zip(a.shape, b.shape))
        if not (ok1 or ok2):
            raise ValueError(
                "For 'valid' mode, one must be at least as large as the other in every dimension: "
                f"in1 has shape {a.shape}, in2 has shape {b.shape}"
            )
        if not ok1:
            a, b = b, a
            swapped = True
    if a.size == 0 and bcode != 0 and b.size != 0 and mode == "full":
        raise ValueError(
            f"in1 is empty (shape {a.shape}): boundary {boundary!r} has nothing to wrap or reflect"
        )
    return SignalProblem(a, b, mode, bcode, fill, dtype, method, nthreads, swapped)


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 2**62


def _human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024


def check_output_fits(shape, dtype, name="output"):
    """MemoryError, before any work, when the result alone exceeds physical memory."""
    nbytes = int(np.prod([int(s) for s in shape], dtype=object)) * np.dtype(dtype).itemsize
    limit = _physical_memory()
    if nbytes > limit:
        raise MemoryError(
            f"the {name} of shape {tuple(int(s) for s in shape)} and dtype {np.dtype(dtype)} needs "
            f"{_human(nbytes)}, more than this machine's memory ({_human(limit)})"
        )


# --- kernels, correlation_matrix, receptive_field (textbook features) ---------


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def kernel_axis(axis):
    """An image axis for a 1-D stencil: 1 (columns, x) or 0 (rows, y); -1 means 1."""
    if not _is_int(axis) or int(axis) not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 1 (along columns) or 0 (along rows), got {axis!r}")
    return int(axis) % 2


def kernel_shape(value, name, minimum=1):
    """An int or a pair of ints (each >= minimum), as a (h, w) tuple."""
    items = (value, value) if _is_int(value) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) != 2 or not all(_is_int(v) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in each axis, got {value!r}")
    return tuple(int(v) for v in items)


def positive_number(value, name):
    """A positive real or a pair of them, as a (rows, cols) tuple of floats."""
    items = (value, value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be a number or a pair of numbers, got {value!r}") from None
    if len(items) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{name} must be a number or a pair of numbers, got {value!r}")
    if not all(np.isfinite(v) and v > 0 for v in items):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return tuple(float(v) for v in items)


def input_shape_arg(value, name="input_shape"):
    """A 2-D shape: a pair of non-negative ints."""
    if _is_int(value):
        raise TypeError(f"{name} must be a pair of ints (height, width), got {value!r}")
    return kernel_shape(value, name, minimum=0)


def per_layer(value, name, n_layers, minimum=1):
    """One (h, w) pair per layer from an int, a pair, or a sequence of those."""
    if _is_int(value):
        value = [value] * n_layers
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints / (h, w) pairs, got {value!r}") from None
    if len(items) != n_layers:
        raise ValueError(f"{name} must have one entry per layer ({n_layers}), got {len(items)}")
    return [kernel_shape(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(items)]
