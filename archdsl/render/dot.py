"""The Graphviz back end: a `View` becomes a `graphviz.Digraph`, and a Digraph becomes a file.

`to_digraph` emits blocks as nested clusters (spec names as labels), layers and collapsed
blocks as styled nodes, and one edge per drawn connection. `write` produces .dot, .svg,
.pdf, .png or .tex (TikZ) through Graphviz's `dot`, atomically (temporary file, then rename) and
byte-for-byte reproducibly (the PDF creation date cairo stamps is replaced by a fixed one).
"""

from __future__ import annotations

import html
import itertools
import re
import subprocess
from pathlib import Path

import graphviz

from archdsl.diagnostics import ArchError, Diagnostic, UsageError
from archdsl.files import write_atomic
from archdsl.render.folding import INNER_KINDS
from archdsl.render.styles import GRAPH, THEMES, cluster_style, edge_style, node_style
from archdsl.render.tikz import tikz_from_json
from archdsl.render.view import RenderOptions, View
from archdsl.summary import human

FORMATS = ("svg", "pdf", "png", "dot", "gv", "tex")
DPI = 200  # PNG resolution: sharp on a slide
INSTALL_HELP = ("install Graphviz, which provides 'dot': apt-get install graphviz (Debian/Ubuntu), "
                "brew install graphviz (macOS), conda install -c conda-forge graphviz, or https://graphviz.org")


def to_digraph(view: View, options: RenderOptions = RenderOptions()) -> graphviz.Digraph:
    """The Graphviz drawing of `view`; the caller may change its attributes before writing it.

    Parallel paths (towers, branches) should read left to right in the spec's order, and
    clique layers X1..Xn too, but `dot` ignores `ordering` across clusters, and its final
    crossing reduction over the whole graph (`remincross`) or the room it makes for edge
    labels can scramble a row of nodes. When `dot` is installed, the layout is checked
    (`misordered`) and redrawn until it is right, trying in turn: the clusters of the blocks
    whose paths came out of order declared in reverse; no final crossing reduction; edge
    labels placed after the layout (`xlabel`) instead of inside it. Without a right one, the
    drawing with the fewest paths out of order is kept.
    """
    checks = _order_checks(view)
    labels = options.shapes or any(e.role for e in view.edges)
    best, fewest = None, None
    for floating in (False, True) if labels else (False,):
        for remincross in (True, False):
            reversed_children: set = set()
            for _ in range(2):
                dg = _digraph(view, options, reversed_children, floating)
                if not remincross:
                    dg.graph_attr["remincross"] = "false"
                wrong = _misordered(dg, checks, options.direction)
                if not wrong:
                    return dg
                if fewest is None or len(wrong) < fewest:
                    best, fewest = dg, len(wrong)
                reversed_children = {parent for parent, _ in wrong if parent != ROW}
                if not reversed_children:
                    break
    return best


def misordered(view: View, dg: graphviz.Digraph, direction: str = "TB") -> list[list[str]]:
    """The node sequences that `dot` lays out out of the spec's order in `dg` (the drawing of
    `view`): parallel paths (their first nodes) and rows of clique layers, which should read
    left to right (top to bottom with direction LR). Empty when `dot` is missing."""
    return [heads for _, heads in _misordered(dg, _order_checks(view), direction)]


ROW = "\0row"  # marks a row of clique layers among the (parent cluster, first nodes) checks


def _order_checks(view: View) -> list[tuple[str | None, list[str]]]:
    rows = [(ROW, row) for cluster in view.clusters.values() for row in cluster.rows if len(row) > 1]
    return _parallel_heads(view) + rows


