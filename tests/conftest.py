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
def demo_market():
    """The embedded synthetic market (``SyntheticMarket``), default seed and span: what
    ``drb demo`` runs on. (Not named ``market``: test modules use that name for their own
    market objects.)"""
    from feeds import synthetic_market

    return synthetic_market(seed=0)


@pytest.fixture(scope="session")
def small_market():
    """A short synthetic ``MarketData`` (seed 3, 2018-01-02 to 2019-06-28, 1.5 years) shared by
    the sweep and Monte Carlo tests; run it with :func:`config` (60-bar warm-up)."""
    from feeds import synthetic_market
    from runners.engine.cerebro import MarketData

    return MarketData.from_synthetic(synthetic_market(seed=3, start="2018-01-02", end="2019-06-28"))


@pytest.fixture()
def config():
    """Default ``RunConfig`` with a 60-bar warm-up (fits :func:`small_market`); a fresh one per
    test, so tests may change it."""
    from runners.config import RunConfig

    cfg = RunConfig(source="test")
    cfg.execution["warmup"] = 60
    return cfg


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``../shared/data/real``; skips the test when it is absent (a user's clone has none)."""
    if not (REAL_DATA / "prices_daily.csv.gz").exists():
        pytest.skip("../shared/data/real is absent")
    return REAL_DATA
