"""The execution model: caps hold exactly for planned trades; cash is never overdrawn."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategies.execution import plan_trades


@st.composite
def portfolios(draw):
    n = draw(st.integers(1, 8))
    raw = np.array(draw(st.lists(st.floats(0, 1), min_size=n + 1, max_size=n + 1)))
    if raw.sum() == 0:
        raw[0] = 1.0
    w = raw / raw.sum()  # last entry is cash
    tgt = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    if tgt.sum() == 0:
        tgt[0] = 1.0
    level = draw(st.floats(0.3, 1.0))
    tgt = tgt / tgt.sum() * level
    prices = np.array(draw(st.lists(st.floats(0.5, 500), min_size=n, max_size=n)))
    return w, tgt, prices


@settings(max_examples=300, deadline=None)
@given(portfolios(), st.sampled_from([0.05, 0.15, 0.3]), st.sampled_from([0.02, 0.08, 0.5]))
def test_caps_hold_and_cash_never_negative(p, total_cap, asset_cap):
    w, tgt, prices = p
    assume(w[:-1].sum() > 1e-6)  # holding nothing is the (uncapped) first investment
    value = 1e6
    units = w[:-1] * value / prices
    cash = w[-1] * value
    plan = plan_trades(units, prices, cash, tgt, initial=False, total_cap=total_cap, asset_cap=asset_cap, commission=0.0005)
    dw = plan.post - plan.pre
    assert 0.5 * np.abs(dw).sum() <= total_cap + 1e-12
    assert np.abs(dw).max() <= asset_cap + 1e-12
    assert (plan.post >= -1e-12).all()
    notional = plan.units * prices
    cash_after = cash - notional.sum() - 0.0005 * np.abs(notional).sum()
    assert cash_after >= -1e-6
    np.testing.assert_allclose(notional / value, dw, atol=1e-12)
    assert (units + plan.units >= -1e-9).all()


def test_uncapped_move_reaches_target():
    prices = np.array([10.0, 20.0])
    plan = plan_trades(np.array([50.0, 25.0]), prices, 0.0, np.array([0.5, 0.5]), initial=False, cash_buffer=0.0)
    np.testing.assert_allclose(plan.post, [0.5, 0.5])
    assert plan.turnover == 0.0 and not plan.capped


def test_identity_when_within_caps_and_sells_first():
    prices = np.ones(3)
    units = np.array([0.30, 0.30, 0.398]) * 100
    plan = plan_trades(units, prices, 0.2, np.array([0.35, 0.30, 0.35]), initial=False, total_cap=0.15, asset_cap=0.08)
    np.testing.assert_allclose(plan.post, np.array([0.35, 0.30, 0.35]) * 0.998, atol=1e-12)
    assert not plan.capped
    order = plan.order_sequence()
    assert plan.units[order[0]] < 0 and plan.units[order[-1]] > 0


def test_initial_is_uncapped_and_cash_buffer_kept():
    plan = plan_trades(np.zeros(4), np.full(4, 100.0), 1e6, np.full(4, 0.25), initial=True)
    np.testing.assert_allclose(plan.post, np.full(4, 0.2495))
    assert plan.turnover == 0.499


def test_buy_sized_for_slippage():
    plan = plan_trades(np.zeros(1), np.array([100.0]), 1000.0, np.array([1.0]), initial=True, cash_buffer=0.0, slippage=0.01)
    assert plan.units[0] * 100.0 * 1.01 <= 1000.0 + 1e-9
