"""Compiled import: a downstream Cython extension cimports fastcorr's C-level kernels.

The test writes a tiny extension to a temporary directory, builds it with
setuptools + Cython against ``fastcorr.get_include()`` (with OpenMP when the
compiler has it), and checks that calling the kernels inside ``with nogil``
and inside a ``prange`` gives what ``fastcorr.correlate2d`` gives.
"""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import fastcorr

pytest.importorskip("Cython")
pytest.importorskip("setuptools")

PYX = '''
# cython: language_level=3, boundscheck=False, wraparound=False
from cython.parallel cimport prange
from fastcorr.methods.direct cimport corr2d_f32, corr2d_f64
from fastcorr.methods.im2col cimport im2col_f64
from fastcorr.methods.separable cimport sepcorr2d_f64


def batch_valid(double[:, :, ::1] x, double[:, ::1] w, double[:, :, ::1] out, int threads):
    """out[b] = 'valid' correlation of x[b] with w: one image per OpenMP thread."""
    cdef Py_ssize_t b
    cdef int failures = 0
    for b in prange(x.shape[0], nogil=True, num_threads=threads):
        failures += corr2d_f64(&x[b, 0, 0], x.shape[1], x.shape[2], x.shape[2],
                               &w[0, 0], w.shape[0], w.shape[1],
                               &out[b, 0, 0], out.shape[1], out.shape[2], out.shape[2],
                               0, 0, 0, 0.0, 1)
    return failures


def offset_f64(double[:, ::1] x, double[:, ::1] w, double[:, ::1] out,
               Py_ssize_t off0, Py_ssize_t off1, int boundary, double fill, int threads):
    cdef int status
    with nogil:
        status = corr2d_f64(&x[0, 0], x.shape[0], x.shape[1], x.shape[1],
                            &w[0, 0], w.shape[0], w.shape[1],
                            &out[0, 0], out.shape[0], out.shape[1], out.shape[1],
                            off0, off1, boundary, fill, threads)
    return status


def offset_f32(float[:, ::1] x, float[:, ::1] w, float[:, ::1] out,
               Py_ssize_t off0, Py_ssize_t off1, int boundary, float fill, int threads):
    cdef int status
    with nogil:
        status = corr2d_f32(&x[0, 0], x.shape[0], x.shape[1], x.shape[1],
                            &w[0, 0], w.shape[0], w.shape[1],
                            &out[0, 0], out.shape[0], out.shape[1], out.shape[1],
                            off0, off1, boundary, fill, threads)
    return status

def unfold_f64(double[:, :, ::1] x, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t s,
               Py_ssize_t p, Py_ssize_t d, double[:, ::1] cols, int threads):
    cdef int status
    with nogil:
        status = im2col_f64(&x[0, 0, 0], x.shape[0], x.shape[1], x.shape[2],
                            kh, kw, s, s, p, p, d, d, &cols[0, 0], threads)
    return status


def separable_f64(double[:, ::1] x, double[::1] u, double[::1] v, double[:, ::1] out,
                  Py_ssize_t off0, Py_ssize_t off1, int boundary, int threads):
    cdef int status
    with nogil:
        status = sepcorr2d_f64(&x[0, 0], x.shape[0], x.shape[1], &u[0], u.shape[0], &v[0], v.shape[0],
                               &out[0, 0], out.shape[0], out.shape[1], off0, off1, boundary, 0.0, 0, threads)
    return status
'''

SETUP = '''
import os
from Cython.Build import cythonize
from setuptools import Extension, setup

# The test passes fastcorr.get_include() in the environment, so that this
# build need not import fastcorr (which may be a sanitizer build needing
# LD_PRELOAD); a real project would call fastcorr.get_include() here.
include = os.environ["FASTCORR_INCLUDE"]
flags = os.environ.get("DOWNSTREAM_FLAGS", "").split()
ext = Extension("fc_downstream", ["fc_downstream.pyx"],
                extra_compile_args=flags, extra_link_args=flags)
setup(name="fc_downstream",
      ext_modules=cythonize([ext], include_path=[include], quiet=True),
      script_args=["build_ext", "--inplace"])
'''


# The old cimport paths (fastcorr._direct, ._im2col, ._separable) are aliases
# of the public ones, kept for one release: a module written against them
# still builds and runs.
LEGACY_PYX = '''
# cython: language_level=3, boundscheck=False, wraparound=False
from fastcorr._direct cimport corr2d_f64
from fastcorr._im2col cimport im2col_f64
from fastcorr._separable cimport sepcorr2d_f64


def valid_f64(double[:, ::1] x, double[:, ::1] w, double[:, ::1] out):
    cdef int status
    with nogil:
        status = corr2d_f64(&x[0, 0], x.shape[0], x.shape[1], x.shape[1], &w[0, 0], w.shape[0], w.shape[1],
                          &out[0, 0], out.shape[0], out.shape[1], out.shape[1], 0, 0, 0, 0.0, 1)
    return status


def unfold_f64(double[:, :, ::1] x, Py_ssize_t k, double[:, ::1] cols):
    cdef int status
    with nogil:
        status = im2col_f64(&x[0, 0, 0], x.shape[0], x.shape[1], x.shape[2], k, k, 1, 1, 0, 0, 1, 1,
                          &cols[0, 0], 1)
    return status


def separable_valid_f64(double[:, ::1] x, double[::1] u, double[::1] v, double[:, ::1] out):
    cdef int status
    with nogil:
        status = sepcorr2d_f64(&x[0, 0], x.shape[0], x.shape[1], &u[0], u.shape[0], &v[0], v.shape[0],
                             &out[0, 0], out.shape[0], out.shape[1], 0, 0, 0, 0.0, 0, 1)
    return status
'''


