"""Compiled kernels of the risk-budget solver (numba, ``cache=True``), each with its Python twin.

They work in correlation units (``x = D y``, ``D = diag(sqrt(diag S))``) and assume valid input;
:mod:`strategies.core.solvers` validates, dispatches and falls back. Each kernel is written as a
plain Python function ``<name>_py`` (its pure-Python twin, which ``tests/test_solver_kernels.py``
runs against the compiled version, as arch does with ``recursions_python``) and compiled by
``<name> = numba.njit(cache=True)(<name>_py)``. A twin calls the compiled versions of the kernels
it uses. Small helpers (matrix-vector product, Hessian factorization, the preconditioned
CG direction) are separate kernels called from the Newton loop; numba compiles
them into it.

Both Newton variants share one loop, :func:`_newton_loop_py`: ``dense=True`` takes exact steps from
a Cholesky factorization of the Hessian ``C + diag(b / x^2)`` with loop matvecs (the small-n
kernel), ``dense=False`` takes inexact steps from a Jacobi-preconditioned conjugate gradient with
BLAS matvecs (Newton-CG, for ``n > DENSE_MAX_N``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from drb.cholesky import _cholesky_in_place
from strategies.core.validation import (
    SYMMETRY_RTOL,
    _is_pd_small,
    _matrix_status,
    _vector_status,
)

#: Largest problem solved first by the dense (Cholesky) Newton kernel; larger ones use Newton-CG
#: (measured: Newton-CG is 2.5x faster at n = 50 and 5x at n = 200..500, see strategies.core.solvers).
DENSE_MAX_N: int = 32
_SMALL_N: int = 32  # hand-written Cholesky up to this size, LAPACK above (dense fallback)
_EMPTY = np.empty(0)
# Below this squared Newton decrement g'H^-1 g the full Newton step is taken (no line search).
_FULL_STEP_DECREMENT: float = 1e-6


def _scale_to_corr_py(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = cov.shape[0]
    sd = np.empty(n)
    for i in range(n):
        sd[i] = np.sqrt(cov[i, i])
    c = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            c[i, j] = cov[i, j] / (sd[i] * sd[j])
    return c, sd


_scale_to_corr = numba.njit(cache=True)(_scale_to_corr_py)


def _initial_point_py(c: np.ndarray, b: np.ndarray, w0: np.ndarray, sd: np.ndarray) -> np.ndarray:
    # Warm start from previous weights when all are positive, else Spinu's start x = b; either is
    # rescaled so that x' C x = sum(b) = 1, which holds at the solution.
    n = c.shape[0]
    x = np.empty(n)
    use_w0 = w0.shape[0] == n
    if use_w0:
        for i in range(n):
            if not (w0[i] > 0.0 and np.isfinite(w0[i])):
                use_w0 = False
    for i in range(n):
        x[i] = w0[i] * sd[i] if use_w0 else b[i]
    q = 0.0
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += c[i, j] * x[j]
        q += x[i] * acc
    s = 1.0 / np.sqrt(q)
    for i in range(n):
        x[i] *= s
    return x


_initial_point = numba.njit(cache=True)(_initial_point_py)


def _rc_gap_py(x: np.ndarray, cx: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(x'Cx, max_i |x_i (Cx)_i / x'Cx - b_i|): the convergence measure of every kernel."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * cx[i]
    err = 0.0
    for i in range(x.shape[0]):
        e = abs(x[i] * cx[i] / s - b[i])
        if e > err:
            err = e
    return s, err


_rc_gap = numba.njit(cache=True)(_rc_gap_py)


def _matvec_py(c: np.ndarray, x: np.ndarray, out: np.ndarray, dense: bool) -> None:
    """``out = C x``: row-by-row loops when ``dense``, else one BLAS call."""
    if dense:
        n = c.shape[0]
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += c[i, j] * x[j]
            out[i] = acc
    else:
        out[:] = np.dot(c, x)


_matvec = numba.njit(cache=True, inline="always")(_matvec_py)


def _hessian_cholesky_py(c: np.ndarray, b: np.ndarray, x: np.ndarray, h: np.ndarray) -> bool:
    """Cholesky factor of the Hessian ``C + diag(b / x^2)`` into the lower triangle of ``h``
    (hand-written up to ``_SMALL_N``, LAPACK above). False if it is not positive definite."""
    n = c.shape[0]
    if n <= _SMALL_N:
        for j in range(n):
            h[j, j] = c[j, j] + b[j] / (x[j] * x[j])
        return _cholesky_in_place(c, h)
    else:
        for i in range(n):
            for j in range(n):
                h[i, j] = c[i, j]
            h[i, i] += b[i] / (x[i] * x[i])
        h[:, :] = np.linalg.cholesky(h)
    return True


_hessian_cholesky = numba.njit(cache=True, inline="always")(_hessian_cholesky_py)


def _cholesky_solve_py(h: np.ndarray, g: np.ndarray, d: np.ndarray) -> None:
    """``d = (L L')^-1 g`` with ``L`` the lower triangle of ``h`` (forward, then back substitution)."""
    n = g.shape[0]
    for i in range(n):
        acc = g[i]
        for k in range(i):
            acc -= h[i, k] * d[k]
        d[i] = acc / h[i, i]
    for i in range(n - 1, -1, -1):
        acc = d[i]
        for k in range(i + 1, n):
            acc -= h[k, i] * d[k]
        d[i] = acc / h[i, i]


_cholesky_solve = numba.njit(cache=True, inline="always")(_cholesky_solve_py)


def _pcg_direction_py(
    c: np.ndarray, b: np.ndarray, x: np.ndarray, g: np.ndarray, d: np.ndarray, work: np.ndarray
) -> None:
    """``d`` solving ``(C + diag(b / x^2)) d = g`` by Jacobi-preconditioned conjugate gradient to
    relative residual ``min(0.5, sqrt(|g|))`` (Eisenstat-Walker 'superlinear' forcing term),
    matrix-free with BLAS matvecs. ``work``: scratch, shape (5, n)."""
    n = c.shape[0]
    hdiag, pre, r, z, p = work[0], work[1], work[2], work[3], work[4]
    gg = 0.0
    for i in range(n):
        hdiag[i] = b[i] / (x[i] * x[i])
        pre[i] = 1.0 / (c[i, i] + hdiag[i])
        gg += g[i] * g[i]
    gnorm = math.sqrt(gg)
    stop = min(0.5, math.sqrt(gnorm)) * gnorm
    rz = 0.0
    for i in range(n):
        d[i] = 0.0
        r[i] = g[i]
        z[i] = pre[i] * r[i]
        p[i] = z[i]
        rz += r[i] * z[i]
    for _ in range(4 * n + 10):
        hp = np.dot(c, p)
        php = 0.0
        for i in range(n):
            hp[i] += hdiag[i] * p[i]
            php += p[i] * hp[i]
        if not php > 0.0:
            break
        alpha = rz / php
        rr = 0.0
        for i in range(n):
            d[i] += alpha * p[i]
            r[i] -= alpha * hp[i]
            rr += r[i] * r[i]
        if math.sqrt(rr) <= stop:
            break
        rz_new = 0.0
        for i in range(n):
            z[i] = pre[i] * r[i]
            rz_new += r[i] * z[i]
        beta = rz_new / rz
        for i in range(n):
            p[i] = z[i] + beta * p[i]
        rz = rz_new


_pcg_direction = numba.njit(cache=True, inline="always")(_pcg_direction_py)


def _log_py(v: float, dense: bool) -> float:
    """``ln v`` as each Newton variant has always taken it (``np.log`` dense, ``math.log`` CG)."""
    return np.log(v) if dense else math.log(v)


_log = numba.njit(cache=True, inline="always")(_log_py)


def _newton_loop_py(
    c: np.ndarray, b: np.ndarray, x: np.ndarray, tol: float, maxiter: int, dense: bool
) -> tuple[np.ndarray, int, float]:
    """Damped Newton on ``f(x) = 0.5 x'Cx - b' ln x`` from ``x`` (updated in place).

    Steps are exact (Cholesky) when ``dense``, else Newton-CG (:func:`_pcg_direction_py`); both
    then take the same guarded Armijo line search. Stops when the risk-contribution gap is within ``tol``,
    after ``maxiter`` steps, or on stagnation at the rounding floor. Returns (best x, iterations,
    best error).
    """
    n = c.shape[0]
    cx = np.empty(n)
    g = np.empty(n)
    d = np.empty(n)
    xn = np.empty(n)
    h = np.empty((n, n) if dense else (5, n))  # Cholesky factor, or the CG scratch vectors
    best_x = x.copy()
    best_err = np.inf
    prev_err = np.inf
    it = 0
    for it in range(maxiter + 1):
        _matvec(c, x, cx, dense)
        s, err = _rc_gap(x, cx, b)
        if err < best_err:
            best_err = err
            best_x[:] = x
        # Stop: converged, out of iterations, or stagnating at the rounding floor.
        if err <= tol or it == maxiter or (err < 1e-9 and err > 0.25 * prev_err):
            break
        prev_err = err
        for i in range(n):
            g[i] = cx[i] - b[i] / x[i]
        if dense:
            if not _hessian_cholesky(c, b, x, h):
                break
            _cholesky_solve(h, g, d)
        else:
            _pcg_direction(c, b, x, g, d, h)
        # Line search (inline: a compiled helper here costs 15% at n = 4): positivity guard, then
        # the full step in the quadratic region (squared Newton decrement g'd tiny, where f cannot
        # resolve the decrease in double precision), else Armijo backtracking on f.
        gd = 0.0
        for i in range(n):
            gd += g[i] * d[i]
        if not gd > 0.0:
            break
        t = 1.0
        for i in range(n):
            if d[i] > 0.0 and x[i] - t * d[i] <= 0.0:
                t = 0.99 * x[i] / d[i]
        for i in range(n):
            xn[i] = x[i] - t * d[i]
        if gd >= _FULL_STEP_DECREMENT:
            f0 = 0.5 * s
            for i in range(n):
                f0 -= b[i] * _log(x[i], dense)
            for _ in range(60):
                _matvec(c, xn, cx, dense)  # cx is scratch until the next iteration
                f1 = 0.0
                for i in range(n):
                    f1 += 0.5 * xn[i] * cx[i] - b[i] * _log(xn[i], dense)
                if f1 <= f0 - 1e-4 * t * gd:
                    break
                t *= 0.5
                for i in range(n):
                    xn[i] = x[i] - t * d[i]
            else:
                break  # no step accepted
        x[:] = xn
    return best_x, it, best_err


_newton_loop = numba.njit(cache=True)(_newton_loop_py)


def _newton_kernel_py(
    c: np.ndarray, b: np.ndarray, x: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, int, float]:
    """Damped Newton with exact (Cholesky) steps. Returns (best x, iterations, best error)."""
    return _newton_loop(c, b, x, tol, maxiter, True)


_newton_kernel = numba.njit(cache=True)(_newton_kernel_py)


def _newton_cg_kernel_py(
    c: np.ndarray, b: np.ndarray, x: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, int, float]:
    """Inexact Newton (Newton-CG steps, BLAS matvecs). Returns (best x, iterations, best error)."""
    return _newton_loop(c, b, x, tol, maxiter, False)


_newton_cg_kernel = numba.njit(cache=True)(_newton_cg_kernel_py)


def _ccd_kernel_py(
    c: np.ndarray, b: np.ndarray, x: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, int, float]:
    """Cyclical coordinate descent: exact minimization of f in one coordinate at a time."""
    n = c.shape[0]
    cx = np.empty(n)
    _matvec(c, x, cx, True)
    err = np.inf
    best_err = np.inf
    best_x = x.copy()
    sweep = 0
    for sweep in range(1, maxiter + 1):
        for i in range(n):
            a = 0.5 * (cx[i] - c[i, i] * x[i])
            xi = (np.sqrt(a * a + c[i, i] * b[i]) - a) / c[i, i]
            dx = xi - x[i]
            if dx != 0.0:
                for j in range(n):
                    cx[j] += c[j, i] * dx
                x[i] = xi
        if sweep % 16 == 0:  # refresh the running product against drift
            _matvec(c, x, cx, True)
        _, err = _rc_gap(x, cx, b)
        if err < best_err:
            best_err = err
            best_x[:] = x
        if err <= tol:
            break
    return best_x, sweep, best_err


_ccd_kernel = numba.njit(cache=True)(_ccd_kernel_py)


def _rc_error_kernel_py(
    w: np.ndarray, cov: np.ndarray, b: np.ndarray
) -> tuple[float, float]:
    """(max |w_i (S w)_i / w'S w - b_i|, rounding floor n*eps*max_i w_i(|S||w|)_i / w'S w)."""
    n = w.shape[0]
    sw = np.empty(n)
    bound = 0.0
    var = 0.0
    for i in range(n):
        acc = 0.0
        acc_abs = 0.0
        for j in range(n):
            acc += cov[i, j] * w[j]
            acc_abs += abs(cov[i, j] * w[j])
        sw[i] = acc
        var += w[i] * acc
        if abs(w[i]) * acc_abs > bound:
            bound = abs(w[i]) * acc_abs
    err = 0.0
    for i in range(n):
        e = abs(w[i] * sw[i] / var - b[i])
        if e > err:
            err = e
    return err, 4.0 * (n + 2) * 2.220446049250313e-16 * bound / var


_rc_error_kernel = numba.njit(cache=True)(_rc_error_kernel_py)


def _unscale_and_verify_py(
    x: np.ndarray, sd: np.ndarray, cov: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Weights ``w = (x / sd) / sum`` and their (error, floor); NaN weights and an infinite error
    when the solution is not strictly positive and finite."""
    n = cov.shape[0]
    w = np.empty(n)
    total = 0.0
    for i in range(n):
        w[i] = x[i] / sd[i]
        total += w[i]
    ok = total > 0.0 and np.isfinite(total)
    for i in range(n):
        w[i] /= total
        if not w[i] > 0.0:
            ok = False
    if not ok:
        w[:] = np.nan
        return w, np.inf, 0.0
    err, floor = _rc_error_kernel(w, cov, b)
    return w, err, floor


_unscale_and_verify = numba.njit(cache=True)(_unscale_and_verify_py)


def _dense_solve_kernel_py(
    cov: np.ndarray, b: np.ndarray, w0: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, int, float, float]:
    """Scale, start, Newton, unscale, normalize and verify in one compiled call.

    Returns (w, iterations, error, floor); w has NaN entries if Newton broke down.
    """
    c, sd = _scale_to_corr(cov)
    x = _initial_point(c, b, w0, sd)
    x, iters, _ = _newton_kernel(c, b, x, tol, maxiter)
    w, err, floor = _unscale_and_verify(x, sd, cov, b)
    return w, iters, err, floor


_dense_solve_kernel = numba.njit(cache=True)(_dense_solve_kernel_py)

def _cg_solve_kernel_py(
    cov: np.ndarray, b: np.ndarray, w0: np.ndarray, tol: float, maxiter: int
) -> tuple[np.ndarray, int, float, float]:
    """:func:`_dense_solve_kernel` with the Newton-CG inner solver."""
    c, sd = _scale_to_corr(cov)
    x = _initial_point(c, b, w0, sd)
    x, iters, _ = _newton_cg_kernel(c, b, x, tol, maxiter)
    w, err, floor = _unscale_and_verify(x, sd, cov, b)
    return w, iters, err, floor


_cg_solve_kernel = numba.njit(cache=True)(_cg_solve_kernel_py)


# Status codes of :func:`_checked_solve_kernel`. Any code but _OK sends the call down the general
# path of :func:`risk_budget_weights`, which raises the typed error (or repairs, or falls back)
# with the same messages as always.
_OK: int = 0
_INVALID: int = 1  # shape, non-finite entry, asymmetry, negative or all-zero budget, bad x0 or tol
_NOT_PD: int = 2  # covariance not positive definite: the general path repairs it, with a warning
_ZERO_BUDGET: int = 3  # some budget is zero: solved on the active subset by the general path
_UNSOLVED: int = 4  # dense Newton missed tol and its rounding floor: fallback in the general path


def _checked_solve_kernel_py(
    cov: np.ndarray, budget: np.ndarray, w0: np.ndarray, warm: bool, tol: float, maxiter: int
) -> tuple[int, np.ndarray]:
    """Validate and solve in one compiled call, for ``2 <= n <= DENSE_MAX_N``.

    Performs exactly the checks and arithmetic of ``check_covariance`` (finite, a positive
    variance, symmetric within ``SYMMETRY_RTOL`` then symmetrized, positive definite by a
    Cholesky factorization), ``check_budget`` (finite, ``>= 0``, positive sum, normalized), the
    ``tol`` and ``x0`` checks and the dense Newton solve of the general path, so that its weights
    are bitwise those of the general path. Returns ``(_OK, w)`` or ``(code, empty array)``.
    """
    n = cov.shape[0]
    bad = np.empty(0)
    if n < 2 or n > DENSE_MAX_N or cov.shape[1] != n or budget.shape[0] != n:
        return _INVALID, bad
    if warm and w0.shape[0] != n:
        return _INVALID, bad
    if not (tol >= 0.0 and np.isfinite(tol)):
        return _INVALID, bad
    code, asym = _matrix_status(cov, SYMMETRY_RTOL)
    if code != 0:
        return _INVALID, bad
    a = cov
    if asym > 0.0:
        a = np.empty((n, n))
        for i in range(n):
            for j in range(n):
                a[i, j] = 0.5 * (cov[i, j] + cov[j, i])
    code, _, total = _vector_status(budget, True)
    if code != 0 or not total > 0.0:
        return _INVALID, bad
    if warm:
        code, _, _ = _vector_status(w0, False)
        if code != 0:
            return _INVALID, bad
    if not _is_pd_small(a):
        return _NOT_PD, bad
    b = np.empty(n)
    for i in range(n):
        if budget[i] == 0.0:
            return _ZERO_BUDGET, bad
        b[i] = budget[i] if total == 1.0 else budget[i] / total
    w, _, err, floor = _dense_solve_kernel(a, b, w0, tol, maxiter)
    if err <= tol or err <= floor:
        return _OK, w
    return _UNSOLVED, bad


_CHECKED_SIGNATURE = numba.types.Tuple((numba.int64, numba.float64[::1]))(
    numba.float64[:, ::1],
    numba.float64[::1],
    numba.float64[::1],
    numba.boolean,
    numba.float64,
    numba.int64,
)
_checked_solve_dispatcher = numba.njit(cache=True)(_checked_solve_kernel_py)
