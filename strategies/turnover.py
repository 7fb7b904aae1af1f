"""Deprecated alias of :mod:`strategies.core.turnover`, kept for one release."""

from strategies.core.turnover import (  # noqa: F401
    one_way_turnover,
    project_turnover,
)

__all__ = [
    "one_way_turnover",
    "project_turnover",
]
