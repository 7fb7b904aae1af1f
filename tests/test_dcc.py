import numpy as np
import pytest

from drb.errors import DataError
from indicators.dcc import (
    _loglik_kernel,
    _loglik_score_kernel,
    _newton_dcc,
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


def _reference_loglik(z, a, b, qbar):
    """Plain numpy DCC log-likelihood, one bar at a time (independent of the module's code paths)."""
    q, total = qbar.copy(), 0.0
    for t in range(z.shape[0]):
        d = 1.0 / np.sqrt(np.diag(q))
        r = q * np.outer(d, d)
        total += np.linalg.slogdet(r)[1] + z[t] @ np.linalg.solve(r, z[t]) - z[t] @ z[t]
        q = (1 - a - b) * qbar + a * np.outer(z[t], z[t]) + b * q
    return -0.5 * total


@pytest.mark.parametrize("n", [2, 4, 7, 20])
def test_analytic_gradient_matches_finite_differences(n):
    T = 400 if n < 20 else 120
    z = simulate_dcc(0.04, 0.93, T, n, 3)
    qbar = z.T @ z / T
    for a, b in [(0.04, 0.93), (0.01, 0.7), (0.1, 0.85)]:
        ll, ga, gb, saa, sab, sbb = _loglik_score_kernel(z, a, b, qbar)
        assert ll == pytest.approx(_reference_loglik(z, a, b, qbar), rel=1e-12)
        assert ll == pytest.approx(_loglik_kernel(z, a, b, qbar), rel=1e-12)
        h = 1e-6
        fa = (_loglik_kernel(z, a + h, b, qbar) - _loglik_kernel(z, a - h, b, qbar)) / (2 * h)
        fb = (_loglik_kernel(z, a, b + h, qbar) - _loglik_kernel(z, a, b - h, qbar)) / (2 * h)
        assert ga == pytest.approx(fa, rel=1e-6) and gb == pytest.approx(fb, rel=1e-6)
        # BHHH: sum of outer products of the per-bar scores (PD, Cauchy-Schwarz)
        assert saa > 0 and sbb > 0 and sab * sab <= saa * sbb


def test_per_bar_scores_sum_to_bhhh():
    # the BHHH sums are over the per-bar scores d l_t / d(a, b); l_t is the difference of the
    # likelihoods of the prefixes of length t and t - 1 (finite differences as the reference)
    z = simulate_dcc(0.05, 0.9, 40, 3, 8)
    qbar = z.T @ z / 40
    a, b, h = 0.05, 0.9, 1e-6
    s = []
    for t in range(1, 41):
        def lt(aa, bb, t=t):
            prev = _loglik_kernel(z[: t - 1], aa, bb, qbar) if t > 1 else 0.0
            return _loglik_kernel(z[:t], aa, bb, qbar) - prev
        s.append([(lt(a + h, b) - lt(a - h, b)) / (2 * h), (lt(a, b + h) - lt(a, b - h)) / (2 * h)])
    s = np.array(s)
    _, _, _, saa, sab, sbb = _loglik_score_kernel(z, a, b, qbar)
    np.testing.assert_allclose([saa, sab, sbb], [s[:, 0] @ s[:, 0], s[:, 0] @ s[:, 1], s[:, 1] @ s[:, 1]], rtol=1e-5)


def test_newton_reaches_the_lbfgsb_optimum_and_skips_a_converged_start():
    from scipy.optimize import minimize

    z = simulate_dcc(0.04, 0.93, 750, 6, 11)
    qbar = z.T @ z / 750

    def f(u):
        return -_loglik_kernel(z, u[0] * u[1], u[0] * (1 - u[1]), qbar) / 750

    ref = minimize(f, [0.95, 0.05], method="L-BFGS-B", bounds=[(1e-6, 1 - 1e-6)] * 2, options={"ftol": 1e-15, "gtol": 1e-10})
    x, nll, ok, npass, _ = _newton_dcc(z, qbar, np.array([0.9, 0.1]))
    assert ok and nll <= 750 * ref.fun + 1e-6
    np.testing.assert_allclose(x, ref.x, atol=2e-4)
    # a start at the optimum passes the convergence test at once: one likelihood pass, same point
    x2, _, ok2, npass2, _ = _newton_dcc(z, qbar, x)
    assert ok2 and npass2 == 1 and np.array_equal(x2, x)


def test_compiled_likelihood_equals_reference():
    z = simulate_dcc(0.04, 0.93, 300, 4, 3)
    qbar = z.T @ z / 300
    assert _loglik_kernel(z, 0.04, 0.93, qbar) == pytest.approx(_reference_loglik(z, 0.04, 0.93, qbar), rel=1e-12)


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
    q = r.qbar.copy()
    for t in range(200):
        q = dcc_step(q, z[t], r.a, r.b, r.qbar)
    np.testing.assert_allclose(r.q_next, q, atol=1e-13)
    assert r.loglik == pytest.approx(_reference_loglik(z, r.a, r.b, r.qbar), rel=1e-12)
    np.testing.assert_allclose(np.einsum("tii->ti", r.corr), 1.0)


def test_invalid_inputs():
    with pytest.raises(DataError):
        fit_dcc(np.ones((3, 4)))
    with pytest.raises(DataError):
        dcc_correlation(np.ones((10, 2)), 0.5, 0.6)
