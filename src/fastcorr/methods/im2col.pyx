# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""im2col / col2im and BLAS GEMM: correlation as a matrix product.

A (grouped, multi-channel) correlation of an image ``x`` (C, H, W) with
weights ``w`` (C_out, C*kh*kw) is the product ``w @ cols`` where the column
matrix ``cols`` (C*kh*kw, Ho*Wo) holds, in column ``p = oy*Wo + ox``, the
input window under output pixel p ("change the input"; the sparse matrix of
``correlation_matrix`` is the "change the kernel" answer).

Row ``r = (c*kh + j)*kw + k`` of ``cols`` is a *gather* from input row
``ridx[j, oy]`` of channel c at columns ``cidx[k, ox]``, both tables built by
``fastcorr._engine.conv.index_table`` from stride, dilation, padding and the boundary rule
(-1 meaning the fill value). Boundary handling is thus an extended-index
gather: no padded copy of the image is ever made. ``col2im`` is the matching
scatter-add (the adjoint), used for the input gradient.

Memory: the output pixels are cut into tiles of ``pt`` columns so that all
column buffers together stay under a cap (``fastcorr.set_im2col_cap``,
64 MiB by default); the buffer is a workspace reused across tiles (and
across calls, see ``fastcorr._engine.conv.workspace``).

Threads ("outer" mode, used whenever threadpoolctl can pin BLAS to one
thread): one OpenMP loop over work items (image x group x tile), each thread
gathering into its own slice of the workspace and calling a single-threaded
GEMM on it, so the gather of one tile overlaps the GEMM of another and no
thread team ever waits for another. The alternative ("inner": a parallel
gather, then one multithreaded BLAS call per tile) was measured on the five
CNN layers of issue 3 at 2 threads: outer 24-250 ms, inner 80-22000 ms. The
two thread teams (libgomp, OpenBLAS pthreads) spin-wait in turn and fight
over the cores, worst with small tiles on a loaded machine. Without
threadpoolctl (BLAS threads cannot be pinned, and GEMMs inside OpenMP threads
would oversubscribe) the code runs inner mode with a *serial* gather.

The kernels know nothing of Python objects and release the GIL.
"""
from cython.parallel cimport prange, parallel, threadid
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm, cgemm, zgemm

ctypedef fused num_t:
    float
    double
    float complex
    double complex


cdef struct Geo:
    Py_ssize_t C, H, W          # channels of one group, image size
    Py_ssize_t kh, kw, sw       # kernel size, column stride
    Py_ssize_t Ho, Wo           # output size
    const Py_ssize_t* ridx      # (kh, Ho): input row of (j, oy), -1 = fill
    const Py_ssize_t* cidx      # (kw, Wo): input column of (k, ox), -1 = fill
    const Py_ssize_t* clo       # (kw,): ox range [clo, chi) whose raw column
    const Py_ssize_t* chi       #        ox*sw + cbase[k] lies inside [0, W)
    const Py_ssize_t* cbase     # (kw,)


cdef inline void gemm(char ta, char tb, int m, int n, int k, num_t alpha,
                      const num_t* a, int lda, const num_t* b, int ldb,
                      num_t beta, num_t* c, int ldc) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C through scipy's BLAS."""
    if num_t is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, <float*> a, &lda, <float*> b, &ldb, &beta, c, &ldc)
    elif num_t is double:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, <double*> a, &lda, <double*> b, &ldb, &beta, c, &ldc)
    elif num_t is floatcomplex:
        cgemm(&ta, &tb, &m, &n, &k, &alpha, <float complex*> a, &lda, <float complex*> b, &ldb,
              &beta, c, &ldc)
    else:
        zgemm(&ta, &tb, &m, &n, &k, &alpha, <double complex*> a, &lda, <double complex*> b, &ldb,
              &beta, c, &ldc)


