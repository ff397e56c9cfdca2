"""Ops of LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) that modern libraries lack.

- ``trainable_pool``: the sub-sampling layers S2 and S4: each map's k x k window
  sum, times a trainable coefficient, plus a trainable bias (2 parameters a map);
- ``partial_conv``: a convolution whose output map j sees only the input maps
  listed in ``table[j]`` (C3 and the paper's Table I);
- ``rbf``: the Euclidean radial basis function output layer,
  y_i = sum_j (x_j - w_ij)^2, whose centres the paper fixes by hand (so they are
  buffers, not parameters, unless ``trainable=true``).

MACs follow the counting conventions in archdsl/ops/base.py; the sub-sampling
layer counts one multiply-add per input of each window (a depthwise convolution
with one tied weight a map), so every layer's MACs equal the paper's
"connections" minus one bias term per output unit.
"""

from __future__ import annotations

from archdsl.ops.base import (
    Arg,
    Op,
    OpError,
    expand,
    fmt,
    numel,
    register,
    spatial_rank,
    tuple_src,
    window_out,
)
from archdsl.ops.conv import conv_padding


@register
class TrainablePool(Op):
    name = "trainable_pool"
    args = (Arg("kernel", "ints", 2), Arg("stride", "ints", "=kernel"))
    category = "pool"
    doc = "LeNet-5 sub-sampling: k x k window sum x trainable coefficient + trainable bias, per map."

    def _geometry(self, a, shape):
        n = spatial_rank(shape, self.name)
        return n, expand(a["kernel"], n, "kernel"), expand(a["stride"], n, "stride")

    def infer(self, a, ins):
        (shape,) = ins
        _n, kernel, stride = self._geometry(a, shape)
        if min(kernel) < 1 or min(stride) < 1:
            raise OpError(f"kernel and stride must be positive, found {a['kernel']} and {a['stride']}", arg="kernel")
        spatial = [window_out(size, k, s, 0) for size, k, s in zip(shape[1:], kernel, stride)]
        if min(spatial) < 1:
            raise OpError(f"a {'x'.join(map(str, kernel))} window does not fit the {fmt(shape)} input")
        return (shape[0], *spatial)

    def params(self, a, ins, out):
        return 2 * ins[0][0]

    def macs(self, a, ins, out):
        return numel(out) * numel(expand(a["kernel"], len(out) - 1, "kernel"))

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        stride = expand(a["stride"], len(out) - 1, "stride")
        text = f"{'x'.join(map(str, kernel))} subsampling"
        return text + (f", /{tuple_src(stride)}" if max(stride) > 1 else "")

    def module(self, a, ins, out):
        _n, kernel, stride = self._geometry(a, ins[0])
        parts = [str(ins[0][0]), f"kernel_size={tuple(kernel)}"]
        if stride != kernel:
            parts.append(f"stride={tuple(stride)}")
        return f"TrainableSubsampling({', '.join(parts)})"


def _check_table(table, in_channels: int, out: int) -> list[list[int]]:
    """The connection table: one non-empty list of distinct input maps per output map."""
    if not isinstance(table, list) or len(table) != out:
        found = len(table) if isinstance(table, list) else table
        raise OpError(f"the connection table needs one list per output map ({out}), found {found}", arg="table")
    for j, row in enumerate(table):
        if not isinstance(row, list) or not row or not all(isinstance(i, int) and not isinstance(i, bool)
                                                             for i in row):
            raise OpError(f"row {j} of the connection table must be a non-empty list of input maps, found {row}",
                          arg="table")
        if len(set(row)) != len(row) or not all(0 <= i < in_channels for i in row):
            raise OpError(f"row {j} of the connection table, {row}, must name distinct input maps "
                          f"0..{in_channels - 1}", arg="table")
    return table


@register
class PartialConv(Op):
    name = "partial_conv"
    args = (Arg("out", "int"), Arg("kernel", "ints"), Arg("table", "any"), Arg("stride", "ints", 1),
            Arg("pad", "pad", "half"), Arg("bias", "bool", True))
    category = "conv"
    doc = "Convolution in which output map j sees only the input maps table[j] (LeNet-5 C3, Table I)."

    def _geometry(self, a, shape):
        n = spatial_rank(shape, self.name)
        kernel, stride = expand(a["kernel"], n, "kernel"), expand(a["stride"], n, "stride")
        return n, kernel, stride, conv_padding({**a, "dilation": 1}, n)

    def _links(self, a, ins) -> int:
        return sum(len(row) for row in a["table"])

    def infer(self, a, ins):
        (shape,) = ins
        _n, kernel, stride, pad = self._geometry(a, shape)
        if a["out"] < 1 or min(kernel) < 1 or min(stride) < 1:
            raise OpError("out, kernel and stride must be positive")
        _check_table(a["table"], shape[0], a["out"])
        spatial = [window_out(size, k, s, p) for size, k, s, p in zip(shape[1:], kernel, stride, pad)]
        if min(spatial) < 1:
            raise OpError(f"a {'x'.join(map(str, kernel))} window does not fit the {fmt(shape)} input",
                          "use padding or a smaller kernel")
        return (a["out"], *spatial)

    def params(self, a, ins, out):
        area = numel(expand(a["kernel"], len(out) - 1, "kernel"))
        return self._links(a, ins) * area + (a["out"] if a["bias"] else 0)

    def macs(self, a, ins, out):
        area = numel(expand(a["kernel"], len(out) - 1, "kernel"))
        return numel(out[1:]) * self._links(a, ins) * area

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        stride = expand(a["stride"], len(out) - 1, "stride")
        text = f"{'x'.join(map(str, kernel))} partial conv, {a['out']}"
        return text + (f", /{tuple_src(stride)}" if max(stride) > 1 else "")

    def module(self, a, ins, out):
        _n, kernel, stride, pad = self._geometry(a, ins[0])
        parts = [str(ins[0][0]), str(a["table"]), f"kernel_size={tuple(kernel)}"]
        if max(stride) > 1:
            parts.append(f"stride={tuple(stride)}")
        if max(pad) > 0:
            parts.append(f"padding={tuple(pad)}")
        if not a["bias"]:
            parts.append("bias=False")
        return f"PartialConv({', '.join(parts)})"


@register
class EuclideanRBF(Op):
    name = "rbf"
    args = (Arg("out", "int"), Arg("trainable", "bool", False))
    category = "fc"
    doc = ("Euclidean RBF units: y_i = sum_j (x_j - w_ij)^2 over a flat input; the centres w are fixed "
           "(a buffer) as in LeNet-5 unless trainable=true.")

    def infer(self, a, ins):
        if len(ins[0]) != 1:
            raise OpError(f"rbf needs a flat [F] input, found {fmt(ins[0])}",
                          "insert 'flatten' or a global pooling ('gap') before 'rbf'")
        if a["out"] < 1:
            raise OpError(f"out must be positive, found {a['out']}", arg="out")
        return (a["out"],)

    def params(self, a, ins, out):
        return ins[0][0] * a["out"] if a["trainable"] else 0

    def macs(self, a, ins, out):
        return ins[0][0] * a["out"]

    def label(self, a, out):
        return f"rbf, {a['out']}"

    def module(self, a, ins, out):
        return f"EuclideanRBF({ins[0][0]}, {a['out']}{', trainable=True' if a['trainable'] else ''})"
