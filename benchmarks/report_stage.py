"""Cost of the report stage of ``drb demo`` (issue 14: the whole demo <= 2.5x ``--no-report``).

Three measurements, each printing old and new side by side when ``--base`` names a checkout of
the code to compare with (e.g. ``git archive <commit> | tar -x -C /tmp/base``):

``sheets``
    CPU seconds (``time.process_time``) of one tear sheet rendered in this process, best of
    ``--repeat``, per strategy: robust to other processes on the machine (wall time is not).
``stage``
    ``build_report`` of a copy of a ``--no-report`` run directory: wall seconds, CPU seconds of
    the calling process and of the tear sheet workers (``RUSAGE_CHILDREN``) and the per-stage
    timings.
``pairs``
    Alternated ``drb demo`` / ``drb demo --no-report`` runs (same ``nice`` level for both): wall
    seconds and the ratio per pair, and the median ratio. Only meaningful on a quiet machine.
    With ``--base`` each round also runs the old code's ``drb demo`` (order alternated).

Usage (from the repository root)::

    PYTHONPATH=$PWD python benchmarks/report_stage.py sheets --run /tmp/r2 [--base /tmp/base]
    PYTHONPATH=$PWD python benchmarks/report_stage.py stage --run /tmp/r2 [--base /tmp/base]
    PYTHONPATH=$PWD python benchmarks/report_stage.py pairs --pairs 3 [--base /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SHEET_SNIPPET = r"""
import json, sys, time
import matplotlib
matplotlib.use("Agg")
t0 = time.process_time()
from runners.report.tearsheets import _quiet, load_tearsheet_inputs, render_tearsheet
with _quiet():
    import pyfolio  # noqa: F401
imports = time.process_time() - t0
run, out, repeat, bench_name, strategies = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
bench = load_tearsheet_inputs(run, bench_name, returns_only=True)[0]
res = {"imports": imports}
for s in strategies:
    r, p, t = load_tearsheet_inputs(run, s)
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        render_tearsheet(r, p, t, f"{out}/{s}.png", strategy=s, fast_axes=True,
                         benchmark_rets=None if s == bench_name else bench, interesting_times=False)
        best = min(best, time.process_time() - c0)
    res[s] = best
print(json.dumps(res))
"""

_STAGE_SNIPPET = r"""
import json, resource, shutil, sys, time
run, work = sys.argv[1], sys.argv[2]
c0 = time.process_time(); w0 = time.perf_counter()
from runners.report import build_report
shutil.rmtree(work, ignore_errors=True)
shutil.copytree(run, work)
c1 = time.process_time(); w1 = time.perf_counter()
stamps = {}
build_report(work, n_jobs=2, timings=stamps)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - w1, "main_cpu": time.process_time() - c1,
                  "import_cpu": c1 - c0, "workers_cpu": ru.ru_utime + ru.ru_stime,
                  **{k: v for k, v in stamps.items() if not k.startswith("tearsheet:")}}))
"""


def _python(code_root: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code_root), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, *args], env=env, cwd=code_root, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _roots(base: str | None) -> dict[str, Path]:
    roots = {"new": ROOT}
    if base:
        roots = {"old": Path(base).resolve(), **roots}
    return roots


def bench_sheets(run: str, base: str | None, repeat: int, strategies: list[str], rounds: int) -> None:
    """Per-tear-sheet CPU seconds, old and new alternated ``rounds`` times (best kept)."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for label, root in _roots(base).items():
            with tempfile.TemporaryDirectory() as out:
                res = _python(root, "-c", _SHEET_SNIPPET, run, out, str(repeat), "EqualWeight", *strategies)
            for k, v in res.items():
                best.setdefault(label, {})[k] = min(v, best.get(label, {}).get(k, float("inf")))
    labels = list(best)
    print(f"{'CPU s (best)':<22}" + "".join(f"{lab:>9}" for lab in labels) + ("    new/old" if len(labels) == 2 else ""))
    for k in best[labels[-1]]:
        vals = [best[lab][k] for lab in labels]
        ratio = f"    {vals[1] / vals[0]:.2f}x" if len(vals) == 2 else ""
        print(f"{k:<22}" + "".join(f"{v:9.2f}" for v in vals) + ratio)
    sheets = [k for k in best[labels[-1]] if k != "imports"]
    for lab in labels:
        print(f"mean per sheet ({lab}): {statistics.mean(best[lab][s] for s in sheets):.2f} s CPU")


