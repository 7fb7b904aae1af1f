"""The numba kernels of indicators.dcc agree with their pure-Python twins (``<name>_py``).

Each kernel is a plain Python function compiled by ``numba.njit``; here both run on the same seeded
DCC residuals (arrays copied, since some kernels update theirs in place) and must agree to 1e-12
(relative), as arch checks its ``recursions_python`` against the compiled recursions.
"""

from __future__ import annotations

import numpy as np
import pytest

import indicators.dcc as dcc

RTOL = 1e-12


def _case(n: int, T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    z = dcc.simulate_dcc(0.05, 0.9, T, n, seed=seed)
    return np.ascontiguousarray(z), z.T @ z / T


CASES = [(2, 40, 1), (3, 60, 2), (6, 50, 3)]
AB = [(0.03, 0.95), (0.2, 0.5), (0.001, 0.998)]


def _close(got, want) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("n,T,seed", CASES)
@pytest.mark.parametrize("a,b", AB)
def test_likelihood_kernels_match_their_twins(n, T, seed, a, b):
    z, qbar = _case(n, T, seed)
    _close(dcc._loglik_kernel_py(z, a, b, qbar), dcc._loglik_kernel(z, a, b, qbar))
    _close(dcc._loglik_score_kernel_py(z, a, b, qbar), dcc._loglik_score_kernel(z, a, b, qbar))
    _close(dcc._q_last_py(z, a, b, qbar), dcc._q_last(z, a, b, qbar))


def test_step_kernels_match_their_twins():
    z, qbar = _case(5, 30, 7)
    a, b = 0.04, 0.93
    c = (1.0 - a - b) * qbar
    rng = np.random.default_rng(0)
    q0, qa0, qb0 = qbar.copy(), rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    out = []
    for fn in (dcc._q_advance_py, dcc._q_advance):
        q, qa, qb = q0.copy(), qa0.copy(), qb0.copy()
        fn(q, qa, qb, c, qbar, z[3], a, b)
        out.append((q, qa, qb))
    for g, w in zip(*out):
        _close(g, w)
    q = out[1][0]
    L_py, L_nb = np.zeros((5, 5)), np.zeros((5, 5))
    _close(dcc._chol_logdet_py(q, L_py), dcc._chol_logdet(q, L_nb))
    _close(L_py, L_nb)
    assert dcc._chol_logdet_py(-np.eye(2), np.zeros((2, 2))) == dcc._chol_logdet(-np.eye(2), np.zeros((2, 2))) == np.inf
    y = np.sqrt(np.diag(q)) * z[4]
    v = np.linalg.solve(L_nb, y)
    bufs = [tuple(np.zeros(s) for s in ((5, 5), 5)) for _ in range(2)]
    got = dcc._score_step_py(q, out[1][1], out[1][2], L_nb, bufs[0][0], y, v, bufs[0][1])
    want = dcc._score_step(q, out[1][1], out[1][2], L_nb, bufs[1][0], y, v, bufs[1][1])
    _close(got, want)
    _close(bufs[0][0], bufs[1][0])
    q_full = np.tril(q) + np.tril(q, -1).T  # the kernels keep the lower triangle
    _close(bufs[0][1], np.linalg.solve(q_full, y))  # w = Q^-1 y, an independent check


def test_non_positive_definite_q_gives_minus_infinity_in_both():
    z, _ = _case(3, 20, 4)
    qbar = -np.eye(3)
    with np.errstate(invalid="ignore"):  # the twin takes sqrt(q_ii < 0) as numba does, silently
        ll_py = dcc._loglik_kernel_py(z, 0.9, 0.09, qbar)
    assert ll_py == dcc._loglik_kernel(z, 0.9, 0.09, qbar) == -np.inf
    assert dcc._loglik_score_kernel_py(z, 0.9, 0.09, qbar)[0] == dcc._loglik_score_kernel(z, 0.9, 0.09, qbar)[0] == -np.inf
