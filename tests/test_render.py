"""Diagrams: the drawn view, the DOT it becomes, and real files from Graphviz's `dot`."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import graphviz
import pytest

from archdsl.api import build_ir
from archdsl.cli import main
from archdsl.diagnostics import ArchError, UsageError
from archdsl.render import LEGIBLE, RenderOptions, build_view, render, to_digraph, write

SPECS = Path(__file__).resolve().parents[1] / "specs"

RESNET = """
block basic(c, stride = 1) {
  residual(shortcut = "B") {
    conv(c, 3, stride = stride, bias = false) -> bn -> relu
    conv(c, 3, bias = false) -> bn
  }
  relu
}
network tiny(n = 3) {
  input image: [3, 32, 32]
  conv(16, 3, bias = false) -> bn -> relu
  group "stage1" { for i in range(n) { basic(16) as "block{i}" } }
  group "stage2" { basic(32, stride = 2) as "block0"; basic(32) as "block1" }
  output logits = gap -> fc(10)
}
"""

MIXED = """
block unit(c) { conv(c, 1) -> relu }
network mixed() {
  input x: [24, 16, 16]
  concat as inc {
    branch a { conv(8, 1) }
    branch b { conv(8, 3) -> relu }
    branch { maxpool(3, stride = 1, pad = 1) }
  }
  highway(kernel = 3, bias = -2) { conv(40, 3) -> relu }
  groups(2) as g { conv(20, 3) }
  shuffle(4)
  dense(3) { bn -> relu -> conv(12, 3) }
  unit(32) as outer
  output y = gap -> fc(5)
}
"""

CLIQUE = """
network cliq() {
  input image: [3, 32, 32]
  conv(64, 3)
  clique(4, 36) as block1
  output logits = gap -> fc(10)
}
"""


def view(text: str, **options):
    return build_view(build_ir(text), RenderOptions(**options))


def edges_in_dot(source: str) -> list[str]:
    """Drawn edge statements (invisible layout helpers left out)."""
    return [line.strip() for line in source.splitlines() if " -> " in line and "style=invis" not in line]


# ---------------------------------------------------------------- full detail


def test_full_detail_draws_one_edge_per_ir_edge_and_a_cluster_per_scope():
    for text in (RESNET, MIXED, CLIQUE):
        g = build_ir(text)
        v = build_view(g, RenderOptions(detail="layers"))
        assert len(v.nodes) == g.number_of_nodes() + len(g.graph["outputs"])
        ir_edges = [e for e in v.edges if not e.head.startswith("output/")]
        assert len(ir_edges) == g.number_of_edges()
        assert sorted((e.tail, e.head) for e in ir_edges) == sorted((u, v) for u, v in g.edges())
        source = to_digraph(v).source
        assert len(edges_in_dot(source)) == g.number_of_edges() + len(g.graph["outputs"])
        for scope in g.graph["scopes"]:
            assert re.search(rf'subgraph "?cluster_{re.escape(scope)}"? {{', source), scope


def test_layer_labels_come_from_the_ops():
    v = view(RESNET, detail="layers")
    assert v.nodes["conv1"].label == "3x3 conv, 16"
    assert v.nodes["stage2.block0.conv1"].label == "3x3 conv, 32, /2"
    assert v.nodes["stage2.block0.shortcut.conv1"].label == "1x1 conv, 32, /2"
    assert v.nodes["fc1"].label == "fc, 10"
    source = to_digraph(v).source
    assert 'label=<3x3 conv, 32, /2>' in source
    add = re.search(r'"stage1.block0.add1" \[(.*)\]', source).group(1)
    assert "label=\"+\"" in add and "shape=circle" in add  # a sum is a small circled plus


def test_connection_kinds_are_drawn_distinctly():
    v = view(MIXED, detail="layers")
    source = to_digraph(v).source
    gate_inputs = sorted(e.role for e in v.edges if e.head == "highway1.gate")
    assert gate_inputs == ["H", "T", "carry"]
    assert re.search(r'"highway1.sigmoid1" -> "highway1.gate" \[label=" T " [^]]*color="#7d3c98"', source)
    assert re.search(r'\bshuffle1 \[label=<shuffle, g=4>[^]]*shape=hexagon', source)
    assert re.search(r'"inc.concat1" \[label=<concat>[^]]*shape=box', source)
    assert "cluster_g.group1" in source and "cluster_g.group2" in source


def layout(v, **options) -> dict[str, tuple[float, float]]:
    """Node positions as Graphviz's `dot` lays the drawing out."""
    source = to_digraph(v, RenderOptions(**options)).source
    plain = subprocess.run(["dot", "-Tplain"], input=source.encode(), capture_output=True, check=True).stdout.decode()
    return {parts[1].strip('"'): (float(parts[2]), float(parts[3]))
            for parts in map(str.split, plain.splitlines()) if parts[0] == "node"}


