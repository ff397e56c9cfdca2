"""Reshaping ops: reshape a tensor (without its batch axis) to a stated shape."""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, fmt, numel, register


@register
class Reshape(Op):
    name = "reshape"
    args = (Arg("shape", "ints"),)
    category = "shape"
    doc = "Reshape to `shape` (no batch axis), keeping the element order: [1470] -> [30, 7, 7] (YOLO's output)."

    def _shape(self, a) -> tuple:
        return tuple(a["shape"]) if isinstance(a["shape"], (list, tuple)) else (a["shape"],)

    def infer(self, a, ins):
        shape = self._shape(a)
        if not 1 <= len(shape) <= 4 or min(shape) < 1:
            raise OpError(f"reshape needs 1 to 4 positive sizes, found {list(shape)}", arg="shape")
        if numel(shape) != numel(ins[0]):
            raise OpError(f"cannot reshape {fmt(ins[0])} ({numel(ins[0])} values) to {fmt(shape)} ({numel(shape)} values)",
                          "the new shape must hold the same number of values", arg="shape")
        return shape

    def label(self, a, out):
        return f"reshape {'x'.join(map(str, out))}"

    def forward(self, a, x, mod, ins):
        return f"{x[0]}.reshape(-1, {', '.join(map(str, self._shape(a)))})"
