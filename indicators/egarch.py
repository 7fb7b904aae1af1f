"""EGARCH(1,1) conditional volatility with asymmetry: fits, an O(1) filter and the rolling estimator.

Model (``arch``'s ``vol="EGARCH", p=1, o=1, q=1`` with a constant mean), on returns scaled to percent
(``y = 100 r``; ``arch`` is best conditioned on that scale)::

    eps_t = y_t - mu,  e_t = eps_t / sigma_t
    ln sigma^2_t = omega + alpha (|e_{t-1}| - sqrt(2/pi)) + gamma e_{t-1} + beta ln sigma^2_{t-1}

with Student-t (``dist="t"``, default) or normal innovations. The recursion starts from ``arch``'s
backcast and is clipped by ``arch``'s variance bounds, so the in-sample path equals ``arch``'s.

Fitting engines
---------------
``engine="fast"`` (default) maximizes exactly ``arch``'s log-likelihood (same backcast, variance bounds,
parameter bounds and density) with an analytic gradient (numba). A warm start (the previous refit's
parameters) goes straight to Newton's method (Hessian from differences of the analytic gradient,
then carried by BFGS updates);
a cold start, or a Newton run that does not converge, goes through L-BFGS-B first (from ``arch``'s
own starting values when cold). The likelihood is not differentiable in ``mu`` where a return equals
``mu`` (the ``|e_{t-1}|`` term); a maximum on such a kink stalls Newton, and a better one may lie a
few kinks away, so the fit ends with a block coordinate ascent across the kinks
(:func:`_mu_kink_polish`). Measured on the embedded market (``benchmarks/accuracy.py``): ``arch``
started from our optimum moves the forecast by 7e-9 (median) to 5e-6 (max); ``arch``'s own cold
and warm fits differ by up to 8e-4 (its local optima). A warm
refit costs about 2 ms, which is what makes monthly refits of many assets affordable
(``benchmarks/risk_model.py``). A warm fast fit that does not converge is repeated by the fast
engine from ``arch``'s own starting values; when both starts end on the invertibility constraint
and their constrained optima agree in log-likelihood (within the kink allowance, 1e-3), that
constrained optimum is accepted (``arch`` ends on it too: ``benchmarks/egarch_speed.py``). A warm
start that already sits on (or within 5e-3 of) the invertibility bound of the new window takes
that constrained optimum first, from both starts, instead of chasing a free optimum that is
most likely not invertible again (two L-BFGS-B runs of 200 iterations); where the constraint no
longer binds there, the point is settled as a free fit. ``engine="arch"`` calls
``arch_model(...).fit`` itself (warm-started); it is also the automatic retry when the fast engine
does not converge (first warm-started, then from arch's own starting values; not when the fast
engine converges to implausible parameters: arch maximizes the same likelihood), and the only
engine for ``dist`` other than ``"t"`` / ``"normal"``. Both engines fit the same model.

Admissible fits
---------------
Every fit is constrained to ``0 <= beta <= BETA_MAX`` (0.999) and to an invertible filter (the
empirical exponent of :func:`_lyapunov` below 0, Wintenberger 2013). A free optimum outside that
set (persistence at 1 on calm bond windows; filters where every shock lowers the volatility, whose
forecasts collapse) is replaced by the constrained optimum and flagged ``boundary``. An optimum whose
strict convergence test fails is kept (``relaxed``) when it is plausible and its likelihood beats
the parameters in hand; otherwise the fit fails and the parameters in hand stay
(:class:`RefitTally` makes the next refit a cold start). Measured on real US data:
``benchmarks/egarch_real.py``.

Conventions
-----------
Input returns are **decimal** daily returns (simple returns as the strategies pass them; log returns
work the same way, the model does not distinguish). Every reported volatility is the one-step-ahead
forecast ``sigma_{t+1|t}`` known at the close of bar ``t``, **annualized** with ``sqrt(periods_per_year)``
and in decimals (0.16 = 16%).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from drb.cholesky import solve_pd
from drb.errors import DataError, EstimationWarning
from drb.search import sign_change

__all__ = [
    "SCALE",
    "BETA_MAX",
    "EGARCHFit",
    "egarch_fit",
    "egarch_filter",
    "egarch_step",
    "default_egarch_params",
    "rolling_egarch_volatility",
    "param_names",
    "RefitTally",
]

SCALE = 100.0
"""Returns are multiplied by this before fitting (percent units)."""

_SQRT2_OV_PI = 0.79788456080286541  # E|e| for e ~ N(0, 1), arch's constant
_LNSIGMA_MAX = float(np.log(np.finfo(np.double).max) - 0.1)
_FAST_DISTS = ("t", "normal")
_LN_BOUND = math.log(1e6)

BETA_MAX = 0.999
"""Upper bound of the persistence ``beta`` in every fit. An optimum on it is a ``boundary`` fit: the
window's volatility behaves like a unit root (seen on calm bond and commodity windows), the fit is
kept with ``beta = BETA_MAX`` (an almost integrated, EWMA-like log-variance) and counted apart."""
_AT_BOUND = 1e-6  # beta within this of BETA_MAX counts as on the bound


def param_names(dist: str) -> list[str]:
    """Parameter names in the order used everywhere here (``arch``'s order)."""
    names = ["mu", "omega", "alpha[1]", "gamma[1]", "beta[1]"]
    if dist == "t":
        names.append("nu")
    elif dist == "skewt":
        names += ["eta", "lambda"]
    elif dist == "ged":
        names.append("nu")
    return names


# --------------------------------------------------------------------------------------------------
# numba kernels (in-sample recursion, log-likelihood and its analytic gradient)
# --------------------------------------------------------------------------------------------------


def _filter_kernel_py(params, y, backcast, var_bounds):
    """In-sample ln sigma^2 path, identical to arch's egarch_recursion. Returns (lnsig2, std_resid)."""
    n = y.shape[0]
    mu, omega, alpha, gamma, beta = params[0], params[1], params[2], params[3], params[4]
    lns = np.empty(n)
    z = np.empty(n)
    for t in range(n):
        if t == 0:
            h = omega + beta * backcast
        else:
            h = omega + alpha * (abs(z[t - 1]) - _SQRT2_OV_PI) + gamma * z[t - 1] + beta * lns[t - 1]
        h = min(h, _LNSIGMA_MAX)
        s2 = math.exp(h)
        if s2 < var_bounds[t, 0]:
            s2 = var_bounds[t, 0]
            h = math.log(s2)
        elif s2 > var_bounds[t, 1]:
            s2 = var_bounds[t, 1] + math.log(s2) - math.log(var_bounds[t, 1])
            h = math.log(s2)
        lns[t] = h
        z[t] = (y[t] - mu) / math.sqrt(s2)
    return lns, z


def _nll_grad_kernel_py(params, y, backcast, var_bounds, student):
    """Sum of log-likelihood terms that depend on the data and its gradient.

    Returns ``(ll_data, grad (k,))``; the parameter-only constants (Student-t: they need digamma,
    which numba lacks) are added by the caller.
    """
    n = y.shape[0]
    mu, omega, alpha, gamma, beta = params[0], params[1], params[2], params[3], params[4]
    k = params.shape[0]
    nu = params[5] if student else 0.0
    grad = np.zeros(k)
    dh = np.zeros(5)
    dh_new = np.zeros(5)
    de = np.zeros(5)
    ll = 0.0
    h_prev = 0.0
    z_prev = 0.0
    for t in range(n):
        if t == 0:
            h = omega + beta * backcast
            dh_new[0] = 0.0
            dh_new[1] = 1.0
            dh_new[2] = 0.0
            dh_new[3] = 0.0
            dh_new[4] = backcast
        else:
            # e_{t-1} = eps_{t-1} exp(-h_{t-1}/2); d e / d theta
            inv_s = math.exp(-0.5 * h_prev)
            for j in range(5):
                de[j] = -0.5 * z_prev * dh[j]
            de[0] += -inv_s
            sgn = 1.0 if z_prev > 0 else (-1.0 if z_prev < 0 else 0.0)
            coef = alpha * sgn + gamma
            h = omega + alpha * (abs(z_prev) - _SQRT2_OV_PI) + gamma * z_prev + beta * h_prev
            for j in range(5):
                dh_new[j] = coef * de[j] + beta * dh[j]
            dh_new[1] += 1.0
            dh_new[2] += abs(z_prev) - _SQRT2_OV_PI
            dh_new[3] += z_prev
            dh_new[4] += h_prev
        if h > _LNSIGMA_MAX:
            h = _LNSIGMA_MAX
            for j in range(5):
                dh_new[j] = 0.0
        s2 = math.exp(h)
        if s2 < var_bounds[t, 0]:
            s2 = var_bounds[t, 0]
            h = math.log(s2)
            for j in range(5):
                dh_new[j] = 0.0
        elif s2 > var_bounds[t, 1]:
            s2 = var_bounds[t, 1] + math.log(s2) - math.log(var_bounds[t, 1])
            h = math.log(s2)
            for j in range(5):
                dh_new[j] = dh_new[j] / s2
        eps = y[t] - mu
        if student:
            q = eps * eps / (s2 * (nu - 2.0))
            ll += -0.5 * h - 0.5 * (nu + 1.0) * math.log1p(q)
            dl_dh = -0.5 + 0.5 * (nu + 1.0) * q / (1.0 + q)
            dl_deps = -(nu + 1.0) * eps / (s2 * (nu - 2.0) * (1.0 + q))
            grad[5] += -0.5 * math.log1p(q) + 0.5 * (nu + 1.0) * q / ((1.0 + q) * (nu - 2.0))
        else:
            ll += -0.5 * h - 0.5 * eps * eps / s2
            dl_dh = -0.5 + 0.5 * eps * eps / s2
            dl_deps = -eps / s2
        for j in range(5):
            grad[j] += dl_dh * dh_new[j]
        grad[0] += -dl_deps
        for j in range(5):
            dh[j] = dh_new[j]
        h_prev = h
        z_prev = eps / math.sqrt(s2)
    return ll, grad


def _lyap_grad_kernel_py(params, y, backcast, var_bounds):
    """The invertibility exponent of :func:`_lyapunov` (sequential mean) and its gradient in
    ``mu, omega, alpha, gamma, beta`` (shape (5,)), through the in-sample recursion of
    :func:`_filter_kernel` (same clipping)."""
    n = y.shape[0]
    mu, omega, alpha, gamma, beta = params[0], params[1], params[2], params[3], params[4]
    grad = np.zeros(5)
    dh = np.zeros(5)
    dz = np.zeros(5)
    total = 0.0
    h = 0.0
    h_prev = 0.0
    z = 0.0
    for t in range(n):
        if t == 0:
            h = omega + beta * backcast
            for j in range(5):
                dh[j] = 0.0
            dh[1] = 1.0
            dh[4] = backcast
        else:
            sgn = 1.0 if z > 0 else (-1.0 if z < 0 else 0.0)
            coef = alpha * sgn + gamma
            az = abs(z)
            h = omega + alpha * (az - _SQRT2_OV_PI) + gamma * z + beta * h
            for j in range(5):
                dh[j] = coef * dz[j] + beta * dh[j]
            dh[1] += 1.0
            dh[2] += az - _SQRT2_OV_PI
            dh[3] += z
            dh[4] += h_prev
        if h > _LNSIGMA_MAX:
            h = _LNSIGMA_MAX
            for j in range(5):
                dh[j] = 0.0
        s2 = math.exp(h)
        if s2 < var_bounds[t, 0]:
            s2 = var_bounds[t, 0]
            h = math.log(s2)
            for j in range(5):
                dh[j] = 0.0
        elif s2 > var_bounds[t, 1]:
            s2 = var_bounds[t, 1] + math.log(s2) - math.log(var_bounds[t, 1])
            h = math.log(s2)
            for j in range(5):
                dh[j] = dh[j] / s2
        sd = math.sqrt(s2)
        z = (y[t] - mu) / sd
        for j in range(5):
            dz[j] = -0.5 * z * dh[j]
        dz[0] -= 1.0 / sd
        d = beta - 0.5 * (alpha * abs(z) + gamma * z)
        total += math.log(max(abs(d), 1e-300))
        if abs(d) < 1e-300:
            d = 1e-300  # the floor of the value; a finite (huge) slope there
        sgn = 1.0 if z > 0 else (-1.0 if z < 0 else 0.0)
        c = -0.5 * (alpha * sgn + gamma)
        for j in range(5):
            grad[j] += c * dz[j] / d
        grad[2] += -0.5 * abs(z) / d
        grad[3] += -0.5 * z / d
        grad[4] += 1.0 / d
        h_prev = h
    return total / n, grad / n


_filter_kernel = numba.njit(cache=True)(_filter_kernel_py)
_lyap_grad_kernel = numba.njit(cache=True)(_lyap_grad_kernel_py)
_nll_grad_kernel = numba.njit(cache=True)(_nll_grad_kernel_py)


def _start_grid_kernel_py(res, backcast, var_bounds, grid):
    """Gaussian log-likelihood of the residuals ``res`` under each row ``(omega, alpha, gamma,
    beta)`` of ``grid`` (mean 0): the criterion of arch's ``EGARCH.starting_values`` grid search,
    one compiled pass per row instead of 48 Python-level arch calls (4.6 ms a cold start)."""
    n = res.shape[0]
    out = np.empty(grid.shape[0])
    params = np.zeros(5)
    for i in range(grid.shape[0]):
        for j in range(4):
            params[j + 1] = grid[i, j]
        lns, z = _filter_kernel(params, res, backcast, var_bounds)
        s = 0.0
        for t in range(n):
            s += lns[t] + z[t] * z[t]
        out[i] = -0.5 * (n * math.log(2.0 * math.pi) + s)
    return out


_start_grid_kernel = numba.njit(cache=True)(_start_grid_kernel_py)


def _loglik_and_grad(params: np.ndarray, y: np.ndarray, backcast: float, vb: np.ndarray, dist: str):
    """Full log-likelihood (arch's value) and gradient."""
    student = dist == "t"
    ll, grad = _nll_grad_kernel(params, y, backcast, vb, student)
    n = y.shape[0]
    if student:
        nu = params[5]
        ll += n * (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * math.log(math.pi * (nu - 2)))
        grad[5] += n * (0.5 * digamma((nu + 1) / 2) - 0.5 * digamma(nu / 2) - 0.5 / (nu - 2))
    else:
        ll += -0.5 * n * math.log(2 * math.pi)
    return ll, grad


# --------------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------------


@dataclass
class EGARCHFit:
    """Result of one EGARCH fit on a window (percent-scaled units inside, decimals where stated).

    Attributes
    ----------
    params : ndarray, shape (k,)
        ``mu, omega, alpha[1], gamma[1], beta[1]`` (+ distribution parameters), percent scale.
    converged : bool
        False when no acceptable optimum was found (a ``failed`` fit); ``params`` are then the
        parameters in hand (the previous ones if still plausible on this window, else
        :func:`default_egarch_params`).
    loglik : float
        Log-likelihood at ``params`` (arch's value; NaN when unknown).
    lnsig2 : ndarray, shape (T,)
        In-sample ln sigma^2_t (percent^2), t = 0..T-1 of the window.
    std_resid : ndarray, shape (T,)
        In-sample standardized residuals e_t.
    lnsig2_next : float
        ln sigma^2_{T|T-1}: the one-step-ahead forecast after the window's last return.
    engine : str
        ``"fast"``, ``"arch"`` or ``"fallback"``.
    message : str
        Optimizer message.
    ln_bounds : ndarray, shape (2,)
        Clip range of ln sigma^2 for the forward filter (window ln-variance +- ln 1e6).
    boundary : bool
        The optimum sits on a bound of the admissible set (a ``boundary`` fit): the persistence
        bound ``beta = BETA_MAX``, or the invertibility constraint (the free optimum's filter was
        not invertible, see :func:`_lyapunov`).
    relaxed : bool
        The optimizer's strict convergence test failed but the optimum is plausible and its
        likelihood beats the parameters in hand, so it was kept.
    """

    params: np.ndarray
    converged: bool
    loglik: float
    lnsig2: np.ndarray
    std_resid: np.ndarray
    lnsig2_next: float
    engine: str
    message: str = ""
    ln_bounds: np.ndarray | None = None
    boundary: bool = False
    relaxed: bool = False

    @property
    def forecast_vol(self) -> float:
        """Next-bar volatility forecast in decimals per bar (not annualized)."""
        return math.exp(0.5 * self.lnsig2_next) / SCALE

    @property
    def status(self) -> str:
        """``"failed"``, ``"boundary"`` or ``"converged"`` (the fit-statistics categories)."""
        if not self.converged:
            return "failed"
        return "boundary" if self.boundary else "converged"


def _ewma_bounds_kernel_py(res: np.ndarray) -> tuple[float, np.ndarray]:
    """arch's EWMA(0.94) backcast (variance) and loose per-bar variance bounds (its formulas)."""
    nobs = res.shape[0]
    tau = min(75, nobs)
    wsum = 0.0
    for i in range(tau):
        wsum += 0.94**i
    init = 0.0
    for i in range(tau):
        init += (0.94**i / wsum) * res[i] * res[i]
    mean = 0.0
    maxsq = 0.0
    for i in range(nobs):
        mean += res[i]
        if res[i] * res[i] > maxsq:
            maxsq = res[i] * res[i]
    mean /= nobs
    var = 0.0
    for i in range(nobs):
        var += (res[i] - mean) * (res[i] - mean)
    var /= nobs
    lower, min_upper, upper = var / 1e8, 1.0 + maxsq, 1e7 * (1.0 + maxsq)
    vb = np.empty((nobs, 2))
    s2 = init
    for t in range(nobs):
        if t > 0:
            s2 = 0.06 * res[t - 1] * res[t - 1] + 0.94 * s2
        lo, hi = s2 / 1e6, s2 * 1e6
        vb[t, 0] = lo if lo >= lower else lower
        if hi < min_upper:
            hi = min_upper
        vb[t, 1] = hi if hi <= upper else upper
    return init, vb


_ewma_bounds_kernel = numba.njit(cache=True)(_ewma_bounds_kernel_py)


def _prepare(y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """arch's backcast (ln-variance) and variance bounds for the window, at the sample-mean residuals.

    The same formulas as ``arch.univariate.EGARCH.backcast`` / ``variance_bounds`` (tested equal),
    compiled: building arch's objects for them cost more than a warm-started fit itself.
    Returns ``(backcast, var_bounds (T, 2), residuals)``.
    """
    res0 = y - y.mean()
    init, vb = _ewma_bounds_kernel(res0)
    return math.log(init), vb, res0


def _param_bounds(res0: np.ndarray, dist: str) -> list[tuple[float, float]]:
    """arch's parameter bounds (mean free, omega around the ln mean square, beta in [0, 1]),
    with beta capped at :data:`BETA_MAX` and, for Student-t, ``nu`` in [2.05, 500]."""
    lnv = math.log(float(np.mean(res0**2)))
    b = [(-np.inf, np.inf), (lnv - math.log(10000.0), lnv + math.log(10000.0)),
         (-np.inf, np.inf), (-np.inf, np.inf), (0.0, BETA_MAX)]
    if dist == "t":
        b.append((2.05, 500.0))
    return b


def _arch_model(y: np.ndarray, dist: str):
    from arch import arch_model

    return arch_model(y, mean="Constant", vol="EGARCH", p=1, o=1, q=1, dist=dist, rescale=False)


def default_egarch_params(returns: np.ndarray, dist: str = "t") -> np.ndarray:
    """Documented stand-in parameters when a first fit fails (no previous parameters to keep).

    RiskMetrics-like persistence: ``beta = 0.95, alpha = 0.10, gamma = -0.05``, ``omega`` set so the
    unconditional ln-variance equals the window's sample ln-variance, ``nu = 8`` for Student-t.
    """
    y = SCALE * np.asarray(returns, dtype=float)
    lnv = math.log(max(float(np.var(y)), 1e-12))
    p = [float(np.mean(y)), 0.05 * lnv, 0.10, -0.05, 0.95]
    if dist == "t":
        p.append(8.0)
    elif dist == "ged":
        p.append(1.5)
    elif dist == "skewt":
        p += [8.0, 0.0]
    return np.asarray(p, dtype=float)


# arch's EGARCH(1, 1, 1) starting-value grid, in its order (itertools.product of these lists).
_START_GRID = np.array([(a, g, b) for a in (0.01, 0.05, 0.1, 0.2) for g in (-0.1, 0.0, 0.1)
                        for b in (0.5, 0.7, 0.9, 0.98)])


def _cold_start(y: np.ndarray, res0: np.ndarray, dist: str, backcast: float, vb: np.ndarray) -> np.ndarray:
    """arch's own starting values: the best of its grid of volatility parameters by the Gaussian
    likelihood of ``res0`` (``EGARCH.starting_values``, the grid scored by our compiled filter:
    the same choice, tested), and for Student-t arch's kurtosis rule for ``nu``."""
    target = np.log(np.mean(res0**2))
    beta = _START_GRID[:, 2]
    grid = np.column_stack([(1.0 - beta) * target, _START_GRID])
    best = grid[int(np.argmax(_start_grid_kernel(res0, backcast, vb, grid)))]
    sv = [float(y.mean()), *best]
    if dist == "t":
        from arch.univariate import StudentsT

        _, z = _filter_kernel(np.concatenate([[0.0], best]), res0, backcast, vb)
        sv += list(StudentsT().starting_values(z))
    return np.asarray(sv, dtype=float)


# Convergence: the Newton decrement g' (-H)^-1 g / 2 (the log-likelihood gain a full Newton step
# still promises, total over the window) below _DECREMENT_TOL, or every free gradient entry of the
# mean log-likelihood below _GTOL. The likelihood has kinks in ``mu`` (the |e_{t-1}| term is not
# differentiable where a return equals mu), and its maximum often sits on one: there Newton steps
# stop improving while the gradient stays finite. A step that cannot gain anything although the
# promised gain is below _KINK_DECREMENT_TOL (a distance of 0.045 standard errors in the
# information metric) is that case, and is accepted as converged.
_DECREMENT_TOL = 1e-11
_KINK_DECREMENT_TOL = 1e-3
_GTOL = 1e-5


def _fit_fast(y, dist, start, backcast, vb, bounds, warm: bool):
    """Maximize arch's log-likelihood. Returns (params, converged, loglik, message).

    A warm start (the previous refit's parameters, a window shifted by ``refit_every`` bars) is
    already in Newton's quadratic region: Newton's method from it converges in 2-4 steps at a tenth
    of the cost of L-BFGS-B. A cold start, or a Newton run that does not converge, goes through
    L-BFGS-B (analytic gradient) and then the same Newton steps to settle the flat ``nu`` direction.
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    if warm:
        x, ll, ok = _newton(start, y, dist, backcast, vb, lo, hi)
        if ok:
            x, ll = _mu_kink_polish(x, ll, y, dist, backcast, vb, lo, hi)
            return x, True, ll, "Newton from the warm start"
    n = y.shape[0]

    def fun(x):
        ll, g = _loglik_and_grad(x, y, backcast, vb, dist)
        if not np.isfinite(ll):
            return 1e10, np.zeros_like(x)
        return -ll / n, -g / n

    res = minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        # 200: converging runs take 30-150 iterations; the rest chase a non-invertible optimum
        # that the constrained refit replaces (400 cost 15% more of the 20-asset path, same fits).
        options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 200},
    )
    x, ll, ok = _newton(res.x, y, dist, backcast, vb, lo, hi)
    ok = ok and bool(np.all(np.isfinite(x))) and np.isfinite(ll)
    if ok:
        x, ll = _mu_kink_polish(x, ll, y, dist, backcast, vb, lo, hi)
    return x, ok, ll, str(res.message)


def _fd_hessian(x, g, free, y, dist, backcast, vb, hi) -> np.ndarray:
    """Negative Hessian of the log-likelihood in the free coordinates (positive definite at a
    maximum): forward differences of the analytic gradient, one gradient per free coordinate."""
    k = x.shape[0]
    H = np.zeros((k, k))
    for i in np.flatnonzero(free):  # the held coordinates' columns are not used
        h = 1e-6 * max(1.0, abs(x[i]))
        xp = x.copy()
        xp[i] = xp[i] + h if xp[i] + h <= hi[i] else xp[i] - h
        H[:, i] = (_loglik_and_grad(xp, y, backcast, vb, dist)[1] - g) / (xp[i] - x[i])
    return -0.5 * (H + H.T)[np.ix_(free, free)]


def _newton(x, y, dist, backcast, vb, lo, hi, max_iter: int = 20, fix_mu: bool = False):
    """Projected Newton ascent on the log-likelihood; returns (x, loglik, converged).

    The gradient is analytic. The Hessian is the forward difference of the analytic gradient at the
    start (and whenever the set of free coordinates changes), then carried along by BFGS updates
    from the gradients the line search already computed: one gradient a step instead of one per
    coordinate (a warm refit took 4-5 steps of 7 gradients, about 1.3 ms, before). A step that
    fails with a carried Hessian is retried with a fresh one, so every failure verdict below is
    made with the difference Hessian. A coordinate at a bound whose gradient points outward is
    held there (the others take the Newton step). Converged when the Newton decrement is below
    ``_DECREMENT_TOL`` or the projected gradient of the mean log-likelihood below ``_GTOL``; not
    converged when the Hessian is not negative definite, a step cannot increase the likelihood,
    or ``max_iter`` steps do not get there (a stalled step with a small decrement is the kink case
    of ``_KINK_DECREMENT_TOL``: converged). With ``fix_mu`` the mean is held (the likelihood is
    smooth in the other parameters).
    """
    x = np.clip(np.asarray(x, dtype=float), lo, hi)
    k = x.shape[0]
    n = y.shape[0]
    ll, g = _loglik_and_grad(x, y, backcast, vb, dist)
    if not np.isfinite(ll):
        return x, ll, False
    bf = None  # negative Hessian in the free coordinates of ``bf_free``
    bf_free = None
    for _ in range(max_iter):
        at_lo = (x <= lo + 1e-10) & (g < 0)
        at_hi = (x >= hi - 1e-10) & (g > 0)
        free = ~(at_lo | at_hi)
        if fix_mu:
            free[0] = False
        gf = g[free]
        if float(np.max(np.abs(gf), initial=0.0)) / n < _GTOL * 1e-3:
            return x, ll, True
        fresh = bf is None or not np.array_equal(free, bf_free)
        if fresh:
            bf, bf_free = _fd_hessian(x, g, free, y, dist, backcast, vb, hi), free
        sf = _newton_direction(bf, gf)
        if sf is None:
            if fresh:
                return x, ll, False
            bf = None
            continue
        decrement = float(gf @ sf)
        if 0.5 * decrement < _DECREMENT_TOL:
            return x, ll, True
        step = np.zeros(k)
        step[free] = sf
        t = 1.0
        accepted = False
        for _half in range(12):
            xn = np.clip(x + t * step, lo, hi)
            lln, gn = _loglik_and_grad(xn, y, backcast, vb, dist)
            if np.isfinite(lln) and lln >= ll + 1e-4 * t * decrement:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            if not fresh:
                bf = None  # judge the stall with the difference Hessian
                continue
            pg = np.max(np.abs(gf)) / n
            return x, ll, bool(pg < _GTOL or 0.5 * decrement < _KINK_DECREMENT_TOL)
        bf = _bfgs_update(bf, (xn - x)[free], (g - gn)[free])
        x, ll, g = xn, lln, gn
    return x, ll, False


def _newton_direction(b: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """The Newton step ``b^-1 g`` for the negative Hessian ``b`` (None: not positive definite)."""
    out = np.empty(g.shape[0])
    return out if solve_pd(b, g, out) else None


def _bfgs_update(b: np.ndarray, s: np.ndarray, yv: np.ndarray) -> np.ndarray:
    """BFGS update of a positive definite curvature ``b`` (the negative Hessian) from a step ``s``
    and the gradient change ``yv = g_old - g_new``; unchanged when ``s'yv`` is not clearly
    positive (the update would lose definiteness)."""
    sy = float(s @ yv)
    if not sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(yv)):
        return b
    bs = b @ s
    return b + np.outer(yv, yv) / sy - np.outer(bs, bs) / float(s @ bs)


def _mu_kink_polish(x, ll, y, dist, backcast, vb, lo, hi, rounds: int = 3):
    """Block coordinate ascent across the kinks in ``mu``.

    The likelihood is smooth in ``mu`` between consecutive returns and kinked at each ``mu = y_t``.
    The best ``mu`` given the other parameters is where the ``mu``-derivative changes sign within
    +-0.004 of the Newton point (percent units; a Newton run that stalls on a kink is off by less):
    :func:`_mu_crossing` finds it on a kink or between two. Newton then re-optimizes the other
    parameters with ``mu`` held (smooth in them), until ``mu`` moves less than 1e-9.

    The kinks lie on hyperplanes ``mu = y_t`` only, so a point optimal in ``mu`` given the others
    and in the others given ``mu`` is stationary for the whole likelihood. Returns (x, loglik).
    Each round first asks whether the derivative already changes sign across the Newton point
    (:func:`_mu_bracket`: two derivatives; a third of the warm refits stop there).
    """

    def dmu(mu):
        z = x.copy()
        z[0] = mu
        return _loglik_and_grad(z, y, backcast, vb, dist)[1][0]

    for _ in range(rounds):
        m0 = float(x[0])
        bracket = _mu_bracket(dmu, m0)
        if bracket is None:
            break  # m0 is already the best mu given the others, or no sign change is bracketed
        mu = _mu_crossing(dmu, y, *bracket)
        z = x.copy()
        z[0] = mu
        ll_mu = _loglik_and_grad(z, y, backcast, vb, dist)[0]
        if not ll_mu >= ll:
            break
        z, ll_new, ok = _newton(z, y, dist, backcast, vb, lo, hi, fix_mu=True)
        if not ok or not np.isfinite(ll_new) or ll_new < ll:
            break
        x, ll = z, ll_new
        if abs(mu - m0) < 1e-9:
            break
    return x, ll


_MU_STEP = 1e-9  # the derivative is read this far either side of the Newton point
_MU_REACH = 0.004  # and the sign change sought within this reach of it (percent units)


def _mu_bracket(dmu, m0: float):
    """``(left, right)`` pairs ``(mu, dmu(mu))`` at ``m0 -+ _MU_REACH`` bracketing a sign change
    of the ``mu``-derivative (``dmu(left) > 0 > dmu(right)``), or None when ``m0`` is already the
    best ``mu`` given the others (the derivative is positive just left of it and not positive just
    right: a smooth Newton stop, or a stop on the kink at ``m0``; two derivatives) or no sign
    change is bracketed. The whole reach is searched otherwise: the side the derivative at ``m0``
    points to alone missed a better kink on the other side in 3 of 319 refits of the embedded
    market (up to 3e-4 in log-likelihood)."""
    if dmu(m0 - _MU_STEP) > 0.0 >= dmu(m0 + _MU_STEP):
        return None
    a, b = m0 - _MU_REACH, m0 + _MU_REACH
    fa, fb = dmu(a), dmu(b)
    return ((a, fa), (b, fb)) if fa > 0.0 and fb < 0.0 else None


def _mu_crossing(dmu, y: np.ndarray, left: tuple[float, float], right: tuple[float, float]) -> float:
    """Where the ``mu``-derivative ``dmu`` changes sign in ``[a, b]``, given ``left = (a, dmu(a))``
    and ``right = (b, dmu(b))`` with ``dmu(a) > 0 > dmu(b)``.

    First a bisection over the returns inside the bracket (the kinks, a handful within +-0.004)
    narrows it to two neighbours with no kink between them; then the maximum is the left kink when
    the derivative just right of it is not positive, the right kink when the derivative just left
    of it is still positive, and otherwise the root of the smooth derivative between them, by
    Illinois false position to 1e-10. Measured on the embedded market: 6-8 derivatives a round
    instead of the 19 of a plain bisection to 1e-7 (same kinks, interior roots within 1e-7).
    """
    (a, f_a), (b, f_b) = left, right
    pts = [a, *np.unique(y[(y > a) & (y < b)]).tolist(), b]
    i, j = sign_change(dmu, pts)
    lo_, hi_ = pts[i], pts[j]
    eps = min(1e-9, 0.25 * (hi_ - lo_))
    f_lo = dmu(lo_ + eps) if i > 0 else None  # derivative just right of the left kink
    if f_lo is not None and not f_lo > 0.0:
        return float(lo_)
    f_hi = dmu(hi_ - eps) if j < len(pts) - 1 else None  # just left of the right kink
    if f_hi is not None and f_hi > 0.0:
        return float(hi_)
    # A smooth root on (lo_, hi_): Illinois false position from the derivatives in hand
    # (scipy's brentq would evaluate both ends again: two more likelihood passes a round).
    xa, fa = (lo_ + eps, f_lo) if f_lo is not None else (a, f_a)
    xb, fb = (hi_ - eps, f_hi) if f_hi is not None else (b, f_b)
    side = 0
    xm = 0.5 * (xa + xb)
    prev = math.inf
    for _ in range(60):
        if xb - xa < 1e-10 or fa == fb:
            break
        xm = (xa * fb - xb * fa) / (fb - fa)
        if not xa < xm < xb:
            xm = 0.5 * (xa + xb)
        if abs(xm - prev) < 1e-10:
            break  # the false position has settled
        prev = xm
        fm = dmu(xm)
        if abs(fm) <= 1e-10 * (fa - fb) / (xb - xa):
            break  # within 1e-10 of the root (fa > 0 >= fb: a positive slope estimate)
        if fm > 0.0:
            xa, fa = xm, fm
            if side == 1:
                fb *= 0.5
            side = 1
        elif fm < 0.0:
            xb, fb = xm, fm
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            break
    return float(xm)


def _sane(x: np.ndarray, y: np.ndarray, backcast: float, vb: np.ndarray) -> bool:
    """Reject degenerate optima (seen with arch on i.i.d. data: |alpha| ~ 1e3, variance pinned at the
    variance bounds): |alpha|, |gamma| <= 1.5, 0 <= beta <= BETA_MAX, an invertible filter
    (:func:`_lyapunov` <= ``_LYAP_MAX``), unconditional ln-variance within
    a factor 100 of the sample variance (checked only when the
    mean-reversion time 1 / (1 - beta) is under a quarter of the window: near a unit root the
    window does not identify it), and the in-sample path and next forecast within that range too."""
    if x is None or not np.all(np.isfinite(x)):
        return False
    omega, alpha, gamma, beta = x[1], x[2], x[3], x[4]
    if abs(alpha) > 1.5 or abs(gamma) > 1.5 or not (0.0 <= beta <= BETA_MAX):
        return False
    lnv = math.log(max(float(np.var(y)), 1e-300))
    if 1.0 / (1.0 - beta) < 0.25 * y.shape[0] and abs(omega / (1.0 - beta) - lnv) >= math.log(100.0):
        return False
    lns, _ = _filter_kernel(np.asarray(x[:5], dtype=float), y, backcast, vb)
    if _lyapunov(x, y, backcast, vb) > _LYAP_MAX + 1e-8:
        return False
    nxt = float(egarch_step(x[None, :], lns[-1:], y[-1:] - x[0])[0])
    return abs(nxt - lnv) < math.log(100.0) and bool(np.all(np.isfinite(lns)))


def _fit_arch(y, dist, start, maxiter: int = 60):
    am = _arch_model(y, dist)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = am.fit(disp="off", starting_values=start, show_warning=False, options={"maxiter": maxiter})
        except Exception as exc:  # noqa: BLE001 - any optimizer failure is a failed fit
            return None, False, float("nan"), f"arch raised {type(exc).__name__}: {exc}"
    x = np.asarray(r.params, dtype=float)
    ok = r.convergence_flag == 0 and bool(np.all(np.isfinite(x)))
    return x, ok, float(r.loglikelihood), str(r.optimization_result.message)


def _held_params(r, y, dist, start, fallback, backcast, vb) -> np.ndarray:
    """The parameters in hand: ``fallback``, else ``start``, else the defaults; and the defaults
    whenever the parameters in hand are not plausible on this window (a stale fit after a
    volatility regime change must not stay)."""
    held = fallback if fallback is not None else start
    if held is None or not _sane(np.asarray(held, dtype=float), y, backcast, vb):
        return default_egarch_params(r, dist)
    return np.asarray(held, dtype=float)


def _lyapunov(x: np.ndarray, y: np.ndarray, backcast: float, vb: np.ndarray) -> float:
    """Empirical invertibility exponent of the fitted filter on the window.

    ``mean_t ln|beta - (alpha |e_t| + gamma e_t) / 2|``: the mean log-derivative of ln sigma^2_{t+1}
    with respect to ln sigma^2_t. Negative: the filter forgets its start and small errors die out
    (Wintenberger 2013, "Continuous invertibility and stable QML estimation of the EGARCH(1,1)
    model"). Positive: a shock that lowers the volatility makes the next standardized residual
    larger and lowers it further; seen on calm windows of real data (SPY 2007, TLT, DBC), where
    such an optimum collapsed the forecast to 0.01% a year or blew it up tenfold.
    """
    _, z = _filter_kernel(np.asarray(x[:5], dtype=float), y, backcast, vb)
    d = np.abs(x[4] - 0.5 * (x[2] * np.abs(z) + x[3] * z))
    return float(np.mean(np.log(np.maximum(d, 1e-300))))


_LYAP_MAX = -1e-4  # the invertibility exponent an accepted fit must stay below
_LYAP_NEAR = -5e-3  # a warm start above this on the new window takes the bound-first path
_LYAP_ACTIVE = 1e-6  # an SLSQP optimum this close to _LYAP_MAX sits on the constraint


def _fit_invertible(x, y, dist, backcast, vb, bounds):
    """Maximize the likelihood subject to the invertibility exponent <= ``_LYAP_MAX`` (SLSQP from
    ``x``; the stable QML estimator of Wintenberger 2013). Returns (x, converged, loglik)."""
    n = y.shape[0]

    def fun(p):
        ll, g = _loglik_and_grad(p, y, backcast, vb, dist)
        return (1e10, np.zeros_like(p)) if not np.isfinite(ll) else (-ll / n, -g / n)

    k = x.shape[0]
    memo: list = [None, 0.0, None]  # SLSQP asks for the value and the gradient at the same point

    def lyap(p):
        if memo[0] is None or not np.array_equal(memo[0], p):
            memo[1], memo[2] = _lyap_grad_kernel(p, y, backcast, vb)
            memo[0] = np.array(p, copy=True)
        return memo[1], memo[2]

    def lyap_jac(p):
        g = np.zeros(k)
        g[:5] = -lyap(p)[1]
        return g

    con = {"type": "ineq", "fun": lambda p: _LYAP_MAX - lyap(p)[0], "jac": lyap_jac}
    # A feasible start: the news-impact coefficients shrunk towards 0 (at 0 the exponent is
    # ln beta < 0) just enough, by bisection; SLSQP from the infeasible optimum can wander off.
    lo_s, hi_s = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (lo_s + hi_s)
        xs = x.copy()
        xs[2:4] = x[2:4] * mid
        lo_s, hi_s = (mid, hi_s) if con["fun"](xs) >= 0.0 else (lo_s, mid)
    x = x.copy()
    x[2:4] = x[2:4] * lo_s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(fun, x, jac=True, method="SLSQP", bounds=bounds, constraints=[con],
                       options={"maxiter": 200, "ftol": 1e-12})
    xn = np.clip(res.x, [b[0] for b in bounds], [b[1] for b in bounds])
    if _lyapunov(xn, y, backcast, vb) > _LYAP_MAX + 1e-8:
        xn = x  # SLSQP left the feasible set: keep the feasible start
    ok = bool(res.success) and xn is not x
    return xn, ok, _loglik_and_grad(xn, y, backcast, vb, dist)[0]


def _constrained(x, y, dist, backcast, vb, bounds, msg):
    """An optimum brought onto the admissible set and re-optimized there.

    ``x`` outside the bounds (an ``arch`` optimum with beta in (BETA_MAX, 1]) is projected onto
    them and re-optimized; a non-invertible one (:func:`_lyapunov` >= 0) is re-fitted under the
    invertibility constraint. Returns ``(x, converged, loglik, msg, on_invertibility_bound)``;
    ``converged`` is the strict flag of the re-optimization (True when nothing moved).
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    xc = np.clip(x, lo, hi)
    ok, ll = True, float("nan")
    if not np.array_equal(xc, x):
        xc, ok, ll, msg = _fit_fast(y, dist, xc, backcast, vb, bounds, True)
    if not np.all(np.isfinite(xc)) or _lyapunov(xc, y, backcast, vb) <= _LYAP_MAX:
        ll = ll if math.isfinite(ll) else _loglik_and_grad(xc, y, backcast, vb, dist)[0]
        return xc, ok, ll, msg, False
    xn, ok, ll = _fit_invertible(xc, y, dist, backcast, vb, bounds)
    return xn, ok, ll, f"{msg}; refitted under the invertibility constraint", True


def _select(cands: list, ll_held: float):
    """Pick the accepted optimum among plausible candidates
    ``(x, converged, loglik, msg, engine, on_invertibility_bound)``.

    The best likelihood wins if its strict flag is set or if it beats the parameters in hand
    (``relaxed``); else the best strictly converged one; else None (a failed fit).
    Returns ``(candidate, relaxed)``.
    """
    if not cands:
        return None, False
    best = max(cands, key=lambda c: c[2])
    if best[1]:
        return best, False
    if math.isfinite(ll_held) and best[2] > ll_held + 1e-6:
        return best, True
    strict = [c for c in cands if c[1]]
    return (max(strict, key=lambda c: c[2]), False) if strict else (None, False)


def egarch_fit(
    returns: np.ndarray,
    dist: str = "t",
    start: np.ndarray | None = None,
    *,
    engine: str = "fast",
    fallback: np.ndarray | None = None,
) -> EGARCHFit:
    """Fit EGARCH(1,1) with asymmetry to one window of decimal returns.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Decimal returns of the window (finite).
    dist : {"t", "normal", "skewt", "ged"}
        Innovation distribution (``arch`` names).
    start : ndarray, optional
        Warm-start parameters (percent scale, ``param_names(dist)`` order); cold start otherwise.
    engine : {"fast", "arch"}
        See the module docstring. A non-converged fast fit is retried with ``arch``.
    fallback : ndarray, optional
        The parameters in hand (default: ``start`` if given, else :func:`default_egarch_params`;
        the defaults also when they are implausible on this window). They are kept when no
        acceptable optimum is found, and a fit whose strict convergence test fails is still kept
        when it is plausible and its likelihood beats theirs (``relaxed``).

    Returns
    -------
    EGARCHFit
        Never raises for a numerical failure: ``converged=False`` and the parameters in hand.
        Persistence is bounded by :data:`BETA_MAX` and the filter must be invertible; an optimum
        on either bound has ``boundary=True``.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.shape[0] < 10 or not np.all(np.isfinite(r)):
        raise DataError("egarch_fit: need a finite 1-d window of at least 10 returns")
    if engine not in ("fast", "arch"):
        raise DataError(f"egarch_fit: unknown engine {engine!r}")
    y = SCALE * r
    backcast, vb, res0 = _prepare(y)
    held = _held_params(r, y, dist, start, fallback, backcast, vb)
    smooth = dist in _FAST_DISTS  # our likelihood (and its bounds) are available
    bounds = _param_bounds(res0, dist) if smooth else None
    ll_held = _loglik_and_grad(held, y, backcast, vb, dist)[0] if smooth else float("nan")
    cands: list = []
    fast_ok = False
    if engine == "fast" and smooth:
        # A warm start on (or just inside) the invertibility bound of this window: the free
        # optimum is most likely not invertible again, so both starts go to the constrained
        # optimum first instead of chasing the free one (:func:`_bound_first_candidates`).
        bound_first = start is not None and _lyapunov(np.asarray(start, dtype=float), y, backcast, vb) > _LYAP_NEAR
        cands, fast_ok = _fast_candidates(y, res0, dist, start, backcast, vb, bounds, bound_first)
        if not fast_ok and start is not None:
            # A second start of our own (arch's starting values) before any arch retry.
            more, fast_ok = _fast_candidates(y, res0, dist, None, backcast, vb, bounds, bound_first)
            cands += more
            fast_ok = fast_ok or _agree_on_constraint(cands)
    # A converged optimum of arch's own likelihood (plausible or not): arch would find the same
    # one, so retrying with it only costs time.
    if not fast_ok:
        cands += _arch_candidates(y, dist, start, backcast, vb, bounds)
    best, relaxed = _select(cands, ll_held)
    if best is None:
        msg = "no plausible optimum" if not cands else "optimum worse than the parameters in hand"
        return _make_fit(held, False, ll_held, y, backcast, vb, "fallback", msg, False, False)
    msg = best[3]
    if relaxed:
        msg = f"kept although not strictly converged ({msg}): log-lik {best[2]:.3f} > {ll_held:.3f}"
    return _make_fit(best[0], True, best[2], y, backcast, vb, best[4], msg, best[5], relaxed)


def _fast_candidates(y, res0, dist, start, backcast, vb, bounds, bound_first: bool = False
                     ) -> tuple[list, bool]:
    """The fast engine's optimum: ``(candidates, converged)`` with the optimum as the only
    candidate when it is plausible; candidates are ``(x, converged, loglik, msg, engine,
    on_invertibility_bound, refit_converged)``.

    With ``bound_first`` the invertibility-constrained optimum is sought first (SLSQP from the
    start): where the constraint binds there, that is the candidate, not strictly converged on its
    own (two starts must agree, :func:`_agree_on_constraint`); where it does not bind, the point
    is an interior optimum and goes through the free fit (Newton from it) as usual.
    """
    sv = start if start is not None else _cold_start(y, res0, dist, backcast, vb)
    sv = np.clip(np.asarray(sv, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds])
    warm = start is not None
    if bound_first:
        xc, ok_c, ll = _fit_invertible(sv, y, dist, backcast, vb, bounds)
        if _lyapunov(xc, y, backcast, vb) > _LYAP_MAX - _LYAP_ACTIVE:
            msg = "invertibility-constrained optimum (the constraint binds)"
            if _sane(xc, y, backcast, vb) and math.isfinite(ll):
                return [(xc, False, ll, msg, "fast", True, ok_c)], False
            return [], False
        sv, warm = xc, True  # an interior optimum: settle it as a free fit
    x, ok, ll, msg = _fit_fast(y, dist, sv, backcast, vb, bounds, warm)
    x, ok_c, ll, msg, at = _constrained(x, y, dist, backcast, vb, bounds, msg)
    ok = ok and ok_c
    if _sane(x, y, backcast, vb) and math.isfinite(ll):
        return [(x, ok, ll, msg, "fast", at, at and ok_c)], ok
    return [], ok


def _agree_on_constraint(cands: list) -> bool:
    """Two fast starts (warm and cold) that both ended on the invertibility constraint (their
    free optima were not invertible, or on the bound-first path the constraint binds at the
    constrained optimum), with both constrained refits converged to the same log-likelihood
    within ``_KINK_DECREMENT_TOL``: that constrained optimum is accepted as converged (both
    marked so in ``cands``, in place; the better one is then selected).

    The free likelihood of such windows (calm bond windows) keeps rising towards a degenerate
    non-invertible filter, so the free optimizer never meets its convergence test there; ``arch``
    retries, which maximize the same free likelihood, end on the same constrained optimum
    (``benchmarks/egarch_speed.py``). The tolerance is the free fit's kink allowance: SLSQP has
    no kink search in ``mu``, and two starts stop on neighbouring kinks a few 1e-4 apart in
    log-likelihood (a restart from either does not move it)."""
    if len(cands) != 2 or not (cands[0][6] and cands[1][6]):
        return False
    if abs(cands[0][2] - cands[1][2]) > _KINK_DECREMENT_TOL:
        return False
    for i, c in enumerate(cands):
        cands[i] = (c[0], True, *c[2:])
    return True


def _arch_candidates(y, dist, start, backcast, vb, bounds) -> list:
    """``arch``'s optima (warm-started, then from its own starting values), brought onto the
    admissible set when our likelihood is available (``bounds`` not None); stops at the first
    plausible strictly converged one."""
    cands = []
    tries = [(start, 60)] + ([(None, 500)] if start is not None else [])
    for sv, maxiter in tries:
        x, ok, ll, msg = _fit_arch(y, dist, sv, maxiter=maxiter)
        at = False
        if x is not None and bounds is not None:
            x, ok_c, ll, msg, at = _constrained(x, y, dist, backcast, vb, bounds, msg)
            ok = ok and ok_c
        if _sane(x, y, backcast, vb) and math.isfinite(ll):
            cands.append((x, ok, ll, msg, "arch", at))
            if ok:
                break
    return cands


def _make_fit(x, ok, ll, y, backcast, vb, engine, msg, on_inv_bound, relaxed) -> EGARCHFit:
    """The :class:`EGARCHFit` of parameters ``x`` on the window ``y`` (percent scale)."""
    x = np.asarray(x, dtype=float)
    lns, z = _filter_kernel(x[:5].copy(), y, backcast, vb)
    lnv = math.log(max(float(np.var(y)), 1e-300))
    lb = np.array([lnv - _LN_BOUND, lnv + _LN_BOUND])
    nxt = float(egarch_step(x[None, :], lns[-1:], (y[-1:] - x[0]), lb[None, :])[0])
    boundary = bool(ok and (x[4] >= BETA_MAX - _AT_BOUND or on_inv_bound))
    return EGARCHFit(x, bool(ok), float(ll), lns, z, nxt, engine, msg, lb, boundary, bool(relaxed))


def egarch_filter(params: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-sample conditional volatility and standardized residuals with fixed parameters.

    Parameters
    ----------
    params : ndarray, shape (k,)
        Percent-scale parameters.
    returns : array_like, shape (T,)
        Decimal returns; the recursion starts from ``arch``'s backcast of this sample.

    Returns
    -------
    vol : ndarray, shape (T,)
        sigma_{t|t-1} in decimals per bar (not annualized).
    std_resid : ndarray, shape (T,)
    """
    y = SCALE * np.asarray(returns, dtype=float)
    backcast, vb, _ = _prepare(y)
    lns, z = _filter_kernel(np.asarray(params[:5], dtype=float), y, backcast, vb)
    return np.exp(0.5 * lns) / SCALE, z


def egarch_step(
    params: np.ndarray, lnsig2: np.ndarray, resid: np.ndarray, ln_bounds: np.ndarray | None = None
) -> np.ndarray:
    """One O(1) step of the EGARCH recursion for several assets at once.

    Parameters
    ----------
    params : ndarray, shape (n, k)
        Percent-scale parameters per asset.
    lnsig2 : ndarray, shape (n,)
        ln sigma^2_t (percent^2) used for bar t.
    resid : ndarray, shape (n,)
        eps_t = 100 r_t - mu (percent).

    ln_bounds : ndarray, shape (n, 2), optional
        Clip ln sigma^2 to these (:attr:`EGARCHFit.ln_bounds`: the fit window's ln-variance
        +- ln(1e6), like ``arch``'s loose in-sample variance bounds); they never bind for a
        well-behaved model and stop a runaway path for a degenerate one.

    Returns
    -------
    ndarray, shape (n,)
        ln sigma^2_{t+1}.
    """
    e = resid * np.exp(-0.5 * lnsig2)
    h = params[:, 1] + params[:, 2] * (np.abs(e) - _SQRT2_OV_PI) + params[:, 3] * e + params[:, 4] * lnsig2
    h = np.minimum(h, _LNSIGMA_MAX)
    if ln_bounds is not None:
        h = np.clip(h, ln_bounds[:, 0], ln_bounds[:, 1])
    return h


_STATUSES = ("converged", "boundary", "failed")


class RefitTally:
    """Scheduled refits of ``n`` assets: the rule for parameters after a failure, and the counts.

    Rule: a refit warm-starts from the asset's previous parameters, which are also the parameters
    in hand (kept if no acceptable optimum is found and they are still plausible on the window).
    After a failed fit the next refit of that asset starts cold (``arch``'s starting values) with
    :func:`default_egarch_params` in hand, so parameters that could not be refitted stay for one
    refit period at most, never for a run of refits.

    Attributes
    ----------
    counts : ndarray, shape (4, n), int
        Per asset: ``converged``, ``boundary``, ``failed`` and ``relaxed`` (a subset of the first
        two: kept although the strict convergence test failed) fits.
    failed_run, longest_failed_run : ndarray, shape (n,), int
        Current and longest run of consecutive failed fits per asset.
    """

    def __init__(self, n: int):
        self.n = int(n)
        self.counts = np.zeros((4, self.n), dtype=int)
        self.failed_run = np.zeros(self.n, dtype=int)
        self.longest_failed_run = np.zeros(self.n, dtype=int)

    def fit(self, j: int, returns: np.ndarray, dist: str, prev: np.ndarray | None,
            engine: str = "fast") -> EGARCHFit:
        """Refit asset ``j`` on its window (decimal returns, shape (T,)) and count the outcome."""
        if self.failed_run[j] > 0:
            prev = None  # cold start, defaults in hand
        f = egarch_fit(returns, dist, prev, engine=engine)
        self.counts[_STATUSES.index(f.status), j] += 1
        self.counts[3, j] += int(f.relaxed)
        self.failed_run[j] = self.failed_run[j] + 1 if f.status == "failed" else 0
        self.longest_failed_run[j] = max(self.longest_failed_run[j], self.failed_run[j])
        return f

    @property
    def n_failed(self) -> int:
        return int(self.counts[2].sum())

    @property
    def n_boundary(self) -> int:
        return int(self.counts[1].sum())

    def stats(self, names: list[str] | None = None) -> dict:
        """Totals and per-asset counts (``names`` label the assets; default ``"0"``, ``"1"``...)."""
        names = [str(i) for i in range(self.n)] if names is None else [str(a) for a in names]
        keys = (*_STATUSES, "relaxed")
        out: dict = {k: int(self.counts[i].sum()) for i, k in enumerate(keys)}
        out["longest_failed_run"] = int(self.longest_failed_run.max(initial=0))
        out["per_asset"] = {a: {k: int(self.counts[i, j]) for i, k in enumerate(keys)}
                            for j, a in enumerate(names)}
        return out

    def get_state(self) -> dict:
        return {"counts": self.counts.tolist(), "failed_run": self.failed_run.tolist(),
                "longest_failed_run": self.longest_failed_run.tolist()}

    def set_state(self, state: dict | None) -> None:
        """Restore :meth:`get_state` output (None: a state written before the tally: zeros)."""
        if state is None:
            return
        self.counts = np.asarray(state["counts"], dtype=int).reshape(4, self.n)
        self.failed_run = np.asarray(state["failed_run"], dtype=int).reshape(self.n)
        self.longest_failed_run = np.asarray(state["longest_failed_run"], dtype=int).reshape(self.n)


def _warn_failed(name: str, msg: str) -> None:
    warnings.warn(
        f"EGARCH fit for {name} failed ({msg}); the parameters in hand are kept and the next refit "
        "starts cold (counted in n_failed_fits)",
        EstimationWarning,
        stacklevel=4,  # the caller of rolling_egarch_volatility
    )


def rolling_egarch_volatility(
    returns: pd.Series | pd.DataFrame,
    window: int = 750,
    min_window: int = 250,
    refit_every: int = 21,
    dist: str = "t",
    *,
    periods_per_year: int = 252,
    engine: str = "fast",
) -> pd.Series | pd.DataFrame:
    """Causal rolling EGARCH(1,1) volatility: annualized one-step-ahead forecasts.

    Row ``t`` (counted from the first finite row) is a fit/refit date when ``t >= min_window - 1`` and
    ``(t - min_window + 1) % refit_every == 0``; the fit uses the last ``min(window, t + 1)`` returns
    (a trailing window ending at ``t``), warm-started from the previous parameters. Between refits the
    fixed parameters filter forward with :func:`egarch_step`. Fits are counted by outcome
    (:class:`RefitTally`: ``converged``, ``boundary`` on the persistence bound, ``failed``); a
    failed fit keeps the parameters in hand for one period, the next refit starts cold, and the
    first failure of a column warns.

    Parameters
    ----------
    returns : Series or DataFrame, shape (T,) or (T, n)
        Decimal returns. Leading rows with NaN (e.g. from ``pct_change``) are skipped; a NaN after the
        first finite row raises :class:`DataError`.
    window, min_window, refit_every : int
        Trailing fit window, first fit size, refit period (bars).
    dist : str
        ``arch`` distribution name.
    periods_per_year : int
        Annualization factor (bars per year).
    engine : {"fast", "arch"}

    Returns
    -------
    Series or DataFrame
        Same shape and index as ``returns``; value at ``t`` = ``sigma_{t+1|t} * sqrt(periods_per_year)``
        (decimal); NaN before the first fit. ``.attrs`` holds ``n_refits``, ``n_failed_fits``,
        ``n_boundary_fits``, ``fit_stats`` (:meth:`RefitTally.stats` plus ``refits``),
        ``refit_dates`` and ``params`` (last parameters per column).
    """
    if min_window < 10 or window < min_window or refit_every < 1:
        raise DataError("rolling_egarch_volatility: need 10 <= min_window <= window and refit_every >= 1")
    is_series = isinstance(returns, pd.Series)
    df = returns.to_frame() if is_series else returns
    arr = df.to_numpy(dtype=float)
    first = _first_finite_row(arr, df.index)
    x = arr[first:]
    T, n = x.shape
    out = np.full(arr.shape, np.nan)
    params: np.ndarray | None = None
    lns = np.zeros(n)
    lnb = np.zeros((n, 2))
    tally = RefitTally(n)
    warned = np.zeros(n, dtype=bool)
    refit_dates = []
    ann = math.sqrt(periods_per_year)
    for t in range(min_window - 1, T):
        if (t - min_window + 1) % refit_every == 0:
            win = x[max(0, t + 1 - window) : t + 1]
            params = _refit_columns(tally, win, dist, params, engine, lns, lnb, warned, df.columns)
            refit_dates.append(df.index[first + t])
        else:
            lns = egarch_step(params, lns, SCALE * x[t] - params[:, 0], lnb)
        out[first + t] = np.exp(0.5 * lns) / SCALE * ann
    res = pd.DataFrame(out, index=df.index, columns=df.columns)
    n_refits = len(refit_dates)
    attrs = {
        "n_refits": n_refits,
        "n_failed_fits": tally.n_failed,
        "n_boundary_fits": tally.n_boundary,
        "fit_stats": {"refits": n_refits, **tally.stats(list(df.columns))},
        "refit_dates": refit_dates,
        "params": None if params is None else params.tolist(),
    }
    if is_series:
        res = res.iloc[:, 0].rename(returns.name)
    res.attrs.update(attrs)
    return res


def _first_finite_row(arr: np.ndarray, index: pd.Index) -> int:
    """Position of the first all-finite row of ``arr`` (T, n); every later row must be finite too."""
    finite = np.all(np.isfinite(arr), axis=1)
    if not finite.any():
        raise DataError("rolling_egarch_volatility: no finite rows")
    first = int(np.argmax(finite))
    if not finite[first:].all():
        bad = first + int(np.argmin(finite[first:]))
        raise DataError(f"rolling_egarch_volatility: NaN return at row {bad} ({index[bad]})")
    return first


def _refit_columns(tally, win, dist, params, engine, lns, lnb, warned, columns) -> np.ndarray:
    """Refit every column of the window ``win`` (T, n); returns the new parameters (n, k) and
    writes the next ln-variances into ``lns`` and the clip bounds into ``lnb`` (in place). The
    first failed fit of a column warns (``warned`` is updated)."""
    n = win.shape[1]
    newp = np.empty((n, len(param_names(dist))))
    for j in range(n):
        f = tally.fit(j, win[:, j], dist, None if params is None else params[j], engine)
        newp[j] = f.params
        lns[j] = f.lnsig2_next
        lnb[j] = f.ln_bounds
        if not f.converged and not warned[j]:
            warned[j] = True
            _warn_failed(str(columns[j]), f.message)
    return newp
