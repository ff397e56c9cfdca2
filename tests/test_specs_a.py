"""The classic-network specs (LeNet to Inception-ResNet) against their papers' figures.

One test per variant: it validates (every `expect` in the spec holds), its parameter count equals
the published figure, its outputs have the published shapes, and its MACs match where the paper
publishes them. Further tests check the wiring the papers describe (AlexNet's towers, LeNet-5's
Table I, GoogLeNet's auxiliary heads, BN-Inception's 608-channel modules) and recompute the counts
the papers do not publish with an independent plain-PyTorch build or arithmetic.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest
from torch import nn

from archdsl import ir
from archdsl.elaborate import elaborate
from archdsl.loader import load

SPECS = Path(__file__).resolve().parents[1] / "specs"

# file, variant, parameters, {output: shape}, MACs (None where no figure is published)
VARIANTS = [
    ("lenet.arch", "lenet5", 60_000, {"scores": (10,)}, 332_824),
    ("lenet.arch", "lenet5_modern", 61_706, {"scores": (10,)}, None),
    ("seed002_example.arch", "example", 338_460, {"features": (200,)}, None),
    ("alexnet.arch", "alexnet", 60_965_224, {"logits": (1000,)}, None),
    ("alexnet.arch", "alexnet_onetower", 62_378_344, {"logits": (1000,)}, None),
    ("alexnet.arch", "alexnet_torchvision", 61_100_840, {"logits": (1000,)}, 714_188_480),
    ("zfnet.arch", "zfnet", 62_357_608, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg11", 132_863_336, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg11_lrn", 132_863_336, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg13", 133_047_848, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg16c", 133_638_952, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg16", 138_357_544, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg19", 143_667_240, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg11_bn", 132_868_840, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg13_bn", 133_053_736, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg16c_bn", 133_647_400, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg16_bn", 138_365_992, {"logits": (1000,)}, None),
    ("vgg.arch", "vgg19_bn", 143_678_248, {"logits": (1000,)}, None),
    ("nin.arch", "nin", 966_986, {"logits": (10,)}, None),
    ("googlenet.arch", "googlenet", 6_998_552, {"logits": (1000,)}, None),
    ("googlenet.arch", "googlenet_aux", 13_378_280, {"logits": (1000,), "aux1": (1000,), "aux2": (1000,)}, None),
    ("googlenet.arch", "googlenet_torchvision", 6_624_904, {"logits": (1000,)}, None),
    ("googlenet.arch", "googlenet_torchvision_aux", 13_004_888,
     {"logits": (1000,), "aux1": (1000,), "aux2": (1000,)}, None),
    ("googlenet.arch", "inception_3a", 163_696, {"y": (256, 28, 28)}, None),
    ("bn_inception.arch", "bn_inception", 11_285_224, {"logits": (1000,)}, None),
    ("bn_inception.arch", "bn_inception_caffe", 11_295_240, {"logits": (1000,)}, None),
    ("inception_v3.arch", "inception_v3", 23_834_568, {"logits": (1000,)}, None),
    ("inception_v3.arch", "inception_v3_aux", 27_161_264, {"logits": (1000,), "aux_logits": (1000,)}, None),
    ("inception_v3.arch", "inception_v3_torchvision", 27_161_264, {"logits": (1000,), "aux_logits": (1000,)},
     None),
    ("inception_v4.arch", "inception_v4", 42_679_816, {"logits": (1000,)}, None),
    ("inception_v4.arch", "inception_resnet_v2", 55_843_464, {"logits": (1000,)}, None),
    ("inception_v4.arch", "inception_resnet_v1", 22_756_328, {"logits": (1000,)}, None),
    ("deep_supervision.arch", "c1_deepsup", 14_311_724, {"main": (150, 64, 64), "deepsup": (150, 64, 64)}, None),
    ("deep_supervision.arch", "c1_deepsup_inference", 9_515_158, {"main": (150, 512, 512)}, None),
    ("deep_supervision.arch", "dsn", 1_335_646, {"logits": (10,), "companion1": (10,), "companion2": (10,)}, None),
]


@cache
def graph(file: str, network: str) -> ir.Graph:
    return elaborate(load(SPECS / file), network)


def output_shapes(g: ir.Graph) -> dict[str, tuple]:
    return {name: tuple(g.nodes[node]["shape"]) for name, node in g.graph["outputs"].items()}


@pytest.mark.parametrize("file, network, params, outputs, macs", VARIANTS, ids=[v[1] for v in VARIANTS])
def test_variant_matches_published_figures(file, network, params, outputs, macs):
    g = graph(file, network)
    assert g.graph["checks"] and all(check["ok"] for check in g.graph["checks"])
    assert ir.total_params(g) == params
    assert output_shapes(g) == outputs
    if macs is not None:
        assert ir.total_macs(g) == macs


def test_every_variant_of_these_files_is_tested():
    variants = set()
    for file in {v[0] for v in VARIANTS}:
        program = load(SPECS / file)
        variants |= {(file, name) for name in program.order if name in program.variants}
    assert variants == {(v[0], v[1]) for v in VARIANTS if v[1] != "inception_3a"}


# ---------------------------------------------------------------- LeNet-5


def test_lenet5_layers_follow_the_paper():
    g = graph("lenet.arch", "lenet5")
    nodes = g.nodes
    assert [nodes[n]["params"] for n in ("c1", "s2", "c3", "s4", "c5", "f6", "out")] == \
        [156, 12, 1516, 32, 48_120, 10_164, 0]
    assert [tuple(nodes[n]["shape"]) for n in ("c1", "s2", "c3", "s4", "c5", "f6", "out")] == \
        [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1), (84,), (10,)]
    table = nodes["c3"]["args"]["table"]
    # Table I: columns 0-5 take 3 contiguous maps, 6-11 four contiguous, 12-14 four non-contiguous, 15 all six.
    assert [len(row) for row in table] == [3] * 6 + [4] * 9 + [6]
    assert table[0] == [0, 1, 2] and table[12] == [0, 1, 3, 4] and table[15] == [0, 1, 2, 3, 4, 5]
    assert nodes["s2"]["op"] == "trainable_pool" and nodes["out"]["op"] == "rbf"
    # the paper's connection counts are MACs plus one bias per output unit
    connections = {"c1": 122_304, "s2": 5_880, "c3": 151_600, "s4": 2_000, "c5": 48_120, "f6": 10_164}
    for name, count in connections.items():
        assert nodes[name]["macs"] + math.prod(nodes[name]["shape"]) == count, name


def test_lenet5_modern_is_the_common_form():
    g = graph("lenet.arch", "lenet5_modern")
    ops = {n: d["op"] for n, d in g.nodes(data=True)}
    assert ops["c3"] == "conv" and ops["s2"] == "avgpool" and ops["out"] == "fc"


# ---------------------------------------------------------------- AlexNet


def test_alexnet_has_two_towers_crossing_at_conv3_and_the_fcs():
    g = graph("alexnet.arch", "alexnet")
    preds = {n: ir.data_inputs(g, n) for n in g.nodes}
    for t in (1, 2):
        # conv2 reads its own tower's conv1 (through relu, lrn, pool): a chain inside the tower
        chain = f"conv1_2.tower{t}"
        assert preds[f"{chain}.conv2"] == [f"{chain}.maxpool1"]
        assert tuple(g.nodes[f"{chain}.conv1"]["shape"]) == (48, 55, 55)
        # conv3 reads the concatenation of both towers
        assert preds[f"conv3_5.tower{t}.conv3"] == ["conv1_2.concat1"]
        assert g.nodes[f"conv3_5.tower{t}.conv3"]["params"] == 384 // 2 * 256 * 9 + 384 // 2
        assert preds[f"conv3_5.tower{t}.conv4"] == [f"conv3_5.tower{t}.relu1"]
        assert preds[f"fc6.tower{t}.fc"] == ["flatten1"]
        assert preds[f"fc7.tower{t}.fc"] == ["fc6.concat1"]
    assert [ir.data_inputs(g, "conv1_2.concat1")] == [["conv1_2.tower1.maxpool2", "conv1_2.tower2.maxpool2"]]
    lrn = [d for _, d in g.nodes(data=True) if d["op"] == "lrn"]
    assert len(lrn) == 4 and all(d["args"] == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0} for d in lrn)


def test_zfnet_map_sizes_follow_figure_3():
    g = graph("zfnet.arch", "zfnet")
    sizes = [g.nodes[n]["shape"][1] for n in ("conv1", "maxpool1", "conv2", "maxpool2", "conv5", "maxpool3")]
    assert sizes == [110, 55, 26, 13, 13, 6]


# ---------------------------------------------------------------- VGG


@pytest.mark.parametrize("network, convs", [("vgg11", 8), ("vgg13", 10), ("vgg16c", 13), ("vgg16", 13),
                                            ("vgg19", 16)])
def test_vgg_depths(network, convs):
    g = graph("vgg.arch", network)
    assert sum(d["op"] == "conv" for _, d in g.nodes(data=True)) == convs
    assert sum(d["op"] == "fc" for _, d in g.nodes(data=True)) == 3
    bn = graph("vgg.arch", network + "_bn")
    assert sum(d["op"] == "bn" for _, d in bn.nodes(data=True)) == convs


def test_vgg16c_has_1x1_convs_closing_stages_3_to_5():
    g = graph("vgg.arch", "vgg16c")
    assert [g.nodes[f"stage{s}.conv3"]["args"]["kernel"] for s in (3, 4, 5)] == [1, 1, 1]


# ---------------------------------------------------------------- Inception family


def test_googlenet_aux_heads_sit_on_4a_and_4d():
    g = graph("googlenet.arch", "googlenet_aux")
    assert ir.data_inputs(g, "aux1.pool") == ["inception_4a.concat1"]
    assert ir.data_inputs(g, "aux2.pool") == ["inception_4d.concat1"]
    assert tuple(g.nodes["aux1.pool"]["shape"]) == (512, 4, 4)
    assert tuple(g.nodes["aux2.pool"]["shape"]) == (528, 4, 4)
    assert g.nodes["inception_3a.b5x5.conv.conv"]["args"]["kernel"] == 5
    tv = graph("googlenet.arch", "googlenet_torchvision")
    assert tv.nodes["inception_3a.b5x5.conv.conv"]["args"]["kernel"] == 3


def test_googlenet_macs_match_table_1_rows():
    g = graph("googlenet.arch", "googlenet")
    per_module: dict[str, int] = {}
    for name, data in g.nodes(data=True):
        per_module[name.split(".")[0]] = per_module.get(name.split(".")[0], 0) + data["macs"]
    table = {"conv1": 118, "inception_3a": 128, "inception_3b": 304, "inception_4a": 73, "inception_4b": 88,
             "inception_4c": 100, "inception_4d": 119, "inception_4e": 170, "inception_5b": 71}
    for name, millions in table.items():
        assert abs(per_module[name] / 1e6 - millions) < 1, name  # the table rounds some rows down, some up
    assert abs((per_module["conv2_reduce"] + per_module["conv2"]) / 1e6 - 360) < 1


def _bn_inception_reference(conv_bias: bool) -> nn.Module:
    """BN-Inception straight from the appendix table, in plain torch (widths as the filter columns)."""

    def unit(cin, cout, k, stride=1):
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=conv_bias), nn.BatchNorm2d(cout)]

    rows = [(64, 64, 64, 64, 96, 32), (64, 64, 96, 64, 96, 64), (0, 128, 160, 64, 96, 0),
            (224, 64, 96, 96, 128, 128), (192, 96, 128, 96, 128, 128), (160, 128, 160, 128, 160, 128),
            (96, 128, 192, 160, 192, 128), (0, 128, 192, 192, 256, 0), (352, 192, 320, 160, 224, 128),
            (352, 192, 320, 192, 224, 128)]
    layers = unit(3, 64, 7, 2) + unit(64, 64, 1) + unit(64, 192, 3)
    cin = 192
    for c1, r3, c3, rd, cd, proj in rows:
        stride = 2 if c1 == 0 else 1
        if c1:
            layers += unit(cin, c1, 1)
        layers += unit(cin, r3, 1) + unit(r3, c3, 3, stride)
        layers += unit(cin, rd, 1) + unit(rd, cd, 3) + unit(cd, cd, 3, stride)
        if proj:
            layers += unit(cin, proj, 1)
        cin = c1 + c3 + cd + (proj if proj else cin)
    assert cin == 1024
    return nn.ModuleList(layers + [nn.Linear(cin, 1000)])


@pytest.mark.parametrize("network, conv_bias", [("bn_inception", False), ("bn_inception_caffe", True)])
def test_bn_inception_count_agrees_with_a_plain_torch_build(network, conv_bias):
    reference = sum(p.numel() for p in _bn_inception_reference(conv_bias).parameters())
    assert ir.total_params(graph("bn_inception.arch", network)) == reference


def test_inception_resnet_v1_count_by_hand():
    def unit(cin, cout, k=1):  # bias-free conv + BN scale and shift
        return cin * cout * k + 2 * cout

    stem = unit(3, 32, 9) + unit(32, 32, 9) + unit(32, 64, 9) + unit(64, 80) + unit(80, 192, 9) + unit(192, 256, 9)
    block_a = unit(256, 32) * 3 + unit(32, 32, 9) * 3 + 96 * 256 + 256
    reduction_a = unit(256, 384, 9) + unit(256, 192) + unit(192, 192, 9) + unit(192, 256, 9)
    block_b = unit(896, 128) * 2 + unit(128, 128, 7) * 2 + 256 * 896 + 896
    reduction_b = unit(896, 256) * 3 + unit(256, 384, 9) + unit(256, 256, 9) * 3
    block_c = unit(1792, 192) * 2 + unit(192, 192, 3) * 2 + 384 * 1792 + 1792
    total = stem + 5 * block_a + reduction_a + 10 * block_b + reduction_b + 5 * block_c + 1792 * 1000 + 1000
    assert ir.total_params(graph("inception_v4.arch", "inception_resnet_v1")) == total == 22_756_328


def test_inception_resnet_blocks_are_scaled_residuals():
    g = graph("inception_v4.arch", "inception_resnet_v2")
    adds = [n for n, d in g.nodes(data=True) if d["op"] == "add"]
    assert len(adds) == 40
    scales = sorted({d["args"]["factor"] for _, d in g.nodes(data=True) if d["op"] == "scale"})
    assert scales == [0.1, 0.17, 0.2, 1.0]
    assert tuple(g.nodes["reduction_a.concat1"]["shape"]) == (1088, 17, 17)
    assert tuple(g.nodes["reduction_b.concat1"]["shape"]) == (2080, 8, 8)


def test_inception_v3_grid_sizes():
    g = graph("inception_v3.arch", "inception_v3_aux")
    assert tuple(g.nodes["Mixed_5d.concat1"]["shape"]) == (288, 35, 35)
    assert tuple(g.nodes["Mixed_6e.concat1"]["shape"]) == (768, 17, 17)
    assert tuple(g.nodes["Mixed_7c.concat1"]["shape"]) == (2048, 8, 8)
    assert ir.data_inputs(g, "AuxLogits.pool") == ["Mixed_6e.concat1"]


def test_deep_supervision_branches_read_conv5_and_conv4():
    g = graph("deep_supervision.arch", "c1_deepsup")
    assert ir.data_inputs(g, "cbr.conv") == ["conv5"]
    assert ir.data_inputs(g, "cbr_deepsup.conv") == ["conv4"]
    assert g.nodes[g.graph["outputs"]["deepsup"]]["op"] == "log_softmax"
    dsn = graph("deep_supervision.arch", "dsn")
    assert ir.total_params(dsn) == ir.total_params(graph("nin.arch", "nin")) + (96 * 16 * 16 + 1) * 10 \
        + (192 * 8 * 8 + 1) * 10
