"""Generated modules are shaped like hand-written ones: a class per block, each scope called by its parent.

PyTorch's tools that work on submodules (forward hooks, feature extraction, activation checkpointing,
regional compilation; FSDP2 in tests/test_distributed.py) see every block and stage. The per-block
generator builds the same network as the flat generator it replaced (tests/reference/legacy_codegen.py):
same state_dict keys, order and seeded values, outputs, gradients and BN statistics.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from archdsl import build, build_ir, ir
from archdsl.backend import compile_source, load_class
from archdsl.backend.codegen import class_name, class_origins, model_class_name
from tests.reference import legacy_codegen
from tests.reference.codegen_equivalence import compare

SPECS = Path(__file__).resolve().parents[1] / "specs"
RESNET = SPECS / "resnet.arch"


@pytest.fixture(scope="module")
def resnet50():
    return build(RESNET, "resnet50", seed=0).eval()


def test_hooks_on_a_stage_and_a_block_fire_with_the_spec_shapes(resnet50):
    g = build_ir(RESNET, "resnet50")
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen[name] = ([tuple(a.shape) for a in args], tuple(output.shape))
        return hook

    handles = [resnet50.layer3.register_forward_hook(record("layer3")),
               resnet50.layer3.block0.register_forward_hook(record("layer3.block0"))]
    with torch.no_grad():
        resnet50(torch.randn(1, 3, 224, 224))
    for handle in handles:
        handle.remove()
    assert seen["layer3"] == ([(1, 512, 28, 28)], (1, 1024, 14, 14))
    assert seen["layer3.block0"] == seen["layer3"]
    assert (1, *g.nodes["layer3.block0.relu3"]["shape"]) == (1, 1024, 14, 14)  # the IR says the same
    assert (1, *g.nodes["layer2.block3.relu3"]["shape"]) == (1, 512, 28, 28)


def test_feature_extractor_returns_a_stage_output(resnet50):
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = create_feature_extractor(resnet50, {"layer3": "feat"})
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features = extractor(x)["feat"]
        expected = resnet50.layer3(resnet50.layer2(resnet50.layer1(resnet50.maxpool(
            torch.relu(resnet50.bn1(resnet50.conv1(x)))))))
    assert features.shape == (2, 1024, 14, 14)
    torch.testing.assert_close(features, expected)


def test_print_shows_the_block_hierarchy(resnet50):
    text = str(resnet50)
    assert "(layer3): Sequential(\n    (block0): Bottleneck(\n" in text
    assert "      (shortcut): Shortcut(\n        (conv1): Conv2d(512, 1024, kernel_size=(1, 1), stride=(2, 2)" in text
    assert "    (block1): Bottleneck(\n      (conv1): Conv2d(1024, 256, kernel_size=(1, 1)" in text


def _gradients(model, x):
    model.zero_grad()
    model(x).logsumexp(1).mean().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_activation_checkpointing_per_stage_and_per_block_class_gives_the_same_gradients():
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    spec = {"blocks": [1, 2, 2, 1], "bottleneck": True, "size": 32, "classes": 10}
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = _gradients(build(RESNET, "resnet", seed=0, **spec).train(), x)
    staged = build(RESNET, "resnet", seed=0, **spec).train()
    staged.layer2 = checkpoint_wrapper(staged.layer2)
    got = _gradients(staged, x)
    assert {n.replace("._checkpoint_wrapped_module", "") for n in got} == set(expected)
    for name, grad in got.items():
        torch.testing.assert_close(grad, expected[name.replace("._checkpoint_wrapped_module", "")], msg=name)
    blocks = build(RESNET, "resnet", seed=0, **spec).train()
    block_class = type(blocks.layer3.block1)
    apply_activation_checkpointing(blocks, checkpoint_wrapper_fn=checkpoint_wrapper,
                                   check_fn=lambda m: isinstance(m, block_class))
    wrapped = [n for n, m in blocks.named_modules() if type(m).__name__ == "CheckpointWrapper"]
    assert wrapped == ["layer1.block0", "layer2.block0", "layer2.block1", "layer3.block0", "layer3.block1",
                       "layer4.block0"]  # every bottleneck, with or without its projection
    for name, grad in _gradients(blocks, x).items():
        torch.testing.assert_close(grad, expected[name.replace("._checkpoint_wrapped_module", "")], msg=name)


def test_regional_compilation_compiles_a_block_class_once_for_all_its_instances():
    from torch._dynamo.utils import counters

    model = build(RESNET, "resnet", seed=0, blocks=[1, 1, 4, 1], bottleneck=True, size=32, classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    torch._dynamo.reset()
    counters.clear()
    repeated = [m for m in model.layer3 if type(m) is type(model.layer3.block1)]
    assert len(repeated) == 4  # one class, with and without the shortcut projection
    for block in repeated:
        block.compile(backend="eager")
    with torch.no_grad():
        got = model(x)
    # one graph for the block with a projection, one compiled once and reused by the other three
    assert counters["stats"]["unique_graphs"] == 2
    torch.testing.assert_close(got, expected)
    torch._dynamo.reset()


def _classes(source: str) -> list[str]:
    return re.findall(r"^class (\w+)\(", source, re.MULTILINE)


@pytest.mark.parametrize("file, network, limit", [("resnet.arch", "resnet152", 250),
                                                  ("densenet.arch", "densenet121", 250)])
def test_generated_files_are_short_with_each_block_class_written_once(file, network, limit):
    source = compile_source(build_ir(SPECS / file, network))
    assert len(source.splitlines()) <= limit
    classes = _classes(source)
    assert len(classes) == len(set(classes))
    bodies = [block.split("\n", 1)[1] for block in re.split(r"^class ", source, flags=re.MULTILINE)[1:]]
    assert len(bodies) == len(set(bodies))  # no two classes with the same code


def test_resnet152_classes():
    source = compile_source(build_ir(RESNET, "resnet152"))
    assert _classes(source) == ["Shortcut", "Bottleneck", "Resnet152"]
    assert ("    def __init__(self, in_channels: int, c: int, out_channels: int, stride: int = 1,\n"
            "                 with_shortcut: bool = False) -> None:\n") in source
    assert "        self.shortcut = Shortcut(in_channels, out_channels, stride) if with_shortcut else None\n" in source
    assert "        shortcut = self.shortcut(x) if self.shortcut is not None else x; del x\n" in source
    assert ("        self.layer3 = nn.Sequential()\n"
            '        self.layer3.add_module("block0", Bottleneck(512, 256, 1024, stride=2, with_shortcut=True))\n'
            "        for i in range(35):\n"
            '            self.layer3.add_module(f"block{i + 1}", Bottleneck(1024, 256, 1024))\n') in source


@pytest.mark.parametrize("file, network, params, cls, flag, child, lean, full", [
    ("resnet.arch", "resnet", {"blocks": [2, 2], "size": 32}, "Basic", "with_shortcut", "shortcut",
     "layer1.block1", "layer2.block0"),
    ("resnext.arch", "resnext", {"blocks": [1, 2, 1, 1], "cardinality": 4, "width": 2, "classes": 10},
     "Aggregated", "with_shortcut", "shortcut", "layer2.block1", "layer2.block0"),
    ("dpn.arch", "dpn68", {}, "DualPath", "project", "c1x1_w", "conv2.block2", "conv2.block1"),
])
def test_an_optional_child_is_a_constructor_argument(file, network, params, cls, flag, child, lean, full):
    """Instances of one block that differ only by a child some of them lack are one class: the child is
    made where the constructor asks for it and called only where it exists; the keys stay the IR's."""
    g = build_ir(SPECS / file, network, **params)
    source = compile_source(g)
    assert _classes(source).count(cls) == 1 and f"class {cls}2(" not in source and "With" not in source
    assert re.search(rf"        self\.{child} = \w+\(.*\) if {flag} else None\n", source)
    assert f"        {child} = self.{child}(x) if self.{child} is not None else x" in source
    with torch.device("meta"):
        model = load_class(source, model_class_name(g))()
        old = load_class(legacy_codegen.generate(g), class_name(g.graph["network"]))()
    assert list(model.state_dict()) == list(old.state_dict())
    lean_block, full_block = model.get_submodule(lean), model.get_submodule(full)
    assert type(lean_block).__name__ == type(full_block).__name__ == cls
    assert getattr(lean_block, child) is None and isinstance(getattr(full_block, child), nn.Module)
    assert f"{full}.{child}." in "".join(model.state_dict())
    assert f"{lean}.{child}." not in "".join(model.state_dict())


