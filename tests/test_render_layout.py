"""Diagram layout checks that need Graphviz's `dot`: parallel paths and clique rows in the
spec's order under every option set of the gallery and the docs, in both directions; PNG
resolution; labels that do not repeat themselves and wrap."""

from __future__ import annotations

import dataclasses
import importlib.util
import struct
from pathlib import Path

import pytest

from archdsl.api import build_ir
from archdsl.cli import main
from archdsl.render import RenderOptions, build_view, misordered, to_digraph
from archdsl.render.dot import _digraph
from archdsl.render.view import wrap

ROOT = Path(__file__).resolve().parents[1]


def _gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "examples" / "gallery" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GALLERY = _gallery()
# The gallery's option sets, and those docs/render.md and the issue name for clique blocks.
CASES = [(file, network, options) for _, file, network, options, _ in GALLERY.GALLERY]
CASES += [("cliquenet.arch", "cliquenet_k36_t12", RenderOptions(detail=0, expand=("block1",), shapes=shapes,
                                                                 unroll=unroll, params=params))
          for shapes in (False, True) for unroll in (False, True) for params in (False, True)]
CASES += [(file, network, RenderOptions(shapes=shapes)) for _, file, network, _ in GALLERY.FAMILIES
          for shapes in (False, True)]
CASES += [("googlenet.arch", "inception_3a", RenderOptions(shapes=True, params=True, theme="gray")),
          ("alexnet.arch", "alexnet", RenderOptions(shapes=True)),
          ("inception_v4.arch", "inception_v4", RenderOptions(detail=1, expand=("inception_a*",), shapes=True)),
          ("cliquenet.arch", "cliquenet_k36_t12", RenderOptions(detail="layers", shapes=True, fold=True)),
          ("cliquenet.arch", "cliquenet_k24_t18", RenderOptions()),  # rows of 6: dot's remincross scrambles them
          ("cliquenet.arch", "cliquenet_k24_t18", RenderOptions(shapes=True, unroll=True))]


@pytest.mark.parametrize("direction", ["TB", "LR"])
@pytest.mark.parametrize(("file", "network", "options"), CASES,
                         ids=[f"{n}-{i}" for i, (_, n, _) in enumerate(CASES)])
def test_paths_and_clique_rows_keep_the_spec_order(file, network, options, direction):
    options = dataclasses.replace(options, direction=direction)
    view = build_view(build_ir(ROOT / "specs" / file, network), options)
    dg = to_digraph(view, options)
    assert misordered(view, dg, direction) == []


def test_the_order_check_sees_clique_rows_that_dot_scrambles():
    """The reported bug: with --shapes, edge labels made `dot` draw X4, X1, X3, X2; the check
    sees it (so to_digraph can redraw), and the drawing it settles on has X1..X4 in order."""
    options = RenderOptions(detail=0, expand=("block1",), shapes=True)
    view = build_view(build_ir(ROOT / "specs" / "cliquenet.arch", "cliquenet_k36_t12"), options)
    row = ["block1.x1", "block1.x2", "block1.x3", "block1.x4"]
    assert misordered(view, _digraph(view, options, set(), False)) == [row]
    dg = to_digraph(view, options)
    assert misordered(view, dg) == []
    assert "remincross=false" in dg.source  # laid out again without the final crossing reduction
    # clique links carry no shape labels (all the same, they piled up); each X shows its own shape
    assert '<X1<br/><font point-size="8">36×32×32</font>>' in dg.source
    assert not [line for line in dg.source.splitlines() if '"block1.x1" -> "block1.x2"' in line and "label" in line]


def test_a_tensor_shape_is_written_once_per_producer():
    text = """
network res() {
  input x: [8, 6, 6]
  conv(8, 3) as a
  residual { conv(8, 3) -> relu }
  output y = gap
}
"""
    options = RenderOptions(detail="layers", shapes=True)
    source = to_digraph(build_view(build_ir(text), options), options).source
    from_a = [line for line in source.splitlines() if line.strip().startswith("a -> ")]
    assert len(from_a) == 2  # the main path and the shortcut
    assert sum("8×6×6" in line for line in from_a) == 1


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_dpi_sets_png_resolution(tmp_path, capsys):
    spec = ROOT / "specs" / "lenet.arch"
    assert main(["render", str(spec), "-o", str(tmp_path / "a.png")]) == 0
    assert main(["render", str(spec), "-o", str(tmp_path / "b.png"), "--dpi", "100"]) == 0
    (w200, h200), (w100, h100) = _png_size(tmp_path / "a.png"), _png_size(tmp_path / "b.png")
    assert abs(w200 - 2 * w100) <= 2 and abs(h200 - 2 * h100) <= 2
    assert main(["render", str(spec), "-o", str(tmp_path / "c.png"), "--dpi", "0"]) == 2
    assert "--dpi must lie between 1 and 2400, found 0" in capsys.readouterr().err


