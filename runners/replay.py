"""Deprecated alias of :mod:`runners.live.replay` (now ``drb replay``), kept for one release."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from runners.live.replay import (
    FORMATS,
    LIVE_NAMES,
    ReplayPlan,
    ReplayWriter,
    last_written_date,
    market_table,
    prepare_replay,
)

__all__ = ["FORMATS", "LIVE_NAMES", "ReplayPlan", "market_table", "prepare_replay", "ReplayWriter", "last_written_date", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runners.replay ...``: the same as ``drb replay ...``; returns the exit code."""
    from runners.cli import main as drb_main

    return drb_main(["replay", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
