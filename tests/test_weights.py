"""archdsl.load_weights: torchvision's models (random weights, random BN statistics) loaded into
spec-built modules give the same eval outputs; checkpoints by name; every mismatch is an error
that names both sides and loads nothing. scripts/check_weights.py runs every torchvision-backed
variant at full size."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import archdsl
from archdsl.weights import TensorMatch, WeightsError, load_weights
from tests.reference.norms import randomise_norms

SPECS = Path(__file__).resolve().parents[1] / "specs"



def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


# spec file, variant, overrides, torchvision builder, its arguments, input size
TORCHVISION = [
    ("resnet.arch", "resnet18", {"size": 64}, "resnet18", {}, 64),
    ("resnet.arch", "resnet50_v15", {"size": 64}, "resnet50", {}, 64),
    ("densenet.arch", "densenet121", {}, "densenet121", {}, 224),
    ("vgg.arch", "vgg16_bn", {}, "vgg16_bn", {}, 224),
    ("googlenet.arch", "googlenet_torchvision_aux", {"size": 128}, "googlenet",
     {"aux_logits": True, "init_weights": False}, 128),
    ("inception_v3.arch", "inception_v3", {"size": 139}, "inception_v3",
     {"aux_logits": False, "init_weights": False}, 139),
]


@pytest.mark.parametrize("file, variant, overrides, builder, kwargs, size", TORCHVISION,
                         ids=[row[3] for row in TORCHVISION])
def test_torchvision_weights_give_torchvision_outputs(file, variant, overrides, builder, kwargs, size):
    torch.manual_seed(0)
    reference = randomise_norms(getattr(torchvision.models, builder)(weights=None, **kwargs)).eval()
    model = archdsl.build(SPECS / file, variant, **overrides).eval()
    report = load_weights(model, reference)
    assert report.complete and not report.notes
    assert len([m for m in report.matches if m.how in ("name", "structure")]) == len(model.state_dict())
    assert {m.source for m in report.matches} == set(reference.state_dict())
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    got = got["logits"] if isinstance(got, dict) else got
    assert relative_difference(expected, got) < 1e-5


def test_an_auxiliary_head_that_runs_earlier_in_the_source_is_matched_to_its_own_weights():
    reference = randomise_norms(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)).eval()
    model = archdsl.build(SPECS / "googlenet.arch", "googlenet_torchvision_aux", size=128)
    report = load_weights(model, reference)
    pairs = {m.target: (m.source, m.how) for m in report.matches}
    assert pairs["aux1.conv.conv.weight"] == ("aux1.conv.conv.weight", "name")
    assert pairs["inception_4b.b1x1.conv.conv.weight"] == ("inception4b.branch1.conv.weight", "structure")
    assert report.order == {"target": "torch.fx trace", "source": "torch.fx trace"}
    for key in ("aux2.fc2.weight", "classifier.weight"):
        assert torch.equal(model.state_dict()[key], reference.state_dict()[pairs[key][0]])


def test_a_checkpoint_file_by_name_and_the_report(tmp_path):
    source = randomise_norms(archdsl.build(SPECS / "cliquenet.arch", "cliquenet_cifar", k=12, T=6, seed=1)).eval()
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = archdsl.build(SPECS / "cliquenet.arch", "cliquenet_cifar", k=12, T=6, seed=2).eval()
    report = load_weights(model, tmp_path / "w.pth")
    assert report.count("name") == len(model.state_dict()) and report.count("structure") == 0
    assert report.source == f"'{tmp_path / 'w.pth'}'"
    assert report.summary() == f"loaded weights from '{tmp_path / 'w.pth'}': {len(model.state_dict())} by name, 0 by structure"
    assert re.search(r"^block1\.x1\.weight +->  block1\.x1\.weight  \(name\)$", str(report), re.MULTILINE)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), model(x))


def test_a_training_checkpoint_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    source = randomise_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))).eval()
    torch.save({"epoch": 3, "state_dict": source.state_dict()}, tmp_path / "ckpt.pt")
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    for path in ("ckpt.pt", "w.safetensors"):
        target = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        report = load_weights(target, str(tmp_path / path))
        assert torch.equal(target[1].running_var, source[1].running_var)
        assert report.count("name") == 7  # with the BN's num_batches_tracked
    assert report.notes == []
    assert load_weights(target, tmp_path / "ckpt.pt").notes == ["weights read from the checkpoint's 'state_dict' entry"]


def test_missing_safetensors_is_reported_before_reading(tmp_path, monkeypatch):
    (tmp_path / "w.safetensors").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(WeightsError, match=r"reading \.safetensors files needs the safetensors package") as info:
        load_weights(nn.Linear(2, 2), tmp_path / "w.safetensors")
    assert "pip install 'archdsl[safetensors]'" in info.value.render()


def test_bad_sources(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file '.*nothing\.pt' does not exist"):
        load_weights(nn.Linear(2, 2), tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=r"cannot read '.*junk\.pt' as a PyTorch checkpoint"):
        load_weights(nn.Linear(2, 2), tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="cannot load weights from a int"):
        load_weights(nn.Linear(2, 2), 3)
    with pytest.raises(WeightsError, match="weights are loaded into an nn.Module, not a dict"):
        load_weights({}, nn.Linear(2, 2))


def test_split_form_against_grouped_conv_is_refused_and_nothing_is_loaded():
    reference = torchvision.models.resnext50_32x4d(weights=None)
    model = archdsl.build(SPECS / "resnext.arch", "resnext50_32x4d_split")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        load_weights(model, reference)
    message = info.value.render()
    assert message.startswith("error: the weights do not fit this network: 512 target tensors unmatched, first "
                              "layer1.block0.groups1.group1.conv.weight [4, 4, 3, 3]; ")
    assert "16 source tensors unmatched, first layer1.0.conv2.weight [128, 4, 3, 3]; " in message
    assert "(the last match before the first unmatched target layer: 'layer1.block0.bn1' <- 'layer1.0.bn1')" in message
    assert "a grouped conv against split-apply-concat convs, as in ResNeXt's split form" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_not_strict_loads_what_matches_and_lists_the_rest():
    source = randomise_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 4))).eval()
    target = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 5))
    with pytest.raises(WeightsError, match=r"2 target tensors unmatched, first 2\.weight \[5, 8\], 2\.bias \[5\]; "
                                           r"2 source tensors unmatched, first 2\.weight \[4, 8\], 2\.bias \[4\]"):
        load_weights(target, source)
    report = load_weights(target, source, strict=False)
    assert report.unmatched_target == ["2.weight", "2.bias"] and report.unmatched_source == ["2.weight", "2.bias"]
    assert torch.equal(target[0].weight, source[0].weight)


def test_a_layer_of_another_kind_never_receives_weights_of_the_same_shape():
    source = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GroupNorm(2, 8))
    target = nn.Sequential(nn.Conv2d(3, 8, 1), nn.LayerNorm(8))
    target.add_module("renamed", target[1])  # no name matches: structure decides
    del target._modules["1"]
    with pytest.raises(WeightsError, match=r"first renamed\.weight \[8\], renamed\.bias \[8\]; 2 source tensors "
                                           r"unmatched, first 1\.weight \[8\], 1\.bias \[8\]"):
        load_weights(target, source)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(4, 4, bias=False)
        self.decode = nn.Linear(4, 4, bias=False)
        self.decode.weight = self.encode.weight
        self.again = self.encode  # one module under two names

    def forward(self, x):
        return self.decode(self.again(self.encode(x)))


def test_shared_weights_are_matched_once_and_reported():
    source, target = Tied(), Tied()
    report = load_weights(target, source.state_dict())
    assert torch.equal(target.decode.weight, source.encode.weight)
    assert [(m.target, m.source, m.how) for m in report.matches] == [
        ("encode.weight", "encode.weight", "name"), ("decode.weight", "encode.weight", "shared"),
        ("again.weight", "encode.weight", "shared")]


def test_num_batches_tracked_is_kept_where_the_source_has_none():
    source = nn.Sequential(nn.BatchNorm2d(4))
    state = {k: v for k, v in randomise_norms(source).eval().state_dict().items() if not k.endswith("num_batches_tracked")}
    target = nn.Sequential(nn.BatchNorm2d(4))
    report = load_weights(target, state)
    assert ("0.num_batches_tracked", None, "kept") in [(m.target, m.source, m.how) for m in report.matches]
    assert torch.equal(target[0].running_mean, source[0].running_mean)


def test_a_stride_difference_is_noted():
    reference = torchvision.models.resnet50(weights=None)  # ResNet v1.5: the stride on the 3x3 conv
    model = archdsl.build(SPECS / "resnet.arch", "resnet50", size=64)  # the paper's: on the first 1x1
    notes = load_weights(model, reference).notes
    assert notes[0] == "layer2.block0.conv1 has stride (2, 2), its source layer2.0.conv1 has (1, 1)"


def test_load_weights_is_exported_lazily():
    assert archdsl.load_weights is load_weights
    assert "load_weights" in archdsl.__all__


class Untraceable(nn.Module):
    """Layers registered in another order than they run, and a forward torch.fx cannot trace."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.norm(self.conv1(x)))
        if x.sum() > -1e9:  # data-dependent control flow
            x = torch.relu(self.conv2(x))
        return self.head(x.mean((2, 3)))


