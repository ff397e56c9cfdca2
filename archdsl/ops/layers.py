"""Normalisation, activations, fully connected layers and other single-input layers."""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, fmt, numel, register, spatial_rank
from archdsl.ops.conv import check_init, layer_init


@register
class BatchNorm(Op):
    name = "bn"
    fresh_output = True
    args = (Arg("eps", "float", 1e-5), Arg("momentum", "float", 0.1), Arg("affine", "bool", True),
            Arg("zero_init", "bool", False))
    category = "norm"
    doc = "Batch normalisation over channels; affine weight and bias are 2C parameters."

    def params(self, a, ins, out):
        return 2 * ins[0][0] if a["affine"] else 0

    def label(self, a, out):
        return "bn"

    def module(self, a, ins, out):
        n = max(1, len(ins[0]) - 1)
        parts = [str(ins[0][0])]
        if a["eps"] != 1e-5:
            parts.append(f"eps={a['eps']}")
        if a["momentum"] != 0.1:
            parts.append(f"momentum={a['momentum']}")
        if not a["affine"]:
            parts.append("affine=False")
        return f"nn.BatchNorm{n}d({', '.join(parts)})"

    def inference_module(self, a, ins, out):
        """A BN over [C, H, W] maps that stays in an inference build (one that follows no conv) is a
        per-channel affine map (runtime.AffineBatchNorm2d): measured faster on CPUs (docs/backend.md)."""
        text = self.module(a, ins, out)
        return "Affine" + text.removeprefix("nn.") if len(ins[0]) == 3 else text

    def init(self, a, mod):
        # weight 1 and bias 0 are PyTorch's defaults; zero_init starts a residual branch at zero
        return [f"nn.init.zeros_({mod}.weight)"] if a["zero_init"] else []


@register
class LocalResponseNorm(Op):
    name = "lrn"
    fresh_output = True
    args = (Arg("size", "int", 5), Arg("alpha", "float", 1e-4), Arg("beta", "float", 0.75), Arg("k", "float", 2.0))
    category = "norm"
    doc = ("Local response normalisation with the AlexNet paper's formula: "
           "b = a / (k + alpha * sum a^2)^beta (PyTorch divides alpha by size; we compensate).")

    def infer(self, a, ins):
        spatial_rank(ins[0], self.name)  # torch normalises across channels of [C, ...] maps only
        return ins[0]

    def label(self, a, out):
        return f"lrn, n={a['size']}"

    def module(self, a, ins, out):
        return f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha'] * a['size']!r}, beta={a['beta']}, k={a['k']})"


class _Pointwise(Op):
    category = "act"
    code = ""
    inplace_code = ""  # the in-place form, when torch has one
    onednn = None  # the oneDNN post-op: (name, scalars), a scalar being a number or an argument's name
    module_code = ""  # the same as an nn module (for nn.Sequential), when torch has one
    module_inplace = ""  # that module working in place

    def label(self, a, out):
        return self.name

    def post_op(self, a):
        if self.onednn is None:
            return None
        name, scalars = self.onednn
        return name, [float(a[s] if isinstance(s, str) else s) for s in scalars], ""

    def forward(self, a, x, mod, ins):
        return self.code.format(x=x[0], **a)

    def forward_inplace(self, a, x):
        return self.inplace_code.format(x=x[0], **a) if self.inplace_code else None

    def stateless_module(self, a, inplace):
        code = self.module_inplace if inplace and self.module_inplace else self.module_code
        return code.format(**a) if code else None


def _pointwise(name: str, code: str, doc: str, args: tuple = (), inplace: str = "", onednn=None,
               module: tuple[str, str] = ("", "")) -> None:
    """Register a pointwise op: its forward (`{x}` its input), in-place forward, oneDNN post-op, and its
    nn module form and that module in place."""
    register(type(name.capitalize(), (_Pointwise,), {"name": name, "code": code, "doc": doc, "args": args,
                                                     "inplace_code": inplace, "onednn": onednn,
                                                     "module_code": module[0], "module_inplace": module[1]}))


_pointwise("relu", "torch.relu({x})", "Rectified linear unit.", inplace="torch.relu_({x})", onednn=("relu", ()),
           module=("nn.ReLU()", "nn.ReLU(inplace=True)"))
_pointwise("relu6", "F.relu6({x})", "ReLU clipped at 6 (MobileNet).", inplace="F.relu6({x}, inplace=True)",
           onednn=("hardtanh", (0, 6)), module=("nn.ReLU6()", "nn.ReLU6(inplace=True)"))
_pointwise("sigmoid", "torch.sigmoid({x})", "Logistic sigmoid.", onednn=("sigmoid", ()), module=("nn.Sigmoid()", ""))
_pointwise("tanh", "torch.tanh({x})", "Hyperbolic tangent.", onednn=("tanh", ()), module=("nn.Tanh()", ""))
_pointwise("leaky_relu", "F.leaky_relu({x}, {slope})", "Leaky ReLU.", (Arg("slope", "float", 0.01),),
           onednn=("leaky_relu", ("slope",)), module=("nn.LeakyReLU({slope})", ""))
