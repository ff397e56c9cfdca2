"""The graph builder: IR nodes, edges and scopes, with every shape, count and argument checked.

The interpreter (archdsl/elaborate.py) and the connection constructs (archdsl/constructs.py) add
layers only through :class:`GraphBuilder`: `make` binds and checks an op's arguments, infers its
shape (or its several outputs' shapes), counts it and names it in its scope.
"""

from __future__ import annotations

from archdsl import limits
from archdsl.binding import arg_span, bind_op_args
from archdsl.diagnostics import ArchError, Diagnostic, Span, error
from archdsl.evaluate import TensorInfo, Unknown, format_shape
from archdsl.ir import Graph, node_facts
from archdsl.ops import OPS, OpError
from archdsl.values import Instance, Naming


class GraphBuilder:
    """Owns the IR graph being built: its nodes, edges, scopes and multi-output instances."""

    def __init__(self):
        self.g = Graph()
        self.order = 0
        self.scopes: dict[str, dict] = {}
        self.instances: dict[str, Instance] = {}  # main output node -> multi-output instance
        self.source_names: dict[str, str] = {}  # tensor node -> the name it was written as, in `[a, b] -> op`
        self.edges = self.activations = self.params = self.macs = 0  # graph size so far, for the limits

    def make(self, op: str, values, inputs: list[TensorInfo], step, naming: Naming, local: str | None = None,
             claimed: bool = False) -> TensorInfo:
        """Create one op node: bind and check its arguments, infer its shape, count it.

        `values` is (positional, keywords) from a step, or a dict from a construct; `local` is the
        layer's name (already claimed when `claimed`), else the op name numbered in its scope.
        """
        definition = OPS[op]
        positional, keywords = values if isinstance(values, tuple) else ([], {k: (v, None) for k, v in values.items()})
        args = bind_op_args(definition, positional, keywords, step.span)
        low, high = definition.arity
        if not low <= len(inputs) <= (high if high is not None else len(inputs)):
            want = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise error(f"'{op}' takes {want} inputs, found {len(inputs)}", step.span,
                        f"merge tensors with [a, b] -> {op}" if low > 1 else "use a single tensor")
        shapes = [t.shape for t in inputs]
        if any(s is None for s in shapes):
            raise Unknown()
        try:
            several = definition.outputs(args, shapes)
            if several is None:
                shape, params, macs = node_facts(op, args, shapes)
        except OpError as exc:
            span = arg_span(exc.arg, definition, positional, keywords) or step.span
            raise ArchError(Diagnostic(self._named_mismatch(op, exc, inputs), span, exc.help)) from None
        if local is None:
            name = naming.auto(op)
        else:
            name = local if claimed else naming.fresh(local)
        if several is not None:
            return self._several_outputs(op, args, inputs, step, naming, name, len(several))
        return self.add_node(naming.full(name), op, args, inputs, step.span, shape, params, macs)

    def _several_outputs(self, op: str, args: dict, inputs: list, step, naming: Naming, name: str, count: int):
        """An op with several outputs: one node per output (`NAME_1`, `NAME_2`, ...), bound together as an
        instance whose outputs are `part1`, `part2`, ...; returns the first."""
        outputs = {}
        for index in range(count):
            local = naming.fresh(f"{name}_{index + 1}")
            shape, params, macs = node_facts(op, {**args, "index": index}, [t.shape for t in inputs])
            outputs[f"part{index + 1}"] = self.add_node(naming.full(local), op, {**args, "index": index}, inputs,
                                                        step.span, shape, params, macs)
        self.several(naming.full(name), outputs)
        return next(iter(outputs.values()))

    def _named_mismatch(self, op: str, exc: OpError, inputs: list[TensorInfo]) -> str:
        """`add: 'b' is [16, 7, 7] but 'a' is [32, 7, 7]` when the disagreeing inputs were written by name."""
        if exc.inputs is None:
            return exc.message
        names = [self.source_names.get(t.node) for t in inputs]
        i, j = exc.inputs
        if not (names[i] and names[j]) or names[i] == names[j]:
            return exc.message
        return f"{op}: '{names[i]}' is {format_shape(inputs[i].shape)} but '{names[j]}' is {format_shape(inputs[j].shape)}"

    def add_node(self, name: str, op: str, args: dict, inputs: list, span: Span, shape: tuple, params: int,
                 macs: int, shares: str | None = None) -> TensorInfo:
        """One node reading `inputs` (ports in order); `shares` names the node whose weights it applies again."""
        self._check_size(span, shape, params, macs, len(inputs))
        self.order += 1
        self.g.add_node(name, op=op, args=plain(args), span=span, shape=shape, params=params, macs=macs,
                        order=self.order)
        if shares is not None:
            self.g.nodes[name]["shares"] = shares
        for port, tensor in enumerate(inputs):
            self.g.add_edge(tensor.node, name, key=port, port=port, kind="data")
        return TensorInfo(name, shape)

    def _check_size(self, span: Span, shape: tuple, params: int, macs: int, inputs: int) -> None:
        """The graph-size limits (archdsl/limits.py), checked as each node is added."""
        elements = 1
        for d in shape:
            elements *= d
        self.edges += inputs
        self.activations += elements
        self.params += params
        self.macs += macs
        limits.check("nodes", self.order + 1, span)
        limits.check("edges", self.edges, span)
        limits.check("tensor_elements", elements, span, f"a tensor of {elements:,} elements")
        limits.check("activations", self.activations, span)
        limits.check("params", self.params, span)
        limits.check("macs", self.macs, span)

    def record_scope(self, path: tuple, kind: str, definition: str, args: dict, span: Span) -> None:
        self.scopes[".".join(path)] = {"kind": kind, "definition": definition, "args": plain(args), "span": span}

    def mark_edge(self, source: str, target: str, port: int, **attrs) -> None:
        """Add attributes to the data edge into `target`'s input `port`."""
        self.g.edges[source, target, port].update(attrs)

    def add_edge(self, source: str, target: str, port: int, kind: str, **attrs) -> None:
        """An edge that is not a shape input (a clique block's feedback link)."""
        self.g.add_edge(source, target, key=port, port=port, kind=kind, **attrs)

    def several(self, name: str, outputs: dict[str, TensorInfo]) -> Instance:
        """Record a step with several named outputs; the first is its main output."""
        instance = Instance(name, outputs)
        self.instances[next(iter(outputs.values())).node] = instance
        return instance


def plain(value):
    """Spec values in IR-friendly form (tuples of args become lists)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
