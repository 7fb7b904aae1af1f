"""The polish of factor risk parity: a compiled Gauss-Newton active-set method on the simplex.

:func:`strategies.core.weights.factor_risk_parity_weights` minimizes the squared gap
``F(w) = sum_j (y_j (S_f y)_j / y'S_f y - b_j)^2``, ``y = B'w``, over long-only fully invested
weights. After the compiled descent of a cloud of starts, the best start is polished here (scipy's
SLSQP did it before: 0.66 ms a solve, mostly scipy's own per-iteration overhead; this one 0.03 ms,
and on the 910 monthly problems of 10 embedded-market seeds never worse than SLSQP's end point by
more than 1e-16 in ``F``, better in 4; ``benchmarks/README.md``, "Backtests").

Each iteration linearizes the residuals, ``r + J d``, and solves the equality-constrained
Gauss-Newton problem ``min |r + J d|^2 + mu |d|^2`` subject to ``sum d = 0`` on the coordinates that
are not held at zero (a KKT system; ``mu`` is a 1e-12 relative damping, because ``J`` has rank at
most k - 1 and the exact solutions, when they exist, form a manifold: the damped step is the
shortest way onto it). A coordinate at zero that the step would make negative is held; a held one
whose bound multiplier turns negative is released; then a step to the first bound the direction
meets (that coordinate joins the held ones) or an Armijo backtracking step. Stops when ``F`` is
below 1e-32, when a full step gains less than 1e-16 (SLSQP's ``ftol`` here before), or after
``max_iter`` iterations. Each kernel has a pure-Python twin of the same source
(``tests/test_frp_polish.py``, which also checks the end points against SLSQP's).
"""

from __future__ import annotations

import numba
import numpy as np


def _frp_residual_py(w, bmat, sf, fb, r, jac):
    """Budget residuals ``r_j = y_j (S_f y)_j / y'S_f y - b_j`` (into ``r``, (k,)) and their Jacobian
    with respect to the weights (into ``jac``, (k, n)) at ``w`` (n,), ``y = B'w``; returns the
    squared gap ``sum_j r_j^2``."""
    n, k = bmat.shape
    y = np.zeros(k)
    for j in range(k):
        for i in range(n):
            y[j] += bmat[i, j] * w[i]
    u = np.zeros(k)
    for j in range(k):
        for q in range(k):
            u[j] += sf[j, q] * y[q]
    s = 0.0
    for j in range(k):
        s += y[j] * u[j]
    f = 0.0
    for j in range(k):
        r[j] = y[j] * u[j] / s - fb[j]
        f += r[j] * r[j]
    # dc_j/dy_m = (delta_jm u_j + y_j S_jm) / s - 2 y_j u_j u_m / s^2 ; jac = (dc/dy) B'
    for j in range(k):
        for i in range(n):
            jac[j, i] = 0.0
        cj = y[j] * u[j] / s
        for m in range(k):
            d = y[j] * sf[j, m] / s - 2.0 * cj * u[m] / s
            if m == j:
                d += u[j] / s
            for i in range(n):
                jac[j, i] += d * bmat[i, m]
    return f


_frp_residual = numba.njit(cache=True)(_frp_residual_py)


def _solve_small_py(a, b):
    """Solve ``a x = b`` for a small square ``a`` (overwritten), ``x`` into ``b``: Gaussian
    elimination with partial pivoting (the KKT matrices below are symmetric but indefinite).
    False when a pivot is exactly zero."""
    m = a.shape[0]
    for c in range(m):
        p = c
        for i in range(c + 1, m):
            if abs(a[i, c]) > abs(a[p, c]):
                p = i
        if a[p, c] == 0.0:
            return False
        if p != c:
            for j in range(m):
                a[c, j], a[p, j] = a[p, j], a[c, j]
            b[c], b[p] = b[p], b[c]
        for i in range(c + 1, m):
            f = a[i, c] / a[c, c]
            for j in range(c, m):
                a[i, j] -= f * a[c, j]
            b[i] -= f * b[c]
    for i in range(m - 1, -1, -1):
        acc = b[i]
        for j in range(i + 1, m):
            acc -= a[i, j] * b[j]
        b[i] = acc / a[i, i]
    return True


_solve_small = numba.njit(cache=True)(_solve_small_py)


def _frp_kkt_py(jac, g, idx, m, a, rhs):
    """The damped Gauss-Newton step on the free coordinates ``idx[:m]`` under ``sum d = 0``: solves
    ``[J'J + mu I, 1; 1', 0] [d; nu] = [-g; 0]`` (``a``, (n+1, n+1), scratch), ``d`` into
    ``rhs[:m]`` and the multiplier ``nu`` into ``rhs[m]``. False when the system is singular."""
    k = jac.shape[0]
    tr = 0.0
    for p in range(m + 1):
        for q in range(m + 1):
            a[p, q] = 0.0
    for p in range(m):
        for q in range(m):
            acc = 0.0
            for j in range(k):
                acc += jac[j, idx[p]] * jac[j, idx[q]]
            a[p, q] = acc
        tr += a[p, p]
        a[p, m] = 1.0
        a[m, p] = 1.0
        rhs[p] = -g[idx[p]]
    rhs[m] = 0.0
    mu = 1e-12 * tr / m + 1e-300
    for p in range(m):
        a[p, p] += mu
    return _solve_small(a[: m + 1, : m + 1], rhs[: m + 1])


