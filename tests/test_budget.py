"""Budget matrix, tilts, floors and smoothing (DESIGN section 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drb.errors import ConfigError
from strategies.core.budget import (
    DEFAULT_BUDGET_MATRIX,
    INITIAL_BUDGET,
    REGIMES,
    anticipated_budget,
    apply_tilts,
    budget_matrix,
    class_to_asset_budget,
    floor_and_normalize,
    smooth_budget,
    smoothing_lambda,
)


def test_default_matrix_honours_the_paper():
    m = DEFAULT_BUDGET_MATRIX
    assert m.shape == (12, 4)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert (m.to_numpy() >= 0).all()
    assert m.loc["recovery/low", "equity"] == pytest.approx(0.60)
    for v in ("low", "medium", "high"):
        assert m.loc[f"recovery/{v}", "real_estate"] == pytest.approx(0.15)
        assert m.loc[f"expansion/{v}", "commodity"] == pytest.approx(0.25)
    assert m.loc["recession/high", "equity"] == pytest.approx(0.15)
    assert m.loc["recession/high", "bond"] == pytest.approx(0.50)
    assert m["bond"].between(0.15, 0.50).all()
    assert list(m.index) == list(REGIMES)
    assert sum(INITIAL_BUDGET.values()) == pytest.approx(1.0)


def test_matrix_override_and_errors():
    m = budget_matrix({"recovery/low": {"equity": 2, "bond": 1, "commodity": 1, "real_estate": 0}})
    assert m.loc["recovery/low"].tolist() == pytest.approx([0.5, 0.25, 0.25, 0.0])
    assert m.loc["recession/high", "bond"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="unknown regime 'boom/low'"):
        budget_matrix({"boom/low": {"equity": 1}})
    with pytest.raises(ConfigError, match="missing bond"):
        budget_matrix({"recovery/low": {"equity": 1, "commodity": 0, "real_estate": 0}})
    with pytest.raises(ConfigError, match=">= 0"):
        budget_matrix({"recovery/low": {"equity": -1, "bond": 1, "commodity": 1, "real_estate": 1}})


def test_class_budget_split_over_assets():
    b = class_to_asset_budget(INITIAL_BUDGET, ["equity", "equity", "bond"])
    # commodity and real estate absent: their budget is dropped and the rest renormalized
    np.testing.assert_allclose(b, np.array([0.2, 0.2, 0.3]) / 0.7)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=12),
    st.floats(0, 0.08),
)
def test_floor_and_normalize_properties(raw, floor):
    b = floor_and_normalize(np.array(raw), floor)
    assert b.sum() == pytest.approx(1.0)
    assert b.min() >= floor - 1e-12
    if sum(raw) > 0 and min(raw) / sum(raw) >= floor:
        np.testing.assert_allclose(b, np.array(raw) / sum(raw), atol=1e-12)


def test_floor_lifts_and_keeps_proportions():
    b = floor_and_normalize(np.array([0.0, 0.5, 0.5]), 0.02)
    np.testing.assert_allclose(b, [0.02, 0.49, 0.49])
    with pytest.raises(ConfigError, match="infeasible"):
        floor_and_normalize(np.ones(3), 0.4)


def test_tilts_bounded():
    base = np.array([0.4, 0.3, 0.15, 0.15])
    mom = np.array([10.0, -1.0, 0.0, 0.5])
    b = apply_tilts(base, [mom], strength=1.0, max_tilt=0.05, floor=0.0)
    # each tilt at most 5 points before renormalization (which is 1 + sum of tilts)
    raw = base + np.clip((mom - mom.mean()) / mom.std(), -0.05, 0.05)
    np.testing.assert_allclose(b, raw / raw.sum())
    assert np.all(np.abs(b * raw.sum() - base) <= 0.05 + 1e-12)
    np.testing.assert_allclose(apply_tilts(base, [None, np.array([1.0, np.nan, 0, 0])]), base)


def test_smoothing_lambda_paper_formula():
    # lambda = 0.05 + 0.2 * sigmoid(VIX - mean): at the mean 0.15, bounded by (0.05, 0.25)
    assert smoothing_lambda(20.0, 20.0) == pytest.approx(0.15)
    assert smoothing_lambda(21.0, 20.0) == pytest.approx(0.05 + 0.2 / (1 + np.exp(-1)))
    assert smoothing_lambda(80.0, 20.0) == pytest.approx(0.25)
    assert smoothing_lambda(5.0, 20.0) == pytest.approx(0.05, abs=1e-6)
    assert smoothing_lambda(5.0, 20.0, lower=0.08) == pytest.approx(0.08)
    # amplitude 0.3 reaches the text's 0.35, and the clip holds
    assert smoothing_lambda(80.0, 20.0, amplitude=0.3) == pytest.approx(0.35)
    assert smoothing_lambda(80.0, 20.0, amplitude=0.5) == pytest.approx(0.35)
    assert smoothing_lambda(25.0, 20.0, scale=5.0) == pytest.approx(0.05 + 0.2 / (1 + np.exp(-1)))
    assert smoothing_lambda(np.nan, 20.0) == pytest.approx(0.15)


def test_smooth_and_anticipate():
    prev, tgt = np.array([0.4, 0.3, 0.15, 0.15]), np.array([0.6, 0.15, 0.1, 0.15])
    np.testing.assert_allclose(smooth_budget(prev, tgt, 0.15), 0.85 * prev + 0.15 * tgt)
    m = DEFAULT_BUDGET_MATRIX.to_numpy()
    row = np.zeros(12)
    row[11] = 1.0
    np.testing.assert_allclose(anticipated_budget(m, 0, row, 0.5), 0.5 * m[0] + 0.5 * m[11])
    np.testing.assert_allclose(anticipated_budget(m, 3, row, 0.0), m[3])
