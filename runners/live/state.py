"""The ``drb paper`` state folder: its files, its lock, its permissions, loading and saving.

``state.json`` (format ``drb-paper-state``, version :data:`STATE_VERSION`), rewritten atomically
(temporary file, fsync, rename) after every bar; it is the commit point of a bar. It records the
broker (cash, every position's size and average price, value), the pending decision (taken at the
last close, to be traded at the next open), the last rebalance, the trigger cooldown, the budgets
and smoothing state (dynamic model), the last processed bar and its closes, the live-source
counters of the current session, the journal's committed length, last sequence number and sha256, and the allocator file.

``allocator-NNNNNNNN.json`` (NNNNNNNN = live bars processed): the allocator with every
estimator's state (returns history, risk model, regime classifiers, Markov counts, budgets,
triggers), the pending decision and the rebalance log, stored as data by
:mod:`runners.live.state_codec` (numbers, arrays, tables and the attributes of the project's own classes;
never pickle: loading it runs no code named by the file). It is written (atomically) before
``state.json``, which records its sha256; older files are removed after the commit. The state
folder is made mode 0700 and its files 0600. A state folder of format version 1 (a pickled
``allocator-NNNNNNNN.pkl``) is refused, never unpickled: start afresh with ``--reset``.

``journal.jsonl`` is described in :mod:`runners.live.journal`; ``.lock`` holds the one-process lock.
A run killed inside its very first commit (after the warm-up, before any bar: only
``allocator-00000000.json`` exists, nothing journaled) starts afresh; temporary files of atomic
writes cut by a kill are removed at the next start.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import StateError
from drb.io import atomic_write_bytes
from runners.live.state_codec import decode, encode

__all__ = [
    "STATE_FORMAT",
    "day",
    "kill_point",
    "now",
    "remove_stale_allocators",
    "sha256",
    "tidy_folder",
    "STATE_VERSION",
    "PAYLOAD_VERSION",
    "STATE_FILE",
    "JOURNAL_FILE",
    "LOCK_FILE",
    "KILL_ENV",
    "load_state",
    "prepare_folder",
    "state_lock",
    "archive_state",
    "save_allocator",
    "save_state",
]

STATE_FORMAT = "drb-paper-state"
STATE_VERSION = 2
#: Version of the allocator payload's data layout: 3 since the risk model composes a covariance
#: estimator object (indicators.covariance); an older payload is refused, never decoded into the new classes.
PAYLOAD_VERSION = 3
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

_WARMUP_PKL = "allocator-00000000.json"
_OLD_FORMAT = "written by an older drb (pickled allocator; this drb never loads pickles); refusing to trade (--reset starts afresh)"
_REQUIRED = ("format", "version", "strategy", "assets", "last_bar", "bars_processed", "broker", "allocator", "journal")
_AFRESH = "refusing to trade (--reset starts afresh)"


def kill_point(kind: str, n: int) -> None:
    """SIGKILL this process when :data:`KILL_ENV` is ``kind:n`` (fault injection for tests)."""
    spec = os.environ.get(KILL_ENV)
    if spec and spec == f"{kind}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)


def now() -> str:
    """UTC wall clock as written in the state and the journal (``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day(ts: Any) -> str:
    """A bar date as the state files write it (``YYYY-MM-DD``)."""
    return pd.Timestamp(ts).strftime("%Y-%m-%d")


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# ================================================================================== loading
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
        _check_no_orphans(folder)
        return None
    state = _read_state_json(path)
    return state, _read_allocator(folder, path, state["allocator"])


def _check_no_orphans(folder: Path) -> None:
    """No ``state.json``: the folder must hold no other state file (but see the first commit)."""
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
        return
    leftovers += [JOURNAL_FILE] if journal.exists() else []
    if leftovers:
        raise StateError(f"{folder}: {leftovers[0]} exists but {STATE_FILE} is missing; {_AFRESH}")


def _read_allocator(folder: Path, path: Path, alloc: Any) -> dict[str, Any]:
    """The allocator payload named by ``state.json`` (``path``), checked against its sha256."""
    name = str(alloc.get("file", "")) if isinstance(alloc, dict) else ""
    afile = folder / name
    if not name.startswith("allocator-") or not name.endswith(_ALLOC_SUFFIX) or "/" in name:
        raise StateError(f"{path}: bad allocator file name {name!r}; {_AFRESH}")
    if not afile.is_file():
        raise StateError(f"{afile}: allocator state file missing; {_AFRESH}")
    blob = afile.read_bytes()
    if sha256(blob) != alloc.get("sha256"):
        raise StateError(f"{afile}: allocator state does not match the sha256 recorded in {STATE_FILE}; refusing to trade")
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StateError(f"{afile}: allocator state is not JSON; {_AFRESH}") from None
    payload = decode(data, str(afile))
    if not isinstance(payload, dict) or payload.get("version") != PAYLOAD_VERSION:
        raise StateError(f"{afile}: allocator state of another version; {_AFRESH}")
    return payload


def _read_state_json(path: Path) -> dict[str, Any]:
    """``state.json`` parsed and checked for format, version and required keys."""
    raw = path.read_bytes()
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        kind = "truncated" if raw and not raw.rstrip().endswith(b"}") else "corrupt"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateError(f"{path}: {kind} state file ({msg}); {_AFRESH}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise StateError(f"{path}: not a drb paper state file; {_AFRESH}")
    if state.get("version") in _PICKLE_VERSIONS:
        raise StateError(f"{path}: state format version {state['version']} {_OLD_FORMAT}")
    if state.get("version") != STATE_VERSION:
        raise StateError(
            f"{path}: state format version {state.get('version')!r}, this drb reads version {STATE_VERSION}; {_AFRESH}"
        )
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise StateError(f"{path}: incomplete state (no '{missing[0]}'); {_AFRESH}")
    return state


# ================================================================================== the folder
def prepare_folder(folder: Path) -> None:
    """Create the state folder, mode 0700 (its files decide what is traded)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(folder, 0o700)
    except OSError as exc:
        log.warning("%s: cannot make the state folder private (mode 0700): %s", folder, exc.strerror)


def tidy_folder(folder: Path) -> None:
    """Under the lock: remove temporary files of interrupted writes; make the state files 0600."""
    for tmp in [*folder.glob(f".{STATE_FILE}.*.tmp"), *folder.glob(f".allocator-*{_ALLOC_SUFFIX}.*.tmp")]:
        log.info("removing %s left by an interrupted write", tmp.name)
        tmp.unlink()
    for own in [folder / STATE_FILE, folder / JOURNAL_FILE, folder / LOCK_FILE, *folder.glob(f"allocator-*{_ALLOC_SUFFIX}")]:
        with contextlib.suppress(OSError):  # files of a state written by an older drb: private too
            if own.is_file() and own.stat().st_mode & 0o077:
                os.chmod(own, 0o600)


@contextlib.contextmanager
def state_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's ``.lock`` (one ``drb paper`` process per state folder).

    Raises
    ------
    StateError
        Another process holds the lock.
    """
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


def archive_state(folder: Path) -> Path | None:
    """Move every state file of ``folder`` into ``folder/reset-<timestamp>/`` (``--reset``).

    Returns
    -------
    Path or None
        The archive folder, or None when there was nothing to move.
    """
    files = [p for p in folder.iterdir() if p.is_file() and p.name != LOCK_FILE and not p.name.startswith(".")]
    files = [p for p in files if p.name in (STATE_FILE, JOURNAL_FILE) or (p.name.startswith("allocator-") and p.suffix in (".pkl", _ALLOC_SUFFIX))]
    if not files:
        return None
    dest = folder / f"reset-{_dt.datetime.now():%Y%m%dT%H%M%S%f}"
    dest.mkdir(mode=0o700)
    for p in files:
        os.replace(p, dest / p.name)
    return dest


def remove_stale_allocators(folder: Path, keep: str, *, why: str | None = None) -> None:
    """Remove every allocator file but ``keep`` (left by older commits or an interrupted one).

    ``why``: logged (info) with each removed file's name, e.g. "left by an interrupted commit".
    """
    for p in folder.glob(f"allocator-*{_ALLOC_SUFFIX}"):
        if p.name != keep:
            if why:
                log.info("removing %s %s", p.name, why)
            with contextlib.suppress(OSError):
                p.unlink()


# ================================================================================== saving
def _write_private(path: Path, data: bytes) -> None:
    """Atomic write of a state file, mode 0600 (in a 0700 folder: never readable by others)."""
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def save_allocator(folder: Path, bars_processed: int, payload: dict[str, Any]) -> tuple[str, str, int]:
    """Write ``allocator-NNNNNNNN.json`` (the first half of a commit).

    Parameters
    ----------
    folder : Path
        The state folder.
    bars_processed : int
        Live bars processed so far (NNNNNNNN).
    payload : dict
        The allocator, pending decision and rebalance log (encoded as data by
        :func:`runners.live.state_codec.encode`).

    Returns
    -------
    (name, sha256, bytes)
        What ``state.json`` records about the file.
    """
    blob = json.dumps(encode({"version": PAYLOAD_VERSION, **payload}), separators=(",", ":"), allow_nan=False).encode()
    name = f"allocator-{bars_processed:08d}{_ALLOC_SUFFIX}"
    _write_private(folder / name, blob)
    kill_point("commit", bars_processed)
    return name, sha256(blob), len(blob)


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state.json`` (the commit point), then drop the allocator files it does not name."""
    _write_private(folder / STATE_FILE, (json.dumps(state, indent=1, allow_nan=False) + "\n").encode())
    remove_stale_allocators(folder, keep=state["allocator"]["file"])
