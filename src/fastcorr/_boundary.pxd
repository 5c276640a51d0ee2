# The boundary rule shared by the compiled kernels (cimported, inlined).

cdef enum:
    BOUNDARY_FILL = 0   # constant fill value outside the image
    BOUNDARY_WRAP = 1   # periodic
    BOUNDARY_SYMM = 2   # half-sample symmetric (scipy's 'symm': edge repeated)


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
    p = 2 * n
    i = i % p
    if i < 0:
        i = i + p
    return p - 1 - i if i >= n else i
