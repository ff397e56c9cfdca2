"""Check the per-block code generator against the flat one it replaced, on every spec variant.

For each variant of every spec in specs/ (the rows of specs/README.md, enumerated by
scripts/spec_table.py: every named `-D` variant and every network no variant uses), and with
--memory-efficient its memory-efficient build: same state_dict keys, order and seeded initial values,
same eval outputs, same gradients and BN buffers after one training step on the spec's own input
shape (batch 2; batch 1 above 8 GMACs), with real numbers (tests/reference/codegen_equivalence.py).
A memory-efficient build whose source (from either generator) is the plain build's (nothing to
recompute) is the plain build, and takes the plain build's result.
Prints each variant's largest absolute difference, generated line counts (old -> new, non-blank),
and a summary: how many builds agree and the largest difference of all.

    python scripts/check_codegen.py                     # every variant, plain builds
    python scripts/check_codegen.py --memory-efficient  # plus memory-efficient builds
    python scripts/check_codegen.py resnet.arch densenet.arch
    python scripts/check_codegen.py --meta              # fast: keys, order and shapes only (meta device)
    python scripts/check_codegen.py --meta --memory-efficient   # the same for memory-efficient builds too
    python scripts/check_codegen.py --timing            # ResNet-152 build time, old and new (benchmarks/codegen_build.py)
    python scripts/check_codegen.py --splits            # variants writing several classes for one definition
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from archdsl.backend.codegen import class_name, class_origins, generate, model_class_name
from archdsl.backend.compile import load_class
from archdsl.ir import total_macs
from tests.reference import legacy_codegen
from tests.reference.codegen_equivalence import differences

SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT / "scripts"))
from spec_table import targets as table_rows  # the spec table's own enumeration


def variants(files: list[str]) -> list[tuple[str, str, object]]:
    """(file, variant, IR) for every row of the spec table, the cheapest (fewest MACs) first."""
    found = [(path.name, name, g) for path in sorted(SPECS.glob("*.arch")) if not files or path.name in files
             for name, g, _ in table_rows(path) if g is not None]
    return sorted(found, key=lambda row: total_macs(row[2]))


def lines(source: str) -> int:
    """Non-blank lines."""
    return sum(1 for line in source.splitlines() if line.strip())


def structure(g, memory_efficient: bool = False) -> list[str]:
    """Keys, order and shapes of both builds on the meta device (no numbers)."""
    with torch.device("meta"):
        old = load_class(legacy_codegen.generate(g, memory_efficient), class_name(g.graph["network"]))().state_dict()
        new = load_class(generate(g, memory_efficient), model_class_name(g))().state_dict()
    if list(old) != list(new):
        return ["state_dict keys or their order differ"]
    return [f"shape of {k}" for k in old if old[k].shape != new[k].shape]


def timing() -> None:
    """Seconds from spec file to an instantiated ResNet-152, old and new (benchmarks/codegen_build.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from codegen_build import main as benchmark

    sys.argv = [sys.argv[0], "resnet.arch:resnet152"]
    benchmark()


def splits(files: list[str]) -> int:
    """List the variants whose generated source writes more than one class for one block definition or
    construct kind (each with those classes), and count them. Generation only: fast."""
    rows = variants(files)
    split = 0
    for file, network, g in rows:
        several = {key: names for key, names in class_origins(g).items() if len(names) > 1}
        if several:
            split += 1
            print(f"{file}:{network}: " + "; ".join(f"{kind} {definition}: {' '.join(names)}"
                                                   for (kind, definition), names in several.items()))
    print(f"{split} of {len(rows)} variants write several classes for one definition")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="spec file names in specs/ (default: all)")
    parser.add_argument("--memory-efficient", action="store_true", help="also compare memory-efficient builds")
    parser.add_argument("--meta", action="store_true", help="compare keys, order and shapes only (fast)")
    parser.add_argument("--timing", action="store_true", help="time building ResNet-152, old and new, and stop")
    parser.add_argument("--splits", action="store_true",
                        help="list and count the variants writing several classes for one definition, and stop")
    parser.add_argument("--skip", type=int, default=0, help="skip the N cheapest variants (to resume a run)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.timing:
        timing()
        return 0
    if args.splits:
        return splits(args.files)
    failures, checked, largest, start = 0, 0, 0.0, time.perf_counter()
    for file, network, g in variants(args.files)[args.skip:]:
        modes = (False, True) if args.memory_efficient else (False,)
        plain: tuple[list[str], float] = ([], 0.0)
        for efficient in modes:
            began = time.perf_counter()
            batch = 2 if total_macs(g) < 8e9 else 1  # (batch 2: a BN over a 1x1 map trains only with 2)
            old_source, new_source = legacy_codegen.generate(g, efficient), generate(g, efficient)
            try:
                if efficient and not args.meta and old_source == legacy_codegen.generate(g) \
                        and new_source == generate(g):
                    problems, worst = plain  # nothing is recomputed: both builds are the plain ones, compared above
                else:
                    problems, worst = (structure(g, efficient), 0.0) if args.meta \
                        else differences(g, efficient, batch=batch)
            except Exception as exc:  # noqa: BLE001 (report and go on to the next variant)
                problems, worst = [f"{type(exc).__name__}: {exc}"], float("inf")
            plain = (problems, worst)
            old_lines, new_lines = lines(old_source), lines(new_source)
            checked += 1
            failures += bool(problems)
            largest = max(largest, worst)
            status = "ok" if not problems else "DIFFERS: " + "; ".join(problems[:4])
            print(f"{file}:{network}{' (memory-efficient)' if efficient else ''}: lines {old_lines} -> {new_lines}, "
                  f"batch {batch}, max |diff| {worst:.2g}, {time.perf_counter() - began:.1f} s: {status}", flush=True)
    print(f"{checked} builds compared, {checked - failures} agree, {failures} differ; largest difference "
          f"{largest:.2g}; {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
