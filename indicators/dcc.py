"""DCC(1,1) conditional correlation (Engle 2002), second step of the two-step QML estimator.

No maintained Python library fits DCC for us: ``arch`` is univariate only and ``mgarch`` on PyPI is small,
dormant and loops in Python (too slow for monthly refits), so it is written here. The recursion

    Q_t = (1 - a - b) Qbar + a z_{t-1} z_{t-1}' + b Q_{t-1},   Q_0 = Qbar,
    R_t = diag(Q_t)^{-1/2} Q_t diag(Q_t)^{-1/2}

is linear in Q, so the whole path is computed at once with ``scipy.signal.lfilter`` over the
n(n+1)/2 distinct entries (vectorized, no Python loop over time). ``Qbar`` is the sample second
moment of the standardized residuals (correlation targeting). The correlation log-likelihood
``-1/2 sum_t (ln|R_t| + z_t' R_t^{-1} z_t - z_t'z_t)`` (the full one, not a composite likelihood) is
maximized over ``a > 0, b > 0, a + b < 1`` on the box reparametrization ``s = a + b in (0, 1)``,
``p = a / (a + b) in (0, 1)``.

The likelihood runs in one compiled (numba) pass that also returns the analytic gradient in (a, b)
(forward derivative recursions of Q, checked against finite differences) and the BHHH matrix (sum of
outer products of the per-bar scores, free in the same pass). Per bar it costs one Cholesky of Q_t,
the inverse of its factor and Q_t^{-1} (about n^3/2 multiply-adds; ``ln|R_t| = ln|Q_t| - sum ln q_ii``,
so R_t is never formed). The gradient needs Q_t^{-1} (d ln|Q| = tr(Q^{-1} dQ)), so no exact pass is
O(n^2) per bar; the saving is in the number of passes. The optimizer is a projected quasi-Newton method
whose curvature starts from BHHH and is corrected by BFGS updates; it stops on the Newton decrement
``g' H^-1 g < 1e-6`` (about 1e-3 standard errors from the optimum), so a warm-started monthly refit takes
about 5 passes (L-BFGS-B needed about 16) and a start that already passes the test (e.g. both
parameters on their bounds) takes one. L-BFGS-B remains the fallback when the Newton iterations fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.optimize import minimize
from scipy.signal import lfilter

from drb.errors import DataError

__all__ = ["DCCResult", "fit_dcc", "dcc_correlation", "dcc_step", "q_to_corr", "simulate_dcc"]

_EPS = 1e-6
_DEC_TOL = 1e-6  # Newton decrement g' H^-1 g at convergence (log-likelihood units)
_MAXITER = 50
_FACE = 1e-3  # (s, p) this close to a bound: check the grid for a better optimum
_MAX_STEP = 0.25  # longest Newton step per coordinate of (s, p)


def q_to_corr(q: np.ndarray) -> np.ndarray:
    """Normalize Q (..., n, n) to a correlation matrix (unit diagonal)."""
    d = np.sqrt(np.einsum("...ii->...i", q))
    r = q / (d[..., :, None] * d[..., None, :])
    idx = np.arange(q.shape[-1])
    r[..., idx, idx] = 1.0
    return r


def _q_path(z: np.ndarray, a: float, b: float, qbar: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Q_t for t = 0..T (T + 1 matrices; the last is the one-step-ahead Q_{T|T-1}), vectorized."""
    T, n = z.shape
    iu = np.triu_indices(n)
    zz = (z[:, iu[0]] * z[:, iu[1]])  # (T, m)
    c = (1.0 - a - b) * qbar[iu]
    x = np.empty((T + 1, zz.shape[1]))
    x[0] = q0[iu]
    x[1:] = c + a * zz
    y = lfilter([1.0], [1.0, -b], x, axis=0)
    q = np.empty((T + 1, n, n))
    q[:, iu[0], iu[1]] = y
    q[:, iu[1], iu[0]] = y
    return q


