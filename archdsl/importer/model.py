"""The importer's intermediate form: a tree of module invocations whose leaves are spec steps.

Both front ends (torch.fx tracing, ONNX reading) produce it; structure.py folds it and emit.py writes
it as spec text. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ImportFailure(Exception):
    """A model that cannot be expressed as a spec: where (module path) and what (the op)."""

    def __init__(self, where: str, what: str, help: str | None = None):
        self.where, self.what, self.help = where, what, help
        super().__init__(f"{where or '<root>'}: {what}")


class PartialImport(UserWarning):
    """A spec that leaves out part of the source (modules that run in neither eval nor training mode, or
    whose training-mode graph cannot be imported): the warning and a comment in the spec name them."""


@dataclass
class Step:
    """One op of the spec: `op(args)` on the tensors `inputs` (value ids), producing value `id`."""

    id: int
    op: str
    args: list[tuple[str | None, object]]  # (keyword or None for positional, value)
    inputs: list[int]
    label: str | None = None  # the source's name for it (a module attribute), if any
    owner: str | None = None  # the weights' owner (module path) for layers with weights; reuse detection
    where: str = ""
    shape: list[int] | None = None  # the output's shape without the batch axis, where the front end knows it


@dataclass
class Region:
    """One call of a non-leaf module: its class, the attribute name, and what ran inside it, in order."""

    label: str
    cls: str
    kind: str  # "block" (a module class of its own), "group" (nn.Sequential and the like) or "root"
    items: list = field(default_factory=list)  # Step | Region
    path: str = ""
    stand_in: bool = False  # a copy standing in for an optional part this instance lacks (optional.py)


@dataclass
class Trace:
    """A whole model: inputs (value id, name, shape), the tree, and the output value ids."""

    inputs: list[tuple[int, str, list[int]]]
    root: Region
    outputs: list[int]
    source: str
    params: int
    notes: list[str] = field(default_factory=list)
    output_names: list[str] | None = None  # the names of several outputs (a dict's keys), if the source gave any
    left_out: dict[str, int] = field(default_factory=dict)  # modules whose parameters the graph never uses -> count
    warnings: list[str] = field(default_factory=list)  # what the spec leaves out: said loudly, not only in a comment
    gm: object = None  # the traced torch.fx GraphModule (PyTorch front end)


@dataclass
class Optional:
    """An item that some instances of a block class have and others lack (torchvision's `downsample`).

    `present`: this instance has it (else `item` is a stand-in copy of another instance's, never run);
    absent, the value `input` passes through: `id` (the item's output) is then `input`'s stand-in.
    """

    item: object  # Region | Step
    present: bool
    input: int
    id: int
    flag: str  # the block parameter that says whether it is there
