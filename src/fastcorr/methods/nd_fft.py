"""N-D FFT method: the offset correlation of arrays of any rank by ``scipy.fft``.

    out[m] = sum_k w[k] * X[m + off + k]          (X: the input extended by zeros)

is read off a circular correlation of transform size L per axis, chosen
(``scipy.fft.next_fast_len``) just large enough that no lag of the window
wraps onto another: L >= max(b + K, N - a, n) for the window of lags
[a, b] = [off, off + n - 1] (the full correlation needs N + K - 1).
Real inputs use real transforms; transforms run on ``num_threads`` workers.
Axes outside ``axes`` are not transformed: they broadcast (a batch).

:func:`window_1d` serves a few lags of two long 1-D signals: the kernel is
cut into blocks, each block's short correlation is a product of spectra,
and the products are summed before one inverse transform (overlap-save in
the kernel's index), so the cost grows with the signals' length times the
log of the window, not with the full correlation's size.
"""
import itertools
import threading

import numpy as np
import scipy.fft as sfft

from . import _fftlib
from ._pool import GrowingPool

_pool = GrowingPool("fastcorr-window")

SERVES_COMPLEX = True
SERVES_INTEGER = False


def sizes(xshape, wshape, shape, offsets):
    """Transform sizes per axis for the window of each axis."""
    out = []
    for N, K, n, a in zip(xshape, wshape, shape, offsets):
        b = a + n - 1
        need = max(b + K, N - a, n, 1)
        out.append(sfft.next_fast_len(int(need), real=True))
    return out


def _take_window(c, offsets, shape, axes):
    """c[(off + m) mod L] along each axis in ``axes``."""
    for ax in axes:
        L = c.shape[ax]
        a = offsets[ax] % L
        n = shape[ax]
        if a + n <= L:
            c = c[(slice(None),) * ax + (slice(a, a + n),)]
        else:
            idx = (np.arange(n) + a) % L
            c = np.take(c, idx, axis=ax)
    return c


def correlate(x, w, shape, offsets, boundary, fill, num_threads, axes=None):
    """The offset correlation on the axes ``axes`` (default: all), the other
    axes broadcast. ``x``, ``w``: float32/float64/complex arrays of one dtype
    and rank; ``boundary`` 0 with a zero ``fill`` only."""
    if boundary != 0 or fill != 0:
        raise ValueError("the N-D FFT method serves only a zero fill")
    nd = x.ndim
    axes = list(range(nd)) if axes is None else sorted(int(a) for a in axes)
    shape = tuple(int(s) for s in shape)
    offsets = [int(offsets[a]) if a in axes else 0 for a in range(nd)]
    dtype = np.result_type(x, w)
    if not axes:
        return np.ascontiguousarray(np.broadcast_to(x * w, shape), dtype=dtype)
    L = sizes([x.shape[a] for a in axes], [w.shape[a] for a in axes], [shape[a] for a in axes],
              [offsets[a] for a in axes])
    workers = max(1, int(num_threads))
    if dtype.kind == "c":
        X = sfft.fftn(x, s=L, axes=axes, workers=workers)
        # sum_k w[k] x[p + k] = ifft(X * conj(fft(conj(w))))
        V = sfft.fftn(np.conj(w), s=L, axes=axes, workers=workers)
        np.conjugate(V, out=V)
        X = _product(X, V)
        c = sfft.ifftn(X, s=L, axes=axes, workers=workers, overwrite_x=True)
    else:
        X = sfft.rfftn(x, s=L, axes=axes, workers=workers)
        V = sfft.rfftn(w, s=L, axes=axes, workers=workers)
        np.conjugate(V, out=V)
        X = _product(X, V)
        c = sfft.irfftn(X, s=L, axes=axes, workers=workers, overwrite_x=True)
    c = _take_window(c, offsets, shape, axes)
    return np.ascontiguousarray(c, dtype=dtype)


def _product(X, V):
    """X * V, in X's memory when the broadcast shape is X's."""
    if X.shape == np.broadcast_shapes(X.shape, V.shape):
        X *= V
        return X
    return X * V


