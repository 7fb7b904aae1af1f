"""pyfolio-reloaded tear sheets per strategy, rendered headless to ``tearsheets/<strategy>.png``.

Inputs come from the run directory (docs/outputs.md): ``returns.csv`` (the strategy's column),
``positions/<strategy>.csv`` (money value of every asset and ``cash``) and
``transactions/<strategy>.csv`` (one row per fill). We build these ourselves for every feed;
backtrader's built-in ``PyFolio`` analyzer is not used (it keeps only the last feed plus cash).

One tall PNG per strategy, stacked top to bottom from the sections of pyfolio's full tear sheet:

1. a header: strategy, span, pyfolio's performance statistics (``timeseries.perf_stats`` with
   positions and transactions: gross leverage and daily turnover included) and the five worst
   drawdown periods (``timeseries.gen_drawdown_table``) -- the tables pyfolio would print as HTML;
2. the returns tear sheet (cumulative returns linear and log, returns, rolling volatility and
   Sharpe, top drawdowns, underwater, monthly heatmap, annual returns, return quantiles);
3. the interesting-times sheet, when the run overlaps one of pyfolio's stress periods (left out
   on request, e.g. for a synthetic market, whose dates are not history); pyfolio's "Covid" period
   runs from 2020-02-11 to *today*, which makes every later year a stress period: it is cut to
   the crash, 2020-02-11 to 2020-04-30 ("Covid crash");
4. the positions tear sheet (exposure, allocation per asset, concentration, holdings, leverage);
5. the transactions sheet: daily turnover, daily volume and the turnover histogram. pyfolio's
   time-of-day histogram of fills is left out: our fills come from daily bars and carry no
   intraday time, so that panel would be empty.

With a benchmark strategy (the one the information ratio is measured against) the returns sheet
gains the benchmark's curve, the volatility-matched curve and rolling beta, and the header alpha
and beta; without one, pyfolio's "volatility matched to benchmark" panel (then a copy of the
cumulative returns) is still drawn by pyfolio.

Readability fixes over pyfolio's defaults, applied after pyfolio draws: plain numbers on log
axes (not "1.3 x 10^0" minor labels), percent ticks with the decimals their spacing needs on the
returns, rolling volatility and underwater panels (pyfolio prints -0.5 % as "-0%" and 2.5 % vol
as "0.02" next to another "0.02"), blank cells in the monthly heatmap for months outside the run
(pyfolio fills them with 0), and a turnover axis scaled to the rebalances (pyfolio fixes it to
0-2, which the initial investment, 2.0 in pyfolio's units, fills alone); the turnover histogram
shows the days with trades, initial investment excluded.

Console hygiene: pyfolio floods deprecation warnings and prints IPython ``HTML`` reprs on stdout.
Rendering always happens in worker subprocesses (Agg backend) whose stdout goes to ``/dev/null``,
whose stderr goes to a private temporary file and whose warnings are ignored, so nothing reaches
the caller's console; failures travel back and are raised typed in the caller. :func:`render_tearsheet` renders in the calling
process for callers who want that, silencing Python-level output and warnings while it runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from drb.errors import DataError, DRBError
from drb.io import atomic_write_bytes
from runners.rundir import RETURNS_CSV, load_strategy_inputs, read_dated_csv

__all__ = [
    "TearsheetError",
    "TearsheetWorkers",
    "load_tearsheet_inputs",
    "render_tearsheet",
    "write_tearsheets",
]

#: Default resolution of the tear sheet PNGs (pyfolio figures are 14 inches wide).
DEFAULT_DPI = 72


class TearsheetError(DRBError, RuntimeError):
    """pyfolio could not render a strategy's tear sheet."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Python-level stdout/stderr and every warning for the duration."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


#: The tear sheets' reader of a run folder (:func:`runners.rundir.load_strategy_inputs`).
load_tearsheet_inputs = load_strategy_inputs


