"""What the experiments (``drb compare``, ``drb sweep``, ``drb montecarlo``) share.

Loading the market of a command (a config file or the embedded market), checking strategies and
parameters before any task runs, running several strategies on one market and measuring them, the
JSON form of settings and the fingerprint of the data (a resumed run must match both), and the
resumable task loop: finished results stream to a :class:`runners.parallel.PartStore` and a rerun
with the same settings computes only what is missing.

Heavy libraries (pandas, the engines) are imported inside the functions, so the CLI can import this
module to build its parser cheaply.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drb.errors import ConfigError, DataError, DRBError, DRBWarning

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    import pandas as pd

    from feeds.market import MarketData
    from runners.config import RunConfig
    from runners.engine.cerebro import StrategyResult
    from runners.parallel import ExecutionInfo, PartStore

__all__ = [
    "DEFAULT_BLOCK",
    "ENGINES",
    "SOURCES",
    "HIGHER_IS_BETTER",
    "benchmark_for",
    "check_market_length",
    "check_strategy",
    "evaluate_strategies",
    "jsonable",
    "load_inputs",
    "load_market_from_config",
    "market_fingerprint",
    "markdown_table",
    "open_store",
    "print_data_notes",
    "resolve_out",
    "run_parts",
    "run_strategy",
    "strategy_params",
    "validate_points",
]

#: Engines: ``fast`` (runners.engine.fastpath, default) and ``backtrader`` (runners.engine.cerebro).
ENGINES: tuple[str, ...] = ("fast", "backtrader")

#: Sources of Monte Carlo paths (:mod:`runners.experiments.montecarlo`; ``both`` alternates).
SOURCES: tuple[str, ...] = ("synthetic", "bootstrap", "both")

#: Mean block length of the Monte Carlo stationary bootstrap, in bars (a quarter).
DEFAULT_BLOCK = 63

#: Direction of each metric: True where larger is better (drawdowns, worst month and CVaR are
#: negative numbers, so larger = less bad).
HIGHER_IS_BETTER: dict[str, bool] = {
    "ann_return": True,
    "ann_vol": False,
    "sharpe": True,
    "sortino": True,
    "max_drawdown": True,
    "calmar": True,
    "info_ratio": True,
    "monthly_win_rate": True,
    "monthly_pl_ratio": True,
    "turnover": False,
    "extreme_month_return": True,
    "worst_month": True,
    "cvar95": True,
}


# ----------------------------------------------------------------------------- inputs


def print_data_notes(caught: list[warnings.WarningMessage]) -> None:
    """Print what loading normalized (sorted rows, dropped times, ignored columns), one line each.

    Parameters
    ----------
    caught : list of warnings.WarningMessage
        Recorded while loading; :class:`drb.errors.DataWarning` become ``drb: note: ...`` lines on
        stderr, any other warning is re-emitted.
    """
    import sys

    from drb.errors import DataWarning

    for w in caught:
        if issubclass(w.category, DataWarning):
            print(f"drb: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def load_market_from_config(cfg: RunConfig, *, min_bars: int) -> MarketData:
    """The market a config describes, cut to its ``start``/``end``.

    Parameters
    ----------
    cfg : RunConfig
        ``prices``, ``vol_index``, ``macro``, ``assets``, ``ffill_limit``, ``start``, ``end``.
    min_bars : int
        Fewest aligned daily bars the configured windows need.

    Returns
    -------
    MarketData

    Raises
    ------
    DataError
        When fewer than ``min_bars`` bars remain, naming the prices file.
    """
    from feeds import load_market

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            market = load_market(
                cfg.prices,
                vol_index=cfg.vol_index,
                macro=cfg.macro,
                asset_classes=cfg.assets or None,
                ffill_limit=cfg.ffill_limit,
                assets_from=getattr(cfg, "assets_from", "[assets]"),
            )
        finally:
            print_data_notes(caught)
    if cfg.start is not None or cfg.end is not None:
        market.prices = market.prices.loc[cfg.start : cfg.end]
        if market.vol_index is not None:
            market.vol_index = market.vol_index.loc[cfg.start : cfg.end]
        if market.macro is not None and cfg.end is not None:
            market.macro = market.macro.loc[: cfg.end]
    if len(market.prices) < min_bars:
        raise DataError(
            f"{cfg.prices}: history too short: {len(market.prices)} aligned bars, the configured windows need at least {min_bars}"
        )
    return market


def load_inputs(args: argparse.Namespace) -> tuple[MarketData, RunConfig, dict[str, Any]]:
    """The market and config of a ``CONFIG | --demo`` command.

    Returns
    -------
    market : MarketData
    config : RunConfig
    info : dict
        What the market is (for the manifest): ``{"market": ..., "seed": ...}``.
    """
    from feeds import synthetic_market
    from feeds.market import MarketData
    from runners.config import RunConfig, load_config
    from runners.engine.cerebro import validate_strategy_params

    if bool(args.config) == bool(args.demo):
        raise ConfigError("give a CONFIG file or --demo (the embedded market), not both or neither")
    if args.demo:
        m = synthetic_market(seed=args.seed, start=args.start, end=args.end)
        cfg = RunConfig(source="--demo", seed=args.seed)
        info = {"market": "embedded synthetic market", "seed": args.seed, "start": args.start, "end": args.end}
        return MarketData.from_synthetic(m), cfg, info
    cfg = load_config(args.config, strategy_validator=validate_strategy_params)
    warm = int(cfg.execution.get("warmup", 252))
    market = load_market_from_config(cfg, min_bars=warm + 22)
    return market, cfg, {"market": str(args.config)}


def resolve_out(args: argparse.Namespace, config: RunConfig) -> Path:
    """``--out``, else the config's ``run.out``."""
    if args.out:
        return Path(args.out)
    if config.out is not None:
        return Path(config.out)
    raise ConfigError("no output folder: give --out DIR")


