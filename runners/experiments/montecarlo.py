"""Monte Carlo over market paths: does the dynamic model beat the baselines, and how often?

``drb montecarlo (CONFIG | --demo) --paths N --out DIR`` builds ``N`` market paths, runs the dynamic
model and the baselines on each (fast path by default), and reports the distribution of relative
performance and the share of paths where the dynamic model beats each baseline, with confidence
intervals. Paths run as independent tasks through :mod:`runners.parallel` (serial, a Dask
``LocalCluster``, or ``--scheduler``); each finished path is written at once, atomically, so a
crash loses no finished path and rerunning the same command resumes where it stopped.

Paths
-----
Path ``i`` (``i = 0 .. N-1``) is a pure function of ``(seed, i)``, whatever ``N``, the execution
mode or the order paths finish in:

* ``synthetic``: the embedded regime-switching market (:func:`feeds.synthetic_market`) with its own
  seed ``SeedSequence([seed, i])``, over the span of the input data (2018-01-02 .. 2025-06-30 for
  ``--demo``): new regimes, returns, implied volatility and leading indicators;
* ``bootstrap``: a stationary block bootstrap (Politis and Romano 1994) of the input market: blocks
  of consecutive days with geometric lengths (mean ``--block-length``, default 63 bars, a quarter)
  from uniform random starts, wrapping around the end. One draw moves the asset returns *and* the
  implied-volatility index of the same days together (cross-asset correlation, volatility clustering
  within blocks and the index-return relation survive); prices are rebuilt from the first close.
  The macro indicators follow at monthly resolution: output month ``M`` takes the indicator row of
  the source month of its middle bar (the pre-sample history is kept). Leading relations across block
  boundaries are broken, which makes bootstrap paths a harder test for a regime model.

``--source both`` (default) alternates: even paths synthetic, odd paths bootstrap.

Default settings (10,000 paths of 2018-2025 daily data in under 4 core-hours)
-----------------------------------------------------------------------------
Every path runs the model of the backtests and the paper: the dynamic model with its EGARCH(1,1)-t
+ DCC(1,1) risk model refitted every 21 bars, and all nine baselines. Measured on a quiet 2-core
machine (``benchmarks/README.md``, "Monte Carlo"): about 1.3 CPU seconds per 2018-2025 path on
the fast path (the dynamic model about 0.95 s of it, more on paths with many boundary fits), so
10,000 paths take about 3.6 core-hours. ``--risk-model ewma`` (or ``risk_model = "ewma"`` in the config's
``[strategy.DynamicRiskBudget]``) makes a path about 3x cheaper (0.44 s, 1.2 core-hours) at the cost
of another model: turnover about 10% higher and a few percent more rebalances, per-path Sharpe
ratios within about 0.1 of the EGARCH-DCC model's on most paths (4 synthetic paths). Regimes,
budgets, smoothing and the execution model are the same either way. ``--strategies`` or the
config's ``run.strategies`` choose other strategies (``MacroRiskParity``'s factor solve is the
dearest baseline, about 0.08 s a path).

Outputs (``--out DIR``)
-----------------------
``parts/montecarlo/path-NNNNNN.csv``
    One file per finished path (its rows of ``paths.csv``), written atomically as it finishes.
``paths.csv``
    One row per path and strategy: ``path, strategy``, the metrics columns of ``metrics.csv``
    (:data:`runners.metrics.METRIC_COLUMNS`), then ``source`` (synthetic/bootstrap), ``seed`` (of
    the path), ``seconds`` (wall time of that strategy's backtest). Rewritten every 60 s and at the end.
``relative.csv``
    One row per path and baseline: ``path, source, baseline`` and ``<metric>_diff`` = dynamic minus
    baseline for the summary metrics.
``summary.csv``
    One row per ``source`` (``all``, ``synthetic``, ``bootstrap``), ``baseline`` and ``metric``:
    ``higher_is_better, n_paths, wins, ties, share`` (share of paths where the dynamic model is
    better, ties counting one half), ``ci_low, ci_high`` (95% Wilson score interval), and the
    distribution of the difference dynamic - baseline: ``mean_diff, std_diff, p05_diff,
    p25_diff, median_diff, p75_diff, p95_diff``.
``summary.md``
    The Sharpe, return and drawdown rows as Markdown.
``figures/share_beats.png``, ``figures/relative_<metric>.png``, ``figures/sharpe_distribution.png``
    Share of paths won per baseline with its interval; distributions of the differences; Sharpe
    ratios per strategy across paths.
``montecarlo.json``
    Settings (a rerun must match them to resume; ``--paths`` may change), execution mode,
    timings, paths done and failed.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import ConfigError, DataError, DRBError, DRBWarning
from drb.io import atomic_savefig, atomic_to_csv, atomic_write_text
from feeds.market import MarketData
from runners.config import RunConfig
from runners.engine.cerebro import STRATEGY_NAMES, validate_strategy_params
from runners.experiments.common import (
    DEFAULT_BLOCK,
    HIGHER_IS_BETTER,
    SOURCES,
    check_engine,
    check_market_length,
    evaluate_strategies,
    jsonable,
    manifest_status,
    markdown_table,
    market_fingerprint,
    open_store,
    run_parts,
    validate_points,
)
from runners.metrics import METRIC_COLUMNS

__all__ = [
    "DEFAULT_MC_STRATEGIES",
    "MC_DYNAMIC_DEFAULTS",
    "SUMMARY_METRICS",
    "MonteCarloResult",
    "path_market",
    "path_seed",
    "path_source",
    "run_montecarlo",
    "run_path",
    "stationary_bootstrap",
    "summarize",
    "wilson_interval",
]

DYNAMIC = "DynamicRiskBudget"

#: Strategies of a Monte Carlo run by default: all ten.
DEFAULT_MC_STRATEGIES: tuple[str, ...] = tuple(STRATEGY_NAMES)

#: Dynamic-model parameters a Monte Carlo run uses unless the config or the command line sets them:
#: none since issue 17 (the EGARCH-DCC model of the backtests fits the 4-core-hour budget; it was
#: ``{"risk_model": "ewma"}`` before). Reported in ``manifest.json`` and ``summary.md`` when applied.
MC_DYNAMIC_DEFAULTS: dict[str, Any] = {}

#: Metrics of ``summary.csv`` and ``relative.csv``.
SUMMARY_METRICS: tuple[str, ...] = ("sharpe", "ann_return", "ann_vol", "max_drawdown", "calmar", "sortino", "cvar95", "turnover")

_FLUSH_SECONDS = 60.0


# ----------------------------------------------------------------------------- paths


def path_source(path: int, source: str) -> str:
    """``synthetic`` or ``bootstrap`` for path ``path`` under ``--source`` (both: even/odd)."""
    if source == "both":
        return "synthetic" if path % 2 == 0 else "bootstrap"
    if source in ("synthetic", "bootstrap"):
        return source
    raise ConfigError(f"--source: unknown source '{source}' (known: {', '.join(SOURCES)})")


def path_seed(seed: int, path: int) -> int:
    """The seed of path ``path``: a 32-bit draw of ``SeedSequence([seed, path])``."""
    return int(np.random.SeedSequence([int(seed), int(path)]).generate_state(1, dtype=np.uint32)[0])


def _bootstrap_indices(n: int, length: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """Source rows of a stationary bootstrap: geometric block lengths, uniform starts, wrap-around."""
    if mean_block < 1:
        raise ConfigError(f"--block-length must be >= 1 bar, got {mean_block}")
    new_block = rng.random(length) < 1.0 / mean_block
    new_block[0] = True
    starts = rng.integers(0, n, size=length)
    block_id = np.cumsum(new_block) - 1
    first = np.flatnonzero(new_block)
    offset = np.arange(length) - first[block_id]
    return (starts[first][block_id] + offset) % n


def stationary_bootstrap(market: MarketData, rng: np.random.Generator, mean_block: float = DEFAULT_BLOCK) -> MarketData:
    """One stationary-block-bootstrap path of ``market`` on the same calendar.

    Parameters
    ----------
    market : MarketData
        T bars of prices (and optionally the volatility index and monthly macro indicators).
    rng : numpy.random.Generator
    mean_block : float
        Mean block length in bars (geometric lengths, Politis and Romano 1994).

    Returns
    -------
    MarketData
        Same dates, asset classes and first close; the T-1 daily return rows (with the volatility
        index of the same day) resampled in blocks; macro rows of the output months taken from the
        source month of each month's middle bar.
    """
    prices = market.prices.to_numpy(dtype=float)
    T = len(prices)
    if T < 3:
        raise DataError(f"bootstrap: need at least 3 bars, got {T}")
    rets = prices[1:] / prices[:-1]
    idx = _bootstrap_indices(T - 1, T - 1, mean_block, rng)
    out = np.empty_like(prices)
    out[0] = prices[0]
    out[1:] = prices[0] * np.cumprod(rets[idx], axis=0)
    dates = market.prices.index
    src_day = np.concatenate([[0], idx + 1])  # bar t of the path shows source bar src_day[t]
    new_prices = pd.DataFrame(out, index=dates, columns=market.prices.columns)
    vol = None
    if market.vol_index is not None:
        v = market.vol_index.to_numpy(dtype=float)
        vol = pd.Series(v[src_day], index=dates, name=market.vol_index.name)
    macro = None
    if market.macro is not None:
        months = dates.to_period("M")
        pos = pd.Series(np.arange(T)).groupby(months).median().astype(int)
        src_months = dates[src_day[pos.to_numpy()]].to_period("M").to_timestamp()
        out_months = pos.index.to_timestamp()
        mac = market.macro.copy()
        first = out_months[0]
        pre = mac.loc[mac.index < first]
        rows = mac.reindex(src_months)
        rows.index = out_months
        rows = rows.dropna(how="all")
        macro = pd.concat([pre, rows]).rename_axis(mac.index.name)
    return MarketData(
        prices=new_prices,
        asset_classes=dict(market.asset_classes),
        vol_index=vol,
        macro=macro,
        notes=[f"stationary block bootstrap (mean block {mean_block:g} bars) of the input market"],
        sources={"prices": "bootstrap"},
    )


def path_market(
    path: int,
    *,
    seed: int,
    source: str,
    base: MarketData | None,
    start: str,
    end: str,
    block: float = DEFAULT_BLOCK,
) -> tuple[MarketData, str, int]:
    """The market of one path.

    Returns
    -------
    market : MarketData
    source : str
        ``synthetic`` or ``bootstrap``.
    seed : int
        The path's own seed.
    """
    from feeds import synthetic_market

    kind = path_source(path, source)
    s = path_seed(seed, path)
    if kind == "synthetic":
        return MarketData.from_synthetic(synthetic_market(seed=s, start=start, end=end)), kind, s
    if base is None:
        raise ConfigError("bootstrap paths need the input market")
    return stationary_bootstrap(base, np.random.default_rng(s), block), kind, s


def run_path(path: int, *, base: MarketData | None, setup: Mapping[str, Any]) -> pd.DataFrame:
    """Build path ``path`` and run every strategy on it (the task a worker runs).

    Parameters
    ----------
    path : int
    base : MarketData or None
        The input market (for bootstrap paths).
    setup : mapping
        ``seed, source, start, end, block, runs ({name: params}), broker, engine, benchmark,
        risk_free``.

    Returns
    -------
    DataFrame
        ``path, strategy``, metrics columns, ``source, seed, seconds``: one row per strategy.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DRBWarning)
        market, kind, s = path_market(
            path, seed=setup["seed"], source=setup["source"], base=base, start=setup["start"], end=setup["end"], block=setup["block"]
        )
    table, seconds = evaluate_strategies(
        market,
        setup["runs"],
        broker=setup["broker"],
        engine=setup["engine"],
        benchmark=setup["benchmark"],
        risk_free=setup["risk_free"],
    )
    rows = table.reset_index(names="strategy")
    rows.insert(0, "path", int(path))
    rows["source"] = kind
    rows["seed"] = s
    rows["seconds"] = [round(seconds[n], 4) for n in setup["runs"]]
    return rows


