"""Argument checking and normalisation: the one place where errors are raised.

Every public function passes its raw arguments through here before any work
starts; the method modules trust what they receive.
"""
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from .config import resolve_threads

MODES = ("full", "same", "valid")
# scipy's spellings, mapped to the kernels' boundary codes.
BOUNDARIES = {"fill": 0, "pad": 0, "wrap": 1, "circular": 1, "symm": 2, "symmetric": 2,
              "nearest": 3, "mirror": 4}
BOUNDARY_NAMES = {0: "fill", 1: "wrap", 2: "symm", 3: "nearest", 4: "mirror"}
SIGNAL_METHODS = ("auto", "direct", "im2col", "fft", "separable")

# The same choices as types, for the public API's annotations (tests/test_typing.py
# checks that each lists exactly the values accepted here).
Mode: TypeAlias = Literal["full", "same", "valid"]
Boundary: TypeAlias = Literal["fill", "pad", "wrap", "circular", "symm", "symmetric", "nearest", "mirror"]
SignalMethod: TypeAlias = Literal["auto", "direct", "im2col", "fft", "separable"]
#: What choose_method reports: a method of correlate2d other than 'auto'.
ChosenMethod: TypeAlias = Literal["direct", "im2col", "fft", "separable"]
ConvMethod: TypeAlias = Literal["auto", "direct", "im2col", "winograd"]
PaddingMode: TypeAlias = Literal["zeros", "reflect", "replicate", "circular"]
#: A size per axis, torch's convention: one int for both, or (height, width).
IntPair: TypeAlias = int | tuple[int, int]
#: conv2d's padding: per axis, or the name of a rule.
Padding: TypeAlias = int | tuple[int, int] | Literal["valid", "same"]
#: A fill value: a Python or numpy number (int and float are complex to a type checker).
Scalar: TypeAlias = complex | np.number[Any] | np.bool_


