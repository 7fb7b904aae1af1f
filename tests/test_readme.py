"""The README's promises: two Quickstart commands, and the cerebro example runs as written."""

from __future__ import annotations

import re

from conftest import REPO

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.S | re.M)
    assert m, title
    return m.group(1)


def test_quickstart_has_two_command_lines():
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", _section("Quickstart"), flags=re.S).group(1)
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "drb demo" in lines[0] and "pip install" in lines[0]
    assert "pytest" in lines[1] and ".[test]" in lines[1]


def test_cerebro_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", _section("Using the strategies in your own cerebro"), flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "final value" in out
    strategy = namespace["strategy"]
    assert len(strategy.rebalances) > 10
    assert namespace["log"]["trigger"].iloc[0] == "initial"
