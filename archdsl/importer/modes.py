"""Training-mode structure with eval-mode arithmetic: how the importer reaches auxiliary heads.

A module whose `forward` branches on `self.training` (GoogLeNet's and Inception-v3's auxiliary
classifiers, which run only in training) shows its whole graph only in training mode. Under
`training_structure(model)` every module that runs Python code of its own (the modules tracing enters)
is in training mode and every layer traced as one op (batch norm, dropout, stochastic depth) in eval
mode: the graph is the training graph, its numbers are deterministic and no running statistic moves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from archdsl.importer.layers import is_leaf


@contextlib.contextmanager
def training_structure(model: nn.Module) -> Iterator[nn.Module]:
    """`model` with the modules tracing enters in training mode and the leaves in eval mode; every
    module's own mode is restored afterwards."""
    modes = {m: m.training for m in model.modules()}
    try:
        for m in modes:
            m.training = not is_leaf(m)
        yield model
    finally:
        for m, training in modes.items():
            m.training = training


def main_output(out):
    """The first tensor of a model's output (a tensor, a tuple, a named tuple or a dict)."""
    if isinstance(out, dict):
        out = next(iter(out.values()))
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out
