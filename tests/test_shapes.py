"""Shape rules and parameter counts of the ops, checked against PyTorch itself.

The front end never imports torch; these tests do, to compare every rule with the real layer:
output sizes on meta tensors (no compute) and parameter counts of the modules.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from archdsl.api import build_ir
from archdsl.diagnostics import ArchError
from archdsl.ops import OPS, OpError


def out_shape(op: str, args: dict, *shapes: tuple) -> tuple:
    """The IR's output shape of one op, through the elaborator's own argument binding."""
    from archdsl.elaborate import bind_op_args

    definition = OPS[op]
    bound = bind_op_args(definition, [], {k: (v, None) for k, v in args.items()}, None)
    return tuple(definition.infer(bound, list(shapes)))


def torch_shape(module: nn.Module, shape: tuple) -> tuple:
    return tuple(module.to("meta")(torch.empty(1, *shape, device="meta")).shape[1:])


def one_layer(step: str, shape: list) -> dict:
    """Build `input x: shape; step` and return the last layer's node."""
    g = build_ir(f"network n() {{\n  input x: {shape}\n  {step} as layer\n}}\n")
    return g.nodes["layer"]


# ---------------------------------------------------------------- convolution


@pytest.mark.parametrize("size, kernel, stride, pad, dilation", [
    (32, 3, 1, 1, 1), (32, 3, 2, 1, 1), (224, 7, 2, 3, 1), (7, 3, 2, 0, 1), (33, 5, 3, 2, 1),
    (16, 3, 1, 2, 2), (15, 3, 2, 4, 4), (10, 1, 1, 0, 1), (5, 5, 1, 0, 1), (9, 2, 2, 0, 1),
])
def test_conv_out_is_the_floor_formula(size, kernel, stride, pad, dilation):
    expected = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    shape = out_shape("conv", {"out": 4, "kernel": kernel, "stride": stride, "pad": pad, "dilation": dilation},
                      (3, size, size))
    assert shape == (4, expected, expected)
    assert shape == torch_shape(nn.Conv2d(3, 4, kernel, stride, pad, dilation), (3, size, size))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), st.data())
def test_conv_matches_torch_for_random_sizes(rank, data):
    sizes = tuple(data.draw(st.integers(1, 40)) for _ in range(rank))
    kernel = tuple(data.draw(st.integers(1, 7)) for _ in range(rank))
    stride = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    dilation = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    pad = tuple(data.draw(st.integers(0, 4)) for _ in range(rank))
    groups = data.draw(st.sampled_from([1, 2, 4]))
    args = {"out": 8, "kernel": list(kernel), "stride": list(stride), "pad": list(pad), "dilation": list(dilation),
            "groups": groups}
    conv = getattr(nn, f"Conv{rank}d")(4, 8, kernel, stride, pad, dilation, groups)
    fits = all(s + 2 * p - d * (k - 1) - 1 >= 0 for s, k, p, d in zip(sizes, kernel, pad, dilation))
    if not fits:
        with pytest.raises(OpError, match="window does not fit"):
            out_shape("conv", args, (4, *sizes))
        return
    assert out_shape("conv", args, (4, *sizes)) == torch_shape(conv, (4, *sizes))


@pytest.mark.parametrize("kernel, dilation, size", [(3, 1, 32), (5, 1, 17), (7, 2, 20), (3, 3, 9), (1, 1, 5)])
def test_same_and_default_padding_keep_the_size_at_stride_1(kernel, dilation, size):
    for pad in ("same", "half"):
        shape = out_shape("conv", {"out": 2, "kernel": kernel, "dilation": dilation, "pad": pad}, (1, size, size))
        assert shape == (2, size, size)
    same = nn.Conv2d(1, 2, kernel, dilation=dilation, padding="same")
    assert torch_shape(same, (1, size, size)) == (2, size, size)


def test_valid_padding_and_tuples_per_axis():
    assert out_shape("conv", {"out": 2, "kernel": 3, "pad": "valid"}, (1, 10, 12)) == (2, 8, 10)
    shape = out_shape("conv", {"out": 2, "kernel": [1, 7], "stride": [1, 2], "pad": [0, 3]}, (1, 17, 17))
    assert shape == (2, 17, 9) == torch_shape(nn.Conv2d(1, 2, (1, 7), (1, 2), (0, 3)), (1, 17, 17))
    assert out_shape("conv", {"out": 2, "kernel": [3, 1, 1]}, (1, 8, 9, 10)) == (2, 8, 9, 10)


