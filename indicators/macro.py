"""Macro inputs as a contract: which monthly columns feed the leading indicator, and how.

A mapping ``{column: transform}`` (the config's ``[macro]`` table, or the ``macro_transforms``
argument of ``DynamicRiskBudget``) names the columns to use and makes each one stationary and
oriented before the composite leading indicator's principal component:

=========== ================================================================ ==========
transform   value at reference month ``m``                                    needs
=========== ================================================================ ==========
``level``   ``x_m``                                                           --
``diff``    ``x_m - x_{m-1}``                                                 ``m-1``
``yoy``     ``100 * (x_m / x_{m-12} - 1)`` (12-month percent change)          ``m-12``
``logdiff`` ``ln x_m - ln x_{m-1}``                                           ``m-1``
=========== ================================================================ ==========

A leading ``-`` (``"-level"``, ``"-yoy"``) flips the sign, so that higher always means stronger
growth (claims, credit spreads and financial-conditions indices are counter-cyclical). Months are
calendar months of the reference period (index = first day of the month): the month before, or 12
months before, is looked up by date, not by row, and a missing one gives NaN. ``yoy`` gives
NaN where the value 12 months before is not positive, ``logdiff`` where either value is not positive.

Timing: transforms run on the **reference-month** series, before the publication lag, and use
only months ``<= m``; the value of month ``m`` therefore becomes usable exactly when ``m`` itself
is published (:mod:`indicators.regimes` applies the lag). Columns of the macro file that the
mapping does not name are ignored, with one :class:`MacroInputWarning`.

Without a mapping every column is used as a level with higher = stronger growth assumed, and one
:class:`MacroInputWarning` names every column that looks non-stationary (augmented Dickey-Fuller,
``arch.unitroot.ADF``, constant, up to 12 lags chosen by AIC, p-value above 0.05). That test reads
the whole file, future included: it is a diagnostic of the input, never a signal.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DRBWarning

__all__ = [
    "TRANSFORMS",
    "MacroInputWarning",
    "MacroSpec",
    "parse_macro_spec",
    "transform_value",
    "transform_macro",
    "nonstationary_columns",
    "prepare_macro",
    "month_index",
]

#: Transform name -> months back of the value it needs (0: none).
TRANSFORMS: dict[str, int] = {"level": 0, "diff": 1, "yoy": 12, "logdiff": 1}


class MacroInputWarning(DRBWarning):
    """The macro inputs are used in a way the user should know about (see :mod:`indicators.macro`)."""


@dataclass(frozen=True)
class MacroSpec:
    """Parsed macro mapping: column names, transform names and signs, in the mapping's order.

    Attributes
    ----------
    columns : tuple of str
    transforms : tuple of str
        Each one of :data:`TRANSFORMS`.
    signs : tuple of float
        +1.0, or -1.0 for a leading ``-``.
    given : bool
        False when the spec was built as "every column a level" (no mapping given).
    """

    columns: tuple[str, ...]
    transforms: tuple[str, ...]
    signs: tuple[float, ...]
    given: bool = True
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, str]:
        """The mapping in its config spelling (``{"ICSA": "-yoy", ...}``)."""
        return {
            c: ("-" if s < 0 else "") + t
            for c, t, s in zip(self.columns, self.transforms, self.signs)
        }


def parse_macro_spec(mapping: Mapping[str, str], label: str = "macro") -> MacroSpec:
    """Validate a ``{column: transform}`` mapping.

    Parameters
    ----------
    mapping : mapping of str to str
        Transform per column: ``level``, ``diff``, ``yoy`` or ``logdiff``, optionally with a leading
        ``-`` (sign flip).
    label : str
        How messages name the mapping (e.g. ``"config.toml: macro"``).

    Returns
    -------
    MacroSpec

    Raises
    ------
    ConfigError
        Not a mapping, empty, or a value that is not a known transform (the message names the column).
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{label}: expected a table of column = \"transform\", got {type(mapping).__name__}")
    if not mapping:
        raise ConfigError(f"{label}: the table is empty; name at least one column")
    cols, trs, signs = [], [], []
    for col, value in mapping.items():
        if not isinstance(col, str) or not col:
            raise ConfigError(f"{label}: column names must be non-empty strings, got {col!r}")
        text = value.strip() if isinstance(value, str) else None
        name = text[1:].strip() if text and text.startswith("-") else text
        if name not in TRANSFORMS:
            raise ConfigError(
                f"{label}.{col}: unknown transform {value!r} (known: {', '.join(TRANSFORMS)}; "
                "a leading '-' flips the sign)"
            )
        cols.append(col)
        trs.append(name)
        signs.append(-1.0 if text.startswith("-") else 1.0)
    return MacroSpec(tuple(cols), tuple(trs), tuple(signs))


def month_index(ts) -> int:
    """Calendar month number ``year * 12 + month - 1`` of a date (consecutive months differ by 1)."""
    ts = pd.Timestamp(ts)
    return ts.year * 12 + ts.month - 1


