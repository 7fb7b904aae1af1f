"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def market():
    """The embedded synthetic market, default seed and span."""
    from feeds import synthetic_market

    return synthetic_market(seed=0)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``../shared/data/real``; skips the test when it is absent (a user's clone has none)."""
    if not (REAL_DATA / "prices_daily.csv.gz").exists():
        pytest.skip("../shared/data/real is absent")
    return REAL_DATA