def test_optional_children_script_export_and_match_the_flat_generator():
    g = build_ir(RESNET, "resnet", blocks=[1, 2], bottleneck=True, size=32, classes=10)
    model = build(RESNET, "resnet", seed=0, blocks=[1, 2], bottleneck=True, size=32, classes=10).eval()
    assert type(model.layer2.block0) is type(model.layer2.block1) and model.layer2.block1.shortcut is None
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)
    assert compare(g) == []


MOBILENET_V2 = ("mobilenet_v2.arch", "mobilenet_v2_net", {"width": 0.35, "size": 32, "classes": 10})
REGNET_Y = ("regnet.arch", "regnet", {"depth": 5, "w_0": 16, "w_a": 12.0, "w_m": 2.0, "group_width": 8, "se": 0.25,
                                      "size": 32, "classes": 10})
EFFICIENTNET = ("efficientnet.arch", "efficientnet", {"width": 0.5, "depth": 0.5, "size": 32, "classes": 10})


def _generated(tmp_path, text: str, network: str):
    """A spec file `network`.arch holding `text`, its IR and its generated source."""
    spec = tmp_path / f"{network}.arch"
    spec.write_text(text, encoding="utf-8")
    g = build_ir(spec, network)
    return spec, g, compile_source(g)


def _scripts_alike(model: nn.Module, shape: tuple) -> None:
    """TorchScript compiles the model and computes what it computes, on a random input of `shape`."""
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def _meta_models(g, source):
    with torch.device("meta"):
        return (load_class(source, model_class_name(g))(),
                load_class(legacy_codegen.generate(g), class_name(g.graph["network"]))())


def test_inverted_residual_is_one_class_with_its_expansion_and_residual_as_arguments():
    """MobileNetV2's blocks lack the expansion conv where the ratio is 1 and the residual add where the
    shape changes: one class, as torchvision's InvertedResidual, the missing layers handed over unchanged."""
    file, network, params = MOBILENET_V2
    g = build_ir(SPECS / file, network, **params)
    source = compile_source(g)
    assert _classes(source) == ["InvertedResidual", model_class_name(g)]
    assert "with_expand_conv: bool = False, use_residual: bool = False) -> None:\n" in source
    assert "        self.use_residual = use_residual\n" in source
    assert re.search(r"        self\.expand_conv = nn\.Conv2d\(in_channels, \w+, kernel_size=1, bias=False\) "
                     r"if with_expand_conv else None\n", source)
    assert ("        if self.expand_conv is not None:\n"
            "            expand_conv = self.expand_conv(x)\n"
            "            expand_bn = self.expand_bn(expand_conv); del expand_conv\n"
            "            relu61 = F.relu6(expand_bn, inplace=True); del expand_bn\n"
            "        else:\n"
            "            relu61 = x\n"
            "        dw = self.dw(relu61); del relu61\n") in source
    assert "        add1 = project_bn.add_(x) if self.use_residual else project_bn; del project_bn, x\n" in source
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    first, second, third = model.stage1.block1, model.stage2.block1, model.stage2.block2
    assert first.expand_conv is None and first.expand_bn is None and not first.use_residual
    assert isinstance(second.expand_conv, nn.Conv2d) and not second.use_residual
    assert isinstance(third.expand_conv, nn.Conv2d) and third.use_residual
    assert not any(k.startswith("stage1.block1.expand") for k in model.state_dict())


