"""Structure passes on the importer's tree: concat hoisting, DenseNet connectivity, gap and shuffle idioms."""

from __future__ import annotations

from dataclasses import dataclass

from archdsl.importer.model import Optional, Region, Step


@dataclass
class Dense:
    """`dense(n) { layer }`: layer i sees concat(input, outputs 1..i-1); the result is concat(input, all)."""

    layers: list[Region]
    input: int
    id: int  # the final concatenation's value
    label: str | None = None


def produced(item) -> set[int]:
    if isinstance(item, Step):
        return {item.id}
    if isinstance(item, Optional):
        return produced(item.item)
    if isinstance(item, Dense):
        return {item.id}  # its layers' outputs are its own business
    return set().union(*(produced(c) for c in item.items)) if item.items else set()


def used(item) -> list[int]:
    """Values an item reads, in order of first use, that it does not make itself."""
    if isinstance(item, Step):
        return list(item.inputs)
    if isinstance(item, Dense):
        return [item.input]
    if isinstance(item, Optional):
        return [item.input]
    made, out = set(), []
    for c in item.items:
        for v in used(c):
            if v not in made and v not in out:
                out.append(v)
        made |= produced(c)
    return out


def hoist(region: Region) -> None:
    """Move a region's leading concat of outside tensors out of it (DenseNet layers concatenate their inputs)."""
    items = []
    for item in region.items:
        if isinstance(item, Region):
            hoist(item)
            while item.items and isinstance(item.items[0], Step) and item.items[0].op == "concat":
                items.append(item.items.pop(0))
        items.append(item)
    region.items = items


def find_dense(region: Region) -> None:
    """Replace each run (layer, concat, layer, concat, ...) with DenseNet wiring by a Dense item."""
    for item in region.items:
        if isinstance(item, Region):
            find_dense(item)
    items, i = region.items, 0
    out = []
    while i < len(items):
        found = _dense_at(items, i)
        if found is None:
            out.append(items[i])
            i += 1
        else:
            dense, i = found
            out.append(dense)
    region.items = out


def _dense_at(items: list, i: int):
    first = items[i]
    if not isinstance(first, Region) or len(used(first)) != 1:
        return None
    x = used(first)[0]
    layers, outs, j = [first], [_last(first)], i + 1
    while j < len(items):
        cat = items[j]
        if not (isinstance(cat, Step) and cat.op == "concat" and cat.inputs == [x, *outs]):
            break
        nxt = items[j + 1] if j + 1 < len(items) else None
        if isinstance(nxt, Region) and used(nxt) == [cat.id] and nxt.cls == first.cls:
            layers.append(nxt)
            outs.append(_last(nxt))
            j += 2
            continue
        if len(layers) >= 2:
            return Dense(layers, x, cat.id), j + 1
        break
    return None


def _last(region: Region) -> int:
    item = region.items[-1]
    return item.id if isinstance(item, (Step, Dense, Optional)) else _last(item)


def _steps(region: Region):
    for item in region.items:
        if isinstance(item, Step):
            yield region, item
        elif isinstance(item, Region):
            yield from _steps(item)


def fuse_gap(root: Region, outputs: list[int]) -> None:
    """`adaptive_avgpool(1) -> flatten` is global average pooling: one `gap` step, named after the pool."""
    steps = list(_steps(root))
    by_id = {s.id: s for _, s in steps}
    uses: dict[int, int] = {}
    for _, s in steps:
        for v in s.inputs:
            uses[v] = uses.get(v, 0) + 1
    rename: dict[int, int] = {}
    for region, s in steps:
        src = by_id.get(s.inputs[0]) if s.op == "flatten" else None
        if src is not None and src.op == "adaptive_avgpool" and src.args == [(None, 1)] and uses[src.id] == 1:
            src.op, src.args = "gap", []
            region.items.remove(s)
            rename[s.id] = src.id
    for _, s in steps:
        s.inputs = [rename.get(v, v) for v in s.inputs]
    outputs[:] = [rename.get(v, v) for v in outputs]


def fuse_shuffle(root: Region, inputs: dict[int, list[int]]) -> None:
    """`reshape([g, C/g, ..]) -> permute([1, 0, ..]) -> reshape([C, ..])` is `shuffle(g)` (ShuffleNet's
    view/transpose/view and archdsl's unflatten/transpose/flatten). `inputs`: the model's input shapes."""
    steps = list(_steps(root))
    by_id = {s.id: s for _, s in steps}
    region_of = {s.id: region for region, s in steps}
    uses: dict[int, int] = {}
    for _, s in steps:
        for v in s.inputs:
            uses[v] = uses.get(v, 0) + 1
    for _, s in steps:
        back = by_id.get(s.inputs[0]) if s.op == "reshape" else None
        first = by_id.get(back.inputs[0]) if back is not None and back.op == "permute" else None
        if first is None or first.op != "reshape" or uses[back.id] != 1 or uses[first.id] != 1:
            continue
        source = by_id[first.inputs[0]].shape if first.inputs[0] in by_id else inputs.get(first.inputs[0])
        split, order, out = first.args[0][1], back.args[0][1], s.args[0][1]
        if (source == out and len(split) == len(out) + 1 and split[0] * split[1] == out[0]
                and split[2:] == out[1:] and order == [1, 0, *range(2, len(split))]):
            s.op, s.args, s.inputs = "shuffle", [(None, split[0])], list(first.inputs)
            region_of[back.id].items.remove(back)
            region_of[first.id].items.remove(first)
