"""Caches keyed by a kernel's values (its bytes), for per-kernel work that
calls repeat: the kernel's spectrum, its rank, its separable factors.

A dict lookup hashes the key, bytes and all: 19 us for a 101x101 float64
kernel, a tenth of a small FFT call. Calls mostly repeat the last kernel,
so the last hit is checked first by equality, which for bytes is a memcmp
(3 us for the same kernel).
"""
import threading

_MISSING = object()


class KernelCache:
    """A bounded mapping whose keys hold a kernel's bytes.

    At most ``max_entries`` values, and at most ``max_bytes`` of them as
    counted by ``put``'s ``nbytes`` (oldest dropped first). Thread-safe.

    Examples
    --------
    >>> cache = KernelCache(max_entries=2)
    >>> cache.put((3, b"abc"), "spectrum")
    >>> cache.get((3, b"abc")), cache.get((3, b"abd"))
    ('spectrum', None)
    """

    def __init__(self, max_entries=256, max_bytes=None):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._values = {}
        self._sizes = {}
        self._total = 0
        self._last = None  # (key, value): one tuple, replaced atomically
        self._lock = threading.Lock()

    def get(self, key, default=None):
        """The value stored under ``key``, else ``default``."""
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        with self._lock:
            value = self._values.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._last = (key, value)
        return value

    def put(self, key, value, nbytes=0):
        """Store ``value`` under ``key`` (not when ``nbytes`` alone exceeds the byte bound)."""
        with self._lock:
            if self.max_bytes is not None and nbytes > self.max_bytes:
                return
            if key in self._values:
                self._total -= self._sizes.pop(key)
                del self._values[key]
            while self._values and (len(self._values) >= self.max_entries or (
                    self.max_bytes is not None and self._total + nbytes > self.max_bytes)):
                old = next(iter(self._values))
                del self._values[old]
                self._total -= self._sizes.pop(old)
            self._values[key] = value
            self._sizes[key] = nbytes
            self._total += nbytes
        self._last = (key, value)

    def clear(self):
        """Forget every value."""
        with self._lock:
            self._values.clear()
            self._sizes.clear()
            self._total = 0
            self._last = None
