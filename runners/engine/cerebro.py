"""Cerebro assembly and one strategy's backtest, returned as plain pandas objects.

Also the strategy registry both engines share (:data:`STRATEGY_NAMES`, :func:`strategy_class`,
:func:`validate_strategy_params`, :func:`effective_params`) and :class:`StrategyResult`, what a
backtest returns (:mod:`runners.engine.fastpath` returns the same).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import backtrader as bt
import pandas as pd

from drb.errors import ConfigError
from drb.names import did_you_mean, match_name
from feeds.bt_feeds import add_feeds
from feeds.market import MarketData
from runners.config import DEFAULT_BROKER, DEFAULT_EXECUTION, RunConfig
from strategies.bt.analyzers import ALL_ANALYZERS
from strategies.bt.strategies import STRATEGIES
from strategies.core.validation import check_param_types

__all__ = [
    "StrategyResult",
    "build_cerebro",
    "canonical_strategy_name",
    "effective_params",
    "run_backtest",
    "strategy_class",
    "validate_strategy_params",
    "STRATEGY_NAMES",
]

#: Every strategy a comparison runs, the dynamic model first.
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def strategy_class(name: str) -> type[bt.Strategy]:
    """The strategy class of that name (from :mod:`strategies`)."""
    if name not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy '{name}'{did_you_mean(name, STRATEGY_NAMES)} (known: {', '.join(STRATEGY_NAMES)})"
        )
    return STRATEGIES[name]


def canonical_strategy_name(name: str) -> str:
    """The strategy name spelled as in :data:`STRATEGY_NAMES` (matching ignores case).

    Raises
    ------
    ConfigError
        Unknown name, with the closest known one ("did you mean") and the full list.
    """
    found = match_name(name, STRATEGY_NAMES)
    if found is None:
        strategy_class(name)  # raises, with "did you mean"
    return found or name


def validate_strategy_params(name: str, params: Mapping[str, Any]) -> str:
    """Raise :class:`ConfigError` for an unknown strategy, an unknown parameter or a parameter of
    the wrong type; return the strategy's canonical name (matching ignores case)."""
    name = canonical_strategy_name(name)
    cls = strategy_class(name)
    defaults = dict(cls.params._getpairs())
    for key in params:
        if key not in defaults:
            raise ConfigError(
                f"strategy.{name}: unknown parameter '{key}'{did_you_mean(key, defaults)} "
                f"(known: {', '.join(sorted(defaults))})"
            )
    check_param_types(name, params, defaults)
    return name


@dataclass
class StrategyResult:
    """What one backtest produced (all pandas, picklable across processes)."""

    name: str
    values: pd.Series
    returns: pd.Series
    weights: pd.DataFrame
    target_weights: pd.DataFrame
    risk_contributions: pd.DataFrame
    positions: pd.DataFrame
    transactions: pd.DataFrame
    rebalances: pd.DataFrame
    budgets: pd.DataFrame
    order_issues: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def strategy_params_for(name: str, config: RunConfig) -> dict[str, Any]:
    """Parameters of one strategy: the common ``[execution]`` table, then its own table."""
    params: dict[str, Any] = {}
    exe = dict(DEFAULT_EXECUTION)
    exe.update(config.execution)
    params["total_cap"] = exe["total_cap"]
    params["asset_cap"] = exe["asset_cap"]
    params["warmup"] = exe["warmup"]
    params.update(config.strategy_params.get(name, {}))
    validate_strategy_params(name, params)
    return params


def allocator_info(alloc: Any, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` (run facts: seconds, bars...) completed with the allocator's counts for ``run.json``:
    its ``report()`` and, for an EGARCH risk model, the fits that ended on a parameter bound."""
    if hasattr(alloc, "report"):
        info.update(alloc.report())
    if hasattr(getattr(alloc, "risk", None), "n_boundary_fits"):  # EGARCH fits on a bound
        info["risk_model_boundary_fits"] = int(alloc.risk.n_boundary_fits)
    return info


def _strategy_kwargs(
    market: MarketData, strategy: type[bt.Strategy], params: Mapping[str, Any] | None, broker: Mapping[str, Any]
) -> dict[str, Any]:
    kwargs = dict(params or {})
    kwargs.setdefault("asset_classes", dict(market.asset_classes))
    kwargs.setdefault("cash_buffer", float(broker.get("cash_buffer", 0.002)))
    if strategy.__name__ == "DynamicRiskBudget" and market.macro is not None:
        kwargs.setdefault("macro", market.macro)
    return kwargs


_DATA_PARAMS = ("macro", "valuation", "signal_feeds", "verbose")


def effective_params(
    market: MarketData, name: str, params: Mapping[str, Any] | None = None, broker: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every parameter the strategy runs with: its defaults, then what :func:`build_cerebro` and
    ``params`` set (data objects such as ``macro`` are left out; ``run.json`` records this)."""
    cls = strategy_class(name)
    b = dict(DEFAULT_BROKER)
    b.update(broker or {})
    eff = dict(cls.params._getpairs())
    eff.update(_strategy_kwargs(market, cls, params, b))
    return {k: v for k, v in eff.items() if k not in _DATA_PARAMS}


def build_cerebro(
    market: MarketData,
    strategy: type[bt.Strategy],
    params: Mapping[str, Any] | None = None,
    broker: Mapping[str, float] | None = None,
    *,
    analyzers: bool = True,
) -> bt.Cerebro:
    """A cerebro with the market's feeds, one strategy, our broker settings and the recorders.

    Uses ``cheat_on_open=True`` so orders decided at a close are sized and filled at the next open,
    ``stdstats=False`` (observers are not needed) and a percentage commission on notional.
    """
    b = dict(DEFAULT_BROKER)
    b.update(broker or {})
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, maxcpus=1)
    add_feeds(cerebro, market)
    cerebro.broker.setcash(float(b["cash"]))
    cerebro.broker.setcommission(commission=float(b["commission"]))
    if b.get("slippage"):
        cerebro.broker.set_slippage_perc(float(b["slippage"]), slip_open=True, slip_limit=True, slip_match=True, slip_out=False)
    cerebro.addstrategy(strategy, **_strategy_kwargs(market, strategy, params, b))
    if analyzers:
        for name, cls in ALL_ANALYZERS:
            cerebro.addanalyzer(cls, _name=name)
    return cerebro


def run_backtest(
    market: MarketData,
    name: str,
    params: Mapping[str, Any] | None = None,
    broker: Mapping[str, float] | None = None,
) -> StrategyResult:
    """Run one strategy on ``market`` and collect its records."""
    cls = strategy_class(name)
    validate_strategy_params(name, params or {})
    t0 = time.perf_counter()
    cerebro = build_cerebro(market, cls, params, broker)
    strat = cerebro.run()[0]
    elapsed = time.perf_counter() - t0
    an = {n: strat.analyzers.getbyname(n).get_analysis() for n, _ in ALL_ANALYZERS}
    info = allocator_info(strat.allocator, {"seconds": round(elapsed, 3), "bars": len(market.prices)})
    return StrategyResult(
        name=name,
        values=an["portfolio"]["values"],
        returns=an["portfolio"]["returns"],
        weights=an["weights"]["executed"],
        target_weights=an["weights"]["target"],
        risk_contributions=an["risk_contributions"],
        positions=an["portfolio"]["positions"],
        transactions=an["portfolio"]["transactions"],
        rebalances=an["rebalances"]["rebalances"],
        budgets=an["budgets"],
        order_issues=an["rebalances"]["order_issues"],
        info=info,
    )
