"""Optional parts of a block class: items that some instances have and others lack.

Instances of one module class whose bodies agree but for items some have and others lack (where one is
missing, the value it reads passes through: torchvision's `downsample`, MobileNetV3's and EfficientNet's
expansion conv, squeeze-and-excitation and residual add) become one block definition. The instances form
families, each around its largest instance (the template): another instance joins when it is the
template less some items, at any depth of its groups. A stand-in copy (never run) fills each gap, the
instance is rewired as the template is and checked to read exactly what it read before, and emit.py
writes each optional item as `name = input` then `if flag { ... }`, `flag` a parameter of the block.
"""

from __future__ import annotations

import copy
import itertools

from archdsl.importer.blocks import Wild, ident, snake
from archdsl.importer.model import Optional, Region, Step
from archdsl.importer.structure import Dense, used
from archdsl.sequences import common_subsequence


def find_optional(root: Region, outputs: list[int], fresh: itertools.count) -> None:
    """Merge the instances of each block class that differ by optional items (fresh: new value ids;
    outputs: the model's outputs, rewired where a block's output changes). A Sequential subclass of one
    structure is a block, else a group (RegNet's stages of any length)."""
    by_class: dict[str, list[Region]] = {}
    for region in _regions(root):
        if region.kind in ("block", "sequential"):
            by_class.setdefault(region.cls, []).append(region)
    for instances in by_class.values():  # first, so that stand-in copies have the final kinds
        if instances[0].kind == "sequential":
            kind = "block" if len({_signature(r) for r in instances}) == 1 else "group"
            for r in instances:
                r.kind = kind
    # inner classes first: an outer block compares the inner blocks it holds by their merged structure
    for instances in sorted(by_class.values(), key=lambda rs: -max(r.path.count(".") for r in rs)):
        if instances[0].kind == "block" and len({_signature(r) for r in instances}) > 1:
            snapshot = _Snapshot(root, outputs)
            if not _merge(instances, root, outputs, fresh):
                snapshot.restore()


def _regions(region: Region):
    for item in region.items:
        if isinstance(item, Region):
            yield item
            yield from _regions(item)


def _merge(instances: list[Region], root: Region, outputs: list[int], fresh) -> bool:
    """Families around the largest instances; each member's gaps filled; the union of gaps made optional."""
    families: list[tuple[Region, list[tuple[Region, set]]]] = []
    for r in sorted(instances, key=lambda r: -sum(1 for _ in _steps(r))):
        for template, members in families:
            if _signature(r) == _signature(template):
                members.append((r, set()))
                break
            snapshot = _Snapshot(root, outputs)
            gaps = _join(template, r, root, outputs, fresh)
            if gaps is not None:
                members.append((r, gaps))
                break
            snapshot.restore()
        else:
            families.append((r, [(r, set())]))
    for template, members in families:
        union = set().union(*(gaps for _, gaps in members))
        for r, gaps in members:
            for path in sorted(union - gaps, key=len, reverse=True):
                _wrap(r, path)
        if len({_signature(r) for r, _ in members}) != 1:
            return False
    return True


def _join(template: Region, r: Region, root: Region, outputs: list[int], fresh) -> set | None:
    """Fill `r`'s gaps against `template` with stand-ins and rewire it as the template; the gaps' paths,
    or None where `r` is not the template less some items or would read anything else than before."""
    before = {id(s): list(s.inputs) for s in _steps(r)}
    ins, old_out = used(r), _out(r)
    gaps: list[tuple[tuple, Optional, object]] = []
    if not _align(template, r, (), gaps, fresh):
        return None
    steps_t, steps_r = list(_steps(template)), list(_steps(r))
    if len(steps_t) != len(steps_r):
        return None
    value = {("v", n): s.id for n, s in enumerate(steps_r)} | {("in", i): v for i, v in enumerate(ins)}
    refs = _refs(template)
    absent = {}
    for _, opt, item in gaps:
        opt.input = value.get(refs.get(_through(item, refs)))
        if opt.input is None:
            return None
        absent[opt.id] = opt.input

    def resolve(v):
        while v in absent:
            v = absent[v]
        return v

    for st, sr in zip(steps_t, steps_r):
        wired = [value.get(refs.get(v)) for v in st.inputs]
        if None in wired or (id(sr) in before and [resolve(v) for v in wired] != before[id(sr)]):
            return None
        sr.inputs = wired
    new_out = _out(r)
    if resolve(new_out) != old_out:
        return None
    if new_out != old_out:
        _rewire_outside(root, outputs, r, old_out, new_out)
    if _signature(r, unwrap=True) != _signature(template, unwrap=True):
        return None
    return {path for path, _, _ in gaps}


