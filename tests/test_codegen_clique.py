"""Clique blocks in generated code: one `CliqueBlock` class for every clique of a network.

The class makes its layers x1..xL in a loop and runs stage I and each stage-II round as loops over
them, with the layers' shared weights (runtime.CliqueLayer). What differs between the blocks of one
network (layer count, widths, k, options, how many layers stage II updates: all, the first `partial`,
none in mode I+I; the rounds; which layers an output reads) is a constructor argument, what they
share a literal. The network is the one the flat generator built (tests/reference/legacy_codegen.py):
same state_dict keys, order and seeded values, outputs, gradients and BN statistics.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from archdsl import build, build_ir
from archdsl.backend import compile_source, load_class
from archdsl.backend.codegen import class_name, class_origins, model_class_name
from tests.reference import legacy_codegen
from tests.reference.codegen_equivalence import compare

SPECS = Path(__file__).resolve().parents[1] / "specs"
CLIQUENET = SPECS / "cliquenet.arch"

# Four clique blocks that differ in everything: layer count, input width, k, kernel, bottleneck,
# dropout, mode (II+II, I+II with its block feature from stage I, I+I without stage II), partial
# feedback and rounds. The last block's transit has no reader.
MIXED = """
network mixed(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3, bias = false) as stem
  a = clique(layers = 2, k = 4) as c1
  h1 = a.feature -> bn -> relu -> gap
  t1 = a.transit -> bn -> relu -> conv(8, 1) -> avgpool(2)
  b = t1 -> clique(layers = 3, k = 6, mode = "I+II", rounds = 2, kernel = 5, dropout = 0.1) as c2
  h2 = b.feature -> bn -> relu -> gap
  t2 = b.transit -> bn -> relu -> conv(12, 1)
  c = t2 -> clique(layers = 4, k = 4, partial = 3, bottleneck = true) as c3
  h3 = c.feature -> bn -> relu -> gap
  t3 = c.transit -> bn -> relu -> conv(12, 1)
  d = t3 -> clique(layers = 2, k = 4, mode = "I+I") as c4
  h4 = d.feature -> bn -> relu -> gap
  output logits = [h1, h2, h3, h4] -> concat -> fc(classes)
}
"""


def _classes(source: str) -> list[str]:
    return re.findall(r"^class (\w+)\(", source, re.MULTILINE)


def _clique_class(source: str) -> str:
    return source.split("class CliqueBlock(nn.ModuleDict):\n", 1)[1].split("\n\n\nclass ", 1)[0]


def test_blocks_of_five_and_six_layers_are_one_class():
    """CliqueNet-S0's blocks have 5, 6, 6 and 6 layers: the layer count is an argument."""
    g = build_ir(CLIQUENET, "cliquenet_s0")
    source = compile_source(g)
    assert _classes(source) == ["CliqueLayer", "CliqueBlock", "Head", "Transition", "CliquenetS0"]
    assert class_origins(g)[("clique", "clique")] == ["CliqueBlock"]
    assert ("    def __init__(self, layers: int, in_channels: int, k: int, with_transit: bool = False) -> None:\n"
            "        super().__init__()\n"
            "        self.with_transit = with_transit\n"
            "        for i in range(layers):\n"
            '            self.add_module(f"x{i + 1}", CliqueLayer(in_channels, in_channels + k * i, (layers - 1) * k, k,\n'
            "                                                     bottleneck=True))\n") in source
    assert "        self.block1 = CliqueBlock(5, 64, 36, with_transit=True)\n" in source
    assert "        self.block4 = CliqueBlock(6, 600, 80)\n" in source
    assert "        _, block4_feature = self.block4(transition3); del transition3\n" in source
    with torch.device("meta"):  # the same parameters, in the same order, as the flat generator's
        old = load_class(legacy_codegen.generate(g), class_name(g.graph["network"]))().state_dict()
        new = load_class(source, model_class_name(g))().state_dict()
    assert [(k, v.shape) for k, v in old.items()] == [(k, v.shape) for k, v in new.items()]


def test_stage_one_and_stage_two_are_loops_over_the_layers():
    source = compile_source(build_ir(CLIQUENET, "cliquenet_k36_t12"))
    assert _clique_class(source) == (
        '    """A `clique` construct: layers updated alternately, stage I then stage II (CliqueNet)."""\n\n'
        "    def __init__(self, in_channels: int, with_transit: bool = False) -> None:\n"
        "        super().__init__()\n"
        "        self.with_transit = with_transit\n"
        "        for i in range(4):\n"
        '            self.add_module(f"x{i + 1}", CliqueLayer(in_channels, in_channels + 36 * i, 108, 36,\n'
        "                                                     dropout=0.2))\n"
        "\n"
        "    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:\n"
        "        # stage I: each layer from the block input and the layers before it\n"
        "        xs: list[torch.Tensor] = []  # the layers' newest outputs\n"
        "        for _, layer in self.items():\n"
        "            xs.append(layer([x] + xs, 0))\n"
        "        # stage II: each layer again, from the newest versions of all the others\n"
        "        for i, update in enumerate(self.values()):\n"
        "            xs[i] = update(xs[:i] + xs[i + 1:], 1)\n"
        "        transit = torch.cat(xs, 1) if self.with_transit else x.new_empty(0)\n"
        "        feature = torch.cat([x] + xs, 1)\n"
        "        return transit, feature")
    assert "        self.block1 = CliqueBlock(64, with_transit=True)\n" in source
    assert "        self.block3 = CliqueBlock(144)\n" in source