@pytest.mark.parametrize("case, cls, piece, flag", [
    (REGNET_Y, "RegnetBlock", ["proj", "proj_bn"], "with_proj"),
    (EFFICIENTNET, "Mbconv", ["expand_conv", "expand_bn"], "with_expand_conv"),
    (EFFICIENTNET, "Mbconv", ["drop_path1"], "use_residual"),
])
def test_optional_layers_are_constructor_arguments(case, cls, piece, flag):
    """Layers present in some instances of a block and missing (their input handed on) in others: one
    class that makes them where asked and runs them where they exist; the state_dict keys stay the IR's."""
    file, network, params = case
    g = build_ir(SPECS / file, network, **params)
    source = compile_source(g)
    assert _classes(source).count(cls) == 1 and f"class {cls}2(" not in source and "With" not in source
    for attr in piece:
        assert re.search(rf"        self\.{attr} = \w+(\.\w+)?\(.*\) if {flag} else None\n", source), attr
    assert f"        if self.{piece[0]} is not None:\n" in source
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    blocks = [m for m in model.modules() if type(m).__name__ == cls]
    assert {getattr(b, piece[0]) is None for b in blocks} == {True, False}
    for block in blocks:
        assert len({getattr(block, attr) is None for attr in piece}) == 1


def test_xception_first_relu_is_the_block_argument():
    g = build_ir(SPECS / "xception.arch", "xception_net", size=71, middle_blocks=2, classes=10)
    source = compile_source(g)
    assert _classes(source).count("Down") == 1 and "DownWith" not in source
    assert "first_relu: bool = False) -> None:\n" in source
    assert "        relu1 = torch.relu(x) if self.first_relu else x\n" in source
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    assert not model.entry.block1.first_relu and model.entry.block2.first_relu and model.exit.block1.first_relu


OPTIONAL_LAYERS_SPEC = """
block unit(c, pre = false, post = false, skip = false, twice = false) {
  input x
  h = x
  if pre { h = h -> conv(c, 1, bias = false) as pre_conv -> bn as pre_bn -> relu }
  y = h -> conv(c, 3) as body -> bn as body_bn
  if twice { y = [y, h] -> add as twice_add }
  if skip { y = [x, y] -> add }
  if post { y = y -> relu as post_relu -> conv(c, 1) as post_conv }
  y -> relu
}

network pieces(classes = 10) {
  input image: [3, 12, 12]
  conv(8, 3) as stem
  unit(8) as u1
  unit(8, pre = true, skip = true) as u2
  unit(8, post = true) as u3
  unit(8, pre = true, twice = true, skip = true, post = true) as u4
  unit(8, twice = true) as u5
  output logits = gap -> fc(classes)
}
"""


def test_optional_layers_are_flags_named_after_the_block_arguments(tmp_path):
    """Four independent optional pieces, each present in its own set of instances: one class, one flag
    per piece named after the block argument that says the same; unnamed layers (the ReLUs) are lined
    up by their place (the block's last ReLU is every instance's last); an add hands on its other addend."""
    _, g, source = _generated(tmp_path, OPTIONAL_LAYERS_SPEC, "pieces")
    assert _classes(source) == ["Unit", "Pieces"]
    assert ("    def __init__(self, pre: bool = False, post: bool = False, twice: bool = False,\n"
            "                 skip: bool = False) -> None:\n") in source
    for call in ("Unit()", "Unit(pre=True, skip=True)", "Unit(post=True)",
                 "Unit(pre=True, post=True, twice=True, skip=True)", "Unit(twice=True)"):
        assert f" = {call}\n" in source
    assert "        twice_add = body_bn.add_(relu1) if self.twice else body_bn; del body_bn, relu1\n" in source
    assert "        add1 = x + twice_add if self.skip else twice_add; del x, twice_add\n" in source
    assert ("        if self.post_conv is not None:\n"
            "            post_relu = torch.relu(add1); del add1\n"
            "            post_conv = self.post_conv(post_relu); del post_relu\n"
            "        else:\n"
            "            post_conv = add1\n"
            "        relu2 = torch.relu(post_conv); del post_conv\n") in source
    assert compare(g) == []


def test_optional_layers_script_and_export():
    file, network, params = MOBILENET_V2
    model = build(SPECS / file, network, seed=0, **params).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


