"""Strategies in one event loop (issue 5): caps from fills, weights, budgets, determinism, no look-ahead."""

from __future__ import annotations

import warnings

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from feeds import MarketData, synthetic_market
from runners.engine.cerebro import STRATEGY_NAMES, run_backtest
from runners.engine.fastpath import run_fast
from strategies.core.budget import DEFAULT_BUDGET_MATRIX

BASELINES = [n for n in STRATEGY_NAMES if n != "DynamicRiskBudget"]
FAST_DYN = {"risk_model": "ewma"}


@pytest.fixture(scope="module")
def short_market() -> MarketData:
    return MarketData.from_synthetic(synthetic_market(seed=1, start="2018-01-02", end="2020-12-31"))


@pytest.fixture(scope="module")
def dyn_result(short_market):
    return run_backtest(short_market, "DynamicRiskBudget")


def _check_caps_from_fills(res, total_cap=0.15, asset_cap=0.08):
    tx = res.transactions.copy()
    assert len(tx) > 0
    tx["notional"] = tx["amount"] * tx["price"]
    values = res.values
    initial_date = res.rebalances["date"].iloc[0]
    for date, grp in tx.groupby("date"):
        if date == initial_date:
            continue
        prev_value = values.loc[:date].iloc[-2]  # value at the previous close = value at this open
        per_asset = grp.groupby("symbol")["notional"].sum().abs() / prev_value
        assert 0.5 * per_asset.sum() <= total_cap + 1e-9, (res.name, date)
        assert per_asset.max() <= asset_cap + 1e-9, (res.name, date)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_caps_hold_for_executed_trades(short_market, dyn_result, name):
    res = dyn_result if name == "DynamicRiskBudget" else run_backtest(short_market, name)
    _check_caps_from_fills(res)
    assert res.rebalances["trigger"].iloc[0] == "initial"
    assert (res.rebalances["trigger"].iloc[1:] != "initial").all()
    assert len(res.order_issues) == 0
    invested = res.weights.loc[res.returns.index[0] :]
    total = invested.sum(axis=1)
    assert (total <= 1.0 + 1e-9).all()
    if name != "VolatilityManaged":  # holds cash by design when volatility is high
        assert (total >= 1.0 - 0.002 - 0.03).all()  # cash buffer plus drift between rebalances
        assert total.median() > 0.99
    assert (invested >= -1e-12).all().all()


def test_dynamic_triggers_fire(short_market, dyn_result):
    assert dyn_result.rebalances["trigger"].str.contains("periodic").any()
    # The conditional triggers are off by default (issue 13 calibration); switched on, they fire.
    params = {"conditional_triggers": True, "regime_trigger": True, "regime_persistence": 1, "min_trade": 0.0, "cooldown": 5}
    trig = run_backtest(short_market, "DynamicRiskBudget", params).rebalances["trigger"]
    assert trig.str.contains("regime").any()


def test_dynamic_budgets_follow_the_regime(dyn_result):
    # b* is computed at each decision (the close before the rebalance executes)
    all_b = dyn_result.budgets
    pos = all_b.index.get_indexer(pd.DatetimeIndex(dyn_result.rebalances["date"])) - 1
    b = all_b.iloc[pos].dropna(subset=["regime"])
    assert len(b) > 10
    assets = ["equity", "bond", "commodity", "real_estate"]
    tgt = b[[f"target_{a}" for a in assets]].to_numpy()
    rows = DEFAULT_BUDGET_MATRIX.loc[b["regime"]].to_numpy()
    # b* is the regime's row tilted by at most 2 x 5 points, then renormalized with a 2% floor
    assert np.abs(tgt - rows).max() < 0.15
    corr = np.corrcoef(tgt.ravel(), rows.ravel())[0, 1]
    assert corr > 0.9
    sm = b[[f"smoothed_{a}" for a in assets]]
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, atol=1e-9)
    assert set(b["cycle_source"]) == {"macro"} and set(b["vol_source"]) == {"vol_index"}
    lam = b["lambda"].dropna()
    assert ((lam >= 0.05) & (lam <= 0.35)).all()