_frp_kkt = numba.njit(cache=True)(_frp_kkt_py)


def _frp_direction_py(w, jac, g, active, idx, a, rhs, jd):
    """The step of one iteration and its active set (``active``, (n,), updated in place): the KKT
    step of :func:`_frp_kkt` on the coordinates not held at zero, holding a zero coordinate the
    step would make negative and releasing a held one whose bound multiplier is negative, until
    neither happens. Returns the number ``m`` of free coordinates (``idx[:m]``, step in
    ``rhs[:m]``), or 0 when there is no step (a vertex, or a singular system)."""
    k, n = jac.shape
    for _ in range(2 * n + 2):
        m = 0
        for i in range(n):
            if not active[i]:
                idx[m] = i
                m += 1
        if m <= 1 or not _frp_kkt(jac, g, idx, m, a, rhs):
            return 0
        nu = rhs[m]
        hold = -1  # a coordinate at zero that the step would make negative
        for p in range(m):
            if w[idx[p]] <= 0.0 and rhs[p] < 0.0:
                hold = idx[p]
                break
        if hold >= 0:
            active[hold] = True
            continue
        for j in range(k):  # the model's gradient change J'J d, through J d
            jd[j] = 0.0
            for p in range(m):
                jd[j] += jac[j, idx[p]] * rhs[p]
        rel = -1  # a held coordinate the model would fill: its bound multiplier is negative
        best = -1e-14 * (abs(nu) + 1e-300)
        for i in range(n):
            if active[i]:
                q = g[i]
                for j in range(k):
                    q += jac[j, i] * jd[j]
                if q + nu < best:
                    best = q + nu
                    rel = i
        if rel < 0:
            return m
        active[rel] = False
    return 0


_frp_direction = numba.njit(cache=True)(_frp_direction_py)


def _frp_line_step_py(w, d, idx, m, f, slope, bmat, sf, fb, wn, rn, jn):
    """From ``w`` along ``d`` (on ``idx[:m]``): the step to the first bound the direction meets (that
    coordinate set to 0), or the full step, halved until the squared gap falls by the Armijo
    fraction of ``slope`` (its directional derivative). The new point goes to ``wn`` with its
    residuals and Jacobian (``rn``, ``jn``). Returns ``(gap, t, blocking coordinate or -1)``;
    ``t = 0`` when no step was accepted."""
    n = w.shape[0]
    tmax = 1.0
    block = -1
    for p in range(m):
        if d[p] < 0.0 and w[idx[p]] + d[p] < 0.0:
            t = -w[idx[p]] / d[p]
            if t < tmax:
                tmax = t
                block = idx[p]
    t = tmax
    for _ in range(40):
        for i in range(n):
            wn[i] = w[i]
        for p in range(m):
            wn[idx[p]] = w[idx[p]] + t * d[p]
        if block >= 0 and t == tmax:
            wn[block] = 0.0
        tot = 0.0
        for i in range(n):
            if wn[i] < 0.0:
                wn[i] = 0.0
            tot += wn[i]
        for i in range(n):
            wn[i] /= tot
        fn = _frp_residual(wn, bmat, sf, fb, rn, jn)
        if fn <= f + 2e-4 * t * slope:
            return fn, t, (block if t == tmax else -1)
        t *= 0.5
    return f, 0.0, -1


_frp_line_step = numba.njit(cache=True)(_frp_line_step_py)


def _frp_polish_py(w0, bmat, sf, fb, max_iter):
    """Minimize the squared factor-budget gap over the simplex from ``w0`` (n,): see the module
    docstring. Returns the weights (n,), non-negative, summing to 1."""
    n, k = bmat.shape
    w = w0.copy()
    r = np.empty(k)
    jac = np.empty((k, n))
    rn = np.empty(k)
    jn = np.empty((k, n))
    f = _frp_residual(w, bmat, sf, fb, r, jac)
    active = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        active[i] = w[i] <= 0.0
    wn = np.empty(n)
    g = np.empty(n)
    idx = np.empty(n, dtype=np.int64)
    a = np.empty((n + 1, n + 1))
    rhs = np.empty(n + 1)
    jd = np.empty(k)
    for _ in range(max_iter):
        if f < 1e-32:
            break
        for i in range(n):
            g[i] = 0.0
            for j in range(k):
                g[i] += jac[j, i] * r[j]
        m = _frp_direction(w, jac, g, active, idx, a, rhs, jd)
        if m == 0:
            break
        slope = 0.0
        for p in range(m):
            slope += g[idx[p]] * rhs[p]
        if not slope < 0.0:
            break
        fn, t, block = _frp_line_step(w, rhs, idx, m, f, slope, bmat, sf, fb, wn, rn, jn)
        if t == 0.0:
            break
        hit = block >= 0 and wn[block] == 0.0
        if hit:
            active[block] = True
        df = f - fn
        for i in range(n):
            w[i] = wn[i]
        for j in range(k):
            r[j] = rn[j]
            for i in range(n):
                jac[j, i] = jn[j, i]
        f = fn
        if df < 1e-16 and not hit and t == 1.0:
            break
    return w


_frp_polish = numba.njit(cache=True)(_frp_polish_py)
