"""`archdsl compile --emit onnx / pt2`: the spec's input and output names, a dynamic batch axis,
the same outputs as the PyTorch module at other batch sizes; missing packages refused up front."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import archdsl
from archdsl.cli import main

SPECS = Path(__file__).resolve().parents[1] / "specs"

# spec file, variant, overrides (small inputs where the spec allows), output names in spec order
NETWORKS = [
    ("cliquenet.arch", "cliquenet_cifar", {"k": 12, "T": 6}, ["logits"]),
    ("resnet.arch", "resnet50", {"size": 64}, ["logits"]),
    ("googlenet.arch", "googlenet_torchvision_aux", {"size": 96}, ["logits", "aux1", "aux2"]),
]


def compile_(capsys, tmp_path: Path, file: str, variant: str, overrides: dict, emit: str) -> Path:
    out = tmp_path / f"model.{emit}"
    defines = [arg for k, v in overrides.items() for arg in ("-D", f"{k}={v}")]
    code = main(["compile", str(SPECS / file), "-n", variant, *defines, "--emit", emit, "-o", str(out), "-q"])
    assert code == 0 and capsys.readouterr().out == f"{out}\n"
    return out


@pytest.mark.parametrize("file, variant, overrides, outputs", NETWORKS, ids=[n[1] for n in NETWORKS])
def test_onnx_has_the_spec_names_and_a_dynamic_batch(capsys, tmp_path, file, variant, overrides, outputs):
    path = compile_(capsys, tmp_path, file, variant, overrides, "onnx")
    model = archdsl.build(SPECS / file, variant, seed=0, **overrides).eval()  # compile's default seed
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[0]) for i in session.get_inputs()] == [("image", "batch")]
    assert [o.name for o in session.get_outputs()] == outputs
    shape = list(session.get_inputs()[0].shape[1:])
    for batch in (1, 3):
        x = torch.randn(batch, *shape)
        got = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            expected = model(x)
        expected = [expected[k] for k in outputs] if isinstance(expected, dict) else [expected]
        for a, b in zip(got, expected, strict=True):
            assert a.shape == tuple(b.shape) and a.shape[0] == batch
            assert np.abs(a - b.numpy()).max() < 1e-4


PT2 = [NETWORKS[0], ("deep_supervision.arch", "dsn", {}, ["logits", "companion1", "companion2"])]


@pytest.mark.parametrize("file, variant, overrides, outputs", PT2, ids=["cliquenet", "dsn"])
def test_pt2_has_a_dynamic_batch(capsys, tmp_path, file, variant, overrides, outputs):
    path = compile_(capsys, tmp_path, file, variant, overrides, "pt2")
    program = torch.export.load(path).module()
    model = archdsl.build(SPECS / file, variant, seed=0, **overrides).eval()
    for batch in (1, 5):
        x = torch.randn(batch, *archdsl.build_ir(SPECS / file, variant, **overrides).nodes["image"]["shape"])
        with torch.no_grad():
            got, expected = program(x), model(x)
        got = got if isinstance(got, dict) else {"logits": got}
        expected = expected if isinstance(expected, dict) else {"logits": expected}
        assert list(got) == outputs
        for name in outputs:
            assert got[name].shape[0] == batch
            assert (got[name] - expected[name]).abs().max() < 1e-4


@pytest.mark.parametrize("package", ["onnx", "onnxscript", "onnxruntime"])
def test_a_missing_onnx_package_is_reported_before_any_work(capsys, tmp_path, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` raises ImportError
    code = main(["compile", str(tmp_path / "no-such-spec.arch"), "--emit", "onnx"])  # the spec is never read
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: --emit onnx needs the package {package}, which is not installed\n"
                   f" = help: pip install 'archdsl[onnx]'\n")
