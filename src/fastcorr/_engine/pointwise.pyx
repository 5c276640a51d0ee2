# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The pointwise passes of normalized convolution, compiled.

``fastcorr._engine.normalized`` runs two correlations between two passes
over the pixels: :func:`prepare` turns the data and certainty into the two
correlations' inputs (a missing pixel's value replaced before any method
reads it), :func:`finish` turns their outputs into the result (the division,
astropy's rules for outputs with no certain pixel, ``preserve_nan``) and the
output certainty, in place. Each is one read of its inputs and one write;
with numpy they were about ten passes and temporaries (1024² float64: 6-9 ms
against 1.3 for two 11x11 correlations).

One thread, on purpose: one core nearly saturates the memory bus on these
streams, and an OpenMP region left its idle thread spinning on the second
core while the FFT that follows ran there (see
``fastcorr.methods.fft_kernels.all_finite``).
"""
from libc.math cimport isnan, fabs, NAN
cimport numpy as cnp
import numpy as np

cnp.import_array()

ctypedef fused real:
    float
    double


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


cdef (Py_ssize_t, Py_ssize_t) _prepare(const real* x, const real* c, bint has_c, real* prod, real* cert,
                                        Py_ssize_t n, real miss_value, real miss_cert) noexcept nogil:
    cdef Py_ssize_t i, missing = 0, partial = 0
    cdef real xi, ci
    for i in range(n):
        xi = x[i]
        ci = c[i] if has_c else 1
        if isnan(xi) or ci == 0:
            prod[i] = miss_value * miss_cert
            cert[i] = miss_cert
            missing += 1
        else:
            prod[i] = xi * ci
            cert[i] = ci
            if ci < 1:
                partial += 1
    return missing, partial


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
    cdef bint has_c = c is not None
    cdef cnp.ndarray carr = c if has_c else x
    cdef (Py_ssize_t, Py_ssize_t) counts
    _check([prod, cert], [x, carr])
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        with nogil:
            counts = _prepare(<const double*> cnp.PyArray_DATA(x), <const double*> cnp.PyArray_DATA(carr), has_c,
                              <double*> cnp.PyArray_DATA(prod), <double*> cnp.PyArray_DATA(cert), n,
                              <double> miss_value, <double> miss_cert)
    else:
        with nogil:
            counts = _prepare(<const float*> cnp.PyArray_DATA(x), <const float*> cnp.PyArray_DATA(carr), has_c,
                              <float*> cnp.PyArray_DATA(prod), <float*> cnp.PyArray_DATA(cert), n,
                              <float> miss_value, <float> miss_cert)
    return counts


cdef Py_ssize_t _finish(real* num, real* den, const real* x, const real* c, bint has_c, Py_ssize_t n,
                        real zero_tol, real scale, real miss_centre, bint preserve_nan, bint want_cert,
                        real inv_ksum) noexcept nogil:
    cdef Py_ssize_t i, nans = 0
    cdef real d, v, xi
    cdef bint miss
    for i in range(n):
        d = den[i]
        xi = x[i]
        miss = isnan(xi) or (has_c and c[i] == 0)
        if fabs(d) <= zero_tol:
            # No certain pixel under the kernel: the pixel itself (astropy).
            v = (miss_centre if miss else xi) * scale
            if want_cert:
                den[i] = 0
        else:
            v = num[i] / d * scale
            if want_cert:
                den[i] = d * inv_ksum
        if preserve_nan and miss:
            v = NAN
        if isnan(v):
            nans += 1
        num[i] = v
    return nans


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
    cdef bint has_c = c is not None
    cdef cnp.ndarray carr = c if has_c else x
    cdef Py_ssize_t nans
    _check([num, den], [x, carr])
    if cnp.PyArray_TYPE(num) == cnp.NPY_DOUBLE:
        with nogil:
            nans = _finish(<double*> cnp.PyArray_DATA(num), <double*> cnp.PyArray_DATA(den),
                           <const double*> cnp.PyArray_DATA(x), <const double*> cnp.PyArray_DATA(carr), has_c, n,
                           <double> zero_tol, <double> scale, <double> miss_centre, preserve_nan, want_cert,
                           <double> inv_ksum)
    else:
        with nogil:
            nans = _finish(<float*> cnp.PyArray_DATA(num), <float*> cnp.PyArray_DATA(den),
                           <const float*> cnp.PyArray_DATA(x), <const float*> cnp.PyArray_DATA(carr), has_c, n,
                           <float> zero_tol, <float> scale, <float> miss_centre, preserve_nan, want_cert,
                           <float> inv_ksum)
    return nans
