"""The PyTorch backend: generated modules equal hand-written references, and behave as plain nn.Modules.

Every numerical test copies the reference's weights (and BN statistics) into the compiled module by
state-dict order, checking shapes position by position, then compares outputs to 1e-5. A wrong
mapping or a wrong op gives different outputs, so these tests cannot pass by accident.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from archdsl import ArchError, build, build_ir
from archdsl.backend import compile_module, compile_source
from archdsl.backend.runtime import CliqueLayer
from benchmarks.measure import peak_training_memory
from tests.reference import nets
from tests.reference.norms import randomise_norms

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])



def transfer(reference: nn.Module, compiled: nn.Module) -> None:
    """Copy the reference's state into the compiled module, entry by entry in registration order."""
    src = [(k, v) for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in compiled.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert [tuple(v.shape) for _, v in src] == [tuple(v.shape) for _, v in dst], (
        [k for k, _ in src], [k for k, _ in dst])
    compiled.load_state_dict({k: s for (k, _), (_, s) in zip(dst, src)}, strict=False)


def assert_same(reference: nn.Module, spec: str, shape: tuple, network: str | None = None, **params) -> nn.Module:
    compiled = build(spec, network, seed=0, **params)
    randomise_norms(reference)
    transfer(reference, compiled)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    for train in (False, True):
        reference.train(train)
        compiled.train(train)
        expected, got = reference(x), compiled(x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    return compiled


RESIDUAL = """
network basic(cin = 16, cout = 16, stride = 1, shortcut = "B") {{
  input x: [cin, 8, 8]
  residual(shortcut = shortcut) {{
    conv(cout, 3, stride = stride, bias = false) -> bn -> relu
    conv(cout, 3, bias = false) -> bn
  }}
  relu
}}
network bottleneck(cin = 16, mid = 8, cout = 32, stride = 1, shortcut = "B", v15 = false) {{
  input x: [cin, 8, 8]
  residual(shortcut = shortcut) {{
    conv(mid, 1, stride = v15 ? 1 : stride, bias = false) -> bn -> relu
    conv(mid, 3, stride = v15 ? stride : 1, bias = false) -> bn -> relu
    conv(cout, 1, bias = false) -> bn
  }}
  relu
}}
"""


@pytest.mark.parametrize("cin, cout, stride, shortcut, option", [
    (16, 16, 1, "identity", "identity"),
    (16, 32, 2, "projection", "B"),
    (16, 16, 1, "projection", "C"),
    (16, 32, 2, "A", "A"),
])
def test_basic_residual_block_matches_reference(cin, cout, stride, shortcut, option):
    reference = nets.BasicBlock(cin, cout, stride, shortcut)
    assert_same(reference, RESIDUAL.format(), (cin, 8, 8), "basic", cin=cin, cout=cout, stride=stride,
                shortcut=option)


@pytest.mark.parametrize("stride, shortcut, option, v15", [
    (1, "projection", "B", False), (2, "projection", "B", False), (2, "projection", "B", True),
    (2, "A", "A", False),
])
def test_bottleneck_residual_block_matches_reference(stride, shortcut, option, v15):
    reference = nets.Bottleneck(16, 8, 32, stride, shortcut, stride_on_3x3=v15)
    assert_same(reference, RESIDUAL.format(), (16, 8, 8), "bottleneck", stride=stride, shortcut=option, v15=v15)


def test_identity_residual_block_matches_reference():
    reference = nets.Bottleneck(32, 8, 32, 1, "identity")
    assert_same(reference, RESIDUAL.format(), (32, 8, 8), "bottleneck", cin=32, shortcut="identity")


DENSE = """
block dense_layer(k, bottleneck = true) {
  if bottleneck { bn -> relu -> conv(4 * k, 1, bias = false) }
  bn -> relu -> conv(k, 3, bias = false)
}
network dense_transition(c0 = 16, n = 3, k = 6, bottleneck = true) {
  input x: [c0, 8, 8]
  dense(n) { dense_layer(k, bottleneck) }
  bn -> relu -> conv(floor(0.5 * in.channels), 1, bias = false) -> avgpool(2)
}
"""


@pytest.mark.parametrize("bottleneck", [True, False])
def test_dense_block_and_transition_match_reference(bottleneck):
    block = nets.DenseBlock(16, 3, 6, bottleneck)
    reference = nn.Sequential(block, nets.Transition(block.out_channels, block.out_channels // 2))
    assert_same(reference, DENSE, (16, 8, 8), bottleneck=bottleneck)


INCEPTION = """
network inception(cin = 32) {
  input x: [cin, 12, 12]
  concat {
    branch { conv(8, 1) -> relu }
    branch { conv(6, 1) -> relu -> conv(10, 3) -> relu }
    branch { conv(4, 1) -> relu -> conv(6, 5) -> relu }
    branch { maxpool(3, stride = 1, pad = 1) -> conv(5, 1) -> relu }
  }
}
"""


def test_inception_module_matches_reference():
    assert_same(nets.InceptionModule(32, 8, 6, 10, 4, 6, 5), INCEPTION, (32, 12, 12))


HIGHWAY = """
network highway_layer(c = 12, bias = -2) {
  input x: [c, 8, 8]
  highway(kernel = 3, bias = bias) { conv(c, 3) -> relu }
}
"""


def test_highway_layer_matches_reference_and_initialises_the_gate_bias():
    compiled = assert_same(nets.HighwayConv(12, 3, -2.0), HIGHWAY, (12, 8, 8))
    fresh = build(HIGHWAY, seed=3)
    assert torch.equal(fresh.highway1.transform.bias, torch.full((12,), -2.0))
    assert sum(p.numel() for p in compiled.parameters()) == 2 * (9 * 12 * 12 + 12)


SHUFFLE = """
network unit(cin = 24, cout = 24, g = 3, stride = 1) {
  input x: [cin, 8, 8]
  let mid = cout // 4
  if stride == 1 {
    sum {
      branch { }
      branch {
        conv(mid, 1, groups = g, bias = false) -> bn -> relu -> shuffle(g)
        -> dwconv(3, stride = 1, bias = false) -> bn -> conv(cout, 1, groups = g, bias = false) -> bn
      }
    }
  } else {
    concat {
      branch { avgpool(3, stride = 2, pad = 1) }
      branch {
        conv(mid, 1, groups = g, bias = false) -> bn -> relu -> shuffle(g)
        -> dwconv(3, stride = 2, bias = false) -> bn -> conv(cout - cin, 1, groups = g, bias = false) -> bn
      }
    }
  }
  relu
}
"""


@pytest.mark.parametrize("cin, cout, stride", [(24, 24, 1), (24, 48, 2)])
def test_shufflenet_unit_matches_reference(cin, cout, stride):
    assert_same(nets.ShuffleUnit(cin, cout, 3, stride), SHUFFLE, (cin, 8, 8), cin=cin, cout=cout, stride=stride)


def test_channel_shuffle_order():
    spec = "network s() { input x: [6, 1, 1]; shuffle(3) }"
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert build(spec)(x).flatten().tolist() == [0, 2, 4, 1, 3, 5]


TOWERS = """
network towers(cin = 8, cout = 12) {
  input x: [cin, 9, 9]
  groups(2) { conv(cout // 2, 3) }
}
"""


def test_two_tower_layer_matches_reference():
    compiled = assert_same(nets.TwoTowerConv(8, 12, 3, groups=2), TOWERS, (8, 9, 9))
    assert [n for n, _ in compiled.named_parameters()] == [
        "groups1.group1.conv1.weight", "groups1.group1.conv1.bias",
        "groups1.group2.conv1.weight", "groups1.group2.conv1.bias"]


# ---------------------------------------------------------------- clique blocks

CLIQUE = """
network clique_block(c0 = 10, layers = 4, k = 6, bottleneck = false, rounds = 1, mode = "II+II", partial = none) {
  input x: [c0, 8, 8]
  b = clique(layers = layers, k = k, bottleneck = bottleneck, rounds = rounds, mode = mode, partial = partial)
  output feature = b.feature
  output transit = b.transit
}
"""


def load_clique(reference: nets.CliqueBlockRef, compiled: nn.Module, layers: int) -> None:
    """Per-edge reference weights into the compiled layers' single weight tensors."""
    ref = reference
    with torch.no_grad():
        for i in range(1, layers + 1):
            layer: CliqueLayer = getattr(compiled.clique1, f"x{i}")
            sources = list(range(i)) + [j for j in range(i + 1, layers + 1) if f"{j}_{i}" in ref.edges]
            layer.weight.copy_(torch.cat([ref.edges[f"{j}_{i}"].weight for j in sources], 1))
            for j in sources:
                assert torch.equal(layer.edge_weight(j), ref.edges[f"{j}_{i}"].weight)
            norms = [ref.bn_I[i - 1]] + [ref.bn_II[r][i - 1] for r in range(ref.rounds) if i <= ref.n_updated]
            assert len(norms) == len(layer.norms)
            for mine, theirs in zip(layer.norms, norms):
                mine.load_state_dict(theirs.state_dict())
            if ref.bottleneck:
                layer.conv3x3.load_state_dict(ref.conv3[i - 1].state_dict())
                extra = [ref.bnb_I[i - 1]] + [ref.bnb_II[r][i - 1] for r in range(ref.rounds) if i <= ref.n_updated]
                for mine, theirs in zip(layer.norms3x3, extra):
                    mine.load_state_dict(theirs.state_dict())


@pytest.mark.parametrize("bottleneck", [False, True])
@pytest.mark.parametrize("mode, partial, rounds", [
    ("II+II", None, 1), ("I+II", None, 1), ("I+I", None, 1), ("II+II", 2, 1), ("II+II", None, 2),
])
def test_clique_block_matches_per_edge_reference(bottleneck, mode, partial, rounds):
    reference = randomise_norms(nets.CliqueBlockRef(10, 4, 6, bottleneck, rounds, mode, partial))
    compiled = build(CLIQUE, bottleneck=bottleneck, mode=mode, partial=partial, rounds=rounds, seed=0)
    load_clique(reference, compiled, 4)
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in reference.parameters())
    x = torch.randn(2, 10, 8, 8)
    for train in (False, True):
        reference.train(train)
        compiled.train(train)
        block, transit = reference(x)
        out = compiled(x)
        torch.testing.assert_close(out["feature"], block, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out["transit"], transit, rtol=1e-5, atol=1e-5)


def test_clique_weights_are_shared_between_stages():
    source = compile_source(build_ir(CLIQUE))
    # stage I and stage II call the same layer modules: one weight tensor each, sliced per stage
    assert ("        for _, layer in self.items():\n"  # inside class CliqueBlock
            "            xs.append(layer([x] + xs, 0))\n") in source
    assert ("        for i, update in enumerate(self.values()):\n"
            "            xs[i] = update(xs[:i] + xs[i + 1:], 1)\n") in source
    assert "clique1_transit, clique1_feature = self.clique1(x)" in source
    model = build(CLIQUE, seed=0)
    layer = model.clique1.x2
    assert layer.weight.shape == (6, 10 + 3 * 6, 3, 3)
    assert len(layer.norms) == 2 and layer.norms[0].num_features == 16 and layer.norms[1].num_features == 18


# ---------------------------------------------------------------- module behaviour

def test_standalone_source_builds_an_equal_module(tmp_path):
    g = build_ir(CLIQUE + INCEPTION, "clique_block")
    path = tmp_path / "generated_block.py"
    path.write_text(compile_source(g))
    spec = importlib.util.spec_from_file_location("generated_block", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["generated_block"] = module
    spec.loader.exec_module(module)
    torch.manual_seed(5)
    standalone = module.CliqueBlock()
    in_memory = compile_module(g, seed=5)
    a, b = standalone.state_dict(), in_memory.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, 10, 8, 8)
    torch.testing.assert_close(standalone.eval()(x)["feature"], in_memory.eval()(x)["feature"])
    assert "archdsl" not in path.read_text().split('"""', 2)[2]  # imports torch only


def test_seed_makes_construction_bit_identical():
    g = build_ir(RESIDUAL.format(), "bottleneck")
    a, b = compile_module(g, seed=7).state_dict(), compile_module(g, seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = compile_module(g, seed=8).state_dict()
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_parameters_are_named_after_the_spec():
    spec = """
    block basic(c) { residual { conv(c, 3, bias = false) as conv1 -> bn as bn1 -> relu } }
    network net() {
      input image: [3, 8, 8]
      conv(8, 3) as stem
      group "stage2" { basic(8) as block3 }
    }
    """
    names = [n for n, _ in build(spec).named_parameters()]
    assert names == ["stem.weight", "stem.bias", "stage2.block3.conv1.weight", "stage2.block3.bn1.weight",
                     "stage2.block3.bn1.bias"]


@pytest.mark.parametrize("device", DEVICES)
def test_device_dtype_and_channels_last(device):
    model = build(RESIDUAL.format(), "bottleneck", device=device, dtype=torch.float64)
    x = torch.randn(2, 16, 8, 8, device=device, dtype=torch.float64)
    assert model(x).dtype == torch.float64 and model(x).device.type == device
    model = model.to(memory_format=torch.channels_last)
    y = model(x.to(memory_format=torch.channels_last))
    assert y.shape == (2, 32, 8, 8)


def test_torch_compile_export_and_torchscript_accept_modules():
    model = build(CLIQUE + INCEPTION, "clique_block", seed=0).eval()
    x = torch.randn(2, 10, 8, 8)
    expected = model(x)["feature"]
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x)["feature"], expected)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x)["feature"], expected)
    compiled = torch.compile(model, backend="aot_eager")
    torch.testing.assert_close(compiled(x)["feature"], expected)


