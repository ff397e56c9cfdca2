"""The ops of the post-2018 CNNs (archdsl/ops/modern.py and the activations in archdsl/ops/layers.py):
shape rules, parameter and MAC counts, errors, and the generated torch code against torch's and
torchvision's own functions (SiLU, GELU, hard swish/sigmoid, LayerNorm2d, GroupNorm, stochastic depth,
layer scale, channels-last Linear, squeeze-and-excitation), plus the residual `if_same` mode and
`drop_path` argument and in-place activations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.convnext import LayerNorm2d
from torchvision.ops import SqueezeExcitation, stochastic_depth

import archdsl
from archdsl.backend import runtime
from archdsl.backend.codegen import generate
from archdsl.diagnostics import ArchError
from archdsl.ir import node_facts, total_params
from archdsl.ops import OPS, OpError

torch.manual_seed(0)


def module(op: str, args: dict, shape: tuple) -> nn.Module:
    """The module an op's constructor source builds (evaluated in the runtime's namespace)."""
    definition = OPS[op]
    out = definition.infer(args, [shape])
    return eval(definition.module(args, [shape], out), {**vars(runtime), "nn": nn})


def forward(op: str, args: dict, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Run an op's forward source (stateless ops) on a batch `x`."""
    definition = OPS[op]
    source = definition.forward_inplace(args, ["x"]) if inplace else definition.forward(args, ["x"], None,
                                                                                        [tuple(x.shape[1:])])
    return eval(source, {"torch": torch, "F": F, "x": x})


def facts(op: str, shape: tuple, **args) -> tuple:
    from archdsl.diagnostics import Span
    from archdsl.elaborate import bind_op_args

    bound = bind_op_args(OPS[op], [], {k: (v, None) for k, v in args.items()}, Span("t.arch", 1, 1, 1, 1))
    return node_facts(op, bound, [shape])


# ---------------------------------------------------------------- activations


