"""Deprecated alias of :mod:`strategies.allocators.dynamic`, kept for one release."""

from strategies.allocators.dynamic import (
    BARS_PER_MONTH,
    DynamicParams,
    DynamicRiskBudgetAllocator,
    parameter_table,
)

__all__ = ["BARS_PER_MONTH", "DynamicParams", "DynamicRiskBudgetAllocator", "parameter_table"]
