"""Paper trading: any strategy of :mod:`strategies.bt.strategies` on a live feed, restartable.

``drb paper CONFIG --state DIR [--live PATH] [--strategy NAME] [--reset] [--poll S] [--max-bars N]
[--until DATE] [--max-gap-days D]`` (or ``drb paper --demo --state DIR``)
warms the strategy's allocator up on the config's price history, then trades each new bar of the
live source (:mod:`feeds.live`) on backtrader's paper broker (``BackBroker``: the same execution,
costs and turnover caps as a backtest; decisions at the close, orders sized and filled at the next
open). This module is the run loop (:func:`run_paper`) and the ``drb paper`` command
(:data:`COMMAND`, registered by :mod:`runners.cli`); the state folder is described in
:mod:`runners.live.state`, the journal in :mod:`runners.live.journal`.

Resuming
--------
The live source is read again from its start and every row dated on or before the committed last
bar is skipped, so no bar is processed twice. The bar that was being processed when the process
died is processed again from the committed state and must reproduce its journal entries (see
:mod:`runners.live.journal`). A missing, corrupt, truncated or version-mismatched state (or a
journal shorter than, or different from, what the state committed) stops the run with a one-line
:class:`drb.errors.StateError` and nothing is traded; ``--reset`` moves the old files into
``DIR/reset-<timestamp>/`` and starts afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import ConfigError, DataError
from runners.live.history import load_history
from runners.live.journal import Journal, check_broker_against_journal
from runners.live.options import PaperOptions, PaperSetup, check_resume, resolve_setup
from runners.live.session import PaperSession, paper_strategy_class
from runners.live.state import (
    JOURNAL_FILE,
    archive_state,
    day,
    load_state,
    prepare_folder,
    remove_stale_allocators,
    sha256,
    state_lock,
    tidy_folder,
)

__all__ = ["COMMAND", "PaperResult", "run_paper", "register_cli"]

log = logging.getLogger("drb.paper")


# ================================================================================== runner
@contextlib.contextmanager
def _stop_on_signals(request_stop: Callable[[str], None]):
    """SIGINT/SIGTERM: finish the current bar and stop; a second signal interrupts at once."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if received:
            raise KeyboardInterrupt
        received.append(name)
        log.info("%s received: finishing the current bar, then stopping (send it again to abort)", name)
        request_stop(f"{name} received")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass
class PaperResult:
    """What one ``drb paper`` process did."""

    bars: int
    total_bars: int
    last_bar: str
    cash: float
    value: float
    positions: dict[str, dict[str, float]]
    stop_reason: str | None
    state_dir: Path



@dataclass
class _Start:
    """Where a run starts: the committed state (resume) or the warm-up history (fresh start)."""

    state: dict[str, Any] | None
    payload: dict[str, Any] | None
    journal: Journal
    history: Any
    assets: list[str]
    classes: dict[str, str]
    after: pd.Timestamp
    last_closes: dict[str, float]
    has_vol: bool


def _check_inputs(opts: PaperOptions, folder: Path) -> PaperSetup | None:
    """A bad config, strategy name or live path fails before the state folder is created."""
    from runners.engine.cerebro import strategy_class

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: --state must be a folder")
    setup = None if opts.demo else resolve_setup(opts)
    if opts.demo and opts.strategy:
        strategy_class(opts.strategy)
    if setup is not None and not setup.live.exists() and not setup.live.parent.is_dir():
        raise DataError(f"{setup.live}: the live source does not exist, nor its folder {setup.live.parent}")
    return setup


def _open_state(folder: Path, setup: PaperSetup) -> _Start:
    """Load and verify the committed state and journal, or read the history of a fresh start."""
    loaded = load_state(folder)
    journal = Journal(folder / JOURNAL_FILE)
    if loaded is None:
        journal.open(0, 0, sha256(b""))
        history = load_history(setup.cfg)
        closes = {a: float(v) for a, v in history.prices.iloc[-1].items()}
        return _Start(None, None, journal, history, list(history.assets), dict(history.asset_classes),
                      history.prices.index[-1], closes, history.vol_index is not None)  # fmt: skip
    state, payload = loaded
    check_resume(state, setup, folder)
    j = state["journal"]
    journal.open(int(j["bytes"]), int(j["seq"]), str(j["sha256"]))
    check_broker_against_journal(state, journal.path, int(j["bytes"]), float(setup.broker.get("cash", 1_000_000.0)))
    remove_stale_allocators(folder, keep=state["allocator"]["file"], why="left by an interrupted commit")
    return _Start(state, payload, journal, None, list(state["assets"]), dict(state["asset_classes"]),
                  pd.Timestamp(state["last_bar"]), state["last_closes"], bool(state.get("vol_index_feed", False)))  # fmt: skip