# ----------------------------------------------------------------------------- summary


def wilson_interval(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial share (95% by default); (nan, nan) when ``n == 0``."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return lo, hi


def relative_table(paths: pd.DataFrame, *, dynamic: str = DYNAMIC, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Per path and baseline: ``<metric>_diff`` = dynamic minus baseline.

    Parameters
    ----------
    paths : DataFrame
        ``paths.csv``.

    Returns
    -------
    DataFrame
        Columns ``path, source, baseline`` + ``<metric>_diff``.
    """
    cols = ["path", "source", "baseline", *[f"{m}_diff" for m in metrics]]
    if paths.empty or dynamic not in set(paths["strategy"]):
        return pd.DataFrame(columns=cols)
    dyn = paths[paths["strategy"] == dynamic].set_index("path")
    frames = []
    for base in [s for s in dict.fromkeys(paths["strategy"]) if s != dynamic]:
        b = paths[paths["strategy"] == base].set_index("path")
        common = dyn.index.intersection(b.index)
        f = pd.DataFrame({"path": common, "source": dyn.loc[common, "source"].to_numpy(), "baseline": base})
        with np.errstate(invalid="ignore"):
            for m in metrics:
                f[f"{m}_diff"] = dyn.loc[common, m].to_numpy(dtype=float) - b.loc[common, m].to_numpy(dtype=float)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def summarize(paths: pd.DataFrame, *, dynamic: str = DYNAMIC, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """``summary.csv``: share of paths where ``dynamic`` beats each baseline, and the differences.

    A path counts for a metric when both values are not NaN. "Better" follows
    :data:`runners.experiments.sweep.HIGHER_IS_BETTER`; equal values are ties and count one half. The interval
    is the 95% Wilson score interval of the share over independent paths. Difference quantiles
    use the finite differences only (an infinite Calmar, for example, is left out of them but
    still counted as a win or loss).

    Returns
    -------
    DataFrame
        Columns ``source, baseline, metric, higher_is_better, n_paths, wins, ties, share, ci_low,
        ci_high, mean_diff, std_diff, p05_diff, p25_diff, median_diff, p75_diff, p95_diff``.
    """
    cols = [
        "source", "baseline", "metric", "higher_is_better", "n_paths", "wins", "ties", "share", "ci_low", "ci_high",
        "mean_diff", "std_diff", "p05_diff", "p25_diff", "median_diff", "p75_diff", "p95_diff",
    ]  # fmt: skip
    if paths.empty or dynamic not in set(paths["strategy"]):
        return pd.DataFrame(columns=cols)
    dyn = paths[paths["strategy"] == dynamic].set_index("path")
    rows = []
    sources = ["all", *[s for s in ("synthetic", "bootstrap") if s in set(paths["source"])]]
    baselines = [s for s in dict.fromkeys(paths["strategy"]) if s != dynamic]
    for src in sources:
        d_src = dyn if src == "all" else dyn[dyn["source"] == src]
        for base in baselines:
            b = paths[paths["strategy"] == base].set_index("path")
            common = d_src.index.intersection(b.index)
            for m in metrics:
                a = d_src.loc[common, m].to_numpy(dtype=float)
                c = b.loc[common, m].to_numpy(dtype=float)
                ok = ~(np.isnan(a) | np.isnan(c))
                a, c = a[ok], c[ok]
                n = int(ok.sum())
                better = a > c if HIGHER_IS_BETTER[m] else a < c
                ties = int(np.sum(a == c))
                wins = int(better.sum())
                share = (wins + 0.5 * ties) / n if n else math.nan
                lo, hi = wilson_interval(wins + 0.5 * ties, n)
                with np.errstate(invalid="ignore"):
                    diff = a - c
                fin = diff[np.isfinite(diff)]
                q = np.quantile(fin, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(fin) else [math.nan] * 5
                rows.append(
                    {
                        "source": src, "baseline": base, "metric": m, "higher_is_better": HIGHER_IS_BETTER[m],
                        "n_paths": n, "wins": wins, "ties": ties, "share": share, "ci_low": lo, "ci_high": hi,
                        "mean_diff": float(fin.mean()) if len(fin) else math.nan,
                        "std_diff": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan,
                        "p05_diff": q[0], "p25_diff": q[1], "median_diff": q[2], "p75_diff": q[3], "p95_diff": q[4],
                    }
                )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------- figures


def montecarlo_figures(paths: pd.DataFrame, summary: pd.DataFrame, relative: pd.DataFrame, folder: Path) -> list[Path]:
    """Share of paths won (with intervals), distributions of differences, Sharpe distributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    if summary.empty:
        return written
    s = summary[summary["source"] == "all"]
    show = [m for m in ("sharpe", "ann_return", "max_drawdown") if m in set(s["metric"])]
    baselines = list(dict.fromkeys(s["baseline"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(baselines) + 2), 3.8))
    width = 0.8 / max(len(show), 1)
    x = np.arange(len(baselines))
    for k, m in enumerate(show):
        g = s[s["metric"] == m].set_index("baseline").reindex(baselines)
        err = np.vstack([g["share"] - g["ci_low"], g["ci_high"] - g["share"]]).astype(float)
        ax.bar(x + (k - (len(show) - 1) / 2) * width, g["share"], width, yerr=err, capsize=3, label=m)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, baselines, rotation=30, ha="right")
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("share of paths the dynamic model wins")
    n = int(s["n_paths"].max()) if len(s) else 0
    ax.set_title(f"Dynamic model vs baselines over {n} paths (95% Wilson intervals)")
    ax.legend(fontsize=8, ncol=len(show), loc="upper center")
    fig.tight_layout()
    written.append(atomic_savefig(fig, folder / "share_beats.png", dpi=110))
    plt.close(fig)

    for m in show:
        col = f"{m}_diff"
        data = [relative.loc[relative["baseline"] == b, col].replace([np.inf, -np.inf], np.nan).dropna().to_numpy() for b in baselines]
        if not any(len(d) for d in data):
            continue
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(baselines) + 2), 3.8))
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(range(1, len(baselines) + 1), baselines, rotation=30, ha="right")
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_ylabel(f"{m}: dynamic - baseline")
        ax.set_title(f"Relative performance across paths: {m} (boxes 25-75%, whiskers 1.5 IQR)")
        fig.tight_layout()
        written.append(atomic_savefig(fig, folder / f"relative_{m}.png", dpi=110))
        plt.close(fig)

    strategies = list(dict.fromkeys(paths["strategy"]))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name in strategies:
        v = paths.loc[paths["strategy"] == name, "sharpe"].replace([np.inf, -np.inf], np.nan).dropna()
        if len(v):
            ax.hist(v, bins=min(40, max(5, len(v) // 5)), histtype="step", lw=1.8 if name == DYNAMIC else 1.0, label=name)
    ax.set_xlabel("Sharpe ratio")
    ax.set_ylabel("paths")
    ax.set_title("Sharpe ratios across paths")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(atomic_savefig(fig, folder / "sharpe_distribution.png", dpi=110))
    plt.close(fig)
    return written


# ----------------------------------------------------------------------------- orchestration


@dataclass
class MonteCarloResult:
    """What a Monte Carlo run produced."""

    out_dir: Path
    paths: pd.DataFrame
    summary: pd.DataFrame
    relative: pd.DataFrame
    done: int
    failures: list[Any] = field(default_factory=list)
    resumed_from: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def mc_runs(
    config: RunConfig,
    strategies: Sequence[str] | None = None,
    dynamic_overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Strategies and parameters of every path.

    The dynamic model gets :data:`MC_DYNAMIC_DEFAULTS` for every key the config's
    ``[strategy.DynamicRiskBudget]`` does not set, then ``dynamic_overrides`` (command line).

    Returns
    -------
    runs : dict
        ``{name: params}``, the dynamic model first.
    applied : dict
        The Monte Carlo defaults that were applied.
    """
    from runners.engine.cerebro import strategy_params_for

    names = list(strategies or config.strategies or DEFAULT_MC_STRATEGIES)
    for n in names:
        if n not in STRATEGY_NAMES:
            raise ConfigError(f"unknown strategy '{n}' (known: {', '.join(STRATEGY_NAMES)})")
    if DYNAMIC not in names:
        raise ConfigError(f"a Monte Carlo run compares {DYNAMIC} with baselines: include it in the strategies")
    if len(names) < 2:
        raise ConfigError("a Monte Carlo run needs at least one baseline besides the dynamic model")
    names = [DYNAMIC] + [n for n in dict.fromkeys(names) if n != DYNAMIC]
    runs = {n: strategy_params_for(n, config) for n in names}
    own = config.strategy_params.get(DYNAMIC, {})
    applied = {k: v for k, v in MC_DYNAMIC_DEFAULTS.items() if k not in own}
    runs[DYNAMIC].update(applied)
    runs[DYNAMIC].update(dict(dynamic_overrides or {}))
    validate_strategy_params(DYNAMIC, runs[DYNAMIC])
    return runs, applied


def _check_mc_options(n_paths: int, engine: str, source: str, block: float) -> None:
    if n_paths < 1:
        raise ConfigError(f"--paths must be >= 1, got {n_paths}")
    check_engine(engine)
    if source not in SOURCES:
        raise ConfigError(f"--source: unknown source '{source}' (known: {', '.join(SOURCES)})")
    if not block >= 1:
        raise ConfigError(f"--block-length must be >= 1 bar, got {block}")


def _mc_setup(
    market: MarketData,
    config: RunConfig,
    runs: dict[str, dict[str, Any]],
    *,
    seed: int | None,
    source: str,
    block: float,
    engine: str,
    info: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the market and benchmark; the task setup and the manifest settings of a Monte Carlo run."""
    for name, params in runs.items():
        validate_points(market, name, [params])
    check_market_length(market, {"warmup": max(int(p.get("warmup", 252)) for p in runs.values())})
    bench = config.benchmark or ("EqualWeight" if "EqualWeight" in runs else None)
    if bench is not None and bench not in runs:
        raise ConfigError(f"run.benchmark: '{bench}' is not among the strategies run ({', '.join(runs)})")
    base_seed = int(config.seed if seed is None else seed)
    start = str(market.prices.index[0].date())
    end = str(market.prices.index[-1].date())
    common = {"broker": dict(config.broker), "engine": engine, "benchmark": bench, "risk_free": float(config.risk_free)}
    setup = {"seed": base_seed, "source": source, "start": start, "end": end, "block": float(block), "runs": runs, **common}
    settings = {
        "seed": base_seed,
        "source": source,
        "span": [start, end],
        "block_length": float(block),
        "runs": jsonable(runs),
        **common,
        "data": market_fingerprint(market),
        "market": jsonable(dict(info or {})),
    }
    return setup, settings


class _PathsWriter:
    """Rewrites ``paths.csv`` at most every :data:`_FLUSH_SECONDS` while paths finish."""

    def __init__(self, out: Path, keys: Sequence[str]):
        self.out, self.keys, self.last = out, keys, time.perf_counter()

    def __call__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        if time.perf_counter() - self.last > _FLUSH_SECONDS:
            _write_paths(self.out, frames, self.keys)
            self.last = time.perf_counter()


def _write_mc_outputs(out: Path, frames: Mapping[str, pd.DataFrame], keys: Sequence[str], runs: Mapping[str, Any], applied: Mapping[str, Any], figures: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``paths.csv``, ``relative.csv``, ``summary.csv``, ``summary.md`` and the figures."""
    paths = _write_paths(out, frames, keys)
    relative = relative_table(paths)
    summary = summarize(paths)
    atomic_to_csv(relative, out / "relative.csv", index=False)
    atomic_to_csv(summary, out / "summary.csv", index=False)
    atomic_write_text(out / "summary.md", summary_markdown(summary, n_paths=len(frames), runs=runs, applied=applied))
    if figures and len(paths):
        montecarlo_figures(paths, summary, relative, out / "figures")
    return paths, summary, relative


def run_montecarlo(
    market: MarketData,
    config: RunConfig,
    n_paths: int,
    out_dir: str | Path,
    *,
    strategies: Sequence[str] | None = None,
    dynamic_overrides: Mapping[str, Any] | None = None,
    source: str = "both",
    seed: int | None = None,
    block: float = DEFAULT_BLOCK,
    engine: str = "fast",
    client: Any = None,
    progress: bool = True,
    restart: bool = False,
    market_info: Mapping[str, Any] | None = None,
    figures: bool = True,
    batch_size: int | None = None,
) -> MonteCarloResult:
    """Run ``n_paths`` paths (resuming finished ones in ``out_dir``) and write the outputs.

    Parameters
    ----------
    market : MarketData
        The input market: bootstrap source, and span of the synthetic paths.
    config : RunConfig
        Broker, execution, per-strategy parameters, benchmark (default EqualWeight), risk-free,
        strategies (``run.strategies``).
    n_paths : int
        Paths ``0 .. n_paths-1``.
    out_dir : path
    strategies : sequence of str, optional
        Default: ``config.strategies`` or :data:`DEFAULT_MC_STRATEGIES`.
    dynamic_overrides : mapping, optional
        Dynamic-model parameters set on the command line (``--risk-model``, ``--refit-every``).
    source : {"both", "synthetic", "bootstrap"}
    seed : int, optional
        Base seed of the paths (default ``config.seed``).
    block : float
        Mean block length of the bootstrap (bars).
    engine : {"fast", "backtrader"}
    client : distributed.Client, optional
        None: serial in this process.
    progress : bool
    restart : bool
        Discard the finished paths of an earlier run in ``out_dir``.
    market_info : mapping, optional
        Describes the input market in the manifest.
    figures : bool
        Write the figures.
    batch_size : int, optional
        Paths per cluster job (default: guided sizes, see :func:`runners.parallel.run_tasks`).

    Returns
    -------
    MonteCarloResult

    Raises
    ------
    DRBError
        After writing the outputs of every finished path, when some paths failed (a rerun
        retries them).
    """
    _check_mc_options(n_paths, engine, source, block)
    runs, applied = mc_runs(config, strategies, dynamic_overrides)
    setup, settings = _mc_setup(market, config, runs, seed=seed, source=source, block=block, engine=engine, info=market_info)
    out, keys = Path(out_dir), [f"path-{i:06d}" for i in range(n_paths)]
    state = _MonteCarloState(out, settings, restart, keys, applied, client)
    state.manifest("running", state.resumed_from)
    needs_base = any(path_source(i, source) == "bootstrap" for i, k in enumerate(keys) if k not in state.done)
    frames, info, _ = run_parts(
        state.store, [(k, (i,)) for i, k in enumerate(keys)], run_path, client=client,
        shared={"base": market if needs_base else None, "setup": setup}, progress=progress, desc="paths",
        unit="path", batch_size=batch_size, on_part=_PathsWriter(out, keys), done=state.done,
    )  # fmt: skip
    paths, summary, relative = _write_mc_outputs(out, frames, keys, runs, applied, figures)
    wall = state.finish(info, len(frames))
    return MonteCarloResult(
        out_dir=out, paths=paths, summary=summary, relative=relative, done=len(frames), failures=info.failures,
        resumed_from=state.resumed_from, timings={"wall_seconds": round(wall, 3), "computed": n_paths - state.resumed_from - len(info.failures)},
    )  # fmt: skip


class _MonteCarloState:
    """The output folder of a Monte Carlo run: its part store, the paths already done, its manifest."""

    def __init__(self, out: Path, settings: Mapping[str, Any], restart: bool, keys: Sequence[str], applied: Mapping[str, Any], client: Any):
        from runners.parallel import describe_client
        from runners.rundir import prepare_resumable

        prepare_resumable(out, ("montecarlo",), restart=restart)
        self.store = open_store(out, "montecarlo", settings, restart=restart)
        self.done = self.store.done()
        self.resumed_from = len(self.done & set(keys))
        self.n_paths, self.applied = len(keys), applied
        self.mode, self.threads = describe_client(client)
        self.t0 = time.perf_counter()

    def finish(self, info: Any, n_done: int) -> float:
        """The final manifest; raise when some paths failed (after every output is written); the wall seconds."""
        wall = time.perf_counter() - self.t0
        self.manifest("complete" if not info.failures else "incomplete", n_done, info)
        if info.failures:
            f = info.failures[0]
            raise DRBError(
                f"{len(info.failures)} of {self.n_paths} paths failed (first: {f.key}: {f.error}: {f.message}); "
                f"the {n_done} finished paths are in {self.store.folder}, rerun the same command to retry the others"
            )
        return wall

    def manifest(self, status: str, n_done: int, info: Any = None) -> None:
        """Rewrite ``montecarlo.json``: status, counts, failures, execution, timings."""
        state = manifest_status(self.store, info, mode=self.mode, threads=self.threads)
        self.store.write_manifest(
            {"status": status, "paths": self.n_paths, "done": n_done, "resumed_from": self.resumed_from,
             "recomputed_parts": state["recomputed_parts"], "failed": state["failed"], "execution": state["execution"],
             "mc_defaults_applied": jsonable(self.applied), "timings": {"seconds": round(time.perf_counter() - self.t0, 3)},
             "updated": pd.Timestamp.now().isoformat(timespec="seconds")}
        )  # fmt: skip


def _write_paths(out: Path, frames: Mapping[str, pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    cols = ["path", "strategy", *METRIC_COLUMNS, "source", "seed", "seconds"]
    parts = [frames[k] for k in keys if k in frames]
    paths = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    atomic_to_csv(paths, out / "paths.csv", index=False)
    return paths


def summary_markdown(summary: pd.DataFrame, *, n_paths: int, runs: Mapping[str, Any], applied: Mapping[str, Any]) -> str:
    """``summary.md``: the headline rows of ``summary.csv``."""
    lines = [
        "# Monte Carlo: dynamic model vs baselines\n",
        f"{n_paths} paths; dynamic-model parameters: {jsonable(runs.get(DYNAMIC, {}))}"
        + (f" (Monte Carlo defaults applied: {jsonable(dict(applied))})" if applied else "")
        + ".\n",
        "`share`: share of paths where the dynamic model is better (ties 1/2), 95% Wilson interval; "
        "`median_diff`: median of dynamic - baseline.\n",
    ]
    if summary.empty:
        return "\n".join(lines)
    for src, g in summary.groupby("source", sort=False):
        g = g[g["metric"].isin(["sharpe", "ann_return", "max_drawdown"])]
        t = g[["baseline", "metric", "n_paths", "share", "ci_low", "ci_high", "median_diff", "p05_diff", "p95_diff"]]
        lines += [f"## Paths: {src}\n", markdown_table(t, digits=3)]
    return "\n".join(lines)
