"""The side-by-side comparison: every strategy on the same feeds and broker, outputs to a folder.

Each strategy runs in its own cerebro with its own broker, in parallel processes where cores allow,
with a progress bar. The folder layout is documented in ``docs/outputs.md``; every file is written
atomically (temporary file, fsync, rename), ``run.json`` last, into a temporary folder beside the
target that is swapped in when complete (:mod:`runners.rundir`), so ``--out`` never mixes two runs.
The run ends with one health summary on stderr (:mod:`runners.health`), also stored in ``run.json``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from drb.errors import ConfigError
from feeds.market import MarketData
from runners import rundir
from runners.config import DEFAULT_EXECUTION, RunConfig
from runners.engine.cerebro import (
    STRATEGY_NAMES,
    StrategyResult,
    effective_params,
    run_backtest,
    strategy_params_for,
)
from runners.experiments.time_risk import (
    plot_time_risk,
    time_risk_contributions_by_strategy,
    time_risk_table,
)

__all__ = [
    "ComparisonResult",
    "check_floors",
    "run_comparison",
    "write_outputs",
    "strategy_params_for",
    "package_versions",
    "time_risk_contributions_by_strategy",
    "time_risk_table",
]

# Kept here for one release (they moved to runners.rundir and runners.experiments.time_risk).
package_versions = rundir.package_versions

@dataclass
class ComparisonResult:
    """All strategies' results plus the metrics table."""

    results: dict[str, StrategyResult]
    metrics: pd.DataFrame
    out_dir: Path | None
    timings: dict[str, float]
    health: dict[str, Any] = field(default_factory=dict)


#: Per-asset budget floors that cannot hold when ``floor * n > 1`` (checked before any backtest;
#: SharpeRiskBudget's floor scales itself: ``min(floor, 0.5 / n)``).
FLOOR_PARAMS: dict[str, str] = {"DynamicRiskBudget": "budget_floor"}


def check_floors(market: MarketData, name: str, params: Mapping[str, Any]) -> None:
    """Refuse, before any backtest runs, a budget floor infeasible for the market's number of assets.

    Raises
    ------
    ConfigError
        Naming the strategy, the parameter, its value and the largest feasible one.
    """
    key = FLOOR_PARAMS.get(name)
    if key is None:
        return
    value = effective_params(market, name, params).get(key)
    n = len(market.assets)
    if value is not None and float(value) * n > 1.0 + 1e-12:
        raise ConfigError(
            f"strategy.{name}.{key} = {float(value):g} is infeasible for {n} assets (the floors sum to "
            f"{float(value) * n:.2f} > 1): set it to at most 1/n = {1.0 / n:.4g}, e.g. 0.5/n = {0.5 / n:.4g}"
        )


def _run_one(args: tuple[MarketData, str, dict[str, Any], dict[str, float]]) -> StrategyResult:
    market, name, params, broker = args
    import warnings

    from drb.errors import DRBWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DRBWarning)
        res = run_backtest(market, name, params, broker)
    msgs = sorted({f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, DRBWarning)})
    if msgs:
        res.info["warnings"] = msgs
    return res


def _check_comparison(market: MarketData, config: RunConfig, names: Sequence[str]) -> str | None:
    """Refuse, before any backtest, unknown strategies, a benchmark not run, bad evidence options,
    a history shorter than the warm-up plus a month; the benchmark's name (or None)."""
    for n in names:
        if n not in STRATEGY_NAMES:
            raise ConfigError(f"unknown strategy '{n}' (known: {', '.join(STRATEGY_NAMES)})")
    bench = config.benchmark or ("EqualWeight" if "EqualWeight" in names else None)
    if bench is not None and bench not in names:
        raise ConfigError(f"run.benchmark: '{bench}' is not among the strategies run ({', '.join(names)})")
    from runners.experiments.evidence_outputs import check_evidence_options  # issue 15

    check_evidence_options(config, list(names), bench, market)
    warm = int(config.execution.get("warmup", DEFAULT_EXECUTION["warmup"]))
    if len(market.prices) <= warm + 21:
        raise ConfigError(
            f"history too short: {len(market.prices)} bars, the warm-up of {warm} bars plus a month needs {warm + 22}"
        )
    return bench


def _run_all(tasks: Sequence[tuple[MarketData, str, dict[str, Any], dict[str, float]]], n_workers: int, progress: bool) -> dict[str, StrategyResult]:
    """Every task's backtest, in-process (``n_workers == 1``) or in worker processes, with a progress bar."""
    from tqdm.auto import tqdm

    results: dict[str, StrategyResult] = {}
    bar = tqdm(total=len(tasks), desc="strategies", unit="strategy", disable=not progress, file=sys.stderr)

    def done(res: StrategyResult) -> None:
        results[res.name] = res
        bar.update(1)
        bar.set_postfix_str(res.name)

    try:
        if n_workers == 1:
            for task in tasks:
                done(_run_one(task))
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                futures = [pool.submit(_run_one, t) for t in tasks]
                for fut in as_completed(futures):
                    done(fut.result())
    finally:
        bar.close()
    return results


