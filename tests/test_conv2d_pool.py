"""conv2d's fresh outputs from the output pool (``_engine.conv.OutputPool``):
results still equal the float64 reference, a block is never reused while any
view of the array it backed is alive, freed blocks are reused, and the free
list stays within its bound."""
import gc

import numpy as np
import pytest

import fastcorr
from fastcorr._engine import conv as _conv

from test_conv2d import naive_conv2d

RNG = np.random.default_rng(77)


@pytest.fixture(autouse=True)
def small_pool(monkeypatch):
    """A pool that takes these tests' small outputs too."""
    monkeypatch.setattr(_conv, "output_pool", _conv.OutputPool(min_bytes=1024, after_faults=0))
    monkeypatch.setattr(_conv, "_POOL_OUTPUTS", True)


def _layer(n=1, cin=3, cout=16, h=64, w=64, k=3):
    x = RNG.standard_normal((n, cin, h, w)).astype(np.float32)
    wt = RNG.standard_normal((cout, cin, k, k)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    return x, wt, b


def test_pooled_output_matches_reference():
    x, wt, b = _layer(cin=2, cout=5, h=23, w=30, k=7)
    for _ in range(3):  # the later calls run on reused blocks
        y = fastcorr.conv2d(x, wt, b, 2, 3)
        ref = naive_conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), 2, 3, 1, 1, "zeros")
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        assert y.dtype == np.float32 and y.flags.c_contiguous and y.flags.writeable
        assert not y.flags.owndata  # a pooled block
        del y


@pytest.mark.parametrize("derive", [lambda y: y[0, 3:5], lambda y: y.T, lambda y: y.reshape(-1)[::7],
                                    lambda y: memoryview(y), lambda y: y.view(np.int32)])
def test_views_keep_their_block(derive):
    x, wt, b = _layer()
    y = fastcorr.conv2d(x, wt, b, 1, 1)
    expect = np.array(y, copy=True)
    v = derive(y)
    del y
    gc.collect()
    # the same size again, with other values: must not land on v's block
    others = [fastcorr.conv2d(-x, wt, b, 1, 1) for _ in range(3)]
    np.testing.assert_array_equal(np.asarray(v), np.asarray(derive(expect)))
    assert all(np.may_share_memory(o, np.asarray(v)) is False for o in others)


def test_freed_blocks_are_reused_and_bounded():
    pool = _conv.OutputPool(min_bytes=1024, max_bytes=3 * 4096 * 4)
    a = pool.empty((4, 1024), np.float32)
    addr = a.__array_interface__["data"][0]
    del a
    assert pool.free_bytes() == 4096 * 4
    b = pool.empty((1024, 4), np.float32)  # same bytes, other shape: the same block
    assert b.__array_interface__["data"][0] == addr and pool.free_bytes() == 0
    many = [pool.empty(4096, np.float32) for _ in range(5)]
    del b, many
    assert pool.free_bytes() <= pool.max_bytes
    small, huge = pool.empty(10, np.float32), pool.empty(1 << 20, np.float32)  # not pooled
    assert small.flags.owndata and huge.flags.owndata
    pool.clear()
    assert pool.free_bytes() == 0


def test_out_is_written_in_place_not_pooled():
    x, wt, b = _layer()
    out = np.empty((1, 16, 64, 64), np.float32)
    y = fastcorr.conv2d(x, wt, b, 1, 1, out=out)
    assert y is out
    np.testing.assert_array_equal(out, fastcorr.conv2d(x, wt, b, 1, 1))


def test_pool_serves_only_sizes_that_fault():
    pool = _conv.OutputPool(min_bytes=1024, max_bytes=1 << 20, after_faults=2)
    nbytes = 64 * 4096
    assert pool.watches(nbytes) and not pool.wants(nbytes)
    pool.note_faults(nbytes, 3)  # a few faults: the heap kept the memory
    pool.note_faults(nbytes, 64)
    assert not pool.wants(nbytes)
    pool.note_faults(nbytes, 60)
    assert pool.wants(nbytes) and not pool.watches(nbytes)
    assert not pool.wants(512) and not pool.watches(512) and not pool.watches(1 << 21)


def test_forward_counts_faults_then_pools(monkeypatch):
    pool = _conv.OutputPool(min_bytes=1024, after_faults=2)
    monkeypatch.setattr(_conv, "output_pool", pool)
    x, wt, b = _layer()
    nbytes = 16 * 64 * 64 * 4
    pool.note_faults(nbytes, nbytes // 4096)
    pool.note_faults(nbytes, nbytes // 4096)
    y = fastcorr.conv2d(x, wt, b, 1, 1)
    assert not y.flags.owndata
    np.testing.assert_array_equal(y, fastcorr.conv2d(x, wt, b, 1, 1, out=np.empty_like(y)))
    y1 = fastcorr.conv2d(x[0], wt, b, 1, 1)  # unbatched: the same block size
    np.testing.assert_array_equal(y1, y[0])