SPECS = Path(__file__).resolve().parents[1] / "specs"
MEMORY_EFFICIENT_CASES = {  # network, parameters, input shape
    "densenet_bc": ("densenet.arch", "densenet_cifar", {"depth": 40, "k": 12, "bc": True}, (3, 32, 32)),
    "densenet_dropout": ("densenet.arch", "densenet_cifar", {"depth": 22, "k": 12, "dropout": 0.2}, (3, 32, 32)),
    "cliquenet": ("cliquenet.arch", "cliquenet_cifar", {"k": 12, "T": 6}, (3, 32, 32)),
    "cliquenet_bottleneck": ("cliquenet.arch", "cliquenet_cifar", {"k": 12, "T": 12, "B": True}, (3, 32, 32)),
    "cliquenet_attention_compression": ("cliquenet.arch", "cliquenet_cifar", {"k": 12, "T": 6, "A": True, "C": True},
                                        (3, 32, 32)),
}


@pytest.mark.parametrize("case, device", [(case, "cpu") for case in MEMORY_EFFICIENT_CASES]
                         + [(case, "cuda") for case in ("densenet_dropout", "cliquenet") if "cuda" in DEVICES])
def test_memory_efficient_build_trains_exactly_like_the_plain_one(case, device):
    """Same outputs (dropout included), gradients, and BN running statistics after two steps:
    the recomputation in backward neither changes the maths nor updates BN statistics twice."""
    file, network, params, shape = MEMORY_EFFICIENT_CASES[case]
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1)).to(device)
    results = []
    initial = []
    for efficient in (False, True):
        model = build(SPECS / file, network, seed=0, device=device, memory_efficient=efficient, **params).train()
        initial.append({k: v.clone() for k, v in model.state_dict().items()})
        torch.manual_seed(2)
        for _ in range(2):
            model.zero_grad()
            out = model(x)
            out.logsumexp(1).mean().backward()
        results.append((out.detach(), {n: p.grad for n, p in model.named_parameters()},
                        dict(model.named_buffers())))
    assert list(initial[0]) == list(initial[1])  # same modules, created in the same order: same weights
    assert all(torch.equal(initial[0][k], initial[1][k]) for k in initial[0])
    (out0, grads0, buffers0), (out1, grads1, buffers1) = results
    tolerance = {"rtol": 1e-4, "atol": 1e-6 if device == "cpu" else 1e-5}  # cuDNN may pick other algorithms
    torch.testing.assert_close(out1, out0, **tolerance)
    assert grads1.keys() == grads0.keys() and buffers1.keys() == buffers0.keys()
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], **tolerance, msg=name)
    for name in buffers0:
        torch.testing.assert_close(buffers1[name], buffers0[name], **tolerance, msg=name)


