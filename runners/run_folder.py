"""Run folders that never mix two runs: build beside the target, swap in at the end.

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
import os
import re
import shutil
from pathlib import Path

from drb.errors import ConfigError

__all__ = ["RUN_FOLDER_ENTRIES", "check_target", "clean_leftovers", "make_staging", "swap_in"]

#: Top-level names a compare/demo run writes (``docs/outputs.md``); a folder holding only these
#: (or holding ``run.json``) may be replaced.
RUN_FOLDER_ENTRIES = frozenset(
    {
        "run.json", "metrics.csv", "metrics.md", "returns.csv", "values.csv", "rebalances.csv",
        "time_risk.csv", "budgets.csv", "regimes.csv", "transition_matrix.csv", "significance.csv",
        "report.md", "report.html", "weights", "risk_contributions", "positions", "transactions",
        "figures", "tearsheets", "tables",
    }
)

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

    Resumable runs keep their parts (``runners.distributed.PartStore`` refuses a rerun with other
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
