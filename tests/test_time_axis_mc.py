"""Monte Carlo checks of strategies.time_axis: contributions per asset and time bucket aggregate to the
terminal variance within Monte Carlo error (GBM and SABR), closed-form references, the drift terms of
the mean-variance policy, volatility management as time-axis parity, and the projection corollary.

Every bound is ``Z`` standard errors (Z = 4, two-sided confidence 99.994%: a correct implementation
fails with probability 6e-5 per comparison; the seeds are fixed anyway) and each test also asserts
that its standard error is small relative to the quantity, so that a wrong implementation cannot hide
inside a wide band. The aggregation test itself is :meth:`MCTimeRiskResult.aggregation_test` at the
stated ``LEVEL``; a negative control shows that it rejects a covariance 20% off."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from drb.errors import ConfigError, DataError
from strategies.time_axis import (
    GBM,
    SABR,
    PolicyState,
    ZhouLiMarket,
    buy_and_hold_policy,
    mean_variance_expected_contributions,
    moreira_muir_policy,
    normal_interval,
    projection_demo,
    simulate_time_risk,
    volatility_managed_policy,
    zhou_li_mc_policy,
    zhou_li_wealth_at_price,
)

Z = 4.0
LEVEL = 0.9999  # confidence level of the aggregation tests (z = 3.89)


def _constant_mix(weights: np.ndarray, base: float = 1.0):
    """Feedback policy: money ``(base + X_t) * w`` (depends on the path through the wealth)."""
    w = np.asarray(weights, dtype=float)

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        return (base + state.wealth)[:, None] * w[None, :] / prices

    return policy


def _ewma_timing(lam: float = 0.9):
    """Feedback policy with its own state: scales down after large moves (memory across steps)."""

    def policy(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        last = state.memory.get("last")
        v = state.memory.get("v", np.full(prices.shape, 0.04))
        if last is not None:
            r = prices / last - 1.0
            v = lam * v + (1 - lam) * r**2 / state.dt
        state.memory["v"], state.memory["last"] = v, prices
        return 0.2 / np.sqrt(v) / prices

    return policy


def test_gbm_buy_and_hold_matches_closed_form() -> None:
    s0, sig, horizon, steps = 2.0, 0.3, 1.0, 100
    res = simulate_time_risk(buy_and_hold_policy([1.0]), GBM([s0], [0.0], [sig]),
                             horizon=horizon, n_steps=steps, n_paths=6000, n_buckets=4, seed=1)
    dt = horizon / steps
    k = np.arange(steps)
    # E[S_k^2] (e^{sig^2 dt} - 1): exact for exact log-normal steps
    per_step = s0**2 * np.exp(sig**2 * k * dt) * np.expm1(sig**2 * dt)
    exact = per_step.reshape(4, -1).sum(axis=1)
    assert np.all(np.abs(res.contributions[:, 0] - exact) <= Z * res.contributions_se[:, 0])
    assert np.all(res.contributions_se[:, 0] < 0.02 * exact)
    var_exact = s0**2 * np.expm1(sig**2 * horizon)
    assert abs(res.terminal_variance - var_exact) <= Z * res.terminal_variance_se
    assert res.terminal_variance_se < 0.03 * var_exact
    assert abs(res.aggregation_gap) <= Z * res.aggregation_gap_se
    # the Gateaux (covariance) estimator agrees bucket by bucket and sums to the sample variance
    assert np.all(np.abs(res.cov_contributions[:, 0] - exact) <= Z * res.cov_contributions_se[:, 0])
    assert np.isclose(res.cov_contributions.sum(), res.terminal_variance, rtol=1e-10)
    # buy and hold under GBM: later buckets carry more (price level grows in variance)
    assert np.all(np.diff(res.contributions[:, 0]) > 0)


CASES = {
    "gbm-constant-mix": (
        GBM([1.0, 1.0, 1.0], [0.0] * 3, [0.15, 0.25, 0.4],
            [[1, 0.3, -0.2], [0.3, 1, 0.5], [-0.2, 0.5, 1]]),
        _constant_mix(np.array([0.5, 0.3, 0.4])),
    ),
    "gbm-own-state": (GBM([1.0, 1.0], [0.0, 0.0], [0.2, 0.35], [[1, 0.6], [0.6, 1]]),
                      _ewma_timing()),
    "sabr-beta1": (SABR([1.0, 1.0], [0.2, 0.3], [1.0, 1.0], [0.8, 0.5], [-0.6, 0.2],
                        [[1, 0.4], [0.4, 1]]), _constant_mix(np.array([0.7, 0.5]))),
    "sabr-cev": (SABR([0.05], [0.3 * 0.05**0.5], [0.5], [0.6], [-0.3]),
                 volatility_managed_policy([1.0], 0.3, notional=20.0)),
    "sabr-moreira-muir": (SABR([1.0], [0.25], [1.0], [0.7], [-0.5]),
                          moreira_muir_policy([1.0], 0.04)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_contributions_aggregate_to_terminal_variance(name: str) -> None:
    model, policy = CASES[name]
    res = simulate_time_risk(policy, model, horizon=1.0, n_steps=120, n_paths=4000,
                             n_buckets=4, seed=7)
    v = res.terminal_variance
    assert res.aggregation_gap_se < 0.05 * v  # the check is sharp enough to catch a 20% error
    test = res.aggregation_test(LEVEL)
    assert test.passed, (
        f"{name}: gap {test.gap:.3g}, {LEVEL:.2%} interval [{test.low:.3g}, {test.high:.3g}], "
        f"p = {test.p_value:.2g}")
    assert test.low <= 0.0 <= test.high and test.p_value > 1 - LEVEL
    # per asset and bucket: predictable (Ito) vs Gateaux (covariance) estimator
    diff = np.abs(res.contributions - res.cov_contributions)
    band = Z * np.hypot(res.contributions_se, res.cov_contributions_se)
    assert np.all(diff <= band), f"{name}: max excess {(diff - band).max():.3g}"


class _MisspecifiedCovariance:
    """A model whose reported conditional covariance is ``factor`` times the true one."""

    def __init__(self, model, factor: float) -> None:
        self.model, self.factor, self.n = model, factor, model.n

    def initial(self, n_paths: int):
        return self.model.initial(n_paths)

    def cond_cov(self, s, v, dt):
        return self.factor * self.model.cond_cov(s, v, dt)

    def step(self, s, v, dt, rng):
        return self.model.step(s, v, dt, rng)


@pytest.mark.parametrize(("name", "factor"), [("gbm-constant-mix", 1.2), ("sabr-beta1", 0.8)])
def test_aggregation_test_rejects_a_wrong_covariance(name: str, factor: float) -> None:
    """Negative control: the same paths and policy with Sigma_t off by 20% do not aggregate (the policy
    does not look at the covariance, so only the contributions change)."""
    model, policy = CASES[name]
    kw = dict(horizon=1.0, n_steps=120, n_paths=4000, n_buckets=4, seed=7)
    good = simulate_time_risk(policy, model, **kw).aggregation_test(LEVEL)
    bad = simulate_time_risk(policy, _MisspecifiedCovariance(model, factor), **kw).aggregation_test(LEVEL)
    assert good.passed and not bad.passed
    assert np.sign(bad.gap) == np.sign(factor - 1.0) and abs(bad.z) > 6.0


def test_normal_interval_levels() -> None:
    lo, hi = normal_interval(1.0, 0.5, 0.95)
    assert np.isclose(hi - 1.0, 1.959964 * 0.5, rtol=1e-6) and np.isclose(1.0 - lo, hi - 1.0)
    lo, hi = normal_interval([0.0, 2.0], [1.0, 1.0], 0.9999)
    np.testing.assert_allclose(hi, [3.890592, 5.890592], rtol=1e-6)
    with pytest.raises(ConfigError):
        normal_interval(0.0, 1.0, 1.0)


def test_simulation_is_reproducible_and_paths_do_not_depend_on_policy() -> None:
    model = SABR([1.0], [0.3], [1.0], [0.6], [-0.4])
    a = simulate_time_risk(buy_and_hold_policy([1.0]), model, n_steps=50, n_paths=500, seed=3)
    b = simulate_time_risk(buy_and_hold_policy([1.0]), model, n_steps=50, n_paths=500, seed=3)
    c = simulate_time_risk(buy_and_hold_policy([2.0]), model, n_steps=50, n_paths=500, seed=3)
    d = simulate_time_risk(buy_and_hold_policy([1.0]), model, n_steps=50, n_paths=500, seed=4)
    assert a.terminal_variance == b.terminal_variance
    assert np.isclose(c.terminal_variance, 4 * a.terminal_variance, rtol=1e-12)  # same paths
    assert d.terminal_variance != a.terminal_variance


def test_bad_policy_and_config_raise() -> None:
    model = GBM([1.0], [0.0], [0.2])
    with pytest.raises(DataError):
        simulate_time_risk(lambda t, p, s: np.ones((p.shape[0], 2)), model, n_paths=10, n_steps=5)
    with pytest.raises(DataError):
        simulate_time_risk(lambda t, p, s: np.full(p.shape, np.nan), model, n_paths=10, n_steps=5)
    with pytest.raises(ConfigError):
        simulate_time_risk(buy_and_hold_policy([1.0]), model, n_paths=1)
    with pytest.raises(ConfigError):
        simulate_time_risk(buy_and_hold_policy([1.0]), model, bucket_edges=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ConfigError):
        SABR([1.0], [0.2], [1.5], [0.3], [0.0]).initial(3)
    with pytest.raises(ConfigError):
        GBM([1.0, 1.0], [0, 0], [0.1, 0.1], [[1, 2], [2, 1]]).initial(3)


def test_mean_variance_policy_needs_the_drift_terms() -> None:
    """Section 4.3 by simulation: the Zhou-Li policy on a bond and a stock. The Gateaux estimator per
    asset and bucket matches the closed-form contributions (which include the drift terms
    ``mu_i Y_t``); the diffusion-only (Ito) estimator misses exactly ``E int u^2 sigma^2 dt - Var``."""
    m = ZhouLiMarket(r=0.03, b=0.10, sigma=0.20, x0=1.0, horizon=1.0, risk_aversion=1.0)
    model = GBM([1.0, 1.0], [m.r, m.b], [0.0, m.sigma])
    res = simulate_time_risk(zhou_li_mc_policy(m), model, horizon=1.0, n_steps=250,
                             n_paths=6000, n_buckets=4, x0=m.x0, seed=21)
    edges = res.bucket_edges
    exact = np.array([[quad(lambda t, j=j: mean_variance_expected_contributions(m, t)[j],
                            edges[k], edges[k + 1], epsrel=1e-12)[0] for j in (0, 1)]
                      for k in range(4)])
    # discretization (daily rebalancing) bias allowance: 1% of each entry
    tol = Z * res.cov_contributions_se + 0.01 * np.abs(exact)
    assert np.all(np.abs(res.cov_contributions - exact) <= tol)
    assert np.all(res.cov_contributions_se < 0.1 * np.abs(exact))
    assert abs(res.terminal_variance - m.terminal_variance) <= (
        Z * res.terminal_variance_se + 0.01 * m.terminal_variance)
    assert abs(res.terminal_mean - m.expected_terminal_wealth) < 0.005
    # the Ito-only estimator overshoots by the drift terms
    qv = quad(lambda t: m.rho * m.y0**2 * np.exp((2 * m.r - m.rho) * t), 0, m.horizon)[0]
    assert np.isclose(res.contributions.sum(), qv, rtol=0.05)
    assert abs(res.aggregation_gap - (qv - m.terminal_variance)) <= (
        Z * res.aggregation_gap_se + 0.01 * m.terminal_variance)
    assert res.aggregation_gap > 2 * res.aggregation_gap_se


def test_mean_variance_wealth_is_a_function_of_the_stock_price() -> None:
    """Section 4.3 on the price axis: simulated wealth of the rebalanced Zhou-Li policy converges to the
    closed-form map x_t = f(t, S_t) (error O(sqrt(dt)): halves when the steps are 4x finer), and it
    stays below the bliss wealth on every path (the policy never shorts the stock)."""
    m = ZhouLiMarket(r=0.03, b=0.10, sigma=0.20, x0=1.0, horizon=1.0, risk_aversion=1.0)
    model = GBM([1.0, 1.0], [m.r, m.b], [0.0, m.sigma])
    err = {}
    for n_steps in (200, 800):
        seen: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
        base = zhou_li_mc_policy(m)

        def policy(t, prices, state, base=base, seen=seen):
            seen[state.k] = (t, prices[:, 1].copy(), state.wealth.copy())
            return base(t, prices, state)

        simulate_time_risk(policy, model, horizon=1.0, n_steps=n_steps, n_paths=2000, x0=m.x0,
                           seed=13)
        gaps = []
        for t, s1, x in seen.values():
            assert np.all(x < m.bliss_wealth(t))
            gaps.append(np.mean(np.abs(x - zhou_li_wealth_at_price(m, t, s1))))
        t_last, s_last, x_last = seen[n_steps - 1]
        err[n_steps] = (float(np.mean(gaps)), float(np.std(x_last)))
    assert 1.5 < err[200][0] / err[800][0] < 2.7  # sqrt(4) = 2
    assert err[800][0] < 0.01 * err[800][1]  # under 1% of the spread of the wealth


def test_volatility_management_is_time_axis_parity_under_sabr() -> None:
    """Section 4.1 under stochastic volatility: money ``notional * target / sigma_t`` contributes
    ``(notional * target)^2 dt`` on every step of every path, so every bucket of every path carries
    1/K of the variance, and ``Var(X_T) = (notional target)^2 T``; buy and hold and Moreira-Muir do
    not spread risk evenly."""
    model = SABR([1.0], [0.25], [1.0], [0.9], [-0.5])
    kw = dict(horizon=1.0, n_steps=120, n_paths=4000, n_buckets=4, seed=5)
    target, notional, k = 0.25, 1.0, 4
    vm = simulate_time_risk(volatility_managed_policy([1.0], target, notional), model, **kw)
    bh = simulate_time_risk(buy_and_hold_policy([1.0]), model, **kw)
    mm = simulate_time_risk(moreira_muir_policy([1.0], target * 0.25), model, **kw)
    per_bucket = (notional * target) ** 2 / k
    np.testing.assert_allclose(vm.path_bucket_totals, per_bucket, rtol=1e-12)
    np.testing.assert_allclose(vm.pathwise_hhi, 1.0 / k, rtol=1e-12)
    assert np.isclose(vm.hhi, 1.0 / k, rtol=1e-12)
    assert abs(vm.terminal_variance - (notional * target) ** 2) <= Z * vm.terminal_variance_se
    assert vm.terminal_variance_se < 0.03 * vm.terminal_variance
    for res in (bh, mm):
        h = res.pathwise_hhi
        assert h.mean() - 1.0 / k > Z * h.std(ddof=1) / np.sqrt(h.size)
        assert h.mean() > 1.0 / k + 0.03
        assert abs(res.aggregation_gap) <= Z * res.aggregation_gap_se
    # the parity policy's risk per path is deterministic; buy and hold's is not
    assert np.ptp(vm.path_bucket_totals.sum(axis=1)) < 1e-12
    assert np.std(bh.path_bucket_totals.sum(axis=1)) > 0.5 * bh.contributions.sum()


def test_projection_corollary_on_simulated_data() -> None:
    """Corollary 21: the buy-and-hold risk-budgeting policy is the projection of a time-varying budget
    b_t = kappa(t) S_t^2 on the trivial sigma-algebra; the deterministic projection matches it per
    time bucket in expectation; the full-information policy pathwise."""
    model = SABR([1.0, 1.0], [0.2, 0.3], [1.0, 1.0], [0.6, 0.4], [-0.5, 0.3], [[1, 0.4], [0.4, 1]])

    def budget(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        return (1.0 + 0.8 * np.sin(2 * np.pi * t)) * np.array([0.02, 0.04]) * prices**2

    d = projection_demo(model, budget, horizon=1.0, n_steps=100, n_paths=2000, n_buckets=4, seed=5)
    # full information: contributions equal the budget on every path
    assert d.pathwise_budget_error["full"] < 1e-9
    np.testing.assert_allclose(d.full.contributions, d.budget, rtol=1e-9)
    # deterministic projection: expected contributions per bucket equal the expected budget ...
    np.testing.assert_allclose(d.deterministic.contributions, d.budget, rtol=1e-9)
    # ... but not pathwise
    assert d.pathwise_budget_error["deterministic"] > 0.05
    # buy and hold: only the total per asset (the projection on the trivial sigma-algebra) matches
    np.testing.assert_allclose(d.buy_and_hold.contributions.sum(axis=0), d.budget.sum(axis=0),
                               rtol=1e-9)
    share_budget = d.budget.sum(axis=1) / d.budget.sum()
    share_bh = d.buy_and_hold.bucket_shares
    assert np.max(np.abs(share_bh - share_budget)) > 0.05
    assert d.pathwise_budget_error["buy_and_hold"] > d.pathwise_budget_error["deterministic"]
    # nested admissible sets: objective full <= deterministic <= buy and hold
    o = d.objective
    assert o["full"] < o["deterministic"] < o["buy_and_hold"]
    # and the buy-and-hold variance theta' Cov(S_T) theta is the projected budget total, within MC
    # error (single-period risk budgeting with the terminal covariance)
    bh = d.buy_and_hold
    assert bh.aggregation_test(LEVEL).passed
    assert bh.aggregation_gap_se < 0.05 * bh.terminal_variance
    # single period: the Euler contributions theta_i (Cov(S_T) theta)_i, from the terminal prices
    # alone (the covariance estimator summed over buckets), meet the projected budget E int b_i dt;
    # the sum of the bucket standard errors bounds the standard error of the total
    single = bh.cov_contributions.sum(axis=0)
    se = np.hypot(bh.cov_contributions_se.sum(axis=0), d.budget_total_se)
    assert np.all(np.abs(single - d.budget.sum(axis=0)) <= Z * se)
    assert np.all(se < 0.1 * d.budget.sum(axis=0))
    # out of sample: the same buy-and-hold shares on fresh paths carry the projected budget per asset
    fresh = simulate_time_risk(buy_and_hold_policy(d.bh_shares), model, horizon=1.0, n_steps=100,
                               n_paths=4000, n_buckets=4, seed=99)
    se = np.hypot(fresh.contributions_se.sum(axis=0), d.budget_total_se)
    assert np.all(np.abs(fresh.contributions.sum(axis=0) - d.budget.sum(axis=0)) <= Z * se)
    assert np.all(se < 0.05 * d.budget.sum(axis=0))
