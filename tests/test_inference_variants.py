"""Inference builds over every variant of every spec, sized for CI.

Every variant (the 238 networks of tests/test_specs_compile.py, at its sizes): the inference IR is
checked against the rule the issue states, restated here independently of archdsl/backend/inference.py:
a BN is folded exactly when it reads a conv, depthwise conv or flat fc that nothing else reads (after
dropout and drop-path are bypassed), that is no output and that shares no weights; then an activation
oneDNN has as a post-op is fused exactly when it reads (after those folds) a 2-D conv or depthwise conv
that nothing else reads, that is no output, that shares no weights and that has no activation fused
yet, which then carries it as `post_op` (oneDNN's name, scalars, algorithm); every other node keeps
its op, arguments, shape and (bypassed) inputs; the outputs keep their shapes; the parameter count
drops by each folded BN's affine weights and rises by each bias the fold adds.

Numerically (the plain build against its inference build, relative difference < 1e-4), REPRESENTATIVES
run at a small input size: together they hold every kind of rewrite site (signature below) that
occurs in any variant, and each variant's test asserts that its sites are among them, so a spec with
a new kind of site fails here until a network with it is added. Building and running all 238 networks
takes minutes: scripts/check_inference.py does that.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch

import archdsl
from archdsl import ir
from archdsl.backend import compile_module
from archdsl.backend.inference import inference_ir, to_inference
from tests.reference.norms import randomise_norms
from tests.test_inference import SPECS, ops, relative_difference
from tests.test_specs_compile import graph, targets

REMOVED = ("dropout", "drop_path")
POST_OPS = {  # activation -> oneDNN's post-op (name, scalars, algorithm), from oneDNN's documentation
    "relu": lambda a: ["relu", [], ""], "relu6": lambda a: ["hardtanh", [0.0, 6.0], ""],
    "leaky_relu": lambda a: ["leaky_relu", [a["slope"]], ""], "sigmoid": lambda a: ["sigmoid", [], ""],
    "tanh": lambda a: ["tanh", [], ""], "silu": lambda a: ["swish", [], ""],
    "hardswish": lambda a: ["hardswish", [], ""], "hardsigmoid": lambda a: ["hardsigmoid", [], ""],
    "gelu": lambda a: ["gelu", [], a["approximate"]],
}

# (spec file, network, parameters): every rewrite-site signature of every variant occurs in one of them
REPRESENTATIVES = [
    ("shufflenet.arch", "shufflenet_units", {}),
    ("squeezenet.arch", "squeezenet1_1", {"size": 32}),
    ("resnet.arch", "resnet_cifar", {}),
    ("shufflenet.arch", "shufflenet_g1_0_5x", {}),
    ("mobilenet_v3.arch", "mobilenet_v3_small", {"size": 32}),
    ("efficientnet.arch", "efficientnet_b1", {"size": 32}),
    ("nin.arch", "network_in_network", {"size": 32}),
    ("cliquenet.arch", "cliquenet_k36_t12_i_i", {}),
    ("densenet.arch", "densenet_cifar", {}),
    ("googlenet.arch", "googlenet_torchvision_aux", {"size": 32}),
    ("efficientnet.arch", "efficientnet_v2_s", {"size": 32}),
    ("cliquenet.arch", "cliquenet_k36_t12_ac", {}),
    ("xception.arch", "xception_net", {"size": 32}),
    ("convnext.arch", "convnext", {"size": 32}),
    ("vgg.arch", "vgg11_bn", {"size": 32}),
    ("alexnet.arch", "alexnet_owt", {"size": 64}),
    ("yolo.arch", "yolo", {"size": 32}),
    ("dpn.arch", "dpn68", {}),
    ("lenet.arch", "lenet5_modern", {}),
    # beyond the signatures: other parameters, LeNet-5's own layers, clique blocks at other T and k
    ("mobilenet_v2.arch", "mobilenet_v2", {"size": 64, "width": 0.5}),
    ("cliquenet.arch", "cliquenet_k36_t12", {"T": 6, "k": 12}),
    ("lenet.arch", "lenet5", {}),
]


def through(g: ir.Graph, node: str) -> str:
    """The value `node` carries in eval mode: dropout and drop-path pass their input on."""
    while g.nodes[node]["op"] in REMOVED:
        (node,) = ir.data_inputs(g, node)
    return node


def expected_folds(g: ir.Graph) -> dict[str, str]:
    """BN -> the layer it folds into, by the issue's rule (see the module docstring)."""
    readers: dict[str, set[str]] = {}
    for v in g.nodes:
        if g.nodes[v]["op"] not in REMOVED:
            for u, _ in ir.all_inputs(g, v):
                readers.setdefault(through(g, u), set()).add(v)
    outputs = {through(g, n) for n in g.graph["outputs"].values()}
    shared = {d.get("shares") for _, d in g.nodes(data=True)}
    folds = {}
    for bn, data in g.nodes(data=True):
        if data["op"] != "bn" or data.get("shares"):
            continue
        layer = through(g, ir.data_inputs(g, bn)[0])
        d = g.nodes[layer]
        kind_ok = d["op"] in ("conv", "dwconv") or (d["op"] == "fc" and len(d["shape"]) == 1)
        if kind_ok and readers[layer] == {bn} and layer not in outputs | shared and not d.get("shares"):
            folds[bn] = layer
    return folds


