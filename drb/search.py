"""Bracketing searches shared by the estimators and the allocators (plain Python, no numpy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["sign_change"]


def sign_change(f: Callable[[float], float], points: Sequence[float]) -> tuple[int, int]:
    """Neighbours ``i, i + 1`` of a sorted grid where ``f`` changes sign, by bisection over the grid.

    Parameters
    ----------
    f : callable
        Evaluated at grid points only (about ``log2(len(points))`` calls).
    points : sequence of float, length >= 2
        Sorted grid with ``f(points[0]) > 0 >= f(points[-1])`` (not checked: the caller knows).

    Returns
    -------
    (i, j) : tuple of int
        ``j == i + 1``, ``f(points[i]) > 0 >= f(points[j])``.
    """
    i, j = 0, len(points) - 1
    while j - i > 1:
        k = (i + j) // 2
        if f(points[k]) > 0.0:
            i = k
        else:
            j = k
    return i, j