def test_conv_default_pad_with_even_kernel_matches_torch():
    # pad defaults to dilation*(k-1)//2 = 1 for k=4: 32 + 2 - 3 - 1 + 1 = 31
    assert out_shape("conv", {"out": 2, "kernel": 4}, (1, 32, 32)) == (2, 31, 31)


@pytest.mark.parametrize("cin, out, groups, message", [
    (6, 8, 4, "6 input channels are not divisible by groups=4"),
    (8, 6, 4, "6 output channels are not divisible by groups=4"),
    (8, 8, 0, "groups must be at least 1, found 0"),
])
def test_grouped_conv_divisibility(cin, out, groups, message):
    with pytest.raises(OpError) as info:
        out_shape("conv", {"out": out, "kernel": 1, "groups": groups}, (cin, 4, 4))
    assert info.value.message == message
    assert info.value.arg == "groups"


@pytest.mark.parametrize("step, cin, module", [
    ("conv(16, 3)", 3, nn.Conv2d(3, 16, 3)),
    ("conv(16, 3, bias = false)", 3, nn.Conv2d(3, 16, 3, bias=False)),
    ("conv(32, 3, groups = 4)", 8, nn.Conv2d(8, 32, 3, groups=4)),
    ("conv(32, [1, 5], groups = 8, bias = false)", 8, nn.Conv2d(8, 32, (1, 5), groups=8, bias=False)),
    ("dwconv(3, multiplier = 2)", 8, nn.Conv2d(8, 16, 3, groups=8)),
    ("deconv(4, 4, stride = 2, groups = 2)", 8, nn.ConvTranspose2d(8, 4, 4, 2, groups=2)),
    ("bn", 8, nn.BatchNorm2d(8)),
    ("bn(affine = false)", 8, nn.BatchNorm2d(8, affine=False)),
])
def test_parameter_counts_match_torch(step, cin, module):
    node = one_layer(step, [cin, 16, 16])
    assert node["params"] == sum(p.numel() for p in module.parameters())


def test_bn_running_statistics_are_buffers_not_parameters():
    bn = nn.BatchNorm2d(10)
    assert one_layer("bn", [10, 4, 4])["params"] == 20 == sum(p.numel() for p in bn.parameters())
    assert sum(b.numel() for b in bn.buffers()) == 21  # running mean, var and the batch counter


def test_fc_counts_and_flat_input():
    node = one_layer("fc(10)", [512])
    assert (node["shape"], node["params"], node["macs"]) == ((10,), 5130, 5120)
    node = one_layer("fc(10, bias = false)", [512])
    assert node["params"] == 5120 == sum(p.numel() for p in nn.Linear(512, 10, bias=False).parameters())


def test_conv_macs_count_one_multiply_add_per_weight_use():
    node = one_layer("conv(64, 3, stride = 2, groups = 2)", [32, 16, 16])
    assert node["macs"] == 64 * 8 * 8 * (32 // 2) * 9
    assert one_layer("relu", [32, 16, 16])["macs"] == 0
    assert one_layer("bn", [32, 16, 16])["macs"] == 0


# ---------------------------------------------------------------- pooling

POOL_CASES = [
    (7, 3, 2, 0), (7, 3, 2, 1), (8, 3, 2, 1), (112, 3, 2, 1), (113, 3, 2, 0), (6, 2, 2, 0), (5, 2, 2, 1),
    (13, 3, 2, 0), (14, 3, 3, 1), (10, 4, 3, 2), (1, 1, 1, 0), (4, 4, 4, 0), (9, 5, 4, 2), (55, 3, 2, 0),
    (27, 3, 2, 0), (3, 2, 2, 1), (5, 3, 3, 1), (11, 2, 3, 1),
]


@pytest.mark.parametrize("size, kernel, stride, pad", POOL_CASES)
@pytest.mark.parametrize("ceil", [False, True])
def test_maxpool_matches_torch(size, kernel, stride, pad, ceil):
    pool = nn.MaxPool2d(kernel, stride, pad, ceil_mode=ceil)
    args = {"kernel": kernel, "stride": stride, "pad": pad, "ceil": ceil}
    assert out_shape("maxpool", args, (3, size, size)) == torch_shape(pool, (3, size, size))
    assert out_shape("avgpool", args, (3, size, size)) == torch_shape(
        nn.AvgPool2d(kernel, stride, pad, ceil_mode=ceil), (3, size, size))


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 60), kernel=st.integers(1, 7), stride=st.integers(1, 5), pad=st.integers(0, 3),
       ceil=st.booleans())
