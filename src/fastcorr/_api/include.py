"""Compiled import: where downstream Cython code finds fastcorr's .pxd files."""
import os

__all__ = ["get_include"]


def get_include() -> str:
    """Directory to add to Cython's include path to ``cimport`` fastcorr.

    It is the directory that *contains* the ``fastcorr`` package folder, so
    that ``from fastcorr.methods.direct cimport corr2d_f64`` finds
    ``fastcorr/methods/direct.pxd`` (also ``fastcorr.methods.im2col`` and
    ``fastcorr.methods.separable``; the old paths ``fastcorr._direct``,
    ``fastcorr._im2col`` and ``fastcorr._separable`` keep working for one
    release). The C-level kernels are reached at run time through the
    compiled module (``import fastcorr.methods.direct``, done by the
    generated code), so no library needs linking; adding the same directory
    to the C compiler's include path is harmless.

    Returns
    -------
    str
        An absolute path.

    Examples
    --------
    >>> import os, fastcorr
    >>> inc = fastcorr.get_include()
    >>> os.path.isfile(os.path.join(inc, 'fastcorr', 'methods', 'direct.pxd'))
    True

    In a downstream ``setup.py``::

        cythonize(Extension('mymod', ['mymod.pyx']),
                  include_path=[fastcorr.get_include()])
    """
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
