"""Markov transition matrix of the regime sequence: P_ij = n_ij / sum_k n_ik.

Transitions are counted between consecutive observed states (a missing state, None/NaN, breaks the
chain: no transition into or out of it). ``smoothing`` adds a pseudo-count to every cell; rows without
any observation are uniform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from drb.errors import DataError, StateError
from indicators.regimes import REGIMES

__all__ = [
    "transition_matrix",
    "expanding_transition_matrix",
    "expanding_transition_rows",
    "MarkovTransitionEstimator",
]


def _valid(s) -> bool:
    return s is not None and not (isinstance(s, float) and np.isnan(s))


def _normalize(counts: np.ndarray, smoothing: float) -> np.ndarray:
    c = counts + smoothing
    tot = c.sum(axis=-1, keepdims=True)
    n = c.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tot > 0, c / np.where(tot > 0, tot, 1.0), 1.0 / n)
    return p


def _labels(states, labels):
    if labels is None:
        labels = sorted({s for s in states if _valid(s)})
    labels = list(labels)
    if len(set(labels)) != len(labels) or not labels:
        raise DataError("transition matrix: labels must be non-empty and unique")
    return labels


def transition_matrix(
    states: Sequence, labels: Sequence | None = None, smoothing: float = 0.0
) -> pd.DataFrame:
    """Transition matrix of a state sequence.

    Parameters
    ----------
    states : sequence of hashable (None/NaN = unknown)
    labels : sequence, optional
        Row/column labels (default: sorted observed states; use ``REGIMES`` for the 12 regimes).
    smoothing : float
        Pseudo-count added to each cell (0 = the paper's maximum-likelihood estimate).

    Returns
    -------
    DataFrame (L, L)
        Rows = from-state, columns = to-state, rows sum to 1.
    """
    states = list(states)
    labels = _labels(states, labels)
    pos = {s: i for i, s in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)))
    for a, b in zip(states[:-1], states[1:]):
        if _valid(a) and _valid(b):
            if a not in pos or b not in pos:
                raise DataError(
                    f"transition matrix: state {a if a not in pos else b!r} not in labels"
                )
            counts[pos[a], pos[b]] += 1
    return pd.DataFrame(
        _normalize(counts, smoothing),
        index=pd.Index(labels, name="from"),
        columns=pd.Index(labels, name="to"),
    )


def expanding_transition_matrix(
    states: Sequence, labels: Sequence | None = None, smoothing: float = 0.0
) -> np.ndarray:
    """Causal version: ``out[t]`` is the matrix from transitions up to and including (t-1 -> t).

    Returns
    -------
    ndarray, shape (T, L, L)
    """
    states = list(states)
    labels = _labels(states, labels)
    pos = {s: i for i, s in enumerate(labels)}
    L = len(labels)
    counts = np.zeros((len(states), L, L))
    cur = np.zeros((L, L))
    for t in range(len(states)):
        if t > 0 and _valid(states[t - 1]) and _valid(states[t]):
            cur[pos[states[t - 1]], pos[states[t]]] += 1
        counts[t] = cur
    return _normalize(counts, smoothing)


def expanding_transition_rows(
    states: pd.Series, labels: Sequence | None = REGIMES, smoothing: float = 0.0
) -> pd.DataFrame:
    """Row of the current state in the causal matrix: P(s_t -> j), shape (T, L); NaN when s_t unknown."""
    labels = _labels(list(states), labels)
    mats = expanding_transition_matrix(list(states), labels, smoothing)
    pos = {s: i for i, s in enumerate(labels)}
    out = np.full((len(states), len(labels)), np.nan)
    for t, s in enumerate(states):
        if _valid(s):
            out[t] = mats[t, pos[s]]
    return pd.DataFrame(out, index=states.index, columns=labels)


class MarkovTransitionEstimator:
    """Online transition counts; ``update(state)``, ``matrix``, ``row(state)``, JSON state."""

    def __init__(self, labels: Sequence = REGIMES, smoothing: float = 0.0):
        self.labels = _labels([], list(labels))
        self.smoothing = float(smoothing)
        self._pos = {s: i for i, s in enumerate(self.labels)}
        self.counts = np.zeros((len(self.labels), len(self.labels)))
        self.last = None

    def update(self, state) -> None:
        """Record the bar's state (None = unknown: breaks the chain)."""
        if _valid(state) and state not in self._pos:
            raise DataError(f"MarkovTransitionEstimator: unknown state {state!r}")
        if _valid(state) and _valid(self.last):
            self.counts[self._pos[self.last], self._pos[state]] += 1
        self.last = state if _valid(state) else None

    @property
    def matrix(self) -> pd.DataFrame:
        return pd.DataFrame(
            _normalize(self.counts, self.smoothing),
            index=pd.Index(self.labels, name="from"),
            columns=pd.Index(self.labels, name="to"),
        )

    def row(self, state) -> pd.Series:
        """P(state -> j) for every label j."""
        if state not in self._pos:
            raise DataError(f"MarkovTransitionEstimator: unknown state {state!r}")
        p = _normalize(self.counts[self._pos[state]][None, :], self.smoothing)[0]
        return pd.Series(p, index=self.labels, name=state)

    def get_state(self) -> dict:
        return {
            "version": 1,
            "labels": list(self.labels),
            "smoothing": self.smoothing,
            "counts": self.counts.tolist(),
            "last": self.last,
        }

    @classmethod
    def from_state(cls, state: dict) -> MarkovTransitionEstimator:
        if state.get("version") != 1:
            raise StateError("MarkovTransitionEstimator: unknown state version")
        obj = cls(state["labels"], state["smoothing"])
        obj.counts = np.asarray(state["counts"], dtype=float)
        obj.last = state["last"]
        return obj
