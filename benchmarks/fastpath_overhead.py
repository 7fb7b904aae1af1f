"""Fast path vs the bare risk model, EGARCH-DCC and EWMA side by side (issue 17, target 2).

On the embedded synthetic market of 2018-01-02 .. 2025-06-30 (one path), times in this process
(CPU time, one BLAS thread):

* **bare**: :class:`indicators.risk_model.RiskModel` fed the path's daily returns, nothing else;
* **fast**: the dynamic allocator on the fast path (:func:`runners.engine.fastpath.run_fast`, no
  recording), which feeds the same returns to the same risk model and adds the regimes, triggers,
  budgets, solver calls, execution and bookkeeping.

The two are alternated (bare, fast, bare, fast...) so that a slow spell of the shared machine hits
both alike; printed are the best and the median over the repeats of each, the ratio fast / bare
(target <= 1.15 for EGARCH-DCC) and the allocator's own overhead, fast - bare (target <= ~0.1 s a
path). With EWMA the risk model costs milliseconds, so there the overhead is the number to read,
not the ratio.

Usage::

    PYTHONPATH=$PWD nice python benchmarks/fastpath_overhead.py [--repeats 5] [--ewma-repeats 15] [--skip-egarch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drb.errors import DRBWarning  # noqa: E402
from feeds import MarketData, synthetic_market  # noqa: E402

START, END = "2018-01-02", "2025-06-30"


def measure(market: MarketData, risk_model: str, repeats: int) -> dict[str, float]:
    """CPU seconds of the bare risk model and of the fast path, alternated ``repeats`` times.

    Parameters
    ----------
    market : MarketData
        The path (prices, vol index, macro).
    risk_model : str
        ``egarch_dcc`` or ``ewma`` (the allocator's ``risk_model``).
    repeats : int
        Timed (bare, fast) pairs, after one untimed warm-up pair.

    Returns
    -------
    dict
        ``bare_best``, ``bare_median``, ``fast_best``, ``fast_median`` (CPU s) and ``refits``.
    """
    from indicators.risk_model import RiskModel
    from runners.engine.fastpath import run_fast

    rets = market.prices.pct_change().iloc[1:].to_numpy()
    n = market.prices.shape[1]
    out: dict[str, float] = {}

    def bare() -> None:
        rm = RiskModel(n, method=risk_model)
        for row in rets:
            rm.update(row)
        out["refits"] = rm.n_refits

    def fast() -> None:
        run_fast(market, "DynamicRiskBudget", {"risk_model": risk_model}, record=False)

    def cpu(fn) -> float:
        c0 = time.process_time()
        fn()
        return time.process_time() - c0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DRBWarning)
        bare(), fast()  # warm-up: numba kernels, imports, caches
        pairs = [(cpu(bare), cpu(fast)) for _ in range(repeats)]
    b = [p[0] for p in pairs]
    f = [p[1] for p in pairs]
    out.update(bare_best=min(b), bare_median=statistics.median(b), fast_best=min(f), fast_median=statistics.median(f))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="alternated pairs for EGARCH-DCC (default 5)")
    ap.add_argument("--ewma-repeats", type=int, default=15, help="alternated pairs for EWMA (default 15)")
    ap.add_argument("--skip-egarch", action="store_true", help="EWMA only (seconds instead of a minute)")
    args = ap.parse_args(argv)

    market = MarketData.from_synthetic(synthetic_market(seed=0, start=START, end=END))
    print(f"market {START}..{END}: {len(market.prices)} bars, {market.prices.shape[1]} assets; CPU seconds, 1 BLAS thread")
    runs = [("ewma", args.ewma_repeats)] + ([] if args.skip_egarch else [("egarch_dcc", args.repeats)])
    rows = []
    for rm, k in runs:
        r = measure(market, rm, k)
        rows.append((rm, k, r))
        print(f"  {rm}: done ({k} pairs)", flush=True)
    print()
    print(f"{'risk model':<11} {'stat':<7} {'bare s':>8} {'fast s':>8} {'ratio':>6} {'overhead s':>11}")
    for rm, _k, r in rows:
        for stat in ("best", "median"):
            b, f = r[f"bare_{stat}"], r[f"fast_{stat}"]
            print(f"{rm:<11} {stat:<7} {b:8.3f} {f:8.3f} {f / b:6.2f} {f - b:11.3f}")
    print("\ntargets: EGARCH-DCC ratio <= 1.15; overhead (fast - bare) <= ~0.1 s a path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