def test_grouped_paths_are_laid_out_side_by_side_in_order():
    (x1, y1), (x2, y2) = (layout(view(MIXED, detail="layers"))[n] for n in ("g.group1.conv1", "g.group2.conv1"))
    assert y1 == y2 and x1 < x2


@pytest.mark.parametrize("network, first, second", [
    ("alexnet", "conv1_2.tower1.conv1", "conv1_2.tower2.conv1"),
    ("alexnet", "conv3_5.tower1.conv3", "conv3_5.tower2.conv3"),
    ("alexnet", "fc7.tower1.fc", "fc7.tower2.fc"),
])
@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_towers_are_drawn_in_the_specs_order(network, first, second, direction):
    """dot ignores `ordering` across clusters (AlexNet's towers came out right to left); checked and fixed."""
    v = build_view(build_ir(SPECS / "alexnet.arch", network), RenderOptions(detail="layers", direction=direction))
    (x1, y1), (x2, y2) = (layout(v, detail="layers", direction=direction)[n] for n in (first, second))
    assert (x1 < x2 and y1 == y2) if direction == "TB" else (y1 > y2 and x1 == x2)


# ---------------------------------------------------------------- collapsing and folding


def test_blocks_detail_draws_one_node_per_block_instance():
    v = view(RESNET, detail="blocks")
    blocks = [n for n in v.nodes.values() if n.role == "block"]
    assert [n.id for n in blocks] == [f"stage1.block{i}/block" for i in range(3)] + [
        "stage2.block0/block", "stage2.block1/block"]
    # arguments that differ between instances are shown, ones common to all are not
    assert (blocks[3].label, blocks[3].lines) == ("basic", ["c=32, stride=2"])
    assert {c.scope for c in v.clusters.values()} == {"stage1", "stage2"}
    assert sum(n.params for n in blocks) + v.nodes["conv1"].params + v.nodes["bn1"].params + v.nodes[
        "fc1"].params == sum(d["params"] for _, d in build_ir(RESNET).nodes(data=True))
    assert [(e.tail, e.head) for e in v.edges[:5]] == [
        ("image", "conv1"), ("conv1", "bn1"), ("bn1", "relu1"), ("relu1", "stage1.block0/block"),
        ("stage1.block0/block", "stage1.block1/block")]


def test_folding_marks_chains_of_identical_blocks_x_n():
    v = view(RESNET, detail="blocks", fold=True)
    blocks = {n.id: n for n in v.nodes.values() if n.role == "block"}
    assert list(blocks) == ["stage1.block0/block", "stage2.block0/block", "stage2.block1/block"]
    assert blocks["stage1.block0/block"].label == "basic x3"
    assert 'peripheries=2' in re.search(r'"stage1.block0/block" \[(.*)\]', to_digraph(v).source).group(1)
    expanded = view(RESNET, detail="layers", fold=True)
    cluster = expanded.clusters["cluster_stage1.block0"]
    assert (cluster.count, cluster.label) == (3, "basic x3\tblock0..block2")
    # the folded block is drawn once: no edge from its output back to its own input
    assert not any(e.tail.startswith("stage1.block0") and e.head == "stage1.block0.conv1" for e in expanded.edges)
    assert ("stage1.block0.relu2", "stage2.block0.conv1") in {(e.tail, e.head) for e in expanded.edges}


