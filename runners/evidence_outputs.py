"""Files of the evidence a comparison writes: ``significance.csv``, ``metrics_spans.csv``.

The statistics live in :mod:`runners.evidence`; this module only slices a run's returns into its
spans, calls them and writes the files (atomically). Called once by
:func:`runners.compare.write_outputs`; the dictionary it returns becomes ``run.json``'s
``evidence`` entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from runners.evidence import (
    DEFAULT_REPS,
    JOINT_REPS,
    SIGNIFICANCE_COLUMNS,
    as_jsonable,
    default_primary,
    joint_tests,
    pairwise_significance,
    split_returns,
)
from runners.io import atomic_to_csv

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
                "method": "stationary block bootstrap of paired daily returns (runners.evidence)",
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
    """The hook of :func:`runners.compare.write_outputs`: :func:`write_evidence` from a run's results."""
    from runners.compare import _rebalances_frame, _returns_frame
    from runners.metrics import extreme_months

    eq = [a for a, c in market.asset_classes.items() if c == "equity"]
    mask = extreme_months(market.prices[eq[0]]) if eq else None
    return write_evidence(
        out,
        _returns_frame(results),
        benchmark=benchmark,
        risk_free=float(config.risk_free),
        seed=int(config.seed),
        primary=getattr(config, "primary", None),
        holdout_start=getattr(config, "holdout_start", None),
        rebalances=_rebalances_frame(results),
        extreme_mask=mask,
    )


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
