"""Time-axis risk contributions of a backtrader strategy: analyzer, summary table and figures.

The math lives in :mod:`strategies.time_axis` (pure numpy); this module records what a backtest
held and how risky it was ex ante, and reports how the variance is spread over years and months.

For each bar ``t`` (after the strategy's ``next``) the analyzer records the money position of every
data feed, ``theta_{i,t} = size_i * close_{i,t}`` (currency), and an ex-ante covariance ``Sigma_t`` of
the feeds' *next-bar* simple returns built from information up to ``t`` only. The contributions are

    c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i        (currency^2, per bar)

so that ``sum_i c_{i,t}`` is the ex-ante variance of the next bar's P&L and ``sum_{i,t} c_{i,t}`` the
ex-ante variance of the cumulative P&L (aggregation property, zero-drift reference measure).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import backtrader as bt
import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError
from drb.io import atomic_savefig
from strategies.time_axis import (
    ZhouLiMarket,
    ewma_covariances,
    herfindahl,
    mean_variance_contributions,
    time_risk_contributions,
    zhou_li_sign_change_price,
    zhou_li_wealth_at_price,
)

__all__ = ["TimeRiskContribution", "time_risk_summary", "YearColumn", "year_layout", "fold_years",
           "plot_mean_variance_contributions", "plot_time_risk", "write_time_risk_figure", "main"]

CovarianceFn = Callable[[np.ndarray], np.ndarray]
"""``f(returns_so_far (t, n)) -> (n, n)`` per-bar covariance of the next bar's simple returns."""


class TimeRiskContribution(bt.Analyzer):
    """Record money positions and ex-ante covariances; decompose the variance over assets and bars.

    Params
    ------
    lam : float
        EWMA decay of the default covariance (RiskMetrics 0.94, zero mean):
        ``S_t = sum_{s<=t} lam^(t-s) r_s r_s' / sum_{s<=t} lam^(t-s)``, i.e. the recursion
        ``S_t = lam S_{t-1} + (1 - lam) r_t r_t'`` with bias-corrected start-up weights, ``r_s`` the
        feeds' simple close-to-close returns up to and including bar ``t`` (causal; the forecast for
        bar ``t + 1``; see :func:`strategies.time_axis.ewma_covariances`).
    covariance : callable or None
        Replaces the EWMA: called on every bar with the array of returns so far, shape (t, n), it
        returns the per-bar (not annualized) covariance of the next bar's returns, shape (n, n).
        ``None`` on bars with fewer than ``min_periods`` returns.
    min_periods : int
        Bars with fewer returns than this are not reported (default 20).
    scale : {"money", "weight"}
        ``"money"`` (default): positions in currency, contributions in currency^2. ``"weight"``:
        positions divided by the portfolio value of the bar (the source's price regularization),
        contributions in return^2; use it to compare strategies whose wealth grows differently.

    Notes
    -----
    The position recorded at bar ``t`` is the one held at its close; orders sent at ``t`` fill at the
    next open, so the exposure over ``(t, t+1]`` differs from it by that fill only.

    ``get_analysis()`` returns a DataFrame of shape (T, n): index the bar dates, one column per data
    feed (its ``_name``, else ``data<i>``), values ``c_{i,t}``. ``positions``, ``values`` and
    ``covariances`` keep the recorded inputs after the run.
    """

    params = (
        ("lam", 0.94),
        ("covariance", None),
        ("min_periods", 20),
        ("scale", "money"),
    )

    def start(self) -> None:
        if self.p.scale not in ("money", "weight"):
            raise ConfigError(f"scale must be 'money' or 'weight', got {self.p.scale!r}")
        if not 0.0 < self.p.lam < 1.0:
            raise ConfigError(f"lam must be in (0, 1), got {self.p.lam!r}")
        if self.p.min_periods < 1:
            raise ConfigError(f"min_periods must be >= 1, got {self.p.min_periods!r}")
        self._names = [d._name or f"data{i}" for i, d in enumerate(self.datas)]
        self._dates: list[pd.Timestamp] = []
        self._money: list[np.ndarray] = []
        self._closes: list[np.ndarray] = []
        self._values: list[float] = []
        self._user_covs: list[np.ndarray | None] = []
        self._result: pd.DataFrame | None = None

    def next(self) -> None:
        # a feed that has not started yet gives NaN, reported as a DataError by get_analysis
        closes = np.array([d.close[0] if len(d) else np.nan for d in self.datas], dtype=float)
        sizes = np.array([self.strategy.getposition(d).size for d in self.datas], dtype=float)
        self._dates.append(pd.Timestamp(bt.num2date(self.datas[0].datetime[0])))
        self._closes.append(closes)
        self._money.append(sizes * closes)
        self._values.append(float(self.strategy.broker.getvalue()))
        if self.p.covariance is not None:
            c = np.asarray(self._closes)
            rets = c[1:] / c[:-1] - 1.0
            if rets.shape[0] >= self.p.min_periods:
                cov = np.asarray(self.p.covariance(rets), dtype=float)
                n = len(self.datas)
                if cov.shape != (n, n):
                    raise DataError(f"covariance callable returned shape {cov.shape}, expected {(n, n)}")
                self._user_covs.append(cov)
            else:
                self._user_covs.append(None)

    def _compute(self) -> pd.DataFrame:
        n = len(self.datas)
        idx = pd.DatetimeIndex(self._dates, name="date")
        if not self._dates:
            self.positions = pd.DataFrame(columns=self._names, dtype=float)
            self.values = pd.Series(dtype=float)
            self.covariances = np.empty((0, n, n))
            return pd.DataFrame(columns=self._names, dtype=float)
        money = np.asarray(self._money)
        closes = np.asarray(self._closes)
        values = np.asarray(self._values)
        if np.any(closes <= 0) or not np.all(np.isfinite(closes)):
            raise DataError("TimeRiskContribution: non-positive or non-finite close in a feed")
        rets = closes[1:] / closes[:-1] - 1.0
        covs = np.full((len(closes), n, n), np.nan)
        if self.p.covariance is None:
            if rets.shape[0]:
                covs[1:] = ewma_covariances(rets, self.p.lam, self.p.min_periods)
        else:
            for t, c in enumerate(self._user_covs):
                if c is not None:
                    covs[t] = c
        valid = np.all(np.isfinite(covs), axis=(1, 2))
        theta = money if self.p.scale == "money" else money / values[:, None]
        self.positions = pd.DataFrame(money, index=idx, columns=self._names)
        self.values = pd.Series(values, index=idx, name="value")
        self.covariances = covs
        if not valid.any():
            return pd.DataFrame(columns=self._names, dtype=float, index=idx[:0])
        contrib = time_risk_contributions(theta[valid], covs[valid], dt=1.0)
        return pd.DataFrame(contrib, index=idx[valid], columns=self._names)

    def get_analysis(self) -> pd.DataFrame:  # type: ignore[override]
        """Contributions ``c_{i,t}``, DataFrame (T, n): dates x feeds (currency^2 or return^2)."""
        if self._result is None:
            self._result = self._compute()
        return self._result


