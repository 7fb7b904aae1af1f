"""Accuracy of the risk model and the regime classifiers against known truth (not a speed benchmark).

Run: ``python benchmarks/accuracy.py [--seeds 5] [--out benchmarks/results_accuracy.md]``.

* Confusion matrices of the classified cycle phase (composite leading indicator, publication lag 1,
  k = 3) and volatility state (terciles of the trailing 3 years of the implied-vol index) against the
  true daily labels of the embedded market ``feeds.synthetic_market``, pooled over seeds; the same
  for the documented stand-ins (price-proxy phase without macro data, EGARCH equity volatility
  without the index).
* EGARCH(1,1)-t at monthly refit dates: our fast engine against a direct ``arch`` fit of the same
  window (cold, ``tol=1e-12``) and against ``arch`` started from our optimum.
* DCC(1,1): parameters recovered from simulated data with known (a, b), T = 3000.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feeds  # noqa: E402
from indicators.dcc import fit_dcc, simulate_dcc  # noqa: E402
from indicators.egarch import _prepare, _sane, egarch_fit, rolling_egarch_volatility  # noqa: E402
from indicators.regimes import (  # noqa: E402
    PHASES,
    VOL_STATES,
    classify_volatility_state,
    daily_cycle_phase,
)


def confusion(true: pd.Series, pred: pd.Series, labels: tuple[str, ...]) -> pd.DataFrame:
    """Rows: true label; columns: classified label; counts of days where both are known."""
    ok = pred.notna() & true.notna()
    tab = pd.crosstab(true[ok], pred[ok]).reindex(index=list(labels), columns=list(labels))
    return tab.fillna(0).astype(int)


def md_confusion(tab: pd.DataFrame, title: str) -> list[str]:
    total = int(tab.to_numpy().sum())
    acc = float(np.trace(tab.to_numpy())) / total if total else float("nan")
    rows = [f"**{title}** (rows: true, columns: classified; {total} days; accuracy {acc:.1%}; "
            f"chance {1 / len(tab):.0%})", "",
            "| true \\ classified | " + " | ".join(tab.columns) + " | recall |",
            "| --- | " + " | ".join("---:" for _ in tab.columns) + " | ---: |"]
    for lab, row in tab.iterrows():
        n = int(row.sum())
        rec = row[lab] / n if n else float("nan")
        rows.append(f"| {lab} | " + " | ".join(str(int(v)) for v in row) + f" | {rec:.1%} |")
    return rows + [""]


def regimes_section(seeds: int) -> list[str]:
    tabs = {k: [] for k in ("phase_macro", "phase_proxy", "vol_index", "vol_egarch")}
    for seed in range(seeds):
        mk = feeds.synthetic_market(seed=seed)
        days = mk.prices.index
        ph = daily_cycle_phase(days, macro=mk.macro, k=3, publication_lag=1)["phase"]
        tabs["phase_macro"].append(confusion(mk.phase, ph, PHASES))
        pp = daily_cycle_phase(days, equity_prices=mk.prices["equity"], k=3)["phase"]
        tabs["phase_proxy"].append(confusion(mk.phase, pp, PHASES))
        vs = classify_volatility_state(mk.vol_index, lookback=756)
        tabs["vol_index"].append(confusion(mk.vol_state, vs, VOL_STATES))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = rolling_egarch_volatility(mk.prices["equity"].pct_change())
        tabs["vol_egarch"].append(confusion(mk.vol_state, classify_volatility_state(ev, 756), VOL_STATES))
    out = [f"## Regime classifiers vs the true labels ({seeds} seeds of the embedded market, pooled)", ""]
    titles = {
        "phase_macro": "Cycle phase from the macro CLI (publication lag 1 month, k = 3)",
        "phase_proxy": "Cycle phase from the price proxy (no macro data)",
        "vol_index": "Volatility state from the implied-vol index (trailing 756-day terciles)",
        "vol_egarch": "Volatility state from the equity EGARCH volatility (no index)",
    }
    for key, title in titles.items():
        out += md_confusion(sum(tabs[key][1:], tabs[key][0]), title)
    return out


def _prepare_for_sane(win: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    y = 100 * win
    backcast, vb, _ = _prepare(y)
    return y, backcast, vb


def egarch_section() -> list[str]:
    from arch import arch_model

    mk = feeds.synthetic_market(seed=0)
    rets = mk.prices.pct_change().iloc[1:]
    cold, warm, self_diff, n_fail, engines, n_degenerate = [], [], [], 0, {}, 0
    n_fits, n_boundary = 0, 0
    for col in rets.columns:
        r = rets[col].to_numpy()
        prev = None
        for t in range(249, len(r), 21):
            win = r[max(0, t + 1 - 750): t + 1]
            f = egarch_fit(win, "t", prev)
            prev = f.params
            n_fits += 1
            if not f.converged:
                n_fail += 1
                continue
            if f.boundary:
                n_boundary += 1  # a constrained optimum (beta or invertibility bound): not arch's
                continue
            engines[f.engine] = engines.get(f.engine, 0) + 1
            if f.engine != "fast":
                continue  # fitted by arch itself (the retry): nothing to compare
            am = arch_model(100 * win, vol="EGARCH", p=1, o=1, q=1, dist="t", rescale=False)
            fc = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for start, sink in ((None, cold), (f.params, warm)):
                    ref = am.fit(disp="off", starting_values=start, tol=1e-12, show_warning=False,
                                 options={"maxiter": 2000})
                    v = ref.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
                    plausible = _sane(ref.params.to_numpy(), *_prepare_for_sane(win))
                    if ref.convergence_flag == 0 and v > 0 and not plausible:
                        n_degenerate += 1
                    if ref.convergence_flag == 0 and v > 0 and plausible:
                        fc[id(sink)] = math.sqrt(v) / 100
                        sink.append((abs(f.forecast_vol / fc[id(sink)] - 1),
                                     f.loglik - ref.loglikelihood))
            if len(fc) == 2:
                self_diff.append(abs(fc[id(cold)] / fc[id(warm)] - 1))
    c, w, a = np.array(cold), np.array(warm), np.array(self_diff)
    q = (0.5, 0.9, 0.99, 1.0)
    fmt = lambda a: " / ".join(f"{np.quantile(a, x):.1e}" for x in q)  # noqa: E731
    return [
        "## EGARCH(1,1)-t at the monthly refit dates (embedded market, seed 0, 4 assets)", "",
        f"{n_fits} fits (window 750, first at 250 returns, every 21 bars, warm-started): "
        f"{n_boundary} boundary fits (beta at 0.999 or refitted under the invertibility constraint: "
        "a constrained estimator, not compared with arch's unconstrained one), "
        f"{engines.get('fast', 0)} others by the fast engine (compared below), "
        f"{engines.get('arch', 0)} by the arch retry, {n_fail} kept their previous parameters (failed "
        f"or implausible fits, counted in `n_failed_fits`). {n_degenerate} arch reference fits "
        "ended on implausible parameters (beta at 1, exploding variance) and are left out.", "",
        "| reference | fits compared | rel. diff. of the one-step vol forecast: median / 90% / 99% / max "
        "| our log-lik minus arch's: min |",
        "| --- | ---: | --- | ---: |",
        f"| direct arch fit (cold, tol 1e-12) | {len(c)} | {fmt(c[:, 0])} | {c[:, 1].min():.1e} |",
        f"| arch started from our optimum (tol 1e-12) | {len(w)} | {fmt(w[:, 0])} | {w[:, 1].min():.1e} |",
        f"| arch itself: cold fit vs fit started from our optimum | {len(a)} | {fmt(a)} | |",
        "",
        "The EGARCH likelihood is not differentiable in `mu` wherever a return equals `mu` (the "
        "|e_{t-1}| term), so it has many local maxima a few 1e-4 log-likelihood units apart: arch's own "
        "cold and warm fits of the same window differ by as much as ours differ from either.",
        "",
    ]


def dcc_section(reps: int) -> list[str]:
    out = ["## DCC(1,1) parameter recovery (T = 3000, 4 assets, constant correlation 0.4 target)", "",
           f"{reps} simulated samples per pair.", "",
           "| true a | true b | mean a | sd a | mean b | sd b | converged |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for a, b in ((0.02, 0.97), (0.03, 0.95), (0.05, 0.90), (0.08, 0.85), (0.10, 0.80)):
        fits = [fit_dcc(simulate_dcc(a, b, 3000, 4, 1000 * rep + int(100 * b))) for rep in range(reps)]
        ea = np.array([f.a for f in fits])
        eb = np.array([f.b for f in fits])
        out.append(f"| {a} | {b} | {ea.mean():.4f} | {ea.std(ddof=1):.4f} | {eb.mean():.4f} | "
                   f"{eb.std(ddof=1):.4f} | {sum(f.converged for f in fits)}/{reps} |")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="market seeds for the confusion matrices")
    ap.add_argument("--dcc-reps", type=int, default=10, help="simulated samples per DCC pair")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results_accuracy.md"))
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    lines = ["# Accuracy of the risk model and the regime classifiers (`benchmarks/accuracy.py`)", ""]
    for part in (regimes_section(args.seeds), egarch_section(), dcc_section(args.dcc_reps)):
        lines += part
        print("\n".join(part), flush=True)
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
