"""Evidence statistics (issue 15): paired Sharpe bootstrap, joint tests, DSR, PBO, spans."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from drb.errors import ConfigError, DataError
from runners.experiments.evidence import (
    SIGNIFICANCE_COLUMNS,
    annualized_sharpe,
    default_primary,
    pairwise_significance,
    sharpe_difference_test,
    split_returns,
    stationary_bootstrap_indices,
)


def _frame(values: np.ndarray, names: list[str], start: str = "2015-01-01") -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.bdate_range(start, periods=len(values)), columns=names)


# ----------------------------------------------------------------------------- bootstrap indices


def test_stationary_indices_shape_range_and_mean_block():
    rng = np.random.default_rng(3)
    idx = stationary_bootstrap_indices(500, 400, 5.0, rng)
    assert idx.shape == (400, 500) and idx.dtype.kind == "i"
    assert idx.min() >= 0 and idx.max() <= 499
    # a block continues with the next day (wrapping at the end); new blocks start with p = 1/5
    cont = (idx[:, 1:] - idx[:, :-1]) % 500 == 1
    assert 0.78 < cont.mean() < 0.82
    # every day equally likely (stationarity of the scheme)
    counts = np.bincount(idx.ravel(), minlength=500) / idx.size
    assert np.abs(counts * 500 - 1).max() < 0.2


def test_block_one_is_iid_and_seeded():
    a = stationary_bootstrap_indices(50, 20, 1.0, np.random.default_rng(1))
    b = stationary_bootstrap_indices(50, 20, 1.0, np.random.default_rng(1))
    assert np.array_equal(a, b)
    with pytest.raises(ConfigError, match="block length"):
        stationary_bootstrap_indices(50, 20, 0.5, np.random.default_rng(1))


# ----------------------------------------------------------------------------- pairwise test


def test_identical_series_give_zero_difference_and_p_one():
    r = np.random.default_rng(0).normal(3e-4, 0.01, 600)
    t = sharpe_difference_test(r, r.copy(), reps=500, seed=1)
    assert t.sharpe_diff == 0.0 and t.p_value == 1.0
    assert t.ci_low == 0.0 and t.ci_high == 0.0


def test_constant_daily_excess_is_significant_and_positive():
    r = np.random.default_rng(0).normal(2e-4, 0.01, 800)
    t = sharpe_difference_test(r + 4e-4, r, reps=1000, seed=1)
    assert t.sharpe_diff > 0 and t.ci_low > 0
    assert t.p_value < 0.01
    assert t.sharpe_diff == pytest.approx(4e-4 / r.std(ddof=1) * math.sqrt(252), rel=1e-9)


def test_difference_matches_metrics_csv_sharpe_with_risk_free():
    from runners.metrics import compute_metrics

    rng = np.random.default_rng(5)
    frame = _frame(rng.normal(3e-4, 0.01, (400, 3)), ["A", "B", "C"])
    table, blocks = pairwise_significance(frame, "A", reps=200, seed=0, risk_free=0.02)
    m = compute_metrics(frame, risk_free=0.02)
    assert list(table.columns) == list(SIGNIFICANCE_COLUMNS)
    assert list(table["versus"]) == ["B", "C"] and set(blocks) == {"B", "C"}
    for _, row in table.iterrows():
        assert row["sharpe_diff"] == pytest.approx(m.loc["A", "sharpe"] - m.loc[row["versus"], "sharpe"], abs=1e-12)
        assert row["ci_low"] <= row["sharpe_diff"] <= row["ci_high"]
        assert "stationary block bootstrap" in row["method"]


def test_pairwise_is_seeded_and_uses_common_days():
    rng = np.random.default_rng(2)
    frame = _frame(rng.normal(0, 0.01, (300, 2)), ["A", "B"])
    frame.iloc[:20, 1] = np.nan  # B starts later
    t1, _ = pairwise_significance(frame, "A", reps=300, seed=7)
    t2, _ = pairwise_significance(frame, "A", reps=300, seed=7)
    pd.testing.assert_frame_equal(t1, t2)
    both = frame.dropna()
    d = annualized_sharpe(both.to_numpy().T)
    assert t1.loc[0, "sharpe_diff"] == pytest.approx(d[0] - d[1])


def test_bad_inputs_are_typed():
    with pytest.raises(DataError, match="equal length"):
        sharpe_difference_test(np.zeros(5), np.zeros(6))
    with pytest.raises(DataError, match="finite"):
        sharpe_difference_test(np.array([0.1, np.nan, 0.2]), np.zeros(3))
    with pytest.raises(ConfigError, match="no returns"):
        pairwise_significance(_frame(np.zeros((5, 1)), ["A"]), "Z")


def test_bootstrap_intervals_cover_the_true_difference():
    """Coverage: simulated correlated pairs with known annualized Sharpe 1.2 and 0.4."""
    rng = np.random.default_rng(11)
    n_sim, n_days, sd = 200, 500, 0.01
    mu_a, mu_b = 1.2 * sd / math.sqrt(252), 0.4 * sd / math.sqrt(252)
    true = 1.2 - 0.4
    z = rng.standard_normal((n_sim, n_days, 2))
    a = mu_a + sd * z[..., 0]
    b = mu_b + sd * (0.5 * z[..., 0] + math.sqrt(0.75) * z[..., 1])
    hits = 0
    for k in range(n_sim):
        t = sharpe_difference_test(a[k], b[k], reps=300, block=1.0, seed=k)
        hits += t.ci_low <= true <= t.ci_high
    assert 0.88 <= hits / n_sim <= 0.99


def test_null_p_values_are_not_too_small():
    """Under H0 (equal Sharpe) about 5% of the p-values fall below 0.05."""
    rng = np.random.default_rng(12)
    rej = 0
    n_sim = 150
    for k in range(n_sim):
        x = rng.normal(2e-4, 0.01, (400, 2))
        rej += sharpe_difference_test(x[:, 0], x[:, 1], reps=300, block=1.0, seed=k).p_value < 0.05
    assert rej / n_sim <= 0.12


# ----------------------------------------------------------------------------- primary, spans


def test_default_primary_rules():
    assert default_primary(["EqualWeight", "DynamicRiskBudget"], "EqualWeight") == "DynamicRiskBudget"
    assert default_primary(["EqualWeight", "RiskParity"], "RiskParity") == "RiskParity"
    assert default_primary(["EqualWeight", "RiskParity"], "RiskParity", "EqualWeight") == "EqualWeight"
    with pytest.raises(ConfigError, match="run.primary"):
        default_primary(["EqualWeight"], None, "Magic")


def test_split_returns_spans():
    frame = _frame(np.zeros((30, 1)), ["A"], start="2016-12-20")
    spans = split_returns(frame, "2017-01-01")
    assert list(spans) == ["in_sample", "holdout", "full"]
    assert spans["in_sample"].index.max() < pd.Timestamp("2017-01-01") <= spans["holdout"].index.min()
    assert len(spans["in_sample"]) + len(spans["holdout"]) == len(spans["full"])
    assert list(split_returns(frame, None)) == ["full"]


# ----------------------------------------------------------------------------- joint tests


def _joint_frame(edge: dict[str, float], n: int = 600, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.008, n)
    cols = {k: common + rng.normal(0, 0.004, n) + e for k, e in edge.items()}
    return _frame(np.column_stack(list(cols.values())), list(cols))


def test_spa_and_mcs_when_the_primary_dominates():
    from runners.experiments.evidence import joint_tests

    res = joint_tests(_joint_frame({"P": 2e-3, "B": 0.0, "C": 0.0}), "P", reps=300, seed=1)
    assert res["loss"] == "negative daily return" and res["days"] == 600
    assert res["spa"]["benchmark"] == "P" and res["spa"]["alternatives"] == ["B", "C"]
    assert res["spa"]["p_consistent"] > 0.5  # nothing beats the primary
    assert res["mcs"]["included"] == ["P"] and set(res["mcs"]["excluded"]) == {"B", "C"}
    assert res["block_length"] >= 1


def test_spa_rejects_when_an_alternative_dominates():
    from runners.experiments.evidence import joint_tests

    res = joint_tests(_joint_frame({"P": 0.0, "B": 2e-3, "C": 0.0}), "P", reps=300, seed=1)
    assert res["spa"]["p_consistent"] < 0.05
    assert "B" in res["mcs"]["included"] and "P" in res["mcs"]["excluded"]
    again = joint_tests(_joint_frame({"P": 0.0, "B": 2e-3, "C": 0.0}), "P", reps=300, seed=1)
    assert again == res  # seeded


# ----------------------------------------------------------------------------- DSR and PBO


def test_deflated_sharpe_reproduces_the_papers_numerical_example():
    """Bailey and Lopez de Prado (2014), section 'A numerical example': annualized SR 2.5 over
    T = 1250 days (250 a year), N = 100 trials with V[SR] = 1/2 (annualized), skew -3,
    kurtosis 10: SR_0 = 0.1132 (per day) and DSR = 0.9004."""
    from runners.experiments.evidence import deflated_sharpe_ratio, expected_max_sharpe

    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr, sr0b = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, 100, 0.5 / 250, skew=-3.0, kurtosis=10.0)
    assert sr0b == sr0 and dsr == pytest.approx(0.9004, abs=5e-5)
    # one trial: no deflation, the probabilistic Sharpe ratio against 0
    psr, zero = deflated_sharpe_ratio(0.05, 500, 1, 0.0)
    assert zero == 0.0 and psr == pytest.approx(0.5 + 0.5 * math.erf(0.05 * math.sqrt(499) / math.sqrt(1 + 0.5 * 0.0025) / math.sqrt(2)))
    # more trials, lower DSR
    assert deflated_sharpe_ratio(0.1, 1000, 1000, 1e-3)[0] < deflated_sharpe_ratio(0.1, 1000, 10, 1e-3)[0]


def test_pbo_noise_strategies_is_about_one_half():
    from runners.experiments.evidence import pbo_cscv

    rng = np.random.default_rng(0)
    pbos = [pbo_cscv(rng.normal(0, 0.01, (800, 20)), n_splits=10)["pbo"] for _ in range(6)]
    assert 0.35 < float(np.mean(pbos)) < 0.65


def test_pbo_one_dominant_strategy_is_about_zero():
    from runners.experiments.evidence import pbo_cscv

    rng = np.random.default_rng(1)
    m = rng.normal(0, 0.01, (800, 12))
    m[:, 3] += 0.004  # Sharpe ~6: best in sample and out of sample in every split
    res = pbo_cscv(m, n_splits=16)
    assert res["pbo"] == 0.0 and res["combinations"] == 12870 and len(res["logits"]) == 12870


def test_pbo_anti_persistent_best_is_overfit():
    """A strategy whose edge reverses between halves of the sample: the in-sample winner loses out of
    sample in the splits that mix the halves, PBO well above 1/2."""
    from runners.experiments.evidence import pbo_cscv

    rng = np.random.default_rng(2)
    m = rng.normal(0, 0.01, (800, 8))
    m[:400, 0] += 0.003
    m[400:, 0] -= 0.003
    m[:400, 1] -= 0.003
    m[400:, 1] += 0.003
    assert pbo_cscv(m, n_splits=8)["pbo"] > 0.5


def test_pbo_rejects_bad_input():
    from runners.experiments.evidence import pbo_cscv

    with pytest.raises(ConfigError, match="even"):
        pbo_cscv(np.zeros((100, 3)), n_splits=5)
    with pytest.raises(DataError, match="N >= 2"):
        pbo_cscv(np.zeros((100, 1)))
    with pytest.raises(DataError, match="too few"):
        pbo_cscv(np.zeros((20, 3)), n_splits=16)


def test_sweep_evidence_summary():
    from runners.experiments.evidence import sweep_evidence

    rng = np.random.default_rng(3)
    trials = rng.normal(2e-4, 0.01, (600, 9))
    sharpes = annualized_sharpe(trials.T)
    best = int(np.argmax(sharpes))
    ev = sweep_evidence(sharpes, trials[:, best], trial_returns=trials)
    assert ev["n_trials"] == 9 and ev["n_obs"] == 600
    assert ev["sharpe_best"] == pytest.approx(sharpes[best])
    assert ev["expected_max_sharpe"] > 0 and 0 <= ev["deflated_sharpe"] <= 1 and ev["pbo_splits"] == 16
    few = sweep_evidence(sharpes[:4], trials[:, best], trial_returns=trials[:, :4])
    assert math.isnan(few["pbo"]) and "at least 8" in few["pbo_note"]


def test_shared_draw_hand_cases_and_one_block_length():
    r = np.random.default_rng(8).normal(2e-4, 0.01, 700)
    other = np.random.default_rng(9).normal(2e-4, 0.01, 700)
    frame = _frame(np.column_stack([r, r, r - 5e-4, other]), ["P", "Same", "Less", "Other"])
    table, blocks = pairwise_significance(frame, "P", reps=800, seed=3)
    row = table.set_index("versus")
    assert row.loc["Same", "sharpe_diff"] == 0.0 and row.loc["Same", "p_value"] == 1.0
    assert row.loc["Less", "sharpe_diff"] > 0 and row.loc["Less", "ci_low"] > 0 and row.loc["Less", "p_value"] < 0.01
    assert len(set(blocks.values())) == 1  # one draw for every pair
