"""The run folder's only reader and writer (docs/outputs.md), and its staging and swap.

Layout: every file's name, columns and number format are the constants below, used by both the
per-file writers (a compare run puts them together in :func:`runners.experiments.compare.write_outputs`)
and the readers :func:`load_run` / :func:`load_strategy_inputs`.

Run folders never mix two runs: build beside the target, swap in at the end.

A ``drb compare`` / ``drb demo`` run writes everything into a temporary folder next to its
``--out`` (``.<name>.drb-tmp-<pid>``), then swaps it in by renames: the old folder is renamed to
``.<name>.drb-old-<pid>``, the new one takes its name, and only then is the old one removed. A run
killed at any point leaves the previous folder intact (or, killed between the two renames, its
``drb-old`` copy, which the next run restores) plus its clearly named temporary folder, which the
next run into the same ``--out`` deletes.

An existing ``--out`` is replaced only when it looks like a run folder (it has ``run.json``, is
empty, or holds nothing but files a run writes); any other folder is refused, so a mistyped
``--out ~`` cannot delete a home directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError
from drb.io import atomic_to_csv, atomic_write_text
from runners.metrics import METRIC_COLUMNS

__all__ = [
    "RUN_FOLDER_ENTRIES", "check_target", "clean_leftovers", "make_staging", "swap_in",
    "prepare_resumable", "RESUMABLE_OUTPUTS",
    "RUN_JSON", "METRICS_CSV", "METRICS_MD", "RETURNS_CSV", "VALUES_CSV", "REBALANCES_CSV",
    "TIME_RISK_CSV", "BUDGETS_CSV", "REGIMES_CSV", "TRANSITION_CSV", "SIGNIFICANCE_CSV",
    "REPORT_MD", "REPORT_HTML", "WEIGHTS", "RISK_CONTRIBUTIONS", "POSITIONS", "TRANSACTIONS",
    "FIGURES", "TEARSHEETS", "TABLES", "PER_STRATEGY", "FLOAT_FORMATS", "REBALANCE_COLUMNS",
    "TRANSACTION_COLUMNS", "REGIME_COLUMNS", "REGIME_SOURCE_COLUMNS", "TIME_RISK_INDEX",
    "strategy_file", "RunData", "load_run", "read_run_json", "read_dated_csv", "load_strategy_inputs",
    "write_table_csv", "write_strategy_frames", "write_metrics_csv", "write_run_json", "to_jsonable",
    "create_run_folder", "write_strategy_results", "write_model_files", "data_info", "package_versions",
    "returns_frame", "rebalances_frame",
]

# ----------------------------------------------------------------------------- layout
RUN_JSON = "run.json"
METRICS_CSV = "metrics.csv"
METRICS_MD = "metrics.md"
RETURNS_CSV = "returns.csv"
VALUES_CSV = "values.csv"
REBALANCES_CSV = "rebalances.csv"
TIME_RISK_CSV = "time_risk.csv"
BUDGETS_CSV = "budgets.csv"
REGIMES_CSV = "regimes.csv"
TRANSITION_CSV = "transition_matrix.csv"
SIGNIFICANCE_CSV = "significance.csv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
#: Per-strategy folders (``<folder>/<strategy>.csv``).
WEIGHTS, RISK_CONTRIBUTIONS, POSITIONS, TRANSACTIONS = (
    "weights", "risk_contributions", "positions", "transactions")
PER_STRATEGY = (WEIGHTS, RISK_CONTRIBUTIONS, POSITIONS, TRANSACTIONS)
FIGURES, TEARSHEETS, TABLES = "figures", "tearsheets", "tables"

#: Number format of each CSV a run writes (None: full precision).
FLOAT_FORMATS: dict[str, str | None] = {
    METRICS_CSV: "%.6f", RETURNS_CSV: "%.10g", VALUES_CSV: "%.6f", WEIGHTS: "%.8f",
    RISK_CONTRIBUTIONS: "%.8f", POSITIONS: "%.6f", TRANSACTIONS: "%.10g", REBALANCES_CSV: "%.8g",
    TIME_RISK_CSV: "%.8g", BUDGETS_CSV: "%.8f", REGIMES_CSV: None, TRANSITION_CSV: "%.6f",
}
_UNDATED = frozenset({METRICS_CSV, TRANSITION_CSV, TIME_RISK_CSV})
#: Columns of ``rebalances.csv`` every run has (the readers require them); an empty run writes these
#: plus ``max_asset_change, cost``.
REBALANCE_COLUMNS = ("date", "strategy", "trigger", "turnover")
_EMPTY_REBALANCE_COLUMNS = (*REBALANCE_COLUMNS, "max_asset_change", "cost")
#: Columns of ``transactions/<strategy>.csv`` (``symbol, amount, price`` are required to read).
TRANSACTION_COLUMNS = ("date", "symbol", "amount", "price", "commission")
#: Regime columns of the dynamic model's records: ``regimes.csv`` holds them all, ``budgets.csv``
#: all but the sources.
REGIME_SOURCE_COLUMNS = ("cycle_source", "vol_source")
REGIME_COLUMNS = ("phase", "vol_state", "regime", *REGIME_SOURCE_COLUMNS)
#: Index of ``time_risk.csv`` (one float column per strategy).
TIME_RISK_INDEX = ("section", "item")

#: Top-level names a compare/demo run writes (``docs/outputs.md``); a folder holding only these
#: (or holding ``run.json``) may be replaced.
RUN_FOLDER_ENTRIES = frozenset(
    {
        RUN_JSON, METRICS_CSV, METRICS_MD, RETURNS_CSV, VALUES_CSV, REBALANCES_CSV,
        TIME_RISK_CSV, BUDGETS_CSV, REGIMES_CSV, TRANSITION_CSV, SIGNIFICANCE_CSV,
        REPORT_MD, REPORT_HTML, *PER_STRATEGY, FIGURES, TEARSHEETS, TABLES,
    }
)


def strategy_file(root: str | os.PathLike[str], folder: str, strategy: str) -> Path:
    """Path of one strategy's file in a per-strategy ``folder`` (e.g. ``weights/<strategy>.csv``)."""
    return Path(root) / folder / f"{strategy}.csv"

