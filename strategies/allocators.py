"""Allocators: the pure decision logic of every strategy, driven one bar at a time.

An allocator sees bar t (date, closes, the volatility index) through :meth:`Allocator.update` and,
given the current drifted weights, says through :meth:`Allocator.decide` whether to rebalance and
to which weights. It imports no backtrader: the backtrader strategies in
:mod:`strategies.bt_strategies` and the plain-loop fast path in :mod:`runners.fastpath` drive the
same objects, so both give the same weights on the same data.

Conventions: returns are simple daily returns of the closes; covariances are annualized (x252);
weights are decimals of portfolio value, long-only, summing to at most 1 (the rest is cash).
Nothing at bar t uses data after t: every estimator is fed incrementally.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pandas as pd

from drb.errors import ConfigError, CovarianceRepairWarning, SolverError, SolverFallbackWarning
from strategies.budget import CLASSES, class_to_asset_budget

__all__ = [
    "Decision",
    "Allocator",
    "EqualWeightAllocator",
    "FixedWeightsAllocator",
    "InverseVolatilityAllocator",
    "RiskParityAllocator",
    "MinimumVarianceAllocator",
    "StaticRiskBudgetAllocator",
    "SharpeRiskBudgetAllocator",
    "MacroRiskParityAllocator",
    "VolatilityManagedAllocator",
    "is_period_start",
    "PERIODS_PER_YEAR",
]

PERIODS_PER_YEAR = 252
TRIGGER_ORDER = ("initial", "periodic", "regime", "eigenvalue", "rc_deviation")


@dataclass
class Decision:
    """A rebalance decision taken at the close of a bar.

    Attributes
    ----------
    target : ndarray, shape (n,)
        Desired asset weights (sum <= 1; the rest cash), before turnover caps.
    triggers : tuple of str
        What fired: ``initial``, ``periodic``, ``regime``, ``eigenvalue``, ``rc_deviation``.
    info : dict
        Diagnostics (budget, regime, solver report).
    date : Timestamp or None
        The bar whose close the decision was taken at (the orders fill later, at the next open).
    """

    target: np.ndarray
    triggers: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    date: pd.Timestamp | None = None

    @property
    def trigger(self) -> str:
        """Triggers joined by ``+`` in canonical order."""
        return "+".join(t for t in TRIGGER_ORDER if t in self.triggers)


@numba.njit(cache=True)
def _definite_with_margin(s: np.ndarray, margin: float) -> bool:  # pragma: no cover - compiled
    """True when the Cholesky factorization of ``s - margin * trace(s) * I`` succeeds (every pivot
    > 0; ``s`` symmetric, shape (n, n)); see :func:`_well_conditioned_sample_covariance`."""
    n = s.shape[0]
    tr = 0.0
    for i in range(n):
        tr += s[i, i]
    if not tr > 0.0:
        return False
    shift = margin * tr
    lo = np.empty((n, n))
    for j in range(n):
        d = s[j, j] - shift
        for q in range(j):
            d -= lo[j, q] * lo[j, q]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        lo[j, j] = d
        for i in range(j + 1, n):
            v = s[i, j]
            for q in range(j):
                v -= lo[i, q] * lo[j, q]
            lo[i, j] = v / d
    return True


def _well_conditioned_sample_covariance(window: np.ndarray) -> np.ndarray | None:
    """:func:`indicators.covariance.baseline_covariance` of ``window`` (annualized), bit for bit,
    when its sample branch applies; None when the caller must call it (possible shrinkage).

    Same arithmetic as the sample branch (mean, centred ``X'X / (m - 1)``, times 252, then the
    symmetrization of :func:`drb.linalg.nearest_positive_definite`), but its two LAPACK checks
    (eigenvalue ratio > 1e-10 and a Cholesky factor) are replaced by one compiled Cholesky of
    ``S - 2e-10 trace(S) I``: when it succeeds the smallest eigenvalue exceeds
    ``2e-10 trace(S) >= 2e-10 lambda_max`` up to round-off (~1e-15 trace), so both checks pass
    and the result is the sample covariance itself. Anything else (a short window, an
    ill-conditioned or non-finite estimate) returns None. Per bar this costs about a third of
    the checked version (the risk-contribution recorder asks for it every bar).

    Parameters
    ----------
    window : ndarray, shape (m, n)
        Decimal returns per bar, oldest first.

    Returns
    -------
    ndarray, shape (n, n), or None
    """
    m, n = window.shape
    if m < 2 * n:
        return None
    xc = window - window.sum(axis=0) / m  # == window.mean(axis=0), the same division
    a = (xc.T @ xc) / (m - 1) * PERIODS_PER_YEAR
    s = 0.5 * (a + a.T)
    if not _definite_with_margin(s, 2e-10):
        return None
    return s


def is_period_start(date: pd.Timestamp, prev: pd.Timestamp | None, rebalance: str | int, bar: int) -> bool:
    """True on the first bar of a new period.

    ``rebalance``: ``"monthly"`` (first trading day of each month, the default), ``"weekly"``,
    ``"quarterly"``, ``"yearly"``, or an int N (every N bars).
    """
    if isinstance(rebalance, int):
        return bar > 0 and bar % rebalance == 0
    if prev is None:
        return False
    if rebalance == "monthly":
        return (date.year, date.month) != (prev.year, prev.month)
    if rebalance == "weekly":
        return date.isocalendar()[:2] != prev.isocalendar()[:2]
    if rebalance == "quarterly":
        return (date.year, (date.month - 1) // 3) != (prev.year, (prev.month - 1) // 3)
    if rebalance == "yearly":
        return date.year != prev.year
    raise ConfigError(f"rebalance: expected monthly, weekly, quarterly, yearly or a number of bars, got {rebalance!r}")


class Allocator:
    """Base allocator: bar bookkeeping, return history, warm-up, the periodic trigger.

    Parameters
    ----------
    assets : sequence of str
        Asset names, in order.
    asset_classes : mapping, optional
        ``{asset: class}``; default: asset names are class names.
    warmup : int
        Bars observed before the first investment (the same for every strategy of a comparison).
    rebalance : str or int
        Periodic trigger (see :func:`is_period_start`).
    cov_window : int
        Trailing window (bars) of the sample covariance used by the baselines.
    """

    name = "Allocator"

    def __init__(
        self,
        assets: Sequence[str],
        asset_classes: Mapping[str, str] | None = None,
        *,
        warmup: int = 252,
        rebalance: str | int = "monthly",
        cov_window: int = 60,
    ) -> None:
        self.assets = list(assets)
        self.n = len(self.assets)
        if self.n == 0:
            raise ConfigError(f"{self.name}: no assets")
        classes = dict(asset_classes) if asset_classes else {a: a for a in self.assets}
        for a in self.assets:
            if a not in classes:
                raise ConfigError(f"{self.name}: asset '{a}' has no asset class")
        self.asset_classes = classes
        self.classes = [classes[a] for a in self.assets]
        if warmup < 1:
            raise ConfigError(f"{self.name}: warmup must be >= 1, got {warmup}")
        self.warmup = int(warmup)
        is_period_start(pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-01"), rebalance, 1)  # validates
        self.rebalance = rebalance
        if cov_window < 2:
            raise ConfigError(f"{self.name}: cov_window must be >= 2, got {cov_window}")
        self.cov_window = int(cov_window)
        self.bar = -1
        self.date: pd.Timestamp | None = None
        self.prev_date: pd.Timestamp | None = None
        self.prices: np.ndarray | None = None
        self.vol_index = math.nan
        self.invested = False
        self.last_rebalance_bar: int | None = None
        self.period_start = False
        # zeros, not np.empty: the unfilled rows are saved with the paper-trading state, which must
        # be reproducible and never carry stray memory
        self._returns = np.zeros((256, self.n))
        self._n_returns = 0
        self.last_check_bar: int | None = None
        self.exec_caps: tuple[float | None, float | None, float] = (0.15, 0.08, 0.002)

    def set_execution(self, total_cap: float | None, asset_cap: float | None, cash_buffer: float) -> None:
        """Tell the allocator the execution layer's caps and cash buffer (for its ``min_trade``).

        Parameters
        ----------
        total_cap, asset_cap : float or None
            One-way turnover cap per rebalance and per-asset weight change cap (None: none).
        cash_buffer : float
            Share of value the execution layer keeps in cash.
        """
        self.exec_caps = (total_cap, asset_cap, float(cash_buffer))

    # ----------------------------------------------------------------------------- data in
    def update(self, date: pd.Timestamp, prices: np.ndarray, vol_index: float = math.nan) -> None:
        """Ingest bar t: its date, closes (shape (n,)) and the volatility index (NaN if none)."""
        prices = np.asarray(prices, dtype=float)
        self.bar += 1
        self.prev_date, self.date = self.date, pd.Timestamp(date)
        self.period_start = is_period_start(self.date, self.prev_date, self.rebalance, self.bar)
        ret = None
        if self.prices is not None:
            ret = prices / self.prices - 1.0
            if self._n_returns == self._returns.shape[0]:
                self._returns = np.concatenate([self._returns, np.zeros_like(self._returns)])
            self._returns[self._n_returns] = ret
            self._n_returns += 1
        self.prices = prices
        self.vol_index = float(vol_index) if vol_index is not None else math.nan
        self._on_bar(ret)

    def _on_bar(self, ret: np.ndarray | None) -> None:
        """Hook for estimators that update every bar (``ret`` is None on the first bar)."""

    def returns(self, window: int | None = None) -> np.ndarray:
        """Trailing simple returns, shape (min(window, T), n), oldest first."""
        k = self._n_returns
        lo = 0 if window is None else max(0, k - window)
        return self._returns[lo:k]

    # ----------------------------------------------------------------------------- estimates
    def covariance(self) -> np.ndarray | None:
        """Current annualized covariance estimate (sample, ``cov_window`` bars), or None.

        Shrunk (Ledoit-Wolf, :func:`indicators.covariance.baseline_covariance`) when the window
        holds fewer than ``2 n`` returns or the sample covariance is singular; ``_cov_shrunk``
        says whether the last estimate was.

        Computed once per bar (the decision and the risk-contribution recorder share it); treat
        the array as read-only.
        """
        cached = getattr(self, "_cov_cache", None)
        if cached is not None and cached[0] == self._n_returns:
            return cached[1]
        r = self.returns(self.cov_window)
        cov = None
        self._cov_shrunk = False
        if r.shape[0] >= min(self.cov_window, max(self.n + 1, 3)):
            # sample covariance; Ledoit-Wolf when the window is < 2n returns or the sample is singular
            cov = _well_conditioned_sample_covariance(r)
            if cov is None:
                from indicators.covariance import baseline_covariance

                cov, self._cov_shrunk = baseline_covariance(r, PERIODS_PER_YEAR)
        self._cov_cache = (self._n_returns, cov)
        return cov

    # ----------------------------------------------------------------------------- decisions
    def triggers(self, weights: np.ndarray) -> list[str]:
        """Triggers that fire at this bar given the drifted weights (baselines: periodic only)."""
        return ["periodic"] if self.period_start else []

    def target_weights(self) -> np.ndarray:
        """Desired weights at this bar, shape (n,)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def decide(self, weights: np.ndarray | None) -> Decision | None:
        """Rebalance decision at the close of the current bar.

        Parameters
        ----------
        weights : ndarray (n,) or None
            Current drifted asset weights (None or all zero before the first investment).

        Returns
        -------
        Decision or None
        """
        if self.bar < self.warmup:
            return None
        if not self.invested:
            fired = ["initial"]
        else:
            fired = self.triggers(np.asarray(weights, dtype=float))
            if not fired:
                return None
        target = np.asarray(self.target_weights(), dtype=float)
        if target.shape != (self.n,) or not np.all(np.isfinite(target)) or (target < -1e-12).any():
            raise SolverError(f"{self.name}: invalid target weights {target!r} at {self.date}")
        target = np.clip(target, 0.0, None)
        if self.invested and self._skip(fired, target, np.asarray(weights, dtype=float)):
            self.last_check_bar = self.bar
            return None
        self.invested = True
        self.last_check_bar = self.bar
        self.last_rebalance_bar = self.bar
        decision = Decision(target=target, triggers=tuple(fired), info=self.decision_info(), date=self.date)
        self._after_rebalance(decision)
        return decision

    def _skip(self, fired: list[str], target: np.ndarray, weights: np.ndarray) -> bool:
        """Hook: True to skip this (non-initial) rebalance; the allocator undoes its own state."""
        return False

    def decision_info(self) -> dict[str, Any]:
        """Diagnostics recorded with a decision."""
        return {}

    def _after_rebalance(self, decision: Decision) -> None:
        """Hook: update reference values at a rebalance."""

    def budget(self) -> np.ndarray | None:
        """Risk budget in force (risk-budgeting strategies), shape (n,)."""
        return None


