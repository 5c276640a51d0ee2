"""fastcorr's public API used as a user would, for a type checker.

``tests/test_typing.py`` runs ``mypy --strict`` on this file against the
installed package (its annotations, ``py.typed`` and the ``.pyi`` stubs of
the compiled modules), and runs it once. Every result is assigned to a
variable of the type the API promises, so a wrong or missing annotation
shows up as a mypy error here. ``use_dask_api.py`` does the same for
``fastcorr.dask``.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

import fastcorr
from fastcorr import kernels
from fastcorr.nn import Conv2D


def signal() -> None:
    image = np.random.default_rng(0).random((32, 32))
    kernel: NDArray[np.float64] = kernels.sobel(1)
    full: NDArray[Any] = fastcorr.correlate2d(image, kernel)
    same: NDArray[Any] = fastcorr.correlate2d(image, kernel, mode="same", boundary="symm")
    valid: NDArray[Any] = fastcorr.convolve2d(image, [[1, 2], [3, 4]], "valid", "wrap", method="direct")
    filled: NDArray[Any] = fastcorr.correlate2d(image, kernel, "full", "fill", 1.5, num_threads=1)
    assert full.shape == (34, 34) and same.shape == (32, 32) and valid.shape == (31, 31)
    assert filled.dtype == np.float64

    chosen: Literal["direct", "im2col", "fft", "separable"] = fastcorr.choose_method(image, kernel, "same")
    as_text: str = fastcorr.choose_method(image, kernel)
    again: NDArray[Any] = fastcorr.correlate2d(image, kernel, method=chosen)  # what it reports is a method
    assert as_text in ("direct", "im2col", "fft", "separable") and again.shape == full.shape

    blur: NDArray[np.float64] = kernels.gaussian(1.0, radius=(2, 3))
    stencil: NDArray[np.float64] = kernels.finite_difference(2, size=5, axis=0)
    weights: list[Fraction] = kernels.fornberg_weights(1, [-1, 0, Fraction(1, 2)])
    others: list[NDArray[np.float64]] = [kernels.scharr(0), kernels.prewitt(), kernels.laplacian(diagonal=True),
                                         kernels.box((3, 5))]
    assert blur.shape == (5, 7) and stencil.shape == (5, 1) and len(weights) == 3 and len(others) == 4

    matrix = fastcorr.correlation_matrix(kernel, (8, 8), "same", "wrap")
    assert matrix.shape == (64, 64)


def layers() -> None:
    x = np.ones((2, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y: NDArray[Any] = fastcorr.conv2d(x, w, np.zeros(4, np.float32), stride=(1, 2), padding=1,
                                      padding_mode="reflect", method="im2col")
    grad_input: NDArray[Any]
    grad_weight: NDArray[Any]
    grad_bias: NDArray[Any]
    grad_input, grad_weight, grad_bias = fastcorr.conv2d_backward(x, w, np.ones_like(y), stride=(1, 2), padding=1,
                                                                  padding_mode="reflect")
    assert grad_input.shape == x.shape and grad_weight.shape == w.shape and grad_bias.shape == (4,)

    cols: NDArray[Any] = fastcorr.im2col(x, kernel_size=3, padding=1)
    back: NDArray[Any] = fastcorr.col2im(cols, output_size=(8, 8), kernel_size=(3, 3), padding=1)
    assert back.shape == x.shape

    cap: int = fastcorr.get_im2col_cap()
    fastcorr.set_im2col_cap(cap)
    field: tuple[int, int] = fastcorr.receptive_field([3, (3, 1), 3], strides=[2, 1, 1], dilations=1)
    assert field == (11, 7)

    layer = Conv2D(3, 4, kernel_size=3, padding="same", padding_mode="circular", dtype=np.float64, rng=0)
    out: NDArray[Any] = layer(x)
    out = layer.forward(x)
    dx: NDArray[Any] = layer.backward(np.ones_like(out))
    layer.step(1e-2)
    weight: NDArray[Any] = layer.weight
    weight_grad: NDArray[Any] | None = layer.weight_grad
    bias: NDArray[Any] | None = layer.bias
    kernel_size: tuple[int, int] = layer.kernel_size
    assert dx.shape == x.shape and weight.shape == (4, 3, 3, 3) and weight_grad is not None
    assert bias is not None and kernel_size == (3, 3) and repr(layer).startswith("Conv2D(")


def settings() -> None:
    old: int = fastcorr.get_num_threads()
    with fastcorr.threads(1) as n:
        inside: int = fastcorr.get_num_threads()
        assert inside == n == 1
    fastcorr.set_num_threads(old)

    tuning: bool = fastcorr.get_autotune()
    fastcorr.set_autotune(tuning)

    fastcorr.show_config()
    include: str = fastcorr.get_include()
    version: str = fastcorr.__version__
    assert include and version


def registration() -> None:
    ref = np.random.default_rng(0).random((32, 32))
    moved = np.roll(ref, (2, -3), axis=(0, 1))
    shift: NDArray[np.floating[Any]]
    error: np.floating[Any]
    phasediff: np.floating[Any]
    shift, error, phasediff = fastcorr.phase_cross_correlation(ref, moved)
    fine = fastcorr.phase_cross_correlation(ref.astype(np.float32), moved, upsample_factor=10,
                                            space="real", normalization=None, num_threads=1)
    assert list(shift) == [-2.0, 3.0] and error >= 0 and abs(phasediff) < 1e-6 and fine[0].shape == (2,)


def matching() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((40, 50)).astype(np.float32)
    template = image[10:18, 20:31].copy()
    scores: NDArray[Any] = fastcorr.match_template(image, template)
    by_constant: NDArray[Any] = fastcorr.match_template(image, template, 0, mask=template > 0.2, num_threads=1)
    padded: NDArray[Any] = fastcorr.match_template(image, template, "sqdiff_normed", pad_input=True, mode="reflect")
    stack: NDArray[Any] = fastcorr.match_template(image, np.stack([template, template[::-1]]), overlap_ratio=0.5)
    positions: NDArray[np.float64]
    values: NDArray[Any]
    positions, values = fastcorr.peaks(scores, num_peaks=2, min_distance=3, threshold=0.5, subpixel="gaussian")
    lowest, _ = fastcorr.peaks(by_constant, minimize=True)
    assert scores.shape == (33, 40) and padded.shape == image.shape and stack.shape == (2, 33, 40)
    assert positions.shape[1] == 2 and values[0] > 0.99 and lowest.shape == (1, 2)


def normalized() -> None:
    image = np.random.default_rng(2).random((20, 24))
    image[5:7, 3:9] = np.nan
    smooth: NDArray[np.floating[Any]] = fastcorr.normalized_convolution(image, np.ones((3, 3)))
    certainty = np.isfinite(image)
    filled, how_sure = fastcorr.normalized_convolution(image.astype(np.float32), kernels.gaussian(1.0), certainty,
                                                       boundary="extend", return_certainty=True, num_threads=1)
    weighted: NDArray[np.floating[Any]] = fastcorr.normalized_convolution(
        image, [[1.0, 2.0]], np.full(image.shape, 0.5), boundary=None, fill_value=np.nan, nan_treatment="fill",
        normalize_kernel=False, preserve_nan=True, normalization_zero_tol=0.0, method="direct")
    assert smooth.shape == image.shape and filled.dtype == np.float32 and how_sure.max() <= 1.0
    assert np.isnan(weighted[5, 4])
    into = np.empty_like(image)
    written: NDArray[np.floating[Any]] = fastcorr.normalized_convolution(image, np.ones((3, 3)), out=into)
    assert written is into


def nd_correlation() -> None:
    signal_1d = np.random.default_rng(3).standard_normal(1000)
    z: NDArray[Any] = fastcorr.correlate(signal_1d, signal_1d[::-1], lags=(-5, 5))
    window: NDArray[Any] = fastcorr.correlate(signal_1d, [1.0, 2.0], "full", "direct", lags=[3], num_threads=1)
    volume = np.ones((4, 5, 6), dtype=np.float32)
    y: NDArray[Any] = fastcorr.convolve(volume, np.ones((1, 2, 3)), mode="same", method="fft", axes=(1, 2))
    batch: NDArray[Any] = fastcorr.correlate(volume, volume[:, :1, :2], "valid", axes=[1, 2])
    assert z.shape == (11,) and window.shape == (7,) and y.shape == volume.shape and batch.shape == (4, 5, 5)
def piv() -> None:
    rng = np.random.default_rng(3)
    frame_a = rng.random((96, 80))
    frame_b = np.roll(frame_a, (1, 2), axis=(0, 1))
    x: NDArray[np.float64]
    u: NDArray[np.float64]
    x, y, u, v, s2n = fastcorr.piv(frame_a, frame_b)
    wide = fastcorr.piv(frame_a.astype(np.float32), frame_b, (24, 32), (8, 16), 40, dt=0.5,
                        correlation_method="linear", normalized_correlation=True, subpixel_method="centroid",
                        sig2noise_method=None, width=1, num_threads=1)
    means = fastcorr.piv(frame_a.tolist(), frame_b, 32, 16, sig2noise_method="peak2mean")
    assert x.shape == u.shape == (5, 4) and round(float(np.median(u)), 2) == 2.0 and round(float(np.median(v)), 2) == 1.0
    assert wide[2].shape == (2, 2) and np.isnan(wide[4]).all() and means[4].shape == (5, 4)


if __name__ == "__main__":
    signal()
    registration()
    layers()
    settings()
    matching()
    normalized()
    nd_correlation()
    piv()