_TMP = "drb-tmp"
_OLD = "drb-old"


def _leftover_re(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}\.({_TMP}|{_OLD})-(\d+)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours
        return True
    return True


def _is_existing_folder(out: Path) -> bool:
    """True for an existing folder, False when nothing is there; an ``--out`` that is a file is
    refused (ConfigError)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    return out.is_dir()


def check_target(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a folder that is not a run folder.

    Raises
    ------
    ConfigError
        Naming the folder and why it cannot be replaced.
    """
    if not _is_existing_folder(out):
        return
    names = {p.name for p in out.iterdir()}
    if not names or "run.json" in names or names <= RUN_FOLDER_ENTRIES:
        return
    other = sorted(names - RUN_FOLDER_ENTRIES)
    raise ConfigError(
        f"--out {out}: is not a drb run folder (it holds {', '.join(other[:3])}"
        f"{' ...' if len(other) > 3 else ''}); a run replaces its whole --out, choose a new folder"
    )


def clean_leftovers(out: Path) -> list[str]:
    """Delete temporary folders of killed runs into ``out``; restore a stranded old folder.

    Returns
    -------
    list of str
        Names of the folders removed or restored (for a note).
    """
    parent = out.parent
    if not parent.is_dir():
        return []
    pat = _leftover_re(out)
    done: list[str] = []
    for entry in sorted(parent.iterdir()):
        m = pat.match(entry.name)
        if m is None or not entry.is_dir() or _alive(int(m.group(2))):
            continue
        if m.group(1) == _OLD and not out.exists():
            entry.rename(out)  # killed between the two renames: the old run is still the latest
        else:
            shutil.rmtree(entry, ignore_errors=True)
        done.append(entry.name)
    return done


