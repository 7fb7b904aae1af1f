"""Paper trading: any strategy of :mod:`strategies.bt_strategies` on a live feed, restartable.

``drb paper CONFIG --state DIR [--live PATH] [--strategy NAME] [--reset] [--poll S] [--max-bars N]
[--until DATE] [--max-gap-days D]`` (or ``drb paper --demo --state DIR``)
warms the strategy's allocator up on the config's price history, then trades each new bar of the
live source (:mod:`feeds.live`) on backtrader's paper broker (``BackBroker``: the same execution,
costs and turnover caps as a backtest; decisions at the close, orders sized and filled at the next
open).

The state folder
----------------
``state.json`` (format ``drb-paper-state``, version :data:`STATE_VERSION`), rewritten atomically
(temporary file, fsync, rename) after every bar; it is the commit point of a bar. It records the
broker (cash, every position's size and average price, value), the pending decision (taken at the
last close, to be traded at the next open), the last rebalance, the trigger cooldown, the budgets
and smoothing state (dynamic model), the last processed bar and its closes, the live-source
counters of the current session, the journal's committed length, last sequence number and sha256, and the allocator file.

``allocator-NNNNNNNN.json`` (NNNNNNNN = live bars processed): the allocator with every
estimator's state (returns history, risk model, regime classifiers, Markov counts, budgets,
triggers), the pending decision and the rebalance log, stored as data by
:mod:`runners.state_codec` (numbers, arrays, tables and the attributes of the project's own classes;
never pickle: loading it runs no code named by the file). It is written (atomically) before
``state.json``, which records its sha256; older files are removed after the commit. The state
folder is made mode 0700 and its files 0600. A state folder of format version 1 (a pickled
``allocator-NNNNNNNN.pkl``) is refused, never unpickled: start afresh with ``--reset``.

``journal.jsonl``: append-only, one JSON object per line, each ``write`` fsynced before the run goes
on: ``decision`` (at a close), ``order`` (written *before* the order goes to the broker), ``fill`` and
``order_issue``. Every entry has a ``seq`` (1, 2, ...), a deterministic ``id`` (``<bar>/<type>/<k>``),
the ``bar`` date and ``logged_at`` (UTC wall clock).

Resuming
--------
The live source is read again from its start and every row dated on or before the committed last
bar is skipped, so no bar is processed twice. Journal lines beyond the committed length belong to the
one bar that was being processed when the process died ("in doubt"): that bar is processed again from
the committed state, which is deterministic, and every entry it produces must equal the in-doubt
entry with the same ``id`` (then it is not written again: an order already journaled is never
journaled - sent - twice; the simulated broker re-applies it to rebuild its cash and positions); a
difference stops the run with a :class:`drb.errors.StateError`. A half-written last journal line is
cut. A run killed inside its very first commit (after the warm-up, before any bar: only
``allocator-00000000.json`` exists, nothing journaled) starts afresh; temporary files of atomic
writes cut by a kill are removed at the next start. A missing, corrupt, truncated or version-mismatched state (or a journal shorter than, or
different from, what the state committed) stops the run with a one-line :class:`StateError` and
nothing is traded; ``--reset`` moves the old files into ``DIR/reset-<timestamp>/`` and starts afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import signal
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError, StateError
from runners.io import atomic_write_bytes
from runners.state_codec import decode, encode

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "Journal",
    "PaperOptions",
    "PaperResult",
    "PaperSession",
    "check_broker_against_journal",
    "load_state",
    "paper_strategy_class",
    "run_paper",
    "register_cli",
]

STATE_FORMAT = "drb-paper-state"
STATE_VERSION = 2
PAYLOAD_VERSION = 2
#: State versions written with a pickled allocator: refused, never loaded.
_PICKLE_VERSIONS = (1,)
_ALLOC_SUFFIX = ".json"
STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = ".lock"
#: Fault injection for tests: ``journal:N`` (SIGKILL right after journal entry N is fsynced) or
#: ``commit:N`` (after the allocator file of live bar N is written, before ``state.json``).
KILL_ENV = "DRB_PAPER_KILL_AT"

log = logging.getLogger("drb.paper")


def _kill_point(kind: str, n: int) -> None:
    spec = os.environ.get(KILL_ENV)
    if spec and spec == f"{kind}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(x: Any) -> float | None:
    """JSON-safe float (NaN and infinities become null)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _day(ts: Any) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ================================================================================== journal
