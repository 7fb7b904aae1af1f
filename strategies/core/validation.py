"""Input checks shared by the allocation functions (numpy only, no backtrader).

Every check raises :class:`drb.errors.DataError` naming the argument and the problem. Covariances
are annualized decimals (e.g. ``0.04`` for a 20% volatility), weights and budgets are fractions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np

from drb.cholesky import _is_pd_small
from drb.errors import ConfigError, DataError
from drb.linalg import nearest_positive_definite

__all__ = [
    "SYMMETRY_RTOL",
    "check_covariance",
    "check_vector",
    "check_budget",
    "check_bounds",
    "check_param_types",
]

#: Relative tolerance of the symmetry check: ``max|S - S'| <= SYMMETRY_RTOL * max|diag S|``.
SYMMETRY_RTOL: float = 1e-8


_PD_KERNEL_MAX_N = 64  # compiled Cholesky test below this size, LAPACK above

# Compiled checks: each is a plain Python function ``<name>_py`` (its pure-Python twin, tested
# against the compiled version in tests/test_solver_kernels.py) compiled by numba.njit.


def _matrix_status_py(a: np.ndarray, rtol: float) -> tuple[int, float]:
    """(code, asymmetry): 0 ok, 1 non-finite, 2 no positive variance, 3 asymmetric."""
    n = a.shape[0]
    scale = 0.0
    for i in range(n):
        for j in range(n):
            if not np.isfinite(a[i, j]):
                return 1, 0.0
        if a[i, i] > scale:
            scale = a[i, i]
    if not scale > 0.0:
        return 2, 0.0
    asym = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            e = abs(a[i, j] - a[j, i])
            if e > asym:
                asym = e
    if asym > rtol * scale:
        return 3, asym
    return 0, asym


_matrix_status = numba.njit(cache=True)(_matrix_status_py)






def _vector_status_py(v: np.ndarray, nonnegative: bool) -> tuple[int, int, float]:
    """(code, position, sum): 0 ok, 1 non-finite, 2 negative."""
    total = 0.0
    for i in range(v.shape[0]):
        if not np.isfinite(v[i]):
            return 1, i, 0.0
        if nonnegative and v[i] < 0.0:
            return 2, i, 0.0
        total += v[i]
    return 0, -1, total


_vector_status = numba.njit(cache=True)(_vector_status_py)


def _as_float_array(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: not convertible to a float array ({exc})") from exc
    return arr


def check_covariance(
    cov: Any,
    name: str = "cov",
    *,
    repair: bool = True,
    require_pd: bool = True,
) -> np.ndarray:
    """Validate a covariance matrix and return it symmetrized, C-contiguous, float64.

    Parameters
    ----------
    cov : array_like, shape (n, n)
        Covariance matrix (annualized decimals). Must be square, non-empty, finite and symmetric
        within ``SYMMETRY_RTOL`` (relative to the largest variance).
    name : str
        Argument name used in messages.
    repair : bool
        When the matrix is not positive definite, replace it by the nearest positive definite
        matrix (:func:`drb.linalg.nearest_positive_definite`) and emit
        :class:`drb.errors.CovarianceRepairWarning`. With ``repair=False`` a non positive definite
        matrix raises :class:`DataError` (only when ``require_pd``).
    require_pd : bool
        Check positive definiteness at all (a Cholesky factorization).

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric (positive definite when ``require_pd``) float64 matrix.
    """
    a = _as_float_array(cov, name)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise DataError(f"{name}: expected a square (n, n) matrix, got shape {a.shape}")
    if a.shape[0] == 0:
        raise DataError(f"{name}: empty matrix")
    a = np.ascontiguousarray(a)
    code, asym = _matrix_status(a, SYMMETRY_RTOL)
    if code == 1:
        raise DataError(f"{name}: contains NaN or infinite entries")
    if code == 2:
        raise DataError(f"{name}: all variances are zero or negative")
    if code == 3:
        raise DataError(
            f"{name}: not symmetric (max |S - S'| = {asym:.3g} exceeds {SYMMETRY_RTOL:g} times "
            "the largest variance)"
        )
    if asym > 0.0:
        a = np.ascontiguousarray(0.5 * (a + a.T))
    if not require_pd:
        return a
    if a.shape[0] <= _PD_KERNEL_MAX_N:
        pd = _is_pd_small(a)
    else:
        try:
            np.linalg.cholesky(a)
            pd = True
        except np.linalg.LinAlgError:
            pd = False
    if not pd:
        if not repair:
            raise DataError(f"{name}: not positive definite")
        a = np.ascontiguousarray(nearest_positive_definite(a, name=name))
    return a


def check_vector(x: Any, n: int | None, name: str, *, nonnegative: bool = False) -> np.ndarray:
    """Validate a finite 1-D float vector of length ``n`` (any length when ``n`` is None)."""
    v = _as_float_array(x, name)
    if v.ndim == 0 and n == 1:
        v = v.reshape(1)
    if v.ndim != 1:
        raise DataError(f"{name}: expected a 1-D vector, got shape {v.shape}")
    if n is not None and v.shape[0] != n:
        raise DataError(f"{name}: expected length {n}, got {v.shape[0]}")
    if v.shape[0] == 0:
        raise DataError(f"{name}: empty vector")
    v = np.ascontiguousarray(v)
    code, bad, _ = _vector_status(v, nonnegative)
    if code == 1:
        raise DataError(f"{name}: NaN or infinite entry at position {bad}")
    if code == 2:
        raise DataError(f"{name}: negative entry {v[bad]:.6g} at position {bad}")
    return v


def check_budget(budget: Any, n: int, name: str = "budget") -> np.ndarray:
    """Validate a risk budget: length ``n``, finite, ``>= 0``, not all zero; normalized to sum 1.

    Returns
    -------
    ndarray, shape (n,)
        The budget divided by its sum (fractions of total risk).
    """
    b = np.asarray(budget, dtype=float) if not isinstance(budget, np.ndarray) else budget
    if b.ndim != 1 or b.shape[0] != n or b.dtype != np.float64:
        b = check_vector(budget, n, name, nonnegative=True)
    b = np.ascontiguousarray(b)
    code, bad, total = _vector_status(b, True)
    if code == 1:
        raise DataError(f"{name}: NaN or infinite entry at position {bad}")
    if code == 2:
        raise DataError(f"{name}: negative entry {b[bad]:.6g} at position {bad}")
    if total <= 0.0:
        raise DataError(f"{name}: all entries are zero")
    if total == 1.0:
        return b.copy()
    return b / total


def _broadcast(x: Any, n: int, name: str) -> np.ndarray:
    arr = _as_float_array(x, name)
    try:
        return np.array(np.broadcast_to(arr, (n,)), dtype=float)
    except ValueError:
        raise DataError(f"{name}: expected a scalar or a length-{n} vector") from None


def check_bounds(
    bounds: Any, n: int, name: str = "bounds"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate long-only per-asset weight bounds.

    Parameters
    ----------
    bounds : (lower, upper) pair or ndarray, shape (n, 2)
        A 2-sequence is read as ``(lower, upper)``, each a scalar or an (n,) vector of weight
        fractions (``None`` means 0 for lower, 1 for upper); a 2-D ndarray is read as one
        ``(lower, upper)`` row per asset. Requires ``0 <= lower <= upper`` and
        ``sum(lower) <= 1 <= sum(upper)`` so that a fully invested portfolio exists.

    Returns
    -------
    (lower, upper) : tuple of ndarray, each shape (n,)
    """
    if isinstance(bounds, np.ndarray) and bounds.ndim == 2:
        pair = None
    elif isinstance(bounds, Sequence) and len(bounds) == 2:
        pair = bounds
    elif isinstance(bounds, Sequence | np.ndarray):
        pair = None
    else:
        raise DataError(f"{name}: expected a (lower, upper) pair or an (n, 2) array")
    if pair is None:
        arr = _as_float_array(bounds, name)
        if arr.shape != (n, 2):
            raise DataError(f"{name}: expected shape ({n}, 2), got {arr.shape}")
        lo, hi = arr[:, 0].copy(), arr[:, 1].copy()
    else:
        lo_raw, hi_raw = pair
        lo = np.zeros(n) if lo_raw is None else _broadcast(lo_raw, n, name + "[0]")
        hi = np.ones(n) if hi_raw is None else _broadcast(hi_raw, n, name + "[1]")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise DataError(f"{name}: NaN or infinite bound")
    if (lo < 0).any():
        raise DataError(f"{name}: negative lower bound (the solvers are long-only)")
    if (lo > hi).any():
        bad = int(np.flatnonzero(lo > hi)[0])
        raise DataError(f"{name}: lower > upper at position {bad}")
    if lo.sum() > 1.0 + 1e-12 or hi.sum() < 1.0 - 1e-12:
        raise DataError(
            f"{name}: no fully invested portfolio fits (sum lower = {lo.sum():.6g}, "
            f"sum upper = {hi.sum():.6g})"
        )
    return lo, hi