def _header_figure(
    strategy: str,
    returns: pd.Series,
    positions: pd.DataFrame,
    transactions: pd.DataFrame | None,
    benchmark_rets: pd.Series | None = None,
):  # -> matplotlib.figure.Figure
    import pyfolio as pf
    from matplotlib.figure import Figure

    stats = pf.timeseries.perf_stats(returns, factor_returns=benchmark_rets, positions=positions,
                                     transactions=transactions)
    dd = pf.timeseries.gen_drawdown_table(returns, top=5).dropna(how="all")
    table = _monthly_table(returns)
    # layout in inches: title band, then stats (left) beside drawdowns + monthly returns (right)
    heat_h = 0.9 + 0.34 * len(table)
    body = max(5.3, 2.3 + heat_h)
    height = 1.0 + body
    fig = Figure(figsize=(14, height))
    title = f"pyfolio tear sheet: {strategy}"
    if benchmark_rets is not None and benchmark_rets.name:
        title += f" (benchmark: {benchmark_rets.name})"
    fig.suptitle(title, fontsize=22 if len(title) < 60 else 18, fontweight="bold", y=1 - 0.08 / height)
    span = f"{returns.index[0].date()} to {returns.index[-1].date()}, {len(returns)} trading days"
    assets = [c for c in positions.columns if c != "cash"]
    fig.text(0.5, 1 - 0.6 / height, f"{span}; assets: {', '.join(assets)} + cash", ha="center", fontsize=13)

    ax1 = fig.add_axes((0.02, 0.1 / height, 0.40, (body - 0.1) / height))
    ax1.axis("off")
    ax1.set_title("Performance statistics (pyfolio, daily data)", fontsize=15)
    pct = {"Annual return", "Cumulative returns", "Annual volatility", "Max drawdown",
           "Daily value at risk", "Daily turnover"}
    rows = [[k, f"{v:.2%}" if k in pct else f"{v:.3f}"] for k, v in stats.items()]
    t1 = ax1.table(cellText=rows, colLabels=["statistic", "value"], loc="upper center",
                   colWidths=[0.62, 0.30], cellLoc="left")
    t1.auto_set_font_size(False)
    t1.set_fontsize(13)
    t1.scale(1.0, 1.5)

    ax2 = fig.add_axes((0.46, (body - 2.2) / height, 0.52, 2.2 / height))
    ax2.axis("off")
    ax2.set_title("Worst drawdown periods", fontsize=15)
    if dd.empty:
        ax2.text(0.5, 0.8, "no drawdown", ha="center", fontsize=12)
    else:
        def fmt_date(v: object) -> str:
            return "not recovered" if pd.isna(v) else str(pd.Timestamp(v).date())

        drows = [
            [f"{r['Net drawdown in %']:.2f}", fmt_date(r["Peak date"]), fmt_date(r["Valley date"]),
             fmt_date(r["Recovery date"]), "" if pd.isna(r["Duration"]) else f"{int(r['Duration'])}"]
            for _, r in dd.iterrows()
        ]
        t2 = ax2.table(cellText=drows,
                       colLabels=["drawdown %", "peak", "valley", "recovery", "days"],
                       colWidths=[0.2, 0.21, 0.21, 0.24, 0.12],
                       loc="upper center", cellLoc="center")
        t2.auto_set_font_size(False)
        t2.set_fontsize(13)
        t2.scale(1.0, 1.5)

    # monthly returns, full size: pyfolio's own heatmap is a third of the page wide, too small
    # for its numbers at this resolution
    ax3 = fig.add_axes((0.52, 0.65 / height, 0.45, (heat_h - 0.95) / height))
    _draw_monthly_heatmap(ax3, table, annot_size=11)
    ax3.set_ylabel("")
    ax3.set_xlabel("")
    ax3.tick_params(labelsize=11)
    ax3.set_title("Monthly returns (%); blank: outside the run", fontsize=15)
    return fig


def _monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Compounded monthly returns (decimal), years x 12 months, NaN outside the run."""
    import calendar

    import empyrical as ep

    table = ep.aggregate_returns(returns, "monthly").unstack()
    table = table.reindex(columns=range(1, 13))
    table.columns = [calendar.month_abbr[m] for m in table.columns]
    return table


def _draw_monthly_heatmap(ax, table: pd.DataFrame, *, annot_size: float | None) -> None:
    """Monthly returns in % (years x months), red to green centred on 0, NaN cells blank.

    Drawn with ``imshow`` rather than seaborn's heatmap, which draws the whole figure once more
    to test its tick labels for overlap (0.7 s inside a tear sheet's tall figure). Year labels
    are thinned to about 12 so that long runs keep them apart.
    """
    from matplotlib import colormaps
    from matplotlib.ticker import FixedLocator, NullLocator

    shown = (table * 100.0).round(1) + 0.0  # + 0.0: no "-0.0" cells
    vals = shown.to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    vr = float(np.max(np.abs(finite))) if finite.size else 1.0
    vr = vr if vr > 0 else 1.0
    cmap = colormaps["RdYlGn"]
    ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=-vr, vmax=vr, aspect="auto",
              interpolation="nearest")
    ax.grid(False)
    n_rows, n_cols = vals.shape
    step = max(1, int(np.ceil(n_rows / 12)))
    rows = list(range(0, n_rows, step))
    ax.yaxis.set_major_locator(FixedLocator(rows))
    ax.set_yticklabels([str(shown.index[r]) for r in rows], rotation=0)
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels([str(c) for c in shown.columns], rotation=90 if annot_size is None else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    for side in ax.spines.values():
        side.set_visible(False)
    if annot_size is not None:
        for (i, j), v in np.ndenumerate(vals):
            if np.isfinite(v):
                r, g, b, _ = cmap(0.5 + 0.5 * v / vr)
                lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=annot_size,
                        color="black" if lum > 0.408 else "white")


def _txn_figure(returns: pd.Series, positions: pd.DataFrame, transactions: pd.DataFrame):
    import pyfolio as pf
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with pf.plotting.plotting_context(), pf.plotting.axes_style():
        fig = Figure(figsize=(14, 3 * 6))
        gs = fig.add_gridspec(3, 3, wspace=0.5, hspace=0.5)
        ax_turnover = fig.add_subplot(gs[0, :])
        ax_volume = fig.add_subplot(gs[1, :], sharex=ax_turnover)
        ax_hist = fig.add_subplot(gs[2, :])
        pf.plotting.plot_turnover(returns, transactions, positions, ax=ax_turnover)
        pf.plotting.plot_daily_volume(returns, transactions, ax=ax_volume)
        # pyfolio's turnover: traded value / average gross book (two-way); the initial
        # investment is 2.0 on that scale and pyfolio fixes the axis to 0-2 for it
        turnover = pf.txn.get_turnover(positions, transactions, "AGB").reindex(returns.index).fillna(0.0)
        first_trade = pd.DatetimeIndex(transactions.index).min().normalize()
        initial = turnover.index.normalize() == first_trade
        rest = turnover[~initial]
        traded = rest[rest > 0]
        if len(traded):
            top = 1.15 * float(traded.max())
            ax_turnover.set_ylim(0.0, top)
            init = float(turnover[initial].max()) if initial.any() else 0.0
            if init > top:
                ax_turnover.set_title(f"Daily turnover (pyfolio's two-way measure; the initial "
                                      f"investment, {init:.2f}, is off the scale)")
            ax_turnover.yaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
            ax_turnover.yaxis.set_major_formatter(_step_percent())
            sns.histplot(traded, ax=ax_hist)
            ax_hist.set_title(f"Distribution of daily turnover on the {len(traded)} days with trades "
                              "(initial investment excluded)")
            ax_hist.set_xlabel("Turnover rate (traded value / average gross book)")
            ax_hist.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 5, 10]))
            ax_hist.xaxis.set_major_formatter(_step_percent())
        else:
            ax_hist.set_title("Distribution of daily turnover: no trade after the initial investment")
        for ax in fig.axes:
            ax.tick_params(axis="x", which="major", bottom=True, top=False, labelbottom=True)
    return fig


def _step_percent(scale: float = 100.0):
    from runners.report.figures import StepPercentFormatter

    return StepPercentFormatter(scale)


def _stress_periods() -> dict:
    """pyfolio's stress periods, "Covid" (2020-02-11 to today in pyfolio) cut to the crash."""
    from pyfolio.interesting_periods import PERIODS

    periods = dict(PERIODS)
    if "Covid" in periods:
        start = periods.pop("Covid")[0]
        periods["Covid crash"] = (start, pd.Timestamp("2020-04-30", tz="UTC"))
    return periods


def _monthly_heatmap(ax, returns: pd.Series) -> None:
    """pyfolio's monthly heatmap, redrawn with months outside the run blank (pyfolio fills them
    with 0) and without its numbers, unreadable at this size: the header has them full size."""
    ax.clear()
    _draw_monthly_heatmap(ax, _monthly_table(returns), annot_size=None)
    ax.set_ylabel("Year")
    ax.set_xlabel("Month")
    ax.set_title("Monthly returns\n(values at the top)")


def _legend_above(ax) -> None:  # noqa: ANN001
    """Move an axis' legend above its plotting area (between the title and the data), one row,
    so it never sits on bars, fills or lines; the title is lifted to make room."""
    leg = ax.get_legend()
    if leg is None:
        return
    handles, labels = leg.legend_handles, [t.get_text() for t in leg.get_texts()]
    if not labels:
        return
    leg.remove()
    size = float(ax.title.get_fontsize())
    ax.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(labels),
              frameon=False, fontsize=0.8 * size, handlelength=1.5, columnspacing=1.2,
              borderaxespad=0.2)
    ax.set_title(ax.get_title(), pad=2.2 * size + 4, fontsize=size)


