"""Inference builds (archdsl/backend/inference.py): same function as the plain build, BN folded where
legal, no dropout, eval only. tests/test_inference_variants.py checks every variant (the rewrite for all,
numerics for networks that hold every kind of rewrite site); scripts/check_inference.py runs the
numerical check over every variant."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import archdsl
from archdsl import ir
from archdsl.backend import compile_module
from archdsl.backend.inference import fold_state_dict, inference_ir
from tests.reference.norms import randomise_norms

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"



def relative_difference(expected, got) -> float:
    """max |expected - got| / max |expected| (the worst over the outputs of a multi-output network)."""
    if isinstance(expected, dict):
        assert expected.keys() == got.keys()
        return max(relative_difference(expected[k], got[k]) for k in expected)
    return ((expected - got).abs().max() / expected.abs().max()).item()


def ops(g: ir.Graph) -> list[str]:
    return [d["op"] for _, d in g.nodes(data=True)]


def test_resnet50_folds_every_bn_and_densenet121_keeps_those_after_concatenations():
    h = inference_ir(archdsl.build_ir(SPECS / "resnet.arch", "resnet50_v15"))
    assert ops(h).count("bn") == 0
    assert sum(1 for _, d in h.nodes(data=True) if "folded" in d) == 53  # every conv's BN, shortcuts too
    assert all(d["args"]["bias"] for _, d in h.nodes(data=True) if d["op"] == "conv")
    h = inference_ir(archdsl.build_ir(SPECS / "densenet.arch", "densenet121"))
    # folded: norm0 and each of the 58 dense layers' norm2 (after its 1x1 conv); kept: each dense
    # layer's norm1 and each transition's BN (after a concatenation or a pool) and norm5
    assert sum(1 for _, d in h.nodes(data=True) if "folded" in d) == 59
    assert ops(h).count("bn") == 58 + 3 + 1
    plain = archdsl.build_ir(SPECS / "densenet.arch", "densenet121")
    folded_channels = sum(d["shape"][0] for _, d in h.nodes(data=True) if "folded" in d)
    assert ir.total_params(h) == ir.total_params(plain) - folded_channels  # per channel: gamma, beta -> one bias


def test_state_dict_keys_and_folded_values():
    g = archdsl.build_ir(SPECS / "resnet.arch", "resnet18")
    plain = compile_module(g, seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    state = plain.state_dict()
    folded = fold_state_dict(inference_ir(g), state)
    assert "bn1.weight" not in folded and "bn1.running_var" not in folded and "conv1.bias" in folded
    convs = [k[:-len(".weight")] for k in state if k.rsplit(".", 2)[-2].startswith("conv")]
    assert len(convs) == 20
    assert set(folded) == {k for k in state if not k.rsplit(".", 2)[-2].startswith("bn")} | {c + ".bias" for c in convs}
    scale = state["bn1.weight"] / torch.sqrt(state["bn1.running_var"] + 1e-5)
    assert torch.allclose(folded["conv1.weight"], state["conv1.weight"] * scale[:, None, None, None], rtol=1e-6)
    assert torch.allclose(folded["conv1.bias"], state["bn1.bias"] - state["bn1.running_mean"] * scale, rtol=1e-6)


def test_build_inference_same_seed_same_function_and_eval_only():
    g = archdsl.build_ir(SPECS / "resnet.arch", "resnet20")
    plain = archdsl.build(SPECS / "resnet.arch", "resnet20", seed=3).eval()
    fast = archdsl.build(SPECS / "resnet.arch", "resnet20", seed=3, inference=True)
    assert not fast.training
    x = torch.randn(4, *g.nodes[g.graph["inputs"][0]]["shape"])
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-5
    assert fast.eval() is fast
    refusal = r": it runs in eval mode only; train the plain build \(without inference=True / --inference\)"
    with pytest.raises(RuntimeError, match=r"^Resnet20Inference is an archdsl inference build \(BN folded into the layers "
                                           r"before it, dropout removed\)" + refusal):
        fast.train()
    assert type(fast).__name__ == "Resnet20Inference" and not fast.training
    # a part set to training (which the module's own train() cannot see), or the module itself through
    # nn.Module.train: the forward refuses, naming it, and runs again after eval()
    fast.layer1.train()
    with pytest.raises(RuntimeError, match=r", but its part 'layer1' was set to training mode \(call .eval\(\) on "
                                           r"it\)" + refusal):
        fast(x)
    fast.eval()
    conv = next(n for n, m in fast.named_modules() if n.startswith("layer2.") and isinstance(m, torch.nn.Conv2d))
    fast.get_submodule(conv).train()
    with pytest.raises(RuntimeError, match=rf"its part '{conv}' was set to training mode"):
        fast(x)
    fast.eval()
    torch.nn.Module.train(fast)
    with pytest.raises(RuntimeError, match=r"^Resnet20Inference is an archdsl inference build .*, but it was set to "
                                           r"training mode"):
        fast(x)
    with torch.inference_mode():
        assert relative_difference(plain(x), fast.eval()(x)) < 1e-5


def test_to_inference_after_loading_torchvision_weights():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    randomise_norms(reference, 1, spread=0.2)
    plain = archdsl.build(SPECS / "resnet.arch", "resnet18")
    archdsl.load_weights(plain, reference.state_dict())
    fast = archdsl.to_inference(plain)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert relative_difference(reference(x), fast(x)) < 1e-4
    with pytest.raises(TypeError, match="to_inference needs a plain module built by archdsl.build"):
        archdsl.to_inference(fast)


def test_compile_inference_writes_the_optimised_standalone_file_and_folded_weights(tmp_path):
    spec = SPECS / "resnet.arch"
    plain = archdsl.build(spec, "resnet20", seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    torch.save(plain.state_dict(), tmp_path / "ckpt.pt")
    out = tmp_path / "net.py"
    done = subprocess.run([sys.executable, "-m", "archdsl", "compile", str(spec), "-n", "resnet20", "--inference",
                           "--weights", str(tmp_path / "ckpt.pt"), "-o", str(out)],
                          check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'net.pt'}" in done.stdout
    source = out.read_text()
    assert "class Resnet20Inference(Resnet20):" in source and "nn.BatchNorm" not in source
    namespace: dict = {"__name__": "standalone"}
    exec(compile(source, str(out), "exec"), namespace)  # noqa: S102
    model = namespace["Resnet20Inference"]()
    model.load_state_dict(torch.load(tmp_path / "net.pt"))
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert relative_difference(plain(x), model(x)) < 1e-4
    # the standalone file is the optimised, eval-only module: channels-last input, training refused
    assert "x0.contiguous(memory_format=torch.channels_last)" in source and not model.training
    with pytest.raises(RuntimeError, match="^Resnet20Inference is an archdsl inference build"):
        model.train()
    yaml_out = tmp_path / "net.yaml"
    done = subprocess.run([sys.executable, "-m", "archdsl", "compile", str(spec), "-n", "resnet20", "--inference",
                           "--emit", "yaml", "-o", str(yaml_out), "--quiet"],
                          check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    h = ir.from_yaml(yaml_out.read_text())  # the IR of the inference build: BNs folded, ReLUs fused
    assert h.graph["inference"] and ops(h).count("bn") == 0 and ops(h).count("relu") == 9  # after the adds
    assert h.nodes["conv1"]["args"]["post_op"] == ["relu", [], ""] and "folded" in h.nodes["conv1"]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_inference_build_stays_on_the_plain_builds_device_and_dtype(device):
    spec = SPECS / "mobilenet_v2.arch"
    plain = archdsl.build(spec, "mobilenet_v2", seed=0, device=device, dtype=torch.float64, size=32, width=0.5).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = archdsl.to_inference(plain)
    assert {(p.device.type, p.dtype) for p in fast.parameters()} == {(device, torch.float64)}
    weight = next(m.weight for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(3, 3, 32, 32, device=device, dtype=torch.float64)
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-12
    # the inference build shares no memory with the plain build it was made from
    plain_pointers = {t.data_ptr() for t in plain.state_dict().values()}
    assert not plain_pointers & {t.data_ptr() for t in fast.state_dict().values()}
    built = archdsl.build(spec, "mobilenet_v2", seed=0, device=device, inference=True, size=32, width=0.5)
    assert {p.device.type for p in built.parameters()} == {device} and not built.training


def test_inference_convolutions_keep_packed_filters_and_stay_exact():
    """2-D convs of an inference build are PackedConv2d (state dict as nn.Conv2d's): on a CPU with
    oneDNN they keep their filters reordered between calls, and give nn.Conv2d's function on every
    path: packed (inference mode), a new input shape, changed weights, gradients to the input, TorchScript."""
    plain = archdsl.build(SPECS / "resnet.arch", "resnet20", seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = archdsl.to_inference(plain)
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 19 and {type(m).__name__ for m in convs} == {"PackedConv2d"}
    assert "class PackedConv2d(nn.Conv2d):" in fast.__archdsl_source__
    assert not any(p.requires_grad for p in fast.parameters())  # fixed weights: no autograd on the fast path
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = plain(x)
        assert relative_difference(expected, fast(x)) < 1e-5
        packed = torch.backends.mkldnn.is_available()
        assert ("_packed" in convs[0].__dict__) == packed
        assert relative_difference(plain(x[:1, :, :24]), fast(x[:1, :, :24])) < 1e-5  # packed again for the shape
    with torch.no_grad():
        for module in (plain, fast):
            module.conv1.weight.mul_(-0.5)  # BN is affine in its input: folding commutes with the scaling
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-5  # the changed filters are packed anew
    xg = x.clone().requires_grad_()
    fast(xg).sum().backward()  # through nn.Conv2d's path
    xp = x.clone().requires_grad_()
    plain(xp).sum().backward()
    assert relative_difference(xp.grad, xg.grad) < 1e-4
    copied = pickle.loads(pickle.dumps(fast))  # the packed filters are not pickled
    assert "_packed" not in copied.conv1.__dict__
    with torch.inference_mode():
        assert relative_difference(plain(x), copied(x)) < 1e-4


FUSING = """
network fusing() {
  input x: [3, 12, 12]
  conv(8, 3, pad = 1) as c1 -> bn as b1 -> relu
  conv(8, 3, pad = 1) as c2 -> relu6
  dwconv(3, pad = 1) as c3 -> leaky_relu(0.2)
  conv(8, 1) as c4 -> gelu(approximate = "tanh")
  conv(8, 1) as c5 -> hardswish
  conv(8, 1) as c6 -> silu
  conv(8, 1) as c7 -> hardsigmoid
  conv(8, 1) as c8 -> sigmoid
  conv(8, 1) as c9 -> tanh
  a = conv(8, 1) as c10 -> gelu
  b = a -> conv(8, 1) as shared
  r = b -> relu
  [r, b] -> add
  output y = conv(4, 1) as last -> relu
}
"""


def test_activations_fuse_into_the_convolution_before_them(tmp_path):
    """Each activation oneDNN has as a post-op runs inside the 2-D convolution it alone reads
    (PackedConv2d's `activation`), on the packed path and on nn.Conv2d's (float64 here) alike; a conv
    with two readers keeps its activation as a layer."""
    spec = tmp_path / "fusing.arch"
    spec.write_text(FUSING)
    plain = archdsl.build(spec, seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = archdsl.to_inference(plain)
    expected = {"c1": ("relu", []), "c2": ("hardtanh", [0.0, 6.0]), "c3": ("leaky_relu", [0.2]),
                "c4": ("gelu", []), "c5": ("hardswish", []), "c6": ("swish", []), "c7": ("hardsigmoid", []),
                "c8": ("sigmoid", []), "c9": ("tanh", []), "c10": ("gelu", []), "shared": ("none", []),
                "last": ("relu", [])}
    assert {name: (getattr(fast, name).activation, getattr(fast, name).scalars) for name in expected} == expected
    assert (fast.c4.algorithm, fast.c10.algorithm) == ("tanh", "none")
    source = fast.__archdsl_source__
    assert ("        self.c2 = PackedConv2d(8, 8, kernel_size=3, padding=1, activation='hardtanh',\n"
            "                               scalars=(0.0, 6.0))\n") in source  # a long call wraps under its first argument
    assert "self.c4 = PackedConv2d(8, 8, kernel_size=1, activation='gelu', algorithm='tanh')" in source
    assert "self.shared = PackedConv2d(8, 8, kernel_size=1)" in source
    assert "activation=leaky_relu, 0.2" in repr(fast.c3)
    h = type(fast).__archdsl_graph__
    assert ops(h).count("relu") == 1 and not {"relu6", "gelu", "silu", "tanh"} & set(ops(h))
    x = torch.randn(2, 3, 12, 12)
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-5
        assert relative_difference(plain.double()(x.double()), fast.double()(x.double())) < 1e-6  # nn.Conv2d path


def test_dense_blocks_keep_their_features_in_one_tensor(tmp_path):
    """An inference build's dense block writes each layer's output after the earlier ones in one tensor
    and hands each layer a view of it, so no layer concatenates; a layer whose first op could run in
    place (a ReLU right after the concatenation) leaves the features intact."""
    spec = tmp_path / "dense.arch"
    spec.write_text("""
block bare(k) { relu -> conv(k, 3, pad = 1) as conv }
network two_dense() {
  input x: [3, 10, 10]
  conv(6, 3, pad = 1) as stem
  dense(3) as first { bare(4) }
  bn as norm -> relu
  dense(2) as second { bn as norm -> relu -> conv(5, 1) as conv }
  output y = gap -> fc(3) as fc
}
""")
    plain = archdsl.build(spec, seed=0).eval()
    randomise_norms(plain, 1, spread=0.2)
    fast = archdsl.to_inference(plain)
    source = fast.__archdsl_source__
    assert "torch.cat" not in source.split("def in_chunks")[0]  # (in_chunks concatenates a batch's chunks)
    assert source.count("features = dense_features(x, 18)") == source.count("features = dense_features(x, 28)") == 1
    assert type(fast.second.layer1.norm).__name__ == "AffineBatchNorm2d"
    seen = []
    fast.first.layer3.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    x = torch.randn(2, 3, 10, 10)
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-5
        block = fast.first(fast.stem(x.contiguous(memory_format=torch.channels_last)))
        reference = plain.first(plain.stem(x))
    assert seen[0] == (2, 14, 10, 10) and block.is_contiguous(memory_format=torch.channels_last)
    assert relative_difference(reference, block) < 1e-5


def test_a_cpu_batch_runs_a_few_samples_at_a_time(tmp_path):
    """On a CPU an inference build runs a batch in chunks whose largest tensor stays within 16 MiB (here
    16 x 512 x 512 floats per sample: one sample per chunk), the outputs concatenated: the same function
    as one pass; a batch within one chunk, and torch.export, run whole."""
    spec = tmp_path / "wide.arch"
    spec.write_text("""
network wide() {
  input x: [3, 512, 512]
  conv(16, 3, pad = 1) as conv -> relu
  maxpool(4) as pool
  output y = gap -> fc(5) as fc
}
""")
    plain = archdsl.build(spec, seed=0).eval()
    fast = archdsl.to_inference(plain)
    assert "return in_chunks(super().forward, (x0.contiguous(memory_format=torch.channels_last),), " \
           "largest=4194304)" in fast.__archdsl_source__
    calls = []
    fast.pool.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    x = torch.randn(3, 3, 512, 512)
    with torch.inference_mode():
        assert relative_difference(plain(x), fast(x)) < 1e-5
        assert calls == [1, 1, 1]
        fast(torch.randn(1, 3, 512, 512))
    assert calls[-1] == 1 and len(calls) == 4
    exported = torch.export.export(fast, (x,))  # traced whole: one call of each layer
    assert sum(n.target == torch.ops.aten.max_pool2d.default for n in exported.graph.nodes) == 1
