"""Continuous-time risk contribution: risk budgeting on the time axis (pure numpy/scipy).

Source: 003_015d7b33d91ba260.txt ("Continuous-Time Risk Contribution of the Terminal Variance and its
Related Risk Budgeting Problem"), sections 2-4. The formulas in the source text are partly lost; what
is implemented here is re-derived and verified numerically (tests/test_time_axis*.py).

Conventions
-----------
* A *policy* is a process of positions ``theta_t`` held over ``(t, t + dt]``, chosen with information
  up to ``t`` (predictable). The investment is ``X_T = x0 + sum_t theta_t' dS_t`` (source eq. 6; the
  remainder sits in a zero-rate account).
* Positions and covariances must be in matching units: *shares* with the covariance of **price**
  increments, or *money* with the covariance of **returns** (``money_i = shares_i * S_i`` and
  ``cov_ret_ij = cov_price_ij / (S_i S_j)`` give identical contributions). Covariances are per unit of
  time (annualized when ``dt`` is in years); ``dt`` converts them to one step.

Risk contribution (Definition 14, Corollary 17)
----------------------------------------------
With ``dS_t = mu_t dt + sigma_t dW_t`` and ``Sigma_t = sigma_t sigma_t'``, the Gateaux derivative of
``Var(X_T)`` in the direction of a policy ``eta`` is ``2 Cov(int eta dS, X_T)``. Write the centred
martingale ``Y_t = E[X_T | F_t] - E[X_T] = int_0^t z_s' dW_s`` (martingale representation); then
``Cov(int eta dS, X_T) = E int eta_t' (mu_t Y_t + sigma_t z_t) dt`` and the density (the marginal risk
contribution process) is ``m_t = mu_t Y_t + sigma_t z_t``. The contribution of asset ``i`` at time ``t``
is ``c_{i,t} = theta_{i,t} m_{i,t} dt`` and ``E[sum_{i,t} c_{i,t}] = Var(X_T)`` (aggregation property).
Under the reference (martingale) measure ``mu = 0``, ``X`` is itself a martingale, ``z_t = sigma_t'
theta_t``, ``m_t = Sigma_t theta_t`` and ``c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i dt``: that is what
:func:`time_risk_contributions` computes for a realized policy with ex-ante covariances (its row sums
are ``theta_t' Sigma_t theta_t dt`` exactly). With drift and a feedback policy, ``z_t`` differs from
``sigma_t' theta_t`` and the drift term ``mu_t Y_t`` is not zero: :func:`mean_variance_contributions`
uses the full density (``z_t`` in closed form for the Zhou-Li policy).

Time-axis risk parity (section 4.1)
-----------------------------------
Budgeting ``min 0.5 Var(X_T) - E int b_t log(theta_t) dt`` gives ``theta_t m_t = b_t`` (Theorem 19).
For one risky asset with return volatility ``sigma_t`` and money position ``pi_t`` the contribution
density is ``pi_t^2 sigma_t^2``: a *constant* budget ``b`` (equal contributions per unit of time) is met
by ``pi_t = sqrt(b) / sigma_t``, i.e. the weight ``w_t = target_vol / sigma_t`` (volatility targeting).
The Moreira-Muir rule ``w_t = c / sigma_t^2`` meets the budget ``b_t = c^2 / sigma_t^2`` (high budget
when volatility is low; the source's "amplifier" of eq. 24). The source calls it the solution of a
*regularized* risk-parity budget (the regularization is lost from the text; whatever it is, it must
amount to the budget ``c^2 / sigma_t^2`` in money, or weight, units to give ``c / sigma^2``); in the
sense of equal contributions per unit of time, which is what is measured here, it is a time-axis risk
*budget* that favours calm periods, and parity is volatility targeting. Both are provided and verified; see
:func:`time_parity_weight` and :func:`moreira_muir_weight`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drb.errors import ConfigError, DataError, SolverError

__all__ = [
    "time_risk_contributions",
    "total_variance",
    "bucket_contributions",
    "bucket_shares",
    "herfindahl",
    "effective_number",
    "TimeConcentration",
    "time_concentration",
    "ewma_covariances",
    "GBM",
    "SABR",
    "PolicyState",
    "Policy",
    "MCTimeRiskResult",
    "AggregationTest",
    "normal_interval",
    "simulate_time_risk",
    "time_parity_weight",
    "moreira_muir_weight",
    "moreira_muir_constant",
    "buy_and_hold_policy",
    "volatility_managed_policy",
    "moreira_muir_policy",
    "ZhouLiMarket",
    "zhou_li_policy",
    "mean_variance_contributions",
    "mean_variance_expected_contributions",
    "zhou_li_mc_policy",
    "zhou_li_wealth_at_price",
    "zhou_li_sign_change_price",
    "risk_budget_positions",
    "batch_risk_budget_positions",
    "ProjectionDemo",
    "projection_demo",
]

ArrayLike = Any


# ---------------------------------------------------------------------------------------------
# (a) deterministic decomposition of a realized policy
# ---------------------------------------------------------------------------------------------


def _as_positions_and_covs(
    positions: ArrayLike, covariances: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(positions, dtype=float)
    if theta.ndim == 1:
        theta = theta[:, None]
    if theta.ndim != 2:
        raise DataError(f"positions: expected shape (T, n), got {theta.shape}")
    t_len, n = theta.shape
    cov = np.asarray(covariances, dtype=float)
    if cov.ndim == 2:
        cov = np.broadcast_to(cov, (t_len, *cov.shape))
    if cov.shape != (t_len, n, n):
        raise DataError(
            f"covariances: expected shape ({t_len}, {n}, {n}) or ({n}, {n}), got {cov.shape}"
        )
    if not np.all(np.isfinite(theta)):
        bad = int(np.argwhere(~np.isfinite(theta))[0, 0])
        raise DataError(f"positions: non-finite value at row {bad}")
    if not np.all(np.isfinite(cov)):
        bad = int(np.argwhere(~np.isfinite(cov))[0, 0])
        raise DataError(f"covariances: non-finite value at row {bad}")
    return theta, cov


def time_risk_contributions(
    positions: ArrayLike, covariances: ArrayLike, dt: float = 1.0 / 252.0
) -> np.ndarray:
    """Risk contributions over assets and time, ``c_{i,t} = theta_{i,t} (Sigma_t theta_t)_i dt``.

    Parameters
    ----------
    positions : array_like, shape (T, n)
        Positions ``theta_t`` held over ``(t, t + dt]``: money with a return covariance, or shares with
        a price covariance.
    covariances : array_like, shape (T, n, n) or (n, n)
        Ex-ante covariance ``Sigma_t`` of the next step's returns (or price changes) **per unit of
        time** (e.g. annualized when ``dt`` is in years). Use ``dt=1`` for per-step covariances.
    dt : float
        Step length in the time unit of ``covariances`` (default one trading day in years).

    Returns
    -------
    ndarray, shape (T, n)
        Contributions in currency squared (money) or price squared (shares). Aggregation:
        ``c.sum(axis=1) == theta_t' Sigma_t theta_t dt`` and ``c.sum()`` is the ex-ante variance of
        the cumulative P&L under the martingale (zero-drift) reference measure.

    Raises
    ------
    DataError
        On mismatched shapes or non-finite inputs.
    ConfigError
        When ``dt`` is not positive.
    """
    if not np.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be positive, got {dt!r}")
    theta, cov = _as_positions_and_covs(positions, covariances)
    marginal = np.einsum("tij,tj->ti", cov, theta)
    return theta * marginal * dt


def total_variance(positions: ArrayLike, covariances: ArrayLike, dt: float = 1.0 / 252.0) -> float:
    """Total ``sum_t theta_t' Sigma_t theta_t dt`` computed independently of the contributions.

    Parameters and units as in :func:`time_risk_contributions`; returns a float.
    """
    if not np.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be positive, got {dt!r}")
    theta, cov = _as_positions_and_covs(positions, covariances)
    return float(sum(th @ c @ th for th, c in zip(theta, cov)) * dt)


def bucket_contributions(
    contributions: ArrayLike, bucket_ids: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Sum contributions by time bucket.

    Parameters
    ----------
    contributions : array_like, shape (T, n)
        Per-step contributions.
    bucket_ids : array_like, shape (T,)
        Bucket label of each step (any sortable labels: years, month keys, integers).

    Returns
    -------
    labels : ndarray, shape (K,)
        Sorted unique bucket labels.
    totals : ndarray, shape (K, n)
        Sum of contributions per bucket and asset.
    """
    c = np.asarray(contributions, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    ids = np.asarray(bucket_ids)
    if ids.shape != (c.shape[0],):
        raise DataError(f"bucket_ids: expected shape ({c.shape[0]},), got {ids.shape}")
    labels, inv = np.unique(ids, return_inverse=True)
    totals = np.zeros((labels.size, c.shape[1]))
    np.add.at(totals, inv, c)
    return labels, totals


def bucket_shares(totals: ArrayLike) -> np.ndarray:
    """Share of the total variance per bucket, shape (K,), from bucket totals of shape (K,) or (K, n).

    Shares sum to one; they may be negative when a bucket's positions hedge the rest.

    Raises
    ------
    DataError
        When the total is zero or not finite (no risk to share out).
    """
    t = np.asarray(totals, dtype=float)
    per_bucket = t.sum(axis=1) if t.ndim == 2 else t
    total = per_bucket.sum()
    if not np.isfinite(total) or total == 0.0:
        raise DataError(f"cannot compute shares of a total of {total!r}")
    return per_bucket / total


def herfindahl(shares: ArrayLike) -> float:
    """Herfindahl-Hirschman index ``sum_k s_k^2`` of shares that sum to one.

    ``1/K`` when the K buckets carry equal risk, 1 when one bucket carries all of it. Signed shares
    (hedging buckets) are allowed and can push the index above 1.
    """
    s = np.asarray(shares, dtype=float)
    if s.size == 0:
        raise DataError("herfindahl: no shares")
    total = s.sum()
    if not np.isclose(total, 1.0, rtol=0, atol=1e-9):
        raise DataError(f"herfindahl: shares must sum to 1, got {total!r}")
    return float(np.sum(s**2))


def effective_number(shares: ArrayLike) -> float:
    """Effective number of buckets ``1 / HHI`` (K for equal risk, 1 for full concentration)."""
    return 1.0 / herfindahl(shares)


@dataclass(frozen=True)
class TimeConcentration:
    """How a variance is spread over time buckets.

    Attributes
    ----------
    labels : ndarray, shape (K,)
        Bucket labels.
    totals : ndarray, shape (K, n)
        Contributions per bucket and asset (units of the contributions).
    shares : ndarray, shape (K,)
        Bucket shares of the total (sum 1).
    asset_shares : ndarray, shape (n,)
        Asset shares of the total (sum 1).
    hhi : float
        Herfindahl index of the bucket shares.
    effective_buckets : float
        ``1 / hhi``.
    """

    labels: np.ndarray
    totals: np.ndarray
    shares: np.ndarray
    asset_shares: np.ndarray
    hhi: float
    effective_buckets: float


def time_concentration(contributions: ArrayLike, bucket_ids: ArrayLike) -> TimeConcentration:
    """Bucket totals, shares, asset split, HHI and effective number of buckets.

    Parameters
    ----------
    contributions : array_like, shape (T, n)
    bucket_ids : array_like, shape (T,)

    Returns
    -------
    TimeConcentration
    """
    labels, totals = bucket_contributions(contributions, bucket_ids)
    shares = bucket_shares(totals)
    asset_shares = totals.sum(axis=0) / totals.sum()
    hhi = herfindahl(shares)
    return TimeConcentration(labels, totals, shares, asset_shares, hhi, 1.0 / hhi)


def ewma_covariances(
    returns: ArrayLike, lam: float = 0.94, min_periods: int = 1
) -> np.ndarray:
    """Causal EWMA covariance (RiskMetrics, zero mean) of the *next* step's returns.

    ``S_t = sum_{s<=t} lam^(t-s) r_s r_s' / sum_{s<=t} lam^(t-s)`` (bias-corrected weights, so the
    first estimate is ``r_0 r_0'``): row ``t`` uses returns up to and including ``t`` only and is the
    forecast for ``r_{t+1}``.

    Parameters
    ----------
    returns : array_like, shape (T, n)
        Simple per-step returns (decimal); NaN is not allowed.
    lam : float
        Decay in (0, 1).
    min_periods : int
        Rows with fewer than ``min_periods`` returns are NaN.

    Returns
    -------
    ndarray, shape (T, n, n)
        Per-step covariances (multiply by the steps per year to annualize).
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2:
        raise DataError(f"returns: expected shape (T, n), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise DataError(f"returns: non-finite value at row {int(np.argwhere(~np.isfinite(r))[0, 0])}")
    if not 0.0 < lam < 1.0:
        raise ConfigError(f"lam must be in (0, 1), got {lam!r}")
    if min_periods < 1:
        raise ConfigError(f"min_periods must be >= 1, got {min_periods!r}")
    t_len, n = r.shape
    out = np.empty((t_len, n, n))
    num = np.zeros((n, n))
    den = 0.0
    for t in range(t_len):
        num = lam * num + np.outer(r[t], r[t])
        den = lam * den + 1.0
        out[t] = num / den
    out[: min(min_periods - 1, t_len)] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# (b) Monte Carlo: GBM and SABR dynamics, a policy as a function of (t, prices, state)
# ---------------------------------------------------------------------------------------------


def _vec(x: ArrayLike, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    a = np.broadcast_to(a, (n,)).copy() if a.ndim == 0 or a.shape == (1,) else a
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ConfigError(f"{name}: expected {n} finite values, got {x!r}")
    return a


def _chol_corr(corr: ArrayLike | None, n: int) -> np.ndarray:
    if corr is None:
        return np.eye(n)
    c = np.asarray(corr, dtype=float)
    if c.shape != (n, n) or not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0):
        raise ConfigError(f"corr: expected a symmetric ({n}, {n}) correlation matrix")
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError as exc:
        raise ConfigError("corr: not positive definite") from exc


class PriceModel(Protocol):
    """Interface of the simulated price dynamics used by :func:`simulate_time_risk`."""

    n: int

    def initial(self, n_paths: int) -> tuple[np.ndarray, np.ndarray]: ...

    def cond_cov(self, s: np.ndarray, v: np.ndarray, dt: float) -> np.ndarray: ...

    def step(
        self, s: np.ndarray, v: np.ndarray, dt: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class GBM:
    """Correlated geometric Brownian motion ``dS_i = S_i (mu_i dt + sigma_i dW_i)``, exact steps.

    Parameters
    ----------
    s0, mu, sigma : array_like, shape (n,)
        Initial prices, drifts and volatilities (per year). ``sigma_i = 0`` gives a bank account.
    corr : array_like, shape (n, n), optional
        Correlation of the Brownian motions (identity by default).

    Notes
    -----
    The conditional covariance of a step's price change is
    ``S_i S_j exp((mu_i + mu_j) dt) (exp(rho_ij sigma_i sigma_j dt) - 1)``; :meth:`cond_cov` returns
    it divided by ``dt`` so the discrete Ito isometry holds exactly for ``mu = 0``.
    """

    s0: ArrayLike
    mu: ArrayLike
    sigma: ArrayLike
    corr: ArrayLike | None = None

    @property
    def n(self) -> int:
        return int(np.atleast_1d(np.asarray(self.s0)).size)

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self.n
        s0 = _vec(self.s0, n, "s0")
        if np.any(s0 <= 0):
            raise ConfigError("GBM s0 must be positive")
        sig = _vec(self.sigma, n, "sigma")
        if np.any(sig < 0):
            raise ConfigError("GBM sigma must be >= 0")
        return s0, _vec(self.mu, n, "mu"), sig, _chol_corr(self.corr, n)

    def initial(self, n_paths: int) -> tuple[np.ndarray, np.ndarray]:
        s0, _, sig, _ = self._params()
        return np.tile(s0, (n_paths, 1)), np.tile(sig, (n_paths, 1))

    def cond_cov(self, s: np.ndarray, v: np.ndarray, dt: float) -> np.ndarray:
        _, mu, sig, chol = self._params()
        c = (chol @ chol.T) * np.outer(sig, sig)
        k = np.exp(np.add.outer(mu, mu) * dt) * np.expm1(c * dt) / dt
        return s[:, :, None] * s[:, None, :] * k

    def step(
        self, s: np.ndarray, v: np.ndarray, dt: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        _, mu, sig, chol = self._params()
        z = rng.standard_normal(s.shape) @ chol.T
        return s * np.exp((mu - 0.5 * sig**2) * dt + sig * np.sqrt(dt) * z), v


@dataclass(frozen=True)
class SABR:
    """SABR forwards ``dF_i = mu_i F_i dt + a_i F_i^beta_i dW_i``, ``da_i = nu_i a_i dZ_i``.

    ``d<W_i, Z_i> = rho_i dt``; the ``W`` are correlated by ``corr``; ``Z_i`` is independent of
    everything else given ``W_i``.

    Parameters
    ----------
    f0, alpha0 : array_like, shape (n,)
        Initial forwards and volatilities.
    beta, nu, rho : array_like, shape (n,)
        CEV power in [0, 1], vol of vol (per sqrt(year)) >= 0, correlation in (-1, 1).
    corr : array_like, shape (n, n), optional
        Correlation of the forwards' Brownian motions.
    mu : array_like, shape (n,)
        Drift of the forward (0: the reference measure of the source).

    Notes
    -----
    ``a`` is stepped exactly (log-normal); ``F`` by Euler, whose increment
    ``a F_+^beta sqrt(dt) z`` has conditional covariance ``a_i a_j F_i^b F_j^b corr_ij dt`` exactly, so
    the discrete Ito isometry holds without discretization bias. For ``beta > 0`` a forward that
    crosses zero is frozen (absorbed); the increments remain martingale differences.
    """

    f0: ArrayLike
    alpha0: ArrayLike
    beta: ArrayLike
    nu: ArrayLike
    rho: ArrayLike
    corr: ArrayLike | None = None
    mu: ArrayLike = 0.0

    @property
    def n(self) -> int:
        return int(np.atleast_1d(np.asarray(self.f0)).size)

    def _params(self) -> tuple[np.ndarray, ...]:
        n = self.n
        beta = _vec(self.beta, n, "beta")
        nu = _vec(self.nu, n, "nu")
        rho = _vec(self.rho, n, "rho")
        a0 = _vec(self.alpha0, n, "alpha0")
        if np.any((beta < 0) | (beta > 1)) or np.any(nu < 0) or np.any(np.abs(rho) >= 1):
            raise ConfigError("SABR needs beta in [0, 1], nu >= 0 and |rho| < 1")
        if np.any(a0 <= 0):
            raise ConfigError("SABR alpha0 must be positive")
        return (_vec(self.f0, n, "f0"), a0, beta, nu, rho, _chol_corr(self.corr, n),
                _vec(self.mu, n, "mu"))

    def initial(self, n_paths: int) -> tuple[np.ndarray, np.ndarray]:
        f0, a0, *_ = self._params()
        return np.tile(f0, (n_paths, 1)), np.tile(a0, (n_paths, 1))

    def _local_vol(self, f: np.ndarray, a: np.ndarray) -> np.ndarray:
        beta = self._params()[2]
        return a * np.maximum(f, 0.0) ** beta

    def cond_cov(self, s: np.ndarray, v: np.ndarray, dt: float) -> np.ndarray:
        chol = self._params()[5]
        lv = self._local_vol(s, v)
        return lv[:, :, None] * lv[:, None, :] * (chol @ chol.T)

    def step(
        self, s: np.ndarray, v: np.ndarray, dt: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        _, _, _, nu, rho, chol, mu = self._params()
        zw = rng.standard_normal(s.shape) @ chol.T
        zy = rng.standard_normal(s.shape)
        zz = rho * zw + np.sqrt(1.0 - rho**2) * zy
        lv = self._local_vol(s, v)
        alive = lv > 0.0
        f_new = s + np.where(alive, mu * s * dt + lv * np.sqrt(dt) * zw, 0.0)
        a_new = v * np.exp(nu * np.sqrt(dt) * zz - 0.5 * nu**2 * dt)
        return f_new, a_new


@dataclass
class PolicyState:
    """What a policy may look at on step ``k`` (all known at time ``t``; arrays over paths).

    Attributes
    ----------
    t : float
        Time in years at the start of the step.
    k : int
        Step index.
    dt : float
        Step length in years.
    horizon : float
        Terminal time ``T`` in years.
    wealth : ndarray, shape (P,)
        Investment value ``X_t = x0 + sum theta' dS`` so far.
    price_cov : ndarray, shape (P, n, n)
        Conditional covariance of the step's price change per year (``Sigma_t``).
    vol : ndarray, shape (P, n)
        Volatility state: GBM ``sigma`` (constant) or SABR ``alpha_t``.
    memory : dict
        Free storage the policy may use across steps (e.g. filtered variances).
    """

    t: float
    k: int
    dt: float
    horizon: float
    wealth: np.ndarray
    price_cov: np.ndarray
    vol: np.ndarray
    memory: dict[str, Any] = field(default_factory=dict)


Policy = Callable[[float, np.ndarray, PolicyState], np.ndarray]
"""``policy(t, prices (P, n), state) -> shares (P, n)`` held over the next step."""


def normal_interval(
    estimate: ArrayLike, se: ArrayLike, level: float = 0.9999
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided normal (CLT) confidence interval ``estimate +- z_{(1+level)/2} se``.

    Parameters
    ----------
    estimate, se : array_like
        Monte Carlo estimates and their standard errors (broadcast together).
    level : float
        Confidence level in (0, 1); 0.9999 is ``z = 3.89``.

    Returns
    -------
    low, high : ndarray
    """
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    z = float(norm.ppf(0.5 + 0.5 * level))
    est = np.asarray(estimate, dtype=float)
    half = z * np.asarray(se, dtype=float)
    return est - half, est + half


@dataclass(frozen=True)
class AggregationTest:
    """Outcome of :meth:`MCTimeRiskResult.aggregation_test`.

    Attributes
    ----------
    gap, se : float
        Estimated ``E[sum c] - Var(X_T)`` and its standard error.
    level : float
        Confidence level of the interval.
    low, high : float
        Confidence interval of the gap.
    z : float
        ``gap / se``.
    p_value : float
        Two-sided p-value of ``gap = 0``.
    passed : bool
        ``low <= 0 <= high``.
    """

    gap: float
    se: float
    level: float
    low: float
    high: float
    z: float
    p_value: float
    passed: bool

    @classmethod
    def from_estimate(cls, gap: float, se: float, level: float) -> AggregationTest:
        from scipy.stats import norm

        low, high = normal_interval(gap, se, level)
        z = gap / se if se > 0 else (0.0 if gap == 0 else np.inf * np.sign(gap))
        p = float(2.0 * norm.sf(abs(z)))
        return cls(float(gap), float(se), float(level), float(low), float(high), float(z), p,
                   bool(low <= 0.0 <= high))


@dataclass(frozen=True)
class MCTimeRiskResult:
    """Monte Carlo estimate of the terminal variance and its contributions.

    Attributes
    ----------
    bucket_edges : ndarray, shape (K + 1,)
        Time-bucket edges in years.
    terminal_mean, terminal_variance, terminal_variance_se : float
        ``E[X_T]``, unbiased sample ``Var(X_T)`` and its standard error (price or currency units^2).
    contributions, contributions_se : ndarray, shape (K, n)
        Predictable (Ito-density) estimator ``E[sum_{t in bucket} theta_i (Sigma_t theta)_i dt]``
        and its standard error. Exact in expectation under martingale dynamics (zero drift).
    cov_contributions, cov_contributions_se : ndarray, shape (K, n)
        Gateaux (covariance) estimator ``Cov(sum_{t in bucket} theta_i dS_i, X_T)``: valid with drift,
        sums to ``terminal_variance`` exactly by construction.
    aggregation_gap, aggregation_gap_se : float
        ``contributions.sum() - terminal_variance`` and its paired standard error.
    path_bucket_totals : ndarray, shape (P, K)
        Per-path predictable contributions per bucket (summed over assets).
    n_paths, n_steps : int
    """

    bucket_edges: np.ndarray
    terminal_mean: float
    terminal_variance: float
    terminal_variance_se: float
    contributions: np.ndarray
    contributions_se: np.ndarray
    cov_contributions: np.ndarray
    cov_contributions_se: np.ndarray
    aggregation_gap: float
    aggregation_gap_se: float
    path_bucket_totals: np.ndarray
    n_paths: int
    n_steps: int

    def aggregation_test(self, level: float = 0.9999) -> AggregationTest:
        """Two-sided test of ``E[sum of contributions] = Var(X_T)`` at confidence ``level``.

        The gap is the mean over paths of ``sum_{i,t} c_{i,t} - (X_T - mean X_T)^2 P / (P - 1)`` (paired:
        both on the same path), with the standard error of that mean; the interval is the normal
        (CLT) interval ``gap +- z_{(1+level)/2} se``. ``passed`` is True when it contains 0, i.e. when the
        contributions aggregate to the terminal variance within Monte Carlo error. A correct
        decomposition fails with probability about ``1 - level``.
        """
        return AggregationTest.from_estimate(self.aggregation_gap, self.aggregation_gap_se, level)

    @property
    def bucket_shares(self) -> np.ndarray:
        """Shares of the expected contributions per bucket, shape (K,)."""
        return bucket_shares(self.contributions)

    @property
    def hhi(self) -> float:
        """Herfindahl index of the expected bucket shares."""
        return herfindahl(self.bucket_shares)

    @property
    def pathwise_hhi(self) -> np.ndarray:
        """Herfindahl index of each path's own bucket shares, shape (P,)."""
        tot = self.path_bucket_totals
        s = tot / tot.sum(axis=1, keepdims=True)
        return np.sum(s**2, axis=1)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def simulate_time_risk(
    policy: Policy,
    model: PriceModel,
    *,
    horizon: float = 1.0,
    n_steps: int = 252,
    n_paths: int = 4000,
    n_buckets: int = 4,
    bucket_edges: ArrayLike | None = None,
    x0: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> MCTimeRiskResult:
    """Simulate a policy and decompose ``Var(X_T)`` over assets and time buckets.

    Parameters
    ----------
    policy : callable
        ``policy(t, prices, state) -> shares``; prices and shares have shape (P, n); see
        :class:`PolicyState`. Called once per step, vectorized over paths.
    model : GBM or SABR
        Price dynamics.
    horizon : float
        ``T`` in years.
    n_steps : int
        Number of steps (``dt = horizon / n_steps``).
    n_paths : int
        Number of paths P (>= 2).
    n_buckets : int
        Equal-length time buckets, unless ``bucket_edges`` is given.
    bucket_edges : array_like, shape (K + 1,), optional
        Increasing edges from 0 to ``horizon``; a step belongs to the bucket of its start time.
    x0 : float
        Initial wealth.
    seed : int or Generator, optional
        Seed of ``numpy.random.default_rng``. Paths depend only on the seed, not on the policy.

    Returns
    -------
    MCTimeRiskResult

    Raises
    ------
    ConfigError
        On invalid sizes or edges.
    DataError
        When the policy returns positions of the wrong shape or non-finite values.
    """
    if n_steps < 1 or n_paths < 2:
        raise ConfigError(f"need n_steps >= 1 and n_paths >= 2, got {n_steps}, {n_paths}")
    if not np.isfinite(horizon) or horizon <= 0:
        raise ConfigError(f"horizon must be positive, got {horizon!r}")
    if bucket_edges is None:
        if n_buckets < 1:
            raise ConfigError(f"n_buckets must be >= 1, got {n_buckets}")
        edges = np.linspace(0.0, horizon, n_buckets + 1)
    else:
        edges = np.asarray(bucket_edges, dtype=float)
        if (edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0)
                or not np.isclose(edges[0], 0.0) or not np.isclose(edges[-1], horizon)):
            raise ConfigError("bucket_edges must increase from 0 to horizon")
    k_buckets = edges.size - 1
    rng = _rng(seed)
    dt = horizon / n_steps
    n = model.n
    s, v = model.initial(n_paths)
    wealth = np.full(n_paths, float(x0))
    contrib = np.zeros((n_paths, k_buckets, n))
    gains = np.zeros((n_paths, k_buckets, n))
    memory: dict[str, Any] = {}
    for k in range(n_steps):
        t = k * dt
        b = min(int(np.searchsorted(edges, t + 1e-12 * dt, side="right")) - 1, k_buckets - 1)
        cov = model.cond_cov(s, v, dt)
        state = PolicyState(t, k, dt, horizon, wealth.copy(), cov, v.copy(), memory)
        theta = np.asarray(policy(t, s.copy(), state), dtype=float)
        if theta.shape != (n_paths, n):
            raise DataError(f"policy returned shape {theta.shape} at step {k}, expected {(n_paths, n)}")
        if not np.all(np.isfinite(theta)):
            raise DataError(f"policy returned non-finite positions at step {k} (t={t:.4f})")
        contrib[:, b, :] += theta * np.einsum("pij,pj->pi", cov, theta) * dt
        s_new, v = model.step(s, v, dt, rng)
        g = theta * (s_new - s)
        gains[:, b, :] += g
        wealth = wealth + g.sum(axis=1)
        s = s_new
    p = n_paths
    xc = wealth - wealth.mean()
    sq = xc**2 * p / (p - 1)
    var = float(sq.mean())
    var_se = float(sq.std(ddof=1) / np.sqrt(p))
    c_mean = contrib.mean(axis=0)
    c_se = contrib.std(axis=0, ddof=1) / np.sqrt(p)
    h = gains * xc[:, None, None] * p / (p - 1)
    gap = sq - contrib.sum(axis=(1, 2))
    return MCTimeRiskResult(
        bucket_edges=edges,
        terminal_mean=float(wealth.mean()),
        terminal_variance=var,
        terminal_variance_se=var_se,
        contributions=c_mean,
        contributions_se=c_se,
        cov_contributions=h.mean(axis=0),
        cov_contributions_se=h.std(axis=0, ddof=1) / np.sqrt(p),
        aggregation_gap=float(-gap.mean()),
        aggregation_gap_se=float(gap.std(ddof=1) / np.sqrt(p)),
        path_bucket_totals=contrib.sum(axis=2),
        n_paths=p,
        n_steps=n_steps,
    )


# ---------------------------------------------------------------------------------------------
# (c) volatility management as time-axis risk parity (section 4.1)
# ---------------------------------------------------------------------------------------------


def time_parity_weight(
    sigma: ArrayLike, target_vol: float, max_leverage: float = np.inf
) -> np.ndarray:
    """Time-axis risk-parity weight ``w_t = min(target_vol / sigma_t, max_leverage)``.

    The contribution of bar ``t`` to the variance of the cumulative return is
    ``w_t^2 sigma_t^2 dt = target_vol^2 dt``: identical in every bar while the cap is not binding
    (the budget ``b_t = target_vol^2`` of Theorem 19, solution ``w = sqrt(b) / sigma``).

    Parameters
    ----------
    sigma : array_like
        Ex-ante volatility known at ``t`` (``sigma_{t|t-1}``), same time unit as ``target_vol``.
    target_vol : float
        Target volatility (> 0).
    max_leverage : float
        Cap on the weight.

    Returns
    -------
    ndarray
        Weights, shape of ``sigma``.
    """
    sig = np.asarray(sigma, dtype=float)
    if target_vol <= 0 or max_leverage <= 0:
        raise ConfigError("target_vol and max_leverage must be positive")
    if np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise DataError("sigma must be finite and positive")
    return np.minimum(target_vol / sig, max_leverage)


def moreira_muir_weight(
    variance: ArrayLike, c: float, max_leverage: float = np.inf
) -> np.ndarray:
    """Moreira-Muir weight ``w_t = min(c / sigma_t^2, max_leverage)`` (source eq. 20).

    Its contribution per unit of time is ``c^2 / sigma_t^2``: the risk-budgeting solution of the
    budget ``b_t = c^2 / sigma_t^2`` (more risk in calm periods), not time-axis parity.

    Parameters
    ----------
    variance : array_like
        Ex-ante variance known at ``t`` (``sigma^2_{t|t-1}``).
    c : float
        Scale (> 0), e.g. from :func:`moreira_muir_constant`.
    max_leverage : float
        Cap on the weight.
    """
    var = np.asarray(variance, dtype=float)
    if c <= 0 or max_leverage <= 0:
        raise ConfigError("c and max_leverage must be positive")
    if np.any(~np.isfinite(var)) or np.any(var <= 0):
        raise DataError("variance must be finite and positive")
    return np.minimum(c / var, max_leverage)


def moreira_muir_constant(variances: ArrayLike, target_vol: float) -> float:
    """``c`` such that the uncapped Moreira-Muir weights have average variance ``target_vol^2``.

    ``mean(w_t^2 sigma_t^2) = c^2 mean(1 / sigma_t^2) = target_vol^2``. (Moreira and Muir choose ``c``
    so that the managed and unmanaged portfolios have the same unconditional volatility.)
    """
    var = np.asarray(variances, dtype=float)
    if np.any(~np.isfinite(var)) or np.any(var <= 0):
        raise DataError("variances must be finite and positive")
    return float(target_vol / np.sqrt(np.mean(1.0 / var)))


def buy_and_hold_policy(shares: ArrayLike) -> Policy:
    """Policy holding constant ``shares`` (shape (n,)) on every path."""
    th = np.asarray(shares, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        return np.broadcast_to(th, prices.shape).copy()

    return policy


def _alive_variance(
    prices: np.ndarray, state: PolicyState, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Paths whose basket is tradable (positive prices where weighted, positive variance) and the
    per-year return variance of one unit of money in the basket (``w' Sigma^ret w``)."""
    used = weights != 0
    alive = np.all((prices > 0) | ~used[None, :], axis=1)
    sh = np.zeros_like(prices)
    np.divide(np.broadcast_to(weights, prices.shape), prices, out=sh, where=alive[:, None] & used)
    var = np.einsum("pi,pij,pj->p", sh, state.price_cov, sh)
    alive &= var > 0
    return alive, var


def _money_to_shares(money: np.ndarray, prices: np.ndarray, alive: np.ndarray) -> np.ndarray:
    # paths with an absorbed (zero or negative) forward or a zero-volatility basket hold nothing
    out = np.zeros_like(money)
    np.divide(money, prices, out=out, where=alive[:, None] & (money != 0))
    return out


def volatility_managed_policy(
    weights: ArrayLike, target_vol: float, notional: float = 1.0, max_leverage: float = np.inf
) -> Policy:
    """Time-axis risk parity for a fixed-mix risky basket: money ``notional * s_t * weights``.

    ``s_t = min(target_vol / sigma_t, max_leverage)`` with ``sigma_t^2 = w' Sigma^ret_t w`` the
    instantaneous variance of the basket (known at ``t`` from the state). Each step contributes
    ``(notional * target_vol)^2 dt`` to the terminal variance while the cap is not binding. Paths on
    which the basket has no risk left (an absorbed SABR forward) hold nothing.
    """
    w = np.asarray(weights, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        alive, var = _alive_variance(prices, state, w)
        scale = np.zeros(prices.shape[0])
        scale[alive] = time_parity_weight(np.sqrt(var[alive]), target_vol, max_leverage)
        return _money_to_shares(notional * scale[:, None] * w[None, :], prices, alive)

    return policy


def moreira_muir_policy(
    weights: ArrayLike, c: float, notional: float = 1.0, max_leverage: float = np.inf
) -> Policy:
    """Moreira-Muir scaling of a fixed-mix basket: money ``notional * min(c / sigma_t^2, L) * w``."""
    w = np.asarray(weights, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        alive, var = _alive_variance(prices, state, w)
        scale = np.zeros(prices.shape[0])
        scale[alive] = moreira_muir_weight(var[alive], c, max_leverage)
        return _money_to_shares(notional * scale[:, None] * w[None, :], prices, alive)

    return policy


# ---------------------------------------------------------------------------------------------
# (d) continuous-time mean-variance policy (section 4.3; Zhou and Li 2000)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZhouLiMarket:
    """Bond ``dS0 = r S0 dt`` and stock ``dS1 = S1 (b dt + sigma dW)``; objective
    ``min -E[x_T] + risk_aversion * Var(x_T)`` over self-financing money policies.

    Parameters
    ----------
    r, b, sigma : float
        Rate, stock drift and volatility (per year); ``b != r``, ``sigma > 0``.
    x0 : float
        Initial wealth (currency).
    horizon : float
        ``T`` in years.
    risk_aversion : float
        ``mu > 0`` of the objective.

    Notes
    -----
    With ``rho = (b - r)^2 / sigma^2`` and ``a = (b - r) / sigma^2`` the optimal feedback policy is
    ``u_stock(t, x) = -a (x - gamma e^{-r(T-t)})``, ``gamma = x0 e^{rT} + e^{rho T} / (2 mu)``.
    ``y_t = x_t - gamma e^{-r(T-t)}`` is a geometric Brownian motion:
    ``dy = y ((r - rho) dt - sqrt(rho) dW)``, which gives every moment used here in closed form.
    """

    r: float = 0.03
    b: float = 0.10
    sigma: float = 0.20
    x0: float = 1.0
    horizon: float = 1.0
    risk_aversion: float = 1.0

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.horizon <= 0 or self.risk_aversion <= 0 or self.b == self.r:
            raise ConfigError("ZhouLiMarket needs sigma > 0, horizon > 0, risk_aversion > 0, b != r")

    @property
    def rho(self) -> float:
        """Squared market price of risk ``(b - r)^2 / sigma^2`` (per year)."""
        return (self.b - self.r) ** 2 / self.sigma**2

    @property
    def a(self) -> float:
        """Merton fraction ``(b - r) / sigma^2``."""
        return (self.b - self.r) / self.sigma**2

    @property
    def gamma(self) -> float:
        """Terminal wealth target ``gamma`` of the embedded quadratic problem (currency)."""
        return self.x0 * np.exp(self.r * self.horizon) + np.exp(self.rho * self.horizon) / (
            2.0 * self.risk_aversion
        )

    @property
    def y0(self) -> float:
        return self.x0 - self.gamma * np.exp(-self.r * self.horizon)

    @property
    def expected_terminal_wealth(self) -> float:
        return self.gamma + self.y0 * np.exp((self.r - self.rho) * self.horizon)

    @property
    def terminal_variance(self) -> float:
        """``Var(x_T) = y0^2 e^{2(r - rho)T} (e^{rho T} - 1)`` (currency^2)."""
        t = self.horizon
        return self.y0**2 * np.exp(2 * (self.r - self.rho) * t) * np.expm1(self.rho * t)

    def bliss_wealth(self, t: ArrayLike) -> np.ndarray:
        """``gamma e^{-r(T-t)}``: above it the policy shorts the stock."""
        return self.gamma * np.exp(-self.r * (self.horizon - np.asarray(t, dtype=float)))

    def mean_wealth(self, t: ArrayLike) -> np.ndarray:
        """``E[x_t]`` (currency)."""
        t = np.asarray(t, dtype=float)
        return self.bliss_wealth(t) + self.y0 * np.exp((self.r - self.rho) * t)


def zhou_li_policy(market: ZhouLiMarket, t: ArrayLike, x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Optimal money in the bond and in the stock at time ``t`` (years) and wealth ``x`` (currency).

    Returns
    -------
    u_bond, u_stock : ndarray
        Broadcast shape of ``t`` and ``x``; ``u_bond + u_stock = x``.
    """
    x = np.asarray(x, dtype=float)
    u_stock = -market.a * (x - market.bliss_wealth(t))
    return x - u_stock, u_stock


def mean_variance_contributions(
    market: ZhouLiMarket, t: ArrayLike, x: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Instantaneous risk contributions of the mean-variance policy (Corollary 17, money manner).

    ``c_i = u_i (mu_i Y_t + (sigma z_t)_i)`` with ``Y_t = E[x_T | F_t] - E[x_T]`` and ``z_t`` the
    integrand of ``E[x_T | F_t]``: with ``y = x - gamma e^{-r(T-t)}``, ``E_t = e^{(r - rho)(T-t)}``,
    ``K = y0 e^{(r - rho)T}``::

        Y_t      = E_t y - K
        c_bond   = r u_bond Y_t
        c_stock  = u_stock (b Y_t + sigma^2 E_t u_stock)

    Both are quadratic in the spot wealth ``x``; ``E[int (c_bond + c_stock) dt] = Var(x_T)``.

    Parameters
    ----------
    market : ZhouLiMarket
    t : array_like
        Time in years.
    x : array_like
        Spot wealth (currency).

    Returns
    -------
    c_bond, c_stock : ndarray
        Contribution densities in currency^2 per year.
    """
    m = market
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    et = np.exp((m.r - m.rho) * (m.horizon - t))
    k = m.y0 * np.exp((m.r - m.rho) * m.horizon)
    y = x - m.bliss_wealth(t)
    big_y = et * y - k
    u_bond, u_stock = zhou_li_policy(m, t, x)
    return m.r * u_bond * big_y, u_stock * (m.b * big_y + m.sigma**2 * et * u_stock)


def mean_variance_expected_contributions(
    market: ZhouLiMarket, t: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """``E[c_bond(t, x_t)]`` and ``E[c_stock(t, x_t)]`` in closed form (currency^2 per year).

    Uses ``E[y_t] = y0 e^{(r - rho)t}`` and ``E[y_t^2] = y0^2 e^{(2r - rho)t}``.
    """
    m = market
    t = np.asarray(t, dtype=float)
    et = np.exp((m.r - m.rho) * (m.horizon - t))
    k = m.y0 * np.exp((m.r - m.rho) * m.horizon)
    ey = m.y0 * np.exp((m.r - m.rho) * t)
    ey2 = m.y0**2 * np.exp((2 * m.r - m.rho) * t)
    g = m.bliss_wealth(t)
    # E[y Y] = E_t E[y^2] - K E[y];  E[Y] = E_t E[y] - K = 0
    eyy = et * ey2 - k * ey
    c_bond = m.r * ((1.0 + m.a) * eyy + g * (et * ey - k))
    c_stock = -m.a * m.b * eyy + m.sigma**2 * m.a**2 * et * ey2
    return c_bond, c_stock


def zhou_li_wealth_at_price(
    market: ZhouLiMarket, t: ArrayLike, price: ArrayLike, s0: float = 1.0
) -> np.ndarray:
    """Wealth of the mean-variance policy as a function of the stock's spot price (pathwise).

    Both ``y_t = x_t - gamma e^{-r(T-t)}`` and the stock are driven by the same Brownian motion:
    ``y_t = y0 exp((r - 1.5 rho) t - lam W_t)`` with ``lam = (b - r) / sigma`` and
    ``W_t = (log(S_t / s0) - (b - sigma^2 / 2) t) / sigma``, so under continuous rebalancing

        x_t = gamma e^{-r(T-t)} + y0 exp((r - 1.5 rho + lam (b - sigma^2/2) / sigma) t) (S_t/s0)^(-lam/sigma)

    exactly. Since ``y0 < 0`` the wealth stays below the bliss wealth: the policy is long the stock
    (``b > r``) on every path, and rises with the stock price.

    Parameters
    ----------
    market : ZhouLiMarket
    t : array_like
        Time in years.
    price : array_like
        Stock price ``S_t`` (> 0), same unit as ``s0``.
    s0 : float
        Stock price at time 0.

    Returns
    -------
    ndarray
        ``x_t`` (currency), broadcast shape of ``t`` and ``price``.
    """
    m = market
    t = np.asarray(t, dtype=float)
    s = np.asarray(price, dtype=float)
    if np.any(~np.isfinite(s)) or np.any(s <= 0) or s0 <= 0:
        raise DataError("prices and s0 must be positive and finite")
    lam = (m.b - m.r) / m.sigma
    growth = (m.r - 1.5 * m.rho + lam * (m.b - 0.5 * m.sigma**2) / m.sigma) * t
    return m.bliss_wealth(t) + m.y0 * np.exp(growth) * (s / s0) ** (-lam / m.sigma)


def zhou_li_sign_change_price(market: ZhouLiMarket, t: ArrayLike, s0: float = 1.0) -> np.ndarray:
    """Stock price below which the stock's risk contribution of the mean-variance policy is negative.

    With ``u = -a y`` and ``Y_t = E_t y - K`` the stock's contribution is
    ``c_stock = -a y (r E_t y - b K)``: zero at ``y = b K / (r E_t)``, i.e. at the wealth
    ``bliss + (b / r) (E[x_t] - bliss)``, far below the mean, where the drift term ``b Y_t`` (negative)
    outweighs the diffusion term. Through :func:`zhou_li_wealth_at_price` this is the price

        S*(t) = s0 (r / b)^(sigma^2 / (b - r)) exp((b + r - sigma^2) t / 2)

    which depends neither on the risk aversion nor on ``x0``. For ``S_t < S*(t)`` (a crash of the stock)
    the policy is long the stock and yet its contribution is negative; above, it is positive.

    Parameters
    ----------
    market : ZhouLiMarket
        Needs ``b > r > 0`` (otherwise the contribution keeps one sign on reachable states).
    t : array_like
        Time in years.
    s0 : float
        Stock price at time 0.

    Returns
    -------
    ndarray
        ``S*(t)``, same unit as ``s0``.
    """
    m = market
    if not m.b > m.r > 0:
        raise ConfigError(f"the sign change needs b > r > 0, got r={m.r!r}, b={m.b!r}")
    t = np.asarray(t, dtype=float)
    return s0 * (m.r / m.b) ** (m.sigma**2 / (m.b - m.r)) * np.exp(0.5 * (m.b + m.r - m.sigma**2) * t)


def zhou_li_mc_policy(market: ZhouLiMarket) -> Policy:
    """The mean-variance policy for :func:`simulate_time_risk` on
    ``GBM(s0=[1, 1], mu=[r, b], sigma=[0, sigma])`` (asset 0 = bond, 1 = stock), with ``x0 = market.x0``.

    Returns shares ``(u_bond / S0, u_stock / S1)`` computed from the simulated wealth.
    """

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        u_bond, u_stock = zhou_li_policy(market, t, state.wealth)
        return np.column_stack([u_bond, u_stock]) / prices

    return policy


# ---------------------------------------------------------------------------------------------
# (e) risk budgeting with less information: the projection corollary (Corollary 21)
# ---------------------------------------------------------------------------------------------


def batch_risk_budget_positions(
    cov: ArrayLike, budgets: ArrayLike, *, tol: float = 1e-12, max_iter: int = 100
) -> np.ndarray:
    """Solve ``theta_i (Sigma theta)_i = b_i``, ``theta > 0``, for a batch of problems.

    Newton's method with backtracking on the strictly convex
    ``f(theta) = 0.5 theta' Sigma theta - sum_i b_i log(theta_i)`` (the source's eq. 16 / Theorem 19 in
    one period); the stationary point meets the budgets exactly, without normalization.

    Parameters
    ----------
    cov : array_like, shape (P, n, n)
        Positive definite covariances.
    budgets : array_like, shape (P, n)
        Positive budgets (units of ``theta' Sigma theta``).
    tol : float
        Stop when ``max |theta_i (Sigma theta)_i / b_i - 1| <= tol``.
    max_iter : int

    Returns
    -------
    ndarray, shape (P, n)

    Raises
    ------
    SolverError
        When some problem does not converge.
    """
    s = np.asarray(cov, dtype=float)
    b = np.asarray(budgets, dtype=float)
    if s.ndim != 3 or b.shape != s.shape[:2] or s.shape[1] != s.shape[2]:
        raise DataError(f"shapes: cov {s.shape}, budgets {b.shape}")
    if np.any(~np.isfinite(b)) or np.any(b <= 0) or np.any(~np.isfinite(s)):
        raise DataError("budgets must be positive and finite; cov finite")
    diag = np.einsum("pii->pi", s)
    if np.any(diag <= 0):
        raise DataError("covariances need positive variances")
    theta = np.sqrt(b / diag)  # exact when Sigma is diagonal
    # rescale each start so that theta' S theta = sum b (the optimal value of the quadratic term)
    q = np.einsum("pi,pij,pj->p", theta, s, theta)
    theta *= np.sqrt(b.sum(axis=1) / q)[:, None]

    def obj(th: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("pi,pij,pj->p", th, s, th) - np.sum(b * np.log(th), axis=1)

    for _ in range(max_iter):
        st = np.einsum("pij,pj->pi", s, theta)
        err = np.max(np.abs(theta * st / b - 1.0), axis=1)
        if np.all(err <= tol):
            return theta
        grad = st - b / theta
        hess = s + np.einsum("pi,ij->pij", b / theta**2, np.eye(s.shape[1]))
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        f0 = obj(theta)
        slope = np.sum(grad * step, axis=1)
        alpha = np.ones(theta.shape[0])
        for _ in range(60):
            cand = theta + alpha[:, None] * step
            ok = np.all(cand > 0, axis=1)
            fc = np.where(ok, obj(np.where(ok[:, None], cand, theta)), np.inf)
            # slack of a few ulps of f: near the optimum the decrease is below round-off
            good = ok & (fc <= f0 + 1e-4 * alpha * slope + 64 * np.finfo(float).eps * np.abs(f0))
            if np.all(good):
                break
            alpha = np.where(good, alpha, 0.5 * alpha)
        theta = theta + alpha[:, None] * step
    st = np.einsum("pij,pj->pi", s, theta)
    err = np.max(np.abs(theta * st / b - 1.0))
    if err <= max(tol, 1e-9):
        return theta
    raise SolverError(f"risk budgeting Newton did not converge (max relative error {err:.3g})")


def risk_budget_positions(cov: ArrayLike, budgets: ArrayLike, *, tol: float = 1e-12) -> np.ndarray:
    """Single problem version of :func:`batch_risk_budget_positions`: shapes (n, n), (n,) -> (n,)."""
    s = np.asarray(cov, dtype=float)
    b = np.asarray(budgets, dtype=float)
    return batch_risk_budget_positions(s[None], b[None], tol=tol)[0]


Budget = Callable[[float, np.ndarray, PolicyState], np.ndarray]
"""``budget(t, prices (P, n), state) -> b_t (P, n)``: positive risk budget density per year."""


@dataclass(frozen=True)
class ProjectionDemo:
    """Result of :func:`projection_demo` (in-sample: all three policies on the same paths).

    Attributes
    ----------
    budget : ndarray, shape (K, n)
        ``E[int_bucket b_t dt]`` per bucket and asset.
    budget_total_se : ndarray, shape (n,)
        Standard error of ``budget.sum(axis=0)`` (a mean over the simulated paths).
    full, deterministic, buy_and_hold : MCTimeRiskResult
        Contributions of the full-information policy (``theta_t m_t = b_t`` pathwise), of the
        deterministic time-varying projection (``theta_t`` solves the budgeting problem with
        ``E[Sigma_t]``, ``E[b_t]``) and of the buy-and-hold projection (one constant ``theta`` solving
        ``theta_i (V theta)_i = E[int b_i dt]`` with ``V = E[int Sigma_t dt] = Cov(S_T)``).
    bh_shares : ndarray, shape (n,)
        The buy-and-hold projection ``theta``.
    objective : dict[str, float]
        ``0.5 E[int theta' Sigma theta dt] - E[int sum_i b_i log theta_i dt]`` for each policy; the
        ordering ``full <= deterministic <= buy_and_hold`` follows from the nested admissible sets.
    pathwise_budget_error : dict[str, float]
        Mean over paths of ``sum_{k,i} |contribution - budget|`` relative to the mean total budget.
    """

    budget: np.ndarray
    budget_total_se: np.ndarray
    full: MCTimeRiskResult
    deterministic: MCTimeRiskResult
    buy_and_hold: MCTimeRiskResult
    bh_shares: np.ndarray
    objective: dict[str, float]
    pathwise_budget_error: dict[str, float]


def projection_demo(
    model: PriceModel,
    budget: Budget,
    *,
    horizon: float = 1.0,
    n_steps: int = 100,
    n_paths: int = 2000,
    n_buckets: int = 4,
    seed: int = 0,
) -> ProjectionDemo:
    """Corollary 21 on simulated data: a buy-and-hold policy as the projection of a time-varying budget.

    Three admissible sets are nested: adapted policies (full information), deterministic functions of
    time, constants (buy and hold). Minimizing ``0.5 Var(X_T) - E int b' log(theta) dt`` over each
    (martingale prices: ``Var(X_T) = E int theta' Sigma theta dt``) gives the policy whose risk
    distribution is the projection of ``b`` onto the corresponding sigma-algebra:

    * full information: ``theta_{i,t} (Sigma_t theta_t)_i = b_{i,t}`` on every path and step;
    * deterministic: ``theta_{i,t} (E[Sigma_t] theta_t)_i = E[b_{i,t}]`` (expected contributions per
      step equal the expected budget, but not pathwise);
    * buy and hold: ``theta_i (V theta)_i = E[int b_i dt]`` with ``V = E[int Sigma_t dt] = Cov(S_T)``
      (the single-period risk-budgeting problem; only the total per asset matches).

    Expectations are cross-sectional means over the simulated paths (the same paths for the three
    policies: the paths depend on the seed only), so the identities above hold exactly in sample.

    Parameters
    ----------
    model : GBM or SABR
        Zero-drift price dynamics (the reference measure).
    budget : callable
        ``budget(t, prices, state) -> (P, n)`` positive budget density (price^2 per year).
    horizon, n_steps, n_paths, n_buckets, seed
        As in :func:`simulate_time_risk`.

    Returns
    -------
    ProjectionDemo
    """
    kw = dict(horizon=horizon, n_steps=n_steps, n_paths=n_paths, n_buckets=n_buckets, seed=seed)
    dt = horizon / n_steps
    edges = np.linspace(0.0, horizon, n_buckets + 1)
    n = model.n
    logs: dict[str, np.ndarray] = {}
    budget_bucket = np.zeros((n_paths, n_buckets, n))
    v_int = np.zeros((n, n))
    b_int = np.zeros(n)

    def bucket(t: float) -> int:
        return min(int(np.searchsorted(edges, t + 1e-12 * dt, side="right")) - 1, n_buckets - 1)

    def full(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        nonlocal v_int, b_int
        b = np.asarray(budget(t, prices, state), dtype=float)
        theta = batch_risk_budget_positions(state.price_cov, b)
        budget_bucket[:, bucket(t), :] += b * dt
        v_int = v_int + state.price_cov.mean(axis=0) * dt
        b_int = b_int + b.mean(axis=0) * dt
        logs["full"] = logs.get("full", 0.0) + np.sum(b * np.log(theta), axis=1) * dt
        return theta

    def deterministic(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        b = np.asarray(budget(t, prices, state), dtype=float)
        theta = risk_budget_positions(state.price_cov.mean(axis=0), b.mean(axis=0))
        logs["deterministic"] = logs.get("deterministic", 0.0) + np.sum(b * np.log(theta), axis=1) * dt
        return np.broadcast_to(theta, prices.shape).copy()

    res_full = simulate_time_risk(full, model, **kw)
    res_det = simulate_time_risk(deterministic, model, **kw)
    theta_bh = risk_budget_positions(v_int, b_int)

    def bh(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        b = np.asarray(budget(t, prices, state), dtype=float)
        logs["buy_and_hold"] = logs.get("buy_and_hold", 0.0) + np.sum(b * np.log(theta_bh), axis=1) * dt
        return np.broadcast_to(theta_bh, prices.shape).copy()

    res_bh = simulate_time_risk(bh, model, **kw)
    results = {"full": res_full, "deterministic": res_det, "buy_and_hold": res_bh}
    objective = {
        name: float(0.5 * r.contributions.sum() - np.mean(logs[name])) for name, r in results.items()
    }
    mean_budget = budget_bucket.mean(axis=0)
    total_budget = float(mean_budget.sum())
    # pathwise errors need per-path, per-asset contributions: compare bucket totals over assets
    path_budget = budget_bucket.sum(axis=2)
    pathwise = {
        name: float(np.mean(np.sum(np.abs(r.path_bucket_totals - path_budget), axis=1)) / total_budget)
        for name, r in results.items()
    }
    total_se = budget_bucket.sum(axis=1).std(axis=0, ddof=1) / np.sqrt(n_paths)
    return ProjectionDemo(mean_budget, total_se, res_full, res_det, res_bh, theta_bh, objective,
                          pathwise)
