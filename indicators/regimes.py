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
from collections import deque

import numpy as np
import pandas as pd

from drb.errors import DataError, SignalFallbackWarning, StateError

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
    mu = x_hist.mean(axis=0)
    sd = x_hist.std(axis=0, ddof=1)
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


def _vol_bounds(sorted_win: list[float], method, thresholds, shift: float = 0.0) -> tuple[float, float]:
    """(low/medium, medium/high) boundaries; ``shift`` moves them (quantile points for terciles,
    a relative fraction of the value for fixed thresholds)."""
    if method == "tercile":
        m = len(sorted_win)

        def q(p):
            h = (m - 1) * min(max(p, 0.0), 1.0)
            lo = int(np.floor(h))
            hi = min(lo + 1, m - 1)
            return sorted_win[lo] + (sorted_win[hi] - sorted_win[lo]) * (h - lo)

        return q(1.0 / 3.0 + shift), q(2.0 / 3.0 + shift)
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
    macro: pd.DataFrame, publication_lag: int = 1, min_periods: int = 12
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

    Returns
    -------
    Series
        Indexed by the availability date (first day of month ``m + 1 + publication_lag``), named
        ``"cli"``; ``.attrs["reference_month"]`` lists the reference months.
    """
    if not isinstance(macro, pd.DataFrame) or macro.empty:
        raise DataError("composite_leading_indicator: macro must be a non-empty DataFrame")
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
) -> pd.DataFrame:
    """Daily phase and its source (``"macro"`` / ``"price_proxy"`` / None) on ``days``.

    Equal, day for day, to :class:`CycleClassifier` fed the same data (tested).
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
        mc = classify_cycle(
            composite_leading_indicator(macro, publication_lag, min_periods), k, trend_window
        )
        mp = align_to_days(mc, days)
        ok = mp.notna()
        phase[ok], source[ok] = mp[ok], "macro"
    return pd.DataFrame({"phase": phase, "source": source})


# ----------------------------------------------------------------------------------------- online
class CycleClassifier:
    """Online economic-cycle phase, bar by bar, with the timing rules of the module docstring.

    Feed macro rows with :meth:`add_macro` at any time (they are held back until usable) and call
    :meth:`update` once per bar with the bar's date (and the equity close for the price proxy).

    Attributes
    ----------
    phase : str or None
    source : "macro", "price_proxy" or None
    cli : float or None
        Latest usable CLI (macro) value.
    """

    def __init__(
        self,
        k: int = 3,
        publication_lag: int = 1,
        min_periods: int = 12,
        trend_window: int | None = None,
        proxy_months: int = 12,
    ):
        if k < 1 or publication_lag < 0 or min_periods < 2:
            raise DataError("CycleClassifier: need k >= 1, publication_lag >= 0, min_periods >= 2")
        self.k, self.publication_lag, self.min_periods = (
            int(k),
            int(publication_lag),
            int(min_periods),
        )
        self.trend_window, self.proxy_months = trend_window, int(proxy_months)
        self._pending: dict[str, list[float]] = {}
        self._next_release: pd.Timestamp | None = None
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
        """Queue the indicators of ``reference_month`` (any date in the month); used when available.

        NaN entries repeat the previous month's value (as :func:`composite_leading_indicator`).
        """
        key = _month_start(reference_month).strftime("%Y-%m-%d")
        if self._last_ref is not None and key <= self._last_ref:
            raise DataError(
                f"CycleClassifier.add_macro: month {key} is not after the last used month"
            )
        self._pending[key] = [float(v) for v in np.asarray(values, dtype=float)]
        self._next_release = None  # recomputed at the next bar

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
            row = np.asarray(self._pending.pop(key), dtype=float)
            if self._x:
                row = np.where(np.isfinite(row), row, np.asarray(self._x[-1]))
            if not np.all(np.isfinite(row)):
                continue  # leading incomplete rows are dropped
            self._x.append(row.tolist())
            xs = np.asarray(self._x)
            z = _standardize_last(xs) if len(self._x) >= 2 else np.zeros(xs.shape[1])
            self._z.append(z.tolist())
            self._last_ref = key
            if len(self._x) >= self.min_periods:
                self._cli.append(_pc1_last(np.asarray(self._z[1:])) if len(self._z) > 1 else 0.0)
                self.macro_phase = _classify_last(self._cli, self.k, self.trend_window)
                changed = True
        return changed

    def update(self, date, equity_close: float | None = None) -> str | None:
        """Advance to the bar dated ``date``; returns the phase in force (None before any is known)."""
        date = pd.Timestamp(date)
        month = f"{date.year:04d}-{date.month:02d}"  # as strftime("%Y-%m"), several times faster
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
            self._release(date)
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
        d = {k: v for k, v in self.__dict__.items() if k != "_next_release"}  # a cache
        d["_pending"] = dict(self._pending)
        return {"version": 1, "state": d}

    @classmethod
    def from_state(cls, state: dict) -> CycleClassifier:
        if state.get("version") != 1:
            raise StateError("CycleClassifier: unknown state version")
        obj = cls.__new__(cls)
        obj.__dict__.update(
            {k: (list(v) if isinstance(v, list) else v) for k, v in state["state"].items()}
        )
        obj._pending = dict(state["state"]["_pending"])
        return obj


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
        if not np.isfinite(v):
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
