"""PyTorch-compatible layer functions: conv2d, conv2d_backward, im2col, col2im.

Semantics are those of ``torch.nn.functional.conv2d`` (a cross-correlation
over NCHW arrays), ``torch.nn.Conv2d``'s ``padding_mode``, and
``torch.nn.functional.unfold`` / ``fold``. Arguments are checked in
``fastcorr._engine.validate``; plans, method choice and the drivers of the
compiled methods are in ``fastcorr._engine.conv``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from numpy.typing import ArrayLike, NDArray

from .._engine import conv as _engine
from .._engine.config import get_num_threads
from .._engine.validate import (
    ConvMethod,
    IntPair,
    Padding,
    PaddingMode,
    conv2d_args,
    conv_grad_output_arg,
    fold_args,
    im2col_cap_arg,
    out_arg,
    unfold_args,
)

__all__ = ["conv2d", "conv2d_backward", "im2col", "col2im", "set_im2col_cap", "get_im2col_cap"]


def set_im2col_cap(nbytes: int) -> None:
    """Set the memory cap of the im2col method's column buffers.

    The im2col method (``conv2d``, ``conv2d_backward`` and
    ``correlate2d(method='im2col')``) cuts the output into tiles so that all
    its column buffers together stay under ``nbytes`` whatever the input size.
    The buffers are kept and reused by later calls of the same Python thread.

    Parameters
    ----------
    nbytes : int
        The cap in bytes, at least 1 MiB. The default is 64 MiB.

    Examples
    --------
    >>> import fastcorr
    >>> old = fastcorr.get_im2col_cap()
    >>> fastcorr.set_im2col_cap(16 * 2**20)
    >>> fastcorr.get_im2col_cap()
    16777216
    >>> fastcorr.set_im2col_cap(old)
    """
    _engine.set_cap(im2col_cap_arg(nbytes))


def get_im2col_cap() -> int:
    """The im2col column-buffer cap in bytes (see :func:`set_im2col_cap`).

    Returns
    -------
    int
        The cap in bytes (64 MiB unless set).

    Examples
    --------
    >>> import fastcorr
    >>> fastcorr.get_im2col_cap()
    67108864
    """
    return _engine.get_cap()


def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: IntPair = 1,
           padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, *,
           padding_mode: PaddingMode = "zeros", method: ConvMethod = "auto",
           num_threads: int | None = None, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """2-D convolution layer (a cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : array_like, (N, C_in, H, W) or unbatched (C_in, H, W)
    weight : array_like, (C_out, C_in / groups, kh, kw)
    bias : array_like, (C_out,), optional
    stride, dilation : int or (int, int)
        At least 1.
    padding : int, (int, int), 'valid' or 'same'
        Implicit padding on both sides; 'same' pads so the output has the
        input's size (torch's rule: the extra row/column of an even kernel
        goes to the bottom/right; not allowed with stride > 1).
    groups : int
        Input and output channels are split into ``groups`` blocks, block g of
        the output seeing only block g of the input (``groups == C_in``:
        depthwise).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        As ``torch.nn.Conv2d``: what the padding holds.
    method : {'auto', 'direct', 'im2col', 'winograd'}
        'im2col': tiled im2col + BLAS GEMM; 'direct': an OpenMP loop over
        batch x output channels x rows; 'winograd': Winograd's F(2x2, 3x3)
        (3x3 kernels, stride and dilation 1, one group, zero padding only;
        2.25x fewer multiply-adds); 'auto' picks (see
        ``fastcorr.choose_method`` for correlate2d; for layers the rule is
        in the user guide).
    num_threads : int, optional
        Threads for this call (default: ``fastcorr.get_num_threads()``).
    out : ndarray, optional
        Where to write the result: a writeable C-contiguous array of the
        result's shape and dtype that overlaps no input (as numpy's ``out=``).

    Returns
    -------
    ndarray, (N, C_out, Ho, Wo) or (C_out, Ho, Wo)
        ``out`` if given, else a new array; float32 when every input is float32 (or float16), else float64
        (integer inputs are computed in float64).

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> k = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> fastcorr.conv2d(x, k)
    array([[[[19., 25.],
             [37., 43.]]]])
    """
    p = conv2d_args(input, weight, bias, stride, padding, dilation, groups, padding_mode, method, num_threads)
    if out is None:
        return _engine.forward(p)
    shape = (p.w.shape[0], *p.out_hw) if p.unbatched else (p.x.shape[0], p.w.shape[0], *p.out_hw)
    checked = out_arg(out, shape, p.dtype, (("input", input), ("weight", weight), ("bias", bias),
                                            ("input", p.x), ("weight", p.w), ("bias", p.bias)))
    _engine.forward(dataclasses.replace(p, out=checked[None] if p.unbatched else checked))
    return out


def conv2d_backward(input: ArrayLike, weight: ArrayLike, grad_output: ArrayLike, stride: IntPair = 1,
                    padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, *,
                    padding_mode: PaddingMode = "zeros",
                    num_threads: int | None = None) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Gradients of :func:`conv2d`, as torch autograd computes them.

    Parameters
    ----------
    input, weight, stride, padding, dilation, groups, padding_mode, num_threads
        As for :func:`conv2d`.
    grad_output : array_like
        Gradient of the loss with respect to the conv2d output (its shape).

    Returns
    -------
    grad_input : ndarray, shape of ``input``
        The transposed correlation of ``grad_output`` (col2im of
        ``weight^T @ grad_output``); with a padding mode other than 'zeros'
        the gradient of padded samples flows back to the samples they copy.
    grad_weight : ndarray, shape of ``weight``
        ``grad_output @ im2col(input)^T`` summed over the batch.
    grad_bias : ndarray, (C_out,)
        ``grad_output`` summed over batch and space.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> k = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = fastcorr.conv2d_backward(x, k, np.ones((1, 1, 2, 2)))
    >>> gx[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gw[0, 0], gb
    (array([[ 8., 12.],
           [20., 24.]]), array([4.]))
    """
    p = conv2d_args(input, weight, None, stride, padding, dilation, groups, padding_mode, "im2col",
                    num_threads, func="conv2d_backward")
    go = conv_grad_output_arg(grad_output, p)
    return _engine.backward(p, go)


