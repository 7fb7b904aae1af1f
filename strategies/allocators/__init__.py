"""Allocators: the pure decision logic of every strategy, driven one bar at a time (no backtrader).

:mod:`~strategies.allocators.base` holds the :class:`Allocator` protocol (bar bookkeeping, return
history, the periodic trigger) and :class:`Decision`; :mod:`~strategies.allocators.baselines` the
nine baseline rules; :mod:`~strategies.allocators.dynamic` the dynamic risk-budgeting model and its
parameter dataclass :class:`DynamicParams`.
"""

from strategies.allocators.base import (
    PERIODS_PER_YEAR,
    TRIGGER_ORDER,
    Allocator,
    Decision,
    _definite_with_margin,  # noqa: F401 - private, imported by tests and benchmarks
    _well_conditioned_sample_covariance,  # noqa: F401 - private, imported by tests and benchmarks
    is_period_start,
)
from strategies.allocators.baselines import (
    EqualWeightAllocator,
    FixedWeightsAllocator,
    InverseVolatilityAllocator,
    MacroRiskParityAllocator,
    MinimumVarianceAllocator,
    RiskParityAllocator,
    SharpeRiskBudgetAllocator,
    StaticRiskBudgetAllocator,
    VolatilityManagedAllocator,
    _CovarianceAllocator,  # noqa: F401 - private, imported by tests and benchmarks
    _ShrinkageCount,  # noqa: F401 - private, imported by tests and benchmarks
    _weights_by_name_or_class,  # noqa: F401 - private, imported by tests and benchmarks
)
from strategies.allocators.dynamic import DynamicParams, DynamicRiskBudgetAllocator

__all__ = [
    "Decision",
    "Allocator",
    "EqualWeightAllocator",
    "FixedWeightsAllocator",
    "InverseVolatilityAllocator",
    "RiskParityAllocator",
    "MinimumVarianceAllocator",
    "StaticRiskBudgetAllocator",
    "SharpeRiskBudgetAllocator",
    "MacroRiskParityAllocator",
    "VolatilityManagedAllocator",
    "DynamicParams",
    "DynamicRiskBudgetAllocator",
    "is_period_start",
    "PERIODS_PER_YEAR",
    "TRIGGER_ORDER",
]
