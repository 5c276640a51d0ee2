"""scipy.ndimage's linear filters, drop-in and threaded.

``fastcorr.ndimage.correlate(...)`` takes the arguments of
``scipy.ndimage.correlate`` and gives its results, on several threads and
with fastcorr's methods; likewise ``convolve``, ``correlate1d``,
``convolve1d``, ``gaussian_filter``, ``gaussian_filter1d``,
``uniform_filter``, ``uniform_filter1d``, ``sobel``, ``prewitt`` and
``laplace``. Every function also takes the keyword-only ``num_threads``
(and the N-D correlations ``method``). Where scipy.ndimage raises
RuntimeError for a bad argument these raise :class:`NdimageArgumentError`,
which is both a ValueError and a RuntimeError.
"""
from ._api.ndimage import (
    NdimageArgumentError,
    convolve,
    convolve1d,
    correlate,
    correlate1d,
    gaussian_filter,
    gaussian_filter1d,
    laplace,
    prewitt,
    sobel,
    uniform_filter,
    uniform_filter1d,
)

__all__ = ["correlate", "convolve", "correlate1d", "convolve1d", "gaussian_filter", "gaussian_filter1d",
           "uniform_filter", "uniform_filter1d", "sobel", "prewitt", "laplace", "NdimageArgumentError"]