#: Bytes of one batch of frames of :func:`window_1d` (each array of the
#: batch stays in L2: 512 KiB ran 1.4-2.7x faster than 4 MiB here; lags
#: ±100 of 2e6 float64 samples, one thread, CPU time: 128 KiB 12.9 ms,
#: 256 KiB 11.0, 512 KiB 13.1). Since a real kernel's blocks need no
#: conjugation pass (one array fewer a batch), 512 KiB measured best
#: (wall, medians of six alternated runs: 2 threads 9.8 ms against 11.5
#: with 256 KiB and 10.9 with 1 MiB; 1 thread 11.8 against 13.5 / 14.4).
WINDOW_BATCH_BYTES = 1 << 19
#: Batches per round of :func:`window_1d` (its table of batch sums: at most
#: this many spectra).
WINDOW_ROUND_BATCHES = 64
#: Whether :func:`window_1d` calls ducc0 directly when it is the library in
#: use (lags ±100 of 2e6 float64, one thread, CPU time, alternated: 10.3 ms
#: against 13.2 through ``_fftlib``'s checks and new arrays per batch).
WINDOW_DUCC_DIRECT = True


def _frames(x, off, g0, g1, B, M):
    """Frames ``g0 .. g1-1`` of the 1-D ``x``: frame c is ``x[off + c B :
    off + c B + M]``, zeros outside x, as a (g1 - g0, M) read-only view of
    one segment (copied only where the frames run past x)."""
    N = x.shape[0]
    lo = off + g0 * B
    hi = off + (g1 - 1) * B + M
    if lo >= 0 and hi <= N:
        seg = x[lo:hi]
    else:
        seg = np.zeros(hi - lo, dtype=x.dtype)
        s0, s1 = max(lo, 0), min(hi, N)
        if s1 > s0:
            seg[s0 - lo:s1 - lo] = x[s0:s1]
    return np.lib.stride_tricks.as_strided(seg, shape=(g1 - g0, M), strides=(B * seg.itemsize, seg.itemsize),
                                           writeable=False)