def _shares(groups: pd.Series) -> pd.Series:
    total = groups.sum()
    if not np.isfinite(total) or total == 0.0:
        raise DataError(f"time_risk_summary: total contribution is {total!r}")
    return groups / total


def time_risk_summary(contributions: pd.DataFrame) -> pd.DataFrame:
    """How a strategy's ex-ante variance is spread over years, months and assets.

    Parameters
    ----------
    contributions : DataFrame, shape (T, n)
        ``TimeRiskContribution.get_analysis()``: DatetimeIndex, one column per asset.

    Returns
    -------
    DataFrame
        One column ``value``, index a MultiIndex ``(section, item)``:

        * ``("year", "<YYYY>")``: share of the total variance in each calendar year (sum 1);
        * ``("bars", "<YYYY>")``: number of bars (rows of ``contributions``) in each calendar year,
          so that partial first and last years can be recognized (:func:`year_layout`);
        * ``("asset", "<name>")``: share of each asset (sum 1);
        * ``("concentration", ...)``: ``hhi_years`` and ``effective_years`` (= 1 / HHI),
          ``hhi_months`` and ``effective_months`` over calendar months, ``n_years``, ``n_months``
          (buckets with data; partial first/last buckets count as they are), ``hhi_years_equal_risk``
          and ``hhi_months_equal_risk`` (the HHI of the buckets' bar counts: what a policy with the same
          ex-ante variance on every bar scores, the time-axis risk-parity benchmark; ``1 / n`` only
          when the buckets have equal lengths), and ``total_variance`` (sum of all contributions,
          units of the input).

        Concatenate strategies with ``pd.concat({name: summary}, axis=1)``.

    Raises
    ------
    DataError
        Without a DatetimeIndex, with non-finite values, or when the total is zero.
    """
    if not isinstance(contributions.index, pd.DatetimeIndex):
        raise DataError("time_risk_summary: contributions need a DatetimeIndex")
    if contributions.empty:
        raise DataError("time_risk_summary: no contributions")
    values = contributions.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise DataError("time_risk_summary: non-finite contributions")
    per_bar = contributions.sum(axis=1)
    idx = contributions.index
    years = _shares(per_bar.groupby(idx.year).sum())
    months = _shares(per_bar.groupby(idx.to_period("M")).sum())
    assets = _shares(contributions.sum(axis=0))
    hhi_y = herfindahl(years.to_numpy())
    hhi_m = herfindahl(months.to_numpy())
    bars_y = per_bar.groupby(idx.year).size().to_numpy(dtype=float)
    bars_m = per_bar.groupby(idx.to_period("M")).size().to_numpy(dtype=float)
    equal_y = float(np.sum((bars_y / bars_y.sum()) ** 2))
    equal_m = float(np.sum((bars_m / bars_m.sum()) ** 2))
    rows: list[tuple[tuple[str, str], float]] = []
    rows += [(("year", str(y)), float(s)) for y, s in years.items()]
    rows += [(("bars", str(y)), float(b)) for y, b in zip(years.index, bars_y)]
    rows += [(("asset", str(a)), float(s)) for a, s in assets.items()]
    rows += [
        (("concentration", "hhi_years"), hhi_y),
        (("concentration", "effective_years"), 1.0 / hhi_y),
        (("concentration", "n_years"), float(len(years))),
        (("concentration", "hhi_years_equal_risk"), equal_y),
        (("concentration", "hhi_months"), hhi_m),
        (("concentration", "effective_months"), 1.0 / hhi_m),
        (("concentration", "n_months"), float(len(months))),
        (("concentration", "hhi_months_equal_risk"), equal_m),
        (("concentration", "total_variance"), float(values.sum())),
    ]
    index = pd.MultiIndex.from_tuples([k for k, _ in rows], names=["section", "item"])
    return pd.DataFrame({"value": [v for _, v in rows]}, index=index)


