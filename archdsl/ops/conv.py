"""Convolutions: conv (1-D/2-D/3-D, groups, dilation, 'same' padding), deconv, dwconv."""

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

_CONV_ARGS = (
    Arg("out", "int"),
    Arg("kernel", "ints"),
    Arg("stride", "ints", 1),
    Arg("pad", "pad", "half"),
    Arg("dilation", "ints", 1),
    Arg("groups", "int", 1),
    Arg("bias", "bool", True),
    Arg("bias_init", "any", None),
    Arg("init", "str", "default"),
)


def conv_padding(a: dict, n: int) -> tuple:
    """Resolve the `pad` argument: an int, a list, 'same', 'valid' or the default 'half'."""
    kernel, dilation, pad = expand(a["kernel"], n, "kernel"), expand(a["dilation"], n, "dilation"), a["pad"]
    if pad in ("same", "half"):
        if pad == "same" and any(k % 2 == 0 for k in kernel):
            raise OpError("pad='same' needs an odd kernel", "give explicit padding for even kernels", arg="pad")
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    if pad == "valid":
        return (0,) * n
    if isinstance(pad, str):
        raise OpError(f"unknown padding '{pad}'", "use an int, a list of ints, 'same' or 'valid'", arg="pad")
    return expand(pad, n, "pad")


def check_groups(channels: int, out: int, groups: int) -> None:
    if groups < 1:
        raise OpError(f"groups must be at least 1, found {groups}", arg="groups")
    if channels % groups:
        raise OpError(f"{channels} input channels are not divisible by groups={groups}",
                      "make the input channels a multiple of groups", arg="groups")
    if out % groups:
        raise OpError(f"{out} output channels are not divisible by groups={groups}",
                      "make the output channels a multiple of groups", arg="groups")


def _positive(a: dict, *names: str) -> None:
    for name in names:
        values = a[name] if isinstance(a[name], (list, tuple)) else [a[name]]
        if any(v < 1 for v in values):
            raise OpError(f"{name} must be positive, found {a[name]}", arg=name)


