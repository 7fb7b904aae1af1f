"""Evidence: is one strategy better than another, and by how much beyond luck (issue 15).

Pure numpy / pandas / scipy / ``arch.bootstrap``: no backtrader, no plotting, no files.

Pairwise Sharpe test (``significance.csv``)
-------------------------------------------
For a primary strategy ``a`` and another ``b`` with daily simple returns on the days both have one
(``T`` days), ``sharpe_diff = SR(a) - SR(b)`` with the annualized Sharpe ratio of
``runners.metrics`` (``mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(P)``, ``rf_d`` the daily
risk-free rate, ``P = 252``). Its uncertainty comes from a **stationary block bootstrap** of the
*paired* days (Politis and Romano 1994): each replicate resamples whole days (both strategies'
returns of a day travel together, so their correlation is kept) in blocks of geometric length
with mean ``block``, wrapping around the end of the sample. ``block`` is the larger of the two
``stationary`` lengths that ``arch.bootstrap.optimal_block_length`` (Politis and White 2004, with
Patton et al. 2009's correction) gives for ``a`` and ``b``, rounded up and kept in ``[1, T/4]``.
In a run where every strategy has a return on the same days (the usual case),
:func:`pairwise_significance` draws the indices once for all pairs, with the largest of those
lengths over *all* strategies, so every pair is resampled on the same days.

The indices of all ``B`` replicates are drawn at once as a ``(B, T)`` integer array by
:func:`stationary_bootstrap_indices` (the same scheme as ``arch.bootstrap.StationaryBootstrap``,
which draws one replicate per Python iteration; vectorizing it is what keeps ``B = 2000``
replicates of every pair in well under a second) and every replicate's Sharpe difference is
computed with array operations.

* 95 % interval: the 2.5 % and 97.5 % percentiles of the ``B`` replicate differences ``d*_b``.
* Two-sided p-value of ``H0: SR(a) = SR(b)``: the bootstrap distribution is centred on the null
  by subtracting the estimate, ``d*_b - d``, which approximates the law of ``d - SR_diff_true``;
  the p-value is ``(1 + #{b : |d*_b - d| >= |d|}) / (1 + B)`` (Davison and Hinkley 1997, eq.
  4.11: never exactly 0, and exactly 1 when ``d = 0``, e.g. identical series).

Joint tests
-----------
Loss = **negative daily return** (``-r``, lower is better; a mean loss is minus the mean return,
so these compare average daily returns, not risk-adjusted ones).

* Hansen's SPA (``arch.bootstrap.SPA``, stationary bootstrap, studentized): benchmark = the
  primary strategy, alternatives = the others. ``H0``: no alternative has a lower expected loss
  than the benchmark (no baseline beats it). Reported: the lower / consistent / upper p-values.
* Model confidence set (``arch.bootstrap.MCS``, size 0.10, method ``"R"``): the set of strategies
  that contains the best one (lowest expected loss) with 90 % probability; every strategy's MCS
  p-value is reported (a strategy is in the set when its p-value exceeds 0.10).

Both use ``reps`` replicates, the same block length rule (largest ``stationary`` optimal length
over the strategies) and the run's seed.

Sweeps
------
:func:`deflated_sharpe_ratio` (Bailey and Lopez de Prado 2014) and :func:`pbo_cscv` (probability
of backtest overfitting by combinatorially symmetric cross-validation, Bailey, Borwein, Lopez de
Prado and Zhu 2017).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from drb.errors import ConfigError, DataError

__all__ = [
    "SIGNIFICANCE_COLUMNS",
    "SPANS",
    "annualized_sharpe",
    "choose_block_length",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "joint_tests",
    "pairwise_significance",
    "pbo_cscv",
    "sharpe_difference_test",
    "split_returns",
    "stationary_bootstrap_indices",
]

#: Columns of ``significance.csv`` (a ``span`` column is appended in a split run).
SIGNIFICANCE_COLUMNS: tuple[str, ...] = (
    "strategy",
    "versus",
    "sharpe_diff",
    "ci_low",
    "ci_high",
    "p_value",
    "method",
)
#: Span labels of a split run, in report order.
SPANS: tuple[str, ...] = ("in_sample", "holdout", "full")

DEFAULT_REPS = 2000
JOINT_REPS = 1000
MCS_SIZE = 0.10
LOSS = "negative daily return"


# ----------------------------------------------------------------------------- bootstrap core


def stationary_bootstrap_indices(n: int, reps: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary-bootstrap indices of ``reps`` replicates at once.

    Day 0 of each replicate is uniform on ``0..n-1``; every later day starts a new block with
    probability ``p = 1 / block`` (a uniform new index), else continues the previous index by one,
    wrapping from ``n - 1`` to 0 (the scheme of ``arch.bootstrap.StationaryBootstrap``).

    Parameters
    ----------
    n : int
        Length of the sample (days).
    reps : int
        Number of replicates ``B``.
    block : float
        Mean block length (days), >= 1.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int64, shape (reps, n)
    """
    if n < 1 or reps < 1:
        raise ConfigError(f"bootstrap: need n >= 1 and reps >= 1, got n={n}, reps={reps}")
    if not np.isfinite(block) or block < 1:
        raise ConfigError(f"bootstrap: block length must be >= 1, got {block!r}")
    new = rng.random((reps, n), dtype=np.float32) < 1.0 / float(block)
    new[:, 0] = True
    flat = new.ravel()
    first = np.flatnonzero(flat)  # flat position of every block's first day
    block_id = np.cumsum(flat) - 1  # block of every day (no block spans two replicates)
    start = rng.integers(0, n, size=len(first))  # a block's first index: uniform
    offset = np.arange(flat.size, dtype=np.int64) - first[block_id]
    return ((start[block_id] + offset) % n).reshape(reps, n)


