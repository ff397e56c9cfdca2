"""Pooling and resampling: max/avg pooling, global and adaptive pooling, upsample, crop, subsample."""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, expand, fmt, register, spatial_rank, tuple_src, window_out


class _Pool(Op):
    fresh_output = True
    args = (Arg("kernel", "ints"), Arg("stride", "ints", "=kernel"), Arg("pad", "ints", 0),
            Arg("ceil", "bool", False))
    category = "pool"
    kind = ""

    def _geometry(self, a, shape):
        n = spatial_rank(shape, self.name)
        return n, expand(a["kernel"], n, "kernel"), expand(a["stride"], n, "stride"), expand(a["pad"], n, "pad")

    def infer(self, a, ins):
        (shape,) = ins
        _n, kernel, stride, pad = self._geometry(a, shape)
        for k, p in zip(kernel, pad):
            if 2 * p > k:
                raise OpError(f"pad {p} is more than half the kernel {k}", "PyTorch pooling allows pad <= kernel/2",
                              arg="pad")
        spatial = [window_out(size, k, s, p, 1, a["ceil"]) for size, k, s, p in zip(shape[1:], kernel, stride, pad)]
        if min(spatial) < 1:
            raise OpError(f"a {'x'.join(map(str, kernel))} window does not fit the {fmt(shape)} input",
                          "use a smaller window or remove a downsampling step earlier")
        return (shape[0], *spatial)

    def label(self, a, out):
        kernel = expand(a["kernel"], len(out) - 1, "kernel")
        stride = expand(a["stride"], len(out) - 1, "stride")
        return f"{'x'.join(map(str, kernel))} {self.kind} pool" + (f", /{tuple_src(stride)}" if max(stride) > 1 else "")

    def module(self, a, ins, out):
        n, kernel, stride, pad = self._geometry(a, ins[0])
        parts = [f"kernel_size={tuple_src(kernel)}"]
        if stride != kernel:
            parts.append(f"stride={tuple_src(stride)}")
        if max(pad) > 0:
            parts.append(f"padding={tuple_src(pad)}")
        if a["ceil"]:
            parts.append("ceil_mode=True")
        return f"nn.{self.kind.capitalize()}Pool{n}d({', '.join(parts)})"


@register
class MaxPool(_Pool):
    name, kind = "maxpool", "max"
    doc = "Max pooling; stride defaults to the kernel; ceil=true rounds the output size up."


@register
class AvgPool(_Pool):
    name, kind = "avgpool", "avg"
    args = _Pool.args + (Arg("count_pad", "bool", True),)
    doc = ("Average pooling; padding counts in the average (PyTorch's and Caffe's default) unless "
           "count_pad=false (TensorFlow's 'SAME' pooling).")

    def module(self, a, ins, out):
        source = super().module(a, ins, out)
        return source if a["count_pad"] else source[:-1] + ", count_include_pad=False)"


class _Global(Op):
    fresh_output = True
    category = "pool"
    reduce = ""

    def infer(self, a, ins):
        spatial_rank(ins[0], self.name)
        return (ins[0][0],)

    def forward(self, a, x, mod, ins):
        dims = tuple(range(2, len(ins[0]) + 1))
        if self.reduce == "mean":
            return f"{x[0]}.mean(dim={dims})"
        return f"{x[0]}.amax(dim={dims})"


@register
class GlobalAvgPool(_Global):
    name, reduce = "gap", "mean"
    doc = "Global average pooling: [C, ...] -> [C]."

    def label(self, a, out):
        return "global avg pool"


@register
class GlobalMaxPool(_Global):
    name, reduce = "gmp", "max"
    doc = "Global max pooling: [C, ...] -> [C]."

    def label(self, a, out):
        return "global max pool"


