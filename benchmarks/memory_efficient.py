"""Memory-efficient builds against plain builds of the same spec: peak training memory and step time.

A memory-efficient build recomputes each dense layer's concat-BN-ReLU-conv (and each clique
update's) in backward instead of storing it. Both builds get the same weights; each peak is
measured in a fresh process (see benchmarks/measure.py), the step times interleaved in this one.

    python benchmarks/memory_efficient.py [--networks densenet121,densenet_bc100,cliquenet] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import build_ir
from archdsl.backend import compile_module
from benchmarks.measure import interleaved, peak_training_memory, training_step

NETWORKS = {  # name: spec file, network, parameters, input shape
    "densenet121": ("densenet.arch", "densenet121", {}, (3, 224, 224)),
    "densenet_bc100": ("densenet.arch", "densenet_bc100_k12", {}, (3, 32, 32)),
    "cliquenet": ("cliquenet.arch", "cliquenet_k36_t12", {}, (3, 32, 32)),
}


def model(name: str, efficient: bool, device: str) -> torch.nn.Module:
    file, network, params, _ = NETWORKS[name]
    g = build_ir(ROOT / "specs" / file, network, **params)
    return compile_module(g, seed=0, device=device, memory_efficient=efficient).train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="densenet121,densenet_bc100,cliquenet")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: "NAME:plain|efficient"
    args = parser.parse_args()
    if args.memory_of:
        name, which = args.memory_of.split(":")
        x = torch.randn(args.batch, *NETWORKS[name][3], device=args.device)
        print(json.dumps(peak_training_memory(model(name, which == "efficient", args.device), x) / 2**20))
        return
    print(f"device {args.device}, batch {args.batch}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'network':15} {'plain MiB':>10} {'efficient MiB':>14} {'ratio':>6} {'plain s':>8} {'efficient s':>12} "
          f"{'ratio':>6}")
    for name in args.networks.split(","):
        peaks = {}
        for which in ("plain", "efficient"):
            out = subprocess.run([sys.executable, __file__, "--batch", str(args.batch), "--device", args.device,
                                  "--memory-of", f"{name}:{which}"], check=True, capture_output=True, text=True)
            peaks[which] = json.loads(out.stdout.strip().splitlines()[-1])
        plain, efficient = model(name, False, args.device), model(name, True, args.device)
        x = torch.randn(args.batch, *NETWORKS[name][3], device=args.device)
        times = interleaved({"plain": partial(training_step, plain, x), "efficient": partial(training_step, efficient, x)},
                            args.device, args.repeats)
        print(f"{name:15} {peaks['plain']:10.1f} {peaks['efficient']:14.1f} {peaks['efficient'] / peaks['plain']:6.3f} "
              f"{times['plain']:8.3f} {times['efficient']:12.3f} {times['efficient'] / times['plain']:6.3f}")


if __name__ == "__main__":
    main()