def _mean_in_title(ax, values: pd.Series, what: str) -> None:  # noqa: ANN001
    """Replace a one-entry "Mean" legend that covers bars by the mean in the title."""
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title(f"{what}\n(dashed: mean {100 * float(values.mean()):.1f}%)",
                 fontsize=ax.title.get_fontsize())


def _thin_year_labels(ax, axis: str = "y", most: int = 12) -> None:  # noqa: ANN001
    """Keep at most ``most`` category labels (every k-th) on a bar chart's year axis."""
    from matplotlib.ticker import FixedLocator

    ax_obj = ax.yaxis if axis == "y" else ax.xaxis
    locs = list(ax_obj.get_majorticklocs())
    labels = [t.get_text() for t in ax_obj.get_majorticklabels()]
    if len(locs) <= most or len(labels) != len(locs):
        return
    step = int(np.ceil(len(locs) / most))
    keep = list(range(0, len(locs), step))
    ax_obj.set_major_locator(FixedLocator([locs[k] for k in keep]))
    (ax.set_yticklabels if axis == "y" else ax.set_xticklabels)([labels[k] for k in keep])


def _short_date_axis(ax) -> None:  # noqa: ANN001
    """At most 5 unrotated, concise date labels (the stress-period panels are narrow)."""
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=3, maxticks=5)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    for label in ax.get_xticklabels():
        label.set_rotation(0)
        label.set_horizontalalignment("center")


def _asset_line_colors(ax, colors: dict[str, str]) -> None:  # noqa: ANN001
    """Colour the lines (and legend entries) labelled with an asset by the report's palette."""
    for line in ax.get_lines():
        if line.get_label() in colors:
            line.set_color(colors[line.get_label()])
    leg = ax.get_legend()
    if leg is not None:
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            if text.get_text() in colors and hasattr(handle, "set_color"):
                handle.set_color(colors[text.get_text()])


