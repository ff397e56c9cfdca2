"""Train a small CIFAR-style CliqueNet on real data for a few steps and watch the loss fall.

The data is scikit-learn's handwritten digits (1,797 8x8 images that ship inside the package),
upsampled to the 32x32x3 input of specs/cliquenet.arch. The network is the spec's CIFAR
definition with small k and T, built by archdsl and trained as a plain nn.Module.

    python examples/train_cliquenet_digits.py [--steps 60] [--device cpu|cuda] [--memory-efficient]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import archdsl

SPEC = Path(__file__).resolve().parents[1] / "specs" / "cliquenet.arch"


def digits(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as [N, 3, 32, 32] images scaled to [0, 1], and their labels."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return images.to(device), torch.tensor(data.target).to(device)


def train(steps: int = 60, batch: int = 64, device: str = "cpu", seed: int = 0,
          memory_efficient: bool = False) -> list[float]:
    """Returns the training loss of every step."""
    torch.manual_seed(seed)
    images, labels = digits(device)
    model = archdsl.build(SPEC, "cliquenet_cifar", k=12, T=6, drop=0.0, seed=seed, device=device,
                          memory_efficient=memory_efficient)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for step in range(steps):
        index = torch.randint(0, len(images), (batch,), device=device)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--memory-efficient", action="store_true", help="recompute the blocks in backward")
    args = parser.parse_args()
    losses = train(args.steps, device=args.device, memory_efficient=args.memory_efficient)
    for step in range(0, len(losses), 10):
        window = losses[step:step + 10]
        print(f"steps {step + 1:3d}-{step + len(window):3d}: mean loss {sum(window) / len(window):.3f}")


if __name__ == "__main__":
    main()
