"""A live multi-asset feed for backtrader: poll a growing file (or a folder of daily files) for bars.

Source formats
--------------
The source is a table with a ``date`` column, one column of daily levels per asset and, optionally,
signal columns (``vol_index``: the implied-volatility index level), one row per trading day:

- a **growing CSV file**: rows are appended at the end (``date,equity,bond,...,vol_index``). Only
  complete lines (ending with a newline) are read; a half-written last line waits for the next poll.
- a **Parquet file** rewritten as it grows (write it to a temporary name and rename it): the rows
  beyond those already read are new.
- a **folder of daily files** (``*.csv`` or ``*.parquet``/``*.pq``, e.g. ``2025-07-01.csv``), read in
  name order, each once; files whose name starts with ``.`` or ends with ``.tmp``/``.part`` are
  ignored until renamed.

Rules, applied row by row in arrival order (every rejection is one log line on the ``drb.live``
logger naming ``file:line`` or ``file:row N``, never fatal):

- a **malformed** row (wrong number of fields, an unparseable date, a missing, non-numeric,
  infinite, zero or negative asset level, a non-numeric or negative signal) is skipped;
- a **duplicate** row (the date of a bar already accepted) and a **late / out-of-order** row (dated
  before the last accepted bar) are skipped: a bar is never delivered twice;
- a **future** row is skipped: dated after today (the local date) or more than ``max_gap_days``
  calendar days (default 10) after the last accepted bar (or ``after``). A typo such as 2030 for
  2025 is therefore never traded, and the real rows after it are not rejected as late;
- rows dated on or before ``after`` (the last bar already processed, e.g. by a previous run) are
  skipped silently when they are part of the backlog present at start (one summary line);
- a source that lacks one of the assets' columns is a :class:`drb.errors.DataError`.

Delivering several assets
-------------------------
:class:`BarSource` turns rows into complete multi-asset :class:`LiveBar` objects. :class:`LiveMarket`
owns one :class:`BarSource` and one backtrader feed (:class:`LiveData`, ``islive()`` True) per asset,
plus one per signal (named ``vol_index``, level in ``close``). When a poll yields a bar, the bar is
pushed to every feed's queue at once, so all feeds of one cerebro always advance together and the
strategies of :mod:`strategies.bt.strategies` run unchanged. The ``open`` of a bar is the previous
bar's close (as :func:`feeds.bt_feeds.price_frame` does for close-only data): pass the last history
closes as ``last_closes`` so the first live bar opens at the last known close.

Waiting: until the first bar arrives, the first feed blocks in its ``_load``, polling every
``poll_interval`` seconds (cerebro runs its broker on every round, even one without a bar, and the
broker values each position at ``close[0]``: on feeds without any bar that is an ``IndexError``).
After that, a poll without a new bar returns control to cerebro as live feeds do.

Stopping: :meth:`LiveMarket.request_stop` (e.g. from a SIGINT/SIGTERM handler) lets the bar being
delivered finish on every feed, then every feed ends, cerebro's ``run`` returns and the strategies'
``stop`` runs. ``max_bars`` and ``until`` end the feed the same way after that many bars / that date.

Example
-------
>>> import backtrader as bt
>>> from feeds.live import LiveMarket
>>> market = LiveMarket("live.csv", ["equity", "bond", "commodity", "real_estate"], poll_interval=1.0)
>>> cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
>>> names = market.add_to(cerebro)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import csv
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backtrader as bt
import pandas as pd

from drb.errors import ConfigError, DataError
from feeds.loaders import _short

__all__ = ["LiveBar", "BarSource", "LiveMarket", "LiveData", "SIGNAL_COLUMNS", "LOGGER_NAME", "MAX_GAP_DAYS"]

#: Signal columns a source may carry besides the assets.
SIGNAL_COLUMNS: tuple[str, ...] = ("vol_index",)
#: Logger of every rejection and of the poller's progress.
LOGGER_NAME = "drb.live"
#: Default of ``max_gap_days``: calendar days a new bar may follow the last one.
MAX_GAP_DAYS = 10.0

_PARQUET = (".parquet", ".pq")
_WAIT_SLICE = 0.1  # seconds: longest wait before pending signal handlers run
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".swp")


@dataclass(frozen=True)
class LiveBar:
    """One complete multi-asset daily bar.

    Attributes
    ----------
    date : pandas.Timestamp
        Bar date (midnight, timezone-naive).
    closes : dict
        ``{asset: close level}``, every asset, finite and > 0.
    signals : dict
        ``{signal column: value}`` (NaN when absent).
    where : str
        ``file:line`` (or ``file:row N``) the bar came from.
    """

    date: pd.Timestamp
    closes: dict[str, float]
    signals: dict[str, float]
    where: str


@dataclass
class SourceStats:
    """Counts of what a :class:`BarSource` did with the rows it read."""

    accepted: int = 0
    known: int = 0
    duplicate: int = 0
    late: int = 0
    future: int = 0
    malformed: int = 0
    polls: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (for the paper state file)."""
        return dict(self.__dict__)


