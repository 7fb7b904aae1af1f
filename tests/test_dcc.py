import numpy as np
import pytest

from drb.errors import DataError
from indicators.dcc import _loglik, _loglik_kernel, dcc_correlation, dcc_step, fit_dcc, q_to_corr


def simulate_dcc(a, b, T, n, seed, rho=0.4):
    rng = np.random.default_rng(seed)
    qbar = np.full((n, n), rho) + (1 - rho) * np.eye(n)
    q, z = qbar.copy(), np.empty((T, n))
    for t in range(T):
        z[t] = np.linalg.cholesky(q_to_corr(q)) @ rng.standard_normal(n)
        q = (1 - a - b) * qbar + a * np.outer(z[t], z[t]) + b * q
    return z


def test_recovers_known_parameters_T3000():
    for (a, b), seed in [((0.05, 0.90), 1), ((0.03, 0.95), 2)]:
        r = fit_dcc(simulate_dcc(a, b, 3000, 3, seed))
        assert r.converged
        assert abs(r.a - a) < 0.02 and abs(r.b - b) < 0.03
        assert r.a > 0 and r.b > 0 and r.a + r.b < 1


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
