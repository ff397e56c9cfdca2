"""Optional pieces: layers that some instances of a block definition have and others do without.

The first block of a RegNet stage projects its shortcut (`proj` -> `proj_bn`) where the others add their
input unchanged; an inverted residual expands (`expand_conv` -> `expand_bn` -> ReLU6) except where the
expansion ratio is 1, and adds its input only where the shape is kept. Such layers are pieces of one
block: where a piece is missing, the value it would make is the value it would read (a layer's input, a
residual add's other addend), handed on unchanged. This module lines up the instances of one definition
(their layers and child scopes, in execution order) into one sequence of items, finds the items some
instances lack, checks that each missing layer's readers read what it would have handed on, and groups
the optional layers into pieces (consecutive items present in the same instances), so that the
generator writes one class that creates a piece only where asked (torchvision's `self.proj = ... if
... else None`, `use_res_connect`). Layers are matched by name where they own a module (the name is the
state_dict key) and by op and place otherwise (an unnamed ReLU is `relu61` in one instance and `relu62`
in another); a child scope without state (an activation block) is matched by place too. A child scope
can be part of a piece (MobileNetV3's expansion ends in its activation block). Pieces that stand one
after another, that no instance has two of and that together cover every instance are the branches of
one spec `if` (`concat` at stride 2, `add` at stride 1): alternatives, of which each instance takes one,
and whose readers read what the branch taken makes. Nothing here writes source text.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from archdsl.backend.optional import RETURNED
from archdsl.backend.scopes import Plan, Scope
from archdsl.sequences import common_subsequence


@dataclass
class Lineup:
    """Instances of one definition lined up: the items in order and each instance's own."""

    items: list[str]  # item ids in execution order (an id is the item's local name in its first instance)
    own: dict[str, dict[str, str]]  # scope name -> item id -> its node or child (full names)
    reference: dict[str, tuple[Scope, str]]  # item id -> an instance that has it, and its node there
    children: set[str] = field(default_factory=set)  # items that are child scopes
    piece: dict[str, int] = field(default_factory=dict)  # optional layer item -> its piece
    through: dict[str, int] = field(default_factory=dict)  # optional layer item -> the port handed on
    having: dict[int, frozenset[str]] = field(default_factory=dict)  # piece -> the instances that have it
    group: dict[int, tuple[int, ...]] = field(default_factory=dict)  # piece -> its alternatives (itself included)


@dataclass
class Absent:
    """A layer of the union that one instance lacks: what stands for its inputs and who reads it instead."""

    item: str
    node: str  # the layer in the reference instance
    owner: Scope  # the reference instance
    inputs: list[str]  # this instance's values (or other absent layers' keys) for its inputs
    readers: set[tuple[str, int]]  # (node, child or RETURNED, port) of this instance reading what it hands on
    position: float
    port: int = 0  # the input it hands on
    child: Scope | None = None  # a missing child scope (then `node` is its output in the reference instance)

    @property
    def key(self) -> str:
        """The name its value goes by among the instance's values (never a layer's name)."""
        return key(self.node)


def key(node: str) -> str:
    return "?" + node


