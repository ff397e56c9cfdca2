"""The module tree of a generated network: the IR's scopes with their interfaces and recomputed chains.

Every naming level of the IR that holds a layer (a block instance, a `group`, a construct) becomes a
module that its parent calls. This module works out, for each such scope, its direct layers, its
child scopes, the values it reads from outside (its inputs, in order of first use) and the values
read outside it (its outputs), and, for a memory-efficient build, which concat-BN-ReLU-conv chains
each scope recomputes in backward. Nothing here writes source text (see codegen.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archdsl import ir
from archdsl.ops import OPS

# A memory-efficient build recomputes in backward chains of cheap ops (a concatenation, BN, ReLU)
# ending in the op that reads their result (a convolution or a global pool): only the chain's
# inputs and its result are stored.
CHEAP = ("concat", "bn", "relu")
ENDS = ("conv", "gap")
JOINS = ("concat", "clique_output")  # ops whose value may be handed on as the list of its parts


@dataclass
class Scope:
    """One module of the generated tree: a naming level of the IR and what crosses its boundary."""

    name: str  # dotted path; "" for the network itself
    kind: str  # block, group, dense, dense_layer, clique, ... ; "network"; "container" for an unrecorded level
    definition: str
    parent: Scope | None = None
    children: list[Scope] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)  # layers directly inside, in execution order
    subtree: set[str] = field(default_factory=set)  # every layer inside, at any depth
    inputs: list[str] = field(default_factory=list)  # values read from outside, in order of first use
    outputs: list[str] = field(default_factory=list)  # values read outside (or network outputs)
    features: bool = False  # a dense layer that takes the list of all earlier features
    segments: list[list[str]] = field(default_factory=list)  # chains recomputed in backward, hosted here

    @property
    def attr(self) -> str:
        """The attribute name under its parent."""
        return self.name.rsplit(".", 1)[-1]

    def local(self, node: str) -> str:
        return node[len(self.name) + 1:] if self.name else node

    def walk(self):
        """This scope and every scope inside it, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Plan:
    """The work graph (the IR plus a leading concatenation for first dense layers), the scope tree,
    execution order, and which values a memory-efficient build hands on as lists of parts."""

    g: ir.Graph
    root: Scope
    order: list[str]
    position: dict[str, int]
    scope_of: dict[str, Scope]
    listed: set[str]
    inputs: dict[str, list[str]] = field(default_factory=dict)  # node -> its data inputs in port order
    constructors: dict[str, str | None] = field(default_factory=dict)  # node -> its submodule's source


def plan(g: ir.Graph, memory_efficient: bool = False) -> Plan:
    recorded = dict(g.graph.get("scopes", {}))
    if any(info["kind"] == "dense_layer" for info in recorded.values()):
        g = g.copy()  # the work graph gains leading concatenations; the IR stays as it was
        _lead_first_dense_layers(g, recorded)
    order = ir.topological_order(g)
    position = {n: i for i, n in enumerate(order)}
    root = Scope("", "network", g.graph["network"])
    scopes: dict[str, Scope] = {"": root}
    scope_of: dict[str, Scope] = {}
    for node in order:
        parts = node.split(".")
        parent = root
        for depth in range(1, len(parts)):
            name = ".".join(parts[:depth])
            if name not in scopes:
                info = recorded.get(name, {"kind": "container", "definition": parts[depth - 1]})
                scopes[name] = Scope(name, info["kind"], info["definition"], parent)
                parent.children.append(scopes[name])
            parent = scopes[name]
            parent.subtree.add(node)
        parent.nodes.append(node)
        scope_of[node] = parent
    root.subtree = set(order)
    inputs = {n: ir.data_inputs(g, n) for n in order}
    constructors = {n: None if g.nodes[n].get("shares") else constructor(g, n, inputs[n]) for n in order}
    result = Plan(g, root, order, position, scope_of, set(), inputs, constructors)
    for scope in root.walk():
        _interface(result, scope)
    if memory_efficient:
        _place_segments(result)
    return result


