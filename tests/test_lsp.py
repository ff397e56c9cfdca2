"""`archdsl lsp` driven as an editor drives it: a real subprocess speaking JSON-RPC over stdio
(tests/lsp_client.py): initialize, didOpen, didChange, hover, definition, completion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archdsl.cli import main
from tests.lsp_client import LspClient

ROOT = Path(__file__).resolve().parents[1]

LIB = """\
# blocks only: measured in the networks that import this file
block unit(c) {
  y = conv(c, 3, bias = false) -> bn
  relu
}
"""

MAIN = """\
import "lib.arch"

network small(width = 16) {
  input image: [3, 32, 32]
  conv(width, 3) as stem
  for i in range(2) { unit(width) as "unit{i + 1}" }
  feat = maxpool(2)
  output logits = feat -> gap -> fc(10)
}

tiny = small(width = 8)
"""


def position(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """0-based line and character of `needle` (plus offset) in `text`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lsp")
    (folder / "lib.arch").write_text(LIB)
    (folder / "main.arch").write_text(MAIN)
    client = LspClient(ROOT)
    capabilities = client.initialize(folder)["capabilities"]
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert capabilities["completionProvider"]
    uri = client.open(folder / "main.arch", MAIN)
    assert client.diagnostics(uri, 1) == []
    yield client, folder, uri
    client.close()


def hover_text(client, uri, text, needle, offset=0) -> str:
    result = client.hover(uri, *position(text, needle, offset))
    assert result is not None, needle
    return result["contents"]["value"]


def test_hover_on_a_layer_shows_shape_params_and_macs(server):
    client, _, uri = server
    result = client.hover(uri, *position(MAIN, "conv(width, 3)", 1))
    assert result["contents"]["value"] == ("**conv** `stem` → `[16, 32, 32]`\n\n"
                                           "448 params · 442,368 MACs\n\n_in small_")
    assert result["range"] == {"start": {"line": 4, "character": 2}, "end": {"line": 4, "character": 24}}


def test_hover_on_a_block_instance_lists_each_instance(server):
    client, _, uri = server
    text = hover_text(client, uri, MAIN, "unit(width)")
    assert text.startswith("**unit** (block): 2 instances in small, 4,672 params · 4,718,592 MACs in all")
    assert "- `unit1` → `[16, 32, 32]`, 2,336 params · 2,359,296 MACs" in text
    assert "- `unit2` → `[16, 32, 32]`, 2,336 params · 2,359,296 MACs" in text


def test_hover_on_named_tensors(server):
    client, _, uri = server
    assert hover_text(client, uri, MAIN, "feat =").startswith("tensor **feat** `maxpool1` → `[16, 16, 16]`")
    assert hover_text(client, uri, MAIN, "logits").startswith("tensor **logits** `fc1` → `[10]`\n\n170 params · 160 MACs")
    assert hover_text(client, uri, MAIN, "image").startswith("tensor **image** `image` → `[3, 32, 32]`")


def test_hover_in_a_file_of_blocks_uses_the_networks_that_import_it(server):
    client, folder, _ = server
    lib = client.open(folder / "lib.arch", LIB)
    assert client.diagnostics(lib, 1) == []
    text = hover_text(client, lib, LIB, "y =")
    assert text.startswith("tensor **y**: 2 instances in small, 64 params · 0 MACs in all")  # the bn that made it
    assert "- `unit1.bn1` → `[16, 32, 32]`, 32 params · 0 MACs" in text


def test_definition_of_blocks_networks_tensors_and_imports(server):
    client, folder, uri = server
    lib_uri = (folder / "lib.arch").resolve().as_uri()
    assert client.definition(uri, *position(MAIN, "unit(width)", 2)) == {
        "uri": lib_uri, "range": {"start": {"line": 1, "character": 6}, "end": {"line": 1, "character": 10}}}
    assert client.definition(uri, *position(MAIN, "small(width = 8)")) == {
        "uri": uri, "range": {"start": {"line": 2, "character": 8}, "end": {"line": 2, "character": 13}}}
    assert client.definition(uri, *position(MAIN, "feat -> gap")) == {
        "uri": uri, "range": {"start": {"line": 6, "character": 2}, "end": {"line": 6, "character": 6}}}
    assert client.definition(uri, *position(MAIN, "width, 3")) == {
        "uri": uri, "range": {"start": {"line": 2, "character": 14}, "end": {"line": 2, "character": 19}}}
    assert client.definition(uri, *position(MAIN, "lib.arch", 3)) == {
        "uri": lib_uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}


