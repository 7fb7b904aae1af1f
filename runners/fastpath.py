"""The fast path: the same allocators and execution model driven by a plain loop over bars.

No backtrader: for sweeps and thousands of Monte Carlo paths, where the event loop's overhead
dominates. It reproduces the backtrader path's accounting exactly (cheat-on-open: a decision at the
close of bar t is sized and filled at the open of bar t+1; open = previous close for close-only
data; fractional units; proportional commission on notional; sells before buys; proportional
slippage on fills, bounded by the bar's high/low as backtrader's ``slip_match`` does), so both
paths give the same weights and returns on the same data (a test checks 1e-8).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from feeds.market import MarketData
from runners.backtest import StrategyResult, validate_strategy_params
from runners.config import DEFAULT_BROKER
from strategies.bt_strategies import EXECUTION_PARAMS, STRATEGIES
from strategies.execution import plan_trades

__all__ = ["run_fast", "make_allocator"]


#: Per-bar labels of the budget log (the allocator's ``snapshot`` keys), in column order.
_BUDGET_LABELS = ("phase", "vol_state", "regime", "lambda", "decision", "cycle_source", "vol_source")


def _budget_frame(rows: list[tuple], assets: list[str]) -> pd.DataFrame:
    """The budget log: one row a bar (date, labels, then ``target_<a>``, ``smoothed_<a>`` per asset)."""
    if not rows:
        return pd.DataFrame()
    cols = ["date", *_BUDGET_LABELS]
    for a in assets:
        cols += [f"target_{a}", f"smoothed_{a}"]
    return pd.DataFrame.from_records(rows, columns=cols).set_index("date")


def make_allocator(name: str, market: MarketData, params: Mapping[str, Any] | None = None):
    """The allocator a strategy class would build, with the strategy's default parameters."""
    cls = STRATEGIES[name]
    validate_strategy_params(name, params or {})
    defaults = {k: getattr(cls.params, k) for k in cls.params._getkeys()}
    defaults.update(params or {})
    if name == "DynamicRiskBudget" and market.macro is not None and defaults.get("macro") is None:
        defaults["macro"] = market.macro
    kwargs = {k: v for k, v in defaults.items() if k not in EXECUTION_PARAMS}
    classes = defaults.get("asset_classes") or market.asset_classes
    if name == "DynamicRiskBudget":
        from strategies.dynamic import DynamicRiskBudgetAllocator

        alloc = DynamicRiskBudgetAllocator(market.assets, classes, **kwargs)
    else:
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
        Strategy name (as in :data:`strategies.bt_strategies.STRATEGIES`).
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
    assets = market.assets
    n = len(assets)
    closes = market.prices.to_numpy(dtype=float)
    opens = np.vstack([closes[:1], closes[:-1]])
    highs = np.maximum(opens, closes)
    lows = np.minimum(opens, closes)
    vix = market.vol_index.reindex(market.prices.index).to_numpy(dtype=float) if market.vol_index is not None else None
    dates = market.prices.index
    comm = float(b["commission"])
    slip = float(b.get("slippage", 0.0) or 0.0)
    cash = float(b["cash"])
    units = np.zeros(n)
    pending = None
    values = np.empty(len(dates))
    weights_rows: list[np.ndarray] = []
    rc_rows: list[np.ndarray] = []
    rc_dates: list[pd.Timestamp] = []
    budget_rows: list[dict[str, Any]] = []
    target_rows: list[np.ndarray] = []
    rebalances: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    last_target = np.full(n, np.nan)
    # Per-bar values as Python objects once (numpy scalar indexing costs ~100 ns a read).
    vix_list = vix.tolist() if vix is not None else [math.nan] * len(dates)
    date_list = list(dates)
    total_cap, asset_cap, cash_buffer = full["total_cap"], full["asset_cap"], full["cash_buffer"]
    zeros = np.zeros(n)
    nan_n = np.full(n, np.nan)
    has_snapshot = hasattr(alloc, "snapshot")
    for t, date in enumerate(date_list):
        if pending is not None:
            decision = pending
            pending = None
            initial = not np.any(units != 0)
            plan = plan_trades(
                units,
                opens[t],
                cash,
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
            sizes, open_t, high_t, low_t = plan.units.tolist(), opens[t].tolist(), highs[t].tolist(), lows[t].tolist()
            for i in plan.order_sequence():
                size = sizes[i]
                price = open_t[i]
                if slip:
                    price = min(price * (1 + slip), high_t[i]) if size > 0 else max(price * (1 - slip), low_t[i])
                cost = size * price
                c = abs(cost) * comm
                if size > 0 and cash < cost + c:
                    continue  # backtrader would reject it (Margin); the planner prevents this
                cash -= cost + c
                units[i] += size
                filled[i] += cost
                total_comm += c
                fills.append({"date": date, "symbol": assets[i], "amount": size, "price": price, "commission": c})
            dw = filled / plan.value
            if np.abs(dw).sum() > 0:
                rec = {
                    "date": date,
                    "strategy": name,
                    "trigger": "initial" if initial else decision.trigger,
                    "turnover": float(0.5 * np.abs(dw).sum()),
                    "max_asset_change": float(np.abs(dw).max()),
                    "cost": total_comm / plan.value,
                }
                for a, w in zip(assets, plan.pre):
                    rec[f"pre_{a}"] = float(w)
                for a, w in zip(assets, plan.pre + dw):
                    rec[f"post_{a}"] = float(w)
                rec["decided"] = decision.date
                rebalances.append(rec)
        close_t = closes[t]
        value = cash + float(units @ close_t)
        values[t] = value
        alloc.update(date, close_t, vix_list[t])
        if record or alloc.invested:
            w = units * close_t / value if value > 0 else zeros.copy()
        decision = alloc.decide(w if alloc.invested else None)
        if decision is not None:
            pending = decision
            last_target = decision.target
        if record:
            weights_rows.append(w)
            target_rows.append(last_target)
            if np.any(w > 0):
                cov = alloc.covariance()
                if cov is not None:
                    from strategies.risk import risk_contributions

                    rc_rows.append(risk_contributions(w, cov, relative=True))
                    rc_dates.append(date)
            snap = alloc.snapshot() if has_snapshot else {}
            tgt = snap.get("budget_target")
            cur = snap.get("budget", alloc.budget())
            # One tuple a bar (the frame is built once at the end): the labels, then per asset
            # the target and smoothed budgets, interleaved as the columns are.
            pairs = np.column_stack((nan_n if tgt is None else tgt, nan_n if cur is None else cur))
            budget_rows.append((date, *[snap.get(k) for k in _BUDGET_LABELS], *pairs.ravel().tolist()))
    vals = pd.Series(values, index=dates.rename("date"), name=name)
    invested_from = next((r["date"] for r in rebalances), None)
    rets = vals.pct_change().loc[invested_from:] if invested_from is not None else vals.iloc[0:0]
    if invested_from is not None and invested_from == dates[0]:
        rets = rets.iloc[1:]
    cols = ["date", "strategy", "trigger", "turnover", "max_asset_change", "cost"]
    cols += [f"pre_{a}" for a in assets] + [f"post_{a}" for a in assets] + ["decided"]
    idx = dates.rename("date")
    info: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 3), "bars": len(dates), "engine": "fast"}
    if hasattr(alloc, "report"):
        info.update(alloc.report())
    if hasattr(getattr(alloc, "risk", None), "n_boundary_fits"):  # EGARCH fits on a bound
        info["risk_model_boundary_fits"] = int(alloc.risk.n_boundary_fits)
    return StrategyResult(
        name=name,
        values=vals,
        returns=rets,
        weights=pd.DataFrame(np.array(weights_rows).reshape(-1, n), index=idx if record else idx[:0], columns=assets),
        target_weights=pd.DataFrame(np.array(target_rows).reshape(-1, n), index=idx if record else idx[:0], columns=assets),
        risk_contributions=pd.DataFrame(np.array(rc_rows).reshape(-1, n), index=pd.DatetimeIndex(rc_dates, name="date"), columns=assets),
        positions=pd.DataFrame(index=idx[:0]),
        transactions=pd.DataFrame(fills, columns=["date", "symbol", "amount", "price", "commission"]),
        rebalances=pd.DataFrame(rebalances, columns=cols),
        budgets=_budget_frame(budget_rows, assets),
        order_issues=pd.DataFrame(columns=["date", "symbol", "status", "size"]),
        info=info,
    )