@pytest.mark.parametrize("file, network, classes", [
    ("mobilenet_v3.arch", "mobilenet_v3_large", ["Act", "SqueezeExcitation", "Bneck", "MobilenetV3Large"]),
    ("mobilenet_v3.arch", "mobilenet_v3_small", ["Act", "SqueezeExcitation", "Bneck", "MobilenetV3Small"]),
    ("shufflenet.arch", "shufflenet_g3", ["ShuffleUnit", "ShufflenetG3"]),
    ("shufflenet_v2.arch", "shufflenet_v2_x1_0", ["ShufflenetV2Unit", "ShufflenetV2X10"]),
    ("googlenet.arch", "googlenet", ["Unit", "Inception", "Googlenet"]),
    ("inception_v3.arch", "inception_v3", ["Unit", "InceptionA", "ReductionA", "InceptionB", "ReductionB", "Branch",
                                           "InceptionC", "InceptionV3"]),
    ("cliquenet.arch", "cliquenet_cifar", ["CliqueLayer", "CliqueBlock", "Head", "Transition", "CliquenetCifar"]),
])
def test_one_class_per_block_definition(file, network, classes):
    """Instances of one definition that took different branches of a spec `if`, lack optional parts or
    return different outputs are one class; a branch of module calls is an nn.Sequential."""
    g = build_ir(SPECS / file, network)
    assert _classes(compile_source(g)) == classes
    assert {key: names for key, names in class_origins(g).items() if len(names) > 1} == {}


def test_branches_of_an_if_on_the_stride_are_one_class_like_torchvision():
    """ShuffleNet v2's unit splits its input at stride 1 and runs a branch of convolutions at stride 2
    (torchvision's InvertedResidual): one class, the branch made where the stride asks for it."""
    g = build_ir(SPECS / "shufflenet_v2.arch", "shufflenet_v2_x1_0")
    source = compile_source(g)
    assert "    def __init__(self, stride: int, in_channels: int, out_channels: int, out: int) -> None:\n" in source
    assert re.search(r"        self\.branch1_dw = nn\.Conv2d\(.*\) if stride == 2 else None\n", source)
    assert ("        if self.branch1_dw is not None:\n"
            "            branch1_dw = self.branch1_dw(x)\n") in source
    assert ("            split_right = x\n"
            "        else:\n"
            "            branch1_relu = x[:, 0:self.in_channels]\n"
            "            split_right = x[:, self.in_channels:self.out]; del x\n"
            "        branch2_pw1 = self.branch2_pw1(split_right); del split_right\n") in source
    assert "            self.stage2.add_module(f\"unit{i + 2}\", ShufflenetV2Unit(1, 58, 58, 116))\n" in source
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    assert model.stage2.unit1.branch1_dw is not None and model.stage2.unit2.branch1_dw is None


def test_mobilenet_v3_block_is_one_class_with_its_options_as_arguments():
    g = build_ir(SPECS / "mobilenet_v3.arch", "mobilenet_v3_large")
    source = compile_source(g)
    assert ("        hardswish1 = F.hardswish(x) if self.kind == 'HS' else torch.relu(x); del x\n") in source
    assert "        self.act1 = Act(nl) if with_expand else None\n" in source
    assert "        self.act2 = Act(nl)\n" in source
    assert "        self.se = SqueezeExcitation(expanded, squeeze) if se else None\n" in source
    assert "        self.block1 = Bneck(16, 3, 1, 1, 'RE', 16, 16, use_residual=True)\n" in source
    assert ("        self.block4 = Bneck(72, 5, 2, 2, 'RE', 40, 24, with_expand=True, se=True, squeeze=24)\n"
            in source)
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    # the depthwise conv's activation is `act2` in every block, `act1` (the expansion's) only where it expands
    assert model.block1.act1 is None and type(model.block1.act2).__name__ == "Act"
    assert model.block1.act2.kind == "RE" and model.block15.act2.kind == "HS"


BRANCHES_SPEC = """
block lane(c, down = false, act = "relu") {
  input x
  if down {
    y = x -> maxpool(2, stride = 2) as pool -> conv(c, 1) as widen
  } else {
    y = x -> conv(c, 3) as body -> relu
  }
  y = y -> bn as norm
  if act == "relu" { relu } else { sigmoid }
}

block gate(c) {
  input x
  if x.channels == c { y = x -> tanh as squash } else { y = x -> conv(c, 1, bias = false) as match -> sigmoid }
  [x, y] -> concat as both
}

network lanes(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3) as stem
  lane(8) as l1
  lane(16, down = true, act = "sigmoid") as l2
  lane(16) as l3
  lane(32, down = true) as l4
  gate(32) as g1
  gate(16) as g2
  output logits = gap -> fc(classes)
}
"""


def test_the_branches_of_an_if_on_a_block_argument_are_one_class(tmp_path):
    """Instances that took different branches of a spec `if` are one class: the branch's layers are made
    where the argument asks for them (the others None: the state_dict keys stay the IR's), the forward
    tests that they exist (TorchScript then compiles only the branch each instance has), a branch of
    layers without modules is chosen by the argument itself; where no argument tells the branches apart
    the class takes a flag of its own."""
    spec, g, source = _generated(tmp_path, BRANCHES_SPEC, "lanes")
    assert _classes(source) == ["Lane", "Gate", "Lanes"]
    assert "    def __init__(self, down: bool, c: int, act: str, in_channels: int) -> None:\n" in source
    assert "        self.body = nn.Conv2d(c, c, kernel_size=3, padding=1) if not down else None\n" in source
    assert "        self.pool = nn.MaxPool2d(kernel_size=2) if down else None\n" in source
    assert "        self.widen = nn.Conv2d(in_channels, c, kernel_size=1) if down else None\n" in source
    assert ("        if self.pool is not None:\n"
            "            pool = self.pool(x); del x\n"
            "            widen = self.widen(pool); del pool\n"
            "        else:\n"
            "            body = self.body(x); del x\n"
            "            widen = torch.relu_(body); del body\n"
            "        norm = self.norm(widen); del widen\n"
            "        relu2 = torch.relu_(norm) if self.act == 'relu' else torch.sigmoid(norm); del norm\n") in source
    for call in ("Lane(False, 8, 'relu', 8)", "Lane(True, 16, 'sigmoid', 8)", "Lane(True, 32, 'relu', 16)",
                 "Gate()", "Gate(use_match=True)"):
        assert f" = {call}\n" in source
    # two gates whose widths merely differ: their width does not say which branch, a flag does
    assert "        self.match = nn.Conv2d(64, 16, kernel_size=1, bias=False) if use_match else None\n" in source
    assert ("        if self.match is not None:\n"
            "            match = self.match(x)\n"
            "            sigmoid1 = torch.sigmoid(match); del match\n"
            "        else:\n"
            "            sigmoid1 = torch.tanh(x)\n"
            "        both = torch.cat([x, sigmoid1], 1); del x, sigmoid1\n") in source
    assert compare(g) == []
    model = build(spec, "lanes", seed=0).eval()
    assert model.l1.pool is None and model.l2.body is None and "l2.widen.weight" in model.state_dict()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


