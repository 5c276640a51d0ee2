# The register-blocked kernels of _simd/conv_kernels.h (conv2d's direct method,
# also run by the Winograd method), and their fused-type wrappers: cimported
# and inlined by conv_direct.pyx and winograd.pyx.

cdef extern from "conv_kernels.h" nogil:
    void fc_conv_block_f32(float* out, Py_ssize_t ldo, const float* inp, const Py_ssize_t* off,
                           Py_ssize_t ntaps, const float* wp, Py_ssize_t npix)
    void fc_conv_block_f64(double* out, Py_ssize_t ldo, const double* inp, const Py_ssize_t* off,
                           Py_ssize_t ntaps, const double* wp, Py_ssize_t npix)
    int FC_CB_OC
    int FC_CB_PIX
    void fc_conv_cv_f32(float* out, Py_ssize_t ldo, const float* inp, const Py_ssize_t* pix,
                        const Py_ssize_t* off, Py_ssize_t ntaps, const float* wq, Py_ssize_t npix,
                        int accumulate)
    void fc_conv_cv_f64(double* out, Py_ssize_t ldo, const double* inp, const Py_ssize_t* pix,
                        const Py_ssize_t* off, Py_ssize_t ntaps, const double* wq, Py_ssize_t npix,
                        int accumulate)
    void fc_transpose_f32(float* dst, Py_ssize_t ldd, const float* src, Py_ssize_t lds,
                          Py_ssize_t nq, Py_ssize_t nc, const float* bias)
    void fc_transpose_f64(double* dst, Py_ssize_t ldd, const double* src, Py_ssize_t lds,
                          Py_ssize_t nq, Py_ssize_t nc, const double* bias)
    int FC_CV_VECS
    int FC_CV_PIX
    void fc_conv_gw_f32(float* gw, Py_ssize_t ldw, const float* inp, const Py_ssize_t* off,
                        Py_ssize_t nrows, Py_ssize_t wo, Py_ssize_t wq, const float* got, Py_ssize_t ldg)
    void fc_conv_gw_f64(double* gw, Py_ssize_t ldw, const double* inp, const Py_ssize_t* off,
                        Py_ssize_t nrows, Py_ssize_t wo, Py_ssize_t wq, const double* got, Py_ssize_t ldg)
    int FC_GW_TAPS
    void fc_conv_po_f32(float* out, Py_ssize_t ldo, Py_ssize_t nch, const float* inp,
                        const Py_ssize_t* off, Py_ssize_t ntaps, const float* wp, Py_ssize_t npix,
                        const float* init, int accumulate)
    void fc_conv_po_f64(double* out, Py_ssize_t ldo, Py_ssize_t nch, const double* inp,
                        const Py_ssize_t* off, Py_ssize_t ntaps, const double* wp, Py_ssize_t npix,
                        const double* init, int accumulate)
    int FC_PO_OC
    Py_ssize_t fc_po_block_channels()
    void fc_even_f32(float* dst, const float* src, Py_ssize_t n)
    void fc_even_f64(double* dst, const double* src, Py_ssize_t n)
    void fc_prefetch_bytes(const void* p, Py_ssize_t n)
    void fc_prefetch_write_rows(const void* p, Py_ssize_t ld, Py_ssize_t nch, Py_ssize_t n)
    int fc_w24_in_f32(float* dst, Py_ssize_t ldd, const float* src, Py_ssize_t nt, Py_ssize_t n)
    int fc_w24_in_f64(double* dst, Py_ssize_t ldd, const double* src, Py_ssize_t nt, Py_ssize_t n)
    void fc_w24_out_f32(float* out, Py_ssize_t ldo, Py_ssize_t nch, Py_ssize_t wo, const float* m,
                        Py_ssize_t ldc, Py_ssize_t ldm, const float* bias)
    void fc_w24_out_f64(double* out, Py_ssize_t ldo, Py_ssize_t nch, Py_ssize_t wo, const double* m,
                        Py_ssize_t ldc, Py_ssize_t ldm, const double* bias)

ctypedef fused real_t:
    float
    double


cdef inline void conv_block(real_t* out, Py_ssize_t ldo, const real_t* inp, const Py_ssize_t* off,
                            Py_ssize_t ntaps, const real_t* wp, Py_ssize_t npix) noexcept nogil:
    if real_t is float:
        fc_conv_block_f32(out, ldo, inp, off, ntaps, wp, npix)
    else:
        fc_conv_block_f64(out, ldo, inp, off, ntaps, wp, npix)


cdef inline void conv_cv(real_t* out, Py_ssize_t ldo, const real_t* inp, const Py_ssize_t* pix,
                         const Py_ssize_t* off, Py_ssize_t ntaps, const real_t* wq,
                         Py_ssize_t npix, int accumulate) noexcept nogil:
    if real_t is float:
        fc_conv_cv_f32(out, ldo, inp, pix, off, ntaps, wq, npix, accumulate)
    else:
        fc_conv_cv_f64(out, ldo, inp, pix, off, ntaps, wq, npix, accumulate)


cdef inline void transpose_out(real_t* dst, Py_ssize_t ldd, const real_t* src, Py_ssize_t lds,
                               Py_ssize_t nq, Py_ssize_t nc, const real_t* bias) noexcept nogil:
    if real_t is float:
        fc_transpose_f32(dst, ldd, src, lds, nq, nc, bias)
    else:
        fc_transpose_f64(dst, ldd, src, lds, nq, nc, bias)


cdef inline void even_samples(real_t* dst, const real_t* src, Py_ssize_t n) noexcept nogil:
    if real_t is float:
        fc_even_f32(dst, src, n)
    else:
        fc_even_f64(dst, src, n)


cdef inline void conv_gw(real_t* gw, Py_ssize_t ldw, const real_t* inp, const Py_ssize_t* off,
                         Py_ssize_t nrows, Py_ssize_t wo, Py_ssize_t wq, const real_t* got,
                         Py_ssize_t ldg) noexcept nogil:
    if real_t is float:
        fc_conv_gw_f32(gw, ldw, inp, off, nrows, wo, wq, got, ldg)
    else:
        fc_conv_gw_f64(gw, ldw, inp, off, nrows, wo, wq, got, ldg)


cdef inline void conv_po(real_t* out, Py_ssize_t ldo, Py_ssize_t nch, const real_t* inp,
                         const Py_ssize_t* off, Py_ssize_t ntaps, const real_t* wp, Py_ssize_t npix,
                         const real_t* init, int accumulate) noexcept nogil:
    if real_t is float:
        fc_conv_po_f32(out, ldo, nch, inp, off, ntaps, wp, npix, init, accumulate)
    else:
        fc_conv_po_f64(out, ldo, nch, inp, off, ntaps, wp, npix, init, accumulate)


cdef inline int w24_in(real_t* dst, Py_ssize_t ldd, const real_t* src, Py_ssize_t nt,
                       Py_ssize_t n) noexcept nogil:
    if real_t is float:
        return fc_w24_in_f32(dst, ldd, src, nt, n)
    else:
        return fc_w24_in_f64(dst, ldd, src, nt, n)


cdef inline void w24_out(real_t* out, Py_ssize_t ldo, Py_ssize_t nch, Py_ssize_t wo, const real_t* m,
                         Py_ssize_t ldc, Py_ssize_t ldm, const real_t* bias) noexcept nogil:
    if real_t is float:
        fc_w24_out_f32(out, ldo, nch, wo, m, ldc, ldm, bias)
    else:
        fc_w24_out_f64(out, ldo, nch, wo, m, ldc, ldm, bias)