# ================================================================================== readers
@dataclass
class _RawRow:
    where: str
    values: dict[str, Any] | None  # None: the row could not be split into fields
    problem: str = ""


def _norm(name: Any) -> str:
    return str(name).strip()


class _CsvTail:
    """Incremental reader of a CSV file that grows by appended lines."""

    def __init__(self, path: Path, *, whole_file: bool = False) -> None:
        self.path = path
        self.whole_file = whole_file
        self.pos = 0
        self.line = 0
        self.header: list[str] | None = None
        self.ident: tuple[int, int] | None = None

    def reset(self) -> None:
        self.pos = 0
        self.line = 0
        self.header = None
        self.ident = None

    def read(self) -> tuple[list[_RawRow], bool]:
        """New complete rows since the last call, and whether the file was replaced or truncated."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        replaced = False
        ident = (st.st_dev, st.st_ino)
        if self.ident is not None and (ident != self.ident or st.st_size < self.pos):
            replaced = True
            self.reset()
        self.ident = ident
        if st.st_size <= self.pos:
            return [], replaced
        with open(self.path, "rb") as fh:
            fh.seek(self.pos)
            data = fh.read(st.st_size - self.pos)
        end = data.rfind(b"\n")
        if end < 0:
            return [], replaced  # a half-written first line: wait
        chunk = data[: end + 1]
        self.pos += end + 1
        rows: list[_RawRow] = []
        for raw in chunk.split(b"\n")[:-1]:
            self.line += 1
            where = f"{self.path}:{self.line}"
            try:
                text = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                rows.append(_RawRow(where, None, "not UTF-8 text"))
                continue
            if not text.strip():
                continue
            fields = next(csv.reader([text]))
            if self.header is None:
                self.header = [_norm(f) for f in fields]
                rows.append(_RawRow(where, {"__header__": self.header}))
                continue
            if len(fields) != len(self.header):
                rows.append(_RawRow(where, None, f"{len(fields)} fields, the header has {len(self.header)}"))
                continue
            rows.append(_RawRow(where, dict(zip(self.header, fields))))
        return rows, replaced


def _frame_rows(frame: pd.DataFrame, label: str, start: int = 0) -> list[_RawRow]:
    if "date" not in {str(c).strip().lower() for c in frame.columns} and isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis("date").reset_index()
    cols = [_norm(c) for c in frame.columns]
    rows = [_RawRow(f"{label}:header", {"__header__": cols})]
    records = frame.iloc[start:].itertuples(index=False, name=None)
    for i, rec in enumerate(records, start=start + 1):
        rows.append(_RawRow(f"{label}:row {i}", dict(zip(cols, rec))))
    return rows


def _read_parquet(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # pyarrow raises many types for a file being written: wait
        logging.getLogger(LOGGER_NAME).debug("%s: not readable yet (%s)", path, exc)
        return None


class _ParquetFile:
    """A Parquet file rewritten as it grows: rows beyond those already read are new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sig: tuple[int, int, int] | None = None
        self.n_seen = 0

    def read(self) -> tuple[list[_RawRow], bool]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self.sig:
            return [], False
        frame = _read_parquet(self.path)
        if frame is None:
            return [], False
        self.sig = sig
        replaced = len(frame) < self.n_seen
        start = 0 if replaced else self.n_seen
        self.n_seen = len(frame)
        if start >= len(frame):
            return [], replaced
        return _frame_rows(frame, str(self.path), start), replaced


