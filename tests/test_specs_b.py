"""The faithful specs (resnet, resnext, densenet, dpn, mobilenet, xception, shufflenet, highway, dilated,
fcn, unet, yolo): every variant builds with all its stated figures met, has the exact parameter count
pinned here and the right output shape; plus structural checks of what each paper specifies."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.diagnostics import ArchError
from archdsl.elaborate import elaborate
from archdsl.ir import Graph, total_macs, total_params
from archdsl.loader import Program, load, load_text
from archdsl.ops import OPS, OpError


@functools.cache
def program(file: str) -> Program:
    return load(ROOT / "specs" / f"{file}.arch")


@functools.cache
def build(file: str, variant: str) -> Graph:
    """Each variant's IR is built once per test session."""
    return elaborate(program(file), variant)


def scope_params(g: Graph, prefix: str) -> int:
    return sum(d["params"] for n, d in g.nodes(data=True) if n.startswith(prefix + "."))


# (file, variant, exact parameter count, output name, output shape). The published figures (exact or
# rounded, and MACs) are the specs' own `expect` statements, which building a variant checks.
VARIANTS = [
    ("resnet", "resnet18", 11_689_512, "logits", [1000]),
    ("resnet", "resnet34", 21_797_672, "logits", [1000]),
    ("resnet", "resnet50", 25_557_032, "logits", [1000]),
    ("resnet", "resnet101", 44_549_160, "logits", [1000]),
    ("resnet", "resnet152", 60_192_808, "logits", [1000]),
    ("resnet", "resnet50_v15", 25_557_032, "logits", [1000]),
    ("resnet", "resnet50_torchvision", 25_557_032, "logits", [1000]),
    ("resnet", "resnet101_torchvision", 44_549_160, "logits", [1000]),
    ("resnet", "resnet152_torchvision", 60_192_808, "logits", [1000]),
    ("resnet", "resnet34_a", 21_623_848, "logits", [1000]),
    ("resnet", "resnet34_b", 21_797_672, "logits", [1000]),
    ("resnet", "resnet34_c", 22_716_840, "logits", [1000]),
    ("resnet", "plain18", 11_515_688, "logits", [1000]),
    ("resnet", "plain34", 21_623_848, "logits", [1000]),
    ("resnet", "resnet20", 269_722, "logits", [10]),
    ("resnet", "resnet32", 464_154, "logits", [10]),
    ("resnet", "resnet44", 658_586, "logits", [10]),
    ("resnet", "resnet56", 853_018, "logits", [10]),
    ("resnet", "resnet110", 1_727_962, "logits", [10]),
    ("resnet", "resnet1202", 19_421_274, "logits", [10]),
    ("resnet", "plain20", 269_722, "logits", [10]),
    ("resnet", "plain32", 464_154, "logits", [10]),
    ("resnet", "plain44", 658_586, "logits", [10]),
    ("resnet", "plain56", 853_018, "logits", [10]),
    ("resnet", "plain110", 1_727_962, "logits", [10]),
    ("resnext", "resnext50_32x4d", 25_028_904, "logits", [1000]),
    ("resnext", "resnext50_32x4d_split", 25_028_904, "logits", [1000]),
    ("resnext", "resnext101_32x4d", 44_177_704, "logits", [1000]),
    ("resnext", "resnext101_32x8d", 88_791_336, "logits", [1000]),
    ("resnext", "resnext101_64x4d", 83_455_272, "logits", [1000]),
    ("densenet", "densenet40_k12", 1_019_722, "logits", [10]),
    ("densenet", "densenet100_k12", 6_979_642, "logits", [10]),
    ("densenet", "densenet100_k24", 27_249_082, "logits", [10]),
    ("densenet", "densenet_bc100_k12", 769_162, "logits", [10]),
    ("densenet", "densenet_bc250_k24", 15_324_406, "logits", [10]),
    ("densenet", "densenet_bc190_k40", 25_624_430, "logits", [10]),
    ("densenet", "densenet121", 7_978_856, "logits", [1000]),
    ("densenet", "densenet161", 28_681_000, "logits", [1000]),
    ("densenet", "densenet169", 14_149_480, "logits", [1000]),
    ("densenet", "densenet201", 20_013_928, "logits", [1000]),
    ("densenet", "densenet264", 33_337_704, "logits", [1000]),
    ("dpn", "dpn92", 37_668_392, "logits", [1000]),
    ("dpn", "dpn98", 61_570_728, "logits", [1000]),
    ("dpn", "dpn68", 12_611_602, "logits", [1000]),
    ("mobilenet", "mobilenet_1_0_224", 4_231_976, "logits", [1000]),
    ("mobilenet", "mobilenet_1_0_192", 4_231_976, "logits", [1000]),
    ("mobilenet", "mobilenet_1_0_160", 4_231_976, "logits", [1000]),
    ("mobilenet", "mobilenet_1_0_128", 4_231_976, "logits", [1000]),
    ("mobilenet", "mobilenet_0_75_224", 2_585_560, "logits", [1000]),
    ("mobilenet", "mobilenet_0_75_192", 2_585_560, "logits", [1000]),
    ("mobilenet", "mobilenet_0_75_160", 2_585_560, "logits", [1000]),
    ("mobilenet", "mobilenet_0_75_128", 2_585_560, "logits", [1000]),
    ("mobilenet", "mobilenet_0_5_224", 1_331_592, "logits", [1000]),
    ("mobilenet", "mobilenet_0_5_192", 1_331_592, "logits", [1000]),
    ("mobilenet", "mobilenet_0_5_160", 1_331_592, "logits", [1000]),
    ("mobilenet", "mobilenet_0_5_128", 1_331_592, "logits", [1000]),
    ("mobilenet", "mobilenet_0_25_224", 470_072, "logits", [1000]),
    ("mobilenet", "mobilenet_0_25_192", 470_072, "logits", [1000]),
    ("mobilenet", "mobilenet_0_25_160", 470_072, "logits", [1000]),
    ("mobilenet", "mobilenet_0_25_128", 470_072, "logits", [1000]),
    ("xception", "xception", 22_855_952, "logits", [1000]),
    ("shufflenet", "shufflenet_g1", 1_531_936, "logits", [1000]),
    ("shufflenet", "shufflenet_g2", 1_733_848, "logits", [1000]),
    ("shufflenet", "shufflenet_g3", 1_865_728, "logits", [1000]),
    ("shufflenet", "shufflenet_g3_official", 1_864_728, "logits", [1000]),
    ("shufflenet", "shufflenet_g4", 1_968_344, "logits", [1000]),
    ("shufflenet", "shufflenet_g8", 2_434_768, "logits", [1000]),
    ("shufflenet", "shufflenet_g3_0_25x", 306_124, "logits", [1000]),
    ("shufflenet", "shufflenet_g3_0_5x", 718_324, "logits", [1000]),
    ("shufflenet", "shufflenet_g3_1_5x", 3_442_168, "logits", [1000]),
    ("shufflenet", "shufflenet_g3_2x", 5_450_776, "logits", [1000]),
    ("shufflenet", "shufflenet_g1_0_5x", 534_484, "logits", [1000]),
    ("shufflenet", "shufflenet_g8_0_5x", 1_011_448, "logits", [1000]),
    ("shufflenet", "shufflenet_units_g3", 16_872, "y", [240, 8, 8]),
    ("highway", "highway_mlp_10", 85_660, "logits", [10]),
    ("highway", "highway_mlp_20", 136_660, "logits", [10]),
    ("highway", "highway_mlp_50", 289_660, "logits", [10]),
    ("highway", "highway_mlp_100", 544_660, "logits", [10]),
    ("highway", "plain_mlp_10", 102_463, "logits", [10]),
    ("highway", "plain_mlp_20", 153_583, "logits", [10]),
    ("highway", "plain_mlp_50", 306_943, "logits", [10]),
    ("highway", "plain_mlp_100", 562_543, "logits", [10]),
    ("highway", "highway_cnn_13", 1_257_098, "logits", [10]),
    ("dilated", "context_basic", 28_392, "scores", [21, 64, 64]),
    ("dilated", "context_large", 6_803_139, "scores", [21, 64, 64]),
    ("fcn", "fcn32s", 136_152_917, "scores", [21, 500, 500]),
    ("fcn", "fcn16s", 134_815_994, "scores", [21, 500, 500]),
    ("fcn", "fcn8s", 134_489_759, "scores", [21, 500, 500]),
    ("unet", "unet_572", 31_030_658, "scores", [2, 388, 388]),
    ("yolo", "yolo_v1", 271_703_550, "predictions", [30, 7, 7]),
]


