"""Conditional rebalance trigger detectors (pure functions).

1. regime change: the regime label differs from the previous bar's (unknown regimes never trigger);
2. correlation structure: the largest eigenvalue of the correlation matrix changed by more than
   ``threshold`` (relative, default 15%) since the reference (last rebalance) matrix;
3. risk-contribution drift: some asset's relative risk contribution ``w_i (Sigma w)_i / w'Sigma w``
   of the current (drifted) weights has moved by more than ``threshold`` (absolute, default 0.10 =
   10 percentage points) since the last rebalance, both measured under the covariance frozen at
   that rebalance (:func:`rc_drift`): only the weights' drift fires it, not a covariance that
   moves every day (that is the eigenvalue trigger's and the volatility state's job).
   :func:`rc_deviation` (the gap to a budget under today's covariance) is kept for diagnostics.

:class:`RegimePersistence` confirms a new regime only after it has held for ``persistence`` bars;
:func:`trigger_summary` counts each trigger's firings, the turnover of those rebalances and the
skipped ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drb.errors import DataError

__all__ = [
    "regime_changed",
    "regime_change_points",
    "largest_eigenvalue",
    "eigenvalue_change",
    "eigenvalue_trigger",
    "relative_risk_contribution",
    "rc_deviation",
    "rc_deviation_trigger",
    "rc_drift",
    "rc_drift_trigger",
    "RegimePersistence",
    "trigger_summary",
]


def _known(s) -> bool:
    return s is not None and not (isinstance(s, float) and np.isnan(s))


def regime_changed(previous, current) -> bool:
    """True when both regimes are known and differ."""
    return _known(previous) and _known(current) and previous != current


def regime_change_points(regimes: pd.Series) -> pd.Series:
    """Vectorized :func:`regime_changed` against the previous bar (bool Series, first bar False)."""
    vals = list(regimes)
    out = [False] + [regime_changed(a, b) for a, b in zip(vals[:-1], vals[1:])]
    return pd.Series(out, index=regimes.index, name="regime_change")


def largest_eigenvalue(corr: np.ndarray) -> float:
    """Largest eigenvalue of a symmetric (n, n) matrix."""
    c = np.asarray(corr, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or not np.all(np.isfinite(c)):
        raise DataError("largest_eigenvalue: need a finite square matrix")
    return float(np.linalg.eigvalsh(0.5 * (c + c.T))[-1])


def eigenvalue_change(corr: np.ndarray, corr_ref: np.ndarray) -> float:
    """Relative change ``lambda_max(corr) / lambda_max(corr_ref) - 1``."""
    return largest_eigenvalue(corr) / largest_eigenvalue(corr_ref) - 1.0


def eigenvalue_trigger(corr: np.ndarray, corr_ref: np.ndarray, threshold: float = 0.15) -> bool:
    """True when ``|eigenvalue_change| > threshold``."""
    return abs(eigenvalue_change(corr, corr_ref)) > threshold


def relative_risk_contribution(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Relative (Euler) risk contributions ``w_i (Sigma w)_i / (w' Sigma w)``, shape (n,), sum 1."""
    w = np.asarray(weights, dtype=float)
    s = np.asarray(cov, dtype=float)
    if s.shape != (w.size, w.size):
        raise DataError(f"relative_risk_contribution: weights {w.shape} vs covariance {s.shape}")
    sw = s @ w
    var = float(w @ sw)
    if not np.isfinite(var) or var <= 0:
        raise DataError(f"relative_risk_contribution: portfolio variance {var} is not positive")
    return w * sw / var


