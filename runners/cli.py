"""The ``drb`` command line.

Every error is one line on stderr and exit code 2, never a traceback (set ``DRB_DEBUG=1`` to see
one): :func:`main` is the one place that catches them. Every command is registered one way: its
module's ``register_cli``-style function adds ``name -> (help, parser builder, handler)`` to
:data:`COMMANDS` (:func:`register_commands`); the experiments' commands get the report builder from
here, so ``drb demo``/``drb compare`` write the report without the experiments importing it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

# One BLAS thread per process: the estimators solve many tiny problems, and the comparison already
# runs strategies in parallel processes (set before numpy is imported).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from drb.errors import DRBError  # noqa: E402
from runners.config import positive_int  # noqa: E402
from runners.experiments import commands as experiment_commands  # noqa: E402
from runners.live import paper as live_paper  # noqa: E402
from runners.live import replay as live_replay  # noqa: E402
from runners.report import commands as report_commands  # noqa: E402

__all__ = ["COMMANDS", "main", "build_parser", "positive_int", "register_commands"]

#: A command: (help, parser builder, handler returning the exit code).
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _build_report(folder: Path, *, n_jobs: int, progress: bool) -> None:
    """The report of a ``drb demo``/``drb compare`` run folder (called before the folder is swapped in)."""
    from runners.report import build_report

    build_report(folder, n_jobs=n_jobs, progress=progress)  # adds timings.report_s


#: name -> (help, parser builder, handler), filled by :func:`register_commands`.
COMMANDS: dict[str, Command] = {}


def register_commands(commands: dict[str, Command]) -> dict[str, Command]:
    """Fill ``commands`` with every ``drb`` command, each module's ``register_cli`` in help order."""
    experiment_commands.register_comparison(commands, report=_build_report)
    report_commands.register_cli(commands)
    live_paper.register_cli(commands)
    live_replay.register_cli(commands)
    experiment_commands.register_sweep(commands)
    experiment_commands.register_montecarlo(commands)
    return commands


def build_parser() -> argparse.ArgumentParser:
    """The ``drb`` argument parser."""
    register_commands(COMMANDS)
    parser = _Parser(prog="drb", description="Dynamic risk budgeting for backtrader.")
    from drb import __version__

    parser.add_argument("--version", action="version", version=f"drb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, build, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        build(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drb`` console script; returns the exit code."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a one-line usage error (2)
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.handler(args) or 0)
    except DRBError as exc:
        if os.environ.get("DRB_DEBUG"):
            traceback.print_exc()
        print(f"drb {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"drb {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        if os.environ.get("DRB_DEBUG"):
            traceback.print_exc()
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"drb {args.command}: error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
