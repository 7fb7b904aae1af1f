"""The daily risk model: online (bar by bar, explicit state) and vectorized (whole path) versions.

Conventions
-----------
* Input: one row of **decimal simple returns** per bar (``close_t / close_{t-1} - 1``), shape (n,).
* Output at bar ``t`` (after ``update`` with the bar-``t`` returns): the forecast for bar ``t + 1``,
  **annualized** (``* periods_per_year``; vol ``* sqrt(periods_per_year)``), decimals, positive definite.
* ``egarch_dcc``: per-asset EGARCH(1,1)-t (:mod:`indicators.egarch`) and DCC(1,1) (:mod:`indicators.dcc`)
  are first fitted when ``min_window`` returns have been seen, then refitted every ``refit_every`` bars on
  the trailing ``window`` returns (EGARCH warm-started from the previous parameters, DCC from the
  previous (a, b)); between refits the O(1) recursions filter forward with fixed parameters. Every
  EGARCH fit is counted by outcome in ``fit_stats``: ``converged``, ``boundary`` (persistence on
  its bound ``BETA_MAX = 0.999``: kept, an almost integrated log-variance) or ``failed``. A failed
  fit keeps the parameters in hand for one period (the previous ones if still plausible, else
  robust defaults), makes the asset's next refit a cold start, is counted in ``n_failed_fits``
  and warns (:class:`EstimationWarning`) at most once per asset; nothing is raised mid-backtest.
* ``sample`` / ``ewma`` / ``ledoit_wolf``: ready after ``sample_window`` returns.

The estimators are the classes of :mod:`indicators.covariance` (one interface,
:class:`~indicators.covariance.CovarianceEstimator`, named in ``ESTIMATORS``); the risk model holds one,
checks each return row, annualizes its forecast and repairs it to positive definite.

``RiskModel.update`` and :func:`rolling_risk_model` give bit-identical numbers (tested), and
``RiskModel.from_state(model.get_state())`` continues bit-identically (the state is plain JSON).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drb.errors import DataError, StateError
from drb.linalg import cov_to_corr
from indicators.covariance import (
    CovarianceEstimator,
    annualized_pd,
    covariance_path,
    make_estimator,
)

__all__ = ["RiskModel", "rolling_risk_model"]

_STATE_VERSION = 1
_CONFIG = ("window", "min_window", "refit_every", "dist", "sample_window", "ewma_lambda", "engine")


class RiskModel:
    """Online daily covariance model with explicit, JSON-serializable state.

    Parameters
    ----------
    n_assets : int
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
        Estimator name (:data:`indicators.covariance.ESTIMATORS`).
    window, min_window, refit_every : int
        EGARCH-DCC trailing fit window, first fit size and refit period, in bars.
    dist : str
        EGARCH innovation distribution (``arch`` name).
    sample_window : int
        Window of ``sample`` and ``ledoit_wolf``; EWMA start-up length.
    ewma_lambda : float
    periods_per_year : int
        Annualization factor.
    engine : {"fast", "arch"}
        EGARCH fitting engine (:func:`indicators.egarch.egarch_fit`).

    Attributes
    ----------
    estimator : CovarianceEstimator
        The estimator named ``method``.
    ready : bool
    cov : ndarray (n, n) or None
        Annualized PD covariance forecast for the next bar.
    vol : ndarray (n,) or None
        Annualized volatilities (sqrt of the diagonal of ``cov``).
    corr : ndarray (n, n) or None
    n_refits, n_failed_fits, n_boundary_fits, n_repairs : int
    fit_stats : dict
    n_updates : int
        Returns seen.
    """

    def __init__(
        self,
        n_assets: int,
        method: str = "egarch_dcc",
        window: int = 750,
        min_window: int = 250,
        refit_every: int = 21,
        dist: str = "t",
        sample_window: int = 20,
        ewma_lambda: float = 0.94,
        periods_per_year: int = 252,
        engine: str = "fast",
    ):
        if n_assets < 1 or min_window < 10 or window < min_window or refit_every < 1:
            raise DataError("RiskModel: need n_assets >= 1, 10 <= min_window <= window, refit_every >= 1")
        if sample_window < 2 or not (0.0 < ewma_lambda < 1.0):
            raise DataError("RiskModel: need sample_window >= 2 and 0 < ewma_lambda < 1")
        self.n = int(n_assets)
        self.method = method
        self.window, self.min_window, self.refit_every = int(window), int(min_window), int(refit_every)
        self.dist, self.engine = dist, engine
        self.sample_window, self.ewma_lambda = int(sample_window), float(ewma_lambda)
        self.periods_per_year = int(periods_per_year)
        self.estimator: CovarianceEstimator = make_estimator(method, self.n, **self._config())
        self.n_repairs = 0
        self.cov: np.ndarray | None = None

    def _config(self) -> dict:
        return {k: getattr(self, k) for k in _CONFIG}

    # ---------------------------------------------------------------- properties
    @property
    def n_updates(self) -> int:
        return self.estimator.n_seen

    @property
    def ready(self) -> bool:
        return self.cov is not None

    @property
    def vol(self) -> np.ndarray | None:
        return None if self.cov is None else np.sqrt(np.diag(self.cov))

    @property
    def corr(self) -> np.ndarray | None:
        return None if self.cov is None else cov_to_corr(self.cov)

    @property
    def n_refits(self) -> int:
        return self.estimator.n_refits

    @property
    def n_failed_fits(self) -> int:
        """Failed EGARCH fits (no acceptable optimum) plus failed DCC fits."""
        return self.estimator.n_failed

    @property
    def n_boundary_fits(self) -> int:
        """EGARCH fits on the persistence bound (``beta = BETA_MAX``), not counted as failed."""
        return self.estimator.n_boundary

    @property
    def fit_stats(self) -> dict:
        """Refit outcomes: ``refits``, EGARCH ``converged`` / ``boundary`` / ``failed`` / ``relaxed``
        (total over assets), ``longest_failed_run``, ``per_asset`` (keyed ``"0"``, ``"1"``...) and
        ``dcc_failed``; see :class:`indicators.egarch.RefitTally`."""
        return self.estimator.fit_stats()

    @property
    def params(self) -> dict | None:
        """Current EGARCH parameters per asset (percent scale) and DCC (a, b), or None."""
        return self.estimator.params

    # ---------------------------------------------------------------- update
    def update(self, returns_row) -> None:
        """Feed one bar of decimal simple returns, shape (n,); updates ``cov`` (forecast for next bar)."""
        r = np.asarray(returns_row, dtype=float).reshape(-1)
        if r.shape[0] != self.n:
            raise DataError(f"RiskModel.update: expected {self.n} returns, got {r.shape[0]}")
        if not np.all(np.isfinite(r)):
            raise DataError(f"RiskModel.update: non-finite return at bar {self.n_updates}: {r.tolist()}")
        self.estimator.update(r)
        raw = self.estimator.forecast()
        if raw is not None:
            self.cov, rep = annualized_pd(raw, self.periods_per_year)
            self.n_repairs += int(rep)

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict:
        """Everything needed to continue bit-identically, as JSON-serializable lists and floats."""
        return {
            "version": _STATE_VERSION,
            "config": {"n_assets": self.n, "method": self.method, "periods_per_year": self.periods_per_year,
                       **self._config()},
            "n_updates": self.n_updates,
            "n_repairs": self.n_repairs,
            **self.estimator.get_state(),
            "cov": None if self.cov is None else self.cov.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict) -> RiskModel:
        """Rebuild a model from :meth:`get_state` output (also a state of the version-1 layout
        written before the estimator classes: its extra keys are ignored)."""
        try:
            if state.get("version") != _STATE_VERSION:
                raise StateError(f"RiskModel state version {state.get('version')!r} != {_STATE_VERSION}")
            obj = cls(**state["config"])
            obj.estimator.n_seen = int(state["n_updates"])
            obj.estimator.set_state(state)
            obj.n_repairs = int(state["n_repairs"])
            obj.cov = None if state["cov"] is None else np.asarray(state["cov"], dtype=float)
        except StateError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"corrupt RiskModel state: {type(exc).__name__}: {exc}") from exc
        return obj


def rolling_risk_model(returns: pd.DataFrame | np.ndarray, method: str = "egarch_dcc", **params) -> dict:
    """Vectorized (whole-path) risk model, the same numbers as :class:`RiskModel` fed row by row.

    Parameters
    ----------
    returns : DataFrame or ndarray, shape (T, n)
        Decimal returns; leading rows containing NaN are skipped, a later NaN raises DataError.
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
    **params
        ``window``, ``min_window``, ``refit_every``, ``dist``, ``sample_window``, ``ewma_lambda``,
        ``periods_per_year``, ``engine``: as :class:`RiskModel` (same defaults).

    Returns
    -------
    dict
        ``cov`` (T, n, n), ``vol`` (T, n), ``corr`` (T, n, n) annualized (NaN before ready),
        ``ready`` (T,) bool, ``n_refits``, ``n_failed_fits``, ``n_boundary_fits``, ``fit_stats``
        (as :attr:`RiskModel.fit_stats`, per asset keyed by column name; None unless the estimator
        fits parameters (``egarch_dcc``) and some row was fed), ``n_repairs``, ``refit_rows`` (list
        of row positions where EGARCH/DCC were refitted), ``index`` (the input index or None).
    """
    index = returns.index if isinstance(returns, pd.DataFrame) else None
    path = covariance_path(returns, method, where="rolling_risk_model", **params)
    est, cov = path.estimator, path.cov
    names = None if index is None else [str(c) for c in returns.columns]
    ready = np.all(np.isfinite(cov), axis=(1, 2))
    vol = np.sqrt(np.einsum("tii->ti", cov))
    corr = cov / (vol[:, :, None] * vol[:, None, :])
    idx = np.arange(cov.shape[1])
    corr[:, idx, idx] = np.where(ready[:, None], 1.0, np.nan)
    return {
        "cov": cov,
        "n_refits": est.n_refits,
        "n_failed_fits": est.n_failed,
        "n_boundary_fits": est.n_boundary,
        "fit_stats": est.fit_stats(names) if est.fitted and path.started else None,
        "n_repairs": path.n_repairs,
        "refit_rows": path.refit_rows,
        "index": index,
        "vol": vol,
        "corr": corr,
        "ready": ready,
    }
