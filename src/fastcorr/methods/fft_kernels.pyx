# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled helpers of the FFT method (kept apart from the pure-Python engine).

``planar_cgemm``: per frequency bin p, ``Y[p] = A[p] @ B[p]`` for complex
matrices given as planar real/imaginary parts. This is the channel sum of
conv2d in the frequency domain: many small products (n x C times C x O),
OpenMP over bins. BLAS is not used here on purpose: a threaded BLAS called
on thousands of tiny matrices spends its time waking threads (measured
450x slower than single-threaded on a busy 2-core machine).

``spectral_rows``: the column sums of the row-spectrum plan of the FFT
method (only the rows transformed; per frequency, a 1-D correlation down
the columns, see ``_simd/spec_kernels.h``).

``all_finite``: whether an array holds no NaN or inf, the test behind the
rule that 'auto' never runs the FFT on such values. ``np.isfinite(a).all()``
costs ~2 us even on a 31x31 kernel (a temporary boolean array and a
reduction), which is 3% of a small FFT call; this reads the values once.
"""
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
cimport numpy as cnp
import numpy as np

cnp.import_array()

from fastcorr.methods.finite cimport finite_values

cdef extern from "spec_kernels.h" nogil:
    void fc_spec_rows_f32(float* out, Py_ssize_t ldo, const float* x, Py_ssize_t ldx, Py_ssize_t H,
                          const float* a, const float* b, Py_ssize_t ldk, Py_ssize_t kh,
                          Py_ssize_t off, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n)
    void fc_spec_rows_f64(double* out, Py_ssize_t ldo, const double* x, Py_ssize_t ldx, Py_ssize_t H,
                          const double* a, const double* b, Py_ssize_t ldk, Py_ssize_t kh,
                          Py_ssize_t off, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n)
    void fc_spec_rows_f32_base(float* out, Py_ssize_t ldo, const float* x, Py_ssize_t ldx, Py_ssize_t H,
                               const float* a, const float* b, Py_ssize_t ldk, Py_ssize_t kh,
                               Py_ssize_t off, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n)
    void fc_spec_rows_f64_base(double* out, Py_ssize_t ldo, const double* x, Py_ssize_t ldx, Py_ssize_t H,
                               const double* a, const double* b, Py_ssize_t ldk, Py_ssize_t kh,
                               Py_ssize_t off, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n)
    int fc_cpu_has_avx2_fma()

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache


ctypedef fused real_t:
    float
    double


def planar_cgemm(const real_t[:, :, ::1] ar, const real_t[:, :, ::1] ai,
                 const real_t[:, :, ::1] br, const real_t[:, :, ::1] bi,
                 real_t[:, :, ::1] yr, real_t[:, :, ::1] yi, int num_threads):
    """yr + i yi = (ar + i ai) @ (br + i bi) for every leading index (trusted shapes)."""
    cdef Py_ssize_t P = ar.shape[0], n = ar.shape[1], C = ar.shape[2], O = br.shape[2]
    cdef Py_ssize_t p, i, c, o
    cdef real_t xr, xi
    cdef real_t* outr
    cdef real_t* outi
    cdef const real_t* rr
    cdef const real_t* ri
    with nogil:
        for p in prange(P, schedule='static', num_threads=max(1, num_threads)):
            for i in range(n):
                outr = &yr[p, i, 0]
                outi = &yi[p, i, 0]
                for o in range(O):
                    outr[o] = 0
                    outi[o] = 0
                for c in range(C):
                    xr = ar[p, i, c]
                    xi = ai[p, i, c]
                    rr = &br[p, c, 0]
                    ri = &bi[p, c, 0]
                    for o in range(O):
                        outr[o] = outr[o] + xr * rr[o] - xi * ri[o]
                        outi[o] = outi[o] + xr * ri[o] + xi * rr[o]


def spectral_rows(const real_t[:, ::1] x, const real_t[:, ::1] a, const real_t[:, ::1] b,
                  real_t[:, ::1] out, Py_ssize_t off, int num_threads, bint portable=False):
    """``out[m] = sum_j K[j] * X[m + off + j]`` per frequency (trusted shapes).

    ``x``: the spectra of the image's rows, ``(H, 2F)`` interleaved real and
    imaginary parts; ``a``, ``b``: ``(kh, >= 2F)``, the kernel rows' spectra
    as ``(Kr, Kr)`` and ``(Ki, Ki)`` pairs; ``out``: ``(Ho, >= 2F)`` (values
    past 2F are left alone). Rows of X outside ``0 .. H-1`` are zero. Output
    rows are split in bands over ``num_threads`` threads. ``portable`` runs
    the plain C loop instead of the AVX2 one the CPU may have (for tests).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft_kernels import spectral_rows
    >>> X = np.array([[1 + 2j], [3 - 1j]])  # two image rows, one frequency
    >>> K = np.array([2 - 1j])              # one kernel row
    >>> a, b = np.repeat(K.real, 2)[None], np.repeat(K.imag, 2)[None]
    >>> Y = np.empty((2, 2))
    >>> spectral_rows(X.view(float), a, b, Y, 0, 1)
    >>> Y.view(complex).ravel(), (K[0] * X).ravel()
    (array([4.+3.j, 5.-5.j]), array([4.+3.j, 5.-5.j]))
    """
    cdef Py_ssize_t Ho = out.shape[0]
    cdef int nthreads = max(1, min(num_threads, Ho))
    cdef int band
    if (x.shape[1] % 2 or a.shape[1] < x.shape[1] or out.shape[1] < x.shape[1]
            or b.shape[0] != a.shape[0] or b.shape[1] != a.shape[1]):
        raise ValueError(
            f"spectral_rows: x rows of {x.shape[1]} values (even), a and b of one shape "
            f"{(a.shape[0], a.shape[1])} / {(b.shape[0], b.shape[1])} and out rows of at least "
            f"as many values (got {out.shape[1]})"
        )
    if x.shape[0] == 0 or x.shape[1] == 0 or Ho == 0 or a.shape[0] == 0:
        return
    with nogil:
        if nthreads == 1:  # no OpenMP team to start (or leave spinning)
            _spectral_band(x, a, b, out, off, 0, Ho, portable)
        else:
            for band in prange(nthreads, schedule='static', num_threads=nthreads):
                _spectral_band(x, a, b, out, off, Ho * band // nthreads, Ho * (band + 1) // nthreads, portable)


cdef inline void _spectral_band(const real_t[:, ::1] x, const real_t[:, ::1] a, const real_t[:, ::1] b,
                                real_t[:, ::1] out, Py_ssize_t off, Py_ssize_t m0, Py_ssize_t m1,
                                bint portable) noexcept nogil:
    """Output rows m0 .. m1-1 of :func:`spectral_rows`."""
    if real_t is float:
        (fc_spec_rows_f32_base if portable else fc_spec_rows_f32)(
            &out[0, 0], out.shape[1], &x[0, 0], x.shape[1], x.shape[0], &a[0, 0], &b[0, 0],
            a.shape[1], a.shape[0], off, m0, m1, x.shape[1])
    else:
        (fc_spec_rows_f64_base if portable else fc_spec_rows_f64)(
            &out[0, 0], out.shape[1], &x[0, 0], x.shape[1], x.shape[0], &a[0, 0], &b[0, 0],
            a.shape[1], a.shape[0], off, m0, m1, x.shape[1])


def all_finite(a):
    """Whether ``a`` holds no NaN or inf (always True for integers and bools).

    One thread, on purpose: a threaded check (an OpenMP region) left its
    idle thread spinning on the second core while the FFT that follows ran
    there, and 1024² FFT calls took 1.4-2x as long.

    Parameters
    ----------
    a : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft_kernels import all_finite
    >>> all_finite(np.array([1.0, 2.0])), all_finite(np.array([1.0, np.inf]))
    (True, False)
    """
    cdef cnp.ndarray arr = a if type(a) is np.ndarray else np.asarray(a)
    if arr.dtype.kind in "biu":
        return True
    cdef int typenum = cnp.PyArray_TYPE(arr)
    cdef bint double_width
    if typenum == cnp.NPY_FLOAT or typenum == cnp.NPY_CFLOAT:
        double_width = False
    elif typenum == cnp.NPY_DOUBLE or typenum == cnp.NPY_CDOUBLE:
        double_width = True
    else:
        return bool(np.isfinite(arr).all())
    if not (cnp.PyArray_ISCARRAY_RO(arr) and cnp.PyArray_ISNOTSWAPPED(arr)):
        return bool(np.isfinite(arr).all())
    cdef Py_ssize_t n = cnp.PyArray_SIZE(arr)
    if typenum == cnp.NPY_CFLOAT or typenum == cnp.NPY_CDOUBLE:
        n *= 2  # real and imaginary parts alike
    cdef const void* data = cnp.PyArray_DATA(arr)
    cdef bint finite
    with nogil:
        if double_width:
            finite = finite_values(<const double*> data, n)
        else:
            finite = finite_values(<const float*> data, n)
    return finite


cdef extern from "colfft_kernels.h" nogil:
    int fc_colfft_ok(Py_ssize_t N0)
    void fc_colfft_dif_f32(float* x, Py_ssize_t N0, Py_ssize_t nf, Py_ssize_t s, const float* tw, int portable)
    void fc_colfft_dit_f32(float* x, Py_ssize_t N0, Py_ssize_t nf, Py_ssize_t s, const float* tw, int portable)


def column_twiddles(Py_ssize_t n0):
    """The twiddles of :func:`column_fft` for columns of length ``n0`` (a
    power of two): ``exp(-2 pi i k / n0)``, k < n0 / 2, complex64."""
    if not fc_colfft_ok(n0):
        raise ValueError(f"n0 must be a power of two from 2 on, got {n0}")
    return np.exp(-2j * np.pi * np.arange(n0 // 2) / n0).astype(np.complex64)


def column_fft(x, tw, bint inverse, Py_ssize_t c0=0, Py_ssize_t c1=-1, bint portable=False):
    """In place: the FFT down the columns of each (N0, F) plane of ``x``
    (complex64, (G, N0, F), contiguous along its last axis), columns
    ``c0 .. c1 - 1`` (all: ``c1 = -1``), N0 a power of two, ``tw`` from
    :func:`column_twiddles`. Without the GIL; calls on disjoint column
    ranges may run on different threads.

    Forward (``inverse=False``): natural order in, the frequencies in
    bit-reversed order out (row k holds frequency bitrev(k)). Inverse:
    bit-reversed order in, natural order out, unnormalised (N0 times the
    inverse). The product of two forward transforms, taken back by the
    inverse, is a circular convolution down the columns: the order is never
    undone (``_simd/colfft_kernels.h``). ``portable``: the scalar loops (tests).

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft_kernels import column_fft, column_twiddles
    >>> x = np.zeros((1, 4, 1), np.complex64); x[0, 1, 0] = 1
    >>> column_fft(x, column_twiddles(4), False)
    >>> bool(np.allclose(x[0, :, 0], np.exp(-2j * np.pi * np.array([0, 2, 1, 3]) / 4)))  # bit-reversed
    True
    >>> column_fft(x, column_twiddles(4), True); x[0, :, 0].real
    array([0., 4., 0., 0.], dtype=float32)
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.complex64 or x.ndim != 3:
        raise ValueError("x must be a complex64 array of 3 dimensions")
    cdef Py_ssize_t G = x.shape[0], N0 = x.shape[1], F = x.shape[2]
    if not fc_colfft_ok(N0):
        raise ValueError(f"x's columns must have a power-of-two length from 2 on, got {N0}")
    if not isinstance(tw, np.ndarray) or tw.dtype != np.complex64 or tw.ndim != 1 or tw.shape[0] != N0 // 2 \
            or not tw.flags.c_contiguous:
        raise ValueError(f"tw must be column_twiddles({N0})")
    if c1 < 0:
        c1 = F
    if c0 < 0 or c1 > F or c0 > c1:
        raise ValueError(f"columns {c0}..{c1} are not within 0..{F}")
    if not x.flags.writeable:
        raise ValueError("x must be writeable")
    if G == 0 or F == 0 or c0 == c1:
        return
    cdef float[:, :, ::1] xv = x.view(np.float32)   # needs the last axis contiguous
    cdef const float[::1] tv = tw.view(np.float32)
    if xv.strides[1] % 4 or xv.strides[0] % 4 or xv.strides[1] < 0 or xv.strides[0] < 0:
        raise ValueError("x's strides must be whole, non-negative floats")
    cdef Py_ssize_t s = xv.strides[1] // 4, sg = xv.strides[0] // 4, g
    cdef float* base = &xv[0, 0, 0]
    with nogil:
        for g in range(G):
            if inverse:
                fc_colfft_dit_f32(base + g * sg + 2 * c0, N0, 2 * (c1 - c0), s, &tv[0], portable)
            else:
                fc_colfft_dif_f32(base + g * sg + 2 * c0, N0, 2 * (c1 - c0), s, &tv[0], portable)


