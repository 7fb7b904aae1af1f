"""Backtrader strategies: a thin adapter that drives an allocator and trades through the broker.

Every strategy here is :class:`RiskBudgetStrategy` with a different pure allocator
(:mod:`strategies.allocators`). Per bar: the allocator ingests the closes and the volatility index,
decides at the close whether to rebalance; the orders go out in ``next_open`` of the next bar
(cerebro ``cheat_on_open=True``, what :func:`runners.engine.cerebro.build_cerebro` sets), sized at the open
price they fill at, sells before buys, in fractional units, after projecting the trade onto the
turnover caps. Without cheat-on-open the strategy switches the broker to cheat-on-close and trades
at the decision bar's close instead (sized at that close). Rejected orders are logged and the
rebalance is retried on the next bar.

Feeds: every data feed is an asset except those named in ``signal_feeds`` (default ``vol_index``,
whose ``close`` is the implied-volatility index). Asset classes come from ``asset_classes`` or from
feed names that are class names.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

import strategies.allocators as al
from drb.errors import ConfigError
from strategies.allocators.dynamic import DynamicParams, DynamicRiskBudgetAllocator
from strategies.execution import TradePlan, fill_record, plan_trades, rebalance_record

__all__ = [
    "RiskBudgetStrategy",
    "EqualWeight",
    "FixedWeights",
    "InverseVolatility",
    "RiskParity",
    "MinimumVariance",
    "StaticRiskBudget",
    "SharpeRiskBudget",
    "MacroRiskParity",
    "VolatilityManaged",
    "DynamicRiskBudget",
    "STRATEGIES",
]

#: Parameters of the execution layer (not passed to the allocator).
EXECUTION_PARAMS = ("total_cap", "asset_cap", "cash_buffer", "signal_feeds", "asset_classes", "verbose")


class RiskBudgetStrategy(bt.Strategy):
    """Base strategy: owns an allocator, checks its triggers every bar, trades under turnover caps.

    Params
    ------
    asset_classes : dict or None
        ``{feed name: class}``; default: feed names are class names.
    signal_feeds : tuple of str
        Feed names that are signals, not assets (default ``("vol_index",)``).
    warmup : int
        Bars observed before the first investment (default 252).
    rebalance : str or int
        Periodic trigger: ``monthly`` (first trading day of each month), ``weekly``, ``quarterly``,
        ``yearly`` or every N bars.
    cov_window : int
        Trailing bars of the baselines' sample covariance (default 60).
    total_cap, asset_cap : float or None
        One-way turnover cap per rebalance (0.15) and per-asset weight change cap (0.08); None
        disables. The first investment out of cash is never capped.
    cash_buffer : float
        Share of value kept in cash (default 0.002).
    """

    params = (
        ("asset_classes", None),
        ("signal_feeds", ("vol_index",)),
        ("warmup", 252),
        ("rebalance", "monthly"),
        ("cov_window", 60),
        ("total_cap", 0.15),
        ("asset_cap", 0.08),
        ("cash_buffer", 0.002),
        ("verbose", False),
    )

    allocator_cls: type[al.Allocator] = al.Allocator

    # ------------------------------------------------------------------------- setup
    def __init__(self) -> None:
        signals = set(self.p.signal_feeds or ())
        self.asset_datas = [d for d in self.datas if d._name not in signals]
        if not self.asset_datas:
            raise ConfigError(f"{type(self).__name__}: no asset feeds (all feeds are signals: {sorted(signals)})")
        self.asset_names = [d._name or f"asset{i}" for i, d in enumerate(self.asset_datas)]
        self.vol_data = next((d for d in self.datas if d._name == "vol_index"), None)
        self.allocator = self.build_allocator()
        self.allocator.set_execution(self.p.total_cap, self.p.asset_cap, self.p.cash_buffer)
        self.pending: al.Decision | None = None
        self._retry = False
        self._inflight: dict[str, Any] | None = None
        self.rebalances: list[dict[str, Any]] = []
        self.fills: list[dict[str, Any]] = []
        self.order_issues: list[dict[str, Any]] = []
        self.last_decision: al.Decision | None = None
        self._coo = True
        self._cache_key: tuple[int, int] | None = None
        self._cache: tuple[np.ndarray, np.ndarray, float, float] | None = None
        self._n_fills = 0
        self._positions_of: Any = None
        self._positions: list[Any] = []
        self._close_lines: list[Any] = []

    def allocator_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the allocator: every param except the execution ones."""
        return {k: getattr(self.p, k) for k in self.p._getkeys() if k not in EXECUTION_PARAMS}

    def build_allocator(self) -> al.Allocator:
        """Create the pure allocator for this strategy's assets and params."""
        return self.allocator_cls(self.asset_names, self.p.asset_classes, **self.allocator_kwargs())

    def start(self) -> None:
        # The estimators solve many tiny problems: multi-threaded BLAS only adds synchronization
        # (3x slower measured on 2 busy cores). Limit BLAS to one thread for the run; stop() restores.
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        self._coo = bool(self.cerebro.p.cheat_on_open)
        if not self._coo:
            self.broker.set_coc(True)
        # Orders are checked for cash when they execute, in submission order (sells first), not
        # when submitted: otherwise buys are rejected before the sells that fund them have filled.
        self.broker.set_checksubmit(False)

    def stop(self) -> None:
        limit = getattr(self, "_blas_limit", None)
        if limit is not None:
            limit.restore_original_limits()

    # ------------------------------------------------------------------------- state
    def _bar_state(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(units, closes, value, cash) of the current bar, computed once per bar."""
        key = (len(self), self._n_fills)
        if self._cache_key != key:
            broker = self.broker
            positions = broker.positions
            if self._positions_of is not positions:
                # The broker updates each feed's Position in place: look them (and the close
                # lines) up once, not through getposition() on every bar.
                self._positions = [broker.getposition(d) for d in self.asset_datas]
                self._close_lines = [d.lines.close for d in self.asset_datas]
                self._positions_of = positions
            units = np.array([p.size for p in self._positions], dtype=float)
            closes = np.array([c[0] for c in self._close_lines], dtype=float)
            self._cache = (units, closes, float(broker.getvalue()), float(broker.getcash()))
            self._cache_key = key
        return self._cache

    def units(self) -> np.ndarray:
        """Units held of each asset, shape (n,)."""
        return self._bar_state()[0]

    def closes(self) -> np.ndarray:
        """Closes of the current bar, shape (n,)."""
        return self._bar_state()[1]

    def executed_weights(self) -> np.ndarray:
        """End-of-bar asset weights: value of each holding at the close / broker value."""
        units, closes, value, _ = self._bar_state()
        if value <= 0:
            return np.zeros(len(self.asset_datas))
        return units * closes / value

    # ------------------------------------------------------------------------- bar loop
    def _bar_date(self) -> pd.Timestamp:
        """Date of the current bar of the first asset feed (midnight, naive).

        ``pd.Timestamp(data.datetime.date(0))`` without the per-bar ``num2date``: for a feed without
        a time zone and a bar time before noon the date is the whole part of backtrader's day number
        (``num2date`` rounds only times within 10 microseconds of midnight to the next day). Other
        bars take the general conversion.
        """
        d = self.asset_datas[0]
        line = d.datetime
        x = line[0]
        day = int(x)
        if x - day < 0.5 and line._tz is None:
            return pd.Timestamp(datetime.date.fromordinal(day))
        return pd.Timestamp(d.datetime.date(0))

    def next(self) -> None:
        self._cache_key = None  # the broker has valued this bar's close: refresh the cached state
        date = self._bar_date()
        self._finish_rebalance(date)
        vi = self.vol_data.close[0] if self.vol_data is not None else math.nan
        self.allocator.update(date, self.closes(), vi)
        weights = self.executed_weights()
        decision = self.allocator.decide(weights if self.allocator.invested else None)
        if decision is not None:
            self.pending = decision
            self.last_decision = decision
            self._retry = False
        if not self._coo and (self.pending is not None):
            self._execute(self.closes(), date)

    def next_open(self) -> None:
        if self.pending is None:
            return
        date = self._bar_date()
        prices = np.array([d.open[0] for d in self.asset_datas], dtype=float)
        self._execute(prices, date)

    def _execute(self, prices: np.ndarray, date: pd.Timestamp) -> None:
        decision = self.pending
        assert decision is not None
        self.pending = None
        self._cache_key = None
        initial = not np.any(self.units() != 0)
        slip = float(getattr(self.broker.p, "slip_perc", 0.0) or 0.0)
        comm = float(self.broker.getcommissioninfo(self.asset_datas[0]).p.commission or 0.0)
        plan: TradePlan = plan_trades(
            self.units(),
            prices,
            self.broker.getcash(),
            decision.target,
            initial=initial,
            total_cap=self.p.total_cap,
            asset_cap=self.p.asset_cap,
            cash_buffer=self.p.cash_buffer,
            slippage=slip,
            commission=comm,
        )
        orders = []
        for i in plan.order_sequence():
            size = float(plan.units[i])
            data = self.asset_datas[i]
            o = self.buy(data=data, size=size) if size > 0 else self.sell(data=data, size=-size)
            orders.append(o.ref)
        trigger = "initial" if initial else decision.trigger
        self._inflight = {
            "decided": decision,
            "trigger": trigger,
            "plan": plan,
            "prices": prices,
            "orders": set(orders),
            "filled": {},
            "commission": 0.0,
            "failed": False,
            "date": date,
        }

    def notify_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        name = order.data._name
        fl = self._inflight
        self._n_fills += 1
        if order.status == order.Completed:
            size = float(order.executed.size)
            price = float(order.executed.price)
            comm = float(order.executed.comm)
            self.fills.append(fill_record(pd.Timestamp(bt.num2date(order.executed.dt)), name, size, price, comm))
            if fl is not None and order.ref in fl["orders"]:
                fl["filled"][name] = fl["filled"].get(name, 0.0) + size * price
                fl["commission"] += comm
        else:
            status = order.getstatusname()
            self.order_issues.append(
                {"date": pd.Timestamp(self.asset_datas[0].datetime.date(0)), "symbol": name, "status": status, "size": float(order.created.size)}
            )
            if self.p.verbose:
                print(f"{type(self).__name__}: order {status} for {name} size {order.created.size:.6g}")
            if fl is not None and order.ref in fl["orders"]:
                fl["failed"] = True

    def _finish_rebalance(self, date: pd.Timestamp) -> None:
        """Record the rebalance executed at this bar's open (or last close) from its fills."""
        fl = self._inflight
        if fl is None:
            return
        self._inflight = None
        plan: TradePlan = fl["plan"]
        value = plan.value
        dw = np.array([fl["filled"].get(n, 0.0) for n in self.asset_names]) / value
        if np.abs(dw).sum() > 0:
            self.rebalances.append(
                rebalance_record(
                    date=fl["date"],
                    strategy=type(self).__name__,
                    trigger=fl["trigger"],
                    pre=plan.pre,
                    dw=dw,
                    cost=fl["commission"] / value,
                    decided=fl["decided"].date,
                    assets=self.asset_names,
                )
            )
        if fl["failed"]:
            # Retry toward the same target on the next bar.
            self.pending = fl["decided"]
            self._retry = True


def _make(name: str, allocator: type[al.Allocator], extra: tuple[tuple[str, Any], ...], doc: str) -> type:
    return type(name, (RiskBudgetStrategy,), {"params": extra, "allocator_cls": allocator, "__doc__": doc, "__module__": __name__})


EqualWeight = _make("EqualWeight", al.EqualWeightAllocator, (), "Equal weight, rebalanced periodically.")
FixedWeights = _make(
    "FixedWeights",
    al.FixedWeightsAllocator,
    (("weights", None),),
    "Fixed weights by asset or class (default 60% equity / 40% bond), rebalanced periodically.",
)
InverseVolatility = _make("InverseVolatility", al.InverseVolatilityAllocator, (), "Weights proportional to 1/volatility.")
RiskParity = _make("RiskParity", al.RiskParityAllocator, (), "Equal risk contributions (ERC).")
MinimumVariance = _make("MinimumVariance", al.MinimumVarianceAllocator, (), "Long-only minimum variance.")
StaticRiskBudget = _make(
    "StaticRiskBudget",
    al.StaticRiskBudgetAllocator,
    (("budget", None),),
    "A fixed risk budget by class or asset (default 40/30/15/15).",
)
SharpeRiskBudget = _make(
    "SharpeRiskBudget",
    al.SharpeRiskBudgetAllocator,
    (("sharpe_window", 126), ("floor", 0.05)),
    "Risk budgets from trailing Sharpe ratios (seed 001).",
)
MacroRiskParity = _make(
    "MacroRiskParity",
    al.MacroRiskParityAllocator,
    (("n_factors", None),),
    "Risk parity across statistical factors (Roncalli-Weisang).",
)
VolatilityManaged = _make(
    "VolatilityManaged",
    al.VolatilityManagedAllocator,
    (("rule", "parity"), ("target_vol", None), ("max_leverage", 1.0), ("ewma_lambda", 0.94)),
    "Volatility-managed portfolio: time-axis risk parity (seed 003) or Moreira-Muir c / sigma^2.",
)


class DynamicRiskBudget(RiskBudgetStrategy):
    """Dual-layer dynamic risk budgeting (DESIGN section 3): regime budget matrix, tactical tilts,
    Markov anticipation, adaptive smoothing, dual triggers with cooldown, exact or banded-Sharpe
    risk-budget solver, optional volatility target. Parameters: see
    :class:`strategies.allocators.dynamic.DynamicParams`.

    Monthly macro data is given as ``macro=`` (a DataFrame indexed by reference month); each month
    is read only once published. Without it the price-based cycle proxy stands in; without a
    ``vol_index`` feed the equity asset's EGARCH volatility stands in (both logged once).
    """

    #: Built from :class:`~strategies.allocators.dynamic.DynamicParams` (names, order, defaults).
    params = DynamicParams.defaults()
    allocator_cls = DynamicRiskBudgetAllocator


#: Strategy classes by name, the dynamic model first.
STRATEGIES: dict[str, type[RiskBudgetStrategy]] = {
    cls.__name__: cls
    for cls in (
        DynamicRiskBudget,
        EqualWeight,
        FixedWeights,
        InverseVolatility,
        RiskParity,
        MinimumVariance,
        StaticRiskBudget,
        SharpeRiskBudget,
        MacroRiskParity,
        VolatilityManaged,
    )
}
