"""Normalisation, regularisation and layout ops of the post-2018 CNNs (MobileNetV2/V3, EfficientNet,
ConvNeXt): layer and group normalisation, stochastic depth, layer scale and axis permutation.

The activations of these networks (``silu``, ``gelu``, ``hardswish``, ``hardsigmoid``) are pointwise ops
next to ``relu`` in archdsl/ops/layers.py; fully connected layers over a channels-last tensor are
``fc(out, axis = -1)``; squeeze-and-excitation is a block in the specs (``mul`` scales channels).
"""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, fmt, register


def _norm_axis(a: dict, shape: tuple, op: str) -> int:
    """The axis (without the batch axis) an op normalises or scales: 0 (channels) or the last one."""
    axis = a["axis"]
    if axis not in (0, -1, len(shape) - 1):
        raise OpError(f"{op} works over the channel axis (axis = 0) or the last axis (axis = -1), found axis = {axis}",
                      "permute the axis to the front or the end first", arg="axis")
    return 0 if axis == 0 else len(shape) - 1


@register
class LayerNorm(Op):
    name = "layernorm"
    fresh_output = True
    args = (Arg("axis", "int", 0), Arg("eps", "float", 1e-5), Arg("affine", "bool", True))
    category = "norm"
    doc = ("Layer normalisation over one axis at every position: the channels of [C, ...] (`axis = 0`, "
           "ConvNeXt's LayerNorm2d) or the last axis (`axis = -1`: a flat [F] tensor, a channels-last "
           "[H, W, C] one); affine weight and bias are 2 x that axis' size parameters.")

    def infer(self, a, ins):
        _norm_axis(a, ins[0], self.name)
        if a["eps"] <= 0:
            raise OpError(f"eps must be positive, found {a['eps']}", arg="eps")
        return ins[0]

    def params(self, a, ins, out):
        return 2 * ins[0][_norm_axis(a, ins[0], self.name)] if a["affine"] else 0

    def label(self, a, out):
        return "layer norm"

    def module(self, a, ins, out):
        axis = _norm_axis(a, ins[0], self.name)
        parts = [str(ins[0][axis])]
        if a["eps"] != 1e-5:
            parts.append(f"eps={a['eps']!r}")
        if not a["affine"]:
            parts.append("elementwise_affine=False")
        kind = "nn.LayerNorm" if axis == len(ins[0]) - 1 else "ChannelLayerNorm"
        return f"{kind}({', '.join(parts)})"


@register
class GroupNorm(Op):
    name = "groupnorm"
    fresh_output = True
    args = (Arg("groups", "int"), Arg("eps", "float", 1e-5), Arg("affine", "bool", True))
    category = "norm"
    doc = ("Group normalisation: the channels split into `groups` groups, each normalised over its channels "
           "and positions; affine weight and bias are 2C parameters.")

    def infer(self, a, ins):
        c = ins[0][0]
        if a["groups"] < 1 or c % a["groups"]:
            raise OpError(f"groupnorm: {c} channels are not divisible by groups={a['groups']}",
                          "make the channels a multiple of the groups", arg="groups")
        if a["eps"] <= 0:
            raise OpError(f"eps must be positive, found {a['eps']}", arg="eps")
        return ins[0]

    def params(self, a, ins, out):
        return 2 * ins[0][0] if a["affine"] else 0

    def label(self, a, out):
        return f"group norm, g={a['groups']}"

    def module(self, a, ins, out):
        parts = [str(a["groups"]), str(ins[0][0])]
        if a["eps"] != 1e-5:
            parts.append(f"eps={a['eps']!r}")
        if not a["affine"]:
            parts.append("affine=False")
        return f"nn.GroupNorm({', '.join(parts)})"


@register
class DropPath(Op):
    name = "drop_path"
    args = (Arg("p", "float"),)
    schedule_args = ("p",)
    category = "act"
    doc = ("Stochastic depth (Huang et al., 2016) per sample: in training each sample's tensor is zeroed with "
           "probability p and otherwise scaled by 1/(1-p); the identity in eval. Usually given as "
           "`residual(drop_path = p)`, which drops the residual branch only.")

    def infer(self, a, ins):
        if not 0 <= a["p"] <= 1:
            raise OpError(f"drop_path probability must be in [0, 1], found {a['p']}", arg="p")
        return ins[0]

    def label(self, a, out):
        return f"drop path {a['p']:.3g}"

    def module(self, a, ins, out):
        return f"DropPath({a['p']!r})"


@register
class LayerScale(Op):
    name = "layer_scale"
    fresh_output = True
    args = (Arg("init", "float", 1e-6),)
    category = "act"
    doc = ("A learnable scale per channel (CaiT, ConvNeXt), initialised to `init`: C parameters, stored as "
           "torchvision does (shape [C, 1, 1] for a [C, H, W] input).")

    def params(self, a, ins, out):
        return ins[0][0]

    def label(self, a, out):
        return "layer scale"

    def module(self, a, ins, out):
        return f"LayerScale({ins[0][0]}, {a['init']!r}, {len(ins[0])})"


@register
class Permute(Op):
    name = "permute"
    args = (Arg("order", "ints"),)
    category = "shape"
    doc = ("Reorder the axes (without the batch axis): `permute([1, 2, 0])` makes [C, H, W] channels-last "
           "[H, W, C], `permute([2, 0, 1])` turns it back.")

    def infer(self, a, ins):
        order = a["order"] if isinstance(a["order"], list) else [a["order"]]
        if sorted(order) != list(range(len(ins[0]))):
            raise OpError(f"permute order {order} is not an ordering of the {len(ins[0])} axes of {fmt(ins[0])}",
                          f"give each of 0..{len(ins[0]) - 1} once", arg="order")
        return tuple(ins[0][i] for i in order)

    def label(self, a, out):
        return "permute " + "x".join(map(str, out))

    def forward(self, a, x, mod, ins):
        order = a["order"] if isinstance(a["order"], list) else [a["order"]]
        return f"{x[0]}.permute(0, {', '.join(str(i + 1) for i in order)})"
