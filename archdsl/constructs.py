"""Connection constructs: the wiring patterns that define modern CNNs.

Each construct expands into ordinary IR ops when a network is elaborated:

- ``concat { branch {..} .. }`` and ``sum { branch {..} .. }``: parallel branches
  (Inception; an empty branch is the identity);
- ``residual(shortcut, drop_path) { F }``: y = F(x) + S(x), S identity, projection or option A;
- ``dense(layers) { layer }``: DenseNet connectivity;
- ``highway(kernel, bias) { H }``: y = H*T + x*(1-T), T = sigmoid(conv or fc);
- ``groups(n) { body }``: split channels into n groups, body per group, concat;
- ``clique(layers, k, ...)``: a CliqueNet block (see archdsl/ops/clique.py);
- ``reuse(name)``: a layer or block instance applied again with the same weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from archdsl.binding import bind_op_args
from archdsl.diagnostics import error
from archdsl.evaluate import TensorInfo, Unknown, format_shape, format_value
from archdsl.ir import data_inputs, topological_order
from archdsl.ops import OPS, OpError
from archdsl.ops.base import Arg
from archdsl.ops.clique import check_clique_args, updated_in_stage2
from archdsl.syntax import ast
from archdsl.values import Frame, Naming


class Context(Protocol):
    """What a construct may use of the elaborator: the graph builder (archdsl/builder.py) and running
    bodies and arguments. Constructs never import the interpreter."""

    g: object  # the IR graph, read-only here
    scopes: dict
    instances: dict

    def make(self, op, values, inputs, step, naming, local=None, claimed=False) -> TensorInfo: ...
    def add_node(self, name, op, args, inputs, span, shape, params, macs, shares=None) -> TensorInfo: ...
    def mark_edge(self, source, target, port, **attrs) -> None: ...
    def add_edge(self, source, target, port, kind, **attrs) -> None: ...
    def several(self, name, outputs): ...
    def record_scope(self, path, kind, definition, args, span) -> None: ...
    def label(self, label, frame) -> str: ...
    def evaluate(self, expr, frame, incoming=None): ...
    def step_args(self, step, frame, incoming): ...
    def run_body(self, body, frame) -> None: ...


class Construct(ABC):
    name = ""
    args: tuple = ()
    op = False  # True when the name is also an op usable without a body (`[a, b] -> concat`)
    needs_body = True
    takes_body = True  # False: a body is an error (set where a body is optional or absent)
    doc = ""

    def run(self, elab: Context, step, stream, frame: Frame):
        if self.needs_body and step.body is None:
            raise error(f"'{self.name}' needs a body: {self.name}{'(...)' if self.args else ''} {{ ... }}", step.span)
        if not self.takes_body and step.body is not None:
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
        if step.label is not None:
            name = frame.naming.claim(elab.label(step.label, frame), step.label.span)
        elif labelled_only:
            return frame.naming, None
        else:
            name = frame.naming.auto(self.name)
        naming = Naming(frame.naming.path + (name,))
        return naming, name

    def body(self, elab, body, frame, naming, stream, branches=None):
        inner = Frame(env=frame.env.child(), naming=naming, stream=stream, kind=frame.kind, branches=branches,
                      expects=frame.expects, ns=frame.ns)
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


def sub_level(elab, naming, base: str, kind: str, step, args=None):
    inner = Naming(naming.path + (naming.fresh(base),))
    elab.record_scope(inner.path, kind, kind, args or {}, step.span)
    return inner


def run_branch(elab, stmt, frame):
    """One `branch` of a concat or sum body; returns the branch's output tensor."""
    naming = frame.naming
    if stmt.label is not None:
        naming = Naming(naming.path + (naming.claim(elab.label(stmt.label, frame), stmt.label.span),))
        elab.record_scope(naming.path, "branch", "branch", {}, stmt.span)
    inner = Frame(env=frame.env.child(), naming=naming, stream=frame.stream, kind=frame.kind,
                  expects=frame.expects, ns=frame.ns)
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
           "the newest versions of all others with the same forward weights. Outputs: transit (main) and feature. "
           "An optional body is each layer's transformation after its aggregated edge convolution.")

    def expand(self, elab, step, x, frame, args):
        try:
            check_clique_args(args["layers"], args["k"], args["mode"], args["partial"], args["rounds"])
        except OpError as exc:
            raise error(exc.message, step.span, exc.help) from None
        naming, name = self.level(elab, step, frame, labelled_only=False)
        elab.record_scope(naming.path, self.name, self.name, args, step.span)
        if step.body is not None:
            transit, feature = self.with_body(elab, step, x, frame, args, naming)
            frame.env.values[name] = elab.several(".".join(naming.path), {"transit": transit, "feature": feature})
            return transit
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
                    elab.mark_edge(source.node, layer.node, j, weight=f"W_{j}_{i}", shared=shared and j > 0)
                elif shared:
                    elab.add_edge(source.node, layer.node, j, "feedback", weight=f"W_{j}_{i}",
                                    shared=False)
        mode = args["mode"]
        transit = elab.make("clique_output", {"stage": "I" if mode == "I+I" else "II", "with_input": False}, layers,
                            step, naming, "transit")
        feature = elab.make("clique_output", {"stage": "II" if mode == "II+II" else "I", "with_input": True},
                            [x, *layers], step, naming, "feature")
        frame.env.values[name] = elab.several(".".join(naming.path), {"transit": transit, "feature": feature})
        return transit

    def with_body(self, elab, step, x, frame, args, naming):
        """A clique block from primitives, each layer's transformation given by the body.

        Update of layer i from X_j (j != i): concat -> bn -> relu -> split into the X_j, one conv W_ji per
        part (no bias), add: the aggregated edge convolution; then the body. Stage II reuses W_ji for j < i
        and the body's layers (same weights) and has its own BN; W_ji for j > i are new.
        """
        if args["bottleneck"] or args["dropout"]:
            raise error("clique with a body: write the bottleneck or the dropout in the body", step.span,
                        "e.g. clique(4, 36) { bn -> relu -> conv(36, 3, bias = false) -> dropout(0.2) }")
        layers, k = args["layers"], args["k"]
        newest = {0: x}
        edges: dict[tuple[int, int], TensorInfo] = {}  # (j, i) -> the first application of W_ji
        bodies: dict[int, tuple] = {}  # i -> layer i's body in stage I: (its scope, (its input, its output))
        for i in range(1, layers + 1):
            level = sub_level(elab, naming, f"x{i}", "clique_update", step)
            newest[i] = self.update(elab, step, frame, level, i, [(j, newest[j]) for j in range(i)], edges, k, args)
            bodies[i], newest[i] = self.run_body(elab, step, frame, level, newest[i])
        stage1 = dict(newest)
        stage2 = args["mode"] != "I+I"
        for r in range(1, (args["rounds"] if stage2 else 0) + 1):
            for i in range(1, layers + 1):
                if not updated_in_stage2({"index": i, **args}):
                    continue
                suffix = "ii" if args["rounds"] == 1 else f"r{r}"
                level = sub_level(elab, naming, f"x{i}_{suffix}", "clique_update", step)
                sources = [(j, newest[j]) for j in range(1, layers + 1) if j != i]
                out = self.update(elab, step, frame, level, i, sources, edges, k, args)
                scope, (source, result) = bodies[i]
                newest[i] = Reuse.replay(elab, scope, source, out, level.full("body"), step)[result]
        final = newest if stage2 else stage1
        transit_from = stage1 if args["mode"] == "I+I" else final
        feature_from = final if args["mode"] == "II+II" else stage1
        transit = elab.make("concat", {}, [transit_from[i] for i in range(1, layers + 1)], step, naming, "transit")
        feature = elab.make("concat", {}, [x] + [feature_from[i] for i in range(1, layers + 1)], step, naming,
                            "feature")
        return transit, feature

    @staticmethod
    def update(elab, step, frame, level, i, sources, edges, k, args):
        """concat -> bn -> relu -> split -> one conv per source (W_ji) -> add."""
        tensors = [t for _, t in sources]
        t = tensors[0] if len(tensors) == 1 else elab.make("concat", {}, tensors, step, level)
        t = elab.make("relu", {}, [elab.make("bn", {}, [t], step, level)], step, level)
        parts = [t]
        if len(tensors) > 1:
            first = elab.make("split", {"sizes": [s.shape[0] for s in tensors]}, [t], step, level, "split")
            parts = list(elab.instances[first.node].outputs.values())
        terms = []
        for (j, _), part in zip(sources, parts):
            if (j, i) in edges:
                terms.append(Reuse.copy(elab, edges[(j, i)].node, level.full(level.fresh(f"w{j}")), [part], step))
            else:
                edges[(j, i)] = elab.make("conv", {"out": k, "kernel": args["kernel"], "bias": False}, [part], step,
                                          level, f"w{j}")
                terms.append(edges[(j, i)])
        return terms[0] if len(terms) == 1 else elab.make("add", {}, terms, step, level)

    def run_body(self, elab, step, frame, level, x):
        """The body on one layer's aggregated edge convolution, in the level's sub-level `body`:
        ((its scope, (its input node, its output node)), its output)."""
        body = sub_level(elab, level, "body", "group", step)
        out = self.result(elab, step.body, frame, body, x)
        return (".".join(body.path), (x.node, out.node)), out


