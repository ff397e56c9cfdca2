"""Every variant of every spec in specs/ compiles to a module that agrees with its IR.

For each network and variant: the IR's inferred shape of every module's input and output equals
what PyTorch produces (forward pre-hooks and hooks), the IR's parameter count equals the module's,
backward reaches every parameter, and the outputs have the declared shapes. Networks too large for a
quick CPU step run at a smaller input side (MACS_BUDGET); networks with more weights than PARAMS_BUDGET
are built and run on the meta device (the same checks, without allocating the weights).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import torch

from archdsl import ir
from archdsl.backend import compile_module
from archdsl.diagnostics import ArchError
from archdsl.elaborate import elaborate
from archdsl.loader import load

SPECS = Path(__file__).resolve().parents[1] / "specs"


def targets() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SPECS.glob("*.arch")):
        program = load(path)
        for name in program.targets():
            if name in program.networks and any(p.default is None for p in program.networks[name].params):
                continue
            found.append((path.name, name))
    return found


# Networks above this many MACs per sample whose input side is a `size` parameter (EfficientNet-B7 at
# 600x600: 38 G) run at a smaller side, a multiple of 32 from 64, that brings them near the budget: the
# same layers, a CPU-sized forward and backward (unless the network does not build at that size).
MACS_BUDGET = 0.5e9
# Networks with more parameters than this (VGG, RegNetY-128GF: 645 M) are built on the meta device:
# shapes, counts and the backward graph are checked the same way, without initialising the weights.
PARAMS_BUDGET = 60e6


@cache
def graph(file: str, network: str) -> ir.Graph:
    program = load(SPECS / file)
    g = elaborate(program, network)
    target = program.variants[network].target if network in program.variants else network
    if ir.total_macs(g) > MACS_BUDGET and any(p.name == "size" for p in program.networks[target].params):
        size = g.nodes[g.graph["inputs"][0]]["shape"][-1]
        smaller = max(64, round(size * (MACS_BUDGET / ir.total_macs(g)) ** 0.5 / 32) * 32)
        try:
            return elaborate(program, network, {"size": smaller})
        except ArchError:
            pass
    return g


@pytest.mark.parametrize("file, network", targets(), ids=lambda v: v)
def test_compiled_module_agrees_with_ir(file, network):
    g = graph(file, network)
    device = "meta" if ir.total_params(g) > PARAMS_BUDGET else "cpu"
    with torch.device(device):
        model = compile_module(g, seed=0).train()
    assert sum(p.numel() for p in model.parameters()) == ir.total_params(g)

    modules = dict(model.named_modules())
    checked = []

    def hook(name):
        def check(module, args, output):
            if isinstance(args[0], list):  # clique layers take a list; their output is X_i
                assert tuple(output.shape[1:]) == g.nodes[name]["shape"], name
                return
            inputs = ir.data_inputs(g, name)
            assert [tuple(a.shape[1:]) for a in args] == [g.nodes[i]["shape"] for i in inputs], name
            assert tuple(output.shape[1:]) == g.nodes[name]["shape"], name
            checked.append(name)
        return check

    for node in g.nodes:
        if node in modules and g.nodes[node]["op"] != "input":
            modules[node].register_forward_hook(hook(node))

    inputs = [torch.randn(2, *g.nodes[n]["shape"], device=device) for n in g.graph["inputs"]]
    out = model(*inputs)
    outputs = out if isinstance(out, dict) else {next(iter(g.graph["outputs"])): out}
    assert {k: tuple(v.shape[1:]) for k, v in outputs.items()} == {
        k: g.nodes[n]["shape"] for k, n in g.graph["outputs"].items()}
    assert checked or not [n for n in g.nodes if n in modules]
    sum(v.float().square().mean() for v in outputs.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
