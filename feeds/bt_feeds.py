"""Turn an aligned :class:`~feeds.market.MarketData` panel into backtrader data feeds.

Each asset becomes one ``PandasData`` feed named by its asset column. Close-only data has no
opening auction, so a bar's ``open`` is the previous bar's close: an order decided on the close of
bar t and sent in ``next_open`` of bar t+1 (cheat-on-open, how the strategies here trade) fills at
that price, which is known when the order is sized. The implied-volatility index, when present, is a
feed of its own named ``vol_index`` (``close`` carries the level); strategies do not trade it.
Monthly macro data is not a bar series: strategies take it as the ``macro`` parameter and read only
months already published at each bar.
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd

from feeds.market import MarketData

__all__ = ["SIGNAL_FEEDS", "price_frame", "make_feeds", "add_feeds"]

#: Names of feeds that carry signals, not tradable assets.
SIGNAL_FEEDS: tuple[str, ...] = ("vol_index",)


def price_frame(close: pd.Series) -> pd.DataFrame:
    """OHLCV frame for a close-only level series: open = previous close (first bar: its close)."""
    close = close.astype(float)
    open_ = close.shift(1)
    open_.iloc[0] = close.iloc[0]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 0.0,
            "openinterest": 0.0,
        },
        index=pd.DatetimeIndex(close.index, name="datetime"),
    )
    return frame


def make_feeds(market: MarketData) -> list[tuple[str, bt.feeds.PandasData]]:
    """Backtrader feeds for every asset (named by asset) and the volatility index (``vol_index``).

    Returns
    -------
    list of (name, feed)
        Assets first, in column order, then the signal feed if any.
    """
    feeds: list[tuple[str, bt.feeds.PandasData]] = []
    for asset in market.assets:
        feeds.append((asset, bt.feeds.PandasData(dataname=price_frame(market.prices[asset]))))
    if market.vol_index is not None:
        vi = market.vol_index.reindex(market.prices.index)
        frame = pd.DataFrame(
            {"open": vi, "high": vi, "low": vi, "close": vi, "volume": 0.0, "openinterest": 0.0},
            index=pd.DatetimeIndex(vi.index, name="datetime"),
        )
        feeds.append(("vol_index", bt.feeds.PandasData(dataname=frame)))
    return feeds


def add_feeds(cerebro: bt.Cerebro, market: MarketData) -> list[str]:
    """Add :func:`make_feeds` to ``cerebro``; returns the feed names in the order added."""
    names = []
    for name, feed in make_feeds(market):
        cerebro.adddata(feed, name=name)
        names.append(name)
    return names