# --------------------------------------------------------------------------------------------
# Compiled kernels (numba, cache=True). Each is written as a plain Python function ``<name>_py``
# (its pure-Python twin, which tests run against the compiled version, as arch does with
# ``recursions_python``) and compiled by ``<name> = numba.njit(cache=True)(<name>_py)``. A twin
# calls the compiled versions of the kernels it uses. The score kernel and its steps are compiled
# with the same fastmath flags (``_FASTMATH``), so the twins agree to rounding, not to the bit.
# --------------------------------------------------------------------------------------------
_FASTMATH = {"reassoc", "contract", "nsz"}


def _loglik_kernel_py(z, a, b, qbar):
    """Sequential likelihood loop: Q recursion, Cholesky of R_t, log-det and quadratic form."""
    T, n = z.shape
    q = qbar.copy()
    c = (1.0 - a - b) * qbar
    L = np.zeros((n, n))
    u = np.zeros(n)
    d = np.zeros(n)
    total = 0.0
    for t in range(T):
        if t > 0:
            for i in range(n):
                zi = a * z[t - 1, i]
                for j in range(i + 1):
                    q[i, j] = c[i, j] + zi * z[t - 1, j] + b * q[i, j]
        # Cholesky of R_t = D^-1/2 Q D^-1/2 done on the fly
        for i in range(n):
            d[i] = 1.0 / np.sqrt(q[i, i])
        for i in range(n):
            for j in range(i + 1):
                rij = q[i, j] * d[i] * d[j]
                acc = rij
                for k in range(j):
                    acc -= L[i, k] * L[j, k]
                if i == j:
                    if acc <= 0.0:
                        return -np.inf
                    L[i, i] = np.sqrt(acc)
                else:
                    L[i, j] = acc / L[j, j]
        logdet = 0.0
        quad = 0.0
        zz = 0.0
        for i in range(n):
            acc = z[t, i]
            for k in range(i):
                acc -= L[i, k] * u[k]
            u[i] = acc / L[i, i]
            logdet += 2.0 * np.log(L[i, i])
            quad += u[i] * u[i]
            zz += z[t, i] * z[t, i]
        total += logdet + quad - zz
    return -0.5 * total


_loglik_kernel = numba.njit(cache=True)(_loglik_kernel_py)


def _q_advance_py(q, qa, qb, c, qbar, zprev, a, b):
    """One step of Q_t and its derivatives in (a, b) on the lower triangle, in place.

    Q_t = c + a zz' + b Q_{t-1}, dQ_t/da = zz' - Qbar + b dQ_{t-1}/da, dQ_t/db = Q_{t-1} - Qbar +
    b dQ_{t-1}/db, with zz' the outer product of the previous residuals ``zprev``.
    """
    n = q.shape[0]
    for i in range(n):
        zi = zprev[i]
        for j in range(i + 1):
            zz = zi * zprev[j]
            qprev = q[i, j]
            qa[i, j] = zz - qbar[i, j] + b * qa[i, j]
            qb[i, j] = qprev - qbar[i, j] + b * qb[i, j]
            q[i, j] = c[i, j] + a * zz + b * qprev


_q_advance = numba.njit(cache=True, fastmath=_FASTMATH)(_q_advance_py)


