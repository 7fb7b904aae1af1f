"""Wall time of the strategies and of the whole comparison, as ratios to backtrader's no-op loop.

Run: ``python benchmarks/backtest.py [--repeat 3]``. Everything is measured in one run on the
embedded market (2018-01-02 to 2025-06-30, 4 assets + the vol_index feed, 1955 bars): medians of
``--repeat`` runs. The no-op loop is a cerebro with the same feeds, ``cheat_on_open=True`` and a
strategy whose ``next`` does nothing.

Targets (issue 5): DynamicRiskBudget (EGARCH-DCC, monthly refits) within 8x of the no-op loop; each
baseline within 2x; the full comparison of all strategies on 2 cores within 3x of one dynamic run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backtrader as bt  # noqa: E402

from feeds import MarketData, add_feeds, synthetic_market  # noqa: E402
from runners.backtest import STRATEGY_NAMES, build_cerebro, strategy_class  # noqa: E402
from runners.compare import run_comparison  # noqa: E402
from runners.fastpath import run_fast  # noqa: E402


class _Noop(bt.Strategy):
    def next(self) -> None:
        pass


def _noop(market: MarketData) -> float:
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    add_feeds(cerebro, market)
    cerebro.addstrategy(_Noop)
    t0 = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - t0


def _strategy(market: MarketData, name: str, params: dict | None = None) -> float:
    cerebro = build_cerebro(market, strategy_class(name), params or {})
    t0 = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - t0


def _median(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    market = MarketData.from_synthetic(synthetic_market(seed=0))
    # Warm up imports and compiled kernels once.
    run_fast(market.truncate("2019-03-29"), "DynamicRiskBudget")
    noop = _median(lambda: _noop(market), args.repeat)
    print(f"embedded market: {len(market.prices)} bars x {len(market.assets)} assets (+ vol_index feed)")
    print(f"backtrader no-op loop: {noop:.3f} s (median of {args.repeat})\n")
    print(f"{'strategy':<34} {'seconds':>8} {'x no-op':>8} {'target':>8}")
    rows = []
    for name in STRATEGY_NAMES:
        sec = _median(lambda n=name: _strategy(market, n), args.repeat)
        target = 8.0 if name == "DynamicRiskBudget" else 2.0
        rows.append((name, sec))
        ok = "ok" if sec / noop <= target else "MISS"
        print(f"{name:<34} {sec:8.3f} {sec / noop:8.2f} {target:7.1f}x {ok}")
    for label, params in (("DynamicRiskBudget (ewma risk model)", {"risk_model": "ewma"}),):
        sec = _median(lambda p=params: _strategy(market, "DynamicRiskBudget", p), args.repeat)
        print(f"{label:<34} {sec:8.3f} {sec / noop:8.2f}")
    fast = _median(lambda: run_fast(market, "DynamicRiskBudget", record=False).info["seconds"], args.repeat)
    print(f"{'DynamicRiskBudget, fast path':<34} {fast:8.3f} {fast / noop:8.2f}")
    dyn = dict(rows)["DynamicRiskBudget"]
    t0 = time.perf_counter()
    run_comparison(market, workers=args.workers, progress=False, report=False)
    comp = time.perf_counter() - t0
    ok = "ok" if comp / dyn <= 3.0 else "MISS"
    print(f"\nfull comparison ({len(STRATEGY_NAMES)} strategies, {args.workers} workers, no report): "
          f"{comp:.2f} s = {comp / dyn:.2f}x one dynamic run (target 3x) {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
