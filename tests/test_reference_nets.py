"""Self-checks of the hand-written reference networks in ``tests/reference/nets.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reference.nets import (
    CLIQUENET_IMAGENET_CONFIGS,
    BasicBlock,
    Bottleneck,
    CliqueBlockNaive,
    CliqueBlockRef,
    DenseBlock,
    HighwayConv,
    InceptionModule,
    ShuffleUnit,
    Transition,
    TwoTowerConv,
    channel_shuffle,
    cliquenet_cifar,
    cliquenet_imagenet,
    count_params,
    densenet121,
    resnet50,
)

torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))


def _randomize_bn(module: nn.Module, gen: torch.Generator) -> None:
    """Give every BN non-trivial affine params and running stats (for eval-mode checks)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


# --------------------------------------------------------------------------- param counts


@pytest.mark.parametrize("stride_on_3x3", [False, True])
def test_resnet50_params(stride_on_3x3: bool) -> None:
    assert count_params(resnet50(stride_on_3x3)) == 25_557_032


def test_densenet121_params() -> None:
    assert count_params(densenet121()) == 7_978_856


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"k": 36, "T": 12}, 935_994),
        ({"k": 36, "T": 12, "A": True, "C": True}, 1_079_338),
        # README of the authors' repo: 4.49M / 6.94M / 10.14M / 1.05M / 0.99M
        ({"k": 64, "T": 15}, 4_485_706),
        ({"k": 80, "T": 15}, 6_937_546),
        ({"k": 80, "T": 18}, 10_135_594),
        ({"k": 12, "T": 36}, 1_045_306),
        ({"k": 24, "T": 18}, 986_650),
    ],
)
def test_cliquenet_cifar_params(kwargs: dict, expected: int) -> None:
    assert count_params(cliquenet_cifar(**kwargs)) == expected


def test_cliquenet_cifar_widths() -> None:
    net = cliquenet_cifar(k=36, T=12)
    assert [b.block_channels for b in net.blocks] == [208, 288, 288]
    assert net.feature_channels == 784
    assert net.fc.in_features == 784


@pytest.mark.parametrize("A, expected", [(True, 14_383_024), (False, 13_170_904)])
def test_cliquenet_imagenet_s3_params(A: bool, expected: int) -> None:
    assert count_params(cliquenet_imagenet((40, 80, 160, 160), (6, 6, 6, 6), A=A)) == expected


@pytest.mark.parametrize(
    "cfg, expected",
    [("S0", 6_245_330), ("S1", 8_740_046), ("S2", 11_008_376), ("S3", 14_383_024)],
)
def test_cliquenet_imagenet_configs_params(cfg: str, expected: int) -> None:
    ks, Ls = CLIQUENET_IMAGENET_CONFIGS[cfg]
    assert count_params(cliquenet_imagenet(ks, Ls)) == expected


def test_naive_network_has_same_param_count() -> None:
    for kw in [{"k": 36, "T": 12}, {"k": 24, "T": 12, "A": True, "B": True, "C": True}]:
        assert count_params(cliquenet_cifar(**kw)) == count_params(cliquenet_cifar(**kw, naive=True))
    ks, Ls = CLIQUENET_IMAGENET_CONFIGS["S0"]
    assert count_params(cliquenet_imagenet(ks, Ls)) == count_params(
        cliquenet_imagenet(ks, Ls, naive=True)
    )


