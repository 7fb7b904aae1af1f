"""Report tables: the metrics table, the budget adjustment log (paper's Table 1), per-year returns,
and the trigger log summary -- as DataFrames, Markdown and CSV.

Markdown is rendered here (no ``tabulate`` dependency). Number formats in Markdown: returns,
volatilities, drawdowns, turnover, win rate and CVaR in percent; ratios with two decimals; NaN as
``n/a``; infinities as ``inf`` / ``-inf``. CSV files keep full-precision decimals.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError
from drb.io import atomic_to_csv, atomic_write_text
from runners.markdown import (
    METRIC_LABELS,
    PERCENT_METRICS,
    FormattedTable,
    format_table,
    format_value,
    metrics_formatted,
    metrics_markdown,
    to_markdown,
)
from runners.metrics import METRIC_COLUMNS, monthly_returns

__all__ = [
    "FormattedTable",
    "format_table",
    "metrics_formatted",
    "budget_log_formatted",
    "per_year_formatted",
    "trigger_formatted",
    "METRIC_LABELS",
    "PERCENT_METRICS",
    "format_value",
    "to_markdown",
    "metrics_markdown",
    "write_metrics_table",
    "parse_window",
    "budget_adjustment_log",
    "infer_decision_lag",
    "budget_log_markdown",
    "per_year_returns",
    "per_year_markdown",
    "trigger_summary",
    "trigger_markdown",
    "write_table",
]

#: Regime label of days before the first regime is known (missing in budgets.csv).
WARMUP = "warm-up (no regime yet)"

_TRIGGER_TEXT = {
    "initial": "initial investment",
    "periodic": "periodic (scheduled)",
    "regime": "regime change",
    "eigenvalue": "correlation eigenvalue shift",
    "rc_deviation": "risk-contribution deviation",
}


# ----------------------------------------------------------------------------- metrics


def write_metrics_table(metrics: pd.DataFrame, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``metrics.csv`` (full precision, raw column names) and ``metrics.md``.

    Returns
    -------
    dict
        ``{"metrics.csv": path, "metrics.md": path}``.
    """
    from runners.rundir import write_metrics_csv

    return write_metrics_csv(out_dir, metrics, metrics_markdown(metrics[list(METRIC_COLUMNS)]), exact=True)


# ----------------------------------------------------------------------------- budget log


