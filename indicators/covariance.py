"""Covariance estimators with one interface, selectable by name; all annualized and positive definite.

Every estimator is a :class:`CovarianceEstimator`: it keeps the trailing returns it reads, is fed one
row of decimal returns per bar (:meth:`~CovarianceEstimator.update`) and gives the per-bar covariance
forecast for the next bar (:meth:`~CovarianceEstimator.forecast`, None until ready); its state is
plain attributes (numpy arrays, ints, floats), saved with the model. The names used in configs map to
the classes once, in :data:`ESTIMATORS` (:func:`make_estimator`):

* ``"egarch_dcc"`` (default, :class:`EGARCHDCCCovariance`): Sigma_t = D_t R_t D_t from per-asset
  EGARCH(1,1) volatilities (:mod:`indicators.egarch`) and DCC(1,1) correlations (:mod:`indicators.dcc`),
  refitted every ``refit_every`` bars on the trailing ``window`` returns (see :mod:`indicators.risk_model`);
* ``"sample"`` (:class:`SampleCovariance`): sample covariance of the last ``sample_window`` = 20
  returns, ddof = 1;
* ``"ewma"`` (:class:`EWMACovariance`): RiskMetrics, zero mean, ``lambda = 0.94``, started from the
  second moment of the first ``sample_window`` returns;
* ``"ledoit_wolf"`` (:class:`LedoitWolfCovariance`): Ledoit-Wolf 2004 shrinkage towards a scaled
  identity on the last ``sample_window`` returns, demeaned, as scikit-learn.

Inputs are decimal returns per bar; :func:`annualized_pd` multiplies a forecast by ``periods_per_year``
and symmetrizes and repairs it to positive definite (``drb.linalg.nearest_positive_definite``);
repairs are counted by the callers, not warned per bar. :func:`covariance_path` runs an estimator over
a whole return path. The baselines' trailing-window estimate (:func:`baseline_covariance`) is the
sample covariance, shrunk (Ledoit-Wolf) when the window is shorter than twice the number of assets
or the sample covariance is singular.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from drb.errors import DataError, EstimationWarning
from drb.linalg import is_positive_definite, nearest_positive_definite, symmetrize
from indicators.dcc import dcc_step, fit_dcc, q_to_corr
from indicators.egarch import SCALE, RefitTally, egarch_step, param_names

__all__ = [
    "METHODS",
    "ESTIMATORS",
    "CovarianceEstimator",
    "SampleCovariance",
    "EWMACovariance",
    "LedoitWolfCovariance",
    "EGARCHDCCCovariance",
    "make_estimator",
    "annualized_pd",
    "CovariancePath",
    "covariance_path",
    "sample_covariance",
    "ewma_update",
    "ewma_init",
    "ledoit_wolf_covariance",
    "baseline_covariance",
    "make_pd",
    "rolling_covariance",
]


def make_pd(cov: np.ndarray) -> tuple[np.ndarray, bool]:
    """Symmetrize and repair to positive definite. Returns (matrix, repaired?).

    The check of every bar: the symmetrized matrix when it is positive definite (the compiled
    Cholesky, no copy), else :func:`drb.linalg.nearest_positive_definite` (which also names a
    non-finite or non-square input)."""
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        return nearest_positive_definite(cov, warn=False), True  # raises, naming the shape
    s = symmetrize(cov)
    if is_positive_definite(s):
        return s, False
    return nearest_positive_definite(s, warn=False), True


def sample_covariance(window: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof = 1) of a (m, n) window, per bar (not annualized)."""
    x = np.asarray(window, dtype=float)
    xc = x - x.mean(axis=0)
    return xc.T @ xc / (x.shape[0] - 1)


def ewma_init(window: np.ndarray) -> np.ndarray:
    """EWMA starting matrix: zero-mean second moment of the first (m, n) returns, per bar."""
    x = np.asarray(window, dtype=float)
    return x.T @ x / x.shape[0]