def _tidy_axes(
    fig, returns: pd.Series, *, narrow_dates: bool = False, assets: Sequence[str] = ()
) -> None:
    """Readable ticks and legends on the panels pyfolio labels badly (see the module docstring):
    percent ticks, thinned year labels, legends moved off the data, with ``narrow_dates`` (the
    stress-period grid) short date axes, and lines of ``assets`` in the report's asset colours
    (:func:`runners.report.figures.asset_colors`)."""
    from runners.report.figures import asset_colors

    colors = asset_colors(list(assets))
    import empyrical as ep
    from matplotlib.ticker import MaxNLocator

    from runners.report.figures import nice_log_ticks

    nice = [1, 2, 5, 10]
    for ax in fig.axes:
        title = ax.get_title()
        if ax.get_yscale() == "log":
            nice_log_ticks(ax)
        if title in ("Returns", "Return quantiles") or title.startswith("Rolling volatility"):
            ax.yaxis.set_major_locator(MaxNLocator(nbins=7, steps=nice))
            ax.yaxis.set_major_formatter(_step_percent())
        elif title == "Underwater plot":  # pyfolio plots the drawdown in percent already
            ax.yaxis.set_major_locator(MaxNLocator(nbins=7, steps=nice))
            ax.yaxis.set_major_formatter(_step_percent(1.0))
        elif title == "Monthly returns (%)":
            _monthly_heatmap(ax, returns)
        if colors and title.startswith("Portfolio allocation"):
            _asset_line_colors(ax, colors)
        if title == "Annual returns":
            _mean_in_title(ax, ep.aggregate_returns(returns, "yearly"), "Annual returns")
            _thin_year_labels(ax, "y")
        elif title == "Distribution of monthly returns":
            _mean_in_title(ax, ep.aggregate_returns(returns, "monthly"), "Distribution of monthly returns")
        else:
            _legend_above(ax)
        if narrow_dates:
            _short_date_axis(ax)


def _figure_rgb(fig, dpi: int) -> np.ndarray:
    """Draw ``fig`` once on an Agg canvas; RGB pixels with blank margins cropped.

    One draw and no PNG round trip per section: ``bbox_inches="tight"`` would draw twice and
    encoding every section only to decode it again for stacking doubles the cost.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    fig.patch.set_facecolor("white")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    ink = np.any(rgb < 250, axis=2)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return rgb.copy()
    pad = max(4, dpi // 6)
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, rgb.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, rgb.shape[1])
    return rgb[r0:r1, c0:c1].copy()


def _stack_png(parts: Sequence[np.ndarray]) -> bytes:
    """Stack RGB sections vertically (centred, white padding) and encode one PNG."""
    width = max(p.shape[1] for p in parts)
    height = sum(p.shape[0] for p in parts)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    y = 0
    for p in parts:
        x = (width - p.shape[1]) // 2
        canvas[y: y + p.shape[0], x: x + p.shape[1]] = p
        y += p.shape[0]
    from runners.report.figures import encode_png

    return encode_png(canvas)


def rolling_beta(
    returns: pd.Series, factor_returns: pd.Series, rolling_window: int = 126
) -> pd.Series:
    """pyfolio's ``timeseries.rolling_beta``, vectorized (one pass instead of a loop of
    ``empyrical.beta`` calls: about 40 % of a tear sheet's time with a benchmark).

    pyfolio's beta at day ``t`` uses the ``rolling_window + 1`` days ending at ``t`` (a label slice
    from ``t - rolling_window``): population covariance over population variance of the factor,
    NaN where that variance is below 1e-30 and on the first ``rolling_window`` days.

    Parameters
    ----------
    returns : pandas.Series, shape (n_days,)
        Daily returns without NaN.
    factor_returns : pandas.Series, shape (n_days,)
        The benchmark's daily returns on the same days, without NaN.
    rolling_window : int, default 126
        Window length in days (pyfolio: 6 and 12 months of 21 days).

    Returns
    -------
    pandas.Series, shape (n_days,)
        Rolling beta on the returns' index.
    """
    w = int(rolling_window) + 1
    r = returns.to_numpy(dtype=float)
    f = factor_returns.reindex(returns.index).to_numpy(dtype=float)
    out = np.full(len(r), np.nan)
    if len(r) >= w:
        rw = np.lib.stride_tricks.sliding_window_view(r, w)
        fw = np.lib.stride_tricks.sliding_window_view(f, w)
        resid = fw - fw.mean(axis=1, keepdims=True)
        var = (resid * resid).mean(axis=1)
        cov = (resid * rw).mean(axis=1)
        with np.errstate(all="ignore"):
            out[w - 1:] = np.where(var < 1.0e-30, np.nan, cov / var)
    return pd.Series(out, index=returns.index, dtype="float64")


def aggregate_returns(returns: pd.Series, convert_to: str) -> pd.Series:
    """empyrical's ``aggregate_returns`` (compounded returns per ISO week, month, quarter or
    year), vectorized: one grouped product instead of a Python call per group (six calls cost
    about a fifth of a tear sheet).

    Parameters
    ----------
    returns : pandas.Series, shape (n_days,)
        Daily simple returns without NaN, DatetimeIndex.
    convert_to : {"weekly", "monthly", "quarterly", "yearly"}

    Returns
    -------
    pandas.Series
        Compounded return per period, indexed like empyrical's (year; year and week, month or
        quarter), unnamed levels.
    """
    ix = pd.DatetimeIndex(returns.index)
    if convert_to == "weekly":
        iso = ix.isocalendar()
        keys = [iso["year"].to_numpy(dtype=np.int64), iso["week"].to_numpy(dtype=np.int64)]
    elif convert_to == "monthly":
        keys = [ix.year.to_numpy(dtype=np.int64), ix.month.to_numpy(dtype=np.int64)]
    elif convert_to == "quarterly":
        keys = [ix.year.to_numpy(dtype=np.int64), (ix.month.to_numpy(dtype=np.int64) + 2) // 3]
    elif convert_to == "yearly":
        keys = [ix.year.to_numpy(dtype=np.int64)]
    else:
        raise ValueError(f"convert_to must be weekly, monthly, quarterly or yearly, got {convert_to!r}")
    out = (1.0 + returns).groupby(keys).prod() - 1.0
    out.index = out.index.set_names([None] * out.index.nlevels)
    out.name = returns.name
    return out


def _pyfolio_monthly_heatmap(returns: pd.Series, ax=None, **_kwargs):  # noqa: ANN001, ANN202
    """Stand-in for pyfolio's monthly heatmap: draws the readable one directly, instead of
    drawing pyfolio's and then replacing it (see :func:`_monthly_heatmap`)."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    _monthly_heatmap(ax, returns)
    return ax


