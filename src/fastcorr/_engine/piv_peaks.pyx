# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The peaks of a stack of PIV correlation maps, compiled.

For each map of the stack, in one pass over it (two with 'peak2peak'): the
first maximum in row-major order, the three-point sub-pixel fit through it
along each axis, and the signal-to-noise ratio, with OpenPIV's rules (see
``fastcorr._engine.piv``). numpy needed about a dozen passes over the maps
and their temporaries.

One thread per call, on purpose: ``fastcorr._engine.piv`` calls it from
each band's Python thread (with the GIL released), beside the FFTs of the
other bands.
"""
from libc.math cimport log, isnan, NAN, INFINITY

ctypedef fused floating:
    float
    double

# subpixel method codes, and signal-to-noise method codes (fastcorr._engine.piv
# passes them by these values)
cdef enum:
    GAUSSIAN = 0
    PARABOLIC = 1
    CENTROID = 2
cdef enum:
    S2N_NONE = 0
    PEAK2PEAK = 1
    PEAK2MEAN = 2


cdef inline Py_ssize_t _argmax(const floating* row, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t rs,
                               Py_ssize_t skip_r0, Py_ssize_t skip_r1, Py_ssize_t skip_c0,
                               Py_ssize_t skip_c1) noexcept nogil:
    """Flat index (r * m1 + c) of the first maximum (a NaN is one, as in
    numpy) of a map with row stride rs, outside rows [skip_r0, skip_r1) x
    columns [skip_c0, skip_c1); -1 if every element is skipped."""
    cdef Py_ssize_t r, c, best = -1
    cdef floating x, top = 0
    cdef const floating* p
    for r in range(m0):
        p = row + r * rs
        for c in range(m1):
            if skip_r0 <= r < skip_r1 and skip_c0 <= c < skip_c1:
                continue
            x = p[c]
            if isnan(x):
                return r * m1 + c
            if best < 0 or x > top:
                top = x
                best = r * m1 + c
    return best


cdef void _peaks(const floating[:, :, ::1] corr, Py_ssize_t m0, Py_ssize_t m1, int subpixel, int s2n_method,
                 Py_ssize_t width, double dt, double eps, const double[::1] means, bint has_means,
                 double[::1] u, double[::1] v, double[::1] s2n) noexcept nogil:
    cdef Py_ssize_t n, idx, i, j, idx2, i2, j2, rs, k
    cdef const floating* row
    cdef floating lift
    cdef double c1, c, cl, cr, cd, cu, di, dj, nom, den, lc, ll, lr, ld, lu, c2, mean, val, total
    cdef bint interior, negative, signal, border2, fail
    rs = corr.strides[1] // sizeof(floating)
    for n in range(corr.shape[0]):
        row = &corr[n, 0, 0]
        idx = _argmax(row, m0, m1, rs, 0, 0, 0, 0)
        i = idx // m1
        j = idx - i * m1
        interior = 0 < i < m0 - 1 and 0 < j < m1 - 1
        lift = <floating>eps if interior else <floating>0
        c1 = <double>(<floating>(row[i * rs + j] + lift))
        if interior:
            c = c1
            cl = <double>(<floating>(row[(i - 1) * rs + j] + lift))
            cr = <double>(<floating>(row[(i + 1) * rs + j] + lift))
            cd = <double>(<floating>(row[i * rs + j - 1] + lift))
            cu = <double>(<floating>(row[i * rs + j + 1] + lift))
            if subpixel == CENTROID:
                di = (cr - cl) / (cl + c + cr)
                dj = (cu - cd) / (cd + c + cu)
            else:
                negative = c < 0 or cl < 0 or cr < 0 or cd < 0 or cu < 0
                if subpixel == PARABOLIC or negative:
                    di = (cl - cr) / (2 * cl - 4 * c + 2 * cr)
                    dj = (cd - cu) / (2 * cd - 4 * c + 2 * cu)
                else:
                    lc = log(c)
                    ll = log(cl)
                    lr = log(cr)
                    ld = log(cd)
                    lu = log(cu)
                    nom = ll - lr
                    den = 2 * ll - 4 * lc + 2 * lr
                    di = nom / den if den != 0 else 0.0
                    nom = ld - lu
                    den = 2 * ld - 4 * lc + 2 * lu
                    dj = nom / den if den != 0 else 0.0
            v[n] = (i + di - <double>(m0 // 2)) / dt
            u[n] = (j + dj - <double>(m1 // 2)) / dt
        else:
            u[n] = NAN
            v[n] = NAN
        if s2n_method == S2N_NONE:
            s2n[n] = NAN
            continue
        signal = interior and c1 >= 1e-3
        if s2n_method == PEAK2MEAN:
            if has_means:
                mean = means[n]
            else:
                total = 0.0
                for i2 in range(m0):
                    for j2 in range(m1):
                        total += row[i2 * rs + j2]
                mean = total / (m0 * m1)
            mean = mean + <double>lift
            if mean < 0:
                mean = -mean
            if mean == 0:
                s2n[n] = 0.0
            else:
                val = (c1 if signal else 0.0) / mean
                s2n[n] = 0.0 if isnan(val) else val
            continue
        # peak2peak: the highest value outside the (2 width + 1)-square
        if not signal:
            s2n[n] = 0.0
            continue
        idx2 = _argmax(row, m0, m1, rs, max(i - width, 0), min(i + width + 1, m0),
                       max(j - width, 0), min(j + width + 1, m1))
        if idx2 < 0:
            s2n[n] = 0.0
            continue
        i2 = idx2 // m1
        j2 = idx2 - i2 * m1
        c2 = <double>(<floating>(row[i2 * rs + j2] + lift))
        border2 = i2 == 0 or i2 == m0 - 1 or j2 == 0 or j2 == m1 - 1
        fail = c2 == 0 or (border2 and c2 > 0.5 * c1) or c2 == -INFINITY
        if fail:
            s2n[n] = 0.0
        else:
            val = c1 / c2
            s2n[n] = 0.0 if isnan(val) else val


def peaks(corr, Py_ssize_t m0, Py_ssize_t m1, int subpixel, int s2n_method, Py_ssize_t width, double dt,
          double eps, means, double[::1] u, double[::1] v, double[::1] s2n):
    """Fill u, v, s2n (n,) from the maps ``corr[:, :m0, :m1]`` (n, rows >= m0,
    cols >= m1, float32 or float64, last axis contiguous). ``means``: the
    maps' means (n,) or None (then summed here, for 'peak2mean')."""
    cdef const double[::1] mv
    cdef bint has = means is not None
    mv = means if has else u  # a placeholder, unread
    if corr.shape[0] != u.shape[0] or corr.shape[0] != v.shape[0] or corr.shape[0] != s2n.shape[0]:
        raise ValueError("peaks: one output element per map")
    if m0 < 1 or m1 < 1 or corr.shape[1] < m0 or corr.shape[2] < m1:
        raise ValueError("peaks: the maps are smaller than m0 x m1")
    if has and mv.shape[0] != corr.shape[0]:
        raise ValueError("peaks: one mean per map")
    cdef const float[:, :, ::1] c32
    cdef const double[:, :, ::1] c64
    if corr.dtype == "float32":
        c32 = corr
        with nogil:
            _peaks(c32, m0, m1, subpixel, s2n_method, width, dt, eps, mv, has, u, v, s2n)
    else:
        c64 = corr
        with nogil:
            _peaks(c64, m0, m1, subpixel, s2n_method, width, dt, eps, mv, has, u, v, s2n)