def _chol_logdet_py(q, L):
    """Cholesky Q = L L' (lower, row-major) in place; returns ln|Q| - sum ln q_ii (<= 0), or +inf if not PD."""
    n = q.shape[0]
    logdet = 0.0
    for i in range(n):
        for j in range(i + 1):
            acc = q[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            if i == j:
                if acc <= 0.0:
                    return np.inf
                L[i, i] = np.sqrt(acc)
                logdet += np.log(acc) - np.log(q[i, i])  # ln L_ii^2 - ln q_ii
            else:
                L[i, j] = acc / L[j, j]
    return logdet


_chol_logdet = numba.njit(cache=True, fastmath=_FASTMATH)(_chol_logdet_py)


def _score_step_py(q, qa, qb, L, LiT, y, v, w):
    """Per-bar score ``(d l_t/da, d l_t/db)`` from the Cholesky factor L of Q_t and v = L^-1 y.

    Fills LiT (``LiT[j, i] = (L^-1)[i, j]``, i >= j: row j of LiT is column j of L^-1) and
    w = L^-T v = Q_t^-1 y, then returns -1/2 [<Q^-1 - w w', dQ> - sum_i dq_ii (1 - w_i y_i) / q_ii]
    with (Q^-1)_ij = sum_{k >= i} LiT[i, k] LiT[j, k] (i >= j).
    """
    n = q.shape[0]
    for j in range(n):
        LiT[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, n):
            acc = 0.0
            for k in range(j, i):
                acc += L[i, k] * LiT[j, k]
            LiT[j, i] = -acc / L[i, i]
    for i in range(n):
        acc = 0.0
        for k in range(i, n):
            acc += LiT[i, k] * v[k]
        w[i] = acc
    sa = 0.0
    sb = 0.0
    for i in range(n):
        for j in range(i):
            acc = 0.0
            for k in range(i, n):
                acc += LiT[i, k] * LiT[j, k]
            mij = 2.0 * (acc - w[i] * w[j])
            sa += mij * qa[i, j]
            sb += mij * qb[i, j]
        acc = 0.0
        for k in range(i, n):
            acc += LiT[i, k] * LiT[i, k]
        mii = acc - w[i] * w[i] - (1.0 - w[i] * y[i]) / q[i, i]
        sa += mii * qa[i, i]
        sb += mii * qb[i, i]
    return -0.5 * sa, -0.5 * sb


_score_step = numba.njit(cache=True, fastmath=_FASTMATH)(_score_step_py)


def _loglik_score_kernel_py(z, a, b, qbar):
    """Log-likelihood, its analytic gradient in (a, b) and the outer product of the per-bar scores.

    One forward pass, about n^3/2 multiply-adds per bar (one Cholesky of Q_t, the inverse of its
    factor, and Q_t^-1 from it). Works on Q_t directly: with y_t = diag(Q_t)^{1/2} z_t,
    ln|R_t| = ln|Q_t| - sum_i ln q_ii and z_t' R_t^-1 z_t = y_t' Q_t^-1 y_t, so with w = Q_t^-1 y_t
    d l_t = -1/2 [<Q_t^-1 - w w', dQ_t> - sum_i dq_ii (1 - w_i y_i) / q_ii], where dQ_t/d(a, b)
    (zero at t = 0) are carried forward (:func:`_q_advance_py`). Returns
    ``(ll, dll/da, dll/db, Saa, Sab, Sbb)`` with ``S = sum_t s_t s_t'`` over the per-bar scores
    ``s_t = d l_t / d(a, b)`` (the BHHH information); ``ll = -inf`` when some Q_t is not positive
    definite.
    """
    T, n = z.shape
    q = qbar.copy()
    qa = np.zeros((n, n))
    qb = np.zeros((n, n))
    c = (1.0 - a - b) * qbar
    L = np.zeros((n, n))
    LiT = np.zeros((n, n))
    y = np.zeros(n)
    v = np.zeros(n)
    w = np.zeros(n)
    total = 0.0
    ga = gb = saa = sab = sbb = 0.0
    for t in range(T):
        if t > 0:
            _q_advance(q, qa, qb, c, qbar, z[t - 1], a, b)
        logdet = _chol_logdet(q, L)
        if logdet == np.inf:
            return -np.inf, 0.0, 0.0, 0.0, 0.0, 0.0
        # v = L^-1 y, y_i = sqrt(q_ii) z_i
        quad = 0.0
        zz_t = 0.0
        for i in range(n):
            y[i] = np.sqrt(q[i, i]) * z[t, i]
            acc = y[i]
            for k in range(i):
                acc -= L[i, k] * v[k]
            v[i] = acc / L[i, i]
            quad += v[i] * v[i]
            zz_t += z[t, i] * z[t, i]
        total += logdet + quad - zz_t
        sa, sb = _score_step(q, qa, qb, L, LiT, y, v, w)
        ga += sa
        gb += sb
        saa += sa * sa
        sab += sa * sb
        sbb += sb * sb
    return -0.5 * total, ga, gb, saa, sab, sbb


_loglik_score_kernel = numba.njit(cache=True, fastmath=_FASTMATH)(_loglik_score_kernel_py)


@dataclass
class DCCResult:
    """Fitted DCC(1,1).

    Attributes
    ----------
    a, b : float
        News and persistence parameters (a > 0, b > 0, a + b < 1).
    qbar : ndarray, shape (n, n)
        Target (sample second moment of the standardized residuals).
    corr : ndarray, shape (T, n, n)
        Fitted conditional correlation path R_t (uses residuals up to t - 1); computed on first
        access (a refit that only needs ``q_next`` does not pay for the T n^2 path).
    q_next : ndarray, shape (n, n)
        Q_{T|T-1}: the one-step-ahead Q after the last residual (feed it to :func:`dcc_step`).
    loglik : float
        Correlation log-likelihood at (a, b).
    converged : bool
    message : str
    residuals : ndarray, shape (T, n)
        The standardized residuals fitted (kept for ``corr``).
    """

    a: float
    b: float
    qbar: np.ndarray
    q_next: np.ndarray
    loglik: float
    converged: bool
    message: str = ""
    residuals: np.ndarray | None = field(default=None, repr=False)
    _corr: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def corr(self) -> np.ndarray:
        """Conditional correlation path R_t, shape (T, n, n) (from ``residuals``, cached)."""
        if self._corr is None:
            self._corr = dcc_correlation(self.residuals, self.a, self.b, self.qbar)
        return self._corr

    @property
    def corr_next(self) -> np.ndarray:
        """One-step-ahead correlation forecast R_{T|T-1}, shape (n, n)."""
        return q_to_corr(self.q_next)


def _q_last_py(z, a, b, qbar):
    """Q_{T|T-1} after the last residual: the recursion from Q_0 = Qbar, O(T n^2), no path stored."""
    T, n = z.shape
    q = qbar.copy()
    c = (1.0 - a - b) * qbar
    for t in range(T):
        for i in range(n):
            zi = a * z[t, i]
            for j in range(i + 1):
                q[i, j] = c[i, j] + zi * z[t, j] + b * q[i, j]
                q[j, i] = q[i, j]
    return q


_q_last = numba.njit(cache=True)(_q_last_py)


def _to_ab(u: np.ndarray) -> tuple[float, float]:
    s, p = float(u[0]), float(u[1])
    return s * p, s * (1.0 - p)


def _eval_sp(z, qbar, x):
    """Negative log-likelihood, its gradient and BHHH matrix in the box coordinates x = (s, p)."""
    s, p = float(x[0]), float(x[1])
    ll, ga, gb, saa, sab, sbb = _loglik_score_kernel(z, s * p, s * (1.0 - p), qbar)
    if not np.isfinite(ll):
        return np.inf, np.zeros(2), np.eye(2)
    # a = s p, b = s (1 - p): d(a, b)/d(s, p) = [[p, s], [1 - p, -s]]
    J = np.array([[p, s], [1.0 - p, -s]])
    g = -J.T @ np.array([ga, gb])
    B = J.T @ np.array([[saa, sab], [sab, sbb]]) @ J
    return -ll, g, B


def _newton_direction(H, g, free):
    """Newton step ``-H_FF^-1 g_F`` on the free coordinates (zero on the others), H 2 x 2 PD."""
    d = np.zeros(2)
    if free[0] and free[1]:
        det = H[0, 0] * H[1, 1] - H[0, 1] * H[1, 0]
        if det > 0:
            d[0] = -(H[1, 1] * g[0] - H[0, 1] * g[1]) / det
            d[1] = -(H[0, 0] * g[1] - H[1, 0] * g[0]) / det
            return d
        d[:] = -g / np.maximum(np.diag(H), 1e-300)  # singular curvature: diagonal step
        return d
    for i in range(2):
        if free[i]:
            d[i] = -g[i] / max(H[i, i], 1e-300)
    return d


def _newton_dcc(
    z: np.ndarray, qbar: np.ndarray, x0: np.ndarray, tol: float = _DEC_TOL, maxiter: int = _MAXITER
) -> tuple[np.ndarray, float, bool, int, str]:
    """Projected quasi-Newton on the box ``[_EPS, 1 - _EPS]^2`` of ``(s, p)``.

    The curvature starts from the BHHH matrix (outer product of the per-bar scores, free from the
    gradient pass) and is corrected by BFGS updates from the exact gradients, so steps are Newton
    steps from the first iteration and converge superlinearly. Variables on a bound whose gradient
    points out of the box are held fixed. Converged when the Newton decrement of the free variables,
    ``g' H^-1 g`` (twice the predicted log-likelihood gain, in squared standard-error units when H
    is the information), is below ``tol``; a warm start that already passes costs one pass.

    Returns ``(x, nll, converged, n_passes, message)``.
    """
    lo, hi = _EPS, 1.0 - _EPS
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    x[np.abs(x - lo) <= 1e-9 * lo] = lo  # a start from (a, b) on a bound, up to rounding
    x[np.abs(x - hi) <= 1e-12] = hi
    f, g, H = _eval_sp(z, qbar, x)
    npass = 1
    if not np.isfinite(f):
        return x, f, False, npass, "non-finite likelihood at the start"
    H = H + 1e-12 * np.trace(H) * np.eye(2)
    for _ in range(maxiter):
        free = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
        if not free.any():
            return x, f, True, npass, "both parameters on their bounds"
        d = _newton_direction(H, g, free)
        # a variable on a bound that the joint step would push out of the box is held there too
        out = free & (((x <= lo) & (d < 0)) | ((x >= hi) & (d > 0)))
        if out.any():
            free &= ~out
            if not free.any():
                return x, f, True, npass, "both parameters on their bounds"
            d = _newton_direction(H, g, free)
        dec = -float(g @ d)
        if dec < tol:
            return x, f, True, npass, f"Newton decrement {dec:.1e} < {tol:.0e}"
        if dec <= 0 or not np.isfinite(dec):
            H = np.diag(np.maximum(np.diag(H), 1e-300))  # lost curvature: restart from the diagonal
            continue
        # first trial: the Newton step, shortened to at most _MAX_STEP per coordinate and to stay in
        # the box (the first bound it meets is hit exactly); then halved until Armijo holds
        alpha = min(1.0, _MAX_STEP / float(np.max(np.abs(d))))
        for i in range(2):
            if d[i] < 0:
                alpha = min(alpha, (x[i] - lo) / -d[i])
            elif d[i] > 0:
                alpha = min(alpha, (hi - x[i]) / d[i])
        while True:
            xt = np.clip(x + alpha * d, lo, hi)
            ft, gt, Bt = _eval_sp(z, qbar, xt)
            npass += 1
            slope = float(g @ (xt - x))
            if ft <= f + 1e-4 * slope and (slope < 0 or ft < f):
                break
            alpha *= 0.5
            if alpha < 1e-12:
                return x, f, False, npass, "line search failed"
        sv, yv = xt - x, gt - g
        sy = float(sv @ yv)
        if sy > 1e-12 * float(np.sqrt((sv @ sv) * (yv @ yv))):
            Hs = H @ sv
            H = H - np.outer(Hs, Hs) / float(sv @ Hs) + np.outer(yv, yv) / sy
        else:
            H = Bt + 1e-12 * np.trace(Bt) * np.eye(2)
        x, f, g = xt, ft, gt
    return x, f, False, npass, f"no convergence in {maxiter} iterations"


def _cold_start(z: np.ndarray, qbar: np.ndarray, nll) -> tuple[tuple, np.ndarray]:
    """Newton from the two best points of a small grid, the better optimum kept.

    (a near 0 leaves b unidentified, a ridge of equal likelihood that can hold a local optimum.)
    Returns the :func:`_newton_dcc` result and its start ``(s, p)``.
    """
    grid = [(0.01, 0.97), (0.03, 0.94), (0.05, 0.90), (0.02, 0.80), (0.005, 0.99), (0.01, 0.01), (0.05, 0.5)]
    vals = [nll(np.array([ga + gb, ga / (ga + gb)])) for ga, gb in grid]
    best = None
    for k in np.argsort(vals)[:2]:
        a0, b0 = grid[int(k)]
        u0s = np.array([a0 + b0, a0 / (a0 + b0)])
        cand = _newton_dcc(z, qbar, u0s)
        if best is None or (cand[2], -cand[1]) > (best[2], -best[1]):
            best, u0 = cand, u0s
    return best, u0


def fit_dcc(
    residuals: np.ndarray,
    start: tuple[float, float] | None = None,
    *,
    fallback: tuple[float, float] = (0.02, 0.95),
) -> DCCResult:
    """Fit DCC(1,1) by QML on standardized residuals (second step of Engle's two-step estimator).

    Parameters
    ----------
    residuals : array_like, shape (T, n)
        Standardized residuals e_t of the univariate (EGARCH) fits, finite, T > n.
    start : (a, b), optional
        Warm start; otherwise the best of a small grid.
    fallback : (a, b)
        Parameters returned (``converged=False``) when the optimizer fails and no ``start`` is given.

    Returns
    -------
    DCCResult
        Never raises for a numerical failure (``converged=False`` and ``start`` or ``fallback``).
    """
    z = np.asarray(residuals, dtype=float)
    if z.ndim != 2 or z.shape[0] <= z.shape[1] or not np.all(np.isfinite(z)):
        raise DataError(f"fit_dcc: need finite residuals of shape (T, n) with T > n, got {z.shape}")
    T = z.shape[0]
    qbar = z.T @ z / T

    def nll(u):
        a, b = _to_ab(u)
        ll = _loglik_kernel(z, a, b, qbar)
        return -ll / T if np.isfinite(ll) else 1e10

    def nll_grad(u):
        f, g, _ = _eval_sp(z, qbar, u)
        return (f / T, g / T) if np.isfinite(f) else (1e10, np.zeros(2))

    if start is not None and start[0] > 0 and start[1] > 0 and start[0] + start[1] < 1:
        a0, b0 = start
        u0 = np.array([a0 + b0, a0 / (a0 + b0)])
        u, f, ok, _, msg = _newton_dcc(z, qbar, u0)
    else:
        (u, f, ok, _, msg), u0 = _cold_start(z, qbar, nll)
    if ok and (u[0] <= _FACE or u[1] <= _FACE or u[1] >= 1.0 - _FACE):
        # an optimum on a face of the box (a or b near 0) can be a local one beside a persistent
        # optimum (the likelihood is bimodal in b): rerun from the best grid point that beats it
        grid = [(0.01, 0.97), (0.03, 0.94), (0.05, 0.90), (0.02, 0.80), (0.005, 0.99)]
        vals = [nll(np.array([ga + gb, ga / (ga + gb)])) * T for ga, gb in grid]
        k = int(np.argmin(vals))
        if vals[k] < f:
            ga, gb = grid[k]
            cand = _newton_dcc(z, qbar, np.array([ga + gb, ga / (ga + gb)]))
            if cand[2] and cand[1] < f:
                u, f, ok, _, msg = cand
    f_at_u = True  # f is the negative log-likelihood at u
    if not ok:
        f_at_u = False
        # fallback: L-BFGS-B from the better of the start and where the Newton iterations stopped
        ustart = u if np.isfinite(f) else u0
        bounds = [(_EPS, 1.0 - _EPS), (_EPS, 1.0 - _EPS)]
        try:
            res = minimize(nll_grad, ustart, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"ftol": 1e-13, "gtol": 1e-9})
            ok = bool(np.all(np.isfinite(res.x))) and res.fun < 1e9
            u, msg = res.x, f"{msg}; L-BFGS-B: {res.message}"
        except (ValueError, np.linalg.LinAlgError) as exc:
            ok, u, msg = False, u0, f"{msg}; L-BFGS-B {type(exc).__name__}: {exc}"
    if ok:
        a, b = _to_ab(u)
    else:
        a, b = start if start is not None else fallback
    ll = -f if ok and np.isfinite(f) and f_at_u else _loglik_kernel(z, a, b, qbar)
    return DCCResult(float(a), float(b), qbar, _q_last(z, a, b, qbar), float(ll), ok, msg, residuals=z)


