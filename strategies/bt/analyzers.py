"""Backtrader analyzers that record what a :class:`~strategies.bt.strategies.RiskBudgetStrategy` did.

Each analyzer is thin: it reads the strategy's state after every bar and returns pandas objects from
``get_analysis()``. Positions and transactions are built for every feed here (backtrader's built-in
``PyFolio`` analyzer keeps only the last feed plus cash; do not use it).
"""

from __future__ import annotations

from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from strategies.execution import (
    ORDER_ISSUE_COLUMNS,
    TRANSACTION_COLUMNS,
    budget_frame,
    budget_row,
    rebalance_frame,
)

__all__ = [
    "PortfolioRecorder",
    "WeightsRecorder",
    "RiskContributionRecorder",
    "BudgetRecorder",
    "RebalanceRecorder",
    "ALL_ANALYZERS",
]


def _date(strategy: bt.Strategy) -> pd.Timestamp:
    # The allocator was updated with this bar in the strategy's next(), which backtrader runs
    # before the analyzers: reuse its date instead of converting the feed's again.
    date = getattr(getattr(strategy, "allocator", None), "date", None)
    return date if date is not None else pd.Timestamp(strategy.asset_datas[0].datetime.date(0))


class _Memoized:
    """``get_analysis()`` built once per state of the records.

    ``cerebro.run()`` itself calls every analyzer's ``get_analysis()`` when it stops (writer
    info), and the runner calls it again: the frames are built once while nothing new was
    recorded (``_state()`` unchanged) and the same objects are returned.
    """

    _memo: tuple[Any, Any] | None = None

    def _state(self) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def _build(self) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def get_analysis(self) -> Any:
        key = self._state()
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, self._build())
        return self._memo[1]


class PortfolioRecorder(_Memoized, bt.Analyzer):
    """Daily value, cash, money positions per asset, daily returns, and every fill.

    ``get_analysis()`` returns ``{"values": Series, "returns": Series, "positions": DataFrame
    (assets + cash), "transactions": DataFrame (symbol, amount, price, commission)}``; returns start
    on the day of the first investment.
    """

    def start(self) -> None:
        self._dates: list[pd.Timestamp] = []
        self._rows: list[np.ndarray] = []
        self._cash: list[float] = []
        self._values: list[float] = []

    def next(self) -> None:
        s = self.strategy
        units, closes, value, cash = s._bar_state()
        self._dates.append(_date(s))
        self._rows.append(units * closes)
        self._cash.append(cash)
        self._values.append(value)

    def _state(self) -> tuple[int, int]:
        return len(self._dates), len(self.strategy.fills)

    def _build(self) -> dict[str, Any]:
        s = self.strategy
        idx = pd.DatetimeIndex(self._dates, name="date")
        positions = pd.DataFrame(np.array(self._rows).reshape(len(idx), -1), index=idx, columns=s.asset_names)
        positions["cash"] = self._cash
        values = pd.Series(self._values, index=idx, name=type(s).__name__)
        invested = positions[s.asset_names].abs().sum(axis=1) > 0
        if invested.any():
            first = int(np.argmax(invested.to_numpy()))
            rets = values.pct_change().iloc[max(first, 1) :]
        else:
            rets = values.iloc[0:0]
        tx = pd.DataFrame(s.fills, columns=list(TRANSACTION_COLUMNS))
        return {"values": values, "returns": rets, "positions": positions, "transactions": tx}


class WeightsRecorder(_Memoized, bt.Analyzer):
    """Executed end-of-day weights and the latest target weights (DataFrames, one column per asset)."""

    def start(self) -> None:
        self._dates: list[pd.Timestamp] = []
        self._w: list[np.ndarray] = []
        self._t: list[np.ndarray] = []

    def next(self) -> None:
        s = self.strategy
        self._dates.append(_date(s))
        self._w.append(s.executed_weights())
        d = s.last_decision
        self._t.append(d.target if d is not None else np.full(len(s.asset_names), np.nan))

    def _state(self) -> int:
        return len(self._dates)

    def _build(self) -> dict[str, pd.DataFrame]:
        s = self.strategy
        idx = pd.DatetimeIndex(self._dates, name="date")
        n = len(s.asset_names)
        return {
            "executed": pd.DataFrame(np.array(self._w).reshape(len(idx), n), index=idx, columns=s.asset_names),
            "target": pd.DataFrame(np.array(self._t).reshape(len(idx), n), index=idx, columns=s.asset_names),
        }


class RiskContributionRecorder(_Memoized, bt.Analyzer):
    """Relative risk contributions of the executed weights under the allocator's covariance that day."""

    def start(self) -> None:
        self._dates: list[pd.Timestamp] = []
        self._rc: list[np.ndarray] = []

    def next(self) -> None:
        s = self.strategy
        w = s.executed_weights()
        if not (w > 0).any():
            return
        cov = s.allocator.covariance()
        if cov is None:
            return
        # The allocator's covariance is already symmetric positive definite: the Euler
        # decomposition without strategies.core.risk's input checks (same formula).
        sw = cov @ w
        self._dates.append(_date(s))
        self._rc.append(w * sw / float(w @ sw))

    def _state(self) -> int:
        return len(self._dates)

    def _build(self) -> pd.DataFrame:
        s = self.strategy
        idx = pd.DatetimeIndex(self._dates, name="date")
        return pd.DataFrame(np.array(self._rc).reshape(len(idx), len(s.asset_names)), index=idx, columns=s.asset_names)


class BudgetRecorder(_Memoized, bt.Analyzer):
    """Daily allocator diagnostics: regime, smoothing lambda, target and smoothed budgets.

    One :func:`strategies.execution.budget_row` a bar, the frame built once in ``get_analysis()``
    (:func:`strategies.execution.budget_frame`): columns ``phase, vol_state, regime, lambda,
    decision, cycle_source, vol_source``, then ``target_<asset>``, ``smoothed_<asset>`` (NaN where
    the strategy has no such notion; an allocator without ``snapshot()`` has only a budget in force).
    """

    def start(self) -> None:
        self._rows: list[tuple] = []

    def next(self) -> None:
        s = self.strategy
        self._rows.append(budget_row(_date(s), s.allocator, len(s.asset_names)))

    def _state(self) -> int:
        return len(self._rows)

    def _build(self) -> pd.DataFrame:
        return budget_frame(self._rows, self.strategy.asset_names)


class RebalanceRecorder(_Memoized, bt.Analyzer):
    """One row per executed rebalance (date, strategy, trigger, turnover, max_asset_change, cost,
    pre/post weights, the decision date ``decided``), plus the order issues (rejections, margin
    calls) that were retried."""

    def _state(self) -> tuple[int, int]:
        return len(self.strategy.rebalances), len(self.strategy.order_issues)

    def _build(self) -> dict[str, pd.DataFrame]:
        s = self.strategy
        return {
            "rebalances": rebalance_frame(s.rebalances, s.asset_names),
            "order_issues": pd.DataFrame(s.order_issues, columns=list(ORDER_ISSUE_COLUMNS)),
        }


#: (name, class) of every recorder, as the runners add them.
ALL_ANALYZERS: tuple[tuple[str, type[bt.Analyzer]], ...] = (
    ("portfolio", PortfolioRecorder),
    ("weights", WeightsRecorder),
    ("risk_contributions", RiskContributionRecorder),
    ("budgets", BudgetRecorder),
    ("rebalances", RebalanceRecorder),
)