# ----------------------------------------------------------------------------- checks


def check_strategy(name: Any, label: str) -> str:
    """The strategy's canonical name (case ignored, "did you mean" on a near miss).

    Raises
    ------
    ConfigError
        Prefixed with ``label`` (the option or config key that named it).
    """
    from runners.engine.cerebro import STRATEGY_NAMES, canonical_strategy_name

    if not isinstance(name, str):
        raise ConfigError(f"{label}: expected a strategy name (known: {', '.join(STRATEGY_NAMES)})")
    try:
        return canonical_strategy_name(name)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def check_market_length(market: MarketData, params: Mapping[str, Any]) -> None:
    """Refuse a market shorter than the warm-up (``params["warmup"]``, default 252) plus a month."""
    warm = int(params.get("warmup", 252))
    if len(market.prices) <= warm + 21:
        raise DataError(
            f"history too short: {len(market.prices)} bars, the warm-up of {warm} bars plus a month needs {warm + 22}"
        )


def check_engine(engine: str) -> None:
    """Refuse an engine not in :data:`ENGINES` (``--engine``)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine '{engine}' (known: {', '.join(ENGINES)})")


def validate_points(market: MarketData, strategy: str, params_list: Sequence[Mapping[str, Any]]) -> None:
    """Build each distinct parameter set's allocator once, so a bad value fails before any task runs.

    Raises
    ------
    ConfigError
        Naming the strategy and (the start of) the parameters.
    """
    from runners.engine.fastpath import make_allocator
    from runners.experiments.compare import check_floors

    seen: set[str] = set()
    for p in params_list:
        key = json.dumps(jsonable(p), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        check_floors(market, strategy, p)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DRBWarning)
                make_allocator(strategy, market, p)
        except DRBError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{strategy}: invalid parameters {json.dumps(jsonable(p))[:200]}: {exc}") from None


def strategy_params(name: str, config: RunConfig, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A strategy's parameters from the config (:func:`~runners.engine.cerebro.strategy_params_for`), then ``extra``."""
    from runners.engine.cerebro import strategy_params_for

    p = strategy_params_for(name, config)
    p.update(extra or {})
    return p


