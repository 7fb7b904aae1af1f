"""Parameter sweeps and forecast-error injection (runners.experiments.sweep), serial execution.

Short spans (2018-2019), a 60-bar warm-up and the EWMA risk model keep every run well under a
second; the Dask path is tested in test_distributed.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DRBError
from feeds import MarketData
from runners.experiments.sweep import (
    ForecastErrorSpec,
    GridSpec,
    apply_point,
    evaluate_strategies,
    expand_grid,
    parse_grid,
    perturb_market,
    run_sweep,
)
from runners.metrics import METRIC_COLUMNS

WARM = {"warmup": 60}


# small_market and config (60-bar warm-up) come from conftest.py


def _write(tmp_path, text: str):
    p = tmp_path / "grid.toml"
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- the grid file


def test_parse_grid_full(tmp_path):
    p = _write(
        tmp_path,
        """
[sweep]
strategy = "DynamicRiskBudget"
design = "one_at_a_time"
baselines = ["EqualWeight"]
heatmap_metrics = ["sharpe", "calmar"]
[params]
risk_model = "ewma"
smoothing_bounds = [0.05, 0.30]
[grid]
smoothing = [0.05, 0.15, "vix"]
"initial_budget.equity" = [0.36, 0.44]
[forecast_errors]
levels = [0.30, 0.05]
seeds = 3
targets = ["vol_index"]
""",
    )
    spec = parse_grid(p)
    assert spec.strategy == "DynamicRiskBudget" and spec.design == "one_at_a_time"
    assert spec.axes == {"smoothing": [0.05, 0.15, "vix"], "initial_budget.equity": [0.36, 0.44]}
    assert spec.params["smoothing_bounds"] == (0.05, 0.30)  # TOML arrays become tuples
    assert spec.baselines == ["EqualWeight"] and spec.heatmap_metrics == ["sharpe", "calmar"]
    fe = spec.forecast_errors
    assert fe is not None and fe.levels == [0.05, 0.30] and fe.seeds == 3 and fe.targets == ["vol_index"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("[grid]\nnot_a_param = [1, 2]\n", "unknown parameter 'not_a_param'"),
        ("[grids]\nsmoothing = [0.1]\n", "unknown table 'grids'"),
        ("[sweep]\nstrategy = \"Nope\"\n[grid]\nwarmup = [60]\n", "unknown strategy"),
        ("[sweep]\nheatmap_metrics = [\"alpha\"]\n[grid]\nwarmup = [60]\n", "unknown metric"),
        ("[grid]\nsmoothing = []\n", "non-empty list"),
        ("[grid]\nsmoothing = [0.1, 0.1]\n", "repeated values"),
        ("[grid]\n\"smoothing.x\" = [0.1]\n", "not a mapping parameter"),
        ("[sweep]\n", "nothing to run"),
        ("[forecast_errors]\nlevels = [1.5]\n", "not a decimal in \\(0, 1\\)"),
        ("[forecast_errors]\ntargets = [\"prices\"]\n", "macro"),
        ("[grid\n", "invalid TOML"),
    ],
)
def test_parse_grid_rejects(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        parse_grid(_write(tmp_path, text))


def test_missing_grid_file(tmp_path):
    with pytest.raises(ConfigError, match="grid file not found"):
        parse_grid(tmp_path / "none.toml")


def test_expand_product_order():
    spec = GridSpec(axes={"a": [1, 2], "b": [10, 20, 30]})
    pts = expand_grid(spec)
    assert len(pts) == 6
    assert pts[0] == {"a": 1, "b": 10} and pts[1] == {"a": 1, "b": 20} and pts[-1] == {"a": 2, "b": 30}


def test_expand_one_at_a_time_uses_base_values():
    spec = GridSpec(
        strategy="DynamicRiskBudget",
        design="one_at_a_time",
        axes={"eigen_threshold": [0.10, 0.15, 0.20], "rc_threshold": [0.10, 0.15], "initial_budget.equity": [0.36, 0.44]},
    )
    pts = expand_grid(spec, {"rc_threshold": 0.15})
    # base: strategy default eigen 0.15, rc from the base params 0.15, equity budget 0.40
    assert pts[0] == {"eigen_threshold": 0.15, "rc_threshold": 0.15, "initial_budget.equity": 0.40}
    assert len(pts) == 1 + 2 + 1 + 2
    assert {"eigen_threshold": 0.10, "rc_threshold": 0.15, "initial_budget.equity": 0.40} in pts
    assert {"eigen_threshold": 0.15, "rc_threshold": 0.10, "initial_budget.equity": 0.40} in pts


def test_apply_point_dotted_axis_keeps_sum_and_proportions():
    p = apply_point("DynamicRiskBudget", {"risk_model": "ewma"}, {"initial_budget.equity": 0.44, "smoothing": 0.2})
    b = p["initial_budget"]
    assert p["smoothing"] == 0.2 and p["risk_model"] == "ewma"
    assert b["equity"] == pytest.approx(0.44)
    assert sum(b.values()) == pytest.approx(1.0, abs=1e-15)
    # the other classes shrink pro rata: 30/15/15 of the remaining 56%
    assert b["bond"] == pytest.approx(0.56 * 0.5) and b["commodity"] == pytest.approx(0.56 * 0.25)
    with pytest.raises(ConfigError, match="cannot be set"):
        apply_point("DynamicRiskBudget", {}, {"initial_budget.equity": 1.5})


# ----------------------------------------------------------------------------- forecast errors


def test_perturb_market_bounds_and_determinism(small_market):
    rng = np.random.default_rng(7)
    noisy = perturb_market(small_market, 0.10, rng)
    again = perturb_market(small_market, 0.10, np.random.default_rng(7))
    pd.testing.assert_frame_equal(noisy.prices, small_market.prices)
    ratio_v = (noisy.vol_index / small_market.vol_index).to_numpy()
    ratio_m = (noisy.macro / small_market.macro).to_numpy()
    for r in (ratio_v, ratio_m):
        r = r[np.isfinite(r)]
        assert r.min() >= 0.9 - 1e-12 and r.max() <= 1.1 + 1e-12
        assert r.std() > 0.03  # uniform on [-10%, 10%]: sd 5.8%
    pd.testing.assert_series_equal(noisy.vol_index, again.vol_index)
    only_vix = perturb_market(small_market, 0.10, np.random.default_rng(7), targets=["vol_index"])
    pd.testing.assert_frame_equal(only_vix.macro, small_market.macro)
    assert not np.allclose(only_vix.vol_index, small_market.vol_index)


def test_evaluate_matches_direct_run(small_market):
    from runners.engine.fastpath import run_fast
    from runners.experiments.compare import compute_comparison_metrics

    params = {"risk_model": "ewma", **WARM}
    table, secs = evaluate_strategies(
        small_market, {"DynamicRiskBudget": params, "EqualWeight": WARM}, benchmark="EqualWeight"
    )
    direct = compute_comparison_metrics(
        {n: run_fast(small_market, n, p, record=False) for n, p in (("DynamicRiskBudget", params), ("EqualWeight", WARM))},
        small_market,
        benchmark="EqualWeight",
    )
    pd.testing.assert_frame_equal(table, direct.loc[table.index], check_names=False)
    assert set(secs) == {"DynamicRiskBudget", "EqualWeight"}


# ----------------------------------------------------------------------------- whole runs


def test_sweep_outputs_and_resume(small_market, config, tmp_path):
    spec = GridSpec(
        strategy="DynamicRiskBudget",
        axes={"smoothing": [0.05, 0.35], "eigen_threshold": [0.10, 0.20], "initial_budget.equity": [0.36, 0.44]},
        params={"risk_model": "ewma"},
        baselines=["RiskParity"],
    )
    out = tmp_path / "sweep"
    res = run_sweep(small_market, config, spec, out, progress=False)
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.columns) == ["point", "strategy", *spec.axes, *METRIC_COLUMNS, "seconds"]
    assert len(table) == 8 and table["point"].tolist() == list(range(8))
    # one point cross-checked against a direct run with the same parameters
    row = table.iloc[5]
    params = apply_point("DynamicRiskBudget", {**WARM, "total_cap": 0.15, "asset_cap": 0.08, "risk_model": "ewma"},
                         {"smoothing": row["smoothing"], "eigen_threshold": row["eigen_threshold"],
                          "initial_budget.equity": row["initial_budget.equity"]})  # fmt: skip
    direct, _ = evaluate_strategies(small_market, {"DynamicRiskBudget": params}, benchmark="EqualWeight",
                                    benchmark_result=_bench(small_market))  # fmt: skip
    np.testing.assert_allclose(row[list(METRIC_COLUMNS)].to_numpy(float), direct.iloc[0].to_numpy(float), rtol=1e-12)
    # the grid points really differ
    assert table["sharpe"].nunique() > 1
    base = pd.read_csv(out / "baselines.csv", index_col="strategy")
    assert list(base.index) == ["RiskParity"] and list(base.columns) == list(METRIC_COLUMNS)
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figs) == 3 * 3  # 3 axis pairs x 3 default metrics
    assert "heatmap_sharpe__smoothing__eigen_threshold.png" in figs
    assert "best Sharpe first" in (out / "sweep.md").read_text()
    assert res.sweep is not None and len(res.sweep) == 8

    # rerun: nothing is recomputed, same table
    parts = sorted((out / "parts" / "sweep").glob("*.csv"))
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    (parts[0]).unlink()  # one result lost: only it is recomputed
    run_sweep(small_market, config, spec, out, progress=False)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in parts[1:])
    pd.testing.assert_frame_equal(pd.read_csv(out / "sweep.csv").drop(columns="seconds"), table.drop(columns="seconds"))

    # other settings in the same folder: refused, unless restarted
    spec2 = GridSpec(strategy="DynamicRiskBudget", axes={"smoothing": [0.05, 0.25]}, params={"risk_model": "ewma"})
    with pytest.raises(ConfigError, match="different settings"):
        run_sweep(small_market, config, spec2, out, progress=False)
    run_sweep(small_market, config, spec2, out, progress=False, restart=True)
    assert len(pd.read_csv(out / "sweep.csv")) == 2
    # --restart leaves no figure of the earlier grid (its third axis is gone)
    assert not any("initial_budget" in p.name for p in (out / "figures").glob("*.png"))


def test_sweep_folder_never_mixes_kinds(small_market, config, tmp_path):
    fe = ForecastErrorSpec(levels=[0.05], seeds=1, strategies=["RiskParity"])
    out = tmp_path / "mixed"
    run_sweep(small_market, config, GridSpec(strategy="RiskParity", forecast_errors=fe), out, progress=False)
    assert (out / "forecast_errors.csv").exists()
    grid = GridSpec(strategy="RiskParity", axes={"cov_window": [40, 60]})
    with pytest.raises(ConfigError, match="holds a forecast_errors run that this command does not produce"):
        run_sweep(small_market, config, grid, out, progress=False)
    run_sweep(small_market, config, grid, out, progress=False, restart=True)
    assert not (out / "forecast_errors.csv").exists() and not (out / "forecast_errors.json").exists()
    assert len(pd.read_csv(out / "sweep.csv")) == 2


def _bench(market):
    from runners.engine.fastpath import run_fast

    return run_fast(market, "EqualWeight", {**WARM, "total_cap": 0.15, "asset_cap": 0.08}, record=False)


def test_forecast_errors_degrade_only_signal_users(small_market, config, tmp_path):
    fe = ForecastErrorSpec(levels=[0.05, 0.30], seeds=2, strategies=["DynamicRiskBudget", "RiskParity"])
    spec = GridSpec(strategy="DynamicRiskBudget", params={"risk_model": "ewma"}, forecast_errors=fe)
    out = tmp_path / "fe"
    res = run_sweep(small_market, config, spec, out, progress=False)
    runs = pd.read_csv(out / "forecast_errors.csv")
    assert list(runs.columns[:3]) == ["level", "seed", "strategy"]
    assert len(runs) == 2 * (1 + 2 * 2)
    rp = runs[runs["strategy"] == "RiskParity"]
    # RiskParity reads neither signal: identical at every level (the control)
    assert rp["sharpe"].nunique() == 1
    dyn = runs[runs["strategy"] == "DynamicRiskBudget"]
    assert dyn["sharpe"].nunique() > 1  # the noise reaches the dynamic model
    deg = pd.read_csv(out / "forecast_degradation.csv")
    assert list(deg.columns) == ["level", "strategy", "metric", "clean", "mean", "std", "min", "max", "delta",
                                 "delta_pct", "worse_share", "n_seeds"]  # fmt: skip
    assert len(deg) == 2 * 2 * len(METRIC_COLUMNS)
    d = deg[(deg["strategy"] == "DynamicRiskBudget") & (deg["metric"] == "sharpe") & (deg["level"] == 0.30)].iloc[0]
    vals = dyn[dyn["level"] == 0.30]["sharpe"]
    clean = dyn[dyn["level"] == 0]["sharpe"].iloc[0]
    assert d["mean"] == pytest.approx(vals.mean()) and d["delta"] == pytest.approx(vals.mean() - clean)
    assert d["n_seeds"] == 2
    assert (deg[deg["strategy"] == "RiskParity"]["delta"].fillna(0) == 0).all()
    assert (out / "figures" / "forecast_errors.png").exists()
    assert "+-30%" in (out / "forecast_degradation.md").read_text()
    assert res.degradation is not None


def test_forecast_errors_need_a_signal(small_market, config, tmp_path):
    bare = MarketData(prices=small_market.prices, asset_classes=dict(small_market.asset_classes))
    spec = GridSpec(params={"risk_model": "ewma"}, forecast_errors=ForecastErrorSpec(levels=[0.1], seeds=1))
    with pytest.raises(ConfigError, match="none of the targets"):
        run_sweep(bare, config, spec, tmp_path / "x", progress=False)


def test_bad_point_value_fails_before_running(small_market, config, tmp_path):
    spec = GridSpec(axes={"smoothing": [0.15, 2.0]}, params={"risk_model": "ewma"})
    with pytest.raises(DRBError):
        run_sweep(small_market, config, spec, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad" / "sweep.csv").exists()


def test_backtrader_engine_agrees(small_market, config, tmp_path):
    spec = GridSpec(strategy="RiskParity", axes={"cov_window": [40]})
    fast = run_sweep(small_market, config, spec, tmp_path / "f", progress=False)
    slow = run_sweep(small_market, config, spec, tmp_path / "b", progress=False, engine="backtrader")
    np.testing.assert_allclose(
        fast.sweep[list(METRIC_COLUMNS)].to_numpy(float), slow.sweep[list(METRIC_COLUMNS)].to_numpy(float), rtol=1e-8, atol=1e-12
    )


# ----------------------------------------------------------------------------- the command line


def test_cli_sweep_demo(tmp_path, capsys):
    from runners.cli import main

    grid = _write(tmp_path, '[params]\nrisk_model = "ewma"\nwarmup = 60\n[grid]\nrc_threshold = [0.10, 0.15]\n')
    out = tmp_path / "cli"
    code = main(["sweep", "--demo", "--start", "2018-01-02", "--end", "2019-03-29", "--grid", str(grid),
                 "--out", str(out), "--workers", "1", "--quiet"])  # fmt: skip
    assert code == 0
    assert "2 points; best Sharpe" in capsys.readouterr().out
    assert len(pd.read_csv(out / "sweep.csv")) == 2
    assert (out / "figures" / "line_sharpe__rc_threshold.png").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["sweep", "--demo", "--out", "X"], "give --grid GRID.toml and/or --forecast-errors"),
        (["sweep", "--demo", "--grid", "missing.toml", "--out", "X"], "grid file not found"),
        (["sweep", "--forecast-errors", "--out", "X"], "give a CONFIG file or --demo"),
        (["sweep", "--demo", "--forecast-errors", "--levels", "0.5,2", "--out", "X"], "not a decimal"),
    ],
)
def test_cli_sweep_errors(argv, match, capsys, tmp_path, monkeypatch):
    from runners.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match.split("\\")[0] in err


def test_sweep_part_failing_its_checksum_is_recomputed(small_market, config, tmp_path, capsys):
    spec = GridSpec(strategy="RiskParity", axes={"cov_window": [40, 60]})
    out = tmp_path / "s"
    run_sweep(small_market, config, spec, out, progress=False)
    first = pd.read_csv(out / "sweep.csv")
    part = out / "parts" / "sweep" / "point-000000.csv"
    part.write_bytes(part.read_bytes()[:-25])  # truncated
    capsys.readouterr()
    run_sweep(small_market, config, spec, out, progress=False)
    assert "point-000000.csv failed its sha256 check" in capsys.readouterr().err
    again = pd.read_csv(out / "sweep.csv")
    assert np.isfinite(again[["ann_return", "sharpe", "max_drawdown"]].to_numpy(float)).all()
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))
