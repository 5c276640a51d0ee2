"""fastcorr on dask arrays: images larger than memory, locally or on a cluster.

The functions here take a dask array (or anything ``dask.array.asarray``
accepts) and return a lazy dask array equal to what the in-memory fastcorr
function gives. Each output chunk is computed by fastcorr's own compiled
kernels on the input it reads: one input chunk and a halo, made of thin
strips copied off its neighbours (or, at the image's edges, extended by the
boundary rule), so the chunks never see the difference between an inner
seam and the edge of the image. By default the result's chunks are laid out
so that every input chunk can be freed as soon as it has been used (see
``chunks`` in :func:`correlate2d`): the memory in use stays at a few chunks.

This module needs the optional extra: ``pip install fastcorr[dask]``.
Importing :mod:`fastcorr` itself never imports dask.

Threads
-------
With ``num_threads=None`` each chunk runs fastcorr with
``max(1, cpus // concurrent_chunks)`` threads, where ``concurrent_chunks``
is the smaller of the number of output chunks and dask's thread pool
(``dask.config.get('num_workers')``, else the CPUs of this process), so
dask's threads times fastcorr's threads never oversubscribe the cores. On a
``dask.distributed`` worker the rule is ``cpus // worker threads``, capped
by the worker's ``OMP_NUM_THREADS`` (which distributed sets to 1 for worker
processes). Pass ``num_threads`` to override both.
"""
from __future__ import annotations

import functools
import itertools
import math
import os
import sys
from typing import Literal, TypeAlias, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastcorr.dask needs dask; install the optional extra with: pip install fastcorr[dask]"
    ) from exc

import fastcorr
from ._engine.geometry import offsets as _offsets, output_shape, extended_index
from ._engine.config import _available_cpus, resolve_threads
from ._engine.validate import (
    Boundary,
    ConvMethod,
    IntPair,
    MatchMethod,
    Mode,
    NanTreatment,
    NormalizedBoundary,
    PadMode,
    Padding,
    PaddingMode,
    Scalar,
    NdMethod,
    nd_args,
    SignalMethod,
    as_array,
    certainty_dtype,
    kernel_sum_check,
    match_template_args,
    normalized_args,
    PivCorrelationMethod,
    PivSig2NoiseMethod,
    PivSubpixelMethod,
    piv_args,
    signal_args,
)

__all__ = ["correlate2d", "convolve2d", "conv2d", "match_template", "normalized_convolution",
           "ndimage_correlate", "ndimage_convolve", "ndimage_gaussian_filter", "ndimage_uniform_filter",
           "correlate", "convolve", "piv"]
_LAYOUTS = ("seams", "input")
#: The ``chunks`` choices: how the result is chunked in space.
_Layout: TypeAlias = Literal["seams", "input"]


# ----------------------------------------------------------------------------
# Public functions


def correlate2d(in1: da.Array | ArrayLike, in2: da.Array | ArrayLike, mode: Mode = "full",
                boundary: Boundary = "fill", fillvalue: Scalar = 0, *, chunks: _Layout = "seams",
                method: SignalMethod = "auto", num_threads: int | None = None) -> da.Array:
    """Cross-correlate a dask array with a small kernel, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1 : dask.array.Array or array_like, ndim >= 2
        The image: its last two axes are correlated, any leading axes are a
        batch (a stack of frames), each frame correlated on its own. May be
        chunked along every axis.
    in2 : array_like, 2-D
        The kernel, held in memory (a dask array is computed first). It is
        complex-conjugated, as in scipy.
    mode : {'full', 'valid', 'same'}
        As :func:`fastcorr.correlate2d`, per frame.
    boundary : {'fill', 'wrap', 'symm'}
        As :func:`fastcorr.correlate2d`: the edges of each frame (not of each
        chunk) are extended by ``fillvalue``, periodically, or by mirroring.
    fillvalue : scalar
        Value outside the image when ``boundary='fill'``.
    chunks : {'seams', 'input'}
        How the result is chunked along the last two axes (the batch axes
        keep ``in1``'s chunks).

        - ``'seams'`` (default, least memory): one output chunk per input
          chunk, computed from that chunk alone, and between them thin
          *seams* (kernel size - 1 wide) computed from strips copied off both
          sides. Each input chunk is then freed as soon as it is used, so
          the memory in use stays at a few chunks however large the image.
        - ``'input'``: the input's chunks ('same' keeps them exactly;
          'full' / 'valid' widen / narrow the first and last). Each output
          chunk needs its neighbours' strips, so dask keeps input chunks
          alive until their neighbours are done: about two rows of chunks.
          Use it when the result must line up with ``in1`` (to be stored
          in the same zarr chunks, say).

        Input chunks shorter than the kernel are merged with their
        neighbours in both layouts.
    method : str
        The fastcorr method each chunk uses ('auto', 'direct', ...).
    num_threads : int, optional
        fastcorr threads per chunk; by default chosen so that dask's workers
        times fastcorr's threads do not exceed the cores (see the module notes).

    Returns
    -------
    dask.array.Array
        Lazy result, of shape ``batch + output_shape`` and the dtype scipy
        would give, equal to the in-memory result whatever the chunks.

    Notes
    -----
    In 'valid' mode scipy swaps the inputs when the kernel is larger than
    the image in every dimension. Here that means the in-memory kernel is
    larger than each frame, so each frame fits in memory: it is brought
    into one chunk and correlated in memory, lazily, frame by frame.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> x = np.arange(64.0).reshape(8, 8)
    >>> k = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> y = fastcorr.dask.correlate2d(da.from_array(x, chunks=4), k, mode='same', boundary='symm')
    >>> y.chunks  # a 1-sample seam across the boundary at 4
    ((3, 1, 4), (3, 1, 4))
    >>> np.array_equal(y.compute(), fastcorr.correlate2d(x, k, mode='same', boundary='symm'))
    True
    >>> fastcorr.dask.correlate2d(da.from_array(x, chunks=4), k, mode='same', chunks='input').chunks
    ((4, 4), (4, 4))
    """
    return _signal("correlate2d", False, in1, in2, mode, boundary, fillvalue, chunks, method, num_threads)


def convolve2d(in1: da.Array | ArrayLike, in2: da.Array | ArrayLike, mode: Mode = "full",
               boundary: Boundary = "fill", fillvalue: Scalar = 0, *, chunks: _Layout = "seams",
               method: SignalMethod = "auto", num_threads: int | None = None) -> da.Array:
    """Convolve a dask array with a small kernel, as ``scipy.signal.convolve2d``.

    Parameters, chunking and result are those of :func:`correlate2d`
    (the kernel is flipped instead of conjugated).

    Parameters
    ----------
    in1 : dask.array.Array or array_like
        The image (or a stack of images: leading axes are a batch).
    in2 : array_like, 2-D
        The kernel (in memory); it is flipped in both axes.
    mode, boundary, fillvalue, chunks, method, num_threads
        As for :func:`correlate2d`.

    Returns
    -------
    dask.array.Array
        The lazy convolution; ``.compute()`` equals
        ``fastcorr.convolve2d`` of the in-memory arrays.

    Examples
    --------
    A stack of four frames, chunked along the batch axis and in space:

    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> x = np.random.default_rng(0).random((4, 20, 30)).astype(np.float32)
    >>> k = np.ones((3, 5), np.float32)
    >>> y = fastcorr.dask.convolve2d(da.from_array(x, chunks=(2, 10, 10)), k, boundary='wrap')
    >>> y.shape, y.dtype
    ((4, 22, 34), dtype('float32'))
    >>> ref = np.stack([fastcorr.convolve2d(f, k, boundary='wrap') for f in x])
    >>> np.allclose(y.compute(), ref, rtol=1e-6)
    True
    """
    return _signal("convolve2d", True, in1, in2, mode, boundary, fillvalue, chunks, method, num_threads)


# ----------------------------------------------------------------------------
# Helpers