def expected_fusions(g: ir.Graph, folds: dict[str, str]) -> dict[str, str]:
    """Activation -> the convolution it fuses into, by the rule (see the module docstring)."""
    readers: dict[str, set[str]] = {}
    for v in g.nodes:
        if g.nodes[v]["op"] not in REMOVED and v not in folds:
            for u, _ in ir.all_inputs(g, v):
                u = through(g, u)
                readers.setdefault(folds.get(u, u), set()).add(v)
    outputs = {folds.get(through(g, n), through(g, n)) for n in g.graph["outputs"].values()}
    shared = {d.get("shares") for _, d in g.nodes(data=True)}
    fused = {}
    for node in ir.topological_order(g):
        data = g.nodes[node]
        if data["op"] not in POST_OPS:
            continue
        u = through(g, ir.data_inputs(g, node)[0])
        layer = folds.get(u, u)
        d = g.nodes[layer]
        if d["op"] in ("conv", "dwconv") and len(d["shape"]) == 3 and readers[layer] == {node} \
                and layer not in outputs | shared | set(fused.values()) and not d.get("shares"):
            fused[node] = layer
    return fused


def signatures(g: ir.Graph) -> set[tuple]:
    """The kinds of rewrite site in `g`: each BN (what it reads: op, grouped, biased, whether that value
    has other readers; affine; the ops reading the BN), each dropout or drop-path (what it reads) and
    each fused activation (its op and the convolution's)."""
    found = set()
    for node, data in g.nodes(data=True):
        if data["op"] == "bn":
            (source,) = ir.data_inputs(g, node)
            s = g.nodes[source]
            found.add(("bn", s["op"], s["args"].get("groups", 1) != 1, s["args"].get("bias"), data["args"]["affine"],
                       len(list(g.successors(source))) > 1, tuple(sorted({g.nodes[r]["op"] for r in g.successors(node)}))))
        elif data["op"] in REMOVED:
            found.add((data["op"], g.nodes[ir.data_inputs(g, node)[0]]["op"]))
    for act, layer in expected_fusions(g, expected_folds(g)).items():
        found.add(("fused", g.nodes[act]["op"], g.nodes[layer]["op"]))
    return found


@cache
def representative(file: str, network: str, params: tuple) -> ir.Graph:
    return archdsl.build_ir(SPECS / file, network, **dict(params))


@cache
def covered() -> frozenset:
    return frozenset().union(*(signatures(representative(f, n, tuple(p.items()))) for f, n, p in REPRESENTATIVES))


@pytest.mark.parametrize("file, network", targets(), ids=lambda v: v)
def test_inference_ir_follows_the_folding_rule(file, network):
    g = graph(file, network)
    h = inference_ir(g)
    folds = expected_folds(g)
    fusions = expected_fusions(g, folds)
    removed = {n for n, d in g.nodes(data=True) if d["op"] in REMOVED} | set(folds) | set(fusions)
    assert set(h.nodes) == set(g.nodes) - removed
    assert not [n for n, d in h.nodes(data=True) if d["op"] in REMOVED]

    def value(node: str) -> str:  # what carries `node`'s value in h
        node = through(g, node)
        node = folds.get(node, node)
        return fusions.get(node, node)

    added_bias = 0
    for node, data in h.nodes(data=True):
        before = g.nodes[node]
        assert (data["op"], data["shape"]) == (before["op"], before["shape"]), node
        bn = next((b for b, layer in folds.items() if layer == node), None)
        act = next((a for a, layer in fusions.items() if layer == node), None)
        args = dict(before["args"])
        if act is not None:
            args["post_op"] = POST_OPS[g.nodes[act]["op"]](g.nodes[act]["args"])
        if bn is None:
            assert "folded" not in data and data["args"] == args, node
        else:
            assert data["folded"] == {"bn": bn, "eps": g.nodes[bn]["args"]["eps"],
                                      "affine": g.nodes[bn]["args"]["affine"], "bias": before["args"]["bias"]}
            assert data["args"] == {**args, "bias": True, "bias_init": None}, node
            added_bias += 0 if before["args"]["bias"] else data["shape"][0]
        inputs = sorted((value(u), e["kind"], e["port"]) for u, e in ir.all_inputs(g, node))
        assert sorted((u, e["kind"], e["port"]) for u, e in ir.all_inputs(h, node)) == inputs, node
    assert h.graph["outputs"] == {k: value(n) for k, n in g.graph["outputs"].items()}
    affine = sum(2 * g.nodes[bn]["shape"][0] for bn in folds if g.nodes[bn]["args"]["affine"])
    assert ir.total_params(h) == ir.total_params(g) - affine + added_bias
    missing = signatures(g) - covered()
    assert not missing, f"rewrite sites no representative network checks numerically: {sorted(missing)}"


@pytest.mark.parametrize("file, network, params", REPRESENTATIVES, ids=lambda v: v if isinstance(v, str) else "")
def test_inference_build_computes_the_plain_function(file, network, params):
    g = representative(file, network, tuple(params.items()))
    plain = compile_module(g, seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = to_inference(plain)
    inputs = [torch.randn(2, *g.nodes[n]["shape"]) for n in g.graph["inputs"]]
    with torch.inference_mode():
        assert relative_difference(plain(*inputs), fast(*inputs)) < 1e-4
    h = type(fast).__archdsl_graph__
    assert not set(ops(h)) & set(REMOVED)
    assert not any(isinstance(m, torch.nn.Dropout) for m in fast.modules())
    kept = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    before = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in plain.modules())
    folded = len(expected_folds(g))  # BN modules inside runtime blocks (clique layers) are no IR nodes
    assert (before - kept, ops(h).count("bn")) == (folded, ops(g).count("bn") - folded)
