"""The dynamic allocator's options, driven by hand (no backtrader): smoothing, anticipation,
banded-Sharpe solver, volatility target, budget matrix override, valuation tilt, cooldown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError
from feeds import synthetic_market
from strategies.allocators.dynamic import DynamicParams, DynamicRiskBudgetAllocator
from strategies.core.budget import DEFAULT_BUDGET_MATRIX, REGIMES, smooth_budget
from strategies.core.risk import portfolio_volatility, risk_contributions

M = synthetic_market(seed=3, start="2018-01-02", end="2020-06-30")
ASSETS = list(M.prices.columns)


def drive(**params):
    """Run the allocator over the market; weights follow the decisions (no drift); return decisions."""
    params.setdefault("risk_model", "ewma")
    alloc = DynamicRiskBudgetAllocator(ASSETS, macro=M.macro, **params)
    w = None
    out = []
    for date, row in zip(M.prices.index, M.prices.to_numpy()):
        prev_budget = alloc.budget_now.copy()
        alloc.update(date, row, M.vol_index.loc[date])
        d = alloc.decide(w)
        if d is not None:
            w = d.target
            out.append((date, d, prev_budget, alloc.budget_target.copy(), alloc.budget_now.copy(), alloc.lam, alloc.covariance()))
    return alloc, out


def test_constant_smoothing_is_the_paper_update_per_month():
    _, out = drive(smoothing=0.15, min_trade=0.0)
    assert len(out) > 10
    last = None
    for date, _, prev, target, now, lam, _ in out:
        assert lam == 0.15
        bar = M.prices.index.get_loc(date)
        k = 21 if last is None else bar - last  # the first update counts as one month
        last = bar
        lam_k = 1.0 - 0.85 ** (k / 21)
        np.testing.assert_allclose(now, smooth_budget(prev, target, lam_k), atol=1e-12)


def test_vix_smoothing_in_bounds():
    _, out = drive()
    lams = np.array([o[5] for o in out])
    assert ((lams >= 0.05) & (lams <= 0.35)).all() and lams.std() > 0


def test_anticipation_blends_expected_next_budget():
    alloc, _ = drive(anticipation=1.0, momentum_window=0)  # no tilts: b* is the pure blend
    b = alloc.target_budget()
    row = alloc.markov.row(alloc.regime).reindex(list(REGIMES)).to_numpy(dtype=float)
    expected = row @ alloc.matrix
    np.testing.assert_allclose(b, expected / expected.sum(), atol=1e-12)
    np.testing.assert_allclose(row.sum(), 1.0)


def test_budget_matrix_override_and_no_tilt():
    equal = {r: dict.fromkeys(DEFAULT_BUDGET_MATRIX.columns, 1.0) for r in REGIMES}
    alloc, out = drive(budget_matrix=equal, momentum_window=0)
    for _, _, _, target, _, _, _ in out[1:]:
        np.testing.assert_allclose(target, 0.25, atol=1e-12)


def test_valuation_tilts_toward_cheap_assets():
    val = pd.DataFrame(0.0, index=M.prices.index, columns=ASSETS)
    val["equity"] = 3.0  # equity looks cheap every day
    base, _ = drive(momentum_window=0)
    tilted, _ = drive(momentum_window=0, valuation=val)
    gap = tilted.target_budget() - base.target_budget()
    assert gap[0] > 0.03 and (gap[1:] < 0).all()


def test_banded_sharpe_solver_stays_in_band():
    tau = 0.03
    _, out = drive(solver="sharpe_band", tau=tau)
    checked = 0
    for _, d, _, _, now, _, cov in out[-5:]:
        rc = risk_contributions(d.target, cov, relative=True)
        assert np.abs(rc - now).max() <= tau + 1e-6
        checked += 1
    assert checked == 5


def test_volatility_target_overlay():
    _, out = drive(target_vol=0.01, max_leverage=1.0)
    date, d, *_, cov = out[-1]
    vol = portfolio_volatility(d.target, cov)
    assert d.target.sum() < 1.0
    assert vol == pytest.approx(0.01, rel=1e-6)


def test_leverage_above_one_is_refused_not_cut_silently():
    from drb.errors import ConfigError
    from strategies.allocators import VolatilityManagedAllocator

    with pytest.raises(ConfigError, match=r"max_leverage must be in \(0, 1\].*cannot borrow"):
        DynamicRiskBudgetAllocator(ASSETS, target_vol=0.1, max_leverage=1.5)
    with pytest.raises(ConfigError, match=r"max_leverage must be in \(0, 1\]"):
        VolatilityManagedAllocator(ASSETS, max_leverage=3.0)
    with pytest.raises(ConfigError, match="target_vol must be > 0"):
        DynamicRiskBudgetAllocator(ASSETS, target_vol=0.0)


def test_cooldown_spaces_conditional_rebalances():
    _, out = drive(cooldown=10)
    bars = {date: i for i, date in enumerate(M.prices.index)}
    last = None
    for date, d, *_ in out:
        if last is not None and "periodic" not in d.triggers:
            assert bars[date] - last >= 10
        last = bars[date]


def test_fallbacks_without_signals():
    alloc = DynamicRiskBudgetAllocator(ASSETS, risk_model="ewma")
    with pytest.warns(Warning):
        for date, row in zip(M.prices.index, M.prices.to_numpy()):
            alloc.update(date, row)
    assert alloc.vol_source == "egarch_equity" and alloc.cycle_source == "price_proxy"
    assert alloc.regime is not None


def test_weight_bounds_hold():
    _, out = drive(weight_bounds={"bond": (0.0, 0.6), "equity": (0.1, 1.0)})
    for _, d, *_ in out[1:]:
        assert d.target[1] <= 0.6 + 1e-9 and d.target[0] >= 0.1 - 1e-9
    from drb.errors import ConfigError

    with pytest.raises(ConfigError, match="weight_bounds: 'gold' is neither"):
        DynamicRiskBudgetAllocator(ASSETS, weight_bounds={"gold": (0, 1)})


class _CountingRisk:
    """Stands in for the risk model: a refit every 7 updates, a failed fit at every third refit
    (and two at the ninth); never ready (the allocator falls back to the sample covariance)."""

    ready = False
    cov = None

    def __init__(self) -> None:
        self.n_refits = 0
        self.n_failed_fits = 0
        self.updates = 0

    def update(self, ret) -> None:
        self.updates += 1
        if self.updates % 7 == 0:
            self.n_refits += 1
            self.n_failed_fits += (self.n_refits % 3 == 0) + (self.n_refits == 9)


def test_fits_by_year_counts_refits_and_failures_in_the_year_they_happen():
    alloc = DynamicRiskBudgetAllocator(ASSETS, macro=M.macro, risk_model="ewma")
    alloc.risk = _CountingRisk()
    expected: dict[str, list[int]] = {}
    for t, (date, row) in enumerate(zip(M.prices.index, M.prices.to_numpy())):
        alloc.update(date, row, M.vol_index.loc[date])
        if t > 0 and t % 7 == 0:  # the t-th return (bar t) is the model's t-th update
            k = t // 7
            year = expected.setdefault(str(date.year), [0, 0])
            year[0] += 1
            year[1] += (k % 3 == 0) + (k == 9)
    assert alloc.fits_by_year == expected
    assert sum(v[1] for v in expected.values()) == alloc.risk.n_failed_fits > 10
    assert alloc.report()["risk_model_fits_by_year"] == expected


# ---------------------------------------------------------------------- the parameter list, once
def test_backtrader_params_are_the_dynamic_params():
    """The strategy's own params are DynamicParams' fields: same names, order and defaults."""
    from dataclasses import fields

    from strategies.bt.strategies import DynamicRiskBudget, RiskBudgetStrategy

    base = set(RiskBudgetStrategy.params._getkeys())
    own = [(k, v) for k, v in DynamicRiskBudget.params._getpairs().items() if k not in base]
    assert own == [(f.name, f.default) for f in fields(DynamicParams)]
    assert all(f.metadata["doc"] for f in fields(DynamicParams))


def test_readme_parameter_table_is_the_dynamic_params():
    """Every DynamicParams field is a row of the README's table, with its default, and nothing else."""
    import re
    from dataclasses import fields
    from pathlib import Path

    from strategies.allocators.dynamic import parameter_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("| parameter | default | meaning |")
    table = readme[start:].split("\n\n", 1)[0]
    rows = [re.match(r"\| `([^`]+)` \| `([^`]+)` \|", line) for line in table.splitlines()[2:]]
    assert all(rows), "a README table row is not '| `name` | `default` | meaning |'"
    expected = [(f.name, repr(f.default).replace("'", '"')) for f in fields(DynamicParams)]
    assert [(m.group(1), m.group(2)) for m in rows] == expected
    assert table == parameter_table()


def test_dynamic_params_validate_and_are_kept():
    with pytest.raises(ConfigError, match="anticipation must be in"):
        DynamicParams(anticipation=1.5)
    with pytest.raises(ConfigError, match="DynamicRiskBudget: max_leverage"):
        DynamicRiskBudgetAllocator(ASSETS, max_leverage=1.5)
    with pytest.raises(TypeError):
        DynamicRiskBudgetAllocator(ASSETS, no_such_parameter=1)
    alloc = DynamicRiskBudgetAllocator(ASSETS, cooldown=5, warmup=30, risk_model="ewma")
    assert alloc.params == DynamicParams(cooldown=5, risk_model="ewma")
    assert alloc.cooldown == 5 and alloc.warmup == 30
