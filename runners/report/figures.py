"""Report figures (PNG) of a comparison run, drawn headless.

Every function takes plain DataFrames read from the run directory (docs/outputs.md) and returns a
:class:`matplotlib.figure.Figure` built on an Agg canvas directly (no ``pyplot``, no global state,
no backend switch in the caller's process); :func:`save_figure` writes it atomically.

Figures (file names used by :mod:`runners.report` under ``figures/``):

=============================  ====================================================================
``equity_drawdown.png``        Growth of 1 per strategy on a log scale (top) and drawdown from the
                               running peak in % (bottom).
``budgets.png``                Dynamic model: stacked target budgets b* (top) and smoothed budgets
                               b(t) in force (bottom), the regime in two bands above each stack
                               (phase; volatility state).
``risk_contributions.png``     Stacked relative risk contributions per strategy (small multiples).
``weights.png``                Stacked executed weights per strategy, cash as the grey remainder.
``turnover_per_year.png``      One-way turnover per calendar year and strategy (initial investment
                               excluded); partial years marked.
``extreme_months.png``         Average monthly return in extreme months (equity down > 5 %) per
                               strategy: the paper's Figure 4.
``regimes.png``                Regime timeline (top) and the Markov transition matrix (heatmap).
=============================  ====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    Formatter,
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from drb.errors import DataError
from drb.io import atomic_write_bytes

__all__ = [
    "DYNAMIC",
    "PHASES",
    "PHASE_COLORS",
    "VOL_COLORS",
    "SOURCE_TEXT",
    "VOL_STATES",
    "StepPercentFormatter",
    "nice_log_ticks",
    "asset_colors",
    "ASSET_PALETTE",
    "strategy_colors",
    "regime_color",
    "regime_labels",
    "WARMUP",
    "turnover_by_year",
    "plot_equity_drawdowns",
    "plot_budgets",
    "plot_risk_contributions",
    "plot_weights",
    "plot_turnover_per_year",
    "plot_extreme_months",
    "plot_regimes",
    "save_figure",
    "encode_png",
]

DYNAMIC = "DynamicRiskBudget"
PHASES: tuple[str, ...] = ("recovery", "expansion", "deceleration", "recession")
VOL_STATES: tuple[str, ...] = ("low", "medium", "high")

_ASSET_BASE = {
    "equity": "#1f77b4",
    "bond": "#2ca02c",
    "commodity": "#ff7f0e",
    "real_estate": "#9467bd",
}
# one colour family per phase, lighter -> darker for low -> high volatility
_PHASE_CMAP = {"recovery": "Greens", "expansion": "Blues", "deceleration": "Oranges", "recession": "Reds"}
_DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = _DPI) -> Path:
    """Write ``fig`` as PNG atomically (white background).

    One draw on an Agg canvas (its layout engine runs inside that draw) and the pixels encoded
    with :func:`encode_png`: ``Figure.savefig`` draws a figure with a layout engine twice (once
    only to lay it out) and Pillow's PNG encoder tries five row filters per row; the pixels are
    the same.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or PathLike
        Target ``.png``.
    dpi : int, default 110

    Returns
    -------
    pathlib.Path
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    dpi0, face0 = fig.get_dpi(), fig.get_facecolor()
    fig.set_dpi(dpi)
    fig.set_facecolor("white")
    try:
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        alpha = rgba[..., 3:].astype(np.uint16)
        if np.all(alpha == 255):
            rgb = np.ascontiguousarray(rgba[..., :3])
        else:  # composite translucent pixels on white, as a viewer would
            rgb = ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    finally:
        fig.set_dpi(dpi0)
        fig.set_facecolor(face0)
    return atomic_write_bytes(path, encode_png(rgb))


def encode_png(rgb: np.ndarray, level: int = 3) -> bytes:
    """Encode 8-bit RGB pixels as a PNG (no row filter, zlib ``level``).

    Pillow tries its five row filters on every row before compressing, which doubles the time
    of a tall tear sheet; report figures and tear sheets are mostly flat colour, which
    compresses as well without a filter (same size within a few percent at the same zlib level).

    Parameters
    ----------
    rgb : numpy.ndarray, shape (height, width, 3), dtype uint8
        Pixels, row-major from the top left.
    level : int, default 3
        zlib compression level, 0-9.

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ValueError
        ``rgb`` is not a non-empty (height, width, 3) uint8 array.
    """
    import struct
    import zlib

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"rgb must be a non-empty (height, width, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 (none) per row
    rows[:, 1:] = rgb.reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))