def test_a_last_block_without_stage_two_shares_the_class():
    """Mode I+II: the last block (I+I, its transit unread) updates no layer in stage II; the block
    feature reads stage I's layers, kept before stage II replaces them."""
    g = build_ir(CLIQUENET, "cliquenet_k36_t12_i_ii")
    source = compile_source(g)
    assert _classes(source) == ["CliqueLayer", "CliqueBlock", "Head", "Transition", "CliquenetK36T12IIi"]
    body = _clique_class(source)
    assert ("        for i in range(4):\n"
            "            stage1_in = in_channels + 36 * i\n"
            "            stage2_in = 108 if i < updated else 0\n"
            '            self.add_module(f"x{i + 1}", CliqueLayer(in_channels, stage1_in, stage2_in, 36,\n'
            "                                                     dropout=0.2))\n") in body
    assert ("        stage1 = list(xs)  # read after stage II\n"
            "        # stage II: each layer it updates again, from the newest versions of all the others\n"
            "        for i, update in enumerate(self.values()):\n"
            "            if i < self.updated:\n"
            "                xs[i] = update(xs[:i] + xs[i + 1:], 1)\n"
            "        transit = torch.cat(xs, 1) if self.with_transit else x.new_empty(0)\n"
            "        feature = torch.cat([x] + stage1, 1)\n") in body
    assert "        self.block2 = CliqueBlock(144, 4, with_transit=True)\n" in source
    assert "        self.block3 = CliqueBlock(144, 0)\n" in source
    model = build(CLIQUENET, "cliquenet_cifar", k=4, T=6, mode="I+II", seed=0)
    assert [len(model.block2.x1.norms), len(model.block3.x1.norms)] == [2, 1]
    assert model.block3.x2.weight.shape == (4, 8 + 4, 3, 3)  # stage I's edges only: X_0 (8 channels), X_1


def test_blocks_that_differ_in_every_option_are_one_class():
    g = build_ir(MIXED)
    source = compile_source(g)
    assert _classes(source) == ["CliqueLayer", "CliqueBlock", "Mixed"]
    assert ("    def __init__(self, layers: int, in_channels: int, k: int, updated: int, kernel_size: int,\n"
            "                 bottleneck: bool, rounds: int, dropout: float, feature_from_stage1: bool,\n"
            "                 with_transit: bool = False) -> None:\n") in source
    assert ("        for r in range(1, self.rounds + 1):\n"
            "            for i, update in enumerate(self.values()):\n"
            "                if i < self.updated:\n"
            "                    xs[i] = update(xs[:i] + xs[i + 1:], r)\n"
            "        transit = torch.cat(xs, 1) if self.with_transit else x.new_empty(0)\n"
            "        feature = torch.cat([x] + (stage1 if self.feature_from_stage1 else xs), 1)\n") in source
    assert "        self.c2 = CliqueBlock(3, 8, 6, 3, 5, False, 2, 0.1, True, with_transit=True)\n" in source
    assert "        self.c3 = CliqueBlock(4, 12, 4, 3, 3, True, 1, 0.0, False, with_transit=True)\n" in source
    assert "        self.c4 = CliqueBlock(2, 12, 4, 0, 3, False, 1, 0.0, False)\n" in source
    assert compare(g) == []
    assert compare(g, memory_efficient=True) == []
    assert class_origins(g, memory_efficient=True)[("clique", "clique")] == ["CliqueBlock"]
    model = build(MIXED, seed=0).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


@pytest.mark.parametrize("variant, params, efficient", [
    ("cliquenet_cifar", {"k": 4, "T": 9, "partial": 2, "rounds": 2}, False),
    ("cliquenet_cifar", {"k": 4, "T": 9, "partial": 2, "rounds": 2}, True),
    ("cliquenet_cifar", {"k": 4, "T": 6, "mode": "I+II", "rounds": 3}, False),
    ("cliquenet_cifar", {"k": 4, "T": 6, "mode": "I+II"}, True),
    ("cliquenet_cifar", {"k": 4, "T": 6, "mode": "I+I"}, False),
], ids=["partial-rounds", "partial-rounds-me", "i_ii-rounds", "i_ii-me", "i_i"])
def test_same_network_as_the_flat_generator(variant, params, efficient):
    g = build_ir(CLIQUENET, variant, **params)
    assert class_origins(g, efficient)[("clique", "clique")] == ["CliqueBlock"]
    assert compare(g, memory_efficient=efficient) == []


def test_torchscript_and_export_run_the_loops():
    model = build(CLIQUENET, "cliquenet_cifar", k=4, T=9, partial=2, rounds=2, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)