STRESS_SPEC = """
block act2(kind) {
  if kind == "a" { relu } else { sigmoid -> relu }
}

block proj(c, stride) {
  input x
  conv(c, 1, stride = stride, bias = false) as conv -> bn as bn
}

block unit(c, stride = 1, mode = 0) {
  input x
  if stride > 1 {
    s = x -> proj(c, stride) as down
  } else {
    s = x -> relu as pre
  }
  y = x -> conv(c, 3, stride = stride, bias = false) as body -> bn as body_bn
  if mode == 2 {
    z = [s, y] -> add as join -> act2("b") as post
  } else {
    z = [y, s] -> concat as join -> conv(c, 1) as fuse -> act2("a") as post
  }
  [z, z] -> add as twice
}

network stress(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3) as stem
  unit(8) as u1
  unit(8, stride = 2, mode = 2) as u2
  unit(8, stride = 1, mode = 2) as u3
  unit(16, stride = 3) as u4
  unit(16, stride = 1) as u5
  output logits = gap -> fc(classes)
}
"""


def test_two_ifs_with_a_child_block_in_a_branch_are_one_class(tmp_path):
    """Two spec `if`s in one block, one choosing between a child block and a layer (by a flag of its own:
    `stride > 1` takes strides 2 and 3), the other between an add and a concat-conv (by `mode`), instances
    taking every combination; a child's defaulted flag passed by some instances only."""
    spec, g, source = _generated(tmp_path, STRESS_SPEC, "stress")
    assert _classes(source) == ["Act2", "Proj", "Unit", "Stress"]
    assert "        self.down = Proj(c, stride) if use_down else None\n" in source
    assert "        self.fuse = nn.Conv2d(fuse_in_channels, c, kernel_size=1) if mode == 0 else None\n" in source
    assert ("        down = self.down(x) if self.down is not None else torch.relu(x)\n"
            "        body = self.body(x); del x\n"
            "        body_bn = self.body_bn(body); del body\n"
            "        if self.fuse is not None:\n"
            "            join = torch.cat([body_bn, down], 1); del body_bn, down\n"
            "            fuse = self.fuse(join); del join\n"
            "        else:\n"
            "            fuse = down + body_bn; del down, body_bn\n"
            "        post = self.post(fuse); del fuse\n") in source
    assert "        self.u2 = Unit(8, 8, 2, True, use_down=True, stride=2)\n" in source
    assert compare(g) == []
    model = build(spec, "stress", seed=0).eval()
    _scripts_alike(model, (2, 3, 16, 16))


ELIF_SPEC = """
block mix(c, kind = "a") {
  input x
  if kind == "a" {
    y = x -> conv(c, 1) as a_conv
  } elif kind == "b" {
    y = x -> maxpool(3, stride = 1, pad = 1) as b_pool -> conv(c, 1) as b_conv
  } elif kind == "c" {
    y = x -> relu -> sigmoid
  } else {
    y = x -> tanh
  }
  [x, y] -> concat as out
}

network three(classes = 10) {
  input image: [3, 8, 8]
  conv(8, 3) as stem
  mix(8) as m1
  mix(8, kind = "b") as m2
  mix(8, kind = "c") as m3
  mix(8, kind = "d") as m4
  mix(8, kind = "a") as m5
  mix(8, kind = "c") as m6
  output logits = gap -> fc(classes)
}
"""


def test_if_elif_else_is_one_class_and_scripts(tmp_path):
    """Four branches: those with modules tested by a module existing, the others by the argument; no
    `del` inside a branch TorchScript compiles both sides of (it cannot), the input deleted after."""
    spec, g, source = _generated(tmp_path, ELIF_SPEC, "three")
    assert _classes(source) == ["Mix", "Three"]
    assert ("        if self.a_conv is not None:\n"
            "            a_conv = self.a_conv(x)\n"
            "        elif self.b_pool is not None:\n"
            "            b_pool = self.b_pool(x)\n"
            "            a_conv = self.b_conv(b_pool)\n"
            "        elif self.kind == 'c':\n"
            "            relu1 = torch.relu(x)\n"
            "            a_conv = torch.sigmoid(relu1)\n"
            "        else:\n"
            "            a_conv = torch.tanh(x)\n"
            "        out = torch.cat([x, a_conv], 1); del x, a_conv\n") in source
    assert "        self.m4 = Mix('d', 48)\n" in source
    assert compare(g) == []
    model = build(spec, "three", seed=0).eval()
    _scripts_alike(model, (2, 3, 8, 8))


def test_alternatives_script_and_export():
    """A branch tested by its layer existing (ShuffleNet v2), a clique block's unread output left out."""
    for file, network, params, export in [("shufflenet_v2.arch", "shufflenet_v2", {"size": 32, "classes": 10}, True),
                                          ("cliquenet.arch", "cliquenet_cifar", {"k": 6, "T": 6}, False)]:
        model = build(SPECS / file, network, seed=0, **params).eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            expected = model(x)
            torch.testing.assert_close(torch.jit.script(model)(x), expected)
            if export:
                torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


