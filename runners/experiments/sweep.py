"""Parameter sweeps and forecast-error injection (the paper's section 4.4), locally or on Dask.

``drb sweep (CONFIG | --demo) --grid GRID.toml --out DIR`` runs one strategy (by default
``DynamicRiskBudget``) at every point of a grid over any of its parameters on the same market, and
``drb sweep (CONFIG | --demo) --forecast-errors --out DIR`` reruns it on copies of the market whose
macro leading indicators and implied-volatility index carry multiplicative noise (the paper's
Table 2). Both can run in one call. Every task goes through :mod:`runners.parallel` (serial,
a Dask ``LocalCluster`` or ``--scheduler``), finished results stream to ``DIR/parts/`` atomically
and a rerun with the same settings resumes.

The grid file (TOML)
--------------------
::

    [sweep]
    strategy = "DynamicRiskBudget"      # the strategy swept (any of runners.engine.cerebro.STRATEGY_NAMES)
    design = "product"                  # every combination; or "one_at_a_time" (each axis moved
                                        # alone, the others at their base value)
    baselines = ["EqualWeight", "RiskParity"]   # run once on the same market, for reference
    heatmap_metrics = ["sharpe", "ann_return", "max_drawdown"]

    [params]                            # fixed for every point (over the config's [strategy.X])
    risk_model = "ewma"

    [grid]                              # one axis per parameter: a list of values
    smoothing = [0.05, 0.15, 0.25, 0.35]
    eigen_threshold = [0.10, 0.15, 0.20]
    rc_threshold = [0.10, 0.15]
    "initial_budget.equity" = [0.36, 0.40, 0.44]   # one entry of a mapping parameter

    [forecast_errors]                   # optional: run the injection too
    levels = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30]
    seeds = 5
    targets = ["macro", "vol_index"]
    distribution = "uniform"
    strategies = ["DynamicRiskBudget"]

An axis ``"P.K"`` (quoted, a dot) sets entry ``K`` of the mapping parameter ``P`` (``initial_budget``,
``budget`` of ``StaticRiskBudget``, ``weights`` of ``FixedWeights``) and rescales the other entries
proportionally so the mapping keeps its sum: ``"initial_budget.equity" = [0.36, 0.44]`` is the
paper's "initial budget +-10%" for equity (40% -> 36% / 44%, bond, commodity and real estate
absorbing the difference pro rata). TOML arrays as values (``smoothing_bounds = [[0.05, 0.35]]``)
become tuples.

Forecast errors
---------------
For a level ``e`` (``0.05`` = +-5%) and a seed, every observation ``x`` of each target series is
replaced by ``x * (1 + u)`` with ``u`` i.i.d. uniform on ``[-e, e]`` (``distribution = "normal"``:
``u ~ N(0, e)``, clipped at -0.99). Targets: ``macro`` (every cell of the monthly leading
indicators, their pre-sample history included) and ``vol_index`` (every daily value). Prices are
never perturbed: the noise is in the *forecasting signals*. Each level runs ``seeds`` independent
draws; the noiseless run is level 0. Strategies that read neither signal give identical metrics at
every level (a useful control).

Outputs (``--out DIR``, every file atomic)
------------------------------------------
``sweep.csv``
    One row per grid point: ``point, strategy``, one column per axis (its value), the metrics
    columns of ``metrics.csv`` (``runners.metrics.METRIC_COLUMNS``), ``seconds``.
``sweep.md``
    The same table in Markdown, best Sharpe first.
``sweep_summary.csv``
    ``item, value``: deflated Sharpe ratio of the best point and PBO of the grid (issue 15,
    :mod:`runners.experiments.evidence`; ``docs/outputs.md``), also in ``sweep.md`` and ``sweep.json``.
``baselines.csv``
    ``strategy`` + metrics columns: the reference strategies on the same market.
``figures/heatmap_<metric>__<a>__<b>.png``
    For every pair of axes with at least two values each: the metric over the pair, averaged over
    the other axes (the title says which); ``figures/line_<metric>__<a>.png`` for a single axis.
``forecast_errors.csv``
    One row per run: ``level, seed, strategy`` + metrics columns (level 0 is the clean run,
    seed -1).
``forecast_degradation.csv``
    One row per ``level, strategy, metric``: ``clean`` value, ``mean, std, min, max`` over seeds,
    ``delta = mean - clean``, ``delta_pct = delta / |clean|``, ``worse_share`` (share of seeds
    worse than clean), ``n_seeds``.
``forecast_degradation.md``
    Table 2 shape: per strategy, one row per level with the mean of the key metrics and the change.
``figures/forecast_errors.png``
    Key metrics against the noise level (mean +- one standard deviation over seeds).
``sweep.json`` / ``forecast_errors.json``
    Manifest: settings (a rerun must match them to resume), engine, execution mode, timings.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DRBError, DRBWarning
from drb.io import atomic_savefig, atomic_to_csv, atomic_write_text
from feeds.market import MarketData
from runners.config import RunConfig
from runners.engine.cerebro import STRATEGY_NAMES, strategy_class, validate_strategy_params
from runners.experiments.common import (
    ENGINES,
    HIGHER_IS_BETTER,
    benchmark_for,
    check_engine,
    check_market_length,
    check_strategy,
    evaluate_strategies,
    jsonable,
    load_inputs,
    manifest_status,
    markdown_table,
    market_fingerprint,
    open_store,
    run_parts,
    run_strategy,
    strategy_params,
    validate_points,
)
from runners.experiments.evidence_outputs import RETURNS_COLUMN
from runners.markdown import format_value
from runners.metrics import METRIC_COLUMNS

__all__ = [
    "ENGINES",
    "HIGHER_IS_BETTER",
    "ForecastErrorSpec",
    "GridSpec",
    "WORKER_WARM_UP",
    "SweepResult",
    "apply_point",
    "evaluate_strategies",
    "expand_grid",
    "load_inputs",
    "parse_grid",
    "perturb_market",
    "run_forecast_errors",
    "run_strategy",
    "run_sweep",
    "warm_up",
]

#: Warm-up of the LocalCluster workers of ``drb sweep`` and ``drb montecarlo`` (see
#: :func:`runners.parallel.dask_client`).
WORKER_WARM_UP: tuple[str, ...] = ("runners.experiments.sweep:warm_up",)

#: Mapping-valued parameters a dotted grid axis can address, with their defaults.
_MAPPING_PARAMS: dict[tuple[str, str], dict[str, float]] = {
    ("DynamicRiskBudget", "initial_budget"): {"equity": 0.40, "bond": 0.30, "commodity": 0.15, "real_estate": 0.15},
    ("StaticRiskBudget", "budget"): {"equity": 0.40, "bond": 0.30, "commodity": 0.15, "real_estate": 0.15},
    ("FixedWeights", "weights"): {"equity": 0.60, "bond": 0.40},
}

DEFAULT_LEVELS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
DEFAULT_HEATMAP_METRICS: tuple[str, ...] = ("sharpe", "ann_return", "max_drawdown")
_FE_TABLE_METRICS: tuple[str, ...] = ("ann_return", "ann_vol", "sharpe", "max_drawdown", "calmar", "turnover")


# ----------------------------------------------------------------------------- warm-up


def warm_up(risk_models: Sequence[str] = ("ewma",)) -> None:
    """Run every strategy once on a tiny synthetic market (fast path), discarding the results.

    A Dask worker calls it while it starts (``dask_client(warm_up=("runners.experiments.sweep:warm_up",))``):
    the imports, the numba caches of the solvers and risk models and the first-call costs of
    pandas/scipy are paid before the worker takes tasks, not by its first path or sweep point.
    Every strategy runs with its default parameters (the dynamic model on its default EGARCH-DCC
    risk model), on 2018-01-02 .. 2018-09-28 with a 60-bar warm-up: about 0.6 CPU s in a fresh
    process, 0.2 s of it the runs themselves.

    Parameters
    ----------
    risk_models : sequence of str
        Further risk models of the dynamic model to warm, one run each (default EWMA, the Monte
        Carlo default).
    """
    import runners.experiments.montecarlo  # noqa: F401  (the Monte Carlo task's module and its imports)
    from feeds import synthetic_market
    from runners.engine.cerebro import strategy_params_for

    config = RunConfig(source="warm-up")
    config.execution["warmup"] = 60
    market = MarketData.from_synthetic(synthetic_market(seed=0, start="2018-01-02", end="2018-09-28"))
    runs = {name: strategy_params_for(name, config) for name in STRATEGY_NAMES}
    for i, rm in enumerate(risk_models):
        runs[f"DynamicRiskBudget#{i}"] = {**strategy_params_for("DynamicRiskBudget", config), "risk_model": rm}
    evaluate_strategies(market, runs, benchmark="EqualWeight")


# ----------------------------------------------------------------------------- the grid


@dataclass
class ForecastErrorSpec:
    """Forecast-error injection settings (see the module docstring).

    Attributes
    ----------
    levels : list of float
        Noise levels (decimals in (0, 1); 0.05 = +-5%).
    seeds : int
        Independent draws per level.
    targets : list of str
        ``macro`` and/or ``vol_index``.
    distribution : str
        ``uniform`` (on [-level, level]) or ``normal`` (sd = level).
    strategies : list of str
        Strategies rerun on every perturbed market (default: the swept strategy).
    """

    levels: list[float] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    seeds: int = 5
    targets: list[str] = field(default_factory=lambda: ["macro", "vol_index"])
    distribution: str = "uniform"
    strategies: list[str] | None = None


@dataclass
class GridSpec:
    """A parsed grid file.

    Attributes
    ----------
    strategy : str
        The strategy swept.
    axes : dict
        ``{axis: [values]}`` in file order (``"P.K"`` for an entry of a mapping parameter).
    params : dict
        Fixed parameters of every point.
    design : str
        ``product`` or ``one_at_a_time``.
    baselines : list of str
    heatmap_metrics : list of str
    forecast_errors : ForecastErrorSpec or None
    """

    strategy: str = "DynamicRiskBudget"
    axes: dict[str, list[Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    design: str = "product"
    baselines: list[str] = field(default_factory=list)
    heatmap_metrics: list[str] = field(default_factory=lambda: list(DEFAULT_HEATMAP_METRICS))
    forecast_errors: ForecastErrorSpec | None = None


def _tupleize(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tupleize(x) for x in v)
    return v


def _check_metrics(values: Any, label: str) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{label}: expected a non-empty list of metric names")
    for m in values:
        if m not in METRIC_COLUMNS:
            raise ConfigError(f"{label}: unknown metric {m!r} (known: {', '.join(METRIC_COLUMNS)})")
    return list(values)


def _check_axis(strategy: str, axis: str, label: str) -> None:
    if "." in axis:
        param, key = axis.split(".", 1)
        if (strategy, param) not in _MAPPING_PARAMS:
            known = ", ".join(f"{p}.KEY" for (s, p) in _MAPPING_PARAMS if s == strategy) or "none"
            raise ConfigError(f"{label}: '{axis}': '{param}' is not a mapping parameter of {strategy} (dotted axes: {known})")
        if not key:
            raise ConfigError(f"{label}: '{axis}': missing the entry after the dot")
        return
    try:
        validate_strategy_params(strategy, {axis: None})
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def parse_forecast_errors(raw: Mapping[str, Any], label: str) -> ForecastErrorSpec:
    """Validate a ``[forecast_errors]`` table."""
    known = {"levels", "seeds", "targets", "distribution", "strategies"}
    for k in raw:
        if k not in known:
            raise ConfigError(f"{label}: unknown key 'forecast_errors.{k}' (known: {', '.join(sorted(known))})")
    spec = ForecastErrorSpec()
    if "levels" in raw:
        spec.levels = _check_levels(raw["levels"], f"{label}: forecast_errors.levels")
    if "seeds" in raw:
        s = raw["seeds"]
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ConfigError(f"{label}: forecast_errors.seeds: expected an integer >= 1, got {s!r}")
        spec.seeds = s
    if "targets" in raw:
        t = raw["targets"]
        if not isinstance(t, list) or not t or any(x not in ("macro", "vol_index") for x in t):
            raise ConfigError(f"{label}: forecast_errors.targets: expected a list of 'macro' and/or 'vol_index', got {t!r}")
        spec.targets = list(dict.fromkeys(t))
    if "distribution" in raw:
        d = raw["distribution"]
        if d not in ("uniform", "normal"):
            raise ConfigError(f"{label}: forecast_errors.distribution: 'uniform' or 'normal', got {d!r}")
        spec.distribution = d
    if "strategies" in raw:
        st = raw["strategies"]
        if not isinstance(st, list) or not st:
            raise ConfigError(f"{label}: forecast_errors.strategies: expected a non-empty list of strategy names")
        spec.strategies = [check_strategy(x, f"{label}: forecast_errors.strategies") for x in st]
    return spec


def _check_levels(levels: Any, label: str) -> list[float]:
    if not isinstance(levels, list | tuple) or not levels:
        raise ConfigError(f"{label}: expected a non-empty list of noise levels such as [0.05, 0.10]")
    out = []
    for v in levels:
        if isinstance(v, bool) or not isinstance(v, int | float) or not (0.0 < float(v) < 1.0):
            raise ConfigError(f"{label}: noise level {v!r} is not a decimal in (0, 1) (0.05 = +-5%)")
        out.append(float(v))
    return sorted(set(out))


def parse_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid file (format in the module docstring).

    Raises
    ------
    ConfigError
        Missing or malformed file, unknown tables, keys, strategies, parameters or metrics.
    """
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise ConfigError(f"{label}: grid file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not a text TOML file") from None
    tables = {"sweep", "params", "grid", "forecast_errors"}
    for k, v in raw.items():
        if k not in tables:
            raise ConfigError(f"{label}: unknown table '{k}' (known: {', '.join(sorted(tables))})")
        if not isinstance(v, dict):
            raise ConfigError(f"{label}: '{k}' must be a table ([{k}])")
    spec = GridSpec()
    sw = raw.get("sweep", {})
    known = {"strategy", "design", "baselines", "heatmap_metrics"}
    for k in sw:
        if k not in known:
            raise ConfigError(f"{label}: unknown key 'sweep.{k}' (known: {', '.join(sorted(known))})")
    if "strategy" in sw:
        spec.strategy = check_strategy(sw["strategy"], f"{label}: sweep.strategy")
    if "design" in sw:
        if sw["design"] not in ("product", "one_at_a_time"):
            raise ConfigError(f"{label}: sweep.design: 'product' or 'one_at_a_time', got {sw['design']!r}")
        spec.design = sw["design"]
    if "baselines" in sw:
        b = sw["baselines"]
        if not isinstance(b, list):
            raise ConfigError(f"{label}: sweep.baselines: expected a list of strategy names")
        spec.baselines = [check_strategy(x, f"{label}: sweep.baselines") for x in b]
    if "heatmap_metrics" in sw:
        spec.heatmap_metrics = _check_metrics(sw["heatmap_metrics"], f"{label}: sweep.heatmap_metrics")
    params = {k: _tupleize(v) for k, v in raw.get("params", {}).items()}
    try:
        validate_strategy_params(spec.strategy, params)
    except ConfigError as exc:
        raise ConfigError(f"{label}: [params]: {exc}") from None
    spec.params = params
    for axis, values in raw.get("grid", {}).items():
        _check_axis(spec.strategy, axis, f"{label}: [grid]")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{label}: grid.{axis}: expected a non-empty list of values")
        vals = [_tupleize(v) for v in values]
        if len({json.dumps(v, sort_keys=True, default=str) for v in vals}) != len(vals):
            raise ConfigError(f"{label}: grid.{axis}: repeated values")
        spec.axes[axis] = vals
    if "forecast_errors" in raw:
        spec.forecast_errors = parse_forecast_errors(raw["forecast_errors"], label)
    if not spec.axes and spec.forecast_errors is None:
        raise ConfigError(f"{label}: nothing to run: give a [grid] table (or [forecast_errors])")
    return spec


