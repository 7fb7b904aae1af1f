import math
import warnings

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from indicators.egarch import (
    _loglik_and_grad,
    _prepare,
    egarch_filter,
    egarch_fit,
    egarch_step,
    rolling_egarch_volatility,
)


def simulate_egarch(T, seed, omega=-0.01, alpha=0.12, gamma=-0.06, beta=0.97, nu=7.0):
    """Decimal returns from a percent-scale EGARCH-t process."""
    rng = np.random.default_rng(seed)
    ls, r = 0.0, np.empty(T)
    for t in range(T):
        e = rng.standard_t(nu) * math.sqrt((nu - 2) / nu)
        r[t] = math.exp(ls / 2) * e
        ls = omega + alpha * (abs(e) - math.sqrt(2 / math.pi)) + gamma * e + beta * ls
    return r / 100.0


R = simulate_egarch(1100, 0)


def _arch(y, tol=None):
    am = arch_model(y, vol="EGARCH", p=1, o=1, q=1, dist="t", rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return am.fit(disp="off", tol=tol, options={"maxiter": 1000})


def test_loglik_and_gradient_match_arch():
    y = 100 * R[:600]
    ref = _arch(y)
    bc, vb, _ = _prepare(y)
    ll, g = _loglik_and_grad(ref.params.to_numpy(), y, bc, vb, "t")
    assert ll == pytest.approx(ref.loglikelihood, abs=1e-8)
    p = ref.params.to_numpy() + np.array([0.01, 0.01, 0.02, -0.01, -0.005, 1.0])
    _, g = _loglik_and_grad(p, y, bc, vb, "t")
    for i in range(6):
        h = 1e-6 * max(1.0, abs(p[i]))
        a, b = p.copy(), p.copy()
        a[i] += h
        b[i] -= h
        fd = (_loglik_and_grad(a, y, bc, vb, "t")[0] - _loglik_and_grad(b, y, bc, vb, "t")[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-4, abs=1e-5)


def test_backcast_and_variance_bounds_equal_archs():
    from arch.univariate import EGARCH

    for y in (100 * R[:600], 100 * R[:40], 100 * R[300:1100] * 50):
        bc, vb, res0 = _prepare(y)
        vol = EGARCH(1, 1, 1)
        assert bc == pytest.approx(vol.backcast(y - y.mean()), rel=1e-13, abs=1e-13)
        np.testing.assert_allclose(vb, vol.variance_bounds(y - y.mean()), rtol=1e-12)
        np.testing.assert_array_equal(res0, y - y.mean())


def test_warm_refits_converge_by_newton_to_archs_optimum():
    """Month-on-month warm starts take the Newton path and land on arch's own optimum: arch
    started there does not move the forecast by more than 1e-6."""
    prev = egarch_fit(R[:750])
    for end in (771, 792, 813):
        f = egarch_fit(R[end - 750 : end], start=prev.params)
        assert f.converged and f.engine == "fast" and f.message.startswith("Newton")
        am = arch_model(100 * R[end - 750 : end], vol="EGARCH", p=1, o=1, q=1, dist="t",
                        rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = am.fit(disp="off", starting_values=f.params, tol=1e-14, show_warning=False,
                         options={"maxiter": 1000})
        fc = math.sqrt(ref.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 100
        assert f.loglik >= ref.loglikelihood - 1e-7
        assert f.forecast_vol == pytest.approx(fc, rel=1e-6)
        prev = f


def test_own_filter_matches_arch_fixed_parameters_to_1e8():
    W, H = 600, 200
    fit = egarch_fit(R[:W])
    win = arch_model(100 * R[:W], vol="EGARCH", p=1, o=1, q=1, dist="t", rescale=False)
    v_in, _ = egarch_filter(fit.params, R[:W])
    assert np.max(np.abs(v_in / (win.fix(fit.params).conditional_volatility / 100) - 1)) < 1e-10
    # forward filter: start from arch's own state at W-1 on the extended sample, step H bars
    am = arch_model(100 * R[: W + H], vol="EGARCH", p=1, o=1, q=1, dist="t", rescale=False)
    ref = am.fix(fit.params).conditional_volatility
    lns = np.array([2 * math.log(ref[W - 1])])
    out = []
    for t in range(W - 1, W + H - 1):
        lns = egarch_step(fit.params[None, :], lns, np.array([100 * R[t] - fit.params[0]]))
        out.append(math.exp(0.5 * lns[0]))
    assert np.max(np.abs(np.array(out) / ref[W:] - 1)) < 1e-8


def test_fit_matches_direct_arch_fit_at_refit_date():
    win = R[100:850]
    fast = egarch_fit(win)
    ref = _arch(100 * win, tol=1e-12)
    fc_ref = math.sqrt(ref.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 100
    assert fast.converged and fast.engine == "fast"
    assert fast.loglik >= ref.loglikelihood - 1e-6
    assert fast.forecast_vol == pytest.approx(fc_ref, rel=1e-4)
    # the arch engine, same start, is arch itself: equal to 1e-6
    via_arch = egarch_fit(win, engine="arch", start=fast.params)
    direct = arch_model(100 * win, vol="EGARCH", p=1, o=1, q=1, dist="t", rescale=False).fit(
        disp="off", starting_values=fast.params, show_warning=False
    )
    fc_direct = math.sqrt(direct.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 100
    assert via_arch.forecast_vol == pytest.approx(fc_direct, rel=1e-6)


def test_failed_fit_keeps_fallback_and_flags():
    f = egarch_fit(np.zeros(300) + 1e-4 * (np.arange(300) % 2), start=None)
    assert not f.converged and f.engine == "fallback"
    assert np.all(np.isfinite(f.params)) and math.isfinite(f.lnsig2_next)


def test_rolling_schedule_causality_and_units():
    s = pd.Series(np.r_[np.nan, R[:500]], index=pd.bdate_range("2020-01-01", periods=501))
    out = rolling_egarch_volatility(s, window=300, min_window=200, refit_every=50)
    assert out.iloc[:200].isna().all() and out.iloc[200:].notna().all()
    assert out.attrs["n_refits"] == len(range(199, 500, 50))
    assert out.attrs["refit_dates"][0] == s.index[200]
    assert 0.05 < out.iloc[-1] < 1.0  # annualized decimal
    cut = rolling_egarch_volatility(s.iloc[:400], window=300, min_window=200, refit_every=50)
    pd.testing.assert_series_equal(out.iloc[:400], cut, check_names=False)
    with pytest.raises(Exception, match="NaN"):
        rolling_egarch_volatility(s.where(s.index != s.index[300]), min_window=100, window=200)


# ------------------------------------------------------------------ boundary and relaxed fits
import indicators.egarch as egarch_mod  # noqa: E402
from indicators.egarch import BETA_MAX, RefitTally, default_egarch_params  # noqa: E402

# ln sigma^2 a random walk driven by the shocks (beta = 1, omega = 0): a unit-root volatility
UNIT_ROOT = simulate_egarch(400, 3, omega=0.0, alpha=0.08, gamma=-0.04, beta=1.0)


def test_unit_root_volatility_gives_a_boundary_fit_with_sane_forecasts():
    f = egarch_fit(UNIT_ROOT)
    assert f.status == "boundary" and f.converged and f.boundary
    assert f.params[4] <= BETA_MAX
    recent = np.std(UNIT_ROOT[-60:])
    assert math.isfinite(f.forecast_vol) and recent / 3 < f.forecast_vol < 3 * recent
    vol, _ = egarch_filter(f.params, UNIT_ROOT)
    assert np.all(np.isfinite(vol)) and np.all(vol > 0)


def test_invertibility_exponent_flags_collapsing_filters():
    y = 100 * R[:400]
    bc, vb, _ = _prepare(y)
    healthy = np.array([0.05, 0.0, 0.12, -0.06, 0.97, 7.0])
    # every shock lowers the volatility (alpha < -|gamma|, beta near 1): TLT and DBC optima of 2016-2025
    collapsing = np.array([0.05, -0.02, -0.06, -0.04, 0.997, 10.0])
    assert egarch_mod._lyapunov(healthy, y, bc, vb) < 0 < egarch_mod._lyapunov(collapsing, y, bc, vb)
    assert not egarch_mod._sane(collapsing, y, bc, vb)


def _strict_flag_fails(monkeypatch, shift):
    """The fast optimizer's strict test always fails (its point moved by ``shift``), arch fails."""
    real = egarch_mod._fit_fast

    def fast(y, dist, start, backcast, vb, bounds, warm):
        x, _, _, _ = real(y, dist, start, backcast, vb, bounds, warm)
        x = x + shift
        return x, False, egarch_mod._loglik_and_grad(x, y, backcast, vb, dist)[0], "forced"

    monkeypatch.setattr(egarch_mod, "_fit_fast", fast)
    monkeypatch.setattr(egarch_mod, "_fit_arch", lambda *a, **k: (None, False, float("nan"), "no"))


def test_optimum_beating_the_parameters_in_hand_is_kept_although_not_strictly_converged(monkeypatch):
    ref = egarch_fit(R[:600])
    stale = ref.params + np.array([0.02, 0.05, 0.05, -0.03, -0.04, 3.0])
    _strict_flag_fails(monkeypatch, 0.0)
    f = egarch_fit(R[:600], start=stale)
    assert f.converged and f.relaxed and f.status == "converged"
    np.testing.assert_allclose(f.params, ref.params, atol=1e-6)
    bc, vb, _ = _prepare(100 * R[:600])
    assert f.loglik > egarch_mod._loglik_and_grad(stale, 100 * R[:600], bc, vb, "t")[0]


def test_non_converged_point_worse_than_the_parameters_in_hand_fails(monkeypatch):
    ref = egarch_fit(R[:600])
    _strict_flag_fails(monkeypatch, np.array([0.0, 0.0, 0.03, 0.0, -0.01, 0.0]))
    f = egarch_fit(R[:600], start=ref.params)
    assert f.status == "failed" and f.engine == "fallback"
    np.testing.assert_array_equal(f.params, ref.params)


def test_refit_after_a_failure_starts_cold_with_defaults(monkeypatch):
    calls = []
    real = egarch_mod.egarch_fit

    def fake(returns, dist, start, engine="fast"):
        calls.append(start)
        f = real(returns, dist, start, engine=engine)
        if start is not None:  # every warm refit fails
            f.converged = False
        return f

    monkeypatch.setattr(egarch_mod, "egarch_fit", fake)
    tally = RefitTally(1)
    prev = None
    for end in (300, 321, 342, 363, 384):
        prev = tally.fit(0, R[end - 300 : end], "t", prev).params
    assert [c is None for c in calls] == [True, False, True, False, True]
    st = tally.stats(["x"])
    assert st["failed"] == 2 and st["converged"] + st["boundary"] == 3
    assert st["longest_failed_run"] == 1 and st["per_asset"]["x"]["failed"] == 2


def test_implausible_parameters_in_hand_are_replaced_by_defaults():
    bad = np.array([0.0, 5.0, 0.1, -0.05, 0.5, 8.0])  # unconditional variance e^10 too large
    bc, vb, _ = _prepare(100 * R[:300])
    held = egarch_mod._held_params(R[:300], 100 * R[:300], "t", bad, None, bc, vb)
    np.testing.assert_array_equal(held, default_egarch_params(R[:300]))


def test_calm_window_constrained_optimum_found_without_arch():
    """A calm bond window whose free optimum is not invertible (the free fit never converges): two
    fast starts agree on the constrained optimum, which is accepted without the arch retry and is
    at least as good as what the arch engine ends on (embedded market, bond, refit at bar 270)."""
    import feeds

    mk = feeds.synthetic_market(seed=0, start="2018-01-02", end="2025-06-30")
    r = mk.prices.pct_change().iloc[1:].to_numpy()[:, 1]
    f0 = egarch_fit(r[:250], "t")
    win = r[:271]
    f = egarch_fit(win, "t", f0.params)
    ref = egarch_fit(win, "t", f0.params, engine="arch")
    assert f.engine == "fast" and f.converged and f.boundary
    assert f.loglik >= ref.loglik - 1e-6


# ---------------------------------------------------------------------------------------------
# the optimizer's pieces (issue 17): mu crossing, BFGS curvature


def _bisect_crossing(dmu, y, a, b):
    """The plain bisection the crossing search replaced (to 1e-7, snapped onto a return inside)."""
    while b - a > 1e-7:
        m = 0.5 * (a + b)
        a, b = (m, b) if dmu(m) > 0.0 else (a, m)
    inside = y[(y >= a) & (y <= b)]
    return float(inside[0]) if inside.size else 0.5 * (a + b)


_KINKS = np.array([-0.0031, -0.0012, 0.0004, 0.0017, 0.0029, 0.5])
_ROOTS = {"kink": 0.0004, "interior": 0.0009, "right_kink": 0.0017}


def _toy_dmu(case: str, calls: list):
    """A mu-derivative: decreasing, smooth between the returns ``_KINKS``, a jump down at each."""
    root, y = _ROOTS[case], _KINKS

    def dmu(mu):
        calls.append(mu)
        jumps = 0.3 * np.sum(mu > y) + 0.15 * np.sum(mu == y)  # sgn(0) = 0 at a kink: half a jump
        base = 0.3 * np.sum(root > y) + (0.15 if root in y else 0.0)
        return -(mu - root) * 50.0 - (jumps - base) + (0.1 if case != "interior" and mu < root else 0.0) \
            - (0.1 if case != "interior" and mu > root else 0.0)

    return dmu


@pytest.mark.parametrize("case", ["kink", "interior", "right_kink"])
def test_mu_crossing_finds_the_kink_or_the_root_with_few_derivatives(case):
    from indicators.egarch import _mu_crossing

    root, y = _ROOTS[case], _KINKS
    calls: list[float] = []
    dmu = _toy_dmu(case, calls)
    left, right = (-0.004, dmu(-0.004)), (0.004, dmu(0.004))
    calls.clear()
    got = _mu_crossing(dmu, y, left, right)
    n_new = len(calls)
    calls.clear()
    want = _bisect_crossing(dmu, y, -0.004, 0.004)
    if case == "interior":
        assert got == pytest.approx(root, abs=1e-10) and want == pytest.approx(root, abs=1e-7)
    else:
        assert got == root == want  # exactly the return, as the bisection snapped it
    assert n_new <= 10 < len(calls)


@pytest.mark.parametrize("case", ["kink", "interior", "right_kink"])
@pytest.mark.parametrize("offset", [0.0, -0.0023, 0.0021])
def test_mu_bracket_stops_at_the_best_mu_or_brackets_the_whole_reach(case, offset):
    """At the best mu (a smooth root or a kink) two derivatives end the polish; off it, the bracket
    is the whole reach around the Newton point and the crossing search finds the best mu."""
    from indicators.egarch import _MU_REACH, _mu_bracket, _mu_crossing

    root, y = _ROOTS[case], _KINKS
    calls: list[float] = []
    dmu = _toy_dmu(case, calls)
    m0 = root + offset
    bracket = _mu_bracket(dmu, m0)
    if offset == 0.0:
        assert bracket is None and len(calls) == 2
        return
    (a, fa), (b, fb) = bracket
    assert fa > 0.0 > fb and (a, b) == (m0 - _MU_REACH, m0 + _MU_REACH)
    assert _mu_crossing(dmu, y, *bracket) == pytest.approx(root, abs=1e-10)
    assert len(calls) <= 14


def test_bfgs_update_meets_the_secant_condition_and_stays_definite():
    from indicators.egarch import _bfgs_update

    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 5))
    b = a @ a.T + 5 * np.eye(5)
    s = rng.standard_normal(5)
    yv = (b + 0.3 * np.eye(5)) @ s  # s'y > 0
    nb = _bfgs_update(b, s, yv)
    np.testing.assert_allclose(nb @ s, yv, rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(nb) > 0)
    np.testing.assert_array_equal(_bfgs_update(b, s, -yv), b)  # would lose definiteness: unchanged


# ---------------------------------------------------------------------------------------------
# the bound-first path and the cold start (issue 17, target 3)


def _bond_refits():
    """The embedded market's bond: the fit at bar 250 (cold), then warm refits every 21 bars."""
    import feeds

    mk = feeds.synthetic_market(seed=0, start="2018-01-02", end="2025-06-30")
    r = mk.prices.pct_change().iloc[1:].to_numpy()[:, 1]
    fits = {250: egarch_fit(r[:250], "t")}
    for end in (271, 292):
        fits[end] = egarch_fit(r[:end], "t", fits[end - 21].params)
    return r, fits


def _count_minimize(monkeypatch) -> list:
    calls: list = []
    real = egarch_mod.minimize

    def counted(fun, x0, *a, **k):
        calls.append(k.get("method"))
        return real(fun, x0, *a, **k)

    monkeypatch.setattr(egarch_mod, "minimize", counted)
    return calls


def _free_first(monkeypatch):
    """The path before the bound-first rule: every warm start chases the free optimum first."""
    monkeypatch.setattr(egarch_mod, "_LYAP_NEAR", math.inf)


def test_warm_start_on_the_invertibility_bound_goes_to_the_constrained_optimum(monkeypatch):
    """A warm start sitting on the invertibility bound of the new window: both starts go straight
    to the constrained optimum (SLSQP only, no free L-BFGS-B chase), agree, and end where the
    free-first path and the arch engine end."""
    r, fits = _bond_refits()
    win, start = r[:313 - 21], fits[271].params
    y = 100 * win
    bc, vb, _ = _prepare(y)
    assert egarch_mod._lyapunov(start, y, bc, vb) > egarch_mod._LYAP_NEAR  # the path is taken
    calls = _count_minimize(monkeypatch)
    f = egarch_fit(win, "t", start)
    assert calls == ["SLSQP", "SLSQP"]
    assert f.engine == "fast" and f.converged and f.boundary and not f.relaxed
    assert egarch_mod._lyapunov(f.params, y, bc, vb) == pytest.approx(egarch_mod._LYAP_MAX, abs=1e-6)
    _free_first(monkeypatch)
    old = egarch_fit(win, "t", start)
    assert "L-BFGS-B" in calls[2:] and old.boundary
    assert f.loglik >= old.loglik - egarch_mod._KINK_DECREMENT_TOL
    ref = egarch_fit(win, "t", start, engine="arch")
    assert f.loglik >= ref.loglik - 1e-6


def test_warm_start_on_the_bound_of_a_window_with_an_invertible_optimum_is_settled_freely(monkeypatch):
    """On the bound-first path the constraint may not bind any more. Here the warm start's
    constrained search stays on the bound (a local optimum there), the second start's ends inside
    the invertible region: an interior optimum, settled by the free fit's Newton steps, with the
    better likelihood, so it is selected: the same fit as the free-first path."""
    r, fits = _bond_refits()
    win, start = r[:313], fits[292].params
    y = 100 * win
    bc, vb, _ = _prepare(y)
    assert egarch_mod._lyapunov(start, y, bc, vb) > egarch_mod._LYAP_NEAR
    calls = _count_minimize(monkeypatch)
    f = egarch_fit(win, "t", start)
    assert calls == ["SLSQP", "SLSQP"]  # then Newton from the interior point: no L-BFGS-B
    assert f.status == "converged" and not f.boundary and not f.relaxed
    assert egarch_mod._lyapunov(f.params, y, bc, vb) < egarch_mod._LYAP_MAX - 1e-6
    _free_first(monkeypatch)
    old = egarch_fit(win, "t", start)
    assert old.status == "converged"
    np.testing.assert_allclose(f.params, old.params, atol=1e-5)
    assert f.loglik == pytest.approx(old.loglik, abs=1e-6)


def test_two_starts_agree_on_the_constraint_within_the_kink_allowance():
    tol = egarch_mod._KINK_DECREMENT_TOL
    x = np.zeros(6)

    def cand(ll, refit_ok=True):
        return (x, False, ll, "m", "fast", True, refit_ok)

    near = [cand(-100.0), cand(-100.0 - 0.5 * tol)]
    assert egarch_mod._agree_on_constraint(near) and all(c[1] for c in near)
    assert egarch_mod._select(near, -200.0)[0][2] == -100.0  # the better one
    assert not egarch_mod._agree_on_constraint([cand(-100.0), cand(-100.0 - 2 * tol)])
    assert not egarch_mod._agree_on_constraint([cand(-100.0), cand(-100.0, refit_ok=False)])
    assert not egarch_mod._agree_on_constraint([cand(-100.0)])


@pytest.mark.parametrize("seed", range(6))
def test_cold_start_is_archs_starting_values(seed):
    """The compiled grid search picks arch's own EGARCH starting values (the same grid point,
    exactly) and the same kurtosis-rule ``nu`` (to rounding: our filter and arch's agree to ulps)."""
    from arch.univariate import EGARCH, StudentsT

    rng = np.random.default_rng(seed)
    for n in (40, 250, 750):
        y = 100 * simulate_egarch(n, int(rng.integers(1_000_000)), omega=rng.uniform(-0.05, 0.05))
        if seed % 2:
            y = np.round(y, 1)  # price ticks: ties and zeros
        bc, vb, res0 = _prepare(y)
        vol = EGARCH(1, 1, 1)
        want = vol.starting_values(res0)
        sigma2 = np.empty_like(res0)
        vol.compute_variance(want, res0, sigma2, vol.backcast(res0), vol.variance_bounds(res0))
        nu = StudentsT().starting_values(res0 / np.sqrt(sigma2))[0]
        got = egarch_mod._cold_start(y, res0, "t", bc, vb)
        np.testing.assert_array_equal(got[1:5], want)
        assert got[0] == y.mean() and got[5] == pytest.approx(nu, rel=1e-12)
        assert egarch_mod._cold_start(y, res0, "normal", bc, vb).shape == (5,)
