"""The public API layer: one module per family of public functions.

``signal`` (scipy.signal-style ``correlate2d`` / ``convolve2d``), ``layers``
(torch-style ``conv2d``, its backward pass, ``im2col`` / ``col2im``),
``matrix`` (correlation as a sparse matrix), ``receptive_field`` and
``include`` (where downstream Cython finds the ``.pxd`` files). The public
modules ``fastcorr.kernels``, ``fastcorr.nn`` and ``fastcorr.dask`` belong to
this layer too. Modules here check their arguments through
``fastcorr._engine.validate`` and compute through the engine; nothing below
imports them.
"""
