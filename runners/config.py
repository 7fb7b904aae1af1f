"""The TOML run configuration: parsed with :mod:`tomllib` (nothing executed), validated strictly.

Format (every table and key optional except ``data.prices``; paths are relative to the config
file)::

    [data]
    prices = "prices.csv"        # date column + one column per asset (CSV, CSV.gz or Parquet)
    vol_index = "vix.csv"        # optional implied-volatility index
    macro = "macro.csv"          # optional monthly leading indicators
    ffill_limit = 5              # longest gap forward-filled, in bars
    start = "2019-01-01"         # optional: cut the data (inclusive)
    end = "2025-06-30"

    [assets]                     # when price columns are not class names; unlisted columns ignored
    SPY = "equity"
    TLT = "bond"

    [broker]
    cash = 1000000.0
    commission = 0.0005          # proportional, per side (5 bp)
    slippage = 0.0               # proportional slippage on fills
    cash_buffer = 0.002          # share of value left in cash

    [run]
    strategies = ["DynamicRiskBudget", "EqualWeight"]   # default: all
    benchmark = "EqualWeight"    # for the information ratio
    risk_free = 0.0              # annual, decimal
    out = "drb-out"              # output folder
    seed = 0
    workers = 2                  # parallel processes (default: cores)
    primary = "DynamicRiskBudget"  # tested against every other strategy (significance.csv)
    holdout_start = "2017-01-01" # split metrics and tests into in-sample / held-out spans

    [execution]                  # applies to every strategy unless overridden in its table
    total_cap = 0.15             # one-way turnover cap per rebalance
    asset_cap = 0.08             # per-asset weight change cap per rebalance
    warmup = 252                 # bars before the first investment (same for all strategies)

    [strategy.DynamicRiskBudget] # any parameter of that strategy class
    smoothing = "vix"

    [macro]                      # optional: macro columns to use and their transforms
    INDPRO = "yoy"               # level, diff, yoy (12-month % change) or logdiff;
    ICSA = "-yoy"                # a leading '-' flips the sign (higher = stronger growth)
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import ConfigError

__all__ = ["RunConfig", "load_config", "parse_config", "DEFAULT_BROKER", "DEFAULT_EXECUTION"]

DEFAULT_BROKER: dict[str, float] = {
    "cash": 1_000_000.0,
    "commission": 0.0005,
    "slippage": 0.0,
    "cash_buffer": 0.002,
}
DEFAULT_EXECUTION: dict[str, Any] = {"total_cap": 0.15, "asset_cap": 0.08, "warmup": 252}


def _num(lo: float | None = None, hi: float | None = None, *, integer: bool = False, open_lo: bool = False):
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {v!r}")
        if integer and not isinstance(v, int):
            raise ConfigError(f"{key}: expected an integer, got {v!r}")
        if v != v:  # NaN
            raise ConfigError(f"{key}: NaN is not allowed")
        if lo is not None and (v <= lo if open_lo else v < lo):
            raise ConfigError(f"{key}: must be {'>' if open_lo else '>='} {lo}, got {v!r}")
        if hi is not None and v > hi:
            raise ConfigError(f"{key}: must be <= {hi}, got {v!r}")
        return int(v) if integer else float(v)

    return check


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{key}: expected a non-empty string, got {v!r}")
    return v


def _date(key: str, v: Any) -> pd.Timestamp:
    try:
        return pd.Timestamp(v)
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: not a date: {v!r}") from None


def _str_list(key: str, v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v) or not v:
        raise ConfigError(f"{key}: expected a non-empty list of strings, got {v!r}")
    return list(v)


def _cap(key: str, v: Any) -> float | None:
    if v is False or v == "none" or v == "off":
        return None
    return _num(0.0, 2.0, open_lo=True)(key, v)


_SCHEMA: dict[str, dict[str, Callable[[str, Any], Any]]] = {
    "data": {
        "prices": _str,
        "vol_index": _str,
        "macro": _str,
        "ffill_limit": _num(0, 60, integer=True),
        "start": _date,
        "end": _date,
    },
    "broker": {
        "cash": _num(0.0, open_lo=True),
        "commission": _num(0.0, 0.1),
        "slippage": _num(0.0, 0.1),
        "cash_buffer": _num(0.0, 0.5),
    },
    "run": {
        "strategies": _str_list,
        "benchmark": _str,
        "risk_free": _num(-0.5, 1.0),
        "out": _str,
        "seed": _num(0, integer=True),
        "workers": _num(1, 256, integer=True),
        "primary": _str,
        "holdout_start": _date,
    },
    "execution": {
        "total_cap": _cap,
        "asset_cap": _cap,
        "warmup": _num(2, integer=True),
    },
}
_TABLES = {"data", "assets", "broker", "run", "execution", "strategy", "macro"}


@dataclass
class RunConfig:
    """A validated run configuration (see the module docstring for the TOML format)."""

    prices: Path | None = None
    vol_index: Path | None = None
    macro: Path | None = None
    ffill_limit: int = 5
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    assets: dict[str, str] = field(default_factory=dict)
    #: How messages name the asset mapping: "[assets]" (a config) or "--assets" (the command line).
    assets_from: str = "[assets]"
    broker: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BROKER))
    execution: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_EXECUTION))
    strategies: list[str] | None = None
    benchmark: str | None = None
    risk_free: float = 0.0
    out: Path | None = None
    seed: int = 0
    workers: int | None = None
    primary: str | None = None
    holdout_start: pd.Timestamp | None = None
    strategy_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    macro_transforms: dict[str, str] | None = None
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for run.json."""
        return {
            "source": self.source,
            "data": {
                "prices": str(self.prices) if self.prices else None,
                "vol_index": str(self.vol_index) if self.vol_index else None,
                "macro": str(self.macro) if self.macro else None,
                "ffill_limit": self.ffill_limit,
                "start": str(self.start.date()) if self.start is not None else None,
                "end": str(self.end.date()) if self.end is not None else None,
            },
            "assets": dict(self.assets),
            "broker": dict(self.broker),
            "execution": dict(self.execution),
            "run": {
                "strategies": self.strategies,
                "benchmark": self.benchmark,
                "risk_free": self.risk_free,
                "out": str(self.out) if self.out else None,
                "seed": self.seed,
                "workers": self.workers,
                "primary": self.primary,
                "holdout_start": str(self.holdout_start.date()) if self.holdout_start is not None else None,
            },
            "strategy": {k: dict(v) for k, v in self.strategy_params.items()},
            "macro": dict(self.macro_transforms) if self.macro_transforms else None,
        }


