"""What ``drb paper`` was asked to do (:class:`PaperOptions`) and what that resolves to.

:func:`resolve_setup` reads the config (or prepares the demo folder), picks the strategy and its
parameters and the broker; :func:`fingerprint` is what a resumed run must not change, and
:func:`check_resume` compares it with the committed state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import ConfigError, StateError

__all__ = ["PaperOptions", "PaperSetup", "resolve_setup", "fingerprint", "check_resume", "drb_version", "jsonable"]

log = logging.getLogger("drb.paper")


@dataclass
class PaperOptions:
    """Everything ``drb paper`` was asked to do (see :func:`run_paper`)."""

    state: Path
    config: Path | None = None
    demo: bool = False
    live: Path | None = None
    strategy: str | None = None
    reset: bool = False
    poll: float = 1.0
    max_bars: int | None = None
    until: pd.Timestamp | None = None
    seed: int = 0
    start: str = "2018-01-02"
    end: str = "2025-06-30"
    history_bars: int = 504
    replay_interval: float = 1.0
    quiet: bool = False
    max_gap_days: float = 10.0


@dataclass
class PaperSetup:
    """The resolved run: strategy, parameters, broker, data sources."""

    strategy: str
    params: dict[str, Any]
    broker: dict[str, float]
    history_path: Path
    live: Path
    cfg: Any
    source: dict[str, Any]
    macro: pd.DataFrame | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: tables by their shape, non-finite floats as None, the rest by repr."""
    if isinstance(value, pd.DataFrame | pd.Series):
        return f"<{type(value).__name__} {value.shape}>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | str | bool) or value is None:
        return value
    return repr(value)


def resolve_setup(opts: PaperOptions) -> PaperSetup:
    """Read the config (or prepare the demo folder) and pick the strategy and its parameters."""
    from runners.config import RunConfig, load_config
    from runners.engine.cerebro import strategy_class, strategy_params_for, validate_strategy_params

    if opts.demo and opts.live is not None:
        raise ConfigError("--live and --demo exclude each other (--demo replays the embedded market into DIR/demo/)")
    if opts.config is not None:
        cfg = load_config(opts.config, require_prices=not opts.demo, strategy_validator=validate_strategy_params)
    else:
        if not opts.demo:
            raise ConfigError("give a CONFIG file, or --demo")
        cfg = RunConfig(source="drb paper --demo")
    source: dict[str, Any]
    if opts.demo:
        from runners.live.replay import prepare_replay

        plan = prepare_replay(
            opts.state / "demo", seed=opts.seed, start=opts.start, end=opts.end, history_bars=opts.history_bars
        )
        cfg.prices, cfg.vol_index, cfg.macro, cfg.assets = plan.history, None, plan.macro, {}
        live = plan.live
        source = {"mode": "demo", "seed": opts.seed, "start": opts.start, "end": opts.end, "history_bars": opts.history_bars}
        extras = {"replay": plan}
    else:
        if cfg.prices is None:
            raise ConfigError(f"{opts.config}: data.prices is required (the warm-up history)")
        live = Path(opts.live) if opts.live is not None else Path(cfg.prices)
        source = {"mode": "config", "config": str(opts.config), "history": str(cfg.prices), "live": str(live)}
        extras = {}
    name = opts.strategy or (cfg.strategies[0] if cfg.strategies and len(cfg.strategies) == 1 else "DynamicRiskBudget")
    strategy_class(name)
    params = strategy_params_for(name, cfg)
    broker = dict(cfg.broker)
    macro = None
    if cfg.macro is not None:
        from feeds.loaders import load_macro

        macro = load_macro(cfg.macro)
    return PaperSetup(name, params, broker, Path(cfg.prices), Path(live), cfg, source, macro, extras)


def fingerprint(setup: PaperSetup) -> dict[str, Any]:
    """What a resumed run must not change: the strategy, its parameters and the broker."""
    params = {k: jsonable(v) for k, v in sorted(setup.params.items()) if not isinstance(v, pd.DataFrame | pd.Series)}
    return {"strategy": setup.strategy, "params": params, "broker": dict(sorted(setup.broker.items()))}


def drb_version() -> str:
    """The running drb's version (recorded in ``state.json``)."""
    from drb import __version__

    return str(__version__)


def check_resume(state: dict[str, Any], setup: PaperSetup, folder: Path) -> None:
    """The committed ``state`` must be of the same strategy, parameters, broker (and demo market).

    Raises
    ------
    StateError
        One of them changed since the state was written; one line naming ``folder``.
    """
    if state.get("drb_version", drb_version()) != drb_version():
        log.warning(
            "%s: the state was written by drb %s, this is drb %s: the allocator is restored as it was saved",
            folder,
            state["drb_version"],
            drb_version(),
        )
    if state["strategy"] != setup.strategy:
        raise StateError(
            f"{folder}: the state is for strategy {state['strategy']}, not {setup.strategy}; refusing to trade (--reset starts afresh)"
        )
    old, new = state.get("fingerprint", {}), fingerprint(setup)
    for part in ("params", "broker"):
        a, b = old.get(part, {}), new[part]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                raise StateError(
                    f"{folder}: {part} '{key}' changed since the state was written ({a.get(key)!r} -> {b.get(key)!r}); refusing to trade (--reset starts afresh)"
                )
    src = state.get("source", {})
    if src.get("mode") == "demo" or setup.source.get("mode") == "demo":
        if src != setup.source:
            raise StateError(f"{folder}: the state was written by another market ({src}); refusing to trade (--reset starts afresh)")
