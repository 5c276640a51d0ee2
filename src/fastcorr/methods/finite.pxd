# The NaN/inf test of _simd/simd_kernels.h for the compiled modules (cimported and
# inlined by direct, winograd and fft_kernels).

from libc.stdint cimport uint64_t

cdef extern from "simd_kernels.h" nogil:
    int fc_all_finite_f32(const float* src, Py_ssize_t n)
    int fc_all_finite_f64(const double* src, Py_ssize_t n)

ctypedef fused finite_t:
    float
    double
    uint64_t


cdef inline bint finite_values(const finite_t* src, Py_ssize_t n) noexcept nogil:
    """Whether src[0 .. n) holds no NaN or inf (integers: always)."""
    if finite_t is float:
        return fc_all_finite_f32(src, n) != 0
    elif finite_t is double:
        return fc_all_finite_f64(src, n) != 0
    else:
        return True
