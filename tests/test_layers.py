"""The house's layers, read from the source: no import cycles (type-checking imports included),
no import from the strategies into the simulator, and an engine that needs only the standard
library (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"deploysim.sim": ROOT / "sim", "deploysim.strategies": ROOT / "strategies"}
ENGINE = "deploysim.strategies.resumable"
#: Third-party imports the engine may make, by module: its test helpers build on hypothesis.
ENGINE_EXTRAS = {f"{ENGINE}.testing": {"hypothesis"},
                 # imported when a RedisStore or a PostgresStore is made
                 f"{ENGINE}.redis_store": {"redis"},
                 f"{ENGINE}.postgres_store": {"psycopg"},
                 # the job systems' adapters, imported by their full names only
                 f"{ENGINE}.rq": {"rq", "redis"},
                 f"{ENGINE}.celery": {"celery", "kombu"},
                 f"{ENGINE}.dramatiq": {"dramatiq", "redis"}}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the project: dotted name -> (file, is a package's __init__)."""
    out = {}
    for prefix, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            out[".".join([prefix, *parts])] = (path, is_package)
    return out


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement of module ``name``, at any depth,
    with relative imports resolved and ``from package import module`` read as the module."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub if sub in MODULES else source, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in _imports(name) if target in MODULES and target != name}
            for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_project():
    graph = _graph()
    assert "deploysim.sim.cli" in graph and f"{ENGINE}.runner" in graph
    assert f"{ENGINE}.store" in graph[f"{ENGINE}.runner"]  # a relative import, resolved


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_cycle_detection_catches_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("deploysim.strategies")])
def test_strategies_never_import_the_simulator(name):
    bad = [(target, line) for target, line in _imports(name)
           if target == "deploysim.sim" or target.startswith("deploysim.sim.")
           or target.split(".")[0] in ("sim", "strategies")]
    assert bad == [], f"{MODULES[name][0]}: imports {bad}"


def _in_engine(name: str) -> bool:
    return name == ENGINE or name.startswith(ENGINE + ".")


@pytest.mark.parametrize("name", [m for m in MODULES if _in_engine(m)])
def test_the_engine_needs_only_the_standard_library(name):
    allowed = set(sys.stdlib_module_names) | {"__future__"} | ENGINE_EXTRAS.get(name, set())
    bad = []
    for target, line in _imports(name):
        top = target.split(".")[0]
        if _in_engine(target) or top in allowed:
            continue
        bad.append((target, line))
    assert bad == [], f"{MODULES[name][0]}: imports {bad}"


def test_no_module_imports_the_old_top_level_names():
    bad = [(name, target, line) for name in MODULES for target, line in _imports(name)
           if target.split(".")[0] in ("sim", "strategies")]
    assert bad == []
