"""CliqueNet's clique block as IR ops (Yang et al., CVPR 2018, arXiv:1802.10419).

A block of L layers X_1..X_L (k channels each) over an input X_0 is kept in the
IR as L ``clique_layer`` nodes: node i has a data edge from X_0 and from every
X_j with j < i, and a *feedback* edge from every X_j with j > i when it is
updated in stage II. Each edge j -> i stands for the filter bank W_ji; forward
edges (j < i) are shared between stage I and stage II. Two ``clique_output``
nodes concatenate the final (or stage-I) layers into the transit feature and
the block feature. The backend compiles each layer to one weight tensor laid
out as [W_0i | W_1i .. W_(i-1)i | W_(i+1)i .. W_Li] (stage I uses the prefix,
stage II the slice after W_0i), one concatenation and one convolution per update.
"""

from __future__ import annotations

from archdsl.ops.base import Arg, Op, OpError, fmt, register
from archdsl.ops.merge import Concat

MODES = ("II+II", "I+II", "I+I")


def updated_in_stage2(a: dict) -> bool:
    """Whether layer a['index'] is recomputed in stage II."""
    return a["mode"] != "I+I" and (a["partial"] is None or a["index"] <= a["partial"])


@register
class CliqueLayer(Op):
    name = "clique_layer"
    args = (
        Arg("index", "int"), Arg("layers", "int"), Arg("k", "int"), Arg("kernel", "int", 3),
        Arg("bottleneck", "bool", False), Arg("rounds", "int", 1), Arg("mode", "str", "II+II"),
        Arg("partial", "any", None), Arg("dropout", "float", 0.0),
    )
    arity = (1, None)
    category = "clique"
    doc = "Layer X_i of a clique block; data inputs are X_0, X_1..X_(i-1) (feedback inputs are not shape inputs)."

    def infer(self, a, ins):
        if len(ins[0]) < 2:
            raise OpError(f"a clique block needs a spatial input, found {fmt(ins[0])}")
        for j, shape in enumerate(ins[1:], 1):
            if shape[1:] != ins[0][1:]:
                raise OpError(f"clique layer X_{j} is {fmt(shape)} but X_0 is {fmt(ins[0])}")
        return (a["k"], *ins[0][1:])

    def _edge_kernel(self, a) -> int:
        return 1 if a["bottleneck"] else a["kernel"] ** 2

    def input_channels(self, a: dict, c0: int) -> tuple[int, int]:
        """Input channels of the stage-I and stage-II convolutions of this layer."""
        k, i, n = a["k"], a["index"], a["layers"]
        return c0 + (i - 1) * k, ((n - 1) * k if updated_in_stage2(a) else 0)

    def params(self, a, ins, out):
        k, ks = a["k"], self._edge_kernel(a)
        stage1, stage2 = self.input_channels(a, ins[0][0])
        rounds = a["rounds"] if stage2 else 0
        weights = (stage1 + (stage2 - (a["index"] - 1) * k if stage2 else 0)) * k * ks
        norms = 2 * stage1 + rounds * 2 * stage2
        if a["bottleneck"]:
            weights += 9 * k * k
            norms += 2 * k * (1 + rounds)
        return weights + norms

    def macs(self, a, ins, out):
        k, ks = a["k"], self._edge_kernel(a)
        stage1, stage2 = self.input_channels(a, ins[0][0])
        rounds = a["rounds"] if stage2 else 0
        pixels = 1
        for d in out[1:]:
            pixels *= d
        total = pixels * k * ks * (stage1 + rounds * stage2)
        if a["bottleneck"]:
            total += pixels * 9 * k * k * (1 + rounds)
        return total

    def label(self, a, out):
        return f"X{a['index']}"

    def module(self, a, ins, out):
        stage1, stage2 = self.input_channels(a, ins[0][0])
        parts = [str(ins[0][0]), str(stage1), str(stage2), str(a["k"]), f"kernel_size={a['kernel']}"]
        if a["bottleneck"]:
            parts.append("bottleneck=True")
        if stage2 and a["rounds"] != 1:
            parts.append(f"rounds={a['rounds']}")
        if a["dropout"]:
            parts.append(f"dropout={a['dropout']}")
        return f"CliqueLayer({', '.join(parts)})"


@register
class CliqueOutput(Op):
    name = "clique_output"
    args = (Arg("stage", "str"), Arg("with_input", "bool"))
    arity = (1, None)
    category = "merge"
    doc = "A clique block's transit feature (X_1..X_L) or block feature (X_0, X_1..X_L), from stage I or II."

    def infer(self, a, ins):
        if a["stage"] not in ("I", "II"):
            raise OpError(f"clique_output stage must be 'I' or 'II', found {a['stage']!r}", arg="stage")
        return (sum(s[0] for s in ins), *ins[0][1:])

    def label(self, a, out):
        return ("block feature" if a["with_input"] else "transit") + f" ({a['stage']})"

    forward = Concat.forward  # the same torch.cat along channels


def check_clique_args(layers: int, k: int, mode: str, partial, rounds: int) -> None:
    """Argument checks for the `clique(...)` construct, before any node exists."""
    if layers < 2:
        raise OpError(f"a clique block needs at least 2 layers, found {layers}", arg="layers")
    if k < 1:
        raise OpError(f"k must be positive, found {k}", arg="k")
    if mode not in MODES:
        raise OpError(f"unknown clique mode '{mode}'", "use 'II+II' (the paper's), 'I+II' or 'I+I'", arg="mode")
    if rounds < 1:
        raise OpError(f"rounds must be at least 1, found {rounds}", arg="rounds")
    if partial is not None and not (isinstance(partial, int) and 1 <= partial <= layers):
        raise OpError(f"partial must be a layer count from 1 to {layers}, found {partial!r}", arg="partial")
    if partial is not None and mode == "I+I":
        raise OpError("partial feedback needs stage II; mode 'I+I' has none", arg="partial")
