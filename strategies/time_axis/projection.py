"""Risk budgeting with less information: the projection corollary (Corollary 21)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from drb.errors import DataError, SolverError
from strategies.time_axis.simulation import (
    MCTimeRiskResult,
    PolicyState,
    PriceModel,
    simulate_time_risk,
)

ArrayLike = Any

# ---------------------------------------------------------------------------------------------
# (e) risk budgeting with less information: the projection corollary (Corollary 21)
# ---------------------------------------------------------------------------------------------


def batch_risk_budget_positions(
    cov: ArrayLike, budgets: ArrayLike, *, tol: float = 1e-12, max_iter: int = 100
) -> np.ndarray:
    """Solve ``theta_i (Sigma theta)_i = b_i``, ``theta > 0``, for a batch of problems.

    Newton's method with backtracking on the strictly convex
    ``f(theta) = 0.5 theta' Sigma theta - sum_i b_i log(theta_i)`` (the source's eq. 16 / Theorem 19 in
    one period); the stationary point meets the budgets exactly, without normalization.

    Parameters
    ----------
    cov : array_like, shape (P, n, n)
        Positive definite covariances.
    budgets : array_like, shape (P, n)
        Positive budgets (units of ``theta' Sigma theta``).
    tol : float
        Stop when ``max |theta_i (Sigma theta)_i / b_i - 1| <= tol``.
    max_iter : int

    Returns
    -------
    ndarray, shape (P, n)

    Raises
    ------
    SolverError
        When some problem does not converge.
    """
    s = np.asarray(cov, dtype=float)
    b = np.asarray(budgets, dtype=float)
    if s.ndim != 3 or b.shape != s.shape[:2] or s.shape[1] != s.shape[2]:
        raise DataError(f"shapes: cov {s.shape}, budgets {b.shape}")
    if np.any(~np.isfinite(b)) or np.any(b <= 0) or np.any(~np.isfinite(s)):
        raise DataError("budgets must be positive and finite; cov finite")
    diag = np.einsum("pii->pi", s)
    if np.any(diag <= 0):
        raise DataError("covariances need positive variances")
    theta = np.sqrt(b / diag)  # exact when Sigma is diagonal
    # rescale each start so that theta' S theta = sum b (the optimal value of the quadratic term)
    q = np.einsum("pi,pij,pj->p", theta, s, theta)
    theta *= np.sqrt(b.sum(axis=1) / q)[:, None]

    def obj(th: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("pi,pij,pj->p", th, s, th) - np.sum(b * np.log(th), axis=1)

    for _ in range(max_iter):
        st = np.einsum("pij,pj->pi", s, theta)
        err = np.max(np.abs(theta * st / b - 1.0), axis=1)
        if np.all(err <= tol):
            return theta
        grad = st - b / theta
        hess = s + np.einsum("pi,ij->pij", b / theta**2, np.eye(s.shape[1]))
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        f0 = obj(theta)
        slope = np.sum(grad * step, axis=1)
        alpha = np.ones(theta.shape[0])
        for _ in range(60):
            cand = theta + alpha[:, None] * step
            ok = np.all(cand > 0, axis=1)
            fc = np.where(ok, obj(np.where(ok[:, None], cand, theta)), np.inf)
            # slack of a few ulps of f: near the optimum the decrease is below round-off
            good = ok & (fc <= f0 + 1e-4 * alpha * slope + 64 * np.finfo(float).eps * np.abs(f0))
            if np.all(good):
                break
            alpha = np.where(good, alpha, 0.5 * alpha)
        theta = theta + alpha[:, None] * step
    st = np.einsum("pij,pj->pi", s, theta)
    err = np.max(np.abs(theta * st / b - 1.0))
    if err <= max(tol, 1e-9):
        return theta
    raise SolverError(f"risk budgeting Newton did not converge (max relative error {err:.3g})")


def risk_budget_positions(cov: ArrayLike, budgets: ArrayLike, *, tol: float = 1e-12) -> np.ndarray:
    """Single problem version of :func:`batch_risk_budget_positions`: shapes (n, n), (n,) -> (n,)."""
    s = np.asarray(cov, dtype=float)
    b = np.asarray(budgets, dtype=float)
    return batch_risk_budget_positions(s[None], b[None], tol=tol)[0]


Budget = Callable[[float, np.ndarray, PolicyState], np.ndarray]
"""``budget(t, prices (P, n), state) -> b_t (P, n)``: positive risk budget density per year."""


@dataclass(frozen=True)
class ProjectionDemo:
    """Result of :func:`projection_demo` (in-sample: all three policies on the same paths).

    Attributes
    ----------
    budget : ndarray, shape (K, n)
        ``E[int_bucket b_t dt]`` per bucket and asset.
    budget_total_se : ndarray, shape (n,)
        Standard error of ``budget.sum(axis=0)`` (a mean over the simulated paths).
    full, deterministic, buy_and_hold : MCTimeRiskResult
        Contributions of the full-information policy (``theta_t m_t = b_t`` pathwise), of the
        deterministic time-varying projection (``theta_t`` solves the budgeting problem with
        ``E[Sigma_t]``, ``E[b_t]``) and of the buy-and-hold projection (one constant ``theta`` solving
        ``theta_i (V theta)_i = E[int b_i dt]`` with ``V = E[int Sigma_t dt] = Cov(S_T)``).
    bh_shares : ndarray, shape (n,)
        The buy-and-hold projection ``theta``.
    objective : dict[str, float]
        ``0.5 E[int theta' Sigma theta dt] - E[int sum_i b_i log theta_i dt]`` for each policy; the
        ordering ``full <= deterministic <= buy_and_hold`` follows from the nested admissible sets.
    pathwise_budget_error : dict[str, float]
        Mean over paths of ``sum_{k,i} |contribution - budget|`` relative to the mean total budget.
    """

    budget: np.ndarray
    budget_total_se: np.ndarray
    full: MCTimeRiskResult
    deterministic: MCTimeRiskResult
    buy_and_hold: MCTimeRiskResult
    bh_shares: np.ndarray
    objective: dict[str, float]
    pathwise_budget_error: dict[str, float]


def projection_demo(
    model: PriceModel,
    budget: Budget,
    *,
    horizon: float = 1.0,
    n_steps: int = 100,
    n_paths: int = 2000,
    n_buckets: int = 4,
    seed: int = 0,
) -> ProjectionDemo:
    """Corollary 21 on simulated data: a buy-and-hold policy as the projection of a time-varying budget.

    Three admissible sets are nested: adapted policies (full information), deterministic functions of
    time, constants (buy and hold). Minimizing ``0.5 Var(X_T) - E int b' log(theta) dt`` over each
    (martingale prices: ``Var(X_T) = E int theta' Sigma theta dt``) gives the policy whose risk
    distribution is the projection of ``b`` onto the corresponding sigma-algebra:

    * full information: ``theta_{i,t} (Sigma_t theta_t)_i = b_{i,t}`` on every path and step;
    * deterministic: ``theta_{i,t} (E[Sigma_t] theta_t)_i = E[b_{i,t}]`` (expected contributions per
      step equal the expected budget, but not pathwise);
    * buy and hold: ``theta_i (V theta)_i = E[int b_i dt]`` with ``V = E[int Sigma_t dt] = Cov(S_T)``
      (the single-period risk-budgeting problem; only the total per asset matches).

    Expectations are cross-sectional means over the simulated paths (the same paths for the three
    policies: the paths depend on the seed only), so the identities above hold exactly in sample.

    Parameters
    ----------
    model : GBM or SABR
        Zero-drift price dynamics (the reference measure).
    budget : callable
        ``budget(t, prices, state) -> (P, n)`` positive budget density (price^2 per year).
    horizon, n_steps, n_paths, n_buckets, seed
        As in :func:`simulate_time_risk`.

    Returns
    -------
    ProjectionDemo
    """
    kw = dict(horizon=horizon, n_steps=n_steps, n_paths=n_paths, n_buckets=n_buckets, seed=seed)
    dt = horizon / n_steps
    edges = np.linspace(0.0, horizon, n_buckets + 1)
    n = model.n
    logs: dict[str, np.ndarray] = {}
    budget_bucket = np.zeros((n_paths, n_buckets, n))
    v_int = np.zeros((n, n))
    b_int = np.zeros(n)

    def bucket(t: float) -> int:
        return min(int(np.searchsorted(edges, t + 1e-12 * dt, side="right")) - 1, n_buckets - 1)

    def full(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        nonlocal v_int, b_int
        b = np.asarray(budget(t, prices, state), dtype=float)
        theta = batch_risk_budget_positions(state.price_cov, b)
        budget_bucket[:, bucket(t), :] += b * dt
        v_int = v_int + state.price_cov.mean(axis=0) * dt
        b_int = b_int + b.mean(axis=0) * dt
        logs["full"] = logs.get("full", 0.0) + np.sum(b * np.log(theta), axis=1) * dt
        return theta

    def deterministic(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        b = np.asarray(budget(t, prices, state), dtype=float)
        theta = risk_budget_positions(state.price_cov.mean(axis=0), b.mean(axis=0))
        logs["deterministic"] = logs.get("deterministic", 0.0) + np.sum(b * np.log(theta), axis=1) * dt
        return np.broadcast_to(theta, prices.shape).copy()

    res_full = simulate_time_risk(full, model, **kw)
    res_det = simulate_time_risk(deterministic, model, **kw)
    theta_bh = risk_budget_positions(v_int, b_int)

    def bh(t: float, prices: np.ndarray, state: PolicyState) -> np.ndarray:
        b = np.asarray(budget(t, prices, state), dtype=float)
        logs["buy_and_hold"] = logs.get("buy_and_hold", 0.0) + np.sum(b * np.log(theta_bh), axis=1) * dt
        return np.broadcast_to(theta_bh, prices.shape).copy()

    res_bh = simulate_time_risk(bh, model, **kw)
    results = {"full": res_full, "deterministic": res_det, "buy_and_hold": res_bh}
    return _projection_summary(results, logs, budget_bucket, theta_bh)


def _projection_summary(
    results: dict[str, MCTimeRiskResult],
    logs: dict[str, np.ndarray],
    budget_bucket: np.ndarray,
    theta_bh: np.ndarray,
) -> ProjectionDemo:
    """Objectives and budget-tracking errors of the three policies of :func:`projection_demo`."""
    res_full, res_det, res_bh = results["full"], results["deterministic"], results["buy_and_hold"]
    n_paths = budget_bucket.shape[0]
    objective = {
        name: float(0.5 * r.contributions.sum() - np.mean(logs[name])) for name, r in results.items()
    }
    mean_budget = budget_bucket.mean(axis=0)
    total_budget = float(mean_budget.sum())
    # pathwise errors need per-path, per-asset contributions: compare bucket totals over assets
    path_budget = budget_bucket.sum(axis=2)
    pathwise = {
        name: float(np.mean(np.sum(np.abs(r.path_bucket_totals - path_budget), axis=1)) / total_budget)
        for name, r in results.items()
    }
    total_se = budget_bucket.sum(axis=1).std(axis=0, ddof=1) / np.sqrt(n_paths)
    return ProjectionDemo(mean_budget, total_se, res_full, res_det, res_bh, theta_bh, objective,
                          pathwise)