def make_staging(out: Path) -> Path:
    """Create and return this process's temporary folder beside ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.{_TMP}-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    return stage


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_in(stage: Path, out: Path) -> Path:
    """Replace ``out`` by the complete folder ``stage`` (renames; the old run removed last)."""
    old = out.parent / f".{out.name}.{_OLD}-{os.getpid()}"
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
        os.rename(stage, out)
        _fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(stage, out)
        _fsync_dir(out.parent)
    return out


#: Files each resumable kind writes at the top of its folder (besides ``<kind>.json`` and
#: ``parts/<kind>/``); ``figures/`` is shared.
RESUMABLE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "sweep": ("sweep.csv", "baselines.csv", "sweep.md"),
    "forecast_errors": ("forecast_errors.csv", "forecast_degradation.csv", "forecast_degradation.md"),
    "montecarlo": ("paths.csv", "relative.csv", "summary.csv", "summary.md"),
}


def prepare_resumable(out: Path, kinds: tuple[str, ...], *, restart: bool) -> None:
    """Make sure a sweep / Monte Carlo folder holds nothing but this run (same settings or resumable).

    Resumable runs keep their parts (``runners.parallel.PartStore`` refuses a rerun with other
    settings). What this adds: a folder holding a compare run or a resumable run of another kind
    than ``kinds`` is refused, and ``restart`` deletes every output, part and manifest of every
    kind (and ``figures/``) first, so no figure or table of the earlier run survives.

    Raises
    ------
    ConfigError
        Naming the folder and the other run it holds.
    """
    if not _is_existing_folder(out):
        return
    if restart:
        for kind, files in RESUMABLE_OUTPUTS.items():
            for name in (*files, f"{kind}.json"):
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()
            shutil.rmtree(out / "parts" / kind, ignore_errors=True)
        shutil.rmtree(out / "figures", ignore_errors=True)
    if (out / "run.json").exists():
        raise ConfigError(f"--out {out}: holds a drb compare/demo run; use a new --out")
    others = [k for k in RESUMABLE_OUTPUTS if k not in kinds and (out / f"{k}.json").exists()]
    if others:
        raise ConfigError(
            f"--out {out}: holds a {others[0]} run that this command does not produce; "
            "rerun with --restart to discard it or use a new --out"
        )


# ----------------------------------------------------------------------------- readers


@dataclass
class RunData:
    """Everything the report reads from a run directory (frames have DatetimeIndexes)."""

    run_dir: Path
    returns: pd.DataFrame
    strategies: list[str]
    assets: list[str]
    run_info: dict[str, Any]
    weights: dict[str, pd.DataFrame] = field(default_factory=dict)
    risk_contributions: dict[str, pd.DataFrame] = field(default_factory=dict)
    positions: dict[str, pd.DataFrame] = field(default_factory=dict)
    transactions: dict[str, pd.DataFrame] = field(default_factory=dict)
    rebalances: pd.DataFrame | None = None
    budgets: pd.DataFrame | None = None
    regimes: pd.DataFrame | None = None
    transition: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    time_risk: pd.DataFrame | None = None  # time_risk.csv: (section, item) x strategy
    missing: list[str] = field(default_factory=list)


def _read_frame(path: Path, what: str = "", **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with one-line :class:`DataError` messages (``what``: optional prefix)."""
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{what}cannot read {path}: {exc}".splitlines()[0]) from None


def read_dated_csv(path: Path, *, what: str = "", index_date: bool = True,
                   required: bool = True) -> pd.DataFrame | None:
    """Read a run CSV whose ``date`` column holds dates.

    Parameters
    ----------
    path : pathlib.Path
    what : str, optional
        Prefix of the error messages (e.g. ``"positions: "``).
    index_date : bool, default True
        Index by ``date`` (sorted, unique); a file without ``date`` is then an error, otherwise it
        is returned as read.
    required : bool, default True
        A missing file is an error; otherwise None is returned.

    Raises
    ------
    DataError
        Missing (when required) or unreadable file, no ``date`` column, dates that do not parse,
        duplicate dates.
    """
    if not path.is_file():
        if required:
            raise DataError(f"{what}missing file: {path}")
        return None
    frame = _read_frame(path, what)
    if "date" not in frame.columns:
        if index_date:
            raise DataError(f"{what}{path}: no 'date' column")
        return frame
    try:
        frame["date"] = pd.to_datetime(frame["date"])
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what}{path}: column 'date' is not made of dates ({exc})".splitlines()[0]) from None
    if index_date:
        frame = frame.set_index("date")
        if frame.index.has_duplicates:
            raise DataError(f"{what}{path}: duplicate date {frame.index[frame.index.duplicated()][0].date()}")
        frame = frame.sort_index()
    return frame