def _align(t: Region, r: Region, path: tuple, gaps: list, fresh) -> bool:
    """Pair `r`'s items with `template`'s in order (groups recursively), a stand-in where one is missing."""
    pairs = _pairs(t.items, r.items)
    if pairs is None:
        return False
    items = []
    for k, (ti, ri) in enumerate(zip(t.items, pairs)):
        if ri is None:
            ghost = _stand_in(ti, fresh)
            opt = Optional(ghost, False, -1, _out(ghost), _flag(ti))
            gaps.append((path + (k,), opt, ti))
            items.append(opt)
            continue
        if isinstance(ti, (Step, Region)) and ti.label and ri.label:
            ri.label = ti.label  # numbered names (a Sequential's `0`, `act1`) shift where an item is missing
        if isinstance(ti, Region) and _shape(ti) != _shape(ri) and (
                ti.kind != "group" or not _align(ti, ri, path + (k,), gaps, fresh)):
            return False
        items.append(ri)
    r.items = items
    return True


def _pairs(ts: list, rs: list) -> list | None:
    """For each template item, the item of `rs` it pairs with or None: first the longest common run of
    items of the same shape, then between those, items of one kind in order; None if some of `rs` is
    left over."""
    n, m = len(ts), len(rs)
    anchors = common_subsequence(n, m, lambda i, j: _shape(ts[i]) == _shape(rs[j]))
    out: list = [None] * n
    prev_i, prev_j = 0, 0
    for ai, aj in [*anchors, (n, m)]:
        k = prev_i
        for j in range(prev_j, aj):  # between anchors: same kind, in order
            while k < ai and _kind(ts[k]) != _kind(rs[j]):
                k += 1
            if k == ai:
                return None
            out[k] = rs[j]
            k += 1
        if ai < n:
            out[ai] = rs[aj]
        prev_i, prev_j = ai + 1, aj + 1
    return out


def _index_label(label: str | None) -> bool:
    return label is not None and label.isdigit()


def _name(label: str | None) -> str | None:
    """A name without its number (`act1` and `act2` are both `act`; a Sequential's `0`, `1` are ``)."""
    return label.rstrip("0123456789") if label else label


def _kind(item) -> tuple:
    """What an item is, without numbers, wiring or numbered names."""
    if isinstance(item, Step):  # a grouped (depthwise) conv is not paired with a dense one
        args = tuple((kw, v if isinstance(v, (bool, str)) else "#") for kw, v in item.args if kw != "stride")
        return "step", item.op, args, _name(item.label)
    if isinstance(item, Optional):
        return "optional", _kind(item.item)
    if isinstance(item, Dense):
        return "dense", id(item)  # never paired with another
    return "region", item.cls, item.kind, _name(item.label)


def _shape(item) -> tuple:
    if isinstance(item, Region):
        return _kind(item), tuple(_shape(c) for c in item.items)
    if isinstance(item, Optional):
        return "optional", _shape(item.item)
    return _kind(item)


def _through(item, refs: dict[int, tuple]):
    """The value that passes through where `item` is missing: of what it reads, the one made last (a
    residual add's main path, not the block's input), else the first."""
    def order(v):
        ref = refs.get(v, ("in", 0))
        return (1, ref[1]) if ref[0] == "v" else (0, -ref[1])

    return max(used(item), key=order)


def _wrap(r: Region, path: tuple) -> None:
    """Wrap the item at `path` (present in `r`) in an Optional."""
    region = r
    for k in path[:-1]:
        region = region.items[k]
    found = region.items[path[-1]]
    region.items[path[-1]] = Optional(found, True, _through(found, _refs(r)), _out(found), _flag(found))


