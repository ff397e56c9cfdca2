"""ONNX front end: read a model with the `onnx` package into the importer's tree.

Module hierarchy comes from the exporter's scopes: the dynamo exporter's `pkg.torch.onnx.name_scopes`
and `class_hierarchy` metadata, or the TorchScript exporter's node names (`/layer1/layer1.0/conv1/Conv`).
Models exported in eval mode usually have batch normalisation folded into the convolutions; the spec
then has conv biases and no `bn`, and says so.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from archdsl.importer.model import ImportFailure, Region, Step, Trace

LEAF_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm",
            "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "HardSigmoid", "Clip", "Dropout", "ReduceMean"}


def require_onnx():
    """The onnx package, or a usage error saying how to install it (before any other work)."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise ImportFailure("", "reading ONNX files needs the package 'onnx'",
                            help="pip install 'archdsl[onnx]'") from None
    return onnx


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _meta(node) -> dict:
    return {p.key: p.value for p in node.metadata_props}


def _square(v):
    v = list(v)
    return v[0] if all(x == v[0] for x in v) else v


class _Reader:
    def __init__(self, path: str):
        onnx = require_onnx()
        from onnx import numpy_helper

        if not Path(path).is_file():
            raise ImportFailure("", f"no such file: {path}")
        self.model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        g = self.model.graph
        self.path = str(path)
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])
        self.ranks = {}
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            dims = vi.type.tensor_type.shape.dim
            self.ranks[vi.name] = len(dims)
        self.ids: dict[str, int] = {}
        self.next = 0
        self.weights: list[tuple[str, dict]] = []  # (layer key, {role: array}) in running order
        self.folded = False

    def new(self, name: str) -> int:
        self.next += 1
        self.ids[name] = self.next
        return self.next

    def value(self, name: str, where: str) -> int:
        if name not in self.ids:
            raise ImportFailure(where, f"input '{name}' is computed by ops the importer does not know")
        return self.ids[name]

    def scopes(self, node) -> tuple[list[tuple[str, str]], str | None]:
        """The non-leaf module calls (path, class) around a node, and its leaf module path, if any."""
        meta = _meta(node)
        if "pkg.torch.onnx.name_scopes" in meta:
            names = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])[1:-1]
            classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))[1:-1]
            classes += [""] * (len(names) - len(classes))
            regions, leaf = [], None
            for name, cls in zip(names, classes):
                short = cls.rsplit(".", 1)[-1]
                if cls.startswith("torch.nn.modules") and "container" not in cls:
                    leaf = name
                    break
                regions.append((name, short))
            return regions, leaf
        parts = [p for p in node.name.split("/") if p][:-1]
        leaf = None
        if parts and node.op_type in LEAF_OPS:
            leaf = ".".join(parts[-1:]) if "." in parts[-1] else parts[-1]
            parts = parts[:-1]
        return [(p, "") for p in parts], leaf

    def read(self) -> Trace:
        g = self.model.graph
        inputs = []
        for vi in g.input:
            if vi.name in self.consts:
                continue
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim][1:]
            if any(d <= 0 for d in dims):
                raise ImportFailure("", f"input '{vi.name}' has a dynamic size beyond the batch axis")
            inputs.append((self.new(vi.name), vi.name, dims))
        root = Region("", "", "root")
        stack: list[Region] = [root]
        for node in g.node:
            if node.op_type == "Constant":
                continue
            regions, leaf = self.scopes(node)
            while len(stack) > 1 and [r.path for r in stack[1:]] != [p for p, _ in regions[:len(stack) - 1]]:
                stack.pop()
            for path, cls in regions[len(stack) - 1:]:
                label = path.rsplit(".", 1)[-1] if path else path
                region = Region(label, cls or "Unit", "block", path=path)
                stack[-1].items.append(region)
                stack.append(region)
            step = self.step(node, leaf)
            if step is not None:
                stack[-1].items.append(step)
        _prune(root)
        _kinds(root)
        outputs = [self.value(o.name, "") for o in g.output]
        params = sum(int(a.size) for _, ws in self.weights for role, a in ws.items()
                     if role in ("weight", "bias"))
        notes = [f"ONNX producer: {self.model.producer_name or 'unknown'} {self.model.producer_version}".rstrip() + "."]
        if self.folded:
            notes.append("The exporter folded batch normalisation into the convolutions (eval mode): the convs "
                         "have biases and there is no bn.")
        trace = Trace(inputs, root, outputs, f"the ONNX file {Path(self.path).name}", params, notes)
        trace.weights = self.weights
        return trace

    def step(self, node, leaf: str | None) -> Step | None:
        op = node.op_type
        a = _attrs(node)
        where = leaf or node.name
        data = [i for i in node.input if i and i not in self.consts]
        label = leaf.rsplit(".", 1)[-1] if leaf else None
        if op in ("Identity", "Dropout"):
            self.ids[node.output[0]] = self.value(node.input[0], where)
            return None
        if op == "Conv":
            w = self.consts.get(node.input[1])
            if w is None:
                raise ImportFailure(where, "op 'Conv' with computed weights has no archdsl equivalent")
            bias = len(node.input) > 2 and node.input[2] in self.consts
            k = list(a.get("kernel_shape", w.shape[2:]))
            pads = list(a.get("pads", [0] * 2 * len(k)))
            if pads[:len(k)] != pads[len(k):] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ImportFailure(where, "op 'Conv' with asymmetric padding has no archdsl equivalent")
            dil = list(a.get("dilations", [1] * len(k)))
            args = [(None, int(w.shape[0])), (None, _square(k))]
            if _square(a.get("strides", [1])) != 1:
                args.append(("stride", _square(a["strides"])))
            if pads[:len(k)] != [d * (kk - 1) // 2 for kk, d in zip(k, dil)]:
                args.append(("pad", _square(pads[:len(k)])))
            if _square(dil) != 1:
                args.append(("dilation", _square(dil)))
            if a.get("group", 1) != 1:
                args.append(("groups", a["group"]))
            if not bias:
                args.append(("bias", False))
            name = node.input[1]
            if name.endswith(".weight"):
                leaf = name[:-len(".weight")]
                label = leaf.rsplit(".", 1)[-1]
            if bias and (name.startswith("onnx::") or "FuseBatchNorm" in _meta(node).get(
                    "pkg.onnxscript.rewriter.rule_name", "")):
                self.folded = True
            ws = {"weight": w} | ({"bias": self.consts[node.input[2]]} if bias else {})
            return self.layer(node, "conv", args, data, label, leaf or node.name, ws)
        if op == "BatchNormalization":
            scale, b, mean, var = (self.consts[n] for n in node.input[1:5])
            args = [("eps", float(a["epsilon"]))] if abs(a.get("epsilon", 1e-5) - 1e-5) > 1e-12 else []
            ws = {"weight": scale, "bias": b, "running_mean": mean, "running_var": var}
            return self.layer(node, "bn", args, data, label, leaf or node.name, ws)
        if op == "Gemm":
            w = self.consts[node.input[1]]
            if a.get("transB", 0) != 1 or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise ImportFailure(where, "op 'Gemm' other than a linear layer has no archdsl equivalent")
            bias = len(node.input) > 2 and node.input[2] in self.consts
            name = node.input[1]
            if name.endswith(".weight"):
                leaf = name[:-len(".weight")]
                label = leaf.rsplit(".", 1)[-1]
            ws = {"weight": w} | ({"bias": self.consts[node.input[2]]} if bias else {})
            return self.layer(node, "fc", [(None, int(w.shape[0]))] + ([] if bias else [("bias", False)]), data,
                              label, leaf or node.name, ws)
        if op in ("MaxPool", "AveragePool"):
            k = list(a["kernel_shape"])
            pads = list(a.get("pads", [0] * 2 * len(k)))
            if pads[:len(k)] != pads[len(k):]:
                raise ImportFailure(where, f"op '{op}' with asymmetric padding has no archdsl equivalent")
            args = [(None, _square(k))]
            s = _square(a.get("strides", [1] * len(k)))
            if s != _square(k):
                args.append(("stride", s))
            if _square(pads[:len(k)]) != 0:
                args.append(("pad", _square(pads[:len(k)])))
            if a.get("ceil_mode", 0):
                args.append(("ceil", True))
            if op == "AveragePool" and not a.get("count_include_pad", 0):
                args.append(("count_pad", False))
            return self.plain(node, "maxpool" if op == "MaxPool" else "avgpool", args, data, label)
        if op == "GlobalAveragePool":
            return self.plain(node, "adaptive_avgpool", [(None, 1)], data, label)
        if op == "ReduceMean":
            axes = a.get("axes")
            if axes is None and len(node.input) > 1:
                axes = [int(x) for x in self.consts[node.input[1]]]
            rank = self.ranks.get(node.input[0], 4)
            if sorted(int(x) % rank for x in axes or []) != list(range(2, rank)):
                raise ImportFailure(where, "op 'ReduceMean' other than a global average pool has no archdsl equivalent")
            return self.plain(node, "adaptive_avgpool" if a.get("keepdims", 1) else "gap",
                              [(None, 1)] if a.get("keepdims", 1) else [], data, label)
        simple = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}
        if op in simple:
            return self.plain(node, simple[op], [], data, label)
        if op == "Clip":
            lo, hi = (float(self.consts[n]) if n in self.consts else None for n in (list(node.input) + ["", ""])[1:3])
            if (lo, hi) == (0.0, 6.0):
                return self.plain(node, "relu6", [], data, label)
        if op in ("Add", "Mul") and len(data) == 2:
            return self.plain(node, op.lower(), [], data, None)
        if op == "Concat" and a.get("axis") in (1, 1 - self.ranks.get(data[0], 4)):
            if len(data) == 1:
                self.ids[node.output[0]] = self.value(data[0], where)
                return None
            return self.plain(node, "concat", [], data, None)
        if op == "Flatten" and a.get("axis", 1) == 1:
            return self.plain(node, "flatten", [], data, label)
        if op == "Reshape" and len(data) == 1 and node.input[1] in self.consts:
            shape = [int(x) for x in self.consts[node.input[1]]]
            if len(shape) == 2 and (shape[1] == -1 or shape[0] in (-1, 0, 1)):
                return self.plain(node, "flatten", [], data, None)
        raise ImportFailure(where, f"op '{op}' has no archdsl equivalent",
                            help="the importer reads the ops of docs/import.md; others cannot be written as a spec")

    def plain(self, node, op, args, data, label) -> Step:
        where = node.name
        return Step(self.new(node.output[0]), op, args, [self.value(d, where) for d in data], label=label, where=where)

    def layer(self, node, op, args, data, label, key, ws) -> Step:
        step = self.plain(node, op, args, data, label)
        step.owner = key if key not in {k for k, _ in self.weights} else f"{key}#{step.id}"
        self.weights.append((step.owner, ws))
        return step


