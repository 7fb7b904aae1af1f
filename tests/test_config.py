"""The TOML config: strict keys, clear one-line messages."""

from __future__ import annotations

import pytest

from drb.errors import ConfigError
from runners.config import load_config
from runners.engine.cerebro import validate_strategy_params


def _cfg(tmp_path, text):
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


def test_full_config(tmp_path):
    p = _cfg(
        tmp_path,
        """
[data]
prices = "prices.csv"
vol_index = "vix.csv"
ffill_limit = 3
start = "2019-01-01"
[assets]
SPY = "equity"
TLT = "bond"
[broker]
cash = 1e6
commission = 0.001
[run]
strategies = ["DynamicRiskBudget", "EqualWeight"]
benchmark = "EqualWeight"
out = "out"
[execution]
total_cap = 0.2
asset_cap = false
[strategy.DynamicRiskBudget]
smoothing = 0.15
eigen_threshold = 0.1
""",
    )
    cfg = load_config(p, strategy_validator=validate_strategy_params)
    assert cfg.prices == tmp_path / "prices.csv"
    assert cfg.out == tmp_path / "out"
    assert cfg.broker["commission"] == 0.001 and cfg.broker["cash_buffer"] == 0.002
    assert cfg.execution == {"total_cap": 0.2, "asset_cap": None, "warmup": 252}
    assert cfg.strategy_params["DynamicRiskBudget"] == {"smoothing": 0.15, "eigen_threshold": 0.1}
    assert cfg.assets == {"SPY": "equity", "TLT": "bond"}
    assert cfg.to_dict()["data"]["start"] == "2019-01-01"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[data]\nprices='p.csv'\ncolour=1\n", r"unknown key 'data.colour'"),
        ("[dat]\nprices='p.csv'\n", r"unknown table or key 'dat'"),
        ("[data]\nvol_index='v.csv'\n", r"data.prices is required"),
        ("[data]\nprices='p.csv'\n[broker]\ncommission=-1\n", r"broker.commission: must be >= 0.0, got -1"),
        ("[data]\nprices='p.csv'\n[broker]\ncash='lots'\n", r"broker.cash: expected a number, got 'lots'"),
        ("[data]\nprices='p.csv'\n[execution]\nwarmup=1.5\n", r"execution.warmup: expected an integer"),
        ("[data]\nprices='p.csv'\n[run]\nstrategies=[]\n", r"run.strategies: expected a non-empty list"),
        ("[data]\nprices='p.csv'\n[strategy.Magic]\nx=1\n", r"unknown strategy 'Magic'"),
        ("[data]\nprices='p.csv'\n[strategy.EqualWeight]\nlambda=1\n", r"strategy.EqualWeight: unknown parameter 'lambda'"),
        ("[data]\nprices='p.csv'\n[run]\nstrategies=['Nope']\n", r"unknown strategy 'Nope'"),
        ("[data]\nprices='p.csv'\nstart='2020-01-01'\nend='2019-01-01'\n", r"data.end 2019-01-01 is not after data.start"),
        ("[data\nprices=1", r"invalid TOML"),
        ("[data]\nprices='p.csv'\n[run]\nstrategies=['RiskParty']\n", r"unknown strategy 'RiskParty' \(did you mean 'RiskParity'\?\)"),
        ("[data]\nprices='p.csv'\n[run]\nbenchmark='EqualWieght'\n", r"run.benchmark: unknown strategy 'EqualWieght' \(did you mean 'EqualWeight'"),
        (
            "[data]\nprices='p.csv'\n[strategy.EqualWeight]\ncov_window='sixty'\n",
            r"run\.toml: strategy\.EqualWeight\.cov_window: expected an integer, got 'sixty'$",
        ),
        (
            "[data]\nprices='p.csv'\n[strategy.DynamicRiskBudget]\nregime_trigger=1\n",
            r"strategy\.DynamicRiskBudget\.regime_trigger: expected true or false, got 1$",
        ),
        (
            "[data]\nprices='p.csv'\n[strategy.DynamicRiskBudget]\ntau='0.02'\n",
            r"strategy\.DynamicRiskBudget\.tau: expected a number, got '0.02'$",
        ),
        (
            "[data]\nprices='p.csv'\n[strategy.RiskParity]\ncov_window=60.5\n",
            r"strategy\.RiskParity\.cov_window: expected an integer, got 60.5$",
        ),
        (
            "[data]\nprices='p.csv'\n[strategy.EqualWeight]\ncov_windows=60\n",
            r"unknown parameter 'cov_windows' \(did you mean 'cov_window'\?\)",
        ),
        (
            "[data]\nprices='p.csv'\n[strategy.EqualWeight]\nwarmup=30\n[strategy.equalweight]\nwarmup=40\n",
            r"\[strategy\.equalweight\] repeats \[strategy\.EqualWeight\]",
        ),
    ],
)
def test_bad_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(_cfg(tmp_path, text), strategy_validator=validate_strategy_params)
    assert "\n" not in str(exc.value)
    assert "run.toml" in str(exc.value)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


def test_strategy_names_ignore_case(tmp_path):
    p = _cfg(
        tmp_path,
        "[data]\nprices='p.csv'\n[run]\nstrategies=['dynamicriskbudget', 'EQUALWEIGHT']\n"
        "benchmark='equalweight'\n[strategy.riskparity]\ncov_window=40\n",
    )
    cfg = load_config(p, strategy_validator=validate_strategy_params)
    assert cfg.strategies == ["DynamicRiskBudget", "EqualWeight"]
    assert cfg.benchmark == "EqualWeight"
    assert cfg.strategy_params == {"RiskParity": {"cov_window": 40}}


def test_well_typed_strategy_params_pass(tmp_path):
    p = _cfg(
        tmp_path,
        "[data]\nprices='p.csv'\n[strategy.DynamicRiskBudget]\nsmoothing=0.15\nrebalance=21\n"
        "regime_trigger=false\ntarget_vol=0.1\nsmoothing_bounds=[0.05, 0.3]\ntotal_cap=false\ntau=1\n",
    )
    cfg = load_config(p, strategy_validator=validate_strategy_params)
    assert cfg.strategy_params["DynamicRiskBudget"]["rebalance"] == 21