def rc_deviation(weights: np.ndarray, cov: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Relative risk contribution minus budget, shape (n,)."""
    b = np.asarray(budgets, dtype=float)
    return relative_risk_contribution(weights, cov) - b


def rc_deviation_trigger(
    weights: np.ndarray, cov: np.ndarray, budgets: np.ndarray, threshold: float = 0.10
) -> bool:
    """True when ``max_i |RC_i - b_i| > threshold``."""
    return float(np.max(np.abs(rc_deviation(weights, cov, budgets)))) > threshold


def rc_drift(weights: np.ndarray, cov_ref: np.ndarray, rc_ref: np.ndarray) -> np.ndarray:
    """Movement of the relative risk contributions since the reference, under a frozen covariance.

    Parameters
    ----------
    weights : ndarray, shape (n,)
        Current (drifted) weights.
    cov_ref : ndarray, shape (n, n)
        Covariance frozen at the last rebalance (annualized).
    rc_ref : ndarray, shape (n,)
        Relative risk contributions of the holdings right after that rebalance, under ``cov_ref``.

    Returns
    -------
    ndarray, shape (n,)
        ``RC(weights; cov_ref) - rc_ref`` (decimals; sums to 0).
    """
    return relative_risk_contribution(weights, cov_ref) - np.asarray(rc_ref, dtype=float)


def rc_drift_trigger(
    weights: np.ndarray, cov_ref: np.ndarray, rc_ref: np.ndarray, threshold: float = 0.10
) -> bool:
    """True when ``max_i |RC_i(weights; cov_ref) - rc_ref_i| > threshold``."""
    return float(np.max(np.abs(rc_drift(weights, cov_ref, rc_ref)))) > threshold


class RegimePersistence:
    """Confirm a new regime only after it has held ``persistence`` consecutive bars.

    The first known regime is adopted at once; later a different label becomes the confirmed
    regime on the ``persistence``-th bar in a row it is observed (``persistence=1``: at once). A
    flicker shorter than that leaves the confirmed regime unchanged. Unknown labels (None/NaN)
    neither confirm nor reset a candidate.

    Parameters
    ----------
    persistence : int
        Bars a new regime must persist (>= 1).
    """

    def __init__(self, persistence: int = 1) -> None:
        if int(persistence) < 1:
            raise DataError(f"regime_persistence must be >= 1, got {persistence}")
        self.persistence = int(persistence)
        self.confirmed = None
        self._candidate = None
        self._count = 0

    def update(self, raw) -> object:
        """Feed the bar's raw regime; return the confirmed regime (None until one is known)."""
        if not _known(raw):
            return self.confirmed
        if self.confirmed is None or raw == self.confirmed:
            self.confirmed = raw if self.confirmed is None else self.confirmed
            self._candidate, self._count = None, 0
            return self.confirmed
        if raw == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = raw, 1
        if self._count >= self.persistence:
            self.confirmed, self._candidate, self._count = raw, None, 0
        return self.confirmed


def trigger_summary(rebalances: pd.DataFrame, skipped: list[dict] | None = None) -> dict[str, dict]:
    """Each trigger's firings and the turnover of the rebalances it was part of.

    Parameters
    ----------
    rebalances : DataFrame
        Executed rebalances with ``trigger`` (names joined by ``+``) and ``turnover`` (one-way).
    skipped : list of dict, optional
        Skipped conditional rebalances (``trigger`` key), as the allocator reports them.

    Returns
    -------
    dict
        ``{trigger: {"firings": int, "turnover": float, "alone": int, "skipped": int}}``:
        ``firings`` counts executed rebalances the trigger was part of, ``turnover`` sums their
        one-way turnover (a rebalance fired by two triggers counts for both), ``alone`` those it
        fired by itself, ``skipped`` the conditional rebalances below ``min_trade``.
    """
    out: dict[str, dict] = {}

    def slot(name: str) -> dict:
        return out.setdefault(name, {"firings": 0, "turnover": 0.0, "alone": 0, "skipped": 0})

    if rebalances is not None and len(rebalances):
        for trig, turn in zip(rebalances["trigger"].astype(str), rebalances["turnover"].astype(float)):
            parts = [p for p in trig.split("+") if p]
            for p in parts:
                s = slot(p)
                s["firings"] += 1
                s["turnover"] += float(turn)
                s["alone"] += int(len(parts) == 1)
    for rec in skipped or []:
        for p in str(rec.get("trigger", "")).split("+"):
            if p:
                slot(p)["skipped"] += 1
    for s in out.values():
        s["turnover"] = round(s["turnover"], 6)
    return out
