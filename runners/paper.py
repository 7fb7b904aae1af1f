"""Deprecated alias of :mod:`runners.live` (paper trading), kept for one release; import from there."""

from __future__ import annotations

import sys

from runners.live.history import load_history
from runners.live.journal import Journal, check_broker_against_journal
from runners.live.options import PaperOptions, PaperSetup, resolve_setup
from runners.live.paper import PaperResult, register_cli, run_paper
from runners.live.session import PaperSession, PaperStrategyMixin, paper_strategy_class
from runners.live.state import KILL_ENV, PAYLOAD_VERSION, STATE_FORMAT, STATE_VERSION, load_state

__all__ = [
    "KILL_ENV",
    "PAYLOAD_VERSION",
    "STATE_FORMAT",
    "STATE_VERSION",
    "Journal",
    "PaperOptions",
    "PaperResult",
    "PaperSession",
    "PaperSetup",
    "PaperStrategyMixin",
    "check_broker_against_journal",
    "load_history",
    "load_state",
    "main",
    "paper_strategy_class",
    "register_cli",
    "resolve_setup",
    "run_paper",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m runners.paper ...``: the same as ``drb paper ...``."""
    from runners.cli import main as drb_main

    return drb_main(["paper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
