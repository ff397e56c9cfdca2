"""The command line: check, summary, list, --help, --version, -D overrides, exit statuses, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.cli import main, parse_define

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
block unit(c, stride = 1) {
  residual(shortcut = "A") { conv(c, 3, stride = stride, bias = false) -> bn -> relu }
}
network small(widths = [8, 16], classes = 10, bottleneck = false, pool = "avg") {
  input image: [3, 16, 16]
  conv(widths[0], 3, bias = false) -> bn -> relu
  for i, c in enumerate(widths) { unit(c, stride = i == 0 ? 1 : 2) }
  if bottleneck { conv(4, 1) }
  if pool == "max" { maxpool(2) } else { avgpool(2) }
  output logits = gap -> fc(classes)
}
tiny = small(widths = [4]) { expect params == 108 + 8 + 144 + 8 + 50 }
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.arch"
    path.write_text(SPEC)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_reports_networks_and_expectations(capsys, spec):
    assert run(capsys, "check", spec) == (0, f"{spec}: ok (2 networks, 1 expectations met)\n", "")


def test_check_fails_with_status_1_and_the_diagnostic(capsys, tmp_path, spec):
    bad = tmp_path / "bad.arch"
    bad.write_text("network n() {\n  input x: [3, 8, 8]\n  conv(4, 3) -> fc(2) -> rleu\n}\n")
    code, out, err = run(capsys, "check", spec, bad)
    assert code == 1
    assert out == f"{spec}: ok (2 networks, 1 expectations met)\n"
    assert err.splitlines()[0] == f"{bad}:3:17: error: fc needs a flat [F] input, found [4, 8, 8]"


def test_check_reports_each_variant_error_once(capsys, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("network n(c = 3) {\n  input x: [3, 8, 8]\n  cnov(c, 3)\n}\na = n(c = 4)\nb = n(c = 5)\n")
    code, _, err = run(capsys, "check", bad)
    assert code == 1
    assert err.count("error: unknown op 'cnov'") == 1


def test_summary_table(capsys, spec):
    code, out, err = run(capsys, "summary", spec, "--network", "small")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0] == f"small ({spec})"
    assert lines[2].split() == ["layer", "op", "output", "shape", "params", "MACs"]
    assert lines[4].split() == ["conv1", "conv", "[8,", "16,", "16]", "216", "55,296"]
    assert "outputs: logits [10]" in lines
    assert lines[-2].startswith("total params: ")


def test_summary_json(capsys, spec):
    code, out, _ = run(capsys, "summary", spec, "-n", "tiny", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert {"network", "inputs", "outputs", "layers", "total_params", "total_macs"} <= set(data)
    assert data["network"] == "tiny"
    assert data["inputs"] == {"image": [3, 16, 16]}
    assert data["outputs"] == {"logits": {"node": "fc1", "shape": [10]}}
    assert data["total_params"] == 318 == sum(layer["params"] for layer in data["layers"])
    assert data["layers"][0] == {"name": "conv1", "op": "conv", "shape": [4, 16, 16], "params": 108,
                                 "macs": 16 * 16 * 4 * 27}
    assert data["checks"] == [{"expect": "params == 108 + 8 + 144 + 8 + 50", "ok": True, "detail": "got 318"}]


@pytest.mark.parametrize("define, check", [
    (["classes=100"], lambda d: d["outputs"]["logits"]["shape"] == [100]),                     # int
    (["widths=[4, 8, 16]"], lambda d: d["layers"][-2]["shape"] == [16]),                       # list
    (["bottleneck=true"], lambda d: any(layer["shape"][0] == 4 for layer in d["layers"][-5:])),  # bool
    (["pool=max"], lambda d: any(layer["op"] == "maxpool" for layer in d["layers"])),          # bare string
    (['pool="max"'], lambda d: any(layer["op"] == "maxpool" for layer in d["layers"])),        # quoted string
    (["classes=5", "widths=[2]"], lambda d: d["total_params"] == 54 + 4 + 36 + 4 + 15),
])
def test_summary_with_overrides(capsys, spec, define, check):
    argv = ["summary", spec, "-n", "small", "--format", "json"]
    for d in define:
        argv += ["-D", d]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    data = json.loads(out)
    assert check(data), data["layers"]


def test_overriding_a_variant_drops_its_figures(capsys, spec):
    code, out, _ = run(capsys, "summary", spec, "-n", "tiny", "-D", "classes=3", "--format", "json")
    assert code == 0 and json.loads(out)["checks"] == []


def test_parse_define_values():
    assert parse_define("n=24") == ("n", 24)
    assert parse_define("blocks=[3, 4, 6, 3]") == ("blocks", [3, 4, 6, 3])
    assert parse_define("flag=false") == ("flag", False)
    assert parse_define("p=0.25") == ("p", 0.25)
    assert parse_define("mode=II+II") == ("mode", "II+II")
    assert parse_define("pool=max") == ("pool", "max")
    assert parse_define("name = x=y") == ("name", " x=y")


@pytest.mark.parametrize("argv, message", [
    (["summary", "{spec}", "-n", "nosuch"], "error: no network or variant named 'nosuch' in {spec}"),
    (["summary", "{spec}", "-D", "clases=3"], "error: network 'small' has no parameter 'clases'"),
    (["summary", "{spec}", "-D", "classes"], "error: -D expects name=value, found 'classes'"),
    (["summary", "{dir}/missing.arch"], "error: cannot read {dir}/missing.arch: No such file or directory"),
    (["check", "{dir}/missing.arch"], "error: cannot read {dir}/missing.arch: No such file or directory"),
])
def test_usage_errors_exit_with_2(capsys, spec, argv, message):
    fill = {"spec": spec, "dir": spec.parent}
    code, out, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2 and out == ""
    assert err.splitlines()[0] == message.format(**fill)


def test_did_you_mean_for_a_network(capsys, spec):
    assert run(capsys, "summary", spec, "-n", "smal")[2].splitlines()[1] == " = help: did you mean 'small'?"


def test_a_network_that_needs_parameters(capsys, tmp_path):
    path = tmp_path / "w.arch"
    path.write_text("network w(width) {\n  input x: [3, 8, 8]\n  conv(width, 1)\n}\nw8 = w(8)\n")
    assert run(capsys, "check", path)[0] == 0  # checked through its variant
    code, _, err = run(capsys, "summary", path, "-n", "w")
    assert code == 2 and err.splitlines()[0] == f"{path}:1:1: error: network 'w' needs a value for 'width'"
    assert run(capsys, "summary", path, "-n", "w", "-D", "width=2")[0] == 0


def test_list(capsys, spec):
    assert run(capsys, "list", spec) == (0, f"""\
{spec}:
  network small(widths=[8, 16], classes=10, bottleneck=false, pool="avg")
  variant tiny = small(widths=[4])
