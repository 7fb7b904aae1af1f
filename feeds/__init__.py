"""Data in: loaders and validation, calendar alignment, the embedded synthetic market, backtrader feeds.

Importing this package does not import backtrader; :func:`make_feeds` and :func:`add_feeds` load it
on first use.
"""

from __future__ import annotations

from typing import Any

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

_LAZY = {"make_feeds", "add_feeds", "SIGNAL_FEEDS", "price_frame"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from feeds import bt_feeds

        return getattr(bt_feeds, name)
    raise AttributeError(f"module 'feeds' has no attribute {name!r}")
