"""The IR: a networkx MultiDiGraph of ops, the contract between all stages.

Nodes are keyed by their stable hierarchical name (``stage2.block3.conv1``) and
carry ``op``, ``args``, ``span``, ``shape`` (no batch axis), ``params`` and
``macs``; a node that applies another node's weights again (`reuse`) names it in ``shares``
and counts no parameters of its own. Edges carry ``port`` (input position) and ``kind`` (``data`` or
``feedback``; feedback edges are a clique block's backward links and are not
shape inputs). Graph attributes: ``network``, ``inputs``, ``outputs``,
``params`` (the parameter values), ``scopes`` (block nesting) and ``checks``
(the spec's own expectations). See docs/ir.md.
"""

from __future__ import annotations

from dataclasses import asdict

import networkx as nx
import yaml

from archdsl.diagnostics import Span
from archdsl.ops import OPS, OpError, ranges

Graph = nx.MultiDiGraph


def node_facts(op: str, args: dict, in_shapes: list[tuple]) -> tuple[tuple, int, int]:
    """Shape, parameter count and MACs of one op; raises OpError."""
    definition = OPS[op]
    for name, value in args.items():
        problem = ranges.problem(op, name, value)
        if problem is not None:
            raise OpError(problem, arg=name)
    shape = tuple(definition.infer(args, in_shapes))
    return shape, definition.params(args, in_shapes, shape), definition.macs(args, in_shapes, shape)


def data_inputs(g: Graph, node: str) -> list[str]:
    """The node's data inputs in port order (feedback edges excluded)."""
    edges = [(d["port"], u) for u, _, d in g.in_edges(node, data=True) if d["kind"] == "data"]
    return [u for _, u in sorted(edges)]


def all_inputs(g: Graph, node: str) -> list[tuple[str, dict]]:
    """All inputs (data and feedback) in port order, with their edge data."""
    return sorted(((u, d) for u, _, d in g.in_edges(node, data=True)), key=lambda e: e[1]["port"])


def topological_order(g: Graph) -> list[str]:
    """Nodes in dependency order; feedback edges are ignored (they close clique cycles)."""
    data = nx.DiGraph()
    data.add_nodes_from(g.nodes)
    data.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["kind"] == "data")
    return list(nx.lexicographical_topological_sort(data, key=lambda n: g.nodes[n]["order"]))


def infer(g: Graph) -> list[tuple[str, OpError]]:
    """Recompute every node's shape, params and MACs from its op rule; returns the failures."""
    failures = []
    for name in topological_order(g):
        node = g.nodes[name]
        if node["op"] == "input":
            continue
        shapes = [g.nodes[u]["shape"] for u in data_inputs(g, name)]
        if any(s is None for s in shapes):
            node.update(shape=None, params=0, macs=0)
            continue
        try:
            shape, params, macs = node_facts(node["op"], node["args"], shapes)
        except OpError as exc:
            failures.append((name, exc))
            node.update(shape=None, params=0, macs=0)
            continue
        node.update(shape=shape, params=0 if node.get("shares") else params, macs=macs)
    return failures


def total_params(g: Graph) -> int:
    return sum(d["params"] for _, d in g.nodes(data=True))


def total_macs(g: Graph) -> int:
    return sum(d["macs"] for _, d in g.nodes(data=True))


def layers(g: Graph) -> list[str]:
    """Op nodes (inputs excluded) in execution order."""
    return [n for n in topological_order(g) if g.nodes[n]["op"] != "input"]


# ---------------------------------------------------------------- YAML round trip


def to_yaml(g: Graph) -> str:
    """Serialise the IR; `from_yaml(to_yaml(g))` is an equal graph."""
    doc = {
        "graph": _plain(dict(g.graph)),
        "nodes": [{"name": n, **_plain(d)} for n, d in g.nodes(data=True)],
        "edges": [{"src": u, "dst": v, **_plain(d)} for u, v, d in g.edges(data=True)],
    }
    return yaml.safe_dump(doc, sort_keys=False, width=120)


def from_yaml(text: str) -> Graph:
    doc = yaml.safe_load(text)
    g = Graph()
    g.graph.update(_restore(doc["graph"]))
    for node in doc["nodes"]:
        node = dict(node)
        name = node.pop("name")
        g.add_node(name, **_restore(node))
    for edge in doc["edges"]:
        edge = dict(edge)
        u, v = edge.pop("src"), edge.pop("dst")
        g.add_edge(u, v, key=edge["port"], **_restore(edge))
    return g


def _plain(value):
    if isinstance(value, Span):
        return {"span": asdict(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"tuple": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _restore(value):
    if isinstance(value, dict):
        if set(value) == {"span"} and isinstance(value["span"], dict):
            return Span(**value["span"])
        if set(value) == {"tuple"}:
            return tuple(_restore(v) for v in value["tuple"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def equal(a: Graph, b: Graph) -> bool:
    """Same nodes, attributes, edges and graph attributes."""
    return (
        dict(a.graph) == dict(b.graph)
        and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        and sorted((u, v, sorted(d.items())) for u, v, d in a.edges(data=True))
        == sorted((u, v, sorted(d.items())) for u, v, d in b.edges(data=True))
    )