class Journal:
    """Append-only JSON-lines journal of decisions, orders and fills (each line fsynced).

    Parameters
    ----------
    path : Path
        The ``journal.jsonl`` file (created on the first entry).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.seq = 0
        self.size = 0
        self._hash = hashlib.sha256()
        self.in_doubt: dict[str, dict[str, Any]] = {}
        self.in_doubt_bar: str | None = None
        self._matched: set[str] = set()
        self.replayed = 0

    @staticmethod
    def _comparable(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k not in ("seq", "logged_at")}

    def open(self, committed_bytes: int, committed_seq: int, committed_sha: str) -> None:
        """Check the committed prefix against the state and load the in-doubt tail.

        Raises
        ------
        StateError
            The journal is missing, shorter than or different from what the state committed, or a
            complete line after the committed prefix is not a journal entry.
        """
        if not self.path.exists():
            if committed_bytes:
                raise StateError(f"{self.path}: journal missing, the state committed {committed_bytes} bytes of it; refusing to trade")
            return
        data = self.path.read_bytes()
        if len(data) < committed_bytes:
            raise StateError(
                f"{self.path}: journal truncated: {len(data)} bytes, the state committed {committed_bytes}; refusing to trade"
            )
        if _sha256(data[:committed_bytes]) != committed_sha:
            raise StateError(f"{self.path}: journal altered: its committed part does not match the sha256 in state.json; refusing to trade")
        tail = data[committed_bytes:]
        end = tail.rfind(b"\n") + 1
        if end < len(tail):
            log.warning("%s: cutting a half-written last line (%d bytes) left by an interrupted run", self.path, len(tail) - end)
            with open(self.path, "r+b") as fh:
                fh.truncate(committed_bytes + end)
                fh.flush()
                os.fsync(fh.fileno())
            tail = tail[:end]
        seq = committed_seq
        for i, line in enumerate(tail.splitlines(), start=1):
            try:
                entry = json.loads(line)
                eid = entry["id"]
                eseq = int(entry["seq"])
            except (ValueError, KeyError, TypeError):
                raise StateError(f"{self.path}: line {i} after the committed part is not a journal entry; refusing to trade") from None
            if eseq != seq + 1:
                raise StateError(f"{self.path}: sequence gap after entry {seq} (found {eseq}); refusing to trade")
            seq = eseq
            self.in_doubt[eid] = entry
            self.in_doubt_bar = entry.get("bar", self.in_doubt_bar)
        self.seq = seq
        self.size = committed_bytes + len(tail)
        self._hash = hashlib.sha256(data[:committed_bytes] + tail)
        if self.in_doubt:
            log.warning(
                "%s: %d entries of bar %s were written after the last commit: that bar is processed again and must reproduce them",
                self.path,
                len(self.in_doubt),
                self.in_doubt_bar,
            )

    def append(self, entry: dict[str, Any]) -> bool:
        """Write one entry (assigning ``seq`` and ``logged_at``) unless it is the in-doubt copy.

        Returns
        -------
        bool
            True when written, False when the identical in-doubt entry was already there.

        Raises
        ------
        StateError
            The entry differs from the in-doubt entry with the same id, or a new entry would be
            written while in-doubt entries are not yet reproduced.
        """
        eid = entry["id"]
        if eid in self.in_doubt:
            old = self.in_doubt[eid]
            if self._comparable(old) != self._comparable(entry):
                raise StateError(
                    f"{self.path}: resuming bar {entry.get('bar')}: {eid} differs from the journaled one "
                    f"({self._comparable(old)} != {self._comparable(entry)}); refusing to trade"
                )
            self._matched.add(eid)
            self.replayed += 1
            return False
        pending = [k for k in self.in_doubt if k not in self._matched]
        if pending:
            raise StateError(
                f"{self.path}: resuming bar {self.in_doubt_bar}: the journal has {pending[0]} but the run produced {eid}; refusing to trade"
            )
        full = {"seq": self.seq + 1, **entry, "logged_at": _now()}
        line = (json.dumps(full, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.seq += 1
        self.size += len(line)
        self._hash.update(line)
        _kill_point("journal", self.seq)
        return True

    def check_resolved(self, bar: str) -> None:
        """At the commit of ``bar``: every in-doubt entry must have been reproduced."""
        if not self.in_doubt:
            return
        if self.in_doubt_bar is not None and bar < self.in_doubt_bar:
            return
        missing = [k for k in self.in_doubt if k not in self._matched]
        if missing:
            raise StateError(
                f"{self.path}: resuming bar {self.in_doubt_bar}: journaled {missing[0]} was not reproduced; refusing to trade"
            )
        log.warning("bar %s resumed: %d journaled entries reproduced, none written twice", self.in_doubt_bar, len(self.in_doubt))
        self.in_doubt.clear()
        self._matched.clear()

    def committed(self) -> dict[str, Any]:
        """What ``state.json`` records about the journal."""
        return {"file": self.path.name, "seq": self.seq, "bytes": self.size, "sha256": self._hash.hexdigest()}


# ================================================================================== state
_WARMUP_PKL = "allocator-00000000.json"
_OLD_FORMAT = "written by an older drb (pickled allocator; this drb never loads pickles); refusing to trade (--reset starts afresh)"
_REQUIRED = ("format", "version", "strategy", "assets", "last_bar", "bars_processed", "broker", "allocator", "journal")


def load_state(folder: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Read and verify ``state.json`` and its allocator file (data, never unpickled).

    Returns
    -------
    (state, payload) or None
        None when the folder holds no state at all.

    Raises
    ------
    StateError
        Corrupt, truncated, version-mismatched or incomplete state; a state of the old pickled
        format; allocator file missing, not matching its recorded sha256 or holding anything but
        data; journal or allocator files without a state.
    """
    path = folder / STATE_FILE
    if not path.exists():
        journal = folder / JOURNAL_FILE
        if any(folder.glob("allocator-*.pkl")):
            raise StateError(f"{folder}: state {_OLD_FORMAT}")
        leftovers = [p.name for p in folder.glob(f"allocator-*{_ALLOC_SUFFIX}")]
        if leftovers == [_WARMUP_PKL] and not (journal.exists() and journal.stat().st_size):
            # Killed inside the very first commit (after the warm-up, before any bar, nothing
            # journaled, nothing traded): that run never started; start afresh.
            log.warning("%s: removing %s left by a run killed before its first commit; starting afresh", folder, _WARMUP_PKL)
            (folder / _WARMUP_PKL).unlink()
            with contextlib.suppress(FileNotFoundError):
                journal.unlink()
            return None
        leftovers += [JOURNAL_FILE] if journal.exists() else []
        if leftovers:
            raise StateError(f"{folder}: {leftovers[0]} exists but {STATE_FILE} is missing; refusing to trade (--reset starts afresh)")
        return None
    state = _read_state_json(path)
    alloc = state["allocator"]
    name = str(alloc.get("file", "")) if isinstance(alloc, dict) else ""
    afile = folder / name
    if not name.startswith("allocator-") or not name.endswith(_ALLOC_SUFFIX) or "/" in name:
        raise StateError(f"{path}: bad allocator file name {name!r}; refusing to trade (--reset starts afresh)")
    if not afile.is_file():
        raise StateError(f"{afile}: allocator state file missing; refusing to trade (--reset starts afresh)")
    blob = afile.read_bytes()
    if _sha256(blob) != alloc.get("sha256"):
        raise StateError(f"{afile}: allocator state does not match the sha256 recorded in {STATE_FILE}; refusing to trade")
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StateError(f"{afile}: allocator state is not JSON; refusing to trade (--reset starts afresh)") from None
    payload = decode(data, str(afile))
    if not isinstance(payload, dict) or payload.get("version") != PAYLOAD_VERSION:
        raise StateError(f"{afile}: allocator state of another version; refusing to trade (--reset starts afresh)")
    return state, payload


