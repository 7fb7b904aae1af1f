"""Benchmark: CPU time of the bare online EGARCH-DCC ``RiskModel`` per path, split by EGARCH fit engine.

Run: ``OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD nice python benchmarks/egarch_speed.py [--ref REF] [--reps 3]``.

The synthetic market of ``benchmarks/risk_model.py`` (``feeds.synthetic_market(seed=0)``,
2018-01-02..2025-06-30, and its 20-asset extension), fed bar by bar to ``RiskModel`` (window 750, first
fit at 250, refit every 21 bars). Prints, per case, the process CPU time of the whole path (best of
``--reps``), the ratio to backtrader's no-op loop over the same feeds, and the inclusive CPU time and
call count of each stage of :func:`indicators.egarch.egarch_fit` (Newton, L-BFGS-B, kink polish, arch
retries, invertibility refits) with the fits' outcomes. With ``--ref`` the same measurement runs on the
package code of that git ref (``git archive`` into a temporary folder, a subprocess) and both are
printed side by side.

Set ``OPENBLAS_NUM_THREADS=1`` before Python starts: ``threadpoolctl`` inside the process misses scipy's
own OpenBLAS, and multi-threaded BLAS makes the many tiny optimizer calls several times slower on a
busy 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
_STAGES = ("_fit_fast", "_newton", "_mu_kink_polish", "_fit_arch", "_fit_invertible", "_cold_start")


def _markets() -> dict[str, np.ndarray]:
    import feeds

    mk = feeds.synthetic_market(seed=0, start="2018-01-02", end="2025-06-30")
    r4 = mk.prices.pct_change().iloc[1:].to_numpy()
    rng = np.random.default_rng(0)
    r20 = np.column_stack([
        r4[:, i % 4] * rng.uniform(0.6, 1.2) + 0.004 * rng.standard_normal(r4.shape[0]) for i in range(20)
    ])
    return {"4 assets": r4, "20 assets": r20}


def _noop_loop(returns: np.ndarray) -> float:
    """CPU seconds of backtrader's no-op loop over price feeds built from ``returns``."""
    import backtrader as bt

    prices = 100 * np.cumprod(1 + np.vstack([np.zeros(returns.shape[1]), returns]), axis=0)
    idx = pd.bdate_range("2018-01-02", periods=prices.shape[0])

    class Noop(bt.Strategy):
        def next(self):
            pass

    cer = bt.Cerebro(stdstats=False)
    for j in range(prices.shape[1]):
        df = pd.DataFrame({k: prices[:, j] for k in ("open", "high", "low", "close")}, index=idx)
        df["volume"] = 0.0
        cer.adddata(bt.feeds.PandasData(dataname=df), name=f"a{j}")
    cer.addstrategy(Noop)
    t0 = time.process_time()
    cer.run(runonce=False)
    return time.process_time() - t0


class _Probe:
    """Inclusive CPU time and call count of egarch's private stages, plus the L-BFGS-B iterations."""

    def __init__(self, mod):
        self.time: dict = defaultdict(float)
        self.calls: dict = defaultdict(int)
        self.lbfgs_iters = 0
        self.outcomes: dict = defaultdict(int)
        for name in _STAGES:
            if hasattr(mod, name):
                setattr(mod, name, self._wrap(name, getattr(mod, name)))
        if hasattr(mod, "minimize"):
            mod.minimize = self._wrap_minimize(mod.minimize)
        fit = mod.egarch_fit

        def counted_fit(*a, **k):
            f = fit(*a, **k)
            self.outcomes[f"{f.engine}/{f.status}"] += 1
            return f

        mod.egarch_fit = self._wrap("egarch_fit", counted_fit)

    def _wrap(self, name, fn):
        def inner(*a, **k):
            t0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.time[name] += time.process_time() - t0
                self.calls[name] += 1

        return inner

    def _wrap_minimize(self, fn):
        def inner(*a, **k):
            t0 = time.process_time()
            res = fn(*a, **k)
            name = f"minimize[{k.get('method', '?')}]"
            self.time[name] += time.process_time() - t0
            self.calls[name] += 1
            if k.get("method") == "L-BFGS-B":
                self.lbfgs_iters += int(res.nit)
            return res

        return inner


def _path(returns: np.ndarray, probe: bool) -> dict:
    import indicators.egarch as eg
    from indicators.risk_model import RiskModel

    p = _Probe(eg) if probe else None
    m = RiskModel(returns.shape[1], refit_every=21)
    t0 = time.process_time()
    for t in range(returns.shape[0]):
        m.update(returns[t])
    out = {"cpu": time.process_time() - t0, "failed": int(m.n_failed_fits), "refits": int(m.n_refits)}
    if p is not None:
        out.update(stages={k: [p.time[k], p.calls[k]] for k in p.time}, lbfgs_iters=p.lbfgs_iters,
                   outcomes=dict(p.outcomes))
    return out


def measure(reps: int) -> dict:
    """Best-of-``reps`` CPU time per case (unprobed runs) and one probed run's breakdown."""
    warnings.simplefilter("ignore")
    from indicators.risk_model import RiskModel

    mk = _markets()
    RiskModel(4).update(mk["4 assets"][0])  # imports and numba caches outside the timing
    _path(mk["4 assets"][:300], probe=False)
    res = {}
    for name, r in mk.items():
        best = min(_path(r, probe=False)["cpu"] for _ in range(reps))
        detail = _path(r, probe=True)
        detail["cpu_best"] = best
        detail["noop"] = min(_noop_loop(r) for _ in range(2))
        res[name] = detail
    return res


def _measure_ref(ref: str, reps: int) -> dict:
    """Run :func:`measure` on the package code of git ``ref`` in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "drb", "feeds", "indicators"],
                              check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import egarch_speed as b; print(json.dumps(b.measure({reps})))")
        # cwd=tmp: ``python -c`` puts the working directory first on sys.path
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def _report(label: str, res: dict) -> list[str]:
    lines = [f"## {label}", ""]
    for case, d in res.items():
        lines.append(f"{case}: CPU {d['cpu_best']:.3f} s (best), no-op loop {d['noop']:.3f} s, "
                     f"ratio {d['cpu_best'] / d['noop']:.2f}; refits {d['refits']}, failed fits {d['failed']}; "
                     f"L-BFGS-B iterations {d['lbfgs_iters']}")
        lines.append("  outcomes (engine/status): " + ", ".join(f"{k} {v}" for k, v in sorted(d["outcomes"].items())))
        for k, (t, c) in sorted(d["stages"].items(), key=lambda kv: -kv[1][0]):
            lines.append(f"  {k:<24} {t:7.3f} s  {c:6d} calls")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", help="git ref to compare against (its drb/feeds/indicators)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("warning: OPENBLAS_NUM_THREADS=1 is not set; timings will be noisy and slow", file=sys.stderr)
    lines = []
    if args.ref:
        ref = _measure_ref(args.ref, args.reps)
        lines += _report(f"ref {args.ref}", ref)
    cur = measure(args.reps)
    lines += _report("working tree", cur)
    if args.ref:
        for case in cur:
            a, b = ref[case]["cpu_best"], cur[case]["cpu_best"]
            lines.append(f"{case}: {args.ref} {a:.3f} s -> working tree {b:.3f} s (x{a / b:.2f} faster)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