def transform_value(x: float, prev: float, transform: str, sign: float = 1.0) -> float:
    """One transformed value from the month's value and the value it looks back to.

    Parameters
    ----------
    x : float
        Raw value of reference month ``m``.
    prev : float
        Raw value of month ``m - TRANSFORMS[transform]`` (ignored for ``level``; NaN if absent).
    transform : str
        One of :data:`TRANSFORMS`.
    sign : float
        +1 or -1.

    Returns
    -------
    float
        NaN when an input needed is NaN, or for ``yoy`` / ``logdiff`` when one is not positive.
    """
    if transform == "level":
        v = x
    elif transform == "diff":
        v = x - prev
    elif transform == "yoy":
        v = 100.0 * (x / prev - 1.0) if prev > 0 else math.nan
    elif transform == "logdiff":
        v = math.log(x) - math.log(prev) if prev > 0 and x > 0 else math.nan
    else:
        raise ConfigError(f"unknown macro transform {transform!r} (known: {', '.join(TRANSFORMS)})")
    return float(sign * v)


def transform_macro(macro: pd.DataFrame, spec: MacroSpec, label: str = "macro") -> pd.DataFrame:
    """Apply a spec to a monthly frame: the selected columns, transformed, on the same months.

    Parameters
    ----------
    macro : DataFrame, shape (M, k)
        Index = first day of the reference month (sorted, unique); raw values.
    spec : MacroSpec
    label : str
        How messages name the frame.

    Returns
    -------
    DataFrame, shape (M, len(spec.columns))
        Columns in the spec's order; row ``m`` uses raw rows ``m`` and ``m - lag`` only.

    Raises
    ------
    ConfigError
        A spec column is not in the frame (the message names it).
    """
    missing = [c for c in spec.columns if c not in macro.columns]
    if missing:
        raise ConfigError(
            f"{label}: column '{missing[0]}' named in the macro table is not in the macro data "
            f"(it has: {', '.join(map(str, macro.columns))})"
        )
    months = np.array([month_index(t) for t in macro.index])
    out = {}
    for col, tr, sg in zip(spec.columns, spec.transforms, spec.signs):
        raw = macro[col].to_numpy(dtype=float)
        by_month = dict(zip(months.tolist(), raw.tolist()))
        lag = TRANSFORMS[tr]
        out[col] = [
            transform_value(x, by_month.get(m - lag, math.nan), tr, sg) for m, x in zip(months, raw)
        ]
    return pd.DataFrame(out, index=macro.index, columns=list(spec.columns), dtype=float)


def nonstationary_columns(macro: pd.DataFrame, alpha: float = 0.05, max_lags: int = 12) -> list[str]:
    """Columns whose augmented Dickey-Fuller test does not reject a unit root at ``alpha``.

    Parameters
    ----------
    macro : DataFrame
        Monthly series (NaN dropped per column).
    alpha : float
        Significance level.
    max_lags : int
        Largest lag of the ADF regression (AIC picks among 0..max_lags).

    Returns
    -------
    list of str
        In column order. Columns with fewer than 24 values, or constant, are not tested.
    """
    from arch.unitroot import ADF

    out = []
    for col in macro.columns:
        y = macro[col].dropna().to_numpy(dtype=float)
        if len(y) < 24 or np.ptp(y) == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                p = float(ADF(y, trend="c", max_lags=max_lags).pvalue)
            except Exception:  # noqa: BLE001 - arch raises several kinds on degenerate input
                continue
        if not p <= alpha:
            out.append(str(col))
    return out


def prepare_macro(
    macro: pd.DataFrame, transforms: Mapping[str, str] | MacroSpec | None, label: str = "macro"
) -> tuple[pd.DataFrame, MacroSpec]:
    """Select the macro columns to use and warn as the contract says (module docstring).

    Parameters
    ----------
    macro : DataFrame
        Raw monthly data, index = reference month.
    transforms : mapping, MacroSpec or None
        ``{column: transform}``; None: every column as a level (with the stationarity warning).
    label : str
        How messages name the mapping.

    Returns
    -------
    raw : DataFrame
        The raw columns to feed the cycle classifier, in the spec's order.
    spec : MacroSpec
        With ``notes``: the warnings issued, for the run's report.

    Raises
    ------
    ConfigError
        Bad mapping or a named column missing from the data.
    """
    if transforms is None:
        cols = tuple(str(c) for c in macro.columns)
        bad = nonstationary_columns(macro)
        msg = (
            "macro: no transform table, so every column is used as a level and higher is assumed to "
            "mean stronger growth (flip counter-cyclical series with a '-' entry)"
        )
        if bad:
            msg += (
                f"; these look non-stationary (ADF p > 0.05): {', '.join(bad)}: give a [macro] table "
                "(macro_transforms=) with 'yoy', 'diff' or 'logdiff' for them"
            )
        warnings.warn(msg, MacroInputWarning, stacklevel=3)
        spec = MacroSpec(cols, ("level",) * len(cols), (1.0,) * len(cols), given=False, notes=(msg,))
        return macro.copy(), spec
    spec = transforms if isinstance(transforms, MacroSpec) else parse_macro_spec(transforms, label)
    transform_macro(macro.iloc[:0], spec, label)  # raises on a missing column
    notes = list(spec.notes)
    ignored = [str(c) for c in macro.columns if c not in spec.columns]
    if ignored:
        msg = f"macro: columns not in the transform table are ignored: {', '.join(ignored)}"
        warnings.warn(msg, MacroInputWarning, stacklevel=3)
        notes.append(msg)
    spec = MacroSpec(spec.columns, spec.transforms, spec.signs, True, tuple(notes))
    return macro[list(spec.columns)].copy(), spec
