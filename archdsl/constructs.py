"""Connection constructs: the wiring patterns that define modern CNNs.

Each construct expands into ordinary IR ops when a network is elaborated:

- ``concat { branch {..} .. }`` and ``sum { branch {..} .. }``: parallel branches
  (Inception; an empty branch is the identity);
- ``residual(shortcut, drop_path) { F }``: y = F(x) + S(x), S identity, projection or option A;
- ``dense(layers) { layer }``: DenseNet connectivity;
- ``highway(kernel, bias) { H }``: y = H*T + x*(1-T), T = sigmoid(conv or fc);
- ``groups(n) { body }``: split channels into n groups, body per group, concat;
- ``clique(layers, k, ...)``: a CliqueNet block (see archdsl/ops/clique.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from archdsl.diagnostics import error
from archdsl.evaluate import TensorInfo, Unknown, format_shape
from archdsl.ops import OpError
from archdsl.ops.base import Arg
from archdsl.ops.clique import check_clique_args, updated_in_stage2


class Construct(ABC):
    name = ""
    args: tuple = ()
    op = False  # True when the name is also an op usable without a body (`[a, b] -> concat`)
    needs_body = True
    doc = ""

    def run(self, elab, step, stream, frame):
        from archdsl.elaborate import bind_op_args

        if self.needs_body and step.body is None:
            raise error(f"'{self.name}' needs a body: {self.name}{'(...)' if self.args else ''} {{ ... }}", step.span)
        if not self.needs_body and step.body is not None:
            raise error(f"'{self.name}' does not take a body", step.span)
        if isinstance(stream, list):
            if len(stream) != 1:
                raise error(f"'{self.name}' takes one input, found {len(stream)}", step.span)
            stream = stream[0]
        positional, keywords = elab.step_args(step, frame, stream)
        args = bind_op_args(self, positional, keywords, step.span)
        return self.expand(elab, step, stream, frame, args)

    @abstractmethod
    def expand(self, elab, step, x: TensorInfo, frame, args: dict):
        """Add the construct's IR nodes for input `x`; returns its main output."""

    # helpers
    def level(self, elab, step, frame, labelled_only: bool):
        """The naming for the construct's contents: a new level, or the enclosing one."""
        from archdsl.elaborate import Naming

        if step.label is not None:
            name = frame.naming.claim(elab._label(step.label, frame), step.label.span)
        elif labelled_only:
            return frame.naming, None
        else:
            name = frame.naming.auto(self.name)
        naming = Naming(frame.naming.path + (name,))
        return naming, name

    def body(self, elab, body, frame, naming, stream, branches=None):
        from archdsl.elaborate import Frame

        inner = Frame(env=frame.env.child(), naming=naming, stream=stream, kind=frame.kind, branches=branches,
                      expects=frame.expects)
        elab.run_body(body, inner)
        return inner

    def result(self, elab, body, frame, naming, stream) -> TensorInfo:
        """Run a body on `stream` and return its output (Unknown if an error was already reported)."""
        out = self.body(elab, body, frame, naming, stream).stream
        if not isinstance(out, TensorInfo) or out.shape is None:
            raise Unknown()
        return out


CONSTRUCTS: dict[str, Construct] = {}


def register(cls):
    CONSTRUCTS[cls.name] = cls()
    return cls


def fresh(naming, base: str) -> str:
    """`base` if unused in this scope, else base2, base3..."""
    if base not in naming.used:
        naming.used.add(base)
        return base
    return naming.auto(base)


def sub_level(elab, naming, base: str, kind: str, step, args=None):
    from archdsl.elaborate import Naming

    inner = Naming(naming.path + (fresh(naming, base),))
    elab.record_scope(inner.path, kind, kind, args or {}, step.span)
    return inner


def run_branch(elab, stmt, frame):
    """One `branch` of a concat or sum body; returns the branch's output tensor."""
    from archdsl.elaborate import Frame, Naming

    naming = frame.naming
    if stmt.label is not None:
        naming = Naming(naming.path + (naming.claim(elab._label(stmt.label, frame), stmt.label.span),))
        elab.record_scope(naming.path, "branch", "branch", {}, stmt.span)
    inner = Frame(env=frame.env.child(), naming=naming, stream=frame.stream, kind=frame.kind,
                  expects=frame.expects)
    elab.run_body(stmt.body, inner)
    return inner.stream