def test_dense_block_label_names_its_layers_and_growth():
    v = view(MIXED, detail="blocks")
    dense = v.nodes["dense1/block"]
    assert (dense.label, dense.lines) == ("dense block x3", ["k=12"])
    assert v.nodes["highway1/block"].lines == ["bias=-2.0"]  # kernel=3 is the default


def test_expand_and_collapse_by_name_and_depth():
    v = view(RESNET, detail="blocks", expand=("stage2.block0",))
    assert "stage2.block0.conv1" in v.nodes and "stage2.block1/block" in v.nodes
    v = view(RESNET, detail="layers", collapse=("basic",))
    assert sum(n.role == "block" for n in v.nodes.values()) == 5
    v = view(RESNET, detail=0)
    assert [n.id for n in v.nodes.values() if n.role == "block"] == ["stage1/block", "stage2/block"]
    v = view(RESNET, detail=1, expand=("stage1.block*",))
    assert "stage1.block2.add1" in v.nodes and "stage2.block0/block" in v.nodes
    with pytest.raises(UsageError, match="no block or scope named 'stage9' in tiny"):
        view(RESNET, expand=("stage9",))
    with pytest.raises(UsageError, match="unknown level of detail 'most'"):
        view(RESNET, detail="most")


def test_automatic_detail_keeps_small_networks_whole_and_says_so():
    v = view(RESNET)
    assert (v.detail, v.fold, v.note) == ("layers", False, "every layer (42 layers)")
    v = view(RESNET.replace("n = 3", "n = 12"))
    assert len(v.nodes) <= LEGIBLE and v.detail == "layers" and v.fold  # each distinct block drawn once, open
    assert v.note.startswith("105 layers drawn as 30 nodes (detail 'layers', repeated blocks folded), chosen "
                             "automatically because drawing every layer takes over 60 nodes")
    v = view(RESNET.replace("n = 3", "n = 12"), fold=False)
    assert (v.detail, len(v.nodes)) == ("blocks", 21)