@pytest.mark.parametrize("file, network, segments", [("dpn.arch", "dpn68", 25),
                                                    ("resnext.arch", "resnext50_32x4d_split", 16)])
def test_memory_efficient_build_of_other_concatenating_networks(file, network, segments):
    """Dual path networks and split-path ResNeXt also run BN-ReLU-conv on concatenations."""
    g = build_ir(SPECS / file, network)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    grads = []
    for efficient in (False, True):
        model = compile_module(g, seed=0, memory_efficient=efficient).train()
        with recomputations(model) as calls:
            model(x).logsumexp(1).mean().backward()
        assert len(calls) == (segments if efficient else 0)
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("case", ["densenet_bc", "cliquenet"])
def test_memory_efficient_build_under_torch_compile_trains_like_the_plain_one(case):
    file, network, params, shape = MEMORY_EFFICIENT_CASES[case]
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))
    params = {**params, "drop": 0.0} if case == "cliquenet" else params  # compiled code draws other masks
    plain = build(SPECS / file, network, seed=0, **params).train()
    efficient = build(SPECS / file, network, seed=0, memory_efficient=True, **params).train()
    compiled = torch.compile(efficient, backend="aot_eager")
    for _ in range(2):
        plain(x).logsumexp(1).mean().backward()
        compiled(x).logsumexp(1).mean().backward()
    grads, buffers = dict(plain.named_parameters()), dict(plain.named_buffers())
    for name, p in efficient.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)
    for name, b in efficient.named_buffers():
        torch.testing.assert_close(b, buffers[name], rtol=1e-5, atol=1e-6, msg=name)


