"""Deprecated alias of :mod:`strategies.core.solvers`, kept for one release."""

from strategies.core.solvers import (  # noqa: F401
    DENSE_MAX_N,
    RiskBudgetInfeasibleWarning,
    RiskBudgetResult,
    SharpeRiskBudgetResult,
    risk_budget_ccd,
    risk_budget_weights,
    risk_budget_weights_unchecked,
    sharpe_risk_budget_weights,
)

__all__ = [
    "DENSE_MAX_N",
    "RiskBudgetInfeasibleWarning",
    "RiskBudgetResult",
    "SharpeRiskBudgetResult",
    "risk_budget_weights",
    "risk_budget_weights_unchecked",
    "risk_budget_ccd",
    "sharpe_risk_budget_weights",
]
