"""Workspaces stay bounded: peak RSS of large calls, measured in a subprocess."""
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, fastcorr
    method, n, k, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fastcorr.set_im2col_cap(cap)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n), dtype=np.float32)
    w = rng.standard_normal((k, k)).astype(np.float32)
    small = fastcorr.correlate2d(x[:64, :64], w, "same", method=method)  # load code, plans
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    y = fastcorr.correlate2d(x, w, "same", method=method)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ref = float(np.dot(x[n//2 - k//2: n//2 + k//2 + 1, n//2 - k//2: n//2 + k//2 + 1].ravel().astype(np.float64),
                       w.ravel().astype(np.float64)))
    print(json.dumps({"growth": after - before, "out": y.nbytes, "check": abs(float(y[n//2, n//2]) - ref)}))
    """
)

MiB = 2**20


def peak_growth(method, n, k, cap=4 * MiB):
    res = subprocess.run([sys.executable, "-c", SCRIPT, method, str(n), str(k), str(cap)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_im2col_column_buffer_stays_under_cap():
    # Untiled, the columns of 2048^2 x 31^2 float32 would take 15 GiB.
    r = peak_growth("im2col", 2048, 31, cap=4 * MiB)
    assert r["check"] < 1e-2
    assert r["growth"] <= r["out"] + 4 * 4 * MiB + 48 * MiB, r


def test_fft_tiles_keep_memory_near_output():
    r = peak_growth("fft", 4096, 31)
    assert r["check"] < 1e-2
    # The FFT path pads one copy of the input (~ the output's size here) and
    # keeps one chunk of tile spectra; untiled, the float64 spectra of the
    # whole padded image and kernel would add ~ 4 x 128 MiB on top.
    assert r["growth"] <= 2 * r["out"] + 96 * MiB, r
