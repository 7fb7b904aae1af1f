"""strategies: allocation math (pure numpy/scipy), the allocators, and the backtrader strategies.

Risk decomposition (:mod:`strategies.core.risk`), risk-budget solvers (:mod:`strategies.core.solvers`),
baseline weight rules (:mod:`strategies.core.weights`), the turnover-cap projection
(:mod:`strategies.core.turnover`), the pure allocators (:mod:`strategies.allocators`), the execution
model and record layouts (:mod:`strategies.execution`) and the backtrader adapters
(:mod:`strategies.bt`). Every name below is imported on first use (PEP 562), so importing one
submodule (``strategies.allocators``, ``strategies.execution``) loads neither the others nor
backtrader.
"""

from __future__ import annotations

from drb.lazy import lazy_exports

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # risk decomposition
    **dict.fromkeys(
        (
            "portfolio_variance",
            "portfolio_volatility",
            "marginal_risk_contributions",
            "risk_contributions",
            "risk_budget_error",
        ),
        "strategies.core.risk",
    ),
    # solvers
    **dict.fromkeys(
        (
            "RiskBudgetResult",
            "RiskBudgetInfeasibleWarning",
            "SharpeRiskBudgetResult",
            "risk_budget_weights",
            "risk_budget_weights_unchecked",
            "risk_budget_ccd",
            "sharpe_risk_budget_weights",
        ),
        "strategies.core.solvers",
    ),
    # baseline weight rules
    **dict.fromkeys(
        (
            "FactorRiskParityResult",
            "erc_weights",
            "inverse_volatility_weights",
            "min_variance_weights",
            "max_sharpe_weights",
            "sharpe_driven_budget",
            "factor_risk_parity_weights",
            "volatility_managed_weight",
            "target_volatility_scale",
        ),
        "strategies.core.weights",
    ),
    # turnover
    **dict.fromkeys(("one_way_turnover", "project_turnover"), "strategies.core.turnover"),
    # backtrader strategy classes (the only names here that load backtrader)
    **dict.fromkeys(
        (
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
        ),
        "strategies.bt.strategies",
    ),
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

