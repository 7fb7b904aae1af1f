"""Data in: loaders and validation, calendar alignment, the embedded synthetic market, backtrader feeds.

Importing this package does not import backtrader; :func:`make_feeds` and :func:`add_feeds` load it
on first use.
"""

from __future__ import annotations

from drb.lazy import lazy_exports
from feeds.loaders import load_macro, load_prices, load_vol_index
from feeds.market import ASSET_CLASSES, MarketData, align_market, load_market, resolve_asset_classes
from feeds.synthetic import SyntheticMarket, synthetic_market

__all__ = [
    "ASSET_CLASSES",
    "MarketData",
    "SyntheticMarket",
    "align_market",
    "load_market",
    "load_macro",
    "load_prices",
    "load_vol_index",
    "resolve_asset_classes",
    "synthetic_market",
    "make_feeds",
    "add_feeds",
    "SIGNAL_FEEDS",
    "price_frame",
]

#: Backtrader feeds, imported on first use (importing ``feeds`` loads no backtrader).
_LAZY = dict.fromkeys(("make_feeds", "add_feeds", "SIGNAL_FEEDS", "price_frame"), "feeds.bt_feeds")

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
