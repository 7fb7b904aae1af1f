"""One health summary per run: console, run.json ``health`` and the top of the report (issues 13, 14)."""

from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd

import strategies.core.solvers as solvers
from drb.errors import SolverError
from feeds import MarketData, synthetic_market
from runners.config import RunConfig
from runners.experiments.compare import run_comparison
from runners.health import console_lines, run_health, strategy_health


def _fake(info, rc=None, budgets=None):
    idx = pd.bdate_range("2020-01-01", periods=100)
    return types.SimpleNamespace(
        info=info,
        returns=pd.Series(0.0, index=idx),
        risk_contributions=rc if rc is not None else pd.DataFrame(),
        budgets=budgets if budgets is not None else pd.DataFrame(),
    )


def test_thresholds():
    assert strategy_health(_fake({"risk_model_refits": 100, "risk_model_failed_fits": 5}))["flags"] == []
    flags = strategy_health(_fake({"risk_model_refits": 100, "risk_model_failed_fits": 6}))["flags"]
    assert flags == ["failed fits 6 of 100 refits (6.0% > 5%)"]
    assert strategy_health(_fake({"solver_fallbacks": 1}))["flags"] == ["solver fell back 1 times"]
    idx = pd.bdate_range("2020-01-01", periods=100)
    budgets = pd.DataFrame({"smoothed_a": 0.5, "smoothed_b": 0.5}, index=idx)
    rc = pd.DataFrame({"a": 0.5, "b": 0.5}, index=idx)
    rc.iloc[:11] = [0.75, 0.25]  # 11% of days 25 points off
    h = strategy_health(_fake({}, rc, budgets))
    assert h["rc_miss_share"] == 0.11 and "on 11.0% of days" in h["flags"][0]
    rc.iloc[:11] = [0.65, 0.35]  # within 20 points
    assert strategy_health(_fake({}, rc, budgets))["flags"] == []


def test_console_summary_counts_fills_and_stand_ins():
    idx = pd.bdate_range("2020-01-01", periods=3)
    budgets = pd.DataFrame({"cycle_source": ["price_proxy"] * 3, "vol_source": ["vol_index"] * 3}, index=idx)
    health = run_health({"A": _fake({"covariance_shrunk": 4}), "B": _fake({}, budgets=budgets), "C": _fake({})},
                        ["forward-filled 7 missing price cells (limit 5 bars)"])  # fmt: skip
    lines = console_lines(health)
    assert lines[0] == "run health: 0 of 3 strategies flagged"
    assert "  A: shrunk covariance at 4 rebalances" in lines
    assert "  B: stand-in cycle signal on 3 bars" in lines
    assert "  clean: C" in lines and "  data: 7 price cells forward-filled" in lines
    assert health["data"]["forward_filled_cells"] == 7


def test_a_falling_back_solver_is_flagged_on_console_in_run_json_and_report(tmp_path, monkeypatch, capsys):
    from runners.report import build_report

    def boom(*a, **k):
        raise SolverError("synthetic failure")

    monkeypatch.setattr(solvers, "risk_budget_weights", boom)
    market = MarketData.from_synthetic(synthetic_market(seed=2, start="2019-01-02", end="2020-03-31"))
    cfg = RunConfig(source="test")
    cfg.execution["warmup"] = 60
    out = tmp_path / "run"
    run_comparison(market, cfg, strategies=["EqualWeight", "RiskParity"], out_dir=out, workers=1, progress=False)
    err = capsys.readouterr().err
    assert err.count("run health:") == 1
    assert "run health: 1 of 2 strategies flagged" in err
    assert "WARNING RiskParity: solver fell back" in err and "clean: EqualWeight" in err
    health = json.loads((out / "run.json").read_text())["health"]
    assert health["flagged"] == ["RiskParity"]
    assert health["strategies"]["RiskParity"]["solver_fallbacks"] > 0
    assert np.isfinite(health["strategies"]["EqualWeight"]["solver_fallbacks"])
    build_report(out, tearsheets=False)
    md = (out / "report.md").read_text()
    top = md.index("Run health warnings")
    assert top < md.index("## The run") and "- RiskParity: solver fell back" in md
