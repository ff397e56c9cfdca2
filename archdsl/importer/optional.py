"""Optional parts of a block class: torchvision's `downsample`, present in some instances only.

Instances of one module class whose items are the same but for one item that some have and others
lack (the value it reads passes through instead: a residual block's projection) become one block
definition: the item is wrapped in an `Optional` in every instance, a stand-in copy (never run) where it
is missing, and emit.py writes it as `if flag { ... }` with `flag` a parameter of the block.
"""

from __future__ import annotations

import copy
import itertools

from archdsl.importer.blocks import Wild, ident
from archdsl.importer.model import Optional, Region, Step
from archdsl.importer.structure import Dense, produced, used


def find_optional(root: Region, fresh: itertools.count) -> None:
    """Wrap the item that instances of one class have or lack in an `Optional` (fresh: new value ids).
    A Sequential subclass of one structure is a block, else a group (RegNet's stages of any length)."""
    by_class: dict[str, list[Region]] = {}
    for region in _regions(root):
        if region.kind in ("block", "sequential"):
            by_class.setdefault(region.cls, []).append(region)
    for instances in by_class.values():  # first, so that stand-in copies have the final kinds
        if instances[0].kind == "sequential":
            kind = "block" if len({_signature(r) for r in instances}) == 1 else "group"
            for r in instances:
                r.kind = kind
    for instances in by_class.values():
        if instances[0].kind != "block":
            continue
        shapes = {_signature(r) for r in instances}
        if len(shapes) == 2:
            _fold(instances, fresh)


def _regions(region: Region):
    for item in region.items:
        if isinstance(item, Region):
            yield item
            yield from _regions(item)


def _fold(instances: list[Region], fresh) -> None:
    template = max(instances, key=lambda r: len(r.items))
    full = _signature(template)
    lacking = [r for r in instances if _signature(r) != full]
    for k, item in enumerate(template.items):
        if isinstance(item, Dense) or len(used(item)) != 1:
            continue
        trials = [_fit(template, k, r, fresh) for r in lacking]
        if all(t is not None for t in trials):
            break
        for t in trials:
            if t is not None:
                t()  # undo
    else:
        return
    flag = _flag(item)
    for r in instances:
        if _signature(r) == full or r is template:
            found = r.items[k]
            r.items[k] = Optional(found, True, used(found)[0], _out(found), flag)


def _fit(template: Region, k: int, region: Region, fresh):
    """Insert a stand-in for template.items[k] into `region`; keep it (return an undo) if both then agree."""
    item = template.items[k]
    ref = _refs(template)[used(item)[0]]
    refs = {r: v for v, r in _refs(region).items()}
    source = refs.get(ref)
    if source is None:
        return None
    ghost, out = _stand_in(item, source, fresh)
    rewrites = []
    later_t = [s for it in template.items[k + 1:] for s in _steps(it)]
    later_r = [s for it in region.items[k:] for s in _steps(it)]
    if len(later_t) != len(later_r):
        return None
    for st, sr in zip(later_t, later_r):
        for j, (a, b) in enumerate(zip(st.inputs, sr.inputs)):
            if a == _out(item) and b == source:
                rewrites.append((sr, j))
    region.items.insert(k, Optional(ghost, False, source, out, _flag(item)))
    for s, j in rewrites:
        s.inputs[j] = out

    def undo():
        region.items.pop(k)
        for s, j in rewrites:
            s.inputs[j] = source

    probe = copy.copy(template)
    probe.items = list(template.items)
    probe.items[k] = Optional(item, True, used(item)[0], _out(item), _flag(item))
    if _signature(probe) != _signature(region):
        undo()
        return None
    return undo


def _stand_in(item, source: int, fresh) -> tuple:
    """A copy of `item` reading `source`, with fresh value ids, no weights and every number a Wild."""
    ghost = copy.deepcopy(item)
    for region in [ghost, *_regions(ghost)] if isinstance(ghost, Region) else []:
        region.stand_in = True
    ids: dict[int, int] = {}
    for s in _steps(ghost):
        ids[s.id] = next(fresh)
    inside = produced(item)
    for s in _steps(ghost):
        s.inputs = [ids[v] if v in inside else source for v in s.inputs]
        s.id = ids[s.id]
        s.owner = None
        s.args = [(kw, v if isinstance(v, (bool, str)) else Wild()) for kw, v in s.args]
    return ghost, _out(ghost)


def _flag(item) -> str:
    return ident(item.label or "optional", "has")


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
    for n, s in enumerate(s for it in region.items for s in _steps(it)):
        refs[s.id] = ("v", n)
    return refs


def _signature(region: Region) -> tuple:
    """The structure of a region without its numbers: ops, argument names, labels, classes and wiring."""
    refs = _refs(region)

    def sig(item):
        if isinstance(item, Step):
            args = tuple((kw, v if isinstance(v, (bool, str)) else "#") for kw, v in item.args
                         if kw not in ("stride", "groups"))  # written out for every instance (emit.py's DEFAULTED)
            return "step", item.op, args, item.label, tuple(refs.get(v, "?") for v in item.inputs)
        if isinstance(item, Optional):
            return "optional", sig(item.item)
        if isinstance(item, Dense):
            return "dense", len(item.layers), refs.get(item.input, "?")
        return "region", item.cls, item.label, item.kind, tuple(sig(c) for c in item.items)

    return tuple(sig(item) for item in region.items)