class _Folder:
    """A folder of daily files, each read once, in name order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, tuple[int, int]] = {}
        self.warned: set[str] = set()

    def _candidates(self) -> list[Path]:
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        out = []
        for e in entries:
            name = e.name
            low = name.lower()
            if name.startswith((".", "~")) or low.endswith(_IGNORED_SUFFIXES) or not e.is_file():
                continue
            if low.endswith(".csv") or low.endswith(_PARQUET):
                out.append(Path(e.path))
        return out

    def read(self) -> tuple[list[_RawRow], bool]:
        log = logging.getLogger(LOGGER_NAME)
        rows: list[_RawRow] = []
        for path in self._candidates():
            st = path.stat()
            sig = (st.st_size, st.st_mtime_ns)
            if path.name in self.done:
                if self.done[path.name] != sig and path.name not in self.warned:
                    self.warned.add(path.name)
                    log.warning("%s: changed after it was read; daily files are read once, changes ignored", path)
                continue
            if path.suffix.lower() in _PARQUET:
                frame = _read_parquet(path)
                if frame is None:
                    continue
                new = _frame_rows(frame, str(path))
            else:
                with open(path, "rb") as fh:
                    data = fh.read()
                if data and not data.endswith(b"\n"):
                    continue  # still being written: wait for the final newline
                tail = _CsvTail(path)
                new, _ = tail.read()
            self.done[path.name] = sig
            rows.extend(new)
        return rows, False


# ================================================================================== bar source
class BarSource:
    """Poll a growing CSV or Parquet file, or a folder of daily files, for new multi-asset bars.

    Parameters
    ----------
    path : str or Path
        File (``.csv``, ``.parquet``, ``.pq``) or folder. It may not exist yet (polling waits).
    assets : sequence of str
        Asset columns every row must carry (finite levels > 0).
    signals : sequence of str
        Optional signal columns (default ``("vol_index",)``); missing or empty cells are NaN.
    after : date-like, optional
        Last bar already processed (history end or a previous run's last bar): rows dated on or
        before it are skipped.
    logger : logging.Logger, optional
        Where rejections are reported (default the ``drb.live`` logger).
    max_gap_days : float or None
        Rows dated more than this many calendar days after the last accepted bar (or ``after``)
        are skipped as future rows (default :data:`MAX_GAP_DAYS`; None: no limit).
    today : callable, optional
        Returns today's date (default: the local date); rows dated after it are skipped.

    Notes
    -----
    :meth:`poll` never blocks and never raises for a bad row; it raises :class:`DataError` only when
    the source cannot deliver any bar (a header without one of the asset columns or without ``date``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        assets: Sequence[str],
        *,
        signals: Sequence[str] = SIGNAL_COLUMNS,
        after: str | pd.Timestamp | None = None,
        logger: logging.Logger | None = None,
        max_gap_days: float | None = None,
        today: Callable[[], pd.Timestamp] | None = None,
    ) -> None:
        self.path = Path(path)
        gap = MAX_GAP_DAYS if max_gap_days is None else float(max_gap_days)
        if not gap > 0:
            raise ConfigError(f"--max-gap-days must be > 0, got {max_gap_days!r}")
        self.max_gap_days = gap
        self.today = today or (lambda: pd.Timestamp.now().normalize())
        self.assets = [str(a) for a in assets]
        if not self.assets:
            raise ConfigError("BarSource: no assets")
        self.signals = [str(s) for s in signals]
        self.log = logger or logging.getLogger(LOGGER_NAME)
        self.after = None if after is None else pd.Timestamp(after).normalize()
        self.last: pd.Timestamp | None = None
        self.seen: set[pd.Timestamp] = set()
        self.stats = SourceStats()
        self._backlog = True
        self._rereading = False
        self._no_signal: set[str] = set()
        self._reader: _CsvTail | _ParquetFile | _Folder | None = None

    # ---------------------------------------------------------------------------- reading
    def _make_reader(self) -> _CsvTail | _ParquetFile | _Folder | None:
        if self.path.is_dir():
            return _Folder(self.path)
        if not self.path.exists():
            return None
        if self.path.suffix.lower() in _PARQUET:
            return _ParquetFile(self.path)
        if self.path.name.lower().endswith(".gz"):
            raise DataError(f"{self.path}: a gzipped file cannot grow; give a plain CSV, a Parquet file or a folder")
        return _CsvTail(self.path)

    def poll(self) -> list[LiveBar]:
        """Read what arrived since the last poll; return the accepted bars in order."""
        if self._reader is None:
            self._reader = self._make_reader()
            if self._reader is None:
                if self.stats.polls == 0:
                    self.log.warning("%s does not exist yet: waiting for it", self.path)
                self.stats.polls += 1
                return []
        raws, replaced = self._reader.read()
        self.stats.polls += 1
        if replaced:
            self.log.warning("%s: file replaced or truncated; re-reading it, bars already accepted are skipped", self.path)
            self._backlog = True
            self._rereading = True
        bars: list[LiveBar] = []
        known_before = self.stats.known
        header_ok = True
        for raw in raws:
            if raw.values is not None and "__header__" in raw.values:
                header_ok = self._check_header(raw.values["__header__"], raw.where)
                continue
            if not header_ok:
                continue
            bar = self._accept(raw)
            if bar is not None:
                bars.append(bar)
        skipped = self.stats.known - known_before
        if skipped:
            upto = self.after if self.after is not None else self.last
            self.log.info("%s: skipped %d rows up to %s already processed", self.path, skipped, upto.date())
        self._backlog = False
        self._rereading = False
        return bars

    def _check_header(self, header: list[str], where: str) -> bool:
        lower = [h.lower() for h in header]
        problem = None
        if "date" not in lower:
            problem = "not a CSV with a 'date' column"  # never quote a file that is not ours
        else:
            missing = [a for a in self.assets if a not in header]
            if missing:
                problem = f"no column for asset '{missing[0]}' (columns: {', '.join(header[:8])})"
        if problem is None:
            for sig in self.signals:
                if sig not in header and sig not in self._no_signal:
                    self._no_signal.add(sig)
                    self.log.warning("%s: no '%s' column: the live bars carry no %s (NaN)", where.rsplit(":", 1)[0], sig, sig)
            return True
        if isinstance(self._reader, _Folder):
            self.log.error("%s: file skipped: %s", where.rsplit(":", 1)[0], problem)
            return False
        raise DataError(f"{where.rsplit(':', 1)[0]}: {problem}")

    # ---------------------------------------------------------------------------- validation
    def _reject(self, kind: str, where: str, reason: str) -> None:
        if kind == "malformed":
            self.stats.malformed += 1
        elif kind == "duplicate":
            self.stats.duplicate += 1
        elif kind == "future":
            self.stats.future += 1
        else:
            self.stats.late += 1
        self.log.warning("%s: %s row skipped: %s", where, kind, reason)

    @staticmethod
    def _number(value: Any) -> float | None:
        """Float value of a cell (NaN for empty), None when not a number."""
        if value is None:
            return math.nan
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        if text == "" or text.lower() in ("nan", "na", "null"):
            return math.nan
        try:
            return float(text)
        except ValueError:
            return None

    def _accept(self, raw: _RawRow) -> LiveBar | None:
        if raw.values is None:
            self._reject("malformed", raw.where, raw.problem)
            return None
        values = raw.values
        date_key = next(k for k in values if k.lower() == "date")
        dval = values[date_key]
        try:
            date = pd.Timestamp(dval.strip() if isinstance(dval, str) else dval)
            if pd.isna(date):
                raise ValueError
        except (ValueError, TypeError):
            self._reject("malformed", raw.where, f"unparseable date {_short(dval)}")
            return None
        if date.tz is not None:  # the local date of the bar, as the loaders keep it
            date = date.tz_localize(None)
        date = date.normalize()
        closes: dict[str, float] = {}
        for a in self.assets:
            x = self._number(values.get(a))
            if x is None:
                self._reject("malformed", raw.where, f"non-numeric value {_short(values.get(a))} for asset '{a}'")
                return None
            if math.isnan(x):
                self._reject("malformed", raw.where, f"missing value for asset '{a}'")
                return None
            if math.isinf(x) or x <= 0:
                self._reject("malformed", raw.where, f"{'infinite' if math.isinf(x) else 'non-positive'} level {x:g} for asset '{a}'")
                return None
            closes[a] = x
        signals: dict[str, float] = {}
        for s in self.signals:
            x = self._number(values.get(s))
            if x is None or math.isinf(x) or (x is not None and x < 0):
                self._reject("malformed", raw.where, f"bad value {_short(values.get(s))} for signal '{s}'")
                return None
            signals[s] = x
        if self._backlog and ((self.after is not None and date <= self.after) or (self._rereading and date in self.seen)):
            # Part of what the source held at start (or of a replaced file being re-read) and
            # already processed: skipped silently, counted in one summary line.
            self.stats.known += 1
            self.seen.add(date)
            return None
        floor = self.last if self.last is not None else self.after
        if floor is not None and date <= floor:
            if date == floor or date in self.seen:
                self._reject("duplicate", raw.where, f"bar {date.date()} already accepted")
            else:
                self._reject("late", raw.where, f"{date.date()} is before the last accepted bar {floor.date()} (late/out of order)")
            return None
        if self._future(date, floor, raw.where):
            return None
        self.last = date
        self.seen.add(date)
        self.stats.accepted += 1
        return LiveBar(date=date, closes=closes, signals=signals, where=raw.where)

    def _future(self, date: pd.Timestamp, floor: pd.Timestamp | None, where: str) -> bool:
        """Reject (log, count) a row dated after today or too far after the last bar."""
        if floor is not None and (date - floor).days > self.max_gap_days:
            self._reject(
                "future",
                where,
                f"{date.date()} is {(date - floor).days} days after the last bar {floor.date()} "
                f"(more than --max-gap-days {self.max_gap_days:g})",
            )
            return True
        today = pd.Timestamp(self.today()).normalize()
        if date > today:
            self._reject("future", where, f"{date.date()} is after today {today.date()}")
            return True
        return False


# ================================================================================== backtrader
class LiveData(bt.feed.DataBase):
    """One asset (or signal) of a :class:`LiveMarket`, as a backtrader live data feed.

    Do not create it directly: :meth:`LiveMarket.make_feeds` does, one per column, all sharing the
    market's poller. ``islive()`` is True, so cerebro neither preloads nor runs vectorized.
    """

    params = (("hub", None), ("slot", 0), ("column", ""), ("kind", "asset"))

    def islive(self) -> bool:
        return True

    def haslivedata(self) -> bool:
        return self.p.hub.has_data(self.p.slot)

    def _load(self) -> bool | None:
        item = self.p.hub.next_for(self.p.slot)
        if item is None or item is False:
            return item
        dt, o, h, low, c = item
        lines = self.lines
        lines.datetime[0] = bt.date2num(dt)
        lines.open[0] = o
        lines.high[0] = h
        lines.low[0] = low
        lines.close[0] = c
        lines.volume[0] = 0.0
        lines.openinterest[0] = 0.0
        return True


@dataclass
class _Slot:
    column: str
    kind: str
    queue: collections.deque = field(default_factory=collections.deque)
    delivered: int = 0


class LiveMarket:
    """A shared poller feeding one backtrader live feed per asset and per signal.

    Parameters
    ----------
    source : path or BarSource
        Growing CSV/Parquet file or folder of daily files (see the module docstring), or a ready
        :class:`BarSource`.
    assets : sequence of str
        Asset columns (one feed each, named by the column).
    signals : sequence of str
        Signal columns that get a feed of their own (default ``("vol_index",)``; ``()`` for none).
    poll_interval : float
        Seconds between two polls of the source while waiting for a bar (default 1.0).
    after : date-like, optional
        Last bar already processed; earlier rows are skipped (see :class:`BarSource`).
    last_closes : mapping, optional
        ``{asset: close}`` of the bar before the first live one: the first bar's open.
    max_bars : int, optional
        End the feeds after delivering this many bars.
    until : date-like, optional
        End the feeds after the bar of this date (bars dated later are not delivered).
    on_bar : callable, optional
        Called with each :class:`LiveBar` when it is queued for delivery.
    max_gap_days : float, optional
        See :class:`BarSource` (default :data:`MAX_GAP_DAYS`).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BarSource,
        assets: Sequence[str],
        *,
        signals: Sequence[str] = SIGNAL_COLUMNS,
        poll_interval: float = 1.0,
        after: str | pd.Timestamp | None = None,
        last_closes: Mapping[str, float] | None = None,
        max_bars: int | None = None,
        until: str | pd.Timestamp | None = None,
        logger: logging.Logger | None = None,
        on_bar: Any = None,
        max_gap_days: float | None = None,
    ) -> None:
        if poll_interval <= 0 or not math.isfinite(poll_interval):
            raise ConfigError(f"poll interval must be a positive number of seconds, got {poll_interval!r}")
        if max_bars is not None and max_bars < 0:
            raise ConfigError(f"max_bars must be >= 0, got {max_bars}")
        self.assets = [str(a) for a in assets]
        self.signals = [str(s) for s in signals]
        if isinstance(source, BarSource):
            self.source = source
        else:
            self.source = BarSource(
                source, self.assets, signals=self.signals, after=after, logger=logger, max_gap_days=max_gap_days
            )
        self.log = logger or logging.getLogger(LOGGER_NAME)
        self.poll_interval = float(poll_interval)
        self.max_bars = max_bars
        self.until = None if until is None else pd.Timestamp(until).normalize()
        self.on_bar = on_bar
        self._prev = {a: float(v) for a, v in (last_closes or {}).items()}
        self._slots = [_Slot(a, "asset") for a in self.assets] + [_Slot(s, "signal") for s in self.signals]
        self._stop = threading.Event()
        self._stop_at: int | None = None
        self._exhausted = False
        self._queued = 0
        self._next_poll = 0.0
        self._requested: str | None = None  # reason of request_stop
        self._end: tuple[str, int] | None = None  # (reason, bars queued) when the source ended
        self._feeds: list[LiveData] | None = None

    # ---------------------------------------------------------------------------- public
    def make_feeds(self) -> list[tuple[str, LiveData]]:
        """One :class:`LiveData` per asset, then one per signal: ``[(name, feed), ...]``."""
        if self._feeds is None:
            self._feeds = [LiveData(hub=self, slot=i, column=s.column, kind=s.kind) for i, s in enumerate(self._slots)]
        return [(s.column, f) for s, f in zip(self._slots, self._feeds)]

    def add_to(self, cerebro: bt.Cerebro) -> list[str]:
        """Add every feed to ``cerebro`` (assets first, named by column); returns the names."""
        names = []
        for name, feed in self.make_feeds():
            cerebro.adddata(feed, name=name)
            names.append(name)
        return names

    def request_stop(self, reason: str = "stop requested") -> None:
        """Finish the bar being delivered on every feed, then end the feeds (thread and signal safe)."""
        if self._requested is None:
            self._requested = reason
        self._stop.set()

    @property
    def stop_reason(self) -> str | None:
        """Why the feeds ended (or will end), decided from the bars delivered, not those queued.

        ``max_bars``/``until`` count only when every bar queued before that limit was delivered;
        a stop requested earlier (a signal while later bars wait in the queue) is reported as
        such. None while neither happened.
        """
        if self._end is not None and self.bars_delivered >= self._end[1]:
            return self._end[0]
        return self._requested

    def _source_end(self, reason: str) -> None:
        self._exhausted = True
        if self._end is None:
            self._end = (reason, self._queued)

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    @property
    def bars_delivered(self) -> int:
        """Complete bars delivered to every feed so far."""
        return min(s.delivered for s in self._slots)

    def has_data(self, slot: int) -> bool:
        """A bar is queued for this feed."""
        return bool(self._slots[slot].queue)

    # ---------------------------------------------------------------------------- internals
    def _enqueue(self, bars: Iterable[LiveBar]) -> None:
        for bar in bars:
            if self._exhausted:
                return
            if self.until is not None and bar.date > self.until:
                self._source_end(f"reached --until {self.until.date()}")
                return
            dt = bar.date.to_pydatetime()
            for slot in self._slots:
                if slot.kind == "asset":
                    c = bar.closes[slot.column]
                    o = self._prev.get(slot.column, c)
                    slot.queue.append((dt, o, max(o, c), min(o, c), c))
                else:
                    v = bar.signals.get(slot.column, math.nan)
                    slot.queue.append((dt, v, v, v, v))
            self._prev.update(bar.closes)
            self._queued += 1
            if self.on_bar is not None:
                self.on_bar(bar)
            if self.max_bars is not None and self._queued >= self.max_bars:
                self._source_end(f"processed --max-bars {self.max_bars}")
            elif self.until is not None and bar.date >= self.until:
                self._source_end(f"reached --until {self.until.date()}")

    def _poll(self) -> None:
        self._next_poll = time.monotonic() + self.poll_interval
        self._enqueue(self.source.poll())

    def _pop(self, slot: _Slot) -> tuple:
        slot.delivered += 1
        return slot.queue.popleft()

    def next_for(self, index: int) -> tuple | bool | None:
        """The next bar for feed ``index``: a tuple, None (nothing yet) or False (feed ended)."""
        slot = self._slots[index]
        if self._stop.is_set() and self._stop_at is None:
            # Freeze: feeds that have not yet received the bar being delivered still get it.
            self._stop_at = max(s.delivered for s in self._slots)
        if self._stop_at is not None:
            if slot.delivered < self._stop_at and slot.queue:
                return self._pop(slot)
            return False
        if slot.queue:
            return self._pop(slot)
        if self._exhausted or (self.max_bars is not None and self._queued >= self.max_bars):
            self._source_end(f"processed --max-bars {self.max_bars}")
            return False
        while True:
            now = time.monotonic()
            if now < self._next_poll:
                if index != 0:
                    return None  # the first feed waits and polls for everyone
                # In slices: a blocked Event.wait does not let Python run a signal handler (a
                # SIGINT/SIGTERM requesting the stop) before its timeout.
                self._stop.wait(min(self._next_poll - now, _WAIT_SLICE))
                if self._stop.is_set():
                    return self.next_for(index)
            self._poll()
            if slot.queue:
                return self._pop(slot)
            if self._exhausted:
                return False
            if slot.delivered:
                return None
            # No bar delivered yet: keep waiting here rather than hand cerebro an empty round.
            # On a round without any bar cerebro still runs its broker, which values every
            # position at close[0]: on feeds that have no bar yet that is an IndexError (and a
            # resumed paper run holds positions before its first live bar).
