"""The fitter's compiled kernels on hand-made cases (the trust-region step itself is checked
against scipy step for step in tests/test_fit.py)."""

import numpy as np

from lawsearch.fit.jacobian import scaled_gradient
from lawsearch.fit.projection import linear_coefficients


def test_linear_coefficients_solve_each_run_leaving_out_bad_rows_and_columns():
    rng = np.random.default_rng(0)
    n = 16
    D = rng.standard_normal((2, n, 2))
    base = rng.standard_normal((2, n))
    true = np.array([[2.0, -3.0], [0.5, 7.0]])
    y = base + np.einsum("rnk,rk->rn", D, true)
    weight = np.ones((2, n))
    D[0, 3, 1] = np.nan  # a non-finite row of run 0 is left out, the solve stays exact
    D[1, :, 1] = 0.0  # a zero column of run 1: its coefficient is 0, the other column solved alone
    y[1] = base[1] + D[1, :, 0] * 0.5
    lower, upper = np.full((2, 2), -1e9), np.full((2, 2), 1e9)
    coef = linear_coefficients(D, base, y, weight, lower, upper, 1e-10)
    np.testing.assert_allclose(coef, [[2.0, -3.0], [0.5, 0.0]], atol=1e-10)
    upper[0, 1] = -4.0  # a coefficient beyond its bound is clipped to it
    assert linear_coefficients(D, base, y, weight, lower, upper, 1e-10)[0, 1] == -4.0


def test_linear_coefficients_weight_the_rows():
    D = np.ones((1, 3, 1))
    base = np.zeros((1, 3))
    y = np.array([[1.0, 2.0, 4.0]])
    weight = np.array([[1.0, 1.0, 2.0]])  # weighted mean: (1 + 2 + 4 * 4) / (1 + 1 + 4)
    coef = linear_coefficients(D, base, y, weight, np.full((1, 1), -10.0), np.full((1, 1), 10.0), 1e-10)
    assert np.isclose(coef[0, 0], 19.0 / 6.0)


def test_scaled_gradient_zeroes_what_is_not_finite_and_flags_the_run():
    grad = np.array([[[1.0, 2.0], [np.inf, 1.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0], [np.nan, 5.0]]])
    factor = np.array([[2.0, 2.0, 0.5], [1.0, 1.0, 1.0]])
    pred = np.array([[1.0, 1.0, np.inf], [1.0, 1.0, 1.0]])
    mask = np.array([[True, True, True], [True, True, False]])  # run 1's last row is padding
    J, finite = scaled_gradient(grad, factor, pred, mask)
    np.testing.assert_array_equal(J[0], [[2.0, 4.0], [0.0, 2.0], [0.0, 0.0]])  # inf gradient; inf prediction
    np.testing.assert_array_equal(J[1], [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(finite, [False, True])  # a NaN on a padded row does not count
