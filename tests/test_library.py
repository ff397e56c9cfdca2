"""The spec library and the search path (archdsl.library): a spec file or a network name is found
beside the spec (the current directory on the command line), then on ARCHDSL_PATH, then in the library
that ships with archdsl; the first directory that has it wins, and two files of one directory defining
a name make it ambiguous."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.diagnostics import UsageError
from archdsl.ir import total_params
from archdsl.library import SpecRef, defined_names, library_files, resolve
from archdsl.loader import load
from archdsl.resources import grammar_file, library_dir

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

MINE = """\
network mine(c = 8, classes = 10) {
  input image: [3, 8, 8]
  conv(c, 3) -> relu
  output logits = gap -> fc(classes)
}
"""


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch) -> Path:
    """An empty working directory outside the checkout, no ARCHDSL_PATH."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.chdir(run)
    monkeypatch.delenv("ARCHDSL_PATH", raising=False)
    return run


def spec_dir(path: Path, **files: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / f"{name}.arch").write_text(text)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_in_a_checkout_the_library_and_grammar_are_the_repository_files():
    assert library_dir() == SPECS
    assert grammar_file() == ROOT / "grammar" / "archdsl.lark"
    assert library_files() == sorted(SPECS.glob("*.arch"))


def test_every_library_name_is_defined_once_and_resolves_to_its_file(elsewhere):
    owners: dict[str, list[str]] = {}
    for path in library_files():
        for name in defined_names(path):
            owners.setdefault(name, []).append(path.name)
    assert {name: files for name, files in owners.items() if len(files) > 1} == {}
    assert len(owners) > 100
    for path in library_files():
        name = defined_names(path)[-1]
        assert resolve(name) == SpecRef(path, name, searched=True), name


def test_summary_by_name_from_another_directory(capsys, elsewhere):
    code, out, err = run(capsys, "summary", "resnet50")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"resnet50 ({SPECS / 'resnet.arch'})"
    assert "total params: 25,557,032 (25.56M)" in out


def test_check_by_name_checks_that_network_and_by_file_name_the_whole_file(capsys, elsewhere):
    code, out, _ = run(capsys, "check", "cliquenet_k36_t12", "lenet.arch")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"cliquenet_k36_t12 ({SPECS / 'cliquenet.arch'}): ok (1 networks, ")
    networks = len(load(SPECS / "lenet.arch").targets())
    assert lines[1].startswith(f"lenet.arch ({SPECS / 'lenet.arch'}): ok ({networks} networks, ")


def test_list_library_lists_every_spec_file(capsys, elsewhere):
    code, out, _ = run(capsys, "list", "--library")
    assert code == 0
    assert [line for line in out.splitlines() if not line.startswith(" ")] == \
        [f"{path}:" for path in sorted(SPECS.glob("*.arch"))]
    assert any(line.startswith("  variant resnet50 = resnet(") for line in out.splitlines())
    code, _, err = run(capsys, "list")
    assert (code, err.splitlines()[0]) == (2, "error: list needs spec files, or --library for the spec library")


def test_compile_by_name_writes_into_the_working_directory(capsys, elsewhere):
    before = sorted(SPECS.iterdir())
    code, out, _ = run(capsys, "compile", "lenet5")
    assert code == 0 and out.splitlines()[-1] == "wrote lenet5.py"
    assert (elsewhere / "lenet5.py").read_text().startswith('"""lenet5: a PyTorch module')
    assert sorted(SPECS.iterdir()) == before


def test_the_python_api_takes_names(elsewhere):
    assert total_params(archdsl.build_ir("cliquenet_k36_t12")) == 935_994
    assert archdsl.load_program("resnet50").default_target() == "resnet50"
    assert archdsl.build_ir("resnet.arch", "resnet34").graph["network"] == "resnet34"
    assert sum(p.numel() for p in archdsl.build("lenet5", seed=0).parameters()) == 60_000
    with pytest.raises(UsageError) as info:
        archdsl.build_ir("resnet50", "resnet18")
    assert info.value.render() == (
        f"error: 'resnet50' ({SPECS / 'resnet.arch'}) and --network resnet18 name different networks\n"
        f" = help: pass the file instead: {SPECS / 'resnet.arch'} --network resnet18")