def run_comparison(
    market: MarketData,
    config: RunConfig | None = None,
    *,
    strategies: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    extra_info: Mapping[str, Any] | None = None,
    after_write: Callable[[Path, int], None] | None = None,
    print_health: bool = True,
    report: bool = False,
) -> ComparisonResult:
    """Run every strategy on ``market`` and (optionally) write the output folder.

    Parameters
    ----------
    market : MarketData
    config : RunConfig, optional
        Broker, execution, per-strategy parameters, benchmark and risk-free rate.
    strategies : sequence of str, optional
        Names (default: ``config.strategies`` or all of :data:`runners.engine.cerebro.STRATEGY_NAMES`).
    out_dir : path, optional
        Where to write the outputs (``docs/outputs.md``); nothing written when None.
    workers : int, optional
        Parallel processes (default: ``config.workers`` or the number of cores); 1 runs in-process.
    progress : bool
        Show a progress bar on stderr.
    extra_info : mapping, optional
        Added to ``run.json`` (e.g. the seed of the synthetic market).
    after_write : callable, optional
        ``after_write(folder, workers)``, called once the outputs are written into the run's
        temporary folder and before it is swapped in for ``out_dir`` (the CLI builds the report
        there with :func:`runners.report.build_report`, so a failed report leaves ``out_dir`` as it was).
    print_health : bool
        Print the run's warning summary on stderr at the end (the CLI prints it itself, after the
        metrics table, with :func:`print_health_summary`).
    report : bool
        Deprecated, kept for one release: must be False (this function no longer builds the
        report; pass ``after_write``).
    """
    if report:
        raise TypeError("run_comparison(report=True) no longer builds the report: pass after_write (see runners.cli)")
    config = config or RunConfig(source="<defaults>")
    names = list(strategies or config.strategies or STRATEGY_NAMES)
    bench = _check_comparison(market, config, names)
    tasks = [(market, n, strategy_params_for(n, config), dict(config.broker)) for n in names]
    for _, n, params, _ in tasks:
        check_floors(market, n, params)
    final = _check_out_dir(out_dir)
    n_workers = workers or config.workers or os.cpu_count() or 1
    n_workers = max(1, min(n_workers, len(tasks)))
    t0 = time.perf_counter()
    results = _run_all(tasks, n_workers, progress)
    results = {n: results[n] for n in names}
    wall = time.perf_counter() - t0
    metrics = compute_comparison_metrics(results, market, benchmark=bench, risk_free=config.risk_free)
    timings = {"wall_seconds": round(wall, 3), "backtest_s": round(wall, 3), "workers": n_workers}
    timings.update({f"{n}_seconds": r.info.get("seconds", float("nan")) for n, r in results.items()})
    health = _run_health(results, market)
    out_path = None
    if final is not None:
        stage = _begin_run_folder(final)
        extra = {**dict(extra_info or {}), "health": health}
        write_outputs(stage, results, metrics, market, config, timings=timings, benchmark=bench, extra_info=extra)
        if after_write is not None:
            after_write(stage, n_workers)
        out_path = _finish_run_folder(stage, final)
    if print_health:
        print_health_summary(health)
    return ComparisonResult(results=results, metrics=metrics, out_dir=out_path, timings=timings, health=health)


def _run_health(results: Mapping[str, StrategyResult], market: MarketData) -> dict[str, Any]:
    """The run's health summary (``runners.health``), stored as ``health`` in run.json."""
    from runners.health import run_health

    return run_health(results, list(market.notes))


def print_health_summary(health: Mapping[str, Any]) -> None:
    """The run's one warning summary on stderr, after everything else."""
    from runners.health import console_lines

    sys.stdout.flush()
    print("\n".join(console_lines(health)), file=sys.stderr)


def _check_out_dir(out_dir: str | Path | None) -> Path | None:
    """The absolute ``--out`` after checking, before any backtest, that a run may replace it."""
    if out_dir is None:
        return None
    from runners.rundir import check_target

    final = Path(out_dir).expanduser().resolve()
    check_target(final)
    return final


def _begin_run_folder(final: Path) -> Path:
    """Clean what killed runs left beside ``final`` and create this run's temporary folder."""
    from runners.rundir import clean_leftovers, make_staging

    for name in clean_leftovers(final):
        print(f"note: cleaned up {name}, left by an interrupted run", file=sys.stderr)
    return make_staging(final)


