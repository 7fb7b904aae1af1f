"""Deprecated alias, kept for one release: the analyzer is :mod:`strategies.bt.time_risk`, a
comparison's time-risk table and figure :mod:`runners.experiments.time_risk`, the section 4.3 figure
:mod:`runners.report.time_risk`."""

from runners.experiments.time_risk import (  # noqa: F401
    YearColumn,
    fold_years,
    plot_time_risk,
    time_risk_summary,
    year_layout,
)
from runners.report.time_risk import plot_mean_variance_contributions  # noqa: F401
from strategies.bt.time_risk import TimeRiskContribution  # noqa: F401

__all__ = ["TimeRiskContribution", "time_risk_summary", "YearColumn", "year_layout", "fold_years",
           "plot_mean_variance_contributions", "plot_time_risk", "main"]



def main(argv: list[str] | None = None) -> int:
    """``python -m runners.time_risk [--out DIR]``: the same as ``drb time-risk [--out DIR]``."""
    import sys

    from runners.cli import main as drb_main

    return drb_main(["time-risk", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
