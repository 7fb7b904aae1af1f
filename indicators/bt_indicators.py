"""backtrader ``Indicator`` wrappers around the online estimators (``next`` mode, no look-ahead).

Each indicator drives one of the online classes bar by bar with data up to the current bar only, so
it gives the same numbers as the pure functions. Returns are close-to-close simple returns of the
feeds' ``close`` line (decimals); the first bar has no return.

* ``EGARCHVolatility(data)``: line ``vol`` = annualized one-step-ahead EGARCH volatility.
* ``RiskModelIndicator(*datas, method=...)``: lines ``ready``, ``max_eig`` (largest correlation
  eigenvalue) and ``vol0..vol{n-1}``; attributes ``cov``, ``corr``, ``vol`` (current numpy arrays or
  None) and ``model`` (the :class:`indicators.risk_model.RiskModel`, for ``get_state``).
* ``RegimeState(equity, [vol_index], macro=DataFrame)``: lines ``phase`` (0..3), ``vol_state`` (0..2),
  ``regime`` (0..11), NaN until known; attributes ``phase_label``, ``vol_label``, ``regime_label``,
  ``cycle_source`` ("macro"/"price_proxy"), ``vol_source`` ("vol_index"/"egarch_equity").
* ``MarkovTransition(regime_state)``: lines ``p0..p11`` = row of the current regime in the causal
  transition matrix (REGIMES order).
* ``RiskContribution(*datas, weights=..., method=...)``: lines ``rc0..rc{n-1}`` = relative risk
  contributions of the given weights under the current covariance.

Indicators whose line count depends on the number of feeds build (and cache) a subclass with that
many lines when instantiated; pass the feeds explicitly.
"""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np

from indicators.markov import MarkovTransitionEstimator
from indicators.regimes import (
    PHASES,
    REGIMES,
    VOL_STATES,
    CycleClassifier,
    VolatilityStateClassifier,
)
from indicators.risk_model import RiskModel
from indicators.triggers import largest_eigenvalue, relative_risk_contribution

__all__ = ["EGARCHVolatility", "RiskModelIndicator", "RegimeState", "MarkovTransition", "RiskContribution"]

_NAN = float("nan")


class _PerFeedLinesMeta(type(bt.Indicator)):
    """Metaclass hook: swap in a cached subclass with one line per feed passed positionally."""

    def doprenew(cls, *args, **kwargs):
        if cls.__dict__.get("_dynamic_done", False):
            return cls, args, kwargs
        n = sum(1 for a in args if isinstance(a, bt.LineRoot))
        cache = cls.__dict__.get("_sub_cache")
        if cache is None:
            cache = {}
            cls._sub_cache = cache
        if n not in cache:
            lines = tuple(cls._fixed_lines) + tuple(f"{cls._line_prefix}{i}" for i in range(n))
            cache[n] = type(cls)(cls.__name__, (cls,), {"lines": lines, "_dynamic_done": True, "__module__": cls.__module__})
        return cache[n], args, kwargs


def _ret(data) -> float:
    prev = data.close[-1]
    return data.close[0] / prev - 1.0


class EGARCHVolatility(bt.Indicator):
    """Annualized EGARCH(1,1) one-step-ahead volatility of one feed (line ``vol``)."""

    lines = ("vol",)
    params = (
        ("window", 750),
        ("min_window", 250),
        ("refit_every", 21),
        ("dist", "t"),
        ("periods_per_year", 252),
        ("engine", "fast"),
    )

    def __init__(self):
        p = self.p
        self.model = RiskModel(1, "egarch_dcc", p.window, p.min_window, p.refit_every, p.dist, periods_per_year=p.periods_per_year, engine=p.engine)

    def next(self):
        if len(self.data) > 1:
            self.model.update([_ret(self.data)])
        self.lines.vol[0] = float(self.model.vol[0]) if self.model.ready else _NAN


class RiskModelIndicator(bt.Indicator, metaclass=_PerFeedLinesMeta):
    """Covariance of several feeds from :class:`RiskModel` (see module docstring)."""

    _fixed_lines = ("ready", "max_eig")
    _line_prefix = "vol"
    lines = ("ready", "max_eig")
    params = (
        ("method", "egarch_dcc"),
        ("window", 750),
        ("min_window", 250),
        ("refit_every", 21),
        ("dist", "t"),
        ("sample_window", 20),
        ("ewma_lambda", 0.94),
        ("periods_per_year", 252),
        ("engine", "fast"),
    )

    def __init__(self):
        p = self.p
        self.model = RiskModel(
            len(self.datas), p.method, p.window, p.min_window, p.refit_every, p.dist, p.sample_window, p.ewma_lambda, p.periods_per_year, p.engine
        )
        self.cov = self.corr = self.vol = None

    def next(self):
        if len(self.data) > 1:
            self.model.update([_ret(d) for d in self.datas])
        m = self.model
        self.cov, self.corr, self.vol = m.cov, m.corr, m.vol
        self.lines.ready[0] = 1.0 if m.ready else 0.0
        self.lines.max_eig[0] = largest_eigenvalue(m.corr) if m.ready else _NAN
        for i in range(len(self.datas)):
            getattr(self.lines, f"vol{i}")[0] = float(m.vol[i]) if m.ready else _NAN