def im2col(input: ArrayLike, kernel_size: IntPair, dilation: IntPair = 1, padding: IntPair = 0,
           stride: IntPair = 1) -> NDArray[Any]:
    """Sliding windows as columns, as ``torch.nn.functional.unfold``.

    Parameters
    ----------
    input : array_like, (N, C, H, W) or (C, H, W)
    kernel_size, dilation, padding, stride : int or (int, int)
        Zero padding on both sides.

    Returns
    -------
    ndarray, (N, C*kh*kw, L) or (C*kh*kw, L)
        Column ``l = oy*Wo + ox`` holds the window of output position
        (oy, ox), channel-major then kernel row then kernel column. Then
        ``weight.reshape(C_out, -1) @ im2col(x, k)`` is the convolution.

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.im2col(np.arange(9.0).reshape(1, 3, 3), 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    x, geometry, unbatched = unfold_args(input, kernel_size, dilation, padding, stride)
    return _engine.unfold(x, geometry, unbatched, get_num_threads())


def col2im(cols: ArrayLike, output_size: IntPair, kernel_size: IntPair, dilation: IntPair = 1,
           padding: IntPair = 0, stride: IntPair = 1) -> NDArray[Any]:
    """Sum columns back into an image, as ``torch.nn.functional.fold``.

    The adjoint of :func:`im2col`: each column's values are added at the
    positions its window covers (overlaps add up, padding is dropped).

    Parameters
    ----------
    cols : array_like, (N, C*kh*kw, L) or (C*kh*kw, L)
    output_size : int or (int, int)
        Spatial size (H, W) of the result.
    kernel_size, dilation, padding, stride : int or (int, int)

    Returns
    -------
    ndarray, (N, C, H, W) or (C, H, W)

    Examples
    --------
    >>> import numpy as np, fastcorr
    >>> fastcorr.col2im(np.ones((4, 4)), (3, 3), 2)
    array([[[1., 2., 1.],
            [2., 4., 2.],
            [1., 2., 1.]]])
    """
    c, geometry, unbatched = fold_args(cols, output_size, kernel_size, dilation, padding, stride)
    return _engine.fold(c, geometry, unbatched, get_num_threads())
