"""Build time of the per-block code generator against the flat generator it replaced, in one run.

For each network: seconds from spec file to an instantiated module (parse, elaborate, generate the
source, execute it, construct the module with seeded weights) with each generator, run in turns
(interleaved, so that the machine's drifts hit both alike), and the time of source generation
alone. Reports medians and the per-round ratio per-block / flat (target <= 1.0 for ResNet-152). The
flat generator is tests/reference/legacy_codegen.py.

    python benchmarks/codegen_build.py [--repeats 7] [--threads 2] [resnet.arch:resnet152 ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.backend.codegen import class_name, generate, model_class_name
from archdsl.backend.compile import load_class
from archdsl.elaborate import elaborate
from archdsl.loader import load
from tests.reference import legacy_codegen

SPECS = ROOT / "specs"
GENERATORS = {"flat": (legacy_codegen.generate, lambda g: class_name(g.graph["network"])),
              "per-block": (generate, model_class_name)}


def build_seconds(file: str, network: str, which: str) -> tuple[float, float]:
    """(spec file to module, source generation alone) in seconds, with one generator."""
    make, name = GENERATORS[which]
    began = time.perf_counter()
    g = elaborate(load(SPECS / file), network)
    generating = time.perf_counter()
    source = make(g)
    generated = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        load_class(source, name(g))()
    return time.perf_counter() - began, generated - generating


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", default=["resnet.arch:resnet152"], help="FILE:NETWORK in specs/")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for target in args.networks:
        file, network = target.split(":")
        for which in GENERATORS:  # warm-up: imports, caches
            build_seconds(file, network, which)
        rounds = {which: [] for which in GENERATORS}
        for _ in range(args.repeats):
            for which in GENERATORS:
                rounds[which].append(build_seconds(file, network, which))
        build = {w: statistics.median(t for t, _ in r) for w, r in rounds.items()}
        source = {w: statistics.median(s for _, s in r) for w, r in rounds.items()}
        ratio = statistics.median(new[0] / old[0] for old, new in zip(rounds["flat"], rounds["per-block"]))
        print(f"{network}: build flat {build['flat']:.2f} s, per-block {build['per-block']:.2f} s, "
              f"ratio {ratio:.2f} (median of {args.repeats} rounds); source generation flat "
              f"{source['flat']:.2f} s, per-block {source['per-block']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