#: Twenty asset colours, picked greedily for the largest smallest CIE-Lab distance (every pair
#: at least 27 apart), none grey (cash is grey) or black (the dynamic model's lines); the first
#: four are the default asset classes' colours.
ASSET_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#654522", "#dcd300", "#e6194b", "#f032e6",
    "#f7b6d2", "#469990", "#dbdb8d", "#808000", "#f99379", "#b3446c", "#800000", "#42d4f4",
    "#911eb4", "#008856", "#e377c2", "#8db600",
)


def asset_colors(assets: Sequence[str]) -> dict[str, str]:
    """The one asset palette of every figure: a colour per asset, distinct up to 20 assets.

    The default asset classes (equity, bond, commodity, real_estate) keep fixed colours; any
    other asset takes the next colour of :data:`ASSET_PALETTE` not used by those, in the order
    given (past 20 assets the palette repeats). Pass the run's full asset list and hand the
    mapping to every figure, so that an asset has the same colour everywhere.

    Parameters
    ----------
    assets : sequence of str
        Asset names, in the run's order.

    Returns
    -------
    dict of str to str
        Asset -> hex colour.
    """
    fixed = {a: _ASSET_BASE[a] for a in assets if a in _ASSET_BASE}
    free = [c for c in ASSET_PALETTE if c not in set(fixed.values())]
    out: dict[str, str] = {}
    k = 0
    for a in dict.fromkeys(assets):
        if a in fixed:
            out[a] = fixed[a]
        else:
            out[a] = free[k % len(free)]
            k += 1
    return out


