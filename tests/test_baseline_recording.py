"""The baselines' per-bar shortcuts (issue 17) give exactly what the checked code gives.

* the allocators' sample covariance: one compiled shifted Cholesky replaces the eigenvalue and
  Cholesky checks of :func:`indicators.covariance.baseline_covariance` (bit for bit, or None);
* the factor-parity descent reuses each budget residual (bit for bit the former kernel, kept here
  as the reference);
* the strategy's bar date without ``num2date`` and the array-built budget frame.
"""

from __future__ import annotations

import datetime

import backtrader as bt
import numba
import numpy as np
import pandas as pd
import pytest

from indicators.covariance import baseline_covariance
from strategies.allocators import _well_conditioned_sample_covariance
from strategies.core.weights import _frp_descent


@numba.njit(cache=False)
def _reference_descent(cloud, bmat, sf, fb, steps):  # pragma: no cover - compiled
    """The descent as it was before issue 17 (residuals recomputed inside the k x k loop)."""
    m, n = cloud.shape
    k = bmat.shape[1]
    y = np.empty(k)
    u = np.empty(k)
    gy = np.empty(k)
    g = np.empty(n)
    out = np.empty(m)
    for p in range(m):
        w = cloud[p]
        for it in range(steps + 1):
            for j in range(k):
                acc = 0.0
                for i in range(n):
                    acc += w[i] * bmat[i, j]
                y[j] = acc
            s = 0.0
            for j in range(k):
                acc = 0.0
                for q in range(k):
                    acc += sf[j, q] * y[q]
                u[j] = acc
                s += y[j] * acc
            rc = 0.0
            gap = 0.0
            for j in range(k):
                c = y[j] * u[j] / s
                r = c - fb[j]
                gap += r * r
                rc += r * c
            if it == steps:
                out[p] = gap
                break
            for j in range(k):
                acc = 0.0
                for q in range(k):
                    acc += sf[j, q] * (y[q] * u[q] / s - fb[q]) * y[q]
                r = y[j] * u[j] / s - fb[j]
                gy[j] = 2.0 * (r * u[j] + acc - 2.0 * rc * u[j]) / s
            gmax = 0.0
            for i in range(n):
                acc = 0.0
                for j in range(k):
                    acc += bmat[i, j] * gy[j]
                g[i] = acc
                if abs(acc) > gmax:
                    gmax = abs(acc)
            step = 0.5 / (gmax + 1e-300)
            tot = 0.0
            for i in range(n):
                w[i] *= np.exp(-step * g[i])
                tot += w[i]
            for i in range(n):
                w[i] /= tot
    return out


def test_fast_sample_covariance_is_baseline_covariance_bit_for_bit():
    rng = np.random.default_rng(17)
    for _ in range(400):
        n = int(rng.integers(1, 10))
        m = int(rng.integers(2 * n, 100))
        # a slice of a larger buffer, as the allocators pass their return history
        buf = rng.normal(0.0, 0.01, (m + 7, n)) @ rng.normal(0.0, 1.0, (n, n))
        window = buf[5 : 5 + m]
        fast = _well_conditioned_sample_covariance(window)
        ref, shrunk = baseline_covariance(window, 252)
        assert fast is not None and not shrunk
        assert np.array_equal(fast, ref)


@pytest.mark.parametrize(
    "window",
    [
        np.random.default_rng(1).normal(0.0, 0.01, (5, 4)),  # shorter than 2n: shrinkage
        np.random.default_rng(2).normal(0.0, 0.01, (60, 60)),  # singular sample covariance
        np.tile(np.random.default_rng(3).normal(0.0, 0.01, (30, 1)), (1, 3)),  # rank one
        np.full((30, 2), np.nan),
    ],
)
def test_fast_sample_covariance_defers_to_the_checked_estimate(window):
    assert _well_conditioned_sample_covariance(window) is None


def test_factor_parity_descent_matches_the_former_kernel_bit_for_bit():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(2, 9))
        k = int(rng.integers(1, n + 1))
        bmat = rng.normal(size=(n, k))
        a = rng.normal(size=(k, k))
        sf = a @ a.T + 0.1 * np.eye(k)
        fb = rng.dirichlet(np.ones(k))
        cloud = rng.dirichlet(np.full(n, 0.3), 40)
        c_new, c_ref = cloud.copy(), cloud.copy()
        out_new = _frp_descent(c_new, bmat, sf, fb, 40)
        out_ref = _reference_descent(c_ref, bmat, sf, fb, 40)
        assert np.array_equal(out_new, out_ref)
        assert np.array_equal(c_new, c_ref)


def test_bar_date_is_num2date_date(small_market):
    from feeds import add_feeds
    from strategies.bt.strategies import EqualWeight

    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    class _Probe(EqualWeight):
        def next(self) -> None:
            seen.append((self._bar_date(), pd.Timestamp(self.asset_datas[0].datetime.date(0))))
            super().next()

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    add_feeds(cerebro, small_market)
    cerebro.addstrategy(_Probe, warmup=60)
    cerebro.run()
    assert len(seen) == len(small_market.prices)
    for fast, ref in seen:
        assert fast == ref and type(fast) is type(ref) and fast.unit == ref.unit
    assert seen[0][0] == pd.Timestamp(datetime.date(2018, 1, 2))


def test_budget_frame_of_a_baseline(small_market):
    from runners.engine.cerebro import run_backtest

    res = run_backtest(small_market, "StaticRiskBudget", {"warmup": 60})
    b = res.budgets
    assets = list(small_market.assets)
    keys = ["phase", "vol_state", "regime", "lambda", "decision", "cycle_source", "vol_source"]
    assert list(b.columns) == keys + [f"{p}_{a}" for a in assets for p in ("target", "smoothed")]
    assert b.index.name == "date" and len(b) == len(small_market.prices)
    for key in keys:
        assert b[key].dtype == object and b[key].isna().all()
    budget = b[[f"smoothed_{a}" for a in assets]].to_numpy()
    assert np.allclose(budget, budget[0]) and budget[0].sum() == pytest.approx(1.0)
    assert b[[f"target_{a}" for a in assets]].isna().all().all()
    # an allocator without a budget: NaN columns
    ew = run_backtest(small_market, "EqualWeight", {"warmup": 60}).budgets
    assert ew[[f"smoothed_{a}" for a in assets]].isna().all().all()
    assert ew[[f"smoothed_{a}" for a in assets]].dtypes.eq(np.float64).all()