# ================================================================================== baselines
class EqualWeightAllocator(Allocator):
    """1/n of value in each asset, rebalanced periodically."""

    name = "EqualWeight"

    def target_weights(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)


def _weights_by_name_or_class(
    spec: Mapping[str, float], assets: Sequence[str], classes: Sequence[str], who: str
) -> np.ndarray:
    """Weights from ``{asset or class: weight}``; a class weight is split equally by its assets."""
    w = np.zeros(len(assets))
    for key, val in spec.items():
        val = float(val)
        if val < 0 or not math.isfinite(val):
            raise ConfigError(f"{who}: weight of '{key}' must be finite and >= 0, got {val}")
        if key in assets:
            w[list(assets).index(key)] += val
        elif key in classes:
            idx = [i for i, c in enumerate(classes) if c == key]
            w[idx] += val / len(idx)
        else:
            raise ConfigError(f"{who}: '{key}' is neither an asset nor an asset class of this run")
    if w.sum() <= 0:
        raise ConfigError(f"{who}: weights sum to zero")
    return w


class FixedWeightsAllocator(Allocator):
    """Fixed weights (default 60% equity, 40% bond), rebalanced periodically.

    ``weights`` maps assets or classes to weights; they are normalized to sum to 1.
    """

    name = "FixedWeights"

    def __init__(self, assets, asset_classes=None, *, weights: Mapping[str, float] | None = None, **kw) -> None:
        super().__init__(assets, asset_classes, **kw)
        spec = dict(weights) if weights else {"equity": 0.6, "bond": 0.4}
        w = _weights_by_name_or_class(spec, self.assets, self.classes, self.name)
        self.fixed = w / w.sum()

    def target_weights(self) -> np.ndarray:
        return self.fixed.copy()


