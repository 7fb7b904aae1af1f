"""Euler risk decomposition: closed forms and identities."""

from __future__ import annotations

import numpy as np
import pytest

from drb.errors import DataError
from strategies.core.risk import (
    marginal_risk_contributions,
    portfolio_variance,
    portfolio_volatility,
    risk_budget_error,
    risk_contributions,
)


def _cov(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    return a @ a.T / n + 0.05 * np.eye(n)


def test_two_asset_closed_form() -> None:
    s1, s2, rho, w1, w2 = 0.15, 0.05, -0.2, 0.6, 0.4
    cov = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    var = w1**2 * s1**2 + w2**2 * s2**2 + 2 * w1 * w2 * rho * s1 * s2
    rc1 = (w1**2 * s1**2 + w1 * w2 * rho * s1 * s2) / np.sqrt(var)
    rc2 = (w2**2 * s2**2 + w1 * w2 * rho * s1 * s2) / np.sqrt(var)
    w = np.array([w1, w2])
    assert portfolio_variance(w, cov) == pytest.approx(var, rel=1e-14)
    assert portfolio_volatility(w, cov) == pytest.approx(np.sqrt(var), rel=1e-14)
    np.testing.assert_allclose(risk_contributions(w, cov), [rc1, rc2], rtol=1e-13)
    np.testing.assert_allclose(
        risk_contributions(w, cov, relative=True), np.array([rc1, rc2]) / np.sqrt(var), rtol=1e-13
    )


@pytest.mark.parametrize("seed", range(5))
def test_euler_identities_and_finite_difference(seed: int) -> None:
    cov = _cov(7, seed)
    w = np.random.default_rng(seed + 100).normal(size=7)  # long-short is fine here
    sigma = portfolio_volatility(w, cov)
    rc = risk_contributions(w, cov)
    assert rc.sum() == pytest.approx(sigma, rel=1e-12)
    assert risk_contributions(w, cov, relative=True).sum() == pytest.approx(1.0, rel=1e-12)
    mrc = marginal_risk_contributions(w, cov)
    h = 1e-6
    fd = np.array(
        [
            (portfolio_volatility(w + h * e, cov) - portfolio_volatility(w - h * e, cov)) / (2 * h)
            for e in np.eye(7)
        ]
    )
    np.testing.assert_allclose(mrc, fd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(rc, w * mrc, rtol=1e-14)


def test_risk_budget_error_and_scale_invariance() -> None:
    vol = np.array([0.15, 0.05, 0.18, 0.12])
    cov = np.outer(vol, vol) * (0.3 + 0.7 * np.eye(4))
    w = np.array([0.1, 0.2, 0.3, 0.4])
    rel = risk_contributions(w, cov, relative=True)
    assert risk_budget_error(w, cov, rel * 7.0) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(risk_contributions(3 * w, 5 * cov, relative=True), rel, rtol=1e-13)


def test_errors() -> None:
    cov = _cov(3, 0)
    with pytest.raises(DataError):
        risk_contributions(np.zeros(3), cov)
    with pytest.raises(DataError):
        risk_contributions(np.ones(2), cov)
    with pytest.raises(DataError):
        risk_contributions(np.ones(3), cov + np.triu(np.ones((3, 3)), 1))
    bad = cov.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError):
        marginal_risk_contributions(np.ones(3), bad)