class _Parallel(Construct):
    merge = ""
    op = True

    def expand(self, elab, step, x, frame, args):
        naming, name = self.level(elab, step, frame, labelled_only=True)
        if name:
            elab.record_scope(naming.path, self.name, self.name, args, step.span)
        inner = self.body(elab, step.body, frame, naming, x, branches=[])
        if not inner.branches:
            raise error(f"'{self.name}' needs at least one 'branch {{ ... }}'", step.span)
        if any(getattr(b, "shape", None) is None for b in inner.branches):
            raise Unknown()
        return elab.make(self.merge, {}, inner.branches, step, naming)


@register
class ConcatConstruct(_Parallel):
    name, merge = "concat", "concat"
    doc = "Parallel branches over the same input, concatenated along channels (Inception)."


@register
class SumConstruct(_Parallel):
    name, merge = "sum", "add"
    doc = "Parallel branches over the same input, summed; an empty branch is the identity."


@register
class Residual(Construct):
    name = "residual"
    args = (Arg("shortcut", "str", "B"), Arg("drop_path", "float", None))
    doc = ("y = F(x) + S(x). shortcut: 'A' zero-pad (+ subsample), 'B' projection only when the shape changes, "
           "'C' projection always, 'identity', 'if_same' (the identity when F keeps the shape, else no shortcut: "
           "inverted residuals), or 'none' (a plain network: y = F(x)). drop_path = p adds stochastic depth "
           "to F where there is a shortcut.")
    modes = ("A", "B", "C", "identity", "if_same", "none")

    def expand(self, elab, step, x, frame, args):
        mode = args["shortcut"]
        if mode not in self.modes:
            raise error(f"unknown shortcut '{mode}'", step.span, "use 'A', 'B', 'C', 'identity', 'if_same' or 'none'")
        naming, name = self.level(elab, step, frame, labelled_only=True)
        if name:
            elab.record_scope(naming.path, self.name, self.name, args, step.span)
        f = self.result(elab, step.body, frame, naming, x)
        if mode == "none" or (mode == "if_same" and f.shape != x.shape):
            return f
        if args["drop_path"] is not None:
            f = elab.make("drop_path", {"p": args["drop_path"]}, [f], step, naming)
        shortcut = x
        if f.shape != x.shape or mode == "C":
            if mode == "identity":
                raise error(f"residual: the body gives {format_shape(f.shape)} but the input is {format_shape(x.shape)}",
                            step.span, "shortcut='identity' needs equal shapes; use 'B' (projection) or 'A' (zero-pad)")
            shortcut = self.shortcut(elab, step, x, f, naming, mode)
        return elab.make("add", {}, [f, shortcut], step, naming)

    def shortcut(self, elab, step, x, f, naming, mode):
        if len(x.shape) != len(f.shape):
            raise error(f"residual: the body gives {format_shape(f.shape)} for a {format_shape(x.shape)} input", step.span)
        # the smallest stride s with ceil(in / s) == out on every axis (147 -> 74 is stride 2, as for a
        # 'same'-padded strided body); a 1x1 conv with stride s and no padding gives exactly that size
        sizes = list(zip(x.shape[1:], f.shape[1:]))
        stride = next((s for s in range(1, max([a for a, _ in sizes], default=1) + 1)
                       if all(-(-a // s) == b for a, b in sizes)), None)
        if stride is None:
            raise error(f"residual: cannot match the {format_shape(x.shape)} input to the {format_shape(f.shape)} body "
                        "output by striding", step.span, "the body may only downsample by an integer stride")
        inner = sub_level(elab, naming, "shortcut", "shortcut", step, {"mode": mode})
        if mode == "A":
            if f.shape[0] < x.shape[0]:
                raise error("residual: option A cannot reduce channels", step.span, "use shortcut='B'")
            t = x
            if stride > 1:
                t = elab.make("subsample", {"stride": stride}, [t], step, inner)
            if f.shape[0] > x.shape[0]:
                t = elab.make("pad_channels", {"out": f.shape[0]}, [t], step, inner)
            return t
        t = elab.make("conv", {"out": f.shape[0], "kernel": 1, "stride": stride, "pad": 0, "bias": False}, [x], step, inner)
        return elab.make("bn", {}, [t], step, inner)


@register
class Dense(Construct):
    name = "dense"
    args = (Arg("layers", "int"),)
    doc = "DenseNet connectivity: layer i sees concat(input, layer 1..i-1); the output concatenates all."

    def expand(self, elab, step, x, frame, args):
        if args["layers"] < 1:
            raise error(f"dense needs at least 1 layer, found {args['layers']}", step.span)
        naming, _name = self.level(elab, step, frame, labelled_only=False)
        elab.record_scope(naming.path, self.name, self.name, args, step.span)
        features = [x]
        for i in range(1, args["layers"] + 1):
            layer = sub_level(elab, naming, f"layer{i}", "dense_layer", step)
            source = features[0] if i == 1 else elab.make("concat", {}, features, step, layer)
            out = self.result(elab, step.body, frame, layer, source)
            features.append(out)
        return elab.make("concat", {}, features, step, naming)


@register
class Highway(Construct):
    name = "highway"
    args = (Arg("kernel", "int", 3), Arg("bias", "float", -1.0))
    doc = "Highway layer: y = H(x)*T(x) + x*(1 - T(x)); T = sigmoid(conv or fc) with bias initialised to `bias`."

    def expand(self, elab, step, x, frame, args):
        naming, _name = self.level(elab, step, frame, labelled_only=False)
        elab.record_scope(naming.path, self.name, self.name, args, step.span)
        h = self.result(elab, step.body, frame, naming, x)
        if h.shape != x.shape:
            raise error(f"highway: H gives {format_shape(h.shape)} but the input is {format_shape(x.shape)}",
                        step.span, "a highway layer keeps its width; change widths in a plain layer before it")
        if len(x.shape) == 1:
            t = elab.make("fc", {"out": x.shape[0], "bias_init": args["bias"]}, [x], step, naming, "transform")
        else:
            t = elab.make("conv", {"out": x.shape[0], "kernel": args["kernel"], "bias_init": args["bias"]}, [x], step,
                          naming, "transform")
        t = elab.make("sigmoid", {}, [t], step, naming)
        return elab.make("gate", {}, [x, h, t], step, naming, "gate")


@register
class Groups(Construct):
    name = "groups"
    args = (Arg("n", "int"),)
    doc = "Split the channels into n groups, run the body on each with its own weights, concatenate."

    def expand(self, elab, step, x, frame, args):
        n, channels = args["n"], x.shape[0]
        if n < 1 or channels % n:
            raise error(f"groups: {channels} channels are not divisible by {n}", step.span)
        naming, _name = self.level(elab, step, frame, labelled_only=False)
        elab.record_scope(naming.path, self.name, self.name, args, step.span)
        width, outs = channels // n, []
        for g in range(n):
            group = sub_level(elab, naming, f"group{g + 1}", "group", step)
            part = elab.make("slice", {"start": g * width, "stop": (g + 1) * width}, [x], step, group)
            out = self.result(elab, step.body, frame, group, part)
            outs.append(out)
        return elab.make("concat", {}, outs, step, naming)


@register
class Clique(Construct):
    name = "clique"
    needs_body = False
    args = (
        Arg("layers", "int"), Arg("k", "int"), Arg("kernel", "int", 3), Arg("bottleneck", "bool", False),
        Arg("rounds", "int", 1), Arg("mode", "str", "II+II"), Arg("partial", "any", None),
        Arg("dropout", "float", 0.0),
    )
    doc = ("CliqueNet block: stage I (dense-style), then `rounds` of stage II where each layer is recomputed from "
           "the newest versions of all others with the same forward weights. Outputs: transit (main) and feature.")

    def expand(self, elab, step, x, frame, args):
        from archdsl.elaborate import Instance

        try:
            check_clique_args(args["layers"], args["k"], args["mode"], args["partial"], args["rounds"])
        except OpError as exc:
            raise error(exc.message, step.span, exc.help) from None
        naming, name = self.level(elab, step, frame, labelled_only=False)
        elab.record_scope(naming.path, self.name, self.name, args, step.span)
        layers: list[TensorInfo] = []
        for i in range(1, args["layers"] + 1):
            a = {"index": i, **args}
            layers.append(elab.make("clique_layer", a, [x, *layers], step, naming, f"x{i}"))
        for i, layer in enumerate(layers, 1):
            shared = updated_in_stage2({"index": i, **args})
            for j, source in enumerate([x, *layers]):
                if j == i:
                    continue
                if j < i:
                    elab.g.edges[source.node, layer.node, j].update(weight=f"W_{j}_{i}", shared=shared and j > 0)
                elif shared:
                    elab.g.add_edge(source.node, layer.node, key=j, port=j, kind="feedback", weight=f"W_{j}_{i}",
                                    shared=False)
        mode = args["mode"]
        transit = elab.make("clique_output", {"stage": "I" if mode == "I+I" else "II", "with_input": False}, layers,
                            step, naming, "transit")
        feature = elab.make("clique_output", {"stage": "II" if mode == "II+II" else "I", "with_input": True},
                            [x, *layers], step, naming, "feature")
        instance = Instance(".".join(naming.path), {"transit": transit, "feature": feature})
        frame.env.values[name] = elab.instances[transit.node] = instance
        return transit
