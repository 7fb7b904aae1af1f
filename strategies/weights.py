"""Deprecated alias of :mod:`strategies.core.weights`, kept for one release."""

from strategies.core.weights import (  # noqa: F401
    TRADING_DAYS,
    FactorRiskParityResult,
    erc_weights,
    factor_risk_parity_weights,
    inverse_volatility_weights,
    max_sharpe_weights,
    min_variance_weights,
    sharpe_driven_budget,
    target_volatility_scale,
    volatility_managed_weight,
)

__all__ = [
    "FactorRiskParityResult",
    "erc_weights",
    "inverse_volatility_weights",
    "min_variance_weights",
    "max_sharpe_weights",
    "sharpe_driven_budget",
    "factor_risk_parity_weights",
    "volatility_managed_weight",
    "target_volatility_scale",
    "TRADING_DAYS",
]
