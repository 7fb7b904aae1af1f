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
