"""Image registration: the translation between two images, to a fraction of a pixel.

``phase_cross_correlation`` gives scikit-image's
``skimage.registration.phase_cross_correlation`` (its three return values,
0.22+), with and without masks. How it is computed:

* real images are transformed with real FFTs (``fastcorr.methods._fftlib``:
  ducc0 when installed, scipy's pocketfft for float32 rows, else
  ``scipy.fft``), float32 images in single precision, both images at once on
  two threads, into buffers kept for the next call of the same size; the
  circular correlation has the images' own size (as scikit-image's, whose
  peak it must reproduce), so no fast FFT size is chosen;
* the cross-power spectrum (product and phase normalisation) is one
  compiled pass in bands of rows (``_engine/registration_kernels.pyx``),
  the inverse transform writes the correlation into the free spectrum's
  buffer, and its peak is found by a compiled one-pass search of ``|x|``;
* the sub-pixel refinement is Guizar-Sicairos's upsampled DFT of the
  cross-power spectrum on the peak's neighbourhood only, written as matrix
  products (BLAS on one thread, bands of rows on fastcorr's threads). For a real image only half of the spectrum is
  stored: the other half is its mirror (``P[-a, -b] = conj(P[a, b])``), so
  the sum over it is the complex conjugate of a sum over the stored half with
  mirrored frequencies. The Nyquist frequency of an even size is not its own
  mirror under the DFT's convention (it is -1/2 on both sides), which is why
  the mirrored kernels are built from the frequencies of the mirrored bins
  rather than taken as the conjugates of the direct ones;
* with masks, Padfield's masked normalized cross-correlation from six real
  spectra at a fast FFT size (the linear correlation does not depend on the
  padding) and six inverse transforms.
"""
from __future__ import annotations

import itertools
import math
import threading
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..methods._blas import blas_threads
from .._engine.validate import RegistrationNormalization, RegistrationSpace, registration_args
from .._engine import registration_kernels as _rk
from ..methods import _fftlib
from ..methods.fft import _run_parallel, _workers

__all__ = ["phase_cross_correlation"]