@contextlib.contextmanager
def _fast_pyfolio() -> Iterator[None]:
    """Swap pyfolio's loop-based rolling beta, its (redrawn anyway) monthly heatmap and
    empyrical's per-group ``aggregate_returns`` for :func:`rolling_beta`,
    :func:`_pyfolio_monthly_heatmap` and :func:`aggregate_returns` while a tear sheet renders; the
    originals are restored afterwards. Only for returns without NaN (what
    :func:`load_tearsheet_inputs` gives): pyfolio's beta drops NaN days, this one does not."""
    import empyrical
    import pyfolio as pf

    saved = (pf.timeseries.rolling_beta, pf.plotting.plot_monthly_returns_heatmap,
             empyrical.aggregate_returns)
    pf.timeseries.rolling_beta = rolling_beta
    pf.plotting.plot_monthly_returns_heatmap = _pyfolio_monthly_heatmap
    empyrical.aggregate_returns = aggregate_returns
    try:
        yield
    finally:
        (pf.timeseries.rolling_beta, pf.plotting.plot_monthly_returns_heatmap,
         empyrical.aggregate_returns) = saved


@contextlib.contextmanager
def _skip_pandas_shared_axes() -> Iterator[None]:
    """Skip pandas' shared-axis tick-label pruning while pyfolio plots (restored afterwards).

    Every ``Series.plot`` call on one of pyfolio's gridspec axes makes pandas walk *all* axes of
    the figure and compute their tick labels to hide the shared ones; pyfolio switches those
    labels back on at the end anyway. Skipping it halves the CPU time of a tear sheet (about
    4.8 s -> 2.6 s for two years of data here); the only visible change is rotated date labels.
    Likewise, pandas applies a plot's label rotation and font size by fetching the axis' tick
    labels, which makes matplotlib compute every tick of the axis at each of pyfolio's ~25
    ``plot`` calls; here they are set as the axis' tick parameters (the same labels, computed
    once at draw time).
    Not thread-safe: used in the single-threaded tear sheet workers.
    """
    from pandas.plotting._matplotlib import core as pd_core

    def tick_params(axis, rot=None, fontsize=None) -> None:  # noqa: ANN001
        kw = {k: v for k, v in (("labelrotation", rot), ("labelsize", fontsize)) if v is not None}
        if kw:
            axis.set_tick_params(which="both", **kw)

    original = pd_core.handle_shared_axes, pd_core.MPLPlot.__dict__["_apply_axis_properties"]
    pd_core.handle_shared_axes = lambda **_: None
    pd_core.MPLPlot._apply_axis_properties = staticmethod(tick_params)
    try:
        with _naive_utc_date_conversion():
            yield
    finally:
        pd_core.handle_shared_axes, pd_core.MPLPlot._apply_axis_properties = original