def test_pooling_matches_torch_for_random_sizes(size, kernel, stride, pad, ceil):
    if 2 * pad > kernel:
        with pytest.raises(OpError, match=f"pad {pad} is more than half the kernel {kernel}"):
            out_shape("maxpool", {"kernel": kernel, "stride": stride, "pad": pad, "ceil": ceil}, (2, size, size))
        return
    args = {"kernel": kernel, "stride": stride, "pad": pad, "ceil": ceil}
    try:
        expected = torch_shape(nn.MaxPool1d(kernel, stride, pad, ceil_mode=ceil), (2, size))
    except RuntimeError:  # torch: "Output size is too small"
        with pytest.raises(OpError, match="window does not fit"):
            out_shape("maxpool", args, (2, size))
        return
    assert out_shape("maxpool", args, (2, size)) == expected


def test_pool_stride_defaults_to_kernel_and_3d_pooling():
    assert out_shape("maxpool", {"kernel": 2}, (4, 9, 9)) == (4, 4, 4)
    assert out_shape("maxpool", {"kernel": 2, "ceil": True}, (4, 9, 9)) == (4, 5, 5)
    assert out_shape("avgpool", {"kernel": [1, 2, 2]}, (4, 8, 9, 9)) == torch_shape(
        nn.AvgPool3d((1, 2, 2)), (4, 8, 9, 9))


def test_global_pooling_flatten_and_adaptive():
    assert out_shape("gap", {}, (64, 7, 7)) == (64,)
    assert out_shape("gmp", {}, (64, 5)) == (64,)
    assert out_shape("gap", {}, (8, 2, 3, 4)) == (8,)
    assert out_shape("flatten", {}, (64, 7, 7)) == (64 * 49,)
    assert out_shape("flatten", {}, (10,)) == (10,)
    assert out_shape("adaptive_avgpool", {"size": 6}, (256, 13, 13)) == (256, 6, 6)
    with pytest.raises(OpError, match=r"gap needs a \[C, L\] or \[C, H, W\] or \[C, D, H, W\] input, found \[64\]"):
        out_shape("gap", {}, (64,))


# ---------------------------------------------------------------- transposed convolution


@pytest.mark.parametrize("size, kernel, stride, pad, output_pad, dilation", [
    (8, 2, 2, 0, 0, 1), (8, 3, 2, 1, 1, 1), (7, 4, 2, 1, 0, 1), (5, 3, 1, 0, 0, 2), (4, 5, 3, 2, 2, 1),
    (1, 3, 1, 0, 0, 1), (16, 4, 4, 0, 3, 1),
])
def test_deconv_matches_torch(size, kernel, stride, pad, output_pad, dilation):
    args = {"out": 6, "kernel": kernel, "stride": stride, "pad": pad, "output_pad": output_pad,
            "dilation": dilation}
    module = nn.ConvTranspose2d(4, 6, kernel, stride, pad, output_pad, dilation=dilation)
    assert out_shape("deconv", args, (4, size, size)) == torch_shape(module, (4, size, size))


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 30), kernel=st.integers(1, 5), stride=st.integers(1, 4), pad=st.integers(0, 2),
       output_pad=st.integers(0, 3), dilation=st.integers(1, 3))
