"""Deprecated alias of :mod:`runners.engine.cerebro`, kept for one release."""

from feeds.market import MarketData
from runners.engine.cerebro import (
    STRATEGY_NAMES,
    StrategyResult,
    build_cerebro,
    canonical_strategy_name,
    effective_params,
    run_backtest,
    strategy_class,
    validate_strategy_params,
)

__all__ = [
    "MarketData",
    "STRATEGY_NAMES",
    "StrategyResult",
    "build_cerebro",
    "canonical_strategy_name",
    "effective_params",
    "run_backtest",
    "strategy_class",
    "validate_strategy_params",
]