def test_two_runs_identical(short_market):
    a = run_backtest(short_market, "DynamicRiskBudget", FAST_DYN)
    b = run_backtest(short_market, "DynamicRiskBudget", FAST_DYN)
    pd.testing.assert_series_equal(a.values, b.values)
    pd.testing.assert_frame_equal(a.rebalances, b.rebalances)
    pd.testing.assert_frame_equal(a.budgets, b.budgets)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_fast_path_equals_backtrader(short_market, dyn_result, name):
    params = {} if name == "DynamicRiskBudget" else {}
    a = dyn_result if name == "DynamicRiskBudget" else run_backtest(short_market, name, params)
    b = run_fast(short_market, name, params)
    np.testing.assert_allclose(a.values.to_numpy(), b.values.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.returns.to_numpy(), b.returns.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(a.weights.to_numpy(), b.weights.to_numpy(), atol=1e-10)
    assert list(a.rebalances["trigger"]) == list(b.rebalances["trigger"])
    assert list(a.rebalances["decided"]) == list(b.rebalances["decided"])
    # decided at a close, filled at the next open (cheat-on-open)
    dates = short_market.prices.index
    pos = dates.get_indexer(pd.DatetimeIndex(a.rebalances["date"]))
    assert (dates[pos - 1] == pd.DatetimeIndex(a.rebalances["decided"])).all()


def _pure_rule(name, returns):
    from strategies import erc_weights, inverse_volatility_weights, min_variance_weights

    cov = np.cov(returns, rowvar=False) * 252
    if name == "EqualWeight":
        return np.full(returns.shape[1], 0.25)
    if name == "InverseVolatility":
        return inverse_volatility_weights(cov)
    if name == "RiskParity":
        return erc_weights(cov)
    if name == "MinimumVariance":
        return min_variance_weights(cov)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["EqualWeight", "InverseVolatility", "RiskParity", "MinimumVariance"])
def test_baseline_weights_match_pure_rule_without_caps(short_market, name):
    res = run_backtest(short_market, name, {"total_cap": None, "asset_cap": None})
    rets = short_market.prices.pct_change()
    dates = short_market.prices.index
    assets = short_market.assets
    for _, row in res.rebalances.iterrows():
        exec_pos = dates.get_loc(row["date"])
        window = rets.iloc[exec_pos - 60 : exec_pos].to_numpy()  # decided at the previous close
        expected = _pure_rule(name, window) * (1 - 0.002)
        post = row[[f"post_{a}" for a in assets]].to_numpy(dtype=float)
        np.testing.assert_allclose(post, expected, atol=1e-7)


def _sharpe_budget_by_hand(r: np.ndarray, floor: float) -> np.ndarray:
    """max(floor, k * max(Sharpe_i, 0)) with k such that the budget sums to 1 (bisection)."""
    sr = np.maximum(r.mean(axis=0) / r.std(axis=0, ddof=1) * np.sqrt(252), 0.0)
    if not (sr > 0).any():
        return np.full(r.shape[1], 1.0 / r.shape[1])
    lo, hi = 0.0, 1.0 / sr[sr > 0].min()
    for _ in range(200):
        k = 0.5 * (lo + hi)
        lo, hi = (k, hi) if np.maximum(floor, k * sr).sum() < 1.0 else (lo, k)
    return np.maximum(floor, 0.5 * (lo + hi) * sr)


@pytest.mark.parametrize("name", ["StaticRiskBudget", "SharpeRiskBudget", "MacroRiskParity", "VolatilityManaged"])
def test_budget_baselines_match_their_rule_without_caps(short_market, name):
    """The executed weights of the budget baselines, caps off, against their rule recomputed from
    the returns known at the decision close (risk contributions, not the allocator's own code)."""
    from strategies import risk_contributions

    res = run_backtest(short_market, name, {"total_cap": None, "asset_cap": None})
    rets = short_market.prices.pct_change()
    dates = short_market.prices.index
    assets = short_market.assets
    checked = 0
    for _, row in res.rebalances.iterrows():
        exec_pos = dates.get_loc(row["date"])
        cov = np.cov(rets.iloc[exec_pos - 60 : exec_pos].to_numpy(), rowvar=False) * 252
        post = row[[f"post_{a}" for a in assets]].to_numpy(dtype=float)
        invested = post.sum()
        w = post / invested
        rc = risk_contributions(w, cov, relative=True)
        if name == "StaticRiskBudget":
            np.testing.assert_allclose(rc, [0.40, 0.30, 0.15, 0.15], atol=1e-8)
        elif name == "SharpeRiskBudget":
            r = rets.iloc[exec_pos - 126 : exec_pos].to_numpy()
            np.testing.assert_allclose(rc, _sharpe_budget_by_hand(r, 0.05), atol=1e-8)
        elif name == "MacroRiskParity":
            # Shares of the n - 1 PCA factors in the systematic risk: as close to equal as a
            # long-only portfolio gets (equal shares are often infeasible), i.e. no worse than the
            # best of 20 000 random long-only portfolios.
            vals, vecs = np.linalg.eigh(cov)
            top = np.argsort(vals)[::-1][:3]

            def gap(weights, loadings=vecs[:, top], var=vals[top]):
                frc = (weights @ loadings) ** 2 * var
                return ((frc / frc.sum(axis=-1, keepdims=True) - 1 / 3) ** 2).sum(axis=-1)

            cloud = np.random.default_rng(checked).dirichlet(np.ones(4), 20_000)
            assert gap(w) <= gap(cloud).min() + 1e-9
        else:  # VolatilityManaged: an ERC sleeve times an exposure <= 1
            np.testing.assert_allclose(rc, 0.25, atol=1e-8)
            assert invested <= 0.998 + 1e-12
        checked += 1
    assert checked >= 20