def as_array(value, name, ndim=None):
    """``np.asarray(value)`` with a clear error for unusable dtypes or shapes."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if not arr.flags.aligned:
        # e.g. a view into a byte buffer (pickle protocol 5 frames from
        # dask.distributed): the compiled kernels read whole elements, which
        # C requires to be aligned; a copy is.
        arr = arr.copy()
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
    if ndim is not None and arr.ndim not in (
            ndim if type(ndim) is tuple else (ndim,) if type(ndim) is int else np.atleast_1d(ndim)):
        # (no numpy array per call for an int or a tuple: 3 us of conv2d's call)
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
    if dtype1 is dtype2:  # the common case, without numpy's promotion machinery
        return dtype1
    return np.result_type(dtype1, dtype2)


def _cannot_cast_fill(fillvalue, dtype, why):
    # scipy's wording (its tests match on it), then the value, dtype and reason.
    return ValueError("could not cast `fillvalue` directly to the output type (it was first converted to "
                      f"complex). fillvalue {fillvalue!r} {why} the output dtype {dtype}.")


def fill_scalar(fillvalue, dtype):
    """scipy's rule: one element, converted through complex, then to ``dtype``.

    As scipy: a Python complex fill is refused for a real output, and a
    Python int or float fill whose integer part is outside an integer
    output's range (or is not finite) is refused; numpy scalars are cast
    (integers wrap modulo 2**bits, as numpy casts them)."""
    if type(fillvalue) in (int, float) and dtype.kind in "fc" and dtype.itemsize <= 16 and abs(fillvalue) < 1e30:
        return dtype.type(fillvalue)  # the common case, without the general machinery
    if type(fillvalue) is complex and dtype.kind != "c":
        raise _cannot_cast_fill(fillvalue, dtype, "is a complex number, which cannot be")
    if type(fillvalue) in (int, float) and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (math.isfinite(fillvalue) and info.min <= math.trunc(fillvalue) <= info.max):
            raise _cannot_cast_fill(fillvalue, dtype, f"is outside [{info.min}, {info.max}],")
    try:
        arr = np.asarray(fillvalue)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biufc":
        raise TypeError(f"fillvalue must be a number, got {fillvalue!r}")
    if arr.size != 1:
        # scipy's wording (its tests match on it), then the shape.
        raise ValueError(f"`fillvalue` must be scalar or an array with one element. Got shape {arr.shape}.")
    if dtype.kind in "iu" and arr.dtype.kind in "biu":
        # exactly, not through complex (float64): an int64 or uint64 fill
        # beyond 2**53 keeps every bit; out of range wraps modulo 2**bits
        bits = 8 * dtype.itemsize
        exact = int(arr.reshape(()).item()) % (1 << bits)
        if dtype.kind == "i" and exact >= 1 << (bits - 1):
            exact -= 1 << bits
        return dtype.type(exact)
    value = complex(arr.reshape(()).item())
    if dtype.kind != "c" and value.imag != 0:
        # scipy's wording (its tests match on it), then the value and dtype.
        raise ValueError(
            "could not cast `fillvalue` directly to the output type (it was first converted to complex). "
            f"fillvalue {fillvalue!r} has an imaginary part, which the output dtype {dtype} cannot hold."
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
            "boundary must be 'fill' (or 'pad'), 'wrap' (or 'circular'), 'symm' "
            f"(or 'symmetric'), 'nearest' or 'mirror', got {boundary!r}"
        )
    bcode = BOUNDARIES[boundary]
    choice(method, "method", SIGNAL_METHODS)
    nthreads = resolve_threads(num_threads)
    dtype = signal_result_dtype(a.dtype, b.dtype)
    fill = fill_scalar(fillvalue, dtype)

    swapped = False
    if mode == "valid":
        (h1, w1), (h2, w2) = a.shape, b.shape
        ok1 = h1 >= h2 and w1 >= w2
        ok2 = h2 >= h1 and w2 >= w1
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


PHYSICAL_MEMORY = _physical_memory()


def _human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024


def check_output_fits(shape, dtype, name="output"):
    """MemoryError, before any work, when the result alone exceeds physical memory."""
    nbytes = math.prod(map(int, shape)) * np.dtype(dtype).itemsize
    limit = PHYSICAL_MEMORY
    if nbytes > limit:
        raise MemoryError(
            f"the {name} of shape {tuple(int(s) for s in shape)} and dtype {np.dtype(dtype)} needs "
            f"{_human(nbytes)}, more than this machine's memory ({_human(limit)})"
        )


# --- conv2d / conv2d_backward / im2col / col2im (torch.nn.functional semantics) ---

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
#: Largest kernel size, stride, dilation or padding accepted (keeps index
#: arithmetic far from 64-bit overflow; no real layer comes near it).
MAX_GEOMETRY = 2**31 - 1
CONV_METHODS = ("auto", "direct", "im2col", "winograd")


def pair_arg(value, name, minimum=1):
    """An int or a pair of ints, each >= ``minimum``, as a tuple (h, w)."""
    if type(value) is int and minimum <= value <= MAX_GEOMETRY:  # the common case, without the ABC checks
        return value, value
    if (type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int
            and minimum <= value[0] <= MAX_GEOMETRY and minimum <= value[1] <= MAX_GEOMETRY):
        return value
    items = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    if any(v > MAX_GEOMETRY for v in items):
        raise ValueError(f"{name} must be at most {MAX_GEOMETRY} in every dimension, got {value!r}")
    return int(items[0]), int(items[1])


def conv_dtype(*arrays):
    """Compute dtype of a conv2d call: float32 or float64 (integers -> float64)."""
    dtype = np.result_type(*[a.dtype for a in arrays if a is not None])
    if dtype.kind == "c":
        raise TypeError(f"conv2d computes real float32/float64 data, got complex dtype {dtype}")
    if dtype.kind in "iub" or (dtype.kind == "f" and dtype.itemsize > 8):
        return np.dtype(np.float64)
    if dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


@dataclass
class ConvProblem:
    """A validated conv2d call (arrays in the compute dtype, C-contiguous, NCHW)."""

    x: np.ndarray
    w: np.ndarray
    bias: object
    stride: tuple
    dilation: tuple
    pads: tuple  # (top, bottom, left, right)
    groups: int
    padding_mode: str
    method: str
    num_threads: int
    out_hw: tuple
    unbatched: bool
    dtype: np.dtype
    out: object = None  # conv2d's out= (checked, always 4-D), written in place


def conv2d_args(input, weight, bias, stride, padding, dilation, groups, padding_mode, method,
                num_threads, func="conv2d"):
    """Validate and normalise the arguments of ``conv2d`` (torch semantics)."""
    x = as_array(input, "input", ndim=(3, 4))
    w = as_array(weight, "weight", ndim=4)
    b = None if bias is None else as_array(bias, "bias", ndim=1)
    stride = pair_arg(stride, "stride")
    dilation = pair_arg(dilation, "dilation")
    groups = positive_int(groups, "groups")
    choice(padding_mode, "padding_mode", PADDING_MODES)
    choice(method, "method", CONV_METHODS)
    nthreads = resolve_threads(num_threads)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels, got input with {C} channels")
    if Cout % groups:
        raise ValueError(f"groups={groups} must divide the output channels, got weight with {Cout} output channels")
    if Cg * groups != C:
        raise ValueError(
            f"weight of shape {w.shape} expects {Cg * groups} input channels (groups={groups}), "
            f"but input has {C} channels (shape {tuple(np.shape(input))})"
        )
    if 0 in (Cout, kh, kw):
        raise ValueError(f"weight must have no empty dimension, got shape {w.shape}")
    if b is not None and b.shape != (Cout,):
        raise ValueError(f"bias must have shape ({Cout},) (one per output channel), got {b.shape}")
    if isinstance(padding, str):
        choice(padding, "padding", ("valid", "same"))
        if padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions (stride must be 1)")
            th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = pair_arg(padding, "padding", minimum=0)
        pads = (ph, ph, pw, pw)
    if padding_mode != "zeros" and any(pads):
        if H == 0 or W == 0:
            raise ValueError(f"padding_mode={padding_mode!r} needs a non-empty input, got shape {x.shape}")
        for p, size, axis in ((pads[0], H, "height"), (pads[1], H, "height"), (pads[2], W, "width"), (pads[3], W, "width")):
            if padding_mode == "reflect" and p >= size:
                raise ValueError(
                    f"padding {p} must be smaller than the input {axis} {size} for padding_mode='reflect'"
                )
            if padding_mode == "circular" and p > size:
                raise ValueError(
                    f"padding {p} must not exceed the input {axis} {size} for padding_mode='circular'"
                )
    Ho = conv_out_size(H, pads[0] + pads[1], kh, dilation[0], stride[0])
    Wo = conv_out_size(W, pads[2] + pads[3], kw, dilation[1], stride[1])
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"{func}: the output size ({Ho}, {Wo}) is not positive: input of spatial size ({H}, {W}) "
            f"with padding {pads} is smaller than the dilated kernel "
            f"({dilation[0] * (kh - 1) + 1}, {dilation[1] * (kw - 1) + 1})"
        )
    dtype = conv_dtype(x, w, b)
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    if b is not None:
        b = np.ascontiguousarray(b, dtype=dtype)
    return ConvProblem(x, w, b, stride, dilation, pads, groups, padding_mode, method, nthreads,
                       (Ho, Wo), unbatched, dtype)


def conv_grad_output_arg(grad_output, p):
    """Check ``grad_output`` against a validated problem; return it NCHW in p.dtype."""
    g = as_array(grad_output, "grad_output", ndim=(3, 4))
    want = (p.x.shape[0], p.w.shape[0], *p.out_hw)
    if p.unbatched:
        if g.ndim != 3 or g.shape != want[1:]:
            raise ValueError(f"grad_output must have shape {want[1:]} (the conv2d output), got {g.shape}")
        g = g[None]
    elif g.shape != want:
        raise ValueError(f"grad_output must have shape {want} (the conv2d output), got {g.shape}")
    return np.ascontiguousarray(g, dtype=p.dtype)


def conv_out_size(size, total_pad, k, dilation, stride):
    """Output positions along one axis (torch's rule for conv2d / unfold / fold)."""
    return (size + total_pad - dilation * (k - 1) - 1) // stride + 1


def _block_geometry(size_hw, kernel_size, dilation, padding, stride):
    """Checked (kernel_size, dilation, padding, stride) pairs and the block grid (Ho, Wo)."""
    kernel_size = pair_arg(kernel_size, "kernel_size")
    dilation = pair_arg(dilation, "dilation")
    padding = pair_arg(padding, "padding", minimum=0)
    stride = pair_arg(stride, "stride")
    Ho, Wo = (conv_out_size(size_hw[a], 2 * padding[a], kernel_size[a], dilation[a], stride[a]) for a in (0, 1))
    return kernel_size, dilation, padding, stride, Ho, Wo


def unfold_args(input, kernel_size, dilation, padding, stride, func="im2col"):
    """Validate ``im2col`` (torch unfold) arguments; return (x NCHW, params, unbatched)."""
    x = as_array(input, "input", ndim=(3, 4))
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    H, W = x.shape[2:]
    kernel_size, dilation, padding, stride, Ho, Wo = _block_geometry((H, W), kernel_size, dilation, padding, stride)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"{func}: the number of blocks ({Ho}, {Wo}) is not positive for input of spatial size "
            f"({H}, {W}), kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}"
        )
    dtype = conv_dtype(x)
    return np.ascontiguousarray(x, dtype=dtype), (kernel_size, dilation, padding, stride, Ho, Wo), unbatched


