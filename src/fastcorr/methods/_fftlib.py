"""The FFT library under the FFT method: ``scipy.fft``, or ducc0 when it is installed.

ducc0 (the C++ library ``scipy.fft``'s pocketfft grew out of, maintained by
the same author) transforms the sizes fastcorr plans 1.3-1.7x faster here
(1024² float64 correlation by hand: 8.6 against 12.9 ms, same buffers). It
is optional (``pip install "fastcorr[fft]"``) and used automatically when
importable, unless

* the user has set a ``scipy.fft`` backend (``scipy.fft.set_backend`` or
  ``set_global_backend``, pyFFTW's or mkl_fft's): then every transform goes
  through ``scipy.fft``, which routes it there, as before;
* ``FASTCORR_FFT=scipy`` is in the environment, or :func:`set_library`
  chose 'scipy'.

The functions here take the subset of ``scipy.fft``'s arguments the FFT
method uses (``n`` / ``s``, ``axis`` / ``axes``, ``workers``,
``overwrite_x``) and give its results (the same values to rounding; ducc0
keeps float32 in single precision as pocketfft does).
"""
import os

import numpy as np
import scipy.fft as sfft

try:
    import ducc0.fft as _ducc
except ImportError:  # the optional extra is not installed
    _ducc = None

try:  # scipy's private uarray state: which scipy.fft backend is in force (read per transform)
    from scipy._lib._uarray import _backend as _uarray
    from scipy.fft._backend import _ScipyBackend
except ImportError:  # another scipy layout: assume a user backend may be set (see _user_backend)
    _uarray = _ScipyBackend = None

__all__ = ["rfft", "irfft", "fft", "ifft", "fft2", "ifft2", "rfft2", "irfft2", "next_fast_len",
           "set_library", "library", "available"]

next_fast_len = sfft.next_fast_len

_choice = os.environ.get("FASTCORR_FFT", "auto").strip().lower() or "auto"


def available():
    """The FFT libraries this installation can use, in order of preference."""
    return ("ducc0", "scipy") if _ducc is not None else ("scipy",)


def set_library(name):
    """Choose the FFT library: 'auto' (ducc0 if installed, else scipy.fft),
    'ducc0' or 'scipy'. Returns the previous choice."""
    global _choice
    if name not in ("auto", "ducc0", "scipy"):
        raise ValueError(f"FFT library must be 'auto', 'ducc0' or 'scipy', got {name!r}")
    if name == "ducc0" and _ducc is None:
        raise ValueError("FFT library 'ducc0' is not installed (pip install ducc0, or fastcorr[fft])")
    previous, _choice = _choice, name
    return previous


def _user_backend():
    """True when a scipy.fft backend other than scipy's own is in force
    (global or in a ``set_backend`` context). Read from uarray's state; if
    that cannot be read, assume one is (and defer to scipy.fft)."""
    try:
        globals_, locals_, _ = _uarray.get_state()._pickle()
        domain = "numpy.scipy.fft"
        entry = globals_.get(domain)
        if entry is not None and entry[0] is not None and entry[0][0] not in (None, _ScipyBackend):
            return True
        if entry is not None and entry[1]:  # registered backends
            return True
        local = locals_.get(domain)
        return bool(local and (local[0] or local[1]))
    except Exception:
        return True


def library():
    """The library the next transform runs on: 'ducc0' or 'scipy.fft'
    (with the user's backend, if one is set)."""
    if _ducc is None or _choice == "scipy" or _user_backend():
        return "scipy.fft"
    return "ducc0"


def _use_ducc():
    return _ducc is not None and _choice != "scipy" and not _user_backend()


def _fit(a, n, axis):
    """``a`` cut or zero-padded to length ``n`` along ``axis`` (as scipy.fft's
    ``n``), and whether that made a new array (which may be overwritten)."""
    if n is None or a.shape[axis] == n:
        return a, False
    index = [slice(None)] * a.ndim
    if a.shape[axis] > n:
        index[axis] = slice(0, n)
        return a[tuple(index)], False
    shape = list(a.shape)
    shape[axis] = n
    padded = np.zeros(shape, dtype=a.dtype)
    index[axis] = slice(0, a.shape[axis])
    padded[tuple(index)] = a
    return padded, True


