# C-level API of the im2col method, for downstream Cython code:
#     from fastcorr.methods.im2col cimport im2col_f64
# (the old path, fastcorr._im2col, keeps working until the next release)
# im2col_<t> writes the columns of one C x H x W image (C-contiguous) for a
# kh x kw kernel with stride (sh, sw), zero padding (ph, pw) and dilation
# (dh, dw), as torch.nn.functional.unfold: cols is (C*kh*kw) x (Ho*Wo),
# row-major, row (c*kh + j)*kw + k, column oy*Wo + ox, with
#     Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1   (Wo likewise).
# Multiplying a (C_out x C*kh*kw) weight matrix by cols is the convolution.
# Runs on num_threads OpenMP threads without the GIL; returns 0, or -1 when
# the geometry is invalid (a size < 1 or an empty output).

cdef int im2col_f32(const float* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                    float* cols, int num_threads) noexcept nogil

cdef int im2col_f64(const double* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                    double* cols, int num_threads) noexcept nogil
