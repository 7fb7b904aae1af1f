"""Figures: drawn from a fake run, checked for content (titles, scales, legends, data) and saved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _fake_run import ASSETS, write_fake_run
from matplotlib.figure import Figure

from drb.errors import DataError
from runners import figures as F
from runners.report import load_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return load_run(write_fake_run(tmp_path_factory.mktemp("run"), n_days=260))


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _save_ok(fig: Figure, path) -> None:
    F.save_figure(fig, path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_equity_and_drawdowns(run, tmp_path):
    fig = F.plot_equity_drawdowns(run.returns)
    top, bottom = fig.axes[:2]
    assert top.get_yscale() == "log"
    assert "Equity curves" in top.get_title() and bottom.get_title() == "Drawdowns"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert [lab.split(" (")[0] for lab in labels] == run.strategies
    # the drawdown line of each strategy is <= 0 and ends at its final drawdown
    for line, name in zip(bottom.get_lines(), run.strategies):
        y = line.get_ydata()
        assert np.all(y <= 1e-12)
        wealth = (1 + run.returns[name].dropna()).cumprod()
        expected = min(1.0, wealth.iloc[-1] / max(1.0, wealth.max())) - 1
        assert y[-1] == pytest.approx(expected)
    # the curve starts at 1 on the day before the first return
    assert top.get_lines()[0].get_ydata()[0] == 1.0
    _save_ok(fig, tmp_path / "eq.png")


def test_budgets_figure(run, tmp_path):
    fig = F.plot_budgets(run.budgets, list(ASSETS))
    ax_target, ax_smooth = fig.axes[:2]
    assert "Target" in ax_target.get_title() and "Smoothed" in ax_smooth.get_title()
    regime_legend = [t.get_text() for t in ax_smooth.get_legend().get_texts()]
    assert set(regime_legend) == set(run.budgets["regime"])
    assert [t.get_text() for t in ax_target.get_legend().get_texts()] == list(ASSETS)
    # the stack's top edge is the sum of the budgets: 100 %
    polys = [c for c in ax_smooth.collections if c.get_label() in ASSETS]
    assert len(polys) == len(ASSETS)
    top_edge = polys[-1].get_paths()[0].vertices[:, 1].max()
    assert top_edge == pytest.approx(1.0, abs=1e-9)
    _save_ok(fig, tmp_path / "budgets.png")


def test_budgets_missing_column_is_data_error(run):
    with pytest.raises(DataError, match="target_equity"):
        F.plot_budgets(run.budgets.drop(columns=["target_equity"]), list(ASSETS))


def test_risk_contributions_and_weights(run, tmp_path):
    fig = F.plot_risk_contributions(run.risk_contributions)
    assert [t for t in _titles(fig) if t] == run.strategies
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == list(ASSETS)
    _save_ok(fig, tmp_path / "rc.png")
    fig = F.plot_weights(run.weights)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [*ASSETS, "cash"]
    _save_ok(fig, tmp_path / "w.png")
    with pytest.raises(DataError):
        F.plot_weights({})


def test_turnover_by_year_by_hand():
    reb = pd.DataFrame({
        "date": pd.to_datetime(["2023-01-03", "2023-06-01", "2024-02-01", "2024-03-01"]),
        "strategy": ["A", "A", "A", "B"],
        "trigger": ["initial", "periodic", "regime", "periodic"],
        "turnover": [0.5, 0.1, 0.2, 0.05],
    })
    t = F.turnover_by_year(reb, ["A", "B", "C"])
    assert t.loc[2023].tolist() == pytest.approx([0.1, 0.0, 0.0])
    assert t.loc[2024].tolist() == pytest.approx([0.2, 0.05, 0.0])


def test_turnover_figure(run, tmp_path):
    fig = F.plot_turnover_per_year(run.rebalances, run.returns)
    ax = fig.axes[0]
    expected = F.turnover_by_year(run.rebalances, run.strategies)
    heights = [p.get_height() for p in ax.patches]
    assert sorted(heights) == pytest.approx(sorted(expected.to_numpy().ravel()))
    assert "partial" in ax.get_title()
    _save_ok(fig, tmp_path / "t.png")


def test_extreme_months_figure(tmp_path):
    vals = pd.Series({"DynamicRiskBudget": -0.028, "RiskParity": -0.042, "MinimumVariance": np.nan})
    fig = F.plot_extreme_months(vals, n_months=7, counts=pd.Series({"DynamicRiskBudget": 7, "RiskParity": 7}))
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([-0.028, -0.042, 0.0])
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "-2.80%\n(n=7)" and texts[2] == "n/a"
    assert "7 months" in ax.get_title()
    _save_ok(fig, tmp_path / "x.png")


def test_regimes_figure(run, tmp_path):
    fig = F.plot_regimes(run.regimes, run.transition)
    timeline, heat = fig.axes[:2]
    assert "Regime timeline" in timeline.get_title()
    assert "price_proxy" in timeline.get_title()
    assert "transition matrix" in heat.get_title()
    img = heat.get_images()[0].get_array()
    assert img.shape == (12, 12)
    np.testing.assert_allclose(np.asarray(img).sum(axis=1), 1.0)
    _save_ok(fig, tmp_path / "r.png")
    # without a transition matrix: the timeline alone
    assert len(F.plot_regimes(run.regimes, None).axes) == 1


def test_regime_colours_are_distinct():
    regs = [f"{p}/{v}" for p in F.PHASES for v in F.VOL_STATES]
    colours = {F.regime_color(r) for r in regs}
    assert len(colours) == 12


def test_warm_up_days_form_one_grey_spell(run):
    budgets = run.budgets.copy()
    budgets["regime"] = budgets["regime"].astype("str")  # pandas string dtype keeps NaN missing
    budgets.iloc[:40, budgets.columns.get_loc("regime")] = np.nan
    assert F.regime_labels(budgets["regime"])[:2] == [F.WARMUP, F.WARMUP]
    fig = F.plot_budgets(budgets, list(ASSETS))
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend[-1] == F.WARMUP and legend.count(F.WARMUP) == 1
    # one strip patch per spell: the warm-up is a single spell, not one per day
    n_spells = len(F._spells(pd.DatetimeIndex(budgets.index), F.regime_labels(budgets["regime"])))
    strips = [p for p in fig.axes[1].patches if p.get_alpha() == 1.0]
    assert len(strips) == n_spells
    regimes = run.regimes.copy()
    regimes["regime"] = budgets["regime"]
    timeline = F.plot_regimes(regimes, run.transition).axes[0]
    assert timeline.get_yticklabels()[-1].get_text() == F.WARMUP
