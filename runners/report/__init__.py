"""The comparison report of a run folder: sections, tables, figures, tear sheets, time risk.

:func:`build_report` rebuilds ``report.md`` / ``report.html`` from a run folder's saved outputs
(read through :mod:`runners.rundir`); :func:`register_cli` registers ``drb report`` and
``drb time-risk``. Submodules: :mod:`~runners.report.build` (one function per section),
:mod:`~runners.report.document` (Markdown/HTML rendering), :mod:`~runners.report.tables`,
:mod:`~runners.report.figures`, :mod:`~runners.report.tearsheets`,
:mod:`~runners.report.time_risk`, :mod:`~runners.report.evidence`.
"""

from __future__ import annotations

from drb.lazy import lazy_exports

#: Public name -> module that defines it (imported on first use: ``drb --help`` loads no matplotlib).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("FIGURE_FILES", "RunData", "build_report", "implied_prices", "load_run", "run_metrics"),
                    "runners.report.build"),
    **dict.fromkeys(("register_cli", "report_main"), "runners.report.commands"),
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
