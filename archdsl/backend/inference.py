"""Inference builds: an IR pass and a weight transform that give an eval-only module computing the
same function as the plain build, faster.

``inference_ir`` rewrites the IR: every BN that directly follows a conv, depthwise conv or flat fc
whose output nothing else reads is removed and the layer gets a bias and a ``folded`` record of the
BN (BNs after a concatenation, an add or an input stay); an activation that oneDNN computes as a
post-op (its op's ``post_op``) and that is the only reader of a 2-D convolution becomes that
convolution's ``post_op`` argument (runtime.PackedConv2d applies it); dropout and drop-path nodes
disappear (their readers read their input). The code generator then emits the module from that IR as from any other,
so in-place activations follow its usual rule (a value's last reader overwrites a fresh tensor).
``fold_state_dict`` turns the plain build's weights into the inference build's:
w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
``inference_source`` appends a subclass that refuses training and, where it measures faster
(docs/backend.md), converts the inputs to channels-last memory format.
"""

from __future__ import annotations

import copy
import inspect
import math

from archdsl import ir
from archdsl.backend.codegen import model_class_name
from archdsl.backend.runtime import in_chunks
from archdsl.ops import OPS

FOLDABLE = ("conv", "dwconv", "fc")  # layers whose output channels a following BN scales and shifts
REMOVED = ("dropout", "drop_path")  # the identity in eval


def inference_ir(g: ir.Graph) -> ir.Graph:
    """A new IR for inference: BNs folded into the layer before them and activations fused into the
    convolution before them where legal, dropout and drop-path gone."""
    h = copy.deepcopy(g)
    outputs = h.graph["outputs"]
    shared = {d["shares"] for _, d in h.nodes(data=True) if d.get("shares")}  # layers whose weights others reuse
    for node in ir.topological_order(h):
        data = h.nodes[node]
        post_op = OPS[data["op"]].post_op(data["args"]) if data["op"] in OPS else None
        if data["op"] in REMOVED:
            _bypass(h, node, ir.data_inputs(h, node)[0])
        elif data["op"] == "bn" and _foldable(h, node, shared):
            source = ir.data_inputs(h, node)[0]
            layer = h.nodes[source]
            layer["folded"] = {"bn": node, "eps": data["args"]["eps"], "affine": data["args"]["affine"],
                               "bias": layer["args"]["bias"]}
            layer["args"] = {**layer["args"], "bias": True, "bias_init": None}
            _bypass(h, node, source)
        elif post_op and _fusable(h, node, shared):
            source = ir.data_inputs(h, node)[0]
            h.nodes[source]["args"] = {**h.nodes[source]["args"], "post_op": list(post_op)}
            _bypass(h, node, source)
    failures = ir.infer(h)  # parameter counts change (biases added, BN affine weights gone)
    assert not failures, failures
    h.graph["outputs"] = outputs
    h.graph["inference"] = True
    return h


def _foldable(g: ir.Graph, bn: str, shared: set[str]) -> bool:
    """A BN whose input is a conv or fc read by nothing else, neither shared (`reuse`) nor an output."""
    if g.nodes[bn].get("shares"):
        return False
    (source,) = ir.data_inputs(g, bn)
    layer = g.nodes[source]
    if layer["op"] not in FOLDABLE or "folded" in layer:
        return False
    if layer["op"] == "fc" and len(layer["shape"]) != 1:  # fc over the last axis: BN acts on another axis
        return False
    return _sole_reader(g, source, bn, shared)


def _fusable(g: ir.Graph, node: str, shared: set[str]) -> bool:
    """An activation whose input is a 2-D conv (not yet fused) that nothing else reads."""
    (source,) = ir.data_inputs(g, node)
    layer = g.nodes[source]
    return (layer["op"] in ("conv", "dwconv") and len(layer["shape"]) == 3 and "post_op" not in layer["args"]
            and _sole_reader(g, source, node, shared))


def _sole_reader(g: ir.Graph, source: str, node: str, shared: set[str]) -> bool:
    """`node` is the only reader of `source`, which neither reuses weights nor lends them (`shared`),
    nor is a network output."""
    if g.nodes[source].get("shares") or source in shared:
        return False
    return list(g.successors(source)) == [node] and source not in g.graph["outputs"].values()


def _bypass(g: ir.Graph, node: str, source: str) -> None:
    """Remove `node`, whose value equals its input `source`: its readers read `source` instead."""
    for _, reader, data in list(g.out_edges(node, data=True)):
        g.add_edge(source, reader, key=data["port"], **data)
    for name, value in g.graph["outputs"].items():
        if value == node:
            g.graph["outputs"][name] = source
    g.remove_node(node)


def fold_state_dict(h: ir.Graph, state: dict) -> dict:
    """The inference build's state dict from the plain build's (`h` is the inference IR): each folded
    layer gets new tensors on its weights' device and in their dtype (the per-channel factors are
    computed in double precision on the CPU); the other entries are `state`'s own tensors."""
    import torch

    def wide(t):
        return t.detach().to("cpu", torch.float64)

    state = dict(state)
    for node, data in h.nodes(data=True):
        fold = data.get("folded")
        if fold is None:
            continue
        bn = fold["bn"]
        mean, var = wide(state.pop(f"{bn}.running_mean")), wide(state.pop(f"{bn}.running_var"))
        state.pop(f"{bn}.num_batches_tracked", None)
        gamma = wide(state.pop(f"{bn}.weight")) if fold["affine"] else torch.ones_like(mean)
        beta = wide(state.pop(f"{bn}.bias")) if fold["affine"] else torch.zeros_like(mean)
        weight = state[f"{node}.weight"].detach()
        bias = wide(state[f"{node}.bias"]) if fold["bias"] else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + fold["eps"])
        shape = (-1,) + (1,) * (weight.dim() - 1)
        state[f"{node}.weight"] = weight * scale.to(weight.device, weight.dtype).reshape(shape)
        state[f"{node}.bias"] = ((bias - mean) * scale + beta).to(weight.device, weight.dtype)
    return state


