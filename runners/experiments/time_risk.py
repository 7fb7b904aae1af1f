"""Time-axis risk of a comparison's strategies: contributions, their summary table and figure.

Each strategy's realized policy is decomposed over bars and assets with the causal EWMA covariance
(:func:`time_risk_contributions_by_strategy`, seed 003 / issue 9); :func:`time_risk_summary`
spreads the variance over years, months and assets (``time_risk.csv``) and :func:`plot_time_risk`
draws ``figures/time_risk.png``. The math lives in :mod:`strategies.time_axis`; the backtrader
analyzer of the same decomposition is :class:`strategies.bt.time_risk.TimeRiskContribution`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from drb.constants import PERIODS_PER_YEAR
from drb.errors import ConfigError, DataError
from drb.io import atomic_savefig
from strategies.time_axis import ewma_covariances, herfindahl, time_risk_contributions

if TYPE_CHECKING:  # pragma: no cover
    from feeds.market import MarketData
    from runners.engine.cerebro import StrategyResult

__all__ = ["time_risk_contributions_by_strategy", "time_risk_table", "time_risk_summary", "YearColumn",
           "year_layout", "fold_years", "plot_time_risk"]


def time_risk_contributions_by_strategy(
    results: Mapping[str, StrategyResult], market: MarketData, *, lam: float = 0.94
) -> dict[str, pd.DataFrame]:
    """Time-axis risk contributions of each strategy's realized policy (seed 003, issue 9).

    ``c_{i,t+1} = w_{i,t} (Sigma_t w_t)_i / 252`` with the end-of-day weights ``w_t`` (weight scale,
    so the years are comparable as the portfolio grows) and ``Sigma_t`` the causal EWMA covariance
    (decay ``lam``, annualized) of daily asset returns up to ``t``: the ex-ante variance each day adds
    to the variance of the cumulative return, by asset. Contributions sum exactly to the total.
    """
    rets = market.prices.pct_change().iloc[1:]
    covs = ewma_covariances(rets.to_numpy(dtype=float), lam=lam) * float(PERIODS_PER_YEAR)  # row k: returns up to dates[k+1]
    cov_dates = rets.index
    out: dict[str, pd.DataFrame] = {}
    for name, r in results.items():
        if not len(r.returns):
            continue
        w = r.weights.reindex(cov_dates).loc[r.returns.index[0] :]
        w = w.iloc[:-1]  # weights at close t are held over t -> t+1
        if w.empty:
            continue
        pos = cov_dates.get_indexer(w.index)
        c = time_risk_contributions(w.to_numpy(dtype=float), covs[pos], dt=1.0 / PERIODS_PER_YEAR)
        out[name] = pd.DataFrame(c, index=cov_dates[pos + 1], columns=w.columns).rename_axis("date")
    return out


def time_risk_table(contributions: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per strategy: variance shares by year and asset, and time concentration (HHI), one column each."""
    frames = {n: time_risk_summary(c)["value"] for n, c in contributions.items() if len(c)}
    return pd.DataFrame(frames)


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
        (``TimeRiskContribution.get_analysis()`` or ``runners.experiments.time_risk.time_risk_contributions_by_strategy``).
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
