"""The Pygments lexer (plugin `arch`) and the editor grammars in editors/: made from the
grammar's reserved words and the op registry, lexing every spec and doc example cleanly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from archdsl.constructs import CONSTRUCTS
from archdsl.editor import textmate, vocabulary
from archdsl.editor.lexer import ArchLexer
from archdsl.ops import OPS
from archdsl.syntax.parser import GRAMMAR

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```arch\n(.*?)^```$", re.DOTALL | re.MULTILINE)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "editors" / "README.md"]


def tokens(text: str) -> list[tuple]:
    return [(t, v) for t, v in ArchLexer().get_tokens(text) if v.strip()]


def test_the_lexer_is_a_registered_plugin():
    assert isinstance(get_lexer_by_name("arch"), ArchLexer)
    assert find_lexer_class_for_filename("resnet.arch") is ArchLexer
    spec = ROOT / "specs" / "lenet.arch"
    html = subprocess.run([sys.executable, "-m", "pygments", "-l", "arch", "-f", "html", str(spec)],
                          capture_output=True, text=True, check=True).stdout
    assert '<span class="k">network</span>' not in html  # declarations are their own class
    assert '<span class="kd">network</span>' in html and '<span class="nb">conv</span>' in html


def test_token_classes():
    text = 'import "lib.arch"\nblock b(c = 1.5e-3) { conv(c, 3) -> relu as "x{i + 1}" }  # note\n' \
           "let t = true and not none; expect params == 11_689_512 within 1 percent"
    got = tokens(text)
    assert (Keyword.Namespace, "import") in got and (String.Double, "lib.arch") in got
    assert (Keyword.Declaration, "block") in got and (Name.Function, "b") in got
    assert (Number.Float, "1.5e-3") in got and (Number.Integer, "11_689_512") in got
    assert (Name.Builtin, "conv") in got and (Name.Builtin, "relu") in got
    assert (Operator, "->") in got and (Operator, "==") in got
    assert (String.Interpol, "{") in got and (Name, "i") in got and (String.Interpol, "}") in got
    assert (Comment.Single, "# note") in got
    assert (Keyword.Constant, "true") in got and (Keyword.Constant, "none") in got
    assert (Operator.Word, "and") in got and (Operator.Word, "percent") in got
    assert (Keyword, "expect") in got and (Keyword, "within") in got and (Keyword, "as") in got


def test_word_lists_come_from_the_grammar_and_the_registries():
    reserved = re.search(r"^NAME\s*:\s*/\(\?!\(([^)]*)\)", GRAMMAR.read_text(), re.MULTILINE).group(1).split("|")
    assert set(vocabulary.reserved_words()) == set(reserved)
    assert set(vocabulary.op_names()) == set(OPS) | set(CONSTRUCTS)
    for word in reserved:
        (kind, value), *_ = tokens(word)
        assert value == word and kind in Keyword or kind in Operator.Word, word
    for name in OPS:
        assert tokens(f"x -> {name}")[-1] == (Name.Builtin, name)


def test_no_error_tokens_in_specs_and_doc_examples():
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "specs").glob("*.arch"))}
    for page in PAGES:
        for i, block in enumerate(FENCE.findall(page.read_text())):
            texts[f"{page.relative_to(ROOT)} block {i + 1}"] = block
    assert len([k for k in texts if "block" in k]) >= 25
    errors = {name: [v for t, v in ArchLexer().get_tokens(text) if t is Error] for name, text in texts.items()}
    assert {name: bad for name, bad in errors.items() if bad} == {}


@pytest.mark.parametrize("name", sorted(textmate.FILES))
def test_committed_editor_files_are_up_to_date(name):
    assert (ROOT / "editors" / name).read_bytes() == textmate.FILES[name](), \
        f"editors/{name} is stale: run python scripts/make_editors.py"


def _rules(patterns: list, repository: dict):
    """The (match, scope) rules in the order TextMate tries them, includes resolved."""
    for rule in patterns:
        if "include" in rule:
            included = repository[rule["include"].lstrip("#")]
            yield from _rules(included.get("patterns", [included]), repository)
        elif "match" in rule:
            yield rule["match"], rule.get("name")


def test_textmate_grammar_scopes_the_vocabulary():
    grammar = json.loads((ROOT / "editors" / "vscode" / "syntaxes" / "arch.tmLanguage.json").read_text())
    assert grammar["scopeName"] == "source.arch"
    rules = [(re.compile(pattern), scope) for pattern, scope in _rules(grammar["patterns"], grammar["repository"])]

    def scope(word: str) -> str | None:
        return next((s for pattern, s in rules if (m := pattern.match(word)) and m.group() == word), None)

    for word in vocabulary.keywords():
        assert scope(word) in ("keyword.control.arch", "keyword.control.import.arch"), word
    for name in vocabulary.op_names():
        assert scope(name) == "support.function.arch", name
    assert scope("true") == "constant.language.arch" and scope("and") == "keyword.operator.logical.arch"
    assert scope("->") == "keyword.operator.arrow.arch" and scope("1_000") == "constant.numeric.integer.arch"
    assert scope("2.5e-3") == "constant.numeric.float.arch" and scope("# hi") == "comment.line.number-sign.arch"
