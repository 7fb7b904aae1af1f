"""Budget floors with many assets: scaled (SharpeRiskBudget) or refused up front, naming both (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

import runners.experiments.compare as compare
from drb.errors import ConfigError
from runners.config import RunConfig
from runners.experiments.compare import run_comparison
from tests.test_many_assets import many_asset_market


def _cfg() -> RunConfig:
    cfg = RunConfig(source="test")
    cfg.execution["warmup"] = 60
    return cfg


def test_sharpe_risk_budget_runs_on_thirty_assets_with_its_default_floor(tmp_path):
    market = many_asset_market(30, bars=150)
    res = run_comparison(market, _cfg(), strategies=["SharpeRiskBudget"], out_dir=None, workers=1,
                         progress=False)  # fmt: skip
    info = res.results["SharpeRiskBudget"].info
    assert info["floor_used"] == pytest.approx(0.5 / 30)
    assert np.isfinite(res.metrics.loc["SharpeRiskBudget", "sharpe"])


def test_an_explicit_floor_above_one_over_n_still_scales():
    from strategies.allocators import SharpeRiskBudgetAllocator

    alloc = SharpeRiskBudgetAllocator([f"a{i}" for i in range(30)], floor=0.05)
    assert alloc.floor == pytest.approx(0.5 / 30)
    assert SharpeRiskBudgetAllocator(["a", "b", "c", "d"], floor=0.05).floor == 0.05  # unchanged with 4 assets


def test_dynamic_budget_floor_refused_before_any_backtest_on_sixty_assets(monkeypatch):
    def no_backtest(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("a backtest ran before the check")

    monkeypatch.setattr(compare, "_run_one", no_backtest)
    market = many_asset_market(60, bars=150)
    with pytest.raises(ConfigError, match=r"strategy\.DynamicRiskBudget\.budget_floor = 0\.02 is infeasible for 60 "
                                          r"assets.*at most 1/n = 0\.01667"):  # fmt: skip
        run_comparison(market, _cfg(), strategies=["EqualWeight", "DynamicRiskBudget"], workers=1, progress=False)


def test_sweep_checks_the_floor_before_running(tmp_path):
    from runners.experiments.sweep import GridSpec, run_sweep

    market = many_asset_market(60, bars=150)
    spec = GridSpec(strategy="DynamicRiskBudget", axes={"smoothing": [0.1, 0.2]}, params={"risk_model": "ewma"})
    with pytest.raises(ConfigError, match=r"strategy\.DynamicRiskBudget\.budget_floor"):
        run_sweep(market, _cfg(), spec, tmp_path / "s", progress=False)