def dcc_correlation(
    residuals: np.ndarray,
    a: float,
    b: float,
    qbar: np.ndarray | None = None,
    q0: np.ndarray | None = None,
    *,
    include_forecast: bool = False,
) -> np.ndarray:
    """Filter DCC correlations forward with given parameters (vectorized).

    Parameters
    ----------
    residuals : array_like, shape (T, n)
        Standardized residuals.
    a, b : float
        DCC parameters.
    qbar : ndarray (n, n), optional
        Target; default the sample second moment of ``residuals``.
    q0 : ndarray (n, n), optional
        Q for the first row; default ``qbar``.
    include_forecast : bool
        Append R_{T|T-1} (shape becomes (T + 1, n, n)).

    Returns
    -------
    ndarray, shape (T, n, n) or (T + 1, n, n)
        R_t, conditional on residuals up to t - 1.
    """
    z = np.asarray(residuals, dtype=float)
    if not (a >= 0 and b >= 0 and a + b < 1):
        raise DataError(f"dcc_correlation: need a, b >= 0 and a + b < 1, got a={a}, b={b}")
    qbar = z.T @ z / z.shape[0] if qbar is None else np.asarray(qbar, dtype=float)
    q0 = qbar if q0 is None else np.asarray(q0, dtype=float)
    q = _q_path(z, a, b, qbar, q0)
    r = q_to_corr(q)
    return r if include_forecast else r[:-1]