cdef extern from "colfft_kernels.h" nogil:
    int fc_colfft64_ok(Py_ssize_t N0)
    int fcd_fuse16
    int fcd_simd(int portable)
    int fcd_simd512(int portable)
    void fc_colfft_dif_f64(double* x, Py_ssize_t N0, Py_ssize_t nf, Py_ssize_t s, const double* tw, int portable)
    void fc_colfft_dit_f64(double* x, Py_ssize_t N0, Py_ssize_t nf, Py_ssize_t s, const double* tw, int portable)
    void fc_colcorr_f64(double* x, Py_ssize_t N0, Py_ssize_t nf, Py_ssize_t s, const double* tw,
                        const double* k, Py_ssize_t ks, Py_ssize_t blk, double* buf, int fuse, int portable)


def column_twiddles64(Py_ssize_t n0):
    """The twiddles of :func:`column_fft64` and :func:`column_correlate64`
    for columns of length ``n0`` (``2**a * 3**b * 5**c``, from 2 on):
    ``exp(-2 pi i k / n0)``, k < n0, complex128."""
    if not fc_colfft64_ok(n0):
        raise ValueError(f"n0 must be 2**a * 3**b * 5**c from 2 on, got {n0}")
    return np.exp(-2j * np.pi * np.arange(n0) / n0)


