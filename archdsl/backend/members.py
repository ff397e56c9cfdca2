"""Members of containers lined up: what instances of one definition put into their nn.Sequentials.

A container (an `nn.Sequential` branch, or a block that is nothing but a concatenation of branches,
written as a subclass of `Concat`) has no `forward` of its own: it runs its members in the order they
were added. So instances of one definition whose containers hold different members can still share a
class: a member some instances lack is added only where asked (`if with_proj:`), and a member that
is one module in some instances and another in the rest (BN-Inception's pool branch: max pooling in
three blocks, average pooling in the others) is chosen by a flag (`nn.MaxPool2d(...) if use_maxpool
else nn.AvgPool2d(...)`). This module lines up the members by name, container by container; nothing
here writes source text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Signature = tuple  # ("node", constructor) | ("class", class name) | ("container", container class)
Listing = dict[str, list[tuple[str, Signature, object]]]  # container path -> (attr, signature, entry) in order


@dataclass
class Members:
    """The containers whose members differ between instances: their members in order, and each
    member's signatures (one: the same module everywhere; two: alternatives) and holders."""

    order: dict[str, list[str]] = field(default_factory=dict)  # container path ("" the class) -> attrs
    signatures: dict[tuple[str, str], list[Signature]] = field(default_factory=dict)  # first seen first
    holders: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # instances that have the member
    containers: dict[str, set[str]] = field(default_factory=dict)  # path -> instances that have the container
    reference: dict[tuple[str, str, Signature], object] = field(default_factory=dict)  # -> an instance's entry
    takers: dict[tuple[str, str, Signature], set[str]] = field(default_factory=dict)  # -> the instances with it

    def optional(self, path: str, attr: str) -> bool:
        return self.holders[(path, attr)] != self.containers[path]


def line_up(listings: dict[str, Listing]) -> Members | None:
    """Line up the instances' containers (instance -> its listing); None where their members cannot be
    one class's: two members in a different order, or one name for different kinds of member (only a
    layer that every instance has may be one of two modules)."""
    members = Members()
    paths = list(dict.fromkeys(path for listing in listings.values() for path in listing))
    for path in paths:
        lists = {name: listing[path] for name, listing in listings.items() if path in listing}
        merged = _merged([[attr for attr, _, _ in items] for items in lists.values()])
        if merged is None:
            return None
        members.containers[path] = set(lists)
        varies = False
        for name, items in lists.items():
            for attr, signature, entry in items:
                key = (path, attr)
                seen = members.signatures.setdefault(key, [])
                if signature not in seen:
                    seen.append(signature)
                    members.reference[(path, attr, signature)] = entry
                members.holders.setdefault(key, set()).add(name)
                members.takers.setdefault((path, attr, signature), set()).add(name)
        for attr in merged:
            key = (path, attr)
            alternatives = members.signatures[key]
            if len(alternatives) > 1 and (len(alternatives) > 2 or members.optional(path, attr)
                                          or any(s[0] != "node" for s in alternatives)):
                return None
            varies |= len(alternatives) > 1 or members.optional(path, attr)
        if varies:
            members.order[path] = merged
    return members


def _merged(lists: list[list[str]]) -> list[str] | None:
    """One order holding every list's names, each list in its own order; None if two disagree."""
    merged: list[str] = []
    for names in sorted(lists, key=len, reverse=True):
        at = 0
        for name in names:
            if name in merged:
                if merged.index(name) < at:
                    return None
                at = merged.index(name) + 1
            else:
                merged.insert(at, name)
                at += 1
    return merged
