"""Deprecated alias of :mod:`strategies.bt.analyzers`, kept for one release."""

from strategies.bt.analyzers import (
    ALL_ANALYZERS,
    BudgetRecorder,
    PortfolioRecorder,
    RebalanceRecorder,
    RiskContributionRecorder,
    WeightsRecorder,
)

__all__ = [
    "ALL_ANALYZERS",
    "BudgetRecorder",
    "PortfolioRecorder",
    "RebalanceRecorder",
    "RiskContributionRecorder",
    "WeightsRecorder",
]