def annualized_sharpe(x: np.ndarray, rf_daily: float = 0.0, ppy: int = 252) -> np.ndarray:
    """Annualized Sharpe ratio along the last axis (``runners.metrics``' definition).

    Parameters
    ----------
    x : numpy.ndarray, shape (..., T)
        Daily simple returns (decimal).
    rf_daily : float
        Daily risk-free rate.
    ppy : int
        Periods per year.

    Returns
    -------
    numpy.ndarray, shape (...)
        ``mean(x - rf) / std(x - rf, ddof=1) * sqrt(ppy)``; NaN where the deviation is zero.
    """
    e = np.asarray(x, dtype=float) - rf_daily
    mu = e.mean(axis=-1)
    sd = e.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, mu / np.where(sd > 0, sd, 1.0) * math.sqrt(ppy), np.nan)
    return out


def choose_block_length(data: np.ndarray) -> float:
    """Mean block length for the stationary bootstrap of the columns of ``data``.

    Parameters
    ----------
    data : numpy.ndarray, shape (T, k)
        Daily series (one per column).

    Returns
    -------
    float
        ``ceil(max_j optimal_block_length(data)[j, "stationary"])``, clipped to ``[1, T / 4]``;
        1 for a sample too short (< 10 days) or constant.
    """
    from arch.bootstrap import optimal_block_length

    x = np.asarray(data, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    keep = [j for j in range(x.shape[1]) if np.ptp(x[:, j]) > 0]
    if n < 10 or not keep:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obl = optimal_block_length(x[:, keep])
    b = float(np.nanmax(obl["stationary"].to_numpy()))
    if not np.isfinite(b):
        return 1.0
    return float(min(max(1.0, math.ceil(b)), max(1.0, n / 4)))


@dataclass(frozen=True)
class SharpeTest:
    """One paired Sharpe-difference test (see the module docstring)."""

    sharpe_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    block_length: float
    reps: int
    n_days: int


def sharpe_difference_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    reps: int = DEFAULT_REPS,
    block: float | None = None,
    seed: int | np.random.Generator = 0,
    risk_free: float = 0.0,
    ppy: int = 252,
    level: float = 0.95,
) -> SharpeTest:
    """Stationary block bootstrap test of ``SR(a) - SR(b)`` on paired daily returns.

    Parameters
    ----------
    a, b : numpy.ndarray, shape (T,)
        Daily simple returns of the two strategies on the same days (no NaN).
    reps : int
        Bootstrap replicates ``B``.
    block : float, optional
        Mean block length in days; default :func:`choose_block_length` of ``[a, b]``.
    seed : int or numpy.random.Generator
    risk_free : float
        Annual risk-free rate (decimal), made daily geometrically as in ``runners.metrics``.
    ppy : int
        Periods per year.
    level : float
        Confidence level of the percentile interval.

    Returns
    -------
    SharpeTest
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"sharpe test: need two 1-d series of equal length, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("sharpe test: returns must be finite (align the pair and drop missing days first)")
    n = len(a)
    if n < 3:
        raise DataError(f"sharpe test: need at least 3 paired days, got {n}")
    rf = (1.0 + float(risk_free)) ** (1.0 / ppy) - 1.0
    pair = np.stack([a, b])
    d = float(np.subtract(*annualized_sharpe(pair, rf, ppy)))
    blk = float(block) if block is not None else choose_block_length(pair.T)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    idx = stationary_bootstrap_indices(n, reps, blk, rng)
    star = annualized_sharpe(a[idx], rf, ppy) - annualized_sharpe(b[idx], rf, ppy)
    if np.isnan(d):
        return SharpeTest(d, math.nan, math.nan, math.nan, blk, reps, n)
    if np.array_equal(a, b):
        star = np.zeros(reps)  # identical series: every replicate is exactly 0 (no NaN of 0/0)
    star = star[np.isfinite(star)]
    if not len(star):
        return SharpeTest(d, math.nan, math.nan, math.nan, blk, reps, n)
    lo, hi, p = _interval_and_p(d, star, level)
    return SharpeTest(d, lo, hi, p, blk, len(star), n)


def _interval_and_p(d: float, star: np.ndarray, level: float) -> tuple[float, float, float]:
    """Percentile interval and null-centred two-sided p-value of the finite replicates ``star``."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(star, [alpha, 1.0 - alpha])
    # tolerance: a replicate equal to the estimate up to rounding is not "as extreme" as d != 0
    tol = 1e-12 * max(1.0, abs(d))
    extreme = np.abs(star - d) >= abs(d) - tol if d != 0 else np.ones(len(star), dtype=bool)
    p = (1.0 + float(extreme.sum())) / (1.0 + len(star))
    return float(lo), float(hi), min(1.0, p)


