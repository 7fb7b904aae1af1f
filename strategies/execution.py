"""Execution model shared by the backtrader strategies and the plain-loop fast path (pure numpy).

A rebalance starts from the drifted holdings valued at the price the orders will fill at. The
desired weights (scaled to leave ``cash_buffer`` in cash) are reached within the turnover caps in
two moves that together satisfy one-way turnover ``0.5 * sum |dw_i| <= total_cap`` and
``|dw_i| <= asset_cap`` exactly: the invested level moves pro rata first (restoring the cash buffer,
or changing a volatility-managed exposure), then the exact Euclidean projection
(:func:`strategies.turnover.project_turnover`) of the reshaping at constant level uses what is
left of the caps.
The first investment out of cash is the one uncapped trade. Orders are sized at the fill price,
sells before buys, in fractional units; with proportional slippage buys are sized at the worst fill
price so the executed change never exceeds the planned one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.turnover import one_way_turnover, project_turnover

__all__ = ["TradePlan", "plan_trades", "one_way_turnover", "capped_turnover"]


@dataclass(frozen=True)
class TradePlan:
    """A planned rebalance.

    Attributes
    ----------
    pre : ndarray, shape (n,)
        Asset weights before trading (drifted holdings at the fill price / portfolio value).
    post : ndarray, shape (n,)
        Planned asset weights after trading (before commissions).
    units : ndarray, shape (n,)
        Signed order sizes in units (negative = sell).
    value : float
        Portfolio value the weights refer to (currency).
    capped : bool
        Whether the turnover projection changed the desired trade.
    """

    pre: np.ndarray
    post: np.ndarray
    units: np.ndarray
    value: float
    capped: bool

    @property
    def turnover(self) -> float:
        """Planned one-way turnover ``0.5 * sum |post - pre|`` over assets."""
        return one_way_turnover(self.pre, self.post)

    def order_sequence(self) -> list[int]:
        """Asset indices to send orders for: sells first, then buys (largest first within each)."""
        u = self.units.tolist()  # Python floats: the sort keys are read without numpy scalars
        sells = sorted((i for i, x in enumerate(u) if x < 0), key=u.__getitem__)
        buys = sorted((i for i, x in enumerate(u) if x > 0), key=lambda i: -u[i])
        return sells + buys


def _capped_post(pre: np.ndarray, desired: np.ndarray, total_cap: float | None, asset_cap: float | None) -> np.ndarray:
    """Post-trade weights within the caps: first the invested level, pro rata, then the reshaping.

    The change of the invested level (cash buffer restored, or a volatility-managed exposure
    change) is applied pro rata to the holdings, limited so that it alone fits the caps; the rest of
    the caps goes to the exact Euclidean projection of the reshaping at constant level. By the
    triangle inequality the sum of both moves satisfies both caps.
    """
    tcap = math.inf if total_cap is None else float(total_cap)
    acap = math.inf if asset_cap is None else float(asset_cap)
    level_now = float(pre.sum())
    level_goal = float(desired.sum())
    limit = min(2.0 * tcap, acap * level_now / float(pre.max()) if pre.max() > 0 else math.inf)
    level = level_now + float(np.clip(level_goal - level_now, -limit, limit))
    scaled = pre * (level / level_now)
    tcap_left = max(tcap - 0.5 * abs(level - level_now), 0.0)
    acap_left = max(acap - float(np.abs(scaled - pre).max()), 0.0)
    goal = desired * (level / level_goal) if level_goal > 0 else scaled
    if tcap_left <= 0.0 or acap_left <= 0.0:
        return scaled
    return project_turnover(
        scaled,
        goal,
        total_cap=None if total_cap is None else tcap_left,
        asset_cap=None if asset_cap is None else acap_left,
    )


def plan_trades(
    units_held: np.ndarray,
    prices: np.ndarray,
    cash: float,
    target: np.ndarray,
    *,
    initial: bool,
    total_cap: float | None = 0.15,
    asset_cap: float | None = 0.08,
    cash_buffer: float = 0.002,
    slippage: float = 0.0,
    commission: float = 0.0,
    min_change: float = 1e-7,
) -> TradePlan:
    """Plan the orders that move the holdings toward ``target`` within the caps.

    Parameters
    ----------
    units_held : ndarray, shape (n,)
        Units held of each asset.
    prices : ndarray, shape (n,)
        Prices the orders will fill at (before slippage).
    cash : float
        Cash (currency).
    target : ndarray, shape (n,)
        Desired asset weights of the invested part (sum <= 1; the rest is cash).
    initial : bool
        First investment out of cash: not capped.
    total_cap, asset_cap : float or None
        One-way turnover cap and per-asset change cap (None disables).
    cash_buffer : float
        Share of value kept in cash: the invested weights are ``target * (1 - cash_buffer)``.
    slippage : float
        Proportional slippage the broker applies; buys are sized at ``price * (1 + slippage)``.
    commission : float
        Proportional commission per side. Buys are scaled down, if needed, so that cash after the
        trades (sells at the worst fill, commissions paid) stays >= 0 and no order is rejected.
    min_change : float
        Weight changes smaller than this are not traded.

    Returns
    -------
    TradePlan
    """
    units_held = np.asarray(units_held, dtype=float)
    prices = np.asarray(prices, dtype=float)
    target = np.clip(np.asarray(target, dtype=float), 0.0, None)
    value = float(cash + units_held @ prices)
    if value <= 0:
        n = prices.size
        return TradePlan(np.zeros(n), np.zeros(n), np.zeros(n), value, False)
    pre = units_held * prices / value
    desired = target * (1.0 - cash_buffer)
    capped = False
    invested = float(pre.sum())
    if initial or invested <= 0 or (total_cap is None and asset_cap is None):
        post = desired
    else:
        post = _capped_post(pre, desired, total_cap, asset_cap)
        capped = float(np.max(np.abs(post - desired))) > 1e-12
    dw = post - pre
    dw[np.abs(dw) < min_change] = 0.0
    buys = dw[dw > 0].sum()
    if buys > 0:
        sells = -dw[dw < 0].sum()
        cash_w = cash / value
        affordable = (cash_w + sells * (1.0 - slippage) * (1.0 - commission)) / (1.0 + commission)
        if buys > affordable:
            # Shrinking buys only shrinks |dw|: the caps still hold.
            dw = np.where(dw > 0, dw * max(affordable, 0.0) / buys * (1.0 - 1e-9), dw)
            capped = True
    post = pre + dw
    notional = dw * value
    fill = np.where(notional > 0, prices * (1.0 + slippage), prices)
    units = notional / fill
    # Never sell more than held (round-off).
    units = np.where(units < 0, np.maximum(units, -units_held), units)
    return TradePlan(pre=pre, post=post, units=units, value=value, capped=capped)


def capped_turnover(
    weights: np.ndarray,
    target: np.ndarray,
    total_cap: float | None = 0.15,
    asset_cap: float | None = 0.08,
    cash_buffer: float = 0.002,
) -> float:
    """One-way turnover a rebalance from ``weights`` toward ``target`` would trade after the caps.

    The same two moves as :func:`plan_trades` (level pro rata, then the capped reshaping), on the
    weights at the decision's close (the fill price is not known yet).

    Parameters
    ----------
    weights : ndarray, shape (n,)
        Current (drifted) asset weights, sum <= 1.
    target : ndarray, shape (n,)
        Desired weights of the invested part (scaled by ``1 - cash_buffer`` as in execution).
    total_cap, asset_cap : float or None
        The execution caps (None disables).
    cash_buffer : float

    Returns
    -------
    float
        ``0.5 * sum |post - pre|`` (decimal).
    """
    pre = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    desired = np.clip(np.asarray(target, dtype=float), 0.0, None) * (1.0 - cash_buffer)
    if pre.sum() <= 0 or (total_cap is None and asset_cap is None):
        return one_way_turnover(pre, desired)
    return one_way_turnover(pre, _capped_post(pre, desired, total_cap, asset_cap))