def test_deconv_matches_torch_for_random_sizes(size, kernel, stride, pad, output_pad, dilation):
    args = {"out": 2, "kernel": kernel, "stride": stride, "pad": pad, "output_pad": output_pad, "dilation": dilation}
    expected = (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1
    if output_pad >= max(stride, dilation):
        with pytest.raises(OpError, match=f"output_pad {output_pad} must be smaller than stride or dilation"):
            out_shape("deconv", args, (2, size))
    elif expected < 1:
        with pytest.raises(OpError, match="deconv output would be empty"):
            out_shape("deconv", args, (2, size))
    else:
        module = nn.ConvTranspose1d(2, 2, kernel, stride, pad, output_pad, dilation=dilation)
        assert out_shape("deconv", args, (2, size)) == torch_shape(module, (2, size)) == (2, expected)


# ---------------------------------------------------------------- merges and channel ops


def test_concat_adds_channels_and_needs_equal_spatial_sizes():
    assert out_shape("concat", {}, (8, 4, 4), (16, 4, 4), (3, 4, 4)) == (27, 4, 4)
    assert out_shape("concat", {}, (8,), (2,)) == (10,)
    with pytest.raises(OpError) as info:
        out_shape("concat", {}, (8, 32, 32), (8, 16, 16))
    assert info.value.message == "concat: input 2 is 16x16, input 1 is 32x32"
    with pytest.raises(OpError) as info:
        out_shape("concat", {}, (8, 4, 4), (8, 4, 4), (8, 4))
    assert info.value.message == "concat: input 3 is [8, 4], input 1 is [8, 4, 4]"


def test_add_and_gate_need_exactly_equal_shapes():
    assert out_shape("add", {}, (8, 4, 4), (8, 4, 4), (8, 4, 4)) == (8, 4, 4)
    with pytest.raises(OpError) as info:
        out_shape("add", {}, (8, 4, 4), (16, 4, 4))
    assert info.value.message == "add: input 2 is [16, 4, 4], input 1 is [8, 4, 4]"
    assert out_shape("gate", {}, (8, 4, 4), (8, 4, 4), (8, 4, 4)) == (8, 4, 4)
    with pytest.raises(OpError) as info:
        out_shape("gate", {}, (8, 4, 4), (8, 4, 4), (8, 4, 5))
    assert info.value.message == "gate: input 3 is [8, 4, 5], input 1 is [8, 4, 4]"


def test_mul_scales_channels_with_a_vector():
    assert out_shape("mul", {}, (8, 4, 4), (8,)) == (8, 4, 4)
    with pytest.raises(OpError, match=r"mul: input 2 is \[4\], input 1 is \[8, 4, 4\]"):
        out_shape("mul", {}, (8, 4, 4), (4,))


def test_shuffle_slice_and_pad_channels():
    assert out_shape("shuffle", {"groups": 3}, (12, 5, 5)) == (12, 5, 5)
    with pytest.raises(OpError) as info:
        out_shape("shuffle", {"groups": 5}, (12, 5, 5))
    assert info.value.message == "shuffle: 12 channels are not divisible by groups=5"
    assert out_shape("slice", {"start": 4, "stop": 8}, (12, 5, 5)) == (4, 5, 5)
    with pytest.raises(OpError, match="slice 8:13 is outside the 12 channels"):
        out_shape("slice", {"start": 8, "stop": 13}, (12, 5, 5))
    assert out_shape("pad_channels", {"out": 32}, (16, 8, 8)) == (32, 8, 8)
    assert out_shape("subsample", {"stride": 2}, (16, 7, 8)) == (16, 4, 4)


def test_crop_and_upsample():
    assert out_shape("crop", {"size": [5, 6]}, (3, 8, 8)) == (3, 5, 6)
    with pytest.raises(OpError, match=r"cannot crop \[3, 8, 8\] to a larger size \[9, 9\]"):
        out_shape("crop", {"size": 9}, (3, 8, 8))
    assert out_shape("upsample", {"scale": 3}, (3, 4, 5)) == (3, 12, 15)


def test_fc_needs_a_flat_input():
    with pytest.raises(OpError) as info:
        out_shape("fc", {"out": 10}, (16, 4, 4))
    assert info.value.message == "fc needs a flat [F] input, found [16, 4, 4]"
    assert info.value.help == "insert 'flatten' or a global pooling ('gap') before 'fc'"


def test_an_op_error_inside_a_network_points_at_the_argument():
    with pytest.raises(ArchError) as info:
        build_ir("network n() {\n  input x: [6, 8, 8]\n  conv(8, 3, groups = 4)\n}\n")
    span = info.value.first.span
    assert (span.line, span.col, span.end_col) == (3, 23, 24)
