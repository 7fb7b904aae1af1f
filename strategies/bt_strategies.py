"""Deprecated alias of :mod:`strategies.bt.strategies`, kept for one release."""

from strategies.bt.strategies import (
    EXECUTION_PARAMS,
    STRATEGIES,
    DynamicRiskBudget,
    EqualWeight,
    FixedWeights,
    InverseVolatility,
    MacroRiskParity,
    MinimumVariance,
    RiskBudgetStrategy,
    RiskParity,
    SharpeRiskBudget,
    StaticRiskBudget,
    VolatilityManaged,
)

__all__ = [
    "EXECUTION_PARAMS",
    "STRATEGIES",
    "DynamicRiskBudget",
    "EqualWeight",
    "FixedWeights",
    "InverseVolatility",
    "MacroRiskParity",
    "MinimumVariance",
    "RiskBudgetStrategy",
    "RiskParity",
    "SharpeRiskBudget",
    "StaticRiskBudget",
    "VolatilityManaged",
]
