"""Turnover measurement and the exact turnover-cap projection (DESIGN section 3, "Execution").

One-way turnover of a rebalance is ``0.5 * sum_i |dw_i|`` against the drifted holdings just before
it. :func:`project_turnover` caps a desired change ``d0 = target - current`` by the *Euclidean
projection* onto the convex set::

    K = { d : 0.5 * sum_i |d_i| <= total_cap,  |d_i| <= asset_cap,  sum_i d_i = 0 }
        (intersected with { current + d >= 0 } when long_only)

i.e. the nearest admissible trade, not clipping and rescaling.

Algorithm (exact). With multipliers ``lam >= 0`` for the turnover constraint and ``mu`` for the
budget constraint, the KKT conditions give, coordinate-wise,
``d_i(mu, lam) = clip(soft(d0_i - mu, lam), lo_i, hi_i)`` (soft = soft-thresholding, the prox of
``lam |.|``; clip to ``[lo_i, hi_i] = [max(-asset_cap, -current_i), asset_cap]``; for a 1-D
interval containing 0 the prox of the sum is the composition). For fixed ``lam``,
``sum_i d_i(mu, lam)`` is non-increasing and piecewise linear in ``mu``; its root is found
exactly on the sorted breakpoints and one linear interpolation. ``lam = 0`` when the
turnover cap is slack; otherwise ``0.5 sum |d_i|`` is non-increasing in ``lam`` and ``lam`` is
located by bracketing with regula falsi (Illinois) on this piecewise-linear function, ending on
the feasible side of the bracket, so the caps are never exceeded.

Long-only. Without ``long_only`` the projection need not only shrink moves: the budget
multiplier ``mu`` shifts every coordinate, so a small sell can be enlarged beyond the current
holding and create a short (e.g. a full exit of a 2% position next to heavily capped buys; see
the tests). ``long_only=True`` (default) adds ``current + d >= 0`` to ``K``; the result is still
the exact projection onto the (smaller) convex set, and when the target is itself admissible it is
returned unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drb.errors import DataError
from drb.search import sign_change
from strategies.core.validation import check_vector

__all__ = ["one_way_turnover", "project_turnover"]


def one_way_turnover(current: Any, new: Any) -> float:
    """One-way turnover ``0.5 * sum_i |new_i - current_i|`` (fraction of capital).

    Parameters
    ----------
    current, new : array_like, shape (n,)
        Weights before and after the rebalance.

    Returns
    -------
    float
    """
    c = check_vector(current, None, "current")
    w = check_vector(new, c.shape[0], "new")
    return 0.5 * float(np.abs(w - c).sum())


def _d_of(z: np.ndarray, lam: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip(np.sign(z) * np.maximum(np.abs(z) - lam, 0.0), lo, hi)


def _solve_mu(d0: np.ndarray, lam: float, lo: np.ndarray, hi: np.ndarray) -> float:
    """Exact root in mu of g(mu) = sum_i clip(soft(d0_i - mu, lam), lo_i, hi_i) = 0."""
    # Breakpoints where some coordinate changes regime (finite bounds only).
    knots = [d0 + lam, d0 - lam]
    fin_lo, fin_hi = np.isfinite(lo), np.isfinite(hi)
    knots.append((d0 - lam - lo)[fin_lo])  # d0 - mu + lam = lo   -> mu = d0 + lam - lo
    knots.append((d0 + lam - lo)[fin_lo])
    knots.append((d0 - lam - hi)[fin_hi])
    knots.append((d0 + lam - hi)[fin_hi])
    bp = np.unique(np.concatenate(knots))

    def g(mu: float) -> float:
        return float(_d_of(d0 - mu, lam, lo, hi).sum())

    # g is non-increasing; g(bp[0]) >= 0 >= g(bp[-1]) because beyond the outer knots every
    # coordinate sits at 0 or at a bound with lo <= 0 <= hi.
    left, right = 0, bp.size - 1
    if g(bp[left]) <= 0.0:
        return float(bp[left])
    if g(bp[right]) >= 0.0:
        return float(bp[right])
    left, right = sign_change(g, bp)
    a, z = float(bp[left]), float(bp[right])
    ga, gz = g(a), g(z)
    if ga == gz:
        return a
    return a + (z - a) * ga / (ga - gz)  # g is linear on [a, z]


def _project(
    d0: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float
) -> np.ndarray:
    """Projection of d0 onto {sum d = 0, lo <= d <= hi, sum |d| <= total} (total may be inf)."""
    mu = _solve_mu(d0, 0.0, lo, hi)
    d = _d_of(d0 - mu, 0.0, lo, hi)
    if not np.isfinite(total) or np.abs(d).sum() <= total:
        return d

    def excess(lam: float) -> tuple[float, np.ndarray]:
        m = _solve_mu(d0, lam, lo, hi)
        dd = _d_of(d0 - m, lam, lo, hi)
        return float(np.abs(dd).sum()) - total, dd

    a, fa = 0.0, float(np.abs(d).sum()) - total  # fa > 0
    z = float(np.max(np.abs(d0))) * 2.0 + 1.0  # every soft-thresholded move vanishes
    fz, dz = excess(z)
    side = 0
    for _ in range(200):
        if fz == 0.0 or z - a <= 1e-17 * max(1.0, z):
            break
        # Illinois regula falsi on the piecewise-linear, non-increasing excess(lam).
        denom = fz - fa
        m = z - fz * (z - a) / denom if denom != 0.0 else 0.5 * (a + z)
        if not (a < m < z):
            m = 0.5 * (a + z)
        fm, dm = excess(m)
        if fm > 0.0:
            a, fa = m, fm
            if side == -1:
                fz *= 0.5
            side = -1
        else:
            z, fz, dz = m, fm, dm
            if side == 1:
                fa *= 0.5
            side = 1
        if fm == 0.0:
            break
    return dz


def project_turnover(
    current: Any,
    target: Any,
    total_cap: float | None = 0.15,
    asset_cap: float | None = 0.08,
    *,
    long_only: bool = True,
) -> np.ndarray:
    """Cap a rebalance by the exact Euclidean projection of the desired change.

    Parameters
    ----------
    current : array_like, shape (n,)
        Drifted weights held just before the rebalance (fractions of capital).
    target : array_like, shape (n,)
        Desired weights.
    total_cap : float or None
        Cap on one-way turnover ``0.5 * sum |d_i|`` (default 0.15); None disables it.
    asset_cap : float or None
        Cap on each ``|d_i|`` (default 0.08); None disables it.
    long_only : bool
        Also require ``current + d >= 0`` (needs ``current >= 0``). See the module docstring for
        why the plain projection can otherwise create shorts.

    Returns
    -------
    ndarray, shape (n,)
        ``current + d*`` with ``d* = argmin ||d - (target - current)||`` over the admissible set.
        ``sum(d*) = 0``: the result has the same total as ``current``. When ``target - current`` is
        already admissible the result equals ``target``.
    """
    cur = check_vector(current, None, "current")
    tgt = check_vector(target, cur.shape[0], "target")
    for name, cap in (("total_cap", total_cap), ("asset_cap", asset_cap)):
        if cap is not None and not (cap >= 0.0 and np.isfinite(cap)):
            raise DataError(f"{name}: expected a finite value >= 0 or None, got {cap!r}")
    n = cur.shape[0]
    a = np.inf if asset_cap is None else float(asset_cap)
    lo = np.full(n, -a)
    hi = np.full(n, a)
    if long_only:
        if (cur < -1e-12).any():
            bad = int(np.flatnonzero(cur < -1e-12)[0])
            raise DataError(f"current: negative weight at position {bad} with long_only=True")
        lo = np.maximum(lo, -np.maximum(cur, 0.0))
    total = np.inf if total_cap is None else 2.0 * float(total_cap)
    if total == 0.0 or a == 0.0:
        return cur.copy()  # no trade is admissible
    d0 = tgt - cur
    if np.abs(d0.sum()) <= 1e-15 * max(1.0, np.abs(d0).max()) and (d0 >= lo).all() and (
        d0 <= hi
    ).all() and np.abs(d0).sum() <= total:
        return tgt.copy()
    d = _project(d0, lo, hi, total)
    return cur + d
