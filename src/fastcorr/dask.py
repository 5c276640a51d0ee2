"""fastcorr on dask arrays: images larger than memory, locally or on a cluster.

The functions here take a dask array (or anything ``dask.array.asarray``
accepts) and return a lazy dask array equal to what the in-memory fastcorr
function gives. Each output chunk is computed by fastcorr's own compiled
kernels on one input chunk plus a halo borrowed from its neighbours
(``dask.array.overlap``); the image's outer edges are extended by the
boundary rule first, so the chunks never see the difference between an
inner seam and the edge of the image.

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
import functools
import os
import sys

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastcorr.dask needs dask; install the optional extra with: pip install fastcorr[dask]"
    ) from exc

import fastcorr
from ._api import _offsets, output_shape, extended_index
from ._config import _available_cpus, resolve_threads
from ._validate import as_array, signal_args

__all__ = ["correlate2d", "convolve2d", "conv2d"]


# ----------------------------------------------------------------------------
# Public functions


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", num_threads=None):
    """Cross-correlate a dask array with a small kernel, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1 : dask.array.Array or array_like, ndim >= 2
        The image: its last two axes are correlated, any leading axes are a
        batch (a stack of frames), each frame correlated on its own. May be
        chunked along every axis; chunks smaller than the kernel's halo are
        merged with their neighbours.
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
    method : str
        The fastcorr method each chunk uses ('auto', 'direct', ...).
    num_threads : int, optional
        fastcorr threads per chunk; by default chosen so that dask's workers
        times fastcorr's threads do not exceed the cores (see the module notes).

    Returns
    -------
    dask.array.Array
        Lazy result, of shape ``batch + output_shape`` and the dtype scipy
        would give. For 'same' the chunks are those of ``in1`` (after any
        merge of too-small chunks).

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
    >>> y = fastcorr.dask.correlate2d(da.from_array(x, chunks=3), k, mode='same', boundary='symm')
    >>> y.chunks
    ((3, 3, 2), (3, 3, 2))
    >>> np.array_equal(y.compute(), fastcorr.correlate2d(x, k, mode='same', boundary='symm'))
    True
    """
    return _signal("correlate2d", False, in1, in2, mode, boundary, fillvalue, method, num_threads)


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", num_threads=None):
    """Convolve a dask array with a small kernel, as ``scipy.signal.convolve2d``.

    Parameters, chunking and result are those of :func:`correlate2d`
    (the kernel is flipped instead of conjugated).

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
    return _signal("convolve2d", True, in1, in2, mode, boundary, fillvalue, method, num_threads)


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


def _fit_chunks(chunks, left, right):
    """Merge chunks so each holds a halo and the end chunks keep an output.

    Every chunk must supply ``left`` samples to its right neighbour and
    ``right`` samples to its left one; the first chunk loses ``left`` and the
    last loses ``right`` samples to the output, so they must be longer.
    """
    need = max(left, right, 1)
    out = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= (left + 1 if not out else need):
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    while len(out) > 1 and out[-1] < right + 1:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def _runs(idx):
    """Split an index sequence into runs of step +1 or -1, as slices."""
    runs = []
    i = 0
    n = len(idx)
    while i < n:
        j = i + 1
        step = 1
        if j < n and idx[j] - idx[i] in (1, -1):
            step = int(idx[j] - idx[i])
            while j < n and idx[j] - idx[j - 1] == step:
                j += 1
        start, stop = int(idx[i]), int(idx[j - 1])
        if step == 1:
            runs.append(slice(start, stop + 1))
        else:
            runs.append(slice(start, stop - 1 if stop > 0 else None, -1))
        i = j
    return runs


def _outside(x, axis, positions, bcode, fill):
    """The samples of ``x`` at out-of-range ``positions`` along ``axis``."""
    if bcode == 0:
        shape = list(x.shape)
        shape[axis] = len(positions)
        chunks = list(x.chunks)
        chunks[axis] = (len(positions),)
        return da.full(tuple(shape), fill, dtype=x.dtype, chunks=tuple(chunks))
    idx = extended_index(positions, x.shape[axis], bcode)
    pieces = []
    for sl in _runs(idx):
        key = [slice(None)] * x.ndim
        key[axis] = sl
        pieces.append(x[tuple(key)])
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis)


