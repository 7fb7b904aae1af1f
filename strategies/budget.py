"""Deprecated alias of :mod:`strategies.core.budget`, kept for one release."""

from strategies.core.budget import (  # noqa: F401
    CLASSES,
    DEFAULT_BUDGET_MATRIX,
    INITIAL_BUDGET,
    PHASES,
    REGIMES,
    VOL_STATES,
    anticipated_budget,
    apply_tilts,
    budget_matrix,
    class_to_asset_budget,
    floor_and_normalize,
    smooth_budget,
    smoothing_lambda,
)

__all__ = [
    "CLASSES",
    "PHASES",
    "VOL_STATES",
    "REGIMES",
    "DEFAULT_BUDGET_MATRIX",
    "INITIAL_BUDGET",
    "budget_matrix",
    "class_to_asset_budget",
    "anticipated_budget",
    "apply_tilts",
    "floor_and_normalize",
    "smoothing_lambda",
    "smooth_budget",
]