@register
class Reuse(Construct):
    name = "reuse"
    needs_body = takes_body = False
    args = (Arg("layer", "any"),)
    doc = ("Apply an already-defined layer, or a labelled block instance, to another tensor with the same weights "
           "(counted once); the input shape must equal the original's.")

    def expand(self, elab, step, stream, frame, args):
        value = args["layer"]
        expr = step.args[0] if step.args else step.kwargs[0][1]
        written = expr.id if isinstance(expr, ast.Name) else "the layer"
        if isinstance(value, TensorInfo):  # a layer, or the output of a block instance labelled `written`
            scope = next((path for path, info in elab.scopes.items() if path.rsplit(".", 1)[-1] == written
                          and value.node in info.get("outputs", {}).values()), None)
        else:
            scope = getattr(value, "name", None) if hasattr(value, "outputs") else None
        if scope is None:
            return self.layer(elab, step, stream, frame, value, written, expr.span)
        return self.block(elab, step, stream, frame, scope, written)

    def _level(self, elab, step, frame) -> str:
        if step.label is not None:
            return frame.naming.claim(elab.label(step.label, frame), step.label.span)
        return frame.naming.auto("reuse")

    def layer(self, elab, step, x, frame, value, written, span):
        """One layer again: a node with the original's op and arguments, no parameters of its own."""
        if not isinstance(value, TensorInfo):
            raise error(f"reuse needs a layer, found {format_value(value)}", span,
                        "name a layer with 'as NAME' or 'NAME = ...', then write reuse(NAME)")
        g = elab.g
        original = g.nodes[value.node]
        sources = data_inputs(g, value.node)
        if original["op"] == "input" or len(sources) != 1 or original["op"] in ("clique_layer", "clique_output"):
            what = "an input" if original["op"] == "input" else f"a '{original['op']}' with {len(sources)} inputs"
            raise error(f"reuse: '{written}' is {what}, not a one-input layer", span,
                        "reuse applies a layer (conv, fc, bn, ...) or a labelled block instance")
        self.check_shape(g.nodes[sources[0]]["shape"], x, written, step)
        name = frame.naming.full(self._level(elab, step, frame))
        return self.copy(elab, value.node, name, [x], step)

    def block(self, elab, step, x, frame, scope, written):
        """A block instance again: each of its layers applied in order, sharing their weights."""
        g, prefix = elab.g, scope + "."
        members = [n for n in topological_order(g) if n.startswith(prefix)]
        outside = {u for n in members for u, _, d in g.in_edges(n, data=True) if not u.startswith(prefix)}
        if len(outside) != 1 or any(d["kind"] != "data" for n in members for *_, d in g.in_edges(n, data=True)):
            raise error(f"reuse: block instance '{written}' reads {len(outside)} tensors from outside it", step.span,
                        "reuse applies a block instance with one input and no clique inside")
        source = outside.pop()
        self.check_shape(g.nodes[source]["shape"], x, written, step)
        level = frame.naming.full(self._level(elab, step, frame))
        mapping = self.replay(elab, scope, source, x, level, step)
        outputs = {k: mapping[v] for k, v in elab.scopes[scope]["outputs"].items()}
        main = next(iter(outputs.values()))
        if len(outputs) > 1:
            elab.several(level, outputs)
        return main

    @staticmethod
    def replay(elab, scope: str, source: str, x: TensorInfo, level: str, step) -> dict:
        """Apply the layers of `scope` (which read the node `source` from outside) to `x` again, as the scope
        `level`, sharing their weights; returns old node -> new tensor (`source` -> `x`)."""
        g, prefix = elab.g, scope + "."
        mapping = {source: x}
        for node in [n for n in topological_order(g) if n.startswith(prefix)]:
            inputs = [mapping[u] for u in data_inputs(g, node)]
            mapping[node] = Reuse.copy(elab, node, level + "." + node[len(prefix):], inputs, step)
        for path, info in list(elab.scopes.items()):
            if path == scope or path.startswith(prefix):
                copied = {**info, "span": step.span}
                if "outputs" in info:
                    copied["outputs"] = {k: mapping[v].node for k, v in info["outputs"].items()}
                elab.scopes[level + path[len(scope):]] = copied
        return mapping

    @staticmethod
    def check_shape(expected, x: TensorInfo, written: str, step) -> None:
        if tuple(expected) != tuple(x.shape):
            raise error(f"reuse: '{written}' was defined on a {format_shape(expected)} input; "
                        f"this input is {format_shape(x.shape)}", step.span,
                        "shared weights need the original's input shape; resize or project the input first")

    @staticmethod
    def copy(elab, node: str, name: str, inputs: list, step) -> TensorInfo:
        """A node applying `node`'s weights to `inputs`: its op, arguments, shape and MACs, no parameters."""
        data = elab.g.nodes[node]
        shapes = [elab.g.nodes[u]["shape"] for u in data_inputs(elab.g, node)]
        owns = OPS[data["op"]].module(data["args"], shapes, data["shape"]) is not None
        return elab.add_node(name, data["op"], data["args"], inputs, step.span, data["shape"], 0, data["macs"],
                             shares=(data.get("shares") or node) if owns else None)