class _ShrinkageCount:
    """Counts decisions taken on a shrunk (Ledoit-Wolf) covariance; warns once per allocator."""

    covariance_shrunk = 0

    def _count_shrinkage(self) -> None:
        if not getattr(self, "_cov_shrunk", False):
            return
        self.covariance_shrunk += 1
        if self.covariance_shrunk == 1:
            m = self.returns(self.cov_window).shape[0]  # type: ignore[attr-defined]
            warnings.warn(
                f"{self.name}: {m} returns of {self.n} assets (cov_window) give an unreliable sample "  # type: ignore[attr-defined]
                "covariance; Ledoit-Wolf shrinkage used (counted in run.json as covariance_shrunk)",
                CovarianceRepairWarning,
                stacklevel=3,
            )


class _CovarianceAllocator(_ShrinkageCount, Allocator):
    """Baselines that need a covariance: before enough history, equal weights stand in."""

    _prev: np.ndarray | None = None

    def _solve_budget(self, cov: np.ndarray, budget: np.ndarray) -> np.ndarray:
        """Risk-budget weights, warm-started from the previous solution."""
        from strategies.solvers import risk_budget_weights

        w = risk_budget_weights(cov, budget, x0=self._prev)
        self._prev = w
        return w

    def _cov_or_none(self) -> np.ndarray | None:
        return self.covariance()

    solver_fallbacks = 0
    _last_target: np.ndarray | None = None

    def target_weights(self) -> np.ndarray:
        cov = self._cov_or_none()
        if cov is None:
            return np.full(self.n, 1.0 / self.n)
        self._count_shrinkage()
        try:
            w = self.weights_from_cov(cov)
        except SolverError as exc:
            # Logged fallback chain (DESIGN section 7): previous target, then inverse volatility.
            self.solver_fallbacks += 1
            warnings.warn(f"{self.name}: solver failed at {self.date} ({exc}); fallback used", SolverFallbackWarning, stacklevel=2)
            if self._last_target is not None:
                return self._last_target.copy()
            iv = 1.0 / np.sqrt(np.diag(cov))
            return iv / iv.sum()
        self._last_target = np.asarray(w, dtype=float)
        return self._last_target.copy()

    def report(self) -> dict[str, Any]:
        """Counts for run.json."""
        return {"solver_fallbacks": self.solver_fallbacks, "covariance_shrunk": self.covariance_shrunk}

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract


class InverseVolatilityAllocator(_CovarianceAllocator):
    """Weights proportional to 1 / sigma_i (trailing ``cov_window`` bars)."""

    name = "InverseVolatility"

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        from strategies.weights import inverse_volatility_weights

        return inverse_volatility_weights(cov)


class RiskParityAllocator(_CovarianceAllocator):
    """Equal risk contributions (ERC) on the trailing sample covariance."""

    name = "RiskParity"

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        return self._solve_budget(cov, np.full(self.n, 1.0 / self.n))

    def budget(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)


class MinimumVarianceAllocator(_CovarianceAllocator):
    """Long-only minimum variance on the trailing sample covariance."""

    name = "MinimumVariance"

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        from strategies.weights import min_variance_weights

        return min_variance_weights(cov)


class StaticRiskBudgetAllocator(_CovarianceAllocator):
    """A fixed risk budget (default the paper's initial 40/30/15/15 by class)."""

    name = "StaticRiskBudget"

    def __init__(self, assets, asset_classes=None, *, budget: Mapping[str, float] | None = None, **kw) -> None:
        super().__init__(assets, asset_classes, **kw)
        from strategies.budget import INITIAL_BUDGET

        spec = dict(budget) if budget else dict(INITIAL_BUDGET)
        if set(spec) <= set(CLASSES) and not (set(spec) & set(self.assets) - set(CLASSES)):
            b = class_to_asset_budget({c: spec.get(c, 0.0) for c in CLASSES}, self.classes)
        else:
            b = _weights_by_name_or_class(spec, self.assets, self.classes, self.name)
        self._budget = b / b.sum()

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        return self._solve_budget(cov, self._budget)

    def budget(self) -> np.ndarray:
        return self._budget.copy()