@register
class Conv(Op):
    name = "conv"
    fresh_output = True
    args = _CONV_ARGS
    category = "conv"
    doc = "Convolution over [C, L], [C, H, W] or [C, D, H, W]; pad defaults to dilation*(kernel-1)//2."

    def geometry(self, a: dict, shape) -> tuple:
        n = spatial_rank(shape, self.name)
        _positive(a, "out", "kernel", "stride", "dilation")
        return (n, expand(a["kernel"], n, "kernel"), expand(a["stride"], n, "stride"),
                conv_padding(a, n), expand(a["dilation"], n, "dilation"))

    def infer(self, a, ins):
        (shape,) = ins
        _n, kernel, stride, pad, dilation = self.geometry(a, shape)
        check_groups(shape[0], a["out"], a["groups"])
        check_init(a)
        spatial = []
        for size, k, s, p, d in zip(shape[1:], kernel, stride, pad, dilation):
            out = window_out(size, k, s, p, d)
            if out < 1:
                raise OpError(f"a {'x'.join(map(str, kernel))} window does not fit the {fmt(shape)} input",
                              "use padding or a smaller kernel, or drop a downsampling step earlier")
            spatial.append(out)
        return (a["out"], *spatial)

    def params(self, a, ins, out):
        n = len(out) - 1
        kernel = expand(a["kernel"], n, "kernel")
        return a["out"] * (ins[0][0] // a["groups"]) * numel(kernel) + (a["out"] if a["bias"] else 0)

    def macs(self, a, ins, out):
        n = len(out) - 1
        return numel(out) * (ins[0][0] // a["groups"]) * numel(expand(a["kernel"], n, "kernel"))

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        text = f"{'x'.join(map(str, kernel))} {self.name}, {a['out']}"
        stride = expand(a["stride"], len(out) - 1, "stride")
        if max(stride) > 1:
            text += f", /{tuple_src(stride)}"
        if a["groups"] > 1:
            text += f", g={a['groups']}"
        if max(expand(a["dilation"], len(out) - 1, "dilation")) > 1:
            text += f", d={a['dilation']}"
        return text

    def module(self, a, ins, out):
        return self._constructor(a, ins, f"nn.Conv{len(out) - 1}d")

    def inference_module(self, a, ins, out):
        """2-D convolutions keep their filters in oneDNN's layout and apply the activation fused into them
        (`post_op`, backend/inference.py) in the same call (runtime.PackedConv2d): measured faster on CPUs
        at every batch size (docs/backend.md); the same as nn.Conv2d and the activation elsewhere."""
        if len(out) != 3:
            return self.module(a, ins, out)
        extra = []
        if a.get("post_op") is not None:
            name, scalars, algorithm = a["post_op"]
            extra.append(f"activation={name!r}")
            extra += [f"scalars={tuple(scalars)!r}"] if scalars else []
            extra += [f"algorithm={algorithm!r}"] if algorithm else []
        return self._constructor(a, ins, "PackedConv2d", extra)

    def _constructor(self, a, ins, cls: str, extra: list[str] = ()) -> str:
        _n, kernel, stride, pad, dilation = self.geometry(a, ins[0])
        parts = [str(ins[0][0]), str(a["out"]), f"kernel_size={tuple_src(kernel)}"]
        if max(stride) > 1:
            parts.append(f"stride={tuple_src(stride)}")
        if max(pad) > 0:
            parts.append(f"padding={tuple_src(pad)}")
        if max(dilation) > 1:
            parts.append(f"dilation={tuple_src(dilation)}")
        if a["groups"] > 1:
            parts.append(f"groups={a['groups']}")
        if not a["bias"]:
            parts.append("bias=False")
        return f"{cls}({', '.join([*parts, *extra])})"

    def init(self, a, mod):
        return layer_init(a, mod)


WEIGHT_INITS = {
    "default": None,  # PyTorch's own
    "kaiming_fan_out": "nn.init.kaiming_normal_({w}, mode='fan_out', nonlinearity='relu')",
    "kaiming_fan_in": "nn.init.kaiming_normal_({w}, mode='fan_in', nonlinearity='relu')",
    "xavier": "nn.init.xavier_uniform_({w})",
    "normal": "nn.init.normal_({w}, 0.0, 0.01)",
}


def check_init(a: dict) -> None:
    """Spec-time checks of the `init` and `bias_init` arguments of weighted layers."""
    if a.get("init", "default") not in WEIGHT_INITS:
        raise OpError(f"unknown init '{a['init']}'", "use one of " + ", ".join(WEIGHT_INITS), arg="init")
    if a.get("bias_init") is not None:
        if not a["bias"]:
            raise OpError("bias_init needs bias=true", arg="bias_init")
        if isinstance(a["bias_init"], bool) or not isinstance(a["bias_init"], (int, float)):
            raise OpError(f"bias_init must be a number, found {a['bias_init']!r}", arg="bias_init")


def layer_init(a: dict, mod: str) -> list[str]:
    """Initialisation statements for a conv or fc layer: a weight scheme (the bias then starts at 0)
    and `bias_init` (highway gates start with a negative bias)."""
    lines = []
    scheme = WEIGHT_INITS[a.get("init", "default")]
    if scheme:
        lines.append(scheme.format(w=f"{mod}.weight"))
        if a["bias"] and a.get("bias_init") is None:
            lines.append(f"nn.init.zeros_({mod}.bias)")
    if a.get("bias_init") is not None:
        lines.append(f"nn.init.constant_({mod}.bias, {float(a['bias_init'])!r})")
    return lines


@register
class DepthwiseConv(Conv):
    name = "dwconv"
    args = (Arg("kernel", "ints"), *_CONV_ARGS[2:5], Arg("bias", "bool", True), Arg("multiplier", "int", 1))
    init = Op.init
    doc = "Depthwise convolution: groups = input channels, out = multiplier x input channels."

    def _full(self, a, shape):
        return {**a, "out": shape[0] * a["multiplier"], "groups": shape[0]}

    def infer(self, a, ins):
        return super().infer(self._full(a, ins[0]), ins)

    def params(self, a, ins, out):
        return super().params(self._full(a, ins[0]), ins, out)

    def macs(self, a, ins, out):
        return super().macs(self._full(a, ins[0]), ins, out)

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        stride = expand(a["stride"], len(out) - 1, "stride")
        text = f"{'x'.join(map(str, kernel))} dw conv, {out[0]}"
        return text + (f", /{tuple_src(stride)}" if max(stride) > 1 else "")

    def module(self, a, ins, out):
        return super().module(self._full(a, ins[0]), ins, out)

    def inference_module(self, a, ins, out):
        return super().inference_module(self._full(a, ins[0]), ins, out)


@register
class Deconv(Op):
    name = "deconv"
    fresh_output = True
    args = (
        Arg("out", "int"), Arg("kernel", "ints"), Arg("stride", "ints", 1), Arg("pad", "ints", 0),
        Arg("output_pad", "ints", 0), Arg("dilation", "ints", 1), Arg("groups", "int", 1), Arg("bias", "bool", True),
    )
    category = "conv"
    doc = "Transposed convolution: out = (in - 1)*stride - 2*pad + dilation*(kernel - 1) + output_pad + 1."

    def _geometry(self, a, shape):
        n = spatial_rank(shape, self.name)
        return n, [expand(a[k], n, k) for k in ("kernel", "stride", "pad", "output_pad", "dilation")]

    def infer(self, a, ins):
        (shape,) = ins
        _n, (kernel, stride, pad, opad, dilation) = self._geometry(a, shape)
        check_groups(shape[0], a["out"], a["groups"])
        for o, s, d in zip(opad, stride, dilation):
            if o >= max(s, d):
                raise OpError(f"output_pad {o} must be smaller than stride or dilation", arg="output_pad")
        spatial = [(i - 1) * s - 2 * p + d * (k - 1) + o + 1
                   for i, k, s, p, o, d in zip(shape[1:], kernel, stride, pad, opad, dilation)]
        if min(spatial) < 1:
            raise OpError(f"deconv output would be empty for input {fmt(shape)}", arg="pad")
        return (a["out"], *spatial)

    def params(self, a, ins, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        return ins[0][0] * (a["out"] // a["groups"]) * numel(kernel) + (a["out"] if a["bias"] else 0)

    def macs(self, a, ins, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        return numel(ins[0]) * (a["out"] // a["groups"]) * numel(kernel)

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        stride = expand(a["stride"], len(out) - 1, "stride")
        return f"{'x'.join(map(str, kernel))} deconv, {a['out']}" + (f", x{tuple_src(stride)}" if max(stride) > 1 else "")

    def module(self, a, ins, out):
        n, (kernel, stride, pad, opad, dilation) = self._geometry(a, ins[0])
        parts = [str(ins[0][0]), str(a["out"]), f"kernel_size={tuple_src(kernel)}"]
        for name, value in (("stride", stride), ("padding", pad), ("output_padding", opad), ("dilation", dilation)):
            if max(value) > (1 if name in ("stride", "dilation") else 0):
                parts.append(f"{name}={tuple_src(value)}")
        if a["groups"] > 1:
            parts.append(f"groups={a['groups']}")
        if not a["bias"]:
            parts.append("bias=False")
        return f"nn.ConvTranspose{n}d({', '.join(parts)})"
