"""A minimal convolution layer on numpy arrays, for learning kernels.

:class:`Conv2D` holds its parameters as plain numpy arrays, computes the
forward pass with :func:`fastcorr.conv2d` (a cross-correlation, as
``torch.nn.Conv2d``) and the backward pass with
:func:`fastcorr.conv2d_backward`. There is no autograd: you call
``backward`` with the gradient of your loss with respect to the output, then
``step`` to take a gradient-descent step.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._engine.validate import IntPair, Padding, PaddingMode, choice, kernel_shape, positive_int

__all__ = ["Conv2D"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ops() -> tuple[Callable[..., NDArray[Any]], Callable[..., tuple[NDArray[Any], NDArray[Any], NDArray[Any]]]]:
    """fastcorr.conv2d and conv2d_backward (looked up at call time)."""
    import fastcorr

    try:
        return fastcorr.conv2d, fastcorr.conv2d_backward
    except AttributeError:
        raise NotImplementedError(
            "fastcorr.nn.Conv2D needs fastcorr.conv2d and fastcorr.conv2d_backward, "
            "which this build of fastcorr does not provide"
        ) from None


class Conv2D:
    """A 2-D convolution layer (cross-correlation plus bias), NCHW, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size : int or (int, int)
        Kernel height and width.
    stride, padding, dilation, groups : as :func:`fastcorr.conv2d`
        ``padding`` may be an int, a pair, 'valid' or 'same'.
    bias : bool
        Whether the layer adds a learned bias per output channel.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        How padding extends the input.
    dtype : numpy dtype
        Of the parameters (float32 or float64).
    rng : int, numpy.random.Generator or None
        Seed or generator for the initialisation (``None``: fresh entropy).
        Weights and bias are drawn from ``U(-b, b)`` with
        ``b = 1 / sqrt(in_channels / groups * kh * kw)``, as torch does.

    Attributes
    ----------
    weight : ndarray, shape (out_channels, in_channels // groups, kh, kw)
    bias : ndarray, shape (out_channels,), or None
    weight_grad, bias_grad : ndarray or None
        Gradients of the loss from the last :meth:`backward` (overwritten by
        each call, not accumulated).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.nn import Conv2D
    >>> layer = Conv2D(1, 1, kernel_size=(1, 2), bias=False, rng=0)
    >>> layer.weight.shape, layer.weight.dtype, layer.bias
    ((1, 1, 1, 2), dtype('float32'), None)

    Learn the edge detector ``[1, -1]`` back from an image and its response,
    by gradient descent on the squared error (the textbook's experiment):

    >>> import fastcorr
    >>> x = np.ones((1, 1, 6, 8), np.float32); x[..., 2:6] = 0
    >>> y = fastcorr.conv2d(x, np.array([[[[1.0, -1.0]]]], np.float32))
    >>> for step in range(30):
    ...     diff = layer(x) - y
    ...     grad_x = layer.backward(2 * diff)   # d sum(diff**2) / d output
    ...     layer.step(3e-2)
    >>> layer.weight.reshape(2).round(3)
    array([ 1., -1.], dtype=float32)
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: IntPair
    padding: Padding
    dilation: IntPair
    groups: int
    padding_mode: PaddingMode
    weight: NDArray[Any]
    bias: NDArray[Any] | None
    weight_grad: NDArray[Any] | None
    bias_grad: NDArray[Any] | None
    _input: ArrayLike | None

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: PaddingMode = "zeros", dtype: DTypeLike = np.float32,
                 rng: int | np.random.Generator | None = None) -> None:
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        self.kernel_size = kernel_shape(kernel_size, "kernel_size")
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.padding_mode = choice(padding_mode, "padding_mode", PADDING_MODES)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if not isinstance(rng, np.random.Generator):
            if rng is not None and not isinstance(rng, numbers.Integral):
                raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")
            rng = np.random.default_rng(rng)
        kh, kw = self.kernel_size
        fan_in = self.in_channels // self.groups * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups, kh, kw)
        self.weight = rng.uniform(-bound, bound, size=shape).astype(dtype)
        self.bias = rng.uniform(-bound, bound, size=self.out_channels).astype(dtype) if bias else None
        self.weight_grad = None
        self.bias_grad = None
        self._input = None

    def _conv_args(self) -> dict[str, Any]:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        """The layer's output ``conv2d(x, weight, bias, ...)``; remembers ``x`` for backward.

        Parameters
        ----------
        x : array_like, shape (N, C_in, H, W) or (C_in, H, W)

        Returns
        -------
        ndarray, shape (N, C_out, Ho, Wo) (or without N)
        """
        conv2d, _ = _ops()
        self._input = x
        return conv2d(x, self.weight, self.bias, **self._conv_args())

    __call__ = forward

    def backward(self, grad_output: ArrayLike) -> NDArray[Any]:
        """Compute the gradients of the last forward call.

        Stores ``weight_grad`` (and ``bias_grad``), as torch autograd would.

        Parameters
        ----------
        grad_output : array_like
            ``dL/dy``, the gradient of the loss with respect to the output of
            the last forward call (its shape).

        Returns
        -------
        ndarray
            ``dL/dx``, the gradient with respect to that call's input.
        """
        if self._input is None:
            raise RuntimeError("Conv2D.backward called before forward")
        _, conv2d_backward = _ops()
        grad_input, grad_weight, grad_bias = conv2d_backward(
            self._input, self.weight, grad_output, **self._conv_args()
        )
        self.weight_grad = np.asarray(grad_weight)
        self.bias_grad = None if self.bias is None else np.asarray(grad_bias)
        return grad_input

    def step(self, lr: float) -> None:
        """Take one gradient-descent step: ``weight -= lr * weight_grad`` (and the bias).

        Parameters
        ----------
        lr : float
            The learning rate.
        """
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"lr must be a real number, got {lr!r}")
        if self.weight_grad is None:
            raise RuntimeError("Conv2D.step called before backward: no gradient to apply")
        self.weight -= (lr * self.weight_grad).astype(self.weight.dtype, copy=False)
        if self.bias is not None and self.bias_grad is not None:
            self.bias -= (lr * self.bias_grad).astype(self.bias.dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}, padding_mode={self.padding_mode!r})"
        )
