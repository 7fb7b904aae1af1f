"""The experiments' commands: ``drb demo``, ``drb compare``, ``drb sweep`` and ``drb montecarlo``.

Each ``register_*`` adds ``name -> (help, parser builder, handler)`` to the CLI's command table
(:mod:`runners.cli`). Building the parsers imports nothing heavy: pandas, the engines and Dask are
imported by the handlers. ``demo`` and ``compare`` take the report builder from the CLI
(``register_cli(commands, report=...)``): the experiments never import the report.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drb.errors import ConfigError, DRBError
from runners.config import positive_int
from runners.experiments.common import (
    DEFAULT_BLOCK,
    ENGINES,
    SOURCES,
    check_strategy,
    load_inputs,
    resolve_out,
)

__all__ = [
    "ReportBuilder",
    "add_execution_options",
    "add_input_options",
    "canonical_strategies",
    "register_cli",
    "register_comparison",
    "register_montecarlo",
    "register_sweep",
]

#: ``report(folder, n_jobs=..., progress=...)``: builds the report of a run folder (the CLI passes
#: one calling :func:`runners.report.build_report`).
ReportBuilder = Callable[..., Any]

_CommandTable = dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]]


# ----------------------------------------------------------------------------- demo / compare


def _assets_arg(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"expected COLUMN=CLASS pairs separated by commas, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _strategies_arg(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def canonical_strategies(names: list[str] | None) -> list[str] | None:
    """``--strategies`` names spelled as the strategies are (case-insensitive, "did you mean"), duplicates dropped."""
    if names is None:
        return None
    from runners.engine.cerebro import canonical_strategy_name

    out = []
    for name in names:
        try:
            out.append(canonical_strategy_name(name))
        except DRBError as exc:
            raise type(exc)(f"--strategies: {exc}") from None
    return list(dict.fromkeys(out))


def _add_run_options(p: argparse.ArgumentParser, *, out_required: bool = False) -> None:
    p.add_argument("--out", required=out_required, help="output folder (created; files written atomically)")
    p.add_argument(
        "--strategies", type=_strategies_arg, help="comma-separated strategy names, any case (default: all)"
    )
    p.add_argument("--workers", type=positive_int, help="parallel processes, >= 1 (default: number of cores)")
    p.add_argument("--no-report", action="store_true", help="skip the report, figures and tear sheets")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--holdout-start", dest="holdout_start", help="first held-out date: metrics and tests split there")
    p.add_argument("--primary", help="strategy tested against every other one (default: DynamicRiskBudget)")


def _apply_evidence_args(cfg: Any, args: argparse.Namespace) -> None:
    """``--holdout-start`` / ``--primary`` override ``[run]`` of the config (issue 15)."""
    from runners.config import parse_config

    overrides = {k: getattr(args, k) for k in ("holdout_start", "primary") if getattr(args, k, None)}
    if overrides:
        checked = parse_config({"run": overrides}, label="command line", require_prices=False)
        for k in overrides:
            setattr(cfg, k, getattr(checked, k))


def _config_from_args(args: argparse.Namespace) -> Any:
    from runners.config import RunConfig, load_config
    from runners.engine.cerebro import validate_strategy_params

    if args.config and args.prices:
        raise DRBError("give either CONFIG or --prices, not both")
    if args.config:
        cfg = load_config(args.config, strategy_validator=validate_strategy_params)
    elif args.prices:
        cfg = RunConfig(source="command line")
        cfg.prices = Path(args.prices)
        cfg.vol_index = Path(args.vol_index) if args.vol_index else None
        cfg.macro = Path(args.macro) if args.macro else None
        cfg.assets = args.assets or {}
        cfg.assets_from = "--assets"
    else:
        raise DRBError("give a CONFIG file or --prices FILE")
    if args.out:
        cfg.out = Path(args.out)
    if cfg.out is None:
        raise DRBError("no output folder: give --out DIR (or run.out in the config)")
    return cfg


def _compare_and_print(market: Any, cfg: Any, args: argparse.Namespace, out: Path, report: ReportBuilder | None, **extra: Any) -> int:
    """Run the comparison (the report built in its folder unless ``--no-report``), then the summaries."""
    from runners.experiments.compare import print_health_summary, run_comparison

    progress = not args.quiet

    def build_report(stage: Path, n_jobs: int) -> None:
        report(stage, n_jobs=n_jobs, progress=progress)  # adds timings.report_s

    res = run_comparison(
        market,
        cfg,
        strategies=canonical_strategies(args.strategies),
        out_dir=out,
        workers=args.workers,
        progress=progress,
        after_write=build_report if (report is not None and not args.no_report) else None,
        print_health=False,
        **extra,
    )
    cols = ["ann_return", "ann_vol", "sharpe", "max_drawdown", "turnover"]
    print(res.metrics[cols].copy().to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"outputs written to {out}")
    print_health_summary(res.health)
    return 0


def _cmd_demo(args: argparse.Namespace, *, report: ReportBuilder | None = None) -> int:
    from feeds import MarketData, synthetic_market
    from runners.config import RunConfig

    canonical_strategies(args.strategies)  # a misspelt name fails before the market is built
    m = synthetic_market(seed=args.seed, start=args.start, end=args.end)
    market = MarketData.from_synthetic(m)
    cfg = RunConfig(source="drb demo", seed=args.seed)
    _apply_evidence_args(cfg, args)
    info = {"seed": args.seed, "market": "embedded synthetic market"}
    return _compare_and_print(market, cfg, args, Path(args.out), report, extra_info=info)


def _cmd_compare(args: argparse.Namespace, *, report: ReportBuilder | None = None) -> int:
    from runners.experiments.common import load_market_from_config

    cfg = _config_from_args(args)
    canonical_strategies(args.strategies)
    _apply_evidence_args(cfg, args)
    warm = int(cfg.execution.get("warmup", 252))
    market = load_market_from_config(cfg, min_bars=warm + 22)
    return _compare_and_print(market, cfg, args, cfg.out, report)


def _demo_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded market (default 0)")
    p.add_argument("--start", default="2018-01-02", help="first date (default 2018-01-02)")
    p.add_argument("--end", default="2025-06-30", help="last date (default 2025-06-30)")
    _add_run_options(p)
    p.set_defaults(out="drb-demo")


def _compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="TOML config (see README); or use --prices")
    p.add_argument("--prices", help="daily prices file: date column + one column per asset")
    p.add_argument("--vol-index", dest="vol_index", help="implied-volatility index file (date, value)")
    p.add_argument("--macro", help="monthly leading indicators file (date + one column per indicator)")
    p.add_argument("--assets", type=_assets_arg, help="COLUMN=CLASS pairs when columns are not class names")
    _add_run_options(p)


def register_comparison(commands: _CommandTable, *, report: ReportBuilder | None = None) -> None:
    """Add ``drb demo`` and ``drb compare``; ``report`` builds the report of each run (None: no report)."""
    commands["demo"] = (
        "run every strategy on the embedded market and write the report",
        _demo_parser,
        functools.partial(_cmd_demo, report=report),
    )
    commands["compare"] = (
        "run every strategy on your data (CONFIG or --prices) side by side",
        _compare_parser,
        functools.partial(_cmd_compare, report=report),
    )


# ----------------------------------------------------------------------------- sweep / montecarlo


def add_input_options(p: argparse.ArgumentParser) -> None:
    """``CONFIG | --demo`` and the embedded market's options (``drb sweep``, ``drb montecarlo``)."""
    p.add_argument("config", nargs="?", help="TOML config of your data (see README)")
    p.add_argument("--demo", action="store_true", help="use the embedded synthetic market instead of a CONFIG")
    p.add_argument("--seed", type=int, default=0, help="--demo: seed of the embedded market (default 0)")
    p.add_argument("--start", default="2018-01-02", help="--demo: first date (default 2018-01-02)")
    p.add_argument("--end", default="2025-06-30", help="--demo: last date (default 2025-06-30)")


