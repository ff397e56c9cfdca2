"""Structure of the EfficientNet, MobileNetV2/V3, MNASNet and ConvNeXt specs (what the papers and
torchvision specify, beyond the counts in tests/test_torchvision_modern.py) and how `archdsl render`
draws them at automatic detail: repeated MBConv, Fused-MBConv and ConvNeXt blocks fold "x N" although
their drop-path rates differ, and collapsed blocks do not print those rates."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import archdsl
from archdsl.ir import Graph
from archdsl.render.view import LEGIBLE, RenderOptions, build_view

SPECS = Path(__file__).resolve().parents[1] / "specs"


@functools.cache
def graph(file: str, variant: str) -> Graph:
    return archdsl.build_ir(SPECS / file, variant)


def ops(g: Graph, prefix: str) -> list[str]:
    return [d["op"] for n, d in sorted(g.nodes(data=True), key=lambda n: n[1]["order"]) if n.startswith(prefix + ".")]


def test_mbconv_expands_only_when_the_ratio_is_not_one_and_adds_only_when_the_shape_is_kept():
    g = graph("efficientnet.arch", "efficientnet_b0")
    assert ops(g, "stage1.block1")[:3] == ["dwconv", "bn", "silu"]  # expansion 1: no 1x1 expansion
    assert "add" not in ops(g, "stage1.block1") and "add" not in ops(g, "stage2.block1")
    assert ops(g, "stage2.block2")[-2:] == ["drop_path", "add"]
    assert g.nodes["stage2.block2.se.fc1"]["shape"] == (6, 1, 1)  # squeeze: a quarter of the block input (24)
    assert g.nodes["stage6.block1.dw"]["args"]["kernel"] == 5 and g.nodes["stage6.block1.dw"]["shape"] == (672, 7, 7)
    assert g.nodes["head"]["shape"] == (1280, 7, 7)


def test_efficientnet_scaling_rounds_widths_to_eight_and_depths_up():
    g = graph("efficientnet.arch", "efficientnet_b4")  # width 1.4, depth 1.8
    assert g.nodes["stem"]["shape"] == (48, 190, 190)
    assert [sum(1 for s in g.graph["scopes"] if re.fullmatch(rf"stage{i}\.block\d+", s)) for i in range(1, 8)] == \
        [2, 4, 4, 6, 6, 8, 2]
    assert g.nodes["head"]["shape"][0] == 4 * 448
    assert g.nodes["stem_bn"]["args"]["eps"] == 1e-5
    assert graph("efficientnet.arch", "efficientnet_b7").nodes["stem_bn"]["args"] == \
        {"eps": 1e-3, "momentum": 0.01, "affine": True, "zero_init": False}


def test_efficientnet_v2_starts_with_fused_blocks_without_se():
    g = graph("efficientnet.arch", "efficientnet_v2_s")
    assert ops(g, "stage1.block1") == ["conv", "bn", "silu", "drop_path", "add"]  # expansion 1: one 3x3 conv
    assert ops(g, "stage2.block1") == ["conv", "bn", "silu", "conv", "bn"]
    assert "mul" not in ops(g, "stage3") and "mul" in ops(g, "stage4")
    assert g.nodes["head"]["shape"] == (1280, 12, 12)


def test_mobilenet_v3_blocks_follow_tables_1_and_2():
    large = graph("mobilenet_v3.arch", "mobilenet_v3_large")
    assert ops(large, "block1") == ["dwconv", "bn", "relu", "conv", "bn", "add"]
    assert "hardswish" in ops(large, "block7") and "mul" not in ops(large, "block7")
    assert large.nodes["block4.se.fc1"]["shape"] == (24, 1, 1)  # _make_divisible(72 // 4, 8)
    assert ops(large, "block4.se")[-2:] == ["hardsigmoid", "mul"]
    small = graph("mobilenet_v3.arch", "mobilenet_v3_small")
    assert ops(small, "block1") == ["dwconv", "bn", "relu", "adaptive_avgpool", "conv", "relu", "conv",
                                    "hardsigmoid", "mul", "conv", "bn"]  # stride 2: no shortcut
    assert small.nodes["fc1"]["shape"] == (1024,) and small.nodes["head"]["shape"] == (576, 7, 7)


def test_mnasnet_widths_round_up_unless_ten_percent_over():
    g = graph("mnasnet.arch", "mnasnet0_75")  # 16 * 0.75 = 12 -> 16, 40 * 0.75 = 30 -> 32
    assert g.nodes["stem_pw"]["shape"][0] == 16 and g.nodes["stack2.block1.project"]["shape"][0] == 32
    assert g.nodes["stem_bn"]["args"]["momentum"] == pytest.approx(3e-4)


def test_convnext_block_runs_its_pointwise_layers_channels_last():
    g = graph("convnext.arch", "convnext_tiny")
    assert ops(g, "stage1.block2") == ["dwconv", "permute", "layernorm", "fc", "gelu", "fc", "permute",
                                       "layer_scale", "drop_path", "add"]
    assert g.nodes["stage1.block2.pw1"]["shape"] == (56, 56, 384)
    assert g.nodes["stage1.block2.norm"]["args"] == {"axis": -1, "eps": 1e-6, "affine": True}
    assert g.nodes["downsample2.norm"]["args"]["axis"] == 0 and g.nodes["stem"]["shape"] == (96, 56, 56)
    rates = [d["args"]["p"] for _, d in sorted(g.nodes(data=True), key=lambda n: n[1]["order"])
             if d["op"] == "drop_path"]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.1) and len(rates) == 18


@pytest.mark.parametrize("file, variant, folded", [
    ("efficientnet.arch", "efficientnet_b0", ["mbconv x2", "mbconv x2", "mbconv x3"]),
    ("efficientnet.arch", "efficientnet_v2_s", ["fused_mbconv x2", "fused_mbconv x3", "fused_mbconv x3",
                                                "mbconv x5", "mbconv x8", "mbconv x14"]),
    ("mobilenet_v2.arch", "mobilenet_v2", ["inverted_residual x2", "inverted_residual x3", "inverted_residual x2",
                                           "inverted_residual x2"]),
    ("mobilenet_v3.arch", "mobilenet_v3_large", None),
    ("mnasnet.arch", "mnasnet1_0", ["inverted_residual x2", "inverted_residual x2", "inverted_residual x2",
                                    "inverted_residual x3"]),
])
def test_auto_detail_folds_repeated_blocks(file, variant, folded):
    view = build_view(graph(file, variant), RenderOptions())
    assert len(view.nodes) <= LEGIBLE
    titles = [n.label for n in view.nodes.values() if n.role == "block"]
    if folded is not None:
        assert view.fold and [t for t in titles if " x" in t] == folded
    # a folded run's drop-path rates are shown as their range (docs/render.md, "Folding repeated blocks")
    assert all(".." in line for n in view.nodes.values() for line in n.lines if "p=" in line and " x" in n.label)


def test_convnext_draws_each_stage_as_one_folded_block_of_layers():
    view = build_view(graph("convnext.arch", "convnext_tiny"), RenderOptions())
    assert (view.detail, view.fold) == ("layers", True) and len(view.nodes) <= LEGIBLE
    assert sorted(c.label.split("\t")[0].split(" (")[0] for c in view.clusters.values() if c.count > 1) == \
        ["cn_block x3", "cn_block x3", "cn_block x3", "cn_block x9"]
