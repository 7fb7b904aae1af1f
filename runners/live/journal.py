"""The ``drb paper`` journal: decisions, orders and fills, and the broker rebuilt from the fills.

``journal.jsonl``: append-only, one JSON object per line, each ``write`` fsynced before the run goes
on: ``decision`` (at a close), ``order`` (written *before* the order goes to the broker), ``fill`` and
``order_issue``. Every entry has a ``seq`` (1, 2, ...), a deterministic ``id`` (``<bar>/<type>/<k>``),
the ``bar`` date and ``logged_at`` (UTC wall clock).

Resuming: journal lines beyond the length ``state.json`` committed belong to the one bar that was
being processed when the process died ("in doubt"): that bar is processed again from the committed
state, which is deterministic, and every entry it produces must equal the in-doubt entry with the
same ``id`` (then it is not written again: an order already journaled is never journaled - sent -
twice; the simulated broker re-applies it to rebuild its cash and positions); a difference stops the
run with a :class:`drb.errors.StateError`. A half-written last journal line is cut. A journal
shorter than, or different from, what the state committed stops the run; so does a state whose
cash, positions or value differ from those rebuilt from the committed fills
(:func:`check_broker_against_journal`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drb.errors import StateError
from runners.live.state import STATE_FILE, kill_point, now, sha256

__all__ = ["Journal", "broker_from_fills", "check_broker_against_journal"]

log = logging.getLogger("drb.paper")


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
        if sha256(data[:committed_bytes]) != committed_sha:
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
        full = {"seq": self.seq + 1, **entry, "logged_at": now()}
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
        kill_point("journal", self.seq)
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


def broker_from_fills(journal: Path, committed: int, initial_cash: float) -> tuple[float, dict[str, float], float]:
    """Cash and positions rebuilt from the fills in the first ``committed`` bytes of the journal.

    Parameters
    ----------
    journal : Path
        ``journal.jsonl``.
    committed : int
        Bytes of it that count (what ``state.json`` committed).
    initial_cash : float
        The broker's starting cash (currency units).

    Returns
    -------
    cash : float
        Currency units, after every fill's amount * price and commission.
    sizes : dict
        Asset -> position size (units) summed over the fills.
    traded : float
        Sum of ``|amount * price|`` over the fills (currency units; scales the rounding tolerance).

    Raises
    ------
    StateError
        A committed line is not a journal entry, or a fill lacks amount, price or commission.
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
    return cash, sizes, traded


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
    cash, sizes, traded = broker_from_fills(journal, committed, initial_cash)
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
