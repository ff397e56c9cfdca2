"""CliqueNet: the compiled module against a naive implementation written from the formulas.

The naive network (tests/reference/nets.py, ``naive=True``) builds every layer's input with a
chain of pairwise ``torch.cat`` calls and its weight with a chain of pairwise ``torch.cat`` of
the per-edge filter banks, as the authors' code does. Both get the same weights (checked:
same outputs), then in one run we measure eval forward time, training forward+backward time and
peak training memory, on the CPU (and on the GPU when there is one). Each memory figure comes
from a fresh process: on the GPU the allocator's peak during one training step; on the CPU the
peak of the running sum of the allocations torch's profiler records during one step (RSS is too
coarse: freed blocks stay resident). ``--profile`` prints, instead, where one training step of
each implementation spends its time (torch's profiler, top ops by self time).

    python benchmarks/cliquenet.py [--configs cifar,s3] [--batch 16] [--device cpu|cuda] [--profile]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import build_ir
from archdsl.backend import compile_module
from benchmarks.measure import interleaved, peak_training_memory, training_step
from tests.reference import nets

CONFIGS = {
    "cifar": ("cliquenet_k36_t12", lambda: nets.cliquenet_cifar(36, 12, naive=True), (3, 32, 32)),
    "s3": ("cliquenet_s3", lambda: nets.cliquenet_imagenet(naive=True), (3, 224, 224)),
}


def load_naive_weights(naive: torch.nn.Module, compiled: torch.nn.Module) -> None:
    """Copy the compiled module's weights into the naive network (per-edge banks from weight slices)."""
    mine = compiled.state_dict()
    theirs = naive.state_dict()
    target = {}
    blocks = sorted({k.split(".")[0] for k in mine if k.startswith("block")}, key=lambda s: int(s[5:]))
    for b, block in enumerate(blocks):
        ref = naive.blocks[b]
        for i in range(1, ref.L + 1):
            layer = getattr(compiled, block).__getattr__(f"x{i}")
            for j in [j for j in range(ref.L + 1) if j != i]:
                key = f"blocks.{b}.edge_weights.{j}_{i}"
                if key in theirs:
                    target[key] = layer.edge_weight(j)
            norms = [f"bn_I.{i - 1}"] + [f"bn_II.{r}.{i - 1}" for r in range(ref.rounds)]
            extra = [f"bnb_I.{i - 1}"] + [f"bnb_II.{r}.{i - 1}" for r in range(ref.rounds)]
            for s, name in enumerate(norms):
                for part, value in layer.norms[s].state_dict().items():
                    target[f"blocks.{b}.{name}.{part}"] = value
            if ref.bottleneck:
                for s, name in enumerate(extra):
                    for part, value in layer.norms3x3[s].state_dict().items():
                        target[f"blocks.{b}.{name}.{part}"] = value
                target[f"blocks.{b}.conv3.{i - 1}.weight"] = layer.conv3x3.weight
    groups = [("stem", lambda k: not k.startswith(("block", "head", "transition", "fc")))]
    groups += [(f"heads.{b}.", lambda k, b=b: k.startswith(f"head{b + 1}.")) for b in range(len(blocks))]
    groups += [(f"transitions.{b}.", lambda k, b=b: k.startswith(f"transition{b + 1}.")) for b in range(len(blocks))]
    groups += [("fc.", lambda k: k.startswith("fc"))]
    for prefix, is_mine in groups:
        src = [v for k, v in mine.items() if is_mine(k)]
        dst = [k for k in theirs if k.startswith(prefix)]
        assert [tuple(mine_v.shape) for mine_v in src] == [tuple(theirs[k].shape) for k in dst], prefix
        target.update(zip(dst, src))
    missing = set(theirs) - set(target)
    assert not missing, sorted(missing)[:5]
    naive.load_state_dict(target)


def pair(config: str, device: str, memory_efficient: bool = False):
    network, make_naive, shape = CONFIGS[config]
    g = build_ir(ROOT / "specs" / "cliquenet.arch", network)
    compiled = compile_module(g, seed=0, memory_efficient=memory_efficient)
    naive = make_naive()
    load_naive_weights(naive, compiled)
    return compiled.to(device), naive.to(device), shape