class SharpeRiskBudgetAllocator(_CovarianceAllocator):
    """Sharpe-driven dynamic risk budget (seed 001): budgets from trailing Sharpe ratios.

    The budget floor in force is ``min(floor, 0.5 / n)`` for ``n`` assets, so the default 5% stays
    feasible with many assets (a floor above ``1/n`` cannot hold: the floors would sum past 1);
    ``report()`` records it as ``floor_used``.
    """

    name = "SharpeRiskBudget"

    def __init__(self, assets, asset_classes=None, *, sharpe_window: int = 126, floor: float = 0.05, **kw) -> None:
        super().__init__(assets, asset_classes, **kw)
        self.sharpe_window = int(sharpe_window)
        if not (math.isfinite(float(floor)) and float(floor) >= 0):
            raise ConfigError(f"{self.name}: floor must be finite and >= 0, got {floor}")
        self.floor = min(float(floor), 0.5 / self.n)
        self._budget = np.full(self.n, 1.0 / self.n)

    def report(self) -> dict[str, Any]:
        """Counts for run.json, and the budget floor in force."""
        return {**super().report(), "floor_used": self.floor}

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        from strategies.weights import sharpe_driven_budget

        r = self.returns(self.sharpe_window)
        if r.shape[0] >= min(self.sharpe_window, 20):
            # a warm-up shorter than sharpe_window: the Sharpe ratios of the returns so far
            window = min(self.sharpe_window, r.shape[0])
            self._budget = np.asarray(sharpe_driven_budget(r, window=window, floor=self.floor), dtype=float)
        return self._solve_budget(cov, self._budget)

    def budget(self) -> np.ndarray:
        return self._budget.copy()


class MacroRiskParityAllocator(_CovarianceAllocator):
    """Factor risk parity (Roncalli-Weisang): equal risk from statistical (PCA) factors.

    The trailing covariance is split as ``B Sigma_f B' + E`` with the top ``n_factors`` principal
    components (default n - 1, at least 1) as factors and the residual variances as ``E``.
    """

    name = "MacroRiskParity"

    def __init__(self, assets, asset_classes=None, *, n_factors: int | None = None, **kw) -> None:
        super().__init__(assets, asset_classes, **kw)
        k = n_factors if n_factors is not None else max(1, self.n - 1)
        if not 1 <= k <= self.n:
            raise ConfigError(f"{self.name}: n_factors must be in 1..{self.n}, got {n_factors}")
        self.n_factors = int(k)

    def weights_from_cov(self, cov: np.ndarray) -> np.ndarray:
        from strategies.weights import factor_risk_parity_weights

        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals)[::-1][: self.n_factors]
        loadings = vecs[:, order]
        # Sign convention: each factor loads positively on average (a stable labelling over time).
        loadings = loadings * np.where(loadings.sum(axis=0) < 0, -1.0, 1.0)
        factor_cov = np.diag(vals[order])
        specific = np.clip(np.diag(cov - loadings @ factor_cov @ loadings.T), 1e-12, None)
        return np.asarray(factor_risk_parity_weights(loadings, factor_cov, specific), dtype=float)