""", "")


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for command in ("check", "summary", "list", "compile", "render"):
        assert command in out
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == "archdsl 0.1.0\n"
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_front_end_does_not_import_torch(spec):
    code = ("import sys, archdsl, archdsl.cli\n"
            "from archdsl import build_ir, summary_table\n"
            "g = build_ir(sys.argv[1], 'small')\nsummary_table(g)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint(len(g))")
    result = _python(code, str(spec))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(__import__("archdsl").build_ir(spec, "small")))


def test_check_and_summary_commands_do_not_import_torch(spec):
    code = ("import sys\nfrom archdsl.cli import main\ncodes = [main(['check', sys.argv[1]]),\n"
            "         main(['summary', sys.argv[1], '--format', 'json'])]\n"
            "assert codes == [0, 0], codes\nassert 'torch' not in sys.modules, 'torch imported'")
    result = _python(code, str(spec))
    assert result.returncode == 0, result.stderr


def test_the_module_entry_point(spec):
    result = subprocess.run([sys.executable, "-m", "archdsl.cli", "check", str(spec)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, f"{spec}: ok (2 networks, 1 expectations met)\n")


def test_summary_reports_the_seed_002_example_exactly(capsys):
    """Seed 002's hand-computed example net: 250 conv weights + 10 biases, pooling to 13x13x10,
    a 200-unit fully connected layer: 338,460 parameters."""
    spec = str(ROOT / "specs" / "seed002_example.arch")
    assert main(["summary", spec]) == 0
    table = capsys.readouterr().out
    assert "total params: 338,460 (338.46K)" in table
    assert main(["summary", spec, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 338_460
    assert [layer["params"] for layer in data["layers"] if layer["params"]] == [260, 338_200]