def test_clique_blocks_share_a_class_when_the_last_one_has_no_transition():
    g = build_ir(SPECS / "cliquenet.arch", "cliquenet_cifar")
    source = compile_source(g)
    assert "        transit = torch.cat(xs, 1) if self.with_transit else x.new_empty(0)\n" in source
    assert "        self.block2 = CliqueBlock(144, with_transit=True)\n" in source
    assert "        self.block3 = CliqueBlock(144)\n" in source
    assert "        _, block3_feature = self.block3(transition2); del transition2\n" in source


def test_inception_branches_are_sequentials_with_the_spec_names():
    g = build_ir(SPECS / "googlenet.arch", "googlenet")
    source = compile_source(g)
    assert ("        self.b3x3 = nn.Sequential()\n"
            '        self.b3x3.add_module("reduce", Unit(in_channels, b3x3_reduce_c, 1, 1, 0))\n'
            '        self.b3x3.add_module("conv", Unit(b3x3_reduce_c, b3x3_conv_c, 3, 1, 1))\n') in source
    assert ("        self.pool = nn.Sequential()\n"
            '        self.pool.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=1, padding=1))\n') in source
    model, old = _meta_models(g, source)
    assert list(model.state_dict()) == list(old.state_dict())
    assert isinstance(model.inception_3a.b3x3, nn.Sequential)
    assert "inception_3a.b3x3.reduce.conv.weight" in model.state_dict()


CONCAT_SPEC = """
network mixer(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3) as stem
  concat as mixed {
    branch a { conv(4, 1) as conv }
    branch b { maxpool(3, stride = 1, pad = 1) as pool -> conv(4, 1) as proj }
    branch c { conv(4, 3) as conv1 -> scale(0.5) -> conv(4, 3) as conv2 }
  }
  concat as mixed2 {
    branch p { avgpool(3, stride = 1, pad = 1) as pool }
    branch q { conv(6, 1) as conv }
  }
  output logits = gap -> fc(classes)
}
"""


def test_concat_constructs_of_different_branches_share_one_class(tmp_path):
    """Named `concat` constructs whose branches each read its input are one `Concat` (an nn.ModuleDict of
    the branches, filled by the parent), whatever their branches; branches of module calls are
    nn.Sequentials, others (`scale` has no nn module) a class of their own; names and state_dict keys
    stay the IR's."""
    spec, g, source = _generated(tmp_path, CONCAT_SPEC, "mixer")
    assert _classes(source) == ["Branch", "Concat", "Mixer"]
    assert ("        self.mixed = Concat()\n"
            "        self.mixed.a = nn.Sequential()\n"
            '        self.mixed.a.add_module("conv", nn.Conv2d(8, 4, kernel_size=1))\n'
            "        self.mixed.b = nn.Sequential()\n"
            '        self.mixed.b.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=1, padding=1))\n'
            '        self.mixed.b.add_module("proj", nn.Conv2d(8, 4, kernel_size=1))\n'
            '        self.mixed.add_module("c", Branch())\n'
            "        self.mixed2 = Concat()\n") in source
    assert "        mixed2 = self.mixed2(mixed); del mixed\n" in source
    assert compare(g) == []
    model = build(spec, "mixer", seed=0).eval()
    assert list(model.mixed) == ["a", "b", "c"] and "mixed.c.conv2.weight" in model.state_dict()
    _scripts_alike(model, (2, 3, 16, 16))


ACTIVATED_BRANCHES = """
network towers(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3) as stem
  concat as mixed {
    branch a { relu -> conv(4, 1) as conv -> leaky_relu(0.2) -> gelu(approximate = "tanh") }
    branch b { conv(4, 3) as conv -> relu -> maxpool(3, stride = 1, pad = 1) as pool -> hardswish }
  }
  output logits = gap -> fc(classes)
}
"""


def test_branches_with_activations_are_sequentials_of_nn_modules(tmp_path):
    """A branch of module calls and activations is an nn.Sequential, each activation the nn module that
    computes it (as torchvision's AlexNet writes `nn.ReLU(inplace=True)`), in place exactly where the
    functional form would be: never on the branch's input, which the other branches read too."""
    spec, g, source = _generated(tmp_path, ACTIVATED_BRANCHES, "towers")
    assert _classes(source) == ["Concat", "Towers"]
    assert ("        self.mixed.a = nn.Sequential()\n"
            '        self.mixed.a.add_module("relu1", nn.ReLU())\n'
            '        self.mixed.a.add_module("conv", nn.Conv2d(8, 4, kernel_size=1))\n'
            '        self.mixed.a.add_module("leaky_relu1", nn.LeakyReLU(0.2))\n'
            "        self.mixed.a.add_module(\"gelu1\", nn.GELU(approximate='tanh'))\n"
            "        self.mixed.b = nn.Sequential()\n"
            '        self.mixed.b.add_module("conv", nn.Conv2d(8, 4, kernel_size=3, padding=1))\n'
            '        self.mixed.b.add_module("relu1", nn.ReLU(inplace=True))\n'
            '        self.mixed.b.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=1, padding=1))\n'
            '        self.mixed.b.add_module("hardswish1", nn.Hardswish(inplace=True))\n') in source
    assert compare(g) == []
    model = build(spec, "towers", seed=0).eval()
    assert [name for name, _ in model.mixed.a.named_children()] == ["relu1", "conv", "leaky_relu1", "gelu1"]
    assert list(model.state_dict())[:4] == ["stem.weight", "stem.bias", "mixed.a.conv.weight", "mixed.a.conv.bias"]
    _scripts_alike(model, (2, 3, 16, 16))


