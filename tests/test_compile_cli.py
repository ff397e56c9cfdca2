"""What a new user meets first: compile's defaults and flags, class names with -D, device errors,
pickled modules, and `compile --weights` writing a plain-PyTorch state_dict."""

from __future__ import annotations

import ast
import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import archdsl
from archdsl.backend.codegen import network_title
from archdsl.cli import main, parser
from archdsl.diagnostics import UsageError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def test_asking_for_cuda_without_cuda_is_archdsls_own_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError) as info:
        archdsl.build(SPECS / "lenet.arch", device="cuda")
    assert info.value.render() == ("error: device 'cuda' was asked for but CUDA is not available here\n"
                                   " = help: use device 'cpu' (--device cpu), or install a CUDA build of torch "
                                   "on a GPU machine")


def test_overrides_name_the_class_and_its_docstring(capsys, tmp_path):
    out = tmp_path / "net.py"
    assert main(["compile", str(SPECS / "cliquenet.arch"), "-n", "cliquenet_cifar", "-D", "k=24", "-D", "T=12",
                 "-o", str(out), "-q"]) == 0
    source = out.read_text()
    assert source.startswith('"""cliquenet_cifar (k=24, T=12): a PyTorch module generated from an archdsl spec.')
    assert '\nclass CliquenetCifarK24T12(nn.Module):\n    """cliquenet_cifar (k=24, T=12): image [3, 32, 32] -> ' \
           'logits [10]."""\n' in source
    assert type(archdsl.build(SPECS / "cliquenet.arch", "cliquenet_cifar", k=24, T=12)).__name__ == \
        "CliquenetCifarK24T12"
    assert type(archdsl.build(SPECS / "resnet.arch", "resnet18", blocks=[1, 1, 1, 1], shortcut="A")).__name__ == \
        "Resnet18Blocks1111ShortcutA"
    assert type(archdsl.build(SPECS / "cliquenet.arch", "cliquenet_cifar")).__name__ == "CliquenetCifar"


def test_an_override_cannot_end_the_docstring():
    g = archdsl.build_ir(SPECS / "lenet.arch")
    g.graph["overrides"] = {"act": 'x""" + __import__("os").system("true") + """'}
    title = network_title(g)
    assert title == 'lenet5 (act=x\\"\\"\\" + __import__(\\"os\\").system(\\"true\\") + \\"\\"\\")'
    assert ast.literal_eval(f'"""{title}"""') == 'lenet5 (act=x""" + __import__("os").system("true") + """)'


def test_compile_writes_into_the_current_directory_and_quiet_prints_only_the_path(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(SPECS / "lenet.arch"), "--quiet"]) == 0
    assert capsys.readouterr().out == "lenet5.py\n"
    assert (tmp_path / "lenet5.py").is_file() and not (SPECS / "lenet5.py").exists()
    assert main(["compile", str(SPECS / "lenet.arch"), "--emit", "yaml"]) == 0
    out = capsys.readouterr().out
    assert "total params" in out and out.endswith("\nwrote lenet5.yaml\n")


def test_compile_flags_have_help():
    compile_parser = parser()._subparsers._group_actions[0].choices["compile"]
    helps = {a.dest: a.help for a in compile_parser._actions}
    assert "torch.export program" in helps["emit"] and "ONNX" in helps["emit"] and "opset 18" in helps["emit"]
    assert helps["output"] == "output file (default: NETWORK.py, .pt2, .onnx or .yaml in the current directory)"
    assert helps["quiet"] == "print only the written paths"


def test_check_takes_a_network(capsys):
    assert main(["check", str(SPECS / "resnet.arch"), "-n", "resnet18"]) == 0
    assert capsys.readouterr().out == f"{SPECS / 'resnet.arch'}: ok (1 networks, 3 expectations met)\n"
    assert main(["check", str(SPECS / "resnet.arch"), "--network", "resnet1"]) == 2
    assert "no network or variant named 'resnet1'" in capsys.readouterr().err


def test_a_pickled_module_loads_in_a_fresh_process(tmp_path):
    model = archdsl.build(SPECS / "cliquenet.arch", "cliquenet_cifar", k=12, T=6, seed=3).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    torch.save(model, tmp_path / "model.pt")
    code = ("import sys, torch\n"
            "model = torch.load(sys.argv[1], weights_only=False)\n"
            "io = torch.load(sys.argv[2])\n"
            "with torch.no_grad():\n"
            "    assert torch.equal(model(io['x']), io['y'])\n"
            "print(type(model).__name__, type(model.block1.x1).__name__)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.pt"), str(tmp_path / "io.pt")],
                            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "CliquenetCifarK12T6 CliqueLayer\n"
    again = pickle.loads(pickle.dumps(model))
    assert type(again) is type(model) and torch.equal(again.block1.x1.weight, model.block1.x1.weight)


def test_compile_with_torchvision_weights_writes_a_plain_state_dict(capsys, tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    out = tmp_path / "model.py"
    assert main(["compile", str(SPECS / "resnet.arch"), "-n", "resnet18", "-D", "size=64", "--weights",
                 str(tmp_path / "resnet18.pth"), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().out == f"{out}\n{tmp_path / 'model.pt'}\n"
    spec = importlib.util.spec_from_file_location("standalone_resnet18", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Resnet18Size64()
    model.load_state_dict(torch.load(tmp_path / "model.pt"))  # plain PyTorch, strict
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert ((model.eval()(x) - reference(x)).abs().max() / reference(x).abs().max()) < 1e-5


def test_compile_weights_errors(capsys, tmp_path):
    assert main(["compile", str(SPECS / "lenet.arch"), "--weights", str(tmp_path / "w.pt"), "--emit", "yaml"]) == 2
    assert "--weights needs --emit py, pt2 or onnx" in capsys.readouterr().err
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "w.pt")
    assert main(["compile", str(SPECS / "lenet.arch"), "--weights", str(tmp_path / "w.pt"), "-o",
                 str(tmp_path / "lenet.py")]) == 2
    assert "error: the weights do not fit this network" in capsys.readouterr().err
    assert not (tmp_path / "lenet.py").exists()


def test_readme_opens_with_the_cpu_build():
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:12])
    assert "`ARCHDSL_CPU=1 bash scripts/install.sh`" in opening and "CUDA build" in opening


def test_install_script_cpu_build_and_no_editable_warning(tmp_path):
    """install.sh against a stand-in .venv/bin/python that records each call and its PYTHONWARNINGS."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "install.sh").write_text((ROOT / "scripts" / "install.sh").read_text())
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "$* | ${PYTHONWARNINGS:-}" >> "$(dirname "$0")/calls"\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ARCHDSL_CPU": "1", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "install.sh")], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    assert (fake.parent / "calls").read_text().splitlines() == [
        "-m pip install -q --upgrade pip | ",
        "-m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu | ",
        "-m pip install -q -e .[test] | ignore::UserWarning"]