def _build(tmp, source):
    """Build ``source`` as the extension ``fc_downstream`` in ``tmp`` and import it."""
    (tmp / "fc_downstream.pyx").write_text(source)
    (tmp / "setup.py").write_text(SETUP)
    logs = []
    for flags in ("-fopenmp", ""):  # OpenMP if the compiler has it, else serial prange
        env = dict(os.environ, DOWNSTREAM_FLAGS=flags, FASTCORR_INCLUDE=fastcorr.get_include())
        env.pop("LD_PRELOAD", None)  # the compilers need no sanitizer runtime
        proc = subprocess.run([sys.executable, "setup.py"], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=600)
        logs.append(proc.stdout[-3000:] + proc.stderr[-3000:])
        if proc.returncode == 0:
            break
    else:
        pytest.fail("the downstream extension did not build:\n" + "\n----\n".join(logs))
    built = [p for p in os.listdir(tmp) if p.startswith("fc_downstream") and p.endswith((".so", ".pyd"))]
    assert built, os.listdir(tmp)
    spec = importlib.util.spec_from_file_location("fc_downstream", tmp / built[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def downstream(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("downstream"), PYX)


def test_old_cimport_paths_still_work(tmp_path):
    legacy = _build(tmp_path, LEGACY_PYX)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 14))
    w = rng.standard_normal((3, 4))
    out = np.full((10, 11), np.nan)
    assert legacy.valid_f64(x, w, out) == 0
    np.testing.assert_allclose(out, fastcorr.correlate2d(x, w, "valid"), rtol=1e-13, atol=1e-13)
    x3 = rng.standard_normal((2, 6, 7))
    want = fastcorr.im2col(x3, 3)
    cols = np.full(want.shape, np.nan)
    assert legacy.unfold_f64(x3, 3, cols) == 0
    np.testing.assert_array_equal(cols, want)
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    assert legacy.separable_valid_f64(x, u, v, out) == 0
    np.testing.assert_allclose(out, fastcorr.correlate2d(x, np.outer(u, v), "valid"), rtol=1e-12, atol=1e-12)


def test_get_include_holds_the_pxd():
    inc = fastcorr.get_include()
    assert os.path.isabs(inc)
    for path in ["methods/direct.pxd", "methods/im2col.pxd", "methods/separable.pxd", "_direct.pxd"]:
        assert os.path.isfile(os.path.join(inc, "fastcorr", *path.split("/"))), path


def test_prange_batch_matches_correlate2d(downstream):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 20, 23))
    w = rng.standard_normal((3, 4))
    out = np.full((6, 18, 20), np.nan)
    assert downstream.batch_valid(x, w, out, 2) == 0
    for b in range(6):
        np.testing.assert_allclose(out[b], fastcorr.correlate2d(x[b], w, "valid"), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("boundary,code", [("fill", 0), ("wrap", 1), ("symm", 2)])
def test_nogil_call_matches_correlate2d(downstream, boundary, code):
    rng = np.random.default_rng(code)
    x = rng.standard_normal((15, 17))
    w = rng.standard_normal((4, 3))
    # mode 'full': output (H + kh - 1, W + kw - 1) starting at offset -(k - 1)
    want = fastcorr.correlate2d(x, w, "full", boundary, fillvalue=0.5)
    out = np.empty(want.shape)
    assert downstream.offset_f64(x, w, out, -3, -2, code, 0.5, 2) == 0
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    want32 = fastcorr.correlate2d(x32, w32, "full", boundary, fillvalue=0.5)
    out32 = np.empty(want32.shape, np.float32)
    assert downstream.offset_f32(x32, w32, out32, -3, -2, code, 0.5, 1) == 0
    np.testing.assert_allclose(out32, want32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_nogil_im2col_matches_unfold(downstream, stride, padding, dilation):
    rng = np.random.default_rng(stride * 7 + padding)
    x = rng.standard_normal((3, 11, 13))
    want = fastcorr.im2col(x, (3, 2), dilation=dilation, padding=padding, stride=stride)
    cols = np.full(want.shape, np.nan)
    assert downstream.unfold_f64(x, 3, 2, stride, padding, dilation, cols, 2) == 0
    np.testing.assert_array_equal(cols, want)


@pytest.mark.parametrize("boundary,code", [("fill", 0), ("wrap", 1), ("symm", 2)])
def test_nogil_separable_matches_correlate2d(downstream, boundary, code):
    rng = np.random.default_rng(10 + code)
    x = rng.standard_normal((30, 26))
    u, v = rng.standard_normal(5), rng.standard_normal(4)
    want = fastcorr.correlate2d(x, np.outer(u, v), "same", boundary)
    out = np.full(want.shape, np.nan)
    # 'same' for a 5 x 4 kernel starts at offset (-(5 - 1) // 2, -(4 - 1) // 2) = (-2, -1)
    assert downstream.separable_f64(x, u, v, out, -2, -1, code, 2) == 0
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
