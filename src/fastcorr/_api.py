"""scipy.signal-compatible correlate2d / convolve2d.

Every call reduces to one *offset correlation* (see ``_direct.pyx``)

    out[m, n] = sum_{j, k} w[j, k] * X[m + off0 + j, n + off1 + k]

with X the boundary-extended input. This module does that reduction (modes
to offsets and output shapes, convolution to a flipped kernel, scipy's
'valid' swap and conjugation) and lowers dtypes the method kernels do not
serve natively (complex into real parts, integers into modular uint64,
float16 into float32, long double into a numpy loop).
"""
import numpy as np

from . import _direct, _dispatch
from ._validate import check_output_fits, signal_args

__all__ = ["correlate2d", "convolve2d"]


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", num_threads=None):
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
    boundary : {'fill', 'wrap', 'symm'}
        How ``in1`` is extended beyond its edges: by ``fillvalue``,
        periodically, or by mirror reflection including the edge sample.
    fillvalue : scalar
        Value outside ``in1`` when ``boundary='fill'``.
    method : {'auto', 'direct', 'im2col', 'fft', 'separable'}
        Algorithm; 'auto' picks the fastest one for the case.
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).

    Returns
    -------
    ndarray
        The correlation, of dtype ``np.result_type(in1, in2)`` (float32
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
    return _call("correlate2d", in1, in2, mode, boundary, fillvalue, method, num_threads, False)


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", num_threads=None):
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d``.

    Convolution is correlation with the kernel flipped in both axes.
    Parameters, result and dtype rules are those of :func:`correlate2d`
    (without the conjugation).

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.convolve2d(np.eye(3), [[1, 2], [3, 4]], mode='valid')
    array([[5., 2.],
           [3., 5.]])
    """
    return _call("convolve2d", in1, in2, mode, boundary, fillvalue, method, num_threads, True)


def _call(func, in1, in2, mode, boundary, fillvalue, method, num_threads, convolve):
    out = _direct.plain_call(in1, in2, mode, boundary, fillvalue, method, num_threads, convolve)
    if out is not None:  # a plain call, run without the Python layers below
        return out
    problem = signal_args(func, in1, in2, mode, boundary, fillvalue, method, num_threads)
    return _solve(problem, convolve)


def _offsets(mode, kernel_shape, convolve):
    """Top-left input offset of output (0, 0) and the output-shape rule."""
    offs = []
    for k in kernel_shape:
        if mode == "full":
            offs.append(-(k - 1))
        elif mode == "same":
            # scipy centres an even kernel differently for correlation and
            # convolution: the flipped kernel shifts by one.
            offs.append(-(k // 2) if convolve else -((k - 1) // 2))
        else:
            offs.append(0)
    return tuple(offs)


def output_shape(mode, image_shape, kernel_shape):
    if mode == "full":
        return tuple(s + k - 1 for s, k in zip(image_shape, kernel_shape))
    if mode == "same":
        return tuple(image_shape)
    return tuple(s - k + 1 for s, k in zip(image_shape, kernel_shape))


def _solve(p, convolve):
    x, w = p.in1, p.in2
    if not convolve and w.dtype.kind == "c":
        w = np.conj(w)
    if convolve:
        w = w[::-1, ::-1]
    offsets = _offsets(p.mode, w.shape, convolve)
    shape = output_shape(p.mode, x.shape, w.shape)
    if p.mode == "full" or p.dtype.itemsize > x.dtype.itemsize:  # else no larger than in1
        check_output_fits(shape, p.dtype)
    out = correlate_offset(x, w, shape, offsets, p.boundary, p.fill, p.dtype, p.method, p.num_threads)
    if p.swapped and not convolve:
        out = np.ascontiguousarray(out[::-1, ::-1])
    return out


def correlate_offset(x, w, shape, offsets, boundary, fill, dtype, method, num_threads):
    """Offset correlation in result dtype ``dtype``, lowering dtypes as needed."""
    dtype = np.dtype(dtype)
    if 0 in shape:
        return np.zeros(shape, dtype)
    if x.size == 0 or w.size == 0:
        # Nothing of the image is read: each output is fill * sum(w) (or 0).
        total = np.sum(w, dtype=dtype) if w.size else dtype.type(0)
        return np.full(shape, fill * total if boundary == 0 and x.size == 0 else 0, dtype=dtype)
    if method == "auto":
        method = _dispatch.choose_offset_method(x, w, shape, boundary, dtype, num_threads)
    engine = _dispatch.engine(method)
    kind = dtype.kind
    if kind in "iu":
        return _integer(engine, method, x, w, shape, offsets, boundary, fill, dtype, num_threads)
    if dtype.itemsize > 16 or (kind == "f" and dtype.itemsize > 8):
        # long double: no compiled kernel; exact-dtype numpy loop.
        return _shift_add(x.astype(dtype), w.astype(dtype), shape, offsets, boundary, fill)
    if kind == "f":
        cdtype = np.float32 if dtype.itemsize <= 4 else np.float64
        xr = np.ascontiguousarray(x, dtype=cdtype)
        wr = np.ascontiguousarray(w, dtype=cdtype)
        out = engine.correlate(xr, wr, shape, offsets, boundary, cdtype(fill), num_threads)
        return out.astype(dtype, copy=False)
    # complex
    if getattr(engine, "SERVES_COMPLEX", False):
        xc = np.ascontiguousarray(x, dtype=dtype)
        wc = np.ascontiguousarray(w, dtype=dtype)
        return engine.correlate(xc, wc, shape, offsets, boundary, dtype.type(fill), num_threads)
    return _complex_via_real(engine, x, w, shape, offsets, boundary, fill, dtype, num_threads)


def _complex_via_real(engine, x, w, shape, offsets, boundary, fill, dtype, num_threads):
    """(xr + i xi) * (wr + i wi) as up to four real correlations."""
    rdtype = np.float32 if dtype == np.complex64 else np.float64
    fill = complex(fill)
    parts_x = [(np.ascontiguousarray(x.real, dtype=rdtype), rdtype(fill.real))]
    parts_x.append(
        (np.ascontiguousarray(x.imag, dtype=rdtype), rdtype(fill.imag))
        if x.dtype.kind == "c" or fill.imag
        else None
    )
    wre = np.ascontiguousarray(w.real, dtype=rdtype)
    wim = np.ascontiguousarray(w.imag, dtype=rdtype) if w.dtype.kind == "c" else None
    out = np.zeros(shape, dtype=dtype)

    def corr(part, kernel):
        xs, fv = part
        return engine.correlate(xs, kernel, shape, offsets, boundary, fv, num_threads)

    out.real = corr(parts_x[0], wre)
    if wim is not None:
        out.imag = corr(parts_x[0], wim)
    if parts_x[1] is not None:
        out.imag += corr(parts_x[1], wre)
        if wim is not None:
            out.real -= corr(parts_x[1], wim)
    return out


def _integer(engine, method, x, w, shape, offsets, boundary, fill, dtype, num_threads):
    if not getattr(engine, "SERVES_INTEGER", False):
        raise ValueError(
            f"method={method!r} cannot compute integer inputs exactly; "
            "use method='direct' or 'auto' (or convert the inputs to float)"
        )
    # uint64 arithmetic wraps modulo 2**64; casting back to the result dtype
    # gives numpy's (and scipy's) modular result for every integer type.
    xu = np.ascontiguousarray(x.astype(np.int64, copy=False).view(np.uint64) if x.dtype.kind == "i" else x, dtype=np.uint64)
    wu = np.ascontiguousarray(w.astype(np.int64, copy=False).view(np.uint64) if w.dtype.kind == "i" else w, dtype=np.uint64)
    fu = np.uint64(int(fill) % 2**64)
    out = engine.correlate(xu, wu, shape, offsets, boundary, fu, num_threads)
    if dtype.kind == "i":
        out = out.view(np.int64)
    return out.astype(dtype, copy=False)


def extended_index(idx, n, boundary):
    """Map extended positions to [0, n) (wrap / symm) or -1 (fill)."""
    idx = np.asarray(idx)
    if boundary == 0:
        return np.where((idx >= 0) & (idx < n), idx, -1)
    if boundary == 1:
        return idx % n
    period = idx % (2 * n)
    return np.where(period >= n, 2 * n - 1 - period, period)


def _shift_add(x, w, shape, offsets, boundary, fill):
    """Offset correlation by numpy shift-and-add, in ``x``'s own dtype."""
    rows = extended_index(np.arange(shape[0])[:, None] + offsets[0] + np.arange(w.shape[0]), x.shape[0], boundary)
    cols = extended_index(np.arange(shape[1])[:, None] + offsets[1] + np.arange(w.shape[1]), x.shape[1], boundary)
    out = np.zeros(shape, dtype=x.dtype)
    for j in range(w.shape[0]):
        r = rows[:, j]
        for k in range(w.shape[1]):
            c = cols[:, k]
            vals = x[np.clip(r, 0, None)[:, None], np.clip(c, 0, None)[None, :]]
            mask = (r[:, None] < 0) | (c[None, :] < 0)
            vals = np.where(mask, x.dtype.type(fill), vals)
            out += w[j, k] * vals
    return out