def fold_args(cols, output_size, kernel_size, dilation, padding, stride):
    """Validate ``col2im`` (torch fold) arguments; return (cols N x K x L, params, unbatched)."""
    c = as_array(cols, "cols", ndim=(2, 3))
    output_size = pair_arg(output_size, "output_size")
    unbatched = c.ndim == 2
    if unbatched:
        c = c[None]
    kernel_size, dilation, padding, stride, Ho, Wo = _block_geometry(output_size, kernel_size, dilation, padding, stride)
    khw = kernel_size[0] * kernel_size[1]
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"col2im: output_size={output_size} gives ({Ho}, {Wo}) blocks, not positive, for "
            f"kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}"
        )
    if c.shape[1] % khw:
        raise ValueError(
            f"cols dimension 1 ({c.shape[1]}) must be a multiple of kernel_size[0]*kernel_size[1] = {khw}"
        )
    if c.shape[2] != Ho * Wo:
        raise ValueError(
            f"cols has {c.shape[2]} blocks in its last dimension but output_size={output_size} with "
            f"these kernel_size/dilation/padding/stride gives {Ho}*{Wo} = {Ho * Wo}"
        )
    dtype = conv_dtype(c)
    return np.ascontiguousarray(c, dtype=dtype), (output_size, kernel_size, dilation, padding, stride, Ho, Wo), unbatched