def column_order64(Py_ssize_t n0):
    """The frequency held by each row after :func:`column_fft64`'s forward
    transform of length ``n0``: the digit reversal of its radix-5, radix-3
    and radix-2 stages (the bit reversal for a power of two).

    Examples
    --------
    >>> from fastcorr.methods.fft_kernels import column_order64
    >>> column_order64(8).tolist(), column_order64(6).tolist()
    ([0, 4, 2, 6, 1, 5, 3, 7], [0, 3, 1, 4, 2, 5])
    """
    if not fc_colfft64_ok(n0):
        raise ValueError(f"n0 must be 2**a * 3**b * 5**c from 2 on, got {n0}")
    radices = []
    m = n0
    for r in (5, 3):
        while m % r == 0:
            radices.append(r)
            m //= r
    while m % 4 == 0 and m > 2:
        radices += [2, 2]
        m //= 4
    if m == 2:
        radices.append(2)
    # row index = sum of digits d_i * (N0 / (r_0 ... r_i)) in stage order; frequency = digits reversed
    order = np.zeros(n0, dtype=np.intp)
    for row in range(n0):
        rest, freq, scale = row, 0, 1
        L = n0
        for r in radices:
            L //= r
            d = rest // L
            rest -= d * L
            freq += d * scale
            scale *= r
        order[row] = freq
    return order