cdef void gather_row(const num_t* x, const Geo* g, Py_ssize_t r, Py_ssize_t p0, Py_ssize_t p1,
                     num_t fill, num_t* dst) noexcept nogil:
    """dst[p - p0] = X(channel, row, column) of cols row r, pixels p0 <= p < p1."""
    cdef Py_ssize_t khw = g.kh * g.kw
    cdef Py_ssize_t c = r // khw
    cdef Py_ssize_t j = (r // g.kw) % g.kh
    cdef Py_ssize_t k = r % g.kw
    cdef const num_t* xc = x + c * g.H * g.W
    cdef const num_t* row
    cdef const Py_ssize_t* ci = g.cidx + k * g.Wo
    cdef Py_ssize_t base = g.cbase[k], sw = g.sw
    cdef Py_ssize_t p = p0, oy, ox, ox0, ox1, lo, hi, ri
    cdef num_t* d
    while p < p1:
        oy = p // g.Wo
        ox0 = p - oy * g.Wo
        ox1 = min(g.Wo, ox0 + (p1 - p))
        d = dst + (p - p0) - ox0
        ri = g.ridx[j * g.Ho + oy]
        if ri < 0:
            for ox in range(ox0, ox1):
                d[ox] = fill
        else:
            row = xc + ri * g.W
            lo = min(max(g.clo[k], ox0), ox1)
            hi = max(min(g.chi[k], ox1), lo)
            for ox in range(ox0, lo):
                d[ox] = fill if ci[ox] < 0 else row[ci[ox]]
            if sw == 1:
                memcpy(d + lo, row + lo + base, (hi - lo) * sizeof(num_t))
            else:
                for ox in range(lo, hi):
                    d[ox] = row[ox * sw + base]
            for ox in range(hi, ox1):
                d[ox] = fill if ci[ox] < 0 else row[ci[ox]]
        p = p + (ox1 - ox0)


cdef void scatter_row(num_t* x, const Geo* g, Py_ssize_t r, Py_ssize_t p0, Py_ssize_t p1,
                      const num_t* src) noexcept nogil:
    """Adjoint of gather_row: X(...) += src[p - p0] (fill positions dropped)."""
    cdef Py_ssize_t khw = g.kh * g.kw
    cdef Py_ssize_t c = r // khw
    cdef Py_ssize_t j = (r // g.kw) % g.kh
    cdef Py_ssize_t k = r % g.kw
    cdef num_t* xc = x + c * g.H * g.W
    cdef num_t* row
    cdef const Py_ssize_t* ci = g.cidx + k * g.Wo
    cdef Py_ssize_t base = g.cbase[k], sw = g.sw
    cdef Py_ssize_t p = p0, oy, ox, ox0, ox1, lo, hi, ri
    cdef const num_t* s
    while p < p1:
        oy = p // g.Wo
        ox0 = p - oy * g.Wo
        ox1 = min(g.Wo, ox0 + (p1 - p))
        s = src + (p - p0) - ox0
        ri = g.ridx[j * g.Ho + oy]
        if ri >= 0:
            row = xc + ri * g.W
            lo = min(max(g.clo[k], ox0), ox1)
            hi = max(min(g.chi[k], ox1), lo)
            for ox in range(ox0, lo):
                if ci[ox] >= 0:
                    row[ci[ox]] += s[ox]
            for ox in range(lo, hi):
                row[ox * sw + base] += s[ox]
            for ox in range(hi, ox1):
                if ci[ox] >= 0:
                    row[ci[ox]] += s[ox]
        p = p + (ox1 - ox0)


cdef void gather_tile(const num_t* x, const Geo* g, Py_ssize_t p0, Py_ssize_t p1, num_t fill,
                      num_t* cols, int nthreads) noexcept nogil:
    """cols (K, p1 - p0) for pixels [p0, p1); rows split over nthreads."""
    cdef Py_ssize_t K = g.C * g.kh * g.kw, r, pt = p1 - p0
    if nthreads <= 1:
        for r in range(K):
            gather_row(x, g, r, p0, p1, fill, cols + r * pt)
    else:
        for r in prange(K, nogil=True, num_threads=nthreads, schedule='static'):
            gather_row(x, g, r, p0, p1, fill, cols + r * pt)


cdef void scatter_tile(num_t* x, const Geo* g, Py_ssize_t p0, Py_ssize_t p1, const num_t* cols,
                       int nthreads) noexcept nogil:
    """x += col2im(cols) for pixels [p0, p1); parallel over channels (race free)."""
    cdef Py_ssize_t khw = g.kh * g.kw, c, r, pt = p1 - p0
    if nthreads <= 1:
        for r in range(g.C * khw):
            scatter_row(x, g, r, p0, p1, cols + r * pt)
    else:
        for c in prange(g.C, nogil=True, num_threads=nthreads, schedule='static'):
            for r in range(c * khw, (c + 1) * khw):
                scatter_row(x, g, r, p0, p1, cols + r * pt)


cdef inline void make_geo(Geo* g, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                          Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
                          const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
                          const Py_ssize_t[:, ::1] crange):
    g.C = C; g.H = H; g.W = W; g.kh = kh; g.kw = kw; g.sw = sw; g.Ho = Ho; g.Wo = Wo
    g.ridx = &ridx[0, 0]
    g.cidx = &cidx[0, 0]
    g.clo = &crange[0, 0]
    g.chi = &crange[1, 0]
    g.cbase = &crange[2, 0]


def im2col_into(const num_t[:, ::1] x, num_t[:, ::1] cols, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
                const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
                const Py_ssize_t[:, ::1] crange, num_t fill, int nthreads):
    """cols[n] (C*kh*kw, Ho*Wo) = im2col of x[n] (C*H*W) for every image n."""
    cdef Geo g
    cdef Py_ssize_t n, P = Ho * Wo, K = C * kh * kw
    make_geo(&g, C, H, W, kh, kw, sw, Ho, Wo, ridx, cidx, crange)
    with nogil:
        for n in range(x.shape[0]):
            gather_tile(&x[n, 0], &g, 0, P, fill, &cols[n, 0], nthreads)


def col2im_into(const num_t[:, ::1] cols, num_t[:, ::1] x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
                const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
                const Py_ssize_t[:, ::1] crange, int nthreads):
    """x[n] (C*H*W, zeroed by the caller) += col2im of cols[n] for every image n."""
    cdef Geo g
    cdef Py_ssize_t n, P = Ho * Wo
    make_geo(&g, C, H, W, kh, kw, sw, Ho, Wo, ridx, cidx, crange)
    with nogil:
        for n in range(x.shape[0]):
            scatter_tile(&x[n, 0], &g, 0, P, &cols[n, 0], nthreads)


cdef void fwd_item(const num_t* x, const num_t* w, num_t* out, const num_t* bias, num_t* cols,
                   const Geo* g, Py_ssize_t groups, Py_ssize_t Cout, Py_ssize_t it,
                   Py_ssize_t ntiles, Py_ssize_t pt, num_t fill, bint pointwise,
                   int inner_threads) noexcept nogil:
    cdef num_t one = 1
    cdef num_t zero = 0
    cdef Py_ssize_t Cog = Cout // groups, K = g.C * g.kh * g.kw, P = g.Ho * g.Wo
    cdef Py_ssize_t n = it // (groups * ntiles), gi = (it // ntiles) % groups, t = it % ntiles
    cdef Py_ssize_t p0 = t * pt, p1 = min(P, t * pt + pt), co, q
    cdef const num_t* xg = x + (n * groups + gi) * g.C * g.H * g.W
    cdef num_t* o = out + n * Cout * P + gi * Cog * P + p0
    cdef const num_t* a = xg + p0
    cdef int lda = <int> P
    cdef num_t b
    if not pointwise:
        gather_tile(xg, g, p0, p1, fill, cols, inner_threads)
        a = cols
        lda = <int> (p1 - p0)
    # out_g^T (pt x Cog, col-major, ld P) = cols^T (pt x K) @ w_g^T (K x Cog)
    gemm(c'N', c'N', <int> (p1 - p0), <int> Cog, <int> K, one, a, lda,
         w + gi * Cog * K, <int> K, zero, o, <int> P)
    if bias != NULL:
        for co in range(Cog):
            b = bias[gi * Cog + co]
            for q in range(p1 - p0):
                o[co * P + q] = o[co * P + q] + b


cdef void gw_item(const num_t* x, const num_t* go, num_t* acc, num_t* cols,
                  const Geo* g, Py_ssize_t groups, Py_ssize_t Cout, Py_ssize_t it,
                  Py_ssize_t ntiles, Py_ssize_t pt, num_t fill, bint pointwise,
                  int inner_threads) noexcept nogil:
    cdef num_t one = 1
    cdef num_t zero = 0
    cdef Py_ssize_t Cog = Cout // groups, K = g.C * g.kh * g.kw, P = g.Ho * g.Wo
    cdef Py_ssize_t n = it // (groups * ntiles), gi = (it // ntiles) % groups, t = it % ntiles
    cdef Py_ssize_t p0 = t * pt, p1 = min(P, t * pt + pt)
    cdef const num_t* xg = x + (n * groups + gi) * g.C * g.H * g.W
    cdef const num_t* a = xg + p0
    cdef int lda = <int> P
    if not pointwise:
        gather_tile(xg, g, p0, p1, fill, cols, inner_threads)
        a = cols
        lda = <int> (p1 - p0)
    # acc_g^T (K x Cog, col-major) += cols (K x pt) @ go_g^T (pt x Cog)
    gemm(c'T', c'N', <int> K, <int> Cog, <int> (p1 - p0), one, a, lda,
         go + n * Cout * P + gi * Cog * P + p0, <int> P, one, acc + gi * Cog * K, <int> K)


cdef void gi_range(const num_t* w, const num_t* go, num_t* gx, num_t* cols,
                   const Geo* g, Py_ssize_t groups, Py_ssize_t Cout, Py_ssize_t it,
                   Py_ssize_t start, Py_ssize_t stop, Py_ssize_t pt, bint pointwise,
                   int inner_threads) noexcept nogil:
    """gx[it] += col2im(w_g^T @ go_g) over output pixels [start, stop), it = n*groups + g."""
    cdef num_t one = 1
    cdef num_t zero = 0
    cdef Py_ssize_t Cog = Cout // groups, K = g.C * g.kh * g.kw, P = g.Ho * g.Wo
    cdef Py_ssize_t n = it // groups, gi = it % groups, p0, p1
    cdef num_t* xg = gx + it * g.C * g.H * g.W
    cdef const num_t* gog = go + n * Cout * P + gi * Cog * P
    cdef const num_t* wg = w + gi * Cog * K
    p0 = start
    while p0 < stop:
        p1 = min(stop, p0 + pt)
        if pointwise:
            # gx_g (C x P) = w_g^T @ go_g, straight into the result.
            gemm(c'N', c'T', <int> (p1 - p0), <int> K, <int> Cog, one, gog + p0, <int> P,
                 wg, <int> K, zero, xg + p0, <int> P)
        else:
            gemm(c'N', c'T', <int> (p1 - p0), <int> K, <int> Cog, one, gog + p0, <int> P,
                 wg, <int> K, zero, cols, <int> (p1 - p0))
            scatter_tile(xg, g, p0, p1, cols, inner_threads)
        p0 = p1


def forward(const num_t[:, ::1] x, const num_t[:, ::1] w, num_t[:, ::1] out,
            const num_t[::1] bias, num_t[::1] ws,
            Py_ssize_t groups, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
            const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
            const Py_ssize_t[:, ::1] crange, num_t fill, bint pointwise,
            Py_ssize_t pt, int nthreads, bint outer):
    """out[n, g*Cog:(g+1)*Cog, :] = w_g @ cols(x[n], group g) (+ bias).

    x (N, groups*C*H*W), w (Cout, C*kh*kw), out (N, Cout*Ho*Wo), bias (Cout,)
    or empty, ws a workspace of nthreads*K*pt elements (outer) or K*pt
    (inner). ``pointwise``: 1x1, stride 1, no padding: the GEMM reads x.
    """
    cdef Geo g
    cdef Py_ssize_t N = x.shape[0], Cout = w.shape[0], K = C * kh * kw
    cdef Py_ssize_t ntiles = (Ho * Wo + pt - 1) // pt
    cdef Py_ssize_t items = N * groups * ntiles, it
    cdef const num_t* bp = &bias[0] if bias.shape[0] > 0 else NULL
    make_geo(&g, C, H, W, kh, kw, sw, Ho, Wo, ridx, cidx, crange)
    if outer:
        with nogil, parallel(num_threads=nthreads):
            for it in prange(items, schedule='dynamic'):
                fwd_item(&x[0, 0], &w[0, 0], &out[0, 0], bp, &ws[0] + threadid() * K * pt, &g,
                         groups, Cout, it, ntiles, pt, fill, pointwise, 1)
    else:
        with nogil:
            for it in range(items):
                fwd_item(&x[0, 0], &w[0, 0], &out[0, 0], bp, &ws[0], &g,
                         groups, Cout, it, ntiles, pt, fill, pointwise, nthreads)


def grad_weight(const num_t[:, ::1] x, const num_t[:, ::1] go, num_t[:, :, ::1] acc,
                num_t[::1] ws, Py_ssize_t groups, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
                const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
                const Py_ssize_t[:, ::1] crange, num_t fill, bint pointwise,
                Py_ssize_t pt, int nthreads, bint outer):
    """acc[thread] (Cout, K) += go_g @ cols^T; the caller sums acc over threads.

    go (N, Cout*Ho*Wo); acc (nthreads or 1, Cout, K), zeroed by the caller.
    """
    cdef Geo g
    cdef Py_ssize_t N = x.shape[0], Cout = acc.shape[1], K = C * kh * kw
    cdef Py_ssize_t ntiles = (Ho * Wo + pt - 1) // pt
    cdef Py_ssize_t items = N * groups * ntiles, it, tid
    make_geo(&g, C, H, W, kh, kw, sw, Ho, Wo, ridx, cidx, crange)
    if outer:
        with nogil, parallel(num_threads=nthreads):
            for it in prange(items, schedule='dynamic'):
                tid = threadid()
                gw_item(&x[0, 0], &go[0, 0], &acc[tid, 0, 0], &ws[0] + tid * K * pt, &g,
                        groups, Cout, it, ntiles, pt, fill, pointwise, 1)
    else:
        with nogil:
            for it in range(items):
                gw_item(&x[0, 0], &go[0, 0], &acc[0, 0, 0], &ws[0], &g,
                        groups, Cout, it, ntiles, pt, fill, pointwise, nthreads)


def grad_input(const num_t[:, ::1] w, const num_t[:, ::1] go, num_t[:, :, ::1] gx,
               num_t[::1] ws, Py_ssize_t groups, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo,
               const Py_ssize_t[:, ::1] ridx, const Py_ssize_t[:, ::1] cidx,
               const Py_ssize_t[:, ::1] crange, bint pointwise,
               Py_ssize_t pt, int nthreads, int mode):
    """gx = col2im(w_g^T @ go_g): the transposed correlation (gx zeroed by the caller).

    gx is (B, N, groups*C*H*W). Scatters of two threads must never meet:
    mode 0 ("outer"): B = 1, work items are (image, group);
    mode 1 ("split"): B = nthreads private copies, items are tiles, the
    caller sums the copies (for N*groups < nthreads);
    mode 2 ("inner"): B = 1, serial items, BLAS threads and a scatter
    parallel over channels (only when BLAS threads cannot be pinned).
    """
    cdef Geo g
    cdef Py_ssize_t N = gx.shape[1], Cout = w.shape[0], K = C * kh * kw, P = Ho * Wo
    cdef Py_ssize_t ntiles = (P + pt - 1) // pt
    cdef Py_ssize_t items = N * groups, it, tid
    make_geo(&g, C, H, W, kh, kw, sw, Ho, Wo, ridx, cidx, crange)
    if mode == 0:
        with nogil, parallel(num_threads=nthreads):
            for it in prange(items, schedule='dynamic'):
                gi_range(&w[0, 0], &go[0, 0], &gx[0, 0, 0], &ws[0] + threadid() * K * pt, &g,
                         groups, Cout, it, 0, P, pt, pointwise, 1)
    elif mode == 1:
        with nogil, parallel(num_threads=nthreads):
            for it in prange(items * ntiles, schedule='dynamic'):
                tid = threadid()
                gi_range(&w[0, 0], &go[0, 0], &gx[tid, 0, 0], &ws[0] + tid * K * pt, &g,
                         groups, Cout, it // ntiles, (it % ntiles) * pt,
                         min(P, (it % ntiles) * pt + pt), pt, pointwise, 1)
    else:
        with nogil:
            for it in range(items):
                gi_range(&w[0, 0], &go[0, 0], &gx[0, 0, 0], &ws[0], &g,
                         groups, Cout, it, 0, P, pt, pointwise, nthreads)


# ---------------------------------------------------------------------------
# C-level API (declared in _im2col.pxd): plain unfold of one image, zero
# padding, explicit geometry; no index tables, no Python objects.

ctypedef fused real_t:
    float
    double


cdef int unfold_image(const real_t* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                      real_t* cols, int num_threads) noexcept nogil:
    cdef Py_ssize_t Ho, Wo, row, c, j, k, oy, ox, iy, ix
    cdef real_t* dst
    cdef const real_t* src
    if C < 1 or H < 1 or W < 1 or kh < 1 or kw < 1 or sh < 1 or sw < 1 or dh < 1 or dw < 1 or ph < 0 or pw < 0:
        return -1
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        return -1
    if num_threads < 1:
        num_threads = 1
    for row in prange(C * kh * kw, num_threads=num_threads, schedule='static'):
        c = row // (kh * kw)
        j = (row // kw) % kh
        k = row % kw
        for oy in range(Ho):
            dst = cols + row * Ho * Wo + oy * Wo
            iy = oy * sh - ph + j * dh
            if iy < 0 or iy >= H:
                for ox in range(Wo):
                    dst[ox] = 0
                continue
            src = x + (c * H + iy) * W
            for ox in range(Wo):
                ix = ox * sw - pw + k * dw
                dst[ox] = src[ix] if 0 <= ix < W else 0
    return 0


cdef int im2col_f32(const float* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                    float* cols, int num_threads) noexcept nogil:
    return unfold_image(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cols, num_threads)


cdef int im2col_f64(const double* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                    double* cols, int num_threads) noexcept nogil:
    return unfold_image(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cols, num_threads)


# ---------------------------------------------------------------------------
# Whole-batch GEMMs of a 1x1 layer's backward (``_engine.conv._pointwise_backward``):
# OpenMP threads, each a single-threaded GEMM on its slice (BLAS pinned to
# one thread by the caller, as in the outer mode above).

def gemm_nt_ksplit(const num_t[:, ::1] a, const num_t[:, ::1] b, num_t[:, :, ::1] acc, int nthreads):
    """acc[t] (M, N) = a[:, K_t] @ b[:, K_t]^T for the t-th of acc.shape[0]
    equal slices K_t of the shared axis; the caller sums acc over t.

    a (M, K), b (N, K), row-major; one slice per thread.
    """
    cdef num_t one = 1
    cdef num_t zero = 0
    cdef Py_ssize_t M = a.shape[0], K = a.shape[1], N = b.shape[0], T = acc.shape[0], t, k0, k1
    if M == 0 or N == 0:
        return
    for t in prange(T, nogil=True, num_threads=nthreads, schedule='static'):
        k0 = t * K // T
        k1 = (t + 1) * K // T
        if k1 > k0:
            # column-major: acc[t]^T (N x M) = b_cm^T (N x k) @ a_cm (k x M)
            gemm(c'T', c'N', <int> N, <int> M, <int> (k1 - k0), one, &b[0, 0] + k0, <int> K,
                 &a[0, 0] + k0, <int> K, zero, &acc[t, 0, 0], <int> N)
        else:
            memset(&acc[t, 0, 0], 0, M * N * sizeof(num_t))


cdef void swap_rows(const real_t* src, real_t* dst, Py_ssize_t A, Py_ssize_t B, Py_ssize_t P,
                    Py_ssize_t b, real_t* sums) noexcept nogil:
    """dst[b, a, :] = src[a, b, :] for every a; sums[b] = their sum (if sums)."""
    cdef Py_ssize_t a
    cdef double s[8]
    cdef const real_t* row
    memset(s, 0, sizeof(s))
    for a in range(A):
        row = src + (a * B + b) * P
        memcpy(dst + (b * A + a) * P, row, P * sizeof(real_t))
        if sums != NULL:
            add_row(row, P, s)
    if sums != NULL:
        sums[b] = <real_t> (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])))


