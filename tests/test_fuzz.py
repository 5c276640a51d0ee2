"""Fuzzing of the argument layer: hostile arguments never crash the interpreter.

Each public function is called with random mixtures of valid and hostile
arguments (wrong types, huge or negative sizes, NaN/inf, zero-size axes,
absurd thread counts, shapes whose products overflow 32/64-bit indices).
The only acceptable outcomes are a result or ValueError / TypeError /
MemoryError with a message. The run is bounded in time:
FASTCORR_FUZZ_SECONDS (default 10; CI sets more).
"""
import os
import random
import time
import warnings

import numpy as np
import pytest

import fastcorr

SECONDS = float(os.environ.get("FASTCORR_FUZZ_SECONDS", "10"))
ACCEPTED = (ValueError, TypeError, MemoryError)


class Huge:
    """An array-like claiming an enormous shape (numpy must refuse it)."""

    shape = (2**40, 2**40)

    def __array__(self, dtype=None, copy=None):
        raise MemoryError("Huge: refusing to materialise")


def hostile_arrays(rnd):
    choices = [
        lambda: np.ones((rnd.randint(0, 6), rnd.randint(0, 6))),
        lambda: np.full((3, 3), np.nan),
        lambda: np.full((2, 4), np.inf, dtype=np.float32),
        lambda: np.ones((3, 3), dtype=rnd.choice(["int8", "uint16", "complex64", "float16", "longdouble", ">f4"])),
        lambda: np.ones(rnd.randint(0, 4)),
        lambda: np.ones((2, 2, 2)),
        lambda: np.zeros((0, 0)),
        lambda: np.empty((1, 2**31), dtype=np.uint8)[:, :0],
        lambda: np.broadcast_to(np.float32(1), (2**20, 2**20)),  # 2**40 elements, no memory
        lambda: [[1, 2], [3]],
        lambda: "abc",
        lambda: None,
        lambda: 3.5,
        lambda: {"a": 1},
        lambda: np.array([[object()]]),
        lambda: Huge(),
        lambda: np.ones((3, 3))[::-1, ::2],
    ]
    return rnd.choice(choices)()


def hostile_scalars(rnd):
    return rnd.choice([0, -1, 1, 2, 2**31, 2**63, -(2**63), 10**30, 1.5, float("nan"), float("inf"),
                       None, "2", [1], (1, 2), 1 + 1j, True, np.int64(3)])


def signal_call(rnd):
    func = rnd.choice([fastcorr.correlate2d, fastcorr.convolve2d])
    kwargs = {}
    if rnd.random() < 0.5:
        kwargs["mode"] = rnd.choice(["full", "same", "valid", "bogus", None, 3])
    if rnd.random() < 0.5:
        kwargs["boundary"] = rnd.choice(["fill", "wrap", "symm", "circular", "reflect", None])
    if rnd.random() < 0.3:
        kwargs["fillvalue"] = hostile_scalars(rnd)
    if rnd.random() < 0.3:
        kwargs["method"] = rnd.choice(["auto", "direct", "im2col", "fft", "separable", "x", None])
    if rnd.random() < 0.3:
        kwargs["num_threads"] = hostile_scalars(rnd)
    return func, (hostile_arrays(rnd), hostile_arrays(rnd)), kwargs


def layer_call(rnd):
    names = [n for n in ("conv2d", "conv2d_backward", "im2col", "col2im") if hasattr(fastcorr, n)]
    if not names:
        return signal_call(rnd)
    name = rnd.choice(names)
    func = getattr(fastcorr, name)
    x = rnd.choice([np.ones((1, 2, 5, 5)), np.ones((2, 5, 5)), hostile_arrays(rnd)])
    w = rnd.choice([np.ones((3, 2, 3, 3)), np.ones((2, 1, 2, 2)), hostile_arrays(rnd)])
    kwargs = {}
    for key in ("stride", "padding", "dilation", "groups"):
        if rnd.random() < 0.4:
            kwargs[key] = rnd.choice([hostile_scalars(rnd), "same", "valid", (1, 2), (0, -1), (2**62, 1)])
    if name == "conv2d":
        return func, (x, w), kwargs
    if name == "conv2d_backward":
        return func, (x, w, hostile_arrays(rnd)), kwargs
    kwargs.pop("groups", None)
    size = rnd.choice([3, (2, 2), 0, -1, 2**40, "a", (1, 2, 3)])
    if name == "im2col":
        return func, (x, size), kwargs
    return func, (hostile_arrays(rnd), rnd.choice([(5, 5), 5, -1, (2**62, 2**62)]), size), kwargs


def matching_call(rnd):
    if rnd.random() < 0.25:
        scores = rnd.choice([np.random.default_rng(rnd.randint(0, 9)).random((7, 9)), hostile_arrays(rnd)])
        kwargs = {}
        for key, values in (("num_peaks", [1, 3, 0, -2, 2**63, 1.5, None]), ("min_distance", [1, 2, 0, 2**62, "a"]),
                            ("threshold", [None, 0.5, float("nan"), float("inf"), "x"]),
                            ("subpixel", [None, "parabolic", "gaussian", "centroid", "spline", 3]),
                            ("minimize", [False, True, 1, None])):
            if rnd.random() < 0.4:
                kwargs[key] = rnd.choice(values)
        return fastcorr.peaks, (scores,), kwargs
    rng = np.random.default_rng(rnd.randint(0, 9))
    image = rnd.choice([rng.random((12, 15)), rng.random((9, 11, 3)).astype(np.float32), hostile_arrays(rnd)])
    template = rnd.choice([rng.random((3, 4)), rng.random((2, 3, 3)), rng.random((4, 3, 2, 3)), hostile_arrays(rnd)])
    kwargs = {}
    if rnd.random() < 0.5:
        kwargs["method"] = rnd.choice(["sqdiff", "ccoeff_normed", "ccorr", 0, 5, 6, -1, True, None, "x"])
    if rnd.random() < 0.3:
        kwargs["mask"] = rnd.choice([rng.random((3, 4)) > 0.5, -np.ones((3, 4)), hostile_arrays(rnd)])
    if rnd.random() < 0.3:
        kwargs["pad_input"] = rnd.choice([True, False, 1, None])
    if rnd.random() < 0.3:
        kwargs["mode"] = rnd.choice(["constant", "reflect", "wrap", "mean", "linear_ramp", "bogus", None])
    for key in ("constant_values", "overlap_ratio", "num_threads"):
        if rnd.random() < 0.2:
            kwargs[key] = hostile_scalars(rnd)
    return fastcorr.match_template, (image, template), kwargs


def test_fuzz_never_crashes():
    rnd = random.Random(1234)
    deadline = time.monotonic() + SECONDS
    calls = outcomes = 0
    while time.monotonic() < deadline:
        draw = rnd.random()
        func, args, kwargs = (signal_call if draw < 0.5 else layer_call if draw < 0.8 else matching_call)(rnd)
        calls += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.monotonic()
            try:
                out = func(*args, **kwargs)
            except ACCEPTED as exc:
                assert str(exc), f"{func.__name__} raised {type(exc).__name__} without a message"
                continue
            except Exception as exc:  # anything else is a bug in argument checking
                pytest.fail(f"{func.__name__}{args!r:.200} {kwargs} raised {type(exc).__name__}: {exc}")
        outcomes += 1
        assert out is not None
        slow = time.monotonic() - t0
        if slow > 1:
            print(f"slow call ({slow:.1f} s): {func.__name__}{args!r:.300} {kwargs}")
    print(f"fuzz: {calls} calls, {outcomes} returned results")
    assert calls > 0
