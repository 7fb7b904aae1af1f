"""The aligned market panel every runner works on: prices, optional signals, asset classes."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from drb.errors import DataError, DataWarning
from drb.names import did_you_mean
from feeds.loaders import Source, load_macro, load_prices, load_vol_index

__all__ = ["ASSET_CLASSES", "MarketData", "align_market", "load_market", "resolve_asset_classes"]

#: The asset classes the budget matrix knows.
ASSET_CLASSES: tuple[str, ...] = ("equity", "bond", "commodity", "real_estate")


@dataclass
class MarketData:
    """An aligned, validated market panel.

    Attributes
    ----------
    prices : DataFrame, shape (T, n)
        Positive levels on one business calendar, no NaN.
    asset_classes : dict
        ``{asset column: class}`` with classes from :data:`ASSET_CLASSES`.
    vol_index : Series or None, shape (T,)
        Implied-volatility index on the same calendar (NaN before it starts), or None.
    macro : DataFrame or None, shape (M, k)
        Monthly indicators indexed by reference month (publication lag not yet applied), or None.
    notes : list of str
        What alignment did (trimmed spans, filled cells), for the run's report.
    sources : dict
        Where each part came from (paths or "DataFrame"/"synthetic").
    """

    prices: pd.DataFrame
    asset_classes: dict[str, str]
    vol_index: pd.Series | None = None
    macro: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def assets(self) -> list[str]:
        """Asset names (price columns), in order."""
        return list(self.prices.columns)

    @property
    def returns(self) -> pd.DataFrame:
        """Daily simple returns, shape (T-1, n)."""
        return self.prices.pct_change().iloc[1:]

    def truncate(self, end: str | pd.Timestamp) -> MarketData:
        """The same market cut after ``end`` (inclusive), for no-look-ahead checks."""
        end = pd.Timestamp(end)
        macro = None if self.macro is None else self.macro.loc[:end]
        vol = None if self.vol_index is None else self.vol_index.loc[:end]
        return MarketData(
            prices=self.prices.loc[:end],
            asset_classes=dict(self.asset_classes),
            vol_index=vol,
            macro=macro,
            notes=list(self.notes),
            sources=dict(self.sources),
        )

    @classmethod
    def from_synthetic(cls, market: object) -> MarketData:
        """Wrap a :class:`feeds.synthetic.SyntheticMarket`."""
        prices = market.prices  # type: ignore[attr-defined]
        return cls(
            prices=prices.copy(),
            asset_classes={a: a for a in prices.columns},
            vol_index=market.vol_index.copy(),  # type: ignore[attr-defined]
            macro=market.macro.copy(),  # type: ignore[attr-defined]
            notes=[f"embedded synthetic market, seed {market.seed}"],  # type: ignore[attr-defined]
            sources={"prices": "synthetic", "vol_index": "synthetic", "macro": "synthetic"},
        )


def _no_mapping_hint(assets_from: str) -> str:
    if assets_from == "--assets":
        return "map columns to classes with --assets COLUMN=CLASS,..."
    return "map assets to classes in the config's [assets] table"


def resolve_asset_classes(
    columns: list[str],
    mapping: Mapping[str, str] | None = None,
    *,
    label: str = "prices",
    assets_from: str = "[assets]",
) -> dict[str, str]:
    """Map each price column to an asset class.

    Without a mapping the column names must be class names. A mapping must name every column, and
    only known classes. ``assets_from`` is how messages name the mapping (``"[assets]"`` for a
    config, ``"--assets"`` for the command line).
    """
    if mapping is None or len(mapping) == 0:
        unknown = [c for c in columns if c not in ASSET_CLASSES]
        if unknown:
            raise DataError(
                f"{label}: column '{unknown[0]}' is not an asset class ({', '.join(ASSET_CLASSES)}); "
                + _no_mapping_hint(assets_from)
            )
        return {c: c for c in columns}
    extra = [k for k in mapping if k not in columns]
    if extra:
        raise DataError(f"{assets_from} {extra[0]}: no such column in {label}{did_you_mean(extra[0], columns)}")
    out: dict[str, str] = {}
    for col in columns:
        if col not in mapping:
            raise DataError(f"{label}: column '{col}' has no asset class in the {assets_from} mapping")
        cls = mapping[col]
        if cls not in ASSET_CLASSES:
            raise DataError(
                f"{label}: column '{col}' is mapped to unknown class '{cls}' by {assets_from}"
                f"{did_you_mean(cls, ASSET_CLASSES)} (known: {', '.join(ASSET_CLASSES)})"
            )
        out[col] = cls
    return out


def _mapped_columns(
    prices: pd.DataFrame, mapping: Mapping[str, str], label: str, assets_from: str, notes: list[str]
) -> pd.DataFrame:
    """The columns the mapping lists (each must exist); the others dropped with one note."""
    missing = [k for k in mapping if k not in prices.columns]
    if missing:
        cols = [str(c) for c in prices.columns]
        raise DataError(f"{assets_from} {missing[0]}: no such column in {label}{did_you_mean(missing[0], cols)}")
    ignored = [c for c in prices.columns if c not in mapping]
    if ignored:
        notes.append(f"{label}: {len(ignored)} column{'s' if len(ignored) > 1 else ''} not listed in {assets_from} ignored")
        prices = prices[[c for c in prices.columns if c in mapping]]
    return prices


def _first_long_gap(col: pd.Series, limit: int) -> tuple[pd.Timestamp, int] | None:
    isna = col.isna().to_numpy()
    if not isna.any():
        return None
    # runs of NaN strictly inside the valid span
    first, last = col.first_valid_index(), col.last_valid_index()
    inner = isna & (col.index > first) & (col.index < last)
    if not inner.any():
        return None
    run_start = None
    run = 0
    for i, flag in enumerate(inner):
        if flag:
            if run == 0:
                run_start = i
            run += 1
            if run > limit:
                return col.index[run_start], run
        else:
            run = 0
    return None


def align_market(
    prices: pd.DataFrame,
    *,
    vol_index: pd.Series | None = None,
    macro: pd.DataFrame | None = None,
    asset_classes: Mapping[str, str] | None = None,
    ffill_limit: int = 5,
    min_bars: int = 0,
    labels: Mapping[str, str] | None = None,
    assets_from: str = "[assets]",
) -> MarketData:
    """Align assets and signals on one calendar.

    The calendar is the union of the assets' dates between the latest first quote and the earliest
    last quote (so every asset is quoted from the first bar). Interior gaps are forward-filled up to
    ``ffill_limit`` bars; a longer gap is an error naming the column and where it starts. The
    volatility index is put on the same calendar (forward-filled up to ``ffill_limit`` bars; NaN
    before it starts). Macro data stays monthly.

    Parameters
    ----------
    prices : DataFrame, shape (T, n)
        Output of :func:`feeds.load_prices`.
    vol_index : Series, optional
    macro : DataFrame, optional
    asset_classes : mapping, optional
        ``{column: class}``; required when the columns are not class names. Columns it does not
        list are ignored (one note says how many); every column it lists must exist.
    ffill_limit : int
        Longest gap (in bars) that is forward-filled.
    min_bars : int
        Minimum number of aligned bars the configured windows need; fewer is an error.
    labels : mapping, optional
        How messages name the sources (``{"prices": path, ...}``).
    assets_from : str
        How messages name the mapping: ``"[assets]"`` (a config) or ``"--assets"`` (the CLI).

    Returns
    -------
    MarketData
    """
    labels = dict(labels or {})
    plabel = labels.get("prices", "prices")
    if ffill_limit < 0:
        raise DataError(f"ffill_limit must be >= 0, got {ffill_limit}")
    notes: list[str] = []
    if asset_classes:
        prices = _mapped_columns(prices, asset_classes, plabel, assets_from, notes)
    classes = resolve_asset_classes(list(prices.columns), asset_classes, label=plabel, assets_from=assets_from)
    panel = _common_panel(prices, plabel, ffill_limit, min_bars, notes)
    end = panel.index[-1]
    vol = None
    if vol_index is not None:
        vol = _aligned_vol_index(vol_index, panel.index, labels.get("vol_index", "vol_index"), ffill_limit, notes)
    mac = None
    if macro is not None:
        mac = macro.copy()
        mac.index = pd.DatetimeIndex(mac.index).to_period("M").to_timestamp().rename("date")
        mac = mac.loc[: end]
        if mac.empty:
            raise DataError(f"{labels.get('macro', 'macro')}: no months on or before the last price date {end.date()}")
    return MarketData(
        prices=panel.astype(float),
        asset_classes=classes,
        vol_index=vol,
        macro=mac,
        notes=notes,
        sources={k: str(v) for k, v in labels.items()},
    )


def _common_panel(
    prices: pd.DataFrame, plabel: str, ffill_limit: int, min_bars: int, notes: list[str]
) -> pd.DataFrame:
    """The prices on the span every asset is quoted, short gaps forward-filled (shape (T, n))."""
    firsts = {c: prices[c].first_valid_index() for c in prices.columns}
    lasts = {c: prices[c].last_valid_index() for c in prices.columns}
    start = max(firsts.values())
    end = min(lasts.values())
    if start >= end:
        raise DataError(f"{plabel}: the assets have no common date range (latest start {start.date()}, earliest end {end.date()})")
    if start > prices.index[0] or end < prices.index[-1]:
        late = max(firsts, key=lambda c: firsts[c])
        notes.append(f"common span {start.date()}..{end.date()} (latest starting asset: {late})")
    panel = prices.loc[start:end]
    for col in panel.columns:
        gap = _first_long_gap(panel[col], ffill_limit)
        if gap is not None:
            raise DataError(
                f"{plabel}: column '{col}': {gap[1]}+ consecutive missing days from {gap[0].date()} exceed the forward-fill limit of {ffill_limit}"
            )
    n_missing = int(panel.isna().sum().sum())
    panel = panel.ffill(limit=ffill_limit)
    if n_missing:
        notes.append(f"forward-filled {n_missing} missing price cells (limit {ffill_limit} bars)")
    if len(panel) < max(min_bars, 2):
        raise DataError(
            f"{plabel}: history too short: {len(panel)} aligned bars, the configured windows need at least {max(min_bars, 2)}"
        )
    return panel


def _aligned_vol_index(
    vol_index: pd.Series, dates: pd.DatetimeIndex, vlabel: str, ffill_limit: int, notes: list[str]
) -> pd.Series:
    """The volatility index on the price calendar (NaN before it starts, short gaps filled)."""
    vi = vol_index.copy()
    vi.index = pd.DatetimeIndex(vi.index)
    union = vi.index.union(dates)
    vol = vi.reindex(union).ffill(limit=ffill_limit).reindex(dates).rename("vol_index")
    if vol.notna().sum() == 0:
        raise DataError(f"{vlabel}: no values inside the price span {dates[0].date()}..{dates[-1].date()}")
    lead = int(vol.isna().to_numpy().argmin()) if vol.isna().iloc[0] else 0
    if lead:
        notes.append(f"volatility index starts {lead} bars after the prices; the fallback stands in before")
    inner_missing = int(vol.iloc[lead:].isna().sum())
    if inner_missing:
        notes.append(f"volatility index missing on {inner_missing} bars after forward fill; the fallback stands in there")
    return vol


def load_market(
    prices: Source,
    *,
    vol_index: Source | None = None,
    macro: Source | None = None,
    asset_classes: Mapping[str, str] | None = None,
    ffill_limit: int = 5,
    min_bars: int = 0,
    assets_from: str = "[assets]",
) -> MarketData:
    """Load and align prices and optional signals from paths or frames (see :func:`align_market`).

    With ``asset_classes``, only the columns it lists are read and validated (a merged prices file
    may hold others). What loading normalized (sorted rows, dropped times, ignored columns) is
    warned once as :class:`drb.errors.DataWarning` and kept in :attr:`MarketData.notes`.
    """
    labels = {}
    for key, src in (("prices", prices), ("vol_index", vol_index), ("macro", macro)):
        if src is not None:
            labels[key] = str(src) if isinstance(src, (str, bytes)) or hasattr(src, "__fspath__") else "DataFrame"
    columns = list(asset_classes) if asset_classes else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        p = load_prices(prices, name=labels["prices"], columns=columns, columns_from=assets_from)
        v = load_vol_index(vol_index, name=labels["vol_index"]) if vol_index is not None else None
        m = load_macro(macro, name=labels["macro"]) if macro is not None else None
    notes = []
    for w in caught:
        if issubclass(w.category, DataWarning):
            notes.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    market = align_market(
        p,
        vol_index=v,
        macro=m,
        asset_classes=asset_classes,
        ffill_limit=ffill_limit,
        min_bars=min_bars,
        labels=labels,
        assets_from=assets_from,
    )
    market.notes[:0] = notes
    return market

