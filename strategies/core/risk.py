"""Euler risk decomposition of portfolio volatility (DESIGN section 3).

With annualized covariance ``S`` (decimals) and weights ``w`` (fractions of capital):

* portfolio volatility ``sigma(w) = sqrt(w' S w)`` (annualized decimal),
* marginal risk contributions ``MRC_i = (S w)_i / sigma(w)``,
* absolute risk contributions ``RC_i = w_i MRC_i`` with ``sum_i RC_i = sigma(w)``,
* relative risk contributions ``RC_i / sigma(w) = w_i (S w)_i / (w' S w)``, summing to 1.

Weights may be of any sign here (long-short decompositions are well defined); only a portfolio
with zero volatility, whose contributions are undefined, is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drb.errors import DataError
from strategies.core.validation import check_budget, check_covariance, check_vector

__all__ = [
    "portfolio_variance",
    "portfolio_volatility",
    "marginal_risk_contributions",
    "risk_contributions",
    "risk_budget_error",
]


def _inputs(weights: Any, cov: Any) -> tuple[np.ndarray, np.ndarray]:
    c = check_covariance(cov, require_pd=False)
    w = check_vector(weights, c.shape[0], "weights")
    return w, c


def _variance(w: np.ndarray, sw: np.ndarray) -> float:
    var = float(w @ sw)
    if not var > 0.0:
        raise DataError(
            f"portfolio variance is {var:.3g}: risk contributions are undefined for a "
            "zero-volatility portfolio (or the covariance is not positive semidefinite)"
        )
    return var


def portfolio_variance(weights: Any, cov: Any) -> float:
    """Portfolio variance ``w' S w``.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Portfolio weights (fractions of capital).
    cov : array_like, shape (n, n)
        Annualized covariance matrix (decimals).

    Returns
    -------
    float
        Annualized variance (decimal squared). Not clipped: a negative value reveals a covariance
        that is not positive semidefinite.
    """
    w, c = _inputs(weights, cov)
    return float(w @ c @ w)


def portfolio_volatility(weights: Any, cov: Any) -> float:
    """Portfolio volatility ``sqrt(w' S w)`` (annualized decimal, e.g. 0.054 = 5.4%).

    Parameters
    ----------
    weights : array_like, shape (n,)
    cov : array_like, shape (n, n)

    Returns
    -------
    float

    Raises
    ------
    DataError
        When ``w' S w < 0`` (covariance not positive semidefinite).
    """
    var = portfolio_variance(weights, cov)
    if var < 0.0:
        raise DataError(f"portfolio variance is negative ({var:.3g}): covariance not PSD")
    return float(np.sqrt(var))


def marginal_risk_contributions(weights: Any, cov: Any) -> np.ndarray:
    """Marginal risk contributions ``MRC_i = d sigma / d w_i = (S w)_i / sigma(w)``.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Portfolio weights.
    cov : array_like, shape (n, n)
        Annualized covariance (decimals).

    Returns
    -------
    ndarray, shape (n,)
        Annualized volatility per unit of weight.
    """
    w, c = _inputs(weights, cov)
    sw = c @ w
    return sw / np.sqrt(_variance(w, sw))


def risk_contributions(weights: Any, cov: Any, relative: bool = False) -> np.ndarray:
    """Euler risk contributions ``RC_i = w_i (S w)_i / sigma(w)``.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Portfolio weights.
    cov : array_like, shape (n, n)
        Annualized covariance (decimals).
    relative : bool
        Return ``RC_i / sigma(w)`` (fractions of total risk, summing to 1) instead of the absolute
        contributions (annualized volatility units, summing to ``sigma(w)``).

    Returns
    -------
    ndarray, shape (n,)
    """
    w, c = _inputs(weights, cov)
    sw = c @ w
    var = _variance(w, sw)
    rc = w * sw
    return rc / var if relative else rc / np.sqrt(var)


def risk_budget_error(weights: Any, cov: Any, budget: Any) -> float:
    """Largest gap ``max_i |RC_i / sigma(w) - b_i|`` between relative contributions and a budget.

    Parameters
    ----------
    weights : array_like, shape (n,)
    cov : array_like, shape (n, n)
    budget : array_like, shape (n,)
        Non-negative risk budget; normalized to sum 1.

    Returns
    -------
    float
        Absolute gap in fractions of total risk (1e-10 = one hundred-millionth of a percent point).
    """
    rel = risk_contributions(weights, cov, relative=True)
    b = check_budget(budget, rel.shape[0])
    return float(np.max(np.abs(rel - b)))
