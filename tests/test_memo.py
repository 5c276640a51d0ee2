"""KernelCache: bounded by entries and bytes, keyed by values."""
import threading

import numpy as np

from fastcorr.methods._memo import KernelCache


def test_get_put_and_the_last_hit():
    cache = KernelCache(max_entries=8)
    a, b = np.arange(6.0), np.arange(6.0)
    cache.put(("k", a.tobytes()), "A")
    assert cache.get(("k", b.tobytes())) == "A"  # equal values, another object
    b[2] = -1
    assert cache.get(("k", b.tobytes())) is None
    assert cache.get(("k", b.tobytes()), -1) == -1
    cache.put(("k", b.tobytes()), None)  # None is a value like another
    assert cache.get(("k", b.tobytes()), -1) is None
    assert cache.get(("k", a.tobytes())) == "A"


def test_bounded_by_entries_oldest_first():
    cache = KernelCache(max_entries=3)
    for i in range(5):
        cache.put(i, str(i))
    assert [cache.get(i) for i in range(5)] == [None, None, "2", "3", "4"]


def test_bounded_by_bytes():
    cache = KernelCache(max_entries=100, max_bytes=100)
    cache.put("a", 1, 60)
    cache.put("b", 2, 30)
    cache.put("c", 3, 30)  # 120 > 100: "a" goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    cache.put("huge", 4, 101)  # larger than the bound: not kept
    assert cache.get("huge") is None and cache.get("c") == 3
    cache.put("b", 5, 10)  # replacing a key frees its old size
    assert cache._total == 40
    cache.clear()
    assert cache.get("b") is None and cache.get("c") is None and cache._total == 0


def test_threads_share_it():
    cache = KernelCache(max_entries=16)
    errors = []

    def work(t):
        for i in range(2000):
            key = (t, i % 20)
            cache.put(key, key)
            got = cache.get(key)
            if got is not None and got != key:
                errors.append((key, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(cache._values) <= 16
