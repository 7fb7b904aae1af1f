"""Shared foundation of the dynamic-risk-budget plugin: version and typed errors/warnings."""

from drb.errors import (
    ConfigError,
    CovarianceRepairWarning,
    DataError,
    DRBError,
    DRBWarning,
    EstimationError,
    EstimationWarning,
    SignalFallbackWarning,
    SolverError,
    SolverFallbackWarning,
    StateError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DRBError",
    "DataError",
    "ConfigError",
    "SolverError",
    "EstimationError",
    "StateError",
    "DRBWarning",
    "CovarianceRepairWarning",
    "SolverFallbackWarning",
    "SignalFallbackWarning",
    "EstimationWarning",
]
