"""The methods: one module per way of computing a correlation.

``direct`` (register-blocked loops), ``im2col`` (gather + BLAS GEMM),
``fft`` (overlap-save and row-spectrum plans on ``scipy.fft``, with
``fft_kernels``), ``separable`` (two 1-D passes), ``winograd`` (F(2x2, 3x3)
for conv2d) and ``conv_direct`` (conv2d's direct kernels). Each compiled
module owns its C header in ``fastcorr/_simd``.

The ``.pxd`` files of ``direct``, ``im2col`` and ``separable`` are the
public C-level API for downstream Cython (``from fastcorr.methods.direct
cimport corr2d_f64``); their Python-level names are internal. A method
never imports the engine or the API layer.
"""
