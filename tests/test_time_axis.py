"""Deterministic checks of strategies.time_axis: aggregation, concentration, EWMA, section 4.1 parity,
the section 4.3 mean-variance contributions, and the risk-budgeting solver used by Corollary 21."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq, minimize

from drb.errors import ConfigError, DataError
from strategies.time_axis import (
    ZhouLiMarket,
    batch_risk_budget_positions,
    bucket_contributions,
    effective_number,
    ewma_covariances,
    herfindahl,
    mean_variance_contributions,
    mean_variance_expected_contributions,
    moreira_muir_constant,
    moreira_muir_weight,
    risk_budget_positions,
    time_concentration,
    time_parity_weight,
    time_risk_contributions,
    total_variance,
    zhou_li_policy,
    zhou_li_sign_change_price,
    zhou_li_wealth_at_price,
)

# ------------------------------------------------------------------------------------ (a)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    t_len=st.integers(1, 30),
    n=st.integers(1, 5),
    dt=st.sampled_from([1.0, 1.0 / 252.0, 0.1]),
)
def test_aggregation_property_is_exact(seed: int, t_len: int, n: int, dt: float) -> None:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(t_len, n)) * rng.lognormal(size=(t_len, 1))
    a = rng.normal(size=(t_len, n, n))
    cov = a @ a.transpose(0, 2, 1) + 0.01 * np.eye(n)
    c = time_risk_contributions(theta, cov, dt=dt)
    assert c.shape == (t_len, n)
    per_step = np.array([th @ s @ th for th, s in zip(theta, cov)]) * dt
    np.testing.assert_allclose(c.sum(axis=1), per_step, rtol=1e-12, atol=1e-14)
    assert np.isclose(c.sum(), total_variance(theta, cov, dt=dt), rtol=1e-12, atol=1e-14)


def test_contributions_by_hand_and_broadcast() -> None:
    theta = np.array([[1.0, 2.0], [3.0, -1.0]])
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])
    c = time_risk_contributions(theta, cov, dt=0.5)
    # row 0: Sigma theta = (0.06, 0.19) -> (0.06, 0.38) * 0.5
    np.testing.assert_allclose(c[0], [0.03, 0.19])
    # row 1: Sigma theta = (0.11, -0.06) -> (0.33, 0.06) * 0.5
    np.testing.assert_allclose(c[1], [0.165, 0.03])
    np.testing.assert_allclose(time_risk_contributions(theta, np.stack([cov, cov]), 0.5), c)


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(DataError):
        time_risk_contributions(np.ones((3, 2)), np.eye(3))
    with pytest.raises(DataError):
        time_risk_contributions(np.array([[np.nan, 1.0]]), np.eye(2))
    with pytest.raises(ConfigError):
        time_risk_contributions(np.ones((3, 2)), np.eye(2), dt=0.0)
    with pytest.raises(DataError):
        herfindahl([0.5, 0.2])
    with pytest.raises(DataError):
        time_concentration(np.zeros((4, 2)), [0, 0, 1, 1])


def test_buckets_hhi_and_effective_number() -> None:
    c = np.array([[1.0, 0.0], [0.5, 0.5], [2.0, 1.0], [0.0, 0.0]])
    labels, totals = bucket_contributions(c, [2021, 2020, 2021, 2022])
    np.testing.assert_array_equal(labels, [2020, 2021, 2022])
    np.testing.assert_allclose(totals, [[0.5, 0.5], [3.0, 1.0], [0.0, 0.0]])
    tc = time_concentration(c, [2021, 2020, 2021, 2022])
    np.testing.assert_allclose(tc.shares, [0.2, 0.8, 0.0])
    np.testing.assert_allclose(tc.asset_shares, [0.7, 0.3])
    assert np.isclose(tc.hhi, 0.04 + 0.64)
    assert np.isclose(herfindahl(np.full(8, 1 / 8)), 1 / 8)
    assert np.isclose(effective_number(np.full(8, 1 / 8)), 8.0)
    assert herfindahl([1.0]) == 1.0


def test_ewma_covariance_is_causal_and_matches_definition() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(scale=0.01, size=(60, 3))
    cov = ewma_covariances(r, lam=0.9, min_periods=5)
    assert np.all(np.isnan(cov[:4])) and np.all(np.isfinite(cov[4:]))
    t = 30
    w = 0.9 ** np.arange(t, -1, -1)
    expect = np.einsum("s,si,sj->ij", w, r[: t + 1], r[: t + 1]) / w.sum()
    np.testing.assert_allclose(cov[t], expect, rtol=1e-12)
    r2 = r.copy()
    r2[t + 1 :] *= 10.0  # the future must not move the estimate at t
    np.testing.assert_array_equal(ewma_covariances(r2, 0.9, 5)[: t + 1], cov[: t + 1])


# ------------------------------------------------------------------------------------ (c)


def _regime_returns(seed: int, years: int = 6, days: int = 252) -> np.ndarray:
    """Daily returns whose volatility switches between calm (10%) and turbulent (35%) regimes."""
    rng = np.random.default_rng(seed)
    t_len = years * days
    state = np.zeros(t_len, dtype=int)
    for t in range(1, t_len):
        stay = 0.99 if state[t - 1] == 0 else 0.97
        state[t] = state[t - 1] if rng.random() < stay else 1 - state[t - 1]
    vol = np.where(state == 0, 0.10, 0.35) / np.sqrt(days)
    return rng.normal(size=t_len) * vol


def test_volatility_targeting_equalizes_time_buckets_where_buy_and_hold_does_not() -> None:
    """Section 4.1: time-axis risk parity. Weights from the ex-ante EWMA variance; contributions in
    return units (weights) under the same ex-ante covariance; buckets = years."""
    days, years = 252, 6
    r = _regime_returns(11, years, days)
    cov = ewma_covariances(r[:, None], lam=0.94, min_periods=20)
    valid = np.isfinite(cov[:, 0, 0])
    var = cov[valid, 0, 0] * days  # annualized ex-ante variance sigma^2_{t|t-1}
    sig = np.sqrt(var)
    year = (np.arange(r.size) // days)[valid]
    target = 0.12

    w_bh = np.ones_like(sig)
    w_vt = time_parity_weight(sig, target)
    c_mm = moreira_muir_constant(var, target)
    w_mm = moreira_muir_weight(var, c_mm)
    out = {}
    for name, w in {"bh": w_bh, "vt": w_vt, "mm": w_mm}.items():
        c = time_risk_contributions(w[:, None], cov[valid] * days, dt=1.0 / days)
        out[name] = (c, time_concentration(c, year))
    k = years
    # volatility targeting: every bar contributes target^2 dt, so each full year's share is its
    # share of bars and the HHI is the HHI of the bar counts
    c_vt, tc_vt = out["vt"]
    np.testing.assert_allclose(c_vt[:, 0], target**2 / days, rtol=1e-12)
    counts = np.bincount(year)
    assert np.isclose(tc_vt.hhi, np.sum((counts / counts.sum()) ** 2), rtol=1e-12)
    assert tc_vt.hhi < 1.0 / k + 5e-4  # only the warm-up bars of year 0 are missing
    # buy and hold puts the risk into turbulent years; Moreira-Muir into calm ones
    assert out["bh"][1].hhi > 1.0 / k + 0.02
    assert out["mm"][1].hhi > 1.0 / k + 0.02
    # Moreira-Muir is the risk budget b_t = c^2 / sigma_t^2: contribution * sigma^2 is constant
    c_mm_t = out["mm"][0][:, 0]
    np.testing.assert_allclose(c_mm_t * var, c_mm**2 / days, rtol=1e-12)
    # c calibrated so that the average variance equals the target (uncapped)
    assert np.isclose(out["mm"][0].sum() / (valid.sum() / days), target**2, rtol=1e-12)
    # bar-level spread: parity flat, the others vary by a factor > 5
    for name in ("bh", "mm"):
        c = out[name][0][:, 0]
        assert c.max() / c.min() > 5.0


def test_parity_weight_is_the_budgeting_optimum_on_the_time_axis() -> None:
    """Theorem 19 with one asset per bar: argmin 0.5 w^2 s^2 - b log w is sqrt(b)/s, the parity weight
    for a constant budget b = target^2."""
    s = np.array([0.08, 0.15, 0.30, 0.55])
    target = 0.1
    w = time_parity_weight(s, target)
    for si, wi in zip(s, w):
        res = minimize(lambda x, si=si: 0.5 * x[0] ** 2 * si**2 - target**2 * np.log(x[0]),
                       x0=[1.0], bounds=[(1e-9, None)], tol=1e-14)
        assert np.isclose(res.x[0], wi, rtol=1e-6)
    capped = time_parity_weight(s, target, max_leverage=1.0)
    np.testing.assert_allclose(capped, np.minimum(target / s, 1.0))
    with pytest.raises(DataError):
        time_parity_weight([0.0], 0.1)
    with pytest.raises(ConfigError):
        moreira_muir_weight([0.04], -1.0)


# ------------------------------------------------------------------------------------ (d)


@pytest.mark.parametrize("zl", [ZhouLiMarket(), ZhouLiMarket(0.05, 0.12, 0.25, 2.0, 3.0, 0.5)])
def test_mean_variance_contributions_aggregate_to_terminal_variance(zl: ZhouLiMarket) -> None:
    """int_0^T E[c_bond + c_stock](t) dt = Var(x_T) with the drift terms included (closed forms)."""
    total = quad(lambda t: sum(mean_variance_expected_contributions(zl, t)), 0.0,
                 zl.horizon, epsabs=0, epsrel=1e-12)[0]
    assert np.isclose(total, zl.terminal_variance, rtol=1e-10)
    # the diffusion-only part E int u^2 sigma^2 dt is NOT the variance for this feedback policy
    y = lambda t: zl.y0**2 * np.exp((2 * zl.r - zl.rho) * t)  # noqa: E731
    qv = quad(lambda t: zl.sigma**2 * zl.a**2 * y(t), 0, zl.horizon)[0]
    assert abs(qv - zl.terminal_variance) > 0.01 * zl.terminal_variance
    # expected densities match the pointwise densities averaged over the exact law of x_t
    t = 0.4 * zl.horizon
    z, wts = np.polynomial.hermite_e.hermegauss(80)
    ys = zl.y0 * np.exp((zl.r - 1.5 * zl.rho) * t - np.sqrt(zl.rho * t) * z)
    cb, cs = mean_variance_contributions(zl, t, zl.bliss_wealth(t) + ys)
    eb, es = mean_variance_expected_contributions(zl, t)
    assert np.isclose(np.sum(wts * cb) / wts.sum(), eb, rtol=1e-9)
    assert np.isclose(np.sum(wts * cs) / wts.sum(), es, rtol=1e-9)


def test_mean_variance_contributions_are_quadratic_and_stock_turns_negative() -> None:
    """Section 4.3: quadratic in the spot; stock positive near the mean, negative at both extremes
    (shorted above the bliss wealth; overwhelmed by its drift term far below); the risk aversion
    changes the linear terms only, not the curvature."""
    m = ZhouLiMarket()
    for t in (0.1, 0.5, 0.9):
        x = np.linspace(-2.0, 4.0, 61)
        cb, cs = mean_variance_contributions(m, t, x)
        for c in (cb, cs):
            coef = np.polyfit(x, c, 3)
            assert abs(coef[0]) < 1e-10 * np.abs(coef).max()
            np.testing.assert_allclose(np.polyval(np.polyfit(x, c, 2), x), c, atol=1e-12)
        a_stock = np.polyfit(x, cs, 2)[0]
        a_bond = np.polyfit(x, cb, 2)[0]
        assert a_stock < 0 < a_bond
        m2 = ZhouLiMarket(m.r, m.b, m.sigma, m.x0, m.horizon, 4.0 * m.risk_aversion)
        cb2, cs2 = mean_variance_contributions(m2, t, x)
        assert np.isclose(np.polyfit(x, cs2, 2)[0], a_stock, rtol=1e-9)
        assert np.isclose(np.polyfit(x, cb2, 2)[0], a_bond, rtol=1e-9)
        mean_x, bliss = float(m.mean_wealth(t)), float(m.bliss_wealth(t))
        _, cs_mean = mean_variance_contributions(m, t, mean_x)
        cb_mean, _ = mean_variance_contributions(m, t, mean_x)
        assert cs_mean > 0 and np.isclose(cb_mean, 0.0, atol=1e-14)  # Y_t = 0 at the mean
        hi = bliss + 0.2
        assert zhou_li_policy(m, t, hi)[1] < 0  # short the stock above the bliss wealth
        assert mean_variance_contributions(m, t, hi)[1] < 0
        low = bliss + (m.b / m.r) * (mean_x - bliss) - 0.2
        assert zhou_li_policy(m, t, low)[1] > 0  # long, yet negative contribution
        assert mean_variance_contributions(m, t, low)[1] < 0
        # central area: between E[x_t] and the wealth where the bond holding is zero (u_bond = 0 at
        # x = a bliss / (1 + a)) the bond's contribution is negative while the stock's is positive
        x_zero_bond = m.a * bliss / (1.0 + m.a)
        assert np.isclose(zhou_li_policy(m, t, x_zero_bond)[0], 0.0, atol=1e-12)
        xc = 0.5 * (mean_x + x_zero_bond)
        cbc, csc = mean_variance_contributions(m, t, xc)
        assert cbc < 0 < csc


def test_mean_variance_sign_change_price() -> None:
    """On the price axis the stock's contribution is positive above S*(t) and negative below it (a
    crash), where the policy is still long. The closed form of S* matches a numerical root of
    c_stock(t, x(t, S)); S* depends neither on the risk aversion nor on x0."""
    m = ZhouLiMarket()
    assert np.isclose(zhou_li_wealth_at_price(m, 0.0, 1.0), m.x0)  # the map starts at x0
    for t in (0.0, 0.3, 0.8):
        s_star = float(zhou_li_sign_change_price(m, t))

        def c_stock(s, mk=m, t=t):
            return float(mean_variance_contributions(mk, t, zhou_li_wealth_at_price(mk, t, s))[1])

        assert np.isclose(brentq(c_stock, 0.2, 0.9, xtol=1e-14), s_star, rtol=1e-9)
        grid = np.linspace(0.2, 3.0, 300)
        x = zhou_li_wealth_at_price(m, t, grid)
        assert np.all(np.diff(x) > 0) and np.all(x < m.bliss_wealth(t))  # rises with S, below bliss
        assert np.all(zhou_li_policy(m, t, x)[1] > 0)  # long the stock everywhere
        cs = mean_variance_contributions(m, t, x)[1]
        assert np.all(cs[grid < s_star] < 0) and np.all(cs[grid > s_star] > 0)
        for other in (ZhouLiMarket(m.r, m.b, m.sigma, 3.0, m.horizon, 0.3),
                      ZhouLiMarket(m.r, m.b, m.sigma, 0.5, m.horizon, 5.0)):
            assert np.isclose(zhou_li_sign_change_price(other, t), s_star, rtol=1e-12)
            assert np.isclose(brentq(lambda s, o=other: c_stock(s, o), 0.2, 0.9, xtol=1e-14),
                              s_star, rtol=1e-9)
    # r = 3%, b = 10%, sigma = 20%: the stock has to halve
    assert np.isclose(zhou_li_sign_change_price(m, 0.0), 0.3 ** (0.04 / 0.07), rtol=1e-12)
    with pytest.raises(ConfigError):
        zhou_li_sign_change_price(ZhouLiMarket(r=0.0), 0.5)
    with pytest.raises(DataError):
        zhou_li_wealth_at_price(m, 0.5, -1.0)


# ------------------------------------------------------------------------------------ (e)


def test_risk_budget_solver_meets_budgets_and_is_the_argmin() -> None:
    rng = np.random.default_rng(7)
    covs, budgets = [], []
    for _ in range(25):
        n = 4
        a = rng.normal(size=(n, n))
        s = a @ a.T + 0.05 * np.eye(n)
        covs.append(s)
        budgets.append(rng.uniform(0.1, 2.0, n))
    theta = batch_risk_budget_positions(np.array(covs), np.array(budgets))
    for th, s, b in zip(theta, covs, budgets):
        assert np.all(th > 0)
        np.testing.assert_allclose(th * (s @ th), b, rtol=1e-10)
    s, b = covs[0], budgets[0]
    f = lambda x: 0.5 * x @ s @ x - b @ np.log(x)  # noqa: E731
    res = minimize(f, np.ones(4), jac=lambda x: s @ x - b / x, bounds=[(1e-9, None)] * 4,
                   method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
    np.testing.assert_allclose(risk_budget_positions(s, b), res.x, rtol=1e-5)
    with pytest.raises(DataError):
        risk_budget_positions(s, -b)