@pytest.mark.parametrize("file, variant, params, output, shape", VARIANTS, ids=[v[1] for v in VARIANTS])
def test_variant(file: str, variant: str, params: int, output: str, shape: list[int]) -> None:
    g = build(file, variant)
    assert total_params(g) == params
    assert list(g.nodes[g.graph["outputs"][output]]["shape"]) == shape
    checks = g.graph["checks"]
    assert checks and all(c["ok"] for c in checks)


def test_every_variant_of_these_files_is_listed() -> None:
    listed = {(f, v) for f, v, *_ in VARIANTS}
    for file in sorted({f for f, *_ in VARIANTS}):
        p = program(file)
        assert {(file, v) for v in p.order if v in p.variants} <= listed


# ---------------------------------------------------------------- ResNet


def test_resnet_layer_names_and_stride_placement() -> None:
    paper, v15 = build("resnet", "resnet50"), build("resnet", "resnet50_v15")
    assert paper.nodes["layer2.block0.conv1"]["args"]["stride"] == 2
    assert paper.nodes["layer2.block0.conv2"]["args"]["stride"] == 1
    assert v15.nodes["layer2.block0.conv1"]["args"]["stride"] == 1
    assert v15.nodes["layer2.block0.conv2"]["args"]["stride"] == 2
    assert (total_macs(paper), total_macs(v15)) == (3_857_973_248, 4_089_184_256)
    assert paper.nodes["layer2.block1.conv1"]["shape"] == (128, 28, 28)


