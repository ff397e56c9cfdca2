"""Check the per-block code generator against the flat one it replaced, on every spec variant.

For each variant of every spec in specs/ (and, with --memory-efficient, its memory-efficient build):
same state_dict keys, order and seeded initial values, same eval outputs, same gradients and BN
buffers after one training step (tests/reference/codegen_equivalence.py). Also prints generated line
counts (old -> new) and the time to build each network's module from its IR.

    python scripts/check_codegen.py                     # every variant, plain builds
    python scripts/check_codegen.py --memory-efficient  # plus memory-efficient builds
    python scripts/check_codegen.py resnet.arch densenet.arch
    python scripts/check_codegen.py --meta              # fast: keys, order and shapes only (meta device)
    python scripts/check_codegen.py --timing            # time to build ResNet-152 from its spec, old and new
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from archdsl.backend.codegen import class_name, generate, model_class_name
from archdsl.backend.compile import load_class
from archdsl.elaborate import elaborate
from archdsl.loader import load
from tests.reference import legacy_codegen
from tests.reference.codegen_equivalence import compare

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


def structure(g) -> list[str]:
    """Keys, order and shapes of both builds on the meta device (no numbers)."""
    with torch.device("meta"):
        old = load_class(legacy_codegen.generate(g), class_name(g.graph["network"]))().state_dict()
        new = load_class(generate(g), model_class_name(g))().state_dict()
    if list(old) != list(new):
        return ["state_dict keys or their order differ"]
    return [f"shape of {k}" for k in old if old[k].shape != new[k].shape]


def timing(repeats: int = 5) -> None:
    """Seconds from spec file to an instantiated ResNet-152 (parse, elaborate, generate, load, build)."""
    for name, make in (("flat (before)", legacy_codegen.generate), ("per-block (after)", generate)):
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            g = elaborate(load(SPECS / "resnet.arch"), "resnet152")
            load_class(make(g), model_class_name(g) if make is generate else class_name(g.graph["network"]))()
            times.append(time.perf_counter() - began)
        print(f"ResNet-152 {name}: median {sorted(times)[len(times) // 2]:.2f} s over {repeats} builds "
              f"({len(make(g).splitlines())} generated lines)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="spec file names in specs/ (default: all)")
    parser.add_argument("--memory-efficient", action="store_true", help="also compare memory-efficient builds")
    parser.add_argument("--meta", action="store_true", help="compare keys, order and shapes only (fast)")
    parser.add_argument("--timing", action="store_true", help="time building ResNet-152, old and new, and stop")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.timing:
        timing()
        return 0
    failures, checked, start = 0, 0, time.perf_counter()
    for file, network in targets(args.files):
        g = elaborate(load(SPECS / file), network)
        modes = (False, True) if args.memory_efficient else (False,)
        for efficient in modes:
            began = time.perf_counter()
            try:
                problems = structure(g) if args.meta else compare(g, memory_efficient=efficient, batch=2)
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
