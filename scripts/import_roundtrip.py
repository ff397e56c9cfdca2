"""Round trip of the spec library through `archdsl import`: build -> import -> build.

For every variant in specs/ named like a torchvision.models builder (resnet50, densenet121, ...), the
spec-built module is imported back into a spec, that spec is built, the first module's weights are
loaded into it (archdsl.load_weights) and both are run in eval mode: parameter counts must be equal
and outputs equal (relative difference < 1e-5). Prints one line per network and a total.

    .venv/bin/python scripts/import_roundtrip.py [NAME ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torchvision

import archdsl
from archdsl.api import load_program
from archdsl.importer import ImportFailure
from archdsl.importer.verify import check_same
from archdsl.weights import load_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"


def torchvision_variants() -> list[tuple[Path, str]]:
    builders = set(torchvision.models.list_models(module=torchvision.models))
    found = []
    for path in sorted(SPECS.glob("*.arch")):
        program = load_program(path)
        for name in program.variants:
            if name in builders:
                found.append((path, name))
    return found


def round_trip(path: Path, name: str) -> tuple[int, int, float]:
    torch.manual_seed(0)
    ir = archdsl.build_ir(path, name)
    first = archdsl.build(path, name, seed=0).eval()
    shape = list(ir.nodes[ir.graph["inputs"][0]]["shape"])
    text = archdsl.import_module(first, shape, network=name)
    second = archdsl.build(text).eval()
    load_weights(second, first)
    rel = check_same(first, second, [shape])
    count = lambda m: sum(p.numel() for p in m.parameters())
    lines = sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return count(first), count(second), rel, lines


def main(argv: list[str]) -> int:
    variants = [(p, n) for p, n in torchvision_variants() if not argv or n in argv]
    ok = 0
    for path, name in variants:
        start = time.time()
        try:
            a, b, rel, lines = round_trip(path, name)
            status = "ok" if a == b else "COUNT"
            ok += a == b
            print(f"{name:24} {status:5} params {a:>11,} -> {b:>11,}  rel diff {rel:.1e}  {lines:3} lines  "
                  f"{time.time() - start:5.1f}s", flush=True)
        except (ImportFailure, archdsl.ArchError, Exception) as exc:  # noqa: BLE001 - report and go on
            print(f"{name:24} FAIL  {type(exc).__name__}: {str(exc).splitlines()[0][:150]}", flush=True)
    print(f"{ok}/{len(variants)} round trips equal")
    return 0 if ok == len(variants) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