cdef inline void add_row(const real_t* row, Py_ssize_t P, double* s) noexcept nogil:
    """s[0:8] += row[0:P] in eight independent chains (in double): one add's
    latency per element with a single chain cost 0.4 ms of a 1x1 layer's
    backward (8x256 channels of 14x14)."""
    cdef Py_ssize_t q = 0
    while q + 8 <= P:
        s[0] = s[0] + row[q]
        s[1] = s[1] + row[q + 1]
        s[2] = s[2] + row[q + 2]
        s[3] = s[3] + row[q + 3]
        s[4] = s[4] + row[q + 4]
        s[5] = s[5] + row[q + 5]
        s[6] = s[6] + row[q + 6]
        s[7] = s[7] + row[q + 7]
        q = q + 8
    while q < P:
        s[0] = s[0] + row[q]
        q = q + 1


def pointwise_backward(const real_t[:, :, ::1] x, const real_t[:, :, ::1] go, const real_t[:, ::1] w,
                       real_t[:, :, ::1] gx, real_t[::1] grad_bias, real_t[:, :, ::1] acc,
                       real_t[::1] buf, int nthreads):
    """The backward of a 1x1 layer as whole-batch GEMMs, in one parallel region.

    x (N, C, P), go (N, Cout, P), w (Cout, C); out: gx (N, C, P), grad_bias
    (Cout,), acc (T, Cout, C) the per-thread grad_weight slices (the caller
    sums them; T = nthreads). ``buf``: (Cout + C) * N * P elements. Steps,
    each split over the threads and separated by barriers: go and x copied
    channel-major over the batch, g2 (Cout, N*P) and x2 (C, N*P), grad_bias
    summed on the way; acc[t] = g2[:, K_t] x2[:, K_t]^T; x2 overwritten by
    w^T g2 (its column slices); that copied back to gx. Single-threaded GEMMs
    (the caller pins BLAS to one thread).
    """
    cdef real_t one = 1
    cdef real_t zero = 0
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], Cout = go.shape[1]
    cdef Py_ssize_t Q = N * P, T = acc.shape[0], t, b, k0, k1
    cdef real_t* g2
    cdef real_t* x2
    if buf.shape[0] < (Cout + C) * Q or T < 1:
        raise ValueError("pointwise_backward: workspace too small")
    if Q == 0 or C == 0 or Cout == 0:
        grad_bias[:] = 0
        acc[:, :, :] = 0
        gx[:, :, :] = 0
        return
    g2 = &buf[0]
    x2 = &buf[0] + Cout * Q
    with nogil, parallel(num_threads=nthreads):
        for b in prange(Cout + C, schedule='static'):
            if b < Cout:
                swap_rows(&go[0, 0, 0], g2, N, Cout, P, b, &grad_bias[0])
            else:
                swap_rows(&x[0, 0, 0], x2, N, C, P, b - Cout, <real_t*> NULL)
        for t in prange(T, schedule='static'):
            k0 = t * Q // T
            k1 = (t + 1) * Q // T
            if k1 > k0:
                # column-major: acc[t]^T (C x Cout) = x2_cm^T (C x k) @ g2_cm (k x Cout)
                gemm(c'T', c'N', <int> C, <int> Cout, <int> (k1 - k0), one, x2 + k0, <int> Q,
                     g2 + k0, <int> Q, zero, &acc[t, 0, 0], <int> C)
            else:
                memset(&acc[t, 0, 0], 0, Cout * C * sizeof(real_t))
        for t in prange(T, schedule='static'):
            k0 = t * Q // T
            k1 = (t + 1) * Q // T
            if k1 > k0:
                # column-major: x2^T (Q x C) = g2_cm (Q x Cout) @ w_cm^T (Cout x C)
                gemm(c'N', c'T', <int> (k1 - k0), <int> C, <int> Cout, one, g2 + k0, <int> Q,
                     &w[0, 0], <int> C, zero, x2 + k0, <int> Q)
        for b in prange(N, schedule='static'):
            swap_rows(x2, &gx[0, 0, 0], C, N, P, b, <real_t*> NULL)


