"""The factor-risk-parity polish (strategies.core.frp_polish): twins, derivatives, and its end
points against scipy's SLSQP from the same starts (the polish it replaced)."""

import numpy as np
import pytest

from strategies.core import frp_polish as fp
from strategies.core import weights as W
from strategies.core.solvers import _slsqp_fully_invested


def _problem(seed: int, n: int = 4, k: int | None = None):
    """A PCA factor model of a random covariance (as MacroRiskParity builds it)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) * rng.uniform(0.05, 0.3, n)
    cov = a @ a.T + np.diag(rng.uniform(1e-4, 1e-2, n))
    k = n - 1 if k is None else k
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:k]
    loadings = vecs[:, order] * np.where(vecs[:, order].sum(axis=0) < 0, -1.0, 1.0)
    fcov = np.diag(vals[order])
    spec = np.clip(np.diag(cov - loadings @ fcov @ loadings.T), 1e-12, None)
    bmat, sf, e, fb, full = W._frp_inputs(loadings, fcov, spec, None)
    return np.ascontiguousarray(bmat), np.ascontiguousarray(sf), np.ascontiguousarray(fb), full


def _gap(w, bmat, sf, fb):
    y = bmat.T @ w
    u = sf @ y
    s = float(y @ u)
    c = y * u / s
    r = c - fb
    gy = 2.0 * (r * u + sf @ (r * y) - 2.0 * float(r @ c) * u) / s
    return float(r @ r), bmat @ gy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_twin_and_jacobian(seed):
    bmat, sf, fb, _ = _problem(seed, n=5)
    n, k = bmat.shape
    w = np.random.default_rng(seed).dirichlet(np.ones(n))
    outs = []
    for f in (fp._frp_residual_py, fp._frp_residual):
        r, jac = np.empty(k), np.empty((k, n))
        outs.append((f(w, bmat, sf, fb, r, jac), r, jac))
    assert outs[0][0] == pytest.approx(outs[1][0], rel=1e-12)
    np.testing.assert_allclose(outs[0][2], outs[1][2], rtol=1e-12, atol=1e-14)
    f0, r0, jac = outs[1]
    assert f0 == pytest.approx(_gap(w, bmat, sf, fb)[0], rel=1e-12)
    for i in range(n):  # central differences of the residuals
        h = 1e-6
        wp, wm = w.copy(), w.copy()
        wp[i] += h
        wm[i] -= h
        rp, rm = np.empty(k), np.empty(k)
        fp._frp_residual(wp, bmat, sf, fb, rp, np.empty((k, n)))
        fp._frp_residual(wm, bmat, sf, fb, rm, np.empty((k, n)))
        np.testing.assert_allclose(jac[:, i], (rp - rm) / (2 * h), rtol=1e-5, atol=1e-8)


def test_small_solve_twin_pivots_and_flags_singular():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 5))
    a[0, 0] = 0.0  # needs a pivot
    b = rng.standard_normal(5)
    for f in (fp._solve_small_py, fp._solve_small):
        x = b.copy()
        assert f(a.copy(), x) is True
        np.testing.assert_allclose(a @ x, b, rtol=1e-10, atol=1e-12)
        assert f(np.zeros((3, 3)), np.ones(3)) is False


@pytest.mark.parametrize("seed", range(8))
def test_polish_twin_and_never_worse_than_slsqp(seed):
    """From the cloud's best start the polish ends at least as low as SLSQP (ftol 1e-16) does, on
    simplex weights; the compiled kernel equals its Python twin."""
    n = (4, 4, 6, 8, 4, 5, 20, 12)[seed]
    bmat, sf, fb, full = _problem(seed, n=n, k=(None, 2, None, 3, None, None, 5, None)[seed])
    w0 = W._frp_starts(full, bmat, sf, fb)[0]
    got = fp._frp_polish(w0.copy(), bmat, sf, fb, 200)
    twin = fp._frp_polish_py(w0.copy(), bmat, sf, fb, 200)
    np.testing.assert_allclose(got, twin, rtol=1e-9, atol=1e-12)
    assert got.min() >= 0.0 and got.sum() == pytest.approx(1.0, abs=1e-12)
    with np.errstate(all="ignore"):
        res = _slsqp_fully_invested(lambda w: _gap(w, bmat, sf, fb), w0.copy(), [(0.0, 1.0)] * n,
                                    ftol=1e-16, maxiter=2000)
    ref = np.clip(res.x, 0.0, None)
    ref /= ref.sum()
    assert _gap(got, bmat, sf, fb)[0] <= _gap(ref, bmat, sf, fb)[0] + 1e-12
    assert _gap(got, bmat, sf, fb)[0] <= _gap(w0, bmat, sf, fb)[0]


def test_polish_reaches_an_exact_budget_when_one_exists():
    """Identity loadings: factor risk parity is risk parity on the factors, an exact solution,
    reached from the cloud's best start (the way factor_risk_parity_weights calls it)."""
    from strategies.core.solvers import risk_budget_weights

    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 4))
    sf = np.ascontiguousarray(a @ a.T + 0.1 * np.eye(4))
    bmat = np.eye(4)
    fb = np.full(4, 0.25)
    w0 = W._frp_starts(sf, bmat, sf, fb)[0]
    w = fp._frp_polish(w0.copy(), bmat, sf, fb, 200)
    assert _gap(w, bmat, sf, fb)[0] < 1e-20
    np.testing.assert_allclose(w, risk_budget_weights(sf, fb), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_direction_and_line_step_twins(seed):
    """The pieces of one iteration, compiled against their Python twins, from a start with a
    coordinate at zero (the hold / release branches)."""
    bmat, sf, fb, full = _problem(seed, n=6)
    n, k = bmat.shape
    w = W._frp_starts(full, bmat, sf, fb)[0].copy()
    w[np.argmin(w)] = 0.0
    w /= w.sum()
    r, jac = np.empty(k), np.empty((k, n))
    f = fp._frp_residual(w, bmat, sf, fb, r, jac)
    g = jac.T @ r
    outs = []
    for direction, step in ((fp._frp_direction_py, fp._frp_line_step_py), (fp._frp_direction, fp._frp_line_step)):
        active = w <= 0.0
        idx, a, rhs, jd = np.empty(n, dtype=np.int64), np.empty((n + 1, n + 1)), np.empty(n + 1), np.empty(k)
        m = direction(w, jac, g, active, idx, a, rhs, jd)
        assert m > 1
        slope = float(g[idx[:m]] @ rhs[:m])
        assert slope < 0.0  # a descent direction
        wn, rn, jn = np.empty(n), np.empty(k), np.empty((k, n))
        fn, t, block = step(w, rhs, idx, m, f, slope, bmat, sf, fb, wn, rn, jn)
        assert 0.0 < t <= 1.0 and fn < f and wn.min() >= 0.0 and wn.sum() == pytest.approx(1.0)
        outs.append((m, idx[:m].copy(), rhs[: m + 1].copy(), active.copy(), fn, t, block, wn.copy()))
    (m1, i1, d1, a1, f1, t1, b1, w1), (m2, i2, d2, a2, f2, t2, b2, w2) = outs
    assert m1 == m2 and np.array_equal(i1, i2) and np.array_equal(a1, a2) and (t1, b1) == (t2, b2)
    np.testing.assert_allclose(d1, d2, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(w1, w2, rtol=1e-12, atol=1e-15)
    assert f1 == pytest.approx(f2, rel=1e-10, abs=1e-18)