def _block_formula(c0: int, L: int, k: int, bottleneck: bool, mode: str, n: int | None) -> int:
    """Closed-form parameter count of a clique block (one round of stage II)."""
    ks = 1 if bottleneck else 9
    n_upd = 0 if mode == "I+I" else (L if n is None else n)
    edges = L * c0 * k + (L * (L - 1) // 2) * k * k  # W_0i and forward W_ji
    edges += sum(L - i for i in range(1, n_upd + 1)) * k * k  # backward edges into i <= n
    total = edges * ks
    total += sum(2 * (c0 + (i - 1) * k) for i in range(1, L + 1))  # stage-I BNs
    total += n_upd * 2 * (L - 1) * k  # stage-II BNs
    if bottleneck:
        total += L * 9 * k * k + 2 * k * (L + n_upd)
    return total


@pytest.mark.parametrize("bottleneck", [False, True])
@pytest.mark.parametrize(
    "mode, partial", [("II+II", None), ("I+II", None), ("I+I", None), ("II+II", 2), ("II+II", 0)]
)
def test_clique_block_param_formula(bottleneck: bool, mode: str, partial: int | None) -> None:
    block = CliqueBlockRef(10, 4, 6, bottleneck, mode=mode, partial=partial)
    assert count_params(block) == _block_formula(10, 4, 6, bottleneck, mode, partial)


def test_clique_block_i_i_has_no_stage2_params() -> None:
    block = CliqueBlockRef(8, 4, 5, bottleneck=True, mode="I+I")
    assert len(block.bn_II) == 0 and len(block.bnb_II) == 0
    assert all(int(j) < int(i) for j, i in (key.split("_") for key in block.edges))


def test_clique_block_rounds_share_convs() -> None:
    one = CliqueBlockRef(8, 3, 4, bottleneck=False, rounds=1)
    two = CliqueBlockRef(8, 3, 4, bottleneck=False, rounds=2)
    extra_bn = 3 * 2 * (2 * 4)  # one extra BN(2k) per layer
    assert count_params(two) - count_params(one) == extra_bn


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("stride_on_3x3", [False, True])
def test_resnet50_shape(stride_on_3x3: bool) -> None:
    net = resnet50(stride_on_3x3).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_resnet50_stride_placement() -> None:
    a, b = resnet50(False), resnet50(True)
    blk_a, blk_b = a.stages[1][0], b.stages[1][0]
    assert blk_a.conv1.stride == (2, 2) and blk_a.conv2.stride == (1, 1)
    assert blk_b.conv1.stride == (1, 1) and blk_b.conv2.stride == (2, 2)


def test_densenet121_shape() -> None:
    net = densenet121().eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_cliquenet_cifar_shape() -> None:
    for kw in [{"k": 36, "T": 12}, {"k": 12, "T": 12, "A": True, "B": True, "C": True, "classes": 100}]:
        net = cliquenet_cifar(**kw).eval()
        with torch.no_grad():
            out = net(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, kw.get("classes", 10))


def test_cliquenet_imagenet_s3_shape() -> None:
    net = cliquenet_imagenet().eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("cfg", ["S0", "S1", "S2"])
def test_cliquenet_imagenet_small_input_shape(cfg: str) -> None:
    ks, Ls = CLIQUENET_IMAGENET_CONFIGS[cfg]
    net = cliquenet_imagenet(ks, Ls, A=True).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_clique_block_output_shapes() -> None:
    x = torch.randn(2, 10, 8, 8)
    for mode in ["II+II", "I+II", "I+I"]:
        block, transit = CliqueBlockRef(10, 3, 4, bottleneck=True, mode=mode)(x)
        assert block.shape == (2, 22, 8, 8) and transit.shape == (2, 12, 8, 8)
        assert torch.equal(block[:, :10], x)


# --------------------------------------------------------------------------- small modules


def test_channel_shuffle() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_basic_block_shortcuts() -> None:
    x = torch.randn(2, 8, 8, 8)
    assert BasicBlock(8, 8, 1, "identity")(x).shape == (2, 8, 8, 8)
    proj = BasicBlock(8, 16, 2, "projection")
    assert proj(x).shape == (2, 16, 4, 4)
    assert count_params(proj) == 8 * 16 * 9 + 16 * 16 * 9 + 4 * 16 + 8 * 16 + 2 * 16
    a = BasicBlock(8, 16, 2, "A")
    assert count_params(a) == 8 * 16 * 9 + 16 * 16 * 9 + 4 * 16
    # zero the residual branch: output is ReLU of the option-A shortcut
    nn.init.zeros_(a.bn2.weight)
    out = a(x)
    expected = torch.cat([x[:, :, ::2, ::2], torch.zeros(2, 8, 4, 4)], 1).relu()
    torch.testing.assert_close(out, expected)


def test_bottleneck_block() -> None:
    x = torch.randn(2, 16, 8, 8)
    blk = Bottleneck(16, 8, 32, 2, "projection")
    assert blk(x).shape == (2, 32, 4, 4)
    assert Bottleneck(32, 8, 32, 1, "identity")(torch.randn(2, 32, 5, 5)).shape == (2, 32, 5, 5)


def test_dense_block_and_transition() -> None:
    x = torch.randn(2, 16, 8, 8)
    for bottleneck in (False, True):
        blk = DenseBlock(16, 3, 4, bottleneck)
        y = blk(x)
        assert y.shape == (2, 28, 8, 8) and torch.equal(y[:, :16], x)
    assert Transition(28, 14)(torch.randn(2, 28, 8, 8)).shape == (2, 14, 4, 4)


def test_inception_module() -> None:
    m = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # GoogLeNet inception (3a)
    assert m(torch.randn(2, 192, 28, 28)).shape == (2, 256, 28, 28)
    assert count_params(m) == 163_696
    assert m.b5[2].kernel_size == (5, 5)


def test_highway_conv() -> None:
    m = HighwayConv(4, 3, gate_bias=-3.0)
    assert torch.all(m.t.bias == -3.0)
    x = torch.randn(2, 4, 6, 6)
    assert m(x).shape == x.shape
    with torch.no_grad():  # gate forced shut -> pure carry
        m.t.weight.zero_()
        m.t.bias.fill_(-100.0)
    torch.testing.assert_close(m(x), x)


def test_shuffle_unit() -> None:
    x = torch.randn(2, 240, 8, 8)
    u1 = ShuffleUnit(240, 240, groups=3, stride=1)
    assert u1(x).shape == (2, 240, 8, 8)
    u2 = ShuffleUnit(240, 480, groups=3, stride=2)
    assert u2(x).shape == (2, 480, 4, 4)
    mid = 480 // 4
    expected = 240 * mid // 3 + 2 * mid + mid * 9 + 2 * mid + mid * 240 // 3 + 2 * 240
    assert count_params(u2) == expected


def test_two_tower_conv_equals_grouped_conv() -> None:
    m = TwoTowerConv(8, 12, 3)
    g = nn.Conv2d(8, 12, 3, padding=1, groups=2)
    with torch.no_grad():
        g.weight.copy_(torch.cat([t.weight for t in m.towers], 0))
        g.bias.copy_(torch.cat([t.bias for t in m.towers], 0))
    x = torch.randn(2, 8, 7, 7)
    torch.testing.assert_close(m(x), g(x))
    assert count_params(m) == count_params(g)


# --------------------------------------------------------------------------- CliqueNet blocks


def _pair(**kw) -> tuple[CliqueBlockRef, CliqueBlockNaive]:
    torch.manual_seed(0)
    ref = CliqueBlockRef(**kw)
    naive = CliqueBlockNaive(**kw).load_from(ref)
    return ref, naive


@pytest.mark.parametrize("bottleneck", [False, True])
@pytest.mark.parametrize(
    "mode, rounds, partial",
    [("II+II", 1, None), ("I+II", 1, None), ("I+I", 1, None), ("II+II", 2, None), ("II+II", 1, 2)],
)
def test_naive_matches_ref(bottleneck: bool, mode: str, rounds: int, partial: int | None) -> None:
    kw = {"c0": 5, "L": 4, "k": 3, "bottleneck": bottleneck, "mode": mode, "rounds": rounds, "partial": partial}
    ref, naive = _pair(**kw)
    assert count_params(ref) == count_params(naive)
    x = torch.randn(2, 5, 6, 6)
    # train mode (batch statistics)
    for a, b in zip(ref(x), naive(x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # eval mode with non-trivial running statistics
    _randomize_bn(ref, torch.Generator().manual_seed(1))
    naive.load_from(ref)
    ref.eval(), naive.eval()
    for a, b in zip(ref(x), naive(x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_naive_matches_ref_with_dropout_same_seed() -> None:
    ref, naive = _pair(c0=4, L=3, k=3, bottleneck=True, dropout=0.3)
    x = torch.randn(2, 4, 5, 5)
    torch.manual_seed(7)
    a = ref(x)
    torch.manual_seed(7)
    b = naive(x)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-5)


def test_naive_copy_to_roundtrip() -> None:
    torch.manual_seed(0)
    naive = CliqueBlockNaive(6, 3, 4, bottleneck=False)
    ref = naive.copy_to(CliqueBlockRef(6, 3, 4, bottleneck=False))
    x = torch.randn(2, 6, 5, 5)
    for a, b in zip(ref(x), naive(x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_clique_block_explicit_formula() -> None:
    """Stage-I layer 2 and stage-II layer 1 computed by hand from the edge convs."""
    torch.manual_seed(0)
    blk = CliqueBlockRef(4, 3, 2, bottleneck=False, mode="I+II")
    _randomize_bn(blk, torch.Generator().manual_seed(3))
    blk.eval()
    x0 = torch.randn(1, 4, 5, 5)
    block, transit = blk(x0)
    e = blk.edges
    x1 = e["0_1"](F.relu(blk.bn_I[0](x0)))
    z = F.relu(blk.bn_I[1](torch.cat([x0, x1], 1)))
    x2 = e["0_2"](z[:, :4]) + e["1_2"](z[:, 4:])
    z = F.relu(blk.bn_I[2](torch.cat([x0, x1, x2], 1)))
    x3 = e["0_3"](z[:, :4]) + e["1_3"](z[:, 4:6]) + e["2_3"](z[:, 6:])
    torch.testing.assert_close(block, torch.cat([x0, x1, x2, x3], 1))
    z = F.relu(blk.bn_II[0][0](torch.cat([x2, x3], 1)))
    x1p = e["2_1"](z[:, :2]) + e["3_1"](z[:, 2:])
    torch.testing.assert_close(transit[:, :2], x1p)
    z = F.relu(blk.bn_II[0][1](torch.cat([x1p, x3], 1)))
    x2p = e["1_2"](z[:, :2]) + e["3_2"](z[:, 2:])
    torch.testing.assert_close(transit[:, 2:4], x2p)


def test_clique_partial_keeps_stage1_values() -> None:
    torch.manual_seed(0)
    full_i = CliqueBlockRef(4, 3, 2, bottleneck=False, mode="I+II", partial=1).eval()
    block, transit = full_i(torch.randn(1, 4, 5, 5))
    # layers 2 and 3 are not updated in stage II
    torch.testing.assert_close(transit[:, 2:], block[:, 4 + 2 :])
    assert not torch.allclose(transit[:, :2], block[:, 4:6])


# --------------------------------------------------------------------------- gradients


def test_cliquenet_cifar_all_params_get_grad() -> None:
    torch.manual_seed(0)
    for kw in [{}, {"A": True, "C": True}, {"B": True, "A": True, "C": True, "T": 12}]:
        net = cliquenet_cifar(**{"k": 12, "T": 6, **kw})
        net.train()
        out = net(torch.randn(2, 3, 32, 32))
        F.cross_entropy(out, torch.tensor([1, 3])).backward()
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
