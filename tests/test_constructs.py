"""Connection constructs: the layers they expand to, their names, and exact parameter counts.

Parameter counts are compared with the hand-written PyTorch reference blocks in tests/reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from archdsl import ir
from archdsl.api import build_ir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.reference.nets import (
    BasicBlock,
    CliqueBlockRef,
    DenseBlock,
    HighwayConv,
    InceptionModule,
    count_params,
)


def build(body: str, shape: str = "[16, 8, 8]", pre: str = ""):
    return build_ir(pre + "network n() {\n  input x: " + shape + "\n" + body + "\n}\n")


def layers(g) -> list[tuple[str, str, tuple]]:
    return [(n, g.nodes[n]["op"], g.nodes[n]["shape"]) for n in ir.layers(g)]


BASIC = """block basic(c, stride = 1, shortcut = "B") {
  residual(shortcut = shortcut) {
    conv(c, 3, stride = stride, bias = false) -> bn -> relu
    conv(c, 3, bias = false) -> bn
  }
  relu
}
"""


@pytest.mark.parametrize("cin, cout, stride, mode", [
    (16, 16, 1, "identity"), (16, 32, 2, "B"), (16, 32, 2, "A"), (16, 16, 1, "C"), (16, 32, 1, "B"),
])
def test_residual_counts_match_the_reference_basic_block(cin, cout, stride, mode):
    g = build(f'  basic({cout}, stride = {stride}, shortcut = "{mode}")', f"[{cin}, 8, 8]", BASIC)
    reference = BasicBlock(cin, cout, stride, {"identity": "identity", "A": "A", "B": "projection",
                                               "C": "projection"}[mode])
    assert ir.total_params(g) == count_params(reference)
    assert g.nodes["basic1.relu2"]["shape"] == (cout, 8 // stride, 8 // stride)


def test_residual_shortcut_layers_and_names():
    g = build('  residual(shortcut = "A") as r { conv(32, 3, stride = 2) }')
    assert layers(g) == [("r.conv1", "conv", (32, 4, 4)), ("r.shortcut.subsample1", "subsample", (16, 4, 4)),
                         ("r.shortcut.pad_channels1", "pad_channels", (32, 4, 4)), ("r.add1", "add", (32, 4, 4))]
    g = build("  residual { conv(32, 3, stride = 2) }")
    assert layers(g) == [("conv1", "conv", (32, 4, 4)), ("shortcut.conv1", "conv", (32, 4, 4)),
                         ("shortcut.bn1", "bn", (32, 4, 4)), ("add1", "add", (32, 4, 4))]
    assert g.nodes["shortcut.conv1"]["args"]["stride"] == 2 and g.nodes["shortcut.conv1"]["args"]["bias"] is False
    g = build('  residual(shortcut = "none") { conv(32, 3) }')
    assert layers(g) == [("conv1", "conv", (32, 8, 8))]
    g = build("  residual { relu }")
    assert [e[:2] for e in g.in_edges("add1")] == [("relu1", "add1"), ("x", "add1")]


def test_concat_branches_match_the_reference_inception_module():
    body = """  concat {
    branch { conv(64, 1) -> relu }
    branch { conv(96, 1) -> relu -> conv(128, 3) -> relu }
    branch { conv(16, 1) -> relu -> conv(32, 5) -> relu }
    branch pool { maxpool(3, stride = 1, pad = 1) -> conv(32, 1) -> relu }
  }"""
    g = build(body, "[192, 28, 28]")
    reference = InceptionModule(192, 64, 96, 128, 16, 32, 32)
    assert ir.total_params(g) == count_params(reference)
    assert g.nodes["concat1"]["shape"] == (256, 28, 28)
    assert ir.data_inputs(g, "concat1") == ["relu1", "relu3", "relu5", "pool.relu1"]


def test_sum_with_an_identity_branch_and_merging_named_tensors():
    g = build("  sum { branch { } branch { conv(16, 3) } branch { conv(16, 1) } }")
    assert ir.data_inputs(g, "add1") == ["x", "conv1", "conv2"]
    g = build("  a = conv(8, 1)\n  b = x -> conv(8, 3)\n  [a, b, a] -> concat")
    assert ir.data_inputs(g, "concat1") == ["conv1", "conv2", "conv1"]
    assert g.nodes["concat1"]["shape"] == (24, 8, 8)


@pytest.mark.parametrize("c0, n, k", [(24, 6, 12), (64, 3, 32), (16, 1, 8)])
def test_dense_block_matches_the_reference(c0, n, k):
    body = f"  dense({n}) {{ bn -> relu -> conv({4 * k}, 1, bias = false) -> bn -> relu -> conv({k}, 3, bias = false) }}"
    g = build(body, f"[{c0}, 8, 8]")
    assert ir.total_params(g) == count_params(DenseBlock(c0, n, k, bottleneck=True))
    assert g.nodes[ir.layers(g)[-1]]["shape"] == (c0 + n * k, 8, 8)
    if n > 1:
        assert ir.data_inputs(g, "dense1.layer2.concat1") == ["x", "dense1.layer1.conv2"]


def test_highway_matches_the_reference_and_initialises_the_gate_bias():
    g = build("  highway(kernel = 3, bias = -2) { conv(16, 3) -> relu }")
    reference = HighwayConv(16, 3, gate_bias=-2.0)
    assert ir.total_params(g) == count_params(reference)
    assert layers(g) == [("highway1.conv1", "conv", (16, 8, 8)), ("highway1.relu1", "relu", (16, 8, 8)),
                         ("highway1.transform", "conv", (16, 8, 8)), ("highway1.sigmoid1", "sigmoid", (16, 8, 8)),
                         ("highway1.gate", "gate", (16, 8, 8))]
    assert g.nodes["highway1.transform"]["args"]["bias_init"] == -2.0
    assert ir.data_inputs(g, "highway1.gate") == ["x", "highway1.relu1", "highway1.sigmoid1"]
    g = build("  highway { fc(10) }", "[10]")
    assert g.nodes["highway1.transform"]["op"] == "fc" and g.nodes["highway1.transform"]["args"]["bias_init"] == -1.0


def test_groups_split_apply_concat():
    g = build("  groups(4) { conv(8, 3) -> relu }")
    assert g.nodes["groups1.group3.slice1"]["args"] == {"start": 8, "stop": 12}
    assert g.nodes["groups1.concat1"]["shape"] == (32, 8, 8)
    assert ir.total_params(g) == 4 * (8 * 4 * 9 + 8)
    grouped = build("  conv(32, 3, groups = 4)")
    assert ir.total_params(grouped) == ir.total_params(g)  # the same layer, written as a grouped conv


def test_shuffle_keeps_the_shape():
    g = build("  conv(24, 1, groups = 3) -> shuffle(3)", "[12, 8, 8]")
    assert g.nodes["shuffle1"]["shape"] == (24, 8, 8) and g.nodes["shuffle1"]["args"] == {"groups": 3}


@pytest.mark.parametrize("c0, layers_, k, bottleneck, rounds, mode, partial", [
    (64, 5, 36, False, 1, "II+II", None), (16, 4, 8, True, 1, "II+II", None), (16, 3, 4, False, 2, "I+II", None),
    (16, 4, 4, False, 1, "I+I", None), (8, 5, 4, True, 3, "II+II", 2),
])
def test_clique_parameters_count_each_edge_once(c0, layers_, k, bottleneck, rounds, mode, partial):
    args = f'{layers_}, {k}, bottleneck = {str(bottleneck).lower()}, rounds = {rounds}, mode = "{mode}"'
    if partial is not None:
        args += f", partial = {partial}"
    g = build(f"  clique({args}) as b", f"[{c0}, 8, 8]")
    reference = CliqueBlockRef(c0, layers_, k, bottleneck, rounds, mode, partial)
    assert ir.total_params(g) == count_params(reference)
    assert g.nodes["b.transit"]["shape"] == (layers_ * k, 8, 8)
    assert g.nodes["b.feature"]["shape"] == (c0 + layers_ * k, 8, 8)


def test_clique_outputs_are_selected_by_name():
    g = build("  clique(3, 4) as b1\n  y = b1.feature -> conv(8, 1)\n  b1 -> conv(2, 1) as t")
    assert ir.data_inputs(g, "conv1") == ["b1.feature"]
    assert ir.data_inputs(g, "t") == ["b1.transit"]
    assert g.graph["outputs"] == {"output": "t"}
