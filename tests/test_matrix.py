"""correlation_matrix against correlate2d / convolve2d and scipy.signal, every mode x boundary."""
import numpy as np
import pytest
import scipy.signal
import scipy.sparse

import fastcorr

MODES = ["valid", "same", "full"]
BOUNDARIES = ["fill", "wrap", "symm"]
SHAPES = [((3, 3), (2, 2)), ((6, 8), (1, 2)), ((7, 5), (4, 3)), ((5, 6), (2, 5)), ((2, 3), (5, 4)), ((1, 1), (3, 3))]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", SHAPES)
def test_matches_correlate2d(shapes, mode, boundary):
    xs, ks = shapes
    rng = np.random.default_rng(sum(xs) * 7 + sum(ks))
    x = rng.standard_normal(xs)
    k = rng.standard_normal(ks)
    m = fastcorr.correlation_matrix(k, xs, mode, boundary)
    assert isinstance(m, scipy.sparse.csr_array)
    if mode == "valid" and not (all(a >= b for a, b in zip(xs, ks)) or all(b >= a for a, b in zip(xs, ks))):
        pytest.skip("not a valid-mode case")
    want = scipy.signal.correlate2d(x, k, mode, boundary)
    assert m.shape == (want.size, x.size)
    np.testing.assert_allclose(m @ x.ravel(), want.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m @ x.ravel(), fastcorr.correlate2d(x, k, mode, boundary).ravel(), atol=1e-12)
    mc = fastcorr.correlation_matrix(k, xs, mode, boundary, convolve=True)
    np.testing.assert_allclose(mc @ x.ravel(), scipy.signal.convolve2d(x, k, mode, boundary).ravel(), atol=1e-12)


def test_textbook_matrix_and_rows():
    k = np.array([[0.0, 1.0], [2.0, 3.0]])
    m = fastcorr.correlation_matrix(k, (3, 3))
    assert m.nnz == 4 * 4 - 4  # the zero tap is not stored
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal((m @ x.ravel()).reshape(2, 2), [[19, 25], [37, 43]])
    # Row (i, j) of M is the kernel placed at (i, j) in a zero image.
    for i in range(2):
        for j in range(2):
            placed = np.zeros((3, 3))
            placed[i:i + 2, j:j + 2] = k
            np.testing.assert_array_equal(m[[i * 2 + j]].toarray().ravel(), placed.ravel())


def test_wrap_duplicates_are_summed():
    # a kernel wider than the image under wrap reads the same pixel twice
    k = np.arange(1.0, 6.0)[None, :]
    x = np.array([[1.0, 10.0]])
    m = fastcorr.correlation_matrix(k, x.shape, "same", "wrap")
    np.testing.assert_allclose(m @ x.ravel(), scipy.signal.correlate2d(x, k, "same", "wrap").ravel())


def test_complex_and_integer_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))
    k = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    for mode in MODES:
        m = fastcorr.correlation_matrix(k, x.shape, mode, "symm")
        np.testing.assert_allclose(m @ x.ravel(), scipy.signal.correlate2d(x, k, mode, "symm").ravel(), atol=1e-12)
    ki = np.array([[1, -2], [3, 4]])
    xi = rng.integers(-5, 5, size=(4, 4))
    mi = fastcorr.correlation_matrix(ki, xi.shape, "full")
    assert mi.dtype.kind == "i"
    np.testing.assert_array_equal(mi @ xi.ravel(), scipy.signal.correlate2d(xi, ki, "full").ravel())


def test_empty_and_errors():
    m = fastcorr.correlation_matrix(np.ones((2, 2)), (0, 4), "full")
    assert m.shape == (5, 0) and m.nnz == 0  # full output (1, 5) of an empty image
    with pytest.raises(ValueError, match="mode"):
        fastcorr.correlation_matrix(np.ones((2, 2)), (3, 3), "middle")
    with pytest.raises(ValueError, match="boundary"):
        fastcorr.correlation_matrix(np.ones((2, 2)), (3, 3), "valid", "reflect")
    with pytest.raises(ValueError, match="valid"):
        fastcorr.correlation_matrix(np.ones((2, 4)), (3, 3), "valid")
    with pytest.raises(TypeError, match="input_shape"):
        fastcorr.correlation_matrix(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="kernel must be a 2-D"):
        fastcorr.correlation_matrix(np.ones(3), (3, 3))
    with pytest.raises(TypeError, match="kernel"):
        fastcorr.correlation_matrix([["a"]], (3, 3))
