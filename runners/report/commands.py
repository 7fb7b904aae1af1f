"""``drb report`` and ``drb time-risk``: command-line registration of the report package.

The CLI registers both through :func:`register_cli`; errors are raised as :class:`DRBError` (one
line) and printed by the CLI's single handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from drb.errors import ConfigError, DRBError
from runners.config import positive_int

__all__ = ["register_cli", "report_main", "build_report_parser", "report_command", "build_time_risk_parser",
           "time_risk_command"]

#: A command: (help, build_parser(parser), handler(args) -> exit code).
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

_REPORT_HELP = "regenerate report.md/report.html from a run folder"
_REPORT_DESCRIPTION = ("Regenerate report.md and report.html (metrics, tables, figures, pyfolio tear "
                       "sheets) of a run directory from its saved outputs, without rerunning the backtest.")


def build_report_parser(p: argparse.ArgumentParser) -> None:
    """Options of ``drb report`` (``RUN_DIR`` and ``--window``, ``--no-tearsheets``, ``--jobs``,
    ``--benchmark``, ``--embed-tearsheets``, ``--quiet``)."""
    p.description = _REPORT_DESCRIPTION
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by drb compare / drb demo")
    p.add_argument("--window", metavar="START:END", default=None,
                   help="window of the budget adjustment log, ISO dates, either end may be empty "
                        "(default: whole run)")
    p.add_argument("--no-tearsheets", action="store_true", help="skip the pyfolio tear sheets")
    p.add_argument("--jobs", type=positive_int, default=2, metavar="N",
                   help="tear sheet worker processes (default 2)")
    p.add_argument("--benchmark", default=None,
                   help="benchmark strategy of the information ratio (default: the run's); another "
                        "one than the run's recomputes the metrics into tables/metrics_vs_NAME.csv "
                        "and keeps the run's metrics.csv")
    p.add_argument("--embed-tearsheets", action="store_true",
                   help="embed the tear sheet PNGs in report.html too (large)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def report_command(args: argparse.Namespace) -> int:
    """``drb report RUN_DIR``: rebuild the report and print the path of ``report.html``; returns 0.

    Raises
    ------
    DRBError
        Missing or malformed run files, a bad window or benchmark, a failed tear sheet.
    """
    from runners.report.build import build_report  # matplotlib/pyfolio only when the command runs

    written = build_report(args.run_dir, tearsheets=not args.no_tearsheets, window=args.window,
                           benchmark=args.benchmark, n_jobs=args.jobs,
                           embed_tearsheets=args.embed_tearsheets, progress=not args.quiet)
    print(f"report written: {written['report.html']} ({len(written)} files)")
    return 0


_TIME_RISK_HELP = ("write the section 4.3 figure (mean_variance_contributions.png) with the default "
                   "market and print the sign-change prices")


def build_time_risk_parser(p: argparse.ArgumentParser) -> None:
    """Options of ``drb time-risk``: ``--out DIR``."""
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")


def time_risk_command(args: argparse.Namespace) -> int:
    """``drb time-risk [--out DIR]``: write ``mean_variance_contributions.png`` (Zhou-Li market,
    default parameters) under ``--out`` and print its path and the sign-change prices; returns 0."""
    from runners.report.time_risk import write_time_risk_figure

    print(write_time_risk_figure(args.out))
    return 0


def register_cli(commands: dict[str, Command]) -> None:
    """Register ``report`` and ``time-risk`` in ``commands`` (name -> (help, build_parser, handler))."""
    commands["report"] = (_REPORT_HELP, build_report_parser, report_command)
    commands["time-risk"] = (_TIME_RISK_HELP, build_time_risk_parser, time_risk_command)


class _LegacyParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def report_main(argv: list[str] | None = None) -> int:
    """``drb report RUN_DIR`` as a function (kept for one release; the CLI registers
    :func:`register_cli` instead): parse ``argv``, run :func:`report_command`, return the exit code.

    Every error is one line on stderr, ``drb report: error: ...``, exit code 2, no traceback.
    """
    parser = _LegacyParser(prog="drb report", description=_REPORT_DESCRIPTION)
    build_report_parser(parser)
    try:
        return report_command(parser.parse_args(argv))
    except SystemExit as exc:  # -h / --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except (DRBError, OSError) as exc:
        print(f"drb report: error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 2