#: Parameters whose float default may also be switched off (None or False).
_NULLABLE_FLOATS = frozenset({"total_cap", "asset_cap"})


def _type_problem(key: str, value: Any, default: Any) -> str | None:
    """What is wrong with ``value`` for a parameter whose default is ``default`` (None: fine)."""
    is_bool = isinstance(value, bool | np.bool_)
    is_int = isinstance(value, int | np.integer) and not is_bool
    is_real = (is_int or isinstance(value, float | np.floating)) and not is_bool
    if value is None or default is None:
        return None
    if isinstance(default, bool):
        return None if is_bool else "expected true or false"
    if isinstance(default, int):
        return None if is_int else "expected an integer"
    if isinstance(default, float):
        if is_real or (key in _NULLABLE_FLOATS and value is False):
            return None
        return "expected a number" + (" or false" if key in _NULLABLE_FLOATS else "")
    if isinstance(default, str):  # names; some also take a number (rebalance = 21, smoothing = 0.15)
        return None if isinstance(value, str) or is_real else "expected a string or a number"
    if isinstance(default, tuple | list):
        return None if isinstance(value, tuple | list | np.ndarray) else "expected a list"
    return None


def check_param_types(strategy: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Check each parameter value against the type of its default, before any backtest runs.

    Parameters
    ----------
    strategy : str
        Strategy name, for messages.
    params : mapping
        ``{parameter: value}`` as given (e.g. a ``[strategy.X]`` TOML table).
    defaults : mapping
        ``{parameter: default}`` of the strategy class. A ``None`` default or value is not checked.

    Raises
    ------
    ConfigError
        ``strategy.<name>.<parameter>: expected ..., got <value>`` for the first mismatch.
    """
    for key, value in params.items():
        if key not in defaults:
            continue
        problem = _type_problem(key, value, defaults[key])
        if problem is not None:
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ConfigError(f"strategy.{strategy}.{key}: {problem}, got {shown}")
