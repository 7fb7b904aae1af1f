"""Baseline weight rules against closed forms and a general optimizer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from drb.errors import DataError
from strategies.core.risk import risk_contributions
from strategies.core.solvers import risk_budget_weights
from strategies.core.weights import (
    erc_weights,
    factor_risk_parity_weights,
    inverse_volatility_weights,
    max_sharpe_weights,
    min_variance_weights,
    sharpe_driven_budget,
    volatility_managed_weight,
)


def _cov(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2 * n))
    cov = a @ a.T / (2 * n) * 0.04
    return cov + 1e-4 * np.eye(n)


def _slsqp(obj, n):
    res = minimize(obj, np.full(n, 1 / n), method="SLSQP", bounds=[(0, 1)] * n,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-15, "maxiter": 1000})
    return res.x


def test_erc_and_inverse_vol() -> None:
    cov = _cov(6, 1)
    w = erc_weights(cov)
    np.testing.assert_allclose(risk_contributions(w, cov, relative=True), 1 / 6, atol=1e-12)
    vol = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(inverse_volatility_weights(cov), (1 / vol) / (1 / vol).sum())
    np.testing.assert_allclose(inverse_volatility_weights(vol), inverse_volatility_weights(cov))
    with pytest.raises(DataError):
        inverse_volatility_weights([0.1, 0.0])


def test_min_variance_two_assets_closed_form() -> None:
    s1, s2, rho = 0.2, 0.1, 0.3
    c = rho * s1 * s2
    w1 = (s2**2 - c) / (s1**2 + s2**2 - 2 * c)
    cov = np.array([[s1**2, c], [c, s2**2]])
    np.testing.assert_allclose(min_variance_weights(cov), [w1, 1 - w1], rtol=1e-13)
    # long-only binds when rho > s2/s1
    cov2 = np.array([[s1**2, 0.9 * s1 * s2], [0.9 * s1 * s2, s2**2]])
    np.testing.assert_array_equal(min_variance_weights(cov2), [0.0, 1.0])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 15), st.integers(0, 10_000))
def test_min_variance_and_max_sharpe_vs_slsqp(n, seed) -> None:
    cov = _cov(n, seed)
    mu = np.random.default_rng(seed).normal(0.04, 0.05, n)
    w = min_variance_weights(cov)
    ref = _slsqp(lambda x: x @ cov @ x, n)
    assert w.min() >= 0 and w.sum() == pytest.approx(1, abs=1e-12)
    assert w @ cov @ w <= ref @ cov @ ref * (1 + 1e-9)
    ws = max_sharpe_weights(cov, mu, rf=0.01)
    ref = _slsqp(lambda x: -(mu @ x - 0.01) / np.sqrt(x @ cov @ x), n)
    def sr(x):
        return (mu @ x - 0.01) / np.sqrt(x @ cov @ x)
    assert ws.min() >= 0 and sr(ws) >= sr(ref) - 1e-7


def test_max_sharpe_unconstrained_tangency_and_negative_excess() -> None:
    vol = np.array([0.1, 0.15, 0.2])
    cov = np.outer(vol, vol) * (0.2 + 0.8 * np.eye(3))
    mu = np.array([0.05, 0.07, 0.09])
    t = np.linalg.solve(cov, mu)
    assert (t > 0).all()
    np.testing.assert_allclose(max_sharpe_weights(cov, mu), t / t.sum(), rtol=1e-12)
    w = max_sharpe_weights(cov, np.array([-0.01, -0.03, -0.05]))
    np.testing.assert_array_equal(w, [1.0, 0.0, 0.0])


def test_sharpe_driven_budget() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal([0.0008, 0.0002, -0.0005, 0.0004], 0.01, size=(300, 4))
    b = sharpe_driven_budget(r, window=126, floor=0.05)
    tail = r[-126:]
    s = np.maximum(tail.mean(0) / tail.std(0, ddof=1), 0)
    assert b.sum() == pytest.approx(1.0, abs=1e-14) and b.min() >= 0.05 - 1e-15
    above = b > 0.05 + 1e-12
    np.testing.assert_allclose(b[above] / b[above].sum(), s[above] / s[above].sum(), rtol=1e-12)
    df = pd.DataFrame(r, columns=list("ABCD"))
    out = sharpe_driven_budget(df, floor=0.05)
    assert list(out.index) == list("ABCD")
    np.testing.assert_allclose(out.to_numpy(), b)
    np.testing.assert_allclose(sharpe_driven_budget(-np.abs(r)), 0.25)
    with pytest.raises(DataError):
        sharpe_driven_budget(r[:50])
    with pytest.raises(DataError):
        sharpe_driven_budget(r, floor=0.3)


def test_factor_risk_parity_identity_loadings_is_risk_parity_on_factors() -> None:
    sf = _cov(4, 3)
    e = np.array([0.01, 0.02, 0.005, 0.03])
    info = factor_risk_parity_weights(np.eye(4), sf, e, return_info=True)
    np.testing.assert_allclose(info.weights, risk_budget_weights(sf, np.ones(4)), atol=1e-6)
    assert info.max_gap < 1e-7
    w = info.weights
    total = w @ (sf + np.diag(e)) @ w
    assert info.idiosyncratic_share == pytest.approx(w @ (e * w) / total, rel=1e-12)
    assert info.factor_contributions.sum() + info.idiosyncratic_share == pytest.approx(1, abs=1e-12)


def test_factor_risk_parity_two_factor_model() -> None:
    rng = np.random.default_rng(11)
    loadings = np.abs(rng.normal(size=(6, 2))) * [[1.0, 0.3]] + [[0.0, 0.2]]
    sf = np.array([[0.03, 0.004], [0.004, 0.01]])
    e = rng.uniform(0.001, 0.01, 6)
    info = factor_risk_parity_weights(loadings, sf, e, factor_budget=[2, 1], return_info=True)
    assert info.max_gap < 1e-6
    np.testing.assert_allclose(info.systematic_shares, [2 / 3, 1 / 3], atol=1e-6)
    assert info.weights.min() >= 0 and info.weights.sum() == pytest.approx(1, abs=1e-12)
    assert 0 < info.idiosyncratic_share < 1


def test_volatility_managed_weight() -> None:
    assert volatility_managed_weight(0.04, 0.02, 2.0) == pytest.approx(0.5)
    assert volatility_managed_weight(0.004, 0.02, 2.0) == 2.0
    np.testing.assert_allclose(volatility_managed_weight([0.04, 0.01], 0.02, 1.5), [0.5, 1.5])
    with pytest.raises(DataError):
        volatility_managed_weight(0.0, 0.02)