def _nothing_to_do(start: _Start, opts: PaperOptions, folder: Path) -> PaperResult:
    """The last processed bar is not before ``--until``: report the committed state, trade nothing."""
    log.info("nothing to do: the last processed bar %s is not before --until %s", day(start.after), day(opts.until))
    st = start.state or {}
    broker = st.get("broker", {})
    return PaperResult(0, int(st.get("bars_processed", 0)), day(start.after), float(broker.get("cash", math.nan)),
                       float(broker.get("value", math.nan)), dict(broker.get("positions", {})), "nothing to do", folder)  # fmt: skip


def _live_market(setup: PaperSetup, start: _Start, opts: PaperOptions) -> Any:
    """The live source as backtrader feeds (:class:`feeds.live.LiveMarket`), after the last bar."""
    from feeds.live import LiveMarket

    return LiveMarket(
        setup.live,
        start.assets,
        signals=("vol_index",) if start.has_vol else (),
        poll_interval=opts.poll,
        after=start.after,
        last_closes=start.last_closes,
        max_bars=opts.max_bars,
        until=opts.until,
        max_gap_days=opts.max_gap_days,
    )


def _build_cerebro(setup: PaperSetup, session: PaperSession, market: Any, classes: dict[str, str]) -> Any:
    """Cerebro with the live feeds, the paper broker of ``[broker]`` and ``Paper<Strategy>``."""
    import backtrader as bt

    from runners.engine.cerebro import strategy_class

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, maxcpus=1)
    market.add_to(cerebro)
    b = setup.broker
    cerebro.broker.setcash(float(b.get("cash", 1_000_000.0)))
    cerebro.broker.setcommission(commission=float(b.get("commission", 0.0005)))
    if b.get("slippage"):
        cerebro.broker.set_slippage_perc(float(b["slippage"]), slip_open=True, slip_limit=True, slip_match=True, slip_out=False)
    kwargs = dict(setup.params)
    kwargs.setdefault("asset_classes", classes)
    kwargs.setdefault("cash_buffer", float(b.get("cash_buffer", 0.002)))
    base = strategy_class(setup.strategy)
    if setup.strategy == "DynamicRiskBudget" and setup.macro is not None:
        kwargs.setdefault("macro", setup.macro)
    cerebro.addstrategy(paper_strategy_class(base, session), **kwargs)
    return cerebro


def _trade(cerebro: Any, market: Any, setup: PaperSetup, opts: PaperOptions) -> None:
    """Run cerebro until the source ends or a signal (``--demo``: beside the replay writer)."""
    writer = None
    if opts.demo:
        from runners.live.replay import ReplayWriter

        plan = setup.extras["replay"]
        writer = ReplayWriter(plan.live, plan.rows, opts.replay_interval, plan.fmt)
        writer.start()
        log.info("demo: replaying %d bars of the embedded market into %s every %g s", len(plan.rows), plan.live, opts.replay_interval)
    log.info("paper trading %s on %s (poll every %g s); Ctrl-C stops after the current bar", setup.strategy, setup.live, opts.poll)
    try:
        with _stop_on_signals(market.request_stop):
            cerebro.run()
    finally:
        if writer is not None:
            writer.stop()
            writer.join(5.0)
            if writer.error is not None:
                log.error("demo replay writer failed: %s", writer.error)


def run_paper(opts: PaperOptions) -> PaperResult:
    """Run (or resume) paper trading until the source ends (``--until``/``--max-bars``) or a signal.

    Parameters
    ----------
    opts : PaperOptions
        What ``drb paper`` was asked to do.

    Returns
    -------
    PaperResult
        Bars processed, the committed broker (currency units) and why the run stopped.

    Raises
    ------
    StateError, ConfigError, DataError
        Bad state, config or data (nothing is traded).
    """
    folder = Path(opts.state)
    setup = _check_inputs(opts, folder)
    prepare_folder(folder)
    with state_lock(folder):
        tidy_folder(folder)
        if setup is None:
            setup = resolve_setup(opts)
        setup.extras["quiet"] = opts.quiet
        if opts.reset:
            dest = archive_state(folder)
            if dest is not None:
                log.info("--reset: previous state moved to %s", dest)
        start = _open_state(folder, setup)
        if opts.until is not None and start.after >= opts.until:
            return _nothing_to_do(start, opts, folder)
        session = PaperSession(folder, setup, start.state, start.payload, start.journal, start.history)
        market = _live_market(setup, start, opts)
        session.source_stats = market.source.stats.as_dict
        session.vol_index_feed = start.has_vol
        _trade(_build_cerebro(setup, session, market, start.classes), market, setup, opts)
        # What the last commit holds (the broker of a run that got no bar never valued its positions).
        committed = session.state["broker"] if session.state else {"cash": math.nan, "value": math.nan, "positions": {}}
        last = session.state["last_bar"] if session.state else day(start.after)
        return PaperResult(
            session.session_bars, session.bars_processed, last, float(committed["cash"]), float(committed["value"]),
            dict(committed["positions"]), market.stop_reason, folder,
        )  # fmt: skip


