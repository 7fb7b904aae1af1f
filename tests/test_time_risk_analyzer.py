"""TimeRiskContribution analyzer in a tiny cerebro on synthetic PandasData feeds, the summary table
and the figures."""

from __future__ import annotations

from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError
from runners.time_risk import (
    TimeRiskContribution,
    plot_mean_variance_contributions,
    plot_time_risk,
    time_risk_summary,
)

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


def test_figures_are_written(tmp_path: Path) -> None:
    p = plot_mean_variance_contributions(tmp_path / "mv.png")
    assert p.exists() and p.stat().st_size > 20_000
    frames = _frames()
    c = _run(BuyAndHold, frames).get_analysis()
    q = plot_time_risk({"BuyAndHold": c}, tmp_path / "tr.png", freq="month")
    assert q.exists() and q.stat().st_size > 10_000
