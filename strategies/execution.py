"""Execution model shared by the backtrader strategies and the plain-loop fast path (pure numpy).

A rebalance starts from the drifted holdings valued at the price the orders will fill at. The
desired weights (scaled to leave ``cash_buffer`` in cash) are reached within the turnover caps in
two moves that together satisfy one-way turnover ``0.5 * sum |dw_i| <= total_cap`` and
``|dw_i| <= asset_cap`` exactly: the invested level moves pro rata first (restoring the cash buffer,
or changing a volatility-managed exposure), then the exact Euclidean projection
(:func:`strategies.core.turnover.project_turnover`) of the reshaping at constant level uses what is
left of the caps.
The first investment out of cash is the one uncapped trade. Orders are sized at the fill price,
sells before buys, in fractional units; with proportional slippage buys are sized at the worst fill
price so the executed change never exceeds the planned one.

The records both engines keep (the backtrader strategy and its analyzers in :mod:`strategies.bt`,
the fast path in :mod:`runners.engine.fastpath`) are laid out here once: one rebalance a row
(:func:`rebalance_record`, :func:`rebalance_frame`), one budget-log row a bar (:func:`budget_row`,
:func:`budget_frame`), one fill a row (:func:`fill_record`) and the order issues
(:data:`ORDER_ISSUE_COLUMNS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strategies.core.turnover import one_way_turnover, project_turnover

__all__ = [
    "TradePlan",
    "plan_trades",
    "one_way_turnover",
    "capped_turnover",
    "REBALANCE_FIELDS",
    "BUDGET_LABELS",
    "TRANSACTION_COLUMNS",
    "ORDER_ISSUE_COLUMNS",
    "rebalance_columns",
    "rebalance_record",
    "rebalance_frame",
    "budget_columns",
    "budget_row",
    "budget_frame",
    "fill_record",
]

#: Leading columns of the rebalance log; ``pre_<asset>``, ``post_<asset>`` and ``decided`` follow.
REBALANCE_FIELDS: tuple[str, ...] = ("date", "strategy", "trigger", "turnover", "max_asset_change", "cost")
#: Per-bar labels of the budget log (the allocator's ``snapshot`` keys); ``target_<asset>`` and
#: ``smoothed_<asset>`` pairs follow, interleaved per asset.
BUDGET_LABELS: tuple[str, ...] = ("phase", "vol_state", "regime", "lambda", "decision", "cycle_source", "vol_source")
#: Columns of the fills (transactions) frame.
TRANSACTION_COLUMNS: tuple[str, ...] = ("date", "symbol", "amount", "price", "commission")
#: Columns of the order-issues frame (rejections, margin calls).
ORDER_ISSUE_COLUMNS: tuple[str, ...] = ("date", "symbol", "status", "size")


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


# ================================================================================== records
def rebalance_columns(assets: Sequence[str]) -> list[str]:
    """Columns of the rebalance log: :data:`REBALANCE_FIELDS`, ``pre_<a>``, ``post_<a>``, ``decided``."""
    return [*REBALANCE_FIELDS, *(f"pre_{a}" for a in assets), *(f"post_{a}" for a in assets), "decided"]


def rebalance_record(
    *,
    date: pd.Timestamp,
    strategy: str,
    trigger: str,
    pre: np.ndarray,
    dw: np.ndarray,
    cost: float,
    decided: pd.Timestamp | None,
    assets: Sequence[str],
) -> dict[str, Any]:
    """One executed rebalance, in the column order of :func:`rebalance_columns`.

    Parameters
    ----------
    date : Timestamp
        Bar the orders filled at.
    strategy, trigger : str
        Strategy name; what fired (``initial`` for the first investment).
    pre : ndarray, shape (n,)
        Asset weights before trading (drifted holdings at the fill price / value).
    dw : ndarray, shape (n,)
        Executed weight changes (filled notional / value; decimals).
    cost : float
        Commissions paid / value (decimal).
    decided : Timestamp or None
        Bar whose close the decision was taken at.
    assets : sequence of str
        Asset names, in the order of ``pre`` and ``dw``.

    Returns
    -------
    dict
        ``turnover = 0.5 * sum |dw|``, ``max_asset_change = max |dw|``, ``post = pre + dw``.
    """
    absdw = np.abs(dw)
    rec: dict[str, Any] = {
        "date": date,
        "strategy": strategy,
        "trigger": trigger,
        "turnover": float(0.5 * absdw.sum()),
        "max_asset_change": float(absdw.max()) if dw.size else 0.0,
        "cost": cost,
    }
    for a, w in zip(assets, pre):
        rec[f"pre_{a}"] = float(w)
    for a, w in zip(assets, pre + dw):
        rec[f"post_{a}"] = float(w)
    rec["decided"] = decided
    return rec


def rebalance_frame(records: list[dict[str, Any]], assets: Sequence[str]) -> pd.DataFrame:
    """The rebalance log: one :func:`rebalance_record` a row (the columns even when empty)."""
    return pd.DataFrame(records, columns=rebalance_columns(assets))


def fill_record(date: pd.Timestamp, symbol: str, amount: float, price: float, commission: float) -> dict[str, Any]:
    """One fill: units ``amount`` (negative = sell) of ``symbol`` at ``price``, paying ``commission``
    (currency); the keys are :data:`TRANSACTION_COLUMNS`."""
    return {"date": date, "symbol": symbol, "amount": amount, "price": price, "commission": commission}


def budget_columns(assets: Sequence[str]) -> list[str]:
    """Columns of the budget log: ``date``, :data:`BUDGET_LABELS`, then ``target_<a>``, ``smoothed_<a>`` per asset."""
    cols = ["date", *BUDGET_LABELS]
    for a in assets:
        cols += [f"target_{a}", f"smoothed_{a}"]
    return cols


def budget_row(date: pd.Timestamp, allocator: Any, n: int) -> tuple:
    """One bar of the budget log, in the order of :func:`budget_columns`.

    Parameters
    ----------
    date : Timestamp
        The bar.
    allocator : Allocator
        Read through ``snapshot()`` when it has one (labels, ``budget_target``, ``budget``), else
        through ``budget()`` only (the labels and the target are then None / NaN).
    n : int
        Number of assets.

    Returns
    -------
    tuple
        ``(date, *labels, target_0, smoothed_0, target_1, smoothed_1, ...)``; budgets are decimals,
        NaN where the allocator has no such notion.
    """
    snap = allocator.snapshot() if hasattr(allocator, "snapshot") else {}
    tgt = snap.get("budget_target")
    cur = snap.get("budget")
    if cur is None:
        cur = allocator.budget()
    pairs = np.column_stack((np.full(n, np.nan) if tgt is None else tgt, np.full(n, np.nan) if cur is None else cur))
    return (date, *[snap.get(k) for k in BUDGET_LABELS], *pairs.ravel().tolist())


def budget_frame(rows: list[tuple], assets: Sequence[str]) -> pd.DataFrame:
    """The budget log indexed by date: one :func:`budget_row` a bar (an empty frame when none)."""
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame.from_records(rows, columns=budget_columns(assets)).set_index("date")
