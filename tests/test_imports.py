"""The module layering has no import cycles: no module imports another that imports it back, not even
inside a function (the front end: syntax -> loader -> evaluate -> values -> binding -> builder ->
constructs -> elaborate)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "archdsl"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> nx.DiGraph:
    """Module -> the archdsl modules it imports anywhere in its text."""
    graph = nx.DiGraph()
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    for name, path in modules.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archdsl"):
                for alias in node.names:  # a submodule, or a name defined in the module (or package) itself
                    target = f"{node.module}.{alias.name}"
                    graph.add_edge(name, target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph.add_edges_from((name, a.name) for a in node.names if a.name.startswith("archdsl"))
    return graph


FRONT_END = ["archdsl.syntax.parser", "archdsl.loader", "archdsl.evaluate", "archdsl.functions", "archdsl.values",
             "archdsl.binding", "archdsl.builder", "archdsl.constructs", "archdsl.targets", "archdsl.elaborate",
             "archdsl.ir"]


def test_the_front_end_has_no_import_cycle():
    graph = imports()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1 and set(c) & set(FRONT_END)]
    assert cycles == []


def test_constructs_and_the_interpreter_are_layered():
    graph = imports()
    assert graph.has_edge("archdsl.elaborate", "archdsl.constructs")
    assert not nx.has_path(graph, "archdsl.constructs", "archdsl.elaborate")
    for lower in ("archdsl.values", "archdsl.binding", "archdsl.builder", "archdsl.targets"):
        assert not nx.has_path(graph, lower, "archdsl.constructs"), lower
