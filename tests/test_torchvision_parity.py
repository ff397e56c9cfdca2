"""The specs named after torchvision's classification CNNs against torchvision itself.

Every torchvision classification CNN has a pair in scripts/check_torchvision.py (a spec variant and
the torchvision builder it bears the name of). Every pair of part B of issue 14 has exactly
torchvision's parameter count (part A's: tests/test_torchvision_modern.py); one variant per family,
at a small input, gives torchvision's eval outputs after `archdsl.load_weights` (relative difference
< 1e-5, BN statistics randomised). The RegNet width rule is checked on its own against torchvision's BlockParams, and the
paper's (pycls's) rounding against the published models' figures. `python scripts/check_torchvision.py`
runs the outputs of every pair.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from archdsl import build_ir, ir

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def _script():
    spec = importlib.util.spec_from_file_location("check_torchvision", ROOT / "scripts" / "check_torchvision.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check = _script()
PAIRS = {pair.variant: pair for pair in check.VARIANTS}
# part A's families (EfficientNet, MobileNetV2/V3, MNASNet, ConvNeXt): tests/test_torchvision_modern.py
PART_A = {"efficientnet.arch", "mobilenet_v2.arch", "mobilenet_v3.arch", "mnasnet.arch", "convnext.arch"}
PART_B = [pair for pair in check.VARIANTS if pair.spec not in PART_A]


@pytest.mark.parametrize("pair", PART_B, ids=[p.variant for p in PART_B])
def test_parameter_count_equals_torchvision(pair):
    assert check.spec_params(pair) == check.torchvision_params(pair)


def test_every_torchvision_classification_cnn_has_a_variant():
    import torchvision.models

    transformers = ("vit_", "swin_", "maxvit_")  # not convolutional networks
    builders = {name for name in torchvision.models.list_models(module=torchvision.models)
                if not name.startswith(transformers)}
    assert builders == {pair.builder for pair in check.VARIANTS}
    for pair in check.VARIANTS:  # the exact name, or NAME_torchvision where a paper variant has the name
        assert pair.variant.removesuffix("_aux").removesuffix("_torchvision") == pair.builder


# One variant per family of part B: (variant, input side). tests/test_weights.py covers resnet50_v15
# (= resnet50_torchvision), densenet121, vgg16_bn, googlenet and inception_v3 the same way.
OUTPUTS = [
    ("regnet_y_400mf", 64),
    ("squeezenet1_1", 64),
    ("shufflenet_v2_x0_5", 64),
    ("densenet161", 64),
    ("wide_resnet50_2", 64),
    ("resnext50_32x4d", 64),
    ("alexnet_torchvision", 64),
]


@pytest.mark.parametrize("variant, size", OUTPUTS, ids=[v for v, _ in OUTPUTS])
def test_outputs_equal_torchvision_after_load_weights(variant, size):
    assert check.output_difference(PAIRS[variant], size) < check.TOLERANCE


def test_load_weights_is_what_makes_the_outputs_equal():
    """The comparison is not vacuous: without the weights the outputs differ."""
    import torch

    import archdsl

    pair = PAIRS["squeezenet1_1"]
    torch.manual_seed(0)
    reference = check.torchvision_model(pair).eval()
    check.randomise_norms(reference)
    model = archdsl.build(SPECS / pair.spec, pair.variant, seed=0, size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = (model(x) - reference(x)).norm() / reference(x).norm()
        archdsl.load_weights(model, reference)
        after = (model(x) - reference(x)).norm() / reference(x).norm()
    assert before > 0.1 and after < check.TOLERANCE


# ---------------------------------------------------------------- RegNet's design space


def _stages(g: ir.Graph) -> tuple[list[int], list[int], list[int]]:
    """Per stage: depth, width and group width, read back from the IR."""
    depths, widths, group_widths = [], [], []
    s = 1
    while f"stage{s}.block0.c" in g.nodes:
        n = 0
        while f"stage{s}.block{n}.c" in g.nodes:
            n += 1
        depths.append(n)
        widths.append(g.nodes[f"stage{s}.block0.c"]["args"]["out"])
        b = g.nodes[f"stage{s}.block0.b"]
        group_widths.append(b["args"]["out"] // b["args"]["groups"])
        s += 1
    return depths, widths, group_widths


# torchvision's eight RegNetY models' design-space points and points off every published model.
DESIGN_POINTS = [
    {"depth": 16, "w_0": 48, "w_a": 27.89, "w_m": 2.09, "group_width": 8, "se": 0.25},
    {"depth": 27, "w_0": 456, "w_a": 160.83, "w_m": 2.52, "group_width": 264, "se": 0.25},
    {"depth": 13, "w_0": 24, "w_a": 36.44, "w_m": 2.49, "group_width": 8},
    {"depth": 10, "w_0": 16, "w_a": 12.5, "w_m": 1.9, "group_width": 4},
    {"depth": 20, "w_0": 32, "w_a": 50.0, "w_m": 3.1, "group_width": 24, "se": 0.5},
    {"depth": 12, "w_0": 64, "w_a": 8.0, "w_m": 2.0, "group_width": 48},
    {"depth": 8, "w_0": 40, "w_a": 17.3, "w_m": 2.7, "group_width": 16, "bottleneck": 0.5},
]


@pytest.mark.parametrize("point", DESIGN_POINTS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_regnet_widths_follow_torchvision_block_params(point):
    from torchvision.models.regnet import BlockParams

    kwargs = {k: v for k, v in point.items() if k not in ("se", "bottleneck")}
    reference = BlockParams.from_init_params(**kwargs, bottleneck_multiplier=point.get("bottleneck", 1.0))
    g = build_ir(SPECS / "regnet.arch", "regnet", size=64, **point)
    depths, widths, group_widths = _stages(g)
    assert depths == reference.depths
    assert widths == reference.widths
    assert group_widths == reference.group_widths


def _pycls_widths(depth, w_0, w_a, w_m, group_width, **_):
    """The paper's code (pycls generate_regnet + adjust_block_compatibility for b = 1), in plain Python."""
    ws = [round(w_0 * w_m ** round(math.log((w_0 + w_a * j) / w_0) / math.log(w_m)) / 8) * 8 for j in range(depth)]
    stages = sorted(set(ws))
    groups = [min(group_width, w) for w in stages]
    return [ws.count(w) for w in stages], [max(g, round(w / g) * g) for w, g in zip(stages, groups)], groups