class YearColumn(NamedTuple):
    """One column of :func:`year_layout`."""

    label: str  #: e.g. ``"2019"``, ``"2025 (129 d)"``, ``"2019 (+6 d of 2018)"``
    year: str  #: the calendar year the column is named after
    years: list[str]  #: the years it sums: ``year`` and any stub folded into it
    bars: int  #: bars of ``year`` itself
    partial: bool  #: ``year`` has fewer than 90% of the bars of a full year


def year_layout(
    bars: pd.Series | dict[str, float], *, periods_per_year: float = 252.0
) -> list[YearColumn]:
    """Columns in which to show calendar years of unequal length (figure and report table).

    A year is *partial* when it has fewer than 90% of the bars of a full year, where a full year is
    the median bar count of the interior years (``periods_per_year`` when there are none). A partial
    first or last year with fewer bars than a twelfth of a full year (about a month of trading days,
    e.g. the few days between the first investment and New Year) is a *stub*: it is folded into its
    neighbour, so that a handful of days is not drawn as if it were a year. Other partial years keep
    their own column, labelled with their bar count.

    Parameters
    ----------
    bars : Series or dict, year -> number of bars
        In calendar order (e.g. the ``("bars", ...)`` section of :func:`time_risk_summary`).
    periods_per_year : float
        Bars of a full year when the run has no interior year.

    Returns
    -------
    list of YearColumn
        One per column, in calendar order; in labels ``d`` = bars (trading days for daily data).
    """
    counts = pd.Series(bars, dtype=float)
    if counts.empty:
        return []
    years = [str(y) for y in counts.index]
    n = counts.to_numpy(dtype=float)
    full = float(np.median(n[1:-1])) if len(n) > 2 else float(periods_per_year)
    partial = n < 0.9 * full
    stub = np.zeros(len(n), dtype=bool)
    if len(n) > 1:
        stub[0] = n[0] < full / 12.0
        stub[-1] = n[-1] < full / 12.0
        if len(n) == 2 and stub.all():
            stub[:] = False  # two stubs: nothing to fold into
    columns = [(k, [k]) for k in range(len(n)) if not stub[k]]  # never empty
    if stub[0]:
        columns[0][1].insert(0, 0)
    if stub[-1]:
        columns[-1][1].append(len(n) - 1)
    out: list[YearColumn] = []
    for k, members in columns:
        notes = [f"{int(n[k])} d"] if partial[k] else []
        notes += [f"+{int(n[j])} d of {years[j]}" for j in members if j != k]
        label = years[k] + (f" ({', '.join(notes)})" if notes else "")
        out.append(YearColumn(label, years[k], [years[j] for j in members], int(n[k]), bool(partial[k])))
    return out


