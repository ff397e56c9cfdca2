"""Timing and memory measurement shared by the benchmarks (and the memory tests)."""

from __future__ import annotations

import random
import statistics
import time

import torch


def rounds(fns: dict, device: str, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each call of each function, run in turns (one call of each per round) so that drifts
    of the machine hit all alike, each round in its own order (shuffled, seeded) so that no function
    always runs right after the same one: the one before leaves the caches and the allocator's free
    lists in its state, which measured up to 10% on MobileNetV2 (a rotated order keeps each function's
    predecessor); `warmup` untimed calls of each first (lazy state, compilation)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    order = random.Random(0)
    for _ in range(repeats):
        names = list(fns)
        order.shuffle(names)
        for name in names:
            fn = fns[name]
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def interleaved(fns: dict, device: str, repeats: int) -> dict:
    """Median seconds of each function over interleaved rounds (see `rounds`)."""
    return {name: statistics.median(t) for name, t in rounds(fns, device, repeats).items()}


def training_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One forward and backward pass with a scalar loss; gradients are dropped first."""
    model.zero_grad(set_to_none=True)
    model(x).square().mean().backward()


def peak_training_memory(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of tensors held during one training step, above what was held before it.

    GPU: the caching allocator's peak. CPU: the peak of the running sum of the allocations and
    frees torch's profiler records (RSS is too coarse: freed blocks stay resident).
    """
    training_step(model, x)  # warm-up: lazily created state and gradients exist from here on
    model.zero_grad(set_to_none=True)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        model(x).square().mean().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(x).square().mean().backward()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak
