"""Files of the evidence a comparison writes: ``significance.csv``, ``metrics_spans.csv``.

The statistics live in :mod:`runners.experiments.evidence`; this module only slices a run's returns into its
spans, calls them and writes the files (atomically). Called once by
:func:`runners.experiments.compare.write_outputs`; the dictionary it returns becomes ``run.json``'s
``evidence`` entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from drb.io import atomic_to_csv
from runners.experiments.evidence import (
    DEFAULT_REPS,
    JOINT_REPS,
    SIGNIFICANCE_COLUMNS,
    as_jsonable,
    default_primary,
    joint_tests,
    pairwise_significance,
    split_returns,
)

#: Column of a sweep grid point's part file holding its daily returns (not written to sweep.csv).
RETURNS_COLUMN = "daily_returns"

__all__ = ["write_evidence", "span_metrics"]


def span_metrics(
    returns: pd.DataFrame,
    rebalances: pd.DataFrame,
    spans: dict[str, pd.DataFrame],
    *,
    benchmark: str | None,
    risk_free: float,
    extreme_mask: pd.Series | None,
) -> pd.DataFrame:
    """The metrics table of every span, long format: ``span, strategy`` + the metrics columns.

    Turnover of a span counts the rebalances dated inside it over the span's years.
    """
    from runners.metrics import annualized_turnover, compute_metrics

    frames = []
    for span, rets in spans.items():
        rets = rets.dropna(how="all")
        if rets.empty:
            continue
        first, last = rets.index[0], rets.index[-1]
        dates = pd.to_datetime(rebalances["date"]) if len(rebalances) else pd.Series(dtype="datetime64[ns]")
        reb = rebalances[(dates >= first) & (dates <= last)] if len(rebalances) else rebalances
        to = annualized_turnover(reb, rets)
        m = compute_metrics(rets, turnover=to, benchmark=benchmark, extreme_mask=extreme_mask, risk_free=risk_free)
        frames.append(m.reset_index().assign(span=span))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["span", *[c for c in out.columns if c != "span"]]]


def write_evidence(
    out: Path,
    returns: pd.DataFrame,
    *,
    benchmark: str | None,
    risk_free: float,
    seed: int,
    primary: str | None = None,
    holdout_start: pd.Timestamp | None = None,
    rebalances: pd.DataFrame | None = None,
    extreme_mask: pd.Series | None = None,
) -> dict[str, Any]:
    """Write ``significance.csv`` (and ``metrics_spans.csv`` for a split run); return run.json's part.

    Parameters
    ----------
    out : Path
        Run folder.
    returns : pandas.DataFrame
        Daily returns, one column per strategy (``returns.csv``).
    benchmark : str, optional
        The run's benchmark (primary when DynamicRiskBudget is not run and ``primary`` is None).
    risk_free : float
        Annual risk-free rate.
    seed : int
        Seed of every bootstrap.
    primary : str, optional
        ``[run] primary``.
    holdout_start : Timestamp, optional
        ``[run] holdout_start``: split every table into ``in_sample`` / ``holdout`` / ``full``.
    rebalances, extreme_mask
        For the per-span metrics (turnover, extreme months).

    Returns
    -------
    dict
        JSON-ready: primary, method, block lengths per span and pair, joint tests per span.
    """
    prim = default_primary(list(returns.columns), benchmark, primary)
    spans = split_returns(returns, holdout_start)
    tables, info_spans = [], {}
    for span, rets in spans.items():
        rets = rets.dropna(how="all")
        table, blocks = pairwise_significance(rets, prim, seed=seed, risk_free=risk_free)
        if holdout_start is not None:
            table["span"] = span
        tables.append(table)
        info_spans[span] = {
            "start": str(rets.index[0].date()) if len(rets) else None,
            "end": str(rets.index[-1].date()) if len(rets) else None,
            "days": len(rets),
            "block_lengths": blocks,
            "joint": joint_tests(rets, prim, seed=seed),
        }
    cols = [*SIGNIFICANCE_COLUMNS, *(["span"] if holdout_start is not None else [])]
    sig = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols)
    atomic_to_csv(sig[cols], out / "significance.csv", index=False, float_format="%.6g")
    if holdout_start is not None:
        reb = rebalances if rebalances is not None else pd.DataFrame(columns=["date", "strategy", "trigger", "turnover"])
        sm = span_metrics(returns, reb, spans, benchmark=benchmark, risk_free=risk_free, extreme_mask=extreme_mask)
        atomic_to_csv(sm, out / "metrics_spans.csv", index=False, float_format="%.6f")
    return as_jsonable(
        {
            "primary": prim,
            "holdout_start": str(pd.Timestamp(holdout_start).date()) if holdout_start is not None else None,
            "pairwise": {
                "method": "stationary block bootstrap of paired daily returns (runners.experiments.evidence)",
                "statistic": "annualized Sharpe of primary minus annualized Sharpe of versus",
                "interval": "95% percentile interval",
                "p_value": "(1 + #{|d*_b - d| >= |d|}) / (1 + B), two-sided, bootstrap centred on the null",
                "block_length_rule": "max arch.bootstrap.optimal_block_length 'stationary' of the pair, ceil, in [1, T/4]",
                "reps": DEFAULT_REPS,
                "seed": int(seed),
            },
            "joint_reps": JOINT_REPS,
            "spans": info_spans,
        }
    )


def write_evidence_for_run(out: Path, results: Any, market: Any, config: Any, benchmark: str | None) -> dict[str, Any]:
    """The hook of :func:`runners.experiments.compare.write_outputs`: :func:`write_evidence` from a run's results."""
    import time

    from runners.metrics import extreme_months
    from runners.rundir import rebalances_frame, returns_frame

    t0 = time.perf_counter()
    eq = [a for a, c in market.asset_classes.items() if c == "equity"]
    mask = extreme_months(market.prices[eq[0]]) if eq else None
    ev = write_evidence(
        out,
        returns_frame(results),
        benchmark=benchmark,
        risk_free=float(config.risk_free),
        seed=int(config.seed),
        primary=getattr(config, "primary", None),
        holdout_start=getattr(config, "holdout_start", None),
        rebalances=rebalances_frame(results),
        extreme_mask=mask,
    )
    ev["seconds"] = round(time.perf_counter() - t0, 3)
    return ev


