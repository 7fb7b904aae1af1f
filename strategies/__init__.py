"""strategies: allocation math (pure numpy/scipy) and the backtrader strategies (imported lazily).

Risk decomposition (:mod:`strategies.risk`), risk-budget solvers (:mod:`strategies.solvers`),
baseline weight rules (:mod:`strategies.weights`) and the turnover-cap projection
(:mod:`strategies.turnover`).
"""

from strategies.risk import (
    marginal_risk_contributions,
    portfolio_variance,
    portfolio_volatility,
    risk_budget_error,
    risk_contributions,
)
from strategies.solvers import (
    RiskBudgetInfeasibleWarning,
    RiskBudgetResult,
    SharpeRiskBudgetResult,
    risk_budget_ccd,
    risk_budget_weights,
    risk_budget_weights_unchecked,
    sharpe_risk_budget_weights,
)
from strategies.turnover import one_way_turnover, project_turnover
from strategies.weights import (
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
    # risk decomposition
    "portfolio_variance",
    "portfolio_volatility",
    "marginal_risk_contributions",
    "risk_contributions",
    "risk_budget_error",
    # solvers
    "RiskBudgetResult",
    "RiskBudgetInfeasibleWarning",
    "SharpeRiskBudgetResult",
    "risk_budget_weights",
    "risk_budget_weights_unchecked",
    "risk_budget_ccd",
    "sharpe_risk_budget_weights",
    # baseline weight rules
    "FactorRiskParityResult",
    "erc_weights",
    "inverse_volatility_weights",
    "min_variance_weights",
    "max_sharpe_weights",
    "sharpe_driven_budget",
    "factor_risk_parity_weights",
    "volatility_managed_weight",
    "target_volatility_scale",
    # turnover
    "one_way_turnover",
    "project_turnover",
]

# ---------------------------------------------------------------------------------------------
# backtrader strategy classes (added by the lead): exposed lazily through a module __getattr__ so
# that importing the allocation math never imports backtrader.
# ---------------------------------------------------------------------------------------------

_STRATEGY_CLASSES = (
    "RiskBudgetStrategy",
    "DynamicRiskBudget",
    "EqualWeight",
    "FixedWeights",
    "InverseVolatility",
    "RiskParity",
    "MinimumVariance",
    "StaticRiskBudget",
    "SharpeRiskBudget",
    "MacroRiskParity",
    "VolatilityManaged",
    "STRATEGIES",
)
__all__ += list(_STRATEGY_CLASSES)


def __getattr__(name: str):
    if name in _STRATEGY_CLASSES:
        from strategies import bt_strategies

        return getattr(bt_strategies, name)
    raise AttributeError(f"module 'strategies' has no attribute {name!r}")
