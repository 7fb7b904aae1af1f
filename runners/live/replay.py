"""Replay the embedded synthetic market into a growing file, as a live data vendor would.

``drb replay FOLDER`` writes, in ``FOLDER``:

- ``history.csv``: the first ``--history-bars`` bars (``date``, one column per asset, ``vol_index``),
  the warm-up history of ``drb paper``;
- ``macro.csv``: the monthly leading indicators;
- ``paper.toml``: a config pointing at both (edit ``[strategy.*]`` or ``[broker]`` as you like);

then appends the remaining bars one at a time, every ``--interval`` seconds, to ``live.csv`` (or
rewrites ``live.parquet``, or adds one ``live/YYYY-MM-DD.csv`` per day with ``--format folder``),
each write fsynced; a CSV row is written with a single ``write`` so a reader never sees half a row
once the newline is there. Restarted, it continues after the last bar already in the live file.
Run ``drb paper FOLDER/paper.toml --live FOLDER/live.csv --state STATE`` beside it.

``drb paper --demo`` runs the same writer in a background thread.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from drb.errors import ConfigError
from drb.io import atomic_to_csv, atomic_write_bytes, atomic_write_text

__all__ = ["COMMAND", "register_cli", "ReplayPlan", "market_table", "prepare_replay", "ReplayWriter", "last_written_date"]

log = logging.getLogger("drb.replay")

FORMATS = ("csv", "parquet", "folder")
LIVE_NAMES = {"csv": "live.csv", "parquet": "live.parquet", "folder": "live"}


def market_table(seed: int = 0, start: str = "2018-01-02", end: str = "2025-06-30") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The embedded market as one table and its macro indicators.

    Returns
    -------
    bars : DataFrame, shape (T, n + 1)
        Index ``date``; asset levels rounded to 6 decimals, ``vol_index`` to 4 (what the files hold).
    macro : DataFrame
        Monthly leading indicators by reference month (rounded to 4 decimals).
    """
    from feeds.synthetic import synthetic_market

    m = synthetic_market(seed=seed, start=start, end=end)
    bars = m.prices.round(6)
    bars["vol_index"] = m.vol_index.round(4)
    return bars.rename_axis("date"), m.macro.round(4).rename_axis("date")


@dataclass(frozen=True)
class ReplayPlan:
    """What :func:`prepare_replay` wrote and what is left to replay."""

    folder: Path
    history: Path
    macro: Path
    config: Path
    live: Path
    fmt: str
    rows: pd.DataFrame


def _row_line(date: pd.Timestamp, row: Sequence[float]) -> str:
    return date.strftime("%Y-%m-%d") + "," + ",".join("" if pd.isna(x) else repr(float(x)) for x in row) + "\n"