def phase_cross_correlation(
    reference_image: ArrayLike,
    moving_image: ArrayLike,
    *,
    upsample_factor: float = 1,
    space: RegistrationSpace = "real",
    disambiguate: bool = False,
    reference_mask: ArrayLike | None = None,
    moving_mask: ArrayLike | None = None,
    overlap_ratio: float = 0.3,
    normalization: RegistrationNormalization = "phase",
    num_threads: int | None = None,
) -> tuple[NDArray[np.floating[Any]], np.floating[Any], np.floating[Any]]:
    """The translation that registers ``moving_image`` on ``reference_image``.

    scikit-image's ``skimage.registration.phase_cross_correlation`` (0.22+,
    three return values) for images without masks: the peak of the circular
    cross-correlation (or, by default, of the phase correlation), refined to
    ``1 / upsample_factor`` of a pixel by an upsampled DFT around the peak
    (Guizar-Sicairos et al. 2008); with masks, the peak of Padfield's masked
    normalized cross-correlation. Real images use real FFTs; float32 images
    are computed in single precision.

    Parameters
    ----------
    reference_image : array_like
        The reference image (any number of dimensions; 2-D is the common case).
    moving_image : array_like
        The image to register, of the same shape as ``reference_image``.
    upsample_factor : float, keyword-only
        Register to within ``1 / upsample_factor`` of a pixel (at least 1;
        1, the default, gives whole pixels).
    space : {'real', 'fourier'}, keyword-only
        'real': the inputs are images. 'fourier': they are already their
        (full, complex) spectra, ``scipy.fft.fftn`` of the images. Any case.
    disambiguate : bool, keyword-only
        The shift found is only known modulo the image's size along each
        axis. With True, each of the ``2**ndim`` candidates is tried in real
        space (the Pearson correlation of the overlapping parts) and the best
        one is returned, as scikit-image does.
    reference_mask : array_like or None, keyword-only
        Boolean mask of ``reference_image``'s valid pixels (True). Given, the
        shift (in whole or half pixels) is the maximum of Padfield's masked
        normalized cross-correlation over every lag of the full linear
        correlation, the images may differ in shape, NaN is allowed under
        the mask, ``upsample_factor``, ``space``, ``normalization`` and
        ``disambiguate`` are not used, and ``error`` and ``phasediff`` are NaN.
    moving_mask : array_like or None, keyword-only
        Boolean mask of ``moving_image``'s valid pixels; None: the
        ``reference_mask`` (the images must then have the same shape).
    overlap_ratio : float, keyword-only
        With masks: lags where the images share fewer valid pixels than this
        fraction of the largest overlap are ignored.
    normalization : {'phase', None}, keyword-only
        'phase': phase correlation (the cross-power spectrum divided by its
        magnitude); None: the plain cross-correlation.
    num_threads : int or None, keyword-only
        Threads of the FFTs, of the cross-power spectrum and of the matrix
        products (in bands of rows, BLAS held to one thread in each).
        None: :func:`fastcorr.get_num_threads`.

    Returns
    -------
    shift : ndarray
        The shift (in pixels, per axis) to apply to ``moving_image`` to
        register it with ``reference_image``: float32 for float32 (or
        complex64) inputs, else float64.
    error : numpy floating
        The translation-invariant normalized RMS error between the images.
    phasediff : numpy floating
        The global phase difference between the images (zero for
        non-negative real images).

    Raises
    ------
    ValueError
        Images of different shapes (without ``moving_mask``), a mask of
        another shape than its image, ``upsample_factor < 1``, an unknown
        ``space`` or ``normalization``, NaN in the images (without masks).

    See Also
    --------
    correlate2d : The (linear) cross-correlation itself.

    Notes
    -----
    As scikit-image's: with ``upsample_factor > 1`` the error and phase come
    from the upsampled (unnormalized) DFT at the refined peak; the shift is
    rounded to the nearest multiple of ``1 / upsample_factor``; axes of
    length 1 get a shift of 0.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient
           subpixel image registration algorithms", Optics Letters 33,
           156-158 (2008).
    .. [2] D. Padfield, "Masked object registration in the Fourier domain",
           IEEE Transactions on Image Processing 21(5), 2706-2718 (2012).

    Examples
    --------
    A random scene and a copy moved by (3, -5) pixels (circularly):

    >>> import numpy as np, fastcorr
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.random((64, 64))
    >>> moved = np.roll(ref, (3, -5), axis=(0, 1))
    >>> shift, error, phasediff = fastcorr.phase_cross_correlation(ref, moved)
    >>> shift
    array([-3.,  5.])

    A sub-pixel shift, applied in Fourier space, found to 1/20 of a pixel:

    >>> f = np.fft.fftfreq(64)
    >>> phase = np.exp(-2j * np.pi * (1.3 * f[:, None] - 2.45 * f[None, :]))
    >>> moved = np.fft.ifft2(np.fft.fft2(ref) * phase).real
    >>> shift, error, phasediff = fastcorr.phase_cross_correlation(ref, moved, upsample_factor=20)
    >>> shift
    array([-1.3 ,  2.45])

    With masks, invalid pixels (here NaN) are left out:

    >>> damaged = np.roll(ref, (3, -5), axis=(0, 1))
    >>> damaged[10:20, 30:40] = np.nan
    >>> shift, error, phasediff = fastcorr.phase_cross_correlation(
    ...     ref, damaged, reference_mask=np.ones(ref.shape, bool), moving_mask=~np.isnan(damaged))
    >>> shift
    array([-3.,  5.])
    """
    p = registration_args(reference_image, moving_image, upsample_factor, space, disambiguate,
                          reference_mask, moving_mask, overlap_ratio, normalization, num_threads)
    # BLAS on one thread: the matrix products are split into bands of rows
    # on fastcorr's threads instead (multithreaded OpenBLAS measured 10-50x
    # slower than one thread for these products on 2 loaded cores).
    if p.reference_mask is not None:
        with blas_threads(1):
            shift = _masked_shift(p.reference, p.moving, p.reference_mask, p.moving_mask,
                                  p.overlap_ratio, p.num_threads)
        return shift, np.float64(np.nan), np.float64(np.nan)
    if p.upsample_factor == 1 and p.space == "real" and not _complex_input(p):
        return _register(p)  # no BLAS call (the energies are compiled sums): no pool to pin
    with blas_threads(1):
        return _register(p)


