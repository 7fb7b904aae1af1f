"""Task execution for sweeps and Monte Carlo: serial in-process, a Dask ``LocalCluster``, or a cluster.

One function, :func:`run_tasks`, runs independent tasks ``fn(*args)`` and hands each result to a
callback *as soon as it finishes* (in completion order), so the caller can write it to disk
atomically before the next one arrives: a crash loses no finished task. A progress bar (tqdm, on
stderr) counts finished tasks.

Where the tasks run (:func:`dask_client`):

* ``scheduler=None, workers=1``: serially, in this process (no Dask at all);
* ``scheduler=None, workers=N`` (default: the number of cores): a Dask ``LocalCluster`` with ``N``
  worker *processes*, one thread each (the allocators are numpy/numba code holding the GIL; Dask's
  nanny sets ``OMP_NUM_THREADS=1`` etc. in workers, so BLAS does not oversubscribe the cores);
* ``scheduler="tcp://HOST:PORT"``: an existing Dask cluster (``dask scheduler`` / ``dask worker``,
  dask-jobqueue, Kubernetes ...). Its workers must have this package installed (same version).
  A plain ``tcp://`` scheduler is unauthenticated and unencrypted: whoever reaches its port runs
  code on its workers. ``tls://HOST:PORT`` connects with Dask's TLS security (certificates from
  ``tls_ca_file``/``tls_cert``/``tls_key`` or the Dask config, :func:`scheduler_security`).

Submission is batched and windowed: tasks go to the cluster in batches of consecutive tasks
(default: *guided* sizes, a quarter of the remaining tasks per worker thread, at most 16 tasks,
shrinking to single tasks at the end, so that many cheap tasks do not each pay the scheduler's
per-task cost while the last ones still balance the workers), and at most ``max_pending`` tasks are in flight at once
(default 4 per worker thread), so 10,000 paths do not sit in the scheduler's memory at once and an
interrupted run stops promptly. Large shared inputs (the user's market for the bootstrap, the
settings) are scattered once to every worker and passed by reference; a task's own arguments are
small (a path number and its seed are enough to rebuild the path on the worker).

Worker start-up: LocalCluster workers get one BLAS/OpenMP/numba thread per worker thread, and may
run *warm-up* callables while they start (``warm_up=("runners.experiments.sweep:warm_up",)``: imports and the
numba caches of the allocators), before they take tasks, so that the first task of each worker
runs at full speed and the warm-up overlaps the cluster's own start-up.

Results are identical across the three modes: every task is a pure function of its arguments
(seeds included), and nothing depends on the order tasks finish in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import ConfigError, DataError, DRBError
from drb.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "ExecutionInfo",
    "PartStore",
    "TaskFailure",
    "auto_batch_size",
    "dask_client",
    "describe_client",
    "run_tasks",
    "scheduler_security",
    "tls_options",
    "worker_warm_up",
]


@dataclass
class TaskFailure:
    """A task that raised: its key, the exception type and its first message line."""

    key: Hashable
    error: str
    message: str


@dataclass
class ExecutionInfo:
    """What :func:`run_tasks` did.

    Attributes
    ----------
    done : int
        Tasks that finished and whose result was handed to ``on_result``.
    failures : list of TaskFailure
        Tasks that raised (their results were not recorded; a rerun retries them).
    mode : str
        ``serial``, ``local`` (LocalCluster) or ``scheduler`` (an existing cluster).
    workers : int
        Worker threads that ran tasks (1 when serial).
    """

    done: int = 0
    failures: list[TaskFailure] = field(default_factory=list)
    mode: str = "serial"
    workers: int = 1


def _check_scheduler(address: str) -> None:
    if "://" not in address:
        raise ConfigError(f"--scheduler: expected an address like tcp://HOST:PORT or tls://HOST:PORT, got '{address}'")


_TLS_FLAGS = (("tls_ca_file", "--tls-ca-file"), ("tls_cert", "--tls-cert"), ("tls_key", "--tls-key"))


def tls_options(args: Any) -> dict[str, str | None]:
    """The ``--tls-ca-file --tls-cert --tls-key`` values of parsed CLI ``args`` (for :func:`dask_client`)."""
    return {name: getattr(args, name, None) for name, _ in _TLS_FLAGS}


def scheduler_security(
    address: str, tls_ca_file: str | None = None, tls_cert: str | None = None, tls_key: str | None = None
) -> Any:
    """The ``distributed.security.Security`` for connecting to ``address`` (None for plain ``tcp://``).

    A ``tls://`` address uses the given PEM files (CA certificate that signed the scheduler's
    certificate; this client's certificate and key), or else Dask's own TLS configuration
    (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert``/``.key``).

    Raises
    ------
    ConfigError
        TLS files given for a non-TLS address, a file that does not exist, or a ``tls://`` address
        with neither files nor Dask TLS configuration.
    """
    values = {"tls_ca_file": tls_ca_file, "tls_cert": tls_cert, "tls_key": tls_key}
    given = [flag for name, flag in _TLS_FLAGS if values[name]]
    scheme = address.split("://", 1)[0].lower()
    if scheme != "tls":
        if given:
            raise ConfigError(f"{given[0]} needs a tls:// scheduler address, got {scheme}://")
        return None
    from distributed.security import Security

    for name, flag in _TLS_FLAGS:
        if values[name] and not Path(str(values[name])).is_file():
            raise ConfigError(f"{flag} {values[name]}: no such file")
    if given:
        return Security(
            tls_ca_file=tls_ca_file, tls_client_cert=tls_cert, tls_client_key=tls_key, require_encryption=True
        )
    security = Security()  # from the Dask config (distributed.comm.tls.*)
    if not security.tls_ca_file:
        raise ConfigError(
            f"--scheduler {address}: no TLS certificates; give --tls-ca-file (and --tls-cert/--tls-key) "
            "or set distributed.comm.tls.ca-file (client.cert, client.key) in the Dask config"
        )
    return security


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    timeout: float = 30.0,
    tls_ca_file: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    warm_up: Sequence[str] = (),
) -> Iterator[Any]:
    """A Dask client for the run (or None for a serial run), closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler (``tcp://HOST:PORT`` or ``tls://HOST:PORT``). Given:
        connect to it and leave the cluster running on exit.
    workers : int, optional
        Worker processes of the LocalCluster (default: ``os.cpu_count()``). ``1`` without a
        scheduler means a serial run in this process: the context yields None.
    threads_per_worker : int
        Threads per LocalCluster worker (default 1).
    processes : bool
        LocalCluster workers are processes (default) rather than threads.
    timeout : float
        Seconds to wait for the scheduler connection.
    tls_ca_file, tls_cert, tls_key : str, optional
        PEM files for a ``tls://`` scheduler (see :func:`scheduler_security`; default: the Dask
        config's ``distributed.comm.tls.*``).
    warm_up : sequence of str
        ``"module:function"`` callables (no arguments) each LocalCluster worker calls while it
        starts, before it takes tasks (e.g. ``"runners.experiments.sweep:warm_up"``: imports and numba caches).
        A failing warm-up is logged and the worker starts anyway. Ignored for ``scheduler`` (its
        workers are started elsewhere).

    Yields
    ------
    distributed.Client or None
    """
    _check_client_options(scheduler, workers, (tls_ca_file, tls_cert, tls_key), warm_up)
    if scheduler is None and workers == 1:
        yield None
        return
    from distributed import Client

    if scheduler is not None:
        _check_scheduler(scheduler)
        security = scheduler_security(scheduler, tls_ca_file, tls_cert, tls_key)
        try:
            client = Client(scheduler, timeout=timeout, security=security)
        except OSError as exc:
            raise DRBError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = _start_local_cluster(workers or os.cpu_count() or 1, threads_per_worker, processes, warm_up)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _check_client_options(scheduler: str | None, workers: int | None, tls: Sequence[str | None], warm_up: Sequence[str]) -> None:
    """Refuse ``--workers < 1``, TLS files without a scheduler, a warm-up not spelled ``module:function``."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if scheduler is None and any(tls):
        raise ConfigError("--tls-ca-file/--tls-cert/--tls-key need --scheduler tls://HOST:PORT")
    for name in warm_up:
        if not _WARM_UP_RE.match(name):
            raise ConfigError(f"warm_up: expected 'module:function', got '{name}'")


def _start_local_cluster(n: int, threads_per_worker: int, processes: bool, warm_up: Sequence[str]) -> Any:
    """A LocalCluster of ``n`` workers, one BLAS thread per worker thread, warmed up, no profiler."""
    import dask
    from distributed import LocalCluster

    extra: dict[str, Any] = {}
    if processes:  # one BLAS / OpenMP / numba thread per worker thread: no oversubscription
        extra["env"] = {var: str(threads_per_worker) for var in _THREAD_VARS}
    if warm_up:
        extra["preload"] = [_preload_script(warm_up)]
    # The workers' statistical profiler (a thread sampling the task's stack every 10 ms) costs CPU
    # on every task and serves only the dashboard, which a LocalCluster run does not have.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return _local_cluster(LocalCluster, n, threads_per_worker, processes, extra)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_WARM_UP_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _preload_script(names: Sequence[str]) -> str:
    """Text of a Dask worker preload that runs :func:`worker_warm_up` of ``names`` at start-up."""
    return f"from runners.parallel import worker_warm_up\n\n\ndef dask_setup(worker):\n    worker_warm_up({list(names)!r})\n"


def worker_warm_up(names: Sequence[str]) -> list[str]:
    """Call each ``"module:function"`` of ``names`` (a worker's start-up; see :func:`dask_client`).

    Returns
    -------
    list of str
        The names that failed (logged as warnings; a warm-up never stops a worker).
    """
    import importlib

    failed = []
    for name in names:
        module, _, func = name.partition(":")
        try:
            getattr(importlib.import_module(module), func)()
        except Exception as exc:  # any error: the worker must start anyway, tasks will report it
            logging.getLogger(__name__).warning("worker warm-up %s failed: %s: %s", name, type(exc).__name__, exc)
            failed.append(name)
    return failed


def _local_cluster(cls: Any, n: int, threads_per_worker: int, processes: bool, extra: Mapping[str, Any]) -> Any:
    return cls(
        n_workers=n,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address=None,
        # No dashboard, and the scheduler's small HTTP server (health, metrics) on a free port of
        # this machine: Dask's default port 8787 is often taken ("Port 8787 is already in use").
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        **extra,
    )


def describe_client(client: Any) -> tuple[str, int]:
    """``(mode, worker threads)`` of a client from :func:`dask_client` (None: serial)."""
    if client is None:
        return "serial", 1
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    threads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
    cluster = getattr(client, "cluster", None)
    mode = "local" if cluster is not None and type(cluster).__name__ == "LocalCluster" else "scheduler"
    return mode, max(threads, 1)


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def _short(exc: BaseException) -> TaskFailure:
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return TaskFailure(key=None, error=type(exc).__name__, message=msg)


def auto_batch_size(n_tasks: int, threads: int, *, per_thread: int = 4, largest: int = 16) -> int:
    """Tasks of the next cluster job when ``n_tasks`` remain: ``n_tasks // (per_thread * threads)``
    clipped to ``1..largest`` (guided self-scheduling, Polychronopoulos and Kuck 1987).

    At least ``per_thread`` batches per worker thread remain after it, each no larger, so the last
    ones balance the workers; at most ``largest`` tasks share one job (a result reaches the disk at
    most one batch late).
    """
    return max(1, min(largest, n_tasks // max(1, per_thread * threads)))


def _run_batch(fn: Callable[..., Any], batch: Sequence[tuple[Any, ...]], **shared: Any) -> list[tuple[bool, Any]]:
    """Worker side of :func:`run_tasks`: ``fn(*args, **shared)`` for each ``args`` of ``batch``, in order.

    Returns ``(True, result)`` or ``(False, TaskFailure)`` per task: a failing task does not stop
    the rest of its batch.
    """
    out: list[tuple[bool, Any]] = []
    for args in batch:
        try:
            out.append((True, fn(*args, **shared)))
        except Exception as exc:  # recorded per task, as in a serial run
            out.append((False, _short(exc)))
    return out


def run_tasks(
    fn: Callable[..., Any],
    tasks: Iterable[tuple[Hashable, tuple[Any, ...]]],
    *,
    on_result: Callable[[Hashable, Any], None],
    client: Any = None,
    shared: Mapping[str, Any] | None = None,
    total: int | None = None,
    initial: int = 0,
    progress: bool = True,
    desc: str = "tasks",
    unit: str = "task",
    max_pending: int | None = None,
    batch_size: int | None = None,
    on_failure: Callable[[TaskFailure], None] | None = None,
) -> ExecutionInfo:
    """Run ``fn(*args, **shared)`` for every ``(key, args)`` and stream results to ``on_result``.

    Parameters
    ----------
    fn : callable
        A module-level (importable, picklable) pure function.
    tasks : iterable of (key, args)
        ``key`` identifies the task for ``on_result`` and failures; ``args`` is a tuple.
    on_result : callable
        ``on_result(key, result)``, called in this process as each task finishes (completion
        order). It should persist the result (atomically); an exception it raises stops the run.
    client : distributed.Client, optional
        From :func:`dask_client`; None runs serially in this process.
    shared : mapping, optional
        Keyword arguments common to every task (e.g. a market); scattered once to every worker.
    total : int, optional
        Total for the progress bar (tasks of the whole run, including ``initial``).
    initial : int
        Tasks already done before this call (a resumed run): the bar starts there.
    progress : bool
        Show a tqdm progress bar on stderr.
    desc, unit : str
        Progress bar label and unit.
    max_pending : int, optional
        Tasks in flight at once, rounded up to whole batches (default: 4 per worker thread, at
        least 8, and never fewer than two batches per worker thread).
    batch_size : int, optional
        Tasks a cluster job runs one after the other (their results come back together, in task
        order, when the batch ends). Default: guided, each batch :func:`auto_batch_size` of the
        tasks not yet submitted (``remaining // (4 * threads)`` clipped to 1..16): large batches
        first, single tasks at the end, so the workers finish together. Ignored when serial.
    on_failure : callable, optional
        Called with each :class:`TaskFailure` (a failed task is skipped, the run goes on).

    Returns
    -------
    ExecutionInfo
    """
    from tqdm.auto import tqdm

    shared = dict(shared or {})
    mode, threads = describe_client(client)
    info = ExecutionInfo(mode=mode, workers=threads)
    bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not progress, file=sys.stderr, dynamic_ncols=True)
    track = _Tracker(info, bar, on_result, on_failure)
    try:
        if client is None:
            for key, args in tasks:
                try:
                    result = fn(*args, **shared)
                except Exception as exc:  # record and go on, as on a cluster
                    track.fail(key, exc)
                    continue
                track.ok(key, result)
            return info
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        _run_on_cluster(client, fn, list(tasks), shared, track, threads=threads, max_pending=max_pending, batch_size=batch_size)
        return info
    finally:
        bar.close()


class _Tracker:
    """Hands each outcome of :func:`run_tasks` on: results to ``on_result``, failures to the info and ``on_failure``."""

    def __init__(self, info: ExecutionInfo, bar: Any, on_result: Callable[[Hashable, Any], None], on_failure: Callable[[TaskFailure], None] | None):
        self.info, self.bar, self.on_result, self.on_failure = info, bar, on_result, on_failure

    def ok(self, key: Hashable, result: Any) -> None:
        self.on_result(key, result)
        self.info.done += 1
        self.bar.update(1)

    def fail(self, key: Hashable, exc: BaseException | TaskFailure) -> None:
        f = _short(exc) if isinstance(exc, BaseException) else TaskFailure(key, exc.error, exc.message)
        f.key = key
        self.info.failures.append(f)
        if self.on_failure is not None:
            self.on_failure(f)
        self.bar.set_postfix_str(f"{len(self.info.failures)} failed")


def _run_on_cluster(
    client: Any,
    fn: Callable[..., Any],
    todo: list[tuple[Hashable, tuple[Any, ...]]],
    shared: Mapping[str, Any],
    track: _Tracker,
    *,
    threads: int,
    max_pending: int | None,
    batch_size: int | None,
) -> None:
    """The cluster side of :func:`run_tasks`: batches in a sliding window of jobs, results as they come."""
    from distributed import as_completed

    scattered = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
    largest = batch_size or auto_batch_size(len(todo), threads)
    if max_pending is not None:  # jobs in flight holding about max_pending tasks
        window = max(1, -(-max_pending // largest))
    else:  # about 4 tasks per worker thread, never fewer than 2 jobs per thread (no idle gap)
        window = max(2 * threads, -(-max(8, 4 * threads) // largest))
    position = [0]
    keys: dict[str, list[Hashable]] = {}

    def submit_next() -> Any | None:
        start = position[0]
        if start >= len(todo):
            return None
        size = batch_size or auto_batch_size(len(todo) - start, threads)  # guided: shrinks to 1 at the end
        batch = todo[start : start + size]
        position[0] = start + len(batch)
        fut = client.submit(_run_batch, fn, [args for _, args in batch], **scattered, pure=False)
        keys[fut.key] = [key for key, _ in batch]
        return fut

    pool = as_completed([f for f in (submit_next() for _ in range(window)) if f is not None])
    try:
        for fut in pool:
            batch_keys = keys.pop(fut.key)
            try:
                outcomes = fut.result()
            except Exception as exc:  # the whole batch failed (a worker died, unpicklable result)
                for key in batch_keys:
                    track.fail(key, exc)
                outcomes = []
            finally:
                fut.release()
            for key, (ok, value) in zip(batch_keys, outcomes, strict=False):
                if ok:
                    track.ok(key, value)
                else:
                    track.fail(key, value)
            nxt = submit_next()
            if nxt is not None:
                pool.add(nxt)
    except BaseException:
        pending = list(pool.futures)
        pool.clear()
        client.cancel(pending)
        raise


_KEY_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


class PartStore:
    """Finished task results on disk, one atomic CSV per task, for streaming and resume.

    Layout under ``folder``: ``<kind>.json`` (the manifest: the kind of run and the settings that
    decide its results) and ``parts/<kind>/<key>.csv`` (one file per finished task, written atomically: temporary file,
    fsync, rename) with its sha256 in ``<key>.csv.sha256``; a part failing the check is recomputed. A task whose part exists is done; a killed run leaves only complete parts (and
    perhaps a hidden temporary file, removed on the next open), so a
    rerun with the same settings skips them and computes the rest. A rerun with different settings
    is refused (it would mix incompatible results) unless ``restart`` is set, which deletes the
    parts first.

    Parameters
    ----------
    folder : Path
        The run's output folder (created).
    kind : str
        ``montecarlo`` or ``sweep``; the manifest is ``<kind>.json``.
    settings : mapping
        JSON-serializable settings; compared verbatim with the manifest of an existing run.
    restart : bool
        Discard existing parts and manifest of an earlier run in ``folder``.
    """

    def __init__(self, folder: str | os.PathLike[str], kind: str, settings: Mapping[str, Any], *, restart: bool = False):
        self.folder = Path(folder)
        self.kind = kind
        self.parts = self.folder / "parts" / kind
        self.manifest = self.folder / f"{kind}.json"
        self.settings = json.loads(json.dumps(settings, sort_keys=True))
        self.recomputed: list[str] = []  # keys of parts that failed their checksum
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"--out {self.folder}: exists and is not a folder")
        self.parts.mkdir(parents=True, exist_ok=True)
        for tmp in self.parts.glob(".*.csv.*.tmp"):  # left by a process killed mid-write
            with contextlib.suppress(OSError):
                tmp.unlink()
        if restart:
            self.clear()
        self.resumed = self._check_manifest()

    def _check_manifest(self) -> bool:
        if not self.manifest.exists():
            if any(self.parts.glob("*.csv")):
                raise ConfigError(
                    f"{self.parts}: holds results but {self.manifest.name} is missing; rerun with --restart or use a new --out"
                )
            self.write_manifest({})
            return False
        try:
            old = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.manifest}: unreadable ({exc}); rerun with --restart or use a new --out") from None
        if old.get("kind") != self.kind:
            raise ConfigError(f"{self.manifest}: belongs to a '{old.get('kind')}' run, not '{self.kind}'")
        before = old.get("settings", {})
        if before != self.settings:
            diff = sorted(k for k in set(before) | set(self.settings) if before.get(k) != self.settings.get(k))
            raise ConfigError(
                f"{self.folder}: holds a {self.kind} run with different settings ({', '.join(diff)}); "
                "rerun with --restart to discard it or use a new --out"
            )
        return True

    def write_manifest(self, extra: Mapping[str, Any]) -> None:
        """(Re)write the manifest: kind, settings and ``extra`` (e.g. timings)."""
        doc = {"kind": self.kind, "settings": self.settings}
        doc.update(extra)
        atomic_write_text(self.manifest, json.dumps(doc, indent=2, sort_keys=False, default=str))

    def clear(self) -> None:
        """Delete this store's parts and manifest (only files it wrote)."""
        for f in self.parts.glob("*.csv*"):
            if _KEY_RE.match(f.name.split(".csv")[0]):
                f.unlink()
        if self.manifest.exists():
            self.manifest.unlink()

    def path_of(self, key: str) -> Path:
        """File of one task's part."""
        if not _KEY_RE.match(key):
            raise ValueError(f"bad part key {key!r}")
        return self.parts / f"{key}.csv"

    def done(self) -> set[str]:
        """Keys of finished tasks whose part matches its sha256 sidecar (``<key>.csv.sha256``).

        A part that fails the check (truncated, edited, or written without its sidecar by a run
        killed between the two files) is deleted with a note on stderr, so it is recomputed; its
        key is added to :attr:`recomputed`.
        """
        ok = set()
        for f in self.parts.glob("*.csv"):
            if not _KEY_RE.match(f.stem):
                continue
            side = f.with_name(f.name + ".sha256")
            try:
                good = side.read_text(encoding="ascii").strip() == hashlib.sha256(f.read_bytes()).hexdigest()
            except (OSError, UnicodeDecodeError):
                good = False
            if good:
                ok.add(f.stem)
                continue
            f.unlink(missing_ok=True)
            side.unlink(missing_ok=True)
            self.recomputed.append(f.stem)
            print(f"note: {self.kind} part {f.name} failed its sha256 check (truncated or edited); recomputing it", file=sys.stderr)
        return ok

    def write(self, key: str, frame: pd.DataFrame) -> Path:
        """Persist one task's result atomically (floats round-trip exactly), after its sha256 sidecar
        (so a part on disk always has one; a sidecar without its part is just not done)."""
        data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
        path = self.path_of(key)
        atomic_write_text(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest() + "\n")
        return atomic_write_bytes(path, data)

    def read(self, key: str) -> pd.DataFrame:
        """One finished task's result."""
        return pd.read_csv(self.path_of(key))

    def read_all(self, keys: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Finished results by key (all, or those of ``keys`` that are done)."""
        done = self.done()
        wanted = sorted(done if keys is None else set(keys) & done)
        return {k: self.read(k) for k in wanted}
