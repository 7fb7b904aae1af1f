"""The import graph follows the architecture (README, "Where things live").

Layers, lowest first: ``drb`` (errors, constants, linear algebra, atomic writes) < ``feeds`` and
``indicators`` (neither imports the other) < ``strategies`` < ``runners``. Inside a package, the
backtrader adapters sit on top of the pure core (no backtrader import below them), and inside
``runners`` the run-folder, config and parallel plumbing sits under the engines, which sit under the
experiments and paper trading, under the report (which reads what they wrote), under the CLI; inside
``strategies`` the core sits under the allocators and the time axis, under the backtrader classes. No import runs upward and no two modules
import each other, directly or through others (imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("drb", "feeds", "indicators", "strategies", "runners")
PACKAGE_LAYER = {"drb": 0, "feeds": 1, "indicators": 1, "strategies": 2, "runners": 3}
BT_ADAPTERS = ("feeds.bt_feeds", "feeds.live", "indicators.bt_indicators", "strategies.bt")
SUBLAYERS = [  # module prefix -> layer inside its package (longest prefix wins)
    ("strategies", 0),
    ("strategies.core", 0),
    ("strategies.allocators", 1),
    ("strategies.execution", 1),
    ("strategies.time_axis", 1),
    ("strategies.bt", 2),
    ("runners", 0),
    ("runners.engine", 1),
    ("runners.experiments", 2),
    ("runners.live", 2),
    ("runners.report", 3),
    ("runners.cli", 4),
]
#: Deprecated alias modules (old import paths kept for one release): they re-export from the new
#: place and are outside the layering.
ALIASES: set[str] = {
    *(f"runners.{m}" for m in (
        "analyzers", "backtest", "compare", "distributed", "evidence", "evidence_outputs", "evidence_report",
        "fastpath", "figures", "io", "montecarlo", "paper", "replay", "run_folder", "state_codec", "sweep",
        "tables", "tearsheets", "time_risk")),
    *(f"strategies.{m}" for m in (
        "_validation", "bt_strategies", "budget", "dynamic", "risk", "solvers", "turnover", "weights")),
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    path = MODULES[name]
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _sublayer(name: str) -> int:
    best = max((p for p, _ in SUBLAYERS if name == p or name.startswith(p + ".")), key=len)
    return dict(SUBLAYERS)[best]


def test_every_alias_is_a_module_and_nothing_imports_one() -> None:
    assert ALIASES <= set(MODULES)
    users = [f"{m} -> {d}" for m, deps in GRAPH.items() if m not in ALIASES for d in deps if d in ALIASES]
    assert not users, "code importing a deprecated alias: " + ", ".join(sorted(users))


def _is_adapter(name: str) -> bool:
    return any(name == a or name.startswith(a + ".") for a in BT_ADAPTERS)


def test_no_import_runs_to_a_higher_package() -> None:
    bad = []
    for mod, deps in GRAPH.items():
        if mod in ALIASES:
            continue
        pkg = mod.split(".")[0]
        for dep in deps:
            dpkg = dep.split(".")[0]
            if dpkg != pkg and PACKAGE_LAYER[dpkg] >= PACKAGE_LAYER[pkg]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports running upward or sideways between packages: " + ", ".join(sorted(bad))


def test_the_pure_core_never_imports_backtrader_or_its_adapters() -> None:
    bad = []
    for mod in MODULES:
        if _is_adapter(mod) or mod.startswith("runners") or mod in ALIASES:
            continue
        src = MODULES[mod].read_text(encoding="utf-8")
        tree = ast.parse(src)
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        if "backtrader" in names or any(_is_adapter(d) for d in GRAPH[mod]):
            bad.append(mod)
    assert not bad, "core modules importing backtrader: " + ", ".join(sorted(bad))


@pytest.mark.parametrize("package", ["strategies", "runners"])
def test_inside_a_package_no_import_runs_upward(package: str) -> None:
    bad = [
        f"{mod} -> {dep}"
        for mod, deps in GRAPH.items()
        if mod.split(".")[0] == package and mod not in ALIASES
        for dep in deps
        if dep.split(".")[0] == package and _sublayer(dep) > _sublayer(mod)
    ]
    assert not bad, f"{package}: imports running upward: " + ", ".join(sorted(bad))


#: Sibling sublayers that never import each other (feeds and indicators are covered above).
SIBLINGS = [("runners.experiments", "runners.live")]


@pytest.mark.parametrize("a, b", SIBLINGS)
def test_siblings_never_import_each_other(a: str, b: str) -> None:
    def inside(mod: str, prefix: str) -> bool:
        return mod == prefix or mod.startswith(prefix + ".")

    bad = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
           if (inside(m, a) and inside(d, b)) or (inside(m, b) and inside(d, a))]
    assert not bad, f"{a} and {b} import each other: " + ", ".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    # A package's __init__ re-exporting its modules is not a cycle of the code itself.
    graph = {
        m: {d for d in deps if not (MODULES[d].name == "__init__.py" and m.startswith(d + "."))}
        for m, deps in GRAPH.items()
    }
    assert _cycles(graph) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expected) -> None:
    assert _cycles(graph) == expected
