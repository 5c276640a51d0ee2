"""Many Python threads calling every method at once, each with its own threads."""
import threading

import numpy as np
import pytest
import scipy.signal as ss

import fastcorr
from fastcorr._engine import dispatch as _dispatch

METHODS = ["auto", *sorted(_dispatch.METHODS)]


def test_all_methods_from_many_threads():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 120))
    g = np.exp(-np.linspace(-2, 2, 7) ** 2)
    k_sep = np.outer(g, g)  # rank 1: every method serves it
    want = ss.correlate2d(x, k_sep, "same")
    xl = rng.standard_normal((2, 4, 20, 20)).astype(np.float32)
    wl = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    want_layer = fastcorr.conv2d(xl, wl, padding=1, method="direct", num_threads=1)
    # 16 channels: the channel-vectorised blocked kernel and its gradients
    x16 = rng.standard_normal((2, 8, 18, 21)).astype(np.float32)
    w16 = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    g16 = rng.standard_normal((2, 16, 18, 21)).astype(np.float32)
    want16 = fastcorr.conv2d(x16, w16, padding=1, num_threads=1)
    want16_grads = fastcorr.conv2d_backward(x16, w16, g16, padding=1, num_threads=1)
    errors = []
    barrier = threading.Barrier(8)

    def worker(i):
        try:
            barrier.wait()
            for rep in range(4):
                method = METHODS[(i + rep) % len(METHODS)]
                nt = 1 + (i + rep) % 2
                got = fastcorr.correlate2d(x, k_sep, "same", method=method, num_threads=nt)
                np.testing.assert_allclose(got, want, atol=1e-9, err_msg=method)
                with fastcorr.threads(nt):
                    layer = fastcorr.conv2d(xl, wl, padding=1, method=("direct", "im2col")[rep % 2])
                np.testing.assert_allclose(layer, want_layer, atol=1e-4)
                np.testing.assert_allclose(fastcorr.conv2d(x16, w16, padding=1, num_threads=nt), want16, atol=1e-4)
                for got_g, want_g in zip(fastcorr.conv2d_backward(x16, w16, g16, padding=1, num_threads=nt),
                                         want16_grads):
                    np.testing.assert_allclose(got_g, want_g, atol=1e-3)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("n", [1, 2])
def test_thread_local_setting_does_not_leak(n):
    seen = {}

    def worker(name, count):
        with fastcorr.threads(count):
            barrier.wait()
            seen[name] = fastcorr.get_num_threads()

    barrier = threading.Barrier(2)
    a = threading.Thread(target=worker, args=("a", n))
    b = threading.Thread(target=worker, args=("b", 3))
    a.start(), b.start(), a.join(), b.join()
    assert seen == {"a": n, "b": 3}