def test_labels_leave_out_a_definition_the_name_already_says():
    view = build_view(build_ir(ROOT / "specs" / "cliquenet.arch", "cliquenet_k36_t12"), RenderOptions(detail="layers"))
    labels = {c.scope: c.label for c in view.clusters.values()}
    assert labels["transition1"] == "transition1"
    assert labels["head2"] == "head2"
    text = """
block unit(c) { conv(c, 1) -> relu }
block other(c) { conv(c, 3) }
network n() {
  input x: [4, 8, 8]
  unit(8) as unit3
  unit(8) as stem
  other(8) as unit_b
  output y = gap
}
"""
    labels = {c.scope: c.label for c in build_view(build_ir(text), RenderOptions(detail="layers")).clusters.values()}
    assert labels == {"unit3": "unit3", "stem": "stem: unit", "unit_b": "unit_b: other"}


def test_long_argument_lists_wrap():
    assert wrap(["row=[352, 192, 320, 160, 224, avg, 128]", "stride=2"]) == [
        "row=[352, 192, 320, 160, 224,", "avg, 128], stride=2"]
    assert wrap(["layers=4", "k=36", "dropout=0.2", "bottleneck=true"]) == [
        "layers=4, k=36, dropout=0.2", "bottleneck=true"]
    assert wrap(["c=64", "stride=2"]) == ["c=64, stride=2"]
    view = build_view(build_ir(ROOT / "specs" / "bn_inception.arch", "bn_inception"), RenderOptions(detail="blocks"))
    lines = [line for node in view.nodes.values() for line in node.lines]
    assert lines and max(map(len, lines)) <= 29


RATES = """
block unit(c, p) { conv(c, 3) -> relu -> dropout(p) }
network n() {
  input x: [8, 16, 16]
  for i in range(4) { unit(8, p = 0.1 * (i + 1)) as "u{i}" }
  output y = gap
}
"""


def test_a_run_whose_arguments_differ_only_where_the_drawing_does_not_show_them_folds_with_their_range():
    g = build_ir(RATES)
    shut = build_view(g, RenderOptions(detail="blocks", fold=True))
    assert [(n.label, n.lines) for n in shut.nodes.values() if n.role == "block"] == [("unit x4", ["p=0.1..0.4"])]
    # open, the blocks' dropout layers read differently: each is drawn
    opened = build_view(g, RenderOptions(detail="layers", fold=True))
    assert [c.label for c in opened.clusters.values()] == ["u0: unit", "u1: unit", "u2: unit", "u3: unit"]
    assert "dropout 0.4" in [n.label for n in opened.nodes.values()]


def test_an_open_run_with_an_undrawn_argument_names_its_range():
    text = RATES.replace("relu -> dropout(p)", "relu -> bn(eps = p / 100)")
    view_ = build_view(build_ir(text), RenderOptions(detail="layers", fold=True))
    assert [c.label for c in view_.clusters.values()] == ["unit x4 (p=0.1..0.4)\tu0..u3"]
    assert [n.label for n in view_.nodes.values()] == ["x", "3x3 conv, 8", "relu", "bn", "global avg pool", "y"]


def test_an_open_run_shows_the_range_of_a_schedule_argument(monkeypatch):
    """An op may declare arguments a network varies on a schedule (a drop-path rate): open runs
    fold over them, and the folded layer gives their range."""
    from archdsl.ops import OPS

    monkeypatch.setattr(type(OPS["dropout"]), "schedule_args", ("p",), raising=False)
    view_ = build_view(build_ir(RATES), RenderOptions(detail="layers", fold=True))
    assert [c.label for c in view_.clusters.values()] == ["unit x4 (p=0.1..0.4)\tu0..u3"]
    dropout = next(n for n in view_.nodes.values() if n.op == "dropout")
    assert (dropout.label, dropout.lines) == ("dropout 0.1", ["p=0.1..0.4"])