def align(p: Plan, instances: list[Scope]) -> Lineup | None:
    """The union of the instances' layers and children; None where they cannot be lined up."""
    if any(s.segments or s.features or any(v in p.listed for v in s.inputs + s.outputs) for s in instances):
        return None
    lists = {s.name: _items(p, s) for s in instances}
    shapes: dict[tuple, list[Scope]] = {}  # instances alike item for item are lined up once
    for scope in instances:
        shapes.setdefault(tuple(sig for sig, _ in lists[scope.name]), []).append(scope)
    if len(shapes) == 1:
        return None  # nothing some have and others lack
    union: list[tuple[tuple, str, tuple]] = []  # (signature, item, role)
    own: dict[str, dict[str, str]] = {}
    reference: dict[str, tuple[Scope, str]] = {}
    children: set[str] = set()
    for alike in sorted(shapes.values(), key=lambda group: -len(lists[group[0].name])):
        scope, mine = alike[0], lists[alike[0].name]
        roles = [_role(p, scope, name) for _, name in mine]
        pairs = _common(union, mine, scope, roles)
        merged: list[tuple[tuple, str, tuple]] = []
        at: dict[str, int] = {}  # item -> its index among this shape's items
        i = j = 0
        for ui, mj in [*pairs, (len(union), len(mine))]:
            merged += union[i:ui]
            for index in range(j, mj):
                sig, name = mine[index]
                ident = scope.local(name)
                while ident in reference:
                    if sig[0] == "child" and sig[1] is not None or sig[0] == "node" and sig[2] is not None:
                        return None  # two different modules under one attribute name
                    ident += "_"
                merged.append((sig, ident, roles[index]))
                at[ident] = index
                reference[ident] = (scope, name)
                if sig[0] == "child":
                    children.add(ident)
            if ui < len(union):
                merged.append(union[ui])
                at[union[ui][1]] = mj
            i, j = ui + 1, mj + 1
        union = merged
        for member in alike:
            own[member.name] = {ident: lists[member.name][index][1] for ident, index in at.items()}
    result = Lineup([ident for _, ident, _ in union], own, reference, children)
    renamed = any(c.attr != ident for member in instances for ident, c in _children_of(member, own).items())
    optional = [t for t in result.items if (t not in children or _single(p, reference[t][0], reference[t][1]))
                and not all(t in own[s.name] for s in instances)]
    previous, number = None, -1
    for t in result.items:
        pattern = tuple(t in own[s.name] for s in instances)
        if t in optional and (previous is None or previous[1] != pattern or previous[0] not in optional):
            number += 1
        if t in optional:
            result.piece[t] = number
            result.having[number] = frozenset(s.name for s, present in zip(instances, pattern) if present)
        previous = (t, pattern)
    _alternatives(result, frozenset(s.name for s in instances))
    if not renamed:  # a child alone that some instances lack is optional.py's (called where it exists)
        alone = {piece for piece in result.having if piece not in result.group
                 and all(t in children for t, k in result.piece.items() if k == piece)}
        result.piece = {t: k for t, k in result.piece.items() if k not in alone}
    return result


def _children_of(scope: Scope, own: dict[str, dict[str, str]]) -> dict[str, Scope]:
    """Item -> the instance's child scope lined up as that item."""
    children = {c.name: c for c in scope.children}
    return {t: children[name] for t, name in own[scope.name].items() if name in children}


def _single(p: Plan, owner: Scope, name: str) -> bool:
    """A child with one input and one output, each a tensor: one that can be missing from a block."""
    child = next(c for c in owner.children if c.name == name)
    return (len(child.inputs) == 1 and len(child.outputs) == 1 and not child.features and not child.segments
            and child.inputs[0] not in p.listed and child.outputs[0] not in p.listed)


def _stateless(p: Plan, scope: Scope) -> bool:
    """A scope without parameters or buffers (an activation block): its attribute name is free."""
    return all(p.constructors[n] is None and not p.g.nodes[n].get("shares") for n in scope.subtree)


def _alternatives(u: Lineup, everyone: frozenset[str]) -> None:
    """Group pieces that stand one after another and that no instance has two of, together covering
    every instance: the branches of one spec `if` (`concat` where the stride is 2, `add` elsewhere),
    one of which each instance takes. Pieces outside a group are optional (missing: handed on)."""
    index = {t: k for k, t in enumerate(u.items)}
    span: dict[int, list[int]] = {}
    for t, piece in u.piece.items():
        span.setdefault(piece, []).append(index[t])
    order = sorted(span, key=lambda piece: span[piece][0])
    k = 0
    while k < len(order):
        group, covered = [order[k]], u.having[order[k]]
        for piece in order[k + 1:]:
            if span[piece][0] != span[group[-1]][-1] + 1 or u.having[piece] & covered:
                break
            group.append(piece)
            covered |= u.having[piece]
            if covered == everyone:
                break
        if covered == everyone and len(group) > 1:
            u.group.update(dict.fromkeys(group, tuple(group)))
            k += len(group)
        else:
            k += 1


