"""The embedded market behaves like a real one where the model cares, deterministically per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feeds import synthetic_market
from feeds.synthetic import ASSET_PARAMS


def test_shape_and_labels(demo_market):
    market = demo_market
    p = market.prices
    assert list(p.columns) == ["equity", "bond", "commodity", "real_estate"]
    assert isinstance(p.index, pd.DatetimeIndex) and (p.index.day_of_week < 5).all()
    assert p.index[0] == pd.Timestamp("2018-01-02") and p.index[-1] == pd.Timestamp("2025-06-30")
    assert (p > 0).all().all() and np.isfinite(p.to_numpy()).all()
    assert market.macro.shape[1] == 8
    assert (market.macro.index.day == 1).all()
    assert market.macro.index[0] < p.index[0]  # history before prices
    assert set(market.phase.unique()) <= {"recovery", "expansion", "deceleration", "recession"}
    assert set(market.vol_state.unique()) <= {"low", "medium", "high"}
    assert market.vol_index.index.equals(p.index) and (market.vol_index > 0).all()


def test_deterministic_per_seed():
    a, b, c = synthetic_market(3), synthetic_market(3), synthetic_market(4)
    pd.testing.assert_frame_equal(a.prices, b.prices)
    pd.testing.assert_frame_equal(a.macro, b.macro)
    pd.testing.assert_series_equal(a.vol_index, b.vol_index)
    assert not np.allclose(a.prices.to_numpy(), c.prices.to_numpy())


def _pooled(seeds=range(6)):
    return [synthetic_market(s) for s in seeds]


@pytest.fixture(scope="module")
def pool():
    return _pooled()


def test_regimes_persist(pool):
    for m in pool:
        vol_changes = (m.vol_state != m.vol_state.shift()).sum() - 1
        assert len(m.vol_state) / max(vol_changes, 1) > 15  # mean vol-state spell > 3 weeks
        monthly = m.phase.resample("MS").first()
        phase_changes = (monthly != monthly.shift()).sum() - 1
        assert len(monthly) / max(phase_changes, 1) > 3.0  # mean phase spell > 3 months


def test_volatility_ranges(pool):
    r = pd.concat([np.log(m.prices).diff().iloc[1:] for m in pool])
    vol = r.std() * np.sqrt(252)
    for asset, par in ASSET_PARAMS.items():
        assert vol[asset] == pytest.approx(par["vol"], rel=0.25), asset
    assert vol["bond"] < 0.03 < vol["commodity"] < vol["equity"] < vol["real_estate"]


def test_fat_tails_and_clustering(pool):
    r = np.log(pool[0].prices).diff().iloc[1:]
    assert (r.kurt() > 1.0).all()
    a = r["equity"].abs()
    assert a.autocorr(1) > 0.05 and a.autocorr(10) > 0.05


def test_stock_bond_correlation_negative_in_high_vol(pool):
    highs, lows = [], []
    for m in pool:
        r = m.returns
        st = m.vol_state.iloc[1:]
        highs.append(r[st == "high"].corr().loc["equity", "bond"])
        lows.append(r[st == "low"].corr().loc["equity", "bond"])
    assert np.nanmean(highs) < -0.2
    assert np.nanmean(highs) < np.nanmean(lows) - 0.1


def test_high_vol_state_is_more_volatile(pool):
    m = pool[0]
    r = m.returns["equity"]
    st = m.vol_state.iloc[1:]
    assert r[st == "high"].std() > 1.5 * r[st == "low"].std()


def test_vol_index_tracks_and_leads_realized(pool):
    lead, lag = [], []
    for m in pool:
        rv = m.returns["equity"].rolling(21).std() * np.sqrt(252) * 100
        lag.append(m.vol_index.corr(rv.shift(1)))  # the past month, t-21..t-1
        lead.append(m.vol_index.corr(rv.shift(-21)))  # the next month, t+1..t+21
        assert m.vol_index.corr(rv) > 0.5  # tracks
    assert np.mean(lag) > 0.5
    assert np.mean(lead) > np.mean(lag)


def test_leading_indicators_lead_the_phase(pool):
    # Growth phases (recovery/expansion: rising) vs falling phases: the pro-cyclical indicators'
    # change over the next months is higher in rising phases.
    for m in pool[:3]:
        phase_m = m.phase.resample("MS").first()
        pmi = m.macro["pmi_new_orders"].reindex(phase_m.index)
        rising = phase_m.isin(["recovery", "expansion"])
        level_above = phase_m.isin(["expansion", "deceleration"])
        assert pmi[level_above].mean() > pmi[~level_above].mean()
        claims = m.macro["initial_claims_index"].reindex(phase_m.index)
        assert claims[level_above].mean() < claims[~level_above].mean()
        assert rising.any()
