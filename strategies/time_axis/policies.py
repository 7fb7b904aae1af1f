"""Volatility management as time-axis risk parity (section 4.1): weights and Monte Carlo policies."""

from __future__ import annotations

from typing import Any

import numpy as np

from drb.errors import ConfigError, DataError
from strategies.core.weights import volatility_managed_weight
from strategies.time_axis.simulation import Policy, PolicyState

ArrayLike = Any

# ---------------------------------------------------------------------------------------------
# (c) volatility management as time-axis risk parity (section 4.1)
# ---------------------------------------------------------------------------------------------


def time_parity_weight(
    sigma: ArrayLike, target_vol: float, max_leverage: float = np.inf
) -> np.ndarray:
    """Time-axis risk-parity weight ``w_t = min(target_vol / sigma_t, max_leverage)``.

    The contribution of bar ``t`` to the variance of the cumulative return is
    ``w_t^2 sigma_t^2 dt = target_vol^2 dt``: identical in every bar while the cap is not binding
    (the budget ``b_t = target_vol^2`` of Theorem 19, solution ``w = sqrt(b) / sigma``).

    Parameters
    ----------
    sigma : array_like
        Ex-ante volatility known at ``t`` (``sigma_{t|t-1}``), same time unit as ``target_vol``.
    target_vol : float
        Target volatility (> 0).
    max_leverage : float
        Cap on the weight.

    Returns
    -------
    ndarray
        Weights, shape of ``sigma``.
    """
    sig = np.asarray(sigma, dtype=float)
    if target_vol <= 0 or max_leverage <= 0:
        raise ConfigError("target_vol and max_leverage must be positive")
    if np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise DataError("sigma must be finite and positive")
    return np.minimum(target_vol / sig, max_leverage)


def moreira_muir_weight(
    variance: ArrayLike, c: float, max_leverage: float = np.inf
) -> np.ndarray:
    """Moreira-Muir weight ``w_t = min(c / sigma_t^2, max_leverage)`` (source eq. 20).

    Its contribution per unit of time is ``c^2 / sigma_t^2``: the risk-budgeting solution of the
    budget ``b_t = c^2 / sigma_t^2`` (more risk in calm periods), not time-axis parity. The same
    rule as :func:`strategies.core.weights.volatility_managed_weight` (which computes it), always as an
    array and uncapped by default.

    Parameters
    ----------
    variance : array_like
        Ex-ante variance known at ``t`` (``sigma^2_{t|t-1}``).
    c : float
        Scale (> 0), e.g. from :func:`moreira_muir_constant`.
    max_leverage : float
        Cap on the weight.
    """
    return np.asarray(volatility_managed_weight(variance, c, max_leverage), dtype=float)


def moreira_muir_constant(variances: ArrayLike, target_vol: float) -> float:
    """``c`` such that the uncapped Moreira-Muir weights have average variance ``target_vol^2``.

    ``mean(w_t^2 sigma_t^2) = c^2 mean(1 / sigma_t^2) = target_vol^2``. (Moreira and Muir choose ``c``
    so that the managed and unmanaged portfolios have the same unconditional volatility.)
    """
    var = np.asarray(variances, dtype=float)
    if np.any(~np.isfinite(var)) or np.any(var <= 0):
        raise DataError("variances must be finite and positive")
    return float(target_vol / np.sqrt(np.mean(1.0 / var)))


def buy_and_hold_policy(shares: ArrayLike) -> Policy:
    """Policy holding constant ``shares`` (shape (n,)) on every path."""
    th = np.asarray(shares, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        return np.broadcast_to(th, prices.shape).copy()

    return policy


def _alive_variance(
    prices: np.ndarray, state: PolicyState, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Paths whose basket is tradable (positive prices where weighted, positive variance) and the
    per-year return variance of one unit of money in the basket (``w' Sigma^ret w``)."""
    used = weights != 0
    alive = np.all((prices > 0) | ~used[None, :], axis=1)
    sh = np.zeros_like(prices)
    np.divide(np.broadcast_to(weights, prices.shape), prices, out=sh, where=alive[:, None] & used)
    var = np.einsum("pi,pij,pj->p", sh, state.price_cov, sh)
    alive &= var > 0
    return alive, var


def _money_to_shares(money: np.ndarray, prices: np.ndarray, alive: np.ndarray) -> np.ndarray:
    # paths with an absorbed (zero or negative) forward or a zero-volatility basket hold nothing
    out = np.zeros_like(money)
    np.divide(money, prices, out=out, where=alive[:, None] & (money != 0))
    return out


def volatility_managed_policy(
    weights: ArrayLike, target_vol: float, notional: float = 1.0, max_leverage: float = np.inf
) -> Policy:
    """Time-axis risk parity for a fixed-mix risky basket: money ``notional * s_t * weights``.

    ``s_t = min(target_vol / sigma_t, max_leverage)`` with ``sigma_t^2 = w' Sigma^ret_t w`` the
    instantaneous variance of the basket (known at ``t`` from the state). Each step contributes
    ``(notional * target_vol)^2 dt`` to the terminal variance while the cap is not binding. Paths on
    which the basket has no risk left (an absorbed SABR forward) hold nothing.
    """
    w = np.asarray(weights, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        alive, var = _alive_variance(prices, state, w)
        scale = np.zeros(prices.shape[0])
        scale[alive] = time_parity_weight(np.sqrt(var[alive]), target_vol, max_leverage)
        return _money_to_shares(notional * scale[:, None] * w[None, :], prices, alive)

    return policy


def moreira_muir_policy(
    weights: ArrayLike, c: float, notional: float = 1.0, max_leverage: float = np.inf
) -> Policy:
    """Moreira-Muir scaling of a fixed-mix basket: money ``notional * min(c / sigma_t^2, L) * w``."""
    w = np.asarray(weights, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        alive, var = _alive_variance(prices, state, w)
        scale = np.zeros(prices.shape[0])
        scale[alive] = moreira_muir_weight(var[alive], c, max_leverage)
        return _money_to_shares(notional * scale[:, None] * w[None, :], prices, alive)

    return policy