def benchmark_for(config: RunConfig) -> str:
    """The information ratio's reference: ``run.benchmark`` of the config, else EqualWeight."""
    return config.benchmark or "EqualWeight"


# ----------------------------------------------------------------------------- JSON and fingerprints


def jsonable(obj: Any) -> Any:
    """``obj`` with tuples, numpy scalars, paths and timestamps turned into JSON types (settings, manifests)."""
    from runners.rundir import to_jsonable

    return to_jsonable(obj)


def market_fingerprint(market: MarketData) -> str:
    """A short hash (16 hex digits) of the data, so a resume on other data is refused."""
    import hashlib

    import pandas as pd

    h = hashlib.sha1()
    h.update(pd.util.hash_pandas_object(market.prices, index=True).to_numpy().tobytes())
    if market.vol_index is not None:
        h.update(pd.util.hash_pandas_object(market.vol_index, index=True).to_numpy().tobytes())
    if market.macro is not None:
        h.update(pd.util.hash_pandas_object(market.macro, index=True).to_numpy().tobytes())
    h.update(json.dumps(market.asset_classes, sort_keys=True).encode())
    return h.hexdigest()[:16]


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame (columns only, no index) as a Markdown table (:func:`runners.markdown.plain_table`)."""
    from runners.markdown import plain_table

    return plain_table(frame, digits)


# ----------------------------------------------------------------------------- running strategies


def run_strategy(
    market: MarketData,
    name: str,
    params: Mapping[str, Any] | None = None,
    broker: Mapping[str, float] | None = None,
    engine: str = "fast",
) -> StrategyResult:
    """One backtest with the chosen engine (``fast``: no daily records kept)."""
    check_engine(engine)
    if engine == "fast":
        from runners.engine.fastpath import run_fast

        return run_fast(market, name, params, broker, record=False)
    from runners.engine.cerebro import run_backtest

    return run_backtest(market, name, params, broker)


def _run_labelled(
    market: MarketData, runs: Mapping[str, Mapping[str, Any]], broker: Mapping[str, float] | None, engine: str
) -> tuple[dict[str, StrategyResult], dict[str, float]]:
    """Run ``runs`` (``{label: params}``, label ``"Name"`` or ``"Name#tag"``); results renamed to their labels."""
    results: dict[str, StrategyResult] = {}
    seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DRBWarning)
        for label, params in runs.items():
            name = label.split("#", 1)[0]
            t0 = time.perf_counter()
            res = run_strategy(market, name, params, broker, engine)
            seconds[label] = time.perf_counter() - t0
            res.name = label
            res.returns = res.returns.rename(label)
            if len(res.rebalances):
                res.rebalances = res.rebalances.assign(strategy=label)
            results[label] = res
    return results, seconds


def evaluate_strategies(
    market: MarketData,
    runs: Mapping[str, Mapping[str, Any]],
    *,
    broker: Mapping[str, float] | None = None,
    engine: str = "fast",
    benchmark: str | None = None,
    benchmark_result: StrategyResult | None = None,
    risk_free: float = 0.0,
    returns_out: dict[str, pd.Series] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run several strategies on one market and return their metrics.

    Parameters
    ----------
    market : MarketData
    runs : mapping
        ``{label: params}``; the label is a strategy name, or ``"Name#tag"`` to run strategy
        ``Name`` under a distinct label (several parameter sets of one strategy).
    broker : mapping, optional
    engine : {"fast", "backtrader"}
    benchmark : str, optional
        Label the information ratio is measured against: one of ``runs``, or the label of
        ``benchmark_result`` (run elsewhere, e.g. once on the clean market).
    benchmark_result : StrategyResult, optional
    risk_free : float
        Annual risk-free rate (decimal).
    returns_out : dict, optional
        Filled with ``label -> daily returns`` of every run (for the sweep's PBO).

    Returns
    -------
    metrics : DataFrame, shape (len(runs), 13)
        Index = labels, columns :data:`runners.metrics.METRIC_COLUMNS`.
    seconds : dict
        Wall seconds of each run.
    """
    from runners.experiments.compare import compute_comparison_metrics

    results, seconds = _run_labelled(market, runs, broker, engine)
    if returns_out is not None:
        returns_out.update({label: res.returns for label, res in results.items()})
    extra = False
    if benchmark is not None and benchmark not in results:
        if benchmark_result is None:
            raise ConfigError(f"benchmark '{benchmark}' is neither run nor given")
        results[benchmark] = benchmark_result
        extra = True
    table = compute_comparison_metrics(results, market, benchmark=benchmark, risk_free=risk_free)
    if extra:
        table = table.drop(index=benchmark)
    return table.loc[list(runs)], seconds


