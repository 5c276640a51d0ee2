"""The peak search of ``fastcorr.peaks``: local extrema, non-maximum
suppression, sub-pixel refinement.

Candidates are the local maxima (each at least its eight neighbours and
above one of them, so that a flat region holds none; NaN is never one),
above the threshold. They are visited best first (ties: the
first in row-major order) and each one kept unless a kept peak lies within
``min_distance - 1`` rows and columns of it (greedy non-maximum suppression
in the chessboard distance). Only as many candidates as needed are sorted:
the best few by ``numpy.argpartition``, more when suppression leaves too
few peaks.
"""
import numpy as np

__all__ = ["peaks", "refine"]


def _candidates(s, minimize, threshold):
    """Flat indices of the local extrema of ``s`` and their (oriented) values.

    A candidate is at least the largest of its eight neighbours and above
    the smallest (NaN and the border count as no neighbour): two running
    extrema over the shifted neighbourhoods, in ``s``'s own precision.
    """
    v = np.asarray(s)
    if v.dtype.kind != "f":
        v = v.astype(np.float64)
    if minimize:
        v = -v
    H, W = v.shape
    nan = np.isnan(v)
    lo = np.full((H + 2, W + 2), -np.inf, v.dtype)       # NaN and outside: never the larger
    lo[1:-1, 1:-1] = np.where(nan, -np.inf, v)
    hi = np.full((H + 2, W + 2), np.inf, v.dtype)        # ... and never the smaller
    hi[1:-1, 1:-1] = np.where(nan, np.inf, v)
    nbmax = np.full((H, W), -np.inf, v.dtype)
    nbmin = np.full((H, W), np.inf, v.dtype)
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            if dr == 1 and dc == 1:
                continue
            np.maximum(nbmax, lo[dr:dr + H, dc:dc + W], out=nbmax)
            np.minimum(nbmin, hi[dr:dr + H, dc:dc + W], out=nbmin)
    ok = (v >= nbmax) & ((v > nbmin) | (nbmin == np.inf)) & (v > -np.inf)
    if threshold is not None:
        ok &= (v >= -threshold) if minimize else (v > threshold)
    idx = np.flatnonzero(ok)
    return idx, v.ravel()[idx].astype(np.float64)


def _ordered(idx, vals, k):
    """The candidates with the k best values (all ties of the k-th
    included), best first, ties in index order."""
    if k < len(vals):
        kth = np.partition(vals, len(vals) - k)[len(vals) - k]
        sel = vals >= kth
        idx, vals = idx[sel], vals[sel]
    order = np.lexsort((idx, -vals))
    return idx[order], len(idx)


def peaks(p):
    s = p.scores
    H, W = s.shape
    idx, vals = _candidates(s, p.minimize, p.threshold)
    d = p.min_distance
    k = min(len(idx), max(64, 4 * p.num_peaks))
    while True:
        order, taken = _ordered(idx, vals, k)
        kept = _suppress(order, W, H, d, p.num_peaks)
        if len(kept) >= p.num_peaks or taken >= len(idx):
            break
        k = min(len(idx), 4 * k)
    rows, cols = np.divmod(np.asarray(kept, dtype=np.intp), W)
    values = s[rows, cols]
    pos = np.stack([rows, cols], axis=1).astype(np.float64).reshape(-1, 2)
    if p.subpixel is not None and len(kept):
        pos = refine(s, rows, cols, p.subpixel, p.minimize)
    return pos, values


def _suppress(order, W, H, d, num):
    """Greedy non-maximum suppression: the first ``num`` candidates of
    ``order`` (flat indices, best first) no closer than ``d`` to a kept one."""
    if d <= 1:
        return list(order[:num])
    blocked = np.zeros((H, W), dtype=bool)
    kept = []
    r = d - 1
    for i in order.tolist():
        y, x = divmod(i, W)
        if blocked[y, x]:
            continue
        kept.append(i)
        if len(kept) >= num:
            break
        blocked[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
    return kept


def refine(s, rows, cols, method, minimize=False):
    """Sub-pixel positions (n, 2) of the peaks at (rows, cols) of ``s``.

    'parabolic': per axis, the vertex of the parabola through the peak and
    its two neighbours, ``(f[-1] - f[1]) / (2 (f[-1] - 2 f[0] + f[1]))``;
    'gaussian': the same on ``log f`` (exact on sampled Gaussians), the
    parabola where a value is <= 0; 'centroid': the 3x3 neighbourhood's
    centroid weighted by each score minus the neighbourhood's worst. With
    ``minimize`` the scores are negated first. An axis on which the peak
    has no neighbour on one side (the border), or a flat parabola, is not
    refined.
    """
    v = np.asarray(s, dtype=np.float64)
    if minimize:
        v = -v
    H, W = v.shape
    out = np.empty((len(rows), 2))
    for i, (y, x) in enumerate(zip(rows.tolist(), cols.tolist())):
        if method == "centroid":
            y0, y1, x0, x1 = max(0, y - 1), min(H, y + 2), max(0, x - 1), min(W, x + 2)
            patch = v[y0:y1, x0:x1]
            finite = np.isfinite(patch)
            wts = np.where(finite, patch - (patch[finite].min() if finite.any() else 0.0), 0.0)
            total = wts.sum()
            if total > 0:
                yy, xx = np.mgrid[y0:y1, x0:x1]
                out[i] = ((wts * yy).sum() / total, (wts * xx).sum() / total)
            else:
                out[i] = (y, x)
            continue
        out[i, 0] = y + _vertex(v, y, x, 1, 0, H, method)
        out[i, 1] = x + _vertex(v, y, x, 0, 1, W, method)
    return out


def _vertex(v, y, x, dy, dx, n, method):
    c = y if dy else x
    if c - 1 < 0 or c + 1 >= n:
        return 0.0
    a, b, f = v[y - dy, x - dx], v[y, x], v[y + dy, x + dx]
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(f)):
        return 0.0
    if method == "gaussian" and a > 0 and b > 0 and f > 0:
        a, b, f = np.log(a), np.log(b), np.log(f)
    den = a - 2 * b + f
    if den == 0:
        return 0.0
    return float((a - f) / (2 * den))