def test_densenet_block_loops_over_its_layers():
    source = compile_source(build_ir(SPECS / "densenet.arch", "densenet121"))
    assert (
        "class DenseBlock(nn.ModuleDict):\n"
        '    """A `dense` construct."""\n\n'
        "    def __init__(self, layers: int, in_channels: int) -> None:\n"
        "        super().__init__()\n"
        "        for i in range(layers):\n"
        '            self.add_module(f"layer{i + 1}", DenseBlockLayer(in_channels + 32 * i))\n\n'
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        features = [x]\n"
        "        for _, layer in self.items():\n"
        "            features.append(layer(features))\n"
        "        return torch.cat(features, 1)\n") in source
    assert "        self.denseblock3 = DenseBlock(24, 256)\n" in source


# The same network as the flat generator: a representative set (every construct kind, memory-efficient
# builds, hoisted forward literals such as option A's zero-padding), small inputs.
EQUIVALENCE = [
    ("resnet.arch", "resnet_cifar", {"n": 1}, False),
    ("resnet.arch", "resnet", {"blocks": [1, 2, 1, 1], "bottleneck": True, "stride_on_3x3": True, "size": 32,
                               "classes": 10}, False),
    ("densenet.arch", "densenet_cifar", {"depth": 22, "bc": True, "dropout": 0.2}, False),
    ("densenet.arch", "densenet_cifar", {"depth": 22, "bc": True, "dropout": 0.2}, True),
    ("cliquenet.arch", "cliquenet_cifar", {"k": 6, "T": 6, "A": True, "C": True}, False),
    ("cliquenet.arch", "cliquenet_cifar", {"k": 6, "T": 12, "B": True}, True),
    ("highway.arch", "highway_cnn", {"widths": [8, 16], "layers": [2, 2]}, False),
    ("highway.arch", "highway_mlp", {"depth": 4, "width": 12}, False),
    ("resnext.arch", "resnext", {"blocks": [1, 1, 1, 1], "cardinality": 4, "width": 2, "split": True,
                                 "classes": 10}, True),
    ("lenet.arch", "lenet", {}, False),
    ("mobilenet_v3.arch", "mobilenet_v3", {"arch": "small", "size": 32, "classes": 10}, False),
    (*MOBILENET_V2, False),  # optional layers (pieces.py): an expansion, a residual add
    (*REGNET_Y, False),  # a projection of plain layers, beside an SE child
    (*EFFICIENTNET, False),  # an expansion, drop-path and add
]


@pytest.mark.parametrize("file, network, params, efficient", EQUIVALENCE,
                         ids=[f"{n}{'-me' if e else ''}-{i}" for i, (_, n, _, e) in enumerate(EQUIVALENCE)])
def test_same_network_as_the_flat_generator(file, network, params, efficient):
    g = build_ir(SPECS / file, network, **params)
    assert compare(g, memory_efficient=efficient) == []


@pytest.mark.parametrize("file, network", [("googlenet.arch", "googlenet_aux"), ("dpn.arch", "dpn68"),
                                           ("unet.arch", "unet_572"), ("shufflenet.arch", "shufflenet_g3"),
                                           ("inception_v4.arch", "inception_resnet_v2"), ("fcn.arch", "fcn8s"),
                                           ("xception.arch", "xception"), ("alexnet.arch", "alexnet")])
def test_same_parameter_names_order_and_shapes_as_the_flat_generator(file, network):
    """Large networks on the meta device: no numbers, only the module tree's parameters and buffers."""
    g = build_ir(SPECS / file, network)
    with torch.device("meta"):
        old = load_class(legacy_codegen.generate(g), class_name(g.graph["network"]))()
        new = load_class(compile_source(g), model_class_name(g))()
    a, b = old.state_dict(), new.state_dict()
    assert list(a) == list(b)
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    assert isinstance(new, nn.Module)


def test_backend_page_examples_run(monkeypatch):
    """The 'Working with PyTorch's tools' examples of docs/backend.md (the torchrun script excepted)."""
    page = (SPECS.parent / "docs" / "backend.md").read_text(encoding="utf-8")
    section = page.split("## Working with PyTorch's tools", 1)[1].split("\n## ", 1)[0]
    code = [b for b in re.findall(r"```python\n(.*?)```", section, re.DOTALL) if "torchrun" not in b]
    assert len(code) == 4
    monkeypatch.chdir(SPECS.parent)
    namespace: dict = {}
    torch._dynamo.reset()
    for block in code:
        exec(compile(block, "backend.md", "exec"), namespace)  # noqa: S102  (the page's own examples)
    torch._dynamo.reset()


CONTAINER_MEMBERS_SPEC = """
block side_pool(c, pool = "max", proj = false) {
  concat {
    branch main { conv(c, 3) as conv -> relu }
    branch side {
      if pool == "max" { maxpool(3, stride = 1, pad = 1) as pool } else { avgpool(3, stride = 1, pad = 1) as pool }
      if proj { conv(c, 1) as proj }
    }
  }
  bn as bn
}

block fork(c, wide = false) {
  concat {
    if wide { branch w { conv(c, 1) as conv -> relu } }
    branch n { conv(c, 3) as conv }
  }
}

network varied(classes = 10) {
  input image: [3, 16, 16]
  conv(8, 3) as stem
  side_pool(8) as a
  side_pool(8, pool = "avg", proj = true) as b
  side_pool(4, proj = true) as c
  fork(8, wide = true) as d
  fork(4) as e
  output logits = gap -> fc(classes)
}
"""