@contextlib.contextmanager
def recomputations(model: nn.Module):
    """The modules whose chains `model` recomputes in backward, one entry per call (by BN name)."""
    namespace = vars(sys.modules[type(model).__module__])
    original, calls = namespace.get("recompute_in_backward"), []
    if original is None:  # a plain build: nothing is recomputed
        yield calls
        return
    names = {m: n for n, m in model.named_modules()}

    def counting(fn, norm, *inputs):
        calls.append(names[norm])
        return original(fn, norm, *inputs)

    namespace["recompute_in_backward"] = counting
    try:
        yield calls
    finally:
        namespace["recompute_in_backward"] = original


def test_memory_efficient_densenet_source_recomputes_each_concat_bn_relu():
    g = build_ir(SPECS / "densenet.arch", "densenet_cifar", depth=40, k=12, bc=True)
    plain, efficient = compile_source(g), compile_source(g, memory_efficient=True)
    assert "recompute_in_backward" not in plain
    # the block's first BN-ReLU-conv, with the concatenation of the features it is handed
    assert (
        "    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:\n"
        "        conv1 = recompute_in_backward(self._norm1, self.norm1, *x); del x\n"
        "        norm2 = self.norm2(conv1); del conv1\n") in efficient
    assert (
        "    def _norm1(self, *x: torch.Tensor) -> torch.Tensor:\n"
        '        """bn -> relu -> conv, recomputed in backward."""\n'
        "        concat1 = torch.cat(x, 1); del x\n"
        "        norm1 = self.norm1(concat1); del concat1\n"
        "        relu1 = torch.relu_(norm1); del norm1\n"
        "        conv1 = self.conv1(relu1); del relu1\n"
        "        return conv1\n") in efficient
    assert "        conv = recompute_in_backward(self._norm, self.norm, x); del x\n" in efficient  # transitions
    assert (
        "    def _norm5(self, denseblock3: torch.Tensor) -> torch.Tensor:\n"
        '        """bn -> relu -> gap, recomputed in backward."""\n'
        "        norm5 = self.norm5(denseblock3); del denseblock3\n"
        "        relu5 = torch.relu_(norm5); del norm5\n"
        "        avgpool = relu5.mean(dim=(2, 3)); del relu5\n"
        "        return avgpool\n") in efficient
    plain_model, efficient_model = compile_module(g, seed=0), compile_module(g, seed=0, memory_efficient=True)
    assert list(plain_model.state_dict()) == list(efficient_model.state_dict())
    with recomputations(efficient_model.train()) as calls:
        efficient_model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 3 * 6 + 2 + 1  # layers, transitions, final BN
    assert calls[:2] == ["denseblock1.layer1.dense_layer1.norm1", "denseblock1.layer2.dense_layer1.norm1"]
    assert calls[-1] == "norm5"


