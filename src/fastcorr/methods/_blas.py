"""The BLAS libraries' thread pools, pinned for a block (threadpoolctl).

fastcorr's own GEMMs (``scipy.linalg.cython_blas``) run one BLAS thread
inside each of its OpenMP threads, and the small LAPACK calls of the
per-kernel work (a kernel's SVD: is it separable?) run on one thread: a
multithreaded BLAS call leaves OpenBLAS's threads spinning on the cores for
some 0.1 s after it, beside whatever fastcorr runs next (a 1024² float32
correlation with a new 63x63 kernel took 6-13 ms for its first ten calls
after the kernel's SVD, against 3.5 ms with the pool pinned to one thread).
"""
import contextlib

_controller = None
_controller_ready = False


def blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None."""
    global _controller, _controller_ready
    if not _controller_ready:
        try:
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController().select(user_api="blas")
            _controller = ctl if ctl.lib_controllers else None
        except Exception:  # threadpoolctl missing or unable to see the BLAS
            _controller = None
        _controller_ready = True
    return _controller


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with every BLAS library's thread pool limited to ``n`` (if possible).

    Each library's count is read and set directly, and only changed when it
    differs: threadpoolctl's ``limit`` re-reads every library's whole state
    each time (18 us a call, 2-4% of a 2-thread 1x1 layer's backward).

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1):
    ...     s = np.linalg.svd(np.eye(3), compute_uv=False)
    >>> s.tolist()
    [1.0, 1.0, 1.0]
    """
    ctl = blas_controller()
    if ctl is None:
        yield
        return
    changed = []
    try:
        for lib in ctl.lib_controllers:
            old = lib.get_num_threads()
            if old is not None and old != n:
                lib.set_num_threads(n)
                changed.append((lib, old))
        yield
    finally:
        for lib, old in changed:
            lib.set_num_threads(old)
