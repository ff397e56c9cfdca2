"""PyTorch modules for ops that torch.nn lacks.

Each class here is self-contained (it uses only torch, nn, F and math) because
the code generator copies the source of the classes a network uses into the
standalone `.py` file it writes: a paper's code release needs no archdsl.
"""

from __future__ import annotations

import math  # noqa: F401  (available to the classes below and to generated code)

import torch
import torch.nn.functional as F  # noqa: F401
from torch import nn


class CliqueLayer(nn.Module):
    """Layer X_i of a CliqueNet block: one weight tensor for all of its incoming edges.

    ``weight`` is laid out along its input axis as [W_0i | W_1i .. W_(i-1)i | W_(i+1)i .. W_Li]
    (c0 channels from the block input, then k per other layer). Stage I convolves
    concat(X_0, X_1..X_(i-1)) with the prefix ``weight[:, :stage1_in]``; stage II convolves
    concat(X_j, j != i) with ``weight[:, c0:]``: the forward-edge weights are the same
    parameters in both stages. Each stage (and each stage-II round) has its own BN.
    ``edge_weight(j)`` returns W_ji as a view.
    """

    def __init__(self, c0: int, stage1_in: int, stage2_in: int, k: int, kernel_size: int = 3,
                 bottleneck: bool = False, rounds: int = 1, dropout: float = 0.0):
        super().__init__()
        edge_kernel = 1 if bottleneck else kernel_size
        backward = stage2_in - (stage1_in - c0) if stage2_in else 0
        self.c0, self.stage1_in, self.k = c0, stage1_in, k
        self.weight = nn.Parameter(torch.empty(k, stage1_in + backward, edge_kernel, edge_kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        stages = 1 + (rounds if stage2_in else 0)
        self.norms = nn.ModuleList([nn.BatchNorm2d(stage1_in)] + [nn.BatchNorm2d(stage2_in) for _ in range(stages - 1)])
        self.bottleneck = bottleneck
        if bottleneck:
            self.conv3x3 = nn.Conv2d(k, k, kernel_size, padding=kernel_size // 2, bias=False)
            self.norms3x3 = nn.ModuleList([nn.BatchNorm2d(k) for _ in range(stages)])
        self.padding = edge_kernel // 2
        self.dropout = dropout
        self.memory_efficient = False

    def edge_weight(self, j: int) -> torch.Tensor:
        """W_ji: the filters from X_j (X_0 is the block input) into this layer."""
        if j == 0:
            return self.weight[:, :self.c0]
        start = self.c0 + (j - 1) * self.k
        if start >= self.stage1_in:  # a backward edge: X_i itself has no slot
            start -= self.k
        return self.weight[:, start:start + self.k]

    def _norm_relu(self, stage: int, x: torch.Tensor) -> torch.Tensor:
        for index, norm in enumerate(self.norms):
            if index == stage:
                x = norm(x)
        return torch.relu(x)

    @torch.jit.unused
    def _checkpointed(self, stage: int, inputs: list[torch.Tensor]) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        def concat_norm_relu(*xs: torch.Tensor) -> torch.Tensor:
            return self._norm_relu(stage, torch.cat(xs, 1))

        return checkpoint(concat_norm_relu, *inputs, use_reentrant=False)

    def forward(self, inputs: list[torch.Tensor], stage: int) -> torch.Tensor:
        if self.memory_efficient and self.training and torch.is_grad_enabled():
            x = self._checkpointed(stage, inputs)
        else:
            x = self._norm_relu(stage, torch.cat(inputs, 1))
        weight = self.weight[:, :self.stage1_in] if stage == 0 else self.weight[:, self.c0:]
        x = F.conv2d(x, weight, padding=self.padding)
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        if self.bottleneck:
            for index, norm in enumerate(self.norms3x3):
                if index == stage:
                    x = norm(x)
            x = self.conv3x3(torch.relu(x))
            if self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
        return x
