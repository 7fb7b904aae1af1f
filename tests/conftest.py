"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

# CI (HYPOTHESIS_PROFILE=ci, set by .ci/run) replays the same examples every run, so a landing
# never depends on the draw; local runs explore new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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
