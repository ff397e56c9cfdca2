"""torch.nn layers as spec ops: the one mapping both PyTorch front ends (fx in trace.py, torch.export in
export.py) use for a leaf module's call."""

from __future__ import annotations

import re

from torch import nn

from archdsl.importer.model import ImportFailure


def pair(v):
    """An int for a square kernel/stride/pad, else a list."""
    if isinstance(v, (tuple, list)):
        return v[0] if all(x == v[0] for x in v) else list(v)
    return v


def _conv(m: nn.Conv2d, where: str) -> tuple[str, list]:
    if m.padding_mode != "zeros":
        raise ImportFailure(where, f"op 'Conv with padding_mode={m.padding_mode!r}' has no archdsl equivalent")
    if isinstance(m.padding, str):
        raise ImportFailure(where, f"op 'Conv with padding={m.padding!r}' has no archdsl equivalent",
                            help="give the padding as numbers")
    k, s, p, d = pair(m.kernel_size), pair(m.stride), pair(m.padding), pair(m.dilation)
    args = [(None, m.out_channels), (None, k)]
    if s != 1:
        args.append(("stride", s))
    half = [dd * (kk - 1) // 2 for kk, dd in zip(m.kernel_size, m.dilation)]
    if list(m.padding) != half:
        args.append(("pad", p))
    if d != 1:
        args.append(("dilation", d))
    if m.groups != 1:
        args.append(("groups", m.groups))
    if m.bias is None:
        args.append(("bias", False))
    return "conv", args


def _pool(name: str, m, where: str) -> tuple[str, list]:
    k = pair(m.kernel_size)
    s = pair(m.stride) if m.stride is not None else k
    args = [(None, k)]
    if s != k:
        args.append(("stride", s))
    if pair(m.padding) != 0:
        args.append(("pad", pair(m.padding)))
    if getattr(m, "dilation", 1) not in (1, (1, 1)):
        raise ImportFailure(where, "op 'MaxPool with dilation' has no archdsl equivalent")
    if m.ceil_mode:
        args.append(("ceil", True))
    if name == "avgpool" and not m.count_include_pad:
        args.append(("count_pad", False))
    if name == "avgpool" and m.divisor_override is not None:
        raise ImportFailure(where, "op 'AvgPool with divisor_override' has no archdsl equivalent")
    return name, args


def _bn(m, where: str) -> tuple[str, list]:
    args = []
    if m.eps != 1e-5:
        args.append(("eps", m.eps))
    if m.momentum != 0.1:
        args.append(("momentum", m.momentum))
    if not m.affine:
        args.append(("affine", False))
    if not m.track_running_stats:
        raise ImportFailure(where, "op 'BatchNorm without running statistics' has no archdsl equivalent")
    return "bn", args


def module_step(m: nn.Module, where: str, in_rank: int) -> tuple[str, list]:
    """The spec op for a leaf module (in_rank: the input's rank without the batch axis)."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return _conv(m, where)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return _bn(m, where)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        return _pool("maxpool", m, where)
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        return _pool("avgpool", m, where)
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool3d)):
        return "adaptive_avgpool", [(None, pair(m.output_size))]
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool3d)):
        return "adaptive_maxpool", [(None, pair(m.output_size))]
    if isinstance(m, nn.Linear):
        args = [(None, m.out_features)]
        if m.bias is None:
            args.append(("bias", False))
        if in_rank != 1:
            args.append(("axis", -1))
        return "fc", args
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ImportFailure(where, f"op 'Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})' has no "
                                       "archdsl equivalent", help="flatten keeps only the batch axis")
        return "flatten", []
    if isinstance(m, nn.Dropout):
        return "dropout", [] if m.p == 0.5 else [(None, m.p)]
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu", [] if m.negative_slope == 0.01 else [(None, m.negative_slope)]
    if isinstance(m, nn.GELU):
        return "gelu", [] if m.approximate == "none" else [("approximate", m.approximate)]
    if isinstance(m, nn.GroupNorm):
        return "groupnorm", [(None, m.num_groups)] + ([("eps", m.eps)] if m.eps != 1e-5 else [])
    if isinstance(m, nn.LocalResponseNorm):
        return "lrn", [("size", m.size), ("alpha", m.alpha / m.size), ("beta", m.beta), ("k", m.k)]
    name = type(m).__name__
    if name in ("ChannelLayerNorm", "LayerNorm2d") or isinstance(m, nn.LayerNorm):
        if len(m.normalized_shape) != 1:
            raise ImportFailure(where, "op 'LayerNorm' over several axes has no archdsl equivalent")
        axis = 0 if name in ("ChannelLayerNorm", "LayerNorm2d") else -1
        return "layernorm", [("axis", axis)] + ([("eps", m.eps)] if m.eps != 1e-5 else []) + (
            [] if m.elementwise_affine else [("affine", False)])
    if name in ("DropPath", "StochasticDepth"):
        if getattr(m, "mode", "row") != "row":
            raise ImportFailure(where, "op 'StochasticDepth(mode=\"batch\")' has no archdsl equivalent")
        return "drop_path", [(None, m.p)]
    if name == "LayerScale":
        return "layer_scale", []
    simple = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
              nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Identity: "identity"}
    for cls, name in simple.items():
        if type(m) is cls:
            return name, []
    raise ImportFailure(where, f"op '{type(m).__name__}' has no archdsl equivalent",
                        help="replace the module by ops the language has (docs/language.md, op reference)")


LEAF_CLASSES = {"ChannelLayerNorm", "LayerNorm2d", "DropPath", "StochasticDepth", "LayerScale"}  # archdsl's, torchvision's


def is_leaf(m: nn.Module) -> bool:
    """A module traced as one op: a torch.nn layer (not a container) or one of LEAF_CLASSES."""
    if type(m).__name__ in LEAF_CLASSES:
        return True
    return (m.__module__.startswith("torch.nn") or m.__module__.startswith("torch.ao.nn")) and not isinstance(
        m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))


_GENERATED = re.compile(r"Block `(\w+)`\.")  # the docstring of a class archdsl generates for a block


def class_name(m: nn.Module) -> str:
    """The module's class; for classes archdsl generated, the block definition they come from (one
    definition gives a class per structure: `Bneck`, `BneckWithAct1AndAct2`), as one class."""
    found = _GENERATED.fullmatch((type(m).__doc__ or "").strip())
    return "".join(w.capitalize() for w in found[1].split("_")) if found else type(m).__name__


def region_kind(m: nn.Module) -> str:
    """"group" for an nn.Sequential, "sequential" for a subclass without a forward of its own (a block when
    all its instances have one structure, else a group: optional.py), "block" for any other module class."""
    if type(m) is nn.Sequential:
        return "group"
    return "sequential" if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward else "block"