def parse_window(window: object) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Normalize a date window.

    Parameters
    ----------
    window : None, str ``"START:END"`` (either side may be empty) or a (start, end) pair
        Dates in any format :func:`pandas.Timestamp` accepts (ISO recommended). Both ends are
        inclusive.

    Returns
    -------
    (start, end) : tuple of Timestamp or None

    Raises
    ------
    ConfigError
        Unparseable window, or start after end.
    """
    if window is None:
        return None, None
    if isinstance(window, str):
        if ":" not in window:
            raise ConfigError(f"window must look like START:END (e.g. 2024-04-01:2024-06-30), got {window!r}")
        parts = window.split(":")
        if len(parts) != 2:
            raise ConfigError(f"window must have exactly one ':' separating START and END, got {window!r}")
        raw = [p.strip() or None for p in parts]
    else:
        try:
            raw = list(window)  # type: ignore[call-overload]
        except TypeError:
            raise ConfigError(f"window must be 'START:END' or a (start, end) pair, got {window!r}") from None
        if len(raw) != 2:
            raise ConfigError(f"window must have two ends, got {window!r}")
    out: list[pd.Timestamp | None] = []
    for r in raw:
        if r is None:
            out.append(None)
            continue
        try:
            out.append(pd.Timestamp(r).tz_localize(None) if pd.Timestamp(r).tz else pd.Timestamp(r))
        except (ValueError, TypeError):
            raise ConfigError(f"window: {r!r} is not a date") from None
    start, end = out
    if start is not None and end is not None and start > end:
        raise ConfigError(f"window: start {start.date()} is after end {end.date()}")
    return start, end


def _describe_trigger(trigger: str, prev_regime: str | None, regime: str | None) -> str:
    parts = []
    for t in str(trigger).split("+"):
        t = t.strip()
        if t == "regime" and prev_regime and regime and prev_regime != regime:
            parts.append(f"regime change {prev_regime} → {regime}")
        else:
            parts.append(_TRIGGER_TEXT.get(t, t))
    return " + ".join(parts)


def _budget_frame(budgets: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    b = budgets.copy()
    if "date" in b.columns:
        b = b.set_index("date")
    b.index = pd.DatetimeIndex(pd.to_datetime(b.index)).normalize()
    b = b.sort_index()
    assets = [c[len("smoothed_"):] for c in b.columns if c.startswith("smoothed_")]
    if not assets or "regime" not in b.columns:
        raise DataError("budgets: need a 'regime' column and 'smoothed_<asset>' columns")
    return b, assets


def _budget_changed(b: pd.DataFrame, assets: Sequence[str]) -> np.ndarray:
    """Per day: did the smoothed budget change since the day before (first day: False)."""
    sm = b[[f"smoothed_{a}" for a in assets]].astype(float).to_numpy()
    out = np.zeros(len(sm), dtype=bool)
    if len(sm) > 1:
        out[1:] = np.nanmax(np.abs(np.diff(sm, axis=0)), axis=1) > 1e-12
    return out


def infer_decision_lag(budgets: pd.DataFrame, rebalances: pd.DataFrame, strategy: str = "DynamicRiskBudget") -> int:
    """Bars between the decision of a rebalance and the date ``rebalances.csv`` gives it.

    ``budgets.csv`` records the smoothed budget on the bar it was decided (at that bar's close);
    ``rebalances.csv`` records the bar the trades filled. With backtrader's cheat-on-open (the
    packaged runner) orders decided at a close fill at the next open, one bar later; with
    cheat-on-close they fill on the decision bar. The lag is read from the data: 1 if the
    smoothed budget changed on the bar *before* more of the strategy's rebalance dates than on
    the rebalance dates themselves, else 0.

    Parameters
    ----------
    budgets : pandas.DataFrame
        ``budgets.csv`` (``date`` column or DatetimeIndex, ``regime``, ``smoothed_<asset>``).
    rebalances : pandas.DataFrame
        ``rebalances.csv`` (``date``, ``strategy``).
    strategy : str, default "DynamicRiskBudget"

    Returns
    -------
    int
        0 or 1 (0 when the strategy has no rebalance).
    """
    b, assets = _budget_frame(budgets)
    changed = _budget_changed(b, assets)
    reb = rebalances[rebalances["strategy"].astype(str) == strategy]
    if reb.empty:
        return 0
    days = pd.DatetimeIndex(pd.to_datetime(reb["date"])).normalize().unique()
    pos = b.index.searchsorted(days, side="right") - 1
    pos = pos[pos >= 0]
    same = int(changed[pos].sum())
    before = int(changed[pos[pos >= 1] - 1].sum())
    return 1 if before > same else 0


def budget_adjustment_log(
    budgets: pd.DataFrame,
    rebalances: pd.DataFrame,
    *,
    start: object = None,
    end: object = None,
    strategy: str = "DynamicRiskBudget",
    include_regime_events: bool = True,
    decision_lag: int | None = None,
) -> pd.DataFrame:
    """The budget adjustment log in the shape of the paper's Table 1.

    Rows, in date order:

    - the budget in force when the window opens (``in force at window start``: end of the day
      before the window's first day; the first day itself if the run starts inside the window);
    - one row per rebalance of ``strategy`` decided inside the window: the trigger(s) that fired,
      spelled out, with the regime transition when one fired (or happened that day) and the day
      its trades were executed;
    - one row per change of the smoothed budget without an executed trade (the rebalance came to
      no order), so every budget change is in the log;
    - with ``include_regime_events``, one row per regime change that did *not* lead to a
      rebalance (e.g. inside the cooldown), where the budget in force is unchanged.

    ``date`` is the bar whose close the decision was taken at (signals known then; the budgets of
    ``budgets.csv`` change on that bar); ``executed`` the bar the trades filled, as in
    ``rebalances.csv`` (the next open under the packaged runner's cheat-on-open). Budgets are the
    smoothed budgets b(t) in force at the end of ``date``, in percent.

    Parameters
    ----------
    budgets : pandas.DataFrame
        ``budgets.csv``: ``date`` column or DatetimeIndex, ``regime``, ``smoothed_<asset>``.
    rebalances : pandas.DataFrame
        ``rebalances.csv``: ``date``, ``strategy``, ``trigger``.
    start, end : date-like, optional
        Inclusive window on the decision date; default the whole run.
    strategy : str, default "DynamicRiskBudget"
    include_regime_events : bool, default True
    decision_lag : int, optional
        Bars from decision to execution (0 or more); default :func:`infer_decision_lag`.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (Timestamp), ``executed`` (Timestamp, NaT for rows without trades),
        ``event`` (str), ``regime`` (str), then one column per asset named after it: the budget
        in percent (35.0 = 35 %).

    Raises
    ------
    DataError
        Missing columns; ConfigError for a bad window or lag.
    """
    b, assets = _budget_frame(budgets)
    missing = {"date", "strategy", "trigger"} - set(rebalances.columns)
    if missing:
        raise DataError(f"rebalances: missing column(s) {sorted(missing)}")
    if decision_lag is None:
        decision_lag = infer_decision_lag(b, rebalances, strategy)
    if not isinstance(decision_lag, int | np.integer) or decision_lag < 0:
        raise ConfigError(f"decision_lag must be a non-negative integer, got {decision_lag!r}")
    lo, hi = parse_window((start, end))
    lo = lo if lo is not None else b.index[0]
    hi = hi if hi is not None else b.index[-1]
    columns = ["date", "executed", "event", "regime", *assets]
    decided = _decisions(b, rebalances, strategy, int(decision_lag))
    inside = np.flatnonzero((b.index >= lo) & (b.index <= hi))
    if inside.size == 0:
        return pd.DataFrame(columns=columns)
    rows = _log_rows(b, assets, decided, inside, include_regime_events)
    out = pd.DataFrame(rows, columns=columns)
    out["executed"] = pd.to_datetime(out["executed"])
    return out.reset_index(drop=True)


def _decisions(b: pd.DataFrame, rebalances: pd.DataFrame, strategy: str,
               decision_lag: int) -> dict[int, tuple[pd.Timestamp, str]]:
    """Decision bar (position in ``b``) -> (fill day, trigger(s)) of ``strategy``'s rebalances:
    the recorded decision date (``decided``), else ``decision_lag`` bars before the fill."""
    reb = rebalances[rebalances["strategy"].astype(str) == strategy].copy()
    reb["date"] = pd.DatetimeIndex(pd.to_datetime(reb["date"])).normalize()
    if "decided" in reb.columns:  # the decision date, as the runners record it
        reb["decided"] = pd.DatetimeIndex(pd.to_datetime(reb["decided"])).normalize()
    else:
        reb["decided"] = pd.NaT
    by_exec = reb.groupby("date", sort=True).agg(
        trigger=("trigger", lambda s: "+".join(dict.fromkeys(t for x in s for t in str(x).split("+")))),
        decided=("decided", "min"),
    )
    decided: dict[int, tuple[pd.Timestamp, str]] = {}
    for day, (trig, when) in by_exec.iterrows():
        if pd.notna(when):
            p = int(b.index.searchsorted(when, side="right")) - 1
        else:
            p = int(b.index.searchsorted(day, side="right")) - 1 - decision_lag
        p = max(p, 0)
        if p in decided:  # two fills mapped to one decision (e.g. a retried order): keep both
            first_day, first_trig = decided[p]
            trig = "+".join(dict.fromkeys([*first_trig.split("+"), *str(trig).split("+")]))
            day = first_day
        decided[p] = (day, str(trig))
    return decided


def _earlier_regime_change(b: pd.DataFrame, regimes: list[str | None], p: int, last_decision: int) -> str | None:
    """Text of the last regime change after the previous decision and before bar ``p``, if any."""
    q = p - 1
    while q > last_decision and not (
            regimes[q] is not None and regimes[q - 1] is not None and regimes[q] != regimes[q - 1]):
        q -= 1
    if q > last_decision and q >= 1:
        return f"regime change {regimes[q - 1]} → {regimes[q]} (on {b.index[q].date()})"
    return None


def _log_rows(b: pd.DataFrame, assets: list[str], decided: dict[int, tuple[pd.Timestamp, str]],
              inside: np.ndarray, include_regime_events: bool) -> list[dict]:
    """Rows of :func:`budget_adjustment_log` for the bars ``inside`` the window."""
    # missing regime = estimator warm-up; keep it missing (the end of the warm-up is no "change")
    regimes = [None if pd.isna(v) else str(v) for v in b["regime"].tolist()]
    changed = _budget_changed(b, assets)
    smoothed = 100.0 * b[[f"smoothed_{a}" for a in assets]].astype(float).to_numpy()
    rows = []
    first = int(inside[0])
    anchor = first - 1 if first > 0 else first
    if not (first == 0 and first in decided):
        rows.append({"date": b.index[anchor], "executed": pd.NaT, "event": "in force at window start",
                     "regime": regimes[anchor] or WARMUP, **dict(zip(assets, smoothed[anchor]))})
    earlier = [d for d in decided if d < first]
    last_decision = max(earlier) if earlier else 0
    for p in map(int, inside):
        prev = regimes[p - 1] if p > 0 else None
        reg = regimes[p]
        regime_changed = prev is not None and reg is not None and prev != reg
        executed: object = pd.NaT
        if p in decided:
            executed, trig = decided[p]
            event = _describe_trigger(trig, prev, reg)
            if "regime" in trig.split("+") and not regime_changed:
                # the change came on an earlier bar (e.g. inside the cooldown): name it
                before = _earlier_regime_change(b, regimes, p, last_decision)
                if before is not None:
                    event = event.replace(_TRIGGER_TEXT["regime"], before, 1)
            last_decision = p
            if "regime" not in trig.split("+") and regime_changed:
                event += f" (regime {prev} → {reg})"
        elif changed[p]:
            event = "budget updated, no trade executed"
            if regime_changed:
                event = f"regime change {prev} → {reg}; " + event
        elif include_regime_events and regime_changed:
            event = f"regime change {prev} → {reg} (no rebalance decided; budget unchanged)"
        else:
            continue
        rows.append({"date": b.index[p], "executed": executed, "event": event, "regime": reg or WARMUP,
                     **dict(zip(assets, smoothed[p]))})
    return rows


def budget_log_formatted(log: pd.DataFrame) -> FormattedTable:
    """:func:`budget_adjustment_log` formatted (ISO dates, budgets in % with one decimal)."""
    shown = log.copy()
    shown["date"] = pd.DatetimeIndex(shown["date"]).strftime("%Y-%m-%d")
    if "executed" in shown.columns:
        ex = pd.DatetimeIndex(shown["executed"])
        shown["executed"] = ["" if pd.isna(d) else d.strftime("%Y-%m-%d") for d in ex]
    assets = [c for c in shown.columns if c not in {"date", "executed", "event", "regime"}]
    for a in assets:
        shown[a] = ["n/a" if np.isnan(v) else f"{v:.1f}" for v in shown[a].astype(float)]
    headers = {"date": "Date", "executed": "Executed", "event": "Trigger / event",
               "regime": "Regime", **{a: f"{a} budget (%)" for a in assets}}
    fmt = format_table(shown, index=False, headers=headers)
    # budgets are right-aligned numbers even though they are pre-formatted strings here
    numeric = tuple(c in assets for c in shown.columns)
    return FormattedTable(fmt.headers, numeric, fmt.rows)


def budget_log_markdown(log: pd.DataFrame) -> str:
    """Markdown of :func:`budget_adjustment_log`."""
    return budget_log_formatted(log).markdown()


# ----------------------------------------------------------------------------- per-year returns


def per_year_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Calendar-year returns per strategy (compounded daily returns).

    Parameters
    ----------
    returns : pandas.DataFrame, shape (n_days, n_strategies)
        Daily simple returns, DatetimeIndex.

    Returns
    -------
    pandas.DataFrame
        Index ``year`` (int); one column per strategy (decimal; NaN where the strategy has no day
        in the year); a final column ``days``: trading days of the run in that year (a partial
        first/last year shows fewer days).
    """
    if returns.empty:
        raise DataError("returns: empty")
    idx = pd.DatetimeIndex(returns.index)
    out = {}
    for name in returns.columns:
        m = monthly_returns(returns[name])
        if m.empty:
            out[name] = pd.Series(dtype=float)
            continue
        years = m.index.year
        out[name] = np.expm1(np.log1p(m.astype(float)).groupby(years).sum())
    table = pd.DataFrame(out)
    all_years = sorted(set(idx[returns.notna().any(axis=1).to_numpy()].year))
    table = table.reindex(all_years)
    days = pd.Series(idx[returns.notna().any(axis=1).to_numpy()].year).value_counts()
    table["days"] = [int(days.get(y, 0)) for y in all_years]
    table.index.name = "year"
    return table


def per_year_formatted(table: pd.DataFrame) -> FormattedTable:
    """:func:`per_year_returns` formatted (percent with one decimal)."""
    formats = {c: "pct" for c in table.columns if c != "days"}
    formats["days"] = "int"
    return format_table(table, formats, index_label="Year", headers={"days": "Trading days"})


def per_year_markdown(table: pd.DataFrame) -> str:
    """Markdown of :func:`per_year_returns`."""
    return per_year_formatted(table).markdown()


# ----------------------------------------------------------------------------- trigger log


def trigger_summary(rebalances: pd.DataFrame, strategies: Sequence[str] | None = None) -> pd.DataFrame:
    """Count rebalances per strategy and trigger (a combined trigger ``a+b`` counts for both).

    Parameters
    ----------
    rebalances : pandas.DataFrame
        ``rebalances.csv``: ``strategy``, ``trigger``, ``turnover``, ``cost``.
    strategies : sequence of str, optional
        Row order (strategies without rebalances get zeros).

    Returns
    -------
    pandas.DataFrame
        Index ``strategy``; columns ``rebalances`` (executed rebalances, initial included), one
        column per trigger kind (count), ``turnover_<kind>`` (summed one-way turnover of the
        rebalances that kind was part of, decimal), ``mean_turnover`` (decimal, initial excluded) and
        ``total_cost``: the sum of ``rebalances.csv``'s ``cost`` (commission of each rebalance as a
        fraction of the portfolio value then; 0.005 = 0.5 % of value over the run), initial
        investment included.
    """
    missing = {"strategy", "trigger", "turnover"} - set(rebalances.columns)
    if missing:
        raise DataError(f"rebalances: missing column(s) {sorted(missing)}")
    names = list(strategies) if strategies is not None else list(dict.fromkeys(rebalances["strategy"].astype(str)))
    kinds = [k for k in _TRIGGER_TEXT if k != "initial"]
    extra = sorted({t for x in rebalances["trigger"].astype(str) for t in x.split("+")} - set(_TRIGGER_TEXT))
    rows = {}
    for s in names:
        sub = rebalances[rebalances["strategy"].astype(str) == s]
        trig = sub["trigger"].astype(str).str.split("+")
        row: dict[str, float] = {"rebalances": float(len(sub))}
        for k in [*kinds, *extra]:
            row[k] = float(sum(k in t for t in trig))
        not_initial = sub[sub["trigger"].astype(str) != "initial"]
        row["mean_turnover"] = float(not_initial["turnover"].mean()) if len(not_initial) else float("nan")
        row["total_cost"] = float(sub["cost"].sum()) if "cost" in sub.columns else float("nan")
        turn = sub["turnover"].astype(float).to_numpy()
        for k in [*kinds, *extra]:
            # One-way turnover of the rebalances the trigger was part of (initial excluded).
            row[f"turnover_{k}"] = float(sum(x for t, x in zip(trig, turn) if k in t))
        rows[s] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "strategy"
    return table


def trigger_formatted(table: pd.DataFrame) -> FormattedTable:
    """:func:`trigger_summary` formatted."""
    formats: dict[str, str] = {c: "int" for c in table.columns}
    formats["mean_turnover"] = "pct2"
    for c in table.columns:
        if str(c).startswith("turnover_"):
            formats[c] = "pct2"
    formats["total_cost"] = "pct2"
    headers = {"rebalances": "Rebalances", "mean_turnover": "Mean turnover",
               "total_cost": "Total cost (% of value)",
               **{k: v for k, v in _TRIGGER_TEXT.items()},
               **{f"turnover_{k}": f"turnover: {k}" for k in _TRIGGER_TEXT}}
    return format_table(table, formats, index_label="Strategy", headers=headers)


def trigger_markdown(table: pd.DataFrame) -> str:
    """Markdown of :func:`trigger_summary`."""
    return trigger_formatted(table).markdown()


def write_table(
    frame: pd.DataFrame,
    markdown: Callable[[pd.DataFrame], str],
    out_dir: str | os.PathLike[str],
    stem: str,
    *,
    index: bool = True,
) -> dict[str, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` of a table atomically; returns both paths."""
    out = Path(out_dir)
    csv = frame.copy()
    for col in ("date", "executed"):
        if col in csv.columns:
            csv[col] = pd.DatetimeIndex(csv[col]).strftime("%Y-%m-%d")
    return {
        f"{stem}.csv": atomic_to_csv(csv, out / f"{stem}.csv", index=index),
        f"{stem}.md": atomic_write_text(out / f"{stem}.md", markdown(frame)),
    }
