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
* ``sample`` / ``ewma`` / ``ledoit_wolf``: ready after ``sample_window`` returns (see
  :mod:`indicators.covariance`).

``RiskModel.update`` and :func:`rolling_risk_model` give bit-identical numbers (tested), and
``RiskModel.from_state(model.get_state())`` continues bit-identically (the state is plain JSON).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from drb.errors import DataError, EstimationWarning, StateError
from drb.linalg import cov_to_corr
from indicators.covariance import (
    _check_method,
    ewma_init,
    ewma_update,
    ledoit_wolf_covariance,
    make_pd,
    sample_covariance,
)
from indicators.dcc import dcc_step, fit_dcc, q_to_corr
from indicators.egarch import SCALE, RefitTally, egarch_step, param_names

__all__ = ["RiskModel", "rolling_risk_model"]

_STATE_VERSION = 1


class _Refitter:
    """Shared refit logic (the math both paths call; the bookkeeping around it is separate)."""

    def __init__(self, n: int, dist: str, engine: str):
        self.n, self.dist, self.engine = n, dist, engine
        self.params: np.ndarray | None = None
        self.ln_bounds: np.ndarray | None = None
        self.a: float | None = None
        self.b: float | None = None
        self.n_refits = 0
        self.n_dcc_failed = 0
        self.tally = RefitTally(n)
        self.warned = [False] * n

    @property
    def n_failed(self) -> int:
        """Failed EGARCH fits plus failed DCC fits."""
        return self.tally.n_failed + self.n_dcc_failed

    def stats(self, names: list[str] | None = None) -> dict:
        """Fit statistics: refits, EGARCH outcomes (total and per asset), DCC failures."""
        return {"refits": self.n_refits, **self.tally.stats(names), "dcc_failed": self.n_dcc_failed}

    def refit(self, win: np.ndarray):
        """Fit every asset and the DCC on the (m, n) window; return (lnsig2_next, qbar, q_next)."""
        n = self.n
        newp = np.empty((n, len(param_names(self.dist))))
        lns = np.empty(n)
        lnb = np.empty((n, 2))
        z = np.empty_like(win)
        for j in range(n):
            prev = None if self.params is None else self.params[j]
            f = self.tally.fit(j, win[:, j], self.dist, prev, self.engine)
            newp[j], lns[j], z[:, j], lnb[j] = f.params, f.lnsig2_next, f.std_resid, f.ln_bounds
            if not f.converged and not self.warned[j]:
                self.warned[j] = True
                warnings.warn(
                    f"EGARCH fit for asset {j} failed ({f.message}); parameters in hand kept, "
                    "next refit starts cold",
                    EstimationWarning,
                    stacklevel=4,
                )
        self.params = newp
        self.ln_bounds = lnb
        start = None if self.a is None else (self.a, self.b)
        d = fit_dcc(z, start)
        if not d.converged:
            self.n_dcc_failed += 1
        self.a, self.b = d.a, d.b
        self.n_refits += 1
        return lns, d.qbar, d.q_next