cdef void sum_rows(const real_t* src, Py_ssize_t A, Py_ssize_t B, Py_ssize_t P, Py_ssize_t b,
                   real_t* sums) noexcept nogil:
    """sums[b] = sum over a and q of src[a, b, q] (src (A, B, P)), in double."""
    cdef Py_ssize_t a
    cdef double s[8]
    memset(s, 0, sizeof(s))
    for a in range(A):
        add_row(src + (a * B + b) * P, P, s)
    sums[b] = <real_t> (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])))


#: Whether every thread of pointwise_backward_inplace transposes the weights
#: into a copy of its own (measurements).
cdef bint PW_PRIVATE_WT = True


def set_pw_private_wt(bint on):
    """Switch the per-thread transposed weights of pointwise_backward_inplace (measurements)."""
    global PW_PRIVATE_WT
    PW_PRIVATE_WT = on


def pointwise_backward_inplace(const real_t[:, :, ::1] x, const real_t[:, :, ::1] go,
                               const real_t[:, ::1] w, real_t[:, :, ::1] gx, real_t[:, ::1] gw,
                               real_t[::1] grad_bias, real_t[:, :, ::1] wt, real_t[:, :, ::1] acc,
                               int nthreads, bint with_grad_input=True):
    """The backward of a 1x1 layer as GEMMs on the NCHW arrays themselves.

    x (N, C, P), go (N, Cout, P), w (Cout, C); out: gx (N, C, P), gw
    (Cout, C), grad_bias (Cout,). Workspaces: wt (T, C, Cout) for the weights
    transposed (so that neither GEMM operand of grad_input is read
    transposed), one copy per thread, each transposed by its thread (a
    shared copy, half written on each core, crossed between the cores on
    every call), acc (T - 1, Cout, C) for the grad_weight sums of threads
    1 .. T-1 (thread 0 sums into gw), T = nthreads. One parallel region:
    grad_bias summed per channel (in double) and wt transposed; then the
    batch-pixel axis (N*P) cut into T equal slices, each a few (image, pixel
    range) segments: thread t accumulates go_n[:, seg] x_n[:, seg]^T over its
    segments (beta = 1 after the first), then writes gx_n[:, seg] =
    w^T go_n[:, seg] (not with ``with_grad_input`` False: gx is then left as it
    is); last, the threads' sums added into gw, by rows. No
    copies of the layer's arrays; single-threaded GEMMs (the caller pins
    BLAS to one thread).
    """
    cdef real_t one = 1
    cdef real_t zero = 0
    cdef real_t beta
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2], Cout = go.shape[1]
    cdef Py_ssize_t Q = N * P, T = nthreads, t, b, n, k0, k1, p0, p1, r, c, u
    cdef real_t* dst
    if T < 1 or acc.shape[0] < T - 1 or wt.shape[0] < T or wt.shape[1] != C or wt.shape[2] != Cout:
        raise ValueError("pointwise_backward_inplace: workspace too small")
    if Q == 0 or C == 0 or Cout == 0:
        grad_bias[:] = 0
        gw[:, :] = 0
        gx[:, :, :] = 0
        return
    with nogil, parallel(num_threads=nthreads):
        for b in prange(Cout + (0 if PW_PRIVATE_WT or not with_grad_input else C), schedule='static'):
            if b < Cout:
                sum_rows(&go[0, 0, 0], N, Cout, P, b, &grad_bias[0])
            else:  # (one shared copy) row c of wt: column c of w
                c = b - Cout
                for r in range(Cout):
                    wt[0, c, r] = w[r, c]
        for t in prange(T, schedule='static'):
            for c in range(C if PW_PRIVATE_WT and with_grad_input else 0):  # this thread's copy of w transposed
                for r in range(Cout):
                    wt[t, c, r] = w[r, c]
            k0 = t * Q // T
            k1 = (t + 1) * Q // T
            dst = &gw[0, 0] if t == 0 else &acc[t - 1, 0, 0]
            if k1 <= k0:
                memset(dst, 0, Cout * C * sizeof(real_t))
            beta = zero
            n = k0 // P
            while k1 > k0 and n * P < k1:
                p0 = max(k0 - n * P, 0)
                p1 = min(k1 - n * P, P)
                # column-major: dst^T (C x Cout) += x_n^T-op (C x seg) @ go_n-cm (seg x Cout)
                gemm(c'T', c'N', <int> C, <int> Cout, <int> (p1 - p0), one, &x[n, 0, 0] + p0, <int> P,
                     &go[n, 0, 0] + p0, <int> P, beta, dst, <int> C)
                beta = one
                n = n + 1
            n = k0 // P
            while with_grad_input and k1 > k0 and n * P < k1:
                p0 = max(k0 - n * P, 0)
                p1 = min(k1 - n * P, P)
                # column-major: gx_n-cm[seg] (seg x C) = go_n-cm[seg] (seg x Cout) @ wt-cm (Cout x C)
                gemm(c'N', c'N', <int> (p1 - p0), <int> C, <int> Cout, one, &go[n, 0, 0] + p0, <int> P,
                     &wt[t if PW_PRIVATE_WT else 0, 0, 0], <int> Cout, zero, &gx[n, 0, 0] + p0, <int> P)
                n = n + 1
        for r in prange(Cout if T > 1 else 0, schedule='static'):
            for u in range(T - 1):
                for c in range(C):
                    gw[r, c] = gw[r, c] + acc[u, r, c]
