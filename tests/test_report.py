"""report.md / report.html from a run directory, the `drb report` entry point, atomic writes."""

from __future__ import annotations

import base64
import json
import os
import re
import stat

import numpy as np
import pandas as pd
import pytest
from _fake_run import write_fake_run

from drb.errors import ConfigError, DataError
from drb.io import atomic_savefig, atomic_to_csv, atomic_write_bytes, atomic_write_text
from runners import rundir
from runners.metrics import METRIC_COLUMNS
from runners.report import (
    FIGURE_FILES,
    build_report,
    implied_prices,
    load_run,
    report_main,
    run_metrics,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The full report of a 300-day run, built once: 7 days of 2020 after the first investment
    (RiskParity starts in 2021), 2021, 43 days of 2022; with the run's time_risk.csv and
    figures/time_risk.png (a stand-in picture) as drb compare writes them."""
    from matplotlib.figure import Figure

    run_dir = write_fake_run(tmp_path_factory.mktemp("rep"), n_days=300, start="2020-12-21")
    table = _write_time_risk(run_dir)
    fig = Figure(figsize=(3, 2))
    fig.text(0.5, 0.5, "time risk")
    atomic_savefig(fig, run_dir / "figures" / "time_risk.png")
    timings: dict[str, float] = {}
    written = build_report(run_dir, tearsheets=False, window="2021-04-01:2021-08-31", timings=timings)
    return run_dir, written, timings, table


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One short single-strategy run, built once with the progress bar on: warnings recorded in
    run.json, no metrics.csv, an extra figure written by the run, a backtest time."""
    import contextlib
    import io

    from matplotlib.figure import Figure

    run_dir = write_fake_run(tmp_path_factory.mktemp("small"), n_days=60,
                             strategies=("DynamicRiskBudget",), with_metrics=False)
    info = json.loads((run_dir / "run.json").read_text())
    info["strategy_info"]["DynamicRiskBudget"]["warnings"] = ["EGARCH fit for asset 1 failed"] * 2 + ["other"]
    info["timings"] = {"backtest_s": 1.5}
    (run_dir / "run.json").write_text(json.dumps(info))
    fig = Figure(figsize=(3, 2))
    fig.text(0.5, 0.5, "extra")
    atomic_savefig(fig, run_dir / "figures" / "extra_analysis.png")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        written = build_report(run_dir, tearsheets=False, progress=True)
    return run_dir, written, err.getvalue()


def test_every_file_exists_and_is_not_empty(built):
    run_dir, written, *_ = built
    for key, path in written.items():
        assert path == run_dir / key
        assert path.is_file() and path.stat().st_size > 0, key
    figs = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figs == sorted(name for name, _ in FIGURE_FILES.values())
    # every figure but time_risk.png, which the run writes (its per-bar inputs are not saved)
    assert sorted(k for k in written if k.startswith("figures/")) == sorted(
        f"figures/{name}" for key, (name, _) in FIGURE_FILES.items() if key != "time_risk")
    for name in figs:
        assert (run_dir / "figures" / name).read_bytes().startswith(PNG)
    for stem in ("per_year_returns", "budget_log", "triggers"):
        assert f"tables/{stem}.csv" in written and f"tables/{stem}.md" in written
    assert {"report.md", "report.html"} <= set(written)
    assert not list(run_dir.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_other_figures_of_the_run_are_embedded_too(small):
    run_dir, _, _ = small
    page = (run_dir / "report.html").read_text()
    assert 'data-figure="figures/extra_analysis.png"' in page
    md = (run_dir / "report.md").read_text()
    assert "## Other figures of the run" in md and "](figures/extra_analysis.png)" in md


def _write_time_risk(run_dir, *, drop_sections=()):
    """time_risk.csv as drb compare writes it (runners.experiments.time_risk.time_risk_table), from the fake run's
    weights under a time-varying covariance: the contributions of a close's weights land on the
    next day, so they cover each strategy's return days but its first."""
    from runners.experiments.time_risk import time_risk_table
    from strategies.time_axis import time_risk_contributions

    returns = pd.read_csv(run_dir / "returns.csv", index_col="date", parse_dates=True)
    contributions = {}
    for s in returns.columns:
        w = pd.read_csv(run_dir / "weights" / f"{s}.csv", index_col="date", parse_dates=True)
        days = returns[s].dropna().index
        w = w.reindex(days).iloc[:-1]
        t = np.arange(len(w))
        vols = np.array([0.18, 0.05, 0.20, 0.15])[None, :] * (1.0 + 0.5 * np.sin(t / 40.0))[:, None]
        corr = np.full((4, 4), 0.3) + 0.7 * np.eye(4)
        covs = vols[:, :, None] * vols[:, None, :] * corr
        c = time_risk_contributions(w.to_numpy(), covs, dt=1.0 / 252.0)
        contributions[s] = pd.DataFrame(c, index=days[1:], columns=w.columns)
    table = time_risk_table(contributions)
    table = table.drop(index=[k for k in table.index if k[0] in drop_sections or k[1] in drop_sections])
    rundir.write_table_csv(run_dir, rundir.TIME_RISK_CSV, table)
    return table


def _section_of(md: str, heading: str) -> str:
    return md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_time_risk_tables_and_figure(built, tmp_path):
    import shutil

    built_dir, _, _, table = built
    assert table.loc[("bars", "2020"), "DynamicRiskBudget"] == 7
    md = (built_dir / "report.md").read_text()
    sec = _section_of(md, "Risk over time (time-axis risk contributions)")
    assert "Other figures of the run" not in md  # time_risk.png has its own section and caption
    assert "](figures/time_risk.png)" in sec and FIGURE_FILES["time_risk"][1] in sec
    assert ("| Strategy | Ex-ante vol p.a. | HHI years (equal risk) | Eff. years (equal risk) | "
            "HHI months (equal risk) | Eff. months (equal risk) | equity | bond | commodity | "
            "real_estate |") in sec
    c = table["DynamicRiskBudget"]
    vol = np.sqrt(c["concentration", "total_variance"] * 252 / c["bars"].sum())
    row = (f"| DynamicRiskBudget | {100 * vol:.1f}% | {c['concentration', 'hhi_years']:.3f} "
           f"({c['concentration', 'hhi_years_equal_risk']:.3f}) | {c['concentration', 'effective_years']:.2f} "
           f"({1 / c['concentration', 'hhi_years_equal_risk']:.2f}) | {c['concentration', 'hhi_months']:.4f} "
           f"({c['concentration', 'hhi_months_equal_risk']:.4f}) | {c['concentration', 'effective_months']:.1f} "
           f"({1 / c['concentration', 'hhi_months_equal_risk']:.1f}) | "
           + " | ".join(f"{100 * c['asset', a]:.1f}%" for a in ("equity", "bond", "commodity", "real_estate"))
           + " |")
    assert row in sec
    # by year: the 7-day stub folded into 2021, the partial 2022 marked with its trading days
    assert "| Strategy | 2021 (+7 d of 2020) | 2022 (43 d) |" in sec
    folded = c["year", "2020"] + c["year", "2021"]
    assert f"| DynamicRiskBudget | {100 * folded:.1f}% | {100 * c['year', '2022']:.1f}% |" in sec
    rp = table["RiskParity"]
    assert pd.isna(rp["year", "2020"])  # not invested yet: its own 2021 share in the column
    assert f"| RiskParity | {100 * rp['year', '2021']:.1f}% |" in sec
    assert "2020 (7 d) into 2021" in sec and "2022 (43 d)" in sec
    assert "- [time_risk.csv](time_risk.csv)" in md
    page = (built_dir / "report.html").read_text()
    assert "<h2>Risk over time (time-axis risk contributions)</h2>" in page
    assert "2021 (+7 d of 2020)</th>" in page and "HHI years (equal risk)</th>" in page
    assert 'data-figure="figures/time_risk.png"' in page

    # the tables come from the saved csv (what drb report reads again); on a copy of the run
    run_dir = shutil.copytree(built_dir, tmp_path / "r")
    tr = pd.read_csv(run_dir / "time_risk.csv", index_col=[0, 1])
    tr.loc[("concentration", "hhi_years"), "DynamicRiskBudget"] = 0.5
    tr.to_csv(run_dir / "time_risk.csv")
    assert f"| DynamicRiskBudget | {100 * vol:.1f}% | 0.500 (" in _time_risk_section(run_dir)


def _time_risk_section(run_dir) -> str:
    """The markdown of the report's time-risk section, from the run folder as it is now (what
    build_report writes under its heading, without rebuilding the figures)."""
    from runners.report.build import _md, _time_risk_blocks

    return _md(_time_risk_blocks(load_run(run_dir)), "t").split("\n", 2)[2]


def test_time_risk_csv_of_older_runs(tmp_path):
    # written before the bar counts and the equal-risk HHIs: both from returns.csv, the same values
    run_dir = write_fake_run(tmp_path / "r", n_days=300, start="2020-12-21")
    full = _write_time_risk(run_dir, drop_sections=("bars", "hhi_years_equal_risk", "hhi_months_equal_risk"))
    assert "bars" not in full.index.get_level_values(0)
    old = _time_risk_section(run_dir)
    _write_time_risk(run_dir)
    new = _time_risk_section(run_dir)
    assert "day counts from returns.csv" in old and "day counts from time_risk.csv" in new
    assert old.replace("returns.csv, this time_risk.csv has none", "time_risk.csv") == new


def test_run_without_time_risk_csv(small):
    run_dir, written, _ = small
    assert "time_risk.csv" not in written and not (run_dir / "time_risk.csv").exists()
    md = (run_dir / "report.md").read_text()
    sec = _section_of(md, "Risk over time (time-axis risk contributions)")
    assert "No time_risk.csv in this run" in sec and "| Strategy |" not in sec
    assert "time_risk.csv" in _section_of(md, "Inputs not found")
    assert "No time_risk.csv in this run" in (run_dir / "report.html").read_text()


def test_html_embeds_every_figure(built):
    run_dir, *_ = built
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    embedded = re.findall(r'<figure data-figure="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    names = {name for name, _ in embedded}
    for png in (run_dir / "figures").glob("*.png"):
        assert f"figures/{png.name}" in names, png.name
    for name, data in embedded:
        assert base64.b64decode(data) == (run_dir / name).read_bytes()
    # self-contained: no external images, scripts or stylesheets
    assert not re.search(r'<img[^>]+src="(?!data:)', page)
    assert "<script" not in page and "<link" not in page


def test_markdown_links_every_figure_and_tables(built):
    run_dir, *_ = built
    md = (run_dir / "report.md").read_text()
    for png in (run_dir / "figures").glob("*.png"):
        assert f"](figures/{png.name})" in md
    assert "| Strategy | Ann. return |" in md  # metrics table
    assert "| Year |" in md  # per-year returns
    assert "| Date | Executed | Trigger / event | Regime | equity budget (%)" in md  # Table 1 shape
    assert "| Strategy | Rebalances |" in md  # trigger log


def test_run_description(built):
    run_dir, *_ = built
    md = (run_dir / "report.md").read_text()
    assert "- **Data span:** 2020-12-21 to " in md and "(300 bars)" in md
    assert "- **Assets:** equity, bond, commodity, real_estate" in md
    # signals and their stand-ins, from run.json and regimes.csv
    assert "implied-volatility index: missing" in md
    assert "economic cycle from: price-based proxy (no macro data)" in md
    assert "volatility state from: equity EGARCH volatility (no volatility index)" in md
    assert "- **Benchmark (information ratio):** EqualWeight" in md
    assert "| DynamicRiskBudget | risk_model=egarch_dcc" in md
    # diagnostics per strategy (fit failures, solver fallbacks, order issues)
    assert "| Strategy | risk_model_refits | risk_model_failed_fits | solver_fallbacks |" in md
    assert '"config"' in md  # the configuration, verbatim


def test_results_first_configuration_last_and_folded(built):
    run_dir, *_ = built
    md = (run_dir / "report.md").read_text()
    heads = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert heads[0] == "Performance comparison"  # results open the report
    assert heads[-1] == "Configuration" and heads.index("The run") > heads.index("pyfolio tear sheets")
    config = _section_of(md, "Configuration")
    assert '"config"' in config and '"config"' not in md.split("## Configuration", 1)[0]
    assert "<details><summary>show the configuration</summary>" in config
    page = (run_dir / "report.html").read_text()
    assert page.index("<h2>Performance comparison</h2>") < page.index("<h2>The run</h2>") \
        < page.index("<h2>Configuration</h2>")


def test_report_time_and_progress(small):
    run_dir, _, err = small
    assert "report: 100%" in err and "7/7" in err  # one step per figure (no tear sheets here)
    timings = json.loads((run_dir / "run.json").read_text())["timings"]
    assert timings["backtest_s"] == 1.5 and timings["report_s"] > 0


def test_equity_asset_found_by_class(tmp_path):
    run_dir = write_fake_run(tmp_path / "r", n_days=80, strategies=("DynamicRiskBudget",))
    info = json.loads((run_dir / "run.json").read_text())
    info["data"]["assets"] = {"equity": "bond", "bond": "equity", "commodity": "commodity",
                              "real_estate": "real_estate"}
    (run_dir / "run.json").write_text(json.dumps(info))
    from runners.report.build import _equity_asset

    assert _equity_asset(load_run(run_dir)) == "bond"  # the asset whose class is equity


def test_budget_log_window(built):
    run_dir, *_ = built
    log = pd.read_csv(run_dir / "tables" / "budget_log.csv")
    assert log["date"].iloc[0] < "2021-04-01" <= log["date"].iloc[1]
    assert log["date"].iloc[-1] <= "2021-08-31"
    assert log["event"].iloc[0] == "in force at window start"


def test_budget_log_of_next_bar_fills(tmp_path):
    run_dir = write_fake_run(tmp_path / "r", n_days=120, strategies=("DynamicRiskBudget",), decision_lag=1)
    build_report(run_dir, tearsheets=False)
    log = pd.read_csv(run_dir / "tables" / "budget_log.csv", parse_dates=["date", "executed"])
    budgets = pd.read_csv(run_dir / "budgets.csv", index_col="date", parse_dates=True)
    days = list(budgets.index)
    rows = log[log["executed"].notna()]
    assert len(rows) == len(pd.read_csv(run_dir / "rebalances.csv"))
    for _, row in rows.iterrows():
        assert days.index(row["executed"]) == days.index(row["date"]) + 1  # filled the next bar
        # the budget shown is the one decided that day
        assert row["equity"] == pytest.approx(100 * budgets.loc[row["date"], "smoothed_equity"])
    assert "Executed the day its trades filled (the next bar)" in (run_dir / "report.md").read_text()


def test_existing_metrics_are_kept(built):
    run_dir, written, timings, _ = built
    assert "metrics.csv" not in written  # the run's own metrics.csv is the source of truth
    assert set(timings) >= {"load", "metrics", "tables", "figures", "report"}


def test_metrics_recomputed_when_absent(tmp_path):
    with_m = write_fake_run(tmp_path / "a", n_days=200)
    without = write_fake_run(tmp_path / "b", n_days=200, with_metrics=False)
    got, note = run_metrics(load_run(without), benchmark="EqualWeight")
    ref = pd.read_csv(with_m / "metrics.csv", index_col="strategy")
    assert list(got.columns) == list(METRIC_COLUMNS)
    # the equity closes implied by positions and fills give the same extreme months
    pd.testing.assert_frame_equal(got, ref, rtol=1e-9)
    assert got["extreme_month_return"].notna().all()
    assert "implied by positions and fills" in note
    with pytest.raises(ConfigError, match="benchmark"):
        run_metrics(load_run(without), benchmark="Nope")


def test_other_benchmark_recomputes_metrics_and_keeps_the_runs(tmp_path):
    run_dir = write_fake_run(tmp_path / "r", n_days=120)
    before = (run_dir / "metrics.csv").read_bytes()
    written = build_report(run_dir, tearsheets=False, benchmark="RiskParity")
    assert (run_dir / "metrics.csv").read_bytes() == before  # the run's table is kept
    assert {"tables/metrics_vs_RiskParity.csv", "tables/metrics_vs_RiskParity.md"} <= set(written)
    ours = pd.read_csv(run_dir / "tables" / "metrics_vs_RiskParity.csv", index_col="strategy")
    theirs = pd.read_csv(run_dir / "metrics.csv", index_col="strategy")
    assert pd.isna(ours.loc["RiskParity", "info_ratio"]) and pd.isna(theirs.loc["EqualWeight", "info_ratio"])
    assert ours.loc["EqualWeight", "info_ratio"] != pytest.approx(theirs.loc["RiskParity", "info_ratio"])
    # every other column is the run's
    pd.testing.assert_frame_equal(ours.drop(columns="info_ratio"), theirs.drop(columns="info_ratio"), rtol=1e-9)
    md = (run_dir / "report.md").read_text()
    assert "- **Benchmark (information ratio):** RiskParity (chosen for this report; the run used EqualWeight)" in md
    assert "[tables/metrics_vs_RiskParity.csv](tables/metrics_vs_RiskParity.csv)" in md
    # the run's own benchmark named again: nothing recomputed
    assert "tables/metrics_vs_EqualWeight.csv" not in build_report(run_dir, tearsheets=False, benchmark="EqualWeight")
    with pytest.raises(ConfigError, match="benchmark"):
        build_report(run_dir, tearsheets=False, benchmark="Nope")


def test_warnings_of_the_run_are_listed(small):
    run_dir, _, _ = small
    md = (run_dir / "report.md").read_text()
    assert "- DynamicRiskBudget, warnings: EGARCH fit for asset 1 failed (x2)" in md
    assert "- DynamicRiskBudget, warnings: other" in md
    assert "<li>DynamicRiskBudget, warnings: other</li>" in (run_dir / "report.html").read_text()


def test_folded_table_keeps_its_caption_and_wide_headers_wrap(tmp_path):
    from runners.report.build import _Block, _html, _md
    from runners.report.tables import FormattedTable

    table = FormattedTable(("Year", "DynamicRiskBudget"), (False, True), (("2024", "1.0%"),) * 50)
    page = _html([_Block("table", "Budget adjustment log, window start to end", table=table,
                         collapsed=True, summary="show the 50 rows")], "t", tmp_path, embed_tearsheets=False)
    assert ('<p class="caption">Budget adjustment log, window start to end</p>'
            "<details><summary>show the 50 rows</summary><table") in page
    md = _md([_Block("table", "Budget adjustment log", table=table, collapsed=True,
                     summary="show the 50 rows")], "t")
    assert "<details><summary>show the 50 rows</summary>\n\n| Year |" in md
    assert md.rstrip().endswith("</details>")
    assert '<th class="num">Dynamic<wbr>Risk<wbr>Budget</th>' in page


def test_build_report_writes_metrics_when_absent(small):
    run_dir, written, _ = small
    assert {"metrics.csv", "metrics.md"} <= set(written)
    assert "computed from returns.csv" in (run_dir / "report.md").read_text()


def test_implied_prices_recover_closes():
    idx = pd.bdate_range("2024-01-01", periods=4)
    positions = pd.DataFrame({"equity": [0.0, 1000.0, 1100.0, 550.0]}, index=idx)
    txns = pd.DataFrame({"date": [idx[1], idx[3]], "symbol": ["equity", "equity"], "amount": [10.0, -5.0]})
    px = implied_prices(positions, txns, "equity")
    assert pd.isna(px.iloc[0])
    assert px.iloc[1:].tolist() == pytest.approx([100.0, 110.0, 110.0])


def test_missing_optional_inputs_are_reported(tmp_path):
    run_dir = write_fake_run(tmp_path / "r", n_days=120, strategies=("DynamicRiskBudget", "EqualWeight"))
    for name in ("budgets.csv", "regimes.csv", "transition_matrix.csv", "run.json"):
        (run_dir / name).unlink()
    written = build_report(run_dir, tearsheets=False)
    assert "figures/budgets.png" not in written and "figures/regimes.png" not in written
    md = (run_dir / "report.md").read_text()
    assert "Inputs not found" in md and "budgets.csv" in md and "run.json" in md
    assert "- **Data span:**" in md  # described from returns.csv alone


def test_malformed_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_run(tmp_path / "nowhere")
    run_dir = write_fake_run(tmp_path / "r", n_days=60, strategies=("DynamicRiskBudget",))
    (run_dir / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="run.json"):
        build_report(run_dir, tearsheets=False)
    (run_dir / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match="window"):
        build_report(run_dir, tearsheets=False, window="2021-05-01")
    (run_dir / "time_risk.csv").write_text("item,DynamicRiskBudget\n2021,1.0\n")
    with pytest.raises(DataError, match="time_risk.csv.*section"):
        build_report(run_dir, tearsheets=False)
    (run_dir / "time_risk.csv").write_text("section,item,DynamicRiskBudget\nyear,2021,abc\n")
    with pytest.raises(DataError, match="time_risk.csv.*non-numeric"):
        build_report(run_dir, tearsheets=False)
    (run_dir / "time_risk.csv").unlink()
    (run_dir / "returns.csv").write_text("date,DynamicRiskBudget\n2021-01-04,abc\n")
    with pytest.raises(DataError, match="non-numeric"):
        build_report(run_dir, tearsheets=False)


def test_cli_end_to_end_links_tearsheets(tmp_path, capfd, monkeypatch):
    # pyfolio rendering itself is tested in test_tearsheets.py; here a stand-in writes the PNGs
    # so the report's handling of them (arguments, links, embedding) is tested quickly
    from matplotlib.figure import Figure

    import runners.report.tearsheets as ts

    calls = {}

    procs = []

    def fake_write_tearsheets(run_dir, strategies, *, n_jobs, timings, benchmark, interesting_times,
                              on_done, workers):
        calls.update(strategies=list(strategies), n_jobs=n_jobs, benchmark=benchmark,
                     interesting_times=interesting_times, workers=len(workers))
        procs.extend(proc for proc, _ in workers._procs)
        out = {}
        for s in strategies:
            fig = Figure(figsize=(2, 8))
            fig.text(0.5, 0.5, s)
            out[s] = atomic_savefig(fig, run_dir / "tearsheets" / f"{s}.png")
            timings[s] = 0.1
            on_done(s)
        return out

    monkeypatch.setattr(ts, "write_tearsheets", fake_write_tearsheets)
    run_dir = write_fake_run(tmp_path / "r", n_days=130, strategies=("DynamicRiskBudget", "EqualWeight"))
    code = report_main([str(run_dir), "--window", "2021-03-01:", "--jobs", "3", "--embed-tearsheets",
                        "--quiet"])
    # against the run's benchmark; the fake run's prices are synthetic: no historical stress periods
    # the workers were started before the run was read, one per strategy at most (not --jobs 3),
    # and none outlives the report when the tear sheets did not use them
    assert calls == {"strategies": ["DynamicRiskBudget", "EqualWeight"], "n_jobs": 3,
                     "benchmark": "EqualWeight", "interesting_times": False, "workers": 2}
    assert len(procs) == 2 and all(p.poll() is not None for p in procs)
    out, err = capfd.readouterr()
    assert code == 0
    assert err == ""
    assert out.strip().splitlines() == [out.strip()]  # one line
    assert str(run_dir / "report.html") in out
    page = (run_dir / "report.html").read_text()
    for s in ("DynamicRiskBudget", "EqualWeight"):
        png = run_dir / "tearsheets" / f"{s}.png"
        assert png.read_bytes().startswith(PNG)
        assert f'href="tearsheets/{s}.png"' in page or f'data-figure="tearsheets/{s}.png"' in page
        assert f'data-figure="tearsheets/{s}.png"' in page  # --embed-tearsheets
        assert f"](tearsheets/{s}.png)" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["/definitely/not/here"], "run directory not found"),
        ([], "RUN_DIR"),
        (["x", "--bogus"], "unrecognized arguments"),
        (["x", "--jobs", "0"], "--jobs"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, needle, capfd):
    assert report_main(argv) == 2
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drb report: error: ") and needle in lines[0]
    assert "Traceback" not in err


def test_cli_bad_window_and_help(tmp_path, capfd):
    run_dir = write_fake_run(tmp_path / "r", n_days=40, strategies=("DynamicRiskBudget",))
    assert report_main([str(run_dir), "--no-tearsheets", "--window", "2021-03-01:2021-01-01"]) == 2
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "after end" in err
    assert report_main([str(run_dir), "--no-tearsheets", "--window", "2030-01-01:"]) == 2
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not overlap" in err
    assert report_main(["--help"]) == 0
    assert "RUN_DIR" in capfd.readouterr().out


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_writers(tmp_path):
    p = atomic_write_text(tmp_path / "sub" / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    mode = stat.S_IMODE(p.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new"
    csv = atomic_to_csv(pd.DataFrame({"x": [1, 2]}), tmp_path / "t.csv", index=False)
    assert csv.read_text() == "x\n1\n2\n"
    with pytest.raises(TypeError):
        atomic_write_text(tmp_path / "b.txt", b"bytes")  # type: ignore[arg-type]
    assert sorted(f.name for f in tmp_path.rglob("*") if f.is_file()) == ["a.txt", "t.csv"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")

    class Broken:
        def savefig(self, *a, **k):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_savefig(Broken(), target)
    assert target.read_bytes() == b"old"

    class Exploding:
        def __bytes__(self):
            raise RuntimeError("half-way")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, Exploding())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["fig.png"]


def test_assets_from_run_json(built):
    run_dir, *_ = built
    assert load_run(run_dir).assets == ["equity", "bond", "commodity", "real_estate"]


def test_report_and_time_risk_register_with_argparse(tmp_path, capsys):
    """`drb report` / `drb time-risk` are ordinary argparse commands: register_cli adds them with
    the report's options; the handler raises typed errors for the CLI's one handler to print."""
    import argparse

    from runners.report import register_cli

    commands: dict = {}
    register_cli(commands)
    assert set(commands) == {"report", "time-risk"}
    parser = argparse.ArgumentParser(prog="drb")
    sub = parser.add_subparsers(dest="command")
    for name, (help_, build, handler) in commands.items():
        p = sub.add_parser(name, help=help_)
        build(p)
        p.set_defaults(handler=handler)
    args = parser.parse_args(["report", "RUN", "--window", "2021-01-01:", "--jobs", "3", "--no-tearsheets",
                              "--benchmark", "X", "--embed-tearsheets", "--quiet"])
    assert (args.run_dir, args.window, args.jobs, args.no_tearsheets, args.benchmark) == ("RUN", "2021-01-01:", 3,
                                                                                          True, "X")
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "RUN", "--jobs", "0"])
    with pytest.raises(DataError, match="run directory not found"):
        args.handler(parser.parse_args(["report", str(tmp_path / "nowhere"), "--quiet"]))
    args = parser.parse_args(["time-risk", "--out", str(tmp_path)])
    assert args.handler(args) == 0 and (tmp_path / "mean_variance_contributions.png").is_file()
    assert "stock contribution < 0 below (s0 = 1): S*(0) = " in capsys.readouterr().out


@pytest.mark.parametrize("rows, folded", [(40, False), (41, True)])
def test_budget_log_folds_past_forty_rows(rows, folded):
    from types import SimpleNamespace

    from runners.report.build import _budget_log_block

    d = pd.bdate_range("2020-01-01", periods=rows)
    log = pd.DataFrame({"date": d, "executed": d, "event": "periodic", "regime": "expansion/low",
                        "equity": 60.0, "bond": 40.0})
    b = SimpleNamespace(lo=None, hi=None, budget_lag=1)
    block = _budget_log_block(b, log)
    assert block.collapsed is folded and len(block.table.rows) == rows
    assert block.summary == f"show the {rows} rows"