def window_1d(x, w, n, off, num_threads, block=None):
    """``out[m] = sum_k w[k] * X[m + off + k]`` for ``m < n`` and a long
    kernel ``w`` (1-D float32/float64/complex arrays of one dtype): the
    kernel in blocks of B taps, one transform of size M >= B + n - 1 per
    block of each input, the products summed, one inverse transform.

    The blocks go in batches of a few frames (in cache), each batch's
    product summed into its own row of a private table; ``num_threads``
    Python threads take batches in turn (the transforms and numpy's loops
    release the GIL) and the rows are added in batch order after each round
    of batches, so the result does not depend on the threads."""
    K = w.shape[0]
    dtype = np.result_type(x, w)
    workers = max(1, int(num_threads))
    M = block or _fftlib.next_fast_len(max(4096, 8 * n), real=True)
    B = M - n + 1
    C = -(-K // B)
    complex_ = dtype.kind == "c"
    bins = M if complex_ else M // 2 + 1
    single = dtype.itemsize <= (8 if complex_ else 4)
    if _fftlib.library() == "ducc0" and WINDOW_DUCC_DIRECT:
        # ducc0 called directly, into this thread's buffers (no checks of
        # scipy's backend state and no new arrays per batch)
        transform = _fftlib._ducc.c2c if complex_ else _fftlib._ducc.r2c

        def fwd(a, out):
            return transform(a, axes=(1,), forward=True, nthreads=1, out=out)
    else:
        lib = _fftlib.fft if complex_ else _fftlib.rfft

        def fwd(a, out):
            return lib(a, axis=-1, workers=1)
    G = max(1, min(C, WINDOW_BATCH_BYTES // (M * x.itemsize)))
    nbatch = -(-C // G)
    rounds = max(1, min(nbatch, WINDOW_ROUND_BATCHES))
    table = np.empty((rounds, bins), dtype=np.complex128)
    spec = np.zeros(table.shape[1], dtype=np.complex128)
    wc = np.conj(w) if complex_ else w
    workers = min(workers, nbatch)
    lock = threading.Lock()
    claim = None
    first = 0

    def batches():
        kb = np.zeros((G, M), dtype=w.dtype)  # this thread's blocks of the kernel, zero-padded
        bufs = [np.empty((G, bins), dtype=np.complex64 if single else np.complex128) for _ in range(2)]
        while True:
            with lock:
                i = next(claim)
            if i >= min(nbatch, first + rounds):
                return
            g0 = i * G
            g1 = min(C, g0 + G)
            g = g1 - g0
            frames = _frames(x, off, g0, g1, B, M)
            part = wc[g0 * B:min(K, g1 * B)]
            full = part.shape[0] // B
            if complex_:
                kb[:full, :B] = part[:full * B].reshape(full, B)
                if full < g:
                    kb[full:g] = 0
                    kb[full, :part.shape[0] - full * B] = part[full * B:]
            else:
                # each block b reversed around 0 (b[0] at 0, b[j] at M - j):
                # its transform is conj(rfft(b)) for real b, so no pass of
                # conjugation (the other columns stay zero)
                blocks = part[:full * B].reshape(full, B)
                kb[:full, 0] = blocks[:, 0]
                kb[:full, M - B + 1:] = blocks[:, :0:-1]
                if full < g:
                    tail = part[full * B:]
                    kb[full:g] = 0
                    if tail.shape[0]:
                        kb[full, 0] = tail[0]
                        kb[full, M - tail.shape[0] + 1:] = tail[:0:-1]
            A = fwd(frames, bufs[0][:g])
            V = fwd(kb[:g], bufs[1][:g])
            if complex_:
                np.conjugate(V, out=V)
            A *= V
            table[i - first] = A.sum(axis=0)

    # rounds of at most WINDOW_ROUND_BATCHES batches (the table stays a few
    # MiB however long the signals), each round's rows added in order
    for first in range(0, nbatch, rounds):
        claim = itertools.count(first)
        if workers > 1:
            pool = _pool.executor(workers)
            futures = [pool.submit(batches) for _ in range(workers - 1)]
            try:
                batches()
            finally:
                for f in futures:
                    f.result()
        else:
            batches()
        spec += table[:min(nbatch, first + rounds) - first].sum(axis=0)
    if complex_:
        c = _fftlib.ifft(spec, workers=1)[:n]
    else:
        c = _fftlib.irfft(spec, M, workers=1)[:n]
    return np.ascontiguousarray(c, dtype=dtype)


def overlap_save_1d(x, w, n, off, num_threads, block=None):
    """``out[m] = sum_k w[k] * X[m + off + k]`` for ``m < n`` (1-D arrays of
    one float or complex dtype) by overlap-save: blocks of B outputs, each
    from one transform of M = B + K - 1 input samples; the blocks' transforms
    run in batches (a few MiB) on ``num_threads`` workers."""
    K = w.shape[0]
    dtype = np.result_type(x, w)
    workers = max(1, int(num_threads))
    M = block or sfft.next_fast_len(max(8 * K, 4096), real=True)
    B = M - K + 1
    C = -(-n // B)
    complex_ = dtype.kind == "c"
    fwd, inv = (sfft.fft, sfft.ifft) if complex_ else (sfft.rfft, sfft.irfft)
    V = fwd(np.conj(w) if complex_ else w, n=M, workers=workers)
    np.conjugate(V, out=V)
    out = np.empty(n, dtype=dtype)
    G = max(1, min(C, (4 << 20) // (M * x.itemsize)))
    for g0 in range(0, C, G):
        g1 = min(C, g0 + G)
        frames = _frames(x, off, g0, g1, B, M)
        A = fwd(frames, axis=-1, workers=workers)
        A *= V
        c = inv(A, M, axis=-1, workers=workers, overwrite_x=True)[:, :B]
        m0 = g0 * B
        m1 = min(n, g1 * B)
        out[m0:m1] = c.reshape(-1)[:m1 - m0]
    return out
