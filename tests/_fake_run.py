"""Write a realistic fake run directory, following docs/outputs.md, for the report tests.

The fake is simulated, not invented cell by cell, so the files agree with each other the way a real
run's do: prices follow a random walk with an equity crash month; each strategy trades through a
tiny broker (fills at the close, 5 bp commission, 0.2 % cash buffer); weights, positions,
transactions, returns, values and rebalances all come from the same holdings; the dynamic model's
budgets follow a regime sequence with smoothing at its rebalances; the transition matrix is counted
from that sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from runners import rundir
from runners.metrics import annualized_turnover, compute_metrics, extreme_months
from runners.report.tables import metrics_markdown

ASSETS: tuple[str, ...] = ("equity", "bond", "commodity", "real_estate")
PHASES = ("recovery", "expansion", "deceleration", "recession")
VOL_STATES = ("low", "medium", "high")
REGIMES = tuple(f"{p}/{v}" for p in PHASES for v in VOL_STATES)
DRB = "DynamicRiskBudget"

_VOLS = np.array([0.18, 0.05, 0.20, 0.15])
_MUS = np.array([0.25, 0.04, 0.06, 0.08])

# target budgets per phase (equity, bond, commodity, real estate), shifted by the vol state
_PHASE_BUDGET = {
    "recovery": np.array([0.55, 0.15, 0.15, 0.15]),
    "expansion": np.array([0.45, 0.15, 0.25, 0.15]),
    "deceleration": np.array([0.30, 0.35, 0.20, 0.15]),
    "recession": np.array([0.20, 0.50, 0.15, 0.15]),
}
_VOL_SHIFT = {"low": 0.05, "medium": 0.0, "high": -0.05}


def _budget_row(regime: str) -> np.ndarray:
    phase, vol = regime.split("/")
    b = _PHASE_BUDGET[phase].copy()
    b[0] += _VOL_SHIFT[vol]
    b[1] -= _VOL_SHIFT[vol]
    return b / b.sum()


def _simulate_prices(dates: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    n = len(dates)
    rets = rng.normal(_MUS / 252, _VOLS / np.sqrt(252), size=(n, len(ASSETS)))
    months = dates.to_period("M")
    uniq = months.unique()
    # equity crashes in the 3rd and 9th month (more than -5 % each): extreme months
    for k in (2, 8):
        if k < len(uniq):
            sel = months == uniq[k]
            rets[sel, 0] -= 0.12 / sel.sum()
            rets[sel, 1] += 0.01 / sel.sum()
    prices = 100.0 * np.cumprod(1.0 + rets, axis=0)
    return pd.DataFrame(prices, index=dates, columns=list(ASSETS))


def _regime_sequence(dates: pd.DatetimeIndex, rng: np.random.Generator) -> list[str]:
    seq: list[str] = []
    regime = "recovery/low"
    while len(seq) < len(dates):
        length = int(rng.integers(25, 70))
        seq.extend([regime] * length)
        phase, vol = regime.split("/")
        if rng.random() < 0.6:
            phase = PHASES[(PHASES.index(phase) + 1) % 4]
        vol = VOL_STATES[int(rng.integers(0, 3))]
        regime = f"{phase}/{vol}"
    return seq[: len(dates)]


def write_fake_run(
    run_dir: str | Path,
    *,
    n_days: int = 300,
    strategies: tuple[str, ...] = (DRB, "EqualWeight", "RiskParity"),
    start: str = "2021-01-04",
    seed: int = 7,
    with_metrics: bool = True,
    late_start: dict[str, int] | None = None,
    decision_lag: int = 0,
) -> Path:
    """Write a complete fake run directory and return its path.

    Parameters
    ----------
    run_dir : str or Path
        Folder to create (may exist).
    n_days : int, default 300
        Business days of data.
    strategies : tuple of str
        Strategy names; the dynamic model (``DynamicRiskBudget``) must be among them.
    start : str
        First business day.
    seed : int
        Random seed (the output is a deterministic function of the arguments).
    with_metrics : bool, default True
        Also write ``metrics.csv`` / ``metrics.md`` (as ``drb compare`` does).
    late_start : dict, optional
        Strategy -> index of the first investment day; defaults to RiskParity starting on day 20
        (it needs a covariance window), so ``returns.csv`` has leading blanks for it.
    decision_lag : int, default 0
        Bars from a decision (the day ``budgets.csv`` changes) to its fill (the day in
        ``rebalances.csv`` and ``transactions/``): 0 fills at the decision bar's close, 1 is the
        packaged runner's cheat-on-open (fills at the next bar).
    """
    if DRB not in strategies:
        raise ValueError("the fake run needs the dynamic model")
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # a trading calendar with holidays, like real data (not a perfect business-day grid)
    holidays = USFederalHolidayCalendar().holidays(start, pd.Timestamp(start) + pd.Timedelta(days=3 * n_days))
    dates = pd.bdate_range(start, periods=n_days, freq="C", holidays=holidays)
    prices = _simulate_prices(dates, rng)
    asset_rets = prices.pct_change().fillna(0.0)
    late = {"RiskParity": 20} if late_start is None else late_start

    # --- regimes, budgets of the dynamic model (smoothing applied at its rebalances) ---------
    regime_seq = _regime_sequence(dates, rng)
    lam = np.clip(0.05 + 0.2 / (1.0 + np.exp(-rng.normal(0, 1.0, n_days))), 0.05, 0.35)
    targets = np.array([_budget_row(r) for r in regime_seq])
    tilt = rng.normal(0, 0.01, size=targets.shape)
    targets = np.maximum(targets + tilt, 0.02)
    targets /= targets.sum(axis=1, keepdims=True)

    month_start = np.r_[True, dates.month[1:] != dates.month[:-1]]
    regime_change = np.r_[False, np.array(regime_seq[1:]) != np.array(regime_seq[:-1])]
    eig_days = {int(n_days * 0.37), int(n_days * 0.71)}

    def triggers_for(name: str, t: int, first: int) -> str | None:
        if t == first:
            return "initial"
        fired = []
        if month_start[t]:
            fired.append("periodic")
        if name == DRB:
            if regime_change[t]:
                fired.append("regime")
            if t in eig_days:
                fired.append("eigenvalue")
        return "+".join(fired) or None

    smoothed = np.empty_like(targets)
    b = np.array([0.40, 0.30, 0.15, 0.15])
    for t in range(n_days):
        if t > 0 and triggers_for(DRB, t, 0):
            b = (1 - lam[t]) * b + lam[t] * targets[t]
        smoothed[t] = b

    def target_weights(name: str, t: int) -> np.ndarray:
        if name == DRB:
            w = smoothed[t] / _VOLS
        elif name == "RiskParity":
            w = 1.0 / _VOLS
        elif name == "FixedWeights":
            w = np.array([0.6, 0.4, 0.0, 0.0])
        else:
            w = np.ones(len(ASSETS))
        return w / w.sum()

    # --- broker simulation per strategy ---------------------------------------------------
    cash0, commission, buffer = 100_000.0, 0.0005, 0.998
    returns = pd.DataFrame(index=dates, columns=list(strategies), dtype=float)
    values = pd.DataFrame(index=dates, columns=list(strategies), dtype=float)
    rebal_rows: list[dict] = []
    for name in strategies:
        first = late.get(name, 0)
        units = np.zeros(len(ASSETS))
        cash = cash0
        w_rows, pos_rows, txn_rows = [], [], []
        prev_value = cash0
        for t in range(first, n_days):
            px = prices.iloc[t].to_numpy()
            value = float(units @ px + cash)
            decided = t - decision_lag  # the bar whose close the orders were decided at
            trig = triggers_for(name, decided, first) if decided >= first else None
            if trig:
                pre = units * px / value
                post = target_weights(name, decided) * buffer
                new_units = post * value / px
                amounts = new_units - units
                notional = np.abs(amounts) * px
                cost = float(commission * notional.sum())
                for a, amt, p in zip(ASSETS, amounts, px):
                    if abs(amt) > 1e-9:
                        txn_rows.append(
                            {"date": dates[t], "symbol": a, "amount": amt, "price": p,
                             "commission": commission * abs(amt) * p}
                        )
                cash -= float(amounts @ px) + cost
                units = new_units
                post_exec = units * px / float(units @ px + cash)
                rebal_rows.append(
                    {"date": dates[t], "strategy": name, "trigger": trig,
                     "turnover": 0.5 * float(np.abs(post_exec - pre).sum()),
                     "max_asset_change": float(np.abs(post_exec - pre).max()),
                     "cost": cost / value,  # as the runner writes it: a fraction of the value
                     **{f"pre_{a}": v for a, v in zip(ASSETS, pre)},
                     **{f"post_{a}": v for a, v in zip(ASSETS, post_exec)}}
                )
            value = float(units @ px + cash)
            returns.iloc[t, returns.columns.get_loc(name)] = value / prev_value - 1.0
            values.iloc[t, values.columns.get_loc(name)] = value
            prev_value = value
            w_rows.append(units * px / value)
            pos_rows.append(np.r_[units * px, cash])
        idx = dates[first:]
        weights = pd.DataFrame(w_rows, index=idx, columns=list(ASSETS))
        positions = pd.DataFrame(pos_rows, index=idx, columns=[*ASSETS, "cash"])
        # relative risk contributions under a trailing 60-day sample covariance
        rcs = []
        for t, w in zip(range(first, n_days), w_rows):
            window = asset_rets.iloc[max(1, t - 59): t + 1]
            cov = window.cov().to_numpy() if len(window) >= 20 else np.diag(_VOLS**2 / 252)
            sw = cov @ w
            var = float(w @ sw)
            rcs.append(w * sw / var if var > 0 else np.zeros_like(w))  # all cash: no risk
        rc = pd.DataFrame(rcs, index=idx, columns=list(ASSETS))
        txns = pd.DataFrame(txn_rows, columns=list(rundir.TRANSACTION_COLUMNS))
        rundir.write_strategy_frames(out, name, weights=weights, risk_contributions=rc, positions=positions,
                                     transactions=txns, exact=True)

    rundir.write_table_csv(out, rundir.RETURNS_CSV, returns, exact=True)
    rundir.write_table_csv(out, rundir.VALUES_CSV, values, exact=True)
    rebalances = pd.DataFrame(rebal_rows).sort_values(["date", "strategy"], kind="stable")
    rundir.write_table_csv(out, rundir.REBALANCES_CSV, rebalances, exact=True)

    phases = [r.split("/")[0] for r in regime_seq]
    vols = [r.split("/")[1] for r in regime_seq]
    budgets = pd.DataFrame(
        {"date": dates, "phase": phases, "vol_state": vols, "regime": regime_seq, "lambda": lam,
         **{f"target_{a}": targets[:, i] for i, a in enumerate(ASSETS)},
         **{f"smoothed_{a}": smoothed[:, i] for i, a in enumerate(ASSETS)}}
    )
    rundir.write_table_csv(out, rundir.BUDGETS_CSV, budgets.set_index("date"), exact=True)
    regimes = pd.DataFrame(
        {"date": dates, "phase": phases, "vol_state": vols, "regime": regime_seq,
         "cycle_source": "price_proxy", "vol_source": "egarch_equity"}
    )
    rundir.write_table_csv(out, rundir.REGIMES_CSV, regimes.set_index("date"), exact=True)

    counts = pd.DataFrame(0.0, index=list(REGIMES), columns=list(REGIMES))
    for a, b_ in zip(regime_seq[:-1], regime_seq[1:]):
        counts.loc[a, b_] += 1
    rows = counts.sum(axis=1)
    trans = counts.div(rows.where(rows > 0), axis=0).fillna(1.0 / len(REGIMES))
    trans.index.name = "from"
    rundir.write_table_csv(out, rundir.TRANSITION_CSV, trans, exact=True)

    # run.json in the shape runners.experiments.compare.write_outputs writes it
    run = {
        "created": "2024-01-01T00:00:00",
        "config": {"data": {"kind": "synthetic"}, "commission": commission, "turnover_cap": 0.15},
        "strategies": list(strategies),
        "benchmark": "EqualWeight" if "EqualWeight" in strategies else None,
        "parameters": {
            s: ({"risk_model": "egarch_dcc", "smoothing": "vix_sigmoid", "turnover_cap": 0.15,
                 "max_asset_change": 0.08, "cooldown": 5, "commission": commission}
                if s == DRB else {"commission": commission, "turnover_cap": 0.15})
            for s in strategies
        },
        "data": {
            "start": str(dates[0].date()),
            "end": str(dates[-1].date()),
            "bars": n_days,
            "assets": {a: a for a in ASSETS},
            "sources": {"prices": "synthetic (tests/_fake_run.py)", "vol_index": "none", "macro": "none"},
            "notes": ["no implied-volatility index: the equity asset's EGARCH volatility stands in",
                      "no macro leading indicators: price-based cycle proxy"],
            "signals": {"vol_index": False, "macro": False},
            "first_investment": str(dates[0].date()),
        },
        "fallbacks": {"cycle_source": ["price_proxy"], "vol_source": ["egarch_equity"]},
        "strategy_info": {
            s: ({"risk_model_refits": 12, "risk_model_failed_fits": 1, "solver_fallbacks": 0,
                 "solver_notes": [], "cycle_source": "price_proxy", "vol_source": "egarch_equity"}
                if s == DRB else {})
            for s in strategies
        },
        "order_issues": {s: 0 for s in strategies},
        "timings": {"backtest": 12.3},
        "versions": {"python": "3.11", "backtrader": "1.9.78.123", "dynamic-risk-budget": "0.1.0"},
        "seed": seed,
    }
    rundir.write_run_json(out, run)

    if with_metrics:
        mask = extreme_months(prices["equity"])
        turnover = annualized_turnover(rebalances, returns)
        metrics = compute_metrics(returns, turnover, benchmark="EqualWeight" if "EqualWeight" in strategies else None,
                                  extreme_mask=mask)
        rundir.write_metrics_csv(out, metrics, metrics_markdown(metrics), exact=True)
    return out
