"""Calendar constants every layer shares (one owner for each number)."""

from __future__ import annotations

__all__ = ["PERIODS_PER_YEAR", "BARS_PER_MONTH"]

#: Trading days (bars) per year: annualizes daily means (x 252) and volatilities (x sqrt(252)).
PERIODS_PER_YEAR = 252

#: Trading days (bars) per month: the monthly refit and rebalance period, and the time unit of the
#: budget smoothing ``(1 - lambda) ** (bars / 21)``.
BARS_PER_MONTH = 21
