"""Correlation as a matrix product: the "change the kernel" view.

A 2-D correlation is linear in the image, so for a fixed kernel and image
shape it is one (sparse) matrix ``M`` acting on the flattened image. Row
``m * Wo + n`` of ``M`` holds the kernel's weights at the columns of the
pixels that output ``(m, n)`` reads. The other answer to the textbook's
exercise, "change the input", is :func:`fastcorr.im2col`: it copies every
window of the image into a column, after which the kernel is a single row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .._engine.geometry import offsets as _offsets, extended_index, output_shape
from .._engine.validate import Boundary, Mode, as_array, input_shape_arg, signal_args

if TYPE_CHECKING:  # scipy.sparse is imported when first needed: it is slow to import
    import scipy.sparse

__all__ = ["correlation_matrix"]


def correlation_matrix(kernel: ArrayLike, input_shape: tuple[int, int], mode: Mode = "valid",
                       boundary: Boundary = "fill", *, convolve: bool = False) -> scipy.sparse.csr_array:
    """The sparse matrix of a 2-D correlation (or convolution) with ``kernel``.

    Parameters
    ----------
    kernel : array_like, 2-D
        The kernel (``in2`` of :func:`fastcorr.correlate2d`); complex kernels
        are conjugated, as correlate2d does.
    input_shape : (int, int)
        Shape ``(H, W)`` of the images the matrix will act on.
    mode : {'valid', 'same', 'full'}
        As for :func:`fastcorr.correlate2d` (including scipy's 'valid' rule
        that swaps the arguments when the image is smaller than the kernel;
        the matrix is then exact for real images).
    boundary : {'fill', 'wrap', 'symm'}
        As for correlate2d, with a fill value of 0 (any other fill value makes
        the map affine, not linear: add ``correlate2d(zeros, kernel, mode,
        'fill', fillvalue)`` to ``M @ x``).
    convolve : bool, keyword-only
        Give the matrix of :func:`fastcorr.convolve2d` instead.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(Ho * Wo, H * W)`` with ``(Ho, Wo)`` the output shape, dtype
        the kernel's (at least float64 when it is not complex or integer):
        ``M @ x.ravel() == correlate2d(x, kernel, mode, boundary).ravel()``.
        Taps that land on the same pixel (wrap and symm near small images)
        are summed.

    Examples
    --------
    The textbook's 3x3 image and 2x2 kernel: each row of ``M`` is the kernel
    laid out over the flattened image.

    >>> import numpy as np, fastcorr
    >>> K = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> M = fastcorr.correlation_matrix(K, (3, 3))
    >>> M.toarray()
    array([[0., 1., 0., 2., 3., 0., 0., 0., 0.],
           [0., 0., 1., 0., 2., 3., 0., 0., 0.],
           [0., 0., 0., 0., 1., 0., 2., 3., 0.],
           [0., 0., 0., 0., 0., 1., 0., 2., 3.]])
    >>> X = np.arange(9.0).reshape(3, 3)
    >>> (M @ X.ravel()).reshape(2, 2)
    array([[19., 25.],
           [37., 43.]])
    >>> np.array_equal(M @ X.ravel(), fastcorr.correlate2d(X, K, 'valid').ravel())
    True
    """
    import scipy.sparse  # imported here: it is slow to import and rarely needed

    shape_in = input_shape_arg(input_shape)
    k = as_array(kernel, "kernel", ndim=2)
    if mode == "valid":
        fits = all(s >= t for s, t in zip(shape_in, k.shape)) or all(s <= t for s, t in zip(shape_in, k.shape))
        if not fits:
            raise ValueError(
                "for mode 'valid', the input must be at least as large as the kernel in every "
                f"dimension (or the other way round): input_shape is {shape_in}, kernel has shape {k.shape}"
            )
    # The one validation path of correlate2d, with a stand-in image.
    name = "convolve2d" if convolve else "correlate2d"
    p = signal_args(name, np.zeros(shape_in, dtype=k.dtype), k, mode, boundary, 0, "auto", None)
    w = p.in2 if not p.swapped else p.in1
    dtype = np.result_type(w.dtype, np.float64) if w.dtype.kind not in "iuc" else w.dtype
    H, W = shape_in
    if p.swapped:
        return _swapped_valid(w, shape_in, dtype, convolve)
    if not convolve and w.dtype.kind == "c":
        w = np.conj(w)
    if convolve:
        w = w[::-1, ::-1]
    kh, kw = w.shape
    off0, off1 = _offsets(mode, w.shape, convolve)
    Ho, Wo = output_shape(mode, shape_in, w.shape)
    if Ho * Wo == 0 or H * W == 0 or kh * kw == 0:
        return scipy.sparse.csr_array((Ho * Wo, H * W), dtype=dtype)
    # rows[m, j] / cols[n, k]: the image row / column that tap (j, k) of
    # output (m, n) reads, or -1 outside the image under boundary 'fill'.
    rows = extended_index(np.arange(Ho)[:, None] + off0 + np.arange(kh)[None, :], H, p.boundary)
    cols = extended_index(np.arange(Wo)[:, None] + off1 + np.arange(kw)[None, :], W, p.boundary)
    r = rows[:, None, :, None]  # (Ho, 1, kh, 1)
    c = cols[None, :, None, :]  # (1, Wo, 1, kw)
    full = (Ho, Wo, kh, kw)
    out_index = np.broadcast_to((np.arange(Ho)[:, None] * Wo + np.arange(Wo)[None, :])[:, :, None, None], full)
    in_index = np.broadcast_to(r * W + c, full)
    inside = np.broadcast_to((r >= 0) & (c >= 0), full)
    data = np.broadcast_to(w.astype(dtype, copy=False)[None, None, :, :], full)
    keep = inside & (data != 0)
    coo = scipy.sparse.coo_array(
        (data[keep], (out_index[keep], in_index[keep])), shape=(Ho * Wo, H * W)
    )
    m = coo.tocsr()  # sums taps that share a pixel
    m.sum_duplicates()
    return m


def _swapped_valid(k, image_shape, dtype, convolve):
    """scipy's 'valid' swap: the output is the image sliding over the kernel."""
    # correlate2d(x, k, 'valid') with x smaller than k equals
    # flip(correlate(k, x)): out[m, n] = sum_{j,l} k[Ho-1-m+j, Wo-1-n+l] x[j, l];
    # convolve2d(x, k, 'valid') is convolve(k, x): out[m, n] = sum k[m+H-1-j, n+W-1-l] x[j, l].
    import scipy.sparse

    H, W = image_shape
    kh, kw = k.shape
    Ho, Wo = kh - H + 1, kw - W + 1
    m = np.arange(Ho)[:, None, None, None]
    n = np.arange(Wo)[None, :, None, None]
    j = np.arange(H)[None, None, :, None]
    l = np.arange(W)[None, None, None, :]
    if convolve:
        data = k[m + H - 1 - j, n + W - 1 - l]
    else:
        data = k[Ho - 1 - m + j, Wo - 1 - n + l]
    full = (Ho, Wo, H, W)
    out_index = np.broadcast_to(m * Wo + n, full)
    in_index = np.broadcast_to(j * W + l, full)
    data = data.astype(dtype, copy=False)
    keep = data != 0
    coo = scipy.sparse.coo_array(
        (data[keep], (out_index[keep], in_index[keep])), shape=(Ho * Wo, H * W)
    )
    return coo.tocsr()