def test_compile_memory_efficient_writes_a_standalone_file_that_trains_like_the_plain_build(tmp_path, capsys):
    from archdsl.cli import main

    out = tmp_path / "densenet_me.py"
    args = ["compile", str(SPECS / "densenet.arch"), "-n", "densenet_cifar", "-D", "depth=40", "-D", "bc=true",
            "--memory-efficient", "-o", str(out)]
    assert main(args) == 0
    text = out.read_text()
    assert "import contextlib\n" in text and "def recompute_in_backward(" in text and "archdsl" not in text.split('"""', 2)[2]
    spec = importlib.util.spec_from_file_location("densenet_me", out)
    module = importlib.util.module_from_spec(spec)
    sys.modules["densenet_me"] = module
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    standalone = module.DensenetCifarDepth40BcTrue().train()  # the class is named with its -D overrides
    plain = build(SPECS / "densenet.arch", "densenet_cifar", depth=40, bc=True, seed=0).train()
    x = torch.randn(2, 3, 32, 32)
    for model in (standalone, plain):
        model(x).logsumexp(1).mean().backward()
    grads = dict(plain.named_parameters())
    for name, p in standalone.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["densenet_bc", "cliquenet"])
def test_memory_efficient_build_needs_less_training_memory(case, device):
    bound = 0.65 if device == "cpu" else 0.9  # CPU measured 0.53 for both; on a GPU cuDNN workspaces add to both
    file, network, params, shape = MEMORY_EFFICIENT_CASES[case]
    x = torch.randn(16, *shape, device=device)
    peaks = [peak_training_memory(build(SPECS / file, network, seed=0, device=device, memory_efficient=e,
                                        **params).train(), x)
             for e in (False, True)]
    assert peaks[1] < bound * peaks[0], peaks