_pointwise("scale", "{x} * {factor}", "Multiply by a constant (residual scaling).", (Arg("factor", "float"),))
_pointwise("identity", "{x}", "Pass the input through unchanged.", module=("nn.Identity()", ""))
_pointwise("silu", "F.silu({x})", "SiLU (swish): x * sigmoid(x) (EfficientNet).", inplace="F.silu({x}, inplace=True)",
           onednn=("swish", ()), module=("nn.SiLU()", "nn.SiLU(inplace=True)"))
_pointwise("hardswish", "F.hardswish({x})", "Hard swish: x * relu6(x + 3) / 6 (MobileNetV3).",
           inplace="F.hardswish({x}, inplace=True)", onednn=("hardswish", ()),
           module=("nn.Hardswish()", "nn.Hardswish(inplace=True)"))
_pointwise("hardsigmoid", "F.hardsigmoid({x})", "Hard sigmoid: relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate).",
           inplace="F.hardsigmoid({x}, inplace=True)", onednn=("hardsigmoid", ()),
           module=("nn.Hardsigmoid()", "nn.Hardsigmoid(inplace=True)"))


@register
class Gelu(_Pointwise):
    name = "gelu"
    args = (Arg("approximate", "str", "none"),)
    doc = ("GELU: x * Phi(x), exact (`approximate = \"none\"`, ConvNeXt) or with the tanh approximation "
           "(`approximate = \"tanh\"`).")

    def infer(self, a, ins):
        if a["approximate"] not in ("none", "tanh"):
            raise OpError(f"unknown GELU approximation '{a['approximate']}'", "use 'none' (exact) or 'tanh'",
                          arg="approximate")
        return ins[0]

    def label(self, a, out):
        return "gelu" if a["approximate"] == "none" else "gelu (tanh)"

    def post_op(self, a):
        return "gelu", [], a["approximate"]

    def forward(self, a, x, mod, ins):
        return f"F.gelu({x[0]})" if a["approximate"] == "none" else f"F.gelu({x[0]}, approximate='tanh')"

    def stateless_module(self, a, inplace):
        return "nn.GELU()" if a["approximate"] == "none" else "nn.GELU(approximate='tanh')"


_pointwise("softmax", "torch.softmax({x}, dim=1)", "Softmax over the channel / feature axis.",
           module=("nn.Softmax(dim=1)", ""))
_pointwise("log_softmax", "torch.log_softmax({x}, dim=1)",
           "Log-softmax over the channel / feature axis (per pixel for a segmentation map).",
           module=("nn.LogSoftmax(dim=1)", ""))


@register
class Dropout(Op):
    name = "dropout"
    args = (Arg("p", "float", 0.5),)
    category = "act"
    doc = "Dropout with drop probability p (identity at eval)."

    def infer(self, a, ins):
        if not 0 <= a["p"] < 1:
            raise OpError(f"dropout probability must be in [0, 1), found {a['p']}", arg="p")
        return ins[0]

    def label(self, a, out):
        return f"dropout {a['p']}"

    def module(self, a, ins, out):
        return f"nn.Dropout(p={a['p']})"


@register
class Flatten(Op):
    name = "flatten"
    category = "shape"
    doc = "Flatten all but the batch axis: [C, H, W] -> [C*H*W]."

    def infer(self, a, ins):
        return (numel(ins[0]),)

    def forward(self, a, x, mod, ins):
        return f"torch.flatten({x[0]}, 1)"

    def stateless_module(self, a, inplace):
        return "nn.Flatten()"


@register
class Linear(Op):
    name = "fc"
    fresh_output = True
    args = (Arg("out", "int"), Arg("bias", "bool", True), Arg("bias_init", "any", None),
            Arg("init", "str", "default"), Arg("axis", "int", None))
    category = "fc"
    doc = ("Fully connected layer over a flat [F] input; with `axis = -1`, over the last axis of any tensor, "
           "the same at every position (PyTorch's nn.Linear on a channels-last [H, W, C] tensor, as in ConvNeXt).")

    def infer(self, a, ins):
        shape = ins[0]
        if a["axis"] is not None and a["axis"] not in (-1, len(shape) - 1):
            raise OpError(f"fc acts on the last axis only (axis = -1), found axis = {a['axis']}",
                          "permute the axis to transform to the end first", arg="axis")
        if len(shape) != 1 and a["axis"] is None:
            raise OpError(f"fc needs a flat [F] input, found {fmt(shape)}",
                          "insert 'flatten' or a global pooling ('gap') before 'fc'")
        if a["out"] < 1:
            raise OpError(f"out must be positive, found {a['out']}", arg="out")
        check_init(a)
        return (*shape[:-1], a["out"])

    def params(self, a, ins, out):
        return ins[0][-1] * a["out"] + (a["out"] if a["bias"] else 0)

    def macs(self, a, ins, out):
        return numel(ins[0]) * a["out"]

    def label(self, a, out):
        return f"fc, {a['out']}"

    def module(self, a, ins, out):
        return f"nn.Linear({ins[0][-1]}, {a['out']}{'' if a['bias'] else ', bias=False'})"

    def init(self, a, mod):
        return layer_init(a, mod)