def _digraph(view: View, options: RenderOptions, reversed_children: set, floating: bool) -> graphviz.Digraph:
    """The drawing, with the child clusters of the clusters in `reversed_children` declared in
    reverse, and edge labels placed after the layout when `floating`."""
    theme = THEMES[options.theme]
    dg = graphviz.Digraph(name=view.network, graph_attr={**GRAPH, "rankdir": options.direction})
    # Each node's outgoing edges in the spec's order, except a clique layer's: its links run
    # both ways along its row, and `ordering` would fight the row's order (see `rows` below).
    dg.node_attr["ordering"] = "out"
    if floating:
        dg.graph_attr["forcelabels"] = "true"
    members: dict[str | None, list] = {}
    for node in view.nodes.values():
        members.setdefault(node.cluster, []).append(node)
    children: dict[str | None, list] = {}
    for cluster in view.clusters.values():
        children.setdefault(cluster.parent, []).append(cluster)

    def fill(graph, cid: str | None) -> None:
        for node in members.get(cid, []):
            style = node_style(node, theme)
            label = style.pop("label", None)
            if node.op == "clique_layer":
                style["ordering"] = ""
            graph.node(node.id, label=label if label is not None else _label(node, options), **style)
        siblings = children.get(cid, [])
        for cluster in reversed(siblings) if cid in reversed_children else siblings:
            if not _has_nodes(cluster.id, members, children):
                continue
            with graph.subgraph(name=cluster.id) as sub:
                inner = cluster.kind in (*INNER_KINDS, "clique_stage")
                sub.attr(label=_cluster_label(cluster), **cluster_style(cluster, theme, inner))
                if cluster.kind == "clique":
                    sub.attr(labelloc="b")  # the links arc over the row; keep the name clear of them
                fill(sub, cluster.id)
        cluster = view.clusters.get(cid) if cid else None
        for row in cluster.rows if cluster else []:
            if len(row) > 1:
                with graph.subgraph() as same:
                    same.attr(rank="same")
                    for node_id in row:
                        same.node(node_id)
                    # X1, X2, .. from left to right; `dot` puts a flat edge's head above its tail
                    # when it draws left to right, so the row is chained backwards there
                    for a, b in itertools.pairwise(row if options.direction == "TB" else row[::-1]):
                        same.edge(a, b, style="invis", weight="10")

    fill(dg, None)
    for cluster in view.clusters.values():
        if cluster.kind == "clique_stage" and cluster.label == "stage II":  # unrolled: X_i(II) under X_i(I)
            for node_id in cluster.rows[0]:
                dg.edge(node_id.removesuffix("/II"), node_id, style="invis", weight="10")
    shown = set()  # (tail, shape): a tensor's shape is written on the first edge that carries it
    for edge in view.edges:
        text = [edge.role] if edge.role else []
        if options.shapes and edge.shape is not None and (edge.tail, edge.shape) not in shown \
                and view.nodes[edge.tail].op != "clique_layer":  # clique layers show their shape inside
            shown.add((edge.tail, edge.shape))
            text.append("×".join(map(str, edge.shape)))
        attrs = edge_style(edge, theme)
        if edge.kind == "feedback" and options.unroll:
            attrs["constraint"] = "false"  # stage II sits under stage I by invisible edges
        if _in_row(view, edge):  # links within a row of clique layers: the row's order is fixed by invisible edges
            attrs["constraint"] = "false"
        if text:
            attrs["xlabel" if floating else "label"] = " " + ": ".join(text) + " "
        dg.edge(edge.tail, edge.head, **attrs)
    return dg


def _parallel_heads(view: View) -> list[tuple[str | None, list[str]]]:
    """Each node that feeds parallel paths in sibling clusters (towers, branches): the clusters'
    parent (None: the top level) and the first node of each path, in the spec's order."""
    chains: dict[str | None, list[str]] = {None: []}  # cluster -> its clusters, outermost first

    def chain(cluster: str | None) -> list[str]:
        if cluster not in chains:
            chains[cluster] = [*chain(view.clusters[cluster].parent), cluster]
        return chains[cluster]

    heads_of: dict[str, list[str]] = {}
    tails_of: dict[str, list[str]] = {}
    for e in view.edges:
        tails_of.setdefault(e.head, []).append(e.tail)
        if e.kind == "data":
            heads_of.setdefault(e.tail, []).append(e.head)
    groups = []
    for heads in heads_of.values():
        paths = [chain(view.nodes[h].cluster) for h in heads]
        depth = 0  # how many clusters all heads share
        while all(len(p) > depth for p in paths) and len({p[depth] for p in paths}) == 1:
            depth += 1
        if len(heads) < 2 or not all(len(p) > depth for p in paths):
            continue
        siblings = [p[depth] for p in paths]
        first = all(sibling not in chain(view.nodes[t].cluster)
                    for head, sibling in zip(heads, siblings, strict=True) for t in tails_of[head])
        if len(set(siblings)) == len(siblings) and first:
            groups.append((paths[0][depth - 1] if depth else None, heads))
    return groups


def _misordered(dg: graphviz.Digraph, groups: list, direction: str) -> list:
    """The (parent, nodes) checks whose nodes `dot` lays out out of order (none when `dot` is missing)."""
    if not groups:
        return []
    try:
        plain = graphviz.pipe("dot", "plain", dg.source.encode(), quiet=True).decode()
    except (graphviz.ExecutableNotFound, subprocess.CalledProcessError):
        return []
    where = {}
    for match in re.finditer(r'^node ("(?:[^"\\]|\\.)*"|\S+) (\S+) (\S+)', plain, re.MULTILINE):
        name, x, y = match.groups()
        where[name.strip('"')] = float(x) if direction == "TB" else -float(y)  # LR: the first path on top
    return [(parent, heads) for parent, heads in groups
            if any(where[a] >= where[b] for a, b in itertools.pairwise(heads))]