def _palette(assets: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    """``colors`` for the assets it names, :func:`asset_colors` for the rest (after them)."""
    given = dict(colors or {})
    rest = asset_colors([*given, *(a for a in assets if a not in given)])
    return {a: given.get(a, rest[a]) for a in assets}


def strategy_colors(strategies: Sequence[str]) -> dict[str, str]:
    """A colour per strategy; the dynamic model is always black so it stands out."""
    palette = list(mcolors.TABLEAU_COLORS.values())
    out: dict[str, str] = {}
    k = 0
    for s in strategies:
        if s == DYNAMIC:
            out[s] = "#000000"
        else:
            out[s] = palette[k % len(palette)]
            k += 1
    return out


#: Plain words for the ``cycle_source`` / ``vol_source`` codes of ``regimes.csv``.
SOURCE_TEXT = {
    "macro": "macro leading indicators",
    "price_proxy": "price-based proxy (no macro data)",
    "vol_index": "implied-volatility index",
    "egarch_equity": "equity EGARCH volatility (no volatility index)",
}

#: Label of the days before the first regime is known (estimator warm-up): NaN in the files.
WARMUP = "warm-up (no regime yet)"


def regime_labels(regimes: pd.Series) -> list[str]:
    """Regime labels as strings, missing values (warm-up) as :data:`WARMUP`.

    (``astype(str)`` is not enough: with pandas' string dtype missing values stay missing, and
    NaN != NaN would split the warm-up into one spell per day.)
    """
    return [WARMUP if pd.isna(v) else str(v) for v in regimes.tolist()]


def regime_color(regime: str) -> tuple[float, float, float, float]:
    """Colour of a ``"<phase>/<vol_state>"`` regime: hue by phase, darker with higher volatility;
    light grey for the warm-up, mid grey for anything else."""
    if regime == WARMUP:
        return (0.85, 0.85, 0.85, 1.0)
    phase, _, vol = str(regime).partition("/")
    if phase not in _PHASE_CMAP:
        return (0.6, 0.6, 0.6, 1.0)
    level = {"low": 0.35, "medium": 0.6, "high": 0.85}.get(vol, 0.6)
    return tuple(colormaps[_PHASE_CMAP[phase]](level))  # type: ignore[return-value]


def _regime_order(regimes: Sequence[str]) -> list[str]:
    canonical = [f"{p}/{v}" for p in PHASES for v in VOL_STATES]
    seen = list(dict.fromkeys(regimes))
    rest = [r for r in seen if r not in canonical and r != WARMUP]
    return [r for r in canonical if r in seen] + rest + ([WARMUP] if WARMUP in seen else [])


def _spells(dates: pd.DatetimeIndex, labels: Sequence[str]) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """Runs of equal labels as (start, end, label); end is the next spell's start (or last date)."""
    labels = list(labels)
    out = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            end = dates[i] if i < len(labels) else dates[-1]
            out.append((dates[start], end, labels[start]))
            start = i
    return out


class StepPercentFormatter(Formatter):
    """Percent tick labels with as many decimals as the tick *spacing* needs.

    ``PercentFormatter(decimals=0)`` prints a -2.5 % tick as "-2%" (and -7.5 % as "-7%"): labels
    that are wrong. Here 1 %-or-wider steps get no decimals, 0.5 % one, 0.05 % two.

    Parameters
    ----------
    scale : float, default 100
        Multiplier from the data to percent: 100 for decimals (0.05 = 5 %), 1 for data already
        in percent.
    """

    def __init__(self, scale: float = 100.0) -> None:
        self.scale = float(scale)
        self._tick_decimals: int | None = None

    def _decimals(self, locs: np.ndarray) -> int:
        pct = self.scale * locs
        span = float(np.max(np.abs(pct))) if pct.size else 0.0
        tol = 1e-6 * max(span, 1e-12)
        # the fewest decimals that print every tick of the axis exactly (2.5 % needs one)
        return next((d for d in range(6) if np.all(np.abs(np.round(pct, d) - pct) <= tol)), 6)

    def set_locs(self, locs):  # noqa: ANN001 - matplotlib's signature
        """Called by ``format_ticks`` with every tick before the labels: decimals found once,
        not once per label (that made drawing an axis quadratic in its ticks)."""
        super().set_locs(locs)
        self._tick_decimals = self._decimals(np.asarray(locs, dtype=float))

    def __call__(self, x, pos=None):  # noqa: ANN001 - matplotlib's signature
        if pos is not None and self._tick_decimals is not None:
            decimals = self._tick_decimals  # a tick label, right after set_locs
        else:
            locs = np.asarray(self.axis.get_majorticklocs(), dtype=float) if self.axis is not None else []
            decimals = self._decimals(locs if len(locs) else np.array([float(x)]))
        text = f"{self.scale * x:.{decimals}f}%"
        if text.startswith("-") and not any(ch in "123456789" for ch in text):
            text = text[1:]  # no "-0%"
        return text


def _pct_axis(ax, *, nice: bool = False) -> None:
    """Percent labels on the y axis (decimals from the tick step); ``nice`` also picks round
    tick steps (1, 2, 5 x 10^k)."""
    if nice:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(StepPercentFormatter())


def _need(frame: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {missing}")


# ----------------------------------------------------------------------------- equity curves


def nice_log_ticks(ax) -> None:
    """Readable ticks on a log-scale y axis of growth values (1.0 = start).

    A narrow log range gets one or no decade tick (and matplotlib labels the minor ticks
    "1.3 x 10^0"): put round linear values on it instead, plain numbers, no minor labels.
    """
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 20:
        ticks = MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi and t > 0]))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_equity_drawdowns(returns: pd.DataFrame) -> Figure:
    """Growth of 1 (log scale) and drawdowns of every strategy.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (n_days, n_strategies)
        Daily simple returns, DatetimeIndex; each strategy starts at its first non-NaN day.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if returns.empty or returns.shape[1] == 0:
        raise DataError("returns: nothing to plot")
    colors = strategy_colors(list(returns.columns))
    fig = _new_figure(12, 8)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for name in returns.columns:
        r = returns[name].dropna()
        if r.empty:
            continue
        wealth = (1.0 + r).cumprod()
        # start the curve at 1 on the day before the first return
        wealth = pd.concat([pd.Series([1.0], index=[r.index[0] - pd.Timedelta(days=1)]), wealth])
        dd = wealth / wealth.cummax() - 1.0
        lw = 2.2 if name == DYNAMIC else 1.3
        z = 3 if name == DYNAMIC else 2  # the dynamic model is drawn over the baselines
        final = wealth.iloc[-1]
        ax1.plot(wealth.index, wealth.to_numpy(), color=colors[name], lw=lw, zorder=z,
                 label=f"{name} ({final - 1:+.1%})")
        ax2.plot(dd.index, dd.to_numpy(), color=colors[name], lw=lw, zorder=z, label=name)
    ax1.set_yscale("log")
    nice_log_ticks(ax1)
    ax1.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax1.set_ylabel("value of 1 invested (log scale)")
    ax1.set_title("Equity curves after costs (legend: total return)")
    ax1.legend(loc="upper left", fontsize=9, ncols=2 if returns.shape[1] > 5 else 1)
    ax1.grid(True, which="major", alpha=0.3)
    ax2.set_ylabel("drawdown from running peak")
    _pct_axis(ax2, nice=True)
    ax2.set_title("Drawdowns")
    ax2.grid(True, alpha=0.3)
    ax2.set_xlabel("date")
    return fig


# ----------------------------------------------------------------------------- budgets


#: Colour of each phase in the budgets figure's phase band, and of each volatility state in its
#: volatility band (the regimes figure keeps one colour per (phase, state) cell).
PHASE_COLORS = {p: mcolors.to_hex(colormaps[c](0.55)) for p, c in _PHASE_CMAP.items()}
VOL_COLORS = {"low": "#dcdcdc", "medium": "#9a9a9a", "high": "#404040"}
_WARMUP_BAND = "#f4f4f4"


def _regime_bands(ax, dates: pd.DatetimeIndex, regimes: Sequence[str], *, top: float) -> None:
    """Two bands above the 100 % stack: the phase (colour per phase) and the volatility state
    (light to dark grey), one spell per run of equal values; warm-up days are near-white."""
    phases = [WARMUP if r == WARMUP else str(r).partition("/")[0] for r in regimes]
    vols = [WARMUP if r == WARMUP else str(r).partition("/")[2] for r in regimes]
    gap = 0.008
    mid = 1.0 + gap + (top - 1.0 - gap) / 2
    for labels, (y0, y1), palette in ((phases, (mid, top), PHASE_COLORS),
                                      (vols, (1.0 + gap, mid), VOL_COLORS)):
        for start, end, lab in _spells(dates, labels):
            col = _WARMUP_BAND if lab == WARMUP else palette.get(lab, "#bbbbbb")
            ax.fill_between([start, end], y0, y1, color=col, lw=0, zorder=3)
    tr = ax.get_yaxis_transform()
    for y, text in (((mid + top) / 2, "phase"), ((1.0 + gap + mid) / 2, "volatility")):
        ax.text(-0.005, y, text, transform=tr, ha="right", va="center", fontsize=7, color="#333333")


def plot_budgets(
    budgets: pd.DataFrame, assets: Sequence[str], *, colors: Mapping[str, str] | None = None
) -> Figure:
    """Stacked target and smoothed risk budgets of the dynamic model, the regime in two bands
    on top of each stack (phase; volatility state).

    A stack of budgets fills 0-100 %, so regime shading *behind* it would not be seen: the regime
    is drawn in two bands just above the stack, over the same dates.

    Parameters
    ----------
    budgets : pandas.DataFrame
        ``budgets.csv`` with a DatetimeIndex: ``regime``, ``target_<asset>``, ``smoothed_<asset>``.
    assets : sequence of str
    colors : mapping of str to str, optional
        Asset -> colour (default :func:`asset_colors` of ``assets``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need(budgets, ["regime", *(f"target_{a}" for a in assets), *(f"smoothed_{a}" for a in assets)], "budgets")
    colors = _palette(assets, colors)
    dates = pd.DatetimeIndex(budgets.index)
    regimes = regime_labels(budgets["regime"])
    fig = _new_figure(12, 8.5)
    axes = fig.subplots(2, 1, sharex=True)
    top = 1.10
    for ax, kind, title in (
        (axes[0], "target", "Target risk budgets b* (regime budget matrix + tactical tilts)"),
        (axes[1], "smoothed", "Smoothed risk budgets b(t) in force (updated at each rebalance)"),
    ):
        values = [budgets[f"{kind}_{a}"].to_numpy(dtype=float) for a in assets]
        ax.stackplot(dates, values, labels=list(assets), colors=[colors[a] for a in assets],
                     alpha=0.9, lw=0, zorder=2)
        _regime_bands(ax, dates, regimes, top=top)
        ax.set_ylim(0, top)
        ax.set_yticks(np.linspace(0, 1, 6))
        _pct_axis(ax)
        ax.set_ylabel("share of portfolio risk")
        ax.set_title(title)
        ax.margins(x=0)
    seen = set(regimes)
    phases_seen = [p for p in PHASES if any(r.startswith(p + "/") for r in seen)]
    vols_seen = [v for v in VOL_STATES if any(r.endswith("/" + v) for r in seen)]
    # one legend (a second one added with add_artist would be ignored by the layout and cut):
    # invisible handles carry the section headers
    def header(text: str) -> Patch:
        return Patch(facecolor="none", edgecolor="none", label=text)

    regime_handles = [header("phase (upper band)")]
    regime_handles += [Patch(color=PHASE_COLORS[p], label=p) for p in phases_seen]
    if WARMUP in seen:
        regime_handles.append(Patch(facecolor=_WARMUP_BAND, edgecolor="#bbbbbb", label="warm-up (no regime)"))
    regime_handles += [header(""), header("volatility (lower band)")]
    regime_handles += [Patch(color=VOL_COLORS[v], label=v) for v in vols_seen]
    asset_handles = [Patch(color=colors[a], alpha=0.9, label=a) for a in assets]
    axes[0].legend(handles=asset_handles, title="asset", loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), fontsize=9)
    leg = axes[1].legend(handles=regime_handles, title="regime", loc="upper left",
                         bbox_to_anchor=(1.01, 1.0), fontsize=8)
    for text in leg.get_texts():
        if text.get_text().endswith("band)"):
            text.set_fontweight("bold")
    axes[1].set_xlabel("date")
    fig.suptitle("Dynamic risk budgets over time, with the regime (phase, volatility state) on top", fontsize=13)
    return fig


