"""The package's import graph, read from the code with ``ast``: no cycle, and no import up a layer.

The layer order is the architecture of ``docs/architecture.md``; a new module either joins a layer here or
the test names it. Every import counts, at module level or inside a function (a lazy import still couples).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vau_r1"

#: Lowest first. A module may import its own layer (without a cycle) and the layers below it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundation", frozenset({"vau_r1", "vau_r1.resources", "vau_r1.sections"})),
    ("data", frozenset({"vau_r1.data"})),
    ("components", frozenset({"vau_r1.tasks", "vau_r1.model", "vau_r1.rewards", "vau_r1.bench", "vau_r1.judge"})),
    ("policy", frozenset({"vau_r1.policy"})),
    ("algorithms", frozenset({"vau_r1.grpo", "vau_r1.sft"})),
    ("engine", frozenset({"vau_r1.engine"})),
    ("recipes", frozenset({"vau_r1.recipes"})),
    ("evaluation", frozenset({"vau_r1.eval"})),
    ("apps", frozenset({"vau_r1.apps"})),
    ("demo", frozenset({"vau_r1.demo"})),
    ("commands", frozenset({"vau_r1.commands", "vau_r1.cli"})),
)
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ``vau_r1`` modules ``path`` imports (``from pkg import submodule`` names the submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "vau_r1")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vau_r1":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found


def import_graph() -> nx.DiGraph:
    """Module → imported module, over every ``.py`` file of the package."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for path in paths:
        for target in imported_modules(path, modules):
            if target != module_name(path):
                graph.add_edge(module_name(path), target)
    return graph


def unit_of(module: str) -> str:
    """The layered unit of a module: a top-level module, or a sub-package of ``vau_r1``."""
    return ".".join(module.split(".")[:2])


def upward_imports(edges: list[tuple[str, str]]) -> list[str]:
    """Each edge that imports a higher layer (or a unit no layer lists), as ``a -> b (layer -> layer)``."""
    bad = []
    for source, target in edges:
        a, b = unit_of(source), unit_of(target)
        if a not in RANK or b not in RANK:
            bad.append(f"{source} -> {target}: add {(a if a not in RANK else b)!r} to a layer of LAYERS")
        elif RANK[b] > RANK[a]:
            bad.append(f"{source} -> {target} ({LAYERS[RANK[a]][0]} imports {LAYERS[RANK[b]][0]})")
    return bad


def unit_cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Cycles between units (packages), e.g. ``data → tasks → data``."""
    units = nx.DiGraph((unit_of(a), unit_of(b)) for a, b in edges if unit_of(a) != unit_of(b))
    return [sorted(c) for c in nx.simple_cycles(units)]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph()


def test_every_unit_has_a_layer(graph: nx.DiGraph) -> None:
    unlisted = sorted({unit_of(m) for m in graph} - set(RANK))
    assert unlisted == [], f"units without a layer (add them to LAYERS and docs/architecture.md): {unlisted}"


def test_no_import_runs_up_a_layer(graph: nx.DiGraph) -> None:
    assert upward_imports(list(graph.edges)) == []


def test_no_cycle_between_packages(graph: nx.DiGraph) -> None:
    assert unit_cycles(list(graph.edges)) == []


def test_no_cycle_between_modules(graph: nx.DiGraph) -> None:
    assert [sorted(c) for c in nx.simple_cycles(graph)] == []


def test_the_checks_catch_a_violation() -> None:
    """Edges written by hand: one upward import, one package cycle; the checks name both."""
    edges = [("vau_r1.data.dataset", "vau_r1.tasks.prompts"), ("vau_r1.tasks.prompts", "vau_r1.data.schema")]
    assert upward_imports(edges) == [
        "vau_r1.data.dataset -> vau_r1.tasks.prompts (data imports components)"
    ]
    assert unit_cycles(edges) == [["vau_r1.data", "vau_r1.tasks"]]
    (unlisted,) = upward_imports([("vau_r1.newroom.x", "vau_r1.data")])
    assert unlisted.endswith("add 'vau_r1.newroom' to a layer of LAYERS")


def test_the_graph_sees_lazy_and_module_level_imports() -> None:
    """A function-level import and a module-level import both count (the package has no relative imports)."""
    graph = import_graph()
    assert graph.has_edge("vau_r1.commands.demo", "vau_r1.demo.run")  # imported inside a function
    assert graph.has_edge("vau_r1.recipes.grpo", "vau_r1.engine.loop")