def bench_stage(run: str, base: str | None, rounds: int) -> None:
    """build_report wall and CPU, old and new alternated ``rounds`` times (medians)."""
    rows: dict[str, list[dict]] = {}
    for _ in range(rounds):
        for label, root in _roots(base).items():
            with tempfile.TemporaryDirectory() as tmp:
                rows.setdefault(label, []).append(
                    _python(root, "-c", _STAGE_SNIPPET, run, str(Path(tmp) / "run")))
    labels = list(rows)
    keys = list(rows[labels[-1]][0])
    print(f"{'median over ' + str(rounds):<16}" + "".join(f"{lab:>9}" for lab in labels))
    for k in keys:
        vals = [statistics.median(r.get(k, float("nan")) for r in rows[lab]) for lab in labels]
        print(f"{k:<16}" + "".join(f"{v:9.2f}" for v in vals))
    for lab in labels:
        tot = [r["main_cpu"] + r["import_cpu"] + r["workers_cpu"] for r in rows[lab]]
        print(f"report CPU total ({lab}): {statistics.median(tot):.2f} s")


def bench_pairs(n_pairs: int, nice: int, base: str | None) -> None:
    """Alternated demo / demo --no-report wall times; with ``base`` the old code's demo runs in
    the same round against the same --no-report run (the backtest code is shared)."""
    roots = _roots(base)
    ratios: dict[str, list[float]] = {lab: [] for lab in roots}
    report: dict[str, list[float]] = {lab: [] for lab in roots}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_pairs):
            runs = [("norep", ROOT)] + list(roots.items())[:: 1 if i % 2 == 0 else -1]
            if i % 2:
                runs = runs[1:] + runs[:1]
            walls = {}
            for kind, root in runs:
                out = Path(tmp) / kind
                shutil.rmtree(out, ignore_errors=True)
                cmd = ["nice", "-n", str(nice), sys.executable, "-m", "runners.cli", "demo", "--quiet",
                       "--out", str(out)] + (["--no-report"] if kind == "norep" else [])
                env = dict(os.environ, PYTHONPATH=str(root))
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, cwd=root, check=True, capture_output=True)
                walls[kind] = time.perf_counter() - t0
                if kind != "norep":
                    report[kind].append(json.loads((out / "run.json").read_text())["timings"]["report_s"])
            for lab in roots:
                ratios[lab].append(walls[lab] / walls["norep"])
            print(f"round {i + 1}: --no-report {walls['norep']:.1f} s; "
                  + "; ".join(f"{lab}: demo {walls[lab]:.1f} s, report_s {report[lab][-1]:.1f}, "
                              f"ratio {ratios[lab][-1]:.2f}x" for lab in roots), flush=True)
    for lab in roots:
        print(f"{lab}: median ratio {statistics.median(ratios[lab]):.2f}x, median report_s "
              f"{statistics.median(report[lab]):.1f} (target ratio <= 2.5x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["sheets", "stage", "pairs"])
    p.add_argument("--run", help="run directory of drb demo --no-report (sheets, stage)")
    p.add_argument("--base", help="checkout of the code to compare with")
    p.add_argument("--repeat", type=int, default=2, help="renders per sheet, best kept (sheets)")
    p.add_argument("--rounds", type=int, default=3, help="alternated old/new rounds")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--nice", type=int, default=5)
    p.add_argument("--strategies", nargs="*", default=["EqualWeight", "DynamicRiskBudget", "RiskParity"])
    a = p.parse_args()
    if a.what == "pairs":
        bench_pairs(a.pairs, a.nice, a.base)
    elif not a.run:
        p.error("--run is required")
    elif a.what == "sheets":
        bench_sheets(a.run, a.base, a.repeat, a.strategies, a.rounds)
    else:
        bench_stage(a.run, a.base, a.rounds)


if __name__ == "__main__":
    main()
