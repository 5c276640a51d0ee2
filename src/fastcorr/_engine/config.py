"""Threads and build configuration.

``set_num_threads`` sets the process-wide default; ``threads(n)`` overrides it
inside a ``with`` block for the current thread (or asyncio task) only, so
Python threads using different settings do not disturb each other.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import platform
import sys
from collections.abc import Iterator

__all__ = ["get_num_threads", "set_num_threads", "threads", "show_config", "config_info"]


def _available_cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_default_threads = _available_cpus()
_local_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar("fastcorr_num_threads", default=None)

#: Upper bound on any thread count; beyond it a request is surely a mistake.
MAX_THREADS = 1024


def _check_threads(n, name="n"):
    import numbers

    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {n!r} of type {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{name} must be between 1 and {MAX_THREADS}, got {n}")
    return n


def get_num_threads() -> int:
    """Number of threads fastcorr uses when a call passes ``num_threads=None``.

    Returns
    -------
    int
        The ``threads(n)`` override active in this thread, else the
        process-wide setting (by default, the CPUs this process may run on).

    Examples
    --------
    >>> import fastcorr
    >>> with fastcorr.threads(1):
    ...     fastcorr.get_num_threads()
    1
    """
    local = _local_threads.get()
    return _default_threads if local is None else local


def set_num_threads(n: int) -> None:
    """Set the process-wide default number of threads.

    Parameters
    ----------
    n : int
        Between 1 and 1024.

    Examples
    --------
    >>> import fastcorr
    >>> old = fastcorr.get_num_threads()
    >>> fastcorr.set_num_threads(1)
    >>> fastcorr.get_num_threads()
    1
    >>> fastcorr.set_num_threads(old)
    """
    global _default_threads
    _default_threads = _check_threads(n)


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """Context manager: use ``n`` threads inside the block (this thread only).

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> with fastcorr.threads(2):
    ...     fastcorr.correlate2d(np.ones((3, 3)), np.ones((2, 2)), 'valid')
    array([[4., 4.],
           [4., 4.]])
    """
    token = _local_threads.set(_check_threads(n))
    try:
        yield n
    finally:
        _local_threads.reset(token)


def resolve_threads(num_threads):
    """The thread count for one call (``None`` means the current setting)."""
    if num_threads is None:
        return get_num_threads()
    return _check_threads(num_threads, "num_threads")


def config_info():
    """Build and runtime configuration as a dict (what ``show_config`` prints)."""
    import numpy as np
    import scipy

    from .._version import __version__
    from ..methods import direct as _direct

    info = {
        "fastcorr": __version__,
        "build system": _direct.BUILD_SYSTEM,
        "compiler": _direct.COMPILER,
        "OpenMP": "yes" if _direct.OPENMP else "NO: kernels run serially (compiler without OpenMP)",
        "SIMD": _direct.SIMD,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "BLAS": _blas_name(),
        "FFT backend": "scipy.fft (default backend: pocketfft; honours scipy.fft.set_backend)",
        "cpus available": _available_cpus(),
        "threads (default)": _default_threads,
        "threads (now)": get_num_threads(),
    }
    return info


def _blas_name():
    try:
        import scipy

        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')} (scipy.linalg.cython_blas)".strip()
    except Exception:  # pragma: no cover - depends on scipy's build metadata
        return "scipy.linalg.cython_blas"


def show_config() -> None:
    """Print version, build, compiler, OpenMP, SIMD, BLAS, FFT and thread settings.

    Examples
    --------
    >>> import fastcorr
    >>> fastcorr.show_config()  # doctest: +ELLIPSIS
    fastcorr: ...
    """
    for key, value in config_info().items():
        print(f"{key}: {value}")