cdef double* _plane64(x, name, Py_ssize_t* N0, Py_ssize_t* F, Py_ssize_t* s) except NULL:
    """The first value of a writeable 2-D complex128 array contiguous along
    its rows (``s``: its row stride in doubles)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.complex128 or x.ndim != 2:
        raise ValueError(f"{name} must be a complex128 array of 2 dimensions")
    if not x.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if x.shape[1] > 1 and x.strides[1] != 16:
        raise ValueError(f"{name} must be contiguous along its rows")
    cdef double[:, :] v = x.view(np.float64)
    if v.strides[0] % 8 or v.strides[0] < 0:
        raise ValueError(f"{name}'s rows must be a whole, non-negative number of doubles apart")
    N0[0], F[0], s[0] = x.shape[0], x.shape[1], v.strides[0] // 8
    return &v[0, 0] if x.shape[0] and x.shape[1] else <double*> 1


def _check_tw64(tw, Py_ssize_t N0):
    if not fc_colfft64_ok(N0):
        raise ValueError(f"the columns' length must be 2**a * 3**b * 5**c from 2 on, got {N0}")
    if not isinstance(tw, np.ndarray) or tw.dtype != np.complex128 or tw.ndim != 1 or tw.shape[0] != N0 \
            or not tw.flags.c_contiguous:
        raise ValueError(f"tw must be column_twiddles64({N0})")


def column_fft64(x, tw, bint inverse, Py_ssize_t c0=0, Py_ssize_t c1=-1, bint portable=False):
    """In place: the FFT down the columns ``c0 .. c1 - 1`` (all: ``c1 = -1``)
    of ``x`` (complex128, (N0, F), contiguous along its rows), N0 a power of
    two, ``tw`` from :func:`column_twiddles64`; the float64 counterpart of
    :func:`column_fft` (forward: bit-reversed order out; inverse:
    bit-reversed order in, unnormalised). Without the GIL.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft_kernels import column_fft64, column_twiddles64
    >>> x = np.zeros((4, 1), complex); x[1, 0] = 1
    >>> column_fft64(x, column_twiddles64(4), False)
    >>> bool(np.allclose(x[:, 0], np.exp(-2j * np.pi * np.array([0, 2, 1, 3]) / 4)))  # bit-reversed
    True
    >>> column_fft64(x, column_twiddles64(4), True); x[:, 0].real
    array([0., 4., 0., 0.])
    """
    cdef Py_ssize_t N0, F, s
    cdef double* base = _plane64(x, "x", &N0, &F, &s)
    _check_tw64(tw, N0)
    if c1 < 0:
        c1 = F
    if c0 < 0 or c1 > F or c0 > c1:
        raise ValueError(f"columns {c0}..{c1} are not within 0..{F}")
    if F == 0 or c0 == c1:
        return
    cdef const double[::1] tv = tw.view(np.float64)
    with nogil:
        if inverse:
            fc_colfft_dit_f64(base + 2 * c0, N0, 2 * (c1 - c0), s, &tv[0], portable)
        else:
            fc_colfft_dif_f64(base + 2 * c0, N0, 2 * (c1 - c0), s, &tv[0], portable)


def column_correlate64(x, tw, k, Py_ssize_t c0=0, Py_ssize_t c1=-1, Py_ssize_t block=16,
                       bint portable=False, bint copy=False, bint fuse=True):
    """In place: the columns ``c0 .. c1 - 1`` of ``x`` (complex128, (N0, F),
    contiguous along its rows; N0 a power of two) circularly correlated
    down the columns through ``k``: forward column transform, product with
    ``k`` ((N0, >= c1) complex128, contiguous along its rows: the kernel's
    column spectrum with its rows in bit-reversed order and divided by N0),
    inverse transform, ``block`` columns at a time (each block stays in
    cache through the three steps; ``copy``: each block copied to a
    contiguous buffer first; both measured slower than whole rows), and
    for an even N0 the forward's last pass, the product and the inverse's
    first pass fused into one (``fuse``). ``tw`` from :func:`column_twiddles64`.
    Without the GIL; calls on disjoint column ranges may run on different
    threads.

    Examples
    --------
    >>> import numpy as np
    >>> from fastcorr.methods.fft_kernels import column_correlate64, column_fft64, column_twiddles64
    >>> tw = column_twiddles64(8)
    >>> x = np.zeros((8, 1), complex); x[2, 0] = 1           # a unit impulse at row 2
    >>> k = np.zeros((8, 1), complex); k[1, 0] = 1 / 8       # a shift by one row
    >>> column_fft64(k, tw, False)                           # bit-reversed rows, / N0
    >>> column_correlate64(x, tw, k); x[:, 0].real.round(12)
    array([0., 0., 0., 1., 0., 0., 0., 0.])
    """
    cdef Py_ssize_t N0, F, s, kN0, kF, ks
    cdef double* base = _plane64(x, "x", &N0, &F, &s)
    _check_tw64(tw, N0)
    if c1 < 0:
        c1 = F
    if c0 < 0 or c1 > F or c0 > c1:
        raise ValueError(f"columns {c0}..{c1} are not within 0..{F}")
    if not isinstance(k, np.ndarray) or k.dtype != np.complex128 or k.ndim != 2 or k.shape[0] != N0 \
            or k.shape[1] < c1:
        raise ValueError(f"k must be complex128 of {N0} rows and at least {c1} columns")
    if k.shape[1] > 1 and k.strides[1] != 16:
        raise ValueError("k must be contiguous along its rows")
    cdef const double[:, :] kv = k.view(np.float64)
    if kv.strides[0] % 8 or kv.strides[0] < 0:
        raise ValueError("k's rows must be a whole, non-negative number of doubles apart")
    ks = kv.strides[0] // 8
    if F == 0 or c0 == c1:
        return
    cdef const double[::1] tv = tw.view(np.float64)
    cdef Py_ssize_t blk = 2 * min(max(1, block), c1 - c0)
    cdef double* buf = NULL
    if copy:
        buf = <double*> malloc(N0 * blk * sizeof(double))
        if buf == NULL:
            raise MemoryError()
    try:
        with nogil:
            fc_colcorr_f64(base + 2 * c0, N0, 2 * (c1 - c0), s, &tv[0], &kv[0, 2 * c0], ks, blk, buf, fuse,
                           portable)
    finally:
        free(buf)


def column_fuse16(flag=None):
    """Which float64 column transforms run (``fcd_fuse16`` of
    ``_simd/colfft_kernels.h``): 2 (the default) the AVX-512 copies, with
    two radix-4 passes of the power-of-two part fused into one sweep over
    the rows, where the CPU has AVX-512 (AVX2, unfused, elsewhere); 1 the
    AVX2 copies with the fused sweeps; 0 the AVX2 copies unfused; 3 as 2
    but without the fused radix-3 / radix-5 pairs. ``flag``: set it (0-3)
    and return the previous setting; None: only return it. Not to be
    changed while transforms run (tests and A/B benchmarks).

    Examples
    --------
    >>> from fastcorr.methods.fft_kernels import column_fuse16
    >>> previous = column_fuse16(0); column_fuse16(previous)
    0
    """
    global fcd_fuse16
    cdef int old = fcd_fuse16
    if flag is not None:
        fcd_fuse16 = max(0, min(3, int(flag)))
    return old


def column_isa():
    """The instruction set the float64 column transforms run on here:
    'avx512' (with the fused sweeps, see :func:`column_fuse16`), 'avx2' or
    'portable'.

    Examples
    --------
    >>> from fastcorr.methods.fft_kernels import column_isa
    >>> column_isa() in ("avx512", "avx2", "portable")
    True
    """
    if fcd_simd512(0):
        return "avx512"
    return "avx2" if fcd_simd(0) else "portable"
