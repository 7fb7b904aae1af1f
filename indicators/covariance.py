"""Covariance estimators selectable by name; all annualized and positive definite.

Names (``METHODS``): ``"egarch_dcc"`` (default; Sigma_t = D_t R_t D_t from EGARCH volatilities and DCC
correlations, see :mod:`indicators.risk_model`), ``"sample"`` (sample covariance of the last
``sample_window`` = 20 returns, ddof = 1), ``"ewma"`` (RiskMetrics, zero mean, ``lambda = 0.94``, started
from the second moment of the first ``sample_window`` returns), ``"ledoit_wolf"`` (Ledoit-Wolf 2004
shrinkage towards a scaled identity on the last ``sample_window`` returns, demeaned, as scikit-learn).
Inputs are decimal returns per bar; outputs are multiplied by ``periods_per_year``. Every estimate is
symmetrized and repaired to positive definite (``drb.linalg.nearest_positive_definite``); repairs are
counted by the callers, not warned per bar. The baselines' trailing-window estimate
(:func:`baseline_covariance`) is the sample covariance, shrunk (Ledoit-Wolf) when the window is
shorter than twice the number of assets or the sample covariance is singular.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drb.errors import DataError
from drb.linalg import nearest_positive_definite

__all__ = [
    "METHODS",
    "sample_covariance",
    "ewma_update",
    "ewma_init",
    "ledoit_wolf_covariance",
    "baseline_covariance",
    "make_pd",
    "rolling_covariance",
]

METHODS = ("egarch_dcc", "sample", "ewma", "ledoit_wolf")


def make_pd(cov: np.ndarray) -> tuple[np.ndarray, bool]:
    """Symmetrize and repair to positive definite. Returns (matrix, repaired?)."""
    out = nearest_positive_definite(cov, warn=False)
    repaired = not np.array_equal(out, 0.5 * (cov + cov.T))
    return out, repaired


def sample_covariance(window: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof = 1) of a (m, n) window, per bar (not annualized)."""
    x = np.asarray(window, dtype=float)
    xc = x - x.mean(axis=0)
    return xc.T @ xc / (x.shape[0] - 1)


def ewma_init(window: np.ndarray) -> np.ndarray:
    """EWMA starting matrix: zero-mean second moment of the first (m, n) returns, per bar."""
    x = np.asarray(window, dtype=float)
    return x.T @ x / x.shape[0]


def ewma_update(s: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """One RiskMetrics step: S_t = lam S_{t-1} + (1 - lam) r_t r_t'."""
    return lam * s + (1.0 - lam) * np.outer(r, r)


def ledoit_wolf_covariance(window: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf (2004) shrinkage towards mu I of a (m, n) window (demeaned, 1/m), per bar.

    Matches ``sklearn.covariance.ledoit_wolf`` (tested when scikit-learn is installed).
    """
    x = np.asarray(window, dtype=float)
    m, n = x.shape
    x = x - x.mean(axis=0)
    s = x.T @ x / m
    mu = np.trace(s) / n
    delta = s.copy()
    delta[np.diag_indices(n)] -= mu
    d2 = float(np.sum(delta**2)) / n
    x2 = x**2
    b2 = float(np.sum((x2.T @ x2) / m - s**2)) / (n * m)
    b2 = min(b2, d2)
    shrink = 0.0 if d2 == 0 else b2 / d2
    out = (1.0 - shrink) * s
    out[np.diag_indices(n)] += shrink * mu
    return out


def baseline_covariance(window: np.ndarray, periods_per_year: float = 252.0) -> tuple[np.ndarray, bool]:
    """Covariance of the baselines' trailing window, shrunk when the sample estimate is unreliable.

    The sample covariance (ddof = 1) is used when the window holds at least ``2 n`` returns and
    its smallest eigenvalue exceeds ``1e-10`` times its largest; otherwise (a window shorter than
    twice the number of assets, or a singular sample covariance: e.g. 60 returns of 60 assets)
    the Ledoit-Wolf estimate of the same window stands in (:func:`ledoit_wolf_covariance`).

    Parameters
    ----------
    window : ndarray, shape (m, n)
        Decimal returns per bar, oldest first, ``m >= 2``.
    periods_per_year : float
        Annualization factor.

    Returns
    -------
    (ndarray (n, n), bool)
        The annualized positive-definite estimate and whether it was shrunk.
    """
    x = np.asarray(window, dtype=float)
    m, n = x.shape
    shrunk = m < 2 * n
    if not shrunk:
        xc = x - x.mean(axis=0)
        cov = (xc.T @ xc) / (m - 1)
        eig = np.linalg.eigvalsh(cov)
        shrunk = not eig[0] > 1e-10 * max(eig[-1], 0.0)
    if shrunk:
        cov = ledoit_wolf_covariance(x)
    return nearest_positive_definite(cov * periods_per_year, warn=False), shrunk


def rolling_covariance(
    returns: pd.DataFrame | np.ndarray,
    method: str = "egarch_dcc",
    **params,
) -> np.ndarray:
    """Causal path of annualized PD covariance matrices by estimator name.

    Parameters
    ----------
    returns : DataFrame or ndarray, shape (T, n)
        Decimal returns per bar; leading rows with NaN are skipped (output NaN there).
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
    **params
        Passed to :class:`indicators.risk_model.RiskModel` (``window``, ``min_window``,
        ``refit_every``, ``dist``, ``sample_window``, ``ewma_lambda``, ``periods_per_year``, ``engine``).

    Returns
    -------
    ndarray, shape (T, n, n)
        Row ``t`` uses returns up to and including ``t`` (the forecast for bar ``t + 1``); NaN before the
        estimator is ready. Identical, bar for bar, to feeding the rows to ``RiskModel.update``.
    """
    from indicators.risk_model import rolling_risk_model

    return rolling_risk_model(returns, method=method, **params)["cov"]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise DataError(f"unknown covariance method {method!r}; choose one of {METHODS}")
