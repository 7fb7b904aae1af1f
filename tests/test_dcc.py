import numpy as np
import pytest

from drb.errors import DataError
from indicators.dcc import (
    _loglik,
    _loglik_grad_kernel,
    _loglik_kernel,
    dcc_correlation,
    dcc_step,
    fit_dcc,
    q_to_corr,
    simulate_dcc,
)


@pytest.mark.parametrize(
    "a, b, n, seed",
    [(0.05, 0.90, 3, 1), (0.03, 0.95, 3, 2), (0.08, 0.85, 5, 5), (0.02, 0.97, 5, 6), (0.10, 0.80, 3, 7)],
)
def test_recovers_known_parameters_T3000(a, b, n, seed):
    # Measured: (0.0445, 0.8963), (0.0255, 0.9407), (0.0844, 0.8431), (0.0196, 0.9689),
    # (0.0933, 0.8022): within about two standard errors at T = 3000.
    r = fit_dcc(simulate_dcc(a, b, 3000, n, seed))
    assert r.converged
    assert abs(r.a - a) < 0.01 and abs(r.b - b) < 0.015
    assert r.a > 0 and r.b > 0 and r.a + r.b < 1
    # the optimum: no neighbour on a small grid is better
    qbar = r.qbar
    for da, db in [(0.002, 0), (-0.002, 0), (0, 0.002), (0, -0.002)]:
        assert _loglik_kernel(simulate_dcc(a, b, 3000, n, seed), r.a + da, r.b + db, qbar) <= r.loglik + 1e-9


@pytest.mark.parametrize("n", [2, 4, 7])
def test_analytic_gradient_matches_finite_differences(n):
    z = simulate_dcc(0.04, 0.93, 400, n, 3)
    qbar = z.T @ z / 400
    for a, b in [(0.04, 0.93), (0.01, 0.7), (0.1, 0.85)]:
        ll, ga, gb = _loglik_grad_kernel(z, a, b, qbar)
        assert ll == pytest.approx(_loglik_kernel(z, a, b, qbar), rel=1e-13)
        h = 1e-6
        fa = (_loglik_kernel(z, a + h, b, qbar) - _loglik_kernel(z, a - h, b, qbar)) / (2 * h)
        fb = (_loglik_kernel(z, a, b + h, qbar) - _loglik_kernel(z, a, b - h, qbar)) / (2 * h)
        assert ga == pytest.approx(fa, rel=1e-6) and gb == pytest.approx(fb, rel=1e-6)


def test_compiled_likelihood_equals_vectorized_path():
    z = simulate_dcc(0.04, 0.93, 300, 4, 3)
    qbar = z.T @ z / 300
    assert _loglik_kernel(z, 0.04, 0.93, qbar) == pytest.approx(_loglik(z, 0.04, 0.93, qbar)[0], rel=1e-12)


def test_vectorized_recursion_equals_online_steps():
    z = simulate_dcc(0.04, 0.93, 200, 3, 4)
    qbar = z.T @ z / 200
    path = dcc_correlation(z, 0.04, 0.93, qbar, include_forecast=True)
    q = qbar.copy()
    for t in range(200):
        np.testing.assert_allclose(path[t], q_to_corr(q), atol=1e-13)
        q = dcc_step(q, z[t], 0.04, 0.93, qbar)
    np.testing.assert_allclose(path[200], q_to_corr(q), atol=1e-13)
    r = fit_dcc(z)
    np.testing.assert_allclose(r.corr, dcc_correlation(z, r.a, r.b), atol=1e-13)
    np.testing.assert_allclose(np.einsum("tii->ti", r.corr), 1.0)


def test_invalid_inputs():
    with pytest.raises(DataError):
        fit_dcc(np.ones((3, 4)))
    with pytest.raises(DataError):
        dcc_correlation(np.ones((10, 2)), 0.5, 0.6)
