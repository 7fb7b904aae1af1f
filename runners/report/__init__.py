"""The comparison report of a run folder: sections, tables, figures, tear sheets, time risk.

:func:`build_report` rebuilds ``report.md`` / ``report.html`` from a run folder's saved outputs
(read through :mod:`runners.rundir`); :func:`register_cli` registers ``drb report`` and
``drb time-risk``. Submodules: :mod:`~runners.report.build` (one function per section),
:mod:`~runners.report.document` (Markdown/HTML rendering), :mod:`~runners.report.tables`,
:mod:`~runners.report.figures`, :mod:`~runners.report.tearsheets`,
:mod:`~runners.report.time_risk`, :mod:`~runners.report.evidence`.
"""

from __future__ import annotations

from runners.report.build import (
    FIGURE_FILES,
    RunData,
    build_report,
    implied_prices,
    load_run,
    run_metrics,
)
from runners.report.commands import register_cli, report_main

__all__ = [
    "RunData",
    "load_run",
    "implied_prices",
    "run_metrics",
    "build_report",
    "report_main",
    "register_cli",
    "FIGURE_FILES",
]