def method_label(block: float, reps: int) -> str:
    """The ``method`` cell of ``significance.csv``."""
    return f"stationary block bootstrap (mean block {block:g} days, {reps} replicates)"


# ----------------------------------------------------------------------------- run-level tables


def default_primary(strategies: Sequence[str], benchmark: str | None, primary: str | None = None) -> str:
    """The primary strategy: ``primary`` if given, else DynamicRiskBudget if run, else the benchmark."""
    names = list(strategies)
    if primary is not None:
        if primary not in names:
            raise ConfigError(f"run.primary: '{primary}' is not among the strategies run ({', '.join(names)})")
        return primary
    if "DynamicRiskBudget" in names:
        return "DynamicRiskBudget"
    if benchmark is not None and benchmark in names:
        return benchmark
    return names[0]


def split_returns(returns: pd.DataFrame, holdout_start: pd.Timestamp | str | None) -> dict[str, pd.DataFrame]:
    """The spans a run reports: ``{"full": returns}`` or in-sample / held-out / full.

    Parameters
    ----------
    returns : pandas.DataFrame
        Daily returns, DatetimeIndex, one column per strategy.
    holdout_start : date, optional
        First day of the held-out span; ``in_sample`` is every day before it.

    Returns
    -------
    dict
        Span label -> returns of that span (keys in :data:`SPANS` order).
    """
    if holdout_start is None:
        return {"full": returns}
    cut = pd.Timestamp(holdout_start)
    return {
        "in_sample": returns.loc[returns.index < cut],
        "holdout": returns.loc[returns.index >= cut],
        "full": returns,
    }