def add_execution_options(p: argparse.ArgumentParser) -> None:
    """``--out --engine --scheduler --tls-* --workers --restart --quiet`` (``drb sweep``, ``drb montecarlo``)."""
    p.add_argument("--out", help="output folder (default: run.out of the config)")
    p.add_argument("--engine", choices=ENGINES, default="fast", help="fast (default: the allocators in a plain loop) or backtrader")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, tcp://HOST:PORT or tls://HOST:PORT (default: a LocalCluster)")
    p.add_argument("--tls-ca-file", dest="tls_ca_file", help="tls:// scheduler: PEM file of the CA that signed its certificate")
    p.add_argument("--tls-cert", dest="tls_cert", help="tls:// scheduler: this client's PEM certificate")
    p.add_argument("--tls-key", dest="tls_key", help="tls:// scheduler: this client's PEM private key")
    p.add_argument("--workers", type=positive_int, help="LocalCluster worker processes (default: number of cores; 1 = serial, no Dask)")
    p.add_argument("--restart", action="store_true", help="discard finished results of an earlier run in --out instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _client(args: argparse.Namespace, config: Any) -> Any:
    """The Dask client (or None: serial) of ``--scheduler``/``--workers``, workers warmed up."""
    from runners.experiments.sweep import WORKER_WARM_UP
    from runners.parallel import dask_client, tls_options

    workers = args.workers if args.workers is not None else config.workers
    return dask_client(args.scheduler, workers, warm_up=WORKER_WARM_UP, **tls_options(args))


def _levels_arg(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part[:-1]) / 100 if part.endswith("%") else float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected levels like 0.05,0.10 or 5%,10%, got {part!r}") from None
        out.append(v)
    return out


def _sweep_parser(p: argparse.ArgumentParser) -> None:
    add_input_options(p)
    p.add_argument("--grid", help="grid file (TOML: [sweep], [params], [grid], [forecast_errors]; see README)")
    p.add_argument("--forecast-errors", dest="forecast_errors", action="store_true", help="run the forecast-error injection (paper Table 2)")
    p.add_argument("--levels", type=_levels_arg, help="noise levels, e.g. 0.05,0.1,0.2 or 5%%,10%% (default 5%%..30%% by 5%%)")
    p.add_argument("--seeds", type=int, help="noise draws per level (default 5)")
    p.add_argument("--strategy", help="strategy swept (default DynamicRiskBudget, or sweep.strategy of the grid)")
    add_execution_options(p)


def _sweep_spec(args: argparse.Namespace) -> Any:
    """The grid of ``--grid`` (or none) with ``--strategy``, ``--forecast-errors``, ``--levels``, ``--seeds`` applied."""
    from runners.experiments.sweep import ForecastErrorSpec, GridSpec, _check_levels, parse_grid

    spec = parse_grid(args.grid) if args.grid else GridSpec()
    if args.strategy:
        if args.grid and spec.strategy != check_strategy(args.strategy, "--strategy"):
            raise ConfigError(f"--strategy {args.strategy} contradicts sweep.strategy = {spec.strategy} of {args.grid}")
        spec.strategy = check_strategy(args.strategy, "--strategy")
    if args.forecast_errors and spec.forecast_errors is None:
        spec.forecast_errors = ForecastErrorSpec()
    if spec.forecast_errors is not None:
        if args.levels is not None:
            spec.forecast_errors.levels = _check_levels(args.levels, "--levels")
        if args.seeds is not None:
            if args.seeds < 1:
                raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
            spec.forecast_errors.seeds = args.seeds
    elif args.levels is not None or args.seeds is not None:
        raise ConfigError("--levels/--seeds need --forecast-errors (or a [forecast_errors] table in the grid)")
    return spec


def _cmd_sweep(args: argparse.Namespace) -> int:
    from runners.experiments.sweep import run_sweep

    if not args.grid and not args.forecast_errors:
        raise ConfigError("give --grid GRID.toml and/or --forecast-errors")
    market, config, info = load_inputs(args)
    spec = _sweep_spec(args)
    out = resolve_out(args, config)
    with _client(args, config) as client:
        res = run_sweep(
            market, config, spec, out, engine=args.engine, client=client, progress=not args.quiet, restart=args.restart, market_info=info
        )
    if res.sweep is not None and len(res.sweep):
        best = res.sweep.sort_values("sharpe", ascending=False).iloc[0]
        axes = ", ".join(f"{a}={best[a]}" for a in spec.axes)
        print(f"{len(res.sweep)} points; best Sharpe {best['sharpe']:.3f} at {axes}")
    if res.degradation is not None and len(res.degradation):
        d = res.degradation[res.degradation["metric"] == "sharpe"]
        for _, r in d.iterrows():
            print(f"{r['strategy']}: noise +-{r['level']:.0%}: Sharpe {r['mean']:.3f} ({r['delta']:+.3f} vs clean)")
    print(f"outputs written to {out}")
    return 0


def register_sweep(commands: _CommandTable) -> None:
    """Add ``drb sweep``."""
    commands["sweep"] = (
        "parameter grid sweeps with heatmaps, and forecast-error injection (CONFIG or --demo)",
        _sweep_parser,
        _cmd_sweep,
    )


def _montecarlo_parser(p: argparse.ArgumentParser) -> None:
    add_input_options(p)
    p.add_argument("--paths", type=int, required=True, help="number of market paths")
    p.add_argument("--source", choices=SOURCES, default="both", help="synthetic, bootstrap of the input data, or both alternating (default)")
    p.add_argument("--block-length", dest="block_length", type=float, default=DEFAULT_BLOCK, help=f"mean block length of the bootstrap in bars (default {DEFAULT_BLOCK})")
    p.add_argument("--path-seed", dest="path_seed", type=int, help="base seed of the paths (default: run.seed of the config, or --seed)")
    p.add_argument("--strategies", help="comma-separated strategies (default: all ten)")
    p.add_argument("--risk-model", dest="risk_model", help="dynamic model's risk model (default: the strategy's own, egarch_dcc; ewma is about 3x cheaper)")
    p.add_argument("--refit-every", dest="refit_every", type=int, help="dynamic model's EGARCH-DCC refit period in bars")
    p.add_argument("--no-figures", dest="no_figures", action="store_true", help="skip the figures")
    add_execution_options(p)


def _cmd_montecarlo(args: argparse.Namespace) -> int:
    from runners.experiments.montecarlo import run_montecarlo

    market, config, info = load_inputs(args)
    overrides: dict[str, Any] = {}
    if args.risk_model:
        overrides["risk_model"] = args.risk_model
    if args.refit_every is not None:
        overrides["refit_every"] = args.refit_every
    strategies = None
    if args.strategies:
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
        strategies = list(dict.fromkeys(check_strategy(n, "--strategies") for n in names))
    out = resolve_out(args, config)
    with _client(args, config) as client:
        res = run_montecarlo(
            market, config, args.paths, out, strategies=strategies, dynamic_overrides=overrides, source=args.source,
            seed=args.path_seed, block=args.block_length, engine=args.engine, client=client, progress=not args.quiet,
            restart=args.restart, market_info=info, figures=not args.no_figures,
        )  # fmt: skip
    s = res.summary
    if len(s):
        g = s[(s["source"] == "all") & (s["metric"] == "sharpe")]
        for _, r in g.iterrows():
            print(f"beats {r['baseline']} on Sharpe in {r['share']:.1%} of {r['n_paths']} paths (95% CI {r['ci_low']:.1%}-{r['ci_high']:.1%})")
    if res.resumed_from:
        print(f"resumed: {res.resumed_from} paths were already done")
    print(f"outputs written to {out}")
    return 0


def register_montecarlo(commands: _CommandTable) -> None:
    """Add ``drb montecarlo``."""
    commands["montecarlo"] = (
        "Monte Carlo over synthetic and bootstrapped market paths: dynamic model vs baselines",
        _montecarlo_parser,
        _cmd_montecarlo,
    )


def register_cli(commands: _CommandTable, *, report: ReportBuilder | None = None) -> None:
    """Add the experiments' commands (demo, compare, sweep, montecarlo) to a ``drb`` command table.

    Parameters
    ----------
    commands : dict
        ``name -> (help, parser builder, handler)``, filled in place.
    report : callable, optional
        ``report(folder, n_jobs=..., progress=...)`` building a run folder's report (the CLI's).
    """
    register_comparison(commands, report=report)
    register_sweep(commands)
    register_montecarlo(commands)
