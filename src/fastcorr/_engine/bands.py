"""Long calls in bands, so that they answer Ctrl-C (DESIGN §3).

A compiled kernel holds the thread that called it until it returns: while it
runs, Python cannot raise the KeyboardInterrupt that SIGINT asks for (every
peer makes the user wait for the end of the call). A call that the cost
model expects to run longer than :data:`LONG_CALL_SECONDS` is therefore cut
into bands of output rows of about :data:`BAND_SECONDS` each, computed one
after the other by the same method on the same threads. Between two bands
Python's evaluation loop runs the signal handlers: KeyboardInterrupt is
raised there, the threads have already stopped (each band ends with its
parallel region), and the partial output is dropped with the call's frame.

A band of rows is itself an offset correlation (the rows' offset moves by
the band's first row), so banding changes no result beyond the rounding of
methods whose sums depend on the tiling (FFT; it is not banded: its own
overlap-save tiles are the unit, see ``fastcorr.methods.fft``).
"""
import math
import time

import numpy as np

#: A call estimated to take longer than this is cut into bands.
LONG_CALL_SECONDS = 0.25
#: Target time of one band: the latency of Ctrl-C is about one band.
BAND_SECONDS = 0.12
#: Fewest output rows of a band: each band starts a thread team (the
#: separable method takes at least 2 kh: it recomputes kh - 1 rows of its
#: first pass per band, a quarter of that pass at 2 kh; bands of columns,
#: which recompute nothing, measured 2-6x slower for a 151-tap kernel).
MIN_BAND_ROWS = 16


def band_rows(seconds, rows, min_rows=None):
    """Output rows of the first band of a call estimated at ``seconds`` over
    ``rows`` rows (None: not a long call, one band)."""
    min_rows = MIN_BAND_ROWS if min_rows is None else min_rows
    if seconds is None or seconds <= LONG_CALL_SECONDS or rows < 2 * min_rows:
        return None
    # a quarter of a band first: a model off by 4x still answers in time,
    # and the bands after it are sized from the measured time
    per_band = max(min_rows, math.ceil(rows * BAND_SECONDS / seconds / 4))
    return per_band if per_band < rows else None


#: Called with no argument when a banded call ends by an exception: the
#: methods' drivers register the release of the work buffers they keep for
#: the next call (``conv.release_workspace``), so that an interrupted call
#: leaves the memory as it found it.
release_hooks = []


def in_bands(count, first, compute, min_size=1):
    """Call ``compute(start, stop)`` over ``[0, count)`` in consecutive bands.

    The first band has ``first`` items; each later one is sized from the
    time the previous one took, so that a busy machine or a cost model off
    by some factor still answers Ctrl-C within about :data:`BAND_SECONDS`
    (growing at most 2x a band, never below ``min_size``).
    """
    start, size = 0, max(1, int(first))
    try:
        while start < count:
            stop = min(count, start + size)
            began = time.perf_counter()
            compute(start, stop)
            seconds = time.perf_counter() - began
            size = max(min_size, min(2 * size, int((stop - start) * BAND_SECONDS / max(seconds, 1e-6))))
            start = stop
    except BaseException:  # Ctrl-C between two bands (or an error): drop the call's workspaces
        for release in release_hooks:
            release()
        raise


class Banded:
    """``engine`` with each offset correlation computed a band of output rows
    at a time (see the module docstring and :func:`in_bands`): the same
    engine interface (``correlate`` and the ``SERVES_*`` flags), for
    ``lowering``. The first band has ``rows`` rows, every band at least
    ``min_rows``.
    """

    def __init__(self, engine, rows, min_rows=None):
        self.engine = engine
        self.rows = int(rows)
        self.min_rows = MIN_BAND_ROWS if min_rows is None else int(min_rows)
        self.SERVES_COMPLEX = getattr(engine, "SERVES_COMPLEX", False)
        self.SERVES_INTEGER = getattr(engine, "SERVES_INTEGER", False)
        self.SERVES_OUT = True  # bands of any engine are copied into out (in place where it serves out)

    def correlate(self, x, w, shape, offsets, boundary, fill, num_threads, out=None):
        Ho, Wo = shape
        given, out = out, []
        if given is not None:
            out.append(given)
        elif getattr(self.engine, "SERVES_OUT", False):  # each band written in place
            out.append(np.empty(shape, dtype=x.dtype))

        def band(r0, r1):
            sub = ((r1 - r0, Wo), (offsets[0] + r0, offsets[1]), boundary, fill, num_threads)
            if out and getattr(self.engine, "SERVES_OUT", False):
                self.engine.correlate(x, w, *sub, out=out[0][r0:r1])
                return
            part = self.engine.correlate(x, w, *sub)
            if not out:
                out.append(np.empty(shape, dtype=part.dtype))
            out[0][r0:r1] = part

        in_bands(Ho, self.rows, band, self.min_rows)
        return out[0]
