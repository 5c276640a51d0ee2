# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The compiled fast path of plain ``correlate2d`` / ``convolve2d`` calls.

Most calls are two C-contiguous float32 (or float64) arrays with the
default boundary; for small images the Python layers (validation, dtype
lowering: ~5 us) cost more than the work (a 64x64 image with a 3x3 kernel:
~3 us) or a large part of it (a 64x64 FFT: ~60 us). :func:`plain_call`
recognises such a call with a few C checks and runs it on the method the
dispatcher chooses (the direct method's C-level entry, or any engine);
any other call -- whatever is unusual in it, including bad arguments --
gets None back and goes through the general path, where
``fastcorr._engine.validate`` checks it and ``fastcorr._engine.dispatch``
chooses.
"""
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
cimport numpy as cnp
import numpy as np

from fastcorr.methods.direct cimport (corr2d_f32, corr2d_f64, is_small_scaling, is_scaling,
                                      scale2d_f32, scale2d_f64)
from fastcorr.methods import direct as _direct_module
from fastcorr.methods.boundary cimport BOUNDARY_FILL
from fastcorr.methods.direct import useful_threads
from fastcorr._engine.config import get_num_threads, team_threads, MAX_THREADS
from fastcorr._engine import dispatch as _dispatch
from fastcorr._engine import config as _config

cdef extern from "<time.h>" nogil:
    enum: CLOCK_THREAD_CPUTIME_ID

cnp.import_array()

cdef double _STALL_SECONDS = _config.STALL_SECONDS
cdef double _CPU_TIMED_WORK = _config.CPU_TIMED_WORK
cdef double _FAULT_SECONDS_PER_BYTE = _config.FAULT_SECONDS_PER_BYTE
cdef Py_ssize_t _SCALE_BELOW = _direct_module.SCALE_BELOW
cdef double _HUGE_ALIGN_MIN = _direct_module.HUGE_ALIGN_MIN
_fresh_output = _direct_module.fresh_output


cdef inline double _seconds(timespec t) noexcept nogil:
    return t.tv_sec + 1e-9 * t.tv_nsec

try:  # the narrow exact lanes of integer calls
    from fastcorr.methods import integer as _integer
    _INTEGER_RING_BYTES = _integer.MAX_RING_BYTES
except ImportError:
    _integer = None
    _INTEGER_RING_BYTES = 0

cdef dict _plain_plans = _dispatch.plain_plans

# The last auto case and its entry in _plain_plans: a repeated shape (the
# common case) skips building and hashing the key (~0.15 us of a 1.5 us call).
cdef struct PlainCase:
    Py_ssize_t H, W, kh, kw
    int mode, typenum, nthreads, plan

cdef PlainCase _last_case
_last_case.H = -1


def forget_last_plain_case():
    """Drop the memo (the dispatcher calls this whenever it forgets its plans)."""
    _last_case.H = -1


_dispatch.forget_hooks.append(forget_last_plain_case)

#: Largest 'full' output taken here (elements): the general path checks
#: larger ones against the machine's memory first.
PLAIN_FULL_LIMIT = 1 << 24
#: Multiply-adds from which a call goes through the general path, where the
#: dispatcher runs a long call in bands that answer Ctrl-C (its
#: ``LONG_CALL_WORK``; the few microseconds of that path are nothing there).
PLAIN_LONG_WORK = 2e9


cdef inline bint _is_str(object value, str text):
    return type(value) is str and <str> value == text


cdef inline bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether two C-contiguous arrays' bytes overlap (exact for contiguous
    arrays: the general path's ``numpy.may_share_memory`` test)."""
    cdef char* a0 = <char*> cnp.PyArray_DATA(a)
    cdef char* b0 = <char*> cnp.PyArray_DATA(b)
    return a0 < b0 + cnp.PyArray_NBYTES(b) and b0 < a0 + cnp.PyArray_NBYTES(a)


cdef inline bint _plain_out(object out, cnp.ndarray x, cnp.ndarray w, int typenum, Py_ssize_t Ho, Py_ssize_t Wo):
    """Whether ``out`` is an output the fast path can write: an aligned,
    writeable, C-contiguous, native ndarray of exactly the result's shape and
    dtype, apart from both inputs. Anything else (including every bad
    ``out``) goes through the general path, where ``validate.out_arg`` names
    what is wrong."""
    if type(out) is not np.ndarray:
        return False
    cdef cnp.ndarray o = <cnp.ndarray> out
    return (cnp.PyArray_NDIM(o) == 2 and cnp.PyArray_TYPE(o) == typenum
            and cnp.PyArray_DIM(o, 0) == Ho and cnp.PyArray_DIM(o, 1) == Wo
            and cnp.PyArray_ISCARRAY(o) and cnp.PyArray_ISNOTSWAPPED(o)
            and not _overlaps(o, x) and not _overlaps(o, w))


def plain_call(in1, in2, mode, boundary, fillvalue, method, num_threads, bint convolve, out=None):
    """``correlate2d`` (or ``convolve2d``) of a plain call; None for any other.

    Plain: ``in1`` and ``in2`` are non-empty 2-D ndarrays of one native
    float32 or float64 dtype (or of one integer dtype, computed in
    ``methods.integer``'s lanes), C-contiguous and aligned; ``boundary='fill'``
    with a zero int/float ``fillvalue``; ``num_threads`` None or an int in
    range; 'valid' without scipy's swap; and ``method`` 'direct' or 'auto'.
    'auto' runs what ``dispatch.choose_offset_method`` picks, as the
    general path would (the kernel flipped for a convolution). The result
    is the general path's, computed the same way. ``out``, when given, must
    be a float output the direct method or a method that serves ``out=``
    writes in place (see :func:`_plain_out`); the result is then ``out``.
    """
    global _last_case
    if type(in1) is not np.ndarray or type(in2) is not np.ndarray:
        return None
    cdef cnp.ndarray x = <cnp.ndarray> in1
    cdef cnp.ndarray w = <cnp.ndarray> in2
    if cnp.PyArray_NDIM(x) != 2 or cnp.PyArray_NDIM(w) != 2:
        return None
    cdef int typenum = cnp.PyArray_TYPE(x)
    # integers (one dtype for both): the narrow exact lanes of methods.integer
    cdef bint is_int = _integer is not None and cnp.PyArray_ISINTEGER(x)
    if (typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE and not is_int) or cnp.PyArray_TYPE(w) != typenum:
        return None
    if not (cnp.PyArray_ISCARRAY_RO(x) and cnp.PyArray_ISCARRAY_RO(w)
            and cnp.PyArray_ISNOTSWAPPED(x) and cnp.PyArray_ISNOTSWAPPED(w)):
        return None
    if not _is_str(boundary, "fill"):
        return None
    if not ((type(fillvalue) is int or type(fillvalue) is float) and fillvalue == 0):
        return None
    cdef bint auto = _is_str(method, "auto")
    if not (auto or _is_str(method, "direct")):
        return None
    cdef int nthreads
    if num_threads is None:
        nthreads = get_num_threads()
    elif type(num_threads) is int and 1 <= num_threads <= MAX_THREADS:
        nthreads = team_threads(num_threads) if num_threads > 1 else 1
    else:
        return None
    cdef Py_ssize_t H = cnp.PyArray_DIM(x, 0), W = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t kh = cnp.PyArray_DIM(w, 0), kw = cnp.PyArray_DIM(w, 1)
    cdef Py_ssize_t Ho, Wo, off0, off1
    cdef int mode_code
    if H == 0 or W == 0 or kh == 0 or kw == 0:
        return None
    # The modes' output shapes and offsets, as geometry.output_shape / offsets
    # (there in Python, for every dtype and the 'valid' swap).
    if _is_str(mode, "same"):
        mode_code, Ho, Wo = 1, H, W
        # scipy centres an even kernel one sample differently for convolution
        off0 = -(kh // 2) if convolve else -((kh - 1) // 2)
        off1 = -(kw // 2) if convolve else -((kw - 1) // 2)
    elif _is_str(mode, "valid"):
        if H < kh or W < kw:
            return None
        mode_code, Ho, Wo, off0, off1 = 2, H - kh + 1, W - kw + 1, 0, 0
    elif _is_str(mode, "full"):
        mode_code, Ho, Wo, off0, off1 = 0, H + kh - 1, W + kw - 1, 1 - kh, 1 - kw
        if Ho * Wo > PLAIN_FULL_LIMIT:
            return None
    else:
        return None
    if <double> Ho * Wo * kh * kw >= PLAIN_LONG_WORK:
        return None  # maybe a long call: the general path runs it in bands (Ctrl-C)
    if is_int and <double> (kh + 5) * (Wo + kw + 63) * 8 > _INTEGER_RING_BYTES:
        return None  # the general path decides where the narrow lanes' rows do not fit
    if out is not None and (is_int or not _plain_out(out, x, w, typenum, Ho, Wo)):
        return None

    cdef int plan
    if auto:
        if (_last_case.H == H and _last_case.W == W and _last_case.kh == kh and _last_case.kw == kw
                and _last_case.mode == mode_code and _last_case.typenum == typenum
                and _last_case.nthreads == nthreads):
            plan = _last_case.plan
        else:
            key = (H, W, kh, kw, mode_code, typenum, nthreads)
            found = _plain_plans.get(key)
            plan = _dispatch.plain_plan(key, x, w, (Ho, Wo), nthreads) if found is None else found
            _last_case = PlainCase(H, W, kh, kw, mode_code, typenum, nthreads, plan)
        if plan == 0:  # the values or the model pick
            chosen = _dispatch.choose_offset_method(x, w, (Ho, Wo), 0, x.dtype, nthreads, not is_int)
            if is_int:
                if chosen not in ("direct", "separable"):
                    return None
                return _integer.plain(x, w, Ho, Wo, off0, off1, convolve, nthreads, chosen == "separable")
            if chosen != "direct":
                # through the dispatcher's entry for a chosen method: a threaded
                # separable call there goes serial when threaded calls stall
                # lately (on a busy machine each of its passes' barriers can
                # wait a scheduler tick: 64x64, 31x31 Gaussian, 2 threads under
                # load 12 took 8-32 ms here against 0.08 ms), and its wait is
                # noted (config.WaitClock), as for the direct method below.
                # An FFT chosen without a look at a large x (defer_x) goes
                # there as 'auto', which leaves x's NaN/inf rule to the method
                # and chooses again if x holds any.
                if convolve:
                    w = np.ascontiguousarray(w[::-1, ::-1])
                return _dispatch.correlate_offset(x, w, (Ho, Wo), (off0, off1), BOUNDARY_FILL, x.dtype.type(0),
                                                  x.dtype, "auto" if chosen == "fft" and _dispatch._defers(x)
                                                  else chosen, nthreads, out=out)
    if is_int:
        return _integer.plain(x, w, Ho, Wo, off0, off1, convolve, nthreads, False)
    return _direct_new(x, w, Ho, Wo, off0, off1, convolve, nthreads, out)


cdef object _direct_new(cnp.ndarray x, cnp.ndarray w, Py_ssize_t Ho, Py_ssize_t Wo,
                        Py_ssize_t off0, Py_ssize_t off1, bint convolve, int threads, object given):
    """The direct method's result, as ``fastcorr.methods.direct.correlate``
    computes it (``w`` flipped in both axes first when ``convolve``), in
    ``given`` (checked by :func:`_plain_out`) or a new array."""
    cdef Py_ssize_t H = cnp.PyArray_DIM(x, 0), W = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t kh = cnp.PyArray_DIM(w, 0), kw = cnp.PyArray_DIM(w, 1), i, n = kh * kw
    cdef int typenum = cnp.PyArray_TYPE(x), status
    cdef bint scaling = is_scaling(H, W, kh, kw, off0, off1, Ho, Wo)
    if scaling and not _direct_module.SCALE_KERNEL:  # the earlier path (A/B)
        scaling = False
        if is_small_scaling(H, W, kh, kw, off0, off1, Ho, Wo):
            return np.multiply(x, w[0, 0]) if given is None else np.multiply(x, w[0, 0], out=given)
    if scaling:  # x * w[0, 0], threaded above SCALE_BELOW values
        threads = threads if H * W > _SCALE_BELOW else 1
    else:
        threads = useful_threads(threads, Ho * Wo * n, Ho)
    if threads > 1 and _config._stall_rate != 0.0 and _dispatch.serial_pays(
            "direct", (H, W), (kh, kw), (Ho, Wo), x.dtype, 0):
        threads = 1  # threaded calls stall lately (config.STALL_SECONDS)
    cdef timespec wall0, wall1, cpu0, cpu1
    cdef bint cpu_timed = threads > 1 and <double> Ho * Wo * n >= _CPU_TIMED_WORK
    cdef double wall
    cdef cnp.npy_intp dims[2]
    dims[0] = Ho
    dims[1] = Wo
    cdef cnp.ndarray out
    if given is not None:
        out = <cnp.ndarray> given
    elif <double> Ho * Wo * cnp.PyArray_ITEMSIZE(x) >= _HUGE_ALIGN_MIN:  # on a 2 MiB boundary
        out = <cnp.ndarray> _fresh_output((Ho, Wo), x.dtype)
    else:
        out = cnp.PyArray_EMPTY(2, dims, typenum, 0)
    cdef double fresh_bytes = <double> Ho * Wo * cnp.PyArray_ITEMSIZE(x) if given is None else 0.0
    cdef size_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef char* kernel = <char*> cnp.PyArray_DATA(w)
    cdef char* flipped = NULL
    if convolve:
        flipped = <char*> malloc(n * itemsize)
        if flipped == NULL:
            raise MemoryError("fastcorr direct: could not allocate the flipped kernel")
        for i in range(n):
            memcpy(flipped + i * itemsize, kernel + (n - 1 - i) * itemsize, itemsize)
        kernel = flipped
    with nogil:
        if threads > 1:  # what this thread waits for the team (config.WaitClock)
            if cpu_timed:
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0)
            clock_gettime(CLOCK_MONOTONIC, &wall0)
        if scaling:
            status = 0
            if typenum == cnp.NPY_FLOAT:
                scale2d_f32(<const float*> cnp.PyArray_DATA(x), H, W, W, (<const float*> kernel)[0],
                            <float*> cnp.PyArray_DATA(out), Wo, threads)
            else:
                scale2d_f64(<const double*> cnp.PyArray_DATA(x), H, W, W, (<const double*> kernel)[0],
                            <double*> cnp.PyArray_DATA(out), Wo, threads)
        elif typenum == cnp.NPY_FLOAT:
            status = corr2d_f32(<const float*> cnp.PyArray_DATA(x), H, W, W, <const float*> kernel, kh, kw,
                                <float*> cnp.PyArray_DATA(out), Ho, Wo, Wo, off0, off1, BOUNDARY_FILL, 0,
                                threads)
        else:
            status = corr2d_f64(<const double*> cnp.PyArray_DATA(x), H, W, W, <const double*> kernel, kh, kw,
                                <double*> cnp.PyArray_DATA(out), Ho, Wo, Wo, off0, off1, BOUNDARY_FILL, 0,
                                threads)
        if threads > 1:
            clock_gettime(CLOCK_MONOTONIC, &wall1)
    free(flipped)
    if threads > 1:
        wall = _seconds(wall1) - _seconds(wall0)
        if wall > _STALL_SECONDS:
            if cpu_timed:
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1)
                _config.note_wait(wall - (_seconds(cpu1) - _seconds(cpu0)))
            else:
                _config.note_wait(wall - _FAULT_SECONDS_PER_BYTE * fresh_bytes)
        elif _config._stall_rate != 0.0:  # a call without a stall lowers the rate
            _config.note_wait(0.0)
    if status != 0:
        raise MemoryError("fastcorr direct: could not allocate a row-pointer buffer")
    return out
