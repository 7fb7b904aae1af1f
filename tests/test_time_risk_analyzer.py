"""TimeRiskContribution analyzer in a tiny cerebro on synthetic PandasData feeds, the summary table
and the figures."""

from __future__ import annotations

from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DataError
from runners.experiments.time_risk import fold_years, plot_time_risk, time_risk_summary, year_layout
from runners.report.time_risk import plot_mean_variance_contributions
from strategies.bt.time_risk import TimeRiskContribution

DAYS = 252


def _frames(seed: int = 0, n_bars: int = 515) -> dict[str, pd.DataFrame]:
    """Two assets over ~2 years: 'calmturb' switches between 8% and 40% volatility every ~3 months,
    'steady' has 15% volatility."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-01", periods=n_bars)
    regime = (np.arange(n_bars) // 63) % 2
    vols = {"calmturb": np.where(regime == 0, 0.08, 0.40), "steady": np.full(n_bars, 0.15)}
    out = {}
    for name, vol in vols.items():
        r = rng.normal(size=n_bars) * vol / np.sqrt(DAYS)
        close = 100.0 * np.exp(np.cumsum(r))
        out[name] = pd.DataFrame(
            {"open": close, "high": close, "low": close, "close": close, "volume": 1e6,
             "openinterest": 0.0}, index=idx)
    return out


class BuyAndHold(bt.Strategy):
    params = (("sizes", (100.0, 50.0)),)

    def next(self) -> None:
        if len(self) == 1:
            for d, s in zip(self.datas, self.p.sizes):
                self.buy(data=d, size=s)


class VolTarget(bt.Strategy):
    """Trades the first feed only, weight target / sigma_{t|t-1} from a causal EWMA of its returns."""

    params = (("target", 0.04), ("lam", 0.94))  # weight < 1: no margin rejections

    def start(self) -> None:
        self.s = None

    def next(self) -> None:
        d = self.datas[0]
        if len(d) < 2:
            return
        r = d.close[0] / d.close[-1] - 1.0
        self.s = r * r if self.s is None else self.p.lam * self.s + (1 - self.p.lam) * r * r
        if len(d) < 21:
            return
        w = self.p.target / np.sqrt(self.s * DAYS)
        value = self.broker.getvalue()
        self.order_target_size(data=d, target=w * value / d.close[0])


def _run(strategy: type, frames: dict[str, pd.DataFrame], **analyzer_kw) -> TimeRiskContribution:
    cerebro = bt.Cerebro(stdstats=False)
    for name, df in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=name)
    cerebro.broker.setcash(1e6)
    cerebro.broker.set_coc(True)
    cerebro.addstrategy(strategy)
    cerebro.addanalyzer(TimeRiskContribution, _name="trc", **analyzer_kw)
    strat = cerebro.run()[0]
    return strat.analyzers.trc


def _ewma_reference(closes: np.ndarray, lam: float) -> np.ndarray:
    """Per-bar covariance for bar t from returns up to t, written out independently."""
    t_len, n = closes.shape
    out = np.full((t_len, n, n), np.nan)
    for t in range(1, t_len):
        r = closes[1 : t + 1] / closes[:t] - 1.0
        w = lam ** np.arange(t - 1, -1, -1)
        out[t] = (r * w[:, None]).T @ r / w.sum()
    return out


def test_analyzer_records_positions_and_decomposes_exactly() -> None:
    frames = _frames()
    trc = _run(BuyAndHold, frames)
    c = trc.get_analysis()
    assert isinstance(c, pd.DataFrame)
    assert list(c.columns) == ["calmturb", "steady"]
    assert isinstance(c.index, pd.DatetimeIndex)
    closes = np.column_stack([frames[k]["close"].to_numpy() for k in frames])
    # min_periods=20 returns: the first reported bar is bar 20
    assert c.index[0] == frames["calmturb"].index[20]
    assert len(c) == len(closes) - 20
    # positions: the buy of bar 0 fills at bar 0's close (cheat-on-close), seen from bar 1 on
    pos = trc.positions.to_numpy()
    np.testing.assert_allclose(pos[1:], np.array([100.0, 50.0]) * closes[1:], rtol=1e-12)
    assert np.all(pos[0] == 0.0)
    cov = _ewma_reference(closes, 0.94)
    theta = np.array([100.0, 50.0]) * closes
    expect = theta * np.einsum("tij,tj->ti", cov, theta)
    np.testing.assert_allclose(c.to_numpy(), expect[20:], rtol=1e-9)
    # aggregation: rows sum to the ex-ante variance of the next bar's P&L
    rows = np.einsum("ti,tij,tj->t", theta, cov, theta)[20:]
    np.testing.assert_allclose(c.sum(axis=1).to_numpy(), rows, rtol=1e-9)


def test_callable_covariance_and_weight_scale() -> None:
    frames = _frames(1, 300)
    fixed = np.array([[1e-4, 2e-5], [2e-5, 4e-4]])
    seen: list[int] = []

    def cov_fn(returns: np.ndarray) -> np.ndarray:
        seen.append(returns.shape[0])
        return fixed

    trc = _run(BuyAndHold, frames, covariance=cov_fn, min_periods=5, scale="weight")
    c = trc.get_analysis()
    assert seen[0] == 5 and seen == sorted(seen) and seen[-1] == 299  # causal, growing history
    w = trc.positions.to_numpy() / trc.values.to_numpy()[:, None]
    expect = w * (w @ fixed)
    np.testing.assert_allclose(c.to_numpy(), expect[5:], rtol=1e-12)
    with pytest.raises(Exception, match="scale"):
        _run(BuyAndHold, frames, scale="bogus")


def test_summary_shares_and_concentration() -> None:
    frames = _frames()
    c = _run(BuyAndHold, frames).get_analysis()
    s = time_risk_summary(c)["value"]
    years = s["year"]
    assert list(years.index) == ["2020", "2021"]
    assert np.isclose(years.sum(), 1.0)
    assert np.isclose(s["asset"].sum(), 1.0)
    conc = s["concentration"]
    per_year = c.groupby(c.index.year).sum().sum(axis=1)
    per_month = c.groupby(c.index.to_period("M")).sum().sum(axis=1)
    assert np.isclose(conc["hhi_years"], np.sum((per_year / per_year.sum()) ** 2))
    assert np.isclose(conc["hhi_months"], np.sum((per_month / per_month.sum()) ** 2))
    assert np.isclose(conc["effective_months"], 1.0 / conc["hhi_months"])
    assert conc["n_months"] == per_month.size
    assert np.isclose(conc["total_variance"], c.to_numpy().sum())
    # equal-risk benchmark: the HHI of the bar counts (the first month is partial here)
    bars = c.groupby(c.index.to_period("M")).size()
    assert np.isclose(conc["hhi_months_equal_risk"], np.sum((bars / bars.sum()) ** 2))
    assert conc["hhi_months_equal_risk"] > 1.0 / conc["n_months"]
    bars_y = c.groupby(c.index.year).size()
    assert np.isclose(conc["hhi_years_equal_risk"], np.sum((bars_y / bars_y.sum()) ** 2))
    # the bar count of every year, so that a report can tell partial years from full ones
    assert list(s["bars"].index) == ["2020", "2021"]
    assert s["bars"].tolist() == bars_y.tolist() and s["bars"].sum() == len(c)
    # the turbulent-regime asset carries most of the risk
    assert s["asset"]["calmturb"] > s["asset"]["steady"]
    with pytest.raises(DataError):
        time_risk_summary(c.reset_index(drop=True))
    with pytest.raises(DataError):
        time_risk_summary(c * 0.0)


def test_vol_target_spreads_risk_evenly_over_months_in_a_backtest() -> None:
    """Section 4.1 through backtrader: with weight-scaled contributions, the volatility-targeting
    strategy spreads its ex-ante variance almost evenly over months; buy and hold concentrates it in
    the turbulent quarters."""
    frames = {"calmturb": _frames()["calmturb"]}
    out = {}
    for strategy in (VolTarget, BuyAndHold):
        c = _run(strategy, frames, scale="weight").get_analysis()
        c = c[c.index >= "2020-03-01"]  # both invested (the vol target waits for 20 returns)
        out[strategy.__name__] = time_risk_summary(c)["value"]["concentration"]
    # exact parity would give each month its share of bars
    counts = c.groupby(c.index.to_period("M")).size().to_numpy()
    hhi_parity = float(np.sum((counts / counts.sum()) ** 2))
    assert out["VolTarget"]["hhi_months"] < 1.08 * hhi_parity
    assert out["BuyAndHold"]["hhi_months"] > 1.3 * hhi_parity
    assert out["BuyAndHold"]["effective_months"] < 0.8 * out["VolTarget"]["effective_months"]


def _regime_market(seed: int = 0, years: int = 4):
    """Two assets whose volatility switches together between calm and turbulent regimes (equity 10% /
    40%, bond 4% / 8%); returns the market and the regime (0 calm, 1 turbulent) per date."""
    from feeds.market import MarketData

    rng = np.random.default_rng(seed)
    n_bars = DAYS * years
    state = np.zeros(n_bars, dtype=int)
    for t in range(1, n_bars):
        stay = 0.99 if state[t - 1] == 0 else 0.97
        state[t] = state[t - 1] if rng.random() < stay else 1 - state[t - 1]
    idx = pd.bdate_range("2015-01-01", periods=n_bars)
    vol = np.column_stack([np.where(state == 0, 0.10, 0.40), np.where(state == 0, 0.04, 0.08)])
    r = vol / np.sqrt(DAYS) * rng.normal(size=(n_bars, 2))
    prices = pd.DataFrame(100.0 * np.exp(np.cumsum(r, axis=0)), index=idx, columns=["equity", "bond"])
    return MarketData(prices, {"equity": "equity", "bond": "bond"}), pd.Series(state, index=idx)


def test_volatility_managed_baseline_is_time_axis_parity() -> None:
    """Section 4.1 with the VolatilityManaged baseline itself (fast path, same allocator as the
    backtrader strategy), decomposed as ``drb compare`` does. With the parity rule, rebalanced daily,
    the turnover caps off and a target below the calm volatility (so that the no-borrowing cap does not
    bind), every month carries the same ex-ante variance per bar: its HHI is the equal-risk HHI.
    Equal weight puts the risk into turbulent months; the Moreira-Muir rule into calm ones."""
    from runners.engine.fastpath import run_fast
    from runners.experiments.time_risk import time_risk_contributions_by_strategy

    market, state = _regime_market()
    free = dict(target_vol=0.02, rebalance=1, total_cap=1.0, asset_cap=1.0)
    runs = {"EqualWeight": ("EqualWeight", {}),
            "parity": ("VolatilityManaged", free),
            "moreira_muir": ("VolatilityManaged", dict(free, rule="moreira_muir"))}
    results = {k: run_fast(market, name, params) for k, (name, params) in runs.items()}
    contributions = time_risk_contributions_by_strategy(results, market)
    excess, calm_ratio = {}, {}
    for k, c in contributions.items():
        conc = time_risk_summary(c)["value"]["concentration"]
        excess[k] = conc["hhi_months"] / conc["hhi_months_equal_risk"]
        per_bar = c.sum(axis=1)
        calm = (state.reindex(per_bar.index) == 0).to_numpy()
        calm_ratio[k] = per_bar[calm].mean() / per_bar[~calm].mean()
    assert abs(excess["parity"] - 1.0) < 0.03
    # ex-ante variance per bar in calm vs turbulent regimes: ~1 for parity (the one-bar fill lag
    # costs a few percent), well below 1 for equal weight, well above for Moreira-Muir
    assert 0.85 < calm_ratio["parity"] < 1.1
    assert excess["EqualWeight"] > 1.5 and calm_ratio["EqualWeight"] < 0.4
    assert excess["moreira_muir"] > 1.1 and calm_ratio["moreira_muir"] > 1.8


def test_figures_are_written(tmp_path: Path) -> None:
    p = plot_mean_variance_contributions(tmp_path / "mv.png")
    assert p.exists() and p.stat().st_size > 20_000
    frames = _frames()
    c = _run(BuyAndHold, frames).get_analysis()
    v = _run(VolTarget, {"calmturb": frames["calmturb"]}).get_analysis()
    both = {"BuyAndHold": c, "VolTarget": v}
    q = plot_time_risk(both, tmp_path / "tr.png", freq="month", units="currency")
    assert q.exists() and q.stat().st_size > 10_000
    y = plot_time_risk(both, tmp_path / "ty.png")
    assert y.exists() and y.stat().st_size > 10_000
    with pytest.raises(ConfigError):
        plot_time_risk(both, tmp_path / "bad.png", freq="week")
    with pytest.raises(DataError):
        plot_time_risk({"empty": c.iloc[:0]}, tmp_path / "empty.png")


def test_mean_variance_figure_from_the_command_line(tmp_path: Path, capsys) -> None:
    from runners.cli import main

    assert main(["time-risk", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "mean_variance_contributions.png").stat().st_size > 20_000
    assert "S*(0.5) = 0.5140" in capsys.readouterr().out


def test_year_layout_marks_partial_years_and_folds_stubs() -> None:
    # the demo's shape: 6 days after the first investment, full years, half a last year
    bars = {"2018": 6, "2019": 261, "2020": 262, "2021": 261, "2022": 129}
    layout = year_layout(bars)
    assert [c.label for c in layout] == ["2019 (+6 d of 2018)", "2020", "2021", "2022 (129 d)"]
    assert layout[0].years == ["2018", "2019"] and layout[0].year == "2019" and not layout[0].partial
    assert layout[-1].partial and layout[-1].bars == 129
    # a stub at the end folds into the year before; a long partial first year keeps its column
    assert [c.label for c in year_layout({"2018": 200, "2019": 260, "2020": 5})] == [
        "2018 (200 d)", "2019 (+5 d of 2020)"]
    # a run within one year, or two stubs (nothing to fold into): periods_per_year is the full year
    assert [c.label for c in year_layout({"2018": 100})] == ["2018 (100 d)"]
    assert [c.label for c in year_layout({"2018": 252})] == ["2018"]
    assert [c.label for c in year_layout({"2018": 5, "2019": 4})] == ["2018 (5 d)", "2019 (4 d)"]
    assert [c.label for c in year_layout({"2018": 4, "2019": 60}, periods_per_year=60)] == [
        "2019 (+4 d of 2018)"]
    assert year_layout({}) == []
    # folding sums the shares; a strategy without the folded year keeps its own value
    shares = pd.DataFrame({"2018": [0.01, np.nan], "2019": [0.5, 0.6], "2020": [0.3, 0.2],
                           "2021": [0.1, 0.1], "2022": [0.09, 0.1]}, index=["a", "b"])
    folded = fold_years(shares, layout)
    assert list(folded.columns) == [c.label for c in layout]
    assert folded.iloc[:, 0].tolist() == pytest.approx([0.51, 0.6])
    assert folded.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_time_risk_figure_folds_a_stub_year_and_keeps_the_legend_off_the_lines(monkeypatch, tmp_path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import runners.experiments.time_risk as tr

    figures = []
    save = tr.atomic_savefig

    def keep(fig, path, **kw):  # keep the figure to inspect it
        figures.append(fig)
        return save(fig, path, **kw)

    monkeypatch.setattr(tr, "atomic_savefig", keep)
    idx = pd.bdate_range("2019-12-24", "2021-06-30")  # 6 days of 2019, all 2020, half of 2021
    rng = np.random.default_rng(1)
    frames = {f"S{k}": pd.DataFrame(rng.uniform(1e-6, 4e-6, size=(len(idx), 2)), index=idx,
                                    columns=["equity", "bond"]) for k in range(10)}
    plot_time_risk(frames, tmp_path / "tr.png")
    (fig,) = figures
    vol_ax, year_ax = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in year_ax.get_xticklabels()]
    assert labels == ["2020\n(+6 d of 2019)", "2021\n(129 d)"]
    c = frames["S0"].sum(axis=1)
    first = c[c.index.year <= 2020].sum() / c.sum()
    cells = [t.get_text() for t in year_ax.texts]
    assert len(cells) == 10 * 2 and cells[0] == f"{100 * first:.1f}%"
    # the legend of the ten lines sits outside the axes, right of them
    legend = vol_ax.get_legend()
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert len(legend.get_texts()) == 10
    assert legend.get_window_extent(renderer).x0 >= vol_ax.get_window_extent(renderer).x1
    assert not hasattr(fig, "number")  # a bare Figure: no pyplot state
