"""fastcorr: fast 2-D cross-correlation and convolution for CPUs.

A drop-in for ``scipy.signal.correlate2d`` / ``convolve2d`` with the
semantics of ``torch.nn.functional.conv2d`` for layers, compiled with OpenMP.
"""
__version__ = "0.1.0"

from ._api import correlate2d, convolve2d
from ._conv import conv2d, conv2d_backward, im2col, col2im, set_im2col_cap, get_im2col_cap
from ._config import get_num_threads, set_num_threads, threads, show_config
from ._dispatch import choose_method, set_autotune, get_autotune

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
]