def _real(a):
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _complex(a):
    a = np.asarray(a)
    if a.dtype in (np.complex64, np.complex128):
        return a
    return a.astype(np.complex64 if a.dtype == np.float32 else np.complex128)


def _threads(workers):
    return max(1, int(workers or 1))


def _fit_all(a, lengths, axes):
    """:func:`_fit` along each of ``axes`` (``lengths`` None: as they are)."""
    fresh = False
    if lengths is not None:
        for n, axis in zip(lengths, axes):
            a, padded = _fit(a, n, axis)
            fresh = fresh or padded
    return a, fresh


def _r2c(x, s, axes, workers):
    a = _fit_all(_real(x), s, axes)[0]
    return _ducc.r2c(a, axes=tuple(axes), forward=True, nthreads=_threads(workers))


def _c2r(x, s, axes, workers, overwrite_x):
    """The inverse real transform over ``axes``, the last one of output length ``s[-1]``."""
    a = _complex(x)
    if s is None:
        s = [a.shape[axis] for axis in axes[:-1]] + [2 * (a.shape[axes[-1]] - 1)]
    fitted, padded = _fit_all(a, list(s[:-1]) + [s[-1] // 2 + 1], axes)
    return _ducc.c2r(fitted, axes=tuple(axes), lastsize=int(s[-1]), forward=False, inorm=2,
                     nthreads=_threads(workers),
                     allow_overwriting_input=padded or a is not x or bool(overwrite_x))


def _c2c(x, s, axes, workers, overwrite_x, forward):
    """c2c over ``axes`` (lengths ``s``), in place when the array is ours to overwrite."""
    a = _complex(x)
    fitted, padded = _fit_all(a, s, axes)
    writable = (padded or a is not x or overwrite_x) and fitted.flags.writeable and fitted.flags.c_contiguous
    return _ducc.c2c(fitted, axes=tuple(axes), forward=forward, inorm=0 if forward else 2,
                     out=fitted if writable else None, nthreads=_threads(workers))


def _one(n):
    return None if n is None else (int(n),)


def rfft(x, n=None, axis=-1, workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.rfft(x, n=n, axis=axis, workers=workers, overwrite_x=overwrite_x)
    return _r2c(x, _one(n), (axis,), workers)


def irfft(x, n=None, axis=-1, workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.irfft(x, n=n, axis=axis, workers=workers, overwrite_x=overwrite_x)
    return _c2r(x, _one(n), (axis,), workers, overwrite_x)


def fft(x, n=None, axis=-1, workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.fft(x, n=n, axis=axis, workers=workers, overwrite_x=overwrite_x)
    return _c2c(x, _one(n), (axis,), workers, overwrite_x, True)


def ifft(x, n=None, axis=-1, workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.ifft(x, n=n, axis=axis, workers=workers, overwrite_x=overwrite_x)
    return _c2c(x, _one(n), (axis,), workers, overwrite_x, False)


def fft2(x, s=None, axes=(-2, -1), workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.fft2(x, s=s, axes=axes, workers=workers, overwrite_x=overwrite_x)
    return _c2c(x, s, axes, workers, overwrite_x, True)


def ifft2(x, s=None, axes=(-2, -1), workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.ifft2(x, s=s, axes=axes, workers=workers, overwrite_x=overwrite_x)
    return _c2c(x, s, axes, workers, overwrite_x, False)


def rfft2(x, s=None, axes=(-2, -1), workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.rfft2(x, s=s, axes=axes, workers=workers, overwrite_x=overwrite_x)
    return _r2c(x, s, axes, workers)


def irfft2(x, s=None, axes=(-2, -1), workers=None, overwrite_x=False):
    if not _use_ducc():
        return sfft.irfft2(x, s=s, axes=axes, workers=workers, overwrite_x=overwrite_x)
    return _c2r(x, s, axes, workers, overwrite_x)


# --- whole-array real transforms into the caller's buffers (image registration) ---

try:  # scipy's own pocketfft binding (private: its signature is checked before use)
    from scipy.fft._pocketfft import pypocketfft as _pocket
    if not (hasattr(_pocket, "r2c") and hasattr(_pocket, "c2r") and "out" in (_pocket.r2c.__doc__ or "")):
        _pocket = None
except ImportError:
    _pocket = None


def _rows_r2c(x, out, nt):
    """The real transform along the last axis into ``out``. float32: scipy's
    pocketfft, ~1.25x faster than ducc0 0.42 on these rows here (2048 rows
    of 2048: 6.7 against 8.5 ms; float64 the other way round: 7.1 against
    14.5 ms with ducc0)."""
    if x.dtype == np.float32 and _pocket is not None:
        return _pocket.r2c(x, (x.ndim - 1,), True, 0, out, nt)
    return _ducc.r2c(x, axes=(x.ndim - 1,), forward=True, out=out, nthreads=nt)


def _rows_c2r(x, out, nt):
    """The inverse real transform along the last axis into ``out`` (/ its length)."""
    if out.dtype == np.float32 and _pocket is not None:
        return _pocket.c2r(x, (x.ndim - 1,), out.shape[-1], False, 2, out, nt)
    return _ducc.c2r(x, axes=(x.ndim - 1,), lastsize=out.shape[-1], forward=False, inorm=2,
                     out=out, nthreads=nt, allow_overwriting_input=True)


def rfftn_into(x, out, workers=None):
    """``scipy.fft.rfftn(x)`` over every axis of a float32 / float64 array:
    written into ``out`` (C-contiguous, of rfftn's shape and complex dtype)
    and returned with ducc0; with scipy.fft, its own new array (``out``
    unused)."""
    if not _use_ducc():
        return sfft.rfftn(x, workers=workers)
    nt = _threads(workers)
    res = _rows_r2c(x, out, nt)
    if x.ndim > 1:
        _ducc.c2c(res, axes=tuple(range(x.ndim - 1)), forward=True, out=res, nthreads=nt)
    return res


def irfftn_into(x, out, workers=None, overwrite_x=False, scratch=None):
    """``scipy.fft.irfftn(x, s=out.shape)`` over every axis, written into
    ``out`` (which may be a view with padded rows: its strides are kept)
    and returned with ducc0; with scipy.fft, its own new array.

    With ducc0 the leading axes are transformed first, in ``x`` itself when
    ``overwrite_x`` (x is then lost), else into ``scratch`` (C-contiguous,
    shaped and typed as ``x``; allocated when None), and the last axis
    written into ``out`` (no array allocated by the transforms: a fresh
    temporary of this size costs its page faults)."""
    if not _use_ducc():
        return sfft.irfftn(x, s=out.shape, workers=workers, overwrite_x=overwrite_x)
    nt = _threads(workers)
    lead = tuple(range(x.ndim - 1))
    if overwrite_x:
        work = x
        if lead:
            _ducc.c2c(x, axes=lead, forward=False, inorm=2, out=x, nthreads=nt)
    else:
        work = np.empty(x.shape, x.dtype) if scratch is None else scratch
        if lead:
            _ducc.c2c(x, axes=lead, forward=False, inorm=2, out=work, nthreads=nt)
        else:
            np.copyto(work, x)
    # (inorm=2: each transform divides by its own lengths, 1/N in all)
    return _rows_c2r(work, out, nt)


# --- one axis pass at a time, for callers that schedule their own bands ---
# (image registration splits each pass into more bands than threads, so that a
# thread slowed by another program on its core holds up only its own bands)

def banded_passes():
    """True when the passes below are available (ducc0 is in use)."""
    return _use_ducc()


def rows_rfft_into(x, out):
    """The real transform along the last axis of ``x`` into ``out``, on one thread."""
    return _rows_r2c(x, out, 1)


def rows_irfft_into(x, out):
    """The inverse real transform along the last axis (divided by its length)
    into ``out``, on one thread; ``x`` may be overwritten."""
    return _rows_c2r(x, out, 1)


def leading_fft_into(x, out, forward):
    """The complex transform over every axis but the last, ``x`` into ``out``
    (which may be ``x``), on one thread; the inverse divides by the lengths."""
    return _ducc.c2c(x, axes=tuple(range(x.ndim - 1)), forward=forward, inorm=0 if forward else 2, out=out,
                     nthreads=1)
