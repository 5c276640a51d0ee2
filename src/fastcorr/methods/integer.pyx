# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Exact integer correlation in narrow lanes (the integer path of the direct
and separable methods).

The offset correlation (see ``direct.pyx``)

    out[m, n] = sum_{j, k} w[j, k] * X[m + off0 + j, n + off1 + k]

of integer arrays, in numpy's modular arithmetic of the result dtype
(scipy's). A result of b bits only needs arithmetic modulo 2**b, and
reduction modulo 2**L commutes with + and x: 8- and 16-bit results are
computed in 16-bit lanes, 32-bit results in 32-bit lanes, 64-bit results
in 64-bit lanes, each exact after the cast to the result dtype (the
kernels of ``_simd/int_kernels.h``).

Threads (this one and helpers of a pool, not an OpenMP team) claim chunks
of output rows (whichever asks first: a helper that starts late on a busy
machine finds the work done instead of holding the call back) and compute each chunk three rows at a time, from a ring of
``kh + 2`` input rows extended by the boundary rule and converted to the
lane type once each (rows of the fill value are one shared row). A kernel
of rank one with integer factors, ``w = outer(u, v)``, may run as two 1-D
passes (:func:`correlate_separable`): the ring then holds rows already
correlated with ``v``, and the output is their correlation with ``u``
(``kh + kw`` multiply-adds an output instead of ``kh * kw``), exact for the
same reason.
"""
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy
from libc.stdint cimport uint16_t, uint32_t, uint64_t
cimport numpy as cnp
import numpy as np

from fastcorr.methods._memo import KernelCache
from fastcorr.methods._pool import GrowingPool

cnp.import_array()

cdef extern from "int_kernels.h" nogil:
    ctypedef void (*fi_extend_fn)(void*, const void*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int,
                                  const void*)
    ctypedef void (*fi_rows_fn)(void**, const void**, const void*, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, int)
    int fi_select(int lane_bits, int out_bytes, int src_bytes, int src_signed, int level,
                  fi_extend_fn* extend, fi_rows_fn* rows, fi_rows_fn* rows_lane)
    Py_ssize_t fi_map_index(Py_ssize_t i, Py_ssize_t n, int boundary)
    Py_ssize_t fi_claim(Py_ssize_t* counter)
    enum: FI_HAVE_ATOMIC
    enum: FI_R
    enum: FI_PAD
    int fc_cpu_has_avx2_fma()
    int fi_cpu_has_avx512dq()

fc_cpu_has_avx2_fma()  # probe the CPU once, before threads race on the cache
fi_cpu_has_avx512dq()

SERVES_COMPLEX = False
SERVES_INTEGER = True
#: Computes integer arrays in their own dtypes (the engine passes them
#: unconverted; the result dtype is ``numpy.result_type(x, w)``).
NATIVE_INTEGER = True
SERVES_OUT = False

#: Run the portable C loops instead of the AVX2 ones (tests set it to check
#: the portable twin on an AVX2 machine).
PORTABLE = False

#: Run the AVX2 loops where AVX-512 ones exist (the 64-bit lanes' vpmullq):
#: tests set it to check the AVX2 twin on an AVX-512 machine.
NO_AVX512 = False

#: Whether the AVX2 loops run on this CPU, and the AVX-512DQ/VL ones.
AVX2 = bool(fc_cpu_has_avx2_fma())
AVX512 = bool(fi_cpu_has_avx512dq())

#: Bytes of one thread's ring of rows beyond which a call is not served
#: (:func:`serves`: kernels far larger than any image; the engine then
#: computes it the old way, in uint64).
MAX_RING_BYTES = 1 << 26

#: Multiply-adds (in 16-bit lanes; a 32-bit one counts 2, a 64-bit one 10)
#: below which one more thread costs more than it saves: about 60 us of work
#: on one core, against a pool helper's start (a thread woken, the GIL
#: passed) and a descheduled helper on a busy machine.
MIN_WORK_PER_THREAD = 1 << 22
_LANE_COST = {2: 1, 4: 2, 8: 10}


cdef struct Plan:
    fi_extend_fn extend
    fi_rows_fn rows         # lanes -> output dtype
    fi_rows_fn rows_lane    # lanes -> lanes (the separable first pass)
    Py_ssize_t lsize, osize
    const char* x
    Py_ssize_t H, W, ldx    # ldx in bytes
    const void* w           # kernel (kh x kw), or u (kh) when separable
    const void* v           # separable: the row factor (kw); else NULL
    Py_ssize_t kh, kw
    char* out
    Py_ssize_t Ho, Wo, ldo  # ldo in bytes
    Py_ssize_t off0, off1
    int boundary
    unsigned char fill[8]   # the fill value in lanes
    unsigned char hfill[8]  # separable: fill * sum(v) in lanes


cdef inline Py_ssize_t pos_mod(Py_ssize_t e, Py_ssize_t s) noexcept nogil:
    e = e % s
    return e + s if e < 0 else e


cdef struct Work:
    char* ring      # S ring rows, then the fill row
    char* tmp       # separable: one extended row
    char* dummy     # output rows past the end of a chunk
    void** ptrs     # row pointers: S slots, S inputs, FI_R outputs
    size_t row_bytes


cdef int work_alloc(const Plan* p, Work* wk) noexcept nogil:
    """One thread's buffers (calloc: the rows' padding lanes are zeros); 0 or -1."""
    cdef Py_ssize_t S = p.kh + FI_R - 1, EW = p.Wo + p.kw - 1
    cdef bint sep = p.v != NULL
    wk.row_bytes = ((p.Wo if sep else EW) + FI_PAD) * p.lsize
    wk.ring = <char*> calloc(S + 1, wk.row_bytes)
    wk.tmp = <char*> calloc(EW + FI_PAD, p.lsize) if sep else NULL
    wk.dummy = <char*> malloc(max(p.Wo, 1) * p.osize)
    wk.ptrs = <void**> malloc((2 * S + FI_R) * sizeof(void*))
    if wk.ring == NULL or wk.dummy == NULL or wk.ptrs == NULL or (sep and wk.tmp == NULL):
        work_free(wk)
        return -1
    # the fill row: the fill value in every lane (its first pass when separable)
    cdef char* fillrow = wk.ring + S * wk.row_bytes
    cdef Py_ssize_t i
    if sep:
        for i in range(wk.row_bytes // p.lsize):
            memcpy(fillrow + i * p.lsize, p.hfill, p.lsize)
    else:
        p.extend(fillrow, NULL, 0, wk.row_bytes // p.lsize, 0, p.boundary, p.fill)
    return 0


cdef void work_free(Work* wk) noexcept nogil:
    free(wk.ring); free(wk.tmp); free(wk.dummy); free(wk.ptrs)
    wk.ring = NULL; wk.tmp = NULL; wk.dummy = NULL; wk.ptrs = NULL


cdef void run_rows(const Plan* p, Work* wk, Py_ssize_t m_lo, Py_ssize_t m_hi) noexcept nogil:
    """Output rows m_lo .. m_hi-1, FI_R at a time, from the ring of rows
    (started anew: the first group converts all the rows it reads)."""
    cdef Py_ssize_t kh = p.kh, kw = p.kw, S = p.kh + FI_R - 1
    cdef bint sep = p.v != NULL
    cdef Py_ssize_t EW = p.Wo + kw - 1
    cdef Py_ssize_t m, e, e0, e_hi, next_e, i, r, slot, nr, a
    cdef char* buf
    cdef const void** rowptr = <const void**> wk.ptrs
    cdef const void** inp = rowptr + S
    cdef void** outp = wk.ptrs + 2 * S
    cdef char* fillrow = wk.ring + S * wk.row_bytes
    cdef char* trow[1]
    cdef const void* tin[1]
    next_e = p.off0 + m_lo
    m = m_lo
    while m < m_hi:
        e_hi = p.off0 + m + S
        e0 = max(next_e, p.off0 + m)
        for e in range(e0, e_hi):
            slot = pos_mod(e, S)
            r = fi_map_index(e, p.H, p.boundary)
            if r < 0:
                rowptr[slot] = fillrow
                continue
            buf = wk.ring + slot * wk.row_bytes
            if sep:
                p.extend(wk.tmp, p.x + r * p.ldx, p.off1, EW, p.W, p.boundary, p.fill)
                trow[0] = buf
                tin[0] = wk.tmp
                p.rows_lane(<void**> trow, tin, p.v, 1, kw, p.Wo, 1)
            else:
                p.extend(buf, p.x + r * p.ldx, p.off1, EW, p.W, p.boundary, p.fill)
            rowptr[slot] = buf
        next_e = e_hi
        for i in range(S):
            inp[i] = rowptr[pos_mod(p.off0 + m + i, S)]
        nr = min(<Py_ssize_t> FI_R, m_hi - m)
        for a in range(FI_R):
            outp[a] = (p.out + (m + a) * p.ldo) if a < nr else wk.dummy
        p.rows(outp, inp, p.w, kh, 1 if sep else kw, p.Wo, FI_R)
        m = m + FI_R


#: Groups of FI_R output rows per chunk a thread claims: about this many
#: chunks per thread, each of at least MIN_CHUNK_GROUPS groups (a chunk
#: starts its ring anew, converting kh - 1 rows more).
cdef enum:
    CHUNKS_PER_THREAD = 8
    MIN_CHUNK_GROUPS = 8


cdef class _Job:
    """One call's plan and its chunk counter, run by :meth:`work` on each
    thread that takes part (this one and pool helpers)."""
    cdef Plan p
    cdef Py_ssize_t counter, nchunks, chunk
    cdef object keep  # the arrays the plan points into

    def work(self):
        cdef int status
        with nogil:
            status = self.run()
        return status

    cdef int run(self) noexcept nogil:
        cdef Work wk
        cdef Py_ssize_t c
        if work_alloc(&self.p, &wk) != 0:
            return -1
        while True:
            c = fi_claim(&self.counter)
            if c >= self.nchunks:
                break
            run_rows(&self.p, &wk, min(c * self.chunk * FI_R, self.p.Ho),
                     min((c + 1) * self.chunk * FI_R, self.p.Ho))
        work_free(&wk)
        return 0


_pool = GrowingPool("fastcorr-integer")


cdef int execute(_Job job, int num_threads) except? -1:
    """Run a call's chunks on up to ``num_threads`` threads (this one included).

    Not an OpenMP team: each thread claims chunks from a shared counter, and
    this thread waits only for chunks another thread has claimed; a helper
    that the system has not scheduled yet when the chunks run out is
    cancelled instead of waited for (an OpenMP barrier waits for it: a
    scheduler time slice, ~10 ms, when another process keeps the cores busy).
    """
    cdef Py_ssize_t ngroups = (job.p.Ho + FI_R - 1) // FI_R
    cdef int status
    if not FI_HAVE_ATOMIC or ngroups < 2 * MIN_CHUNK_GROUPS:
        num_threads = 1
    job.counter = 0
    if num_threads <= 1:
        job.chunk = ngroups
        job.nchunks = 1
        return job.work()
    job.chunk = max(<Py_ssize_t> MIN_CHUNK_GROUPS, ngroups // (CHUNKS_PER_THREAD * num_threads))
    job.nchunks = (ngroups + job.chunk - 1) // job.chunk
    num_threads = <int> min(<Py_ssize_t> num_threads, job.nchunks)
    pool = _pool.executor(num_threads - 1)
    helpers = [pool.submit(job.work) for _ in range(num_threads - 1)]
    status = job.work()
    for f in helpers:
        if not f.cancel():
            status = min(status, f.result())
    return status


_LANES = {1: 16, 2: 16, 4: 32, 8: 64}
_LANE_DTYPES = {16: np.dtype(np.uint16), 32: np.dtype(np.uint32), 64: np.dtype(np.uint64)}


def lane_bits(dtype):
    """Bits of the lanes a result of ``dtype`` is computed in."""
    return _LANES[np.dtype(dtype).itemsize]


def _as_input(a):
    if type(a) is not np.ndarray or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if a.dtype.kind == "b":
        a = a.view(np.uint8)
    return a


def _lanes(a, bits):
    """``a``'s values modulo 2**bits, in unsigned lanes of that width."""
    a = np.asarray(a)
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    wide = a.astype(np.int64, copy=False).view(np.uint64) if a.dtype.kind == "i" else a.astype(np.uint64, copy=False)
    return np.ascontiguousarray(wide.astype(_LANE_DTYPES[bits]))


