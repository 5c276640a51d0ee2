"""The GIL is released: two Python threads calling fastcorr (1 OpenMP thread
each) against the same two calls made one after the other. On a 2-core
machine the threaded pair takes about half the serial time when the GIL is
released. A benchmark to read, never a timed assertion."""
import threading

import numpy as np
import pytest

import fastcorr


def _pair(x, k, parallel):
    call = lambda: fastcorr.correlate2d(x, k, "same", method="direct", num_threads=1)  # noqa: E731
    if not parallel:
        call(), call()
        return
    t = threading.Thread(target=call)
    t.start()
    call()
    t.join()


@pytest.mark.parametrize("how", ["serial", "two-python-threads"])
def test_gil_released(benchmark, how, rng):
    n = 1024 if benchmark.enabled else 64
    x = rng.standard_normal((n, n)).astype(np.float32)
    k = rng.standard_normal((11, 11)).astype(np.float32)
    benchmark.group = "GIL release: two 1024^2 11x11 correlations"
    benchmark(_pair, x, k, how != "serial")