def _register(p):
    """phase_cross_correlation without masks, on validated arguments."""
    import scipy.fft  # imported when first needed, as the FFT method does

    ref, mov, nt = p.reference, p.moving, p.num_threads
    shape = ref.shape
    size = ref.size
    wk = _workers(nt, size)  # the transforms' threads cost more than they save on small images
    single = _single(ref.dtype) and _single(mov.dtype)
    fdt = np.dtype(np.float32 if single else np.float64)
    cdt = np.dtype(np.complex64 if single else np.complex128)
    half = p.space == "real" and ref.dtype.kind != "c" and mov.dtype.kind != "c"
    phase = p.normalization == "phase"
    floor = float(fdt.type(100 * np.finfo(fdt).eps))
    keep = p.upsample_factor != 1  # the cross-power spectrum is needed after the inverse

    # The spectra, their energies (Parseval: sum |F|^2 = size * sum |x|^2)
    # and the cross-power spectrum P = F_ref * conj(F_mov), in A's buffer.
    if half:
        a = ref.astype(fdt, copy=False)
        b = mov.astype(fdt, copy=False)
        hshape = shape[:-1] + (shape[-1] // 2 + 1,)
        # the transforms write into these buffers (kept for the next call
        # of the same size: fresh ones cost their page faults)
        work = _Workspace(hshape, cdt, 3 if keep else 2)
        A, B = work.buffers[:2]
        spectra = [None, None]
        energies = [0.0, 0.0]

        if wk > 1 and a.ndim > 1 and a.size >= BANDED_TRANSFORM and _fftlib.banded_passes():
            energies = _forward_in_bands((a, b), (A, B), nt)
            spectra = [A, B]
        else:
            def forward(i):
                x, out = (a, A) if i == 0 else (b, B)
                energies[i] = _energy_real(x)
                # both images at once on two threads, one transform each
                spectra[i] = _fftlib.rfftn_into(x, out, workers=1 if wk > 1 else wk)

            _run_parallel(forward, [0, 1], 2 if wk > 1 else 1)
        A, B = spectra
        energy_ref, energy_mov = energies[0] * size, energies[1] * size
        if not A.flags.c_contiguous:
            A = np.ascontiguousarray(A)
        if not B.flags.c_contiguous:
            B = np.ascontiguousarray(B)
        P = A
    else:
        if p.space == "real":
            A = scipy.fft.fftn(ref.astype(cdt, copy=False), workers=wk)
            B = scipy.fft.fftn(mov.astype(cdt, copy=False), workers=wk)
            P = A
        else:  # the caller's spectra: left alone
            A = np.ascontiguousarray(ref, dtype=cdt)
            B = np.ascontiguousarray(mov, dtype=cdt)
            P = np.empty(A.shape, cdt)
        energy_ref = _energy(A)
        energy_mov = _energy(B)

    def cross_power(rows):  # one compiled pass per band of rows (P may be A)
        _rk.cross_power(P[rows], A[rows], B[rows], phase, floor)

    _by_rows(cross_power, P.shape[0], nt, P.size)

    if half:
        # The correlation, written into B's buffer (free now) as rows padded
        # to B's row length (unpadded rows of 2**k floats make the strided
        # transforms' cache sets collide); with upsampling P must survive the
        # inverse, which then runs in a third buffer.
        n_last = shape[-1]
        if keep:
            scratch, target = B, work.buffers[2]
        else:
            scratch, target = None, B
        padded = target.view(fdt)  # (..., 2 * h) with 2 * h >= n_last
        if wk > 1 and P.ndim > 1 and P.size >= BANDED_TRANSFORM // 2 and _fftlib.banded_passes():
            cc = _inverse_in_bands(P, P if scratch is None else scratch, padded[..., :n_last], nt)
        else:
            cc = _fftlib.irfftn_into(P, padded[..., :n_last], workers=wk, overwrite_x=not keep,
                                     scratch=scratch)
        del A, B
        if np.may_share_memory(cc, padded):  # written in place (else scipy.fft's new array)
            padded[..., n_last:] = 0  # the padding never beats a real value (see _peak_index)
            flat = _peak_index(padded, nt)
            row, col = divmod(flat, padded.shape[-1])
            peak = np.unravel_index(row, shape[:-1]) + (col,) if len(shape) > 1 else (col,)
        else:
            peak = np.unravel_index(_peak_index(np.ascontiguousarray(cc), nt), shape)
    else:
        del A, B
        cc = scipy.fft.ifftn(P, workers=wk, overwrite_x=not keep)
        peak = np.unravel_index(int(np.argmax(np.abs(cc))), shape)
    peak = tuple(int(i) for i in peak)
    cc_max = cdt.type(cc[peak])
    del cc

    shift = np.array(peak, dtype=fdt)
    dims = np.array(shape)
    wrap = shift > np.trunc(dims / 2)
    shift[wrap] -= dims[wrap]

    if p.upsample_factor == 1:
        amp_ref = fdt.type(energy_ref / size)
        amp_mov = fdt.type(energy_mov / size)
    else:
        up = fdt.type(p.upsample_factor)
        shift = np.round(shift * up) / up
        region = int(math.ceil(float(up * fdt.type(1.5))))
        centre = float(region // 2)
        offsets = [centre - float(s * up) for s in shift]
        S = _upsampled_dft(P, shape, offsets, float(up), region, half, cdt, nt)
        best = np.unravel_index(int(np.argmax(np.abs(S))), S.shape)
        cc_max = cdt.type(S[best])
        shift = shift + (np.array(best, dtype=fdt) - fdt.type(centre)) / up
        amp_ref = fdt.type(energy_ref)
        amp_mov = fdt.type(energy_mov)
    shift = shift.astype(fdt, copy=False)
    shift[dims == 1] = 0
    if half:
        del P, scratch, target, padded
        work.release()

    if p.disambiguate:
        if p.space == "real":
            ref_img, mov_img = ref, mov
        else:
            ref_img = scipy.fft.ifftn(ref, workers=wk)
            mov_img = scipy.fft.ifftn(mov, workers=wk)
        shift = _disambiguate(ref_img, mov_img, shift)

    if np.isnan(cc_max) or np.isnan(amp_ref) or np.isnan(amp_mov):
        raise ValueError(
            "reference_image or moving_image holds NaN: remove the NaNs first, or leave them "
            "out with masks (reference_mask=~np.isnan(reference_image), "
            "moving_mask=~np.isnan(moving_image))"
        )
    return shift, _error(cc_max, amp_ref, amp_mov), np.arctan2(cc_max.imag, cc_max.real)


class _Workspace:
    """``count`` C-contiguous arrays of one shape and dtype for one call,
    taken from (and given back to) a cache of one set of at most
    ``WORKSPACE_BYTES`` (64 MiB: a 2048² float32 registration with
    upsampling needs three spectra of 16.8 MB; fresh ones cost their page
    faults, measured 124 against 99 ms CPU for a 2048² float64 call on one
    thread, whose 101 MB are not kept: a library should not sit on that).
    The cache holds the last call's buffers, i.e. the memory a call of that
    size uses anyway. Thread-safe: a set is used by one call at a time;
    concurrent calls allocate their own."""

    def __init__(self, shape, dtype, count):
        key = (shape, np.dtype(dtype).str)
        with _workspace_lock:
            cached = _workspace.pop(key, None)
            if cached is not None:
                _workspace.clear()
        self.key = key
        self.buffers = list(cached or [])[:count]
        while len(self.buffers) < count:
            self.buffers.append(np.empty(shape, dtype))

    def release(self):
        """Give the arrays back (the caller holds no view of them any more)."""
        if sum(b.nbytes for b in self.buffers) > WORKSPACE_BYTES:
            return
        with _workspace_lock:
            held = _workspace.get(self.key)
            if held is None or len(held) < len(self.buffers):
                _workspace.clear()
                _workspace[self.key] = self.buffers
        self.buffers = []


WORKSPACE_BYTES = 64 << 20
_workspace = {}
_workspace_lock = threading.Lock()


def _peak_index(x, nt):
    """The flat index of the first largest ``|x|`` of a C-contiguous real
    array (of the first NaN if any), as ``argmax(abs(x))``: one compiled
    pass per band of rows, the bands' winners compared in order."""
    if x.ndim < 2 or _workers(nt, x.size) == 1:
        return int(_rk.absmax(x))
    found = {}
    row_size = x.size // x.shape[0]

    def search(rows):
        found[rows.start] = rows.start * row_size + int(_rk.absmax(x[rows]))

    _by_rows(search, x.shape[0], nt, x.size)
    flat = x.reshape(-1)
    best = None
    for start in sorted(found):  # earlier bands win ties; a NaN wins outright
        i = found[start]
        v = abs(flat[i])
        if np.isnan(v):
            return i
        if best is None or v > abs(flat[best]):
            best = i
    return best


def _masked_shift(ref, mov, ref_mask, mov_mask, overlap_ratio, nt):
    """Padfield's masked normalized cross-correlation: the shift at its maximum.

    The Pearson correlation of the valid pixels the two images share, at
    every lag of their full (linear) correlation: its five sums over the
    overlap (pixel count, sums and sums of squares of each image, and the
    cross sum) are six correlations, computed from six real spectra at a fast
    FFT size (the mask spectra serve several sums each). Lags whose overlap
    is below ``overlap_ratio`` of the largest are ignored; ties at the maximum
    are averaged, as scikit-image does.
    """
    import scipy.fft

    fdt = np.dtype(np.float32 if _single(ref.dtype) and _single(mov.dtype) else np.float64)
    eps = np.finfo(fdt).eps
    nd = ref.ndim
    full = tuple(a + b - 1 for a, b in zip(mov.shape, ref.shape))
    fast = tuple(scipy.fft.next_fast_len(n, real=True) for n in full)
    crop = tuple(slice(0, n) for n in full)
    flip = (slice(None, None, -1),) * nd

    # The moving image is correlated with the reference: a convolution with
    # the reference flipped. Invalid pixels are zeros (NaN allowed there).
    a = np.where(mov_mask, mov, 0).astype(fdt, copy=False)
    b = np.where(ref_mask, ref, 0).astype(fdt, copy=False)[flip]
    ma = mov_mask.astype(fdt)
    mb = ref_mask[flip].astype(fdt)

    wk = _workers(nt, math.prod(fast))

    def spectrum(x):
        return scipy.fft.rfftn(x, s=fast, workers=wk)

    def back(X, Y):
        return scipy.fft.irfftn(X * Y, s=fast, workers=wk, overwrite_x=True)[crop]

    A, B, MA, MB = spectrum(a), spectrum(b), spectrum(ma), spectrum(mb)
    count = back(MA, MB)       # valid pixels shared at each lag
    sum_a = back(A, MB)        # the moving image's sum over each overlap
    sum_b = back(MA, B)        # the reference's
    cross = back(A, B)
    del A, B
    var_a = back(spectrum(np.square(a)), MB)
    var_b = back(MA, spectrum(np.square(b)))
    del MA, MB

    def moments(rows):  # in place, band by band: centred cross sum and sqrt of the variances' product
        c = count[rows]
        np.fmax(np.round(c, out=c), eps, out=c)
        sa, sb = sum_a[rows], sum_b[rows]
        x, va, vb = cross[rows], var_a[rows], var_b[rows]
        x -= sa * sb / c
        va -= np.square(sa) / c
        np.fmax(va, 0, out=va)
        vb -= np.square(sb) / c
        np.fmax(vb, 0, out=vb)
        np.sqrt(np.multiply(va, vb, out=va), out=va)

    _by_rows(moments, full[0], nt, count.size)
    denom = var_a
    tol = 1e3 * eps * np.max(denom)
    least = overlap_ratio * np.max(count)
    ncc = np.zeros(full, dtype=fdt)

    def normalise(rows):
        out, d = ncc[rows], denom[rows]
        np.divide(cross[rows], d, out=out, where=d > tol)
        np.clip(out, -1, 1, out=out)
        out[count[rows] < least] = 0

    _by_rows(normalise, full[0], nt, count.size)
    peaks = np.argwhere(ncc == ncc.max())
    centre = peaks.mean(axis=0)
    ref_shape, mov_shape = np.array(ref.shape), np.array(mov.shape)
    # full-correlation index j is the lag j - (ref size - 1) of moving against reference
    return ref_shape - 1 - centre + (mov_shape - ref_shape) / 2


#: bands per thread in a threaded pass: the threads take bands as they
#: finish, so one slowed by another program on its core (BLAS threads of the
#: caller's last matrix product spin there for ~0.1 s) holds up only its own
#: bands, not the whole pass
BANDS_PER_THREAD = 4
#: ... but bands of at least this many values (each costs a task and a
#: library call: 512² float32, 8 bands an image, measured 6.9 ms against 4.2
#: for one transform a thread), and the transforms in passes of bands only
#: from BANDED_TRANSFORM values an image (below, one image a thread)
BAND_MIN_VALUES = 1 << 17
BANDED_TRANSFORM = 1 << 20


def _bands(n, nt, values):
    """Slices splitting ``range(n)`` (``values`` in all) into up to
    ``BANDS_PER_THREAD * nt`` bands of at least BAND_MIN_VALUES values, and
    at least ``nt`` bands (at most n)."""
    parts = max(1, min(n, max(nt, min(BANDS_PER_THREAD * nt, values // BAND_MIN_VALUES))))
    edges = [n * k // parts for k in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


def _by_rows(fn, n_rows, nt, elements):
    """``fn(rows)`` for bands of rows (slices of axis 0) on up to ``nt`` threads
    (one band when the ``elements`` they cover are too few to share)."""
    if _workers(nt, elements) == 1:
        fn(slice(0, n_rows))
        return
    _run_parallel(fn, _bands(n_rows, nt, elements), nt)


def _forward_in_bands(images, spectra, nt):
    """``rfftn`` of each image into its spectrum buffer, and ``sum x^2`` of
    each: the row transforms in bands of rows of every image, then the
    leading axes in bands of columns, each pass on ``nt`` threads that take
    bands as they finish. Returns the energies."""
    sums = {}

    def rows_pass(item):
        i, rows = item
        sums[i, rows.start] = _energy_real(images[i][rows])
        _fftlib.rows_rfft_into(images[i][rows], spectra[i][rows])

    _run_parallel(rows_pass, [(i, r) for i in range(len(images)) for r in _bands(images[i].shape[0], nt, images[i].size)],
                  nt)

    def columns_pass(item):
        i, cols = item
        _fftlib.leading_fft_into(spectra[i][..., cols], spectra[i][..., cols], forward=True)

    _run_parallel(columns_pass,
                  [(i, c) for i in range(len(spectra)) for c in _bands(spectra[i].shape[-1], nt, spectra[i].size)], nt)
    return [sum(v for (i, _), v in sorted(sums.items()) if i == k) for k in range(len(images))]


def _inverse_in_bands(P, work, out, nt):
    """``irfftn`` of the half spectrum ``P`` into ``out`` (rows may be padded):
    the leading axes into ``work`` (may be ``P``) in bands of columns, then
    the rows into ``out`` in bands of rows. Returns ``out``."""
    def columns_pass(cols):
        _fftlib.leading_fft_into(P[..., cols], work[..., cols], forward=False)

    _run_parallel(columns_pass, _bands(P.shape[-1], nt, P.size), nt)

    def rows_pass(rows):
        _fftlib.rows_irfft_into(work[rows], out[rows])

    _run_parallel(rows_pass, _bands(P.shape[0], nt, P.size), nt)
    return out


def _complex_input(p):
    return p.reference.dtype.kind == "c" or p.moving.dtype.kind == "c"


def _energy_real(x):
    """sum x^2 of a real image, accumulated in double (compiled, no BLAS)."""
    return _rk.sum_squares(np.ascontiguousarray(x))


def _single(dtype):
    return dtype in (np.float32, np.float16, np.complex64)


def _energy(x):
    """sum |x|^2 as a float (a BLAS dot product)."""
    flat = x.reshape(-1)
    return float(np.vdot(flat, flat).real)


def _error(cc_max, amp_ref, amp_mov):
    """scikit-image's translation-invariant normalized RMS error."""
    amp = amp_ref * amp_mov
    if amp == 0:
        warnings.warn(
            "phase_cross_correlation: the RMS error is undefined because reference_image "
            f"or moving_image is empty (energies {amp_ref!r} and {amp_mov!r})",
            UserWarning, stacklevel=3,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        err = 1.0 - cc_max * cc_max.conj() / amp
    return np.sqrt(np.abs(err))


def _kernel(n, up, offset, region, mirrored=False):
    """exp(2 pi i t nu) for the region's positions t and the frequencies nu of n bins.

    Row ``k`` samples position ``(k - offset) / up`` (in pixels). ``mirrored``
    gives the frequencies of the mirrored bins, ``-nu[-j mod n]`` (the same
    but at the Nyquist bin of an even n).
    """
    nu = np.fft.fftfreq(n, up)
    if mirrored:
        nu = -nu[(-np.arange(n)) % n]
    # Row k is row 0 times exp(2 pi i nu)**k: a running product (2n
    # exponentials instead of region * n; rounding grows as k * 1e-16).
    rows = np.empty((region, n), np.complex128)
    rows[0] = np.exp(-2j * np.pi * offset * nu)
    step = np.exp(2j * np.pi * nu)
    for k in range(1, region):  # numpy's cumprod along axis 0 is ~10x slower
        np.multiply(rows[k - 1], step, out=rows[k])
    return rows


def _upsampled_dft(P, shape, offsets, up, region, half, cdt, nt=1):
    """The cross-correlation at ``region`` positions per axis around the peak.

    ``sum over all frequencies of exp(2 pi i t . nu) P(nu)`` for the
    positions ``t_d = (k - offsets[d]) / up``, k in 0..region-1: the last axis
    first (one matrix product over the spectrum), then the others on the
    small result. With ``half`` (P is rfftn's half spectrum along the last
    axis) the missing half is added as the conjugate of a sum over the stored
    bins 1..m with mirrored kernels along the other axes.
    """
    nd = len(shape)
    n_last = shape[-1]
    kl = _kernel(n_last, up, offsets[-1], region).astype(cdt)
    # The big product, in bands of rows on nt threads.
    h = P.shape[-1]
    m = n_last - h if half else h - 1  # half: bins 1..m have their mirror in the missing half
    first = np.empty(P.shape[:-1] + (region,), cdt)
    kt = kl[:, 1:1 + m].T

    def product(rows):
        np.matmul(P[rows][..., 1:1 + m], kt, out=first[rows])

    _by_rows(product, P.shape[0], nt, P.size)
    if half:
        mirror = first
        direct = mirror + P[..., :1] @ kl[:, :1].T
        if h - 1 > m:  # the Nyquist bin of an even size: stored, not mirrored
            direct += P[..., h - 1:h] @ kl[:, h - 1:h].T
    else:
        direct = first
        direct += P[..., :1] @ kl[:, :1].T
        mirror = None
    # direct (and mirror) now have shape (n0, ..., n_{nd-2}, region)
    for d in range(nd - 2, -1, -1):
        k = _kernel(shape[d], up, offsets[d], region).astype(cdt)
        direct = _along(k, direct, d)
        if mirror is not None:
            km = _kernel(shape[d], up, offsets[d], region, mirrored=True).astype(cdt)
            mirror = _along(km, mirror, d)
    if mirror is not None:
        direct = direct + np.conjugate(mirror)
    return direct


def _along(k, x, d):
    """``k`` applied along axis ``d`` of ``x`` (axis 0: one plain matrix
    product, without tensordot's transposes and checks)."""
    if d == 0:
        return (k @ x.reshape(x.shape[0], -1)).reshape((k.shape[0],) + x.shape[1:])
    return np.moveaxis(np.tensordot(k, x, axes=(1, d)), 0, d)


def _pearson(x, y):
    """The Pearson correlation of two flat arrays (NaN when one is constant)."""
    x = x - x.mean()
    y = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.vdot(x, y) / np.sqrt(np.vdot(x, x).real * np.vdot(y, y).real)
    return float(np.real(r))


def _disambiguate(ref, mov, shift):
    """Pick, of the 2**ndim shifts equal to ``shift`` modulo the image size, the one
    whose overlap correlates best in real space (scikit-image's rule)."""
    import scipy.ndimage

    shape = ref.shape
    forward = [float(s) % n for s, n in zip(shift, shape)]  # in [0, n)
    backward = [f - n for f, n in zip(forward, shape)]      # in [-n, 0)
    if np.all(np.mod(shift, 1) == 0):
        moved = np.roll(mov, [int(s) for s in shift], axis=tuple(range(len(shape))))
    else:
        moved = scipy.ndimage.shift(mov, shift, order=3, mode="grid-wrap")
    cuts = [int(np.round(f)) for f in forward]
    best_score, best_parts = -1.0, None
    # Each axis splits at its cut into the part the forward shift overlaps
    # (after the cut) and the part the backward one does (before it).
    for parts in itertools.product(*[(slice(0, c), slice(c, None)) for c in cuts]):
        r = ref[parts].reshape(-1)
        score = -1.0
        if r.size > 2:
            score = _pearson(r, moved[parts].reshape(-1))
        if score > best_score:
            best_score, best_parts = score, parts
    if best_parts is None:
        warnings.warn(
            f"phase_cross_correlation: disambiguate=True cannot tell the shifts equal to {shift!r} "
            "modulo the image size apart (every overlap is degenerate); returning it as found",
            stacklevel=3,
        )
        return shift
    out = [f if part.stop is None else b for part, f, b in zip(best_parts, forward, backward)]
    return np.array(out, dtype=shift.dtype)
