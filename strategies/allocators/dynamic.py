"""The dynamic risk-budgeting allocator (DESIGN section 3), pure and driven bar by bar.

Per bar t (closes known): the EGARCH-DCC risk model (or a selected covariance estimator) is
updated with the day's returns; the volatility state is classified from the implied-volatility
index (or, without one, from the equity asset's conditional volatility); the economic phase from
the composite leading indicator of the macro months already published (or, without macro data, the
price-based proxy); the Markov transition counts are updated with the regime. Triggers are
checked: periodic (first trading day of the period), a regime change since the last rebalance that
has persisted ``regime_persistence`` bars, the largest correlation eigenvalue moving by more than
``eigen_threshold`` (relative) since the last rebalance, or the relative risk contributions of the
drifted weights having moved by more than ``rc_threshold`` since the last rebalance under the
covariance frozen at that rebalance; conditional triggers respect a cooldown of ``cooldown`` bars
and a conditional rebalance whose capped one-way turnover is below ``min_trade`` is skipped (and
logged). At a rebalance the target budget ``b*`` (budget matrix row of the regime, optionally
blended with the expected next-regime budget, tilted by momentum and valuation) is smoothed into
the budget in force per unit of time: over ``k`` bars since the last update the old budget keeps
the weight ``(1 - lambda_t)^(k/21)``, and the weights solve the risk-budgeting problem
(exact, or maximum Sharpe within a band ``tau`` of the budget), with an optional volatility-target
overlay.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from drb.constants import BARS_PER_MONTH, PERIODS_PER_YEAR
from drb.errors import (
    ConfigError,
    DataError,
    SignalFallbackWarning,
    SolverError,
    SolverFallbackWarning,
)
from strategies.allocators.base import Allocator, Decision, check_max_leverage
from strategies.core.budget import (
    CLASSES,
    INITIAL_BUDGET,
    REGIMES,
    anticipated_budget,
    apply_tilts,
    class_to_asset_budget,
    smooth_budget,
    smoothing_lambda,
)
from strategies.core.budget import budget_matrix as make_budget_matrix

__all__ = ["DynamicParams", "DynamicRiskBudgetAllocator", "parameter_table"]

#: Who the parameter errors name (the strategy's name).
_WHO = "DynamicRiskBudget"


def _param(default: Any, doc: str) -> Any:
    """A :class:`DynamicParams` field: its default and its one-line documentation."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DynamicParams:
    """Every parameter of the dynamic risk-budgeting model, its default and its meaning, once.

    The backtrader strategy :class:`strategies.bt.strategies.DynamicRiskBudget` builds its
    ``params`` from these fields (same names, order and defaults) and the README's parameter
    table lists them (a test checks both). Constructing one validates the values that do not
    depend on the assets (:class:`~drb.errors.ConfigError` naming the parameter).
    """

    macro: pd.DataFrame | None = _param(
        None, "monthly leading indicators indexed by reference month, each month read only once published"
    )
    valuation: pd.DataFrame | None = _param(
        None, "daily valuation scores per asset (higher = cheaper); tilts the budgets when given"
    )
    budget_matrix: Mapping[str, Mapping[str, float]] | pd.DataFrame | None = _param(
        None, "overrides rows of the 12 x 4 regime -> class budget matrix"
    )
    initial_budget: Mapping[str, float] | None = _param(
        None, "budget by class or asset before the first rebalance (None: 40/30/15/15 by class)"
    )
    anticipation: float = _param(0.0, "weight in [0, 1] of the expected next-regime budget (Markov transition matrix)")
    momentum_window: int = _param(126, "bars of the risk-adjusted momentum score of the tilts")
    tilt_strength: float = _param(0.025, "tactical tilt per cross-sectional z-score, in budget points")
    max_tilt: float = _param(0.05, "bound of each tilt, in budget points")
    budget_floor: float = _param(0.02, "floor of every asset's budget after the tilts (at most 1/n for n assets)")
    smoothing: str | float = _param("vix", 'adaptive lambda from the volatility index ("vix") or a constant lambda in (0, 1]')
    smoothing_scale: float = _param(1.0, "lambda = base + amplitude * sigmoid((VIX - mean VIX) / scale)")
    smoothing_base: float = _param(0.05, "base of the adaptive lambda (a monthly rate)")
    smoothing_amplitude: float = _param(0.2, "amplitude of the adaptive lambda")
    smoothing_bounds: tuple[float, float] = _param(
        (0.05, 0.35), "clip of lambda; over k bars the old budget keeps the weight (1 - lambda)^(k/21)"
    )
    cooldown: int = _param(10, "bars after a rebalance (or a skipped one) during which conditional triggers are ignored")
    eigen_threshold: float = _param(0.15, "relative change of the largest correlation eigenvalue since the last rebalance")
    rc_threshold: float = _param(
        0.10, "drift of a relative risk contribution under the covariance frozen at the last rebalance"
    )
    regime_trigger: bool = _param(False, "rebalance on a (persisted) regime change")
    conditional_triggers: bool = _param(
        False, "let the regime, eigenvalue and risk-contribution triggers rebalance between periodic dates"
    )
    regime_persistence: int = _param(10, "bars a new regime must hold before it is the regime in force (1 = at once)")
    vol_hysteresis: float = _param(
        0.1, "band of the volatility state around the terciles, in quantile points (fixed thresholds: relative)"
    )
    min_trade: float = _param(
        0.05, "a conditional rebalance whose one-way turnover after the caps is below it is skipped and logged"
    )
    defensive_correlation: bool = _param(
        False, "while stocks and bonds co-move, a high-volatility cell gives bonds no more than the medium cell"
    )
    risk_model: str = _param("egarch_dcc", "covariance model: egarch_dcc, sample, ewma or ledoit_wolf")
    risk_window: int = _param(750, "trailing window (bars) of the EGARCH-DCC fit")
    risk_min_window: int = _param(250, "history (bars) before the first EGARCH-DCC fit")
    refit_every: int = _param(21, "bars between EGARCH-DCC refits")
    dist: str = _param("t", "innovation law of the EGARCH fit")
    solver: str = _param("exact", 'risk-budget solver: "exact" or "sharpe_band" (max Sharpe within tau of the budget)')
    tau: float = _param(0.02, "band of the sharpe_band solver: abs(RC / sigma^2 - b) <= tau")
    target_vol: float | None = _param(None, "volatility-target overlay: scale weights by target / sigma(w)")
    max_leverage: float = _param(1.0, "cap of the overlay, in (0, 1]: the broker cannot borrow")
    weight_bounds: Mapping[str, tuple[float, float]] | None = _param(
        None, "{asset or class: (low, high)} weight bounds of the solver (closest feasible point when binding)"
    )
    cycle_k: int = _param(3, "months of the cycle direction window")
    publication_lag: int = _param(1, "months after its reference month a macro value is published")
    vol_lookback: int = _param(756, "trailing window (bars) of the volatility-state terciles")
    vol_thresholds: tuple[float, float] | None = _param(
        None, "fixed volatility-state thresholds (low/medium, medium/high) instead of terciles"
    )
    macro_transforms: Mapping[str, str] | None = _param(
        None, '{column: "level", "diff", "yoy" or "logdiff"} of the macro columns, "-" flips (None: the data\'s own)'
    )
    macro_stale_months: int | None = _param(3, "a macro series older than this many months leaves the indicator")

    def __post_init__(self) -> None:
        """Validate the values that do not depend on the assets."""
        if not 0.0 <= self.anticipation <= 1.0:
            raise ConfigError(f"anticipation must be in [0, 1], got {self.anticipation}")
        if self.solver not in ("exact", "sharpe_band"):
            raise ConfigError(f"solver must be 'exact' or 'sharpe_band', got {self.solver!r}")
        smoothing = self.smoothing
        if (smoothing != "vix") if isinstance(smoothing, str) else not 0.0 < float(smoothing) <= 1.0:
            raise ConfigError(f"smoothing must be 'vix' or a constant in (0, 1], got {smoothing!r}")
        lo, hi = self.smoothing_bounds
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"smoothing_bounds must satisfy 0 <= low <= high <= 1, got {self.smoothing_bounds}")
        for nm, v in (("cooldown", self.cooldown), ("momentum_window", self.momentum_window)):
            if int(v) < 0:
                raise ConfigError(f"{nm} must be >= 0, got {v}")
        if not 0.0 <= float(self.min_trade) < 1.0:
            raise ConfigError(f"{_WHO}: min_trade must be in [0, 1), got {self.min_trade}")
        if self.target_vol is not None and not self.target_vol > 0:
            raise ConfigError(f"{_WHO}: target_vol must be > 0, got {self.target_vol}")
        check_max_leverage(_WHO, self.max_leverage)

    @classmethod
    def split(cls, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(own, rest)``: the keyword arguments that are fields of this class, and the others."""
        names = {f.name for f in fields(cls)}
        own = {k: v for k, v in kwargs.items() if k in names}
        return own, {k: v for k, v in kwargs.items() if k not in names}

    @classmethod
    def defaults(cls) -> tuple[tuple[str, Any], ...]:
        """``((name, default), ...)`` in field order: the backtrader ``params`` tuple."""
        return tuple((f.name, f.default) for f in fields(cls))


def parameter_table() -> str:
    """The README's Markdown table of :class:`DynamicParams`: parameter, default, meaning.

    Returns
    -------
    str
        One header, one separator and one row per field, ``\\n``-joined.
    """
    rows = ["| parameter | default | meaning |", "| --- | --- | --- |"]
    for f in fields(DynamicParams):
        rows.append(f"| `{f.name}` | `{_default_text(f.default)}` | {f.metadata['doc']} |")
    return "\n".join(rows)


def _default_text(value: Any) -> str:
    """A default as the README writes it: strings double-quoted, anything else its ``repr``."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


class DynamicRiskBudgetAllocator(Allocator):
    """Dual-layer dynamic risk budgeting (see the module docstring).

    Parameters
    ----------
    assets, asset_classes
        As :class:`~strategies.allocators.base.Allocator`.
    **kwargs
        The base allocator's ``warmup``, ``rebalance``, ``cov_window``, and any field of
        :class:`DynamicParams` (the model's parameters, their defaults and meaning).

    Raises
    ------
    ConfigError
        A parameter out of range, an unknown asset class, an infeasible ``weight_bounds`` or an
        incomplete ``initial_budget``.
    """

    name = "DynamicRiskBudget"

    def __init__(self, assets, asset_classes=None, **kwargs: Any) -> None:
        own, base = DynamicParams.split(kwargs)
        super().__init__(assets, asset_classes, **base)
        p = DynamicParams(**own)
        self.params = p
        self._set_rules(p)
        self._set_budgets(p)
        self._set_estimators(p)
        self._reset_state()

    def _set_rules(self, p: DynamicParams) -> None:
        """Triggers, smoothing, tilts, solver and overlay settings (validated by ``p``)."""
        from indicators.triggers import RegimePersistence

        lo, hi = p.smoothing_bounds
        self.smoothing = p.smoothing
        self.smoothing_kw = {
            "scale": float(p.smoothing_scale),
            "base": float(p.smoothing_base),
            "amplitude": float(p.smoothing_amplitude),
            "lower": float(lo),
            "upper": float(hi),
        }
        self.cooldown = int(p.cooldown)
        self.eigen_threshold = float(p.eigen_threshold)
        self.rc_threshold = float(p.rc_threshold)
        self.regime_trigger = bool(p.regime_trigger)
        self.conditional_triggers = bool(p.conditional_triggers)
        self.min_trade = float(p.min_trade)
        self.defensive_correlation = bool(p.defensive_correlation)
        try:
            self.persistence = RegimePersistence(p.regime_persistence)
        except DataError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        self.anticipation = float(p.anticipation)
        self.momentum_window = int(p.momentum_window)
        self.tilt_kw = {"strength": float(p.tilt_strength), "max_tilt": float(p.max_tilt), "floor": float(p.budget_floor)}
        self.solver = p.solver
        self.tau = float(p.tau)
        self.target_vol = p.target_vol
        self.max_leverage = float(p.max_leverage)
        self.bounds = _bounds_array(p.weight_bounds, self.assets, self.classes)

    def _set_budgets(self, p: DynamicParams) -> None:
        """The regime budget matrix by asset and the initial budget in force."""
        unknown = set(self.classes) - set(CLASSES)
        if unknown:
            raise ConfigError(f"{self.name}: unknown asset class '{sorted(unknown)[0]}' (known: {', '.join(CLASSES)})")
        bm = make_budget_matrix(p.budget_matrix)
        self.matrix = np.vstack([class_to_asset_budget(bm.loc[r], self.classes) for r in REGIMES])
        init = dict(p.initial_budget) if p.initial_budget else dict(INITIAL_BUDGET)
        if set(init) <= set(CLASSES):
            b0 = class_to_asset_budget({c: float(init.get(c, 0.0)) for c in CLASSES}, self.classes)
        else:
            missing = [a for a in self.assets if a not in init]
            if missing:
                raise ConfigError(f"initial_budget: give every class or every asset; '{missing[0]}' is missing")
            b0 = np.array([float(init[a]) for a in self.assets])
            b0 = b0 / b0.sum()
        self.budget_now = b0
        self.budget_target = b0.copy()
        self.lam = math.nan

    def _set_estimators(self, p: DynamicParams) -> None:
        """Risk model, volatility-state and cycle classifiers, Markov counts, valuation scores."""
        from indicators import (
            CycleClassifier,
            MarkovTransitionEstimator,
            RiskModel,
            VolatilityStateClassifier,
        )

        self.risk = RiskModel(
            self.n,
            method=p.risk_model,
            window=p.risk_window,
            min_window=p.risk_min_window,
            refit_every=p.refit_every,
            dist=p.dist,
            sample_window=20,
        )
        self._fallback_cov_window = max(self.n + 2, 20)
        self.vol_classifier = VolatilityStateClassifier(
            lookback=p.vol_lookback,
            method="tercile" if p.vol_thresholds is None else "thresholds",
            thresholds=None if p.vol_thresholds is None else tuple(p.vol_thresholds),
            min_periods=min(252, p.vol_lookback),
            hysteresis=float(p.vol_hysteresis),
        )
        self.macro = _check_macro(p.macro)
        spec, self.macro_notes = None, []
        if self.macro is not None:  # selects and checks the columns, warns (indicators.macro)
            from indicators.macro import prepare_macro

            transforms = p.macro_transforms
            if transforms is None:  # a data set that documents its own table (the demo's)
                transforms = self.macro.attrs.get("macro_transforms")
            self.macro, spec = prepare_macro(self.macro, transforms)
            self.macro_notes = list(spec.notes)
        self.cycle = CycleClassifier(
            k=p.cycle_k, publication_lag=p.publication_lag, spec=spec, stale_months=p.macro_stale_months
        )
        self.markov = MarkovTransitionEstimator(list(REGIMES))
        if self.macro is not None:
            for ref, row in zip(self.macro.index, self.macro.to_numpy(dtype=float)):
                self.cycle.add_macro(ref, row)
        self.valuation = _check_valuation(p.valuation, self.assets)

    def _reset_state(self) -> None:
        """The per-run state: signals, references of the triggers, logs and counters."""
        eq = [i for i, c in enumerate(self.classes) if c == "equity"]
        self._equity_idx = eq[0] if eq else 0
        self.vol_source = "vol_index"
        self.cycle_source = "macro" if self.macro is not None else "price_proxy"
        self._warned: set[str] = set()
        self._vix_sum = 0.0
        self._vix_n = 0
        self.phase: str | None = None
        self.vol_state: str | None = None
        self.raw_regime: str | None = None
        self.regime: str | None = None
        self.ref_regime: str | None = None
        self.ref_eigen: float | None = None
        self.cov_ref: np.ndarray | None = None
        self.rc_ref: np.ndarray | None = None
        self._rc_ref_pending = False
        self._budget_bar: int | None = None
        self._undo: tuple | None = None
        self.skipped: list[dict[str, Any]] = []
        self.fits_by_year: dict[str, list[int]] = {}
        self.defensive_shifts = 0
        self._event = ""
        self.solver_fallbacks = 0
        self.bounded_solves = 0
        self.solver_notes: list[str] = []
        self._prev_w: np.ndarray | None = None
        self._price_index_level = 1.0

    # ------------------------------------------------------------------------------ per bar
    def _on_bar(self, ret: np.ndarray | None) -> None:
        if ret is not None:
            risk = self.risk
            refits = int(getattr(risk, "n_refits", 0))
            risk.update(ret)
            # Fits (and failed fits) only happen at a refit: the failed count (a sum over the
            # tally, ~2 us) is read only when the refit count moved, not twice every bar. The
            # failures recorded so far are the sum over the years (the model starts at zero).
            after = int(getattr(risk, "n_refits", 0))
            if after != refits and self.date is not None:
                failed = int(getattr(risk, "n_failed_fits", 0))
                seen = sum(v[1] for v in self.fits_by_year.values())
                year = self.fits_by_year.setdefault(str(self.date.year), [0, 0])
                year[0] += after - refits
                year[1] += failed - seen
            self._price_index_level *= 1.0 + float(ret[self._equity_idx])
        self._update_vol_state()
        self._update_cycle()
        if self.phase is not None and self.vol_state is not None:
            self.raw_regime = f"{self.phase}/{self.vol_state}"
            self.regime = self.persistence.update(self.raw_regime)
            self.markov.update(self.regime)

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(msg, SignalFallbackWarning, stacklevel=3)

    def _update_vol_state(self) -> None:
        value = self.vol_index
        if math.isfinite(value) and value > 0:
            src = "vol_index"
        else:
            vol = self.risk.vol if self.risk.ready else None
            if vol is None:
                r = self.returns(self._fallback_cov_window)
                if r.shape[0] < 5:
                    return
                value = float(r[:, self._equity_idx].std(ddof=1) * math.sqrt(PERIODS_PER_YEAR) * 100.0)
            else:
                value = float(vol[self._equity_idx] * 100.0)
            src = "egarch_equity"
            self._warn_once(
                "vol",
                "no implied-volatility index at some bars: the equity asset's conditional volatility "
                "(EGARCH, annualized %) stands in for the volatility state and the smoothing lambda",
            )
        self.vol_source = src
        self._vix_sum += value
        self._vix_n += 1
        self._vix_now = value
        self.vol_state = self.vol_classifier.update(value)

    def _update_cycle(self) -> None:
        assert self.date is not None
        # The classifier holds every macro month back until it is published (publication lag) and
        # falls back to the price proxy (equity trend) while no macro phase is known, warning once.
        self.phase = self.cycle.update(self.date, equity_close=self._price_index_level)
        if self.cycle.source is not None:
            self.cycle_source = self.cycle.source

    # ------------------------------------------------------------------------------ estimates
    def covariance(self) -> np.ndarray | None:
        if self.risk.ready:
            return self.risk.cov
        return super().covariance()

    def _correlation_eigen(self, cov: np.ndarray) -> float:
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        return float(np.linalg.eigvalsh(corr)[-1])

    # ------------------------------------------------------------------------------ triggers
    def decide(self, weights: np.ndarray | None):
        self._event = ""
        if self._rc_ref_pending and weights is not None and self.cov_ref is not None:
            # The first close after a rebalance's fill: the reference risk contributions of the
            # holdings, under the covariance frozen at the decision.
            w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
            if w.sum() > 0:
                from strategies.core.risk import risk_contributions

                self.rc_ref = risk_contributions(w / w.sum(), self.cov_ref, relative=True)
                self._rc_ref_pending = False
        decision = super().decide(weights)
        if decision is not None:
            self._event = decision.trigger
        return decision

    def triggers(self, weights: np.ndarray) -> list[str]:
        fired = []
        if self.period_start:
            fired.append("periodic")
        if not self.conditional_triggers:
            return fired
        last = max((b for b in (self.last_rebalance_bar, self.last_check_bar) if b is not None), default=None)
        cooling = last is not None and self.bar - last < self.cooldown
        if cooling and not fired:
            return []
        if self.regime_trigger and self.regime is not None and self.ref_regime is not None and self.regime != self.ref_regime:
            fired.append("regime")
        cov = self.covariance()
        if cov is not None and self.n > 1:
            if self.ref_eigen is not None:
                eig = self._correlation_eigen(cov)
                if abs(eig / self.ref_eigen - 1.0) > self.eigen_threshold:
                    fired.append("eigenvalue")
            w = np.clip(weights, 0.0, None)
            if w.sum() > 0 and self.rc_ref is not None and not self._rc_ref_pending:
                from indicators.triggers import rc_drift_trigger

                if rc_drift_trigger(w / w.sum(), self.cov_ref, self.rc_ref, self.rc_threshold):
                    fired.append("rc_deviation")
        return fired

    def _skip(self, fired: list[str], target: np.ndarray, weights: np.ndarray) -> bool:
        """Skip a conditional rebalance whose capped one-way turnover is below ``min_trade``."""
        if "periodic" in fired or self.min_trade <= 0:
            return False
        from strategies.execution import capped_turnover

        total_cap, asset_cap, buffer = self.exec_caps
        turnover = capped_turnover(weights, target, total_cap, asset_cap, buffer)
        if turnover >= self.min_trade:
            return False
        # Undo this bar's budget update: the budget keeps moving with time from its last update.
        self.budget_now, self.lam, self._prev_w, self._budget_bar = self._undo
        trig = "+".join(t for t in ("regime", "eigenvalue", "rc_deviation") if t in fired)
        self.skipped.append({"date": self.date, "trigger": trig, "turnover": float(turnover)})
        self._event = f"skipped:{trig}"
        # The new information has been looked at: later bars compare with it.
        self.ref_regime = self.regime
        w = np.clip(weights, 0.0, None)
        if self.cov_ref is not None and not self._rc_ref_pending and w.sum() > 0:
            from strategies.core.risk import risk_contributions

            self.rc_ref = risk_contributions(w / w.sum(), self.cov_ref, relative=True)
        cov = self.covariance()
        if cov is not None and self.n > 1:
            self.ref_eigen = self._correlation_eigen(cov)
        return True

    # ------------------------------------------------------------------------------ targets
    def _momentum_score(self) -> np.ndarray | None:
        r = self.returns(self.momentum_window)
        if self.momentum_window == 0 or r.shape[0] < max(20, self.momentum_window // 2):
            return None
        sd = r.std(axis=0, ddof=1)
        if np.any(sd <= 0):
            return None
        return r.mean(axis=0) / sd

    def _valuation_score(self) -> np.ndarray | None:
        if self.valuation is None or self.date is None:
            return None
        known = self.valuation.loc[: self.date]
        if known.empty:
            return None
        row = known.iloc[-1].to_numpy(dtype=float)
        return row if np.all(np.isfinite(row)) else None

    def target_budget(self) -> np.ndarray:
        """b*(t): the regime's budget (with anticipation), tilted; the initial budget before a regime."""
        if self.regime is None:
            base = self.budget_now.copy()
        else:
            rid = REGIMES.index(self.regime)
            row = self.markov.row(self.regime).reindex(list(REGIMES)).to_numpy(dtype=float) if self.anticipation > 0 else None
            base = anticipated_budget(self.matrix, rid, row, self.anticipation)
            if self.defensive_correlation and self.regime.endswith("/high"):
                base = self._defensive(base, rid)
        return apply_tilts(base, [self._momentum_score(), self._valuation_score()], **self.tilt_kw)

    def stock_bond_correlation(self) -> float:
        """Mean correlation of the equity asset with the bond assets under the risk model (NaN if
        there is no equity or bond asset or no covariance yet)."""
        eq = [i for i, c in enumerate(self.classes) if c == "equity"]
        bd = [i for i, c in enumerate(self.classes) if c == "bond"]
        cov = self.covariance()
        if not eq or not bd or cov is None:
            return math.nan
        sd = np.sqrt(np.diag(cov))
        return float(np.mean([cov[eq[0], j] / (sd[eq[0]] * sd[j]) for j in bd]))

    def _defensive(self, base: np.ndarray, rid: int) -> np.ndarray:
        """High-volatility budget without the move into bonds while stocks and bonds co-move."""
        if not self.stock_bond_correlation() > 0:
            return base
        bond = np.array([c == "bond" for c in self.classes])
        medium = self.matrix[rid - 1]  # the same phase's medium-volatility cell
        cap = medium[bond].sum()
        excess = base[bond].sum() - cap
        if excess <= 0 or bond.all():
            return base
        out = base.copy()
        out[bond] *= cap / base[bond].sum()
        out[~bond] += excess * base[~bond] / base[~bond].sum()
        self.defensive_shifts += 1
        return out

    def current_lambda(self) -> float:
        if not isinstance(self.smoothing, str):
            return float(self.smoothing)
        mean = self._vix_sum / self._vix_n if self._vix_n else math.nan
        return smoothing_lambda(getattr(self, "_vix_now", math.nan), mean, **self.smoothing_kw)

    def _solve(self, cov: np.ndarray, budget: np.ndarray) -> np.ndarray:
        from strategies.core.solvers import risk_budget_weights, sharpe_risk_budget_weights

        try:
            if self.solver == "sharpe_band":
                r = self.returns(self.momentum_window)
                mu = r.mean(axis=0) * PERIODS_PER_YEAR if r.shape[0] >= 20 else np.zeros(self.n)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", SolverFallbackWarning)
                    w = sharpe_risk_budget_weights(cov, mu, budget, self.tau)
                if any(issubclass(c.category, SolverFallbackWarning) for c in caught):
                    self.solver_fallbacks += 1
                    self.solver_notes.append(f"{self.date.date()}: banded Sharpe failed, exact risk budget used")
                return np.asarray(w, dtype=float)
            if self.bounds is not None:
                res = risk_budget_weights(cov, budget, bounds=self.bounds, return_info=True)
                if not res.exact:
                    self.bounded_solves += 1
                return np.asarray(res.weights, dtype=float)
            return np.asarray(risk_budget_weights(cov, budget, x0=self._prev_w), dtype=float)
        except SolverError as exc:
            # Logged fallback chain (DESIGN section 7): previous weights, then inverse volatility.
            self.solver_fallbacks += 1
            if self._prev_w is not None:
                self.solver_notes.append(f"{self.date.date()}: solver failed ({exc}); previous weights kept")
                return self._prev_w.copy()
            self.solver_notes.append(f"{self.date.date()}: solver failed ({exc}); inverse volatility used")
            iv = 1.0 / np.sqrt(np.diag(cov))
            return iv / iv.sum()

    def target_weights(self) -> np.ndarray:
        cov = self.covariance()
        self._undo = (self.budget_now.copy(), self.lam, self._prev_w, self._budget_bar)
        self.budget_target = self.target_budget()
        self.lam = self.current_lambda()
        # Smoothing per unit of time: over k bars since the last update the old budget keeps the
        # weight (1 - lambda)^(k/21) (the first update counts as one month).
        k = BARS_PER_MONTH if self._budget_bar is None else self.bar - self._budget_bar
        lam_k = 1.0 - (1.0 - self.lam) ** (k / BARS_PER_MONTH)
        self.budget_now = smooth_budget(self.budget_now, self.budget_target, lam_k)
        self._budget_bar = self.bar
        if cov is None:
            return np.full(self.n, 1.0 / self.n)
        w = self._solve(cov, self.budget_now)
        self._prev_w = w.copy()
        if self.target_vol is not None:
            from strategies.core.weights import target_volatility_scale

            w = w * float(target_volatility_scale(w, cov, self.target_vol, self.max_leverage))
        return w

    def _after_rebalance(self, decision: Decision) -> None:
        self.ref_regime = self.regime
        cov = self.covariance()
        if cov is not None and self.n > 1:
            self.ref_eigen = self._correlation_eigen(cov)
            self.cov_ref = np.array(cov, copy=True)
            self._rc_ref_pending = True

    def decision_info(self) -> dict[str, Any]:
        return {"regime": self.regime, "lambda": self.lam, "budget": self.budget_now.copy()}

    def budget(self) -> np.ndarray:
        return self.budget_now.copy()

    def snapshot(self) -> dict[str, Any]:
        """Diagnostics of the current bar (for the recorders)."""
        return {
            "phase": self.phase,
            "vol_state": self.vol_state,
            "regime": self.regime,
            "lambda": self.lam,
            "decision": self._event,
            "cycle_source": self.cycle_source,
            "vol_source": self.vol_source,
            "budget_target": self.budget_target,
            "budget": self.budget_now,
        }

    def report(self) -> dict[str, Any]:
        """Counts for run.json: refits (and ``[refits, failed]`` per year), failed fits, solver
        fallbacks, signal sources, the skipped conditional rebalances and defensive shifts."""
        return {
            "risk_model_refits": int(getattr(self.risk, "n_refits", 0)),
            "risk_model_failed_fits": int(getattr(self.risk, "n_failed_fits", 0)),
            "risk_model_fits_by_year": {y: list(v) for y, v in self.fits_by_year.items()},
            "solver_fallbacks": self.solver_fallbacks,
            "bounded_inexact_solves": self.bounded_solves,
            "solver_notes": self.solver_notes[:50],
            "cycle_source": self.cycle_source,
            "vol_source": self.vol_source,
            "macro_notes": list(getattr(self, "macro_notes", [])) + self.cycle.notes,
            "macro_dropped": dict(self.cycle.dropped),
            "skipped_rebalances": len(self.skipped),
            "skipped": [
                {"date": str(s["date"].date()), "trigger": s["trigger"], "turnover": round(s["turnover"], 6)}
                for s in self.skipped
            ],
            "defensive_shifts": self.defensive_shifts,
        }


def _bounds_array(
    spec: Mapping[str, tuple[float, float]] | None, assets: list[str], classes: list[str]
) -> np.ndarray | None:
    """(n, 2) weight bounds from ``{asset or class: (low, high)}``; unnamed assets get (0, 1)."""
    if not spec:
        return None
    out = np.tile([0.0, 1.0], (len(assets), 1))
    for key, pair in spec.items():
        try:
            lo, hi = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"weight_bounds['{key}']: expected (low, high), got {pair!r}") from None
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"weight_bounds['{key}']: need 0 <= low <= high <= 1, got ({lo}, {hi})")
        idx = [i for i, a in enumerate(assets) if a == key] or [i for i, c in enumerate(classes) if c == key]
        if not idx:
            raise ConfigError(f"weight_bounds: '{key}' is neither an asset nor an asset class of this run")
        out[idx] = (lo, hi)
    if out[:, 0].sum() > 1.0 + 1e-12 or out[:, 1].sum() < 1.0 - 1e-12:
        raise ConfigError("weight_bounds: infeasible (lower bounds sum above 1 or upper bounds below 1)")
    return out


def _check_macro(macro: pd.DataFrame | None) -> pd.DataFrame | None:
    if macro is None:
        return None
    if not isinstance(macro, pd.DataFrame) or not isinstance(macro.index, pd.DatetimeIndex):
        raise DataError("macro: expected a DataFrame indexed by reference month (DatetimeIndex)")
    if macro.empty:
        return None
    m = macro.copy()
    m.index = m.index.to_period("M").to_timestamp()
    return m.sort_index()


def _check_valuation(valuation: pd.DataFrame | None, assets: list[str]) -> pd.DataFrame | None:
    if valuation is None:
        return None
    if not isinstance(valuation, pd.DataFrame) or not isinstance(valuation.index, pd.DatetimeIndex):
        raise DataError("valuation: expected a DataFrame with a DatetimeIndex and one column per asset")
    missing = [a for a in assets if a not in valuation.columns]
    if missing:
        raise DataError(f"valuation: no column for asset '{missing[0]}'")
    return valuation[assets].sort_index()