def _stand_in(item, fresh):
    """A copy of `item` with fresh value ids, no weights and every number a Wild (wired by _join)."""
    ghost = copy.deepcopy(item)
    for region in [ghost, *_regions(ghost)] if isinstance(ghost, Region) else []:
        region.stand_in = True
    for s in _steps(ghost):
        s.id = next(fresh)
        s.owner = None
        s.args = [(kw, v if isinstance(v, (bool, str)) else Wild(v)) for kw, v in s.args]
    return ghost


def _flag(item) -> str:
    """The flag parameter's name: the item's own name, else what it is (`has_squeeze_excitation`)."""
    if item.label and not _index_label(item.label):
        return ident(item.label, "has")
    if isinstance(item, Step):
        return "residual_add" if item.op == "add" else f"has_{item.op}"
    if item.cls == "Sequential":  # a plain Sequential: what it starts with
        return f"has_{next((s.op for s in _steps(item)), 'group')}"
    return f"has_{snake(item.cls)}"


def _rewire_outside(root: Region, outputs: list[int], r: Region, old: int, new: int) -> None:
    """Whatever outside `r` read its old output reads the new one."""
    inside = {id(x) for x in _walk(r)}
    for x in _walk(root):
        if id(x) in inside:
            continue
        if isinstance(x, Step):
            x.inputs = [new if v == old else v for v in x.inputs]
        elif isinstance(x, (Dense, Optional)) and x.input == old:
            x.input = new
    outputs[:] = [new if v == old else v for v in outputs]


def _walk(item):
    """Every item under `item` (Optionals' and Dense layers' contents included)."""
    children = (item.items if isinstance(item, Region) else [item.item] if isinstance(item, Optional)
                else item.layers if isinstance(item, Dense) else [])
    for c in children:
        yield c
        yield from _walk(c)


class _Snapshot:
    """Everything find_optional may change in the tree, to put back where a merge fails."""

    def __init__(self, root: Region, outputs: list[int]):
        self.outputs, self.saved = outputs, list(outputs)
        self.state = [(x, dict(x.__dict__)) for x in [root, *_walk(root)]]
        self.lists = [(x, list(x.items if isinstance(x, Region) else x.inputs)) for x, _ in self.state
                      if isinstance(x, (Region, Step))]

    def restore(self) -> None:
        for x, state in self.state:
            x.__dict__.update(state)
        for x, items in self.lists:
            if isinstance(x, Region):
                x.items = items
            else:
                x.inputs = items
        self.outputs[:] = self.saved


def _steps(item):
    if isinstance(item, Step):
        yield item
    elif isinstance(item, Optional):
        yield from _steps(item.item)
    elif isinstance(item, Region):
        for c in item.items:
            yield from _steps(c)


def _out(item) -> int:
    if isinstance(item, (Step, Dense, Optional)):
        return item.id
    return _out(item.items[-1])


def _refs(region: Region) -> dict[int, tuple]:
    """Each value a region reads or makes, named by position: ("in", i) or ("v", n) in making order."""
    refs = {v: ("in", i) for i, v in enumerate(used(region))}
    for n, s in enumerate(_steps(region)):
        refs[s.id] = ("v", n)
    return refs


def _signature(region: Region, unwrap: bool = False) -> tuple:
    """The structure of a region without its numbers: ops, argument names, labels, classes and wiring
    (`unwrap`: an optional item as the item itself)."""
    refs = _refs(region)

    def sig(item):
        if isinstance(item, Step):
            args = tuple((kw, v if isinstance(v, (bool, str)) else "#") for kw, v in item.args
                         if kw not in ("stride", "groups"))  # written out for every instance (emit.py's DEFAULTED)
            return "step", item.op, args, item.label, tuple(refs.get(v, "?") for v in item.inputs)
        if isinstance(item, Optional):
            return sig(item.item) if unwrap else ("optional", sig(item.item))
        if isinstance(item, Dense):
            return "dense", len(item.layers), refs.get(item.input, "?")
        return "region", item.cls, item.label, item.kind, tuple(sig(c) for c in item.items)

    return tuple(sig(item) for item in region.items)
