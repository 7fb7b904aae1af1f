"""Macro inputs as a contract (issue 13 item 2): transforms, sign flips, ignored columns, the
stationarity warning, stale series and their timing, config parsing."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError
from indicators.macro import (
    MacroInputWarning,
    nonstationary_columns,
    parse_macro_spec,
    prepare_macro,
    transform_macro,
)
from indicators.regimes import CycleClassifier, composite_leading_indicator, daily_cycle_phase
from runners.config import parse_config

RNG = np.random.default_rng(7)
MONTHS = pd.date_range("2005-01-01", periods=160, freq="MS")
_GAP = np.sin(2 * np.pi * np.arange(160) / 40)
# three growth-oriented series plus a counter-cyclical one (claims-like)
MACRO = pd.DataFrame(
    {
        "A": 50 + 5 * _GAP + RNG.standard_normal(160),
        "B": 100 * np.exp(np.cumsum(0.002 + 0.01 * _GAP + 0.003 * RNG.standard_normal(160))),
        "C": 1 + 0.5 * _GAP + 0.2 * RNG.standard_normal(160),
        "D": 300 - 40 * _GAP + 10 * RNG.standard_normal(160),
    },
    index=MONTHS,
)
SPEC = {"A": "level", "B": "yoy", "C": "diff", "D": "-level"}


def _macro_warnings(rec) -> list[str]:
    return [str(w.message) for w in rec if issubclass(w.category, MacroInputWarning)]


# ------------------------------------------------------------------------------ transforms
def test_each_transform_by_hand():
    x = pd.DataFrame({"v": [100.0, 104.0, 102.0] + [110.0] * 10 + [121.0]},
                     index=pd.date_range("2020-01-01", periods=14, freq="MS"))
    got = {
        t: transform_macro(x, parse_macro_spec({"v": t}))["v"].to_numpy()
        for t in ("level", "diff", "yoy", "logdiff")
    }
    np.testing.assert_array_equal(got["level"], x["v"].to_numpy())
    assert math.isnan(got["diff"][0]) and got["diff"][1] == 4.0 and got["diff"][2] == -2.0
    assert np.isnan(got["yoy"][:12]).all()
    assert got["yoy"][12] == pytest.approx(100 * (110 / 100 - 1))  # 2021-01 against 2020-01
    assert got["yoy"][13] == pytest.approx(100 * (121 / 104 - 1))  # 2021-02 against 2020-02
    assert got["logdiff"][1] == pytest.approx(math.log(104) - math.log(100))
    assert got["logdiff"][13] == pytest.approx(math.log(121 / 110))


def test_lookback_is_by_calendar_month_not_by_row():
    # 2020-02 is absent: the diff of 2020-03 has no previous month, the yoy of 2021-03 uses 2020-03
    idx = pd.DatetimeIndex(["2020-01-01", "2020-03-01", "2021-03-01"])
    x = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=idx)
    assert np.isnan(transform_macro(x, parse_macro_spec({"v": "diff"}))["v"].iloc[1])
    assert transform_macro(x, parse_macro_spec({"v": "yoy"}))["v"].iloc[2] == pytest.approx(50.0)


def test_sign_flip():
    spec = parse_macro_spec({"B": "-yoy", "D": "-level", "C": " - diff "})
    assert spec.signs == (-1.0, -1.0, -1.0) and spec.transforms == ("yoy", "level", "diff")
    flipped = transform_macro(MACRO, spec)
    plain = transform_macro(MACRO, parse_macro_spec({"B": "yoy", "D": "level", "C": "diff"}))
    pd.testing.assert_frame_equal(flipped, -plain)
    assert spec.as_dict() == {"B": "-yoy", "D": "-level", "C": "-diff"}


def test_ignored_columns_one_note_and_selection():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        raw, spec = prepare_macro(MACRO, {"D": "-level", "A": "level"})
    msgs = _macro_warnings(rec)
    assert len(msgs) == 1 and "B, C" in msgs[0] and "ignored" in msgs[0]
    assert list(raw.columns) == ["D", "A"] and spec.notes == (msgs[0],)


def test_unknown_transform_and_missing_column_are_one_line_config_errors():
    with pytest.raises(ConfigError, match=r"macro\.ICSA: unknown transform 'yoy2'") as ei:
        parse_macro_spec({"INDPRO": "yoy", "ICSA": "yoy2"})
    assert "\n" not in str(ei.value)
    for bad in ({"A": 3}, {"A": "--level"}, {"A": ""}):
        with pytest.raises(ConfigError, match="macro.A: unknown transform"):
            parse_macro_spec(bad)
    with pytest.raises(ConfigError, match="empty"):
        parse_macro_spec({})
    with pytest.raises(ConfigError, match="column 'PAYEMS'") as ei:
        prepare_macro(MACRO, {"A": "level", "PAYEMS": "yoy"})
    assert "\n" not in str(ei.value)


# ------------------------------------------------------------------------ without a table
def test_adf_warning_names_the_trending_column_only():
    rng = np.random.default_rng(1)
    n = 240
    frame = pd.DataFrame(
        {
            "TREND": 100 + np.cumsum(0.3 + rng.standard_normal(n)),  # random walk with drift
            "NOISE": rng.standard_normal(n),  # white noise
        },
        index=pd.date_range("2000-01-01", periods=n, freq="MS"),
    )
    assert nonstationary_columns(frame) == ["TREND"]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        raw, spec = prepare_macro(frame, None)
    msgs = _macro_warnings(rec)
    assert len(msgs) == 1
    assert "TREND" in msgs[0] and "NOISE" not in msgs[0] and "higher" in msgs[0]
    assert not spec.given and spec.transforms == ("level", "level")
    pd.testing.assert_frame_equal(raw, frame)


# ----------------------------------------------------------------------------- staleness
def _run(clf, days, closes=None):
    out = []
    for i, d in enumerate(days):
        out.append((clf.update(d, None if closes is None else closes[i]), clf.cli, clf.source))
    return out


def test_stale_series_dropped_after_the_stale_point_and_not_before():
    m = MACRO.copy()
    m.loc["2015-07-01":, "C"] = np.nan  # C's last value: 2015-06
    spec = parse_macro_spec(SPEC)
    days = pd.bdate_range("2015-06-01", "2016-03-31")
    clf = CycleClassifier(spec=spec)  # publication_lag 1, stale_months 3
    for ref, row in zip(m.index, m.to_numpy()):
        clf.add_macro(ref, row)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for d in days:
            clf.update(d)
            if d < pd.Timestamp("2015-12-01"):
                # newest published month at a 2015-11 bar is 2015-09: 3 months after 2015-06
                assert clf.dropped == {}
                assert clf.cli == pytest.approx(_cli(m, _newest(d), SPEC))
            else:
                assert clf.dropped == {"C": "2015-12-01"}
                three = {k: v for k, v in SPEC.items() if k != "C"}
                assert clf.cli == pytest.approx(_cli(m[["A", "B", "D"]], _newest(d), three))
    msgs = _macro_warnings(rec)
    assert len(msgs) == 1 and "'C'" in msgs[0] and "2015-06" in msgs[0]
    assert clf.notes == msgs


_CLI_CACHE: dict = {}


def _cli(frame: pd.DataFrame, newest: pd.Timestamp, mapping: dict) -> float:
    """Last value of the vectorized CLI over the months up to ``newest``."""
    key = (tuple(frame.columns), newest)
    if key not in _CLI_CACHE:
        cli = composite_leading_indicator(frame.loc[:newest], spec=parse_macro_spec(mapping))
        _CLI_CACHE[key] = cli.iloc[-1]
    return _CLI_CACHE[key]


def _newest(d: pd.Timestamp) -> pd.Timestamp:
    """Newest reference month published at bar ``d`` with a one-month lag."""
    return pd.Timestamp(year=d.year, month=d.month, day=1) - pd.DateOffset(months=2)


def test_stale_online_equals_vectorized_and_state_round_trip():
    m = MACRO.copy()
    m.loc["2014-03-01":, "B"] = np.nan
    m = m.loc[:"2016-10-01"]  # every series ends: the macro phase goes, the price proxy stands in
    spec = parse_macro_spec(SPEC)
    days = pd.bdate_range("2012-01-02", "2017-06-30")
    eq = pd.Series(100 * np.exp(np.cumsum(0.0003 + 0.01 * RNG.standard_normal(len(days)))), index=days)
    vec = daily_cycle_phase(days, macro=m, equity_prices=eq, spec=spec)
    clf = CycleClassifier(spec=spec)
    for ref, row in zip(m.index, m.to_numpy()):
        clf.add_macro(ref, row)
    got, src = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d, p in eq.items():
            if d == days[600]:
                clf = CycleClassifier.from_state(clf.get_state())
            got.append(clf.update(d, p))
            src.append(clf.source)
    assert got == vec.phase.tolist() and src == vec.source.tolist()
    assert set(clf.dropped) == {"A", "B", "C", "D"} and clf.dropped["B"].startswith("2014-08")
    assert src[-1] == "price_proxy" and "macro" in src


def test_stale_months_none_keeps_every_series():
    m = MACRO.copy()
    m.loc["2015-07-01":, "C"] = np.nan
    clf = CycleClassifier(spec=parse_macro_spec(SPEC), stale_months=None)
    for ref, row in zip(m.index, m.to_numpy()):
        clf.add_macro(ref, row)
    _run(clf, pd.bdate_range("2015-06-01", "2016-06-30"))
    assert clf.dropped == {} and clf.notes == []
    with pytest.raises(ConfigError, match="macro_stale_months"):
        CycleClassifier(stale_months=0)


# ---------------------------------------------------------------------------- look-ahead
def test_transformed_value_at_a_bar_uses_only_published_months():
    spec = parse_macro_spec({"A": "diff", "B": "yoy", "C": "logdiff", "D": "-yoy"})
    bar = pd.Timestamp("2015-05-14")  # published by then: reference months up to 2015-03
    future = MACRO.index > pd.Timestamp("2015-03-01")
    garbage = MACRO.copy()
    garbage.loc[future] = RNG.uniform(1, 1e6, size=garbage.loc[future].shape)
    res = []
    for frame in (MACRO, garbage):
        clf = CycleClassifier(spec=spec)
        for ref, row in zip(frame.index, frame.to_numpy()):
            clf.add_macro(ref, row)
        _run(clf, pd.bdate_range("2013-01-01", bar))
        res.append((clf.cli, clf.phase, np.asarray(clf._rows)))
    assert res[0][:2] == res[1][:2] and res[0][0] is not None
    np.testing.assert_array_equal(res[0][2], res[1][2])  # the transformed rows released so far
    # the vectorized transform of month m does not move when later months change
    a, b = transform_macro(MACRO, spec), transform_macro(garbage, spec)
    pd.testing.assert_frame_equal(a.loc[:"2015-03-01"], b.loc[:"2015-03-01"])
    assert not a.loc["2015-04-01"].equals(b.loc["2015-04-01"])


# -------------------------------------------------------------------------- allocator, config
def _prices(days):
    r = 0.01 * RNG.standard_normal((len(days), 4))
    return pd.DataFrame(100 * np.exp(np.cumsum(r, axis=0)), index=days,
                        columns=["equity", "bond", "commodity", "real_estate"])


def test_allocator_takes_the_mapping_and_reports_stale_series():
    from strategies.allocators.dynamic import DynamicRiskBudgetAllocator
    from strategies.bt.strategies import DynamicRiskBudget

    assert DynamicRiskBudget.params.macro_stale_months == 3
    assert DynamicRiskBudget.params.macro_transforms is None
    m = MACRO.copy()
    m.loc["2015-07-01":, "C"] = np.nan
    m["UNUSED"] = 1.0
    px = _prices(pd.bdate_range("2015-09-01", "2016-01-29"))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        alloc = DynamicRiskBudgetAllocator(list(px.columns), macro=m, macro_transforms=SPEC,
                                           risk_model="sample", warmup=20)
        held = None
        for d, row in zip(px.index, px.to_numpy()):
            alloc.update(d, row, 20.0)
            decision = alloc.decide(held)
            if decision is not None:
                held = decision.target
    rep = alloc.report()
    assert list(alloc.macro.columns) == ["A", "B", "C", "D"]
    assert rep["macro_dropped"] == {"C": "2015-12-01"}
    assert len(rep["macro_notes"]) == 2 and "UNUSED" in rep["macro_notes"][0]
    assert len(_macro_warnings(rec)) == 2
    with pytest.raises(ConfigError, match="column 'NOPE'"):
        DynamicRiskBudgetAllocator(list(px.columns), macro=m, macro_transforms={"NOPE": "yoy"})


def test_config_macro_table():
    raw = {"data": {"prices": "p.csv"}, "macro": {"INDPRO": "yoy", "ICSA": "-yoy"}}
    cfg = parse_config(raw, label="c.toml")
    assert cfg.macro_transforms == {"INDPRO": "yoy", "ICSA": "-yoy"}
    assert cfg.strategy_params["DynamicRiskBudget"]["macro_transforms"] == cfg.macro_transforms
    assert cfg.to_dict()["macro"] == cfg.macro_transforms
    assert parse_config({"data": {"prices": "p.csv"}}).macro_transforms is None
    bad = [
        ({"macro": {"ICSA": "yo"}}, r"c.toml: macro\.ICSA: unknown transform 'yo'"),
        ({"macro": {"ICSA": 1.5}}, r"c.toml: macro\.ICSA: unknown transform 1\.5"),
        ({"macro": "macro.csv"}, r"c.toml: macro: expected a table"),
        ({"macro": {}}, r"c.toml: macro: the table is empty"),
        (
            {"macro": {"A": "level"}, "strategy": {"DynamicRiskBudget": {"macro_transforms": {}}}},
            "give the macro transforms once",
        ),
    ]
    for extra, msg in bad:
        with pytest.raises(ConfigError, match=msg) as ei:
            parse_config({"data": {"prices": "p.csv"}, **extra}, label="c.toml")
        assert "\n" not in str(ei.value)


@pytest.mark.realdata
def test_real_ism_pmi_drops_out_in_2025_01(real_data_dir):
    from feeds.loaders import load_macro

    m = load_macro(real_data_dir / "macro_monthly.csv")
    readme = {"PERMIT": "yoy", "UMCSENT": "level", "T10Y3M": "level", "ICSA": "-yoy",
              "HY_OAS": "-level", "NFCI_ADJ": "-level", "INDPRO": "yoy", "PAYEMS": "yoy",
              "ISM_PMI": "level"}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        raw, spec = prepare_macro(m.loc[:"2025-09-01"], readme)
    clf = CycleClassifier(spec=spec)
    for ref, row in zip(raw.index, raw.to_numpy()):
        clf.add_macro(ref, row)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _run(clf, pd.bdate_range("2024-06-03", "2025-09-26"))
    assert clf.dropped == {"ISM_PMI": "2025-01-01"} and clf.source == "macro"


# ---------------------------------------------------------------------------------- README
def _readme_macro_section() -> str:
    import re

    from conftest import REPO

    text = (REPO / "README.md").read_text()
    return re.search(r"^## Macro inputs\n(.*?)(?=^## )", text, flags=re.S | re.M).group(1)


@pytest.mark.realdata
def test_readme_toml_columns_exist_in_the_real_file(real_data_dir):
    import re
    import tomllib

    block = re.search(r"```toml\n(.*?)```", _readme_macro_section(), flags=re.S).group(1)
    raw = tomllib.loads(block)
    cfg = parse_config(raw, label="README", require_prices=False)
    header = (real_data_dir / "macro_monthly.csv").read_text().splitlines()[0].split(",")
    assert cfg.macro_transforms and set(cfg.macro_transforms) <= set(header)


@pytest.mark.realdata
@pytest.mark.slow
def test_readme_python_example_runs(real_data_dir, monkeypatch, capsys):
    import re

    from conftest import REPO

    code = re.search(r"```python\n(.*?)```", _readme_macro_section(), flags=re.S).group(1)
    monkeypatch.chdir(REPO)
    ns: dict = {}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        exec(compile(code, "README.md", "exec"), ns)
    out = capsys.readouterr().out
    assert out.startswith("macro ") and "final value" in out
    assert len(_macro_warnings(rec)) == 1 and "HOUST" in _macro_warnings(rec)[0]
    assert list(ns["strategy"].allocator.macro.columns) == list(ns["MACRO"])


def test_embedded_market_carries_its_own_table():
    """The demo's indicators document their transforms: no stationarity warning, claims flipped."""
    from feeds import MarketData, synthetic_market
    from strategies.allocators.dynamic import DynamicRiskBudgetAllocator

    market = MarketData.from_synthetic(synthetic_market(seed=0, start="2018-01-02", end="2018-12-31"))
    table = market.macro.attrs["macro_transforms"]
    assert table["initial_claims_index"] == "-level" and table["pmi_new_orders"] == "level"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        alloc = DynamicRiskBudgetAllocator(market.assets, macro=market.truncate("2018-06-29").macro,
                                           risk_model="ewma")
    assert not _macro_warnings(rec)
    assert alloc.report()["macro_notes"] == []
