"""The baseline allocators: equal weight, fixed weights and the covariance-based rules.

Each is an :class:`~strategies.allocators.base.Allocator` whose :meth:`target_weights` is one
weight rule of :mod:`strategies.core.weights` (or a risk-budget solve) on the trailing sample
covariance, rebalanced on the periodic trigger only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from drb.errors import ConfigError, CovarianceRepairWarning, SolverError, SolverFallbackWarning
from strategies.allocators.base import PERIODS_PER_YEAR, Allocator, check_max_leverage
from strategies.core.budget import CLASSES, class_to_asset_budget

__all__ = [
    "EqualWeightAllocator",
    "FixedWeightsAllocator",
    "InverseVolatilityAllocator",
    "RiskParityAllocator",
    "MinimumVarianceAllocator",
    "StaticRiskBudgetAllocator",
    "SharpeRiskBudgetAllocator",
    "MacroRiskParityAllocator",
    "VolatilityManagedAllocator",
]


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
        from strategies.core.solvers import risk_budget_weights

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
        from strategies.core.weights import inverse_volatility_weights

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
        from strategies.core.weights import min_variance_weights

        return min_variance_weights(cov)


class StaticRiskBudgetAllocator(_CovarianceAllocator):
    """A fixed risk budget (default the paper's initial 40/30/15/15 by class)."""

    name = "StaticRiskBudget"

    def __init__(self, assets, asset_classes=None, *, budget: Mapping[str, float] | None = None, **kw) -> None:
        super().__init__(assets, asset_classes, **kw)
        from strategies.core.budget import INITIAL_BUDGET

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
        from strategies.core.weights import sharpe_driven_budget

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
        from strategies.core.weights import factor_risk_parity_weights

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
        check_max_leverage(self.name, max_leverage)
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
            from strategies.core.solvers import risk_budget_weights

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