def _items(p: Plan, scope: Scope) -> list[tuple[tuple, str]]:
    """(signature, name) of the scope's layers and children in execution order. A layer with a module
    is matched by name (its state_dict key), one without by op and place (_common)."""
    entries = [(p.position[n], ("node", p.g.nodes[n]["op"], scope.local(n) if p.constructors[n] else None), n)
               for n in scope.nodes if p.g.nodes[n]["op"] != "input"]
    entries += [(min(p.position[n] for n in c.subtree),
                 ("child", None if _stateless(p, c) else c.attr, c.kind, c.definition), c.name)
                for c in scope.children]
    return [(sig, name) for _, sig, name in sorted(entries, key=lambda e: e[0])]


def _role(p: Plan, scope: Scope, name: str) -> tuple:
    """Which of the scope's inputs an item reads and whether the scope returns it (() for neither)."""
    child = next((c for c in scope.children if c.name == name), None)
    reads = child.inputs if child is not None else p.inputs[name]
    outputs = child.outputs if child is not None else [name]
    role = (tuple(k for k, v in enumerate(scope.inputs) if v in reads), any(v in scope.outputs for v in outputs))
    return role if role != ((), False) else ()


def _common(union: list[tuple[tuple, str, tuple]], mine: list[tuple[tuple, str]], scope: Scope,
            roles: list[tuple]) -> list[tuple[int, int]]:
    """Matched (union index, own index) pairs: the longest common subsequence of signatures; among
    equally long ones, the one matching most items of the same name or role (what they read of the
    block's inputs, whether the block returns them: a block's last ReLU is matched with the last)."""

    def alike(i: int, j: int) -> int:
        return int(union[i][1] == scope.local(mine[j][1])) + int(bool(roles[j]) and union[i][2] == roles[j])

    return common_subsequence(len(union), len(mine), lambda i, j: union[i][0] == mine[j][0], alike)


def absent_layers(p: Plan, u: Lineup, scope: Scope) -> list[Absent] | None:
    """The union's optional layers this instance lacks, each with what stands for its inputs and the
    readers that read what it hands on; None where a reader reads something else (not one block)."""
    mine = u.own[scope.name]
    absent: dict[str, Absent] = {}
    position = -1.0
    step = 0
    for t in u.items:
        if t in mine:
            name = mine[t]
            position = float(p.position[name]) if t not in u.children else \
                float(min(p.position[n] for n in next(c for c in scope.children if c.name == name).subtree))
            step = 0
            continue
        if t in u.children and t not in u.piece:
            continue  # an optional child: optional.py
        owner, node = u.reference[t]
        child = next((c for c in owner.children if c.name == node), None)
        if child is not None:
            node = child.outputs[0]
        step += 1
        owned = {v: k for k, v in u.own[owner.name].items()}
        inputs = []
        for value in child.inputs if child is not None else p.inputs[node]:
            here = _counterpart(p, u, owner, owned, scope, value, absent)
            if here is None:
                return None
            inputs.append(here)
        readers = _readers(p, u, owner, owned, scope, node)
        if readers is None:
            return None
        absent[key(node)] = Absent(t, node, owner, inputs, readers, position + step / 1000, child=child)
    return list(absent.values())


CHOICES = 256  # at most this many ways to read the optional layers with several inputs are tried


def hand_on(p: Plan, u: Lineup, instances: list[Scope], absent: dict[str, list[Absent]]) -> bool:
    """Choose, for each optional layer, the input it hands on where missing (a residual add: the
    other addend), the same in every instance, so that in each instance every reader of a missing
    layer reads what it hands on. False where no choice does."""
    arity = {t: len(_inputs(p, *u.reference[t])) for t in u.piece}
    choices = [t for t in u.piece if arity[t] > 1]
    for combination in itertools.islice(itertools.product(*(range(arity[t]) for t in choices)), CHOICES):
        u.through = {t: 0 for t in u.piece} | dict(zip(choices, combination))
        if all(_reads_through(p, u, scope, absent[scope.name]) for scope in instances):
            return True
    return False


