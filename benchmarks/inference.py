"""Inference builds against torchvision at serving time, in one process.

For each network: torchvision's model with random weights (eval); the archdsl plain build with those
weights loaded by `archdsl.load_weights`, turned into the inference build by `archdsl.to_inference`
(checked to give torchvision's outputs); and torchvision hand-optimised as a careful user would
(`torch.fx.experimental.optimization.fuse`, then channels-last). All run under
`torch.inference_mode()` with `torch.set_num_threads(THREADS)`, interleaved round by round; the
figure is the median over rounds of the per-round time ratio.

    python benchmarks/inference.py [--threads 2] [--repeats 30] [--nets resnet50:16,resnet50:1,...] [--layouts] [--compile]

Targets (issue 16): inference / torchvision eager <= 0.70 (ResNet-50, batch 16), <= 0.85 (ResNet-50,
batch 1), <= 0.80 (DenseNet-121 and MobileNetV2, batch 16); inference / torchvision fused and
channels-last <= 1.0. `--layouts` also times the inference build without channels-last (the memory
format decision); `--compile` also times `torch.compile` (inductor) of torchvision and of the
inference build. `--device cuda` runs on a GPU (threads ignored).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
import torchvision
from torch.fx.experimental.optimization import fuse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archdsl
from benchmarks.measure import rounds
from tests.reference.norms import randomise_norms

NETWORKS = {  # name -> spec file, network, torchvision constructor, target ratio per batch
    "resnet50": ("resnet.arch", "resnet50_v15", torchvision.models.resnet50, {16: 0.70, 1: 0.85}),
    "densenet121": ("densenet.arch", "densenet121", torchvision.models.densenet121, {16: 0.80}),
    "mobilenet_v2": ("mobilenet_v2.arch", "mobilenet_v2", torchvision.models.mobilenet_v2, {16: 0.80}),
}



def candidates(name: str, batch: int, device: str, compiled: bool, layouts: bool) -> tuple[dict, torch.Tensor]:
    file, network, constructor, _ = NETWORKS[name]
    torch.manual_seed(0)
    reference = constructor(weights=None).eval()
    randomise_norms(reference, 1)
    plain = archdsl.build(str(ROOT / "specs" / file), network).eval()
    archdsl.load_weights(plain, reference.state_dict())
    inference = archdsl.to_inference(plain).to(device)
    fused = fuse(reference).to(memory_format=torch.channels_last)
    reference, fused = reference.to(device), fused.to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected, got = reference(x), inference(x)
    error = ((expected - got).abs().max() / expected.abs().max()).item()
    assert error < 1e-4, f"{name}: the inference build differs from torchvision by {error:.2e}"
    models = {"torchvision": reference, "inference": inference, "tv fuse+cl": fused}
    if layouts:  # the memory-format decision: the inference build in the contiguous format
        models["inference contiguous"] = archdsl.to_inference(plain, channels_last=False).to(device)
    if compiled:
        models["tv compile"] = torch.compile(reference)
        models["inference compile"] = torch.compile(inference)
    xcl = x.contiguous(memory_format=torch.channels_last)
    inputs = {k: xcl if k == "tv fuse+cl" else x for k in models}
    return {k: (lambda m=m, i=inputs[k]: m(i)) for k, m in models.items()}, x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--nets", default="resnet50:16,resnet50:1,densenet121:16,mobilenet_v2:16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor) of both")
    parser.add_argument("--layouts", action="store_true",
                        help="also time the inference build in the contiguous memory format (not channels-last)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    failed = False
    print(f"torch {torch.__version__}, {args.device}, {args.threads} threads, {args.repeats} rounds; "
          "median over rounds of the per-round ratio to torchvision eager; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    for item in args.nets.split(","):
        name, batch = item.split(":")
        batch = int(batch)
        fns, _ = candidates(name, batch, args.device, args.compile, args.layouts)
        with torch.inference_mode():
            times = rounds(fns, args.device, args.repeats, warmup=2)
        base = times["torchvision"]
        line = [f"{name:13} batch {batch:2}: torchvision {statistics.median(base) * 1e3:7.1f} ms"]
        for k, t in times.items():
            if k != "torchvision":
                ratio = statistics.median(a / b for a, b in zip(t, base))
                line.append(f"{k} {ratio:.3f}")
        vs_fused = statistics.median(a / b for a, b in zip(times["inference"], times["tv fuse+cl"]))
        line.append(f"inference / tv fuse+cl {vs_fused:.3f}")
        if args.compile:
            both = statistics.median(a / b for a, b in zip(times["inference compile"], times["tv compile"]))
            line.append(f"inference compile / tv compile {both:.3f}")
        target = NETWORKS[name][3].get(batch)
        if args.device == "cpu" and target is not None:
            ratio = statistics.median(a / b for a, b in zip(times["inference"], base))
            ok = ratio <= target and vs_fused <= 1.0
            failed |= not ok
            line.append(f"(targets {target:.2f} and 1.0: {'met' if ok else 'MISSED'})")
        print(", ".join(line), flush=True)
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
