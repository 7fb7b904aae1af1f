"""Time-axis risk contributions of a backtrader strategy: the backtrader analyzer.

The math lives in :mod:`strategies.time_axis` (pure numpy); this analyzer records what a backtest
held and how risky it was ex ante (:mod:`runners.experiments.time_risk` summarizes and plots it).

For each bar ``t`` (after the strategy's ``next``) the analyzer records the money position of every
data feed, ``theta_{i,t} = size_i * close_{i,t}`` (currency), and an ex-ante covariance ``Sigma_t`` of
the feeds' *next-bar* simple returns built from information up to ``t`` only. The contributions are

    c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i        (currency^2, per bar)

so that ``sum_i c_{i,t}`` is the ex-ante variance of the next bar's P&L and ``sum_{i,t} c_{i,t}`` the
ex-ante variance of the cumulative P&L (aggregation property, zero-drift reference measure).
"""

from __future__ import annotations

from collections.abc import Callable

import backtrader as bt
import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError
from strategies.time_axis import ewma_covariances, time_risk_contributions

__all__ = ["TimeRiskContribution", "CovarianceFn"]

CovarianceFn = Callable[[np.ndarray], np.ndarray]
"""``f(returns_so_far (t, n)) -> (n, n)`` per-bar covariance of the next bar's simple returns."""


class TimeRiskContribution(bt.Analyzer):
    """Record money positions and ex-ante covariances; decompose the variance over assets and bars.

    Params
    ------
    lam : float
        EWMA decay of the default covariance (RiskMetrics 0.94, zero mean):
        ``S_t = sum_{s<=t} lam^(t-s) r_s r_s' / sum_{s<=t} lam^(t-s)``, i.e. the recursion
        ``S_t = lam S_{t-1} + (1 - lam) r_t r_t'`` with bias-corrected start-up weights, ``r_s`` the
        feeds' simple close-to-close returns up to and including bar ``t`` (causal; the forecast for
        bar ``t + 1``; see :func:`strategies.time_axis.ewma_covariances`).
    covariance : callable or None
        Replaces the EWMA: called on every bar with the array of returns so far, shape (t, n), it
        returns the per-bar (not annualized) covariance of the next bar's returns, shape (n, n).
        ``None`` on bars with fewer than ``min_periods`` returns.
    min_periods : int
        Bars with fewer returns than this are not reported (default 20).
    scale : {"money", "weight"}
        ``"money"`` (default): positions in currency, contributions in currency^2. ``"weight"``:
        positions divided by the portfolio value of the bar (the source's price regularization),
        contributions in return^2; use it to compare strategies whose wealth grows differently.

    Notes
    -----
    The position recorded at bar ``t`` is the one held at its close; orders sent at ``t`` fill at the
    next open, so the exposure over ``(t, t+1]`` differs from it by that fill only.

    ``get_analysis()`` returns a DataFrame of shape (T, n): index the bar dates, one column per data
    feed (its ``_name``, else ``data<i>``), values ``c_{i,t}``. ``positions``, ``values`` and
    ``covariances`` keep the recorded inputs after the run.
    """

    params = (
        ("lam", 0.94),
        ("covariance", None),
        ("min_periods", 20),
        ("scale", "money"),
    )

    def start(self) -> None:
        if self.p.scale not in ("money", "weight"):
            raise ConfigError(f"scale must be 'money' or 'weight', got {self.p.scale!r}")
        if not 0.0 < self.p.lam < 1.0:
            raise ConfigError(f"lam must be in (0, 1), got {self.p.lam!r}")
        if self.p.min_periods < 1:
            raise ConfigError(f"min_periods must be >= 1, got {self.p.min_periods!r}")
        self._names = [d._name or f"data{i}" for i, d in enumerate(self.datas)]
        self._dates: list[pd.Timestamp] = []
        self._money: list[np.ndarray] = []
        self._closes: list[np.ndarray] = []
        self._values: list[float] = []
        self._user_covs: list[np.ndarray | None] = []
        self._result: pd.DataFrame | None = None

    def next(self) -> None:
        # a feed that has not started yet gives NaN, reported as a DataError by get_analysis
        closes = np.array([d.close[0] if len(d) else np.nan for d in self.datas], dtype=float)
        sizes = np.array([self.strategy.getposition(d).size for d in self.datas], dtype=float)
        self._dates.append(pd.Timestamp(bt.num2date(self.datas[0].datetime[0])))
        self._closes.append(closes)
        self._money.append(sizes * closes)
        self._values.append(float(self.strategy.broker.getvalue()))
        if self.p.covariance is not None:
            c = np.asarray(self._closes)
            rets = c[1:] / c[:-1] - 1.0
            if rets.shape[0] >= self.p.min_periods:
                cov = np.asarray(self.p.covariance(rets), dtype=float)
                n = len(self.datas)
                if cov.shape != (n, n):
                    raise DataError(f"covariance callable returned shape {cov.shape}, expected {(n, n)}")
                self._user_covs.append(cov)
            else:
                self._user_covs.append(None)

    def _compute(self) -> pd.DataFrame:
        n = len(self.datas)
        idx = pd.DatetimeIndex(self._dates, name="date")
        if not self._dates:
            self.positions = pd.DataFrame(columns=self._names, dtype=float)
            self.values = pd.Series(dtype=float)
            self.covariances = np.empty((0, n, n))
            return pd.DataFrame(columns=self._names, dtype=float)
        money = np.asarray(self._money)
        closes = np.asarray(self._closes)
        values = np.asarray(self._values)
        if np.any(closes <= 0) or not np.all(np.isfinite(closes)):
            raise DataError("TimeRiskContribution: non-positive or non-finite close in a feed")
        rets = closes[1:] / closes[:-1] - 1.0
        covs = np.full((len(closes), n, n), np.nan)
        if self.p.covariance is None:
            if rets.shape[0]:
                covs[1:] = ewma_covariances(rets, self.p.lam, self.p.min_periods)
        else:
            for t, c in enumerate(self._user_covs):
                if c is not None:
                    covs[t] = c
        valid = np.all(np.isfinite(covs), axis=(1, 2))
        theta = money if self.p.scale == "money" else money / values[:, None]
        self.positions = pd.DataFrame(money, index=idx, columns=self._names)
        self.values = pd.Series(values, index=idx, name="value")
        self.covariances = covs
        if not valid.any():
            return pd.DataFrame(columns=self._names, dtype=float, index=idx[:0])
        contrib = time_risk_contributions(theta[valid], covs[valid], dt=1.0)
        return pd.DataFrame(contrib, index=idx[valid], columns=self._names)

    def get_analysis(self) -> pd.DataFrame:  # type: ignore[override]
        """Contributions ``c_{i,t}``, DataFrame (T, n): dates x feeds (currency^2 or return^2)."""
        if self._result is None:
            self._result = self._compute()
        return self._result
