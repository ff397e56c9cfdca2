"""Hostile input: every file in tests/hostile/ (the classes of issue 10 and every minimised fuzz
failure) runs through the CLI in a forked child with CPU, memory and time limits, and does what
its first lines say: `# expect: STATUS TEXT` (exit status, and text that stderr contains),
optionally `# command: compile|render|summary|list` (default: check). Files without `# expect`
(fuzz finds) must only keep the promise: exit 0, 1 or 2, no traceback, located spec errors.
Cases that need a file system set-up (FIFOs, symbolic links, output paths, file names) follow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fuzzing

HOSTILE = fuzzing.HOSTILE
FILES = sorted(p.name for p in HOSTILE.glob("*.arch") if p.is_file())


def header(path: Path) -> tuple[int | None, str, str]:
    """(status, text, command) from a hostile file's first lines."""
    status, text, command = None, "", "check"
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()[:3]:
        if m := re.match(r"# expect: (\d)(?: (.*))?$", line):
            status, text = int(m.group(1)), m.group(2) or ""
        if m := re.match(r"# command: ([a-z-]+)", line):
            command = m.group(1)
    return status, text, command


@pytest.fixture(scope="module", autouse=True)
def warm():
    fuzzing.warm()


def run(argv: list[str], cwd: Path) -> fuzzing.Result:
    result = fuzzing.run_cli([str(a) for a in argv], str(cwd))
    assert fuzzing.problem(result, [str(a) for a in argv]) is None, result.stderr
    return result


@pytest.mark.parametrize("name", FILES)
def test_hostile_file(name, tmp_path):
    path = HOSTILE / name
    status, text, command = header(path)
    argv = fuzzing.Case(b"", command, name).argv(str(path), str(tmp_path))
    result = run(argv, tmp_path)
    if status is not None:
        assert result.status == status, result.stderr
        assert text in result.stderr, result.stderr
    if result.status == 1:
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"{HOSTILE}/"), first  # file:line:col: error: ...
        assert "\x1b" not in result.stderr  # terminal escapes from the spec are printed escaped


def test_the_issue_classes_are_all_here():
    assert len([n for n in FILES if header(HOSTILE / n)[0] is not None]) >= 60


SPEC = "network n() {\n  input x: [3, 8, 8]\n  conv(4, 3)\n}\n"


def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.arch")
    (tmp_path / "main.arch").write_text('import "pipe.arch"\n' + SPEC)
    result = run(["check", tmp_path / "main.arch"], tmp_path)
    assert result.status == 1
    assert "cannot import 'pipe.arch': it is a FIFO (named pipe), not a spec file" in result.stderr
    result = run(["check", tmp_path / "pipe.arch"], tmp_path)
    assert (result.status, result.stderr.splitlines()[0]) == (
        2, f"error: cannot read {tmp_path}/pipe.arch: it is a FIFO (named pipe), not a spec file")
    assert run(["check", "/dev/zero"], tmp_path).status == 2


def test_symlink_loop_and_nul_in_paths(tmp_path):
    (tmp_path / "loop.arch").symlink_to(tmp_path / "loop.arch")
    (tmp_path / "main.arch").write_text('import "loop.arch"\n' + SPEC)
    result = run(["check", tmp_path / "main.arch"], tmp_path)
    assert "cannot import 'loop.arch': Too many levels of symbolic links" in result.stderr
    assert run(["check", tmp_path / "loop.arch"], tmp_path).status == 2


def test_a_file_that_is_too_large_is_refused_before_reading(tmp_path):
    (tmp_path / "big.arch").write_bytes(b"#" * 1_000_001)
    result = run(["check", tmp_path / "big.arch"], tmp_path)
    assert result.status == 2
    assert "it has 1,000,001 bytes, over the limit on the size of one spec file" in result.stderr
    result = run(["check", "--limit", "file_bytes=2000000", tmp_path / "big.arch"], tmp_path)
    assert (result.status, result.stdout) == (0, f"{tmp_path}/big.arch: ok (0 networks, 0 expectations met)\n")


def test_the_file_name_never_reaches_generated_code(tmp_path):
    name = 'x""" if __import__("os").system("touch PWNED") else """.arch'
    (tmp_path / name).write_text(SPEC)
    run(["compile", tmp_path / name, "-o", tmp_path / "out.py"], tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "out.py")], check=True, cwd=tmp_path)
    assert not (tmp_path / "PWNED").exists()
    assert '/x\\"\\"\\" if __import__(\\"os\\").system(\\"touch PWNED\\") else' in (tmp_path / "out.py").read_text()