def check_evidence_options(config: Any, names: list[str], benchmark: str | None, market: Any) -> None:
    """Fail before any strategy runs: ``run.primary`` must be run, ``run.holdout_start`` inside the data."""
    from drb.errors import ConfigError

    default_primary(names, benchmark, getattr(config, "primary", None))
    cut = getattr(config, "holdout_start", None)
    if cut is None:
        return
    idx = market.prices.index
    if not idx[0] < pd.Timestamp(cut) <= idx[-1]:
        raise ConfigError(
            f"run.holdout_start: {pd.Timestamp(cut).date()} is outside the data ({idx[0].date()} to {idx[-1].date()})"
        )


# ----------------------------------------------------------------------------- sweeps

#: Rows of ``sweep_summary.csv`` (``item, value``), in order.
SWEEP_SUMMARY_ITEMS: tuple[str, ...] = (
    "best_point",
    "n_trials",
    "sharpe_best",
    "sharpe_var",
    "skew",
    "kurtosis",
    "n_obs",
    "expected_max_sharpe",
    "deflated_sharpe",
    "pbo",
    "pbo_splits",
    "pbo_note",
)


def encode_returns(returns: pd.Series) -> str:
    """A point's daily returns as one CSV cell: ``"<first date>;r1,r2,..."`` (9 significant digits)."""
    r = returns.dropna()
    if r.empty:
        return ""
    return f"{r.index[0].date()};" + ",".join(f"{v:.9g}" for v in r.to_numpy(dtype=float))


def decode_returns(text: Any, calendar: pd.DatetimeIndex) -> pd.Series | None:
    """Inverse of :func:`encode_returns` on the market's ``calendar`` (None when unusable)."""
    if not isinstance(text, str) or ";" not in text:
        return None
    start, _, body = text.partition(";")
    values = [float(v) for v in body.split(",")] if body else []
    pos = calendar.searchsorted(pd.Timestamp(start))
    if pos + len(values) > len(calendar) or not values:
        return None
    return pd.Series(values, index=calendar[pos : pos + len(values)])


