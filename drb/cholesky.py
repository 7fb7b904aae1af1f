"""The one hand-written Cholesky factorization of the small compiled paths, and a positive definite
solve built on it (numba; a LAPACK call from numba, or numpy's per-call overhead from Python, costs
more than the factorization itself below about 30 unknowns). Used by the risk-budget solver and its
input checks (``strategies.core``) and by the EGARCH Newton steps (``indicators.egarch``).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["solve_pd", "is_pd"]


def _cholesky_in_place_py(a: np.ndarray, lo: np.ndarray) -> bool:
    """Cholesky factor, into the lower triangle of ``lo`` (n, n), of the symmetric matrix whose
    strict lower triangle is ``a``'s and whose diagonal the caller has put on ``lo``'s diagonal
    (so a shifted or augmented diagonal needs no copy of ``a``). False at the first pivot that is
    not > 0 (not positive definite)."""
    n = a.shape[0]
    for j in range(n):
        acc = lo[j, j]
        for k in range(j):
            acc -= lo[j, k] * lo[j, k]
        if not acc > 0.0:
            return False
        ljj = np.sqrt(acc)
        lo[j, j] = ljj
        for i in range(j + 1, n):
            acc2 = a[i, j]
            for k in range(j):
                acc2 -= lo[i, k] * lo[j, k]
            lo[i, j] = acc2 / ljj
    return True


_cholesky_in_place = numba.njit(cache=True, inline="always")(_cholesky_in_place_py)


def _solve_pd_py(b: np.ndarray, g: np.ndarray, out: np.ndarray) -> bool:
    """Solve ``b @ out = g`` by Cholesky, in place.

    Parameters
    ----------
    b : ndarray, shape (k, k)
        Symmetric matrix (its lower triangle and diagonal are read).
    g : ndarray, shape (k,)
    out : ndarray, shape (k,)
        Receives the solution.

    Returns
    -------
    bool
        False (``out`` undefined) when ``b`` is not positive definite.
    """
    k = b.shape[0]
    lo = np.empty((k, k))
    for j in range(k):
        lo[j, j] = b[j, j]
    if not _cholesky_in_place(b, lo):
        return False
    for i in range(k):  # forward: lo w = g
        acc = g[i]
        for j in range(i):
            acc -= lo[i, j] * out[j]
        out[i] = acc / lo[i, i]
    for i in range(k - 1, -1, -1):  # backward: lo' out = w
        acc = out[i]
        for j in range(i + 1, k):
            acc -= lo[j, i] * out[j]
        out[i] = acc / lo[i, i]
    return True


solve_pd = numba.njit(cache=True)(_solve_pd_py)


def _is_pd_small_py(a: np.ndarray) -> bool:
    """True when the symmetric (n, n) matrix ``a`` is finite and has a Cholesky factor (its lower
    triangle is read)."""
    n = a.shape[0]
    for i in range(n):
        for j in range(i + 1):
            if not np.isfinite(a[i, j]):
                return False
    lo = np.empty((n, n))
    for j in range(n):
        lo[j, j] = a[j, j]
    return _cholesky_in_place(a, lo)


_is_pd_small = numba.njit(cache=True)(_is_pd_small_py)

#: Largest matrix checked by the compiled Cholesky; LAPACK (numpy) above.
PD_SMALL_MAX_N = 32


def is_pd(a: np.ndarray) -> bool:
    """True when the symmetric float matrix ``a`` (n, n) is finite and strictly positive definite
    (it has a Cholesky factor): compiled up to :data:`PD_SMALL_MAX_N`, numpy's LAPACK call above.
    Its lower triangle is read."""
    if a.shape[0] <= PD_SMALL_MAX_N:
        return bool(_is_pd_small(np.ascontiguousarray(a, dtype=np.float64)))
    if not np.isfinite(a).all():
        return False
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return False
    return True
