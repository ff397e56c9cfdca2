"""`archdsl import` over every torchvision-backed spec and every torchvision classification CNN.

Two checks per pair of scripts/check_torchvision.py (a spec variant and the torchvision builder it
reproduces):

- spec: the spec-built module is imported back into a spec (build -> import -> build);
- torchvision: torchvision's own model (`torchvision.models:NAME`, random weights) is imported.

Either way the imported spec is built, the source's weights are loaded into it
(`archdsl.load_weights`; BN statistics, LayerNorm affines and layer scales randomised so that none is
a no-op) and both run in eval mode: parameter counts must be equal and outputs equal (relative
difference < 1e-5). Each network runs at its pair's small input side (`--size` to change it).
Prints one line per check (count, difference, the imported spec's non-comment lines) and totals.

    .venv/bin/python scripts/import_roundtrip.py                       # both checks, every pair
    .venv/bin/python scripts/import_roundtrip.py --only resnet18 convnext_tiny --source torchvision
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import check_torchvision as check  # (the pairs, the builders, randomise_norms)

import archdsl
from archdsl.importer import PartialImport
from archdsl.importer.verify import check_same, load_source_weights, uncalled


def code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def called_params(model: torch.nn.Module, shape: list[int]) -> int:
    """The parameters of the modules that run in eval or training mode (GoogLeNet's auxiliary heads run in
    training only: the importer makes them outputs)."""
    left_out = uncalled(model, [shape])
    return sum(p.numel() for name, p in model.named_parameters()
               if not any(name.startswith(path + ".") for path in left_out))


def source_model(pair, kind: str, size: int) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(0)
    if kind == "spec":
        model = archdsl.build(check.SPECS / pair.spec, pair.variant, seed=0, size=size)
        where = f"specs/{pair.spec}:{pair.variant}"
    else:
        model = check.torchvision_model(pair)
        where = f"torchvision.models:{pair.builder}"
    check.randomise_norms(model)
    return model.eval(), where


def import_check(pair, kind: str, size: int) -> tuple[int, int, float, int, int]:
    """(the source's parameters called in eval, the imported spec's, the relative output difference, spec
    lines, all the source's parameters)."""
    try:
        model, where = source_model(pair, kind, size)
    except archdsl.ArchError:  # a spec whose auxiliary head needs its full input size (Inception-v3's)
        size = pair.size
        model, where = source_model(pair, kind, size)
    shape = [3, size, size]
    with warnings.catch_warnings(record=True) as left_out:
        warnings.simplefilter("always", PartialImport)
        text = archdsl.import_module(model, shape, network=pair.variant, source=where)
    if left_out and size < pair.size:  # an auxiliary head too small to run at this size (Inception-v3's at 96)
        return import_check(pair, kind, pair.size)
    built = archdsl.build(text).eval()
    load_source_weights(built, model, [shape])
    rel = check_same(model, built, [shape], tolerance=float("inf"))
    return called_params(model, shape), params(built), rel, code_lines(text), params(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="check only these spec variants")
    parser.add_argument("--source", choices=["spec", "torchvision", "both"], default="both")
    parser.add_argument("--size", type=int, help="input side (default: each pair's small side)")
    args = parser.parse_args(argv)
    by_name = {p.variant: p for p in check.VARIANTS}
    unknown = [n for n in args.only or [] if n not in by_name]
    if unknown:
        print(f"unknown variants: {', '.join(unknown)}", file=sys.stderr)
        return 2
    pairs = [by_name[n] for n in args.only] if args.only else check.VARIANTS  # in the order given
    kinds = ["spec", "torchvision"] if args.source == "both" else [args.source]
    seen, failures, runs, worst = set(), 0, 0, 0.0
    lines_by_kind: dict[str, list[int]] = {k: [] for k in kinds}
    for pair in pairs:
        for kind in kinds:
            key = (pair.builder, tuple(sorted(pair.kwargs.items()))) if kind == "torchvision" else pair.variant
            if key in seen:  # two spec variants of one torchvision model: import it once
                continue
            seen.add(key)
            runs += 1
            size = args.size or pair.small
            start = time.perf_counter()
            label = pair.variant if kind == "spec" else pair.builder + (
                "(aux_logits=False)" if pair.kwargs.get("aux_logits") is False else "")
            try:
                a, b, rel, lines, total = import_check(pair, kind, size)
            except Exception as exc:  # noqa: BLE001 - report and go on
                failures += 1
                print(f"{kind:11} {label:30} FAIL  {type(exc).__name__}: {str(exc).splitlines()[0][:140]}",
                      flush=True)
                continue
            ok = a == b and rel < check.TOLERANCE
            failures += not ok
            worst = max(worst, rel)
            lines_by_kind[kind].append(lines)
            count = f"{a:,}" if a == b else f"{a:,} != {b:,}"
            print(f"{kind:11} {label:30} {'ok' if ok else 'FAIL':5} params {count:>13}  rel diff {rel:.1e}  "
                  f"{lines:3} lines  {time.perf_counter() - start:5.1f}s"
                  + (f"  (of {total:,}: the rest runs in neither eval nor training)" if total != a else ""),
                  flush=True)
    print(f"{runs - failures} of {runs} imports equal (parameters, outputs < {check.TOLERANCE:g}); "
          f"largest relative difference {worst:.1e}")
    for kind, lines in lines_by_kind.items():
        if lines:
            print(f"{kind}: spec lines {min(lines)}..{max(lines)}, mean {sum(lines) / len(lines):.0f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