ACTIVATIONS = [
    ("silu", {}, lambda x: x * torch.sigmoid(x)),
    ("hardswish", {}, lambda x: x * torch.clamp(x + 3, 0, 6) / 6),
    ("hardsigmoid", {}, lambda x: torch.clamp(x + 3, 0, 6) / 6),
    ("gelu", {"approximate": "none"}, lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
    ("gelu", {"approximate": "tanh"},
     lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
]


@pytest.mark.parametrize("op, args, formula", ACTIVATIONS, ids=[f"{a[0]}-{a[1]}" for a in ACTIVATIONS])
def test_activation_matches_its_formula(op, args, formula):
    x = torch.randn(4, 6, 5, 5) * 4
    assert facts(op, (6, 5, 5), **args) == ((6, 5, 5), 0, 0)
    torch.testing.assert_close(forward(op, args, x), formula(x), rtol=1e-6, atol=1e-6)
    if OPS[op].forward_inplace(args, ["x"]) is not None:
        y = x.clone()
        out = forward(op, args, y, inplace=True)
        assert out.data_ptr() == y.data_ptr()
        torch.testing.assert_close(out, formula(x), rtol=1e-6, atol=1e-6)


def test_gelu_has_no_inplace_form_and_checks_its_approximation():
    assert OPS["gelu"].forward_inplace({"approximate": "none"}, ["x"]) is None
    with pytest.raises(OpError, match="unknown GELU approximation 'fast'"):
        OPS["gelu"].infer({"approximate": "fast"}, [(4,)])


def test_activations_work_in_place_after_a_bn_but_not_on_a_value_read_twice():
    source = """
network acts() {
  input x: [8, 6, 6]
  a = conv(8, 3) -> bn -> silu
  b = a -> hardswish
  c = [a, b] -> add -> bn -> hardswish -> conv(8, 1) -> bn -> hardsigmoid -> conv(8, 1) -> gelu
}
"""
    code = generate(archdsl.build_ir(source))
    assert "silu1 = F.silu(bn1, inplace=True)" in code
    assert "hardswish1 = F.hardswish(silu1)" in code  # silu1 is read again by the add
    assert "hardswish2 = F.hardswish(bn2, inplace=True)" in code
    assert "hardsigmoid1 = F.hardsigmoid(bn3, inplace=True)" in code
    assert "gelu1 = F.gelu(conv3)" in code
    model = archdsl.build(source, seed=0)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    model(x).square().sum().backward()  # in-place forms keep autograd correct
    grad = x.grad.clone()
    x2 = x.detach().clone().requires_grad_()  # the same layers through out-of-place functions
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    a = F.silu(bn[0](convs[0](x2)))
    b = F.hardswish(a)
    c = F.gelu(convs[2](F.hardsigmoid(bn[2](convs[1](F.hardswish(bn[1](a + b)))))))
    c.square().sum().backward()
    torch.testing.assert_close(grad, x2.grad)


# ---------------------------------------------------------------- normalisation


def test_layernorm_over_channels_equals_torchvision_layernorm2d():
    assert facts("layernorm", (96, 14, 14), eps=1e-6) == ((96, 14, 14), 192, 0)
    ours = module("layernorm", {"axis": 0, "eps": 1e-6, "affine": True}, (96, 14, 14))
    assert isinstance(ours, runtime.ChannelLayerNorm) and ours.eps == 1e-6
    reference = LayerNorm2d(96, eps=1e-6)
    with torch.no_grad():
        reference.weight.normal_()
        reference.bias.normal_()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 96, 14, 14) * 3 + 1
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


def test_layernorm_over_the_last_axis_is_nn_layernorm():
    assert facts("layernorm", (7, 7, 96), axis=-1) == ((7, 7, 96), 192, 0)
    assert facts("layernorm", (768,)) == ((768,), 1536, 0)  # flat: channels are the last axis
    assert facts("layernorm", (768,), affine=False)[1] == 0
    ours = module("layernorm", {"axis": -1, "eps": 1e-5, "affine": True}, (7, 7, 96))
    assert type(ours) is nn.LayerNorm and ours.normalized_shape == (96,)
    x = torch.randn(2, 7, 7, 96)
    torch.testing.assert_close(ours(x), F.layer_norm(x, (96,), ours.weight, ours.bias, 1e-5))


def test_layernorm_errors():
    with pytest.raises(OpError, match=r"layernorm works over the channel axis \(axis = 0\) or the last axis"):
        facts("layernorm", (8, 4, 4), axis=1)
    with pytest.raises(OpError, match="eps must be positive"):
        facts("layernorm", (8, 4, 4), eps=0.0)


def test_groupnorm_equals_torch_group_norm():
    assert facts("groupnorm", (32, 8, 8), groups=8) == ((32, 8, 8), 64, 0)
    ours = module("groupnorm", {"groups": 8, "eps": 1e-5, "affine": True}, (32, 8, 8))
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    x = torch.randn(3, 32, 8, 8)
    torch.testing.assert_close(ours(x), F.group_norm(x, 8, ours.weight, ours.bias, 1e-5))
    with pytest.raises(OpError, match="groupnorm: 30 channels are not divisible by groups=8"):
        facts("groupnorm", (30, 8, 8), groups=8)


def test_bn_eps_and_momentum_change_the_function_not_the_counts():
    assert facts("bn", (16, 8, 8), eps=1e-3, momentum=0.01)[1] == facts("bn", (16, 8, 8))[1] == 32
    bn = module("bn", {"eps": 1e-3, "momentum": 0.01, "affine": True, "zero_init": False}, (16, 8, 8))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


# ---------------------------------------------------------------- drop_path, layer_scale, permute


def test_drop_path_equals_torchvision_stochastic_depth():
    assert facts("drop_path", (16, 4, 4), p=0.25) == ((16, 4, 4), 0, 0)
    ours = module("drop_path", {"p": 0.25}, (16, 4, 4))
    x = torch.randn(64, 16, 4, 4)
    ours.eval()
    assert ours(x) is x  # the identity in eval
    ours.train()
    torch.manual_seed(5)
    y = ours(x)
    torch.manual_seed(5)
    torch.testing.assert_close(y, stochastic_depth(x, 0.25, "row", training=True))
    kept = (y.flatten(1) != 0).any(1)
    assert 0 < kept.sum() < 64  # per sample: some dropped, some kept
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    with pytest.raises(OpError, match=r"drop_path probability must be in \[0, 1\], found 1.5"):
        facts("drop_path", (4,), p=1.5)


def test_layer_scale_is_a_learnable_per_channel_scale_shaped_as_torchvision():
    assert facts("layer_scale", (96, 7, 7), init=1e-6) == ((96, 7, 7), 96, 0)
    ours = module("layer_scale", {"init": 1e-6}, (96, 7, 7))
    assert ours.weight.shape == (96, 1, 1) and ours.weight.requires_grad
    assert torch.all(ours.weight == 1e-6)
    with torch.no_grad():
        ours.weight.normal_()
    x = torch.randn(2, 96, 7, 7)
    torch.testing.assert_close(ours(x), x * ours.weight.view(1, 96, 1, 1))
    assert module("layer_scale", {"init": 0.1}, (10,)).weight.shape == (10,)


def test_permute_reorders_the_axes():
    assert facts("permute", (96, 14, 12), order=[1, 2, 0]) == ((14, 12, 96), 0, 0)
    x = torch.randn(2, 96, 14, 12)
    torch.testing.assert_close(forward("permute", {"order": [1, 2, 0]}, x), x.permute(0, 2, 3, 1))
    with pytest.raises(OpError, match=r"permute order \[1, 1, 0\] is not an ordering of the 3 axes"):
        facts("permute", (96, 14, 12), order=[1, 1, 0])


def test_fc_over_the_last_axis_is_a_linear_at_every_position():
    assert facts("fc", (7, 7, 96), out=384, axis=-1) == ((7, 7, 384), 96 * 384 + 384, 49 * 96 * 384)
    ours = module("fc", {"out": 384, "bias": True, "bias_init": None, "init": "default", "axis": -1}, (7, 7, 96))
    x = torch.randn(2, 7, 7, 96)
    torch.testing.assert_close(ours(x), F.linear(x, ours.weight, ours.bias))
    with pytest.raises(OpError, match=r"fc needs a flat \[F\] input, found \[96, 7, 7\]"):
        facts("fc", (96, 7, 7), out=10)
    with pytest.raises(OpError, match="fc acts on the last axis only"):
        facts("fc", (96, 7, 7), out=10, axis=0)


def test_mul_scales_channels_by_a_c11_tensor():
    assert OPS["mul"].infer({}, [(16, 8, 8), (16, 1, 1)]) == (16, 8, 8)
    with pytest.raises(OpError, match=r"mul: input 2 is \[16, 2, 1\], input 1 is \[16, 8, 8\]"):
        OPS["mul"].infer({}, [(16, 8, 8), (16, 2, 1)])


# ---------------------------------------------------------------- squeeze-and-excitation, residual modes

SE_SPEC = """
block se(squeeze, gate = "sigmoid") {
  input x
  s = adaptive_avgpool(1) -> conv(squeeze, 1) as fc1 -> relu -> conv(x.channels, 1) as fc2
  if gate == "sigmoid" { g = s -> sigmoid } else { g = s -> hardsigmoid }
  [x, g] -> mul
}
network se_net(gate = "sigmoid") {
  input x: [32, 9, 9]
  se(8, gate = gate)
}
"""


@pytest.mark.parametrize("gate", ["sigmoid", "hardsigmoid"])
def test_se_block_equals_torchvision_squeeze_excitation(gate):
    model = archdsl.build(SE_SPEC, gate=gate, seed=0).eval()
    assert sum(p.numel() for p in model.parameters()) == 32 * 8 + 8 + 8 * 32 + 32
    reference = SqueezeExcitation(32, 8, scale_activation=nn.Sigmoid if gate == "sigmoid" else nn.Hardsigmoid)
    reference.load_state_dict({k.replace("se1.", ""): v for k, v in model.state_dict().items()})
    x = torch.randn(2, 32, 9, 9)
    torch.testing.assert_close(model(x), reference(x))


RESIDUAL_SPEC = """
block inverted(out, stride = 1, p = 0.0) {
  residual(shortcut = "if_same", drop_path = p) {
    conv(out, 3, stride = stride, bias = false) -> bn
  }
}
network inverted_net() {
  input x: [16, 8, 8]
  inverted(16, p = 0.1) as keep
  inverted(24, stride = 2, p = 0.1) as down
  inverted(24) as keep2
}
"""


def test_if_same_shortcut_is_the_identity_when_the_shape_is_kept_and_absent_otherwise():
    g = archdsl.build_ir(RESIDUAL_SPEC)
    ops = {n: d["op"] for n, d in g.nodes(data=True)}
    assert ops["keep.add1"] == "add" and ops["keep.drop_path1"] == "drop_path"
    assert g.nodes["keep.drop_path1"]["args"]["p"] == 0.1
    assert not any(n.startswith("down.") and op in ("add", "drop_path", "conv") and "shortcut" in n
                   for n, op in ops.items())
    assert [n for n in ops if n.startswith("down.")] == ["down.conv1", "down.bn1"]
    assert ops["keep2.drop_path1"] == "drop_path"  # a rate of 0 (the first block of a schedule) keeps its node
    assert "drop_path1" not in archdsl.build_ir(RESIDUAL_SPEC.replace(", drop_path = p", "")).nodes
    assert total_params(g) == 16 * 16 * 9 + 32 + 16 * 24 * 9 + 48 + 24 * 24 * 9 + 48
    model = archdsl.build(RESIDUAL_SPEC, seed=0).eval()
    x = torch.randn(2, 16, 8, 8)
    y = model.keep.bn1(model.keep.conv1(x)) + x
    y = model.down.bn1(model.down.conv1(y))
    y = model.keep2.bn1(model.keep2.conv1(y)) + y
    torch.testing.assert_close(model(x), y)
    model.train()
    torch.manual_seed(1)
    assert model(x).shape == (2, 24, 4, 4)


def test_unknown_shortcut_names_the_new_mode():
    with pytest.raises(ArchError) as info:
        archdsl.build_ir(RESIDUAL_SPEC.replace('"if_same"', '"maybe"'))
    assert info.value.diagnostics[0].help == "use 'A', 'B', 'C', 'identity', 'if_same' or 'none'"
