"""Compiled ResNet-50 and DenseNet-121 against hand-written PyTorch references, in one run.

Reports forward latency (CPU, eval, batch 1 and 16; median of repeats) as compiled/reference
ratios (target <= 1.03), and build time, spec text to ready module, against constructing the
reference module (target <= 1.5). The references are tests/reference/nets.py; both networks get
the same weights and are checked to give the same outputs before timing.

    python benchmarks/backend_speed.py [--batches 1,16] [--repeats 15]
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

from archdsl import build_ir
from archdsl.backend import compile_module
from archdsl.loader import load
from tests.reference import nets

NETWORKS = {
    "resnet50": ("resnet.arch", "resnet50", nets.resnet50),
    "densenet121": ("densenet.arch", "densenet121", nets.densenet121),
}


def copy_weights(reference: torch.nn.Module, compiled: torch.nn.Module) -> None:
    src = [v for k, v in reference.state_dict().items()]
    dst = list(compiled.state_dict())
    assert [tuple(v.shape) for v in src] == [tuple(compiled.state_dict()[k].shape) for k in dst]
    compiled.load_state_dict(dict(zip(dst, src)))


def latency(model, x, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_time(file: str, network: str, make_reference, repeats: int = 5) -> tuple[float, float]:
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        compile_module(build_ir(load(ROOT / "specs" / file), network))
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        make_reference()
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--networks", default="resnet50,densenet121")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, eval")
    print(f"{'network':12} {'batch':>5} {'reference ms':>13} {'compiled ms':>12} {'ratio':>6}")
    for name in args.networks.split(","):
        file, network, make_reference = NETWORKS[name]
        reference = make_reference().eval()
        compiled = compile_module(build_ir(load(ROOT / "specs" / file), network)).eval()
        copy_weights(reference, compiled)
        for batch in map(int, args.batches.split(",")):
            x = torch.randn(batch, 3, 224, 224)
            with torch.inference_mode():
                torch.testing.assert_close(compiled(x), reference(x), rtol=1e-4, atol=1e-4)
            # interleave the two to share any drift of the machine's speed
            ref_t, ours_t = [], []
            for _ in range(3):
                ref_t.append(latency(reference, x, args.repeats // 3 or 1))
                ours_t.append(latency(compiled, x, args.repeats // 3 or 1))
            r, o = statistics.median(ref_t), statistics.median(ours_t)
            print(f"{name:12} {batch:5d} {r * 1e3:13.2f} {o * 1e3:12.2f} {o / r:6.3f}")
    ours, theirs = build_time(*NETWORKS["resnet50"])
    print(f"build resnet50: spec to module {ours * 1e3:.0f} ms, reference constructor {theirs * 1e3:.0f} ms, "
          f"ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
