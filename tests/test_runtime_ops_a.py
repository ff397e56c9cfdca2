"""The torch side of the classic-network ops against hand-written formulas.

LeNet-5's trainable sub-sampling, partial (Table I) convolution and Euclidean RBF output layer
(archdsl/backend/runtime.py), the LRN module the `lrn` op emits with AlexNet's constants, and
log-softmax; plus the ops' own counting and error rules (archdsl/ops/classic.py).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archdsl.backend import runtime
from archdsl.ops import OPS, OpError

torch.manual_seed(0)


def build(op: str, args: dict, in_shape: tuple) -> nn.Module:
    """The module an op's constructor source builds (evaluated in the runtime's namespace)."""
    definition = OPS[op]
    out = definition.infer(args, [in_shape])
    return eval(definition.module(args, [in_shape], out), vars(runtime))


def test_trainable_subsampling_is_window_sum_times_coefficient_plus_bias():
    module = build("trainable_pool", {"kernel": 2, "stride": 2}, (6, 28, 28))
    assert isinstance(module, runtime.TrainableSubsampling)
    assert sum(p.numel() for p in module.parameters()) == OPS["trainable_pool"].params({}, [(6, 28, 28)], None) == 12
    x = torch.randn(2, 6, 28, 28)
    y = module(x)
    expected = torch.empty(2, 6, 14, 14)
    for c in range(6):
        for i in range(14):
            for j in range(14):
                window = x[:, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].sum(dim=(1, 2))
                expected[:, c, i, j] = window * module.weight[c] + module.bias[c]
    torch.testing.assert_close(y, expected)


def test_trainable_subsampling_init_follows_lecun():
    module = runtime.TrainableSubsampling(100, (2, 2))
    assert module.weight.abs().max() <= 2.4 / 4 and module.bias.abs().max() <= 2.4 / 4


LENET_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [0, 4, 5], [0, 1, 5],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 5],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4, 5],
]


def test_partial_conv_sums_only_the_connected_maps():
    args = {"out": 16, "kernel": 5, "table": LENET_TABLE, "stride": 1, "pad": 0, "bias": True}
    module = build("partial_conv", args, (6, 14, 14))
    assert isinstance(module, runtime.PartialConv)
    assert sum(p.numel() for p in module.parameters()) == 1516
    x = torch.randn(2, 6, 14, 14)
    y = module(x)
    assert y.shape == (2, 16, 10, 10)
    link = 0
    for j, inputs in enumerate(LENET_TABLE):
        expected = torch.full((2, 10, 10), module.bias.detach()[j].item())
        for i in inputs:
            kernel = module.weight[link].view(1, 1, 5, 5)
            expected = expected + F.conv2d(x[:, i:i + 1], kernel)[:, 0]
            link += 1
        torch.testing.assert_close(y[:, j], expected)


def test_partial_conv_gradient_reaches_only_links():
    module = runtime.PartialConv(3, [[0], [1, 2]], (3, 3), padding=(1, 1))
    module(torch.randn(1, 3, 8, 8)).sum().backward()
    assert module.weight.grad.shape == (3, 3, 3) and module.weight.grad.abs().sum() > 0
    dense = module.dense_weight()
    assert dense[0, 1:].abs().sum() == 0 and dense[1, 0].abs().sum() == 0


def test_partial_conv_counts_and_errors():
    op = OPS["partial_conv"]
    args = {"out": 2, "kernel": 3, "table": [[0], [1, 2]], "stride": 1, "pad": "half", "bias": True}
    out = op.infer(args, [(3, 8, 8)])
    assert out == (2, 8, 8)
    assert op.params(args, [(3, 8, 8)], out) == 3 * 9 + 2
    assert op.macs(args, [(3, 8, 8)], out) == 64 * 3 * 9
    with pytest.raises(OpError, match=r"the connection table needs one list per output map \(3\), found 2"):
        op.infer({**args, "out": 3}, [(3, 8, 8)])
    with pytest.raises(OpError, match=r"row 1 of the connection table, \[1, 3\], must name distinct input maps 0..2"):
        op.infer({**args, "table": [[0], [1, 3]]}, [(3, 8, 8)])


def test_euclidean_rbf_is_squared_distance_to_fixed_centres():
    module = build("rbf", {"out": 10, "trainable": False}, (84,))
    assert isinstance(module, runtime.EuclideanRBF)
    assert sum(p.numel() for p in module.parameters()) == 0
    assert set(module.weight.unique().tolist()) == {-1.0, 1.0} and module.weight.shape == (10, 84)
    x = torch.randn(3, 84)
    expected = torch.stack([((x - module.weight[i]) ** 2).sum(1) for i in range(10)], 1)
    torch.testing.assert_close(module(x), expected)
    trainable = build("rbf", {"out": 10, "trainable": True}, (84,))
    assert sum(p.numel() for p in trainable.parameters()) == OPS["rbf"].params({"out": 10, "trainable": True},
                                                                                  [(84,)], (10,)) == 840


def test_rbf_needs_a_flat_input():
    with pytest.raises(OpError, match=r"rbf needs a flat \[F\] input, found \[84, 1, 1\]"):
        OPS["rbf"].infer({"out": 10, "trainable": False}, [(84, 1, 1)])


def test_lrn_with_alexnet_constants_computes_the_papers_formula():
    """b = a / (k + alpha * sum over the n neighbouring maps of a^2)^beta with k=2, n=5, alpha=1e-4, beta=0.75."""
    module = build("lrn", {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, (96, 13, 13))
    a = torch.randn(2, 96, 13, 13) * 30  # large activations, so alpha's factor matters
    expected = torch.empty_like(a)
    for i in range(96):
        lo, hi = max(0, i - 2), min(95, i + 2)
        expected[:, i] = a[:, i] / (2.0 + 1e-4 * (a[:, lo:hi + 1] ** 2).sum(1)) ** 0.75
    torch.testing.assert_close(module(a), expected)


def test_log_softmax_forward():
    source = OPS["log_softmax"].forward({}, ["x"], None, [(150, 4, 4)])
    x = torch.randn(2, 150, 4, 4)
    y = eval(source, {"torch": torch, "x": x})
    torch.testing.assert_close(y.exp().sum(1), torch.ones(2, 4, 4))