# The variants with the paper's rounding and their design-space points (pycls's configs).
PAPER_POINTS = {
    "regnet_x_400mf_paper": {"depth": 22, "w_0": 24, "w_a": 24.48, "w_m": 2.54, "group_width": 16},
    "regnet_y_800mf_paper": {"depth": 14, "w_0": 56, "w_a": 38.84, "w_m": 2.4, "group_width": 16},
    "regnet_y_8gf_paper": {"depth": 17, "w_0": 192, "w_a": 76.82, "w_m": 2.19, "group_width": 56},
    "regnet_x_200mf": {"depth": 13, "w_0": 24, "w_a": 36.44, "w_m": 2.49, "group_width": 8},
    "regnet_x_600mf": {"depth": 16, "w_0": 48, "w_a": 36.97, "w_m": 2.24, "group_width": 24},
    "regnet_x_4gf": {"depth": 23, "w_0": 96, "w_a": 38.65, "w_m": 2.43, "group_width": 40},
    "regnet_x_6_4gf": {"depth": 17, "w_0": 184, "w_a": 60.83, "w_m": 2.07, "group_width": 56},
    "regnet_x_12gf": {"depth": 19, "w_0": 168, "w_a": 73.36, "w_m": 2.37, "group_width": 112},
    "regnet_y_200mf": {"depth": 13, "w_0": 24, "w_a": 36.44, "w_m": 2.49, "group_width": 8},
    "regnet_y_600mf": {"depth": 15, "w_0": 48, "w_a": 32.54, "w_m": 2.32, "group_width": 16},
    "regnet_y_4gf": {"depth": 22, "w_0": 96, "w_a": 31.41, "w_m": 2.24, "group_width": 64},
    "regnet_y_6_4gf": {"depth": 25, "w_0": 112, "w_a": 33.22, "w_m": 2.27, "group_width": 72},
    "regnet_y_12gf": {"depth": 19, "w_0": 168, "w_a": 73.36, "w_m": 2.37, "group_width": 112},
}


@pytest.mark.parametrize("variant", PAPER_POINTS)
def test_regnet_paper_rounding_is_pycls(variant):
    g = build_ir(SPECS / "regnet.arch", variant)
    assert _stages(g) == _pycls_widths(**PAPER_POINTS[variant])
    assert all(c["ok"] for c in g.graph["checks"])  # the paper's parameter and flop figures


def test_regnet_roundings_differ_where_torchvision_retrained():
    """X-400MF: the paper's last stage has 384 channels, torchvision's 400 (and its own weights)."""
    tv = _stages(build_ir(SPECS / "regnet.arch", "regnet_x_400mf"))
    paper = _stages(build_ir(SPECS / "regnet.arch", "regnet_x_400mf_paper"))
    assert tv[1] == [32, 64, 160, 400] and paper[1] == [32, 64, 160, 384]
    assert paper == _pycls_widths(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16)


def test_regnet_y_block_has_squeeze_excitation_on_the_input_width():
    g = build_ir(SPECS / "regnet.arch", "regnet_y_400mf")
    # stage 2, block 0: input 48 channels, width 104; SE squeezes to round(0.25 * 48) = 12
    assert g.nodes["stage2.block0.se.fc1"]["args"]["out"] == 12
    assert tuple(g.nodes["stage2.block0.se.fc1"]["shape"]) == (12, 1, 1)
    assert ir.data_inputs(g, "stage2.block0.se.excite") == ["stage2.block0.b_relu", "stage2.block0.se.flatten1"]
    # a block that keeps the shape has no projection; the first of each stage has one (stride 2)
    assert "stage2.block1.proj" not in g.nodes and g.nodes["stage2.block0.proj"]["args"]["stride"] == 2


def test_regnet_rejects_a_point_outside_the_design_space():
    from archdsl.diagnostics import ArchError

    with pytest.raises(ArchError, match="w_0 % 8 == 0"):
        build_ir(SPECS / "regnet.arch", "regnet", depth=10, w_0=20, w_a=10.0, w_m=2.0, group_width=8)


# ---------------------------------------------------------------- diagrams


@pytest.mark.parametrize("file, variant, block", [
    ("regnet.arch", "regnet_y_128gf", "regnet_block"),
    ("shufflenet_v2.arch", "shufflenet_v2_x2_0", "shufflenet_v2_unit"),
    ("squeezenet.arch", "squeezenet1_0", "fire"),
    ("wide_resnet.arch", "wide_resnet101_2", "aggregated"),
    ("densenet.arch", "densenet161", "dense block"),
])
def test_each_family_draws_legibly_at_auto_detail(file, variant, block):
    from archdsl.render import LEGIBLE, build_view

    v = build_view(build_ir(SPECS / file, variant))
    assert len(v.nodes) <= LEGIBLE
    labels = [n.label for n in v.nodes.values()] + [c.label for c in v.clusters.values()]
    assert any(label.startswith(block) or f": {block}" in label for label in labels)
