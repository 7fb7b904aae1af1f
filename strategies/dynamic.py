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
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import (
    ConfigError,
    DataError,
    SignalFallbackWarning,
    SolverError,
    SolverFallbackWarning,
)
from strategies.allocators import PERIODS_PER_YEAR, Allocator, Decision
from strategies.budget import (
    CLASSES,
    INITIAL_BUDGET,
    REGIMES,
    anticipated_budget,
    apply_tilts,
    class_to_asset_budget,
    smooth_budget,
    smoothing_lambda,
)
from strategies.budget import budget_matrix as make_budget_matrix

__all__ = ["DynamicRiskBudgetAllocator"]

#: Bars per month of the smoothing rule (lambda is a monthly rate).
BARS_PER_MONTH = 21


class DynamicRiskBudgetAllocator(Allocator):
    """Dual-layer dynamic risk budgeting (see the module docstring).

    Parameters
    ----------
    assets, asset_classes, warmup, rebalance, cov_window
        As :class:`~strategies.allocators.Allocator`.
    macro : DataFrame, optional
        Monthly leading indicators indexed by reference month; each month is used only once
        published (``publication_lag`` months after it ends). None: the price proxy stands in.
    valuation : DataFrame, optional
        Daily valuation scores per asset (higher = cheaper); tilts budgets when given. Only rows
        dated on or before the bar are read.
    budget_matrix : mapping or DataFrame, optional
        Overrides rows of the 12 x 4 regime -> class budget matrix.
    initial_budget : mapping, optional
        Budget by class (or asset) before the first rebalance (default 40/30/15/15).
    anticipation : float in [0, 1]
        Weight of the expected next-regime budget under the Markov transition matrix.
    momentum_window : int
        Bars of the risk-adjusted momentum score (default 126).
    tilt_strength, max_tilt, budget_floor : float
        Tactical tilt per cross-sectional z-score (budget points), bound per tilt, floor after.
    smoothing : "vix" or float
        Adaptive lambda from the volatility index (``"vix"``) or a constant lambda.
    smoothing_scale, smoothing_base, smoothing_amplitude, smoothing_bounds
        lambda = base + amplitude * sigmoid((VIX - mean VIX) / scale), clipped to the bounds.
    cooldown : int
        Bars after a rebalance (or a skipped one) during which conditional triggers are ignored.
    eigen_threshold, rc_threshold : float
        Relative change of the largest correlation eigenvalue since the last rebalance; absolute
        movement of a relative risk contribution since the last rebalance, both the holdings
        right after it and today's drifted weights measured under the covariance frozen at it.
    regime_trigger : bool
        Rebalance on a (persisted) regime change.
    conditional_triggers : bool
        True: the regime, eigenvalue and risk-contribution triggers may rebalance between periodic
        dates. Default False: on the calibration span of the real US data (to 2016) they did not
        beat the periodic-only model (README, "The dynamic model on real US data").
    regime_persistence : int
        Bars a new regime must persist before it is the regime in force (triggers, target budget,
        Markov counts); 1 = at once.
    vol_hysteresis : float
        Band of the volatility state around the terciles, in quantile points (see
        :class:`indicators.regimes.VolatilityStateClassifier`); 0 = none.
    min_trade : float
        A conditional rebalance whose one-way turnover after the caps is below this is skipped and
        logged (``skipped`` in :meth:`report`, ``decision`` in the budget log); 0 = never.
    defensive_correlation : bool
        When the stock-bond correlation of the risk model (DCC by default) is positive, a
        high-volatility cell gives bonds no more budget than the same phase's medium-volatility
        cell; the difference goes to the other classes pro rata.
    risk_model : str
        ``egarch_dcc`` (default), ``sample``, ``ewma`` or ``ledoit_wolf``.
    risk_window, risk_min_window, refit_every, dist
        EGARCH-DCC trailing window, minimum history, refit period (bars) and innovation law.
    solver : str
        ``exact`` risk budgeting or ``sharpe_band`` (max Sharpe with |RC/sigma^2 - b| <= tau).
    tau : float
        Band of the ``sharpe_band`` solver.
    target_vol : float, optional
        Volatility-target overlay: scale weights by target / sigma(w), capped at ``max_leverage``.
    max_leverage : float
        Cap of the overlay, in (0, 1]: the broker cannot borrow, the rest stays in cash.
    weight_bounds : mapping, optional
        ``{asset or class: (low, high)}`` weight bounds of the solver; when the budget cannot be met
        within them the closest feasible point is used (and counted in the run's report).
    cycle_k, publication_lag, vol_lookback, vol_thresholds
        Cycle direction window (months), macro publication lag (months), trailing window of the
        volatility-state terciles (bars) or fixed thresholds (low/medium, medium/high).
    macro_transforms : mapping, optional
        ``{column: "level" | "diff" | "yoy" | "logdiff"}``, a leading ``-`` flipping the sign (the
        config's ``[macro]`` table; see :mod:`indicators.macro`). None: the table the macro frame
        carries in ``macro.attrs["macro_transforms"]`` (the embedded market's), else every column
        as a level, with one warning naming the columns that look non-stationary.
    macro_stale_months : int or None
        A macro series whose last value is more than this many months old leaves the indicator.
    """

    name = "DynamicRiskBudget"

    def __init__(
        self,
        assets,
        asset_classes=None,
        *,
        macro: pd.DataFrame | None = None,
        valuation: pd.DataFrame | None = None,
        budget_matrix: Mapping[str, Mapping[str, float]] | pd.DataFrame | None = None,
        initial_budget: Mapping[str, float] | None = None,
        anticipation: float = 0.0,
        momentum_window: int = 126,
        tilt_strength: float = 0.025,
        max_tilt: float = 0.05,
        budget_floor: float = 0.02,
        smoothing: str | float = "vix",
        smoothing_scale: float = 1.0,
        smoothing_base: float = 0.05,
        smoothing_amplitude: float = 0.2,
        smoothing_bounds: tuple[float, float] = (0.05, 0.35),
        cooldown: int = 10,
        eigen_threshold: float = 0.15,
        rc_threshold: float = 0.10,
        regime_trigger: bool = False,
        conditional_triggers: bool = False,
        regime_persistence: int = 10,
        vol_hysteresis: float = 0.1,
        min_trade: float = 0.05,
        defensive_correlation: bool = False,
        risk_model: str = "egarch_dcc",
        risk_window: int = 750,
        risk_min_window: int = 250,
        refit_every: int = 21,
        dist: str = "t",
        solver: str = "exact",
        tau: float = 0.02,
        target_vol: float | None = None,
        max_leverage: float = 1.0,
        weight_bounds: Mapping[str, tuple[float, float]] | None = None,
        cycle_k: int = 3,
        publication_lag: int = 1,
        vol_lookback: int = 756,
        vol_thresholds: tuple[float, float] | None = None,
        macro_transforms: Mapping[str, str] | None = None,
        macro_stale_months: int | None = 3,
        **kw: Any,
    ) -> None:
        super().__init__(assets, asset_classes, **kw)
        from indicators import (
            CycleClassifier,
            MarkovTransitionEstimator,
            RiskModel,
            VolatilityStateClassifier,
        )

        if not 0.0 <= anticipation <= 1.0:
            raise ConfigError(f"anticipation must be in [0, 1], got {anticipation}")
        if solver not in ("exact", "sharpe_band"):
            raise ConfigError(f"solver must be 'exact' or 'sharpe_band', got {solver!r}")
        if isinstance(smoothing, str):
            if smoothing != "vix":
                raise ConfigError(f"smoothing must be 'vix' or a constant in (0, 1], got {smoothing!r}")
        elif not 0.0 < float(smoothing) <= 1.0:
            raise ConfigError(f"smoothing must be 'vix' or a constant in (0, 1], got {smoothing!r}")
        lo, hi = smoothing_bounds
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"smoothing_bounds must satisfy 0 <= low <= high <= 1, got {smoothing_bounds}")
        for nm, v in (("cooldown", cooldown), ("momentum_window", momentum_window)):
            if int(v) < 0:
                raise ConfigError(f"{nm} must be >= 0, got {v}")
        self.smoothing = smoothing
        self.smoothing_kw = {
            "scale": float(smoothing_scale),
            "base": float(smoothing_base),
            "amplitude": float(smoothing_amplitude),
            "lower": float(lo),
            "upper": float(hi),
        }
        self.cooldown = int(cooldown)
        self.eigen_threshold = float(eigen_threshold)
        self.rc_threshold = float(rc_threshold)
        self.regime_trigger = bool(regime_trigger)
        self.conditional_triggers = bool(conditional_triggers)
        if not 0.0 <= float(min_trade) < 1.0:
            raise ConfigError(f"{self.name}: min_trade must be in [0, 1), got {min_trade}")
        self.min_trade = float(min_trade)
        self.defensive_correlation = bool(defensive_correlation)
        from indicators.triggers import RegimePersistence

        try:
            self.persistence = RegimePersistence(regime_persistence)
        except DataError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        self.anticipation = float(anticipation)
        self.momentum_window = int(momentum_window)
        self.tilt_kw = {"strength": float(tilt_strength), "max_tilt": float(max_tilt), "floor": float(budget_floor)}
        self.solver = solver
        self.tau = float(tau)
        if target_vol is not None and not target_vol > 0:
            raise ConfigError(f"{self.name}: target_vol must be > 0, got {target_vol}")
        if not 0.0 < max_leverage <= 1.0:
            raise ConfigError(
                f"{self.name}: max_leverage must be in (0, 1], got {max_leverage} (the backtrader "
                "broker and the fast path trade from cash and cannot borrow)"
            )
        self.target_vol = target_vol
        self.max_leverage = float(max_leverage)
        self.bounds = _bounds_array(weight_bounds, self.assets, self.classes)

        # Budgets ---------------------------------------------------------------------------
        classes_present = set(self.classes)
        unknown = classes_present - set(CLASSES)
        if unknown:
            raise ConfigError(f"{self.name}: unknown asset class '{sorted(unknown)[0]}' (known: {', '.join(CLASSES)})")
        bm = make_budget_matrix(budget_matrix)
        self.matrix = np.vstack([class_to_asset_budget(bm.loc[r], self.classes) for r in REGIMES])
        init = dict(initial_budget) if initial_budget else dict(INITIAL_BUDGET)
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

        # Estimators ------------------------------------------------------------------------
        self.risk = RiskModel(
            self.n,
            method=risk_model,
            window=risk_window,
            min_window=risk_min_window,
            refit_every=refit_every,
            dist=dist,
            sample_window=20,
        )
        self._fallback_cov_window = max(self.n + 2, 20)
        self.vol_classifier = VolatilityStateClassifier(
            lookback=vol_lookback,
            method="tercile" if vol_thresholds is None else "thresholds",
            thresholds=None if vol_thresholds is None else tuple(vol_thresholds),
            min_periods=min(252, vol_lookback),
            hysteresis=float(vol_hysteresis),
        )
        self.macro = _check_macro(macro)
        spec, self.macro_notes = None, []
        if self.macro is not None:  # selects and checks the columns, warns (indicators.macro)
            from indicators.macro import prepare_macro

            if macro_transforms is None:  # a data set that documents its own table (the demo's)
                macro_transforms = self.macro.attrs.get("macro_transforms")
            self.macro, spec = prepare_macro(self.macro, macro_transforms)
            self.macro_notes = list(spec.notes)
        self.cycle = CycleClassifier(
            k=cycle_k, publication_lag=publication_lag, spec=spec, stale_months=macro_stale_months
        )
        self.markov = MarkovTransitionEstimator(list(REGIMES))
        if self.macro is not None:
            for ref, row in zip(self.macro.index, self.macro.to_numpy(dtype=float)):
                self.cycle.add_macro(ref, row)
        self.valuation = _check_valuation(valuation, self.assets)
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
                from strategies.risk import risk_contributions

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
            from strategies.risk import risk_contributions

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
        from strategies.solvers import risk_budget_weights, sharpe_risk_budget_weights

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
            from strategies.weights import target_volatility_scale

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

