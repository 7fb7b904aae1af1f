"""Deprecated alias of :mod:`runners.report.tearsheets`, kept for one release."""

from runners.report.tearsheets import *  # noqa: F403
from runners.report.tearsheets import (  # noqa: F401
    __all__,  # noqa: F401
    _draw_monthly_heatmap,
    _monthly_table,
    _naive_utc_date_conversion,
    _quiet,
    _stress_periods,
    _tidy_axes,
    _txn_figure,
    naive_utc_dates,
    rolling_beta,
)
