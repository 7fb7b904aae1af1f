"""Deprecated alias of :mod:`strategies.core.validation`, kept for one release."""

from strategies.core.validation import (  # noqa: F401
    SYMMETRY_RTOL,
    check_bounds,
    check_budget,
    check_covariance,
    check_param_types,
    check_vector,
)

__all__ = [
    "SYMMETRY_RTOL",
    "check_covariance",
    "check_vector",
    "check_budget",
    "check_bounds",
    "check_param_types",
]
