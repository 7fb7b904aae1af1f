"""The report section "Is it better?" (issue 15), from a run folder's saved files.

Reads ``significance.csv``, ``metrics_spans.csv`` and ``run.json``'s ``evidence`` entry (written by
:mod:`runners.experiments.evidence_outputs`); returns report parts ``(kind, text, table)`` that
:mod:`runners.report` renders like its other blocks. Nothing is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runners.experiments.evidence import MCS_SIZE, SPANS
from runners.report.tables import FormattedTable

__all__ = ["evidence_parts", "plain_words"]

_SPAN_NAMES = {"in_sample": "in-sample", "holdout": "held-out", "full": "whole run"}
Part = tuple[str, str, FormattedTable | None]


def _num(v: Any, d: int = 2) -> str:
    return "n/a" if v is None or not np.isfinite(float(v)) else f"{float(v):.{d}f}"


def plain_words(sig: pd.DataFrame, primary: str, level: float = 0.05) -> str:
    """One sentence on the pairwise tests of one span (e.g. "no baseline's Sharpe differs ...")."""
    if sig.empty:
        return f"No pairwise test could be run against {primary}."
    hit = sig[sig["p_value"] < level]
    pct = f"{level:.0%}"
    if hit.empty:
        return (f"No baseline's Sharpe ratio differs from {primary}'s at {pct} (smallest p-value "
                f"{sig['p_value'].min():.3f}, against {sig.loc[sig['p_value'].idxmin(), 'versus']}).")
    above = [f"{r.versus} ({r.sharpe_diff:+.2f}, p = {r.p_value:.3f})" for r in hit.itertuples() if r.sharpe_diff > 0]
    below = [f"{r.versus} ({r.sharpe_diff:+.2f}, p = {r.p_value:.3f})" for r in hit.itertuples() if r.sharpe_diff < 0]
    out = []
    if above:
        out.append(f"{primary}'s Sharpe ratio is higher than that of {', '.join(above)}")
    if below:
        out.append(f"{'it' if above else primary + chr(39) + 's Sharpe ratio'} is lower than that of {', '.join(below)}")
    rest = len(sig) - len(hit)
    tail = f"; the other {rest} difference(s) are not significant" if rest else ""
    return " and ".join(out) + f" at {pct}{tail}."


def _joint_words(joint: dict[str, Any], primary: str) -> str:
    spa, mcs = joint.get("spa"), joint.get("mcs")
    if not spa or not mcs:
        return str(joint.get("note", "joint tests not available"))
    p = spa["p_consistent"]
    verdict = ("some baseline has a higher mean daily return than the benchmark at 5%" if p < 0.05
               else "no baseline has a significantly higher mean daily return")
    return (f"Hansen's SPA test (benchmark {primary}, loss = negative daily return, {joint.get('reps')} "
            f"stationary-bootstrap replicates, mean block {_num(joint.get('block_length'), 0)} days): "
            f"p = {p:.3f} (lower {spa['p_lower']:.3f}, upper {spa['p_upper']:.3f}), so {verdict}. "
            f"{1 - mcs.get('size', MCS_SIZE):.0%} model confidence set (same loss): "
            f"{', '.join(mcs['included'])}" + (f"; excluded: {', '.join(mcs['excluded'])}." if mcs["excluded"] else
                                               "; no strategy is excluded."))


def _pairwise_table(sig: pd.DataFrame, spans: list[str]) -> FormattedTable:
    heads, rows = ["Versus"], []
    for s in spans:
        name = _SPAN_NAMES.get(s, s)
        heads += [f"Sharpe diff ({name})", f"95% CI ({name})", f"p ({name})"]
    for versus in dict.fromkeys(sig["versus"]):
        row = [str(versus)]
        for s in spans:
            r = sig[(sig["versus"] == versus) & (sig["span"] == s)]
            if r.empty:
                row += ["n/a"] * 3
                continue
            r = r.iloc[0]
            row += [f"{r.sharpe_diff:+.2f}", f"[{_num(r.ci_low)}, {_num(r.ci_high)}]", f"{r.p_value:.3f}"]
        rows.append(tuple(row))
    return FormattedTable(tuple(heads), (False, *([True] * (len(heads) - 1))), tuple(rows))


def _spans_table(ms: pd.DataFrame, spans: list[str]) -> FormattedTable:
    cols = [("ann_return", "Ann. return", 1), ("ann_vol", "Ann. vol", 1), ("sharpe", "Sharpe", None),
            ("max_drawdown", "Max DD", 1)]
    heads = ["Strategy"] + [f"{label} ({_SPAN_NAMES.get(s, s)})" for _, label, _ in cols for s in spans]
    rows = []
    for strat in dict.fromkeys(ms["strategy"]):
        row = [str(strat)]
        for c, _, pct in cols:
            for s in spans:
                v = ms[(ms["strategy"] == strat) & (ms["span"] == s)][c]
                x = float(v.iloc[0]) if len(v) else float("nan")
                row.append("n/a" if not np.isfinite(x) else (f"{100 * x:.1f}%" if pct else f"{x:.2f}"))
        rows.append(tuple(row))
    return FormattedTable(tuple(heads), (False, *([True] * (len(heads) - 1))), tuple(rows))


def evidence_parts(root: str | Path) -> list[Part]:
    """The "Is it better?" section of a run folder; empty when the run has no ``significance.csv``."""
    root = Path(root)
    path = root / "significance.csv"
    if not path.is_file():
        return []
    sig = pd.read_csv(path)
    try:
        ev = json.loads((root / "run.json").read_text(encoding="utf-8")).get("evidence") or {}
    except (OSError, ValueError):
        ev = {}
    if "span" not in sig.columns:
        sig["span"] = "full"
    spans = [s for s in SPANS if s in set(sig["span"])]
    primary = str(ev.get("primary") or (sig["strategy"].iloc[0] if len(sig) else "the primary strategy"))
    parts: list[Part] = [("h2", "Is it better?", None)]
    cut = ev.get("holdout_start")
    intro = (f"{primary} against every other strategy: difference of annualized Sharpe ratios with a 95% "
             "interval and a two-sided p-value from a stationary block bootstrap of the paired daily returns "
             "(significance.csv).")
    if cut:
        intro += f" Held-out span from {cut}: nothing in the run was set from it."
    parts.append(("p", intro, None))
    for s in spans:
        words = plain_words(sig[sig["span"] == s], primary)
        joint = (ev.get("spans") or {}).get(s, {}).get("joint", {})
        label = _SPAN_NAMES.get(s, s).capitalize() if len(spans) > 1 else "In plain words"
        parts.append(("p", f"{label}: {words} {_joint_words(joint, primary)}", None))
    parts.append(("table", "Pairwise Sharpe differences (primary minus versus)", _pairwise_table(sig, spans)))
    ms_path = root / "metrics_spans.csv"
    if cut and ms_path.is_file():
        parts.append(("table", "Key metrics per span (metrics_spans.csv)", _spans_table(pd.read_csv(ms_path), spans)))
    return parts
