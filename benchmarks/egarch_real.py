"""Benchmark: EGARCH refit outcomes of the default EGARCH-DCC risk model on real US data.

Run: ``python benchmarks/egarch_real.py`` (both runs) or ``--run us4`` / ``--run us8``.

Drives the risk model alone (:func:`indicators.risk_model.rolling_risk_model`, no backtrader) with
the defaults (window 750, first fit at 250 returns, refit every 21 bars, Student-t, fast engine)
over daily simple returns of ``../shared/data/real/prices_daily.csv.gz``, from the first day on
which every asset of the run has a price (2006-02-06, DBC's first day) to 2025-09-26: the
2007-02..2025-09 backtests of issue 13 with the risk model's 250-return warm-up before them.

* ``us4``: SPY, TLT, DBC, VNQ;
* ``us8``: SPY, TLT, IEF, SHY, DBC, GLD, VNQ, IYR.

Prints, per asset and in total, the EGARCH fits that converged, sat on the persistence bound
(``boundary``, beta = 0.999) or failed (``relaxed``: kept although the strict convergence test
failed, a subset of the first two), the failed DCC fits, and failed fits per model refit (the
ratio the issue's targets use: at most 2% on ``us4`` and 5% on ``us8``) beside the same counts
before this change. Skips with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from indicators.risk_model import rolling_risk_model  # noqa: E402

RUNS = {
    "us4": (["SPY", "TLT", "DBC", "VNQ"], 0.02),
    "us8": (["SPY", "TLT", "IEF", "SHY", "DBC", "GLD", "VNQ", "IYR"], 0.05),
}
END = "2025-09-30"

# Failed EGARCH fits per asset with the code before the boundary handling (commit 78141fb: beta
# bounded by 1 - 1e-9, no relaxed acceptance, failed fits warm-started from the kept parameters),
# counted by this script's procedure (224 refits per asset; EGARCH fits only: the 4-asset run had
# no failed DCC fit, the 8-asset run's DCC failures were not recorded). Every fit that did not fail
# counted as converged then; there was no boundary category. Issue 13 quotes 36 and 116 failed fits
# from its backtests of the same spans.
BEFORE_FAILED = {
    "us4": {"SPY": 0, "TLT": 23, "DBC": 13, "VNQ": 2},
    "us8": {"SPY": 0, "TLT": 23, "IEF": 23, "SHY": 25, "DBC": 13, "GLD": 16, "VNQ": 2, "IYR": 1},
}


def load_returns(data_dir: Path, assets: list[str]) -> pd.DataFrame:
    """Daily simple returns of ``assets`` on the days all of them trade, up to ``END``."""
    prices = pd.read_csv(data_dir / "prices_daily.csv.gz", index_col="date", parse_dates=True)
    p = prices[assets].dropna().loc[:END]
    return p.pct_change().iloc[1:]


def run(name: str, data_dir: Path) -> dict:
    assets, target = RUNS[name]
    rets = load_returns(data_dir, assets)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rolling_risk_model(rets)
    secs = time.perf_counter() - t0
    st = out["fit_stats"]
    refits = st["refits"]
    before = BEFORE_FAILED[name]
    print(f"\n## {name}: {', '.join(assets)}, {rets.index[0].date()}..{rets.index[-1].date()} "
          f"({len(rets)} returns, {refits} refits, {secs:.0f} s)\n")
    print("| asset | refits | converged | boundary | failed | relaxed | failed before |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for a in assets:
        c = st["per_asset"][a]
        print(f"| {a} | {refits} | {c['converged']} | {c['boundary']} | {c['failed']} | "
              f"{c['relaxed']} | {before[a]} |")
    nb = sum(before.values())
    print(f"| total | {refits * len(assets)} | {st['converged']} | {st['boundary']} | {st['failed']} | "
          f"{st['relaxed']} | {nb} |")
    failed = out["n_failed_fits"]  # EGARCH + DCC, what run.json reports
    ratio = failed / refits
    verdict = "met" if ratio <= target else "MISSED"
    print(f"\nfailed fits (EGARCH {st['failed']} + DCC {st['dcc_failed']}) per refit: "
          f"{failed}/{refits} = {ratio:.1%} (before {nb}/{refits} = {nb / refits:.1%}; "
          f"target <= {target:.0%}: {verdict}); per EGARCH fit {st['failed']}/{refits * len(assets)} "
          f"= {st['failed'] / (refits * len(assets)):.1%}; longest run of failed fits of one asset: "
          f"{st['longest_failed_run']}")
    vol = pd.DataFrame(out["vol"], index=rets.index, columns=assets)[out["ready"]]
    ewma = np.sqrt((rets**2).ewm(alpha=0.06, adjust=False).mean() * 252).loc[vol.index]
    ratio_ewma = (vol / ewma).to_numpy().ravel()
    q = np.quantile(ratio_ewma, [0.0, 0.001, 0.5, 0.999, 1.0])
    print(f"annualized vol forecasts: min {vol.min().min():.3f}, max {vol.max().max():.3f}, all "
          f"finite: {bool(np.isfinite(vol.to_numpy()).all())}; ratio to EWMA(0.94) vol: min / 0.1% / "
          f"median / 99.9% / max = {' / '.join(f'{v:.2f}' for v in q)}")
    return {"ratio": ratio, "target": target, "ewma_ratio": q}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", choices=[*RUNS, "all"], default="all")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "real")
    args = ap.parse_args()
    if not (args.data_dir / "prices_daily.csv.gz").exists():
        print(f"skipped: {args.data_dir / 'prices_daily.csv.gz'} is absent (real data is not shipped "
              "with the project; pass --data-dir)")
        return 0
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    for name in RUNS if args.run == "all" else [args.run]:
        run(name, args.data_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