def _numeric(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = frame.apply(pd.to_numeric, errors="coerce")
    bad = out.isna() & frame.notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{path}: non-numeric value {frame.iat[r, c]!r} in column {frame.columns[c]!r}")
    return out.astype(float)


def read_run_json(root: Path) -> dict[str, Any] | None:
    """``run.json`` as a dict, None when absent.

    Raises
    ------
    DataError
        Not valid JSON or not a JSON object.
    """
    run_json = root / RUN_JSON
    if not run_json.is_file():
        return None
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{run_json}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise DataError(f"{run_json}: expected a JSON object")
    return info


def _read_returns(root: Path) -> pd.DataFrame:
    path = root / RETURNS_CSV
    returns = _numeric(read_dated_csv(path), path)  # type: ignore[arg-type]
    if returns.shape[1] == 0 or returns.dropna(how="all").empty:
        raise DataError(f"{path}: no strategy returns")
    return returns


def _read_per_strategy(run: RunData) -> None:
    """The per-strategy folders of every strategy (absent files go to ``run.missing``)."""
    stores = {WEIGHTS: run.weights, RISK_CONTRIBUTIONS: run.risk_contributions, POSITIONS: run.positions}
    for folder, store in stores.items():
        for s in run.strategies:
            p = strategy_file(run.run_dir, folder, s)
            f = read_dated_csv(p, required=False)
            if f is None:
                run.missing.append(f"{folder}/{s}.csv")
            else:
                store[s] = _numeric(f, p)
    for s in run.strategies:
        f = read_dated_csv(strategy_file(run.run_dir, TRANSACTIONS, s), index_date=False, required=False)
        if f is None:
            run.missing.append(f"{TRANSACTIONS}/{s}.csv")
        else:
            run.transactions[s] = f


def _run_assets(run: RunData) -> list[str]:
    """Assets declared in ``run.json`` (``assets`` or ``data.assets``), then any other weight or
    position column but ``cash``, in order of appearance."""
    info = run.run_info
    assets: list[str] = []
    declared = info.get("assets")
    if declared is None and isinstance(info.get("data"), dict):
        declared = info["data"].get("assets")
    if isinstance(declared, dict):
        assets = [str(a) for a in declared]
    elif isinstance(declared, list):
        assets = [str(a) if not isinstance(a, dict) else str(a.get("name")) for a in declared]
    for frames in (run.weights, run.positions):
        for f in frames.values():
            for c in f.columns:
                if c != "cash" and c not in assets:
                    assets.append(str(c))
    return assets


def _read_model_files(run: RunData) -> None:
    """``rebalances.csv``, ``budgets.csv``, ``regimes.csv`` and ``transition_matrix.csv``."""
    root = run.run_dir
    reb = read_dated_csv(root / REBALANCES_CSV, index_date=False, required=False)
    if reb is None:
        run.missing.append(REBALANCES_CSV)
    else:
        need = set(REBALANCE_COLUMNS) - set(reb.columns)
        if need:
            raise DataError(f"{root / REBALANCES_CSV}: missing column(s) {sorted(need)}")
        run.rebalances = reb
    for name, attr in ((BUDGETS_CSV, "budgets"), (REGIMES_CSV, "regimes")):
        f = read_dated_csv(root / name, required=False)
        if f is None:
            run.missing.append(name)
        else:
            setattr(run, attr, f)
    tm_path = root / TRANSITION_CSV
    if tm_path.is_file():
        run.transition = _numeric(_read_frame(tm_path, index_col=0), tm_path)
    else:
        run.missing.append(TRANSITION_CSV)


def _read_metrics(path: Path) -> pd.DataFrame:
    m = _read_frame(path, index_col=0)
    lacking = [c for c in METRIC_COLUMNS if c not in m.columns]
    if lacking:
        raise DataError(f"{path}: missing column(s) {lacking}")
    m.index = m.index.astype(str)
    m.index.name = "strategy"
    return _numeric(m[list(METRIC_COLUMNS)], path)


def _read_time_risk(path: Path) -> pd.DataFrame:
    """``time_risk.csv`` (``runners.experiments.time_risk.time_risk_table``): index ``(section, item)`` as
    strings, one float column per strategy."""
    frame: pd.DataFrame = read_dated_csv(path, index_date=False)  # type: ignore[assignment]
    if not set(TIME_RISK_INDEX) <= set(frame.columns):
        raise DataError(f"{path}: expected columns 'section' and 'item'")
    for col in TIME_RISK_INDEX:
        frame[col] = frame[col].astype(str)
    frame = frame.set_index(list(TIME_RISK_INDEX))
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no strategy columns")
    if frame.index.has_duplicates:
        raise DataError(f"{path}: duplicate row {frame.index[frame.index.duplicated()][0]}")
    if "year" not in frame.index.get_level_values("section"):
        raise DataError(f"{path}: no 'year' rows")
    frame.columns = [str(c) for c in frame.columns]
    return _numeric(frame, path)


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read a run directory (docs/outputs.md). Only ``returns.csv`` is required.

    Parameters
    ----------
    run_dir : str or PathLike

    Returns
    -------
    RunData
        ``missing`` lists the optional inputs that were not found.

    Raises
    ------
    DataError
        The folder or ``returns.csv`` is missing, or a present file is malformed.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise DataError(f"run directory not found: {root}")
    returns = _read_returns(root)
    info = read_run_json(root)
    run = RunData(run_dir=root, returns=returns, strategies=[str(c) for c in returns.columns], assets=[],
                  run_info=info if info is not None else {}, missing=[] if info is not None else [RUN_JSON])
    _read_per_strategy(run)
    run.assets = _run_assets(run)
    _read_model_files(run)
    if (root / METRICS_CSV).is_file():
        run.metrics = _read_metrics(root / METRICS_CSV)
    if (root / TIME_RISK_CSV).is_file():
        run.time_risk = _read_time_risk(root / TIME_RISK_CSV)
    else:
        run.missing.append(TIME_RISK_CSV)
    return run


def _utc(ix: pd.Index) -> pd.DatetimeIndex:
    """Dates as a UTC DatetimeIndex without a name (pyfolio's format)."""
    dix = pd.DatetimeIndex(ix)
    return (dix.tz_localize("UTC") if dix.tz is None else dix.tz_convert("UTC")).rename(None)


def _strategy_returns(root: Path, strategy: str) -> pd.Series:
    path = root / RETURNS_CSV
    rets_all: pd.DataFrame = read_dated_csv(path, what="returns: ")  # type: ignore[assignment]
    if strategy not in rets_all.columns:
        raise DataError(f"returns: {path} has no column {strategy!r}")
    rets = pd.to_numeric(rets_all[strategy], errors="coerce").dropna()
    if rets.empty:
        raise DataError(f"returns: strategy {strategy!r} has no returns in {path}")
    return rets


def _strategy_positions(root: Path, strategy: str, days: pd.Index) -> pd.DataFrame:
    path = strategy_file(root, POSITIONS, strategy)
    pos: pd.DataFrame = read_dated_csv(path, what="positions: ")  # type: ignore[assignment]
    if "cash" not in pos.columns:
        raise DataError(f"positions: {path} has no 'cash' column")
    return pos.apply(pd.to_numeric, errors="coerce").reindex(days).ffill().fillna(0.0)


def _strategy_transactions(root: Path, strategy: str) -> pd.DataFrame:
    path = strategy_file(root, TRANSACTIONS, strategy)
    txns: pd.DataFrame = read_dated_csv(path, what="transactions: ", index_date=False)  # type: ignore[assignment]
    if "date" not in txns.columns:
        raise DataError(f"transactions: {path}: no 'date' column")
    missing = set(TRANSACTION_COLUMNS[1:4]) - set(txns.columns)
    if missing:
        raise DataError(f"transactions: {path} lacks column(s) {sorted(missing)}")
    txns = txns.set_index("date").sort_index(kind="stable")
    txns["symbol"] = txns["symbol"].astype(str)
    return txns[txns["amount"].astype(float) != 0.0]


def load_strategy_inputs(
    run_dir: str | os.PathLike[str], strategy: str, *, returns_only: bool = False
) -> tuple[pd.Series, pd.DataFrame | None, pd.DataFrame | None]:
    """Read one strategy's returns, positions and transactions in pyfolio's format.

    Parameters
    ----------
    run_dir : str or PathLike
        The run directory.
    strategy : str
        Strategy name (a column of ``returns.csv``).
    returns_only : bool, default False
        Read only the returns (positions and transactions come back as None).

    Returns
    -------
    returns : pandas.Series, shape (n_days,)
        Daily simple returns, UTC-midnight DatetimeIndex, leading/trailing NaN dropped.
    positions : pandas.DataFrame, shape (n_days, n_assets + 1)
        Money value per asset plus ``cash``, aligned to the returns' days.
    transactions : pandas.DataFrame or None
        Columns ``symbol, amount, price`` (+ ``commission``), UTC DatetimeIndex; None when the
        strategy has no fills.

    Raises
    ------
    DataError
        A file is missing or malformed.
    """
    root = Path(run_dir)
    rets = _strategy_returns(root, strategy)
    if returns_only:
        rets.index = _utc(rets.index)
        rets.name = strategy
        return rets, None, None
    pos = _strategy_positions(root, strategy, rets.index)
    txns = _strategy_transactions(root, strategy)
    rets.index = _utc(rets.index)  # no "date" axis label under every panel
    rets.name = strategy
    pos.index = _utc(pos.index)
    if txns.empty:
        return rets, pos, None
    txns.index = _utc(txns.index)
    return rets, pos, txns


# ----------------------------------------------------------------------------- writers


def _csv(frame: pd.DataFrame, path: Path, kind: str, *, index: bool = True, exact: bool = False) -> Path:
    """Write one run CSV in its layout's number format (``exact``: full precision); an unnamed
    index is labelled ``date``."""
    kwargs: dict[str, Any] = {"index": index}
    if not exact and FLOAT_FORMATS.get(kind) is not None:
        kwargs["float_format"] = FLOAT_FORMATS[kind]
    if index and kind not in _UNDATED and frame.index.name is None:
        kwargs["index_label"] = "date"
    return atomic_to_csv(frame, path, **kwargs)


def write_table_csv(out: str | os.PathLike[str], name: str, frame: pd.DataFrame, *, exact: bool = False) -> Path:
    """Write one top-level file of the run folder (``returns.csv``, ``values.csv``,
    ``rebalances.csv``, ``budgets.csv``, ``regimes.csv``, ``transition_matrix.csv``,
    ``time_risk.csv``) in its layout (:data:`FLOAT_FORMATS`; ``rebalances.csv`` without index).

    Parameters
    ----------
    out : str or PathLike
        The run folder.
    name : str
        One of the file-name constants of this module.
    frame : pandas.DataFrame
        Dated frames carry their dates as the index (``rebalances.csv``: as a ``date`` column).
    exact : bool, default False
        Full precision instead of the layout's number format (test fixtures).
    """
    if name not in FLOAT_FORMATS or name in (METRICS_CSV, *PER_STRATEGY):
        raise ValueError(f"not a top-level table of the run folder: {name!r}")
    return _csv(frame, Path(out) / name, name, index=name != REBALANCES_CSV, exact=exact)


def write_strategy_frames(
    out: str | os.PathLike[str],
    strategy: str,
    *,
    weights: pd.DataFrame,
    risk_contributions: pd.DataFrame,
    positions: pd.DataFrame,
    transactions: pd.DataFrame,
    exact: bool = False,
) -> dict[str, Path]:
    """Write one strategy's ``weights/``, ``risk_contributions/``, ``positions/`` and
    ``transactions/`` files (dated index; transactions with a ``date`` column,
    :data:`TRANSACTION_COLUMNS`; ``exact``: full precision); returns folder -> path."""
    frames = {WEIGHTS: weights, RISK_CONTRIBUTIONS: risk_contributions, POSITIONS: positions,
              TRANSACTIONS: transactions}
    return {folder: _csv(frame, strategy_file(out, folder, strategy), folder, index=folder != TRANSACTIONS,
                         exact=exact)
            for folder, frame in frames.items()}


def write_metrics_csv(out: str | os.PathLike[str], metrics: pd.DataFrame, markdown: str, *,
                      exact: bool = False) -> dict[str, Path]:
    """Write ``metrics.csv`` (index ``strategy``, :data:`runners.metrics.METRIC_COLUMNS`) and
    ``metrics.md`` (``markdown``, rendered by the caller).

    ``exact=True`` writes full precision (the report, computing metrics a run lacks) instead of
    the run's 6 decimals. Returns ``{"metrics.csv": path, "metrics.md": path}``.
    """
    root = Path(out)
    if exact:
        table = metrics[list(METRIC_COLUMNS)].copy()
        table.index.name = "strategy"
        csv = atomic_to_csv(table, root / METRICS_CSV)
    else:
        csv = atomic_to_csv(metrics, root / METRICS_CSV, float_format=FLOAT_FORMATS[METRICS_CSV])
    return {METRICS_CSV: csv, METRICS_MD: atomic_write_text(root / METRICS_MD, markdown)}


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars, timestamps, paths and non-finite floats made JSON-safe
    (non-finite -> None, frames -> a short description, other objects -> ``repr``)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, (pd.Timestamp,)):
        return str(obj.date())
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return f"<{type(obj).__name__} {getattr(obj, 'shape', '')}>"
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return repr(obj)


