"""torch.export fallback: a model torch.fx cannot trace symbolically, rebuilt as a torch-level fx graph.

torch.fx fails on Python control flow over tensor shapes (`if x.shape[-1] > 8:`), which torch.export
resolves for the given input shape. Its graph is ATen ops with each node's module stack
(`nn_module_stack`); here each call of a leaf module (a torch.nn layer) becomes one `call_module` node
again, the other ATen ops their torch functions, and the module stack the importer's Region tree, so
that trace.py's converter reads it as it reads an fx trace. Data-dependent control flow
(`if x.sum() > 0:`) stops torch.export too: that is the error, at the module fx named.
"""

from __future__ import annotations

import contextlib
import io
import operator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from archdsl.importer.layers import class_name, is_leaf, region_kind
from archdsl.importer.model import ImportFailure, Region

aten = torch.ops.aten

# ATen op -> (torch target, call kind); the converter maps those to spec ops
FUNCTIONS = {
    aten.add.Tensor: operator.add, aten.add_.Tensor: operator.add, aten.mul.Tensor: operator.mul,
    aten.mul_.Tensor: operator.mul, aten.relu.default: torch.relu, aten.relu_.default: torch.relu,
    aten.sigmoid.default: torch.sigmoid, aten.tanh.default: torch.tanh, aten.silu.default: F.silu,
    aten.silu_.default: F.silu, aten.hardswish.default: F.hardswish, aten.hardswish_.default: F.hardswish,
    aten.hardsigmoid.default: F.hardsigmoid, aten.cat.default: torch.cat, aten.flatten.using_ints: torch.flatten,
    aten.adaptive_avg_pool2d.default: F.adaptive_avg_pool2d, aten.max_pool2d.default: F.max_pool2d,
    aten.avg_pool2d.default: F.avg_pool2d, aten.transpose.int: torch.transpose, aten.permute.default: torch.permute,
    aten.gelu.default: F.gelu, operator.getitem: operator.getitem,
}
METHODS = {aten.view.default: "reshape", aten.reshape.default: "reshape", aten._unsafe_view.default: "reshape",
           aten.mean.dim: "mean", aten.amax.default: "amax", aten.sym_size.int: "size"}
PASS = {aten.clone.default, aten.contiguous.default, aten.alias.default, aten.dropout.default,
        aten.dropout_.default, aten.detach.default, aten.lift_fresh_copy.default}


def export_graph(module: nn.Module, shapes: list[list[int]], root: Region, failed_at: str):
    """A GraphModule over `module` with torch-level nodes, its nodes placed in `root`'s Region tree."""
    examples = tuple(torch.randn(2, *s) for s in shapes)
    dims = tuple({0: torch.export.Dim.AUTO} for _ in shapes)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # torch.export logs the graph it gave up on
            program = torch.export.export(module, examples, dynamic_shapes=dims, strict=False)
    except Exception as exc:  # noqa: BLE001 - name the module fx stopped in, and what stopped export
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "data-dependent" in text.lower() or "data dependent" in text.lower() or "GuardOnDataDependent" in text:
            raise ImportFailure(failed_at, f"data-dependent control flow cannot be written as a spec ({text})",
                                help="a spec is a fixed graph; make the branch depend on constructor arguments "
                                     "or input shapes only") from None
        raise ImportFailure(failed_at, f"neither torch.fx nor torch.export can trace it: {text}") from None
    return _Rebuild(module, program.module(), root).run()


