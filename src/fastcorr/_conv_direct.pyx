# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Direct multi-channel conv2d: one OpenMP loop over batch x output channels x rows.

Each work item is one output row of one output channel of one image; it
accumulates, tap by tap, a scaled input row into the output row (which stays
in L1), reading the input through the same index tables as im2col
(``_conv.index_table``): padding and padding modes cost nothing in the
interior. It suits layers whose GEMM would be thin: depthwise and few-channel
convolutions, where im2col's copy outweighs its matrix product.
"""
from cython.parallel cimport prange

ctypedef fused real_t:
    float
    double


cdef void conv_row(const real_t* x, const real_t* w, real_t* acc, real_t b,
                   Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                   Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t oy,
                   const Py_ssize_t* ridx, const Py_ssize_t* cidx, const Py_ssize_t* crange) noexcept nogil:
    """acc[ox] = b + sum_{c, j, k} w[c, j, k] * X(c, oy, ox; j, k)."""
    cdef Py_ssize_t c, j, k, ox, r, lo, hi, base
    cdef const real_t* row
    cdef const Py_ssize_t* ci
    cdef real_t wv
    for ox in range(Wo):
        acc[ox] = b
    for c in range(C):
        for j in range(kh):
            r = ridx[j * Ho + oy]
            if r < 0:
                continue
            row = x + (c * H + r) * W
            for k in range(kw):
                wv = w[(c * kh + j) * kw + k]
                lo = crange[k]
                hi = crange[kw + k]
                base = crange[2 * kw + k]
                ci = cidx + k * Wo
                for ox in range(lo):
                    if ci[ox] >= 0:
                        acc[ox] += wv * row[ci[ox]]
                if sw == 1:
                    for ox in range(lo, hi):
                        acc[ox] += wv * row[ox + base]
                else:
                    for ox in range(lo, hi):
                        acc[ox] += wv * row[ox * sw + base]
                for ox in range(hi, Wo):
                    if ci[ox] >= 0:
                        acc[ox] += wv * row[ci[ox]]


def forward(const real_t[:, ::1] x, const real_t[:, ::1] w, real_t[:, ::1] out,
            const real_t[::1] bias, Py_ssize_t groups, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
            const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
            const Py_ssize_t[:, ::1] crange, int nthreads):
    """out (N, Cout*Ho*Wo) = grouped conv of x (N, groups*C*H*W) with w (Cout, C*kh*kw)."""
    cdef Py_ssize_t N = x.shape[0], Cout = w.shape[0], Cog = Cout // groups
    cdef Py_ssize_t items = N * Cout * Ho, it, n, co, oy, gi
    cdef bint has_bias = bias.shape[0] > 0
    cdef real_t b
    with nogil:
        for it in prange(items, num_threads=nthreads, schedule='static'):
            n = it // (Cout * Ho)
            co = (it // Ho) % Cout
            oy = it % Ho
            gi = co // Cog
            b = bias[co] if has_bias else 0
            conv_row(&x[n, 0] + gi * C * H * W, &w[co, 0], &out[n, 0] + (co * Ho + oy) * Wo, b,
                     C, H, W, kh, kw, sw, Ho, Wo, oy, &ridx[0, 0], &cidx[0, 0], &crange[0, 0])
