"""Every torchvision-backed spec variant, loaded with torchvision's weights: the same eval outputs?

For each pair, torchvision's model is built with random weights and random BN statistics (so
that BN is not the identity), the spec variant is built, ``archdsl.load_weights`` maps the one
onto the other (strict), and both run in eval mode on one random batch at the spec's input size.
Pairs: a spec variant named like a torchvision builder (``resnet18``) or ``<builder>_torchvision``,
plus the forms below where the spec writes torchvision's model under another name or parameters.
Prints a table; exit status 1 if any pair fails to load or differs by 1e-5 or more (relative to
the largest output).

    python scripts/check_weights.py [--only resnet50 densenet121 ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archdsl
from archdsl.backend import compile_module
from archdsl.diagnostics import ArchError
from archdsl.loader import load
from tests.reference.norms import randomise_norms

SPECS = ROOT / "specs"
TOLERANCE = 1e-5

# torchvision builder -> (spec file, variant or network, overrides, builder arguments): where the
# same-named variant is the paper's network, or torchvision's form has another name.
PREFERRED = {
    "resnet50": ("resnet.arch", "resnet50_v15", {}, {}),  # torchvision's ResNets are v1.5: stride on the 3x3
    "resnet101": ("resnet.arch", "resnet101", {"stride_on_3x3": True}, {}),
    "resnet152": ("resnet.arch", "resnet152", {"stride_on_3x3": True}, {}),
    "googlenet": ("googlenet.arch", "googlenet_torchvision", {}, {"aux_logits": False, "init_weights": False}),
    "googlenet (aux)": ("googlenet.arch", "googlenet_torchvision_aux", {}, {"aux_logits": True, "init_weights": False}),
    "inception_v3": ("inception_v3.arch", "inception_v3", {}, {"aux_logits": False, "init_weights": False}),
    "inception_v3 (aux)": ("inception_v3.arch", "inception_v3_aux", {}, {"aux_logits": True, "init_weights": False}),
}
# Used only while no spec has a variant of that name: the same network through another spec's parameters.
FALLBACK = {
    "wide_resnet50_2": ("resnext.arch", "resnext", {"cardinality": 1, "width": 128}, {}),
    "wide_resnet101_2": ("resnext.arch", "resnext", {"blocks": [3, 4, 23, 3], "cardinality": 1, "width": 128}, {}),
    "resnext101_32x8d": ("resnext.arch", "resnext", {"blocks": [3, 4, 23, 3], "width": 8}, {}),
    "resnext101_64x4d": ("resnext.arch", "resnext", {"blocks": [3, 4, 23, 3], "cardinality": 64}, {}),
}
# Same-named variants that describe the paper's network, not torchvision's.
NOT_TORCHVISION = {"alexnet": "the paper's two-tower AlexNet; torchvision's has 64-192-384-256-256 filters"}


def pairs() -> dict[str, tuple]:
    """torchvision builder (with a tag for a second form) -> (spec file, variant, overrides, builder kwargs)."""
    builders = set(torchvision.models.list_models(module=torchvision.models))
    found: dict[str, tuple] = {}
    for path in sorted(SPECS.glob("*.arch")):
        for variant in load(path).variants:
            name = variant.removesuffix("_torchvision")
            if name in builders and name not in NOT_TORCHVISION and (name not in found or variant != name):
                found[name] = (path.name, variant, {}, {})
    result = {**FALLBACK, **found, **PREFERRED}
    return {name: result[name] for name in sorted(result)}



def check(name: str, file: str, variant: str, overrides: dict, kwargs: dict) -> dict:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name.split(" ")[0])(weights=None, **kwargs).eval()
    randomise_norms(reference)
    g = archdsl.build_ir(SPECS / file, variant, **overrides)
    model = compile_module(g).eval()
    start = time.perf_counter()
    report = archdsl.load_weights(model, reference)
    seconds = time.perf_counter() - start
    x = torch.randn(2, *g.nodes[g.graph["inputs"][0]]["shape"])
    with torch.no_grad():
        expected, got = reference(x), model(x)
    got = got["logits"] if isinstance(got, dict) else got
    diff = ((expected - got).abs().max() / expected.abs().max()).item()
    return {"params": sum(p.numel() for p in model.parameters()), "name": report.count("name"),
            "structure": report.count("structure"), "diff": diff, "seconds": seconds, "notes": report.notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="BUILDER", help="check only these torchvision builders")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    todo = {k: v for k, v in pairs().items() if not args.only or k.split(" ")[0] in args.only}
    print(f"{'torchvision':<20} {'spec variant':<62} {'params':>12} {'by name':>8} {'by struct.':>10} "
          f"{'rel. diff':>10} {'load s':>7}  result")
    failed = 0
    for name, (file, variant, overrides, kwargs) in todo.items():
        spec = f"{file}:{variant}" + "".join(f" {k}={v}" for k, v in overrides.items()).replace(", ", ",")
        try:
            row = check(name, file, variant, overrides, kwargs)
        except ArchError as exc:
            failed += 1
            print(f"{name:<20} {spec:<62} FAILED: {exc.render().splitlines()[0]}")
            continue
        ok = row["diff"] < TOLERANCE and not row["notes"]
        failed += not ok
        print(f"{name:<20} {spec:<62} {row['params']:>12,} {row['name']:>8} {row['structure']:>10} "
              f"{row['diff']:>10.1e} {row['seconds']:>7.2f}  {'ok' if ok else 'DIFFERS'}")
        for note in row["notes"][:3]:
            print(f"{'':<20} note: {note}")
    for name, reason in NOT_TORCHVISION.items():
        print(f"{name:<20} not checked: {reason}")
    print(f"{len(todo) - failed} of {len(todo)} pairs give torchvision's outputs (relative difference < {TOLERANCE})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
