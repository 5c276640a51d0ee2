# C-level API of the direct method, for downstream Cython code:
#     from fastcorr.methods.direct cimport corr2d_f64
# (the old path, fastcorr._direct, keeps working until the next release)
# Every function computes, for 0 <= m < Ho and 0 <= n < Wo,
#     out[m*ldo + n] = sum_{j<kh, k<kw} w[j*kw + k] * X(m + off0 + j, n + off1 + k)
# where X extends the H x W image x (row stride ldx, unit column stride)
# beyond its edges by `boundary`: 0 = constant `fill`, 1 = periodic (wrap),
# 2 = half-sample symmetric (scipy's 'symm'). It runs on `num_threads`
# OpenMP threads, needs no GIL and returns 0, or -1 if a small work buffer
# could not be allocated.

cdef int corr2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                    const float* w, Py_ssize_t kh, Py_ssize_t kw,
                    float* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                    Py_ssize_t off0, Py_ssize_t off1, int boundary, float fill,
                    int num_threads) noexcept nogil

cdef int corr2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx,
                    const double* w, Py_ssize_t kh, Py_ssize_t kw,
                    double* out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t ldo,
                    Py_ssize_t off0, Py_ssize_t off1, int boundary, double fill,
                    int num_threads) noexcept nogil

# For fastcorr's own plain-call path (fastcorr._engine.plain_call), not part
# of the public C-level API: whether the correlation is x * w[0, 0], which
# numpy computes faster than a thread team starts.
cdef bint is_small_scaling(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                           Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t Ho, Py_ssize_t Wo) noexcept
# The scaling of a 1x1 kernel: out = c * x, threaded above SCALE_BELOW
# values (same internal status).
cdef bint is_scaling(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t Ho, Py_ssize_t Wo) noexcept
cdef void scale2d_f32(const float* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx, float c,
                      float* out, Py_ssize_t ldo, int num_threads) noexcept nogil
cdef void scale2d_f64(const double* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t ldx, double c,
                      double* out, Py_ssize_t ldo, int num_threads) noexcept nogil
