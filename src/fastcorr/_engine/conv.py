"""conv2d's engine: plans, workspaces and the drivers of its methods.

``fastcorr._api.layers`` checks the arguments of conv2d, conv2d_backward,
im2col and col2im and calls :func:`forward`, :func:`backward`,
:func:`unfold` and :func:`fold` here; the method ('direct', 'im2col',
'winograd') is chosen in ``dispatch.choose_conv_method``; the compiled work
is in ``fastcorr.methods.im2col``, ``conv_direct`` and ``winograd``. The
im2col method's offset correlation for correlate2d is here too
(:data:`im2col_offset_engine`), as it shares the tiles and workspaces.

Boundary handling is an *index table*: for each kernel tap and output row
(column) the input row (column) it reads, after padding and the padding mode,
or -1 for a zero. im2col gathers through it (no padded copy of the input);
the blocked direct kernels copy one band of rows at a time through it into
padded planes (``_band_plan``), a few hundred KiB per thread.
"""
import ctypes
import dataclasses
import functools
import math
import os
import threading
import weakref

try:
    import resource
except ImportError:  # not on Windows: no output pool there
    resource = None

import numpy as np

from ..methods._blas import blas_controller, blas_threads
from . import bands, dispatch
from .validate import BOUNDARY_NAMES


#: Upper bound, in bytes, of all im2col column buffers of one call together.
_CAP = 64 * 2**20
#: Per-thread tile target, in bytes: a column tile this small stays in the
#: L2/L3 cache between the gather and the GEMM that reads it.
_TILE_TARGET = 4 * 2**20

# Padding-mode / boundary codes of the index tables.
_MODES = {"nearest": "replicate", "mirror": "reflect",
          "zeros": "fill", "fill": "fill", "circular": "wrap", "wrap": "wrap", "symm": "symm",
          "reflect": "reflect", "replicate": "replicate"}


def set_cap(nbytes):
    """Set the im2col column-buffer cap (``nbytes`` already checked)."""
    global _CAP
    _CAP = nbytes
    _local.__dict__.clear()


def get_cap():
    """The im2col column-buffer cap in bytes."""
    return _CAP


# ---------------------------------------------------------------- plumbing

_local = threading.local()


def workspace(nelems, dtype):
    """A reused per-Python-thread buffer of at least ``nelems`` items of ``dtype``."""
    dtype = np.dtype(dtype)
    nbytes = max(int(nelems), 1) * dtype.itemsize
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        _local.buf = None
        buf = _local.buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype)


def release_workspace():
    """Drop this Python thread's work buffer (kept between calls otherwise)."""
    _local.__dict__.clear()


bands.release_hooks.append(release_workspace)  # an interrupted long call leaves no buffer behind

#: Force the "inner" threading mode (parallel gather + multithreaded BLAS);
#: for measurements only (see the module doc of ``_im2col``).
_FORCE_INNER = False


def blas_threads_pinnable():
    """True when BLAS thread counts can be set (threadpoolctl sees the BLAS)."""
    return blas_controller() is not None and not _FORCE_INNER


def _omp(nt, outer):
    """OpenMP threads of a kernel call: in inner mode BLAS owns the cores.

    Measured (issue 3): alternating OpenMP regions and multithreaded BLAS
    calls, each team spin-waiting while the other runs, was 5-90x slower than
    outer mode on 2 loaded cores; a serial gather beside BLAS threads avoids
    that fight.
    """
    return nt if outer else 1


