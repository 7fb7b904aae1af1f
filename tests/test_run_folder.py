"""Run folders never mix two runs: built beside --out and swapped in at the end (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from drb.errors import ConfigError
from feeds import MarketData, synthetic_market
from runners.compare import run_comparison
from runners.config import RunConfig
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
                   out_dir=out, workers=1, progress=False, report=False)
    first = _files(out)
    assert "weights/RiskParity.csv" in first
    (out / "stale-marker.txt").write_text("x")  # anything of the first run's folder
    run_comparison(run_market, cfg, strategies=["EqualWeight"], out_dir=out, workers=1,
                   progress=False, report=False)
    second = _files(out)
    assert not any("RiskParity" in f or "InverseVolatility" in f for f in second)
    assert "stale-marker.txt" not in second
    assert json.loads((out / "run.json").read_text())["strategies"] == ["EqualWeight"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left


def test_killed_run_leaves_old_folder_and_next_run_cleans_its_temp(run_market, tmp_path):
    out = tmp_path / "run"
    run_comparison(run_market, RunConfig(source="t"), strategies=["EqualWeight"], out_dir=out,
                   workers=1, progress=False, report=False)
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
                   workers=1, progress=False, report=False)
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
                       workers=1, progress=False, report=False)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
