"""Monte Carlo paths, the stationary bootstrap, the summary statistics and serial runs with resume."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DRBError
from feeds import synthetic_market
from runners.config import RunConfig
from runners.experiments.montecarlo import (
    _bootstrap_indices,
    mc_runs,
    path_seed,
    path_source,
    run_montecarlo,
    run_path,
    stationary_bootstrap,
    summarize,
    wilson_interval,
)
from runners.metrics import METRIC_COLUMNS

STRATS = ["DynamicRiskBudget", "EqualWeight", "RiskParity"]


# small_market (the base market) and config (60-bar warm-up) come from conftest.py


# ----------------------------------------------------------------------------- the bootstrap


def test_bootstrap_indices_blocks():
    rng = np.random.default_rng(1)
    idx = _bootstrap_indices(1000, 20000, 25.0, rng)
    assert idx.min() >= 0 and idx.max() < 1000
    breaks = np.flatnonzero(np.diff(idx) % 1000 != 1)
    # geometric block lengths of mean 25: about 20000 / 25 = 800 new blocks
    assert 650 < len(breaks) + 1 < 950
    # wrap-around continues a block from the last row to the first
    consecutive = (np.diff(idx) % 1000) == 1
    assert np.any(consecutive & (idx[:-1] == 999))
    iid = _bootstrap_indices(50, 5000, 1.0, np.random.default_rng(2))
    assert len(np.unique(iid)) == 50  # mean block 1: every draw a new start
    with pytest.raises(ConfigError):
        _bootstrap_indices(10, 10, 0.5, rng)


def test_stationary_bootstrap_moves_rows_jointly(small_market):
    path = stationary_bootstrap(small_market, np.random.default_rng(11), mean_block=20)
    again = stationary_bootstrap(small_market, np.random.default_rng(11), mean_block=20)
    pd.testing.assert_frame_equal(path.prices, again.prices)
    assert path.prices.index.equals(small_market.prices.index)
    np.testing.assert_array_equal(path.prices.iloc[0], small_market.prices.iloc[0])
    src_r = small_market.prices.pct_change().iloc[1:].to_numpy()
    new_r = path.prices.pct_change().iloc[1:].to_numpy()
    # each output return row is one source row (all assets of the same day) ...
    match = [np.flatnonzero(np.all(np.isclose(src_r, row, rtol=1e-9, atol=1e-13), axis=1)) for row in new_r]
    assert all(len(m) >= 1 for m in match)
    days = np.array([m[0] for m in match])
    # ... and the volatility index travels with it (index value of that source day)
    np.testing.assert_allclose(path.vol_index.iloc[1:].to_numpy(), small_market.vol_index.iloc[days + 1].to_numpy())
    assert not np.array_equal(days, np.arange(len(days)))  # really resampled
    # macro: the pre-sample history is kept, the months of the span come from source months
    first = small_market.prices.index[0].to_period("M").to_timestamp()
    pd.testing.assert_frame_equal(path.macro.loc[: first - pd.Timedelta(days=1)], small_market.macro.loc[: first - pd.Timedelta(days=1)])
    span = path.macro.loc[first:]
    assert len(span) == small_market.prices.index.to_period("M").nunique()
    for _, row in span.iterrows():
        assert (small_market.macro == row.to_numpy()).all(axis=1).any()


def test_path_seeds_and_sources():
    seeds = [path_seed(0, i) for i in range(50)]
    assert len(set(seeds)) == 50 and seeds == [path_seed(0, i) for i in range(50)]
    assert path_seed(1, 0) != path_seed(0, 0)
    assert [path_source(i, "both") for i in range(4)] == ["synthetic", "bootstrap", "synthetic", "bootstrap"]
    assert path_source(3, "synthetic") == "synthetic"
    with pytest.raises(ConfigError):
        path_source(0, "history")


# ----------------------------------------------------------------------------- statistics


def test_wilson_interval_reference_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_summarize_counts_direction_and_ties():
    rows = []
    dyn = {"sharpe": [1.0, 0.5, 0.2, 0.9], "ann_vol": [0.10, 0.10, 0.10, 0.10]}
    base = {"sharpe": [0.5, 0.5, 0.4, 0.1], "ann_vol": [0.12, 0.08, 0.12, 0.12]}
    for p in range(4):
        src = "synthetic" if p % 2 == 0 else "bootstrap"
        for name, d in (("DynamicRiskBudget", dyn), ("EqualWeight", base)):
            r = {c: 0.0 for c in METRIC_COLUMNS}
            r.update({"path": p, "strategy": name, "source": src, "sharpe": d["sharpe"][p], "ann_vol": d["ann_vol"][p]})
            rows.append(r)
    s = summarize(pd.DataFrame(rows), metrics=("sharpe", "ann_vol"))
    sh = s[(s["source"] == "all") & (s["metric"] == "sharpe")].iloc[0]
    assert (sh["n_paths"], sh["wins"], sh["ties"]) == (4, 2, 1)
    assert sh["share"] == pytest.approx(2.5 / 4)
    lo, hi = wilson_interval(2.5, 4)
    assert (sh["ci_low"], sh["ci_high"]) == pytest.approx((lo, hi))
    assert sh["median_diff"] == pytest.approx(np.median([0.5, 0.0, -0.2, 0.8]))
    vol = s[(s["source"] == "all") & (s["metric"] == "ann_vol")].iloc[0]
    assert vol["wins"] == 3 and not vol["higher_is_better"]  # lower volatility wins
    syn = s[(s["source"] == "synthetic") & (s["metric"] == "sharpe")].iloc[0]
    assert syn["n_paths"] == 2 and syn["wins"] == 1


# ----------------------------------------------------------------------------- defaults


def test_mc_runs_the_backtests_model_unless_configured():
    runs, applied = mc_runs(RunConfig())
    assert "risk_model" not in runs["DynamicRiskBudget"] and applied == {}  # the strategy's own default
    from strategies.allocators.dynamic import DynamicParams

    assert DynamicParams().risk_model == "egarch_dcc"
    assert list(runs)[0] == "DynamicRiskBudget" and "MacroRiskParity" in runs and len(runs) == 10
    runs, applied = mc_runs(RunConfig(), STRATS, {"risk_model": "ewma"})
    assert runs["DynamicRiskBudget"]["risk_model"] == "ewma"
    cfg = RunConfig(strategy_params={"DynamicRiskBudget": {"risk_model": "egarch_dcc", "refit_every": 63}})
    runs, applied = mc_runs(cfg, ["EqualWeight", "DynamicRiskBudget"])
    assert runs["DynamicRiskBudget"]["risk_model"] == "egarch_dcc" and applied == {}
    assert list(runs) == ["DynamicRiskBudget", "EqualWeight"]
    runs, _ = mc_runs(RunConfig(), STRATS, {"risk_model": "sample"})
    assert runs["DynamicRiskBudget"]["risk_model"] == "sample"
    with pytest.raises(ConfigError, match="include it"):
        mc_runs(RunConfig(), ["EqualWeight", "RiskParity"])
    with pytest.raises(ConfigError, match="unknown strategy"):
        mc_runs(RunConfig(), ["DynamicRiskBudget", "Nope"])


# ----------------------------------------------------------------------------- serial runs


def test_run_montecarlo_outputs_and_resume(small_market, config, tmp_path):
    out = tmp_path / "mc"
    res = run_montecarlo(small_market, config, 3, out, strategies=STRATS, progress=False)
    paths = pd.read_csv(out / "paths.csv")
    assert list(paths.columns) == ["path", "strategy", *METRIC_COLUMNS, "source", "seed", "seconds"]
    assert len(paths) == 3 * 3 and paths["path"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert paths["source"].tolist()[::3] == ["synthetic", "bootstrap", "synthetic"]
    assert paths[["ann_return", "sharpe", "max_drawdown"]].notna().all().all()
    # one path recomputed directly gives the same rows
    runs, _ = mc_runs(config, STRATS)
    setup = {"seed": 0, "source": "both", "start": "2018-01-02", "end": "2019-06-28", "block": 63.0, "runs": runs,
             "broker": dict(config.broker), "engine": "fast", "benchmark": "EqualWeight", "risk_free": 0.0}  # fmt: skip
    direct = run_path(1, base=small_market, setup=setup)
    np.testing.assert_array_equal(
        paths[paths["path"] == 1][list(METRIC_COLUMNS)].to_numpy(float), direct[list(METRIC_COLUMNS)].to_numpy(float)
    )
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["source"]) == {"all", "synthetic", "bootstrap"}
    assert set(summary["baseline"]) == {"EqualWeight", "RiskParity"}
    all_sharpe = summary[(summary["source"] == "all") & (summary["metric"] == "sharpe")]
    assert (all_sharpe["n_paths"] == 3).all() and all_sharpe["share"].between(0, 1).all()
    assert (all_sharpe["ci_low"] <= all_sharpe["share"]).all() and (all_sharpe["share"] <= all_sharpe["ci_high"]).all()
    rel = pd.read_csv(out / "relative.csv")
    assert len(rel) == 3 * 2 and "sharpe_diff" in rel.columns
    for name in ("share_beats.png", "relative_sharpe.png", "sharpe_distribution.png"):
        assert (out / "figures" / name).exists()
    assert res.done == 3 and res.resumed_from == 0

    # rerun with more paths: the three done are kept as they are, only path 3 runs
    parts = sorted((out / "parts" / "montecarlo").glob("path-*.csv"))
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    res2 = run_montecarlo(small_market, config, 4, out, strategies=STRATS, progress=False)
    assert res2.resumed_from == 3 and res2.timings["computed"] == 1 and res2.done == 4
    assert all(p.stat().st_mtime_ns == stamps[p] for p in parts)
    paths2 = pd.read_csv(out / "paths.csv")
    pd.testing.assert_frame_equal(paths2[paths2["path"] < 3].reset_index(drop=True), paths)

    # other settings are refused; --restart discards
    with pytest.raises(ConfigError, match="different settings"):
        run_montecarlo(small_market, config, 4, out, strategies=STRATS, block=20, progress=False)
    res3 = run_montecarlo(small_market, config, 1, out, strategies=STRATS, block=20, progress=False, restart=True)
    assert res3.resumed_from == 0 and len(pd.read_csv(out / "paths.csv")) == 3


def test_montecarlo_rejects_bad_input(small_market, config, tmp_path):
    with pytest.raises(ConfigError, match="--paths"):
        run_montecarlo(small_market, config, 0, tmp_path, strategies=STRATS, progress=False)
    with pytest.raises(ConfigError, match="source"):
        run_montecarlo(small_market, config, 1, tmp_path, strategies=STRATS, source="history", progress=False)
    with pytest.raises(DRBError, match="garch"):  # fails before any path runs
        run_montecarlo(small_market, config, 1, tmp_path / "g", strategies=STRATS, dynamic_overrides={"risk_model": "garch"}, progress=False)
    assert not (tmp_path / "g").exists()


def test_cli_montecarlo(tmp_path, capsys):
    from runners.cli import main

    out = tmp_path / "cli"
    argv = ["montecarlo", "--demo", "--start", "2018-01-02", "--end", "2019-03-29", "--paths", "2", "--source", "bootstrap",
            "--strategies", "DynamicRiskBudget,EqualWeight", "--out", str(out), "--workers", "1", "--quiet", "--no-figures"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "beats EqualWeight on Sharpe in" in text
    paths = pd.read_csv(out / "paths.csv")
    assert len(paths) == 4 and set(paths["source"]) == {"bootstrap"}
    assert main(argv) == 0
    assert "resumed: 2 paths were already done" in capsys.readouterr().out
    assert main(["montecarlo", "--demo", "--end", "2019-03-29", "--paths", "0", "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--paths must be >= 1" in err


def test_cli_montecarlo_on_a_config_without_signals(tmp_path, capsys):
    """User data from a TOML config (renamed assets, no vol index, no macro): bootstrap + synthetic paths."""
    from runners.cli import main

    m = synthetic_market(seed=4, start="2018-01-02", end="2019-03-29")
    prices = m.prices.rename(columns={"equity": "SPY", "bond": "TLT", "commodity": "DBC", "real_estate": "VNQ"})
    prices.rename_axis("date").to_csv(tmp_path / "prices.csv")
    (tmp_path / "cfg.toml").write_text(
        '[data]\nprices = "prices.csv"\n[assets]\nSPY = "equity"\nTLT = "bond"\nDBC = "commodity"\nVNQ = "real_estate"\n'
        '[execution]\nwarmup = 60\n[run]\nstrategies = ["DynamicRiskBudget", "EqualWeight"]\nseed = 3\nout = "mc"\n'
    )
    assert main(["montecarlo", str(tmp_path / "cfg.toml"), "--paths", "2", "--workers", "1", "--quiet", "--no-figures"]) == 0
    paths = pd.read_csv(tmp_path / "mc" / "paths.csv")
    assert paths["source"].tolist() == ["synthetic", "synthetic", "bootstrap", "bootstrap"]
    assert paths["sharpe"].notna().all()
    manifest = (tmp_path / "mc" / "montecarlo.json").read_text()
    assert '"seed": 3' in manifest and "cfg.toml" in manifest


def test_truncated_part_is_recomputed_with_a_note(small_market, config, tmp_path, capsys):
    out = tmp_path / "mc"
    run_montecarlo(small_market, config, 2, out, strategies=["EqualWeight", "DynamicRiskBudget"], progress=False)
    first = pd.read_csv(out / "paths.csv")
    part = out / "parts" / "montecarlo" / "path-000001.csv"
    assert (part.parent / "path-000001.csv.sha256").is_file()
    data = part.read_bytes()
    part.write_bytes(data[: len(data) * 2 // 3])  # cut mid-row: would read as NaN metrics
    capsys.readouterr()
    res = run_montecarlo(small_market, config, 2, out, strategies=["EqualWeight", "DynamicRiskBudget"], progress=False)
    assert "path-000001.csv failed its sha256 check" in capsys.readouterr().err
    assert res.timings["computed"] == 1 and res.resumed_from == 1
    again = pd.read_csv(out / "paths.csv")
    assert np.isfinite(again[["ann_return", "ann_vol", "sharpe", "max_drawdown"]].to_numpy(float)).all()
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))
    import json

    assert json.loads((out / "montecarlo.json").read_text())["recomputed_parts"] == ["path-000001"]
