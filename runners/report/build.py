"""The comparison report: ``report.md`` and a self-contained ``report.html`` from a run directory.

:func:`build_report` reads only saved outputs (docs/outputs.md) -- it never reruns a backtest -- and
writes, all atomically:

- ``metrics.csv`` / ``metrics.md`` when the run has no ``metrics.csv`` (computed from
  ``returns.csv``, turnover from ``rebalances.csv``, extreme months from the equity closes implied
  by positions and fills); an existing ``metrics.csv`` is the source of truth and is not touched
  (another ``benchmark`` than the run's writes ``tables/metrics_vs_<benchmark>.csv`` / ``.md``);
- ``tables/``: ``per_year_returns``, ``budget_log`` (paper's Table 1 shape, for ``window``) and
  ``triggers`` (trigger log summary), each as ``.csv`` and ``.md``;
- the time-axis risk tables (concentration over years and months, asset split, share by year) from
  the run's ``time_risk.csv``, shown next to the run's ``figures/time_risk.png``;
- ``figures/*.png`` (see :mod:`runners.report.figures`) and ``tearsheets/<strategy>.png``
  (see :mod:`runners.report.tearsheets`);
- ``report.md`` (figures linked by relative path) and ``report.html`` (figures embedded as base64
  PNG; tear sheets linked, or embedded with ``embed_tearsheets=True`` -- they are large).

Figures and tables whose inputs a run does not have (e.g. budgets when the dynamic model was not
run) are left out and the report says so. :func:`report_main` is ``drb report RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DRBError
from drb.io import atomic_write_text
from runners.experiments.time_risk import fold_years, year_layout
from runners.metrics import (
    annualized_turnover,
    compute_metrics,
    extreme_months,
    monthly_returns,
)
from runners.report import figures as F
from runners.report import tables as T
from runners.report.document import Block as _Block
from runners.report.document import html_document as _html
from runners.report.document import markdown_document as _md
from runners.rundir import RunData, load_run

__all__ = [
    "RunData",
    "load_run",
    "implied_prices",
    "run_metrics",
    "build_report",
    "FIGURE_FILES",
]

DYNAMIC = F.DYNAMIC

#: Figure key -> (file name under figures/, caption).
FIGURE_FILES: dict[str, tuple[str, str]] = {
    "equity_drawdown": ("equity_drawdown.png",
                        "Equity curves after costs (value of 1 invested, log scale) and drawdowns "
                        "from the running peak."),
    "extreme_months": ("extreme_months.png",
                       "Average monthly return in extreme months, when the equity asset fell by "
                       "more than 5% (the paper's Figure 4); the dashed line is the equity asset's "
                       "own average over those months."),
    "budgets": ("budgets.png",
                "Dynamic model: target budgets b* and smoothed budgets b(t) in force, stacked; the "
                "regime is drawn in two bands above each stack (phase; volatility state)."),
    "risk_contributions": ("risk_contributions.png",
                           "Relative risk contributions of the end-of-day weights, per strategy; on "
                           "the dynamic model's panel the dashed lines are its budgets b(t)."),
    "weights": ("weights.png", "Executed end-of-day weights per strategy (cash in grey)."),
    "turnover_per_year": ("turnover_per_year.png",
                          "One-way turnover per calendar year (initial investment excluded)."),
    "regimes": ("regimes.png",
                "Regime timeline and the Markov transition matrix estimated over the run."),
    # written by the run (drb compare), not by the report: per-bar contributions are not saved
    "time_risk": ("time_risk.png",
                  "Time-axis risk contributions c_{i,t} = w_{i,t} (Σ_t w_t)_i / 252 of the end-of-day "
                  "weights under the causal EWMA covariance (decay 0.94). Top: ex-ante volatility of "
                  "the next day, annualized, monthly mean (% p.a., log scale; flat = the same risk "
                  "every day, time-axis risk parity). Middle: share of each strategy's total ex-ante "
                  "variance by calendar year (% in the cells); colour = that share divided by the "
                  "year's share of trading days (1 = equal risk per day); row labels: HHI of the "
                  "yearly shares and, in brackets, of equal risk per day. Partial years show their "
                  "trading days, (n d); a first or last year shorter than about a month is folded "
                  "into its neighbour, (+n d of YYYY). Bottom: share by asset over the whole run "
                  "(Euler split, %; negative = hedge)."),
}


def implied_prices(positions: pd.DataFrame, transactions: pd.DataFrame, asset: str) -> pd.Series:
    """End-of-day close of ``asset`` implied by a strategy's positions and fills.

    ``positions[asset]`` is units held times the close; units held are the running sum of the
    fills' signed amounts up to and including the day. Days with (almost) no units give NaN.

    Parameters
    ----------
    positions : pandas.DataFrame
        DatetimeIndex, money value per asset.
    transactions : pandas.DataFrame
        Columns ``date``, ``symbol``, ``amount``.
    asset : str

    Returns
    -------
    pandas.Series
        Close per day (currency per unit), NaN where not held.
    """
    if asset not in positions.columns:
        return pd.Series(np.nan, index=positions.index, dtype=float)
    tx = transactions[transactions["symbol"].astype(str) == asset]
    days = pd.DatetimeIndex(pd.to_datetime(tx["date"])).tz_localize(None).normalize() if len(tx) else pd.DatetimeIndex([])
    per_day = pd.Series(tx["amount"].astype(float).to_numpy(), index=days).groupby(level=0).sum()
    idx = pd.DatetimeIndex(positions.index).normalize()
    units = per_day.reindex(idx.union(per_day.index)).fillna(0.0).cumsum().reindex(idx).to_numpy()
    value = positions[asset].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        px = np.where(np.abs(units) > 1e-9, value / units, np.nan)
    px = np.where(px > 0, px, np.nan)
    return pd.Series(px, index=positions.index, name=asset)


def _is_synthetic(run: RunData) -> bool:
    """True when run.json says the prices are synthetic (their dates are not history, so
    pyfolio's stress periods such as "GFC" or "Covid" mean nothing)."""
    info = run.run_info
    sources = _data_info(info).get("sources", info.get("source"))
    prices = sources.get("prices") if isinstance(sources, dict) else sources
    texts = [str(prices or ""), str(info.get("market") or "")]
    return any("synthetic" in t.lower() for t in texts)


def _equity_asset(run: RunData) -> str | None:
    named = run.run_info.get("equity_asset")
    if isinstance(named, str) and named:
        return named
    for asset, cls in _asset_classes(run.run_info).items():
        if cls == "equity":
            return asset
    return "equity" if "equity" in run.assets else None


def _equity_closes(run: RunData) -> tuple[pd.Series | None, str]:
    """Closes of the equity asset implied by the strategies' positions and fills (or a note)."""
    asset = _equity_asset(run)
    if asset is None:
        return None, "no asset named 'equity' (or run.json 'equity_asset'): extreme months unknown"
    best: pd.Series | None = None
    for s in run.strategies:
        if s in run.positions and s in run.transactions:
            px = implied_prices(run.positions[s], run.transactions[s], asset)
            best = px if best is None else best.combine_first(px)
    if best is None or best.dropna().size < 2:
        return None, f"no positions/transactions to recover the {asset} closes: extreme months unknown"
    return best.dropna(), f"{asset} closes implied by positions and fills"


def _extreme_mask(run: RunData) -> tuple[pd.Series | None, str]:
    closes, note = _equity_closes(run)
    if closes is None:
        return None, note
    try:
        mask = extreme_months(closes)
    except DRBError as exc:
        return None, f"extreme months unknown: {exc}"
    return mask, note


def _equity_extreme_return(run: RunData, mask: pd.Series | None) -> float | None:
    """Average monthly return of the equity asset over the extreme months of the run's span."""
    closes, _ = _equity_closes(run)
    if closes is None or mask is None:
        return None
    monthly = monthly_returns(closes.pct_change().iloc[1:])
    first, last = run.returns.dropna(how="all").index[[0, -1]]
    flagged = mask[mask & (mask.index >= first.to_period("M")) & (mask.index <= last.to_period("M"))].index
    vals = monthly.reindex(flagged).dropna()
    return float(vals.mean()) if len(vals) else None


def run_metrics(run: RunData, *, benchmark: str | None = None) -> tuple[pd.DataFrame, str]:
    """Compute the metrics table of a run from its saved outputs (when it has no metrics.csv).

    Turnover is annualized from ``rebalances.csv`` (initial investment excluded); extreme months
    come from the equity closes implied by positions and fills (:func:`implied_prices`); the
    risk-free rate is ``run.json``'s ``risk_free`` (annual, default 0).

    Parameters
    ----------
    run : RunData
    benchmark : str, optional
        Benchmark strategy of the information ratio; default ``run.json``'s ``benchmark``.

    Returns
    -------
    metrics : pandas.DataFrame
        As :func:`runners.metrics.compute_metrics`.
    note : str
        How the table was obtained, for the report.
    """
    bench = benchmark if benchmark is not None else run.run_info.get("benchmark")
    if bench is not None and bench not in run.strategies:
        raise ConfigError(f"benchmark {bench!r} is not a strategy of this run ({', '.join(run.strategies)})")
    mask, mask_note = _extreme_mask(run)
    turnover = annualized_turnover(run.rebalances, run.returns) if run.rebalances is not None else None
    try:
        rf = float(run.run_info.get("risk_free", 0.0) or 0.0)
    except (TypeError, ValueError):
        raise ConfigError(f"run.json: risk_free must be a number, got {run.run_info.get('risk_free')!r}") from None
    metrics = compute_metrics(run.returns, turnover, benchmark=bench, extreme_mask=mask, risk_free=rf)
    note = (f"computed from returns.csv by the report (information ratio against "
            f"{bench or 'no benchmark'}; extreme months: {mask_note}; "
            f"turnover {'from rebalances.csv' if turnover is not None else 'unknown'})")
    return metrics, note


# ----------------------------------------------------------------------------- run description


def _fmt_param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def _data_info(info: dict[str, Any]) -> dict[str, Any]:
    data = info.get("data")
    return data if isinstance(data, dict) else {}


def _asset_classes(info: dict[str, Any]) -> dict[str, str]:
    """Asset -> class from run.json (``data.assets`` as a mapping), else empty."""
    assets = _data_info(info).get("assets", info.get("assets"))
    if isinstance(assets, dict):
        return {str(k): str(v) for k, v in assets.items()}
    return {}


_SIGNAL_NAMES = {"vol_index": "implied-volatility index", "macro": "macro leading indicators"}
_SOURCE_TEXT = F.SOURCE_TEXT


def _signals_text(run: RunData) -> str | None:
    info = run.run_info
    parts: list[str] = []
    signals = _data_info(info).get("signals", info.get("signals"))
    if isinstance(signals, dict):
        for name, val in signals.items():
            label = _SIGNAL_NAMES.get(str(name), str(name))
            if isinstance(val, bool):
                parts.append(f"{label}: {'supplied' if val else 'missing'}")
            elif isinstance(val, dict):
                used = val.get("used")
                text = "supplied" if used else ("missing" if used is False else "")
                if val.get("stand_in") and not used:
                    text += f", stand-in: {val['stand_in']}"
                if val.get("note"):
                    text += f" ({val['note']})"
                parts.append(f"{label}: {text.strip(', ')}")
            else:
                parts.append(f"{label}: {_fmt_param(val)}")
    used: dict[str, list[str]] = {}
    if run.regimes is not None:
        for col in ("cycle_source", "vol_source"):
            if col in run.regimes.columns:
                used[col] = [str(v) for v in pd.unique(run.regimes[col].dropna().astype(str))]
    fb = info.get("fallbacks")
    if isinstance(fb, dict):
        for col in ("cycle_source", "vol_source"):
            if col not in used and isinstance(fb.get(col), list | str):
                vals = fb[col] if isinstance(fb[col], list) else [fb[col]]
                used[col] = [str(v) for v in vals]
    for col, label in (("cycle_source", "economic cycle from"), ("vol_source", "volatility state from")):
        if used.get(col):
            parts.append(f"{label}: " + ", ".join(_SOURCE_TEXT.get(v, v) for v in used[col]))
    return "; ".join(parts) if parts else None


def _describe_run(run: RunData, benchmark: str | None = None) -> list[tuple[str, str]]:
    """Key facts about the run as (label, text) pairs (tolerant of missing run.json keys);
    ``benchmark`` is the strategy the report's information ratio is measured against."""
    info = run.run_info
    data = _data_info(info)
    facts: list[tuple[str, str]] = []
    rets = run.returns.dropna(how="all")
    start = data.get("start") or info.get("start") or str(rets.index[0].date())
    end = data.get("end") or info.get("end") or str(rets.index[-1].date())
    span = f"{start} to {end}"
    bars = data.get("bars") or data.get("n_days")
    if bars:
        span += f" ({bars} bars)"
    span += (f"; returns from {rets.index[0].date()} (first investment) to {rets.index[-1].date()}, "
             f"{len(rets)} trading days")
    facts.append(("Data span", span))
    sources = data.get("sources", data.get("source", info.get("source")))
    if isinstance(sources, dict) and sources:
        facts.append(("Data sources", "; ".join(f"{k}: {v}" for k, v in sources.items())))
    elif sources:
        facts.append(("Data sources", str(sources)))
    classes = _asset_classes(info)
    if run.assets:
        facts.append(("Assets", ", ".join(
            f"{a} ({classes[a]})" if a in classes and classes[a] != a else a for a in run.assets)))
    facts.append(("Strategies", ", ".join(run.strategies)))
    bench = benchmark if benchmark is not None else info.get("benchmark")
    if bench:
        text = str(bench)
        if info.get("benchmark") and bench != info["benchmark"]:
            text += f" (chosen for this report; the run used {info['benchmark']})"
        facts.append(("Benchmark (information ratio)", text))
    sig = _signals_text(run)
    if sig:
        facts.append(("Signals", sig))
    notes = data.get("notes")
    if isinstance(notes, list) and notes:
        facts.append(("Data notes", "; ".join(str(n) for n in notes)))
    for key, label in (("seed", "Seed"), ("command", "Command"), ("created", "Created")):
        if key in info and info[key] is not None:
            facts.append((label, _fmt_param(info[key])))
    fb = info.get("fallbacks")
    if isinstance(fb, dict):
        counts = {k: v for k, v in fb.items() if k not in {"cycle_source", "vol_source"}}
        if counts:
            facts.append(("Fallbacks and fit failures", ", ".join(f"{k} = {_fmt_param(v)}" for k, v in counts.items())))
    if isinstance(info.get("timings"), dict) and info["timings"]:
        facts.append(("Timings (s)", ", ".join(
            f"{k} = {v:.3g}" if isinstance(v, int | float) else f"{k} = {_fmt_param(v)}"
            for k, v in info["timings"].items())))
    if isinstance(info.get("versions"), dict):
        facts.append(("Versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items())))
    return facts


def _parameters_table(run: RunData) -> T.FormattedTable | None:
    params = run.run_info.get("parameters")
    if not isinstance(params, dict) or not params:
        return None
    rows = []
    for strat, p in params.items():
        if isinstance(p, dict):
            # asset classes are listed with the data; every other parameter the strategy ran with
            text = ", ".join(f"{k}={_fmt_param(v)}" for k, v in p.items() if k != "asset_classes") or "defaults"
        else:
            text = _fmt_param(p)
        rows.append((str(strat), text))
    return T.FormattedTable(("Strategy", "Parameters"), (False, False), tuple(rows))


def _health_blocks(run: RunData) -> list[_Block]:
    """Flagged strategies of run.json's ``health`` (``runners.health``), for the top of the report."""
    from runners.health import report_warnings

    lines = report_warnings(run.run_info)
    return [_Block("items", "Run health warnings: these results are not what they claim to be",
                   links=[(w, "") for w in lines])] if lines else []


def _diagnostics_table(run: RunData) -> T.FormattedTable | None:
    """Per-strategy counters from run.json (``strategy_info`` scalars, ``order_issues``)."""
    info = run.run_info
    per: dict[str, dict[str, str]] = {}
    sinfo = info.get("strategy_info")
    if isinstance(sinfo, dict):
        for strat, d in sinfo.items():
            if isinstance(d, dict):
                for k, v in d.items():
                    if isinstance(v, bool | int | float | str) and v is not None:
                        per.setdefault(str(strat), {})[str(k)] = _fmt_param(v)
                    elif isinstance(v, list):
                        per.setdefault(str(strat), {})[f"{k} (count)"] = str(len(v))
    issues = info.get("order_issues")
    if isinstance(issues, dict):
        for strat, v in issues.items():
            per.setdefault(str(strat), {})["order issues"] = _fmt_param(v)
    if not per:
        return None
    cols = list(dict.fromkeys(k for d in per.values() for k in d))
    rows = tuple((s, *(per[s].get(c, "") for c in cols)) for s in per)
    return T.FormattedTable(("Strategy", *cols), (False, *([True] * len(cols))), rows)


def _diagnostic_notes(run: RunData) -> list[str]:
    """The text of every warning / note list in run.json's ``strategy_info`` (the diagnostics
    table only counts them), as ``"<strategy>, <list>: <text>"``; repeated texts once, with a
    count."""
    out: list[str] = []
    sinfo = run.run_info.get("strategy_info")
    if not isinstance(sinfo, dict):
        return out
    for strat, d in sinfo.items():
        if not isinstance(d, dict):
            continue
        for key, val in d.items():
            if not isinstance(val, list) or not val:
                continue
            counts: dict[str, int] = {}
            for item in val:
                text = " ".join(str(item).split())
                counts[text] = counts.get(text, 0) + 1
            for text, n in counts.items():
                out.append(f"{strat}, {key.replace('_', ' ')}: {text}" + (f" (x{n})" if n > 1 else ""))
    return out


def _other_info(run: RunData) -> str | None:
    known = {"data", "start", "end", "source", "data_source", "assets", "signals", "seed", "command",
             "fallbacks", "timings", "versions", "parameters", "parameter_overrides", "equity_asset",
             "benchmark", "created", "strategies", "strategy_info", "order_issues"}
    rest = {k: v for k, v in run.run_info.items() if k not in known}
    return json.dumps(rest, indent=2, default=str) if rest else None


# ----------------------------------------------------------------------------- time-axis risk

_DAYS_PER_YEAR = 252.0


def _section(tr: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of one section of time_risk.csv (index: item), empty when absent."""
    if name in tr.index.get_level_values("section"):
        return tr.xs(name, level="section")
    return pd.DataFrame(columns=tr.columns, dtype=float)


def _time_risk_counts(run: RunData) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Bars per year (years x strategies) and, when time_risk.csv lacks the equal-risk HHIs (runs
    written before them), bars per month; with the source of the counts for the captions."""
    tr = run.time_risk
    assert tr is not None
    years = sorted(_section(tr, "year").index)
    conc = _section(tr, "concentration")
    bars = _section(tr, "bars")
    need_months = "hhi_months_equal_risk" not in conc.index
    if len(bars) and not need_months:
        return bars.reindex(years), None, "time_risk.csv"
    # older runs: the contributions cover the strategy's return days but its first (the weights of
    # a close are held over the next day), as in runners.experiments.time_risk.time_risk_contributions_by_strategy
    per_year: dict[str, pd.Series] = {}
    per_month: dict[str, pd.Series] = {}
    for s in tr.columns:
        days = pd.DatetimeIndex(run.returns[s].dropna().index[1:]) if s in run.returns else pd.DatetimeIndex([])
        per_year[s] = pd.Series(1.0, index=days).groupby(days.year.astype(str)).sum()
        per_month[s] = pd.Series(1.0, index=days).groupby(days.to_period("M")).sum()
    by_year = bars.reindex(years) if len(bars) else pd.DataFrame(per_year).reindex(years).fillna(0.0)
    source = "time_risk.csv" if len(bars) else "returns.csv, this time_risk.csv has none"
    return by_year, pd.DataFrame(per_month), source


def _equal_risk_hhi(counts: pd.Series) -> float:
    c = counts.dropna().to_numpy(dtype=float)
    c = c[c > 0]
    return float(np.sum((c / c.sum()) ** 2)) if c.size else float("nan")


def _time_risk_blocks(run: RunData) -> list[_Block]:
    """Two tables from time_risk.csv: concentration over time next to the asset split, and the
    share of the ex-ante variance by year (partial years marked, stubs folded; see
    :func:`runners.report.time_risk.year_layout`)."""
    tr = run.time_risk
    assert tr is not None
    years = _section(tr, "year").sort_index()  # "YYYY": calendar order
    assets = _section(tr, "asset")
    order = [a for a in run.assets if a in assets.index]
    assets = assets.reindex(order + [a for a in assets.index if a not in order])
    conc = _section(tr, "concentration")
    bars, months, counts_source = _time_risk_counts(run)
    strategies = list(tr.columns)

    def num(item: str, s: str) -> float:
        return float(conc.at[item, s]) if item in conc.index else float("nan")

    def inv(h: float) -> float:
        return 1.0 / h if np.isfinite(h) and h > 0 else float("nan")

    def pair(a: float, b: float, fmt: str) -> str:
        main = "n/a" if not np.isfinite(a) else format(a, fmt)
        return main + ("" if not np.isfinite(b) else f" ({format(b, fmt)})")

    rows = []
    for s in strategies:
        n_bars = float(bars[s].sum()) if s in bars else float("nan")
        total = num("total_variance", s)
        vol = (np.sqrt(total * _DAYS_PER_YEAR / n_bars)
               if np.isfinite(total) and total >= 0 and n_bars > 0 else float("nan"))
        hy, hm = num("hhi_years", s), num("hhi_months", s)
        ey = num("hhi_years_equal_risk", s)
        em = num("hhi_months_equal_risk", s)
        if not np.isfinite(ey) and s in bars:
            ey = _equal_risk_hhi(bars[s])
        if not np.isfinite(em) and months is not None and s in months:
            em = _equal_risk_hhi(months[s])
        rows.append((s, T.format_value(vol, "pct"),
                     pair(hy, ey, ".3f"), pair(inv(hy), inv(ey), ".2f"),
                     pair(hm, em, ".4f"), pair(inv(hm), inv(em), ".1f"),
                     *(T.format_value(assets.at[a, s], "pct") for a in assets.index)))
    head = ("Strategy", "Ex-ante vol p.a.", "HHI years (equal risk)", "Eff. years (equal risk)",
            "HHI months (equal risk)", "Eff. months (equal risk)", *(str(a) for a in assets.index))
    conc_table = T.FormattedTable(head, (False, *([True] * (len(head) - 1))), tuple(rows))

    layout = year_layout(bars.max(axis=1), periods_per_year=_DAYS_PER_YEAR)
    shares = fold_years(years.T, layout)
    year_table = T.format_table(shares, {c: "pct" for c in shares.columns}, index_label="Strategy")
    longest = bars.max(axis=1)
    folded = [f"{y} ({int(longest[y])} d) into {c.year}" for c in layout for y in c.years if y != c.year]
    partial = [f"{c.year} ({c.bars} d)" for c in layout if c.partial]
    n_total = longest.sum()
    conc_text = (
        "Time-axis risk of each strategy (time_risk.csv): the ex-ante variance the end-of-day weights "
        "add day by day, c_{i,t} = w_{i,t} (Σ_t w_t)_i / 252 under the causal EWMA covariance, summed "
        "over the run. Ex-ante vol: the square root of the total ex-ante variance per year of the run "
        f"({int(n_total)} trading days / 252; day counts from {counts_source}). HHI: Herfindahl index of the "
        "variance shares of the calendar years or months (1/n when spread evenly over n buckets of "
        "equal length); in brackets the HHI of a policy with the same ex-ante variance every day (the "
        "time-axis risk-parity benchmark, which accounts for partial years and months, counted as they "
        "are). Eff. years / months = 1 / HHI: how many equally risky buckets the risk is spread over. "
        "Asset columns: Euler split of the total variance over the whole run, summing to 100% "
        "(negative = hedge)."
    )
    year_text = "Share of each strategy's total ex-ante variance by calendar year, %."
    if partial:
        year_text += (" Partial years carry their number of trading days: " + ", ".join(partial) + ".")
    if folded:
        year_text += (" A first or last year shorter than about a month of trading days is folded "
                      "into its neighbour, so that a few days do not read as a year: "
                      + ", ".join(folded) + " (time_risk.csv keeps every calendar year).")
    return [_Block("table", conc_text, table=conc_table), _Block("table", year_text, table=year_table)]


def _evidence_blocks(root: Path) -> list[_Block]:
    """The "Is it better?" section (issue 15, runners.report.evidence)."""
    from runners.report.evidence import evidence_parts

    return [_Block(kind, text, table=table) for kind, text, table in evidence_parts(root)]


def _run_blocks(run: RunData, benchmark: str | None) -> list[_Block]:
    """"The run": data, signals, benchmark, timings, parameters, diagnostics and warnings."""
    blocks = [_Block("h2", "The run"), _Block("facts", facts=_describe_run(run, benchmark=benchmark))]
    ptable = _parameters_table(run)
    if ptable is not None:
        blocks.append(_Block("table", "Parameters per strategy (from run.json)", table=ptable))
    dtable = _diagnostics_table(run)
    if dtable is not None:
        blocks.append(_Block("table", "Diagnostics per strategy (from run.json: refits, fit failures, "
                             "solver fallbacks, order issues)", table=dtable))
    notes = _diagnostic_notes(run)
    if notes:
        blocks.append(_Block("items", "Warnings and notes recorded by the run:",
                             links=[(n, "") for n in notes]))
    return blocks


def _progress_bar(total: int, enabled: bool) -> Any:
    """The report stage's progress bar on stderr (one step per figure and tear sheet)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="report", unit="part", disable=not enabled, file=sys.stderr)


def _figure_plan(run: RunData) -> list[str]:
    """Keys of :data:`FIGURE_FILES` the report draws for this run, in drawing order."""
    plan = ["equity_drawdown", "extreme_months"]
    plan += ["budgets"] if run.budgets is not None else []
    plan += ["risk_contributions"] if run.risk_contributions else []
    plan += ["weights"] if run.weights else []
    plan += ["turnover_per_year"] if run.rebalances is not None else []
    plan += ["regimes"] if run.regimes is not None else []
    return plan


def _extreme_counts(run: RunData, mask: pd.Series | None) -> tuple[int | None, pd.Series | None]:
    """Extreme months in the run's span and per strategy (None without a mask)."""
    if mask is None:
        return None, None
    first, last = run.returns.dropna(how="all").index[[0, -1]]
    span = mask[(mask.index >= first.to_period("M")) & (mask.index <= last.to_period("M"))]
    flagged = set(mask[mask].index)
    counts = pd.Series({
        s: sum(1 for m in pd.unique(pd.DatetimeIndex(run.returns[s].dropna().index).to_period("M"))
               if m in flagged)
        for s in run.strategies
    })
    return int(span.sum()), counts


def _draw_figures(
    run: RunData, plan: Sequence[str], mask: pd.Series | None, fdir: Path, bar: Any
) -> tuple[dict[str, Path], int | None]:
    """Draw and save the figures of ``plan`` under ``fdir`` (one ``bar`` step each); return
    figure key -> path and the number of extreme months in the run (None without a mask).
    Every asset keeps the colour :func:`runners.report.figures.asset_colors` gives it for the run's
    full asset list, in every figure."""
    n_extreme, counts = _extreme_counts(run, mask)
    assets = list(run.assets)
    if run.budgets is not None:
        assets += [c[len("smoothed_"):] for c in run.budgets.columns
                   if c.startswith("smoothed_") and c[len("smoothed_"):] not in assets]
    palette = F.asset_colors(assets)
    figs: dict[str, Path] = {}
    for key in plan:
        if key == "equity_drawdown":
            fig = F.plot_equity_drawdowns(run.returns)
        elif key == "extreme_months":
            fig = F.plot_extreme_months(run.metrics["extreme_month_return"], n_months=n_extreme,
                                        counts=counts, equity_return=_equity_extreme_return(run, mask))
        elif key == "budgets":
            with_budgets = [a for a in assets if f"smoothed_{a}" in run.budgets.columns]
            fig = F.plot_budgets(run.budgets, with_budgets, colors=palette)
        elif key == "risk_contributions":
            fig = F.plot_risk_contributions(run.risk_contributions, run.budgets, colors=palette)
        elif key == "weights":
            fig = F.plot_weights(run.weights, colors=palette)
        elif key == "turnover_per_year":
            fig = F.plot_turnover_per_year(run.rebalances, run.returns)
        else:
            fig = F.plot_regimes(run.regimes, run.transition)
        figs[key] = F.save_figure(fig, fdir / FIGURE_FILES[key][0])
        bar.update(1)
    return figs, n_extreme


def _record_report_seconds(run_dir: Path, seconds: float) -> None:
    """Put the report stage's wall time into ``run.json`` as ``timings.report_s`` (rewritten
    atomically; nothing done when the run has no ``run.json`` or it is not a JSON object)."""
    path = run_dir / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(info, dict):
        return
    timings = info.get("timings") if isinstance(info.get("timings"), dict) else {}
    timings["report_s"] = round(float(seconds), 3)
    info["timings"] = timings
    atomic_write_text(path, json.dumps(info, indent=2))


# ----------------------------------------------------------------------------- build


def build_report(
    run_dir: str | os.PathLike[str],
    *,
    tearsheets: bool = True,
    window: object = None,
    benchmark: str | None = None,
    n_jobs: int = 2,
    embed_tearsheets: bool = False,
    timings: dict[str, float] | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Regenerate the whole report of a run directory from its saved outputs.

    Parameters
    ----------
    run_dir : str or PathLike
        The run directory written by ``drb compare`` / ``drb demo``.
    tearsheets : bool, default True
        Render the pyfolio tear sheets (the slow part: 1.5-3 s per strategy, 2 in parallel).
    window : None, "START:END" or (start, end)
        Window of the budget adjustment log (inclusive; either end may be open). Default: the
        whole run.
    benchmark : str, optional
        Benchmark strategy of the information ratio; default ``run.json``'s ``benchmark``. When
        ``metrics.csv`` is absent the metrics are computed and written there; when it exists and
        ``benchmark`` differs from the run's, the metrics are recomputed from the saved outputs
        into ``tables/metrics_vs_<benchmark>.csv`` / ``.md`` (shown in the report) and the run's
        ``metrics.csv`` is left as it is.
    n_jobs : int, default 2
        Tear sheet worker processes.
    embed_tearsheets : bool, default False
        Also embed the (large) tear sheet PNGs in ``report.html`` (collapsed).
    timings : dict, optional
        Filled with seconds per stage (``load, metrics, tables, figures, tearsheets, report``;
        the tear sheets render in worker processes while the figures are drawn, so
        ``tearsheets`` is the wait after the figures) and per tear sheet
        (``tearsheet:<strategy>``, in its worker). The whole stage's wall time is also written
        to ``run.json`` as ``timings.report_s``.
    progress : bool, default False
        Show a progress bar on stderr (one step per figure and tear sheet).

    Returns
    -------
    dict of str to pathlib.Path
        Every file written, keyed by its path relative to ``run_dir`` (e.g. ``"report.html"``,
        ``"figures/budgets.png"``, ``"tearsheets/EqualWeight.png"``).

    Raises
    ------
    DataError
        Missing ``returns.csv`` / folder, or malformed files.
    ConfigError
        Bad window or benchmark.
    runners.report.tearsheets.TearsheetError
        pyfolio failed for a strategy.
    """
    started = time.perf_counter()
    lo, hi = T.parse_window(window)
    workers = _start_tearsheet_workers(run_dir, n_jobs) if tearsheets else None
    try:
        return _build_report(run_dir, tearsheets=tearsheets, window=window, lo=lo, hi=hi,
                             benchmark=benchmark, n_jobs=n_jobs, embed_tearsheets=embed_tearsheets,
                             timings=timings, progress=progress, workers=workers, started=started)
    finally:
        if workers is not None:
            workers.close()  # when the tear sheets never came to use them


def _start_tearsheet_workers(run_dir: str | os.PathLike[str], n_jobs: int) -> Any:
    """Start the tear sheet workers now, so that their pyfolio imports run while the report
    reads the run and draws its tables (at most one per strategy of ``returns.csv``'s header;
    None when that header cannot be read: loading the run reports the problem)."""
    from runners.report.tearsheets import TearsheetWorkers

    try:
        with open(Path(run_dir) / "returns.csv", encoding="utf-8") as fh:
            n_strategies = len(fh.readline().split(",")) - 1
    except (OSError, UnicodeDecodeError):
        return None
    n = min(n_jobs, n_strategies)
    return TearsheetWorkers(n) if n >= 1 else None


@dataclass
class _Build:
    """State of one report build, filled step by step (load, metrics, tables, figures, sheets)."""

    run: RunData
    tearsheets: bool
    window: object
    lo: pd.Timestamp | None
    hi: pd.Timestamp | None
    benchmark: str | None
    clock: float
    stamps: dict[str, float] = field(default_factory=dict)
    written: dict[str, Path] = field(default_factory=dict)
    mask: pd.Series | None = None
    mask_note: str = ""
    metrics_note: str = "from metrics.csv written by the run"
    metrics_files: list[str] = field(default_factory=lambda: ["metrics.csv", "metrics.md"])
    effective_bench: str | None = None
    per_year: pd.DataFrame | None = None
    budget_log: pd.DataFrame | None = None
    budget_lag: int = 0
    triggers: pd.DataFrame | None = None
    figs: dict[str, Path] = field(default_factory=dict)
    n_extreme: int | None = None
    sheets: dict[str, Path] = field(default_factory=dict)
    sheet_times: dict[str, float] = field(default_factory=dict)
    sheet_bench: str | None = None
    synthetic: bool = False
    previous_sheets: bool = False

    @property
    def root(self) -> Path:
        return self.run.run_dir

    def rel(self, p: Path) -> str:
        """``p`` relative to the run folder, with forward slashes."""
        return p.relative_to(self.root).as_posix()

    def lap(self, stage: str) -> None:
        """Record the seconds since the previous lap as ``stage``."""
        now = time.perf_counter()
        self.stamps[stage] = now - self.clock
        self.clock = now


def _check_window(run: RunData, window: object, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> None:
    """Refuse a budget-log window that does not overlap the run's budgets."""
    if run.budgets is None or not len(run.budgets) or (lo is None and hi is None):
        return
    bdays = pd.DatetimeIndex(run.budgets.index)
    if (lo is not None and lo > bdays[-1]) or (hi is not None and hi < bdays[0]):
        raise ConfigError(f"window {window!r} does not overlap the run's budgets "
                          f"({bdays[0].date()} to {bdays[-1].date()})")


def _metrics_step(b: _Build) -> None:
    """Metrics: the run's ``metrics.csv``, or computed (absent, or another benchmark)."""
    run, root = b.run, b.root
    b.mask, b.mask_note = _extreme_mask(run)
    run_bench = run.run_info.get("benchmark")
    b.effective_bench = b.benchmark if b.benchmark is not None else run_bench
    if run.metrics is None:
        run.metrics, b.metrics_note = run_metrics(run, benchmark=b.benchmark)
        b.written.update(T.write_metrics_table(run.metrics, root))
    elif b.benchmark is not None and b.benchmark != run_bench:
        # another benchmark than the run's: recompute from the saved outputs (the same numbers
        # as the run's metrics.csv but the information ratio) and keep the run's file intact
        run.metrics, b.metrics_note = run_metrics(run, benchmark=b.benchmark)
        stem = f"metrics_vs_{b.benchmark}"
        for k, p in T.write_table(run.metrics, T.metrics_markdown, root / "tables", stem).items():
            b.written[f"tables/{k}"] = p
        b.metrics_note += (f"; written to tables/{stem}.csv, the run's metrics.csv (information ratio "
                           f"against {run_bench or 'no benchmark'}) is kept")
        b.metrics_files = [f"tables/{stem}.csv", f"tables/{stem}.md", *b.metrics_files]
    elif not (root / "metrics.md").is_file():
        b.written["metrics.md"] = atomic_write_text(root / "metrics.md", T.metrics_markdown(run.metrics))
    b.lap("metrics")


def _tables_step(b: _Build) -> None:
    """``tables/``: per-year returns, the budget adjustment log and the trigger summary."""
    run, tdir = b.run, b.root / "tables"

    def write(frame: pd.DataFrame, markdown: Any, stem: str, **kw: Any) -> None:
        for k, p in T.write_table(frame, markdown, tdir, stem, **kw).items():
            b.written[f"tables/{k}"] = p

    b.per_year = T.per_year_returns(run.returns)
    write(b.per_year, T.per_year_markdown, "per_year_returns")
    if run.budgets is not None and run.rebalances is not None:
        b.budget_lag = T.infer_decision_lag(run.budgets, run.rebalances, DYNAMIC)
        b.budget_log = T.budget_adjustment_log(run.budgets, run.rebalances, start=b.lo, end=b.hi,
                                               strategy=DYNAMIC, decision_lag=b.budget_lag)
        write(b.budget_log, T.budget_log_markdown, "budget_log", index=False)
    if run.rebalances is not None:
        b.triggers = T.trigger_summary(run.rebalances, run.strategies)
        write(b.triggers, T.trigger_markdown, "triggers")
    b.lap("tables")


def _figures_step(b: _Build, *, n_jobs: int, progress: bool, workers: Any) -> None:
    """Figures, drawn while the tear sheets render in worker processes."""
    run, root = b.run, b.root
    have = [s for s in run.strategies if s in run.positions and s in run.transactions] if b.tearsheets else []
    plans = _figure_plan(run)
    bar = _progress_bar(len(plans) + len(have), progress)
    b.sheet_bench = b.effective_bench if b.effective_bench in run.strategies else None
    b.synthetic = _is_synthetic(run) if b.tearsheets else False
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        if have:
            from runners.report.tearsheets import write_tearsheets

            pending = pool.submit(write_tearsheets, root, have, n_jobs=n_jobs, timings=b.sheet_times,
                                  benchmark=b.sheet_bench, interesting_times=not b.synthetic,
                                  on_done=lambda s: bar.update(1), workers=workers)
        try:
            b.figs, b.n_extreme = _draw_figures(run, plans, b.mask, root / "figures", bar)
            b.written.update({b.rel(path): path for path in b.figs.values()})
            b.lap("figures")
            b.sheets = pending.result() if pending is not None else {}
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            bar.close()
    _collect_sheets(b)


def _collect_sheets(b: _Build) -> None:
    """Record the tear sheets written, or link those of an earlier report."""
    if not b.tearsheets:
        # keep linking tear sheets rendered by an earlier run of the report
        b.sheets = {s: b.root / "tearsheets" / f"{s}.png" for s in b.run.strategies
                    if (b.root / "tearsheets" / f"{s}.png").is_file()}
        b.previous_sheets = bool(b.sheets)
    else:
        for s, p in b.sheets.items():
            b.written[b.rel(p)] = p
            b.stamps[f"tearsheet:{s}"] = b.sheet_times.get(s, float("nan"))
    b.lap("tearsheets")  # the wait for the tear sheets after the figures were drawn


# ----------------------------------------------------------------------------- sections

_METRIC_DEFINITIONS = (
    "Definitions: Ann. return is the CAGR; Ann. vol the annualized standard deviation of daily "
    "returns; Sharpe and Sortino are annualized against the risk-free rate; Max DD the deepest "
    "fall from a running peak; Calmar = Ann. return / |Max DD|; Info ratio the annualized mean "
    "over the standard deviation of daily returns in excess of the benchmark strategy; Win months "
    "the share of calendar months with a gain; Monthly P/L the mean winning month over the "
    "absolute mean losing month (inf: no losing month); Turnover /yr the annualized one-way "
    "turnover (0.5·Σ|Δw| per rebalance); Extreme months the average monthly return in months "
    "where the equity asset fell by more than 5%; CVaR 95 the mean of the worst 5% of daily "
    "returns. n/a: not defined for this run.")


def _figure_block(b: _Build, key: str, extra: str = "") -> _Block:
    """The figure ``key`` of :data:`FIGURE_FILES` with its caption (+ ``extra``)."""
    return _Block("figure", FIGURE_FILES[key][1] + extra, path=b.rel(b.figs[key]))


def _performance_section(b: _Build) -> list[_Block]:
    """"Performance comparison": metrics, their definitions, equity and drawdowns."""
    return [
        _Block("h2", "Performance comparison"),
        _Block("table", f"Metrics {b.metrics_note}. Daily returns after costs; "
               "drawdowns, worst month and CVaR are negative returns.",
               table=T.metrics_formatted(b.run.metrics)),
        _Block("p", _METRIC_DEFINITIONS),
        _figure_block(b, "equity_drawdown"),
    ]


def _calendar_sections(b: _Build) -> list[_Block]:
    """"Returns per calendar year" and "Extreme months"."""
    extra = (f" {b.n_extreme} extreme months in the run." if b.n_extreme is not None else f" ({b.mask_note})")
    return [
        _Block("h2", "Returns per calendar year"),
        _Block("table", "Compounded daily returns; years with fewer trading days are partial.",
               table=T.per_year_formatted(b.per_year)),
        _Block("h2", "Extreme months"),
        _figure_block(b, "extreme_months", extra),
    ]


def _budget_log_block(b: _Build, log: pd.DataFrame) -> _Block:
    """The budget adjustment log (folded when longer than 40 rows)."""
    wtxt = f"{b.lo.date() if b.lo is not None else 'start'} to {b.hi.date() if b.hi is not None else 'end'}"
    when = ("the next bar" if b.budget_lag == 1 else
            "the same bar" if b.budget_lag == 0 else f"{b.budget_lag} bars later")
    n_reb = int(log["executed"].notna().sum())
    return _Block("table", f"Budget adjustment log of {DYNAMIC} (shape of the paper's Table 1), "
                  f"window {wtxt}, {n_reb} rebalances: Date is the close at which the budget "
                  f"was decided, Executed the day its trades filled ({when}); budgets are the "
                  "smoothed budgets b(t) in force at the end of Date, in %. Regime changes "
                  "that did not lead to a rebalance (e.g. inside the cooldown) are listed too. "
                  "Choose the window with drb report --window START:END.",
                  table=T.budget_log_formatted(log), collapsed=len(log) > 40,
                  summary=f"show the {len(log)} rows")


def _budget_sections(b: _Build) -> list[_Block]:
    """"Dynamic risk budgets" (figure, adjustment log), "Regimes", "Risk contributions and weights"."""
    blocks = [_Block("h2", "Dynamic risk budgets")]
    if "budgets" in b.figs:
        blocks.append(_figure_block(b, "budgets"))
    else:
        blocks.append(_Block("p", "No budgets.csv in this run (the dynamic model was not run)."))
    if b.budget_log is not None:
        blocks.append(_budget_log_block(b, b.budget_log))
    if "regimes" in b.figs:
        blocks += [_Block("h2", "Regimes"), _figure_block(b, "regimes")]
    blocks.append(_Block("h2", "Risk contributions and weights"))
    blocks += [_figure_block(b, key) for key in ("risk_contributions", "weights") if key in b.figs]
    return blocks


def _time_risk_section(b: _Build) -> list[_Block]:
    """"Risk over time": the run's time-axis tables and figure."""
    blocks = [_Block("h2", "Risk over time (time-axis risk contributions)")]
    if b.run.time_risk is not None:
        blocks += _time_risk_blocks(b.run)
    else:
        blocks.append(_Block("p", "No time_risk.csv in this run (drb compare writes it), so no "
                             "time-axis risk tables."))
    png = b.root / "figures" / FIGURE_FILES["time_risk"][0]
    if png.is_file():
        blocks.append(_Block("figure", FIGURE_FILES["time_risk"][1], path=b.rel(png)))
    return blocks


def _turnover_section(b: _Build) -> list[_Block]:
    """"Turnover and triggers", then "Other figures of the run" (PNGs the report did not draw)."""
    blocks = [_Block("h2", "Turnover and triggers")]
    if "turnover_per_year" in b.figs:
        blocks.append(_figure_block(b, "turnover_per_year"))
    if b.triggers is not None:
        blocks.append(_Block("table", "Trigger log: executed rebalances per strategy and trigger (a "
                             "rebalance fired by several triggers counts under each).",
                             table=T.trigger_formatted(b.triggers)))
    fdir = b.root / "figures"
    ours = {name for name, _ in FIGURE_FILES.values()}
    others = sorted(p for p in fdir.glob("*.png") if p.name not in ours) if fdir.is_dir() else []
    if others:
        blocks.append(_Block("h2", "Other figures of the run"))
        blocks += [_Block("figure", f"{p.stem.replace('_', ' ')} (written by the run)", path=b.rel(p))
                   for p in others]
    return blocks


def _tearsheet_section(b: _Build) -> list[_Block]:
    """"pyfolio tear sheets": what they show and links to them."""
    blocks = [_Block("h2", "pyfolio tear sheets")]
    if not b.sheets:
        blocks.append(_Block("p", "Not rendered (run `drb report RUN_DIR` without --no-tearsheets)."
                             if not b.tearsheets else "No strategy has positions and transactions files."))
        return blocks
    text = ("One tall PNG per strategy: pyfolio performance statistics and monthly returns, "
            "returns, positions (every asset and cash) and transactions sheets")
    if b.tearsheets and b.sheet_bench:
        text += f", every other strategy against {b.sheet_bench} (alpha, beta, rolling beta)"
    if b.tearsheets and b.synthetic:
        text += ("; pyfolio's historical stress periods are left out (synthetic market: its "
                 "dates are not history)")
    blocks.append(_Block("p", text + "." + (" Rendered by an earlier report (not regenerated this time)."
                                            if b.previous_sheets else "")))
    blocks.append(_Block("links", links=[(s, b.rel(p)) for s, p in b.sheets.items()]))
    return blocks


def _closing_sections(b: _Build) -> list[_Block]:
    """"Tables as files", "The run", "Inputs not found" and "Configuration"."""
    run, blocks = b.run, []
    files = [(k, k) for k in b.metrics_files if (b.root / k).is_file()]
    if run.time_risk is not None:
        files.append(("time_risk.csv", "time_risk.csv"))
    files += [(k, k) for k in sorted(b.written) if k.startswith("tables/") and k not in b.metrics_files]
    if files:
        blocks += [_Block("h2", "Tables as files"), _Block("links", links=files)]
    blocks += _run_blocks(run, b.effective_bench)
    if run.missing:
        blocks += [_Block("h2", "Inputs not found"),
                   _Block("p", "These optional files are not in the run directory, so the parts that "
                          "need them are left out: " + ", ".join(run.missing) + ".")]
    other = _other_info(run)
    if other:
        blocks += [_Block("h2", "Configuration"),
                   _Block("p", "Configuration and other run information (run.json):"),
                   _Block("pre", other, collapsed=True, summary="show the configuration")]
    return blocks


def _report_blocks(b: _Build) -> list[_Block]:
    """The whole document: results first (flagged strategies above them); the run, its
    diagnostics and configuration at the end."""
    return [
        *_health_blocks(b.run),
        *_performance_section(b),
        *_evidence_blocks(b.root),
        *_calendar_sections(b),
        *_budget_sections(b),
        *_time_risk_section(b),
        *_turnover_section(b),
        *_tearsheet_section(b),
        *_closing_sections(b),
    ]


_TITLE = "Dynamic risk budgeting: comparison report"


def _build_report(
    run_dir: str | os.PathLike[str],
    *,
    tearsheets: bool,
    window: object,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    benchmark: str | None,
    n_jobs: int,
    embed_tearsheets: bool,
    timings: dict[str, float] | None,
    progress: bool,
    workers: Any,
    started: float,
) -> dict[str, Path]:
    run = load_run(run_dir)
    _check_window(run, window, lo, hi)
    b = _Build(run=run, tearsheets=tearsheets, window=window, lo=lo, hi=hi, benchmark=benchmark, clock=started)
    b.lap("load")
    _metrics_step(b)
    _tables_step(b)
    _figures_step(b, n_jobs=n_jobs, progress=progress, workers=workers)
    blocks = _report_blocks(b)
    root = b.root
    b.written["report.md"] = atomic_write_text(root / "report.md", _md(blocks, _TITLE))
    b.written["report.html"] = atomic_write_text(
        root / "report.html", _html(blocks, _TITLE, root, embed_tearsheets=embed_tearsheets))
    b.lap("report")
    _record_report_seconds(root, time.perf_counter() - started)
    if timings is not None:
        timings.update(b.stamps)
    return b.written
