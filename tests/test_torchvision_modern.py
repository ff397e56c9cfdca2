"""The EfficientNet (v1, v2), MobileNetV2/V3, MNASNet and ConvNeXt specs against torchvision: every
variant has exactly torchvision's parameter count (torchvision on the meta device) and its stochastic
depth schedule; one variant per family, at a small input, computes torchvision's eval output (relative
difference < 1e-5) with torchvision's weights loaded, and EfficientNet-B0 also its training-mode
output under the same random seed (so drop-path sits exactly where torchvision applies it).
scripts/check_torchvision.py runs the outputs of every variant."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.ir import total_params

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def checker():
    spec = importlib.util.spec_from_file_location("check_torchvision", ROOT / "scripts" / "check_torchvision.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


PAIRS = {p.variant: p for p in checker().VARIANTS}
TORCHVISION_BUILDERS = [
    *(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
    "mnasnet1_3", "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]


def test_every_builder_of_these_families_has_a_variant_of_its_name():
    assert set(TORCHVISION_BUILDERS) <= set(PAIRS)
    assert all(PAIRS[name].builder == name for name in TORCHVISION_BUILDERS)


@pytest.mark.parametrize("variant", TORCHVISION_BUILDERS)
def test_parameter_count_equals_torchvision(variant):
    pair = PAIRS[variant]
    g = archdsl.build_ir(ROOT / "specs" / pair.spec, variant)
    assert total_params(g) == checker().torchvision_params(pair)
    assert all(c["ok"] for c in g.graph["checks"])


@pytest.mark.parametrize("variant", ["efficientnet_b3", "efficientnet_v2_m", "convnext_small"])
def test_stochastic_depth_rates_follow_torchvision(variant):
    """A drop-path node on every residual branch torchvision drops, with its rate, in its order."""
    pair = PAIRS[variant]
    g = archdsl.build_ir(ROOT / "specs" / pair.spec, variant)
    ours = [d["args"]["p"] for _, d in sorted(g.nodes(data=True), key=lambda n: n[1]["order"])
            if d["op"] == "drop_path"]
    blocks = [m for m in checker().torchvision_model(pair, "meta").modules()
              if hasattr(m, "stochastic_depth") and getattr(m, "use_res_connect", True)]
    assert len(ours) == len(blocks) > 10
    assert ours == pytest.approx([m.stochastic_depth.p for m in blocks], abs=1e-12)


# one variant per family, at a small input
# (EfficientNet-B0: in the training-mode test below)
OUTPUTS = [("mobilenet_v2", 64), ("mobilenet_v3_small", 64), ("mnasnet0_5", 64), ("efficientnet_v2_s", 64),
           ("convnext_tiny", 32)]


@pytest.mark.parametrize("variant, size", OUTPUTS, ids=[v for v, _ in OUTPUTS])
def test_eval_output_equals_torchvision_with_its_weights(variant, size):
    assert checker().output_difference(PAIRS[variant], size=size) < 1e-5


def test_efficientnet_eval_and_training_outputs_equal_torchvision():
    """Eval output with randomised BN statistics; then, same weights and same seed, the training output:
    BN batch statistics, every drop-path draw and the classifier's dropout agree only if drop-path is
    applied in exactly the blocks torchvision applies it, in its order."""
    c = checker()
    pair = PAIRS["efficientnet_b0"]
    torch.manual_seed(0)
    reference = c.torchvision_model(pair).eval()
    c.randomise_norms(reference)
    model = archdsl.build(ROOT / "specs" / pair.spec, pair.variant, seed=0, size=64).eval()
    archdsl.load_weights(model, reference)
    x = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = reference(x)
        assert ((model(x) - want).norm() / want.norm()).item() < 1e-5
    reference.train()
    model.train()
    torch.manual_seed(7)
    want = reference(x)
    torch.manual_seed(7)
    got = model(x)
    assert ((got - want).norm() / want.norm()).item() < 1e-5
    torch.manual_seed(8)
    assert ((model(x) - want).norm() / want.norm()).item() > 1e-3  # another seed draws other drops


def test_load_weights_places_a_parameter_a_module_reads_itself_where_it_is_used():
    """ConvNeXt's blocks compute `self.layer_scale * self.block(x)`: Python fetches the scale before the
    block runs, but it is used after it, where the spec's layer_scale layer runs."""
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Conv2d(8, 8, 3, padding=1)
            self.layer_scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)

        def forward(self, x):
            return self.layer_scale * self.block(x)

    reference = nn.Sequential(Scaled(), Scaled(), Scaled()).eval()
    model = archdsl.build("""
network scaled() {
  input x: [8, 6, 6]
  repeat 3 { conv(8, 3) -> layer_scale(1e-6) }
}
""", seed=0).eval()
    archdsl.load_weights(model, reference)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
