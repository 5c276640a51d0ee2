"""fastcorr survives fork(): a child forked after the parent ran threads
computes correct results with every method and never hangs (DESIGN §3).

GNU OpenMP's thread team does not exist in a forked child; fastcorr runs
such a child's calls on one thread (``fastcorr._engine.config``). Each test
forks a child with multiprocessing's 'fork' start method after the parent
ran the same call on two threads, and fails (instead of hanging CI) if the
child has not answered within the timeout.
"""
import multiprocessing
import os
import sys

import numpy as np
import pytest
import scipy.signal as ss

import fastcorr

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="needs fork() (Linux)")

TIMEOUT = float(os.environ.get("FASTCORR_FORK_TIMEOUT", 60))  # seconds; a serial child takes well under one
RNG = np.random.default_rng(20)
IMAGE = RNG.standard_normal((512, 512)).astype(np.float32)
KERNEL = RNG.standard_normal((7, 7)).astype(np.float32)
SEPARABLE = np.outer(np.hanning(9), np.hanning(9)[::-1]).astype(np.float32)
X4 = RNG.standard_normal((2, 16, 40, 40)).astype(np.float32)
W4 = RNG.standard_normal((16, 16, 3, 3)).astype(np.float32)


def _signal(method):
    kernel = SEPARABLE if method == "separable" else KERNEL
    return lambda threads: fastcorr.correlate2d(IMAGE, kernel, "same", method=method, num_threads=threads)


def _conv(method):
    return lambda threads: fastcorr.conv2d(X4, W4, padding=1, method=method, num_threads=threads)


def _backward(threads):
    return fastcorr.conv2d_backward(X4, W4, np.ones((2, 16, 40, 40), np.float32), padding=1,
                                    num_threads=threads)[1]


PARENT = os.getpid()


def _dask(threads):
    da = pytest.importorskip("dask.array")
    import fastcorr.dask

    x = da.from_array(IMAGE, chunks=(256, 256))
    # dask's own threaded scheduler does not survive fork (its default pool's
    # threads are gone in the child: `(da.ones(8, chunks=4) + 1).sum()
    # .compute(scheduler="threads")` hangs there without fastcorr), so the
    # child computes with the synchronous scheduler; fastcorr's part runs on
    # the threads the call asks for, as anywhere.
    scheduler = "threads" if os.getpid() == PARENT else "synchronous"
    return fastcorr.dask.correlate2d(x, KERNEL, "same", num_threads=threads).compute(scheduler=scheduler)


HOLES = np.where(RNG.random(IMAGE.shape) < 0.05, np.float32(np.nan), IMAGE)


def _normalized(kernel):
    # a rank-1 kernel runs the fused method (OpenMP), another two engine correlations
    return lambda threads: fastcorr.normalized_convolution(HOLES, kernel, num_threads=threads)


CALLS = {
    **{f"correlate2d-{m}": _signal(m) for m in ["direct", "im2col", "fft", "separable", "auto"]},
    **{f"conv2d-{m}": _conv(m) for m in ["direct", "im2col", "winograd"]},
    "conv2d_backward": _backward,
    # template matching: the direct method then the window statistics' thread pool;
    # a stack through the FFT's shared spectrum
    "match_template": lambda threads: fastcorr.match_template(IMAGE, IMAGE[100:108, 200:207], num_threads=threads),
    "match_template-stack": lambda threads: fastcorr.match_template(
        IMAGE, np.stack([IMAGE[:40, :40], IMAGE[50:90, 60:100]]), "sqdiff_normed", num_threads=threads),
    "normalized_convolution-fused": _normalized(SEPARABLE),
    "normalized_convolution-composed": _normalized(np.abs(KERNEL)),  # a sum that can be normalised
}


def _in_child(call, queue):
    try:
        queue.put([np.asarray(call(None)), np.asarray(call(2)), fastcorr.get_num_threads()])
    except BaseException as exc:  # report, never hang the parent
        queue.put(repr(exc))


def _fork_and_run(call):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(call, queue))
    child.start()
    try:
        answer = queue.get(timeout=TIMEOUT)
    except Exception:
        answer = None
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
    assert answer is not None, "the forked child hung (no answer within the timeout)"
    assert not isinstance(answer, str), f"the forked child failed: {answer}"
    return answer


@pytest.mark.parametrize("name", list(CALLS) + ["dask-correlate2d"])
def test_forked_child_after_threads(name):
    call = _dask if name == "dask-correlate2d" else CALLS[name]
    want = np.asarray(call(2))  # the parent runs two threads first
    got_default, got_two, child_threads = _fork_and_run(call)
    np.testing.assert_allclose(got_default, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got_two, want, rtol=1e-5, atol=1e-4)
    assert child_threads == 1
    # ... and the parent still runs threads
    np.testing.assert_allclose(np.asarray(call(2)), want, rtol=1e-5, atol=1e-4)


def _correlate_one(image):
    return fastcorr.correlate2d(image, KERNEL, "same")


def test_fork_pool_of_four_maps_sixteen_images():
    images = [RNG.standard_normal((256, 256)).astype(np.float32) for _ in range(16)]
    with fastcorr.threads(2):
        want = [_correlate_one(im) for im in images]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        got = pool.map_async(_correlate_one, images).get(timeout=TIMEOUT)
    for g, w, im in zip(got, want, images):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(g, ss.correlate2d(im.astype(np.float64), KERNEL.astype(np.float64), "same"),
                                   rtol=1e-4, atol=1e-3)


def test_child_of_a_process_that_never_ran_threads_keeps_them():
    # A fresh interpreter that only imported fastcorr: its forked child may
    # use threads (there is no OpenMP team to lose).
    code = (
        "import multiprocessing as mp, fastcorr\n"
        "def f(q): q.put(fastcorr.get_num_threads())\n"
        "if __name__ == '__main__':\n"
        "    fastcorr.set_num_threads(2)\n"
        "    ctx = mp.get_context('fork'); q = ctx.Queue(); p = ctx.Process(target=f, args=(q,))\n"
        "    p.start(); print(q.get(timeout=60)); p.join()\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"