def test_resnet_shortcut_options() -> None:
    a, b, c = (build("resnet", f"resnet34_{m}") for m in "abc")
    assert a.nodes["layer2.block0.shortcut.pad_channels1"]["shape"] == (128, 28, 28)
    assert scope_params(b, "layer2.block0.shortcut") == 128 * 64 + 2 * 128
    assert scope_params(c, "layer1.block0.shortcut") == 64 * 64 + 2 * 64
    assert not any(".shortcut." in n for n in build("resnet", "plain34"))


# ---------------------------------------------------------------- ResNeXt, DenseNet, DPN


def test_resnext_split_form_equals_grouped_conv() -> None:
    grouped, split = build("resnext", "resnext50_32x4d"), build("resnext", "resnext50_32x4d_split")
    assert total_macs(grouped) == total_macs(split) == 4_230_479_872
    assert grouped.nodes["layer1.block0.conv2"]["args"]["groups"] == 32
    assert split.nodes["layer1.block0.groups1.group32.conv"]["shape"] == (4, 56, 56)


def test_densenet_transition_compression() -> None:
    g = build("densenet", "densenet121")
    assert g.nodes["denseblock1.concat1"]["shape"] == (64 + 6 * 32, 56, 56)
    assert g.nodes["transition1.conv"]["shape"] == (128, 56, 56)
    assert build("densenet", "densenet40_k12").nodes["transition1.conv"]["shape"] == (160, 32, 32)


def test_densenet264_matches_the_torch_reference() -> None:
    from tests.reference.nets import DenseNet, count_params

    assert count_params(DenseNet((6, 12, 64, 48))) == total_params(build("densenet", "densenet264"))


def test_dpn_dense_path_grows_by_inc_per_block() -> None:
    g = build("dpn", "dpn92")
    assert [g.nodes[f"conv2.block{i}.concat1"]["shape"][0] for i in (1, 2, 3)] == [304, 320, 336]
    assert g.nodes["conv3.block1.concat1"]["shape"] == (512 + 3 * 32, 28, 28)


# ---------------------------------------------------------------- MobileNet, Xception, ShuffleNet


def test_mobilenet_macs() -> None:
    assert total_macs(build("mobilenet", "mobilenet_1_0_224")) == 568_740_352
    assert build("mobilenet", "mobilenet_0_25_224").nodes["conv1"]["shape"] == (8, 112, 112)


def test_xception_shortcut_stride_on_odd_sizes() -> None:
    g = build("xception", "xception")
    conv = g.nodes["entry.block1.shortcut.conv1"]
    assert (conv["args"]["stride"], conv["shape"]) == (2, (128, 74, 74))
    assert g.nodes["entry.block3.shortcut.conv1"]["shape"] == (728, 19, 19)


