"""fastcorr: fast 2-D cross-correlation and convolution for CPUs.

A drop-in for ``scipy.signal.correlate2d`` / ``convolve2d`` with the
semantics of ``torch.nn.functional.conv2d`` for layers, compiled with OpenMP.

The package has four layers, and imports only point down (the user guide's
page "Layout of the source"):

* the public API: this module's names, implemented in ``fastcorr._api``
  (one module per family), and the public modules ``kernels``, ``nn`` and
  ``dask``; the command line in ``fastcorr._cli``;
* the engine, ``fastcorr._engine``: argument checking, the dispatcher and
  its cost model, plans, threads and configuration, and the compiled fast
  path of plain calls;
* the methods, ``fastcorr.methods``: direct, im2col, fft, separable,
  winograd (and conv2d's direct kernels), each a compiled module whose
  ``.pxd`` is the public C-level API for downstream Cython;
* the SIMD kernels, C headers in ``fastcorr/_simd``.
"""
from ._version import __version__ as __version__  # "as": an explicit re-export for type checkers
from ._api.signal import correlate2d, convolve2d
from ._api.layers import conv2d, conv2d_backward, im2col, col2im, set_im2col_cap, get_im2col_cap
from ._engine.config import get_num_threads, set_num_threads, threads, show_config
from ._engine.dispatch import choose_method, set_autotune, get_autotune
from ._api.matrix import correlation_matrix
from ._api.receptive_field import receptive_field
from ._api.registration import phase_cross_correlation
from ._api.include import get_include
from ._api.matching import match_template, peaks
from ._api.normalized import normalized_convolution
from ._api.piv import piv
from . import kernels, nn
from . import ndimage
from ._api.nd import correlate, convolve

__all__ = [
    "correlate2d",
    "convolve2d",
    "conv2d",
    "conv2d_backward",
    "im2col",
    "col2im",
    "set_im2col_cap",
    "get_im2col_cap",
    "choose_method",
    "set_autotune",
    "get_autotune",
    "get_num_threads",
    "set_num_threads",
    "threads",
    "show_config",
    "correlation_matrix",
    "receptive_field",
    "phase_cross_correlation",
    "get_include",
    "match_template",
    "peaks",
    "normalized_convolution",
    "kernels",
    "nn",
    "ndimage",
    "correlate",
    "convolve",
    "piv",
]