def im2col_cap_arg(nbytes):
    """The im2col column-buffer cap in bytes: an int >= 1 MiB."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"nbytes must be an int (bytes), got {nbytes!r}")
    if nbytes < 2**20:
        raise ValueError(f"nbytes must be at least 1 MiB (1048576), got {nbytes}")
    return int(nbytes)


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


# ---------------------------------------------------------------- registration

RegistrationSpace: TypeAlias = Literal["real", "fourier"]
#: phase_cross_correlation's normalisation: 'phase' (phase correlation) or None (plain).
RegistrationNormalization: TypeAlias = Literal["phase"] | None


@dataclass
class RegistrationProblem:
    """A validated phase_cross_correlation call (masks: both None, or both boolean arrays)."""

    reference: np.ndarray
    moving: np.ndarray
    upsample_factor: float
    space: str
    disambiguate: bool
    normalization: str | None
    num_threads: int
    reference_mask: np.ndarray | None = None
    moving_mask: np.ndarray | None = None
    overlap_ratio: float = 0.3


def _mask_arg(mask, name, shape, image):
    try:
        arr = np.asarray(mask)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be an array of booleans: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of booleans (True on valid pixels), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have {image}'s shape {shape}, got {arr.shape}")
    return arr.astype(bool)


def registration_args(reference_image, moving_image, upsample_factor, space, disambiguate,
                      reference_mask, moving_mask, overlap_ratio, normalization, num_threads):
    """Check phase_cross_correlation's arguments (scikit-image's rules, errors naming the argument)."""
    ref = as_array(reference_image, "reference_image")
    mov = as_array(moving_image, "moving_image")
    if ref.ndim < 1:
        raise ValueError(f"reference_image must be at least 1-D, got a {ref.ndim}-D array")
    masked = reference_mask is not None or moving_mask is not None
    if masked and moving_mask is not None and mov.ndim != ref.ndim:
        raise ValueError(
            f"moving_image must have as many dimensions as reference_image ({ref.ndim}), got {mov.ndim}"
        )
    if mov.shape != ref.shape and not (masked and moving_mask is not None):
        raise ValueError(
            f"moving_image must have reference_image's shape {ref.shape}, got {mov.shape}"
            + (" (images of different shapes need a moving_mask)" if masked else "")
        )
    if ref.size == 0 or mov.size == 0:
        raise ValueError(f"reference_image and moving_image must not be empty, got shapes {ref.shape}, {mov.shape}")
    if isinstance(upsample_factor, bool) or not isinstance(upsample_factor, numbers.Real):
        raise TypeError(f"upsample_factor must be a number >= 1, got {upsample_factor!r}")
    if not (math.isfinite(upsample_factor) and upsample_factor >= 1):
        raise ValueError(f"upsample_factor must be a finite number >= 1, got {upsample_factor!r}")
    if not isinstance(space, str) or space.lower() not in ("real", "fourier"):
        raise ValueError(f"space must be 'real' or 'fourier' (any case), got {space!r}")
    if normalization is not None and normalization != "phase":
        raise ValueError(f"normalization must be 'phase' or None, got {normalization!r}")
    if isinstance(overlap_ratio, bool) or not isinstance(overlap_ratio, numbers.Real):
        raise TypeError(f"overlap_ratio must be a number, got {overlap_ratio!r}")
    if not math.isfinite(overlap_ratio):
        raise ValueError(f"overlap_ratio must be finite, got {overlap_ratio!r}")
    rmask = mmask = None
    if masked:
        if reference_mask is None:
            raise ValueError("reference_mask must be given when moving_mask is (True on valid pixels)")
        rmask = _mask_arg(reference_mask, "reference_mask", ref.shape, "reference_image")
        mmask = rmask if moving_mask is None else _mask_arg(moving_mask, "moving_mask", mov.shape, "moving_image")
        for name, arr in (("reference_image", ref), ("moving_image", mov)):
            if arr.dtype.kind == "c":
                raise ValueError(f"{name} is complex: masked registration needs real images")
    nthreads = resolve_threads(num_threads)
    return RegistrationProblem(ref, mov, float(upsample_factor), space.lower(), bool(disambiguate),
                               normalization, nthreads, rmask, mmask, float(overlap_ratio))


# --- template matching (match_template, peaks) --------------------------------

#: OpenCV's TM_* methods, in the order of their integer constants 0-5.
MATCH_METHODS = ("sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed")
#: numpy.pad's modes (pad_input=True extends the image as numpy.pad does).
PAD_MODES = ("constant", "edge", "linear_ramp", "maximum", "mean", "median", "minimum", "reflect",
             "symmetric", "wrap", "empty")
SUBPIXEL = (None, "parabolic", "gaussian", "centroid")
# As types (tests/test_typing.py checks them against the tuples above).
MatchMethodName: TypeAlias = Literal["sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff",
                                     "ccoeff_normed"]
#: A method by name or by OpenCV's constant (cv2.TM_SQDIFF ... cv2.TM_CCOEFF_NORMED: 0-5).
MatchMethod: TypeAlias = MatchMethodName | int
PadMode: TypeAlias = Literal["constant", "edge", "linear_ramp", "maximum", "mean", "median", "minimum",
                             "reflect", "symmetric", "wrap", "empty"]
Subpixel: TypeAlias = Literal["parabolic", "gaussian", "centroid"]


def _real(value, name, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        want = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
        raise ValueError(f"{name} must be finite{want}, got {value!r}")
    return value


def match_method(method):
    """A method name or OpenCV constant (0-5) as its code."""
    if isinstance(method, str):
        if method not in MATCH_METHODS:
            opts = ", ".join(repr(m) for m in MATCH_METHODS)
            raise ValueError(f"method must be one of {opts} (or OpenCV's constants 0-5), got {method!r}")
        return MATCH_METHODS.index(method)
    if isinstance(method, numbers.Integral) and not isinstance(method, bool):
        if 0 <= int(method) <= 5:
            return int(method)
        raise ValueError(f"method must be one of OpenCV's constants 0-5 (or a name), got {method!r}")
    raise TypeError(f"method must be a name such as 'ccoeff_normed' or an int 0-5, got {method!r}")


@dataclass
class MatchProblem:
    """A validated match_template call.

    ``image`` is (H, W, C) in its own (real, numeric) dtype; ``templates``
    is (T, h, w, C) float64 with NaN pixels set to 0 (their weight is 0);
    ``weights`` is None (every template pixel counts fully) or (T, h, w, C)
    float64 >= 0. ``dtype`` is the result's dtype.
    """

    image: np.ndarray
    templates: np.ndarray
    weights: object
    method: int
    pad_input: bool
    mode: str
    constant_values: float
    overlap_ratio: float
    num_threads: int
    dtype: np.dtype
    stacked: bool


def _real_array(value, name, ndim):
    arr = as_array(value, name, ndim=ndim)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    return arr


def match_template_args(image, template, method, mask, pad_input, mode, constant_values, overlap_ratio,
                        num_threads):
    """Validate the arguments of ``match_template``."""
    img = _real_array(image, "image", ndim=(2, 3))
    tpl = _real_array(template, "template", ndim=(2, 3, 4))
    code = match_method(method)
    if not isinstance(pad_input, (bool, np.bool_)):
        raise TypeError(f"pad_input must be True or False, got {pad_input!r}")
    pad_input = bool(pad_input)
    choice(mode, "mode", PAD_MODES)
    if isinstance(constant_values, bool) or not isinstance(constant_values, numbers.Real):
        raise TypeError(f"constant_values must be a real number, got {constant_values!r}")
    overlap_ratio = _real(overlap_ratio, "overlap_ratio", 0.0, 1.0)
    nthreads = resolve_threads(num_threads)

    colour = img.ndim == 3
    C = img.shape[2] if colour else 1
    stacked = tpl.ndim == img.ndim + 1
    if tpl.ndim not in (img.ndim, img.ndim + 1):
        raise ValueError(
            f"template must be (h, w{', C' if colour else ''}) or a stack (T, h, w{', C' if colour else ''}) "
            f"for an image of shape {img.shape}, got shape {tpl.shape}"
        )
    if colour and tpl.shape[-1] != C:
        raise ValueError(
            f"template has {tpl.shape[-1]} channels (shape {tpl.shape}) but image has {C} (shape {img.shape})"
        )
    if img.size == 0:
        raise ValueError(f"image must not be empty, got shape {img.shape}")
    if tpl.size == 0:
        raise ValueError(f"template must not be empty, got shape {tpl.shape}")
    tpls = tpl if stacked else tpl[None]
    if not colour:
        tpls = tpls[..., None]
    T, h, w = tpls.shape[:3]
    H, W = img.shape[:2]
    if not pad_input and (h > H or w > W):
        raise ValueError(
            f"template of size {(h, w)} is larger than the image {(H, W)}; "
            "it must fit inside the image (or pass pad_input=True)"
        )
    check_output_fits((T, H, W) if pad_input else (T, H - h + 1, W - w + 1), np.float64)

    templates = np.array(tpls, dtype=np.float64, order="C")
    nan = np.isnan(templates)
    if np.isinf(templates).any():
        raise ValueError("template must hold finite values (NaN marks pixels to ignore), got inf")
    weights = None
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"mask must be bool or real numbers (template weights), got dtype {m.dtype}")
        spatial = (h, w)
        allowed = {spatial, (h, w, C) if colour else spatial}
        if stacked:
            allowed |= {(T, h, w), (T, h, w, C) if colour else (T, h, w)}
        if m.shape not in allowed:
            raise ValueError(
                f"mask must have the template's shape {tpl.shape} (or its (h, w) = {spatial}), got {m.shape}"
            )
        if m.dtype.kind in "biu":
            weights = (m != 0).astype(np.float64)  # OpenCV's rule for 8-bit masks: nonzero counts fully
        else:
            weights = m.astype(np.float64)
            if not np.isfinite(weights).all():
                raise ValueError("mask must hold finite weights, got NaN or inf")
            if (weights < 0).any():
                raise ValueError(f"mask weights must be non-negative, got a minimum of {weights.min()}")
        if m.shape == spatial:
            weights = weights[None, :, :, None]
        elif colour and m.shape == (h, w, C):
            weights = weights[None]
        elif m.shape == (T, h, w):
            weights = weights[..., None]
        weights = np.ascontiguousarray(np.broadcast_to(weights, templates.shape))
    if nan.any():
        weights = np.where(nan, 0.0, 1.0 if weights is None else weights)
        templates[nan] = 0.0
    if img.dtype.kind == "f" and img.dtype.itemsize <= 4 and tpl.dtype.kind == "f" and tpl.dtype.itemsize <= 4:
        dtype = np.dtype(np.float32)
    else:
        dtype = np.dtype(np.float64)
    image3 = img if colour else img[:, :, None]
    return MatchProblem(image3, templates, weights, code, pad_input, mode, float(constant_values),
                        overlap_ratio, nthreads, dtype, stacked)


@dataclass
class PeaksProblem:
    """A validated peaks call (``scores`` a 2-D real array)."""

    scores: np.ndarray
    num_peaks: int
    min_distance: int
    threshold: object
    subpixel: object
    minimize: bool


def peaks_args(scores, num_peaks, min_distance, threshold, subpixel, minimize):
    """Validate the arguments of ``peaks``."""
    s = _real_array(scores, "scores", ndim=2)
    num_peaks = positive_int(num_peaks, "num_peaks")
    min_distance = positive_int(min_distance, "min_distance")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be None or a real number, got {threshold!r}")
        if math.isnan(float(threshold)):
            raise ValueError("threshold must not be NaN")
        threshold = float(threshold)
    if subpixel not in SUBPIXEL:
        opts = ", ".join(repr(m) for m in SUBPIXEL)
        raise ValueError(f"subpixel must be one of {opts}, got {subpixel!r}")
    if not isinstance(minimize, (bool, np.bool_)):
        raise TypeError(f"minimize must be True or False, got {minimize!r}")
    return PeaksProblem(s, num_peaks, min_distance, threshold, subpixel, bool(minimize))
# --- normalized_convolution (astropy.convolution.convolve semantics) ----------

#: astropy's boundary rules, and the engine's boundary code each runs on
#: ('extend' and None are laid out by the caller: see fastcorr._engine.normalized).
NORMALIZED_BOUNDARIES = (None, "fill", "wrap", "extend")
NAN_TREATMENTS = ("interpolate", "fill")
#: The ``boundary`` values of normalized_convolution (or None), and its
#: ``nan_treatment`` values, for type checkers.
NormalizedBoundary: TypeAlias = Literal["fill", "wrap", "extend"]
NanTreatment: TypeAlias = Literal["interpolate", "fill"]
#: astropy refuses to normalise a kernel whose sum is below this (its
#: ``1 / MAX_NORMALIZATION``), whatever ``normalization_zero_tol`` says.
MIN_NORMALIZABLE_SUM = 1.0 / 100


@dataclass
class NormalizedProblem:
    """A validated normalized_convolution call.

    ``data`` is the caller's array as given (any layout and real dtype; the
    engine brings it to the compute dtype, float32 or float64, and never
    writes to it); ``certainty`` is None
    (every pixel certain but NaN ones) or an array of the compute dtype in
    [0, 1]; ``kernel`` is finite, in the compute dtype.
    """

    data: np.ndarray
    kernel: np.ndarray
    certainty: object
    boundary: object
    fill_value: float
    nan_treatment: str
    normalize_kernel: bool
    preserve_nan: bool
    zero_tol: float
    return_certainty: bool
    method: str
    num_threads: int
    dtype: np.dtype  # compute dtype
    out_dtype: np.dtype  # result dtype


def _flag(value, name):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def _real_data(value, name):
    arr = as_array(value, name)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {arr.dtype}; normalized_convolution takes real data")
    return arr


def normalized_args(data, kernel, certainty, boundary, fill_value, nan_treatment, normalize_kernel,
                    preserve_nan, normalization_zero_tol, return_certainty, method, num_threads,
                    in_memory=True):
    """Validate the arguments of ``normalized_convolution``.

    A masked array's masked pixels count as missing (certainty 0), as in
    astropy. Every check happens here, before any work. ``in_memory=False``
    (``fastcorr.dask``, whose result is lazy): the result need not fit in
    memory.
    """
    mask = None
    if isinstance(data, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(data) if np.ma.is_masked(data) else None
        data = data.data
    x = _real_data(data, "data")
    if x.ndim not in (1, 2, 3):
        raise ValueError(f"data must be a 1-D, 2-D or 3-D array, got {x.ndim}-D with shape {x.shape}")
    if isinstance(kernel, np.ma.MaskedArray) and np.ma.is_masked(kernel):
        raise ValueError("kernel is a masked array with masked values; fill them first (kernel.filled(0))")
    k = _real_data(kernel, "kernel")
    if k.ndim != x.ndim:
        raise ValueError(
            f"kernel must have as many dimensions as data ({x.ndim}-D), got {k.ndim}-D with shape {k.shape}"
        )
    if k.size == 0:
        raise ValueError(f"kernel must not be empty, got shape {k.shape}")
    if boundary is None and any(n < m for n, m in zip(x.shape, k.shape)):
        raise ValueError(
            f"boundary=None computes only where the kernel fits inside data: kernel of shape {k.shape} "
            f"does not fit in data of shape {x.shape}; use boundary 'fill', 'wrap' or 'extend'"
        )
    if boundary is not None and (not isinstance(boundary, str) or boundary not in NORMALIZED_BOUNDARIES):
        raise ValueError(f"boundary must be one of None, 'fill', 'wrap', 'extend', got {boundary!r}")
    choice(nan_treatment, "nan_treatment", NAN_TREATMENTS)
    if isinstance(fill_value, (bool, np.bool_)) or not isinstance(fill_value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"fill_value must be a real number (NaN allowed), got {fill_value!r}")
    fill_value = float(fill_value)
    normalize_kernel = _flag(normalize_kernel, "normalize_kernel")
    preserve_nan = _flag(preserve_nan, "preserve_nan")
    return_certainty = _flag(return_certainty, "return_certainty")
    if isinstance(normalization_zero_tol, bool) or not isinstance(normalization_zero_tol, numbers.Real):
        raise TypeError(f"normalization_zero_tol must be a real number, got {normalization_zero_tol!r}")
    zero_tol = float(normalization_zero_tol)
    if not (zero_tol >= 0 and math.isfinite(zero_tol)):
        raise ValueError(f"normalization_zero_tol must be finite and >= 0, got {normalization_zero_tol!r}")
    choice(method, "method", SIGNAL_METHODS)
    nthreads = resolve_threads(num_threads)

    kind, size = x.dtype.kind, x.dtype.itemsize
    if kind == "f":
        out_dtype = x.dtype
        dtype = np.dtype(np.float32 if size <= 4 else np.float64)
    else:  # integers
        out_dtype = dtype = np.dtype(np.float64)
    # The result has data's shape; neither it nor the kernel may outgrow the
    # machine (a broadcast view can claim any size without memory). data
    # itself is brought to the compute dtype by the engine, not here: a
    # zero-memory stand-in (fastcorr.dask) must not be materialised.
    if in_memory:
        check_output_fits(x.shape, dtype, "result")
    check_output_fits(k.shape, dtype, "kernel")
    k = np.ascontiguousarray(k, dtype=dtype)
    if not np.isfinite(k).all():
        raise ValueError(
            "kernel holds NaN or inf; normalized_convolution needs a finite kernel "
            "(astropy's convolve returns NaN everywhere for such a kernel)"
        )

    c = None
    if certainty is not None:
        try:
            carr = np.asarray(certainty)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"certainty must be array-like of numbers in [0, 1]: {exc}") from None
        certainty_dtype(carr.dtype)
        if carr.shape != x.shape:
            raise ValueError(f"certainty must have the shape of data {x.shape}, got {carr.shape}")
        c = np.ascontiguousarray(carr, dtype=dtype)
        if c.size and not (np.min(c) >= 0 and np.max(c) <= 1):  # NaN fails both
            bad = c[~((c >= 0) & (c <= 1))]
            raise ValueError(
                f"certainty must hold values in [0, 1] (0: missing, 1: certain), got {bad.flat[0]!r}"
                + (f" and {bad.size - 1} more outside [0, 1]" if bad.size > 1 else "")
            )
    if mask is not None:
        keep = (~mask).astype(dtype)
        c = keep if c is None else c * keep
    return NormalizedProblem(x, k, c, boundary, fill_value, nan_treatment, normalize_kernel, preserve_nan,
                             zero_tol, return_certainty, method, nthreads, dtype, np.dtype(out_dtype))


def certainty_dtype(dtype):
    """A certainty's dtype: real numbers, or bool (a mask of the valid pixels)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return dtype
    if dtype.kind == "c":
        raise TypeError(f"certainty has complex dtype {dtype}; it must hold real values in [0, 1]")
    _real_data(np.empty(0, dtype), "certainty")  # TypeError naming certainty for object, str, ...
    return dtype