# ================================================================================== CLI
def _date_arg(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text).normalize()
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"not a date: {text!r}") from None


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``drb paper``."""
    p.add_argument("config", nargs="?", help="TOML config: data.prices is the warm-up history (and the live file unless --live)")
    p.add_argument("--demo", action="store_true", help="replay the embedded market into DIR/demo/live.csv in a background thread")
    p.add_argument("--state", required=True, help="state folder (state.json, allocator-*.json, journal.jsonl; mode 0700)")
    p.add_argument("--live", help="live source: a growing CSV/Parquet file or a folder of daily files (default: data.prices)")
    p.add_argument("--strategy", help="strategy name (default DynamicRiskBudget, or the config's only run.strategies entry)")
    p.add_argument("--reset", action="store_true", help="move the existing state into DIR/reset-<time>/ and start afresh")
    p.add_argument("--poll", type=_positive, default=1.0, help="seconds between polls of the live source (default 1)")
    p.add_argument("--max-bars", dest="max_bars", type=int, help="stop after processing N bars in this run")
    p.add_argument("--until", type=_date_arg, help="stop after processing the bar of this date")
    p.add_argument(
        "--max-gap-days", dest="max_gap_days", type=_positive, default=10.0,
        help="skip (and log) live rows dated more than this many calendar days after the last bar, "
        "or after today (default 10)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="--demo: seed of the embedded market (default 0)")
    p.add_argument("--start", default="2018-01-02", help="--demo: first date (default 2018-01-02)")
    p.add_argument("--end", default="2025-06-30", help="--demo: last date (default 2025-06-30)")
    p.add_argument("--history-bars", dest="history_bars", type=int, default=504, help="--demo: warm-up bars (default 504)")
    p.add_argument("--replay-interval", dest="replay_interval", type=float, default=1.0, help="--demo: seconds between bars (default 1)")
    p.add_argument("--quiet", action="store_true", help="no line per bar")


_LOGGERS = ("drb.paper", "drb.live", "drb.replay")


def _setup_logging(quiet: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(logging.WARNING if quiet else logging.INFO)
        lg.propagate = False
    return handler


def _warning_to_log(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` for ``drb paper``: the model's warnings (signal fallbacks...) as one log line."""
    log.warning("%s: %s", category.__name__, message)


def run_command(args: argparse.Namespace) -> int:
    """``drb paper``: run :func:`run_paper` with the command's options and print one summary line."""
    if args.max_bars is not None and args.max_bars < 1:
        raise ConfigError(f"--max-bars must be >= 1, got {args.max_bars}")
    opts = PaperOptions(
        state=Path(args.state),
        config=Path(args.config) if args.config else None,
        demo=args.demo,
        live=Path(args.live) if args.live else None,
        strategy=args.strategy,
        reset=args.reset,
        poll=args.poll,
        max_bars=args.max_bars,
        until=args.until,
        seed=args.seed,
        start=args.start,
        end=args.end,
        history_bars=args.history_bars,
        replay_interval=args.replay_interval,
        quiet=args.quiet,
        max_gap_days=args.max_gap_days,
    )
    handler = _setup_logging(args.quiet)
    show, warnings.showwarning = warnings.showwarning, _warning_to_log
    try:
        res = run_paper(opts)
    finally:
        warnings.showwarning = show
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(handler)
    why = f" ({res.stop_reason})" if res.stop_reason else ""
    print(
        f"processed {res.bars} bars{why}; {res.total_bars} live bars in total, last {res.last_bar}; "
        f"value {res.value:,.2f}, cash {res.cash:,.2f}; state in {res.state_dir}"
    )
    return 0


#: ``drb paper`` as :data:`runners.cli.COMMANDS` registers it: (help, parser builder, handler).
COMMAND: tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]] = (
    "paper-trade a strategy on a live file, restartable (state + journal)",
    add_arguments,
    run_command,
)


def register_cli(commands: dict[str, Any]) -> None:
    """Add ``paper`` to a ``drb`` command table (name -> (help, parser builder, handler))."""
    commands["paper"] = COMMAND
