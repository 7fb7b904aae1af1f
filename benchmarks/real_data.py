"""The comparison on real US data, calibration span and held-out span side by side (issue 13).

Run: ``python benchmarks/real_data.py [--data-dir ../shared/data/real] [--calibration-only]
[--set key=value ...]``. Data: SPY (equity), TLT (bond), DBC (commodity), VNQ (real estate) and the
VIX from ``prices_daily.csv.gz``, the eight leading indicators of issue 13 (PERMIT, UMCSENT, T10Y3M,
ICSA, HY_OAS, NFCI_ADJ, INDPRO, PAYEMS) from ``macro_monthly.csv``, 2007-02-01 to 2025-09-30; 5 bp
commission, caps 15% one-way / 8% per asset, every strategy's default parameters (``--set``
overrides the dynamic model's, e.g. ``--set regime_persistence=10``). It runs every strategy and
the dynamic model with its conditional triggers on (``conditional_triggers=True``; the default
model is periodic-only) on the fast path (the
same allocators and execution as backtrader; a test checks both give the same weights).

For each span, calibration (up to 2016-12-31: every default is chosen on it) and held out (2017
onwards: reported, never used to choose), it prints every strategy's annualized return, volatility,
Sharpe ratio (daily mean / daily sd x sqrt(252), no risk-free rate), maximum drawdown (within the
span), one-way turnover per year (the initial investment excluded), rebalances by trigger (a
rebalance fired by two triggers counts for both; ``skip`` = conditional rebalances skipped below
``min_trade``), regime label changes per year and failed / total EGARCH refits. The spans come
from one run over the whole data (printed last; nothing at a bar uses later data, so the
calibration figures are those of a run stopped at 2016-12-31). ``--calibration-only`` stops the
data at 2016-12-31. ``--eight`` runs the dynamic model on SPY; TLT, IEF, SHY; DBC, GLD; VNQ, IYR
(several assets per class) and prints, per asset, the median gap between its relative risk
contribution and its budget in force.

Skips with a message (exit 0) when the data files are absent.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ASSETS = {"SPY": "equity", "TLT": "bond", "DBC": "commodity", "VNQ": "real_estate"}
MACRO = {
    "PERMIT": "yoy",
    "UMCSENT": "level",
    "T10Y3M": "level",
    "ICSA": "-yoy",
    "HY_OAS": "-level",
    "NFCI_ADJ": "-level",
    "INDPRO": "yoy",
    "PAYEMS": "yoy",
}
EIGHT = {
    "SPY": "equity",
    "TLT": "bond",
    "IEF": "bond",
    "SHY": "bond",
    "DBC": "commodity",
    "GLD": "commodity",
    "VNQ": "real_estate",
    "IYR": "real_estate",
}
START, END, SPLIT = "2007-02-01", "2025-09-30", "2016-12-31"
BROKER = {"commission": 0.0005}
WITH_TRIGGERS = "DynamicRiskBudget (conditional triggers on)"
TRIGGERS = ("periodic", "regime", "eigenvalue", "rc_deviation")


def load(data_dir: Path, end: str, assets: dict[str, str] | None = None):
    """The aligned market (prices, VIX, macro) from the real-data folder, or None if absent."""
    from feeds.market import align_market

    prices, macro = data_dir / "prices_daily.csv.gz", data_dir / "macro_monthly.csv"
    if not prices.exists() or not macro.exists():
        return None
    assets = assets or ASSETS
    p = pd.read_csv(prices, parse_dates=["date"], index_col="date").loc[START:end]
    m = pd.read_csv(macro, parse_dates=["date"], index_col="date")
    return align_market(
        p[list(assets)], vol_index=p["VIX"], macro=m[list(MACRO)], asset_classes=dict(assets)
    )


def dynamic_params(overrides: dict) -> dict:
    """The dynamic model's parameters: the macro transforms when the strategy takes them."""
    from strategies.bt.strategies import DynamicRiskBudget

    params = {}
    if "macro_transforms" in DynamicRiskBudget.params._getkeys():
        params["macro_transforms"] = dict(MACRO)
    params.update(overrides)
    return params