def _base_value(strategy: str, axis: str, params: Mapping[str, Any]) -> Any:
    """The value an axis has when the sweep does not move it."""
    if "." in axis:
        param, key = axis.split(".", 1)
        mapping = params.get(param) or _MAPPING_PARAMS[(strategy, param)]
        return float(mapping.get(key, 0.0))
    if axis in params:
        return params[axis]
    cls = strategy_class(strategy)
    return getattr(cls.params, axis)


def expand_grid(spec: GridSpec, base_params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The grid points: ``[{axis: value}]`` in a deterministic order.

    ``product``: the Cartesian product of the axes (last axis fastest). ``one_at_a_time``: the
    base point (every axis at its base value: ``[params]``, the config, or the strategy default),
    then each axis's other values with the rest at base.
    """
    axes = spec.axes
    if not axes:
        return []
    if spec.design == "product":
        names = list(axes)
        return [dict(zip(names, combo)) for combo in itertools.product(*(axes[a] for a in names))]
    params = dict(base_params or {})
    params.update(spec.params)
    base = {a: _base_value(spec.strategy, a, params) for a in axes}
    points = [dict(base)]
    for a, values in axes.items():
        for v in values:
            if v != base[a]:
                p = dict(base)
                p[a] = v
                points.append(p)
    return points


def apply_point(strategy: str, params: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """Strategy parameters of one grid point (dotted axes edit a mapping, keeping its sum).

    Parameters
    ----------
    strategy : str
    params : mapping
        Base parameters (config, then ``[params]``).
    point : mapping
        ``{axis: value}``.

    Returns
    -------
    dict
    """
    out = dict(params)
    for axis, value in point.items():
        if "." not in axis:
            out[axis] = value
            continue
        param, key = axis.split(".", 1)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"grid.{axis}: expected a number, got {value!r}")
        mapping = {k: float(v) for k, v in dict(out.get(param) or _MAPPING_PARAMS[(strategy, param)]).items()}
        total = sum(mapping.values())
        rest = total - mapping.get(key, 0.0)
        new_rest = total - float(value)
        if not (0.0 <= float(value) <= total) or (rest <= 0 and new_rest > 1e-12):
            raise ConfigError(f"grid.{axis}: {value!r} cannot be set while keeping the total {total:g} of '{param}'")
        scaled = {k: (v * new_rest / rest if rest > 0 else 0.0) for k, v in mapping.items() if k != key}
        scaled[key] = float(value)
        out[param] = {k: scaled[k] for k in list(mapping) + ([key] if key not in mapping else [])}
    return out


# ----------------------------------------------------------------------------- forecast errors


def perturb_market(
    market: MarketData,
    level: float,
    rng: np.random.Generator,
    *,
    targets: Sequence[str] = ("macro", "vol_index"),
    distribution: str = "uniform",
) -> MarketData:
    """A copy of ``market`` with multiplicative noise on its forecasting signals.

    Parameters
    ----------
    market : MarketData
    level : float
        Noise level (decimal): ``x -> x * (1 + u)``, ``u ~ U[-level, level]`` (or ``N(0, level)``
        clipped at -0.99 for ``distribution="normal"``), i.i.d. per observation.
    rng : numpy.random.Generator
    targets : sequence of {"macro", "vol_index"}
        Signals perturbed (absent signals are skipped).
    distribution : {"uniform", "normal"}

    Returns
    -------
    MarketData
        Prices, classes and calendar unchanged.
    """
    if not (0.0 <= level < 1.0):
        raise ConfigError(f"noise level must be in [0, 1), got {level}")

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        if distribution == "uniform":
            return rng.uniform(-level, level, size=shape)
        if distribution == "normal":
            return np.maximum(rng.normal(0.0, level, size=shape), -0.99)
        raise ConfigError(f"forecast_errors.distribution: 'uniform' or 'normal', got {distribution!r}")

    macro = market.macro
    vol = market.vol_index
    # draw in a fixed order (macro, then vol_index) so a seed means the same noise whatever is present
    if "macro" in targets and macro is not None:
        macro = macro * (1.0 + draw(macro.shape))
    if "vol_index" in targets and vol is not None:
        vol = vol * (1.0 + draw(vol.shape))
    return MarketData(
        prices=market.prices,
        asset_classes=dict(market.asset_classes),
        vol_index=vol,
        macro=macro,
        notes=list(market.notes) + [f"forecast errors +-{level:.0%} ({distribution}) on {', '.join(targets)}"],
        sources=dict(market.sources),
    )


def _noise_rng(seed: int, level: float, draw: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(round(level * 1e6)), int(draw)]))


# ----------------------------------------------------------------------------- tasks (run on workers)


def _sweep_task(
    runs: dict[str, dict[str, Any]],
    tags: dict[str, Any],
    level: float,
    noise_seed: int,
    *,
    market: MarketData,
    setup: dict[str, Any],
) -> pd.DataFrame:
    """One task: (optionally perturb the market and) run ``runs``; metrics rows with ``tags``."""
    mkt = market
    if level > 0:
        fe = setup["forecast_errors"]
        rng = _noise_rng(setup["seed"], level, noise_seed)
        mkt = perturb_market(market, level, rng, targets=fe["targets"], distribution=fe["distribution"])
    kept: dict[str, pd.Series] = {}
    table, seconds = evaluate_strategies(
        mkt,
        runs,
        broker=setup["broker"],
        engine=setup["engine"],
        benchmark=setup["benchmark"],
        benchmark_result=setup["benchmark_result"],
        risk_free=setup["risk_free"],
        returns_out=kept,
    )
    rows = table.reset_index(names="strategy")
    rows["strategy"] = rows["strategy"].str.split("#").str[0]
    for k, v in reversed(list(tags.items())):
        rows.insert(0, k, v if not isinstance(v, tuple | dict | list) else json.dumps(v, default=str))
    rows["seconds"] = [round(seconds[label], 4) for label in runs]
    if "point" in tags and level == 0:  # issue 15: the points' daily returns, for PBO
        from runners.experiments.evidence_outputs import encode_returns

        rows[RETURNS_COLUMN] = [encode_returns(kept[label]) for label in runs]
    return rows


# ----------------------------------------------------------------------------- orchestration


@dataclass
class SweepResult:
    """Tables a sweep wrote (None for a mode not run)."""

    out_dir: Path
    sweep: pd.DataFrame | None = None
    baselines: pd.DataFrame | None = None
    forecast_errors: pd.DataFrame | None = None
    degradation: pd.DataFrame | None = None
    failures: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _SweepRun:
    """What every part of one sweep call shares: inputs, task setup, manifest settings, execution."""

    market: MarketData
    config: RunConfig
    spec: GridSpec
    out: Path
    base: dict[str, Any]
    setup: dict[str, Any]
    common: dict[str, Any]
    client: Any
    progress: bool
    restart: bool
    mode: str
    threads: int

    def execute(self, kind: str, settings: Mapping[str, Any], tasks: list[tuple[str, tuple[Any, ...]]], desc: str) -> tuple[Any, dict[str, pd.DataFrame], Any]:
        """Open the part store of ``kind`` and run the missing ``tasks``; (store, parts, info)."""
        store = open_store(self.out, kind, {**self.common, **settings}, restart=self.restart)
        parts, info, _ = run_parts(
            store, tasks, _sweep_task, client=self.client, shared={"market": self.market, "setup": self.setup},
            progress=self.progress, desc=desc, unit="run",
        )  # fmt: skip
        return store, parts, info

    def manifest(self, store: Any, info: Any, counts: Mapping[str, Any], seconds: float) -> None:
        """Rewrite ``<kind>.json`` at the end of one mode."""
        status = manifest_status(store, info, mode=self.mode, threads=self.threads)
        store.write_manifest(
            {
                "execution": status["execution"],
                **counts,
                "failed": status["failed"],
                "resumed": store.resumed,
                "recomputed_parts": status["recomputed_parts"],
                "timings": {"seconds": seconds},
                "created": pd.Timestamp.now().isoformat(timespec="seconds"),
            }
        )


def _present_targets(market: MarketData, spec: GridSpec) -> list[str]:
    """The forecast-error targets the market has (refused when it has none)."""
    if spec.forecast_errors is None:
        return []
    present = [t for t in spec.forecast_errors.targets if getattr(market, t) is not None]
    if not present:
        raise ConfigError(
            f"forecast errors: the market has none of the targets {', '.join(spec.forecast_errors.targets)} "
            "(no macro data, no volatility index)"
        )
    return present


def _start_sweep(market: MarketData, config: RunConfig, spec: GridSpec, out: Path, engine: str, market_info: Mapping[str, Any] | None, **execution: Any) -> _SweepRun:
    """Check the inputs, run the benchmark once on the clean market, prepare ``out``."""
    from runners.parallel import describe_client
    from runners.rundir import prepare_resumable

    check_engine(engine)
    base = strategy_params(spec.strategy, config, spec.params)
    check_market_length(market, base)
    bench = benchmark_for(config)
    check_strategy(bench, "run.benchmark")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DRBWarning)
        bench_result = run_strategy(market, bench, strategy_params(bench, config), config.broker, engine)
    setup: dict[str, Any] = {
        "broker": dict(config.broker),
        "engine": engine,
        "benchmark": bench,
        "benchmark_result": bench_result,
        "risk_free": float(config.risk_free),
        "seed": int(config.seed),
        "forecast_errors": None,
    }
    common = {
        "engine": engine,
        "market": dict(market_info or {}),
        "data": market_fingerprint(market),
        "broker": dict(config.broker),
        "benchmark": bench,
        "risk_free": float(config.risk_free),
    }
    present = _present_targets(market, spec)
    if present:
        setup["forecast_errors"] = {"targets": present, "distribution": spec.forecast_errors.distribution}
    mode, threads = describe_client(execution["client"])
    kinds = ("sweep",) * bool(spec.axes) + ("forecast_errors",) * (spec.forecast_errors is not None)
    prepare_resumable(out, kinds, restart=execution["restart"])
    out.mkdir(parents=True, exist_ok=True)
    return _SweepRun(market, config, spec, out, base, setup, common, mode=mode, threads=threads, **execution)


def _run_grid(run: _SweepRun, result: SweepResult) -> None:
    """Every grid point and baseline; ``sweep.csv``, ``baselines.csv``, ``sweep.md``, figures, manifest."""
    spec, config, market = run.spec, run.config, run.market
    points = expand_grid(spec, run.base)
    params_list = [apply_point(spec.strategy, run.base, pt) for pt in points]
    validate_points(market, spec.strategy, params_list)
    baseline_params = {b: strategy_params(b, config) for b in spec.baselines}
    for b, p in baseline_params.items():
        validate_points(market, b, [p])
    settings = {
        "strategy": spec.strategy,
        "design": spec.design,
        "axes": jsonable(spec.axes),
        "params": jsonable(run.base),
        "baselines": jsonable(baseline_params),
    }
    tasks: list[tuple[str, tuple[Any, ...]]] = []
    for i, (pt, p) in enumerate(zip(points, params_list)):
        tasks.append((f"point-{i:06d}", ({spec.strategy: p}, {"point": i, **pt}, 0.0, 0)))
    for b, p in baseline_params.items():
        tasks.append((f"baseline-{b}", ({b: p}, {}, 0.0, 0)))
    t1 = time.perf_counter()
    store, parts, info = run.execute("sweep", settings, tasks, "sweep")
    result.failures += info.failures
    grid_frames = [parts[k] for k, _ in tasks if k.startswith("point-") and k in parts]
    cols = ["point", "strategy", *spec.axes, *METRIC_COLUMNS, "seconds"]
    table = pd.concat(grid_frames, ignore_index=True).sort_values("point", kind="stable") if grid_frames else pd.DataFrame(columns=cols)
    result.sweep = table[cols].reset_index(drop=True)
    base_frames = [parts[k] for k, _ in tasks if k.startswith("baseline-") and k in parts]
    result.baselines = (
        pd.concat(base_frames, ignore_index=True).drop(columns=["seconds"]).set_index("strategy")
        if base_frames
        else pd.DataFrame(columns=list(METRIC_COLUMNS))
    )
    evidence = _sweep_evidence(run.out, grid_frames, result.sweep, market, config)
    _write_sweep_outputs(run.out, spec, result.sweep, result.baselines, evidence)
    result.timings["sweep_seconds"] = round(time.perf_counter() - t1, 3)
    counts = {"points": len(points), "done": len(grid_frames), "evidence": evidence}
    run.manifest(store, info, counts, result.timings["sweep_seconds"])


def _run_forecast_error_runs(run: _SweepRun, result: SweepResult) -> None:
    """The clean run and every (level, seed); ``forecast_errors.csv``, degradation tables, manifest."""
    spec, config = run.spec, run.config
    fe = spec.forecast_errors
    fe_names = fe.strategies or [spec.strategy]
    runs = {n: (run.base if n == spec.strategy else strategy_params(n, config)) for n in fe_names}
    for n, p in runs.items():
        validate_points(run.market, n, [p])
    present = run.setup["forecast_errors"]["targets"]
    settings = {
        "runs": jsonable(runs),
        "levels": fe.levels,
        "seeds": fe.seeds,
        "targets": present,
        "distribution": fe.distribution,
        "seed": int(config.seed),
    }
    tasks = [("clean", (runs, {"level": 0.0, "seed": -1}, 0.0, 0))]
    for level in fe.levels:
        for s in range(fe.seeds):
            tasks.append((f"level-{level:.4f}-seed-{s:03d}", (runs, {"level": level, "seed": s}, level, s)))
    t1 = time.perf_counter()
    store, parts, info = run.execute("forecast_errors", settings, tasks, "forecast errors")
    result.failures += info.failures
    frames = [parts[k] for k, _ in tasks if k in parts]
    runs_table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(runs_table):
        runs_table = runs_table.sort_values(["level", "seed"], kind="stable").reset_index(drop=True)
    result.forecast_errors = runs_table
    result.degradation = degradation_table(runs_table) if "clean" in parts else None
    _write_fe_outputs(run.out, runs_table, result.degradation)
    result.timings["forecast_errors_seconds"] = round(time.perf_counter() - t1, 3)
    run.manifest(store, info, {"runs": len(tasks), "done": len(frames)}, result.timings["forecast_errors_seconds"])


def run_sweep(
    market: MarketData,
    config: RunConfig,
    spec: GridSpec,
    out_dir: str | Path,
    *,
    engine: str = "fast",
    client: Any = None,
    progress: bool = True,
    restart: bool = False,
    market_info: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run the grid (and the forecast-error injection when ``spec.forecast_errors`` is set).

    Parameters
    ----------
    market : MarketData
    config : RunConfig
        Broker, execution, per-strategy parameters, benchmark (default ``EqualWeight``), risk-free.
    spec : GridSpec
    out_dir : path
    engine : {"fast", "backtrader"}
    client : distributed.Client, optional
        From :func:`runners.parallel.dask_client`; None runs serially.
    progress : bool
    restart : bool
        Discard finished results of an earlier run in ``out_dir``.
    market_info : mapping, optional
        Describes the market in the manifest.

    Returns
    -------
    SweepResult

    Raises
    ------
    DRBError
        After writing the outputs of every finished run, when some runs failed (a rerun retries them).
    """
    out = Path(out_dir)
    t0 = time.perf_counter()
    run = _start_sweep(market, config, spec, out, engine, market_info, client=client, progress=progress, restart=restart)
    result = SweepResult(out_dir=out)
    if spec.axes:
        _run_grid(run, result)
    if spec.forecast_errors is not None:
        _run_forecast_error_runs(run, result)
    result.timings["wall_seconds"] = round(time.perf_counter() - t0, 3)
    if result.failures:
        f = result.failures[0]
        raise DRBError(
            f"{len(result.failures)} run(s) failed (first: {f.key}: {f.error}: {f.message}); "
            f"finished results are in {out}, rerun the same command to retry the failed ones"
        )
    return result


def run_forecast_errors(
    market: MarketData,
    config: RunConfig,
    out_dir: str | Path,
    *,
    strategy: str = "DynamicRiskBudget",
    params: Mapping[str, Any] | None = None,
    spec: ForecastErrorSpec | None = None,
    **kwargs: Any,
) -> SweepResult:
    """Forecast-error injection alone (see :func:`run_sweep` for the keyword arguments)."""
    grid = GridSpec(strategy=strategy, params=dict(params or {}), forecast_errors=spec or ForecastErrorSpec())
    return run_sweep(market, config, grid, out_dir, **kwargs)


# ----------------------------------------------------------------------------- tables


def degradation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Metric degradation per noise level and strategy against the clean run (long format).

    Parameters
    ----------
    runs : DataFrame
        ``forecast_errors.csv``: ``level, seed, strategy`` + metrics; level 0 is the clean run.

    Returns
    -------
    DataFrame
        Columns ``level, strategy, metric, clean, mean, std, min, max, delta, delta_pct,
        worse_share, n_seeds`` (``worse_share``: share of seeds with a worse value than clean, by
        the metric's direction in :data:`HIGHER_IS_BETTER`).
    """
    rows = []
    clean = runs[runs["level"] == 0].set_index("strategy")
    noisy = runs[runs["level"] > 0]
    for (level, strat), grp in noisy.groupby(["level", "strategy"], sort=True):
        for m in METRIC_COLUMNS:
            c = float(clean.loc[strat, m]) if strat in clean.index else math.nan
            vals = grp[m].to_numpy(dtype=float)
            fin = vals[np.isfinite(vals)]
            mean = float(fin.mean()) if len(fin) else math.nan
            delta = mean - c
            sign = 1.0 if HIGHER_IS_BETTER[m] else -1.0
            worse = float(np.mean(sign * (vals - c) < 0)) if np.isfinite(c) and len(vals) else math.nan
            rows.append(
                {
                    "level": float(level),
                    "strategy": strat,
                    "metric": m,
                    "clean": c,
                    "mean": mean,
                    "std": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan,
                    "min": float(fin.min()) if len(fin) else math.nan,
                    "max": float(fin.max()) if len(fin) else math.nan,
                    "delta": delta,
                    "delta_pct": delta / abs(c) if np.isfinite(c) and c != 0 else math.nan,
                    "worse_share": worse,
                    "n_seeds": len(vals),
                }
            )
    return pd.DataFrame(
        rows, columns=["level", "strategy", "metric", "clean", "mean", "std", "min", "max", "delta", "delta_pct", "worse_share", "n_seeds"]
    )


def _sweep_evidence(
    out: Path, frames: Sequence[pd.DataFrame], table: pd.DataFrame, market: MarketData, config: RunConfig
) -> dict[str, Any]:
    """DSR of the best point and PBO of the grid, written to ``sweep_summary.csv`` (issue 15)."""
    from runners.experiments.evidence_outputs import write_sweep_evidence

    return write_sweep_evidence(out, frames, table, market.prices.index, risk_free=float(config.risk_free))


def _write_sweep_outputs(
    out: Path, spec: GridSpec, table: pd.DataFrame, baselines: pd.DataFrame, evidence: Mapping[str, Any] | None = None
) -> None:
    atomic_to_csv(table, out / "sweep.csv", index=False)
    atomic_to_csv(baselines, out / "baselines.csv")
    lines = [f"# Parameter sweep: {spec.strategy}\n", f"{len(table)} points ({spec.design}); axes: {', '.join(spec.axes)}.\n"]
    if len(table):
        show = [*spec.axes, "ann_return", "ann_vol", "sharpe", "max_drawdown", "calmar", "turnover"]
        best = table.sort_values("sharpe", ascending=False, kind="stable")
        if evidence:
            from runners.experiments.evidence_outputs import sweep_evidence_markdown

            lines += sweep_evidence_markdown(evidence)
        lines += ["## All points, best Sharpe first\n", markdown_table(best[["point", *show]])]
    if len(baselines):
        lines += ["## Baselines on the same market\n", markdown_table(baselines.reset_index()[["strategy", "ann_return", "ann_vol", "sharpe", "max_drawdown", "calmar", "turnover"]])]
    atomic_write_text(out / "sweep.md", "\n".join(lines))
    if len(table):
        sweep_figures(table, spec, out / "figures")


def _write_fe_outputs(out: Path, runs: pd.DataFrame, degradation: pd.DataFrame | None) -> None:
    atomic_to_csv(runs, out / "forecast_errors.csv", index=False)
    if degradation is None or degradation.empty:
        return
    atomic_to_csv(degradation, out / "forecast_degradation.csv", index=False)
    lines = ["# Forecast-error injection (paper Table 2)\n", "Mean over seeds; change against the clean run in brackets.\n"]
    for strat, grp in degradation.groupby("strategy", sort=False):
        rows = []
        clean = grp.drop_duplicates("metric").set_index("metric")["clean"]
        rows.append({"noise": "none", **{m: format_value(clean.get(m, math.nan), "4dp") for m in _FE_TABLE_METRICS}})
        for level, g in grp.groupby("level"):
            g = g.set_index("metric")
            rows.append({"noise": f"+-{level:.0%}", **{m: f"{format_value(g.loc[m, 'mean'], '4dp')} ({g.loc[m, 'delta']:+.4f})" for m in _FE_TABLE_METRICS}})
        lines += [f"## {strat}\n", markdown_table(pd.DataFrame(rows))]
    atomic_write_text(out / "forecast_degradation.md", "\n".join(lines))
    forecast_error_figure(degradation, out / "figures" / "forecast_errors.png")


# ----------------------------------------------------------------------------- figures


def _labels(values: Sequence[Any]) -> list[str]:
    return [v if isinstance(v, str) else (f"{v:g}" if isinstance(v, float) else str(v)) for v in values]


def sweep_figures(table: pd.DataFrame, spec: GridSpec, folder: Path) -> list[Path]:
    """Heatmaps for every pair of axes with >= 2 values (line plots for a single axis).

    Each cell is the metric at that pair of values averaged over the other axes' points.

    Returns
    -------
    list of Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = [a for a, v in spec.axes.items() if len(v) >= 2]
    written: list[Path] = []
    col = {a: table[a].map(lambda x: x if isinstance(x, str) else (f"{x:g}" if isinstance(x, float) else str(x))) for a in axes}
    for metric in spec.heatmap_metrics:
        vals = table[metric].replace([np.inf, -np.inf], np.nan)
        if len(axes) == 1:
            a = axes[0]
            order = _labels(spec.axes[a])
            means = vals.groupby(col[a]).mean().reindex(order)
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.plot(range(len(order)), means.to_numpy(), marker="o")
            ax.set_xticks(range(len(order)), order)
            ax.set_xlabel(a)
            ax.set_ylabel(metric)
            ax.set_title(f"{spec.strategy}: {metric} by {a}")
            fig.tight_layout()
            written.append(atomic_savefig(fig, folder / f"line_{metric}__{_safe(a)}.png", dpi=110))
            plt.close(fig)
            continue
        for a, b in itertools.combinations(axes, 2):
            rows, cols = _labels(spec.axes[a]), _labels(spec.axes[b])
            grid = vals.groupby([col[a], col[b]]).mean().unstack(b).reindex(index=rows, columns=cols)
            others = [x for x in spec.axes if x not in (a, b)]
            fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 3, 0.6 * len(rows) + 2.2))
            arr = grid.to_numpy(dtype=float)
            im = ax.imshow(arr, aspect="auto", cmap="viridis" if HIGHER_IS_BETTER[metric] else "viridis_r")
            ax.set_xticks(range(len(cols)), cols)
            ax.set_yticks(range(len(rows)), rows)
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            finite = arr[np.isfinite(arr)]
            mid = float(np.nanmean(finite)) if finite.size else 0.0
            for i in range(arr.shape[0]):
                for j in range(arr.shape[1]):
                    if np.isfinite(arr[i, j]):
                        dark = arr[i, j] < mid if HIGHER_IS_BETTER[metric] else arr[i, j] > mid
                        ax.text(j, i, f"{arr[i, j]:.3f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
            title = f"{spec.strategy}: {metric}"
            if others:
                title += f"\n(mean over {', '.join(others)})"
            ax.set_title(title, fontsize=10)
            fig.colorbar(im, ax=ax)
            fig.tight_layout()
            written.append(atomic_savefig(fig, folder / f"heatmap_{metric}__{_safe(a)}__{_safe(b)}.png", dpi=110))
            plt.close(fig)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)


def forecast_error_figure(degradation: pd.DataFrame, path: Path) -> Path:
    """Key metrics against the noise level, mean +- one standard deviation over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["ann_return", "sharpe", "max_drawdown"]
    fig, axs = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4))
    for ax, m in zip(axs, metrics):
        for strat, g in degradation[degradation["metric"] == m].groupby("strategy", sort=False):
            lv = np.concatenate([[0.0], g["level"].to_numpy()])
            mean = np.concatenate([[g["clean"].iloc[0]], g["mean"].to_numpy()])
            sd = np.concatenate([[0.0], np.nan_to_num(g["std"].to_numpy())])
            ax.errorbar(lv * 100, mean, yerr=sd, marker="o", capsize=3, label=strat)
        ax.set_xlabel("noise level (+-%)")
        ax.set_title(m)
    axs[0].legend(fontsize=8)
    fig.suptitle("Forecast-error injection: macro indicators and volatility index")
    fig.tight_layout()
    p = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return p
