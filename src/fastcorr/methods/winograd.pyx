# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""conv2d by Winograd's F(2x2, 3x3): 3x3 kernels, unit stride and dilation.

A 4x4 input tile d of every input channel c gives a 2x2 output tile:

    Y = A^T [ sum_c (G g_c G^T) * (B^T d_c B) ] A

with * the elementwise product of 4x4 matrices (Lavin and Gray, "Fast
Algorithms for Convolutional Neural Networks", 2015). Per tile and pair of
channels that is 16 multiply-adds instead of the 36 of four outputs; the
transforms are additions, done once per tile and channel. The sums over
input channels are 16 matrix products (one per position xi of the 4x4
transformed tile), run by the channel-vectorised kernel of _simd/conv_kernels.h:
output channels in the vector lanes, tiles as its pixels, input channels as
its taps, so they run at the rate of the direct method's kernel.

    B^T = [1  0 -1  0]    G = [ 1    0    0 ]    A^T = [1  1  1  0]
          [0  1  1  0]        [1/2  1/2  1/2]          [0  1 -1 -1]
          [0 -1  1  0]        [1/2 -1/2  1/2]
          [0  1  0 -1]        [ 0    0    1 ]

Work items are (image, band of tile rows); each thread transforms its band
into its own workspace (transformed input V, products M, pixel-major output
P) and transposes P into the output. The weight gradient reuses the input
transform: dU[xi] = sum over tiles of (A g A^T)[xi] * (B^T d B)[xi] (g the
2x2 tile of grad_output), on the weight-gradient kernel, and
dW = G^T dU G. Knows nothing of Python in the kernels.
"""
from cython.parallel cimport prange, parallel, threadid
from libc.string cimport memcpy, memset

from fastcorr.methods.conv_kernels cimport real_t, conv_cv, conv_gw, transpose_out, FC_CV_VECS, FC_CV_PIX, FC_GW_TAPS
from fastcorr.methods.finite cimport finite_values

cdef extern from "winograd_kernels.h" nogil:
    void fc_wino_input_f32(const float* s, Py_ssize_t ld, Py_ssize_t ntiles, float* V,
                           Py_ssize_t plane, float* tmp)
    void fc_wino_input_f64(const double* s, Py_ssize_t ld, Py_ssize_t ntiles, double* V,
                           Py_ssize_t plane, double* tmp)
    void fc_wino_output_f32(const float* M, Py_ssize_t plane, Py_ssize_t ldc, Py_ssize_t nc,
                            Py_ssize_t ntiles, float* P, Py_ssize_t ldrow)
    void fc_wino_output_f64(const double* M, Py_ssize_t plane, Py_ssize_t ldc, Py_ssize_t nc,
                            Py_ssize_t ntiles, double* P, Py_ssize_t ldrow)
    void fc_prefetch_range(const void* p, Py_ssize_t nbytes)
    void fc_wino_gradout_f32(const float* G, Py_ssize_t ldc, Py_ssize_t nc, Py_ssize_t ntiles,
                             float* Z, Py_ssize_t plane)
    void fc_wino_gradout_f64(const double* G, Py_ssize_t ldc, Py_ssize_t nc, Py_ssize_t ntiles,
                             double* Z, Py_ssize_t plane)

#: Tiles per GEMM call are padded to a multiple of this (the kernel's block).
TILE_MULTIPLE = FC_CV_PIX
#: Output channels per block of the kernel, by item size.
BLOCK_CHANNELS = {4: FC_CV_VECS * 8, 8: FC_CV_VECS * 4}

cdef enum:
    #: input channels per GEMM call: their weights (64 bytes each per block
    #: of output channels) stay in L1 while the call sweeps its tiles
    TAP_CHUNK = 256


cdef void transform_kernel(const real_t* g9, real_t* dst, Py_ssize_t stride) noexcept nogil:
    """dst[xi * stride] = (G g G^T)[xi] for one 3x3 kernel, computed in double."""
    cdef double g[3][3]
    cdef double t[4][3]
    cdef double u0, u1, u2, u3
    cdef Py_ssize_t i, j, a
    for i in range(3):
        for j in range(3):
            g[i][j] = g9[i * 3 + j]
    for j in range(3):  # t = G g
        t[0][j] = g[0][j]
        t[1][j] = 0.5 * (g[0][j] + g[1][j] + g[2][j])
        t[2][j] = 0.5 * (g[0][j] - g[1][j] + g[2][j])
        t[3][j] = g[2][j]
    for a in range(4):  # (G g) G^T
        u0 = t[a][0]
        u1 = 0.5 * (t[a][0] + t[a][1] + t[a][2])
        u2 = 0.5 * (t[a][0] - t[a][1] + t[a][2])
        u3 = t[a][2]
        dst[(4 * a) * stride] = <real_t> u0
        dst[(4 * a + 1) * stride] = <real_t> u1
        dst[(4 * a + 2) * stride] = <real_t> u2
        dst[(4 * a + 3) * stride] = <real_t> u3


def transform_weights(const real_t[:, ::1] w, real_t[:, :, ::1] up, int nthreads):
    """up[xi, ob, c*nc + j] = (G g G^T)[xi] of output channel ob*nc + j, input
    channel c (zero past the last output channel).

    ``w`` (Cout, C*9): the 3x3 kernels; ``up`` (16, blocks, C*nc).
    """
    cdef Py_ssize_t Cout = w.shape[0], C = w.shape[1] // 9, nob = up.shape[1]
    cdef Py_ssize_t nc, co, c, xi, stride = up.shape[1] * up.shape[2]
    if C == 0 or up.shape[0] != 16 or up.shape[2] % C != 0 or nob * (up.shape[2] // C) < Cout:
        raise ValueError("transform_weights: up must be (16, blocks, C*nc) covering every output channel")
    nc = up.shape[2] // C
    for co in prange(nob * nc, nogil=True, num_threads=nthreads, schedule='static'):
        for c in range(C):
            if co < Cout:
                transform_kernel(&w[co, c * 9], &up[0, co // nc, c * nc + co % nc], stride)
            else:
                for xi in range(16):
                    up[xi, co // nc, c * nc + co % nc] = 0


cdef int input_transform(const real_t* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t ty0, Py_ssize_t nty,
                          Py_ssize_t TW, Py_ssize_t Tqp, real_t* strip, real_t* V) noexcept nogil:
    """V[xi, c, q] = (B^T d B)[xi] of tile q = r*TW + tx (tile row ty0 + r)
    of channel c; zero for q past the band's tiles. Returns 1 when every
    input value read is finite, else 0.

    ``strip``: room for (2*nty + 2) * (2*TW + 2) + 4 * (2*TW + 2) elements.
    """
    cdef Py_ssize_t Wp = 2 * TW + 2, rows = 2 * nty + 2
    cdef Py_ssize_t c, u, v, y, xl, xr, r, q, k, plane = C * Tqp
    cdef Py_ssize_t y0 = max(0, 2 * ty0 - pt), y1 = min(H, 2 * ty0 - pt + rows)
    cdef int finite = 1
    cdef real_t* s
    cdef real_t* tmp = strip + rows * Wp
    # input columns [xl, xr) land in strip columns [xl + pl, xr + pl)
    xl = max(0, -pl)
    xr = min(W, Wp - pl)
    for c in range(C):
        if c + 1 < C and y1 > y0:  # the next channel's rows, while this one is transformed
            fc_prefetch_range(x + ((c + 1) * H + y0) * W, (y1 - y0) * W * sizeof(real_t))
        # the padded rows this band reads, zero outside the image
        for u in range(rows):
            s = strip + u * Wp
            y = 2 * ty0 - pt + u
            if y < 0 or y >= H or xr <= xl:
                memset(s, 0, Wp * sizeof(real_t))
                continue
            for v in range(xl + pl):
                s[v] = 0
            memcpy(s + xl + pl, x + (c * H + y) * W + xl, (xr - xl) * sizeof(real_t))
            finite &= finite_values(s + xl + pl, xr - xl)
            for v in range(xr + pl, Wp):
                s[v] = 0
        for r in range(nty):
            if real_t is float:
                fc_wino_input_f32(strip + 2 * r * Wp, Wp, TW, V + c * Tqp + r * TW, plane, tmp)
            else:
                fc_wino_input_f64(strip + 2 * r * Wp, Wp, TW, V + c * Tqp + r * TW, plane, tmp)
        for k in range(16):
            for q in range(nty * TW, Tqp):
                V[k * plane + c * Tqp + q] = 0
    return finite


cdef inline void output_transform(const real_t* M, Py_ssize_t plane, Py_ssize_t ldc, Py_ssize_t nc,
                                  Py_ssize_t ntiles, real_t* P, Py_ssize_t ldrow) noexcept nogil:
    if real_t is float:
        fc_wino_output_f32(M, plane, ldc, nc, ntiles, P, ldrow)
    else:
        fc_wino_output_f64(M, plane, ldc, nc, ntiles, P, ldrow)


def workspace_elements(Py_ssize_t C, Py_ssize_t Coutp, Py_ssize_t TW, Py_ssize_t band,
                       Py_ssize_t Tqp):
    """One thread's workspace for a band of ``band`` tile rows (layout below)."""
    return (2 * band + 6) * (2 * TW + 2) + 16 * C * Tqp + 16 * Tqp * Coutp + 2 * band * 2 * TW * Coutp


# One thread's workspace: the strip of padded input rows, then V (the
# transformed input, 16 x C x Tqp), the products (16 x Tqp x Coutp: the
# forward's sums, the weight gradient's transformed grad_output), then the
# pixel-major rows (2*band rows of 2*TW pixels x Coutp). (Each pointer is
# assigned in the parallel block itself: Cython makes such variables private
# to the thread; set through a pointer they would be shared.)

cdef inline real_t* transformed_input(real_t* strip, Py_ssize_t band, Py_ssize_t TW) noexcept nogil:
    return strip + (2 * band + 6) * (2 * TW + 2)


cdef inline real_t* products(real_t* V, Py_ssize_t C, Py_ssize_t Tqp) noexcept nogil:
    return V + 16 * C * Tqp


cdef inline real_t* pixel_rows(real_t* prods, Py_ssize_t Tqp, Py_ssize_t Coutp) noexcept nogil:
    return prods + 16 * Tqp * Coutp


def forward(const real_t[:, ::1] x, const real_t[:, :, ::1] up, real_t[:, ::1] out,
            const real_t[::1] bias, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Cout,
            Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t band,
            const Py_ssize_t[::1] pix, const Py_ssize_t[::1] off, real_t[::1] ws, int nthreads):
    """out (N, Cout*Ho*Wo) = the 3x3 correlation of x (N, C*H*W), padded by
    ``pt`` rows on top and ``pl`` columns on the left (zeros), plus bias.

    ``up`` (16, blocks, C*nc): :func:`transform_weights`. ``band``: tile
    rows per work item. ``pix``: 0, 1, ... (at least Tqp entries, Tqp =
    band * ceil(Wo/2) rounded up to TILE_MULTIPLE); ``off[c] = c * Tqp``.
    ``ws``: ``nthreads * workspace_elements(...)`` elements.

    Returns the number of work items whose input held NaN or inf (their
    transforms mix a tile's values: an inf may come out as NaN).
    """
    cdef Py_ssize_t N = x.shape[0], nob = up.shape[1], nc = up.shape[2] // max(C, 1)
    cdef Py_ssize_t Coutp = nob * nc, TW = (Wo + 1) // 2, TH = (Ho + 1) // 2
    cdef Py_ssize_t Tqp = (band * TW + FC_CV_PIX - 1) // FC_CV_PIX * FC_CV_PIX
    cdef Py_ssize_t nbands = (TH + band - 1) // band, items = N * nbands
    cdef Py_ssize_t per_thread = workspace_elements(C, Coutp, TW, band, Tqp)
    cdef Py_ssize_t it, n, ty0, nty, xi, ob, t0, nt, oy0, r, nonfinite = 0
    cdef real_t* strip
    cdef real_t* V
    cdef real_t* M
    cdef real_t* P
    cdef const real_t* bp = &bias[0] if bias.shape[0] > 0 else NULL
    if items == 0 or C == 0:
        raise ValueError("Winograd forward needs images, channels and output pixels")
    if ws.shape[0] < nthreads * per_thread or pix.shape[0] < Tqp or off.shape[0] < C:
        raise ValueError("workspace or tables too small for this plan")
    strip = V = M = P = NULL  # set per thread below (initialised for the compiler's sake)
    with nogil, parallel(num_threads=nthreads):
        strip = &ws[0] + threadid() * per_thread
        V = transformed_input(strip, band, TW)
        M = products(V, C, Tqp)
        P = pixel_rows(M, Tqp, Coutp)
        for it in prange(items, schedule='dynamic'):
            n = it // nbands
            ty0 = (it % nbands) * band
            nty = min(band, TH - ty0)
            nonfinite += 1 - input_transform(&x[n, 0], C, H, W, pt, pl, ty0, nty, TW, Tqp, strip, V)
            for xi in range(16):
                for ob in range(nob):
                    t0 = 0
                    while t0 < C:
                        nt = min(<Py_ssize_t> TAP_CHUNK, C - t0)
                        conv_cv(M + xi * Tqp * Coutp + ob * nc, Coutp, V + xi * C * Tqp,
                                   &pix[0], &off[t0], nt, &up[xi, ob, 0] + t0 * nc, Tqp, t0 > 0)
                        t0 = t0 + nt
            for r in range(nty):  # P: rows of 2*TW pixels (an odd last column is junk)
                output_transform(M + r * TW * Coutp, Tqp * Coutp, Coutp, Cout, TW,
                                 P + 2 * r * 2 * TW * Coutp, 2 * TW)
            oy0 = 2 * ty0
            for r in range(min(2 * nty, Ho - oy0)):
                transpose_out(&out[n, 0] + (oy0 + r) * Wo, Ho * Wo, P + r * 2 * TW * Coutp, Coutp, Wo,
                              Cout, bp)
    return nonfinite


#: Input channels of the weight gradient's kernel call are padded to a
#: multiple of this (its register block of taps).
GRAD_TAP_MULTIPLE = FC_GW_TAPS


def grad_weight(const real_t[:, ::1] x, const real_t[:, ::1] go, real_t[:, :, ::1] acc,
                Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Cout, Py_ssize_t Ho,
                Py_ssize_t Wo, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t band,
                const Py_ssize_t[::1] off, real_t[::1] ws, int nthreads):
    """acc[thread, xi, c*Coutp + co] += sum over tiles of (A g A^T)[xi] * (B^T d B)[xi]:
    the gradient of the transformed weights (``transform_weights``' layout
    transposed: input channel major), summed by the caller over threads and
    mapped back by :func:`untransform_weight_grad`.

    ``go`` (N, Cout*Ho*Wo); ``acc`` (nthreads, 16, Cp*Coutp) zeroed by the
    caller, Cp = C rounded up to GRAD_TAP_MULTIPLE, Coutp to the kernel's
    block of channels; ``off[c] = c * Tqp`` for c < Cp (past C: any index
    inside V, their rows of acc are junk). Returns the number of work items
    whose input or grad_output held NaN or inf.
    """
    cdef Py_ssize_t N = x.shape[0], TW = (Wo + 1) // 2, TH = (Ho + 1) // 2
    cdef Py_ssize_t Cp = off.shape[0], Coutp = acc.shape[2] // max(Cp, 1)
    cdef Py_ssize_t nc = (FC_CV_VECS * 32) // sizeof(real_t), nob = Coutp // nc
    cdef Py_ssize_t Tqp = (band * TW + FC_CV_PIX - 1) // FC_CV_PIX * FC_CV_PIX
    cdef Py_ssize_t nbands = (TH + band - 1) // band, items = N * nbands, HW = Ho * Wo
    cdef Py_ssize_t per_thread = workspace_elements(C, Coutp, TW, band, Tqp)
    cdef Py_ssize_t it, n, ty0, nty, xi, ob, tb, oy0, r, nonfinite = 0, ldrow = 2 * TW * Coutp
    cdef int tid
    cdef real_t* strip
    cdef real_t* V
    cdef real_t* G
    cdef real_t* Z
    cdef real_t* a
    if items == 0 or C == 0 or Cp % FC_GW_TAPS != 0 or Cp < C or Coutp % nc != 0 or Coutp < Cout:
        raise ValueError("Winograd grad_weight: bad plan")
    if ws.shape[0] < nthreads * per_thread or acc.shape[0] < nthreads or acc.shape[1] != 16:
        raise ValueError("workspace or accumulators too small for this plan")
    strip = V = G = Z = NULL  # set per thread below (initialised for the compiler's sake)
    with nogil, parallel(num_threads=nthreads):
        strip = &ws[0] + threadid() * per_thread
        V = transformed_input(strip, band, TW)
        Z = products(V, C, Tqp)
        G = pixel_rows(Z, Tqp, Coutp)
        # the junk column (odd Wo), junk row (odd Ho) and padded channels stay 0
        memset(G, 0, 2 * band * ldrow * sizeof(real_t))
        for it in prange(items, schedule='dynamic'):
            tid = threadid()
            n = it // nbands
            ty0 = (it % nbands) * band
            nty = min(band, TH - ty0)
            oy0 = 2 * ty0
            nonfinite += 1 - input_transform(&x[n, 0], C, H, W, pt, pl, ty0, nty, TW, Tqp, strip, V)
            # grad_output of the band, pixel-major, rows of 2*TW pixels
            for r in range(2 * nty):
                if oy0 + r < Ho:
                    transpose_out(G + r * ldrow, Coutp, &go[n, 0] + (oy0 + r) * Wo, HW, Cout, Wo,
                                  <real_t*> NULL)
                else:
                    memset(G + r * ldrow, 0, ldrow * sizeof(real_t))
            for r in range(nty):
                if real_t is float:
                    fc_wino_gradout_f32(G + 2 * r * ldrow, Coutp, Coutp, TW, Z + r * TW * Coutp, Tqp * Coutp)
                else:
                    fc_wino_gradout_f64(G + 2 * r * ldrow, Coutp, Coutp, TW, Z + r * TW * Coutp, Tqp * Coutp)
            nonfinite += 1 - finite_values(G, 2 * nty * ldrow)
            a = &acc[tid, 0, 0]
            for xi in range(16):
                for ob in range(nob):
                    for tb in range(Cp // FC_GW_TAPS):
                        conv_gw(a + xi * Cp * Coutp + tb * FC_GW_TAPS * Coutp + ob * nc, Coutp,
                                V + xi * C * Tqp, &off[tb * FC_GW_TAPS], 1, nty * TW, 0,
                                Z + xi * Tqp * Coutp + ob * nc, Coutp)
    return nonfinite


def untransform_weight_grad(const real_t[:, ::1] du, real_t[:, ::1] gw, Py_ssize_t Coutp, int nthreads):
    """gw[co, c*9 + i*3 + j] = (G^T dU G)[i][j] for dU[xi] = du[xi, c*Coutp + co]
    (computed in double)."""
    cdef Py_ssize_t Cout = gw.shape[0], C = gw.shape[1] // 9, co, c
    if du.shape[0] != 16 or du.shape[1] < C * Coutp or Coutp < Cout:
        raise ValueError("untransform_weight_grad: bad shapes")
    for co in prange(Cout, nogil=True, num_threads=nthreads, schedule='static'):
        for c in range(C):
            untransform_one(&du[0, c * Coutp + co], du.shape[1], &gw[co, c * 9])


cdef void untransform_one(const real_t* du, Py_ssize_t stride, real_t* g9) noexcept nogil:
    """g9 (3x3) = G^T X G for X[a][b] = du[(4a + b) * stride]."""
    cdef double y[3][4]
    cdef double x0, x1, x2, x3
    cdef Py_ssize_t i, b
    for b in range(4):  # G^T X
        x0 = du[b * stride]
        x1 = du[(4 + b) * stride]
        x2 = du[(8 + b) * stride]
        x3 = du[(12 + b) * stride]
        y[0][b] = x0 + 0.5 * (x1 + x2)
        y[1][b] = 0.5 * (x1 - x2)
        y[2][b] = 0.5 * (x1 + x2) + x3
    for i in range(3):  # (G^T X) G
        g9[i * 3] = <real_t> (y[i][0] + 0.5 * (y[i][1] + y[i][2]))
        g9[i * 3 + 1] = <real_t> (0.5 * (y[i][1] - y[i][2]))
        g9[i * 3 + 2] = <real_t> (0.5 * (y[i][1] + y[i][2]) + y[i][3])