def _inputs(p: Plan, owner: Scope, name: str) -> list[str]:
    """The values a layer or child scope of `owner` reads."""
    child = next((c for c in owner.children if c.name == name), None)
    return child.inputs if child is not None else p.inputs[name]


def source(entry: Absent, absent: dict[str, Absent]) -> str:
    """The value of this instance that the absent layer hands on (through other absent layers)."""
    value = entry.inputs[entry.port]
    while value in absent:
        value = absent[value].inputs[absent[value].port]
    return value


def _reads_through(p: Plan, u: Lineup, scope: Scope, entries: list[Absent]) -> bool:
    """Every reader of a missing layer in `scope` reads what it hands on (with the ports of u.through),
    or, for a branch of a spec `if`, what the branch this instance takes makes in its place."""
    absent = {entry.key: entry for entry in entries}
    for entry in entries:
        entry.port = u.through[entry.item]
    item_of = {node: t for t, node in u.own[scope.name].items()}
    item_of |= {value: t for t, child in _children_of(scope, u.own).items() for value in child.outputs}
    for entry in entries:
        alternatives = u.group.get(u.piece[entry.item], ())
        for reader, k in entry.readers:
            value = reads_of(p, scope, reader, k)
            if value != source(entry, absent) and u.piece.get(item_of.get(value)) not in alternatives:
                return False
    return True


def reads_of(p: Plan, scope: Scope, reader: str, port: int) -> str | None:
    """The value `reader` (a layer, a child scope or RETURNED) of `scope` reads at `port`."""
    if reader == RETURNED:
        return scope.outputs[port] if port < len(scope.outputs) else None
    if reader in p.inputs:
        reads = p.inputs[reader]
    else:
        reads = next((c.inputs for c in scope.children if c.name == reader), [])
    return reads[port] if port < len(reads) else None


def _counterpart(p: Plan, u: Lineup, owner: Scope, owned: dict[str, str], scope: Scope, value: str,
                 absent: dict[str, Absent]) -> str | None:
    """What stands in `scope` for `value` of the reference instance `owner`: a value of `scope`, or the
    reference node of an absent layer."""
    if value in owner.inputs:
        k = owner.inputs.index(value)
        return scope.inputs[k] if k < len(scope.inputs) else None
    if key(value) in absent:
        return key(value)
    missing = {entry.item: k for k, entry in absent.items()}  # lined up from another reference instance
    if value in owned:
        t = owned[value]
        return u.own[scope.name].get(t, missing.get(t))
    child = next((c for c in owner.children if value in c.subtree), None)
    if child is None or child.name not in owned or value not in child.outputs:
        return None
    if owned[child.name] in missing and len(child.outputs) == 1:
        return missing[owned[child.name]]
    here = u.own[scope.name].get(owned[child.name])
    mine = next((c for c in scope.children if c.name == here), None)
    index = child.outputs.index(value)
    return mine.outputs[index] if mine is not None and index < len(mine.outputs) else None


def _readers(p: Plan, u: Lineup, owner: Scope, owned: dict[str, str], scope: Scope,
             node: str) -> set[tuple[str, int]] | None:
    """This instance's (reader, port) pairs standing for the reference's readers of `node`; readers this
    instance lacks too are left out (they are absent layers themselves)."""
    mine = u.own[scope.name]
    readers: set[tuple[str, int]] = set()
    for port, value in enumerate(owner.outputs):
        if value == node:
            readers.add((RETURNED, port))
    for reader in set(p.g.successors(node)):
        if reader in owner.nodes:
            t = owned.get(reader)
            if t is None:
                return None
            if t in mine:
                readers |= {(mine[t], k) for k, v in enumerate(p.inputs[reader]) if v == node}
            continue
        child = next((c for c in owner.children if reader in c.subtree), None)
        if child is None:
            continue  # read outside the instance: an output, counted above
        t = owned.get(child.name)
        if t is None:
            return None
        if t in mine:
            readers |= {(mine[t], k) for k, v in enumerate(child.inputs) if v == node}
        elif t not in u.children:
            return None
    return readers
