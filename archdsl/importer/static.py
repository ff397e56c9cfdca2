"""Sizes a traced model reads from its tensors at run time (`x.size()`, `x.shape[1] // g`), made static.

The traced graph is run twice, with batches of 2 and 3. A non-tensor result equal in both runs is a
constant of the model at this input shape (a channel count, a spatial size); one that is 2, then 3
is the batch size (`x.view(x.size(0), -1)`); any other is a size the spec cannot fix, an error where
it is used. Tensor shapes (`tensor_meta`) come from the second run, as torch.fx's ShapeProp gives them.
"""

from __future__ import annotations

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

BATCHES = (3, 2)  # the last run's shapes stay in the graph's meta


class Batch:
    """The batch size, read from a tensor: only allowed as the first size of a reshape."""

    def __repr__(self) -> str:
        return "<batch>"


class Dynamic:
    """A size that depends on the batch other than being it."""

    def __repr__(self) -> str:
        return "<dynamic>"


BATCH, DYNAMIC = Batch(), Dynamic()


def _is_static(v) -> bool:
    if isinstance(v, (torch.Size, tuple, list)):
        return all(_is_static(x) for x in v)
    return isinstance(v, (int, float, bool)) or v is None


class _Recorder(ShapeProp):
    """ShapeProp that also keeps every non-tensor result (sizes and their arithmetic)."""

    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.results: dict[str, object] = {}

    def run_node(self, n):
        result = super().run_node(n)
        if n.op not in ("output", "placeholder") and _is_static(result) and result is not None:
            self.results[n.name] = result
        return result


def _merge(a, b):
    if isinstance(a, (torch.Size, tuple, list)) and isinstance(b, (torch.Size, tuple, list)) and len(a) == len(b):
        return tuple(_merge(x, y) for x, y in zip(a, b))
    if a == b:
        return a
    if (a, b) == BATCHES:
        return BATCH
    return DYNAMIC


def static_values(gm: torch.fx.GraphModule, shapes: list[list[int]]) -> dict[str, object]:
    """Run `gm` on random batches of each size in BATCHES; the merged non-tensor result of each node."""
    runs = []
    with torch.no_grad():
        for batch in BATCHES:
            recorder = _Recorder(gm)
            recorder.propagate(*[torch.randn(batch, *s) for s in shapes])
            runs.append(recorder.results)
    first, last = runs
    return {name: _merge(first.get(name), value) for name, value in last.items()}


def resolve(arg, values: dict[str, object]):
    """An fx argument with every static node replaced by its value (BATCH, DYNAMIC, or a number)."""
    if isinstance(arg, torch.fx.Node):
        return values.get(arg.name, arg)
    if isinstance(arg, (tuple, list)):
        return type(arg)(resolve(a, values) for a in arg)
    return arg