@pytest.mark.parametrize("target, message", [
    ("/", "cannot write '/': it names a directory"),
    (".", "cannot write '.': it is a directory"),
    ("spec.arch/out.py", "cannot write 'spec.arch/out.py': spec.arch is not a directory"),
    ("/dev/null", "cannot write '/dev/null': it is a device"),
    ("fifo.py", "cannot write 'fifo.py': it is a FIFO (named pipe)"),
    ("link.py", "cannot write 'link.py': it is a symbolic link"),
    ("readonly.py", "cannot write 'readonly.py': it is read-only"),
])
@pytest.mark.parametrize("command", ["compile", "render"])
def test_output_paths_that_cannot_be_replaced(tmp_path, target, message, command):
    (tmp_path / "spec.arch").write_text(SPEC)
    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "readonly.py").write_text("keep")
    (tmp_path / "readonly.py").chmod(0o444)
    (tmp_path / "link.py").symlink_to(tmp_path / "readonly.py")
    if command == "render":
        target = target if target in ("/", ".") or target.startswith("/dev") else target.replace(".py", ".dot")
        message = message.replace(".py", ".dot")
        if "fifo" in target or "link" in target or "readonly" in target:
            return  # the same checks; the fixtures above are .py files
    result = run([command, "spec.arch", "-o", target], tmp_path)
    assert (result.status, result.stderr.splitlines()[0]) == (2, f"error: {message}")
    assert (tmp_path / "readonly.py").read_text() == "keep"


def test_a_replaced_output_keeps_its_mode(tmp_path):
    (tmp_path / "spec.arch").write_text(SPEC)
    (tmp_path / "out.py").write_text("old")
    (tmp_path / "out.py").chmod(0o640)
    assert run(["compile", "spec.arch", "-o", "out.py"], tmp_path).status == 0
    assert (tmp_path / "out.py").stat().st_mode & 0o777 == 0o640


def test_limits_are_raised_with_the_flag_or_the_environment(tmp_path, monkeypatch):
    (tmp_path / "spec.arch").write_text("network n() {\n  input x: [3, 8, 8]\n  repeat 30 { relu }\n}\n")
    result = run(["check", "--limit", "nodes=20", "spec.arch"], tmp_path)
    assert result.stderr.splitlines()[0] == ("spec.arch:3:15: error: over the limit on layers (IR nodes) of one "
                                             "network: 20")
    assert "= help: limit 'nodes'; raise it with --limit nodes=N or the environment variable " \
           "ARCHDSL_LIMIT_NODES=N" in result.stderr
    monkeypatch.setenv("ARCHDSL_LIMIT_NODES", "20")
    assert run(["check", "spec.arch"], tmp_path).status == 1
    assert run(["check", "--limit", "nodes=100", "spec.arch"], tmp_path).status == 0
    result = run(["check", "--limit", "nodez=1", "spec.arch"], tmp_path)
    assert (result.status, result.stderr.splitlines()[0]) == (2, "error: --limit: unknown limit 'nodez'")


def test_module_attributes_match_torch():
    from torch import nn

    from archdsl.names import MODULE_ATTRIBUTES

    assert {n for n in dir(nn.Module()) if not n.startswith("__")} <= MODULE_ATTRIBUTES


def test_the_limits_table_of_the_docs_is_the_registry():
    from archdsl.limits import LIMITS

    page = (fuzzing.ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| ([\d,]+) \| `--limit \1=N`, `(ARCHDSL_LIMIT_\w+)=N` \|$", page, re.MULTILINE)
    assert [(n, w, int(d.replace(",", "")), v) for n, w, d, v in rows] == \
        [(lim.name, lim.what, lim.default, lim.variable) for lim in LIMITS.values()]


def test_the_python_api_takes_deep_specs_too():
    import archdsl

    text = (HOSTILE / "nested_residuals_60.arch").read_text()
    assert len(archdsl.build_ir(text)) == 62  # 60 residuals around a relu: input, relu and 60 adds
    with pytest.raises(archdsl.ArchError) as info:
        archdsl.build_ir((HOSTILE / "deep_bodies.arch").read_text())
    assert "over the limit on nesting" in str(info.value)
