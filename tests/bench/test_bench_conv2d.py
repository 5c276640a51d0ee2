"""pytest-benchmark: fastcorr.conv2d against torch.nn.functional.conv2d on CNN layers.

Both run at the same thread count (fastcorr's num_threads, torch.set_num_threads)
in the same run; forward and backward (torch: autograd of the layer). Compare
the groups' medians; nothing here asserts on time.
"""
import numpy as np
import pytest

import fastcorr
from fastcorr._cli.layers_bench import LAYERS  # name: (N, C_in, C_out, H, W, k, stride, padding)

THREADS = 2


def _layer(name):
    N, C, Co, H, W, k, s, p = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((Co, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(Co, dtype=np.float32)
    return x, w, b, s, p


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("lib", ["fastcorr", "torch"])
def test_forward(benchmark, name, lib):
    x, w, b, s, p = _layer(name)
    benchmark.group = f"conv2d forward {name}"
    if lib == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(THREADS)
        xt, wt, bt = map(torch.from_numpy, (x, w, b))
        with torch.no_grad():
            benchmark(torch.nn.functional.conv2d, xt, wt, bt, s, p)
    else:
        benchmark(fastcorr.conv2d, x, w, b, s, p, num_threads=THREADS)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("lib", ["fastcorr", "torch"])
def test_backward(benchmark, name, lib):
    x, w, b, s, p = _layer(name)
    benchmark.group = f"conv2d backward {name}"
    gy = np.ones(fastcorr.conv2d(x[:1], w, b, s, p).shape[1:], np.float32)[None].repeat(x.shape[0], 0)
    if lib == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(THREADS)
        xt, wt, gyt = map(torch.from_numpy, (x, w, gy))

        def run():
            # the backward kernel autograd runs for conv2d (no forward timed)
            return torch.ops.aten.convolution_backward(
                gyt, xt, wt, [w.shape[0]], [s, s], [p, p], [1, 1], False, [0, 0], 1, [True, True, True]
            )

        benchmark(run)
    else:
        benchmark(fastcorr.conv2d_backward, x, w, gy, s, p, num_threads=THREADS)