def test_fixed_weights_sixty_forty(short_market):
    res = run_backtest(short_market, "FixedWeights", {"total_cap": None, "asset_cap": None})
    post = res.rebalances[[f"post_{a}" for a in short_market.assets]].to_numpy()
    np.testing.assert_allclose(post, np.tile([0.6 * 0.998, 0.4 * 0.998, 0, 0], (len(post), 1)), atol=1e-9)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_no_lookahead_cutting_data(short_market, name):
    cut = pd.Timestamp("2019-09-30")
    params = FAST_DYN if name == "DynamicRiskBudget" else {}
    full = run_fast(short_market, name, params)
    part = run_fast(short_market.truncate(cut), name, params)
    pd.testing.assert_series_equal(full.values.loc[:cut], part.values)
    pd.testing.assert_frame_equal(full.weights.loc[:cut], part.weights)
    pd.testing.assert_frame_equal(full.rebalances[full.rebalances["date"] <= cut].reset_index(drop=True), part.rebalances)
    if name == "DynamicRiskBudget":
        pd.testing.assert_frame_equal(full.budgets.loc[:cut], part.budgets)


def test_no_lookahead_backtrader_dynamic(short_market, dyn_result):
    cut = pd.Timestamp("2019-09-30")
    part = run_backtest(short_market.truncate(cut), "DynamicRiskBudget")
    pd.testing.assert_series_equal(dyn_result.values.loc[:cut], part.values)
    pd.testing.assert_frame_equal(dyn_result.budgets.loc[:cut], part.budgets)


def test_plain_cerebro_price_feeds_only():
    """A hand-written cerebro: class-named price feeds, no signals, default parameters."""
    from strategies import DynamicRiskBudget, RiskParity

    m = synthetic_market(seed=2, start="2018-01-02", end="2019-12-31")
    for strat in (DynamicRiskBudget, RiskParity):
        cerebro = bt.Cerebro(cheat_on_open=True)
        for asset in m.prices.columns:
            close = m.prices[asset]
            df = pd.DataFrame({"open": close.shift(1).fillna(close.iloc[0]), "high": close, "low": close, "close": close, "volume": 0.0})
            df["high"] = df[["open", "close"]].max(axis=1)
            df["low"] = df[["open", "close"]].min(axis=1)
            cerebro.adddata(bt.feeds.PandasData(dataname=df), name=asset)
        cerebro.broker.setcash(100_000)
        cerebro.addstrategy(strat)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = cerebro.run()[0]
        assert len(s.rebalances) >= 5
        assert cerebro.broker.getvalue() > 50_000
        if strat is DynamicRiskBudget:
            msgs = " ".join(str(w.message) for w in caught)
            assert "price proxy" in msgs
            assert "conditional volatility" in msgs
            assert s.allocator.cycle_source == "price_proxy"
            assert s.allocator.vol_source == "egarch_equity"


def test_rejected_orders_are_logged_and_retried(short_market):
    """Buys that the broker rejects (no cash) are logged and the rebalance is retried next bar."""
    from feeds import add_feeds
    from strategies import EqualWeight

    class Starved(EqualWeight):
        drained = False

        def next_open(self):
            drain = self.pending is not None and len(self.rebalances) == 1 and not Starved.drained
            super().next_open()  # plans and submits the orders
            if drain:
                Starved.drained = True
                self._taken = self.broker.getcash() + 0.3 * self.broker.getvalue()
                self.broker.cash -= self._taken  # ... which then cannot be paid

        def next(self):
            if getattr(self, "_taken", 0.0):
                self.broker.cash += self._taken  # the cash comes back after the failed bar
                self._taken = 0.0
            super().next()

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    add_feeds(cerebro, short_market)
    cerebro.broker.setcash(1e6)
    cerebro.addstrategy(Starved, total_cap=None, asset_cap=None)
    s = cerebro.run()[0]
    assert len(s.order_issues) > 0
    assert {i["status"] for i in s.order_issues} <= {"Margin", "Rejected"}
    failed_day = s.order_issues[0]["date"]
    later = [r for r in s.rebalances if r["date"] > failed_day]
    assert later and later[0]["trigger"] == s.rebalances[1]["trigger"]
    post = np.array([later[0][f"post_{a}"] for a in s.asset_names])
    np.testing.assert_allclose(post, 0.2495, atol=1e-6)  # the retry reached the target


def test_effective_params_record_defaults_and_overrides(short_market):
    """run.json's parameters: every default the strategy ran with, then the overrides."""
    from runners.engine.cerebro import effective_params

    eff = effective_params(short_market, "DynamicRiskBudget", {"smoothing": 0.15}, {"cash_buffer": 0.01})
    assert eff["smoothing"] == 0.15 and eff["risk_model"] == "egarch_dcc" and eff["cooldown"] == 10
    assert eff["cash_buffer"] == 0.01 and eff["asset_classes"]["bond"] == "bond"
    assert "macro" not in eff and "verbose" not in eff
    vm = effective_params(short_market, "VolatilityManaged")
    assert vm["rule"] == "parity" and vm["cash_buffer"] == 0.002 and vm["total_cap"] == 0.15