class RiskModel:
    """Online daily covariance model with explicit, JSON-serializable state.

    Parameters
    ----------
    n_assets : int
    method : {"egarch_dcc", "sample", "ewma", "ledoit_wolf"}
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
        _check_method(method)
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
        self._buflen = self.window if method == "egarch_dcc" else self.sample_window
        self._buf = np.zeros((self._buflen, self.n))
        self.n_updates = 0
        self.n_repairs = 0
        self._fit = _Refitter(self.n, dist, engine)
        self._lns: np.ndarray | None = None
        self._qbar: np.ndarray | None = None
        self._q: np.ndarray | None = None
        self._ewma: np.ndarray | None = None
        self.cov: np.ndarray | None = None

    # ---------------------------------------------------------------- properties
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
        return self._fit.n_refits

    @property
    def n_failed_fits(self) -> int:
        """Failed EGARCH fits (no acceptable optimum) plus failed DCC fits."""
        return self._fit.n_failed

    @property
    def n_boundary_fits(self) -> int:
        """EGARCH fits on the persistence bound (``beta = BETA_MAX``), not counted as failed."""
        return self._fit.tally.n_boundary

    @property
    def fit_stats(self) -> dict:
        """Refit outcomes: ``refits``, EGARCH ``converged`` / ``boundary`` / ``failed`` / ``relaxed``
        (total over assets), ``longest_failed_run``, ``per_asset`` (keyed ``"0"``, ``"1"``...) and
        ``dcc_failed``; see :class:`indicators.egarch.RefitTally`."""
        return self._fit.stats()

    @property
    def params(self) -> dict | None:
        """Current EGARCH parameters per asset (percent scale) and DCC (a, b), or None."""
        if self._fit.params is None:
            return None
        return {"egarch": self._fit.params.copy(), "dcc": (self._fit.a, self._fit.b)}

    # ---------------------------------------------------------------- update
    def update(self, returns_row) -> None:
        """Feed one bar of decimal simple returns, shape (n,); updates ``cov`` (forecast for next bar)."""
        r = np.asarray(returns_row, dtype=float).reshape(-1)
        if r.shape[0] != self.n:
            raise DataError(f"RiskModel.update: expected {self.n} returns, got {r.shape[0]}")
        if not np.all(np.isfinite(r)):
            raise DataError(f"RiskModel.update: non-finite return at bar {self.n_updates}: {r.tolist()}")
        self._buf[:-1] = self._buf[1:]
        self._buf[-1] = r
        self.n_updates += 1
        t = self.n_updates - 1
        m = self.method
        ppy = self.periods_per_year
        if m == "egarch_dcc":
            due = t >= self.min_window - 1 and (t - self.min_window + 1) % self.refit_every == 0
            if due:
                k = min(self.window, self.n_updates)
                self._lns, self._qbar, self._q = self._fit.refit(self._buf[self._buflen - k :].copy())
            elif self._lns is not None:
                p = self._fit.params
                resid = SCALE * r - p[:, 0]
                z = resid * np.exp(-0.5 * self._lns)
                self._lns = egarch_step(p, self._lns, resid, self._fit.ln_bounds)
                self._q = dcc_step(self._q, z, self._fit.a, self._fit.b, self._qbar)
            if self._lns is None:
                return
            vol = np.exp(0.5 * self._lns) / SCALE
            raw = q_to_corr(self._q) * np.outer(vol, vol) * ppy
        elif m == "ewma":
            if self.n_updates < self.sample_window:
                return
            if self._ewma is None:
                self._ewma = ewma_init(self._buf)
            else:
                self._ewma = ewma_update(self._ewma, r, self.ewma_lambda)
            raw = self._ewma * ppy
        else:
            if self.n_updates < self.sample_window:
                return
            est = sample_covariance if m == "sample" else ledoit_wolf_covariance
            raw = est(self._buf) * ppy
        self.cov, rep = make_pd(raw)
        self.n_repairs += int(rep)

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict:
        """Everything needed to continue bit-identically, as JSON-serializable lists and floats."""

        def arr(x):
            return None if x is None else np.asarray(x).tolist()

        return {
            "version": _STATE_VERSION,
            "config": {
                "n_assets": self.n,
                "method": self.method,
                "window": self.window,
                "min_window": self.min_window,
                "refit_every": self.refit_every,
                "dist": self.dist,
                "sample_window": self.sample_window,
                "ewma_lambda": self.ewma_lambda,
                "periods_per_year": self.periods_per_year,
                "engine": self.engine,
            },
            "n_updates": self.n_updates,
            "n_repairs": self.n_repairs,
            "buf": arr(self._buf),
            "lns": arr(self._lns),
            "qbar": arr(self._qbar),
            "q": arr(self._q),
            "ewma": arr(self._ewma),
            "cov": arr(self.cov),
            "fit": {
                "params": arr(self._fit.params),
                "ln_bounds": arr(self._fit.ln_bounds),
                "a": self._fit.a,
                "b": self._fit.b,
                "n_refits": self._fit.n_refits,
                "n_failed": self._fit.n_failed,
                "n_dcc_failed": self._fit.n_dcc_failed,
                "tally": self._fit.tally.get_state(),
                "warned": list(self._fit.warned),
            },
        }

    @classmethod
    def from_state(cls, state: dict) -> RiskModel:
        """Rebuild a model from :meth:`get_state` output."""
        try:
            if state.get("version") != _STATE_VERSION:
                raise StateError(f"RiskModel state version {state.get('version')!r} != {_STATE_VERSION}")
            obj = cls(**state["config"])

            def arr(x):
                return None if x is None else np.asarray(x, dtype=float)

            obj.n_updates = int(state["n_updates"])
            obj.n_repairs = int(state["n_repairs"])
            obj._buf = arr(state["buf"]).reshape(obj._buflen, obj.n)
            obj._lns, obj._qbar, obj._q = arr(state["lns"]), arr(state["qbar"]), arr(state["q"])
            obj._ewma, obj.cov = arr(state["ewma"]), arr(state["cov"])
            f = state["fit"]
            obj._fit.params = arr(f["params"])
            obj._fit.ln_bounds = arr(f["ln_bounds"])
            obj._fit.a, obj._fit.b = f["a"], f["b"]
            obj._fit.n_refits = int(f["n_refits"])
            if "tally" in f:
                obj._fit.n_dcc_failed = int(f["n_dcc_failed"])
                obj._fit.tally.set_state(f["tally"])
            else:  # a state written before the outcome counts: all its failures in the total
                obj._fit.n_dcc_failed = int(f["n_failed"])
            obj._fit.warned = [bool(w) for w in f["warned"]]
        except StateError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"corrupt RiskModel state: {type(exc).__name__}: {exc}") from exc
        return obj


def rolling_risk_model(
    returns: pd.DataFrame | np.ndarray,
    method: str = "egarch_dcc",
    window: int = 750,
    min_window: int = 250,
    refit_every: int = 21,
    dist: str = "t",
    sample_window: int = 20,
    ewma_lambda: float = 0.94,
    periods_per_year: int = 252,
    engine: str = "fast",
) -> dict:
    """Vectorized (whole-path) risk model, the same numbers as :class:`RiskModel` fed row by row.

    Parameters
    ----------
    returns : DataFrame or ndarray, shape (T, n)
        Decimal returns; leading rows containing NaN are skipped, a later NaN raises DataError.

    Returns
    -------
    dict
        ``cov`` (T, n, n), ``vol`` (T, n), ``corr`` (T, n, n) annualized (NaN before ready),
        ``ready`` (T,) bool, ``n_refits``, ``n_failed_fits``, ``n_boundary_fits``, ``fit_stats``
        (as :attr:`RiskModel.fit_stats`, per asset keyed by column name; None unless
        ``egarch_dcc``), ``n_repairs``, ``refit_rows`` (list of row positions where EGARCH/DCC were
        refitted), ``index`` (the input index or None).
    """
    _check_method(method)
    index = returns.index if isinstance(returns, pd.DataFrame) else None
    x_all = np.asarray(returns, dtype=float)
    if x_all.ndim != 2:
        raise DataError("rolling_risk_model: returns must be 2-d (T, n)")
    finite = np.all(np.isfinite(x_all), axis=1)
    T_all, n = x_all.shape
    cov = np.full((T_all, n, n), np.nan)
    out = {"cov": cov, "n_refits": 0, "n_failed_fits": 0, "n_boundary_fits": 0, "fit_stats": None,
           "n_repairs": 0, "refit_rows": [], "index": index}
    if finite.any():
        first = int(np.argmax(finite))
        if not finite[first:].all():
            bad = first + int(np.argmin(finite[first:]))
            raise DataError(f"rolling_risk_model: non-finite return at row {bad}")
        x = x_all[first:]
        T = x.shape[0]
        ppy = periods_per_year
        n_rep = 0
        if method == "egarch_dcc":
            fitter = _Refitter(n, dist, engine)
            refits = list(range(min_window - 1, T, refit_every))
            for i, t0 in enumerate(refits):
                lns, qbar, q = fitter.refit(x[max(0, t0 + 1 - window) : t0 + 1].copy())
                t_end = refits[i + 1] if i + 1 < len(refits) else T
                p = fitter.params
                for t in range(t0, t_end):
                    if t > t0:
                        resid = SCALE * x[t] - p[:, 0]
                        z = resid * np.exp(-0.5 * lns)
                        lns = egarch_step(p, lns, resid, fitter.ln_bounds)
                        q = dcc_step(q, z, fitter.a, fitter.b, qbar)
                    vol = np.exp(0.5 * lns) / SCALE
                    cov[first + t], rep = make_pd(q_to_corr(q) * np.outer(vol, vol) * ppy)
                    n_rep += rep
                out["refit_rows"].append(first + t0)
            out["n_refits"], out["n_failed_fits"] = fitter.n_refits, fitter.n_failed
            out["n_boundary_fits"] = fitter.tally.n_boundary
            names = None if index is None else [str(c) for c in returns.columns]
            out["fit_stats"] = fitter.stats(names)
        elif method == "ewma":
            s = None
            for t in range(sample_window - 1, T):
                s = ewma_init(x[: t + 1]) if s is None else ewma_update(s, x[t], ewma_lambda)
                cov[first + t], rep = make_pd(s * ppy)
                n_rep += rep
        else:
            est = sample_covariance if method == "sample" else ledoit_wolf_covariance
            for t in range(sample_window - 1, T):
                cov[first + t], rep = make_pd(est(x[t + 1 - sample_window : t + 1]) * ppy)
                n_rep += rep
        out["n_repairs"] = int(n_rep)
    ready = np.all(np.isfinite(cov), axis=(1, 2))
    vol = np.sqrt(np.einsum("tii->ti", cov))
    corr = cov / (vol[:, :, None] * vol[:, None, :])
    idx = np.arange(n)
    corr[:, idx, idx] = np.where(ready[:, None], 1.0, np.nan)
    out.update({"vol": vol, "corr": corr, "ready": ready})
    return out


def annualize_vol(daily_vol: float | np.ndarray, periods_per_year: int = 252):
    """Per-bar volatility to annualized (decimal)."""
    return np.asarray(daily_vol) * math.sqrt(periods_per_year)
