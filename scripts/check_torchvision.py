"""Every torchvision classification CNN against the spec variant that bears its name.

For each pair in VARIANTS: the spec's parameter count (from the IR) must equal torchvision's (the
torchvision model built on the meta device, so counting costs nothing); then, unless --params-only,
the torchvision model is built with random weights and randomised BN statistics, LayerNorm affines
and layer scales (so none is a no-op), `archdsl.load_weights` copies its weights into the compiled spec, and both run in eval mode
on the same random batch: the relative difference of the outputs, ||y_spec - y_tv|| / ||y_tv||,
must stay below 1e-5.

    python scripts/check_torchvision.py                    # counts and outputs, every variant
    python scripts/check_torchvision.py --params-only      # counts only (seconds)
    python scripts/check_torchvision.py --only regnet_y_400mf squeezenet1_1 --size 64

tests/test_torchvision_parity.py (part B of issue 14: RegNet, SqueezeNet, ShuffleNetV2, DenseNet,
Wide ResNet, ResNeXt and the classic families) and tests/test_torchvision_modern.py (part A:
EfficientNet, MobileNetV2/V3, MNASNet, ConvNeXt) run the counts for every pair and the outputs for one
variant per family at small inputs; this script is the exhaustive run whose figures the closing notes
quote.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPECS = ROOT / "specs"
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Pair:
    """A spec variant and the torchvision builder (with keyword arguments) it reproduces."""

    spec: str
    variant: str
    builder: str
    kwargs: dict = field(default_factory=dict)
    size: int = 224      # the input side for the output check (the network's `size` parameter)
    small: int = 64      # the smallest side worth testing quickly (tests/test_torchvision_parity.py)


def _regnets() -> list[Pair]:
    names = ["x_400mf", "x_800mf", "x_1_6gf", "x_3_2gf", "x_8gf", "x_16gf", "x_32gf",
             "y_400mf", "y_800mf", "y_1_6gf", "y_3_2gf", "y_8gf", "y_16gf", "y_32gf", "y_128gf"]
    return [Pair("regnet.arch", f"regnet_{n}", f"regnet_{n}") for n in names]


# The GoogLeNet and Inception-v3 builders are given init_weights=False: their own initialisation
# (scipy's truncated normal) is slow and the weights are replaced anyway.
_NO_INIT = {"init_weights": False}

VARIANTS: list[Pair] = [
    # part B of issue 14: the new families and variants
    *_regnets(),
    Pair("squeezenet.arch", "squeezenet1_0", "squeezenet1_0"),
    Pair("squeezenet.arch", "squeezenet1_1", "squeezenet1_1"),
    Pair("shufflenet_v2.arch", "shufflenet_v2_x0_5", "shufflenet_v2_x0_5"),
    Pair("shufflenet_v2.arch", "shufflenet_v2_x1_0", "shufflenet_v2_x1_0"),
    Pair("shufflenet_v2.arch", "shufflenet_v2_x1_5", "shufflenet_v2_x1_5"),
    Pair("shufflenet_v2.arch", "shufflenet_v2_x2_0", "shufflenet_v2_x2_0"),
    Pair("densenet.arch", "densenet121", "densenet121"),
    Pair("densenet.arch", "densenet161", "densenet161"),
    Pair("densenet.arch", "densenet169", "densenet169"),
    Pair("densenet.arch", "densenet201", "densenet201"),
    Pair("wide_resnet.arch", "wide_resnet50_2", "wide_resnet50_2"),
    Pair("wide_resnet.arch", "wide_resnet101_2", "wide_resnet101_2"),
    Pair("resnext.arch", "resnext50_32x4d", "resnext50_32x4d"),
    Pair("resnext.arch", "resnext101_32x8d", "resnext101_32x8d"),
    Pair("resnext.arch", "resnext101_64x4d", "resnext101_64x4d"),
    # the classic families under torchvision's names
    Pair("resnet.arch", "resnet18", "resnet18"),
    Pair("resnet.arch", "resnet34", "resnet34"),
    Pair("resnet.arch", "resnet50_torchvision", "resnet50"),
    Pair("resnet.arch", "resnet101_torchvision", "resnet101"),
    Pair("resnet.arch", "resnet152_torchvision", "resnet152"),
    Pair("alexnet.arch", "alexnet_torchvision", "alexnet"),
    # torchvision's VGG pools adaptively to 7x7 before fc6; the spec (the paper's) does not, so the
    # two agree at 224x224 only
    *[Pair("vgg.arch", name, name, small=224) for name in
      ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]],
    # torchvision's googlenet() has the auxiliary heads (they run only in training); its pretrained
    # model (googlenet(weights=...)) drops them: googlenet_torchvision
    Pair("googlenet.arch", "googlenet_torchvision_aux", "googlenet", _NO_INIT, small=96),
    Pair("googlenet.arch", "googlenet_torchvision", "googlenet", {**_NO_INIT, "aux_logits": False}, small=96),
    Pair("inception_v3.arch", "inception_v3_torchvision", "inception_v3", _NO_INIT, size=299, small=96),
    Pair("inception_v3.arch", "inception_v3", "inception_v3", {**_NO_INIT, "aux_logits": False}, size=299,
         small=96),
    # part A of issue 14: the mobile and modern families, at their torchvision input sizes
    *[Pair("efficientnet.arch", f"efficientnet_b{i}", f"efficientnet_b{i}", size=size)
      for i, size in enumerate([224, 240, 260, 300, 380, 456, 528, 600])],
    *[Pair("efficientnet.arch", f"efficientnet_v2_{k}", f"efficientnet_v2_{k}", size=size)
      for k, size in (("s", 384), ("m", 480), ("l", 480))],
    Pair("mobilenet_v2.arch", "mobilenet_v2", "mobilenet_v2"),
    Pair("mobilenet_v3.arch", "mobilenet_v3_large", "mobilenet_v3_large"),
    Pair("mobilenet_v3.arch", "mobilenet_v3_small", "mobilenet_v3_small"),
    *[Pair("mnasnet.arch", name, name) for name in ("mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3")],
    *[Pair("convnext.arch", f"convnext_{k}", f"convnext_{k}", small=32) for k in ("tiny", "small", "base", "large")],
]


def torchvision_model(pair: Pair, device=None):
    import torchvision.models

    builder = getattr(torchvision.models, pair.builder)
    if device is None:
        return builder(weights=None, **pair.kwargs)
    import torch

    with torch.device(device):
        return builder(weights=None, **pair.kwargs)


def spec_params(pair: Pair) -> int:
    from archdsl import build_ir, ir

    return ir.total_params(build_ir(SPECS / pair.spec, pair.variant))


def torchvision_params(pair: Pair) -> int:
    """torchvision's count without initialising weights: on the meta device, or (for builders that
    compute with tensors, like RegNet's width rule) on the CPU with torch.nn.init switched off."""
    import contextlib
    from unittest import mock

    import torch

    try:
        model = torchvision_model(pair, "meta")
    except NotImplementedError:
        with contextlib.ExitStack() as stack:
            for name in dir(torch.nn.init):
                if name.endswith("_") and not name.startswith("_"):
                    stack.enter_context(mock.patch.object(torch.nn.init, name, lambda t, *a, **k: t))
            model = torchvision_model(pair)
    return sum(p.numel() for p in model.parameters())