def _in_row(view: View, edge) -> bool:
    tail, head = view.nodes[edge.tail], view.nodes[edge.head]
    return tail.op == head.op == "clique_layer" and tail.stage == head.stage and tail.cluster == head.cluster


def _side_input(view: View, edge) -> bool:
    """A shortcut into a sum or a later input of a merge: drawn bending, beside the main path."""
    head = view.nodes[edge.head]
    return head.category == "merge" and any(e.head == edge.head and e is not edge for e in view.edges[:view.edges.index(edge)])


def _has_nodes(cid: str, members: dict, children: dict) -> bool:
    return bool(members.get(cid)) or any(_has_nodes(c.id, members, children) for c in children.get(cid, []))


def _label(node, options: RenderOptions) -> str:
    """An HTML-like label: the main text, then smaller lines (block arguments, shapes, parameters)."""
    main = html.escape(node.label)
    if node.role in ("block", "input", "output"):
        main = f"<b>{main}</b>"
    small = list(node.lines)
    if options.shapes and node.op == "clique_layer" and node.shape is not None:
        small.append("×".join(map(str, node.shape)))
    if options.params and node.params and node.role in ("layer", "block"):
        small.append(f"{human(node.params)} params")
    rows = [main] + [f'<font point-size="8">{html.escape(line)}</font>' for line in small]
    return "<" + "<br/>".join(rows) + ">"


def _cluster_label(cluster) -> str:
    if cluster.count > 1:  # "bottleneck x5" in bold (which instances it stands for stays in the view)
        return f"<<b>{html.escape(cluster.label.split(chr(9))[0])}</b>>"
    return f"<{html.escape(cluster.label)}>"


# ---------------------------------------------------------------- files


def write(dg: graphviz.Digraph, path: str | Path, dpi: int | None = None, standalone: bool = False) -> Path:
    """Write `dg` as the format named by the suffix of `path`; returns the path written.
    `dpi` is the resolution of PNG output (default: the graph's `dpi` attribute, else 200).
    `.tex` is a TikZ picture (archdsl.render.tikz), a whole document when `standalone`.

    Without Graphviz's `dot` program the DOT source is still written (beside `path`, suffix
    .dot) and an ArchError says how to install Graphviz.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(Diagnostic(f"cannot tell the output format from '{path.name}'",
                                    help="name the output OUT.svg, OUT.pdf, OUT.png, OUT.dot or OUT.tex (TikZ)"))
    if standalone and fmt != "tex":
        raise UsageError(Diagnostic(f"--standalone makes a LaTeX document, but '{path.name}' is not a .tex file",
                                    help="name the output OUT.tex, or leave out --standalone"))
    if fmt == "png" and (dpi is not None or "dpi" not in dg.graph_attr):
        dpi = DPI if dpi is None else dpi
        if not 1 <= dpi <= 2400:
            raise UsageError(Diagnostic(f"--dpi must lie between 1 and 2400, found {dpi}",
                                        help="200 suits slides, 300 print"))
        dg = dg.copy()
        dg.graph_attr["dpi"] = str(dpi)
    source = dg.source.encode()
    if fmt in ("dot", "gv"):
        write_atomic(path, source)
        return path
    try:
        data = graphviz.pipe("dot", "json" if fmt == "tex" else fmt, source, quiet=True)
    except graphviz.ExecutableNotFound:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, source)
        raise ArchError(Diagnostic(f"cannot write {path}: Graphviz's 'dot' program was not found on PATH; "
                                   f"the DOT source was written to {dot_path}", help=INSTALL_HELP)) from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        raise ArchError(Diagnostic(f"Graphviz's 'dot' failed to write {path}: {detail}")) from None
    if fmt == "pdf":
        data = fixed_pdf_dates(data)
    elif fmt == "tex":
        data = tikz_from_json(data, standalone).encode()
    write_atomic(path, data)
    return path


def fixed_pdf_dates(data: bytes) -> bytes:
    """Replace the PDF's creation and modification dates by 2000-01-01, keeping every byte offset."""
    def same_length(match: re.Match) -> bytes:
        stamp = b"D:20000101000000"
        return match.group(1) + stamp + b"Z" + b" " * (len(match.group(2)) - len(stamp) - 1) + b")"

    return re.sub(rb"(/(?:CreationDate|ModDate) ?\()(D:[0-9]{14}[^)]*)\)", same_length, data)
