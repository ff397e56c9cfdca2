"""The drawn view of an IR: which nodes, clusters and edges a diagram shows, before any styling.

`build_view(g, options)` applies the level of detail (every layer, one node per block,
a nesting depth, or the automatic choice for large networks), the user's `--expand` and
`--collapse` choices, folding of repeated blocks and the unrolled clique view. The result
is plain data (`View`) that `archdsl.render.dot` turns into Graphviz and tests inspect.
Layer labels come from each op's own `label`; block labels are the block's name and the
arguments it was instantiated with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archdsl.constructs import CONSTRUCTS
from archdsl.diagnostics import Diagnostic, UsageError
from archdsl.evaluate import format_value
from archdsl.ir import Graph, topological_order
from archdsl.ops import OPS
from archdsl.ops.clique import updated_in_stage2
from archdsl.render.folding import INNER_KINDS, Folder, ScopeTree, find_runs, scope_states, unknown_patterns

LEGIBLE = 60  # most drawn nodes the automatic level of detail aims for


@dataclass(frozen=True)
class RenderOptions:
    """What to draw. `detail`: 'auto', 'layers', 'blocks' or a nesting depth; `fold`: None = automatic."""

    detail: str | int = "auto"
    expand: tuple[str, ...] = ()
    collapse: tuple[str, ...] = ()
    fold: bool | None = None
    direction: str = "TB"
    theme: str = "color"
    shapes: bool = False
    params: bool = False
    unroll: bool = False


@dataclass
class Node:
    id: str
    role: str  # layer, block, input, output
    label: str
    category: str  # the op's category, or 'block' / 'io'
    cluster: str | None
    op: str | None = None
    args: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # smaller text under the label
    params: int = 0
    count: int = 1  # instances folded into this node
    stage: str = ""  # 'I' or 'II' for clique layers in the unrolled view
    shape: tuple | None = None


@dataclass
class Edge:
    tail: str
    head: str
    kind: str  # data, feedback, or shared (a layer applied again with the same weights: `reuse`)
    role: str = ""  # gate inputs: carry, H, T; "shared" on a shared-weights link
    shape: tuple | None = None


@dataclass
class Cluster:
    id: str
    scope: str
    label: str
    parent: str | None
    kind: str
    count: int = 1
    rows: list[list[str]] = field(default_factory=list)  # node ids drawn side by side (clique layers)


@dataclass
class View:
    network: str
    detail: str | int
    fold: bool
    layers: int
    nodes: dict[str, Node]
    edges: list[Edge]
    clusters: dict[str, Cluster]
    note: str


def build_view(g: Graph, options: RenderOptions = RenderOptions()) -> View:
    """The drawn view of `g`; raises UsageError for an unknown detail level or scope name."""
    tree = ScopeTree.of(g)
    bad = unknown_patterns(tree, [*options.expand, *options.collapse])
    if bad:
        known = ", ".join(sorted({s["definition"] for s in tree.scopes.values()})) or "none"
        raise UsageError(Diagnostic(f"no block or scope named {', '.join(map(repr, bad))} in {g.graph['network']}",
                                    help=f"block definitions here: {known}; scopes are named like "
                                         f"{next(iter(sorted(tree.scopes)), 'layer1.block0')}"))
    order = topological_order(g)
    layer_count = sum(1 for n in order if g.nodes[n]["op"] != "input")
    detail, fold, note = _choose(g, tree, order, options, layer_count)
    states = scope_states(tree, detail, list(options.expand), list(options.collapse))
    folder = Folder(find_runs(g, tree, states) if fold else [])
    view = View(g.graph["network"], detail, fold, layer_count, {}, [], {}, note)
    _add_nodes(g, tree, states, folder, order, view)
    _add_edges(g, tree, states, folder, order, view)
    for name, node in g.graph["outputs"].items():
        target = _drawn(tree, states, folder, node)[0]
        view.nodes[f"output/{name}"] = Node(f"output/{name}", "output", name, "io", None,
                                            lines=[_shape(g.nodes[node]["shape"])])
        view.edges.append(Edge(target, f"output/{name}", "data", shape=g.nodes[node]["shape"]))
    _clique_rows(view, options.unroll)
    return view


# ---------------------------------------------------------------- level of detail


def _choose(g, tree, order, options, layer_count) -> tuple[str | int, bool, str]:
    detail = options.detail
    if detail not in ("auto", "layers", "blocks") and not (isinstance(detail, int) or str(detail).isdigit()):
        raise UsageError(Diagnostic(f"unknown level of detail '{detail}'",
                                    help="use auto, layers, blocks, or a nesting depth 0, 1, 2.."))
    if detail != "auto":
        detail = int(detail) if str(detail).isdigit() else detail
        return detail, bool(options.fold), f"detail '{detail}'" + (", repeated blocks folded" if options.fold else "")
    depths = sorted({tree.depth(s) for s in tree.scopes}, reverse=True)
    candidates = [("layers", False), ("layers", True), ("blocks", True)]  # blocks: repeated ones folded (issue 14)
    candidates += [(d, True) for d in depths]
    if options.fold is not None:
        candidates = list(dict.fromkeys((d, options.fold) for d, _ in candidates))
    counted = []
    for d, f in candidates:
        states = scope_states(tree, d, list(options.expand), list(options.collapse))
        folder = Folder(find_runs(g, tree, states) if f else [])
        counted.append((d, f, len({_drawn(tree, states, folder, n)[0] for n in order}) + len(g.graph["outputs"])))
        if counted[-1][2] <= LEGIBLE:
            break
    d, f, drawn = counted[-1] if counted[-1][2] <= LEGIBLE else min(counted, key=lambda c: c[2])
    how = f"detail '{d}'" + (", repeated blocks folded" if f else "")
    if len(order) <= LEGIBLE:
        return d, f, f"every layer ({layer_count} layers)" if (d, f) == ("layers", False) else how
    return d, f, (f"{layer_count} layers drawn as {drawn} nodes ({how}), chosen automatically because drawing "
                  f"every layer takes over {LEGIBLE} nodes; --detail layers --no-fold draws them all")


def _drawn(tree: ScopeTree, states: dict[str, bool], folder: Folder, name: str) -> tuple[str, tuple]:
    """The drawn node standing for IR node `name`, and the folded-run instances it passed through."""
    folded, tags = folder.fold(name)
    for scope in tree.ancestors(folded):
        if not states[scope]:
            return f"{scope}/block", tags
    return folded, tags


# ---------------------------------------------------------------- nodes and clusters


def _add_nodes(g, tree, states, folder, order, view: View) -> None:
    for name in order:
        drawn, _ = _drawn(tree, states, folder, name)
        node = view.nodes.get(drawn)
        if node is not None:
            node.params += g.nodes[name]["params"]
            if node.role == "layer":
                _widen(node, g.nodes[name]["args"])
            continue
        data = g.nodes[name]
        if drawn.endswith("/block"):
            scope = drawn[: -len("/block")]
            count = folder.count.get(scope, 1)
            info = dict(tree.scopes[scope], args=run_args(tree, folder.members.get(scope, [scope])))
            title, lines = scope_title(info, _varying(tree, info["definition"]), _growth(g, tree, scope))
            view.nodes[drawn] = Node(drawn, "block", title + (f" x{count}" if count > 1 else ""), "block",
                                     _cluster(tree, folder, view, tree.parent[scope]), lines=lines,
                                     params=data["params"], count=count)
        elif data["op"] == "input":
            view.nodes[drawn] = Node(drawn, "input", name, "io", _cluster(tree, folder, view, tree.enclosing(drawn)),
                                     op="input", lines=[_shape(data["shape"])])
        else:
            op = OPS[data["op"]]
            view.nodes[drawn] = Node(drawn, "layer", op.label(data["args"], data["shape"]), op.category,
                                     _cluster(tree, folder, view, tree.enclosing(drawn)), op=data["op"],
                                     args=dict(data["args"]), params=data["params"], shape=data["shape"])


def _widen(node: Node, args: dict) -> None:
    """A folded layer drawn for another instance: schedule arguments that differ become a range line."""
    for key in getattr(OPS[node.op], "schedule_args", ()):
        first = node.args[key].first if isinstance(node.args[key], Range) else node.args[key]
        if repr(args[key]) != repr(first):
            node.args[key] = Range(first, args[key])
            node.lines = [line for line in node.lines if not line.startswith(f"{key}=")] + [f"{key}={node.args[key]}"]


def _cluster(tree: ScopeTree, folder: Folder, view: View, scope: str | None) -> str | None:
    """The cluster id of an expanded scope, created with its ancestors on first use."""
    if scope is None:
        return None
    cid = f"cluster_{scope}"
    if cid not in view.clusters:
        parent = _cluster(tree, folder, view, tree.parent[scope])
        info, local = tree.scopes[scope], scope.rsplit(".", 1)[-1]
        count = folder.count.get(scope, 1)
        label = local if named_after(local, info) else f"{local}: {info['definition']}"
        if count > 1:
            last = folder.members[scope][-1].rsplit(".", 1)[-1]
            ranges = [f"{k}={v}" for k, v in run_args(tree, folder.members[scope]).items() if isinstance(v, Range)]
            label = f"{info['definition']} x{count}" + (f" ({', '.join(ranges)})" if ranges else "") + \
                f"\t{local}..{last}"
        view.clusters[cid] = Cluster(cid, scope, label, parent, tree.kind(scope), count)
    return cid


def named_after(local: str, info: dict) -> bool:
    """Whether a scope's own name already says its definition ("transition1" of `transition`,
    "head" of `head`, "stage2" of a `group`): its label then leaves the definition out."""
    stem = re.sub(r"[_\d]+$", "", local)
    return info["definition"] in (local, stem, info["kind"])


@dataclass(frozen=True)
class Range:
    """An argument that differs along a folded run: its first and last values."""

    first: object
    last: object

    def __str__(self) -> str:
        return f"{compact(self.first)}..{compact(self.last)}"


def compact(value) -> str:
    """An argument as a label shows it: spec syntax, floats to 4 significant digits (0.1*3 reads 0.3)."""
    if isinstance(value, float) and len(format_value(value)) > 7:
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return format_value(value)


def run_args(tree: ScopeTree, run: list[str]) -> dict:
    """The arguments of a run of scopes: a value where all agree, else a Range."""
    instances = [tree.scopes[s]["args"] for s in run]
    merged = {}
    for key, value in instances[0].items():
        values = [a.get(key) for a in instances]
        merged[key] = value if all(repr(v) == repr(value) for v in values) else Range(values[0], values[-1])
    return merged


def scope_title(info: dict, shown: set[str] | None = None, growth: int | None = None) -> tuple[str, list[str]]:
    """A collapsed block's label: its definition name, then its arguments.

    Construct arguments equal to their defaults are left out, and so are block arguments
    outside `shown` (those with one value in every instance say nothing to the reader).
    A dense block reads "dense block x6, k=32" (k: channels each layer adds).
    """
    construct = CONSTRUCTS.get(info["definition"]) if info["kind"] not in ("block", "group") else None
    defaults = {a.name: a.default for a in construct.args} if construct else {}
    args = [f"{k}={v if isinstance(v, Range) else compact(v)}" for k, v in info["args"].items()
            if (k not in defaults or defaults[k] != v) and (shown is None or k in shown)]
    title = info["definition"]
    if info["kind"] == "dense":
        title, args = f"dense block x{info['args']['layers']}", [f"k={growth}"] if growth else []
    elif info["kind"] == "clique":
        title = "clique block"
    return title, wrap(args)


def wrap(items: list[str], width: int = 28) -> list[str]:
    """`items` joined by ", " into lines of at most `width` characters where possible; a long
    item (a list argument such as `row=[192, 96, 128, 96]`) is broken after one of its commas,
    which then ends the line."""
    atoms = [(part, i == 0) for item in items for i, part in enumerate(item.split(", "))]
    lines, line = [], ""
    for atom, starts_item in atoms:
        if line and len(line) + 2 + len(atom) > width:
            lines.append(line if starts_item else line + ",")
            line = ""
        line = f"{line}, {atom}" if line else atom
    return [*lines, line] if line else lines


def _varying(tree: ScopeTree, definition: str) -> set[str] | None:
    """Arguments of a block definition that differ between its instances (None: one instance, show all)."""
    instances = [s["args"] for s in tree.scopes.values() if s["kind"] == "block" and s["definition"] == definition]
    if len(instances) < 2:
        return None
    return {k for k in instances[0] if len({repr(a.get(k)) for a in instances}) > 1}


def _growth(g: Graph, tree: ScopeTree, scope: str) -> int | None:
    """Channels each layer of a dense block adds."""
    first = tree.members.get(f"{scope}.layer1")
    return g.nodes[first[-1]]["shape"][0] if first and g.nodes[first[-1]]["shape"] else None


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) if shape is not None else "?"


# ---------------------------------------------------------------- edges


def _add_edges(g, tree, states, folder, order, view: View) -> None:
    full = all(states.values()) and not folder.runs
    seen = set()
    for v in order:
        for u, _, d in sorted(g.in_edges(v, data=True), key=lambda e: (e[2]["port"], e[0])):
            tail, tail_tags = _drawn(tree, states, folder, u)
            head, head_tags = _drawn(tree, states, folder, v)
            if tail == head or _crosses_instances(tail_tags, head_tags):
                continue
            role = ""
            if view.nodes[head].op == "gate":
                role = ("carry", "H", "T")[d["port"]]
            key = (tail, head, d["kind"], role)
            if not full and key in seen:
                continue
            seen.add(key)
            view.edges.append(Edge(tail, head, d["kind"], role, g.nodes[u]["shape"]))
    for v in order:  # `reuse`: a link from the layer whose weights (or statistics) a node shares
        original = g.nodes[v].get("shares")
        if original and (g.nodes[original]["params"] or OPS[g.nodes[v]["op"]].category == "norm"):
            tail, head = _drawn(tree, states, folder, g.nodes[v]["shares"])[0], _drawn(tree, states, folder, v)[0]
            if tail != head and (tail, head, "shared", "shared") not in seen:
                seen.add((tail, head, "shared", "shared"))
                view.edges.append(Edge(tail, head, "shared", "shared"))


def _crosses_instances(a: tuple, b: tuple) -> bool:
    """An edge between two instances of one folded run (drawn once, so not drawn at all)."""
    runs_a = dict(a)
    return any(run in runs_a and runs_a[run] != index for run, index in b)


# ---------------------------------------------------------------- clique blocks


def _clique_rows(view: View, unroll: bool) -> None:
    """Clique layers side by side; unrolled: a stage-I row and a stage-II row with the feedback between."""
    for cluster in [c for c in view.clusters.values() if c.kind == "clique"]:
        layers = [n for n in view.nodes.values() if n.op == "clique_layer" and n.cluster == cluster.id]
        if not layers:  # a clique written with a body: ordinary layers
            continue
        if not unroll:
            cluster.rows.append([n.id for n in layers])
            continue
        second = {}
        for stage in ("I", "II"):
            sub = f"{cluster.id}/stage {stage}"
            view.clusters[sub] = Cluster(sub, cluster.scope, f"stage {stage}", cluster.id, "clique_stage")
        for n in layers:
            n.cluster, n.stage = f"{cluster.id}/stage I", "I"
            if updated_in_stage2(n.args):
                copy = Node(f"{n.id}/II", "layer", n.label, n.category, f"{cluster.id}/stage II", op=n.op,
                            args=n.args, stage="II", shape=n.shape)
                second[n.id] = copy
        view.nodes.update((c.id, c) for c in second.values())
        for edge in view.edges:
            if edge.kind == "feedback" and edge.head in second:
                edge.head = second[edge.head].id
            elif view.nodes[edge.head].op == "clique_output" and view.nodes[edge.head].args["stage"] == "II":
                edge.tail = second[edge.tail].id if edge.tail in second else edge.tail
        for i, n in enumerate(layers):
            if n.id in second:
                for m in layers[:i]:
                    tail = second.get(m.id, m)
                    view.edges.append(Edge(tail.id, second[n.id].id, "data", shape=tail.shape))
        view.clusters[f"{cluster.id}/stage I"].rows.append([n.id for n in layers])
        view.clusters[f"{cluster.id}/stage II"].rows.append([c.id for c in second.values()])


__all__ = [
    "INNER_KINDS",
    "LEGIBLE",
    "Cluster",
    "Edge",
    "Node",
    "Range",
    "RenderOptions",
    "View",
    "build_view",
    "named_after",
    "run_args",
    "scope_title",
    "wrap",
]
