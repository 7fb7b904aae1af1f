"""Integration: the comparison on real US data from ../shared/data/real (skipped when absent)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from runners.cli import main

ASSETS = {"SPY": "equity", "TLT": "bond", "DBC": "commodity", "VNQ": "real_estate"}
MACRO = ["INDPRO", "HOUST", "PERMIT", "UMCSENT", "ICSA", "T10Y3M", "CFNAI", "UNRATE"]


@pytest.fixture(scope="module")
def real_run(real_data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    prices = pd.read_csv(real_data_dir / "prices_daily.csv.gz", parse_dates=["date"]).set_index("date")
    span = prices.loc["2018-01-01":"2025-06-30"]  # 7.5 years: the embedded demo's span
    span[list(ASSETS)].to_csv(tmp / "prices.csv")
    span[["VIX"]].to_csv(tmp / "vix.csv")
    macro = pd.read_csv(real_data_dir / "macro_monthly.csv", parse_dates=["date"]).set_index("date")
    macro.loc["2005-01-01":"2025-06-30", MACRO].to_csv(tmp / "macro.csv")
    (tmp / "run.toml").write_text(
        """
[data]
prices = "prices.csv"
vol_index = "vix.csv"
macro = "macro.csv"
[assets]
SPY = "equity"
TLT = "bond"
DBC = "commodity"
VNQ = "real_estate"
[run]
out = "out"
benchmark = "EqualWeight"
[strategy.DynamicRiskBudget]
publication_lag = 1
"""
    )
    code = main(["compare", str(tmp / "run.toml"), "--no-report", "--quiet", "--workers", "2"])
    return code, tmp / "out"


@pytest.mark.slow
@pytest.mark.realdata
def test_real_data_comparison(real_run):
    code, out = real_run
    assert code == 0
    metrics = pd.read_csv(out / "metrics.csv", index_col="strategy")
    assert len(metrics) == 10
    assert metrics["ann_vol"].between(0.005, 0.4).all()
    assert (metrics["max_drawdown"] < 0).all()
    # 60/40 on SPY/TLT over 2019-2025: annual volatility around 10%
    assert metrics.loc["FixedWeights", "ann_vol"] == pytest.approx(0.10, abs=0.04)
    reb = pd.read_csv(out / "rebalances.csv")
    dyn = reb[reb["strategy"] == "DynamicRiskBudget"]
    assert dyn["trigger"].str.contains("periodic").any()
    assert (reb.loc[reb["trigger"] != "initial", "turnover"] <= 0.15 + 1e-9).all()
    run = json.loads((out / "run.json").read_text())
    assert run["fallbacks"]["cycle_source"] == ["macro"]
    assert run["fallbacks"]["vol_source"] == ["vol_index"]
    assert run["data"]["assets"] == ASSETS
    w = pd.read_csv(out / "weights" / "DynamicRiskBudget.csv", index_col="date")
    assert np.all(w.sum(axis=1) <= 1 + 1e-9)
