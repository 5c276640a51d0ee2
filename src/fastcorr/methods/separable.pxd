# C-level API of the separable method, for downstream Cython code:
#     from fastcorr.methods.separable cimport sepcorr2d_f64
# (the old path, fastcorr._separable, keeps working until the next release)
# sepcorr2d_<t> computes the offset correlation of direct.pxd for the
# rank-1 kernel w[j, k] = u[j] * v[k] (kh taps u, kw taps v) by two 1-D
# passes (kh + kw multiply-adds per output instead of kh * kw):
#     out[m*Wo + n] (+)= sum_{j,k} u[j] v[k] X(m + off0 + j, n + off1 + k)
# x is H x W with row stride W (C-contiguous); out is Ho x Wo, C-contiguous.
# boundary: 0 fill (with `fill`), 1 wrap, 2 symm. With accumulate != 0 the
# result is added to out (sum rank-1 terms for a rank-r kernel). Runs on
# num_threads OpenMP threads without the GIL, with a bounded per-thread band
# buffer; returns 0, or -1 if that buffer could not be allocated.

cdef int sepcorr2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W,
                       const float* u, Py_ssize_t kh, const float* v, Py_ssize_t kw,
                       float* out, Py_ssize_t Ho, Py_ssize_t Wo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, float fill,
                       int accumulate, int num_threads) noexcept nogil

cdef int sepcorr2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W,
                       const double* u, Py_ssize_t kh, const double* v, Py_ssize_t kw,
                       double* out, Py_ssize_t Ho, Py_ssize_t Wo,
                       Py_ssize_t off0, Py_ssize_t off1, int boundary, double fill,
                       int accumulate, int num_threads) noexcept nogil
