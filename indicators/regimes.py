"""Economic cycle and market volatility state: vectorized functions and online classifiers.

Labels
------
``PHASES = ("recovery", "expansion", "deceleration", "recession")``, ``VOL_STATES = ("low", "medium",
"high")``; a regime is ``"<phase>/<vol_state>"`` and its id is ``phase_index * 3 + vol_index``
(``REGIMES`` lists the 12 labels in id order).

Timing (no look-ahead)
----------------------
* Macro: rows are indexed by the first day of the **reference month** ``m``. With
  ``publication_lag = L`` months the value for ``m`` is usable from the first bar on/after the first day of
  month ``m + 1 + L`` (L months after the reference month ends). :func:`composite_leading_indicator`
  therefore returns a series indexed by that **availability date**; the CLI value for ``m`` uses only
  reference months ``<= m`` (expanding standardization and expanding principal component).
  A :class:`~indicators.macro.MacroSpec` (the ``[macro]`` table) transforms and orients each column
  on the reference-month series first, from months ``<= m`` only. A series whose last value is more
  than ``stale_months`` older than the newest reference month published at a bar leaves the
  indicator from that bar on (its history is recomputed without it).
* Price proxy (no macro): the equity close of the last bar of month ``m`` is usable from the first bar
  of month ``m + 1``. Proxy CLI = ln(close_m) - mean of ln(close) over the last ``proxy_months`` (12)
  month ends (detrended log price: above/below its 12-month average, like a 10-12 month moving-average
  rule); it is classified exactly like the macro CLI. Used on any day when no macro phase is available
  (``source = "price_proxy"``), else ``source = "macro"``.
* Volatility state at bar t compares the value at t with the terciles of the trailing ``lookback``
  values including t (linear-interpolated quantiles) or with fixed thresholds: low if ``v <= q1``,
  high if ``v > q2``, else medium. Without an implied-volatility index, the equity asset's EGARCH
  conditional volatility stands in (``source = "egarch_equity"``); terciles are scale-free, fixed
  thresholds are in the units of the series fed.

Cycle phase from a CLI series: level against trend (``trend_window=None``: the expanding mean of the
CLI, ~0 for a standardized CLI; an int: rolling mean over that many months) and direction over ``k``
months (``cli_m - cli_{m-k}``): recovery = below and rising, expansion = above and rising, deceleration =
above and falling (or flat), recession = below and falling (or flat).
"""

from __future__ import annotations

import bisect
import functools
import math
import warnings
import weakref
from collections import deque

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError, SignalFallbackWarning, StateError
from indicators.macro import (
    TRANSFORMS,
    MacroInputWarning,
    MacroSpec,
    month_index,
    transform_macro,
    transform_value,
)

__all__ = [
    "PHASES",
    "VOL_STATES",
    "REGIMES",
    "regime_label",
    "regime_id",
    "composite_leading_indicator",
    "price_proxy_cli",
    "classify_cycle",
    "classify_volatility_state",
    "align_to_days",
    "daily_cycle_phase",
    "CycleClassifier",
    "VolatilityStateClassifier",
]

PHASES: tuple[str, ...] = ("recovery", "expansion", "deceleration", "recession")
VOL_STATES: tuple[str, ...] = ("low", "medium", "high")
REGIMES: tuple[str, ...] = tuple(f"{p}/{v}" for p in PHASES for v in VOL_STATES)


def regime_label(phase: str, vol_state: str) -> str:
    """``"phase/vol_state"``."""
    if phase not in PHASES or vol_state not in VOL_STATES:
        raise DataError(f"unknown regime ({phase!r}, {vol_state!r})")
    return f"{phase}/{vol_state}"


def regime_id(phase: str, vol_state: str) -> int:
    """``PHASES.index(phase) * 3 + VOL_STATES.index(vol_state)`` (0..11)."""
    regime_label(phase, vol_state)
    return PHASES.index(phase) * 3 + VOL_STATES.index(vol_state)


