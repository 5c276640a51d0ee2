"""The band copy's prefetch of later input rows (``conv_direct.set_prefetch_rows``)
changes no result: strided, padded, every padding mode, prefetch distances
from off to past the band, against torch in float64."""
import numpy as np
import pytest

import fastcorr
from fastcorr.methods import conv_direct

from test_conv2d import naive_conv2d

RNG = np.random.default_rng(314)


@pytest.mark.parametrize("case", [
    (1, 3, 8, 30, 41, 7, 2, 3, "zeros"),
    (2, 4, 6, 17, 23, 5, 1, 2, "reflect"),
    (1, 2, 5, 12, 33, 3, 2, 1, "circular"),
    (1, 3, 4, 9, 9, 4, 3, 0, "replicate"),
])
def test_prefetch_distance_changes_nothing(case):
    n, cin, cout, h, w, k, s, p, mode = case
    x = RNG.standard_normal((n, cin, h, w)).astype(np.float32)
    wt = RNG.standard_normal((cout, cin, k, k)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    ref = naive_conv2d(x, wt, b.astype(np.float64), s, p, 1, 1, mode)
    results = []
    try:
        for rows in (0, 1, 4, 1000):
            conv_direct.set_prefetch_rows(rows)
            results.append(fastcorr.conv2d(x, wt, b, s, p, padding_mode=mode, method="direct", num_threads=2))
    finally:
        conv_direct.set_prefetch_rows(4)
    for y in results:
        np.testing.assert_array_equal(y, results[0])
    np.testing.assert_allclose(results[0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