# ----------------------------------------------------------------------------- resumable runs


def open_store(out: Path, kind: str, settings: Mapping[str, Any], *, restart: bool) -> PartStore:
    """The part store of a resumable run of ``kind`` in ``out`` (``parts/<kind>/``, ``<kind>.json``).

    Parameters
    ----------
    out : Path
        The output folder.
    kind : str
        ``sweep``, ``forecast_errors`` or ``montecarlo``.
    settings : mapping
        What decides the results (made JSON-ready here); a rerun must match them to resume.
    restart : bool
        Discard the parts of an earlier run first.
    """
    from runners.parallel import PartStore

    return PartStore(out, kind, jsonable(settings), restart=restart)


def run_parts(
    store: PartStore,
    tasks: Sequence[tuple[str, tuple[Any, ...]]],
    fn: Callable[..., pd.DataFrame],
    *,
    client: Any,
    shared: Mapping[str, Any],
    progress: bool,
    desc: str,
    unit: str,
    batch_size: int | None = None,
    on_part: Callable[[dict[str, pd.DataFrame]], None] | None = None,
    done: set[str] | None = None,
) -> tuple[dict[str, pd.DataFrame], ExecutionInfo, int]:
    """Run the tasks whose part ``store`` lacks, writing each result as a part as it finishes.

    Parameters
    ----------
    store : PartStore
    tasks : sequence of (key, args)
        Every task of the run (finished ones are skipped); ``fn(*args, **shared)`` returns a frame.
    fn : callable
        Module-level task function (see :func:`runners.parallel.run_tasks`).
    client : distributed.Client or None
        None runs serially.
    shared : mapping
        Keyword arguments common to every task.
    progress : bool
    desc, unit : str
        Progress bar label and unit.
    batch_size : int, optional
        Tasks per cluster job (default: guided).
    on_part : callable, optional
        Called with the frames gathered so far after each new part is written.
    done : set of str, optional
        ``store.done()`` when the caller already has it (spares hashing every part again).

    Returns
    -------
    frames : dict
        ``key -> frame`` of every finished task (resumed and new).
    info : ExecutionInfo
    resumed : int
        Parts that were already finished.
    """
    from runners.parallel import run_tasks

    done = store.done() if done is None else done
    todo = [(k, a) for k, a in tasks if k not in done]
    frames = store.read_all([k for k, _ in tasks])
    resumed = len(frames)

    def on_result(key: Any, frame: pd.DataFrame) -> None:
        store.write(str(key), frame)
        frames[str(key)] = frame
        if on_part is not None:
            on_part(frames)

    info = run_tasks(
        fn,
        todo,
        on_result=on_result,
        client=client,
        shared=shared,
        total=len(tasks),
        initial=len(tasks) - len(todo),
        progress=progress,
        desc=desc,
        unit=unit,
        batch_size=batch_size,
    )
    return frames, info, resumed


def manifest_status(store: PartStore, info: ExecutionInfo | None, *, mode: str, threads: int) -> dict[str, Any]:
    """The manifest entries every resumable run writes: execution, failures, recomputed parts.

    Returns
    -------
    dict
        ``execution`` (``mode``, ``workers``), ``failed`` (one dict per failed task),
        ``recomputed_parts`` (keys whose part failed its checksum).
    """
    return {
        "execution": {"mode": mode, "workers": threads},
        "failed": [f.__dict__ for f in info.failures] if info is not None else [],
        "recomputed_parts": store.recomputed,
    }
