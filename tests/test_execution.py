"""The execution model: caps hold exactly for planned trades; cash is never overdrawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategies.execution import (
    BUDGET_LABELS,
    budget_columns,
    budget_frame,
    budget_row,
    plan_trades,
    rebalance_columns,
    rebalance_frame,
    rebalance_record,
)


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


# ---------------------------------------------------------------------- record layouts (both engines)
def test_rebalance_record_layout():
    pre, dw = np.array([0.5, 0.3]), np.array([-0.1, 0.05])
    d = pd.Timestamp("2020-01-03")
    rec = rebalance_record(
        date=d, strategy="S", trigger="periodic", pre=pre, dw=dw, cost=1e-4, decided=d, assets=["a", "b"]
    )
    assert list(rec) == rebalance_columns(["a", "b"])
    assert rebalance_columns(["a", "b"]) == [
        "date", "strategy", "trigger", "turnover", "max_asset_change", "cost", "pre_a", "pre_b", "post_a", "post_b", "decided"
    ]
    assert rec["turnover"] == pytest.approx(0.075) and rec["max_asset_change"] == pytest.approx(0.1)
    assert (rec["post_a"], rec["post_b"]) == pytest.approx((0.4, 0.35))
    assert list(rebalance_frame([], ["a", "b"]).columns) == rebalance_columns(["a", "b"])


class _Snap:
    def snapshot(self):
        return {"phase": "expansion", "regime": "expansion/low", "lambda": 0.1, "budget_target": np.array([0.6, 0.4]), "budget": np.array([0.5, 0.5])}

    def budget(self):  # pragma: no cover - the snapshot has the budget
        raise AssertionError


class _Plain:
    def budget(self):
        return None


def test_budget_row_layout():
    d = pd.Timestamp("2020-01-03")
    row = budget_row(d, _Snap(), 2)
    assert len(row) == len(budget_columns(["a", "b"]))
    assert row[0] == d and row[1] == "expansion" and row[3] == "expansion/low" and row[4] == 0.1
    assert row[1 + len(BUDGET_LABELS) :] == (0.6, 0.5, 0.4, 0.5)  # target_a, smoothed_a, target_b, smoothed_b
    frame = budget_frame([row, budget_row(d + pd.Timedelta(days=1), _Plain(), 2)], ["a", "b"])
    assert list(frame.columns) == budget_columns(["a", "b"])[1:]
    assert frame.index.name == "date" and frame["smoothed_b"].isna().tolist() == [False, True]
    assert budget_frame([], ["a"]).empty


def test_pure_modules_do_not_import_backtrader():
    import subprocess
    import sys

    code = "import sys, strategies.allocators, strategies.execution, strategies.bt; assert 'backtrader' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
