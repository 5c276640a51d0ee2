"""Threads and build configuration.

``set_num_threads`` sets the process-wide default; ``threads(n)`` overrides it
inside a ``with`` block for the current thread (or asyncio task) only, so
Python threads using different settings do not disturb each other.

Every thread count a call runs with comes from here (:func:`get_num_threads`,
:func:`resolve_threads`), which is also what makes fastcorr survive
``fork()``: GNU OpenMP's thread team does not exist in a forked child, and a
parallel region there waits forever for it. A child forked after this
process may have started a team (after any call given more than one thread)
therefore runs every call on one thread. OpenMP cannot rebuild its team in
the child, and a pool of fastcorr's own would cost every call its hand-off;
a forked worker (multiprocessing, dask's process scheduler, a pre-forking
server) gets its parallelism from its siblings anyway. A child started with
'spawn' or 'forkserver' is a new process and uses threads as usual.
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


#: Whether this process may have started an OpenMP thread team: a call was
#: given more than one thread.
_team_may_exist = False
#: Whether this process is a child forked after that: its calls run serially.
_serial_after_fork = False


def _after_fork_in_child() -> None:
    global _serial_after_fork
    if _team_may_exist:
        _serial_after_fork = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_serial() -> bool:
    """Whether this is a forked child that runs fastcorr on one thread."""
    return _serial_after_fork


def team_threads(n: int) -> int:
    """The threads a call given ``n`` (already checked) runs on: 1 in a child
    forked after this process ran threads, else ``n``."""
    global _team_may_exist
    if n > 1:
        if _serial_after_fork:
            return 1
        _team_may_exist = True
    return n


def get_num_threads() -> int:
    """Number of threads fastcorr uses when a call passes ``num_threads=None``.

    Returns
    -------
    int
        The ``threads(n)`` override active in this thread, else the
        process-wide setting (by default, the CPUs this process may run on);
        1 in a child process forked after its parent ran fastcorr on
        several threads (GNU OpenMP's threads do not survive ``fork()``).

    Examples
    --------
    >>> import fastcorr
    >>> with fastcorr.threads(1):
    ...     fastcorr.get_num_threads()
    1
    """
    global _team_may_exist
    local = _local_threads.get()
    n = _default_threads if local is None else local
    if n > 1:  # team_threads(n), inline: every plain call asks
        if _serial_after_fork:
            return 1
        _team_may_exist = True
    return n


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

    Parameters
    ----------
    n : int
        Threads for the calls made by this thread (or asyncio task) inside
        the ``with`` block, between 1 and 1024; other threads keep theirs.

    Yields
    ------
    int
        ``n``.

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
    return team_threads(_check_threads(num_threads, "num_threads"))


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
        "FFT library": _fft_library(),
        "cpus available": _available_cpus(),
        "threads (default)": _default_threads,
        "threads (now)": get_num_threads(),
        "forked child, serial": "yes (its parent ran OpenMP threads)" if _serial_after_fork else "no",
    }
    return info


def _fft_library():
    from ..methods import _fftlib

    now = _fftlib.library()
    if now == "ducc0":
        import ducc0

        return (f"ducc0 {ducc0.__version__} (installed: used automatically; FASTCORR_FFT=scipy or a "
                "scipy.fft.set_backend in force routes transforms through scipy.fft)")
    if _fftlib.available()[0] == "ducc0":
        return "scipy.fft (ducc0 installed, but scipy.fft chosen or a scipy.fft backend is set)"
    return "scipy.fft (pocketfft, or the scipy.fft backend set; pip install ducc0 for 1.1-1.5x faster FFTs)"


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