def prepare_replay(
    folder: str | os.PathLike[str],
    *,
    seed: int = 0,
    start: str = "2018-01-02",
    end: str = "2025-06-30",
    history_bars: int = 504,
    fmt: str = "csv",
) -> ReplayPlan:
    """Write ``history.csv``, ``macro.csv`` and ``paper.toml`` (if absent) and plan the live rows.

    Parameters
    ----------
    folder : path
        Output folder (created).
    seed, start, end
        The embedded market (see :func:`feeds.synthetic_market`).
    history_bars : int
        Bars in the warm-up history; the rest are replayed live.
    fmt : {"csv", "parquet", "folder"}
        Live file format.

    Returns
    -------
    ReplayPlan
        ``rows`` holds the live bars not yet in the live file.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"replay format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    bars, macro = market_table(seed, start, end)
    if not 2 <= history_bars < len(bars):
        raise ConfigError(f"history bars must be in [2, {len(bars) - 1}] for this span, got {history_bars}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    history, macro_path, config = folder / "history.csv", folder / "macro.csv", folder / "paper.toml"
    if not history.exists():
        text = "date," + ",".join(bars.columns) + "\n"
        text += "".join(_row_line(d, r) for d, r in zip(bars.index[:history_bars], bars.to_numpy()[:history_bars]))
        atomic_write_text(history, text)
    if not macro_path.exists():
        atomic_to_csv(macro, macro_path)
    if not config.exists():
        atomic_write_text(
            config,
            '# drb paper config written by runners.live.replay (paths relative to this file)\n'
            '[data]\nprices = "history.csv"   # warm-up history: date, assets, vol_index\n'
            'macro = "macro.csv"\n\n[execution]\nwarmup = 252\n\n'
            '[strategy.DynamicRiskBudget]\nrisk_model = "ewma"\n',
        )
    hist_end = pd.read_csv(history, usecols=["date"])["date"].iloc[-1]
    live = folder / LIVE_NAMES[fmt]
    done = last_written_date(live)
    after = max(pd.Timestamp(hist_end), done) if done is not None else pd.Timestamp(hist_end)
    rows = bars.loc[bars.index > after]
    return ReplayPlan(folder, history, macro_path, config, live, fmt, rows)


def last_written_date(live: Path) -> pd.Timestamp | None:
    """Date of the last complete bar in a live file or folder (None when there is none)."""
    if live.is_dir():
        names = sorted(p.stem for p in live.glob("*.csv"))
        return pd.Timestamp(names[-1]) if names else None
    if not live.exists() or live.stat().st_size == 0:
        return None
    if live.suffix == ".parquet":
        frame = pd.read_parquet(live)
        return pd.Timestamp(frame.index[-1]) if len(frame) else None
    with open(live, "rb") as fh:
        fh.seek(max(0, live.stat().st_size - 4096))
        lines = fh.read().split(b"\n")
    complete = [x for x in lines[:-1] if x.strip()]  # the part after the last newline is torn
    if not complete:
        return None
    first = complete[-1].split(b",", 1)[0].decode()
    try:
        return pd.Timestamp(first)
    except ValueError:
        return None  # only the header so far


class ReplayWriter(threading.Thread):
    """Append bars to a live file, one every ``interval`` seconds (a daemon thread).

    Parameters
    ----------
    live : Path
        ``live.csv``, ``live.parquet`` or a ``live/`` folder.
    rows : DataFrame
        Bars to write (index ``date``; asset columns then ``vol_index``).
    interval : float
        Seconds between two bars.
    fmt : {"csv", "parquet", "folder"}
    """

    def __init__(self, live: Path, rows: pd.DataFrame, interval: float, fmt: str = "csv") -> None:
        super().__init__(name="drb-replay-writer", daemon=True)
        if interval < 0:
            raise ConfigError(f"replay interval must be >= 0 seconds, got {interval}")
        self.live = Path(live)
        self.rows = rows
        self.interval = float(interval)
        self.fmt = fmt
        self.stop_event = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def stop(self) -> None:
        """Stop after the row being written."""
        self.stop_event.set()

    def _append_csv(self, date: pd.Timestamp, row: Sequence[float]) -> None:
        new = not self.live.exists() or self.live.stat().st_size == 0
        fd = os.open(self.live, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            text = ("date," + ",".join(self.rows.columns) + "\n" if new else "") + _row_line(date, row)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_parquet(self, upto: int) -> None:
        done = pd.read_parquet(self.live) if self.live.exists() else None
        part = self.rows.iloc[upto : upto + 1]
        frame = part if done is None else pd.concat([done, part])
        buf = io.BytesIO()
        frame.to_parquet(buf)
        atomic_write_bytes(self.live, buf.getvalue())

    def _write_day(self, date: pd.Timestamp, row: Sequence[float]) -> None:
        text = "date," + ",".join(self.rows.columns) + "\n" + _row_line(date, row)
        atomic_write_text(self.live / f"{date:%Y-%m-%d}.csv", text)

    def run(self) -> None:
        try:
            if self.fmt == "folder":
                self.live.mkdir(parents=True, exist_ok=True)
            values = self.rows.to_numpy()
            for i, date in enumerate(self.rows.index):
                if self.stop_event.wait(self.interval if i else 0.0):
                    return
                if self.fmt == "csv":
                    self._append_csv(date, values[i])
                elif self.fmt == "parquet":
                    self._write_parquet(i)
                else:
                    self._write_day(date, values[i])
                self.written += 1
        except BaseException as exc:  # reported by the caller
            self.error = exc
            log.error("replay writer stopped: %s", exc)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``drb replay``."""
    p.add_argument("folder", help="output folder: history.csv, macro.csv, paper.toml, then live.csv grows")
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded market (default 0)")
    p.add_argument("--start", default="2018-01-02", help="first date (default 2018-01-02)")
    p.add_argument("--end", default="2025-06-30", help="last date (default 2025-06-30)")
    p.add_argument("--history-bars", type=int, default=504, help="bars of warm-up history (default 504)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between two live bars (default 1)")
    p.add_argument("--format", choices=FORMATS, default="csv", help="live file format (default csv)")
    p.add_argument("--bars", type=int, help="stop after writing this many live bars")


def run_command(args: argparse.Namespace) -> int:
    """``drb replay``: prepare the folder, then write the live bars until done or Ctrl-C.

    Returns
    -------
    int
        0, or 2 when the writer failed (a bad option is a :class:`drb.errors.DRBError`, reported
        by :mod:`runners.cli`).
    """
    plan = prepare_replay(
        args.folder, seed=args.seed, start=args.start, end=args.end, history_bars=args.history_bars, fmt=args.format
    )
    rows = plan.rows if args.bars is None else plan.rows.iloc[: args.bars]
    print(f"history: {plan.history}  config: {plan.config}", file=sys.stderr)
    print(f"replaying {len(rows)} bars into {plan.live} every {args.interval:g} s (Ctrl-C stops)", file=sys.stderr)
    writer = ReplayWriter(plan.live, rows, args.interval, args.format)
    writer.start()
    try:
        while writer.is_alive():
            writer.join(0.2)
    except KeyboardInterrupt:
        writer.stop()
        writer.join()
    print(f"wrote {writer.written} bars", file=sys.stderr)
    return 0 if writer.error is None else 2


#: ``drb replay`` as :data:`runners.cli.COMMANDS` registers it: (help, parser builder, handler).
COMMAND: tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]] = (
    "replay the embedded market into a growing live file for drb paper (as a data vendor would)",
    add_arguments,
    run_command,
)


def register_cli(commands: dict[str, tuple]) -> None:
    """Add ``replay`` to a ``drb`` command table (name -> (help, parser builder, handler))."""
    commands["replay"] = COMMAND