def _lane_scalar(value, bits):
    return np.array(int(value) % (1 << bits), dtype=_LANE_DTYPES[bits])


def serves(x_shape, w_shape, shape, dtype, separable=False):
    """Whether this module computes the case (a thread's ring of rows stays
    under MAX_RING_BYTES; result dtypes of 1, 2, 4 or 8 bytes)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize not in _LANES:
        return False
    lsize = _LANES[dtype.itemsize] // 8
    kh, kw = w_shape
    width = (shape[1] if separable else shape[1] + kw - 1) + FI_PAD
    return (kh + FI_R + 2) * width * lsize <= MAX_RING_BYTES


def useful_threads(int num_threads, work, Py_ssize_t rows):
    """Threads worth starting for ``work`` multiply-adds over ``rows`` rows."""
    return int(max(1, min(num_threads, (rows + FI_R - 1) // FI_R, work // MIN_WORK_PER_THREAD)))


cdef inline void set_lane(unsigned char* dst, unsigned long long value, int lsize) noexcept:
    """Store ``value`` (already reduced modulo the lanes) as one lane."""
    cdef uint16_t v16
    cdef uint32_t v32
    cdef uint64_t v64
    if lsize == 2:
        v16 = <uint16_t> value
        memcpy(dst, &v16, 2)
    elif lsize == 4:
        v32 = <uint32_t> value
        memcpy(dst, &v32, 4)
    else:
        v64 = <uint64_t> value
        memcpy(dst, &v64, 8)


_kernels = {}  # (shape, dtype, bits, flipped, bytes) -> the kernel in lanes


cdef object kernel_lanes(object w, int bits, bint flip):
    """``w`` (flipped in both axes when ``flip``) in lanes, remembered for
    small kernels (a repeated call skips the conversions)."""
    cdef cnp.ndarray a = <cnp.ndarray> w
    small = a.size <= 4096
    if small:
        key = (a.shape[0], a.shape[1], a.dtype.num, bits, flip, a.tobytes())
        found = _kernels.get(key)
        if found is not None:
            return found
    lanes = _lanes(w[::-1, ::-1] if flip else w, bits)
    if small:
        if len(_kernels) >= 256:
            _kernels.clear()
        _kernels[key] = lanes
    return lanes


cdef _run(cnp.ndarray x, object kernel, object vrow, Py_ssize_t kh, Py_ssize_t kw,
          Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t off0, Py_ssize_t off1,
          int boundary, fill, hfill, int num_threads, cnp.dtype dtype, portable):
    cdef _Job job = _Job()
    cdef Plan* pp = &job.p
    cdef int bits = _LANES[dtype.itemsize], status
    cdef cnp.npy_intp dims[2]
    dims[0] = Ho
    dims[1] = Wo
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, dims, dtype.type_num, 0)
    cdef cnp.ndarray wl = kernel
    cdef cnp.ndarray vl
    cdef unsigned long long mask = (<unsigned long long> -1) >> (64 - bits)
    if not fi_select(bits, dtype.itemsize, x.dtype.itemsize, x.dtype.kind == "i",
                     1 if (PORTABLE if portable is None else portable) else (2 if NO_AVX512 else 0),
                     &pp.extend, &pp.rows, &pp.rows_lane):
        raise ValueError(f"integer lanes: no loop for {x.dtype} into {dtype}")
    pp.lsize = bits // 8
    pp.osize = dtype.itemsize
    pp.x = <const char*> cnp.PyArray_DATA(x)
    pp.H = x.shape[0]
    pp.W = x.shape[1]
    pp.ldx = x.strides[0]
    pp.w = cnp.PyArray_DATA(wl)
    pp.v = NULL
    if vrow is not None:
        vl = vrow
        pp.v = cnp.PyArray_DATA(vl)
    pp.kh = kh
    pp.kw = kw
    pp.out = <char*> cnp.PyArray_DATA(out)
    pp.Ho = Ho
    pp.Wo = Wo
    pp.ldo = out.strides[0]
    pp.off0 = off0
    pp.off1 = off1
    pp.boundary = boundary
    set_lane(pp.fill, <unsigned long long> (int(fill) & mask), pp.lsize)
    set_lane(pp.hfill, <unsigned long long> (int(hfill) & mask), pp.lsize)
    if Ho == 0 or Wo == 0:
        return out
    work = Ho * Wo * ((kh + kw) if vrow is not None else kh * kw) * _LANE_COST[pp.lsize]
    cdef int threads = useful_threads(num_threads, work, Ho)
    job.keep = (x, wl, vrow, out)
    status = execute(job, threads)
    if status != 0:
        raise MemoryError("fastcorr integer: could not allocate a thread's rows")
    return out


cdef cnp.dtype result_dtype(cnp.ndarray x, object w):
    cdef cnp.dtype dx = x.dtype, dw = (<cnp.ndarray> w).dtype
    if dx is dw or dx == dw:
        return dx
    return np.result_type(dx, dw)


def correlate(x, w, shape, offsets, int boundary, fill, int num_threads, out=None, *, portable=None):
    """Engine entry: the offset correlation of integer ``x`` and ``w`` (any
    integer or bool dtypes, 2-D, non-empty) in ``numpy.result_type(x, w)``,
    exactly (modular arithmetic). ``fill``: an integer (taken modulo the
    lanes). ``portable``: the C loops instead of AVX2 (default
    :data:`PORTABLE`). Arguments are trusted: the engine validates them.
    """
    x = _as_input(x)
    w = np.asarray(w)
    cdef cnp.dtype dtype = result_dtype(x, w)
    res = _run(x, kernel_lanes(w, _LANES[dtype.itemsize], False), None, w.shape[0], w.shape[1],
               shape[0], shape[1], offsets[0], offsets[1], boundary, fill, 0, num_threads, dtype,
               portable)
    if out is not None:
        out[...] = res
        return out
    return res


def plain(cnp.ndarray x, cnp.ndarray w, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t off0, Py_ssize_t off1,
          bint convolve, int num_threads, bint separable):
    """A plain call's result (``fastcorr._engine.plain_call``): C-contiguous
    ``x`` and ``w`` of one integer dtype, fill boundary with 0; ``w`` flipped
    here for a convolution; the separable passes when asked (``w`` must then
    have integer factors: :func:`factor`)."""
    if separable:
        return correlate_separable(x, w[::-1, ::-1] if convolve else w, (Ho, Wo), (off0, off1), 0, 0,
                                   num_threads)
    cdef cnp.dtype dtype = x.dtype
    return _run(x, kernel_lanes(w, _LANES[dtype.itemsize], convolve), None, w.shape[0], w.shape[1],
                Ho, Wo, off0, off1, 0, 0, 0, num_threads, dtype, None)


_factors = KernelCache(max_entries=256)


def factor(w, bits=None):
    """Integer factors ``(u, v)`` with ``w == outer(u, v)`` modulo
    ``2**bits`` (default: ``w``'s own bits), or None when there are none (or
    ``w`` is all zeros).

    A result of ``bits`` bits only sees the kernel modulo ``2**bits``, so
    each entry is first taken as its representative in
    ``[-2**(bits-1), 2**(bits-1))`` (a uint8 255 is -1); the factors are
    then those of that integer matrix: v is its first non-zero row divided by
    the gcd of its entries, and every row of a rank-one integer matrix is an
    integer multiple of that v.

    >>> factor(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))
    ([1, 2, 1], [1, 2, 1])
    >>> factor(np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.int8))
    ([1, 2, 1], [1, 0, -1])
    >>> factor(np.eye(3, dtype=int)) is None
    True
    """
    w = np.asarray(w)
    if bits is None:
        bits = 8 * w.dtype.itemsize
    key = (w.shape, w.dtype.str, bits, w.tobytes())
    found = _factors.get(key, -1)
    if found != -1:
        return found
    result = _factor(w, bits)
    _factors.put(key, result)
    return result


def _factor(w, bits):
    import math

    if w.ndim != 2 or w.size == 0 or w.dtype.kind not in "biu":
        return None
    half, full = 1 << (bits - 1), 1 << bits
    rows = [[(int(t) + half) % full - half for t in row] for row in w.tolist()]
    first = next((row for row in rows if any(row)), None)
    if first is None:
        return None
    g = 0
    for t in first:
        g = math.gcd(g, t)
    v = [t // g for t in first]
    j0 = next(j for j, t in enumerate(v) if t)
    u = []
    for row in rows:
        if row[j0] % v[j0]:
            return None
        c = row[j0] // v[j0]
        if any(c * vt != t for vt, t in zip(v, row)):
            return None
        u.append(c)
    return u, v


_factor_lane_cache = {}


def _factor_lanes(f, bits):
    """The factors ``f = (u, v)`` in lanes of ``bits`` bits, and sum(v)."""
    key = (bits, tuple(f[0]), tuple(f[1]))
    found = _factor_lane_cache.get(key)
    if found is None:
        mask = (1 << bits) - 1
        u, v = f
        found = (_lanes(np.array([t & mask for t in u], dtype=np.uint64), bits),
                 _lanes(np.array([t & mask for t in v], dtype=np.uint64), bits), sum(v))
        if len(_factor_lane_cache) >= 256:
            _factor_lane_cache.clear()
        _factor_lane_cache[key] = found
    return found


def correlate_separable(x, w, shape, offsets, int boundary, fill, int num_threads, out=None, *,
                        portable=None):
    """As :func:`correlate`, as two 1-D passes; ValueError unless ``w`` is
    of rank one over the integers (:func:`factor`)."""
    x = _as_input(x)
    w = np.asarray(w)
    dtype = np.result_type(x, w)
    f = factor(w, 8 * dtype.itemsize)
    if f is None:
        raise ValueError(
            f"method='separable' on integers needs a kernel of rank one with integer factors "
            f"(w == outer(u, v)); this {w.shape[0]}x{w.shape[1]} kernel is not: use method='direct' or 'auto'"
        )
    bits = _LANES[dtype.itemsize]
    ul, vl, vsum = _factor_lanes(f, bits)
    hfill = (int(fill) * vsum) & ((1 << bits) - 1) if fill else 0
    res = _run(x, ul, vl, w.shape[0], w.shape[1], shape[0], shape[1], offsets[0], offsets[1], boundary,
               fill, hfill, num_threads, dtype, portable)
    if out is not None:
        out[...] = res
        return out
    return res