def _prune(region: Region) -> None:
    """Drop regions that ended up empty (constants, identities)."""
    region.items = [i for i in region.items if not isinstance(i, Region) or (_prune(i) or i.items)]


def _kinds(region: Region) -> None:
    """Sequential containers (by class, or with only numbered children) are groups."""
    for item in region.items:
        if isinstance(item, Region):
            _kinds(item)
            subs = [i for i in item.items if isinstance(i, Region)]
            numbered = subs and all(re.fullmatch(r"\d+", s.label) for s in subs)
            if item.cls == "Sequential" or (item.cls == "Unit" and numbered):
                item.kind = "group"


def read_onnx(path) -> Trace:
    return _Reader(str(path)).read()


def onnx_weights(path, spec: str) -> dict:
    """A state_dict for `archdsl.build(spec)` with the ONNX file's weights (checked against onnxruntime when present)."""
    import numpy as np
    import torch

    import archdsl
    from archdsl.weights import load_weights

    trace = read_onnx(path)
    source = {}
    for key, ws in trace.weights:
        safe = re.sub(r"[^\w.]", "_", key)
        for role, arr in ws.items():
            source[f"{safe}.{role}"] = torch.from_numpy(np.array(arr, dtype=np.float32))
    built = archdsl.build(spec).eval()
    load_weights(built, source)
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return built.state_dict()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(1, *shape, generator=gen) for _, _, shape in trace.inputs]
    feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs)}
    want = torch.from_numpy(sess.run(None, feeds)[0])
    with torch.no_grad():
        got = built(*xs)
    got = got if isinstance(got, torch.Tensor) else got[0]
    rel = ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()
    if rel > 1e-4:
        raise ImportFailure("", f"the imported spec does not compute what onnxruntime computes (relative "
                                f"difference {rel:.2e})", help="please report this model")
    return built.state_dict()