# ----------------------------------------------------------------------------- per-strategy stacks


def _small_multiples(
    frames: Mapping[str, pd.DataFrame], *, ylabel: str, title: str, cash_remainder: bool,
    overlay: tuple[str, pd.DataFrame, str] | None = None, colors: Mapping[str, str] | None = None,
) -> Figure:
    names = [n for n, f in frames.items() if f is not None and not f.empty]
    if not names:
        raise DataError(f"{title}: no strategy has data")
    assets: list[str] = []
    for n in names:
        for c in frames[n].columns:
            if c not in assets:
                assets.append(c)
    colors = _palette(assets, colors)
    ncols = 1 if len(names) == 1 else 2
    nrows = int(np.ceil(len(names) / ncols))
    fig = _new_figure(12, 2.9 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        f = frames[name].reindex(columns=assets).fillna(0.0)
        vals = [f[a].to_numpy(dtype=float) for a in assets]
        labels = list(assets)
        cols = [colors[a] for a in assets]
        if cash_remainder:
            vals.append(np.clip(1.0 - f.sum(axis=1).to_numpy(), 0.0, None))
            labels.append("cash")
            cols.append("#bbbbbb")
        ax.stackplot(f.index, vals, labels=labels, colors=cols, lw=0, alpha=0.9)
        lo = min(0.0, float(np.min(np.cumsum(vals, axis=0))))
        ax.set_ylim(lo, max(1.0, float(np.max(np.sum(vals, axis=0)))))
        ax.set_title(name, fontsize=11, fontweight="bold" if name == DYNAMIC else "normal")
        if overlay is not None and overlay[0] == name:
            # cumulative boundaries of the target shares, over the stack they should match
            ref = overlay[1].reindex(columns=assets).astype(float)
            ref = ref.loc[(ref.index >= f.index[0]) & (ref.index <= f.index[-1])]
            edges = ref.cumsum(axis=1).iloc[:, :-1]
            lines = [ax.plot(edges.index, edges[a].to_numpy(), color="black", lw=0.9, ls="--",
                             drawstyle="steps-post")[0] for a in edges.columns]
            if lines:
                ax.legend(handles=lines[:1], labels=[overlay[2]], loc="lower left", fontsize=8,
                          framealpha=0.85)
        _pct_axis(ax)
        ax.margins(x=0)
        ax.tick_params(axis="x", labelsize=8, labelbottom=True)
        ax.set_ylabel(ylabel, fontsize=9)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    handles = [Patch(color=colors[a], label=a) for a in assets]
    if cash_remainder:
        handles.append(Patch(color="#bbbbbb", label="cash"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=10)
    fig.suptitle(title, fontsize=13)
    return fig


def plot_risk_contributions(
    risk_contributions: Mapping[str, pd.DataFrame], budgets: pd.DataFrame | None = None,
    *, colors: Mapping[str, str] | None = None,
) -> Figure:
    """Stacked relative risk contributions (sum 1) per strategy, one panel each.

    With ``budgets`` (``budgets.csv``), the dynamic model's panel also shows the smoothed budgets
    b(t) as dashed boundaries: where the stack leaves them, the risk shares drifted from the
    budgets (the rc_deviation trigger watches exactly that).

    Parameters
    ----------
    risk_contributions : mapping of str to pandas.DataFrame
        Strategy -> ``risk_contributions/<strategy>.csv`` (DatetimeIndex, one column per asset).
    budgets : pandas.DataFrame, optional
    colors : mapping of str to str, optional
        Asset -> colour (default :func:`asset_colors` of the assets in the frames).

    Returns
    -------
    matplotlib.figure.Figure
    """
    overlay = None
    if budgets is not None and DYNAMIC in risk_contributions:
        cols = {c[len("smoothed_"):]: c for c in budgets.columns if c.startswith("smoothed_")}
        if cols:
            ref = budgets[list(cols.values())].rename(columns={v: k for k, v in cols.items()})
            ref.index = pd.DatetimeIndex(ref.index)
            overlay = (DYNAMIC, ref, "budgets b(t) in force")
    return _small_multiples(
        risk_contributions,
        ylabel="share of risk",
        title="Relative risk contributions of the end-of-day weights (Euler, sum = 100%)",
        cash_remainder=False,
        overlay=overlay,
        colors=colors,
    )


def plot_weights(
    weights: Mapping[str, pd.DataFrame], *, colors: Mapping[str, str] | None = None
) -> Figure:
    """Stacked executed end-of-day weights per strategy, cash as the grey remainder.

    Parameters
    ----------
    weights : mapping of str to pandas.DataFrame
        Strategy -> ``weights/<strategy>.csv`` (DatetimeIndex, one column per asset).
    colors : mapping of str to str, optional
        Asset -> colour (default :func:`asset_colors` of the assets in the frames).

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _small_multiples(
        weights, ylabel="weight (share of value)", title="Executed portfolio weights",
        cash_remainder=True, colors=colors,
    )


# ----------------------------------------------------------------------------- turnover


def turnover_by_year(
    rebalances: pd.DataFrame, strategies: Sequence[str], *, include_initial: bool = False
) -> pd.DataFrame:
    """Sum of one-way rebalance turnover per calendar year and strategy.

    Parameters
    ----------
    rebalances : pandas.DataFrame
        ``rebalances.csv``: ``date`` (datetime), ``strategy``, ``trigger``, ``turnover``.
    strategies : sequence of str
        Columns of the result (strategies that never rebalanced get 0).
    include_initial : bool, default False
        Count the first investment out of cash.

    Returns
    -------
    pandas.DataFrame
        Index: year (int), columns: strategies, values: decimal turnover (1.0 = 100 %).
    """
    _need(rebalances, ["date", "strategy", "trigger", "turnover"], "rebalances")
    reb = rebalances
    if not include_initial:
        reb = reb[reb["trigger"].astype(str) != "initial"]
    if reb.empty:
        return pd.DataFrame(columns=list(strategies), dtype=float)
    years = pd.DatetimeIndex(reb["date"]).year
    table = reb.groupby([years, reb["strategy"]])["turnover"].sum().unstack("strategy")
    table.index.name = "year"
    return table.reindex(columns=list(strategies)).fillna(0.0)


def plot_turnover_per_year(rebalances: pd.DataFrame, returns: pd.DataFrame) -> Figure:
    """Grouped bars of one-way turnover per calendar year and strategy.

    Parameters
    ----------
    rebalances : pandas.DataFrame
        ``rebalances.csv`` with ``date`` parsed.
    returns : pandas.DataFrame
        Daily returns (for the strategies, their order, and which years are partial).

    Returns
    -------
    matplotlib.figure.Figure
    """
    strategies = list(returns.columns)
    table = turnover_by_year(rebalances, strategies)
    all_years = sorted(set(pd.DatetimeIndex(returns.index).year))
    table = table.reindex(all_years).fillna(0.0)
    days = pd.Series(pd.DatetimeIndex(returns.dropna(how="all").index).year).value_counts()
    full = int(days.max()) if len(days) else 0
    colors = strategy_colors(strategies)
    fig = _new_figure(12, 5.5)
    ax = fig.subplots()
    n = len(strategies)
    width = 0.8 / max(n, 1)
    x = np.arange(len(all_years))
    for k, s in enumerate(strategies):
        ax.bar(x + (k - (n - 1) / 2) * width, table[s].to_numpy(), width=width, color=colors[s],
               label=s, edgecolor="white", lw=0.5)
    labels = []
    for y in all_years:
        d = int(days.get(y, 0))
        labels.append(f"{y}\n({d} days)*" if (len(all_years) > 1 and d < 0.9 * max(full, 250)) else str(y))
    ax.set_xticks(x, labels)
    _pct_axis(ax, nice=True)
    ax.set_ylabel("one-way turnover in the year (sum of 0.5·Σ|Δw|)")
    ax.set_title("Turnover per calendar year (initial investment excluded; * partial year)")
    # outside the axes: inside, it hides the tallest bars
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="strategy")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- extreme months


def plot_extreme_months(
    extreme_returns: pd.Series,
    *,
    n_months: int | None = None,
    counts: pd.Series | None = None,
    threshold: float = -0.05,
    equity_return: float | None = None,
) -> Figure:
    """Average monthly return in extreme months per strategy (the paper's Figure 4).

    Parameters
    ----------
    extreme_returns : pandas.Series
        Strategy -> mean monthly return over the extreme months (decimal; the
        ``extreme_month_return`` column of the metrics table). NaN bars are shown as "n/a".
    n_months : int, optional
        Number of extreme months in the run, for the title.
    counts : pandas.Series, optional
        Strategy -> number of extreme months inside its own span (a strategy that started late
        may miss some), shown under each bar.
    threshold : float, default -0.05
        Equity monthly return below which a month is extreme, for the title.
    equity_return : float, optional
        Average monthly return of the equity asset itself over the same months: drawn as a
        dashed reference line (what the strategies were protecting against).

    Returns
    -------
    matplotlib.figure.Figure
    """
    vals = extreme_returns.astype(float)
    strategies = list(vals.index)
    colors = strategy_colors(strategies)
    fig = _new_figure(max(7.0, 1.1 * len(strategies) + 3), 5.5)
    ax = fig.subplots()
    x = np.arange(len(strategies))
    heights = np.nan_to_num(vals.to_numpy(), nan=0.0)
    bars = ax.bar(x, heights, color=[colors[s] for s in strategies], edgecolor="white")
    for b, v, s in zip(bars, vals.to_numpy(), strategies):
        label = "n/a" if np.isnan(v) else f"{v:+.2%}"
        if counts is not None and s in counts.index:
            label += f"\n(n={int(counts[s])})"
        y = b.get_height()
        ax.annotate(label, (b.get_x() + b.get_width() / 2, y), xytext=(0, -3 if y < 0 else 3),
                    textcoords="offset points", ha="center", va="top" if y < 0 else "bottom",
                    fontsize=9)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(x, strategies, rotation=20 if len(strategies) > 4 else 0, ha="right" if len(strategies) > 4 else "center")
    _pct_axis(ax, nice=True)
    lo = min(0.0, float(np.nanmin(heights)) if len(heights) else 0.0)
    hi = max(0.0, float(np.nanmax(heights)) if len(heights) else 0.0)
    if equity_return is not None and np.isfinite(equity_return):
        ax.axhline(equity_return, color="#555555", lw=1.2, ls="--", zorder=0,
                   label=f"equity asset itself: {equity_return:+.2%}")
        ax.legend(loc="best", fontsize=9)
        lo, hi = min(lo, equity_return), max(hi, equity_return)
    pad = 0.2 * max(hi - lo, 1e-3)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel("average monthly return")
    count = f"{n_months} months" if n_months is not None else "months"
    ax.set_title(f"Average monthly return in extreme months\n({count} in which the equity asset "
                 f"returned less than {threshold:.0%})")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- regimes


def plot_regimes(regimes: pd.DataFrame, transition: pd.DataFrame | None) -> Figure:
    """Regime timeline and the Markov transition matrix as a heatmap.

    Parameters
    ----------
    regimes : pandas.DataFrame
        ``regimes.csv`` with a DatetimeIndex and a ``regime`` column (``"<phase>/<vol_state>"``).
    transition : pandas.DataFrame or None
        ``transition_matrix.csv``: from-regime rows x to-regime columns, rows sum to 1.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need(regimes, ["regime"], "regimes")
    labels = regime_labels(regimes["regime"])
    dates = pd.DatetimeIndex(regimes.index)
    order = [f"{p}/{v}" for p in PHASES for v in VOL_STATES]
    order += [r for r in dict.fromkeys(labels) if r not in order and r != WARMUP]
    if WARMUP in labels:
        order.append(WARMUP)
    fig = _new_figure(12, 13 if transition is not None else 5.5)
    if transition is not None:
        ax1, ax2 = fig.subplots(2, 1, height_ratios=[1, 1.6])
    else:
        ax1, ax2 = fig.subplots(), None
    ypos = {r: i for i, r in enumerate(order)}
    for start, end, reg in _spells(dates, labels):
        ax1.barh(ypos[reg], (end - start).days or 1, left=start, height=0.8, color=regime_color(reg),
                 edgecolor="none")
    ax1.set_yticks(range(len(order)), order, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_ylim(len(order) - 0.5, -0.5)
    ax1.xaxis_date()
    ax1.set_xlim(dates[0], dates[-1])
    ax1.grid(True, axis="x", alpha=0.3)
    n_switch = sum(1 for a, b in zip(labels[:-1], labels[1:]) if a != b and WARMUP not in (a, b))
    spells = [sp for sp in _spells(dates, labels) if sp[2] != WARMUP]
    mean_days = np.mean([(e - s_).days for s_, e, _ in spells]) if spells else float("nan")
    sources = []
    for col, name in (("cycle_source", "cycle"), ("vol_source", "volatility state")):
        if col in regimes.columns:
            vals = [SOURCE_TEXT.get(str(v), str(v)) for v in pd.unique(regimes[col].dropna())]
            if vals:
                sources.append(f"{name} from {', '.join(vals)}")
    ax1.set_title(
        f"Regime timeline (phase / volatility state): {n_switch} transitions, mean spell "
        f"{mean_days:.0f} calendar days" + (f"\n{'; '.join(sources)}" if sources else ""), fontsize=11
    )
    ax1.set_xlabel("date")

    if ax2 is not None and transition is not None:
        tm = transition.astype(float)
        rows = [r for r in order if r in tm.index] + [r for r in tm.index if r not in order]
        cols = [c for c in order if c in tm.columns] + [c for c in tm.columns if c not in order]
        tm = tm.reindex(index=rows, columns=cols)
        observed = set(labels) - {WARMUP}
        im = ax2.imshow(tm.to_numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = tm.iat[i, j]
                if np.isnan(v):
                    continue
                txt = f"{v:.2f}" if v >= 0.005 else "·"
                ax2.text(j, i, txt, ha="center", va="center", fontsize=7,
                         color="black" if v > 0.6 else "white")
        ylabels = [r if r in observed else f"{r} (never seen: uniform)" for r in rows]
        ax2.set_yticks(range(len(rows)), ylabels, fontsize=8)
        ax2.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax2.set_ylabel("from regime")
        ax2.set_xlabel("to regime (next step of the regime sequence)")
        ax2.set_title("Markov transition matrix P(i → j) estimated over the whole run", fontsize=11)
        cb = fig.colorbar(im, ax=ax2, shrink=0.8)
        cb.set_label("transition probability")
    return fig