def pairwise_significance(
    returns: pd.DataFrame,
    primary: str,
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    risk_free: float = 0.0,
    ppy: int = 252,
    level: float = 0.95,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per other strategy: the primary's Sharpe minus the other's, CI and p-value.

    When every strategy has a return on the same days (the usual comparison run), one set of
    ``(B, T)`` indices is drawn for all pairs with the largest optimal block length over all the
    strategies (:func:`choose_block_length`), every strategy's ``B`` replicate Sharpe ratios are
    computed once (one gather per strategy) and each pair's replicate differences are their
    differences: the pairs are resampled on the same days, as the joint tests are. Otherwise each
    pair is tested on its own common days by :func:`sharpe_difference_test` (seed ``(seed, j)``).

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, k)
        Daily returns after costs.
    primary : str
        Column of ``returns`` tested against every other column.
    reps, seed, risk_free, ppy, level
        See :func:`sharpe_difference_test`.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`SIGNIFICANCE_COLUMNS`.
    blocks : dict
        ``versus -> mean block length`` used for that pair.
    """
    if primary not in returns.columns:
        raise ConfigError(f"primary strategy '{primary}' has no returns")
    others = [c for c in returns.columns if c != primary]
    live = returns.dropna(how="all")
    common = live.dropna()
    if len(common) == len(live) and len(common) >= 3 and others:
        return _shared_pairwise(common, primary, others, reps=reps, seed=seed, risk_free=risk_free, ppy=ppy, level=level)
    rows, blocks = [], {}
    for j, other in enumerate(others):
        both = returns[[primary, other]].dropna()
        if len(both) < 3:
            continue
        rng = np.random.default_rng([int(seed), j])
        t = sharpe_difference_test(
            both[primary].to_numpy(), both[other].to_numpy(), reps=reps, seed=rng, risk_free=risk_free, ppy=ppy,
            level=level,
        )
        blocks[other] = t.block_length
        rows.append((primary, other, t.sharpe_diff, t.ci_low, t.ci_high, t.p_value, method_label(t.block_length, t.reps)))
    return pd.DataFrame(rows, columns=list(SIGNIFICANCE_COLUMNS)), blocks


def _replicate_sharpes(excess: np.ndarray, idx: np.ndarray, ppy: int) -> np.ndarray:
    """Annualized Sharpe ratio of every replicate ``excess[idx[b]]`` from two sums (one gather).

    ``var = (sum x^2 - n mean^2) / (n - 1)``: with daily returns (mean << deviation) the
    cancellation costs about 1e-13 relative, far below the bootstrap's own noise.
    """
    s = excess[idx]
    n = idx.shape[1]
    mu = s.sum(axis=1) / n
    var = (np.einsum("ij,ij->i", s, s) - n * mu * mu) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, mu / np.sqrt(np.where(var > 0, var, 1.0)) * math.sqrt(ppy), np.nan)


def _shared_pairwise(
    common: pd.DataFrame, primary: str, others: list[str], *, reps: int, seed: int, risk_free: float, ppy: int,
    level: float,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`pairwise_significance` on days where every strategy has a return (one index draw)."""
    x = common.to_numpy(dtype=float)
    n = len(x)
    rf = (1.0 + float(risk_free)) ** (1.0 / ppy) - 1.0
    blk = choose_block_length(x)
    idx = stationary_bootstrap_indices(n, reps, blk, np.random.default_rng(int(seed)))
    cols = list(common.columns)
    est = annualized_sharpe(x.T, rf, ppy)
    star = np.column_stack([_replicate_sharpes(x[:, j] - rf, idx, ppy) for j in range(x.shape[1])])  # (B, k)
    p = cols.index(primary)
    rows, blocks = [], {}
    for other in others:
        j = cols.index(other)
        d = float(est[p] - est[j])
        diff = np.zeros(reps) if np.array_equal(x[:, p], x[:, j]) else star[:, p] - star[:, j]
        diff = diff[np.isfinite(diff)]
        if np.isnan(d) or not len(diff):
            lo = hi = pv = math.nan
        else:
            lo, hi, pv = _interval_and_p(d, diff, level)
        blocks[other] = blk
        rows.append((primary, other, d, lo, hi, pv, method_label(blk, len(diff))))
    return pd.DataFrame(rows, columns=list(SIGNIFICANCE_COLUMNS)), blocks


