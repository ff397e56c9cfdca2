"""The op registry: one definition per op.

Each op is a small class that keeps side by side everything the compiler
needs to know about it: its arguments, its shape rule, its parameter and
multiply-accumulate (MAC) counts, its diagram label and category, and the
PyTorch source that builds and calls it. Torch is never imported here: the
backend turns the source snippets into modules.

Counting conventions (docs/ir.md): MAC = one multiply-add of a weight, so only
layers with weights (conv, deconv, fc, clique edges) count MACs; FLOPs = 2 x
MACs. Batch-norm affine weights are parameters; running statistics are buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Shape = tuple  # a tensor shape without the batch dimension


class OpError(Exception):
    """A shape or argument error in one op; the elaborator adds the location."""

    def __init__(self, message: str, help: str | None = None, arg: str | None = None,
                 inputs: tuple[int, int] | None = None):
        super().__init__(message)
        self.message = message
        self.help = help
        self.arg = arg
        self.inputs = inputs  # the two inputs (0-based) whose shapes disagree, so that errors can name them


REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One op argument: name, kind ('int', 'float', 'bool', 'str', 'ints', 'pad', 'any') and default.

    A default given as ``"=other"`` copies the value of argument ``other``.
    """

    name: str
    kind: str
    default: object = REQUIRED


class Op:
    """Base class of op definitions. Subclasses set the class attributes and override rules."""

    name: str = ""
    args: tuple[Arg, ...] = ()
    arity: tuple[int, int | None] = (1, 1)  # min and max number of inputs
    category: str = "layer"  # conv, pool, norm, act, fc, merge, shape, io, clique
    doc: str = ""
    # True when the op returns a new tensor that no autograd node keeps for backward, so a ReLU
    # that is its only reader may work in place (as torchvision's ReLU(inplace=True) does).
    fresh_output: bool = False
    # Arguments a network may vary from block to block on a schedule (the stochastic depth rate):
    # diagrams fold blocks that differ only in these into one "x N".
    schedule_args: tuple[str, ...] = ()

    def infer(self, a: dict, ins: list[Shape]) -> Shape:
        return ins[0]

    def params(self, a: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def macs(self, a: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def label(self, a: dict, out: Shape) -> str:
        return self.name

    def outputs(self, a: dict, ins: list[Shape]) -> list[Shape] | None:
        """The shapes of an op with several outputs (None: one output, `infer`'s). In the IR such an op is one
        node per output, selected by the argument `index`; `infer` gives that output's shape."""
        return None

    # PyTorch source: a constructor expression (None for stateless ops) and a forward expression.
    def module(self, a: dict, ins: list[Shape], out: Shape) -> str | None:
        return None

    def inference_module(self, a: dict, ins: list[Shape], out: Shape) -> str | None:
        """The constructor expression in an inference build (eval only; backend/inference.py): `module`'s
        unless the op has a faster eval-only module."""
        return self.module(a, ins, out)

    def post_op(self, a: dict) -> tuple[str, list[float], str] | None:
        """The oneDNN post-op (name, scalars, algorithm) that computes this op on a convolution's output,
        which an inference build fuses into the convolution (runtime.PackedConv2d); None if there is none."""
        return None

    def forward(self, a: dict, x: list[str], mod: str | None, ins: list[Shape]) -> str:
        return f"{mod}({x[0]})"

    def stateless_module(self, a: dict, inplace: bool) -> str | None:
        """For an op without state whose forward is one call on one input: an nn module that computes it
        (`nn.ReLU(inplace=True)` where `inplace`), to stand in an nn.Sequential; None where torch has none."""
        return None

    def forward_inplace(self, a: dict, x: list[str]) -> str | None:
        """The forward expression that overwrites its input's storage (`torch.relu_(x)`), for an input
        that no other op reads and no autograd node keeps; None when the op has no in-place form."""
        return None

    def returns_fresh(self, a: dict, n_inputs: int) -> bool:
        return self.fresh_output

    def init(self, a: dict, mod: str) -> list[str]:
        """Extra initialisation statements for the module at `mod` (default: PyTorch's own)."""
        return []


OPS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add one instance of the op to the registry."""
    op = cls()
    OPS[op.name] = op
    return cls


# ---------------------------------------------------------------- helpers shared by op families


def expand(value, n: int, what: str) -> tuple:
    """An int or a list of n ints, as an n-tuple."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise OpError(f"{what} has {len(value)} values but the input has {n} spatial dimensions",
                          f"give one {what} or {n}", arg=what)
        return tuple(value)
    return (value,) * n


def spatial_rank(shape: Shape, op: str, ranks=(1, 2, 3)) -> int:
    n = len(shape) - 1
    if n not in ranks:
        kinds = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}
        raise OpError(f"{op} needs a {' or '.join(kinds[r] for r in ranks)} input, found {fmt(shape)}",
                      "a flat [F] tensor has no spatial axes; check the order of layers")
    return n


def window_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:  # PyTorch: last window must start inside the input
        out -= 1
    return out


def fmt(shape: Shape | None) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "[?]"


def fmt_hw(shape: Shape) -> str:
    return "x".join(str(d) for d in shape[1:]) if len(shape) > 1 else str(shape[0])


def numel(shape: Shape) -> int:
    return math.prod(shape)


def tuple_src(values: tuple) -> str:
    """Python source for a kernel-size style argument: an int when all equal."""
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))