def _finish_run_folder(stage: Path, final: Path) -> Path:
    """Swap the complete run folder in (the previous run's folder is removed only now)."""
    from runners.rundir import swap_in

    return swap_in(stage, final)


def compute_comparison_metrics(
    results: Mapping[str, StrategyResult], market: MarketData, *, benchmark: str | None, risk_free: float = 0.0
) -> pd.DataFrame:
    """The metrics table of a comparison (``runners.metrics.compute_metrics``)."""
    from runners.metrics import annualized_turnover, compute_metrics, extreme_months

    returns = rundir.returns_frame(results)
    turnover = annualized_turnover(rundir.rebalances_frame(results), returns)
    eq = [a for a, c in market.asset_classes.items() if c == "equity"]
    mask = extreme_months(market.prices[eq[0]]) if eq else None
    return compute_metrics(returns, turnover=turnover, benchmark=benchmark, extreme_mask=mask, risk_free=risk_free)


def _write_time_risk(out: Path, results: Mapping[str, StrategyResult], market: MarketData) -> None:
    """``time_risk.csv`` and ``figures/time_risk.png`` when some strategy has contributions."""
    contributions = time_risk_contributions_by_strategy(results, market)
    if contributions:
        rundir.write_table_csv(out, rundir.TIME_RISK_CSV, time_risk_table(contributions))
        (out / rundir.FIGURES).mkdir(exist_ok=True)
        plot_time_risk(contributions, out / rundir.FIGURES / "time_risk.png", freq="year")


def _run_info(results: Mapping[str, StrategyResult], market: MarketData, config: RunConfig, *,
              fallbacks: dict[str, Any], timings: Mapping[str, Any], benchmark: str | None) -> dict[str, Any]:
    """``run.json`` of a compare run (without ``extra_info`` and ``evidence``)."""
    from indicators.triggers import trigger_summary

    return {
        "created": pd.Timestamp.now().isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "strategies": list(results),
        "benchmark": benchmark,
        "parameters": {n: effective_params(market, n, strategy_params_for(n, config), config.broker)
                       for n in results},
        "parameter_overrides": {n: strategy_params_for(n, config) for n in results},
        "data": rundir.data_info(results, market),
        "fallbacks": fallbacks,
        "strategy_info": {n: r.info for n, r in results.items()},
        "triggers": {n: trigger_summary(r.rebalances, r.info.get("skipped")) for n, r in results.items()},
        "order_issues": {n: len(r.order_issues) for n, r in results.items()},
        "timings": dict(timings),
        "versions": rundir.package_versions(),
    }


def write_outputs(
    out: Path,
    results: Mapping[str, StrategyResult],
    metrics: pd.DataFrame,
    market: MarketData,
    config: RunConfig,
    *,
    timings: Mapping[str, Any],
    benchmark: str | None,
    extra_info: Mapping[str, Any] | None = None,
) -> Path:
    """Write a compare/demo run folder (``docs/outputs.md``) through :mod:`runners.rundir`;
    ``run.json`` last.

    Parameters
    ----------
    out : pathlib.Path
        The (staging) folder; created.
    results : mapping of str to StrategyResult
        Strategy name -> its backtest result.
    metrics : pandas.DataFrame
        ``metrics.csv`` (index ``strategy``).
    market : MarketData
        The market the run used.
    config : RunConfig
    timings : mapping
        Seconds per stage (``run.json``'s ``timings``).
    benchmark : str or None
        Benchmark strategy of the information ratio.
    extra_info : mapping, optional
        More top-level entries of ``run.json``.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from runners.experiments.evidence_outputs import write_evidence_for_run  # issue 15
    from runners.markdown import metrics_markdown

    rundir.create_run_folder(out)
    rundir.write_metrics_csv(out, metrics, metrics_markdown(metrics))
    rundir.write_table_csv(out, rundir.RETURNS_CSV, rundir.returns_frame(results))
    rundir.write_table_csv(out, rundir.VALUES_CSV, pd.DataFrame({n: r.values for n, r in results.items()}))
    rundir.write_strategy_results(out, results)
    rundir.write_table_csv(out, rundir.REBALANCES_CSV, rundir.rebalances_frame(results))
    _write_time_risk(out, results, market)
    fallbacks = rundir.write_model_files(out, results.get("DynamicRiskBudget"))
    run = _run_info(results, market, config, fallbacks=fallbacks, timings=timings, benchmark=benchmark)
    run.update(dict(extra_info or {}))
    run["evidence"] = write_evidence_for_run(out, results, market, config, benchmark)
    rundir.write_run_json(out, run)
    return out