def span_stats(res, lo: str | None, hi: str | None) -> dict:
    """Performance, turnover, triggers, regime changes and refits of one result within a span."""
    r = res.returns.loc[lo:hi]
    years = len(r) / 252.0
    out: dict = {"ret": np.nan, "vol": np.nan, "sharpe": np.nan, "mdd": np.nan, "turn": np.nan}
    if len(r) > 20:
        growth = (1.0 + r).cumprod()
        out["ret"] = growth.iloc[-1] ** (1.0 / years) - 1.0
        out["vol"] = r.std() * np.sqrt(252)
        out["sharpe"] = r.mean() / r.std() * np.sqrt(252)
        out["mdd"] = float((growth / growth.cummax().clip(lower=1.0) - 1.0).min())
    reb = res.rebalances
    if len(reb):
        reb = reb[(reb["trigger"] != "initial")].set_index("date").loc[lo:hi]
        out["turn"] = reb["turnover"].sum() / years if years > 0 else np.nan
        for t in TRIGGERS:
            out[t] = int(reb["trigger"].str.split("+").apply(lambda parts, t=t: t in parts).sum())
        out["n"] = len(reb)
    skipped = [s for s in res.info.get("skipped", []) if _in(s["date"], lo, hi)]
    out["skip"] = len(skipped)
    if len(res.budgets) and "regime" in res.budgets:
        reg = res.budgets["regime"].loc[lo:hi].dropna()
        out["regime_changes"] = float((reg != reg.shift()).iloc[1:].sum() / years) if years else np.nan
    fits = res.info.get("risk_model_fits_by_year")
    if fits is not None:
        sel = [v for y, v in fits.items() if _in(f"{y}-06-30", lo, hi)]
        out["fits"] = f"{sum(v[1] for v in sel)}/{sum(v[0] for v in sel)}"
    return out


def _in(day: str, lo: str | None, hi: str | None) -> bool:
    d = pd.Timestamp(day)
    return (lo is None or d >= pd.Timestamp(lo)) and (hi is None or d <= pd.Timestamp(hi))


def run_all(market, overrides: dict, names: list[str] | None = None) -> dict:
    """Fast-path results of every strategy and of the dynamic model with its conditional triggers
    on (the default model is periodic-only: the triggers did not earn their place, README)."""
    from runners.engine.fastpath import run_fast
    from strategies.bt.strategies import STRATEGIES

    results = {}
    for name in names or [*STRATEGIES, WITH_TRIGGERS]:
        t0 = time.perf_counter()
        if name == WITH_TRIGGERS:
            params = dynamic_params({"conditional_triggers": True, **overrides})
            res = run_fast(market, "DynamicRiskBudget", params, BROKER)
        elif name == "DynamicRiskBudget":
            res = run_fast(market, name, dynamic_params(overrides), BROKER)
        else:
            res = run_fast(market, name, {}, BROKER)
        results[name] = res
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return results


def table(results: dict, lo: str | None, hi: str | None) -> str:
    """Markdown table of :func:`span_stats` for every result."""
    head = "| strategy | return | vol | Sharpe | max DD | turnover/yr | rebalances (per., regime, eigen, rc, skip) | regime changes/yr | failed fits |"
    lines = [head, "|" + "---|" * 9]
    for name, res in results.items():
        s = span_stats(res, lo, hi)
        trig = "{} ({}, {}, {}, {}, {})".format(
            s.get("n", 0), *(s.get(t, 0) for t in TRIGGERS), s.get("skip", 0)
        )
        rc = s.get("regime_changes")
        lines.append(
            f"| {name} | {s['ret']:.1%} | {s['vol']:.1%} | {s['sharpe']:.3f} | {s['mdd']:.1%} | "
            f"{s['turn']:.0%} | {trig} | {'' if rc is None else f'{rc:.1f}'} | {s.get('fits', '')} |"
        )
    return "\n".join(lines)


