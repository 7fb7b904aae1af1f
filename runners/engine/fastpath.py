"""The fast path: the same allocators and execution model driven by a plain loop over bars.

No backtrader: for sweeps and thousands of Monte Carlo paths, where the event loop's overhead
dominates. It reproduces the backtrader path's accounting exactly (cheat-on-open: a decision at the
close of bar t is sized and filled at the open of bar t+1; open = previous close for close-only
data; fractional units; proportional commission on notional; sells before buys; proportional
slippage on fills, bounded by the bar's high/low as backtrader's ``slip_match`` does), so both
paths give the same weights and returns on the same data (a test checks 1e-8). The records use the
layouts of :mod:`strategies.execution`, as the backtrader analyzers do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from feeds.market import MarketData
from runners.config import DEFAULT_BROKER
from runners.engine.cerebro import StrategyResult, allocator_info, validate_strategy_params
from strategies.allocators.base import Allocator, Decision
from strategies.bt.strategies import EXECUTION_PARAMS, STRATEGIES
from strategies.execution import (
    ORDER_ISSUE_COLUMNS,
    TRANSACTION_COLUMNS,
    budget_frame,
    budget_row,
    fill_record,
    plan_trades,
    rebalance_frame,
    rebalance_record,
)

__all__ = ["run_fast", "make_allocator"]


def make_allocator(name: str, market: MarketData, params: Mapping[str, Any] | None = None):
    """The allocator a strategy class would build, with the strategy's default parameters.

    Parameters
    ----------
    name : str
        Strategy name (as in :data:`strategies.bt.strategies.STRATEGIES`).
    market : MarketData
        Its assets, classes and macro data (``DynamicRiskBudget`` reads ``market.macro``).
    params : mapping, optional
        Strategy parameters overriding the defaults.

    Returns
    -------
    (Allocator, dict)
        The allocator (execution caps set) and every parameter it runs with.
    """
    cls = STRATEGIES[name]
    validate_strategy_params(name, params or {})
    defaults = {k: getattr(cls.params, k) for k in cls.params._getkeys()}
    defaults.update(params or {})
    if name == "DynamicRiskBudget" and market.macro is not None and defaults.get("macro") is None:
        defaults["macro"] = market.macro
    kwargs = {k: v for k, v in defaults.items() if k not in EXECUTION_PARAMS}
    classes = defaults.get("asset_classes") or market.asset_classes
    alloc = cls.allocator_cls(market.assets, classes, **kwargs)
    alloc.set_execution(defaults.get("total_cap"), defaults.get("asset_cap"), defaults.get("cash_buffer", 0.002))
    return alloc, defaults


def run_fast(
    market: MarketData,
    name: str,
    params: Mapping[str, Any] | None = None,
    broker: Mapping[str, float] | None = None,
    *,
    record: bool = True,
) -> StrategyResult:
    """Backtest one strategy without backtrader.

    Parameters
    ----------
    market : MarketData
    name : str
        Strategy name (as in :data:`strategies.bt.strategies.STRATEGIES`).
    params : mapping, optional
        Strategy parameters (the same as the backtrader strategy's).
    broker : mapping, optional
        ``cash``, ``commission``, ``slippage``, ``cash_buffer``.
    record : bool
        Keep daily weights, risk contributions and budgets (False: values, returns, rebalances only).

    Returns
    -------
    StrategyResult
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _run_fast(market, name, params, broker, record=record)


@dataclass
class _Bars:
    """The market as arrays: closes, the opens the orders fill at (previous close), the bounds of
    slippage (high/low of open and close), the volatility index and the dates as Python objects."""

    closes: np.ndarray
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    vix: list[float]
    dates: pd.DatetimeIndex

    @classmethod
    def of(cls, market: MarketData) -> _Bars:
        closes = market.prices.to_numpy(dtype=float)
        opens = np.vstack([closes[:1], closes[:-1]])
        dates = market.prices.index
        vix = market.vol_index.reindex(dates).to_numpy(dtype=float) if market.vol_index is not None else None
        # Per-bar values as Python objects once (numpy scalar indexing costs ~100 ns a read).
        vix_list = vix.tolist() if vix is not None else [math.nan] * len(dates)
        return cls(closes, opens, np.maximum(opens, closes), np.minimum(opens, closes), vix_list, dates)


@dataclass
class _Book:
    """The simulated broker account and what it recorded."""

    name: str
    assets: list[str]
    cash: float
    commission: float
    slippage: float
    caps: tuple[Any, Any, Any]  # total_cap, asset_cap, cash_buffer
    units: np.ndarray
    fills: list[dict[str, Any]] = field(default_factory=list)
    rebalances: list[dict[str, Any]] = field(default_factory=list)

    def execute(self, decision: Decision, bars: _Bars, t: int, date: pd.Timestamp) -> None:
        """Fill ``decision`` at the open of bar ``t``: plan, send sells then buys, record."""
        n = len(self.assets)
        initial = not np.any(self.units != 0)
        total_cap, asset_cap, cash_buffer = self.caps
        slip, comm = self.slippage, self.commission
        plan = plan_trades(
            self.units,
            bars.opens[t],
            self.cash,
            decision.target,
            initial=initial,
            total_cap=total_cap,
            asset_cap=asset_cap,
            cash_buffer=cash_buffer,
            slippage=slip,
            commission=comm,
        )
        filled = np.zeros(n)
        total_comm = 0.0
        sizes, open_t, high_t, low_t = plan.units.tolist(), bars.opens[t].tolist(), bars.highs[t].tolist(), bars.lows[t].tolist()
        for i in plan.order_sequence():
            size = sizes[i]
            price = open_t[i]
            if slip:
                price = min(price * (1 + slip), high_t[i]) if size > 0 else max(price * (1 - slip), low_t[i])
            cost = size * price
            c = abs(cost) * comm
            if size > 0 and self.cash < cost + c:
                continue  # backtrader would reject it (Margin); the planner prevents this
            self.cash -= cost + c
            self.units[i] += size
            filled[i] += cost
            total_comm += c
            self.fills.append(fill_record(date, self.assets[i], size, price, c))
        dw = filled / plan.value
        if np.abs(dw).sum() > 0:
            self.rebalances.append(
                rebalance_record(
                    date=date,
                    strategy=self.name,
                    trigger="initial" if initial else decision.trigger,
                    pre=plan.pre,
                    dw=dw,
                    cost=total_comm / plan.value,
                    decided=decision.date,
                    assets=self.assets,
                )
            )


@dataclass
class _Records:
    """The daily records (``record=True``): weights, targets, risk contributions, budgets."""

    n: int
    weights: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    rc: list[np.ndarray] = field(default_factory=list)
    rc_dates: list[pd.Timestamp] = field(default_factory=list)
    budgets: list[tuple] = field(default_factory=list)

    def add(self, alloc: Allocator, date: pd.Timestamp, w: np.ndarray, target: np.ndarray) -> None:
        """Record bar ``date``: the drifted weights ``w``, the latest target, the risk
        contributions of ``w`` under the allocator's covariance, the budget-log row."""
        self.weights.append(w)
        self.targets.append(target)
        if np.any(w > 0):
            cov = alloc.covariance()
            if cov is not None:
                from strategies.core.risk import risk_contributions

                self.rc.append(risk_contributions(w, cov, relative=True))
                self.rc_dates.append(date)
        self.budgets.append(budget_row(date, alloc, self.n))


def _run_fast(
    market: MarketData,
    name: str,
    params: Mapping[str, Any] | None,
    broker: Mapping[str, float] | None,
    *,
    record: bool,
) -> StrategyResult:
    t0 = time.perf_counter()
    b = dict(DEFAULT_BROKER)
    b.update(broker or {})
    p = dict(params or {})
    p.setdefault("cash_buffer", float(b.get("cash_buffer", 0.002)))
    alloc, full = make_allocator(name, market, p)
    n = len(market.assets)
    bars = _Bars.of(market)
    book = _Book(
        name=name,
        assets=market.assets,
        cash=float(b["cash"]),
        commission=float(b["commission"]),
        slippage=float(b.get("slippage", 0.0) or 0.0),
        caps=(full["total_cap"], full["asset_cap"], full["cash_buffer"]),
        units=np.zeros(n),
    )
    records = _Records(n)
    values = _loop(alloc, bars, book, records, record)
    return _result(market, name, alloc, book, records, values, record, t0)


def _loop(alloc: Allocator, bars: _Bars, book: _Book, records: _Records, record: bool) -> np.ndarray:
    """The bar loop: fill the pending decision at the open, value at the close, decide, record.

    Returns
    -------
    ndarray, shape (T,)
        Portfolio value at each close (currency).
    """
    pending: Decision | None = None
    values = np.empty(len(bars.dates))
    last_target = np.full(book.units.size, np.nan)
    zeros = np.zeros(book.units.size)
    units = book.units
    for t, date in enumerate(list(bars.dates)):
        if pending is not None:
            book.execute(pending, bars, t, date)
            pending = None
        close_t = bars.closes[t]
        value = book.cash + float(units @ close_t)
        values[t] = value
        alloc.update(date, close_t, bars.vix[t])
        if record or alloc.invested:
            w = units * close_t / value if value > 0 else zeros.copy()
        decision = alloc.decide(w if alloc.invested else None)
        if decision is not None:
            pending = decision
            last_target = decision.target
        if record:
            records.add(alloc, date, w, last_target)
    return values


def _result(
    market: MarketData,
    name: str,
    alloc: Allocator,
    book: _Book,
    records: _Records,
    values: np.ndarray,
    record: bool,
    t0: float,
) -> StrategyResult:
    """The :class:`StrategyResult` of a finished loop (the frames as the backtrader path builds them)."""
    assets, dates = market.assets, market.prices.index
    n = len(assets)
    vals = pd.Series(values, index=dates.rename("date"), name=name)
    invested_from = next((r["date"] for r in book.rebalances), None)
    rets = vals.pct_change().loc[invested_from:] if invested_from is not None else vals.iloc[0:0]
    if invested_from is not None and invested_from == dates[0]:
        rets = rets.iloc[1:]
    idx = dates.rename("date")
    info = allocator_info(alloc, {"seconds": round(time.perf_counter() - t0, 3), "bars": len(dates), "engine": "fast"})
    days = idx if record else idx[:0]
    return StrategyResult(
        name=name,
        values=vals,
        returns=rets,
        weights=pd.DataFrame(np.array(records.weights).reshape(-1, n), index=days, columns=assets),
        target_weights=pd.DataFrame(np.array(records.targets).reshape(-1, n), index=days, columns=assets),
        risk_contributions=pd.DataFrame(
            np.array(records.rc).reshape(-1, n), index=pd.DatetimeIndex(records.rc_dates, name="date"), columns=assets
        ),
        positions=pd.DataFrame(index=idx[:0]),
        transactions=pd.DataFrame(book.fills, columns=list(TRANSACTION_COLUMNS)),
        rebalances=rebalance_frame(book.rebalances, assets),
        budgets=budget_frame(records.budgets, assets),
        order_issues=pd.DataFrame(columns=list(ORDER_ISSUE_COLUMNS)),
        info=info,
    )