def test_shufflenet_unit_choices() -> None:
    g = build("shufflenet", "shufflenet_g3")
    assert g.nodes["stage2.unit1.conv1"]["args"]["groups"] == 1
    assert g.nodes["stage2.unit2.conv1"]["args"]["groups"] == 3
    assert g.nodes["stage2.unit1.conv1"]["shape"] == (60, 56, 56)
    assert g.nodes["stage2.unit1.conv2"]["shape"] == (240 - 24, 28, 28)
    assert total_macs(g) == 137_460_672


def test_channel_shuffle_order() -> None:
    import torch
    source = OPS["shuffle"].forward({"groups": 3}, ["x"], None, [(6, 1, 1)])
    out = eval(source, {"x": torch.arange(6.0).reshape(1, 6, 1, 1)})  # the generated forward expression
    assert out.flatten().tolist() == [0, 2, 4, 1, 3, 5]


# ---------------------------------------------------------------- Highway


def test_highway_layer_counts_and_gate_bias() -> None:
    g = build("highway", "highway_cnn_13")
    for stage, c in enumerate([32, 64, 128], 1):
        for i in range(1, 4):
            assert scope_params(g, f"stage{stage}.highway{i}") == 2 * (3 * 3 * c * c + c)
    assert g.nodes["stage1.highway1.transform"]["args"]["bias_init"] == -2.0  # 13 layers
    assert scope_params(build("highway", "highway_mlp_10"), "highway1") == 2 * (50 * 50 + 50)
    for variant, bias in (("highway_mlp_10", -1.0), ("highway_mlp_20", -2.0), ("highway_mlp_50", -3.0)):
        assert build("highway", variant).nodes["highway1.transform"]["args"]["bias_init"] == bias


# ---------------------------------------------------------------- FCN, U-Net, YOLO


def test_fcn_vgg_part_and_crop_offsets() -> None:
    g = build("fcn", "fcn8s")
    vgg = sum(d["params"] for n, d in g.nodes(data=True) if n.startswith(("conv", "fc6", "fc7")))
    assert vgg == 138_357_544 - 4_097_000  # torchvision's vgg16 less its last fc layer
    assert [g.nodes[n]["args"]["offset"] for n in ("score_pool4c", "score_pool3c", "score")] == [5, 9, 31]
    assert g.nodes["upscore8"]["shape"] == (21, 568, 568)


def test_crop_offset_source_and_error() -> None:
    assert OPS["crop"].forward({"size": [500, 500], "offset": 19}, ["x"], None, [(21, 544, 544)]) == \
        "x[:, :, 19:519, 19:519]"
    assert OPS["crop"].forward({"size": [2, 2]}, ["x"], None, [(1, 6, 6)]) == "x[:, :, 2:4, 2:4]"
    with pytest.raises(OpError, match=r"a 4x4 crop at offset \[3, 3\] does not fit the \[1, 6, 6\] input"):
        OPS["crop"].infer({"size": 4, "offset": 3}, [(1, 6, 6)])


def test_unet_crop_and_concat() -> None:
    g = build("unet", "unet_572")
    assert g.nodes["up1.crop"]["shape"] == (64, 392, 392)
    assert g.nodes["up1.concat"]["shape"] == (128, 392, 392)


def test_reshape_op() -> None:
    assert build("yolo", "yolo_v1").nodes["fc2"]["shape"] == (1470,)
    assert OPS["reshape"].forward({"shape": [30, 7, 7]}, ["x"], None, [(1470,)]) == "x.reshape(-1, 30, 7, 7)"
    with pytest.raises(OpError, match=r"cannot reshape \[1470\] \(1470 values\) to \[30, 7, 6\] \(1260 values\)"):
        OPS["reshape"].infer({"shape": [30, 7, 6]}, [(1470,)])


def test_residual_shortcut_without_a_stride_is_reported() -> None:
    text = """
network n() {
  input x: [4, 9, 9]
  residual("B") { conv(8, 3, pad = 0) }
}
"""
    with pytest.raises(ArchError, match=r"residual: cannot match the \[4, 9, 9\] input to the \[8, 7, 7\] body output"):
        elaborate(load_text(text), "n")
