"""A process-wide pool of Python worker threads that survives fork().

The FFT method's tiles and the window statistics' tiles run on such pools.
A forked child has none of the parent's pool threads: the pool is replaced
there (its lock too, in case a parent thread held it at the fork).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor


class GrowingPool:
    """A ``ThreadPoolExecutor`` of at least the threads last asked for."""

    def __init__(self, name):
        self.name = name
        self._forget()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self._lock = threading.Lock()
        self._pool, self._size = None, 0

    def executor(self, n):
        """The pool, with at least ``n`` worker threads."""
        with self._lock:
            if self._pool is None or self._size < n:
                old = self._pool
                self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=self.name)
                self._size = n
                if old is not None:
                    old.shutdown(wait=False)
            return self._pool