def write_sweep_evidence(
    out: Path, frames: Any, table: pd.DataFrame, calendar: pd.DatetimeIndex, *, risk_free: float = 0.0
) -> dict[str, Any]:
    """Deflated Sharpe ratio of the best point and PBO (CSCV) of the grid: ``sweep_summary.csv``.

    Parameters
    ----------
    out : Path
        Sweep folder.
    frames : sequence of DataFrame
        The grid points' part frames (``point`` and, when kept, ``daily_returns`` columns).
    table : DataFrame
        ``sweep.csv`` (``point``, ``sharpe``, ...).
    calendar : DatetimeIndex
        The market's dates.
    risk_free : float
        Annual risk-free rate.

    Returns
    -------
    dict
        The summary (``item -> value``, JSON-ready) with ``best_point``.
    """
    from runners.experiments.evidence import sweep_evidence

    if table.empty:
        return {}
    rets: dict[int, pd.Series] = {}
    for f in frames:
        if RETURNS_COLUMN in f.columns:
            for p, txt in zip(f["point"], f[RETURNS_COLUMN]):
                s = decode_returns(txt, calendar)
                if s is not None:
                    rets[int(p)] = s
    sharpe = table.set_index("point")["sharpe"].astype(float)
    best = int(sharpe.idxmax()) if sharpe.notna().any() else int(table["point"].iloc[0])
    trials = None
    if len(rets) == len(table) and best in rets:
        trials = pd.DataFrame(rets).dropna().to_numpy()
    best_r = rets[best].to_numpy() if best in rets else pd.Series(dtype=float).to_numpy()
    ev = sweep_evidence(sharpe.to_numpy(), best_r, risk_free=risk_free, trial_returns=trials)
    if best not in rets:
        ev["pbo_note"] = "daily returns of the points not kept (parts of an older run): rerun with --restart"
    ev = {"best_point": best, **{k: v for k, v in ev.items()}}
    frame = pd.DataFrame({"item": list(SWEEP_SUMMARY_ITEMS), "value": [ev.get(k) for k in SWEEP_SUMMARY_ITEMS]})
    atomic_to_csv(frame, out / "sweep_summary.csv", index=False)
    return as_jsonable(ev)


def sweep_evidence_markdown(ev: dict[str, Any]) -> list[str]:
    """The sweep.md section on multiple testing (plain words and the numbers)."""

    def f(k: str, d: int = 3) -> str:
        v = ev.get(k)
        return "n/a" if v is None else f"{v:.{d}f}"

    lines = ["## Is the best point better than luck?\n"]
    dsr = ev.get("deflated_sharpe")
    lines.append(
        f"Best point: {ev.get('best_point')} (annualized Sharpe {f('sharpe_best', 2)} over {ev.get('n_obs')} days). "
        f"With {ev.get('n_trials')} points tried and a variance of {f('sharpe_var', 4)} among their annualized "
        f"Sharpe ratios, the best of as many zero-skill points would be expected to reach "
        f"{f('expected_max_sharpe', 2)}; the deflated Sharpe ratio (Bailey and Lopez de Prado 2014, with the best "
        f"point's skewness {f('skew', 2)} and kurtosis {f('kurtosis', 2)}) is {f('deflated_sharpe')}: "
        + (
            "the probability that its true Sharpe ratio beats that bar"
            + (" (above 0.95: unlikely to be luck)." if dsr is not None and dsr > 0.95 else " (below 0.95: luck is not ruled out).")
        )
        + "\n"
    )
    if ev.get("pbo") is not None:
        lines.append(
            f"Probability of backtest overfitting (CSCV, {ev.get('pbo_splits')} blocks): {f('pbo', 2)}, the share of "
            "in-sample/out-of-sample splits in which the in-sample best point ranks at or below the median out of "
            "sample (0.5 is what pure noise gives; near 0 the choice carries over).\n"
        )
    else:
        lines.append(f"Probability of backtest overfitting: not computed ({ev.get('pbo_note')}).\n")
    return lines
