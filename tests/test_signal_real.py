"""Issue 13 targets on the real US data (slow: EGARCH-DCC over 2007-2025).

4-asset run with the default parameters (EGARCH-DCC): turnover at most 100%/yr, at most 12 regime
label changes a year and at most 2% failed EGARCH refits over the whole run (one run checks all
three). 8-asset run (several assets per class): on the median day every asset's relative risk
contribution is within 10 points of its budget in force; the split rule and the solver are what
this checks, so it runs on the EWMA risk model (seconds, not a minute; `benchmarks/real_data.py
--eight` shows the same with EGARCH-DCC: at most 9.0 points, no failed fit).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "real_data.py"
    spec = importlib.util.spec_from_file_location("real_data_bench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_four_asset_turnover_regime_changes_and_failed_fits(real_data_dir):
    from runners.engine.fastpath import run_fast

    rd = _bench()
    market = rd.load(real_data_dir, rd.END)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_fast(market, "DynamicRiskBudget", rd.dynamic_params({}), rd.BROKER)
    s = rd.span_stats(res, None, None)
    assert s["turn"] <= 1.00
    assert s["regime_changes"] <= 12.0
    refits, failed = res.info["risk_model_refits"], res.info["risk_model_failed_fits"]
    assert refits >= 200 and failed <= 0.02 * refits  # 38 of 224 (17%) before issue 13


def test_eight_assets_track_their_budget(real_data_dir):
    from runners.engine.fastpath import run_fast

    rd = _bench()
    market = rd.load(real_data_dir, rd.END, rd.EIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_fast(market, "DynamicRiskBudget", rd.dynamic_params({"risk_model": "ewma"}), rd.BROKER)
    gaps = rd.tracking(res)["median_gap_points"]
    assert (gaps <= 10.0).all(), gaps.to_dict()