def test_an_import_is_found_beside_then_on_archdsl_path_then_in_the_library(tmp_path, elsewhere, monkeypatch):
    user = spec_dir(tmp_path / "user", main='import "resnet.arch"\ntiny = resnet(blocks = [1, 1, 1, 1], classes = 10)\n')
    program = load(user / "main.arch")
    assert str(SPECS / "resnet.arch") in program.sources
    assert total_params(archdsl.build_ir(program)) == 4_910_922

    path = spec_dir(tmp_path / "path", resnet=MINE.replace("network mine", "network resnet"))
    monkeypatch.setenv("ARCHDSL_PATH", os.pathsep.join([str(tmp_path / "missing"), str(path)]))
    assert str(path / "resnet.arch") in load(user / "main.arch").sources

    spec_dir(user, resnet=MINE.replace("network mine", "network resnet").replace("c = 8", "c = 4"))
    assert list(load(user / "main.arch").sources) == [str(user / "main.arch"), str(user / "resnet.arch")]


def test_a_missing_import_says_where_imports_are_looked_for(tmp_path, elsewhere):
    user = spec_dir(tmp_path, main='import "nope.arch"\n' + MINE)
    with pytest.raises(archdsl.ArchError) as info:
        load(user / "main.arch")
    assert info.value.render().splitlines()[-1] == ("  = help: import paths are relative to the importing file, "
                                                    "then to ARCHDSL_PATH's directories, then to the spec library")


def test_archdsl_path_names_come_before_the_library_in_path_order(capsys, tmp_path, elsewhere, monkeypatch):
    first = spec_dir(tmp_path / "first", nets=MINE + "resnet50 = mine(c = 2)\ntwin = mine(c = 3)\n")
    second = spec_dir(tmp_path / "second", other=MINE.replace("mine", "other") + "twin = other(c = 5)\n")
    monkeypatch.setenv("ARCHDSL_PATH", os.pathsep.join([str(first), "", str(second)]))
    code, out, _ = run(capsys, "summary", "resnet50")
    assert code == 0 and out.splitlines()[0] == f"resnet50 ({first / 'nets.arch'})"
    assert archdsl.build_ir("twin").graph["network"] == "twin"
    assert resolve("twin").path == first / "nets.arch"
    assert resolve("other.arch").path == second / "other.arch"
    assert resolve("lenet5").path == SPECS / "lenet.arch"


def test_a_name_two_files_of_one_directory_define_is_ambiguous(capsys, tmp_path, elsewhere, monkeypatch):
    shared = spec_dir(tmp_path / "shared", a=MINE + "twin = mine(c = 2)\n",
                      b=MINE.replace("mine", "yours") + "twin = yours(c = 3)\n", broken="twin = (\n")
    monkeypatch.setenv("ARCHDSL_PATH", str(shared))
    code, out, err = run(capsys, "summary", "twin")
    assert (code, out) == (2, "")
    assert err == (f"error: 'twin' is ambiguous: it is defined in {shared / 'a.arch'} and {shared / 'b.arch'}\n"
                   f" = help: pass the file and the network: {shared / 'a.arch'} --network twin\n")
    assert run(capsys, "summary", shared / "b.arch", "--network", "twin")[0] == 0


def test_the_working_directory_comes_first(capsys, elsewhere):
    spec_dir(elsewhere, local=MINE + "resnet50 = mine(c = 4)\n")
    code, out, _ = run(capsys, "summary", "resnet50")
    assert code == 0 and out.splitlines()[0] == f"resnet50 ({elsewhere / 'local.arch'})"


def test_unknown_names_and_files_are_usage_errors_with_a_hint(capsys, elsewhere):
    code, _, err = run(capsys, "summary", "resnet5")
    assert code == 2
    assert err.splitlines()[0] == "error: no spec file or network named 'resnet5'"
    assert "'resnet50' (resnet.arch)" in err.splitlines()[1]
    code, _, err = run(capsys, "render", "nope.arch", "-o", "x.svg")
    assert (code, err.splitlines()[0]) == \
        (2, "error: cannot find nope.arch: no such file here, in ARCHDSL_PATH or in the spec library")
    code, _, err = run(capsys, "summary", "resnet50", "-n", "resnet18")
    assert code == 2 and "and --network resnet18 name different networks" in err


def test_python_dash_m_archdsl(elsewhere):
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_PATH"}
    result = subprocess.run([sys.executable, "-m", "archdsl", "--version"], capture_output=True, text=True,
                            timeout=60, check=False, env=env)
    assert (result.returncode, result.stdout) == (0, f"archdsl {archdsl.__version__}\n")
    result = subprocess.run([sys.executable, "-m", "archdsl", "summary", "lenet5", "--format", "json"],
                            capture_output=True, text=True, timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stderr
    assert '"total_params": 60000' in result.stdout
