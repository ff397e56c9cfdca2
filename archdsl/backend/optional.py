"""Optional children: sub-scopes that some instances of a definition have and others do without.

ResNet's blocks of one definition differ by a projection on the shortcut path: the first block of a
stage has a `shortcut` scope (1x1 conv + BN), the others hand their input on unchanged. A child scope
with one input and one output whose absence is the identity (where an instance lacks it, the values it
would feed read its input instead) is optional: the generator writes one class for every instance,
creating the child only where the instance has one (`self.shortcut = Shortcut(...) if with_shortcut
else None`, torchvision's `downsample` idiom) and calling it only when present. This module finds such
children and, for an instance without one, where it would stand: the value it would read, the readers
of its result and its place among the instance's layers. Nothing here writes source text.
"""

from __future__ import annotations

from dataclasses import dataclass

from archdsl.backend.scopes import Plan, Scope

RETURNED = ""  # a reader name: the scope's own outputs (port: the output's index)


@dataclass
class Stand:
    """Where an optional child absent from an instance would stand in it."""

    child: Scope  # the child in an instance that has it
    source: str  # the value it would read, handed on unchanged
    readers: set[tuple[str, int]]  # (node, child scope or RETURNED, port) reading its result instead of `source`
    position: float  # its place among the instance's layers and children (the plan's positions)


def optional_children(p: Plan, instances: list[Scope]) -> dict[str, Scope]:
    """attr -> a child that some of `instances` have and others lack, one tensor in and one out."""
    found: dict[str, Scope] = {}
    for scope in instances:
        for child in scope.children:
            if child.attr not in found and _single(p, child):
                found[child.attr] = child
    return {attr: child for attr, child in found.items()
            if not all(any(c.attr == attr for c in s.children) for s in instances)}


def _single(p: Plan, child: Scope) -> bool:
    return (len(child.inputs) == 1 and len(child.outputs) == 1 and not child.features and not child.segments
            and child.inputs[0] not in p.listed and child.outputs[0] not in p.listed)


def stand(p: Plan, scope: Scope, reference: Scope) -> Stand | None:
    """Where `reference`, a child of another instance of `scope`'s definition, would stand in `scope`
    (None where its readers or its input have no counterpart there)."""
    owner = reference.parent
    source = _counterpart(p, owner, scope, reference.inputs[0])
    if source is None or source in p.listed:
        return None
    result = reference.outputs[0]
    readers: set[tuple[str, int]] = set()
    for port, value in enumerate(owner.outputs):
        if value == result:
            readers.add((RETURNED, port))
    for node in p.g.successors(result):
        holder = p.scope_of[node]
        if holder is owner:
            readers |= {(node, k) for k, value in enumerate(p.inputs[node]) if value == result}
            continue
        child = next((c for c in owner.children if node in c.subtree), None)
        if child is None:
            continue  # read outside the owner: an output, counted above
        readers |= {(child.name, k) for k, value in enumerate(child.inputs) if value == result}
    translated = set()
    for name, port in readers:
        if name == RETURNED:
            if port >= len(scope.outputs) or scope.outputs[port] != source:
                return None
            translated.add((RETURNED, port))
            continue
        here = f"{scope.name}.{owner.local(name)}"
        reads = p.inputs.get(here) if here in p.position else next(
            (c.inputs for c in scope.children if c.name == here), None)
        if reads is None or port >= len(reads) or reads[port] != source:
            return None
        translated.add((here, port))
    return Stand(reference, source, translated, _position(p, owner, scope, reference))


def _counterpart(p: Plan, owner: Scope, scope: Scope, value: str) -> str | None:
    """The value of `scope` standing where `value` stands in `owner` (another instance)."""
    if value in owner.subtree:
        here = f"{scope.name}.{owner.local(value)}"
        return here if here in p.position else None
    if value in owner.inputs and owner.inputs.index(value) < len(scope.inputs):
        return scope.inputs[owner.inputs.index(value)]
    return None


def _position(p: Plan, owner: Scope, scope: Scope, reference: Scope) -> float:
    """Just after the last item before `reference` in `owner` that `scope` has too."""
    items = sorted([(p.position[n], n) for n in owner.nodes]
                   + [(min(p.position[n] for n in c.subtree), c.name) for c in owner.children])
    index = next(i for i, (_, name) in enumerate(items) if name == reference.name)
    children = {c.name: c for c in scope.children}
    for _, name in reversed(items[:index]):
        here = f"{scope.name}.{owner.local(name)}"
        if here in p.position and p.scope_of[here] is scope:
            return p.position[here] + 0.5
        if here in children:
            return min(p.position[n] for n in children[here].subtree) + 0.5
    return -0.5
