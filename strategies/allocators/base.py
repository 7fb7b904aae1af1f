"""The allocator base: the pure decision logic of every strategy, driven one bar at a time.

An allocator sees bar t (date, closes, the volatility index) through :meth:`Allocator.update` and,
given the current drifted weights, says through :meth:`Allocator.decide` whether to rebalance and
to which weights. It imports no backtrader: the backtrader strategies in
:mod:`strategies.bt.strategies` and the plain-loop fast path in :mod:`runners.engine.fastpath` drive the
same objects, so both give the same weights on the same data.

Conventions: returns are simple daily returns of the closes; covariances are annualized (x252);
weights are decimals of portfolio value, long-only, summing to at most 1 (the rest is cash).
Nothing at bar t uses data after t: every estimator is fed incrementally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pandas as pd

from drb.cholesky import _cholesky_in_place
from drb.constants import PERIODS_PER_YEAR
from drb.errors import ConfigError, SolverError

__all__ = ["Decision", "Allocator", "check_max_leverage", "is_period_start", "PERIODS_PER_YEAR", "TRIGGER_ORDER"]

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
        lo[j, j] = s[j, j] - shift
    return _cholesky_in_place(s, lo)


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


def check_max_leverage(who: str, max_leverage: float) -> None:
    """Raise :class:`ConfigError` unless ``0 < max_leverage <= 1`` (the broker cannot borrow).

    Parameters
    ----------
    who : str
        Strategy name the message starts with.
    max_leverage : float
        Cap of a volatility-scaled exposure (decimal of portfolio value).
    """
    if not 0.0 < max_leverage <= 1.0:
        raise ConfigError(
            f"{who}: max_leverage must be in (0, 1], got {max_leverage} (the backtrader "
            "broker and the fast path trade from cash and cannot borrow)"
        )


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
