"""Turnover projection: exactness against a general QP, caps, identity, long-only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from drb.errors import DataError
from strategies.core.turnover import one_way_turnover, project_turnover


def _qp_reference(cur, tgt, total, cap, long_only):
    """Independent reference: SLSQP on the smooth split d = p - m, p, m >= 0."""
    n = cur.size
    d0 = tgt - cur
    a = np.inf if cap is None else cap
    up = np.full(n, a)
    dn = np.minimum(a, cur) if long_only else np.full(n, a)

    def f(z):
        r = z[:n] - z[n:] - d0
        return r @ r, np.concatenate([2 * r, -2 * r])

    cons = [{"type": "eq", "fun": lambda z: z[:n].sum() - z[n:].sum()}]
    if total is not None:
        cons.append({"type": "ineq", "fun": lambda z: 2 * total - z.sum()})
    bounds = [(0, None if not np.isfinite(u) else u) for u in np.concatenate([up, dn])]
    res = minimize(f, np.zeros(2 * n), jac=True, method="SLSQP", bounds=bounds,
                   constraints=cons, options={"ftol": 1e-15, "maxiter": 1000})
    return res.x[:n] - res.x[n:]


@pytest.mark.parametrize("long_only", [False, True])
def test_matches_general_qp_on_random_cases(long_only: bool) -> None:
    rng = np.random.default_rng(42)
    for _ in range(60):
        n = int(rng.integers(2, 10))
        cur = rng.dirichlet(np.ones(n))
        tgt = rng.dirichlet(np.full(n, 0.5))
        total = float(rng.uniform(0.01, 0.4))
        cap = float(rng.uniform(0.01, 0.25))
        d = project_turnover(cur, tgt, total, cap, long_only=long_only) - cur
        dq = _qp_reference(cur, tgt, total, cap, long_only)
        d0 = tgt - cur
        # ours is feasible and at least as close as the QP solution (up to SLSQP precision)
        assert np.sum((d - d0) ** 2) <= np.sum((dq - d0) ** 2) + 1e-12
        np.testing.assert_allclose(d, dq, atol=1e-6)


def test_not_clip_and_rescale() -> None:
    cur = np.array([0.25, 0.25, 0.25, 0.25])
    tgt = np.array([0.55, 0.15, 0.15, 0.15])
    w = project_turnover(cur, tgt, total_cap=0.15, asset_cap=None)
    # KKT by hand: the sells share the 0.15 one-way budget equally, the buy takes it all
    np.testing.assert_allclose(w, [0.40, 0.20, 0.20, 0.20], atol=1e-15)
    w2 = project_turnover(cur, tgt, total_cap=0.15, asset_cap=0.08)
    np.testing.assert_allclose(w2, [0.33, 0.25 - 0.08 / 3, 0.25 - 0.08 / 3, 0.25 - 0.08 / 3],
                               atol=1e-15)


def test_plain_projection_can_short_and_long_only_prevents_it() -> None:
    cur = np.array([0.30, 0.20, 0.20, 0.28, 0.02])
    tgt = np.array([0.00, 0.30, 0.30, 0.40, 0.00])
    plain = project_turnover(cur, tgt, total_cap=None, asset_cap=0.08, long_only=False)
    assert plain.min() < -1e-6  # the 2% exit is enlarged into a short by the budget multiplier
    lo = project_turnover(cur, tgt, total_cap=None, asset_cap=0.08, long_only=True)
    assert lo.min() >= 0.0
    np.testing.assert_allclose(lo - cur, _qp_reference(cur, tgt, None, 0.08, True), atol=1e-6)


def test_none_caps_and_errors() -> None:
    cur = np.array([0.5, 0.5])
    tgt = np.array([0.9, 0.1])
    np.testing.assert_array_equal(project_turnover(cur, tgt, None, None), tgt)
    np.testing.assert_allclose(project_turnover(cur, tgt, 0.0, None), cur)
    assert one_way_turnover(cur, tgt) == pytest.approx(0.4)
    with pytest.raises(DataError):
        project_turnover(cur, tgt, -0.1)
    with pytest.raises(DataError):
        project_turnover(np.array([-0.1, 1.1]), tgt)
    with pytest.raises(DataError):
        project_turnover(cur, np.ones(3) / 3)


weights_st = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
        st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(weights_st, st.floats(0.0, 0.5), st.floats(0.0, 0.3), st.booleans())
@example(pair=([0.0, 0.0], [1.0, 0.5]), total=0.0, cap=5e-324, long_only=False)  # found by CI
@example(pair=([0.0, 0.0], [1.0, 0.5]), total=1e-300, cap=5e-324, long_only=True)
def test_projection_properties(pair, total, cap, long_only) -> None:
    c, t = (np.asarray(v) + 1e-3 for v in pair)
    cur, tgt = c / c.sum(), t / t.sum()
    w = project_turnover(cur, tgt, total, cap, long_only=long_only)
    d = w - cur
    assert abs(d.sum()) <= 1e-12
    assert np.abs(d).max() <= cap + 1e-15
    assert 0.5 * np.abs(d).sum() <= total + 1e-14
    if long_only:
        assert w.min() >= -1e-15
    # identity when the target is admissible
    d0 = tgt - cur
    if np.abs(d0).max() <= cap and 0.5 * np.abs(d0).sum() <= total:
        np.testing.assert_allclose(w, tgt, atol=1e-15)
    # a projection is idempotent
    np.testing.assert_allclose(project_turnover(cur, w, total, cap, long_only=long_only), w,
                               atol=1e-12)


def test_sign_change_bisects_over_the_grid():
    from drb.search import sign_change

    pts = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    calls = []

    def f(x):
        calls.append(x)
        return 2.5 - x

    assert sign_change(f, pts) == (2, 3) and len(calls) <= 3
    assert sign_change(lambda x: 1.0 if x < 6 else 0.0, pts) == (5, 6)  # 0 counts as "not > 0"
    assert sign_change(f, [0.0, 9.0]) == (0, 1)
