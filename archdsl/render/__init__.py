"""Diagrams of networks for papers: archdsl IR -> Graphviz (DOT, SVG, PDF, PNG).

    from archdsl.render import RenderOptions, render, write
    dg = render("specs/resnet.arch", "resnet50", RenderOptions(detail="blocks"))
    dg.graph_attr["ranksep"] = "0.4"      # a plain graphviz.Digraph: tweak freely
    write(dg, "resnet50.pdf")

`render` takes a spec (path or text) or an IR graph; `build_view` (what is drawn) and
`to_digraph` (how) are the two stages behind it. See docs/render.md.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from archdsl.ir import Graph
from archdsl.render.dot import fixed_pdf_dates, misordered, to_digraph, write
from archdsl.render.view import LEGIBLE, RenderOptions, View, build_view


def render(source: str | Path | Graph, network: str | None = None, options: RenderOptions = RenderOptions(),
           **params) -> graphviz.Digraph:
    """A `graphviz.Digraph` of a spec (file path or text; `network` and `params` as in build_ir) or an IR."""
    if isinstance(source, Graph):
        g = source
    else:
        from archdsl.api import build_ir

        g = build_ir(source, network, **params)
    return to_digraph(build_view(g, options), options)


__all__ = ["LEGIBLE", "RenderOptions", "View", "build_view", "fixed_pdf_dates", "misordered", "render", "to_digraph", "write"]
