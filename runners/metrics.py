"""Performance metrics of the side-by-side comparison (DESIGN section 5).

Pure pandas / numpy / empyrical: no backtrader, no plotting.

Conventions (every metric is a plain decimal, 0.05 = 5 %)
---------------------------------------------------------
Input returns are *daily simple returns after costs*, one column per strategy. A strategy's
leading / trailing NaN (before its first investment, after its end) are dropped per column, so
strategies with different start dates are each measured on their own span. NaN in the middle of a
column is treated as missing (dropped), never as a zero return.

Months are calendar months; a month's return compounds the daily returns the strategy has in it,
``prod(1 + r_d) - 1``. The first and last month of a run may be partial and are used as they are.

Ratios whose denominator is exactly zero follow one rule everywhere (Sharpe, Sortino, Calmar,
information ratio, monthly P/L ratio): ``+inf`` / ``-inf`` when the numerator is non-zero, NaN when
it is zero too. Example: constant positive daily returns give ``sharpe = sortino = calmar = inf``;
a strategy that beats the benchmark by the same amount every day has ``info_ratio = inf``.

=======================  =========================================================================
column                   definition
=======================  =========================================================================
ann_return               CAGR: ``prod(1+r) ** (P / n) - 1`` with ``n`` days, ``P`` periods per
                         year (``empyrical.annual_return``).
ann_vol                  ``std(r, ddof=1) * sqrt(P)`` (``empyrical.annual_volatility``); NaN with
                         fewer than 2 days.
sharpe                   ``mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(P)`` with the daily
                         risk-free rate ``rf_d = (1 + risk_free) ** (1/P) - 1``
                         (``empyrical.sharpe_ratio``, which wants the *daily* rate).
sortino                  ``mean(r - rf_d) * P / (sqrt(mean(min(r - rf_d, 0) ** 2)) * sqrt(P))``
                         (``empyrical.sortino_ratio`` with ``required_return = rf_d``; the
                         downside deviation averages over *all* days).
max_drawdown             ``min_t (V_t / max_{s<=t} V_s - 1)`` on the value path starting at 1
                         *before* the first return, so a loss on day one counts; <= 0
                         (``empyrical.max_drawdown``).
calmar                   ``ann_return / |max_drawdown|`` (``empyrical.calmar_ratio``); with no
                         drawdown, ``inf`` if ann_return > 0, NaN if it is 0.
info_ratio               Annualized information ratio against the ``benchmark`` strategy on the
                         days both have a return: ``mean(a) / std(a, ddof=1) * sqrt(P)`` with
                         active return ``a = r - r_bench`` (``empyrical.excess_sharpe * sqrt(P)``).
                         The benchmark's own row is NaN (0 / 0); all NaN without a benchmark.
monthly_win_rate         Share of months with a return > 0 (a flat month is not a win), in [0, 1].
monthly_pl_ratio         Mean return of winning months / |mean return of losing months| (a losing
                         month has a return < 0). No losing month: ``inf`` if some month won, NaN
                         if every month was flat. No winning month but some losing: 0.
turnover                 Annualized one-way turnover given by the caller (DESIGN section 3: one
                         rebalance's turnover is ``0.5 * sum |dw_i|``); NaN for a strategy the
                         caller gave none for.
extreme_month_return     Mean monthly return of the strategy over the *extreme months*: calendar
                         months in which the equity asset fell by more than 5 %
                         (:func:`extreme_months`); NaN if no extreme month falls in the
                         strategy's span or no mask is given. The paper's Figure 4.
worst_month              Lowest calendar-month return (negative in any run with a losing month).
cvar95                   Mean of the worst 5 % of daily returns (expected shortfall as a *return*,
                         so normally negative): the ``k = floor(0.05 * (n - 1)) + 1`` lowest days
                         (``empyrical.conditional_value_at_risk``, cutoff 0.05). With fewer than
                         21 days this is the single worst day.
=======================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import empyrical as ep
import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError

__all__ = [
    "METRIC_COLUMNS",
    "compute_metrics",
    "extreme_months",
    "monthly_returns",
    "annualized_turnover",
    "safe_ratio",
]

#: Column order of the metrics table (``metrics.csv``).
METRIC_COLUMNS: tuple[str, ...] = (
    "ann_return",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "info_ratio",
    "monthly_win_rate",
    "monthly_pl_ratio",
    "turnover",
    "extreme_month_return",
    "worst_month",
    "cvar95",
)


def safe_ratio(num: float, den: float) -> float:
    """Divide with the module's zero-denominator rule.

    Parameters
    ----------
    num, den : float
        Numerator and denominator.

    Returns
    -------
    float
        ``num / den``; if ``den == 0``: ``copysign(inf, num)`` for ``num != 0`` and NaN for
        ``num == 0``; NaN if either input is NaN.
    """
    num = float(num)
    den = float(den)
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    if den == 0.0:
        return float("nan") if num == 0.0 else float(np.copysign(np.inf, num))
    return num / den


def _as_datetime_index(index: pd.Index, what: str) -> pd.DatetimeIndex:
    if isinstance(index, pd.DatetimeIndex):
        out = index
    else:
        try:
            out = pd.DatetimeIndex(pd.to_datetime(index))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{what}: index is not made of dates ({exc})") from None
    if out.tz is not None:
        out = out.tz_localize(None)
    if out.hasnans:
        raise DataError(f"{what}: index has missing dates")
    if not out.is_unique:
        dup = out[out.duplicated()][0]
        raise DataError(f"{what}: duplicate date {dup.date()}")
    if not out.is_monotonic_increasing:
        raise DataError(f"{what}: dates are not sorted ascending")
    return out


def _validate_returns(returns: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(returns, pd.DataFrame):
        raise DataError(f"returns must be a DataFrame (one column per strategy), got {type(returns).__name__}")
    if returns.columns.has_duplicates:
        raise DataError(f"returns: duplicate strategy column {returns.columns[returns.columns.duplicated()][0]!r}")
    out = returns.copy()
    out.index = _as_datetime_index(out.index, "returns")
    try:
        out = out.astype(float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"returns: non-numeric values ({exc})") from None
    values = out.to_numpy()
    bad = np.isinf(values) | (values < -1.0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"returns: column {out.columns[c]!r} has an impossible daily return {values[r, c]!r} "
            f"on {out.index[r].date()} (must be finite and >= -1)"
        )
    return out


def monthly_returns(daily: pd.Series) -> pd.Series:
    """Compound daily simple returns into calendar-month returns.

    Parameters
    ----------
    daily : pandas.Series
        Daily simple returns (decimal), DatetimeIndex. NaN days are skipped.

    Returns
    -------
    pandas.Series
        One value per calendar month that has at least one non-NaN day, indexed by a monthly
        ``PeriodIndex``: ``prod(1 + r) - 1``.
    """
    r = daily.dropna()
    if r.empty:
        return pd.Series(dtype=float, index=pd.PeriodIndex([], freq="M"), name=daily.name)
    idx = pd.DatetimeIndex(r.index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    periods = idx.to_period("M")
    with np.errstate(divide="ignore"):
        out = np.log1p(r.to_numpy(dtype=float))
    grouped = pd.Series(out, index=periods).groupby(level=0).sum()
    res = np.expm1(grouped)
    # log1p(-1) = -inf -> expm1 = -1: a total loss stays a total loss
    res.name = daily.name
    return res


def extreme_months(equity_prices: pd.Series, threshold: float = -0.05) -> pd.Series:
    """Flag the months in which the equity asset fell by more than ``|threshold|``.

    Parameters
    ----------
    equity_prices : pandas.Series
        Daily closes (or total-return levels) of the equity asset, DatetimeIndex, > 0.
    threshold : float, default -0.05
        A month is extreme when its return is strictly below ``threshold``.

    Returns
    -------
    pandas.Series of bool
        Indexed by a monthly ``PeriodIndex``, name ``"extreme"``. A month's return is the last
        close of the month over the last close of the previous month, minus one; the first month
        is measured from the first available close.
    """
    if not isinstance(equity_prices, pd.Series):
        raise DataError(f"equity_prices must be a Series, got {type(equity_prices).__name__}")
    if not np.isfinite(threshold) or threshold >= 0:
        raise ConfigError(f"extreme_months: threshold must be a negative return, got {threshold!r}")
    px = equity_prices.dropna().astype(float)
    px.index = _as_datetime_index(px.index, "equity_prices")
    if (px <= 0).any():
        bad = px[px <= 0].index[0]
        raise DataError(f"equity_prices: non-positive price on {bad.date()}")
    if len(px) < 2:
        raise DataError("equity_prices: need at least two prices")
    monthly = monthly_returns(px.pct_change().iloc[1:])
    out = monthly < threshold
    out.name = "extreme"
    return out


def _mask_to_periods(mask: pd.Series) -> pd.Series:
    if not isinstance(mask, pd.Series):
        raise DataError(f"extreme_mask must be a boolean Series, got {type(mask).__name__}")
    if isinstance(mask.index, pd.PeriodIndex):
        idx = mask.index.asfreq("M")
    else:
        idx = _as_datetime_index(mask.index, "extreme_mask").to_period("M")
    if mask.isna().any():
        raise DataError("extreme_mask has missing values; use True/False for every month")
    if mask.dtype != bool:
        uniq = set(pd.unique(mask))
        if not uniq <= {True, False}:  # 0 == False and 1 == True in a set
            raise DataError(f"extreme_mask must hold booleans, found {sorted(map(str, uniq))[:3]}")
    out = pd.Series(mask.to_numpy().astype(bool), index=idx)
    if not out.index.is_unique:
        raise DataError(f"extreme_mask: month {out.index[out.index.duplicated()][0]} appears twice")
    return out


def annualized_turnover(
    rebalances: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    include_initial: bool = False,
    periods_per_year: int = 252,
) -> pd.Series:
    """Annualized one-way turnover per strategy from a ``rebalances.csv`` table.

    Parameters
    ----------
    rebalances : pandas.DataFrame
        Columns ``strategy``, ``trigger``, ``turnover`` (one row per executed rebalance).
    returns : pandas.DataFrame
        Daily returns (date index, one column per strategy): the span of each strategy in years
        is its number of non-NaN days / ``periods_per_year``.
    include_initial : bool, default False
        Count the first investment out of cash (trigger ``initial``). It is excluded by default:
        it is not a rebalance of an existing portfolio.
    periods_per_year : int, default 252

    Returns
    -------
    pandas.Series
        ``sum(turnover) / years`` per strategy column of ``returns`` (0.0 for a strategy that
        never rebalanced, NaN for one with no return days).
    """
    missing = {"strategy", "trigger", "turnover"} - set(rebalances.columns)
    if missing:
        raise DataError(f"rebalances: missing column(s) {sorted(missing)}")
    reb = rebalances
    if not include_initial:
        reb = reb[reb["trigger"].astype(str) != "initial"]
    sums = reb.groupby("strategy")["turnover"].sum()
    out = {}
    for name in returns.columns:
        n = int(returns[name].notna().sum())
        years = n / periods_per_year
        out[name] = float(sums.get(name, 0.0)) / years if n > 0 else float("nan")
    return pd.Series(out, name="turnover", dtype=float)


def _one_strategy(
    r: pd.Series,
    *,
    bench: pd.Series | None,
    mask: pd.Series | None,
    turnover: float,
    rf_daily: float,
    ppy: int,
) -> dict[str, float]:
    nan = float("nan")
    r = r.dropna()
    if r.empty:
        return {c: (turnover if c == "turnover" else nan) for c in METRIC_COLUMNS}
    arr = r.to_numpy(dtype=float)
    out = _return_risk_ratios(arr, rf_daily, ppy)
    out["info_ratio"] = nan if bench is None else _information_ratio(r, bench, ppy)
    out.update(_monthly_statistics(r, mask))
    out["turnover"] = turnover
    out["cvar95"] = float(ep.conditional_value_at_risk(arr, cutoff=0.05))
    return {c: out[c] for c in METRIC_COLUMNS}


def _return_risk_ratios(arr: np.ndarray, rf_daily: float, ppy: int) -> dict[str, float]:
    """Annualized return and volatility, Sharpe, Sortino, max drawdown and Calmar of daily returns."""
    nan = float("nan")
    n = len(arr)
    ann_return = float(ep.annual_return(arr, annualization=ppy))
    if n < 2:
        ann_vol = nan
    elif np.ptp(arr) == 0:
        ann_vol = 0.0  # nanstd of identical values can leave a 1e-17 residue
    else:
        ann_vol = float(ep.annual_volatility(arr, annualization=ppy))
    if n >= 2:
        sharpe = float(ep.sharpe_ratio(arr, risk_free=rf_daily, annualization=ppy))
        sortino = float(ep.sortino_ratio(arr, required_return=rf_daily, annualization=ppy))
    else:
        sharpe = sortino = nan
    max_dd = float(ep.max_drawdown(arr))
    if max_dd < 0:
        calmar = float(ep.calmar_ratio(arr, annualization=ppy))
    else:
        calmar = safe_ratio(ann_return, 0.0)
    return {
        "ann_return": ann_return,
        "ann_vol": ann_vol,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "calmar": calmar,
    }


def _information_ratio(r: pd.Series, bench: pd.Series, ppy: int) -> float:
    """Annualized information ratio against the benchmark on their common days (NaN under 2)."""
    both = pd.concat([r, bench.dropna()], axis=1, join="inner").dropna()
    if len(both) < 2:
        return float("nan")
    a = both.iloc[:, 0].to_numpy()
    b = both.iloc[:, 1].to_numpy()
    active = a - b
    # a constant active return has no tracking error; the subtraction leaves rounding
    # noise (0.011 - 0.01 != 0.001), which would give 1e16 instead of inf
    scale = float(np.max(np.abs(both.to_numpy())))
    if np.ptp(active) <= 1e-12 * max(scale, 1e-300):
        return safe_ratio(float(np.mean(active)), 0.0)
    return float(ep.excess_sharpe(a, b)) * float(np.sqrt(ppy))


def _monthly_statistics(r: pd.Series, mask: pd.Series | None) -> dict[str, float]:
    """Monthly win rate, profit/loss ratio, worst month and mean return of the flagged months."""
    nan = float("nan")
    monthly = monthly_returns(r)
    wins = monthly[monthly > 0]
    losses = monthly[monthly < 0]
    if len(losses) == 0:
        pl_ratio = float("inf") if len(wins) else nan
    elif len(wins) == 0:
        pl_ratio = 0.0
    else:
        pl_ratio = float(wins.mean() / abs(losses.mean()))
    extreme = nan
    if mask is not None:
        flagged = mask.reindex(monthly.index, fill_value=False)
        if flagged.any():
            extreme = float(monthly[flagged.to_numpy()].mean())
    return {
        "monthly_win_rate": float(len(wins) / len(monthly)),
        "monthly_pl_ratio": pl_ratio,
        "extreme_month_return": extreme,
        "worst_month": float(monthly.min()),
    }


def compute_metrics(
    returns: pd.DataFrame,
    turnover: Mapping[str, float] | pd.Series | None = None,
    benchmark: str | None = None,
    extreme_mask: pd.Series | None = None,
    risk_free: float = 0.0,
    periods_per_year: int = 252,
) -> pd.DataFrame:
    """The comparison table: one row per strategy, the columns of :data:`METRIC_COLUMNS`.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (n_days, n_strategies)
        Daily simple returns after costs (decimal), DatetimeIndex (or ISO date strings), one
        column per strategy. Leading/trailing NaN mark days before/after a strategy's life.
    turnover : mapping or pandas.Series, optional
        Annualized one-way turnover per strategy (decimal per year, e.g. 0.85 = 85 %/yr), as
        computed by the caller (see :func:`annualized_turnover`). Strategies not in it get NaN.
    benchmark : str, optional
        Strategy (column of ``returns``) the information ratio is measured against.
    extreme_mask : pandas.Series of bool, optional
        Monthly flags of extreme months (``PeriodIndex`` of months, or any date inside the
        month), e.g. from :func:`extreme_months`.
    risk_free : float, default 0.0
        Annual risk-free rate (decimal), converted to a daily rate geometrically.
    periods_per_year : int, default 252
        Trading days per year used to annualize.

    Returns
    -------
    pandas.DataFrame, shape (n_strategies, 13)
        Index named ``strategy`` (the columns of ``returns``, same order); columns
        :data:`METRIC_COLUMNS`. See the module docstring for every definition.

    Raises
    ------
    DataError
        Malformed returns (non-dates, duplicates, unsorted, non-numeric, inf, below -100 %) or
        mask.
    ConfigError
        Unknown benchmark, bad risk-free rate or periods per year.
    """
    rets = _validate_returns(returns)
    if not isinstance(periods_per_year, int | np.integer) or periods_per_year <= 0:
        raise ConfigError(f"periods_per_year must be a positive integer, got {periods_per_year!r}")
    if not np.isfinite(risk_free) or risk_free <= -1:
        raise ConfigError(f"risk_free must be an annual rate > -1, got {risk_free!r}")
    if benchmark is not None and benchmark not in rets.columns:
        raise ConfigError(
            f"benchmark {benchmark!r} is not a strategy of the returns (have: {', '.join(map(str, rets.columns))})"
        )
    mask = _mask_to_periods(extreme_mask) if extreme_mask is not None else None
    if turnover is None:
        to = pd.Series(dtype=float)
    else:
        to = pd.Series(dict(turnover) if not isinstance(turnover, pd.Series) else turnover, dtype=float)
    rf_daily = (1.0 + float(risk_free)) ** (1.0 / periods_per_year) - 1.0
    bench = rets[benchmark] if benchmark is not None else None

    rows = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in rets.columns:
            rows[name] = _one_strategy(
                rets[name],
                bench=bench,
                mask=mask,
                turnover=float(to.get(name, np.nan)),
                rf_daily=rf_daily,
                ppy=int(periods_per_year),
            )
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS), dtype=float)
    table.index.name = "strategy"
    return table