cdef void _cross(floating[:, ::1] a, const floating[:, ::1] b, const floating[::1] ph) noexcept nogil:
    """a = conj(a) * b * ph, complex numbers as (re, im) pairs; ph is one map's
    worth (m values), repeated over a's rows of m."""
    cdef Py_ssize_t n, k, m = ph.shape[0]
    cdef floating ar, ai, br, bi, xr, xi, pr, pi
    for n in range(a.shape[0]):
        for k in range(0, m, 2):
            ar = a[n, k]
            ai = -a[n, k + 1]
            br = b[n, k]
            bi = b[n, k + 1]
            xr = ar * br - ai * bi
            xi = ar * bi + ai * br
            pr = ph[k]
            pi = ph[k + 1]
            a[n, k] = xr * pr - xi * pi
            a[n, k + 1] = xr * pi + xi * pr


def cross_spectrum(a, b, phase):
    """In place: ``a = conj(a) * b * phase`` for stacks of spectra a, b (n, ...)
    and one phase (...), all C-contiguous complex64 or complex128 of one dtype."""
    if a.dtype != b.dtype or a.dtype != phase.dtype or a.shape != b.shape or a.shape[1:] != phase.shape:
        raise ValueError("cross_spectrum: a, b and phase must agree in dtype and shape")
    if not (a.flags.c_contiguous and b.flags.c_contiguous and phase.flags.c_contiguous):
        raise ValueError("cross_spectrum: C-contiguous arrays only")
    real = "float32" if a.dtype == "complex64" else "float64"
    ar = a.reshape(a.shape[0], -1).view(real)
    br = b.reshape(b.shape[0], -1).view(real)
    pr = phase.reshape(-1).view(real)
    cdef float[:, ::1] a32
    cdef double[:, ::1] a64
    cdef const float[:, ::1] b32
    cdef const double[:, ::1] b64
    cdef const float[::1] p32
    cdef const double[::1] p64
    if real == "float32":
        a32, b32, p32 = ar, br, pr
        with nogil:
            _cross(a32, b32, p32)
    else:
        a64, b64, p64 = ar, br, pr
        with nogil:
            _cross(a64, b64, p64)
