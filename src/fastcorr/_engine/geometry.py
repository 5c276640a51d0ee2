"""Geometry of a correlation: output shapes, offsets and boundary index maps.

Every 2-D call reduces to one *offset correlation*

    out[m, n] = sum_{j, k} w[j, k] * X[m + off0 + j, n + off1 + k]

with X the input extended beyond its edges by the boundary rule. This module
holds the arithmetic of that reduction that several layers share (the
scipy-style API, the sparse matrix view, the dask twins, the lowering).
"""
import numpy as np

__all__ = ["offsets", "output_shape", "extended_index"]


def offsets(mode, kernel_shape, convolve):
    """Top-left input offset of output (0, 0) and the output-shape rule."""
    offs = []
    for k in kernel_shape:
        if mode == "full":
            offs.append(-(k - 1))
        elif mode == "same":
            # scipy centres an even kernel differently for correlation and
            # convolution: the flipped kernel shifts by one.
            offs.append(-(k // 2) if convolve else -((k - 1) // 2))
        else:
            offs.append(0)
    return tuple(offs)


def output_shape(mode, image_shape, kernel_shape):
    """Output shape of ``mode`` ('full', 'same', 'valid') for these shapes."""
    if mode == "full":
        return tuple(s + k - 1 for s, k in zip(image_shape, kernel_shape))
    if mode == "same":
        return tuple(image_shape)
    return tuple(s - k + 1 for s, k in zip(image_shape, kernel_shape))


def extended_index(idx, n, boundary):
    """Map extended positions to [0, n) (wrap / symm / nearest / mirror) or -1 (fill)."""
    idx = np.asarray(idx)
    if boundary == 0:
        return np.where((idx >= 0) & (idx < n), idx, -1)
    if boundary == 1:
        return idx % n
    if boundary == 3:  # nearest: the edge sample repeated
        return np.clip(idx, 0, n - 1)
    if boundary == 4:  # mirror: whole-sample symmetric
        if n == 1:
            return np.zeros_like(idx)
        period = idx % (2 * n - 2)
        return np.where(period >= n, 2 * n - 2 - period, period)
    period = idx % (2 * n)
    return np.where(period >= n, 2 * n - 1 - period, period)
