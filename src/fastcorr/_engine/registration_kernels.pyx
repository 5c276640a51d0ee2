# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The pointwise passes of image registration, compiled.

:func:`cross_power` forms the cross-power spectrum of
``fastcorr.phase_cross_correlation`` (the product of one spectrum with the
other's conjugate, phase-normalised) in one pass instead of numpy's four;
:func:`absmax` finds the peak of the real correlation in one pass and
:func:`sum_squares` an image's energy. Both run
on the calling thread with the GIL released: the caller splits the arrays
into bands of rows on its own threads (``_api/registration.py``). The loops
are ``_simd/reg_kernels.h``'s.
"""
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "reg_kernels.h" nogil:
    void rk_xpower_f32(float* p, const float* a, const float* b, Py_ssize_t n, int phase, float floor_)
    void rk_xpower_f64(double* p, const double* a, const double* b, Py_ssize_t n, int phase, double floor_)
    double rk_sumsq_f32(const float* x, Py_ssize_t n)
    double rk_sumsq_f64(const double* x, Py_ssize_t n)
    Py_ssize_t rk_absmax_f32(const float* x, Py_ssize_t n)
    Py_ssize_t rk_absmax_f64(const double* x, Py_ssize_t n)
    int fc_cpu_has_avx2_fma()

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache


cdef int _contiguous(cnp.ndarray a, bint written) except -1:
    if not cnp.PyArray_ISCARRAY_RO(a) or not cnp.PyArray_ISNOTSWAPPED(a):
        raise ValueError("registration kernels need C-contiguous, aligned arrays in native byte order")
    if written and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("registration kernels write to a read-only array")
    return 0


def cross_power(cnp.ndarray out, cnp.ndarray a, cnp.ndarray b, bint phase, double floor):
    """``out = a * conj(b)``, divided by ``max(|a * conj(b)|, floor)`` with
    ``phase``; C-contiguous complex64 or complex128 arrays of one dtype and
    size (``out`` may be ``a``)."""
    cdef int t = cnp.PyArray_TYPE(a)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    if t != cnp.NPY_CFLOAT and t != cnp.NPY_CDOUBLE:
        raise TypeError("cross_power takes complex64 or complex128 arrays")
    if cnp.PyArray_TYPE(b) != t or cnp.PyArray_TYPE(out) != t:
        raise ValueError("cross_power: out, a and b must have one dtype")
    if cnp.PyArray_SIZE(b) != n or cnp.PyArray_SIZE(out) != n:
        raise ValueError("cross_power: out, a and b must have one size")
    _contiguous(out, True)
    _contiguous(a, False)
    _contiguous(b, False)
    if t == cnp.NPY_CFLOAT:
        with nogil:
            rk_xpower_f32(<float*> cnp.PyArray_DATA(out), <const float*> cnp.PyArray_DATA(a),
                          <const float*> cnp.PyArray_DATA(b), n, phase, <float> floor)
    else:
        with nogil:
            rk_xpower_f64(<double*> cnp.PyArray_DATA(out), <const double*> cnp.PyArray_DATA(a),
                          <const double*> cnp.PyArray_DATA(b), n, phase, floor)


def absmax(cnp.ndarray x):
    """The flat index of the first largest ``|x|`` of a C-contiguous float32
    or float64 array (of the first NaN if there is one), as
    ``numpy.argmax(numpy.abs(x))``."""
    cdef int t = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x), i
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        raise TypeError("absmax takes float32 or float64 arrays")
    if n == 0:
        raise ValueError("absmax of an empty array")
    _contiguous(x, False)
    if t == cnp.NPY_FLOAT:
        with nogil:
            i = rk_absmax_f32(<const float*> cnp.PyArray_DATA(x), n)
    else:
        with nogil:
            i = rk_absmax_f64(<const double*> cnp.PyArray_DATA(x), n)
    return i


def sum_squares(cnp.ndarray x):
    """The sum of ``x**2`` over a C-contiguous float32 or float64 array, in double."""
    cdef int t = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef double s
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        raise TypeError("sum_squares takes float32 or float64 arrays")
    _contiguous(x, False)
    if t == cnp.NPY_FLOAT:
        with nogil:
            s = rk_sumsq_f32(<const float*> cnp.PyArray_DATA(x), n)
    else:
        with nogil:
            s = rk_sumsq_f64(<const double*> cnp.PyArray_DATA(x), n)
    return s
