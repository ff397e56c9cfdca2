"""`archdsl render -o net.tex`: a TikZ picture with dot's layout, and with --standalone a
document that pdflatex compiles (run when pdflatex is installed: scripts/test.sh installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import graphviz
import pytest

from archdsl.api import build_ir
from archdsl.cli import main
from archdsl.render import RenderOptions, build_view, to_digraph
from archdsl.render.tikz import tikz_from_json

ROOT = Path(__file__).resolve().parents[1]
CLIQUE = ["render", str(ROOT / "specs" / "cliquenet.arch"), "--detail", "0", "--expand", "block1", "--unroll",
          "--shapes", "--params"]


def test_a_picture_with_every_label_at_dots_positions(tmp_path, capsys):
    out = tmp_path / "net.tex"
    assert main([*CLIQUE, "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    tex = out.read_text()
    assert tex.startswith("% archdsl: the diagram cliquenet_k36_t12 as a TikZ picture")
    assert "\\documentclass" not in tex and tex.count("\\begin{tikzpicture}") == 1
    options = RenderOptions(detail=0, expand=("block1",), unroll=True, shapes=True, params=True)
    dg = to_digraph(build_view(build_ir(ROOT / "specs" / "cliquenet.arch", "cliquenet_k36_t12"), options), options)
    layout = json.loads(graphviz.pipe("dot", "json", dg.source.encode()))
    texts = [(op["pt"], op["text"].strip()) for item in layout["objects"] + layout["edges"]
             for key in ("_ldraw_", "_tldraw_", "_hldraw_") for op in item.get(key, []) if op["op"] == "T"]
    assert len(texts) > 40
    nodes = re.findall(r"\\node\[[^\]]*\] at \(([-\d.]+),([-\d.]+)\) \{(.*)\};", tex)
    assert len(nodes) == len([t for t in texts if t[1]])
    for (x, y), text in texts:
        if text:
            escaped = text.replace("×", "\\ensuremath{\\times}")
            assert any(abs(float(nx) - x) < 0.01 and abs(float(ny) - y) < 0.01 and t == escaped
                       for nx, ny, t in nodes), text
    assert "ellipse (" in tex  # clique layers
    assert ", dashed]" in tex  # feedback links
    assert "\\bfseries" in tex  # block names
    x0, y0, x1, y1 = (float(v) for v in layout["bb"].split(","))
    assert f"\\useasboundingbox ({x0 - 4:g},{y0 - 4:g}) rectangle ({x1 + 4:g},{y1 + 4:g});" in tex


def test_text_from_the_spec_is_escaped_for_latex():
    layout = {"name": "n", "bb": "0,0,10,10", "objects": [{"name": "a", "_ldraw_": [
        {"op": "c", "grad": "none", "color": "#000000"},
        {"op": "T", "pt": [1, 2], "align": "c", "width": 5, "text": r"a_b 50% #1 & {x} $y \z ~^"}]}], "edges": []}
    tex = tikz_from_json(json.dumps(layout))
    assert r"{a\_b 50\% \#1 \& \{x\} \$y \textbackslash{}z \~{}\^{}};" in tex


def test_standalone_needs_a_tex_output(tmp_path, capsys):
    assert main([*CLIQUE, "-o", str(tmp_path / "net.pdf"), "--standalone"]) == 2
    assert "--standalone makes a LaTeX document, but 'net.pdf' is not a .tex file" in capsys.readouterr().err


def _pdflatex(folder: Path, name: str) -> str:
    """pdflatex's report of the PDF it wrote ("Output written on x.pdf (1 page, ...")."""
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name], check=False, cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (folder / name).with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert "Overfull" not in run.stdout
    return re.search(r"Output written on .*", run.stdout).group()


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (scripts/test.sh installs texlive-latex-base and texlive-pictures)")
def test_pdflatex_compiles_the_standalone_document_and_the_picture_in_a_paper(tmp_path):
    assert main([*CLIQUE, "-o", str(tmp_path / "alone.tex"), "--standalone"]) == 0
    assert "(1 page," in _pdflatex(tmp_path, "alone.tex")
    assert main(["render", str(ROOT / "specs" / "resnet.arch"), "-n", "resnet50", "--detail", "blocks", "--fold",
                 "--direction", "LR", "--theme", "gray", "-o", str(tmp_path / "resnet50.tex")]) == 0
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{tikz}\n\\begin{document}\n"
                                        "\\begin{figure}\\centering\\resizebox{\\linewidth}{!}{\\input{resnet50.tex}}"
                                        "\\caption{ResNet-50}\\end{figure}\n\\end{document}\n")
    assert "(1 page," in _pdflatex(tmp_path, "paper.tex")
