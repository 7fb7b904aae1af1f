"""The numba kernels of strategies.core agree with their pure-Python twins (``<name>_py``).

Each kernel is a plain Python function compiled by ``numba.njit(fn)``; here both run on the same
seeded random problems (arrays copied, since the kernels update some in place) and must agree to
1e-12 (relative for weights and points, absolute for the RC errors; iteration counts exactly),
as arch checks its ``recursions_python`` against the compiled recursions.
"""

from __future__ import annotations

import numpy as np
import pytest

import strategies.core.kernels as kernels

RTOL = 1e-12


def _problem(n: int, seed: int, *, sym_noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + 3))
    vol = rng.uniform(0.05, 0.4, n)
    corr = a @ a.T
    d = np.sqrt(np.diag(corr))
    cov = corr / np.outer(d, d) * np.outer(vol, vol)
    if sym_noise:  # asymmetric well within SYMMETRY_RTOL: exercises the symmetrization
        cov = cov + 1e-12 * rng.normal(size=(n, n)) * cov.max()
    b = rng.uniform(0.1, 1.0, n)
    return np.ascontiguousarray(cov), b / b.sum()


def _close(got, want) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    elif isinstance(want, np.ndarray):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300)
    elif isinstance(want, bool | int | np.integer):
        assert got == want
    else:  # errors are O(1) budget fractions: 1e-12 absolute (they are differences of RCs)
        assert got == pytest.approx(want, rel=RTOL, abs=RTOL)


def _both(name: str, *args):
    """Run the twin and the compiled kernel on private copies of the arguments."""
    py = getattr(kernels, name + "_py")
    jit = getattr(kernels, name)
    assert hasattr(jit, "py_func") and jit.py_func is py, f"{name} is not numba.njit({name}_py)"

    def copies():
        return [x.copy() if isinstance(x, np.ndarray) else x for x in args]

    return py(*copies()), jit(*copies())


def _scaled_start(cov: np.ndarray, b: np.ndarray, w0: np.ndarray | None = None):
    c, sd = kernels._scale_to_corr(cov)
    x = kernels._initial_point(c, b, kernels._EMPTY if w0 is None else w0, sd)
    return c, sd, x


SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 5, 12])
def test_building_blocks(n: int, seed: int) -> None:
    cov, b = _problem(n, seed)
    _close(*_both("_scale_to_corr", cov))
    c, sd, x = _scaled_start(cov, b)
    _close(*_both("_initial_point", c, b, kernels._EMPTY, sd))
    w0 = np.random.default_rng(seed).dirichlet(np.ones(n))
    _close(*_both("_initial_point", c, b, w0, sd))
    _close(*_both("_rc_gap", x, c @ x, b))
    w = x / sd / (x / sd).sum()
    _close(*_both("_rc_error_kernel", w, cov, b))
    _close(*_both("_unscale_and_verify", x, sd, cov, b))
    bad = x.copy()
    bad[0] = -bad[0]  # not a valid solution: NaN weights and an infinite error from both
    py, jit = _both("_unscale_and_verify", bad, sd, cov, b)
    assert np.isnan(py[0]).all() and np.isnan(jit[0]).all() and py[1:] == jit[1:]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 6, 20, 40])
def test_newton_kernels(n: int, seed: int) -> None:
    cov, b = _problem(n, seed)
    c, _, x = _scaled_start(cov, b)
    for tol, maxiter in ((1e-12, 100), (1e-4, 100), (1e-12, 2)):
        for name in ("_newton_kernel", "_newton_cg_kernel"):
            py, jit = _both(name, c, b, x, tol, maxiter)
            _close(py, jit)
            if maxiter == 100:
                assert py[2] <= tol
    py, jit = _both("_dense_solve_kernel", cov, b, kernels._EMPTY, 1e-12, 100)
    _close(py, jit)
    assert py[2] <= 1e-12
    py, jit = _both("_cg_solve_kernel", cov, b, kernels._EMPTY, 1e-12, 100)
    _close(py, jit)
    assert py[2] <= 1e-12


