"""Normalisation layers far from their initial state, so that eval-mode comparisons test them.

BN running statistics and affine parameters, LayerNorm affine parameters and layer scales start at
values (0, 1, 1e-6) that make them nearly the identity; comparisons against a reference (torchvision,
folded inference builds, imported specs, loaded weights) randomise them first, with one seed on both
sides.
"""

from __future__ import annotations

import torch
from torch import nn


def randomise_norms(module: nn.Module, seed: int = 0, spread: float = 0.1) -> nn.Module:
    """Random norm statistics, affine parameters and layer scales (in place); returns `module`."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * spread)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * spread)
        for name, p in module.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    return module