# ------------------------------------------------------------------------------------------ helpers
def _month_start(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


@functools.lru_cache(maxsize=4096)
def _available_from(ref_month, lag: int) -> pd.Timestamp:
    # Cached: the online classifier asks for the same few months every bar, and DateOffset
    # arithmetic was a fifth of the fast path's cost.
    return _month_start(ref_month) + pd.DateOffset(months=1 + lag)


def _standardize_last(x_hist: np.ndarray) -> np.ndarray:
    """Expanding z-score of the last row against all rows so far (ddof = 1)."""
    # The operations of ndarray.mean / ndarray.std(ddof=1), in the same order (bit-identical,
    # tested), without their Python-level wrappers: this runs at every released macro month.
    m = x_hist.shape[0]
    mu = np.add.reduce(x_hist, axis=0) / m
    dev = x_hist - mu
    sd = np.sqrt(np.add.reduce(np.multiply(dev, dev, out=dev), axis=0) / (m - 1))
    sd = np.where(sd > 0, sd, 1.0)
    return (x_hist[-1] - mu) / sd


def _pc1_last(z_hist: np.ndarray) -> float:
    """Score of the last standardized row on the first principal component of all rows so far.

    Sign: loadings summing to a positive number (indicators are oriented so higher = stronger growth).
    """
    c = z_hist.T @ z_hist / z_hist.shape[0]
    _, vecs = np.linalg.eigh(c)
    w = vecs[:, -1]
    if w.sum() < 0:
        w = -w
    return float(z_hist[-1] @ w)


def _classify_last(cli: list[float], k: int, trend_window: int | None) -> str | None:
    if len(cli) <= k:
        return None
    arr = np.asarray(cli, dtype=float)
    trend = arr.mean() if trend_window is None else arr[-trend_window:].mean()
    above = arr[-1] >= trend
    rising = arr[-1] - arr[-1 - k] > 0
    if rising:
        return "expansion" if above else "recovery"
    return "deceleration" if above else "recession"


def _proxy_last(log_closes: list[float], proxy_months: int) -> float | None:
    if len(log_closes) < proxy_months:
        return None
    last = np.asarray(log_closes[-proxy_months:], dtype=float)
    return float(last[-1] - last.mean())


_VOL_ORDER = {s: i for i, s in enumerate(VOL_STATES)}


def _tercile_q(sorted_win: list[float], m: int, p: float) -> float:
    """Linear-interpolated quantile ``p`` of the ``m`` sorted values (as ``np.quantile``)."""
    h = (m - 1) * min(max(p, 0.0), 1.0)
    lo = int(h)  # h >= 0: truncation is the floor (np.floor cost ~1 us a call, every bar)
    hi = min(lo + 1, m - 1)
    return sorted_win[lo] + (sorted_win[hi] - sorted_win[lo]) * (h - lo)


def _vol_bounds(sorted_win: list[float], method, thresholds, shift: float = 0.0) -> tuple[float, float]:
    """(low/medium, medium/high) boundaries; ``shift`` moves them (quantile points for terciles,
    a relative fraction of the value for fixed thresholds)."""
    if method == "tercile":
        m = len(sorted_win)
        return _tercile_q(sorted_win, m, 1.0 / 3.0 + shift), _tercile_q(sorted_win, m, 2.0 / 3.0 + shift)
    return thresholds[0] * (1.0 + shift), thresholds[1] * (1.0 + shift)


def _vol_label(
    sorted_win: list[float], v: float, method, thresholds, hysteresis: float = 0.0, current: str | None = None
) -> str:
    """Low / medium / high label of ``v``; with ``hysteresis`` a move away from ``current`` must
    cross the boundary shifted by the band in the direction of the move."""
    q1, q2 = _vol_bounds(sorted_win, method, thresholds)
    plain = "low" if v <= q1 else ("high" if v > q2 else "medium")
    if hysteresis <= 0 or current is None or plain == current:
        return plain
    k, j = _VOL_ORDER[current], _VOL_ORDER[plain]
    if j > k:  # moving up: the raised boundaries must be crossed
        u1, u2 = _vol_bounds(sorted_win, method, thresholds, hysteresis)
        return VOL_STATES[max(2 if v > u2 else (1 if v > u1 else 0), k)]
    d1, d2 = _vol_bounds(sorted_win, method, thresholds, -hysteresis)  # moving down: lowered ones
    return VOL_STATES[min(0 if v <= d1 else (1 if v <= d2 else 2), k)]


def _check_vol_method(method, thresholds):
    if isinstance(method, (tuple, list)):
        thresholds, method = tuple(method), "thresholds"
    if method == "thresholds":
        if thresholds is None or len(thresholds) != 2 or not thresholds[0] <= thresholds[1]:
            raise DataError(
                f"volatility state: thresholds must be (low_max, high_min) increasing, got {thresholds}"
            )
        return "thresholds", (float(thresholds[0]), float(thresholds[1]))
    if method != "tercile":
        raise DataError(f"volatility state: method must be 'tercile' or thresholds, got {method!r}")
    return "tercile", None


# ------------------------------------------------------------------------------------- vectorized
def composite_leading_indicator(
    macro: pd.DataFrame,
    publication_lag: int = 1,
    min_periods: int = 12,
    spec: MacroSpec | None = None,
) -> pd.Series:
    """Composite leading indicator: first principal component of expanding-standardized indicators.

    Parameters
    ----------
    macro : DataFrame, shape (M, k)
        Monthly leading indicators, index = first day of the reference month, higher = stronger growth.
        Missing values are forward-filled (a late release repeats the last value); leading rows with
        NaN are dropped.
    publication_lag : int
        Months after the end of the reference month before the value is usable.
    min_periods : int
        Months of history before the first CLI value.
    spec : MacroSpec, optional
        Columns and transforms (:mod:`indicators.macro`), applied to the reference-month series
        before the lag; None: the columns as given (levels).

    Returns
    -------
    Series
        Indexed by the availability date (first day of month ``m + 1 + publication_lag``), named
        ``"cli"``; ``.attrs["reference_month"]`` lists the reference months.
    """
    if not isinstance(macro, pd.DataFrame) or macro.empty:
        raise DataError("composite_leading_indicator: macro must be a non-empty DataFrame")
    if spec is not None:
        macro = _monthly(macro)
        macro = transform_macro(macro, spec)
    x = macro.sort_index().ffill().dropna(how="any")
    vals = x.to_numpy(dtype=float)
    out, avail, refs = [], [], []
    z_rows: list[np.ndarray] = []
    for i in range(vals.shape[0]):
        z_rows.append(_standardize_last(vals[: i + 1]) if i >= 1 else np.zeros(vals.shape[1]))
        if i + 1 >= min_periods:
            out.append(_pc1_last(np.asarray(z_rows[1:])) if len(z_rows) > 1 else 0.0)
            avail.append(_available_from(x.index[i], publication_lag))
            refs.append(_month_start(x.index[i]))
    s = pd.Series(
        out, index=pd.DatetimeIndex(avail, name="available_from"), name="cli", dtype=float
    )
    s.attrs["reference_month"] = refs
    return s


def price_proxy_cli(prices: pd.Series, proxy_months: int = 12) -> pd.Series:
    """Price-based stand-in for the CLI (see module docstring), indexed by availability date.

    Parameters
    ----------
    prices : Series
        Daily equity closes (total-return level).
    """
    p = prices.dropna()
    if p.empty:
        raise DataError("price_proxy_cli: no prices")
    months = p.index.to_period("M")
    last = p.groupby(months).last()
    logc: list[float] = []
    vals, avail = [], []
    for per, c in last.items():
        logc.append(float(np.log(c)))
        v = _proxy_last(logc, proxy_months)
        if v is not None:
            vals.append(v)
            avail.append(per.to_timestamp() + pd.DateOffset(months=1))
    return pd.Series(
        vals, index=pd.DatetimeIndex(avail, name="available_from"), name="price_proxy", dtype=float
    )


def classify_cycle(cli: pd.Series, k: int = 3, trend_window: int | None = None) -> pd.Series:
    """Phase labels from a (monthly) CLI series, same index; None for the first ``k`` values."""
    if k < 1:
        raise DataError("classify_cycle: k must be >= 1")
    vals = cli.dropna().to_numpy(dtype=float)
    labels = [_classify_last(list(vals[: i + 1]), k, trend_window) for i in range(len(vals))]
    return pd.Series(labels, index=cli.dropna().index, name="phase", dtype=object)


def classify_volatility_state(
    index: pd.Series,
    lookback: int = 756,
    method="tercile",
    thresholds: tuple[float, float] | None = None,
    min_periods: int = 252,
    hysteresis: float = 0.0,
) -> pd.Series:
    """Low / medium / high state of a daily series against its trailing distribution.

    Parameters
    ----------
    index : Series
        Daily implied-volatility index (or the stand-in). NaN bars keep the previous label.
    lookback : int
        Trailing window (bars, including the current one).
    method : "tercile", "thresholds" or a (low_max, high_min) tuple
    thresholds : (float, float), optional
        Used with ``method="thresholds"``.
    min_periods : int
        Observations before the first tercile label (thresholds label from the first value).
    hysteresis : float
        Band around the boundaries a move must cross (see :class:`VolatilityStateClassifier`).

    Returns
    -------
    Series of str (None before ready), same index.
    """
    clf = VolatilityStateClassifier(
        lookback, method, thresholds, min_periods=min_periods, hysteresis=hysteresis
    )
    # Independent bookkeeping from the online class: the same label helper on a sorted window.
    meth, thr, min_periods = clf.method, clf.thresholds, clf.min_periods
    out: list[str | None] = []
    win: deque[float] = deque()
    srt: list[float] = []
    last = None
    for v in index.to_numpy(dtype=float):
        if np.isfinite(v):
            win.append(v)
            bisect.insort(srt, v)
            if len(win) > lookback:
                old = win.popleft()
                del srt[bisect.bisect_left(srt, old)]
            if meth == "thresholds" or len(win) >= min_periods:
                last = _vol_label(srt, v, meth, thr, clf.hysteresis, last)
        out.append(last)
    return pd.Series(out, index=index.index, name="vol_state", dtype=object)


def align_to_days(series: pd.Series, days: pd.DatetimeIndex) -> pd.Series:
    """Value in force on each day: the last value whose (availability) index is <= the day."""
    s = series.sort_index()
    pos = s.index.searchsorted(days, side="right") - 1
    vals = np.asarray(s.to_numpy(), dtype=object)
    out = [vals[p] if p >= 0 else None for p in pos]
    return pd.Series(out, index=days, dtype=object)


def daily_cycle_phase(
    days: pd.DatetimeIndex,
    macro: pd.DataFrame | None = None,
    equity_prices: pd.Series | None = None,
    k: int = 3,
    publication_lag: int = 1,
    min_periods: int = 12,
    trend_window: int | None = None,
    proxy_months: int = 12,
    spec: MacroSpec | None = None,
    stale_months: int | None = 3,
) -> pd.DataFrame:
    """Daily phase and its source (``"macro"`` / ``"price_proxy"`` / None) on ``days``.

    ``spec`` and ``stale_months`` as :class:`CycleClassifier`: on each day the CLI is the one of the
    series not yet stale (recomputed over their whole history), so this equals, day for day,
    :class:`CycleClassifier` fed the same data (tested).
    """
    days = pd.DatetimeIndex(days)
    phase = pd.Series([None] * len(days), index=days, dtype=object)
    source = pd.Series([None] * len(days), index=days, dtype=object)
    if equity_prices is not None:
        px = equity_prices.reindex(days)
        pc = classify_cycle(price_proxy_cli(px, proxy_months), k, trend_window)
        pp = align_to_days(pc, days)
        ok = pp.notna()
        phase[ok], source[ok] = pp[ok], "price_proxy"
    if macro is not None:
        raw = _monthly(macro)
        x = raw if spec is None else transform_macro(raw, spec)
        drop = _stale_from(raw[list(x.columns)], days, publication_lag, stale_months)
        cuts = sorted({0, len(days), *drop.values()})
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            active = [c for c in x.columns if drop.get(c, len(days)) > lo]
            if not active or lo == hi:
                continue
            cli = composite_leading_indicator(x[active], publication_lag, min_periods)
            mp = align_to_days(classify_cycle(cli, k, trend_window), days[lo:hi])
            ok = mp.notna()
            phase.iloc[lo:hi] = phase.iloc[lo:hi].where(~ok, mp)
            source.iloc[lo:hi] = source.iloc[lo:hi].where(~ok, "macro")
    return pd.DataFrame({"phase": phase, "source": source})


def _monthly(macro: pd.DataFrame) -> pd.DataFrame:
    """Index moved to the first day of each reference month, sorted."""
    m = macro.copy()
    m.index = pd.DatetimeIndex(m.index).to_period("M").to_timestamp()
    return m.sort_index()


def _stale_from(
    raw: pd.DataFrame, days: pd.DatetimeIndex, publication_lag: int, stale_months: int | None
) -> dict[str, int]:
    """Position in ``days`` from which each stale series is left out (see :class:`CycleClassifier`)."""
    if stale_months is None or len(days) == 0:
        return {}
    newest = np.array([d.year * 12 + d.month - 1 for d in days]) - 1 - publication_lag
    months = np.array([month_index(t) for t in raw.index])
    # the CLI starts counting a series once the file's first month is released (first row used)
    started = newest >= months.min()
    out = {}
    for col in raw.columns:
        fin = months[np.isfinite(raw[col].to_numpy(dtype=float))]
        pos = np.searchsorted(fin, newest, side="right") - 1
        last = np.where(pos >= 0, fin[np.clip(pos, 0, None)] if len(fin) else 0, -(10**9))
        bad = np.flatnonzero(started & (pos >= 0) & (newest - last > stale_months))
        if bad.size:
            out[str(col)] = int(bad[0])
    return out


# ----------------------------------------------------------------------------------------- online
#: CycleClassifier attributes that are caches, left out of its state.
_CYCLE_CACHES = ("_next_release", "_month_key")

#: Float mirrors of each online classifier's history (see ``CycleClassifier._mirror``).
_MIRRORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class CycleClassifier:
    """Online economic-cycle phase, bar by bar, with the timing rules of the module docstring.

    Feed raw macro rows with :meth:`add_macro` at any time (they are held back until usable) and
    call :meth:`update` once per bar with the bar's date (and the equity close for the price proxy).

    Parameters
    ----------
    k, publication_lag, min_periods, trend_window, proxy_months
        As :func:`daily_cycle_phase`.
    spec : MacroSpec, optional
        Columns (in the order of the rows given to :meth:`add_macro`), transform and sign of each
        (:mod:`indicators.macro`); each month is transformed when it is released, from raw months
        ``<=`` it. None: the rows are used as levels.
    stale_months : int or None
        A series whose last value is more than this many months older than the newest reference
        month published at a bar (the bar's month - 1 - ``publication_lag``) leaves the indicator
        from that bar on (one :class:`~indicators.macro.MacroInputWarning` each; ``notes`` and
        ``dropped`` record it) and the CLI history is recomputed without it. None: never.

    Attributes
    ----------
    phase : str or None
    source : "macro", "price_proxy" or None
    cli : float or None
        Latest usable CLI (macro) value.
    notes : list of str
        Stale-series notes.
    dropped : dict
        ``{column: "YYYY-MM-DD"}``, the bar from which each stale series is left out.
    """

    def __init__(
        self,
        k: int = 3,
        publication_lag: int = 1,
        min_periods: int = 12,
        trend_window: int | None = None,
        proxy_months: int = 12,
        *,
        spec: MacroSpec | None = None,
        stale_months: int | None = 3,
    ):
        if k < 1 or publication_lag < 0 or min_periods < 2:
            raise DataError("CycleClassifier: need k >= 1, publication_lag >= 0, min_periods >= 2")
        if stale_months is not None and (isinstance(stale_months, bool) or int(stale_months) < 1):
            raise ConfigError(f"macro_stale_months must be an integer >= 1, got {stale_months!r}")
        self.k, self.publication_lag, self.min_periods = (
            int(k),
            int(publication_lag),
            int(min_periods),
        )
        self.trend_window, self.proxy_months = trend_window, int(proxy_months)
        self.stale_months = None if stale_months is None else int(stale_months)
        self._columns: list[str] | None = None if spec is None else list(spec.columns)
        self._transforms: list[str] | None = None if spec is None else list(spec.transforms)
        self._signs: list[float] | None = None if spec is None else list(spec.signs)
        self._pending: dict[str, list[float]] = {}
        self._next_release: pd.Timestamp | None = None
        self._raw: list[tuple[int, list[float]]] = []  # released raw rows, the last 13 months
        self._rows: list[list[float]] = []  # released transformed rows, every column
        self._ffill: list[float] = []
        self._last_finite: list[int | None] = []
        self._active: list[bool] = []
        self._checked_month: int | None = None
        self.notes: list[str] = []
        self.dropped: dict[str, str] = {}
        self._x: list[list[float]] = []
        self._z: list[list[float]] = []
        self._cli: list[float] = []
        self._last_ref: str | None = None
        self._logc: list[float] = []
        self._proxy: list[float] = []
        self._cur_month: str | None = None
        self._cur_close: float | None = None
        self.macro_phase: str | None = None
        self.proxy_phase: str | None = None
        self.phase: str | None = None
        self.source: str | None = None
        self._warned = False

    @property
    def cli(self) -> float | None:
        return self._cli[-1] if self._cli else None

    def add_macro(self, reference_month, values) -> None:
        """Queue the raw indicators of ``reference_month`` (any date in the month); used when available.

        ``values`` follow the spec's column order. NaN entries repeat the series' previous value
        after the transform (as :func:`composite_leading_indicator`).
        """
        key = _month_start(reference_month).strftime("%Y-%m-%d")
        if self._last_ref is not None and key <= self._last_ref:
            raise DataError(
                f"CycleClassifier.add_macro: month {key} is not after the last used month"
            )
        row = [float(v) for v in np.asarray(values, dtype=float).ravel()]
        if self._columns is None:
            self._columns = [f"x{i}" for i in range(len(row))]
        if self._transforms is None or self._signs is None:
            self._transforms, self._signs = ["level"] * len(row), [1.0] * len(row)
        if len(row) != len(self._columns):
            raise DataError(
                f"CycleClassifier.add_macro: month {key} has {len(row)} values, "
                f"expected {len(self._columns)} ({', '.join(self._columns)})"
            )
        self._pending[key] = row
        self._next_release = None  # recomputed at the next bar

    def _transform_row(self, month: int, raw: list[float]) -> list[float]:
        back = dict(self._raw)
        out = []
        for j, (tr, sg) in enumerate(zip(self._transforms, self._signs)):
            prev = back.get(month - TRANSFORMS[tr])
            out.append(transform_value(raw[j], math.nan if prev is None else prev[j], tr, sg))
        return out

    def _push(self, ffilled: np.ndarray) -> bool:
        """Append one forward-filled row of the active columns to the CLI; False if incomplete."""
        act = np.asarray(self._active, dtype=bool)
        row = ffilled[act]
        if row.size == 0 or not np.all(np.isfinite(row)):
            return False  # leading incomplete rows are dropped
        self._x.append(row.tolist())
        xs = self._mirror("_xa", self._x, row)
        z = _standardize_last(xs) if len(self._x) >= 2 else np.zeros(xs.shape[1])
        self._z.append(z.tolist())
        zs = self._mirror("_za", self._z, z)
        if len(self._x) >= self.min_periods:
            self._cli.append(_pc1_last(zs[1:]) if len(self._z) > 1 else 0.0)
            self.macro_phase = _classify_last(self._cli, self.k, self.trend_window)
        return True

    def _mirror(self, attr: str, rows: list[list[float]], last: np.ndarray) -> np.ndarray:
        """``np.asarray(rows)`` without converting the whole history at every push.

        ``rows`` (the serialized history) has just had ``last`` appended; a float array mirror of
        it, grown by doubling, is kept under ``attr`` in :data:`_MIRRORS` (outside the instance:
        never part of its state, its pickle or its paper-trading encoding) and rebuilt from
        ``rows`` whenever it is out of step (after :meth:`_drop_stale`, a restored state). Returns
        a C-contiguous view of shape (len(rows), width): the same values and layout as
        ``np.asarray(rows)``, so every statistic over it is bit-identical.
        """
        m = len(rows)
        mirrors = _MIRRORS.setdefault(self, {})
        buf, filled = mirrors.get(attr) or (None, -1)
        if buf is None or filled != m - 1 or buf.shape[1] != last.shape[0]:
            buf = np.asarray(rows, dtype=float)
            buf = np.concatenate([buf, np.empty_like(buf)])
        else:
            if m > buf.shape[0]:
                buf = np.concatenate([buf, np.empty_like(buf)])
            buf[m - 1] = last
        mirrors[attr] = (buf, m)
        return buf[:m]

    def _release(self, date: pd.Timestamp) -> bool:
        # Fast exit: nothing pending is usable before the earliest availability date.
        nxt = getattr(self, "_next_release", None)
        if nxt is not None and date < nxt:
            return False
        changed = False
        self._next_release = None
        for key in sorted(self._pending):
            avail = _available_from(key, self.publication_lag)
            if avail > date:
                self._next_release = avail
                break
            raw = self._pending.pop(key)
            month = month_index(key)
            if not self._active:
                n = len(raw)
                self._active, self._last_finite, self._ffill = [True] * n, [None] * n, [math.nan] * n
            row = self._transform_row(month, raw)
            self._raw = [(m, r) for m, r in self._raw if m > month - 13] + [(month, raw)]
            for j, v in enumerate(raw):
                if math.isfinite(v):
                    self._last_finite[j] = month
            self._rows.append(row)
            ff = np.where(np.isfinite(row), row, np.asarray(self._ffill, dtype=float))
            self._ffill = ff.tolist()
            self._last_ref = key
            changed = self._push(ff) or changed
        return changed

    def _drop_stale(self, date: pd.Timestamp) -> None:
        """Leave out every active series whose last value is too old at this bar (see class doc)."""
        newest = month_index(date) - 1 - self.publication_lag
        stale = [
            j
            for j, (on, last) in enumerate(zip(self._active, self._last_finite))
            if on and last is not None and newest - last > self.stale_months
        ]
        if not stale:
            return
        for j in stale:
            self._active[j] = False
            col, last = self._columns[j], self._last_finite[j]
            self.dropped[col] = date.strftime("%Y-%m-%d")
            msg = (
                f"macro series '{col}': last value {last // 12:04d}-{last % 12 + 1:02d} is more than "
                f"{self.stale_months} months older than the newest published month at "
                f"{date.date()}; left out of the leading indicator from then on"
            )
            self.notes.append(msg)
            warnings.warn(msg, MacroInputWarning, stacklevel=4)
        # Recompute the CLI history over the series still in use (only months already released).
        self._x, self._z, self._cli, self.macro_phase = [], [], [], None
        _MIRRORS.pop(self, None)
        ff = np.full(len(self._active), np.nan)
        for row in self._rows:
            ff = np.where(np.isfinite(row), row, ff)
            self._push(ff)

    def update(self, date, equity_close: float | None = None) -> str | None:
        """Advance to the bar dated ``date``; returns the phase in force (None before any is known)."""
        date = pd.Timestamp(date)
        mi = date.year * 12 + date.month - 1
        key = self.__dict__.get("_month_key")  # a cache: the month's label, made once a month
        if key is None or key[0] != mi:
            key = self._month_key = (mi, f"{date.year:04d}-{date.month:02d}")  # as strftime("%Y-%m")
        month = key[1]
        if self._cur_month is not None and month != self._cur_month and self._cur_close is not None:
            self._logc.append(float(np.log(self._cur_close)))
            v = _proxy_last(self._logc, self.proxy_months)
            if v is not None:
                self._proxy.append(v)
                self.proxy_phase = _classify_last(self._proxy, self.k, self.trend_window)
        if self._cur_month != month:
            self._cur_month, self._cur_close = month, None
        if equity_close is not None and math.isfinite(equity_close):
            self._cur_close = float(equity_close)
        if self._pending:
            nxt = self.__dict__.get("_next_release")
            if nxt is None or not date < nxt:  # else nothing pending is usable yet (see _release)
                self._release(date)
        if self.stale_months is not None and self._active and mi != self._checked_month:
            self._checked_month = mi
            self._drop_stale(date)
        if self.macro_phase is not None:
            self.phase, self.source = self.macro_phase, "macro"
        elif self.proxy_phase is not None:
            self.phase, self.source = self.proxy_phase, "price_proxy"
            if not self._warned:
                self._warned = True
                warnings.warn(
                    "no usable macro data: the economic phase uses the price proxy (equity trend)",
                    SignalFallbackWarning,
                    stacklevel=2,
                )
        else:
            self.phase, self.source = None, None
        return self.phase

    def get_state(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in _CYCLE_CACHES}
        d["_pending"] = dict(self._pending)
        d["_raw"] = [[m, list(r)] for m, r in self._raw]
        d["dropped"] = dict(self.dropped)
        return {"version": 2, "state": d}

    @classmethod
    def from_state(cls, state: dict) -> CycleClassifier:
        if state.get("version") not in (1, 2):
            raise StateError("CycleClassifier: unknown state version")
        obj = cls.__new__(cls)
        obj.__setstate__(
            {k: (list(v) if isinstance(v, list) else v) for k, v in state["state"].items()}
        )
        obj._pending = dict(state["state"]["_pending"])
        obj._raw = [(int(m), list(r)) for m, r in obj._raw]
        return obj

    def __setstate__(self, d: dict) -> None:
        d = {k: v for k, v in d.items() if k != "_month_key"}  # a cache, rebuilt on use
        # States (and pickles) written before the macro contract: levels, no stale check.
        if "_active" not in d:
            d = dict(d)
            width = len(d["_x"][0]) if d.get("_x") else 0
            d.update(
                stale_months=None,
                _columns=None,
                _transforms=None,
                _signs=None,
                _raw=[],
                _rows=[list(r) for r in d.get("_x", [])],
                _ffill=list(d["_x"][-1]) if d.get("_x") else [],
                _last_finite=[None] * width,
                _active=[True] * width,
                _checked_month=None,
                notes=[],
                dropped={},
            )
        self.__dict__.update(d)


class VolatilityStateClassifier:
    """Online low / medium / high state (see module docstring); ``update(value) -> label``.

    Parameters
    ----------
    lookback : int
    method : "tercile", "thresholds" or (low_max, high_min)
    thresholds : (float, float), optional
    min_periods : int
    source : "vol_index" or "egarch_equity"
        What the values are (recorded for the output; the stand-in warns once).
    hysteresis : float
        Band around the boundaries (default 0: none). Leaving the state in force needs the value
        beyond its boundary moved by the band in the direction of the move: in quantile points
        for terciles (0.1: up from low only above the 43rd percentile of the window, back down
        only at or below the 23rd), as a relative fraction of the value for fixed thresholds.
    """

    def __init__(
        self,
        lookback: int = 756,
        method="tercile",
        thresholds: tuple[float, float] | None = None,
        *,
        min_periods: int = 252,
        source: str = "vol_index",
        hysteresis: float = 0.0,
    ):
        if lookback < 3 or min_periods < 1:
            raise DataError("VolatilityStateClassifier: need lookback >= 3 and min_periods >= 1")
        if source not in ("vol_index", "egarch_equity"):
            raise DataError(f"VolatilityStateClassifier: unknown source {source!r}")
        if not 0.0 <= float(hysteresis) < 1.0 / 3.0:
            raise DataError(f"VolatilityStateClassifier: hysteresis must be in [0, 1/3), got {hysteresis}")
        self.method, self.thresholds = _check_vol_method(method, thresholds)
        self.lookback, self.min_periods, self.source = (
            int(lookback),
            int(min(min_periods, lookback)),
            source,
        )
        self.hysteresis = float(hysteresis)
        self._win: list[float] = []
        self._sorted: list[float] = []
        self.state: str | None = None
        self._warned = False

    def update(self, value: float) -> str | None:
        """Add the bar's value (NaN: state unchanged) and return the state in force."""
        if self.source == "egarch_equity" and not self._warned:
            self._warned = True
            warnings.warn(
                "no implied-volatility index: the volatility state uses the equity EGARCH volatility",
                SignalFallbackWarning,
                stacklevel=2,
            )
        v = float(value)
        if not math.isfinite(v):
            return self.state
        self._win.append(v)
        bisect.insort(self._sorted, v)
        if len(self._win) > self.lookback:
            old = self._win.pop(0)
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        if self.method == "thresholds" or len(self._win) >= self.min_periods:
            self.state = _vol_label(
                self._sorted, v, self.method, self.thresholds, self.hysteresis, self.state
            )
        return self.state

    def get_state(self) -> dict:
        return {
            "version": 1,
            "state": {
                k: (list(v) if isinstance(v, (list, tuple)) else v)
                for k, v in self.__dict__.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict) -> VolatilityStateClassifier:
        if state.get("version") != 1:
            raise StateError("VolatilityStateClassifier: unknown state version")
        obj = cls.__new__(cls)
        obj.__dict__.update(state["state"])
        obj._win, obj._sorted = list(obj._win), list(obj._sorted)
        obj.__dict__.setdefault("hysteresis", 0.0)
        if obj.thresholds is not None:
            obj.thresholds = tuple(obj.thresholds)
        return obj