def _check_table(name: str, table: Any, label: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{label}: [{name}] must be a table")
    schema = _SCHEMA[name]
    out = {}
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"{label}: unknown key '{name}.{key}' (known: {', '.join(schema)})")
        out[key] = schema[key](f"{label}: {name}.{key}", value)
    return out


def _checked_strategy(
    validator: Callable[[str, Mapping[str, Any]], Any] | None,
    name: str,
    params: Mapping[str, Any],
    label: str,
    where: str,
) -> str:
    """Run the strategy validator; its answer (when a string) is the canonical strategy name."""
    if validator is None:
        return name
    try:
        canon = validator(name, params)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {where}{exc}") from None
    return canon if isinstance(canon, str) else name


def parse_config(
    raw: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    label: str = "config",
    require_prices: bool = True,
    strategy_validator: Callable[[str, Mapping[str, Any]], Any] | None = None,
) -> RunConfig:
    """Validate a parsed TOML mapping.

    Parameters
    ----------
    raw : mapping
        ``tomllib.load`` output.
    base_dir : Path, optional
        Folder that relative paths are resolved against.
    label : str
        How messages name the config (its path).
    require_prices : bool
        ``data.prices`` must be given (False for ``--demo`` runs).
    strategy_validator : callable, optional
        ``f(strategy_name, params)`` raising :class:`ConfigError` for unknown strategies or bad
        parameters; when it returns a string, that is the strategy's canonical name (so
        ``run.strategies``, ``run.benchmark`` and ``[strategy.*]`` names may differ in case).
    """
    for key in raw:
        if key not in _TABLES:
            raise ConfigError(f"{label}: unknown table or key '{key}' (known: {', '.join(sorted(_TABLES))})")
    cfg = RunConfig(source=label)
    base = base_dir or Path(".")
    _apply_data_table(raw, cfg, base, label, require_prices)
    _apply_assets_table(raw, cfg, label)
    cfg.broker.update(_check_table("broker", raw.get("broker", {}), label))
    cfg.execution.update(_check_table("execution", raw.get("execution", {}), label))
    _apply_run_table(raw, cfg, base, label)
    _apply_strategy_tables(raw, cfg, label, strategy_validator)
    _apply_macro_table(raw, cfg, label)
    if cfg.strategies is not None:
        cfg.strategies = [_checked_strategy(strategy_validator, n, {}, label, "run.strategies: ") for n in cfg.strategies]
    if cfg.benchmark is not None:
        cfg.benchmark = _checked_strategy(strategy_validator, cfg.benchmark, {}, label, "run.benchmark: ")
    return cfg


