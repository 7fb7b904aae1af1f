"""Deprecated alias of :mod:`strategies.core.risk`, kept for one release."""

from strategies.core.risk import (  # noqa: F401
    marginal_risk_contributions,
    portfolio_variance,
    portfolio_volatility,
    risk_budget_error,
    risk_contributions,
)

__all__ = [
    "portfolio_variance",
    "portfolio_volatility",
    "marginal_risk_contributions",
    "risk_contributions",
    "risk_budget_error",
]