class VolatilityManagedAllocator(_ShrinkageCount, Allocator):
    """Volatility-managed portfolio: time-axis risk parity (seed 003, section 4.1).

    The risky sleeve (equal risk contributions on the trailing covariance) is scaled at each
    rebalance by its ex-ante volatility ``sigma_t`` (causal EWMA covariance of daily returns, decay
    ``ewma_lambda``, annualized):

    * ``rule="parity"`` (default): ``min(target_vol / sigma_t, max_leverage)``, the time-axis
      risk-parity solution: every period carries the same ex-ante variance ``target_vol**2``
      while the cap does not bind (Theorem 19 of seed 003; ``strategies.time_axis``);
    * ``rule="moreira_muir"``: ``min(target_vol**2 / sigma_t**2, max_leverage)``, the paper's
      ``c / sigma^2`` with ``c = target_vol**2``; it budgets more risk to calm periods.

    ``target_vol`` defaults to the expanding mean of the sleeve's ex-ante volatility at past
    rebalances (known at t), so exposure is about 1 on average before the cap. ``max_leverage``
    is at most 1 (the broker cannot borrow): the rest is held in cash, and while the cap binds
    (calm periods, where parity would lever up) the ex-ante variance is below the target.
    """

    name = "VolatilityManaged"

    def __init__(
        self,
        assets,
        asset_classes=None,
        *,
        rule: str = "parity",
        target_vol: float | None = None,
        max_leverage: float = 1.0,
        ewma_lambda: float = 0.94,
        **kw,
    ) -> None:
        super().__init__(assets, asset_classes, **kw)
        if rule not in ("parity", "moreira_muir"):
            raise ConfigError(f"{self.name}: rule must be 'parity' or 'moreira_muir', got {rule!r}")
        if not 0.0 < max_leverage <= 1.0:
            raise ConfigError(
                f"{self.name}: max_leverage must be in (0, 1], got {max_leverage} (the backtrader "
                "broker and the fast path trade from cash and cannot borrow)"
            )
        if target_vol is not None and not target_vol > 0:
            raise ConfigError(f"{self.name}: target_vol must be > 0, got {target_vol}")
        if not 0.0 < ewma_lambda < 1.0:
            raise ConfigError(f"{self.name}: ewma_lambda must be in (0, 1), got {ewma_lambda}")
        self.rule = rule
        self.target_vol = target_vol
        self.max_leverage = float(max_leverage)
        self.ewma_lambda = float(ewma_lambda)
        self._ewma: np.ndarray | None = None
        self._ewma_weight = 0.0
        self._vols: list[float] = []
        self._sleeve: np.ndarray = np.full(self.n, 1.0 / self.n)
        self._prev: np.ndarray | None = None
        self.exposure = 1.0

    def _on_bar(self, ret: np.ndarray | None) -> None:
        if ret is None:
            return
        # Bias-corrected zero-mean EWMA (RiskMetrics), as strategies.time_axis.ewma_covariances.
        outer = np.outer(ret, ret)
        lam = self.ewma_lambda
        if self._ewma is None:
            self._ewma, self._ewma_weight = outer, 1.0
        else:
            w_new = lam * self._ewma_weight + 1.0
            self._ewma = (lam * self._ewma_weight * self._ewma + outer) / w_new
            self._ewma_weight = w_new

    def target_weights(self) -> np.ndarray:
        cov = self.covariance()
        if cov is not None:
            self._count_shrinkage()
            from strategies.solvers import risk_budget_weights

            self._sleeve = risk_budget_weights(cov, np.full(self.n, 1.0 / self.n), x0=self._prev)
            self._prev = self._sleeve
        if self._ewma is None or self._n_returns < 20:
            self.exposure = 1.0
            return self._sleeve.copy()
        sigma = float(np.sqrt(max(self._sleeve @ self._ewma @ self._sleeve, 1e-18) * PERIODS_PER_YEAR))
        self._vols.append(sigma)
        target = self.target_vol if self.target_vol is not None else float(np.mean(self._vols))
        from strategies.time_axis import moreira_muir_weight, time_parity_weight

        if self.rule == "parity":
            self.exposure = float(time_parity_weight(sigma, target, self.max_leverage))
        else:
            self.exposure = float(moreira_muir_weight(sigma**2, target**2, self.max_leverage))
        return self._sleeve * self.exposure

    def report(self) -> dict[str, Any]:
        """Counts for run.json."""
        return {"covariance_shrunk": self.covariance_shrunk}