def naive_utc_dates(values: object) -> object:
    """Tz-aware pandas dates as naive UTC ``datetime64`` values; anything else unchanged.

    matplotlib's ``date2num`` converts tz-aware dates one Python object at a time (to UTC, then
    drops the zone); the same numbers come from the naive UTC ``datetime64`` array in one
    vectorized step.

    Parameters
    ----------
    values : object
        What pandas' date converter receives: a ``DatetimeIndex``, a ``Series`` of dates, a
        ``DatetimeArray``, an object array of ``Timestamp``, a scalar, ...

    Returns
    -------
    object
        ``numpy.ndarray`` of naive ``datetime64`` (the input's unit), shape (n,), for tz-aware
        pandas date containers (an object array whose first element is a tz-aware
        ``Timestamp`` and that pandas reads as one time zone); ``values`` itself otherwise.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.array
    elif (isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1 and len(values)
          and all(isinstance(v, pd.Timestamp) and v.tz is not None for v in values[:1])):
        try:  # pyfolio hands over arrays of tz-aware Timestamps too
            values = pd.DatetimeIndex(values)
        except (ValueError, TypeError):
            return values
    if isinstance(values, (pd.DatetimeIndex, pd.arrays.DatetimeArray)) and values.tz is not None:
        return values.tz_convert("UTC").tz_localize(None).to_numpy()
    return values


@contextlib.contextmanager
def _naive_utc_date_conversion() -> Iterator[None]:
    """Feed pandas' date converter naive UTC dates (:func:`naive_utc_dates`) while pyfolio plots:
    the tear sheets' dates are UTC-aware and matplotlib would convert them element by element
    (about a sixth of a tear sheet's CPU time); the plotted numbers are the same. Restored
    afterwards; not thread-safe."""
    from pandas.plotting._matplotlib.converter import DatetimeConverter

    original = DatetimeConverter.__dict__["_convert_1d"]
    convert = original.__func__

    def convert_1d(values, unit, axis):  # noqa: ANN001, ANN202
        return convert(naive_utc_dates(values), unit, axis)

    DatetimeConverter._convert_1d = staticmethod(convert_1d)
    try:
        yield
    finally:
        DatetimeConverter._convert_1d = original


def render_tearsheet(
    returns: pd.Series,
    positions: pd.DataFrame,
    transactions: pd.DataFrame | None,
    out_path: str | os.PathLike[str],
    *,
    strategy: str | None = None,
    dpi: int = DEFAULT_DPI,
    fast_axes: bool = False,
    benchmark_rets: pd.Series | None = None,
    interesting_times: bool = True,
) -> Path:
    """Render one strategy's full tear sheet to a single tall PNG, in this process.

    pyfolio draws its sheets with ``matplotlib.pyplot`` in whatever backend is active (workers of
    :func:`write_tearsheets` use Agg); the header and transactions sheets are plain
    :class:`~matplotlib.figure.Figure` objects. Python-level stdout/stderr and warnings are silenced while
    it runs; figures are closed afterwards.

    Parameters
    ----------
    returns : pandas.Series, shape (n_days,)
        Daily simple returns, tz-aware (UTC) DatetimeIndex, no NaN.
    positions : pandas.DataFrame, shape (n_days, n_assets + 1)
        Money value per asset and ``cash`` on the returns' days.
    transactions : pandas.DataFrame or None
        ``symbol, amount, price`` per fill, UTC DatetimeIndex. None skips the transactions part.
    out_path : str or PathLike
        PNG to write (atomically).
    strategy : str, optional
        Title; defaults to ``returns.name``.
    dpi : int, default 72
        Resolution (pyfolio's figures are 14 in wide: 1008 px at 72 dpi).
    fast_axes : bool, default False
        Skip pandas' shared-axis label pruning (about 2x faster; patches a pandas internal during
        the call, so not thread-safe); the workers of :func:`write_tearsheets` use it.
    benchmark_rets : pandas.Series, optional
        Daily returns of the benchmark strategy (named), reindexed to ``returns`` (days it has
        no return count as 0).
    interesting_times : bool, default True
        Include pyfolio's stress-period sheet (with "Covid" cut to the crash).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    TearsheetError
        pyfolio failed; the message names the strategy and the section.
    """
    import matplotlib.pyplot as plt  # pyfolio draws its sheets with pyplot: closed after each

    name = strategy or str(returns.name)
    parts: list[np.ndarray] = []
    section = "header"
    with (
        _quiet(),
        pd.plotting.plot_params.use("x_compat", True),
        _skip_pandas_shared_axes() if fast_axes else contextlib.nullcontext(),
        _fast_pyfolio() if returns.notna().all() else contextlib.nullcontext(),
    ):
        # x_compat: pyfolio mixes pandas and matplotlib dates on shared axes; pandas' period axis
        # (business-day indexes) would put matplotlib's fills (e.g. the exposure plot) off-screen.
        bench = _aligned_benchmark(benchmark_rets, returns)
        try:
            for part, draw in _sheet_sections(name, returns, positions, transactions, bench,
                                              interesting_times=interesting_times):
                section = part  # named in the error
                fig = draw()
                if fig is not None:
                    parts.append(_figure_rgb(fig, dpi))
                    plt.close(fig)
        except Exception as exc:  # pyfolio raises anything from KeyError to ValueError
            raise TearsheetError(
                f"tear sheet of {name!r} failed in the {section} section: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            plt.close("all")
        png = _stack_png(parts)
    return atomic_write_bytes(out_path, png)


def _aligned_benchmark(benchmark_rets: pd.Series | None, returns: pd.Series) -> pd.Series | None:
    """The benchmark's returns on the strategy's days (0 where it has none), keeping its name."""
    if benchmark_rets is None:
        return None
    bench = benchmark_rets.reindex(returns.index).fillna(0.0)
    bench.name = benchmark_rets.name
    return bench


def _sheet_sections(
    name: str,
    returns: pd.Series,
    positions: pd.DataFrame,
    transactions: pd.DataFrame | None,
    bench: pd.Series | None,
    *,
    interesting_times: bool,
) -> list[tuple[str, Callable[[], object]]]:
    """The sections of a tear sheet in page order: (name, draw() -> Figure or None)."""
    import pyfolio as pf

    def header() -> object:
        return _header_figure(name, returns, positions, transactions, bench)

    def returns_sheet() -> object:
        fig = pf.create_returns_tear_sheet(returns, positions=positions, transactions=transactions,
                                           benchmark_rets=bench, return_fig=True)
        with pf.plotting.plotting_context(), pf.plotting.axes_style():
            _tidy_axes(fig, returns)
        return fig

    def stress_sheet() -> object:
        fig = pf.create_interesting_times_tear_sheet(returns, benchmark_rets=bench,
                                                     periods=_stress_periods(), return_fig=True)
        if fig is not None:
            _tidy_axes(fig, returns, narrow_dates=True)
        return fig

    def positions_sheet() -> object:
        fig = pf.create_position_tear_sheet(returns, positions, transactions=transactions,
                                            estimate_intraday=False, return_fig=True)
        _tidy_axes(fig, returns, assets=[c for c in positions.columns if c != "cash"])
        return fig

    def transactions_sheet() -> object:
        fig = _txn_figure(returns, positions, transactions)
        _tidy_axes(fig, returns)
        return fig

    sections: list[tuple[str, Callable[[], object]]] = [("header", header), ("returns", returns_sheet)]
    if interesting_times:
        sections.append(("interesting times", stress_sheet))
    sections.append(("positions", positions_sheet))
    if transactions is not None:
        sections.append(("transactions", transactions_sheet))
    return sections


# --------------------------------------------------------------------------- worker processes
#
# Workers are plain subprocesses (``python -m runners.report.tearsheets --worker``), not a
# multiprocessing pool: a spawned pool re-imports the caller's main module, which breaks any
# script without an ``if __name__ == "__main__"`` guard, and fork is unsafe in a process that
# runs threads (Dask, GUI loops). Each worker imports pyfolio once and then serves tasks, one
# JSON line in, one JSON line out, over pipes; a feeder thread per worker hands out the next
# strategy as soon as that worker is free.


def _worker_main() -> int:
    """Worker loop: read one JSON task per stdin line, answer one JSON line per task."""
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pyfolio's prints and IPython reprs go nowhere
    os.close(devnull)
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg", force=True)
    with _quiet():
        import pyfolio  # noqa: F401
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        t0 = time.perf_counter()
        try:
            rets, pos, txns = load_tearsheet_inputs(task["run_dir"], task["strategy"])
            bench = None
            if task.get("benchmark") and task["benchmark"] != task["strategy"]:
                bench = load_tearsheet_inputs(task["run_dir"], task["benchmark"], returns_only=True)[0]
            render_tearsheet(rets, pos, txns, task["out_path"], strategy=task["strategy"],
                             dpi=int(task["dpi"]), fast_axes=True, benchmark_rets=bench,
                             interesting_times=bool(task.get("interesting_times", True)))
            answer = {"ok": True, "seconds": time.perf_counter() - t0}
        except DataError as exc:
            answer = {"ok": False, "kind": "DataError", "message": str(exc)}
        except Exception as exc:  # reported to the parent, which raises it typed
            answer = {"ok": False, "kind": "TearsheetError",
                      "message": str(exc) if isinstance(exc, TearsheetError)
                      else f"tear sheet of {task['strategy']!r} failed: {type(exc).__name__}: {exc}"}
        answer["strategy"] = task["strategy"]
        answer["out_path"] = task["out_path"]
        results.write(json.dumps(answer) + "\n")
        results.flush()
    return 0


def _start_worker(err_file: IO[bytes]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    project_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.Popen(
        [sys.executable, "-m", "runners.report.tearsheets", "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err_file,
        text=True,
        encoding="utf-8",
        env=env,
    )


def _feed(
    proc: subprocess.Popen[str], err_file: IO[bytes], tasks: queue.Queue[dict], answers: list[dict],
    on_done: Callable[[str], None] | None = None,
) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    try:
        while True:
            try:
                task = tasks.get_nowait()
            except queue.Empty:
                break
            try:
                proc.stdin.write(json.dumps(task) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                proc.wait()
                err_file.seek(0)
                tail = err_file.read().decode("utf-8", "replace").strip().splitlines()
                last = tail[-1] if tail else f"exit code {proc.returncode}"
                answers.append({"ok": False, "kind": "TearsheetError", "strategy": task["strategy"],
                                "message": f"tear sheet worker died rendering {task['strategy']!r}: {last}"})
                return
            answers.append(json.loads(line))
            if on_done is not None:
                on_done(task["strategy"])
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kill_worker(proc: subprocess.Popen[str]) -> None:
    """Stop a worker that has no task (it may still be importing pyfolio) and close its pipes."""
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


class TearsheetWorkers:
    """Tear sheet worker processes started ahead of :func:`write_tearsheets`.

    Each worker imports pyfolio (about 1.5 s of CPU) as soon as it starts; starting them while
    the caller still reads its inputs lets those imports run meanwhile. Hand the object to one
    call of :func:`write_tearsheets` (``workers=``), which feeds and then shuts them down; call
    :meth:`close` (or use it as a context manager) to stop workers that were never used.

    Parameters
    ----------
    n_jobs : int
        Worker processes to start, >= 1.

    Raises
    ------
    ValueError
        ``n_jobs`` < 1.
    """

    def __init__(self, n_jobs: int) -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self._procs: list[tuple[subprocess.Popen[str], IO[bytes]]] = []
        try:
            for _ in range(n_jobs):
                err_file = tempfile.TemporaryFile()
                try:
                    self._procs.append((_start_worker(err_file), err_file))
                except BaseException:
                    err_file.close()
                    raise
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._procs)

    def take(self) -> list[tuple[subprocess.Popen[str], IO[bytes]]]:
        """Hand over the workers (and their stderr files) to the caller, once."""
        procs, self._procs = self._procs, []
        return procs

    def close(self) -> None:
        """Stop the workers not handed over (killed: they have no task)."""
        for proc, err_file in self.take():
            _kill_worker(proc)
            err_file.close()

    def __enter__(self) -> TearsheetWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_tearsheets(
    run_dir: str | os.PathLike[str],
    strategies: Sequence[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    n_jobs: int = 2,
    dpi: int = DEFAULT_DPI,
    timings: dict[str, float] | None = None,
    benchmark: str | None = None,
    interesting_times: bool = True,
    on_done: Callable[[str], None] | None = None,
    workers: TearsheetWorkers | None = None,
) -> dict[str, Path]:
    """Render the tear sheet of every strategy of a run, in parallel worker processes.

    Parameters
    ----------
    run_dir : str or PathLike
        The run directory (reads ``returns.csv``, ``positions/``, ``transactions/``).
    strategies : sequence of str, optional
        Which strategies; default every column of ``returns.csv``.
    out_dir : str or PathLike, optional
        Output folder; default ``<run_dir>/tearsheets``.
    n_jobs : int, default 2
        Worker processes. Each imports pyfolio once (about 2 s) and then renders strategies as
        they come (1.5-3 s each).
    dpi : int, default 72
        PNG resolution.
    timings : dict, optional
        If given, filled with the seconds each strategy took in its worker (read + render +
        write).
    benchmark : str, optional
        Strategy (column of ``returns.csv``) every other strategy's sheet is compared with.
    interesting_times : bool, default True
        Include pyfolio's stress-period sheet (pass False for a synthetic market).
    on_done : callable, optional
        Called with the strategy's name when its worker answers (rendered or failed), from a
        feeder thread (e.g. a progress bar's update).
    workers : TearsheetWorkers, optional
        Workers started earlier (their pyfolio import already under way); used instead of
        starting ``n_jobs`` new ones, and shut down on return (the ones beyond the number of
        strategies at once).

    Returns
    -------
    dict of str to pathlib.Path
        Strategy -> ``<out_dir>/<strategy>.png``, in the order of ``strategies``.

    Raises
    ------
    DataError
        Missing or malformed inputs.
    TearsheetError
        pyfolio failed for a strategy, or a worker died (raised after every worker finished;
        the other strategies' tear sheets are written).
    """
    with contextlib.ExitStack() as stack:
        if workers is not None:
            stack.callback(workers.close)
        return _write_tearsheets(run_dir, strategies, out_dir=out_dir, n_jobs=n_jobs, dpi=dpi,
                                 timings=timings, benchmark=benchmark,
                                 interesting_times=interesting_times, on_done=on_done, workers=workers)


def _returns_columns(root: Path) -> list[str]:
    """Strategy columns of the run's ``returns.csv``."""
    head: pd.DataFrame = read_dated_csv(root / RETURNS_CSV, what="returns: ", index_date=False)  # type: ignore[assignment]
    return [c for c in head.columns if c != "date"]


def _check_tearsheet_args(root: Path, strategies: list[str], n_jobs: int, benchmark: str | None) -> None:
    """Refuse ``n_jobs < 1``, strategy names that are no file names and an unknown benchmark."""
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    for s in strategies:
        if not s or any(ch in s for ch in "/\\") or s in {".", ".."}:
            raise DataError(f"strategy name {s!r} cannot be used as a file name")
    if benchmark is not None and benchmark not in _returns_columns(root):
        raise DataError(f"benchmark {benchmark!r} is not a column of {root / RETURNS_CSV}")


def _run_workers(
    tasks: queue.Queue[dict],
    n_tasks: int,
    n_jobs: int,
    workers: TearsheetWorkers | None,
    on_done: Callable[[str], None] | None,
) -> list[dict]:
    """Feed ``tasks`` to the pre-started ``workers`` (or ``min(n_jobs, n_tasks)`` new ones; extra
    pre-started workers are killed) until done; return the workers' answers."""
    answers: list[dict] = []
    with contextlib.ExitStack() as stack:
        threads = []
        started = workers.take() if workers is not None else []
        for proc, err_file in started[n_tasks:]:  # more workers than strategies
            stack.enter_context(err_file)
            _kill_worker(proc)
        started = started[:n_tasks]
        for i in range(len(started) if started else min(n_jobs, n_tasks)):
            if started:
                proc, err_file = started[i]
                stack.enter_context(err_file)
            else:
                err_file = stack.enter_context(tempfile.TemporaryFile())
                proc = _start_worker(err_file)
            th = threading.Thread(target=_feed, args=(proc, err_file, tasks, answers, on_done),
                                  daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
    return answers


def _write_tearsheets(
    run_dir: str | os.PathLike[str],
    strategies: Sequence[str] | None,
    *,
    out_dir: str | os.PathLike[str] | None,
    n_jobs: int,
    dpi: int,
    timings: dict[str, float] | None,
    benchmark: str | None,
    interesting_times: bool,
    on_done: Callable[[str], None] | None,
    workers: TearsheetWorkers | None,
) -> dict[str, Path]:
    root = Path(run_dir)
    strategies = list(_returns_columns(root) if strategies is None else strategies)
    if not strategies:
        return {}
    _check_tearsheet_args(root, strategies, n_jobs, benchmark)
    target = Path(out_dir) if out_dir is not None else root / "tearsheets"
    target.mkdir(parents=True, exist_ok=True)

    tasks: queue.Queue[dict] = queue.Queue()
    for s in strategies:
        tasks.put({"run_dir": str(root.resolve()), "strategy": s,
                   "out_path": str((target / f"{s}.png").resolve()), "dpi": int(dpi),
                   "benchmark": benchmark, "interesting_times": bool(interesting_times)})
    answers = _run_workers(tasks, len(strategies), n_jobs, workers, on_done)
    by_name = {a["strategy"]: a for a in answers}
    for s in strategies:
        ans = by_name.get(s)
        if ans is None:
            raise TearsheetError(f"tear sheet of {s!r} was not rendered (every worker died)")
        if not ans["ok"]:
            raise (DataError if ans["kind"] == "DataError" else TearsheetError)(ans["message"])
    if timings is not None:
        timings.update({s: float(by_name[s]["seconds"]) for s in strategies})
    return {s: target / f"{s}.png" for s in strategies}


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        raise SystemExit(_worker_main())
    raise SystemExit("usage: python -m runners.report.tearsheets --worker (internal; use write_tearsheets)")
