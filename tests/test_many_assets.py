"""Many assets: the baselines' covariance is shrunk, not silently replaced by equal weights (issue 14)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from drb.errors import CovarianceRepairWarning
from feeds.market import MarketData
from indicators.covariance import baseline_covariance, ledoit_wolf_covariance

CLASSES = ("equity", "bond", "commodity", "real_estate")


def many_asset_market(n: int, bars: int = 200, seed: int = 7) -> MarketData:
    """``n`` synthetic assets with a common factor and volatilities from 4% to 40% a year."""
    rng = np.random.default_rng(seed)
    vols = np.linspace(0.04, 0.40, n) / np.sqrt(252)
    factor = rng.standard_normal(bars)
    rets = vols * (0.5 * factor[:, None] + rng.standard_normal((bars, n))) + 0.0002
    dates = pd.bdate_range("2020-01-01", periods=bars)
    prices = pd.DataFrame(100 * np.cumprod(1 + rets, axis=0), index=dates, columns=[f"A{i:02d}" for i in range(n)])
    return MarketData(prices=prices, asset_classes={c: CLASSES[i % 4] for i, c in enumerate(prices.columns)})


def test_baseline_covariance_rule():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 60)) * 0.01
    cov, shrunk = baseline_covariance(x, 252.0)
    assert shrunk  # 60 returns of 60 assets
    np.testing.assert_allclose(cov, ledoit_wolf_covariance(x) * 252, rtol=1e-10, atol=1e-14)
    y = rng.standard_normal((60, 4)) * 0.01
    cov, shrunk = baseline_covariance(y, 252.0)
    assert not shrunk
    np.testing.assert_allclose(cov, np.cov(y, rowvar=False) * 252, rtol=1e-10)
    z = np.column_stack([y, y[:, 0]])  # a duplicated column: singular despite a long window
    assert baseline_covariance(z, 252.0)[1]


@pytest.mark.parametrize("name", ["RiskParity", "MinimumVariance"])
def test_sixty_assets_are_not_equal_weight(name):
    from runners.engine.fastpath import run_fast

    market = many_asset_market(60)
    params = {"warmup": 80, "total_cap": 1.0, "asset_cap": 1.0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_fast(market, name, params)
        ew = run_fast(market, "EqualWeight", params)
    shrink_msgs = [w for w in caught if issubclass(w.category, CovarianceRepairWarning)]
    assert len(shrink_msgs) == 1 and "Ledoit-Wolf" in str(shrink_msgs[0].message)
    assert res.info["covariance_shrunk"] >= 1
    assert not np.allclose(res.returns.to_numpy(), ew.returns.to_numpy())
    w = res.target_weights.dropna().iloc[-1].to_numpy()
    assert w[0] > 3 * w[-1]  # the 4% asset weighs far more than the 40% one


def test_few_assets_keep_the_sample_covariance():
    from runners.engine.fastpath import run_fast

    res = run_fast(many_asset_market(4, bars=150), "RiskParity", {"warmup": 80})
    assert res.info["covariance_shrunk"] == 0
