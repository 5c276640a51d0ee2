# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The pointwise passes of normalized convolution, compiled.

``fastcorr._engine.normalized`` runs two correlations between two passes
over the pixels: :func:`prepare` turns the data and certainty into the two
correlations' inputs (a missing pixel's value replaced before any method
reads it), :func:`finish` turns their outputs into the result (the division,
astropy's rules for outputs with no certain pixel, ``preserve_nan``) and the
output certainty, in place. Each is one read of its inputs and one write
(numpy needed about ten passes and their temporaries); the loops are
``_simd/norm_kernels.h``'s, branch-free so that they vectorise.

One thread, on purpose: one core nearly saturates the memory bus on these
streams, and an OpenMP region left its idle thread spinning on the second
core while the FFT that follows ran there (see
``fastcorr.methods.fft_kernels.all_finite``).
"""
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "norm_kernels.h" nogil:
    Py_ssize_t nk_prep_f32(float* prod, float* cert, const float* x, const float* c, Py_ssize_t n,
                           float mv, float mc, Py_ssize_t* partial)
    Py_ssize_t nk_prep_f64(double* prod, double* cert, const double* x, const double* c, Py_ssize_t n,
                           double mv, double mc, Py_ssize_t* partial)
    Py_ssize_t nk_finish_f32(float* out, float* cert_out, const float* num, const float* den, const float* x,
                             const float* c, Py_ssize_t n, float zt, float scale, float mcentre, int preserve,
                             float inv_ksum)
    Py_ssize_t nk_finish_f64(double* out, double* cert_out, const double* num, const double* den,
                             const double* x, const double* c, Py_ssize_t n, double zt, double scale,
                             double mcentre, int preserve, double inv_ksum)
    int fc_cpu_has_avx2_fma()

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache


cdef int _check(list written, list read) except -1:
    """Every array C-contiguous and aligned (the written ones writeable), of
    one float dtype and size: these passes index them all alike."""
    cdef cnp.ndarray first = written[0]
    cdef cnp.ndarray a
    cdef int typenum = cnp.PyArray_TYPE(first)
    if typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE:
        raise TypeError("the pointwise passes take float32 or float64 arrays")
    for a in written + read:
        if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_SIZE(a) != cnp.PyArray_SIZE(first):
            raise ValueError("the pointwise passes need arrays of one dtype and size")
        if not cnp.PyArray_ISCARRAY_RO(a) or not cnp.PyArray_ISNOTSWAPPED(a):
            raise ValueError("the pointwise passes need C-contiguous, aligned arrays in native byte order")
    for a in written:
        if not cnp.PyArray_ISWRITEABLE(a):
            raise ValueError("the pointwise passes write to a read-only array")
    return 0


def prepare(cnp.ndarray x, c, cnp.ndarray prod, cnp.ndarray cert, double miss_value, double miss_cert):
    """Fill ``prod`` with ``c * x`` and ``cert`` with ``c``, for C-contiguous
    arrays of one float dtype and shape (``c`` None: 1 everywhere).

    A missing pixel (NaN in ``x``, or certainty 0) gets ``miss_value *
    miss_cert`` and ``miss_cert`` instead (0 and 0 to interpolate it; the
    fill value and 1 to fill it): its value is never multiplied.

    Returns ``(missing, partial)``: the counts of missing pixels and of
    pixels whose certainty is strictly between 0 and 1.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef cnp.ndarray carr = x if c is None else c
    cdef Py_ssize_t missing = 0, partial = 0
    _check([prod, cert], [x, carr])
    cdef void* cp = NULL if c is None else cnp.PyArray_DATA(carr)
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        with nogil:
            missing = nk_prep_f64(<double*> cnp.PyArray_DATA(prod), <double*> cnp.PyArray_DATA(cert),
                                  <const double*> cnp.PyArray_DATA(x), <const double*> cp, n,
                                  miss_value, miss_cert, &partial)
    else:
        with nogil:
            missing = nk_prep_f32(<float*> cnp.PyArray_DATA(prod), <float*> cnp.PyArray_DATA(cert),
                                  <const float*> cnp.PyArray_DATA(x), <const float*> cp, n,
                                  <float> miss_value, <float> miss_cert, &partial)
    return missing, partial


def finish(cnp.ndarray num, cnp.ndarray den, cnp.ndarray x, c, double zero_tol, double scale,
           double miss_centre, bint preserve_nan, bint want_cert, double inv_ksum):
    """The result ``num / den * scale`` in ``num``, in place, and (with
    ``want_cert``) the certainty ``den * inv_ksum`` in ``den``.

    ``x`` and ``c`` (None: 1 everywhere) are the data and certainty at the
    same pixels, all arrays C-contiguous of one float dtype and shape.
    Where ``|den| <= zero_tol`` the result is the pixel itself (or
    ``miss_centre`` for a missing pixel), times ``scale``, and the certainty
    0; ``preserve_nan`` makes missing pixels NaN. Returns the number of NaN
    results.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(num)
    cdef cnp.ndarray carr = x if c is None else c
    cdef Py_ssize_t nans
    _check([num, den], [x, carr])
    cdef void* cp = NULL if c is None else cnp.PyArray_DATA(carr)
    cdef void* co = cnp.PyArray_DATA(den) if want_cert else NULL
    if cnp.PyArray_TYPE(num) == cnp.NPY_DOUBLE:
        with nogil:
            nans = nk_finish_f64(<double*> cnp.PyArray_DATA(num), <double*> co, <const double*> cnp.PyArray_DATA(num),
                                 <const double*> cnp.PyArray_DATA(den), <const double*> cnp.PyArray_DATA(x),
                                 <const double*> cp, n, zero_tol, scale, miss_centre, preserve_nan, inv_ksum)
    else:
        with nogil:
            nans = nk_finish_f32(<float*> cnp.PyArray_DATA(num), <float*> co, <const float*> cnp.PyArray_DATA(num),
                                 <const float*> cnp.PyArray_DATA(den), <const float*> cnp.PyArray_DATA(x),
                                 <const float*> cp, n, <float> zero_tol, <float> scale, <float> miss_centre,
                                 preserve_nan, <float> inv_ksum)
    return nans