def _as_dask(value, name):
    if isinstance(value, da.Array):
        arr = value
    else:
        arr = da.asarray(as_array(value, name))
    if arr.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., H, W), got shape {arr.shape}")
    return arr


def _as_kernel(value, name, ndim):
    if isinstance(value, da.Array):
        value = value.compute()
    return as_array(value, name, ndim=ndim)


def _proxy(shape, dtype):
    """A zero-memory array with this shape and dtype, for validation only."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def _block_threads(num_threads, n_blocks):
    """fastcorr threads per chunk (decided when the graph is built)."""
    if num_threads is not None:
        return num_threads, True
    cpus = _available_cpus()
    pool = dask.config.get("num_workers", None) or cpus
    concurrent = max(1, min(n_blocks, pool))
    return max(1, cpus // concurrent), False


def _runtime_threads(planned, explicit):
    """Adjust the planned count when running on a dask.distributed worker."""
    if explicit or "distributed" not in sys.modules:
        return planned
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return planned
    n = max(1, _available_cpus() // max(1, int(worker.state.nthreads)))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return n


def _merge_small(sizes, need):
    """Merge neighbouring sizes until each is at least ``need`` (the last absorbs a short tail)."""
    out = []
    acc = 0
    for c in sizes:
        acc += c
        if acc >= need:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _out_chunks(in_chunks, n_out, shifts, stride, need, edges):
    """Output chunk sizes along one axis, from where the input chunks start.

    Every input chunk boundary ``B`` (after merging input chunks shorter
    than ``need``, and with the axis ends 0 and ``n`` if ``edges``) puts
    output boundaries at ``ceil((B + shift) / stride)`` for each ``shift``.
    Empty output chunks are dropped.
    """
    starts = np.cumsum((0,) + _merge_small(in_chunks, max(1, need)))
    starts = starts if edges else starts[1:-1]
    bounds = {int(-(-(int(b) + sh) // stride)) for b in starts for sh in shifts}
    bounds = sorted(b for b in bounds if 0 < b < n_out)
    return tuple(np.diff([0, *bounds, n_out]).tolist())


def _pieces(idx, starts):
    """Split source positions (``-1``: fill) into per-chunk runs of step +1 or -1.

    Returns ``(chunk, lo, hi, reverse, length)`` tuples: the run is
    ``chunk[lo:hi]`` (reversed if ``reverse``); ``chunk`` is -1 for a run of
    fill samples.
    """
    idx = np.asarray(idx).tolist()
    chunk = (np.searchsorted(starts, idx, side="right") - 1).tolist()
    out = []
    i, n = 0, len(idx)
    while i < n:
        j = i + 1
        if idx[i] < 0:
            while j < n and idx[j] < 0:
                j += 1
            out.append((-1, 0, 0, False, j - i))
            i = j
            continue
        c = chunk[i]
        step = idx[j] - idx[i] if j < n and idx[j] >= 0 else 1
        if j < n and step in (1, -1) and chunk[j] == c:
            while j < n and idx[j] >= 0 and idx[j] - idx[j - 1] == step and chunk[j] == c:
                j += 1
        else:
            step = 1
        a, b = idx[i] - starts[c], idx[j - 1] - starts[c]
        out.append((c, a, b + 1, False, j - i) if step == 1 else (c, b, a + 1, True, j - i))
        i = j
    return out


def _axis_plan(in_chunks, out_chunks, window, index_map):
    """Per output chunk along one axis: the input runs it reads, in order.

    ``window(start, stop)`` gives the extended positions read by the output
    samples ``start:stop``; ``index_map`` maps them to input positions or -1.
    """
    starts = np.cumsum((0,) + tuple(in_chunks))
    plan = []
    lo = 0
    for m in out_chunks:
        plan.append(_pieces(index_map(window(lo, lo + m)), starts))
        lo += m
    return plan


def _cut(block, specs):
    """The halo strips other output chunks need from one input chunk, as copies.

    Copies, not views: a view would keep the whole chunk alive.
    """
    return tuple(np.array(block[..., rows, cols], copy=True) for rows, cols in specs)


def _run(batch_shape, ext_shape, out_shape, dtype, out_dtype, fill, layout, func, *parts):
    """Assemble one output chunk's input (with its halo), then compute it."""
    if 0 in batch_shape:
        return np.empty(out_shape, dtype=out_dtype)
    shape = tuple(batch_shape) + tuple(ext_shape)
    ext = np.empty(shape, dtype=dtype) if fill is None else np.full(shape, fill, dtype=dtype)
    for r0, r1, c0, c1, i, strip, rows, cols in layout:
        part = parts[i] if strip < 0 else parts[i][strip]
        ext[..., r0:r1, c0:c1] = part[..., rows, cols]
    return func(ext)


def _slice(lo, hi, reverse):
    if not reverse:
        return slice(lo, hi)
    return slice(hi - 1, lo - 1 if lo > 0 else None, -1)