def fold_years(table: pd.DataFrame, layout: list[YearColumn]) -> pd.DataFrame:
    """Sum the year columns of ``table`` (columns ``str(year)``) into the columns of ``layout``
    (:func:`year_layout`); years absent from ``table`` count as 0, all-missing columns stay NaN."""
    cols = {str(c): c for c in table.columns}
    out = {}
    for col in layout:
        present = [cols[y] for y in col.years if y in cols]
        out[col.label] = table[present].sum(axis=1, min_count=1) if present else np.nan
    return pd.DataFrame(out, index=table.index)


def plot_mean_variance_contributions(
    path: str | Path, market: ZhouLiMarket | None = None, times: tuple[float, ...] = (0.25, 0.75)
) -> Path:
    """Figure of the section 4.3 findings for the Zhou-Li mean-variance policy.

    Left: bond, stock and total contribution densities against the spot wealth ``x_t`` at the first
    of ``times``, for two risk-aversion levels: quadratic in ``x_t``, the aversion shifts the curves
    but not their curvature. The stock's contribution is negative at both extremes of the wealth;
    above the bliss wealth ``gamma e^{-r(T-t)}`` (the policy shorts the stock) is not reached from
    ``x0`` under continuous rebalancing and is shaded.

    Right: the same contributions against the stock's spot price ``S_t`` (``s0 = 1``, log scale)
    through the pathwise map :func:`strategies.time_axis.zhou_li_wealth_at_price`, at each time in
    ``times``; the stock's contribution turns negative below
    :func:`strategies.time_axis.zhou_li_sign_change_price` (marked), i.e. after a crash of the stock,
    while the policy is still long.

    Parameters
    ----------
    path : str or Path
        Output PNG file.
    market : ZhouLiMarket, optional
        Defaults to ``ZhouLiMarket()`` (r 3%, b 10%, sigma 20%, x0 1, T 1, aversion 1); the right
        panel needs ``b > r > 0``.
    times : tuple of float
        Times in years (within ``[0, T)``).

    Returns
    -------
    Path
        The written file.
    """
    from matplotlib.figure import Figure

    m = market or ZhouLiMarket()
    if not times or not all(0.0 <= t < m.horizon for t in times):
        raise ConfigError(f"times must lie in [0, T), got {times!r}")
    fig = Figure(figsize=(14, 5.8), layout="constrained")
    axes = fig.subplots(1, 2)
    _wealth_panel(axes[0], m, times[0])
    _price_panel(axes[1], m, times)
    fig.suptitle(
        f"Zhou-Li mean-variance policy: r={m.r:g}, b={m.b:g}, sigma={m.sigma:g}, x0={m.x0:g}, "
        f"T={m.horizon:g} y, aversion {m.risk_aversion:g}; Var(x_T)={m.terminal_variance:.4f}"
    )
    return atomic_savefig(fig, path, dpi=110)


def _wealth_grid(mk: ZhouLiMarket, t: float) -> np.ndarray:
    """Spot wealths around both zeros of the stock's contribution: ``y = b K / (r E_t)`` (far
    below) and ``y = 0`` (bliss), 400 points."""
    low = mk.bliss_wealth(t) + (mk.b / mk.r) * (mk.mean_wealth(t) - mk.bliss_wealth(t))
    span = mk.bliss_wealth(t) - low
    return np.linspace(low - 0.15 * span, mk.bliss_wealth(t) + 0.15 * span, 400)


def _wealth_band(mk: ZhouLiMarket, t: float, z: float = 2.326) -> tuple[float, float]:
    """1%-99% quantiles of ``x_t``, from ``y_t = y0 exp((r - 1.5 rho) t - sqrt(rho) W_t)``."""
    q = mk.y0 * np.exp((mk.r - 1.5 * mk.rho) * t + np.array([z, -z]) * np.sqrt(mk.rho * t))
    return float(mk.bliss_wealth(t) + q[0]), float(mk.bliss_wealth(t) + q[1])


