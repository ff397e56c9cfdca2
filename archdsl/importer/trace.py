"""PyTorch front end: trace a module with torch.fx (module calls kept as a tree) into a Trace."""

from __future__ import annotations

import operator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from archdsl.importer.export import export_graph
from archdsl.importer.layers import LEAF_CLASSES, class_name, module_step, pair, region_kind
from archdsl.importer.model import ImportFailure, Region, Step, Trace
from archdsl.importer.modes import main_output, training_structure
from archdsl.importer.static import BATCH, resolve, static_values

RELU = {F.relu, torch.relu, torch.relu_}
ADD = {operator.add, operator.iadd, torch.add}
MUL = {operator.mul, operator.imul, torch.mul}
SIMPLE_FUNCTIONS = {F.relu6: "relu6", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh",
                    F.silu: "silu", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid"}
SIMPLE_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}


def _fn_name(target) -> str:
    if isinstance(target, str):
        return f"Tensor.{target}"
    mod = getattr(target, "__module__", "") or ""
    return f"{mod.replace('torch.nn.functional', 'F')}.{getattr(target, '__name__', target)}".lstrip(".")


class _Tracer(torch.fx.Tracer):
    """fx tracer that records every non-leaf module call as a Region, each node in the Region it ran in."""

    def __init__(self, root_region: Region):
        super().__init__()
        self.current = root_region
        self.failed_at: str | None = None
        self.node_region: dict[str, Region] = {}

    def is_leaf_module(self, m, qualname) -> bool:
        return type(m).__name__ in LEAF_CLASSES or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            return super().call_module(m, forward, args, kwargs)
        label = path.rsplit(".", 1)[-1]
        kind = region_kind(m)
        region = Region(label, class_name(m), kind, path=path)
        self.current.items.append(region)
        outer, self.current = self.current, region
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_at is None:
                self.failed_at = path
            raise
        finally:
            self.current = outer

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind not in ("placeholder", "output"):
            self.current.items.append(node)
        return node


def trace_module(module: nn.Module, shapes: list[list[int]], source: str) -> Trace:
    """Trace `module` on inputs of `shapes` (no batch axis) into the importer's tree.

    The eval-mode graph comes first. Where it leaves parameters unused (auxiliary heads that run only in
    training), the training-mode graph is imported instead when its outputs include the eval output: the
    extra outputs become `output` statements of the spec. Otherwise the spec has the eval graph, and a
    warning and a comment name what was left out."""
    module = module.eval()
    trace = _trace(module, shapes, source)
    left_out = trace.left_out
    if not left_out:
        return trace
    try:
        with training_structure(module):
            aux = _trace(module, shapes, source, fx_only=True)
            main = _eval_output_index(module, aux.gm, shapes)
    except ImportFailure as exc:
        reason = f"its training-mode graph cannot be imported ({exc})"
    except Exception as exc:  # noqa: BLE001 - training mode may need what eval does not (targets): keep the eval graph
        reason = f"its training-mode graph does not run ({type(exc).__name__}: {str(exc).strip()[:200]})"
    else:
        if main is not None and aux.params > trace.params:
            return _with_aux_outputs(aux, main, left_out)
        reason = None if main is not None else "its training-mode graph does not compute the eval output"
    finally:
        module.eval()
    note = _left_out_note(trace, "eval mode" if reason else "eval or training mode")
    trace.warnings.append(note + (f": {reason}." if reason else "."))
    trace.notes.append(trace.warnings[-1])
    return trace


def _trace(module: nn.Module, shapes: list[list[int]], source: str, fx_only: bool = False) -> Trace:
    """The tree of one torch.fx trace (or torch.export's, where fx fails and `fx_only` is false)."""
    root = Region("", type(module).__name__, "root", path="")
    tracer = _Tracer(root)
    notes = []
    try:
        gm = torch.fx.GraphModule(module, tracer.trace(module))
    except Exception as exc:  # noqa: BLE001 - fx's own errors name no module: say where, then try torch.export
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if fx_only:
            raise ImportFailure(tracer.failed_at or "", f"torch.fx cannot trace it ({text})") from None
        root = Region("", type(module).__name__, "root", path="")
        gm = export_graph(module, shapes, root, tracer.failed_at or "")
        notes.append(f"Traced with torch.export: torch.fx stopped at '{tracer.failed_at or '<root>'}' ({text}).")
    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(shapes):
        raise ImportFailure("", f"the model takes {len(placeholders)} inputs but {len(shapes)} --input shapes "
                                "were given")
    values = static_values(gm, shapes)
    trace = _Converter(module, gm, root, placeholders, shapes, source, values).run()
    trace.notes[:0] = notes
    trace.gm = gm
    return trace