def _halo_map(x, plans, func, out_chunks, dtype, meta, fill, name):
    """Map ``func`` over output chunks, each fed the input it reads (halo included).

    ``x``'s last two axes are spatial; ``out_chunks`` gives every axis of the
    result, and its leading axes follow ``x``'s chunk for chunk.
    ``plans[a][b]`` lists the input runs output chunk ``b`` reads along
    spatial axis ``a`` (see :func:`_axis_plan`); where a run falls outside
    the input, the output chunk sees ``fill``.

    Memory: a piece covering most of an input chunk (in both axes) is read
    from that chunk directly, the *bulk* of it. Any other piece (a halo
    strip, a mirrored edge) is copied out of its chunk by one *cut* task per
    input chunk, which cuts every strip that chunk lends. Each output chunk
    reading a chunk's bulk also depends on that chunk's cut task, so when it
    has run, the chunk is free: an input chunk lives from when it is read
    until its bulk has been used, and the strips (thin copies) until their
    seams are done.
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(x, plans, func, out_chunks, dtype, fill)
    out_name = f"{name}-{token}"
    cut_name = f"{name}-halo-{token}"
    nb = x.ndim - 2
    dsk = {}
    cuts = {}  # source key -> {(rows, cols): index}
    blocks = []
    for bidx in itertools.product(*(range(len(c)) for c in out_chunks[:nb])):
        batch_shape = tuple(x.chunks[a][i] for a, i in enumerate(bidx))
        for bi, rpieces in enumerate(plans[0]):
            for bj, cpieces in enumerate(plans[1]):
                layout, args = [], []
                has_fill = False
                r0 = 0
                for rc, rlo, rhi, rrev, rn in rpieces:
                    c0 = 0
                    for cc, clo, chi, crev, cn in cpieces:
                        if rc < 0 or cc < 0:
                            has_fill = True
                        else:
                            src = (x.name, *bidx, rc, cc)
                            rows, cols = _slice(rlo, rhi, rrev), _slice(clo, chi, crev)
                            if 2 * rn > x.chunks[nb][rc] and 2 * cn > x.chunks[nb + 1][cc]:
                                args.append(src)
                                layout.append((r0, r0 + rn, c0, c0 + cn, len(args) - 1, -1, rows, cols))
                            else:
                                specs = cuts.setdefault(src, {})
                                strip = specs.setdefault((rlo, rhi, rrev, clo, chi, crev), len(specs))
                                args.append((cut_name, *src[1:]))
                                layout.append((r0, r0 + rn, c0, c0 + cn, len(args) - 1, strip,
                                               slice(None), slice(None)))
                        c0 += cn
                    r0 += rn
                ext_shape = (r0, c0)
                out_shape = tuple(c[i] for c, i in zip(out_chunks, bidx + (bi, bj)))
                blocks.append(((out_name, *bidx, bi, bj), batch_shape, ext_shape, out_shape,
                               fill if has_fill else None, layout, args))
    for src, specs in cuts.items():
        order = sorted(specs, key=specs.get)
        dsk[(cut_name, *src[1:])] = (
            functools.partial(_cut, specs=tuple((_slice(*sp[:3]), _slice(*sp[3:])) for sp in order)), src)
    for key, batch_shape, ext_shape, out_shape, fill_, layout, args in blocks:
        # Reading a chunk's bulk also waits for its cut task (an argument
        # _run ignores), so the chunk is released right after.
        extra = [(cut_name, *a[1:]) for a in args if a[0] == x.name and a in cuts]
        extra = [k for k in dict.fromkeys(extra) if k not in args]
        run = functools.partial(_run, batch_shape, ext_shape, out_shape, dtype, meta.dtype, fill_, tuple(layout), func)
        dsk[key] = (run, *args, *extra)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[x])
    return da.Array(graph, out_name, chunks=tuple(out_chunks), meta=meta)


def _frames(block, func):
    """Apply ``func`` to every 2-D frame of ``block`` (leading axes: batch)."""
    if block.ndim == 2:
        return func(block)
    out = None
    for idx in np.ndindex(*block.shape[:-2]):
        res = func(block[idx])
        if out is None:
            out = np.empty(block.shape[:-2] + res.shape, dtype=res.dtype)
        out[idx] = res
    return out


def _signal_block(block, *, kernel, convolve, method, threads, explicit, mode="valid", boundary="fill", fill=0):
    """One output chunk: fastcorr on each frame of an input chunk with its halo."""
    func = fastcorr.convolve2d if convolve else fastcorr.correlate2d
    n = _runtime_threads(threads, explicit)
    return _frames(block, lambda frame: func(frame, kernel, mode, boundary, fill, method=method, num_threads=n))


def _check_layout(chunks):
    if not isinstance(chunks, str) or chunks not in _LAYOUTS:
        raise ValueError(f"chunks must be 'seams' or 'input', got {chunks!r}")
    return chunks


def _signal(name, convolve, in1, in2, mode, boundary, fillvalue, layout, method, num_threads):
    x = _as_dask(in1, "in1")
    _check_layout(layout)
    kernel = _as_kernel(in2, "in2", None)
    # All argument checks (and scipy's valid-mode swap rule) on one frame's
    # shape and dtype, without touching the data.
    p = signal_args(name, _proxy(x.shape[-2:], x.dtype), kernel, mode, boundary, fillvalue, method, num_threads)
    dtype = p.dtype
    batch = x.shape[:-2]
    frame_out = output_shape(mode, p.in1.shape, p.in2.shape)
    meta = np.empty((0,) * x.ndim, dtype=dtype)

    if x.size == 0 or 0 in frame_out:
        # Nothing to chunk: the result is empty, or each frame is empty and
        # the result is the (small, kernel-sized) fill response.
        if x.size == 0 and 0 not in batch and 0 not in frame_out:
            frame = getattr(fastcorr, name)(np.zeros(x.shape[-2:], x.dtype), kernel, mode, boundary, fillvalue,
                                            method=method, num_threads=num_threads)
            return da.broadcast_to(da.from_array(frame), batch + frame.shape)
        return da.zeros(batch + frame_out, dtype=dtype)
    if p.swapped or kernel.size == 0:
        # The kernel is larger than a frame, so a frame fits in memory: one
        # chunk per frame, in-memory fastcorr (which applies scipy's swap).
        whole = x.rechunk({x.ndim - 2: -1, x.ndim - 1: -1})
        threads, explicit = _block_threads(num_threads, whole.npartitions)
        func = functools.partial(
            _signal_block, kernel=kernel, convolve=convolve, method=method, threads=threads,
            explicit=explicit, mode=mode, boundary=boundary, fill=fillvalue,
        )
        chunks = whole.chunks[:-2] + tuple((s,) for s in frame_out)
        return whole.map_blocks(func, chunks=chunks, dtype=dtype, meta=meta, token=f"fastcorr-{name}")

    offsets = _offsets(mode, kernel.shape, convolve)
    plans = []
    out_chunks = list(x.chunks[:-2])
    for i, axis in enumerate((x.ndim - 2, x.ndim - 1)):
        k, n = kernel.shape[i], x.shape[axis]
        left = -offsets[i]  # output sample p reads the extended input p - left ... p - left + k - 1
        # Which input chunk an output chunk follows: 'same' keeps the input's
        # chunks (a centred halo); 'full' borrows the halo from the left,
        # 'valid' from both sides.
        if layout == "seams":
            # Output chunks reading one input chunk only, and seams (k - 1
            # samples wide) reading across each boundary; with 'wrap' the
            # image's edges are seams too.
            shifts, edges = (left - (k - 1), left), p.boundary == 1
        else:
            # Output chunks following the input's: 'same' keeps them (a
            # centred halo), 'full' borrows the halo from the left, 'valid'
            # from both sides.
            h_left = {"same": left, "full": k - 1, "valid": (k - 1) // 2}[mode]
            shifts, edges = (left - h_left,), False
        oc = _out_chunks(x.chunks[axis], frame_out[i], shifts, 1, k - 1, edges)
        out_chunks.append(oc)
        plans.append(_axis_plan(
            x.chunks[axis], oc,
            lambda a, b, left=left, k=k: np.arange(a - left, b - left + k - 1),
            functools.partial(extended_index, n=n, boundary=p.boundary),
        ))
    threads, explicit = _block_threads(num_threads, int(np.prod([len(c) for c in out_chunks])))
    func = functools.partial(
        _signal_block, kernel=kernel, convolve=convolve, method=method, threads=threads, explicit=explicit,
    )
    return _halo_map(x, plans, func, out_chunks, dtype, meta, p.fill, f"fastcorr-{name}")


# ----------------------------------------------------------------------------
# conv2d (NCHW, torch semantics)

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(value, name, minimum):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    out = []
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
        out.append(int(v))
    return tuple(out)


def _torch_extended(positions, n, mode):
    """Input positions for padded ones, -1 where torch pads with zeros."""
    positions = np.asarray(positions)
    if mode == "zeros":
        return np.where((positions >= 0) & (positions < n), positions, -1)
    return _torch_index(positions, n, mode)


def _torch_index(positions, n, mode):
    """Map out-of-range positions onto [0, n) as torch's padding modes do."""
    positions = np.asarray(positions)
    if mode == "circular":
        return positions % n
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    # 'reflect': mirror about the edge sample, which is not repeated.
    if n == 1:
        return np.zeros_like(positions)
    period = positions % (2 * n - 2)
    return np.where(period >= n, 2 * n - 2 - period, period)


def _conv_block(block, *, weight, bias, stride, dilation, groups, method, threads, explicit):
    n = _runtime_threads(threads, explicit)
    return fastcorr.conv2d(block, weight, bias, stride, 0, dilation, groups, method=method, num_threads=n)