def index_table(n_out, k, stride, dilation, offset, size, mode):
    """Input index of each (tap, output position), -1 where the value is 0/fill.

    Returns ``(idx, crange)``: ``idx`` (k, n_out) intp and ``crange`` (3, k)
    with rows lo, hi, base such that for lo <= o < hi the raw position
    ``o*stride + base`` is inside [0, size) (no mapping needed).
    """
    base = offset + dilation * np.arange(k, dtype=np.intp)
    raw = base[:, None] + stride * np.arange(n_out, dtype=np.intp)[None, :]
    mode = _MODES[mode]
    inside = (raw >= 0) & (raw < size)
    if mode == "fill" or size == 0:
        idx = np.where(inside, raw, -1)
    elif mode == "wrap":
        idx = raw % size
    elif mode == "symm":  # scipy: half-sample symmetric, edge repeated
        per = raw % (2 * size)
        idx = np.where(per >= size, 2 * size - 1 - per, per)
    elif mode == "reflect":  # torch: whole-sample symmetric, edge not repeated
        if size == 1:
            idx = np.zeros_like(raw)
        else:
            per = raw % (2 * size - 2)
            idx = np.where(per >= size, 2 * size - 2 - per, per)
    else:  # replicate
        idx = np.clip(raw, 0, size - 1)
    lo = np.clip(-((base) // stride), 0, n_out)  # ceil(-base / stride)
    hi = np.clip(-((base - size) // stride), 0, n_out)  # ceil((size - base) / stride)
    hi = np.maximum(hi, lo)
    crange = np.ascontiguousarray(np.stack([lo, hi, base]).astype(np.intp))
    return np.ascontiguousarray(idx, dtype=np.intp), crange


def _geometry(x_hw, k_hw, stride, dilation, pads, out_hw, mode):
    H, W = x_hw
    kh, kw = k_hw
    ridx, _ = index_table(out_hw[0], kh, stride[0], dilation[0], -pads[0], H, mode)
    cidx, crange = index_table(out_hw[1], kw, stride[1], dilation[1], -pads[2], W, mode)
    return ridx, cidx, crange


def _tile(P, K, itemsize, items, nthreads, outer):
    """Pixels per column tile: under the cap, cache-sized, enough work items."""
    per_thread = _CAP // (nthreads if outer else 1)
    pt = max(1, min(per_thread, max(_TILE_TARGET, 0)) // (K * itemsize))
    pt = min(P, pt)
    if outer and items < nthreads:
        split = -(-nthreads // items)
        pt = min(pt, -(-P // split))
    if pt < P and pt > 64:
        pt -= pt % 16
    return max(1, pt)


def _pixel_tile(p, nthreads, outer):
    """Output pixels per GEMM of an im2col call (see :func:`_tile`).

    A 1x1 convolution reads the input in place: whole images, unless there
    are fewer (image, group) items than threads; then each is cut so that
    every thread gets a GEMM.
    """
    N, Cg, kh, kw = p.x.shape[0], p.w.shape[1], p.w.shape[2], p.w.shape[3]
    P, items = p.out_hw[0] * p.out_hw[1], N * p.groups
    if not _is_pointwise(p):
        return _tile(P, Cg * kh * kw, p.dtype.itemsize, items, nthreads, outer)
    if not outer or items >= nthreads:
        return P
    split = -(-nthreads // items)
    return min(P, -(-P // (split * 16)) * 16)


#: Below this many multiply-adds a call runs on one thread: waking a second
#: OpenMP thread costs more than it saves (and much more on a loaded machine).
_MIN_PARALLEL_WORK = 1 << 21


def _threads(p):
    N, _, _, _ = p.x.shape
    Cout, Cg, kh, kw = p.w.shape
    work = N * Cout * p.out_hw[0] * p.out_hw[1] * Cg * kh * kw
    return p.num_threads if work >= _MIN_PARALLEL_WORK else 1


def _output(p):
    """The forward output of ``p``: the caller's ``out=`` (already checked, 4-D) or a new array."""
    if p.out is not None:
        return p.out
    return np.empty((p.x.shape[0], p.w.shape[0]) + tuple(p.out_hw), dtype=p.dtype)


class OutputPool:
    """Fresh output arrays on memory that is already mapped: no page faults.

    A new 3 MiB output (1x3->64 224x224 7x7 stride 2) faults in ~750 pages
    on every call when glibc has handed the freed block back to the system
    in between (it does when another library's call in between allocates
    and frees too, e.g. torch's): ~1.3 us a page on this VM, 1 ms of a
    3.6 ms one-thread call. Here each output lives in a block of this pool,
    exposed through a ctypes array (not an ndarray, so that numpy's views of
    the output, however derived, all keep *it* alive); when the last of them
    dies, a weakref callback puts the block back on the free list, and a
    later call of the same size reuses it. A block is reused only once
    nothing references the array it backed, exactly as ``free`` and
    ``malloc`` would: the pool only keeps the memory mapped. The free list
    is bounded (``max_bytes`` in all; outputs under ``min_bytes``, which
    glibc's heap serves without faults, or over ``max_bytes`` are plain
    ``np.empty``); :meth:`clear` drops it.

    Only sizes seen to fault serve from it (:meth:`wants`,
    :meth:`note_faults`): after ``after_faults`` calls whose fresh
    ``np.empty`` output faulted in at least a quarter of its pages. Where
    glibc keeps the memory (a loop of fastcorr calls alone) the pool stays
    out of the way: its blocks measured 1.5-4% slower there (1 thread, CPU
    time, 8x256->256 14x14 1x1), for reasons not found (not alignment).
    """

    def __init__(self, min_bytes=256 * 2**10, max_bytes=32 * 2**20, after_faults=2):
        self.min_bytes, self.max_bytes, self.after_faults = min_bytes, max_bytes, after_faults
        self._faulty = {}  # nbytes -> calls that faulted
        self._reset()

    def _reset(self):
        self._lock = threading.RLock()  # reentrant: a callback may fire inside
        self._free = {}  # nbytes -> [raw uint8 arrays]
        self._free_bytes = 0
        self._live = {}  # id(weakref) -> weakref (the refs must outlive their holders)

    def wants(self, nbytes):
        """Whether an output of ``nbytes`` should come from the pool."""
        return (self.min_bytes <= nbytes <= self.max_bytes
                and self._faulty.get(nbytes, 0) >= self.after_faults)

    def watches(self, nbytes):
        """Whether the faults of a fresh output of ``nbytes`` are worth counting."""
        return self.min_bytes <= nbytes <= self.max_bytes and self._faulty.get(nbytes, 0) < self.after_faults

    def note_faults(self, nbytes, faults):
        """Count a call whose fresh ``np.empty`` output of ``nbytes`` took ``faults`` page faults."""
        if faults * 4096 * 4 >= nbytes:
            if len(self._faulty) > 256:
                self._faulty.clear()
            self._faulty[nbytes] = self._faulty.get(nbytes, 0) + 1

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous array, as ``np.empty(shape, dtype)``."""
        dtype = np.dtype(dtype)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        nbytes = math.prod(shape) * dtype.itemsize  # (np.prod: 4 us a call)
        if nbytes < self.min_bytes or nbytes > self.max_bytes:
            return np.empty(shape, dtype=dtype)
        raw = None
        with self._lock:
            blocks = self._free.get(nbytes)
            if blocks:
                raw = blocks.pop()
                self._free_bytes -= nbytes
        if raw is None:
            raw = np.empty(nbytes + _POOL_ALIGN, dtype=np.uint8)
        holder = (ctypes.c_char * nbytes).from_buffer(raw, -raw.ctypes.data % _POOL_ALIGN)
        ref = weakref.ref(holder, self._put)
        with self._lock:
            self._live[id(ref)] = (ref, raw, nbytes)
        return np.frombuffer(holder, dtype=dtype).reshape(shape)

    def _put(self, ref):
        with self._lock:
            entry = self._live.pop(id(ref), None)
            if entry is None:
                return
            _, raw, nbytes = entry
            if self._free_bytes + nbytes <= self.max_bytes:
                self._free.setdefault(nbytes, []).append(raw)
                self._free_bytes += nbytes

    def clear(self):
        """Drop the free blocks (blocks still in use are dropped when freed)."""
        with self._lock:
            self._free.clear()
            self._free_bytes = 0

    def free_bytes(self):
        """Bytes held on the free list."""
        return self._free_bytes


#: The pool of conv2d's fresh outputs (see :class:`OutputPool`).
output_pool = OutputPool()
if hasattr(os, "register_at_fork"):  # a forked child: a fresh lock (a thread may have held it)
    os.register_at_fork(after_in_child=lambda: output_pool._reset())
#: Whether conv2d's fresh outputs come from it (measurements).
_POOL_OUTPUTS = True
#: The alignment of its blocks (whole vectors: on a 16-byte aligned output
#: every AVX-512 store of the 8x256->256 14x14 layer crossed a cache line,
#: 5% of its time).
_POOL_ALIGN = 64


def _is_pointwise(p):
    kh, kw = p.w.shape[2:]
    return (kh, kw) == (1, 1) and p.stride == (1, 1) and not any(p.pads)


# ---------------------------------------------------------------- im2col method

def _im2col_forward(p):
    from ..methods import im2col as _im2col  # loads scipy's BLAS: only when first needed

    x, w = p.x, p.w
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    Ho, Wo = p.out_hw
    P, K = Ho * Wo, Cg * kh * kw
    out = _output(p)
    if N == 0:
        return out
    ridx, cidx, crange = _geometry((H, W), (kh, kw), p.stride, p.dilation, p.pads, p.out_hw, p.padding_mode)
    outer = blas_threads_pinnable()
    nt = _threads(p)
    pw = _is_pointwise(p)
    pt = _pixel_tile(p, nt, outer)
    ws = workspace(0 if pw else (nt if outer else 1) * K * pt, p.dtype)
    bias = p.bias if p.bias is not None else np.empty(0, p.dtype)
    with blas_threads(1 if outer else nt):
        _im2col.forward(x.reshape(N, -1), w.reshape(Cout, K), out.reshape(N, -1), bias, ws,
                        p.groups, Cg, H, W, kh, kw, p.stride[1], Ho, Wo, ridx, cidx, crange,
                        p.dtype.type(0), pw, pt, _omp(nt, outer), outer)
    return out


def _direct_forward(p):
    if p.w.shape[0] // p.groups >= _BLOCKED_MIN_CHANNELS:
        return _blocked_forward(p)
    from ..methods import conv_direct as _conv_direct

    x, w = p.x, p.w
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    Ho, Wo = p.out_hw
    out = _output(p)
    if N == 0:
        return out
    ridx, cidx, crange = _geometry((H, W), (kh, kw), p.stride, p.dilation, p.pads, p.out_hw, p.padding_mode)
    bias = p.bias if p.bias is not None else np.empty(0, p.dtype)
    _conv_direct.forward(x.reshape(N, -1), w.reshape(Cout, -1), out.reshape(N, -1), bias,
                         p.groups, Cg, H, W, kh, kw, p.stride[1], Ho, Wo, ridx, cidx, crange,
                         _threads(p), p.stride[1] == 1 and p.dilation[1] == 1,
                         p.stride[0] == 1 and p.dilation[0] == 1)
    return out


#: Output channels per group from which the direct method runs the
#: register-blocked kernel (blocks of 4 channels; fewer waste FMAs on zero
#: weights, and the row kernel serves them).
_BLOCKED_MIN_CHANNELS = 4

#: Input bytes of one pixel chunk x tap chunk of a 1x1 convolution (whose
#: taps share no input lines), kept near the core by the blocked kernel.
#: Fewer, longer tap chunks pay fewer passes over the accumulators: 128 KiB
#: against 64 KiB (2 threads, interleaved): 8x256->256 14x14 1.18 / 1.22 ms,
#: 8x256->64 56x56 6.1 / 6.6, 8x128->512 28x28 5.8 / 6.1; 256 KiB (one
#: chunk) 1.30.
_POINTWISE_CHUNK_BYTES = 131072

#: Work items (bands) per thread the band height aims at, for balance.
_ITEMS_PER_THREAD = 8
#: ... for the direct-output kernel.
_PO_ITEMS_PER_THREAD = 4

#: Target bytes of one band's input planes (per thread): they stay in L2
#: while every block of output channels passes over them.
_BAND_TARGET = 384 * 2**10


def _band_plan(p):
    """The plan of the band planes shared by the blocked kernels.

    Returns ``(tables, off, pix)``: ``tables`` the plan arguments of
    ``_conv_direct.forward_blocked`` (``dims``, ``rowsrc``, ``colsrc``,
    ``vrange``, ``phases``), ``off`` the tap offsets and ``pix`` the pixel
    table of the channel-vectorised forward kernel, or an empty array when
    the forward runs the pixel-vectorised one. Plans are cached per geometry
    (their arrays are read-only).
    """
    return _band_plan_cached(p.x.shape, p.w.shape, p.out_hw, p.stride, p.dilation, tuple(p.pads), p.groups,
                             p.padding_mode, p.dtype.itemsize, _threads(p), _is_pointwise(p))


#: Fields of the ``dims`` array of a band plan (the D_* enum of _conv_direct).
_DIMS = ("groups", "C", "H", "W", "Cog", "sh", "sw", "Ho", "Wo", "Wq", "Rq", "band", "S", "padl",
         "direct", "nA", "nB", "kc", "po", "panel")


@functools.lru_cache(maxsize=64)
def _band_plan_cached(x_shape, w_shape, out_hw, stride, dilation, pads, groups, padding_mode, itemsize, nt,
                      pointwise):
    from ..methods import conv_direct as _conv_direct

    N, C, H, W = x_shape
    Cout, Cg, kh, kw = w_shape
    Cog = Cout // groups
    Ho, Wo = out_hw
    (sh, sw), (dh, dw) = stride, dilation
    pad_top, _, pad_left, _ = pads
    Rq, Cq = (kh - 1) * dh // sh, (kw - 1) * dw // sw
    Wq = Wo + Cq
    # Forward kernel: output channels in the vector lanes (no junk columns)
    # unless the channel count wastes more of a block than the junk columns.
    ncv = _conv_direct.CV_BLOCK_CHANNELS[itemsize]
    npv = _conv_direct.CONV_BLOCK_CHANNELS
    cv = -(-Cog // ncv) * ncv / Cog <= -(-Cog // npv) * npv / Cog * Wq / Wo
    po = _po_serves(Cog, Cg * kh * kw, Wo, pointwise, cv, itemsize)
    cv = cv and not po
    # A 1x1 convolution without stride or padding reads the image itself;
    # not with the pixel-vectorised kernel into a scratch tile, which reads
    # whole blocks past a band.
    direct = pointwise and (cv or po)
    # Only the stride phases some tap reads get a plane.
    i, j = np.arange(kh) * dh, np.arange(kw) * dw
    rph, cph = np.unique(i % sh), np.unique(j % sw)
    # Band rows: planes near _BAND_TARGET, and enough work items for the
    # threads; then bands of equal height.
    row_bytes = Cg * len(rph) * len(cph) * Wq * itemsize
    band = Ho if direct else max(1, _BAND_TARGET // row_bytes - Rq)  # direct: no planes to hold
    if nt > 1:
        # the direct-output kernel: fewer, taller bands (on a 1x1 layer's
        # image its runs are whole bands, and a short band ends in a
        # part-filled vector; with planes, fewer rows copied twice)
        per_thread = _PO_ITEMS_PER_THREAD if po else _ITEMS_PER_THREAD
        band = min(band, max(1, -(-Ho * N * groups // (per_thread * nt))))
    band = min(band, Ho)
    band = -(-Ho // -(-Ho // band))
    # Padded row u / column v -> input index (-1 = zero), as the padding mode says.
    rowsrc = index_table((Ho + Rq) * sh, 1, 1, 1, -pad_top, H, padding_mode)[0][0]
    colsrc = index_table(Wq * sw, 1, 1, 1, -pad_left, W, padding_mode)[0][0]
    lo = np.clip(-((cph - pad_left) // sw), 0, Wq)  # ceil((pad_left - b) / sw)
    hi = np.clip(-((cph - pad_left - W) // sw), 0, Wq)
    vrange = np.ascontiguousarray(np.stack([lo, np.maximum(hi, lo)]), dtype=np.intp)
    # Tap (c, i, j) -> offset in the planes of one band.
    S = H * W if direct else (band + Rq) * Wq
    ra, cb = np.searchsorted(rph, i % sh), np.searchsorted(cph, j % sw)
    plane = (np.arange(Cg)[:, None, None] * len(rph) + ra[None, :, None]) * len(cph) + cb[None, None, :]
    off = (plane * S + (i // sh)[None, :, None] * Wq + (j // sw)[None, None, :]).astype(np.intp).ravel()
    pix = _band_pixels(band, Wo, Wq, _conv_direct.CV_BLOCK_PIXELS) if cv else np.empty(0, dtype=np.intp)
    # Taps per chunk of the channel-vectorised forward kernel: a channel
    # block's weights (64 bytes a tap) within 16 KiB, half of L1; for 1x1
    # kernels (whose taps share no input lines) also the chunk's input.
    ntaps = Cg * kh * kw
    kc = 16384 // 64
    if kh * kw == 1:
        kc = min(kc, _POINTWISE_CHUNK_BYTES // (_conv_direct.CV_CHUNK_PIXELS * itemsize))
    kc = -(-ntaps // -(-ntaps // kc))
    panel = 0
    if po:  # a panel's input (kc taps) within _PO_TILE_BYTES, in the L1 cache
        panel = _PO_PANEL
        kc = max(1, _PO_TILE_BYTES // (panel * itemsize))
        kc = -(-ntaps // -(-ntaps // kc))
    vals = dict(groups=groups, C=Cg, H=H, W=W, Cog=Cog, sh=sh, sw=sw, Ho=Ho, Wo=Wo, Wq=Wq, Rq=Rq,
                band=band, S=S, padl=pad_left, direct=int(direct), nA=len(rph), nB=len(cph), kc=kc,
                po=int(po), panel=panel)
    dims = np.array([vals[k] for k in _DIMS], dtype=np.intp)
    phases = np.concatenate([rph, cph]).astype(np.intp)
    tables = (dims, rowsrc, colsrc, vrange, phases)
    for arr in (*tables, off, pix):
        arr.flags.writeable = False
    return tables, off, pix


#: Pixels per panel of the direct-output kernel, and the bytes of input one
#: panel's chunk of taps may read (kept in L1 while every block of output
#: channels passes over it).
_PO_PANEL = 192
_PO_TILE_BYTES = 192 * 2**10
#: 'auto', or 'on' / 'off' to force the direct-output kernel (measurements).
_PO_MODE = "auto"
#: Output columns from which a layer with a kernel larger than 1x1 runs the
#: direct-output kernel (AVX-512 only): its runs are output rows, and short
#: rows waste vector lanes and pay a call per row. Measured (1 thread, float32,
#: CPU time, direct-output / channel-vectorised): 1x3->64 224x224 7x7 stride 2
#: 0.92, 1x16->16 512x512 5x5 0.98, 1x3->16 64x64 3x3 0.84, 4x16->64 32x32 3x3
#: 0.97, 8x64->64 56x56 3x3 1.00; 8x32->32 28x28 5x5 1.13, 8x64->128 28x28 3x3
#: stride 2 1.13, 16x32->32 14x14 3x3 1.10, 8x128->128 7x7 3x3 1.26. 1x1
#: layers (runs of whole images): 8x256->256 14x14 0.93, 8x64->256 56x56 0.88,
#: 8x512->512 7x7 0.98.
_PO_MIN_COLUMNS = 32


#: ... and whose rows fill at least this share of the vector lanes the
#: kernel computes (a row of 35 takes 48 lanes: 8x96->96 35x35 3x3 measured
#: 1.26x the channel-vectorised kernel's time).
_PO_MIN_LANE_USE = 0.9


def _po_lane_use(Wo, itemsize):
    """Share of the computed lanes a row of Wo outputs fills: blocks of 3
    zmm vectors, the last block 1-3 of them (a tail of at most half a
    vector on ymm), as the kernel's driver cuts a row."""
    lanes = 64 // itemsize
    r = Wo % (3 * lanes)
    if r == 0:
        tail = 0
    elif r > lanes:
        tail = -(-r // lanes) * lanes
    else:
        tail = lanes // 2 if r <= lanes // 2 else lanes
    return Wo / (Wo - r + tail)


def _po_serves(Cog, ntaps, Wo, pointwise, cv, itemsize=4):
    """Whether the forward runs the direct-output pixel-vectorised kernel
    (``fc_conv_po``): with AVX-512 (8 channels x 48 pixels a register block,
    half the instructions of the AVX2 kernels) on 1x1 layers and on layers
    with rows of at least _PO_MIN_COLUMNS outputs; never without it (the
    AVX2 twin measured level with the channel-vectorised kernel)."""
    if _PO_MODE != "auto":
        return _PO_MODE == "on"
    from ..methods import conv_direct as _conv_direct

    if _conv_direct.po_block_channels() < 8:
        return False
    return pointwise or (Wo >= _PO_MIN_COLUMNS and _po_lane_use(Wo, itemsize) >= _PO_MIN_LANE_USE)


def _band_pixels(band, Wo, Wq, multiple=1):
    """Plane position of each pixel of a band, padded to ``multiple`` entries."""
    q = np.arange(band * Wo, dtype=np.intp)
    pix = (q // Wo) * Wq + q % Wo
    return np.concatenate([pix, np.full(-len(pix) % multiple, pix[-1], dtype=np.intp)])


#: Packed weights of at least this many elements are packed by every thread.
_PACK_PARALLEL_ELEMENTS = 1 << 17


def _blocked_forward(p):
    """conv2d by the register-blocked direct kernel (``_conv_direct.forward_blocked``)."""
    from ..methods import conv_direct as _conv_direct

    N, Cout = p.x.shape[0], p.w.shape[0]
    Ho, Wo = p.out_hw
    out = _output(p)
    if out.size == 0:
        return out
    tables, off, pix = _band_plan(p)
    cv = pix.size > 0
    groups, Cog = p.groups, Cout // p.groups
    if cv:
        ob = _conv_direct.CV_BLOCK_CHANNELS[p.dtype.itemsize]
    elif tables[0][_DIMS.index("po")]:
        ob = _conv_direct.po_block_channels()
    else:
        ob = _conv_direct.CONV_BLOCK_CHANNELS
    nob = -(-Cog // ob)
    # Weights packed per block of ob output channels, tap-major inside a
    # block, zero rows past Cog (their results are never stored).
    nt = _threads(p)
    bias = p.bias if p.bias is not None else np.empty(0, p.dtype)
    ws = workspace(nt * _conv_direct.blocked_workspace(tables[0], nob * ob, cv), p.dtype)
    if nt > 1 and _PRIVATE_PACK and groups * nob * off.size * ob * p.dtype.itemsize <= _PRIVATE_PACK_MAX_BYTES:
        # every thread packs its own copy (see forward_blocked_private)
        wps = _named_workspace("packed_weights", nt * groups * nob * off.size * ob, p.dtype)
        _conv_direct.forward_blocked_private(p.x.reshape(N, -1), p.w.reshape(Cout, -1),
                                             wps.reshape(nt, groups, nob, off.size * ob), out.reshape(N, -1),
                                             bias, *tables, off, pix, ws, nt)
        return out
    wp = np.empty((groups, nob, off.size * ob), dtype=p.dtype)
    # (small weights on one thread: a parallel region of its own costs more
    # than the copy)
    _conv_direct.pack_weights(p.w.reshape(Cout, -1), wp, Cog, nt if wp.size >= _PACK_PARALLEL_ELEMENTS else 1)
    _conv_direct.forward_blocked(p.x.reshape(N, -1), wp, out.reshape(N, -1), bias, *tables, off, pix, ws, nt)
    return out


#: Whether the threads of a multithreaded blocked forward pack the weights
#: each into a copy of its own (``forward_blocked_private``; measurements),
#: when the packed weights take at most this many bytes (a core's share of
#: L2; larger ones stream from L3 anyway, and the private copies would double
#: the packing work and memory).
_PRIVATE_PACK = True
_PRIVATE_PACK_MAX_BYTES = 512 * 2**10


def _winograd_serves(p):
    """Whether the Winograd method can run this conv2d: 3x3 kernels, unit
    stride and dilation, one group, zero padding, a non-empty output."""
    return (p.w.shape[2:] == (3, 3) and p.stride == (1, 1) and p.dilation == (1, 1) and p.groups == 1
            and p.padding_mode == "zeros" and p.w.shape[1] > 0 and p.x.shape[0] > 0
            and p.out_hw[0] > 0 and p.out_hw[1] > 0)


#: Target bytes of one work item's transformed input (16 planes of its tiles
#: for every input channel): with the products of the same size it stays in
#: L2 while the 16 GEMMs run.
_WINOGRAD_BAND_BYTES = 256 * 2**10


def _winograd_forward(p, fallback=None):
    """conv2d by Winograd's F(2x2, 3x3) (``_winograd.forward``).

    Its transforms mix the values of a tile, so an inf may come out as NaN
    where the direct sum gives inf. When ``fallback`` is given (a forward
    function: what 'auto' runs) and the weights or the input hold NaN or
    inf, the call runs ``fallback`` instead; the input is checked as the
    transform reads it, at no extra pass.
    """
    from ..methods import winograd as _winograd

    if not _winograd_serves(p):
        raise ValueError("method='winograd' needs 3x3 kernels, stride 1, dilation 1, groups=1 and "
                         "padding_mode='zeros' (with a non-empty output); use method='direct' or 'auto'")
    x, w = p.x, p.w
    if fallback is not None and not dispatch._finite(w):
        return fallback(p)
    N, C, H, W = x.shape
    Cout = w.shape[0]
    Ho, Wo = p.out_hw
    nt, nc, Coutp, TW, band, Tqp = _winograd_plan(p)
    up = np.empty((16, Coutp // nc, C * nc), dtype=p.dtype)
    _winograd.transform_weights(w.reshape(Cout, -1), up, nt)
    pix = np.arange(Tqp, dtype=np.intp)
    off = np.arange(C, dtype=np.intp) * Tqp
    ws = workspace(nt * _winograd.workspace_elements(C, Coutp, TW, band, Tqp), p.dtype)
    out = _output(p)
    bias = p.bias if p.bias is not None else np.empty(0, p.dtype)
    nonfinite = _winograd.forward(x.reshape(N, -1), up, out.reshape(N, -1), bias, C, H, W, Cout, Ho, Wo,
                                  p.pads[0], p.pads[2], band, pix, off, ws, nt)
    if nonfinite and fallback is not None:
        return fallback(p)
    return out


def _winograd_grad_weight(p, go, fallback):
    """grad_weight by Winograd's F(2x2, 3x3) (``_winograd.grad_weight``):
    the gradient of the transformed weights, sum over tiles of the
    transformed grad_output times the transformed input, mapped back by
    G^T dU G. NaN or inf in the input or grad_output: ``fallback(p, go)``."""
    from ..methods import winograd as _winograd

    x = p.x
    N, C, H, W = x.shape
    Cout = p.w.shape[0]
    Ho, Wo = p.out_hw
    nt, nc, Coutp, TW, band, Tqp = _winograd_plan(p)
    Cp = -(-C // _winograd.GRAD_TAP_MULTIPLE) * _winograd.GRAD_TAP_MULTIPLE
    off = np.minimum(np.arange(Cp, dtype=np.intp), C - 1) * Tqp
    ws = workspace(nt * _winograd.workspace_elements(C, Coutp, TW, band, Tqp), p.dtype)
    acc = np.zeros((nt, 16, Cp * Coutp), dtype=p.dtype)
    nonfinite = _winograd.grad_weight(x.reshape(N, -1), go.reshape(N, -1), acc, C, H, W, Cout, Ho, Wo,
                                      p.pads[0], p.pads[2], band, off, ws, nt)
    if nonfinite:
        return fallback(p, go)
    du = acc[0] if nt == 1 else acc.sum(axis=0)
    gw = np.empty(p.w.shape, dtype=p.dtype)
    _winograd.untransform_weight_grad(du, gw.reshape(Cout, -1), Coutp, nt)
    return gw


def _winograd_plan(p):
    """The geometry shared by the Winograd forward and weight gradient.

    Returns ``(threads, nc, Coutp, TW, band, Tqp)``: output channels per
    kernel block and their padded count, tiles per row, tile rows per work
    item (transformed input near _WINOGRAD_BAND_BYTES, enough items for the
    threads, bands of equal height) and tiles per item padded to the
    kernel's block.
    """
    from ..methods import winograd as _winograd

    N, C = p.x.shape[:2]
    Cout = p.w.shape[0]
    TH, TW = -(-p.out_hw[0] // 2), -(-p.out_hw[1] // 2)
    nt = _threads(p)
    nc = _winograd.BLOCK_CHANNELS[p.dtype.itemsize]
    band = max(1, _WINOGRAD_BAND_BYTES // (16 * C * TW * p.dtype.itemsize))
    if nt > 1:
        band = min(band, max(1, -(-TH * N // (_ITEMS_PER_THREAD * nt))))
    band = min(band, TH)
    band = -(-TH // -(-TH // band))
    Tqp = -(-band * TW // _winograd.TILE_MULTIPLE) * _winograd.TILE_MULTIPLE
    return nt, nc, -(-Cout // nc) * nc, TW, band, Tqp


def _choose(p):
    """conv2d 'auto' for the validated arguments ``p``."""
    return dispatch.choose_conv_method(p.x.shape, p.w.shape, p.stride, p.groups, p.dtype.itemsize,
                                        p.dilation, p.padding_mode, p.out_hw)


_FORWARD = {"direct": _direct_forward, "im2col": _im2col_forward, "winograd": _winograd_forward}


def _blocked_grad_weight(p, go):
    """grad_weight on the band planes (``_conv_direct.grad_weight_blocked``)."""
    from ..methods import conv_direct as _conv_direct

    N = p.x.shape[0]
    Cout, Cg, kh, kw = p.w.shape
    tables, off, _ = _band_plan(p)
    groups, Cog = p.groups, Cout // p.groups
    nc = _conv_direct.CV_BLOCK_CHANNELS[p.dtype.itemsize]
    nt = _threads(p)
    ntaps = off.size
    off = np.concatenate([off, np.zeros(-ntaps % _conv_direct.GW_BLOCK_TAPS, dtype=np.intp)])
    acc = np.zeros((nt, groups, off.size, -(-Cog // nc) * nc), dtype=p.dtype)
    ws = workspace(nt * _conv_direct.blocked_workspace(tables[0], acc.shape[3], True, True), p.dtype)
    _conv_direct.grad_weight_blocked(p.x.reshape(N, -1), go.reshape(N, -1), acc, *tables, off, ws, nt)
    gw = acc.sum(axis=0) if nt > 1 else acc[0]
    return np.ascontiguousarray(gw[:, :ntaps, :Cog].transpose(0, 2, 1)).reshape(Cout, Cg, kh, kw)


#: conv2d / conv2d_backward calls with more multiply-adds than this (about
#: a quarter of a second at the kernels' rate) run a few images at a time,
#: so that they answer Ctrl-C between them (``bands``) ...
LONG_LAYER_WORK = 2e10
#: ... starting with bands of about this many multiply-adds (a few tens
#: of milliseconds; the bands after it are sized from the measured time).
BAND_LAYER_WORK = 2e9


def _images_per_band(p, passes=1):
    """Images in the first band of a long layer call (None: not banded)."""
    N = p.x.shape[0]
    Cout, Cg, kh, kw = p.w.shape
    work = passes * float(N) * Cout * p.out_hw[0] * p.out_hw[1] * Cg * kh * kw
    if N < 2 or work < LONG_LAYER_WORK:
        return None
    return max(1, int(BAND_LAYER_WORK * N / work))


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def forward(p):
    """conv2d of a checked problem ``p`` (``validate.conv2d_args``).

    A fresh output comes from :data:`output_pool` when outputs of its size
    have been faulting in (see :class:`OutputPool`).
    """
    watch = 0
    if p.out is None and _POOL_OUTPUTS and resource is not None:
        shape = (p.x.shape[0], p.w.shape[0]) + tuple(p.out_hw)
        nbytes = math.prod(shape) * p.dtype.itemsize
        if output_pool.wants(nbytes):
            p = dataclasses.replace(p, out=output_pool.empty(shape, p.dtype))
        elif output_pool.watches(nbytes):
            watch = _minor_faults()
    out = _forward(p)
    if watch:
        output_pool.note_faults(nbytes, _minor_faults() - watch)
    return out


def _forward(p):
    first = _images_per_band(p)
    if first is None:
        out = _forward_batch(p)
    else:  # a long call: a few images at a time, so that it answers Ctrl-C
        out = _output(p)

        def band(a, b):
            part = _forward_batch(dataclasses.replace(p, x=p.x[a:b], out=out[a:b]))
            if not np.may_share_memory(part, out):  # (a driver that made its own array)
                out[a:b] = part

        bands.in_bands(p.x.shape[0], first, band)
    if p.out is not None and out is not p.out:  # a driver that made its own array
        p.out[...] = out
        out = p.out
    return out[0] if p.unbatched else out


def _forward_batch(p):
    method = _choose(p) if p.method == "auto" else p.method
    if method == "winograd" and p.method == "auto":
        return _winograd_forward(p, fallback=_direct_forward)  # NaN / inf: the direct sums
    if method == "direct" and p.method == "auto" and _w24_serves(p):
        return _w24_forward(p)
    return _FORWARD[method](p)


def backward(p, go):
    """conv2d_backward of a checked problem ``p`` and gradient ``go``."""
    first = _images_per_band(p, passes=2)
    if first is None:
        return _backward_batch(p, go)
    # a long call: a few images at a time, so that it answers Ctrl-C; the
    # input gradients are the bands', the weight and bias gradients their sums
    gx = np.empty(p.x.shape, dtype=p.dtype)
    sums = []

    def band(a, b):
        bx, bw, bb = _backward_batch(dataclasses.replace(p, x=p.x[a:b]), go[a:b])
        gx[a:b] = bx
        if sums:
            sums[0] += bw
            sums[1] += bb
        else:
            sums.extend([bw, bb])

    bands.in_bands(p.x.shape[0], first, band)
    return (gx[0] if p.unbatched else gx), sums[0], sums[1]


def _backward_batch(p, go):
    from ..methods import im2col as _im2col  # loads scipy's BLAS: only when first needed

    x, w = p.x, p.w
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    Ho, Wo = p.out_hw
    P, K = Ho * Wo, Cg * kh * kw
    nt = _threads(p)
    if (N > 1 or (N == 1 and _PW_INPLACE)) and _pointwise_gemm_serves(p):
        return _pointwise_backward(p, go)
    grad_bias = go.sum(axis=(0, 2, 3))
    if N == 0:
        gx, gw = np.zeros((N, C, H, W), dtype=p.dtype), np.zeros(w.shape, dtype=p.dtype)
        return (gx[0] if p.unbatched else gx), gw, grad_bias
    blocked_gw, correlated_gx = _blocked_grad_weight_serves(p), _grad_input_by_correlation(p)
    if not (blocked_gw and correlated_gx):  # im2col / col2im serve the rest
        ridx, cidx, crange = _geometry((H, W), (kh, kw), p.stride, p.dilation, p.pads, p.out_hw, p.padding_mode)
        pw = _is_pointwise(p)
        pinnable = blas_threads_pinnable()
        go2 = go.reshape(N, -1)
    if _choose(p) == "winograd":
        gw = _winograd_grad_weight(p, go, fallback=_blocked_grad_weight)
    elif blocked_gw:
        gw = _blocked_grad_weight(p, go)
    else:
        gw = _im2col_grad_weight(p, go2, ridx, cidx, crange, pinnable)
    if correlated_gx:
        gx = _grad_input_direct(p, go)
        return (gx[0] if p.unbatched else gx), gw, grad_bias

    # grad_input: scatters of one (image, group) must stay on one thread;
    # with fewer (image, group) pairs than threads, each thread scatters its
    # tiles into a private copy of grad_input, summed at the end.
    gx = np.zeros((N, C, H, W), dtype=p.dtype)
    if not pinnable:
        mode, copies = 2, 1
    elif N * p.groups >= nt or nt == 1:
        mode, copies = 0, 1
    else:
        mode, copies = 1, nt
    outer = mode != 2
    pt = _pixel_tile(p, nt, outer)
    ws = workspace(0 if pw else (nt if outer else 1) * K * pt, p.dtype)
    gxs = gx[None] if copies == 1 else np.zeros((copies, N, C, H, W), dtype=p.dtype)
    with blas_threads(1 if outer else nt):
        _im2col.grad_input(w.reshape(Cout, K), go2, gxs.reshape(copies, N, -1), ws, p.groups, Cg, H, W,
                           kh, kw, p.stride[1], Ho, Wo, ridx, cidx, crange, pw, pt, _omp(nt, outer), mode)
    if copies > 1:
        np.sum(gxs, axis=0, out=gx)
    return (gx[0] if p.unbatched else gx), gw, grad_bias


#: 'auto', 'on' or 'off': the batched-GEMM backward of 1x1 layers (measurements).
_PW_GEMM_MODE = "auto"
#: ... and whether it computes grad_input as one GEMM too (else per image).
_PW_GEMM_GX = True
#: Whether it runs on the NCHW arrays in place (GEMMs per image segment,
#: no copies; else on channel-major copies, measurements).
_PW_INPLACE = True
#: ... and (in place) whether grad_input runs on the forward's AVX-512
#: direct-output kernel (a 1x1 convolution of grad_output with the weights
#: transposed) instead of per-segment GEMMs, for images of at least
#: _PW_GX_MIN_IMAGE pixels and batches of at least _PW_GX_MIN_PIXELS.
#: Measured (2 threads, whole backward, medians of 101-301 alternated
#: calls, kernel / GEMMs): 8x256->256 14x14 0.95-1.00 (six runs), 16x
#: 0.93, 32x 0.93, 4x 1.00; 8x64->256 56x56 0.91, 8x256->64 56x56 0.84,
#: 8x128->512 28x28 0.94, 1x256->256 56x56 0.91, 2x256->256 28x28 0.96, 8x1024->256
#: 14x14 0.90, 8x256->1024 14x14 1.01; but 8x512->512 7x7 1.25 and
#: 1x256->256 14x14 1.07 (hence the bounds).
_PW_GX_FORWARD = True
_PW_GX_MIN_IMAGE = 196
_PW_GX_MIN_PIXELS = 784


def _pointwise_gemm_serves(p):
    """Whether a 1x1 layer's backward runs as batched GEMMs (see
    :func:`_pointwise_backward`): one group, BLAS threads pinnable (else the
    per-image paths' thread modes apply), and (for the channel-major copies,
    not the in-place GEMMs) its copies within the im2col cap (the buffer is
    kept between calls)."""
    if not (_is_pointwise(p) and p.groups == 1):
        return False
    if _PW_GEMM_MODE != "auto":
        return _PW_GEMM_MODE == "on"
    if _PW_INPLACE:
        return blas_threads_pinnable()
    N, C, H, W = p.x.shape
    copies = (p.w.shape[0] + C) * N * H * W * p.dtype.itemsize
    return copies <= _CAP and blas_threads_pinnable()


def _named_workspace(name, nelems, dtype):
    """A reused per-Python-thread buffer of its own (beside :func:`workspace`)."""
    dtype = np.dtype(dtype)
    nbytes = max(int(nelems), 1) * dtype.itemsize
    buf = getattr(_local, name, None)
    if buf is None or buf.nbytes < nbytes:
        setattr(_local, name, None)
        buf = np.empty(nbytes, dtype=np.uint8)
        setattr(_local, name, buf)
    return buf[:nbytes].view(dtype)


def _pointwise_backward(p, go):
    """conv2d_backward of a 1x1 layer (stride 1, no padding, one group) as
    GEMMs over the whole batch.

    grad_weight = sum_n go[n] x[n]^T is one GEMM of K = N*H*W once go and
    x are laid out channel-major over the batch, (C, N*H*W): two block
    copies into a reused buffer, instead of N GEMMs of K = H*W that each
    pack both operands again (measured, 1 thread, 8x256->256 14x14: 8
    GEMMs plus their sum 3.1 ms, one GEMM 2.1 ms plus 0.2 ms of copies).
    grad_input = w^T go is one GEMM on the same copy of go, copied back to
    NCHW; grad_bias is summed (in double) by the copy of go as it passes,
    instead of numpy's strided reduction of go over three axes.

    By default (``_PW_INPLACE``) no copies at all: the GEMMs run per image
    (segment of a thread's slice of the batch-pixel axis) on the NCHW arrays,
    grad_weight accumulated with beta = 1, grad_input as go_n^T w^T into gx
    (w transposed once, so that neither operand is read transposed), and
    grad_bias in its own pass (eight double chains); the transpose, the bias
    and the sum of the threads' grad_weight inside the one parallel region
    (numpy's strided transpose of w alone was 70 us, 1.4% of the call). Measured, 1 thread CPU
    time, 8x256->256 14x14, interleaved: 4.87 ms against 5.16 on the copies
    (torch 2.13: 5.10); the copies' grad_bias had been summed in one chain of
    double adds, 0.4 ms of latency (5.73 ms before that fix).
    """
    from ..methods import conv_direct as _conv_direct, im2col as _im2col

    x, w = p.x, p.w
    N, C, H, W = x.shape
    Cout = w.shape[0]
    P = H * W
    nt = _threads(p)
    grad_bias = np.empty(Cout, dtype=p.dtype)
    if _PW_INPLACE:
        gx = np.empty((N, C, H, W), dtype=p.dtype)
        gw = np.empty(w.shape, dtype=p.dtype)
        ws = _named_workspace("pointwise_acc", (2 * nt - 1) * Cout * C, p.dtype)
        wt = ws[:nt * C * Cout].reshape(nt, C, Cout)  # a transposed copy per thread
        acc = ws[nt * C * Cout:].reshape(nt - 1, Cout, C)
        # grad_input of a 1x1 layer is a 1x1 convolution of grad_output with
        # the weights transposed: on the forward's direct-output kernel where
        # it runs (AVX-512), else by the GEMMs
        on_kernel = (_PW_GX_FORWARD and P >= _PW_GX_MIN_IMAGE and N * P >= _PW_GX_MIN_PIXELS
                     and _po_serves(C, Cout, W, True, False, p.dtype.itemsize))
        with blas_threads(1):
            _im2col.pointwise_backward_inplace(x.reshape(N, C, P), go.reshape(N, Cout, P), w.reshape(Cout, C),
                                               gx.reshape(N, C, P), gw.reshape(Cout, C), grad_bias, wt, acc, nt,
                                               not on_kernel)
        if on_kernel:
            wtr = np.ascontiguousarray(w.reshape(Cout, C).T).reshape(C, Cout, 1, 1)
            _blocked_forward(dataclasses.replace(p, x=go, w=wtr, bias=None, out=gx, unbatched=False))
        return (gx[0] if p.unbatched else gx), gw, grad_bias
    acc = _named_workspace("pointwise_acc", nt * Cout * C, p.dtype).reshape(nt, Cout, C)
    buf = _named_workspace("pointwise_buf", (Cout + C) * N * P, p.dtype)
    if _PW_GEMM_GX:
        # one parallel region: copies (grad_bias on the way), then grad_weight
        # split along the batch-pixel axis (per-thread sums), then grad_input
        # along its columns, copied back; OpenMP threads each running a
        # single-threaded GEMM (a multithreaded BLAS call between OpenMP
        # regions fights their spinning threads, see ``_omp``)
        gx = np.empty((N, C, H, W), dtype=p.dtype)
        with blas_threads(1):
            _im2col.pointwise_backward(x.reshape(N, C, P), go.reshape(N, Cout, P), w.reshape(Cout, C),
                                       gx.reshape(N, C, P), grad_bias, acc, buf, nt)
    else:
        g2 = buf[:Cout * N * P].reshape(Cout, N, P)
        x2 = buf[Cout * N * P:].reshape(C, N, P)
        none = np.empty(0, dtype=p.dtype)
        _conv_direct.swap_leading(go.reshape(N, Cout, P), g2, grad_bias, nt)
        _conv_direct.swap_leading(x.reshape(N, C, P), x2, none, nt)
        with blas_threads(1):
            _im2col.gemm_nt_ksplit(g2.reshape(Cout, N * P), x2.reshape(C, N * P), acc, nt)
        gx = _grad_input_direct(p, go)
    gw = (acc.sum(axis=0) if nt > 1 else acc[0].copy()).reshape(w.shape)
    return (gx[0] if p.unbatched else gx), gw, grad_bias


def _blocked_grad_weight_serves(p):
    """Whether grad_weight runs on the band planes (else im2col + GEMM).

    Not for 1x1 convolutions without stride or padding (a plain GEMM with no
    copy), nor when the output channels of a group fill less than two thirds
    of the kernel's channel blocks.
    """
    from ..methods import conv_direct as _conv_direct

    Cog = p.w.shape[0] // p.groups
    nc = _conv_direct.CV_BLOCK_CHANNELS[p.dtype.itemsize]
    return not _is_pointwise(p) and Cog * 3 >= -(-Cog // nc) * nc * 2


def _im2col_grad_weight(p, go2, ridx, cidx, crange, pinnable):
    """grad_weight as GEMMs of grad_output with im2col tiles (per-thread sums)."""
    from ..methods import im2col as _im2col

    x, w = p.x, p.w
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    Ho, Wo = p.out_hw
    P, K = Ho * Wo, Cg * kh * kw
    nt = _threads(p)
    pw = _is_pointwise(p)
    outer = pinnable
    pt = _pixel_tile(p, nt, outer)
    nacc = nt if outer else 1
    ws = workspace(0 if pw else nacc * K * pt, p.dtype)
    acc = np.zeros((nacc, Cout, K), dtype=p.dtype)
    with blas_threads(1 if outer else nt):
        _im2col.grad_weight(x.reshape(N, -1), go2, acc, ws, p.groups, Cg, H, W, kh, kw, p.stride[1],
                            Ho, Wo, ridx, cidx, crange, p.dtype.type(0), pw, pt, _omp(nt, outer), outer)
    return (acc[0] if nacc == 1 else acc.sum(axis=0)).reshape(w.shape)


def _grad_input_by_correlation(p):
    """Whether grad_input can run as a forward correlation (see _grad_input_direct)."""
    (kh, kw), (dh, dw) = p.w.shape[2:], p.dilation
    Cg = p.w.shape[1]
    # Not for 1x1 layers: their grad_input is one GEMM per image on grad_output
    # in place (measured in the whole backward, 8x256->256 14x14: GEMM 2.84 ms,
    # direct 3.05, though the direct forward wins that layer).
    return (p.stride == (1, 1) and p.padding_mode == "zeros" and Cg >= _BLOCKED_MIN_CHANNELS
            and not _is_pointwise(p)
            and max(p.pads[:2]) <= dh * (kh - 1) and max(p.pads[2:]) <= dw * (kw - 1))


def _grad_input_direct(p, go):
    """grad_input of a stride-1, zero-padded conv2d as a forward correlation.

    With unit stride, the transposed correlation is itself a correlation: of
    grad_output, padded by d*(k-1) - pad on each side, with the kernels
    flipped and input / output channels swapped within each group. It runs on
    the blocked direct kernel: no col2im scatter.
    """
    Cout, Cg, kh, kw = p.w.shape
    G = p.groups
    (dh, dw) = p.dilation
    wt = p.w.reshape(G, Cout // G, Cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    wt = np.ascontiguousarray(wt).reshape(G * Cg, Cout // G, kh, kw)
    pt, pb, pl, pr = p.pads
    pads = (dh * (kh - 1) - pt, dh * (kh - 1) - pb, dw * (kw - 1) - pl, dw * (kw - 1) - pr)
    q = dataclasses.replace(p, x=go, w=wt, bias=None, pads=pads, out_hw=tuple(p.x.shape[2:]))
    return _winograd_forward(q, fallback=_blocked_forward) if _choose(q) == "winograd" else _blocked_forward(q)


def unfold(x, geometry, unbatched, num_threads):
    """im2col of a checked input ``x`` (N, C, H, W) (``validate.unfold_args``)."""
    from ..methods import im2col as _im2col  # loads scipy's BLAS: only when first needed

    ks, dil, pad, st, Ho, Wo = geometry
    N, C, H, W = x.shape
    K = C * ks[0] * ks[1]
    out = np.empty((N, K, Ho * Wo), dtype=x.dtype)
    if out.size:
        ridx, cidx, crange = _geometry((H, W), ks, st, dil, (pad[0], pad[0], pad[1], pad[1]), (Ho, Wo), "zeros")
        _im2col.im2col_into(x.reshape(N, -1), out.reshape(N, -1), C, H, W, ks[0], ks[1], st[1], Ho, Wo,
                            ridx, cidx, crange, x.dtype.type(0), num_threads)
    return out[0] if unbatched else out


def fold(c, geometry, unbatched, num_threads):
    """col2im of checked columns ``c`` (N, K, L) (``validate.fold_args``)."""
    from ..methods import im2col as _im2col  # loads scipy's BLAS: only when first needed

    osz, ks, dil, pad, st, Ho, Wo = geometry
    N, K, L = c.shape
    C = K // (ks[0] * ks[1])
    H, W = osz
    out = np.zeros((N, C, H, W), dtype=c.dtype)
    if out.size and c.size:
        ridx, cidx, crange = _geometry((H, W), ks, st, dil, (pad[0], pad[0], pad[1], pad[1]), (Ho, Wo), "zeros")
        _im2col.col2im_into(c.reshape(N, -1), out.reshape(N, -1), C, H, W, ks[0], ks[1], st[1], Ho, Wo,
                            ridx, cidx, crange, num_threads)
    return out[0] if unbatched else out


# ---------------------------------------------------------------- correlate2d engine

def offset_correlate_im2col(x, w, shape, offsets, boundary, fill, num_threads):
    """The offset correlation (one channel, one output channel) by im2col +
    GEMM: a matrix-vector product over tiles of output pixels, the boundary
    an extended-index gather; complex inputs use cgemm / zgemm."""
    from ..methods import im2col as _im2col  # loads scipy's BLAS: only when first needed

    H, W = x.shape
    kh, kw = w.shape
    Ho, Wo = shape
    mode = BOUNDARY_NAMES[boundary]
    ridx, _ = index_table(Ho, kh, 1, 1, offsets[0], H, mode)
    cidx, crange = index_table(Wo, kw, 1, 1, offsets[1], W, mode)
    out = np.empty((1, Ho * Wo), dtype=x.dtype)
    P, K = Ho * Wo, kh * kw
    if P * K < _MIN_PARALLEL_WORK:
        num_threads = 1
    outer = blas_threads_pinnable()
    pt = _tile(P, K, x.dtype.itemsize, 1, num_threads, outer)
    ws = workspace((num_threads if outer else 1) * K * pt, x.dtype)
    with blas_threads(1 if outer else num_threads):
        _im2col.forward(x.reshape(1, -1), w.reshape(1, K), out, np.empty(0, x.dtype), ws, 1, 1, H, W,
                        kh, kw, 1, Ho, Wo, ridx, cidx, crange, x.dtype.type(fill), False, pt,
                        _omp(num_threads, outer), outer)
    return out.reshape(shape)


class _Im2colOffsetEngine:
    """The im2col method as the dispatcher's engine for correlate2d (see
    ``dispatch.engine``): its offset correlation is composed here from the
    method's gather and GEMM, with conv2d's tiles and workspaces."""

    SERVES_COMPLEX = True
    SERVES_INTEGER = False
    correlate = staticmethod(offset_correlate_im2col)


im2col_offset_engine = _Im2colOffsetEngine()


# ---------------------------------------------------------------- F(2,4) along the columns

#: 'auto', or 'on' / 'off' to force the column-Winograd forward of
#: :func:`_w24_forward` where it can run (measurements, tests).
_W24_MODE = "auto"
#: Tiles per panel of its products (kept near the core until transformed
#: out), rounded to whole rows of tiles (the output rows then start on whole
#: lines): 1x3->64 224x224 7x7 stride 2, 1 thread, best of 200 alternated:
#: 112 tiles (2 rows) 0.973x the time of 96, 56 tiles 1.054x.
_W24_PANEL = 112
#: Output channels from which, and input channels up to which, 'auto' runs
#: it (see :func:`_w24_serves`).
_W24_MIN_OUT_CHANNELS = 32
_W24_MAX_IN_CHANNELS = 16


def _w24_serves(p):
    """Whether 'auto' runs the forward by F(2,4) along the columns
    (:func:`_w24_forward`): column stride 2, kernels 7 or 8 wide (4 taps in
    each column phase), dilation 1, one group; by default only with the
    AVX-512 direct-output kernel (8 channels a block), output rows of at
    least ``_PO_MIN_COLUMNS``, at least ``_W24_MIN_OUT_CHANNELS`` output
    channels and at most ``_W24_MAX_IN_CHANNELS`` input channels.

    Measured (1 thread, CPU time, 7x7 stride 2 padding 3, float32, F(2,4) /
    direct): 1x3->64 224x224 0.87-0.93, 4x3->64 112x112 0.84, 1x8->64
    112x112 0.79, 1x16->64 112x112 0.80, 1x3->32 224x224 0.91, 1x3->64
    64x64 0.96 (8x8 kernel, 1x3->64 224x224: 0.76); but 1x3->16 224x224
    1.05, 1x3->8 64x64 1.23 (the transforms outweigh fewer products), and
    2x32->64 56x56 1.01, 1x64->64 56x56 1.00 (wide inputs: bands of one
    row, whose transformed planes are redone for every band)."""
    if _W24_MODE == "off":
        return False
    Cout, Cg, _, kw = p.w.shape
    ok = (p.stride[1] == 2 and p.dilation == (1, 1) and p.groups == 1 and kw in (7, 8) and Cout >= 8
          and p.x.shape[0] > 0 and p.out_hw[0] > 0 and p.out_hw[1] >= 2)
    if _W24_MODE == "on" or not ok:
        return ok
    from ..methods import conv_direct as _conv_direct

    return (_conv_direct.po_block_channels() >= 8 and p.out_hw[1] >= _PO_MIN_COLUMNS
            and Cout >= _W24_MIN_OUT_CHANNELS and Cg <= _W24_MAX_IN_CHANNELS)


def _w24_plan(p):
    return _w24_plan_cached(p.x.shape, p.w.shape, p.out_hw, p.stride, tuple(p.pads), p.padding_mode,
                            p.dtype.itemsize, _threads(p))


@functools.lru_cache(maxsize=32)
def _w24_plan_cached(x_shape, w_shape, out_hw, stride, pads, padding_mode, itemsize, nt):
    """Band plan of :func:`_w24_forward`: ``(tables, off, T)`` with the plan
    arguments of ``forward_blocked`` (plane rows of at least 2T + 3 columns,
    both column phases), the (5, taps) offsets of the taps (channel, kernel
    row, column phase) in the transformed planes, and T tiles per row."""
    from ..methods import conv_direct as _conv_direct

    N, C, H, W = x_shape
    Cout, _, kh, kw = w_shape
    Ho, Wo = out_hw
    sh, sw = stride
    pad_top, _, pad_left, _ = pads
    T = -(-Wo // 2)
    Rq = (kh - 1) // sh
    Wq = max(Wo + (kw - 1) // sw, 2 * T + 3)
    rph, cph = np.unique(np.arange(kh) % sh), np.arange(2)
    nA = len(rph)
    row_bytes = C * nA * 2 * (Wq + 5 * T) * itemsize
    band = max(1, _BAND_TARGET // row_bytes - Rq)
    if nt > 1:
        band = min(band, max(1, -(-Ho * N // (_PO_ITEMS_PER_THREAD * nt))))
    band = min(band, Ho)
    band = -(-Ho // -(-Ho // band))
    rowsrc = index_table((Ho + Rq) * sh, 1, 1, 1, -pad_top, H, padding_mode)[0][0]
    colsrc = index_table(Wq * sw, 1, 1, 1, -pad_left, W, padding_mode)[0][0]
    lo = np.clip(-((cph - pad_left) // sw), 0, Wq)
    hi = np.clip(-((cph - pad_left - W) // sw), 0, Wq)
    vrange = np.ascontiguousarray(np.stack([lo, np.maximum(hi, lo)]), dtype=np.intp)
    S = (band + Rq) * Wq
    vals = dict(groups=1, C=C, H=H, W=W, Cog=Cout, sh=sh, sw=sw, Ho=Ho, Wo=Wo, Wq=Wq, Rq=Rq, band=band, S=S,
                padl=pad_left, direct=0, nA=nA, nB=2, kc=0, po=1, panel=max(1, round(_W24_PANEL / T)) * T)
    dims = np.array([vals[k] for k in _DIMS], dtype=np.intp)
    phases = np.concatenate([rph, cph]).astype(np.intp)
    # tap (c, i, b) -> plane (c, row phase of i, b), row i // sh; 5 transformed planes each
    i = np.arange(kh)
    ra = np.searchsorted(rph, i % sh)
    plane = (np.arange(C)[:, None, None] * nA + ra[None, :, None]) * 2 + cph[None, None, :]
    SV = (band + Rq) * T
    base = (plane * 5 * SV + (i // sh)[None, :, None] * T).ravel()
    off = np.ascontiguousarray(base[None, :] + np.arange(5)[:, None] * SV, dtype=np.intp)
    tables = (dims, rowsrc, colsrc, vrange, phases)
    for arr in (*tables, off):
        arr.flags.writeable = False
    return tables, off, T


def _w24_forward(p):
    """conv2d by Winograd's F(2,4) along the columns of a stride-2 layer
    (``_conv_direct.forward_w24``): each column phase of a 7- or 8-wide
    kernel is a 4-tap stride-1 correlation, and F(2,4) computes two of its
    outputs from 5 products instead of 8 (for 7x7 kernels 210 multiply-adds
    per output pair instead of 294), on the AVX-512 direct-output kernel.
    NaN or inf in the weights or the input: the direct sums
    (:func:`_blocked_forward`), as the transforms may turn an inf into NaN.
    """
    from ..methods import conv_direct as _conv_direct

    if not dispatch._finite(p.w):
        return _blocked_forward(p)
    x = p.x
    N = x.shape[0]
    nt = _threads(p)
    tables, off, T = _w24_plan(p)
    oc = _conv_direct.po_block_channels()
    Cout, C, kh, kw = p.w.shape
    nob = -(-Cout // oc)
    # the transformed weights, packed by every thread into a copy of its own
    # (see _conv_direct.forward_blocked_private)
    wp = _named_workspace("packed_weights", nt * 5 * nob * C * kh * 2 * oc, p.dtype)
    out = _output(p)
    ws = workspace(nt * _conv_direct.w24_workspace(tables[0], T, oc), p.dtype)
    bias = p.bias if p.bias is not None else np.empty(0, p.dtype)
    if _conv_direct.forward_w24(x.reshape(N, -1), p.w.reshape(Cout, -1), wp.reshape(nt * 5 * nob, 1, -1),
                                out.reshape(N, -1), bias, *tables, off, T, kh, kw, ws, nt):
        return _blocked_forward(dataclasses.replace(p, out=out))
    return out
