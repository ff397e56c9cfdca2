"""Check the per-block code generator against the flat one it replaced, on every spec variant.

For each variant of every spec in specs/ (and, with --memory-efficient, its memory-efficient build):
same state_dict keys, order and seeded initial values, same eval outputs, same gradients and BN
buffers after one training step (tests/reference/codegen_equivalence.py). Also prints generated line
counts (old -> new) and the time to build each network's module from its IR.

    python scripts/check_codegen.py                     # every variant, plain builds
    python scripts/check_codegen.py --memory-efficient  # plus memory-efficient builds
    python scripts/check_codegen.py resnet.arch densenet.arch
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from archdsl.backend.codegen import generate  # noqa: E402
from archdsl.elaborate import elaborate  # noqa: E402
from archdsl.loader import load  # noqa: E402
from tests.reference import legacy_codegen  # noqa: E402
from tests.reference.codegen_equivalence import compare  # noqa: E402

SPECS = ROOT / "specs"


def targets(files: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(SPECS.glob("*.arch")):
        if files and path.name not in files:
            continue
        program = load(path)
        for name in program.targets():
            if name in program.networks and any(p.default is None for p in program.networks[name].params):
                continue
            found.append((path.name, name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="spec file names in specs/ (default: all)")
    parser.add_argument("--memory-efficient", action="store_true", help="also compare memory-efficient builds")
    args = parser.parse_args()
    torch.set_num_threads(2)
    failures, checked, start = 0, 0, time.perf_counter()
    for file, network in targets(args.files):
        g = elaborate(load(SPECS / file), network)
        modes = (False, True) if args.memory_efficient else (False,)
        for efficient in modes:
            began = time.perf_counter()
            try:
                problems = compare(g, memory_efficient=efficient, batch=2)
            except Exception as exc:  # noqa: BLE001 (report and go on to the next variant)
                problems = [f"{type(exc).__name__}: {exc}"]
            old_lines = len(legacy_codegen.generate(g, efficient).splitlines())
            new_lines = len(generate(g, efficient).splitlines())
            checked += 1
            failures += bool(problems)
            status = "ok" if not problems else "DIFFERS: " + "; ".join(problems[:4])
            print(f"{file}:{network}{' (memory-efficient)' if efficient else ''}: lines {old_lines} -> {new_lines}, "
                  f"{time.perf_counter() - began:.1f} s: {status}", flush=True)
    print(f"{checked} builds compared, {failures} differ, {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
