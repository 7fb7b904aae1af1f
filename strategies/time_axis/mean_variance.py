"""Continuous-time mean-variance policy (section 4.3; Zhou and Li 2000) and its contributions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drb.errors import ConfigError, DataError
from strategies.time_axis.simulation import Policy, PolicyState

ArrayLike = Any

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


