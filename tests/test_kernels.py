"""fastcorr.kernels against analytic derivatives, exact rational identities and scipy.ndimage."""
from fractions import Fraction
from math import comb, factorial

import numpy as np
import pytest
import scipy.ndimage as ndi

import fastcorr
from fastcorr import kernels


@pytest.mark.parametrize("order", range(0, 7))
def test_minimal_stencil_is_signed_binomial(order):
    k = kernels.finite_difference(order)
    expected = [(-1) ** (order - i) * comb(order, i) for i in range(order + 1)]
    assert k.shape == (1, order + 1)
    np.testing.assert_array_equal(k.ravel(), expected)
    np.testing.assert_array_equal(kernels.finite_difference(order, axis=0), k.T)


@pytest.mark.parametrize("order,size", [(1, 2), (1, 3), (1, 5), (1, 7), (2, 3), (2, 5), (2, 6), (3, 4), (3, 5), (4, 7), (5, 8)])
def test_fornberg_weights_exact_on_monomials(order, size):
    # sum_i c_i p(x_i) == p^(order)(0) exactly, for every monomial of degree < size.
    points = [Fraction(2 * i - (size - 1), 2) for i in range(size)]
    c = kernels.fornberg_weights(order, points)
    assert all(isinstance(ci, Fraction) for ci in c)
    for degree in range(size):
        lhs = sum(ci * p**degree for ci, p in zip(c, points))
        rhs = factorial(order) if degree == order else 0  # d^order/dx^order x^degree at 0
        assert lhs == rhs, (degree, lhs, rhs)
    # The float kernel holds the exact weights, rounded.
    np.testing.assert_array_equal(kernels.finite_difference(order, size).ravel(), [float(ci) for ci in c])


def test_fornberg_known_tables():
    assert kernels.fornberg_weights(1, [-1, 0, 1]) == [Fraction(-1, 2), 0, Fraction(1, 2)]
    assert kernels.fornberg_weights(4, [-2, -1, 0, 1, 2]) == [1, -4, 6, -4, 1]
    # one-sided (forward) stencil at an end point
    assert kernels.fornberg_weights(1, [0, 1, 2]) == [Fraction(-3, 2), 2, Fraction(-1, 2)]


@pytest.mark.parametrize("order,size", [(1, 2), (1, 5), (2, 3), (2, 5), (3, 4), (3, 6), (4, 5)])
def test_finite_difference_differentiates_polynomials(order, size):
    # Sample a polynomial of degree size-1 along the columns; correlation in
    # 'valid' mode evaluates the derivative at each stencil centre.
    rng = np.random.default_rng(order * 10 + size)
    coeffs = rng.integers(-3, 4, size=size).astype(float)  # degree size - 1
    p = np.polynomial.Polynomial(coeffs)
    t = np.arange(12.0) - 5.0
    image = np.vstack([p(t), 2 * p(t)])
    for axis, x in ((1, image), (0, image.T)):
        k = kernels.finite_difference(order, size, axis=axis)
        got = fastcorr.correlate2d(x, k, "valid")
        centres = t[: len(t) - size + 1] + (size - 1) / 2
        want = p.deriv(order)(centres)
        want = np.vstack([want, 2 * want])
        if axis == 0:
            want = want.T
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-7 * np.abs(coeffs).sum() * 6.0**size)


def test_higher_accuracy_stencil_is_more_accurate():
    t = np.linspace(0, 1, 41)
    h = t[1] - t[0]
    x = np.sin(3 * t)[None, :]
    errs = []
    for size in (3, 5, 7):
        d = fastcorr.correlate2d(x, kernels.finite_difference(1, size), "valid") / h
        c = (size - 1) // 2
        errs.append(np.abs(d - 3 * np.cos(3 * t[c: len(t) - c])).max())
    # errors O(h^2), O(h^4), O(h^6) with h = 1/40
    assert errs[0] > 100 * errs[1] and errs[1] > 100 * errs[2]


def test_finite_difference_arguments():
    with pytest.raises(ValueError, match="size"):
        kernels.finite_difference(2, size=2)
    with pytest.raises(ValueError, match="order"):
        kernels.finite_difference(-1)
    with pytest.raises(ValueError, match="axis"):
        kernels.finite_difference(1, axis=2)
    with pytest.raises(TypeError, match="size"):
        kernels.finite_difference(1, size=2.5)


