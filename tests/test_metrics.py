"""Metrics against values worked out by hand on small series, with the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DataError
from runners.metrics import (
    METRIC_COLUMNS,
    annualized_turnover,
    compute_metrics,
    extreme_months,
    monthly_returns,
    safe_ratio,
)


def frame(values: dict[str, list[float]], dates: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.DatetimeIndex(dates))


FOUR_DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


def test_single_month_by_hand():
    # r = 1%, -2%, 3%, 0% inside one month
    m = compute_metrics(frame({"A": [0.01, -0.02, 0.03, 0.0]}, FOUR_DAYS)).loc["A"]
    growth = 1.01 * 0.98 * 1.03 * 1.0  # 1.019494
    assert m["ann_return"] == pytest.approx(growth ** (252 / 4) - 1, rel=1e-12)
    # mean 0.005; squared deviations 2.5e-5 + 6.25e-4 + 6.25e-4 + 2.5e-5 = 1.3e-3; ddof=1
    sd = math.sqrt(1.3e-3 / 3)
    assert m["ann_vol"] == pytest.approx(sd * math.sqrt(252), rel=1e-12)
    assert m["sharpe"] == pytest.approx(0.005 / sd * math.sqrt(252), rel=1e-12)
    # downside deviation over all 4 days: sqrt(0.02**2 / 4) = 0.01
    assert m["sortino"] == pytest.approx(0.005 * 252 / (0.01 * math.sqrt(252)), rel=1e-12)
    # peak 1.01 after day 1, trough 1.01 * 0.98 -> -2 %
    assert m["max_drawdown"] == pytest.approx(-0.02, abs=1e-15)
    assert m["calmar"] == pytest.approx((growth ** 63 - 1) / 0.02, rel=1e-12)
    # one month: a win, no loss
    assert m["monthly_win_rate"] == 1.0
    assert m["monthly_pl_ratio"] == math.inf
    assert m["worst_month"] == pytest.approx(growth - 1, rel=1e-12)
    # 4 days: floor(0.05 * 3) + 1 = 1 worst day
    assert m["cvar95"] == pytest.approx(-0.02)
    assert math.isnan(m["info_ratio"]) and math.isnan(m["turnover"])
    assert math.isnan(m["extreme_month_return"])


def test_table_shape_and_names():
    m = compute_metrics(frame({"A": [0.01, -0.02, 0.03, 0.0], "B": [0.0, 0.01, 0.0, 0.0]}, FOUR_DAYS))
    assert list(m.columns) == list(METRIC_COLUMNS)
    assert m.index.name == "strategy"
    assert list(m.index) == ["A", "B"]
    assert len(METRIC_COLUMNS) == 13


def test_monthly_win_rate_and_pl_ratio_by_hand():
    dates = ["2024-01-10", "2024-01-11", "2024-02-12", "2024-03-04", "2024-03-05"]
    # Jan: 1.1 * 0.95 - 1 = 4.5 %; Feb: -10 %; Mar: 1.02 * 1.03 - 1 = 5.06 %
    m = compute_metrics(frame({"A": [0.10, -0.05, -0.10, 0.02, 0.03]}, dates)).loc["A"]
    assert m["monthly_win_rate"] == pytest.approx(2 / 3)
    assert m["monthly_pl_ratio"] == pytest.approx(((0.045 + 0.0506) / 2) / 0.10, rel=1e-12)
    assert m["worst_month"] == pytest.approx(-0.10)
    # peak 1.1, trough 1.1 * 0.95 * 0.9 -> 0.855 - 1
    assert m["max_drawdown"] == pytest.approx(0.95 * 0.90 - 1)


def test_constant_positive_returns_are_infinite_ratios():
    dates = pd.bdate_range("2024-01-01", "2024-03-29")
    m = compute_metrics(pd.DataFrame({"C": 0.001}, index=dates)).loc["C"]
    assert m["ann_vol"] == 0.0
    assert m["sharpe"] == math.inf
    assert m["sortino"] == math.inf
    assert m["max_drawdown"] == 0.0
    assert m["calmar"] == math.inf  # no drawdown, positive return
    assert m["monthly_win_rate"] == 1.0
    assert m["monthly_pl_ratio"] == math.inf
    assert m["cvar95"] == pytest.approx(0.001)
    assert m["ann_return"] == pytest.approx(1.001 ** 252 - 1)


def test_flat_returns_are_undefined_ratios():
    dates = pd.bdate_range("2024-01-01", "2024-02-29")
    m = compute_metrics(pd.DataFrame({"Z": 0.0}, index=dates)).loc["Z"]
    for col in ("sharpe", "sortino", "calmar", "monthly_pl_ratio"):
        assert math.isnan(m[col]), col
    assert m["monthly_win_rate"] == 0.0  # a flat month is not a win
    assert m["ann_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["worst_month"] == 0.0


def test_constant_negative_returns_by_hand():
    dates = pd.bdate_range("2024-01-01", "2024-03-29")  # 65 business days, 3 months
    m = compute_metrics(pd.DataFrame({"N": -0.001}, index=dates)).loc["N"]
    n = len(dates)
    assert m["ann_return"] == pytest.approx(0.999 ** 252 - 1)
    assert m["ann_vol"] == 0.0
    assert m["sharpe"] == -math.inf  # negative mean over zero dispersion
    # downside deviation over all days: sqrt(mean(0.001 ** 2)) = 0.001
    assert m["sortino"] == pytest.approx(-0.001 * 252 / (0.001 * math.sqrt(252)))
    # the value falls every day: the drawdown is the whole loss from the start
    assert m["max_drawdown"] == pytest.approx(0.999 ** n - 1)
    assert m["calmar"] == pytest.approx((0.999 ** 252 - 1) / (1 - 0.999 ** n))
    assert m["monthly_win_rate"] == 0.0 and m["monthly_pl_ratio"] == 0.0
    # the worst of the three months is the one with the most days (January 2024: 23 of 23 + 21 + 21)
    assert n == 65
    assert m["worst_month"] == pytest.approx(0.999 ** 23 - 1)
    assert m["cvar95"] == pytest.approx(-0.001)


def test_no_losing_month_over_several_months():
    dates = ["2024-01-10", "2024-01-11", "2024-02-12", "2024-03-04"]
    # Jan: 1.02 * 0.99 - 1 = +0.98 %, Feb flat, Mar +1 %: no month lost
    m = compute_metrics(frame({"A": [0.02, -0.01, 0.0, 0.01]}, dates)).loc["A"]
    assert m["monthly_win_rate"] == pytest.approx(2 / 3)  # the flat month is not a win
    assert m["monthly_pl_ratio"] == math.inf
    assert m["worst_month"] == 0.0
    # a losing *day* inside a winning month still makes a drawdown
    assert m["max_drawdown"] == pytest.approx(-0.01)


def test_cvar_averages_the_worst_five_percent_of_days():
    dates = pd.bdate_range("2024-01-01", periods=41)
    r = np.random.default_rng(0).permutation(np.linspace(-0.02, 0.02, 41))  # steps of 0.001
    m = compute_metrics(pd.DataFrame({"A": r}, index=dates)).loc["A"]
    # k = floor(0.05 * 40) + 1 = 3 worst days: -2.0 %, -1.9 %, -1.8 %
    assert m["cvar95"] == pytest.approx(-0.019)


def test_loss_on_the_first_day_is_a_drawdown():
    m = compute_metrics(frame({"A": [-0.05, 0.01, 0.02]}, FOUR_DAYS[:3])).loc["A"]
    assert m["max_drawdown"] == pytest.approx(-0.05)  # from the value 1 before the first return


def test_constant_active_return_has_infinite_information_ratio():
    bench = [0.01, -0.02, 0.005, 0.0]
    m = compute_metrics(frame({"S": [b + 0.001 for b in bench], "L": [b - 0.002 for b in bench],
                               "B": bench}, FOUR_DAYS), benchmark="B")
    assert m.loc["S", "info_ratio"] == math.inf  # not 1e16 from rounding noise
    assert m.loc["L", "info_ratio"] == -math.inf
    assert math.isnan(m.loc["B", "info_ratio"])


def test_no_winning_month_gives_zero_pl_ratio():
    m = compute_metrics(frame({"L": [-0.01, -0.01]}, ["2024-01-02", "2024-02-01"])).loc["L"]
    assert m["monthly_pl_ratio"] == 0.0
    assert m["monthly_win_rate"] == 0.0


def test_single_day_has_no_dispersion_metrics():
    m = compute_metrics(frame({"A": [0.01]}, ["2024-01-02"])).loc["A"]
    assert math.isnan(m["ann_vol"]) and math.isnan(m["sharpe"]) and math.isnan(m["sortino"])
    assert m["worst_month"] == pytest.approx(0.01)


def test_risk_free_rate_is_annual_and_geometric():
    r = [0.01, -0.02, 0.03, 0.0]
    rf = 0.05
    m = compute_metrics(frame({"A": r}, FOUR_DAYS), risk_free=rf).loc["A"]
    rf_d = 1.05 ** (1 / 252) - 1
    ex = np.array(r) - rf_d
    assert m["sharpe"] == pytest.approx(ex.mean() / ex.std(ddof=1) * math.sqrt(252), rel=1e-12)
    down = math.sqrt(np.mean(np.minimum(ex, 0) ** 2))
    assert m["sortino"] == pytest.approx(ex.mean() * 252 / (down * math.sqrt(252)), rel=1e-12)


def test_information_ratio_by_hand_and_alignment():
    dates = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    bench = [0.0, 0.01, -0.01, 0.005]
    active = [0.01, -0.01, 0.02]  # on the 3 days both strategies have a return
    strat = [np.nan] + [b + a for b, a in zip(bench[1:], active)]
    m = compute_metrics(frame({"S": strat, "B": bench}, dates), benchmark="B")
    mean = sum(active) / 3
    sd = math.sqrt(sum((a - mean) ** 2 for a in active) / 2)
    assert m.loc["S", "info_ratio"] == pytest.approx(mean / sd * math.sqrt(252), rel=1e-9)
    assert math.isnan(m.loc["B", "info_ratio"])  # against itself: 0 / 0


def test_leading_nan_is_a_late_start_not_a_zero_return():
    dates = pd.bdate_range("2024-01-01", periods=60)
    rng = np.random.default_rng(1)
    r = rng.normal(0.0005, 0.01, 60)
    late = np.r_[np.full(20, np.nan), r[20:]]
    both = compute_metrics(pd.DataFrame({"late": late}, index=dates))
    alone = compute_metrics(pd.DataFrame({"late": r[20:]}, index=dates[20:]))
    pd.testing.assert_frame_equal(both, alone)


def test_turnover_passes_through_and_missing_is_nan():
    m = compute_metrics(frame({"A": [0.01, 0.0, 0.0, 0.0], "B": [0.0] * 4}, FOUR_DAYS),
                        turnover={"A": 0.85})
    assert m.loc["A", "turnover"] == 0.85
    assert math.isnan(m.loc["B", "turnover"])
    m2 = compute_metrics(frame({"A": [0.01, 0.0, 0.0, 0.0]}, FOUR_DAYS), pd.Series({"A": 0.3}))
    assert m2.loc["A", "turnover"] == 0.3


def test_extreme_months_helper_and_metric():
    # equity closes: Jan flat, Feb -6 % (extreme), Mar -4.8 % (not extreme)
    px = pd.Series(
        [100.0, 100.0, 94.0, 94.0, 89.488],
        index=pd.DatetimeIndex(["2024-01-02", "2024-01-31", "2024-02-29", "2024-03-01", "2024-03-28"]),
    )
    mask = extreme_months(px)
    assert mask.dtype == bool and mask.name == "extreme"
    assert list(mask.index.astype(str)) == ["2024-01", "2024-02", "2024-03"]
    assert mask.tolist() == [False, True, False]
    dates = ["2024-01-15", "2024-02-15", "2024-02-16", "2024-03-15"]
    rets = frame({"S": [0.01, -0.02, -0.01, 0.03], "T": [0.0, 0.0, np.nan, np.nan]}, dates)
    m = compute_metrics(rets, extreme_mask=mask)
    assert m.loc["S", "extreme_month_return"] == pytest.approx(0.98 * 0.99 - 1)
    assert m.loc["T", "extreme_month_return"] == pytest.approx(0.0)
    # a mask given on dates inside the months works the same
    by_date = pd.Series([False, True, False], index=pd.DatetimeIndex(["2024-01-31", "2024-02-29", "2024-03-28"]))
    pd.testing.assert_frame_equal(m, compute_metrics(rets, extreme_mask=by_date))
    # no extreme month inside a strategy's span -> NaN
    only_jan = frame({"S": [0.01]}, ["2024-01-15"])
    assert math.isnan(compute_metrics(only_jan, extreme_mask=mask).loc["S", "extreme_month_return"])


def test_monthly_returns_compound():
    r = pd.Series([0.1, 0.1, -0.5], index=pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01"]))
    m = monthly_returns(r)
    assert m.tolist() == pytest.approx([0.21, -0.5])
    total_loss = pd.Series([-1.0, 0.0], index=pd.DatetimeIndex(["2024-01-30", "2024-01-31"]))
    assert monthly_returns(total_loss).tolist() == [-1.0]


def test_annualized_turnover_excludes_initial():
    reb = pd.DataFrame({
        "strategy": ["A", "A", "A", "B"],
        "trigger": ["initial", "periodic", "regime+eigenvalue", "initial"],
        "turnover": [0.5, 0.1, 0.2, 0.5],
    })
    rets = pd.DataFrame({"A": np.zeros(126), "B": np.zeros(126), "C": np.full(126, np.nan)},
                        index=pd.bdate_range("2024-01-01", periods=126))
    t = annualized_turnover(reb, rets)
    assert t["A"] == pytest.approx(0.3 / 0.5)  # 0.3 over half a year
    assert t["B"] == 0.0
    assert math.isnan(t["C"])
    assert annualized_turnover(reb, rets, include_initial=True)["A"] == pytest.approx(0.8 / 0.5)


def test_safe_ratio_rule():
    assert safe_ratio(1.0, 0.0) == math.inf
    assert safe_ratio(-1.0, 0.0) == -math.inf
    assert math.isnan(safe_ratio(0.0, 0.0))
    assert safe_ratio(1.0, 4.0) == 0.25


@pytest.mark.parametrize(
    "bad, match",
    [
        (frame({"A": [0.01, -1.5]}, ["2024-01-02", "2024-01-03"]), "impossible"),
        (frame({"A": [0.01, np.inf]}, ["2024-01-02", "2024-01-03"]), "impossible"),
        (frame({"A": [0.01, 0.02]}, ["2024-01-03", "2024-01-02"]), "sorted"),
        (frame({"A": [0.01, 0.02]}, ["2024-01-02", "2024-01-02"]), "duplicate"),
        (pd.DataFrame({"A": ["x", "y"]}, index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"])), "non-numeric"),
        (pd.DataFrame({"A": [0.1]}, index=["not a date"]), "dates"),
    ],
)
def test_bad_returns_raise_data_error(bad, match):
    with pytest.raises(DataError, match=match):
        compute_metrics(bad)


def test_config_errors():
    r = frame({"A": [0.01, 0.0, 0.0, 0.0]}, FOUR_DAYS)
    with pytest.raises(ConfigError, match="benchmark"):
        compute_metrics(r, benchmark="Nope")
    with pytest.raises(ConfigError, match="periods_per_year"):
        compute_metrics(r, periods_per_year=0)
    with pytest.raises(ConfigError, match="risk_free"):
        compute_metrics(r, risk_free=-2.0)
    with pytest.raises(ConfigError, match="threshold"):
        extreme_months(pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"])), threshold=0.05)
    with pytest.raises(DataError, match="mask"):
        compute_metrics(r, extreme_mask=pd.Series([np.nan], index=pd.PeriodIndex(["2024-01"], freq="M")))