class RiskContribution(bt.Indicator, metaclass=_PerFeedLinesMeta):
    """Relative risk contributions of fixed ``weights`` under the feeds' current covariance."""

    _fixed_lines = ()
    _line_prefix = "rc"
    lines = ()
    params = (("weights", None), ("method", "egarch_dcc"), ("min_window", 250), ("window", 750), ("refit_every", 21), ("sample_window", 20))

    def __init__(self):
        n = len(self.datas)
        w = np.full(n, 1.0 / n) if self.p.weights is None else np.asarray(self.p.weights, dtype=float)
        self.weights = w
        p = self.p
        self.model = RiskModel(n, p.method, p.window, p.min_window, p.refit_every, sample_window=p.sample_window)

    def next(self):
        if len(self.data) > 1:
            self.model.update([_ret(d) for d in self.datas])
        rc = relative_risk_contribution(self.weights, self.model.cov) if self.model.ready else [_NAN] * len(self.datas)
        for i in range(len(self.datas)):
            getattr(self.lines, f"rc{i}")[0] = float(rc[i])


class RegimeState(bt.Indicator):
    """Phase, volatility state and regime id (see module docstring).

    Feeds: ``data0`` = equity closes; optional ``data1`` = implied-volatility index (its ``close``).
    Params: ``macro`` (monthly DataFrame, index = first day of the reference month) or None for the price
    proxy; the classifiers' parameters.
    """

    lines = ("phase", "vol_state", "regime")
    params = (
        ("macro", None),
        ("k", 3),
        ("publication_lag", 1),
        ("lookback", 756),
        ("vol_method", "tercile"),
        ("thresholds", None),
        ("min_periods", 252),
        ("egarch_min_window", 250),
        ("egarch_refit_every", 21),
    )

    def __init__(self):
        p = self.p
        self.has_index = len(self.datas) > 1
        self.cycle = CycleClassifier(k=p.k, publication_lag=p.publication_lag)
        if p.macro is not None:
            for ref, row in p.macro.iterrows():
                self.cycle.add_macro(ref, row.to_numpy(dtype=float))
        self.volclf = VolatilityStateClassifier(
            p.lookback, p.vol_method, p.thresholds, min_periods=p.min_periods, source="vol_index" if self.has_index else "egarch_equity"
        )
        self.egarch = None if self.has_index else RiskModel(1, min_window=p.egarch_min_window, refit_every=p.egarch_refit_every)
        self.phase_label = self.vol_label = self.regime_label = None
        self.cycle_source, self.vol_source = None, self.volclf.source

    def next(self):
        d = self.data0
        self.phase_label = self.cycle.update(d.datetime.date(0), d.close[0])
        self.cycle_source = self.cycle.source
        if self.has_index:
            self.vol_label = self.volclf.update(self.data1.close[0])
        else:
            if len(d) > 1:
                self.egarch.update([_ret(d)])
            self.vol_label = self.volclf.update(float(self.egarch.vol[0]) if self.egarch.ready else _NAN)
        ph, vs = self.phase_label, self.vol_label
        self.lines.phase[0] = PHASES.index(ph) if ph else _NAN
        self.lines.vol_state[0] = VOL_STATES.index(vs) if vs else _NAN
        if ph and vs:
            self.regime_label = f"{ph}/{vs}"
            self.lines.regime[0] = REGIMES.index(self.regime_label)
        else:
            self.regime_label = None
            self.lines.regime[0] = _NAN


class MarkovTransition(bt.Indicator):
    """Row P(regime_t -> j), j in REGIMES order, of the transition matrix estimated so far."""

    lines = tuple(f"p{i}" for i in range(len(REGIMES)))
    params = (("smoothing", 0.0),)

    def __init__(self):
        self.est = MarkovTransitionEstimator(REGIMES, self.p.smoothing)

    def next(self):
        rid = self.data.regime[0] if hasattr(self.data, "regime") else self.data[0]
        state = None if math.isnan(rid) else REGIMES[int(rid)]
        self.est.update(state)
        row = self.est.row(state).to_numpy() if state is not None else [_NAN] * len(REGIMES)
        for i in range(len(REGIMES)):
            getattr(self.lines, f"p{i}")[0] = float(row[i])
