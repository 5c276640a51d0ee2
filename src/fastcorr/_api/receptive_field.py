"""Receptive fields of stacked convolution layers."""
from __future__ import annotations

from collections.abc import Sequence

from .._engine.validate import IntPair, per_layer

__all__ = ["receptive_field"]


def receptive_field(kernel_sizes: Sequence[IntPair], strides: int | Sequence[IntPair] = 1,
                    dilations: int | Sequence[IntPair] = 1) -> tuple[int, int]:
    """Height and width of the input region that one output element depends on.

    For layers ``i = 0, 1, ...`` (first layer first) with kernel size ``k_i``,
    stride ``s_i`` and dilation ``d_i``, per axis::

        rf = 1 + sum_i (k_i - 1) * d_i * prod_{j < i} s_j

    Each layer widens the field by its kernel's extent ``(k_i - 1) * d_i``,
    measured in steps of the layers below, each of which multiplies the
    step by its stride. Padding does not change the size.

    Parameters
    ----------
    kernel_sizes : sequence of int or (int, int)
        One entry per layer, first layer first (an int is a square kernel).
    strides : int or sequence of int or (int, int)
        One int for all layers, or one entry per layer.
    dilations : int or sequence of int or (int, int)
        Likewise.

    Returns
    -------
    (int, int)
        ``(rf_h, rf_w)``.

    Examples
    --------
    The textbook: two stacked 2x2 layers see all nine elements of a 3x3 input.

    >>> import fastcorr
    >>> fastcorr.receptive_field([2, 2])
    (3, 3)
    >>> fastcorr.receptive_field([3, 3, 3])          # three 3x3 convs see 7x7
    (7, 7)
    >>> fastcorr.receptive_field([7, 3], strides=[2, 1])  # a stride-2 stem
    (11, 11)
    >>> fastcorr.receptive_field([(1, 2)])
    (1, 2)
    """
    try:
        n_layers = len(kernel_sizes)
    except TypeError:
        raise TypeError(f"kernel_sizes must be a sequence with one entry per layer, got {kernel_sizes!r}") from None
    if n_layers == 0:
        raise ValueError("kernel_sizes must list at least one layer")
    ks = per_layer(kernel_sizes, "kernel_sizes", n_layers)
    ss = per_layer(strides, "strides", n_layers)
    ds = per_layer(dilations, "dilations", n_layers)
    rf = []
    for axis in range(2):
        size, step = 1, 1
        for k, s, d in zip(ks, ss, ds):
            size += (k[axis] - 1) * d[axis] * step
            step *= s[axis]
        rf.append(size)
    return tuple(rf)
