"""Run folders never mix two runs: built beside --out and swapped in at the end (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from drb.errors import ConfigError
from feeds import MarketData, synthetic_market
from runners.config import RunConfig
from runners.experiments.compare import run_comparison
from runners.rundir import clean_leftovers, swap_in


@pytest.fixture(scope="module")
def run_market() -> MarketData:
    return MarketData.from_synthetic(synthetic_market(seed=3, start="2019-01-02", end="2020-06-30"))


def _files(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_rerun_with_fewer_strategies_leaves_no_file_of_the_first(run_market, tmp_path):
    out = tmp_path / "run"
    cfg = RunConfig(source="test")
    run_comparison(run_market, cfg, strategies=["EqualWeight", "InverseVolatility", "RiskParity"],
                   out_dir=out, workers=1, progress=False)
    first = _files(out)
    assert "weights/RiskParity.csv" in first
    (out / "stale-marker.txt").write_text("x")  # anything of the first run's folder
    run_comparison(run_market, cfg, strategies=["EqualWeight"], out_dir=out, workers=1,
                   progress=False)
    second = _files(out)
    assert not any("RiskParity" in f or "InverseVolatility" in f for f in second)
    assert "stale-marker.txt" not in second
    assert json.loads((out / "run.json").read_text())["strategies"] == ["EqualWeight"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left


def test_killed_run_leaves_old_folder_and_next_run_cleans_its_temp(run_market, tmp_path):
    out = tmp_path / "run"
    run_comparison(run_market, RunConfig(source="t"), strategies=["EqualWeight"], out_dir=out,
                   workers=1, progress=False)
    before = (out / "run.json").read_bytes()
    # A run killed mid-write: its temporary folder beside the target, with a dead pid.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".run.drb-tmp-{pid}"
    (stale / "weights").mkdir(parents=True)
    (stale / "returns.csv").write_text("half")
    assert (out / "run.json").read_bytes() == before  # the old run is intact
    run_comparison(run_market, RunConfig(source="t"), strategies=["EqualWeight"], out_dir=out,
                   workers=1, progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_killed_between_renames_restores_the_old_folder(tmp_path):
    out = tmp_path / "run"
    old = tmp_path / ".run.drb-old-999999999"
    old.mkdir()
    (old / "run.json").write_text("{}")
    clean_leftovers(out)
    assert (out / "run.json").is_file() and not old.exists()


def test_swap_replaces_only_at_the_end(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("old")
    stage = tmp_path / f".run.drb-tmp-{os.getpid()}"
    stage.mkdir()
    (stage / "run.json").write_text("new")
    swap_in(stage, out)
    assert (out / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_folder_that_is_not_a_run_folder_is_refused_before_any_backtest(run_market, tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"not a drb run folder \(it holds thesis\.tex\)"):
        run_comparison(run_market, RunConfig(source="t"), strategies=["EqualWeight"], out_dir=tmp_path,
                       workers=1, progress=False)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


# ----------------------------------------------------------------------------- reader and writer


def _frames():
    import numpy as np
    import pandas as pd

    days = pd.bdate_range("2021-01-04", periods=5, name="date")
    w = pd.DataFrame({"equity": [0.6, 0.61, 0.123456789, 0.6, 0.6], "bond": 0.4}, index=days)
    pos = pd.DataFrame({"equity": 600.0, "bond": 400.0, "cash": 1.0}, index=days)
    txns = pd.DataFrame({"date": [days[0]], "symbol": ["equity"], "amount": [6.0], "price": [100.0],
                         "commission": [0.3]})
    rets = pd.DataFrame({"A": [np.nan, 0.01, -0.02, 0.0, 0.005]}, index=days)
    return days, w, pos, txns, rets


def test_rundir_writes_what_it_reads(tmp_path):
    """Every file written through runners.rundir comes back through its readers: the same names,
    columns and dates, numbers at the layout's precision (weights: 8 decimals)."""
    import pandas as pd

    from runners import rundir

    days, w, pos, txns, rets = _frames()
    rundir.write_table_csv(tmp_path, rundir.RETURNS_CSV, rets)
    rundir.write_strategy_frames(tmp_path, "A", weights=w, risk_contributions=w, positions=pos, transactions=txns)
    reb = pd.DataFrame({"date": [days[0]], "strategy": ["A"], "trigger": ["initial"], "turnover": [0.5]})
    rundir.write_table_csv(tmp_path, rundir.REBALANCES_CSV, reb)
    rundir.write_run_json(tmp_path, {"benchmark": None, "x": float("nan"), "assets": ["equity", "bond"]})
    run = rundir.load_run(tmp_path)
    assert run.strategies == ["A"] and run.assets == ["equity", "bond"]
    assert run.run_info["x"] is None  # non-finite numbers are null in run.json
    pd.testing.assert_frame_equal(run.returns, rets, check_freq=False)
    assert run.weights["A"].loc[days[2], "equity"] == 0.12345679  # FLOAT_FORMATS["weights"]: %.8f
    assert list(run.rebalances.columns) == list(rundir.REBALANCE_COLUMNS)
    assert set(run.missing) == {"budgets.csv", "regimes.csv", "transition_matrix.csv", "time_risk.csv"}
    # the tear sheets' reader of the same folder: UTC dates, the same numbers
    r, p, t = rundir.load_strategy_inputs(tmp_path, "A")
    assert str(r.index.tz) == "UTC" and len(r) == 4 and r.iloc[0] == 0.01
    assert list(p.columns) == ["equity", "bond", "cash"] and list(t.columns) == ["symbol", "amount", "price", "commission"]
    with pytest.raises(ValueError, match="not a top-level table"):
        rundir.write_table_csv(tmp_path, rundir.WEIGHTS, w)


def test_readers_share_one_csv_check(tmp_path):
    """Both readers refuse the same malformed file with the same one-line DataError."""
    from drb.errors import DataError
    from runners import rundir

    (tmp_path / rundir.RETURNS_CSV).write_text("day,A\n2021-01-04,0.1\n")
    with pytest.raises(DataError, match=r"returns\.csv: no 'date' column"):
        rundir.load_run(tmp_path)
    with pytest.raises(DataError, match=r"^returns: .*returns\.csv: no 'date' column$"):
        rundir.load_strategy_inputs(tmp_path, "A")
