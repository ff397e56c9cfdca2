"""Multi-input and channel ops: add, concat, mul, gate, slice, split, shuffle, pad_channels."""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, fmt, fmt_hw, register


def _describe_mismatch(ins, axis_from: int) -> tuple[str, tuple[int, int]] | None:
    """The first input whose shape disagrees with input 1 (from axis `axis_from` on): a message and
    the two inputs' indices."""
    first = ins[0]
    for i, shape in enumerate(ins[1:], 2):
        if len(shape) != len(first):
            return f"input {i} is {fmt(shape)}, input 1 is {fmt(first)}", (i - 1, 0)
        if shape[axis_from:] != first[axis_from:]:
            if axis_from == 1:
                return f"input {i} is {fmt_hw(shape)}, input 1 is {fmt_hw(first)}", (i - 1, 0)
            return f"input {i} is {fmt(shape)}, input 1 is {fmt(first)}", (i - 1, 0)
    return None


@register
class Add(Op):
    name = "add"
    fresh_output = True
    arity = (2, None)
    category = "merge"
    doc = "Element-wise sum of two or more tensors of exactly the same shape (residual connections)."

    def infer(self, a, ins):
        problem = _describe_mismatch(ins, 0)
        if problem:
            raise OpError(f"add: {problem[0]}",
                          "shapes must match exactly; use a projection or padded shortcut (residual shortcut='B' or 'A')",
                          inputs=problem[1])
        return ins[0]

    def label(self, a, out):
        return "+"

    def forward(self, a, x, mod, ins):
        return " + ".join(x)

    def forward_inplace(self, a, x):
        """The first addend, fresh and read by nothing else, takes the sum (torchvision's
        `out += identity`): one tensor fewer to allocate, the same additions in the same order."""
        return x[0] + "".join(f".add_({y})" for y in x[1:])


@register
class Concat(Op):
    name = "concat"

    def returns_fresh(self, a, n_inputs):
        return n_inputs > 1  # a one-input concat is its input
    arity = (1, None)
    category = "merge"
    doc = "Concatenation along channels; every other axis must match."

    def infer(self, a, ins):
        problem = _describe_mismatch(ins, 1)
        if problem:
            raise OpError(f"concat: {problem[0]}", "concat joins channels; resample or crop the inputs to one size first",
                          inputs=problem[1])
        return (sum(s[0] for s in ins), *ins[0][1:])

    def label(self, a, out):
        return "concat"

    def forward(self, a, x, mod, ins):
        return f"torch.cat([{', '.join(x)}], 1)" if len(x) > 1 else x[0]


@register
class Mul(Op):
    name = "mul"
    fresh_output = True
    arity = (2, 2)
    category = "merge"
    doc = ("Element-wise product; a second input of [C] or [C, 1, 1] (one value per channel) scales the channels "
           "of the first (squeeze-and-excitation).")

    def infer(self, a, ins):
        x, y = ins
        per_channel = y[0] == x[0] and (len(y) == 1 or (len(y) == len(x) and all(d == 1 for d in y[1:])))
        if x == y or per_channel:
            return x
        raise OpError(f"mul: input 2 is {fmt(y)}, input 1 is {fmt(x)}",
                      "give equal shapes, or one value per channel ([C] or [C, 1, 1]) to scale the channels")

    def label(self, a, out):
        return "x"

    def forward(self, a, x, mod, ins):
        if len(ins[1]) == 1 and len(ins[0]) > 1:
            return f"{x[0]} * {x[1]}[:, :{', None' * (len(ins[0]) - 1)}]"
        return f"{x[0]} * {x[1]}"


@register
class Gate(Op):
    name = "gate"
    fresh_output = True
    arity = (3, 3)
    category = "merge"
    doc = "Highway gate over (x, H, T): y = H*T + x*(1 - T), T in (0, 1) from a sigmoid."

    def infer(self, a, ins):
        problem = _describe_mismatch(ins, 0)
        if problem:
            raise OpError(f"gate: {problem[0]}", "a highway layer must keep the shape of its input", inputs=problem[1])
        return ins[0]

    def label(self, a, out):
        return "gate"

    def forward(self, a, x, mod, ins):
        carry, transform, gate = x
        return f"{transform} * {gate} + {carry} * (1 - {gate})"


