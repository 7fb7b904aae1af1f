"""drb paper's warm-up history: a merged prices file works with [assets] as in drb compare."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from drb.errors import DataWarning
from runners.live.history import load_history


def _cfg(path, assets):
    return SimpleNamespace(prices=str(path), end=None, start=None, vol_index=None, macro=None,
                           assets=assets, ffill_limit=5)


def test_merged_prices_file_uses_only_the_assets_columns(tmp_path):
    dates = pd.bdate_range("2020-01-01", periods=30)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"),
        "SPY": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 30))),
        "TLT": 100 * np.exp(np.cumsum(rng.normal(0, 0.005, 30))),
        "ticker_note": ["text"] * 30,  # a column no strategy uses, not even numeric
        "vol_index": 20.0,
    })
    path = tmp_path / "merged.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(DataWarning, match="1 column not listed in \\[assets\\] ignored"):
        market = load_history(_cfg(path, {"SPY": "equity", "TLT": "bond"}))
    assert list(market.prices.columns) == ["SPY", "TLT"]
    assert market.vol_index is not None and float(market.vol_index.iloc[0]) == 20.0