def randomise_norms(model, seed: int = 1) -> None:
    """Norms and layer scales randomised (tests/reference/norms.py) as for the figures in the notes."""
    from tests.reference.norms import randomise_norms as randomise

    randomise(model, seed, spread=0.2)


def main_output(out):
    """The logits of a compiled spec or a torchvision model, whatever container they come in."""
    if isinstance(out, dict):
        return out["logits"]
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def output_difference(pair: Pair, size: int | None = None, batch: int = 2) -> float:
    """Relative difference of the eval outputs after loading the torchvision weights into the spec."""
    import torch

    import archdsl

    size = size or pair.size
    torch.manual_seed(0)
    reference = torchvision_model(pair).eval()
    randomise_norms(reference)
    model = archdsl.build(SPECS / pair.spec, pair.variant, seed=0, size=size).eval()
    archdsl.load_weights(model, reference)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = main_output(reference(x))
        got = main_output(model(x))
    return ((got - want).norm() / want.norm()).item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params-only", action="store_true", help="compare parameter counts only")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="check only these spec variants")
    parser.add_argument("--size", type=int, help="input side for the output check (default: each pair's)")
    args = parser.parse_args(argv)
    pairs = [p for p in VARIANTS if not args.only or p.variant in args.only]
    if args.only and len(pairs) != len(set(args.only)):
        known = {p.variant for p in VARIANTS}
        print(f"unknown variants: {', '.join(sorted(set(args.only) - known))}", file=sys.stderr)
        return 2
    failures = 0
    print(f"{'variant':28} {'torchvision':30} {'parameters':>13}  {'output rel. diff':>16}  {'time':>6}")
    for pair in pairs:
        start = time.perf_counter()
        ours, theirs = spec_params(pair), torchvision_params(pair)
        ok = ours == theirs
        count = f"{ours:,}" if ok else f"{ours:,} != {theirs:,}"
        diff = ""
        if ok and not args.params_only:
            rel = output_difference(pair, args.size)
            ok = rel < TOLERANCE
            diff = f"{rel:.1e}" + ("" if ok else " FAIL")
        builder = pair.builder + ("(" + ", ".join(f"{k}={v}" for k, v in pair.kwargs.items()
                                                  if k != "init_weights") + ")" if len(pair.kwargs) > 1 else "")
        print(f"{pair.variant:28} {builder:30} {count:>13}  {diff:>16}  {time.perf_counter() - start:5.1f}s",
              flush=True)
        failures += not ok
    print(f"{len(pairs) - failures} of {len(pairs)} equal" + (" in parameters" if args.params_only else
                                                              f" (parameters, outputs < {TOLERANCE:g})"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