@register
class Slice(Op):
    name = "slice"
    args = (Arg("start", "int"), Arg("stop", "int"))
    category = "shape"
    doc = "Channels start..stop-1 of the input (one group of a split)."

    def infer(self, a, ins):
        c = ins[0][0]
        if not 0 <= a["start"] < a["stop"] <= c:
            raise OpError(f"slice {a['start']}:{a['stop']} is outside the {c} channels", arg="stop")
        return (a["stop"] - a["start"], *ins[0][1:])

    def label(self, a, out):
        return f"channels {a['start']}:{a['stop']}"

    def forward(self, a, x, mod, ins):
        return f"{x[0]}[:, {a['start']}:{a['stop']}]"


@register
class Split(Op):
    name = "split"
    args = (Arg("sizes", "ints"), Arg("index", "int", 0))
    category = "shape"
    doc = ("Split the channels into n equal chunks (`split(n)`) or chunks of the given sizes (`split([a, b, c])`); "
           "several outputs, destructured in order: `a, b = x -> split(2)`.")

    def outputs(self, a, ins):
        c, sizes = ins[0][0], a["sizes"]
        if isinstance(sizes, int):
            if sizes < 1 or c % sizes:
                raise OpError(f"split: {c} channels do not divide into {sizes} equal chunks",
                              "give a divisor of the channels, or the chunk sizes: split([a, b, ...])", arg="sizes")
            sizes = [c // sizes] * sizes
        elif min(sizes) < 1 or sum(sizes) != c:
            raise OpError(f"split: the sizes {fmt(sizes)} add up to {sum(sizes)}, but the input has {c} channels",
                          "give positive sizes that add up to the channels", arg="sizes")
        return [(size, *ins[0][1:]) for size in sizes]

    def _range(self, a, ins) -> tuple[int, int]:
        sizes = [s[0] for s in self.outputs(a, ins)]
        if not 0 <= a["index"] < len(sizes):
            raise OpError(f"split has {len(sizes)} outputs, not an output {a['index']}", arg="index")
        start = sum(sizes[:a["index"]])
        return start, start + sizes[a["index"]]

    def infer(self, a, ins):
        start, stop = self._range(a, ins)
        return (stop - start, *ins[0][1:])

    def label(self, a, out):
        return f"split {a['index'] + 1}"

    def forward(self, a, x, mod, ins):
        start, stop = self._range(a, ins)
        return f"{x[0]}[:, {start}:{stop}]"


@register
class Shuffle(Op):
    name = "shuffle"
    args = (Arg("groups", "int"),)
    category = "shape"
    doc = "ShuffleNet channel shuffle: reshape to (g, C/g), transpose, flatten."

    def infer(self, a, ins):
        c = ins[0][0]
        if a["groups"] < 1 or c % a["groups"]:
            raise OpError(f"shuffle: {c} channels are not divisible by groups={a['groups']}",
                          "make the channels a multiple of the groups", arg="groups")
        return ins[0]

    def label(self, a, out):
        return f"shuffle, g={a['groups']}"

    def forward(self, a, x, mod, ins):
        g, c = a["groups"], ins[0][0]
        return f"{x[0]}.unflatten(1, ({g}, {c // g})).transpose(1, 2).flatten(1, 2)"


@register
class PadChannels(Op):
    name = "pad_channels"
    fresh_output = True
    args = (Arg("out", "int"),)
    category = "shape"
    doc = "Zero-pad the channel axis up to `out` channels (ResNet option-A shortcut)."

    def infer(self, a, ins):
        if a["out"] < ins[0][0]:
            raise OpError(f"pad_channels: {a['out']} is fewer than the {ins[0][0]} input channels", arg="out")
        return (a["out"], *ins[0][1:])

    def label(self, a, out):
        return f"zero-pad to {a['out']}"

    def forward(self, a, x, mod, ins):
        extra = a["out"] - ins[0][0]
        return f"F.pad({x[0]}, ({', '.join(['0, 0'] * (len(ins[0]) - 1))}, 0, {extra}))"
