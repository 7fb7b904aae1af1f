"""Cross-checks against peer libraries of the ``bench`` extra (skipped when absent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from strategies.core.solvers import risk_budget_weights


def _problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, (400, 3)) @ rng.normal(size=(3, n)) + rng.normal(0, 0.01, (400, n))
    b = rng.uniform(0.1, 1.0, n)
    return x, np.cov(x, rowvar=False), b / b.sum()


@pytest.mark.parametrize("n", [4, 12])
def test_riskparityportfolio_cpp(n: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vanilla = pytest.importorskip("riskparityportfolio.vanilla")
    _, cov, b = _problem(n, n)
    ref = vanilla.design(cov, b, 1e-13, 10_000)
    np.testing.assert_allclose(risk_budget_weights(cov, b), ref, rtol=1e-9)


def test_skfolio_risk_budgeting() -> None:
    pytest.importorskip("skfolio")
    from skfolio.optimization import RiskBudgeting

    x, cov, b = _problem(6, 1)
    ref = RiskBudgeting(risk_budget=b).fit(x).weights_
    np.testing.assert_allclose(risk_budget_weights(cov, b), ref, atol=2e-5)


def test_riskfolio_rp_optimization() -> None:
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rp = pytest.importorskip("riskfolio")
    x, cov, b = _problem(5, 2)
    port = rp.Portfolio(returns=pd.DataFrame(x))
    port.assets_stats(method_mu="hist", method_cov="hist")
    w = port.rp_optimization(model="Classic", rm="MV", rf=0, b=b.reshape(-1, 1), hist=True)
    np.testing.assert_allclose(risk_budget_weights(cov, b), np.asarray(w).ravel(), atol=2e-5)


def test_ffn_erc() -> None:
    pd = pytest.importorskip("pandas")
    core = pytest.importorskip("ffn.core")
    x, cov, _ = _problem(5, 3)
    ref = core.calc_erc_weights(pd.DataFrame(x), covar_method="standard",
                                maximum_iterations=1000, tolerance=1e-12)
    np.testing.assert_allclose(risk_budget_weights(cov, np.ones(5)), np.asarray(ref), atol=1e-7)
