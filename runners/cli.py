"""The ``drb`` command line.

Every error is one line on stderr and exit code 2, never a traceback (set ``DRB_DEBUG=1`` to see
one). Commands register themselves in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

# One BLAS thread per process: the estimators solve many tiny problems, and the comparison already
# runs strategies in parallel processes (set before numpy is imported).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from drb.errors import DRBError  # noqa: E402
from runners.config import positive_int  # noqa: E402
from runners.live import paper as _live_paper  # noqa: E402
from runners.live import replay as _live_replay  # noqa: E402

__all__ = ["main", "build_parser", "positive_int"]

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


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


def _canonical_strategies(names: list[str] | None) -> list[str] | None:
    """``--strategies`` names spelled as the strategies are (case-insensitive, "did you mean")."""
    if names is None:
        return None
    from runners.backtest import canonical_strategy_name

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


def _apply_evidence_args(cfg, args: argparse.Namespace) -> None:
    """``--holdout-start`` / ``--primary`` override ``[run]`` of the config (issue 15)."""
    from runners.config import parse_config

    overrides = {k: getattr(args, k) for k in ("holdout_start", "primary") if getattr(args, k, None)}
    if overrides:
        checked = parse_config({"run": overrides}, label="command line", require_prices=False)
        for k in overrides:
            setattr(cfg, k, getattr(checked, k))


def _cmd_demo(args: argparse.Namespace) -> int:
    from feeds import MarketData, synthetic_market
    from runners.compare import print_health_summary, run_comparison
    from runners.config import RunConfig

    strategies = _canonical_strategies(args.strategies)
    m = synthetic_market(seed=args.seed, start=args.start, end=args.end)
    market = MarketData.from_synthetic(m)
    cfg = RunConfig(source="drb demo", seed=args.seed)
    _apply_evidence_args(cfg, args)
    out = Path(args.out)
    res = run_comparison(
        market,
        cfg,
        strategies=strategies,
        out_dir=out,
        workers=args.workers,
        progress=not args.quiet,
        extra_info={"seed": args.seed, "market": "embedded synthetic market"},
        report=not args.no_report,
        print_health=False,
    )
    _print_summary(res.metrics, out)
    print_health_summary(res.health)
    return 0


def _print_data_notes(caught: list[warnings.WarningMessage]) -> None:
    """What loading normalized (sorted rows, dropped times, ignored columns): one line each."""
    from drb.errors import DataWarning

    for w in caught:
        if issubclass(w.category, DataWarning):
            print(f"drb: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load_market_from_config(cfg, *, min_bars: int):
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
            _print_data_notes(caught)
    if cfg.start is not None or cfg.end is not None:
        market.prices = market.prices.loc[cfg.start : cfg.end]
        if market.vol_index is not None:
            market.vol_index = market.vol_index.loc[cfg.start : cfg.end]
        if market.macro is not None and cfg.end is not None:
            market.macro = market.macro.loc[: cfg.end]
    if len(market.prices) < min_bars:
        from drb.errors import DataError

        raise DataError(
            f"{cfg.prices}: history too short: {len(market.prices)} aligned bars, the configured windows need at least {min_bars}"
        )
    return market


def _config_from_args(args: argparse.Namespace):
    from runners.backtest import validate_strategy_params
    from runners.config import RunConfig, load_config

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


def _cmd_compare(args: argparse.Namespace) -> int:
    from runners.compare import print_health_summary, run_comparison

    cfg = _config_from_args(args)
    strategies = _canonical_strategies(args.strategies)
    _apply_evidence_args(cfg, args)
    warm = int(cfg.execution.get("warmup", 252))
    market = _load_market_from_config(cfg, min_bars=warm + 22)
    res = run_comparison(
        market,
        cfg,
        strategies=strategies,
        out_dir=cfg.out,
        workers=args.workers,
        progress=not args.quiet,
        report=not args.no_report,
        print_health=False,
    )
    _print_summary(res.metrics, cfg.out)
    print_health_summary(res.health)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from runners.report import report_main

    return report_main(list(args.report_args))


def _print_summary(metrics, out: Path) -> None:
    cols = ["ann_return", "ann_vol", "sharpe", "max_drawdown", "turnover"]
    table = metrics[cols].copy()
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"outputs written to {out}")


#: name -> (help, parser builder, handler)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


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


def _report_parser(p: argparse.ArgumentParser) -> None:
    # Options are parsed by runners.report.report_main (see `drb report --help`).
    p.add_argument("report_args", nargs=argparse.REMAINDER, help="RUN_DIR [options]")


COMMANDS["demo"] = ("run every strategy on the embedded market and write the report", _demo_parser, _cmd_demo)
COMMANDS["compare"] = ("run every strategy on your data (CONFIG or --prices) side by side", _compare_parser, _cmd_compare)
COMMANDS["report"] = ("regenerate report.md/report.html from a run folder", _report_parser, _cmd_report)
COMMANDS["paper"] = _live_paper.COMMAND
COMMANDS["replay"] = _live_replay.COMMAND


def _register_optional() -> None:
    """Commands that live in their own modules (registered when importable)."""
    for mod in ("runners.sweep", "runners.montecarlo"):
        try:
            module = __import__(mod, fromlist=["register"])
        except ImportError:
            continue
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The ``drb`` argument parser."""
    _register_optional()
    parser = _Parser(prog="drb", description="Dynamic risk budgeting for backtrader.")
    from drb import __version__

    parser.add_argument("--version", action="version", version=f"drb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, build, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        build(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drb`` console script; returns the exit code."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        from runners.report import report_main

        return report_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a one-line usage error (2)
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.handler(args) or 0)
    except DRBError as exc:
        if os.environ.get("DRB_DEBUG"):
            traceback.print_exc()
        print(f"drb {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"drb {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        if os.environ.get("DRB_DEBUG"):
            traceback.print_exc()
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"drb {args.command}: error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