def test_sequential_members_some_instances_lack_or_take_another_module(tmp_path):
    """Instances of one block whose nn.Sequential branches differ share a class: a member some lack is
    added only where asked, a layer that is max pooling in some and average pooling in others is chosen
    by the block argument that tells them apart (else by a flag of its own); a block that only
    concatenates its branches, one of them optional, subclasses `Concat`."""
    spec, g, source = _generated(tmp_path, CONTAINER_MEMBERS_SPEC, "varied")
    assert _classes(source) == ["SidePool", "Concat", "Fork", "Varied"]
    assert ("        self.side = nn.Sequential()\n"
            "        if pool == 'max':\n"
            '            self.side.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=1, padding=1))\n'
            "        else:\n"
            '            self.side.add_module("pool", nn.AvgPool2d(kernel_size=3, stride=1, padding=1))\n'
            "        if proj:\n"
            '            self.side.add_module("proj", nn.Conv2d(16, c, kernel_size=1))\n'
            "        self.bn = nn.BatchNorm2d(out_channels)\n") in source
    assert ("class Fork(Concat):\n"
            '    """Block `fork`."""\n\n'
            "    def __init__(self, in_channels: int, c: int, wide: bool = False) -> None:\n"
            "        super().__init__()\n"
            "        if wide:\n"
            "            self.w = nn.Sequential()\n") in source
    assert ("        self.a = SidePool(8, 8, 'max', 16)\n"
            "        self.b = SidePool(16, 8, 'avg', 16, proj=True)\n"
            "        self.c = SidePool(16, 4, 'max', 8, proj=True)\n"
            "        self.d = Fork(8, 8, wide=True)\n"
            "        self.e = Fork(16, 4)\n") in source
    assert compare(g) == []
    model = build(spec, "varied", seed=0).eval()
    assert list(model.d) == ["w", "n"] and list(model.e) == ["n"]
    assert [type(m).__name__ for m in (model.a.side.pool, model.b.side.pool)] == ["MaxPool2d", "AvgPool2d"]
    _scripts_alike(model, (2, 3, 16, 16))


def test_bn_inception_is_one_inception_class():
    """BN-Inception's blocks lack the 1x1 branch (3c, 4e), the pool projection, or pool by max instead of
    average: one `Inception(Concat)` makes each, bit for bit the flat generator's network."""
    g = build_ir(SPECS / "bn_inception.arch", "bn_inception")
    source = compile_source(g)
    assert _classes(source) == ["Unit", "Concat", "Inception", "BnInception"]
    assert class_origins(g)[("block", "inception")] == ["Inception"]
    assert "        self.inception_3c = Inception(320, 128, 160, 2, 64, 96, padding=0)\n" in source
    assert ("        self.inception_3a = Inception(192, 64, 64, 1, 64, 96, with_b1x1=True, use_avgpool=True,\n"
            "                                      with_proj=True, b1x1_conv_c=64, pool_proj_c=32)\n") in source
    assert max(len(line) for line in source.splitlines()) <= 120
    model, reference = _meta_models(g, source)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == \
        [(k, v.shape) for k, v in reference.state_dict().items()]
    assert "inception_3c.b1x1.conv.conv.weight" not in model.state_dict()
    assert isinstance(model.inception_5b.pool.pool, nn.MaxPool2d) and model.inception_5b.pool.pool.stride == 1


CLIQUE_BODY_SPEC = """
network bodies() {
  input x: [16, 8, 8]
  output y = x -> clique(3, 4, rounds = 2) as b { bn -> relu -> conv(4, 3, bias = false) }
}
"""


def test_a_scope_reused_whole_elsewhere_is_the_original_module(tmp_path):
    """Stage II of a clique with a body runs each layer's body again with its weights: the stage-II scope
    holds the stage-I body under its own name, registered once (state_dict and parameters count it once),
    its class makes no layer of its own."""
    spec, g, source = _generated(tmp_path, CLIQUE_BODY_SPEC, "bodies")
    assert '        self.b.x1_r1.__dict__["body"] = self.b.x1.body  # reuse: the same module\n' in source
    assert "is not None" not in source  # no layer is made optional by being shared
    model = build(spec, "bodies", seed=0)
    assert model.b.x1_r2.body is model.b.x1.body and model.b.x3_r1.body is model.b.x3.body
    assert not any(".x1_r1.body." in k for k in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == ir.total_params(g)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    model(x).sum().backward()
    assert model.b.x1.body.conv1.weight.grad is not None


REUSED_IN_A_GROUP = """
block enc(c) { conv(c, 3) as conv -> relu }
network twice() {
  input x: [3, 8, 8]
  group g {
    enc(3) as e1
    reuse(e1) as e2
  }
  output y = gap -> fc(2)
}
"""


def test_a_block_reused_whole_in_a_group_is_called_again(tmp_path):
    """A group whose second block reuses the first whole calls the first again; the group is then a class
    (an nn.Sequential cannot call one member twice), and `g.e2` leads to `g.e1`."""
    spec, _, source = _generated(tmp_path, REUSED_IN_A_GROUP, "twice")
    assert _classes(source) == ["Enc", "G", "Twice"]
    assert "        e2 = self.e1(e1); del e1\n" in source
    model = build(spec, "twice", seed=0).eval()
    assert model.g.e2 is model.g.e1 and [n for n, _ in model.g.named_children()] == ["e1"]
    x = torch.randn(2, 3, 8, 8)
    expected = model.fc1(model.g.e1(model.g.e1(x)).mean((2, 3)))
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