def test_a_1000_layer_network_renders_in_seconds(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from render_speed import deep_spec

    start = time.perf_counter()
    g = build_ir(deep_spec(1000))
    v = build_view(g, RenderOptions())
    write(to_digraph(v), tmp_path / "deep.svg")
    assert time.perf_counter() - start < 5
    assert v.layers == 1005 and v.fold and len(v.nodes) <= LEGIBLE
    assert "1005 layers drawn as" in v.note and "repeated blocks folded" in v.note
    assert v.clusters["cluster_unit0"].label == "unit x143\tunit0..unit142"


# ---------------------------------------------------------------- clique blocks


def test_clique_feedback_links_are_dashed_and_colored():
    g = build_ir(CLIQUE)
    v = build_view(g, RenderOptions())
    feedback = [(u, w) for u, w, d in g.edges(data=True) if d["kind"] == "feedback"]
    assert len(feedback) == 6
    lines = edges_in_dot(to_digraph(v).source)
    dashed = [line for line in lines if "style=dashed" in line]
    assert len(dashed) == 6 and all('color="#c0392b"' in line for line in dashed)
    assert {tuple(re.findall(r'"([^"]+)"', line)[:2]) for line in dashed} == set(feedback)
    gray = [line for line in edges_in_dot(to_digraph(v, RenderOptions(theme="gray")).source) if "dashed" in line]
    assert len(gray) == 6  # still told apart without color
    assert v.clusters["cluster_block1"].rows == [[f"block1.x{i}" for i in range(1, 5)]]


def test_clique_unrolled_shows_both_stages():
    v = view(CLIQUE, unroll=True)
    stage2 = [n for n in v.nodes.values() if n.stage == "II"]
    assert [n.id for n in stage2] == [f"block1.x{i}/II" for i in range(1, 5)]
    assert v.clusters["cluster_block1/stage II"].rows == [[n.id for n in stage2]]
    feedback = sorted((e.tail, e.head) for e in v.edges if e.kind == "feedback")
    assert feedback == sorted((f"block1.x{j}", f"block1.x{i}/II") for i in range(1, 5) for j in range(i + 1, 5))
    forward2 = sorted((e.tail, e.head) for e in v.edges if e.head.endswith("/II") and e.kind == "data")
    assert forward2 == sorted((f"block1.x{j}/II", f"block1.x{i}/II") for i in range(1, 5) for j in range(1, i))
    transit = sorted(e.tail for e in v.edges if e.head == "block1.transit")
    assert transit == [f"block1.x{i}/II" for i in range(1, 5)]


# ---------------------------------------------------------------- files, themes, determinism


def test_gray_theme_uses_no_color():
    source = to_digraph(view(MIXED, detail="layers"), RenderOptions(theme="gray")).source
    colors = set(re.findall(r'#([0-9a-f]{6})', source))
    assert colors and all(c[0:2] == c[2:4] == c[4:6] for c in colors)


@pytest.mark.parametrize("fmt", ["svg", "pdf", "png", "dot"])
def test_output_is_deterministic(tmp_path, fmt):
    dg = render(CLIQUE, options=RenderOptions(params=True, shapes=True))
    first = write(dg, tmp_path / f"a.{fmt}").read_bytes()
    if fmt == "pdf":
        time.sleep(1.1)  # cairo's creation date would change
    second = write(render(CLIQUE, options=RenderOptions(params=True, shapes=True)), tmp_path / f"b.{fmt}").read_bytes()
    assert first == second
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, no leftovers


def test_pdf_embeds_its_fonts(tmp_path):
    data = write(render(RESNET), tmp_path / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF") and b"/FontFile2" in data  # embedded (subset) font programs


def test_missing_dot_says_how_to_install_and_still_writes_the_dot_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ArchError) as info:
        write(render(RESNET), tmp_path / "out.pdf")
    text = info.value.render()
    assert "Graphviz's 'dot' program was not found on PATH" in text and "apt-get install graphviz" in text
    assert (tmp_path / "out.dot").read_text().startswith("digraph tiny {")
    assert not (tmp_path / "out.pdf").exists()


def test_unknown_output_format(tmp_path):
    with pytest.raises(UsageError, match="cannot tell the output format from 'out.jpeg'"):
        write(render(RESNET), tmp_path / "out.jpeg")


def test_python_api_returns_a_digraph_to_tweak(tmp_path):
    g = build_ir(RESNET)
    dg = render(g, options=RenderOptions(direction="LR", shapes=True))
    assert isinstance(dg, graphviz.Digraph) and "rankdir=LR" in dg.source
    assert re.search(r'"stage1.block0.relu2" -> "stage1.block1.conv1" \[[^]]*label=" 16×32×32 "', dg.source)
    dg.attr(label="Figure 1")
    assert "Figure 1" in write(dg, tmp_path / "f.svg").read_text()


def test_cli_render(tmp_path, capsys):
    spec = tmp_path / "tiny.arch"
    spec.write_text(RESNET)
    out = tmp_path / "tiny.svg"
    assert main(["render", str(spec), "-D", "n=12", "-o", str(out), "--fold", "--theme", "gray"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: tiny, 105 layers drawn as ") and "repeated blocks folded" in printed
    assert out.read_text().startswith("<?xml")
    assert main(["render", str(spec), "-o", str(tmp_path / "t.svg"), "--collapse", "nope"]) == 2


# ---------------------------------------------------------------- every spec, with the real dot


def _spec_files():
    return sorted(SPECS.glob("*.arch"))


@pytest.mark.parametrize("path", _spec_files(), ids=lambda p: p.name)
def test_every_spec_renders_to_svg_and_pdf(path, tmp_path):
    dg = render(build_ir(path))  # the file's default network or variant, at the default detail
    svg = write(dg, tmp_path / "out.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert write(dg, tmp_path / "out.pdf").read_bytes().startswith(b"%PDF")
