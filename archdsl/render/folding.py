"""Which blocks a diagram draws open, shut or folded: the scope tree of an IR and the user's choices.

A scope is a naming level of the IR (a block instance, a `group`, a construct such as
`dense` or `clique`). This module resolves, for one level of detail, whether each scope
is *expanded* (drawn as a cluster of its layers) or *collapsed* (drawn as one node), and
finds *runs*: chains of sibling scopes with the same definition and the same drawing
(layers, shapes, parameter counts, wiring), each feeding only the next, which a folded
diagram draws once, marked "x N" (with the range of any argument that differs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from archdsl.ir import Graph
from archdsl.ops import OPS

# Scope kinds that name parts of a construct rather than a unit a reader thinks of as a block.
INNER_KINDS = ("branch", "shortcut", "dense_layer", "group_member")
NAMING = "group"


@dataclass
class ScopeTree:
    """Scopes of one IR with their parents, depths, members (all nodes inside) and order."""

    scopes: dict[str, dict]
    parent: dict[str, str | None] = field(default_factory=dict)
    children: dict[str | None, list[str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, g: Graph) -> ScopeTree:
        tree = cls(dict(g.graph.get("scopes", {})))
        for name in sorted(tree.scopes):
            tree.parent[name] = tree.enclosing(name)
            tree.members[name] = []
        for name in sorted(g.nodes, key=lambda n: g.nodes[n]["order"]):
            for scope in tree.ancestors(name):
                tree.members[scope].append(name)
        for name in tree.scopes:
            nodes = tree.members[name]
            tree.first[name] = g.nodes[nodes[0]]["order"] if nodes else 1 << 60
        for name in sorted(tree.scopes, key=lambda s: (tree.first[s], s)):
            tree.children.setdefault(tree.parent[name], []).append(name)
        return tree

    def enclosing(self, name: str) -> str | None:
        """The innermost scope strictly containing `name` (a node or a scope), or None."""
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.scopes:
                return prefix
        return None

    def ancestors(self, name: str) -> list[str]:
        """Scopes containing `name`, outermost first."""
        parts = name.split(".")
        return [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in self.scopes]

    def depth(self, scope: str) -> int:
        return len(self.ancestors(scope))

    def kind(self, scope: str) -> str:
        """The scope's kind; members of a `groups` construct read 'group_member', not 'group'."""
        kind = self.scopes[scope]["kind"]
        parent = self.parent[scope]
        if kind == NAMING and parent is not None and self.scopes[parent]["kind"] == "groups":
            return "group_member"
        return kind


def matches(tree: ScopeTree, scope: str, patterns: list[str]) -> bool:
    """A scope matches a pattern equal to (or a glob of) its full name, or equal to its definition."""
    definition = tree.scopes[scope]["definition"]
    return any(p == scope or p == definition or fnmatchcase(scope, p) for p in patterns)


def unknown_patterns(tree: ScopeTree, patterns: list[str]) -> list[str]:
    """The patterns that name no scope (a typo the user should hear about)."""
    return [p for p in patterns if not any(matches(tree, s, [p]) for s in tree.scopes)]


def scope_states(tree: ScopeTree, detail: str | int, expand: list[str], collapse: list[str]) -> dict[str, bool]:
    """Scope -> True when drawn expanded. `detail`: 'layers', 'blocks' or a nesting depth.

    'layers' expands everything; a depth d collapses scopes nested d or more levels deep;
    'blocks' collapses the outermost scope of each chain that is not a naming `group`.
    `--expand X` opens X, its ancestors and everything inside it; `--collapse X` shuts X
    (and wins over an expand of the same scope).
    """
    inside = {s for s in tree.scopes if any(matches(tree, a, expand) for a in [*tree.ancestors(s), s])}
    opened = inside | {a for s in inside for a in tree.ancestors(s)}
    states: dict[str, bool] = {}
    for scope in tree.scopes:
        if matches(tree, scope, collapse):
            states[scope] = False
        elif scope in opened or detail == "layers":
            states[scope] = True
        elif detail == "blocks":
            kinds = [tree.scopes[s]["kind"] for s in [*tree.ancestors(scope), scope]]
            states[scope] = kinds[-1] == NAMING or any(k != NAMING for k in kinds[:-1])
        else:
            states[scope] = tree.depth(scope) < int(detail)
    return states