def ewma_update(s: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """One RiskMetrics step: S_t = lam S_{t-1} + (1 - lam) r_t r_t'."""
    return lam * s + (1.0 - lam) * np.outer(r, r)


def ledoit_wolf_covariance(window: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf (2004) shrinkage towards mu I of a (m, n) window (demeaned, 1/m), per bar.

    Matches ``sklearn.covariance.ledoit_wolf`` (tested when scikit-learn is installed).
    """
    x = np.asarray(window, dtype=float)
    m, n = x.shape
    x = x - x.mean(axis=0)
    s = x.T @ x / m
    mu = np.trace(s) / n
    delta = s.copy()
    delta[np.diag_indices(n)] -= mu
    d2 = float(np.sum(delta**2)) / n
    x2 = x**2
    b2 = float(np.sum((x2.T @ x2) / m - s**2)) / (n * m)
    b2 = min(b2, d2)
    shrink = 0.0 if d2 == 0 else b2 / d2
    out = (1.0 - shrink) * s
    out[np.diag_indices(n)] += shrink * mu
    return out


def baseline_covariance(window: np.ndarray, periods_per_year: float = 252.0) -> tuple[np.ndarray, bool]:
    """Covariance of the baselines' trailing window, shrunk when the sample estimate is unreliable.

    The sample covariance (ddof = 1) is used when the window holds at least ``2 n`` returns and
    its smallest eigenvalue exceeds ``1e-10`` times its largest; otherwise (a window shorter than
    twice the number of assets, or a singular sample covariance: e.g. 60 returns of 60 assets)
    the Ledoit-Wolf estimate of the same window stands in (:func:`ledoit_wolf_covariance`).

    Parameters
    ----------
    window : ndarray, shape (m, n)
        Decimal returns per bar, oldest first, ``m >= 2``.
    periods_per_year : float
        Annualization factor.

    Returns
    -------
    (ndarray (n, n), bool)
        The annualized positive-definite estimate and whether it was shrunk.
    """
    x = np.asarray(window, dtype=float)
    m, n = x.shape
    shrunk = m < 2 * n
    if not shrunk:
        xc = x - x.mean(axis=0)
        cov = (xc.T @ xc) / (m - 1)
        eig = np.linalg.eigvalsh(cov)
        shrunk = not eig[0] > 1e-10 * max(eig[-1], 0.0)
    if shrunk:
        cov = ledoit_wolf_covariance(x)
    return nearest_positive_definite(cov * periods_per_year, warn=False), shrunk


def annualized_pd(cov: np.ndarray, periods_per_year: float) -> tuple[np.ndarray, bool]:
    """Annualize a per-bar covariance forecast (``cov * periods_per_year``) and repair it to PD.

    Returns
    -------
    (ndarray (n, n), bool)
        The symmetric positive-definite annualized matrix and whether a repair was needed.
    """
    return make_pd(cov * periods_per_year)


def _arr(x: np.ndarray | None) -> list | None:
    return None if x is None else np.asarray(x).tolist()


def _float_arr(x) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=float)


# ================================================================================== estimators
class CovarianceEstimator(ABC):
    """One covariance estimator, fed bar by bar: the interface the risk model composes.

    The estimator keeps the last ``history`` returns (``buf``, oldest first, zeros before the
    start). :meth:`update` feeds one row of decimal returns (shape (n,), finite: the caller
    checks); :meth:`forecast` gives the per-bar (not annualized) covariance forecast for the next
    bar, or None before the estimator is ready. The state is the instance's attributes (saved as
    data by ``drb paper``) or, as plain JSON, :meth:`get_state` / :meth:`set_state`.

    Parameters
    ----------
    n_assets : int
    history : int
        Trailing returns kept, in bars.
    """

    #: Name used in configs (``risk_model = "..."``).
    name: ClassVar[str]
    #: Configuration keys the class takes (keyword arguments of ``__init__`` after ``n_assets``).
    config: ClassVar[tuple[str, ...]]
    #: Whether the estimator fits parameters (its refits are counted in :meth:`fit_stats`).
    fitted: ClassVar[bool] = False
    #: Parameter refits so far (fitted estimators only).
    n_refits: int = 0

    def __init__(self, n_assets: int, history: int):
        if n_assets < 1:
            raise DataError(f"{self.name}: need n_assets >= 1, got {n_assets}")
        self.n = int(n_assets)
        self.history = int(history)
        self.buf = np.zeros((self.history, self.n))
        self.n_seen = 0

    def update(self, r: np.ndarray) -> None:
        """Feed one bar of decimal returns, shape (n,) (finite)."""
        self.buf[:-1] = self.buf[1:]
        self.buf[-1] = r
        self.n_seen += 1
        self._step(r)

    @abstractmethod
    def _step(self, r: np.ndarray) -> None:
        """Advance the estimator's own state after ``r`` was appended to ``buf``."""

    @abstractmethod
    def forecast(self) -> np.ndarray | None:
        """Per-bar covariance forecast for the next bar, shape (n, n), or None before ready."""

    def recent(self) -> np.ndarray:
        """The trailing returns seen so far (at most ``history`` rows, oldest first), a view."""
        return self.buf[self.history - min(self.history, self.n_seen) :]

    @property
    def n_failed(self) -> int:
        """Failed fits (fitted estimators only)."""
        return 0

    @property
    def n_boundary(self) -> int:
        """Fits on a parameter bound, kept (fitted estimators only)."""
        return 0

    @property
    def params(self) -> dict | None:
        """Current fitted parameters, or None."""
        return None

    def fit_stats(self, names: list[str] | None = None) -> dict:
        """Refit outcomes (all zero for an estimator without parameters); see :class:`EGARCHDCCCovariance`."""
        return {"refits": 0, **RefitTally(self.n).stats(names), "dcc_failed": 0}

    def get_state(self) -> dict:
        """The estimator's state as JSON-serializable lists, floats and ints (``n_seen`` excluded)."""
        return {"buf": _arr(self.buf)}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` output (KeyError / ValueError / TypeError when malformed)."""
        self.buf = np.asarray(state["buf"], dtype=float).reshape(self.history, self.n)


class _WindowCovariance(CovarianceEstimator):
    """A covariance of the last ``sample_window`` returns, ready once the window is full."""

    config = ("sample_window",)

    def __init__(self, n_assets: int, sample_window: int = 20):
        if sample_window < 2:
            raise DataError(f"{self.name}: need sample_window >= 2, got {sample_window}")
        super().__init__(n_assets, sample_window)

    def _step(self, r: np.ndarray) -> None:
        pass

    def forecast(self) -> np.ndarray | None:
        return None if self.n_seen < self.history else self._estimate(self.buf)

    @staticmethod
    @abstractmethod
    def _estimate(window: np.ndarray) -> np.ndarray:
        """Per-bar covariance of a full (m, n) window."""


class SampleCovariance(_WindowCovariance):
    """Sample covariance (ddof = 1) of the last ``sample_window`` returns (:func:`sample_covariance`)."""

    name = "sample"
    _estimate = staticmethod(sample_covariance)


class LedoitWolfCovariance(_WindowCovariance):
    """Ledoit-Wolf shrinkage of the last ``sample_window`` returns (:func:`ledoit_wolf_covariance`)."""

    name = "ledoit_wolf"
    _estimate = staticmethod(ledoit_wolf_covariance)


class EWMACovariance(CovarianceEstimator):
    """RiskMetrics EWMA, zero mean: S_t = lambda S_{t-1} + (1 - lambda) r_t r_t'.

    Started, when ``sample_window`` returns have been seen, from their second moment
    (:func:`ewma_init`); updated by :func:`ewma_update` afterwards.
    """

    name = "ewma"
    config = ("sample_window", "ewma_lambda")

    def __init__(self, n_assets: int, sample_window: int = 20, ewma_lambda: float = 0.94):
        if sample_window < 2 or not (0.0 < ewma_lambda < 1.0):
            raise DataError(f"ewma: need sample_window >= 2 and 0 < ewma_lambda < 1, got {sample_window}, {ewma_lambda}")
        super().__init__(n_assets, sample_window)
        self.ewma_lambda = float(ewma_lambda)
        self.s: np.ndarray | None = None

    def _step(self, r: np.ndarray) -> None:
        if self.n_seen < self.history:
            return
        self.s = ewma_init(self.buf) if self.s is None else ewma_update(self.s, r, self.ewma_lambda)

    def forecast(self) -> np.ndarray | None:
        return self.s

    def get_state(self) -> dict:
        return {**super().get_state(), "ewma": _arr(self.s)}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.s = _float_arr(state["ewma"])


class EGARCHDCCCovariance(CovarianceEstimator):
    """EGARCH(1,1)-DCC(1,1): Sigma_t = D_t R_t D_t, refitted on a schedule, filtered between refits.

    Per-asset EGARCH (:mod:`indicators.egarch`) and DCC (:mod:`indicators.dcc`) are first fitted when
    ``min_window`` returns have been seen, then every ``refit_every`` bars on the trailing ``window``
    returns (EGARCH warm-started from the previous parameters, DCC from the previous (a, b)); between
    refits the O(1) recursions filter forward with fixed parameters. Every EGARCH fit is counted by
    outcome (:class:`indicators.egarch.RefitTally`); a failed fit keeps the parameters in hand, makes
    the asset's next refit a cold start and warns (:class:`EstimationWarning`) at most once per asset.

    Parameters
    ----------
    n_assets : int
    window, min_window, refit_every : int
        Trailing fit window, first fit size and refit period, in bars.
    dist : str
        EGARCH innovation distribution (``arch`` name).
    engine : {"fast", "arch"}
        EGARCH fitting engine (:func:`indicators.egarch.egarch_fit`).
    """

    name = "egarch_dcc"
    config = ("window", "min_window", "refit_every", "dist", "engine")
    fitted = True

    def __init__(
        self,
        n_assets: int,
        window: int = 750,
        min_window: int = 250,
        refit_every: int = 21,
        dist: str = "t",
        engine: str = "fast",
    ):
        if min_window < 10 or window < min_window or refit_every < 1:
            raise DataError("egarch_dcc: need 10 <= min_window <= window, refit_every >= 1")
        super().__init__(n_assets, window)
        self.min_window, self.refit_every = int(min_window), int(refit_every)
        self.dist, self.engine = dist, engine
        self.egarch: np.ndarray | None = None  # (n, k) EGARCH parameters, percent scale
        self.ln_bounds: np.ndarray | None = None
        self.a: float | None = None
        self.b: float | None = None
        self.n_refits = 0
        self.n_dcc_failed = 0
        self.tally = RefitTally(self.n)
        self.warned = [False] * self.n
        self.lns: np.ndarray | None = None  # ln sigma^2 of the next bar, percent^2
        self.qbar: np.ndarray | None = None
        self.q: np.ndarray | None = None

    def _step(self, r: np.ndarray) -> None:
        t = self.n_seen - 1
        if t >= self.min_window - 1 and (t - self.min_window + 1) % self.refit_every == 0:
            self.refit(self.recent().copy())
        elif self.lns is not None:
            p = self.egarch
            resid = SCALE * r - p[:, 0]
            z = resid * np.exp(-0.5 * self.lns)
            self.lns = egarch_step(p, self.lns, resid, self.ln_bounds)
            self.q = dcc_step(self.q, z, self.a, self.b, self.qbar)

    def forecast(self) -> np.ndarray | None:
        if self.lns is None:
            return None
        vol = np.exp(0.5 * self.lns) / SCALE
        return q_to_corr(self.q) * np.outer(vol, vol)

    def refit(self, win: np.ndarray) -> None:
        """Fit every asset's EGARCH and the DCC on the (m, n) window of decimal returns."""
        n = self.n
        newp = np.empty((n, len(param_names(self.dist))))
        lns = np.empty(n)
        lnb = np.empty((n, 2))
        z = np.empty_like(win)
        for j in range(n):
            prev = None if self.egarch is None else self.egarch[j]
            f = self.tally.fit(j, win[:, j], self.dist, prev, self.engine)
            newp[j], lns[j], z[:, j], lnb[j] = f.params, f.lnsig2_next, f.std_resid, f.ln_bounds
            if not f.converged and not self.warned[j]:
                self.warned[j] = True
                warnings.warn(
                    f"EGARCH fit for asset {j} failed ({f.message}); parameters in hand kept, "
                    "next refit starts cold",
                    EstimationWarning,
                    stacklevel=6,  # the caller of RiskModel.update's caller, as before
                )
        self.egarch, self.ln_bounds = newp, lnb
        d = fit_dcc(z, None if self.a is None else (self.a, self.b))
        self.n_dcc_failed += int(not d.converged)
        self.a, self.b = d.a, d.b
        self.n_refits += 1
        self.lns, self.qbar, self.q = lns, d.qbar, d.q_next

    @property
    def n_failed(self) -> int:
        """Failed EGARCH fits plus failed DCC fits."""
        return self.tally.n_failed + self.n_dcc_failed

    @property
    def n_boundary(self) -> int:
        """EGARCH fits on the persistence bound (``beta = BETA_MAX``), not counted as failed."""
        return self.tally.n_boundary

    @property
    def params(self) -> dict | None:
        """EGARCH parameters per asset (percent scale, (n, k)) and DCC (a, b), or None before a fit."""
        if self.egarch is None:
            return None
        return {"egarch": self.egarch.copy(), "dcc": (self.a, self.b)}

    def fit_stats(self, names: list[str] | None = None) -> dict:
        """``refits``, EGARCH ``converged`` / ``boundary`` / ``failed`` / ``relaxed`` (total over assets),
        ``longest_failed_run``, ``per_asset`` (keyed by ``names``, default ``"0"``, ``"1"``...) and
        ``dcc_failed``."""
        return {"refits": self.n_refits, **self.tally.stats(names), "dcc_failed": self.n_dcc_failed}

    def get_state(self) -> dict:
        fit = {
            "params": _arr(self.egarch),
            "ln_bounds": _arr(self.ln_bounds),
            "a": self.a,
            "b": self.b,
            "n_refits": self.n_refits,
            "n_failed": self.n_failed,
            "n_dcc_failed": self.n_dcc_failed,
            "tally": self.tally.get_state(),
            "warned": list(self.warned),
        }
        return {**super().get_state(), "lns": _arr(self.lns), "qbar": _arr(self.qbar), "q": _arr(self.q), "fit": fit}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.lns, self.qbar, self.q = _float_arr(state["lns"]), _float_arr(state["qbar"]), _float_arr(state["q"])
        f = state["fit"]
        self.egarch, self.ln_bounds = _float_arr(f["params"]), _float_arr(f["ln_bounds"])
        self.a, self.b = f["a"], f["b"]
        self.n_refits = int(f["n_refits"])
        if "tally" in f:
            self.n_dcc_failed = int(f["n_dcc_failed"])
            self.tally.set_state(f["tally"])
        else:  # a state written before the outcome counts: all its failures in the total
            self.n_dcc_failed = int(f["n_failed"])
        self.warned = [bool(w) for w in f["warned"]]


#: Config name -> estimator class: the one place the names used in configs are mapped.
ESTIMATORS: dict[str, type[CovarianceEstimator]] = {
    cls.name: cls for cls in (EGARCHDCCCovariance, SampleCovariance, EWMACovariance, LedoitWolfCovariance)
}
METHODS = tuple(ESTIMATORS)
_CONFIG_KEYS = frozenset(k for cls in ESTIMATORS.values() for k in cls.config)


def make_estimator(method: str, n_assets: int, **config) -> CovarianceEstimator:
    """The estimator named ``method`` (a key of :data:`ESTIMATORS`) for ``n_assets`` assets.

    Parameters
    ----------
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
    n_assets : int
    **config
        Any of ``window``, ``min_window``, ``refit_every``, ``dist``, ``engine``, ``sample_window``,
        ``ewma_lambda``; each class takes the ones it uses (``cls.config``), the others are ignored.

    Raises
    ------
    DataError
        Unknown method or invalid value; TypeError for an unknown keyword.
    """
    cls = ESTIMATORS.get(method)
    if cls is None:
        raise DataError(f"unknown covariance method {method!r}; choose one of {METHODS}")
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise TypeError(f"make_estimator: unexpected keyword {unknown[0]!r}")
    return cls(n_assets, **{k: v for k, v in config.items() if k in cls.config})


# ================================================================================== whole path
@dataclass
class CovariancePath:
    """An estimator run over a return path (:func:`covariance_path`).

    Attributes
    ----------
    cov : ndarray, shape (T, n, n)
        Annualized PD forecasts; row ``t`` uses returns up to and including ``t``; NaN before ready.
    estimator : CovarianceEstimator
        The estimator after the last row (fit counts, parameters).
    n_repairs : int
        Forecasts that needed a positive-definite repair.
    refit_rows : list of int
        Rows at which the estimator refitted its parameters.
    started : bool
        Whether any row was fed (False when every row has a NaN).
    """

    cov: np.ndarray
    estimator: CovarianceEstimator
    n_repairs: int
    refit_rows: list[int]
    started: bool


def _first_finite_row(x: np.ndarray, where: str) -> int | None:
    """First row with only finite returns (None if none); DataError if a later row has a NaN."""
    if x.ndim != 2:
        raise DataError(f"{where}: returns must be 2-d (T, n)")
    finite = np.all(np.isfinite(x), axis=1)
    if not finite.any():
        return None
    first = int(np.argmax(finite))
    if not finite[first:].all():
        raise DataError(f"{where}: non-finite return at row {first + int(np.argmin(finite[first:]))}")
    return first


def covariance_path(
    returns: pd.DataFrame | np.ndarray,
    method: str = "egarch_dcc",
    *,
    periods_per_year: float = 252,
    where: str = "covariance_path",
    **config,
) -> CovariancePath:
    """Run the estimator named ``method`` causally over a return path (same numbers as the online model).

    Parameters
    ----------
    returns : DataFrame or ndarray, shape (T, n)
        Decimal returns per bar; leading rows with NaN are skipped (output NaN there), a later NaN
        raises :class:`DataError`.
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
    periods_per_year : float
        Annualization factor.
    where : str
        Name used in error messages.
    **config
        Estimator configuration (:func:`make_estimator`).

    Returns
    -------
    CovariancePath
    """
    x_all = np.asarray(returns, dtype=float)
    first = _first_finite_row(x_all, where)
    T_all, n = x_all.shape
    est = make_estimator(method, n, **config)
    cov = np.full((T_all, n, n), np.nan)
    n_rep, rows = 0, []
    for t in range(T_all if first is None else first, T_all):
        refits = est.n_refits
        est.update(x_all[t])
        raw = est.forecast()
        if raw is not None:
            cov[t], rep = annualized_pd(raw, periods_per_year)
            n_rep += rep
        if est.n_refits != refits:
            rows.append(t)
    return CovariancePath(cov, est, int(n_rep), rows, first is not None)


def rolling_covariance(
    returns: pd.DataFrame | np.ndarray,
    method: str = "egarch_dcc",
    **params,
) -> np.ndarray:
    """Causal path of annualized PD covariance matrices by estimator name.

    Parameters
    ----------
    returns : DataFrame or ndarray, shape (T, n)
        Decimal returns per bar; leading rows with NaN are skipped (output NaN there).
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
    **params
        ``periods_per_year`` and the estimator configuration (``window``, ``min_window``,
        ``refit_every``, ``dist``, ``sample_window``, ``ewma_lambda``, ``engine``), as
        :class:`indicators.risk_model.RiskModel`.

    Returns
    -------
    ndarray, shape (T, n, n)
        Row ``t`` uses returns up to and including ``t`` (the forecast for bar ``t + 1``); NaN before the
        estimator is ready. Identical, bar for bar, to feeding the rows to ``RiskModel.update``.
    """
    return covariance_path(returns, method, where="rolling_covariance", **params).cov