def _wealth_panel(ax: Any, m: ZhouLiMarket, t0: float) -> None:
    """Left panel: contributions against the spot wealth at ``t0``, two aversion levels."""
    styles = {"solid": m, "dashed": ZhouLiMarket(m.r, m.b, m.sigma, m.x0, m.horizon,
                                                  2.0 * m.risk_aversion)}
    x = _wealth_grid(m, t0)
    ax.axvspan(*_wealth_band(m, t0), color="tab:green", alpha=0.08,
               label=f"1%-99% range of x_t (aversion {m.risk_aversion:g})")
    ax.axvspan(float(m.bliss_wealth(t0)), float(x[-1]), color="grey", alpha=0.15,
               label="above the bliss wealth: stock shorted (not reached from x0)")
    for ls, mk in styles.items():
        cb, cs = mean_variance_contributions(mk, t0, x)
        tag = f"aversion {mk.risk_aversion:g}"
        ax.plot(x, cs, color="tab:red", ls=ls, label=f"stock, {tag}")
        ax.plot(x, cb, color="tab:blue", ls=ls, label=f"bond, {tag}")
        ax.plot(x, cs + cb, color="black", ls=ls, lw=0.8, label=f"total, {tag}")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axvline(m.mean_wealth(t0), color="tab:green", lw=0.8, ls=":",
               label=f"E[x_t] (aversion {m.risk_aversion:g})")
    ax.set_title(f"Against the spot wealth at t = {t0:g} y:\nquadratic; the stock's contribution is "
                 "negative at both ends")
    ax.set_xlabel(f"spot wealth x_t (currency; x0 = {m.x0:g})")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)