SMALL = """\
network small(classes = 4) {
  input image: [3, 8, 8]
  conv(4, 3) as first -> bn as norm -> relu
  conv(6, 3) as second -> relu
  output logits = gap -> fc(classes) as fc
}
"""


def test_an_untraceable_source_is_ordered_by_a_forward_pass_at_the_spec_input():
    source = randomise_norms(Untraceable()).eval()
    model = archdsl.build(SMALL).eval()
    report = load_weights(model, source)
    assert report.order == {"target": "torch.fx trace", "source": "forward hooks"}
    assert [(m.target, m.source) for m in report.matches if m.target.endswith("weight")] == [
        ("first.weight", "conv1.weight"), ("norm.weight", "norm.weight"), ("second.weight", "conv2.weight"),
        ("fc.weight", "head.weight")]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert relative_difference(source(x), model(x)) < 1e-6
    target = Untraceable()  # not built by archdsl, untraceable: registration order, and said so
    report = load_weights(target, source)
    assert report.order["source"] == "registration order (torch.fx could not trace Untraceable: TraceError)"
    assert report.count("name") == 11  # all of them, num_batches_tracked included


def test_a_linear_layer_and_a_1x1_conv_share_weights_but_a_1x7_kernel_is_not_a_7x1():
    source = nn.Sequential(nn.Linear(8, 4))
    target = nn.Sequential(nn.Conv2d(8, 4, 1))
    report = load_weights(target, source)
    assert report.matches[0] == TensorMatch("0.weight", "0.weight", "name", ((4, 8), (4, 8, 1, 1)))
    assert "0.weight  ->  0.weight  (name, reshaped [4, 8] -> [4, 8, 1, 1])" in str(report)
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(target(x[:, :, None, None])[:, :, 0, 0], source(x))
    with pytest.raises(WeightsError, match=r"first 0\.weight \[4, 4, 7, 1\], 0\.bias \[4\]; 2 source"):
        load_weights(nn.Sequential(nn.Conv2d(4, 4, (7, 1))), nn.Sequential(nn.Conv2d(4, 4, (1, 7))))
