"""CLI error paths: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runners.cli import main


def _one_line_error(capsys, code, pattern):
    out, err = capsys.readouterr()
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    import re

    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["compare"], r"drb compare: error: give a CONFIG file or --prices FILE"),
        (["compare", "--prices", "nope.csv", "--out", "x"], r"nope\.csv: file not found"),
        (["compare", "missing.toml"], r"missing\.toml: config file not found"),
        (["demo", "--seed", "abc"], r"argument --seed: invalid int value"),
        (["frobnicate"], r"invalid choice: 'frobnicate'"),
        (["demo", "--strategies", "Magic", "--out", "x"], r"unknown strategy 'Magic'"),
        (["report", "no/such/dir"], r"drb report: error: .*no/such/dir"),
        (["demo", "--workers", "0"], r"argument --workers: must be at least 1, got 0$"),
        (["demo", "--workers", "-3"], r"argument --workers: must be at least 1, got -3$"),
        (["demo", "--workers", "two"], r"argument --workers: expected a positive integer, got 'two'$"),
        (["compare", "--prices", "p.csv", "--workers", "0"], r"argument --workers: must be at least 1"),
        (["sweep", "--demo", "--grid", "g.toml", "--workers", "0"], r"argument --workers: must be at least 1"),
        (["montecarlo", "--demo", "--paths", "2", "--workers", "-1"], r"argument --workers: must be at least 1"),
        (
            ["montecarlo", "--demo", "--paths", "2", "--strategies", "EqualWieght", "--out", "x"],
            r"--strategies: .*did you mean 'EqualWeight'",
        ),
        (
            ["demo", "--strategies", "EqualWieght", "--out", "x"],
            r"--strategies: unknown strategy 'EqualWieght' \(did you mean 'EqualWeight'\?\)",
        ),
    ],
)
def test_cli_errors(capsys, argv, pattern):
    _one_line_error(capsys, main(argv), pattern)


def test_bad_price_file_names_file_column_row(tmp_path, capsys):
    p = tmp_path / "prices.csv"
    p.write_text("date,equity,bond\n2020-01-02,1,2\n2020-01-03,1,-2\n")
    code = main(["compare", "--prices", str(p), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, r"prices\.csv: column 'bond': negative price -2 at line 3 \(date 2020-01-03\)")


def test_short_history(tmp_path, capsys):
    p = tmp_path / "prices.csv"
    rows = "\n".join(f"2020-01-{d:02d},{100 + d},{50 + d}" for d in range(1, 29))
    p.write_text("date,equity,bond\n" + rows + "\n")
    code = main(["compare", "--prices", str(p), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, r"history too short: 28 aligned bars")


def test_unmapped_columns(tmp_path, capsys):
    p = tmp_path / "prices.csv"
    p.write_text("date,SPY,TLT\n2020-01-02,1,2\n2020-01-03,1,2\n")
    code = main(["compare", "--prices", str(p), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, r"column 'SPY' is not an asset class")


def test_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nprices='p.csv'\n[broker]\ncomission=0.1\n")
    _one_line_error(capsys, main(["compare", str(cfg)]), r"unknown key 'broker.comission'")


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "runners.cli", "compare", "--prices", str(tmp_path / "x.csv"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "file not found" in proc.stderr


def _prices(tmp_path, header="date,SPY,TLT", rows=30, reverse=False, name="prices.csv"):
    import pandas as pd

    dates = pd.bdate_range("2020-01-02", periods=rows)
    extra = "".join(f",{7 + k}" for k in range(header.count(",") - 2))
    lines = [f"{d:%Y-%m-%d},{100 + i},{50 + i}{extra}" for i, d in enumerate(dates)]
    if reverse:
        lines.reverse()
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(lines) + "\n")
    return p


def test_strategy_names_any_case():
    from runners.experiments.commands import canonical_strategies as _canonical_strategies

    assert _canonical_strategies(["equalweight", "RISKPARITY", "EqualWeight"]) == ["EqualWeight", "RiskParity"]


def test_mistyped_ticker_named_with_the_option_given(tmp_path, capsys):
    p = _prices(tmp_path)
    code = main(["compare", "--prices", str(p), "--assets", "SPX=equity,TLT=bond", "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, rf"--assets SPX: no such column in {p} \(did you mean 'SPY'\?\)$")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[data]\nprices='{p.name}'\n[assets]\nSPX='equity'\nTLT='bond'\n[run]\nout='o'\n")
    _one_line_error(capsys, main(["compare", str(cfg)]), r"\[assets\] SPX: no such column in .*prices\.csv \(did you mean 'SPY'\?\)$")


def test_unmapped_columns_hint_fits_the_command_line(tmp_path, capsys):
    p = _prices(tmp_path)
    code = main(["compare", "--prices", str(p), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, r"map columns to classes with --assets COLUMN=CLASS")


def test_data_notes_are_one_line_each(tmp_path, capsys):
    p = _prices(tmp_path, header="date,SPY,TLT,GLD", rows=30, reverse=True)
    code = main(["compare", "--prices", str(p), "--assets", "SPY=equity,TLT=bond", "--out", str(tmp_path / "o")])
    assert code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err[0] == f"drb: note: {p}: 1 column not listed in --assets ignored"
    assert err[1] == f"drb: note: {p}: dates run newest first; rows sorted oldest first"
    assert "history too short: 30 aligned bars" in err[2] and len(err) == 3


def test_non_csv_config_target_not_quoted(tmp_path, capsys):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[data]\nprices='{secret}'\n[run]\nout='o'\n")
    code = main(["compare", str(cfg)])
    _one_line_error(capsys, code, rf"drb compare: error: {secret}: not a CSV with a 'date' column$")


def test_weekly_prices_rejected_on_the_command_line(tmp_path, capsys):
    import pandas as pd

    dates = pd.date_range("2010-01-01", periods=400, freq="W-FRI")
    p = tmp_path / "weekly.csv"
    p.write_text("date,equity,bond\n" + "".join(f"{d:%Y-%m-%d},{100 + i},{50 + i}\n" for i, d in enumerate(dates)))
    code = main(["compare", "--prices", str(p), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, r"weekly\.csv: column 'date': rows are 5 business days apart \(median\), i\.e\. weekly data")
    assert not (tmp_path / "o").exists()


def test_drb_debug_shows_a_traceback_for_project_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRB_DEBUG", "1")
    code = main(["compare", "--prices", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and "DataError" in err
    assert err.strip().splitlines()[-1].endswith("nope.csv: file not found")


def test_zoned_timestamps_run_end_to_end(tmp_path, capsys):
    """Dates with a time and mixed daylight-saving offsets used to fail late, after the output
    folder was half written; they are now local dates from the start."""
    import json

    import pandas as pd

    dates = pd.bdate_range("2019-01-02", periods=300)
    stamps = [d.tz_localize("America/New_York") + pd.Timedelta(hours=16) for d in dates]
    rows = "".join(f"{s.isoformat()},{100 + i * 0.1},{50 + (i % 7) * 0.05}\n" for i, s in enumerate(stamps))
    p = tmp_path / "prices.csv"
    p.write_text("date,equity,bond\n" + rows)
    assert "-05:00" in rows and "-04:00" in rows
    out = tmp_path / "o"
    argv = ["compare", "--prices", str(p), "--strategies", "equalweight", "--workers", "1", "--no-report", "--quiet"]
    code = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "timestamps with a time of day reduced to their local dates" in err
    info = json.loads((out / "run.json").read_text())
    assert info["data"]["start"] == "2019-01-02" and info["data"]["bars"] == 300


def test_sweep_and_montecarlo_strategy_names_ignore_case():
    from runners.experiments.common import check_strategy as _check_strategy

    assert _check_strategy("equalweight", "--strategies") == "EqualWeight"
    assert _check_strategy("DYNAMICRISKBUDGET", "--strategy") == "DynamicRiskBudget"


def test_help_imports_no_engine():
    """Building the ``drb`` parser imports no engine (backtrader), numba, scipy, matplotlib or Dask:
    the command modules defer them to their handlers."""
    code = (
        "import sys, runners.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('backtrader', 'numba', 'scipy', 'matplotlib', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_experiments_never_import_the_report():
    """The CLI runs the report after a comparison: no module of runners.experiments imports runners.report
    (also inside functions)."""
    import ast
    from pathlib import Path

    import runners.experiments as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not [n for n in names if n == "runners.report" or n.startswith("runners.report.")], path.name


def test_report_is_built_in_the_staged_folder_before_the_swap(small_market, config, tmp_path):
    """``after_write`` sees the complete temporary run folder; what it writes is swapped in with it,
    and when it fails the earlier run in ``--out`` is left as it was."""
    from runners.experiments.compare import run_comparison

    out = tmp_path / "run"
    seen = []

    def after_write(folder, workers):
        seen.append((folder, workers, (folder / "run.json").exists()))
        (folder / "extra.txt").write_text("made in the staged folder")

    run_comparison(small_market, config, strategies=["EqualWeight"], out_dir=out, workers=1, progress=False, after_write=after_write)
    [(folder, workers, had_run_json)] = seen
    assert folder != out.resolve() and workers == 1 and had_run_json
    assert (out / "extra.txt").read_text() == "made in the staged folder"

    def failing(folder, workers):
        raise RuntimeError("report failed")

    with pytest.raises(RuntimeError, match="report failed"):
        run_comparison(small_market, config, strategies=["EqualWeight"], out_dir=out, workers=1, progress=False, after_write=failing)
    assert (out / "extra.txt").exists()  # the earlier run is untouched
    with pytest.raises(TypeError, match="no longer builds the report"):
        run_comparison(small_market, config, strategies=["EqualWeight"], workers=1, progress=False, report=True)