def joint_tests(
    returns: pd.DataFrame,
    primary: str,
    *,
    reps: int = JOINT_REPS,
    seed: int = 0,
    size: float = MCS_SIZE,
) -> dict[str, Any]:
    """Hansen's SPA (primary as benchmark) and the model confidence set, loss = ``-r``.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, k)
        Daily returns; only days on which every strategy has a return are used.
    primary : str
        Benchmark of the SPA test.
    reps : int
        Bootstrap replicates of both tests.
    seed : int
    size : float
        Size of the model confidence set (0.10: a 90 % set).

    Returns
    -------
    dict
        ``{"loss", "days", "block_length", "reps", "spa": {...}, "mcs": {...}}`` (JSON-ready).
    """
    from arch.bootstrap import MCS, SPA

    data = returns.dropna()
    others = [c for c in data.columns if c != primary]
    out: dict[str, Any] = {"loss": LOSS, "days": len(data), "reps": reps, "seed": int(seed)}
    if len(data) < 10 or not others:
        out["note"] = "too few common days or strategies for the joint tests"
        return out
    loss = -data
    block = choose_block_length(loss.to_numpy())
    out["block_length"] = block
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spa = SPA(loss[primary], loss[others], block_size=int(block), reps=reps, seed=int(seed))
        spa.compute()
        pv = spa.pvalues
        mcs = MCS(loss, size=size, reps=reps, block_size=int(block), method="R", seed=int(seed) + 1)
        mcs.compute()
    out["spa"] = {
        "benchmark": primary,
        "alternatives": others,
        "null": "no alternative has a higher mean daily return than the benchmark",
        "p_lower": float(pv["lower"]),
        "p_consistent": float(pv["consistent"]),
        "p_upper": float(pv["upper"]),
    }
    mp = mcs.pvalues["Pvalue"]
    out["mcs"] = {
        "size": size,
        "method": "R",
        "included": [str(s) for s in mcs.included],
        "excluded": [str(s) for s in mcs.excluded],
        "pvalues": {str(k): float(v) for k, v in mp.items()},
    }
    return out