BOUNDARY_TO_NDIMAGE = {"symm": "reflect", "wrap": "wrap", "fill": "constant"}


@pytest.mark.parametrize("boundary", ["symm", "wrap", "fill"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", ["sobel", "prewitt"])
def test_gradient_kernels_match_ndimage(name, axis, boundary):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((13, 17))
    k = getattr(kernels, name)(axis)
    got = fastcorr.correlate2d(x, k, "same", boundary)
    want = getattr(ndi, name)(x, axis=axis, mode=BOUNDARY_TO_NDIMAGE[boundary])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_gradient_signs_and_normalisation():
    ramp = np.add.outer(2.0 * np.arange(6), 5.0 * np.arange(7))  # d/drow = 2, d/dcol = 5
    for fn, norm in ((kernels.sobel, 8), (kernels.prewitt, 6), (kernels.scharr, 32)):
        np.testing.assert_allclose(fastcorr.correlate2d(ramp, fn(1), "valid") / norm, 5.0)
        np.testing.assert_allclose(fastcorr.correlate2d(ramp, fn(0), "valid") / norm, 2.0)
    np.testing.assert_array_equal(kernels.scharr(1), [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])


@pytest.mark.parametrize("boundary", ["symm", "wrap", "fill"])
def test_laplacian_matches_ndimage(boundary):
    x = np.random.default_rng(2).standard_normal((9, 11))
    got = fastcorr.correlate2d(x, kernels.laplacian(), "same", boundary)
    np.testing.assert_allclose(got, ndi.laplace(x, mode=BOUNDARY_TO_NDIMAGE[boundary]), atol=1e-12)


def test_laplacian_of_quadratic():
    r, c = np.meshgrid(np.arange(8.0), np.arange(9.0), indexing="ij")
    f = 3 * r**2 + 0.5 * c**2 + r * c  # Laplacian = 6 + 1
    np.testing.assert_allclose(fastcorr.correlate2d(f, kernels.laplacian(), "valid"), 7.0)
    np.testing.assert_allclose(fastcorr.correlate2d(f, kernels.laplacian(diagonal=True), "valid"), 21.0)


def test_box_is_window_sum():
    x = np.random.default_rng(3).standard_normal((10, 12))
    got = fastcorr.correlate2d(x, kernels.box((3, 4)), "valid")
    want = np.array([[x[i:i + 3, j:j + 4].sum() for j in range(9)] for i in range(8)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert kernels.box(2).shape == (2, 2)
    np.testing.assert_allclose(fastcorr.correlate2d(x, kernels.box((3, 3)) / 9, "same", "symm"),
                               ndi.uniform_filter(x, 3, mode="reflect"), atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        kernels.box((0, 3))


def test_box_integrates_like_the_integral():
    # sum of f over a window of the unit grid ~ integral (midpoint rule)
    t = np.arange(0, 100) + 0.5
    f = (t / 100.0) ** 2
    total = fastcorr.correlate2d(f[None, :], kernels.box((1, 100)), "valid")[0, 0] / 100.0
    assert abs(total - 1 / 3) < 1e-4


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.3, (1.0, 2.0)])
def test_gaussian_matches_ndimage(sigma):
    x = np.random.default_rng(4).standard_normal((30, 31))
    g = kernels.gaussian(sigma)
    assert abs(g.sum() - 1) < 1e-12
    np.testing.assert_allclose(g, g[::-1, ::-1])
    got = fastcorr.correlate2d(x, g, "same", "symm")
    np.testing.assert_allclose(got, ndi.gaussian_filter(x, sigma, mode="reflect"), atol=1e-12)


def test_gaussian_radius_and_errors():
    assert kernels.gaussian(1.0, radius=2).shape == (5, 5)
    assert kernels.gaussian((1.0, 2.0), radius=(1, 3)).shape == (3, 7)
    with pytest.raises(ValueError, match="sigma"):
        kernels.gaussian(0)
    with pytest.raises(TypeError, match="sigma"):
        kernels.gaussian("1")
    with pytest.raises(ValueError, match="radius"):
        kernels.gaussian(1.0, radius=-1)