class _Rebuild:
    """ATen graph -> torch-level graph: one call_module node per leaf-module call, regions per module call."""

    def __init__(self, module: nn.Module, exported: torch.fx.GraphModule, root: Region):
        self.module, self.exported, self.root = module, exported, root
        self.graph = torch.fx.Graph()
        self.env: dict[torch.fx.Node, object] = {}
        self.open: list[tuple[str, Region]] = []  # the module calls the current node runs in: (key, region)
        self.leaf: tuple[str, torch.fx.Node, set] | None = None  # the leaf call being read: key, node, members

    def run(self) -> torch.fx.GraphModule:
        for node in self.exported.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.graph.placeholder(node.name)
            elif node.op == "get_attr":
                self.env[node] = self.graph.get_attr(node.target)
            elif node.op == "call_module" or str(node.target).startswith(("_assert", "aten._assert", "aten.sym_constrain")):
                continue  # the exported program's own guards
            elif node.op == "output":
                self.graph.output(torch.fx.map_arg(node.args[0], lambda n: self.env[n]))
            else:
                self.call(node)
        return torch.fx.GraphModule(self.module, self.graph)

    def call(self, node: torch.fx.Node) -> None:
        stack = [(key, path) for key, (path, _) in node.meta.get("nn_module_stack", {}).items() if path]
        leaf_at = next((i for i, (_, path) in enumerate(stack) if is_leaf(self.module.get_submodule(path))), None)
        outer = stack if leaf_at is None else stack[:leaf_at]
        self.enter(outer)
        where = stack[-1][1] if stack else ""
        if leaf_at is not None:
            key, path = stack[leaf_at]
            inputs = [a for a in node.all_input_nodes if a.op != "get_attr"]
            if self.leaf and self.leaf[0] == key and any(a in self.leaf[2] for a in inputs):
                self.leaf[2].add(node)  # another ATen op of the same layer call (BN's getitem)
                self.env[node] = self.leaf[1]
                return
            first = next((a for a in inputs), None)
            made = self.place(self.graph.call_module(path, (self.env[first],)))
            self.leaf = (key, made, {node})
            self.env[node] = made
            return
        self.leaf = None
        target = node.target
        args = torch.fx.map_arg(node.args, lambda n: self.env[n])
        kwargs = torch.fx.map_arg(node.kwargs, lambda n: self.env[n])
        if target in PASS:
            self.env[node] = args[0]
        elif target is aten.slice.Tensor:
            self.env[node] = self.slice(node, args[0])
        elif target in FUNCTIONS:
            self.env[node] = self.place(self.graph.call_function(FUNCTIONS[target], args, kwargs))
        elif target in METHODS:
            if target is aten.mean.dim or target is aten.amax.default:
                kwargs = {"dim": args[1], "keepdim": args[2] if len(args) > 2 else False}
                args = args[:1]
            self.env[node] = self.place(self.graph.call_method(METHODS[target], args, kwargs))
        else:
            name = getattr(target, "__name__", str(target))
            raise ImportFailure(where, f"op 'aten.{name}' has no archdsl equivalent",
                                help="rewrite it with ops the language has (docs/language.md, op reference)")

    def slice(self, node: torch.fx.Node, x) -> torch.fx.Node:
        """aten.slice on one axis; slices of several axes in a row become one index (`x[:, :, ::2, ::2]`)."""
        given = list(node.args[1:])
        dim, start, stop, step = given + [0, None, None, 1][len(given):]
        one = slice(start or None, stop if stop is None or stop < 2 ** 62 else None, None if step == 1 else step)
        source = node.args[0]
        if (isinstance(x, torch.fx.Node) and x.target is operator.getitem and len(source.users) == 1
                and source.target is aten.slice.Tensor):
            index = list(x.args[1]) + [slice(None)] * (dim + 1 - len(x.args[1]))
            index[dim] = one
            x.args = (x.args[0], tuple(index))
            return x
        return self.place(self.graph.call_function(operator.getitem, (x, (slice(None),) * dim + (one,))))

    def enter(self, stack: list[tuple[str, str]]) -> None:
        """Close and open Regions so that the open ones are exactly the calls in `stack`."""
        keep = 0
        while keep < min(len(stack), len(self.open)) and stack[keep][0] == self.open[keep][0]:
            keep += 1
        del self.open[keep:]
        for key, path in stack[keep:]:
            m = self.module.get_submodule(path)
            kind = region_kind(m)
            region = Region(path.rsplit(".", 1)[-1], class_name(m), kind, path=path)
            (self.open[-1][1] if self.open else self.root).items.append(region)
            self.open.append((key, region))

    def place(self, made: torch.fx.Node) -> torch.fx.Node:
        (self.open[-1][1] if self.open else self.root).items.append(made)
        return made