def dcc_step(q: np.ndarray, z: np.ndarray, a: float, b: float, qbar: np.ndarray) -> np.ndarray:
    """O(n^2) online step: Q_{t+1} = (1 - a - b) Qbar + a z_t z_t' + b Q_t."""
    return (1.0 - a - b) * qbar + a * np.outer(z, z) + b * q


def simulate_dcc(
    a: float, b: float, T: int, n: int, seed: int, rho: float = 0.4
) -> np.ndarray:
    """Standardized residuals from a DCC(1,1) with known parameters (for tests and benchmarks).

    ``Qbar`` is the equicorrelation matrix with off-diagonal ``rho``; ``Q_0 = Qbar``;
    ``z_t = chol(R_t) e_t`` with ``e_t`` i.i.d. standard normal (``numpy`` generator ``seed``).

    Returns
    -------
    ndarray, shape (T, n)
    """
    if not (a > 0 and b > 0 and a + b < 1):
        raise DataError(f"simulate_dcc: need a, b > 0 and a + b < 1, got a={a}, b={b}")
    rng = np.random.default_rng(seed)
    qbar = np.full((n, n), rho) + (1 - rho) * np.eye(n)
    q, z = qbar.copy(), np.empty((T, n))
    for t in range(T):
        z[t] = np.linalg.cholesky(q_to_corr(q)) @ rng.standard_normal(n)
        q = (1 - a - b) * qbar + a * np.outer(z[t], z[t]) + b * q
    return z