def conv2d(input: da.Array | ArrayLike, weight: da.Array | ArrayLike, bias: da.Array | ArrayLike | None = None,
           stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, *,
           padding_mode: PaddingMode = "zeros", chunks: _Layout = "seams", method: ConvMethod = "auto",
           num_threads: int | None = None) -> da.Array:
    """``torch.nn.functional.conv2d`` on an NCHW dask array.

    Parameters
    ----------
    input : dask.array.Array or array_like, shape (N, C_in, H, W) or (C_in, H, W)
        May be chunked along N and along H and W (the channel axis is
        brought into one chunk). Each spatial output chunk reads its input
        chunk and halo strips of its neighbours.
    weight : array_like, shape (C_out, C_in / groups, kh, kw)
        In memory (a dask array is computed first).
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode
        As ``torch.nn.functional.conv2d`` / ``torch.nn.Conv2d``: ``padding``
        is an int, a pair, ``'valid'`` or ``'same'``; ``padding_mode`` is one
        of 'zeros', 'reflect', 'replicate', 'circular'.
    chunks : {'seams', 'input'}
        The spatial chunks of the result, as in :func:`correlate2d`:
        ``'seams'`` (default) keeps the memory in use at a few chunks;
        ``'input'`` gives one output chunk per input chunk, each reading
        the halo from its right and lower neighbours.
    method, num_threads
        Passed to :func:`fastcorr.conv2d` for each chunk (threads as in
        :func:`correlate2d`).

    Returns
    -------
    dask.array.Array
        Shape (N, C_out, H_out, W_out) (or (C_out, H_out, W_out)), one
        chunk along C_out, N chunks kept.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> x = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    >>> w = np.random.default_rng(1).random((8, 3, 3, 3), dtype=np.float32)
    >>> y = fastcorr.dask.conv2d(da.from_array(x, chunks=(2, 3, 16, 16)), w, padding=1)
    >>> y.shape, y.chunks[:2]
    ((4, 8, 32, 32), ((2, 2), (8,)))
    >>> np.allclose(y.compute(), fastcorr.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-5)
    True
    """
    if not hasattr(fastcorr, "conv2d"):  # pragma: no cover - until conv2d lands
        raise NotImplementedError("fastcorr.dask.conv2d needs fastcorr.conv2d, which this build does not have")
    x = _as_dask(input, "input")
    layout = _check_layout(chunks)
    if x.ndim not in (3, 4):
        raise ValueError(f"input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    w = _as_kernel(weight, "weight", 4)
    b = None if bias is None else _as_kernel(bias, "bias", 1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c_in = x.shape[1]
    if c_in % groups or w.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide both input channels ({c_in}) and output channels ({w.shape[0]})")
    if w.shape[1] * groups != c_in:
        raise ValueError(
            f"weight has shape {w.shape}: expected {c_in // groups} input channels per group "
            f"(input has {c_in} channels, groups={groups})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    if num_threads is not None:
        resolve_threads(num_threads)  # TypeError / ValueError naming num_threads
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(map(repr, _PADDING_MODES))}, got {padding_mode!r}")
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:])]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0), (0, 0)]
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions (as torch)")
            pads = [((s - 1) // 2, s - 1 - (s - 1) // 2) for s in spans]
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        pads = [(p, p) for p in _pair(padding, "padding", 0)]

    # The result dtype is whatever fastcorr.conv2d gives: ask it on one window.
    probe = np.zeros((1, c_in) + tuple(spans), dtype=x.dtype)
    dtype = fastcorr.conv2d(probe, w, b, 1, 0, dilation, int(groups), method=method, num_threads=1).dtype
    meta = np.empty((0,) * 4, dtype=dtype)
    x = x.rechunk({1: -1})
    out_chunks = [x.chunks[0], (w.shape[0],)]
    plans = []
    for i, axis in enumerate((2, 3)):
        left, right = pads[i]
        n, s_, span = x.shape[axis], stride[i], spans[i]
        if padding_mode in ("reflect", "circular") and max(left, right) > (n - 1 if padding_mode == "reflect" else n):
            raise ValueError(
                f"padding {pads[i]} is too large for padding_mode={padding_mode!r} on an input of size {n}"
            )
        if n + left + right < span:
            raise ValueError(
                f"input size {n} (padded {n + left + right}) is smaller than the dilated kernel size {span}: "
                "the output would be empty"
            )
        n_out = (n + left + right - span) // s_ + 1
        # Output sample p reads input samples p * stride - left ... + span - 1.
        if layout == "seams":
            shifts, edges = (left - span + 1, left), padding_mode == "circular"
        else:
            shifts, edges = (left,), False
        oc = _out_chunks(x.chunks[axis], n_out, shifts, s_, span - 1, edges)
        out_chunks.append(oc)
        plans.append(_axis_plan(
            x.chunks[axis], oc,
            lambda a, b, s_=s_, left=left, span=span: np.arange(a * s_ - left, (b - 1) * s_ - left + span),
            functools.partial(_torch_extended, n=n, mode=padding_mode),
        ))
    threads, explicit = _block_threads(num_threads, int(np.prod([len(c) for c in out_chunks])))
    func = functools.partial(
        _conv_block, weight=w, bias=b, stride=stride, dilation=dilation, groups=int(groups),
        method=method, threads=threads, explicit=explicit,
    )
    y = _halo_map(x, plans, func, out_chunks, x.dtype, meta, x.dtype.type(0), "fastcorr-conv2d")
    return y[0] if unbatched else y


# ----------------------------------------------------------------------------
# match_template (template matching)

#: numpy.pad modes a chunked image can extend by an index map (the others
#: need statistics of the whole image).
_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_index(positions, n, mode):
    """Image positions for positions of the image extended as ``numpy.pad``
    does (-1 outside the image for 'constant')."""
    positions = np.asarray(positions)
    if mode == "constant":
        return np.where((positions >= 0) & (positions < n), positions, -1)
    if mode == "edge":
        return np.clip(positions, 0, n - 1)
    if mode == "wrap":
        return positions % n
    if mode == "symmetric":
        return extended_index(positions, n, 2)
    return _torch_index(positions, n, "reflect")


def _match_block(block, *, template, method, mask, overlap_ratio, colour, stacked, threads, explicit):
    """One output chunk: in-memory match_template on a chunk with its halo."""
    n = _runtime_threads(threads, explicit)
    image = np.moveaxis(block, 0, -1) if colour else block[0]
    scores = fastcorr.match_template(image, template, method, mask=mask, overlap_ratio=overlap_ratio,
                                     num_threads=n)
    return scores if stacked else scores[None]


def match_template(image: da.Array | ArrayLike, template: da.Array | ArrayLike,
                   method: MatchMethod = "ccoeff_normed", *, mask: da.Array | ArrayLike | None = None,
                   pad_input: bool = False, mode: PadMode = "constant", constant_values: float = 0,
                   overlap_ratio: float = 0.3, chunks: _Layout = "seams",
                   num_threads: int | None = None) -> da.Array:
    """Template matching on a chunked image, as :func:`fastcorr.match_template`.

    Parameters
    ----------
    image : dask.array.Array or array_like, (H, W) or (H, W, C)
        The image, chunked in H and W (the channel axis is brought into one
        chunk). NaN pixels are missing data, as in memory.
    template : array_like
        The template (h, w[, C]) or a stack (T, h, w[, C]), in memory (a
        dask array is computed first).
    method, mask, overlap_ratio
        As :func:`fastcorr.match_template`.
    pad_input, mode, constant_values
        As :func:`fastcorr.match_template`, for the modes that extend an
        image by its edge samples: 'constant', 'edge', 'reflect',
        'symmetric', 'wrap' (the others need the whole image's statistics).
    chunks : {'seams', 'input'}
        The result's chunks, as in :func:`correlate2d`.
    num_threads : int, optional
        fastcorr threads per chunk (by default as in :func:`correlate2d`).

    Returns
    -------
    dask.array.Array
        The scores, lazily: equal to the in-memory result (each chunk's
        windows see exactly the pixels they see in memory), of its shape
        and dtype.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> x = np.random.default_rng(0).random((300, 200), dtype=np.float32)
    >>> t = x[120:135, 40:60].copy()
    >>> s = fastcorr.dask.match_template(da.from_array(x, chunks=(100, 100)), t)
    >>> s.shape, s.dtype
    ((286, 181), dtype('float32'))
    >>> fastcorr.peaks(s.compute())[0]
    array([[120.,  40.]])
    >>> np.allclose(s.compute(), fastcorr.match_template(x, t), atol=1e-5)
    True
    """
    x = _as_dask(image, "image")
    layout = _check_layout(chunks)
    tpl = _as_kernel(template, "template", None)
    m = mask.compute() if isinstance(mask, da.Array) else mask   # checked (bool allowed) below
    if x.ndim not in (2, 3):
        raise ValueError(f"image must be a 2-D or 3-D array, got shape {x.shape}")
    # Every argument check on the image's shape and dtype, without its data.
    p = match_template_args(_proxy(x.shape, x.dtype), tpl, method, m, pad_input, mode, constant_values,
                            overlap_ratio, num_threads)
    if p.pad_input and mode not in _PAD_MODES:
        raise ValueError(
            f"mode {mode!r} needs the whole image; fastcorr.dask.match_template extends a chunked image with "
            f"one of {', '.join(map(repr, _PAD_MODES))}"
        )
    colour = x.ndim == 3
    T, h, w = p.templates.shape[:3]
    xs = x.transpose(2, 0, 1) if colour else x[None]
    xs = xs.rechunk({0: -1})
    if x.dtype != p.dtype:  # integers: extended and matched in float64, as in memory
        xs = xs.astype(p.dtype)
    meta = np.empty((0, 0, 0), dtype=p.dtype)
    out_chunks = [(T,)]
    plans = []
    for i, k in enumerate((h, w)):
        n = x.shape[i]
        left = k // 2 if p.pad_input else 0     # output q reads positions q - left ... q - left + k - 1
        frame_out = n if p.pad_input else n - k + 1
        if layout == "seams":
            shifts, edges = (left - (k - 1), left), p.pad_input and mode == "wrap"
        else:
            shifts, edges = (left - (left if p.pad_input else (k - 1) // 2),), False
        oc = _out_chunks(xs.chunks[i + 1], frame_out, shifts, 1, k - 1, edges)
        out_chunks.append(oc)
        plans.append(_axis_plan(
            xs.chunks[i + 1], oc,
            lambda a, b, left=left, k=k: np.arange(a - left, b - left + k - 1),
            functools.partial(_pad_index, n=n, mode=mode if p.pad_input else "constant"),
        ))
    threads, explicit = _block_threads(num_threads, int(np.prod([len(c) for c in out_chunks])))
    func = functools.partial(
        _match_block, template=tpl, method=method, mask=m, overlap_ratio=overlap_ratio, colour=colour,
        stacked=p.stacked, threads=threads, explicit=explicit,
    )
    fill = xs.dtype.type(constant_values)
    y = _halo_map(xs, plans, func, out_chunks, xs.dtype, meta, fill, "fastcorr-match_template")
    return y if p.stacked else y[0]



# ----------------------------------------------------------------------------
# normalized_convolution (astropy.convolution.convolve semantics)


def _edge_index(idx, n):
    """astropy's 'extend': positions beyond an edge read the edge sample."""
    return np.clip(idx, 0, n - 1)


def _check_certainty_block(block):
    """A certainty chunk, checked as the in-memory function checks it."""
    if block.size and not (np.min(block) >= 0 and np.max(block) <= 1):
        bad = block[~((block >= 0) & (block <= 1))]
        raise ValueError(f"certainty must hold values in [0, 1] (0: missing, 1: certain), got {bad.flat[0]!r}")
    return block


def _normalized_block(ext, *, kernel, stacked, fill_value, kwargs, threads, explicit):
    """One output chunk: the in-memory normalized convolution of an input
    chunk with its halo, where the kernel fits (boundary None), cut out.

    ``stacked``: ``ext`` holds the data and the certainty (NaN outside the
    image with a fill boundary: the fill value there, of certainty 1, or 0
    when the fill value is NaN); the result and its certainty are returned
    stacked the same way.
    """
    n = _runtime_threads(threads, explicit)
    kh, kw = kernel.shape
    if stacked:
        data, cert = ext[0], ext[1]
        outside = np.isnan(cert)
        if outside.any():
            data = np.where(outside, fill_value, data)
            cert = np.where(outside, 0.0 if np.isnan(fill_value) else 1.0, cert)
    else:
        data, cert = ext, None
    y, c = fastcorr.normalized_convolution(data, kernel, cert, boundary=None, fill_value=fill_value,
                                           return_certainty=True, num_threads=n, **kwargs)
    inner = (slice(kh // 2, kh // 2 + ext.shape[-2] - kh + 1), slice(kw // 2, kw // 2 + ext.shape[-1] - kw + 1))
    if stacked:
        return np.stack([y[inner], c[inner].astype(y.dtype, copy=False)])
    return y[inner]


@overload
def normalized_convolution(
    data: da.Array | ArrayLike, kernel: da.Array | ArrayLike, certainty: da.Array | ArrayLike | None = None, *,
    boundary: NormalizedBoundary | None = "fill", fill_value: float = 0.0, nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True, preserve_nan: bool = False, normalization_zero_tol: float = 1e-8,
    return_certainty: Literal[False] = False, chunks: _Layout = "seams", method: SignalMethod = "auto",
    num_threads: int | None = None,
) -> da.Array: ...


@overload
def normalized_convolution(
    data: da.Array | ArrayLike, kernel: da.Array | ArrayLike, certainty: da.Array | ArrayLike | None = None, *,
    boundary: NormalizedBoundary | None = "fill", fill_value: float = 0.0, nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True, preserve_nan: bool = False, normalization_zero_tol: float = 1e-8,
    return_certainty: Literal[True], chunks: _Layout = "seams", method: SignalMethod = "auto",
    num_threads: int | None = None,
) -> tuple[da.Array, da.Array]: ...


def normalized_convolution(
    data: da.Array | ArrayLike, kernel: da.Array | ArrayLike, certainty: da.Array | ArrayLike | None = None, *,
    boundary: NormalizedBoundary | None = "fill", fill_value: float = 0.0, nan_treatment: NanTreatment = "interpolate",
    normalize_kernel: bool = True, preserve_nan: bool = False, normalization_zero_tol: float = 1e-8,
    return_certainty: bool = False, chunks: _Layout = "seams", method: SignalMethod = "auto",
    num_threads: int | None = None,
) -> da.Array | tuple[da.Array, da.Array]:
    """Normalized convolution of a chunked 2-D image, as :func:`fastcorr.normalized_convolution`.

    Parameters
    ----------
    data : dask.array.Array or array_like, 2-D
        The image, with NaN for missing pixels; may be chunked along both axes.
    kernel : array_like, 2-D
        In memory (a dask array is computed first).
    certainty : dask.array.Array or array_like, optional
        Shaped like ``data``, in [0, 1] (checked chunk by chunk when computed).
    boundary, fill_value, nan_treatment, normalize_kernel, preserve_nan, normalization_zero_tol
        As :func:`fastcorr.normalized_convolution`: the edges of the image
        (not of each chunk) follow the boundary rule.
    return_certainty : bool
        Also return the output certainty, as a second dask array.
    chunks : {'seams', 'input'}
        The result's chunks, as in :func:`correlate2d`.
    method, num_threads
        Passed to :func:`fastcorr.normalized_convolution` for each chunk
        (threads as in :func:`correlate2d`).

    Returns
    -------
    result : dask.array.Array
        Lazy, equal to the in-memory result whatever the chunks.
    certainty : dask.array.Array
        Only with ``return_certainty=True``.

    Notes
    -----
    Each output chunk is computed from its input chunk and a halo of half a
    kernel, so chunks only decide whether a kernel that cannot be
    normalised (a zero-sum kernel, ``normalize_kernel=False``) meets a
    missing pixel: that raises ValueError when the chunk is computed rather
    than when the function is called.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> x = np.random.default_rng(0).random((40, 50))
    >>> x[x < 0.2] = np.nan
    >>> k = np.ones((5, 5))
    >>> y = fastcorr.dask.normalized_convolution(da.from_array(x, chunks=16), k, boundary='extend')
    >>> np.allclose(y.compute(), fastcorr.normalized_convolution(x, k, boundary='extend'), rtol=1e-12)
    True
    """
    x = _as_dask(data, "data")
    layout = _check_layout(chunks)
    k = _as_kernel(kernel, "kernel", None)
    if x.ndim != 2:
        raise ValueError(f"data must be a 2-D array, got shape {x.shape}")
    c = None
    if certainty is not None:
        c = certainty if isinstance(certainty, da.Array) else da.asarray(np.asarray(certainty))
        if c.shape != x.shape:
            raise ValueError(f"certainty must have the shape of data {x.shape}, got {c.shape}")
    # Every argument check on a zero-memory stand-in, without touching the
    # data; the certainty's values are checked chunk by chunk when computed.
    if c is not None:
        certainty_dtype(c.dtype)
    p = normalized_args(_proxy(x.shape, x.dtype), k, None, boundary, fill_value, nan_treatment, normalize_kernel,
                        preserve_nan, normalization_zero_tol, return_certainty, method, num_threads,
                        in_memory=False)
    if p.normalize_kernel:
        kernel_sum_check(float(np.sum(p.kernel, dtype=np.float64)), p.zero_tol, False)
    k = p.kernel
    dtype = p.dtype
    kwargs = dict(nan_treatment=nan_treatment, normalize_kernel=p.normalize_kernel, preserve_nan=p.preserve_nan,
                  normalization_zero_tol=p.zero_tol, method=method)

    if x.size == 0:
        y = da.zeros(x.shape, dtype=p.out_dtype)
        return (y, da.zeros(x.shape, dtype=dtype)) if p.return_certainty else y
    x = x.astype(dtype)
    stacked = c is not None or p.return_certainty
    fill = p.fill_value
    if stacked:
        c = da.ones_like(x) if c is None else c.astype(dtype).map_blocks(_check_certainty_block, dtype=dtype)
        c = c.rechunk(x.chunks)
        x = da.stack([x, c]).rechunk({0: 2})
        fill = np.nan  # marks the outside in the certainty (which is never NaN inside)

    code = {"fill": 0, None: 0, "wrap": 1}.get(boundary)
    plans = []
    out_chunks = list(x.chunks[:-2])
    for i, axis in enumerate((x.ndim - 2, x.ndim - 1)):
        kk, n = k.shape[i], x.shape[axis]
        left = kk // 2  # output p reads input p - left ... p - left + kk - 1 (scipy's 'same' centring)
        if layout == "seams":
            shifts, edges = (left - (kk - 1), left), boundary == "wrap"
        else:
            shifts, edges = (0,), False
        oc = _out_chunks(x.chunks[axis], n, shifts, 1, kk - 1, edges)
        out_chunks.append(oc)
        if boundary == "extend":
            index_map = functools.partial(_edge_index, n=n)
        else:
            index_map = functools.partial(extended_index, n=n, boundary=code)
        plans.append(_axis_plan(
            x.chunks[axis], oc, lambda a, b, left=left, kk=kk: np.arange(a - left, b - left + kk - 1), index_map,
        ))
    threads, explicit = _block_threads(num_threads, int(np.prod([len(ch) for ch in out_chunks])))
    func = functools.partial(_normalized_block, kernel=k, stacked=stacked, fill_value=p.fill_value, kwargs=kwargs,
                             threads=threads, explicit=explicit)
    meta = np.empty((0,) * x.ndim, dtype=dtype)
    y = _halo_map(x, plans, func, out_chunks, dtype, meta, dtype.type(fill), "fastcorr-normalized_convolution")
    cert = None
    if stacked:
        y, cert = y[0], y[1]
    if boundary is None:
        # Only where the kernel fits inside the image; zeros around (and NaN
        # at missing pixels there with preserve_nan), as in memory.
        kh, kw = k.shape
        rows, cols = da.arange(y.shape[0], chunks=y.chunks[0]), da.arange(y.shape[1], chunks=y.chunks[1])
        inside = (((rows >= kh // 2) & (rows < y.shape[0] - (kh - 1 - kh // 2)))[:, None]
                  & ((cols >= kw // 2) & (cols < y.shape[1] - (kw - 1 - kw // 2)))[None, :])
        y = da.where(inside, y, 0)
        if p.preserve_nan:
            src = x[0] if stacked else x
            lost = da.isnan(src) | (x[1] == 0) if stacked else da.isnan(src)
            y = da.where(lost.rechunk(y.chunks), np.nan, y)
        if cert is not None:
            cert = da.where(inside, cert, 0)
    y = y.astype(p.out_dtype)
    return (y, cert) if p.return_certainty else y


# ----------------------------------------------------------------------------
# ndimage filters (fastcorr.ndimage on chunks)
#
# Each output chunk is its input chunk with a halo of the filter's reach
# (``map_overlap``, depth = the kernel's radius on each side, origin
# included), filtered by fastcorr.ndimage with the caller's own mode: at the
# array's edges the chunk's edge is the array's, so the mode extends it as
# in memory; at inner seams the halo holds the neighbours' samples.


def _ndimage_block(block, *, name, args, kwargs, threads, explicit):
    import fastcorr.ndimage as _fndi

    n = _runtime_threads(threads, explicit)
    return getattr(_fndi, name)(block, *args, **kwargs, num_threads=n)


def _ndimage_twin(name, input, args, kwargs, reach, num_threads):
    """``fastcorr.ndimage.<name>(input, *args, **kwargs)`` chunk by chunk,
    with ``reach[a]`` samples of halo along axis ``a``."""
    import fastcorr.ndimage as _fndi

    x = input if isinstance(input, da.Array) else da.asarray(as_array(input, "input"))
    output = kwargs.get("output")
    if output is not None and not isinstance(output, (type, np.dtype, str)):
        raise TypeError("output must be None or a dtype here (a dask result is a new array)")
    # every argument check, on a tiny array of the input's dtype
    probe = getattr(_fndi, name)(np.zeros((1,) * x.ndim, dtype=x.dtype), *args, **kwargs, num_threads=1)
    meta = np.empty((0,) * x.ndim, dtype=probe.dtype)
    if x.size == 0:
        return da.zeros(x.shape, dtype=probe.dtype, chunks=x.chunks)
    # per axis: its mode (scipy's rule: one for all, or one per filtered axis)
    mode = kwargs.get("mode", "reflect")
    axes = _axes_of(kwargs.get("axes"), x.ndim)
    modes = _per_axis(mode, x.ndim, axes)
    depth, boundary = {}, {}
    for a, d in enumerate(reach):
        d = int(d)
        if d + 1 >= x.shape[a]:
            x = x.rechunk({a: -1})  # the filter reaches across the whole axis: one chunk
            d = 0
        elif d + 1 > min(x.chunks[a]):
            # an edge chunk extends itself by the mode: it must hold d + 1 samples
            x = x.rechunk({a: max(d + 1, min(x.shape[a], max(x.chunks[a])))})
        depth[a] = d
        # 'wrap' reads across the array's ends: a periodic halo; the other
        # modes extend the edge chunk from its own samples
        boundary[a] = "periodic" if d and modes[a] in ("wrap", "grid-wrap") else "none"
    threads, explicit = _block_threads(num_threads, x.npartitions)
    func = functools.partial(_ndimage_block, name=name, args=tuple(args), kwargs=dict(kwargs), threads=threads,
                             explicit=explicit)
    return x.map_overlap(func, depth=depth, boundary=boundary, trim=True, dtype=probe.dtype, meta=meta)


def _reach(sizes, origins):
    """Samples of halo per axis for filters of ``sizes`` taps with ``origins``."""
    out = []
    for k, o in zip(sizes, origins):
        lo = k // 2 + o
        out.append(max(lo, k - 1 - lo, 0))
    return out


def _per_axis(value, ndim, axes):
    items = list(value) if (not isinstance(value, str) and np.iterable(value)) else [value] * len(axes)
    full = [0] * ndim
    for v, a in zip(items, axes):
        full[a] = v
    return full


def _axes_of(axes, ndim):
    from ._engine.validate import ndimage_axes

    return ndimage_axes(axes, ndim)


def _ndim_of(input):
    return input.ndim if isinstance(input, da.Array) else np.ndim(input)


def ndimage_correlate(input: da.Array | ArrayLike, weights: ArrayLike, output: object = None,
                      mode: object = "reflect", cval: float = 0.0, origin: int | tuple[int, ...] = 0, *,
                      axes: int | tuple[int, ...] | None = None, method: str = "auto",
                      num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.ndimage.correlate` on a dask array, chunk by chunk.

    Parameters
    ----------
    input : dask.array.Array or array_like
        The input, chunked as you like (any dimensions).
    weights, mode, cval, origin, axes, method
        As :func:`fastcorr.ndimage.correlate`.
    output : dtype, optional
        The result's dtype (default: the input's).
    num_threads : int, optional
        fastcorr threads per chunk (default: see the module's Threads section).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.ndimage.correlate`` (and scipy.ndimage's)
        on the whole array.

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage, fastcorr.dask
    >>> x = np.random.default_rng(0).random((40, 30, 20))
    >>> w = np.ones((3, 5, 3))
    >>> y = fastcorr.dask.ndimage_correlate(da.from_array(x, chunks=10), w, mode='mirror')
    >>> bool(np.allclose(y.compute(), scipy.ndimage.correlate(x, w, mode='mirror')))
    True
    """
    w = np.asarray(weights)
    ndim = _ndim_of(input)
    ax = _axes_of(axes, ndim)
    sizes = [1] * ndim
    for k, a in zip(w.shape, ax):
        sizes[a] = k
    reach = _reach(sizes, _per_axis(origin, ndim, ax))
    return _ndimage_twin("correlate", input, (weights,),
                         dict(output=output, mode=mode, cval=cval, origin=origin, axes=axes, method=method),
                         reach, num_threads)


def ndimage_convolve(input: da.Array | ArrayLike, weights: ArrayLike, output: object = None,
                     mode: object = "reflect", cval: float = 0.0, origin: int | tuple[int, ...] = 0, *,
                     axes: int | tuple[int, ...] | None = None, method: str = "auto",
                     num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.ndimage.convolve` on a dask array, chunk by chunk.

    Parameters
    ----------
    input, weights, output, mode, cval, origin, axes, method, num_threads
        As :func:`ndimage_correlate`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.ndimage.convolve`` on the whole array.

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage, fastcorr.dask
    >>> x = np.random.default_rng(1).random((50, 40))
    >>> w = np.arange(12.0).reshape(3, 4)
    >>> y = fastcorr.dask.ndimage_convolve(da.from_array(x, chunks=16), w, mode='wrap', origin=(1, -1))
    >>> bool(np.allclose(y.compute(), scipy.ndimage.convolve(x, w, mode='wrap', origin=(1, -1))))
    True
    """
    w = np.asarray(weights)
    ndim = _ndim_of(input)
    ax = _axes_of(axes, ndim)
    sizes = [1] * ndim
    for k, a in zip(w.shape, ax):
        sizes[a] = k
    origins = _per_axis(origin, ndim, ax)
    # convolve mirrors the origin (one more for even sizes)
    reach = _reach(sizes, [-o - (0 if k & 1 else 1) for o, k in zip(origins, sizes)])
    return _ndimage_twin("convolve", input, (weights,),
                         dict(output=output, mode=mode, cval=cval, origin=origin, axes=axes, method=method),
                         reach, num_threads)


def ndimage_gaussian_filter(input: da.Array | ArrayLike, sigma: float | tuple[float, ...], order: int | tuple[int, ...] = 0,
                            output: object = None, mode: object = "reflect", cval: float = 0.0,
                            truncate: float = 4.0, *, radius: int | tuple[int, ...] | None = None,
                            axes: int | tuple[int, ...] | None = None,
                            num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.ndimage.gaussian_filter` on a dask array, chunk by chunk.

    Parameters
    ----------
    input : dask.array.Array or array_like
        The input.
    sigma, order, mode, cval, truncate, radius, axes
        As :func:`fastcorr.ndimage.gaussian_filter`.
    output : dtype, optional
        The result's dtype (default: the input's).
    num_threads : int, optional
        fastcorr threads per chunk.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.ndimage.gaussian_filter`` on the whole array.

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage, fastcorr.dask
    >>> v = np.random.default_rng(2).random((30, 40, 50), dtype=np.float32)
    >>> y = fastcorr.dask.ndimage_gaussian_filter(da.from_array(v, chunks=16), 1.5, mode='nearest')
    >>> bool(np.allclose(y.compute(), scipy.ndimage.gaussian_filter(v, 1.5, mode='nearest'), atol=1e-6))
    True
    """
    ndim = _ndim_of(input)
    ax = _axes_of(axes, ndim)
    sig = _per_axis(sigma, ndim, ax)
    rad = _per_axis(radius, ndim, ax) if radius is not None else [None] * ndim
    reach = [0] * ndim
    for a in ax:
        if float(sig[a]) > 1e-15:
            reach[a] = rad[a] if rad[a] is not None else int(truncate * float(sig[a]) + 0.5)
    return _ndimage_twin("gaussian_filter", input, (sigma,),
                         dict(order=order, output=output, mode=mode, cval=cval, truncate=truncate, radius=radius,
                              axes=axes), reach, num_threads)


def ndimage_uniform_filter(input: da.Array | ArrayLike, size: int | tuple[int, ...] = 3, output: object = None,
                           mode: object = "reflect", cval: float = 0.0, origin: int | tuple[int, ...] = 0, *,
                           axes: int | tuple[int, ...] | None = None,
                           num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.ndimage.uniform_filter` on a dask array, chunk by chunk.

    Parameters
    ----------
    input : dask.array.Array or array_like
        The input.
    size, mode, cval, origin, axes
        As :func:`fastcorr.ndimage.uniform_filter`.
    output : dtype, optional
        The result's dtype (default: the input's).
    num_threads : int, optional
        fastcorr threads per chunk.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.ndimage.uniform_filter`` on the whole array.

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage, fastcorr.dask
    >>> x = np.random.default_rng(3).integers(0, 255, (64, 48)).astype(np.uint8)
    >>> y = fastcorr.dask.ndimage_uniform_filter(da.from_array(x, chunks=20), 5)
    >>> bool(np.array_equal(y.compute(), scipy.ndimage.uniform_filter(x, 5)))
    True
    """
    ndim = _ndim_of(input)
    ax = _axes_of(axes, ndim)
    sizes = [1] * ndim
    for s, a in zip(_per_axis(size, ndim, ax), range(ndim)):
        sizes[a] = int(s) if a in ax else 1
    reach = _reach(sizes, _per_axis(origin, ndim, ax))
    return _ndimage_twin("uniform_filter", input, (size,),
                         dict(output=output, mode=mode, cval=cval, origin=origin, axes=axes), reach, num_threads)


# ----------------------------------------------------------------------------
# N-D correlate / convolve (scipy.signal.correlate semantics; fastcorr.correlate)

def correlate(in1: da.Array | ArrayLike, in2: ArrayLike, mode: Mode = "full", method: NdMethod = "auto", *,
              num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.correlate` of an N-D dask array with an in-memory kernel.

    Each output chunk is ``fastcorr.correlate(..., mode='valid')`` of one
    input chunk extended by the ``K - 1`` samples after it along every axis
    (copied off its neighbours; zeros beyond the array's ends, as the
    modes read them), so a 3-D volume larger than memory is filtered chunk
    by chunk with the result of the in-memory call. Every axis is
    correlated (no ``axes``, no ``lags``).

    Parameters
    ----------
    in1 : dask array or array_like
        The signal, image or volume (any rank).
    in2 : array_like
        The kernel, of the same rank, held in memory (a dask array is computed).
    mode : {'full', 'valid', 'same'}
        As :func:`fastcorr.correlate`; for 'valid', ``in1`` must be at least
        as large as ``in2`` along every axis.
    method : {'auto', 'direct', 'fft'}
        As :func:`fastcorr.correlate`, per chunk.
    num_threads : int, optional
        fastcorr threads per chunk (default: the module's rule, see above).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.correlate(in1, in2, mode)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr, fastcorr.dask
    >>> v = da.random.default_rng(0).random((40, 40, 40), chunks=20)
    >>> k = np.ones((3, 3, 3)) / 27
    >>> out = fastcorr.dask.correlate(v, k, mode='same')
    >>> bool(np.allclose(out.compute(), fastcorr.correlate(v.compute(), k, mode='same')))
    True
    """
    return _nd_signal("correlate", in1, in2, mode, method, num_threads)


def convolve(in1: da.Array | ArrayLike, in2: ArrayLike, mode: Mode = "full", method: NdMethod = "auto", *,
             num_threads: int | None = None) -> da.Array:
    """:func:`fastcorr.convolve` of an N-D dask array with an in-memory kernel.

    The rules of :func:`correlate` (this module's), for convolution.

    Parameters
    ----------
    in1 : dask array or array_like
        The signal, image or volume (any rank).
    in2 : array_like
        The kernel, of the same rank, held in memory.
    mode : {'full', 'valid', 'same'}
        As :func:`fastcorr.convolve`.
    method : {'auto', 'direct', 'fft'}
        As :func:`fastcorr.convolve`, per chunk.
    num_threads : int, optional
        fastcorr threads per chunk.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastcorr.convolve(in1, in2, mode)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastcorr.dask
    >>> x = da.arange(10.0, chunks=4)
    >>> fastcorr.dask.convolve(x, [1.0, 1.0], mode='valid').compute()
    array([ 1.,  3.,  5.,  7.,  9., 11., 13., 15., 17.])
    """
    return _nd_signal("convolve", in1, in2, mode, method, num_threads)


def _nd_block(block, *, kernel, convolve, method, threads, explicit):
    func = fastcorr.convolve if convolve else fastcorr.correlate
    return func(block, kernel, "valid", method, num_threads=_runtime_threads(threads, explicit))


def _nd_signal(name, in1, in2, mode, method, num_threads):
    x = in1 if isinstance(in1, da.Array) else da.asarray(as_array(in1, "in1"))
    w = _as_kernel(in2, "in2", None)
    # the in-memory validation, on zero-memory stand-ins
    p = nd_args(name, _proxy(x.shape, x.dtype), w, mode, method, None, None, num_threads)
    if p.swapped:
        raise ValueError(f"fastcorr.dask.{name} in 'valid' mode needs in1 at least as large as in2 "
                         f"along every axis: in1 {x.shape}, in2 {w.shape}")
    if x.ndim == 0 or x.size == 0 or w.size == 0:
        return da.from_array(getattr(fastcorr, name)(x.compute(), w, mode, method))
    K = w.shape
    pads = []
    for k in K:
        if mode == "full":
            pads.append((k - 1, k - 1))
        elif mode == "same":
            pads.append((k // 2, k - 1 - k // 2))
        else:
            pads.append((0, 0))
    if any(a or b for a, b in pads):
        x = da.pad(x, pads, mode="constant")
    # every chunk at least K along its axis (the halo and the last chunk's output need it)
    x = x.rechunk(tuple(tuple(_merge_small(c, max(k, 1))) for c, k in zip(x.chunks, K)))
    out_chunks = tuple(c[:-1] + (c[-1] - (k - 1),) for c, k in zip(x.chunks, K))
    threads, explicit = _block_threads(num_threads, math.prod(len(c) for c in out_chunks))
    depth = {d: (0, k - 1) for d, k in enumerate(K)}
    dtype = p.dtype
    return x.map_overlap(
        functools.partial(_nd_block, kernel=w, convolve=name == "convolve", method=method,
                          threads=threads, explicit=explicit),
        depth=depth, boundary="none", trim=False, dtype=dtype, chunks=out_chunks,
        meta=np.empty((0,) * x.ndim, dtype=dtype),
    )

# ----------------------------------------------------------------------------
# piv (OpenPIV's extended_search_area_piv) over a stack of frame pairs


def _piv_block(a, b, *, kwargs, threads, explicit):
    """One task: the in-memory piv of one frame pair, (u, v, sig2noise) stacked."""
    n = _runtime_threads(threads, explicit)
    _, _, u, v, s2n = fastcorr.piv(a[0], b[0], **kwargs, num_threads=n)
    return np.stack([u, v, s2n])[None]


def piv(frames_a: da.Array | ArrayLike, frames_b: da.Array | ArrayLike, window_size: IntPair = 32,
        overlap: IntPair = 16, search_area_size: IntPair | None = None, *, dt: float = 1.0,
        correlation_method: PivCorrelationMethod = "circular", normalized_correlation: bool = False,
        subpixel_method: PivSubpixelMethod = "gaussian", sig2noise_method: PivSig2NoiseMethod = "peak2peak",
        width: int = 2, num_threads: int | None = None,
        ) -> tuple[NDArray[np.float64], NDArray[np.float64], da.Array, da.Array, da.Array]:
    """:func:`fastcorr.piv` over a stack of frame pairs, one task per pair.

    Parameters
    ----------
    frames_a, frames_b : dask.array.Array or array_like, (T, H, W)
        The first and second frames of T pairs (a 2-D pair is one pair).
        Each pair is brought into one chunk (a task reads one pair).
    window_size, overlap, search_area_size
        As :func:`fastcorr.piv`.
    dt, correlation_method, normalized_correlation, subpixel_method, sig2noise_method, width
        As :func:`fastcorr.piv` (keyword-only).
    num_threads : int, optional
        fastcorr threads per task (by default as in :func:`correlate2d`).

    Returns
    -------
    x, y : numpy.ndarray
        The windows' centres (the same for every pair), as :func:`fastcorr.piv`.
    u, v, sig2noise : dask.array.Array
        (T, rows, cols) float64, lazily: pair ``t`` equals the in-memory
        ``fastcorr.piv(frames_a[t], frames_b[t], ...)``. They share their
        tasks: compute them together (``dask.compute(u, v, sig2noise)``).

    Examples
    --------
    >>> import numpy as np, dask, dask.array as da, fastcorr, fastcorr.dask
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((3, 96, 96))
    >>> b = np.roll(a, (1, -2), axis=(1, 2))   # frame B: frame A moved 2 px left, 1 down
    >>> x, y, u, v, s2n = fastcorr.dask.piv(a, b, 32, 16)
    >>> u.shape, u.chunks[0]
    ((3, 5, 5), (1, 1, 1))
    >>> u, v = dask.compute(u, v)
    >>> round(float(np.median(u)), 2), round(float(np.median(v)), 2)
    (-2.0, 1.0)
    """
    xa = _as_dask(frames_a, "frames_a")
    xb = _as_dask(frames_b, "frames_b")
    if xa.ndim == 2:
        xa = xa[None]
    if xb.ndim == 2:
        xb = xb[None]
    if xa.ndim != 3 or xb.ndim != 3:
        raise ValueError(f"frames_a and frames_b must be (T, H, W) stacks of frames, got shapes {xa.shape}, {xb.shape}")
    if xa.shape != xb.shape:
        raise ValueError(f"frames_b must have frames_a's shape {xa.shape}, got {xb.shape}")
    # Every argument check on one pair's shape and dtype, without the data.
    p = piv_args(_proxy(xa.shape[1:], xa.dtype), _proxy(xb.shape[1:], xb.dtype), window_size, overlap,
                 search_area_size, dt, correlation_method, normalized_correlation, subpixel_method,
                 sig2noise_method, width, num_threads)
    kwargs = dict(window_size=window_size, overlap=overlap, search_area_size=search_area_size, dt=dt,
                  correlation_method=correlation_method, normalized_correlation=normalized_correlation,
                  subpixel_method=subpixel_method, sig2noise_method=sig2noise_method, width=width)
    T = xa.shape[0]
    xa = xa.rechunk((1, -1, -1))
    xb = xb.rechunk((1, -1, -1))
    threads, explicit = _block_threads(num_threads, T)
    func = functools.partial(_piv_block, kwargs=kwargs, threads=threads, explicit=explicit)
    nr, nc = p.field
    res = da.map_blocks(func, xa, xb, dtype=np.float64, chunks=((1,) * T, (3,), (nr,), (nc,)),
                        new_axis=1, name="fastcorr-piv", meta=np.empty((0, 0, 0, 0)))
    from ._engine.piv import piv_coordinates

    x, y = piv_coordinates(p.frame_a.shape, p.search, p.overlap, p.field)
    return x, y, res[:, 0], res[:, 1], res[:, 2]