def kernel_sum_check(total, zero_tol, interpolating):
    """astropy's rule: a kernel that must be normalised (or interpolate
    missing pixels) must not sum to (nearly) zero: ValueError naming kernel."""
    if total < MIN_NORMALIZABLE_SUM or abs(total) <= zero_tol:
        why = ("nan_treatment='interpolate' divides by the kernel's weights over the certain pixels"
               if interpolating else "normalize_kernel=True divides by it")
        raise ValueError(
            f"kernel sums to {total!r}, too close to zero (or negative) to be normalised: {why}. "
            f"A kernel must sum to at least {MIN_NORMALIZABLE_SUM} and more than "
            f"normalization_zero_tol here; for a zero-sum kernel use normalize_kernel=False"
            + (" and nan_treatment='fill'" if interpolating else "")
        )


# ---------------------------------------------------------------- out= (issue 21)

def out_arg(out, shape, dtype, inputs, name="out"):
    """Check an ``out=`` array: a writeable, C-contiguous ndarray of exactly
    ``shape`` and ``dtype`` that shares no memory with any of ``inputs``
    (None passes through). Returns it."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, but the result has shape {shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, but the result has dtype {dtype} "
                         "(fastcorr does not cast into out: pass an array of the result's dtype)")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (numpy.ascontiguousarray or numpy.empty give one)")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for other_name, other in inputs:
        if isinstance(other, np.ndarray) and np.may_share_memory(out, other):
            raise ValueError(f"{name} overlaps {other_name}: the result cannot be written over an input "
                             "it is still being computed from")
    return out


# ---------------------------------------------------------------- ndimage (fastcorr.ndimage)
# scipy.ndimage's argument rules. Where scipy.ndimage raises RuntimeError,
# NdimageArgumentError is raised: both a ValueError (fastcorr's rule, §3) and
# a RuntimeError (what scipy's callers and tests catch).

class NdimageArgumentError(ValueError, RuntimeError):
    """A bad argument of a ``fastcorr.ndimage`` filter.

    Both a ValueError (fastcorr's rule for bad arguments) and a RuntimeError
    (what scipy.ndimage raises there, and its callers catch).
    """


#: ndimage's mode names -> the kernels' boundary codes (reflect = 'symm').
NDIMAGE_MODES = {"reflect": 2, "grid-mirror": 2, "constant": 0, "grid-constant": 0,
                 "nearest": 3, "mirror": 4, "wrap": 1, "grid-wrap": 1}
NDIMAGE_METHODS = ("auto", "direct", "im2col", "fft", "separable")
NdimageMode: TypeAlias = Literal["reflect", "grid-mirror", "constant", "grid-constant",
                                 "nearest", "mirror", "wrap", "grid-wrap"]
NdimageMethod: TypeAlias = Literal["auto", "direct", "im2col", "fft", "separable"]


def ndimage_array(value, name="input"):
    """The input of a filter as an array (TypeError for unusable dtypes)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b":
        return arr
    return as_array(arr, name)


def ndimage_mode(mode):
    """The boundary code of one ndimage mode name."""
    if isinstance(mode, str) and mode in NDIMAGE_MODES:
        return NDIMAGE_MODES[mode]
    raise NdimageArgumentError(
        f"boundary mode not supported: mode must be one of {', '.join(map(repr, NDIMAGE_MODES))}, got {mode!r}")


def ndimage_sequence(value, rank, name):
    """A scalar repeated ``rank`` times, or a sequence of exactly ``rank`` items."""
    if not isinstance(value, str) and np.iterable(value):
        items = list(value)
        if len(items) != rank:
            raise NdimageArgumentError(
                f"sequence argument must have length equal to input rank: {name} has "
                f"{len(items)} entries for {rank} axes")
        return items
    return [value] * rank


def ndimage_axes(axes, ndim):
    """Normalised, unique axes (all of them for None), as scipy.ndimage."""
    if axes is None:
        return tuple(range(ndim))
    # a non-integer axis: operator.index's TypeError ("... cannot be
    # interpreted as an integer"), as scipy
    if np.isscalar(axes):
        axes = (operator_index(axes),)
    elif np.iterable(axes):
        axes = tuple(operator_index(a) for a in axes)
    else:
        raise ValueError("axes must be an integer, iterable of integers, or None")
    for a in axes:
        if a < -ndim or a > ndim - 1:
            raise ValueError(f"specified axis: {a} is out of range for an input of {ndim} dimensions")
    axes = tuple(a % ndim for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError("axes must be unique")
    return axes


def operator_index(value):
    import operator
    return operator.index(value)


def ndimage_axis(axis, ndim):
    """One axis in [0, ndim) (numpy's AxisError, a ValueError, otherwise)."""
    return np.lib.array_utils.normalize_axis_index(operator_index(axis), ndim) if hasattr(np.lib, "array_utils") \
        else np.core.multiarray.normalize_axis_index(operator_index(axis), ndim)


def ndimage_origin(origin, size):
    """The origin of a filter of ``size`` taps, within scipy's bounds."""
    try:
        o = operator_index(origin)
    except TypeError:
        o = int(origin)
    if o < -(size // 2) or o > (size - 1) // 2:
        raise ValueError(
            f"Invalid origin {o}; origin must satisfy -(size // 2) <= origin <= (size - 1) // 2 "
            f"for a filter of {size} taps")
    return o


def ndimage_output(output, input, complex_output=False, lazy=False):
    """The output array of a filter: new (None, a dtype) or the one given.
    With ``lazy``, a new output is returned as its dtype (the filter then
    returns its result array itself, with no copy)."""
    shape = input.shape

    def new(dt):
        return np.dtype(dt) if lazy else np.zeros(shape, dtype=dt)

    if output is None:
        if complex_output:
            return new(np.promote_types(input.dtype, np.complex64))
        return new(input.dtype)
    if isinstance(output, (type, np.dtype)):
        dt = np.dtype(output)
        if complex_output and dt.kind != "c":
            warnings.warn("promoting specified output dtype to complex", stacklevel=4)
            dt = np.promote_types(dt, np.complex64)
        return new(dt)
    if isinstance(output, str):
        dt = np.dtype(output)
        if complex_output and dt.kind != "c":
            raise NdimageArgumentError("output must have complex dtype")
        if not issubclass(dt.type, np.number):
            raise NdimageArgumentError("output must have numeric dtype")
        return new(dt)
    if not isinstance(output, np.ndarray):
        raise TypeError(f"output must be None, a dtype or a numpy array, got {type(output).__name__}")
    if output.shape != shape:
        raise NdimageArgumentError(f"output shape not correct: {output.shape}, expected {shape}")
    if complex_output and output.dtype.kind != "c":
        raise NdimageArgumentError("output must have complex dtype")
    if output.dtype.kind in "OSUVMm" or not output.flags.writeable:
        raise TypeError(f"output must be a writeable numeric array, got dtype {output.dtype}")
    return output


def ndimage_weights(weights, name="weights"):
    """A filter's weights as a numeric array."""
    w = np.asarray(weights)
    if w.dtype.kind == "b":
        w = w.astype(np.float64)
    return as_array(w, name)


def ndimage_method(method):
    choice(method, "method", NDIMAGE_METHODS)
    return method


# --- N-D correlate / convolve (scipy.signal.correlate semantics; fastcorr._api.nd) ---

ND_METHODS = ("auto", "direct", "fft")
#: The N-D methods as a type, for the public API's annotations.
NdMethod: TypeAlias = Literal["auto", "direct", "fft"]
#: correlate's ``lags``: one int, or per correlated axis an int or a (lo, hi) pair.
Lags: TypeAlias = int | tuple[int, int] | list[Any] | tuple[Any, ...]


@dataclass
class NdProblem:
    """A validated N-D correlate / convolve call."""

    in1: np.ndarray
    in2: np.ndarray
    mode: str
    method: str
    axes: list          # the correlated axes (scipy.signal.fftconvolve's rule: length-1 axes dropped)
    given_axes: bool    # whether ``axes`` was passed (else every axis is correlated, none broadcast)
    lags: list | None   # per correlated axis: (lo, hi), inclusive
    dtype: np.dtype
    num_threads: int
    swapped: bool       # 'valid' with in2 the larger input
    requested_axes: list  # the axes as given (before length-1 axes are dropped)


def _nd_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def nd_axes_arg(axes, ndim):
    """``axes`` as a sorted list of distinct non-negative axes (None: all)."""
    if axes is None:
        return list(range(ndim))
    items = [axes] if isinstance(axes, numbers.Integral) and not isinstance(axes, (bool, np.bool_)) else axes
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"axes must be an int or a sequence of ints, got {axes!r}") from None
    if not items:
        raise ValueError("axes, when given, must name at least one axis")
    out = []
    for a in items:
        a = _nd_int(a, "axes")
        if not -ndim <= a < ndim:
            raise ValueError(f"axes: axis {a} is out of range for {ndim}-D inputs")
        a %= ndim
        if a in out:
            raise ValueError(f"axes must not repeat an axis, got {axes!r}")
        out.append(a)
    return sorted(out)


def nd_lags_arg(lags, naxes):
    """``lags`` as one inclusive (lo, hi) pair per correlated axis."""
    def pair(v, what):
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
            v = int(v)
            if v < 0:
                raise ValueError(f"{what} must be a non-negative int L (lags -L..L) or a (lo, hi) pair, got {v}")
            return (-v, v)
        try:
            lo, hi = v
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be an int L or a (lo, hi) pair of ints, got {v!r}") from None
        lo, hi = _nd_int(lo, what), _nd_int(hi, what)
        if hi < lo:
            raise ValueError(f"{what} must have lo <= hi, got ({lo}, {hi})")
        return (lo, hi)

    if isinstance(lags, numbers.Integral) and not isinstance(lags, (bool, np.bool_)):
        return [pair(lags, "lags")] * naxes
    try:
        items = list(lags)
    except TypeError:
        raise TypeError(f"lags must be an int, a (lo, hi) pair or a sequence of them, got {lags!r}") from None
    if naxes == 1 and len(items) == 2 and all(isinstance(v, numbers.Number) for v in items):
        return [pair(tuple(items), "lags")]  # a bare (lo, hi) pair for one correlated axis
    if len(items) != naxes:
        raise ValueError(f"lags must have one entry per correlated axis ({naxes}), got {len(items)}: {lags!r}")
    return [pair(v, f"lags[{i}]") for i, v in enumerate(items)]


def nd_args(func, in1, in2, mode, method, axes, lags, num_threads):
    """Validate the arguments of ``correlate`` / ``convolve`` (N-D)."""
    a = as_array(in1, "in1")
    b = as_array(in2, "in2")
    choice(mode, "mode", MODES)
    choice(method, "method", ND_METHODS)
    nthreads = resolve_threads(num_threads)
    if a.ndim != b.ndim:
        raise ValueError(
            f"in1 and in2 should have the same dimensionality: {func} got in1 of shape {a.shape} "
            f"and in2 of shape {b.shape}"
        )
    given = axes is not None
    ax = nd_axes_arg(axes, a.ndim) if a.ndim else []
    requested = list(ax)
    if given and a.ndim == 0:
        raise ValueError("axes cannot be given for 0-D inputs")
    if given:
        for d in range(a.ndim):
            if d not in ax and a.shape[d] != b.shape[d] and 1 not in (a.shape[d], b.shape[d]):
                raise ValueError(
                    f"incompatible shapes for in1 and in2: {a.shape} and {b.shape} (axis {d} is not in "
                    f"axes, so its lengths must match or one must be 1)"
                )
        ax = [d for d in ax if a.shape[d] != 1 and b.shape[d] != 1]
    dtype = signal_result_dtype(a.dtype, b.dtype)
    swapped = False
    if mode == "valid" and a.ndim:
        ok1 = all(a.shape[d] >= b.shape[d] for d in ax)
        ok2 = all(b.shape[d] >= a.shape[d] for d in ax)
        if not (ok1 or ok2):
            raise ValueError(
                "For 'valid' mode, one must be at least as large as the other in every dimension: "
                f"in1 has shape {a.shape}, in2 has shape {b.shape}"
            )
        swapped = not ok1
        if a.size == 0 or b.size == 0:
            raise ValueError(f"{func} in 'valid' mode needs non-empty inputs: in1 {a.shape}, in2 {b.shape}")
    lag_pairs = None
    if lags is not None:
        if func != "correlate":
            raise TypeError(f"{func} has no lags argument")
        if mode != "full":
            raise ValueError(f"lags needs mode='full' (lags are numbered as the full correlation's), got mode={mode!r}")
        if a.ndim == 0:
            raise ValueError("lags cannot be given for 0-D inputs")
        if given:
            # lags name the axes given (a length-1 axis has the lone lag 0 there)
            full_axes = nd_axes_arg(axes, a.ndim)
            lag_pairs = dict(zip(full_axes, nd_lags_arg(lags, len(full_axes))))
            ax = full_axes
        else:
            lag_pairs = dict(zip(ax, nd_lags_arg(lags, len(ax))))
        lag_pairs = [lag_pairs[d] for d in ax]
    return NdProblem(a, b, mode, method, ax, given, lag_pairs, np.dtype(dtype), nthreads, swapped, requested)
# --- particle image velocimetry (piv: OpenPIV's extended_search_area_piv) -------

PIV_CORRELATION_METHODS = ("circular", "linear")
PIV_SUBPIXEL_METHODS = ("gaussian", "parabolic", "centroid")
PIV_SIG2NOISE_METHODS = ("peak2peak", "peak2mean", None)
PivCorrelationMethod: TypeAlias = Literal["circular", "linear"]
PivSubpixelMethod: TypeAlias = Literal["gaussian", "parabolic", "centroid"]
PivSig2NoiseName: TypeAlias = Literal["peak2peak", "peak2mean"]
PivSig2NoiseMethod: TypeAlias = PivSig2NoiseName | None
#: Frame dtypes correlated in float32 (any other: float64).
PIV_SINGLE = tuple(np.dtype(t) for t in (np.float32, np.float16, np.uint8, np.int8, np.uint16, np.int16))


@dataclass(frozen=True)
class PivProblem:
    frame_a: Any
    frame_b: Any
    dtype: Any              # the working dtype: float32 (float32/float16 frames) or float64
    window: tuple           # (rows, cols) of the interrogation window in frame A
    search: tuple           # (rows, cols) of the search area (>= window)
    overlap: tuple          # (rows, cols)
    field: tuple            # (rows, cols) of the vector field
    dt: float
    correlation_method: str
    normalized_correlation: bool
    subpixel_method: str
    sig2noise_method: Any   # 'peak2peak', 'peak2mean' or None
    width: int
    num_threads: int


def _piv_pair(value, name, minimum):
    """An int or a pair of ints (rows, cols), each >= ``minimum`` (None: no lower bound)."""
    items = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}") from None
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}")
    if any(abs(int(v)) > MAX_GEOMETRY for v in items):
        raise ValueError(f"{name} must be at most {MAX_GEOMETRY} in magnitude, got {value!r}")
    if minimum is not None and any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    return int(items[0]), int(items[1])


