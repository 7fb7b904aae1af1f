"""Risk-budget solver: closed forms, a second algorithm, properties, edge cases, fallbacks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import strategies.core.kernels as kernels
import strategies.core.solvers as solvers
from drb.errors import CovarianceRepairWarning, DataError, SolverFallbackWarning
from strategies.core.risk import risk_contributions
from strategies.core.solvers import (
    RiskBudgetInfeasibleWarning,
    risk_budget_ccd,
    risk_budget_weights,
    risk_budget_weights_unchecked,
    sharpe_risk_budget_weights,
)


def _rel_err(w, cov, b):
    return np.max(np.abs(risk_contributions(w, cov, relative=True) - b / b.sum()))


def _random_cov(n: int, seed: int, cond: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    ev = (np.geomspace(1.0, 1.0 / cond, n) if cond else rng.uniform(0.05, 1.0, n)) * 0.04
    cov = (q * ev) @ q.T
    return 0.5 * (cov + cov.T)


def test_two_assets_closed_form() -> None:
    # w1/w2 solves b2 w1^2 s1^2 + (b2 - b1) w1 w2 c - b1 w2^2 s2^2 = 0 (c = rho s1 s2)
    s1, s2, rho, b1 = 0.20, 0.07, 0.35, 0.7
    c = rho * s1 * s2
    cov = np.array([[s1**2, c], [c, s2**2]])
    b2 = 1 - b1
    qa, qb, qc = b2 * s1**2, (b2 - b1) * c, -b1 * s2**2
    r = (-qb + np.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)
    expected = np.array([r, 1.0]) / (1 + r)
    np.testing.assert_allclose(risk_budget_weights(cov, [b1, b2]), expected, rtol=1e-13)


def test_uncorrelated_closed_form() -> None:
    vol = np.array([0.05, 0.1, 0.2, 0.3, 0.15])
    b = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    w = risk_budget_weights(np.diag(vol**2), b)
    expected = np.sqrt(b) / vol
    np.testing.assert_allclose(w, expected / expected.sum(), rtol=1e-13)


def test_constant_correlation_erc_is_inverse_vol() -> None:
    vol = np.array([0.05, 0.1, 0.2, 0.3])
    cov = np.outer(vol, vol) * (0.4 + 0.6 * np.eye(4))
    w = risk_budget_weights(cov, np.ones(4))
    np.testing.assert_allclose(w, (1 / vol) / (1 / vol).sum(), rtol=1e-13)


@pytest.mark.parametrize("n", [3, 20, 60, 250])
def test_newton_agrees_with_coordinate_descent_and_root_finding(n: int) -> None:
    cov = _random_cov(n, n)
    b = np.random.default_rng(n).uniform(0.2, 1.0, n)
    b /= b.sum()
    info = risk_budget_weights(cov, b, return_info=True)
    assert info.method == ("newton" if n <= solvers.DENSE_MAX_N else "newton-cg")
    assert info.max_error <= 1e-12 and info.exact
    np.testing.assert_allclose(info.weights, risk_budget_ccd(cov, b), rtol=1e-9)
    if n == 3:  # a third, unrelated method: y_i solves y_i (S y)_i = b_i coordinate-wise
        y = np.ones(3)
        for _ in range(200):
            for i in range(3):
                rest = cov[i] @ y - cov[i, i] * y[i]
                y[i] = brentq(lambda t, i=i, rest=rest: t * (cov[i, i] * t + rest) - b[i],
                              1e-12, 1e3, xtol=1e-15)
        np.testing.assert_allclose(info.weights, y / y.sum(), rtol=1e-10)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 50))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + draw(st.integers(1, 3 * n))))
    cov = a @ a.T / a.shape[1] * 0.04 + 1e-4 * np.eye(n)
    b = rng.uniform(0.0, 1.0, n) ** draw(st.sampled_from([1, 3]))
    if draw(st.booleans()) and n > 1:
        b[rng.integers(0, n)] = 0.0
    if b.sum() == 0:
        b[0] = 1.0
    return cov, b / b.sum()


@settings(max_examples=60, deadline=None)
@given(problems(), st.floats(1e-3, 1e3), st.integers(0, 10_000))
def test_solver_properties(problem, scale, perm_seed) -> None:
    cov, b = problem
    n = b.size
    w = risk_budget_weights(cov, b)
    assert np.isfinite(w).all() and abs(w.sum() - 1) < 1e-14
    assert (w[b > 0] > 0).all() and (w[b == 0] == 0).all()
    assert _rel_err(w, cov, b) <= 1e-10
    # invariance to scaling the covariance
    np.testing.assert_allclose(risk_budget_weights(cov * scale, b), w, rtol=1e-9, atol=1e-15)
    # permutation equivariance
    p = np.random.default_rng(perm_seed).permutation(n)
    np.testing.assert_allclose(risk_budget_weights(cov[np.ix_(p, p)], b[p]), w[p], rtol=1e-9,
                               atol=1e-15)


@pytest.mark.parametrize("n", [5, 30])
def test_ill_conditioned(n: int) -> None:
    cov = _random_cov(n, 7, cond=1e8)
    assert np.linalg.cond(cov) == pytest.approx(1e8, rel=1e-3)
    b = np.linspace(1, 2, n)
    w = risk_budget_weights(cov, b)
    assert _rel_err(w, cov, b) <= 1e-10 and (w > 0).all()


def test_n1_and_zero_budgets_and_single_active() -> None:
    assert risk_budget_weights([[0.04]], [3.0]).tolist() == [1.0]
    cov = _random_cov(4, 1)
    w = risk_budget_weights(cov, [0.0, 1.0, 0.0, 0.0])
    assert w.tolist() == [0.0, 1.0, 0.0, 0.0]
    w = risk_budget_weights(cov, [0.5, 0.0, 0.5, 0.0])
    assert w[1] == 0 and w[3] == 0
    sub = risk_budget_weights(cov[np.ix_([0, 2], [0, 2])], [1, 1])
    np.testing.assert_allclose(w[[0, 2]], sub, rtol=1e-13)


def test_warm_start_and_unchecked_entry_point() -> None:
    cov = _random_cov(30, 3)
    b = np.full(30, 1 / 30)
    cold = risk_budget_weights(cov, b, return_info=True)
    warm = risk_budget_weights(cov * 1.01, b, x0=cold.weights, return_info=True)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.weights, cold.weights, rtol=1e-9)
    fast = risk_budget_weights_unchecked(cov, b, x0=cold.weights)
    np.testing.assert_allclose(fast, cold.weights, rtol=1e-10)
    # a warm start with zeros is ignored, not propagated
    x0 = cold.weights.copy()
    x0[0] = 0.0
    np.testing.assert_allclose(risk_budget_weights(cov, b, x0=x0), cold.weights, rtol=1e-10)


def test_input_checks_and_repair() -> None:
    cov = _random_cov(3, 0)
    with pytest.raises(DataError):
        risk_budget_weights(cov, [-0.1, 0.6, 0.5])
    with pytest.raises(DataError):
        risk_budget_weights(cov, [0, 0, 0])
    with pytest.raises(DataError):
        risk_budget_weights(cov, [1, 1])
    with pytest.raises(DataError):
        risk_budget_weights(cov[:2], [1, 1, 1])
    asym = cov.copy()
    asym[0, 1] += 1e-3
    with pytest.raises(DataError):
        risk_budget_weights(asym, [1, 1, 1])
    nan = cov.copy()
    nan[1, 1] = np.inf
    with pytest.raises(DataError):
        risk_budget_weights(nan, [1, 1, 1])
    # budgets are normalized
    np.testing.assert_allclose(risk_budget_weights(cov, [2, 2, 4]),
                               risk_budget_weights(cov, [0.25, 0.25, 0.5]), rtol=1e-14)
    # not positive definite: repaired with a warning, still a valid answer
    vol = np.array([0.1, 0.2, 0.3])
    corr = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])
    with pytest.warns(CovarianceRepairWarning):
        w = risk_budget_weights(corr * np.outer(vol, vol), [1, 1, 1])
    assert np.isfinite(w).all() and (w > 0).all()


def test_fallback_to_coordinate_descent(monkeypatch) -> None:
    cov = _random_cov(6, 2)
    b = np.full(6, 1 / 6)
    expected = risk_budget_weights(cov, b)
    monkeypatch.setattr(solvers, "_NEWTON_MAXITER", 0)
    with pytest.warns(SolverFallbackWarning):
        info = risk_budget_weights(cov, b, return_info=True)
    assert info.method == "ccd"
    np.testing.assert_allclose(info.weights, expected, rtol=1e-9)


def test_bounds() -> None:
    vol = np.array([0.05, 0.15, 0.20, 0.25])
    cov = np.outer(vol, vol) * (0.2 + 0.8 * np.eye(4))
    b = np.full(4, 0.25)
    free = risk_budget_weights(cov, b)
    # slack bounds: exact answer
    info = risk_budget_weights(cov, b, bounds=(0.0, 0.9), return_info=True)
    assert info.exact and np.allclose(info.weights, free)
    # binding bounds: closest feasible point, reported
    info = risk_budget_weights(cov, b, bounds=(0.05, 0.35), return_info=True)
    assert not info.exact and info.method == "bounded-lsq"
    assert info.weights.max() <= 0.35 + 1e-12 and info.weights.min() >= 0.05 - 1e-12
    assert info.weights.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(info.risk_contributions,
                               risk_contributions(info.weights, cov, relative=True), rtol=1e-12)
    # no feasible point with a smaller gap among a grid of feasible portfolios
    rng = np.random.default_rng(0)
    gap = np.sum((info.risk_contributions - b) ** 2)
    for _ in range(300):
        w = rng.dirichlet(np.ones(4))
        if w.max() <= 0.35 and w.min() >= 0.05:
            assert np.sum((risk_contributions(w, cov, relative=True) - b) ** 2) >= gap - 1e-12
    with pytest.warns(RiskBudgetInfeasibleWarning):
        risk_budget_weights(cov, b, bounds=(0.05, 0.35))
    with pytest.raises(DataError):
        risk_budget_weights(cov, b, bounds=(0.3, 1.0))  # sum of lower bounds > 1


def test_sharpe_risk_budget() -> None:
    vol = np.array([0.15, 0.05, 0.18, 0.12])
    corr = np.array([[1, -0.2, 0.2, 0.6], [-0.2, 1, -0.1, 0.1], [0.2, -0.1, 1, 0.15],
                     [0.6, 0.1, 0.15, 1]])
    cov = corr * np.outer(vol, vol)
    mu = np.array([0.08, 0.025, 0.04, 0.06])
    b = np.array([0.4, 0.2, 0.2, 0.2])
    rb = risk_budget_weights(cov, b)
    np.testing.assert_array_equal(sharpe_risk_budget_weights(cov, mu, b, 0.0), rb)

    def sr(w):
        return (mu @ w) / np.sqrt(w @ cov @ w)

    last = sr(rb)
    for tau in [0.02, 0.05, 0.1, 1.0]:
        info = sharpe_risk_budget_weights(cov, mu, b, tau, return_info=True)
        assert not info.fallback and info.max_band_violation <= 1e-9
        assert info.sharpe >= last - 1e-10  # wider band, weakly higher Sharpe
        last = info.sharpe
    from strategies.core.weights import max_sharpe_weights

    assert last == pytest.approx(sr(max_sharpe_weights(cov, mu)), rel=1e-6)


def test_sharpe_risk_budget_fallback(monkeypatch) -> None:
    cov = np.diag([0.04, 0.01])
    mu = np.array([0.1, 0.02])

    def broken(*args, **kwargs):
        raise ValueError("broken optimizer")

    monkeypatch.setattr(solvers, "minimize", broken)
    with pytest.warns(SolverFallbackWarning, match="broken optimizer"):
        assert sharpe_risk_budget_weights(cov, mu, [0.5, 0.5], 0.1, return_info=True).fallback

    class Res:
        x = np.array([1.0, 0.0])
        success = True
        message = ""

    monkeypatch.setattr(solvers, "minimize", lambda *a, **k: Res())
    with pytest.warns(SolverFallbackWarning):
        info = sharpe_risk_budget_weights(cov, mu, [0.5, 0.5], 0.1, return_info=True)
    assert info.fallback
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(info.weights, risk_budget_weights(cov, [0.5, 0.5]))


@pytest.mark.parametrize("n", [2, 4, 20, 32])
def test_fast_path_matches_the_general_path(n: int) -> None:
    # Plain calls on float64 arrays with n <= DENSE_MAX_N take the one-call compiled path; its
    # weights must be bitwise those of the general path (return_info=True always takes the latter).
    for seed in range(3):
        cov = _random_cov(n, seed)
        if seed == 1:  # asymmetric within tolerance: symmetrized the same way
            cov = cov + 1e-12 * np.random.default_rng(seed).normal(size=(n, n)) * cov.max()
        b = np.random.default_rng(seed).uniform(0.1, 1.0, n) * (1.0 if seed else 1.0 / n)
        x0 = np.random.default_rng(seed + 10).dirichlet(np.ones(n))
        code, w_fast = solvers._checked_solve_kernel(cov, b, kernels._EMPTY, False, 1e-12, 100)
        assert code == kernels._OK
        np.testing.assert_array_equal(risk_budget_weights(cov, b), w_fast)
        np.testing.assert_array_equal(w_fast, risk_budget_weights(cov, b, return_info=True).weights)
        for tol in (1e-12, 1e-10):
            info = risk_budget_weights(cov, b, tol=tol, x0=x0, return_info=True)
            np.testing.assert_array_equal(risk_budget_weights(cov, b, tol=tol, x0=x0), info.weights)
            assert info.max_error <= tol
        # zero budgets are solved on the active subset (by the general path)
        bz = b.copy()
        bz[0] = 0.0
        code, _ = solvers._checked_solve_kernel(cov, bz, kernels._EMPTY, False, 1e-12, 100)
        assert code == kernels._ZERO_BUDGET
        w = risk_budget_weights(cov, bz)
        assert w[0] == 0.0 and _rel_err(w, cov, bz) <= 1e-12


def _raises(exc: type, msg: str, *args, **kwargs) -> None:
    with pytest.raises(exc) as info:
        risk_budget_weights(*args, **kwargs)
    assert str(info.value) == msg


def test_fast_path_keeps_the_messages() -> None:
    cov = _random_cov(4, 3)
    b = np.full(4, 0.25)
    nan = cov.copy()
    nan[2, 2] = np.nan
    asym = cov.copy()
    asym[0, 1] += 1e-3
    _raises(DataError, "cov: contains NaN or infinite entries", nan, b)
    _raises(DataError, "cov: all variances are zero or negative", -np.eye(4), b)
    _raises(DataError, "cov: not symmetric (max |S - S'| = 0.001 exceeds 1e-08 times the "
            "largest variance)", asym, b)
    _raises(DataError, "cov: expected a square (n, n) matrix, got shape (4, 3)",
            np.ascontiguousarray(cov[:, :3]), b)
    _raises(DataError, "budget: expected length 4, got 3", cov, b[:3])
    _raises(DataError, "budget: negative entry -0.25 at position 1", cov, b * [1, -1, 1, 1])
    _raises(DataError, "budget: NaN or infinite entry at position 3", cov, b * [1, 1, 1, np.inf])
    _raises(DataError, "budget: all entries are zero", cov, np.zeros(4))
    _raises(DataError, "tol: expected a finite value >= 0, got nan", cov, b, tol=np.nan)
    _raises(DataError, "tol: expected a finite value >= 0, got -1.0", cov, b, tol=-1.0)
    _raises(DataError, "x0: NaN or infinite entry at position 0", cov, b,
            x0=np.array([np.nan, 0.2, 0.3, 0.5]))
    _raises(DataError, "x0: expected length 4, got 0", cov, b, x0=np.empty(0))
    _raises(DataError, "x0: expected length 4, got 2", cov, b, x0=np.ones(2))
    # lists and other dtypes go the general way and give the same answer
    np.testing.assert_array_equal(risk_budget_weights(cov.tolist(), b.tolist()),
                                  risk_budget_weights(cov, b))
    np.testing.assert_array_equal(risk_budget_weights(np.asfortranarray(cov), b.astype(np.float32)),
                                  risk_budget_weights(cov, b.astype(np.float32).astype(float)))
    # not positive definite: still repaired with a warning
    vol = np.array([0.1, 0.2, 0.3])
    corr = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])
    with pytest.warns(CovarianceRepairWarning):
        risk_budget_weights(corr * np.outer(vol, vol), np.ones(3))


def test_weights_pinned_to_the_bit() -> None:
    """Exact weights computed before the move into strategies.core (hex floats): the refactoring of
    the kernels must not change a bit. Dense Newton only (pure loops, no BLAS: machine-independent);
    the fast compiled path and the general path (``return_info``) both."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 7))
    cov = np.ascontiguousarray(a @ a.T / 7 * 0.04)
    b = rng.uniform(0.1, 1, 4)
    b = b / b.sum()
    want = [
        float.fromhex(h)
        for h in ("0x1.a7f4ced2e2c1bp-2", "0x1.6d3020316c003p-2", "0x1.f351ef1a434a5p-4",
                  "0x1.b81a54d481ae3p-4")
    ]
    assert risk_budget_weights(cov, b).tolist() == want
    assert risk_budget_weights(cov, b, return_info=True).weights.tolist() == want