def uses_channels_last(h: ir.Graph) -> bool:
    """The memory format rule (measured, docs/backend.md): channels-last when the network convolves
    [C, H, W] tensors, the contiguous format otherwise."""
    return any(d["op"] in ("conv", "dwconv") and len(d["shape"]) == 3 for _, d in h.nodes(data=True))


INFERENCE_CLASS = '''

class InferenceOnlyError(RuntimeError):
    """Raised when an inference build is asked to train."""


def _inference_only(model: nn.Module, detail: str = "") -> InferenceOnlyError:
    return InferenceOnlyError(f"{{type(model).__name__}} is an archdsl inference build (BN folded into the layers "
                              f"before it, dropout removed){{detail}}: it runs in eval mode only; train the plain "
                              "build (without inference=True / --inference) and fold its weights")


class {name}({base}):
    """{network} for inference only: BNs folded into the convolutions before them, no dropout or
    drop-path{layout}, a CPU batch run a few samples at a time. Built by archdsl (inference=True); train
    the plain build instead."""

    def __init__(self) -> None:
        super().__init__()
        nn.Module.train(self, False)
        self.requires_grad_(False)  # fixed weights; gradients with respect to the inputs still flow

    def train(self, mode: bool = True) -> "{name}":
        if mode:
            raise _inference_only(self)
        return nn.Module.train(self, False)

    def forward(self, {params}) -> {returns}:
        if any(m.training for m in self.modules()):  # a part set to training, e.g. model.layer1.train()
            part = next(n for n, m in self.named_modules() if m.training)
            where = f"its part {{part!r}} was" if part else "it was"
            raise _inference_only(self, f", but {{where}} set to training mode (call .eval() on it)")
        return in_chunks(super().forward, ({args},), largest={largest})
'''


def inference_class_name(g: ir.Graph) -> str:
    """The eval-only subclass's name: the generated class's with `Inference` after it."""
    return model_class_name(g) + "Inference"


def inference_source(h: ir.Graph, source: str, channels_last: bool) -> str:
    """The generated source of the inference IR with the eval-only subclass appended."""
    network = h.graph["network"]
    inputs = [f"x{i}" for i in range(len(h.graph["inputs"]))]
    params = ", ".join(f"{x}: torch.Tensor" for x in inputs)
    convert = ".contiguous(memory_format=torch.channels_last)" if channels_last else ""
    args = ", ".join(f"{x}{convert if len(h.nodes[n]['shape']) == 3 else ''}"
                     for x, n in zip(inputs, h.graph["inputs"]))
    returns = "torch.Tensor" if len(h.graph["outputs"]) == 1 else "dict[str, torch.Tensor]"
    largest = max(math.prod(d["shape"]) for _, d in h.nodes(data=True))  # elements per sample
    return source + "\n\n" + inspect.getsource(in_chunks).rstrip() + "\n" + INFERENCE_CLASS.format(
        name=inference_class_name(h), base=model_class_name(h), network=network, params=params,
        args=args, returns=returns, largest=largest,
        layout="; inputs in channels-last memory format" if channels_last else "")


def compile_inference(g: ir.Graph, device=None, dtype=None, seed: int | None = None, state: dict | None = None,
                      channels_last: bool | None = None):
    """The inference build of the plain IR `g`: the plain build's weights (`state`, which the build
    copies and never shares; default: a plain build's initial weights under `seed`) folded into the
    inference module, on `device` (default: that of the weights) in `dtype` (floating point tensors)."""
    import torch

    from archdsl.backend.compile import check_device, compile_module, compile_source, load_class

    device = None if device is None else check_device(device)
    copy = state is not None
    if state is None:
        state = compile_module(g, seed=seed).state_dict()
    h = inference_ir(g)
    channels_last = uses_channels_last(h) if channels_last is None else channels_last
    source = inference_source(h, compile_source(h), channels_last)
    cls = load_class(source, inference_class_name(h))
    cls.__archdsl_inputs__ = tuple(tuple(h.nodes[n]["shape"]) for n in h.graph["inputs"])
    cls.__archdsl_source__ = source
    cls.__archdsl_graph__ = h
    layout = torch.channels_last if channels_last else torch.contiguous_format
    folded = {key: value.detach().to(device=value.device if device is None else device,
                                     dtype=dtype if dtype is not None and value.is_floating_point() else value.dtype,
                                     memory_format=layout if value.dim() == 4 else torch.preserve_format,
                                     copy=copy and value is state.get(key))
              for key, value in fold_state_dict(h, state).items()}
    with torch.device("meta"):  # no initial weights to compute: the folded ones are assigned
        model = cls()
    model.load_state_dict(folded, assign=True)
    if not any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        return model
    with torch.random.fork_rng(devices=[]):  # buffers outside the state dict (LeNet-5's C3) are made here
        model = cls()
    model.load_state_dict(folded)
    where = next((v.device for v in folded.values()), None) if device is None else device
    return model.to(device=where, dtype=dtype, memory_format=layout)


def to_inference(model, channels_last: bool | None = None):
    """The inference build of a plain archdsl module (`archdsl.build(...)`), with its current weights
    folded in: e.g. after `archdsl.load_weights(model, torchvision_checkpoint)` or training."""
    g = getattr(type(model), "__archdsl_graph__", None)
    if g is None or g.graph.get("inference"):
        raise TypeError("to_inference needs a plain module built by archdsl.build (not an inference build)")
    return compile_inference(g, state=model.state_dict(), channels_last=channels_last)
