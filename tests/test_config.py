"""The TOML config: strict keys, clear one-line messages."""

from __future__ import annotations

import pytest

from drb.errors import ConfigError
from runners.backtest import validate_strategy_params
from runners.config import load_config


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