def test_completion_offers_ops_with_their_signatures(server):
    client, _, uri = server
    result = client.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                         "position": {"line": 6, "character": 9}})
    items = {item["label"]: item for item in result["items"]}
    assert items["conv"]["detail"].startswith('conv(out, kernel, stride=1, pad="half", dilation=1, groups=1')
    assert items["maxpool"]["detail"].startswith("maxpool(kernel, stride=")
    assert items["residual"]["detail"] == 'residual(shortcut="B", drop_path=none)'
    assert items["unit"]["detail"] == "unit(c)"
    assert "network" in items


def _check_output(tmp_path: Path, text: str, capsys) -> list[tuple[int, int, int, str]]:
    """(line, col, caret width, message) of each error `archdsl check` prints for `text`."""
    path = tmp_path / "main.arch"
    path.write_text(text)
    main(["check", str(path)])
    err = capsys.readouterr().err
    found = []
    for match in re.finditer(r"^.*main\.arch:(\d+):(\d+): error: (.*)\n(?:.*\n){2}.*?\| *( *)(\^+)", err, re.MULTILINE):
        found.append((int(match[1]), int(match[2]), len(match[5]), match[3]))
    return found


@pytest.mark.parametrize("edit", [
    ("conv(width, 3) as stem", "convv(width, 3) as stem"),              # unknown op
    ("fc(10)", "fc(10, bias = 2)"),                                       # wrong argument type
    ("feat -> gap", "feet -> gap"),                                       # unknown name
    ("input image: [3, 32, 32]", "input image: [3, 32 32]"),              # syntax error
    ("maxpool(2)", "maxpool(64)"),                                        # shape error
])
def test_diagnostics_as_you_type_match_archdsl_check(server, tmp_path, capsys, edit):
    client, _, uri = server
    broken = MAIN.replace(*edit)
    (tmp_path / "lib.arch").write_text(LIB)
    expected = _check_output(tmp_path, broken, capsys)
    assert expected
    client.change(uri, broken, 10)
    got = client.diagnostics(uri, 10)
    assert [(d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1,
             d["range"]["end"]["character"] - d["range"]["start"]["character"], d["message"].split("\nhelp: ")[0])
            for d in got] == expected
    client.change(uri, MAIN, 11)
    assert client.diagnostics(uri, 11) == []


def test_incremental_changes_as_editors_send_them(server):
    client, _, uri = server
    line, character = position(MAIN, "maxpool(2)", len("maxpool("))
    edit = {"range": {"start": {"line": line, "character": character},
                      "end": {"line": line, "character": character + 1}}, "text": "64"}
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 20}, "contentChanges": [edit]})
    diagnostics = client.diagnostics(uri, 20)
    assert [d["message"].split("\n")[0] for d in diagnostics] == [  # network small, then variant tiny
        "a 64x64 window does not fit the [16, 32, 32] input", "a 64x64 window does not fit the [8, 32, 32] input"]
    assert {(d["range"]["start"]["character"], d["range"]["end"]["character"]) for d in diagnostics} == {(9, 20)}
    client.change(uri, MAIN, 21)
    assert client.diagnostics(uri, 21) == []


def test_hover_finds_the_network_that_takes_a_branch(tmp_path):
    """A line another network skips (here `deep` is off by default) is measured in the variant that runs it."""
    from archdsl.editor.analysis import analyse, hover

    text = """\
block a(c) { conv(c, 1) }
block b(c) { conv(c, 3) }
network net(deep = false) {
  input x: [4, 8, 8]
  if deep { b(8) as body } else { a(8) as body }
  output y = gap
}
deep_net = net(deep = true)
"""
    path = tmp_path / "switch.arch"
    path.write_text(text)
    analysis = analyse(text, str(path))
    line, character = position(text, "b(8)")
    found, where = hover(analysis, line + 1, character + 1)
    assert found == "**b** (block) `body` → `[8, 8, 8]`\n\n296 params · 18,432 MACs\n\n_in deep_net_"
    assert (where.line, where.col) == (line + 1, character + 1)
    line, character = position(text, "a(8)")
    assert hover(analysis, line + 1, character + 1)[0].endswith("_in net_")
