"""Monte Carlo of time-axis contributions: GBM and SABR dynamics, policies as functions of
(t, prices, state), the aggregation test (section 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drb.errors import ConfigError, DataError
from strategies.time_axis.contributions import bucket_shares, herfindahl

ArrayLike = Any

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
    edges = _time_buckets(horizon, n_steps, n_paths, n_buckets, bucket_edges)
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
    return _summarize(edges, wealth, contrib, gains, n_steps)


def _time_buckets(
    horizon: float, n_steps: int, n_paths: int, n_buckets: int, bucket_edges: ArrayLike | None
) -> np.ndarray:
    """Check the sizes of :func:`simulate_time_risk` and return its bucket edges, shape (K + 1,)."""
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
    return edges


def _summarize(
    edges: np.ndarray, wealth: np.ndarray, contrib: np.ndarray, gains: np.ndarray, n_steps: int
) -> MCTimeRiskResult:
    """Monte Carlo means and standard errors of the simulated paths (shapes (P,), (P, K, n) x 2)."""
    p = wealth.shape[0]
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