def _extend(x, axis, left, right, bcode, fill):
    """Extend ``x`` by ``left``/``right`` samples along ``axis`` by the boundary rule."""
    n = x.shape[axis]
    pieces = []
    if left:
        pieces.append(_outside(x, axis, np.arange(-left, 0), bcode, fill))
    pieces.append(x)
    if right:
        pieces.append(_outside(x, axis, np.arange(n, n + right), bcode, fill))
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis)


def _native_overlap(x, kshape, mode, bcode, fill):
    """The common case with dask's own halo exchange, or None.

    'same' mode with an odd kernel needs a symmetric halo, which
    ``dask.array.overlap`` serves directly with its boundaries: constant,
    'periodic' (wrap) and 'reflect' (which repeats the edge sample, as
    scipy's symm). It needs the halo no longer than the axis.
    """
    if mode != "same" or any(k % 2 == 0 for k in kshape):
        return None
    axes = (x.ndim - 2, x.ndim - 1)
    depth = {a: k // 2 for a, k in zip(axes, kshape) if k > 1}
    if any(d > x.shape[a] for a, d in depth.items()):
        return None
    if not depth:
        return x
    kind = {0: fill, 1: "periodic", 2: "reflect"}[bcode]
    return da.overlap.overlap(x, depth=depth, boundary={a: kind for a in depth}, allow_rechunk=True)


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


def _signal(name, convolve, in1, in2, mode, boundary, fillvalue, method, num_threads):
    x = _as_dask(in1, "in1")
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

    if x.dtype != dtype:
        x = x.astype(dtype)
    native = _native_overlap(x, kernel.shape, mode, p.boundary, p.fill)
    if native is not None:
        threads, explicit = _block_threads(num_threads, native.npartitions)
        func = functools.partial(
            _signal_block, kernel=kernel, convolve=convolve, method=method, threads=threads, explicit=explicit,
        )
        chunks = tuple(c if i < x.ndim - 2 else tuple(n - 2 * (k // 2) for n in c)
                       for i, (c, k) in enumerate(zip(native.chunks, (1,) * (x.ndim - 2) + kernel.shape)))
        return native.map_blocks(func, chunks=chunks, dtype=dtype, meta=meta, token=f"fastcorr-{name}")
    offsets = _offsets(mode, kernel.shape, convolve)
    depth = {}
    out_chunks = list(x.chunks)
    for i, axis in enumerate((x.ndim - 2, x.ndim - 1)):
        k, off, size, size_out = kernel.shape[i], offsets[i], x.shape[axis], frame_out[i]
        left = -off
        right = off + size_out + k - 1 - size
        x = _extend(x, axis, left, right, p.boundary, p.fill)
        # Halo split: 'same' keeps the input's chunks; otherwise borrow from the left.
        h_left = left if mode == "same" else (k - 1 if mode == "full" else (k - 1) // 2)
        h_right = k - 1 - h_left
        base = list(out_chunks[axis])
        base[0] += left
        base[-1] += right
        fitted = _fit_chunks(base, h_left, h_right)
        x = x.rechunk({axis: fitted})
        oc = list(fitted)
        oc[0] -= h_left
        oc[-1] -= h_right
        out_chunks[axis] = tuple(oc)
        if k > 1:
            depth[axis] = (h_left, h_right)
    if depth:
        x = da.overlap.overlap(x, depth=depth, boundary={a: "none" for a in depth}, allow_rechunk=False)
    threads, explicit = _block_threads(num_threads, x.npartitions)
    func = functools.partial(
        _signal_block, kernel=kernel, convolve=convolve, method=method, threads=threads,
        explicit=explicit,
    )
    return x.map_blocks(func, chunks=tuple(out_chunks), dtype=dtype, meta=meta, token=f"fastcorr-{name}")


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


def _pad_axis(x, axis, left, right, mode):
    n = x.shape[axis]
    pieces = []
    for positions in (np.arange(-left, 0), None, np.arange(n, n + right)):
        if positions is None:
            pieces.append(x)
        elif len(positions) and mode == "zeros":
            pieces.append(_outside(x, axis, positions, 0, x.dtype.type(0)))
        elif len(positions):
            for sl in _runs(_torch_index(positions, n, mode)):
                key = [slice(None)] * x.ndim
                key[axis] = sl
                pieces.append(x[tuple(key)])
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=axis)


def _strided_chunks(chunks, stride, span):
    """Chunks of a padded axis for a 'valid' strided window of ``span`` samples.

    Chunk boundaries move to multiples of ``stride`` so each chunk starts at
    an output position; each chunk borrows ``max(0, span - stride)`` samples
    from its right neighbour (its halo), and the last chunk must hold at
    least one window. Returns (input chunks, output chunks, right halo).
    """
    total = sum(chunks)
    halo = max(0, span - stride)
    n_out = (total - span) // stride + 1
    bounds = sorted({int(round(b / stride)) * stride for b in np.cumsum(chunks)[:-1]} - {0})
    bounds = [b for b in bounds if b < total]
    sizes = np.diff([0, *bounds, total]).tolist()
    merged = []
    for c in sizes:
        if merged and merged[-1] < max(halo, 1):
            merged[-1] += c
        else:
            merged.append(c)
    # The chunk before each chunk must supply its halo; the last must hold a window.
    i = 1
    while i < len(merged):
        if merged[i] < halo:
            merged[i - 1] += merged.pop(i)
        else:
            i += 1
    while len(merged) > 1 and merged[-1] < span:
        last = merged.pop()
        merged[-1] += last
    out = [c // stride for c in merged[:-1]]
    out.append(n_out - sum(out))
    return tuple(merged), tuple(out), halo


def _conv_block(block, *, weight, bias, stride, dilation, groups, method, threads, explicit):
    n = _runtime_threads(threads, explicit)
    return fastcorr.conv2d(block, weight, bias, stride, 0, dilation, groups, method=method, num_threads=n)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", method="auto", num_threads=None):
    """``torch.nn.functional.conv2d`` on an NCHW dask array.

    Parameters
    ----------
    input : dask.array.Array or array_like, shape (N, C_in, H, W) or (C_in, H, W)
        May be chunked along N and along H and W (the channel axis is
        brought into one chunk). Spatial chunks get halos from their
        neighbours; with ``stride > 1`` chunk boundaries move to multiples
        of the stride.
    weight : array_like, shape (C_out, C_in / groups, kh, kw)
        In memory (a dask array is computed first).
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, padding_mode
        As ``torch.nn.functional.conv2d`` / ``torch.nn.Conv2d``: ``padding``
        is an int, a pair, ``'valid'`` or ``'same'``; ``padding_mode`` is one
        of 'zeros', 'reflect', 'replicate', 'circular'.
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
    depth = {}
    out_chunks = [x.chunks[0], (w.shape[0],), None, None]
    for i, axis in enumerate((2, 3)):
        left, right = pads[i]
        n = x.shape[axis]
        if padding_mode in ("reflect", "circular") and max(left, right) > (n - 1 if padding_mode == "reflect" else n):
            raise ValueError(
                f"padding {pads[i]} is too large for padding_mode={padding_mode!r} on an input of size {n}"
            )
        if n + left + right < spans[i]:
            raise ValueError(
                f"input size {n} (padded {n + left + right}) is smaller than the dilated kernel size {spans[i]}: "
                "the output would be empty"
            )
        x = _pad_axis(x, axis, left, right, padding_mode)
        base = list(x.chunks[axis])
        in_chunks, oc, halo = _strided_chunks(base, stride[i], spans[i])
        x = x.rechunk({axis: in_chunks})
        out_chunks[axis] = oc
        if halo and len(in_chunks) > 1:
            depth[axis] = (0, halo)
    if depth:
        x = da.overlap.overlap(x, depth=depth, boundary={a: "none" for a in depth}, allow_rechunk=False)
    threads, explicit = _block_threads(num_threads, x.npartitions)
    func = functools.partial(
        _conv_block, weight=w, bias=b, stride=stride, dilation=dilation, groups=int(groups),
        method=method, threads=threads, explicit=explicit,
    )
    y = x.map_blocks(func, chunks=tuple(out_chunks), dtype=dtype, meta=meta, token="fastcorr-conv2d")
    return y[0] if unbatched else y
