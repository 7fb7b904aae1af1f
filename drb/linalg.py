"""Small linear-algebra helpers shared by the estimators and the allocators."""

from __future__ import annotations

import warnings

import numpy as np

from drb.cholesky import is_pd
from drb.errors import CovarianceRepairWarning, DataError

__all__ = [
    "symmetrize",
    "is_positive_definite",
    "nearest_positive_definite",
    "cov_to_corr",
]


def symmetrize(a: np.ndarray) -> np.ndarray:
    """Return ``(a + a.T) / 2`` as a float array."""
    a = np.asarray(a, dtype=float)
    return 0.5 * (a + a.T)


def is_positive_definite(a: np.ndarray) -> bool:
    """True when the symmetric matrix ``a`` has a Cholesky factor (strictly positive definite).

    Compiled for the small matrices of every bar (:func:`drb.cholesky.is_pd`; numpy's call cost
    more than the factorization), LAPACK above 32 rows."""
    return is_pd(np.asarray(a, dtype=float))


def nearest_positive_definite(
    a: np.ndarray,
    *,
    eps: float = 1e-10,
    warn: bool = True,
    name: str = "covariance",
) -> np.ndarray:
    """Symmetrize ``a`` and, if needed, repair it to the nearest positive definite matrix.

    The repair is the Frobenius-nearest symmetric matrix with eigenvalues floored at
    ``eps * max(1, trace(a)/n)`` (eigenvalue clipping: the exact solution of the nearest
    symmetric positive semidefinite problem, shifted into the definite cone).

    Parameters
    ----------
    a : ndarray, shape (n, n)
        Finite square matrix.
    eps : float
        Relative eigenvalue floor.
    warn : bool
        Emit :class:`CovarianceRepairWarning` when a repair was needed.
    name : str
        Name used in error and warning messages.

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric positive definite matrix (``a`` itself, symmetrized, when it already was).
    """
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise DataError(f"{name}: expected a square matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name}: contains NaN or infinite entries")
    s = symmetrize(a)
    if is_positive_definite(s):
        return s
    n = s.shape[0]
    floor = eps * max(1.0, float(np.trace(s)) / max(n, 1))
    vals, vecs = np.linalg.eigh(s)
    vals = np.maximum(vals, floor)
    repaired = symmetrize((vecs * vals) @ vecs.T)
    # Round-off can leave the smallest eigenvalue a hair below zero: add a diagonal jitter until
    # Cholesky succeeds.
    jitter = floor
    while not is_positive_definite(repaired):
        repaired = repaired + jitter * np.eye(n)
        jitter *= 10.0
    if warn:
        warnings.warn(
            f"{name} was not positive definite (min eigenvalue {np.linalg.eigvalsh(s)[0]:.3g}); "
            "repaired to the nearest positive definite matrix",
            CovarianceRepairWarning,
            stacklevel=2,
        )
    return repaired


def cov_to_corr(cov: np.ndarray) -> np.ndarray:
    """Correlation matrix of a covariance matrix, shape (n, n)."""
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return corr
