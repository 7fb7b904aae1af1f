"""significance.csv, the joint tests and the in-sample / held-out split in a comparison run (issue 15)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from drb.errors import ConfigError
from feeds import MarketData, synthetic_market
from runners.config import RunConfig, parse_config
from runners.experiments.compare import run_comparison

NAMES = ["DynamicRiskBudget", "EqualWeight", "RiskParity"]
CUT = "2019-06-03"


@pytest.fixture(scope="module")
def market() -> MarketData:
    return MarketData.from_synthetic(synthetic_market(seed=0, start="2018-01-02", end="2019-12-31"))


def _run(market: MarketData, out, **cfg) -> tuple:
    config = RunConfig(source="test", **cfg)
    res = run_comparison(market, config, strategies=NAMES, out_dir=out, workers=1, progress=False)
    return res, json.loads((out / "run.json").read_text())


@pytest.fixture(scope="module")
def split_run(market, tmp_path_factory):
    out = tmp_path_factory.mktemp("split")
    res, info = _run(market, out, holdout_start=pd.Timestamp(CUT))
    return out, res, info


@pytest.fixture(scope="module")
def truncated_run(market, tmp_path_factory):
    out = tmp_path_factory.mktemp("trunc")
    cut = pd.Timestamp(CUT)
    short = market.truncate(market.prices.index[market.prices.index < cut][-1])
    res, info = _run(short, out)
    return out, res, info


def test_unsplit_run_writes_significance_without_span(market, tmp_path):
    res, info = _run(market, tmp_path)
    sig = pd.read_csv(tmp_path / "significance.csv")
    assert list(sig.columns) == ["strategy", "versus", "sharpe_diff", "ci_low", "ci_high", "p_value", "method"]
    assert list(sig["strategy"].unique()) == ["DynamicRiskBudget"] and list(sig["versus"]) == NAMES[1:]
    m = res.metrics["sharpe"]
    for _, row in sig.iterrows():
        assert row["sharpe_diff"] == pytest.approx(m["DynamicRiskBudget"] - m[row["versus"]], abs=1e-5)
    ev = info["evidence"]
    assert ev["primary"] == "DynamicRiskBudget" and ev["holdout_start"] is None
    assert list(ev["spans"]) == ["full"]
    joint = ev["spans"]["full"]["joint"]
    assert joint["spa"]["benchmark"] == "DynamicRiskBudget" and 0 <= joint["spa"]["p_consistent"] <= 1
    assert set(joint["mcs"]["included"]) | set(joint["mcs"]["excluded"]) == set(NAMES)
    assert ev["spans"]["full"]["block_lengths"]["EqualWeight"] >= 1
    assert not (tmp_path / "metrics_spans.csv").exists()
    # reruns agree (seeded)
    _run(market, tmp_path / "again")
    pd.testing.assert_frame_equal(sig, pd.read_csv(tmp_path / "again" / "significance.csv"))


def test_split_run_writes_every_span(split_run):
    out, res, info = split_run
    sig = pd.read_csv(out / "significance.csv")
    assert list(sig.columns)[-1] == "span" and list(sig["span"].unique()) == ["in_sample", "holdout", "full"]
    spans = pd.read_csv(out / "metrics_spans.csv")
    assert list(spans.columns[:2]) == ["span", "strategy"]
    full = spans[spans["span"] == "full"].set_index("strategy")
    pd.testing.assert_series_equal(full["sharpe"], res.metrics["sharpe"], check_names=False, atol=1e-6)
    # metrics.csv keeps its shape for existing readers
    assert pd.read_csv(out / "metrics.csv").columns[0] == "strategy"
    ev = info["evidence"]
    assert ev["holdout_start"] == CUT and list(ev["spans"]) == ["in_sample", "holdout", "full"]
    assert ev["spans"]["in_sample"]["end"] < CUT <= ev["spans"]["holdout"]["start"]


def test_nothing_in_sample_depends_on_the_held_out_span(split_run, truncated_run):
    """Truncating the data at the split leaves every in-sample decision and statistic unchanged."""
    out, res, _ = split_run
    tout, tres, _ = truncated_run
    cut = pd.Timestamp(CUT)
    for name in NAMES:
        w, tw = res.results[name].weights, tres.results[name].weights
        pd.testing.assert_frame_equal(w.loc[w.index < cut], tw.loc[tw.index < cut])
        rb, trb = res.results[name].rebalances, tres.results[name].rebalances
        if len(rb):
            rb = rb[pd.to_datetime(rb["date"]) < cut].reset_index(drop=True)
            trb = trb[pd.to_datetime(trb["date"]) < cut].reset_index(drop=True)
            pd.testing.assert_frame_equal(rb, trb)
    sig = pd.read_csv(out / "significance.csv")
    ins = sig[sig["span"] == "in_sample"].drop(columns="span").reset_index(drop=True)
    pd.testing.assert_frame_equal(ins, pd.read_csv(tout / "significance.csv"))
    spans = pd.read_csv(out / "metrics_spans.csv")
    ins_m = spans[spans["span"] == "in_sample"].drop(columns="span").set_index("strategy")
    tm = pd.read_csv(tout / "metrics.csv", index_col="strategy")
    cols = [c for c in tm.columns if c != "turnover"]  # a fill on the first held-out day is not in-sample
    pd.testing.assert_frame_equal(ins_m[cols], tm[cols], atol=1e-6)


def test_options_are_validated(market, tmp_path):
    cfg = parse_config({"run": {"primary": "RiskParity", "holdout_start": "2019-06-03"}}, require_prices=False)
    assert cfg.primary == "RiskParity" and cfg.holdout_start == pd.Timestamp("2019-06-03")
    assert cfg.to_dict()["run"]["holdout_start"] == "2019-06-03"
    with pytest.raises(ConfigError, match="holdout_start: not a date"):
        parse_config({"run": {"holdout_start": "soon"}}, require_prices=False)
    with pytest.raises(ConfigError, match="run.primary: 'MinimumVariance' is not among"):
        _run(market, tmp_path, primary="MinimumVariance")
    with pytest.raises(ConfigError, match="holdout_start: 2030-01-01 is outside the data"):
        _run(market, tmp_path, holdout_start=pd.Timestamp("2030-01-01"))


def test_cli_holdout_option(tmp_path, capsys):
    from runners.cli import main

    code = main(["demo", "--holdout-start", "not-a-date", "--out", str(tmp_path)])
    assert code == 2
    assert "command line: run.holdout_start: not a date" in capsys.readouterr().err


def test_sweep_writes_deflated_sharpe_and_pbo(tmp_path):
    from runners.experiments.sweep import GridSpec, run_sweep

    mkt = MarketData.from_synthetic(synthetic_market(seed=3, start="2018-01-02", end="2019-06-28"))
    cfg = RunConfig(source="test")
    cfg.execution["warmup"] = 60
    spec = GridSpec(
        strategy="DynamicRiskBudget",
        axes={"smoothing": [0.05, 0.15, 0.25, 0.35], "rc_threshold": [0.10, 0.20]},
        params={"risk_model": "ewma"},
    )
    res = run_sweep(mkt, cfg, spec, tmp_path, progress=False)
    assert "daily_returns" not in pd.read_csv(tmp_path / "sweep.csv").columns
    summary = pd.read_csv(tmp_path / "sweep_summary.csv").set_index("item")["value"]
    assert int(summary["n_trials"]) == 8 and int(summary["best_point"]) == int(res.sweep["sharpe"].idxmax())
    assert float(summary["sharpe_best"]) == pytest.approx(res.sweep["sharpe"].max(), abs=1e-9)
    assert 0 <= float(summary["deflated_sharpe"]) <= 1 and 0 <= float(summary["pbo"]) <= 1
    md = (tmp_path / "sweep.md").read_text()
    assert "deflated Sharpe ratio" in md and "Probability of backtest overfitting (CSCV" in md
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert manifest["evidence"]["n_trials"] == 8
    # a resumed sweep reads the returns back from its parts
    run_sweep(mkt, cfg, spec, tmp_path, progress=False)
    again = pd.read_csv(tmp_path / "sweep_summary.csv").set_index("item")["value"]
    pd.testing.assert_series_equal(summary, again)


def test_plain_words():
    from runners.report.evidence import plain_words

    sig = pd.DataFrame({"versus": ["A", "B", "C"], "sharpe_diff": [0.5, -0.8, 0.1], "p_value": [0.01, 0.03, 0.6]})
    text = plain_words(sig, "P")
    assert text.startswith("P's Sharpe ratio is higher than that of A (+0.50, p = 0.010)")
    assert "lower than that of B (-0.80, p = 0.030)" in text and "the other 1 difference(s) are not significant" in text
    none = plain_words(sig.assign(p_value=[0.2, 0.5, 0.9]), "P")
    assert none == "No baseline's Sharpe ratio differs from P's at 5% (smallest p-value 0.200, against A)."


def test_report_section_shows_both_spans(split_run):
    from runners.report import build_report

    out, _, _ = split_run
    build_report(out, tearsheets=False)
    md = (out / "report.md").read_text()
    section = md.split("## Is it better?", 1)[1].split("\n## ", 1)[0]
    assert "In-sample: " in section and "Held-out: " in section and "Whole run: " in section
    assert "Hansen's SPA test (benchmark DynamicRiskBudget" in section and "90% model confidence set" in section
    assert "| Versus | Sharpe diff (in-sample) |" in section and "Sharpe (held-out)" in section
    assert "Is it better?" in (out / "report.html").read_text()