# ---------------------------------------------------------------- folding repeated blocks


def _signature(g: Graph, tree: ScopeTree, scope: str, expanded: bool) -> tuple:
    """What must agree for two sibling scopes to be drawn as one: the definition, the layers
    (ops, shapes, parameter counts), the internal wiring and, when drawn open, every label.

    Arguments themselves may differ where the drawing does not show them (a drop-path rate
    growing block by block): the folded node or cluster then shows their range ("p=0.1..0.3").
    """
    cut = len(scope) + 1
    inside = set(tree.members[scope])

    def layer(n: str) -> tuple:
        d = g.nodes[n]
        op = OPS.get(d["op"])
        drawn = None
        if expanded and op is not None:
            # an op's schedule arguments (a drop-path rate) may differ: the view shows their range
            schedule = getattr(op, "schedule_args", ())
            drawn = repr(sorted((k, v) for k, v in d["args"].items() if k not in schedule)) if schedule \
                else op.label(d["args"], d["shape"])
        return n[cut:], d["op"], drawn, d["shape"], d["params"]

    nodes = tuple(layer(n) for n in tree.members[scope])
    edges = tuple(sorted((u[cut:], v[cut:], d["port"], d["kind"]) for n in tree.members[scope]
                         for u, v, d in g.in_edges(n, data=True) if u in inside))
    info = tree.scopes[scope]
    inner = tuple(sorted((s[cut:], tree.scopes[s]["definition"], repr(sorted(tree.scopes[s]["args"].items()))
                          if expanded else None) for s in tree.scopes if s.startswith(scope + ".")))
    return info["kind"], info["definition"], expanded, nodes, edges, inner


def _feeds_only(g: Graph, tree: ScopeTree, a: str, b: str) -> bool:
    """Whether a's outside edges all go into b and b's outside inputs all come from a."""
    in_a, in_b = set(tree.members[a]), set(tree.members[b])
    out_ok = all(v in in_b for n in tree.members[a] for _, v in g.out_edges(n) if v not in in_a)
    in_ok = all(u in in_a for n in tree.members[b] for u, _ in g.in_edges(n) if u not in in_b)
    return out_ok and in_ok and bool(in_a) and bool(in_b)


def find_runs(g: Graph, tree: ScopeTree, states: dict[str, bool]) -> list[list[str]]:
    """Maximal chains (2 or more) of identical sibling scopes, each feeding only the next, in order."""
    runs = []
    for siblings in tree.children.values():
        run: list[str] = []
        signature = None
        for scope in siblings:
            if tree.kind(scope) in INNER_KINDS:
                run, signature = [], None
                continue
            mine = _signature(g, tree, scope, states[scope])
            if run and mine == signature and _feeds_only(g, tree, run[-1], scope):
                run.append(scope)
                continue
            if len(run) > 1:
                runs.append(run)
            run, signature = [scope], mine
        if len(run) > 1:
            runs.append(run)
    return sorted(runs, key=lambda r: tree.first[r[0]])


class Folder:
    """Maps names inside the 2nd..Nth instance of a run onto the first instance."""

    def __init__(self, runs: list[list[str]]):
        self.runs = runs
        self.target: dict[str, tuple[str, int]] = {}  # instance scope -> (first instance, index)
        for run in runs:
            for i, scope in enumerate(run):
                self.target[scope] = (run[0], i)
        self.count = {run[0]: len(run) for run in runs}
        self.members = {run[0]: run for run in runs}

    def fold(self, name: str) -> tuple[str, tuple[tuple[str, int], ...]]:
        """The name drawn for `name`, and the (run, instance index) pairs it passed through."""
        if not self.target:
            return name, ()
        tags = []
        parts = name.split(".")
        i = 1
        while i < len(parts):
            prefix = ".".join(parts[:i])
            if prefix in self.target:
                first, index = self.target[prefix]
                tags.append((first, index))
                parts = first.split(".") + parts[i:]
                i = len(first.split("."))
            i += 1
        return ".".join(parts), tuple(tags)
