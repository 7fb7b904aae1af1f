"""Risk budgets of the dynamic model: the regime budget matrix, tactical tilts, smoothing.

Pure numpy/pandas (DESIGN section 3, upper and lower layers and the smoothing rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from drb.errors import ConfigError

__all__ = [
    "CLASSES",
    "PHASES",
    "VOL_STATES",
    "REGIMES",
    "DEFAULT_BUDGET_MATRIX",
    "INITIAL_BUDGET",
    "budget_matrix",
    "class_to_asset_budget",
    "anticipated_budget",
    "apply_tilts",
    "floor_and_normalize",
    "smoothing_lambda",
    "smooth_budget",
]

CLASSES: tuple[str, ...] = ("equity", "bond", "commodity", "real_estate")
PHASES: tuple[str, ...] = ("recovery", "expansion", "deceleration", "recession")
VOL_STATES: tuple[str, ...] = ("low", "medium", "high")
#: The 12 regimes "phase/vol_state", id = phase_index * 3 + vol_index.
REGIMES: tuple[str, ...] = tuple(f"{p}/{v}" for p in PHASES for v in VOL_STATES)

#: Default regime -> class risk budget (rows sum to 1). It honours every cell the paper states:
#: recovery + low volatility gives equity 60%; real estate 15% throughout recovery; recession + high
#: volatility gives equity 15% and bond 50%; commodity 25% throughout expansion; bonds between 15% and
#: 50% everywhere. The other cells interpolate: equity falls and bonds rise with the volatility state
#: and from recovery to recession.
DEFAULT_BUDGET_MATRIX = pd.DataFrame(
    [
        [0.60, 0.15, 0.10, 0.15],
        [0.50, 0.22, 0.13, 0.15],
        [0.38, 0.32, 0.15, 0.15],
        [0.45, 0.15, 0.25, 0.15],
        [0.40, 0.22, 0.25, 0.13],
        [0.30, 0.35, 0.25, 0.10],
        [0.35, 0.30, 0.20, 0.15],
        [0.30, 0.38, 0.20, 0.12],
        [0.22, 0.45, 0.20, 0.13],
        [0.28, 0.42, 0.15, 0.15],
        [0.22, 0.47, 0.18, 0.13],
        [0.15, 0.50, 0.20, 0.15],
    ],
    index=pd.Index(REGIMES, name="regime"),
    columns=pd.Index(CLASSES, name="class"),
)

#: The paper's initial budget: equity 40%, bond 30%, commodity 15%, real estate 15%.
INITIAL_BUDGET: dict[str, float] = {"equity": 0.40, "bond": 0.30, "commodity": 0.15, "real_estate": 0.15}


def budget_matrix(override: Mapping[str, Mapping[str, float]] | pd.DataFrame | None = None) -> pd.DataFrame:
    """The 12 x 4 budget matrix, optionally with rows replaced by ``override``.

    Parameters
    ----------
    override : mapping or DataFrame, optional
        ``{"recovery/low": {"equity": 0.6, ...}, ...}``; each given row must name every class with a
        non-negative number, and is normalized to sum to 1.

    Returns
    -------
    DataFrame, shape (12, 4)
    """
    m = DEFAULT_BUDGET_MATRIX.copy()
    if override is None:
        return m
    rows = override.to_dict(orient="index") if isinstance(override, pd.DataFrame) else dict(override)
    for regime, row in rows.items():
        if regime not in m.index:
            raise ConfigError(f"budget_matrix: unknown regime '{regime}' (known: {', '.join(REGIMES)})")
        missing = [c for c in CLASSES if c not in row]
        extra = [c for c in row if c not in CLASSES]
        if missing or extra:
            raise ConfigError(
                f"budget_matrix['{regime}']: needs exactly the classes {', '.join(CLASSES)}"
                + (f"; missing {missing[0]}" if missing else f"; unknown {extra[0]}")
            )
        vals = np.array([float(row[c]) for c in CLASSES])
        if not np.all(np.isfinite(vals)) or (vals < 0).any() or vals.sum() <= 0:
            raise ConfigError(f"budget_matrix['{regime}']: entries must be finite, >= 0 and not all zero")
        m.loc[regime] = vals / vals.sum()
    return m


def class_to_asset_budget(class_budget: Mapping[str, float] | pd.Series, asset_classes: Sequence[str]) -> np.ndarray:
    """Spread class budgets over assets: a class's budget is shared equally by its assets.

    Classes with no asset lose their budget and the rest is renormalized.

    Parameters
    ----------
    class_budget : mapping class -> budget
    asset_classes : sequence of str, length n
        The class of each asset, in asset order.

    Returns
    -------
    ndarray, shape (n,)
        Asset budgets summing to 1.
    """
    counts: dict[str, int] = {}
    for c in asset_classes:
        counts[c] = counts.get(c, 0) + 1
    b = np.array([float(class_budget[c]) / counts[c] for c in asset_classes])
    total = b.sum()
    if total <= 0:
        return np.full(len(asset_classes), 1.0 / len(asset_classes))
    return b / total


def anticipated_budget(matrix: np.ndarray, regime_id: int, transition_row: np.ndarray | None, anticipation: float) -> np.ndarray:
    """Blend the current regime's budget with the expected next-regime budget.

    ``b* = (1 - a) B[s_t] + a sum_j P(s_t, j) B_j``.

    Parameters
    ----------
    matrix : ndarray, shape (12, n)
        Budget per regime (asset budgets).
    regime_id : int
    transition_row : ndarray, shape (12,), optional
        Markov transition probabilities out of the current regime.
    anticipation : float in [0, 1]
    """
    current = matrix[regime_id]
    if anticipation <= 0 or transition_row is None:
        return current.copy()
    expected = np.asarray(transition_row, dtype=float) @ matrix
    return (1.0 - anticipation) * current + anticipation * expected


def floor_and_normalize(b: np.ndarray, floor: float) -> np.ndarray:
    """Normalize ``b`` to sum 1 with every entry at least ``floor`` (exact water-filling).

    Entries below the floor are lifted to it and the others scaled down proportionally; repeated
    until no entry falls below (at most n passes). Requires ``floor * n <= 1``.
    """
    b = np.clip(np.asarray(b, dtype=float), 0.0, None)
    n = b.size
    if floor * n > 1.0 + 1e-12:
        raise ConfigError(f"budget floor {floor} is infeasible for {n} assets (floor * n > 1)")
    if b.sum() <= 0:
        return np.full(n, 1.0 / n)
    b = b / b.sum()
    fixed = np.zeros(n, dtype=bool)
    for _ in range(n):
        low = (~fixed) & (b < floor)
        if not low.any():
            break
        fixed |= low
        free = ~fixed
        rest = 1.0 - floor * fixed.sum()
        out = np.where(fixed, floor, 0.0)
        if free.any() and b[free].sum() > 0:
            out[free] = b[free] / b[free].sum() * rest
        b = out
    return b


def apply_tilts(
    budget: np.ndarray,
    scores: Sequence[np.ndarray | None],
    *,
    strength: float = 0.025,
    max_tilt: float = 0.05,
    floor: float = 0.02,
) -> np.ndarray:
    """Tactical layer: tilt budgets by cross-sectional z-scores, each tilt bounded, then floor.

    Each score vector (e.g. risk-adjusted momentum, valuation) is z-scored across assets; the tilt of
    asset i from that score is ``clip(strength * z_i, -max_tilt, max_tilt)`` (budget points). Tilts
    add up over scores, the result is renormalized with a floor.

    Parameters
    ----------
    budget : ndarray, shape (n,)
    scores : sequence of ndarray (n,) or None
        NaN or None scores are skipped.
    strength : float
        Budget points per cross-sectional standard deviation.
    max_tilt : float
        Bound of each tilt (default 5 percentage points).
    floor : float
        Minimum budget per asset after renormalization (default 2%).
    """
    b = np.asarray(budget, dtype=float).copy()
    for s in scores:
        if s is None:
            continue
        s = np.asarray(s, dtype=float)
        if s.size != b.size or not np.all(np.isfinite(s)) or s.size < 2:
            continue
        sd = s.std()
        if sd <= 0:
            continue
        z = (s - s.mean()) / sd
        b = b + np.clip(strength * z, -max_tilt, max_tilt)
    return floor_and_normalize(b, floor)


def smoothing_lambda(
    vol_index: float,
    vol_mean: float,
    *,
    scale: float = 1.0,
    base: float = 0.05,
    amplitude: float = 0.2,
    lower: float = 0.05,
    upper: float = 0.35,
) -> float:
    """The paper's adaptive smoothing: ``lambda = base + amplitude * sigmoid((VIX - mean) / scale)``.

    Clipped to ``[lower, upper]``. With the defaults lambda lies in (0.05, 0.25) (DESIGN section 6:
    the paper's text says 0.05-0.35; raise ``amplitude`` to 0.3 to reach 0.35).
    """
    if not np.isfinite(vol_index) or not np.isfinite(vol_mean) or scale <= 0:
        return float(np.clip(base + 0.5 * amplitude, lower, upper))
    x = (vol_index - vol_mean) / scale
    sig = 0.5 * (1.0 + np.tanh(0.5 * x))  # numerically stable logistic
    return float(np.clip(base + amplitude * sig, lower, upper))


def smooth_budget(previous: np.ndarray, target: np.ndarray, lam: float) -> np.ndarray:
    """``b(t) = (1 - lambda) b(t-1) + lambda b*(t)``, renormalized against round-off."""
    b = (1.0 - lam) * np.asarray(previous, dtype=float) + lam * np.asarray(target, dtype=float)
    return b / b.sum()