def _apply_data_table(raw: Mapping[str, Any], cfg: RunConfig, base: Path, label: str, require_prices: bool) -> None:
    """``[data]``: input files (relative to the config's folder), forward-fill limit, span."""
    data = _check_table("data", raw.get("data", {}), label)
    for key in ("prices", "vol_index", "macro"):
        if key in data:
            p = Path(data[key])
            setattr(cfg, key, p if p.is_absolute() else base / p)
    if require_prices and cfg.prices is None:
        raise ConfigError(f"{label}: data.prices is required (a CSV or Parquet file of daily prices)")
    cfg.ffill_limit = data.get("ffill_limit", cfg.ffill_limit)
    cfg.start = data.get("start")
    cfg.end = data.get("end")
    if cfg.start is not None and cfg.end is not None and cfg.end <= cfg.start:
        raise ConfigError(f"{label}: data.end {cfg.end.date()} is not after data.start {cfg.start.date()}")


def _apply_assets_table(raw: Mapping[str, Any], cfg: RunConfig, label: str) -> None:
    """``[assets]``: price column -> asset class."""
    assets = raw.get("assets", {})
    if not isinstance(assets, Mapping):
        raise ConfigError(f"{label}: [assets] must be a table of column = \"class\"")
    for k, v in assets.items():
        if not isinstance(v, str):
            raise ConfigError(f"{label}: assets.{k}: expected a class name string, got {v!r}")
    cfg.assets = dict(assets)


def _apply_run_table(raw: Mapping[str, Any], cfg: RunConfig, base: Path, label: str) -> None:
    """``[run]``: strategies, benchmark, risk-free rate, output folder, seed, workers, evidence."""
    run = _check_table("run", raw.get("run", {}), label)
    cfg.strategies = run.get("strategies")
    cfg.benchmark = run.get("benchmark")
    cfg.risk_free = run.get("risk_free", 0.0)
    if "out" in run:
        p = Path(run["out"])
        cfg.out = p if p.is_absolute() else base / p
    cfg.seed = run.get("seed", 0)
    cfg.workers = run.get("workers")
    cfg.primary = run.get("primary")
    cfg.holdout_start = run.get("holdout_start")


def _apply_strategy_tables(
    raw: Mapping[str, Any],
    cfg: RunConfig,
    label: str,
    strategy_validator: Callable[[str, Mapping[str, Any]], Any] | None,
) -> None:
    """``[strategy.NAME]``: parameters per strategy (names ignore case)."""
    strat = raw.get("strategy", {})
    if not isinstance(strat, Mapping):
        raise ConfigError(f"{label}: [strategy] must hold one table per strategy, e.g. [strategy.DynamicRiskBudget]")
    for name, params in strat.items():
        if not isinstance(params, Mapping):
            raise ConfigError(f"{label}: [strategy.{name}] must be a table of parameters")
        canon = _checked_strategy(strategy_validator, name, params, label, "")
        if canon in cfg.strategy_params:
            raise ConfigError(f"{label}: [strategy.{name}] repeats [strategy.{canon}] (names ignore case)")
        cfg.strategy_params[canon] = dict(params)


def _apply_macro_table(raw: Mapping[str, Any], cfg: RunConfig, label: str) -> None:
    """``[macro]``: validate (:func:`indicators.macro.parse_macro_spec`) and hand it to the
    dynamic strategy as its ``macro_transforms`` parameter."""
    if "macro" not in raw:
        return
    from indicators.macro import parse_macro_spec

    cfg.macro_transforms = parse_macro_spec(raw["macro"], f"{label}: macro").as_dict()
    params = cfg.strategy_params.setdefault("DynamicRiskBudget", {})
    if "macro_transforms" in params:
        raise ConfigError(
            f"{label}: give the macro transforms once: in [macro] or as "
            "strategy.DynamicRiskBudget.macro_transforms, not both"
        )
    params["macro_transforms"] = dict(cfg.macro_transforms)


def load_config(
    path: str | Path,
    *,
    require_prices: bool = True,
    strategy_validator: Callable[[str, Mapping[str, Any]], Any] | None = None,
) -> RunConfig:
    """Read and validate a TOML config file (see :func:`parse_config`)."""
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise ConfigError(f"{label}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{label}: is a directory, expected a TOML file")
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not a text TOML file") from None
    return parse_config(
        raw,
        base_dir=path.parent,
        label=label,
        require_prices=require_prices,
        strategy_validator=strategy_validator,
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
