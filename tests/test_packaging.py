"""The sdist and the wheel, built from a clean copy of the checkout (scripts/build_dist.py; the wheel
from the sdist, as `python -m build` does): they carry the grammar and every spec of specs/ byte for
byte and the metadata a package index shows, and an installed copy runs from another directory with
the files it carries. scripts/smoke_wheel.sh goes further in CI: a fresh virtual environment with the
dependencies installed by pip."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import archdsl

ROOT = Path(__file__).resolve().parents[1]
VERSION = archdsl.__version__


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_dist.py"), str(out)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> zipfile.ZipFile:
    return zipfile.ZipFile(dist / f"archdsl-{VERSION}-py3-none-any.whl")


def test_the_wheel_carries_the_grammar_and_every_spec_unchanged(wheel):
    assert wheel.read("archdsl/grammar/archdsl.lark") == (ROOT / "grammar" / "archdsl.lark").read_bytes()
    specs = sorted(n for n in wheel.namelist() if n.startswith("archdsl/specs/"))
    sources = [*(ROOT / "specs").rglob("*.arch"), ROOT / "specs" / "README.md"]
    assert specs == sorted(f"archdsl/specs/{p.relative_to(ROOT / 'specs').as_posix()}" for p in sources)
    for name in specs:
        assert wheel.read(name) == (ROOT / "specs" / name.removeprefix("archdsl/specs/")).read_bytes(), name


def test_the_wheel_holds_the_package_and_nothing_else(wheel):
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "archdsl").rglob("*.py"))
    names = wheel.namelist()
    assert sorted(n for n in names if n.endswith(".py")) == modules
    others = {n for n in names if not n.endswith(".py") and not n.startswith(("archdsl/specs/", "archdsl/grammar/"))}
    info = f"archdsl-{VERSION}.dist-info"
    assert others == {f"{info}/{f}" for f in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt",
                                              "licenses/LICENSE")}
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{info}/entry_points.txt").decode())
    assert entry_points["console_scripts"]["archdsl"] == "archdsl.cli:main"
    assert entry_points["pygments.lexers"]["arch"] == "archdsl.editor.lexer:ArchLexer"
    for group in entry_points.sections():  # every entry point's module is in the wheel
        for target in entry_points[group].values():
            assert target.split(":")[0].replace(".", "/") + ".py" in names, target


def test_the_metadata_names_version_license_urls_extras_and_classifiers(wheel):
    meta = Parser().parsestr(wheel.read(f"archdsl-{VERSION}.dist-info/METADATA").decode())
    assert (meta["Name"], meta["Version"], meta["License-Expression"]) == ("archdsl", VERSION, "MIT")
    assert meta["Requires-Python"] == ">=3.11"
    assert {url.split(",")[0] for url in meta.get_all("Project-URL")} == {"Homepage", "Documentation", "Source",
                                                                          "Issues"}
    assert {"onnx", "lsp", "safetensors", "test"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    for package in ("lark", "networkx", "pyyaml", "graphviz", "torch"):
        assert any(r.split(">")[0].split("<")[0].strip().lower() == package for r in requires), package
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert any(c.startswith("Topic :: ") for c in classifiers) and any(c.startswith("Development Status") for c
                                                                        in classifiers)
    assert "## Install with pip" in meta.get_payload()  # the README is the long description


def test_the_sdist_carries_the_sources_the_wheel_is_built_from(dist):
    with tarfile.open(dist / f"archdsl-{VERSION}.tar.gz") as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    expected = {"setup.py", "pyproject.toml", "README.md", "LICENSE", "grammar/archdsl.lark",
                *(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.arch")),
                *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))}
    assert expected <= names
    assert not any(n.startswith("tests/") for n in names)  # the tests need the whole checkout


def test_an_installed_wheel_runs_from_another_directory_with_its_own_files(dist, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                    str(site), str(dist / f"archdsl-{VERSION}-py3-none-any.whl")], check=True, timeout=120,
                   capture_output=True)
    (tmp_path / "user.arch").write_text('import "lenet.arch"\nsmall = lenet(classes = 5)\n')
    code = ("import sys\nfrom pathlib import Path\nimport archdsl\nfrom archdsl.cli import main\n"
            "from archdsl.resources import grammar_file, library_dir\n"
            "for p in (archdsl.__file__, grammar_file(), library_dir()):\n"
            "    assert Path(p).is_relative_to(sys.argv[1]), p\n"
            "sys.exit(main(['check', 'user.arch', 'resnet50', 'lenet.arch']) or main(['list', '--library']))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ARCHDSL_PATH", None)
    result = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("user.arch: ok (1 networks")
    assert lines[1].startswith(f"resnet50 ({site / 'archdsl' / 'specs' / 'resnet.arch'}): ok (1 networks, ")
    assert lines[2].startswith(f"lenet.arch ({site / 'archdsl' / 'specs' / 'lenet.arch'}): ok (")
    listed = [line for line in lines[3:] if not line.startswith(" ")]
    assert listed == [f"{site / 'archdsl' / 'specs' / p.name}:" for p in sorted((ROOT / "specs").glob("*.arch"))]
