"""Conditional rebalance trigger detectors (pure functions).

1. regime change: the regime label differs from the previous bar's (unknown regimes never trigger);
2. correlation structure: the largest eigenvalue of the correlation matrix changed by more than
   ``threshold`` (relative, default 15%) since the reference (last rebalance) matrix;
3. risk-contribution drift: some asset's relative risk contribution ``w_i (Sigma w)_i / w'Sigma w``
   under the current (drifted) weights is more than ``threshold`` (absolute, default 0.10 = 10
   percentage points) away from its budget.
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