def _read_state_json(path: Path) -> dict[str, Any]:
    """``state.json`` parsed and checked for format, version and required keys."""
    raw = path.read_bytes()
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        kind = "truncated" if raw and not raw.rstrip().endswith(b"}") else "corrupt"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateError(f"{path}: {kind} state file ({msg}); refusing to trade (--reset starts afresh)") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise StateError(f"{path}: not a drb paper state file; refusing to trade (--reset starts afresh)")
    if state.get("version") in _PICKLE_VERSIONS:
        raise StateError(f"{path}: state format version {state['version']} {_OLD_FORMAT}")
    if state.get("version") != STATE_VERSION:
        raise StateError(
            f"{path}: state format version {state.get('version')!r}, this drb reads version {STATE_VERSION}; refusing to trade (--reset starts afresh)"
        )
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise StateError(f"{path}: incomplete state (no '{missing[0]}'); refusing to trade (--reset starts afresh)")
    return state


def check_broker_against_journal(state: Mapping[str, Any], journal: Path, committed: int, initial_cash: float) -> None:
    """Rebuild cash and positions from the journal's committed fills; they must match the state.

    Parameters
    ----------
    state : mapping
        The committed ``state.json`` (its ``broker`` cash, positions and value, ``last_closes``).
    journal : Path
        ``journal.jsonl``; only its first ``committed`` bytes (what the state committed) count.
    initial_cash : float
        The broker's starting cash (currency units).

    Raises
    ------
    StateError
        Cash, a position's size or the value in the state differs from what the fills give (a
        hand-edited or mismatched state); one line.
    """
    data = journal.read_bytes()[:committed] if committed else b""
    cash, sizes, traded = float(initial_cash), {}, 0.0
    for i, line in enumerate(data.splitlines(), start=1):
        try:
            entry = json.loads(line)
            if entry.get("type") != "fill":
                continue
            amount, price, comm = float(entry["amount"]), float(entry["price"]), float(entry["commission"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StateError(f"{journal}: line {i} is not a journal entry; refusing to trade") from None
        cash -= amount * price + comm
        sizes[entry["symbol"]] = sizes.get(entry["symbol"], 0.0) + amount
        traded += abs(amount * price)
    broker = state["broker"]
    where = f"{journal.parent / STATE_FILE}"
    tail = "refusing to trade (--reset starts afresh)"
    tol = 0.01 + 1e-9 * (traded + abs(initial_cash))  # currency units: float rounding of the fills' sums
    try:
        s_cash = float(broker["cash"])
        positions = {str(a): float(p["size"]) for a, p in broker["positions"].items()}
        value = float(broker["value"])
        closes = {str(a): float(c) for a, c in state["last_closes"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StateError(f"{where}: unreadable broker section; {tail}") from None
    if not abs(s_cash - cash) <= tol:
        raise StateError(f"{where}: cash {s_cash:,.2f} disagrees with {cash:,.2f} rebuilt from the fills in {journal.name}; {tail}")
    for asset in sorted(set(positions) | set(sizes)):
        a, b = positions.get(asset, 0.0), sizes.get(asset, 0.0)
        if not abs(a - b) <= 1e-9 * max(1.0, abs(b)):
            raise StateError(f"{where}: position {asset} of {a:g} disagrees with {b:g} rebuilt from the fills in {journal.name}; {tail}")
    if all(a in closes for a in positions):
        expected = s_cash + sum(size * closes[a] for a, size in positions.items())
        if not abs(value - expected) <= tol:
            raise StateError(f"{where}: value {value:,.2f} disagrees with cash + positions at the last closes ({expected:,.2f}); {tail}")


def _archive(folder: Path) -> Path | None:
    """Move every state file of ``folder`` into ``folder/reset-<timestamp>/`` (``--reset``)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.name != LOCK_FILE and not p.name.startswith(".")]
    files = [p for p in files if p.name in (STATE_FILE, JOURNAL_FILE) or (p.name.startswith("allocator-") and p.suffix in (".pkl", _ALLOC_SUFFIX))]
    if not files:
        return None
    dest = folder / f"reset-{_dt.datetime.now():%Y%m%dT%H%M%S%f}"
    dest.mkdir(mode=0o700)
    for p in files:
        os.replace(p, dest / p.name)
    return dest


# ================================================================================== setup
@dataclass
class PaperOptions:
    """Everything ``drb paper`` was asked to do (see :func:`run_paper`)."""

    state: Path
    config: Path | None = None
    demo: bool = False
    live: Path | None = None
    strategy: str | None = None
    reset: bool = False
    poll: float = 1.0
    max_bars: int | None = None
    until: pd.Timestamp | None = None
    seed: int = 0
    start: str = "2018-01-02"
    end: str = "2025-06-30"
    history_bars: int = 504
    replay_interval: float = 1.0
    quiet: bool = False
    max_gap_days: float = 10.0


@dataclass
class PaperSetup:
    """The resolved run: strategy, parameters, broker, data sources."""

    strategy: str
    params: dict[str, Any]
    broker: dict[str, float]
    history_path: Path
    live: Path
    cfg: Any
    source: dict[str, Any]
    macro: pd.DataFrame | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _load_history_prices(source: Any, cfg: Any, *, name: str) -> pd.DataFrame:
    """The warm-up prices; with ``[assets]``, only those columns (and a ``vol_index`` column when
    the file has one) are read, so a merged prices file with other columns works as in compare."""
    from feeds.loaders import load_prices

    if not cfg.assets:
        return load_prices(source, name=name)
    if isinstance(source, pd.DataFrame):
        header = [str(c) for c in source.columns]
    elif Path(source).suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        header = list(pq.read_schema(source).names)
    else:
        from feeds.loaders import _head_lines, _sniff_delimiter

        path = Path(source)
        header = _sniff_delimiter(_head_lines(path, path.suffix.lower() == ".gz", name))[1]
    columns = [*cfg.assets, *(["vol_index"] if "vol_index" in header else [])]
    return load_prices(source, name=name, columns=columns)


def load_history(cfg: Any):
    """The warm-up history of a config as :class:`feeds.MarketData`.

    The prices table may carry a ``vol_index`` column (the live file's layout); it is then the
    volatility index unless ``data.vol_index`` names a file.
    """
    from feeds.loaders import load_macro, load_vol_index
    from feeds.market import align_market

    path = Path(cfg.prices)
    end = None if cfg.end is None else pd.Timestamp(cfg.end)
    if path.suffix.lower() == ".csv" and path.is_file():
        raw = path.read_bytes()
        # The history file may be the live file itself: read only its complete lines (it may be
        # caught while a row is being appended) and, with data.end, only the lines up to the
        # first one dated after it. The rest is the live part, checked row by row by the live
        # feed (a malformed live row is skipped there, not fatal to every fresh start).
        keep = raw[: raw.rfind(b"\n") + 1]
        if end is not None:
            keep = _csv_up_to(keep, end)
        if len(keep) < len(raw):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                cut = Path(tmp) / path.name
                cut.write_bytes(keep)
                prices = _load_history_prices(cut, cfg, name=str(path))
        else:
            prices = _load_history_prices(path, cfg, name=str(path))
    elif path.suffix.lower() in (".parquet", ".pq") and path.is_file() and end is not None:
        frame = pd.read_parquet(path)
        if "date" not in frame.columns and isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis("date").reset_index()
        dates = pd.to_datetime(frame["date"], errors="coerce") if "date" in frame.columns else None
        if dates is not None:
            after = np.flatnonzero((dates > end).to_numpy())
            if after.size:
                frame = frame.iloc[: after[0]]
        prices = _load_history_prices(frame, cfg, name=str(path))
    else:
        prices = _load_history_prices(path, cfg, name=str(path))
    vol = None
    if "vol_index" in prices.columns:
        vol = prices.pop("vol_index").dropna()
    if cfg.vol_index is not None:
        vol = load_vol_index(cfg.vol_index)
    macro = load_macro(cfg.macro) if cfg.macro is not None else None
    if cfg.start is not None or cfg.end is not None:
        prices = prices.loc[cfg.start : cfg.end]
        if vol is not None:
            vol = vol.loc[cfg.start : cfg.end]
    labels = {"prices": str(cfg.prices)}
    if cfg.vol_index is not None:
        labels["vol_index"] = str(cfg.vol_index)
    if cfg.macro is not None:
        labels["macro"] = str(cfg.macro)
    return align_market(
        prices,
        vol_index=vol if vol is not None and len(vol) else None,
        macro=macro,
        asset_classes=cfg.assets or None,
        ffill_limit=cfg.ffill_limit,
        labels=labels,
    )


def _csv_up_to(data: bytes, end: pd.Timestamp) -> bytes:
    """The lines of a CSV (header first) before the first row dated after ``end``."""
    lines = data.splitlines(keepends=True)
    if not lines:
        return data
    header = [h.strip().strip('"').lower() for h in lines[0].decode("utf-8", "replace").split(",")]
    col = header.index("date") if "date" in header else 0
    size = len(lines[0])
    for line in lines[1:]:
        fields = line.split(b",")
        if len(fields) > col:
            try:
                date = pd.Timestamp(fields[col].strip().strip(b'"').decode())
            except (ValueError, UnicodeDecodeError):
                date = None
            if date is not None and not pd.isna(date) and date.tz_localize(None) > end:
                break
        size += len(line)
    return data[:size]


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.DataFrame | pd.Series):
        return f"<{type(value).__name__} {value.shape}>"
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | str | bool) or value is None:
        return value
    return repr(value)


def resolve_setup(opts: PaperOptions) -> PaperSetup:
    """Read the config (or prepare the demo folder) and pick the strategy and its parameters."""
    from runners.backtest import strategy_class, validate_strategy_params
    from runners.compare import strategy_params_for
    from runners.config import RunConfig, load_config

    if opts.demo and opts.live is not None:
        raise ConfigError("--live and --demo exclude each other (--demo replays the embedded market into DIR/demo/)")
    if opts.config is not None:
        cfg = load_config(opts.config, require_prices=not opts.demo, strategy_validator=validate_strategy_params)
    else:
        if not opts.demo:
            raise ConfigError("give a CONFIG file, or --demo")
        cfg = RunConfig(source="drb paper --demo")
    source: dict[str, Any]
    if opts.demo:
        from runners.replay import prepare_replay

        plan = prepare_replay(
            opts.state / "demo", seed=opts.seed, start=opts.start, end=opts.end, history_bars=opts.history_bars
        )
        cfg.prices, cfg.vol_index, cfg.macro, cfg.assets = plan.history, None, plan.macro, {}
        live = plan.live
        source = {"mode": "demo", "seed": opts.seed, "start": opts.start, "end": opts.end, "history_bars": opts.history_bars}
        extras = {"replay": plan}
    else:
        if cfg.prices is None:
            raise ConfigError(f"{opts.config}: data.prices is required (the warm-up history)")
        live = Path(opts.live) if opts.live is not None else Path(cfg.prices)
        source = {"mode": "config", "config": str(opts.config), "history": str(cfg.prices), "live": str(live)}
        extras = {}
    name = opts.strategy or (cfg.strategies[0] if cfg.strategies and len(cfg.strategies) == 1 else "DynamicRiskBudget")
    strategy_class(name)
    params = strategy_params_for(name, cfg)
    broker = dict(cfg.broker)
    macro = None
    if cfg.macro is not None:
        from feeds.loaders import load_macro

        macro = load_macro(cfg.macro)
    return PaperSetup(name, params, broker, Path(cfg.prices), Path(live), cfg, source, macro, extras)


def _fingerprint(setup: PaperSetup) -> dict[str, Any]:
    params = {k: _jsonable(v) for k, v in sorted(setup.params.items()) if not isinstance(v, pd.DataFrame | pd.Series)}
    return {"strategy": setup.strategy, "params": params, "broker": dict(sorted(setup.broker.items()))}


# ================================================================================== session
class PaperSession:
    """State, journal and bookkeeping of one ``drb paper`` process (used by the strategy mixin).

    Parameters
    ----------
    folder : Path
        The state folder.
    setup : PaperSetup
    state, payload : dict or None
        The committed state and allocator payload (None: fresh start).
    journal : Journal
    history : MarketData or None
        Warm-up history (fresh start only).
    """

    def __init__(self, folder: Path, setup: PaperSetup, state: dict | None, payload: dict | None, journal: Journal, history: Any) -> None:
        self.folder = folder
        self.setup = setup
        self.state = state
        self.payload = payload
        self.journal = journal
        self.history = history
        self.bars_processed = int(state["bars_processed"]) if state else 0
        self.session_bars = 0
        self.source_stats: Callable[[], dict[str, int]] | None = None
        self._bar_key: str | None = None
        self._k_order = 0
        self._refs: dict[int, str] = {}
        self._decision_seen: Any = None
        self._decision_ctx: Any = None
        self.created = state.get("created") if state else _now()
        self.vol_index_feed = False

    # ---------------------------------------------------------------------------- start
    def on_start(self, strat: Any) -> None:
        """Restore the committed state, or warm the allocator up on the history and commit."""
        if self.payload is not None:
            self._restore(strat)
        else:
            self._warm_up(strat)
            self.commit(strat, warmup=True)

    def _restore(self, strat: Any) -> None:
        st, pl = self.state, self.payload
        assert st is not None and pl is not None
        alloc = pl["allocator"]
        if list(getattr(alloc, "assets", [])) != list(strat.asset_names):
            raise StateError(f"{self.folder}: the state's assets {alloc.assets} differ from the feeds' {strat.asset_names}; refusing to trade")
        strat.allocator = alloc
        strat.pending = pl["pending"]
        strat._retry = bool(pl["retry"])
        strat.last_decision = pl["last_decision"]
        strat.rebalances = list(pl["rebalances"])
        self._decision_seen = strat.last_decision
        broker = strat.broker
        broker.setcash(float(st["broker"]["cash"]))
        positions = st["broker"]["positions"]
        for name, data in zip(strat.asset_names, strat.asset_datas):
            pos = positions.get(name, {"size": 0.0, "price": 0.0})
            broker.getposition(data).set(float(pos["size"]), float(pos["price"]))
        if self.setup.macro is not None:
            added = _extend_macro(alloc, self.setup.macro)
            if added:
                log.info("added %d new macro months to the cycle classifier", added)
        log.info(
            "resumed %s from %s: %d live bars processed, last bar %s, value %s",
            self.setup.strategy,
            self.folder / STATE_FILE,
            self.bars_processed,
            st["last_bar"],
            f"{st['broker']['value']:,.2f}",
        )

    def _warm_up(self, strat: Any) -> None:
        hist = self.history
        if list(hist.assets) != list(strat.asset_names):
            raise DataError(f"{self.setup.history_path}: history assets {hist.assets} differ from the live feeds' {strat.asset_names}")
        closes = hist.prices.to_numpy(dtype=float)
        vol = hist.vol_index.reindex(hist.prices.index).to_numpy(dtype=float) if hist.vol_index is not None else None
        for i, date in enumerate(hist.prices.index):
            strat.allocator.update(date, closes[i], vol[i] if vol is not None else math.nan)
        warm = int(getattr(strat.allocator, "warmup", 0))
        n = len(hist.prices)
        when = "at the first live bar" if n > warm else f"after {warm - n + 1} live bars"
        log.info("warmed up on %d history bars (%s .. %s); warmup=%d: first investment %s", n, _day(hist.prices.index[0]), _day(hist.prices.index[-1]), warm, when)

    # ---------------------------------------------------------------------------- journal hooks
    def _bar_date(self, strat: Any) -> str:
        return _day(strat.asset_datas[0].datetime.date(0))

    def _new_bar(self, key: str) -> None:
        if key != self._bar_key:
            self._bar_key = key
            self._k_order = 0

    def before_execute(self, strat: Any) -> None:
        """Remember the decision being executed (for the order entries)."""
        self._decision_ctx = strat.pending

    def before_order(self, strat: Any, data: Any, size: float, side: str) -> str:
        """Journal an order before it is sent; returns its id."""
        bar = self._bar_date(strat)
        self._new_bar(bar)
        oid = f"{bar}/order/{self._k_order}"
        self._k_order += 1
        dec = self._decision_ctx
        entry = {
            "id": oid,
            "type": "order",
            "bar": bar,
            "symbol": data._name,
            "side": side,
            "size": float(size),
            "planned_price": float(data.open[0]),
            "trigger": dec.trigger if dec is not None else None,
        }
        self.journal.append(entry)
        return oid

    def after_order(self, order: Any, oid: str) -> None:
        """Link backtrader's order reference to the journal id."""
        if order is not None:
            self._refs[order.ref] = oid

    def on_order(self, strat: Any, order: Any) -> None:
        """Journal a fill or an order problem."""
        if order.status in (order.Submitted, order.Accepted):
            return
        oid = self._refs.get(order.ref)
        if oid is None:
            return
        bar = self._bar_date(strat)
        k = oid.rsplit("/", 1)[1]
        if order.status == order.Completed:
            entry = {
                "id": f"{oid.split('/', 1)[0]}/fill/{k}",
                "type": "fill",
                "bar": bar,
                "order": oid,
                "symbol": order.data._name,
                "amount": float(order.executed.size),
                "price": float(order.executed.price),
                "commission": float(order.executed.comm),
            }
        else:
            entry = {
                "id": f"{oid.split('/', 1)[0]}/issue/{k}",
                "type": "order_issue",
                "bar": bar,
                "order": oid,
                "symbol": order.data._name,
                "status": order.getstatusname(),
                "size": float(order.created.size),
            }
        self.journal.append(entry)

    def _journal_decision(self, strat: Any, bar: str) -> None:
        dec = strat.last_decision
        if dec is None or dec is self._decision_seen:
            return
        self._decision_seen = dec
        self.journal.append(
            {
                "id": f"{bar}/decision/0",
                "type": "decision",
                "bar": bar,
                "trigger": dec.trigger,
                "target": {a: float(w) for a, w in zip(strat.asset_names, dec.target)},
            }
        )

    # ---------------------------------------------------------------------------- commit
    def on_bar_end(self, strat: Any) -> None:
        """After the strategy's ``next``: journal a new decision, then commit the bar."""
        bar = self._bar_date(strat)
        self._journal_decision(strat, bar)
        self.journal.check_resolved(bar)
        self.bars_processed += 1
        self.session_bars += 1
        self.commit(strat)
        if not self.setup.extras.get("quiet"):
            rec = strat.rebalances[-1] if strat.rebalances and _day(strat.rebalances[-1]["date"]) == bar else None
            what = f"  rebalanced ({rec['trigger']}, turnover {rec['turnover']:.4f})" if rec else ""
            if strat.pending is not None:
                what += f"  decided: {strat.pending.trigger} (orders at the next open)"
            log.info("bar %s  value %s  cash %s%s", bar, f"{strat.broker.getvalue():,.2f}", f"{strat.broker.getcash():,.2f}", what)

    def _state_dict(self, strat: Any, last_bar: str, pkl_name: str, pkl_sha: str, pkl_size: int) -> dict[str, Any]:
        alloc = strat.allocator
        broker = strat.broker
        positions = {}
        for name, data in zip(strat.asset_names, strat.asset_datas):
            pos = broker.getposition(data)
            positions[name] = {"size": float(pos.size), "price": float(pos.price)}
        if self.history is not None and self.bars_processed == 0:
            closes = {a: float(v) for a, v in self.history.prices.iloc[-1].items()}
            vi = self.history.vol_index.iloc[-1] if self.history.vol_index is not None else None
        else:
            closes = {a: float(d.close[0]) for a, d in zip(strat.asset_names, strat.asset_datas)}
            vi = strat.vol_data.close[0] if strat.vol_data is not None else None
        pending = strat.pending
        last_reb = strat.rebalances[-1] if strat.rebalances else None
        lrb = getattr(alloc, "last_rebalance_bar", None)
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "drb_version": _drb_version(),
            "created": self.created,
            "written_at": _now(),
            "strategy": self.setup.strategy,
            "fingerprint": _fingerprint(self.setup),
            "source": self.setup.source,
            "assets": list(strat.asset_names),
            "asset_classes": dict(alloc.asset_classes),
            "last_bar": last_bar,
            "bars_processed": self.bars_processed,
            "last_closes": closes,
            "last_vol_index": _num(vi),
            "vol_index_feed": bool(self.vol_index_feed),
            "broker": {
                "cash": float(broker.getcash()),
                "value": float(broker.getvalue()),
                "positions": positions,
                "commission": float(self.setup.broker.get("commission", 0.0)),
                "slippage": float(self.setup.broker.get("slippage", 0.0)),
            },
            "pending": None
            if pending is None
            else {
                "trigger": pending.trigger,
                "target": {a: float(w) for a, w in zip(strat.asset_names, pending.target)},
                "retry": bool(strat._retry),
            },
            "last_rebalance": None
            if last_reb is None
            else {
                "date": _day(last_reb["date"]),
                "trigger": last_reb["trigger"],
                "turnover": float(last_reb["turnover"]),
                "cost": float(last_reb["cost"]),
            },
            "last_decision_bar": lrb,
            "allocator_bar": int(alloc.bar),
            "invested": bool(alloc.invested),
            "cooldown": _cooldown(alloc),
            "budgets": _budgets(alloc, strat.asset_names),
            "allocator": {"file": pkl_name, "sha256": pkl_sha, "bytes": pkl_size, "class": type(alloc).__name__},
            "journal": self.journal.committed(),
            "live_source": self.source_stats() if self.source_stats else None,
        }
        if hasattr(alloc, "report"):
            state["allocator"]["report"] = _jsonable(alloc.report())
        return state

    def commit(self, strat: Any, *, warmup: bool = False) -> None:
        """Write the allocator file, then ``state.json`` (the commit), then drop older allocator files."""
        if warmup:
            last_bar = _day(self.history.prices.index[-1])
        else:
            last_bar = self._bar_date(strat)
        payload = {
            "version": PAYLOAD_VERSION,
            "allocator": strat.allocator,
            "pending": strat.pending,
            "retry": bool(strat._retry),
            "last_decision": strat.last_decision,
            "rebalances": strat.rebalances,
        }
        blob = json.dumps(encode(payload), separators=(",", ":"), allow_nan=False).encode()
        name = f"allocator-{self.bars_processed:08d}{_ALLOC_SUFFIX}"
        _write_private(self.folder / name, blob)
        _kill_point("commit", self.bars_processed)
        state = self._state_dict(strat, last_bar, name, _sha256(blob), len(blob))
        _write_private(self.folder / STATE_FILE, (json.dumps(state, indent=1, allow_nan=False) + "\n").encode())
        self.state = state
        _remove_stale_allocators(self.folder, keep=name)

    def on_stop(self, strat: Any) -> None:
        """Nothing to save (every bar was committed); log where the run stands."""
        log.info("stopped after %d bars this session (%d in total); state in %s", self.session_bars, self.bars_processed, self.folder)


def _write_private(path: Path, data: bytes) -> None:
    """Atomic write of a state file, mode 0600 (in a 0700 folder: never readable by others)."""
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def _remove_stale_allocators(folder: Path, keep: str) -> None:
    for p in folder.glob(f"allocator-*{_ALLOC_SUFFIX}"):
        if p.name != keep:
            with contextlib.suppress(OSError):
                p.unlink()


def _cooldown(alloc: Any) -> dict[str, Any] | None:
    cd = getattr(alloc, "cooldown", None)
    if cd is None:
        return None
    last = getattr(alloc, "last_rebalance_bar", None)
    since = None if last is None else int(alloc.bar - last)
    return {"bars": int(cd), "bars_since_rebalance": since, "remaining": 0 if since is None else max(0, int(cd) - since)}


def _budgets(alloc: Any, assets: list[str]) -> dict[str, Any] | None:
    def vec(x: Any) -> dict[str, float | None] | None:
        if x is None:
            return None
        return {a: _num(v) for a, v in zip(assets, np.asarray(x, dtype=float))}

    if hasattr(alloc, "budget_now"):
        return {
            "smoothed": vec(alloc.budget_now),
            "target": vec(getattr(alloc, "budget_target", None)),
            "lambda": _num(getattr(alloc, "lam", None)),
            "regime": getattr(alloc, "regime", None),
            "reference_regime": getattr(alloc, "ref_regime", None),
            "reference_eigenvalue": _num(getattr(alloc, "ref_eigen", None)),
        }
    b = alloc.budget() if hasattr(alloc, "budget") else None
    return None if b is None else {"smoothed": vec(b)}


def _extend_macro(alloc: Any, macro: pd.DataFrame) -> int:
    """Queue macro months newer than the allocator knows (the macro file grows monthly)."""
    known = getattr(alloc, "macro", None)
    cycle = getattr(alloc, "cycle", None)
    if known is None or cycle is None or macro is None or len(known) == 0:
        return 0
    months = pd.DatetimeIndex(macro.index).to_period("M").to_timestamp()
    new = macro.set_axis(months)
    new = new.loc[new.index > known.index.max(), list(known.columns)] if set(known.columns) <= set(new.columns) else new.iloc[0:0]
    for ref, row in zip(new.index, new.to_numpy(dtype=float)):
        cycle.add_macro(ref, row)
    if len(new):
        alloc.macro = pd.concat([known, new])
    return len(new)


# ================================================================================== strategy
class PaperStrategyMixin:
    """Hooks a :class:`~strategies.bt_strategies.RiskBudgetStrategy` into a :class:`PaperSession`.

    ``start`` restores (or warms up), ``next`` commits the bar after the strategy's own logic,
    ``buy``/``sell`` journal each order before it is sent, ``notify_order`` journals fills.
    """

    _paper: PaperSession

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        self._paper.on_start(self)

    def next(self) -> None:
        super().next()  # type: ignore[misc]
        self._paper.on_bar_end(self)

    def prenext_open(self) -> None:
        # backtrader skips ``next_open`` on a run's first bar (the strategy clock has not started):
        # a resumed run must still trade the decision taken at the last committed close.
        if self.pending is not None:  # type: ignore[attr-defined]
            self.next_open()  # type: ignore[attr-defined]

    def _execute(self, prices: np.ndarray, date: pd.Timestamp) -> None:
        self._paper.before_execute(self)
        super()._execute(prices, date)  # type: ignore[misc]

    def _resolve(self, data: Any) -> Any:
        if data is None:
            return self.datas[0]  # type: ignore[attr-defined]
        if isinstance(data, str):
            return self.getdatabyname(data)  # type: ignore[attr-defined]
        return data

    def buy(self, data: Any = None, size: Any = None, **kwargs: Any) -> Any:
        d = self._resolve(data)
        oid = self._paper.before_order(self, d, size, "buy")
        order = super().buy(data=d, size=size, **kwargs)  # type: ignore[misc]
        self._paper.after_order(order, oid)
        return order

    def sell(self, data: Any = None, size: Any = None, **kwargs: Any) -> Any:
        d = self._resolve(data)
        oid = self._paper.before_order(self, d, size, "sell")
        order = super().sell(data=d, size=size, **kwargs)  # type: ignore[misc]
        self._paper.after_order(order, oid)
        return order

    def notify_order(self, order: Any) -> None:
        super().notify_order(order)  # type: ignore[misc]
        self._paper.on_order(self, order)

    def stop(self) -> None:
        super().stop()  # type: ignore[misc]
        self._paper.on_stop(self)


def paper_strategy_class(base: type, session: PaperSession) -> type:
    """``Paper<Name>``: ``base`` with the paper-trading hooks of :class:`PaperStrategyMixin`."""
    return type(f"Paper{base.__name__}", (PaperStrategyMixin, base), {"_paper": session, "__module__": __name__})


# ================================================================================== runner
@contextlib.contextmanager
def _state_lock(folder: Path):
    import fcntl

    fh = os.fdopen(os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600), "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StateError(f"{folder}: another drb paper process is using this state folder") from None
        yield
    finally:
        fh.close()


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


def _drb_version() -> str:
    from drb import __version__

    return str(__version__)


def _check_resume(state: dict[str, Any], setup: PaperSetup, folder: Path) -> None:
    if state.get("drb_version", _drb_version()) != _drb_version():
        log.warning(
            "%s: the state was written by drb %s, this is drb %s: the allocator is restored as it was saved",
            folder,
            state["drb_version"],
            _drb_version(),
        )
    if state["strategy"] != setup.strategy:
        raise StateError(
            f"{folder}: the state is for strategy {state['strategy']}, not {setup.strategy}; refusing to trade (--reset starts afresh)"
        )
    old, new = state.get("fingerprint", {}), _fingerprint(setup)
    for part in ("params", "broker"):
        a, b = old.get(part, {}), new[part]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                raise StateError(
                    f"{folder}: {part} '{key}' changed since the state was written ({a.get(key)!r} -> {b.get(key)!r}); refusing to trade (--reset starts afresh)"
                )
    src = state.get("source", {})
    if src.get("mode") == "demo" or setup.source.get("mode") == "demo":
        if src != setup.source:
            raise StateError(f"{folder}: the state was written by another market ({src}); refusing to trade (--reset starts afresh)")


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


def run_paper(opts: PaperOptions) -> PaperResult:
    """Run (or resume) paper trading until the source ends (``--until``/``--max-bars``) or a signal.

    Raises
    ------
    StateError, ConfigError, DataError
        Bad state, config or data (nothing is traded).
    """
    import backtrader as bt

    from feeds.live import LiveMarket
    from runners.backtest import strategy_class

    folder = Path(opts.state)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: --state must be a folder")
    # A bad config, strategy name or live path fails before the state folder is created.
    setup = None if opts.demo else resolve_setup(opts)
    if opts.demo and opts.strategy:
        strategy_class(opts.strategy)
    if setup is not None and not setup.live.exists() and not setup.live.parent.is_dir():
        raise DataError(f"{setup.live}: the live source does not exist, nor its folder {setup.live.parent}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(folder, 0o700)  # the state folder is private: its files decide what is traded
    except OSError as exc:
        log.warning("%s: cannot make the state folder private (mode 0700): %s", folder, exc.strerror)
    with _state_lock(folder):
        for tmp in [*folder.glob(f".{STATE_FILE}.*.tmp"), *folder.glob(f".allocator-*{_ALLOC_SUFFIX}.*.tmp")]:
            log.info("removing %s left by an interrupted write", tmp.name)
            tmp.unlink()
        for own in [folder / STATE_FILE, folder / JOURNAL_FILE, folder / LOCK_FILE, *folder.glob(f"allocator-*{_ALLOC_SUFFIX}")]:
            with contextlib.suppress(OSError):  # files of a state written by an older drb: private too
                if own.is_file() and own.stat().st_mode & 0o077:
                    os.chmod(own, 0o600)
        if setup is None:
            setup = resolve_setup(opts)
        setup.extras["quiet"] = opts.quiet
        if opts.reset:
            dest = _archive(folder)
            if dest is not None:
                log.info("--reset: previous state moved to %s", dest)
        loaded = load_state(folder)
        state, payload = loaded if loaded else (None, None)
        journal = Journal(folder / JOURNAL_FILE)
        history = None
        if state is not None:
            _check_resume(state, setup, folder)
            j = state["journal"]
            journal.open(int(j["bytes"]), int(j["seq"]), str(j["sha256"]))
            check_broker_against_journal(state, journal.path, int(j["bytes"]), float(setup.broker.get("cash", 1_000_000.0)))
            assets = list(state["assets"])
            classes = dict(state["asset_classes"])
            after = pd.Timestamp(state["last_bar"])
            last_closes = state["last_closes"]
            has_vol = bool(state.get("vol_index_feed", False))
            for p in folder.glob(f"allocator-*{_ALLOC_SUFFIX}"):
                if p.name != state["allocator"]["file"]:
                    log.info("removing %s left by an interrupted commit", p.name)
                    p.unlink()
        else:
            journal.open(0, 0, _sha256(b""))
            history = load_history(setup.cfg)
            assets = list(history.assets)
            classes = dict(history.asset_classes)
            after = history.prices.index[-1]
            last_closes = {a: float(v) for a, v in history.prices.iloc[-1].items()}
            has_vol = history.vol_index is not None
        if opts.until is not None and after >= opts.until:
            log.info("nothing to do: the last processed bar %s is not before --until %s", _day(after), _day(opts.until))
            st = state or {}
            return PaperResult(0, int(st.get("bars_processed", 0)), _day(after), float(st.get("broker", {}).get("cash", math.nan)),
                               float(st.get("broker", {}).get("value", math.nan)), dict(st.get("broker", {}).get("positions", {})),
                               "nothing to do", folder)
        session = PaperSession(folder, setup, state, payload, journal, history)
        market = LiveMarket(
            setup.live,
            assets,
            signals=("vol_index",) if has_vol else (),
            poll_interval=opts.poll,
            after=after,
            last_closes=last_closes,
            max_bars=opts.max_bars,
            until=opts.until,
            max_gap_days=opts.max_gap_days,
        )
        session.source_stats = market.source.stats.as_dict
        session.vol_index_feed = has_vol
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
        writer = None
        if opts.demo:
            from runners.replay import ReplayWriter

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
        # What the last commit holds (the broker of a run that got no bar never valued its positions).
        committed = session.state["broker"] if session.state else {"cash": math.nan, "value": math.nan, "positions": {}}
        last = session.state["last_bar"] if session.state else _day(after)
        return PaperResult(
            session.session_bars, session.bars_processed, last, float(committed["cash"]), float(committed["value"]),
            dict(committed["positions"]), market.stop_reason, folder,
        )


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


def _paper_parser(p: argparse.ArgumentParser) -> None:
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


def _cmd_paper(args: argparse.Namespace) -> int:
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


def register_cli(commands: dict[str, Any]) -> None:
    """Add ``paper`` to the ``drb`` command table (called by :mod:`runners.cli`)."""
    commands["paper"] = ("paper-trade a strategy on a live file, restartable (state + journal)", _paper_parser, _cmd_paper)


def main(argv: list[str] | None = None) -> int:
    """``python -m runners.paper ...`` (same as ``drb paper ...``)."""
    from runners.cli import main as drb_main

    return drb_main(["paper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

