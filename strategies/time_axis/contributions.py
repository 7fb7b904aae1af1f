"""Realized time-axis risk contributions of a policy, their buckets and concentration (section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drb.errors import ConfigError, DataError

ArrayLike = Any

# ---------------------------------------------------------------------------------------------
# (a) deterministic decomposition of a realized policy
# ---------------------------------------------------------------------------------------------


def _as_positions_and_covs(
    positions: ArrayLike, covariances: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(positions, dtype=float)
    if theta.ndim == 1:
        theta = theta[:, None]
    if theta.ndim != 2:
        raise DataError(f"positions: expected shape (T, n), got {theta.shape}")
    t_len, n = theta.shape
    cov = np.asarray(covariances, dtype=float)
    if cov.ndim == 2:
        cov = np.broadcast_to(cov, (t_len, *cov.shape))
    if cov.shape != (t_len, n, n):
        raise DataError(
            f"covariances: expected shape ({t_len}, {n}, {n}) or ({n}, {n}), got {cov.shape}"
        )
    if not np.all(np.isfinite(theta)):
        bad = int(np.argwhere(~np.isfinite(theta))[0, 0])
        raise DataError(f"positions: non-finite value at row {bad}")
    if not np.all(np.isfinite(cov)):
        bad = int(np.argwhere(~np.isfinite(cov))[0, 0])
        raise DataError(f"covariances: non-finite value at row {bad}")
    return theta, cov


def time_risk_contributions(
    positions: ArrayLike, covariances: ArrayLike, dt: float = 1.0 / 252.0
) -> np.ndarray:
    """Risk contributions over assets and time, ``c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i dt``.

    Parameters
    ----------
    positions : array_like, shape (T, n)
        Positions ``theta_t`` held over ``(t, t + dt]``: money with a return covariance, or shares with
        a price covariance.
    covariances : array_like, shape (T, n, n) or (n, n)
        Ex-ante covariance ``Sigma_t`` of the next step's returns (or price changes) **per unit of
        time** (e.g. annualized when ``dt`` is in years). Use ``dt=1`` for per-step covariances.
    dt : float
        Step length in the time unit of ``covariances`` (default one trading day in years).

    Returns
    -------
    ndarray, shape (T, n)
        Contributions in currency squared (money) or price squared (shares). Aggregation:
        ``c.sum(axis=1) == theta_t' Sigma_t theta_t dt`` and ``c.sum()`` is the ex-ante variance of
        the cumulative P&L under the martingale (zero-drift) reference measure.

    Raises
    ------
    DataError
        On mismatched shapes or non-finite inputs.
    ConfigError
        When ``dt`` is not positive.
    """
    if not np.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be positive, got {dt!r}")
    theta, cov = _as_positions_and_covs(positions, covariances)
    marginal = np.einsum("tij,tj->ti", cov, theta)
    return theta * marginal * dt


def total_variance(positions: ArrayLike, covariances: ArrayLike, dt: float = 1.0 / 252.0) -> float:
    """Total ``sum_t theta_t' Sigma_t theta_t dt`` computed independently of the contributions.

    Parameters and units as in :func:`time_risk_contributions`; returns a float.
    """
    if not np.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be positive, got {dt!r}")
    theta, cov = _as_positions_and_covs(positions, covariances)
    return float(sum(th @ c @ th for th, c in zip(theta, cov)) * dt)


def bucket_contributions(
    contributions: ArrayLike, bucket_ids: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Sum contributions by time bucket.

    Parameters
    ----------
    contributions : array_like, shape (T, n)
        Per-step contributions.
    bucket_ids : array_like, shape (T,)
        Bucket label of each step (any sortable labels: years, month keys, integers).

    Returns
    -------
    labels : ndarray, shape (K,)
        Sorted unique bucket labels.
    totals : ndarray, shape (K, n)
        Sum of contributions per bucket and asset.
    """
    c = np.asarray(contributions, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    ids = np.asarray(bucket_ids)
    if ids.shape != (c.shape[0],):
        raise DataError(f"bucket_ids: expected shape ({c.shape[0]},), got {ids.shape}")
    labels, inv = np.unique(ids, return_inverse=True)
    totals = np.zeros((labels.size, c.shape[1]))
    np.add.at(totals, inv, c)
    return labels, totals


def bucket_shares(totals: ArrayLike) -> np.ndarray:
    """Share of the total variance per bucket, shape (K,), from bucket totals of shape (K,) or (K, n).

    Shares sum to one; they may be negative when a bucket's positions hedge the rest.

    Raises
    ------
    DataError
        When the total is zero or not finite (no risk to share out).
    """
    t = np.asarray(totals, dtype=float)
    per_bucket = t.sum(axis=1) if t.ndim == 2 else t
    total = per_bucket.sum()
    if not np.isfinite(total) or total == 0.0:
        raise DataError(f"cannot compute shares of a total of {total!r}")
    return per_bucket / total


def herfindahl(shares: ArrayLike) -> float:
    """Herfindahl-Hirschman index ``sum_k s_k^2`` of shares that sum to one.

    ``1/K`` when the K buckets carry equal risk, 1 when one bucket carries all of it. Signed shares
    (hedging buckets) are allowed and can push the index above 1.
    """
    s = np.asarray(shares, dtype=float)
    if s.size == 0:
        raise DataError("herfindahl: no shares")
    total = s.sum()
    if not np.isclose(total, 1.0, rtol=0, atol=1e-9):
        raise DataError(f"herfindahl: shares must sum to 1, got {total!r}")
    return float(np.sum(s**2))


def effective_number(shares: ArrayLike) -> float:
    """Effective number of buckets ``1 / HHI`` (K for equal risk, 1 for full concentration)."""
    return 1.0 / herfindahl(shares)


@dataclass(frozen=True)
class TimeConcentration:
    """How a variance is spread over time buckets.

    Attributes
    ----------
    labels : ndarray, shape (K,)
        Bucket labels.
    totals : ndarray, shape (K, n)
        Contributions per bucket and asset (units of the contributions).
    shares : ndarray, shape (K,)
        Bucket shares of the total (sum 1).
    asset_shares : ndarray, shape (n,)
        Asset shares of the total (sum 1).
    hhi : float
        Herfindahl index of the bucket shares.
    effective_buckets : float
        ``1 / hhi``.
    """

    labels: np.ndarray
    totals: np.ndarray
    shares: np.ndarray
    asset_shares: np.ndarray
    hhi: float
    effective_buckets: float


def time_concentration(contributions: ArrayLike, bucket_ids: ArrayLike) -> TimeConcentration:
    """Bucket totals, shares, asset split, HHI and effective number of buckets.

    Parameters
    ----------
    contributions : array_like, shape (T, n)
    bucket_ids : array_like, shape (T,)

    Returns
    -------
    TimeConcentration
    """
    labels, totals = bucket_contributions(contributions, bucket_ids)
    shares = bucket_shares(totals)
    asset_shares = totals.sum(axis=0) / totals.sum()
    hhi = herfindahl(shares)
    return TimeConcentration(labels, totals, shares, asset_shares, hhi, 1.0 / hhi)


def ewma_covariances(
    returns: ArrayLike, lam: float = 0.94, min_periods: int = 1
) -> np.ndarray:
    """Causal EWMA covariance (RiskMetrics, zero mean) of the *next* step's returns.

    ``S_t = sum_{s<=t} lam^(t-s) r_s r_s' / sum_{s<=t} lam^(t-s)`` (bias-corrected weights, so the
    first estimate is ``r_0 r_0'``): row ``t`` uses returns up to and including ``t`` only and is the
    forecast for ``r_{t+1}``.

    Parameters
    ----------
    returns : array_like, shape (T, n)
        Simple per-step returns (decimal); NaN is not allowed.
    lam : float
        Decay in (0, 1).
    min_periods : int
        Rows with fewer than ``min_periods`` returns are NaN.

    Returns
    -------
    ndarray, shape (T, n, n)
        Per-step covariances (multiply by the steps per year to annualize).
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2:
        raise DataError(f"returns: expected shape (T, n), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise DataError(f"returns: non-finite value at row {int(np.argwhere(~np.isfinite(r))[0, 0])}")
    if not 0.0 < lam < 1.0:
        raise ConfigError(f"lam must be in (0, 1), got {lam!r}")
    if min_periods < 1:
        raise ConfigError(f"min_periods must be >= 1, got {min_periods!r}")
    t_len, n = r.shape
    out = np.empty((t_len, n, n))
    num = np.zeros((n, n))
    den = 0.0
    for t in range(t_len):
        num = lam * num + np.outer(r[t], r[t])
        den = lam * den + 1.0
        out[t] = num / den
    out[: min(min_periods - 1, t_len)] = np.nan
    return out


