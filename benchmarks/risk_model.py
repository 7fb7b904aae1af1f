"""Benchmark: full daily EGARCH-DCC risk model vs backtrader's own no-op loop over the same feeds.

Run: ``python benchmarks/risk_model.py`` (writes ``benchmarks/results_risk_model.md``).
Measures, on ``feeds.synthetic_market(seed=0)`` 2018-01-02..2025-06-30: the no-op cerebro loop over
the n feeds; the online ``RiskModel`` fed bar by bar (monthly refits, ``refit_every=21``), split into
refit time and filter time; and the 20-asset case (20 feeds built from the 4 asset classes plus noise).
Target: 4-asset ratio <= 6.
"""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

import feeds
from indicators.risk_model import RiskModel


def _noop_loop(prices: pd.DataFrame) -> float:
    class Noop(bt.Strategy):
        def next(self):
            pass

    cer = bt.Cerebro(stdstats=False)
    for c in prices.columns:
        df = pd.DataFrame({k: prices[c] for k in ("open", "high", "low", "close")})
        df["volume"] = 0.0
        cer.adddata(bt.feeds.PandasData(dataname=df), name=c)
    cer.addstrategy(Noop)
    t0 = time.perf_counter()
    cer.run(runonce=False)
    return time.perf_counter() - t0


def _risk_model(returns: np.ndarray) -> dict:
    gc.collect()  # not the no-op loops' garbage (backtrader's object cycles) in the timing
    m = RiskModel(returns.shape[1], refit_every=21)
    refit_t = filt_t = 0.0
    t_all = time.perf_counter()
    for t in range(returns.shape[0]):
        n0 = m.n_refits
        t0 = time.perf_counter()
        m.update(returns[t])
        dt = time.perf_counter() - t0
        if m.n_refits > n0:
            refit_t += dt
        else:
            filt_t += dt
    total = time.perf_counter() - t_all
    return {"total": total, "refit": refit_t, "filter": filt_t, "n_refits": m.n_refits, "failed": m.n_failed_fits}


def main() -> None:
    from threadpoolctl import threadpool_limits

    # One BLAS thread, as every backtest here runs (multi-threaded BLAS makes the many tiny
    # optimizer calls of the refits about 3x slower on a busy 2-core machine).
    threadpool_limits(limits=1, user_api="blas")
    warnings.simplefilter("ignore")
    mk = feeds.synthetic_market(seed=0, start="2018-01-02", end="2025-06-30")
    p4 = mk.prices
    rng = np.random.default_rng(0)
    r4 = p4.pct_change().iloc[1:].to_numpy()
    cols = {}
    for i in range(20):
        base = r4[:, i % 4]
        cols[f"a{i}"] = base * rng.uniform(0.6, 1.2) + 0.004 * rng.standard_normal(len(base))
    r20 = pd.DataFrame(cols).to_numpy()
    p20 = pd.DataFrame(100 * np.cumprod(1 + np.vstack([np.zeros(20), r20]), axis=0), index=p4.index, columns=list(cols))
    RiskModel(4).update(r4[0])  # import/compile warm-up outside the timing
    _risk_model(r4[:300])
    rows = []
    for name, prices, rets in (("4 assets", p4, r4), ("20 assets", p20, r20)):
        noop = min(_noop_loop(prices) for _ in range(2))
        rm = _risk_model(rets)
        rows.append((name, len(prices), noop, rm))
    lines = [
        "# Risk model benchmark (EGARCH(1,1)-t + DCC(1,1), monthly refits, bar by bar)",
        "",
        f"Synthetic market seed 0, {p4.index[0].date()}..{p4.index[-1].date()}; window 750, min 250, refit every 21 bars.",
        "One BLAS thread (threadpoolctl). Machine shared by several developers (2 cores): ratios, not absolute times, are the result.",
        "",
        "| case | bars | no-op backtrader loop (s) | risk model total (s) | refits (s) | filter (s) | refits | failed fits | ratio (target <= 6 for 4 assets) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, nbars, noop, rm in rows:
        lines.append(
            f"| {name} | {nbars} | {noop:.3f} | {rm['total']:.3f} | {rm['refit']:.3f} | {rm['filter']:.3f} | {rm['n_refits']} | {rm['failed']} | {rm['total'] / noop:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    Path(__file__).with_name("results_risk_model.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