def _left_out_note(trace: Trace, graph: str) -> str:
    total = sum(trace.left_out.values()) + trace.params
    return (f"Not called in {graph}, so left out: {', '.join(trace.left_out)} "
            f"({sum(trace.left_out.values()):,} of the {total:,} parameters)")


def _eval_output_index(module: nn.Module, gm: torch.fx.GraphModule, shapes: list[list[int]]) -> int | None:
    """Which output of the training-mode graph (run with eval-mode layers) is the module's eval output."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, *s, generator=gen) for s in shapes]
    with torch.no_grad():
        outs = gm(*xs)  # under training_structure: the training graph, eval arithmetic
        module.eval()
        want = main_output(module(*xs))
    outs = list(outs.values()) if isinstance(outs, dict) else list(outs) if isinstance(outs, (tuple, list)) else [outs]
    for i, out in enumerate(outs):
        if isinstance(out, torch.Tensor) and out.shape == want.shape and torch.allclose(out, want, rtol=1e-6, atol=0):
            return i
    return None


def _with_aux_outputs(trace: Trace, main: int, eval_left_out: dict[str, int]) -> Trace:
    """The training-mode trace with the eval output first; the others are auxiliary outputs."""
    n = len(trace.outputs)
    names = trace.output_names or (["out", "aux"] if n == 2 else ["out", *(f"aux{i}" for i in range(1, n))])
    order = [main, *(i for i in range(n) if i != main)]
    trace.outputs = [trace.outputs[i] for i in order]
    trace.output_names = [names[i] for i in order]
    heads = [p for p in eval_left_out if p not in trace.left_out]
    count = sum(eval_left_out[p] for p in heads)
    extra = trace.output_names[1:]
    one = len(heads) == 1
    trace.notes.append(f"Traced in training mode too: {', '.join(heads)} ({count:,} parameters) run{'s' * one} "
                       f"only in training in the source; here {'it runs' if one else 'they run'} always, as the "
                       f"output{'s' * (len(extra) > 1)} {', '.join(extra)}. The first output, "
                       f"{trace.output_names[0]}, is the source's eval output.")
    if trace.left_out:
        trace.warnings.append(_left_out_note(trace, "eval or training mode") + ".")
        trace.notes.append(trace.warnings[-1])
    return trace


class _Converter:
    """fx nodes -> Steps, in the Region tree the tracer recorded."""

    def __init__(self, module, gm, root, placeholders, shapes, source, values):
        self.module, self.gm, self.root = module, gm, root
        self.placeholders, self.shapes, self.source = placeholders, shapes, source
        self.values = values  # node name -> a size read at run time, made static (static.py)
        self.attrs: dict[str, str] = {}  # get_attr node name -> the parameter's path
        self.chunks: dict[str, list] = {}  # chunk node name -> each piece's slice arguments
        self.tuples: dict[str, object] = {}  # named-tuple node name -> the named tuple (of fx nodes) it builds
        self.ids: dict[str, int] = {}
        self.alias: dict[str, int] = {}
        self.next_id = 0
        self.owners: dict[int, str] = {}

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def value(self, arg, where: str) -> int:
        if isinstance(arg, torch.fx.Node):
            if arg.name in self.alias:
                return self.alias[arg.name]
            if arg.name in self.ids:
                return self.ids[arg.name]
            if arg.name in self.attrs:
                raise ImportFailure(where, f"a parameter used directly ('{self.attrs[arg.name]}') has no archdsl "
                                           "equivalent", help="wrap it in a module the language has (e.g. "
                                                              "layer_scale)")
        raise ImportFailure(where, f"op input {arg!r} is not a tensor the spec can name")

    def run(self) -> Trace:
        inputs = []
        for i, (node, shape) in enumerate(zip(self.placeholders, self.shapes)):
            self.ids[node.name] = self.new_id()
            name = node.name if node.name.isidentifier() and not node.name.startswith("input") else "x"
            inputs.append((self.ids[node.name], name if i == 0 or name != "x" else f"x{i + 1}", list(shape)))
        self.convert(self.root, "")
        out_node = next(n for n in self.gm.graph.nodes if n.op == "output")
        outs = out_node.args[0]
        if isinstance(outs, torch.fx.Node) and outs.name in self.tuples:
            outs = self.tuples[outs.name]  # `return Outputs(logits, aux)` with a NamedTuple class
        names = list(outs) if isinstance(outs, dict) else list(getattr(outs, "_fields", [])) or None
        outs = list(outs.values()) if isinstance(outs, dict) else list(outs) if isinstance(outs, (tuple, list)) else [outs]
        outputs = [self.value(o, "") for o in outs]
        params, left_out = self.called_parameters()
        return Trace(inputs, self.root, outputs, self.source, params, output_names=names, left_out=left_out)

    def called_parameters(self) -> tuple[int, dict[str, int]]:
        """The parameters the traced graph uses, and the outermost modules whose parameters it never uses
        (GoogLeNet's auxiliary heads in eval mode) with their parameter counts."""
        used = {p for n in self.gm.graph.nodes if n.op == "call_module"
                for p in self.gm.get_submodule(n.target).parameters()}
        used |= {self.gm.get_parameter(path) for path in self.attrs.values()
                 if isinstance(self.gm.get_parameter(path), torch.nn.Parameter)}
        count = sum(p.numel() for p in {id(p): p for p in used}.values())
        unused: dict[str, int] = {}
        for path, m in self.module.named_modules():
            own = list(m.parameters())
            if own and not any(p in used for p in own) and not any(path.startswith(u + ".") for u in unused):
                unused[path] = sum(p.numel() for p in own)
        return count, unused

    def convert(self, region: Region, where: str) -> None:
        items = []
        for item in region.items:
            if isinstance(item, Region):
                self.convert(item, item.path)
                if item.items:
                    items.append(item)
            else:
                step = self.step(item, where)
                if step is not None:
                    items.append(step)
        region.items = items

    def rank(self, node) -> int:
        meta = node.meta.get("tensor_meta")
        return len(meta.shape) - 1 if meta is not None and hasattr(meta, "shape") else -1

    def step(self, node: torch.fx.Node, where: str) -> Step | None:
        if node.name in self.values:
            return None  # a size read at run time: static here (static.py), used by the ops that read it
        if node.op == "get_attr":
            self.attrs[node.name] = node.target  # a parameter used directly: only `layer_scale * x` is an op
            return None
        if node.op == "call_module":
            m = self.gm.get_submodule(node.target)
            path = node.target
            first = node.args[0] if node.args else None
            in_rank = self.rank(first) if isinstance(first, torch.fx.Node) else -1
            op, args = module_step(m, path, in_rank)
            has_weights = any(True for _ in m.parameters(recurse=False)) or any(
                True for _ in m.buffers(recurse=False))
            ins = [self.value(a, path) for a in node.args if isinstance(a, torch.fx.Node)]
            if op == "identity":
                self.alias[node.name] = ins[0]
                return None
            step = Step(self.new_id(), op, args, ins, label=path.rsplit(".", 1)[-1],
                        owner=path if has_weights else None, where=path, shape=self.shape(node))
            self.ids[node.name] = step.id
            return step
        target = node.target
        if isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields"):
            self.tuples[node.name] = target(*node.args, **node.kwargs)  # only returned (run() reads it)
            return None
        name = _fn_name(target)
        fail = ImportFailure(where, f"op '{name}' has no archdsl equivalent",
                             help="rewrite it with ops the language has (docs/language.md, op reference)")
        tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
        if node.op == "call_method" and target in ("view", "reshape", "unflatten", "transpose") or target in (
                torch.reshape, torch.transpose, torch.chunk) or node.op == "call_method" and target == "chunk":
            return self.reshaping(node, tensors[0], where)
        if name in ("torch._C._nn.avg_pool2d", "F.avg_pool2d", "F.max_pool2d", "F._max_pool2d",
                    "torch.max_pool2d", "torch.avg_pool2d"):
            return self.pool(node, "maxpool" if "max" in name else "avgpool", tensors[0], where)
        if target in RELU or (node.op == "call_method" and target in ("relu", "relu_")):
            return self.simple(node, "relu", [], where)
        if node.op == "call_function" and target in SIMPLE_FUNCTIONS:
            return self.simple(node, SIMPLE_FUNCTIONS[target], [], where)
        if node.op == "call_method" and target in SIMPLE_METHODS:
            return self.simple(node, SIMPLE_METHODS[target], [], where)
        if target in ADD or target in MUL or (node.op == "call_method" and target in ("add", "add_", "mul", "mul_")):
            return self.arithmetic(node, "mul" if target in MUL or target in ("mul", "mul_") else "add", name, where)
        if target in (torch.cat, torch.concat):
            seq = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            rank = self.rank(seq[0]) + 1
            if dim not in (1, 1 - rank) or rank < 2:
                raise ImportFailure(where, f"op 'torch.cat' along dim {dim} has no archdsl equivalent",
                                    help="concat joins channels (dim 1)")
            vals = [self.value(t, where) for t in seq]
            if len(vals) == 1:
                self.alias[node.name] = vals[0]
                return None
            return self.emit(node, "concat", [], vals, where)
        if target is torch.flatten or (node.op == "call_method" and target == "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            if start % (self.rank(tensors[0]) + 1) == 0:
                raise ImportFailure(where, f"op '{name}' (start_dim={start}, end_dim={end}) has no archdsl "
                                           "equivalent", help="flatten keeps the batch axis")
            return self.reshaped(node, tensors[0], where)
        if target is F.adaptive_avg_pool2d:
            size = pair(node.args[1] if len(node.args) > 1 else node.kwargs["output_size"])
            return self.emit(node, "adaptive_avgpool", [(None, size)], [self.value(tensors[0], where)], where)
        if node.op == "call_method" and target == "permute" or target is torch.permute:
            order = [int(a) for a in node.args[1:]] if not isinstance(node.args[1], (list, tuple)) else list(node.args[1])
            if order[0] != 0:
                raise ImportFailure(where, "op 'Tensor.permute' that moves the batch axis has no archdsl equivalent")
            return self.emit(node, "permute", [(None, [a - 1 for a in order[1:]])], [self.value(tensors[0], where)],
                             where)
        if node.op == "call_method" and target in ("mean", "amax"):
            dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            dims = [dims] if isinstance(dims, int) else list(dims or [])
            rank = self.rank(tensors[0]) + 1
            if sorted(d % rank for d in dims) != list(range(2, rank)) or node.kwargs.get("keepdim", False):
                raise ImportFailure(where, f"op '{name}' other than a global pool has no archdsl equivalent")
            return self.emit(node, "gap" if target == "mean" else "gmp", [], [self.value(tensors[0], where)], where)
        if target is operator.getitem and isinstance(node.args[1], int) and tensors[0].name in self.chunks:
            return self.emit(node, "slice", self.chunks[tensors[0].name][node.args[1]],
                             [self.value(tensors[0].args[0], where)], where)
        if target is operator.getitem and isinstance(node.args[1], tuple):
            return self.getitem(node, tensors[0], node.args[1], where, fail)
        if target is F.pad or name in ("F.pad", "torch._C._nn.pad"):
            pad = list(node.args[1] if len(node.args) > 1 else node.kwargs["pad"])
            rank = self.rank(tensors[0])
            if len(pad) == 2 * rank and not any(pad[:-1]) and node.kwargs.get("value") in (0, None):
                channels = node.meta["tensor_meta"].shape[1]
                return self.emit(node, "pad_channels", [(None, channels)], [self.value(tensors[0], where)], where)
            raise fail
        if target is F.gelu:
            approximate = node.kwargs.get("approximate", "none")
            return self.simple(node, "gelu", [] if approximate == "none" else [("approximate", approximate)], where)
        if target is F.dropout:
            return self.alias_to(node, tensors[0], where)
        if node.op == "call_method" and target in ("contiguous",):
            return self.alias_to(node, tensors[0], where)
        raise fail

    def getitem(self, node, tensor, index: tuple, where: str, fail):
        """`x[:, :, ::s, ::s]` (subsample), `x[:, a:b]` (a slice of the channels), `w[:, :, None, None]`."""
        rank = self.rank(tensor)
        full = slice(None, None, None)
        if index[:2] == (full, full) and index[2:] and all(i is None for i in index[2:]) and rank == 1:
            if all(self._per_channel_mul(u) for u in node.users):
                return self.alias_to(node, tensor, where)  # mul scales channels by a [C] tensor itself
            return self.emit(node, "reshape", [(None, self.shape(node))], [self.value(tensor, where)], where)
        if len(index) == rank + 1 and index[0] == full and index[1] == full and all(
                isinstance(i, slice) and i.start is None and i.stop is None for i in index[2:]):
            steps = {i.step or 1 for i in index[2:]}
            if len(steps) == 1:
                return self.emit(node, "subsample", [("stride", steps.pop())], [self.value(tensor, where)], where)
        if len(index) == 2 and index[0] == full and isinstance(index[1], slice) and index[1].step in (None, 1):
            start, stop = index[1].start or 0, index[1].stop
            if stop is not None:
                return self.emit(node, "slice", [(None, start), (None, stop)], [self.value(tensor, where)], where)
        raise fail

    def shape(self, node) -> list[int]:
        """The per-sample shape of a node's tensor (no batch axis)."""
        return list(node.meta["tensor_meta"].shape[1:])

    def _per_channel_mul(self, node) -> bool:
        return node.target in MUL or node.op == "call_method" and node.target == "mul"

    def arithmetic(self, node, op: str, name: str, where: str) -> Step | None:
        """`a + b`, `a * b` (the per-channel factor second), `x * 0.5` (scale), `layer_scale * x`."""
        args = list(node.args)
        if len(args) != 2 or node.kwargs.get("alpha", 1) != 1:
            raise ImportFailure(where, f"op '{name}' with these arguments has no archdsl equivalent")
        tensors = [a for a in args if isinstance(a, torch.fx.Node) and a.name not in self.values]
        params = [a for a in tensors if a.name in self.attrs]
        if op == "mul" and len(tensors) == 1 and isinstance(resolve(args[0 if tensors[0] is args[1] else 1],
                                                                    self.values), (int, float)):
            factor = resolve(args[0 if tensors[0] is args[1] else 1], self.values)
            return self.emit(node, "scale", [(None, float(factor))], [self.value(tensors[0], where)], where)
        if len(tensors) != 2:
            raise ImportFailure(where, f"op '{name}' with a constant has no archdsl equivalent")
        if op == "mul" and len(params) == 1:
            return self.layer_scale(node, params[0], next(t for t in tensors if t is not params[0]), where)
        first, second = tensors
        if op == "mul" and self._broadcasts(first, second):
            first, second = second, first  # `scale * x`: mul takes the per-channel factor second
        return self.emit(node, op, [], [self.value(first, where), self.value(second, where)], where)

    def _broadcasts(self, a, b) -> bool:
        """Whether `a` is per-channel ([C] or [C, 1, ..]) next to a larger `b`."""
        sa, sb = self.shape(a), self.shape(b)
        return sa != sb and len(sa) >= 1 and all(d == 1 for d in sa[1:]) and len(sb) > 1 and sa[0] == sb[0]

    def layer_scale(self, node, param, x, where: str) -> Step:
        """A parameter of torchvision's layer-scale shape [C, 1, ..] times x: the op `layer_scale`."""
        path = self.attrs[param.name]
        weight = self.gm.get_parameter(path) if "." in path or hasattr(self.gm, path) else None
        want = [self.shape(x)[0]] + [1] * (len(self.shape(x)) - 1)
        if weight is None or list(weight.shape) != want:
            raise ImportFailure(where, f"a parameter used directly ('{path}') has no archdsl equivalent",
                                help="only a per-channel scale of shape [C, 1, ...] (layer_scale) is read")
        step = Step(self.new_id(), "layer_scale", [], [self.value(x, where)], label=path.rsplit(".", 1)[-1],
                    owner=path, where=where)
        self.ids[node.name] = step.id
        return step

    def pool(self, node, op: str, tensor, where: str) -> Step:
        """F.max_pool2d / F.avg_pool2d with their arguments."""
        names = ["input", "kernel_size", "stride", "padding"] + (
            ["dilation", "ceil_mode", "return_indices"] if op == "maxpool" else ["ceil_mode", "count_include_pad",
                                                                                  "divisor_override"])
        a = dict(zip(names, node.args)) | dict(node.kwargs)
        kernel = pair(a["kernel_size"])
        stride = pair(a.get("stride") or a["kernel_size"])
        args = [(None, kernel)] + ([("stride", stride)] if stride != kernel else [])
        if pair(a.get("padding", 0)) != 0:
            args.append(("pad", pair(a["padding"])))
        if a.get("ceil_mode"):
            args.append(("ceil", True))
        if op == "avgpool" and a.get("count_include_pad", True) is False:
            args.append(("count_pad", False))
        if pair(a.get("dilation", 1)) != 1 or a.get("return_indices") or a.get("divisor_override"):
            raise ImportFailure(where, f"op '{op}' with dilation, indices or a divisor has no archdsl equivalent")
        return self.emit(node, op, args, [self.value(tensor, where)], where)

    def reshaping(self, node, tensor, where: str) -> Step | None:
        """view/reshape/unflatten (reshape or flatten), transpose (permute), chunk (slices of the channels)."""
        target = node.target
        rank = self.rank(tensor)
        if target in ("chunk", torch.chunk):
            a = dict(zip(["input", "chunks", "dim"], node.args)) | dict(node.kwargs)
            if a.get("dim", 0) not in (1, -rank) or rank < 1:
                raise ImportFailure(where, "op 'chunk' other than along the channels has no archdsl equivalent")
            sizes = [m.shape[1] for m in node.meta["tensor_meta"]]
            starts = [sum(sizes[:i]) for i in range(len(sizes))]
            self.chunks[node.name] = [[(None, s0), (None, s0 + n)] for s0, n in zip(starts, sizes)]
            return None
        if target in ("transpose", torch.transpose):
            a, b = (d % (rank + 1) for d in node.args[1:3])
            if 0 in (a, b):
                raise ImportFailure(where, "op 'transpose' that moves the batch axis has no archdsl equivalent")
            order = list(range(rank))
            order[a - 1], order[b - 1] = order[b - 1], order[a - 1]
            return self.emit(node, "permute", [(None, order)], [self.value(tensor, where)], where)
        sizes = resolve(list(node.args[1:]), self.values)
        if target == "unflatten":
            if sizes[0] % (rank + 1) == 0:
                raise ImportFailure(where, "op 'unflatten' of the batch axis has no archdsl equivalent")
        else:
            sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) else sizes
            rest = sizes[1:]
            if not (sizes and (sizes[0] is BATCH or sizes[0] == -1 and -1 not in rest)
                    and all(isinstance(d, int) for d in rest)):
                raise ImportFailure(where, f"op '{_fn_name(target)}' to {sizes} (not the batch axis first) has no "
                                           "archdsl equivalent", help="keep the batch axis: x.view(x.size(0), ...)")
        return self.reshaped(node, tensor, where)

    def reshaped(self, node, tensor, where: str) -> Step | None:
        """The tensor reshaped to the node's shape: flatten when that is flat, nothing when it is the same."""
        shape = self.shape(node)
        if shape == self.shape(tensor):
            return self.alias_to(node, tensor, where)
        if len(shape) == 1:
            return self.emit(node, "flatten", [], [self.value(tensor, where)], where)
        return self.emit(node, "reshape", [(None, shape)], [self.value(tensor, where)], where)

    def alias_to(self, node, arg, where):
        self.alias[node.name] = self.value(arg, where)

    def simple(self, node, op, args, where):
        return self.emit(node, op, args, [self.value(node.args[0], where)], where)

    def emit(self, node, op, args, inputs, where) -> Step:
        step = Step(self.new_id(), op, args, inputs, where=where, shape=self.shape(node))
        self.ids[node.name] = step.id
        return step