def _price_panel(ax: Any, m: ZhouLiMarket, times: tuple[float, ...]) -> None:
    """Right panel: contributions against the stock's spot price at each of ``times``."""
    import matplotlib
    import matplotlib.ticker

    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    s_lo = 0.8 * float(np.min(zhou_li_sign_change_price(m, np.asarray(times))))
    s_grid = np.exp(np.linspace(np.log(s_lo), np.log(2.5), 400))
    for t, col in zip(times, colours):
        xs = zhou_li_wealth_at_price(m, t, s_grid)
        cb, cs = mean_variance_contributions(m, t, xs)
        ax.plot(s_grid, cs, color=col, lw=1.6, label=f"stock, t = {t:g} y")
        ax.plot(s_grid, cb, color=col, lw=0.9, ls="--", label=f"bond, t = {t:g} y")
        s_star = float(zhou_li_sign_change_price(m, t))
        ax.axvline(s_star, color=col, lw=0.8, ls=":",
                   label=f"S* = {s_star:.3f}: stock contribution < 0 below (t = {t:g} y)")
    t1 = times[-1]
    z = 2.326
    drift = (m.b - 0.5 * m.sigma**2) * t1
    ax.axvspan(float(np.exp(drift - z * m.sigma * np.sqrt(t1))),
               float(np.exp(drift + z * m.sigma * np.sqrt(t1))), color="tab:green", alpha=0.08,
               label=f"1%-99% range of S_t at t = {t1:g} y")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title("Against the stock's spot price (s0 = 1): the stock's contribution\nturns negative "
                 "below S* (after a crash), while the policy is long")
    ax.set_xlabel("stock price S_t (s0 = 1, log scale)")
    ax.set_ylabel("contribution density (currency$^2$ / year)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)


def plot_time_risk(
    contributions: dict[str, pd.DataFrame] | pd.DataFrame,
    path: str | Path,
    freq: str = "year",
    *,
    periods_per_year: float = 252.0,
    units: str = "return",
) -> Path:
    """How each strategy's ex-ante variance is spread over time and over assets, in one figure.

    Three panels, one row per strategy in the lower two:

    1. ex-ante volatility of the next bar, annualized (``sqrt(periods_per_year * sum_i c_{i,t})``),
       averaged by month: a time-axis risk-parity policy draws a flat line;
    2. the share of the total variance carried by each year (or month), printed in the cells; the
       colour is that share divided by the bucket's share of bars (1 = the same risk per bar as on
       average; partial first and last buckets are not penalized), and the row label gives the HHI of
       the calendar-year shares next to the HHI of equal risk per bar (as in
       :func:`time_risk_summary`). By year, the columns follow :func:`year_layout`: partial years are
       labelled with their bar count and a first or last year shorter than about a month is folded
       into its neighbour (its few bars would otherwise look like a year, with a noisy colour);
    3. the share of the total variance carried by each asset (Euler split; negative = hedge).

    Parameters
    ----------
    contributions : DataFrame or dict of name -> DataFrame
        Per-bar contributions with a DatetimeIndex, one column per asset
        (``TimeRiskContribution.get_analysis()`` or ``runners.experiments.compare.time_risk_contributions_by_strategy``).
    path : str or Path
        Output PNG.
    freq : {"year", "month"}
        Time bucket of panel 2 (cells are annotated for years only).
    periods_per_year : float
        Bars per year, to annualize panel 1.
    units : {"return", "currency"}
        Units of the positions: weights (panel 1 in percent) or money (currency).

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    if freq not in ("year", "month"):
        raise ConfigError(f"freq must be 'year' or 'month', got {freq!r}")
    if units not in ("return", "currency"):
        raise ConfigError(f"units must be 'return' or 'currency', got {units!r}")
    frames = contributions if isinstance(contributions, dict) else {"strategy": contributions}
    frames = {n: c for n, c in frames.items() if len(c)}
    if not frames:
        raise DataError("plot_time_risk: no contributions to plot")
    share_tab, inten_tab, labels = _bucket_shares(frames, freq, periods_per_year)
    assets = pd.DataFrame({n: c.sum(axis=0) / c.to_numpy().sum() for n, c in frames.items()}).T

    k = len(frames)
    heights = [3.2, 0.5 * k + 0.9, 0.5 * k + 0.9]
    width = max(13.0, min(22.0, 6.0 + 0.9 * share_tab.shape[1])) if freq == "year" else 14.0
    fig = Figure(figsize=(width, sum(heights) + 0.8), layout="constrained")
    axes = fig.subplots(3, 1, gridspec_kw={"height_ratios": heights})
    _vol_panel(axes[0], frames, periods_per_year, units)
    _share_panel(fig, axes[1], share_tab, inten_tab, labels, freq)
    _asset_panel(fig, axes[2], assets, list(frames))
    return atomic_savefig(fig, path, dpi=100)


def _bucket_shares(
    frames: dict[str, pd.DataFrame], freq: str, periods_per_year: float
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per strategy (rows) and year or month (columns): the share of the total variance, that share
    over the bucket's share of bars, and the row labels with the HHIs (years folded by
    :func:`year_layout`)."""

    def key(c: pd.DataFrame) -> pd.Index:
        return pd.Index(c.index.year.astype(str) if freq == "year" else c.index.to_period("M").astype(str))

    shares, bar_shares, labels = {}, {}, []
    for name, c in frames.items():
        per_bar = c.sum(axis=1)
        g = per_bar.groupby(key(c)).sum()
        n_bars = per_bar.groupby(key(c)).size()
        sh = g / g.sum()
        bar_share = n_bars / n_bars.sum()
        shares[name], bar_shares[name] = sh, bar_share
        labels.append(f"{name}\nHHI {herfindahl(sh.to_numpy()):.3f} "
                      f"(equal risk {float(np.sum(bar_share.to_numpy() ** 2)):.3f})")
    share_tab = pd.DataFrame(shares).T.sort_index(axis=1)
    bar_tab = pd.DataFrame(bar_shares).T.sort_index(axis=1)
    if freq == "year":
        # a stub first/last year (a few days) is folded into its neighbour; partial years are labelled
        counts = pd.DataFrame({n: c.sum(axis=1).groupby(key(c)).size() for n, c in frames.items()})
        layout = year_layout(counts.max(axis=1).sort_index(), periods_per_year=periods_per_year)
        share_tab, bar_tab = fold_years(share_tab, layout), fold_years(bar_tab, layout)
    return share_tab, share_tab / bar_tab, labels


def _vol_panel(ax: Any, frames: dict[str, pd.DataFrame], periods_per_year: float, units: str) -> None:
    """Panel 1: annualized ex-ante volatility of the next bar, monthly mean, log scale."""
    import matplotlib.ticker

    scale = 100.0 if units == "return" else 1.0
    for name, c in frames.items():
        vol = np.sqrt(np.clip(c.sum(axis=1), 0.0, None) * periods_per_year) * scale
        monthly = vol.groupby(vol.index.to_period("M")).mean()
        ax.plot(monthly.index.to_timestamp(), monthly.to_numpy(), lw=1.3, label=name)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("annualized ex-ante vol" + (" (%)" if units == "return" else " (currency)"))
    ax.set_title("Ex-ante volatility of the next bar, annualized, monthly mean (log scale)\n"
                 "flat = equal risk per bar (time-axis risk parity)")
    ax.grid(alpha=0.3)
    # outside the axes: inside, the legend hides the lines of the most volatile strategies
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False)