def piv_args(frame_a, frame_b, window_size, overlap, search_area_size, dt, correlation_method,
             normalized_correlation, subpixel_method, sig2noise_method, width, num_threads):
    """Check piv's arguments (OpenPIV's extended_search_area_piv rules, errors naming the argument)."""
    a = as_array(frame_a, "frame_a", ndim=2)
    b = as_array(frame_b, "frame_b", ndim=2)
    for name, arr in (("frame_a", a), ("frame_b", b)):
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} is complex ({arr.dtype}); piv needs real grey levels")
    if b.shape != a.shape:
        raise ValueError(f"frame_b must have frame_a's shape {a.shape}, got {b.shape}")
    window = _piv_pair(window_size, "window_size", 1)
    search = window if search_area_size is None else _piv_pair(search_area_size, "search_area_size", 1)
    ov = _piv_pair(overlap, "overlap", None)
    if search[0] < window[0] or search[1] < window[1]:
        raise ValueError(f"search_area_size {search} must be at least window_size {window} in every dimension")
    if ov[0] >= search[0] or ov[1] >= search[1]:
        raise ValueError(f"overlap {ov} must be smaller than the search area {search} in every dimension")
    if search[0] > a.shape[0] or search[1] > a.shape[1]:
        what = "search_area_size" if search_area_size is not None else "window_size"
        raise ValueError(f"{what} {search} must fit in the frames (shape {a.shape})")
    field = tuple((n - s) // (s - o) + 1 for n, s, o in zip(a.shape, search, ov))
    dt = _real(dt, "dt")
    if dt == 0:
        raise ValueError("dt must be non-zero (the velocities are displacements / dt)")
    if correlation_method not in PIV_CORRELATION_METHODS:
        raise ValueError(f"correlation_method must be 'circular' or 'linear', got {correlation_method!r}")
    if correlation_method == "circular" and search[1] == 1:
        what = "search_area_size" if search_area_size is not None else "window_size"
        raise ValueError(
            f"{what} {search} has one column: its 'circular' map (OpenPIV's, n - 1 columns for an odd n) "
            "would be empty; use 2 columns or more, or correlation_method='linear'")
    if not isinstance(normalized_correlation, (bool, np.bool_)):
        raise TypeError(f"normalized_correlation must be True or False, got {normalized_correlation!r}")
    if subpixel_method not in PIV_SUBPIXEL_METHODS:
        raise ValueError(
            f"subpixel_method must be 'gaussian', 'parabolic' or 'centroid', got {subpixel_method!r}")
    if sig2noise_method not in PIV_SIG2NOISE_METHODS:
        raise ValueError(
            f"sig2noise_method must be 'peak2peak', 'peak2mean' or None, got {sig2noise_method!r}")
    if isinstance(width, bool) or not isinstance(width, numbers.Integral):
        raise TypeError(f"width must be an int >= 0, got {width!r}")
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    # Single precision for float32 frames, and for camera frames (integers of
    # up to 16 bits: exact in float32, and their correlation peaks move by
    # ~1e-6 px from float64's); float64 otherwise.
    single = all(d in PIV_SINGLE for d in (a.dtype, b.dtype))
    dtype = np.dtype(np.float32 if single else np.float64)
    return PivProblem(a, b, dtype, window, search, ov, field, dt, correlation_method,
                      bool(normalized_correlation), subpixel_method, sig2noise_method,
                      int(min(width, MAX_GEOMETRY)), resolve_threads(num_threads))


# ---------------------------------------------------------------- normalized convolution's out= (issue 25)

def normalized_out_arg(out, p, data, kernel, certainty):
    """``normalized_convolution``'s ``out=``: as :func:`out_arg`, shaped like
    the data and of the result's dtype (``p.out_dtype``), overlapping none of
    the caller's ``data`` (and its mask), ``kernel`` and ``certainty``."""
    if out is None:
        return None
    inputs = [("data", data), ("kernel", kernel), ("certainty", certainty)]
    if isinstance(data, np.ma.MaskedArray):
        inputs.append(("data's mask", np.ma.getmask(data)))
    return out_arg(out, p.data.shape, p.out_dtype, inputs)