def trigger_rule(default, with_triggers) -> str:
    """DESIGN section 3: the conditional triggers stay on by default only if, on the calibration
    span, their Sharpe is at least the periodic-only model's at no more than 1.3x its turnover."""
    a, b = span_stats(with_triggers, None, SPLIT), span_stats(default, None, SPLIT)
    ratio = a["turn"] / b["turn"]
    ok = a["sharpe"] >= b["sharpe"] and ratio <= 1.3
    return (f"\nconditional triggers on the calibration span: Sharpe {a['sharpe']:.3f} vs periodic-only "
            f"{b['sharpe']:.3f}, turnover {ratio:.2f}x: {'earn' if ok else 'do not earn'} their place")


def tracking(res) -> pd.DataFrame:
    """Per asset: median over days of |relative risk contribution - budget in force| (points), and
    the share of days the largest gap exceeds 20 points."""
    rc = res.risk_contributions
    budget = res.budgets[[f"smoothed_{a}" for a in rc.columns]]
    budget.columns = rc.columns
    gap = (rc - budget.reindex(rc.index)).abs().dropna() * 100.0
    out = pd.DataFrame({"median_gap_points": gap.median(), "p90_gap_points": gap.quantile(0.9)})
    out.attrs["days_over_20"] = float((gap.max(axis=1) > 20.0).mean())
    return out


def run_eight(data_dir: Path, overrides: dict) -> int:
    """The dynamic model on eight assets (several per class): risk contributions against budget."""
    from runners.engine.fastpath import run_fast

    market = load(data_dir, END, EIGHT)
    if market is None:
        print(f"real data not found in {data_dir}: skipped")
        return 0
    res = run_fast(market, "DynamicRiskBudget", dynamic_params(overrides), BROKER)
    print(f"eight assets {EIGHT}; overrides {overrides or 'none'}")
    print(table({"DynamicRiskBudget": res}, None, SPLIT))
    print(table({"DynamicRiskBudget": res}, "2017-01-01", None))
    tr = tracking(res)
    print("\n|RC - budget| per asset (points), whole run:\n")
    print(tr.round(2).to_string())
    print(f"days with some asset more than 20 points off: {tr.attrs['days_over_20']:.1%}")
    return 0


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--data-dir", type=Path, default=here.parent / "shared" / "data" / "real")
    ap.add_argument("--calibration-only", action="store_true", help="stop the data at 2016-12-31")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dynamic model parameter")
    ap.add_argument("--strategies", nargs="*", help="subset of strategies (names as in the table)")
    ap.add_argument("--eight", action="store_true", help="the dynamic model on the 8-asset universe")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, val = item.partition("=")
        overrides[key.strip()] = _value(val.strip())
    warnings.simplefilter("ignore")
    if args.eight:
        return run_eight(args.data_dir, overrides)
    market = load(args.data_dir, SPLIT if args.calibration_only else END)
    if market is None:
        print(f"real data not found in {args.data_dir}: skipped (see /work/shared/data/real/README.md)")
        return 0
    print(f"assets {ASSETS}, VIX, macro {list(MACRO)}; {market.prices.index[0].date()} .. "
          f"{market.prices.index[-1].date()}, 5 bp, caps 15%/8%; overrides {overrides or 'none'}")
    results = run_all(market, overrides, args.strategies)
    print(f"\nCalibration span (to {SPLIT}):\n")
    print(table(results, None, SPLIT))
    if {"DynamicRiskBudget", WITH_TRIGGERS} <= set(results):
        print(trigger_rule(results["DynamicRiskBudget"], results[WITH_TRIGGERS]))
    if not args.calibration_only:
        print("\nHeld out (2017-01-01 on):\n")
        print(table(results, "2017-01-01", None))
        print("\nWhole run:\n")
        print(table(results, None, None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
