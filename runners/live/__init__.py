"""Paper trading on a live feed: the run loop, its state folder, its journal, and a replay source.

==========================  ==========================================================================
:mod:`~runners.live.paper`    the ``drb paper`` run loop and command (:func:`run_paper`)
:mod:`~runners.live.options`  what a run was asked to do and what that resolves to (config, strategy)
:mod:`~runners.live.history`  the warm-up history read from the config's prices file
:mod:`~runners.live.session`  the strategy hooks: journal every order, commit every bar
:mod:`~runners.live.journal`  the append-only journal and the broker rebuilt from its fills
:mod:`~runners.live.state`    the state folder: files, lock, permissions, loading and saving
:mod:`~runners.live.state_codec`  the allocator as JSON data (never pickle)
:mod:`~runners.live.replay`   ``drb replay``: the embedded market written as a growing live file
==========================  ==========================================================================

Nothing here imports :mod:`runners.cli`; the CLI registers :data:`paper.COMMAND` and
:data:`replay.COMMAND`.
"""

from __future__ import annotations

from runners.live.history import load_history
from runners.live.journal import Journal, check_broker_against_journal
from runners.live.options import PaperOptions, PaperSetup, resolve_setup
from runners.live.paper import PaperResult, run_paper
from runners.live.replay import (
    ReplayPlan,
    ReplayWriter,
    last_written_date,
    market_table,
    prepare_replay,
)
from runners.live.session import PaperSession, PaperStrategyMixin, paper_strategy_class
from runners.live.state import STATE_FORMAT, STATE_VERSION, load_state

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "Journal",
    "PaperOptions",
    "PaperResult",
    "PaperSession",
    "PaperSetup",
    "PaperStrategyMixin",
    "ReplayPlan",
    "ReplayWriter",
    "check_broker_against_journal",
    "last_written_date",
    "load_history",
    "load_state",
    "market_table",
    "paper_strategy_class",
    "prepare_replay",
    "resolve_setup",
    "run_paper",
]
