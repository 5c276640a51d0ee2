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
import time
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


#: A threaded call whose calling thread spent this much longer in the
#: kernel than it computed (wall time minus its own CPU time: waiting at the
#: team's closing barrier for a thread the system had not scheduled, or
#: descheduled itself) stalled. A thread team's barrier waits a scheduler
#: time slice (4-30 ms measured here) whenever one of its threads is not
#: running: a call of 0.03-1 ms then takes up to a thousand times its time.
#: On a quiet machine 0.5-5 % of threaded calls stall (more when another
#: library's idle threads spin on the cores between calls); under load most
#: of them do.
STALL_SECONDS = 2e-3
#: Weight of one threaded call in the running stall rate, and the half-life
#: (seconds) of that rate while no threaded call is seen.
STALL_RATE_WEIGHT = 1.0 / 16.0
STALL_HALF_LIFE = 1.0
#: The running stall rate (per threaded call), the running cost of a stall
#: (seconds) and when the rate was last updated (``time.monotonic``).
_stall_rate = 0.0
_stall_cost = 0.0
_stall_time = 0.0


def _rate_now(now: float) -> float:
    return _stall_rate * 0.5 ** ((now - _stall_time) / STALL_HALF_LIFE)


def note_wait(waited: float) -> None:
    """Record a threaded call whose calling thread waited ``waited`` seconds
    (wall minus CPU time in the kernel; a stall beyond STALL_SECONDS)."""
    global _stall_rate, _stall_cost, _stall_time
    now = time.monotonic()
    stalled = waited > STALL_SECONDS
    _stall_rate = _rate_now(now) + ((1.0 if stalled else 0.0) - _rate_now(now)) * STALL_RATE_WEIGHT
    _stall_time = now
    if stalled:
        _stall_cost = waited if _stall_cost == 0.0 else _stall_cost + (waited - _stall_cost) * 0.25


def stall_expected() -> float:
    """Seconds a threaded call is expected to lose to stalls now (rate x cost)."""
    if _stall_rate == 0.0:
        return 0.0
    return _rate_now(time.monotonic()) * _stall_cost


def serial_pays(seconds: float) -> bool:
    """Whether a call of ``seconds`` on one thread is expected to end sooner
    on one thread than on a team: what a stall costs on average (rate x
    cost) against the half of its time a second thread would save."""
    return stall_expected() > 0.5 * seconds


#: Multiply-adds from which a call's calling thread has its CPU time read
#: (a system call, ~0.5-1 us: under 1% of such a call); a shorter call that
#: takes STALL_SECONDS of wall time more than its output's page faults
#: (FAULT_SECONDS_PER_BYTE) can only have waited.
CPU_TIMED_WORK = 1e7
FAULT_SECONDS_PER_BYTE = 2e-10


class WaitClock:
    """What the calling thread waits for a threaded call (see
    :data:`STALL_SECONDS`) over a ``with`` block, reported to
    :func:`note_wait`; ``work`` multiply-adds, ``out_bytes`` of fresh output."""

    __slots__ = ("threads", "work", "out_bytes", "wall", "cpu")

    def __init__(self, threads: int, work: float, out_bytes: int) -> None:
        self.threads, self.work, self.out_bytes = threads, work, out_bytes

    def __enter__(self) -> WaitClock:
        if self.threads > 1:
            self.cpu = time.thread_time() if self.work >= CPU_TIMED_WORK else None
            self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threads > 1 and exc[0] is None:
            wall = time.perf_counter() - self.wall
            if wall > STALL_SECONDS:
                if self.cpu is not None:
                    note_wait(wall - (time.thread_time() - self.cpu))
                else:
                    note_wait(wall - FAULT_SECONDS_PER_BYTE * self.out_bytes)
            elif _stall_rate != 0.0:  # a call without a stall lowers the rate
                note_wait(0.0)


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
        "SIMD": _simd_line(_direct.SIMD),
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
        "recycled results": _recycled_line(_direct),
    }
    return info


def _recycled_line(direct):
    """The idle result blocks kept for reuse (see SECURITY.md), and how to free them."""
    if not direct.RECYCLE_OUTPUTS:
        return "off"
    blocks, nbytes = direct.idle_outputs()
    return (f"{blocks} idle block(s), {nbytes / 2**20:.0f} MiB kept (at most {direct.POOL_BLOCKS} and "
            f"{direct.POOL_IDLE_BYTES >> 20} MiB; fastcorr.methods.direct.release_outputs() frees them)")


def _simd_line(base):
    """The direct kernels' instruction set, and the AVX-512 paths this CPU runs."""
    try:
        from ..methods import fft_kernels, integer
    except ImportError:  # pragma: no cover - a partial build
        return base
    paths = []
    if fft_kernels.column_isa() == "avx512":
        paths.append("float64 FFT columns, normalized convolution and conv2d's direct-output kernels")
    if integer.AVX512:
        paths.append("integer images' 64-bit lanes")
    return f"{base}; AVX-512 (runtime dispatch) for the {'; '.join(paths)}" if paths else base


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
