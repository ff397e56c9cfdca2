"""Every example in docs/language.md builds, and every error shown there is the exact text printed.

Conventions of the page: a ```arch block whose first line is `# file: NAME` is saved as NAME (for
other examples to import); every other ```arch block is saved as example.arch and checked like
`archdsl check` (all networks and variants build, all expectations hold) unless a ```text block
follows it, which is then the exact error. ```python blocks run in the same folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archdsl.diagnostics import ArchError, UsageError
from archdsl.elaborate import elaborate
from archdsl.loader import load_text
from archdsl.ops import OPS

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(page: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer((DOCS / page).read_text(encoding="utf-8"))]


def examples() -> list[tuple[str, str | None]]:
    """(arch text, expected error text or None) for every checked example."""
    found, items = [], blocks("language.md")
    for i, (lang, text) in enumerate(items):
        if lang != "arch" or text.startswith("# file:"):
            continue
        follower = items[i + 1] if i + 1 < len(items) else ("", "")
        found.append((text, follower[1].rstrip("\n") if follower[0] == "text" else None))
    return found


@pytest.fixture
def docs_dir(tmp_path, monkeypatch):
    for lang, text in blocks("language.md"):
        if lang == "arch" and text.startswith("# file:"):
            (tmp_path / text.splitlines()[0].removeprefix("# file:").strip()).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(text: str) -> int:
    """Build every network and variant like `archdsl check`; returns how many were built."""
    program = load_text(text, "example.arch")
    built = 0
    for target in program.targets():
        try:
            elaborate(program, target)
        except UsageError:
            assert program.networks[target].params, target  # only a network that needs -D values
            continue
        built += 1
    return built


def test_the_page_has_many_examples():
    assert len(examples()) >= 20
    assert sum(1 for _, error in examples() if error) >= 3


@pytest.mark.parametrize("index", range(len(examples())))
def test_example(index, docs_dir):
    text, expected_error = examples()[index]
    if expected_error is None:
        assert check(text) >= 1
        return
    with pytest.raises(ArchError) as info:
        check(text)
    assert info.value.render() == expected_error


def test_python_examples_run(docs_dir, capsys):
    code = [text for lang, text in blocks("language.md") if lang == "python"]
    assert code
    for text in code:
        exec(compile(text, "language.md", "exec"), {})  # noqa: S102  (the page's own examples)
    assert capsys.readouterr().out.startswith("resnet34 (resnet.arch)")


def test_every_op_is_in_the_reference_table():
    page = (DOCS / "language.md").read_text(encoding="utf-8")
    missing = [name for name in OPS if f"| `{name}(" not in page]
    assert missing == []


def test_every_construct_and_statement_has_an_example():
    code = "\n".join(text for lang, text in blocks("language.md") if lang == "arch")
    for word in ("import ", "let ", "block ", "network ", "input ", "output ", "repeat ", "for ", " in range(",
                 "enumerate(", "zip(", "if ", "elif ", "else ", "group ", "branch ", "expect ", "within ",
                 "percent", "residual(", "concat {", "sum {", "dense(", "highway(", "groups(", "clique(",
                 "shuffle(", "in.channels", " as ", "-> ", "[a, b] ->", '"A"', '"B"', '"C"', '"identity"',
                 '"none"', "[1, 16000]", "[3, 32, 32]", "[1, 16, 64, 64]", "[20]", "bias = -2"):
        assert word in code, word


def test_ir_page_shows_a_yaml_graph_and_the_conventions():
    page = (DOCS / "ir.md").read_text(encoding="utf-8")
    for fact in ("FLOPs = 2 x MACs", "running", "feedback", "MultiDiGraph", "to_yaml", "from_yaml"):
        assert fact in page, fact
    assert any(lang == "yaml" for lang, _ in blocks("ir.md"))