# ----------------------------------------------------------------------------- sweeps


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios with zero mean and variance ``var_sharpe``.

    ``sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))`` with ``g`` the
    Euler-Mascheroni constant (Bailey and Lopez de Prado 2014, eq. 6 / the "SR_0" of the DSR).
    Units follow ``var_sharpe`` (per period or annualized). 0 for a single trial.
    """
    if n_trials < 1:
        raise ConfigError(f"deflated Sharpe: number of trials must be >= 1, got {n_trials}")
    if n_trials == 1 or var_sharpe <= 0:
        return 0.0
    g = np.euler_gamma
    z = (1 - g) * stats.norm.ppf(1 - 1.0 / n_trials) + g * stats.norm.ppf(1 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(var_sharpe) * z)


def deflated_sharpe_ratio(
    sharpe: float, n_obs: int, n_trials: int, var_sharpe: float, skew: float = 0.0, kurtosis: float = 3.0
) -> tuple[float, float]:
    """Deflated Sharpe ratio of the best of ``n_trials`` strategies (Bailey and Lopez de Prado 2014).

    Parameters
    ----------
    sharpe : float
        The selected strategy's *per-period* (e.g. daily, not annualized) Sharpe ratio.
    n_obs : int
        Number of return observations ``T`` behind it.
    n_trials : int
        Number of strategies (grid points) tried ``N``.
    var_sharpe : float
        Variance of the trials' per-period Sharpe ratios ``V``.
    skew, kurtosis : float
        Skewness and (non-excess) kurtosis of the selected strategy's returns (3 = normal).

    Returns
    -------
    dsr : float
        ``Phi((SR - SR_0) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2))`` in [0, 1]:
        the probability that the true Sharpe ratio exceeds ``SR_0``, the expected maximum of
        ``N`` zero-skill trials (:func:`expected_max_sharpe`).
    sr0 : float
        ``SR_0`` (per period).
    """
    if n_obs < 2:
        raise DataError(f"deflated Sharpe: need at least 2 observations, got {n_obs}")
    sr0 = expected_max_sharpe(int(n_trials), float(var_sharpe))
    den = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not den > 0:
        return math.nan, sr0
    z = (sharpe - sr0) * math.sqrt(n_obs - 1) / math.sqrt(den)
    return float(stats.norm.cdf(z)), sr0


def pbo_cscv(returns: np.ndarray, n_splits: int = 16, rf_daily: float = 0.0) -> dict[str, Any]:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, Lopez de Prado, Zhu 2017).

    The ``T x N`` matrix of the trials' daily returns is cut into ``S = n_splits`` contiguous
    blocks of equal length (the last ``T mod S`` days are dropped). For each of the ``C(S, S/2)``
    ways of choosing half the blocks as the in-sample set (the rest out of sample), the trial
    with the best in-sample Sharpe ratio is found, its out-of-sample Sharpe ratio is ranked among
    all trials (``omega = rank / (N + 1)``, rank 1 = worst, ties averaged) and ``lambda =
    log(omega / (1 - omega))``. PBO is the share of splits with ``lambda <= 0``: the in-sample
    winner did no better than the median out of sample. Every split is computed at once from the
    blocks' sums and sums of squares.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns of the ``N >= 2`` trials on the same days (no NaN).
    n_splits : int
        Even number of blocks ``S`` (16 as in the paper).
    rf_daily : float
        Daily risk-free rate subtracted before the Sharpe ratios.

    Returns
    -------
    dict
        ``pbo``, ``n_splits``, ``combinations``, ``logits`` (numpy array, one per split).
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise DataError(f"PBO: need a (T, N) matrix with N >= 2 trials, got shape {m.shape}")
    if n_splits < 2 or n_splits % 2:
        raise ConfigError(f"PBO: n_splits must be an even number >= 2, got {n_splits}")
    t, n = m.shape
    if not np.isfinite(m).all():
        raise DataError("PBO: returns must be finite on every day of every trial")
    if t < 2 * n_splits:
        raise DataError(f"PBO: {t} days are too few for {n_splits} blocks")
    size = t // n_splits
    blocks = (m[: size * n_splits] - rf_daily).reshape(n_splits, size, n)
    s1 = blocks.sum(axis=1)  # (S, N)
    s2 = (blocks**2).sum(axis=1)
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    mask = np.zeros((len(combos), n_splits))
    np.put_along_axis(mask, combos, 1.0, axis=1)
    k = size * (n_splits // 2)

    def sharpe(sel: np.ndarray) -> np.ndarray:
        mu = sel @ s1 / k
        var = (sel @ s2 - k * mu**2) / (k - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return mu / np.sqrt(np.maximum(var, 0.0))

    sr_is = np.nan_to_num(sharpe(mask), nan=-np.inf)
    sr_oos = np.nan_to_num(sharpe(1.0 - mask), nan=-np.inf)
    best = np.argmax(sr_is, axis=1)
    ranks = stats.rankdata(sr_oos, axis=1)  # 1 = worst, ties averaged
    omega = ranks[np.arange(len(combos)), best] / (n + 1.0)
    logits = np.log(omega / (1.0 - omega))
    return {"pbo": float(np.mean(logits <= 0)), "n_splits": n_splits, "combinations": len(combos), "logits": logits}


def sweep_evidence(
    sharpes_annual: Sequence[float],
    best_returns: np.ndarray,
    *,
    ppy: int = 252,
    risk_free: float = 0.0,
    trial_returns: np.ndarray | None = None,
    n_splits: int = 16,
) -> dict[str, Any]:
    """DSR of the best point and (with ``trial_returns`` of >= 8 points) PBO, for a sweep.

    Parameters
    ----------
    sharpes_annual : sequence of float
        Annualized Sharpe ratio of every grid point tried (``N`` = the number of finite values).
    best_returns : numpy.ndarray, shape (T,)
        Daily returns of the best point.
    ppy : int
    risk_free : float
        Annual risk-free rate.
    trial_returns : numpy.ndarray, shape (T', N), optional
        Every point's daily returns on common days, for PBO.
    n_splits : int
        CSCV blocks (reduced to the largest even number leaving >= 2 days per block).

    Returns
    -------
    dict
        ``n_trials, sharpe_best, sharpe_var, skew, kurtosis, n_obs, expected_max_sharpe,
        deflated_sharpe`` (Sharpe values annualized, the DSR computed per day) and ``pbo,
        pbo_splits`` (NaN / 0 when not computed, with ``pbo_note``).
    """
    sr = np.asarray(sharpes_annual, dtype=float)
    sr = sr[np.isfinite(sr)]
    r = np.asarray(best_returns, dtype=float)
    r = r[np.isfinite(r)]
    rf = (1.0 + risk_free) ** (1.0 / ppy) - 1.0
    best = float(annualized_sharpe(r, rf, ppy)) if len(r) >= 2 else math.nan
    var_a = float(np.var(sr, ddof=1)) if len(sr) > 1 else 0.0
    skew = float(stats.skew(r)) if len(r) > 2 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if len(r) > 3 else 3.0
    dsr, sr0 = (math.nan, math.nan)
    if len(sr) >= 1 and np.isfinite(best):
        dsr, sr0 = deflated_sharpe_ratio(best / math.sqrt(ppy), len(r), len(sr), var_a / ppy, skew, kurt)
    out: dict[str, Any] = {
        "n_trials": int(len(sr)),
        "sharpe_best": best,
        "sharpe_var": var_a,
        "skew": skew,
        "kurtosis": kurt,
        "n_obs": int(len(r)),
        "expected_max_sharpe": sr0 * math.sqrt(ppy) if np.isfinite(sr0) else math.nan,
        "deflated_sharpe": dsr,
        "pbo": math.nan,
        "pbo_splits": 0,
        "pbo_note": "",
    }
    if trial_returns is None:
        out["pbo_note"] = "daily returns of the points not available"
    elif trial_returns.shape[1] < 8:
        out["pbo_note"] = f"grid of {trial_returns.shape[1]} points: PBO needs at least 8"
    else:
        s = int(min(n_splits, (trial_returns.shape[0] // 2) // 2 * 2))
        if s < 2:
            out["pbo_note"] = "too few common days for CSCV"
        else:
            res = pbo_cscv(trial_returns, s, rf)
            out["pbo"], out["pbo_splits"] = res["pbo"], s
    return out


def as_jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    """Drop numpy arrays, turn NaN into None (for run.json / sweep.json)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif isinstance(v, Mapping):
            out[k] = as_jsonable(v)
        else:
            out[k] = v
    return out
