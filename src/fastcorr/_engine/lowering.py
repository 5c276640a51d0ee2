"""Lowering: one offset correlation in any dtype, on the method given.

The compiled methods serve C-contiguous float32 and float64 (some also
complex, or integers as modular uint64). This module brings every other
dtype to them: complex as real parts, integers in uint64 arithmetic (exact:
the cast back gives the result dtype's modular result), float16 as float32,
long double through a numpy loop in its own precision. Which method runs is
the dispatcher's business (``fastcorr._engine.dispatch``).
"""
import numpy as np

from .geometry import extended_index

__all__ = ["trivial", "correlate_offset"]


def trivial(x, w, shape, boundary, fill, dtype):
    """The offset correlation of an empty input or output (no method needed)."""
    if 0 in shape:
        return np.zeros(shape, dtype)
    # Nothing of the image is read: each output is fill * sum(w) (or 0).
    total = np.sum(w, dtype=dtype) if w.size else dtype.type(0)
    return np.full(shape, fill * total if boundary == 0 and x.size == 0 else 0, dtype=dtype)


def correlate_offset(engine, method, x, w, shape, offsets, boundary, fill, dtype, num_threads, out=None):
    """Offset correlation on ``engine`` (the method ``method``) in result
    dtype ``dtype``, for non-empty ``x``, ``w`` and output; written into
    ``out`` (C-contiguous, ``shape``, ``dtype``) if given: in place by the
    engines that take ``out=`` (``SERVES_OUT``) in their own dtype, else copied."""
    if out is not None:
        if getattr(engine, "SERVES_OUT", False) and dtype in (np.float32, np.float64):
            xr = np.ascontiguousarray(x, dtype=dtype)
            wr = np.ascontiguousarray(w, dtype=dtype)
            return engine.correlate(xr, wr, shape, offsets, boundary, dtype.type(fill), num_threads, out=out)
        out[...] = correlate_offset(engine, method, x, w, shape, offsets, boundary, fill, dtype, num_threads)
        return out
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
