# The boundary rule shared by the compiled kernels (cimported, inlined).

from libc.stdint cimport uint64_t
from libc.string cimport memcpy

ctypedef fused ext_t:
    float
    double
    uint64_t

cdef enum:
    BOUNDARY_FILL = 0   # constant fill value outside the image
    BOUNDARY_WRAP = 1   # periodic
    BOUNDARY_SYMM = 2   # half-sample symmetric (scipy's 'symm': edge repeated)
    BOUNDARY_NEAREST = 3  # the edge sample repeated (ndimage's 'nearest')
    BOUNDARY_MIRROR = 4   # whole-sample symmetric (ndimage's 'mirror': edge not repeated)


cdef inline Py_ssize_t map_index(Py_ssize_t i, Py_ssize_t n, int boundary) noexcept nogil:
    """Index into [0, n) of the extended position i, or -1 for the fill value."""
    cdef Py_ssize_t p
    if 0 <= i < n:
        return i
    if boundary == BOUNDARY_FILL or n == 0:
        return -1
    if boundary == BOUNDARY_WRAP:
        i = i % n
        return i + n if i < 0 else i
    if boundary == BOUNDARY_NEAREST:
        return 0 if i < 0 else n - 1
    if boundary == BOUNDARY_MIRROR:
        if n == 1:
            return 0
        p = 2 * n - 2
        i = i % p
        if i < 0:
            i = i + p
        return p - i if i >= n else i
    p = 2 * n
    i = i % p
    if i < 0:
        i = i + p
    return p - 1 - i if i >= n else i


cdef inline void extend_row(ext_t* dst, const ext_t* src, Py_ssize_t start, Py_ssize_t length,
                            Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n, int boundary,
                            ext_t fill) noexcept nogil:
    """dst[t] = the extended row ``src`` (n samples) at position start + t, t < length.

    Positions lo <= t < hi are known to lie inside [0, n) and are copied in
    one block; the others go through :func:`map_index` (``fill`` where it
    says -1).
    """
    cdef Py_ssize_t t, c
    for t in range(lo):
        c = map_index(start + t, n, boundary)
        dst[t] = fill if c < 0 else src[c]
    if hi > lo:
        memcpy(dst + lo, src + start + lo, (hi - lo) * sizeof(ext_t))
    for t in range(hi, length):
        c = map_index(start + t, n, boundary)
        dst[t] = fill if c < 0 else src[c]