def write_run_json(out: str | os.PathLike[str], info: Mapping[str, Any]) -> Path:
    """Write ``run.json`` (indented, JSON-safe via :func:`to_jsonable`); a run writes it last."""
    return atomic_write_text(Path(out) / RUN_JSON, json.dumps(to_jsonable(info), indent=2))


# ----------------------------------------------------------------------------- a compare run
# The pieces of a compare/demo run folder that need no computation from the layers above;
# runners.experiments.compare.write_outputs puts them together with the time-risk files, the
# effective parameters and the evidence files.

_PACKAGES = (
    "dynamic-risk-budget", "backtrader", "numpy", "pandas", "scipy", "arch", "empyrical-reloaded",
    "pyfolio-reloaded", "matplotlib", "dask",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on (``run.json``'s ``versions``)."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def returns_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """``returns.csv``: one column of daily returns per strategy result, sorted by date."""
    return pd.DataFrame({n: r.returns for n, r in results.items()}).sort_index()


def rebalances_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """``rebalances.csv``: every strategy's rebalance records, by date then strategy."""
    frames = [r.rebalances for r in results.values() if len(r.rebalances)]
    if not frames:
        return pd.DataFrame(columns=list(_EMPTY_REBALANCE_COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values(["date", "strategy"], kind="stable").reset_index(drop=True)


def create_run_folder(out: Path) -> None:
    """Create ``out`` and its per-strategy subfolders (:data:`PER_STRATEGY`)."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in PER_STRATEGY:
        (out / sub).mkdir(exist_ok=True)


def write_strategy_results(out: Path, results: Mapping[str, Any]) -> None:
    """Every strategy's ``weights/``, ``risk_contributions/``, ``positions/`` and ``transactions/``
    files from its backtest result; weights and positions from the first return on (warm-up cut)."""
    for n, r in results.items():
        start = r.returns.index[0] if len(r.returns) else None
        write_strategy_frames(
            out, n,
            weights=r.weights.loc[start:] if start is not None else r.weights,
            risk_contributions=r.risk_contributions,
            positions=r.positions.loc[start:] if start is not None else r.positions,
            transactions=r.transactions,
        )


def write_model_files(out: Path, dyn: Any) -> dict[str, Any]:
    """The dynamic model's ``budgets.csv``, ``regimes.csv``, ``transition_matrix.csv``; returns
    the signal sources it fell back to (``run.json``'s ``fallbacks``)."""
    if dyn is None or not len(dyn.budgets):
        return {}
    from indicators import REGIMES, transition_matrix

    b = dyn.budgets
    write_table_csv(out, BUDGETS_CSV, b.drop(columns=list(REGIME_SOURCE_COLUMNS), errors="ignore"))
    reg = b[list(REGIME_COLUMNS)]
    write_table_csv(out, REGIMES_CSV, reg)
    known = reg["regime"].dropna()
    write_table_csv(out, TRANSITION_CSV, transition_matrix(known.to_numpy(), labels=list(REGIMES)))
    return {col: sorted(set(reg[col].dropna())) for col in REGIME_SOURCE_COLUMNS}


def data_info(results: Mapping[str, Any], market: Any) -> dict[str, Any]:
    """``run.json``'s ``data``: span, assets, sources and signals of the market."""
    invested = [r.returns.index[0] for r in results.values() if len(r.returns)]
    return {
        "start": str(market.prices.index[0].date()),
        "end": str(market.prices.index[-1].date()),
        "bars": len(market.prices),
        "assets": market.asset_classes,
        "sources": market.sources,
        "notes": market.notes,
        "signals": {"vol_index": market.vol_index is not None, "macro": market.macro is not None},
        "first_investment": str(min(invested).date()) if invested else None,
    }