def _share_panel(fig: Any, ax: Any, share_tab: pd.DataFrame, inten_tab: pd.DataFrame,
                 labels: list[str], freq: str) -> None:
    """Panel 2: share of the variance by year or month (cells), coloured by share / share of bars."""
    from matplotlib.colors import TwoSlopeNorm

    vals = inten_tab.to_numpy(dtype=float)
    n_buckets = share_tab.shape[1]
    norm = TwoSlopeNorm(vcenter=1.0, vmin=min(0.0, float(np.nanmin(vals))),
                        vmax=max(2.0, float(np.nanmax(vals))))
    im = ax.imshow(vals, aspect="auto", cmap="RdBu_r", norm=norm)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    cols = [str(c) for c in share_tab.columns]
    if freq == "year":
        ax.set_xticks(range(n_buckets), [c.replace(" (", "\n(") for c in cols], fontsize=8)
        for (r, cidx), v in np.ndenumerate(share_tab.to_numpy(dtype=float)):
            dark = abs(float(norm(vals[r, cidx])) - 0.5) > 0.33
            ax.text(cidx, r, f"{100 * v:.1f}%", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    else:
        step = max(1, n_buckets // 24)
        ax.set_xticks(range(0, n_buckets, step), cols[::step], rotation=90, fontsize=7)
    title = (f"Share of each strategy's total ex-ante variance by {freq} (in the cells)\n"
             f"colour: share / share of bars (1 = equal risk per bar)")
    if freq == "year" and any("(" in c for c in cols):
        title += ("; (n d): partial year of n bars;\n+n d of YYYY: a first or last year shorter "
                  "than about a month, folded into its neighbour")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="share / share of bars", shrink=0.9)


def _asset_panel(fig: Any, ax: Any, assets: pd.DataFrame, names: list[str]) -> None:
    """Panel 3: share of the variance by asset (Euler split; negative = hedge)."""
    av = assets.to_numpy(dtype=float)
    lim = max(0.5, float(np.nanmax(np.abs(av))))
    im2 = ax.imshow(av, aspect="auto", cmap="PuOr_r", vmin=-lim, vmax=lim)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(av.shape[1]), [str(a) for a in assets.columns])
    for (r, cidx), v in np.ndenumerate(av):
        ax.text(cidx, r, f"{100 * v:.1f}%" if np.isfinite(v) else "not held", ha="center",
                va="center", fontsize=8, color="white" if abs(v) > 0.66 * lim else "black")
    ax.set_title("Share of each strategy's total ex-ante variance by asset\n(Euler split over the "
                 "whole run; negative = hedge)")
    fig.colorbar(im2, ax=ax, label="share of total variance", shrink=0.9)


def write_time_risk_figure(out: Path) -> str:
    """Write ``mean_variance_contributions.png`` (Zhou-Li market, default parameters) under ``out``
    and return its path and the sign-change prices as two printable lines (``drb time-risk``)."""
    m = ZhouLiMarket()
    path = plot_mean_variance_contributions(Path(out) / "mean_variance_contributions.png", m)
    stars = ", ".join(f"S*({t:g}) = {float(zhou_li_sign_change_price(m, t)):.4f}"
                      for t in (0.0, 0.25, 0.5, 0.75, 1.0))
    return f"{path}\nstock contribution < 0 below (s0 = 1): {stars}"


def main(argv: list[str] | None = None) -> int:
    """``python -m runners.report.time_risk [--out DIR]`` (wrapper of ``drb time-risk``, kept for one
    release): write the section 4.3 figure (``mean_variance_contributions.png``) with the default
    market and print the sign-change prices."""
    from runners.report.commands import build_time_risk_parser, time_risk_command

    parser = argparse.ArgumentParser(prog="python -m runners.report.time_risk", description=main.__doc__)
    build_time_risk_parser(parser)
    return time_risk_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
