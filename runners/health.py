"""Run health: one summary of what went wrong or stood in, per strategy (issues 13 and 14).

A comparison ends with ONE summary on the console (stderr), stored as ``health`` in ``run.json`` and
shown at the top of the report when a strategy crosses a warning threshold. Per strategy it counts:

* ``failed_fits`` of ``refits`` (risk-model refits; the dynamic model only);
* ``solver_fallbacks`` (a solver failed and the logged fallback chain stood in);
* ``covariance_shrunk`` (rebalances of a covariance baseline decided on a Ledoit-Wolf estimate);
* ``stand_in_days``: bars on which a stand-in signal was used (``cycle``: the price proxy for the
  macro leading indicators; ``vol``: the EGARCH equity volatility for the volatility index);
* ``rc_miss_share``: the share of invested days on which the portfolio's relative risk
  contributions miss its risk budget by more than 20 points for some asset (strategies with a
  budget only);
* ``warnings``: the distinct warnings the strategy raised.

A strategy is flagged (``flags``, one console ``WARNING`` line each, and the report's top section)
when failed fits exceed 5% of refits, when any solver fell back, or when its risk contributions
miss its budget by more than 20 points on more than 10% of days. Forward-filled price cells are
a property of the data, reported once (``data.forward_filled_cells``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["THRESHOLDS", "strategy_health", "run_health", "console_lines", "report_warnings"]

#: Warning thresholds (decimals): failed fits per refit, budget miss (points), share of days missed.
THRESHOLDS: dict[str, float] = {"failed_fit_share": 0.05, "rc_miss_points": 0.20, "rc_miss_days": 0.10}


def _rc_miss_share(result: Any) -> float | None:
    """Share of invested days with max_i |RC_i - b_i| > 20 points (None without a budget)."""
    budgets = getattr(result, "budgets", None)
    rc = getattr(result, "risk_contributions", None)
    if budgets is None or rc is None or not len(budgets) or not len(rc):
        return None
    cols = [f"smoothed_{a}" for a in rc.columns]
    if not set(cols) <= set(budgets.columns):
        return None
    b = budgets[cols].set_axis(list(rc.columns), axis=1).reindex(rc.index)
    start = result.returns.index[0] if len(result.returns) else None
    if start is not None:
        rc, b = rc.loc[start:], b.loc[start:]
    gap = (rc.astype(float) - b.astype(float)).abs().max(axis=1, skipna=False)
    ok = gap.notna()
    if not ok.any():
        return None
    return float((gap[ok] > THRESHOLDS["rc_miss_points"]).mean())


def _stand_in_days(result: Any) -> dict[str, int]:
    budgets = getattr(result, "budgets", None)
    out: dict[str, int] = {}
    if budgets is None or not len(budgets):
        return out
    for key, col, value in (("cycle", "cycle_source", "price_proxy"), ("vol", "vol_source", "egarch_equity")):
        if col in budgets.columns:
            n = int((budgets[col] == value).sum())
            if n:
                out[key] = n
    return out


def strategy_health(result: Any) -> dict[str, Any]:
    """Health counters and flags of one :class:`runners.engine.cerebro.StrategyResult`."""
    info = result.info
    refits = int(info.get("risk_model_refits", 0) or 0)
    failed = int(info.get("risk_model_failed_fits", 0) or 0)
    h: dict[str, Any] = {
        "refits": refits,
        "failed_fits": failed,
        "failed_fit_share": failed / refits if refits else None,
        "solver_fallbacks": int(info.get("solver_fallbacks", 0) or 0),
        "covariance_shrunk": int(info.get("covariance_shrunk", 0) or 0),
        "stand_in_days": _stand_in_days(result),
        "rc_miss_share": _rc_miss_share(result),
        "warnings": list(info.get("warnings", [])),
    }
    flags = []
    if h["failed_fit_share"] is not None and h["failed_fit_share"] > THRESHOLDS["failed_fit_share"]:
        flags.append(f"failed fits {failed} of {refits} refits ({h['failed_fit_share']:.1%} > 5%)")
    if h["solver_fallbacks"]:
        flags.append(f"solver fell back {h['solver_fallbacks']} times")
    if h["rc_miss_share"] is not None and h["rc_miss_share"] > THRESHOLDS["rc_miss_days"]:
        flags.append(f"risk contributions miss the budget by > 20 points on {h['rc_miss_share']:.1%} of days (> 10%)")
    h["flags"] = flags
    return h


def _forward_filled(notes: list[str]) -> int:
    total = 0
    for note in notes:
        m = re.search(r"forward-filled (\d+)", note)
        if m:
            total += int(m.group(1))
    return total


def run_health(results: Mapping[str, Any], notes: list[str] | None = None) -> dict[str, Any]:
    """The ``health`` object of ``run.json``: per strategy, the data's fills, thresholds, flagged names."""
    per = {name: strategy_health(r) for name, r in results.items()}
    return {
        "strategies": per,
        "data": {"forward_filled_cells": _forward_filled(list(notes or [])), "notes": list(notes or [])},
        "thresholds": dict(THRESHOLDS),
        "flagged": [n for n, h in per.items() if h["flags"]],
    }


def _counts(h: Mapping[str, Any]) -> list[str]:
    parts = []
    if h.get("refits"):
        parts.append(f"failed fits {h['failed_fits']}/{h['refits']}")
    if h.get("solver_fallbacks"):
        parts.append(f"solver fallbacks {h['solver_fallbacks']}")
    if h.get("covariance_shrunk"):
        parts.append(f"shrunk covariance at {h['covariance_shrunk']} rebalances")
    for key, n in (h.get("stand_in_days") or {}).items():
        parts.append(f"stand-in {key} signal on {n} bars")
    if h.get("rc_miss_share"):
        parts.append(f"budget missed by > 20 points on {h['rc_miss_share']:.1%} of days")
    return parts


def console_lines(health: Mapping[str, Any]) -> list[str]:
    """The end-of-run summary: one line per strategy with anything to say, flagged ones first."""
    per = health.get("strategies", {})
    flagged = [n for n in per if per[n].get("flags")]
    lines = [f"run health: {len(flagged)} of {len(per)} strategies flagged"]
    for name in flagged:
        lines.append(f"  WARNING {name}: {'; '.join(per[name]['flags'])}")
    quiet = []
    for name, h in per.items():
        if name in flagged:
            continue
        parts = _counts(h)
        if parts:
            lines.append(f"  {name}: {'; '.join(parts)}")
        else:
            quiet.append(name)
    if quiet:
        lines.append(f"  clean: {', '.join(quiet)}")
    filled = health.get("data", {}).get("forward_filled_cells", 0)
    if filled:
        lines.append(f"  data: {filled} price cells forward-filled")
    return lines


def report_warnings(run_info: Mapping[str, Any]) -> list[str]:
    """One line per flagged strategy for the top of the report (empty when none, or no ``health``)."""
    health = run_info.get("health")
    if not isinstance(health, Mapping):
        return []
    per = health.get("strategies", {})
    if not isinstance(per, Mapping):
        return []
    return [f"{n}: {'; '.join(h['flags'])}" for n, h in per.items() if isinstance(h, Mapping) and h.get("flags")]
