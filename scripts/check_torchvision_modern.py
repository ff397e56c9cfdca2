"""The torchvision mobile and modern CNNs (EfficientNet v1/v2, MobileNetV2/V3, MNASNet, ConvNeXt) against
the spec variants that bear their builders' names.

For each pair in VARIANTS: the spec's parameter count (from the IR) must equal torchvision's (the
torchvision model built on the meta device, so counting costs nothing); then, unless --params-only,
the torchvision model is built with random weights and randomised BN statistics (so BN is not a
no-op), its weights are copied into the compiled spec (`archdsl.load_weights` when archdsl has it,
else `copy_in_order` below), and both run in eval mode on the same random batch: the relative
difference of the outputs, ||y_spec - y_tv|| / ||y_tv||, must stay below 1e-5.

    python scripts/check_torchvision_modern.py                  # counts and outputs, every variant
    python scripts/check_torchvision_modern.py --params-only    # counts only (seconds)
    python scripts/check_torchvision_modern.py --only efficientnet_b0 convnext_tiny --size 64

tests/test_torchvision_modern.py runs the counts for every pair and the outputs for one variant per
family at small inputs; this script is the exhaustive run. The Pair fields are those of
scripts/check_torchvision.py (issue 14, part B), so the two lists can be joined.
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
    small: int = 64      # the smallest side worth testing quickly (tests/test_torchvision_modern.py)


VARIANTS: list[Pair] = [
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
    """torchvision's count without initialising weights (the model on the meta device)."""
    return sum(p.numel() for p in torchvision_model(pair, "meta").parameters())


def randomise_norms(model, seed: int = 1) -> None:
    """Random BN statistics and affine parameters (BN far from the identity in eval), and random
    LayerNorm affine parameters and layer scales (torchvision starts them at 1, 0 and 1e-6)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)


def _post_order(module) -> list:
    """A module's parameters and buffers with each module's own tensors after its children's: the order
    in which its forward uses them when a module scales its children's result (ConvNeXt's layer scale)."""
    tensors = []
    for child in module.children():
        tensors += _post_order(child)
    tensors += list(module._parameters.values()) + list(module._buffers.values())
    return [t for t in tensors if t is not None]


def copy_in_order(model, reference) -> int:
    """Copy `reference`'s parameters and buffers into `model` pairwise in order, shapes checked: a
    stand-in for archdsl.load_weights (issue 11) while archdsl lacks it. Returns the tensors copied."""
    import torch

    ours, theirs = _post_order(model), _post_order(reference)
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} tensors in the spec's module, {len(theirs)} in torchvision's")
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a.shape != b.shape:
                raise ValueError(f"tensor {i}: {tuple(a.shape)} in the spec's module, {tuple(b.shape)} in torchvision's")
            a.copy_(b)
    return len(ours)


def load_weights(model, reference) -> None:
    import archdsl

    if hasattr(archdsl, "load_weights"):
        archdsl.load_weights(model, reference)
    else:
        copy_in_order(model, reference)


def output_difference(pair: Pair, size: int | None = None, batch: int = 2) -> float:
    """Relative difference of the eval outputs after loading the torchvision weights into the spec."""
    import torch

    import archdsl

    size = size or pair.size
    torch.manual_seed(0)
    reference = torchvision_model(pair).eval()
    randomise_norms(reference)
    model = archdsl.build(SPECS / pair.spec, pair.variant, seed=0, size=size).eval()
    load_weights(model, reference)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = reference(x)
        got = model(x)
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
    import archdsl

    print("weights copied with", "archdsl.load_weights" if hasattr(archdsl, "load_weights") else
          "copy_in_order (archdsl.load_weights is not there yet)")
    failures = 0
    print(f"{'variant':22} {'size':>4} {'parameters':>13}  {'output rel. diff':>16}  {'time':>6}")
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
        print(f"{pair.variant:22} {args.size or pair.size:>4} {count:>13}  {diff:>16}  "
              f"{time.perf_counter() - start:5.1f}s", flush=True)
        failures += not ok
    print(f"{len(pairs) - failures} of {len(pairs)} equal" + (" in parameters" if args.params_only else
                                                              f" (parameters, outputs < {TOLERANCE:g})"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