def speed(config: str, batch: int, device: str, repeats: int) -> dict:
    compiled, naive, shape = pair(config, device)
    x = torch.randn(batch, *shape, device=device)
    models = {"compiled": compiled, "naive": naive}
    for model in models.values():
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), naive(x), rtol=1e-4, atol=1e-4)

    def forward(model):
        def run():
            with torch.no_grad():
                model(x)
        return run

    def step(model):
        return lambda: training_step(model, x)

    result = {f"{n}_forward_s": t for n, t in interleaved({n: forward(m) for n, m in models.items()},
                                                          device, repeats).items()}
    for model in models.values():
        model.train()
    result |= {f"{n}_train_step_s": t for n, t in interleaved({n: step(m) for n, m in models.items()},
                                                              device, repeats).items()}
    return result


def memory(config: str, batch: int, device: str, which: str) -> float:
    """Peak memory (MiB) of one training step of one implementation, in this fresh process."""
    network, make_naive, shape = CONFIGS[config]
    if which == "naive":  # weights do not matter here: build only the measured network
        model = make_naive()
    else:
        g = build_ir(ROOT / "specs" / "cliquenet.arch", network)
        model = compile_module(g, seed=0, memory_efficient=(which == "compiled_efficient"))
    model.to(device).train()
    return peak_training_memory(model, torch.randn(batch, *shape, device=device)) / 2**20


def profile_step(config: str, batch: int, device: str, rows: int = 12) -> None:
    """Print the ops that take the time in a training step, for both implementations."""
    from torch.profiler import ProfilerActivity, profile

    compiled, naive, shape = pair(config, device)
    x = torch.randn(batch, *shape, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    for name, model in (("compiled", compiled), ("naive", naive)):
        model.train()
        training_step(model, x)  # warm-up
        with profile(activities=activities) as prof:
            training_step(model, x)
        key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        print(f"{config}, {name}, batch {batch}, {device}")
        print(prof.key_averages().table(sort_by=key, row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="cifar,s3")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="time per op of one training step instead")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: one memory measurement
    args = parser.parse_args()
    if args.profile:
        for config in args.configs.split(","):
            profile_step(config, args.batch, args.device)
        return
    if args.memory_of:
        print(json.dumps(memory(args.configs, args.batch, args.device, args.memory_of)))
        return
    rows = []
    for config in args.configs.split(","):
        result = speed(config, args.batch, args.device, args.repeats)
        for which in ("naive", "compiled", "compiled_efficient"):
            out = subprocess.run([sys.executable, __file__, "--configs", config, "--batch", str(args.batch),
                                  "--device", args.device, "--memory-of", which],
                                 check=True, capture_output=True, text=True).stdout
            result[f"{which}_peak_mib"] = json.loads(out.strip().splitlines()[-1])
        rows.append((config, result))
    print(f"device {args.device}, batch {args.batch}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'config':8} {'fwd naive':>10} {'fwd ours':>9} {'ratio':>6} {'train naive':>12} {'train ours':>11} "
          f"{'ratio':>6} {'mem naive':>10} {'mem ours':>9} {'mem eff':>8} {'eff/naive':>9}")
    for config, r in rows:
        print(f"{config:8} {r['naive_forward_s']:10.4f} {r['compiled_forward_s']:9.4f} "
              f"{r['compiled_forward_s'] / r['naive_forward_s']:6.3f} {r['naive_train_step_s']:12.4f} "
              f"{r['compiled_train_step_s']:11.4f} {r['compiled_train_step_s'] / r['naive_train_step_s']:6.3f} "
              f"{r['naive_peak_mib']:10.1f} {r['compiled_peak_mib']:9.1f} {r['compiled_efficient_peak_mib']:8.1f} "
              f"{r['compiled_efficient_peak_mib'] / r['naive_peak_mib']:9.3f}")


if __name__ == "__main__":
    main()
