"""Tables: formats, the Table 1-shaped budget log, per-year returns, trigger summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DataError
from runners.metrics import METRIC_COLUMNS, compute_metrics
from runners.report import tables as T


def test_format_value_edge_cases():
    assert T.format_value(np.nan, "pct") == "n/a"
    assert T.format_value(math.inf, "ratio") == "inf"
    assert T.format_value(-math.inf, "pct") == "-inf"
    assert T.format_value(-0.0001, "pct") == "0.0%"  # no "-0.0%"
    assert T.format_value(-0.0123, "pct") == "-1.2%"
    assert T.format_value(0.012345, "pct2") == "1.23%"
    assert T.format_value(1.234, "ratio") == "1.23"
    assert T.format_value(3.6, "int") == "4"
    assert T.format_value("a|b", "text") == "a|b"


def test_markdown_escapes_pipes_and_aligns_numbers():
    df = pd.DataFrame({"name": ["a|b"], "x": [0.5]}, index=pd.Index(["r"], name="row"))
    md = T.to_markdown(df)
    lines = md.strip().splitlines()
    assert lines[0] == "| row | name | x |"
    assert lines[1] == "| :--- | :--- | ---: |"
    assert lines[2] == "| r | a\\|b | 0.50 |"
    html = T.format_table(df).html()
    assert "<td>a|b</td>" in html and '<td class="num">0.50</td>' in html


def test_metrics_table_markdown_and_csv(tmp_path):
    rets = pd.DataFrame({"A": [0.01, -0.02, 0.03], "B": [0.0, 0.0, 0.0]},
                        index=pd.bdate_range("2024-01-02", periods=3))
    m = compute_metrics(rets, {"A": 0.5})
    paths = T.write_metrics_table(m, tmp_path)
    back = pd.read_csv(paths["metrics.csv"], index_col="strategy")
    assert list(back.columns) == list(METRIC_COLUMNS)
    pd.testing.assert_frame_equal(back, m, check_exact=False, rtol=1e-12)
    md = paths["metrics.md"].read_text()
    rows = md.strip().splitlines()
    assert len(rows) == 2 + 2
    assert rows[0].startswith("| Strategy | Ann. return | Ann. vol | Sharpe")
    assert "| A |" in rows[2] and "50.0%" in rows[2]  # turnover in percent
    assert "n/a" in rows[3]  # B: flat -> undefined Sharpe


def _budget_fixture():
    dates = pd.bdate_range("2024-04-01", periods=10)
    regime = ["recovery/low"] * 3 + ["expansion/low"] * 4 + ["expansion/high"] * 3
    eq = [0.35, 0.35, 0.40, 0.40, 0.40, 0.48, 0.48, 0.48, 0.48, 0.58]
    budgets = pd.DataFrame({
        "date": dates, "phase": [r.split("/")[0] for r in regime],
        "vol_state": [r.split("/")[1] for r in regime], "regime": regime, "lambda": 0.15,
        "target_equity": 0.6, "target_bond": 0.4,
        "smoothed_equity": eq, "smoothed_bond": [1 - e for e in eq],
    })
    rebalances = pd.DataFrame({
        "date": [dates[2], dates[5], dates[9], dates[5]],
        "strategy": ["DynamicRiskBudget", "DynamicRiskBudget", "DynamicRiskBudget", "EqualWeight"],
        "trigger": ["periodic", "eigenvalue", "periodic+rc_deviation", "periodic"],
        "turnover": [0.05, 0.04, 0.03, 0.01],
    })
    return dates, budgets, rebalances


def test_budget_adjustment_log_table1_shape():
    dates, budgets, rebalances = _budget_fixture()
    log = T.budget_adjustment_log(budgets, rebalances, start=dates[1], end=dates[9])
    assert T.infer_decision_lag(budgets, rebalances) == 0  # fills on the decision bar here
    assert list(log.columns) == ["date", "executed", "event", "regime", "equity", "bond"]
    events = log["event"].tolist()
    # first: what was in force when the window opened (end of the day before)
    assert events[0] == "in force at window start"
    assert log["date"].iloc[0] == dates[0]
    assert log["equity"].iloc[0] == pytest.approx(35.0)
    assert events[1] == "periodic (scheduled)" and log["equity"].iloc[1] == pytest.approx(40.0)
    # regime changed on day 3 without a rebalance: logged, budget unchanged
    assert events[2] == "regime change recovery/low → expansion/low (no rebalance decided; budget unchanged)"
    assert log["equity"].iloc[2] == pytest.approx(40.0)
    assert events[3] == "correlation eigenvalue shift"
    # day 7: regime change alone; day 9: two triggers
    assert events[4].startswith("regime change expansion/low → expansion/high")
    assert events[5] == "periodic (scheduled) + risk-contribution deviation"
    assert (log["equity"] + log["bond"]).tolist() == pytest.approx([100.0] * len(log))
    # EqualWeight's rebalance is not in the dynamic model's log
    assert len(log) == 6
    md = T.budget_log_markdown(log)
    assert log["executed"].isna().tolist() == [True, False, True, False, True, False]
    assert "| Date | Executed | Trigger / event | Regime | equity budget (%) | bond budget (%) |" in md
    assert "| 2024-04-03 | 2024-04-03 | periodic (scheduled) | recovery/low | 40.0 | 60.0 |" in md
    assert "| 2024-04-01 |  | in force at window start |" in md


def test_budget_log_window_and_regime_trigger_text():
    dates, budgets, rebalances = _budget_fixture()
    rebalances = pd.concat([rebalances, pd.DataFrame({
        "date": [dates[3]], "strategy": ["DynamicRiskBudget"], "trigger": ["regime"], "turnover": [0.02]})])
    log = T.budget_adjustment_log(budgets, rebalances, start="2024-04-04", end="2024-04-05")
    assert log["event"].tolist() == ["in force at window start",
                                     "regime change recovery/low → expansion/low"]
    whole = T.budget_adjustment_log(budgets, rebalances, include_regime_events=False)
    # window from the first day: the first rebalance row is preceded by the day-one budget
    assert whole["event"].iloc[0] == "in force at window start"
    assert not any("no rebalance" in e for e in whole["event"])
    empty = T.budget_adjustment_log(budgets, rebalances, start="2030-01-01")
    assert empty.empty and list(empty.columns) == ["date", "executed", "event", "regime", "equity", "bond"]


def _next_open_fixture():
    """As the packaged runner writes it (cheat-on-open): budgets.csv changes on the decision bar,
    rebalances.csv is dated the next bar, when the orders filled at the open."""
    dates = pd.bdate_range("2024-04-01", periods=12)
    regime = ["recovery/low"] * 4 + ["expansion/low"] * 3 + ["expansion/high"] * 5
    eq = [0.40, 0.40, 0.44, 0.44, 0.44, 0.44, 0.50, 0.50, 0.50, 0.50, 0.55, 0.55]
    budgets = pd.DataFrame({"date": dates, "regime": regime, "smoothed_equity": eq,
                            "smoothed_bond": [1 - e for e in eq]})
    rebalances = pd.DataFrame({
        # decided on bars 2, 6 and 10, filled one bar later; bar 4 (regime change) is in the
        # cooldown, the regime trigger fires on bar 6 together with the RC deviation
        "date": [dates[3], dates[7], dates[11]],
        "strategy": "DynamicRiskBudget",
        "trigger": ["periodic", "regime+rc_deviation", "regime"],
        "turnover": [0.05, 0.04, 0.03],
    })
    return dates, budgets, rebalances


def test_budget_log_matches_next_open_fills_to_their_decision():
    dates, budgets, rebalances = _next_open_fixture()
    assert T.infer_decision_lag(budgets, rebalances) == 1
    log = T.budget_adjustment_log(budgets, rebalances)
    assert log["date"].tolist() == [dates[0], dates[2], dates[4], dates[6], dates[7], dates[10]]
    rows = log.to_dict("records")
    assert rows[1]["event"] == "periodic (scheduled)" and rows[1]["executed"] == dates[3]
    assert rows[1]["equity"] == pytest.approx(44.0)  # the budget decided on bar 2, not bar 3's
    assert rows[2]["event"] == ("regime change recovery/low → expansion/low "
                                "(no rebalance decided; budget unchanged)")
    assert pd.isna(rows[2]["executed"]) and rows[2]["equity"] == pytest.approx(44.0)
    # the regime trigger fired on bar 6 for the change of bar 4: named with its date
    assert rows[3]["event"] == ("regime change recovery/low → expansion/low (on 2024-04-05) "
                                "+ risk-contribution deviation")
    assert rows[3]["executed"] == dates[7] and rows[3]["equity"] == pytest.approx(50.0)
    assert rows[4]["event"].startswith("regime change expansion/low → expansion/high (no rebalance")
    assert rows[5]["event"] == "regime change expansion/low → expansion/high (on 2024-04-10)"
    assert rows[5]["executed"] == dates[11] and rows[5]["equity"] == pytest.approx(55.0)
    # the lag can be forced; read as fills on the decision bar, the budgets would be off by one
    same_bar = T.budget_adjustment_log(budgets, rebalances, decision_lag=0)
    assert same_bar.loc[same_bar["event"] == "periodic (scheduled)", "equity"].tolist() == [44.0]
    assert same_bar.loc[same_bar["event"] == "periodic (scheduled)", "date"].tolist() == [dates[3]]
    with pytest.raises(ConfigError, match="decision_lag"):
        T.budget_adjustment_log(budgets, rebalances, decision_lag=-1)


def test_budget_change_without_trade_is_logged():
    dates, budgets, rebalances = _next_open_fixture()
    # the bar-6 decision came to no order: no fill, but the budget changed
    rebalances = rebalances[rebalances["date"] != dates[7]]
    log = T.budget_adjustment_log(budgets, rebalances, decision_lag=1)
    row = log[log["date"] == dates[6]].iloc[0]
    assert row["event"] == "budget updated, no trade executed"
    assert pd.isna(row["executed"]) and row["equity"] == pytest.approx(50.0)


def test_parse_window():
    assert T.parse_window(None) == (None, None)
    assert T.parse_window("2024-04-01:2024-06-30") == (pd.Timestamp("2024-04-01"), pd.Timestamp("2024-06-30"))
    assert T.parse_window(":2024-06-30") == (None, pd.Timestamp("2024-06-30"))
    for bad in ("2024-04-01", "2024-06-30:2024-04-01", "x:y", "a:b:c"):
        with pytest.raises(ConfigError):
            T.parse_window(bad)


def test_budget_log_needs_columns():
    _, budgets, rebalances = _budget_fixture()
    with pytest.raises(DataError, match="smoothed"):
        T.budget_adjustment_log(budgets.drop(columns=["smoothed_equity", "smoothed_bond"]), rebalances)
    with pytest.raises(DataError, match="trigger"):
        T.budget_adjustment_log(budgets, rebalances.drop(columns=["trigger"]))


def test_per_year_returns_by_hand():
    idx = pd.DatetimeIndex(["2023-12-28", "2023-12-29", "2024-01-02", "2024-06-03"])
    rets = pd.DataFrame({"A": [0.1, -0.1, 0.05, 0.05], "B": [np.nan, np.nan, 0.0, 0.01]}, index=idx)
    t = T.per_year_returns(rets)
    assert list(t.index) == [2023, 2024]
    assert t.loc[2023, "A"] == pytest.approx(1.1 * 0.9 - 1)
    assert t.loc[2024, "A"] == pytest.approx(1.05 ** 2 - 1)
    assert math.isnan(t.loc[2023, "B"])
    assert t.loc[2024, "B"] == pytest.approx(0.01)
    assert t["days"].tolist() == [2, 2]
    md = T.per_year_markdown(t)
    assert "| 2023 | -1.0% | n/a | 2 |" in md


def test_trigger_summary_counts_combined_triggers():
    reb = pd.DataFrame({
        "strategy": ["D", "D", "D", "E"],
        "trigger": ["initial", "periodic+regime", "regime", "initial"],
        "turnover": [0.5, 0.1, 0.3, 0.5],
        "cost": [5e-4, 1e-4, 3e-4, 5e-4],  # commission as a fraction of the portfolio value
    })
    t = T.trigger_summary(reb, ["D", "E", "F"])
    assert t.loc["D", "rebalances"] == 3 and t.loc["D", "regime"] == 2 and t.loc["D", "periodic"] == 1
    assert t.loc["D", "mean_turnover"] == pytest.approx(0.2)
    assert t.loc["D", "total_cost"] == pytest.approx(9e-4)
    assert t.loc["E", "rebalances"] == 1 and math.isnan(t.loc["E", "mean_turnover"])
    assert t.loc["F", "rebalances"] == 0
    md = T.trigger_markdown(t)
    assert "| D | 3 | 1 | 2 | 0 | 0 | 20.00% | 0.09% |" in md
    assert "Total cost (% of value)" in md


def test_budget_log_warm_up_is_not_a_regime_change():
    dates, budgets, rebalances = _budget_fixture()
    budgets["regime"] = budgets["regime"].astype("str")
    budgets.loc[:1, "regime"] = np.nan  # no regime known on the first two days (warm-up)
    log = T.budget_adjustment_log(budgets, rebalances)
    assert log["regime"].iloc[0] == T.WARMUP
    # the first known regime (day 2) is not reported as a change from "nan"
    assert not any("nan" in e or T.WARMUP in e for e in log["event"])
    assert log["event"].tolist()[1] == "periodic (scheduled)"


def test_trigger_summary_turnover_per_trigger():
    reb = pd.DataFrame({
        "strategy": ["D", "D", "D"],
        "trigger": ["initial", "periodic+regime", "regime"],
        "turnover": [0.5, 0.1, 0.3],
        "cost": [5e-4, 1e-4, 3e-4],
    })
    t = T.trigger_summary(reb, ["D"])
    assert t.loc["D", "turnover_regime"] == pytest.approx(0.4)
    assert t.loc["D", "turnover_periodic"] == pytest.approx(0.1)
    assert "turnover: regime" in T.trigger_markdown(t)