class _Adaptive(Op):
    fresh_output = True
    args = (Arg("size", "ints"),)
    category = "pool"
    kind = ""

    def infer(self, a, ins):
        n = spatial_rank(ins[0], self.name)
        return (ins[0][0], *expand(a["size"], n, "size"))

    def label(self, a, out):
        return f"adaptive {self.kind} pool, {'x'.join(map(str, out[1:]))}"

    def module(self, a, ins, out):
        n = len(out) - 1
        return f"nn.Adaptive{self.kind.capitalize()}Pool{n}d({tuple_src(out[1:])})"


@register
class AdaptiveAvgPool(_Adaptive):
    name, kind = "adaptive_avgpool", "avg"
    doc = "Adaptive average pooling to a fixed spatial size."


@register
class AdaptiveMaxPool(_Adaptive):
    name, kind = "adaptive_maxpool", "max"
    doc = "Adaptive max pooling to a fixed spatial size."


@register
class Upsample(Op):
    name = "upsample"
    fresh_output = True
    args = (Arg("scale", "int", 2), Arg("mode", "str", "nearest"))
    category = "pool"
    doc = "Upsampling by an integer factor (mode 'nearest' or 'bilinear')."
    modes = frozenset({"nearest", "bilinear", "linear", "trilinear", "bicubic"})

    def infer(self, a, ins):
        spatial_rank(ins[0], self.name)
        if a["mode"] not in self.modes:
            raise OpError(f"unknown upsample mode '{a['mode']}'", "use one of " + ", ".join(sorted(self.modes)),
                          arg="mode")
        return (ins[0][0], *(d * a["scale"] for d in ins[0][1:]))

    def label(self, a, out):
        return f"upsample x{a['scale']}"

    def module(self, a, ins, out):
        return f"nn.Upsample(scale_factor={a['scale']}, mode={a['mode']!r})"


@register
class Crop(Op):
    name = "crop"
    args = (Arg("size", "ints"), Arg("offset", "ints", None))
    category = "shape"
    doc = ("Crop of the spatial axes to `size`: centred (U-Net's crop-and-concat), or starting at `offset` "
           "(Caffe's Crop layer, as in FCN).")

    def _starts(self, a, shape) -> tuple:
        n = len(shape) - 1
        size = expand(a["size"], n, "size")
        if a.get("offset") is None:
            return tuple((d - s) // 2 for d, s in zip(shape[1:], size))
        return expand(a["offset"], n, "offset")

    def infer(self, a, ins):
        n = spatial_rank(ins[0], self.name)
        size = expand(a["size"], n, "size")
        if any(s > d for s, d in zip(size, ins[0][1:])):
            raise OpError(f"cannot crop {fmt(ins[0])} to a larger size {list(size)}", arg="size")
        starts = self._starts(a, ins[0])
        if any(o < 0 or o + s > d for o, s, d in zip(starts, size, ins[0][1:])):
            raise OpError(f"a {'x'.join(map(str, size))} crop at offset {list(starts)} does not fit the {fmt(ins[0])} "
                          "input", "the offset plus the size must stay inside the input", arg="offset")
        return (ins[0][0], *size)

    def label(self, a, out):
        return f"crop {'x'.join(map(str, out[1:]))}"

    def forward(self, a, x, mod, ins):
        slices = [":", ":"]
        sizes = expand(a["size"], len(ins[0]) - 1, "size")
        for start, s in zip(self._starts(a, ins[0]), sizes):
            slices.append(f"{start}:{start + s}")
        return f"{x[0]}[{', '.join(slices)}]"


@register
class Subsample(Op):
    name = "subsample"
    args = (Arg("stride", "int", 2),)
    category = "shape"
    doc = "Keep every stride-th position along each spatial axis (ResNet option-A shortcut)."

    def infer(self, a, ins):
        spatial_rank(ins[0], self.name)
        return (ins[0][0], *(-(-d // a["stride"]) for d in ins[0][1:]))

    def label(self, a, out):
        return f"subsample /{a['stride']}"

    def forward(self, a, x, mod, ins):
        s = a["stride"]
        return f"{x[0]}[:, :, {', '.join(['::' + str(s)] * (len(ins[0]) - 1))}]"