def _lead_first_dense_layers(g: ir.Graph, recorded: dict) -> None:
    """Give the first layer of each dense construct the concatenation its siblings start with (of one
    tensor: a copy), so that every layer of a dense block is the same module taking the feature list."""
    for name, info in recorded.items():
        if info["kind"] != "dense_layer" or g.has_node(f"{name}.concat1"):
            continue
        inside = [n for n in g.nodes if n.startswith(name + ".")]
        sources = {u for n in inside for u in ir.data_inputs(g, n) if not u.startswith(name + ".")}
        if len(sources) != 1 or not inside:
            continue
        (source,) = sources
        lead = f"{name}.concat1"
        first = min(inside, key=lambda n: g.nodes[n]["order"])
        g.add_node(lead, op="concat", args={}, span=g.nodes[first]["span"], shape=g.nodes[source]["shape"],
                   params=0, macs=0, order=g.nodes[first]["order"] - 0.5)
        for node in inside:
            for u, v, key, d in list(g.in_edges(node, keys=True, data=True)):
                if u == source:
                    g.remove_edge(u, v, key)
                    g.add_edge(lead, v, key=key, **d)
        g.add_edge(source, lead, key=0, port=0, kind="data")


def _interface(p: Plan, scope: Scope) -> None:
    if scope is p.root:
        scope.inputs = list(p.g.graph["inputs"])
        scope.outputs = list(p.g.graph["outputs"].values())
        return
    outputs = set(p.g.graph["outputs"].values())
    for node in sorted(scope.subtree, key=p.position.get):
        for source in p.inputs[node]:
            if source not in scope.subtree and source not in scope.inputs:
                scope.inputs.append(source)
    scope.outputs = [n for n in sorted(scope.subtree, key=p.position.get)
                     if n in outputs or any(v not in scope.subtree for v in p.g.successors(n))]
    lead = f"{scope.name}.concat1"
    scope.features = (scope.kind == "dense_layer" and lead in scope.nodes
                      and p.inputs[lead] == scope.inputs)


def constructor(g: ir.Graph, node: str, inputs: list[str]) -> str | None:
    """The source that builds the node's submodule, None for an op without one."""
    data = g.nodes[node]
    if data["op"] not in OPS:  # a network input
        return None
    source = OPS[data["op"]].inference_module if g.graph.get("inference") else OPS[data["op"]].module
    return source(data["args"], [g.nodes[u]["shape"] for u in inputs], data["shape"])


def _chain(g: ir.Graph, start: str) -> list[str] | None:
    """The chain from `start` through cheap ops to a conv or global pool, if it is a plain chain
    (every node but the last read only by the next) with exactly one BN."""
    chain = [start]
    while g.nodes[chain[-1]]["op"] in CHEAP:
        successors = list(g.successors(chain[-1]))
        if len(successors) != 1 or ir.data_inputs(g, successors[0]) != [chain[-1]]:
            return None
        chain.append(successors[0])
        if g.nodes[chain[-1]]["op"] == "concat":
            return None
    ops = [g.nodes[n]["op"] for n in chain]
    return chain if ops[-1] in ENDS and ops.count("bn") == 1 else None


def recompute_chains(p: Plan) -> list[list[str]]:
    """The chains a memory-efficient build recomputes in backward: each dense layer's leading
    concat-BN-ReLU-conv, and every BN-ReLU-conv or BN-ReLU-global-pool that reads a concatenation (a
    transition, a head), with a clique block's output concatenation when that chain is its only reader."""
    g, chains = p.g, []
    for scope in p.root.walk():
        chain = _chain(g, scope.nodes[0]) if scope.kind == "dense_layer" and scope.nodes else None
        if chain:
            chains.append(chain)
    taken = {n for chain in chains for n in chain}
    for node in p.order:
        if g.nodes[node]["op"] != "bn" or node in taken:
            continue
        source = ir.data_inputs(g, node)[0]
        chain = _chain(g, node) if g.nodes[source]["op"] in JOINS else None
        if chain:
            if g.nodes[source]["op"] == "clique_output" and list(g.successors(source)) == [node]:
                chain = [source, *chain]  # a block's concatenated output is recomputed too
            chains.append(chain)
    return sorted(chains, key=lambda c: p.position[c[-1]])


def _place_segments(p: Plan) -> None:
    """Host each chain in the scope of its layers with weights; a leading concatenation from another
    scope is handed over as the list of its parts (the host concatenates inside the recomputation)."""
    for chain in recompute_chains(p):
        weighted = [n for n in chain if p.constructors[n] is not None]
        host = p.scope_of[weighted[0]]
        if any(p.scope_of[n] is not host for n in chain[1:]):
            continue  # a chain across module boundaries stays stored (no spec builds one today)
        if p.scope_of[chain[0]] is not host:
            p.listed.add(chain[0])
        host.segments.append(chain)
