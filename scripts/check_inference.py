"""Every variant of every spec in specs/: the inference build computes the plain build's function.

For each network and variant (sized as tests/test_specs_compile.py sizes them: networks above its MAC
budget with a `size` parameter run at a smaller input side): the plain build under seed 0 with random
BN statistics and affine weights, and `archdsl.to_inference` of it, on the same random batch in eval
mode (2 samples; 1 for huge networks: above HUGE_MACS per sample or its PARAMS_BUDGET); prints the
relative difference max|plain - inference| / max|plain| (target < 1e-4), how many BNs were folded
and kept, and the forward time ratio.

    python scripts/check_inference.py [--threads 2] [NAME ...]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import ir
from archdsl.backend import compile_module
from archdsl.backend.inference import to_inference
from tests.reference.norms import randomise_norms
from tests.test_inference import relative_difference
from tests.test_specs_compile import PARAMS_BUDGET, graph, targets

HUGE_MACS = 2e9  # per sample: such networks (U-Net at 572x572: 150 G) run at batch 1


def check(file: str, network: str) -> tuple[float, int, int, float]:
    g = graph(file, network)
    plain = compile_module(g, seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = to_inference(plain)
    batch = 1 if ir.total_macs(g) > HUGE_MACS or ir.total_params(g) > PARAMS_BUDGET else 2
    inputs = [torch.randn(batch, *g.nodes[n]["shape"]) for n in g.graph["inputs"]]
    with torch.inference_mode():
        start = time.perf_counter()
        expected = plain(*inputs)
        middle = time.perf_counter()
        got = fast(*inputs)
        end = time.perf_counter()
    h = type(fast).__archdsl_graph__
    folded = sum(1 for _, d in h.nodes(data=True) if "folded" in d)
    kept = sum(1 for _, d in h.nodes(data=True) if d["op"] == "bn")
    return relative_difference(expected, got), folded, kept, (end - middle) / (middle - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these networks (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    worst, failures, count = 0.0, [], 0
    for file, network in targets():
        if args.names and network not in args.names:
            continue
        count += 1
        try:
            error, folded, kept, ratio = check(file, network)
        except Exception as exc:  # noqa: BLE001  (report and go on: every variant gets its line)
            failures.append(f"{file}:{network}: {type(exc).__name__}: {exc}")
            print(f"{file:22} {network:28} FAILED {type(exc).__name__}: {exc}", flush=True)
            continue
        finally:
            gc.collect()  # the next network may need the memory of this one's two builds
        worst = max(worst, error)
        if error >= 1e-4:
            failures.append(f"{file}:{network}: relative difference {error:.2e}")
        print(f"{file:22} {network:28} rel diff {error:.1e}  BN folded {folded:3} kept {kept:3}  "
              f"time {ratio:.2f}", flush=True)
    print(f"{count} variants, worst relative difference {worst:.1e}, {len(failures)} failures")
    for line in failures:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
