"""examples/train_cliquenet_digits.py: a CliqueNet built from the spec learns real data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_cliquenet_digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("train_cliquenet_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_digits_example_learns_and_trains_the_same_memory_efficiently():
    example = load_example()
    losses = example.train(steps=40, batch=32)  # mean loss of the first 10 steps 2.25, of the last 10 1.59
    assert sum(losses[-10:]) / 10 < 0.85 * sum(losses[:10]) / 10, losses
    torch.testing.assert_close(example.train(steps=40, batch=32, memory_efficient=True), losses, rtol=1e-4, atol=1e-5)