def _both_inplace(name: str, args: tuple, out: tuple[int, ...]):
    """Run twin and kernel on private copies; return (py result, py outputs, jit result, jit outputs)
    where outputs are the arguments at positions ``out`` that the kernel writes."""
    py_f = getattr(kernels, name + "_py")
    jit_f = getattr(kernels, name)
    assert jit_f.py_func is py_f, f"{name} is not numba.njit({name}_py)"
    runs = []
    for f in (py_f, jit_f):
        a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        runs.append((f(*a), tuple(a[i] for i in out)))
    return runs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 6, 40])
def test_newton_step_helpers(n: int, seed: int) -> None:
    cov, b = _problem(n, seed)
    c, _, x = _scaled_start(cov, b)
    empty_n = np.zeros(n)
    for dense in (True, False):
        (_, (py,)), (_, (jit,)) = _both_inplace("_matvec", (c, x, empty_n, dense), (2,))
        _close(py, jit)
        np.testing.assert_allclose(py, c @ x, rtol=1e-13)
        _close(*_both("_log", 0.3, dense))
    g = c @ x - b / x
    (ok_py, (h_py,)), (ok_jit, (h_jit,)) = _both_inplace(
        "_hessian_cholesky", (c, b, x, np.zeros((n, n))), (3,)
    )
    assert ok_py and ok_jit
    _close(np.tril(h_py), np.tril(h_jit))
    hess = c + np.diag(b / x**2)
    np.testing.assert_allclose(np.tril(h_py) @ np.tril(h_py).T, hess, rtol=1e-12, atol=1e-12)
    (_, (d_py,)), (_, (d_jit,)) = _both_inplace("_cholesky_solve", (h_jit, g, empty_n), (2,))
    _close(d_py, d_jit)
    np.testing.assert_allclose(d_py, np.linalg.solve(hess, g), rtol=1e-10)
    (_, (p_py,)), (_, (p_jit,)) = _both_inplace(
        "_pcg_direction", (c, b, x, g, empty_n, np.zeros((5, n))), (4,)
    )
    _close(p_py, p_jit)
    for dense in (True, False):
        for tol, maxiter in ((1e-12, 100), (1e-12, 2)):
            _close(*_both("_newton_loop", c, b, x, tol, maxiter, dense))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 7])
def test_ccd_kernel(n: int, seed: int) -> None:
    cov, b = _problem(n, seed)
    c, _, x = _scaled_start(cov, b)
    for tol, maxiter in ((1e-12, 5000), (1e-3, 5000), (1e-12, 3)):
        _close(*_both("_ccd_kernel", c, b, x, tol, maxiter))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 4, 20, 32])
def test_checked_solve_kernel(n: int, seed: int) -> None:
    cov, b = _problem(n, seed, sym_noise=seed % 2 == 1)
    w0 = np.random.default_rng(seed).dirichlet(np.ones(n))
    jit = kernels._checked_solve_dispatcher
    assert jit.py_func is kernels._checked_solve_kernel_py
    for args in ((cov, b, kernels._EMPTY, False, 1e-12, 100), (cov, b * 3.0, w0, True, 1e-10, 100)):
        py = kernels._checked_solve_kernel_py(*args)
        got = jit(*args)
        assert py[0] == got[0] == kernels._OK
        _close(py, got)
    # the failure codes agree too
    zero = b.copy()
    zero[0] = 0.0
    not_pd = cov.copy()
    not_pd[0, 1] = not_pd[1, 0] = 1.5 * np.sqrt(cov[0, 0] * cov[1, 1])
    nan_x0 = w0.copy()
    nan_x0[-1] = np.nan
    cases = [
        ((cov, zero, kernels._EMPTY, False, 1e-12, 100), kernels._ZERO_BUDGET),
        ((not_pd, b, kernels._EMPTY, False, 1e-12, 100), kernels._NOT_PD),
        ((cov, b, nan_x0, True, 1e-12, 100), kernels._INVALID),
        ((cov, -b, kernels._EMPTY, False, 1e-12, 100), kernels._INVALID),
        ((cov, b, kernels._EMPTY, False, np.nan, 100), kernels._INVALID),
        ((cov, b, kernels._EMPTY, False, 1e-12, 0), kernels._UNSOLVED),
    ]
    for args, code in cases:
        py = kernels._checked_solve_kernel_py(*args)
        got = jit(*args)
        assert py[0] == got[0] == code
        assert py[1].size == got[1].size == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 3, 20])
def test_validation_kernels(n: int, seed: int) -> None:
    from drb import cholesky as ch
    from strategies.core import validation as v

    for mod, name in ((v, "_matrix_status"), (ch, "_is_pd_small"), (v, "_vector_status")):
        assert getattr(mod, name).py_func is getattr(mod, name + "_py")
    cov, b = _problem(n, seed, sym_noise=True)
    rng = np.random.default_rng(seed)
    nan = cov.copy()
    nan[rng.integers(n), rng.integers(n)] = np.nan
    asym = cov.copy()
    asym[0, -1] += 1e-3 * cov.max()
    indefinite = cov - 2.0 * np.eye(n) * cov.max()
    for a in (cov, nan, asym, indefinite, -np.eye(n)):
        _close(v._matrix_status_py(a, v.SYMMETRY_RTOL), v._matrix_status(a, v.SYMMETRY_RTOL))
        sym = 0.5 * (a + a.T)
        assert ch._is_pd_small_py(sym) == ch._is_pd_small(sym) == ch.is_pd(sym)
    assert ch._is_pd_small(cov) and not ch._is_pd_small(indefinite)
    for bad in (np.inf, np.nan):  # a non-finite entry is never positive definite
        c = cov.copy()
        c[-1, -1] = bad
        assert not ch.is_pd(c) and not ch._is_pd_small_py(c)
    # the one hand-written Cholesky: diagonal taken from ``lo``, strict lower triangle from ``a``
    assert ch._cholesky_in_place.py_func is ch._cholesky_in_place_py
    shift = 0.3 * float(np.min(np.linalg.eigvalsh(cov)))
    for a, ok in ((cov, True), (indefinite, False)):
        los = []
        for f in (ch._cholesky_in_place_py, ch._cholesky_in_place):
            lo = np.full((n, n), np.nan)
            np.fill_diagonal(lo, np.diag(a) - shift)
            assert f(a, lo) is ok
            los.append(np.tril(lo))
        if ok:
            _close(los[0], los[1])
            np.testing.assert_allclose(los[0], np.linalg.cholesky(a - shift * np.eye(n)), rtol=1e-12, atol=1e-14)
    neg = b.copy()
    neg[-1] = -0.1
    inf = b.copy()
    inf[0] = np.inf
    for vec in (b, neg, inf):
        for nonnegative in (False, True):
            _close(v._vector_status_py(vec, nonnegative), v._vector_status(vec, nonnegative))


def test_positive_definite_solve_twin():
    """drb.cholesky.solve_pd (the EGARCH Newton step) against its Python twin and numpy."""
    from drb import cholesky as ch

    rng = np.random.default_rng(11)
    for k in (1, 5, 6):
        a = rng.standard_normal((k, k))
        b = a @ a.T + 0.1 * np.eye(k)
        g = rng.standard_normal(k)
        outs = []
        for f in (ch._solve_pd_py, ch.solve_pd):
            out = np.empty(k)
            assert f(b, g, out) is True
            outs.append(out)
        _close(outs[0], outs[1])
        np.testing.assert_allclose(outs[1], np.linalg.solve(b, g), rtol=1e-10)
    indefinite = np.diag([1.0, -1.0, 2.0])
    assert ch.solve_pd(indefinite, np.ones(3), np.empty(3)) is False
    assert ch._solve_pd_py(indefinite, np.ones(3), np.empty(3)) is False