def test_cuda_requested_without_cuda_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from archdsl.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = tmp_path / "s.arch"
    spec.write_text("network s() { input x: [3, 4, 4]; conv(4, 3) }")
    assert main(["compile", str(spec), "--device", "cuda", "-o", str(tmp_path / "s.py")]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "s.py").exists()


@pytest.mark.parametrize("device", DEVICES)
def test_cliquenet_on_every_device_matches_cpu_and_trains(device):
    spec = Path(__file__).resolve().parents[1] / "specs" / "cliquenet.arch"
    cpu = build(spec, "cliquenet_cifar", k=12, T=6, drop=0.0, seed=0).eval()
    model = build(spec, "cliquenet_cifar", k=12, T=6, drop=0.0, seed=0, device=device, memory_efficient=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x.to(device)).cpu(), cpu(x), rtol=1e-4, atol=1e-4)
    model.train()
    model(x.to(device)).logsumexp(1).mean().backward()
    assert all(p.grad is not None and p.grad.device.type == device for p in model.parameters())


def test_spec_selected_initialisation_schemes():
    spec = """
    network n(scheme = "kaiming_fan_out") {
      input x: [16, 8, 8]
      residual { conv(64, 3, init = scheme) -> bn -> relu -> conv(16, 3, bias = false, init = scheme)
                 -> bn(zero_init = true) }
      gap -> fc(10, init = "normal")
    }
    """
    model = build(spec, seed=0)
    assert torch.equal(model.bn2.weight, torch.zeros(16)) and torch.equal(model.bn1.weight, torch.ones(64))
    assert torch.equal(model.conv1.bias, torch.zeros(64)) and torch.equal(model.fc1.bias, torch.zeros(10))
    std = (2 / (64 * 9)) ** 0.5  # kaiming normal, fan_out = out channels x kernel area
    assert abs(model.conv1.weight.std().item() - std) < 0.1 * std
    assert abs(model.fc1.weight.std().item() - 0.01) < 0.003
    x = torch.randn(2, 16, 8, 8)
    # a zero-initialised last BN makes the residual block start as the identity
    assert torch.equal(model.eval().bn2(torch.ones(2, 16, 8, 8)), torch.zeros(2, 16, 8, 8))
    with pytest.raises(ArchError, match="unknown init 'kaiming'"):
        build_ir(spec, scheme="kaiming")
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("emit", ["yaml", "pt2"])
def test_compile_command_writes_other_artifacts(tmp_path, emit, capsys):
    from archdsl.cli import main
    from archdsl.ir import equal, from_yaml

    spec = tmp_path / "s.arch"
    spec.write_text("network s() { input x: [3, 8, 8]; conv(4, 3) -> bn -> relu -> gap -> fc(2) }")
    out = tmp_path / f"s.{emit}"
    assert main(["compile", str(spec), "--emit", emit, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    if emit == "yaml":
        assert equal(from_yaml(out.read_text()), build_ir(spec))
    else:
        program = torch.export.load(out)
        assert program.module()(torch.randn(1, 3, 8, 8)).shape == (1, 2)


def test_compile_never_leaves_a_half_written_file(tmp_path, capsys):
    from archdsl.cli import main

    spec = tmp_path / "s.arch"
    out = tmp_path / "s.py"
    out.write_text("previous contents")
    spec.write_text("network s() { input x: [3, 8, 8]; convv(4, 3) }")
    assert main(["compile", str(spec), "-o", str(out)]) == 1
    assert out.read_text() == "previous contents"
    assert "unknown op 'convv'" in capsys.readouterr().err
    spec.write_text("network s() { input x: [3, 8, 8]; conv(4, 3) }")
    assert main(["compile", str(spec), "-o", str(out)]) == 0
    assert "class S(nn.Module)" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.arch", "s.py"]  # no temporary files left


@pytest.mark.parametrize("count_pad", [True, False])
def test_average_pooling_counts_padding_only_when_asked(count_pad):
    spec = f"network p() {{ input x: [2, 5, 5]; avgpool(3, stride = 1, pad = 1, count_pad = {str(count_pad).lower()}) }}"
    model = build(spec)
    x = torch.rand(1, 2, 5, 5) + 1
    expected = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=count_pad)
    torch.testing.assert_close(model(x), expected)
    corner = x[0, :, :2, :2].sum((1, 2)) / (9 if count_pad else 4)  # a corner window holds 4 pixels
    torch.testing.assert_close(model(x)[0, :, 0, 0], corner)


def test_two_builds_of_one_network_keep_their_own_classes(tmp_path):
    """Each build's class lives in its own generated module, so either model pickles and loads back."""
    small = build(SPECS / "densenet.arch", "densenet_cifar", depth=22, k=12, seed=0).eval()
    large = build(SPECS / "densenet.arch", "densenet_cifar", depth=40, k=12, seed=0).eval()
    assert type(small) is not type(large) and type(small).__module__ != type(large).__module__
    x = torch.randn(1, 3, 32, 32)
    for model in (small, large):
        torch.save(model, tmp_path / "model.pt")
        loaded = torch.load(tmp_path / "model.pt", weights_only=False)
        assert type(loaded) is type(model)
        torch.testing.assert_close(loaded(x), model(x))
